//! The logic behind the pboc-card fuzz targets (`apdu_card`, `apdu_psam`, `apdu_terminal`),
//! shared with `pboc-card/tests/fuzz_corpus.rs`, which includes this file with `#[path]` so
//! that replaying the corpus runs exactly what the fuzzers run. It uses only `pboc_card`,
//! `pboc_sam` and `std`.
//!
//! The card and PSAM targets read their input twice: as one command APDU, and as a *session*,
//! a sequence of `length(1) | APDU` chunks sent one after another to the same simulator, so
//! that the fuzzer reaches the second step of a transaction (DEBIT after INITIALIZE, CREDIT
//! SAM after INIT SAM). The simulators must answer every command with at least a status word,
//! and the card's state must still be a valid image after any session.

use pboc_card::command::{CipherData, CipherMode};
use pboc_card::command::{
    CreditForLoadResponse, DataResponse, DebitForPurchaseResponse, DebitForUnloadResponse,
    DeliveryKey, GetBalanceResponse, InitSamForPurchase, InitSamForPurchaseResponse,
    InitializeForLoadResponse, InitializeForPurchaseResponse, InitializeForUnload,
    InitializeForUpdateResponse, NoData, PsamInfo, TerminalIdResponse, TransactionProof,
    UpdateOverdrawLimitResponse,
};
use pboc_card::flow::{self, ApplicationInfo};
use pboc_card::image::{CardImage, CardKey, IMAGE_FORMAT, KeyPurpose, PinState, Purse};
use pboc_card::psam::{ALGORITHM_3DES, KEY_USAGE_TAC};
use pboc_card::{
    ApduPsam, Application, CommandApdu, FixedRandom, OfflinePurchaseRecord, Psam, Response,
    ResponseApdu, StatusWord, TransactionDetail, TransactionType, VirtualCard, VirtualPsam,
    parse_card_command, parse_psam_command,
};
use pboc_sam::transport::{GetResponse, MemoryTransport};
use pboc_sam::{DesKey, Pin};

/// The most APDUs a session runs.
pub const MAX_SESSION: usize = 64;

/// The development purchase and load key of the card tests (`pboc-card/tests/card.rs`).
pub const DEV_KEY: [u8; 16] = [
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
];
/// The TAC key of the card tests.
pub const DTK: [u8; 16] = [
    0x5A, 0x4B, 0x3C, 0x2D, 0x1E, 0x0F, 0x1A, 0x2B, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
];
/// The unload key of the card tests.
pub const DULK: [u8; 16] = [
    0x2B, 0x7E, 0x15, 0x16, 0x28, 0xAE, 0xD2, 0xA6, 0xAB, 0xF7, 0x15, 0x88, 0x09, 0xCF, 0x4F, 0x3C,
];
/// The overdraw-update key of the card tests.
pub const DUK: [u8; 16] = [
    0x3C, 0x4F, 0xCF, 0x09, 0x88, 0x15, 0xF7, 0xAB, 0xA6, 0xD2, 0xAE, 0x28, 0x16, 0x15, 0x7E, 0x2B,
];
/// The terminal of the card and PSAM tests.
pub const TERMINAL: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
/// The challenge the fuzzed card always draws.
pub const CARD_RANDOM: [u8; 4] = [0x11, 0x22, 0x33, 0x44];
/// The PSAM purchase master key of the PSAM tests.
pub const PSAM_MPK: [u8; 16] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10,
];
/// The PSAM TAC master key of the PSAM tests.
pub const PSAM_MTK: [u8; 16] = [
    0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10, 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
];
/// The PIN of the card that has one.
pub const CARD_PIN: &str = "123456";

fn card_key(purpose: KeyPurpose, key: [u8; 16]) -> CardKey {
    CardKey {
        purpose,
        index: 0x01,
        version: 0x01,
        algorithm_id: 0x00,
        key: DesKey::double(key),
        mac_failures: 0,
    }
}

