//! Subfields and access by path: `"60"`, `"60.2"`, `"55.9F26"`.
//!
//! A field's [`Layout`] says how it splits: positional subfields (UnionPay fields 60, 61, 63),
//! BER-TLV data objects (field 55, addressed by tag), or a bitmap followed by the subfields whose
//! bits are set. Positions count units of the parent field: digits of a BCD field, characters of
//! a text field, bytes of a binary one. Nothing is copied, except the TLV of a field carried as
//! hex-ASCII, which has to be turned into bytes first.

use alloc::vec::Vec;
use core::fmt;

use crate::decode::{Chars, Field, Message};
use crate::error::{Error, ErrorKind, Part, Result};
use crate::spec::{DataClass, Layout, Subfield};
use crate::tlv::{self, Tag, Tlv};

/// The value found at a path.
#[derive(Clone, Debug)]
pub enum SubValue<'a> {
    /// A whole field (a path without a subfield part).
    Field(Field<'a>),
    /// A positional or bitmapped subfield: its characters (digits, text, or hex of bytes).
    Chars(Chars<'a>),
    /// A TLV data object, borrowed from a raw binary field.
    Tlv(Tlv<'a>),
    /// The value of a TLV data object from a hex-ASCII field, decoded.
    Bytes(Vec<u8>),
}

impl fmt::Display for SubValue<'_> {
    /// The canonical text: as [`Field`]'s Display for fields and positional subfields, upper-case
    /// hex for TLV values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubValue::Field(field) => fmt::Display::fmt(field, f),
            SubValue::Chars(chars) => fmt::Display::fmt(chars, f),
            SubValue::Tlv(t) => hex_upper(f, t.value()),
            SubValue::Bytes(b) => hex_upper(f, b),
        }
    }
}

fn hex_upper(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02X}"))
}

/// A subfield of a positional or bitmapped layout, with its 1-based position.
#[derive(Clone, Debug)]
pub struct PositionalSub<'a, 's> {
    /// Position in the layout (1-based).
    pub position: u16,
    /// The definition.
    pub spec: &'s Subfield,
    /// The characters.
    pub value: Chars<'a>,
}

impl<'a> Field<'a> {
    /// The positional or bitmapped subfields that are present, in order. Empty for fields
    /// without such a layout.
    pub fn subfields(&self) -> Result<Vec<PositionalSub<'a, 'a>>> {
        let def = self.spec();
        let per_unit = if def.class == DataClass::B { 2 } else { 1 };
        let units = self.len();
        let mut out = Vec::new();
        match &def.layout {
            Some(Layout::Positional(subs)) => {
                let mut start = 0usize;
                for (i, s) in subs.iter().enumerate() {
                    if start >= units {
                        break;
                    }
                    let end = (start + s.length as usize).min(units);
                    out.push(PositionalSub {
                        position: i as u16 + 1,
                        spec: s,
                        value: self.chars().sub(start * per_unit, end * per_unit),
                    });
                    start = end;
                }
            }
            Some(Layout::Bitmapped {
                bitmap_bytes,
                subfields,
            }) => {
                let width = *bitmap_bytes as usize;
                let bits = self.sub_bitmap(width)?;
                // A binary body carries the bitmap as bytes; a text body as two hex digits a byte.
                let mut start = if def.class == DataClass::B {
                    width
                } else {
                    2 * width
                };
                for (i, s) in subfields.iter().enumerate() {
                    if (bits >> (63 - i)) & 1 == 0 {
                        continue;
                    }
                    let end = start + s.length as usize;
                    if end > units {
                        return Err(Error::new(
                            ErrorKind::Truncated {
                                needed: end - units,
                            },
                            Part::Subfield(self.number(), i as u16 + 1),
                            self.body_offset(),
                        ));
                    }
                    out.push(PositionalSub {
                        position: i as u16 + 1,
                        spec: s,
                        value: self.chars().sub(start * per_unit, end * per_unit),
                    });
                    start = end;
                }
            }
            _ => {}
        }
        Ok(out)
    }

