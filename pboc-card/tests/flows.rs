#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Terminal flows end to end: a virtual card, a virtual PSAM behind `ApduPsam`, and the
//! issuer through a SoftHsm, for every transaction type, with exact values; the spec's
//! development vectors through the flows; tear recovery both ways.

use pboc_card::card::{overdraw_mac2_input, overdraw_tac_input};
use pboc_card::command::{
    InitSamForPurchase, InitSamForPurchaseResponse, PsamInfo, UpdateCappDataCache,
};
use pboc_card::flow::{
    self, FlowError, HostReply, OnlineKind, PurchaseKind, PurchaseRequest, TearOutcome,
};
use pboc_card::image::{CardImage, CardKey, KeyPurpose, PinState, Purse};
use pboc_card::issuer::{self, BatchChecker, IssuerKeys, Verdict};
use pboc_card::psam::{KEY_USAGE_TAC, purchase_mac1};
use pboc_card::{
    ApduPsam, Application, FixedRandom, OfflinePurchaseRecord, Psam, PsamError, StatusWord,
    TearPoint, TransactionDetail, TransactionType, VirtualCard, VirtualPsam,
};
use pboc_sam::transport::{ApduHandler, CardTransport, MemoryTransport, TransportError};
use pboc_sam::{CounterRandom, DesKey, KeyType, Lmk, Pin, SoftHsm, mac, pboc};

// ------------------------------------------------------------------------------------------
// Fixture
// ------------------------------------------------------------------------------------------

const MPK: &str = "0123456789ABCDEFFEDCBA9876543210";
const MLK: &str = "1111111122222222333333334444444F";
const MTK: &str = "FEDCBA98765432100123456789ABCDEF";
const MULK: &str = "5555555566666666777777778888888F";
const MUK: &str = "99999999AAAAAAAABBBBBBBBCCCCCCCF";
const SERIAL: [u8; 8] = [0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];
const CITY: [u8; 8] = [0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];
const TERMINAL: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const RANDOM: [u8; 4] = [0x11, 0x22, 0x33, 0x44];
const DATE: [u8; 4] = [0x20, 0x24, 0x05, 0x01];
const TIME: [u8; 3] = [0x12, 0x30, 0x00];

fn key(text: &str) -> DesKey {
    DesKey::from_hex(text).unwrap()
}

