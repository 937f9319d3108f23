//! [`HsmPool`]: a [`SecurityModule`] that balances over several HSMs.

use core::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::kcv::Kcv;
use crate::key::{DesKeyLength, KeyType};
use crate::security::{
    BoxFuture, DataMode, Diagnostics, ErrorClass, ExportedKey, GeneratedKey, HsmError,
    HsmErrorCode, HsmResult, KeyRef, LoadRequest, MacAlgorithm, PinTranslation, SecurityModule,
    TacRequest,
};

/// The default interval of the background probe of ejected and refused members.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The default time one attempt on one member may take before the member is ejected.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The state of a pool member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberState {
    /// Takes requests.
    Healthy,
    /// Failed with a device error or timed out (or did not answer the start-up check); the
    /// probe readmits it after a good diagnostics answer with the right LMK check value.
    Ejected,
    /// Answered with an LMK check value that differs from the pool's; it never takes
    /// requests unless a later probe finds the right LMK loaded.
    Refused,
}

/// What [`HsmPool::members`] reports about one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    /// The member's name, as given to [`HsmPoolBuilder::member`].
    pub name: String,
    /// Its state.
    pub state: MemberState,
    /// Requests it is working on now.
    pub outstanding: usize,
    /// The LMK check value it last reported, if any.
    pub lmk_kcv: Option<Kcv>,
}

struct Member {
    name: String,
    module: Arc<dyn SecurityModule>,
    outstanding: AtomicUsize,
    status: Mutex<(MemberState, Option<Kcv>)>,
}

impl Member {
    fn state(&self) -> MemberState {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).0
    }

    fn set(&self, state: MemberState, kcv: Option<Kcv>) {
        let mut s = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        s.0 = state;
        if kcv.is_some() {
            s.1 = kcv;
        }
    }

    fn eject(&self) {
        let mut s = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        if s.0 == MemberState::Healthy {
            s.0 = MemberState::Ejected;
        }
    }
}

/// Counts a request against a member while it runs.
struct Outstanding<'m>(&'m Member);

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

struct PoolInner {
    members: Vec<Member>,
    reference: Mutex<Option<Kcv>>,
    attempt_timeout: Duration,
    max_attempts: usize,
    next: AtomicUsize,
}

/// Configures an [`HsmPool`].
#[derive(Clone)]
pub struct HsmPoolBuilder {
    members: Vec<(String, Arc<dyn SecurityModule>)>,
    probe_interval: Duration,
    attempt_timeout: Duration,
    max_attempts: Option<usize>,
    expected_lmk_kcv: Option<Kcv>,
}

impl fmt::Debug for HsmPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HsmPoolBuilder")
            .field(
                "members",
                &self.members.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("probe_interval", &self.probe_interval)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("expected_lmk_kcv", &self.expected_lmk_kcv)
            .finish()
    }
}

impl HsmPoolBuilder {
    /// Adds a member. Order matters at start: the first member to answer the diagnostics
    /// check sets the pool's LMK check value (unless [`HsmPoolBuilder::expected_lmk_kcv`]
    /// set it).
    pub fn member(
        &mut self,
        name: impl Into<String>,
        module: Arc<dyn SecurityModule>,
    ) -> &mut Self {
        self.members.push((name.into(), module));
        self
    }

