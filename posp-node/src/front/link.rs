//! The upstream link to the center (`len2` framing, messages in the link's `spec`, by
//! default `cups-pos`): requests and responses matched by key, over the sockets the link's
//! [`LinkMode`] says. Several links to one center form a [`Links`] group: they share the
//! upstream STAN counter and a link-up signal, and [`Links::pick`] chooses the up link with
//! the fewest requests in flight.
//!
//! | mode | sockets | up when |
//! |---|---|---|
//! | `full-duplex-long` | one long-lived connection to `address`, requests pipelined | connected |
//! | `half-duplex-long` | as full-duplex, one request outstanding (`max_in_flight` = 1) | connected |
//! | `simplex-long` | a long-lived connection to `address` the front end only sends on, and one the center opens to `receive_address` and only sends responses on | both connected |
//! | `full-duplex-short` | a new connection to `address` per exchange (request, response, close), at most `max_in_flight` at once | the last probe or exchange reached the center |
//!
//! - **Matching key**: MTI class (first two digits) + field 32 + field 41 + field 11, the
//!   STAN being the front end's upstream STAN ([`Link::alloc_stan`]: per link, 1 to 999999,
//!   never one that is in flight). Every mode matches the same way.
//! - The pending entry is registered **before** the request is written; a second request
//!   with a key in flight is refused ([`LinkError::Duplicate`]).
//! - At most `max_in_flight` requests are outstanding (1 in half-duplex mode); a request
//!   that finds no slot within its timeout fails with [`LinkError::Busy`], unsent.
//! - A request without a response within the timeout fails with [`LinkError::Timeout`]; its
//!   key is remembered (bounded by `late_memory`) so that a late response is recognised.
//!   Responses that match nothing go to the late handler ([`Link::take_late`]): they are
//!   logged and journaled there, never dropped silently.
//! - **Long modes**: when the link goes down (any of its sockets drops) every pending
//!   request fails with [`LinkError::Dropped`]; the front end reconnects its outgoing socket
//!   with exponential backoff (`reconnect_min` doubling to `reconnect_max`), and in simplex
//!   mode waits for the center to connect again to `receive_address` (a newer connection
//!   from the center replaces an older one; only connections from `receive_allow`, by
//!   default the IP addresses of `address`, are accepted there, others are closed, logged
//!   and counted in [`LinkCounters::refused_peers`]). An idle link sends an echo (0820, 60.3 =
//!   `301`) every `heartbeat`; an echo without an answer closes the connection(s). In simplex
//!   mode anything the center sends on the sending socket is taken as a response too.
//! - **Short mode**: an exchange that cannot connect fails with [`LinkError::Down`]
//!   (nothing was written) and marks the link down; one that gets its response marks it up.
//!   A connection that closes before the response fails its request with
//!   [`LinkError::Dropped`]. The readiness probe is the echo, on its own connection, when no
//!   exchange succeeded for `heartbeat` (every `reconnect_min` doubling to `reconnect_max`
//!   while the link is down).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use iso8583_wire::frame::FrameConfig;
use iso8583_wire::{MessageBuf, Spec, decode, specs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};
use tokio::time::{Instant, sleep, timeout, timeout_at};
use tracing::{debug, info, warn};

use crate::config::{LinkConfig, LinkMode};

/// Why an exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not connected: nothing was written.
    Down,
    /// No slot within the timeout (too many requests in flight): nothing was written.
    Busy,
    /// A request with the same key is in flight: nothing was written.
    Duplicate,
    /// Written (or queued to be written), no response within the timeout.
    Timeout,
    /// The connection dropped while the request was outstanding.
    Dropped,
    /// The request could not be framed (too large): nothing was written.
    Frame,
}

impl LinkError {
    /// A stable code for logs.
    pub fn code(self) -> &'static str {
        match self {
            LinkError::Down => "LINK_DOWN",
            LinkError::Busy => "LINK_BUSY",
            LinkError::Duplicate => "LINK_DUPLICATE_KEY",
            LinkError::Timeout => "LINK_TIMEOUT",
            LinkError::Dropped => "LINK_DROPPED",
            LinkError::Frame => "LINK_FRAME",
        }
    }

    /// Whether the request may have reached the center.
    pub fn maybe_sent(self) -> bool {
        matches!(self, LinkError::Timeout | LinkError::Dropped)
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkError::Down => "link down: not sent",
            LinkError::Busy => "no free slot on the link within the timeout: not sent",
            LinkError::Duplicate => "a request with this key is already in flight: not sent",
            LinkError::Timeout => "no response within the timeout",
            LinkError::Dropped => "the connection dropped before the response",
            LinkError::Frame => "the request does not fit a frame: not sent",
        })
    }
}