fn hx(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

/// The card's key for a purpose: the master diversified by the city, then the serial.
fn card_key(master: &str) -> DesKey {
    pboc::diversify_path(&key(master), &[CITY, SERIAL])
}

fn tac_key() -> DesKey {
    pboc::tac_key(&card_key(MTK)).unwrap()
}

fn card_key_entry(purpose: KeyPurpose, key: DesKey) -> CardKey {
    CardKey {
        purpose,
        index: 0x01,
        version: 0x01,
        algorithm_id: 0x00,
        key,
        mac_failures: 0,
    }
}

fn image() -> CardImage {
    CardImage {
        format: pboc_card::image::IMAGE_FORMAT,
        aid: pboc_card::image::DEFAULT_AID.to_vec(),
        serial: SERIAL,
        issuer_id: [0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
        card_type: 0x02,
        app_version: 0x01,
        valid_from: [0x20, 0x24, 0x01, 0x01],
        valid_until: [0x20, 0x34, 0x12, 0x31],
        deposit: 2000,
        locked: false,
        ed: Some(Purse {
            overdraw_limit: 5_000,
            ..Purse::new(20_000, 1_000_000)
        }),
        ep: Some(Purse::new(10_000, 100_000)),
        keys: vec![
            card_key_entry(KeyPurpose::Purchase, card_key(MPK)),
            card_key_entry(KeyPurpose::Load, card_key(MLK)),
            card_key_entry(KeyPurpose::Tac, card_key(MTK)),
            card_key_entry(KeyPurpose::Unload, card_key(MULK)),
            card_key_entry(KeyPurpose::OverdrawUpdate, card_key(MUK)),
        ],
        pin: Some(PinState {
            digits: Pin::new("123456").unwrap(),
            tries_left: 3,
            max_tries: 3,
        }),
        record_capacity: 10,
        records: Vec::new(),
        capp_records: Vec::new(),
        proofs: Vec::new(),
    }
}

/// The virtual card as an `ApduHandler` (a local newtype, so tests can reach the card).
struct Card(VirtualCard);

impl ApduHandler for Card {
    fn handle(&mut self, capdu: &[u8]) -> Vec<u8> {
        self.0.process(capdu)
    }
}

type CardLink = MemoryTransport<Card>;

fn card_with(image: &CardImage) -> CardLink {
    let card = VirtualCard::from_image(image, Box::new(FixedRandom::new(RANDOM))).unwrap();
    MemoryTransport::recording(Card(card))
}

fn card() -> CardLink {
    card_with(&image())
}

fn virtual_psam() -> VirtualPsam {
    let info = PsamInfo {
        serial: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42],
        version: 1,
        key_type: 6,
        command_set_version: 1,
        fci_data: 0,
    };
    let mut psam = VirtualPsam::new(TERMINAL, info);
    psam.add_purchase_key(0x01, key(MPK))
        .add_key(KEY_USAGE_TAC, 0x01, 0x00, key(MTK))
        .set_terminal_seq(100);
    psam
}

fn psam() -> ApduPsam<MemoryTransport<VirtualPsam>> {
    ApduPsam::new(MemoryTransport::new(virtual_psam()))
}

fn hsm() -> SoftHsm {
    SoftHsm::new(
        Lmk::generate(&CounterRandom::new(7)),
        Box::new(CounterRandom::new(8)),
    )
}

fn issuer_keys(hsm: &SoftHsm) -> IssuerKeys {
    let dlk = hsm
        .form_key_from_components(&[&hex::decode(MLK).unwrap()], KeyType::PbocLoad)
        .unwrap();
    let dtk = hsm
        .form_key_from_components(&[&hex::decode(MTK).unwrap()], KeyType::PbocTac)
        .unwrap();
    IssuerKeys {
        issuer_factors: vec![CITY],
        ..IssuerKeys::new(dlk, dtk)
    }
}

fn block_on<F: core::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

fn request(kind: PurchaseKind, amount: u32) -> PurchaseRequest {
    PurchaseRequest {
        kind,
        key_index: 0x01,
        amount,
        terminal: TERMINAL,
        card_serial: SERIAL,
        issuer_factors: vec![CITY],
        date: DATE,
        time: TIME,
    }
}

/// What the card must produce for a purchase, from the pure functions.
fn expected_purchase(
    tx_type: TransactionType,
    amount: u32,
    offline_seq: u16,
    terminal_seq: u32,
) -> ([u8; 4], [u8; 4]) {
    let sespk = pboc::purchase_session_key(&card_key(MPK), &RANDOM, offline_seq, terminal_seq);
    let mac2 = mac::pboc(&sespk, &pboc::purchase_mac2_input(amount)).unwrap();
    let tac = mac::pboc(
        &tac_key(),
        &pboc::purchase_tac_input(
            amount,
            tx_type.code(),
            &TERMINAL,
            terminal_seq,
            &DATE,
            &TIME,
        ),
    )
    .unwrap();
    (tac, mac2)
}

fn balance_of(link: &CardLink, application: Application) -> u32 {
    link.handler().0.balance(application).unwrap()
}

// ------------------------------------------------------------------------------------------
// Reads
// ------------------------------------------------------------------------------------------

#[test]
fn balance_application_info_and_pin() {
    let mut link = card();
    let fci = flow::select(&mut link, &pboc_card::image::DEFAULT_AID).unwrap();
    assert_eq!(&fci[..2], &[0x6F, 0x32]);
    assert_eq!(
        flow::get_balance(&mut link, Application::Ep).unwrap(),
        10_000
    );
    // The ED needs the PIN first.
    let error = flow::get_balance(&mut link, Application::Ed).unwrap_err();
    assert_eq!(
        error,
        FlowError::Status {
            step: "GET BALANCE",
            sw: StatusWord::SecurityStatusNotSatisfied
        }
    );
    assert_eq!(
        error.to_string(),
        "GET BALANCE: card answered 6982 security status not satisfied"
    );
    let wrong = flow::verify_pin(&mut link, "654321").unwrap_err();
    assert_eq!(wrong.status(), Some(StatusWord::PinWrong { tries_left: 2 }));
    assert_eq!(wrong.step(), "VERIFY");
    assert!(matches!(
        flow::verify_pin(&mut link, "12"),
        Err(FlowError::Response { step: "VERIFY", .. })
    ));
    flow::verify_pin(&mut link, "123456").unwrap();
    assert_eq!(
        flow::get_balance(&mut link, Application::Ed).unwrap(),
        20_000
    );

    let info = flow::read_application_info(&mut link).unwrap();
    assert_eq!(
        info,
        flow::ApplicationInfo {
            issuer_id: [0x21, 0, 0, 0, 0, 0, 0, 0],
            card_type: 0x02,
            app_version: 0x01,
            serial: SERIAL,
            valid_from: [0x20, 0x24, 0x01, 0x01],
            valid_until: [0x20, 0x34, 0x12, 0x31],
        }
    );
    let commands: Vec<String> = link.trace().iter().map(|e| hx(&e.command)).collect();
    assert_eq!(commands.last().unwrap(), "00B095001E");
    assert_eq!(
        flow::ApplicationInfo::parse(&[0; 29])
            .unwrap_err()
            .to_string(),
        "READ BINARY EF15 response: data must be 30 bytes, found 29"
    );
}

// ------------------------------------------------------------------------------------------
// Development vectors through the flows
// ------------------------------------------------------------------------------------------

const VECTOR_KEY: &str = "11223344556677888877665544332211";

/// A card whose DLK, DPK and DTK are the spec's example key (the card holds diversified
/// keys, so any value will do) and no PIN.
fn vector_image(ed_balance: u32, ep_balance: u32) -> CardImage {
    CardImage {
        keys: vec![
            card_key_entry(KeyPurpose::Purchase, key(VECTOR_KEY)),
            card_key_entry(KeyPurpose::Load, key(VECTOR_KEY)),
            card_key_entry(KeyPurpose::Tac, key(VECTOR_KEY)),
        ],
        pin: None,
        ed: Some(Purse::new(ed_balance, 1_000_000)),
        ep: Some(Purse::new(ep_balance, 1_000_000)),
        ..image()
    }
}

#[test]
fn load_development_example() {
    // ED load of 0x1000 fen, balance 0, random 11223344, online seq 0: MAC1 2988AE5A; the
    // host's MAC2 3A845BF0 for 2011-12-21 21:48:22.
    let mut link = card_with(&vector_image(0, 0));
    let pending =
        flow::start_load(&mut link, Application::Ed, 0x01, 0x1000, TERMINAL, SERIAL).unwrap();
    let request = pending.request;
    assert_eq!(request.mac1, [0x29, 0x88, 0xAE, 0x5A]);
    assert_eq!(request.random, RANDOM);
    assert_eq!(request.online_seq, 0);
    assert_eq!(request.balance, 0);
    assert_eq!(request.transaction_type(), TransactionType::EdLoad);
    let reply = HostReply {
        mac2: [0x3A, 0x84, 0x5B, 0xF0],
        date: [0x20, 0x11, 0x12, 0x21],
        time: [0x21, 0x48, 0x22],
    };
    let outcome = flow::complete_online(&mut link, &pending, &reply).unwrap();
    let expected_tac = mac::pboc(
        &pboc::tac_key(&key(VECTOR_KEY)).unwrap(),
        &pboc::load_tac_input(0x1000, 0, 0x1000, 0x01, &TERMINAL, &reply.date, &reply.time),
    )
    .unwrap();
    assert_eq!(
        outcome,
        TearOutcome::Completed(flow::OnlineCompletion { tac: expected_tac })
    );
    assert_eq!(balance_of(&link, Application::Ed), 0x1000);
    let trace: Vec<String> = link.trace().iter().map(|e| hx(&e.command)).collect();
    assert_eq!(
        trace,
        vec![
            "805000010B0100001000001122334455 10".replace(' ', ""),
            "805200000B20111221214822 3A845BF0 04".replace(' ', ""),
        ]
    );

    // The EP load TAC vector: balance after 10000, seq 0, 0x1000, type 02: 9A9073ED.
    let mut link = card_with(&vector_image(0, 10_000 - 0x1000));
    let pending =
        flow::start_load(&mut link, Application::Ep, 0x01, 0x1000, TERMINAL, SERIAL).unwrap();
    let seslk = pboc::load_session_key(&key(VECTOR_KEY), &RANDOM, 0);
    let mac2 = mac::pboc(
        &seslk,
        &pboc::load_mac2_input(0x1000, 0x02, &TERMINAL, &reply.date, &reply.time),
    )
    .unwrap();
    let outcome = flow::complete_online(&mut link, &pending, &HostReply { mac2, ..reply }).unwrap();
    assert_eq!(
        outcome.done(),
        Some(flow::OnlineCompletion {
            tac: [0x9A, 0x90, 0x73, 0xED]
        })
    );
}

/// A PSAM that knows one card's DPK directly (the spec vector's), to drive the purchase
/// flow with the published values.
struct VectorPsam {
    sespk: Option<DesKey>,
}

impl Psam for VectorPsam {
    fn select(&mut self, _aid: &[u8]) -> Result<Vec<u8>, PsamError> {
        Ok(Vec::new())
    }
    fn terminal_id(&mut self) -> Result<[u8; 6], PsamError> {
        Ok(TERMINAL)
    }
    fn info(&mut self) -> Result<PsamInfo, PsamError> {
        Err(PsamError::Status {
            command: "READ PSAM INFO",
            sw: StatusWord::FileNotFound,
        })
    }
    fn init_for_purchase(
        &mut self,
        request: &InitSamForPurchase,
    ) -> Result<InitSamForPurchaseResponse, PsamError> {
        let computed = purchase_mac1(&key(VECTOR_KEY), request, &TERMINAL, 1).unwrap();
        self.sespk = Some(computed.sespk);
        Ok(InitSamForPurchaseResponse {
            terminal_seq: 1,
            mac1: computed.mac1,
        })
    }
    fn credit_for_purchase(&mut self, mac2: [u8; 4]) -> Result<(), PsamError> {
        let sespk = self.sespk.take().unwrap();
        let expected = mac::pboc(&sespk, &pboc::purchase_mac2_input(0x1000)).unwrap();
        if expected == mac2 {
            Ok(())
        } else {
            Err(PsamError::Status {
                command: "CREDIT SAM FOR PURCHASE",
                sw: StatusWord::MacInvalid,
            })
        }
    }
    fn delivery_key(&mut self, _: &pboc_card::command::DeliveryKey) -> Result<(), PsamError> {
        Ok(())
    }
    fn cipher_data(&mut self, _: &pboc_card::command::CipherData) -> Result<Vec<u8>, PsamError> {
        Ok(Vec::new())
    }
}

#[test]
fn purchase_development_example() {
    // EP purchase of 0x1000 fen on 2012-02-29 13:51:00, terminal seq 1: MAC1 F15CAB75, the
    // card's MAC2 56988A13 and TAC F5B221C9.
    let mut link = card_with(&vector_image(0, 0x2000));
    let mut psam = VectorPsam { sespk: None };
    let purchase = PurchaseRequest {
        date: [0x20, 0x12, 0x02, 0x29],
        time: [0x13, 0x51, 0x00],
        issuer_factors: Vec::new(),
        ..request(PurchaseKind::Purchase(Application::Ep), 0x1000)
    };
    let receipt = flow::purchase(&mut link, &mut psam, &purchase)
        .unwrap()
        .done()
        .unwrap();
    assert_eq!(receipt.mac2, [0x56, 0x98, 0x8A, 0x13]);
    assert_eq!(receipt.record.tac, [0xF5, 0xB2, 0x21, 0xC9]);
    assert_eq!(receipt.balance_after, 0x1000);
    let trace: Vec<String> = link.trace().iter().map(|e| hx(&e.command)).collect();
    assert_eq!(
        trace,
        vec![
            "805001020B0100001000001122334455 0F".replace(' ', ""),
            "805401000F 00000001 20120229 135100 F15CAB75 08".replace(' ', ""),
        ]
    );
    assert_eq!(hx(&link.trace()[1].response), "F5B221C956988A139000");
}

// ------------------------------------------------------------------------------------------
// Every transaction type, card + PSAM + issuer
// ------------------------------------------------------------------------------------------

#[test]
fn ep_load_with_the_issuer_in_an_hsm() {
    let hsm = hsm();
    let keys = issuer_keys(&hsm);
    let mut link = card();
    let pending =
        flow::start_load(&mut link, Application::Ep, 0x01, 5_000, TERMINAL, SERIAL).unwrap();
    let request = pending.request;
    let seslk = pboc::load_session_key(&card_key(MLK), &RANDOM, 0);
    assert_eq!(
        request,
        flow::HostRequest {
            kind: OnlineKind::Load(Application::Ep),
            card_serial: SERIAL,
            amount: 5_000,
            terminal: TERMINAL,
            key_index: 0x01,
            balance: 10_000,
            online_seq: 0,
            old_limit: 0,
            key_version: 0x01,
            algorithm_id: 0x00,
            random: RANDOM,
            mac1: mac::pboc(
                &seslk,
                &pboc::load_mac1_input(10_000, 5_000, 0x02, &TERMINAL)
            )
            .unwrap(),
        }
    );
    let reply = block_on(issuer::load_mac2(&hsm, &keys, &request, DATE, TIME)).unwrap();
    assert_eq!(
        reply.mac2,
        mac::pboc(
            &seslk,
            &pboc::load_mac2_input(5_000, 0x02, &TERMINAL, &DATE, &TIME)
        )
        .unwrap()
    );
    let completion = flow::complete_online(&mut link, &pending, &reply)
        .unwrap()
        .done()
        .unwrap();
    let expected_tac = mac::pboc(
        &tac_key(),
        &pboc::load_tac_input(15_000, 0, 5_000, 0x02, &TERMINAL, &DATE, &TIME),
    )
    .unwrap();
    assert_eq!(completion.tac, expected_tac);
    block_on(issuer::verify_load_tac(
        &hsm,
        &keys,
        &request,
        &reply,
        15_000,
        completion.tac,
    ))
    .unwrap();
    // The wrong balance after does not verify.
    assert!(matches!(
        block_on(issuer::verify_load_tac(
            &hsm,
            &keys,
            &request,
            &reply,
            15_001,
            completion.tac
        )),
        Err(issuer::IssuerError::BadTac { card_seq: 0, .. })
    ));
    assert_eq!(
        flow::get_balance(&mut link, Application::Ep).unwrap(),
        15_000
    );
    let records = flow::read_records(&mut link, 10).unwrap();
    assert_eq!(
        records,
        vec![TransactionDetail {
            card_seq: 0,
            overdraw_limit: 0,
            amount: 5_000,
            transaction_type: TransactionType::EpLoad,
            terminal: TERMINAL,
            date: DATE,
            time: TIME,
        }]
    );

    // A tampered MAC1 is declined by the issuer.
    let forged = flow::HostRequest {
        amount: 50_000,
        ..request
    };
    assert_eq!(
        block_on(issuer::load_mac2(&hsm, &keys, &forged, DATE, TIME)),
        Err(issuer::IssuerError::BadMac1 {
            card_serial: SERIAL
        })
    );
    // A wrong MAC2 is refused by the card, naming the step.
    let pending =
        flow::start_load(&mut link, Application::Ep, 0x01, 100, TERMINAL, SERIAL).unwrap();
    let error = flow::complete_online(
        &mut link,
        &pending,
        &HostReply {
            mac2: [0; 4],
            date: DATE,
            time: TIME,
        },
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "CREDIT FOR LOAD: card answered 9302 MAC invalid"
    );
    assert_eq!(
        flow::get_balance(&mut link, Application::Ep).unwrap(),
        15_000
    );
}

#[test]
fn ep_purchase_end_to_end_and_tac_at_the_issuer() {
    let hsm = hsm();
    let keys = issuer_keys(&hsm);
    let mut link = card();
    let mut psam = psam();
    assert_eq!(psam.terminal_id().unwrap(), TERMINAL);
    let outcome = flow::purchase(
        &mut link,
        &mut psam,
        &request(PurchaseKind::Purchase(Application::Ep), 1_234),
    )
    .unwrap();
    let (tac, mac2) = expected_purchase(TransactionType::EpPurchase, 1_234, 0, 100);
    let expected_record = OfflinePurchaseRecord {
        card_serial: SERIAL,
        offline_seq: 0,
        amount: 1_234,
        transaction_type: TransactionType::EpPurchase,
        terminal: TERMINAL,
        terminal_seq: 100,
        date: DATE,
        time: TIME,
        tac,
        balance_before: 10_000,
        key_version: 0x01,
        algorithm_id: 0x00,
    };
    assert_eq!(
        outcome,
        TearOutcome::Completed(flow::PurchaseReceipt {
            record: expected_record,
            mac2,
            balance_after: 8_766,
        })
    );
    assert_eq!(balance_of(&link, Application::Ep), 8_766);
    assert_eq!(psam.transport().handler().terminal_seq(), 101);
    block_on(issuer::verify_purchase_tac(&hsm, &keys, &expected_record)).unwrap();

    // The PSAM recomputes the same TAC (clearing with a PSAM instead of an HSM).
    let recomputed = issuer::recompute_tac_with_psam(
        &mut psam,
        0x01,
        &keys.factors_for(SERIAL),
        &issuer::purchase_tac_data(&expected_record),
    )
    .unwrap();
    assert_eq!(recomputed, tac);

    // The exact card exchanges.
    let trace: Vec<String> = link.trace().iter().map(|e| hx(&e.command)).collect();
    assert_eq!(
        trace[0],
        "805001020B01000004D2001122334455 0F".replace(' ', "")
    );
    assert_eq!(
        trace[1],
        format!(
            "805401000F0000006420240501123000{}08",
            hx(&psam_mac1(1_234, 0, 100, TransactionType::EpPurchase))
        )
    );
}

/// The MAC1 the PSAM computes for a purchase on the fixture card.
fn psam_mac1(
    amount: u32,
    offline_seq: u16,
    terminal_seq: u32,
    tx_type: TransactionType,
) -> [u8; 4] {
    let sespk = pboc::purchase_session_key(&card_key(MPK), &RANDOM, offline_seq, terminal_seq);
    mac::pboc(
        &sespk,
        &pboc::purchase_mac1_input(amount, tx_type.code(), &TERMINAL, &DATE, &TIME),
    )
    .unwrap()
}

#[test]
fn ed_purchase_and_cash_withdrawal_use_the_overdraw_limit() {
    let hsm = hsm();
    let keys = issuer_keys(&hsm);
    let mut link = card();
    let mut psam = psam();
    // Without the PIN the ED refuses.
    let error = flow::purchase(
        &mut link,
        &mut psam,
        &request(PurchaseKind::Purchase(Application::Ed), 100),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "INITIALIZE FOR PURCHASE: card answered 6982 security status not satisfied"
    );
    flow::verify_pin(&mut link, "123456").unwrap();

    let ed = flow::purchase(
        &mut link,
        &mut psam,
        &request(PurchaseKind::Purchase(Application::Ed), 15_000),
    )
    .unwrap()
    .done()
    .unwrap();
    assert_eq!(ed.record.transaction_type, TransactionType::EdPurchase);
    assert_eq!(ed.record.balance_before, 20_000);
    assert_eq!(ed.balance_after, 5_000);
    let (tac, _) = expected_purchase(TransactionType::EdPurchase, 15_000, 0, 100);
    assert_eq!(ed.record.tac, tac);

    // Cash withdrawal of 8000: 5000 from the balance, 3000 from the overdraw limit.
    let cash = flow::purchase(
        &mut link,
        &mut psam,
        &request(PurchaseKind::CashWithdrawal, 8_000),
    )
    .unwrap()
    .done()
    .unwrap();
    assert_eq!(
        cash.record.transaction_type,
        TransactionType::EdCashWithdrawal
    );
    assert_eq!(cash.record.offline_seq, 1);
    assert_eq!(cash.record.terminal_seq, 101);
    assert_eq!(cash.balance_after, 0);
    let (tac, mac2) = expected_purchase(TransactionType::EdCashWithdrawal, 8_000, 1, 101);
    assert_eq!((cash.record.tac, cash.mac2), (tac, mac2));
    assert_eq!(
        link.handler().0.purse(Application::Ed).unwrap().overdrawn,
        3_000
    );
    for record in [&ed.record, &cash.record] {
        block_on(issuer::verify_purchase_tac(&hsm, &keys, record)).unwrap();
    }

    // 2001 more is beyond the limit: 9401 at INITIALIZE, nothing asked of the PSAM.
    let error = flow::purchase(
        &mut link,
        &mut psam,
        &request(PurchaseKind::CashWithdrawal, 2_001),
    )
    .unwrap_err();
    assert_eq!(
        error,
        FlowError::Status {
            step: "INITIALIZE FOR CASH WITHDRAW",
            sw: StatusWord::InsufficientBalance
        }
    );
    assert_eq!(psam.transport().handler().terminal_seq(), 102);

    // The records, newest first.
    let records = flow::read_records(&mut link, 10).unwrap();
    let summary: Vec<(u16, u32, TransactionType, u32)> = records
        .iter()
        .map(|r| (r.card_seq, r.amount, r.transaction_type, r.overdraw_limit))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, 8_000, TransactionType::EdCashWithdrawal, 5_000),
            (0, 15_000, TransactionType::EdPurchase, 5_000),
        ]
    );
    // Asking for fewer stops early.
    assert_eq!(flow::read_records(&mut link, 1).unwrap().len(), 1);
}

