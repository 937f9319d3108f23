#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Replays the committed fuzz corpus of the pboc-sam targets (`fuzz/corpus/<target>/*` for
//! `hsm_request`, `hsm_response`, `field62` and `pin_block`) through the targets' own logic
//! (`fuzz/src/sam.rs`, included here), so that the properties the fuzzers check hold for every
//! seed on every `cargo test`. Every file also goes through the other three targets.
//!
//! Inputs that once crashed a target are kept in [`REGRESSIONS`] and replayed the same way.

#[allow(dead_code, missing_docs)]
#[path = "../../fuzz/src/sam.rs"]
mod harness;

use std::path::Path;

use pboc_sam::hsm::{Request, Response, decode_request, decode_response};
use pboc_sam::keyexchange::parse_field62;
use pboc_sam::pinblock::{self, ClearPinBlock, Pan, PinBlockFormat};
use pboc_sam::{DesKey, HsmErrorCode};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus");

/// This crate's targets.
const TARGETS: [&str; 4] = ["field62", "hsm_request", "hsm_response", "pin_block"];

/// Inputs that crashed a fuzz target: (target, input as hex, what it found).
const REGRESSIONS: &[(&str, &str, &str)] = &[];

/// Runs `data` the way the fuzz target `target` does, then through the other targets too.
fn replay(target: &str, data: &[u8]) {
    match target {
        "hsm_request" => harness::hsm_request_target(data),
        "hsm_response" => harness::hsm_response_target(data),
        "field62" => harness::field62_target(data),
        "pin_block" => harness::pin_block_target(data),
        other => panic!("not a pboc-sam target: {other}"),
    }
    harness::hsm_request_target(data);
    harness::hsm_response_target(data);
    harness::field62_target(data);
    harness::pin_block_target(data);
}

fn files(target: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(Path::new(CORPUS).join(target))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn read(target: &str, name: &str) -> Vec<u8> {
    std::fs::read(Path::new(CORPUS).join(target).join(name)).unwrap()
}

#[test]
fn replays_the_corpus() {
    let mut counts = Vec::new();
    for target in TARGETS {
        let files = files(target);
        for file in &files {
            let data = std::fs::read(file).unwrap();
            assert!(
                data.len() < 4096,
                "{} is too big for a seed",
                file.display()
            );
            replay(target, &data);
        }
        counts.push((target, files.len()));
    }
    assert_eq!(
        counts,
        [
            ("field62", 6),
            ("hsm_request", 10),
            ("hsm_response", 10),
            ("pin_block", 4),
        ]
    );
}

/// The seeds are what they claim: requests and responses decode to the commands their names
/// say, field 62 seeds parse (but the one with a bad KCV), PIN block seeds hold PIN 1234.
#[test]
fn seeds_are_valid_inputs() {
    for (name, code) in [
        ("a0", "A0"),
        ("a6", "A6"),
        ("ca", "CA"),
        ("m0", "M0"),
        ("m6", "M6"),
        ("m8", "M8"),
        ("nc", "NC"),
        ("qc", "QC"),
        ("qe", "QE"),
    ] {
        let (_, request) = decode_request(&read("hsm_request", &format!("{name}.bin"))).unwrap();
        assert_eq!(request.command().as_str(), code);
    }
    assert_eq!(
        decode_request(&read("hsm_request", "nc.bin")).unwrap(),
        (&b"0000"[..], Request::Diagnostics)
    );
    for name in ["a1", "a9", "b3", "bv", "cb", "m7", "qd"] {
        let (_, response) = decode_response(&read("hsm_response", &format!("{name}.bin"))).unwrap();
        assert!(!matches!(response, Response::Error { .. }), "{name}");
    }
    for (name, code) in [
        ("m9-01", HsmErrorCode::VerificationFailed),
        ("m9-bare", HsmErrorCode::VerificationFailed),
        ("nd-12", HsmErrorCode::NoKeysLoaded),
    ] {
        let (_, response) = decode_response(&read("hsm_response", &format!("{name}.bin"))).unwrap();
        let Response::Error { error, .. } = response else {
            panic!("{name} is not an error")
        };
        assert_eq!(error.code, code, "{name}");
    }

    let tmk = DesKey::double(harness::FIELD62_TMK);
    for (name, len) in [
        ("single24", 24),
        ("double40", 40),
        ("triple56", 56),
        ("tdk60", 60),
        ("tdk84", 84),
    ] {
        let field = read("field62", &format!("{name}.bin"));
        assert_eq!(field.len(), len);
        parse_field62(&tmk, &field).unwrap();
    }
    assert!(parse_field62(&tmk, &read("field62", "kcv-mismatch.bin")).is_err());

    let pan = Pan::new(harness::PIN_PAN).unwrap();
    for (name, format) in [
        ("iso0", PinBlockFormat::Iso0),
        ("iso1", PinBlockFormat::Iso1),
        ("iso3", PinBlockFormat::Iso3),
    ] {
        let data = read("pin_block", &format!("{name}.bin"));
        let block = ClearPinBlock::new(data[..8].try_into().unwrap());
        let pin = pinblock::decode(format, &block, &pan).unwrap();
        assert_eq!(pin.digits(), [1, 2, 3, 4]);
    }
}

#[test]
fn replays_the_regressions() {
    for (target, hex, what) in REGRESSIONS {
        let data = hex::decode(hex).unwrap();
        let outcome = std::panic::catch_unwind(|| replay(target, &data));
        assert!(outcome.is_ok(), "{target}: {what} (input {hex})");
    }
}
