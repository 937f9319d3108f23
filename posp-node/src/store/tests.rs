//! Tests of the SQLite store through the traits: journal keys, duplicates, transitions,
//! crash recovery, settlement totals, SAF order / latching / attempts / exceptions, group
//! commit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::*;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "posp-store-{}-{name}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("journal.db")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config() -> StoreConfig {
    StoreConfig {
        saf: SafConfig {
            max_attempts: 3,
            expiry: Duration::from_secs(60),
            max_queued: 100,
        },
        ..StoreConfig::default()
    }
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, &config()).unwrap()
}

fn purchase(terminal: &str, stan: u32, amount: i64, created_at: i64) -> NewEntry {
    NewEntry {
        created_at,
        origin: Origin::Terminal,
        terminal_id: terminal.to_owned(),
        merchant_id: "898100012340001".to_owned(),
        batch: 1,
        stan,
        local_date: "0611".to_owned(),
        local_time: "143005".to_owned(),
        kind: TxnKind::Purchase,
        mti: "0200".to_owned(),
        processing_code: "000000".to_owned(),
        amount,
        masked_pan: Some("622202*********0123".to_owned()),
        original_id: None,
        request: vec![0x02, 0x00, 0x30, 0x20],
    }
}

fn inserted(outcome: InsertOutcome) -> JournalEntry {
    match outcome {
        InsertOutcome::Inserted(e) => e,
        InsertOutcome::DuplicateOf(e) => panic!("unexpected duplicate of {}", e.id),
    }
}

fn insert(store: &SqliteStore, new: NewEntry) -> JournalEntry {
    inserted(block_on(store.insert(new)).unwrap())
}

fn set(store: &SqliteStore, id: i64, to: TxnState, at: i64) -> JournalEntry {
    block_on(store.update_state(id, StateUpdate::to(to, at))).unwrap()
}

fn approve(store: &SqliteStore, id: i64, rrn: &str, at: i64) -> JournalEntry {
    set(store, id, TxnState::Sent, at);
    block_on(store.update_state(
        id,
        StateUpdate {
            response_code: Some("00".to_owned()),
            rrn: Some(rrn.to_owned()),
            auth_code: Some("A1B2C3".to_owned()),
            upstream_stan: Some(42),
            response: Some(vec![0x02, 0x10]),
            ..StateUpdate::to(TxnState::Approved, at + 1)
        },
    ))
    .unwrap()
}

fn ids(entries: &[JournalEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.id).collect()
}