#[test]
fn composite_purchase_writes_the_capp_cache() {
    let hsm = hsm();
    let keys = issuer_keys(&hsm);
    let mut link = card();
    let mut psam = psam();
    let updates = vec![
        UpdateCappDataCache {
            record_id: 0x01,
            sfi: 0x17,
            record: vec![0x01, 0x02, 0x03, 0x04],
        },
        UpdateCappDataCache {
            record_id: 0x02,
            sfi: 0x17,
            record: vec![0xAA; 16],
        },
    ];
    let receipt = flow::purchase(
        &mut link,
        &mut psam,
        &request(PurchaseKind::Composite(updates), 300),
    )
    .unwrap()
    .done()
    .unwrap();
    assert_eq!(
        receipt.record.transaction_type,
        TransactionType::CompositePurchase
    );
    let (tac, mac2) = expected_purchase(TransactionType::CompositePurchase, 300, 0, 100);
    assert_eq!((receipt.record.tac, receipt.mac2), (tac, mac2));
    block_on(issuer::verify_purchase_tac(&hsm, &keys, &receipt.record)).unwrap();
    let card = &link.handler().0;
    assert_eq!(
        card.capp_record(0x17, 0x01),
        Some(&[0x01, 0x02, 0x03, 0x04][..])
    );
    assert_eq!(card.capp_record(0x17, 0x02), Some(&[0xAA; 16][..]));
    assert_eq!(card.balance(Application::Ep), Some(9_700));
    let trace: Vec<String> = link.trace().iter().map(|e| hx(&e.command)).collect();
    assert_eq!(
        trace[0],
        "805003020B010000012C001122334455 0F".replace(' ', "")
    );
    assert_eq!(trace[1], "80DC01B80401020304");
    assert!(trace[2].starts_with("80DC02B810AAAA"));
    assert!(trace[3].starts_with("805401000F00000064"));
}

