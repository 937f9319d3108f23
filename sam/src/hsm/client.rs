//! [`HsmClient`]: a [`SecurityModule`] that forwards every operation to an HSM over TCP.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::codec::{FrameConfig, FrameDecoder, MAX_HEADER_LEN, WireError, write_frame};
use super::commands::{Command, Request, Response};
use crate::kcv::Kcv;
use crate::key::{DesKeyLength, KeyType};
use crate::security::{
    BoxFuture, DataMode, Diagnostics, ExportedKey, GeneratedKey, HsmError, HsmErrorCode, HsmResult,
    KeyRef, LoadRequest, MacAlgorithm, PinTranslation, SecurityModule, TacRequest,
};

/// The default time a request may take, from the call to the answer (waiting for a free
/// in-flight slot and connecting included).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The default time a connection attempt may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The default limit on requests in flight on the connection.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// The default first reconnection delay after a failed connection attempt.
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(100);

/// The default longest reconnection delay.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The most hex digits of the header used for the request id.
const MAX_ID_DIGITS: usize = 12;

/// Configures an [`HsmClient`].
#[derive(Debug, Clone)]
pub struct HsmClientBuilder {
    addr: String,
    frame: FrameConfig,
    request_timeout: Duration,
    connect_timeout: Duration,
    max_in_flight: usize,
    backoff_min: Duration,
    backoff_max: Duration,
}

impl HsmClientBuilder {
    /// Sets the header length (default 4, at least 2): the header carries the request id in
    /// upper-case hex, so it bounds the ids available (see [`HsmClientBuilder::max_in_flight`]).
    pub fn header_len(&mut self, len: usize) -> &mut Self {
        self.frame.header_len = len;
        self
    }

    /// Sets the largest response frame accepted and request frame sent (default
    /// [`super::DEFAULT_MAX_FRAME_LEN`]).
    pub fn max_frame_len(&mut self, len: usize) -> &mut Self {
        self.frame.max_frame_len = len;
        self
    }

    /// Sets the per-request timeout (default [`DEFAULT_REQUEST_TIMEOUT`]); a request that
    /// takes longer fails with [`HsmErrorCode::Timeout`].
    pub fn request_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the connection timeout (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the limit on requests in flight (default [`DEFAULT_MAX_IN_FLIGHT`], at least 1,
    /// at most a quarter of the ids the header can carry). Further requests wait for a slot,
    /// within their timeout.
    pub fn max_in_flight(&mut self, n: usize) -> &mut Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Sets the reconnection backoff: after a failed connection attempt the client waits
    /// `min`, then twice as long after each further failure up to `max`, failing requests with
    /// [`HsmErrorCode::Unavailable`] meanwhile (defaults [`DEFAULT_BACKOFF_MIN`],
    /// [`DEFAULT_BACKOFF_MAX`]).
    pub fn backoff(&mut self, min: Duration, max: Duration) -> &mut Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// Builds the client. It connects on first use.
    ///
    /// # Errors
    /// [`HsmErrorCode::InvalidInput`] for a header shorter than 2 bytes or a bad frame
    /// configuration.
    pub fn build(&self) -> HsmResult<HsmClient> {
        self.frame.validate()?;
        if self.frame.header_len < 2 {
            return Err(HsmError::new(
                HsmErrorCode::InvalidInput,
                format!(
                    "HSM client header length {}: at least 2 bytes are needed to carry request ids",
                    self.frame.header_len
                ),
            ));
        }
        let digits = self.frame.header_len.min(MAX_ID_DIGITS);
        let id_space = 1u64 << (4 * digits);
        let max_in_flight = self
            .max_in_flight
            .min(usize::try_from(id_space / 4).unwrap_or(usize::MAX));
        Ok(HsmClient {
            inner: Arc::new(ClientInner {
                addr: self.addr.clone(),
                frame: self.frame,
                request_timeout: self.request_timeout,
                connect_timeout: self.connect_timeout,
                max_in_flight,
                id_space,
                backoff_min: self.backoff_min,
                backoff_max: self.backoff_max,
                permits: Semaphore::new(max_in_flight),
                slot: tokio::sync::Mutex::new(Slot::default()),
            }),
        })
    }
}

/// A client of an HSM speaking the host protocol, itself a [`SecurityModule`].
///
/// One TCP connection, opened on first use, carries many requests at once (pipelining): each
/// request gets an id in the frame header and the answer is matched by it, so answers may
/// come in any order and a late answer to a timed-out request is recognised and dropped.
///
/// - Every request has a timeout ([`HsmErrorCode::Timeout`], a device error).
/// - At most `max_in_flight` requests are outstanding; more wait for a slot.
/// - When the connection breaks, every pending request fails with
///   [`HsmErrorCode::Unavailable`] (a device error) and the next request reconnects, with
///   exponential backoff after failed attempts.
/// - Timed-out ids stay reserved until their late answer arrives; if more than
///   `max_in_flight` of them pile up the HSM is not answering and the connection is reset.
///
/// Cloning is cheap and clones share the connection.
#[derive(Clone)]
pub struct HsmClient {
    inner: Arc<ClientInner>,
}

impl core::fmt::Debug for HsmClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HsmClient")
            .field("addr", &self.inner.addr)
            .field("frame", &self.inner.frame)
            .field("max_in_flight", &self.inner.max_in_flight)
            .field("request_timeout", &self.inner.request_timeout)
            .finish_non_exhaustive()
    }
}

