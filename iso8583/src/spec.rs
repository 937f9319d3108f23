//! Interface specs: a dialect of ISO 8583 as data.
//!
//! A [`FieldSpec`] combines independent parts: the data class ([`DataClass`]), the length
//! ([`Length`]: fixed, or variable with an L, LL, LLL or LLLL prefix and a maximum), how the prefix
//! is written ([`PrefixEncoding`]) and what it counts ([`Counts`]), how the body is written
//! ([`Encoding`]), alignment and pad nibble of odd-length BCD, padding of short fixed values, the
//! describe mask and an optional subfield [`Layout`]. A [`Spec`] adds the MTI and bitmap encodings,
//! whether field 65 is a tertiary bitmap, and a name.
//!
//! [`Spec::new`] checks every definition (a prefix too short for its maximum, a BCD field that can
//! have an odd number of digits without an alignment rule, a bitmap field that is not 8 binary
//! bytes, ...) and compiles the table into a fixed array of small `Copy` entries that the decoder
//! and encoder read on the hot path.
//!
//! ## Lengths and units
//!
//! Lengths and maxima are in the units of the data class: digits for `n`, `z` and `x+n`
//! (the `C`/`D` sign counts as one character of an `x+n` value), characters for the text classes,
//! bytes for `b`. On the wire a body takes:
//!
//! | encoding | wire bytes for a length L |
//! |---|---|
//! | `Ascii`, `Ebcdic037`, `Ebcdic1047` | L |
//! | `Bcd` | ceil(L / 2) |
//! | `Binary` (class `b`) | L |
//! | `HexAscii` (class `b`) | 2 L |
//!
//! A variable field's prefix holds either L in units ([`Counts::Units`]: digits, characters, or
//! hex nibbles of a binary field, i.e. 2 L) or the number of wire bytes of the body
//! ([`Counts::Bytes`]).
//!
//! Prefix widths: `Ascii`, `Ebcdic` and `HexAscii` prefixes take one byte per `L`; `Bcd` prefixes
//! take ceil(n / 2) bytes (an LLL prefix is two bytes, `0` then three digits); `Binary` prefixes
//! take one byte for L and LL and two bytes (big-endian) for LLL and LLLL.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The highest field number (with a tertiary bitmap).
pub const MAX_FIELD: u16 = 192;

/// The data class of a field (ISO 8583 attribute notation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "spec-files", derive(serde::Serialize, serde::Deserialize))]
pub enum DataClass {
    /// `n`: decimal digits.
    #[cfg_attr(feature = "spec-files", serde(rename = "n"))]
    N,
    /// `a`: letters.
    #[cfg_attr(feature = "spec-files", serde(rename = "a"))]
    A,
    /// `an`: letters and digits.
    #[cfg_attr(feature = "spec-files", serde(rename = "an"))]
    An,
    /// `ans`: letters, digits, space and special characters. Bytes 0x80 and above are accepted
    /// too, so that GBK, GB 18030 or UTF-8 text (merchant names, issuer names in UnionPay field 63)
    /// passes; control characters are refused.
    #[cfg_attr(feature = "spec-files", serde(rename = "ans"))]
    Ans,
    /// `as`: letters, space and special characters (no digits).
    #[cfg_attr(feature = "spec-files", serde(rename = "as"))]
    As,
    /// `ns`: digits, space and special characters (no letters).
    #[cfg_attr(feature = "spec-files", serde(rename = "ns"))]
    Ns,
    /// `b`: binary data.
    #[cfg_attr(feature = "spec-files", serde(rename = "b"))]
    B,
    /// `z`: track 2 or 3 data: digits and the field separator (`=` in ASCII, nibble `D` in BCD).
    #[cfg_attr(feature = "spec-files", serde(rename = "z"))]
    Z,
    /// `x+n`: a `C` (credit) or `D` (debit) sign followed by digits.
    #[cfg_attr(feature = "spec-files", serde(rename = "x+n"))]
    XN,
}

