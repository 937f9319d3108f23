#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The HSM pool: balancing, ejection, probing and readmission, LMK checks, retries of
//! idempotent operations only. Needs the `tokio` feature.
#![cfg(feature = "tokio")]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pboc_sam::hsm::{HsmClient, HsmPool, HsmServer, MemberState, ShutdownHandle};
use pboc_sam::{
    BoxFuture, CounterRandom, DataMode, DesKey, DesKeyLength, Diagnostics, ErrorClass, ExportedKey,
    GeneratedKey, HsmError, HsmErrorCode, HsmResult, Kcv, KeyRef, KeyType, Lmk, LoadRequest,
    MacAlgorithm, PinTranslation, SecurityModule, SoftHsm, TacRequest,
};

use MemberState::{Ejected, Healthy, Refused};

const LMK_A: &str = "0123456789ABCDEFFEDCBA9876543210";
const LMK_B: &str = "1032547698BADCFEEFCDAB8967452301";

fn soft_hsm(lmk: &str) -> SoftHsm {
    let lmk = Lmk::from_key(DesKey::from_hex(lmk).unwrap()).unwrap();
    SoftHsm::new(lmk, Box::new(CounterRandom::new(1)))
}

fn tak(hsm: &SoftHsm) -> KeyRef {
    let k = DesKey::from_hex("89ABCDEF0123456776543210FEDCBA98").unwrap();
    hsm.form_key_from_components(&[k.as_bytes()], KeyType::Tak)
        .unwrap()
}

async fn serve(module: Arc<dyn SecurityModule>, addr: &str) -> (String, ShutdownHandle) {
    let server = HsmServer::builder(module).bind(addr).await.unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let handle = server.shutdown_handle();
    tokio::spawn(server.run());
    (addr, handle)
}

fn client(addr: &str) -> Arc<dyn SecurityModule> {
    Arc::new(
        HsmClient::builder(addr)
            .request_timeout(Duration::from_secs(2))
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
            .build()
            .unwrap(),
    )
}

