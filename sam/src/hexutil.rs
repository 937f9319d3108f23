//! Hex helpers (upper-case output, either case accepted on input). Private to the crate.

use crate::error::{Error, Result};

const UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// The upper-case ASCII hex digit for the low nibble of `n`.
#[inline]
pub(crate) const fn nibble_char(n: u8) -> u8 {
    UPPER[(n & 0x0F) as usize]
}

/// Writes the upper-case hex of `src` into `dst`, which must be twice as long (extra `dst`
/// bytes are left as they are; extra `src` bytes are ignored).
#[inline]
pub(crate) fn encode_into(src: &[u8], dst: &mut [u8]) {
    for (pair, b) in dst.chunks_exact_mut(2).zip(src) {
        if let [hi, lo] = pair {
            *hi = nibble_char(b >> 4);
            *lo = nibble_char(*b);
        }
    }
}

/// Formats bytes as upper-case hex.
pub(crate) fn fmt_upper(bytes: &[u8], f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    for b in bytes {
        write!(f, "{b:02X}")?;
    }
    Ok(())
}

fn digit(what: &'static str, c: u8, offset: usize) -> Result<u8> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(Error::BadHex { what, offset }),
    }
}

/// Decodes `s` into `out`, which must be exactly half as long as `s` (the caller checks the
/// length first so it can report the accepted lengths). Returns the number of bytes written.
pub(crate) fn decode_into(what: &'static str, s: &str, out: &mut [u8]) -> Result<usize> {
    let bytes = s.as_bytes();
    let mut n = 0;
    for ((i, pair), o) in bytes.chunks_exact(2).enumerate().zip(out.iter_mut()) {
        if let [hi, lo] = pair {
            *o = (digit(what, *hi, 2 * i)? << 4) | digit(what, *lo, 2 * i + 1)?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_upper_case() {
        let mut out = [0u8; 4];
        encode_into(&[0xAB, 0x0F], &mut out);
        assert_eq!(&out, b"AB0F");
    }

    #[test]
    fn decodes_either_case_and_reports_offset() {
        let mut out = [0u8; 2];
        assert_eq!(decode_into("x", "aB0f", &mut out), Ok(2));
        assert_eq!(out, [0xAB, 0x0F]);
        assert_eq!(
            decode_into("x", "a!0f", &mut out),
            Err(Error::BadHex {
                what: "x",
                offset: 1
            })
        );
    }
}