    /// Sets the interval of the background probe (default [`DEFAULT_PROBE_INTERVAL`]).
    pub fn probe_interval(&mut self, interval: Duration) -> &mut Self {
        self.probe_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Sets how long one attempt on one member may take (default
    /// [`DEFAULT_ATTEMPT_TIMEOUT`]); a member that takes longer is ejected and the attempt
    /// fails with [`HsmErrorCode::Timeout`] (and is retried elsewhere if idempotent). Also
    /// bounds the diagnostics checks.
    pub fn attempt_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Sets how many members one idempotent request may try (default: all of them).
    pub fn max_attempts(&mut self, n: usize) -> &mut Self {
        self.max_attempts = Some(n.max(1));
        self
    }

    /// Requires this LMK check value of every member instead of taking the first healthy
    /// member's.
    pub fn expected_lmk_kcv(&mut self, kcv: Kcv) -> &mut Self {
        self.expected_lmk_kcv = Some(kcv);
        self
    }

    /// Checks every member's LMK (diagnostics, `NC`) in order and starts the background
    /// probe. Members that do not answer start ejected; members with another LMK start
    /// refused. Needs a tokio runtime.
    pub async fn build(&self) -> HsmPool {
        let inner = Arc::new(PoolInner {
            members: self
                .members
                .iter()
                .map(|(name, module)| Member {
                    name: name.clone(),
                    module: Arc::clone(module),
                    outstanding: AtomicUsize::new(0),
                    status: Mutex::new((MemberState::Ejected, None)),
                })
                .collect(),
            reference: Mutex::new(self.expected_lmk_kcv),
            attempt_timeout: self.attempt_timeout,
            max_attempts: self.max_attempts.unwrap_or(self.members.len()).max(1),
            next: AtomicUsize::new(0),
        });
        for m in &inner.members {
            inner.check(m).await;
        }
        let probe = tokio::spawn(probe_loop(Arc::downgrade(&inner), self.probe_interval));
        HsmPool {
            inner,
            _probe: Arc::new(ProbeTask(probe)),
        }
    }
}

struct ProbeTask(JoinHandle<()>);

impl Drop for ProbeTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn probe_loop(pool: Weak<PoolInner>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = pool.upgrade() else { return };
        for m in &inner.members {
            if m.state() != MemberState::Healthy {
                inner.check(m).await;
            }
        }
    }
}

/// A pool of HSMs, itself a [`SecurityModule`].
///
/// - **Balancing**: each request goes to the healthy member with the fewest requests
///   outstanding (ties rotate).
/// - **LMK check**: at start and before readmitting a member, the pool asks it for its
///   diagnostics (`NC`) and refuses it if its LMK check value differs from the first healthy
///   member's (or the configured one): keys under one LMK are garbage to another.
/// - **Ejection**: a device-class error ([`ErrorClass::Device`]: 12, 17, 41, 42, 67, 68,
///   timeout, unavailable) or an attempt timeout ejects the member; business and request
///   errors do not.
/// - **Probe**: a background task checks ejected and refused members every probe interval
///   and readmits them after a good answer.
/// - **Retries**: an idempotent operation that failed with a device error is retried on
///   another healthy member (each member at most once per request). Every operation is
///   idempotent — it computes a result from its inputs and the LMK — **except key
///   generation**: [`SecurityModule::generate_key`] is never retried, because a key the
///   failed member may already have produced and handed to a caller must not be silently
///   replaced by another.
///
/// Cloning is cheap and clones share the members; the probe stops when the last clone is
/// dropped.
#[derive(Clone)]
pub struct HsmPool {
    inner: Arc<PoolInner>,
    _probe: Arc<ProbeTask>,
}

impl fmt::Debug for HsmPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HsmPool")
            .field("members", &self.members())
            .field("lmk_kcv", &self.lmk_kcv())
            .finish_non_exhaustive()
    }
}

impl HsmPool {
    /// A builder with no members.
    #[must_use]
    pub fn builder() -> HsmPoolBuilder {
        HsmPoolBuilder {
            members: Vec::new(),
            probe_interval: DEFAULT_PROBE_INTERVAL,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            max_attempts: None,
            expected_lmk_kcv: None,
        }
    }

    /// Every member's state, in the order they were added.
    #[must_use]
    pub fn states(&self) -> Vec<MemberState> {
        self.inner.members.iter().map(Member::state).collect()
    }

    /// Every member's status, in the order they were added.
    #[must_use]
    pub fn members(&self) -> Vec<MemberStatus> {
        self.inner
            .members
            .iter()
            .map(|m| {
                let (state, lmk_kcv) = *m.status.lock().unwrap_or_else(PoisonError::into_inner);
                MemberStatus {
                    name: m.name.clone(),
                    state,
                    outstanding: m.outstanding.load(Ordering::Relaxed),
                    lmk_kcv,
                }
            })
            .collect()
    }

