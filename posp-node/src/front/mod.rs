//! The front end (POSP): terminals in, the center upstream, journal first.
//!
//! ```text
//! POS --tcp--> listener (cups-pos framing) --> parse (model::Txn) --> route (MTI + F3 + 60.1)
//!     --> flow steps (registered? signed in? MAC, PIN PIK->ZPK, journal PENDING, SENT,
//!         link: match registered, len2 request, reply or timeout) --> assemble + MAC --> POS
//! timeout --> TIMED_OUT --> reversal queued in the SAF (durable) --> 98 to the POS
//!         --> SAF sender --> center --> REVERSED
//! ```
//!
//! [`Front::start`] opens the journal, builds the HSM (an in-process SoftHsm on the LMK
//! file, or a pool of remote HSMs), runs crash recovery ([`recovery`]), binds the listener
//! and the admin endpoint, and starts the modules under the [`Supervisor`]: `listener`,
//! `flow#0` ... `flow#N-1` (the [`workers`]), `link:<name>` and `late:<name>` for each
//! `[[link]]`, `saf:<name>` (one SAF sender, named after the first link) and `admin`. [`FrontHandle::shutdown`] stops
//! accepting, lets transactions in flight finish within `node.shutdown_grace`, and flushes
//! the journal.
//!
//! Link modes: `full-duplex-long`, `half-duplex-long`, `simplex-long` and
//! `full-duplex-short`; see [`link`]. With several `[[link]]`s to the center a request goes
//! out on the up link with the fewest requests in flight ([`link::Links::pick`]); when none
//! is up it is answered `96` without being sent, as with a single link that is down.

pub mod admin;
pub mod clock;
pub mod flows;
pub mod link;
pub mod listener;
pub mod metrics;
pub mod model;
pub mod recovery;
pub mod route;
pub mod saf_sender;
pub mod session;
pub mod workers;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use pboc_sam::{HsmClient, HsmPool, KeyRef, KeyType, Lmk, SecurityModule, SoftHsm};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::{Instant, sleep};
use tracing::{error, info};

use crate::config::Config;
use crate::store::{EntryFilter, Journal, SqliteStore};
use crate::supervisor::{ModuleFactory, ModuleFuture, ModuleTable, Supervisor};

use self::link::Links;
use self::metrics::Metrics;
use self::session::{Sessions, Terminal};

/// Why the front end could not start: a code, where, and what.
#[derive(Debug, thiserror::Error)]
#[error("{code} at {at}: {message}")]
pub struct FrontError {
    /// Stable code (`STORE_OPEN`, `HSM`, `KEYS`, `BIND`, `RECOVERY`, `CONFIG`).
    pub code: &'static str,
    /// The step.
    pub at: String,
    /// What happened.
    pub message: String,
}

fn fail(code: &'static str, at: impl Into<String>, message: impl std::fmt::Display) -> FrontError {
    FrontError {
        code,
        at: at.into(),
        message: message.to_string(),
    }
}

/// Counts requests inside their flow, for graceful shutdown.
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    /// Enters a flow (an owned guard for spawned tasks).
    pub fn enter(self: &Arc<Self>) -> OwnedInFlightGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        OwnedInFlightGuard(self.clone())
    }

    /// Requests in their flow now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Waits until no request is in its flow, or `deadline`; true if idle.
    pub async fn wait_idle(&self, deadline: Instant) -> bool {
        loop {
            let notified = self.idle.notified();
            if self.count() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count() == 0;
            }
        }
    }
}

/// An owned [`InFlight`] guard.
#[derive(Debug)]
pub struct OwnedInFlightGuard(Arc<InFlight>);

