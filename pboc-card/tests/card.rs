#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The virtual card, driven through `process()` with exact APDU bytes.
//!
//! Expected MACs and TACs not published in the spec were recomputed independently (Python
//! `cryptography`, 3DES-ECB and the PBOC MAC written from the spec's definitions).

use pboc_card::card::{MAX_MAC_FAILURES, SW_COUNTER_LIMIT, TORN_RESPONSE};
use pboc_card::image::{CardImage, CardKey, IMAGE_FORMAT, KeyPurpose, PinState, Purse};
use pboc_card::{
    Application, FixedRandom, StatusWord, TearPoint, TransactionDetail, TransactionType,
    VirtualCard,
};
use pboc_sam::pboc::{purchase_mac1_input, purchase_session_key};
use pboc_sam::{DesKey, Pin};

const DEV_KEY: &str = "11223344556677888877665544332211";
const DTK: &str = "5A4B3C2D1E0F1A2B1122334455667788";
const DULK: &str = "2B7E151628AED2A6ABF7158809CF4F3C";
const DUK: &str = "3C4FCF098815F7ABA6D2AE2816157E2B";
const TERMINAL: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];

fn h(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).unwrap()
}

fn key(purpose: KeyPurpose, hex_key: &str) -> CardKey {
    CardKey {
        purpose,
        index: 0x01,
        version: 0x01,
        algorithm_id: 0x00,
        key: DesKey::from_hex(hex_key).unwrap(),
        mac_failures: 0,
    }
}

/// A card with an ED (balance 0) and an EP (balance 10000 fen), the development keys, no
/// PIN, counters at 0.
fn image() -> CardImage {
    CardImage {
        format: IMAGE_FORMAT,
        aid: h("A00000000386980701"),
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
            key(KeyPurpose::Purchase, DEV_KEY),
            key(KeyPurpose::Load, DEV_KEY),
            key(KeyPurpose::Tac, DTK),
            key(KeyPurpose::Unload, DULK),
            key(KeyPurpose::OverdrawUpdate, DUK),
        ],
        pin: None,
        record_capacity: 10,
        records: Vec::new(),
        capp_records: Vec::new(),
        proofs: Vec::new(),
    }
}

fn card_from(image: &CardImage) -> VirtualCard {
    VirtualCard::from_image(image, Box::new(FixedRandom::new([0x11, 0x22, 0x33, 0x44]))).unwrap()
}

fn card() -> VirtualCard {
    card_from(&image())
}

/// Sends hex APDU text, returns the response as upper-case hex.
fn send(card: &mut VirtualCard, apdu: &str) -> String {
    hex::encode_upper(card.process(&h(apdu)))
}

/// The load vector: INITIALIZE FOR LOAD (ED, 4096 fen) and CREDIT FOR LOAD.
fn load_vector(card: &mut VirtualCard) {
    assert_eq!(
        send(card, "805000010B 01 00001000 001122334455 10"),
        "00000000 0000 01 00 11223344 2988AE5A 9000".replace(' ', "")
    );
    assert_eq!(
        send(card, "805200000B 20111221 214822 3A845BF0 04"),
        "B5EFA318 9000".replace(' ', "")
    );
}

/// The purchase vector: INITIALIZE FOR PURCHASE (EP, 4096 fen) and DEBIT FOR PURCHASE.
fn purchase_vector(card: &mut VirtualCard) {
    assert_eq!(
        send(card, "805001020B 01 00001000 001122334455 0F"),
        "00002710 0000 000000 01 00 11223344 9000".replace(' ', "")
    );
    assert_eq!(
        send(card, "805401000F 00000001 20120229 135100 F15CAB75 08"),
        "BAE5A6B1 56988A13 9000".replace(' ', "")
    );
}

fn load_record() -> TransactionDetail {
    TransactionDetail {
        card_seq: 0,
        overdraw_limit: 0,
        amount: 0x1000,
        transaction_type: TransactionType::EdLoad,
        terminal: TERMINAL,
        date: [0x20, 0x11, 0x12, 0x21],
        time: [0x21, 0x48, 0x22],
    }
}

fn purchase_record() -> TransactionDetail {
    TransactionDetail {
        card_seq: 0,
        overdraw_limit: 0,
        amount: 0x1000,
        transaction_type: TransactionType::EpPurchase,
        terminal: TERMINAL,
        date: [0x20, 0x12, 0x02, 0x29],
        time: [0x13, 0x51, 0x00],
    }
}

