//! Helpers for unit tests.

use crate::apdu::CommandApdu;

/// Bytes from hex text; spaces are ignored.
pub(crate) fn hex(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).unwrap()
}

/// A command APDU parsed from hex text.
pub(crate) fn apdu(text: &str) -> CommandApdu {
    CommandApdu::parse(&hex(text)).unwrap()
}

/// The encoded command APDU as upper-case hex.
pub(crate) fn encoded(apdu: &CommandApdu) -> String {
    hex::encode_upper(apdu.to_bytes().unwrap())
}
