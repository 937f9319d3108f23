#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The issuer side through a SoftHsm: load MAC1/MAC2, purchase and load TACs, the batch
//! checker for uploaded offline records, and TAC recomputation in a PSAM. Exact values were
//! recomputed independently (Python `cryptography`).

use pboc_card::command::PsamInfo;
use pboc_card::flow::{HostReply, HostRequest, OnlineKind};
use pboc_card::issuer::{
    self, BatchChecker, IssuerError, IssuerKeys, RecordResult, Verdict, load_request,
};
use pboc_card::psam::KEY_USAGE_TAC;
use pboc_card::{
    ApduPsam, Application, DuplicateKey, OfflinePurchaseRecord, RecordError, TransactionType,
    VirtualPsam,
};
use pboc_sam::transport::MemoryTransport;
use pboc_sam::{CounterRandom, DesKey, HsmErrorCode, KeyType, Lmk, SoftHsm};

const MLK: &str = "1111111122222222333333334444444F";
const MTK: &str = "FEDCBA98765432100123456789ABCDEF";
const SERIAL: [u8; 8] = [0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];
const CITY: [u8; 8] = [0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];
const TERMINAL: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const DATE: [u8; 4] = [0x20, 0x24, 0x05, 0x01];
const TIME: [u8; 3] = [0x12, 0x30, 0x00];

fn h4(text: &str) -> [u8; 4] {
    hex::decode(text).unwrap().try_into().unwrap()
}

fn hsm() -> SoftHsm {
    SoftHsm::new(
        Lmk::generate(&CounterRandom::new(3)),
        Box::new(CounterRandom::new(4)),
    )
}

fn keys(hsm: &SoftHsm) -> IssuerKeys {
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

/// An EP load of 5000 fen onto a balance of 10000 (DLK 2003BDA32C88A624DEBEA01806B0D138,
/// SESLK 85CE1D0D3AB8A79C).
fn load() -> HostRequest {
    HostRequest {
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
        random: [0x11, 0x22, 0x33, 0x44],
        mac1: h4("ED4C5702"),
    }
}

/// An EP purchase of 1234 fen, terminal seq 100 (DTK 9B5D74214B679FEEF46C1E8C65AB9DA0, TAC
/// key 6F316AAD2ECC024E): TAC 59889C44.
fn purchase() -> OfflinePurchaseRecord {
    OfflinePurchaseRecord {
        card_serial: SERIAL,
        offline_seq: 0,
        amount: 1_234,
        transaction_type: TransactionType::EpPurchase,
        terminal: TERMINAL,
        terminal_seq: 100,
        date: DATE,
        time: TIME,
        tac: h4("59889C44"),
        balance_before: 10_000,
        key_version: 0x01,
        algorithm_id: 0x00,
    }
}

#[test]
fn factors_put_the_card_last() {
    let hsm = hsm();
    let keys = keys(&hsm);
    assert_eq!(keys.factors_for(SERIAL), vec![CITY, SERIAL]);
    let request = load_request(&keys, &load(), DATE, TIME);
    assert_eq!(request.factors, vec![CITY, SERIAL]);
    assert_eq!(request.tx_type, 0x02);
    assert_eq!(request.mac1, h4("ED4C5702"));
    assert_eq!(request.date, DATE);
}

#[test]
fn load_mac2_verifies_mac1_and_answers_mac2() {
    let hsm = hsm();
    let keys = keys(&hsm);
    let reply = block_on(issuer::load_mac2(&hsm, &keys, &load(), DATE, TIME)).unwrap();
    assert_eq!(
        reply,
        HostReply {
            mac2: h4("E7A9E648"),
            date: DATE,
            time: TIME
        }
    );
    // The load TAC for the balance after (15000): 492E464F.
    block_on(issuer::verify_load_tac(
        &hsm,
        &keys,
        &load(),
        &reply,
        15_000,
        h4("492E464F"),
    ))
    .unwrap();
    assert_eq!(
        block_on(issuer::verify_load_tac(
            &hsm,
            &keys,
            &load(),
            &reply,
            15_000,
            h4("492E464E")
        )),
        Err(IssuerError::BadTac {
            card_serial: SERIAL,
            card_seq: 0
        })
    );

    // A wrong MAC1 (or any changed field) is a decline.
    let forged = HostRequest {
        balance: 10_001,
        ..load()
    };
    let error = block_on(issuer::load_mac2(&hsm, &keys, &forged, DATE, TIME)).unwrap_err();
    assert_eq!(
        error,
        IssuerError::BadMac1 {
            card_serial: SERIAL
        }
    );
    assert_eq!(
        error.to_string(),
        "load MAC1 of card 1000000000000001 does not verify"
    );

    // Only loads go through the HSM's load operation.
    let unload = HostRequest {
        kind: OnlineKind::Unload,
        ..load()
    };
    assert_eq!(
        block_on(issuer::load_mac2(&hsm, &keys, &unload, DATE, TIME)),
        Err(IssuerError::NotALoad { code: 0x03 })
    );

    // A master of the wrong type is an HSM request error, not a decline.
    let swapped = IssuerKeys {
        dlk_master: keys.dtk_master.clone(),
        ..keys.clone()
    };
    let Err(IssuerError::Hsm(e)) = block_on(issuer::load_mac2(&hsm, &swapped, &load(), DATE, TIME))
    else {
        panic!("expected an HSM error");
    };
    assert_eq!(e.code, HsmErrorCode::KeyType);
}

#[test]
fn purchase_tac() {
    let hsm = hsm();
    let keys = keys(&hsm);
    assert_eq!(
        hex::encode_upper(issuer::purchase_tac_data(&purchase())),
        "000004D2060011223344550000006420240501123000"
    );
    block_on(issuer::verify_purchase_tac(&hsm, &keys, &purchase())).unwrap();
    for tampered in [
        OfflinePurchaseRecord {
            amount: 1_235,
            ..purchase()
        },
        OfflinePurchaseRecord {
            terminal_seq: 101,
            ..purchase()
        },
        OfflinePurchaseRecord {
            card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0x02],
            ..purchase()
        },
    ] {
        assert!(matches!(
            block_on(issuer::verify_purchase_tac(&hsm, &keys, &tampered)),
            Err(IssuerError::BadTac { .. })
        ));
    }
    // Without the city level the DTK is another key.
    let one_level = IssuerKeys {
        issuer_factors: Vec::new(),
        ..keys
    };
    assert!(block_on(issuer::verify_purchase_tac(&hsm, &one_level, &purchase())).is_err());
}

