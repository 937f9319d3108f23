//! The UnionPay POS dialect against the examples of `shared/spec/unionpay-pos.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iso8583_wire::{ErrorKind, MessageBuf, Part, decode, specs};

/// The MAC example's MAB (MTI through field 63) followed by its MAC text `8A9E91B8` in field 64.
const PURCHASE: &str = "0200302004C020C0981100000000000000005100183402100006324392260009942820D1312101120084393136363838303134303030303030303030303030303031313536ACF46E73838A82F92600000000000000000822000001\
                        3841394539314238";

fn purchase() -> Vec<u8> {
    hex::decode(PURCHASE).unwrap()
}

#[test]
fn decodes_the_mac_example_purchase() {
    let bytes = purchase();
    let msg = decode(specs::cups_pos(), &bytes).unwrap();
    msg.validate().unwrap();
    assert_eq!(msg.mti(), "0200");
    let values: Vec<(u16, String, usize)> = msg
        .fields()
        .map(|f| (f.number(), f.to_string(), f.offset()))
        .collect();
    let expected: Vec<(u16, String, usize)> = [
        (3, "000000", 10),
        (4, "000000000051", 13),
        (11, "001834", 19),
        (22, "021", 22),
        (25, "00", 24),
        (26, "06", 25),
        (35, "4392260009942820D131210112008439", 26),
        (41, "16688014", 43),
        (42, "000000000000001", 51),
        (49, "156", 66),
        (52, "ACF46E73838A82F9", 69),
        (53, "2600000000000000", 77),
        (60, "22000001", 85),
        (64, "3841394539314238", 91),
    ]
    .into_iter()
    .map(|(n, v, o)| (n, v.to_string(), o))
    .collect();
    assert_eq!(values, expected);
    // Typed access.
    assert_eq!(msg.field(4).unwrap().to_u64(), Ok(51));
    assert_eq!(msg.field(35).unwrap().len(), 32);
    assert_eq!(msg.field(22).unwrap().raw(), [0x02, 0x10]);
    assert_eq!(
        msg.field(64).unwrap().binary().unwrap().as_slice(),
        Some(&b"8A9E91B8"[..])
    );
    // Subfields of 60 by path.
    assert_eq!(msg.get("60.1").unwrap().unwrap().to_string(), "22");
    assert_eq!(msg.get("60.2").unwrap().unwrap().to_string(), "000001");
    assert!(msg.get("60.3").unwrap().is_none());
    assert_eq!(msg.get("41").unwrap().unwrap().to_string(), "16688014");
    assert!(msg.get("2").unwrap().is_none());
    assert_eq!(
        msg.get("41.1").unwrap_err().kind(),
        ErrorKind::NoSuchSubfield
    );
    // Canonical: encodes back to the same bytes.
    assert_eq!(msg.to_buf().to_vec(specs::cups_pos()).unwrap(), bytes);
}

#[test]
fn describe_masks_track_pin_and_mac() {
    let bytes = purchase();
    let msg = decode(specs::cups_pos(), &bytes).unwrap();
    let text = msg.describe().to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "MTI    0200  (cups-pos)");
    assert_eq!(lines[1], "Bitmap 302004C020C09811");
    assert!(
        text.contains(
            " 35  Track 2 data .......................... 439226******2820D***************\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(" 52  PIN data .............................. [masked, 8 bytes]\n"),
        "{text}"
    );
    assert!(
        text.contains(" 64  Message authentication code ........... [masked, 8 bytes]\n"),
        "{text}"
    );
    assert!(
        text.contains("       60.2 Batch number ................... 000001\n"),
        "{text}"
    );
    assert!(!text.contains("4392260009942820"));
    let clear = msg.describe().unmasked().to_string();
    assert!(clear.contains("4392260009942820D131210112008439"));
    assert!(clear.contains("ACF46E73838A82F9"));
}

#[test]
fn builds_a_sign_in_request() {
    let mut m = MessageBuf::new("0800").unwrap();
    m.set(11, 1u32)
        .set(41, "12345678")
        .set(42, "123456789012345")
        .set(60, "00000001003")
        .set(63, "01 ");
    let bytes = m.to_vec(specs::cups_pos()).unwrap();
    assert_eq!(
        hex::encode_upper(&bytes),
        "0800\
         0020000000C00012\
         000001\
         3132333435363738\
         313233343536373839303132333435\
         0011000000010030\
         0003303120"
    );
    let back = decode(specs::cups_pos(), &bytes).unwrap();
    assert_eq!(back.get("60.3").unwrap().unwrap().to_string(), "003");
    assert_eq!(back.get("63.1").unwrap().unwrap().to_string(), "01 ");
}

#[test]
fn icc_data_by_tag() {
    let mut m = MessageBuf::new("0200").unwrap();
    let icc = hex::decode("9F2608A1B2C3D4E5F607185A08622202123456789F9F36020042").unwrap();
    m.set(3, "000000").set(55, icc);
    let bytes = m.to_vec(specs::cups_pos()).unwrap();
    let msg = decode(specs::cups_pos(), &bytes).unwrap();
    assert_eq!(
        msg.get("55.9F26").unwrap().unwrap().to_string(),
        "A1B2C3D4E5F60718"
    );
    assert!(msg.get("55.9F10").unwrap().is_none());
    let text = msg.describe().to_string();
    assert!(
        text.contains(" 55  ICC system related data ............... [TLV, 26 bytes]\n"),
        "{text}"
    );
    assert!(
        text.contains("       5A .................................. 622202******789F\n"),
        "{text}"
    );
    assert!(
        text.contains("       9F36 ................................ 0042\n"),
        "{text}"
    );
    assert!(!text.contains("622202123456789F"), "{text}");
}

#[test]
fn errors_name_field_and_offset() {
    let mut bytes = purchase();
    // Field 35's LL prefix sits at byte 26: 0x32 digits -> claim 41, over the maximum 37.
    bytes[26] = 0x41;
    let err = decode(specs::cups_pos(), &bytes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "field 35: length 41 exceeds the maximum 37 (prefix at byte 26)"
    );
    // A non-BCD prefix byte.
    bytes[26] = 0x3A;
    let err = decode(specs::cups_pos(), &bytes).unwrap_err();
    assert_eq!(
        (err.kind(), err.part(), err.offset()),
        (
            ErrorKind::BadLengthPrefix { found: 0x3A },
            Part::Field(35),
            26
        )
    );
    // Truncated inside field 42.
    let cut = &purchase()[..60];
    let err = decode(specs::cups_pos(), cut).unwrap_err();
    assert_eq!(
        (err.kind(), err.part(), err.offset()),
        (ErrorKind::Truncated { needed: 6 }, Part::Field(42), 51)
    );
    // A pad nibble that is not 0 in field 22 is a content error found by validate.
    let mut bytes = purchase();
    bytes[23] = 0x1F;
    let msg = decode(specs::cups_pos(), &bytes).unwrap();
    let err = msg.validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "field 22: pad nibble 0xF should be 0x0 (at byte 23)"
    );
}
