//! EBCDIC code pages 037 and 1047, as used by mainframe hosts for ISO 8583 text fields.
//!
//! Both code pages are bijective mappings of the 256 byte values onto the 256 code points of
//! ISO-8859-1 (Latin-1), so every byte converts both ways without loss. ASCII is the lower half
//! of Latin-1: for the printable ASCII characters the Latin-1 byte *is* the ASCII byte.
//!
//! The tables follow IBM's published CCSID 037 and CCSID 1047 definitions against
//! ISO-8859-1 (CCSID 819). The two pages differ in six positions:
//!
//! | EBCDIC | CP037 | CP1047 |
//! |--------|-------|--------|
//! | `0x5F` | `¬`   | `^`    |
//! | `0xAD` | `Ý`   | `[`    |
//! | `0xB0` | `^`   | `¬`    |
//! | `0xBA` | `[`   | `Ý`    |
//! | `0xBB` | `]`   | `¨`    |
//! | `0xBD` | `¨`   | `]`    |
//!
//! In both pages `0x15` is NL (U+0085) and `0x25` is LF (U+000A). z/OS UNIX System Services
//! swaps these two for CP1047 text files (so that `\n` is `0x15`); that convention is not part
//! of the code page definition and is not applied here.
//!
//! Digits are `0xF0`–`0xF9`, upper-case letters `0xC1`–`0xC9`, `0xD1`–`0xD9`, `0xE2`–`0xE9`,
//! lower-case letters `0x81`–`0x89`, `0x91`–`0x99`, `0xA2`–`0xA9`, and space is `0x40` in both.
//!
//! ```
//! use iso8583_wire::ebcdic::CodePage;
//!
//! let page = CodePage::Cp037;
//! let mut text = [0u8; 5];
//! page.decode_into(&[0xC8, 0x85, 0x93, 0x93, 0x96], &mut text);
//! assert_eq!(&text, b"Hello");
//! assert!(page.is_digits(&[0xF0, 0xF4, 0xF2]));
//! assert_eq!(page.from_ascii(b'['), 0xBA);
//! assert_eq!(CodePage::Cp1047.from_ascii(b'['), 0xAD);
//! ```

use alloc::vec::Vec;
use core::fmt;

/// An EBCDIC code page with a full Latin-1 repertoire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodePage {
    /// IBM code page 037 (CCSID 37): EBCDIC US/Canada.
    Cp037,
    /// IBM code page 1047 (CCSID 1047): EBCDIC Latin-1/Open Systems, the z/OS default.
    Cp1047,
}