    /// The leading bitmap of a bitmapped layout, left-aligned in a `u64`.
    fn sub_bitmap(&self, width: usize) -> Result<u64> {
        let mut word = 0u64;
        let mut chars = self.chars();
        for i in 0..width.min(8) {
            // Two characters a byte: hex digits of a binary body or of a text-carried bitmap.
            let (Some(hi), Some(lo)) = (chars.next(), chars.next()) else {
                return Err(Error::new(
                    ErrorKind::Truncated { needed: width - i },
                    Part::Field(self.number()),
                    self.body_offset(),
                ));
            };
            let (Some(h), Some(l)) = (crate::bitmap::hex_value(hi), crate::bitmap::hex_value(lo))
            else {
                return Err(Error::new(
                    ErrorKind::BadHex { found: hi },
                    Part::Field(self.number()),
                    self.body_offset() + i,
                ));
            };
            word |= ((h << 4 | l) as u64) << (56 - 8 * i);
        }
        Ok(word)
    }

    /// The TLV data objects of a field with a TLV layout, read from its bytes.
    pub fn tlv_bytes(&self) -> Result<alloc::borrow::Cow<'a, [u8]>> {
        let bin = self.binary()?;
        Ok(match bin.as_slice() {
            Some(s) => alloc::borrow::Cow::Borrowed(s),
            None => alloc::borrow::Cow::Owned(bin.to_vec()),
        })
    }
}

impl<'a> Message<'a> {
    /// The value at `path`: a field number (`"41"`), a field and a subfield position
    /// (`"60.2"`), or a field and a TLV tag (`"55.9F26"`). `Ok(None)` when the field or
    /// subfield is absent; an error when the path does not fit the field's layout or the
    /// field's content is malformed.
    pub fn get(&self, path: &str) -> Result<Option<SubValue<'a>>> {
        let (field_part, sub_part) = match path.split_once('.') {
            Some((f, s)) => (f, Some(s)),
            None => (path, None),
        };
        let bad_path = |n: u16| Error::new(ErrorKind::NoSuchSubfield, Part::Field(n), 0);
        let n: u16 = field_part.parse().map_err(|_| bad_path(0))?;
        let Some(field) = self.field(n) else {
            return Ok(None);
        };
        let Some(sub) = sub_part else {
            return Ok(Some(SubValue::Field(field)));
        };
        match &field.spec().layout {
            Some(Layout::Tlv) => {
                let tag: Tag = sub.parse().map_err(|_| bad_path(n))?;
                let tlv_err = |e: tlv::TlvError| {
                    Error::new(
                        ErrorKind::WrongValueKind,
                        Part::Field(n),
                        field.body_offset() + e.offset(),
                    )
                };
                match field.tlv_bytes()? {
                    alloc::borrow::Cow::Borrowed(data) => {
                        Ok(tlv::find(data, tag).map_err(tlv_err)?.map(SubValue::Tlv))
                    }
                    alloc::borrow::Cow::Owned(data) => Ok(tlv::find(&data, tag)
                        .map_err(tlv_err)?
                        .map(|t| SubValue::Bytes(t.value().to_vec()))),
                }
            }
            Some(Layout::Positional(_) | Layout::Bitmapped { .. }) => {
                let pos: u16 = sub.parse().map_err(|_| bad_path(n))?;
                Ok(field
                    .subfields()?
                    .into_iter()
                    .find(|s| s.position == pos)
                    .map(|s| SubValue::Chars(s.value)))
            }
            None => Err(bad_path(n)),
        }
    }
}

impl Chars<'_> {
    /// The characters from `start` to `end` (relative to this iterator's current position),
    /// clamped to what is left.
    pub(crate) fn sub(mut self, start: usize, end: usize) -> Self {
        let len = self.len();
        let (start, end) = (start.min(len), end.min(len));
        self.narrow(start, end.max(start));
        self
    }
}
