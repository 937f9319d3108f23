//! [`HsmServer`]: serves any [`SecurityModule`] over TCP with the host protocol.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::codec::{FrameConfig, FrameDecoder, WireError};
use super::commands::{Request, Response};
use crate::key::KeyType;
use crate::security::{HsmError, HsmErrorCode, SecurityModule};

/// The default limit on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

/// The default number of requests one connection may have in progress (read but not yet
/// answered).
pub const DEFAULT_PIPELINE_DEPTH: usize = 64;

/// The default time [`HsmServer::run`] waits, after a shutdown, for connections to answer the
/// requests they have already read.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The request code used in the answer to a frame too short to carry one.
const NO_CODE: [u8; 2] = *b"ZZ";

/// Runs one request against a module and builds the response: the dispatch table of the
/// server, usable on its own (e.g. to serve the protocol over another transport).
///
/// `CA` needs a TPK as source key and `CC` refuses one (error 28); all other checks are the
/// module's. Module errors become [`Response::Error`] with the module's code and detail.
pub async fn execute(module: &dyn SecurityModule, request: Request) -> Response {
    let command = request.command();
    let result = dispatch(module, request).await;
    result.unwrap_or_else(|error| Response::error(command, error))
}

async fn dispatch(module: &dyn SecurityModule, request: Request) -> Result<Response, HsmError> {
    Ok(match request {
        Request::Diagnostics => Response::Diagnostics(module.diagnostics().await?),
        Request::Echo { data } => Response::Echo(module.echo(&data).await?),
        Request::GenerateKey {
            key_type,
            length,
            export_under,
        } => Response::GenerateKey(
            module
                .generate_key(key_type, length, export_under.as_ref())
                .await?,
        ),
        Request::ImportKey {
            kek,
            key_type,
            encrypted,
            expected_kcv,
        } => Response::ImportKey(
            module
                .import_key(&kek, key_type, &encrypted, expected_kcv.as_ref())
                .await?,
        ),
        Request::ExportKey { kek, key } => {
            Response::ExportKey(module.export_key(&kek, &key).await?)
        }
        Request::KeyCheckValue { key } => {
            Response::KeyCheckValue(module.key_check_value(&key).await?)
        }
        Request::TranslatePinTpk(t) => {
            if t.source_key.key_type == KeyType::Zpk {
                return Err(HsmError::new(
                    HsmErrorCode::KeyType,
                    "CA: the source key is a ZPK; use CC to translate from a ZPK",
                ));
            }
            Response::TranslatePinTpk(module.translate_pin(&t).await?)
        }
        Request::TranslatePinZpk(t) => {
            if t.source_key.key_type == KeyType::Tpk {
                return Err(HsmError::new(
                    HsmErrorCode::KeyType,
                    "CC: the source key is a TPK; use CA to translate from a TPK",
                ));
            }
            Response::TranslatePinZpk(module.translate_pin(&t).await?)
        }
        Request::GenerateMac {
            key,
            algorithm,
            data,
        } => Response::GenerateMac(module.generate_mac(&key, algorithm, &data).await?),
        Request::VerifyMac {
            key,
            algorithm,
            data,
            mac,
        } => {
            module.verify_mac(&key, algorithm, &data, &mac).await?;
            Response::VerifyMac
        }
        Request::EncryptData { key, mode, data } => {
            Response::EncryptData(module.encrypt_data(&key, mode, &data).await?)
        }
        Request::DecryptData { key, mode, data } => {
            Response::DecryptData(module.decrypt_data(&key, mode, &data).await?)
        }
        Request::PbocDeriveKey { master, factors } => {
            Response::PbocDeriveKey(module.pboc_derive_key(&master, &factors).await?)
        }
        Request::PbocLoadMac2 {
            dlk_master,
            request,
        } => Response::PbocLoadMac2(module.pboc_load_mac2(&dlk_master, &request).await?),
        Request::PbocVerifyTac {
            dtk_master,
            request,
        } => {
            module.pboc_verify_tac(&dtk_master, &request).await?;
            Response::PbocVerifyTac
        }
    })
}

/// Configures and binds an [`HsmServer`].
#[derive(Clone)]
pub struct HsmServerBuilder {
    module: Arc<dyn SecurityModule>,
    frame: FrameConfig,
    max_connections: usize,
    pipeline_depth: usize,
    idle_timeout: Option<Duration>,
    drain_timeout: Duration,
}

impl core::fmt::Debug for HsmServerBuilder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HsmServerBuilder")
            .field("frame", &self.frame)
            .field("max_connections", &self.max_connections)
            .field("pipeline_depth", &self.pipeline_depth)
            .field("idle_timeout", &self.idle_timeout)
            .field("drain_timeout", &self.drain_timeout)
            .finish_non_exhaustive()
    }
}

