#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The POS simulator against a small fake front end speaking `cups-pos` framing: exact
//! sign-in bytes, PIN block and MAC checked by the fake, reversals resent until answered,
//! bad response MACs, the purse load with MAC2 from pboc-sam, settlement totals, the load
//! generator's counts and the terminals file.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iso8583_wire::frame::FrameConfig;
use iso8583_wire::tlv::{Tag, TlvBuilder, TlvReader};
use iso8583_wire::{MessageBuf, decode, specs};
use pboc_card::personalize::{IssuerProfile, personalize};
use pboc_card::{Application, FixedRandom, VirtualCard};
use pboc_sam::keyexchange::{self, Field62Layout, WorkingKeys};
use pboc_sam::pinblock::{self, Pan, Pin, PinBlockFormat};
use pboc_sam::transport::MemoryTransport;
use pboc_sam::{DesKey, mac, pboc};
use posp_node::possim::{
    Card, CardHolder, LoadConfig, Mix, Operation, RecordKind, Status, Terminal, TerminalConfig,
    TerminalEntry, TerminalsFile, TerminalsFileError, run_load, write_terminals_file,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The development example of the UnionPay field 62 (shared/spec/unionpay-pos.md).
const TMK: &str = "CA5D92598DCA48CE8A4C76361A9269E9";
const PIK: &str = "807A23AD32B36D457AE91FDF927570EA";
const MAK: &str = "5BB5C72CD00B7338";
const FIELD62: &str = concat!(
    "6701EAD6A9AD51E51AA406E2C27FCFA9",
    "8D0A74B8",
    "B651F9E9BACE9AE1",
    "0000000000000000",
    "AB7153CA"
);

const PAN: &str = "6212340000000001";
const PIN: &str = "123456";

fn key(hex: &str) -> DesKey {
    DesKey::from_hex(hex).unwrap()
}

/// Purse-load test keys (issuer masters) and the city factor.
const DLK: &str = "11223344556677888877665544332211";
const DTK: &str = "5A4B3C2D1E0F1A2B1122334455667788";
const DPK: &str = "0123456789ABCDEFFEDCBA9876543210";
const CITY: [u8; 8] = [0, 0, 0, 0, 0, 0, 0x31, 0];
const HOST_DATE: [u8; 4] = [0x20, 0x24, 0x05, 0x01];
const HOST_TIME: [u8; 3] = [0x12, 0x30, 0x00];

fn df(n: u32) -> Tag {
    Tag::new(0xDF00 | n).unwrap()
}

fn tlv(data: &[u8], wanted: Tag) -> Option<Vec<u8>> {
    TlvReader::new(data)
        .map(|t| t.unwrap())
        .find(|t| t.tag() == wanted)
        .map(|t| t.value().to_vec())
}

/// What a purchase request looked like to the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SeenPurchase {
    stan: u32,
    mac_ok: bool,
    clear_block: String,
    pin_ok: bool,
    f22: String,
    f53: String,
    f14: String,
    f35: String,
}

/// The fake front end's knobs and what it saw.
#[derive(Default)]
struct State {
    /// (MTI, STAN) of every request, in order.
    log: Vec<(String, u32)>,
    purchases: Vec<SeenPurchase>,
    /// Reversals: STAN, field 39, field 61, MAC verified.
    reversals: Vec<(u32, String, String, bool)>,
    settlements: Vec<String>,
    /// Answer the first N purchases with nothing.
    drop_purchases: usize,
    /// Ignore the first N reversals.
    ignore_reversals: usize,
    /// Flip a bit in the MAC of purchase and balance answers.
    corrupt_mac: bool,
    /// Answer purchases with bytes that are not a message.
    garbage: bool,
    /// Load confirmations: TAC (DF13) and field 61.
    confirmations: Vec<(Vec<u8>, String)>,
    /// The load answer's MAC1 check.
    mac1_ok: Vec<bool>,
}

fn mac_ok(body: &[u8]) -> bool {
    let n = body.len();
    mac::pos_ecb(&key(MAK), &body[..n - 8]) == body[n - 8..]
}

