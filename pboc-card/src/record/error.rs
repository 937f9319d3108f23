//! Why bytes are not a valid record.

/// Bytes that are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The record has the wrong length.
    #[error("{record}: must be {expected} bytes, found {found}")]
    WrongLength {
        /// The record type.
        record: &'static str,
        /// Its fixed length.
        expected: usize,
        /// The length received.
        found: usize,
    },
    /// A byte that is not a valid value for its field.
    #[error("{record}: {field} at offset {offset} is invalid: {found:02X}")]
    InvalidField {
        /// The record type.
        record: &'static str,
        /// The field.
        field: &'static str,
        /// Offset of the byte in the record.
        offset: usize,
        /// The byte received.
        found: u8,
    },
}
