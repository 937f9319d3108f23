//! BER-TLV as used by EMV (ISO 8583 field 55, ICC system related data): a zero-copy reader
//! and a builder.
//!
//! Each data object is a tag, a length and a value:
//!
//! ```text
//! +----------------+-----------------+------------------+
//! | tag: 1-3 bytes | length: 1-4 B   | value: length B  |
//! +----------------+-----------------+------------------+
//!
//! tag, first byte:   b8 b7 | b6           | b5..b1
//!                    class | 1=constructed | tag number, or 11111 = more tag bytes follow
//! tag, next bytes:   b8 = 1: another tag byte follows, b8 = 0: last tag byte
//!
//! length:  0x00..=0x7F          the length itself (short form)
//!          0x81 LL              1 length byte follows   (up to 255)
//!          0x82 LL LL           2 length bytes follow   (up to 65,535)
//!          0x83 LL LL LL        3 length bytes follow   (up to 16,777,215)
//! ```
//!
//! The value of a constructed tag (bit 6 of its first byte set, for example the `70` and `77`
//! templates) is itself a sequence of TLVs; [`Tlv::children`] iterates it.
//!
//! Supported and rejected forms:
//!
//! - Tags of one to three bytes; a longer tag is [`TlvErrorKind::TagTooLong`].
//! - Short-form lengths and the long forms `81`, `82`, `83`. The indefinite form `80` is
//!   [`TlvErrorKind::IndefiniteLength`]; `84` and above are
//!   [`TlvErrorKind::UnsupportedLengthForm`]. Long forms that could have been shorter are
//!   accepted when reading ([`Tlv::header_len`] tells); the builder always writes the shortest.
//! - Unknown tags are returned like any other; repeated tags are returned in their order.
//! - The byte `00` is read as a (primitive, empty or not) tag like any other: EMV's padding
//!   bytes between objects are not skipped, so reading and rebuilding gives back the input.
//!
//! Reading borrows from the input and allocates nothing. Every error carries the offset of the
//! offending byte within the outermost input, also for objects nested in constructed tags.
//!
//! ```
//! use iso8583_wire::tlv::{self, Tag, TlvBuilder, TlvReader};
//!
//! let field55 = [0x9F, 0x27, 0x01, 0x80, 0x9F, 0x36, 0x02, 0x00, 0x42];
//! let mut tags = Vec::new();
//! for item in TlvReader::new(&field55) {
//!     let tlv = item?;
//!     tags.push((tlv.tag().to_u32(), tlv.value()));
//! }
//! assert_eq!(tags, [(0x9F27, &[0x80][..]), (0x9F36, &[0x00, 0x42][..])]);
//!
//! let atc: Tag = "9F36".parse()?;
//! let found = tlv::find(&field55, atc)?.map(|t| t.value());
//! assert_eq!(found, Some(&[0x00, 0x42][..]));
//!
//! let mut out = Vec::new();
//! let mut builder = TlvBuilder::new(&mut out);
//! builder.push(Tag::new(0x9F27).ok_or("tag")?, &[0x80])?;
//! builder.push(atc, &[0x00, 0x42])?;
//! builder.finish()?;
//! assert_eq!(out, field55);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::vec::Vec;
use core::fmt;
use core::iter::FusedIterator;
use core::str::FromStr;

/// The longest tag accepted, in bytes.
pub const MAX_TAG_LEN: usize = 3;

/// The longest value that can be encoded (the `83` length form), in bytes.
pub const MAX_VALUE_LEN: usize = 0xFF_FFFF;

/// How many constructed objects may nest in one another.
///
/// [`find`], [`validate`] and [`TlvBuilder`] stop with [`TlvErrorKind::TooDeep`] at the
/// constructed object that would be one level too many, which bounds their stack use on
/// hostile input. EMV data nests two or three levels.
pub const MAX_DEPTH: usize = 16;

/// What went wrong while reading or building BER-TLV data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlvErrorKind {
    /// The data ends inside a tag: another tag byte was expected. The offset is the tag's
    /// first byte.
    TruncatedTag,
    /// A tag longer than [`MAX_TAG_LEN`] bytes: its third byte has bit 8 set. The offset is
    /// the tag's first byte.
    TagTooLong,
    /// The data ends inside a length field, or where a length field was expected. The offset
    /// is the length field's first byte (the end of the data if it is missing altogether).
    TruncatedLength {
        /// Bytes the length field needs (1 to 4).
        expected: u8,
        /// Bytes that were left.
        found: u8,
    },
    /// The indefinite length form `80`, which EMV does not use. The offset is the length byte.
    IndefiniteLength,
    /// A long length form with more than three length bytes (`84` to `FF`). The offset is the
    /// length byte.
    UnsupportedLengthForm {
        /// The first length byte.
        first: u8,
    },
    /// The length says more bytes than the data (or the enclosing constructed value) holds.
    /// The offset is the length field's first byte.
    ValueOverrun {
        /// The length read.
        length: usize,
        /// The bytes left after the length field.
        available: usize,
    },
    /// Constructed tags nest deeper than [`MAX_DEPTH`]. The offset is the constructed tag that
    /// would open the level too many.
    TooDeep,
    /// A value longer than [`MAX_VALUE_LEN`] cannot be encoded. The offset is where the object
    /// starts in the output.
    ValueTooLong {
        /// The value's length.
        length: usize,
    },
    /// [`TlvBuilder::begin`] was given a primitive tag. The offset is the output position.
    NotConstructed {
        /// The tag given.
        tag: Tag,
    },
    /// [`TlvBuilder::end`] without a matching [`TlvBuilder::begin`]. The offset is the output
    /// position.
    UnbalancedEnd,
    /// [`TlvBuilder::finish`] with constructed tags still open. The offset is the output
    /// position.
    Unclosed {
        /// How many are still open.
        open: usize,
    },
    /// Text or a number that is not a well-formed tag of one to three bytes (from
    /// [`Tag::from_str`]). The offset is the first offending character, or 0 when the tag as a
    /// whole is malformed.
    InvalidTag,
}

/// An error reading or building BER-TLV data: what went wrong and at which byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TlvError {
    kind: TlvErrorKind,
    offset: usize,
}

