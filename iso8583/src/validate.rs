//! Content validation: data classes, BCD nibbles and pad nibbles, hex digits.
//!
//! The checks run as branch-free folds over the bytes (so the compiler can vectorise them) and
//! only on failure walk again to find the offending byte and its offset.

use crate::bitmap::hex_value;
use crate::error::{Error, ErrorKind, Part, Result};
use crate::spec::{Align, Check, DataClass, Encoding, FieldSpec};

/// Whether `ok` holds for every byte. The bytes go through fixed-length, branch-free folds
/// (16, 8 or 4 bytes at a time), which the compiler turns into a few vector compares each; a
/// length that is not a multiple is covered by one more fold over the last bytes, overlapping
/// the previous one, so there is no per-byte loop with a branch and nothing is copied.
#[inline(always)]
fn all_bytes(bytes: &[u8], ok: impl Fn(u8) -> bool + Copy) -> bool {
    if let Some(last) = bytes.last_chunk::<16>() {
        let (blocks, _) = bytes.as_chunks::<16>();
        let mut good = block_ok(last, ok);
        for block in blocks {
            good &= block_ok(block, ok);
        }
        good
    } else if let (Some(first), Some(last)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        block_ok(first, ok) & block_ok(last, ok)
    } else if let (Some(first), Some(last)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        block_ok(first, ok) & block_ok(last, ok)
    } else if let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) {
        // One to three bytes: the first, the middle and the last are all of them, without a
        // loop.
        let middle = bytes.get(bytes.len() / 2).copied().unwrap_or(first);
        ok(first) & ok(middle) & ok(last)
    } else {
        true
    }
}

#[inline(always)]
fn block_ok<const N: usize>(block: &[u8; N], ok: impl Fn(u8) -> bool) -> bool {
    block.iter().fold(true, |good, &c| good & ok(c))
}

#[inline(always)]
fn is_digit(c: u8) -> bool {
    c.wrapping_sub(b'0') < 10
}

#[inline(always)]
fn is_letter(c: u8) -> bool {
    (c | 0x20).wrapping_sub(b'a') < 26
}

/// Whether every byte is an ASCII hex digit (either case).
#[inline]
pub(crate) fn all_hex(bytes: &[u8]) -> bool {
    all_bytes(bytes, |c| is_digit(c) | ((c | 0x20).wrapping_sub(b'a') < 6))
}

/// Whether every byte is in the class (ASCII bytes).
#[inline]
pub(crate) fn all_in_class(class: DataClass, bytes: &[u8]) -> bool {
    match class {
        DataClass::N => all_bytes(bytes, is_digit),
        DataClass::Ans => all_bytes(bytes, |c| (c >= 0x20) & (c != 0x7F)),
        DataClass::An => all_bytes(bytes, |c| is_digit(c) | is_letter(c)),
        DataClass::A => all_bytes(bytes, is_letter),
        DataClass::As => all_bytes(bytes, |c| DataClass::As.accepts(c)),
        DataClass::Ns => all_bytes(bytes, |c| DataClass::Ns.accepts(c)),
        DataClass::Z => all_bytes(bytes, |c| is_digit(c) | (c == b'=') | (c == b'D')),
        DataClass::B => true,
        DataClass::XN => match bytes.split_first() {
            Some((&sign, digits)) => (sign == b'C' || sign == b'D') && all_bytes(digits, is_digit),
            None => true,
        },
    }
}

/// The quick check of a body whose compiled check is a plain scan: true when it passes. False
/// for a body that fails and for [`Check::FULL`]; either way `field` then decides (and finds
/// the offending byte).
#[inline(always)]
pub(crate) fn quick(check: Check, body: &[u8]) -> bool {
    match check {
        Check::DIGITS => all_bytes(body, is_digit),
        Check::AN => all_bytes(body, |c| is_digit(c) | is_letter(c)),
        Check::ANS => all_bytes(body, |c| (c >= 0x20) & (c != 0x7F)),
        Check::HEX => all_hex(body),
        Check::TRACK => all_in_class(DataClass::Z, body),
        Check::FREE => true,
        _ => false,
    }
}

/// Index of the first byte outside the class (ASCII bytes).
fn first_outside(class: DataClass, bytes: &[u8]) -> Option<usize> {
    if class == DataClass::XN {
        let (&sign, digits) = bytes.split_first()?;
        if sign != b'C' && sign != b'D' {
            return Some(0);
        }
        return first_outside(DataClass::N, digits).map(|i| i + 1);
    }
    bytes.iter().position(|&c| !class.accepts(c))
}

