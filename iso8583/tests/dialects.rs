//! A dialect that uses every encoding the spec model offers, with bytes worked out by hand:
//! EBCDIC MTI and bitmap, EBCDIC 037 and 1047 text, BCD left and right with pad F, binary, BCD,
//! hex-ASCII and EBCDIC prefixes, LLLL, prefixes counting units, bytes and nibbles, and a
//! bitmapped subfield layout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iso8583_wire::{
    Align, BitmapEncoding, Counts, DataClass, Encoding, ErrorKind, FieldSpec, Layout, Length,
    MessageBuf, MtiEncoding, PadNibble, PrefixEncoding, Spec, Subfield, decode,
};

fn kitchen_sink() -> Spec {
    use DataClass::*;
    let f = FieldSpec::new;
    Spec::new(
        "kitchen-sink",
        MtiEncoding::Ebcdic,
        BitmapEncoding::Ebcdic,
        false,
        vec![
            (
                2,
                f("PAN", N, Length::ll(19), Encoding::Ebcdic037)
                    .with_prefix(PrefixEncoding::Ebcdic, Counts::Units),
            ),
            (3, f("processing code", N, Length::Fixed(6), Encoding::Bcd)),
            (4, f("amount", N, Length::Fixed(12), Encoding::Ascii)),
            (
                22,
                f("entry mode", N, Length::Fixed(3), Encoding::Bcd)
                    .with_bcd(Align::Right, PadNibble::F),
            ),
            (
                35,
                f("track 2", Z, Length::ll(37), Encoding::Bcd)
                    .with_prefix(PrefixEncoding::Binary, Counts::Units)
                    .with_bcd(Align::Left, PadNibble::F),
            ),
            (
                43,
                f("name", Ans, Length::lll(40), Encoding::Ebcdic1047)
                    .with_prefix(PrefixEncoding::HexAscii, Counts::Units),
            ),
            (
                48,
                f(
                    "private",
                    Ans,
                    Length::Var {
                        prefix: 4,
                        max: 9999,
                    },
                    Encoding::Ascii,
                )
                .with_layout(Layout::Bitmapped {
                    bitmap_bytes: 1,
                    subfields: vec![
                        Subfield::new("one", 2),
                        Subfield::new("two", 3),
                        Subfield::new("three", 1),
                    ],
                }),
            ),
            (52, f("PIN", B, Length::Fixed(8), Encoding::Binary)),
            (
                55,
                f("ICC", B, Length::lll(255), Encoding::Binary)
                    .with_prefix(PrefixEncoding::Bcd, Counts::Bytes),
            ),
            (
                62,
                f("nibbles", B, Length::ll(100), Encoding::Binary)
                    .with_prefix(PrefixEncoding::Binary, Counts::Units),
            ),
            (
                63,
                f("hex", B, Length::ll(49), Encoding::HexAscii)
                    .with_prefix(PrefixEncoding::Ascii, Counts::Units),
            ),
        ],
    )
    .unwrap()
}

const EXPECTED: &str = concat!(
    "F0F2F0F0",                         // MTI 0200 in EBCDIC
    "F7F0F0F0F0F4F0F0F2F0F2F1F1F2F0F6", // bitmap 70 00 04 00 20 21 12 06
    "F1F6",
    "F4F7F6F1F7F3F9F0F0F1F0F1F0F1F1F9", // 2: EBCDIC LL + digits
    "000000",                           // 3: BCD
    "303030303030303132353030",         // 4: ASCII
    "F051",                             // 22: BCD right, pad F
    "15",
    "4761739001010119D281 2F", // 35: binary LL = 21 digits
    "303034",
    "C1C3D4C5", // 43: hex LLL, CP1047 "ACME"
    "30303035",
    "413058595A",       // 48: LLLL, "A0XYZ"
    "0102030405060708", // 52: binary
    "0005",
    "9F36020042", // 55: BCD LLL counting bytes
    "04",
    "ABCD", // 62: binary LL counting nibbles
    "3034",
    "44454144", // 63: ASCII LL counting nibbles
);