impl CodePage {
    /// The IANA-style name of the code page (`"IBM037"` or `"IBM1047"`).
    pub const fn name(self) -> &'static str {
        match self {
            CodePage::Cp037 => "IBM037",
            CodePage::Cp1047 => "IBM1047",
        }
    }

    /// The table mapping each EBCDIC byte (the index) to its Latin-1 byte.
    pub const fn decode_table(self) -> &'static [u8; 256] {
        match self {
            CodePage::Cp037 => &CP037_TO_LATIN1,
            CodePage::Cp1047 => &CP1047_TO_LATIN1,
        }
    }

    /// The table mapping each Latin-1 byte (the index) to its EBCDIC byte.
    pub const fn encode_table(self) -> &'static [u8; 256] {
        match self {
            CodePage::Cp037 => &LATIN1_TO_CP037,
            CodePage::Cp1047 => &LATIN1_TO_CP1047,
        }
    }

    /// Converts one EBCDIC byte to its Latin-1 byte (the ASCII byte for ASCII characters).
    pub const fn to_ascii(self, b: u8) -> u8 {
        self.decode_table()[b as usize]
    }

    /// Converts one Latin-1 (or ASCII) byte to its EBCDIC byte.
    pub const fn from_ascii(self, b: u8) -> u8 {
        self.encode_table()[b as usize]
    }

    /// Converts `ebcdic` to Latin-1 into the front of `out`.
    ///
    /// Converts `min(ebcdic.len(), out.len())` bytes and returns that count; size `out` to at
    /// least `ebcdic.len()` to convert everything. Allocates nothing.
    pub fn decode_into(self, ebcdic: &[u8], out: &mut [u8]) -> usize {
        translate(self.decode_table(), ebcdic, out)
    }

    /// Converts Latin-1 (or ASCII) `text` to EBCDIC into the front of `out`.
    ///
    /// Converts `min(text.len(), out.len())` bytes and returns that count. Allocates nothing.
    pub fn encode_into(self, text: &[u8], out: &mut [u8]) -> usize {
        translate(self.encode_table(), text, out)
    }

    /// Converts EBCDIC bytes to Latin-1 in place.
    pub fn decode_in_place(self, buf: &mut [u8]) {
        translate_in_place(self.decode_table(), buf);
    }

    /// Converts Latin-1 (or ASCII) bytes to EBCDIC in place.
    pub fn encode_in_place(self, buf: &mut [u8]) {
        translate_in_place(self.encode_table(), buf);
    }

    /// Appends the Latin-1 conversion of `ebcdic` to `out`.
    pub fn extend_decoded(self, ebcdic: &[u8], out: &mut Vec<u8>) {
        let table = self.decode_table();
        out.extend(ebcdic.iter().map(|&b| table[usize::from(b)]));
    }

    /// Appends the EBCDIC conversion of Latin-1 (or ASCII) `text` to `out`.
    pub fn extend_encoded(self, text: &[u8], out: &mut Vec<u8>) {
        let table = self.encode_table();
        out.extend(text.iter().map(|&b| table[usize::from(b)]));
    }

    /// Whether every byte of `ebcdic` is an EBCDIC digit (`0xF0`–`0xF9`).
    ///
    /// The digits sit at the same positions in both code pages. An empty slice counts as
    /// all digits; check the length separately where that matters.
    pub fn is_digits(self, ebcdic: &[u8]) -> bool {
        ebcdic.iter().all(|&b| is_digit(b))
    }

    /// The value (0–9) of an EBCDIC digit byte, or `None` if `b` is not a digit.
    pub const fn digit_value(self, b: u8) -> Option<u8> {
        if is_digit(b) { Some(b & 0x0F) } else { None }
    }

    /// The EBCDIC byte of the digit `value`, or `None` if `value` is above 9.
    pub const fn digit(self, value: u8) -> Option<u8> {
        if value <= 9 { Some(0xF0 | value) } else { None }
    }

    /// Borrowing adapter that displays EBCDIC bytes as Latin-1 text (each byte as the Unicode
    /// character with the same code point), without allocating.
    pub fn display(self, ebcdic: &[u8]) -> DisplayEbcdic<'_> {
        DisplayEbcdic {
            page: self,
            bytes: ebcdic,
        }
    }
}

impl fmt::Display for CodePage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Displays EBCDIC bytes as text; made by [`CodePage::display`].
#[derive(Clone, Copy, Debug)]
pub struct DisplayEbcdic<'a> {
    page: CodePage,
    bytes: &'a [u8],
}

impl fmt::Display for DisplayEbcdic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        for &b in self.bytes {
            f.write_char(char::from(self.page.to_ascii(b)))?;
        }
        Ok(())
    }
}

const fn is_digit(b: u8) -> bool {
    matches!(b, 0xF0..=0xF9)
}

fn translate(table: &[u8; 256], src: &[u8], dst: &mut [u8]) -> usize {
    let mut n = 0;
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = table[usize::from(s)];
        n += 1;
    }
    n
}

fn translate_in_place(table: &[u8; 256], buf: &mut [u8]) {
    for b in buf {
        *b = table[usize::from(*b)];
    }
}

/// Inverts a bijective byte table at compile time.
const fn invert(table: &[u8; 256]) -> [u8; 256] {
    let mut inverse = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        inverse[table[i] as usize] = i as u8;
        i += 1;
    }
    inverse
}

/// Whether every byte value occurs exactly once in `table`.
const fn is_bijective(table: &[u8; 256]) -> bool {
    let mut seen = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = table[i] as usize;
        if seen[b] {
            return false;
        }
        seen[b] = true;
        i += 1;
    }
    true
}

// Checked when the crate compiles: both tables are permutations, so the inverses are exact.
const _: () = assert!(is_bijective(&CP037_TO_LATIN1));
const _: () = assert!(is_bijective(&CP1047_TO_LATIN1));

