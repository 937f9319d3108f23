//! Content validation: data classes, BCD nibbles and pad nibbles, hex digits.
//!
//! The checks run as branch-free folds over the bytes (so the compiler can vectorise them) and
//! only on failure walk again to find the offending byte and its offset.

use crate::bitmap::hex_value;
use crate::error::{Error, ErrorKind, Part, Result};
use crate::spec::{Align, DataClass, Encoding, FieldSpec};

/// Whether every byte is in the class (ASCII bytes).
#[inline]
pub(crate) fn all_in_class(class: DataClass, bytes: &[u8]) -> bool {
    match class {
        DataClass::N => bytes
            .iter()
            .fold(true, |ok, &c| ok & (c.wrapping_sub(b'0') < 10)),
        DataClass::Ans => bytes
            .iter()
            .fold(true, |ok, &c| ok & (c >= 0x20) & (c != 0x7F)),
        DataClass::B => true,
        DataClass::XN => match bytes.split_first() {
            Some((&sign, digits)) => {
                (sign == b'C' || sign == b'D') && all_in_class(DataClass::N, digits)
            }
            None => true,
        },
        _ => bytes.iter().fold(true, |ok, &c| ok & class.accepts(c)),
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

/// Validates one field body. `units` is the value's length in units of the class.
pub(crate) fn field(n: u16, def: &FieldSpec, body: &[u8], at: usize, units: usize) -> Result<()> {
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
        Encoding::Bcd => bcd(def, body, at, units).map_err(|e| e.with_part(part)),
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

    #[test]
    fn ascii_classes_and_offsets() {
        let def = FieldSpec::new("stan", DataClass::N, Length::Fixed(6), Encoding::Ascii);
        assert_eq!(field(11, &def, b"123456", 40, 6), Ok(()));
        let err = field(11, &def, b"12A456", 40, 6).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field 11: byte 0x41 is not allowed in class n (at byte 42)"
        );
        let def = FieldSpec::new("fee", DataClass::XN, Length::Fixed(9), Encoding::Ascii);
        assert_eq!(field(28, &def, b"D00000150", 0, 9), Ok(()));
        let err = field(28, &def, b"X00000150", 7, 9).unwrap_err();
        assert_eq!((err.offset(), err.field()), (7, Some(28)));
        let err = field(28, &def, b"C0000015A", 0, 9).unwrap_err();
        assert_eq!(err.offset(), 8);
    }

    #[test]
    fn bcd_nibbles_and_pad() {
        let def = FieldSpec::new("entry", DataClass::N, Length::Fixed(3), Encoding::Bcd)
            .with_bcd(Align::Left, PadNibble::Zero);
        assert_eq!(field(22, &def, &[0x02, 0x10], 10, 3), Ok(()));
        let err = field(22, &def, &[0x02, 0x1F], 10, 3).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::BadPadNibble {
                found: 0xF,
                expected: 0
            }
        );
        assert_eq!((err.offset(), err.field()), (11, Some(22)));
        let err = field(22, &def, &[0x0A, 0x10], 10, 3).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadBcdNibble { nibble: 0xA });
        let right = FieldSpec::new("seq", DataClass::N, Length::Fixed(3), Encoding::Bcd)
            .with_bcd(Align::Right, PadNibble::Zero);
        assert_eq!(field(23, &right, &[0x01, 0x23], 0, 3), Ok(()));
        let err = field(23, &right, &[0x11, 0x23], 0, 3).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::BadPadNibble {
                found: 1,
                expected: 0
            }
        );
        let track = FieldSpec::new("track 2", DataClass::Z, Length::ll(37), Encoding::Bcd);
        assert_eq!(field(35, &track, &[0x12, 0xD4], 0, 4), Ok(()));
        let pan = FieldSpec::new("pan", DataClass::N, Length::ll(19), Encoding::Bcd);
        assert!(field(2, &pan, &[0x12, 0xD4], 0, 4).is_err());
    }

    #[test]
    fn hex_and_ebcdic() {
        let def = FieldSpec::new("pin", DataClass::B, Length::Fixed(8), Encoding::HexAscii);
        assert_eq!(field(52, &def, b"A1B2C3D4E5F60718", 0, 8), Ok(()));
        let err = field(52, &def, b"A1B2C3D4E5F6071G", 3, 8).unwrap_err();
        assert_eq!(
            (err.kind(), err.offset()),
            (ErrorKind::BadHex { found: b'G' }, 18)
        );
        let def = FieldSpec::new("stan", DataClass::N, Length::Fixed(3), Encoding::Ebcdic037);
        assert_eq!(field(11, &def, &[0xF1, 0xF2, 0xF3], 0, 3), Ok(()));
        assert!(field(11, &def, &[0xF1, 0xC1, 0xF3], 0, 3).is_err());
    }
}