impl DataClass {
    /// The attribute notation: `n`, `an`, `x+n`, ...
    pub const fn name(self) -> &'static str {
        match self {
            DataClass::N => "n",
            DataClass::A => "a",
            DataClass::An => "an",
            DataClass::Ans => "ans",
            DataClass::As => "as",
            DataClass::Ns => "ns",
            DataClass::B => "b",
            DataClass::Z => "z",
            DataClass::XN => "x+n",
        }
    }

    /// True for the classes whose values are digits (`n`, `z`, `x+n`).
    pub const fn is_numeric(self) -> bool {
        matches!(self, DataClass::N | DataClass::Z | DataClass::XN)
    }

    /// True for the text classes (`a`, `an`, `ans`, `as`, `ns`).
    pub const fn is_text(self) -> bool {
        matches!(
            self,
            DataClass::A | DataClass::An | DataClass::Ans | DataClass::As | DataClass::Ns
        )
    }

    /// Whether one byte (a character, after any EBCDIC translation) belongs to the class.
    /// Binary (`b`) accepts every byte; `x+n` accepts the sign letters and digits (the position
    /// of the sign is checked separately).
    #[inline]
    pub const fn accepts(self, c: u8) -> bool {
        let digit = c.wrapping_sub(b'0') < 10;
        let lower = c | 0x20;
        let letter = lower.wrapping_sub(b'a') < 26;
        let printable = c.wrapping_sub(0x20) < 0x5F;
        let special = printable && !digit && !letter;
        match self {
            DataClass::N => digit,
            DataClass::A => letter,
            DataClass::An => digit | letter,
            DataClass::Ans => c >= 0x20 && c != 0x7F,
            DataClass::As => letter | special,
            DataClass::Ns => digit | special,
            DataClass::B => true,
            DataClass::Z => digit | (c == b'=') | (c == b'D'),
            DataClass::XN => digit | (c == b'C') | (c == b'D'),
        }
    }
}

impl fmt::Display for DataClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Fixed or variable length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Length {
    /// Always this many units.
    Fixed(u16),
    /// A length prefix of `prefix` digits (1 = L, 2 = LL, 3 = LLL, 4 = LLLL), at most `max` units.
    Var {
        /// Number of `L`s: 1 to 4.
        prefix: u8,
        /// Maximum length in units of the class.
        max: u16,
    },
}

impl Length {
    /// `LLVAR` with the given maximum.
    pub const fn ll(max: u16) -> Length {
        Length::Var { prefix: 2, max }
    }

    /// `LLLVAR` with the given maximum.
    pub const fn lll(max: u16) -> Length {
        Length::Var { prefix: 3, max }
    }

    /// The fixed length or the maximum, in units.
    pub const fn max(self) -> u16 {
        match self {
            Length::Fixed(n) => n,
            Length::Var { max, .. } => max,
        }
    }
}

/// How a length prefix is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "spec-files", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "spec-files", serde(rename_all = "lowercase"))]
pub enum PrefixEncoding {
    /// ASCII decimal digits.
    Ascii,
    /// Packed BCD, right-aligned (leading `0` nibble for an odd number of digits).
    Bcd,
    /// A big-endian binary number: one byte for L and LL, two bytes for LLL and LLLL.
    Binary,
    /// EBCDIC decimal digits (`F0`..`F9`).
    Ebcdic,
    /// ASCII hex digits (base 16).
    #[cfg_attr(feature = "spec-files", serde(rename = "hex"))]
    HexAscii,
}

/// What a length prefix counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "spec-files", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "spec-files", serde(rename_all = "lowercase"))]
pub enum Counts {
    /// Units of the class: digits, characters, or hex nibbles of a binary field.
    Units,
    /// Wire bytes of the body.
    Bytes,
}

/// How a field's body is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "spec-files", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "spec-files", serde(rename_all = "lowercase"))]
pub enum Encoding {
    /// ASCII (text as carried; UTF-8 or GBK bytes pass through for `ans`).
    Ascii,
    /// EBCDIC code page 037.
    Ebcdic037,
    /// EBCDIC code page 1047.
    Ebcdic1047,
    /// Packed BCD, two digits a byte (`n` and `z` only; `z` separator as nibble `D`).
    Bcd,
    /// Raw bytes (`b` only).
    Binary,
    /// Bytes as upper-case ASCII hex, two characters a byte (`b` only).
    #[cfg_attr(feature = "spec-files", serde(rename = "hex"))]
    HexAscii,
}

impl Encoding {
    /// The EBCDIC code page, when the encoding is one.
    pub const fn code_page(self) -> Option<crate::ebcdic::CodePage> {
        match self {
            Encoding::Ebcdic037 => Some(crate::ebcdic::CodePage::Cp037),
            Encoding::Ebcdic1047 => Some(crate::ebcdic::CodePage::Cp1047),
            _ => None,
        }
    }
}

/// Where an odd-length BCD value puts its digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "spec-files", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "spec-files", serde(rename_all = "lowercase"))]
pub enum Align {
    /// Digits first, pad nibble last (`021` -> `02 10`).
    Left,
    /// Pad nibble first, digits last (`123` -> `01 23`).
    Right,
}

/// The nibble that pads an odd-length BCD value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "spec-files", derive(serde::Serialize, serde::Deserialize))]
pub enum PadNibble {
    /// `0`.
    #[cfg_attr(feature = "spec-files", serde(rename = "0"))]
    Zero,
    /// `F`.
    #[cfg_attr(feature = "spec-files", serde(rename = "F"))]
    F,
}