/// The matching key of a message: `class|32|41|11`.
pub fn match_key(mti: &str, acquirer: &str, terminal: &str, stan: u32) -> String {
    format!(
        "{}|{acquirer}|{terminal}|{stan:06}",
        mti.get(..2).unwrap_or("")
    )
}

/// The matching key of a body in `spec`, if it decodes and has field 11.
pub fn key_of(spec: &Spec, body: &[u8]) -> Option<String> {
    let msg = decode(spec, body).ok()?;
    let stan = u32::try_from(msg.field(11)?.to_u64().ok()?).ok()?;
    let acq = msg.field(32).map(|f| f.to_string()).unwrap_or_default();
    let tid = msg
        .field(41)
        .and_then(|f| f.as_str().ok().map(str::to_owned))
        .unwrap_or_default();
    Some(match_key(msg.mti(), &acq, &tid, stan))
}

/// A response that arrived with no request waiting for it.
#[derive(Debug, Clone)]
pub struct LateResponse {
    /// The body.
    pub body: Vec<u8>,
    /// Its matching key, if it decoded.
    pub key: Option<String>,
    /// The journal entry of the timed-out request it answers, when remembered.
    pub journal_id: Option<i64>,
}

struct Waiter {
    tx: oneshot::Sender<Vec<u8>>,
    stan: u32,
}

#[derive(Default)]
struct Pending {
    by_key: HashMap<String, Waiter>,
    stans: HashSet<u32>,
}

/// Which sockets of a long-mode link are connected.
#[derive(Default)]
struct Halves {
    send: bool,
    recv: bool,
}

/// What a long-lived socket does for the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Requests out and responses in (full- and half-duplex).
    Both,
    /// Requests out (simplex); anything received is still delivered.
    Send,
    /// Responses in (simplex, the connection the center opened).
    Recv,
}

impl Role {
    fn sends(self) -> bool {
        matches!(self, Role::Both | Role::Send)
    }

    fn receives(self) -> bool {
        matches!(self, Role::Both | Role::Recv)
    }

    fn name(self) -> &'static str {
        match self {
            Role::Both => "connection",
            Role::Send => "sending socket",
            Role::Recv => "receiving socket",
        }
    }
}

/// How a served socket ended.
enum Served {
    /// Closed (by either side, an error, a failed echo or shutdown).
    Closed,
    /// A newer connection from the center replaced it (simplex receiving socket).
    Replaced(TcpStream),
}

#[derive(Default)]
struct LateMemory {
    map: HashMap<String, Option<i64>>,
    order: VecDeque<String>,
}

/// Counters of a link.
#[derive(Debug, Default)]
pub struct LinkCounters {
    /// Times the link came up (both sockets in simplex mode; in short mode, a probe or an
    /// exchange reaching the center after the link was down).
    pub connects: AtomicU64,
    /// Times the link went down.
    pub disconnects: AtomicU64,
    /// Requests written.
    pub sent: AtomicU64,
    /// Responses matched.
    pub matched: AtomicU64,
    /// Requests timed out.
    pub timeouts: AtomicU64,
    /// Frames the center sent on a simplex link's sending socket, where none are expected
    /// (handled as responses all the same).
    pub wrong_socket: AtomicU64,
    /// Connections to a simplex link's `receive_address` refused because their source is
    /// not in `receive_allow` (by default the IP addresses of `address`).
    pub refused_peers: AtomicU64,
}

/// A link to the center. Share it with an `Arc`; [`Link::run`] keeps it connected.
pub struct Link {
    cfg: LinkConfig,
    acquirer: String,
    spec: &'static Spec,
    frame: FrameConfig,
    group_up: Arc<Notify>,
    up: AtomicBool,
    halves: Mutex<Halves>,
    last_ok: Mutex<Option<Instant>>,
    probe_wake: Notify,
    conn: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    pending: Mutex<Pending>,
    slots: Semaphore,
    stan: Arc<AtomicU32>,
    late: Mutex<LateMemory>,
    late_tx: mpsc::Sender<LateResponse>,
    late_rx: tokio::sync::Mutex<mpsc::Receiver<LateResponse>>,
    /// Wakes whoever waits for the link to come up (the SAF sender).
    pub up_notify: Notify,
    /// The link's counters.
    pub counters: LinkCounters,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("name", &self.cfg.name)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

impl Link {
    /// A link (not connected yet) for `cfg`, stamping field 32 with `acquirer`, with an
    /// upstream STAN counter of its own.
    pub fn new(cfg: LinkConfig, acquirer: &str) -> Link {
        Link::in_group(
            cfg,
            acquirer,
            Arc::new(AtomicU32::new(0)),
            Arc::new(Notify::new()),
        )
    }

