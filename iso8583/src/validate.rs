//! Content validation: data classes, BCD nibbles and pad nibbles, hex digits.
//!
//! The checks run 16 bytes at a time (byte lanes, which the compiler turns into vector
//! arithmetic) on bodies of 16 bytes or more, eight at a time in a word below that, and only on
//! failure walk again to find the offending byte and its offset.

use crate::bitmap::hex_value;
use crate::error::{Error, ErrorKind, Part, Result};
use crate::spec::{Align, Check, DataClass, Encoding, FieldSpec};

/// Every byte's low bit (`0x01` in each of the eight bytes of a word).
const LOW: u64 = 0x0101_0101_0101_0101;
/// Every byte's high bit.
const HIGH: u64 = 0x8080_8080_8080_8080;

// The checks work on eight bytes at a time in a `u64` (SWAR). Each predicate below returns a
// word whose byte `i` has its high bit set when byte `i` of the input FAILS; the other bits
// are whatever the arithmetic left there, and callers look at the high bits only (`& HIGH`,
// once per body). No arithmetic carries or borrows across bytes. The compiler is free to put
// two words in one vector register; nothing depends on it.

/// High bit set where `byte & 0x7F >= k` (`k <= 0x80`). `byte | 0x80` is at least `0x80 >= k`,
/// so the subtraction never borrows from the next byte.
#[inline(always)]
fn low7_at_least(x: u64, k: u8) -> u64 {
    (x | HIGH).wrapping_sub(LOW * u64::from(k))
}

/// High bit set where the byte is NOT `c`: `(y & 0x7F) + 0x7F` has its high bit set when the low
/// seven bits of `y = byte ^ c` are not all zero, and `| y` adds its own high bit.
#[inline(always)]
fn not_equal(x: u64, c: u8) -> u64 {
    let y = x ^ (LOW * u64::from(c));
    ((y & !HIGH).wrapping_add(!HIGH)) | y
}

/// High bit set where the byte is outside `lo..=hi` (`hi < 0x80`; bytes from 0x80 up are
/// outside).
#[inline(always)]
fn outside(x: u64, lo: u8, hi: u8) -> u64 {
    low7_at_least(x, hi + 1) | !low7_at_least(x, lo) | x
}

#[inline(always)]
fn bad_digits(x: u64) -> u64 {
    outside(x, b'0', b'9')
}

#[inline(always)]
fn bad_letters(x: u64) -> u64 {
    outside(x | (LOW * 0x20), b'a', b'z')
}

#[inline(always)]
fn bad_alphanumeric(x: u64) -> u64 {
    bad_digits(x) & bad_letters(x)
}

#[inline(always)]
fn bad_hex(x: u64) -> u64 {
    bad_digits(x) & outside(x | (LOW * 0x20), b'a', b'f')
}

// Two cheaper tests for the commonest classes, which only say whether SOME byte of the word
// fails (a borrow from a failing byte may also flag the bytes above it; a word without a
// failing byte is never flagged). They cannot be combined with `&` like the ones above.

/// `n`: some byte below `0` (a borrow from it is what sets the high bit, and only where the byte
/// itself is below 0x80) or above `9` (adding 0x46 carries into the high bit; a byte of 0x80 or
/// more flags itself).
#[inline(always)]
fn some_not_digit(x: u64) -> u64 {
    (x.wrapping_sub(LOW * u64::from(b'0')) & !x)
        | x.wrapping_add(LOW * (0x7F - u64::from(b'9')))
        | x
}

/// `ans`: some byte below 0x20, or DEL (a zero byte of `x ^ 0x7F...`). Bytes above 0x7F pass:
/// GBK and other text.
#[inline(always)]
fn some_not_printable(x: u64) -> u64 {
    let del = x ^ (LOW * 0x7F);
    (x.wrapping_sub(LOW * 0x20) & !x) | (del.wrapping_sub(LOW) & !del)
}

/// BCD: a nibble above 9 (nibble + 6 carries into bit 4 of its byte, moved up to bit 7;
/// nothing carries between bytes).
#[inline(always)]
fn bad_packed_digits(x: u64) -> u64 {
    let nibbles = LOW * 0x0F;
    (((x >> 4) & nibbles).wrapping_add(LOW * 6) | (x & nibbles).wrapping_add(LOW * 6)) << 3
}

#[inline(always)]
fn bad_track(x: u64) -> u64 {
    bad_digits(x) & not_equal(x, b'=') & not_equal(x, b'D')
}

/// A content check in its two forms: on a word of eight bytes ([`word`](Scan::word), the
/// predicates above) and on one byte ([`byte`](Scan::byte): true when the byte fails).
trait Scan: Copy {
    fn word(x: u64) -> u64;
    fn byte(b: u8) -> bool;
}

/// Bytes outside `'0'..='9'`.
#[inline(always)]
fn not_digit(b: u8) -> bool {
    b.wrapping_sub(b'0') > 9
}