/// The one column `sql` selects, every row (the writer's tests use it too).
pub(super) fn column<T: rusqlite::types::FromSql>(
    conn: &rusqlite::Connection,
    sql: &str,
) -> Vec<T> {
    conn.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Row counts of the three tables, read with a plain connection.
fn counts(path: &Path) -> (i64, i64, i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    (count("journal"), count("saf"), count("saf_event"))
}

#[test]
fn insert_then_look_up_by_every_key() {
    let dir = Scratch::new("lookup");
    let store = open(&dir.db());
    let a = insert(&store, purchase("T0000001", 11, 1000, 1_000));
    let b = insert(
        &store,
        NewEntry {
            local_date: "0612".to_owned(),
            ..purchase("T0000001", 12, 2000, 2_000)
        },
    );
    let c = insert(&store, purchase("T0000002", 11, 3000, 3_000));
    assert_eq!((a.id, b.id, c.id), (1, 2, 3));
    assert_eq!(a.state, TxnState::Pending);
    assert_eq!(a.updated_at, 1_000);
    let b = approve(&store, b.id, "000000000777", 2_500);

    assert_eq!(block_on(store.get(1)).unwrap(), Some(a.clone()));
    assert_eq!(block_on(store.get(99)).unwrap(), None);
    assert_eq!(
        block_on(store.by_idempotency_key(&b.idempotency_key().unwrap())).unwrap(),
        Some(b.clone())
    );
    assert_eq!(
        block_on(store.by_terminal_stan("T0000001", 11)).unwrap(),
        vec![a.clone()]
    );
    assert_eq!(
        block_on(store.by_terminal_stan("T0000002", 11)).unwrap(),
        vec![c.clone()]
    );
    assert_eq!(
        block_on(store.by_terminal_batch_stan("T0000002", 1, 11)).unwrap(),
        vec![c.clone()]
    );
    assert_eq!(
        block_on(store.by_terminal_batch_stan("T0000002", 2, 11)).unwrap(),
        vec![]
    );
    assert_eq!(
        block_on(store.by_rrn("000000000777")).unwrap(),
        vec![b.clone()]
    );
    assert_eq!(
        ids(&block_on(store.by_created_range(1_000, 3_000, 10)).unwrap()),
        vec![1, 2]
    );
    assert_eq!(
        ids(&block_on(store.by_created_range(0, 10_000, 2)).unwrap()),
        vec![2, 3]
    );
    let by_date = block_on(store.find(&EntryFilter {
        local_date: Some("0612".to_owned()),
        ..EntryFilter::all(10)
    }))
    .unwrap();
    assert_eq!(by_date, vec![b.clone()]);
    let approved = block_on(store.find(&EntryFilter {
        state: Some(TxnState::Approved),
        terminal_id: Some("T0000001".to_owned()),
        ..EntryFilter::all(10)
    }))
    .unwrap();
    assert_eq!(approved, vec![b.clone()]);
    assert_eq!(b.response_code.as_deref(), Some("00"));
    assert_eq!(b.auth_code.as_deref(), Some("A1B2C3"));
    assert_eq!(b.upstream_stan, Some(42));
    assert_eq!(b.response, Some(vec![0x02, 0x10]));
    assert_eq!(b.updated_at, 2_501);
}

#[test]
fn a_duplicate_idempotency_key_returns_the_existing_entry() {
    let dir = Scratch::new("dup");
    let store = open(&dir.db());
    let first = insert(&store, purchase("T0000001", 7, 1000, 1_000));
    // A retransmission while it is pending: the pending entry comes back (caller answers 94).
    let again = block_on(store.insert(purchase("T0000001", 7, 1000, 1_500))).unwrap();
    assert_eq!(again, InsertOutcome::DuplicateOf(first.clone()));
    // After completion: the completed entry with its stored response (caller replays it).
    let done = approve(&store, first.id, "000000000001", 2_000);
    let later = block_on(store.insert(purchase("T0000001", 7, 1000, 3_000))).unwrap();
    assert_eq!(later, InsertOutcome::DuplicateOf(done));
    // The terminal's reversal of it carries the same STAN but is another request.
    let reversal = insert(
        &store,
        NewEntry {
            kind: TxnKind::Reversal,
            mti: "0400".to_owned(),
            original_id: Some(first.id),
            ..purchase("T0000001", 7, 1000, 4_000)
        },
    );
    assert_eq!(reversal.id, 2);
    // The node's own messages have no key and never collide.
    let node = NewEntry {
        origin: Origin::Node,
        ..purchase("T0000001", 7, 1000, 5_000)
    };
    assert_eq!(insert(&store, node.clone()).id, 3);
    assert_eq!(insert(&store, node).id, 4);
    store.shutdown();
    assert_eq!(counts(&dir.db()).0, 4);
}

#[test]
fn a_request_journaled_before_version_4_is_still_found_as_a_duplicate() {
    // A version 3 database holding a terminal's purchase (with its idem_key) and an entry of
    // the node's own with the same fields.
    let dir = Scratch::new("dup-v3");
    {
        let conn = rusqlite::Connection::open(dir.db()).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE schema_version (version INTEGER NOT NULL);
             INSERT INTO schema_version (version) VALUES (1), (2), (3);
             {}{}{}",
            include_str!("schema_v1.sql"),
            include_str!("schema_v2.sql"),
            include_str!("schema_v3.sql")
        ))
        .unwrap();
        for (origin, key) in [
            (
                "TERMINAL",
                Some("T0000001/000001/000007/0611143005/PURCHASE"),
            ),
            ("NODE", None),
        ] {
            conn.execute(
                "INSERT INTO journal (created_at, updated_at, origin, terminal_id, \
                 merchant_id, batch, stan, local_date, local_time, kind, mti, \
                 processing_code, amount, state, request_hex, idem_key) VALUES (1000, 1000, \
                 ?1, 'T0000001', '898100012340001', 1, 7, '0611', '143005', 'PURCHASE', \
                 '0200', '000000', 1000, 'APPROVED', '02003020', ?2)",
                rusqlite::params![origin, key],
            )
            .unwrap();
        }
    }
    let store = open(&dir.db());
    let again = block_on(store.insert(purchase("T0000001", 7, 1000, 2_000))).unwrap();
    let InsertOutcome::DuplicateOf(old) = again else {
        panic!("not found as a duplicate: {again:?}")
    };
    assert_eq!(
        (old.id, old.origin, old.state),
        (1, Origin::Terminal, TxnState::Approved)
    );
    // Its request, stored as hex text then, reads back as bytes.
    assert_eq!(old.request, vec![0x02, 0x00, 0x30, 0x20]);
    let key = purchase("T0000001", 7, 1000, 0).idempotency_key().unwrap();
    assert_eq!(
        block_on(store.by_idempotency_key(&key))
            .unwrap()
            .map(|e| e.id),
        Some(1)
    );
    // Another STAN is new; the node's entries still never collide.
    assert_eq!(insert(&store, purchase("T0000001", 8, 1000, 3_000)).id, 3);
    let node = NewEntry {
        origin: Origin::Node,
        ..purchase("T0000001", 7, 1000, 4_000)
    };
    assert_eq!(insert(&store, node).id, 4);
    store.shutdown();
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let marks: Vec<(i64, Option<i64>, Option<String>, String)> = conn
        .prepare("SELECT id, terminal_request, idem_key, typeof(request) FROM journal ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        marks,
        [
            (
                1,
                Some(1),
                Some("T0000001/000001/000007/0611143005/PURCHASE".to_owned()),
                "text".to_owned()
            ),
            (2, None, None, "text".to_owned()),
            (3, Some(1), None, "blob".to_owned()),
            (4, None, None, "blob".to_owned()),
        ]
    );
}