    /// A link of a group: upstream STANs come from the group's `stan` counter (so no two
    /// links to one center send the same STAN the same day) and `group_up` is notified
    /// whenever the link comes up. The spec is `cfg.spec` (`cups-pos` if it is not a
    /// built-in name; [`crate::config::Config::validate`] refuses those).
    pub fn in_group(
        cfg: LinkConfig,
        acquirer: &str,
        stan: Arc<AtomicU32>,
        group_up: Arc<Notify>,
    ) -> Link {
        let spec = crate::wire::upstream_spec(&cfg.spec).unwrap_or_else(|_| specs::cups_pos());
        let mut frame = FrameConfig::len2();
        frame.max_frame(cfg.max_frame);
        let (late_tx, late_rx) = mpsc::channel(cfg.late_memory.max(1));
        Link {
            slots: Semaphore::new(cfg.effective_in_flight()),
            acquirer: acquirer.to_owned(),
            spec,
            frame,
            group_up,
            up: AtomicBool::new(false),
            halves: Mutex::new(Halves::default()),
            last_ok: Mutex::new(None),
            probe_wake: Notify::new(),
            conn: Mutex::new(None),
            pending: Mutex::new(Pending::default()),
            stan,
            late: Mutex::new(LateMemory::default()),
            late_tx,
            late_rx: tokio::sync::Mutex::new(late_rx),
            up_notify: Notify::new(),
            counters: LinkCounters::default(),
            cfg,
        }
    }

    /// The link's name (its SAF destination).
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Its configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }

