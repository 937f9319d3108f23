//! The TCP side: accept front-end connections (bounded), read `len2` frames (messages in
//! the `[center] spec` dialect), process
//! requests concurrently (bounded per connection), apply the fault plan, write replies, and
//! shut down gracefully.
//!
//! Replies go back on the connection the request came on (full-duplex-long, half-duplex-long
//! and full-duplex-short front ends; a connection the front end closes after its answer is
//! closed here once its requests are done), except for acquirers listed in `reply_to`
//! (simplex-long front ends): the center keeps one outgoing connection per such acquirer to
//! the front end's receive address, reconnecting with backoff, and writes those acquirers'
//! replies there. It only writes on that connection; anything it receives there is ignored.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use iso8583_wire::frame::FrameConfig;
use iso8583_wire::{Spec, decode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::CenterError;
use super::authorize::Authorizer;
use super::config::CenterConfig;
use super::faults::{Faults, ReplyPlan};
use super::registry::Registry;
use pboc_sam::SecurityModule;

/// What every connection shares.
struct Shared {
    auth: Authorizer,
    faults: Faults,
    frame: FrameConfig,
    max_in_flight: usize,
    grace: Duration,
    /// Replies for these acquirers (field 32) go to their simplex reply connection.
    repliers: HashMap<String, mpsc::Sender<Vec<u8>>>,
}

/// The first delay before reconnecting a reply connection, doubled up to [`REPLY_BACKOFF_MAX`].
const REPLY_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest delay before reconnecting a reply connection.
const REPLY_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long one connection attempt to a reply address may take.
const REPLY_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A running data-center host. Dropping it does not stop it; call
/// [`Center::shutdown`].
#[derive(Debug)]
pub struct Center {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Center {
    /// Binds `config.listen` and starts serving on the current tokio runtime, with `hsm` for
    /// every key operation and `registry` as the database. The configuration's keys are
    /// checked first.
    ///
    /// # Errors
    /// [`CenterError::Config`] for bad keys, [`CenterError::Io`] when the address cannot be
    /// bound.
    pub async fn start(
        config: &CenterConfig,
        hsm: Arc<dyn SecurityModule>,
        registry: Registry,
    ) -> Result<Center, CenterError> {
        config.check()?;
        let keys = config.resolve_keys()?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| CenterError::Io {
                at: format!("bind {}", config.listen),
                detail: e.to_string(),
            })?;
        let local_addr = listener.local_addr().map_err(|e| CenterError::Io {
            at: "local address".to_owned(),
            detail: e.to_string(),
        })?;
        let mut frame = FrameConfig::len2();
        frame.max_frame(config.max_frame);
        let window_ms = i64::try_from(config.duplicate_window.as_millis()).unwrap_or(i64::MAX);
        let (replies_done, done_rx) = watch::channel(false);
        let mut repliers = HashMap::new();
        let mut reply_tasks = Vec::new();
        for (acquirer, address) in &config.reply_to {
            let (tx, rx) = mpsc::channel(config.max_in_flight.saturating_mul(2).max(2));
            repliers.insert(acquirer.clone(), tx);
            reply_tasks.push(tokio::spawn(replier(
                acquirer.clone(),
                address.clone(),
                frame,
                rx,
                done_rx.clone(),
            )));
        }
        let shared = Arc::new(Shared {
            auth: Authorizer {
                spec: crate::wire::upstream_spec(&config.spec)
                    .map_err(|e| CenterError::config("center.spec", e))?,
                hsm,
                keys,
                registry,
                acquirers: config.acquirers.clone(),
                limits: config.limits,
                utc_offset_minutes: config.utc_offset_minutes,
                window_ms,
            },
            faults: Faults::new(config.faults.clone()),
            frame,
            max_in_flight: config.max_in_flight,
            grace: config.shutdown_grace,
            repliers,
        });
        let (stop, stopped) = watch::channel(false);
        let max_conns = config.max_connections;
        let task = tokio::spawn(async move {
            accept_loop(listener, shared, stopped, max_conns).await;
            // Every connection is done: the reply connections send what is queued and close.
            let _ = replies_done.send(true);
            for t in reply_tasks {
                let _ = t.await;
            }
        });
        info!(address = %local_addr, "center listening");
        Ok(Center {
            local_addr,
            stop,
            task,
        })
    }

    /// The address it listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets requests being processed finish within the shutdown grace,
    /// closes every connection and returns when all is done.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        info!("center stopped");
    }

    /// A handle that triggers [`Center::shutdown`]'s first step from anywhere (a signal
    /// handler); await [`Center::wait`] afterwards.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }

    /// Waits until the server has stopped (after a [`Center::stopper`] was used).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
    max_conns: usize,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if conns.len() >= max_conns {
                        warn!(peer = %peer, limit = max_conns, "connection limit reached: closed");
                        drop(stream);
                        continue;
                    }
                    info!(peer = %peer, "front end connected");
                    let _ = stream.set_nodelay(true);
                    conns.spawn(connection(stream, peer, Arc::clone(&shared), stopped.clone()));
                }
                Err(e) => {
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// What the server needs of a request before processing it.
#[derive(Debug, Default)]
struct RequestInfo {
    /// MTI, STAN and amount of a transaction message (not 08xx), for the fault plan.
    transaction: Option<(String, Option<u32>, Option<u64>)>,
    /// Field 32, to route the reply.
    acquirer: Option<String>,
}

fn request_info(spec: &Spec, body: &[u8]) -> RequestInfo {
    let Ok(msg) = decode(spec, body) else {
        return RequestInfo::default();
    };
    let acquirer = msg.field(32).map(|f| f.to_string().trim_end().to_owned());
    if msg.mti().starts_with("08") {
        return RequestInfo {
            transaction: None,
            acquirer,
        };
    }
    let stan = msg
        .field(11)
        .and_then(|f| f.to_u64().ok())
        .and_then(|v| u32::try_from(v).ok());
    let amount = msg.field(4).and_then(|f| f.to_u64().ok());
    RequestInfo {
        transaction: Some((msg.mti().to_owned(), stan, amount)),
        acquirer,
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    if *stopped.borrow_and_update() {
        return;
    }
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(shared.max_in_flight.saturating_mul(2).max(2));
    let (close_tx, mut close_rx) = watch::channel(false);
    let frame = shared.frame;
    let mut write_task = tokio::spawn(async move {
        let mut out = Vec::with_capacity(crate::net::WRITE_BATCH);
        while let Some(body) = rx.recv().await {
            out.clear();
            put_framed(frame, &body, &mut out);
            crate::net::gather(&mut rx, &mut out, |b, o| put_framed(frame, &b, o));
            if out.is_empty() {
                continue;
            }
            if writer.write_all(&out).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let permits = Arc::new(Semaphore::new(shared.max_in_flight));
    let mut tasks = JoinSet::new();
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; crate::net::READ_CHUNK];
    let mut count: u64 = 0;
    'read: loop {
        // Take every whole frame in the buffer.
        // Frames are taken from `at` on and the buffer shifted once after the last one.
        let mut at = 0;
        loop {
            let (body, used) = match shared.frame.decode(buf.get(at..).unwrap_or_default()) {
                Ok(Some((f, used))) => (f.body.to_vec(), used),
                Ok(None) => break,
                Err(e) => {
                    warn!(peer = %peer, "bad frame: {e}; connection closed");
                    break 'read;
                }
            };
            at += used;
            let info = request_info(shared.auth.spec, &body);
            let plan = match &info.transaction {
                Some((mti, stan, amount)) => {
                    count += 1;
                    shared.faults.plan(count, mti, *stan, *amount)
                }
                None => ReplyPlan::default(),
            };
            // A simplex front end gets its replies on the center's own connection to it.
            let out = match info.acquirer.as_ref().and_then(|a| shared.repliers.get(a)) {
                Some(replies) => replies.clone(),
                None => tx.clone(),
            };
            let permit = tokio::select! {
                p = Arc::clone(&permits).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break 'read,
                },
                _ = stopped.changed() => break 'read,
            };
            let sh = Arc::clone(&shared);
            let close = close_tx.clone();
            tasks.spawn(async move {
                let reply = sh.auth.handle(&body).await;
                drop(permit);
                let Some(reply) = reply else { return };
                if plan.close {
                    warn!("fault: reply withheld and connection closed");
                    let _ = close.send(true);
                    return;
                }
                if plan.drop {
                    warn!("fault: reply dropped");
                    return;
                }
                if !plan.wait.is_zero() {
                    debug!(wait = ?plan.wait, "fault: reply delayed");
                    tokio::time::sleep(plan.wait).await;
                }
                if plan.duplicate {
                    warn!("fault: reply sent twice");
                    let _ = out.send(reply.clone()).await;
                }
                let _ = out.send(reply).await;
            });
        }
        buf.drain(..at);
        while tasks.try_join_next().is_some() {}
        tokio::select! {
            _ = stopped.changed() => break,
            _ = close_rx.changed() => {
                // Close at once: replies still being processed are lost, as on a real drop.
                tasks.abort_all();
                write_task.abort();
                info!(peer = %peer, "connection closed by fault injection");
                return;
            }
            n = reader.read(&mut chunk) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            },
        }
    }
    // Let requests in progress finish (within the grace), then close.
    drop(tx);
    let grace = shared.grace;
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tasks.abort_all();
    }
    if tokio::time::timeout(grace, &mut write_task).await.is_err() {
        write_task.abort();
    }
    info!(peer = %peer, "front end disconnected");
}