impl Drop for OwnedInFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Everything the modules share.
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The HSM (SoftHsm or pool).
    pub hsm: Arc<dyn SecurityModule>,
    /// The journal and SAF store.
    pub store: Arc<SqliteStore>,
    /// Registered terminals by id.
    pub terminals: HashMap<String, Terminal>,
    /// Signed-in terminals' working keys.
    pub sessions: Sessions,
    /// The links to the center (`[[link]]`, one or more).
    pub links: Links,
    /// Zone MAC key.
    pub zak: KeyRef,
    /// Zone PIN key.
    pub zpk: KeyRef,
    /// Metrics.
    pub metrics: Metrics,
    /// Wakes the SAF sender when a reversal is queued.
    pub saf_wake: Notify,
    /// Requests in their flow.
    pub inflight: Arc<InFlight>,
    /// Turns true when shutdown begins: listeners stop accepting and reading.
    pub stop: tokio::sync::watch::Sender<bool>,
    /// The queue from the listeners to the flow workers.
    pub flows: workers::FlowQueue,
    /// Test hook: a purchase of this amount (fen) makes its flow worker panic after the
    /// journal entry is written, to exercise the supervisor's restart (0 = off).
    #[doc(hidden)]
    pub test_panic_amount: std::sync::atomic::AtomicU64,
    rrn: AtomicU32,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// A retrieval reference number for answers the front end gives itself: the local time
    /// and a 6-digit counter.
    pub fn next_rrn(&self, hhmmss: &str) -> String {
        let n = self.rrn.fetch_add(1, Ordering::Relaxed) % 1_000_000;
        format!("{hhmmss}{n:06}")
    }
}

/// The front end; see the module documentation.
#[derive(Debug)]
pub struct Front;

/// A running front end.
pub struct FrontHandle {
    shared: Arc<Shared>,
    supervisor: Supervisor,
    listeners: Vec<SocketAddr>,
    admin: Option<SocketAddr>,
    recovery: recovery::RecoveryReport,
}

impl std::fmt::Debug for FrontHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrontHandle")
            .field("listeners", &self.listeners)
            .field("admin", &self.admin)
            .finish()
    }
}

/// Builds the HSM of the configuration.
pub async fn build_hsm(config: &Config) -> Result<Arc<dyn SecurityModule>, FrontError> {
    if let Some(path) = &config.hsm.lmk_file {
        let lmk = Lmk::load(path).map_err(|e| fail("HSM", "hsm.lmk_file", e))?;
        let rng = crate::init::OsRandom::open().map_err(|e| fail("HSM", "random source", e))?;
        return Ok(Arc::new(SoftHsm::new(lmk, Box::new(rng))));
    }
    let mut pool = HsmPool::builder();
    pool.attempt_timeout(config.hsm.request_timeout);
    for addr in &config.hsm.remote {
        let client = HsmClient::builder(addr.clone())
            .request_timeout(config.hsm.request_timeout)
            .max_in_flight(config.hsm.max_in_flight)
            .build()
            .map_err(|e| fail("HSM", format!("hsm.remote {addr}"), e))?;
        pool.member(addr.clone(), Arc::new(client));
    }
    Ok(Arc::new(pool.build().await))
}

impl Front {
    /// Starts the front end with an HSM built from the configuration.
    pub async fn start(config: Config) -> Result<FrontHandle, FrontError> {
        let hsm = build_hsm(&config).await?;
        Front::start_with_hsm(config, hsm).await
    }

