//! `posp-node journal`: `show` and `saf` against a seeded database, and bad databases.
//!
//! The database is seeded with plain SQL over the store's own schema file, so these tests
//! also pin the on-disk layout the CLI reads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_posp-node");
const SCHEMA_V1: &str = include_str!("../src/store/schema_v1.sql");
const SCHEMA_V2: &str = include_str!("../src/store/schema_v2.sql");
const SCHEMA_V3: &str = include_str!("../src/store/schema_v3.sql");
const SCHEMA_V4: &str = include_str!("../src/store/schema_v4.sql");

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("posp-journal-cli-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// Runs `posp-node journal ...` and returns stdout, checking it succeeded.
fn journal(args: &[&str]) -> String {
    let mut all = vec!["journal"];
    all.extend_from_slice(args);
    let out = run(&all);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    text(&out.stdout)
}

/// Creates an empty journal database at version 4, as the store does on open.
fn create(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
    conn.execute_batch(
        "CREATE TABLE schema_version (version INTEGER NOT NULL);
         INSERT INTO schema_version (version) VALUES (1), (2), (3), (4);",
    )
    .unwrap();
    conn.execute_batch(SCHEMA_V1).unwrap();
    conn.execute_batch(SCHEMA_V2).unwrap();
    conn.execute_batch(SCHEMA_V3).unwrap();
    conn.execute_batch(SCHEMA_V4).unwrap();
    conn
}

#[allow(clippy::too_many_arguments)]
fn add_entry(
    conn: &rusqlite::Connection,
    (terminal, batch, stan): (&str, u32, u32),
    (date, time): (&str, &str),
    kind: &str,
    amount: i64,
    pan: Option<&str>,
    state: &str,
    (rc, rrn): (Option<&str>, Option<&str>),
) {
    conn.execute(
        "INSERT INTO journal (created_at, updated_at, origin, terminal_id, merchant_id, batch,
         stan, local_date, local_time, kind, mti, processing_code, amount, masked_pan, state,
         response_code, rrn, request, terminal_request)
         VALUES (1000, 1000, 'TERMINAL', ?1, '898100012340001', ?2, ?3, ?4, ?5, ?6, '0200',
         '000000', ?7, ?8, ?9, ?10, ?11, '0200', 1)",
        rusqlite::params![
            terminal, batch, stan, date, time, kind, amount, pan, state, rc, rrn
        ],
    )
    .unwrap();
}

/// Five journal entries and three SAF entries (one queued, two in the exception queue).
fn seed(path: &Path) {
    let conn = create(path);
    let pan = Some("622202*********0123");
    add_entry(
        &conn,
        ("T0000001", 1, 11),
        ("0611", "143005"),
        "PURCHASE",
        1050,
        pan,
        "APPROVED",
        (Some("00"), Some("000000000101")),
    );
    add_entry(
        &conn,
        ("T0000001", 1, 12),
        ("0611", "143512"),
        "PURCHASE",
        200_000,
        pan,
        "REVERSAL_QUEUED",
        (None, None),
    );
    add_entry(
        &conn,
        ("T0000002", 3, 11),
        ("0612", "090000"),
        "BALANCE",
        0,
        Some("621700******1234"),
        "APPROVED",
        (Some("00"), Some("000000000102")),
    );
    add_entry(
        &conn,
        ("T0000001", 1, 13),
        ("0612", "101010"),
        "SIGN_IN",
        0,
        None,
        "DECLINED",
        (Some("97"), None),
    );
    add_entry(
        &conn,
        ("T0000002", 3, 12),
        ("0612", "091500"),
        "REFUND",
        5,
        pan,
        "PENDING",
        (None, None),
    );
    conn.execute_batch(
        "INSERT INTO saf (destination, journal_id, created_at, updated_at, mti, repeat_mti,
             message_hex, status, sends, attempts, last_response, reason) VALUES
         ('center', 2, 2000, 2000, '0400', 1, '0400', 'QUEUED', 1, 0, NULL, NULL),
         ('center', NULL, 1500, 1900, '0420', 1, '0420', 'EXCEPTION', 3, 3, '96',
          'exhausted: 3 responses without completion, the last 96'),
         ('bank', NULL, 0, 86400000, '0400', 0, '0400', 'EXCEPTION', 0, 0, NULL,
          'expired: queued 86400000 ms ago, expiry is 86400000 ms');",
    )
    .unwrap();
}