#[test]
fn state_transitions_legal_and_illegal() {
    let dir = Scratch::new("states");
    let store = open(&dir.db());
    let e = insert(&store, purchase("T0000001", 1, 500, 1_000));
    assert_eq!(
        set(&store, e.id, TxnState::Sent, 1_001).state,
        TxnState::Sent
    );
    assert_eq!(
        set(&store, e.id, TxnState::TimedOut, 1_002).state,
        TxnState::TimedOut
    );
    let err =
        block_on(store.update_state(e.id, StateUpdate::to(TxnState::Approved, 1_003))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "journal entry 1: illegal state transition from TIMED_OUT to APPROVED"
    );
    assert_eq!(
        set(&store, e.id, TxnState::ReversalQueued, 1_004).state,
        TxnState::ReversalQueued
    );
    let reversed = set(&store, e.id, TxnState::Reversed, 1_005);
    assert_eq!(
        (reversed.state, reversed.updated_at),
        (TxnState::Reversed, 1_005)
    );
    let err =
        block_on(store.update_state(e.id, StateUpdate::to(TxnState::Sent, 1_006))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "journal entry 1: illegal state transition from REVERSED to SENT"
    );
    // The refused changes left nothing behind.
    assert_eq!(block_on(store.get(e.id)).unwrap(), Some(reversed));
    let err = block_on(store.update_state(9, StateUpdate::to(TxnState::Sent, 1))).unwrap_err();
    assert_eq!(err.to_string(), "journal entry 9 not found");
    let err = block_on(store.update_state(
        e.id,
        StateUpdate {
            response_code: Some("000".to_owned()),
            ..StateUpdate::to(TxnState::Sent, 1)
        },
    ))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid response_code: \"000\" has 3 characters, expected 2"
    );
}

#[test]
fn a_clear_pan_or_a_dangling_original_is_refused_and_nothing_is_written() {
    let dir = Scratch::new("refuse");
    let store = open(&dir.db());
    let err = block_on(store.insert(NewEntry {
        masked_pan: Some("6222021234567890123".to_owned()),
        ..purchase("T0000001", 1, 500, 1_000)
    }))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid masked_pan: is not a PAN masked as first 6 / last 4 digits (the journal never keeps a clear PAN)"
    );
    let err = block_on(store.insert(NewEntry {
        original_id: Some(77),
        ..purchase("T0000001", 2, 500, 1_000)
    }))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "insert a journal entry: FOREIGN KEY constraint failed"
    );
    let ok = insert(&store, purchase("T0000001", 3, 500, 1_000));
    assert_eq!(ok.id, 1);
    store.shutdown();
    assert_eq!(counts(&dir.db()), (1, 0, 0));
}

#[test]
fn crash_recovery_lists_pending_and_sent_after_reopen() {
    let dir = Scratch::new("recovery");
    {
        let store = open(&dir.db());
        for stan in 1..=6 {
            insert(&store, purchase("T0000001", stan, 100, 1_000));
        }
        set(&store, 2, TxnState::Sent, 2_000);
        approve(&store, 3, "000000000003", 2_000);
        set(&store, 4, TxnState::Failed, 2_000);
        set(&store, 5, TxnState::Sent, 2_000);
        set(&store, 6, TxnState::Declined, 2_000);
        // Dropped without shutdown: the writer still commits what it was given.
    }
    let store = open(&dir.db());
    let unfinished = block_on(store.unfinished(0, 10)).unwrap();
    assert_eq!(ids(&unfinished), vec![1, 2, 5]);
    assert_eq!(
        unfinished.iter().map(|e| e.state).collect::<Vec<_>>(),
        vec![TxnState::Pending, TxnState::Sent, TxnState::Sent]
    );
    assert_eq!(ids(&block_on(store.unfinished(0, 2)).unwrap()), vec![1, 2]);
    assert_eq!(ids(&block_on(store.unfinished(2, 2)).unwrap()), vec![5]);
    // Recovery queues their reversals; then nothing is left.
    for e in &unfinished {
        set(&store, e.id, TxnState::ReversalQueued, 3_000);
    }
    assert_eq!(block_on(store.unfinished(0, 10)).unwrap(), vec![]);
}