impl PadNibble {
    /// The nibble value: 0x0 or 0xF.
    pub const fn value(self) -> u8 {
        match self {
            PadNibble::Zero => 0x0,
            PadNibble::F => 0xF,
        }
    }
}

/// How `describe` shows a field unless asked to unmask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "spec-files", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "spec-files", serde(rename_all = "lowercase"))]
pub enum Mask {
    /// Shown as carried.
    None,
    /// A card number: first 6 and last 4 digits shown.
    Pan,
    /// Track data: the PAN part masked as a PAN, everything after the separator hidden.
    Track,
    /// Hidden entirely (PIN blocks, MACs, keys); only the length is shown.
    Secret,
}

/// One subfield of a positional or bitmapped layout.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "spec-files", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "spec-files", serde(deny_unknown_fields))]
pub struct Subfield {
    /// Name shown by describe.
    pub name: Cow<'static, str>,
    /// Length in units of the parent field's class (digits of a BCD field, characters, bytes).
    pub length: u16,
}

impl Subfield {
    /// A subfield with a static name.
    pub const fn new(name: &'static str, length: u16) -> Self {
        Subfield {
            name: Cow::Borrowed(name),
            length,
        }
    }
}

/// How a field splits into subfields.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "spec-files", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "spec-files",
    serde(rename_all = "lowercase", deny_unknown_fields)
)]
pub enum Layout {
    /// Consecutive fixed-length subfields. A variable field may end early: the subfields past its
    /// end are absent.
    Positional(Vec<Subfield>),
    /// BER-TLV data objects (EMV field 55); subfields are addressed by tag (`55.9F26`).
    Tlv,
    /// A bitmap of `bitmap_bytes` binary bytes, then the fixed-length subfields whose bits are
    /// set (bit 1 = the first subfield).
    Bitmapped {
        /// Size of the leading bitmap in bytes (1 to 8).
        bitmap_bytes: u8,
        /// The subfields, in bit order.
        subfields: Vec<Subfield>,
    },
}

/// The definition of one data element.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldSpec {
    /// Name shown by describe.
    pub name: Cow<'static, str>,
    /// Data class.
    pub class: DataClass,
    /// Fixed or variable length.
    pub length: Length,
    /// How the length prefix is written (ignored for fixed fields).
    pub prefix: PrefixEncoding,
    /// What the length prefix counts (ignored for fixed fields).
    pub counts: Counts,
    /// How the body is written.
    pub encoding: Encoding,
    /// Alignment of an odd number of BCD digits; required for BCD fields that can be odd.
    pub align: Option<Align>,
    /// The pad nibble of odd-length BCD values.
    pub pad: PadNibble,
    /// Whether a short value for a fixed field is padded (numbers with leading zeros, text with
    /// trailing spaces) rather than refused. Binary values are never padded.
    pub pad_short: bool,
    /// How describe masks the field.
    pub mask: Mask,
    /// Subfields, if any.
    pub layout: Option<Layout>,
}

impl FieldSpec {
    /// A field with the given name, class, length and body encoding; the prefix is ASCII counting
    /// units, BCD values are left-aligned with pad `0`, short fixed values are padded, no mask and
    /// no layout. Adjust with the `with_*` methods.
    pub const fn new(
        name: &'static str,
        class: DataClass,
        length: Length,
        encoding: Encoding,
    ) -> Self {
        FieldSpec {
            name: Cow::Borrowed(name),
            class,
            length,
            prefix: PrefixEncoding::Ascii,
            counts: Counts::Units,
            encoding,
            align: Some(Align::Left),
            pad: PadNibble::Zero,
            pad_short: true,
            mask: Mask::None,
            layout: None,
        }
    }

    /// Sets the prefix encoding and what it counts.
    pub const fn with_prefix(mut self, prefix: PrefixEncoding, counts: Counts) -> Self {
        self.prefix = prefix;
        self.counts = counts;
        self
    }

    /// Sets the BCD alignment and pad nibble.
    pub const fn with_bcd(mut self, align: Align, pad: PadNibble) -> Self {
        self.align = Some(align);
        self.pad = pad;
        self
    }

    /// Sets the describe mask.
    pub const fn with_mask(mut self, mask: Mask) -> Self {
        self.mask = mask;
        self
    }

    /// Sets the subfield layout.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = Some(layout);
        self
    }

    /// Wire bytes of a body of `units` units.
    pub(crate) const fn wire_len(&self, units: usize) -> usize {
        match self.encoding {
            Encoding::Bcd => units.div_ceil(2),
            Encoding::HexAscii => units * 2,
            _ => units,
        }
    }
}

/// How the MTI is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "spec-files", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "spec-files", serde(rename_all = "lowercase"))]
pub enum MtiEncoding {
    /// Four ASCII digits.
    Ascii,
    /// Two bytes of packed BCD.
    Bcd,
    /// Four EBCDIC digits.
    Ebcdic,
}

