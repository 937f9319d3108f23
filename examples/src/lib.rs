//! Runnable integrator examples for the one-card crates. Run one with
//! `cargo run -p examples --example NAME`.