/// MAC1 as a PSAM computes it, with the development DPK.
fn psam_mac1(
    random: [u8; 4],
    offline_seq: u16,
    terminal_seq: u32,
    amount: u32,
    tx_type: u8,
    date: [u8; 4],
    time: [u8; 3],
) -> [u8; 4] {
    let dpk = DesKey::from_hex(DEV_KEY).unwrap();
    let sespk = purchase_session_key(&dpk, &random, offline_seq, terminal_seq);
    pboc_sam::mac::pboc(
        &sespk,
        &purchase_mac1_input(amount, tx_type, &TERMINAL, &date, &time),
    )
    .unwrap()
}

#[test]
fn load_vector_through_the_card() {
    let mut card = card();
    load_vector(&mut card);
    assert_eq!(card.balance(Application::Ed), Some(4096));
    assert_eq!(card.online_seq(Application::Ed), Some(1));
    assert_eq!(card.offline_seq(Application::Ed), Some(0));
    assert_eq!(card.balance(Application::Ep), Some(10_000));
    assert_eq!(send(&mut card, "805C000104"), "000010009000");
    assert_eq!(card.records(), vec![load_record()]);
    assert_eq!(
        send(&mut card, "00B201C417"),
        "0000 000000 00001000 01 001122334455 20111221 214822 9000".replace(' ', "")
    );
    // The proof of the load: the MAC2 it carried, then the TAC.
    assert_eq!(send(&mut card, "805A000102000008"), "3A845BF0B5EFA3189000");
}

#[test]
fn purchase_vector_through_the_card() {
    let mut card = card();
    purchase_vector(&mut card);
    assert_eq!(card.balance(Application::Ep), Some(10_000 - 4096));
    assert_eq!(card.offline_seq(Application::Ep), Some(1));
    assert_eq!(card.online_seq(Application::Ep), Some(0));
    assert_eq!(send(&mut card, "805C000204"), "000017109000");
    assert_eq!(card.records(), vec![purchase_record()]);
    assert_eq!(send(&mut card, "805A000602000008"), "56988A13BAE5A6B19000");
    // The card answers the vector's MAC1 with exactly these TAC and MAC2 whatever the
    // bytes of the reference functions say too.
    let tk = pboc_sam::pboc::tac_key(&DesKey::from_hex(DTK).unwrap()).unwrap();
    let tac = pboc_sam::mac::pboc(
        &tk,
        &pboc_sam::pboc::purchase_tac_input(
            0x1000,
            0x06,
            &TERMINAL,
            1,
            &[0x20, 0x12, 0x02, 0x29],
            &[0x13, 0x51, 0x00],
        ),
    )
    .unwrap();
    assert_eq!(tac, [0xBA, 0xE5, 0xA6, 0xB1]);
}

#[test]
fn records_after_a_load_and_a_purchase() {
    let mut card = card();
    load_vector(&mut card);
    purchase_vector(&mut card);
    assert_eq!(card.records(), vec![purchase_record(), load_record()]);
    assert_eq!(
        send(&mut card, "00B201C417"),
        "0000 000000 00001000 06 001122334455 20120229 135100 9000".replace(' ', "")
    );
    assert_eq!(
        send(&mut card, "00B202C400"),
        "0000 000000 00001000 01 001122334455 20111221 214822 9000".replace(' ', "")
    );
    assert_eq!(send(&mut card, "00B203C417"), "6A83");
    assert_eq!(send(&mut card, "00B200C417"), "6A83");
    assert_eq!(send(&mut card, "00B201C410"), "6C17");
    assert_eq!(send(&mut card, "00B201CC17"), "6A82");
    assert_eq!(send(&mut card, "00B2010417"), "6A82");
}

#[test]
fn the_record_file_is_cyclic() {
    let mut image = image();
    image.record_capacity = 2;
    image.ep = Some(Purse::new(3, 100));
    let mut card = card_from(&image);
    let date = [0x20, 0x24, 0x01, 0x02];
    let time = [0x03, 0x04, 0x05];
    for seq in 0..3u16 {
        let init = send(&mut card, "805001020B 01 00000001 001122334455 0F");
        assert!(init.ends_with("9000"), "{init}");
        let mac1 = psam_mac1([0x11, 0x22, 0x33, 0x44], seq, 7, 1, 0x06, date, time);
        let debit = send(
            &mut card,
            &format!(
                "805401000F 00000007 20240102 030405 {} 08",
                hex::encode(mac1)
            ),
        );
        assert!(debit.ends_with("9000"), "{debit}");
    }
    let seqs: Vec<u16> = card.records().iter().map(|r| r.card_seq).collect();
    assert_eq!(seqs, vec![2, 1]);
    assert_eq!(card.balance(Application::Ep), Some(0));
    assert_eq!(send(&mut card, "00B203C417"), "6A83");
    // Empty now: the next purchase of 1 fen is refused.
    assert_eq!(
        send(&mut card, "805001020B 01 00000001 001122334455 0F"),
        "9401"
    );
}

