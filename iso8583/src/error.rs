//! The error type of decoding, encoding and validation.
//!
//! [`Error`] is small and `Copy`: it carries *what* went wrong ([`ErrorKind`]), *where* in the
//! message ([`Part`]: the MTI, a bitmap, a field or a subfield) and the byte offset in the input
//! (or, when encoding, in the output). Its `Display` reads like
//! `field 35: length 41 exceeds the maximum 37 (prefix at byte 52)`.

use core::fmt;

use crate::spec::DataClass;

/// Which part of a message an [`Error`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// The message as a whole (trailing bytes, an empty input).
    Message,
    /// The message type indicator.
    Mti,
    /// A bitmap: 1 = primary, 2 = secondary (field 1), 3 = tertiary (field 65).
    Bitmap(u8),
    /// A data element, by number.
    Field(u16),
    /// A subfield of a data element: the field number and the subfield's position (1-based).
    Subfield(u16, u16),
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Part::Message => f.write_str("message"),
            Part::Mti => f.write_str("MTI"),
            Part::Bitmap(1) => f.write_str("primary bitmap"),
            Part::Bitmap(2) => f.write_str("secondary bitmap"),
            Part::Bitmap(n) => write!(f, "bitmap {n}"),
            Part::Field(n) => write!(f, "field {n}"),
            Part::Subfield(n, s) => write!(f, "field {n}.{s}"),
        }
    }
}

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ends inside this part: `needed` more bytes are required. A framing layer that
    /// sees this on a partial buffer should wait for more input.
    Truncated {
        /// How many more bytes the part needs.
        needed: usize,
    },
    /// A length prefix holds a byte that is not valid for its encoding.
    BadLengthPrefix {
        /// The offending byte.
        found: u8,
    },
    /// A length (from a prefix, or of a value being encoded) is above the field's maximum.
    OverMaximum {
        /// The length found, in the units the prefix counts.
        length: usize,
        /// The maximum allowed, in the same units.
        max: usize,
    },
    /// A value is shorter than its fixed length and the field does not allow padding.
    TooShort {
        /// The length of the value.
        length: usize,
        /// The length the field requires.
        expected: usize,
    },
    /// A length prefix counts nibbles of a binary field but is odd.
    OddNibbleCount {
        /// The count found.
        length: usize,
    },
    /// A packed-BCD nibble is not a decimal digit (or not the allowed separator).
    BadBcdNibble {
        /// The offending nibble.
        nibble: u8,
    },
    /// The pad nibble of an odd-length BCD value is not the one the field specifies.
    BadPadNibble {
        /// The nibble found.
        found: u8,
        /// The nibble expected.
        expected: u8,
    },
    /// A character is outside the field's data class.
    WrongCharacter {
        /// The data class of the field.
        class: DataClass,
        /// The offending byte (as carried, before any EBCDIC translation).
        found: u8,
    },
    /// A hex-ASCII item holds a byte that is not a hex digit.
    BadHex {
        /// The offending byte.
        found: u8,
    },
    /// A field is present in the bitmap but the spec does not define it.
    UndefinedField,
    /// Bytes remain after the last field in the bitmap.
    TrailingBytes {
        /// How many bytes remain.
        count: usize,
    },
    /// The MTI is not four decimal digits.
    BadMti,
    /// A value given for encoding has the wrong kind (an integer for a binary field, bytes where
    /// text is needed that are not valid, and so on).
    WrongValueKind,
    /// A value was asked for in a form the field's encoding cannot give without decoding
    /// (for example `as_str` on a BCD field).
    NotText,
    /// An integer accessor was used on a value that does not fit in a `u64`.
    IntegerOverflow,
    /// The message is longer than the decoder's limit of `u32::MAX` bytes.
    TooLong,
    /// A subfield path names a subfield the field's layout does not have.
    NoSuchSubfield,
}

/// A decoding, encoding or validation error: what, where, and at which byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Error {
    kind: ErrorKind,
    part: Part,
    offset: usize,
}

impl Error {
    /// Creates an error.
    pub const fn new(kind: ErrorKind, part: Part, offset: usize) -> Self {
        Error { kind, part, offset }
    }

    /// What went wrong.
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The part of the message the error is about.
    pub const fn part(&self) -> Part {
        self.part
    }

    /// The field number, when the error is about a field or subfield.
    pub const fn field(&self) -> Option<u16> {
        match self.part {
            Part::Field(n) | Part::Subfield(n, _) => Some(n),
            _ => None,
        }
    }

    /// Byte offset in the input (decoding) or the output (encoding) where the problem starts.
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// True when more input could resolve the error (the input was cut short).
    pub const fn is_truncated(&self) -> bool {
        matches!(self.kind, ErrorKind::Truncated { .. })
    }

    pub(crate) const fn with_part(mut self, part: Part) -> Self {
        self.part = part;
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        write!(f, "{}: ", self.part)?;
        match self.kind {
            ErrorKind::Truncated { needed } => {
                write!(f, "truncated: need {needed} more bytes (at byte {at})")
            }
            ErrorKind::BadLengthPrefix { found } => write!(
                f,
                "bad length prefix: byte 0x{found:02X} is not a valid digit (prefix at byte {at})"
            ),
            ErrorKind::OverMaximum { length, max } => write!(
                f,
                "length {length} exceeds the maximum {max} (prefix at byte {at})"
            ),
            ErrorKind::TooShort { length, expected } => write!(
                f,
                "value of length {length} is shorter than the fixed length {expected} (at byte {at})"
            ),
            ErrorKind::OddNibbleCount { length } => write!(
                f,
                "length {length} counts nibbles of a binary field but is odd (prefix at byte {at})"
            ),
            ErrorKind::BadBcdNibble { nibble } => {
                write!(f, "BCD nibble 0x{nibble:X} is not a digit (at byte {at})")
            }
            ErrorKind::BadPadNibble { found, expected } => write!(
                f,
                "pad nibble 0x{found:X} should be 0x{expected:X} (at byte {at})"
            ),
            ErrorKind::WrongCharacter { class, found } => write!(
                f,
                "byte 0x{found:02X} is not allowed in class {} (at byte {at})",
                class.name()
            ),
            ErrorKind::BadHex { found } => {
                write!(f, "byte 0x{found:02X} is not a hex digit (at byte {at})")
            }
            ErrorKind::UndefinedField => write!(
                f,
                "present in the bitmap but not defined in the spec (at byte {at})"
            ),
            ErrorKind::TrailingBytes { count } => {
                write!(
                    f,
                    "{count} trailing bytes after the last field (at byte {at})"
                )
            }
            ErrorKind::BadMti => write!(f, "not four decimal digits (at byte {at})"),
            ErrorKind::WrongValueKind => write!(
                f,
                "value of the wrong kind for the field's class (at byte {at})"
            ),
            ErrorKind::NotText => write!(
                f,
                "the field's encoding does not carry plain text: use digits() or binary()"
            ),
            ErrorKind::IntegerOverflow => write!(f, "value does not fit in a u64 (at byte {at})"),
            ErrorKind::TooLong => write!(f, "message longer than 4 GiB"),
            ErrorKind::NoSuchSubfield => write!(f, "no such subfield in the field's layout"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
