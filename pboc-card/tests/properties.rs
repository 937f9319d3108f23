#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property: any sequence of loads and purchases on both applications (ED and EP), some of
//! them torn at either tear point, run through the terminal flows against a virtual card,
//! a virtual PSAM and the issuer (a SoftHsm holding the masters), keeps the card exactly
//! where a plain model says it must be:
//!
//! - each balance is the initial balance plus the loads minus the purchases that
//!   succeeded (a transaction torn before its commit did not happen, one torn after it
//!   did, exactly once);
//! - the online counter counts completed loads, the offline counter completed purchases,
//!   and neither ever moves backwards;
//! - every completed load's and purchase's TAC verifies at the issuer through the HSM, and
//!   the uploaded purchases are accepted once, a second upload being a duplicate;
//! - after a tear, GET TRANSACTION PROOF agrees with the model (a proof with the same TAC
//!   when the transaction committed, none otherwise);
//! - the detail file holds the model's last records (capacity 10), newest first.
//!
//! A failed transaction (insufficient balance, above the maximum balance) must fail at its
//! INITIALIZE with the exact status word and change nothing.

use pboc_card::command::PsamInfo;
use pboc_card::flow::{self, FlowError, HostReply, PurchaseKind, PurchaseRequest, TearOutcome};
use pboc_card::issuer::{self, BatchChecker, IssuerKeys, Verdict};
use pboc_card::personalize::{IssuerProfile, personalize};
use pboc_card::psam::KEY_USAGE_TAC;
use pboc_card::{
    ApduPsam, Application, OfflinePurchaseRecord, StatusWord, TearPoint, TransactionDetail,
    TransactionType, VirtualCard, VirtualPsam,
};
use pboc_sam::transport::MemoryTransport;
use pboc_sam::{CounterRandom, DesKey, KeyType, Lmk, SoftHsm};
use proptest::prelude::*;

const MPK: &str = "0123456789ABCDEFFEDCBA9876543210";
const MLK: &str = "11223344556677888877665544332211";
const MTK: &str = "5A4B3C2D1E0F1A2B1122334455667788";
const CITY: [u8; 8] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x31, 0x00];
const SERIAL: [u8; 8] = [0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07];
const TERMINAL: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const DATE: [u8; 4] = [0x20, 0x24, 0x06, 0x15];
/// Largest balance of either application.
const MAX_BALANCE: u32 = 20_000;
/// Capacity of the detail file.
const CAPACITY: usize = 10;

fn profile(ed_balance: u32, ep_balance: u32) -> IssuerProfile {
    IssuerProfile::from_json(&format!(
        r#"{{
            "issuer_id": "3100000000000000",
            "card_type": 3,
            "valid_from": "20240101",
            "valid_until": "20341231",
            "ed": {{ "initial_balance": {ed_balance}, "max_balance": {MAX_BALANCE} }},
            "ep": {{ "initial_balance": {ep_balance}, "max_balance": {MAX_BALANCE} }},
            "diversification_factors": ["{}"],
            "master_keys": [
                {{ "purpose": "DPK", "index": 1, "version": 1, "key": "{MPK}" }},
                {{ "purpose": "DLK", "index": 1, "version": 1, "key": "{MLK}" }},
                {{ "purpose": "DTK", "index": 1, "version": 1, "key": "{MTK}" }}
            ],
            "record_capacity": {CAPACITY}
        }}"#,
        hex::encode_upper(CITY)
    ))
    .unwrap()
}

/// One step of a sequence.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// Load `amount` fen into the application.
    Load(Application, u32, Option<TearPoint>),
    /// Buy for `amount` fen from the application.
    Purchase(Application, u32, Option<TearPoint>),
}

fn application() -> impl Strategy<Value = Application> {
    prop_oneof![Just(Application::Ed), Just(Application::Ep)]
}