/// Validates one field body, found at byte `at` of the message. `prefix` is the field's length
/// prefix as carried (empty for fixed fields): BCD fields need it for their number of digits.
pub(crate) fn field(n: u16, def: &FieldSpec, prefix: &[u8], body: &[u8], at: usize) -> Result<()> {
    let part = Part::Field(n);
    match def.encoding {
        Encoding::Ascii => {
            if all_in_class(def.class, body) {
                return Ok(());
            }
            let i = first_outside(def.class, body).unwrap_or(0);
            Err(Error::new(
                ErrorKind::WrongCharacter {
                    class: def.class,
                    found: body.get(i).copied().unwrap_or(0),
                },
                part,
                at + i,
            ))
        }
        Encoding::Ebcdic037 | Encoding::Ebcdic1047 => {
            let Some(page) = def.encoding.code_page() else {
                return Ok(());
            };
            let bad = if def.class == DataClass::XN {
                let mut buf = [0u8; 1];
                body.iter().enumerate().find(|&(i, &b)| {
                    buf[0] = page.to_ascii(b);
                    if i == 0 {
                        !(buf[0] == b'C' || buf[0] == b'D')
                    } else {
                        !buf[0].is_ascii_digit()
                    }
                })
            } else {
                body.iter()
                    .enumerate()
                    .find(|&(_, &b)| !def.class.accepts(page.to_ascii(b)))
            };
            match bad {
                None => Ok(()),
                Some((i, &b)) => Err(Error::new(
                    ErrorKind::WrongCharacter {
                        class: def.class,
                        found: b,
                    },
                    part,
                    at + i,
                )),
            }
        }
        Encoding::HexAscii if all_hex(body) => Ok(()),
        Encoding::HexAscii => match body.iter().position(|&c| hex_value(c).is_none()) {
            None => Ok(()),
            Some(i) => Err(Error::new(
                ErrorKind::BadHex {
                    found: body.get(i).copied().unwrap_or(0),
                },
                part,
                at + i,
            )),
        },
        Encoding::Binary => Ok(()),
        Encoding::Bcd => bcd(def, body, at, crate::decode::units(def, prefix, body))
            .map_err(|e| e.with_part(part)),
    }
}