#[test]
fn ed_unload_and_overdraw_update() {
    let mut link = card();
    flow::verify_pin(&mut link, "123456").unwrap();

    // Unload 7000 from the ED. The host's MAC2 (load layout, type 03, DULK session key).
    let pending = flow::start_unload(&mut link, 0x01, 7_000, TERMINAL, SERIAL).unwrap();
    let request = pending.request;
    assert_eq!(request.kind, OnlineKind::Unload);
    assert_eq!(request.transaction_type(), TransactionType::Unload);
    let seslk = pboc::load_session_key(&card_key(MULK), &RANDOM, 0);
    assert_eq!(
        request.mac1,
        mac::pboc(
            &seslk,
            &pboc::load_mac1_input(20_000, 7_000, 0x03, &TERMINAL)
        )
        .unwrap()
    );
    let mac2 = mac::pboc(
        &seslk,
        &pboc::load_mac2_input(7_000, 0x03, &TERMINAL, &DATE, &TIME),
    )
    .unwrap();
    let reply = HostReply {
        mac2,
        date: DATE,
        time: TIME,
    };
    let done = flow::complete_online(&mut link, &pending, &reply)
        .unwrap()
        .done()
        .unwrap();
    let tac = mac::pboc(
        &tac_key(),
        &pboc::load_tac_input(13_000, 0, 7_000, 0x03, &TERMINAL, &DATE, &TIME),
    )
    .unwrap();
    assert_eq!(done.tac, tac);
    assert_eq!(balance_of(&link, Application::Ed), 13_000);
    // The HSM computes load MACs only.
    let hsm = hsm();
    assert_eq!(
        block_on(issuer::load_mac2(
            &hsm,
            &issuer_keys(&hsm),
            &request,
            DATE,
            TIME
        )),
        Err(issuer::IssuerError::NotALoad { code: 0x03 })
    );

    // Raise the overdraw limit from 5000 to 9000.
    let pending = flow::start_overdraw_update(&mut link, 0x01, 9_000, TERMINAL, SERIAL).unwrap();
    let request = pending.request;
    assert_eq!(request.old_limit, 5_000);
    assert_eq!(request.online_seq, 1);
    assert_eq!(request.balance, 13_000);
    let seslk = pboc::load_session_key(&card_key(MUK), &RANDOM, 1);
    let mac2 = mac::pboc(&seslk, &overdraw_mac2_input(9_000, &TERMINAL, &DATE, &TIME)).unwrap();
    let done = flow::complete_online(
        &mut link,
        &pending,
        &HostReply {
            mac2,
            date: DATE,
            time: TIME,
        },
    )
    .unwrap();
    let tac = mac::pboc(
        &tac_key(),
        &overdraw_tac_input(13_000, 1, 9_000, &TERMINAL, &DATE, &TIME),
    )
    .unwrap();
    assert_eq!(done, TearOutcome::Completed(flow::OnlineCompletion { tac }));
    assert_eq!(
        link.handler()
            .0
            .purse(Application::Ed)
            .unwrap()
            .overdraw_limit,
        9_000
    );
    let trace: Vec<String> = link.trace().iter().map(|e| hx(&e.command)).collect();
    assert_eq!(
        trace.iter().rev().nth(1).unwrap(),
        &"805004010701001122334455 13".replace(' ', "")
    );
    assert_eq!(
        trace.last().unwrap(),
        &format!("805800000E002328202405011230 00{}04", hx(&mac2)).replace(' ', "")
    );
}

