#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `posp-node card`: the spec's development vectors through `card sim` and `card
//! psam-sim`, recorded APDU traces replayed byte for byte, a purchase between a card process
//! and a PSAM process, `card issue` with its report, serial state and exit codes, and the
//! bad-input cases.
//!
//! MAC1/MAC2 values come from the PBOC purse spec's development examples; TACs, session keys
//! and diversified keys are recomputed here with `pboc_sam` functions.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};

use pboc_sam::{DesKey, mac, pboc};

const BIN: &str = env!("CARGO_BIN_EXE_posp-node");

/// The spec's development key (used as DLK, and as DPK in the purchase example).
const SPEC_KEY: &str = "11223344556677888877665544332211";
const DPK: &str = "0123456789ABCDEFFEDCBA9876543210";
const DTK: &str = "5A4B3C2D1E0F1A2B1122334455667788";
const MPK: &str = "0123456789ABCDEFFEDCBA9876543210";
const SERIAL: &str = "0000000000000001";
const TERMINAL: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const RANDOM: [u8; 4] = [0x11, 0x22, 0x33, 0x44];
const LOAD_DATE: [u8; 4] = [0x20, 0x11, 0x12, 0x21];
const LOAD_TIME: [u8; 3] = [0x21, 0x48, 0x22];
const BUY_DATE: [u8; 4] = [0x20, 0x12, 0x02, 0x29];
const BUY_TIME: [u8; 3] = [0x13, 0x51, 0x00];

const PROFILE: &str = r#"{
    "issuer_id": "3100000000000000",
    "card_type": 3,
    "valid_from": "20240101",
    "valid_until": "20341231",
    "deposit": 2000,
    "ep": { "initial_balance": 5000, "max_balance": 100000 },
    "diversification_factors": ["0000000000003100"],
    "master_keys": [
        { "purpose": "DPK", "index": 1, "version": 1, "key": "0123456789ABCDEFFEDCBA9876543210" },
        { "purpose": "DLK", "index": 1, "version": 2, "key": "11223344556677888877665544332211" },
        { "purpose": "DTK", "index": 1, "version": 1, "key": "5A4B3C2D1E0F1A2B1122334455667788" }
    ],
    "record_capacity": 10
}"#;

/// The quality check's steps for [`PROFILE`], as `card issue` prints them.
const PROFILE_REPORT: &str = "PASS image\nPASS public data\nPASS EP balance\n\
                              PASS EP load (DLK 01)\nPASS EP purchase (DPK 01)\n\
                              PASS EP final balance\nPASS records\n";

fn key(text: &str) -> DesKey {
    DesKey::from_hex(text).unwrap()
}

