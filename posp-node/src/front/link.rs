//! The upstream link to the center: one long-lived TCP connection (`len2` framing,
//! `cups-pos` messages) carrying requests and responses interleaved, matched by key.
//!
//! - **Matching key**: MTI class (first two digits) + field 32 + field 41 + field 11, the
//!   STAN being the front end's upstream STAN ([`Link::alloc_stan`]: per link, 1 to 999999,
//!   never one that is in flight).
//! - The pending entry is registered **before** the request is written; a second request
//!   with a key in flight is refused ([`LinkError::Duplicate`]).
//! - At most `max_in_flight` requests are outstanding (1 in half-duplex mode); a request
//!   that finds no slot within its timeout fails with [`LinkError::Busy`], unsent.
//! - A request without a response within the timeout fails with [`LinkError::Timeout`]; its
//!   key is remembered (bounded by `late_memory`) so that a late response is recognised.
//!   Responses that match nothing go to the late handler ([`Link::take_late`]): they are
//!   logged and journaled there, never dropped silently.
//! - When the connection drops every pending request fails with [`LinkError::Dropped`]; the
//!   link reconnects with exponential backoff. An idle link sends an echo (0820, 60.3 =
//!   `301`) every `heartbeat`; an echo without an answer closes the connection.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use iso8583_wire::frame::FrameConfig;
use iso8583_wire::{MessageBuf, decode, specs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};
use tokio::time::{Instant, sleep, timeout, timeout_at};
use tracing::{debug, info, warn};

use crate::config::LinkConfig;

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