impl HsmServerBuilder {
    /// Sets the header length (default 4).
    pub fn header_len(&mut self, len: usize) -> &mut Self {
        self.frame.header_len = len;
        self
    }

    /// Sets the largest frame accepted (default [`super::DEFAULT_MAX_FRAME_LEN`]). A client
    /// that announces a longer frame is disconnected: the stream cannot be trusted after it.
    pub fn max_frame_len(&mut self, len: usize) -> &mut Self {
        self.frame.max_frame_len = len;
        self
    }

    /// Sets the limit on open connections (default [`DEFAULT_MAX_CONNECTIONS`], at least 1).
    /// A connection over the limit is accepted and closed at once.
    pub fn max_connections(&mut self, n: usize) -> &mut Self {
        self.max_connections = n.max(1);
        self
    }

    /// Sets how many requests one connection may have in progress (default
    /// [`DEFAULT_PIPELINE_DEPTH`], at least 1). Requests of a connection run concurrently
    /// and are answered in the order they arrived; when this many are unanswered the server
    /// stops reading from the connection.
    pub fn pipeline_depth(&mut self, n: usize) -> &mut Self {
        self.pipeline_depth = n.max(1);
        self
    }

    /// Closes connections that send nothing for this long (default: never).
    pub fn idle_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets how long [`HsmServer::run`] waits after a shutdown for connections to answer what
    /// they have read (default [`DEFAULT_DRAIN_TIMEOUT`]).
    pub fn drain_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.drain_timeout = timeout;
        self
    }

    /// Binds the listening socket.
    ///
    /// # Errors
    /// The bind error, or [`io::ErrorKind::InvalidInput`] for a bad frame configuration.
    pub async fn bind(&self, addr: impl ToSocketAddrs) -> io::Result<HsmServer> {
        self.frame
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind(addr).await?;
        let (shutdown, _) = watch::channel(false);
        Ok(HsmServer {
            listener,
            settings: Arc::new(Settings {
                module: Arc::clone(&self.module),
                frame: self.frame,
                pipeline_depth: self.pipeline_depth,
                idle_timeout: self.idle_timeout,
            }),
            max_connections: self.max_connections,
            drain_timeout: self.drain_timeout,
            shutdown: Arc::new(shutdown),
        })
    }
}

struct Settings {
    module: Arc<dyn SecurityModule>,
    frame: FrameConfig,
    pipeline_depth: usize,
    idle_timeout: Option<Duration>,
}

/// An HSM host protocol server over TCP, serving one [`SecurityModule`] to many connections.
///
/// ```no_run
/// # async fn f(module: std::sync::Arc<dyn pboc_sam::SecurityModule>) -> std::io::Result<()> {
/// use pboc_sam::hsm::HsmServer;
///
/// let server = HsmServer::builder(module).max_connections(16).bind("127.0.0.1:1500").await?;
/// let handle = server.shutdown_handle();
/// let task = tokio::spawn(server.run());
/// // ... later:
/// handle.shutdown();
/// task.await.ok();
/// # Ok(()) }
/// ```
pub struct HsmServer {
    listener: TcpListener,
    settings: Arc<Settings>,
    max_connections: usize,
    drain_timeout: Duration,
    shutdown: Arc<watch::Sender<bool>>,
}

impl core::fmt::Debug for HsmServer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HsmServer")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("frame", &self.settings.frame)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// Stops an [`HsmServer`]: it stops accepting, each connection stops reading, answers the
/// requests it has already read, and closes. Cloneable; any clone may signal.
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    tx: Arc<watch::Sender<bool>>,
}

impl ShutdownHandle {
    /// Signals the shutdown (idempotent).
    pub fn shutdown(&self) {
        self.tx.send_replace(true);
    }
}

impl HsmServer {
    /// A builder serving `module`.
    #[must_use]
    pub fn builder(module: Arc<dyn SecurityModule>) -> HsmServerBuilder {
        HsmServerBuilder {
            module,
            frame: FrameConfig::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            pipeline_depth: DEFAULT_PIPELINE_DEPTH,
            idle_timeout: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }

    /// The address the server listens on.
    ///
    /// # Errors
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle that stops the server.
    #[must_use]
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            tx: Arc::clone(&self.shutdown),
        }
    }

    /// Accepts and serves connections until the shutdown handle fires, then waits (at most
    /// the drain timeout) for the connections to finish, aborts any that have not, and
    /// closes the listener.
    ///
    /// # Errors
    /// None today: accept errors (e.g. too many open files) are waited out and retried.
    pub async fn run(self) -> io::Result<()> {
        let limit = Arc::new(Semaphore::new(self.max_connections));
        let mut shutdown = self.shutdown.subscribe();
        let mut connections = JoinSet::new();
        loop {
            if *shutdown.borrow_and_update() {
                break;
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
                            // Over the limit: close at once so the client knows.
                            drop(stream);
                            continue;
                        };
                        let settings = Arc::clone(&self.settings);
                        let stop = self.shutdown.subscribe();
                        connections.spawn(async move {
                            serve_connection(stream, settings, stop).await;
                            drop(permit);
                        });
                    }
                    // Transient (EMFILE, ECONNABORTED...): back off briefly.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(self.listener);
        let drain = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(self.drain_timeout, drain)
            .await
            .is_err()
        {
            connections.shutdown().await;
        }
        Ok(())
    }
}

