//! Zero-copy decoding.
//!
//! [`decode`] walks a message once: it reads the MTI and bitmaps, then for each present field
//! reads and checks the length prefix against the spec (digits valid, value within the maximum,
//! enough bytes left) and records where the field ends. Nothing is copied or allocated: a
//! [`Message`] borrows the input and the spec, and its [`Field`] views decode their values lazily.
//!
//! Decoding checks structure only. Content (digits in `n` fields, character classes, pad nibbles,
//! hex digits) is checked by [`Message::validate`] or [`Field::validate`], a separate pass that
//! costs about as much as the decode itself again (see `BENCHMARKS.md`); a front end that must
//! refuse malformed content calls both (or [`decode_validated`], the two in one call), a router
//! that only reads field 3 calls neither.

use core::fmt;

use crate::bitmap::{self, Bitmap};
use crate::error::{Error, ErrorKind, Part, Result};
use crate::spec::{
    Align, BitmapEncoding, Check, Compiled, Conv, Counts, DataClass, Encoding, FieldSpec, Length,
    MAX_FIELD, MtiEncoding, PrefixEncoding, ScanPlan, Spec,
};

/// Most data-carrying fields a message can have (2 to 192).
const MAX_DATA_FIELDS: usize = MAX_FIELD as usize - 1;

/// A decoded message: a view over the input bytes.
#[derive(Clone)]
pub struct Message<'a> {
    spec: &'a Spec,
    data: &'a [u8],
    mti: [u8; 4],
    bitmap: Bitmap,
    fields_start: u32,
    count: u16,
    ends: [u32; MAX_DATA_FIELDS],
    /// The number of each decoded field, in the order of `ends`.
    numbers: [u8; MAX_DATA_FIELDS],
}

impl fmt::Debug for Message<'_> {
    /// Shows the MTI, the bitmap and the field numbers only: values may be card data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("spec", &self.spec.name())
            .field("mti", &self.mti())
            .field("bitmap", &self.bitmap)
            .field("decoded_fields", &self.count)
            .finish()
    }
}

/// Decodes a whole message. Trailing bytes after the last field are an error.
///
/// ```
/// use iso8583_wire::{decode, specs};
/// let msg = decode(specs::iso87_ascii(), b"0800822000000000000004000000000000001128113245000001301")?;
/// assert_eq!(msg.mti(), "0800");
/// assert_eq!(msg.field(70).map(|f| f.to_u64()), Some(Ok(301)));
/// # Ok::<(), iso8583_wire::Error>(())
/// ```
pub fn decode<'a>(spec: &'a Spec, data: &'a [u8]) -> Result<Message<'a>> {
    // Built in the value that is returned, so that it is not copied on the way out (going
    // through `decode_partial`'s tuple cost two copies of the whole `Message` per call).
    let mut result = Ok(Message::empty(spec, data));
    if let Ok(m) = &mut result
        && let Err(e) = m.walk(MAX_FIELD, true)
    {
        result = Err(e);
    }
    result
}

/// Decodes a whole message and checks the content of every field: [`decode`] followed by
/// [`Message::validate`], in one call. A structural problem is returned first; then the first
/// field whose content fails.
///
/// ```
/// use iso8583_wire::{decode_validated, specs};
/// let spec = specs::iso87_ascii();
/// let msg = decode_validated(spec, b"0800822000000000000004000000000000001128113245000001301")?;
/// assert_eq!(msg.field(11).map(|f| f.to_u64()), Some(Ok(1)));
/// // Field 11 (n 6) with a letter in it: decode alone accepts it, this does not.
/// let bad = b"0800822000000000000004000000000000001128113245A00001301";
/// let err = decode_validated(spec, bad).unwrap_err();
/// assert_eq!((err.field(), err.offset()), (Some(11), 46));
/// # Ok::<(), iso8583_wire::Error>(())
/// ```
pub fn decode_validated<'a>(spec: &'a Spec, data: &'a [u8]) -> Result<Message<'a>> {
    let mut result = Ok(Message::empty(spec, data));
    if let Ok(m) = &mut result
        && let Err(e) = m.walk(MAX_FIELD, true).and_then(|()| m.validate())
    {
        result = Err(e);
    }
    result
}