    /// The ISO 8583 dialect it speaks (`spec`).
    pub fn spec(&self) -> &'static Spec {
        self.spec
    }

    /// The acquirer id it puts in field 32.
    pub fn acquirer(&self) -> &str {
        &self.acquirer
    }

    /// Whether it is connected.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.lock_pending().by_key.len()
    }

    /// Starts upstream STANs after `last` (e.g. the highest journaled today).
    pub fn seed_stan(&self, last: u32) {
        self.stan.store(last % 999_999, Ordering::Relaxed);
    }

    /// A new upstream STAN from the link's counter (the group's, for a link of a
    /// [`Links`]): 1 to 999999, cycling, never one in flight on this link.
    pub fn alloc_stan(&self) -> u32 {
        loop {
            let stan = next_stan(&self.stan);
            if !self.stan_in_flight(stan) {
                return stan;
            }
        }
    }

    /// Whether a request with upstream STAN `stan` is in flight on this link.
    pub fn stan_in_flight(&self, stan: u32) -> bool {
        self.lock_pending().stans.contains(&stan)
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_late(&self) -> std::sync::MutexGuard<'_, LateMemory> {
        self.late.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends a request body and waits for the response matching `key` (see the module
    /// documentation for the failures). `journal_id` is remembered with the key after a
    /// timeout so a late response finds its entry.
    pub async fn exchange(
        &self,
        body: &[u8],
        key: &str,
        stan: u32,
        journal_id: Option<i64>,
    ) -> Result<Vec<u8>, LinkError> {
        let deadline = Instant::now() + self.cfg.timeout;
        let _permit = match timeout_at(deadline, self.slots.acquire()).await {
            Ok(Ok(p)) => p,
            _ => return Err(LinkError::Busy),
        };
        let mut framed = Vec::with_capacity(body.len() + 2);
        self.frame
            .encode(None, None, body, &mut framed)
            .map_err(|_| LinkError::Frame)?;
        if self.cfg.mode == LinkMode::FullDuplexShort {
            return self
                .exchange_short(&framed, key, stan, journal_id, deadline)
                .await;
        }
        if !self.is_up() {
            return Err(LinkError::Down);
        }
        let tx = self
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(LinkError::Down)?;
        let orx = self.register(key, stan)?;
        // The link may have gone down between the check and the registration (a simplex
        // receiving socket dropping leaves the sending one open): nothing is written then.
        if !self.is_up() {
            self.forget(key);
            return Err(LinkError::Down);
        }
        if tx.send(framed).await.is_err() {
            self.forget(key);
            return Err(LinkError::Down);
        }
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        match timeout_at(deadline, orx).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => Err(LinkError::Dropped),
            Err(_) => Err(self.timed_out(key, journal_id)),
        }
    }

    /// Registers the waiter of `key` (refused if one is in flight).
    fn register(&self, key: &str, stan: u32) -> Result<oneshot::Receiver<Vec<u8>>, LinkError> {
        let (otx, orx) = oneshot::channel();
        let mut p = self.lock_pending();
        if p.by_key.contains_key(key) {
            return Err(LinkError::Duplicate);
        }
        p.by_key.insert(key.to_owned(), Waiter { tx: otx, stan });
        p.stans.insert(stan);
        Ok(orx)
    }

    fn timed_out(&self, key: &str, journal_id: Option<i64>) -> LinkError {
        // Remember first, then forget the waiter: a response racing the timeout finds one
        // or the other.
        self.remember_late(key, journal_id);
        self.forget(key);
        self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
        LinkError::Timeout
    }

    /// One exchange on a connection of its own (full-duplex-short).
    async fn exchange_short(
        &self,
        framed: &[u8],
        key: &str,
        stan: u32,
        journal_id: Option<i64>,
        deadline: Instant,
    ) -> Result<Vec<u8>, LinkError> {
        let mut orx = self.register(key, stan)?;
        let connect_by = deadline.min(Instant::now() + self.cfg.connect_timeout);
        let mut stream = match timeout_at(connect_by, TcpStream::connect(&self.cfg.address)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                self.forget(key);
                debug!(link = %self.cfg.name, error = %e, "connect failed");
                self.mark_short(false);
                return Err(LinkError::Down);
            }
            Err(_) => {
                self.forget(key);
                debug!(link = %self.cfg.name, "connect timed out");
                self.mark_short(false);
                return Err(LinkError::Down);
            }
        };
        let _ = stream.set_nodelay(true);
        match timeout_at(deadline, stream.write_all(framed)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                self.forget(key);
                return Err(LinkError::Dropped);
            }
            Err(_) => return Err(self.timed_out(key, journal_id)),
        }
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        let mut buf: Vec<u8> = Vec::with_capacity(512);
        let mut chunk = vec![0u8; 4096];
        let read = async {
            loop {
                tokio::select! {
                    // The response first: a center may close right after writing it.
                    biased;
                    r = &mut orx => return r.map_err(|_| LinkError::Dropped),
                    n = stream.read(&mut chunk) => {
                        let n = match n {
                            Ok(0) | Err(_) => return Err(LinkError::Dropped),
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                        if self.take_frames(&mut buf).is_none() {
                            return Err(LinkError::Dropped);
                        }
                    }
                }
            }
        };
        let result = match timeout_at(deadline, read).await {
            Ok(r) => r,
            Err(_) => Err(self.timed_out(key, journal_id)),
        };
        // Whatever happened, this request no longer waits on the connection.
        if matches!(result, Err(LinkError::Dropped)) {
            self.forget(key);
        }
        if result.is_ok() {
            self.mark_short(true);
        }
        let _ = stream.shutdown().await;
        result
    }

    /// Delivers every whole frame in `buf`: how many, or `None` on a bad frame.
    fn take_frames(&self, buf: &mut Vec<u8>) -> Option<u64> {
        let mut n = 0;
        // Frames are taken from `at` on and the buffer shifted once at the end (shifting it
        // after each frame moved the rest of a gathered group once per frame).
        let mut at = 0;
        loop {
            match self.frame.decode(buf.get(at..).unwrap_or_default()) {
                Ok(Some((frame, used))) => {
                    let body = frame.body.to_vec();
                    at += used;
                    self.deliver(body);
                    n += 1;
                }
                Ok(None) => {
                    buf.drain(..at);
                    return Some(n);
                }
                Err(e) => {
                    warn!(link = %self.cfg.name, error = %e, code = "LINK_FRAME", "bad frame from the center");
                    buf.clear();
                    return None;
                }
            }
        }
    }

    fn forget(&self, key: &str) {
        let mut p = self.lock_pending();
        if let Some(w) = p.by_key.remove(key) {
            p.stans.remove(&w.stan);
        }
    }

    fn remember_late(&self, key: &str, journal_id: Option<i64>) {
        let mut late = self.lock_late();
        if late.map.insert(key.to_owned(), journal_id).is_none() {
            late.order.push_back(key.to_owned());
        }
        while late.order.len() > self.cfg.late_memory {
            if let Some(old) = late.order.pop_front() {
                late.map.remove(&old);
            }
        }
    }

    /// Routes one response body from the center to its waiter, or to the late handler.
    fn deliver(&self, body: Vec<u8>) {
        let key = key_of(self.spec, &body);
        let waiter = key.as_ref().and_then(|k| {
            let mut p = self.lock_pending();
            let w = p.by_key.remove(k)?;
            p.stans.remove(&w.stan);
            Some(w)
        });
        let body = match waiter {
            Some(w) => match w.tx.send(body) {
                Ok(()) => {
                    self.counters.matched.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(body) => body,
            },
            None => body,
        };
        let journal_id = key
            .as_ref()
            .and_then(|k| self.lock_late().map.get(k).copied().flatten());
        let late = LateResponse {
            body,
            key: key.clone(),
            journal_id,
        };
        if self.late_tx.try_send(late).is_err() {
            warn!(link = %self.cfg.name, key = ?key, code = "LATE_QUEUE_FULL",
                "late response not handled: the late queue is full");
        }
    }

    /// The next response that matched no waiter (for the late handler).
    pub async fn take_late(&self) -> Option<LateResponse> {
        self.late_rx.lock().await.recv().await
    }

    /// Keeps the link up until `shutdown` turns true, as its mode says: connects with
    /// backoff, accepts the center's connection (simplex), reads responses, sends
    /// heartbeats, probes (short mode).
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        match self.cfg.mode {
            LinkMode::FullDuplexShort => self.run_short(shutdown).await,
            LinkMode::SimplexLong => {
                let (kick, _) = watch::channel(0u64);
                tokio::join!(
                    self.connect_loop(Role::Send, shutdown.clone(), &kick),
                    self.accept_loop(shutdown, &kick),
                );
            }
            LinkMode::FullDuplexLong | LinkMode::HalfDuplexLong => {
                let (kick, _) = watch::channel(0u64);
                self.connect_loop(Role::Both, shutdown, &kick).await;
            }
        }
        *self.conn.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.set_halves(Some(false), Some(false));
        self.mark_short(false);
    }

    /// Connects to the center with backoff and serves the connection, again and again.
    async fn connect_loop(
        self: &Arc<Self>,
        role: Role,
        mut shutdown: watch::Receiver<bool>,
        kick: &watch::Sender<u64>,
    ) {
        let mut backoff = self.cfg.reconnect_min;
        while !*shutdown.borrow() {
            let attempt = timeout(
                self.cfg.connect_timeout,
                TcpStream::connect(&self.cfg.address),
            );
            let stream = tokio::select! {
                r = attempt => r,
                _ = shutdown.changed() => break,
            };
            match stream {
                Ok(Ok(stream)) => {
                    backoff = self.cfg.reconnect_min;
                    let _ = stream.set_nodelay(true);
                    info!(link = %self.cfg.name, address = %self.cfg.address, socket = role.name(), "connected to the center");
                    self.serve(stream, role, &mut shutdown, kick, None).await;
                    warn!(link = %self.cfg.name, socket = role.name(), "closed");
                }
                Ok(Err(e)) => {
                    debug!(link = %self.cfg.name, error = %e, "connect failed");
                }
                Err(_) => debug!(link = %self.cfg.name, "connect timed out"),
            }
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                _ = sleep(backoff) => {}
                _ = shutdown.changed() => break,
            }
            backoff = (backoff * 2).min(self.cfg.reconnect_max);
        }
    }

    /// Simplex: listens on `receive_address` and serves the center's connection (a newer one
    /// replaces it).
    async fn accept_loop(
        self: &Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
        kick: &watch::Sender<u64>,
    ) {
        let Some(addr) = self.cfg.receive_address else {
            warn!(link = %self.cfg.name, code = "CONFIG", "simplex link without receive_address");
            return;
        };
        let mut backoff = self.cfg.reconnect_min;
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) => {
                    warn!(link = %self.cfg.name, address = %addr, error = %e, code = "LINK_BIND", "cannot listen on receive_address; retrying");
                }
            }
            tokio::select! {
                _ = sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(self.cfg.reconnect_max);
        };
        info!(link = %self.cfg.name, address = %addr, "listening for the center's responses");
        let mut next: Option<TcpStream> = None;
        while !*shutdown.borrow() {
            let stream = match next.take() {
                Some(s) => s,
                None => tokio::select! {
                    a = self.accept_allowed(&listener) => match a {
                        Ok((s, peer)) => {
                            info!(link = %self.cfg.name, peer = %peer, "the center connected its responses");
                            s
                        }
                        Err(e) => {
                            debug!(link = %self.cfg.name, error = %e, "accept failed");
                            tokio::select! {
                                _ = sleep(self.cfg.reconnect_min) => {}
                                _ = shutdown.changed() => break,
                            }
                            continue;
                        }
                    },
                    _ = shutdown.changed() => break,
                },
            };
            let _ = stream.set_nodelay(true);
            match self
                .serve(stream, Role::Recv, &mut shutdown, kick, Some(&listener))
                .await
            {
                Served::Replaced(s) => {
                    warn!(link = %self.cfg.name, "a newer connection from the center replaces the receiving socket");
                    next = Some(s);
                }
                Served::Closed => {
                    warn!(link = %self.cfg.name, socket = Role::Recv.name(), "closed");
                }
            }
        }
    }

    /// The sources the center's connection to `receive_address` may come from:
    /// `receive_allow`, or else the IP addresses `address` resolves to (none when it does
    /// not resolve: every connection is refused then, and logged).
    async fn receive_allowed(&self) -> Vec<IpAddr> {
        if !self.cfg.receive_allow.is_empty() {
            return self
                .cfg
                .receive_allow
                .iter()
                .map(|ip| ip.to_canonical())
                .collect();
        }
        if let Ok(addr) = self.cfg.address.parse::<SocketAddr>() {
            return vec![addr.ip().to_canonical()];
        }
        match tokio::net::lookup_host(&self.cfg.address).await {
            Ok(addrs) => addrs.map(|a| a.ip().to_canonical()).collect(),
            Err(e) => {
                warn!(link = %self.cfg.name, address = %self.cfg.address, error = %e, code = "LINK_RESOLVE", "cannot resolve address for the receive allow-list");
                Vec::new()
            }
        }
    }

    /// Accepts the next connection on a simplex link's receive listener whose source is
    /// allowed ([`Link::receive_allowed`]); others are closed at once, logged and counted.
    async fn accept_allowed(
        &self,
        listener: &TcpListener,
    ) -> std::io::Result<(TcpStream, SocketAddr)> {
        loop {
            let (stream, peer) = listener.accept().await?;
            if self
                .receive_allowed()
                .await
                .contains(&peer.ip().to_canonical())
            {
                return Ok((stream, peer));
            }
            drop(stream);
            self.counters.refused_peers.fetch_add(1, Ordering::Relaxed);
            warn!(link = %self.cfg.name, peer = %peer, code = "RECEIVE_REFUSED", "connection to receive_address from a source not in receive_allow: closed");
        }
    }

    /// Marks sockets up or down; the link is up while both halves are. Going down fails
    /// every pending request.
    fn set_halves(&self, send: Option<bool>, recv: Option<bool>) {
        let mut h = self.halves.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = send {
            h.send = v;
        }
        if let Some(v) = recv {
            h.recv = v;
        }
        let now = h.send && h.recv;
        let was = self.up.swap(now, Ordering::AcqRel);
        if was && !now {
            self.counters.disconnects.fetch_add(1, Ordering::Relaxed);
            warn!(link = %self.cfg.name, "link down");
            self.fail_pending();
        } else if !was && now {
            self.counters.connects.fetch_add(1, Ordering::Relaxed);
            info!(link = %self.cfg.name, address = %self.cfg.address, "link up");
            self.up_notify.notify_waiters();
            self.group_up.notify_waiters();
        }
    }

    fn fail_pending(&self) {
        // Dropping the waiters fails every pending request with `Dropped`.
        let mut p = self.lock_pending();
        p.by_key.clear();
        p.stans.clear();
    }

    /// Serves one long-lived socket in its role until it closes (or, for the simplex
    /// receiving socket, a newer connection arrives on `listener`).
    async fn serve(
        self: &Arc<Self>,
        stream: TcpStream,
        role: Role,
        shutdown: &mut watch::Receiver<bool>,
        kick: &watch::Sender<u64>,
        listener: Option<&TcpListener>,
    ) -> Served {
        let (mut rd, mut wr) = stream.into_split();
        let dead = Arc::new(Notify::new());
        let mut writer = None;
        if role.sends() {
            let (tx, mut rx) = mpsc::channel::<Vec<u8>>(self.cfg.effective_in_flight().max(1));
            let writer_dead = dead.clone();
            writer = Some(tokio::spawn(async move {
                let mut out = Vec::with_capacity(crate::net::WRITE_BATCH);
                while let Some(frame) = rx.recv().await {
                    out.clear();
                    out.extend_from_slice(&frame);
                    crate::net::gather(&mut rx, &mut out, |f, o| o.extend_from_slice(&f));
                    if wr.write_all(&out).await.is_err() {
                        break;
                    }
                }
                writer_dead.notify_one();
            }));
            *self.conn.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
        }
        // A new receiver takes the current generation as seen: only later kicks count.
        let mut kicked = kick.subscribe();
        match role {
            Role::Both => self.set_halves(Some(true), Some(true)),
            Role::Send => self.set_halves(Some(true), None),
            Role::Recv => self.set_halves(None, Some(true)),
        }

        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let mut chunk = vec![0u8; crate::net::READ_CHUNK];
        let mut last_rx = Instant::now();
        let mut beat: Option<tokio::task::JoinHandle<bool>> = None;
        let mut served = Served::Closed;
        loop {
            let idle_at = last_rx + self.cfg.heartbeat;
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = dead.notified() => break,
                _ = kicked.changed() => {
                    warn!(link = %self.cfg.name, socket = role.name(), "closed to reconnect after a failed echo");
                    break;
                }
                a = async { match listener { Some(l) => self.accept_allowed(l).await, None => std::future::pending().await } } => {
                    if let Ok((s, peer)) = a {
                        info!(link = %self.cfg.name, peer = %peer, "the center connected its responses again");
                        served = Served::Replaced(s);
                        break;
                    }
                }
                _ = tokio::time::sleep_until(idle_at), if beat.is_none() && role.receives() => {
                    let link = self.clone();
                    beat = Some(tokio::spawn(async move { link.heartbeat().await }));
                    last_rx = Instant::now();
                }
                ok = async { match beat.as_mut() { Some(h) => h.await.unwrap_or(false), None => std::future::pending().await } } => {
                    beat = None;
                    if !ok {
                        warn!(link = %self.cfg.name, code = "HEARTBEAT_FAILED", "echo unanswered; reconnecting");
                        // The sending socket of a simplex link reconnects too.
                        kick.send_modify(|g| *g = g.wrapping_add(1));
                        break;
                    }
                }
                n = rd.read(&mut chunk) => {
                    let n = match n { Ok(0) | Err(_) => break, Ok(n) => n };
                    last_rx = Instant::now();
                    buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                    match self.take_frames(&mut buf) {
                        None => break,
                        Some(frames) if frames > 0 && role == Role::Send => {
                            self.counters.wrong_socket.fetch_add(frames, Ordering::Relaxed);
                            warn!(link = %self.cfg.name, frames, code = "SIMPLEX_WRONG_SOCKET", "the center answered on the sending socket");
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        if let Some(h) = beat {
            h.abort();
        }
        match role {
            Role::Both => {
                self.set_halves(Some(false), Some(false));
                *self.conn.lock().unwrap_or_else(PoisonError::into_inner) = None;
            }
            Role::Send => {
                self.set_halves(Some(false), None);
                *self.conn.lock().unwrap_or_else(PoisonError::into_inner) = None;
            }
            Role::Recv => self.set_halves(None, Some(false)),
        }
        if let Some(w) = writer {
            w.abort();
        }
        // The receiving socket's write half (never written) closes with `wr` here.
        served
    }

    /// Short mode: the link's state from the last exchange or probe.
    fn mark_short(&self, ok: bool) {
        if self.cfg.mode != LinkMode::FullDuplexShort {
            return;
        }
        if ok {
            *self.last_ok.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        }
        let was = self.up.swap(ok, Ordering::AcqRel);
        if !was && ok {
            self.counters.connects.fetch_add(1, Ordering::Relaxed);
            info!(link = %self.cfg.name, address = %self.cfg.address, "link up (short connections)");
            self.up_notify.notify_waiters();
            self.group_up.notify_waiters();
        } else if was && !ok {
            self.counters.disconnects.fetch_add(1, Ordering::Relaxed);
            warn!(link = %self.cfg.name, "link down (short connections)");
            self.probe_wake.notify_one();
        }
    }

    /// Short mode: probes the center with an echo on its own connection whenever no
    /// exchange succeeded for `heartbeat`, and with backoff while the link is down.
    async fn run_short(self: &Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = self.cfg.reconnect_min;
        while !*shutdown.borrow() {
            let last = *self.last_ok.lock().unwrap_or_else(PoisonError::into_inner);
            if let (true, Some(t)) = (self.is_up(), last) {
                let due = t + self.cfg.heartbeat;
                if Instant::now() < due {
                    tokio::select! {
                        _ = tokio::time::sleep_until(due) => {}
                        _ = self.probe_wake.notified() => {}
                        _ = shutdown.changed() => break,
                    }
                    continue;
                }
            }
            let probe = tokio::select! {
                r = self.echo() => r,
                _ = shutdown.changed() => break,
            };
            let pause = match probe {
                Ok(_) => {
                    backoff = self.cfg.reconnect_min;
                    continue;
                }
                // All slots taken: exchanges are running and say how the center is.
                Err(LinkError::Busy | LinkError::Duplicate) => self.cfg.reconnect_min,
                Err(e) => {
                    debug!(link = %self.cfg.name, error = %e, "probe failed");
                    self.mark_short(false);
                    let b = backoff;
                    backoff = (backoff * 2).min(self.cfg.reconnect_max);
                    b
                }
            };
            tokio::select! {
                _ = sleep(pause) => {}
                _ = shutdown.changed() => break,
            }
        }
    }

    /// Sends one echo (0820, 60.3 = `301`) and waits for its answer.
    async fn echo(&self) -> Result<Vec<u8>, LinkError> {
        let stan = self.alloc_stan();
        let mut m = MessageBuf::new("0820").map_err(|_| LinkError::Frame)?;
        m.set(11, format!("{stan:06}"))
            .set(32, self.acquirer.clone())
            .set(60, "00000000301".to_owned());
        let body = m.to_vec(self.spec).map_err(|_| LinkError::Frame)?;
        let key = match_key("0820", &self.acquirer, "", stan);
        self.exchange(&body, &key, stan, None).await
    }

    /// The heartbeat of a long-mode link: false only when the echo went unanswered.
    async fn heartbeat(&self) -> bool {
        match self.echo().await {
            Ok(_) => true,
            Err(e) => {
                debug!(link = %self.cfg.name, error = %e, "heartbeat failed");
                !matches!(e, LinkError::Timeout)
            }
        }
    }
}

/// The links to the center (`[[link]]`, one or more) as one group: one upstream STAN
/// counter for all (the center matches on 32 + 41 + 11, so two links must never send the
/// same STAN the same day), one signal when any comes up, and the choice of the link a
/// request goes out on.
pub struct Links {
    primary: Arc<Link>,
    others: Vec<Arc<Link>>,
    stan: Arc<AtomicU32>,
    /// Notified whenever a link of the group comes up (the SAF sender waits on it).
    pub up_notify: Arc<Notify>,
}

impl fmt::Debug for Links {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Links {
    /// The group of `cfgs` (not connected yet), stamping field 32 with `acquirer`; `None`
    /// when `cfgs` is empty.
    pub fn new(cfgs: &[LinkConfig], acquirer: &str) -> Option<Links> {
        let stan = Arc::new(AtomicU32::new(0));
        let up_notify = Arc::new(Notify::new());
        let mut all = cfgs.iter().map(|c| {
            Arc::new(Link::in_group(
                c.clone(),
                acquirer,
                stan.clone(),
                up_notify.clone(),
            ))
        });
        let primary = all.next()?;
        Some(Links {
            primary,
            others: all.collect(),
            stan,
            up_notify,
        })
    }

    /// The first `[[link]]`: its name is the SAF destination of the group.
    pub fn primary(&self) -> &Arc<Link> {
        &self.primary
    }

    /// Every link, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Link>> + '_ {
        std::iter::once(&self.primary).chain(self.others.iter())
    }

    /// The link named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Link>> {
        self.iter().find(|l| l.name() == name)
    }

    /// How many links there are (at least one).
    pub fn len(&self) -> usize {
        1 + self.others.len()
    }

    /// Always false: a group has at least one link.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The SAF destination reversals are queued under: the first link's name. The SAF
    /// sender drains the queue of every link's name through any link that is up.
    pub fn saf_destination(&self) -> &str {
        self.primary.name()
    }

    /// Whether any link is up.
    pub fn any_up(&self) -> bool {
        self.iter().any(|l| l.is_up())
    }

    /// The link a request goes out on: among the links that are up and not in `skip`
    /// (names), the one with the fewest requests in flight, the first in configuration
    /// order on a tie. `None` when no such link is up.
    pub fn pick(&self, skip: &[&str]) -> Option<&Arc<Link>> {
        self.iter()
            .filter(|l| l.is_up() && !skip.contains(&l.name()))
            .min_by_key(|l| l.in_flight())
    }

    /// Starts upstream STANs after `last` (e.g. the highest journaled today).
    pub fn seed_stan(&self, last: u32) {
        self.stan.store(last % 999_999, Ordering::Relaxed);
    }

    /// A new upstream STAN for any link of the group: 1 to 999999, cycling, never one in
    /// flight on any of them.
    pub fn alloc_stan(&self) -> u32 {
        loop {
            let stan = next_stan(&self.stan);
            if !self.iter().any(|l| l.stan_in_flight(stan)) {
                return stan;
            }
        }
    }
}

/// Advances a STAN counter: 1 to 999999, cycling.
fn next_stan(counter: &AtomicU32) -> u32 {
    let prev = counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
            Some(if s >= 999_999 { 1 } else { s + 1 })
        })
        .unwrap_or(0);
    if prev >= 999_999 { 1 } else { prev + 1 }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn cfg(name: &str, spec: &str) -> LinkConfig {
        toml::from_str(&format!(
            "name = \"{name}\"\naddress = \"127.0.0.1:9\"\nspec = \"{spec}\""
        ))
        .unwrap()
    }

    #[test]
    fn a_group_shares_one_stan_sequence_and_picks_only_up_links() {
        let links = Links::new(
            &[cfg("a", "cups-pos"), cfg("b", "iso87-binary")],
            "48020000",
        )
        .unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(links.saf_destination(), "a");
        let b = links.get("b").unwrap();
        assert_eq!(b.spec().name(), "iso87-binary");
        assert_eq!(links.primary().spec().name(), "cups-pos");
        links.seed_stan(41);
        assert_eq!(links.alloc_stan(), 42);
        assert_eq!(b.alloc_stan(), 43);
        assert_eq!(links.primary().alloc_stan(), 44);
        links.seed_stan(999_999);
        assert_eq!(links.alloc_stan(), 1);
        // Nothing connected: no link to pick.
        assert!(!links.any_up());
        assert!(links.pick(&[]).is_none());
        assert!(Links::new(&[], "48020000").is_none());
    }
}