/// The image of `pboc-card/tests/card.rs`: an ED (balance 0) and an EP (10000 fen), the
/// development keys, counters at 0; with `pin`, a PIN with 3 tries.
pub fn test_image(pin: bool) -> CardImage {
    let pin = pin.then(|| PinState {
        digits: match Pin::new(CARD_PIN) {
            Ok(p) => p,
            Err(e) => panic!("the test PIN: {e}"),
        },
        tries_left: 3,
        max_tries: 3,
    });
    CardImage {
        format: IMAGE_FORMAT,
        aid: vec![0xA0, 0x00, 0x00, 0x00, 0x03, 0x86, 0x98, 0x07, 0x01],
        serial: [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01],
        issuer_id: [0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
        card_type: 0x03,
        app_version: 0x01,
        valid_from: [0x20, 0x11, 0x01, 0x01],
        valid_until: [0x20, 0x30, 0x12, 0x31],
        deposit: 2000,
        locked: false,
        ed: Some(Purse::new(0, 1_000_000)),
        ep: Some(Purse::new(10_000, 100_000)),
        keys: vec![
            card_key(KeyPurpose::Purchase, DEV_KEY),
            card_key(KeyPurpose::Load, DEV_KEY),
            card_key(KeyPurpose::Tac, DTK),
            card_key(KeyPurpose::Unload, DULK),
            card_key(KeyPurpose::OverdrawUpdate, DUK),
        ],
        pin,
        record_capacity: 10,
        records: Vec::new(),
        capp_records: Vec::new(),
        proofs: Vec::new(),
    }
}

/// A virtual card over [`test_image`] that always draws [`CARD_RANDOM`].
pub fn test_card(pin: bool) -> VirtualCard {
    match VirtualCard::from_image(&test_image(pin), Box::new(FixedRandom::new(CARD_RANDOM))) {
        Ok(card) => card,
        Err(e) => panic!("the test image is invalid: {e}"),
    }
}

/// The public information of the test PSAM.
pub fn test_psam_info() -> PsamInfo {
    PsamInfo {
        serial: [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x10],
        version: 0x01,
        key_type: 0x02,
        command_set_version: 0x03,
        fci_data: 0x04,
    }
}

/// The PSAM of `pboc-card/tests/psam.rs`: terminal [`TERMINAL`], purchase master key version
/// 1, TAC master key version 1, and a usage-5 key version 2.
pub fn test_psam() -> VirtualPsam {
    let mut psam = VirtualPsam::new(TERMINAL, test_psam_info());
    psam.add_purchase_key(0x01, DesKey::double(PSAM_MPK))
        .add_key(
            KEY_USAGE_TAC,
            0x01,
            ALGORITHM_3DES,
            DesKey::double(PSAM_MTK),
        )
        .add_key(0x05, 0x02, ALGORITHM_3DES, DesKey::double(PSAM_MTK));
    psam
}

/// Splits `data` into `length(1) | APDU` chunks (the last may be short), at most
/// [`MAX_SESSION`].
pub fn session(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        if out.len() == MAX_SESSION {
            break;
        }
        let (apdu, next) = tail.split_at(usize::from(len).min(tail.len()));
        out.push(apdu);
        rest = next;
    }
    out
}