#[test]
fn wrong_mac2_is_refused_before_crediting_and_ends_the_transaction() {
    let mut card = card();
    send(&mut card, "805000010B 01 00001000 001122334455 10");
    assert_eq!(
        send(&mut card, "805200000B 20111221 214822 3A845BF1 04"),
        "9302"
    );
    assert_eq!(card.balance(Application::Ed), Some(0));
    assert_eq!(card.online_seq(Application::Ed), Some(0));
    assert!(card.records().is_empty());
    assert_eq!(card.mac_failures(KeyPurpose::Load, 1), Some(1));
    // The transaction is over: the right MAC2 now finds nothing to complete.
    assert_eq!(
        send(&mut card, "805200000B 20111221 214822 3A845BF0 04"),
        "6985"
    );
    // A correct MAC resets the count.
    load_vector(&mut card);
    assert_eq!(card.mac_failures(KeyPurpose::Load, 1), Some(0));
}

#[test]
fn a_key_blocks_after_consecutive_mac_failures() {
    let mut card = card();
    for n in 1..=MAX_MAC_FAILURES {
        send(&mut card, "805001020B 01 00001000 001122334455 0F");
        assert_eq!(
            send(&mut card, "805401000F 00000001 20120229 135100 00000000 08"),
            "9302"
        );
        assert_eq!(card.mac_failures(KeyPurpose::Purchase, 1), Some(n));
    }
    assert_eq!(
        send(&mut card, "805001020B 01 00001000 001122334455 0F"),
        "6983"
    );
    assert_eq!(card.balance(Application::Ep), Some(10_000));
    // Other keys still work, and the block survives an image round trip.
    load_vector(&mut card);
    let mut again = card_from(&card.image());
    assert_eq!(
        send(&mut again, "805001020B 01 00001000 001122334455 0F"),
        "6983"
    );
}

#[test]
fn completing_commands_need_their_initialize_immediately_before() {
    let mut card = card();
    assert_eq!(
        send(&mut card, "805200000B 20111221 214822 3A845BF0 04"),
        "6985"
    );
    assert_eq!(
        send(&mut card, "805401000F 00000001 20120229 135100 F15CAB75 08"),
        "6985"
    );
    assert_eq!(
        send(&mut card, "805403000B 20240102 030405 4BD25DDD 04"),
        "6985"
    );
    assert_eq!(
        send(&mut card, "805800000E 0001F4 20240102 030405 CA54BB07 04"),
        "6985"
    );
    // The wrong completion for the pending transaction.
    send(&mut card, "805000010B 01 00001000 001122334455 10");
    assert_eq!(
        send(&mut card, "805401000F 00000001 20120229 135100 F15CAB75 08"),
        "6985"
    );
    // Any command in between cancels, even GET BALANCE or a malformed one.
    send(&mut card, "805000010B 01 00001000 001122334455 10");
    assert_eq!(send(&mut card, "805C000104"), "000000009000");
    assert_eq!(
        send(&mut card, "805200000B 20111221 214822 3A845BF0 04"),
        "6985"
    );
    send(&mut card, "805000010B 01 00001000 001122334455 10");
    assert!(card.has_pending_transaction());
    assert_eq!(send(&mut card, "80"), "6700");
    assert!(!card.has_pending_transaction());
    assert_eq!(
        send(&mut card, "805200000B 20111221 214822 3A845BF0 04"),
        "6985"
    );
    assert_eq!(card.balance(Application::Ed), Some(0));
    // UPDATE CAPP DATA CACHE only belongs in a CAPP purchase.
    send(&mut card, "805001020B 01 00001000 001122334455 0F");
    assert_eq!(send(&mut card, "80DC0108 04 DEADBEEF"), "6985");
}