struct ClientInner {
    addr: String,
    frame: FrameConfig,
    request_timeout: Duration,
    connect_timeout: Duration,
    max_in_flight: usize,
    id_space: u64,
    backoff_min: Duration,
    backoff_max: Duration,
    permits: Semaphore,
    slot: tokio::sync::Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    conn: Option<Arc<Conn>>,
    failures: u32,
    retry_at: Option<Instant>,
}

type Waiter = oneshot::Sender<HsmResult<Response>>;

/// The request table of one connection, shared by callers and the reader task.
struct Table {
    open: bool,
    next_id: u64,
    waiters: HashMap<u64, (Command, Waiter)>,
    abandoned: HashSet<u64>,
}

struct Shared {
    table: Mutex<Table>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding the lock cannot leave the table inconsistent (every
        // mutation is a single insert or remove), so a poisoned lock is still usable.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the connection dead and fails every pending request.
    fn fail_all(&self, detail: &str) {
        let waiters = {
            let mut t = self.lock();
            t.open = false;
            t.abandoned.clear();
            core::mem::take(&mut t.waiters)
        };
        for (_, (_, w)) in waiters {
            let _ = w.send(Err(HsmError::new(
                HsmErrorCode::Unavailable,
                format!("HSM connection lost: {detail}"),
            )));
        }
    }

    fn is_open(&self) -> bool {
        self.lock().open
    }
}

struct Conn {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Vec<u8>>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// Removes a request from the table if the caller gives up (timeout, cancellation) before
/// its answer arrived, keeping its id reserved for the late answer.
struct PendingGuard<'c> {
    shared: &'c Shared,
    id: u64,
    limit: usize,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let overflow = {
            let mut t = self.shared.lock();
            if t.waiters.remove(&self.id).is_some() && t.open {
                t.abandoned.insert(self.id);
            }
            t.abandoned.len() > self.limit
        };
        if overflow {
            self.shared
                .fail_all("too many requests went unanswered; resetting the connection");
        }
    }
}

fn unavailable(detail: impl Into<std::borrow::Cow<'static, str>>) -> HsmError {
    HsmError::new(HsmErrorCode::Unavailable, detail)
}

impl HsmClient {
    /// A builder for a client of the HSM at `addr` (`host:port`).
    #[must_use]
    pub fn builder(addr: impl Into<String>) -> HsmClientBuilder {
        HsmClientBuilder {
            addr: addr.into(),
            frame: FrameConfig::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: DEFAULT_BACKOFF_MAX,
        }
    }

    /// The address the client connects to.
    #[must_use]
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// The effective limit on requests in flight.
    #[must_use]
    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight
    }

    /// Connects now if not connected (requests connect on their own; this surfaces
    /// connection problems early).
    ///
    /// # Errors
    /// [`HsmErrorCode::Unavailable`] if the HSM cannot be reached (or the client is backing
    /// off after a failed attempt).
    pub async fn connect(&self) -> HsmResult<()> {
        self.inner.connection().await.map(|_| ())
    }

    /// Whether a connection is open now.
    pub async fn is_connected(&self) -> bool {
        let slot = self.inner.slot.lock().await;
        slot.conn.as_ref().is_some_and(|c| c.shared.is_open())
    }

    /// Sends one request and waits for its response, within the request timeout. An error
    /// answer comes back as `Ok(Response::Error { .. })`.
    ///
    /// # Errors
    /// [`HsmErrorCode::Timeout`], [`HsmErrorCode::Unavailable`] (no connection, or it broke),
    /// [`HsmErrorCode::InvalidInput`] for a request the wire cannot carry,
    /// [`HsmErrorCode::HardwareError`] for an answer that does not decode or does not answer
    /// the request.
    pub async fn call(&self, request: &Request) -> HsmResult<Response> {
        let mut message = Vec::with_capacity(128);
        request.encode(&mut message)?;
        let command = request.command();
        let timeout = self.inner.request_timeout;
        match tokio::time::timeout(timeout, self.inner.send(command, &message)).await {
            Ok(result) => result,
            Err(_) => Err(HsmError::new(
                HsmErrorCode::Timeout,
                format!(
                    "{command}: no answer from the HSM at {} within {} ms",
                    self.inner.addr,
                    timeout.as_millis()
                ),
            )),
        }
    }

    async fn call_map<T>(
        &self,
        request: Request,
        map: impl FnOnce(Response) -> Result<T, Response>,
    ) -> HsmResult<T> {
        let command = request.command();
        match self.call(&request).await? {
            Response::Error { error, .. } => Err(error),
            other => map(other).map_err(|r| mismatched(command, &r)),
        }
    }
}