// ------------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------------

/// A PSAM that corrupts the MAC2 it is given.
struct Tamper<P>(P);

impl<P: Psam> Psam for Tamper<P> {
    fn select(&mut self, aid: &[u8]) -> Result<Vec<u8>, PsamError> {
        self.0.select(aid)
    }
    fn terminal_id(&mut self) -> Result<[u8; 6], PsamError> {
        self.0.terminal_id()
    }
    fn info(&mut self) -> Result<PsamInfo, PsamError> {
        self.0.info()
    }
    fn init_for_purchase(
        &mut self,
        request: &InitSamForPurchase,
    ) -> Result<InitSamForPurchaseResponse, PsamError> {
        self.0.init_for_purchase(request)
    }
    fn credit_for_purchase(&mut self, mac2: [u8; 4]) -> Result<(), PsamError> {
        self.0.credit_for_purchase(mac2.map(|b| !b))
    }
    fn delivery_key(&mut self, c: &pboc_card::command::DeliveryKey) -> Result<(), PsamError> {
        self.0.delivery_key(c)
    }
    fn cipher_data(&mut self, c: &pboc_card::command::CipherData) -> Result<Vec<u8>, PsamError> {
        self.0.cipher_data(c)
    }
}

#[test]
fn psam_errors_name_the_command_and_status_word() {
    let mut link = card();
    // A PSAM without the card's key version: 6A88 before anything is debited.
    let mut bare = ApduPsam::new(MemoryTransport::new(VirtualPsam::new(
        TERMINAL,
        virtual_psam().info(),
    )));
    let error = flow::purchase(
        &mut link,
        &mut bare,
        &request(PurchaseKind::Purchase(Application::Ep), 100),
    )
    .unwrap_err();
    assert_eq!(
        error,
        FlowError::Psam(PsamError::Status {
            command: "INIT SAM FOR PURCHASE",
            sw: StatusWord::KeyNotFound
        })
    );
    assert_eq!(error.step(), "INIT SAM FOR PURCHASE");
    assert_eq!(error.status(), Some(StatusWord::KeyNotFound));
    assert_eq!(
        error.to_string(),
        "PSAM INIT SAM FOR PURCHASE: 6A88 key not found"
    );
    assert_eq!(balance_of(&link, Application::Ep), 10_000);

    // A PSAM with another master: the card refuses MAC1 (9302) and counts the failure.
    let mut other = virtual_psam();
    other.add_purchase_key(0x01, key(MTK));
    let mut other = ApduPsam::new(MemoryTransport::new(other));
    let error = flow::purchase(
        &mut link,
        &mut other,
        &request(PurchaseKind::Purchase(Application::Ep), 100),
    )
    .unwrap_err();
    assert_eq!(
        error,
        FlowError::Status {
            step: "DEBIT FOR PURCHASE",
            sw: StatusWord::MacInvalid
        }
    );
    assert_eq!(
        link.handler().0.mac_failures(KeyPurpose::Purchase, 0x01),
        Some(1)
    );

    // The PSAM refuses the card's MAC2 after the debit: the record is kept.
    let mut tamper = Tamper(psam());
    let error = flow::purchase(
        &mut link,
        &mut tamper,
        &request(PurchaseKind::Purchase(Application::Ep), 100),
    )
    .unwrap_err();
    let FlowError::Unconfirmed { record, source } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(record.amount, 100);
    assert_eq!(record.offline_seq, 0);
    assert_eq!(source.status(), Some(StatusWord::MacInvalid));
    assert_eq!(error.step(), "CREDIT SAM FOR PURCHASE");
    assert_eq!(
        error.to_string(),
        "purchase debited on the card but not confirmed by the PSAM: PSAM CREDIT SAM FOR PURCHASE: 9302 MAC invalid"
    );
    let (tac, _) = expected_purchase(TransactionType::EpPurchase, 100, 0, 100);
    assert_eq!(record.tac, tac);
    assert_eq!(balance_of(&link, Application::Ep), 9_900);
}

