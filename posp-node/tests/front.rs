#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The front end end to end on loopback: a SoftHsm in process, a fake center (a len2
//! cups-pos responder that checks the X9.19 MAC and approves, drops or delays on demand)
//! and a minimal terminal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iso8583_wire::frame::{CupsHeader, FrameConfig, Tpdu};
use iso8583_wire::{MessageBuf, decode, specs};
use pboc_sam::{
    CounterRandom, DesKey, KeyType, Lmk, Pan, Pin, PinBlockFormat, SecurityModule, SoftHsm,
    keyexchange, mac, pinblock,
};
use posp_node::config::{Config, KeyRefConfig};
use posp_node::front::{Front, FrontHandle};
use posp_node::store::{
    Journal, NewEntry, Origin, SafQueue, SqliteStore, StateUpdate, StoreConfig, TxnKind, TxnState,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::sleep;

const TMK: &str = "CA5D92598DCA48CE8A4C76361A9269E9";
const ZAK: &str = "0123456789ABCDEFFEDCBA9876543210";
const ZPK: &str = "89ABCDEF0123456776543210FEDCBA98";
const TID: &str = "10000001";
const MID: &str = "898100012340001";
const PAN: &str = "6222021234567890123";

static SEQ: AtomicU64 = AtomicU64::new(0);

fn temp_dir(name: &str) -> PathBuf {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("posp-front-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn hex(s: &str) -> Vec<u8> {
    ::hex::decode(s).unwrap()
}

/// The LMK, the HSM, and the configuration keys for a test directory.
struct Keys {
    hsm: Arc<SoftHsm>,
    tmk: KeyRefConfig,
    zak: KeyRefConfig,
    zpk: KeyRefConfig,
}

fn keys(dir: &std::path::Path) -> Keys {
    let lmk = Lmk::generate(&CounterRandom::new(7));
    lmk.save(dir.join("lmk.txt")).unwrap();
    let hsm = SoftHsm::new(lmk, Box::new(CounterRandom::new(11)));
    let form = |k: &str, t| {
        KeyRefConfig::from_key_ref(&hsm.form_key_from_components(&[&hex(k)], t).unwrap())
    };
    Keys {
        tmk: form(TMK, KeyType::Tmk),
        zak: form(ZAK, KeyType::Zak),
        zpk: form(ZPK, KeyType::Zpk),
        hsm: Arc::new(hsm),
    }
}

fn key_toml(k: &KeyRefConfig) -> String {
    format!(
        "{{ type = \"{}\", cryptogram = \"{}\", kcv = \"{}\" }}",
        k.key_type, k.cryptogram, k.kcv
    )
}

fn config(dir: &std::path::Path, k: &Keys, center: SocketAddr, timeout: &str) -> Config {
    let text = format!(
        r#"
[node]
acquirer_id = "48020000"
data_dir = "{dir}"
shutdown_grace = "2s"
flow_workers = 3

[hsm]
lmk_file = "{dir}/lmk.txt"

[storage]
journal = "{dir}/journal.db"

[[listener]]
address = "127.0.0.1:0"

[[link]]
name = "center"
address = "{center}"
timeout = "{timeout}"
reconnect_min = "20ms"
reconnect_max = "100ms"
heartbeat = "30s"

[saf]
retry_interval = "100ms"

[[terminal]]
id = "{TID}"
merchant_id = "{MID}"
tmk = {tmk}

[keys]
zak = {zak}
zpk = {zpk}

[admin]
address = "127.0.0.1:0"
"#,
        dir = dir.display(),
        tmk = key_toml(&k.tmk),
        zak = key_toml(&k.zak),
        zpk = key_toml(&k.zpk),
    );
    Config::from_toml(&text).unwrap()
}

// ---------------------------------------------------------------------------------------
// The fake center.

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Approve,
    Drop,
    Delay(Duration),
    /// Financial replies decline `05`, late by this much, with a MAC that does not verify.
    ForgedLateDecline(Duration),
    /// Financial replies are held until this many are, then written together in one write.
    Together(usize),
}

#[derive(Debug, Clone)]
struct Seen {
    mti: String,
    stan: String,
    acquirer: String,
    f61: Option<String>,
    mac_ok: bool,
    pin_ok: Option<bool>,
}

struct Center {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Center {
    async fn start(addr: &str) -> Center {
        let listener = TcpListener::bind(addr).await.unwrap();
        let c = Center {
            addr: listener.local_addr().unwrap(),
            mode: Arc::new(Mutex::new(Mode::Approve)),
            seen: Arc::new(Mutex::new(Vec::new())),
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        c.serve(listener);
        c
    }

    fn serve(&self, listener: TcpListener) {
        let (mode, seen, tasks) = (self.mode.clone(), self.seen.clone(), self.tasks.clone());
        let t2 = tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    return;
                };
                let (mode, seen) = (mode.clone(), seen.clone());
                t2.lock()
                    .unwrap()
                    .push(tokio::spawn(connection(s, mode, seen)));
            }
        });
        tasks.lock().unwrap().push(accept);
    }

    /// Closes the listener and every connection.
    async fn stop(&self) {
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().unwrap());
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }

    /// Listens again on the same address.
    async fn restart(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self, mti_prefix: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.mti.starts_with(mti_prefix))
            .count()
    }
}

