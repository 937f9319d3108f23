//! No input makes the decoders panic, and bad input gives exactly the error it should.
//!
//! - Random bytes through `decode`, `decode_partial`, `scan`, `validate` and every field
//!   accessor, for every built-in spec (the same exercise the fuzz targets run, from
//!   `fuzz/src/lib.rs`).
//! - The iso87-ascii fixtures with random bytes flipped, inserted, deleted or cut off.
//! - Exact errors: truncation at every length of the 0200 fixture, bad length prefixes, a
//!   length over the maximum, an undefined field, trailing bytes, and what `decode_partial`
//!   keeps before each.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod harness;

use iso8583_wire::{Error, ErrorKind, Message, Part, decode, decode_partial, scan, specs};
use proptest::prelude::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/iso87-ascii");

fn fixture(name: &str) -> Vec<u8> {
    let hex = std::fs::read_to_string(format!("{DIR}/{name}.hex")).unwrap();
    hex::decode(hex.trim()).unwrap()
}

/// Every `*.hex` fixture, by name.
fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hex"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let bytes = hex::decode(std::fs::read_to_string(&p).unwrap().trim()).unwrap();
            (name, bytes)
        })
        .collect();
    all.sort();
    all
}

fn numbers(m: &Message<'_>) -> Vec<u16> {
    m.fields().map(|f| f.number()).collect()
}

