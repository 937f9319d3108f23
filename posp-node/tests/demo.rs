#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The main job end to end: `posp-node demo` in process and as a command.

use posp_node::demo::{DROPPED_AMOUNT, DemoOptions, run_demo};
use posp_node::possim::Operation;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_business_day_goes_as_scripted_and_journal_and_center_agree() {
    let dir = std::env::temp_dir().join(format!("posp-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let report = run_demo(&DemoOptions {
        data_dir: Some(dir.clone()),
        burst: 8,
        verbose: false,
    })
    .await
    .unwrap();
    // Every step, its expected answer and what came back.
    let steps: Vec<(&str, &str, u64, &str)> = report
        .steps
        .iter()
        .map(|s| {
            (
                s.terminal.as_str(),
                s.operation.name(),
                s.amount,
                s.got.as_str(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("10000001", "sign-in", 0, "00"),
            ("10000001", "echo", 0, "00"),
            ("10000001", "balance", 0, "00"),
            ("10000001", "purchase", 12_345, "00"),
            ("10000001", "void", 12_345, "00"),
            ("10000001", "purchase", 25_600, "00"),
            ("10000001", "refund", 5_600, "00"),
            ("10000001", "purchase", DROPPED_AMOUNT, "98"),
            ("10000001", "purchase", 1_200, "A0"),
            ("10000001", "purchase", 6_000, "51"),
            ("10000001", "purchase", 1_000, "41"),
            ("10000001", "purchase", 15_000, "61"),
            ("10000001", "settlement", 0, "00"),
            ("10000001", "sign-off", 0, "00"),
            ("10000002", "sign-in", 0, "00"),
            ("10000002", "load", 10_000, "00"),
            ("10000002", "load", 5_000, "00"),
            ("10000002", "settlement", 0, "00"),
            ("10000002", "sign-off", 0, "00"),
        ]
    );
    assert!(report.steps.iter().all(|s| s.ok()));
    assert_eq!(report.purse_balance, Some(15_000));
    // The dropped purchase: one reversal, acknowledged, nothing left in the SAF.
    assert_eq!(report.reversals_queued, 1);
    assert_eq!(report.reversals_acknowledged, 1);
    assert_eq!(report.saf_left, (0, 0));
    // The burst: 3 terminals x 8, all approved.
    assert_eq!(report.burst.terminals, 3);
    assert_eq!(report.burst.transactions, 24);
    assert_eq!(report.burst.approved, 24);
    let burst = |op| {
        report
            .burst
            .by_operation
            .get(&op)
            .map(|c| c.approved)
            .unwrap_or(0)
    };
    // Journal and center agree kind by kind, and with what the terminals saw.
    let r = &report.reconciliation;
    assert!(r.agrees(), "{report}");
    assert_eq!(r.journal["purchase"].count, 2 + burst(Operation::Purchase));
    assert_eq!(r.journal["void"].count, 1 + burst(Operation::Void));
    assert_eq!(r.journal["refund"].count, 1);
    assert_eq!(r.journal["refund"].amount, 5_600);
    assert_eq!(r.journal["load"].count, 2);
    assert_eq!(r.journal["load"].amount, 15_000);
    assert_eq!(r.journal["load_confirm"].count, 2);
    assert_eq!(r.journal["balance"].count, 1);
    // Money: purchases + loads - voids - refunds, the same from the balances.
    let net = r.journal["purchase"].amount + r.journal["load"].amount
        - r.journal["void"].amount
        - r.journal["refund"].amount;
    assert_eq!(r.journal_net, i64::try_from(net).unwrap());
    assert_eq!(r.center_net, r.journal_net);
    assert!(report.success());
    let text = report.to_string();
    assert!(text.contains("journal against center (approved, not reversed): AGREE"));
    assert!(text.ends_with(&format!("DEMO OK in {:.1} s", report.elapsed.as_secs_f64())));
    // The node directory stays when given: init's files and both databases.
    for f in [
        "posp.toml",
        "lmk.txt",
        "terminals.json",
        "issuer.json",
        "journal.db",
        "center.db",
    ] {
        assert!(dir.join(f).exists(), "{f}");
    }
    // A second run into the same directory is refused: init never overwrites.
    let again = run_demo(&DemoOptions {
        data_dir: Some(dir.clone()),
        burst: 1,
        verbose: false,
    })
    .await
    .unwrap_err();
    assert_eq!(again.step, "init");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_demo_command_exits_0_and_prints_the_summary() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_posp-node"))
        .args(["demo", "--burst", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("== posp-node demo: one business day =="));
    assert!(stdout.contains("(temporary, removed)"));
    assert!(stdout.contains("reversals: 1 queued in the SAF, 1 acknowledged by the center"));
    assert!(stdout.contains("3 terminals: 6 transactions, 6 approved"));
    assert!(stdout.contains("DEMO OK in "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_test_runs_its_three_phases_and_all_are_approved() {
    use posp_node::loadtest::{LoadTestOptions, run_load_test};
    let report = run_load_test(&LoadTestOptions {
        terminals: 3,
        transactions: 7,
        hsm_simulator: false,
        data_dir: None,
        progress: false,
    })
    .await
    .unwrap();
    let phases: Vec<(&str, u64, u64, u64)> = report
        .phases
        .iter()
        .map(|p| {
            (
                p.name,
                p.report.transactions,
                p.report.approved,
                p.report.sign_in_failures,
            )
        })
        .collect();
    assert_eq!(
        phases,
        [
            ("bare echo", 21, 21, 0),
            ("front-end echo", 21, 21, 0),
            ("purchases", 21, 21, 0),
        ]
    );
    let echoes = &report.phases[1].report.by_operation[&Operation::Echo];
    assert_eq!((echoes.sent, echoes.approved), (21, 21));
    let purchases = &report.phases[2].report.by_operation[&Operation::Purchase];
    assert_eq!((purchases.sent, purchases.approved), (21, 21));
    assert!(report.all_approved());
    let text = report.to_string();
    assert!(text.starts_with("3 terminals x 7 transactions per phase, HSM: in-process SoftHsm\n"));
    assert!(text.contains("| purchases | 21 | 21 |"));
}
