//! Payment-crypto benches for `pboc-sam`: every MAC over 64, 256 and 1024 bytes, the UnionPay
//! "ECB" MAC and X9.19 over a 200-byte message next to the raw DES block operations X9.19
//! needs, and PIN block encode/encrypt and translate.
//!
//! Run with `cargo bench -p benches --bench crypto`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pboc_sam::primitives::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use pboc_sam::primitives::des::Des;
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

    let left = Des::new(&Array([0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]));
    let right = Des::new(&Array([0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10]));
    // The raw block work alone: 25 encryptions, 1 decryption, 1 encryption, no chaining.
    group.bench_function("raw_des_25enc_1dec_1enc", |b| {
        b.iter(|| {
            let mut block = Array([0u8; 8]);
            for _ in 0..25 {
                left.encrypt_block(black_box(&mut block));
            }
            right.decrypt_block(&mut block);
            left.encrypt_block(&mut block);
            block
        });
    });
    // The same plus the two key schedules X9.19 builds per call.
    group.bench_function("raw_des_with_key_schedules", |b| {
        b.iter(|| {
            let l = Des::new(black_box(&Array([
                0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
            ])));
            let r = Des::new(black_box(&Array([
                0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10,
            ])));
            let mut block = Array([0u8; 8]);
            for _ in 0..25 {
                l.encrypt_block(black_box(&mut block));
            }
            r.decrypt_block(&mut block);
            l.encrypt_block(&mut block);
            block
        });
    });
    group.bench_function("des_key_schedule", |b| {
        b.iter(|| {
            Des::new(black_box(&Array([
                0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
            ])))
        });
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

criterion_group!(benches, macs, two_hundred_bytes, pin_blocks);
criterion_main!(benches);
