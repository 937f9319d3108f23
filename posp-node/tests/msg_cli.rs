//! `posp-node msg`: decode, encode, spec, and bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_posp-node");
const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../iso8583/tests/vectors/iso87-ascii"
);

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

#[test]
fn decode_0800_fixture_to_json() {
    let hex = std::fs::read_to_string(format!("{VECTORS}/0800.hex")).unwrap();
    let out = run(&["msg", "decode", hex.trim()], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"mti\": \"0800\", \"fields\": {\"7\": \"1128113245\", \"11\": \"000001\", \"70\": \"301\"}}\n"
    );
}

#[test]
fn decode_then_encode_gives_the_input_back_for_every_fixture() {
    for name in ["0800", "0200", "large"] {
        let hex = std::fs::read_to_string(format!("{VECTORS}/{name}.hex")).unwrap();
        let json = run(&["msg", "decode", "-"], &hex);
        assert_eq!(json.status.code(), Some(0), "{}", text(&json.stderr));
        let back = run(&["msg", "encode"], &text(&json.stdout));
        assert_eq!(back.status.code(), Some(0), "{}", text(&back.stderr));
        assert_eq!(
            text(&back.stdout).trim(),
            hex.trim().to_uppercase(),
            "{name}"
        );
    }
}

/// The UnionPay MAC example message, framed: length 0x006E (110 = TPDU 5 + header 6 + message 99), TPDU, header.
const CUPS_FRAMED: &str = "006E 6000040000 602200000000 0200302004C020C0981100000000000000005100183402100006324392260009942820D1312101120084393136363838303134303030303030303030303030303031313536ACF46E73838A82F92600000000000000000822000001 3841394539314238";

#[test]
fn cups_pos_framed_round_trip() {
    let out = run(
        &[
            "msg", "decode", "--spec", "cups-pos", "--frame", "cups-pos", "-",
        ],
        CUPS_FRAMED,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json = text(&out.stdout);
    assert!(json.starts_with("{\"mti\": \"0200\", \"tpdu\": \"6000040000\", \"header\": \"602200000000\", \"fields\": {\"3\": \"000000\", \"4\": \"000000000051\""), "{json}");
    assert!(
        json.contains("\"35\": \"4392260009942820D131210112008439\""),
        "{json}"
    );
    assert!(json.contains("\"22\": \"021\""), "{json}");
    let back = run(
        &["msg", "encode", "--spec", "cups-pos", "--frame", "cups-pos"],
        &json,
    );
    assert_eq!(back.status.code(), Some(0), "{}", text(&back.stderr));
    assert_eq!(text(&back.stdout).trim(), CUPS_FRAMED.replace(' ', ""));
}

#[test]
fn describe_is_masked_unless_asked() {
    let masked = run(
        &[
            "msg",
            "decode",
            "--spec",
            "cups-pos",
            "--frame",
            "cups-pos",
            "--describe",
            "-",
        ],
        CUPS_FRAMED,
    );
    let masked = text(&masked.stdout);
    assert!(
        masked.contains("439226******2820D***************"),
        "{masked}"
    );
    assert!(!masked.contains("4392260009942820"));
    let clear = run(
        &[
            "msg",
            "decode",
            "--spec",
            "cups-pos",
            "--frame",
            "cups-pos",
            "--describe",
            "--unmask",
            "-",
        ],
        CUPS_FRAMED,
    );
    assert!(text(&clear.stdout).contains("4392260009942820D131210112008439"));
}

#[test]
fn bad_input_exits_2_with_one_line_naming_field_and_offset() {
    // iso87-ascii 0800 with field 70 cut short: "30" instead of "301".
    let out = run(&["msg", "decode", "30383030383232303030303030303030303030303034303030303030303030303030303031313238313133323435303030303031333031"[..108].as_ref()], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr),
        "error: field 70: truncated: need 1 more bytes (at byte 52)\n"
    );
    let out = run(&["msg", "decode", "0x12"], "");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: input: character 'x' at position 1 is not a hex digit\n"
    );
    // Field 35 of the framed cups message claims 0x41 digits: offsets are in the message, and
    // the line says where the message starts.
    let bad = CUPS_FRAMED.replace("0632439226", "0641439226");
    let out = run(
        &[
            "msg", "decode", "--spec", "cups-pos", "--frame", "cups-pos", "-",
        ],
        &bad,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: field 35: length 41 exceeds the maximum 37 (prefix at byte 26) [the message starts at byte 13 of the input]\n"
    );
    // Encoding a value of the wrong class names the field.
    let out = run(
        &["msg", "encode"],
        "{\"mti\": \"0200\", \"fields\": {\"4\": \"12AB\"}}",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr),
        "error: field 4: byte 0x41 is not allowed in class n (at byte 22)\n"
    );
}

#[test]
fn spec_prints_loadable_toml() {
    let out = run(&["msg", "spec", "cups-pos"], "");
    assert_eq!(out.status.code(), Some(0));
    let toml = text(&out.stdout);
    assert!(
        toml.starts_with("name = \"cups-pos\"\nmti = \"bcd\"\nbitmap = \"binary\"\n"),
        "{toml}"
    );
    let spec = iso8583_wire::spec_file::from_toml(&toml).unwrap();
    assert_eq!(&spec, iso8583_wire::specs::cups_pos());
    let out = run(&["msg", "spec", "nope"], "");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: no built-in spec \"nope\"; the built-ins are iso87-ascii, iso87-binary, iso93-ascii, cups-pos\n"
    );
}
