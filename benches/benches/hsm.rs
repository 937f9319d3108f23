//! HSM benches for `pboc-sam`: the `SoftHsm` through the `SecurityModule` trait, then the HSM
//! host protocol (`HsmClient` to an in-process `HsmServer` serving a `SoftHsm`) over loopback
//! TCP.
//!
//! - `softhsm/...`: one operation each, keys under the LMK as `KeyRef`s (so each call
//!   unwraps its keys, as a real HSM does): X9.19 MAC generate and verify over 64 bytes with a
//!   ZAK, the UnionPay ECB MAC over 200 bytes with a TAK, PIN translation TPK -> ZPK and
//!   ZPK -> ZPK (ISO format 0), a TAK generated and exported under a TMK (terminal sign-in),
//!   the PBOC load (MAC1 verify + MAC2) and a PBOC TAC verify, both with two diversification
//!   levels.
//! - `hsm_client/round_trip/...`: one request at a time from the bench thread (echo of 16
//!   bytes, X9.19 MAC of 64 bytes): the latency of a request.
//! - `hsm_client/pipelined_64/x9_19_64B`: 64 requests in flight at once on the one
//!   connection (64 tasks, each one request); the time is per batch of 64, the throughput
//!   in requests.
//!
//! The runtime is tokio's multi-threaded one with two workers (server and client tasks);
//! each client measurement is `Runtime::block_on` inside `iter` (criterion's `async_tokio`
//! is not enabled in the workspace). The in-process operations run with
//! `benches::ready_now`, with no executor.
//!
//! Run with `cargo bench -p benches --bench hsm`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use benches::ready_now;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pboc_sam::hsm::{HsmClient, HsmServer};
use pboc_sam::{
    CounterRandom, DesKey, DesKeyLength, KeyRef, KeyType, Lmk, LoadRequest, MacAlgorithm, Pan, Pin,
    PinBlockFormat, PinTranslation, SecurityModule, SoftHsm, TacRequest, mac, pboc, pinblock,
};
use tokio::runtime::Runtime;

const ZAK: &str = "89ABCDEF0123456776543210FEDCBA98";
const TAK: &str = "0123456789ABCDEFFEDCBA9876543210";
const TPK: &str = "0123456789ABCDEFFEDCBA9876543210";
const ZPK: &str = "CA5D92598DCA48CE8A4C76361A9269E9";
const ZPK2: &str = "1C1C1C1C1C1C1C1C2A2A2A2A2A2A2A2A";
const TMK: &str = "F1F1F1F1F1F1F1F1E0E0E0E0E0E0E0E0";
const MLK: &str = "11223344556677888877665544332211";
const MTK: &str = "5A4B3C2D1E0F1A2B1122334455667788";
const CITY: [u8; 8] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x31, 0x00];
const SERIAL: [u8; 8] = [0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];
const TERMINAL: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const DATE: [u8; 4] = [0x20, 0x24, 0x05, 0x01];
const TIME: [u8; 3] = [0x12, 0x30, 0x00];
const PAN: &str = "4123456789012345";
/// Requests in flight in the pipelined bench.
const DEPTH: usize = 64;

fn key(text: &str) -> DesKey {
    DesKey::from_hex(text).unwrap()
}