#[test]
fn insert_sent_journals_one_entry_in_sent_with_its_upstream_stan() {
    let dir = Scratch::new("insert-sent");
    let store = open(&dir.db());
    let before = store.stats();
    let e = inserted(
        block_on(store.insert_sent(purchase("T0000001", 7, 100, 1_000), 777, 1_005)).unwrap(),
    );
    assert_eq!(store.stats().commits - before.commits, 1);
    assert_eq!(store.stats().entries - before.entries, 1);
    assert_eq!(
        (e.id, e.state, e.upstream_stan),
        (1, TxnState::Sent, Some(777))
    );
    assert_eq!((e.created_at, e.updated_at), (1_000, 1_005));
    assert_eq!(block_on(store.get(1)).unwrap(), Some(e.clone()));
    // A retransmission is a duplicate, and nothing is written.
    match block_on(store.insert_sent(purchase("T0000001", 7, 100, 1_000), 778, 1_010)).unwrap() {
        InsertOutcome::DuplicateOf(d) => assert_eq!(d, e),
        InsertOutcome::Inserted(d) => panic!("inserted again as {}", d.id),
    }
    assert_eq!(counts(&dir.db()).0, 1);
    // An upstream STAN beyond six digits is refused before anything is written.
    assert_eq!(
        block_on(store.insert_sent(purchase("T0000001", 8, 100, 1_000), 1_000_000, 1_005))
            .unwrap_err()
            .to_string(),
        "invalid upstream_stan: 1000000 is above 999999"
    );
    // Crash recovery sees it as unfinished, and it moves on like an entry updated to SENT.
    assert_eq!(ids(&block_on(store.unfinished(0, 10)).unwrap()), vec![1]);
    let done = block_on(store.update_state(
        1,
        StateUpdate {
            response_code: Some("00".to_owned()),
            ..StateUpdate::to(TxnState::Approved, 1_020)
        },
    ))
    .unwrap();
    assert_eq!(
        (done.state, done.upstream_stan),
        (TxnState::Approved, Some(777))
    );
    assert_eq!(block_on(store.unfinished(0, 10)).unwrap(), vec![]);
}

#[test]
fn set_state_moves_an_entry_as_update_state_does_without_reading_it_back() {
    let dir = Scratch::new("set-state");
    let store = open(&dir.db());
    let a = insert(&store, purchase("T0000001", 1, 100, 1_000));
    let b = insert(&store, purchase("T0000001", 2, 100, 1_000));
    let outcome = StateUpdate {
        response_code: Some("00".to_owned()),
        rrn: Some("000000000001".to_owned()),
        auth_code: Some("A1B2C3".to_owned()),
        upstream_stan: Some(42),
        response: Some(vec![0x02, 0x10]),
        ..StateUpdate::to(TxnState::Approved, 2_000)
    };
    block_on(store.set_state(a.id, outcome.clone())).unwrap();
    let by_update = block_on(store.update_state(b.id, outcome.clone())).unwrap();
    let by_set = block_on(store.get(a.id)).unwrap().unwrap();
    assert_eq!(
        JournalEntry {
            id: b.id,
            stan: 2,
            ..by_set.clone()
        },
        by_update
    );
    assert_eq!(by_set.state, TxnState::Approved);
    assert_eq!(by_set.response, Some(vec![0x02, 0x10]));
    assert_eq!(by_set.updated_at, 2_000);
    // The same rules and errors as update_state; nothing changes on an error.
    assert_eq!(
        block_on(store.set_state(a.id, StateUpdate::to(TxnState::Sent, 3_000)))
            .unwrap_err()
            .to_string(),
        "journal entry 1: illegal state transition from APPROVED to SENT"
    );
    assert_eq!(
        block_on(store.set_state(99, StateUpdate::to(TxnState::Sent, 3_000)))
            .unwrap_err()
            .to_string(),
        "journal entry 99 not found"
    );
    assert_eq!(
        block_on(store.set_state(
            a.id,
            StateUpdate {
                rrn: Some("short".to_owned()),
                ..StateUpdate::to(TxnState::ReversalQueued, 3_000)
            }
        ))
        .unwrap_err()
        .to_string(),
        "invalid rrn: \"short\" has 5 characters, expected 12"
    );
    assert_eq!(block_on(store.get(a.id)).unwrap().unwrap(), by_set);
    block_on(store.set_state(a.id, StateUpdate::to(TxnState::ReversalQueued, 4_000))).unwrap();
    assert_eq!(
        block_on(store.get(a.id)).unwrap().unwrap().state,
        TxnState::ReversalQueued
    );
}