async fn wait_for(pool: &HsmPool, want: &[MemberState]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while pool.states() != want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "states {:?}, want {want:?}",
            pool.states()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_dies_mid_run_and_is_readmitted_after_restart() {
    let reference = soft_hsm(LMK_A);
    let key = tak(&reference);
    let a = Arc::new(Fake::new(Arc::new(soft_hsm(LMK_A))));
    let b = Arc::new(Fake::new(Arc::new(soft_hsm(LMK_A))));
    let (addr_a, _stop_a) = serve(a.clone(), "127.0.0.1:0").await;
    let (addr_b, stop_b) = serve(b.clone(), "127.0.0.1:0").await;

    let pool = HsmPool::builder()
        .member("a", client(&addr_a))
        .member("b", client(&addr_b))
        .probe_interval(Duration::from_millis(20))
        .build()
        .await;
    assert_eq!(pool.states(), [Healthy, Healthy]);
    assert_eq!(pool.lmk_kcv(), Some(reference.lmk_kcv()));

    // 1,000 MACs from 8 workers; server b is shut down after the 300th.
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let stop_b = Arc::new(Mutex::new(Some(stop_b)));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (pool, key, next, done, stop_b) = (
            pool.clone(),
            key.clone(),
            next.clone(),
            done.clone(),
            stop_b.clone(),
        );
        workers.push(tokio::spawn(async move {
            let direct = soft_hsm(LMK_A);
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= 1000 {
                    return;
                }
                let data = format!("transaction {i}").into_bytes();
                let mac = pool
                    .generate_mac(&key, MacAlgorithm::X919, &data)
                    .await
                    .unwrap_or_else(|e| panic!("MAC {i} failed: {e}"));
                let want = direct
                    .generate_mac(&key, MacAlgorithm::X919, &data)
                    .await
                    .unwrap();
                assert_eq!(mac, want, "MAC {i}");
                pool.verify_mac(&key, MacAlgorithm::X919, &data, &mac)
                    .await
                    .unwrap_or_else(|e| panic!("verify {i} failed: {e}"));
                if done.fetch_add(1, Ordering::SeqCst) + 1 == 300 {
                    let handle = stop_b.lock().unwrap().take();
                    if let Some(h) = handle {
                        h.shutdown();
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 1000);
    // A few more serial calls make sure b has been tried since it went away.
    for i in 0..20 {
        pool.echo(&[i]).await.unwrap();
    }
    assert_eq!(pool.states(), [Healthy, Ejected]);
    let b_macs_before = b.count("generate_mac");
    assert!(b_macs_before > 0);
    assert!(a.count("generate_mac") > 0);
    assert_eq!(a.count("generate_mac") + b_macs_before, 1000);

    // The probe keeps b out while it is down.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(pool.states(), [Healthy, Ejected]);

    // Restart b on the same port: the probe readmits it.
    let (addr_b2, _stop_b2) = serve(b.clone(), &addr_b).await;
    assert_eq!(addr_b2, addr_b);
    wait_for(&pool, &[Healthy, Healthy]).await;
    let statuses = pool.members();
    assert_eq!(statuses[1].name, "b");
    assert_eq!(statuses[1].lmk_kcv, Some(reference.lmk_kcv()));
    for i in 0..100u32 {
        pool.generate_mac(&key, MacAlgorithm::X919, &i.to_be_bytes())
            .await
            .unwrap();
    }
    assert!(
        b.count("generate_mac") > b_macs_before,
        "b takes requests again"
    );
    assert_eq!(pool.states(), [Healthy, Healthy]);
}

#[tokio::test]
async fn a_member_with_another_lmk_is_refused() {
    let a = Arc::new(Fake::new(Arc::new(soft_hsm(LMK_A))));
    let other = Arc::new(Fake::new(Arc::new(soft_hsm(LMK_B))));
    let pool = HsmPool::builder()
        .member("a", a.clone())
        .member("other", other.clone())
        .probe_interval(Duration::from_millis(10))
        .build()
        .await;
    assert_eq!(pool.states(), [Healthy, Refused]);
    let kcv_a = soft_hsm(LMK_A).lmk_kcv();
    let kcv_b = soft_hsm(LMK_B).lmk_kcv();
    assert_ne!(kcv_a, kcv_b);
    assert_eq!(pool.lmk_kcv(), Some(kcv_a));
    assert_eq!(pool.members()[1].lmk_kcv, Some(kcv_b));
    for i in 0..50u8 {
        pool.echo(&[i]).await.unwrap();
    }
    assert_eq!(a.count("echo"), 50);
    assert_eq!(other.count("echo"), 0);
    // The probe keeps checking it and keeps refusing it.
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(other.count("diagnostics") >= 3);
    assert_eq!(pool.states(), [Healthy, Refused]);
    // Once the right LMK is loaded, it is admitted.
    other.set_lmk_kcv(Some(kcv_a));
    wait_for(&pool, &[Healthy, Healthy]).await;

    // With the expected KCV configured, the first member is the odd one out.
    let pool = HsmPool::builder()
        .member("a", a.clone())
        .member("b", Arc::new(soft_hsm(LMK_B)))
        .expected_lmk_kcv(kcv_b)
        .build()
        .await;
    assert_eq!(pool.states(), [Refused, Healthy]);
}

#[tokio::test]
async fn the_first_healthy_member_sets_the_lmk() {
    let down = Arc::new(Fake::new(Arc::new(soft_hsm(LMK_B))));
    down.set_mode(Mode::Fail);
    let pool = HsmPool::builder()
        .member("down", down.clone())
        .member("a", Arc::new(soft_hsm(LMK_A)))
        .probe_interval(Duration::from_millis(10))
        .build()
        .await;
    assert_eq!(pool.states(), [Ejected, Healthy]);
    assert_eq!(pool.lmk_kcv(), Some(soft_hsm(LMK_A).lmk_kcv()));
    // When it comes back with its other LMK, it is refused rather than readmitted.
    down.set_mode(Mode::Ok);
    wait_for(&pool, &[Refused, Healthy]).await;
}

#[tokio::test]
async fn generate_key_is_never_retried() {
    let x = Arc::new(Fake::new(Arc::new(soft_hsm(LMK_A))));
    let y = Arc::new(Fake::new(Arc::new(soft_hsm(LMK_A))));
    let pool = HsmPool::builder()
        .member("x", x.clone())
        .member("y", y.clone())
        .probe_interval(Duration::from_secs(3600))
        .build()
        .await;
    assert_eq!(pool.states(), [Healthy, Healthy]);
    // Whichever member gets it dies in the middle of the call.
    x.set_mode(Mode::Fail);
    y.set_mode(Mode::Fail);
    let e = pool
        .generate_key(KeyType::Zpk, DesKeyLength::Double, None)
        .await
        .unwrap_err();
    assert_eq!(e.code, HsmErrorCode::HardwareError);
    assert_eq!(e.class(), ErrorClass::Device);
    assert_eq!(e.detail, "fake HSM died during generate_key");
    assert_eq!(x.count("generate_key") + y.count("generate_key"), 1);
    let states = pool.states();
    if x.count("generate_key") == 1 {
        assert_eq!(states, [Ejected, Healthy]);
    } else {
        assert_eq!(states, [Healthy, Ejected]);
    }

    // An idempotent operation in the same situation goes on to the other member.
    let pool = HsmPool::builder()
        .member("x", x.clone())
        .member("y", y.clone())
        .probe_interval(Duration::from_secs(3600))
        .build()
        .await;
    x.set_mode(Mode::Ok);
    y.set_mode(Mode::Ok);
    pool.probe_now().await;
    assert_eq!(pool.states(), [Healthy, Healthy]);
    x.set_mode(Mode::Fail);
    let before = (x.count("echo"), y.count("echo"));
    for i in 0..10u8 {
        assert_eq!(pool.echo(&[i]).await.unwrap(), [i]);
    }
    assert_eq!(pool.states(), [Ejected, Healthy]);
    assert_eq!(x.count("echo") - before.0, 1, "x tried once, then ejected");
    assert_eq!(y.count("echo") - before.1, 10);
}

#[tokio::test]
async fn a_hanging_member_times_out_and_is_ejected() {
    let x = Arc::new(Fake::new(Arc::new(soft_hsm(LMK_A))));
    let y = Arc::new(Fake::new(Arc::new(soft_hsm(LMK_A))));
    let pool = HsmPool::builder()
        .member("x", x.clone())
        .member("y", y.clone())
        .attempt_timeout(Duration::from_millis(100))
        .probe_interval(Duration::from_millis(20))
        .build()
        .await;
    x.set_mode(Mode::Hang);
    let key = tak(&soft_hsm(LMK_A));
    for _ in 0..4 {
        pool.key_check_value(&key).await.unwrap();
    }
    assert_eq!(pool.states(), [Ejected, Healthy]);
    assert_eq!(x.count("key_check_value"), 1);
    // The probe's diagnostics hang too: it stays out until it answers.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(pool.states(), [Ejected, Healthy]);
    x.set_mode(Mode::Ok);
    wait_for(&pool, &[Healthy, Healthy]).await;
}

#[tokio::test]
async fn business_and_request_errors_keep_the_member() {
    let x = Arc::new(Fake::new(Arc::new(soft_hsm(LMK_A))));
    let pool = HsmPool::builder().member("x", x.clone()).build().await;
    let key = tak(&soft_hsm(LMK_A));
    let e = pool
        .verify_mac(&key, MacAlgorithm::X919, b"data", &[0; 8])
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Business);
    let e = pool
        .encrypt_data(&key, DataMode::Ecb, &[0; 8])
        .await
        .unwrap_err();
    assert_eq!(e.code, HsmErrorCode::KeyType);
    assert_eq!(e.class(), ErrorClass::Request);
    assert_eq!(x.count("verify_mac"), 1);
    assert_eq!(x.count("encrypt_data"), 1);
    assert_eq!(pool.states(), [Healthy]);
}

#[tokio::test]
async fn balancing_prefers_the_least_busy_member() {
    let x = Arc::new(Fake::new(Arc::new(soft_hsm(LMK_A))));
    let y = Arc::new(Fake::new(Arc::new(soft_hsm(LMK_A))));
    let pool = HsmPool::builder()
        .member("x", x.clone())
        .member("y", y.clone())
        .attempt_timeout(Duration::from_secs(60))
        .build()
        .await;
    // x is slow: while one request is stuck there, everything else goes to y.
    x.set_mode(Mode::Slow);
    y.set_mode(Mode::Slow);
    let p = pool.clone();
    let first = tokio::spawn(async move { p.echo(b"first").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let busy = if x.count("echo") == 1 { &x } else { &y };
    let idle = if x.count("echo") == 1 { &y } else { &x };
    idle.set_mode(Mode::Ok);
    for _ in 0..5 {
        pool.echo(b"next").await.unwrap();
    }
    assert_eq!(busy.count("echo"), 1);
    assert_eq!(idle.count("echo"), 5);
    let statuses = pool.members();
    assert_eq!(
        statuses.iter().map(|s| s.outstanding).sum::<usize>(),
        1,
        "{statuses:?}"
    );
    busy.set_mode(Mode::Ok);
    first.await.unwrap().unwrap();
    assert_eq!(
        pool.members().iter().map(|s| s.outstanding).sum::<usize>(),
        0
    );
}

#[tokio::test]
async fn no_healthy_member_is_unavailable() {
    let x = Arc::new(Fake::new(Arc::new(soft_hsm(LMK_A))));
    x.set_mode(Mode::Fail);
    let pool = HsmPool::builder()
        .member("x", x.clone())
        .member("y", Arc::new(soft_hsm(LMK_B)))
        .build()
        .await;
    assert_eq!(pool.states(), [Ejected, Healthy]);
    // y set the LMK; x is ejected, so y serves.
    pool.echo(b"1").await.unwrap();
    let empty = HsmPool::builder().build().await;
    let e = empty.echo(b"1").await.unwrap_err();
    assert_eq!(e.code, HsmErrorCode::Unavailable);
    assert_eq!(e.detail, "no healthy HSM in the pool (no members)");
    let lonely = HsmPool::builder().member("x", x.clone()).build().await;
    let e = lonely.echo(b"1").await.unwrap_err();
    assert_eq!(e.detail, "no healthy HSM in the pool (x Ejected)");
}

// ---------------------------------------------------------------------------------------
// A SecurityModule that counts calls and fails or hangs on demand.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok = 0,
    /// Every call fails with 41 after a short delay, as if the HSM died mid-call.
    Fail = 1,
    /// Every call hangs for an hour.
    Hang = 2,
    /// Every call waits until the mode changes, then behaves as that mode says.
    Slow = 3,
}

struct Fake {
    inner: Arc<dyn SecurityModule>,
    mode: AtomicU8,
    calls: Mutex<HashMap<&'static str, usize>>,
    lmk_kcv: Mutex<Option<Kcv>>,
}

impl Fake {
    fn new(inner: Arc<dyn SecurityModule>) -> Self {
        Self {
            inner,
            mode: AtomicU8::new(Mode::Ok as u8),
            calls: Mutex::new(HashMap::new()),
            lmk_kcv: Mutex::new(None),
        }
    }

    fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn set_lmk_kcv(&self, kcv: Option<Kcv>) {
        *self.lmk_kcv.lock().unwrap() = kcv;
    }

    fn count(&self, op: &str) -> usize {
        self.calls.lock().unwrap().get(op).copied().unwrap_or(0)
    }

    fn wrap<'a, T: Send + 'a>(
        &'a self,
        op: &'static str,
        call: BoxFuture<'a, HsmResult<T>>,
    ) -> BoxFuture<'a, HsmResult<T>> {
        *self.calls.lock().unwrap().entry(op).or_default() += 1;
        Box::pin(async move {
            loop {
                match self.mode.load(Ordering::SeqCst) {
                    0 => return call.await,
                    1 => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        return Err(HsmError::new(
                            HsmErrorCode::HardwareError,
                            format!("fake HSM died during {op}"),
                        ));
                    }
                    2 => tokio::time::sleep(Duration::from_secs(3600)).await,
                    _ => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        })
    }
}

impl SecurityModule for Fake {
    fn generate_key<'a>(
        &'a self,
        key_type: KeyType,
        length: DesKeyLength,
        export_under: Option<&'a KeyRef>,
    ) -> BoxFuture<'a, HsmResult<GeneratedKey>> {
        self.wrap(
            "generate_key",
            self.inner.generate_key(key_type, length, export_under),
        )
    }

    fn import_key<'a>(
        &'a self,
        kek: &'a KeyRef,
        key_type: KeyType,
        encrypted: &'a [u8],
        expected_kcv: Option<&'a Kcv>,
    ) -> BoxFuture<'a, HsmResult<KeyRef>> {
        self.wrap(
            "import_key",
            self.inner
                .import_key(kek, key_type, encrypted, expected_kcv),
        )
    }

    fn export_key<'a>(
        &'a self,
        kek: &'a KeyRef,
        key: &'a KeyRef,
    ) -> BoxFuture<'a, HsmResult<ExportedKey>> {
        self.wrap("export_key", self.inner.export_key(kek, key))
    }

    fn key_check_value<'a>(&'a self, key: &'a KeyRef) -> BoxFuture<'a, HsmResult<Kcv>> {
        self.wrap("key_check_value", self.inner.key_check_value(key))
    }

    fn translate_pin<'a>(&'a self, req: &'a PinTranslation) -> BoxFuture<'a, HsmResult<[u8; 8]>> {
        self.wrap("translate_pin", self.inner.translate_pin(req))
    }

    fn generate_mac<'a>(
        &'a self,
        key: &'a KeyRef,
        alg: MacAlgorithm,
        data: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<Vec<u8>>> {
        self.wrap("generate_mac", self.inner.generate_mac(key, alg, data))
    }

    fn verify_mac<'a>(
        &'a self,
        key: &'a KeyRef,
        alg: MacAlgorithm,
        data: &'a [u8],
        mac: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<()>> {
        self.wrap("verify_mac", self.inner.verify_mac(key, alg, data, mac))
    }

    fn pboc_derive_key<'a>(
        &'a self,
        master: &'a KeyRef,
        factors: &'a [[u8; 8]],
    ) -> BoxFuture<'a, HsmResult<KeyRef>> {
        self.wrap(
            "pboc_derive_key",
            self.inner.pboc_derive_key(master, factors),
        )
    }

    fn pboc_load_mac2<'a>(
        &'a self,
        dlk_master: &'a KeyRef,
        req: &'a LoadRequest,
    ) -> BoxFuture<'a, HsmResult<[u8; 4]>> {
        self.wrap("pboc_load_mac2", self.inner.pboc_load_mac2(dlk_master, req))
    }

    fn pboc_verify_tac<'a>(
        &'a self,
        dtk_master: &'a KeyRef,
        req: &'a TacRequest,
    ) -> BoxFuture<'a, HsmResult<()>> {
        self.wrap(
            "pboc_verify_tac",
            self.inner.pboc_verify_tac(dtk_master, req),
        )
    }

    fn encrypt_data<'a>(
        &'a self,
        key: &'a KeyRef,
        mode: DataMode,
        data: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<Vec<u8>>> {
        self.wrap("encrypt_data", self.inner.encrypt_data(key, mode, data))
    }

    fn decrypt_data<'a>(
        &'a self,
        key: &'a KeyRef,
        mode: DataMode,
        data: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<Vec<u8>>> {
        self.wrap("decrypt_data", self.inner.decrypt_data(key, mode, data))
    }

    fn diagnostics(&self) -> BoxFuture<'_, HsmResult<Diagnostics>> {
        let over = *self.lmk_kcv.lock().unwrap();
        let inner = self.inner.diagnostics();
        self.wrap(
            "diagnostics",
            Box::pin(async move {
                let mut d = inner.await?;
                if let Some(k) = over {
                    d.lmk_kcv = k;
                }
                Ok(d)
            }),
        )
    }

    fn echo<'a>(&'a self, data: &'a [u8]) -> BoxFuture<'a, HsmResult<Vec<u8>>> {
        self.wrap("echo", self.inner.echo(data))
    }
}
