//! PBOC 2.0 card benches for `pboc-card`, everything in memory: the terminal flows against a
//! `VirtualCard` and a `VirtualPsam` (behind `ApduPsam`, so every command is an encoded and
//! parsed APDU), and the issuer's TAC check through a `SoftHsm`.
//!
//! - `card/purchase_ep`: a full offline EP purchase (INITIALIZE FOR PURCHASE, INIT SAM FOR
//!   PURCHASE, DEBIT FOR PURCHASE, CREDIT SAM FOR PURCHASE) producing the record to upload.
//! - `card/load_ep/card_only`: INITIALIZE FOR LOAD and CREDIT FOR LOAD with the host's MAC2
//!   computed once outside the loop (every iteration starts from the same card state, so
//!   the MAC2 is the same).
//! - `card/load_ep/with_host_mac2`: the same plus the issuer's MAC1 check and MAC2 in the
//!   SoftHsm (`issuer::load_mac2`) inside the loop.
//! - `issuer/verify_purchase_tac`: the TAC of one offline purchase record, DTK derived in the
//!   SoftHsm from the master with two diversification levels (city, card).
//! - `issuer/check_record_fresh_checker`: `BatchChecker::check_record` on a new checker (TAC
//!   plus the duplicate set).
//! - `issuer/check_file_1000`: a 1000-record upload (one card, offline seqs 0..999) through a
//!   new `BatchChecker`; throughput in records.
//!
//! Each flow iteration runs on a fresh card made from the same image outside the timing
//! (`iter_batched`), so balances and counters never run out. The PSAM lives across
//! iterations (its terminal counter just moves on). SoftHsm operations are ready at once and
//! run with `benches::ready_now`, with no executor in the timing.
//!
//! Run with `cargo bench -p benches --bench card`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use benches::ready_now;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pboc_card::command::PsamInfo;
use pboc_card::flow::{self, HostReply, PurchaseKind, PurchaseRequest, TearOutcome};
use pboc_card::image::CardImage;
use pboc_card::issuer::{self, BatchChecker, IssuerKeys, Verdict};
use pboc_card::personalize::{IssuerProfile, personalize};
use pboc_card::{
    ApduPsam, Application, FixedRandom, OfflinePurchaseRecord, VirtualCard, VirtualPsam,
};
use pboc_sam::transport::MemoryTransport;
use pboc_sam::{CounterRandom, DesKey, KeyType, Lmk, SoftHsm};

const MPK: &str = "0123456789ABCDEFFEDCBA9876543210";
const MLK: &str = "11223344556677888877665544332211";
const MTK: &str = "5A4B3C2D1E0F1A2B1122334455667788";
const CITY: [u8; 8] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x31, 0x00];
const SERIAL: [u8; 8] = [0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];
const TERMINAL: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const LOAD_TERMINAL: [u8; 6] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x01];
const DATE: [u8; 4] = [0x20, 0x24, 0x05, 0x01];
const TIME: [u8; 3] = [0x12, 0x30, 0x00];
/// Records in the batch-file bench; the card's EP holds exactly enough for them.
const FILE_RECORDS: u32 = 1_000;
const PURCHASE_AMOUNT: u32 = 100;

type Card = MemoryTransport<VirtualCard>;
type Psam = ApduPsam<MemoryTransport<VirtualPsam>>;

/// A card image with `ep_balance` fen on its EP, keys diversified by the city, then the
/// serial.
fn image(ep_balance: u32) -> CardImage {
    let profile = IssuerProfile::from_json(&format!(
        r#"{{ "issuer_id": "3100000000000000", "card_type": 3,
             "valid_from": "20240101", "valid_until": "20341231",
             "ep": {{ "initial_balance": {ep_balance}, "max_balance": 100000 }},
             "diversification_factors": ["{}"],
             "master_keys": [
               {{ "purpose": "DPK", "index": 1, "version": 1, "key": "{MPK}" }},
               {{ "purpose": "DLK", "index": 1, "version": 1, "key": "{MLK}" }},
               {{ "purpose": "DTK", "index": 1, "version": 1, "key": "{MTK}" }} ] }}"#,
        hex::encode_upper(CITY)
    ))
    .unwrap();
    personalize(&profile, SERIAL).unwrap()
}

fn card(image: &CardImage) -> Card {
    let random = FixedRandom::new([0x11, 0x22, 0x33, 0x44]);
    MemoryTransport::new(VirtualCard::from_image(image, Box::new(random)).unwrap())
}

fn psam() -> Psam {
    let info = PsamInfo {
        serial: [0; 10],
        version: 1,
        key_type: 6,
        command_set_version: 1,
        fci_data: 0,
    };
    let mut psam = VirtualPsam::new(TERMINAL, info);
    psam.add_purchase_key(0x01, DesKey::from_hex(MPK).unwrap())
        .set_terminal_seq(1);
    ApduPsam::new(MemoryTransport::new(psam))
}

