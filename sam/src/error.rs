//! The crate's error type.

use core::fmt;

use crate::kcv::Kcv;
use crate::key::{KeyType, KeyUsage};
use crate::pinblock::PinBlockFormat;

/// Everything that can go wrong in this crate.
///
/// Every variant names the argument or value at fault (`what`) and, where it applies, what
/// was expected and what was found. No variant ever carries key material, a PIN or a clear PIN
/// block; key check values are public by design and may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A byte string (a key, a block, a field, an IV...) has the wrong length.
    #[error("{what}: expected {expected}, found {found}")]
    BadLength {
        /// Which argument or value.
        what: &'static str,
        /// The accepted length(s), in words, with the unit (e.g. "8, 16 or 24 bytes").
        expected: &'static str,
        /// The length that was given, in the same unit.
        found: usize,
    },
    /// A hex string contains a character that is not a hex digit.
    #[error("{what}: character at offset {offset} is not a hex digit")]
    BadHex {
        /// Which argument.
        what: &'static str,
        /// Byte offset of the first bad character from the start of the string.
        offset: usize,
    },
    /// A DES key byte does not have odd parity.
    #[error("{what}: byte {index} does not have odd parity")]
    BadParity {
        /// Which key.
        what: &'static str,
        /// Index of the first byte with even parity.
        index: usize,
    },
    /// The key check value of a key does not match the expected one.
    #[error("{what}: key check value mismatch (expected {expected}, computed {computed})")]
    KcvMismatch {
        /// Which key.
        what: &'static str,
        /// The check value that came with the key.
        expected: Kcv,
        /// The check value computed from the (decrypted) key.
        computed: Kcv,
    },
    /// A MAC, TAC or cryptogram did not verify.
    #[error("{what}: verification failed")]
    MacMismatch {
        /// Which value.
        what: &'static str,
    },
    /// A PIN is not 4 to 12 decimal digits.
    #[error("PIN: {0}")]
    BadPin(PinProblem),
    /// A PAN is not 8 to 19 decimal digits.
    #[error("PAN: {0}")]
    BadPan(PanProblem),
    /// A clear PIN block does not decode in the stated format.
    #[error("PIN block ({format}): {problem}")]
    BadPinBlock {
        /// The format the block was decoded as.
        format: PinBlockFormat,
        /// What is wrong with it.
        problem: PinBlockProblem,
    },
    /// A PIN block conversion that is not allowed or not possible.
    #[error("cannot convert a PIN block from {from} to {to}: {reason}")]
    FormatConversion {
        /// The source format.
        from: PinBlockFormat,
        /// The requested format.
        to: PinBlockFormat,
        /// Why.
        reason: &'static str,
    },
    /// A key of one type was offered where a key for another usage is required.
    #[error("{what}: a {found} key cannot be used for {expected}")]
    WrongKeyType {
        /// Which argument.
        what: &'static str,
        /// The usage the operation requires.
        expected: KeyUsage,
        /// The type of the key that was offered.
        found: KeyType,
    },
}

/// What is wrong with a PIN (the PIN itself is never reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PinProblem {
    /// Fewer than 4 or more than 12 digits.
    Length {
        /// The number of characters given.
        found: usize,
    },
    /// A character that is not a decimal digit.
    NotDigit {
        /// Its position, counted from 0.
        position: usize,
    },
}

impl fmt::Display for PinProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length { found } => write!(f, "expected 4 to 12 digits, found {found}"),
            Self::NotDigit { position } => {
                write!(f, "character at position {position} is not a decimal digit")
            }
        }
    }
}

/// What is wrong with a PAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PanProblem {
    /// Fewer than 8 or more than 19 digits.
    Length {
        /// The number of characters given.
        found: usize,
    },
    /// A character that is not a decimal digit.
    NotDigit {
        /// Its position, counted from 0.
        position: usize,
    },
}

impl fmt::Display for PanProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length { found } => write!(f, "expected 8 to 19 digits, found {found}"),
            Self::NotDigit { position } => {
                write!(f, "character at position {position} is not a decimal digit")
            }
        }
    }
}

/// What is wrong with a clear PIN block. Positions count nibbles from 0 at the most
/// significant nibble of the first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PinBlockProblem {
    /// The control nibble is not the format's number.
    Control {
        /// The nibble found.
        found: u8,
    },
    /// The PIN length nibble is outside 4..=12.
    PinLength {
        /// The nibble found.
        found: u8,
    },
    /// A PIN nibble is not a decimal digit.
    PinDigit {
        /// Its nibble position.
        position: usize,
    },
    /// A fill nibble is not allowed by the format (F for format 0, A..F for format 3, A for
    /// format 4).
    Fill {
        /// Its nibble position.
        position: usize,
    },
}

impl fmt::Display for PinBlockProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Control { found } => write!(f, "unexpected control nibble {found:X}"),
            Self::PinLength { found } => {
                write!(f, "PIN length nibble {found:X} is outside 4..=12")
            }
            Self::PinDigit { position } => {
                write!(
                    f,
                    "PIN nibble at position {position} is not a decimal digit"
                )
            }
            Self::Fill { position } => write!(f, "bad fill nibble at position {position}"),
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