#[test]
fn error_status_words() {
    let mut card = card();
    // Insufficient balance (EP 10000 fen).
    assert_eq!(
        send(&mut card, "805001020B 01 00002711 001122334455 0F"),
        "9401"
    );
    // Unknown key index.
    assert_eq!(
        send(&mut card, "805001020B 02 00000001 001122334455 0F"),
        "9403"
    );
    assert_eq!(
        send(&mut card, "805000020B 07 00000001 001122334455 10"),
        "9403"
    );
    // Bad P1/P2.
    assert_eq!(
        send(&mut card, "805001030B 01 00000001 001122334455 0F"),
        "6A86"
    );
    assert_eq!(
        send(&mut card, "805007020B 01 00000001 001122334455 0F"),
        "6A86"
    );
    assert_eq!(send(&mut card, "805C000304"), "6A86");
    assert_eq!(send(&mut card, "805A00FF02000008"), "6A86");
    // Unknown INS and CLA.
    assert_eq!(send(&mut card, "80CA9F7900"), "6D00");
    assert_eq!(send(&mut card, "905C000204"), "6E00");
    // Wrong lengths.
    assert_eq!(
        send(&mut card, "805001020A 01 000001 001122334455 0F"),
        "6700"
    );
    assert_eq!(
        send(&mut card, "805200000A 20111221 214822 3A845B 04"),
        "6700"
    );
    assert_eq!(send(&mut card, "805C0002 02 0000"), "6700");
    assert_eq!(send(&mut card, ""), "6700");
    assert_eq!(send(&mut card, "00B201C4"), "6700");
    // A transaction proof the card does not have.
    assert_eq!(send(&mut card, "805A000602000008"), "9406");
    // GET RESPONSE with nothing waiting.
    assert_eq!(send(&mut card, "00C0000004"), "6985");
    // An application the card does not have.
    let mut ep_only = image();
    ep_only.ed = None;
    let mut ep_card = card_from(&ep_only);
    assert_eq!(send(&mut ep_card, "805C000104"), "6A86");
    assert_eq!(
        send(&mut ep_card, "805000010B 01 00001000 001122334455 10"),
        "6A86"
    );
    // A card without DTK cannot give TACs.
    let mut no_dtk = image();
    no_dtk.keys.retain(|k| k.purpose != KeyPurpose::Tac);
    let mut no_dtk_card = card_from(&no_dtk);
    assert_eq!(
        send(&mut no_dtk_card, "805001020B 01 00000001 001122334455 0F"),
        "9406"
    );
}

#[test]
fn a_load_above_the_maximum_balance_is_refused() {
    let mut image = image();
    image.ep = Some(Purse::new(99_000, 100_000));
    let mut card = card_from(&image);
    assert_eq!(
        send(&mut card, "805000020B 01 000003E9 001122334455 10"),
        "6985"
    );
    assert!(send(&mut card, "805000020B 01 000003E8 001122334455 10").ends_with("9000"));
}

#[test]
fn exhausted_counters_refuse_new_transactions() {
    let mut image = image();
    if let Some(ep) = image.ep.as_mut() {
        ep.offline_seq = u16::MAX;
        ep.online_seq = u16::MAX;
    }
    let mut card = card_from(&image);
    let sw = hex::encode_upper(SW_COUNTER_LIMIT.to_bytes());
    assert_eq!(sw, "9402");
    assert_eq!(
        send(&mut card, "805001020B 01 00000001 001122334455 0F"),
        sw
    );
    assert_eq!(
        send(&mut card, "805000020B 01 00000001 001122334455 10"),
        sw
    );
}

#[test]
fn a_locked_application_answers_9303() {
    let mut card = card();
    card.lock();
    assert!(card.is_locked());
    assert_eq!(send(&mut card, "805C000204"), "9303");
    assert_eq!(
        send(&mut card, "805001020B 01 00000001 001122334455 0F"),
        "9303"
    );
    assert_eq!(send(&mut card, "0020000003123456"), "9303");
    // Selection and reading still work, so a terminal can tell which card it is.
    assert!(send(&mut card, "00A4040009A0000000038698070100").ends_with("9000"));
    assert_eq!(send(&mut card, "00B201C417"), "6A83");
    let image = card.image();
    assert!(image.locked);
    let mut again = card_from(&image);
    assert_eq!(send(&mut again, "805C000204"), "9303");
}