fn hx(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Runs the binary with `args`, `input` on stdin.
fn run(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A process that refuses its arguments exits without reading stdin: the pipe is then
    // closed, which is not the test's failure.
    if let Err(e) = child.stdin.take().unwrap().write_all(input.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

/// Runs a session that must end with status 0 and nothing on stderr; returns the answer
/// lines.
fn session(args: &[&str], input: &str) -> Vec<String> {
    let out = run(args, input);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stderr), "");
    text(&out.stdout).lines().map(str::to_owned).collect()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("posp-node-card-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The arguments of `card sim` for an ED card with the spec's DLK.
fn ed_card_args() -> Vec<&'static str> {
    vec![
        "card",
        "sim",
        "--serial",
        SERIAL,
        "--dlk",
        SPEC_KEY,
        "--dpk",
        DPK,
        "--dtk",
        DTK,
        "--random",
        "11223344",
        "--balance",
        "0",
        "--app",
        "ed",
    ]
}

fn load_tac(balance_after: u32, amount: u32, tx_type: u8) -> String {
    let tac_key = pboc::tac_key(&key(DTK)).unwrap();
    let input = pboc::load_tac_input(
        balance_after,
        0,
        amount,
        tx_type,
        &TERMINAL,
        &LOAD_DATE,
        &LOAD_TIME,
    );
    hx(&mac::pboc(&tac_key, &input).unwrap())
}

#[test]
fn the_spec_load_vector_through_card_sim() {
    let tac = load_tac(0x1000, 0x1000, 0x01);
    assert_eq!(tac, "B5EFA318");
    let lines = session(
        &ed_card_args(),
        "80500001 0B 01 00001000 001122334455 10\n\
         80520000 0B 20111221 214822 3A845BF0 04\n\
         805C000104\n",
    );
    assert_eq!(
        lines,
        vec![
            // balance 0, online seq 0000, key version 01, algorithm 00, random, MAC1.
            "00000000 0000 01 00 11223344 2988AE5A 9000".replace(' ', ""),
            format!("{tac}9000"),
            "000010009000".to_string(),
        ]
    );
    // The same load into an EP card (type 02) gets a different MAC1, so the ED is the
    // application the vector is for.
    let mut ep_args = ed_card_args();
    *ep_args.last_mut().unwrap() = "ep";
    let lines = session(&ep_args, "80500002 0B 01 00001000 001122334455 10\n");
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("000000000000010011223344"),
        "{lines:?}"
    );
    assert_ne!(&lines[0][24..32], "2988AE5A");
}

/// A recorded trace: the `# args:` line and the (command, expected answer) count.
struct Trace {
    args: Vec<String>,
    input: String,
    expected: Vec<String>,
}

fn load_trace(name: &str) -> Trace {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    let input = std::fs::read_to_string(path).unwrap();
    let mut args = Vec::new();
    let mut expected = Vec::new();
    for line in input.lines() {
        if let Some(rest) = line.strip_prefix("# args:") {
            args = rest.split_whitespace().map(str::to_owned).collect();
        } else if let Some(rest) = line.strip_prefix("# expect") {
            expected.push(rest.trim().to_string());
        }
    }
    assert!(!args.is_empty(), "{name} has no args line");
    Trace {
        args,
        input,
        expected,
    }
}

fn replay(name: &str) -> Vec<String> {
    let trace = load_trace(name);
    let args: Vec<&str> = trace.args.iter().map(String::as_str).collect();
    let lines = session(&args, &trace.input);
    assert_eq!(lines, trace.expected, "{name}");
    lines
}

#[test]
fn the_recorded_ed_load_replays_exactly() {
    let lines = replay("ed_load.trace");
    assert_eq!(lines.len(), 10);
    let tac = load_tac(0x1000, 0x1000, 0x01);
    // INITIALIZE FOR LOAD with the spec's MAC1, CREDIT FOR LOAD with the TAC.
    assert_eq!(lines[3], "0000000000000100112233442988AE5A9000");
    assert_eq!(lines[4], format!("{tac}9000"));
    // The record: card seq 0000, limit 000000, amount, type 01, terminal, date, time.
    assert_eq!(
        lines[6],
        "0000 000000 00001000 01 001122334455 20111221 214822 9000".replace(' ', "")
    );
    // The proof: the issuer's MAC2, then the TAC.
    assert_eq!(lines[8], format!("3A845BF0{tac}9000"));
}

#[test]
fn the_recorded_torn_ep_purchase_replays_exactly() {
    let lines = replay("ep_purchase_tear.trace");
    assert_eq!(lines.len(), 11);
    let tac_key = pboc::tac_key(&key(DTK)).unwrap();
    let tac = mac::pboc(
        &tac_key,
        &pboc::purchase_tac_input(0x1000, 0x06, &TERMINAL, 1, &BUY_DATE, &BUY_TIME),
    )
    .unwrap();
    // The spec's purchase example: SESPK and MAC2.
    let sespk = pboc::purchase_session_key(&key(SPEC_KEY), &RANDOM, 0, 1);
    assert_eq!(hx(sespk.as_bytes()), "003238ABC57659DD");
    // Torn before commit: empty answer, no proof, balance unchanged.
    assert_eq!(lines[2], "");
    assert_eq!(lines[3], "9406");
    assert_eq!(lines[4], "000027109000");
    // Torn after commit: empty answer, the proof has MAC2 then the TAC, debited once.
    assert_eq!(lines[6], "");
    assert_eq!(lines[7], format!("56988A13{}9000", hx(&tac)));
    assert_eq!(lines[8], "000017109000");
}

/// A line-by-line conversation with a simulator process.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
        }
    }

    fn ask(&mut self, capdu: &str) -> String {
        writeln!(self.stdin, "{capdu}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim_end().to_string()
    }

    fn finish(self) -> Output {
        drop(self.stdin);
        let mut child = self.child;
        child.stdout = Some(self.stdout.into_inner());
        child.wait_with_output().unwrap()
    }
}