/// Decodes as far as possible: the message holds every field decoded before the error, if any.
pub fn decode_partial<'a>(spec: &'a Spec, data: &'a [u8]) -> (Message<'a>, Option<Error>) {
    let mut m = Message::empty(spec, data);
    let err = m.walk(MAX_FIELD, true).err();
    (m, err)
}

/// Decodes the MTI and the fields up to and including `last` (for routing on, say, fields 3 and
/// 25, or 60 of a UnionPay message), without walking the rest of the message. Later fields read
/// as absent; trailing bytes are not checked.
pub fn scan<'a>(spec: &'a Spec, data: &'a [u8], last: u16) -> Result<Message<'a>> {
    let mut m = Message::empty(spec, data);
    m.walk(last, false)?;
    Ok(m)
}

impl<'a> Message<'a> {
    fn empty(spec: &'a Spec, data: &'a [u8]) -> Self {
        Message {
            spec,
            data,
            mti: [0; 4],
            bitmap: Bitmap::new(),
            fields_start: 0,
            count: 0,
            ends: [0; MAX_DATA_FIELDS],
            numbers: [0; MAX_DATA_FIELDS],
        }
    }

    fn walk(&mut self, last: u16, check_trailing: bool) -> Result<()> {
        let data = self.data;
        if data.len() > u32::MAX as usize {
            return Err(Error::new(ErrorKind::TooLong, Part::Message, 0));
        }
        let spec = self.spec;
        let mut pos = read_mti(data, spec.mti_encoding(), &mut self.mti)?;
        let enc = spec.bitmap_encoding();
        let primary = bitmap::read_word(data, pos, enc, 1)?;
        pos += enc.wire_len();
        let mut words = [primary, 0, 0];
        if primary >> 63 == 1 {
            words[1] = bitmap::read_word(data, pos, enc, 2)?;
            pos += enc.wire_len();
        }
        self.bitmap = Bitmap::from_words(words);
        self.fields_start = pos as u32;
        let tertiary = spec.tertiary_bitmap();
        let mut rank = 0usize;
        for wi in 0..3 {
            let mut w = self.bitmap.words()[wi];
            if wi == 0 {
                w &= !(1 << 63);
            }
            while w != 0 {
                let lz = w.leading_zeros();
                w &= !(1u64 << (63 - lz));
                let n = (wi as u32 * 64 + lz + 1) as u16;
                if n > last {
                    return Ok(());
                }
                let c = spec.compiled(n);
                if !c.defined {
                    return Err(Error::new(ErrorKind::UndefinedField, Part::Field(n), pos));
                }
                let start = pos;
                let wire = if c.var {
                    let value = read_prefix(data, pos, c, n)?;
                    if value > c.max_value {
                        return Err(Error::new(
                            ErrorKind::OverMaximum {
                                length: value as usize,
                                max: c.max_value as usize,
                            },
                            Part::Field(n),
                            pos,
                        ));
                    }
                    pos += c.prefix_width as usize;
                    match c.conv {
                        Conv::Same => value as usize,
                        Conv::HalfUp => (value as usize).div_ceil(2),
                        Conv::HalfExact if value.is_multiple_of(2) => value as usize / 2,
                        Conv::SameEven if value.is_multiple_of(2) => value as usize,
                        Conv::HalfExact | Conv::SameEven => {
                            return Err(Error::new(
                                ErrorKind::OddNibbleCount {
                                    length: value as usize,
                                },
                                Part::Field(n),
                                start,
                            ));
                        }
                    }
                } else {
                    c.fixed_wire as usize
                };
                let end = pos + wire;
                if end > data.len() {
                    return Err(Error::new(
                        ErrorKind::Truncated {
                            needed: end - data.len(),
                        },
                        Part::Field(n),
                        pos,
                    ));
                }
                if n == 65 && tertiary {
                    let enc = match spec.field(65).map(|d| d.encoding) {
                        Some(Encoding::HexAscii) => BitmapEncoding::HexAscii,
                        _ => BitmapEncoding::Binary,
                    };
                    words[2] = bitmap::read_word(data, pos, enc, 3)?;
                    self.bitmap = Bitmap::from_words(words);
                }
                // `rank` < MAX_DATA_FIELDS: each data field 2..=192 is visited at most once.
                if let (Some(slot), Some(number)) =
                    (self.ends.get_mut(rank), self.numbers.get_mut(rank))
                {
                    *slot = end as u32;
                    // Data fields are 2..=192.
                    *number = n as u8;
                }
                rank += 1;
                self.count = rank as u16;
                pos = end;
            }
        }
        if check_trailing && pos != data.len() {
            return Err(Error::new(
                ErrorKind::TrailingBytes {
                    count: data.len() - pos,
                },
                Part::Message,
                pos,
            ));
        }
        Ok(())
    }