#[test]
fn pin_try_counter_and_ed_access() {
    let mut image = image();
    image.pin = Some(PinState {
        digits: Pin::new("123456").unwrap(),
        tries_left: 3,
        max_tries: 3,
    });
    let mut card = card_from(&image);
    // The ED needs the PIN; the EP does not.
    assert_eq!(send(&mut card, "805C000104"), "6982");
    assert_eq!(
        send(&mut card, "805000010B 01 00001000 001122334455 10"),
        "6982"
    );
    assert_eq!(send(&mut card, "805C000204"), "000027109000");
    // Wrong PINs count down.
    assert_eq!(send(&mut card, "0020000003123457"), "63C2");
    assert_eq!(send(&mut card, "002000000312345F"), "63C1");
    assert_eq!(card.pin_tries_left(), Some(1));
    // The right PIN restores the tries and opens the ED.
    assert_eq!(send(&mut card, "0020000003123456"), "9000");
    assert_eq!(card.pin_tries_left(), Some(3));
    assert!(card.pin_verified());
    load_vector(&mut card);
    // SELECT closes the session again.
    assert!(send(&mut card, "00A4040009A0000000038698070100").ends_with("9000"));
    assert_eq!(send(&mut card, "805C000104"), "6982");
    // Bad BCD is refused without counting.
    assert_eq!(send(&mut card, "00200000031234A6"), "6A80");
    assert_eq!(card.pin_tries_left(), Some(3));
    for left in ["63C2", "63C1", "63C0"] {
        assert_eq!(send(&mut card, "0020000003654321"), left);
    }
    assert_eq!(send(&mut card, "0020000003123456"), "6983");
    assert_eq!(card.pin_tries_left(), Some(0));
    // A card without a PIN has nothing to verify.
    let mut no_pin = card_from(&self::image());
    assert_eq!(send(&mut no_pin, "0020000003123456"), "6A88");
}

#[test]
fn tear_after_commit_then_transaction_proof() {
    let mut card = card();
    send(&mut card, "805001020B 01 00001000 001122334455 0F");
    card.set_tear(TearPoint::AfterCommitBeforeResponse);
    let torn = card.process(&h("805401000F 00000001 20120229 135100 F15CAB75 08"));
    assert_eq!(torn, TORN_RESPONSE);
    assert!(torn.is_empty());
    // Committed: balance, counter and record are there; the proof has MAC2 and TAC.
    assert_eq!(card.balance(Application::Ep), Some(10_000 - 4096));
    assert_eq!(card.offline_seq(Application::Ep), Some(1));
    assert_eq!(card.records(), vec![purchase_record()]);
    assert_eq!(send(&mut card, "805A000602000008"), "56988A13BAE5A6B19000");
    assert_eq!(send(&mut card, "805A000602000108"), "9406");
    assert_eq!(send(&mut card, "805A000502000008"), "9406");
    // One shot: the next transaction answers normally.
    send(&mut card, "805000010B 01 00001000 001122334455 10");
    assert_eq!(
        send(&mut card, "805200000B 20111221 214822 3A845BF0 04"),
        "B5EFA3189000"
    );
}

#[test]
fn tear_after_commit_of_a_load() {
    let mut card = card();
    send(&mut card, "805000010B 01 00001000 001122334455 10");
    card.set_tear(TearPoint::AfterCommitBeforeResponse);
    assert!(
        card.process(&h("805200000B 20111221 214822 3A845BF0 04"))
            .is_empty()
    );
    assert_eq!(card.balance(Application::Ed), Some(4096));
    assert_eq!(send(&mut card, "805A000102000008"), "3A845BF0B5EFA3189000");
}

#[test]
fn tear_before_commit_changes_nothing() {
    let mut card = card();
    send(&mut card, "805001020B 01 00001000 001122334455 0F");
    card.set_tear(TearPoint::BeforeCommit);
    assert!(
        card.process(&h("805401000F 00000001 20120229 135100 F15CAB75 08"))
            .is_empty()
    );
    assert_eq!(card.balance(Application::Ep), Some(10_000));
    assert_eq!(card.offline_seq(Application::Ep), Some(0));
    assert!(card.records().is_empty());
    assert_eq!(send(&mut card, "805A000602000008"), "9406");
    // The pending transaction died with the power: retrying the DEBIT is refused.
    assert_eq!(
        send(&mut card, "805401000F 00000001 20120229 135100 F15CAB75 08"),
        "6985"
    );
    // A tear only fires on a completing command.
    card.set_tear(TearPoint::BeforeCommit);
    assert_eq!(send(&mut card, "805C000204"), "000027109000");
    card.clear_tear();
    purchase_vector(&mut card);
}