#[test]
fn settlement_totals_count_approved_settling_entries_only() {
    let dir = Scratch::new("totals");
    let store = open(&dir.db());
    let mut stan = 0;
    let mut add = |kind: TxnKind, amount: i64, batch: u32, terminal: &str| {
        stan += 1;
        insert(
            &store,
            NewEntry {
                kind,
                batch,
                ..purchase(terminal, stan, amount, 1_000)
            },
        )
        .id
    };
    let p1 = add(TxnKind::Purchase, 1_050, 1, "T0000001");
    let p2 = add(TxnKind::Purchase, 2_000, 1, "T0000001");
    let p3 = add(TxnKind::Purchase, 999, 1, "T0000001"); // declined
    let p4 = add(TxnKind::Purchase, 700, 1, "T0000001"); // reversed
    let p5 = add(TxnKind::Purchase, 300, 1, "T0000001"); // still pending
    let v1 = add(TxnKind::PurchaseVoid, 2_000, 1, "T0000001");
    let r1 = add(TxnKind::Refund, 450, 1, "T0000001");
    let b1 = add(TxnKind::Balance, 0, 1, "T0000001");
    let l1 = add(TxnKind::Load, 10_000, 1, "T0000001");
    let other_batch = add(TxnKind::Purchase, 5_000, 2, "T0000001");
    let other_terminal = add(TxnKind::Purchase, 6_000, 1, "T0000002");
    for (n, id) in [p1, p2, v1, r1, b1, l1, other_batch, other_terminal]
        .into_iter()
        .enumerate()
    {
        approve(&store, id, &format!("{:012}", n), 2_000);
    }
    set(&store, p3, TxnState::Sent, 2_000);
    set(&store, p3, TxnState::Declined, 2_001);
    approve(&store, p4, "000000000099", 2_000);
    set(&store, p4, TxnState::ReversalQueued, 2_002);
    set(&store, p4, TxnState::Reversed, 2_003);
    let _ = p5;
    let totals = block_on(store.batch_totals("T0000001", 1)).unwrap();
    assert_eq!(
        totals,
        BatchTotals {
            kinds: vec![
                KindTotal {
                    kind: TxnKind::Purchase,
                    count: 2,
                    amount: 3_050
                },
                KindTotal {
                    kind: TxnKind::PurchaseVoid,
                    count: 1,
                    amount: 2_000
                },
                KindTotal {
                    kind: TxnKind::Refund,
                    count: 1,
                    amount: 450
                },
                KindTotal {
                    kind: TxnKind::Load,
                    count: 1,
                    amount: 10_000
                },
            ],
            unresolved: 1,
        }
    );
    assert_eq!(
        totals.of(TxnKind::Balance),
        KindTotal {
            kind: TxnKind::Balance,
            count: 0,
            amount: 0
        }
    );
    assert_eq!(
        block_on(store.batch_totals("T0000009", 1)).unwrap(),
        BatchTotals {
            kinds: vec![],
            unresolved: 0
        }
    );
}

fn reversal(destination: &str, journal_id: Option<i64>, created_at: i64) -> NewSafEntry {
    NewSafEntry {
        destination: destination.to_owned(),
        journal_id,
        created_at,
        mti: "0400".to_owned(),
        repeat_mti: true,
        message: vec![0x04, 0x00, created_at.to_le_bytes()[0]],
    }
}