    /// Starts the front end with a given HSM (tests and the demo share one).
    pub async fn start_with_hsm(
        config: Config,
        hsm: Arc<dyn SecurityModule>,
    ) -> Result<FrontHandle, FrontError> {
        config
            .validate()
            .map_err(|e| fail("CONFIG", "validate", e))?;
        if let Some(dir) = config.storage.journal.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail("STORE_OPEN", dir.display().to_string(), e))?;
        }
        let store =
            SqliteStore::open(&config.storage.journal, &config.store_config()).map_err(|e| {
                fail(
                    "STORE_OPEN",
                    config.storage.journal.display().to_string(),
                    e,
                )
            })?;
        let zak = config
            .keys
            .zak
            .to_key_ref_of("keys.zak", KeyType::Zak)
            .map_err(|e| fail("KEYS", "keys.zak", e))?;
        let zpk = config
            .keys
            .zpk
            .to_key_ref_of("keys.zpk", KeyType::Zpk)
            .map_err(|e| fail("KEYS", "keys.zpk", e))?;
        for (name, key) in [("keys.zak", &zak), ("keys.zpk", &zpk)] {
            hsm.key_check_value(key).await.map_err(|e| {
                fail(
                    "KEYS",
                    name,
                    format!("the HSM cannot use it (another LMK?): {e}"),
                )
            })?;
        }
        let mut terminals = HashMap::new();
        for (i, t) in config.terminals.iter().enumerate() {
            let at = format!("terminal[{i}].tmk");
            let tmk = t
                .tmk
                .to_key_ref_of(&at, KeyType::Tmk)
                .map_err(|e| fail("KEYS", at.clone(), e))?;
            terminals.insert(
                t.id.clone(),
                Terminal {
                    id: t.id.clone(),
                    merchant_id: t.merchant_id.clone(),
                    tmk,
                },
            );
        }
        let links = Links::new(&config.links, &config.node.acquirer_id)
            .ok_or_else(|| fail("CONFIG", "link", "no [[link]]"))?;
        let shared = Arc::new(Shared {
            hsm,
            store: Arc::new(store),
            terminals,
            sessions: Sessions::default(),
            links,
            zak,
            zpk,
            metrics: Metrics::new(),
            saf_wake: Notify::new(),
            inflight: Arc::new(InFlight::default()),
            stop: tokio::sync::watch::channel(false).0,
            flows: workers::FlowQueue::new(config.node.flow_workers, config.node.flow_queue),
            test_panic_amount: std::sync::atomic::AtomicU64::new(0),
            rrn: AtomicU32::new(1),
            config,
        });
        seed_stan(&shared).await;
        let recovery = recovery::recover(&shared)
            .await
            .map_err(|e| fail("RECOVERY", e.at, e))?;
        if !recovery.reversals_queued.is_empty() {
            info!(
                count = recovery.reversals_queued.len(),
                "crash recovery queued reversals"
            );
        }

        let supervisor = Supervisor::new(shared.config.supervisor.clone());
        let mut listeners = Vec::new();
        for (i, lc) in shared.config.listeners.iter().enumerate() {
            let l = TcpListener::bind(lc.address)
                .await
                .map_err(|e| fail("BIND", format!("listener[{i}] {}", lc.address), e))?;
            let addr = l
                .local_addr()
                .map_err(|e| fail("BIND", format!("listener[{i}]"), e))?;
            listeners.push(addr);
            info!(%addr, "listening for terminals");
            let (l, lc, sh) = (Arc::new(l), lc.clone(), shared.clone());
            // Listeners follow the front's own stop signal, which shutdown sends first.
            // After it stops it idles until the supervisor's own shutdown, so it is not
            // taken for a module that exited.
            let f: ModuleFactory = Arc::new(move |mut rx| {
                let stop = sh.stop.subscribe();
                let run = listener::run(sh.clone(), l.clone(), lc.clone(), stop);
                Box::pin(async move {
                    run.await;
                    let _ = rx.wait_for(|v| *v).await;
                }) as ModuleFuture
            });
            supervisor.spawn(
                if i == 0 {
                    "listener".to_owned()
                } else {
                    format!("listener{i}")
                }
                .as_str(),
                f,
            );
        }
        for i in 0..shared.flows.workers() {
            let sh = shared.clone();
            supervisor.spawn(
                &format!("flow#{i}"),
                Arc::new(move |rx| Box::pin(workers::run(sh.clone(), i, rx)) as ModuleFuture),
            );
        }
        for link in shared.links.iter() {
            let l = link.clone();
            supervisor.spawn(
                &format!("link:{}", link.name()),
                Arc::new(move |rx| Box::pin(l.clone().run(rx)) as ModuleFuture),
            );
        }
        let sh = shared.clone();
        supervisor.spawn(
            &format!("saf:{}", shared.links.saf_destination()),
            Arc::new(move |rx| Box::pin(saf_sender::run(sh.clone(), rx)) as ModuleFuture),
        );
        for link in shared.links.iter() {
            let (sh, l) = (shared.clone(), link.clone());
            supervisor.spawn(
                &format!("late:{}", link.name()),
                Arc::new(move |rx| {
                    Box::pin(saf_sender::run_late(sh.clone(), l.clone(), rx)) as ModuleFuture
                }),
            );
        }
        let mut admin_addr = None;
        if let Some(ac) = &shared.config.admin {
            let l = TcpListener::bind(ac.address)
                .await
                .map_err(|e| fail("BIND", format!("admin {}", ac.address), e))?;
            admin_addr = Some(l.local_addr().map_err(|e| fail("BIND", "admin", e))?);
            let (l, sh, table, max) = (
                Arc::new(l),
                shared.clone(),
                supervisor.table(),
                ac.max_connections,
            );
            supervisor.spawn(
                "admin",
                Arc::new(move |rx| {
                    Box::pin(admin::run(sh.clone(), l.clone(), table.clone(), max, rx))
                        as ModuleFuture
                }),
            );
        }
        Ok(FrontHandle {
            shared,
            supervisor,
            listeners,
            admin: admin_addr,
            recovery,
        })
    }
}

