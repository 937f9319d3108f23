//! The terminal listener: accepts connections up to `max_connections` (more are closed at
//! once), reads `cups-pos` frames (2-byte length, TPDU, header), queues each request for
//! the flow [`workers`](super::workers) (at most `max_in_flight` per connection at once) and
//! writes the answers with the TPDU's addresses swapped and the header echoed.
//!
//! A frame that cannot be delimited (a bad length or header) cannot be resynchronised: the
//! connection is logged and closed. A connection idle for `idle_timeout` is closed. On
//! shutdown the listener stops accepting and each connection stops reading; requests
//! already in their flow finish (within the supervisor's grace period).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use iso8583_wire::frame::FrameConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::timeout;
use tracing::{debug, info, warn};

use crate::config::ListenerConfig;

use super::Shared;
use super::workers::{FlowJob, Responder};

/// Accepts terminal connections until `shutdown` turns true.
pub async fn run(
    sh: Arc<Shared>,
    listener: Arc<TcpListener>,
    cfg: ListenerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    if *shutdown.borrow() {
        return;
    }
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                warn!(code = "ACCEPT", "accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            sh.metrics
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            warn!(code = "CONN_LIMIT", %peer, "connection refused: at max_connections");
            drop(stream);
            continue;
        };
        sh.metrics
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let (sh, cfg, shutdown) = (sh.clone(), cfg.clone(), shutdown.clone());
        tokio::spawn(async move {
            sh.metrics.connections_open.fetch_add(1, Ordering::Relaxed);
            debug!(%peer, "terminal connected");
            serve(&sh, stream, &cfg, shutdown).await;
            sh.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
            debug!(%peer, "terminal disconnected");
            drop(permit);
        });
    }
}

/// Serves one terminal connection.
async fn serve(
    sh: &Arc<Shared>,
    stream: TcpStream,
    cfg: &ListenerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut frame = FrameConfig::cups_pos();
    frame.max_frame(cfg.max_frame);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(cfg.max_in_flight);
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            if wr.write_all(&out).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let in_flight = Arc::new(Semaphore::new(cfg.max_in_flight));
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = vec![0u8; 2048];
    'read: loop {
        let n = tokio::select! {
            r = timeout(cfg.idle_timeout, rd.read(&mut chunk)) => match r {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => n,
                Err(_) => {
                    info!("terminal connection idle; closing");
                    break;
                }
            },
            _ = shutdown.changed() => break,
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        loop {
            let (tpdu, header, body, used) = match frame.decode(&buf) {
                Ok(Some((f, used))) => (f.tpdu, f.header, f.body.to_vec(), used),
                Ok(None) => break,
                Err(e) => {
                    sh.metrics.format_errors.fetch_add(1, Ordering::Relaxed);
                    warn!(
                        code = "FRAME",
                        offset = e.offset(),
                        "bad frame from a terminal: {e}; closing"
                    );
                    break 'read;
                }
            };
            buf.drain(..used);
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                break 'read;
            };
            let job = FlowJob {
                body,
                responder: Responder {
                    tx: tx.clone(),
                    tpdu,
                    header,
                    frame,
                    permit,
                    guard: sh.inflight.enter(),
                },
            };
            if sh.flows.submit(job).await.is_err() {
                warn!(code = "WORKERS", "the flow workers are gone; closing");
                break 'read;
            }
        }
    }
    drop(tx);
    // Let answers in progress go out before the writer closes.
    let _ = writer.await;
}