/// The issuer's HSM and its load and TAC masters.
fn issuer() -> (SoftHsm, IssuerKeys) {
    let hsm = SoftHsm::new(
        Lmk::generate(&CounterRandom::new(1)),
        Box::new(CounterRandom::new(2)),
    );
    let dlk = hsm
        .form_key_from_components(&[&hex::decode(MLK).unwrap()], KeyType::PbocLoad)
        .unwrap();
    let dtk = hsm
        .form_key_from_components(&[&hex::decode(MTK).unwrap()], KeyType::PbocTac)
        .unwrap();
    let keys = IssuerKeys {
        issuer_factors: vec![CITY],
        ..IssuerKeys::new(dlk, dtk)
    };
    (hsm, keys)
}

fn purchase_request() -> PurchaseRequest {
    PurchaseRequest {
        kind: PurchaseKind::Purchase(Application::Ep),
        key_index: 0x01,
        amount: PURCHASE_AMOUNT,
        terminal: TERMINAL,
        card_serial: SERIAL,
        issuer_factors: vec![CITY],
        date: DATE,
        time: TIME,
    }
}

fn purchase(c: &mut Criterion) {
    let image = image(50_000);
    let mut psam = psam();
    let request = purchase_request();
    // The set-up works: one purchase, checked.
    let receipt = flow::purchase(&mut card(&image), &mut psam, &request)
        .unwrap()
        .done()
        .unwrap();
    assert_eq!(receipt.balance_after, 50_000 - PURCHASE_AMOUNT);

    let mut group = c.benchmark_group("card");
    group.bench_function("purchase_ep", |b| {
        b.iter_batched(
            || card(&image),
            |mut card| {
                let outcome = flow::purchase(&mut card, &mut psam, black_box(&request)).unwrap();
                black_box(outcome)
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn load(c: &mut Criterion) {
    let image = image(0);
    let (hsm, keys) = issuer();
    let start = |card: &mut Card| {
        flow::start_load(card, Application::Ep, 0x01, 10_000, LOAD_TERMINAL, SERIAL).unwrap()
    };
    // Every iteration starts from this image, so the card's random, online seq and balance,
    // hence the host's MAC2, are the same each time.
    let mut first = card(&image);
    let pending = start(&mut first);
    let reply: HostReply =
        ready_now(issuer::load_mac2(&hsm, &keys, &pending.request, DATE, TIME)).unwrap();
    let done = flow::complete_online(&mut first, &pending, &reply).unwrap();
    assert!(matches!(done, TearOutcome::Completed(_)));
    assert_eq!(
        flow::get_balance(&mut first, Application::Ep).unwrap(),
        10_000
    );

    let mut group = c.benchmark_group("card/load_ep");
    group.bench_function("card_only", |b| {
        b.iter_batched(
            || card(&image),
            |mut card| {
                let pending = start(&mut card);
                let done = flow::complete_online(&mut card, &pending, black_box(&reply)).unwrap();
                black_box(done)
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("with_host_mac2", |b| {
        b.iter_batched(
            || card(&image),
            |mut card| {
                let pending = start(&mut card);
                let reply = ready_now(issuer::load_mac2(&hsm, &keys, &pending.request, DATE, TIME))
                    .unwrap();
                let done = flow::complete_online(&mut card, &pending, &reply).unwrap();
                black_box(done)
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

/// `count` genuine purchase records of one card, offline seqs 0, 1, ...
fn records(count: u32) -> Vec<OfflinePurchaseRecord> {
    let mut card = card(&image(count * PURCHASE_AMOUNT));
    let mut psam = psam();
    let request = purchase_request();
    (0..count)
        .map(|_| {
            flow::purchase(&mut card, &mut psam, &request)
                .unwrap()
                .done()
                .unwrap()
                .record
        })
        .collect()
}

fn tac(c: &mut Criterion) {
    let (hsm, keys) = issuer();
    let records = records(FILE_RECORDS);
    let record = records[0];
    ready_now(issuer::verify_purchase_tac(&hsm, &keys, &record)).unwrap();
    let file: Vec<u8> = records.iter().flat_map(|r| r.to_bytes()).collect();
    let report = ready_now(BatchChecker::new().check_file(&hsm, &keys, &file));
    assert_eq!(
        report.count(&Verdict::Accepted),
        usize::try_from(FILE_RECORDS).unwrap()
    );

    let mut group = c.benchmark_group("issuer");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify_purchase_tac", |b| {
        b.iter(|| ready_now(issuer::verify_purchase_tac(&hsm, &keys, black_box(&record))));
    });
    group.bench_function("check_record_fresh_checker", |b| {
        b.iter(|| {
            let mut checker = BatchChecker::new();
            let verdict = ready_now(checker.check_record(&hsm, &keys, black_box(&record)));
            (verdict, checker)
        });
    });
    group.throughput(Throughput::Elements(u64::from(FILE_RECORDS)));
    group.bench_function("check_file_1000", |b| {
        b.iter(|| ready_now(BatchChecker::new().check_file(&hsm, &keys, black_box(&file))));
    });
    group.finish();
}

criterion_group!(benches, purchase, load, tac);
criterion_main!(benches);