// ------------------------------------------------------------------------------------------
// Tear recovery
// ------------------------------------------------------------------------------------------

#[test]
fn purchase_tear_after_commit_is_recovered_from_the_proof() {
    let hsm = hsm();
    let keys = issuer_keys(&hsm);
    let mut link = card();
    let mut psam = psam();
    link.handler_mut()
        .0
        .set_tear(TearPoint::AfterCommitBeforeResponse);
    let outcome = flow::purchase(
        &mut link,
        &mut psam,
        &request(PurchaseKind::Purchase(Application::Ep), 2_500),
    )
    .unwrap();
    assert!(outcome.is_recovered());
    let receipt = outcome.done().unwrap();
    let (tac, mac2) = expected_purchase(TransactionType::EpPurchase, 2_500, 0, 100);
    assert_eq!((receipt.record.tac, receipt.mac2), (tac, mac2));
    block_on(issuer::verify_purchase_tac(&hsm, &keys, &receipt.record)).unwrap();
    // Debited exactly once.
    assert_eq!(balance_of(&link, Application::Ep), 7_500);
    assert_eq!(link.handler().0.offline_seq(Application::Ep), Some(1));
    let trace: Vec<String> = link.trace().iter().map(|e| hx(&e.command)).collect();
    assert_eq!(trace.len(), 2, "{trace:?}");
    assert_eq!(trace[1], "805A00060200 0008".replace(' ', ""));
    assert_eq!(
        hx(&link.trace()[1].response),
        format!("{}{}9000", hx(&mac2), hx(&tac))
    );
}