fn psam_args() -> Vec<&'static str> {
    vec![
        "card",
        "psam-sim",
        "--terminal-id",
        "001122334455",
        "--master-dpk",
        MPK,
        "--terminal-seq",
        "1",
    ]
}

/// INIT SAM FOR PURCHASE for the card [`SERIAL`]: random 11223344, offline seq, 4096 fen,
/// type 06, the spec's date and time, key version 01, algorithm 00.
fn init_sam(card_random: &str, offline_seq: &str) -> String {
    format!("80700000 1C {card_random} {offline_seq} 00001000 06 20120229 135100 01 00 {SERIAL} 08")
}

#[test]
fn psam_sim_init_sam_for_purchase_returns_the_exact_mac1() {
    let serial: [u8; 8] = hex::decode(SERIAL).unwrap().try_into().unwrap();
    let dpk = pboc::diversify_path(&key(MPK), &[serial]);
    let sespk = pboc::purchase_session_key(&dpk, &RANDOM, 0, 1);
    let mac1 = mac::pboc(
        &sespk,
        &pboc::purchase_mac1_input(0x1000, 0x06, &TERMINAL, &BUY_DATE, &BUY_TIME),
    )
    .unwrap();
    assert_eq!(hx(&mac1), "4FA253CF");
    let mac2 = mac::pboc(&sespk, &pboc::purchase_mac2_input(0x1000)).unwrap();
    let input = format!(
        "00B0960006\n00B095000E\n{}\n8072000004{}\n8072000004{}\n{}\n",
        init_sam("11223344", "0000"),
        hx(&mac2),
        hx(&mac2),
        init_sam("11223344", "0000"),
    );
    let lines = session(
        &[&psam_args()[..], &["--serial", "01020304050607080910"]].concat(),
        &input,
    );
    assert_eq!(
        lines,
        vec![
            "0011223344559000".to_string(),
            "01020304050607080910 01 00 00 00 9000".replace(' ', ""),
            format!("00000001{}9000", hx(&mac1)),
            // MAC2 verifies, then the session is over.
            "9000".to_string(),
            "6985".to_string(),
            // The terminal seq moved on to 2.
            format!(
                "00000002{}9000",
                hx(&mac::pboc(
                    &pboc::purchase_session_key(&dpk, &RANDOM, 0, 2),
                    &pboc::purchase_mac1_input(0x1000, 0x06, &TERMINAL, &BUY_DATE, &BUY_TIME),
                )
                .unwrap())
            ),
        ]
    );
}