#[test]
fn ed_unload() {
    let mut image = image();
    image.ed = Some(Purse {
        balance: 5000,
        online_seq: 3,
        ..Purse::new(0, 1_000_000)
    });
    let mut card = card_from(&image);
    assert_eq!(
        send(&mut card, "805005010B 01 00001389 001122334455 10"),
        "9401"
    );
    assert_eq!(
        send(&mut card, "805005010B 01 000003E8 001122334455 10"),
        "00001388 0003 01 00 11223344 F3D8E4A1 9000".replace(' ', "")
    );
    assert_eq!(
        send(&mut card, "805403000B 20240102 030405 4BD25DDD 04"),
        "930694E59000"
    );
    assert_eq!(card.balance(Application::Ed), Some(4000));
    assert_eq!(card.online_seq(Application::Ed), Some(4));
    assert_eq!(
        card.records(),
        vec![TransactionDetail {
            card_seq: 3,
            overdraw_limit: 0,
            amount: 1000,
            transaction_type: TransactionType::Unload,
            terminal: TERMINAL,
            date: [0x20, 0x24, 0x01, 0x02],
            time: [0x03, 0x04, 0x05],
        }]
    );
    assert_eq!(send(&mut card, "805A000302000308"), "4BD25DDD930694E59000");
    // A wrong MAC2 is refused.
    send(&mut card, "805005010B 01 000003E8 001122334455 10");
    assert_eq!(
        send(&mut card, "805403000B 20240102 030405 4BD25DDD 04"),
        "9302"
    );
    assert_eq!(card.mac_failures(KeyPurpose::Unload, 1), Some(1));
    assert_eq!(card.balance(Application::Ed), Some(4000));
}

#[test]
fn ed_overdraw_limit_update_and_overdrawn_purchase() {
    let mut image = image();
    image.ed = Some(Purse {
        balance: 5000,
        online_seq: 3,
        overdraw_limit: 100,
        ..Purse::new(0, 1_000_000)
    });
    let mut card = card_from(&image);
    assert_eq!(
        send(&mut card, "805004010701 001122334455 13"),
        "00001388 0003 000064 01 00 11223344 B5EAA26C 9000".replace(' ', "")
    );
    assert_eq!(
        send(&mut card, "805800000E 0001F4 20240102 030405 CA54BB07 04"),
        "2CB536469000"
    );
    let ed = card.purse(Application::Ed).copied().unwrap();
    assert_eq!(
        (ed.overdraw_limit, ed.online_seq, ed.balance),
        (500, 4, 5000)
    );
    assert_eq!(
        card.records()[0],
        TransactionDetail {
            card_seq: 3,
            overdraw_limit: 500,
            amount: 0,
            transaction_type: TransactionType::EdOverdrawUpdate,
            terminal: TERMINAL,
            date: [0x20, 0x24, 0x01, 0x02],
            time: [0x03, 0x04, 0x05],
        }
    );
    // Now 5000 + 500 may be spent, not a fen more.
    assert_eq!(
        send(&mut card, "805001010B 01 0000157D 001122334455 0F"),
        "9401"
    );
    assert_eq!(
        send(&mut card, "805001010B 01 0000157C 001122334455 0F"),
        "00001388 0000 0001F4 01 00 11223344 9000".replace(' ', "")
    );
    let date = [0x20, 0x24, 0x01, 0x02];
    let time = [0x03, 0x04, 0x05];
    let mac1 = psam_mac1([0x11, 0x22, 0x33, 0x44], 0, 9, 5500, 0x05, date, time);
    let debit = send(
        &mut card,
        &format!(
            "805401000F 00000009 20240102 030405 {} 08",
            hex::encode(mac1)
        ),
    );
    assert!(debit.ends_with("9000") && debit.len() == 20, "{debit}");
    let ed = card.purse(Application::Ed).copied().unwrap();
    assert_eq!((ed.balance, ed.overdrawn, ed.offline_seq), (0, 500, 1));
    assert_eq!(
        send(&mut card, "805001010B 01 00000001 001122334455 0F"),
        "9401"
    );
    // A load repays the overdraw first: the MAC1 shows balance 0.
    let init = send(&mut card, "805000010B 01 00000258 001122334455 10");
    assert!(init.starts_with("000000000004"), "{init}");
}

