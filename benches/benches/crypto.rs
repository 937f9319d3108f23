//! Payment-crypto benches for `pboc-sam`: every MAC over 64, 256 and 1024 bytes, the UnionPay
//! "ECB" MAC and X9.19 over a 200-byte message next to the raw DES block operations X9.19
//! needs, PIN block encode/encrypt and translate, and pboc-sam's own DES engine (one block of
//! DES, 2-key and 3-key 3DES, the key schedules, X9.19 over 128 bytes) beside the RustCrypto
//! `des` crate.
//!
//! Run with `cargo bench -p benches --bench crypto`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use des::cipher::{Array, BlockCipherEncrypt, KeyInit};
use des::{Des, TdesEde2, TdesEde3};
use pboc_sam::bench_internals::DesEngine;
use pboc_sam::{AesKey, DesKey, Padding, Pan, Pin, PinBlockFormat, Sm4Key, mac, pinblock};

fn message(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

fn key(hex: &str) -> DesKey {
    match DesKey::from_hex(hex) {
        Ok(k) => k,
        Err(e) => panic!("bench key: {e}"),
    }
}

const K8: &str = "0123456789ABCDEF";
const K16: &str = "0123456789ABCDEFFEDCBA9876543210";
const K24: &str = "0123456789ABCDEFFEDCBA987654321089ABCDEF01234567";

fn bytes<const N: usize>(hex_str: &str) -> [u8; N] {
    let v = hex::decode(hex_str).unwrap_or_else(|e| panic!("{e}"));
    v.try_into().unwrap_or_else(|_| panic!("bench key length"))
}

/// One block and one key schedule of pboc-sam's DES engine (what every DES MAC, PIN block and
/// key function runs), beside the same operations of the RustCrypto `des` crate, plus X9.19
/// over 128 bytes (16 single-DES encryptions, one decryption, one encryption, two schedules).
fn des_engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("des");
    for (name, hex_key) in [("single", K8), ("double", K16), ("triple", K24)] {
        let k = key(hex_key);
        let engine = DesEngine::new(&k);
        group.bench_function(format!("encrypt/{name}"), |b| {
            let mut block = [0x4Eu8, 0x6F, 0x77, 0x20, 0x69, 0x73, 0x20, 0x74];
            b.iter(|| {
                engine.encrypt(black_box(&mut block));
                block
            });
        });
        group.bench_function(format!("decrypt/{name}"), |b| {
            let mut block = [0x3Fu8, 0xA4, 0x0E, 0x8A, 0x98, 0x4D, 0x48, 0x15];
            b.iter(|| {
                engine.decrypt(black_box(&mut block));
                block
            });
        });
        group.bench_function(format!("key_schedule/{name}"), |b| {
            b.iter(|| DesEngine::new(black_box(&k)));
        });
    }

    // The RustCrypto reference, the same blocks and keys.
    let single = Des::new(&Array(bytes::<8>(K8)));
    let double = TdesEde2::new(&Array(bytes::<16>(K16)));
    let triple = TdesEde3::new(&Array(bytes::<24>(K24)));
    group.bench_function("rustcrypto_encrypt/single", |b| {
        let mut block = Array([0x4Eu8, 0x6F, 0x77, 0x20, 0x69, 0x73, 0x20, 0x74]);
        b.iter(|| {
            single.encrypt_block(black_box(&mut block));
            block
        });
    });
    group.bench_function("rustcrypto_encrypt/double", |b| {
        let mut block = Array([0x4Eu8, 0x6F, 0x77, 0x20, 0x69, 0x73, 0x20, 0x74]);
        b.iter(|| {
            double.encrypt_block(black_box(&mut block));
            block
        });
    });
    group.bench_function("rustcrypto_encrypt/triple", |b| {
        let mut block = Array([0x4Eu8, 0x6F, 0x77, 0x20, 0x69, 0x73, 0x20, 0x74]);
        b.iter(|| {
            triple.encrypt_block(black_box(&mut block));
            block
        });
    });
    let k16 = Array(bytes::<16>(K16));
    group.bench_function("rustcrypto_key_schedule/double", |b| {
        b.iter(|| TdesEde2::new(black_box(&k16)));
    });

    let des2 = key(K16);
    let data = message(128);
    group.throughput(Throughput::Bytes(128));
    group.bench_function("x9_19/128", |b| {
        b.iter(|| mac::x9_19(&des2, black_box(&data)));
    });
    group.finish();
}