/// How bitmaps are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "spec-files", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "spec-files", serde(rename_all = "lowercase"))]
pub enum BitmapEncoding {
    /// Eight raw bytes each.
    Binary,
    /// Sixteen ASCII hex characters each.
    #[cfg_attr(feature = "spec-files", serde(rename = "hex"))]
    HexAscii,
    /// Sixteen EBCDIC hex characters each (CP037 digits and capital letters).
    Ebcdic,
}

impl BitmapEncoding {
    /// Wire bytes of one 64-bit bitmap.
    pub const fn wire_len(self) -> usize {
        match self {
            BitmapEncoding::Binary => 8,
            BitmapEncoding::HexAscii | BitmapEncoding::Ebcdic => 16,
        }
    }
}

/// A problem with a spec definition, found by [`Spec::new`] or the spec-file loader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The field the problem is in, if it is about one.
    pub field: Option<u16>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(n) => write!(f, "field {n}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SpecError {}

/// How a prefix value converts to wire bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conv {
    /// The value is the wire length.
    Same,
    /// Wire length is ceil(value / 2) (BCD digits).
    HalfUp,
    /// Wire length is value / 2, value must be even (nibbles of a raw binary field).
    HalfExact,
    /// The value is the wire length and must be even (hex-ASCII characters of a binary field).
    SameEven,
}

/// The hot-path form of one field definition.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Compiled {
    pub defined: bool,
    pub var: bool,
    pub prefix: PrefixEncoding,
    /// The length prefix's width in bytes: 0 for a fixed field, so that a body always starts
    /// this far after its field's first byte.
    pub prefix_width: u8,
    pub fixed_wire: u32,
    pub max_value: u32,
    pub conv: Conv,
    pub check: Check,
    /// What the encoder's fast path does with the field (derived from the parts above).
    pub fast: FastEncode,
    /// How `Message::validate` treats the field (derived from the parts above).
    pub scan: ScanPlan,
}

/// The encoder's fast path for a field, decided when the spec is compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FastEncode {
    /// Encoded by `encode::field` from the full definition.
    Slow,
    /// ASCII text copied as given (an `n`, `z`, `an` or `ans`-like field, fixed or with an
    /// ASCII prefix).
    Text,
    /// Bytes written as hex-ASCII (a `b` field, fixed or with an ASCII prefix).
    Hex,
}

/// How `Message::validate` checks a field, decided when the spec is compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScanPlan {
    /// Nothing to check (raw binary).
    Skip,
    /// In a run with its neighbours, the run taking in its ASCII length prefix.
    RunFromPrefix,
    /// In a run with its neighbours from its body on.
    RunFromBody,
    /// On its own (`validate::quick_in`, then `validate::field`).
    Alone,
}

/// The content check of a field, when it is a plain scan of the body bytes: the kinds of
/// byte it allows (the bits). `FULL` (none) sends validation to `validate::field` (BCD,
/// EBCDIC, `x+n` and the rarer text classes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Check(pub u8);

impl Check {
    /// A decimal digit.
    pub const DIGIT: u8 = 1;
    /// An ASCII letter.
    pub const LETTER: u8 = 2;
    /// `a`-`f` or `A`-`F`.
    pub const HEX_LETTER: u8 = 4;
    /// Not a control character (0x20 and above, except 0x7F).
    pub const PRINTABLE: u8 = 8;
    /// Any byte at all.
    pub const ANY: u8 = 16;
    /// `=` or `D`, the track separator.
    pub const SEPARATOR: u8 = 32;
    /// `C` or `D` in the first byte, the sign of an `x+n` amount.
    pub const SIGN: u8 = 64;
    /// Two decimal digits packed in a byte (BCD), no pad nibble.
    pub const PACKED: u8 = 128;

    /// Raw binary: any byte.
    pub const FREE: Check = Check(Self::ANY);
    /// ASCII `n`.
    pub const DIGITS: Check = Check(Self::DIGIT);
    /// ASCII `an`.
    pub const AN: Check = Check(Self::DIGIT | Self::LETTER);
    /// ASCII `ans`.
    pub const ANS: Check = Check(Self::PRINTABLE);
    /// Hex-ASCII `b`.
    pub const HEX: Check = Check(Self::DIGIT | Self::HEX_LETTER);
    /// Anything else.
    pub const FULL: Check = Check(0);
    /// ASCII `z` (track data).
    pub const TRACK: Check = Check(Self::DIGIT | Self::SEPARATOR);
    /// ASCII `x+n`: a sign, then digits.
    pub const AMOUNT: Check = Check(Self::DIGIT | Self::SIGN);
    /// BCD `n` of a fixed, even number of digits (so no pad nibble): every nibble 0-9.
    pub const BCD: Check = Check(Self::PACKED);

