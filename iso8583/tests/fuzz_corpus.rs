//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through the fuzz targets'
//! own logic (`fuzz/src/lib.rs`, included here): every file is decoded with every built-in spec
//! (validate, every accessor, re-encoding), framed with every preset, read as BER-TLV and as a
//! spec file, and additionally goes through the target whose folder it is in. The `roundtrip`
//! target's builder needs `arbitrary`, which this crate does not depend on; its seeds go through
//! everything else.
//!
//! Inputs that once crashed a target are kept in [`REGRESSIONS`] and replayed the same way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod harness;

use std::path::Path;

use iso8583_wire::specs;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus");

/// Inputs that crashed a fuzz target: (target, input as hex, what it found).
const REGRESSIONS: &[(&str, &str, &str)] = &[];

/// Runs `data` the way the fuzz target `target` does, and through every other parser too.
fn replay(target: &str, data: &[u8]) {
    match target {
        "decode_iso87_ascii" => harness::decode_target(specs::iso87_ascii(), data),
        "decode_iso87_binary" => harness::decode_target(specs::iso87_binary(), data),
        "decode_iso93_ascii" => harness::decode_target(specs::iso93_ascii(), data),
        "decode_cups_pos" => harness::decode_target(specs::cups_pos(), data),
        "frame_decode" => harness::frame_target(data),
        "tlv_reader" => harness::tlv_target(data),
        "spec_file" => harness::spec_file_target(data),
        "roundtrip" => {}
        other => panic!("corpus folder for an unknown target: {other}"),
    }
    harness::decode_every_spec(data);
    harness::frame_target(data);
    harness::tlv_target(data);
    harness::spec_file_target(data);
}

/// The fuzz targets whose corpora this crate's parsers replay.
const OWN_TARGETS: [&str; 8] = [
    "decode_cups_pos",
    "decode_iso87_ascii",
    "decode_iso87_binary",
    "decode_iso93_ascii",
    "frame_decode",
    "roundtrip",
    "spec_file",
    "tlv_reader",
];

#[test]
fn replays_the_whole_corpus() {
    let mut counts = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        // The other crates' targets (HSM protocol, APDUs, ...) are replayed by their own tests.
        .filter(|p| OWN_TARGETS.contains(&p.file_name().unwrap().to_str().unwrap()))
        .collect();
    dirs.sort();
    for dir in dirs {
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in &files {
            let data = std::fs::read(file).unwrap();
            assert!(
                data.len() < 4096,
                "{} is too big for a seed",
                file.display()
            );
            replay(&target, &data);
        }
        counts.push((target, files.len()));
    }
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    assert_eq!(
        counts,
        [
            ("decode_cups_pos".to_string(), 3),
            ("decode_iso87_ascii".to_string(), 3),
            ("decode_iso87_binary".to_string(), 3),
            ("decode_iso93_ascii".to_string(), 3),
            ("frame_decode".to_string(), 12),
            ("roundtrip".to_string(), 5),
            ("spec_file".to_string(), 4),
            ("tlv_reader".to_string(), 5),
        ]
    );
    assert_eq!(total, 38);
}

/// The seeds really are what they claim: the message seeds decode and validate with their
/// target's spec, the frame seeds hold the expected number of frames.
#[test]
fn seeds_are_valid_inputs() {
    let read = |target: &str, name: &str| {
        std::fs::read(Path::new(CORPUS).join(target).join(name)).unwrap()
    };
    for (target, spec, names) in [
        (
            "decode_iso87_ascii",
            specs::iso87_ascii(),
            &["0200.bin", "0800.bin", "large.bin"][..],
        ),
        (
            "decode_iso87_binary",
            specs::iso87_binary(),
            &["0200.bin", "0800.bin", "large.bin"][..],
        ),
        (
            "decode_iso93_ascii",
            specs::iso93_ascii(),
            &["1100.bin", "1804.bin", "tertiary-empty.bin"][..],
        ),
        (
            "decode_cups_pos",
            specs::cups_pos(),
            &["purchase.bin", "signin.bin", "signin-reply.bin"][..],
        ),
    ] {
        for name in names {
            let data = read(target, name);
            let msg = iso8583_wire::decode(spec, &data).unwrap();
            msg.validate().unwrap();
        }
    }
    let purchase = read("decode_cups_pos", "purchase.bin");
    let frame = read("frame_decode", "cups-purchase.bin");
    let (f, used) = iso8583_wire::frame::FrameConfig::cups_pos()
        .decode(&frame)
        .unwrap()
        .unwrap();
    assert_eq!((f.body, used), (&purchase[..], frame.len()));
    assert_eq!(
        iso8583_wire::tlv::validate(&read("tlv_reader", "field55.bin")),
        Ok(22)
    );
    let small = read("spec_file", "small.toml");
    let spec = iso8583_wire::spec_file::from_toml(std::str::from_utf8(&small).unwrap()).unwrap();
    assert_eq!((spec.name(), spec.fields().count()), ("small", 9));
}

#[test]
fn replays_the_regressions() {
    for (target, hex, what) in REGRESSIONS {
        let data = hex::decode(hex).unwrap();
        let outcome = std::panic::catch_unwind(|| replay(target, &data));
        assert!(outcome.is_ok(), "{target}: {what} (input {hex})");
    }
}