#[test]
fn saf_keeps_order_per_destination_and_the_head_latches_across_reopen() {
    let dir = Scratch::new("saf-order");
    {
        let store = open(&dir.db());
        for (dest, at) in [
            ("center", 1),
            ("bank", 2),
            ("center", 3),
            ("bank", 4),
            ("center", 5),
        ] {
            block_on(store.enqueue(reversal(dest, None, at))).unwrap();
        }
        let head = block_on(store.head("center")).unwrap().unwrap();
        assert_eq!(
            (head.id, head.sends, head.next_mti()),
            (1, 0, "0400".to_owned())
        );
        // Sent without a response: still the head, now to be repeated as 0401.
        assert_eq!(
            block_on(store.record_attempt(1, None, 10)).unwrap(),
            AttemptOutcome::NoResponse
        );
        let head = block_on(store.head("center")).unwrap().unwrap();
        assert_eq!((head.id, head.sends, head.attempts), (1, 1, 0));
        assert_eq!(head.next_mti(), "0401");
        // The bank's head is independent.
        assert_eq!(block_on(store.head("bank")).unwrap().unwrap().id, 2);
        store.shutdown();
    }
    let store = open(&dir.db());
    let head = block_on(store.head("center")).unwrap().unwrap();
    assert_eq!((head.id, head.sends, head.attempts), (1, 1, 0));
    assert_eq!(head.message, vec![0x04, 0x00, 1]);
    let done = block_on(store.complete(1, "00".to_owned(), 20)).unwrap();
    assert_eq!(
        (done.status, done.sends, done.attempts, done.last_response),
        (SafStatus::Done, 2, 1, Some("00".to_owned()))
    );
    assert_eq!(block_on(store.head("center")).unwrap().unwrap().id, 3);
    block_on(store.complete(3, "00".to_owned(), 21)).unwrap();
    assert_eq!(block_on(store.head("center")).unwrap().unwrap().id, 5);
    block_on(store.complete(5, "25".to_owned(), 22)).unwrap();
    assert_eq!(block_on(store.head("center")).unwrap(), None);
    assert_eq!(block_on(store.head("bank")).unwrap().unwrap().id, 2);
    let err = block_on(store.complete(1, "00".to_owned(), 23)).unwrap_err();
    assert_eq!(err.to_string(), "SAF entry 1 is DONE, not QUEUED");
    let events = block_on(store.events(1)).unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| (
                e.kind,
                e.send_no,
                e.mti.as_deref(),
                e.response_code.as_deref()
            ))
            .collect::<Vec<_>>(),
        vec![
            (SafEventKind::Enqueued, None, Some("0400"), None),
            (SafEventKind::Sent, Some(1), Some("0400"), None),
            (SafEventKind::Repeat, Some(2), Some("0401"), Some("00")),
            (SafEventKind::Completed, None, None, Some("00")),
        ]
    );
    assert_eq!(
        events.iter().map(|e| e.at).collect::<Vec<_>>(),
        vec![1, 10, 20, 20]
    );
}

#[test]
fn only_responses_count_and_exhaustion_moves_to_the_exception_queue() {
    let dir = Scratch::new("saf-exhaust");
    let store = open(&dir.db());
    let j = insert(&store, purchase("T0000001", 1, 100, 1));
    let e = block_on(store.enqueue(reversal("center", Some(j.id), 100))).unwrap();
    for at in 101..=105 {
        assert_eq!(
            block_on(store.record_attempt(e.id, None, at)).unwrap(),
            AttemptOutcome::NoResponse
        );
    }
    assert_eq!(
        block_on(store.record_attempt(e.id, Some("96".to_owned()), 106)).unwrap(),
        AttemptOutcome::Retry { attempts: 1 }
    );
    assert_eq!(
        block_on(store.record_attempt(e.id, Some("96".to_owned()), 107)).unwrap(),
        AttemptOutcome::Retry { attempts: 2 }
    );
    let reason = "exhausted: 3 responses without completion, the last 91".to_owned();
    assert_eq!(
        block_on(store.record_attempt(e.id, Some("91".to_owned()), 108)).unwrap(),
        AttemptOutcome::Exception {
            reason: reason.clone()
        }
    );
    let stored = block_on(store.saf_entry(e.id)).unwrap().unwrap();
    assert_eq!(
        (
            stored.status,
            stored.sends,
            stored.attempts,
            stored.last_response.as_deref(),
            stored.reason.as_deref(),
            stored.updated_at
        ),
        (
            SafStatus::Exception,
            8,
            3,
            Some("91"),
            Some(reason.as_str()),
            108
        )
    );
    assert_eq!(block_on(store.head("center")).unwrap(), None);
    assert_eq!(block_on(store.exceptions(10)).unwrap(), vec![stored]);
    let err = block_on(store.record_attempt(e.id, None, 109)).unwrap_err();
    assert_eq!(err.to_string(), "SAF entry 1 is EXCEPTION, not QUEUED");
    let events = block_on(store.events(e.id)).unwrap();
    assert_eq!(
        events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        vec![
            SafEventKind::Enqueued,
            SafEventKind::Sent,
            SafEventKind::Repeat,
            SafEventKind::Repeat,
            SafEventKind::Repeat,
            SafEventKind::Repeat,
            SafEventKind::Repeat,
            SafEventKind::Repeat,
            SafEventKind::Repeat,
            SafEventKind::Exception,
        ]
    );
    assert_eq!(events[9].detail.as_deref(), Some(reason.as_str()));
    store.shutdown();
    // One journal entry, one SAF entry, ten events: nothing was deleted.
    assert_eq!(counts(&dir.db()), (1, 1, 10));
}