/// The answer to `req`: the request's fields without card and security data, `mti`, 39
/// and `extra`, MACed under the MAK when `with_mac`.
fn answer(req: &[u8], mti: &str, code: &str, extra: Vec<(u16, String)>, with_mac: bool) -> Vec<u8> {
    let msg = decode(specs::cups_pos(), req).unwrap();
    let mut m = msg.to_buf();
    m.set_mti(mti).unwrap();
    for n in [14u16, 22, 25, 26, 35, 48, 52, 53, 55, 61, 63, 64] {
        m.remove(n);
    }
    m.set(39, code.to_owned());
    for (n, v) in extra {
        m.set(n, v);
    }
    finish(m, with_mac)
}

fn finish(mut m: MessageBuf<'_>, with_mac: bool) -> Vec<u8> {
    if !with_mac {
        return m.to_vec(specs::cups_pos()).unwrap();
    }
    m.set(64, vec![0u8; 8]);
    let mut body = m.to_vec(specs::cups_pos()).unwrap();
    let n = body.len();
    let mac = mac::pos_ecb(&key(MAK), &body[..n - 8]);
    body[n - 8..].copy_from_slice(&mac);
    body
}

fn text(msg: &iso8583_wire::Message<'_>, n: u16) -> String {
    msg.field(n).map(|f| f.to_string()).unwrap_or_default()
}

