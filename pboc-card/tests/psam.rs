#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The virtual PSAM: INIT/CREDIT SAM FOR PURCHASE against the spec vector and the pure
//! functions of pboc-sam, DELIVERY KEY and CIPHER DATA, every status word, and the terminal's
//! `ApduPsam` over a memory transport.

use pboc_card::command::{
    CipherData, CipherMode, DeliveryKey, InitSamForPurchase, InitSamForPurchaseResponse, PsamInfo,
};
use pboc_card::psam::{
    ALGORITHM_3DES, DEFAULT_PSAM_AID, KEY_USAGE_PURCHASE, KEY_USAGE_TAC,
    init_sam_diversification_path, init_sam_extra_factors, purchase_mac1,
};
use pboc_card::{ApduPsam, Psam, PsamError, StatusWord, TransactionType, VirtualPsam};
use pboc_sam::key::DesKey;
use pboc_sam::transport::{MemoryTransport, TransportError};
use pboc_sam::{mac, pboc};

fn h(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).unwrap()
}

fn hx(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

fn key(text: &str) -> DesKey {
    DesKey::from_hex(text).unwrap()
}

const TERMINAL: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const MPK: &str = "0123456789ABCDEFFEDCBA9876543210";
const MTK: &str = "FEDCBA98765432100123456789ABCDEF";
const SERIAL: [u8; 8] = [0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];
const CITY: [u8; 8] = [0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];
const PROVINCE: [u8; 8] = [0x20, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

fn info() -> PsamInfo {
    PsamInfo {
        serial: [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x10],
        version: 0x01,
        key_type: 0x02,
        command_set_version: 0x03,
        fci_data: 0x04,
    }
}

fn psam() -> VirtualPsam {
    let mut psam = VirtualPsam::new(TERMINAL, info());
    psam.add_purchase_key(0x01, key(MPK))
        .add_key(KEY_USAGE_TAC, 0x01, ALGORITHM_3DES, key(MTK))
        .add_key(0x05, 0x02, ALGORITHM_3DES, key(MTK));
    psam
}

/// The spec's purchase example: amount 0x1000, EP purchase, 2012-02-29 13:51:00.
fn init() -> InitSamForPurchase {
    InitSamForPurchase {
        card_random: [0x11, 0x22, 0x33, 0x44],
        card_offline_seq: 0,
        amount: 0x1000,
        transaction_type: TransactionType::EpPurchase,
        date: [0x20, 0x12, 0x02, 0x29],
        time: [0x13, 0x51, 0x00],
        key_version: 0x01,
        algorithm_id: 0x00,
        card_serial: SERIAL,
        extra_factors: Vec::new(),
    }
}

fn send(psam: &mut VirtualPsam, apdu: &pboc_card::CommandApdu) -> Vec<u8> {
    psam.process(&apdu.to_bytes().unwrap())
}

#[test]
fn spec_vector_through_the_psam_computation() {
    // DPK 1122..2211, random 11223344, offline seq 0000, terminal seq ending 0001.
    let dpk = key("11223344556677888877665544332211");
    let computed = purchase_mac1(&dpk, &init(), &TERMINAL, 1).unwrap();
    assert_eq!(hx(computed.sespk.as_bytes()), "003238ABC57659DD");
    assert_eq!(computed.mac1, [0xF1, 0x5C, 0xAB, 0x75]);
    // Only the low two bytes of the terminal seq count.
    let again = purchase_mac1(&dpk, &init(), &TERMINAL, 0xABCD_0001).unwrap();
    assert_eq!(hx(again.sespk.as_bytes()), "003238ABC57659DD");
    assert_eq!(again.mac1, [0xF1, 0x5C, 0xAB, 0x75]);
    // The card's MAC2 from the spec verifies with that SESPK.
    assert_eq!(
        mac::pboc(&computed.sespk, &pboc::purchase_mac2_input(0x1000)).unwrap(),
        [0x56, 0x98, 0x8A, 0x13]
    );
    // Debug never shows the session key.
    let debug = format!("{computed:?}");
    assert!(!debug.contains("003238ABC57659DD"), "{debug}");
}

#[test]
fn init_sam_for_purchase_derives_the_card_key_from_the_master() {
    let mut psam = psam();
    let response = send(&mut psam, &init().to_apdu());
    let dpk = pboc::diversify_path(&key(MPK), &[SERIAL]);
    let expected = purchase_mac1(&dpk, &init(), &TERMINAL, 1).unwrap();
    assert_eq!(hx(&response), format!("00000001{}9000", hx(&expected.mac1)));
    // The same bytes, recomputed independently (Python `cryptography`): SESPK
    // 6302F23AD508B2D7, MAC1 42E1D6F6.
    assert_eq!(hx(expected.sespk.as_bytes()), "6302F23AD508B2D7");
    assert_eq!(hx(&response), "0000000142E1D6F69000");
    assert_eq!(psam.terminal_seq(), 2);

    // The card's MAC2 under the same SESPK verifies: 9000.
    let mac2 = mac::pboc(&expected.sespk, &pboc::purchase_mac2_input(0x1000)).unwrap();
    let credit = pboc_card::command::CreditSamForPurchase { mac2 };
    assert_eq!(hx(&send(&mut psam, &credit.to_apdu())), "9000");
    // The session is over: a second CREDIT SAM is out of order.
    assert_eq!(hx(&send(&mut psam, &credit.to_apdu())), "6985");

    // The next purchase uses terminal seq 2.
    let response = send(&mut psam, &init().to_apdu());
    let expected = purchase_mac1(&dpk, &init(), &TERMINAL, 2).unwrap();
    assert_eq!(hx(&response), format!("00000002{}9000", hx(&expected.mac1)));
    assert_eq!(psam.terminal_seq(), 3);
}

#[test]
fn further_factors_go_outwards_from_the_card() {
    // Issuer factors outermost first: province, city. On the wire: serial, city, province.
    let issuer = [PROVINCE, CITY];
    let wire = init_sam_extra_factors(&issuer);
    assert_eq!(wire, vec![CITY, PROVINCE]);
    let command = InitSamForPurchase {
        extra_factors: wire,
        ..init()
    };
    assert_eq!(
        init_sam_diversification_path(&command),
        vec![PROVINCE, CITY, SERIAL]
    );
    let mut psam = psam();
    let response = send(&mut psam, &command.to_apdu());
    let dpk = pboc::diversify_path(&key(MPK), &[PROVINCE, CITY, SERIAL]);
    let expected = purchase_mac1(&dpk, &command, &TERMINAL, 1).unwrap();
    assert_eq!(hx(&response), format!("00000001{}9000", hx(&expected.mac1)));
    // The other order gives another MAC1.
    let wrong = pboc::diversify_path(&key(MPK), &[CITY, PROVINCE, SERIAL]);
    let wrong = purchase_mac1(&wrong, &command, &TERMINAL, 1).unwrap();
    assert_ne!(wrong.mac1, expected.mac1);
}

#[test]
fn credit_sam_rejects_a_bad_mac2() {
    let mut psam = psam();
    send(&mut psam, &init().to_apdu());
    let credit = pboc_card::command::CreditSamForPurchase {
        mac2: [0x56, 0x98, 0x8A, 0x13],
    };
    assert_eq!(hx(&send(&mut psam, &credit.to_apdu())), "9302");
    // One try per session.
    assert_eq!(hx(&send(&mut psam, &credit.to_apdu())), "6985");
}

#[test]
fn terminal_counter_wraps() {
    let mut psam = psam();
    psam.set_terminal_seq(u32::MAX);
    assert!(hx(&send(&mut psam, &init().to_apdu())).starts_with("FFFFFFFF"));
    assert_eq!(psam.terminal_seq(), 0);
    assert!(hx(&send(&mut psam, &init().to_apdu())).starts_with("00000000"));
}

#[test]
fn unknown_key_version_or_algorithm_is_6a88_and_does_not_count() {
    let mut psam = psam();
    let v2 = InitSamForPurchase {
        key_version: 0x02,
        ..init()
    };
    assert_eq!(hx(&send(&mut psam, &v2.to_apdu())), "6A88");
    let sm4 = InitSamForPurchase {
        algorithm_id: 0x04,
        ..init()
    };
    assert_eq!(hx(&send(&mut psam, &sm4.to_apdu())), "6A88");
    assert_eq!(psam.terminal_seq(), 1);
    // A failed INIT ends the previous session.
    send(&mut psam, &init().to_apdu());
    send(&mut psam, &v2.to_apdu());
    let credit = pboc_card::command::CreditSamForPurchase { mac2: [0; 4] };
    assert_eq!(hx(&send(&mut psam, &credit.to_apdu())), "6985");
}

#[test]
fn reads_terminal_id_info_and_selects() {
    let mut psam = psam();
    assert_eq!(hx(&psam.process(&h("00B0960006"))), "0011223344559000");
    assert_eq!(
        hx(&psam.process(&h("00B095000E"))),
        "010203040506070809100102030490 00".replace(' ', "")
    );
    let mut select = h("00A4040009");
    select.extend_from_slice(&DEFAULT_PSAM_AID);
    select.push(0x00);
    assert_eq!(hx(&psam.process(&select)), "6F0B8409D1560000015053414D9000");
    assert_eq!(hx(&psam.process(&h("00A4040005A000000003 00"))), "6A82");
    psam.set_aid(&h("A000000003"));
    assert_eq!(
        hx(&psam.process(&h("00A4040005A000000003 00"))),
        "6F078405A0000000039000"
    );
    assert_eq!(psam.terminal_id(), TERMINAL);
    assert_eq!(psam.info(), info());
}

#[test]
fn every_status_word() {
    let mut psam = psam();
    let cases = [
        // Malformed APDUs and wrong lengths: 6700.
        ("80", "6700"),
        ("807000001D11", "6700"),
        (
            "8070000014 11223344 0000 00001000 06 20120229 135100 01 00",
            "6700",
        ),
        ("80720000 03 010203", "6700"),
        ("801A0101 07 10000000000000", "6700"),
        // Bad P1/P2: 6A86.
        (
            "80700100 1C 11223344 0000 00001000 06 20120229 135100 01 00 1000000000000001 08",
            "6A86",
        ),
        ("80FA0200 08 1111111111111111", "6A86"),
        // An invalid transaction type: 6A80.
        (
            "80700000 1C 11223344 0000 00001000 0A 20120229 135100 01 00 1000000000000001 08",
            "6A80",
        ),
        // Unknown instruction, unknown class.
        ("80990000", "6D00"),
        ("90700000", "6E00"),
        // Files that are not there.
        ("00B0970006", "6A82"),
        ("00B0000006", "6A82"),
        // Out of order.
        ("8072000004 01020304", "6985"),
        ("80FA0500 10 0000000000000000 1122334455667788", "6985"),
        ("00C0000008", "6985"),
        // Keys that are not there.
        ("801A0901 08 1000000000000001", "6A88"),
        ("801A0109 08 1000000000000001", "6A88"),
    ];
    for (command, expected) in cases {
        assert_eq!(hx(&psam.process(&h(command))), expected, "{command}");
    }
    // MAC2 invalid: 9302.
    send(&mut psam, &init().to_apdu());
    assert_eq!(hx(&psam.process(&h("8072000004 01020304"))), "9302");
}

#[test]
fn delivery_key_and_cipher_data_recompute_a_tac() {
    let mut psam = psam();
    // The card's DTK and TAC, as the card computes them.
    let dtk = pboc::diversify(&key(MTK), &SERIAL);
    let tac_key = pboc::tac_key(&dtk).unwrap();
    let input = pboc::purchase_tac_input(
        0x1000,
        0x06,
        &TERMINAL,
        1,
        &[0x20, 0x12, 0x02, 0x29],
        &[0x13, 0x51, 0x00],
    );
    let tac = mac::pboc(&tac_key, &input).unwrap();

    let delivery = DeliveryKey {
        key_usage: KEY_USAGE_TAC,
        key_version: 0x01,
        factors: vec![SERIAL],
    };
    assert_eq!(hx(&send(&mut psam, &delivery.to_apdu())), "9000");
    let mut one_go = vec![0u8; 8];
    one_go.extend_from_slice(&input);
    let response = send(
        &mut psam,
        &CipherData {
            mode: CipherMode::MacWithIv,
            data: one_go,
        }
        .to_apdu(),
    );
    assert_eq!(hx(&response), format!("{}9000", hx(&tac)));

    // The same TAC in three parts: IV + 1 block, 1 block, the last 6 bytes.
    let mut first = vec![0u8; 8];
    first.extend_from_slice(&input[..8]);
    let parts = [
        (CipherMode::MacFirst, first, "9000".to_owned()),
        (
            CipherMode::MacNext,
            input[8..16].to_vec(),
            "9000".to_owned(),
        ),
        (
            CipherMode::MacLast,
            input[16..].to_vec(),
            format!("{}9000", hx(&tac)),
        ),
    ];
    for (mode, data, expected) in parts {
        let response = send(&mut psam, &CipherData { mode, data }.to_apdu());
        assert_eq!(hx(&response), expected, "{mode:?}");
    }
    // The chain is consumed by the last part.
    let last = CipherData {
        mode: CipherMode::MacLast,
        data: vec![0x00],
    };
    assert_eq!(hx(&send(&mut psam, &last.to_apdu())), "6985");
    let next = CipherData {
        mode: CipherMode::MacNext,
        data: vec![0x00; 8],
    };
    assert_eq!(hx(&send(&mut psam, &next.to_apdu())), "6985");
}

#[test]
fn cipher_data_with_a_double_length_temporary_key() {
    let mut psam = psam();
    let factors = vec![CITY, SERIAL];
    let derived = pboc::diversify_path(&key(MTK), &factors);
    let delivery = DeliveryKey {
        key_usage: 0x05,
        key_version: 0x02,
        factors,
    };
    assert_eq!(hx(&send(&mut psam, &delivery.to_apdu())), "9000");

    // Encrypt: 3DES-ECB.
    let plain = h("0011223344556677 8899AABBCCDDEEFF");
    let expected = pboc_sam::cipher::encrypt(
        &pboc_sam::key::Key::Des(derived.clone()),
        pboc_sam::cipher::Mode::Ecb,
        &plain,
    )
    .unwrap();
    let response = send(
        &mut psam,
        &CipherData {
            mode: CipherMode::Encrypt,
            data: plain,
        }
        .to_apdu(),
    );
    assert_eq!(hx(&response), format!("{}9000", hx(&expected)));

    // MAC with an IV: the retail PBOC MAC from that IV.
    let iv = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];
    let message = h("A1A2A3A4A5A6A7A8 B1B2B3B4B5B6B7B8 C1C2");
    let expected = mac::pboc_with_iv(&derived, &iv, &message).unwrap();
    let mut data = iv.to_vec();
    data.extend_from_slice(&message);
    let response = send(
        &mut psam,
        &CipherData {
            mode: CipherMode::MacWithIv,
            data,
        }
        .to_apdu(),
    );
    assert_eq!(hx(&response), format!("{}9000", hx(&expected)));

    // The same in two parts, the first one carrying two blocks.
    let mut first = iv.to_vec();
    first.extend_from_slice(&message[..16]);
    let first = CipherData {
        mode: CipherMode::MacFirst,
        data: first,
    };
    assert_eq!(hx(&send(&mut psam, &first.to_apdu())), "9000");
    let last = CipherData {
        mode: CipherMode::MacLast,
        data: message[16..].to_vec(),
    };
    assert_eq!(
        hx(&send(&mut psam, &last.to_apdu())),
        format!("{}9000", hx(&expected))
    );

    // Lengths: encrypt needs whole blocks, a MAC needs its IV, parts need whole blocks.
    let bad = [
        (CipherMode::Encrypt, vec![0u8; 7]),
        (CipherMode::MacWithIv, vec![0u8; 7]),
        (CipherMode::MacFirst, vec![0u8; 12]),
    ];
    for (mode, data) in bad {
        let response = send(&mut psam, &CipherData { mode, data }.to_apdu());
        assert_eq!(hx(&response), "6700", "{mode:?}");
    }
    assert_eq!(hx(&send(&mut psam, &first.to_apdu())), "9000");
    let odd = CipherData {
        mode: CipherMode::MacNext,
        data: vec![0u8; 9],
    };
    assert_eq!(hx(&send(&mut psam, &odd.to_apdu())), "6700");
    // A failed part breaks the chain.
    assert_eq!(hx(&send(&mut psam, &last.to_apdu())), "6985");

    // A failed DELIVERY KEY forgets the temporary key.
    let missing = DeliveryKey {
        key_usage: 0x05,
        key_version: 0x07,
        factors: vec![SERIAL],
    };
    assert_eq!(hx(&send(&mut psam, &missing.to_apdu())), "6A88");
    let encrypt = CipherData {
        mode: CipherMode::Encrypt,
        data: vec![0u8; 8],
    };
    assert_eq!(hx(&send(&mut psam, &encrypt.to_apdu())), "6985");
}

#[test]
fn debug_shows_check_values_only() {
    let psam = psam();
    let debug = format!("{psam:?}");
    assert!(!debug.contains("0123456789ABCDEF"), "{debug}");
    assert!(debug.contains("terminal_id: \"001122334455\""), "{debug}");
    let kcv = psam.key_check_value(KEY_USAGE_PURCHASE, 0x01).unwrap();
    assert!(debug.contains(&format!("{kcv:?}")), "{debug}");
    assert_eq!(kcv, key(MPK).kcv(pboc_sam::kcv::KcvLength::UNIONPAY));
    assert!(psam.key_check_value(KEY_USAGE_PURCHASE, 0x09).is_none());
}

#[test]
fn apdu_psam_over_a_memory_transport() {
    let mut terminal = ApduPsam::new(MemoryTransport::recording(psam()));
    let mut aid_select = DEFAULT_PSAM_AID.to_vec();
    let fci = terminal.select(&DEFAULT_PSAM_AID).unwrap();
    aid_select.insert(0, 0x84);
    assert_eq!(hx(&fci), "6F0B8409D1560000015053414D");
    assert_eq!(terminal.terminal_id().unwrap(), TERMINAL);
    assert_eq!(terminal.info().unwrap(), info());

    let dpk = pboc::diversify_path(&key(MPK), &[SERIAL]);
    let expected = purchase_mac1(&dpk, &init(), &TERMINAL, 1).unwrap();
    let response = terminal.init_for_purchase(&init()).unwrap();
    assert_eq!(
        response,
        InitSamForPurchaseResponse {
            terminal_seq: 1,
            mac1: expected.mac1
        }
    );
    let good = mac::pboc(&expected.sespk, &pboc::purchase_mac2_input(0x1000)).unwrap();
    terminal.credit_for_purchase(good).unwrap();

    terminal.init_for_purchase(&init()).unwrap();
    let error = terminal.credit_for_purchase([0; 4]).unwrap_err();
    assert_eq!(
        error,
        PsamError::Status {
            command: "CREDIT SAM FOR PURCHASE",
            sw: StatusWord::MacInvalid
        }
    );
    assert_eq!(
        error.to_string(),
        "PSAM CREDIT SAM FOR PURCHASE: 9302 MAC invalid"
    );
    assert_eq!(error.command(), "CREDIT SAM FOR PURCHASE");
    assert_eq!(error.status(), Some(StatusWord::MacInvalid));

    // DELIVERY KEY + CIPHER DATA through the trait.
    terminal
        .delivery_key(&DeliveryKey {
            key_usage: KEY_USAGE_TAC,
            key_version: 0x01,
            factors: vec![SERIAL],
        })
        .unwrap();
    let data = terminal
        .cipher_data(&CipherData {
            mode: CipherMode::MacWithIv,
            data: vec![0u8; 12],
        })
        .unwrap();
    let tac_key = pboc::tac_key(&pboc::diversify(&key(MTK), &SERIAL)).unwrap();
    assert_eq!(data, mac::pboc(&tac_key, &[0u8; 4]).unwrap().to_vec());

    // The exact bytes on the wire for the purchase.
    let trace = terminal.transport().trace();
    assert_eq!(hx(&trace[1].command), "00B0960006");
    assert_eq!(hx(&trace[2].command), "00B095000E");
    assert_eq!(
        hx(&trace[3].command),
        "807000001C11223344000000001000062012022913510001001000000000000001 08".replace(' ', "")
    );

    // A PSAM that is gone.
    terminal.transport_mut().remove_card();
    assert_eq!(
        terminal.terminal_id().unwrap_err(),
        PsamError::Transport {
            command: "READ TERMINAL ID",
            source: TransportError::NoCard
        }
    );
    // Through a `&mut dyn Psam` too.
    terminal.transport_mut().insert_card();
    let dynamic: &mut dyn Psam = &mut terminal;
    assert_eq!(dynamic.terminal_id().unwrap(), TERMINAL);
}

#[test]
fn apdu_psam_reports_malformed_responses() {
    // A PSAM that answers 9000 with too few bytes.
    let mut terminal = ApduPsam::new(MemoryTransport::new(|_: &[u8]| h("0011 9000")));
    assert_eq!(
        terminal.terminal_id().unwrap_err().to_string(),
        "PSAM READ TERMINAL ID: malformed response: READ TERMINAL ID response: data must be 6 bytes, found 2"
    );
    assert_eq!(
        terminal
            .credit_for_purchase([0; 4])
            .unwrap_err()
            .to_string(),
        "PSAM CREDIT SAM FOR PURCHASE: malformed response: CREDIT SAM FOR PURCHASE response: data must be 0 bytes, found 2"
    );
    assert!(matches!(
        terminal.init_for_purchase(&init()),
        Err(PsamError::Response {
            command: "INIT SAM FOR PURCHASE",
            ..
        })
    ));
}

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

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_apdus_never_panic_the_psam() {
    const HEADERS: &[[u8; 4]] = &[
        [0x80, 0x70, 0x00, 0x00],
        [0x80, 0x72, 0x00, 0x00],
        [0x80, 0x1A, 0x02, 0x01],
        [0x80, 0x1A, 0x05, 0x02],
        [0x80, 0xFA, 0x00, 0x00],
        [0x80, 0xFA, 0x01, 0x00],
        [0x80, 0xFA, 0x03, 0x00],
        [0x80, 0xFA, 0x05, 0x00],
        [0x80, 0xFA, 0x07, 0x00],
        [0x00, 0xB0, 0x96, 0x00],
        [0x00, 0xB0, 0x95, 0x00],
        [0x00, 0xA4, 0x04, 0x00],
        [0x00, 0xC0, 0x00, 0x00],
    ];
    const ALLOWED: &[&str] = &[
        "9000", "6700", "6A86", "6A80", "6D00", "6E00", "6A82", "6985", "6A88", "9302",
    ];
    let mut rng = Rng(0x5053_414D);
    let mut psam = psam();
    let setup = [
        init().to_apdu().to_bytes().unwrap(),
        h("801A0201 08 1000000000000001"),
        h("80FA0700 08 0000000000000000"),
    ];
    for round in 0..30_000 {
        if round % 7 == 0 {
            psam.process(&setup[rng.below(3)]);
        }
        let capdu = match rng.below(3) {
            0 => {
                let len = rng.below(48);
                rng.bytes(len)
            }
            _ => {
                let mut capdu = HEADERS[rng.below(HEADERS.len() as u64)].to_vec();
                let len = match rng.below(4) {
                    0 => 4,
                    1 => 8,
                    2 => 0x1C,
                    _ => rng.below(60),
                };
                if len > 0 || rng.below(2) == 0 {
                    capdu.push(len as u8);
                    capdu.extend(rng.bytes(len));
                }
                if rng.below(2) == 0 {
                    capdu.push(rng.next() as u8);
                }
                capdu
            }
        };
        let response = psam.process(&capdu);
        assert!(response.len() >= 2, "{}", hx(&capdu));
        let sw = hx(&response[response.len() - 2..]);
        assert!(ALLOWED.contains(&sw.as_str()), "{} -> {sw}", hx(&capdu));
    }
}