    /// The pool's LMK check value, once a member has set it (or as configured).
    #[must_use]
    pub fn lmk_kcv(&self) -> Option<Kcv> {
        *self
            .inner
            .reference
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks every non-healthy member now (as the background probe does).
    pub async fn probe_now(&self) {
        for m in &self.inner.members {
            if m.state() != MemberState::Healthy {
                self.inner.check(m).await;
            }
        }
    }
}

impl PoolInner {
    /// Asks a member for its diagnostics and sets its state from the answer.
    async fn check(&self, m: &Member) {
        let answer = tokio::time::timeout(self.attempt_timeout, m.module.diagnostics()).await;
        let Ok(Ok(d)) = answer else {
            m.set(MemberState::Ejected, None);
            return;
        };
        let state = {
            let mut reference = self
                .reference
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match *reference {
                None => {
                    *reference = Some(d.lmk_kcv);
                    MemberState::Healthy
                }
                Some(k) if k == d.lmk_kcv => MemberState::Healthy,
                Some(_) => MemberState::Refused,
            }
        };
        m.set(state, Some(d.lmk_kcv));
    }

    /// The healthy member with the fewest outstanding requests among those not yet tried.
    fn pick(&self, tried: &[bool]) -> Option<usize> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| !tried.get(i).copied().unwrap_or(true))
            .filter(|&i| {
                self.members
                    .get(i)
                    .is_some_and(|m| m.state() == MemberState::Healthy)
            })
            .min_by_key(|&i| {
                self.members
                    .get(i)
                    .map_or(usize::MAX, |m| m.outstanding.load(Ordering::Relaxed))
            })
    }

    fn no_member(&self, last: Option<HsmError>) -> HsmError {
        last.unwrap_or_else(|| {
            let states: Vec<String> = self
                .members
                .iter()
                .map(|m| format!("{} {:?}", m.name, m.state()))
                .collect();
            HsmError::new(
                HsmErrorCode::Unavailable,
                format!(
                    "no healthy HSM in the pool ({})",
                    if states.is_empty() {
                        "no members".to_owned()
                    } else {
                        states.join(", ")
                    }
                ),
            )
        })
    }

    /// Runs `op` on a member; on a device error ejects it and, if `idempotent`, tries the
    /// next member.
    async fn run<'a, T>(
        &'a self,
        idempotent: bool,
        op: impl Fn(&'a dyn SecurityModule) -> BoxFuture<'a, HsmResult<T>>,
    ) -> HsmResult<T> {
        let mut tried = vec![false; self.members.len()];
        let mut last = None;
        for _ in 0..self.max_attempts {
            let Some(i) = self.pick(&tried) else { break };
            let Some(m) = self.members.get(i) else { break };
            if let Some(t) = tried.get_mut(i) {
                *t = true;
            }
            m.outstanding.fetch_add(1, Ordering::Relaxed);
            let counted = Outstanding(m);
            let result =
                match tokio::time::timeout(self.attempt_timeout, op(m.module.as_ref())).await {
                    Ok(r) => r,
                    Err(_) => Err(HsmError::new(
                        HsmErrorCode::Timeout,
                        format!(
                            "HSM {} did not answer within {} ms",
                            m.name,
                            self.attempt_timeout.as_millis()
                        ),
                    )),
                };
            drop(counted);
            match result {
                Err(e) if e.class() == ErrorClass::Device => {
                    m.eject();
                    if !idempotent {
                        return Err(e);
                    }
                    last = Some(e);
                }
                other => return other,
            }
        }
        Err(self.no_member(last))
    }
}

