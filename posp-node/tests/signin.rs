#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Sign-in in each working-key layout of 60.3, end to end with the real center: the keys
//! arrive in the layout asked for, and a purchase with a PIN and MAC under them is approved.

use posp_node::demo::{Stack, StackOptions, temp_dir};
use posp_node::possim::{Status, Terminal, demo_card_holders};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_001_003_004_give_their_layouts_and_the_keys_work() {
    let dir = temp_dir("posp-signin");
    let stack = Stack::start(&dir, &StackOptions::one_terminal())
        .await
        .unwrap();
    let holder = &demo_card_holders()[0];
    let mut first_stan = 1;
    for (code, pik_len, tdk) in [("001", 8, false), ("003", 16, false), ("004", 16, true)] {
        let mut config = stack.terminals[0].clone();
        config.sign_in_code = code;
        config.first_stan = first_stan;
        first_stan += 10;
        let mut t = Terminal::new(config);
        let o = t.sign_in().await;
        assert_eq!(o.status, Status::Approved, "{code}: {o}");
        let keys = t.session_keys().unwrap();
        assert_eq!(keys.pik.as_bytes().len(), pik_len, "{code}");
        assert_eq!(keys.mak.as_bytes().len(), 8, "{code}");
        assert_eq!(keys.tdk.is_some(), tdk, "{code}");
        let session = stack.front.shared().sessions.get("10000001").unwrap();
        assert_eq!(session.tdk.is_some(), tdk, "{code}");
        assert_eq!(
            session.tpk.kcv.to_string(),
            keys.pik.kcv(pboc_sam::KcvLength::UNIONPAY).to_string()
        );
        let o = t.purchase(&holder.card, 1_000, &holder.pin).await;
        assert_eq!(o.status, Status::Approved, "{code}: {o}");
    }
    // Another code is not a layout: 12, and no new keys.
    let mut config = stack.terminals[0].clone();
    config.sign_in_code = "002";
    config.first_stan = 100;
    let mut t = Terminal::new(config);
    let o = t.sign_in().await;
    assert_eq!(o.status, Status::Declined);
    assert_eq!(o.response_code.as_deref(), Some("12"));
    stack.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