fn message(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// Everything the benches need from one HSM: the module and its keys under its LMK.
struct Fixture {
    hsm: Arc<SoftHsm>,
    zak: KeyRef,
    tak: KeyRef,
    tpk: KeyRef,
    zpk: KeyRef,
    zpk2: KeyRef,
    tmk: KeyRef,
    mlk: KeyRef,
    mtk: KeyRef,
}

fn fixture() -> Fixture {
    let hsm = SoftHsm::new(
        Lmk::generate(&CounterRandom::new(1)),
        Box::new(CounterRandom::new(2)),
    );
    let form = |text: &str, key_type: KeyType| {
        hsm.form_key_from_components(&[key(text).as_bytes()], key_type)
            .unwrap()
    };
    Fixture {
        zak: form(ZAK, KeyType::Zak),
        tak: form(TAK, KeyType::Tak),
        tpk: form(TPK, KeyType::Tpk),
        zpk: form(ZPK, KeyType::Zpk),
        zpk2: form(ZPK2, KeyType::Zpk),
        tmk: form(TMK, KeyType::Tmk),
        mlk: form(MLK, KeyType::PbocLoad),
        mtk: form(MTK, KeyType::PbocTac),
        hsm: Arc::new(hsm),
    }
}

/// A PIN block (format 0) encrypted under `under`.
fn pin_block(under: &str) -> [u8; 8] {
    let clear = pinblock::encode(
        PinBlockFormat::Iso0,
        &Pin::new("123456").unwrap(),
        &Pan::new(PAN).unwrap(),
        &[0; 8],
    )
    .unwrap();
    pinblock::encrypt_block(&key(under), &clear)
}

fn pin_translation(source_key: &KeyRef, block: [u8; 8], dest_key: &KeyRef) -> PinTranslation {
    PinTranslation {
        source_key: source_key.clone(),
        source_format: PinBlockFormat::Iso0,
        dest_key: dest_key.clone(),
        dest_format: PinBlockFormat::Iso0,
        pan: Pan::new(PAN).unwrap(),
        block,
    }
}

/// An EP load of 100.00 yuan onto 50.00 with the card's MAC1, computed in the clear from the
/// master as the card would.
fn load_request() -> LoadRequest {
    let (random, online_seq, balance, amount) = ([0x11, 0x22, 0x33, 0x44], 7, 5_000, 10_000);
    let dlk = pboc::diversify_path(&key(MLK), &[CITY, SERIAL]);
    let session = pboc::load_session_key(&dlk, &random, online_seq);
    let mac1 = mac::pboc(
        &session,
        &pboc::load_mac1_input(balance, amount, 0x02, &TERMINAL),
    )
    .unwrap();
    LoadRequest {
        factors: vec![CITY, SERIAL],
        random,
        online_seq,
        balance,
        amount,
        tx_type: 0x02,
        terminal: TERMINAL,
        date: DATE,
        time: TIME,
        mac1,
    }
}

/// A purchase TAC request with the card's TAC, computed in the clear from the master.
fn tac_request() -> TacRequest {
    let data = pboc::purchase_tac_input(1_234, 0x06, &TERMINAL, 100, &DATE, &TIME);
    let dtk = pboc::diversify_path(&key(MTK), &[CITY, SERIAL]);
    let tac = mac::pboc(&pboc::tac_key(&dtk).unwrap(), &data).unwrap();
    TacRequest {
        factors: vec![CITY, SERIAL],
        data: data.to_vec(),
        tac,
    }
}

fn softhsm(c: &mut Criterion) {
    let f = fixture();
    let hsm: &dyn SecurityModule = f.hsm.as_ref();
    let data64 = message(64);
    let data200 = message(200);
    let x919 = ready_now(hsm.generate_mac(&f.zak, MacAlgorithm::X919, &data64)).unwrap();
    assert_eq!(x919, mac::x9_19(&key(ZAK), &data64).unwrap());
    let tpk_to_zpk = pin_translation(&f.tpk, pin_block(TPK), &f.zpk);
    let zpk_to_zpk = pin_translation(&f.zpk, pin_block(ZPK), &f.zpk2);
    let translated = ready_now(hsm.translate_pin(&zpk_to_zpk)).unwrap();
    assert_eq!(translated, pin_block(ZPK2));
    let load = load_request();
    ready_now(hsm.pboc_load_mac2(&f.mlk, &load)).unwrap();
    let tac = tac_request();
    ready_now(hsm.pboc_verify_tac(&f.mtk, &tac)).unwrap();

    let mut group = c.benchmark_group("softhsm");
    group.throughput(Throughput::Elements(1));
    group.bench_function("generate_mac/x9_19_64B", |b| {
        b.iter(|| ready_now(hsm.generate_mac(&f.zak, MacAlgorithm::X919, black_box(&data64))));
    });
    group.bench_function("verify_mac/x9_19_64B", |b| {
        b.iter(|| {
            ready_now(hsm.verify_mac(
                &f.zak,
                MacAlgorithm::X919,
                black_box(&data64),
                black_box(&x919),
            ))
        });
    });
    group.bench_function("generate_mac/unionpay_ecb_200B", |b| {
        b.iter(|| {
            ready_now(hsm.generate_mac(&f.tak, MacAlgorithm::UnionPayEcb, black_box(&data200)))
        });
    });
    group.bench_function("translate_pin/tpk_to_zpk", |b| {
        b.iter(|| ready_now(hsm.translate_pin(black_box(&tpk_to_zpk))));
    });
    group.bench_function("translate_pin/zpk_to_zpk", |b| {
        b.iter(|| ready_now(hsm.translate_pin(black_box(&zpk_to_zpk))));
    });
    group.bench_function("generate_key/tak_under_tmk", |b| {
        b.iter(|| {
            ready_now(hsm.generate_key(KeyType::Tak, DesKeyLength::Double, Some(black_box(&f.tmk))))
        });
    });
    group.bench_function("pboc_load_mac2", |b| {
        b.iter(|| ready_now(hsm.pboc_load_mac2(&f.mlk, black_box(&load))));
    });
    group.bench_function("pboc_verify_tac", |b| {
        b.iter(|| ready_now(hsm.pboc_verify_tac(&f.mtk, black_box(&tac))));
    });
    group.finish();
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn client(c: &mut Criterion) {
    let f = fixture();
    let rt = runtime();
    let server = rt.block_on(async {
        let module: Arc<dyn SecurityModule> = f.hsm.clone();
        HsmServer::builder(module)
            .pipeline_depth(256)
            .bind("127.0.0.1:0")
            .await
            .unwrap()
    });
    let addr = server.local_addr().unwrap().to_string();
    let stop = server.shutdown_handle();
    let serving = rt.spawn(server.run());
    let client = rt.block_on(async {
        let client = HsmClient::builder(addr).max_in_flight(256).build().unwrap();
        client.connect().await.unwrap();
        client
    });
    let echo = message(16);
    let data64 = Arc::new(message(64));
    let expected = mac::x9_19(&key(ZAK), &data64).unwrap().to_vec();
    assert_eq!(rt.block_on(client.echo(&echo)).unwrap(), echo);
    assert_eq!(
        rt.block_on(client.generate_mac(&f.zak, MacAlgorithm::X919, &data64))
            .unwrap(),
        expected
    );

    let mut group = c.benchmark_group("hsm_client");
    group.throughput(Throughput::Elements(1));
    group.bench_function("round_trip/echo_16B", |b| {
        b.iter(|| rt.block_on(client.echo(black_box(&echo))).unwrap());
    });
    group.bench_function("round_trip/x9_19_64B", |b| {
        b.iter(|| {
            rt.block_on(client.generate_mac(&f.zak, MacAlgorithm::X919, black_box(&data64)))
                .unwrap()
        });
    });
    group.throughput(Throughput::Elements(DEPTH as u64));
    group.bench_function(format!("pipelined_{DEPTH}/x9_19_64B"), |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..DEPTH {
                    let (client, zak, data) = (client.clone(), f.zak.clone(), data64.clone());
                    tasks.spawn(async move {
                        client
                            .generate_mac(&zak, MacAlgorithm::X919, &data)
                            .await
                            .unwrap()
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    assert_eq!(done.unwrap().len(), 8);
                }
            });
        });
    });
    group.finish();

    stop.shutdown();
    rt.block_on(serving).unwrap().unwrap();
}

criterion_group!(benches, softhsm, client);
criterion_main!(benches);
