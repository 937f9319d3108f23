//! The admin endpoint: plain HTTP/1.1 on a loopback address, one request per connection.
//!
//! | path | answer |
//! |---|---|
//! | `GET /health` | `200 {"status":"ok"}` when every module runs, `503 {"status":"degraded"}` otherwise |
//! | `GET /status` | JSON: modules (state, restarts), every link (name, spec, mode, up, in flight, counters), SAF and exception depths, signed-in terminals, HSM state |
//! | `GET /metrics` | Prometheus text: transactions by kind and outcome, latency histogram, per link up/down, in flight, sent and timeouts, SAF depths, HSM state |
//!
//! Requests are bounded (8 KiB of headers, 5 s to send them) and so are connections
//! (`admin.max_connections`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::timeout;
use tracing::warn;

use crate::store::SafQueue;
use crate::supervisor::{ModuleStatus, ModuleTable};

use super::Shared;

/// Largest request head accepted.
const MAX_HEAD: usize = 8 * 1024;
/// Time allowed to send the request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A link as `/status` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct LinkStatus {
    /// Name.
    pub name: String,
    /// Its upstream dialect (`spec`).
    pub spec: String,
    /// Its connection mode.
    pub mode: crate::config::LinkMode,
    /// Connected.
    pub up: bool,
    /// Requests outstanding.
    pub in_flight: usize,
    /// Times the link came up (every socket it needs connected; in the short mode, a
    /// response after a failure).
    pub connects: u64,
    /// Times the link went down.
    pub disconnects: u64,
    /// Requests written.
    pub sent: u64,
    /// Responses matched.
    pub matched: u64,
    /// Requests timed out.
    pub timeouts: u64,
    /// Frames the center sent on a simplex link's sending socket.
    pub wrong_socket: u64,
    /// Connections to a simplex link's receive address refused because their source is
    /// not allowed (`receive_allow`).
    pub refused_peers: u64,
}

/// A SAF destination's depths.
#[derive(Debug, Clone, Serialize)]
pub struct SafStatus {
    /// Destination (link name).
    pub destination: String,
    /// Entries queued.
    pub queued: u64,
    /// Entries in the exception queue.
    pub exception: u64,
}

/// The `/status` document.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Modules.
    pub modules: Vec<ModuleStatus>,
    /// Links.
    pub links: Vec<LinkStatus>,
    /// SAF depths.
    pub saf: Vec<SafStatus>,
    /// Terminals signed in.
    pub signed_in: usize,
    /// Whether the HSM answered the last operation.
    pub hsm_up: bool,
}

/// Builds the status document.
pub async fn status(sh: &Shared, modules: &ModuleTable) -> Status {
    let g = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
    let mut saf: Vec<SafStatus> = sh
        .store
        .depths()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|d| SafStatus {
            destination: d.destination,
            queued: d.queued,
            exception: d.exception,
        })
        .collect();
    let dest = sh.links.saf_destination();
    if !saf.iter().any(|s| s.destination == dest) {
        saf.push(SafStatus {
            destination: dest.to_owned(),
            queued: 0,
            exception: 0,
        });
    }
    let links = sh
        .links
        .iter()
        .map(|l| {
            let c = &l.counters;
            LinkStatus {
                name: l.name().to_owned(),
                spec: l.config().spec.clone(),
                mode: l.config().mode,
                up: l.is_up(),
                in_flight: l.in_flight(),
                connects: g(&c.connects),
                disconnects: g(&c.disconnects),
                sent: g(&c.sent),
                matched: g(&c.matched),
                timeouts: g(&c.timeouts),
                wrong_socket: g(&c.wrong_socket),
                refused_peers: g(&c.refused_peers),
            }
        })
        .collect();
    Status {
        modules: modules.snapshot(),
        links,
        saf,
        signed_in: sh.sessions.len(),
        hsm_up: sh.metrics.hsm_up.load(Ordering::Relaxed),
    }
}

/// Serves the admin endpoint until `shutdown` turns true.
pub async fn run(
    sh: Arc<Shared>,
    listener: Arc<TcpListener>,
    modules: ModuleTable,
    max_connections: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a { Ok(x) => x, Err(_) => continue },
            _ = shutdown.changed() => return,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let (sh, modules) = (sh.clone(), modules.clone());
        tokio::spawn(async move {
            if let Err(e) = serve(&sh, &modules, stream).await {
                warn!(code = "ADMIN", "admin request failed: {e}");
            }
            drop(permit);
        });
    }
}

async fn serve(sh: &Shared, modules: &ModuleTable, mut stream: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    let read = async {
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            head.extend_from_slice(chunk.get(..n).unwrap_or_default());
            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                return Ok(true);
            }
            if head.len() > MAX_HEAD {
                return Ok(false);
            }
        }
    };
    let complete = timeout(READ_TIMEOUT, read).await.unwrap_or(Ok(false))?;
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.lines().next().unwrap_or("").split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (code, ctype, body) = if !complete {
        (400, "text/plain", "bad request\n".to_owned())
    } else if method != "GET" {
        (405, "text/plain", "only GET\n".to_owned())
    } else {
        match path {
            "/health" => {
                if modules.all_running() {
                    (200, "application/json", "{\"status\":\"ok\"}\n".to_owned())
                } else {
                    (
                        503,
                        "application/json",
                        "{\"status\":\"degraded\"}\n".to_owned(),
                    )
                }
            }
            "/status" => {
                let s = status(sh, modules).await;
                (
                    200,
                    "application/json",
                    serde_json::to_string_pretty(&s).unwrap_or_default() + "\n",
                )
            }
            "/metrics" => {
                let s = status(sh, modules).await;
                let saf: Vec<(String, u64, u64)> = s
                    .saf
                    .iter()
                    .map(|d| (d.destination.clone(), d.queued, d.exception))
                    .collect();
                (
                    200,
                    "text/plain; version=0.0.4",
                    sh.metrics.render(&s.links, &saf),
                )
            }
            _ => (404, "text/plain", "not found\n".to_owned()),
        }
    };
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(out.as_bytes()).await?;
    stream.shutdown().await
}

/// Fetches `path` from an admin endpoint: the status code and the body.
pub async fn fetch(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = timeout(READ_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = Vec::new();
    timeout(READ_TIMEOUT, s.read_to_end(&mut out))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "read timed out"))??;
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

/// Arguments of `posp-node status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The admin endpoint of a running front end.
    #[arg(long, default_value = "127.0.0.1:5880")]
    pub admin: SocketAddr,
}

/// `posp-node status`: prints the front end's `/status` document.
pub fn run_status(args: StatusArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(fetch(args.admin, "/status")) {
        Ok((200, body)) => {
            print!("{body}");
            ExitCode::SUCCESS
        }
        Ok((code, body)) => {
            eprintln!("error: {} answered {code}: {body}", args.admin);
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: cannot reach the admin endpoint {}: {e}", args.admin);
            ExitCode::FAILURE
        }
    }
}
