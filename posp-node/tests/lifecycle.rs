#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The front end's supervision end to end, with the real center: a flow worker that dies
//! holding a request is restarted and its transaction closed; a graceful shutdown lets a
//! transaction in flight finish.

use std::sync::atomic::Ordering;
use std::time::Duration;

use posp_node::center::{AuthState, Registry};
use posp_node::demo::{Stack, StackOptions, temp_dir};
use posp_node::possim::{Status, Terminal, demo_card_holders};
use posp_node::store::{SqliteStore, StoreConfig, TxnState};

async fn wait_until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_dies_is_restarted_and_its_transaction_reversed() {
    let dir = temp_dir("posp-lifecycle-crash");
    let stack = Stack::start(&dir, &StackOptions::one_terminal())
        .await
        .unwrap();
    let shared = stack.front.shared().clone();
    shared.test_panic_amount.store(7_777, Ordering::Relaxed);
    let holder = &demo_card_holders()[0];
    let mut t = Terminal::new(stack.terminals[0].clone());
    assert_eq!(t.sign_in().await.status, Status::Approved);

    // The worker panics after journaling the purchase: the terminal still gets an answer.
    let o = t.purchase(&holder.card, 7_777, &holder.pin).await;
    assert_eq!(o.status, Status::Declined, "{o}");
    assert_eq!(o.response_code.as_deref(), Some("96"));
    assert!(o.record.is_none());
    let stan = o.stan;

    // Exactly one flow worker was restarted, and it runs again.
    let modules = stack.front.modules();
    wait_until("the worker's restart", async || {
        modules
            .snapshot()
            .iter()
            .filter(|m| m.name.starts_with("flow#"))
            .all(|m| m.state == posp_node::supervisor::ModuleState::Running)
    })
    .await;
    let restarted: Vec<_> = modules
        .snapshot()
        .into_iter()
        .filter(|m| m.name.starts_with("flow#") && m.restarts > 0)
        .collect();
    assert_eq!(restarted.len(), 1);
    assert_eq!(restarted[0].restarts, 1);
    assert!(
        restarted[0]
            .last_failure
            .as_deref()
            .unwrap()
            .contains("test hook: the flow worker dies holding journal entry"),
        "{:?}",
        restarted[0].last_failure
    );
    assert_eq!(shared.metrics.worker_crashes.load(Ordering::Relaxed), 1);

    // Its journal entry was closed as crash recovery closes one: reversal queued, sent,
    // acknowledged (the center never saw the purchase: 25, a done code).
    let store = shared.store.clone();
    wait_until("the reversal", async || {
        store.reader().by_terminal_stan("10000001", stan).unwrap()[0].state == TxnState::Reversed
    })
    .await;
    let entries = store.reader().by_terminal_stan("10000001", stan).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].amount, 7_777);

    // Everyone else is served: a purchase right after is approved.
    let o = t.purchase(&holder.card, 100, &holder.pin).await;
    assert_eq!(o.status, Status::Approved, "{o}");
    let db = stack.center_database.clone();
    stack.stop().await;
    let auths = Registry::open(&db).unwrap().authorizations().unwrap();
    let summary: Vec<(&str, u64, &str, AuthState)> = auths
        .iter()
        .map(|a| (a.kind.as_str(), a.amount, a.response_code.as_str(), a.state))
        .collect();
    assert_eq!(
        summary,
        [
            ("reversal", 7_777, "25", AuthState::Declined),
            ("purchase", 100, "00", AuthState::Approved),
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_a_transaction_in_flight_finish() {
    let dir = temp_dir("posp-lifecycle-shutdown");
    let stack = Stack::start(
        &dir,
        &StackOptions {
            center_delay: Duration::from_millis(600),
            link_timeout: Duration::from_secs(3),
            ..StackOptions::one_terminal()
        },
    )
    .await
    .unwrap();
    let holder = demo_card_holders()[0].clone();
    let mut t = Terminal::new(stack.terminals[0].clone());
    assert_eq!(t.sign_in().await.status, Status::Approved);
    let front_addr = stack.front.local_addr();
    let purchase = tokio::spawn(async move {
        let o = t.purchase(&holder.card, 4_321, &holder.pin).await;
        (t, o)
    });
    // The purchase is in its flow, waiting for the center's delayed reply.
    let inflight = stack.front.shared().inflight.clone();
    wait_until("the purchase in flight", async || inflight.count() == 1).await;
    stack.stop().await;
    let (t, o) = purchase.await.unwrap();
    assert_eq!(o.status, Status::Approved, "{o}");
    assert_eq!(o.response_code.as_deref(), Some("00"));
    // The journal, reopened after the shutdown, has it approved with its response.
    let store = SqliteStore::open(&dir.join("journal.db"), &StoreConfig::default()).unwrap();
    let entries = store.reader().by_terminal_stan("10000001", o.stan).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].state, TxnState::Approved);
    assert_eq!(entries[0].amount, 4_321);
    assert!(entries[0].response.is_some());
    store.shutdown();
    // And the front end no longer accepts terminals.
    assert!(tokio::net::TcpStream::connect(front_addr).await.is_err());
    drop(t);
    std::fs::remove_dir_all(&dir).unwrap();
}
