//! Encoding: a [`MessageBuf`] of field values, written through a spec.
//!
//! A `MessageBuf` holds the MTI and a value per field: text, bytes or an integer ([`Value`]),
//! borrowed or owned. [`MessageBuf::encode`] checks every value against the spec (class,
//! length, padding), computes the bitmaps and writes the message into the caller's buffer
//! (`Vec<u8>` or `bytes::BytesMut`) without allocating anything else. On error the buffer is
//! left as it was and the error names the field and the output offset.
//!
//! How values map to fields:
//! - text classes take text (or bytes, which must be in the class) and integers (written in
//!   decimal);
//! - `n`, `z`, `x+n` take text of digits (`z` also `=` or `D` as the separator, `x+n` a leading
//!   `C`/`D`) or an integer;
//! - `b` takes bytes, or text read as hex digits (the form describe and `msg decode` print).
//!
//! Short values for fixed fields are padded when the spec allows it: numbers with leading zeros,
//! text with trailing spaces. Binary values are never padded.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::bitmap::{self, Bitmap, hex_value};
use crate::decode::Message;
use crate::error::{Error, ErrorKind, Part, Result};
use crate::spec::{
    Align, BitmapEncoding, Counts, DataClass, Encoding, FieldSpec, Length, MAX_FIELD, MtiEncoding,
    PrefixEncoding, Spec,
};
use crate::validate::all_in_class;

/// Where encoded bytes go: implemented for `Vec<u8>` and `bytes::BytesMut`.
pub trait Output {
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]);
    /// Appends one byte.
    fn put_byte(&mut self, byte: u8);
    /// Current length.
    fn len(&self) -> usize;
    /// True when empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Cuts back to `len` bytes (used to undo a failed encode).
    fn truncate(&mut self, len: usize);
}

impl Output for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    #[inline]
    fn put_byte(&mut self, byte: u8) {
        self.push(byte);
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len);
    }
}

impl Output for bytes::BytesMut {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    #[inline]
    fn put_byte(&mut self, byte: u8) {
        self.extend_from_slice(&[byte]);
    }
    fn len(&self) -> usize {
        bytes::BytesMut::len(self)
    }
    fn truncate(&mut self, len: usize) {
        bytes::BytesMut::truncate(self, len);
    }
}

/// A field value for encoding.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Value<'v> {
    /// Text: characters of a text field, digits of a numeric one, hex digits of a binary one.
    Text(Cow<'v, str>),
    /// Raw bytes: the bytes of a binary field, or the characters of a text field.
    Bytes(Cow<'v, [u8]>),
    /// An unsigned integer, for numeric and text fields.
    Int(u64),
}

impl fmt::Debug for Value<'_> {
    /// Shows the kind and length only: values may be card data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(t) => write!(f, "Text(len {})", t.len()),
            Value::Bytes(b) => write!(f, "Bytes(len {})", b.len()),
            Value::Int(_) => f.write_str("Int"),
        }
    }
}

impl<'v> From<&'v str> for Value<'v> {
    fn from(s: &'v str) -> Self {
        Value::Text(Cow::Borrowed(s))
    }
}

impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::Text(Cow::Owned(s))
    }
}

impl<'v> From<&'v [u8]> for Value<'v> {
    fn from(b: &'v [u8]) -> Self {
        Value::Bytes(Cow::Borrowed(b))
    }
}

impl<'v, const N: usize> From<&'v [u8; N]> for Value<'v> {
    fn from(b: &'v [u8; N]) -> Self {
        Value::Bytes(Cow::Borrowed(b))
    }
}

impl From<Vec<u8>> for Value<'_> {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(Cow::Owned(b))
    }
}

impl From<u64> for Value<'_> {
    fn from(i: u64) -> Self {
        Value::Int(i)
    }
}

impl From<u32> for Value<'_> {
    fn from(i: u32) -> Self {
        Value::Int(i as u64)
    }
}