/// The reply connection of one simplex acquirer: connects to `address` with backoff and
/// writes the replies queued on `rx`, until `done` turns true (then what is queued is
/// written and the connection closed). Replies queued while it is not connected are lost.
async fn replier(
    acquirer: String,
    address: String,
    frame: FrameConfig,
    mut rx: mpsc::Receiver<Vec<u8>>,
    mut done: watch::Receiver<bool>,
) {
    let mut backoff = REPLY_BACKOFF_MIN;
    loop {
        if *done.borrow_and_update() {
            return;
        }
        let attempt = tokio::time::timeout(REPLY_CONNECT_TIMEOUT, TcpStream::connect(&address));
        let connected = tokio::select! {
            r = attempt => r,
            _ = done.changed() => return,
        };
        match connected {
            Ok(Ok(stream)) => {
                backoff = REPLY_BACKOFF_MIN;
                let _ = stream.set_nodelay(true);
                info!(acquirer = %acquirer, address = %address, "reply connection up");
                if send_replies(stream, frame, &mut rx, &mut done).await {
                    return;
                }
                warn!(acquirer = %acquirer, address = %address, "reply connection lost");
            }
            Ok(Err(e)) => {
                debug!(acquirer = %acquirer, address = %address, "reply connect failed: {e}")
            }
            Err(_) => debug!(acquirer = %acquirer, address = %address, "reply connect timed out"),
        }
        let mut lost = 0usize;
        while rx.try_recv().is_ok() {
            lost += 1;
        }
        if lost > 0 {
            warn!(acquirer = %acquirer, lost, code = "REPLY_LOST", "replies lost: no reply connection");
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = done.changed() => return,
        }
        backoff = (backoff * 2).min(REPLY_BACKOFF_MAX);
    }
}