    /// Whether adjacent fields under this check can be checked as one stretch of bytes: a
    /// plain byte scan that accepts ASCII digits, so that an ASCII length prefix between two
    /// bodies passes too. (`BCD` is only ever the check of a fixed field: no prefix.)
    pub const fn joins_runs(self) -> bool {
        matches!(
            self,
            Check::DIGITS | Check::AN | Check::ANS | Check::HEX | Check::TRACK | Check::BCD
        )
    }

    const fn of(d: &FieldSpec) -> Check {
        match (d.encoding, d.class) {
            (Encoding::Binary, _) => Check::FREE,
            (Encoding::HexAscii, _) => Check::HEX,
            (Encoding::Ascii, DataClass::N) => Check::DIGITS,
            (Encoding::Ascii, DataClass::An) => Check::AN,
            (Encoding::Ascii, DataClass::Ans) => Check::ANS,
            (Encoding::Ascii, DataClass::Z) => Check::TRACK,
            (Encoding::Ascii, DataClass::XN) => Check::AMOUNT,
            (Encoding::Bcd, DataClass::N) => match d.length {
                Length::Fixed(units) if units % 2 == 0 => Check::BCD,
                _ => Check::FULL,
            },
            _ => Check::FULL,
        }
    }
}

impl Compiled {
    const UNDEFINED: Compiled = Compiled {
        defined: false,
        var: false,
        prefix: PrefixEncoding::Ascii,
        prefix_width: 0,
        fixed_wire: 0,
        max_value: 0,
        conv: Conv::Same,
        check: Check::FULL,
        fast: FastEncode::Slow,
        scan: ScanPlan::Alone,
    };

    /// Sets [`fast`](Self::fast) and [`scan`](Self::scan) from the other parts.
    fn with_derived(mut self) -> Self {
        let ascii_prefix = self.var && self.prefix == PrefixEncoding::Ascii;
        self.scan = match self.check {
            c if c.joins_runs() && ascii_prefix => ScanPlan::RunFromPrefix,
            c if c.joins_runs() => ScanPlan::RunFromBody,
            Check::FREE => ScanPlan::Skip,
            _ => ScanPlan::Alone,
        };
        let check = self.check.0;
        let text = check != 0
            && check & !(Check::DIGIT | Check::LETTER | Check::PRINTABLE | Check::SEPARATOR) == 0;
        self.fast = match self.check {
            _ if !self.defined || (self.var && !ascii_prefix) => FastEncode::Slow,
            _ if text => FastEncode::Text,
            Check::HEX => FastEncode::Hex,
            _ => FastEncode::Slow,
        };
        self
    }
}

/// The wire width of a prefix of `digits` L's.
pub(crate) const fn prefix_width(enc: PrefixEncoding, digits: u8) -> u8 {
    match enc {
        PrefixEncoding::Ascii | PrefixEncoding::Ebcdic | PrefixEncoding::HexAscii => digits,
        PrefixEncoding::Bcd => digits.div_ceil(2),
        PrefixEncoding::Binary => {
            if digits <= 2 {
                1
            } else {
                2
            }
        }
    }
}

/// The largest value a prefix can hold.
const fn prefix_capacity(enc: PrefixEncoding, digits: u8) -> u64 {
    match enc {
        PrefixEncoding::Ascii | PrefixEncoding::Ebcdic | PrefixEncoding::Bcd => {
            10u64.pow(digits as u32) - 1
        }
        PrefixEncoding::HexAscii => 16u64.pow(digits as u32) - 1,
        PrefixEncoding::Binary => {
            if digits <= 2 {
                0xFF
            } else {
                0xFFFF
            }
        }
    }
}

/// An interface spec: one dialect of ISO 8583, checked and compiled.
///
/// Build one with [`Spec::new`], take a built-in one from [`crate::specs`], or load a spec file
/// (feature `spec-files`).
#[derive(Clone)]
pub struct Spec {
    name: Cow<'static, str>,
    mti: MtiEncoding,
    bitmap: BitmapEncoding,
    tertiary: bool,
    fields: Vec<Option<FieldSpec>>,
    /// Indexed by field number; 256 entries (those above [`MAX_FIELD`] undefined) so that a
    /// `u8` number needs no bounds check.
    compiled: Box<[Compiled; 256]>,
}

impl PartialEq for Spec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.mti == other.mti
            && self.bitmap == other.bitmap
            && self.tertiary == other.tertiary
            && self.fields == other.fields
    }
}

impl Eq for Spec {}

impl fmt::Debug for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spec")
            .field("name", &self.name)
            .field("mti", &self.mti)
            .field("bitmap", &self.bitmap)
            .field("tertiary", &self.tertiary)
            .field(
                "fields",
                &self.fields.iter().filter(|f| f.is_some()).count(),
            )
            .finish()
    }
}