/// The matching key of a `cups-pos` body, if it decodes and has field 11.
pub fn key_of(body: &[u8]) -> Option<String> {
    let msg = decode(specs::cups_pos(), body).ok()?;
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

#[derive(Default)]
struct LateMemory {
    map: HashMap<String, Option<i64>>,
    order: VecDeque<String>,
}

/// Counters of a link.
#[derive(Debug, Default)]
pub struct LinkCounters {
    /// Connections made.
    pub connects: AtomicU64,
    /// Connections lost.
    pub disconnects: AtomicU64,
    /// Requests written.
    pub sent: AtomicU64,
    /// Responses matched.
    pub matched: AtomicU64,
    /// Requests timed out.
    pub timeouts: AtomicU64,
}

/// A link to the center. Share it with an `Arc`; [`Link::run`] keeps it connected.
pub struct Link {
    cfg: LinkConfig,
    acquirer: String,
    frame: FrameConfig,
    up: AtomicBool,
    conn: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    pending: Mutex<Pending>,
    slots: Semaphore,
    stan: AtomicU32,
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
    /// A link (not connected yet) for `cfg`, stamping field 32 with `acquirer`.
    pub fn new(cfg: LinkConfig, acquirer: &str) -> Link {
        let mut frame = FrameConfig::len2();
        frame.max_frame(cfg.max_frame);
        let (late_tx, late_rx) = mpsc::channel(cfg.late_memory.max(1));
        Link {
            slots: Semaphore::new(cfg.effective_in_flight()),
            acquirer: acquirer.to_owned(),
            frame,
            up: AtomicBool::new(false),
            conn: Mutex::new(None),
            pending: Mutex::new(Pending::default()),
            stan: AtomicU32::new(0),
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

    /// A new upstream STAN: 1 to 999999, cycling, never one in flight.
    pub fn alloc_stan(&self) -> u32 {
        loop {
            let prev = self
                .stan
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                    Some(if s >= 999_999 { 1 } else { s + 1 })
                })
                .unwrap_or(0);
            let stan = if prev >= 999_999 { 1 } else { prev + 1 };
            if !self.lock_pending().stans.contains(&stan) {
                return stan;
            }
        }
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
        let tx = self
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(LinkError::Down)?;
        let mut framed = Vec::with_capacity(body.len() + 2);
        self.frame
            .encode(None, None, body, &mut framed)
            .map_err(|_| LinkError::Frame)?;
        let (otx, orx) = oneshot::channel();
        {
            let mut p = self.lock_pending();
            if p.by_key.contains_key(key) {
                return Err(LinkError::Duplicate);
            }
            p.by_key.insert(key.to_owned(), Waiter { tx: otx, stan });
            p.stans.insert(stan);
        }
        if tx.send(framed).await.is_err() {
            self.forget(key);
            return Err(LinkError::Down);
        }
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        match timeout_at(deadline, orx).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => Err(LinkError::Dropped),
            Err(_) => {
                // Remember first, then forget the waiter: a response racing the timeout
                // finds one or the other.
                self.remember_late(key, journal_id);
                self.forget(key);
                self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(LinkError::Timeout)
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
        let key = key_of(&body);
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

    /// Keeps the link connected until `shutdown` turns true: connects with backoff, reads
    /// responses, sends heartbeats.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
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
                    info!(link = %self.cfg.name, address = %self.cfg.address, "link up");
                    self.counters.connects.fetch_add(1, Ordering::Relaxed);
                    self.serve(stream, &mut shutdown).await;
                    self.counters.disconnects.fetch_add(1, Ordering::Relaxed);
                    warn!(link = %self.cfg.name, "link down");
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
        self.down();
    }

    fn down(&self) {
        self.up.store(false, Ordering::Release);
        *self.conn.lock().unwrap_or_else(PoisonError::into_inner) = None;
        // Dropping the waiters fails every pending request with `Dropped`.
        let mut p = self.lock_pending();
        p.by_key.clear();
        p.stans.clear();
    }

    async fn serve(self: &Arc<Self>, stream: TcpStream, shutdown: &mut watch::Receiver<bool>) {
        let (mut rd, mut wr) = stream.into_split();
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(self.cfg.effective_in_flight().max(1));
        let dead = Arc::new(Notify::new());
        let writer_dead = dead.clone();
        let writer = tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                if wr.write_all(&frame).await.is_err() {
                    break;
                }
            }
            writer_dead.notify_one();
        });
        *self.conn.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
        self.up.store(true, Ordering::Release);
        self.up_notify.notify_waiters();

        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let mut chunk = vec![0u8; 4096];
        let mut last_rx = Instant::now();
        let mut beat: Option<tokio::task::JoinHandle<bool>> = None;
        loop {
            let idle_at = last_rx + self.cfg.heartbeat;
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = dead.notified() => break,
                _ = tokio::time::sleep_until(idle_at), if beat.is_none() => {
                    let link = self.clone();
                    beat = Some(tokio::spawn(async move { link.heartbeat().await }));
                    last_rx = Instant::now();
                }
                ok = async { match beat.as_mut() { Some(h) => h.await.unwrap_or(false), None => std::future::pending().await } } => {
                    beat = None;
                    if !ok {
                        warn!(link = %self.cfg.name, code = "HEARTBEAT_FAILED", "echo unanswered; reconnecting");
                        break;
                    }
                }
                n = rd.read(&mut chunk) => {
                    let n = match n { Ok(0) | Err(_) => break, Ok(n) => n };
                    last_rx = Instant::now();
                    buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                    loop {
                        match self.frame.decode(&buf) {
                            Ok(Some((frame, used))) => {
                                let body = frame.body.to_vec();
                                buf.drain(..used);
                                self.deliver(body);
                            }
                            Ok(None) => break,
                            Err(e) => {
                                warn!(link = %self.cfg.name, error = %e, code = "LINK_FRAME", "bad frame from the center; reconnecting");
                                buf.clear();
                                self.down();
                                writer.abort();
                                return;
                            }
                        }
                    }
                }
            }
        }
        if let Some(h) = beat {
            h.abort();
        }
        self.down();
        writer.abort();
    }

    /// Sends one echo and waits for its answer.
    async fn heartbeat(&self) -> bool {
        let stan = self.alloc_stan();
        let mut m = match MessageBuf::new("0820") {
            Ok(m) => m,
            Err(_) => return false,
        };
        m.set(11, format!("{stan:06}"))
            .set(32, self.acquirer.clone())
            .set(60, "00000000301".to_owned());
        let Ok(body) = m.to_vec(specs::cups_pos()) else {
            return false;
        };
        let key = match_key("0820", &self.acquirer, "", stan);
        match self.exchange(&body, &key, stan, None).await {
            Ok(_) => true,
            Err(e) => {
                debug!(link = %self.cfg.name, error = %e, "heartbeat failed");
                !matches!(e, LinkError::Timeout)
            }
        }
    }
}
