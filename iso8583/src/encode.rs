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
    Align, BitmapEncoding, Compiled, Counts, DataClass, Encoding, FastEncode, FieldSpec, Length,
    MAX_FIELD, MtiEncoding, PrefixEncoding, Spec,
};
use crate::validate::{self, all_hex, all_in_class};

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

/// The fields [`MessageBuf::new`] makes room for: a financial request or response of the
/// common dialects carries 12 to 20 (growing from empty took three reallocations).
const TYPICAL_FIELDS: usize = 20;

/// A message to encode: an MTI and field values, kept in field order.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct MessageBuf<'v> {
    mti: [u8; 4],
    fields: Vec<(u16, Value<'v>)>,
    /// The numbers in `fields` (1..=192; others set nothing), kept up to date by `set` and
    /// `remove` so that encoding does not walk the fields for the bitmap.
    present: Bitmap,
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
    /// A message with the given MTI (four decimal digits) and no fields, with room for 20
    /// fields before the first reallocation.
    pub fn new(mti: &str) -> Result<Self> {
        let mut m = MessageBuf {
            fields: Vec::with_capacity(TYPICAL_FIELDS),
            ..MessageBuf::default()
        };
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
            Err(i) => {
                self.fields.insert(i, (n, value));
                self.present.set(n);
            }
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
        self.present.clear(n);
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
            present: self.present,
            fields: self
                .fields
                .into_iter()
                .map(|(n, v)| (n, v.into_owned()))
                .collect(),
        }
    }

    /// The bitmap the message will carry under `spec` (bitmap bits included).
    pub fn bitmap(&self, spec: &Spec) -> Bitmap {
        let mut words = self.present.words();
        // Bits 1 and (tertiary) 65 say whether later words follow, whatever was set there.
        words[0] &= !(1 << 63);
        let tertiary = spec.tertiary_bitmap();
        if tertiary {
            words[1] &= !(1 << 63);
        }
        let highest = self.fields.last().map_or(0, |&(n, _)| n);
        let mut b = Bitmap::from_words(words);
        if highest > 64 {
            b.set(1);
        }
        if tertiary && highest > 128 {
            b.set(65);
        }
        b
    }

    /// Encodes the message into `out` and returns the number of bytes written. On error `out`
    /// is left as it was.
    pub fn encode(&self, spec: &Spec, out: &mut impl Output) -> Result<usize> {
        let start = out.len();
        // Pieces are gathered in a stack block and handed to `out` a block at a time: most are
        // a few bytes (a prefix, a date), and appending each to a `Vec` cost a capacity check
        // and a call to `memcpy`.
        let mut staged = Staged::new(out);
        match self.encode_inner(spec, &mut staged, start) {
            Ok(()) => {
                staged.flush();
                Ok(out.len() - start)
            }
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

    fn encode_inner<O: Output>(
        &self,
        spec: &Spec,
        out: &mut Staged<'_, O>,
        start: usize,
    ) -> Result<()> {
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
            let c = spec.compiled(n);
            if fast_field(c, value, out) {
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

/// Encodes the common cases without the field's full definition, from its compiled form: text
/// for an ASCII `n`, `z`, `an` or `ans` field that needs no padding, bytes for a hex-ASCII `b` field,
/// with an ASCII length prefix if any. Returns false, having written nothing, for everything
/// else and for any value that `field` would pad or refuse: `field` then does the work and
/// reports the error.
#[inline(always)]
fn fast_field<O: Output>(c: Compiled, value: &Value<'_>, out: &mut Staged<'_, O>) -> bool {
    // Which fields qualify (defined, fixed or with an ASCII prefix, a plain text class or
    // hex-ASCII bytes) is decided when the spec is compiled.
    let (bytes, hex) = match (c.fast, value) {
        (FastEncode::Text, Value::Text(t)) => (t.as_bytes(), false),
        (FastEncode::Text, Value::Bytes(b)) => (&b[..], false),
        (FastEncode::Hex, Value::Bytes(b)) => (&b[..], true),
        _ => return false,
    };
    // Wire length, which for these encodings is also the prefix value and what the compiled
    // maximum is in (hex characters for a hex-ASCII field, counted in units or in bytes).
    let wire = if hex { 2 * bytes.len() } else { bytes.len() };
    let fits = if c.var {
        wire <= c.max_value as usize
    } else {
        wire == c.fixed_wire as usize
    };
    if !fits || !(hex || validate::quick(c.check, bytes)) {
        return false;
    }
    if c.var {
        // At most 4 digits (the compiled maximum fits the prefix).
        let v = wire as u32;
        let digits = [v / 1000 % 10, v / 100 % 10, v / 10 % 10, v % 10].map(|d| b'0' + d as u8);
        let width = (c.prefix_width as u32).clamp(1, 4);
        // Left-aligned, so that the prefix is the first `width` bytes.
        out.put_prefix(
            (u32::from_be_bytes(digits) << (8 * (4 - width))).to_be_bytes(),
            width as usize,
        );
    }
    if hex {
        out.put_hex(bytes);
    } else {
        out.put(bytes);
    }
    true
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
                if !all_hex(t)
                    && let Some(i) = t.iter().position(|&c| hex_value(c).is_none())
                {
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
                put_hex(out, raw);
                put_upper(out, hex);
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

/// Appends `raw` as upper-case hex, two characters a byte. The characters are made 16 bytes
/// at a time (fixed-length loops over 16-bit lanes, which the compiler turns into vector
/// arithmetic; see [`hex_block`]) and appended 128 at a time: field 55 of a chip transaction is 150 to 250 bytes.
/// A length that is not a multiple of 16 ends with one more block over the last 16 bytes, of
/// which only the characters not yet written are appended.
fn put_hex(out: &mut impl Output, raw: &[u8]) {
    let (blocks, tail) = raw.as_chunks::<16>();
    let mut buf = [0u8; 128];
    for group in blocks.chunks(4) {
        for (src, dst) in group.iter().zip(buf.as_chunks_mut::<32>().0) {
            hex_block(src, dst);
        }
        out.put(buf.get(..group.len() * 32).unwrap_or_default());
    }
    if !tail.is_empty() {
        let (chars, from, to) = tail_chars(raw, tail.len());
        out.put(chars.get(from..to).unwrap_or_default());
    }
}

/// The characters of the last `tail` (under 16) bytes of `raw`: a block made from the last 16
/// bytes (or the tail alone, zero-filled, when `raw` is shorter) and the range of it to append.
fn tail_chars(raw: &[u8], tail: usize) -> ([u8; 32], usize, usize) {
    let mut last = [0u8; 16];
    let (src, skip) = match raw.last_chunk::<16>() {
        Some(src) => (src, 16 - tail),
        None => {
            if let (Some(dst), Some(src)) = (last.get_mut(..tail), raw.get(raw.len() - tail..)) {
                dst.copy_from_slice(src);
            }
            (&last, 0)
        }
    };
    let mut chars = [0u8; 32];
    hex_block(src, &mut chars);
    (chars, 2 * skip, 2 * (skip + tail))
}

#[inline(always)]
fn hex_block(src: &[u8; 16], dst: &mut [u8; 32]) {
    // Each byte widened to a 16-bit lane holding its two nibbles in output order (high nibble
    // in the low byte, as little-endian stores it first), then the digit rule on both bytes
    // of the lane at once: adding 0x76 sets bit 7 of a byte exactly when its nibble is above
    // 9, and no byte carries into the next (15 + 0x76 < 0x100). One lane width throughout,
    // so the loop becomes plain 16-bit vector arithmetic (byte lanes had needed emulated
    // byte shifts).
    let mut lanes = [0u16; 16];
    for i in 0..16 {
        let b = src[i] as u16;
        let v = (b >> 4) | ((b & 0xF) << 8);
        let above9 = ((v + 0x7676) >> 7) & 0x0101;
        lanes[i] = v + 0x3030 + above9 * 7;
    }
    for i in 0..16 {
        dst[2 * i] = lanes[i] as u8;
        dst[2 * i + 1] = (lanes[i] >> 8) as u8;
    }
}

/// Appends hex text upper-cased, 128 characters at a time.
fn put_upper(out: &mut impl Output, text: &[u8]) {
    let mut buf = [0u8; 128];
    for chunk in text.chunks(128) {
        for (d, &c) in buf.iter_mut().zip(chunk) {
            *d = c.to_ascii_uppercase();
        }
        out.put(buf.get(..chunk.len()).unwrap_or_default());
    }
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

/// Bytes on their way to an [`Output`]: appended to a stack block, which goes to the output
/// when full and at the end. Small pieces are copied with fixed-size moves (overlapping for
/// lengths in between), not a call to `memcpy` each.
struct Staged<'o, O: Output> {
    out: &'o mut O,
    buf: [u8; STAGE],
    used: usize,
}

const STAGE: usize = 512;

impl<'o, O: Output> Staged<'o, O> {
    fn new(out: &'o mut O) -> Self {
        Staged {
            out,
            buf: [0; STAGE],
            used: 0,
        }
    }

    /// Hands the staged bytes to the output.
    fn flush(&mut self) {
        self.out.put(self.buf.get(..self.used).unwrap_or_default());
        self.used = 0;
    }

    #[cold]
    fn put_large(&mut self, bytes: &[u8]) {
        self.flush();
        if bytes.len() >= STAGE / 2 {
            self.out.put(bytes);
        } else if let Some(dst) = self.buf.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
            self.used = bytes.len();
        }
    }
}

impl<O: Output> Staged<'_, O> {
    /// Appends the first `width` (1 to 4) of `bytes` with one 4-byte move.
    #[inline(always)]
    fn put_prefix(&mut self, bytes: [u8; 4], width: usize) {
        match self
            .buf
            .get_mut(self.used..)
            .and_then(|d| d.first_chunk_mut::<4>())
        {
            Some(dst) => {
                *dst = bytes;
                self.used += width.min(4);
            }
            None => self.put_large(bytes.get(..width).unwrap_or_default()),
        }
    }

    /// Appends `raw` as upper-case hex (see [`put_hex`]), writing the characters of each
    /// 16-byte block straight into the stage.
    fn put_hex(&mut self, raw: &[u8]) {
        let (blocks, tail) = raw.as_chunks::<16>();
        for src in blocks {
            if let Some(dst) = self
                .buf
                .get_mut(self.used..)
                .and_then(|d| d.first_chunk_mut::<32>())
            {
                hex_block(src, dst);
                self.used += 32;
            } else {
                let mut chars = [0u8; 32];
                hex_block(src, &mut chars);
                self.put_large(&chars);
            }
        }
        if tail.is_empty() {
            return;
        }
        // The last 16 bytes again, their characters written over the ones just written for the
        // overlap (the same characters) when those are still in the stage.
        let back = 2 * (16 - tail.len());
        if let (Some(src), Some(at)) = (raw.last_chunk::<16>(), self.used.checked_sub(back))
            && let Some(dst) = self
                .buf
                .get_mut(at..)
                .and_then(|d| d.first_chunk_mut::<32>())
        {
            hex_block(src, dst);
            self.used = at + 32;
            return;
        }
        // Under 16 bytes (a PIN block, a MAC): gathered into one block with fixed-size moves
        // and converted in place; the characters past the end are left for later pieces to
        // overwrite.
        let n = tail.len();
        if raw.len() == n
            && let Some(dst) = self
                .buf
                .get_mut(self.used..)
                .and_then(|d| d.first_chunk_mut::<32>())
        {
            let mut src = [0u8; 16];
            if let (Some(first), Some(last)) = (raw.first_chunk::<8>(), raw.last_chunk::<8>()) {
                src[..8].copy_from_slice(first);
                src[n - 8..n].copy_from_slice(last);
            } else if let (Some(first), Some(last)) =
                (raw.first_chunk::<4>(), raw.last_chunk::<4>())
            {
                src[..4].copy_from_slice(first);
                src[n - 4..n].copy_from_slice(last);
            } else {
                for (d, &b) in src.iter_mut().zip(raw) {
                    *d = b;
                }
            }
            hex_block(&src, dst);
            self.used += 2 * n;
            return;
        }
        let (chars, from, to) = tail_chars(raw, tail.len());
        self.put(chars.get(from..to).unwrap_or_default());
    }
}

impl<O: Output> Output for Staged<'_, O> {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        let Some(dst) = self.buf.get_mut(self.used..).filter(|d| d.len() >= n) else {
            self.put_large(bytes);
            return;
        };
        // Two fixed-size moves, overlapping in the middle, for anything up to 64 bytes.
        if let (Some(first), Some(last), true) =
            (bytes.first_chunk::<32>(), bytes.last_chunk::<32>(), n <= 64)
        {
            dst[..32].copy_from_slice(first);
            dst[n - 32..n].copy_from_slice(last);
        } else if let (Some(first), Some(last)) =
            (bytes.first_chunk::<16>(), bytes.last_chunk::<16>())
            && n < 32
        {
            dst[..16].copy_from_slice(first);
            dst[n - 16..n].copy_from_slice(last);
        } else if let (Some(first), Some(last)) =
            (bytes.first_chunk::<8>(), bytes.last_chunk::<8>())
            && n < 16
        {
            dst[..8].copy_from_slice(first);
            dst[n - 8..n].copy_from_slice(last);
        } else if let (Some(first), Some(last)) =
            (bytes.first_chunk::<4>(), bytes.last_chunk::<4>())
            && n < 8
        {
            dst[..4].copy_from_slice(first);
            dst[n - 4..n].copy_from_slice(last);
        } else if n < 4 {
            // One to three bytes: the first, the middle and the last are all of them.
            if let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) {
                let middle = bytes.get(n / 2).copied().unwrap_or(first);
                dst[0] = first;
                dst[n / 2] = middle;
                dst[n - 1] = last;
            }
        } else {
            dst[..n].copy_from_slice(bytes);
        }
        self.used += n;
    }

    #[inline(always)]
    fn put_byte(&mut self, byte: u8) {
        match self.buf.get_mut(self.used) {
            Some(slot) => {
                *slot = byte;
                self.used += 1;
            }
            None => self.put_large(&[byte]),
        }
    }

    fn len(&self) -> usize {
        self.out.len() + self.used
    }

    fn truncate(&mut self, len: usize) {
        let flushed = self.out.len();
        if len >= flushed {
            self.used = self.used.min(len - flushed);
        } else {
            self.out.truncate(len);
            self.used = 0;
        }
    }
}