fn mismatched(command: Command, response: &Response) -> HsmError {
    let code = response.response_code();
    HsmError::new(
        HsmErrorCode::HardwareError,
        format!(
            "response code {} does not answer {command}",
            String::from_utf8_lossy(&code)
        ),
    )
}

impl ClientInner {
    async fn send(&self, command: Command, message: &[u8]) -> HsmResult<Response> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| unavailable("HSM client closed"))?;
        let conn = self.connection().await?;
        let (id, rx) = {
            let mut t = conn.shared.lock();
            if !t.open {
                return Err(unavailable("HSM connection lost"));
            }
            let mut id = t.next_id;
            // At most a quarter of the id space is ever in use (waiters are bounded by the
            // permits, abandoned ids by the same number), so this finds a free id quickly.
            while t.waiters.contains_key(&id) || t.abandoned.contains(&id) {
                id = (id + 1) % self.id_space;
            }
            t.next_id = (id + 1) % self.id_space;
            let (tx, rx) = oneshot::channel();
            t.waiters.insert(id, (command, tx));
            (id, rx)
        };
        let guard = PendingGuard {
            shared: &conn.shared,
            id,
            limit: self.max_in_flight,
        };
        let header = format!("{id:0width$X}", width = self.frame.header_len);
        let mut frame = Vec::with_capacity(message.len() + header.len() + 2);
        write_frame(&self.frame, header.as_bytes(), message, &mut frame)?;
        conn.tx
            .send(frame)
            .await
            .map_err(|_| unavailable("HSM connection lost while sending"))?;
        let result = rx
            .await
            .unwrap_or_else(|_| Err(unavailable("HSM connection lost")));
        drop(guard);
        result
    }

    async fn connection(&self) -> HsmResult<Arc<Conn>> {
        let mut slot = self.slot.lock().await;
        if let Some(c) = &slot.conn {
            if c.shared.is_open() {
                return Ok(Arc::clone(c));
            }
            slot.conn = None;
        }
        let now = Instant::now();
        if let Some(at) = slot.retry_at
            && at > now
        {
            return Err(unavailable(format!(
                "HSM at {} unreachable; next connection attempt in {} ms",
                self.addr,
                (at - now).as_millis()
            )));
        }
        let attempt = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.addr));
        let stream = match attempt.await {
            Ok(Ok(s)) => s,
            failed => {
                slot.failures = slot.failures.saturating_add(1);
                let factor = 1u32 << slot.failures.saturating_sub(1).min(16);
                let delay = self
                    .backoff_min
                    .saturating_mul(factor)
                    .min(self.backoff_max);
                slot.retry_at = Some(Instant::now() + delay);
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("timed out after {} ms", self.connect_timeout.as_millis()),
                };
                return Err(unavailable(format!(
                    "cannot connect to the HSM at {}: {why}",
                    self.addr
                )));
            }
        };
        slot.failures = 0;
        slot.retry_at = None;
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let shared = Arc::new(Shared {
            table: Mutex::new(Table {
                open: true,
                next_id: 0,
                waiters: HashMap::new(),
                abandoned: HashSet::new(),
            }),
        });
        let (tx, rx) = mpsc::channel(self.max_in_flight);
        let reader = tokio::spawn(read_responses(rd, Arc::clone(&shared), self.frame));
        let writer = tokio::spawn(write_requests(wr, rx, Arc::clone(&shared)));
        let conn = Arc::new(Conn {
            shared,
            tx,
            reader,
            writer,
        });
        slot.conn = Some(Arc::clone(&conn));
        Ok(conn)
    }
}

async fn write_requests(
    writer: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Vec<u8>>,
    shared: Arc<Shared>,
) {
    let mut out = BufWriter::new(writer);
    while let Some(frame) = rx.recv().await {
        let mut result = out.write_all(&frame).await;
        if result.is_ok() && rx.is_empty() {
            result = out.flush().await;
        }
        if let Err(e) = result {
            shared.fail_all(&format!("write failed: {e}"));
            return;
        }
    }
}