#[test]
fn expired_entries_move_to_the_exception_queue() {
    let dir = Scratch::new("saf-expire");
    let store = open(&dir.db());
    // Expiry is 60 s.
    let a = block_on(store.enqueue(reversal("center", None, 0))).unwrap();
    let b = block_on(store.enqueue(reversal("center", None, 30_000))).unwrap();
    let c = block_on(store.enqueue(reversal("bank", None, 0))).unwrap();
    // A transmission after expiry: no response, but the entry is too old.
    assert_eq!(
        block_on(store.record_attempt(c.id, None, 60_000)).unwrap(),
        AttemptOutcome::Exception {
            reason: "expired: queued 60000 ms ago, expiry is 60000 ms".to_owned()
        }
    );
    assert_eq!(block_on(store.expire(59_999)).unwrap(), vec![]);
    let moved = block_on(store.expire(70_000)).unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(
        (moved[0].id, moved[0].status, moved[0].reason.as_deref()),
        (
            a.id,
            SafStatus::Exception,
            Some("expired: queued 70000 ms ago, expiry is 60000 ms")
        )
    );
    assert_eq!(block_on(store.head("center")).unwrap().unwrap().id, b.id);
    let moved =
        block_on(store.move_to_exception(b.id, "operator hold".to_owned(), 71_000)).unwrap();
    assert_eq!(moved.reason.as_deref(), Some("operator hold"));
    assert_eq!(
        block_on(store.depths()).unwrap(),
        vec![
            SafDepth {
                destination: "bank".to_owned(),
                queued: 0,
                exception: 1
            },
            SafDepth {
                destination: "center".to_owned(),
                queued: 0,
                exception: 2
            },
        ]
    );
    store.shutdown();
    // Three entries; events: 3 enqueued, 1 sent, 3 exceptions.
    assert_eq!(counts(&dir.db()), (0, 3, 7));
}

#[test]
fn depths_count_queued_and_exception_per_destination_and_the_queue_is_bounded() {
    let dir = Scratch::new("saf-depths");
    let store = SqliteStore::open(
        &dir.db(),
        &StoreConfig {
            saf: SafConfig {
                max_queued: 2,
                ..config().saf
            },
            ..config()
        },
    )
    .unwrap();
    assert_eq!(block_on(store.depths()).unwrap(), vec![]);
    block_on(store.enqueue(reversal("center", None, 1))).unwrap();
    block_on(store.enqueue(reversal("center", None, 2))).unwrap();
    let err = block_on(store.enqueue(reversal("center", None, 3))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "SAF queue for center is full (2 entries queued)"
    );
    block_on(store.enqueue(reversal("bank", None, 4))).unwrap();
    block_on(store.move_to_exception(1, "manual".to_owned(), 5)).unwrap();
    block_on(store.enqueue(reversal("center", None, 6))).unwrap();
    assert_eq!(
        block_on(store.depths()).unwrap(),
        vec![
            SafDepth {
                destination: "bank".to_owned(),
                queued: 1,
                exception: 0
            },
            SafDepth {
                destination: "center".to_owned(),
                queued: 2,
                exception: 1
            },
        ]
    );
    let err = block_on(store.move_to_exception(2, " ".to_owned(), 7)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid reason: an exception needs a reason"
    );
}

#[test]
fn writes_after_shutdown_fail_and_reads_still_work() {
    let dir = Scratch::new("closed");
    let store = open(&dir.db());
    insert(&store, purchase("T0000001", 1, 100, 1));
    store.shutdown();
    let err = block_on(store.insert(purchase("T0000001", 2, 100, 2))).unwrap_err();
    assert_eq!(err.to_string(), "the journal writer has shut down");
    assert_eq!(block_on(store.get(1)).unwrap().unwrap().stan, 1);
    assert_eq!(
        store.stats(),
        WriterStats {
            commits: 1,
            entries: 1,
            largest_batch: 1
        }
    );
}