/// Bytes outside `'a'..='z'` once folded to lower case (`| 0x20`).
#[inline(always)]
fn not_letter(b: u8) -> bool {
    (b | 0x20).wrapping_sub(b'a') > 25
}

/// A zero-sized [`Scan`] from its word predicate and its byte rule.
macro_rules! scan {
    ($name:ident, $word:expr, |$b:ident| $byte:expr) => {
        #[derive(Clone, Copy)]
        struct $name;
        impl Scan for $name {
            #[inline(always)]
            fn word(x: u64) -> u64 {
                $word(x)
            }
            #[inline(always)]
            fn byte($b: u8) -> bool {
                $byte
            }
        }
    };
}

scan!(Digits, some_not_digit, |b| not_digit(b));
scan!(Printable, some_not_printable, |b| (b < 0x20) | (b == 0x7F));
scan!(Letters, bad_letters, |b| not_letter(b));
scan!(Alphanumeric, bad_alphanumeric, |b| not_digit(b)
    & not_letter(b));
scan!(Hex, bad_hex, |b| not_digit(b)
    & ((b | 0x20).wrapping_sub(b'a') > 5));
scan!(Track, bad_track, |b| not_digit(b)
    & (b != b'=')
    & (b != b'D'));
scan!(Packed, bad_packed_digits, |b| (b >= 0xA0) | (b & 0x0F > 9));

/// Whether no byte of `bytes` (16 or more) fails `S`, a block of 16 at a time (the last
/// overlapping the one before). Each block is tested on its own and the loop stops at the
/// first failing one: a loop with an exit is one the compiler does not vectorise across
/// blocks (lane `i` of 16 blocks at a time, which a running OR or a fold to one `bool` per
/// block had led it to), so each block becomes byte-lane vector arithmetic.
#[inline(always)]
fn all_blocks<S: Scan>(bytes: &[u8], last: &[u8; 16]) -> bool {
    let (blocks, _) = bytes.as_chunks::<16>();
    if block_fails::<S>(last) {
        return false;
    }
    for block in blocks {
        if block_fails::<S>(block) {
            return false;
        }
    }
    true
}

/// Whether some byte of `block` fails `S`.
#[inline(always)]
fn block_fails<S: Scan>(block: &[u8; 16]) -> bool {
    let mut lanes = [0u8; 16];
    for i in 0..16 {
        lanes[i] = u8::from(S::byte(block[i]));
    }
    lanes != [0; 16]
}

/// Whether no byte fails `S`. Bodies of 16 bytes or more go through [`all_blocks`]; bodies of
/// eight to 15 bytes are two overlapping words; shorter bodies are packed into one word (bytes
/// repeated where needed). No per-byte loop, no branch per byte, nothing copied.
#[inline(always)]
fn all_pass<S: Scan>(bytes: &[u8], _: S) -> bool {
    let bad = S::word;
    if let Some(last) = bytes.last_chunk::<16>() {
        all_blocks::<S>(bytes, last)
    } else if let (Some(first), Some(last)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        (bad(u64::from_le_bytes(*first)) | bad(u64::from_le_bytes(*last))) & HIGH == 0
    } else if let (Some(first), Some(last)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        let w = u64::from(u32::from_le_bytes(*first)) | u64::from(u32::from_le_bytes(*last)) << 32;
        bad(w) & HIGH == 0
    } else if let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) {
        // One to three bytes: the first, the middle and the last are all of them.
        let middle = bytes.get(bytes.len() / 2).copied().unwrap_or(first);
        let w = u64::from_le_bytes([first, middle, last, first, first, first, first, first]);
        bad(w) & HIGH == 0
    } else {
        true
    }
}

/// [`all_pass`] over `data[start..end]`, for a body inside a larger message: a body of at most
/// eight bytes that ends eight or more bytes into `data` is read as the one word ending where
/// it ends, the bytes before it replaced by `fill` (a byte the class accepts), with no branch on
/// its length.
#[inline(always)]
fn all_pass_in<S: Scan>(data: &[u8], start: usize, end: usize, fill: u8, scan: S) -> bool {
    let bad = S::word;
    let len = end.wrapping_sub(start);
    if len <= 8
        && let Some(word) = end.checked_sub(8).and_then(|s| data.get(s..end))
        && let Ok(word) = <[u8; 8]>::try_from(word)
    {
        // Little-endian: the body is the top `len` bytes of the word.
        let keep = u64::MAX.checked_shl(8 * (8 - len) as u32).unwrap_or(0);
        let w = (u64::from_le_bytes(word) & keep) | ((LOW * u64::from(fill)) & !keep);
        return bad(w) & HIGH == 0;
    }
    all_pass(data.get(start..end).unwrap_or_default(), scan)
}