// ---------------------------------------------------------------------------------------------
// Random input.

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        for name in specs::NAMES {
            harness::exercise(specs::by_name(name).unwrap(), &data);
        }
    }

    /// Random bytes behind a valid MTI and bitmap get much further into the field walk.
    #[test]
    fn random_bodies_behind_valid_headers_never_panic(
        bitmap in any::<[u8; 16]>(),
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let hex = hex::encode_upper(bitmap);
        let mut ascii = b"0200".to_vec();
        ascii.extend_from_slice(hex.as_bytes());
        ascii.extend_from_slice(&body);
        let mut binary = b"0200".to_vec();
        binary.extend_from_slice(&bitmap);
        binary.extend_from_slice(&body);
        let mut bcd = vec![0x02, 0x00];
        bcd.extend_from_slice(&bitmap);
        bcd.extend_from_slice(&body);
        for data in [&ascii, &binary, &bcd] {
            for name in specs::NAMES {
                harness::exercise(specs::by_name(name).unwrap(), data);
            }
        }
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..3,
        edits in proptest::collection::vec((0u8..4, any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let all = fixtures();
        let mut data = all[which % all.len()].1.clone();
        for (op, at, byte) in edits {
            match op {
                // Flip some bits of a byte.
                0 if !data.is_empty() => {
                    let i = at.index(data.len());
                    data[i] ^= byte.max(1);
                }
                // Insert a byte.
                1 => {
                    let i = at.index(data.len() + 1);
                    data.insert(i, byte);
                }
                // Delete a byte.
                2 if !data.is_empty() => {
                    let i = at.index(data.len());
                    data.remove(i);
                }
                // Cut off the end.
                _ => {
                    let len = at.index(data.len() + 1);
                    data.truncate(len);
                }
            }
        }
        for name in specs::NAMES {
            harness::exercise(specs::by_name(name).unwrap(), &data);
        }
    }
}

#[test]
fn the_fixtures_are_all_there() {
    let names: Vec<(String, usize)> = fixtures().into_iter().map(|(n, b)| (n, b.len())).collect();
    assert_eq!(
        names,
        [
            ("0200".to_string(), 546),
            ("0800".to_string(), 55),
            ("large".to_string(), 1084)
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Exact errors on the 0200 fixture (iso87-ascii).

/// Where each part of the 0200 fixture sits: (part, prefix offset, body offset, end).
const LAYOUT_0200: &[(Part, usize, usize, usize)] = &[
    (Part::Mti, 0, 0, 4),
    (Part::Bitmap(1), 4, 4, 20),
    (Part::Field(2), 20, 22, 38),
    (Part::Field(3), 38, 38, 44),
    (Part::Field(4), 44, 44, 56),
    (Part::Field(7), 56, 56, 66),
    (Part::Field(11), 66, 66, 72),
    (Part::Field(12), 72, 72, 78),
    (Part::Field(13), 78, 78, 82),
    (Part::Field(14), 82, 82, 86),
    (Part::Field(18), 86, 86, 90),
    (Part::Field(22), 90, 90, 93),
    (Part::Field(25), 93, 93, 95),
    (Part::Field(35), 95, 97, 133),
    (Part::Field(37), 133, 133, 145),
    (Part::Field(41), 145, 145, 153),
    (Part::Field(42), 153, 153, 168),
    (Part::Field(43), 168, 168, 208),
    (Part::Field(49), 208, 208, 211),
    (Part::Field(52), 211, 211, 227),
    (Part::Field(55), 227, 230, 530),
    (Part::Field(64), 530, 530, 546),
];

/// The error a cut at `cut` bytes must give, from the layout, and the fields decoded before it.
fn expected_cut(cut: usize) -> (Error, Vec<u16>) {
    let mut before = Vec::new();
    for &(part, prefix, body, end) in LAYOUT_0200 {
        if cut >= end {
            if let Part::Field(n) = part {
                before.push(n);
            }
            continue;
        }
        let (needed, at) = if cut < body {
            (body - cut, prefix)
        } else {
            (end - cut, body)
        };
        return (
            Error::new(ErrorKind::Truncated { needed }, part, at),
            before,
        );
    }
    unreachable!("cut {cut} is not short")
}

#[test]
fn truncation_at_every_length_of_0200() {
    let spec = specs::iso87_ascii();
    let bytes = fixture("0200");
    assert_eq!(bytes.len(), 546);
    for cut in 0..bytes.len() {
        let data = &bytes[..cut];
        let (expected, before) = expected_cut(cut);
        assert_eq!(decode(spec, data).unwrap_err(), expected, "cut at {cut}");
        let (partial, err) = decode_partial(spec, data);
        assert_eq!(err, Some(expected), "cut at {cut}");
        assert_eq!(numbers(&partial), before, "cut at {cut}");
    }
    assert_eq!(decode(spec, &bytes).unwrap().len(), 20);
}

#[test]
fn truncation_of_0200_at_chosen_points() {
    let spec = specs::iso87_ascii();
    let bytes = fixture("0200");
    let cut = |n: usize| decode(spec, &bytes[..n]).unwrap_err();
    let truncated = |needed| ErrorKind::Truncated { needed };
    // (cut, needed, part, offset)
    for (n, needed, part, at) in [
        (0, 4, Part::Mti, 0),
        (3, 1, Part::Mti, 0),
        (4, 16, Part::Bitmap(1), 4),
        (10, 10, Part::Bitmap(1), 4),
        (20, 2, Part::Field(2), 20),
        (21, 1, Part::Field(2), 20),
        (30, 8, Part::Field(2), 22),
        (38, 6, Part::Field(3), 38),
        (96, 1, Part::Field(35), 95),
        (100, 33, Part::Field(35), 97),
        (228, 2, Part::Field(55), 227),
        (300, 230, Part::Field(55), 230),
        (545, 1, Part::Field(64), 530),
    ] {
        assert_eq!(
            cut(n),
            Error::new(truncated(needed), part, at),
            "cut at {n}"
        );
    }
    assert_eq!(
        cut(300).to_string(),
        "field 55: truncated: need 230 more bytes (at byte 230)"
    );
    assert!(cut(300).is_truncated());
    // decode_partial keeps exactly the fields before the cut, with their values.
    let (partial, err) = decode_partial(spec, &bytes[..100]);
    assert_eq!(err, Some(Error::new(truncated(33), Part::Field(35), 97)));
    assert_eq!(numbers(&partial), [2, 3, 4, 7, 11, 12, 13, 14, 18, 22, 25]);
    assert_eq!(partial.field(25).unwrap().to_string(), "00");
    assert!(partial.field(35).is_none());
    assert_eq!(partial.validate(), Ok(()));
    // scan up to field 25 does not need the rest.
    let m = scan(spec, &bytes[..100], 25).unwrap();
    assert_eq!(numbers(&m), [2, 3, 4, 7, 11, 12, 13, 14, 18, 22, 25]);
    assert_eq!(
        scan(spec, &bytes[..100], 35).unwrap_err(),
        Error::new(truncated(33), Part::Field(35), 97)
    );
}

#[test]
fn letter_in_a_length_prefix() {
    let spec = specs::iso87_ascii();
    let mut bytes = fixture("0200");
    // Field 2's prefix "16" at bytes 20-21: make it "1X".
    bytes[21] = b'X';
    let err = decode(spec, &bytes).unwrap_err();
    assert_eq!(
        err,
        Error::new(
            ErrorKind::BadLengthPrefix { found: b'X' },
            Part::Field(2),
            21
        )
    );
    assert_eq!(
        err.to_string(),
        "field 2: bad length prefix: byte 0x58 is not a valid digit (prefix at byte 21)"
    );
    let (partial, _) = decode_partial(spec, &bytes);
    assert_eq!(numbers(&partial), Vec::<u16>::new());

    // Field 55's prefix "300" at bytes 227-229: make it "3A0".
    let mut bytes = fixture("0200");
    bytes[228] = b'A';
    let (partial, err) = decode_partial(spec, &bytes);
    assert_eq!(
        err,
        Some(Error::new(
            ErrorKind::BadLengthPrefix { found: b'A' },
            Part::Field(55),
            228
        ))
    );
    assert_eq!(
        numbers(&partial),
        [
            2, 3, 4, 7, 11, 12, 13, 14, 18, 22, 25, 35, 37, 41, 42, 43, 49, 52
        ]
    );
    assert_eq!(partial.field(52).unwrap().to_string(), "A1B2C3D4E5F60718");
}

#[test]
fn bcd_length_prefix_with_a_hex_nibble() {
    // cups-pos 0200 with field 2 only; its one-byte BCD prefix is 0x1A.
    let mut data = vec![0x02, 0x00, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x1A];
    data.extend_from_slice(&[0x12; 8]);
    let err = decode(specs::cups_pos(), &data).unwrap_err();
    assert_eq!(
        err,
        Error::new(
            ErrorKind::BadLengthPrefix { found: 0x1A },
            Part::Field(2),
            10
        )
    );
}

#[test]
fn track_2_longer_than_its_maximum() {
    let spec = specs::iso87_ascii();
    let mut bytes = fixture("0200");
    // Field 35's LL prefix "36" sits at bytes 95-96.
    assert_eq!(&bytes[95..97], b"36");
    bytes[95..97].copy_from_slice(b"41");
    let err = decode(spec, &bytes).unwrap_err();
    assert_eq!(
        err,
        Error::new(
            ErrorKind::OverMaximum {
                length: 41,
                max: 37
            },
            Part::Field(35),
            95
        )
    );
    assert_eq!(
        err.to_string(),
        "field 35: length 41 exceeds the maximum 37 (prefix at byte 95)"
    );
    assert_eq!(err.field(), Some(35));
    let (partial, err2) = decode_partial(spec, &bytes);
    assert_eq!(err2, Some(err));
    assert_eq!(numbers(&partial), [2, 3, 4, 7, 11, 12, 13, 14, 18, 22, 25]);
    // 37 is within the maximum: the walk goes on one byte out of step. Field 55's prefix is
    // then read at 228 as "009": nine hex characters cannot be whole bytes of a binary field.
    bytes[95..97].copy_from_slice(b"37");
    assert_eq!(
        decode(spec, &bytes).unwrap_err(),
        Error::new(
            ErrorKind::OddNibbleCount { length: 9 },
            Part::Field(55),
            228
        )
    );
}

#[test]
fn undefined_field_in_cups_pos() {
    // MTI 0200, bitmap with bits 3 and 5; cups-pos defines field 3 but not field 5.
    let data = [
        0x02, 0x00, 0x28, 0, 0, 0, 0, 0, 0, 0, // MTI, bitmap
        0x00, 0x00, 0x01, // field 3: 000001
        0x00, 0x00, // what would be field 5
    ];
    let spec = specs::cups_pos();
    let err = decode(spec, &data).unwrap_err();
    assert_eq!(
        err,
        Error::new(ErrorKind::UndefinedField, Part::Field(5), 13)
    );
    assert_eq!(
        err.to_string(),
        "field 5: present in the bitmap but not defined in the spec (at byte 13)"
    );
    let (partial, err2) = decode_partial(spec, &data);
    assert_eq!(err2, Some(err));
    assert_eq!(numbers(&partial), [3]);
    assert_eq!(partial.field(3).unwrap().to_string(), "000001");
    assert_eq!(partial.field(3).unwrap().to_u64(), Ok(1));
    assert_eq!(partial.mti(), "0200");
}

#[test]
fn trailing_bytes_after_the_last_field() {
    let spec = specs::iso87_ascii();
    let mut bytes = fixture("0800");
    assert_eq!(bytes.len(), 55);
    bytes.extend_from_slice(b"XYZ");
    let err = decode(spec, &bytes).unwrap_err();
    assert_eq!(
        err,
        Error::new(ErrorKind::TrailingBytes { count: 3 }, Part::Message, 55)
    );
    assert_eq!(
        err.to_string(),
        "message: 3 trailing bytes after the last field (at byte 55)"
    );
    // Every field was decoded before the trailing bytes were found.
    let (partial, err2) = decode_partial(spec, &bytes);
    assert_eq!(err2, Some(err));
    assert_eq!(numbers(&partial), [7, 11, 70]);
    assert_eq!(partial.field(70).unwrap().to_u64(), Ok(301));
    // scan stops before a field past `last` without looking further.
    assert_eq!(numbers(&scan(spec, &bytes, 69).unwrap()), [7, 11]);
}

/// LIBRARY BUG (reported): `scan` is documented as "trailing bytes are not checked", but when
/// `last` is at or past the last field present the walk runs to the end and reports them.
#[test]
fn scan_ignores_trailing_bytes_as_documented() {
    let spec = specs::iso87_ascii();
    let mut bytes = fixture("0800");
    bytes.extend_from_slice(b"XYZ");
    let m = scan(spec, &bytes, 128).unwrap();
    assert_eq!(numbers(&m), [7, 11, 70]);
}

#[test]
fn bad_mti_and_bad_bitmap() {
    let spec = specs::iso87_ascii();
    let mut bytes = fixture("0800");
    bytes[2] = b'X';
    assert_eq!(
        decode(spec, &bytes).unwrap_err(),
        Error::new(ErrorKind::BadMti, Part::Mti, 2)
    );
    let mut bytes = fixture("0800");
    bytes[5] = b'G';
    assert_eq!(
        decode(spec, &bytes).unwrap_err(),
        Error::new(ErrorKind::BadHex { found: b'G' }, Part::Bitmap(1), 5)
    );
    // The secondary bitmap (bytes 20-35) cut in the middle.
    let bytes = fixture("0800");
    assert_eq!(
        decode(spec, &bytes[..30]).unwrap_err(),
        Error::new(ErrorKind::Truncated { needed: 6 }, Part::Bitmap(2), 20)
    );
}

/// `Message::validate` (which checks adjacent fields under the same quick check as one stretch
/// of bytes) and `decode_validated` report exactly what checking field by field reports: the
/// first field, in order, whose `Field::validate` fails, with its offset. Every byte of the
/// fixtures and of a UnionPay purchase is replaced in turn by bytes of every kind.
#[test]
fn validate_agrees_with_field_by_field_at_every_byte() {
    let cups = hex::decode(concat!(
        "0200302004C020C0981100000000000000005100183402100006324392260009942820D1312101120084",
        "393136363838303134303030303030303030303030303031313536ACF46E73838A82F92600000000000000",
        "0008220000013841394539314238"
    ))
    .unwrap();
    let mut messages: Vec<(&iso8583_wire::Spec, Vec<u8>)> = fixtures()
        .into_iter()
        .map(|(_, bytes)| (specs::iso87_ascii(), bytes))
        .collect();
    messages.push((specs::cups_pos(), cups));
    let mut checked = 0;
    let mut content_errors = 0;
    for (spec, bytes) in messages {
        assert_eq!(decode(spec, &bytes).unwrap().validate(), Ok(()));
        for i in 0..bytes.len() {
            for replacement in [
                0x00, b'0', b'9', b'A', b'g', b'z', b' ', b'=', b'D', 0x7F, 0xC1,
            ] {
                let mut mutated = bytes.clone();
                mutated[i] = replacement;
                let both = iso8583_wire::decode_validated(spec, &mutated);
                match decode(spec, &mutated) {
                    Ok(m) => {
                        let expected = m.fields().find_map(|f| f.validate().err());
                        assert_eq!(
                            m.validate().err(),
                            expected,
                            "byte {i} = {replacement:#04x}"
                        );
                        assert_eq!(both.err(), expected, "byte {i} = {replacement:#04x}");
                        checked += 1;
                        content_errors += usize::from(expected.is_some());
                    }
                    Err(e) => assert_eq!(both.err(), Some(e)),
                }
            }
        }
    }
    // Most replacements decode (they are inside values), and about half of those break a
    // class.
    assert_eq!((checked, content_errors), (18_151, 9_238));
}