impl Value<'_> {
    /// An owned copy that borrows nothing.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Text(t) => Value::Text(Cow::Owned(t.into_owned())),
            Value::Bytes(b) => Value::Bytes(Cow::Owned(b.into_owned())),
            Value::Int(i) => Value::Int(i),
        }
    }
}

/// A message to encode: an MTI and field values, kept in field order.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct MessageBuf<'v> {
    mti: [u8; 4],
    fields: Vec<(u16, Value<'v>)>,
}

impl fmt::Debug for MessageBuf<'_> {
    /// Shows the MTI and the field numbers only: values may be card data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageBuf")
            .field("mti", &self.mti())
            .field(
                "fields",
                &self.fields.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<'v> MessageBuf<'v> {
    /// A message with the given MTI (four decimal digits) and no fields.
    pub fn new(mti: &str) -> Result<Self> {
        let mut m = MessageBuf::default();
        m.set_mti(mti)?;
        Ok(m)
    }

    /// The MTI.
    pub fn mti(&self) -> &str {
        core::str::from_utf8(&self.mti).unwrap_or_default()
    }

    /// Replaces the MTI (four decimal digits).
    pub fn set_mti(&mut self, mti: &str) -> Result<&mut Self> {
        let bytes = mti.as_bytes();
        match <[u8; 4]>::try_from(bytes) {
            Ok(m) if m.iter().all(u8::is_ascii_digit) => {
                self.mti = m;
                Ok(self)
            }
            _ => Err(Error::new(ErrorKind::BadMti, Part::Mti, 0)),
        }
    }

    /// Sets field `n` (replacing any previous value). Fields 1 and (in tertiary dialects) 65 are
    /// bitmaps: the encoder computes them and ignores values set there.
    pub fn set(&mut self, n: u16, value: impl Into<Value<'v>>) -> &mut Self {
        let value = value.into();
        match self.fields.binary_search_by_key(&n, |(k, _)| *k) {
            Ok(i) => {
                if let Some(slot) = self.fields.get_mut(i) {
                    slot.1 = value;
                }
            }
            Err(i) => self.fields.insert(i, (n, value)),
        }
        self
    }

    /// The value of field `n`.
    pub fn get(&self, n: u16) -> Option<&Value<'v>> {
        self.fields
            .binary_search_by_key(&n, |(k, _)| *k)
            .ok()
            .and_then(|i| self.fields.get(i))
            .map(|(_, v)| v)
    }

    /// Removes field `n`, returning its value.
    pub fn remove(&mut self, n: u16) -> Option<Value<'v>> {
        let i = self.fields.binary_search_by_key(&n, |(k, _)| *k).ok()?;
        Some(self.fields.remove(i).1)
    }

    /// The fields in ascending order.
    pub fn fields(&self) -> impl Iterator<Item = (u16, &Value<'v>)> + '_ {
        self.fields.iter().map(|(n, v)| (*n, v))
    }

    /// An owned copy that borrows nothing.
    pub fn into_owned(self) -> MessageBuf<'static> {
        MessageBuf {
            mti: self.mti,
            fields: self
                .fields
                .into_iter()
                .map(|(n, v)| (n, v.into_owned()))
                .collect(),
        }
    }

    /// The bitmap the message will carry under `spec` (bitmap bits included).
    pub fn bitmap(&self, spec: &Spec) -> Bitmap {
        let mut b = Bitmap::new();
        for &(n, _) in &self.fields {
            if !spec.is_bitmap_field(n) {
                b.set(n);
            }
        }
        if self.fields.iter().any(|&(n, _)| n > 64) {
            b.set(1);
        }
        if spec.tertiary_bitmap() && self.fields.iter().any(|&(n, _)| n > 128) {
            b.set(65);
        }
        b
    }

    /// Encodes the message into `out` and returns the number of bytes written. On error `out`
    /// is left as it was.
    pub fn encode(&self, spec: &Spec, out: &mut impl Output) -> Result<usize> {
        let start = out.len();
        match self.encode_inner(spec, out, start) {
            Ok(()) => Ok(out.len() - start),
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// Encodes into a new vector.
    pub fn to_vec(&self, spec: &Spec) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(256);
        self.encode(spec, &mut out)?;
        Ok(out)
    }

    fn encode_inner(&self, spec: &Spec, out: &mut impl Output, start: usize) -> Result<()> {
        write_mti(out, &self.mti, spec.mti_encoding());
        let bitmap = self.bitmap(spec);
        let words = bitmap.words();
        let enc = spec.bitmap_encoding();
        bitmap::write_word(out, words[0], enc);
        if bitmap.contains(1) {
            bitmap::write_word(out, words[1], enc);
        }
        let tertiary = spec.tertiary_bitmap();
        let mut wrote_65 = false;
        for (n, value) in &self.fields {
            let n = *n;
            if n == 1 {
                continue;
            }
            if tertiary && n >= 65 && !wrote_65 && bitmap.contains(65) {
                write_tertiary(spec, out, words[2], start)?;
                wrote_65 = true;
            }
            if tertiary && n == 65 {
                continue;
            }
            let Some(def) = spec.field(n).filter(|_| n <= MAX_FIELD) else {
                return Err(Error::new(
                    ErrorKind::UndefinedField,
                    Part::Field(n),
                    out.len() - start,
                ));
            };
            field(n, def, value, out, start)?;
        }
        Ok(())
    }
}