    /// The spec the message was decoded with.
    pub fn spec(&self) -> &'a Spec {
        self.spec
    }

    /// The input bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The MTI as four ASCII digits (whatever its wire encoding).
    pub fn mti(&self) -> &str {
        core::str::from_utf8(&self.mti).unwrap_or_default()
    }

    /// The bitmap as read (including bit 1 and, for tertiary dialects, bit 65).
    pub fn bitmap(&self) -> Bitmap {
        self.bitmap
    }

    /// Whether field `n` was decoded (present in the bitmap, and reached before any error).
    pub fn has(&self, n: u16) -> bool {
        self.field(n).is_some()
    }

    /// The view of field `n`, if present and decoded. Field 1 (the secondary bitmap) is not a
    /// data field; read it through [`Message::bitmap`].
    #[inline]
    pub fn field(&self, n: u16) -> Option<Field<'a>> {
        if n < 2 || !self.bitmap.contains(n) {
            return None;
        }
        let rank = self.bitmap.rank(n);
        if rank >= self.count as usize {
            return None;
        }
        let start = match rank {
            0 => self.fields_start,
            r => *self.ends.get(r - 1)?,
        } as usize;
        let end = *self.ends.get(rank)? as usize;
        self.field_at(n, start, end)
    }

    /// The view of field `n`, which occupies `start..end` (prefix included).
    fn field_at(&self, n: u16, start: usize, end: usize) -> Option<Field<'a>> {
        let (def, c) = self.spec.def(n)?;
        let body_start = start + c.prefix_width as usize;
        Some(Field {
            number: n,
            def,
            prefix: self.data.get(start..body_start)?,
            body: self.data.get(body_start..end)?,
            offset: start,
        })
    }

    /// The decoded fields in ascending order.
    pub fn fields(&self) -> impl Iterator<Item = Field<'a>> + '_ {
        self.spans()
            .filter_map(move |(n, start, end)| self.field_at(u16::from(n), start, end))
    }

    /// Number of data fields decoded.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when the message has no data fields.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Checks the content of every decoded field against its data class, pad nibbles and hex
    /// digits. Returns the first problem.
    pub fn validate(&self) -> Result<()> {
        if self.content_passes() {
            Ok(())
        } else {
            self.first_content_error()
        }
    }

    /// Whether every decoded field's content passes, as fast as it can be told: one pass over
    /// [`spans`](Self::spans), where adjacent fields under the same quick check (an ASCII
    /// length prefix is digits, which all of them accept) are checked as one stretch of
    /// bytes. Only fields without a quick check (BCD, EBCDIC, the rarer classes) go through
    /// `validate::field`.
    fn content_passes(&self) -> bool {
        let spec = self.spec;
        let data = self.data;
        let mut good = true;
        let mut run = Run {
            start: 0,
            end: 0,
            check: Check::FREE,
        };
        for (number, field_start, end) in self.spans() {
            let c = *spec.compiled_at(number);
            let body_start = field_start + c.prefix_width as usize;
            let from = match c.scan {
                ScanPlan::Skip => continue,
                ScanPlan::RunFromPrefix => field_start,
                ScanPlan::RunFromBody => body_start,
                ScanPlan::Alone => {
                    let n = u16::from(number);
                    good &= crate::validate::quick_in(c.check, data, body_start, end)
                        || spec.field(n).is_none_or(|def| {
                            let body = data.get(body_start..end).unwrap_or_default();
                            let prefix = data.get(field_start..body_start).unwrap_or_default();
                            crate::validate::field(n, def, prefix, body, body_start).is_ok()
                        });
                    continue;
                }
            };
            if c.check == run.check && from == run.end {
                run.end = end;
            } else {
                good &= run.passes(data);
                run = Run {
                    start: from,
                    end,
                    check: c.check,
                };
            }
        }
        good && run.passes(data)
    }

    /// The first field whose content fails, field by field (after `content_passes` said one
    /// does).
    fn first_content_error(&self) -> Result<()> {
        let spec = self.spec;
        let data = self.data;
        for (number, field_start, end) in self.spans() {
            let (n, c) = (u16::from(number), *spec.compiled_at(number));
            let body_start = field_start + c.prefix_width as usize;
            // Decoding checked every end against the input and stopped at any undefined
            // field, so these lookups do not fail (`Message::field` skips them too).
            let Some(body) = data.get(body_start..end) else {
                continue;
            };
            if crate::validate::quick(c.check, body) {
                continue;
            }
            let (Some(def), Some(prefix)) = (spec.field(n), data.get(field_start..body_start))
            else {
                continue;
            };
            crate::validate::field(n, def, prefix, body, body_start)?;
        }
        Ok(())
    }

    /// The decoded fields in order as (number, offset of the prefix, end), from the numbers
    /// and ends `decode` recorded: each field starts where the previous one ended, so nothing
    /// is recomputed per field (no bitmap bit, rank or prefix).
    #[inline(always)]
    fn spans(&self) -> impl Iterator<Item = (u8, usize, usize)> + '_ {
        let count = self.count as usize;
        let numbers = self.numbers.get(..count).unwrap_or_default();
        let ends = self.ends.get(..count).unwrap_or_default();
        let mut next_start = self.fields_start as usize;
        numbers.iter().zip(ends).map(move |(&n, &end)| {
            let end = end as usize;
            (n, core::mem::replace(&mut next_start, end), end)
        })
    }
}

