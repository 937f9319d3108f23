//! The transaction-flow workers (交易流程): `node.flow_workers` supervised modules
//! `flow#0`, `flow#1` ... taking requests from one queue the listeners fill, each running one
//! request's flow at a time and handing the answer back to the connection it came from.
//!
//! A worker that dies (a panic in a flow) is restarted by the supervisor like any module.
//! The request it was holding is not lost: it sits in the worker's slot until its answer is
//! handed over, so the restarted worker finds it there first, closes its journal entry the
//! way crash recovery does (an unfinished reversible entry gets its reversal queued in the
//! SAF) and answers the terminal `96`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use iso8583_wire::frame::{CupsHeader, FrameConfig, Tpdu};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tracing::{error, warn};

use super::{OwnedInFlightGuard, Shared, flows};

/// Where a request's answer goes: its connection's writer, with the framing to use.
#[derive(Debug)]
pub struct Responder {
    /// The connection's outgoing frames.
    pub tx: mpsc::Sender<Vec<u8>>,
    /// The request's TPDU (the answer's has the addresses swapped).
    pub tpdu: Option<Tpdu>,
    /// The request's header (echoed).
    pub header: Option<CupsHeader>,
    /// The connection's framing.
    pub frame: FrameConfig,
    /// The connection's in-flight slot, freed once answered.
    pub permit: OwnedSemaphorePermit,
    /// Counts the request as in its flow until answered.
    pub guard: OwnedInFlightGuard,
}

impl Responder {
    /// Frames `answer` (if any) and queues it on the connection.
    pub async fn answer(self, answer: Option<Vec<u8>>) {
        if let Some(body) = answer {
            let mut out = Vec::with_capacity(body.len() + 13);
            match self.frame.encode(
                self.tpdu.map(|t: Tpdu| t.reply()),
                self.header,
                &body,
                &mut out,
            ) {
                Ok(()) => {
                    let _ = self.tx.send(out).await;
                }
                Err(e) => warn!(code = "FRAME", "cannot frame the response: {e}"),
            }
        }
    }
}

/// One request waiting for a worker.
#[derive(Debug)]
pub struct FlowJob {
    /// The request body (after framing).
    pub body: Vec<u8>,
    /// Where the answer goes.
    pub responder: Responder,
}

/// The queue between the listeners and the workers, and each worker's slot.
#[derive(Debug)]
pub struct FlowQueue {
    tx: mpsc::Sender<FlowJob>,
    rx: tokio::sync::Mutex<mpsc::Receiver<FlowJob>>,
    slots: Vec<Mutex<Option<FlowJob>>>,
}

impl FlowQueue {
    /// A queue of `capacity` for `workers` workers.
    pub fn new(workers: usize, capacity: usize) -> FlowQueue {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        FlowQueue {
            tx,
            rx: tokio::sync::Mutex::new(rx),
            slots: (0..workers.max(1)).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// The number of workers.
    pub fn workers(&self) -> usize {
        self.slots.len()
    }

    /// Queues a request (waits while the queue is full); `Err` gives it back when the
    /// workers are gone.
    pub async fn submit(&self, job: FlowJob) -> Result<(), FlowJob> {
        self.tx.send(job).await.map_err(|e| e.0)
    }

    fn slot(&self, worker: usize) -> Option<&Mutex<Option<FlowJob>>> {
        self.slots.get(worker)
    }
}

fn lock(slot: &Mutex<Option<FlowJob>>) -> std::sync::MutexGuard<'_, Option<FlowJob>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Worker `index`: first the request a previous instance died holding, then requests from
/// the queue until shutdown.
pub async fn run(sh: Arc<Shared>, index: usize, mut shutdown: watch::Receiver<bool>) {
    let Some(slot) = sh.flows.slot(index) else {
        error!(code = "WORKER", index, "no such flow worker");
        return;
    };
    let orphan = lock(slot).take();
    if let Some(job) = orphan {
        sh.metrics.worker_crashes.fetch_add(1, Ordering::Relaxed);
        error!(
            code = "WORKER_CRASH",
            worker = index,
            "a flow worker died holding a request: answering 96 and closing its journal entry"
        );
        let answer = flows::after_crash(&sh, &job.body).await;
        job.responder.answer(answer).await;
    }
    loop {
        if *shutdown.borrow() {
            return;
        }
        let next = tokio::select! {
            j = async { sh.flows.rx.lock().await.recv().await } => j,
            _ = shutdown.changed() => return,
        };
        let Some(job) = next else { return };
        let body = job.body.clone();
        *lock(slot) = Some(job);
        let answer = flows::handle(&sh, &body).await;
        let held = lock(slot).take();
        if let Some(job) = held {
            job.responder.answer(answer).await;
        }
    }
}
