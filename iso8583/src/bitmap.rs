//! Bitmaps: which fields a message carries.
//!
//! A [`Bitmap`] holds the primary, secondary and tertiary bitmaps as three `u64` words, bit 1
//! being the most significant bit of the first word, as on the wire. Bit 1 announces the secondary
//! bitmap; with a tertiary-bitmap dialect, bit 65 announces the tertiary one.

use core::fmt;

use crate::error::{Error, ErrorKind, Part};
use crate::spec::{BitmapEncoding, MAX_FIELD};

/// The set of fields present in a message (1 to 192).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Bitmap {
    words: [u64; 3],
}

impl Bitmap {
    /// An empty bitmap.
    pub const fn new() -> Self {
        Bitmap { words: [0; 3] }
    }

    /// A bitmap from its three words (primary, secondary, tertiary).
    pub const fn from_words(words: [u64; 3]) -> Self {
        Bitmap { words }
    }

    /// The three words.
    pub const fn words(&self) -> [u64; 3] {
        self.words
    }

    /// Whether field `n` is present. Numbers outside 1..=192 are never present.
    #[inline]
    pub const fn contains(&self, n: u16) -> bool {
        if n == 0 || n > MAX_FIELD {
            return false;
        }
        let i = (n - 1) as usize;
        (self.words[i / 64] >> (63 - (i % 64))) & 1 == 1
    }

    /// Marks field `n` present (numbers outside 1..=192 are ignored).
    #[inline]
    pub fn set(&mut self, n: u16) {
        if n == 0 || n > MAX_FIELD {
            return;
        }
        let i = (n - 1) as usize;
        self.words[i / 64] |= 1 << (63 - (i % 64));
    }

    /// Marks field `n` absent.
    #[inline]
    pub fn clear(&mut self, n: u16) {
        if n == 0 || n > MAX_FIELD {
            return;
        }
        let i = (n - 1) as usize;
        self.words[i / 64] &= !(1 << (63 - (i % 64)));
    }

    /// Number of present fields below `n` (not counting bit 1): the rank of `n` among the
    /// data-carrying fields.
    #[inline]
    pub(crate) const fn rank(&self, n: u16) -> usize {
        let i = (n - 1) as usize;
        let (w, b) = (i / 64, i % 64);
        let mut count = 0;
        let mut k = 0;
        while k < w {
            count += self.words[k].count_ones() as usize;
            k += 1;
        }
        if b > 0 {
            count += (self.words[w] >> (64 - b)).count_ones() as usize;
        }
        // Bit 1 announces the secondary bitmap and carries no data of its own.
        if self.words[0] >> 63 == 1 && n > 1 {
            count -= 1;
        }
        count
    }

    /// The present field numbers in ascending order, bit 1 included.
    pub fn iter(&self) -> Iter {
        Iter {
            words: self.words,
            word: 0,
        }
    }

    /// Number of present fields (bit 1 included).
    pub const fn len(&self) -> usize {
        (self.words[0].count_ones() + self.words[1].count_ones() + self.words[2].count_ones())
            as usize
    }

    /// True when no field is present.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Bitmap({:016X} {:016X} {:016X})",
            self.words[0], self.words[1], self.words[2]
        )
    }
}

/// Iterator over the present field numbers of a [`Bitmap`].
#[derive(Clone, Debug)]
pub struct Iter {
    words: [u64; 3],
    word: usize,
}

impl Iterator for Iter {
    type Item = u16;