/// Adjacent bytes of the message under one quick content check.
struct Run {
    start: usize,
    end: usize,
    check: Check,
}

impl Run {
    #[inline(always)]
    fn passes(&self, data: &[u8]) -> bool {
        crate::validate::quick_in(self.check, data, self.start, self.end)
    }
}

fn read_mti(data: &[u8], enc: MtiEncoding, out: &mut [u8; 4]) -> Result<usize> {
    let width = match enc {
        MtiEncoding::Bcd => 2,
        MtiEncoding::Ascii | MtiEncoding::Ebcdic => 4,
    };
    let Some(bytes) = data.get(..width) else {
        return Err(Error::new(
            ErrorKind::Truncated {
                needed: width - data.len(),
            },
            Part::Mti,
            0,
        ));
    };
    match enc {
        MtiEncoding::Ascii => out.copy_from_slice(bytes),
        MtiEncoding::Ebcdic => {
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = b.wrapping_sub(0xF0).wrapping_add(b'0');
            }
        }
        MtiEncoding::Bcd => {
            for (i, o) in out.iter_mut().enumerate() {
                let byte = bytes[i / 2];
                let nib = if i.is_multiple_of(2) {
                    byte >> 4
                } else {
                    byte & 0xF
                };
                *o = if nib < 10 { b'0' + nib } else { 0 };
            }
        }
    }
    match out.iter().position(|c| !c.is_ascii_digit()) {
        None => Ok(width),
        Some(i) => Err(Error::new(
            ErrorKind::BadMti,
            Part::Mti,
            if enc == MtiEncoding::Bcd { i / 2 } else { i },
        )),
    }
}

/// Reads a length prefix at `pos`: its value (not yet checked against the maximum).
#[inline]
fn read_prefix(data: &[u8], pos: usize, c: Compiled, n: u16) -> Result<u32> {
    let width = c.prefix_width as usize;
    let Some(bytes) = data.get(pos..pos + width) else {
        return Err(Error::new(
            ErrorKind::Truncated {
                needed: pos + width - data.len(),
            },
            Part::Field(n),
            pos,
        ));
    };
    prefix_value(bytes, c.prefix).map_err(|(found, i)| {
        Error::new(
            ErrorKind::BadLengthPrefix { found },
            Part::Field(n),
            pos + i,
        )
    })
}