/// The fake front end's behaviour for one request.
fn handle(state: &Mutex<State>, req: &[u8]) -> Option<Vec<u8>> {
    let msg = decode(specs::cups_pos(), req).unwrap();
    let mti = msg.mti().to_owned();
    let stan: u32 = text(&msg, 11).parse().unwrap();
    let mut st = state.lock().unwrap();
    st.log.push((mti.clone(), stan));
    let f3 = text(&msg, 3);
    let rrn = format!("{stan:012}");
    let common = |extra: &[(u16, &str)]| {
        let mut v: Vec<(u16, String)> = vec![
            (12, "101500".to_owned()),
            (13, "0501".to_owned()),
            (37, rrn.clone()),
        ];
        v.extend(extra.iter().map(|(n, s)| (*n, (*s).to_owned())));
        v
    };
    match (mti.as_str(), f3.as_str()) {
        ("0800", _) => {
            let keys = WorkingKeys {
                pik: key(PIK),
                mak: key(MAK),
                tdk: None,
            };
            let f62 =
                keyexchange::build_field62(&key(TMK), &keys, Field62Layout::Double40).unwrap();
            assert_eq!(hex::encode_upper(&f62), FIELD62);
            let mut m = decode(
                specs::cups_pos(),
                &answer(req, "0810", "00", common(&[]), false),
            )
            .unwrap()
            .to_buf()
            .into_owned();
            m.set(62, f62);
            Some(finish(m, false))
        }
        ("0820", _) => Some(answer(req, "0830", "00", vec![], false)),
        ("0200", "310000") => {
            let code = if mac_ok(req) { "00" } else { "A0" };
            let mut a = answer(
                req,
                "0210",
                code,
                common(&[(54, "1001156C000000012345")]),
                true,
            );
            if st.corrupt_mac {
                let n = a.len();
                a[n - 1] ^= 0x01;
            }
            Some(a)
        }
        ("0200", "000000") => {
            let block: [u8; 8] = msg
                .field(52)
                .unwrap()
                .binary()
                .unwrap()
                .to_vec()
                .try_into()
                .unwrap();
            let clear = pinblock::decrypt_block(&key(PIK), &block);
            let pan = Pan::new(&text(&msg, 2)).unwrap();
            let pin_ok = pinblock::decode(PinBlockFormat::Iso0, &clear, &pan)
                .is_ok_and(|p| p.ct_eq(&Pin::new(PIN).unwrap()));
            let seen = SeenPurchase {
                stan,
                mac_ok: mac_ok(req),
                clear_block: hex::encode_upper(clear.as_bytes()),
                pin_ok,
                f22: text(&msg, 22),
                f53: text(&msg, 53),
                f14: text(&msg, 14),
                f35: text(&msg, 35),
            };
            st.purchases.push(seen.clone());
            if st.garbage {
                return Some(vec![0x02, 0x10, 0xFF, 0xFF]);
            }
            if st.drop_purchases > 0 {
                st.drop_purchases -= 1;
                return None;
            }
            let code = match (seen.mac_ok, seen.pin_ok) {
                (false, _) => "A0",
                (true, false) => "55",
                (true, true) => "00",
            };
            let mut a = answer(req, "0210", code, common(&[(38, "A12345")]), true);
            if st.corrupt_mac {
                let n = a.len();
                a[n - 1] ^= 0x01;
            }
            Some(a)
        }
        ("0200", "200000") | ("0220", "200000") => {
            let code = if mac_ok(req) { "00" } else { "A0" };
            let resp = if mti == "0200" { "0210" } else { "0230" };
            Some(answer(req, resp, code, common(&[(38, "B54321")]), true))
        }
        ("0400", _) => {
            st.reversals
                .push((stan, text(&msg, 39), text(&msg, 61), mac_ok(req)));
            if st.ignore_reversals > 0 {
                st.ignore_reversals -= 1;
                return None;
            }
            Some(answer(req, "0410", "00", vec![], true))
        }
        ("0500", _) => {
            let f48 = text(&msg, 48);
            st.settlements.push(f48.clone());
            let mut flags = f48.into_bytes();
            flags[30] = b'1';
            flags[61] = b'1';
            let flags = String::from_utf8(flags).unwrap();
            Some(answer(
                req,
                "0510",
                "00",
                vec![(15, "0501".to_owned()), (48, flags)],
                true,
            ))
        }
        ("0200", "600000") => {
            let f55 = msg.field(55).unwrap().binary().unwrap().to_vec();
            let get = |n| tlv(&f55, df(n)).unwrap();
            let serial: [u8; 8] = get(0x01).try_into().unwrap();
            let balance = u32::from_be_bytes(get(0x02).try_into().unwrap());
            let seq = u16::from_be_bytes(get(0x03).try_into().unwrap());
            let random: [u8; 4] = get(0x04).try_into().unwrap();
            let terminal: [u8; 6] = get(0x08).try_into().unwrap();
            let tx_type = get(0x09)[0];
            let amount = u32::try_from(msg.field(4).unwrap().to_u64().unwrap()).unwrap();
            assert_eq!(text(&msg, 2), hex::encode_upper(serial));
            // The issuer: the card's DLK from the master (city, then serial), SESLK, MAC1, MAC2.
            let dlk = pboc::diversify_path(&key(DLK), &[CITY, serial]);
            let seslk = pboc::load_session_key(&dlk, &random, seq);
            let mac1 = mac::pboc(
                &seslk,
                &pboc::load_mac1_input(balance, amount, tx_type, &terminal),
            )
            .unwrap();
            st.mac1_ok.push(mac1.to_vec() == get(0x05));
            let mac2 = mac::pboc(
                &seslk,
                &pboc::load_mac2_input(amount, tx_type, &terminal, &HOST_DATE, &HOST_TIME),
            )
            .unwrap();
            let mut out55 = Vec::new();
            let mut b = TlvBuilder::new(&mut out55);
            b.push(df(0x10), &mac2).unwrap();
            b.push(df(0x11), &HOST_DATE).unwrap();
            b.push(df(0x12), &HOST_TIME).unwrap();
            b.finish().unwrap();
            let msg_ans = answer(req, "0210", "00", common(&[]), false);
            let mut m = decode(specs::cups_pos(), &msg_ans)
                .unwrap()
                .to_buf()
                .into_owned();
            m.remove(64);
            m.set(55, out55);
            Some(finish(m, true))
        }
        ("0220", "600000") => {
            let f55 = msg.field(55).unwrap().binary().unwrap().to_vec();
            st.confirmations
                .push((tlv(&f55, df(0x13)).unwrap(), text(&msg, 61)));
            Some(answer(req, "0230", "00", vec![], true))
        }
        _ => Some(answer(req, &response_mti(&mti), "12", vec![], false)),
    }
}

fn response_mti(mti: &str) -> String {
    let n: u32 = mti.parse().unwrap();
    format!("{:04}", n + 10)
}

/// A fake front end on loopback: every frame it receives is kept (whole, with length, TPDU
/// and header); answers go back with the TPDU swapped and the header echoed.
struct Fake {
    addr: String,
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
    state: Arc<Mutex<State>>,
}

