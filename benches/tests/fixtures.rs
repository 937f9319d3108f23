//! The shared fixtures the benches load: the `iso87-ascii` reference messages and the UnionPay
//! purchase with its frame, checked byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use benches::{ISO87_FIXTURES, cups, iso87_fixture, iso87_fixture_hex};
use iso8583_wire::frame::{CupsHeader, FrameConfig, Tpdu};
use iso8583_wire::{decode, specs};

#[test]
fn the_iso87_fixtures_are_the_reference_messages() {
    let lengths: Vec<(&str, usize)> = ISO87_FIXTURES
        .iter()
        .map(|&n| (n, iso87_fixture(n).unwrap().len()))
        .collect();
    assert_eq!(lengths, [("0800", 55), ("0200", 546), ("large", 1084)]);
    assert_eq!(
        iso87_fixture("0800").unwrap(),
        concat!(
            "0800",
            "8220000000000000",
            "0400000000000000",
            "1128113245",
            "000001",
            "301"
        )
        .as_bytes()
    );
    assert_eq!(iso87_fixture("9999"), None);
    assert_eq!(iso87_fixture_hex("9999"), None);
    let large = iso87_fixture("large").unwrap();
    assert_eq!(&large[..4], b"0100");
    assert_eq!(&large[large.len() - 16..], b"0123456789ABCDEF");
}

/// The purchase body, written out field by field from the UnionPay layout.
const BODY: &str = concat!(
    "0200",                               // MTI, BCD
    "702406C020C09A11", // bitmap: 2 3 4 11 14 22 23 25 26 35 41 42 49 52 53 55 60 64
    "16",               // 2: LL prefix, BCD
    "6212263602012345", //    the PAN, 16 digits
    "000000",           // 3
    "000000012345",     // 4
    "000123",           // 11
    "2812",             // 14
    "0210",             // 22: 021, left-aligned, pad 0
    "0001",             // 23: 001, right-aligned
    "00",               // 25
    "12",               // 26
    "34",               // 35: LL prefix 34
    "6212263602012345D28122201234567890", //     track 2, '=' as D
    "3130303130303031", // 41: ASCII "10010001"
    "383938333130303438313431323334", // 42: ASCII "898310048141234"
    "313536",           // 49: ASCII "156"
    "3C1E8B5A902D47F6", // 52
    "2600000000000000", // 53: 16 digits BCD
    "0177",             // 55: LLL 177 bytes, then the ICC data
);
const BODY_TAIL: &str = concat!(
    "0011",
    "220000010000",     // 60: LLL 11 digits, padded right
    "5DA40E71C3289B16", // 64
);

#[test]
fn the_unionpay_purchase_is_laid_out_as_the_spec_says() {
    let body = cups::purchase_body().unwrap();
    let icc = benches::unhex(cups::ICC_HEX).unwrap();
    assert_eq!(icc.len(), 177);
    let expected = [
        benches::unhex(BODY).unwrap(),
        icc.clone(),
        benches::unhex(BODY_TAIL).unwrap(),
    ]
    .concat();
    assert_eq!(hex::encode_upper(&body), hex::encode_upper(&expected));
    assert_eq!(body.len(), 294);

    let msg = decode(specs::cups_pos(), &body).unwrap();
    msg.validate().unwrap();
    let text: Vec<(u16, String)> = msg
        .fields()
        .map(|f| (f.number(), f.to_string()))
        .filter(|(n, _)| *n != 55)
        .collect();
    let expected: Vec<(u16, String)> = [
        (2, "6212263602012345"),
        (3, "000000"),
        (4, "000000012345"),
        (11, "000123"),
        (14, "2812"),
        (22, "021"),
        (23, "001"),
        (25, "00"),
        (26, "12"),
        (35, "6212263602012345D28122201234567890"),
        (41, "10010001"),
        (42, "898310048141234"),
        (49, "156"),
        (52, "3C1E8B5A902D47F6"),
        (53, "2600000000000000"),
        (60, "22000001000"),
        (64, "5DA40E71C3289B16"),
    ]
    .into_iter()
    .map(|(n, v)| (n, v.to_string()))
    .collect();
    assert_eq!(text, expected);
    assert_eq!(msg.field(55).unwrap().raw(), icc);
    assert_eq!(msg.field(4).unwrap().to_u64(), Ok(12345));
    assert_eq!(msg.get("60.1").unwrap().unwrap().to_string(), "22");
    assert_eq!(msg.get("60.2").unwrap().unwrap().to_string(), "000001");
    assert_eq!(msg.get("60.3").unwrap().unwrap().to_string(), "000");
}

#[test]
fn the_unionpay_frame_is_length_tpdu_header_body() {
    let body = cups::purchase_body().unwrap();
    let wire = cups::purchase_frame().unwrap();
    // By hand: 2-byte big-endian length of what follows, TPDU, header, body.
    let by_hand = [
        &[0x01, 0x31][..],
        &[0x60, 0x00, 0x04, 0x00, 0x00],
        &[0x60, 0x22, 0x00, 0x00, 0x00, 0x00],
        &body,
    ]
    .concat();
    assert_eq!(wire, by_hand);
    assert_eq!(wire.len(), 2 + 305);

    let (frame, used) = FrameConfig::cups_pos().decode(&wire).unwrap().unwrap();
    assert_eq!(used, 307);
    assert_eq!(frame.tpdu, Some(Tpdu::new(0x0004, 0x0000)));
    assert_eq!(
        frame.header,
        Some(CupsHeader::from_bytes(cups::HEADER).unwrap())
    );
    assert_eq!(frame.body, body);
}