impl Spec {
    /// Checks and compiles a spec. `fields` pairs field numbers (1 to 192) with definitions;
    /// field 1 (and 65 with `tertiary`) are the bitmaps and must be defined as 8-byte binary
    /// fields if given at all.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        mti: MtiEncoding,
        bitmap: BitmapEncoding,
        tertiary: bool,
        fields: impl IntoIterator<Item = (u16, FieldSpec)>,
    ) -> Result<Spec, SpecError> {
        let mut table: Vec<Option<FieldSpec>> = Vec::new();
        table.resize(MAX_FIELD as usize + 1, None);
        let mut compiled = Box::new([Compiled::UNDEFINED; 256]);
        for (n, def) in fields {
            let Some(slot) = table.get_mut(n as usize).filter(|_| n >= 1) else {
                return Err(SpecError {
                    field: Some(n),
                    message: String::from("field numbers run from 1 to 192"),
                });
            };
            if slot.is_some() {
                return Err(SpecError {
                    field: Some(n),
                    message: String::from("defined twice"),
                });
            }
            let c = compile(n, &def, tertiary)?;
            compiled[n as usize] = c;
            *slot = Some(def);
        }
        if !tertiary && table.iter().skip(129).any(Option::is_some) {
            return Err(SpecError {
                field: None,
                message: String::from("fields above 128 need a tertiary bitmap (field 65)"),
            });
        }
        Ok(Spec {
            name: name.into(),
            mti,
            bitmap,
            tertiary,
            fields: table,
            compiled,
        })
    }

    /// The spec's name (`cups-pos`, `iso87-ascii`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How the MTI is written.
    pub const fn mti_encoding(&self) -> MtiEncoding {
        self.mti
    }

    /// How bitmaps are written.
    pub const fn bitmap_encoding(&self) -> BitmapEncoding {
        self.bitmap
    }

    /// Whether field 65 is a tertiary bitmap announcing fields 129 to 192.
    pub const fn tertiary_bitmap(&self) -> bool {
        self.tertiary
    }

    /// The definition of field `n`, if the spec has one.
    pub fn field(&self, n: u16) -> Option<&FieldSpec> {
        self.fields.get(n as usize).and_then(Option::as_ref)
    }

    /// All defined fields in number order.
    pub fn fields(&self) -> impl Iterator<Item = (u16, &FieldSpec)> + '_ {
        self.fields
            .iter()
            .enumerate()
            .filter_map(|(n, f)| f.as_ref().map(|f| (n as u16, f)))
    }

    /// Whether field `n` is one of the bitmaps (1, or 65 with a tertiary bitmap).
    pub const fn is_bitmap_field(&self, n: u16) -> bool {
        n == 1 || (n == 65 && self.tertiary)
    }

    /// [`compiled`](Self::compiled) for a number known to fit a byte (a decoded field's).
    #[inline(always)]
    pub(crate) fn compiled_at(&self, n: u8) -> &Compiled {
        &self.compiled[n as usize]
    }

    #[inline]
    pub(crate) fn compiled(&self, n: u16) -> Compiled {
        match self.compiled.get(n as usize) {
            Some(c) => *c,
            None => Compiled::UNDEFINED,
        }
    }

    /// Definition and compiled form together (both exist exactly when the field is defined).
    #[inline]
    pub(crate) fn def(&self, n: u16) -> Option<(&FieldSpec, Compiled)> {
        let def = self.field(n)?;
        Some((def, self.compiled(n)))
    }
}

fn bad(n: u16, message: impl Into<String>) -> SpecError {
    SpecError {
        field: Some(n),
        message: message.into(),
    }
}