fn tear() -> impl Strategy<Value = Option<TearPoint>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(TearPoint::BeforeCommit)),
        1 => Just(Some(TearPoint::AfterCommitBeforeResponse)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (application(), 1u32..=8_000, tear()).prop_map(|(a, n, t)| Op::Load(a, n, t)),
        (application(), 1u32..=6_000, tear()).prop_map(|(a, n, t)| Op::Purchase(a, n, t)),
    ]
}

/// One application's state as the model derives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PurseModel {
    balance: u32,
    online_seq: u16,
    offline_seq: u16,
}

/// The model: the initial balances and every transaction that completed, oldest first.
struct Model {
    initial: [u32; 2],
    done: Vec<TransactionDetail>,
}

impl Model {
    /// The state of `application`: the initial balance plus the completed loads minus the
    /// completed purchases; the online seq counts the loads, the offline seq the purchases.
    fn purse(&self, application: Application) -> PurseModel {
        let loads = self
            .done
            .iter()
            .filter(|d| d.transaction_type == TransactionType::load(application));
        let purchases = self
            .done
            .iter()
            .filter(|d| d.transaction_type == TransactionType::purchase(application));
        let loaded: u32 = loads.clone().map(|d| d.amount).sum();
        let spent: u32 = purchases.clone().map(|d| d.amount).sum();
        PurseModel {
            balance: self.initial[index(application)] + loaded - spent,
            online_seq: u16::try_from(loads.count()).unwrap(),
            offline_seq: u16::try_from(purchases.count()).unwrap(),
        }
    }

    /// The detail file: the last [`CAPACITY`] transactions, newest first.
    fn records(&self) -> Vec<TransactionDetail> {
        self.done.iter().rev().take(CAPACITY).copied().collect()
    }
}

fn bcd(n: usize) -> u8 {
    u8::try_from(((n / 10 % 10) << 4) | (n % 10)).unwrap()
}

fn block_on<F: core::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

/// Everything a run needs: the card, the PSAM, the issuer.
struct World {
    card: MemoryTransport<VirtualCard>,
    psam: ApduPsam<MemoryTransport<VirtualPsam>>,
    hsm: SoftHsm,
    keys: IssuerKeys,
    /// The issuer's check of uploads, one for both applications: its duplicate key holds
    /// the application, as ED and EP count their offline seqs separately.
    checker: BatchChecker,
    /// Purchases the checker accepted.
    accepted: usize,
    /// The last terminal seq the PSAM handed out.
    terminal_seq: u32,
}

fn world(ed_balance: u32, ep_balance: u32, seed: u64) -> World {
    let image = personalize(&profile(ed_balance, ep_balance), SERIAL).unwrap();
    let card = VirtualCard::from_image(&image, Box::new(CounterRandom::new(seed))).unwrap();
    let info = PsamInfo {
        serial: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07],
        version: 1,
        key_type: 6,
        command_set_version: 1,
        fci_data: 0,
    };
    let mut psam = VirtualPsam::new(TERMINAL, info);
    psam.add_purchase_key(0x01, DesKey::from_hex(MPK).unwrap())
        .add_key(KEY_USAGE_TAC, 0x01, 0x00, DesKey::from_hex(MTK).unwrap())
        .set_terminal_seq(1);
    let hsm = SoftHsm::new(
        Lmk::generate(&CounterRandom::new(11)),
        Box::new(CounterRandom::new(12)),
    );
    let dlk = hsm
        .form_key_from_components(&[&hex::decode(MLK).unwrap()], KeyType::PbocLoad)
        .unwrap();
    let dtk = hsm
        .form_key_from_components(&[&hex::decode(MTK).unwrap()], KeyType::PbocTac)
        .unwrap();
    World {
        card: MemoryTransport::new(card),
        psam: ApduPsam::new(MemoryTransport::new(psam)),
        hsm,
        keys: IssuerKeys {
            issuer_factors: vec![CITY],
            ..IssuerKeys::new(dlk, dtk)
        },
        checker: BatchChecker::new(),
        accepted: 0,
        terminal_seq: 0,
    }
}

fn index(application: Application) -> usize {
    match application {
        Application::Ed => 0,
        Application::Ep => 1,
    }
}