#[test]
fn batch_accepts_once_and_reports_each_record() {
    let hsm = hsm();
    let keys = keys(&hsm);
    let good = purchase();
    let tampered = OfflinePurchaseRecord {
        amount: 99_999,
        offline_seq: 1,
        ..good
    };
    let mut bad_type = good.to_bytes();
    bad_type[OfflinePurchaseRecord::TYPE_OFFSET] = 0x0A;
    let mut file = Vec::new();
    file.extend_from_slice(&tampered.to_bytes());
    file.extend_from_slice(&good.to_bytes());
    file.extend_from_slice(&good.to_bytes());
    file.extend_from_slice(&bad_type);
    file.extend_from_slice(&[0x10, 0x00, 0x00, 0x00, 0x00]);

    let mut checker = BatchChecker::new();
    let report = block_on(checker.check_file(&hsm, &keys, &file));
    assert_eq!(
        report.results,
        vec![
            RecordResult {
                index: 0,
                record: Some(tampered),
                verdict: Verdict::BadTac
            },
            RecordResult {
                index: 1,
                record: Some(good),
                verdict: Verdict::Accepted
            },
            RecordResult {
                index: 2,
                record: Some(good),
                verdict: Verdict::Duplicate
            },
            RecordResult {
                index: 3,
                record: None,
                verdict: Verdict::Malformed(RecordError::InvalidField {
                    record: "offline purchase record",
                    field: "transaction type",
                    offset: 14,
                    found: 0x0A
                })
            },
            RecordResult {
                index: 4,
                record: None,
                verdict: Verdict::Malformed(RecordError::WrongLength {
                    record: "offline purchase record",
                    expected: 42,
                    found: 5
                })
            },
        ]
    );
    assert_eq!(report.count(&Verdict::Accepted), 1);
    assert_eq!(report.count(&Verdict::Duplicate), 1);
    assert_eq!(report.count(&Verdict::BadTac), 1);
    assert_eq!(
        report.count(&Verdict::Malformed(RecordError::WrongLength {
            record: "",
            expected: 0,
            found: 0
        })),
        2
    );
    assert_eq!(report.accepted().collect::<Vec<_>>(), vec![&good]);
    assert_eq!(report.accepted_amount(), 1_234);
    assert!(checker.is_seen(&good.duplicate_key()));
    // The tampered record was not remembered: its genuine twin would still be accepted.
    assert!(!checker.is_seen(&tampered.duplicate_key()));

    // A checker that knows the earlier upload.
    let mut later = BatchChecker::with_seen([good.duplicate_key()]);
    assert_eq!(
        block_on(later.check_record(&hsm, &keys, &good)),
        Verdict::Duplicate
    );
}

