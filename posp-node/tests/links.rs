#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The four connection modes of the front end's link, end to end on loopback: `init` into a
//! temporary directory, the real center with the demo cards (replying on its own connection
//! to the front end's receive address for the simplex mode), the front end, and pos-sim
//! terminals. For every mode: sign-in, an approved purchase with the center's authorization,
//! and a purchase whose reply the center drops (98, one reversal acknowledged); for the long
//! modes, the center restarting while a request is pending.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pboc_sam::{Lmk, SoftHsm};
use posp_node::center::{
    AuthRecord, AuthState, Center, CenterConfig, FaultSelector, Registry, seed_demo,
};
use posp_node::config::{Config, LinkMode};
use posp_node::front::{Front, FrontHandle};
use posp_node::init::{self, OsRandom};
use posp_node::possim::{CardHolder, Terminal, TerminalConfig, TerminalsFile, demo_card_holders};
use posp_node::store::{EntryFilter, Journal, JournalEntry, TxnKind, TxnState};
use tokio::time::{Instant, sleep};

/// The purchase amount (fen) whose reply the center drops.
const DROPPED: u64 = 8_888;

static SEQ: AtomicU64 = AtomicU64::new(0);

fn temp_dir(name: &str) -> PathBuf {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("posp-links-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A free loopback port (for the simplex receive address the center must know first).
fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A node: the center, the front end, the terminals, in `dir`.
struct Node {
    dir: PathBuf,
    hsm: Arc<SoftHsm>,
    center_config: CenterConfig,
    center: Option<Center>,
    front: FrontHandle,
    terminals: Vec<TerminalConfig>,
    /// The first link's path to the center when there is a second link.
    proxy: Option<Proxy>,
}

/// A TCP relay on loopback to the center: stopping it closes every relayed connection and
/// refuses new ones, as a broken network path would.
struct Proxy {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(to: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Proxy { addr, task }
    }

    /// Closes the listener and every relayed connection (aborting the task drops them).
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn start_center(config: &CenterConfig, hsm: &Arc<SoftHsm>) -> Center {
    let registry = Registry::open(&config.database).unwrap();
    Center::start(config, hsm.clone(), registry).await.unwrap()
}

/// How a test node is set up.
#[derive(Clone)]
struct Setup {
    mode: LinkMode,
    link_timeout: Duration,
    /// The link's heartbeat (the short mode's probe interval) when given.
    heartbeat: Option<Duration>,
    /// The upstream dialect of the links and the center.
    spec: &'static str,
    /// A second link, `center-b`, straight to the center, while the first goes through a
    /// [`Proxy`] the test can stop.
    second_link: bool,
}

impl Setup {
    fn new(mode: LinkMode, link_timeout: Duration) -> Setup {
        Setup {
            mode,
            link_timeout,
            heartbeat: None,
            spec: "cups-pos",
            second_link: false,
        }
    }
}

impl Node {
    async fn start(name: &str, mode: LinkMode, link_timeout: Duration) -> Node {
        Node::launch(name, Setup::new(mode, link_timeout)).await
    }

    /// [`Node::start`] with the link's heartbeat (the short mode's probe interval) when given.
    async fn start_with(
        name: &str,
        mode: LinkMode,
        link_timeout: Duration,
        heartbeat: Option<Duration>,
    ) -> Node {
        let setup = Setup {
            heartbeat,
            ..Setup::new(mode, link_timeout)
        };
        Node::launch(name, setup).await
    }

    async fn launch(name: &str, setup: Setup) -> Node {
        let Setup {
            mode,
            link_timeout,
            heartbeat,
            spec,
            second_link,
        } = setup;
        let dir = temp_dir(name);
        init::init(&dir).unwrap();
        let mut config = Config::load(&dir.join("posp.toml")).unwrap();
        let mut center_config = config.center.clone().unwrap();
        let lmk = Lmk::load(dir.join("lmk.txt")).unwrap();
        let hsm = Arc::new(SoftHsm::new(lmk, Box::new(OsRandom::open().unwrap())));

        // The center: demo cards, the reply of a purchase of DROPPED fen dropped.
        let registry = Registry::open(&center_config.database).unwrap();
        let keys = center_config.resolve_keys().unwrap();
        seed_demo(&registry, hsm.as_ref(), keys.pvk.as_ref()).unwrap();
        drop(registry);
        center_config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        center_config.spec = spec.to_owned();
        center_config.shutdown_grace = Duration::from_millis(500);
        center_config.faults.drop = Some(FaultSelector {
            amounts: vec![DROPPED],
            mtis: vec!["0200".to_owned()],
            ..FaultSelector::default()
        });
        let receive = (mode == LinkMode::SimplexLong).then(free_addr);
        if let Some(addr) = receive {
            center_config.reply_to =
                BTreeMap::from([(config.node.acquirer_id.clone(), addr.to_string())]);
        }
        let center = start_center(&center_config, &hsm).await;
        // Restarts listen where the first start did.
        center_config.listen = center.local_addr();

        // The front end on loopback, the link in `mode`.
        for l in &mut config.listeners {
            l.address = SocketAddr::from(([127, 0, 0, 1], 0));
        }
        if let Some(admin) = &mut config.admin {
            admin.address = SocketAddr::from(([127, 0, 0, 1], 0));
        }
        for link in &mut config.links {
            link.address = center.local_addr().to_string();
            link.mode = mode;
            link.spec = spec.to_owned();
            link.receive_address = receive;
            link.timeout = link_timeout;
            link.reconnect_min = Duration::from_millis(20);
            link.reconnect_max = Duration::from_millis(200);
            link.max_in_flight = 2;
            if let Some(h) = heartbeat {
                link.heartbeat = h;
            }
        }
        let mut proxy = None;
        if second_link {
            let mut b = config.links[0].clone();
            b.name = "center-b".to_owned();
            config.links.push(b);
            let p = Proxy::start(center.local_addr()).await;
            config.links[0].address = p.addr.to_string();
            proxy = Some(p);
        }
        config.saf.retry_interval = Duration::from_millis(100);
        config.center = None;
        let front = Front::start_with_hsm(config, hsm.clone()).await.unwrap();
        assert!(front.wait_link_up(Duration::from_secs(10)).await, "link up");
        let mut terminals = TerminalsFile::load(&dir.join("terminals.json"))
            .unwrap()
            .terminal_configs(Some(&front.local_addr().to_string()))
            .unwrap();
        for t in &mut terminals {
            t.response_timeout = Duration::from_secs(20);
        }
        Node {
            dir,
            hsm,
            center_config,
            center: Some(center),
            front,
            terminals,
            proxy,
        }
    }

    fn terminal(&self, i: usize) -> Terminal {
        Terminal::new(self.terminals[i].clone())
    }

    fn registry(&self) -> Registry {
        Registry::open(&self.center_config.database).unwrap()
    }

    async fn journal(&self) -> Vec<JournalEntry> {
        self.front
            .shared()
            .store
            .find(&EntryFilter::all(10_000))
            .await
            .unwrap()
    }

    /// The journal once no entry waits for its reversal (within 15 s).
    async fn journal_settled(&self) -> Vec<JournalEntry> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let entries = self.journal().await;
            let waiting = entries
                .iter()
                .any(|e| matches!(e.state, TxnState::TimedOut | TxnState::ReversalQueued));
            if !waiting || Instant::now() >= deadline {
                return entries;
            }
            sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(p) = self.proxy.take() {
            p.stop().await;
        }
        self.front.shutdown().await;
        if let Some(c) = self.center.take() {
            c.shutdown().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `f` of every approved purchase in the center's registry, sorted.
fn approved_purchases<T: Ord>(node: &Node, f: impl Fn(&AuthRecord) -> T) -> Vec<T> {
    let mut v: Vec<T> = node
        .registry()
        .authorizations()
        .unwrap()
        .iter()
        .filter(|a| a.kind == "purchase" && a.state == AuthState::Approved)
        .map(f)
        .collect();
    v.sort_unstable();
    v
}

fn rich() -> CardHolder {
    demo_card_holders().into_iter().next().unwrap()
}

fn auths_of(registry: &Registry, kind: &str, amount: u64) -> Vec<AuthRecord> {
    registry
        .authorizations()
        .unwrap()
        .into_iter()
        .filter(|a| a.kind == kind && a.amount == amount)
        .collect()
}

/// Sign-in, then a purchase the center approves: the terminal's answer and the center's
/// authorization row agree.
async fn sign_in_and_purchase(node: &Node, t: &mut Terminal, amount: u64) -> AuthRecord {
    let card = rich();
    if !t.is_signed_in() {
        let o = t.sign_in().await;
        assert_eq!(o.response_code.as_deref(), Some("00"), "{o}");
    }
    let o = t.purchase(&card.card, amount, &card.pin).await;
    assert_eq!(o.response_code.as_deref(), Some("00"), "{o}");
    assert!(o.is_approved());
    let rows = auths_of(&node.registry(), "purchase", amount);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = rows[0].clone();
    assert_eq!(row.mti, "0200");
    assert_eq!(row.acquirer, "48020000");
    assert_eq!(row.terminal, t.terminal_id());
    assert_eq!(row.response_code, "00");
    assert_eq!(row.state, AuthState::Approved);
    assert_eq!(row.rrn, o.rrn);
    assert_eq!(row.auth_code, o.auth_code);
    // The front end's journal: approved, sent with the upstream STAN the center saw.
    let entry = node
        .journal()
        .await
        .into_iter()
        .find(|e| e.kind == TxnKind::Purchase && e.amount.unsigned_abs() == amount)
        .unwrap();
    assert_eq!(entry.state, TxnState::Approved);
    assert_eq!(entry.response_code.as_deref(), Some("00"));
    assert_eq!(entry.upstream_stan, Some(row.stan));
    assert_eq!(entry.rrn, row.rrn);
    row
}

/// The purchase of DROPPED has been answered 98 by the front end: its reversal goes through
/// the SAF and the center acknowledges exactly one, which undoes the purchase.
async fn one_reversal_acknowledged(node: &Node) {
    let entries = node.journal_settled().await;
    let dropped: Vec<&JournalEntry> = entries
        .iter()
        .filter(|e| e.kind == TxnKind::Purchase && e.amount.unsigned_abs() == DROPPED)
        .collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].state, TxnState::Reversed);
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.state == TxnState::Reversed)
            .count(),
        1
    );
    let depths = node.front.shared().store.reader().saf_depths().unwrap();
    let left: (u64, u64) = depths
        .iter()
        .fold((0, 0), |(q, x), d| (q + d.queued, x + d.exception));
    assert_eq!(left, (0, 0));
    let registry = node.registry();
    let purchase = auths_of(&registry, "purchase", DROPPED);
    assert_eq!(purchase.len(), 1, "{purchase:?}");
    assert_eq!(purchase[0].response_code, "00");
    assert_eq!(purchase[0].state, AuthState::Reversed);
    let reversals: Vec<AuthRecord> = registry
        .authorizations()
        .unwrap()
        .into_iter()
        .filter(|a| a.kind == "reversal")
        .collect();
    assert_eq!(reversals.len(), 1, "{reversals:?}");
    assert_eq!(reversals[0].response_code, "00");
    assert_eq!(reversals[0].original_id, Some(purchase[0].id));
    assert_eq!(reversals[0].stan, purchase[0].stan);
    assert_eq!(
        node.front
            .shared()
            .metrics
            .reversals_sent
            .load(Ordering::Relaxed),
        1
    );
}

/// Sign-in, an approved purchase, a dropped reply reversed; then a later purchase approved.
async fn exchanges(mode: LinkMode, name: &str) -> Node {
    exchanges_with(name, Setup::new(mode, Duration::from_millis(800))).await
}

/// [`exchanges`] with a setup of its own.
async fn exchanges_with(name: &str, setup: Setup) -> Node {
    let mode = setup.mode;
    let node = Node::launch(name, setup).await;
    let mut t = node.terminal(0);
    sign_in_and_purchase(&node, &mut t, 12_345).await;
    let card = rich();
    let o = t.purchase(&card.card, DROPPED, &card.pin).await;
    assert_eq!(o.response_code.as_deref(), Some("98"), "{o}");
    assert!(!o.is_approved());
    one_reversal_acknowledged(&node).await;
    sign_in_and_purchase(&node, &mut t, 2_000).await;
    let link = node.front.shared().links.primary();
    assert_eq!(link.in_flight(), 0);
    assert_eq!(link.counters.timeouts.load(Ordering::Relaxed), 1);
    // Two purchases and the reversal (and the short mode's first readiness probe).
    let probes = u64::from(mode == LinkMode::FullDuplexShort);
    assert_eq!(link.counters.matched.load(Ordering::Relaxed), 3 + probes);
    assert_eq!(link.counters.sent.load(Ordering::Relaxed), 4 + probes);
    // Simplex: every response came on the connection the center opened.
    assert_eq!(link.counters.wrong_socket.load(Ordering::Relaxed), 0);
    node
}

/// The center stops while a purchase is pending and starts again: the pending request fails
/// at once (not by its timeout), 98 and its reversal once the link is back, and a later
/// purchase is approved.
async fn center_restart(mode: LinkMode, name: &str) {
    // A long timeout: the pending request must fail because the link dropped.
    let mut node = Node::start(name, mode, Duration::from_secs(8)).await;
    let mut t = node.terminal(0);
    sign_in_and_purchase(&node, &mut t, 1_000).await;
    let link = node.front.shared().links.primary().clone();
    assert!(link.is_up());
    assert_eq!(link.counters.connects.load(Ordering::Relaxed), 1);

    // The purchase whose reply is dropped: pending in the front end once the center has it.
    let card = rich();
    let pending = tokio::spawn(async move {
        let o = t.purchase(&card.card, DROPPED, &card.pin).await;
        (t, o)
    });
    let registry = node.registry();
    let deadline = Instant::now() + Duration::from_secs(10);
    while auths_of(&registry, "purchase", DROPPED).is_empty() && Instant::now() < deadline {
        sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(auths_of(&registry, "purchase", DROPPED).len(), 1);
    assert_eq!(link.in_flight(), 1);
    node.center.take().unwrap().shutdown().await;

    let (mut t, o) = pending.await.unwrap();
    assert_eq!(o.response_code.as_deref(), Some("98"), "{o}");
    assert_eq!(link.counters.timeouts.load(Ordering::Relaxed), 0);
    assert_eq!(link.in_flight(), 0);
    assert!(!link.is_up());
    assert_eq!(link.counters.disconnects.load(Ordering::Relaxed), 1);

    // The center is back: the link comes up, the SAF reverses the purchase.
    node.center = Some(start_center(&node.center_config, &node.hsm).await);
    assert!(node.front.wait_link_up(Duration::from_secs(10)).await);
    one_reversal_acknowledged(&node).await;
    sign_in_and_purchase(&node, &mut t, 2_000).await;
    assert_eq!(link.counters.connects.load(Ordering::Relaxed), 2);
    assert_eq!(link.counters.disconnects.load(Ordering::Relaxed), 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_duplex_long_purchase_and_dropped_reply() {
    exchanges(LinkMode::FullDuplexLong, "fdl")
        .await
        .stop()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_duplex_long_purchase_and_dropped_reply() {
    exchanges(LinkMode::HalfDuplexLong, "hdl")
        .await
        .stop()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simplex_long_purchase_and_dropped_reply() {
    exchanges(LinkMode::SimplexLong, "sl").await.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_duplex_short_purchase_and_dropped_reply() {
    let node = exchanges(LinkMode::FullDuplexShort, "fds").await;
    // A connection per exchange: nothing stays in flight and the link stayed up throughout.
    let link = node.front.shared().links.primary();
    assert!(link.is_up());
    assert_eq!(link.counters.connects.load(Ordering::Relaxed), 1);
    assert_eq!(link.counters.disconnects.load(Ordering::Relaxed), 0);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_duplex_long_center_restart() {
    center_restart(LinkMode::FullDuplexLong, "fdl-restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_duplex_long_center_restart() {
    center_restart(LinkMode::HalfDuplexLong, "hdl-restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simplex_long_center_restart() {
    center_restart(LinkMode::SimplexLong, "sl-restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simplex_without_receive_address_is_refused_naming_the_key() {
    let dir = temp_dir("sl-config");
    init::init(&dir).unwrap();
    let mut config = Config::load(&dir.join("posp.toml")).unwrap();
    config.links[0].mode = LinkMode::SimplexLong;
    config.links[0].receive_address = None;
    let e = Front::start(config).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "CONFIG at validate: config key link[0].receive_address: required with mode = \"simplex-long\": where the center connects to send responses"
    );
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_duplex_short_serves_terminals_at_once_within_max_in_flight_connections() {
    // Three terminals at once over at most 2 connections: the third request waits for a
    // connection slot, then goes through.
    let node = Node::start(
        "fds-parallel",
        LinkMode::FullDuplexShort,
        Duration::from_secs(5),
    )
    .await;
    let card = rich();
    let mut tasks = Vec::new();
    for i in 0..3 {
        let mut t = node.terminal(i);
        let card = card.clone();
        tasks.push(tokio::spawn(async move {
            let s = t.sign_in().await;
            let mut codes = vec![s.response_code];
            for amount in [100 + i as u64, 200 + i as u64] {
                let o = t.purchase(&card.card, amount, &card.pin).await;
                codes.push(o.response_code);
            }
            codes
        }));
    }
    for task in tasks {
        let codes = task.await.unwrap();
        assert_eq!(codes, vec![Some("00".to_owned()); 3]);
    }
    let approved = approved_purchases(&node, |a| a.amount);
    assert_eq!(approved, [100, 101, 102, 200, 201, 202]);
    let link = node.front.shared().links.primary();
    assert_eq!(link.in_flight(), 0);
    assert_eq!(link.counters.timeouts.load(Ordering::Relaxed), 0);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_duplex_short_readiness_probe_follows_the_center() {
    // The probe (an echo on its own connection) runs when no exchange succeeded for the
    // heartbeat: it takes the link down while the center is away and up when it is back.
    let mut node = Node::start_with(
        "fds-probe",
        LinkMode::FullDuplexShort,
        Duration::from_millis(800),
        Some(Duration::from_millis(100)),
    )
    .await;
    let mut t = node.terminal(0);
    sign_in_and_purchase(&node, &mut t, 1_000).await;
    let link = node.front.shared().links.primary().clone();
    node.center.take().unwrap().shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while link.is_up() && Instant::now() < deadline {
        sleep(Duration::from_millis(10)).await;
    }
    assert!(!link.is_up());
    assert_eq!(link.counters.disconnects.load(Ordering::Relaxed), 1);
    // Refused at once while down: nothing is sent, the journal says FAILED with 96.
    let card = rich();
    let o = t.purchase(&card.card, 1_500, &card.pin).await;
    assert_eq!(o.response_code.as_deref(), Some("96"), "{o}");
    let failed = node
        .journal()
        .await
        .into_iter()
        .find(|e| e.amount.unsigned_abs() == 1_500)
        .unwrap();
    assert_eq!(failed.state, TxnState::Failed);
    node.center = Some(start_center(&node.center_config, &node.hsm).await);
    assert!(node.front.wait_link_up(Duration::from_secs(10)).await);
    assert_eq!(link.counters.connects.load(Ordering::Relaxed), 2);
    sign_in_and_purchase(&node, &mut t, 2_000).await;
    assert!(auths_of(&node.registry(), "purchase", 1_500).is_empty());
    node.stop().await;
}

/// Every message the center journaled, as (direction, MTI, the spec its description names).
fn center_dialects(node: &Node) -> Vec<(String, String, String)> {
    node.registry()
        .journal()
        .unwrap()
        .into_iter()
        .map(|l| {
            let first = l.text.lines().next().unwrap_or("").to_owned();
            let spec = first
                .split_once('(')
                .and_then(|(_, r)| r.strip_suffix(')'))
                .unwrap_or("")
                .to_owned();
            (l.direction, l.mti, spec)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iso87_binary_upstream_purchase_and_dropped_reply() {
    // The terminals speak cups-pos; the link and the center ISO 8583:1987 binary, the MAC
    // an X9.19 under the zone MAC key in field 64.
    let setup = Setup {
        spec: "iso87-binary",
        ..Setup::new(LinkMode::FullDuplexLong, Duration::from_millis(800))
    };
    let node = exchanges_with("iso87b", setup).await;
    let link = node.front.shared().links.primary();
    assert_eq!(link.spec().name(), "iso87-binary");
    // Everything the center saw and answered was iso87-binary: two purchases, the dropped
    // one and its reversal, each with its answer (echoes aside).
    let seen: Vec<(String, String, String)> = center_dialects(&node)
        .into_iter()
        .filter(|(_, mti, _)| !mti.starts_with("08"))
        .collect();
    let iso = |d: &str, m: &str| (d.to_owned(), m.to_owned(), "iso87-binary".to_owned());
    assert_eq!(
        seen,
        vec![
            iso("in", "0200"),
            iso("out", "0210"),
            iso("in", "0200"),
            iso("out", "0210"),
            iso("in", "0400"),
            iso("out", "0410"),
            iso("in", "0200"),
            iso("out", "0210"),
        ]
    );
    // The terminal side stayed cups-pos: the listener's spec is not the link's.
    assert_eq!(node.front.shared().config.listeners[0].spec, "cups-pos");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iso87_ascii_upstream_purchase_with_a_hex_mac() {
    // iso87-ascii carries the MAC as 16 hex characters; sign-in and a purchase go through.
    let setup = Setup {
        spec: "iso87-ascii",
        ..Setup::new(LinkMode::FullDuplexLong, Duration::from_secs(5))
    };
    let node = Node::launch("iso87a", setup).await;
    let mut t = node.terminal(0);
    sign_in_and_purchase(&node, &mut t, 4_321).await;
    let seen: Vec<String> = center_dialects(&node)
        .into_iter()
        .filter(|(_, mti, _)| mti == "0200" || mti == "0210")
        .map(|(_, _, spec)| spec)
        .collect();
    assert_eq!(seen, vec!["iso87-ascii", "iso87-ascii"]);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_upstream_spec_is_refused_naming_the_key() {
    let dir = temp_dir("spec-config");
    init::init(&dir).unwrap();
    let text = std::fs::read_to_string(dir.join("posp.toml")).unwrap();
    let link_spec = text.replacen(
        "spec = \"cups-pos\"\n# framing: 2-byte binary length",
        "spec = \"iso8583-1987\"\n# framing: 2-byte binary length",
        1,
    );
    assert_ne!(link_spec, text);
    std::fs::write(dir.join("posp.toml"), &link_spec).unwrap();
    let e = Config::load(&dir.join("posp.toml")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "config key link[0].spec: \"iso8583-1987\" is not a built-in spec (one of \"cups-pos\", \"iso87-binary\", \"iso87-ascii\", \"iso93-ascii\")"
    );
    let mut config = Config::load(&{
        std::fs::write(dir.join("posp.toml"), &text).unwrap();
        dir.join("posp.toml")
    })
    .unwrap();
    config.center.as_mut().unwrap().spec = "iso87".to_owned();
    assert_eq!(
        config.validate().unwrap_err().to_string(),
        "config key center.spec: \"iso87\" is not a built-in spec (one of \"cups-pos\", \"iso87-binary\", \"iso87-ascii\", \"iso93-ascii\")"
    );
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iso93_ascii_upstream_purchase_and_dropped_reply() {
    // ISO 8583:1993 field 39 carries action codes (n3) and field 12 is n12: the center
    // answers an approval 000 (400 for a reversal), a decline its action code, and the
    // terminal gets the two-character code of the same meaning.
    let setup = Setup {
        spec: "iso93-ascii",
        ..Setup::new(LinkMode::FullDuplexLong, Duration::from_millis(800))
    };
    let node = exchanges_with("iso93", setup).await;
    // The first terminal again, past the STANs it has used (a new one starts at 1, and the
    // same STAN in the same second is a duplicate the front end answers from its journal).
    let mut config = node.terminals[0].clone();
    config.first_stan = 1_000;
    let mut t = Terminal::new(config);
    assert!(t.sign_in().await.is_approved());
    let holders = demo_card_holders();
    let (poor, lost) = (&holders[1], &holders[2]);
    let o = t.purchase(&poor.card, 6_000, &poor.pin).await;
    assert_eq!(o.response_code.as_deref(), Some("51"), "{o}");
    let o = t.purchase(&lost.card, 100, &lost.pin).await;
    assert_eq!(o.response_code.as_deref(), Some("41"), "{o}");
    let codes: Vec<(String, Option<String>)> = node
        .registry()
        .journal()
        .unwrap()
        .into_iter()
        .filter(|l| l.direction == "out" && !l.mti.starts_with("08"))
        .map(|l| (l.mti, l.response_code))
        .collect();
    let out = |m: &str, c: &str| (m.to_owned(), Some(c.to_owned()));
    assert_eq!(
        codes,
        vec![
            out("0210", "000"),
            out("0210", "000"),
            out("0410", "400"),
            out("0210", "000"),
            out("0210", "116"),
            out("0210", "208"),
        ]
    );
    // Neither decline was taken for a missing answer: one reversal in all, the dropped one.
    let link = node.front.shared().links.primary();
    assert_eq!(link.counters.timeouts.load(Ordering::Relaxed), 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_links_one_down_purchases_and_reversals_go_through_the_other() {
    let setup = Setup {
        second_link: true,
        ..Setup::new(LinkMode::FullDuplexLong, Duration::from_millis(800))
    };
    let mut node = Node::launch("two-links", setup).await;
    let links = &node.front.shared().links;
    assert_eq!(links.len(), 2);
    let (a, b) = (
        links.primary().clone(),
        links.get("center-b").unwrap().clone(),
    );
    assert!(a.is_up() && b.is_up());
    assert_eq!(links.saf_destination(), "center");
    // Both up and idle: the first link (fewest in flight, first on a tie) carries it.
    let mut t = node.terminal(0);
    sign_in_and_purchase(&node, &mut t, 1_111).await;
    assert_eq!(a.counters.matched.load(Ordering::Relaxed), 1);
    assert_eq!(b.counters.sent.load(Ordering::Relaxed), 0);

    // The first link's path breaks: it goes down and the other carries everything.
    node.proxy.take().unwrap().stop().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.is_up() && Instant::now() < deadline {
        sleep(Duration::from_millis(5)).await;
    }
    assert!(!a.is_up());
    assert!(b.is_up());
    sign_in_and_purchase(&node, &mut t, 2_222).await;
    let card = rich();
    let o = t.purchase(&card.card, DROPPED, &card.pin).await;
    assert_eq!(o.response_code.as_deref(), Some("98"), "{o}");
    // The reversal is queued under the first link's name and sent on the second.
    one_reversal_acknowledged(&node).await;
    sign_in_and_purchase(&node, &mut t, 3_333).await;
    assert_eq!(a.counters.sent.load(Ordering::Relaxed), 1);
    assert_eq!(a.counters.disconnects.load(Ordering::Relaxed), 1);
    // Purchases 2 222, DROPPED and 3 333 and the reversal.
    assert_eq!(b.counters.sent.load(Ordering::Relaxed), 4);
    assert_eq!(b.counters.matched.load(Ordering::Relaxed), 3);
    assert_eq!(b.counters.timeouts.load(Ordering::Relaxed), 1);

    // The admin endpoint shows both links, one down.
    let admin = node.front.admin_addr().unwrap();
    let (code, body) = posp_node::front::admin::fetch(admin, "/status")
        .await
        .unwrap();
    assert_eq!(code, 200);
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    let shown: Vec<(String, bool, u64)> = s["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_owned(),
                l["up"].as_bool().unwrap(),
                l["sent"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        vec![
            ("center".to_owned(), false, 1),
            ("center-b".to_owned(), true, 4)
        ]
    );
    let modules: Vec<String> = s["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .filter(|n| n.contains(':'))
        .collect();
    assert_eq!(
        modules,
        [
            "link:center",
            "link:center-b",
            "saf:center",
            "late:center",
            "late:center-b"
        ]
    );
    let (_, metrics) = posp_node::front::admin::fetch(admin, "/metrics")
        .await
        .unwrap();
    assert!(
        metrics.contains("posp_link_up{link=\"center\"} 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("posp_link_up{link=\"center-b\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("posp_link_sent_total{link=\"center-b\"} 4\n"),
        "{metrics}"
    );

    // No link up at all: refused with 96 at once, nothing sent (as with one link down).
    node.center.take().unwrap().shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.is_up() && Instant::now() < deadline {
        sleep(Duration::from_millis(5)).await;
    }
    assert!(!node.front.shared().links.any_up());
    let o = t.purchase(&card.card, 4_444, &card.pin).await;
    assert_eq!(o.response_code.as_deref(), Some("96"), "{o}");
    let failed = node
        .journal()
        .await
        .into_iter()
        .find(|e| e.amount.unsigned_abs() == 4_444)
        .unwrap();
    assert_eq!(failed.state, TxnState::Failed);
    assert_eq!(failed.upstream_stan, None);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_links_share_one_stan_sequence() {
    // Three terminals at once over two links: every purchase approved, each with an upstream
    // STAN of its own whichever link carried it (the links share one STAN sequence; a
    // repeated 32 + 41 + 11 would be a duplicate to the center).
    let setup = Setup {
        second_link: true,
        ..Setup::new(LinkMode::FullDuplexLong, Duration::from_secs(5))
    };
    let node = Node::launch("two-links-stan", setup).await;
    let card = rich();
    let mut tasks = Vec::new();
    for i in 0..3 {
        let mut t = node.terminal(i);
        let card = card.clone();
        tasks.push(tokio::spawn(async move {
            let mut codes = vec![t.sign_in().await.response_code];
            for amount in [500 + i as u64, 600 + i as u64] {
                codes.push(
                    t.purchase(&card.card, amount, &card.pin)
                        .await
                        .response_code,
                );
            }
            codes
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), vec![Some("00".to_owned()); 3]);
    }
    let stans = approved_purchases(&node, |a| a.stan);
    assert_eq!(stans, [1, 2, 3, 4, 5, 6]);
    let links = &node.front.shared().links;
    let sent: u64 = links
        .iter()
        .map(|l| l.counters.sent.load(Ordering::Relaxed))
        .sum();
    assert_eq!(sent, 6);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simplex_receive_address_refuses_a_source_not_allowed() {
    // The center connects from 127.0.0.1, the IP of the link's address: allowed by default.
    let node = Node::start("sl-allow", LinkMode::SimplexLong, Duration::from_secs(5)).await;
    let link = node.front.shared().links.primary().clone();
    assert!(link.config().receive_allow.is_empty());
    let mut t = node.terminal(0);
    sign_in_and_purchase(&node, &mut t, 1_000).await;
    let receive = link.config().receive_address.unwrap();
    assert_eq!(receive.ip(), std::net::IpAddr::from([127, 0, 0, 1]));

    // Another source (127.0.0.2, still loopback on Linux) is closed at once and counted.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from(([127, 0, 0, 2], 0))).unwrap();
    let mut intruder = socket.connect(receive).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut intruder, &mut buf),
    )
    .await
    .unwrap()
    .unwrap_or(0);
    assert_eq!(n, 0, "closed without a byte");
    let deadline = Instant::now() + Duration::from_secs(5);
    while link.counters.refused_peers.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
        sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(link.counters.refused_peers.load(Ordering::Relaxed), 1);

    // The link kept its receiving socket: still up, never down, and purchases go through.
    assert!(link.is_up());
    assert_eq!(link.counters.connects.load(Ordering::Relaxed), 1);
    assert_eq!(link.counters.disconnects.load(Ordering::Relaxed), 0);
    sign_in_and_purchase(&node, &mut t, 2_000).await;
    let admin = node.front.admin_addr().unwrap();
    let (_, body) = posp_node::front::admin::fetch(admin, "/status")
        .await
        .unwrap();
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["links"][0]["refused_peers"], 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simplex_receive_allow_can_exclude_the_center() {
    // receive_allow names only 127.0.0.2: the center's connection from 127.0.0.1 is refused,
    // so the link never comes up and purchases get 96 without being sent.
    let dir = temp_dir("sl-deny");
    init::init(&dir).unwrap();
    let mut config = Config::load(&dir.join("posp.toml")).unwrap();
    let mut center_config = config.center.clone().unwrap();
    let lmk = Lmk::load(dir.join("lmk.txt")).unwrap();
    let hsm = Arc::new(SoftHsm::new(lmk, Box::new(OsRandom::open().unwrap())));
    let receive = free_addr();
    center_config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    center_config.reply_to =
        BTreeMap::from([(config.node.acquirer_id.clone(), receive.to_string())]);
    let center = start_center(&center_config, &hsm).await;
    for l in &mut config.listeners {
        l.address = SocketAddr::from(([127, 0, 0, 1], 0));
    }
    config.admin = None;
    config.center = None;
    let link = &mut config.links[0];
    link.address = center.local_addr().to_string();
    link.mode = LinkMode::SimplexLong;
    link.receive_address = Some(receive);
    link.receive_allow = vec![std::net::IpAddr::from([127, 0, 0, 2])];
    let front = Front::start_with_hsm(config, hsm.clone()).await.unwrap();
    let link = front.shared().links.primary().clone();
    // The center reconnects with backoff; two refusals show it tried and was turned away.
    let deadline = Instant::now() + Duration::from_secs(10);
    while link.counters.refused_peers.load(Ordering::Relaxed) < 2 && Instant::now() < deadline {
        sleep(Duration::from_millis(5)).await;
    }
    assert!(link.counters.refused_peers.load(Ordering::Relaxed) >= 2);
    assert!(!link.is_up());
    assert_eq!(link.counters.connects.load(Ordering::Relaxed), 0);
    front.shutdown().await;
    center.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