fn parse_id(header: &[u8]) -> Option<u64> {
    header.iter().try_fold(0u64, |acc, &c| {
        let d = char::from(c).to_digit(16)?;
        acc.checked_mul(16)?.checked_add(u64::from(d))
    })
}

async fn read_responses(mut reader: OwnedReadHalf, shared: Arc<Shared>, frame: FrameConfig) {
    let mut decoder = FrameDecoder::new(frame);
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(f)) => deliver(&shared, f.raw()),
                Ok(None) => break,
                Err(e) => {
                    shared.fail_all(&format!("bad response frame: {e}"));
                    return;
                }
            }
        }
        match reader.read_buf(&mut buf).await {
            Ok(0) => {
                shared.fail_all("closed by the HSM");
                return;
            }
            Ok(_) => {}
            Err(e) => {
                shared.fail_all(&format!("read failed: {e}"));
                return;
            }
        }
    }
}

/// Hands one response frame to the request waiting for it.
fn deliver(shared: &Shared, raw: super::codec::RawFrame<'_>) {
    let Some(id) = raw.header().ok().and_then(parse_id) else {
        // Not one of our ids: nobody to give it to.
        return;
    };
    let waiter = {
        let mut t = shared.lock();
        match t.waiters.remove(&id) {
            Some(w) => w,
            None => {
                // A late answer to a request that timed out (or a stray frame).
                t.abandoned.remove(&id);
                return;
            }
        }
    };
    let (command, tx) = waiter;
    let result = match Response::decode(raw.message(), raw.message_offset()) {
        Ok(r) if r.command() == Some(command) => Ok(r),
        Ok(r) => Err(mismatched(command, &r)),
        Err(e) => Err(malformed(command, e)),
    };
    let _ = tx.send(result);
}

fn malformed(command: Command, e: WireError) -> HsmError {
    HsmError::new(
        HsmErrorCode::HardwareError,
        format!("malformed answer to {command}: {e}"),
    )
}