#[test]
fn purchase_tear_before_commit_reports_not_debited() {
    let mut link = card();
    let mut psam = psam();
    link.handler_mut().0.set_tear(TearPoint::BeforeCommit);
    let outcome = flow::purchase(
        &mut link,
        &mut psam,
        &request(PurchaseKind::Purchase(Application::Ep), 2_500),
    )
    .unwrap();
    assert_eq!(outcome, TearOutcome::NotDebited);
    assert_eq!(balance_of(&link, Application::Ep), 10_000);
    assert_eq!(link.handler().0.offline_seq(Application::Ep), Some(0));
    assert!(flow::read_records(&mut link, 10).unwrap().is_empty());
    // A new purchase afterwards goes through with the same offline seq.
    let receipt = flow::purchase(
        &mut link,
        &mut psam,
        &request(PurchaseKind::Purchase(Application::Ep), 2_500),
    )
    .unwrap();
    assert!(!receipt.is_recovered());
    let receipt = receipt.done().unwrap();
    assert_eq!(receipt.record.offline_seq, 0);
    assert_eq!(receipt.record.terminal_seq, 101);
    assert_eq!(balance_of(&link, Application::Ep), 7_500);
}

#[test]
fn load_tear_both_ways() {
    let hsm = hsm();
    let keys = issuer_keys(&hsm);

    // Committed, answer lost: the TAC comes from the proof.
    let mut link = card();
    let pending =
        flow::start_load(&mut link, Application::Ep, 0x01, 1_000, TERMINAL, SERIAL).unwrap();
    let reply = block_on(issuer::load_mac2(&hsm, &keys, &pending.request, DATE, TIME)).unwrap();
    link.handler_mut()
        .0
        .set_tear(TearPoint::AfterCommitBeforeResponse);
    let outcome = flow::complete_online(&mut link, &pending, &reply).unwrap();
    let tac = mac::pboc(
        &tac_key(),
        &pboc::load_tac_input(11_000, 0, 1_000, 0x02, &TERMINAL, &DATE, &TIME),
    )
    .unwrap();
    assert_eq!(
        outcome,
        TearOutcome::Recovered(flow::OnlineCompletion { tac })
    );
    assert_eq!(balance_of(&link, Application::Ep), 11_000);
    block_on(issuer::verify_load_tac(
        &hsm,
        &keys,
        &pending.request,
        &reply,
        11_000,
        tac,
    ))
    .unwrap();

    // Lost before the commit: not credited (the host reverses).
    let mut link = card();
    let pending =
        flow::start_load(&mut link, Application::Ep, 0x01, 1_000, TERMINAL, SERIAL).unwrap();
    let reply = block_on(issuer::load_mac2(&hsm, &keys, &pending.request, DATE, TIME)).unwrap();
    link.handler_mut().0.set_tear(TearPoint::BeforeCommit);
    assert_eq!(
        flow::complete_online(&mut link, &pending, &reply).unwrap(),
        TearOutcome::NotDebited
    );
    assert_eq!(balance_of(&link, Application::Ep), 10_000);
    assert_eq!(link.handler().0.online_seq(Application::Ep), Some(0));
}

/// A card link that loses the answers to commands with these INS bytes.
struct Lossy {
    card: VirtualCard,
    lose: Vec<u8>,
}

impl CardTransport for Lossy {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let response = self.card.process(capdu);
        match capdu.get(1) {
            Some(ins) if self.lose.contains(ins) => {
                Err(TransportError::Disconnected("card removed".into()))
            }
            _ => Ok(response),
        }
    }
}

