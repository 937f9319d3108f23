#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The data-center host on loopback with a SoftHsm: purchases (approved, declined for funds,
//! lost card, wrong PIN, bad MAC), voids and refunds, balance inquiry, purse loads with MAC2
//! recomputed from pboc-sam's functions and load confirmations with their TAC, reversals
//! (undo, stored answer, unknown original), duplicates, echo, and fault injection (drop,
//! delay, late, duplicate reply, close after N).

use std::sync::Arc;
use std::time::Duration;

use iso8583_wire::tlv::{Tag, TlvBuilder, TlvReader};
use iso8583_wire::{MessageBuf, decode, specs};
use pboc_sam::pinblock::{self, Pan, Pin, PinBlockFormat};
use pboc_sam::{
    CounterRandom, DesKey, KeyRef, KeyType, Lmk, MacAlgorithm, SecurityModule, SoftHsm, mac, pboc,
};
use posp_node::center::{
    AuthState, Center, CenterConfig, FaultSelector, FaultsConfig, KeySpec, LateFault, Registry,
    seed_demo,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ZAK: [u8; 16] = *b"\x01\x23\x45\x67\x89\xAB\xCD\xEF\xFE\xDC\xBA\x98\x76\x54\x32\x10";
const ZPK: [u8; 16] = *b"\x11\x22\x33\x44\x55\x66\x77\x88\x99\xAA\xBB\xCC\xDD\xEE\xF0\x0F";
const PVK: [u8; 16] = *b"\x2A\x3B\x4C\x5D\x6E\x7F\x80\x91\xA2\xB3\xC4\xD5\xE6\xF7\x08\x19";
const MLK: [u8; 16] = *b"\xF0\xE1\xD2\xC3\xB4\xA5\x96\x87\x78\x69\x5A\x4B\x3C\x2D\x1E\x0F";
const MTK: [u8; 16] = *b"\x0F\x1E\x2D\x3C\x4B\x5A\x69\x78\x87\x96\xA5\xB4\xC3\xD2\xE1\xF0";

const ACQ: &str = "48020000";
const TID: &str = "10000001";
const MID: &str = "898100012340001";
const RICH: &str = "6212340000000001"; // PIN 123456, 10 000.00
const POOR: &str = "6212340000000019"; // PIN 1234, 50.00
const LOST: &str = "6212340000000027"; // PIN 111111
const PURSE: &str = "1000000000000001"; // funding ACC-P001, 5 000.00

struct Env {
    hsm: Arc<SoftHsm>,
    zak: KeyRef,
    registry: Registry,
    center: Center,
}

fn key(hsm: &SoftHsm, clear: &[u8; 16], t: KeyType) -> KeyRef {
    hsm.form_key_from_components(&[clear], t).unwrap()
}

async fn start(faults: FaultsConfig) -> Env {
    let hsm = Arc::new(SoftHsm::new(
        Lmk::generate(&CounterRandom::new(7)),
        Box::new(CounterRandom::new(8)),
    ));
    let zak = key(&hsm, &ZAK, KeyType::Zak);
    let zpk = key(&hsm, &ZPK, KeyType::Zpk);
    let pvk = key(&hsm, &PVK, KeyType::Zpk);
    let mlk = key(&hsm, &MLK, KeyType::PbocLoad);
    let mtk = key(&hsm, &MTK, KeyType::PbocTac);
    let registry = Registry::open_in_memory().unwrap();
    assert_eq!(seed_demo(&registry, &hsm, Some(&pvk)).unwrap(), 6);
    let mut config = CenterConfig::example();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.keys.zak = KeySpec::from_key_ref(&zak);
    config.keys.zpk = KeySpec::from_key_ref(&zpk);
    config.keys.pvk = Some(KeySpec::from_key_ref(&pvk));
    config.keys.dlk_master = KeySpec::from_key_ref(&mlk);
    config.keys.dtk_master = KeySpec::from_key_ref(&mtk);
    config.faults = faults;
    let dyn_hsm: Arc<dyn SecurityModule> = hsm.clone();
    let center = Center::start(&config, dyn_hsm, registry.clone())
        .await
        .unwrap();
    Env {
        hsm,
        zak,
        registry,
        center,
    }
}

struct Link(TcpStream);

impl Link {
    async fn open(env: &Env) -> Link {
        Link(TcpStream::connect(env.center.local_addr()).await.unwrap())
    }

    async fn send(&mut self, body: &[u8]) {
        let mut out = u16::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(body);
        self.0.write_all(&out).await.unwrap();
    }

    /// The next frame's body, or `None` if none comes within `wait` (or the link closed).
    async fn recv_within(&mut self, wait: Duration) -> Option<Vec<u8>> {
        tokio::time::timeout(wait, async {
            let mut len = [0u8; 2];
            self.0.read_exact(&mut len).await.ok()?;
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
            self.0.read_exact(&mut body).await.ok()?;
            Some(body)
        })
        .await
        .ok()
        .flatten()
    }

    async fn recv(&mut self) -> Vec<u8> {
        self.recv_within(Duration::from_secs(5))
            .await
            .expect("a reply")
    }

    async fn exchange(&mut self, body: &[u8]) -> Vec<u8> {
        self.send(body).await;
        self.recv().await
    }
}

/// Signs a request with X9.19 under the ZAK through the HSM.
async fn sign(env: &Env, mut m: MessageBuf<'static>) -> Vec<u8> {
    m.set(64, vec![0u8; 8]);
    let mut body = m.to_vec(specs::cups_pos()).unwrap();
    let n = body.len() - 8;
    let mac = env
        .hsm
        .generate_mac(&env.zak, MacAlgorithm::X919, &body[..n])
        .await
        .unwrap();
    body[n..].copy_from_slice(&mac);
    body
}

fn pin_block(pan: &str, pin: &str) -> Vec<u8> {
    let clear = pinblock::encode(
        PinBlockFormat::Iso0,
        &Pin::new(pin).unwrap(),
        &Pan::new(pan).unwrap(),
        &[0; 8],
    )
    .unwrap();
    pinblock::encrypt_block(&DesKey::double(ZPK), &clear).to_vec()
}

fn purchase(pan: &str, pin: &str, amount: u64, stan: u32) -> MessageBuf<'static> {
    let mut m = MessageBuf::new("0200").unwrap();
    m.set(2, pan.to_owned())
        .set(3, "000000")
        .set(4, format!("{amount:012}"))
        .set(11, format!("{stan:06}"))
        .set(14, "3012")
        .set(22, "021")
        .set(25, "00")
        .set(26, "06")
        .set(32, ACQ)
        .set(41, TID)
        .set(42, MID)
        .set(49, "156")
        .set(52, pin_block(pan, pin))
        .set(53, "2600000000000000")
        .set(60, "22000001");
    m
}