async fn fake_front(state: State) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let frames = Arc::new(Mutex::new(Vec::new()));
    let state = Arc::new(Mutex::new(state));
    let (f, s) = (frames.clone(), state.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let (frames, state) = (f.clone(), s.clone());
            tokio::spawn(async move {
                let config = FrameConfig::cups_pos();
                let mut buf: Vec<u8> = Vec::new();
                loop {
                    while let Some((frame, used)) = config.decode(&buf).unwrap() {
                        let (tpdu, header, body) = (frame.tpdu, frame.header, frame.body.to_vec());
                        frames.lock().unwrap().push(buf[..used].to_vec());
                        buf.drain(..used);
                        if let Some(reply) = handle(&state, &body) {
                            let mut out = Vec::new();
                            config
                                .encode(tpdu.map(|t| t.reply()), header, &reply, &mut out)
                                .unwrap();
                            if stream.write_all(&out).await.is_err() {
                                return;
                            }
                        }
                    }
                    let mut chunk = [0u8; 4096];
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    Fake {
        addr,
        frames,
        state,
    }
}

fn config(fake: &Fake, terminal_id: &str) -> TerminalConfig {
    let mut c = TerminalConfig::new(fake.addr.clone(), terminal_id, "898100012340001", key(TMK));
    c.response_timeout = Duration::from_millis(300);
    c
}

fn card() -> Card {
    Card::new(PAN, "3012").unwrap()
}

fn log(fake: &Fake) -> Vec<(String, u32)> {
    fake.state.lock().unwrap().log.clone()
}

#[tokio::test]
async fn sign_in_request_is_exact_and_field_62_gives_the_keys() {
    let fake = fake_front(State::default()).await;
    let mut c = config(&fake, "10000001");
    c.first_stan = 7;
    c.batch = 12;
    let mut t = Terminal::new(c);
    let o = t.sign_in().await;
    assert_eq!(o.status, Status::Approved);
    assert_eq!(o.operation, Operation::SignIn);
    assert_eq!(o.stan, 7);
    assert_eq!(o.response_code.as_deref(), Some("00"));
    assert_eq!(o.rrn.as_deref(), Some("000000000007"));
    let frames = fake.frames.lock().unwrap().clone();
    assert_eq!(
        hex::encode_upper(&frames[0]),
        concat!(
            "003C",                           // length: 60 bytes follow
            "6000040000",                     // TPDU
            "603100000000",                   // header
            "0800",                           // MTI
            "0020000000C00012",               // bitmap: 11, 41, 42, 60, 63
            "000007",                         // 11 STAN
            "3130303030303031",               // 41 "10000001"
            "383938313030303132333430303031", // 42 "898100012340001"
            "0011000000120030",               // 60: 11 digits "00" "000012" "003"
            "0003303120",                     // 63 "01 "
        )
    );
    let keys = t.session_keys().unwrap();
    assert_eq!(hex::encode_upper(keys.pik.as_bytes()), PIK);
    assert_eq!(hex::encode_upper(keys.mak.as_bytes()), MAK);
    assert!(t.is_signed_in());
    assert_eq!(t.next_stan(), 8);

    let o = t.echo().await;
    assert_eq!((o.status, o.stan), (Status::Approved, 8));
    let o = t.sign_off().await;
    assert_eq!((o.status, o.stan), (Status::Approved, 9));
    assert!(!t.is_signed_in());
    // Without keys a purchase is refused locally and nothing is sent.
    let o = t.purchase(&card(), 100, PIN).await;
    assert_eq!(o.status, Status::NotSignedIn);
    assert_eq!(
        log(&fake),
        [
            ("0800".to_owned(), 7),
            ("0820".to_owned(), 8),
            ("0820".to_owned(), 9)
        ]
    );
}

#[tokio::test]
async fn purchase_carries_a_pin_block_and_mac_the_fake_verifies() {
    let fake = fake_front(State::default()).await;
    let mut t = Terminal::new(config(&fake, "10000001"));
    assert_eq!(t.sign_in().await.status, Status::Approved);

    let o = t.balance(&card(), PIN).await;
    assert_eq!(o.status, Status::Approved);
    assert_eq!(o.balance, Some(12_345));

    let o = t.purchase(&card(), 1_234, PIN).await;
    assert_eq!(o.status, Status::Approved);
    assert_eq!(o.stan, 3);
    assert_eq!(o.response_code.as_deref(), Some("00"));
    assert_eq!(o.rrn.as_deref(), Some("000000000003"));
    assert_eq!(o.auth_code.as_deref(), Some("A12345"));
    let record = o.record.unwrap();
    assert_eq!(record.kind, RecordKind::Purchase);
    assert_eq!((record.stan, record.batch, record.amount), (3, 1, 1_234));
    assert_eq!(record.date, "0501");
    assert_eq!(t.records().len(), 1);

    let seen = fake.state.lock().unwrap().purchases.clone();
    assert_eq!(
        seen,
        [SeenPurchase {
            stan: 3,
            mac_ok: true,
            // 06123456FFFFFFFF XOR 0000234000000000 (PAN digits 4..15 without the check digit)
            clear_block: "06121716FFFFFFFF".to_owned(),
            pin_ok: true,
            f22: "021".to_owned(),
            f53: "2600000000000000".to_owned(),
            f14: "3012".to_owned(),
            f35: "6212340000000001D301220100000".to_owned(),
        }]
    );

    // A wrong PIN is declined with 55 and adds no record.
    let o = t.purchase(&card(), 500, "654321").await;
    assert_eq!(o.status, Status::Declined);
    assert_eq!(o.response_code.as_deref(), Some("55"));
    assert_eq!(o.record, None);
    assert_eq!(t.records().len(), 1);
}

#[tokio::test]
async fn a_dropped_answer_leaves_one_reversal_resent_until_answered() {
    let fake = fake_front(State {
        drop_purchases: 1,
        ignore_reversals: 2,
        ..State::default()
    })
    .await;
    let mut t = Terminal::new(config(&fake, "10000001"));
    assert_eq!(t.sign_in().await.status, Status::Approved);

    let o = t.purchase(&card(), 2_000, PIN).await;
    assert_eq!(o.status, Status::NoResponse);
    assert_eq!(o.stan, 2);
    assert_eq!(o.record, None);
    let pending = t.pending_reversal().unwrap();
    assert_eq!(
        (
            pending.operation,
            pending.stan,
            pending.amount,
            pending.reason,
            pending.sends
        ),
        (Operation::Purchase, 2, 2_000, "98", 0)
    );

    // The next purchase first sends the reversal: ignored twice, answered the third time.
    let o = t.purchase(&card(), 3_000, PIN).await;
    assert_eq!(o.status, Status::Approved);
    assert_eq!(o.reversals_sent, 3);
    assert_eq!(o.stan, 3);
    assert!(t.pending_reversal().is_none());
    assert_eq!(t.records().len(), 1);
    assert_eq!(t.records()[0].amount, 3_000);

    let st = fake.state.lock().unwrap();
    assert_eq!(st.reversals.len(), 3);
    for (stan, reason, f61, mac_ok) in &st.reversals {
        assert_eq!((*stan, reason.as_str(), *mac_ok), (2, "98", true));
        assert_eq!(f61.len(), 16);
        assert!(f61.starts_with("000001000002"), "{f61}");
    }
    let log: Vec<(&str, u32)> = st.log.iter().map(|(m, s)| (m.as_str(), *s)).collect();
    assert_eq!(
        log,
        [
            ("0800", 1),
            ("0200", 2),
            ("0400", 2),
            ("0400", 2),
            ("0400", 2),
            ("0200", 3)
        ]
    );
}

#[tokio::test]
async fn an_unanswered_reversal_blocks_new_transactions() {
    let fake = fake_front(State {
        drop_purchases: 1,
        ignore_reversals: usize::MAX,
        ..State::default()
    })
    .await;
    let mut c = config(&fake, "10000001");
    c.reversal_attempts = 2;
    let mut t = Terminal::new(c);
    assert_eq!(t.sign_in().await.status, Status::Approved);
    assert_eq!(
        t.purchase(&card(), 100, PIN).await.status,
        Status::NoResponse
    );
    let o = t.purchase(&card(), 200, PIN).await;
    assert_eq!(o.status, Status::ReversalPending);
    assert_eq!(o.reversals_sent, 2);
    assert_eq!(t.pending_reversal().unwrap().sends, 2);
    // The second purchase was never sent.
    let purchases = log(&fake).iter().filter(|(m, _)| m == "0200").count();
    assert_eq!(purchases, 1);
    assert_eq!(fake.state.lock().unwrap().reversals.len(), 2);
}

#[tokio::test]
async fn a_bad_response_mac_is_detected() {
    let fake = fake_front(State {
        corrupt_mac: true,
        ..State::default()
    })
    .await;
    let mut t = Terminal::new(config(&fake, "10000001"));
    assert_eq!(t.sign_in().await.status, Status::Approved);

    // A balance inquiry is not reversible.
    let o = t.balance(&card(), PIN).await;
    assert_eq!(o.status, Status::BadResponseMac);
    assert_eq!(o.balance, None);
    assert!(t.pending_reversal().is_none());

    // An approval that cannot be trusted is reversed as a terminal error.
    let o = t.purchase(&card(), 1_000, PIN).await;
    assert_eq!(o.status, Status::BadResponseMac);
    assert_eq!(o.record, None);
    assert!(t.records().is_empty());
    let pending = t.pending_reversal().unwrap();
    assert_eq!((pending.stan, pending.reason), (3, "06"));
    assert!(fake.state.lock().unwrap().purchases[0].mac_ok);
}

#[tokio::test]
async fn void_refund_and_settlement_totals() {
    let fake = fake_front(State::default()).await;
    let mut t = Terminal::new(config(&fake, "10000001"));
    assert_eq!(t.sign_in().await.status, Status::Approved);
    let first = t.purchase(&card(), 1_234, PIN).await.record.unwrap();
    let second = t.purchase(&card(), 5_000, PIN).await.record.unwrap();
    let o = t.void(&first).await;
    assert_eq!(o.status, Status::Approved);
    assert_eq!(o.auth_code.as_deref(), Some("B54321"));
    assert_eq!(o.record.unwrap().kind, RecordKind::Void);
    assert!(t.records()[0].voided);
    let o = t.refund(&second, 6_000).await;
    assert!(matches!(o.status, Status::Rejected(_)));
    let o = t.refund(&second, 1_000).await;
    assert_eq!(o.status, Status::Approved);
    assert_eq!(o.stan, 5);

    let o = t.settle().await;
    assert_eq!(o.status, Status::Approved);
    let s = o.settlement.unwrap();
    assert!(s.balanced);
    assert_eq!(s.loads_balanced, Some(true));
    assert_eq!(
        fake.state.lock().unwrap().settlements,
        [concat!(
            "002000000006234", // purchases: 2, 62.34
            "002000000002234", // credits: void 12.34 + refund 10.00
            "0",
            "000000000000000000000000000000",
            "0"
        )]
    );
    assert!(t.records().is_empty());
    assert_eq!(t.batch(), 2);
    let log = log(&fake);
    assert_eq!(log[3], ("0200".to_owned(), 4));
    assert_eq!(log[4], ("0220".to_owned(), 5));
    assert_eq!(log[5], ("0500".to_owned(), 6));
}

/// Terminal futures can be spawned on a multi-threaded runtime.
fn assert_send<T: Send>(_: &T) {}

fn purse_card() -> VirtualCard {
    let profile = IssuerProfile::from_json(&format!(
        r#"{{ "issuer_id": "3100000000000000", "card_type": 3,
             "valid_from": "20240101", "valid_until": "20341231",
             "ep": {{ "max_balance": 100000 }},
             "diversification_factors": ["0000000000003100"],
             "master_keys": [
               {{ "purpose": "DPK", "index": 1, "version": 1, "key": "{DPK}" }},
               {{ "purpose": "DLK", "index": 1, "version": 1, "key": "{DLK}" }},
               {{ "purpose": "DTK", "index": 1, "version": 1, "key": "{DTK}" }} ] }}"#
    ))
    .unwrap();
    let image = personalize(&profile, [0x31, 0, 0, 0, 0, 0, 0, 0x01]).unwrap();
    VirtualCard::from_image(&image, Box::new(FixedRandom::new([0x11, 0x22, 0x33, 0x44]))).unwrap()
}

#[tokio::test]
async fn purse_load_credits_the_card_and_confirms_with_its_tac() {
    let fake = fake_front(State::default()).await;
    let mut t = Terminal::new(config(&fake, "10000001"));
    assert_eq!(t.sign_in().await.status, Status::Approved);
    let mut card = MemoryTransport::new(purse_card());
    let before = card.handler().balance(Application::Ep).unwrap();
    let seq = card.handler().online_seq(Application::Ep).unwrap();

    let load = t.load(&mut card, None, 10_000);
    assert_send(&load);
    let o = load.await;
    assert_eq!(o.status, Status::Approved, "{o}");
    assert_eq!(o.operation, Operation::Load);
    assert_eq!(o.stan, 2);
    let after = card.handler().balance(Application::Ep).unwrap();
    assert_eq!(after, before + 10_000);
    assert_eq!(o.balance, Some(i64::from(after)));
    assert_eq!(o.confirmation_code.as_deref(), Some("00"));

    // The card's TAC, recomputed with the card's DTK: balance after, online seq before,
    // amount, type 02, the terminal id the card saw (from 10000001), host date and time.
    let serial = [0x31, 0, 0, 0, 0, 0, 0, 0x01];
    let dtk = pboc::diversify_path(&key(DTK), &[CITY, serial]);
    let terminal = [0x00, 0x00, 0x10, 0x00, 0x00, 0x01];
    let tac = mac::pboc(
        &pboc::tac_key(&dtk).unwrap(),
        &pboc::load_tac_input(after, seq, 10_000, 0x02, &terminal, &HOST_DATE, &HOST_TIME),
    )
    .unwrap();
    assert_eq!(o.tac, Some(tac));
    let st = fake.state.lock().unwrap();
    assert_eq!(st.mac1_ok, [true]);
    assert_eq!(
        st.confirmations,
        [(tac.to_vec(), "0000010000020501".to_owned())]
    );
    let log: Vec<(&str, u32)> = st.log.iter().map(|(m, s)| (m.as_str(), *s)).collect();
    assert_eq!(log, [("0800", 1), ("0200", 2), ("0220", 3)]);
    drop(st);
    assert_eq!(t.records()[0].kind, RecordKind::Load);
    assert_eq!(t.records()[0].amount, 10_000);
}

#[tokio::test]
async fn load_generator_counts_outcomes() {
    let fake = fake_front(State::default()).await;
    let good = CardHolder {
        card: card(),
        pin: PIN.to_owned(),
    };
    let report = run_load(LoadConfig {
        terminals: vec![config(&fake, "10000001"), config(&fake, "10000002")],
        transactions: 5,
        mix: Mix::PURCHASES,
        cards: vec![good.clone()],
        progress: false,
        seed: 1,
        sign_in: true,
    })
    .await
    .unwrap();
    assert_eq!(report.terminals, 2);
    assert_eq!(report.sign_in_failures, 0);
    assert_eq!(report.transactions, 10);
    assert_eq!(report.approved, 10);
    let purchases = report.by_operation[&Operation::Purchase];
    assert_eq!((purchases.sent, purchases.approved), (10, 10));
    assert!(report.non_approved.is_empty());
    assert!(report.latency.p50 <= report.latency.p99);
    assert!(report.latency.p99 <= report.latency.p999);
    assert!(report.latency.p999 <= report.latency.max);
    assert!(report.tps > 0.0);

    // Half the cards with a wrong PIN: each terminal alternates good and bad.
    let bad = CardHolder {
        card: card(),
        pin: "000000".to_owned(),
    };
    let report = run_load(LoadConfig {
        terminals: vec![config(&fake, "10000003"), config(&fake, "10000004")],
        transactions: 4,
        mix: Mix::PURCHASES,
        cards: vec![good, bad],
        progress: false,
        seed: 1,
        sign_in: true,
    })
    .await
    .unwrap();
    assert_eq!(report.transactions, 8);
    assert_eq!(report.approved, 4);
    assert_eq!(
        report.non_approved.into_iter().collect::<Vec<_>>(),
        [("55".to_owned(), 4)]
    );
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("possim-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn terminals_file_round_trips_and_is_never_overwritten() {
    let dir = scratch("file");
    let file = TerminalsFile {
        front: Some("127.0.0.1:5860".to_owned()),
        tpdu: None,
        header: None,
        terminals: vec![TerminalEntry::new("10000001", "898100012340001", &key(TMK))],
    };
    for name in ["terminals.json", "terminals.toml"] {
        let path = dir.join(name);
        write_terminals_file(&path, &file).unwrap();
        assert_eq!(TerminalsFile::load(&path).unwrap(), file);
        assert!(matches!(
            write_terminals_file(&path, &file),
            Err(TerminalsFileError::Exists(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
    let text = std::fs::read_to_string(dir.join("terminals.toml")).unwrap();
    assert_eq!(
        text,
        concat!(
            "front = \"127.0.0.1:5860\"\n\n",
            "[[terminals]]\n",
            "id = \"10000001\"\n",
            "merchant_id = \"898100012340001\"\n",
            "tmk = \"CA5D92598DCA48CE8A4C76361A9269E9\"\n"
        )
    );
    // Debug never shows the TMK.
    assert!(!format!("{file:?}").contains(TMK));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn terminals_file_as_init_writes_it_and_its_errors() {
    let file = TerminalsFile::from_json(
        r#"{ "front": "127.0.0.1:5860",
             "terminals": [ { "id": "10000001", "merchant_id": "898100012340001",
                              "tmk": "CA5D92598DCA48CE8A4C76361A9269E9" } ] }"#,
    )
    .unwrap();
    let configs = file.terminal_configs(None).unwrap();
    assert_eq!(configs.len(), 1);
    assert_eq!(configs[0].front, "127.0.0.1:5860");
    assert_eq!(configs[0].terminal_id, "10000001");
    assert_eq!(configs[0].tpdu.to_bytes(), [0x60, 0x00, 0x04, 0x00, 0x00]);
    assert_eq!(configs[0].header.to_bytes(), [0x60, 0x31, 0, 0, 0, 0]);
    assert_eq!(configs[0].card_terminal_id, [0, 0, 0x10, 0, 0, 0x01]);
    let other = file.terminal_configs(Some("10.0.0.1:9000")).unwrap();
    assert_eq!(other[0].front, "10.0.0.1:9000");

    let err = TerminalsFile::from_json(r#"{ "terminals": [], "colour": "red" }"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    let bad = TerminalsFile::from_toml(
        "tpdu = \"6000050000\"\n[[terminals]]\nid = \"1000001\"\nmerchant_id = \"898100012340001\"\ntmk = \"00\"\n",
    )
    .unwrap();
    assert_eq!(
        bad.terminal_configs(Some("x:1")).unwrap_err().to_string(),
        "terminals[0].id: expected 8 ASCII characters"
    );
    assert_eq!(
        TerminalsFile::default()
            .terminal_configs(None)
            .unwrap_err()
            .to_string(),
        "front: no front end address (give --front)"
    );
}

#[tokio::test]
async fn a_malformed_answer_is_reported_and_reversed() {
    let fake = fake_front(State {
        garbage: true,
        ..State::default()
    })
    .await;
    let mut t = Terminal::new(config(&fake, "10000001"));
    assert_eq!(t.sign_in().await.status, Status::Approved);
    let o = t.purchase(&card(), 700, PIN).await;
    assert!(matches!(o.status, Status::BadResponse(_)), "{o}");
    assert_eq!(o.response_code, None);
    let pending = t.pending_reversal().unwrap();
    assert_eq!(
        (pending.stan, pending.reason, pending.amount),
        (2, "06", 700)
    );
    // The reversal goes first and is answered; then the purchase is sent again.
    fake.state.lock().unwrap().garbage = false;
    let o = t.purchase(&card(), 700, PIN).await;
    assert_eq!(o.status, Status::Approved);
    assert_eq!((o.reversals_sent, o.stan), (1, 3));
    let st = fake.state.lock().unwrap();
    assert_eq!(st.reversals.len(), 1);
    assert_eq!((st.reversals[0].0, st.reversals[0].1.as_str()), (2, "06"));
}