/// [`quick`] for the body `data[start..end]` of a message being decoded.
#[inline(always)]
pub(crate) fn quick_in(check: Check, data: &[u8], start: usize, end: usize) -> bool {
    match check {
        Check::DIGITS => all_pass_in(data, start, end, b'0', Digits),
        Check::AN => all_pass_in(data, start, end, b'0', Alphanumeric),
        Check::ANS => all_pass_in(data, start, end, b' ', Printable),
        Check::HEX => all_pass_in(data, start, end, b'0', Hex),
        Check::TRACK => all_pass_in(data, start, end, b'0', Track),
        Check::BCD => all_pass_in(data, start, end, 0x00, Packed),
        Check::FREE => true,
        _ => quick(check, data.get(start..end).unwrap_or_default()),
    }
}

/// Whether every byte is an ASCII hex digit (either case).
#[inline]
pub(crate) fn all_hex(bytes: &[u8]) -> bool {
    all_pass(bytes, Hex)
}

/// Whether every byte is in the class (ASCII bytes).
#[inline]
pub(crate) fn all_in_class(class: DataClass, bytes: &[u8]) -> bool {
    match class {
        DataClass::N => all_pass(bytes, Digits),
        DataClass::Ans => all_pass(bytes, Printable),
        DataClass::An => all_pass(bytes, Alphanumeric),
        DataClass::A => all_pass(bytes, Letters),
        DataClass::Z => all_pass(bytes, Track),
        DataClass::B => true,
        DataClass::As | DataClass::Ns => bytes.iter().all(|&c| class.accepts(c)),
        DataClass::XN => signed_amount(bytes),
    }
}

/// `x+n`: `C` or `D`, then digits (an empty body passes: its length is checked elsewhere).
#[inline(always)]
fn signed_amount(bytes: &[u8]) -> bool {
    match bytes.split_first() {
        Some((&sign, rest)) => ((sign == b'C') | (sign == b'D')) & all_pass(rest, Digits),
        None => true,
    }
}

/// The quick check of a body whose compiled check is a plain scan: true when it passes. False
/// for a body that fails and for [`Check::FULL`]; either way `field` then decides (and finds
/// the offending byte).
#[inline(always)]
pub(crate) fn quick(check: Check, body: &[u8]) -> bool {
    match check {
        Check::DIGITS => all_pass(body, Digits),
        Check::AN => all_pass(body, Alphanumeric),
        Check::ANS => all_pass(body, Printable),
        Check::HEX => all_pass(body, Hex),
        Check::TRACK => all_pass(body, Track),
        Check::BCD => all_pass(body, Packed),
        Check::AMOUNT => signed_amount(body),
        Check::FREE => true,
        _ => false,
    }
}

/// Index of the first byte outside the class (ASCII bytes).
fn first_outside(class: DataClass, bytes: &[u8]) -> Option<usize> {
    if class == DataClass::XN {
        let (&sign, bad_digits) = bytes.split_first()?;
        if sign != b'C' && sign != b'D' {
            return Some(0);
        }
        return first_outside(DataClass::N, bad_digits).map(|i| i + 1);
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
                            // Inside a message, after bytes that fail the class (0x00) and
                            // followed by more of them: only the body counts, wherever it is.
                            for start in [0, 3, 9] {
                                let mut data = [0u8; 60];
                                data[start..start + len].copy_from_slice(body);
                                assert_eq!(
                                    quick_in(check, &data, start, start + len),
                                    expected,
                                    "{class} {len} {at} {bad} at {start}"
                                );
                            }
                        }
                    }
                    body[at] = good;
                }
            }
        }
        // Packed BCD: every nibble 0-9, inside a message too.
        for len in 0..40 {
            let mut body = [0x59u8; 40];
            let body = &mut body[..len];
            assert!(quick(Check::BCD, body));
            for at in 0..len {
                for bad in 0..=255u8 {
                    body[at] = bad;
                    let expected = (bad >> 4) < 10 && (bad & 0xF) < 10;
                    assert_eq!(quick(Check::BCD, body), expected, "{len} {at} {bad}");
                    let mut data = [0xFFu8; 60];
                    data[9..9 + len].copy_from_slice(body);
                    assert_eq!(quick_in(Check::BCD, &data, 9, 9 + len), expected);
                    data[..len].copy_from_slice(body);
                    assert_eq!(quick_in(Check::BCD, &data, 0, len), expected);
                }
                body[at] = 0x59;
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
        // `x+n`: the sign then digits; the quick check agrees with the per-byte rule.
        let reference = |b: &[u8]| match b.split_first() {
            Some((&s, rest)) => (s == b'C' || s == b'D') && rest.iter().all(u8::is_ascii_digit),
            None => true,
        };
        for len in 0..40 {
            let mut body = [b'5'; 40];
            body[0] = b'D';
            let body = &mut body[..len];
            assert!(quick(Check::AMOUNT, body) && all_in_class(DataClass::XN, body));
            for at in 0..len {
                let keep = body[at];
                for bad in 0..=255u8 {
                    body[at] = bad;
                    assert_eq!(
                        quick(Check::AMOUNT, body),
                        reference(body),
                        "{len} {at} {bad}"
                    );
                    assert_eq!(all_in_class(DataClass::XN, body), reference(body));
                }
                body[at] = keep;
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