#[test]
fn lost_proof_is_indeterminate_and_recover_asks_again() {
    let card = VirtualCard::from_image(&image(), Box::new(FixedRandom::new(RANDOM))).unwrap();
    // DEBIT's answer and GET TRANSACTION PROOF's are both lost.
    let mut link = Lossy {
        card,
        lose: vec![0x54, 0x5A],
    };
    let mut psam = psam();
    let error = flow::purchase(
        &mut link,
        &mut psam,
        &request(PurchaseKind::Purchase(Application::Ep), 400),
    )
    .unwrap_err();
    assert_eq!(
        error,
        FlowError::Indeterminate {
            step: "DEBIT FOR PURCHASE",
            transaction_type: TransactionType::EpPurchase,
            card_seq: 0,
            source: Box::new(FlowError::Transport {
                step: "GET TRANSACTION PROOF",
                source: TransportError::Disconnected("card removed".into())
            })
        }
    );
    assert_eq!(
        error.to_string(),
        "DEBIT FOR PURCHASE: response lost and GET TRANSACTION PROOF failed (GET TRANSACTION PROOF: transport failed: card disconnected: card removed); outcome unknown for type 06 card seq 0"
    );
    // The card is back: the debit did happen.
    link.lose.clear();
    let proof = flow::recover(&mut link, TransactionType::EpPurchase, 0)
        .unwrap()
        .unwrap();
    let (tac, mac2) = expected_purchase(TransactionType::EpPurchase, 400, 0, 100);
    assert_eq!((proof.tac, proof.mac), (tac, mac2));
    // Nothing with seq 1 yet.
    assert_eq!(
        flow::recover(&mut link, TransactionType::EpPurchase, 1).unwrap(),
        None
    );
    assert_eq!(link.card.balance(Application::Ep), Some(9_600));
}

#[test]
fn empty_answers_count_as_lost() {
    // A transport that hands back the torn (empty) answer instead of failing.
    struct Raw(VirtualCard);
    impl CardTransport for Raw {
        fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            Ok(self.0.process(capdu))
        }
    }
    let mut card = VirtualCard::from_image(&image(), Box::new(FixedRandom::new(RANDOM))).unwrap();
    card.set_tear(TearPoint::AfterCommitBeforeResponse);
    let mut link = Raw(card);
    let mut psam = psam();
    let outcome = flow::purchase(
        &mut link,
        &mut psam,
        &request(PurchaseKind::Purchase(Application::Ep), 400),
    )
    .unwrap();
    assert!(outcome.is_recovered());
    assert_eq!(link.0.balance(Application::Ep), Some(9_600));
}

// ------------------------------------------------------------------------------------------
// Uploaded records at the issuer
// ------------------------------------------------------------------------------------------

#[test]
fn issuer_batch_from_real_purchases() {
    let hsm = hsm();
    let keys = issuer_keys(&hsm);
    let mut link = card();
    let mut psam = psam();
    let mut records = Vec::new();
    for amount in [100, 200, 300] {
        let receipt = flow::purchase(
            &mut link,
            &mut psam,
            &request(PurchaseKind::Purchase(Application::Ep), amount),
        )
        .unwrap()
        .done()
        .unwrap();
        records.push(receipt.record);
    }
    let tampered = OfflinePurchaseRecord {
        amount: 3_000,
        ..records[2]
    };
    let mut file = Vec::new();
    for record in [
        &records[0],
        &records[1],
        &records[0],
        &tampered,
        &records[2],
    ] {
        file.extend_from_slice(&record.to_bytes());
    }
    let mut checker = BatchChecker::new();
    let report = block_on(checker.check_file(&hsm, &keys, &file));
    let verdicts: Vec<Verdict> = report.results.iter().map(|r| r.verdict.clone()).collect();
    assert_eq!(
        verdicts,
        vec![
            Verdict::Accepted,
            Verdict::Accepted,
            Verdict::Duplicate,
            Verdict::BadTac,
            Verdict::Accepted,
        ]
    );
    assert_eq!(report.accepted_amount(), 600);
    assert_eq!(checker.seen_count(), 3);
    // The same upload again: all duplicates.
    let again = block_on(checker.check_records(&hsm, &keys, &records));
    assert_eq!(again.count(&Verdict::Duplicate), 3);
}

// ------------------------------------------------------------------------------------------
// Hostile cards
// ------------------------------------------------------------------------------------------

/// SplitMix64, so a failure reproduces exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }
}

/// A "card" that answers anything: random bytes, or random data of a plausible length with
/// `9000`, `9406` or `6A83`, or a transport error.
struct Hostile(Rng);

impl CardTransport for Hostile {
    fn transmit(&mut self, _capdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let rng = &mut self.0;
        let len = match rng.below(3) {
            0 => rng.below(40),
            _ => [0, 4, 8, 15, 16, 19, 23, 30][rng.below(8)],
        };
        let mut response: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        match rng.below(6) {
            0 => return Err(TransportError::Reader("noise".into())),
            1 => return Ok(response),
            2 => response.extend_from_slice(&[0x94, 0x06]),
            3 => response.extend_from_slice(&[0x6A, 0x83]),
            _ => response.extend_from_slice(&[0x90, 0x00]),
        }
        Ok(response)
    }
}

#[test]
fn random_card_answers_never_panic_the_flows() {
    let mut card = Hostile(Rng(0xCA2D));
    let mut psam = psam();
    let reply = HostReply {
        mac2: [1, 2, 3, 4],
        date: DATE,
        time: TIME,
    };
    for round in 0..3_000u32 {
        let _ = flow::get_balance(&mut card, Application::Ep);
        let _ = flow::read_application_info(&mut card);
        let _ = flow::read_records(&mut card, 10);
        let _ = flow::recover(&mut card, TransactionType::EpPurchase, 0);
        let _ = flow::verify_pin(&mut card, "1234");
        let kinds = [
            PurchaseKind::Purchase(Application::Ep),
            PurchaseKind::CashWithdrawal,
            PurchaseKind::Composite(vec![UpdateCappDataCache {
                record_id: 1,
                sfi: 0x17,
                record: vec![0; 4],
            }]),
        ];
        let kind = kinds[(round % 3) as usize].clone();
        let _ = flow::purchase(&mut card, &mut psam, &request(kind, 100));
        for start in [
            flow::start_load(&mut card, Application::Ep, 1, 100, TERMINAL, SERIAL),
            flow::start_unload(&mut card, 1, 100, TERMINAL, SERIAL),
            flow::start_overdraw_update(&mut card, 1, 100, TERMINAL, SERIAL),
        ]
        .into_iter()
        .flatten()
        {
            let _ = flow::complete_online(&mut card, &start, &reply);
        }
    }
}
