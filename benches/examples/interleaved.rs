//! The iso8583 comparisons of `BENCHMARKS.md` timed side by side, for a machine whose speed
//! drifts: each round times every case once (200,000 iterations), the rounds repeat, and each
//! case keeps its fastest round. Criterion times one case after another, so on a shared VM a
//! slow spell can land on one case and not on the case it is compared with.
//!
//! `cargo run --release -p benches --example interleaved [rounds]` (default 10 rounds).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/peers.rs"]
mod peers;

use std::hint::black_box;
use std::time::Instant;

use benches::iso87_fixture;
use i8583::Unpacker;
use iso8583_wire::{decode, specs};

const ITERATIONS: u32 = 200_000;

/// Nanoseconds per call of `f`, over [`ITERATIONS`] calls.
fn time(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..ITERATIONS {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("rounds: a number"))
        .unwrap_or(10);
    let spec = specs::iso87_ascii();
    let table = peers::i8583_spec();
    println!("fastest of {rounds} interleaved rounds, ns per message");
    println!(
        "| fixture | decode | i8583 decode | decode+validate | encode | i8583 encode | validate / decode | encode / i8583 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for name in ["0200", "large"] {
        let bytes = iso87_fixture(name).unwrap();
        let msg = decode(spec, &bytes).unwrap().to_buf();
        let packer = peers::i8583_packer(&table, &bytes);
        let mut out = Vec::with_capacity(4096);
        let mut best = [f64::MAX; 5];
        for _ in 0..rounds {
            let t = [
                time(|| {
                    black_box(decode(spec, black_box(&bytes)).unwrap());
                }),
                time(|| {
                    let mut u = Unpacker::new(black_box(&bytes));
                    black_box(u.unpack(&table).unwrap());
                }),
                time(|| {
                    let m = decode(spec, black_box(&bytes)).unwrap();
                    black_box(m.validate()).unwrap();
                }),
                time(|| {
                    out.clear();
                    black_box(&msg).encode(spec, &mut out).unwrap();
                    black_box(&out);
                }),
                time(|| {
                    out.clear();
                    out = black_box(&packer).pack(std::mem::take(&mut out)).unwrap();
                    black_box(&out);
                }),
            ];
            for (b, t) in best.iter_mut().zip(t) {
                *b = b.min(t);
            }
        }
        let [dec, i_dec, val, enc, i_enc] = best;
        println!(
            "| {name} | {dec:.1} | {i_dec:.1} | {val:.1} | {enc:.1} | {i_enc:.1} | {:.2} | {:.3} |",
            val / dec,
            enc / i_enc
        );
    }
}