impl TlvError {
    /// Makes an error of `kind` at `offset`.
    pub const fn new(kind: TlvErrorKind, offset: usize) -> Self {
        TlvError { kind, offset }
    }

    /// What went wrong.
    pub const fn kind(&self) -> TlvErrorKind {
        self.kind
    }

    /// The byte offset of the problem within the outermost input (for reading) or the output
    /// buffer (for building); see each [`TlvErrorKind`] for which byte it is.
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// Whether the data simply ends too early (a truncated tag, length or value), as opposed
    /// to being malformed.
    pub const fn is_truncated(&self) -> bool {
        matches!(
            self.kind,
            TlvErrorKind::TruncatedTag
                | TlvErrorKind::TruncatedLength { .. }
                | TlvErrorKind::ValueOverrun { .. }
        )
    }
}

impl fmt::Display for TlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match self.kind {
            TlvErrorKind::TruncatedTag => write!(
                f,
                "BER-TLV tag at offset {at}: expected another tag byte, found end of data"
            ),
            TlvErrorKind::TagTooLong => write!(
                f,
                "BER-TLV tag at offset {at}: expected at most {MAX_TAG_LEN} tag bytes, found a longer tag"
            ),
            TlvErrorKind::TruncatedLength { expected, found } => write!(
                f,
                "BER-TLV length at offset {at}: expected {expected} length byte(s), found {found}"
            ),
            TlvErrorKind::IndefiniteLength => write!(
                f,
                "BER-TLV length at offset {at}: expected a definite length, found the indefinite form 80"
            ),
            TlvErrorKind::UnsupportedLengthForm { first } => write!(
                f,
                "BER-TLV length at offset {at}: expected 00-7F, 81, 82 or 83, found {first:02X}"
            ),
            TlvErrorKind::ValueOverrun { length, available } => write!(
                f,
                "BER-TLV length at offset {at}: expected at most {available} value byte(s), found length {length}"
            ),
            TlvErrorKind::TooDeep => write!(
                f,
                "BER-TLV constructed tag at offset {at}: expected at most {MAX_DEPTH} nested constructed tags, found more"
            ),
            TlvErrorKind::ValueTooLong { length } => write!(
                f,
                "BER-TLV object at offset {at}: expected a value of at most {MAX_VALUE_LEN} bytes, found {length}"
            ),
            TlvErrorKind::NotConstructed { tag } => write!(
                f,
                "BER-TLV builder at offset {at}: expected a constructed tag, found primitive tag {tag}"
            ),
            TlvErrorKind::UnbalancedEnd => write!(
                f,
                "BER-TLV builder at offset {at}: expected an open constructed tag to end, found none"
            ),
            TlvErrorKind::Unclosed { open } => write!(
                f,
                "BER-TLV builder at offset {at}: expected all constructed tags closed, found {open} open"
            ),
            TlvErrorKind::InvalidTag => write!(
                f,
                "BER-TLV tag at offset {at}: expected a well-formed tag of 1 to {MAX_TAG_LEN} bytes (2, 4 or 6 hex digits)"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TlvError {}

/// The class of a tag (bits 8 and 7 of its first byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TagClass {
    /// `00`: universal.
    Universal,
    /// `01`: application (for example `4F`, `5A`, `5F2A`).
    Application,
    /// `10`: context-specific (for example `82`, `84`, `95`, `9F26`).
    ContextSpecific,
    /// `11`: private.
    Private,
}

/// A BER-TLV tag of one to three bytes, always well formed.
///
/// As a number it is the tag bytes read big-endian, as EMV writes them: `9F26` is
/// `0x9F26`. It displays as upper-case hex (`9F26`) and parses from hex text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    // Invariant: bytes[..len] is a well-formed tag and bytes[len..] are zero; 1 <= len <= 3.
    bytes: [u8; MAX_TAG_LEN],
    len: u8,
}

impl Tag {
    /// The tag whose bytes, read big-endian, are `value` (`0x9F26` for `9F26`, `0x95` for
    /// `95`), or `None` if those bytes are not exactly one well-formed tag of one to three
    /// bytes.
    pub const fn new(value: u32) -> Option<Tag> {
        let [b3, b0, b1, b2] = value.to_be_bytes();
        if b3 != 0 {
            return None;
        }
        if b0 == 0 && b1 == 0 {
            // One byte: must not announce further tag bytes.
            if b2 & 0x1F == 0x1F {
                return None;
            }
            return Some(Tag {
                bytes: [b2, 0, 0],
                len: 1,
            });
        }
        if b0 == 0 {
            // Two bytes.
            if b1 & 0x1F != 0x1F || b2 & 0x80 != 0 {
                return None;
            }
            return Some(Tag {
                bytes: [b1, b2, 0],
                len: 2,
            });
        }
        // Three bytes.
        if b0 & 0x1F != 0x1F || b1 & 0x80 == 0 || b2 & 0x80 != 0 {
            return None;
        }
        Some(Tag {
            bytes: [b0, b1, b2],
            len: 3,
        })
    }

    /// The tag made of exactly `bytes`, or `None` if they are not one well-formed tag.
    pub fn from_bytes(bytes: &[u8]) -> Option<Tag> {
        match read_tag(bytes, 0, 0) {
            Ok((tag, len)) if len == bytes.len() => Some(tag),
            _ => None,
        }
    }

    /// The tag bytes read big-endian (`0x9F26` for `9F26`).
    pub const fn to_u32(self) -> u32 {
        let [b0, b1, b2] = self.bytes;
        match self.len {
            1 => b0 as u32,
            2 => ((b0 as u32) << 8) | b1 as u32,
            _ => ((b0 as u32) << 16) | ((b1 as u32) << 8) | b2 as u32,
        }
    }

    /// The tag's bytes as they appear on the wire.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// How many bytes the tag takes (1 to 3).
    pub const fn encoded_len(self) -> usize {
        self.len as usize
    }

    /// The BER tag number, without class and constructed bits: `0x26` (38) for `9F26`,
    /// `0x15` (21) for `95`.
    pub const fn number(self) -> u32 {
        let [b0, b1, b2] = self.bytes;
        match self.len {
            1 => (b0 & 0x1F) as u32,
            2 => (b1 & 0x7F) as u32,
            _ => (((b1 & 0x7F) as u32) << 7) | (b2 & 0x7F) as u32,
        }
    }

