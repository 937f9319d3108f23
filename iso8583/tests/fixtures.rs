//! The reference fixtures (pyiso8583 `default_ascii` layout) decode to exactly the values in
//! their JSON files and encode back to exactly their bytes; the built-in `iso87-ascii` and
//! `iso87-binary` specs agree field for field with pyiso8583's tables.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iso8583_wire::{Counts, Encoding, Length, MessageBuf, decode, specs};
use serde_json::Value as Json;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/iso87-ascii");

fn fixture(name: &str) -> (Vec<u8>, serde_json::Map<String, Json>) {
    let hex = std::fs::read_to_string(format!("{DIR}/{name}.hex")).unwrap();
    let bytes = hex::decode(hex.trim()).unwrap();
    let json: Json =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/{name}.json")).unwrap())
            .unwrap();
    (bytes, json.as_object().unwrap().clone())
}

fn check(name: &str, expected_len: usize, expected_fields: usize) {
    let spec = specs::iso87_ascii();
    let (bytes, json) = fixture(name);
    assert_eq!(bytes.len(), expected_len);
    let msg = decode(spec, &bytes).unwrap();
    msg.validate().unwrap();
    assert_eq!(msg.mti(), json["t"].as_str().unwrap());
    let words = msg.bitmap().words();
    assert_eq!(format!("{:016X}", words[0]), json["p"].as_str().unwrap());
    if let Some(secondary) = json.get("1") {
        assert_eq!(format!("{:016X}", words[1]), secondary.as_str().unwrap());
    }
    let mut seen = 0;
    for (key, value) in &json {
        let Ok(n) = key.parse::<u16>() else { continue };
        if n == 1 {
            continue;
        }
        let field = msg
            .field(n)
            .unwrap_or_else(|| panic!("{name}: field {n} missing"));
        assert_eq!(
            field.to_string(),
            value.as_str().unwrap(),
            "{name}: field {n}"
        );
        seen += 1;
    }
    assert_eq!(seen, expected_fields);
    assert_eq!(msg.len(), expected_fields, "no field beyond the JSON ones");
    // Encode back: from the decoded view and from the JSON values.
    assert_eq!(
        msg.to_buf().to_vec(spec).unwrap(),
        bytes,
        "{name}: re-encode of the decoded view"
    );
    let mut buf = MessageBuf::new(json["t"].as_str().unwrap()).unwrap();
    for (key, value) in &json {
        if let Ok(n) = key.parse::<u16>() {
            buf.set(n, value.as_str().unwrap());
        }
    }
    assert_eq!(
        buf.to_vec(spec).unwrap(),
        bytes,
        "{name}: encode of the JSON values"
    );
}

#[test]
fn fixture_0800() {
    check("0800", 55, 3);
}

#[test]
fn fixture_0200() {
    check("0200", 546, 20);
}

#[test]
fn fixture_large() {
    check("large", 1084, 40);
}

#[test]
fn fixture_0200_typed_accessors() {
    let (bytes, _) = fixture("0200");
    let msg = decode(specs::iso87_ascii(), &bytes).unwrap();
    assert_eq!(msg.field(4).unwrap().to_u64(), Ok(12500));
    assert_eq!(msg.field(41).unwrap().as_str(), Ok("TERM0001"));
    let pin = msg.field(52).unwrap().binary().unwrap();
    assert_eq!(
        pin.to_vec(),
        [0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0x07, 0x18]
    );
    assert_eq!(
        msg.field(2).unwrap().digits().to_string(),
        "4761739001010119"
    );
    // Field 2 starts right after MTI (4) and bitmap (16): prefix "16" at byte 20.
    assert_eq!(
        (
            msg.field(2).unwrap().offset(),
            msg.field(2).unwrap().body_offset()
        ),
        (20, 22)
    );
}

/// pyiso8583 describes each field by `len_type` (0 fixed, 2 LL, 3 LLL) and `max_len` in wire
/// characters (ASCII spec) or bytes (binary spec). Ours must give the same wire layout.
fn compare_table(file: &str, spec: &iso8583_wire::Spec) {
    let table: Json =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/{file}")).unwrap()).unwrap();
    let mut compared = 0;
    for (key, def) in table.as_object().unwrap() {
        let Ok(n) = key.parse::<u16>() else { continue };
        let ours = spec
            .field(n)
            .unwrap_or_else(|| panic!("field {n} not defined"));
        let len_type = def["len_type"].as_u64().unwrap();
        let max_len = def["max_len"].as_u64().unwrap() as usize;
        let wire_max = match ours.encoding {
            Encoding::HexAscii => ours.length.max() as usize * 2,
            _ => ours.length.max() as usize,
        };
        assert_eq!(wire_max, max_len, "field {n} maximum");
        match ours.length {
            Length::Fixed(_) => assert_eq!(len_type, 0, "field {n} fixed"),
            Length::Var { prefix, .. } => {
                assert_eq!(len_type, prefix as u64, "field {n} prefix digits");
                // pyiso counts what is on the wire: characters, or bytes of binary fields.
                let counts_wire = ours.counts == Counts::Bytes || ours.encoding != Encoding::Binary;
                assert!(counts_wire, "field {n} prefix counts wire units");
            }
        }
        let binary = def["data_enc"] == "b";
        assert_eq!(
            binary,
            ours.encoding == Encoding::Binary,
            "field {n} encoding"
        );
        compared += 1;
    }
    assert_eq!(compared, 128);
}

#[test]
fn iso87_ascii_matches_pyiso8583_default_ascii() {
    compare_table("spec_default_ascii.json", specs::iso87_ascii());
}

#[test]
fn iso87_binary_matches_pyiso8583_default() {
    compare_table("spec_default_binary_bitmap.json", specs::iso87_binary());
}