impl World {
    /// After a torn completing command: GET TRANSACTION PROOF must show the transaction
    /// with this TAC when it committed, and nothing when it did not.
    fn check_proof(&mut self, transaction_type: TransactionType, seq: u16, tac: Option<[u8; 4]>) {
        let proof = flow::recover(&mut self.card, transaction_type, seq).unwrap();
        assert_eq!(
            proof.map(|p| p.tac),
            tac,
            "proof of {transaction_type:?} {seq}"
        );
    }

    fn load(
        &mut self,
        model: &mut Model,
        application: Application,
        amount: u32,
        tear: Option<TearPoint>,
        time: [u8; 3],
    ) {
        let before = model.purse(application);
        let fits = before.balance + amount <= MAX_BALANCE;
        let started = flow::start_load(&mut self.card, application, 0x01, amount, TERMINAL, SERIAL);
        if !fits {
            let error = started.unwrap_err();
            assert_eq!(error.status(), Some(StatusWord::ConditionsNotSatisfied));
            return;
        }
        let pending = started.unwrap();
        assert_eq!(pending.request.balance, before.balance);
        assert_eq!(pending.request.online_seq, before.online_seq);
        let reply: HostReply = block_on(issuer::load_mac2(
            &self.hsm,
            &self.keys,
            &pending.request,
            DATE,
            time,
        ))
        .unwrap();
        if let Some(point) = tear {
            self.card.handler_mut().set_tear(point);
        }
        let outcome = flow::complete_online(&mut self.card, &pending, &reply).unwrap();
        let transaction_type = TransactionType::load(application);
        let committed = tear != Some(TearPoint::BeforeCommit);
        match (&outcome, tear) {
            (TearOutcome::Completed(_), None)
            | (TearOutcome::Recovered(_), Some(TearPoint::AfterCommitBeforeResponse))
            | (TearOutcome::NotDebited, Some(TearPoint::BeforeCommit)) => {}
            _ => panic!("load with tear {tear:?} ended {outcome:?}"),
        }
        let tac = outcome.done().map(|c| c.tac);
        if tear.is_some() {
            self.check_proof(transaction_type, before.online_seq, tac);
        }
        if !committed {
            return;
        }
        let tac = tac.unwrap();
        let balance_after = before.balance + amount;
        block_on(issuer::verify_load_tac(
            &self.hsm,
            &self.keys,
            &pending.request,
            &reply,
            balance_after,
            tac,
        ))
        .unwrap();
        model.done.push(TransactionDetail {
            card_seq: before.online_seq,
            overdraw_limit: 0,
            amount,
            transaction_type,
            terminal: TERMINAL,
            date: DATE,
            time,
        });
    }