impl SecurityModule for HsmClient {
    fn generate_key<'a>(
        &'a self,
        key_type: KeyType,
        length: DesKeyLength,
        export_under: Option<&'a KeyRef>,
    ) -> BoxFuture<'a, HsmResult<GeneratedKey>> {
        let request = Request::GenerateKey {
            key_type,
            length,
            export_under: export_under.cloned(),
        };
        Box::pin(self.call_map(request, |r| match r {
            Response::GenerateKey(g) => Ok(g),
            other => Err(other),
        }))
    }

    fn import_key<'a>(
        &'a self,
        kek: &'a KeyRef,
        key_type: KeyType,
        encrypted: &'a [u8],
        expected_kcv: Option<&'a Kcv>,
    ) -> BoxFuture<'a, HsmResult<KeyRef>> {
        let request = Request::ImportKey {
            kek: kek.clone(),
            key_type,
            encrypted: encrypted.to_vec(),
            expected_kcv: expected_kcv.copied(),
        };
        Box::pin(self.call_map(request, |r| match r {
            Response::ImportKey(k) => Ok(k),
            other => Err(other),
        }))
    }

    fn export_key<'a>(
        &'a self,
        kek: &'a KeyRef,
        key: &'a KeyRef,
    ) -> BoxFuture<'a, HsmResult<ExportedKey>> {
        let request = Request::ExportKey {
            kek: kek.clone(),
            key: key.clone(),
        };
        Box::pin(self.call_map(request, |r| match r {
            Response::ExportKey(e) => Ok(e),
            other => Err(other),
        }))
    }

    fn key_check_value<'a>(&'a self, key: &'a KeyRef) -> BoxFuture<'a, HsmResult<Kcv>> {
        let request = Request::KeyCheckValue { key: key.clone() };
        Box::pin(self.call_map(request, |r| match r {
            Response::KeyCheckValue(k) => Ok(k),
            other => Err(other),
        }))
    }

    fn translate_pin<'a>(&'a self, req: &'a PinTranslation) -> BoxFuture<'a, HsmResult<[u8; 8]>> {
        // CA for a TPK source, CC for anything else (the HSM checks the type).
        let request = if req.source_key.key_type == KeyType::Tpk {
            Request::TranslatePinTpk(req.clone())
        } else {
            Request::TranslatePinZpk(req.clone())
        };
        Box::pin(self.call_map(request, |r| match r {
            Response::TranslatePinTpk(b) | Response::TranslatePinZpk(b) => Ok(b),
            other => Err(other),
        }))
    }

    fn generate_mac<'a>(
        &'a self,
        key: &'a KeyRef,
        alg: MacAlgorithm,
        data: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<Vec<u8>>> {
        let request = Request::GenerateMac {
            key: key.clone(),
            algorithm: alg,
            data: data.to_vec(),
        };
        Box::pin(self.call_map(request, |r| match r {
            Response::GenerateMac(m) => Ok(m),
            other => Err(other),
        }))
    }

    fn verify_mac<'a>(
        &'a self,
        key: &'a KeyRef,
        alg: MacAlgorithm,
        data: &'a [u8],
        mac: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<()>> {
        let request = Request::VerifyMac {
            key: key.clone(),
            algorithm: alg,
            data: data.to_vec(),
            mac: mac.to_vec(),
        };
        Box::pin(self.call_map(request, |r| match r {
            Response::VerifyMac => Ok(()),
            other => Err(other),
        }))
    }

    fn pboc_derive_key<'a>(
        &'a self,
        master: &'a KeyRef,
        factors: &'a [[u8; 8]],
    ) -> BoxFuture<'a, HsmResult<KeyRef>> {
        let request = Request::PbocDeriveKey {
            master: master.clone(),
            factors: factors.to_vec(),
        };
        Box::pin(self.call_map(request, |r| match r {
            Response::PbocDeriveKey(k) => Ok(k),
            other => Err(other),
        }))
    }

    fn pboc_load_mac2<'a>(
        &'a self,
        dlk_master: &'a KeyRef,
        req: &'a LoadRequest,
    ) -> BoxFuture<'a, HsmResult<[u8; 4]>> {
        let request = Request::PbocLoadMac2 {
            dlk_master: dlk_master.clone(),
            request: req.clone(),
        };
        Box::pin(self.call_map(request, |r| match r {
            Response::PbocLoadMac2(m) => Ok(m),
            other => Err(other),
        }))
    }

    fn pboc_verify_tac<'a>(
        &'a self,
        dtk_master: &'a KeyRef,
        req: &'a TacRequest,
    ) -> BoxFuture<'a, HsmResult<()>> {
        let request = Request::PbocVerifyTac {
            dtk_master: dtk_master.clone(),
            request: req.clone(),
        };
        Box::pin(self.call_map(request, |r| match r {
            Response::PbocVerifyTac => Ok(()),
            other => Err(other),
        }))
    }

    fn encrypt_data<'a>(
        &'a self,
        key: &'a KeyRef,
        mode: DataMode,
        data: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<Vec<u8>>> {
        let request = Request::EncryptData {
            key: key.clone(),
            mode,
            data: data.to_vec(),
        };
        Box::pin(self.call_map(request, |r| match r {
            Response::EncryptData(d) => Ok(d),
            other => Err(other),
        }))
    }

    fn decrypt_data<'a>(
        &'a self,
        key: &'a KeyRef,
        mode: DataMode,
        data: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<Vec<u8>>> {
        let request = Request::DecryptData {
            key: key.clone(),
            mode,
            data: data.to_vec(),
        };
        Box::pin(self.call_map(request, |r| match r {
            Response::DecryptData(d) => Ok(d),
            other => Err(other),
        }))
    }

    fn diagnostics(&self) -> BoxFuture<'_, HsmResult<Diagnostics>> {
        Box::pin(self.call_map(Request::Diagnostics, |r| match r {
            Response::Diagnostics(d) => Ok(d),
            other => Err(other),
        }))
    }

    fn echo<'a>(&'a self, data: &'a [u8]) -> BoxFuture<'a, HsmResult<Vec<u8>>> {
        let request = Request::Echo {
            data: data.to_vec(),
        };
        Box::pin(self.call_map(request, |r| match r {
            Response::Echo(d) => Ok(d),
            other => Err(other),
        }))
    }
}

const _: () = assert!(MAX_ID_DIGITS <= MAX_HEADER_LEN);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_from_hex_headers() {
        assert_eq!(parse_id(b"00FF"), Some(255));
        assert_eq!(parse_id(b"00fg"), None);
        assert_eq!(parse_id(&[b'F'; 17]), None);
    }

    #[test]
    fn small_headers_limit_in_flight() {
        let c = HsmClient::builder("127.0.0.1:1")
            .header_len(2)
            .max_in_flight(1000)
            .build()
            .unwrap();
        assert_eq!(c.max_in_flight(), 64);
        let e = HsmClient::builder("x").header_len(1).build().unwrap_err();
        assert_eq!(e.code, HsmErrorCode::InvalidInput);
    }
}