/// Joins APDUs into a session input (the inverse of [`session`] for APDUs under 256 bytes).
pub fn join_session(apdus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for apdu in apdus {
        out.push(u8::try_from(apdu.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(apdu);
    }
    out
}

/// Parses a command APDU: one that parses reports the case it encodes as and re-encodes to
/// exactly the input.
pub fn check_command_apdu(data: &[u8]) -> Option<CommandApdu> {
    match CommandApdu::parse_with_case(data) {
        Ok((case, apdu)) => {
            let _ = (case.to_string(), format!("{apdu:?}"));
            assert_eq!(apdu.case(), Ok(case), "the case changed");
            assert_eq!(
                apdu.to_bytes().as_deref(),
                Ok(data),
                "a parsed command APDU re-encodes differently"
            );
            Some(apdu)
        }
        Err(e) => {
            let _ = e.to_string();
            None
        }
    }
}

/// A card command that parses gives an APDU that parses to the same command.
pub fn check_card_command(apdu: &CommandApdu) {
    match parse_card_command(apdu) {
        Ok(command) => {
            let _ = (command.name(), format!("{command:?}"));
            let bytes = match command.to_apdu().to_bytes() {
                Ok(b) => b,
                Err(e) => panic!("{}: a parsed command does not encode: {e}", command.name()),
            };
            match CommandApdu::parse(&bytes) {
                Ok(again) => assert_eq!(parse_card_command(&again), Ok(command)),
                Err(e) => panic!("{}: an encoded command does not parse: {e}", command.name()),
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// A PSAM command that parses gives an APDU that parses to the same command.
pub fn check_psam_command(apdu: &CommandApdu) {
    match parse_psam_command(apdu) {
        Ok(command) => {
            let _ = (command.name(), format!("{command:?}"));
            let bytes = match command.to_apdu().to_bytes() {
                Ok(b) => b,
                Err(e) => panic!("{}: a parsed command does not encode: {e}", command.name()),
            };
            match CommandApdu::parse(&bytes) {
                Ok(again) => assert_eq!(parse_psam_command(&again), Ok(command)),
                Err(e) => panic!("{}: an encoded command does not parse: {e}", command.name()),
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// A simulator's answer: at least a status word, and a well-formed response APDU.
fn check_answer(who: &str, answer: &[u8]) {
    assert!(
        answer.len() >= 2,
        "{who} answered {} bytes, no status word",
        answer.len()
    );
    match ResponseApdu::parse(answer) {
        Ok(r) => {
            assert!(r.to_bytes() == answer, "{who}: response re-encodes");
            let _ = (r.sw.code(), r.sw.meaning(), r.sw.is_success());
        }
        Err(e) => panic!("{who}: the answer does not parse: {e}"),
    }
}

/// `apdu_card`: the input as one command APDU (parser, card command, a card with and without
/// a PIN), then as a session on a card with and without a PIN.
pub fn apdu_card_target(data: &[u8]) {
    if let Some(apdu) = check_command_apdu(data) {
        check_card_command(&apdu);
    }
    for pin in [false, true] {
        let mut card = test_card(pin);
        check_answer("the card", &card.process(data));
    }
    let apdus = session(data);
    for pin in [false, true] {
        let mut card = test_card(pin);
        for apdu in &apdus {
            if let Some(parsed) = check_command_apdu(apdu) {
                check_card_command(&parsed);
            }
            check_answer("the card", &card.process(apdu));
        }
        let _ = format!("{card:?}");
        if let Err(e) = card.image().validate() {
            panic!("the card's state is no longer a valid image: {e}");
        }
        for record in card.records() {
            let bytes = record.to_bytes();
            assert_eq!(TransactionDetail::parse(&bytes).ok(), Some(record));
        }
    }
}

/// `apdu_psam`: the input as one command APDU (parser, PSAM command, the test PSAM), then as
/// a session on the test PSAM.
pub fn apdu_psam_target(data: &[u8]) {
    if let Some(apdu) = check_command_apdu(data) {
        check_psam_command(&apdu);
    }
    let mut psam = test_psam();
    check_answer("the PSAM", &psam.process(data));
    let mut psam = test_psam();
    for apdu in session(data) {
        if let Some(parsed) = check_command_apdu(apdu) {
            check_psam_command(&parsed);
        }
        check_answer("the PSAM", &psam.process(apdu));
    }
    let _ = (format!("{psam:?}"), psam.terminal_seq());
}

/// A typed response that parses re-encodes to exactly its input.
fn check_response<R: Response + PartialEq + core::fmt::Debug>(data: &[u8]) {
    if let Ok(parsed) = R::parse(data) {
        let bytes = parsed.to_bytes();
        assert!(bytes == data, "a parsed response re-encodes differently");
        assert_eq!(R::parse(&bytes).ok(), Some(parsed));
    }
}

/// Every typed response parser and record parser over `data`.
pub fn check_response_data(data: &[u8]) {
    check_response::<GetBalanceResponse>(data);
    check_response::<InitializeForLoadResponse>(data);
    check_response::<CreditForLoadResponse>(data);
    check_response::<InitializeForPurchaseResponse>(data);
    check_response::<DebitForPurchaseResponse>(data);
    check_response::<DebitForUnloadResponse>(data);
    check_response::<InitializeForUpdateResponse>(data);
    check_response::<UpdateOverdrawLimitResponse>(data);
    check_response::<TransactionProof>(data);
    check_response::<InitSamForPurchaseResponse>(data);
    check_response::<TerminalIdResponse>(data);
    check_response::<PsamInfo>(data);
    check_response::<NoData>(data);
    check_response::<DataResponse>(data);
    if let Ok(r) = InitializeForUnload::parse_response(data) {
        assert!(
            r.to_bytes() == data,
            "INITIALIZE FOR UNLOAD response re-encodes"
        );
    }
    if let Ok(record) = TransactionDetail::parse(data) {
        assert!(record.to_bytes() == data, "a transaction detail re-encodes");
    }
    if let Ok(record) = OfflinePurchaseRecord::parse(data) {
        assert!(record.to_bytes() == data, "an offline record re-encodes");
        let _ = record.duplicate_key();
    }
    if let Ok(info) = ApplicationInfo::parse(data) {
        let _ = format!("{info:?}");
    }
}

/// `apdu_terminal`: the terminal side. The input as a response APDU (which must re-encode
/// exactly), its data and the whole input through every typed response parser, and the input
/// as the answer of a card to the terminal flows and of a PSAM to the terminal's PSAM driver
/// (directly and through the T=0 GET RESPONSE wrapper). Nothing may panic.
pub fn apdu_terminal_target(data: &[u8]) {
    match ResponseApdu::parse(data) {
        Ok(r) => {
            assert!(
                r.to_bytes() == data,
                "a response APDU re-encodes differently"
            );
            assert_eq!(
                r.sw,
                StatusWord::from_bytes(r.sw.to_bytes()[0], r.sw.to_bytes()[1])
            );
            let _ = (
                r.sw.code(),
                r.sw.meaning(),
                r.sw.is_success(),
                r.sw.to_string(),
            );
            check_response_data(&r.data);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    check_response_data(data);

    let reply = data.to_vec();
    let answer = move |_: &[u8]| reply.clone();
    let mut card = MemoryTransport::new(answer.clone());
    terminal_flows(&mut card);
    let mut card = GetResponse(MemoryTransport::new(answer.clone()));
    terminal_flows(&mut card);
    psam_driver(&mut ApduPsam::new(MemoryTransport::new(answer.clone())));
    psam_driver(&mut ApduPsam::new(GetResponse(MemoryTransport::new(
        answer,
    ))));
}

fn terminal_flows(card: &mut dyn pboc_sam::CardTransport) {
    let aid = [0xA0, 0x00, 0x00, 0x00, 0x03, 0x86, 0x98, 0x07, 0x01];
    let _ = flow::select(card, &aid).map_err(|e| e.to_string());
    for application in [Application::Ed, Application::Ep] {
        let _ = flow::get_balance(card, application).map_err(|e| (e.step(), e.status()));
    }
    let _ = flow::verify_pin(card, CARD_PIN).map_err(|e| e.to_string());
    let _ = flow::read_application_info(card).map_err(|e| e.to_string());
    let _ = flow::read_records(card, 3).map_err(|e| e.to_string());
}

fn psam_driver<T: pboc_sam::CardTransport>(psam: &mut ApduPsam<T>) {
    let _ = psam.select(&[0xD1, 0x56, 0x00, 0x00, 0x01, 0x50, 0x53, 0x41, 0x4D]);
    let _ = psam.terminal_id();
    let _ = psam.info();
    let init = InitSamForPurchase {
        card_random: CARD_RANDOM,
        card_offline_seq: 0,
        amount: 0x1000,
        transaction_type: TransactionType::EpPurchase,
        date: [0x20, 0x12, 0x02, 0x29],
        time: [0x13, 0x51, 0x00],
        key_version: 0x01,
        algorithm_id: 0x00,
        card_serial: [0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01],
        extra_factors: Vec::new(),
    };
    let _ = psam.init_for_purchase(&init).map_err(|e| e.to_string());
    let _ = psam.credit_for_purchase([1, 2, 3, 4]);
    let _ = psam.delivery_key(&DeliveryKey {
        key_usage: KEY_USAGE_TAC,
        key_version: 0x01,
        factors: vec![[0x10, 0, 0, 0, 0, 0, 0, 1]],
    });
    let _ = psam.cipher_data(&CipherData {
        mode: CipherMode::MacWithIv,
        data: vec![0; 16],
    });
}