fn write_tertiary(spec: &Spec, out: &mut impl Output, word: u64, start: usize) -> Result<()> {
    let enc = match spec.field(65).map(|d| d.encoding) {
        Some(Encoding::HexAscii) => BitmapEncoding::HexAscii,
        Some(_) => BitmapEncoding::Binary,
        None => {
            return Err(Error::new(
                ErrorKind::UndefinedField,
                Part::Field(65),
                out.len() - start,
            ));
        }
    };
    bitmap::write_word(out, word, enc);
    Ok(())
}

fn write_mti(out: &mut impl Output, mti: &[u8; 4], enc: MtiEncoding) {
    match enc {
        MtiEncoding::Ascii => out.put(mti),
        MtiEncoding::Ebcdic => {
            for &c in mti {
                out.put_byte(c - b'0' + 0xF0);
            }
        }
        MtiEncoding::Bcd => {
            out.put_byte(((mti[0] - b'0') << 4) | (mti[1] - b'0'));
            out.put_byte(((mti[2] - b'0') << 4) | (mti[3] - b'0'));
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Writes a length prefix of `digits` L's holding `value` (already checked to fit).
fn write_prefix(out: &mut impl Output, enc: PrefixEncoding, digits: u8, value: usize) {
    let mut buf = [0u8; 4];
    let digits = digits as usize;
    match enc {
        PrefixEncoding::Ascii | PrefixEncoding::Ebcdic => {
            let zero = if enc == PrefixEncoding::Ascii {
                b'0'
            } else {
                0xF0
            };
            let mut v = value;
            for slot in buf[..digits].iter_mut().rev() {
                *slot = zero + (v % 10) as u8;
                v /= 10;
            }
            out.put(&buf[..digits]);
        }
        PrefixEncoding::HexAscii => {
            let mut v = value;
            for slot in buf[..digits].iter_mut().rev() {
                *slot = HEX[v % 16];
                v /= 16;
            }
            out.put(&buf[..digits]);
        }
        PrefixEncoding::Bcd => {
            let width = digits.div_ceil(2);
            let mut v = value;
            for slot in buf[..width].iter_mut().rev() {
                let lo = (v % 10) as u8;
                v /= 10;
                let hi = (v % 10) as u8;
                v /= 10;
                *slot = (hi << 4) | lo;
            }
            out.put(&buf[..width]);
        }
        PrefixEncoding::Binary => {
            if digits <= 2 {
                out.put_byte(value as u8);
            } else {
                out.put(&(value as u16).to_be_bytes());
            }
        }
    }
}

/// Formats an integer in decimal into `buf`, returning the digits.
fn itoa(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Checks a length against the field and returns (units to pad, prefix value if variable).
fn check_length(
    n: u16,
    def: &FieldSpec,
    len: usize,
    may_pad: bool,
    at: usize,
) -> Result<(usize, Option<usize>)> {
    let part = Part::Field(n);
    match def.length {
        Length::Fixed(f) => {
            let f = f as usize;
            if len > f {
                Err(Error::new(
                    ErrorKind::OverMaximum {
                        length: len,
                        max: f,
                    },
                    part,
                    at,
                ))
            } else if len < f && !may_pad {
                Err(Error::new(
                    ErrorKind::TooShort {
                        length: len,
                        expected: f,
                    },
                    part,
                    at,
                ))
            } else {
                Ok((f - len, None))
            }
        }
        Length::Var { max, .. } => {
            if len > max as usize {
                return Err(Error::new(
                    ErrorKind::OverMaximum {
                        length: len,
                        max: max as usize,
                    },
                    part,
                    at,
                ));
            }
            let p = match (def.counts, def.encoding) {
                (Counts::Bytes, _) => def.wire_len(len),
                (Counts::Units, Encoding::Binary | Encoding::HexAscii) => 2 * len,
                (Counts::Units, _) => len,
            };
            Ok((0, Some(p)))
        }
    }
}

/// Encodes one field (prefix and body).
fn field(
    n: u16,
    def: &FieldSpec,
    value: &Value<'_>,
    out: &mut impl Output,
    start: usize,
) -> Result<()> {
    let at = out.len() - start;
    let part = Part::Field(n);
    let prefix_digits = match def.length {
        Length::Var { prefix, .. } => prefix,
        Length::Fixed(_) => 0,
    };
    if def.class == DataClass::B {
        let (raw, hex): (&[u8], &[u8]) = match value {
            Value::Bytes(b) => (b, &[]),
            Value::Text(t) => {
                let t = t.as_bytes();
                if let Some(i) = t.iter().position(|&c| hex_value(c).is_none()) {
                    return Err(Error::new(ErrorKind::BadHex { found: t[i] }, part, at));
                }
                if t.len() % 2 == 1 {
                    return Err(Error::new(
                        ErrorKind::OddNibbleCount { length: t.len() },
                        part,
                        at,
                    ));
                }
                (&[], t)
            }
            Value::Int(_) => return Err(Error::new(ErrorKind::WrongValueKind, part, at)),
        };
        let len = raw.len() + hex.len() / 2;
        let (_, p) = check_length(n, def, len, false, at)?;
        if let Some(p) = p {
            write_prefix(out, def.prefix, prefix_digits, p);
        }
        match def.encoding {
            Encoding::HexAscii => {
                for &b in raw {
                    out.put(&[HEX[(b >> 4) as usize], HEX[(b & 0xF) as usize]]);
                }
                for &c in hex {
                    out.put_byte(c.to_ascii_uppercase());
                }
            }
            _ => {
                out.put(raw);
                for pair in hex.chunks_exact(2) {
                    let hi = hex_value(pair[0]).unwrap_or(0);
                    let lo = hex_value(pair[1]).unwrap_or(0);
                    out.put_byte((hi << 4) | lo);
                }
            }
        }
        return Ok(());
    }

    let mut ibuf = [0u8; 20];
    let (text, is_int): (&[u8], bool) = match value {
        Value::Text(t) => (t.as_bytes(), false),
        Value::Bytes(b) => (b, false),
        Value::Int(i) => (itoa(*i, &mut ibuf), true),
    };
    if !all_in_class(def.class, text) {
        let i = text
            .iter()
            .position(|&c| !def.class.accepts(c))
            .unwrap_or(0);
        return Err(Error::new(
            ErrorKind::WrongCharacter {
                class: def.class,
                found: text.get(i).copied().unwrap_or(0),
            },
            part,
            at + i,
        ));
    }
    let (pad, p) = check_length(n, def, text.len(), def.pad_short || is_int, at)?;
    if let Some(p) = p {
        write_prefix(out, def.prefix, prefix_digits, p);
    }
    let numeric = def.class.is_numeric() || is_int;
    match def.encoding {
        Encoding::Ascii => {
            if numeric {
                put_repeat(out, b'0', pad);
                out.put(text);
            } else {
                out.put(text);
                put_repeat(out, b' ', pad);
            }
        }
        Encoding::Ebcdic037 | Encoding::Ebcdic1047 => {
            let Some(page) = def.encoding.code_page() else {
                return Ok(());
            };
            if numeric {
                put_repeat(out, page.from_ascii(b'0'), pad);
            }
            for &c in text {
                out.put_byte(page.from_ascii(c));
            }
            if !numeric {
                put_repeat(out, page.from_ascii(b' '), pad);
            }
        }
        Encoding::Bcd => {
            let digits = pad + text.len();
            let pad_nib = def.pad.value();
            let left_pad = digits % 2 == 1 && def.align == Some(Align::Right);
            let right_pad = digits % 2 == 1 && !left_pad;
            let nibbles = core::iter::once(pad_nib)
                .take(left_pad as usize)
                .chain(core::iter::repeat_n(0, pad))
                .chain(text.iter().map(|&c| match c {
                    b'=' | b'D' => 0xD,
                    c => c - b'0',
                }))
                .chain(core::iter::once(pad_nib).take(right_pad as usize));
            let mut hi = None;
            for nib in nibbles {
                match hi.take() {
                    None => hi = Some(nib),
                    Some(h) => out.put_byte((h << 4) | nib),
                }
            }
        }
        Encoding::Binary | Encoding::HexAscii => {}
    }
    Ok(())
}

#[inline]
fn put_repeat(out: &mut impl Output, byte: u8, count: usize) {
    const CHUNK: usize = 32;
    let buf = [byte; CHUNK];
    let mut left = count;
    while left > 0 {
        let k = left.min(CHUNK);
        out.put(&buf[..k]);
        left -= k;
    }
}

impl<'a> Message<'a> {
    /// The message's values as a [`MessageBuf`], borrowing wherever the wire form is already
    /// the value (ASCII text, raw binary). `decode(encode(m)).to_buf() == m` for every valid
    /// message whose fixed-length values are given at full length.
    pub fn to_buf(&self) -> MessageBuf<'a> {
        let mut fields = Vec::with_capacity(self.len());
        for f in self.fields() {
            if self.spec().is_bitmap_field(f.number()) {
                continue;
            }
            let value = if f.spec().class == DataClass::B {
                match f.binary() {
                    Ok(b) => match b.as_slice() {
                        Some(s) => Value::Bytes(Cow::Borrowed(s)),
                        None => Value::Bytes(Cow::Owned(b.to_vec())),
                    },
                    Err(_) => Value::Bytes(Cow::Borrowed(f.raw())),
                }
            } else if let Ok(s) = f.as_str() {
                Value::Text(Cow::Borrowed(s))
            } else if f.spec().encoding == Encoding::Ascii {
                // Text that is not UTF-8 (GBK merchant names, say) stays the bytes it is.
                Value::Bytes(Cow::Borrowed(f.raw()))
            } else {
                let chars: Vec<u8> = f.chars().collect();
                match String::from_utf8(chars) {
                    Ok(text) if text.is_ascii() => Value::Text(Cow::Owned(text)),
                    Ok(text) => Value::Bytes(Cow::Owned(text.into_bytes())),
                    Err(e) => Value::Bytes(Cow::Owned(e.into_bytes())),
                }
            };
            fields.push((f.number(), value));
        }
        let mut mti = [0u8; 4];
        mti.copy_from_slice(self.mti().as_bytes().get(..4).unwrap_or(b"0000"));
        MessageBuf { mti, fields }
    }
}
