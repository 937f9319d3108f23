//! The supervisor (守侯进程): runs the front end's modules (listener, link, SAF sender, late
//! handler, admin) as tokio tasks, restarts a module that panics or exits on its own (with
//! exponential backoff, logged and counted), and stops them all on shutdown.
//!
//! Each module is a factory that makes the module's future from a shutdown receiver; the
//! future returns when the receiver turns true. Module states are kept in a
//! [`ModuleTable`] that the admin endpoint reports.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout_at};
use tracing::{error, info};

use crate::config::SupervisorConfig;

/// A module's future.
pub type ModuleFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Makes a module's future; called again for each restart.
pub type ModuleFactory = Arc<dyn Fn(watch::Receiver<bool>) -> ModuleFuture + Send + Sync>;

/// Where a module is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleState {
    /// Running.
    Running,
    /// Exited or panicked; waiting for its restart.
    Restarting,
    /// Stopped by shutdown.
    Stopped,
}

/// A module's state as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleStatus {
    /// The module's name (`listener`, `link:center`, ...).
    pub name: String,
    /// Its state.
    pub state: ModuleState,
    /// How many times it was restarted.
    pub restarts: u64,
    /// Why it last stopped on its own, if it did.
    pub last_failure: Option<String>,
}

/// The module states, shared with the admin endpoint.
#[derive(Debug, Clone, Default)]
pub struct ModuleTable {
    inner: Arc<Mutex<Vec<ModuleStatus>>>,
}

impl ModuleTable {
    /// Every module's state, in start order.
    pub fn snapshot(&self) -> Vec<ModuleStatus> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether every module is running.
    pub fn all_running(&self) -> bool {
        self.snapshot()
            .iter()
            .all(|m| m.state == ModuleState::Running)
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut ModuleStatus)) {
        let mut t = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = t.iter_mut().find(|m| m.name == name) {
            f(m);
        }
    }

    fn add(&self, name: &str) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ModuleStatus {
                name: name.to_owned(),
                state: ModuleState::Running,
                restarts: 0,
                last_failure: None,
            });
    }
}

/// Runs and restarts modules.
pub struct Supervisor {
    cfg: SupervisorConfig,
    table: ModuleTable,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("modules", &self.table.snapshot())
            .finish()
    }
}

/// The text of a panic payload.
fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned()),
        Err(e) => e.to_string(),
    }
}

impl Supervisor {
    /// A supervisor with no modules yet.
    pub fn new(cfg: SupervisorConfig) -> Supervisor {
        Supervisor {
            cfg,
            table: ModuleTable::default(),
            shutdown: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// The module table (for the admin endpoint).
    pub fn table(&self) -> ModuleTable {
        self.table.clone()
    }

    /// A receiver that turns true when shutdown begins.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Starts a module under supervision.
    pub fn spawn(&self, name: &str, factory: ModuleFactory) {
        self.table.add(name);
        let table = self.table.clone();
        let cfg = self.cfg.clone();
        let shutdown = self.shutdown.subscribe();
        let name = name.to_owned();
        let task = tokio::spawn(async move {
            let mut backoff = cfg.restart_min;
            loop {
                let started = Instant::now();
                let run = tokio::spawn(factory(shutdown.clone()));
                let result = run.await;
                if *shutdown.borrow() {
                    table.update(&name, |m| m.state = ModuleState::Stopped);
                    return;
                }
                let why = match result {
                    Ok(()) => "exited".to_owned(),
                    Err(e) => format!("panicked: {}", panic_text(e)),
                };
                if started.elapsed() > cfg.restart_max * 2 {
                    backoff = cfg.restart_min;
                }
                error!(code = "MODULE_RESTART", module = %name, delay_ms = backoff.as_millis() as u64, "module {why}; restarting");
                table.update(&name, |m| {
                    m.state = ModuleState::Restarting;
                    m.restarts += 1;
                    m.last_failure = Some(why.clone());
                });
                let mut rx = shutdown.clone();
                tokio::select! {
                    _ = sleep(backoff) => {}
                    _ = rx.changed() => {
                        table.update(&name, |m| m.state = ModuleState::Stopped);
                        return;
                    }
                }
                backoff = (backoff * 2).min(cfg.restart_max);
                table.update(&name, |m| m.state = ModuleState::Running);
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
    }

    /// Signals shutdown and waits up to `grace` for the modules to stop (those still running
    /// then are aborted).
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let deadline = Instant::now() + grace;
        let tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for mut t in tasks {
            if timeout_at(deadline, &mut t).await.is_err() {
                t.abort();
            }
        }
        info!("modules stopped");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_panicking_module_is_restarted_and_stopped_on_shutdown() {
        let sup = Supervisor::new(SupervisorConfig {
            restart_min: Duration::from_millis(5),
            restart_max: Duration::from_millis(20),
        });
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        sup.spawn(
            "flaky",
            Arc::new(move |mut rx: watch::Receiver<bool>| {
                let n = r.fetch_add(1, Ordering::SeqCst);
                Box::pin(async move {
                    if n < 2 {
                        panic!("boom {n}");
                    }
                    let _ = rx.changed().await;
                }) as ModuleFuture
            }),
        );
        for _ in 0..200 {
            if runs.load(Ordering::SeqCst) >= 3 {
                break;
            }
            sleep(Duration::from_millis(5)).await;
        }
        sleep(Duration::from_millis(10)).await;
        let s = sup.table().snapshot();
        assert_eq!(s[0].restarts, 2);
        assert_eq!(s[0].state, ModuleState::Running);
        assert_eq!(s[0].last_failure.as_deref(), Some("panicked: boom 1"));
        sup.shutdown(Duration::from_secs(1)).await;
        assert_eq!(sup.table().snapshot()[0].state, ModuleState::Stopped);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}