/// The value of a prefix's bytes, or the bad byte and its index.
#[inline]
fn prefix_value(bytes: &[u8], enc: PrefixEncoding) -> core::result::Result<u32, (u8, usize)> {
    let mut value = 0u32;
    match enc {
        PrefixEncoding::Ascii | PrefixEncoding::Ebcdic => {
            let zero = if enc == PrefixEncoding::Ascii {
                b'0'
            } else {
                0xF0
            };
            for (i, &b) in bytes.iter().enumerate() {
                let d = b.wrapping_sub(zero);
                if d > 9 {
                    return Err((b, i));
                }
                value = value * 10 + d as u32;
            }
        }
        PrefixEncoding::Bcd => {
            for (i, &b) in bytes.iter().enumerate() {
                let (hi, lo) = (b >> 4, b & 0xF);
                if hi > 9 || lo > 9 {
                    return Err((b, i));
                }
                value = value * 100 + (hi * 10 + lo) as u32;
            }
        }
        PrefixEncoding::Binary => {
            for &b in bytes {
                value = (value << 8) | b as u32;
            }
        }
        PrefixEncoding::HexAscii => {
            for (i, &b) in bytes.iter().enumerate() {
                let Some(d) = bitmap::hex_value(b) else {
                    return Err((b, i));
                };
                value = (value << 4) | d as u32;
            }
        }
    }
    Ok(value)
}

/// The value's length in units of its class (see [`Field::len`]), from the prefix as carried
/// and the body.
pub(crate) fn units(d: &FieldSpec, prefix: &[u8], body: &[u8]) -> usize {
    match d.length {
        Length::Fixed(n) => n as usize,
        Length::Var { .. } => {
            let p = prefix_value(prefix, d.prefix).unwrap_or(0) as usize;
            match (d.counts, d.encoding) {
                (Counts::Units, Encoding::Binary | Encoding::HexAscii) => p / 2,
                (Counts::Units, _) => p,
                (Counts::Bytes, Encoding::HexAscii) => body.len() / 2,
                (Counts::Bytes, Encoding::Bcd) => {
                    let full = body.len() * 2;
                    let pad_last = body.last().map(|b| b & 0xF) == Some(0xF);
                    let pad_first = body.first().map(|b| b >> 4) == Some(0xF);
                    match d.align {
                        Some(Align::Left) if pad_last => full - 1,
                        Some(Align::Right) if pad_first => full - 1,
                        _ => full,
                    }
                }
                (Counts::Bytes, _) => body.len(),
            }
        }
    }
}

/// A view of one decoded field.
#[derive(Clone, Copy)]
pub struct Field<'a> {
    number: u16,
    def: &'a FieldSpec,
    prefix: &'a [u8],
    body: &'a [u8],
    offset: usize,
}

impl fmt::Debug for Field<'_> {
    /// Shows the number, name and lengths only: values may be card data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Field")
            .field("number", &self.number)
            .field("name", &self.def.name)
            .field("offset", &self.offset)
            .field("wire_len", &self.body.len())
            .finish()
    }
}

impl<'a> Field<'a> {
    /// The field number.
    pub fn number(&self) -> u16 {
        self.number
    }