/// The ED and the EP of one card count offline seqs separately: an ED purchase with the
/// same serial and offline seq as an EP purchase is another transaction, while an EP
/// composite purchase with that seq shares the EP counter and is a duplicate.
#[test]
fn batch_keeps_ed_and_ep_seqs_apart() {
    let hsm = hsm();
    let keys = keys(&hsm);
    let ep = purchase();
    // TAC key 6F316AAD2ECC024E over 000004D2 05 001122334455 00000065 20240501 123000.
    let ed = OfflinePurchaseRecord {
        transaction_type: TransactionType::EdPurchase,
        terminal_seq: 101,
        tac: h4("33508C8F"),
        ..purchase()
    };
    // Over 000004D2 09 001122334455 00000066 20240501 123000.
    let composite = OfflinePurchaseRecord {
        transaction_type: TransactionType::CompositePurchase,
        terminal_seq: 102,
        tac: h4("56528113"),
        ..purchase()
    };
    for genuine in [&ed, &composite] {
        block_on(issuer::verify_purchase_tac(&hsm, &keys, genuine)).unwrap();
    }
    assert_eq!((ed.card_serial, ed.offline_seq), (SERIAL, 0));
    assert_eq!((ep.card_serial, ep.offline_seq), (SERIAL, 0));

    let mut checker = BatchChecker::new();
    let report = block_on(checker.check_records(&hsm, &keys, &[ep, ed, ed, ep, composite]));
    let verdicts: Vec<Verdict> = report.results.into_iter().map(|r| r.verdict).collect();
    assert_eq!(
        verdicts,
        vec![
            Verdict::Accepted,
            Verdict::Accepted,
            Verdict::Duplicate,
            Verdict::Duplicate,
            Verdict::Duplicate,
        ]
    );
    assert_eq!(checker.seen_count(), 2);
    assert_eq!(
        ed.duplicate_key(),
        DuplicateKey {
            card_serial: SERIAL,
            application: Some(Application::Ed),
            offline_seq: 0
        }
    );
    assert_eq!(
        ep.duplicate_key(),
        DuplicateKey {
            card_serial: SERIAL,
            application: Some(Application::Ep),
            offline_seq: 0
        }
    );
    assert!(checker.is_seen(&ed.duplicate_key()));
    assert!(checker.is_seen(&ep.duplicate_key()));

    // In the other order, and from a checker that knows only the EP upload.
    let mut later = BatchChecker::with_seen([ep.duplicate_key()]);
    assert_eq!(
        block_on(later.check_record(&hsm, &keys, &ed)),
        Verdict::Accepted
    );
    assert_eq!(
        block_on(later.check_record(&hsm, &keys, &ep)),
        Verdict::Duplicate
    );
}

#[test]
fn hsm_failures_are_neither_accepted_nor_rejected() {
    let hsm = hsm();
    let good = keys(&hsm);
    let wrong_type = IssuerKeys {
        dtk_master: good.dlk_master.clone(),
        ..good.clone()
    };
    let mut checker = BatchChecker::new();
    let verdict = block_on(checker.check_record(&hsm, &wrong_type, &purchase()));
    let Verdict::Failed(e) = verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(e.code, HsmErrorCode::KeyType);
    assert_eq!(checker.seen_count(), 0);
    // Retried with the right key, it is accepted.
    assert_eq!(
        block_on(checker.check_record(&hsm, &good, &purchase())),
        Verdict::Accepted
    );
}

#[test]
fn tac_recomputed_in_a_psam() {
    let info = PsamInfo {
        serial: [0; 10],
        version: 1,
        key_type: 0,
        command_set_version: 1,
        fci_data: 0,
    };
    let mut psam = VirtualPsam::new(TERMINAL, info);
    psam.add_key(KEY_USAGE_TAC, 0x01, 0x00, DesKey::from_hex(MTK).unwrap());
    let mut psam = ApduPsam::new(MemoryTransport::new(psam));
    let tac = issuer::recompute_tac_with_psam(
        &mut psam,
        0x01,
        &[CITY, SERIAL],
        &issuer::purchase_tac_data(&purchase()),
    )
    .unwrap();
    assert_eq!(tac, h4("59889C44"));
    // No TAC master of version 2.
    let error =
        issuer::recompute_tac_with_psam(&mut psam, 0x02, &[CITY, SERIAL], &[0; 22]).unwrap_err();
    assert_eq!(error.to_string(), "PSAM DELIVERY KEY: 6A88 key not found");
}