fn message() -> MessageBuf<'static> {
    let mut m = MessageBuf::new("0200").unwrap();
    m.set(2, "4761739001010119")
        .set(3, 0u32)
        .set(4, 12500u32)
        .set(22, "051")
        .set(35, "4761739001010119=2812")
        .set(43, "ACME")
        .set(48, "A0XYZ")
        .set(52, vec![1, 2, 3, 4, 5, 6, 7, 8])
        .set(55, vec![0x9F, 0x36, 0x02, 0x00, 0x42])
        .set(62, vec![0xAB, 0xCD])
        .set(63, vec![0xDE, 0xAD]);
    m
}

#[test]
fn encodes_every_encoding_exactly() {
    let spec = kitchen_sink();
    let bytes = message().to_vec(&spec).unwrap();
    assert_eq!(hex::encode_upper(&bytes), EXPECTED.replace(' ', ""));
}

#[test]
fn decodes_every_encoding_exactly() {
    let spec = kitchen_sink();
    let bytes = hex::decode(EXPECTED.replace(' ', "")).unwrap();
    let msg = decode(&spec, &bytes).unwrap();
    msg.validate().unwrap();
    assert_eq!(msg.mti(), "0200");
    let got: Vec<(u16, String)> = msg.fields().map(|f| (f.number(), f.to_string())).collect();
    let want: Vec<(u16, &str)> = vec![
        (2, "4761739001010119"),
        (3, "000000"),
        (4, "000000012500"),
        (22, "051"),
        (35, "4761739001010119D2812"),
        (43, "ACME"),
        (48, "A0XYZ"),
        (52, "0102030405060708"),
        (55, "9F36020042"),
        (62, "ABCD"),
        (63, "DEAD"),
    ];
    assert_eq!(
        got,
        want.into_iter()
            .map(|(n, v)| (n, v.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(msg.field(4).unwrap().to_u64(), Ok(12500));
    assert_eq!(msg.field(35).unwrap().len(), 21);
    assert_eq!(msg.field(62).unwrap().len(), 2);
    assert_eq!(
        msg.field(63).unwrap().binary().unwrap().to_vec(),
        [0xDE, 0xAD]
    );
    assert_eq!(
        msg.field(2).unwrap().as_str().unwrap_err().kind(),
        ErrorKind::NotText
    );
    // Bitmapped subfields: bits 1 and 3 of A0.
    assert_eq!(msg.get("48.1").unwrap().unwrap().to_string(), "XY");
    assert!(msg.get("48.2").unwrap().is_none());
    assert_eq!(msg.get("48.3").unwrap().unwrap().to_string(), "Z");
    // Canonical: the decoded view encodes back to the same bytes.
    assert_eq!(msg.to_buf().to_vec(&spec).unwrap(), bytes);
}

#[test]
fn wrong_pad_and_odd_nibbles_are_caught() {
    let spec = kitchen_sink();
    let mut bytes = hex::decode(EXPECTED.replace(' ', "")).unwrap();
    // Field 22 sits after MTI 4 + bitmap 16 + field 2 (18) + 3 (3) + 4 (12) = byte 53.
    assert_eq!(bytes[53], 0xF0);
    bytes[53] = 0x00;
    let err = decode(&spec, &bytes).unwrap().validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "field 22: pad nibble 0x0 should be 0xF (at byte 53)"
    );
    // Field 62's nibble count must be even: its prefix is at byte 98 (55 + 12 + 7 + 9 + 8 + 7).
    let mut bytes = hex::decode(EXPECTED.replace(' ', "")).unwrap();
    assert_eq!(bytes[98], 0x04);
    bytes[98] = 0x03;
    let err = decode(&spec, &bytes).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OddNibbleCount { length: 3 });
    assert_eq!(err.offset(), 98);
}