const LATIN1_TO_CP037: [u8; 256] = invert(&CP037_TO_LATIN1);
const LATIN1_TO_CP1047: [u8; 256] = invert(&CP1047_TO_LATIN1);

// EBCDIC byte (row + column) -> ISO-8859-1 byte. Controls follow IBM's CCSID 37/1047 <-> 819
// conversion (for example 0x05 HT -> 0x09, 0x15 NL -> 0x85, 0x25 LF -> 0x0A, 0x07 DEL -> 0x7F).
#[rustfmt::skip]
const CP037_TO_LATIN1: [u8; 256] = [
    0x00, 0x01, 0x02, 0x03, 0x9C, 0x09, 0x86, 0x7F, 0x97, 0x8D, 0x8E, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, // 0x00
    0x10, 0x11, 0x12, 0x13, 0x9D, 0x85, 0x08, 0x87, 0x18, 0x19, 0x92, 0x8F, 0x1C, 0x1D, 0x1E, 0x1F, // 0x10
    0x80, 0x81, 0x82, 0x83, 0x84, 0x0A, 0x17, 0x1B, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x05, 0x06, 0x07, // 0x20
    0x90, 0x91, 0x16, 0x93, 0x94, 0x95, 0x96, 0x04, 0x98, 0x99, 0x9A, 0x9B, 0x14, 0x15, 0x9E, 0x1A, // 0x30
    0x20, 0xA0, 0xE2, 0xE4, 0xE0, 0xE1, 0xE3, 0xE5, 0xE7, 0xF1, 0xA2, 0x2E, 0x3C, 0x28, 0x2B, 0x7C, // 0x40
    0x26, 0xE9, 0xEA, 0xEB, 0xE8, 0xED, 0xEE, 0xEF, 0xEC, 0xDF, 0x21, 0x24, 0x2A, 0x29, 0x3B, 0xAC, // 0x50
    0x2D, 0x2F, 0xC2, 0xC4, 0xC0, 0xC1, 0xC3, 0xC5, 0xC7, 0xD1, 0xA6, 0x2C, 0x25, 0x5F, 0x3E, 0x3F, // 0x60
    0xF8, 0xC9, 0xCA, 0xCB, 0xC8, 0xCD, 0xCE, 0xCF, 0xCC, 0x60, 0x3A, 0x23, 0x40, 0x27, 0x3D, 0x22, // 0x70
    0xD8, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0xAB, 0xBB, 0xF0, 0xFD, 0xFE, 0xB1, // 0x80
    0xB0, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x70, 0x71, 0x72, 0xAA, 0xBA, 0xE6, 0xB8, 0xC6, 0xA4, // 0x90
    0xB5, 0x7E, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0xA1, 0xBF, 0xD0, 0xDD, 0xDE, 0xAE, // 0xA0
    0x5E, 0xA3, 0xA5, 0xB7, 0xA9, 0xA7, 0xB6, 0xBC, 0xBD, 0xBE, 0x5B, 0x5D, 0xAF, 0xA8, 0xB4, 0xD7, // 0xB0
    0x7B, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0xAD, 0xF4, 0xF6, 0xF2, 0xF3, 0xF5, // 0xC0
    0x7D, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F, 0x50, 0x51, 0x52, 0xB9, 0xFB, 0xFC, 0xF9, 0xFA, 0xFF, // 0xD0
    0x5C, 0xF7, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0xB2, 0xD4, 0xD6, 0xD2, 0xD3, 0xD5, // 0xE0
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0xB3, 0xDB, 0xDC, 0xD9, 0xDA, 0x9F, // 0xF0
];