impl SecurityModule for HsmPool {
    fn generate_key<'a>(
        &'a self,
        key_type: KeyType,
        length: DesKeyLength,
        export_under: Option<&'a KeyRef>,
    ) -> BoxFuture<'a, HsmResult<GeneratedKey>> {
        Box::pin(self.inner.run(false, move |m| {
            m.generate_key(key_type, length, export_under)
        }))
    }

    fn import_key<'a>(
        &'a self,
        kek: &'a KeyRef,
        key_type: KeyType,
        encrypted: &'a [u8],
        expected_kcv: Option<&'a Kcv>,
    ) -> BoxFuture<'a, HsmResult<KeyRef>> {
        Box::pin(self.inner.run(true, move |m| {
            m.import_key(kek, key_type, encrypted, expected_kcv)
        }))
    }

    fn export_key<'a>(
        &'a self,
        kek: &'a KeyRef,
        key: &'a KeyRef,
    ) -> BoxFuture<'a, HsmResult<ExportedKey>> {
        Box::pin(self.inner.run(true, move |m| m.export_key(kek, key)))
    }

    fn key_check_value<'a>(&'a self, key: &'a KeyRef) -> BoxFuture<'a, HsmResult<Kcv>> {
        Box::pin(self.inner.run(true, move |m| m.key_check_value(key)))
    }

    fn translate_pin<'a>(&'a self, req: &'a PinTranslation) -> BoxFuture<'a, HsmResult<[u8; 8]>> {
        Box::pin(self.inner.run(true, move |m| m.translate_pin(req)))
    }

    fn generate_mac<'a>(
        &'a self,
        key: &'a KeyRef,
        alg: MacAlgorithm,
        data: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<Vec<u8>>> {
        Box::pin(
            self.inner
                .run(true, move |m| m.generate_mac(key, alg, data)),
        )
    }

    fn verify_mac<'a>(
        &'a self,
        key: &'a KeyRef,
        alg: MacAlgorithm,
        data: &'a [u8],
        mac: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<()>> {
        Box::pin(
            self.inner
                .run(true, move |m| m.verify_mac(key, alg, data, mac)),
        )
    }

    fn pboc_derive_key<'a>(
        &'a self,
        master: &'a KeyRef,
        factors: &'a [[u8; 8]],
    ) -> BoxFuture<'a, HsmResult<KeyRef>> {
        Box::pin(
            self.inner
                .run(true, move |m| m.pboc_derive_key(master, factors)),
        )
    }

    fn pboc_load_mac2<'a>(
        &'a self,
        dlk_master: &'a KeyRef,
        req: &'a LoadRequest,
    ) -> BoxFuture<'a, HsmResult<[u8; 4]>> {
        Box::pin(
            self.inner
                .run(true, move |m| m.pboc_load_mac2(dlk_master, req)),
        )
    }

    fn pboc_verify_tac<'a>(
        &'a self,
        dtk_master: &'a KeyRef,
        req: &'a TacRequest,
    ) -> BoxFuture<'a, HsmResult<()>> {
        Box::pin(
            self.inner
                .run(true, move |m| m.pboc_verify_tac(dtk_master, req)),
        )
    }

    fn encrypt_data<'a>(
        &'a self,
        key: &'a KeyRef,
        mode: DataMode,
        data: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<Vec<u8>>> {
        Box::pin(
            self.inner
                .run(true, move |m| m.encrypt_data(key, mode, data)),
        )
    }

    fn decrypt_data<'a>(
        &'a self,
        key: &'a KeyRef,
        mode: DataMode,
        data: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<Vec<u8>>> {
        Box::pin(
            self.inner
                .run(true, move |m| m.decrypt_data(key, mode, data)),
        )
    }

    fn diagnostics(&self) -> BoxFuture<'_, HsmResult<Diagnostics>> {
        Box::pin(self.inner.run(true, |m| m.diagnostics()))
    }

    fn echo<'a>(&'a self, data: &'a [u8]) -> BoxFuture<'a, HsmResult<Vec<u8>>> {
        Box::pin(self.inner.run(true, move |m| m.echo(data)))
    }
}