    fn purchase(
        &mut self,
        model: &mut Model,
        application: Application,
        amount: u32,
        tear: Option<TearPoint>,
        time: [u8; 3],
    ) {
        let before = model.purse(application);
        let covered = amount <= before.balance;
        if let (true, Some(point)) = (covered, tear) {
            self.card.handler_mut().set_tear(point);
        }
        let request = PurchaseRequest {
            kind: PurchaseKind::Purchase(application),
            key_index: 0x01,
            amount,
            terminal: TERMINAL,
            card_serial: SERIAL,
            issuer_factors: vec![CITY],
            date: DATE,
            time,
        };
        let result = flow::purchase(&mut self.card, &mut self.psam, &request);
        if !covered {
            match result {
                Err(FlowError::Status { step, sw }) => {
                    assert_eq!(step, "INITIALIZE FOR PURCHASE");
                    assert_eq!(sw, StatusWord::InsufficientBalance);
                }
                other => panic!("purchase beyond the balance ended {other:?}"),
            }
            return;
        }
        let outcome = result.unwrap();
        // The PSAM's counter moved for this purchase, whatever happened on the card.
        self.terminal_seq += 1;
        match (&outcome, tear) {
            (TearOutcome::Completed(_), None)
            | (TearOutcome::Recovered(_), Some(TearPoint::AfterCommitBeforeResponse))
            | (TearOutcome::NotDebited, Some(TearPoint::BeforeCommit)) => {}
            _ => panic!("purchase with tear {tear:?} ended {outcome:?}"),
        }
        let transaction_type = TransactionType::purchase(application);
        let receipt = outcome.done();
        if tear.is_some() {
            self.check_proof(
                transaction_type,
                before.offline_seq,
                receipt.map(|r| r.record.tac),
            );
        }
        let Some(receipt) = receipt else {
            return;
        };
        let record: OfflinePurchaseRecord = receipt.record;
        assert_eq!(
            (
                record.offline_seq,
                record.amount,
                record.balance_before,
                record.terminal_seq
            ),
            (
                before.offline_seq,
                amount,
                before.balance,
                self.terminal_seq
            )
        );
        assert_eq!(receipt.balance_after, before.balance - amount);
        block_on(issuer::verify_purchase_tac(&self.hsm, &self.keys, &record)).unwrap();
        let checker = &mut self.checker;
        assert_eq!(
            block_on(checker.check_record(&self.hsm, &self.keys, &record)),
            Verdict::Accepted
        );
        assert_eq!(
            block_on(checker.check_record(&self.hsm, &self.keys, &record)),
            Verdict::Duplicate
        );
        self.accepted += 1;
        assert_eq!(self.checker.seen_count(), self.accepted);
        model.done.push(TransactionDetail {
            card_seq: before.offline_seq,
            overdraw_limit: 0,
            amount,
            transaction_type,
            terminal: TERMINAL,
            date: DATE,
            time,
        });
    }

    /// The card's balance and counters of `application`.
    fn purse(&self, application: Application) -> PurseModel {
        let card = self.card.handler();
        PurseModel {
            balance: card.balance(application).unwrap(),
            online_seq: card.online_seq(application).unwrap(),
            offline_seq: card.offline_seq(application).unwrap(),
        }
    }

    /// The card agrees with the model (also through GET BALANCE and READ RECORD), and its
    /// counters did not go back from `previous` (ED, EP).
    fn check(&mut self, model: &Model, previous: [PurseModel; 2]) {
        for application in [Application::Ed, Application::Ep] {
            let expected = model.purse(application);
            let found = self.purse(application);
            assert_eq!(found, expected, "{application:?}");
            let last = previous[index(application)];
            assert!(found.online_seq >= last.online_seq, "{application:?}");
            assert!(found.offline_seq >= last.offline_seq, "{application:?}");
            assert_eq!(
                flow::get_balance(&mut self.card, application).unwrap(),
                expected.balance
            );
        }
        let records = flow::read_records(&mut self.card, u8::try_from(CAPACITY).unwrap()).unwrap();
        assert_eq!(records, model.records());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn balances_counters_tacs_and_records_follow_the_model(
        ed_balance in 0u32..=5_000,
        ep_balance in 0u32..=5_000,
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 0..=20),
    ) {
        let mut world = world(ed_balance, ep_balance, seed);
        let mut model = Model { initial: [ed_balance, ep_balance], done: Vec::new() };
        let start = [world.purse(Application::Ed), world.purse(Application::Ep)];
        world.check(&model, start);
        for (i, op) in ops.iter().enumerate() {
            let previous = [world.purse(Application::Ed), world.purse(Application::Ep)];
            let time = [0x12, 0x00, bcd(i)];
            match *op {
                Op::Load(application, amount, tear) => {
                    world.load(&mut model, application, amount, tear, time);
                }
                Op::Purchase(application, amount, tear) => {
                    world.purchase(&mut model, application, amount, tear, time);
                }
            }
            world.check(&model, previous);
        }
        // Every purchase that reached the PSAM took one terminal seq (torn ones too).
        prop_assert_eq!(world.psam.transport().handler().terminal_seq(), world.terminal_seq + 1);
        prop_assert!(model.done.len() <= ops.len());
    }
}