/// A response being computed, in arrival order.
struct Pending {
    header: bytes::Bytes,
    request_code: [u8; 2],
    response: PendingResponse,
}

enum PendingResponse {
    Ready(Response),
    Running(JoinHandle<Response>),
}

async fn serve_connection(
    stream: TcpStream,
    settings: Arc<Settings>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Pending>(settings.pipeline_depth);
    let frame = settings.frame;
    let writer_task = tokio::spawn(write_responses(writer, rx, frame));
    let mut decoder = FrameDecoder::new(frame);
    let mut buf = BytesMut::with_capacity(4096);
    'read: loop {
        // Answer every complete frame in the buffer before reading again.
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(f)) => {
                    let pending = start_request(&settings, &f.body, f.header_len);
                    if tx.send(pending).await.is_err() {
                        break 'read;
                    }
                }
                Ok(None) => break,
                // Too large: the stream cannot be resynchronised.
                Err(_) => break 'read,
            }
        }
        if *shutdown.borrow_and_update() {
            break;
        }
        let read = async {
            match settings.idle_timeout {
                Some(t) => tokio::time::timeout(t, reader.read_buf(&mut buf))
                    .await
                    .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())),
                None => reader.read_buf(&mut buf).await,
            }
        };
        tokio::select! {
            _ = shutdown.changed() => break,
            n = read => match n {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
        }
    }
    // Let the writer answer everything already read, then close.
    drop(tx);
    let _ = writer_task.await;
}

/// Decodes one frame and starts its request (or prepares the error answer).
fn start_request(settings: &Arc<Settings>, body: &bytes::Bytes, header_len: usize) -> Pending {
    let raw = super::codec::RawFrame { body, header_len };
    let header = match raw.header() {
        Ok(_) => body.slice(..header_len),
        Err(e) => {
            // Shorter than the header: echo what there is, padded, so the answer is a
            // well-formed frame.
            let mut h = body.to_vec();
            h.resize(header_len, b'0');
            return Pending {
                header: h.into(),
                request_code: NO_CODE,
                response: PendingResponse::Ready(wire_error_response(NO_CODE, e)),
            };
        }
    };
    let message = raw.message();
    let request_code = match message {
        [a, b, ..] if a.is_ascii_graphic() && b.is_ascii_graphic() => [*a, *b],
        _ => NO_CODE,
    };
    let response = match Request::decode(message, raw.message_offset()) {
        Ok(request) => {
            let module = Arc::clone(&settings.module);
            PendingResponse::Running(tokio::spawn(async move {
                execute(module.as_ref(), request).await
            }))
        }
        Err(e) => PendingResponse::Ready(wire_error_response(request_code, e)),
    };
    Pending {
        header,
        request_code,
        response,
    }
}

fn wire_error_response(request_code: [u8; 2], e: WireError) -> Response {
    Response::Error {
        request_code,
        error: HsmError::from(e),
    }
}

async fn write_responses(
    writer: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Pending>,
    frame: FrameConfig,
) {
    let mut out = BufWriter::new(writer);
    let mut bytes = Vec::with_capacity(256);
    while let Some(p) = rx.recv().await {
        let response = match p.response {
            PendingResponse::Ready(r) => r,
            PendingResponse::Running(task) => task.await.unwrap_or_else(|_| Response::Error {
                request_code: p.request_code,
                error: HsmError::new(
                    HsmErrorCode::HardwareError,
                    "the security module failed while handling the request",
                ),
            }),
        };
        bytes.clear();
        if let Err(e) = response.encode_frame(&frame, &p.header, &mut bytes) {
            // A module result the wire cannot carry (e.g. an over-long firmware text).
            bytes.clear();
            let fallback = Response::Error {
                request_code: p.request_code,
                error: HsmError::new(
                    HsmErrorCode::HardwareError,
                    format!("the response cannot be encoded: {e}"),
                ),
            };
            if fallback
                .encode_frame(&frame, &p.header, &mut bytes)
                .is_err()
            {
                break;
            }
        }
        if out.write_all(&bytes).await.is_err() {
            return;
        }
        // Flush when nothing else is ready, so pipelined answers share a write.
        if rx.is_empty() && out.flush().await.is_err() {
            return;
        }
    }
    let _ = out.flush().await;
    let _ = out.shutdown().await;
}