fn bcd(def: &FieldSpec, body: &[u8], at: usize, units: usize) -> Result<()> {
    let nibbles = body.len() * 2;
    let pad_count = nibbles.saturating_sub(units);
    let (first, last) = match def.align {
        Some(Align::Right) => (pad_count, nibbles),
        _ => (0, nibbles - pad_count),
    };
    let sep_ok = def.class == DataClass::Z;
    // Fast path: every nibble a digit (or a separator for z), no pad at all.
    let clean = body.iter().fold(true, |ok, &b| {
        let (hi, lo) = (b >> 4, b & 0xF);
        ok & ((hi < 10) | (sep_ok & (hi == 0xD))) & ((lo < 10) | (sep_ok & (lo == 0xD)))
    });
    if clean && pad_count == 0 {
        return Ok(());
    }
    for i in 0..nibbles {
        let b = body.get(i / 2).copied().unwrap_or(0);
        let nib = if i.is_multiple_of(2) { b >> 4 } else { b & 0xF };
        let offset = at + i / 2;
        if i < first || i >= last {
            if nib != def.pad.value() {
                return Err(Error::new(
                    ErrorKind::BadPadNibble {
                        found: nib,
                        expected: def.pad.value(),
                    },
                    Part::Message,
                    offset,
                ));
            }
        } else if !(nib < 10 || (sep_ok && nib == 0xD)) {
            return Err(Error::new(
                ErrorKind::BadBcdNibble { nibble: nib },
                Part::Message,
                offset,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Length, PadNibble};
    use alloc::string::ToString;

    /// The block scans agree with `DataClass::accepts`, byte by byte, at every length up to 40
    /// and with the one bad byte at every position (the overlapping first/last blocks).
    #[test]
    fn scans_agree_with_accepts_at_every_length_and_position() {
        let classes = [
            (DataClass::N, b'7', Check::DIGITS),
            (DataClass::An, b'x', Check::AN),
            (DataClass::Ans, b' ', Check::ANS),
            (DataClass::A, b'Q', Check::FULL),
            (DataClass::As, b'/', Check::FULL),
            (DataClass::Ns, b'-', Check::FULL),
            (DataClass::Z, b'=', Check::TRACK),
        ];
        for (class, good, check) in classes {
            for len in 0..40 {
                let mut body = [good; 40];
                let body = &mut body[..len];
                assert!(all_in_class(class, body), "{class} len {len}");
                assert_eq!(quick(check, body), check != Check::FULL);
                for at in 0..len {
                    for bad in 0..=255u8 {
                        body[at] = bad;
                        let expected = class.accepts(bad);
                        assert_eq!(
                            all_in_class(class, body),
                            expected,
                            "{class} {len} {at} {bad}"
                        );
                        if check != Check::FULL {
                            assert_eq!(quick(check, body), expected, "{class} {len} {at} {bad}");
                        }
                    }
                    body[at] = good;
                }
            }
        }
        for len in 0..40 {
            let mut body = [b'a'; 40];
            let body = &mut body[..len];
            assert!(quick(Check::HEX, body) && quick(Check::FREE, body));
            for at in 0..len {
                for bad in 0..=255u8 {
                    body[at] = bad;
                    assert_eq!(
                        quick(Check::HEX, body),
                        hex_value(bad).is_some(),
                        "{len} {at}"
                    );
                }
                body[at] = b'F';
            }
        }
        assert!(all_in_class(DataClass::XN, b"C0123456789012345678"));
        assert!(!all_in_class(DataClass::XN, b"C012345678901234567D"));
        assert!(!all_in_class(DataClass::XN, b"00123456789012345678"));
    }

    /// `Message::validate` (the quick scans, then `field` on a failure) reports what
    /// `Field::validate` reports, at the same offset.
    #[test]
    fn message_validate_names_the_first_bad_field() {
        let spec = crate::specs::iso87_ascii();
        let good = b"0800822000000000000004000000000000001128113245000001301";
        assert_eq!(crate::decode(spec, good).unwrap().validate(), Ok(()));
        for (at, n) in [(36, 7), (45, 7), (46, 11), (51, 11), (52, 70), (54, 70)] {
            let mut bytes = *good;
            bytes[at] = b'A';
            let msg = crate::decode(spec, &bytes).unwrap();
            let err = msg.validate().unwrap_err();
            assert_eq!(err, msg.field(n).unwrap().validate().unwrap_err());
            assert_eq!(
                (err.kind(), err.field(), err.offset()),
                (
                    ErrorKind::WrongCharacter {
                        class: DataClass::N,
                        found: b'A'
                    },
                    Some(n),
                    at
                )
            );
        }
    }

    #[test]
    fn ascii_classes_and_offsets() {
        let def = FieldSpec::new("stan", DataClass::N, Length::Fixed(6), Encoding::Ascii);
        assert_eq!(field(11, &def, b"", b"123456", 40), Ok(()));
        let err = field(11, &def, b"", b"12A456", 40).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field 11: byte 0x41 is not allowed in class n (at byte 42)"
        );
        let def = FieldSpec::new("fee", DataClass::XN, Length::Fixed(9), Encoding::Ascii);
        assert_eq!(field(28, &def, b"", b"D00000150", 0), Ok(()));
        let err = field(28, &def, b"", b"X00000150", 7).unwrap_err();
        assert_eq!((err.offset(), err.field()), (7, Some(28)));
        let err = field(28, &def, b"", b"C0000015A", 0).unwrap_err();
        assert_eq!(err.offset(), 8);
    }

    #[test]
    fn bcd_nibbles_and_pad() {
        let def = FieldSpec::new("entry", DataClass::N, Length::Fixed(3), Encoding::Bcd)
            .with_bcd(Align::Left, PadNibble::Zero);
        assert_eq!(field(22, &def, b"", &[0x02, 0x10], 10), Ok(()));
        let err = field(22, &def, b"", &[0x02, 0x1F], 10).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::BadPadNibble {
                found: 0xF,
                expected: 0
            }
        );
        assert_eq!((err.offset(), err.field()), (11, Some(22)));
        let err = field(22, &def, b"", &[0x0A, 0x10], 10).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadBcdNibble { nibble: 0xA });
        let right = FieldSpec::new("seq", DataClass::N, Length::Fixed(3), Encoding::Bcd)
            .with_bcd(Align::Right, PadNibble::Zero);
        assert_eq!(field(23, &right, b"", &[0x01, 0x23], 0), Ok(()));
        let err = field(23, &right, b"", &[0x11, 0x23], 0).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::BadPadNibble {
                found: 1,
                expected: 0
            }
        );
        let track = FieldSpec::new("track 2", DataClass::Z, Length::ll(37), Encoding::Bcd);
        assert_eq!(field(35, &track, b"04", &[0x12, 0xD4], 0), Ok(()));
        let pan = FieldSpec::new("pan", DataClass::N, Length::ll(19), Encoding::Bcd);
        assert!(field(2, &pan, b"04", &[0x12, 0xD4], 0).is_err());
    }

    #[test]
    fn hex_and_ebcdic() {
        let def = FieldSpec::new("pin", DataClass::B, Length::Fixed(8), Encoding::HexAscii);
        assert_eq!(field(52, &def, b"", b"A1B2C3D4E5F60718", 0), Ok(()));
        let err = field(52, &def, b"", b"A1B2C3D4E5F6071G", 3).unwrap_err();
        assert_eq!(
            (err.kind(), err.offset()),
            (ErrorKind::BadHex { found: b'G' }, 18)
        );
        let def = FieldSpec::new("stan", DataClass::N, Length::Fixed(3), Encoding::Ebcdic037);
        assert_eq!(field(11, &def, b"", &[0xF1, 0xF2, 0xF3], 0), Ok(()));
        assert!(field(11, &def, b"", &[0xF1, 0xC1, 0xF3], 0).is_err());
    }
}