#[test]
fn a_card_process_and_a_psam_process_complete_a_purchase() {
    let serial: [u8; 8] = hex::decode(SERIAL).unwrap().try_into().unwrap();
    let dpk = hx(pboc::diversify_path(&key(MPK), &[serial]).as_bytes());
    let mut card = Peer::spawn(&[
        "card",
        "sim",
        "--serial",
        SERIAL,
        "--dlk",
        SPEC_KEY,
        "--dpk",
        &dpk,
        "--dtk",
        DTK,
        "--balance",
        "10000",
    ]);
    let mut psam = Peer::spawn(&psam_args());
    // Without --random the card's challenge comes from the OS: read it from the answer.
    let init = card.ask("805001020B01000010000011223344550F");
    assert_eq!(init.len(), 15 * 2 + 4, "{init}");
    assert_eq!(&init[..22], "0000271000000000000100");
    assert!(init.ends_with("9000"));
    let card_random = &init[22..30];
    let sam = psam.ask(&init_sam(card_random, "0000"));
    assert_eq!(&sam[..8], "00000001");
    assert!(sam.ends_with("9000"), "{sam}");
    let debit = card.ask(&format!(
        "805401000F 00000001 20120229 135100 {} 08",
        &sam[8..16]
    ));
    assert_eq!(debit.len(), 8 * 2 + 4, "{debit}");
    let tac_key = pboc::tac_key(&key(DTK)).unwrap();
    let tac = mac::pboc(
        &tac_key,
        &pboc::purchase_tac_input(0x1000, 0x06, &TERMINAL, 1, &BUY_DATE, &BUY_TIME),
    )
    .unwrap();
    assert_eq!(&debit[..8], hx(&tac));
    assert_eq!(psam.ask(&format!("8072000004{}", &debit[8..16])), "9000");
    assert_eq!(card.ask("805C000204"), "000017109000");
    for peer in [card, psam] {
        let out = peer.finish();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(text(&out.stderr), "");
    }
}