fn void(pan: &str, amount: u64, stan: u32, rrn: &str) -> MessageBuf<'static> {
    let mut m = purchase(pan, "123456", amount, stan);
    m.remove(52);
    m.remove(53);
    m.set(3, "200000")
        .set(37, rrn.to_owned())
        .set(60, "23000001")
        .set(61, "000001000001");
    m
}

fn refund(pan: &str, amount: u64, stan: u32, rrn: &str) -> MessageBuf<'static> {
    let mut m = void(pan, amount, stan, rrn);
    m.set_mti("0220").unwrap();
    m.set(60, "25000001");
    m
}

fn reversal(orig: &MessageBuf<'static>, stan: u32) -> MessageBuf<'static> {
    let mut m = MessageBuf::new("0400").unwrap();
    for n in [3u16, 4, 22, 25, 49, 60] {
        if let Some(v) = orig.get(n) {
            m.set(n, v.clone());
        }
    }
    m.set(11, format!("{stan:06}"))
        .set(32, ACQ)
        .set(39, "98")
        .set(41, TID)
        .set(42, MID)
        .set(61, format!("000001{stan:06}0101"));
    m
}

fn text(body: &[u8], n: u16) -> Option<String> {
    let msg = decode(specs::cups_pos(), body).unwrap();
    msg.field(n).map(|f| f.to_string().trim_end().to_owned())
}

fn fields(body: &[u8]) -> Vec<u16> {
    decode(specs::cups_pos(), body)
        .unwrap()
        .fields()
        .map(|f| f.number())
        .collect()
}

async fn mac_ok(env: &Env, body: &[u8]) -> bool {
    let msg = decode(specs::cups_pos(), body).unwrap();
    let f = msg.field(64).unwrap();
    env.hsm
        .verify_mac(&env.zak, MacAlgorithm::X919, &body[..f.offset()], f.raw())
        .await
        .is_ok()
}

fn balance(env: &Env, account: &str) -> i64 {
    env.registry.balance(account).unwrap().unwrap()
}

#[tokio::test]
async fn purchase_is_approved_with_rrn_auth_code_and_mac() {
    let env = start(FaultsConfig::default()).await;
    let mut link = Link::open(&env).await;
    let req = sign(&env, purchase(RICH, "123456", 12_345, 1)).await;
    let resp = link.exchange(&req).await;
    let msg = decode(specs::cups_pos(), &resp).unwrap();
    assert_eq!(msg.mti(), "0210");
    assert_eq!(
        fields(&resp),
        [2, 3, 4, 11, 12, 13, 32, 37, 38, 39, 41, 42, 49, 60, 64]
    );
    assert_eq!(text(&resp, 39).as_deref(), Some("00"));
    assert_eq!(text(&resp, 2).as_deref(), Some(RICH));
    assert_eq!(text(&resp, 4).as_deref(), Some("000000012345"));
    assert_eq!(text(&resp, 11).as_deref(), Some("000001"));
    assert_eq!(text(&resp, 32).as_deref(), Some(ACQ));
    assert_eq!(text(&resp, 41).as_deref(), Some(TID));
    let rrn = text(&resp, 37).unwrap();
    assert_eq!(rrn.len(), 12);
    assert!(rrn.bytes().all(|b| b.is_ascii_digit()));
    assert!(rrn.ends_with("00000001"), "{rrn}");
    let auth = text(&resp, 38).unwrap();
    assert_eq!(auth, "112648"); // (1 * 7919 + 104729) % 1e6
    assert_eq!(text(&resp, 12).unwrap().len(), 6);
    assert_eq!(text(&resp, 13).unwrap().len(), 4);
    assert!(mac_ok(&env, &resp).await);
    assert_eq!(balance(&env, "ACC-0001"), 1_000_000 - 12_345);
    // The journal has the request and the response with the PAN masked, never in clear.
    let journal = env.registry.journal().unwrap();
    assert_eq!(journal.len(), 2);
    assert_eq!(journal[0].direction, "in");
    assert_eq!(journal[1].response_code.as_deref(), Some("00"));
    for line in &journal {
        assert_eq!(line.pan_masked.as_deref(), Some("621234******0001"));
        assert!(!line.text.contains(RICH));
    }
    env.center.shutdown().await;
}

#[tokio::test]
async fn declines_for_funds_lost_card_pin_mac_and_acquirer() {
    let env = start(FaultsConfig::default()).await;
    let mut link = Link::open(&env).await;
    let cases: Vec<(MessageBuf<'static>, &str)> = vec![
        (purchase(POOR, "1234", 6_000, 1), "51"),
        (purchase(LOST, "111111", 100, 2), "41"),
        (purchase(RICH, "654321", 100, 3), "55"),
        (purchase("6212349999999999", "1234", 100, 4), "14"),
        (purchase("6212340000000035", "222222", 100, 5), "54"),
        (purchase("6212340000000043", "333333", 10_001, 6), "61"),
        (purchase(RICH, "123456", 0, 7), "13"),
        (
            {
                let mut m = purchase(RICH, "123456", 100, 8);
                m.set(32, "99999999");
                m
            },
            "03",
        ),
    ];
    for (m, want) in cases {
        let resp = link.exchange(&sign(&env, m).await).await;
        assert_eq!(text(&resp, 39).as_deref(), Some(want));
        assert_eq!(text(&resp, 37), None);
        assert_eq!(text(&resp, 38), None);
        assert!(mac_ok(&env, &resp).await);
    }
    // A MAC that does not verify.
    let mut bad = sign(&env, purchase(RICH, "123456", 100, 9)).await;
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let resp = link.exchange(&bad).await;
    assert_eq!(text(&resp, 39).as_deref(), Some("A0"));
    assert!(mac_ok(&env, &resp).await);
    // Nothing moved.
    assert_eq!(balance(&env, "ACC-0001"), 1_000_000);
    assert_eq!(balance(&env, "ACC-0002"), 5_000);
    assert_eq!(balance(&env, "ACC-0003"), 200_000);
    // Three wrong PINs lock the PIN: the right one then gets 75.
    for stan in [10, 11, 12] {
        let resp = link
            .exchange(&sign(&env, purchase(RICH, "000000", 100, stan)).await)
            .await;
        assert_eq!(text(&resp, 39).as_deref(), Some("55"));
    }
    let resp = link
        .exchange(&sign(&env, purchase(RICH, "123456", 100, 13)).await)
        .await;
    assert_eq!(text(&resp, 39).as_deref(), Some("75"));
    env.center.shutdown().await;
}

#[tokio::test]
async fn balance_inquiry_reports_the_account() {
    let env = start(FaultsConfig::default()).await;
    let mut link = Link::open(&env).await;
    let mut m = purchase(POOR, "1234", 0, 1);
    m.remove(4);
    m.set(3, "310000").set(60, "01000001");
    let resp = link.exchange(&sign(&env, m).await).await;
    assert_eq!(text(&resp, 39).as_deref(), Some("00"));
    assert_eq!(text(&resp, 54).as_deref(), Some("1002156C000000005000"));
    assert!(mac_ok(&env, &resp).await);
    env.center.shutdown().await;
}

#[tokio::test]
async fn void_and_refund_against_the_original() {
    let env = start(FaultsConfig::default()).await;
    let mut link = Link::open(&env).await;
    let p1 = link
        .exchange(&sign(&env, purchase(RICH, "123456", 10_000, 1)).await)
        .await;
    let rrn1 = text(&p1, 37).unwrap();
    assert_eq!(balance(&env, "ACC-0001"), 990_000);
    // Wrong amount: 64; unknown RRN: 25.
    let r = link
        .exchange(&sign(&env, void(RICH, 9_999, 2, &rrn1)).await)
        .await;
    assert_eq!(text(&r, 39).as_deref(), Some("64"));
    let r = link
        .exchange(&sign(&env, void(RICH, 10_000, 3, "999999999999")).await)
        .await;
    assert_eq!(text(&r, 39).as_deref(), Some("25"));
    // The void: approved with its own RRN, money back.
    let v = link
        .exchange(&sign(&env, void(RICH, 10_000, 4, &rrn1)).await)
        .await;
    assert_eq!(text(&v, 39).as_deref(), Some("00"));
    assert_ne!(text(&v, 37).unwrap(), rrn1);
    assert!(mac_ok(&env, &v).await);
    assert_eq!(balance(&env, "ACC-0001"), 1_000_000);
    // A second void of the same purchase: 12.
    let r = link
        .exchange(&sign(&env, void(RICH, 10_000, 5, &rrn1)).await)
        .await;
    assert_eq!(text(&r, 39).as_deref(), Some("12"));
    // Refunds: part of a purchase, then more than what is left.
    let p2 = link
        .exchange(&sign(&env, purchase(RICH, "123456", 10_000, 6)).await)
        .await;
    let rrn2 = text(&p2, 37).unwrap();
    let r = link
        .exchange(&sign(&env, refund(RICH, 3_000, 7, &rrn2)).await)
        .await;
    assert_eq!(decode(specs::cups_pos(), &r).unwrap().mti(), "0230");
    assert_eq!(text(&r, 39).as_deref(), Some("00"));
    assert_eq!(balance(&env, "ACC-0001"), 993_000);
    let r = link
        .exchange(&sign(&env, refund(RICH, 7_001, 8, &rrn2)).await)
        .await;
    assert_eq!(text(&r, 39).as_deref(), Some("64"));
    let r = link
        .exchange(&sign(&env, refund(RICH, 7_000, 9, &rrn2)).await)
        .await;
    assert_eq!(text(&r, 39).as_deref(), Some("00"));
    assert_eq!(balance(&env, "ACC-0001"), 1_000_000);
    env.center.shutdown().await;
}

#[tokio::test]
async fn reversal_undoes_a_purchase_and_repeats_get_the_stored_answer() {
    let env = start(FaultsConfig::default()).await;
    let mut link = Link::open(&env).await;
    let orig = purchase(RICH, "123456", 25_000, 41);
    let r = link.exchange(&sign(&env, orig.clone()).await).await;
    assert_eq!(text(&r, 39).as_deref(), Some("00"));
    assert_eq!(balance(&env, "ACC-0001"), 975_000);
    let rev = reversal(&orig, 41);
    let a1 = link.exchange(&sign(&env, rev.clone()).await).await;
    assert_eq!(decode(specs::cups_pos(), &a1).unwrap().mti(), "0410");
    assert_eq!(fields(&a1), [3, 4, 11, 32, 39, 41, 42, 60, 64]);
    assert_eq!(text(&a1, 39).as_deref(), Some("00"));
    assert_eq!(text(&a1, 11).as_deref(), Some("000041"));
    assert!(mac_ok(&env, &a1).await);
    assert_eq!(balance(&env, "ACC-0001"), 1_000_000);
    // Resent as 0400 and as the repeat 0401: the stored answer, byte for byte, nothing moves.
    let a2 = link.exchange(&sign(&env, rev.clone()).await).await;
    assert_eq!(a2, a1);
    let mut repeat = rev.clone();
    repeat.set_mti("0401").unwrap();
    let a3 = link.exchange(&sign(&env, repeat).await).await;
    assert_eq!(a3, a1);
    assert_eq!(balance(&env, "ACC-0001"), 1_000_000);
    let auths = env.registry.authorizations().unwrap();
    assert_eq!(auths.len(), 2);
    assert_eq!(auths[0].state, AuthState::Reversed);
    assert_eq!(auths[1].kind, "reversal");
    assert_eq!(auths[1].original_id, Some(auths[0].id));
    // A reversal of something never seen: 25, remembered; the late original is refused.
    let ghost = purchase(RICH, "123456", 500, 77);
    let a = link.exchange(&sign(&env, reversal(&ghost, 77)).await).await;
    assert_eq!(text(&a, 39).as_deref(), Some("25"));
    let late = link.exchange(&sign(&env, ghost).await).await;
    assert_eq!(text(&late, 39).as_deref(), Some("05"));
    assert_eq!(balance(&env, "ACC-0001"), 1_000_000);
    env.center.shutdown().await;
}

#[tokio::test]
async fn a_repeated_request_gets_the_stored_response_and_moves_money_once() {
    let env = start(FaultsConfig::default()).await;
    let mut link = Link::open(&env).await;
    let req = sign(&env, purchase(RICH, "123456", 700, 5)).await;
    let a = link.exchange(&req).await;
    let b = link.exchange(&req).await;
    assert_eq!(a, b);
    assert_eq!(balance(&env, "ACC-0001"), 999_300);
    // Another request with the same key (32 + 41 + 11): 94.
    let c = link
        .exchange(&sign(&env, purchase(RICH, "123456", 800, 5)).await)
        .await;
    assert_eq!(text(&c, 39).as_deref(), Some("94"));
    assert_eq!(balance(&env, "ACC-0001"), 999_300);
    env.center.shutdown().await;
}

#[tokio::test]
async fn echo_is_answered_without_a_mac() {
    let env = start(FaultsConfig::default()).await;
    let mut link = Link::open(&env).await;
    let mut m = MessageBuf::new("0820").unwrap();
    m.set(11, "000009").set(32, ACQ).set(60, "00000000301");
    let resp = link.exchange(&m.to_vec(specs::cups_pos()).unwrap()).await;
    assert_eq!(decode(specs::cups_pos(), &resp).unwrap().mti(), "0830");
    assert_eq!(fields(&resp), [11, 32, 39, 60]);
    assert_eq!(text(&resp, 39).as_deref(), Some("00"));
    env.center.shutdown().await;
}

/// Several frames in one read, the last cut in two: every one is answered, once.
#[tokio::test]
async fn frames_gathered_in_one_write_are_all_answered() {
    let env = start(FaultsConfig::default()).await;
    let mut link = Link::open(&env).await;
    let mut wire = Vec::new();
    for stan in ["000021", "000022", "000023"] {
        let mut m = MessageBuf::new("0820").unwrap();
        m.set(11, stan).set(32, ACQ).set(60, "00000000301");
        let body = m.to_vec(specs::cups_pos()).unwrap();
        wire.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        wire.extend_from_slice(&body);
    }
    // The first two frames and 5 bytes of the third, then the rest of the third.
    let cut = wire.len() - 5;
    link.0.write_all(&wire[..cut]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    link.0.write_all(&wire[cut..]).await.unwrap();
    let mut stans = Vec::new();
    for _ in 0..3 {
        let resp = link.recv().await;
        assert_eq!(decode(specs::cups_pos(), &resp).unwrap().mti(), "0830");
        stans.push(text(&resp, 11).unwrap());
    }
    stans.sort();
    assert_eq!(stans, ["000021", "000022", "000023"]);
    assert_eq!(link.recv_within(Duration::from_millis(200)).await, None);
    env.center.shutdown().await;
}

/// What the card computes for INITIALIZE FOR LOAD, and what the issuer must answer.
struct LoadCase {
    balance: u32,
    seq: u16,
    random: [u8; 4],
    terminal: [u8; 6],
    amount: u32,
}

impl LoadCase {
    fn session_key(&self) -> DesKey {
        let serial: [u8; 8] = hex::decode(PURSE).unwrap().try_into().unwrap();
        let dlk = pboc::diversify_path(&DesKey::double(MLK), &[serial]);
        pboc::load_session_key(&dlk, &self.random, self.seq)
    }

    fn mac1(&self) -> [u8; 4] {
        let input = pboc::load_mac1_input(self.balance, self.amount, 0x02, &self.terminal);
        mac::pboc(&self.session_key(), &input).unwrap()
    }

    fn request(&self, stan: u32, mac1: [u8; 4]) -> MessageBuf<'static> {
        let mut f55 = Vec::new();
        let mut b = TlvBuilder::new(&mut f55);
        let serial = hex::decode(PURSE).unwrap();
        let items: [(u32, Vec<u8>); 9] = [
            (0xDF01, serial),
            (0xDF02, self.balance.to_be_bytes().to_vec()),
            (0xDF03, self.seq.to_be_bytes().to_vec()),
            (0xDF04, self.random.to_vec()),
            (0xDF05, mac1.to_vec()),
            (0xDF06, vec![0x01]),
            (0xDF07, vec![0x00]),
            (0xDF08, self.terminal.to_vec()),
            (0xDF09, vec![0x02]),
        ];
        for (t, v) in &items {
            b.push(Tag::new(*t).unwrap(), v).unwrap();
        }
        b.finish().unwrap();
        let mut m = MessageBuf::new("0200").unwrap();
        m.set(2, PURSE)
            .set(3, "600000")
            .set(4, format!("{:012}", self.amount))
            .set(11, format!("{stan:06}"))
            .set(32, ACQ)
            .set(41, TID)
            .set(42, MID)
            .set(49, "156")
            .set(55, f55)
            .set(60, "48000001");
        m
    }
}

fn tlv_map(data: &[u8]) -> Vec<(u32, Vec<u8>)> {
    TlvReader::new(data)
        .map(|t| {
            let t = t.unwrap();
            (t.tag().to_u32(), t.value().to_vec())
        })
        .collect()
}

#[tokio::test]
async fn purse_load_returns_the_mac2_of_the_cards_dlk_and_confirms_the_tac() {
    let env = start(FaultsConfig::default()).await;
    let mut link = Link::open(&env).await;
    let case = LoadCase {
        balance: 1_000,
        seq: 7,
        random: [0x11, 0x22, 0x33, 0x44],
        terminal: [0x00, 0x00, 0x10, 0x00, 0x00, 0x01],
        amount: 20_000,
    };
    let resp = link
        .exchange(&sign(&env, case.request(21, case.mac1())).await)
        .await;
    assert_eq!(text(&resp, 39).as_deref(), Some("00"));
    assert_eq!(
        fields(&resp),
        [2, 3, 4, 11, 12, 13, 32, 37, 38, 39, 41, 42, 49, 55, 60, 64]
    );
    assert!(mac_ok(&env, &resp).await);
    let msg = decode(specs::cups_pos(), &resp).unwrap();
    let f55 = tlv_map(msg.field(55).unwrap().raw());
    assert_eq!(
        f55.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [0xDF10, 0xDF11, 0xDF12]
    );
    let date: [u8; 4] = f55[1].1.clone().try_into().unwrap();
    let time: [u8; 3] = f55[2].1.clone().try_into().unwrap();
    // The host date is the one of fields 12/13.
    assert_eq!(hex::encode(&date[2..]), text(&resp, 13).unwrap());
    assert_eq!(hex::encode(time), text(&resp, 12).unwrap());
    let want = mac::pboc(
        &case.session_key(),
        &pboc::load_mac2_input(case.amount, 0x02, &case.terminal, &date, &time),
    )
    .unwrap();
    assert_eq!(f55[0].1, want.to_vec());
    assert_eq!(balance(&env, "ACC-P001"), 500_000 - 20_000);

    // The confirmation with the card's TAC (DTK from the MTK and the serial).
    let serial: [u8; 8] = hex::decode(PURSE).unwrap().try_into().unwrap();
    let dtk = pboc::diversify_path(&DesKey::double(MTK), &[serial]);
    let tac = mac::pboc(
        &pboc::tac_key(&dtk).unwrap(),
        &pboc::load_tac_input(21_000, 7, 20_000, 0x02, &case.terminal, &date, &time),
    )
    .unwrap();
    let confirm = |stan: u32, tac: [u8; 4]| {
        let mut f55 = Vec::new();
        let mut b = TlvBuilder::new(&mut f55);
        b.push(Tag::new(0xDF13).unwrap(), &tac).unwrap();
        b.finish().unwrap();
        let mut m = MessageBuf::new("0220").unwrap();
        m.set(2, PURSE)
            .set(3, "600000")
            .set(4, "000000020000")
            .set(11, format!("{stan:06}"))
            .set(32, ACQ)
            .set(41, TID)
            .set(42, MID)
            .set(55, f55)
            .set(60, "49000001")
            .set(61, "000001000021");
        m
    };
    let mut bad_tac = tac;
    bad_tac[0] ^= 0xFF;
    let r = link.exchange(&sign(&env, confirm(22, bad_tac)).await).await;
    assert_eq!(text(&r, 39).as_deref(), Some("59"));
    // The first TAC recorded wins: another one is a duplicate.
    let r = link.exchange(&sign(&env, confirm(23, tac)).await).await;
    assert_eq!(text(&r, 39).as_deref(), Some("94"));

    // A fresh load, confirmed with its good TAC.
    let case2 = LoadCase {
        balance: 21_000,
        seq: 8,
        ..case
    };
    let resp = link
        .exchange(&sign(&env, case2.request(24, case2.mac1())).await)
        .await;
    assert_eq!(text(&resp, 39).as_deref(), Some("00"));
    let msg = decode(specs::cups_pos(), &resp).unwrap();
    let f55 = tlv_map(msg.field(55).unwrap().raw());
    let date: [u8; 4] = f55[1].1.clone().try_into().unwrap();
    let time: [u8; 3] = f55[2].1.clone().try_into().unwrap();
    let tac = mac::pboc(
        &pboc::tac_key(&dtk).unwrap(),
        &pboc::load_tac_input(41_000, 8, 20_000, 0x02, &case.terminal, &date, &time),
    )
    .unwrap();
    let r = link.exchange(&sign(&env, confirm(25, tac)).await).await;
    assert_eq!(decode(specs::cups_pos(), &r).unwrap().mti(), "0230");
    assert_eq!(fields(&r), [11, 32, 39, 41, 42, 60, 64]);
    assert_eq!(text(&r, 39).as_deref(), Some("00"));
    assert_eq!(balance(&env, "ACC-P001"), 460_000);

    // A reversal of the load gives the funding account its money back.
    let rev = {
        let mut m = MessageBuf::new("0400").unwrap();
        m.set(3, "600000")
            .set(4, "000000020000")
            .set(11, "000024")
            .set(32, ACQ)
            .set(39, "98")
            .set(41, TID)
            .set(42, MID)
            .set(60, "48000001")
            .set(61, "000001000024");
        m
    };
    let r = link.exchange(&sign(&env, rev).await).await;
    assert_eq!(text(&r, 39).as_deref(), Some("00"));
    assert_eq!(balance(&env, "ACC-P001"), 480_000);
    env.center.shutdown().await;
}

#[tokio::test]
async fn a_bad_mac1_is_a_card_verification_error() {
    let env = start(FaultsConfig::default()).await;
    let mut link = Link::open(&env).await;
    let case = LoadCase {
        balance: 0,
        seq: 1,
        random: [9, 8, 7, 6],
        terminal: [0, 0, 0x10, 0, 0, 2],
        amount: 5_000,
    };
    let mut mac1 = case.mac1();
    mac1[3] ^= 0x01;
    let resp = link
        .exchange(&sign(&env, case.request(31, mac1)).await)
        .await;
    assert_eq!(text(&resp, 39).as_deref(), Some("59"));
    assert_eq!(text(&resp, 55), None);
    assert!(mac_ok(&env, &resp).await);
    assert_eq!(balance(&env, "ACC-P001"), 500_000);
    env.center.shutdown().await;
}

#[tokio::test]
async fn a_dropped_reply_is_never_sent_but_the_transaction_is_processed() {
    let env = start(FaultsConfig {
        drop: Some(FaultSelector {
            stans: vec![2],
            ..FaultSelector::default()
        }),
        ..FaultsConfig::default()
    })
    .await;
    let mut link = Link::open(&env).await;
    link.send(&sign(&env, purchase(RICH, "123456", 100, 2)).await)
        .await;
    assert_eq!(link.recv_within(Duration::from_millis(500)).await, None);
    assert_eq!(balance(&env, "ACC-0001"), 999_900);
    // The next message is answered, and it is its own answer.
    let r = link
        .exchange(&sign(&env, purchase(RICH, "123456", 200, 3)).await)
        .await;
    assert_eq!(text(&r, 11).as_deref(), Some("000003"));
    assert_eq!(balance(&env, "ACC-0001"), 999_700);
    env.center.shutdown().await;
}

#[tokio::test]
async fn delayed_and_late_replies_arrive_after_their_delay() {
    let env = start(FaultsConfig {
        delay: Duration::from_millis(400),
        late: Some(LateFault {
            after: Duration::from_millis(800),
            select: FaultSelector {
                amounts: vec![777],
                ..FaultSelector::default()
            },
        }),
        ..FaultsConfig::default()
    })
    .await;
    let mut link = Link::open(&env).await;
    link.send(&sign(&env, purchase(RICH, "123456", 777, 1)).await)
        .await;
    link.send(&sign(&env, purchase(RICH, "123456", 100, 2)).await)
        .await;
    // Nothing within 200 ms; the plain delay's reply (400 ms) comes before the late one (1.2 s).
    assert_eq!(link.recv_within(Duration::from_millis(200)).await, None);
    let first = link.recv().await;
    assert_eq!(text(&first, 11).as_deref(), Some("000002"));
    let second = link.recv().await;
    assert_eq!(text(&second, 11).as_deref(), Some("000001"));
    env.center.shutdown().await;
}

#[tokio::test]
async fn a_duplicated_reply_arrives_twice() {
    let env = start(FaultsConfig {
        duplicate: Some(FaultSelector {
            all: true,
            ..FaultSelector::default()
        }),
        ..FaultsConfig::default()
    })
    .await;
    let mut link = Link::open(&env).await;
    let a = link
        .exchange(&sign(&env, purchase(RICH, "123456", 100, 1)).await)
        .await;
    let b = link.recv().await;
    assert_eq!(a, b);
    assert_eq!(link.recv_within(Duration::from_millis(300)).await, None);
    assert_eq!(balance(&env, "ACC-0001"), 999_900);
    env.center.shutdown().await;
}

#[tokio::test]
async fn the_link_closes_after_n_messages() {
    let env = start(FaultsConfig {
        close_after: 2,
        ..FaultsConfig::default()
    })
    .await;
    let mut link = Link::open(&env).await;
    let r = link
        .exchange(&sign(&env, purchase(RICH, "123456", 100, 1)).await)
        .await;
    assert_eq!(text(&r, 39).as_deref(), Some("00"));
    link.send(&sign(&env, purchase(RICH, "123456", 100, 2)).await)
        .await;
    // No reply; the connection is closed (EOF).
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), link.0.read(&mut byte))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    // The second purchase was processed (a reversal would undo it).
    assert_eq!(balance(&env, "ACC-0001"), 999_800);
    // A new connection is served.
    let mut again = Link::open(&env).await;
    let r = again
        .exchange(&sign(&env, purchase(RICH, "123456", 100, 3)).await)
        .await;
    assert_eq!(text(&r, 39).as_deref(), Some("00"));
    env.center.shutdown().await;
}