const HEADER: &str = "ID  TIME            TERMINAL  BATCH   STAN    KIND       AMOUNT  PAN                  STATE            RC  RRN";
const ROW1: &str = " 1  06-11 14:30:05  T0000001  000001  000011  PURCHASE    10.50  622202*********0123  APPROVED         00  000000000101";
const ROW2: &str = " 2  06-11 14:35:12  T0000001  000001  000012  PURCHASE  2000.00  622202*********0123  REVERSAL_QUEUED  -   -";
const ROW3: &str = " 3  06-12 09:00:00  T0000002  000003  000011  BALANCE      0.00  621700******1234     APPROVED         00  000000000102";
const ROW4: &str = " 4  06-12 10:10:10  T0000001  000001  000013  SIGN_IN      0.00  -                    DECLINED         97  -";
const ROW5: &str = " 5  06-12 09:15:00  T0000002  000003  000012  REFUND       0.05  622202*********0123  PENDING          -   -";

fn lines(rows: &[&str]) -> String {
    rows.iter().map(|r| format!("{r}\n")).collect()
}

#[test]
fn show_prints_every_entry_in_aligned_columns() {
    let dir = Scratch::new("show");
    let db = dir.0.join("journal.db");
    seed(&db);
    let db = db.to_str().unwrap();
    assert_eq!(
        journal(&["show", "--db", db]),
        lines(&[HEADER, ROW1, ROW2, ROW3, ROW4, ROW5])
    );
}

#[test]
fn show_filters_by_terminal_stan_rrn_date_state_and_limit() {
    let dir = Scratch::new("filters");
    let db = dir.0.join("journal.db");
    seed(&db);
    let db = db.to_str().unwrap();
    assert_eq!(
        journal(&["show", "--db", db, "--terminal", "T0000002"]),
        lines(&[
            "ID  TIME            TERMINAL  BATCH   STAN    KIND     AMOUNT  PAN                  STATE     RC  RRN",
            " 3  06-12 09:00:00  T0000002  000003  000011  BALANCE    0.00  621700******1234     APPROVED  00  000000000102",
            " 5  06-12 09:15:00  T0000002  000003  000012  REFUND     0.05  622202*********0123  PENDING   -   -",
        ])
    );
    assert_eq!(
        journal(&["show", "--db", db, "--terminal", "T0000001", "--stan", "12"]),
        lines(&[HEADER, ROW2])
    );
    assert_eq!(
        journal(&["show", "--db", db, "--rrn", "000000000101"]),
        lines(&[
            "ID  TIME            TERMINAL  BATCH   STAN    KIND      AMOUNT  PAN                  STATE     RC  RRN",
            " 1  06-11 14:30:05  T0000001  000001  000011  PURCHASE   10.50  622202*********0123  APPROVED  00  000000000101",
        ])
    );
    assert_eq!(
        journal(&["show", "--db", db, "--date", "0611", "--state", "approved"]),
        lines(&[
            "ID  TIME            TERMINAL  BATCH   STAN    KIND      AMOUNT  PAN                  STATE     RC  RRN",
            " 1  06-11 14:30:05  T0000001  000001  000011  PURCHASE   10.50  622202*********0123  APPROVED  00  000000000101",
        ])
    );
    // The newest two, oldest first.
    assert_eq!(
        journal(&["show", "--db", db, "--limit", "2"]),
        lines(&[
            "ID  TIME            TERMINAL  BATCH   STAN    KIND     AMOUNT  PAN                  STATE     RC  RRN",
            " 4  06-12 10:10:10  T0000001  000001  000013  SIGN_IN    0.00  -                    DECLINED  97  -",
            " 5  06-12 09:15:00  T0000002  000003  000012  REFUND     0.05  622202*********0123  PENDING   -   -",
        ])
    );
    // Nothing matches: the header alone.
    assert_eq!(
        journal(&["show", "--db", db, "--state", "reversed"]),
        "ID  TIME  TERMINAL  BATCH  STAN  KIND  AMOUNT  PAN  STATE  RC  RRN\n"
    );
}