async fn connection(mut s: TcpStream, mode: Arc<Mutex<Mode>>, seen: Arc<Mutex<Vec<Seen>>>) {
    let frame = FrameConfig::len2();
    let zak = DesKey::from_hex(ZAK).unwrap();
    let zpk = DesKey::from_hex(ZPK).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    // Mode::Together: the frames held so far and how many.
    let mut held: (Vec<u8>, usize) = (Vec::new(), 0);
    let (mut rd, mut wr) = s.split();
    loop {
        tokio::select! {
            out = rx.recv() => { let Some(out) = out else { return }; if wr.write_all(&out).await.is_err() { return } }
            n = rd.read(&mut chunk) => {
                let n = match n { Ok(0) | Err(_) => return, Ok(n) => n };
                buf.extend_from_slice(&chunk[..n]);
                while let Some((f, used)) = frame.decode(&buf).unwrap() {
                    let body = f.body.to_vec();
                    buf.drain(..used);
                    let msg = decode(specs::cups_pos(), &body).unwrap();
                    let text = |n: u16| msg.field(n).map(|f| f.to_string());
                    let mac_ok = match msg.field(64) {
                        Some(f) => mac::x9_19(&zak, &body[..f.offset()]).unwrap().as_slice() == f.raw(),
                        None => msg.mti() == "0820",
                    };
                    let pin_ok = msg.field(52).map(|f| {
                        let block = pinblock::decrypt_block(&zpk, &f.raw().try_into().unwrap());
                        let pan = Pan::new(&text(2).unwrap()).unwrap();
                        pinblock::decode(PinBlockFormat::Iso0, &block, &pan).is_ok_and(|p| p.ct_eq(&pboc_sam::Pin::new("1234").unwrap()))
                    });
                    seen.lock().unwrap().push(Seen {
                        mti: msg.mti().to_owned(),
                        stan: text(11).unwrap_or_default(),
                        acquirer: text(32).unwrap_or_default(),
                        f61: text(61),
                        mac_ok,
                        pin_ok,
                    });
                    let m = *mode.lock().unwrap();
                    let financial = msg.mti().starts_with("02");
                    if financial && m == Mode::Drop {
                        continue;
                    }
                    let mut r = MessageBuf::new(&format!("{}{}", &msg.mti()[..2], if msg.mti().starts_with("08") { "30" } else { "10" })).unwrap();
                    for n in [2u16, 3, 4, 11, 32, 41, 42, 49] {
                        if let Some(v) = text(n) { r.set(n, v); }
                    }
                    let forged = matches!(m, Mode::ForgedLateDecline(_)) && financial;
                    r.set(39, if forged { "05" } else { "00" });
                    let out_body = if msg.mti().starts_with("08") {
                        r.to_vec(specs::cups_pos()).unwrap()
                    } else {
                        if financial {
                            r.set(12, "101112").set(13, "0611").set(37, "000000000042").set(38, "AB1234");
                        }
                        r.set(64, vec![0u8; 8]);
                        let mut b = r.to_vec(specs::cups_pos()).unwrap();
                        let n = b.len();
                        let m = mac::x9_19(&zak, &b[..n - 8]).unwrap();
                        b[n - 8..].copy_from_slice(&m);
                        if forged {
                            b[n - 1] ^= 0x01;
                        }
                        b
                    };
                    let mut out = Vec::new();
                    frame.encode(None, None, &out_body, &mut out).unwrap();
                    if let (Mode::Together(n), true) = (m, financial) {
                        held.0.extend_from_slice(&out);
                        held.1 += 1;
                        if held.1 == n {
                            let _ = tx.send(std::mem::take(&mut held.0)).await;
                            held.1 = 0;
                        }
                        continue;
                    }
                    let tx = tx.clone();
                    let delay = match m {
                        Mode::Delay(d) | Mode::ForgedLateDecline(d) if financial => d,
                        _ => Duration::ZERO,
                    };
                    tokio::spawn(async move { sleep(delay).await; let _ = tx.send(out).await; });
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// A minimal terminal.

struct Terminal {
    stream: TcpStream,
    tid: String,
    tmk: DesKey,
    pik: Option<DesKey>,
    mak: Option<DesKey>,
}

fn tpdu() -> Tpdu {
    Tpdu::new(0x0000, 0x0001)
}

fn header() -> CupsHeader {
    "603100311003".parse().unwrap()
}

impl Terminal {
    async fn connect(addr: SocketAddr, tid: &str) -> Terminal {
        Terminal {
            stream: TcpStream::connect(addr).await.unwrap(),
            tid: tid.to_owned(),
            tmk: DesKey::from_hex(TMK).unwrap(),
            pik: None,
            mak: None,
        }
    }

    /// Sends a body and returns the response frame (whole) and body.
    async fn exchange_raw(&mut self, body: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut out = Vec::new();
        FrameConfig::cups_pos()
            .encode(Some(tpdu()), Some(header()), body, &mut out)
            .unwrap();
        self.stream.write_all(&out).await.unwrap();
        self.read_response().await
    }

    async fn read_response(&mut self) -> (Vec<u8>, Vec<u8>) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        loop {
            if let Some((f, used)) = FrameConfig::cups_pos().decode(&buf).unwrap() {
                assert_eq!(f.tpdu, Some(tpdu().reply()), "TPDU addresses swapped");
                assert_eq!(f.header, Some(header()), "header echoed");
                return (buf[..used].to_vec(), f.body.to_vec());
            }
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "connection closed");
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn exchange(&mut self, body: &[u8]) -> Vec<u8> {
        self.exchange_raw(body).await.1
    }

    fn signed(&self, mut m: MessageBuf<'_>) -> Vec<u8> {
        m.set(64, vec![0u8; 8]);
        let mut b = m.to_vec(specs::cups_pos()).unwrap();
        let n = b.len();
        let mac = mac::pos_ecb(self.mak.as_ref().unwrap(), &b[..n - 8]);
        b[n - 8..].copy_from_slice(&mac);
        b
    }

    async fn sign_in(&mut self) -> Vec<u8> {
        let mut m = MessageBuf::new("0800").unwrap();
        m.set(11, "000001")
            .set(41, self.tid.clone())
            .set(42, MID)
            .set(60, "00000001003")
            .set(63, "01 ");
        let resp = self.exchange(&m.to_vec(specs::cups_pos()).unwrap()).await;
        let msg = decode(specs::cups_pos(), &resp).unwrap();
        if msg.field(39).unwrap().as_str().unwrap() == "00" {
            let keys = keyexchange::parse_field62(&self.tmk, msg.field(62).unwrap().raw()).unwrap();
            self.pik = Some(keys.pik);
            self.mak = Some(keys.mak);
        }
        resp
    }

    fn purchase(&self, stan: u32, amount: u64) -> Vec<u8> {
        let pan = Pan::new(PAN).unwrap();
        let clear = pinblock::encode(
            PinBlockFormat::Iso0,
            &Pin::new("1234").unwrap(),
            &pan,
            &[0; 8],
        )
        .unwrap();
        let block = pinblock::encrypt_block(self.pik.as_ref().unwrap(), &clear);
        let mut m = MessageBuf::new("0200").unwrap();
        m.set(2, PAN)
            .set(3, "000000")
            .set(4, format!("{amount:012}"))
            .set(11, format!("{stan:06}"))
            .set(14, "3012")
            .set(22, "021")
            .set(25, "00")
            .set(26, "06")
            .set(35, format!("{PAN}D30121010000"))
            .set(41, self.tid.clone())
            .set(42, MID)
            .set(49, "156")
            .set(52, block.to_vec())
            .set(53, "2600000000000000")
            .set(60, "22000001");
        self.signed(m)
    }

    /// Checks a response's MAC and returns field 39.
    fn check(&self, resp: &[u8]) -> String {
        let msg = decode(specs::cups_pos(), resp).unwrap();
        let f = msg.field(64).expect("response MAC");
        let mac = mac::pos_ecb(self.mak.as_ref().unwrap(), &resp[..f.offset()]);
        assert_eq!(f.raw(), mac.as_slice(), "response MAC verifies");
        code(resp)
    }
}

fn code(resp: &[u8]) -> String {
    decode(specs::cups_pos(), resp)
        .unwrap()
        .field(39)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

fn field(resp: &[u8], n: u16) -> Option<String> {
    decode(specs::cups_pos(), resp)
        .unwrap()
        .field(n)
        .map(|f| f.to_string())
}

async fn start(name: &str, timeout: &str) -> (PathBuf, Keys, Center, FrontHandle) {
    let dir = temp_dir(name);
    let k = keys(&dir);
    let center = Center::start("127.0.0.1:0").await;
    let front = Front::start_with_hsm(
        config(&dir, &k, center.addr, timeout),
        k.hsm.clone() as Arc<dyn SecurityModule>,
    )
    .await
    .unwrap();
    assert!(front.wait_link_up(Duration::from_secs(5)).await);
    (dir, k, center, front)
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn journal_entry(front: &FrontHandle, stan: u32) -> posp_node::store::JournalEntry {
    let mut v = front
        .shared()
        .store
        .by_terminal_stan(TID, stan)
        .await
        .unwrap();
    assert_eq!(v.len(), 1);
    v.remove(0)
}

// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_returns_field_62_whose_kcvs_match() {
    let (_dir, _k, _center, front) = start("signin", "2s").await;
    let mut t = Terminal::connect(front.local_addr(), TID).await;
    let resp = t.sign_in().await;
    let msg = decode(specs::cups_pos(), &resp).unwrap();
    assert_eq!(msg.mti(), "0810");
    assert_eq!(code(&resp), "00");
    assert_eq!(field(&resp, 11).as_deref(), Some("000001"));
    assert_eq!(field(&resp, 60).as_deref(), Some("00000001003"));
    assert!(!msg.has(64), "0810 carries no MAC");
    let f62 = msg.field(62).unwrap().raw();
    assert_eq!(f62.len(), 40);
    assert_eq!(&f62[28..36], &[0u8; 8]);
    let tmk = DesKey::from_hex(TMK).unwrap();
    let pik = keyexchange::decrypt_key(&tmk, &f62[..16]).unwrap();
    let mak = keyexchange::decrypt_key(&tmk, &f62[20..28]).unwrap();
    assert_eq!(
        pik.kcv(pboc_sam::KcvLength::UNIONPAY).as_bytes(),
        &f62[16..20]
    );
    assert_eq!(
        mak.kcv(pboc_sam::KcvLength::UNIONPAY).as_bytes(),
        &f62[36..40]
    );
    assert_eq!(pik.len(), 16);
    assert_eq!(mak.len(), 8);
    assert_eq!(front.shared().sessions.len(), 1);
    front.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchase_is_approved_with_macs_both_ways_and_journaled() {
    let (_dir, _k, center, front) = start("purchase", "2s").await;
    let mut t = Terminal::connect(front.local_addr(), TID).await;
    t.sign_in().await;
    let resp = t.exchange(&t.purchase(7, 1234)).await;
    assert_eq!(t.check(&resp), "00");
    assert_eq!(decode(specs::cups_pos(), &resp).unwrap().mti(), "0210");
    assert_eq!(field(&resp, 2).as_deref(), Some(PAN));
    assert_eq!(field(&resp, 4).as_deref(), Some("000000001234"));
    assert_eq!(field(&resp, 11).as_deref(), Some("000007"));
    assert_eq!(field(&resp, 37).as_deref(), Some("000000000042"));
    assert_eq!(field(&resp, 38).as_deref(), Some("AB1234"));
    let seen = center.seen();
    let up: Vec<_> = seen.iter().filter(|s| s.mti == "0200").collect();
    assert_eq!(up.len(), 1);
    assert!(up[0].mac_ok, "X9.19 MAC under the ZAK");
    assert_eq!(up[0].pin_ok, Some(true), "PIN translated to the ZPK");
    assert_eq!(up[0].acquirer, "48020000");
    let e = journal_entry(&front, 7).await;
    assert_eq!(e.state, TxnState::Approved);
    assert_eq!(e.kind, TxnKind::Purchase);
    assert_eq!(e.amount, 1234);
    assert_eq!(e.rrn.as_deref(), Some("000000000042"));
    assert_eq!(e.auth_code.as_deref(), Some("AB1234"));
    assert_eq!(e.response_code.as_deref(), Some("00"));
    assert_eq!(e.masked_pan.as_deref(), Some("622202*********0123"));
    assert_eq!(format!("{:06}", e.upstream_stan.unwrap()), up[0].stan);
    let stored = decode(specs::cups_pos(), &e.request).unwrap();
    assert!(!stored.has(2) && !stored.has(35) && !stored.has(52) && !stored.has(64));
    let stored = decode(specs::cups_pos(), e.response.as_ref().unwrap()).unwrap();
    assert_eq!(
        stored.field(2).unwrap().to_string(),
        "0".repeat(19),
        "PAN zeroed in the journal"
    );
    assert!(!stored.has(64));
    assert_eq!(front.shared().metrics.count("PURCHASE", "00"), 1);
    front.shutdown().await;
}

/// Two responses from the center in one write (so in one read on the link): each reaches
/// its own request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_gathered_in_one_write_each_reach_their_request() {
    let (_dir, _k, center, front) = start("together", "2s").await;
    let mut a = Terminal::connect(front.local_addr(), TID).await;
    a.sign_in().await;
    // A second connection of the same terminal, with the keys of the first's sign-in.
    let mut b = Terminal::connect(front.local_addr(), TID).await;
    b.pik = a.pik.clone();
    b.mak = a.mak.clone();
    center.set(Mode::Together(2));
    let (req_a, req_b) = (a.purchase(31, 100), b.purchase(32, 200));
    let (resp_a, resp_b) = tokio::join!(a.exchange(&req_a), b.exchange(&req_b));
    assert_eq!(
        (a.check(&resp_a), b.check(&resp_b)),
        ("00".to_owned(), "00".to_owned())
    );
    assert_eq!(field(&resp_a, 11).as_deref(), Some("000031"));
    assert_eq!(field(&resp_b, 11).as_deref(), Some("000032"));
    assert_eq!(field(&resp_a, 4).as_deref(), Some("000000000100"));
    assert_eq!(field(&resp_b, 4).as_deref(), Some("000000000200"));
    assert_eq!(journal_entry(&front, 31).await.state, TxnState::Approved);
    assert_eq!(journal_entry(&front, 32).await.state, TxnState::Approved);
    assert_eq!(center.count("02"), 2);
    front.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_mac_unregistered_and_not_signed_in_are_refused() {
    let (_dir, _k, center, front) = start("refusals", "2s").await;
    // Not signed in: 99.
    let mut t = Terminal::connect(front.local_addr(), TID).await;
    t.mak = Some(DesKey::from_hex("0101010101010101").unwrap());
    t.pik = Some(DesKey::from_hex(ZPK).unwrap());
    let resp = t.exchange(&t.purchase(1, 100)).await;
    assert_eq!(code(&resp), "99");
    assert_eq!(field(&resp, 11).as_deref(), Some("000001"));
    // Unregistered: 97.
    let mut u = Terminal::connect(front.local_addr(), "99999999").await;
    u.mak = t.mak.clone();
    u.pik = t.pik.clone();
    let resp = u.exchange(&u.purchase(2, 100)).await;
    assert_eq!(code(&resp), "97");
    assert_eq!(field(&resp, 41).as_deref(), Some("99999999"));
    // Bad MAC: A0.
    t.sign_in().await;
    let mut body = t.purchase(3, 100);
    let n = body.len();
    body[n - 1] ^= 0x01;
    let resp = t.exchange(&body).await;
    assert_eq!(code(&resp), "A0");
    // A tampered field: A0 too.
    let mut body = t.purchase(4, 100);
    let amount_at = decode(specs::cups_pos(), &body)
        .unwrap()
        .field(4)
        .unwrap()
        .body_offset();
    body[amount_at + 5] ^= 0x01;
    assert_eq!(code(&t.exchange(&body).await), "A0");
    assert_eq!(center.count("02"), 0, "nothing went upstream");
    assert!(
        front
            .shared()
            .store
            .by_terminal_stan(TID, 3)
            .await
            .unwrap()
            .is_empty()
    );
    front.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn center_timeout_gives_98_and_exactly_one_reversal() {
    let (_dir, _k, center, front) = start("timeout", "300ms").await;
    let mut t = Terminal::connect(front.local_addr(), TID).await;
    t.sign_in().await;
    center.set(Mode::Drop);
    let resp = t.exchange(&t.purchase(11, 500)).await;
    assert_eq!(t.check(&resp), "98");
    // The reversal was queued before the 98 went out.
    let e = journal_entry(&front, 11).await;
    assert!(
        matches!(e.state, TxnState::ReversalQueued | TxnState::Reversed),
        "{}",
        e.state
    );
    wait_for("the reversal", || center.count("04") == 1).await;
    let store = &front.shared().store;
    for _ in 0..200 {
        if store.get(e.id).await.unwrap().unwrap().state == TxnState::Reversed {
            break;
        }
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        store.get(e.id).await.unwrap().unwrap().state,
        TxnState::Reversed
    );
    sleep(Duration::from_millis(400)).await;
    let rev: Vec<_> = center
        .seen()
        .into_iter()
        .filter(|s| s.mti.starts_with("04"))
        .collect();
    assert_eq!(rev.len(), 1, "exactly one reversal");
    assert_eq!(rev[0].mti, "0400");
    assert!(rev[0].mac_ok);
    let ustan = format!("{:06}", e.upstream_stan.unwrap());
    assert_eq!(rev[0].stan, ustan);
    assert_eq!(
        rev[0].f61.as_deref(),
        Some(format!("000001{ustan}{}", e.local_date).as_str())
    );
    let depths = store.depths().await.unwrap();
    assert_eq!(depths.len(), 1);
    assert_eq!((depths[0].queued, depths[0].exception), (0, 0));
    assert_eq!(
        front
            .shared()
            .metrics
            .reversals_done
            .load(Ordering::Relaxed),
        1
    );
    front.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn center_down_saf_holds_the_reversal_then_drains() {
    let (_dir, _k, center, front) = start("down", "3s").await;
    let mut t = Terminal::connect(front.local_addr(), TID).await;
    t.sign_in().await;
    center.set(Mode::Drop);
    let body = t.purchase(21, 900);
    let mut out = Vec::new();
    FrameConfig::cups_pos()
        .encode(Some(tpdu()), Some(header()), &body, &mut out)
        .unwrap();
    t.stream.write_all(&out).await.unwrap();
    wait_for("the purchase upstream", || center.count("0200") == 1).await;
    center.stop().await; // the connection drops with the purchase outstanding
    let (_, resp) = t.read_response().await;
    assert_eq!(t.check(&resp), "98");
    let store = front.shared().store.clone();
    let e = journal_entry(&front, 21).await;
    assert_eq!(e.state, TxnState::ReversalQueued);
    sleep(Duration::from_millis(300)).await;
    let d = store.depths().await.unwrap();
    assert_eq!((d[0].queued, d[0].exception), (1, 0), "the SAF holds it");
    assert_eq!(center.count("04"), 0);
    // While the center is down a new purchase is not sent: 96, FAILED.
    let resp = t.exchange(&t.purchase(22, 100)).await;
    assert_eq!(t.check(&resp), "96");
    assert_eq!(journal_entry(&front, 22).await.state, TxnState::Failed);
    center.set(Mode::Approve);
    center.restart().await;
    wait_for("the reversal after recovery", || center.count("04") == 1).await;
    for _ in 0..200 {
        if store.get(e.id).await.unwrap().unwrap().state == TxnState::Reversed {
            break;
        }
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        store.get(e.id).await.unwrap().unwrap().state,
        TxnState::Reversed
    );
    let d = store.depths().await.unwrap();
    assert_eq!((d[0].queued, d[0].exception), (0, 0));
    front.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_get_94_while_pending_and_the_stored_response_after() {
    let (_dir, _k, center, front) = start("dup", "3s").await;
    let mut t = Terminal::connect(front.local_addr(), TID).await;
    t.sign_in().await;
    let mut t2 = Terminal::connect(front.local_addr(), TID).await;
    t2.mak = t.mak.clone();
    center.set(Mode::Delay(Duration::from_millis(500)));
    let body = t.purchase(31, 700);
    let mut out = Vec::new();
    FrameConfig::cups_pos()
        .encode(Some(tpdu()), Some(header()), &body, &mut out)
        .unwrap();
    t.stream.write_all(&out).await.unwrap();
    wait_for("the purchase upstream", || center.count("0200") == 1).await;
    let dup = t2.exchange(&body).await;
    assert_eq!(t2.check(&dup), "94");
    let (first_frame, first) = t.read_response().await;
    assert_eq!(t.check(&first), "00");
    center.set(Mode::Approve);
    let (replay_frame, replay) = t2.exchange_raw(&body).await;
    assert_eq!(replay, first, "the stored response, byte for byte");
    assert_eq!(replay_frame, first_frame);
    assert_eq!(center.count("0200"), 1, "the duplicate never went upstream");
    assert_eq!(journal_entry(&front, 31).await.state, TxnState::Approved);
    front.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_unfinished_entries_queues_their_reversals() {
    let dir = temp_dir("restart");
    let k = keys(&dir);
    let center = Center::start("127.0.0.1:0").await;
    let cfg = config(&dir, &k, center.addr, "2s");
    // A journal left by a crash: one entry SENT (upstream STAN 777), one PENDING.
    let (sent_id, pending_id) = {
        let store = SqliteStore::open(&cfg.storage.journal, &StoreConfig::default()).unwrap();
        let mut m = MessageBuf::new("0200").unwrap();
        m.set(3, "000000")
            .set(4, "000000000300")
            .set(11, "000041")
            .set(41, TID)
            .set(42, MID)
            .set(49, "156")
            .set(60, "22000001");
        let request = m.to_vec(specs::cups_pos()).unwrap();
        let entry = |stan: u32| NewEntry {
            created_at: 1_000,
            origin: Origin::Terminal,
            terminal_id: TID.into(),
            merchant_id: MID.into(),
            batch: 1,
            stan,
            local_date: "0611".into(),
            local_time: "101010".into(),
            kind: TxnKind::Purchase,
            mti: "0200".into(),
            processing_code: "000000".into(),
            amount: 300,
            masked_pan: None,
            original_id: None,
            request: request.clone(),
        };
        let a = match store.insert(entry(41)).await.unwrap() {
            posp_node::store::InsertOutcome::Inserted(e) => e.id,
            other => panic!("{other:?}"),
        };
        store
            .update_state(
                a,
                StateUpdate {
                    upstream_stan: Some(777),
                    ..StateUpdate::to(TxnState::Sent, 2_000)
                },
            )
            .await
            .unwrap();
        let b = match store.insert(entry(42)).await.unwrap() {
            posp_node::store::InsertOutcome::Inserted(e) => e.id,
            other => panic!("{other:?}"),
        };
        store.shutdown();
        (a, b)
    };
    let front = Front::start_with_hsm(cfg, k.hsm.clone() as Arc<dyn SecurityModule>)
        .await
        .unwrap();
    assert_eq!(front.recovery().reversals_queued, vec![sent_id, pending_id]);
    wait_for("two reversals", || center.count("04") == 2).await;
    let rev: Vec<_> = center
        .seen()
        .into_iter()
        .filter(|s| s.mti.starts_with("04"))
        .collect();
    assert_eq!(rev[0].stan, "000777");
    assert_eq!(rev[0].f61.as_deref(), Some("0000010007770611"));
    assert!(rev.iter().all(|r| r.mac_ok));
    let store = &front.shared().store;
    for id in [sent_id, pending_id] {
        for _ in 0..200 {
            if store.get(id).await.unwrap().unwrap().state == TxnState::Reversed {
                break;
            }
            sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            store.get(id).await.unwrap().unwrap().state,
            TxnState::Reversed
        );
    }
    front.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_message_gets_30() {
    let (_dir, _k, center, front) = start("malformed", "2s").await;
    let mut t = Terminal::connect(front.local_addr(), TID).await;
    t.sign_in().await;
    // A purchase whose field 4 holds a BCD nibble that is not a digit.
    let mut body = t.purchase(51, 100);
    let at = decode(specs::cups_pos(), &body)
        .unwrap()
        .field(4)
        .unwrap()
        .body_offset();
    body[at] = 0xA0;
    let resp = t.exchange(&body).await;
    let msg = decode(specs::cups_pos(), &resp).unwrap();
    assert_eq!(msg.mti(), "0210");
    assert_eq!(code(&resp), "30");
    assert_eq!(field(&resp, 11).as_deref(), Some("000051"));
    assert_eq!(field(&resp, 41).as_deref(), Some(TID));
    assert_eq!(
        front.shared().metrics.format_errors.load(Ordering::Relaxed),
        1
    );
    assert_eq!(center.count("02"), 0);
    front.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlement_checks_the_journal_and_admin_reports() {
    let (_dir, _k, _center, front) = start("settle", "2s").await;
    let mut t = Terminal::connect(front.local_addr(), TID).await;
    t.sign_in().await;
    for (stan, amount) in [(61, 1000), (62, 250)] {
        let resp = t.exchange(&t.purchase(stan, amount)).await;
        assert_eq!(t.check(&resp), "00");
    }
    let settle = |totals: &str| {
        let mut m = MessageBuf::new("0500").unwrap();
        m.set(11, "000063")
            .set(41, TID)
            .set(42, MID)
            .set(48, totals.to_owned())
            .set(49, "156")
            .set(60, "00000001201")
            .set(63, "01 ");
        m.to_vec(specs::cups_pos()).unwrap()
    };
    let agree = format!("002{:012}000{:012}0{}", 1250, 0, "0".repeat(31));
    let resp = t.exchange(&settle(&agree)).await;
    assert_eq!(t.check(&resp), "00");
    assert_eq!(
        field(&resp, 48).as_deref(),
        Some(format!("002{:012}000{:012}1{}1", 1250, 0, "0".repeat(30)).as_str())
    );
    let disagree = format!("002{:012}000{:012}0{}", 1200, 0, "0".repeat(31));
    let resp = t.exchange(&settle(&disagree)).await;
    assert_eq!(
        field(&resp, 48).as_deref(),
        Some(format!("002{:012}000{:012}2{}2", 1200, 0, "0".repeat(30)).as_str())
    );

    let admin = front.admin_addr().unwrap();
    let (code, body) = posp_node::front::admin::fetch(admin, "/health")
        .await
        .unwrap();
    assert_eq!((code, body.as_str()), (200, "{\"status\":\"ok\"}\n"));
    let (code, body) = posp_node::front::admin::fetch(admin, "/status")
        .await
        .unwrap();
    assert_eq!(code, 200);
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<_> = s["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "listener",
            "flow#0",
            "flow#1",
            "flow#2",
            "link:center",
            "saf:center",
            "late:center",
            "admin"
        ]
    );
    assert_eq!(s["links"][0]["up"], true);
    assert_eq!(s["saf"][0]["queued"], 0);
    assert_eq!(s["signed_in"], 1);
    let (code, body) = posp_node::front::admin::fetch(admin, "/metrics")
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert!(
        body.contains("posp_transactions_total{kind=\"PURCHASE\",code=\"00\"} 2\n"),
        "{body}"
    );
    assert!(body.contains("posp_transactions_total{kind=\"SETTLEMENT\",code=\"00\"} 2\n"));
    assert!(body.contains("posp_link_up{link=\"center\"} 1\n"));
    assert_eq!(
        posp_node::front::admin::fetch(admin, "/nope")
            .await
            .unwrap()
            .0,
        404
    );
    front.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_approval_after_a_timeout_keeps_its_reversal() {
    let (_dir, _k, center, front) = start("late", "300ms").await;
    let mut t = Terminal::connect(front.local_addr(), TID).await;
    t.sign_in().await;
    center.set(Mode::Delay(Duration::from_millis(800)));
    let resp = t.exchange(&t.purchase(71, 400)).await;
    assert_eq!(t.check(&resp), "98");
    let metrics = &front.shared().metrics;
    wait_for("the late approval", || {
        metrics.late_approvals.load(Ordering::Relaxed) == 1
    })
    .await;
    let e = journal_entry(&front, 71).await;
    assert_eq!(e.state, TxnState::Reversed, "the reversal stands");
    assert_eq!(center.count("04"), 1);
    assert_eq!(metrics.unmatched.load(Ordering::Relaxed), 0);
    // The late approval is journaled as a link event, card data removed.
    let events = front.shared().store.reader().link_events(10).unwrap();
    assert_eq!(events.len(), 1);
    let ev = &events[0].event;
    assert_eq!(ev.kind, posp_node::store::LinkEventKind::LateApproval);
    assert_eq!(ev.journal_id, Some(e.id));
    assert_eq!(ev.response_code.as_deref(), Some("00"));
    assert_eq!(ev.link, "center");
    let msg = decode(specs::cups_pos(), &ev.message).unwrap();
    assert_eq!(msg.mti(), "0210");
    assert!(!msg.has(2) && !msg.has(64));
    front.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_decline_with_a_bad_mac_is_journaled_and_does_not_cancel_the_reversal() {
    let (_dir, _k, center, front) = start("forged", "300ms").await;
    let mut t = Terminal::connect(front.local_addr(), TID).await;
    t.sign_in().await;
    center.set(Mode::ForgedLateDecline(Duration::from_millis(800)));
    let resp = t.exchange(&t.purchase(72, 500)).await;
    assert_eq!(t.check(&resp), "98");
    let metrics = &front.shared().metrics;
    wait_for("the forged late reply", || {
        metrics.unmatched.load(Ordering::Relaxed) == 1
    })
    .await;
    let events = front.shared().store.reader().link_events(10).unwrap();
    assert_eq!(events.len(), 1);
    let ev = &events[0].event;
    assert_eq!(ev.kind, posp_node::store::LinkEventKind::BadMac);
    assert_eq!(ev.response_code.as_deref(), Some("05"));
    assert_eq!(metrics.late_declines.load(Ordering::Relaxed), 0);
    // The entry is not declined: its reversal goes to the center.
    center.set(Mode::Approve);
    wait_for("the reversal", || center.count("04") == 1).await;
    let e = journal_entry(&front, 72).await;
    assert_eq!(ev.journal_id, Some(e.id));
    front.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_reversal_of_an_approved_purchase_goes_through_the_saf() {
    let (_dir, _k, center, front) = start("treversal", "2s").await;
    let mut t = Terminal::connect(front.local_addr(), TID).await;
    t.sign_in().await;
    let resp = t.exchange(&t.purchase(81, 650)).await;
    assert_eq!(t.check(&resp), "00");
    let reversal = {
        let mut m = MessageBuf::new("0400").unwrap();
        m.set(2, PAN)
            .set(3, "000000")
            .set(4, "000000000650")
            .set(11, "000081")
            .set(22, "021")
            .set(25, "00")
            .set(39, "06")
            .set(41, TID)
            .set(42, MID)
            .set(49, "156")
            .set(60, "22000001")
            .set(61, "0000010000810611");
        t.signed(m)
    };
    let (frame1, resp) = t.exchange_raw(&reversal).await;
    assert_eq!(t.check(&resp), "00");
    assert_eq!(decode(specs::cups_pos(), &resp).unwrap().mti(), "0410");
    assert_eq!(field(&resp, 4).as_deref(), Some("000000000650"));
    wait_for("the reversal upstream", || center.count("04") == 1).await;
    let store = &front.shared().store;
    let entries = store.by_terminal_stan(TID, 81).await.unwrap();
    assert_eq!(entries.len(), 2);
    let (orig, rev) = (&entries[0], &entries[1]);
    assert_eq!(rev.kind, TxnKind::Reversal);
    assert_eq!(rev.original_id, Some(orig.id));
    assert_eq!(rev.state, TxnState::Approved);
    for _ in 0..200 {
        if store.get(orig.id).await.unwrap().unwrap().state == TxnState::Reversed {
            break;
        }
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        store.get(orig.id).await.unwrap().unwrap().state,
        TxnState::Reversed
    );
    // The terminal resends it: the stored answer, nothing more upstream.
    let (frame2, again) = t.exchange_raw(&reversal).await;
    assert_eq!(again, resp);
    assert_eq!(frame2, frame1);
    sleep(Duration::from_millis(200)).await;
    assert_eq!(center.count("04"), 1);
    front.shutdown().await;
}