    /// The field's definition.
    pub fn spec(&self) -> &'a FieldSpec {
        self.def
    }

    /// The body bytes as carried (prefix excluded).
    pub fn raw(&self) -> &'a [u8] {
        self.body
    }

    /// The length-prefix bytes as carried (empty for fixed fields).
    pub fn prefix(&self) -> &'a [u8] {
        self.prefix
    }

    /// Byte offset of the field (its prefix) in the message.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Byte offset of the body in the message.
    pub fn body_offset(&self) -> usize {
        self.offset + self.prefix.len()
    }

    /// The value's length in units of its class: digits, characters or bytes.
    pub fn len(&self) -> usize {
        units(self.def, self.prefix, self.body)
    }

    /// True for an empty value.
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// The value as text, borrowed: for ASCII-encoded fields whose bytes are UTF-8.
    /// BCD, EBCDIC and binary fields give [`ErrorKind::NotText`]; use [`Field::digits`],
    /// `to_string()` or [`Field::binary`].
    pub fn as_str(&self) -> Result<&'a str> {
        if self.def.encoding != Encoding::Ascii {
            return Err(Error::new(
                ErrorKind::NotText,
                Part::Field(self.number),
                self.body_offset(),
            ));
        }
        core::str::from_utf8(self.body).map_err(|e| {
            let i = e.valid_up_to();
            Error::new(
                ErrorKind::WrongCharacter {
                    class: self.def.class,
                    found: self.body.get(i).copied().unwrap_or(0),
                },
                Part::Field(self.number),
                self.body_offset() + i,
            )
        })
    }

    /// The value's characters one by one, whatever the encoding: digits of BCD fields (the track
    /// separator nibble as `D`), translated EBCDIC, ASCII as carried, upper-case hex for binary.
    pub fn chars(&self) -> Chars<'a> {
        let d = self.def;
        let (start, end) = match d.encoding {
            Encoding::Bcd => {
                let units = self.len();
                let nibbles = self.body.len() * 2;
                match d.align {
                    Some(Align::Right) => (nibbles - units.min(nibbles), nibbles),
                    _ => (0, units.min(nibbles)),
                }
            }
            Encoding::Binary => (0, self.body.len() * 2),
            _ => (0, self.body.len()),
        };
        Chars {
            body: self.body,
            encoding: d.encoding,
            pos: start,
            end,
        }
    }

    /// The digits of a numeric field (`n`, `z`, `x+n` without its sign): same as
    /// [`Field::chars`], which it returns, with the sign of an `x+n` value skipped.
    pub fn digits(&self) -> Chars<'a> {
        let mut chars = self.chars();
        if self.def.class == DataClass::XN {
            chars.next();
        }
        chars
    }

    /// The value as an unsigned integer (numeric classes; leading zeros allowed).
    pub fn to_u64(&self) -> Result<u64> {
        let at = self.body_offset();
        let part = Part::Field(self.number);
        if !self.def.class.is_numeric() {
            return Err(Error::new(ErrorKind::WrongValueKind, part, at));
        }
        let mut value = 0u64;
        for c in self.digits() {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return Err(Error::new(
                    ErrorKind::WrongCharacter {
                        class: self.def.class,
                        found: c,
                    },
                    part,
                    at,
                ));
            }
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(d as u64))
                .ok_or(Error::new(ErrorKind::IntegerOverflow, part, at))?;
        }
        Ok(value)
    }

    /// The bytes of a binary field (raw, or decoded from hex-ASCII on the fly).
    pub fn binary(&self) -> Result<Binary<'a>> {
        let part = Part::Field(self.number);
        match self.def.encoding {
            Encoding::Binary => Ok(Binary::Raw(self.body)),
            Encoding::HexAscii => match self
                .body
                .iter()
                .position(|&c| bitmap::hex_value(c).is_none())
            {
                None => Ok(Binary::Hex(self.body)),
                Some(i) => Err(Error::new(
                    ErrorKind::BadHex {
                        found: self.body[i],
                    },
                    part,
                    self.body_offset() + i,
                )),
            },
            _ => Err(Error::new(
                ErrorKind::WrongValueKind,
                part,
                self.body_offset(),
            )),
        }
    }

    /// Checks the content against the field's class: digits, character classes, the sign of
    /// `x+n`, BCD nibbles and the pad nibble, hex digits.
    pub fn validate(&self) -> Result<()> {
        crate::validate::field(
            self.number,
            self.def,
            self.prefix,
            self.body,
            self.body_offset(),
        )
    }
}

