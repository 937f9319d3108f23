//! The pairing of a command with its response type, for code that handles any command.

use crate::apdu::CommandApdu;
use crate::command::error::CommandError;

/// A command with a typed response.
///
/// Every command struct also has the same functions as inherent methods, so the trait is
/// only needed by generic code (e.g. "send this command, check the status word, parse the
/// response").
pub trait Command: Sized {
    /// The command's name, as used in errors (e.g. `"GET BALANCE"`).
    const NAME: &'static str;
    /// The response data type.
    type Response: Response;
    /// The command APDU.
    fn to_apdu(&self) -> CommandApdu;
    /// Parses the command APDU (card or PSAM side).
    fn parse(apdu: &CommandApdu) -> Result<Self, CommandError>;
}

/// Typed response data (the bytes before `SW1 SW2`).
pub trait Response: Sized {
    /// Parses the response data.
    fn parse(data: &[u8]) -> Result<Self, CommandError>;
    /// Encodes the response data.
    fn to_bytes(&self) -> Vec<u8>;
}

/// Implements [`Command`] by delegating to inherent `NAME`, `to_apdu` and `parse`.
macro_rules! impl_command {
    ($command:ty => $response:ty) => {
        impl $crate::command::Command for $command {
            const NAME: &'static str = <$command>::NAME;
            type Response = $response;
            fn to_apdu(&self) -> $crate::apdu::CommandApdu {
                <$command>::to_apdu(self)
            }
            fn parse(
                apdu: &$crate::apdu::CommandApdu,
            ) -> Result<Self, $crate::command::CommandError> {
                <$command>::parse(apdu)
            }
        }
    };
}

/// Implements [`Response`] by delegating to inherent `parse` and `to_bytes`.
macro_rules! impl_response {
    ($response:ty) => {
        impl $crate::command::Response for $response {
            fn parse(data: &[u8]) -> Result<Self, $crate::command::CommandError> {
                <$response>::parse(data)
            }
            fn to_bytes(&self) -> Vec<u8> {
                <$response>::to_bytes(self)
            }
        }
    };
}

pub(crate) use {impl_command, impl_response};