#[test]
fn saf_prints_depths_and_the_exception_queue() {
    let dir = Scratch::new("saf");
    let db = dir.0.join("journal.db");
    seed(&db);
    assert_eq!(
        journal(&["saf", "--db", db.to_str().unwrap()]),
        lines(&[
            "DESTINATION  QUEUED  EXCEPTION",
            "bank              0          1",
            "center            1          1",
            "",
            "ID  DESTINATION  MTI   SENDS  ATTEMPTS  LAST RC  JOURNAL  REASON",
            " 2  center       0420      3         3  96             -  exhausted: 3 responses without completion, the last 96",
            " 3  bank         0400      0         0  -              -  expired: queued 86400000 ms ago, expiry is 86400000 ms",
        ])
    );
}

#[test]
fn events_prints_the_link_events() {
    let dir = Scratch::new("events");
    let db = dir.0.join("journal.db");
    let conn = create(&db);
    let dbs = db.to_str().unwrap();
    assert_eq!(journal(&["events", "--db", dbs]), "no link events\n");
    conn.execute_batch(
        "INSERT INTO link_event (at, link, event, journal_id, match_key, response_code, message)
         VALUES (1700000000000, 'center', 'UNMATCHED', NULL, '02|48020000|10000001|000009', '00', x'30323130'),
                (1700000000500, 'center', 'BAD_MAC', NULL, NULL, '05', x'');",
    )
    .unwrap();
    assert_eq!(
        journal(&["events", "--db", dbs]),
        lines(&[
            "ID          AT_MS  LINK    EVENT      ENTRY  RC  KEY",
            " 1  1700000000000  center  UNMATCHED         00  02|48020000|10000001|000009",
            " 2  1700000000500  center  BAD_MAC           05",
        ])
    );
    assert_eq!(
        journal(&["events", "--db", dbs, "--limit", "1"]),
        lines(&[
            "ID          AT_MS  LINK    EVENT    ENTRY  RC  KEY",
            " 2  1700000000500  center  BAD_MAC         05",
        ])
    );
}

#[test]
fn an_empty_journal_prints_headers_and_empty_queues() {
    let dir = Scratch::new("empty");
    let db = dir.0.join("journal.db");
    drop(create(&db));
    let db = db.to_str().unwrap();
    assert_eq!(
        journal(&["show", "--db", db]),
        "ID  TIME  TERMINAL  BATCH  STAN  KIND  AMOUNT  PAN  STATE  RC  RRN\n"
    );
    assert_eq!(
        journal(&["saf", "--db", db]),
        "no SAF entries\n\nno entries in the exception queue\n"
    );
}

#[test]
fn a_missing_or_foreign_database_exits_2() {
    let dir = Scratch::new("bad");
    let missing = dir.0.join("missing.db");
    let out = run(&["journal", "show", "--db", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: journal database {} does not exist\n",
            missing.display()
        )
    );
    assert!(!missing.exists(), "the CLI must not create a database");

    let foreign = dir.0.join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let out = run(&["journal", "saf", "--db", foreign.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: {} is not a usable journal database: no schema version (no such table: schema_version)\n",
            foreign.display()
        )
    );

    let garbage = dir.0.join("garbage.db");
    std::fs::write(&garbage, b"this is not an SQLite file, not at all, no.").unwrap();
    let out = run(&["journal", "show", "--db", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: {} is not a usable journal database: no schema version (file is not a database)\n",
            garbage.display()
        )
    );
}

#[test]
fn bad_arguments_exit_2() {
    let out = run(&["journal", "show", "--db", "x.db", "--state", "lost"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(
            "error: invalid value 'lost' for '--state <STATE>': invalid state: unknown transaction state \"lost\""
        ),
        "{err}"
    );
    let out = run(&["journal", "show", "--db", "x.db", "--date", "1399"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(
            "error: invalid value '1399' for '--date <DATE>': \"1399\" is not a date MMDD"
        ),
        "{err}"
    );
}