#[test]
fn card_issue_writes_an_image_that_card_sim_accepts() {
    let dir = scratch("issue");
    let profile = dir.join("profile.json");
    std::fs::write(&profile, PROFILE).unwrap();
    let image = dir.join("card1.json");
    let state = dir.join("serials.json");
    let out = run(
        &[
            "card",
            "issue",
            "--profile",
            path_str(&profile),
            "--out",
            path_str(&image),
            "--serial-state",
            path_str(&state),
            "--serial-prefix",
            "3100",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), PROFILE_REPORT);
    assert_eq!(text(&out.stderr), "");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&image).unwrap()).unwrap();
    assert_eq!(written["serial"], "3100000000000001");
    assert_eq!(written["ep"]["balance"], 5000);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved, serde_json::json!({ "prefix": "3100", "next": 2 }));

    // The image runs in card sim: GET BALANCE (EP) is the initial balance, 5000 fen.
    let lines = session(
        &["card", "sim", "--image", path_str(&image)],
        "805C000204\n805C000104\n",
    );
    assert_eq!(lines, vec!["000013889000", "6A86"]);

    // The next card from the same state gets the next serial; the image goes to stdout
    // and the report to stderr.
    let out = run(
        &[
            "card",
            "issue",
            "--profile",
            path_str(&profile),
            "--serial-state",
            path_str(&state),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stderr), PROFILE_REPORT);
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(second["serial"], "3100000000000002");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["next"], 3);

    // The image is never overwritten: exit 2, the state does not move.
    let out = run(
        &[
            "card",
            "issue",
            "--profile",
            path_str(&profile),
            "--out",
            path_str(&image),
            "--serial-state",
            path_str(&state),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: {} already exists; a card image is never overwritten\n",
            image.display()
        )
    );
    assert_eq!(text(&out.stdout), "");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["next"], 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn card_issue_accepts_a_toml_profile_and_an_explicit_serial() {
    let dir = scratch("toml");
    let profile = dir.join("profile.toml");
    std::fs::write(
        &profile,
        r#"
issuer_id = "3100000000000000"
card_type = 3
valid_from = "20240101"
valid_until = "20341231"
diversification_factors = ["0000000000003100"]

[ed]
initial_balance = 700
max_balance = 500000

[[master_keys]]
purpose = "DPK"
index = 1
version = 1
key = "0123456789ABCDEFFEDCBA9876543210"

[[master_keys]]
purpose = "DLK"
index = 1
version = 1
key = "11223344556677888877665544332211"

[[master_keys]]
purpose = "DTK"
index = 1
version = 1
key = "5A4B3C2D1E0F1A2B1122334455667788"
"#,
    )
    .unwrap();
    let image = dir.join("card.json");
    let out = run(
        &[
            "card",
            "issue",
            "--profile",
            path_str(&profile),
            "--serial",
            "31000000000000AB",
            "--out",
            path_str(&image),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "PASS image\nPASS public data\nPASS ED balance\nPASS ED load (DLK 01)\n\
         PASS ED purchase (DPK 01)\nPASS ED final balance\nPASS records\n"
    );
    let lines = session(
        &["card", "sim", "--image", path_str(&image)],
        "805C000104\n00B095001E\n",
    );
    assert_eq!(
        lines,
        vec![
            "000002BC9000".to_string(),
            "3100000000000000 03 01 0000 31000000000000AB 20240101 20341231 0000 9000"
                .replace(' ', ""),
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn card_issue_exit_codes() {
    let dir = scratch("codes");
    // A card that cannot be loaded or debited: the quality check fails, exit 1, and the
    // image is still written.
    let profile = dir.join("empty.json");
    std::fs::write(
        &profile,
        PROFILE.replace(
            r#""initial_balance": 5000, "max_balance": 100000"#,
            r#""initial_balance": 0, "max_balance": 0"#,
        ),
    )
    .unwrap();
    let image = dir.join("empty-card.json");
    let out = run(
        &[
            "card",
            "issue",
            "--profile",
            path_str(&profile),
            "--out",
            path_str(&image),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "PASS image\nPASS public data\nPASS EP balance\n\
         FAIL EP purchase (DPK 01): INITIALIZE FOR PURCHASE answered 9401 insufficient balance\n\
         FAIL EP load (DLK 01): INITIALIZE FOR LOAD answered 6985 conditions of use not satisfied\n\
         PASS EP final balance\nPASS records\n"
    );
    assert!(image.exists());

    // A profile with an unknown field: exit 2, one error line, nothing written.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, PROFILE.replace("\"deposit\"", "\"depost\"")).unwrap();
    let image = dir.join("never.json");
    let out = run(
        &[
            "card",
            "issue",
            "--profile",
            path_str(&bad),
            "--out",
            path_str(&image),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "error: {}: issuer profile: unknown field `depost`",
            bad.display()
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
    assert_eq!(text(&out.stdout), "");
    assert!(!image.exists());

    // A profile without a DTK master.
    let no_dtk = dir.join("no-dtk.json");
    std::fs::write(
        &no_dtk,
        PROFILE.replace(
            r#",
        { "purpose": "DTK", "index": 1, "version": 1, "key": "5A4B3C2D1E0F1A2B1122334455667788" }"#,
            "",
        ),
    )
    .unwrap();
    let out = run(&["card", "issue", "--profile", path_str(&no_dtk)], "");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: {}: issuer profile: a DTK master key is required\n",
            no_dtk.display()
        )
    );

    // A missing profile file, a bad serial.
    let out = run(
        &[
            "card",
            "issue",
            "--profile",
            path_str(&dir.join("none.json")),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("error: cannot read "));
    let out = run(
        &[
            "card",
            "issue",
            "--profile",
            path_str(&profile),
            "--serial",
            "3100",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: --serial: the application serial is 8 bytes, not 2\n"
    );
    // A prefix of 8 bytes leaves no room for a counter.
    let out = run(
        &[
            "card",
            "issue",
            "--profile",
            path_str(&profile),
            "--serial-prefix",
            "3100000000000000",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: --serial-prefix: serial allocator: prefix must be 0..=7 bytes, found 8\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_line_is_reported_by_number_and_the_session_goes_on() {
    let out = run(
        &ed_card_args(),
        "# balance first\n805C000104\n805C00010\n805C0001XY\n!tear sideways\n\n805C000104\n",
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "000000009000\n000000009000\n");
    assert_eq!(
        text(&out.stderr),
        "error: line 3: 9 hex digits is an odd number\n\
         error: line 4: character 'X' at column 9 is not a hex digit\n\
         error: line 5: unknown control line `!tear sideways` (the card knows !reset, \
         !tear before, !tear after, !tear off)\n"
    );
    // Bytes that are not an APDU reach the card, which answers 6700.
    assert_eq!(session(&ed_card_args(), "80\n"), vec!["6700"]);
    // An empty session.
    assert_eq!(session(&ed_card_args(), ""), Vec::<String>::new());
}

#[test]
fn missing_or_bad_keys_exit_2() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["card", "sim", "--dlk", SPEC_KEY],
            "error: card sim needs --image FILE, or all of --serial, --dlk, --dpk and --dtk\n",
        ),
        (
            &[
                "card", "sim", "--serial", SERIAL, "--dlk", "1122", "--dpk", DPK, "--dtk", DTK,
            ],
            "error: --dlk: a card key is 16 bytes, not 2\n",
        ),
        (
            &[
                "card", "sim", "--serial", SERIAL, "--dlk", SPEC_KEY, "--dpk", DPK, "--dtk", DTK,
                "--random", "112233",
            ],
            "error: --random: the card challenge is 4 bytes, not 3\n",
        ),
        (
            &[
                "card",
                "sim",
                "--serial",
                SERIAL,
                "--dlk",
                SPEC_KEY,
                "--dpk",
                DPK,
                "--dtk",
                DTK,
                "--balance",
                "20",
                "--max-balance",
                "10",
            ],
            "error: card image: ep: balance 20 exceeds max_balance 10\n",
        ),
        (
            &["card", "psam-sim", "--terminal-id", "001122334455"],
            "error: card psam-sim needs --image FILE, or --terminal-id and --master-dpk\n",
        ),
        (
            &[
                "card",
                "psam-sim",
                "--terminal-id",
                "0011",
                "--master-dpk",
                MPK,
            ],
            "error: --terminal-id: the terminal id is 6 bytes, not 2\n",
        ),
    ];
    for (args, expected) in cases {
        let out = run(args, "805C000104\n");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stderr), expected, "{args:?}");
        assert_eq!(text(&out.stdout), "", "{args:?}");
    }
    // An image file that is not a card image.
    let dir = scratch("badimage");
    let file = dir.join("not-a-card.json");
    std::fs::write(&file, "{}").unwrap();
    let out = run(&["card", "sim", "--image", path_str(&file)], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with(&format!(
            "error: {}: card image JSON: missing field",
            file.display()
        )),
        "{}",
        text(&out.stderr)
    );
    // --image with keys is a usage error (clap, also status 2).
    let out = run(
        &["card", "sim", "--image", path_str(&file), "--dlk", SPEC_KEY],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn save_keeps_the_card_and_the_psam_between_sessions() {
    let dir = scratch("save");
    let saved = dir.join("card.json");
    let mut args = ed_card_args();
    args.extend(["--save", path_str(&saved)]);
    let trace = load_trace("ed_load.trace");
    let lines = session(&args, &trace.input);
    assert_eq!(lines, trace.expected);
    // The saved card has the loaded balance, the counter and the record.
    let lines = session(
        &[
            "card",
            "sim",
            "--image",
            path_str(&saved),
            "--random",
            "11223344",
        ],
        "805C000104\n80500001 0B 01 00000001 001122334455 10\n00B201C417\n",
    );
    assert_eq!(lines[0], "000010009000");
    assert_eq!(&lines[1][..12], "000010000001");
    assert_eq!(
        lines[2],
        "00000000000000100001001122334455201112212148229000"
    );

    let psam_file = dir.join("psam.json");
    let mut args = psam_args();
    args.extend(["--save", path_str(&psam_file)]);
    let lines = session(
        &args,
        &format!("{}\n!reset\n", init_sam("11223344", "0000")),
    );
    assert_eq!(&lines[0][..8], "00000001");
    // The saved PSAM goes on with terminal seq 2 and gives the same MAC1 as one started
    // there from the command line.
    let from_file = session(
        &["card", "psam-sim", "--image", path_str(&psam_file)],
        &init_sam("11223344", "0000"),
    );
    let mut args = psam_args();
    *args.last_mut().unwrap() = "2";
    let from_flags = session(&args, &init_sam("11223344", "0000"));
    assert_eq!(&from_file[0][..8], "00000002");
    assert_eq!(from_file, from_flags);
    std::fs::remove_dir_all(&dir).unwrap();
}