impl<'a> Message<'a> {
    /// The message's values as a [`MessageBuf`], borrowing wherever the wire form is already
    /// the value (ASCII text, raw binary). `decode(encode(m)).to_buf() == m` for every valid
    /// message whose fixed-length values are given at full length.
    pub fn to_buf(&self) -> MessageBuf<'a> {
        // Room for a few more: the usual next step sets fields (a response's, a forwarded
        // request's own).
        let mut fields = Vec::with_capacity(self.len() + 4);
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
        let mut present = Bitmap::new();
        for &(n, _) in &fields {
            present.set(n);
        }
        MessageBuf {
            mti,
            fields,
            present,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_reference(raw: &[u8]) -> Vec<u8> {
        raw.iter()
            .flat_map(|&b| [HEX[(b >> 4) as usize], HEX[(b & 0xF) as usize]])
            .collect()
    }

    #[test]
    fn put_hex_at_every_length() {
        let raw: Vec<u8> = (0..300u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in 0..raw.len() {
            let mut out = b"xy".to_vec();
            put_hex(&mut out, &raw[..len]);
            assert_eq!(out[..2], *b"xy");
            assert_eq!(out[2..], hex_reference(&raw[..len]), "length {len}");
        }
        for len in 0..raw.len() {
            let mut out = b"xy".to_vec();
            let mut staged = Staged::new(&mut out);
            staged.put(&raw[..len % 250]);
            staged.put_hex(&raw[..len]);
            // Characters converted past the end must not show: the next piece goes right after.
            staged.put_byte(b'!');
            staged.flush();
            let expected = [
                &b"xy"[..],
                &raw[..len % 250],
                &hex_reference(&raw[..len]),
                b"!",
            ]
            .concat();
            assert_eq!(out, expected, "length {len}");
        }
        let mut out = Vec::new();
        put_hex(&mut out, &[0x00, 0x09, 0x0A, 0x0F, 0x90, 0xA0, 0xF0, 0xFF]);
        assert_eq!(out, b"00090A0F90A0F0FF");
    }

    /// The bitmap follows `set` and `remove`, and ignores values set on the bitmap fields.
    #[test]
    fn bitmap_follows_set_and_remove() {
        let spec = crate::specs::iso87_ascii();
        let mut m = MessageBuf::new("0800").unwrap();
        m.set(11, "000001").set(70, "301").set(7, "1128113245");
        assert_eq!(m.bitmap(spec).iter().collect::<Vec<_>>(), [1, 7, 11, 70]);
        assert_eq!(
            m.to_vec(spec).unwrap(),
            b"0800822000000000000004000000000000001128113245000001301"
        );
        assert_eq!(m.remove(70), Some(Value::Text(Cow::Borrowed("301"))));
        assert_eq!(m.remove(70), None);
        assert_eq!(m.bitmap(spec).iter().collect::<Vec<_>>(), [7, 11]);
        assert_eq!(
            m.to_vec(spec).unwrap(),
            b"080002200000000000001128113245000001"
        );
        // A value on field 1 is ignored: the secondary bitmap follows the highest field.
        m.set(1, "anything");
        assert_eq!(m.bitmap(spec).iter().collect::<Vec<_>>(), [7, 11]);
        m.set(128, Value::Bytes(Cow::Borrowed(&[0u8; 8])));
        assert_eq!(m.bitmap(spec).iter().collect::<Vec<_>>(), [1, 7, 11, 128]);
        m.remove(128);
        m.set(0, "x").set(300, "y");
        // Numbers outside 1..=192 set no bit, but one above 64 still asks for the secondary.
        assert_eq!(m.bitmap(spec).iter().collect::<Vec<_>>(), [1, 7, 11]);
        m.remove(300);
        m.remove(0);
        assert_eq!(m.bitmap(spec).iter().collect::<Vec<_>>(), [7, 11]);
        // The same as a message built from a decode.
        let bytes = m.to_vec(spec).unwrap();
        let copy = crate::decode(spec, &bytes).unwrap().to_buf();
        assert_eq!(copy.bitmap(spec), m.bitmap(spec));
        assert_eq!(copy.clone().into_owned().bitmap(spec), m.bitmap(spec));
    }

    /// Pieces of every length from 0 to 300, in any order, come out as appended to a `Vec`;
    /// `len` and `truncate` count the staged bytes.
    #[test]
    fn staged_output_is_the_bytes_in_order() {
        let source: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
        let mut expected = b"head".to_vec();
        let mut out = b"head".to_vec();
        let mut staged = Staged::new(&mut out);
        for round in 0..3 {
            for len in 0..source.len() {
                let len = if round == 1 {
                    source.len() - 1 - len
                } else {
                    len
                };
                let piece = &source[len / 3..len / 3 + len.min(source.len() - len / 3)];
                staged.put(piece);
                expected.extend_from_slice(piece);
                staged.put_byte(len as u8);
                expected.push(len as u8);
                assert_eq!(staged.len(), expected.len());
            }
        }
        staged.truncate(expected.len() - 5);
        expected.truncate(expected.len() - 5);
        assert_eq!(staged.len(), expected.len());
        staged.flush();
        assert_eq!(out, expected);

        let mut out = b"head".to_vec();
        let mut staged = Staged::new(&mut out);
        staged.put(&source);
        staged.put(b"tail");
        staged.truncate(10);
        staged.put(b"!");
        staged.flush();
        assert_eq!(out, [&b"head"[..], &source[..6], b"!"].concat());
    }
}
