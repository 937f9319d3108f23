//! The peer codecs configured for pyiso8583's `default_ascii` layout, shared by the benches
//! (`benches/iso8583.rs`) and the agreement test (`tests/peers.rs`).
//!
//! Both peers are configured from pyiso8583's own table,
//! `iso8583/tests/vectors/iso87-ascii/spec_default_ascii.json` (`len_type` 0/2/3 and `max_len`
//! in wire characters for every field), not from our spec, so the comparison does not depend
//! on `iso8583-wire` reading that table the same way. Every field is ASCII on the wire with
//! ASCII length prefixes; `b` fields are hex-ASCII, which both peers carry as text.

#![allow(dead_code)]

use std::fmt::Write as _;

use i8583::data::{Size, Spec as I8583Field, Type};
use iso8583_codec_rs::LoadedSpec;

/// pyiso8583 4.0.1's `default_ascii` spec, as saved next to the fixtures.
pub const DEFAULT_ASCII_JSON: &str =
    include_str!("../../../iso8583/tests/vectors/iso87-ascii/spec_default_ascii.json");

/// One data field of the pyiso8583 table: number, `len_type` (0 fixed, 2 LL, 3 LLL) and
/// `max_len` (wire characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    pub field: u16,
    pub len_type: u8,
    pub max_len: u16,
}

/// Reads the numbered fields (1 to 128) of [`DEFAULT_ASCII_JSON`] in file order. The file is
/// pretty-printed with one-space indented top-level keys, each an object on its own lines.
pub fn default_ascii_table() -> Vec<Row> {
    let mut rows = Vec::new();
    let mut rest = DEFAULT_ASCII_JSON;
    while let Some(at) = rest.find("\n \"") {
        rest = &rest[at + 3..];
        let key_end = rest.find('"').unwrap();
        let key = &rest[..key_end];
        let body_end = rest.find('}').unwrap();
        let body = &rest[key_end..body_end];
        assert!(body.contains("\"data_enc\": \"ascii\""), "field {key}");
        assert!(body.contains("\"len_enc\": \"ascii\""), "field {key}");
        if let Ok(field) = key.parse::<u16>() {
            rows.push(Row {
                field,
                len_type: number(body, "\"len_type\":") as u8,
                max_len: number(body, "\"max_len\":"),
            });
        }
        rest = &rest[body_end..];
    }
    rows
}

fn number(body: &str, key: &str) -> u16 {
    let at = body.find(key).unwrap() + key.len();
    let digits: String = body[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

fn row(rows: &[Row], field: usize) -> Row {
    *rows.iter().find(|r| r.field as usize == field).unwrap()
}

/// An i8583 packer filled from i8583's own `unpack` of `bytes` (field 1, the bitmap, is left
/// for the packer to compute).
pub fn i8583_packer<'a>(
    table: &'a [Option<I8583Field>; 129],
    bytes: &'a [u8],
) -> i8583::Packer<'a> {
    let mut unpacker = i8583::Unpacker::new(bytes);
    let fields = unpacker.unpack(table).unwrap();
    let mut packer = i8583::Packer::new(table);
    for (n, value) in fields.iter().enumerate() {
        if let (Some(v), true) = (value, n != 1) {
            packer.set_field(n, std::borrow::Cow::Borrowed(*v)).unwrap();
        }
    }
    packer
}

/// The `i8583` table (index 0 the MTI, 1 the bitmap, 2 to 128 the data fields).
///
/// `i8583` reads the MTI as 4 ASCII characters, the bitmaps as hex-ASCII and LL/LLL prefixes as
/// ASCII digits whatever the table says; the table gives each field's size only. Its data types
/// are never checked (by `unpack` or `pack`), and pyiso8583's table has no classes, so every
/// data field is `ANS`.
pub fn i8583_spec() -> [Option<I8583Field>; 129] {
    let rows = default_ascii_table();
    std::array::from_fn(|n| {
        let (data_type, data_size) = match n {
            0 => (Type::NUM, Size::FIXED(4)),
            1 => (Type::BIN, Size::BMP),
            n => {
                let r = row(&rows, n);
                let size = match r.len_type {
                    0 => Size::FIXED(r.max_len),
                    2 => Size::LL(r.max_len),
                    3 => Size::LLL(r.max_len),
                    other => panic!("field {n}: len_type {other}"),
                };
                (Type::ANS, size)
            }
        };
        Some(I8583Field {
            data_type,
            data_size,
        })
    })
}

/// The JSON field key `iso8583-codec-rs` uses for field `n` under [`codec_spec`].
pub fn codec_key(n: u16) -> String {
    format!("de{n:03}_f{n}")
}

/// The `iso8583-codec-rs` spec: ASCII MTI, hex bitmaps (two at most), ASCII data and
/// prefixes. Every field is a `string` without padding, so values come back exactly as carried
/// (its `binary` type would read raw bytes and its `composite` TLV type raw BER-TLV, neither of
/// which is the hex-ASCII `default_ascii` carries).
pub fn codec_spec() -> LoadedSpec {
    let mut fields = String::new();
    for r in default_ascii_table() {
        if r.field < 2 {
            continue;
        }
        let prefix = match r.len_type {
            0 => "fixed",
            2 => "LLVAR",
            3 => "LLLVAR",
            other => panic!("field {}: len_type {other}", r.field),
        };
        write!(
            fields,
            r#"{{"de":{n},"name":"f{n}","type":"string","length":{len},"prefix":"{prefix}","padding":{{"side":"none"}}}},"#,
            n = r.field,
            len = r.max_len,
        )
        .unwrap();
    }
    let json = format!(
        r#"{{"version":"1987","defaults":{{"encoding":"ascii","prefix_encoding":"ascii","bitmap_encoding":"hex","mti_encoding":"ascii","max_bitmaps":2}},"fields":[{}]}}"#,
        fields.trim_end_matches(',')
    );
    iso8583_codec_rs::load_spec(&json).unwrap()
}