#[test]
fn ed_cash_withdrawal() {
    let mut image = image();
    image.ed = Some(Purse::new(5000, 1_000_000));
    let mut card = card_from(&image);
    assert_eq!(
        send(&mut card, "805002010B 01 000003E8 001122334455 0F"),
        "00001388 0000 000000 01 00 11223344 9000".replace(' ', "")
    );
    assert_eq!(
        send(&mut card, "805401000F 00000005 20240102 030405 627346AF 08"),
        "C738262F 8416EDEC 9000".replace(' ', "")
    );
    assert_eq!(card.balance(Application::Ed), Some(4000));
    assert_eq!(card.offline_seq(Application::Ed), Some(1));
    assert_eq!(
        card.records(),
        vec![TransactionDetail {
            card_seq: 0,
            overdraw_limit: 0,
            amount: 1000,
            transaction_type: TransactionType::EdCashWithdrawal,
            terminal: TERMINAL,
            date: [0x20, 0x24, 0x01, 0x02],
            time: [0x03, 0x04, 0x05],
        }]
    );
    assert_eq!(send(&mut card, "805A000402000008"), "8416EDECC738262F9000");
    // Cash withdrawal is an ED command: P2 02 is refused.
    assert_eq!(
        send(&mut card, "805002020B 01 000003E8 001122334455 0F"),
        "6A86"
    );
}

#[test]
fn capp_purchase_with_a_data_cache_update() {
    let mut card = card();
    assert_eq!(
        send(&mut card, "805003020B 01 00000064 001122334455 0F"),
        "00002710 0000 000000 01 00 11223344 9000".replace(' ', "")
    );
    assert_eq!(send(&mut card, "80DC0108 04 DEADBEEF"), "9000");
    // Not written before the DEBIT.
    assert_eq!(card.capp_record(1, 1), None);
    assert_eq!(
        send(&mut card, "805401000F 00000002 20240102 030405 04D327CF 08"),
        "01E0E8F6 891E2DED 9000".replace(' ', "")
    );
    assert_eq!(card.capp_record(1, 1), Some(&[0xDE, 0xAD, 0xBE, 0xEF][..]));
    assert_eq!(send(&mut card, "00B2010C00"), "DEADBEEF9000");
    assert_eq!(send(&mut card, "00B2020C00"), "6A83");
    assert_eq!(card.balance(Application::Ep), Some(9900));
    assert_eq!(
        card.records()[0].transaction_type,
        TransactionType::CompositePurchase
    );
    assert_eq!(send(&mut card, "805A000902000008"), "891E2DED01E0E8F69000");
    // A failed DEBIT writes no cache.
    send(&mut card, "805003020B 01 00000064 001122334455 0F");
    send(&mut card, "80DC0210 02 CAFE");
    assert_eq!(
        send(&mut card, "805401000F 00000003 20240102 030405 00000000 08"),
        "9302"
    );
    assert_eq!(card.capp_record(2, 2), None);
}

#[test]
fn select_fci_and_public_data() {
    let mut card = card();
    let public = "3100000000000000 03 01 0000 0000000000000001 20110101 20301231 0000";
    assert_eq!(
        send(&mut card, "00A4040009A0000000038698070100"),
        format!("6F32 8409A00000000386980701 A525 9F080101 BF0C1E {public} 9000").replace(' ', "")
    );
    assert_eq!(send(&mut card, "00A4040009A0000000038698070200"), "6A82");
    assert_eq!(
        send(&mut card, "00B0950000"),
        format!("{public} 9000").replace(' ', "")
    );
    assert_eq!(
        send(&mut card, "00B0950C08"),
        "0000000000000001 9000".replace(' ', "")
    );
    assert_eq!(send(&mut card, "00B0951C04"), "6C02");
    assert_eq!(send(&mut card, "00B0951F00"), "6B00");
    assert_eq!(send(&mut card, "00B0960000"), "6A82");
    assert_eq!(card.serial(), [0, 0, 0, 0, 0, 0, 0, 1]);
}

#[test]
fn image_round_trip_is_exact() {
    let mut card = card();
    load_vector(&mut card);
    purchase_vector(&mut card);
    send(&mut card, "805001020B 01 00000001 001122334455 0F");
    send(&mut card, "805401000F 00000001 20120229 135100 00000000 08");
    let image = card.image();
    assert_eq!(image.records.len(), 2);
    assert_eq!(image.proofs.len(), 2);
    let json = image.to_json().unwrap();
    let parsed = CardImage::from_json(&json).unwrap();
    assert_eq!(parsed, image);
    let reloaded = card_from(&parsed);
    assert_eq!(reloaded.image(), image);
    assert_eq!(reloaded.records(), card.records());
    assert_eq!(reloaded.mac_failures(KeyPurpose::Purchase, 1), Some(1));
    // The same commands give the same answers on the reloaded card.
    let mut a = card_from(&image);
    let mut b = reloaded;
    for apdu in [
        "805000020B 01 00000064 001122334455 10",
        "805A000602000008",
        "00B202C417",
    ] {
        assert_eq!(send(&mut a, apdu), send(&mut b, apdu));
    }
    // The JSON carries keys as hex (it is a secret artifact) ...
    assert!(json.contains(DEV_KEY));
    // ... but Debug shows only check values.
    let debug = format!("{image:?} {card:?}");
    assert!(!debug.contains(DEV_KEY) && !debug.contains(DTK), "{debug}");
    assert!(debug.contains("kcv"));
}

