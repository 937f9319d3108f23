//! HSM host protocol throughput over loopback: an `HsmServer` serving a `SoftHsm`, driven by
//! one `HsmClient`, serially (one request at a time) and pipelined (many in flight on the same
//! connection), with the in-process `SoftHsm` as the baseline.
//!
//! ```text
//! cargo run --release -p pboc-sam --features tokio --example hsm_throughput
//! ```
//!
//! Prints the median of several runs of each measurement (X9.19 MAC over 64 bytes).

#[cfg(feature = "tokio")]
mod throughput {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use pboc_sam::hsm::{HsmClient, HsmServer};
    use pboc_sam::{
        CounterRandom, DesKey, KeyRef, KeyType, Lmk, MacAlgorithm, SecurityModule, SoftHsm,
    };

    const RUNS: usize = 7;
    const SERIAL_OPS: usize = 20_000;
    const PIPELINED_OPS: usize = 100_000;
    const DATA: [u8; 64] = [0x5A; 64];

    fn soft_hsm() -> SoftHsm {
        let lmk = Lmk::from_key(
            DesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap_or_else(|e| fail(e)),
        )
        .unwrap_or_else(|e| fail(e));
        SoftHsm::new(lmk, Box::new(CounterRandom::new(1)))
    }

    fn fail(e: impl std::fmt::Display) -> ! {
        eprintln!("error: {e}");
        std::process::exit(1)
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }

    async fn serial(m: &dyn SecurityModule, key: &KeyRef, ops: usize) -> Duration {
        let start = Instant::now();
        for _ in 0..ops {
            m.generate_mac(key, MacAlgorithm::X919, &DATA)
                .await
                .unwrap_or_else(|e| fail(e));
        }
        start.elapsed()
    }

    async fn pipelined(client: &HsmClient, key: &KeyRef, ops: usize, depth: usize) -> Duration {
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(depth);
        for w in 0..depth {
            let (client, key) = (client.clone(), key.clone());
            let n = ops / depth + usize::from(w < ops % depth);
            tasks.push(tokio::spawn(async move {
                for _ in 0..n {
                    client
                        .generate_mac(&key, MacAlgorithm::X919, &DATA)
                        .await
                        .unwrap_or_else(|e| fail(e));
                }
            }));
        }
        for t in tasks {
            t.await.unwrap_or_else(|e| fail(e));
        }
        start.elapsed()
    }

    fn rate(ops: usize, d: Duration) -> f64 {
        // ops is at most a few hundred thousand: exact in f64.
        #[allow(clippy::cast_precision_loss)]
        let ops = ops as f64;
        ops / d.as_secs_f64()
    }

    pub async fn main() {
        let direct = soft_hsm();
        let k = DesKey::from_hex("89ABCDEF0123456776543210FEDCBA98").unwrap_or_else(|e| fail(e));
        let key = direct
            .form_key_from_components(&[k.as_bytes()], KeyType::Tak)
            .unwrap_or_else(|e| fail(e));
        let server = HsmServer::builder(Arc::new(soft_hsm()))
            .pipeline_depth(256)
            .bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| fail(e));
        let addr = server.local_addr().unwrap_or_else(|e| fail(e)).to_string();
        let stop = server.shutdown_handle();
        let task = tokio::spawn(server.run());
        let client = HsmClient::builder(addr)
            .max_in_flight(256)
            .build()
            .unwrap_or_else(|e| fail(e));

        // Warm up the connection and the caches.
        serial(&client, &key, 2_000).await;

        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        println!("HSM host protocol over loopback, X9.19 MAC of 64 bytes, {cores} cores");
        println!("median of {RUNS} runs:");
        let mut results = Vec::new();
        results.push((
            "SoftHsm in process (serial)".to_owned(),
            median(
                futures_of(RUNS, || serial(&direct, &key, PIPELINED_OPS))
                    .await
                    .into_iter()
                    .map(|d| rate(PIPELINED_OPS, d))
                    .collect(),
            ),
        ));
        results.push((
            "client -> server, serial (1 in flight)".to_owned(),
            median(
                futures_of(RUNS, || serial(&client, &key, SERIAL_OPS))
                    .await
                    .into_iter()
                    .map(|d| rate(SERIAL_OPS, d))
                    .collect(),
            ),
        ));
        for depth in [8, 32, 128] {
            results.push((
                format!("client -> server, pipelined ({depth} in flight)"),
                median(
                    futures_of(RUNS, || pipelined(&client, &key, PIPELINED_OPS, depth))
                        .await
                        .into_iter()
                        .map(|d| rate(PIPELINED_OPS, d))
                        .collect(),
                ),
            ));
        }
        for (name, ops) in results {
            println!("  {name:<45} {ops:>10.0} ops/s");
        }
        stop.shutdown();
        let _ = task.await;
    }

    async fn futures_of<F, Fut>(runs: usize, mut f: F) -> Vec<Duration>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Duration>,
    {
        let mut out = Vec::with_capacity(runs);
        for _ in 0..runs {
            out.push(f().await);
        }
        out
    }
}

#[cfg(feature = "tokio")]
fn main() {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(throughput::main()),
        Err(e) => eprintln!("error: cannot start the runtime: {e}"),
    }
}

#[cfg(not(feature = "tokio"))]
fn main() {
    eprintln!("this example needs the `tokio` feature: add --features tokio");
}