    /// Whether the tag is constructed (bit 6 of its first byte): its value holds nested TLVs.
    pub const fn is_constructed(self) -> bool {
        self.bytes[0] & 0x20 != 0
    }

    /// The tag's class.
    pub const fn class(self) -> TagClass {
        match self.bytes[0] >> 6 {
            0 => TagClass::Universal,
            1 => TagClass::Application,
            2 => TagClass::ContextSpecific,
            _ => TagClass::Private,
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.bytes() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({self})")
    }
}

impl FromStr for Tag {
    type Err = TlvError;

    /// Parses 2, 4 or 6 hex digits (either case), such as `"9F26"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.as_bytes();
        if text.is_empty() || !text.len().is_multiple_of(2) || text.len() > 2 * MAX_TAG_LEN {
            return Err(TlvError::new(TlvErrorKind::InvalidTag, 0));
        }
        let mut bytes = [0u8; MAX_TAG_LEN];
        for (i, (pair, slot)) in text.chunks_exact(2).zip(bytes.iter_mut()).enumerate() {
            let mut byte = 0u8;
            for (j, &c) in pair.iter().enumerate() {
                let nibble = match c {
                    b'0'..=b'9' => c - b'0',
                    b'a'..=b'f' => c - b'a' + 10,
                    b'A'..=b'F' => c - b'A' + 10,
                    _ => return Err(TlvError::new(TlvErrorKind::InvalidTag, 2 * i + j)),
                };
                byte = (byte << 4) | nibble;
            }
            *slot = byte;
        }
        let len = text.len() / 2;
        bytes
            .get(..len)
            .and_then(Tag::from_bytes)
            .ok_or(TlvError::new(TlvErrorKind::InvalidTag, 0))
    }
}

/// One data object read from BER-TLV data, borrowing its value from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    tag: Tag,
    value: &'a [u8],
    offset: usize,
    header_len: u8,
}

impl<'a> Tlv<'a> {
    /// The tag.
    pub const fn tag(&self) -> Tag {
        self.tag
    }

    /// The value bytes.
    pub const fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The offset of the tag's first byte within the outermost input.
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// The length of tag plus length field, in bytes (2 to 7).
    pub const fn header_len(&self) -> usize {
        self.header_len as usize
    }

    /// The offset of the first value byte within the outermost input.
    pub const fn value_offset(&self) -> usize {
        self.offset + self.header_len as usize
    }

    /// The length of the whole object (tag, length and value), in bytes.
    pub const fn total_len(&self) -> usize {
        self.header_len as usize + self.value.len()
    }

    /// Whether the tag is constructed.
    pub const fn is_constructed(&self) -> bool {
        self.tag.is_constructed()
    }

    /// For a constructed tag, a reader over the nested objects in its value (with offsets
    /// still counted from the outermost input); `None` for a primitive tag.
    pub fn children(&self) -> Option<TlvReader<'a>> {
        if self.is_constructed() {
            Some(TlvReader::with_offset(self.value, self.value_offset()))
        } else {
            None
        }
    }
}

/// Reads consecutive BER-TLV objects from a byte slice without copying.
///
/// Yields `Ok(tlv)` for each object, in order. After the first error it yields that error
/// once and then `None`. Nested objects are not entered; use [`Tlv::children`], [`find`] or
/// [`validate`] for those.
#[derive(Clone, Debug)]
pub struct TlvReader<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
    failed: bool,
}

impl<'a> TlvReader<'a> {
    /// A reader over `data`, reporting offsets from the start of `data`.
    pub const fn new(data: &'a [u8]) -> Self {
        Self::with_offset(data, 0)
    }

    /// A reader over `data` that sits at `base` within a larger input: every offset it
    /// reports is `base` plus the position within `data`.
    pub const fn with_offset(data: &'a [u8], base: usize) -> Self {
        TlvReader {
            data,
            pos: 0,
            base,
            failed: false,
        }
    }

    /// How many bytes of `data` have been read so far.
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }
}

impl<'a> Iterator for TlvReader<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        match read_tlv(self.data, self.pos, self.base) {
            Ok(tlv) => {
                self.pos += tlv.total_len();
                Some(Ok(tlv))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for TlvReader<'_> {}

/// Reads the tag at `at`; returns it and its length. Offsets in errors are `base + position`.
fn read_tag(data: &[u8], at: usize, base: usize) -> Result<(Tag, usize), TlvError> {
    let truncated = TlvError::new(TlvErrorKind::TruncatedTag, base + at);
    let Some(&b0) = data.get(at) else {
        return Err(truncated);
    };
    if b0 & 0x1F != 0x1F {
        return Ok((
            Tag {
                bytes: [b0, 0, 0],
                len: 1,
            },
            1,
        ));
    }
    let Some(&b1) = data.get(at + 1) else {
        return Err(truncated);
    };
    if b1 & 0x80 == 0 {
        return Ok((
            Tag {
                bytes: [b0, b1, 0],
                len: 2,
            },
            2,
        ));
    }
    let Some(&b2) = data.get(at + 2) else {
        return Err(truncated);
    };
    if b2 & 0x80 == 0 {
        return Ok((
            Tag {
                bytes: [b0, b1, b2],
                len: 3,
            },
            3,
        ));
    }
    Err(TlvError::new(TlvErrorKind::TagTooLong, base + at))
}

/// Reads the length field at `at`; returns the length and the field's size.
fn read_length(data: &[u8], at: usize, base: usize) -> Result<(usize, usize), TlvError> {
    let left = data.len().saturating_sub(at);
    let Some(&first) = data.get(at) else {
        return Err(TlvError::new(
            TlvErrorKind::TruncatedLength {
                expected: 1,
                found: 0,
            },
            base + at,
        ));
    };
    match first {
        0x00..=0x7F => Ok((usize::from(first), 1)),
        0x80 => Err(TlvError::new(TlvErrorKind::IndefiniteLength, base + at)),
        0x81..=0x83 => {
            let n = usize::from(first & 0x7F);
            let Some(bytes) = data.get(at + 1..at + 1 + n) else {
                return Err(TlvError::new(
                    TlvErrorKind::TruncatedLength {
                        // n is 1 to 3.
                        expected: (first & 0x7F) + 1,
                        found: u8::try_from(left).unwrap_or(u8::MAX),
                    },
                    base + at,
                ));
            };
            let length = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            Ok((length, 1 + n))
        }
        _ => Err(TlvError::new(
            TlvErrorKind::UnsupportedLengthForm { first },
            base + at,
        )),
    }
}

/// Reads one whole object starting at `at`.
fn read_tlv(data: &[u8], at: usize, base: usize) -> Result<Tlv<'_>, TlvError> {
    let (tag, tag_len) = read_tag(data, at, base)?;
    let len_at = at + tag_len;
    let (length, len_len) = read_length(data, len_at, base)?;
    let value_at = len_at + len_len;
    let available = data.len().saturating_sub(value_at);
    let value = value_at
        .checked_add(length)
        .and_then(|end| data.get(value_at..end))
        .ok_or(TlvError::new(
            TlvErrorKind::ValueOverrun { length, available },
            base + len_at,
        ))?;
    Ok(Tlv {
        tag,
        value,
        offset: base + at,
        // At most 3 tag bytes plus 4 length bytes.
        header_len: (tag_len + len_len) as u8,
    })
}