    #[inline]
    fn next(&mut self) -> Option<u16> {
        while self.word < 3 {
            let w = self.words[self.word];
            if w != 0 {
                let lz = w.leading_zeros();
                self.words[self.word] = w & !(1u64 << (63 - lz));
                return Some((self.word as u32 * 64 + lz + 1) as u16);
            }
            self.word += 1;
        }
        None
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Value of an ASCII hex digit, or `None`.
#[inline]
pub(crate) const fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Value of an EBCDIC hex digit (F0-F9, C1-C6, 81-86), or `None`.
#[inline]
const fn ebcdic_hex_value(c: u8) -> Option<u8> {
    match c {
        0xF0..=0xF9 => Some(c - 0xF0),
        0xC1..=0xC6 => Some(c - 0xC1 + 10),
        0x81..=0x86 => Some(c - 0x81 + 10),
        _ => None,
    }
}

/// Reads one 64-bit bitmap at `offset`. `which` names it in errors (1, 2 or 3).
#[inline]
pub(crate) fn read_word(
    data: &[u8],
    offset: usize,
    enc: BitmapEncoding,
    which: u8,
) -> Result<u64, Error> {
    let part = if which == 3 {
        Part::Field(65)
    } else {
        Part::Bitmap(which)
    };
    let len = enc.wire_len();
    let Some(bytes) = data.get(offset..offset + len) else {
        return Err(Error::new(
            ErrorKind::Truncated {
                needed: offset + len - data.len(),
            },
            part,
            offset,
        ));
    };
    match enc {
        BitmapEncoding::Binary => {
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes);
            Ok(u64::from_be_bytes(b))
        }
        BitmapEncoding::HexAscii | BitmapEncoding::Ebcdic => {
            let mut word = 0u64;
            for (i, &c) in bytes.iter().enumerate() {
                let v = if enc == BitmapEncoding::HexAscii {
                    hex_value(c)
                } else {
                    ebcdic_hex_value(c)
                };
                let Some(v) = v else {
                    return Err(Error::new(ErrorKind::BadHex { found: c }, part, offset + i));
                };
                word = (word << 4) | v as u64;
            }
            Ok(word)
        }
    }
}

/// Appends one 64-bit bitmap.
#[inline]
pub(crate) fn write_word(out: &mut impl crate::encode::Output, word: u64, enc: BitmapEncoding) {
    match enc {
        BitmapEncoding::Binary => out.put(&word.to_be_bytes()),
        BitmapEncoding::HexAscii => out.put(&hex_word(word)),
        BitmapEncoding::Ebcdic => {
            let mut buf = [0u8; 16];
            for (i, slot) in buf.iter_mut().enumerate() {
                let nib = ((word >> (60 - 4 * i)) & 0xF) as usize;
                *slot = crate::ebcdic::CodePage::Cp037.from_ascii(HEX_UPPER[nib]);
            }
            out.put(&buf);
        }
    }
}

/// The 16 upper-case hex characters of `word`, most significant first, computed eight bytes
/// at a time (SWAR): each nibble is spread into its own byte, then `0`-`9` and `A`-`F` are
/// made by adding `'0'` and, where the nibble is above 9, 7 more.
#[inline]
fn hex_word(word: u64) -> [u8; 16] {
    const LOW: u64 = 0x0101_0101_0101_0101;
    // Four bytes -> eight nibble bytes, in order: byte k of `half` (big-endian) gives bytes 2k
    // (high nibble) and 2k + 1 (low nibble) of the result.
    let chars = |half: u32| -> [u8; 8] {
        let x = u64::from(half);
        // Spread the four bytes to every other byte: b0 b1 b2 b3 -> b0 0 b1 0 b2 0 b3 0.
        let x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
        let x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
        // High nibble to the upper byte of each pair, low nibble to the lower byte.
        let n = ((x & 0x00F0_00F0_00F0_00F0) >> 4) | ((x & 0x000F_000F_000F_000F) << 8);
        // Nibble > 9 exactly when nibble + 6 reaches 16.
        let above9 = ((n + LOW * 6) >> 4) & LOW;
        (n + LOW * u64::from(b'0') + above9 * 7).to_le_bytes()
    };
    let (hi, lo) = ((word >> 32) as u32, word as u32);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&chars(hi.swap_bytes()));
    out[8..].copy_from_slice(&chars(lo.swap_bytes()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn hex_word_matches_formatting() {
        let mut x = 0x0123_4567_89AB_CDEFu64;
        for _ in 0..2000 {
            let expected = alloc::format!("{x:016X}");
            assert_eq!(hex_word(x), expected.as_bytes(), "{x:#x}");
            x = x
                .rotate_left(5)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(1);
        }
        for x in [0, u64::MAX, 0xA000_0000_0000_0009, 0x8000_0000_0000_0001] {
            assert_eq!(hex_word(x), alloc::format!("{x:016X}").as_bytes());
        }
    }

    #[test]
    fn set_contains_iter_rank() {
        let mut b = Bitmap::new();
        for n in [1, 2, 3, 64, 65, 70, 128, 129, 192] {
            b.set(n);
        }
        assert!(b.contains(70) && !b.contains(71) && !b.contains(0) && !b.contains(193));
        assert_eq!(
            b.iter().collect::<Vec<_>>(),
            [1, 2, 3, 64, 65, 70, 128, 129, 192]
        );
        assert_eq!(b.len(), 9);
        // Ranks skip bit 1 (the secondary bitmap carries no data position of its own).
        assert_eq!(b.rank(2), 0);
        assert_eq!(b.rank(3), 1);
        assert_eq!(b.rank(65), 3);
        assert_eq!(b.rank(192), 7);
        b.clear(70);
        assert!(!b.contains(70));
        assert_eq!(
            alloc::format!("{b:?}"),
            "Bitmap(E000000000000001 8000000000000001 8000000000000001)"
        );
    }

    #[test]
    fn words_in_every_encoding() {
        let w = 0x723C_4480_28E0_9201u64;
        assert_eq!(
            read_word(b"723C448028E09201", 0, BitmapEncoding::HexAscii, 1),
            Ok(w)
        );
        assert_eq!(
            read_word(b"723c448028e09201", 0, BitmapEncoding::HexAscii, 1),
            Ok(w)
        );
        assert_eq!(
            read_word(&w.to_be_bytes(), 0, BitmapEncoding::Binary, 1),
            Ok(w)
        );
        let mut out = Vec::new();
        write_word(&mut out, w, BitmapEncoding::Ebcdic);
        assert_eq!(out[..4], [0xF7, 0xF2, 0xF3, 0xC3]);
        assert_eq!(read_word(&out, 0, BitmapEncoding::Ebcdic, 1), Ok(w));
        let err = read_word(b"723C4480", 0, BitmapEncoding::HexAscii, 2).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Truncated { needed: 8 });
        assert_eq!(err.part(), Part::Bitmap(2));
        let err = read_word(b"7Z3C448028E09201", 0, BitmapEncoding::HexAscii, 1).unwrap_err();
        assert_eq!(
            (err.kind(), err.offset()),
            (ErrorKind::BadHex { found: b'Z' }, 1)
        );
    }
}
