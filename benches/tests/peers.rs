//! The peers in the comparison read the reference fixtures exactly as `iso8583-wire` does, so
//! the benches compare the same work: the same field values out of `decode`/`unpack`/`parse`,
//! the same bytes out of `encode`/`pack`/`publish`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use benches::{ISO87_FIXTURES, iso87_fixture};
use common::peers::{self, Row};
use i8583::Unpacker;
use iso8583_wire::{decode, specs};

const PAN: &str = "4761739001010119";
const AMOUNT: &str = "000000012500";
const TRACK2: &str = "4761739001010119=2812201114380440000";
const ICC: &str = "9F26081A2B3C4D5E6F70819F2701809F100C06010A03A0B80000000000009F37045C3D2E1F\
                   9F36020042950500000080009A032611289C01009F02060000000125005F2A0208408202\
                   39009F1A0208409F03060000000000009F3303E0F8C89F34034203009F3501229F1E0831\
                   323334353637388407A00000000310109F0902008C9F4104000012345F3401014F07A000\
                   0000031010";

#[test]
fn the_peer_table_is_pyiso8583_default_ascii() {
    let rows = peers::default_ascii_table();
    assert_eq!(rows.len(), 128);
    assert_eq!(rows.first().map(|r| r.field), Some(1));
    assert_eq!(rows.last().map(|r| r.field), Some(128));
    let at = |n: u16| *rows.iter().find(|r| r.field == n).unwrap();
    let r = |field, len_type, max_len| Row {
        field,
        len_type,
        max_len,
    };
    assert_eq!(at(2), r(2, 2, 19));
    assert_eq!(at(4), r(4, 0, 12));
    assert_eq!(at(35), r(35, 2, 37));
    assert_eq!(at(52), r(52, 0, 16));
    assert_eq!(at(55), r(55, 3, 510));
    assert_eq!(at(65), r(65, 0, 16));
    assert_eq!(at(104), r(104, 3, 100));
    assert_eq!(at(128), r(128, 0, 16));
    let counts = [0u8, 2, 3].map(|t| rows.iter().filter(|r| r.len_type == t).count());
    assert_eq!(counts, [78, 12, 38]);
}

#[test]
fn every_peer_reads_fields_2_4_35_55_of_0200_as_we_do() {
    let bytes = iso87_fixture("0200").unwrap();
    let ours = decode(specs::iso87_ascii(), &bytes).unwrap();
    let expected = [(2u16, PAN), (4, AMOUNT), (35, TRACK2), (55, ICC)];
    for (n, value) in expected {
        assert_eq!(
            ours.field(n).unwrap().raw(),
            value.as_bytes(),
            "ours, field {n}"
        );
    }
    assert_eq!(ours.field(4).unwrap().to_u64(), Ok(12500));
    assert_eq!(ours.field(55).unwrap().binary().unwrap().len(), 150);

    let table = peers::i8583_spec();
    let mut unpacker = Unpacker::new(&bytes);
    let fields = unpacker.unpack(&table).unwrap();
    assert_eq!(
        fields.len(),
        65,
        "primary bitmap only: MTI, bitmap, fields 2 to 64"
    );
    assert_eq!(fields[0], Some(&b"0200"[..]));
    for (n, value) in expected {
        assert_eq!(
            fields[n as usize],
            Some(value.as_bytes()),
            "i8583, field {n}"
        );
    }

    let spec = peers::codec_spec();
    let parsed = iso8583_codec_rs::iso8583::parse_bytes(&bytes, &spec).unwrap();
    assert_eq!(parsed["mti"].as_str(), Some("0200"));
    for (n, value) in expected {
        assert_eq!(
            parsed["fields"][peers::codec_key(n).as_str()].as_str(),
            Some(value),
            "iso8583-codec-rs, field {n}"
        );
    }
}

/// Every field of every fixture, not just four: the peers see the same message as we do.
#[test]
fn every_peer_reads_every_field_of_every_fixture_as_we_do() {
    let table = peers::i8583_spec();
    let spec = peers::codec_spec();
    let mut compared = Vec::new();
    for name in ISO87_FIXTURES {
        let bytes = iso87_fixture(name).unwrap();
        let ours = decode(specs::iso87_ascii(), &bytes).unwrap();
        let mut unpacker = Unpacker::new(&bytes);
        let theirs = unpacker.unpack(&table).unwrap();
        let parsed = iso8583_codec_rs::iso8583::parse_bytes(&bytes, &spec).unwrap();
        let codec_fields = parsed["fields"].as_object().unwrap();

        let i8583_present: Vec<u16> = (2..theirs.len())
            .filter(|&n| theirs[n].is_some())
            .map(|n| n as u16)
            .collect();
        let ours_present: Vec<u16> = ours.fields().map(|f| f.number()).collect();
        assert_eq!(i8583_present, ours_present, "{name}: i8583 field set");
        assert_eq!(codec_fields.len(), ours.len(), "{name}: codec field count");
        for f in ours.fields() {
            let n = f.number();
            assert_eq!(theirs[n as usize], Some(f.raw()), "{name}: i8583 field {n}");
            let text = codec_fields[peers::codec_key(n).as_str()].as_str();
            assert_eq!(
                text.map(str::as_bytes),
                Some(f.raw()),
                "{name}: codec field {n}"
            );
        }
        compared.push((name, ours.len()));
    }
    assert_eq!(compared, [("0800", 3), ("0200", 20), ("large", 40)]);
}

/// The encode benches start from an already-built message: ours from `decode(..).to_buf()`,
/// i8583's packer filled from its own `unpack`, iso8583-codec-rs's JSON from its own `parse`.
/// Each encodes back to exactly the fixture bytes.
#[test]
fn every_peer_encodes_every_fixture_back_to_its_bytes() {
    let table = peers::i8583_spec();
    let spec = peers::codec_spec();
    for name in ISO87_FIXTURES {
        let bytes = iso87_fixture(name).unwrap();

        let ours = decode(specs::iso87_ascii(), &bytes).unwrap().to_buf();
        let mut out = Vec::new();
        assert_eq!(ours.encode(specs::iso87_ascii(), &mut out), Ok(bytes.len()));
        assert_eq!(out, bytes, "{name}: ours");

        let packer = peers::i8583_packer(&table, &bytes);
        assert_eq!(packer.pack(Vec::new()).unwrap(), bytes, "{name}: i8583");

        let parsed = iso8583_codec_rs::iso8583::parse_bytes(&bytes, &spec).unwrap();
        assert_eq!(
            iso8583_codec_rs::iso8583::publish_bytes(&parsed, &spec).unwrap(),
            bytes,
            "{name}: iso8583-codec-rs"
        );
    }
}