#[test]
fn pin_is_in_the_image_but_never_in_debug() {
    let mut image = image();
    image.pin = Some(PinState {
        digits: Pin::new("908172").unwrap(),
        tries_left: 2,
        max_tries: 3,
    });
    let json = image.to_json().unwrap();
    assert!(json.contains("\"digits\": \"908172\""), "{json}");
    assert_eq!(CardImage::from_json(&json).unwrap(), image);
    let debug = format!("{image:?}");
    assert!(!debug.contains("908172"));
    let card = card_from(&image);
    assert!(!format!("{card:?}").contains("908172"));
}

#[test]
fn invalid_images_are_refused() {
    type Breaker = Box<dyn Fn(&mut CardImage)>;
    let cases: Vec<(Breaker, &str)> = vec![
        (Box::new(|i| i.format = 2), "format 2"),
        (Box::new(|i| i.aid = vec![0xA0; 4]), "aid"),
        (
            Box::new(|i| {
                i.ed = None;
                i.ep = None;
            }),
            "at least one application",
        ),
        (
            Box::new(|i| {
                i.ep = Some(Purse {
                    overdraw_limit: 1,
                    ..Purse::new(0, 10)
                })
            }),
            "an EP has no overdraw limit",
        ),
        (
            Box::new(|i| i.ep = Some(Purse::new(11, 10))),
            "exceeds max_balance",
        ),
        (
            Box::new(|i| i.keys.push(key(KeyPurpose::Load, DTK))),
            "DLK index 01 appears twice",
        ),
        (
            Box::new(|i| i.keys[0].key = DesKey::from_hex("0123456789ABCDEF").unwrap()),
            "must be 16 bytes",
        ),
        (Box::new(|i| i.keys[0].mac_failures = 4), "mac_failures"),
        (Box::new(|i| i.record_capacity = 0), "record_capacity"),
        (
            Box::new(|i| i.valid_from = [0x20, 0x1A, 0, 0]),
            "valid_from",
        ),
    ];
    for (break_it, expected) in cases {
        let mut image = image();
        break_it(&mut image);
        let error = VirtualCard::from_image(&image, Box::new(FixedRandom::new([0; 4])))
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{error} / {expected}");
    }
    let error = CardImage::from_json("{\"format\": 1}")
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("card image JSON:"), "{error}");
}

#[test]
fn exchange_gives_typed_responses() {
    use pboc_card::command::{GetBalance, GetBalanceResponse};
    let mut card = card();
    let response = card
        .exchange(
            &GetBalance {
                application: Application::Ep,
            }
            .to_apdu(),
        )
        .unwrap();
    assert_eq!(response.sw, StatusWord::Success);
    assert_eq!(
        GetBalanceResponse::parse(&response.data).unwrap().balance,
        10_000
    );
}

/// SplitMix64, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[test]
fn random_apdus_never_panic_and_always_answer_a_status_word() {
    let mut image = image();
    image.pin = Some(PinState {
        digits: Pin::new("1234").unwrap(),
        tries_left: 15,
        max_tries: 15,
    });
    let mut card = card_from(&image);
    let mut rng = Rng(7);
    let headers: [[u8; 2]; 10] = [
        [0x80, 0x50],
        [0x80, 0x52],
        [0x80, 0x54],
        [0x80, 0x58],
        [0x80, 0x5A],
        [0x80, 0x5C],
        [0x80, 0xDC],
        [0x00, 0xB2],
        [0x00, 0xB0],
        [0x00, 0x20],
    ];
    for _ in 0..20_000 {
        let len = (rng.next() % 24) as usize;
        let mut apdu: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if len >= 2 && !rng.next().is_multiple_of(4) {
            let header = headers[(rng.next() % headers.len() as u64) as usize];
            apdu[..2].copy_from_slice(&header);
        }
        let response = card.process(&apdu);
        assert!(response.len() >= 2, "{}", hex::encode(&apdu));
    }
    assert!(card.image().validate().is_ok());
}