fn macs(c: &mut Criterion) {
    let des1 = key(K8);
    let des2 = key(K16);
    let aes =
        AesKey::from_hex("2B7E151628AED2A6ABF7158809CF4F3C").unwrap_or_else(|e| panic!("{e}"));
    let sm4 = Sm4Key::from_hex(K16).unwrap_or_else(|e| panic!("{e}"));

    let mut group = c.benchmark_group("mac");
    for len in [64usize, 256, 1024] {
        let data = message(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("iso9797_alg1_des", len), &data, |b, d| {
            b.iter(|| mac::iso9797_1_alg1(&des1, black_box(d), Padding::Method1));
        });
        group.bench_with_input(BenchmarkId::new("iso9797_alg1_3des", len), &data, |b, d| {
            b.iter(|| mac::iso9797_1_alg1(&des2, black_box(d), Padding::Method2));
        });
        group.bench_with_input(BenchmarkId::new("iso9797_alg3", len), &data, |b, d| {
            b.iter(|| mac::iso9797_1_alg3(&des2, black_box(d), Padding::Method2));
        });
        group.bench_with_input(BenchmarkId::new("x9_19", len), &data, |b, d| {
            b.iter(|| mac::x9_19(&des2, black_box(d)));
        });
        group.bench_with_input(BenchmarkId::new("x9_9", len), &data, |b, d| {
            b.iter(|| mac::x9_9(&des1, black_box(d)));
        });
        group.bench_with_input(BenchmarkId::new("pos_ecb_des", len), &data, |b, d| {
            b.iter(|| mac::pos_ecb(&des1, black_box(d)));
        });
        group.bench_with_input(BenchmarkId::new("pos_ecb_3des", len), &data, |b, d| {
            b.iter(|| mac::pos_ecb(&des2, black_box(d)));
        });
        group.bench_with_input(BenchmarkId::new("pboc_des", len), &data, |b, d| {
            b.iter(|| mac::pboc(&des1, black_box(d)));
        });
        group.bench_with_input(BenchmarkId::new("pboc_3des", len), &data, |b, d| {
            b.iter(|| mac::pboc(&des2, black_box(d)));
        });
        group.bench_with_input(BenchmarkId::new("aes_cmac", len), &data, |b, d| {
            b.iter(|| mac::aes_cmac(&aes, black_box(d)));
        });
        group.bench_with_input(BenchmarkId::new("sm4_cbc_mac", len), &data, |b, d| {
            b.iter(|| mac::sm4_cbc_mac(&sm4, black_box(d), Padding::Method1));
        });
    }
    group.finish();
}

/// The 200-byte cases: the POS ECB MAC (target: under 1 µs) and X9.19 next to the raw DES
/// work it has to do (25 CBC encryptions, then one decrypt and one encrypt).
fn two_hundred_bytes(c: &mut Criterion) {
    let des1 = key(K8);
    let des2 = key(K16);
    let data = message(200);
    let mut group = c.benchmark_group("200B");
    group.throughput(Throughput::Bytes(200));

    group.bench_function("pos_ecb_des", |b| {
        b.iter(|| mac::pos_ecb(&des1, black_box(&data)))
    });
    group.bench_function("x9_19", |b| b.iter(|| mac::x9_19(&des2, black_box(&data))));

    // pboc-sam's single-DES engine, the one X9.19 uses for each half of the key.
    let left = DesEngine::new(&key(K8));
    let right = DesEngine::new(&key("FEDCBA9876543210"));
    // The raw block work alone: 25 encryptions, 1 decryption, 1 encryption, no chaining.
    group.bench_function("raw_des_25enc_1dec_1enc", |b| {
        b.iter(|| {
            let mut block = [0u8; 8];
            for _ in 0..25 {
                left.encrypt(black_box(&mut block));
            }
            right.decrypt(&mut block);
            left.encrypt(&mut block);
            block
        });
    });
    // The same plus the two key schedules X9.19 builds per call.
    let k8l = key(K8);
    let k8r = key("FEDCBA9876543210");
    group.bench_function("raw_des_with_key_schedules", |b| {
        b.iter(|| {
            let l = DesEngine::new(black_box(&k8l));
            let r = DesEngine::new(black_box(&k8r));
            let mut block = [0u8; 8];
            for _ in 0..25 {
                l.encrypt(black_box(&mut block));
            }
            r.decrypt(&mut block);
            l.encrypt(&mut block);
            block
        });
    });
    group.bench_function("des_key_schedule", |b| {
        b.iter(|| DesEngine::new(black_box(&k8l)));
    });
    group.finish();
}

fn pin_blocks(c: &mut Criterion) {
    let tpk = key(K16);
    let zpk = key("CA5D92598DCA48CE8A4C76361A9269E9");
    let pin = Pin::new("1234").unwrap_or_else(|e| panic!("{e}"));
    let pan = Pan::new("5555555551234567").unwrap_or_else(|e| panic!("{e}"));
    let fill = [0x5Au8; 8];
    let mut group = c.benchmark_group("pinblock");
    group.bench_function("iso0_encode_encrypt", |b| {
        b.iter(|| {
            let clear = pinblock::encode(PinBlockFormat::Iso0, black_box(&pin), &pan, &fill)
                .unwrap_or_else(|e| panic!("{e}"));
            pinblock::encrypt_block(&tpk, &clear)
        });
    });
    let clear =
        pinblock::encode(PinBlockFormat::Iso0, &pin, &pan, &fill).unwrap_or_else(|e| panic!("{e}"));
    let enc = pinblock::encrypt_block(&tpk, &clear);
    group.bench_function("translate_iso0_to_iso0", |b| {
        b.iter(|| {
            pinblock::translate(
                black_box(&enc),
                &tpk,
                PinBlockFormat::Iso0,
                &zpk,
                PinBlockFormat::Iso0,
                &pan,
                &fill,
            )
        });
    });
    group.bench_function("translate_iso0_to_iso3", |b| {
        b.iter(|| {
            pinblock::translate(
                black_box(&enc),
                &tpk,
                PinBlockFormat::Iso0,
                &zpk,
                PinBlockFormat::Iso3,
                &pan,
                &fill,
            )
        });
    });
    group.finish();
}

criterion_group!(benches, des_engine, macs, two_hundred_bytes, pin_blocks);
criterion_main!(benches);