/// Starts upstream STANs after the highest one journaled today (newest 10,000 entries).
async fn seed_stan(sh: &Shared) {
    let today = clock::local_now(sh.config.node.utc_offset_minutes);
    let filter = EntryFilter {
        created_from: Some(today.day_start_ms),
        ..EntryFilter::all(10_000)
    };
    if let Ok(entries) = sh.store.find(&filter).await {
        let max = entries
            .iter()
            .filter_map(|e| e.upstream_stan)
            .max()
            .unwrap_or(0);
        sh.links.seed_stan(max);
    }
}

impl FrontHandle {
    /// The first listener's address (the port picked when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners
            .first()
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Every listener's address.
    pub fn listener_addrs(&self) -> &[SocketAddr] {
        &self.listeners
    }

    /// The admin endpoint's address, when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The shared state (store, metrics, links, sessions).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// What crash recovery did at start.
    pub fn recovery(&self) -> &recovery::RecoveryReport {
        &self.recovery
    }

    /// The supervisor's module table.
    pub fn modules(&self) -> ModuleTable {
        self.supervisor.table()
    }

    /// Waits until every link to the center is up, or `within` passes; true if all are.
    pub async fn wait_link_up(&self, within: Duration) -> bool {
        let all_up = || self.shared.links.iter().all(|l| l.is_up());
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if all_up() {
                return true;
            }
            sleep(Duration::from_millis(5)).await;
        }
        all_up()
    }

    /// Graceful shutdown: stop accepting and reading, let transactions in their flow finish
    /// within `node.shutdown_grace`, stop the modules, flush and close the journal.
    pub async fn shutdown(self) {
        let grace = self.shared.config.node.shutdown_grace;
        let deadline = Instant::now() + grace;
        // Stop accepting and reading first; the link stays up while flows finish.
        let _ = self.shared.stop.send(true);
        let idle = self.shared.inflight.wait_idle(deadline).await;
        self.supervisor
            .shutdown(deadline.saturating_duration_since(Instant::now()))
            .await;
        if !idle {
            error!(
                code = "SHUTDOWN",
                in_flight = self.shared.inflight.count(),
                "transactions still in flight at the end of the grace period"
            );
        }
        self.shared.store.shutdown();
        info!("front end stopped");
    }
}

/// Arguments of `posp-node front`.
#[derive(Debug, clap::Args)]
pub struct FrontArgs {
    /// The configuration file (see `posp-node init`).
    #[arg(long)]
    pub config: PathBuf,
}

/// `posp-node front`: runs the front end until SIGTERM or SIGINT.
pub fn run(args: FrontArgs) -> ExitCode {
    crate::cli::init_tracing("info");
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code());
            return ExitCode::FAILURE;
        }
    };
    let rt = match crate::cli::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let handle = match Front::start(config).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        info!(listener = %handle.local_addr(), admin = ?handle.admin_addr(), "front end running");
        crate::cli::wait_for_signal().await;
        info!("shutting down");
        handle.shutdown().await;
        ExitCode::SUCCESS
    })
}