impl fmt::Display for Field<'_> {
    /// The canonical text of the value: text as carried (EBCDIC translated), digits of BCD fields
    /// with the track separator as `D`, binary as upper-case hex. This is the form `posp-node msg
    /// decode` prints and the encoder accepts back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Ok(s) = self.as_str() {
            return f.write_str(s);
        }
        let mut buf = [0u8; 64];
        let mut n = 0;
        for c in self.chars() {
            buf[n] = c;
            n += 1;
            if n == buf.len() {
                write_latin1(f, &buf)?;
                n = 0;
            }
        }
        write_latin1(f, &buf[..n])
    }
}

fn write_latin1(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    match core::str::from_utf8(bytes) {
        Ok(s) => f.write_str(s),
        Err(_) => bytes
            .iter()
            .try_for_each(|&b| fmt::Write::write_char(f, b as char)),
    }
}

/// Iterator over the characters of a field value (see [`Field::chars`]).
#[derive(Clone, Debug)]
pub struct Chars<'a> {
    body: &'a [u8],
    encoding: Encoding,
    pos: usize,
    end: usize,
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

impl Chars<'_> {
    /// Keeps the characters from `start` to `end`, counted from the current position
    /// (the caller clamps both to the remaining length).
    pub(crate) fn narrow(&mut self, start: usize, end: usize) {
        let base = self.pos;
        self.end = base + end;
        self.pos = base + start;
    }
}

impl Iterator for Chars<'_> {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        if self.pos >= self.end {
            return None;
        }
        let i = self.pos;
        self.pos += 1;
        match self.encoding {
            Encoding::Bcd | Encoding::Binary => {
                let b = *self.body.get(i / 2)?;
                let nib = if i.is_multiple_of(2) { b >> 4 } else { b & 0xF };
                Some(HEX[nib as usize])
            }
            Encoding::Ascii | Encoding::HexAscii => {
                let c = *self.body.get(i)?;
                Some(if self.encoding == Encoding::HexAscii {
                    c.to_ascii_uppercase()
                } else {
                    c
                })
            }
            Encoding::Ebcdic037 | Encoding::Ebcdic1047 => {
                let page = self.encoding.code_page()?;
                Some(page.to_ascii(*self.body.get(i)?))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end.saturating_sub(self.pos);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Chars<'_> {}

impl fmt::Display for Chars<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.clone()
            .try_for_each(|c| fmt::Write::write_char(f, c as char))
    }
}

/// The bytes of a binary field: borrowed raw, or hex-ASCII decoded on the fly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary<'a> {
    /// Raw bytes.
    Raw(&'a [u8]),
    /// Hex-ASCII text (checked to be hex digits), two characters a byte.
    Hex(&'a [u8]),
}

impl<'a> Binary<'a> {
    /// Number of bytes.
    pub fn len(&self) -> usize {
        match self {
            Binary::Raw(b) => b.len(),
            Binary::Hex(h) => h.len() / 2,
        }
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, when they can be borrowed as they are.
    pub fn as_slice(&self) -> Option<&'a [u8]> {
        match self {
            Binary::Raw(b) => Some(b),
            Binary::Hex(_) => None,
        }
    }

    /// The bytes one by one.
    pub fn iter(&self) -> impl Iterator<Item = u8> + 'a {
        let (raw, hex) = match *self {
            Binary::Raw(b) => (b, &[][..]),
            Binary::Hex(h) => (&[][..], h),
        };
        raw.iter().copied().chain(hex.chunks_exact(2).map(|p| {
            let hi = bitmap::hex_value(p[0]).unwrap_or(0);
            let lo = bitmap::hex_value(p[1]).unwrap_or(0);
            hi << 4 | lo
        }))
    }

    /// Copies the bytes into `out` (which must be at least [`Binary::len`] long) and returns the
    /// filled part, or `None` when `out` is too small.
    pub fn copy_to<'o>(&self, out: &'o mut [u8]) -> Option<&'o [u8]> {
        let n = self.len();
        let dst = out.get_mut(..n)?;
        for (d, b) in dst.iter_mut().zip(self.iter()) {
            *d = b;
        }
        Some(dst)
    }

    /// The bytes in a new vector.
    pub fn to_vec(&self) -> alloc::vec::Vec<u8> {
        self.iter().collect()
    }
}
