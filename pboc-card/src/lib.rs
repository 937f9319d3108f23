#![doc = include_str!("../README.md")]

pub mod apdu;
pub mod application;
pub mod command;
mod reader;
pub mod sw;
#[cfg(test)]
mod test_util;
pub mod transaction_type;

pub use apdu::{ApduCase, ApduError, CommandApdu, ResponseApdu};
pub use application::Application;
pub use command::{Command, CommandError, Response};
pub use sw::StatusWord;
pub use transaction_type::TransactionType;