#[rustfmt::skip]
const CP1047_TO_LATIN1: [u8; 256] = [
    0x00, 0x01, 0x02, 0x03, 0x9C, 0x09, 0x86, 0x7F, 0x97, 0x8D, 0x8E, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, // 0x00
    0x10, 0x11, 0x12, 0x13, 0x9D, 0x85, 0x08, 0x87, 0x18, 0x19, 0x92, 0x8F, 0x1C, 0x1D, 0x1E, 0x1F, // 0x10
    0x80, 0x81, 0x82, 0x83, 0x84, 0x0A, 0x17, 0x1B, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x05, 0x06, 0x07, // 0x20
    0x90, 0x91, 0x16, 0x93, 0x94, 0x95, 0x96, 0x04, 0x98, 0x99, 0x9A, 0x9B, 0x14, 0x15, 0x9E, 0x1A, // 0x30
    0x20, 0xA0, 0xE2, 0xE4, 0xE0, 0xE1, 0xE3, 0xE5, 0xE7, 0xF1, 0xA2, 0x2E, 0x3C, 0x28, 0x2B, 0x7C, // 0x40
    0x26, 0xE9, 0xEA, 0xEB, 0xE8, 0xED, 0xEE, 0xEF, 0xEC, 0xDF, 0x21, 0x24, 0x2A, 0x29, 0x3B, 0x5E, // 0x50
    0x2D, 0x2F, 0xC2, 0xC4, 0xC0, 0xC1, 0xC3, 0xC5, 0xC7, 0xD1, 0xA6, 0x2C, 0x25, 0x5F, 0x3E, 0x3F, // 0x60
    0xF8, 0xC9, 0xCA, 0xCB, 0xC8, 0xCD, 0xCE, 0xCF, 0xCC, 0x60, 0x3A, 0x23, 0x40, 0x27, 0x3D, 0x22, // 0x70
    0xD8, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0xAB, 0xBB, 0xF0, 0xFD, 0xFE, 0xB1, // 0x80
    0xB0, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x70, 0x71, 0x72, 0xAA, 0xBA, 0xE6, 0xB8, 0xC6, 0xA4, // 0x90
    0xB5, 0x7E, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0xA1, 0xBF, 0xD0, 0x5B, 0xDE, 0xAE, // 0xA0
    0xAC, 0xA3, 0xA5, 0xB7, 0xA9, 0xA7, 0xB6, 0xBC, 0xBD, 0xBE, 0xDD, 0xA8, 0xAF, 0x5D, 0xB4, 0xD7, // 0xB0
    0x7B, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0xAD, 0xF4, 0xF6, 0xF2, 0xF3, 0xF5, // 0xC0
    0x7D, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F, 0x50, 0x51, 0x52, 0xB9, 0xFB, 0xFC, 0xF9, 0xFA, 0xFF, // 0xD0
    0x5C, 0xF7, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0xB2, 0xD4, 0xD6, 0xD2, 0xD3, 0xD5, // 0xE0
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0xB3, 0xDB, 0xDC, 0xD9, 0xDA, 0x9F, // 0xF0
];

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    const PAGES: [CodePage; 2] = [CodePage::Cp037, CodePage::Cp1047];

    #[test]
    fn every_byte_round_trips_both_ways() {
        for page in PAGES {
            let mut seen = [false; 256];
            for b in 0..=255u8 {
                let latin = page.to_ascii(b);
                assert!(
                    !seen[usize::from(latin)],
                    "{page}: 0x{latin:02X} reached twice"
                );
                seen[usize::from(latin)] = true;
                assert_eq!(page.from_ascii(latin), b, "{page}: 0x{b:02X}");
                assert_eq!(page.to_ascii(page.from_ascii(b)), b, "{page}: 0x{b:02X}");
            }
        }
    }

    #[test]
    fn digits_letters_and_space() {
        for page in PAGES {
            for (i, e) in (0xF0..=0xF9u8).enumerate() {
                assert_eq!(page.to_ascii(e), b'0' + i as u8);
            }
            let upper: [(u8, u8); 3] = [(0xC1, b'A'), (0xD1, b'J'), (0xE2, b'S')];
            let lower: [(u8, u8); 3] = [(0x81, b'a'), (0x91, b'j'), (0xA2, b's')];
            for (start, first) in upper.into_iter().chain(lower) {
                let count = if first == b'S' || first == b's' { 8 } else { 9 };
                for k in 0..count {
                    assert_eq!(
                        page.to_ascii(start + k),
                        first + k,
                        "{page} 0x{:02X}",
                        start + k
                    );
                }
            }
            assert_eq!(page.to_ascii(0x40), b' ');
            assert_eq!(page.from_ascii(b' '), 0x40);
            assert_eq!(page.to_ascii(0x4B), b'.');
            assert_eq!(page.to_ascii(0x6B), b',');
            assert_eq!(page.to_ascii(0x7E), b'=');
            assert_eq!(page.to_ascii(0x00), 0x00);
            assert_eq!(page.to_ascii(0x0D), b'\r');
            assert_eq!(page.to_ascii(0x05), b'\t');
        }
    }

    #[test]
    fn positions_where_037_and_1047_differ() {
        // (EBCDIC byte, CP037 Latin-1, CP1047 Latin-1)
        let diffs: [(u8, u8, u8); 6] = [
            (0x5F, 0xAC, b'^'),
            (0xAD, 0xDD, b'['),
            (0xB0, b'^', 0xAC),
            (0xBA, b'[', 0xDD),
            (0xBB, b']', 0xA8),
            (0xBD, 0xA8, b']'),
        ];
        for (e, a037, a1047) in diffs {
            assert_eq!(CodePage::Cp037.to_ascii(e), a037, "037 0x{e:02X}");
            assert_eq!(CodePage::Cp1047.to_ascii(e), a1047, "1047 0x{e:02X}");
        }
        let mut differing = 0;
        for b in 0..=255u8 {
            if CodePage::Cp037.to_ascii(b) != CodePage::Cp1047.to_ascii(b) {
                assert!(
                    diffs.iter().any(|d| d.0 == b),
                    "unexpected difference at 0x{b:02X}"
                );
                differing += 1;
            }
        }
        assert_eq!(differing, 6);
        // NL and LF are the same in both published tables.
        for page in PAGES {
            assert_eq!(page.to_ascii(0x15), 0x85);
            assert_eq!(page.to_ascii(0x25), 0x0A);
            assert_eq!(page.from_ascii(b'\n'), 0x25);
        }
    }

    #[test]
    fn slice_helpers() {
        let ebcdic = [0xC1, 0xC3, 0xD4, 0xC5, 0x40, 0xF4, 0xF2, 0xBA, 0xBB];
        let mut out = [0u8; 9];
        assert_eq!(CodePage::Cp037.decode_into(&ebcdic, &mut out), 9);
        assert_eq!(&out, b"ACME 42[]");
        let mut back = [0u8; 9];
        assert_eq!(CodePage::Cp037.encode_into(&out, &mut back), 9);
        assert_eq!(back, ebcdic);

        let mut short = [0u8; 4];
        assert_eq!(CodePage::Cp037.decode_into(&ebcdic, &mut short), 4);
        assert_eq!(&short, b"ACME");

        let mut buf = *b"x[y]";
        CodePage::Cp1047.encode_in_place(&mut buf);
        assert_eq!(buf, [0xA7, 0xAD, 0xA8, 0xBD]);
        CodePage::Cp1047.decode_in_place(&mut buf);
        assert_eq!(&buf, b"x[y]");

        let mut v = Vec::new();
        CodePage::Cp037.extend_encoded(b"Az9", &mut v);
        assert_eq!(v, [0xC1, 0xA9, 0xF9]);
        let mut t = Vec::new();
        CodePage::Cp037.extend_decoded(&v, &mut t);
        assert_eq!(t, b"Az9");

        assert_eq!(
            CodePage::Cp037.display(&[0xC8, 0x89, 0x5A]).to_string(),
            "Hi!"
        );
        assert_eq!(CodePage::Cp1047.to_string(), "IBM1047");
    }

    #[test]
    fn digit_checks() {
        for page in PAGES {
            assert!(page.is_digits(&[0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9]));
            assert!(page.is_digits(&[]));
            assert!(!page.is_digits(&[0xF0, 0xFA]));
            assert!(!page.is_digits(&[0xEF]));
            assert!(!page.is_digits(b"123"));
            assert_eq!(page.digit_value(0xF7), Some(7));
            assert_eq!(page.digit_value(0xFA), None);
            assert_eq!(page.digit_value(0x37), None);
            assert_eq!(page.digit(3), Some(0xF3));
            assert_eq!(page.digit(10), None);
            for b in 0..=255u8 {
                assert_eq!(page.is_digits(&[b]), page.to_ascii(b).is_ascii_digit());
            }
        }
    }
}