fn compile(n: u16, d: &FieldSpec, tertiary: bool) -> Result<Compiled, SpecError> {
    use alloc::format;
    // Class and encoding must agree.
    match (d.class, d.encoding) {
        (DataClass::B, Encoding::Binary | Encoding::HexAscii) => {}
        (DataClass::B, e) => {
            return Err(bad(
                n,
                format!("class b needs binary or hex encoding, not {e:?}"),
            ));
        }
        (_, Encoding::Binary | Encoding::HexAscii) => {
            return Err(bad(
                n,
                format!(
                    "{:?} encoding is only for class b, not {}",
                    d.encoding, d.class
                ),
            ));
        }
        (DataClass::N | DataClass::Z, Encoding::Bcd) => {}
        (c, Encoding::Bcd) => {
            return Err(bad(
                n,
                format!("BCD encoding is only for classes n and z, not {c}"),
            ));
        }
        _ => {}
    }
    if (n == 1 || (n == 65 && tertiary))
        && (d.class != DataClass::B || d.length != Length::Fixed(8))
    {
        return Err(bad(
            n,
            "used as a bitmap but not defined as one (class b, fixed length 8)",
        ));
    }
    let bcd_can_be_odd = d.encoding == Encoding::Bcd
        && match d.length {
            Length::Fixed(len) => len % 2 == 1,
            Length::Var { .. } => d.counts == Counts::Units,
        };
    if bcd_can_be_odd && d.align.is_none() {
        return Err(bad(
            n,
            "a BCD field with an odd number of digits needs an alignment rule (align = left or right)",
        ));
    }
    match d.length {
        Length::Fixed(0) | Length::Var { max: 0, .. } => Err(bad(n, "length 0")),
        Length::Fixed(len) => Ok(Compiled {
            defined: true,
            var: false,
            prefix: d.prefix,
                prefix_width: 0,
            fixed_wire: d.wire_len(len as usize) as u32,
            max_value: 0,
            conv: Conv::Same,
            check: Check::of(d),
            fast: FastEncode::Slow,
            scan: ScanPlan::Alone,
        }
        .with_derived()),
        Length::Var { prefix, max } => {
            if !(1..=4).contains(&prefix) {
                return Err(bad(n, format!("a length prefix has 1 to 4 digits, not {prefix}")));
            }
            let (max_value, conv) = match (d.counts, d.encoding) {
                (Counts::Bytes, Encoding::HexAscii) => (d.wire_len(max as usize), Conv::SameEven),
                (Counts::Bytes, _) => (d.wire_len(max as usize), Conv::Same),
                (Counts::Units, Encoding::Bcd) => (max as usize, Conv::HalfUp),
                (Counts::Units, Encoding::Binary) => (2 * max as usize, Conv::HalfExact),
                (Counts::Units, Encoding::HexAscii) => (2 * max as usize, Conv::SameEven),
                (Counts::Units, _) => (max as usize, Conv::Same),
            };
            let capacity = prefix_capacity(d.prefix, prefix);
            if max_value as u64 > capacity {
                return Err(bad(
                    n,
                    format!(
                        "a {}-digit {:?} prefix holds at most {capacity}, too short for the maximum {max_value}",
                        prefix, d.prefix
                    ),
                ));
            }
            if let Some(layout) = &d.layout {
                check_layout(n, d, layout)?;
            }
            Ok(Compiled {
                defined: true,
                var: true,
                prefix: d.prefix,
                prefix_width: prefix_width(d.prefix, prefix),
                fixed_wire: 0,
                max_value: max_value as u32,
                conv,
                check: Check::of(d),
                fast: FastEncode::Slow,
                scan: ScanPlan::Alone,
            }
            .with_derived())
        }
    }
    .and_then(|c| {
        if let (Length::Fixed(_), Some(layout)) = (d.length, &d.layout) {
            check_layout(n, d, layout)?;
        }
        Ok(c)
    })
}

