#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod apdu;
pub mod application;
pub mod card;
pub mod command;
pub mod flow;
pub mod image;
pub mod issuer;
pub mod personalize;
pub mod psam;
mod reader;
pub mod record;
pub mod sw;
pub mod terminal;
#[cfg(test)]
mod test_util;
pub mod transaction_type;

pub use apdu::{ApduCase, ApduError, CommandApdu, ResponseApdu};
pub use application::Application;
pub use card::{FixedRandom, TearPoint, VirtualCard};
pub use command::{
    CardCommand, Command, CommandError, PsamCommand, Response, parse_card_command,
    parse_psam_command,
};
pub use flow::{FlowError, TearOutcome};
pub use image::{CardImage, CardKey, ImageError, KeyPurpose, Purse};
pub use issuer::{BatchChecker, IssuerError, IssuerKeys, Verdict};
pub use personalize::{
    IssuerProfile, PersonalizeError, QualityReport, SerialAllocator, personalize, quality_check,
};
pub use psam::VirtualPsam;
pub use record::{DuplicateKey, OfflinePurchaseRecord, RecordError, TransactionDetail};
pub use sw::StatusWord;
pub use terminal::{ApduPsam, Psam, PsamError};
pub use transaction_type::TransactionType;