/// Writes replies on one reply connection until it closes (false) or `done` (true, after
/// writing what is queued and closing).
async fn send_replies(
    stream: TcpStream,
    frame: FrameConfig,
    rx: &mut mpsc::Receiver<Vec<u8>>,
    done: &mut watch::Receiver<bool>,
) -> bool {
    let (mut reader, mut writer) = stream.into_split();
    let mut chunk = vec![0u8; 1024];
    let mut out = Vec::with_capacity(crate::net::WRITE_BATCH);
    loop {
        tokio::select! {
            body = rx.recv() => {
                let Some(body) = body else { break };
                out.clear();
                put_framed(frame, &body, &mut out);
                crate::net::gather(rx, &mut out, |b, o| put_framed(frame, &b, o));
                if out.is_empty() {
                    continue;
                }
                if writer.write_all(&out).await.is_err() {
                    return false;
                }
            }
            // The front end sends nothing here; a read only tells that it closed.
            n = reader.read(&mut chunk) => match n {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            },
            _ = done.changed() => break,
        }
    }
    loop {
        out.clear();
        crate::net::gather(rx, &mut out, |b, o| put_framed(frame, &b, o));
        if out.is_empty() || writer.write_all(&out).await.is_err() {
            break;
        }
    }
    let _ = writer.shutdown().await;
    true
}

/// Appends `body` framed to `out`; a body too long for the frame is logged and left out.
fn put_framed(frame: FrameConfig, body: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    if let Err(e) = frame.encode(None, None, body, out) {
        out.truncate(start);
        warn!("reply not framed: {e}");
    }
}