#[test]
fn schema_is_versioned_and_a_newer_one_is_refused() {
    // A version 1 database (before link events) is migrated on open.
    let old = Scratch::new("schema-v1");
    {
        let conn = rusqlite::Connection::open(old.db()).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL);
             INSERT INTO schema_version (version) VALUES (1);",
        )
        .unwrap();
        conn.execute_batch(include_str!("schema_v1.sql")).unwrap();
    }
    let err = SqliteReader::open(&old.db(), 1, Duration::from_secs(1))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("schema version 1 is older than 4"),
        "{err}"
    );
    drop(open(&old.db()));
    let reader = SqliteReader::open(&old.db(), 1, Duration::from_secs(1)).unwrap();
    assert_eq!(reader.link_events(10).unwrap(), Vec::new());
    // Version 3 made the two terminal indexes one; version 4 folded that one into the
    // idempotency index.
    let conn = rusqlite::Connection::open(old.db()).unwrap();
    let indexes: Vec<String> = column(
        &conn,
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'journal' \
         AND name NOT LIKE 'sqlite_%' ORDER BY name",
    );
    assert_eq!(
        indexes,
        [
            "journal_created",
            "journal_idempotency",
            "journal_local_date",
            "journal_rrn",
            "journal_unfinished"
        ]
    );
    drop(conn);

    let dir = Scratch::new("schema");
    drop(open(&dir.db()));
    drop(open(&dir.db()));
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let versions: Vec<i64> = column(&conn, "SELECT version FROM schema_version");
    assert_eq!(versions, vec![1, 2, 3, 4]);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute("INSERT INTO schema_version VALUES (5)", [])
        .unwrap();
    drop(conn);
    let err = SqliteStore::open(&dir.db(), &config()).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "{} is not a usable journal database: schema version 5 is newer than this posp-node understands (4)",
            dir.db().display()
        )
    );
    let plain = dir.0.join("plain.db");
    rusqlite::Connection::open(&plain)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let err = SqliteReader::open(&plain, 1, Duration::from_secs(1))
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "{} is not a usable journal database: no schema version (no such table: schema_version)",
            plain.display()
        )
    );
}

/// 2,000 entries from 8 concurrent tasks: all durable after reopen, and fewer commits than
/// entries (group commit). Prints the throughput (not asserted).
#[test]
fn group_commit_shares_commits_between_concurrent_writers() {
    const TASKS: u32 = 8;
    const PER_TASK: u32 = 250;
    let dir = Scratch::new("group");
    let store = Arc::new(open(&dir.db()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                for n in 0..PER_TASK {
                    let terminal = format!("T{task:07}");
                    let outcome = store
                        .insert(purchase(&terminal, n + 1, i64::from(n), i64::from(n)))
                        .await
                        .unwrap();
                    assert!(matches!(outcome, InsertOutcome::Inserted(_)));
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let elapsed = started.elapsed();
    let stats = store.stats();
    store.shutdown();
    drop(store);
    eprintln!(
        "group commit: {} entries in {:.3} s = {:.0} entries/s, {} commits = {:.0} commits/s, \
         largest batch {}",
        stats.entries,
        elapsed.as_secs_f64(),
        stats.entries as f64 / elapsed.as_secs_f64(),
        stats.commits,
        stats.commits as f64 / elapsed.as_secs_f64(),
        stats.largest_batch
    );
    assert_eq!(stats.entries, 2_000);
    assert!(stats.commits < 2_000, "{} commits", stats.commits);
    let store = open(&dir.db());
    assert_eq!(counts(&dir.db()).0, 2_000);
    for task in 0..TASKS {
        let terminal = format!("T{task:07}");
        let entries = block_on(store.find(&EntryFilter {
            terminal_id: Some(terminal),
            ..EntryFilter::all(1_000)
        }))
        .unwrap();
        assert_eq!(
            entries.iter().map(|e| e.stan).collect::<Vec<_>>(),
            (1..=PER_TASK).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_read_only_reader_opens_a_database_the_store_has_closed() {
    let dir = Scratch::new("reader");
    {
        let store = open(&dir.db());
        insert(&store, purchase("T0000001", 1, 100, 1));
        block_on(store.enqueue(reversal("center", Some(1), 2))).unwrap();
    }
    let reader = SqliteReader::open(&dir.db(), 2, Duration::from_secs(1)).unwrap();
    assert_eq!(reader.path(), dir.db().as_path());
    assert_eq!(ids(&reader.find(&EntryFilter::all(10)).unwrap()), vec![1]);
    assert_eq!(
        reader.saf_depths().unwrap(),
        vec![SafDepth {
            destination: "center".to_owned(),
            queued: 1,
            exception: 0
        }]
    );
}
