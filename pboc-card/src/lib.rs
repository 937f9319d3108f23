#![doc = include_str!("../README.md")]

pub mod apdu;
pub mod application;
pub mod command;
mod reader;
pub mod record;
pub mod sw;
#[cfg(test)]
mod test_util;
pub mod transaction_type;

pub use apdu::{ApduCase, ApduError, CommandApdu, ResponseApdu};
pub use application::Application;
pub use command::{
    CardCommand, Command, CommandError, PsamCommand, Response, parse_card_command,
    parse_psam_command,
};
pub use record::{DuplicateKey, OfflinePurchaseRecord, RecordError, TransactionDetail};
pub use sw::StatusWord;
pub use transaction_type::TransactionType;
