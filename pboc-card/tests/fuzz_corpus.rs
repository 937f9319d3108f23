#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Replays the committed fuzz corpus of the pboc-card targets (`fuzz/corpus/<target>/*` for
//! `apdu_card`, `apdu_psam` and `apdu_terminal`) through the targets' own logic
//! (`fuzz/src/card.rs`, included here), so that the properties the fuzzers check hold for every
//! seed on every `cargo test`. Every file also goes through the other two targets.
//!
//! Inputs that once crashed a target are kept in [`REGRESSIONS`] and replayed the same way.

#[allow(dead_code, missing_docs)]
#[path = "../../fuzz/src/card.rs"]
mod harness;

use std::path::Path;

use pboc_card::{Application, ResponseApdu, StatusWord};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus");

/// This crate's targets.
const TARGETS: [&str; 3] = ["apdu_card", "apdu_psam", "apdu_terminal"];

/// Inputs that crashed a fuzz target: (target, input as hex, what it found).
const REGRESSIONS: &[(&str, &str, &str)] = &[];

/// Runs `data` the way the fuzz target `target` does, then through the other targets too.
fn replay(target: &str, data: &[u8]) {
    match target {
        "apdu_card" => harness::apdu_card_target(data),
        "apdu_psam" => harness::apdu_psam_target(data),
        "apdu_terminal" => harness::apdu_terminal_target(data),
        other => panic!("not a pboc-card target: {other}"),
    }
    harness::apdu_card_target(data);
    harness::apdu_psam_target(data);
    harness::apdu_terminal_target(data);
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
        [("apdu_card", 10), ("apdu_psam", 6), ("apdu_terminal", 12)]
    );
}

/// Sends a session seed to `process`, returning each answer's status word.
fn run_session(seed: &[u8], mut process: impl FnMut(&[u8]) -> Vec<u8>) -> Vec<StatusWord> {
    harness::session(seed)
        .into_iter()
        .map(|apdu| ResponseApdu::parse(&process(apdu)).unwrap().sw)
        .collect()
}

/// The seeds do what they claim: the card sessions load and buy with the spec's vectors, the
/// PSAM session verifies the card's MAC2, the single commands are accepted.
#[test]
fn seeds_are_valid_inputs() {
    let ok = StatusWord::Success;
    let mut card = harness::test_card(false);
    let sws = run_session(&read("apdu_card", "session-load-purchase.bin"), |a| {
        card.process(a)
    });
    assert_eq!(sws, [ok; 6]);
    assert_eq!(card.balance(Application::Ed), Some(0x1000));
    assert_eq!(card.balance(Application::Ep), Some(10_000 - 0x1000));
    assert_eq!(card.records().len(), 2);

    let mut card = harness::test_card(true);
    let sws = run_session(&read("apdu_card", "session-pin.bin"), |a| card.process(a));
    // No transaction yet, so no record 1.
    assert_eq!(sws, [ok, ok, ok, ok, ok, StatusWord::RecordNotFound]);
    assert!(card.pin_verified());

    for name in ["select", "get-balance-ep", "init-load", "init-purchase"] {
        let mut card = harness::test_card(false);
        let answer = card.process(&read("apdu_card", &format!("{name}.bin")));
        assert_eq!(ResponseApdu::parse(&answer).unwrap().sw, ok, "{name}");
    }

    let mut psam = harness::test_psam();
    let sws = run_session(&read("apdu_psam", "session-purchase.bin"), |a| {
        psam.process(a)
    });
    assert_eq!(
        sws,
        [ok, ok, ok, StatusWord::from_bytes(0x69, 0x85)],
        "SELECT, INIT SAM, CREDIT SAM, then CREDIT SAM out of order"
    );
    let mut psam = harness::test_psam();
    let sws = run_session(&read("apdu_psam", "session-tac.bin"), |a| psam.process(a));
    assert_eq!(sws, [ok; 4]);
    for name in ["select", "read-terminal-id", "read-info", "init-sam"] {
        let mut psam = harness::test_psam();
        let answer = psam.process(&read("apdu_psam", &format!("{name}.bin")));
        assert_eq!(ResponseApdu::parse(&answer).unwrap().sw, ok, "{name}");
    }

    for file in files("apdu_terminal") {
        ResponseApdu::parse(&std::fs::read(file).unwrap()).unwrap();
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