#[test]
fn config_reads_a_center_section_and_refuses_unknown_keys() {
    let mut c = CenterConfig::example();
    c.faults.drop = Some(FaultSelector {
        every: 3,
        ..FaultSelector::default()
    });
    let text = format!("[node]\nacquirer_id = \"1\"\n\n{}", c.to_toml_section());
    let back = CenterConfig::from_toml(&text).unwrap();
    assert_eq!(back.listen, c.listen);
    assert_eq!(back.acquirers, ["48020000"]);
    assert_eq!(back.keys, c.keys);
    assert_eq!(back.limits, c.limits);
    assert_eq!(back.shutdown_grace, Duration::from_secs(2));
    // The faults are not in the commented section: absent means none.
    assert_eq!(back.faults, FaultsConfig::default());
    let faults = r#"
listen = "127.0.0.1:0"
acquirers = ["48020000"]
database = "c.db"
[hsm]
lmk_file = "lmk.txt"
[keys]
zak = { type = "ZAK", cryptogram = "00000000000000000000000000000000", kcv = "00000000" }
zpk = { type = "ZPK", cryptogram = "00000000000000000000000000000000", kcv = "00000000" }
dlk_master = { type = "MLK", cryptogram = "00000000000000000000000000000000", kcv = "00000000" }
dtk_master = { type = "MTK", cryptogram = "00000000000000000000000000000000", kcv = "00000000" }
[faults]
delay = "250ms"
close_after = 5
[faults.late]
after = "40s"
stans = [12]
"#;
    let f = CenterConfig::from_toml(faults).unwrap();
    assert_eq!(f.faults.delay, Duration::from_millis(250));
    assert_eq!(f.faults.close_after, 5);
    let late = f.faults.late.unwrap();
    assert_eq!(late.after, Duration::from_secs(40));
    assert_eq!(late.select.stans, [12]);
    assert_eq!(f.keys.pvk, None);
    let err = CenterConfig::from_toml(&faults.replace("close_after", "close_afterr"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `close_afterr`"), "{err}");
    let err = CenterConfig::from_toml(&faults.replace("type = \"ZAK\"", "type = \"ZPK\""))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "config center.keys.zak.type: a ZPK where a ZAK is required"
    );
}
