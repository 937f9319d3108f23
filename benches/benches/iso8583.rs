//! ISO 8583 benches for `iso8583-wire`, side by side with two peers, `i8583` and
//! `iso8583-codec-rs`, configured for the same layout (pyiso8583's `default_ascii`).
//!
//! Groups, each over the three `iso87-ascii` fixtures (`0800`, `0200`, `large`):
//! - `decode/<fixture>`: our zero-copy `decode`; `/i8583` its `Unpacker::unpack`;
//!   `/iso8583-codec-rs` its `parse_bytes`.
//! - `decode_validate/<fixture>`: `decode` then `Message::validate` (ours only: the peers have
//!   no content check on the same data).
//! - `encode/<fixture>`: `MessageBuf::encode` into a reused, cleared `Vec`; `/i8583`
//!   `Packer::pack` into a reused `Vec`; `/iso8583-codec-rs` `publish_bytes`. Each message is
//!   built once, outside the timing loop.
//!
//! Then a UnionPay POS purchase (`cups-pos`, framed with length, TPDU and header): frame decode
//! plus message decode, message encode plus frame encode; and `scan` up to field 25 (what a
//! router reads) next to a full decode.
//!
//! Run with `cargo bench -p benches --bench iso8583`; figures are in `BENCHMARKS.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/peers.rs"]
mod peers;

use std::hint::black_box;

use benches::{ISO87_FIXTURES, cups, iso87_fixture};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use i8583::Unpacker;
use iso8583_wire::frame::{CupsHeader, FrameConfig};
use iso8583_wire::{decode, scan, specs};

const I8583: &str = "i8583";
const CODEC: &str = "iso8583-codec-rs";

fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
    ISO87_FIXTURES
        .iter()
        .map(|&name| (name, iso87_fixture(name).unwrap()))
        .collect()
}

fn decode_iso87(c: &mut Criterion) {
    let spec = specs::iso87_ascii();
    let i8583_table = peers::i8583_spec();
    let codec_spec = peers::codec_spec();
    let mut group = c.benchmark_group("decode");
    for (name, bytes) in fixtures() {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let msg = decode(spec, black_box(&bytes)).unwrap();
                black_box(&msg);
            })
        });
        group.bench_function(BenchmarkId::new(name, I8583), |b| {
            b.iter(|| {
                let mut unpacker = Unpacker::new(black_box(&bytes));
                let fields = unpacker.unpack(&i8583_table).unwrap();
                black_box(fields);
            })
        });
        group.bench_function(BenchmarkId::new(name, CODEC), |b| {
            b.iter(|| {
                let msg =
                    iso8583_codec_rs::iso8583::parse_bytes(black_box(&bytes), &codec_spec).unwrap();
                black_box(&msg);
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("decode_validate");
    for (name, bytes) in fixtures() {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let msg = decode(spec, black_box(&bytes)).unwrap();
                msg.validate().unwrap();
                black_box(&msg);
            })
        });
    }
    group.finish();
}

fn encode_iso87(c: &mut Criterion) {
    let spec = specs::iso87_ascii();
    let i8583_table = peers::i8583_spec();
    let codec_spec = peers::codec_spec();
    let fixtures = fixtures();
    let mut group = c.benchmark_group("encode");
    for (name, bytes) in &fixtures {
        let name = *name;
        group.throughput(Throughput::Bytes(bytes.len() as u64));

        let msg = decode(spec, bytes).unwrap().to_buf();
        let mut out = Vec::with_capacity(4096);
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                black_box(&msg).encode(spec, &mut out).unwrap();
                black_box(&out);
            })
        });

        let packer = peers::i8583_packer(&i8583_table, bytes);
        let mut out = Vec::with_capacity(4096);
        group.bench_function(BenchmarkId::new(name, I8583), |b| {
            b.iter(|| {
                out.clear();
                out = black_box(&packer).pack(std::mem::take(&mut out)).unwrap();
                black_box(&out);
            })
        });

        let json = iso8583_codec_rs::iso8583::parse_bytes(bytes, &codec_spec).unwrap();
        group.bench_function(BenchmarkId::new(name, CODEC), |b| {
            b.iter(|| {
                let out = iso8583_codec_rs::iso8583::publish_bytes(black_box(&json), &codec_spec)
                    .unwrap();
                black_box(&out);
            })
        });
    }
    group.finish();
}

fn unionpay(c: &mut Criterion) {
    let spec = specs::cups_pos();
    let config = FrameConfig::cups_pos();
    let header = CupsHeader::from_bytes(cups::HEADER).unwrap();
    let wire = cups::purchase_frame().unwrap();
    let msg = cups::purchase().unwrap();

    let mut group = c.benchmark_group("cups_0200");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("frame_decode+decode", |b| {
        b.iter(|| {
            let (frame, used) = config.decode(black_box(&wire)).unwrap().unwrap();
            let msg = decode(spec, frame.body).unwrap();
            black_box((&msg, used, frame.tpdu, frame.header));
        })
    });
    group.bench_function("frame_decode+decode+validate", |b| {
        b.iter(|| {
            let (frame, _) = config.decode(black_box(&wire)).unwrap().unwrap();
            let msg = decode(spec, frame.body).unwrap();
            msg.validate().unwrap();
            black_box(&msg);
        })
    });
    let mut body = Vec::with_capacity(1024);
    let mut out = Vec::with_capacity(1024);
    group.bench_function("encode+frame_encode", |b| {
        b.iter(|| {
            body.clear();
            out.clear();
            black_box(&msg).encode(spec, &mut body).unwrap();
            config
                .encode(Some(cups::TPDU), Some(header), &body, &mut out)
                .unwrap();
            black_box(&out);
        })
    });
    group.finish();
}

/// Routing reads the MTI and fields up to 25 (processing code, POS condition code).
fn routing_scan(c: &mut Criterion) {
    let cups_body = cups::purchase_body().unwrap();
    let cases = [
        ("cups_0200", specs::cups_pos(), cups_body),
        ("0200", specs::iso87_ascii(), iso87_fixture("0200").unwrap()),
        (
            "large",
            specs::iso87_ascii(),
            iso87_fixture("large").unwrap(),
        ),
    ];
    let mut group = c.benchmark_group("scan_to_25");
    for (name, spec, bytes) in &cases {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| {
                let msg = scan(spec, black_box(bytes), 25).unwrap();
                black_box(msg.field(3).map(|f| f.raw()));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode_iso87, encode_iso87, unionpay, routing_scan);
criterion_main!(benches);