/// Finds the first object with `tag` in `data`, searching depth-first into constructed tags
/// (a constructed object is checked before its children, and its children before its next
/// sibling).
///
/// Returns `Ok(None)` if the whole tree was read without finding the tag, and the first error
/// met before finding it otherwise. Allocates nothing; nesting is limited to [`MAX_DEPTH`].
pub fn find(data: &[u8], tag: Tag) -> Result<Option<Tlv<'_>>, TlvError> {
    find_in(TlvReader::new(data), tag, 0)
}

fn find_in(reader: TlvReader<'_>, tag: Tag, depth: usize) -> Result<Option<Tlv<'_>>, TlvError> {
    for item in reader {
        let tlv = item?;
        if tlv.tag == tag {
            return Ok(Some(tlv));
        }
        if let Some(children) = tlv.children() {
            if depth >= MAX_DEPTH {
                return Err(TlvError::new(TlvErrorKind::TooDeep, tlv.offset));
            }
            if let Some(found) = find_in(children, tag, depth + 1)? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

/// Checks that `data` is a well-formed sequence of objects, including everything nested in
/// constructed tags (up to [`MAX_DEPTH`] levels). Returns the number of top-level objects.
pub fn validate(data: &[u8]) -> Result<usize, TlvError> {
    validate_in(TlvReader::new(data), 0)
}

fn validate_in(reader: TlvReader<'_>, depth: usize) -> Result<usize, TlvError> {
    let mut count = 0;
    for item in reader {
        let tlv = item?;
        if let Some(children) = tlv.children() {
            if depth >= MAX_DEPTH {
                return Err(TlvError::new(TlvErrorKind::TooDeep, tlv.offset));
            }
            validate_in(children, depth + 1)?;
        }
        count += 1;
    }
    Ok(count)
}

/// Writes the shortest length field for `length` into a small buffer; returns it and its size.
fn encode_length(length: usize) -> Option<([u8; 4], usize)> {
    let [_, _, _, _, _, b2, b1, b0] = (length as u64).to_be_bytes();
    match length {
        0..=0x7F => Some(([b0, 0, 0, 0], 1)),
        0x80..=0xFF => Some(([0x81, b0, 0, 0], 2)),
        0x100..=0xFFFF => Some(([0x82, b1, b0, 0], 3)),
        0x1_0000..=MAX_VALUE_LEN => Some(([0x83, b2, b1, b0], 4)),
        _ => None,
    }
}

/// Writes BER-TLV objects into a caller's `Vec<u8>`, appending after what it holds.
///
/// Lengths are always written in their shortest form. Constructed objects are opened with
/// [`begin`](Self::begin) and closed with [`end`](Self::end); the length is patched in at
/// `end`, moving the value if the length needs more than one byte. Nesting is limited to
/// [`MAX_DEPTH`] levels. After an error the output holds a partial encoding and should be
/// discarded.
///
/// ```
/// use iso8583_wire::tlv::{Tag, TlvBuilder};
///
/// let mut out = Vec::new();
/// let mut b = TlvBuilder::new(&mut out);
/// b.begin("77".parse()?)?
///     .push("9F27".parse()?, &[0x80])?
///     .end()?;
/// assert_eq!(b.finish()?, 6);
/// assert_eq!(out, [0x77, 0x04, 0x9F, 0x27, 0x01, 0x80]);
/// # Ok::<(), iso8583_wire::tlv::TlvError>(())
/// ```
#[derive(Debug)]
pub struct TlvBuilder<'v> {
    out: &'v mut Vec<u8>,
    start: usize,
    /// For each open constructed object: where its tag starts in `out`, and where its
    /// one-byte length placeholder is.
    open: [(usize, usize); MAX_DEPTH],
    depth: usize,
}

impl<'v> TlvBuilder<'v> {
    /// A builder appending to `out`.
    pub fn new(out: &'v mut Vec<u8>) -> Self {
        let start = out.len();
        TlvBuilder {
            out,
            start,
            open: [(0, 0); MAX_DEPTH],
            depth: 0,
        }
    }

    /// Appends a primitive (or pre-encoded constructed) object: `tag`, the shortest length
    /// field, and `value`. Fails with [`TlvErrorKind::ValueTooLong`] above [`MAX_VALUE_LEN`],
    /// writing nothing.
    pub fn push(&mut self, tag: Tag, value: &[u8]) -> Result<&mut Self, TlvError> {
        let at = self.out.len();
        let Some((len_buf, len_len)) = encode_length(value.len()) else {
            return Err(TlvError::new(
                TlvErrorKind::ValueTooLong {
                    length: value.len(),
                },
                at,
            ));
        };
        self.out.reserve(tag.encoded_len() + len_len + value.len());
        self.out.extend_from_slice(tag.bytes());
        self.out
            .extend_from_slice(len_buf.get(..len_len).unwrap_or_default());
        self.out.extend_from_slice(value);
        Ok(self)
    }

    /// Appends a copy of an object read elsewhere (its tag and value; the length is written
    /// in the shortest form).
    pub fn push_tlv(&mut self, tlv: &Tlv<'_>) -> Result<&mut Self, TlvError> {
        self.push(tlv.tag(), tlv.value())
    }

    /// Opens a constructed object with `tag`; what is pushed until the matching
    /// [`end`](Self::end) becomes its value.
    pub fn begin(&mut self, tag: Tag) -> Result<&mut Self, TlvError> {
        let at = self.out.len();
        if !tag.is_constructed() {
            return Err(TlvError::new(TlvErrorKind::NotConstructed { tag }, at));
        }
        let Some(slot) = self.open.get_mut(self.depth) else {
            return Err(TlvError::new(TlvErrorKind::TooDeep, at));
        };
        self.out.extend_from_slice(tag.bytes());
        *slot = (at, self.out.len());
        self.out.push(0);
        self.depth += 1;
        Ok(self)
    }

    /// Closes the innermost open constructed object, writing its length.
    pub fn end(&mut self) -> Result<&mut Self, TlvError> {
        let unbalanced = TlvError::new(TlvErrorKind::UnbalancedEnd, self.out.len());
        let Some(inner) = self.depth.checked_sub(1) else {
            return Err(unbalanced);
        };
        let Some(&(tag_at, at)) = self.open.get(inner) else {
            return Err(unbalanced);
        };
        // `at` is the placeholder pushed by `begin`; everything after it is the value.
        let length = self.out.len().saturating_sub(at + 1);
        let Some((len_buf, len_len)) = encode_length(length) else {
            return Err(TlvError::new(TlvErrorKind::ValueTooLong { length }, tag_at));
        };
        let header = len_buf.get(..len_len).unwrap_or_default();
        if at >= self.out.len() {
            return Err(unbalanced);
        }
        self.out.splice(at..at + 1, header.iter().copied());
        self.depth = inner;
        Ok(self)
    }

    /// How many constructed objects are open.
    pub const fn depth(&self) -> usize {
        self.depth
    }

    /// Checks that every constructed object was closed and returns the number of bytes
    /// written by this builder.
    pub fn finish(self) -> Result<usize, TlvError> {
        if self.depth != 0 {
            return Err(TlvError::new(
                TlvErrorKind::Unclosed { open: self.depth },
                self.out.len(),
            ));
        }
        Ok(self.out.len().saturating_sub(self.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    /// Field 55 of /work/shared/fixtures/iso87-ascii/0200.json (key "55").
    const FIELD55_HEX: &str = "9F26081A2B3C4D5E6F70819F2701809F100C06010A03A0B80000000000009F37045C3D2E1F9F36020042950500000080009A032611289C01009F02060000000125005F2A020840820239009F1A0208409F03060000000000009F3303E0F8C89F34034203009F3501229F1E0831323334353637388407A00000000310109F0902008C9F4104000012345F3401014F07A0000000031010";

    fn tag(v: u32) -> Tag {
        match Tag::new(v) {
            Some(t) => t,
            None => panic!("bad test tag {v:X}"),
        }
    }

    fn field55() -> Vec<u8> {
        match hex::decode(FIELD55_HEX) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    fn err(kind: TlvErrorKind, offset: usize) -> TlvError {
        TlvError::new(kind, offset)
    }

    fn first_error(data: &[u8]) -> Option<TlvError> {
        TlvReader::new(data).find_map(Result::err)
    }

    #[test]
    fn reads_fixture_field55_in_order() {
        let data = field55();
        assert_eq!(data.len(), 150);
        let items: Vec<Tlv<'_>> = TlvReader::new(&data).map(|r| r.unwrap()).collect();
        let tags: Vec<u32> = items.iter().map(|t| t.tag().to_u32()).collect();
        assert_eq!(
            tags,
            [
                0x9F26, 0x9F27, 0x9F10, 0x9F37, 0x9F36, 0x95, 0x9A, 0x9C, 0x9F02, 0x5F2A, 0x82,
                0x9F1A, 0x9F03, 0x9F33, 0x9F34, 0x9F35, 0x9F1E, 0x84, 0x9F09, 0x9F41, 0x5F34, 0x4F
            ]
        );
        let offsets: Vec<usize> = items.iter().map(Tlv::offset).collect();
        assert_eq!(
            offsets,
            [
                0, 11, 15, 30, 37, 42, 49, 54, 57, 66, 71, 75, 80, 89, 95, 101, 105, 116, 125, 130,
                137, 141
            ]
        );
        let ac = items[0];
        assert_eq!(ac.value(), [0x1A, 0x2B, 0x3C, 0x4D, 0x5E, 0x6F, 0x70, 0x81]);
        assert_eq!(
            (ac.header_len(), ac.value_offset(), ac.total_len()),
            (3, 3, 11)
        );
        assert_eq!(items[1].value(), [0x80]);
        assert_eq!(
            items[2].value(),
            [
                0x06, 0x01, 0x0A, 0x03, 0xA0, 0xB8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00
            ]
        );
        assert_eq!(items[5].tag().to_string(), "95");
        assert_eq!(items[5].value(), [0x00, 0x00, 0x00, 0x80, 0x00]);
        assert_eq!(items[8].value(), [0x00, 0x00, 0x00, 0x01, 0x25, 0x00]);
        assert_eq!(items[16].value(), b"12345678");
        assert_eq!(
            items[21].value(),
            [0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10]
        );
        assert!(
            items
                .iter()
                .all(|t| !t.is_constructed() && t.children().is_none())
        );
        assert_eq!(validate(&data), Ok(22));

        let found = find(&data, tag(0x9F36)).unwrap().unwrap();
        assert_eq!((found.offset(), found.value()), (37, &[0x00, 0x42][..]));
        assert_eq!(find(&data, tag(0x9F4E)), Ok(None));
    }

    #[test]
    fn rebuilds_fixture_field55_byte_for_byte() {
        let data = field55();
        let mut out = vec![0xEE]; // existing content stays in front
        let mut b = TlvBuilder::new(&mut out);
        for item in TlvReader::new(&data) {
            b.push_tlv(&item.unwrap()).unwrap();
        }
        assert_eq!(b.finish(), Ok(150));
        assert_eq!(out.first(), Some(&0xEE));
        assert_eq!(out.get(1..), Some(&data[..]));
    }

    #[test]
    fn tag_properties_and_text() {
        let t: Tag = "9f26".parse().unwrap();
        assert_eq!(t, tag(0x9F26));
        assert_eq!(t.to_string(), "9F26");
        assert_eq!(alloc::format!("{t:?}"), "Tag(9F26)");
        assert_eq!(t.bytes(), [0x9F, 0x26]);
        assert_eq!(
            (t.encoded_len(), t.number(), t.is_constructed()),
            (2, 0x26, false)
        );
        assert_eq!(t.class(), TagClass::ContextSpecific);

        let t95 = tag(0x95);
        assert_eq!((t95.bytes(), t95.number()), (&[0x95][..], 0x15));
        assert_eq!(tag(0x5F2A).class(), TagClass::Application);
        assert!(tag(0x70).is_constructed());
        assert!(tag(0x77).is_constructed());
        assert!(tag(0xBF0C).is_constructed());
        assert!(!tag(0x4F).is_constructed());
        assert_eq!(tag(0x00).bytes(), [0x00]);
        assert_eq!(tag(0xDF01).class(), TagClass::Private);
        assert_eq!(Tag::new(0xBF0C).map(Tag::number), Some(0x0C));

        let three = tag(0x9F8102);
        assert_eq!(
            (three.bytes(), three.number()),
            (&[0x9F, 0x81, 0x02][..], 0x82)
        );
        assert_eq!(three.to_string(), "9F8102");
        assert_eq!(Tag::from_bytes(&[0x9F, 0x81, 0x02]), Some(three));

        // Malformed numbers: 1F alone announces more bytes; 9F80 ends on a continuation byte;
        // 26 does not announce a second byte; four bytes are too long.
        for bad in [
            0x1F,
            0x9F80,
            0x9F8180,
            0x2601,
            0x9F0126,
            0x9F818101,
            0x0100_0000,
        ] {
            assert_eq!(Tag::new(bad), None, "{bad:X}");
        }
        assert_eq!(Tag::from_bytes(&[]), None);
        assert_eq!(Tag::from_bytes(&[0x95, 0x00]), None);
        assert_eq!(Tag::from_bytes(&[0x9F]), None);

        let e = |s: &str| s.parse::<Tag>().unwrap_err();
        assert_eq!(e(""), err(TlvErrorKind::InvalidTag, 0));
        assert_eq!(e("9F2"), err(TlvErrorKind::InvalidTag, 0));
        assert_eq!(e("9F2G"), err(TlvErrorKind::InvalidTag, 3));
        assert_eq!(e("9F"), err(TlvErrorKind::InvalidTag, 0));
        assert_eq!(e("9F818101"), err(TlvErrorKind::InvalidTag, 0));
        assert_eq!(e("+5"), err(TlvErrorKind::InvalidTag, 0));
        assert_eq!("5f2a".parse::<Tag>(), Ok(tag(0x5F2A)));
    }

    #[test]
    fn nested_templates() {
        // 70 { 9F27 01 80, 77 { 9F36 02 0042 }, 61 { 4F 01 A0 } } then 9F26 00
        let mut out = Vec::new();
        let mut b = TlvBuilder::new(&mut out);
        b.begin(tag(0x70)).unwrap();
        b.push(tag(0x9F27), &[0x80]).unwrap();
        b.begin(tag(0x77))
            .unwrap()
            .push(tag(0x9F36), &[0x00, 0x42])
            .unwrap();
        assert_eq!(b.depth(), 2);
        b.end().unwrap();
        b.begin(tag(0x61))
            .unwrap()
            .push(tag(0x4F), &[0xA0])
            .unwrap()
            .end()
            .unwrap();
        b.end().unwrap().push(tag(0x9F26), &[]).unwrap();
        assert_eq!(b.finish(), Ok(21));
        let expected = [
            0x70, 0x10, 0x9F, 0x27, 0x01, 0x80, 0x77, 0x05, 0x9F, 0x36, 0x02, 0x00, 0x42, 0x61,
            0x03, 0x4F, 0x01, 0xA0, 0x9F, 0x26, 0x00,
        ];
        assert_eq!(out.len(), 21);
        assert_eq!(out, expected);
        assert_eq!(validate(&out), Ok(2));

        let top: Vec<Tlv<'_>> = TlvReader::new(&out).map(|r| r.unwrap()).collect();
        assert_eq!(top.len(), 2);
        let template = top[0];
        assert!(template.is_constructed());
        let kids: Vec<(u32, usize)> = template
            .children()
            .unwrap()
            .map(|r| r.map(|t| (t.tag().to_u32(), t.offset())).unwrap())
            .collect();
        assert_eq!(kids, [(0x9F27, 2), (0x77, 6), (0x61, 13)]);

        let atc = find(&out, tag(0x9F36)).unwrap().unwrap();
        assert_eq!((atc.offset(), atc.value()), (8, &[0x00, 0x42][..]));
        let aid = find(&out, tag(0x4F)).unwrap().unwrap();
        assert_eq!((aid.offset(), aid.value()), (15, &[0xA0][..]));
        let inner = find(&out, tag(0x77)).unwrap().unwrap();
        assert_eq!(inner.value(), [0x9F, 0x36, 0x02, 0x00, 0x42]);
        assert_eq!(find(&out, tag(0x9F26)).unwrap().unwrap().offset(), 18);
    }

    #[test]
    fn long_form_lengths_are_patched_in_shortest_form() {
        let v127 = [0x11u8; 127];
        let v200 = [0x22u8; 200];
        let v300 = [0x33u8; 300];
        let mut out = Vec::new();
        let mut b = TlvBuilder::new(&mut out);
        b.push(tag(0x9F10), &v127).unwrap();
        b.push(tag(0x9F10), &v200).unwrap();
        b.begin(tag(0x70))
            .unwrap()
            .push(tag(0x57), &v300)
            .unwrap()
            .end()
            .unwrap();
        b.finish().unwrap();
        assert_eq!(out[..3], [0x9F, 0x10, 0x7F]);
        assert_eq!(out[130..134], [0x9F, 0x10, 0x81, 0xC8]);
        // 70 82 01 2F { 57 82 01 2C ... }
        assert_eq!(
            out[334..342],
            [0x70, 0x82, 0x01, 0x30, 0x57, 0x82, 0x01, 0x2C]
        );
        assert_eq!(out.len(), 342 + 300);
        let items: Vec<Tlv<'_>> = TlvReader::new(&out).map(|r| r.unwrap()).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].value(), v200);
        assert_eq!(items[1].header_len(), 4);
        let card = find(&out, tag(0x57)).unwrap().unwrap();
        assert_eq!((card.offset(), card.value().len()), (338, 300));

        // 83 form and non-minimal long forms are read.
        let mut long = vec![0xDF, 0x01, 0x83, 0x01, 0x00, 0x00];
        long.resize(6 + 0x1_0000, 0x44);
        let t = TlvReader::new(&long).next().unwrap().unwrap();
        assert_eq!((t.value().len(), t.header_len()), (0x1_0000, 6));
        let loose = [0x95, 0x81, 0x02, 0xAA, 0xBB];
        let t = TlvReader::new(&loose).next().unwrap().unwrap();
        assert_eq!((t.value(), t.header_len()), (&[0xAA, 0xBB][..], 3));
    }

    #[test]
    fn malformed_input_errors() {
        use TlvErrorKind::*;
        let cases: [(&[u8], TlvError); 14] = [
            (&[0x9F], err(TruncatedTag, 0)),
            (&[0x95, 0x01, 0x00, 0x9F], err(TruncatedTag, 3)),
            (&[0x9F, 0x81], err(TruncatedTag, 0)),
            (&[0x9F, 0x81, 0x81, 0x01, 0x00], err(TagTooLong, 0)),
            (
                &[0x9F, 0x26],
                err(
                    TruncatedLength {
                        expected: 1,
                        found: 0,
                    },
                    2,
                ),
            ),
            (
                &[0x9F, 0x26, 0x82, 0x01],
                err(
                    TruncatedLength {
                        expected: 3,
                        found: 2,
                    },
                    2,
                ),
            ),
            (
                &[0x95, 0x81],
                err(
                    TruncatedLength {
                        expected: 2,
                        found: 1,
                    },
                    1,
                ),
            ),
            (
                &[0x95, 0x05, 0x00, 0x00],
                err(
                    ValueOverrun {
                        length: 5,
                        available: 2,
                    },
                    1,
                ),
            ),
            (
                &[0x95, 0x82, 0x01, 0x00, 0x00],
                err(
                    ValueOverrun {
                        length: 256,
                        available: 1,
                    },
                    1,
                ),
            ),
            (
                &[0x70, 0x80, 0x95, 0x00, 0x00, 0x00],
                err(IndefiniteLength, 1),
            ),
            (
                &[0x95, 0x84, 0x00, 0x00, 0x00, 0x01, 0x00],
                err(UnsupportedLengthForm { first: 0x84 }, 1),
            ),
            (
                &[0x9F, 0x27, 0xFF],
                err(UnsupportedLengthForm { first: 0xFF }, 2),
            ),
            (
                &[0x82, 0x00, 0x9F, 0x02, 0x06],
                err(
                    ValueOverrun {
                        length: 6,
                        available: 0,
                    },
                    4,
                ),
            ),
            (
                &[0x5F, 0x2A, 0x83, 0xFF, 0xFF, 0xFF, 0x00],
                err(
                    ValueOverrun {
                        length: 0xFF_FFFF,
                        available: 1,
                    },
                    2,
                ),
            ),
        ];
        for (data, expected) in cases {
            assert_eq!(first_error(data), Some(expected), "{data:02X?}");
            assert_eq!(validate(data), Err(expected), "{data:02X?}");
            assert_eq!(find(data, tag(0x4F)), Err(expected), "{data:02X?}");
        }
        assert!(err(TruncatedTag, 0).is_truncated());
        assert!(!err(TagTooLong, 0).is_truncated());
    }

    #[test]
    fn errors_inside_templates_carry_outer_offsets() {
        // 70 05 { 9F26 09 <2 bytes> }: the parent is fine, the child overruns it.
        let data = [0x4F, 0x00, 0x70, 0x05, 0x9F, 0x26, 0x09, 0x00, 0x00];
        let expected = err(
            TlvErrorKind::ValueOverrun {
                length: 9,
                available: 2,
            },
            6,
        );
        assert_eq!(validate(&data), Err(expected));
        assert_eq!(find(&data, tag(0x9F27)), Err(expected));
        // Found before the bad part: no error.
        assert_eq!(
            find(&data, tag(0x4F)).map(|t| t.map(|t| t.offset())),
            Ok(Some(0))
        );
        let parent = TlvReader::new(&data).nth(1).unwrap().unwrap();
        let mut kids = parent.children().unwrap();
        assert_eq!(kids.next(), Some(Err(expected)));
        assert_eq!(kids.next(), None);
    }

    #[test]
    fn reader_stops_after_first_error() {
        let data = [0x95, 0x01, 0x00, 0x9F, 0x80, 0x95, 0x00];
        let mut r = TlvReader::new(&data);
        assert_eq!(
            r.next().map(|t| t.map(|t| t.value())),
            Some(Ok(&[0x00][..]))
        );
        assert_eq!(r.position(), 3);
        assert_eq!(r.remaining(), [0x9F, 0x80, 0x95, 0x00]);
        // 9F 80 95: two continuation bytes then 00 ends a 4-byte tag.
        assert_eq!(r.next(), Some(Err(err(TlvErrorKind::TagTooLong, 3))));
        assert_eq!(r.next(), None);
        assert_eq!(r.next(), None);
        assert_eq!(TlvReader::new(&[]).next(), None);
    }

    #[test]
    fn nesting_limit() {
        // 16 levels are fine, 17 are too deep.
        let mut ok = Vec::new();
        let mut b = TlvBuilder::new(&mut ok);
        for _ in 0..MAX_DEPTH {
            b.begin(tag(0x70)).unwrap();
        }
        assert_eq!(
            b.begin(tag(0x70)).map(|_| ()),
            Err(err(TlvErrorKind::TooDeep, 32))
        );
        b.push(tag(0x95), &[]).unwrap();
        for _ in 0..MAX_DEPTH {
            b.end().unwrap();
        }
        assert_eq!(b.finish(), Ok(34));
        assert_eq!(validate(&ok), Ok(1));
        assert_eq!(find(&ok, tag(0x95)).unwrap().unwrap().offset(), 32);

        let mut deep = vec![0u8; 0];
        for level in 0..17u8 {
            deep.extend_from_slice(&[0x70, 2 * (17 - level)]);
        }
        deep.extend_from_slice(&[0x95, 0x00]);
        assert_eq!(validate(&deep), Err(err(TlvErrorKind::TooDeep, 32)));
        assert_eq!(find(&deep, tag(0x95)), Err(err(TlvErrorKind::TooDeep, 32)));
        assert_eq!(find(&deep, tag(0x70)).unwrap().unwrap().offset(), 0);
    }

    #[test]
    fn builder_errors() {
        let mut out = vec![0xAA];
        let mut b = TlvBuilder::new(&mut out);
        assert_eq!(
            b.end().map(|_| ()),
            Err(err(TlvErrorKind::UnbalancedEnd, 1))
        );
        assert_eq!(
            b.begin(tag(0x9F26)).map(|_| ()),
            Err(err(TlvErrorKind::NotConstructed { tag: tag(0x9F26) }, 1))
        );
        let huge = vec![0u8; MAX_VALUE_LEN + 1];
        assert_eq!(
            b.push(tag(0x9F10), &huge).map(|_| ()),
            Err(err(
                TlvErrorKind::ValueTooLong {
                    length: MAX_VALUE_LEN + 1
                },
                1
            ))
        );
        b.begin(tag(0x70)).unwrap();
        assert_eq!(b.finish(), Err(err(TlvErrorKind::Unclosed { open: 1 }, 3)));
        assert_eq!(out, [0xAA, 0x70, 0x00]);

        let mut out = Vec::new();
        let mut b = TlvBuilder::new(&mut out);
        b.begin(tag(0x70)).unwrap();
        b.push(tag(0x9F10), &huge[..MAX_VALUE_LEN - 7]).unwrap();
        b.push(tag(0x95), &[]).unwrap(); // the template's value is now one byte too long
        assert_eq!(
            b.end().map(|_| ()),
            Err(err(
                TlvErrorKind::ValueTooLong {
                    length: MAX_VALUE_LEN + 1
                },
                0
            ))
        );
        assert_eq!(b.depth(), 1);
    }

    #[test]
    fn error_messages_say_expected_and_found() {
        use TlvErrorKind::*;
        assert_eq!(
            err(
                ValueOverrun {
                    length: 9,
                    available: 2
                },
                6
            )
            .to_string(),
            "BER-TLV length at offset 6: expected at most 2 value byte(s), found length 9"
        );
        assert_eq!(
            err(UnsupportedLengthForm { first: 0x84 }, 1).to_string(),
            "BER-TLV length at offset 1: expected 00-7F, 81, 82 or 83, found 84"
        );
        assert_eq!(
            err(TruncatedTag, 3).to_string(),
            "BER-TLV tag at offset 3: expected another tag byte, found end of data"
        );
        assert_eq!(
            err(NotConstructed { tag: tag(0x9F26) }, 0).to_string(),
            "BER-TLV builder at offset 0: expected a constructed tag, found primitive tag 9F26"
        );
    }

    #[cfg(feature = "std")]
    mod props {
        use super::*;
        use proptest::prelude::*;

        fn primitive_tag() -> impl Strategy<Value = Tag> {
            prop_oneof![
                any::<u8>()
                    .prop_map(|b| b & !0x20)
                    .prop_filter("one byte", |b| b & 0x1F != 0x1F)
                    .prop_map(|b| vec![b]),
                (any::<u8>(), any::<u8>()).prop_map(|(a, b)| vec![(a & 0xC0) | 0x1F, b & 0x7F]),
                (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| vec![
                    (a & 0xC0) | 0x1F,
                    b | 0x80,
                    c & 0x7F
                ]),
            ]
            .prop_map(|bytes| Tag::from_bytes(&bytes).unwrap())
        }

        proptest! {
            #[test]
            fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
                let mut total = 0;
                for item in TlvReader::new(&data) {
                    match item {
                        Ok(t) => {
                            prop_assert_eq!(t.offset(), total);
                            total += t.total_len();
                        }
                        Err(e) => prop_assert!(e.offset() <= data.len()),
                    }
                }
                prop_assert!(total <= data.len());
                let _ = validate(&data);
                let _ = find(&data, Tag::new(0x9F26).unwrap());
                let _ = first_error(&data).map(|e| e.to_string());
            }

            #[test]
            fn build_then_parse_then_build(
                items in proptest::collection::vec(
                    (primitive_tag(), proptest::collection::vec(any::<u8>(), 0..300)),
                    0..8,
                )
            ) {
                let mut x = Vec::new();
                let mut b = TlvBuilder::new(&mut x);
                for (t, v) in &items {
                    b.push(*t, v).unwrap();
                }
                b.finish().unwrap();

                let parsed: Vec<Tlv<'_>> = TlvReader::new(&x).map(|r| r.unwrap()).collect();
                prop_assert_eq!(parsed.len(), items.len());
                for (p, (t, v)) in parsed.iter().zip(&items) {
                    prop_assert_eq!(p.tag(), *t);
                    prop_assert_eq!(p.value(), &v[..]);
                    prop_assert_eq!(p.tag().to_string().parse::<Tag>(), Ok(*t));
                    prop_assert_eq!(Tag::new(t.to_u32()), Some(*t));
                }

                let mut y = Vec::new();
                let mut b = TlvBuilder::new(&mut y);
                for p in &parsed {
                    b.push_tlv(p).unwrap();
                }
                b.finish().unwrap();
                prop_assert_eq!(x, y);
            }
        }
    }
}