fn check_layout(n: u16, d: &FieldSpec, layout: &Layout) -> Result<(), SpecError> {
    use alloc::format;
    match layout {
        Layout::Tlv if d.class != DataClass::B => Err(bad(n, "a TLV layout needs class b")),
        Layout::Tlv => Ok(()),
        Layout::Positional(subs)
        | Layout::Bitmapped {
            subfields: subs, ..
        } => {
            if subs.is_empty() {
                return Err(bad(n, "a subfield layout with no subfields"));
            }
            if let Some(s) = subs.iter().find(|s| s.length == 0) {
                return Err(bad(n, format!("subfield {} has length 0", s.name)));
            }
            let mut total: usize = subs.iter().map(|s| s.length as usize).sum();
            if let Layout::Bitmapped { bitmap_bytes, .. } = layout {
                if !(1..=8).contains(bitmap_bytes) || subs.len() > 8 * *bitmap_bytes as usize {
                    return Err(bad(
                        n,
                        "a bitmapped layout needs a 1 to 8 byte bitmap with a bit for every subfield",
                    ));
                }
                if d.class != DataClass::B && d.encoding != Encoding::Ascii {
                    return Err(bad(n, "a bitmapped layout needs class b or ASCII text"));
                }
                let per_byte = if d.class == DataClass::B { 1 } else { 2 };
                total += per_byte * *bitmap_bytes as usize;
            }
            if total > d.length.max() as usize {
                return Err(bad(
                    n,
                    format!(
                        "subfields total {total} units, more than the field's length {}",
                        d.length.max()
                    ),
                ));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn n(name: &'static str, len: Length) -> FieldSpec {
        FieldSpec::new(name, DataClass::N, len, Encoding::Ascii)
    }

    #[test]
    fn rejects_prefix_too_short_for_maximum() {
        let err = Spec::new(
            "t",
            MtiEncoding::Ascii,
            BitmapEncoding::Binary,
            false,
            vec![(2, n("PAN", Length::ll(100)))],
        )
        .unwrap_err();
        assert_eq!(err.field, Some(2));
        assert_eq!(
            err.to_string(),
            "field 2: a 2-digit Ascii prefix holds at most 99, too short for the maximum 100"
        );
    }

    #[test]
    fn rejects_odd_bcd_without_alignment() {
        let mut f = FieldSpec::new("entry mode", DataClass::N, Length::Fixed(3), Encoding::Bcd);
        f.align = None;
        let err = Spec::new(
            "t",
            MtiEncoding::Bcd,
            BitmapEncoding::Binary,
            false,
            vec![(22, f)],
        )
        .unwrap_err();
        assert_eq!(err.field, Some(22));
        assert!(err.message.contains("alignment rule"), "{err}");
        // An even fixed BCD length needs no rule.
        let mut even = FieldSpec::new("amount", DataClass::N, Length::Fixed(12), Encoding::Bcd);
        even.align = None;
        assert!(
            Spec::new(
                "t",
                MtiEncoding::Bcd,
                BitmapEncoding::Binary,
                false,
                vec![(4, even)]
            )
            .is_ok()
        );
    }

    #[test]
    fn rejects_bitmap_field_that_is_not_one() {
        let err = Spec::new(
            "t",
            MtiEncoding::Ascii,
            BitmapEncoding::Binary,
            true,
            vec![(65, n("not a bitmap", Length::Fixed(1)))],
        )
        .unwrap_err();
        assert_eq!(err.field, Some(65));
        assert_eq!(
            err.to_string(),
            "field 65: used as a bitmap but not defined as one (class b, fixed length 8)"
        );
        // Without a tertiary bitmap, field 65 is an ordinary field.
        assert!(
            Spec::new(
                "t",
                MtiEncoding::Ascii,
                BitmapEncoding::Binary,
                false,
                vec![(65, n("settlement code", Length::Fixed(1)))]
            )
            .is_ok()
        );
    }

    #[test]
    fn rejects_class_encoding_mismatch_and_bad_numbers() {
        let f = FieldSpec::new("x", DataClass::Ans, Length::Fixed(3), Encoding::Bcd);
        let err = Spec::new(
            "t",
            MtiEncoding::Ascii,
            BitmapEncoding::Binary,
            false,
            vec![(48, f)],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "field 48: BCD encoding is only for classes n and z, not ans"
        );
        let err = Spec::new(
            "t",
            MtiEncoding::Ascii,
            BitmapEncoding::Binary,
            false,
            vec![(193, n("x", Length::Fixed(1)))],
        )
        .unwrap_err();
        assert_eq!(err.field, Some(193));
        let err = Spec::new(
            "t",
            MtiEncoding::Ascii,
            BitmapEncoding::Binary,
            false,
            vec![(3, n("a", Length::Fixed(6))), (3, n("b", Length::Fixed(6)))],
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "field 3: defined twice");
    }

    #[test]
    fn binary_and_bcd_prefix_capacities() {
        // A binary LL prefix is one byte: 255 at most.
        let f = FieldSpec::new("icc", DataClass::B, Length::lll(255), Encoding::Binary)
            .with_prefix(PrefixEncoding::Bcd, Counts::Bytes);
        let s = Spec::new(
            "t",
            MtiEncoding::Bcd,
            BitmapEncoding::Binary,
            false,
            vec![(55, f)],
        )
        .unwrap();
        let c = s.compiled(55);
        assert_eq!((c.prefix_width, c.max_value, c.conv), (2, 255, Conv::Same));
        let f = FieldSpec::new("big", DataClass::B, Length::ll(300), Encoding::Binary)
            .with_prefix(PrefixEncoding::Binary, Counts::Bytes);
        assert!(
            Spec::new(
                "t",
                MtiEncoding::Bcd,
                BitmapEncoding::Binary,
                false,
                vec![(48, f)]
            )
            .is_err()
        );
    }

    #[test]
    fn class_membership() {
        assert!(DataClass::N.accepts(b'7') && !DataClass::N.accepts(b'A'));
        assert!(DataClass::An.accepts(b'z') && !DataClass::An.accepts(b' '));
        assert!(
            DataClass::Ans.accepts(b' ')
                && DataClass::Ans.accepts(0xB0)
                && !DataClass::Ans.accepts(0x0A)
        );
        assert!(DataClass::As.accepts(b'-') && !DataClass::As.accepts(b'1'));
        assert!(DataClass::Ns.accepts(b'/') && !DataClass::Ns.accepts(b'x'));
        assert!(DataClass::Z.accepts(b'=') && !DataClass::Z.accepts(b'^'));
        assert!(DataClass::XN.accepts(b'C') && !DataClass::XN.accepts(b'X'));
    }
}
