//! `posp-node load-test`: end-to-end throughput and latency of the front end, measured with
//! the load generator against a whole node on loopback, beside a bare echo server as the
//! baseline.
//!
//! Three phases, each `terminals` x `transactions`, every terminal one request at a time on
//! its own long connection (so `terminals` is the concurrency):
//!
//! 1. **bare echo**: a minimal server with the same framing (2-byte length, TPDU, CUPS
//!    header) that decodes each 0820 and answers 0830 `00`: no routing, MAC, journal or
//!    HSM. It is the floor set by the load generator, TCP on loopback and the codec.
//! 2. **front-end echo**: the same echo tests through the front end (signed-in terminals;
//!    the front end answers network management itself).
//! 3. **purchases**: online purchases end to end: terminal -> front end (MAC verified, PIN
//!    translated PIK -> ZPK through the HSM, journal synced, upstream STAN, X9.19 under the
//!    ZAK) -> center (MAC, PIN verified against the PVK through the HSM, balance and limits,
//!    its own SQLite journal) -> back, MACed both ways.
//!
//! The front end's own cost is phase 2 minus phase 1 per transaction; a purchase's is
//! phase 3, of which the center and the HSM are part. The cards are [`LOAD_CARDS`]
//! generated accounts with large balances, seeded beside the demo cards.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use iso8583_wire::frame::FrameConfig;
use iso8583_wire::{MessageBuf, decode, specs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::demo::{DemoError, Stack, StackOptions};
use crate::possim::{CardHolder, LoadConfig, LoadReport, Mix, run_load};

/// How many generated load-test cards the stack seeds (see [`load_card_pan`]).
pub const LOAD_CARDS: usize = 1024;

/// The PIN of every load-test card.
pub const LOAD_CARD_PIN: &str = "246810";

/// The opening balance of each load-test card's account, in fen (10 million yuan).
pub const LOAD_CARD_BALANCE: i64 = 1_000_000_000;

/// The PAN of the `i`th load-test card: `62123499` + 7 digits + the Luhn check digit.
pub fn load_card_pan(i: usize) -> String {
    let body = format!("62123499{:07}", i % 10_000_000);
    let check = luhn_check_digit(&body);
    format!("{body}{check}")
}

/// The Luhn check digit of `digits` (non-digits count as 0).
pub fn luhn_check_digit(digits: &str) -> u8 {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c.wrapping_sub(b'0') % 10);
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    // sum % 10 < 10, so the digit fits.
    u8::try_from((10 - sum % 10) % 10).unwrap_or(0)
}

/// Options of a load test.
#[derive(Debug, Clone)]
pub struct LoadTestOptions {
    /// Terminals, each one connection with one request at a time.
    pub terminals: usize,
    /// Transactions per terminal in each phase.
    pub transactions: u32,
    /// Key operations through the HSM simulator (host protocol on loopback) instead of an
    /// in-process SoftHsm.
    pub hsm_simulator: bool,
    /// Where to write the node directory; temporary (removed) when `None`.
    pub data_dir: Option<PathBuf>,
    /// Print a progress line on stderr.
    pub progress: bool,
}

/// One phase's result.
#[derive(Debug, Clone)]
pub struct Phase {
    /// `bare echo`, `front-end echo` or `purchases`.
    pub name: &'static str,
    /// What the load generator measured.
    pub report: LoadReport,
}

/// The three phases.
#[derive(Debug, Clone)]
pub struct LoadTestReport {
    /// The options it ran with.
    pub terminals: usize,
    /// Transactions per terminal per phase.
    pub transactions: u32,
    /// Whether the HSM simulator was used.
    pub hsm_simulator: bool,
    /// The phases in order.
    pub phases: Vec<Phase>,
}

impl LoadTestReport {
    /// Whether every transaction of every phase was approved.
    pub fn all_approved(&self) -> bool {
        self.phases
            .iter()
            .all(|p| p.report.sign_in_failures == 0 && p.report.approved == p.report.transactions)
    }
}

impl fmt::Display for LoadTestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(
            f,
            "{} terminals x {} transactions per phase, HSM: {}",
            self.terminals,
            self.transactions,
            if self.hsm_simulator {
                "simulator over the host protocol"
            } else {
                "in-process SoftHsm"
            }
        )?;
        writeln!(
            f,
            "| phase | transactions | approved | TPS | p50 ms | p99 ms | p99.9 ms | max ms |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
        for p in &self.phases {
            let r = &p.report;
            writeln!(
                f,
                "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
                p.name,
                r.transactions,
                r.approved,
                r.tps,
                ms(r.latency.p50),
                ms(r.latency.p99),
                ms(r.latency.p999),
                ms(r.latency.max)
            )?;
        }
        let per = |name: &str| {
            self.phases
                .iter()
                .find(|p| p.name == name)
                .filter(|p| p.report.tps > 0.0)
                .map(|p| 1e6 / p.report.tps)
        };
        if let (Some(bare), Some(front)) = (per("bare echo"), per("front-end echo")) {
            writeln!(
                f,
                "front end's own cost per echo: {:.1} µs of wall time ({:.1} vs {:.1} µs per transaction)",
                front - bare,
                front,
                bare
            )?;
        }
        if let (Some(bare), Some(purchase)) = (per("bare echo"), per("purchases")) {
            writeln!(
                f,
                "a purchase end to end: {:.1} µs of wall time per transaction ({:.1} more than the bare echo)",
                purchase,
                purchase - bare
            )?;
        }
        for p in &self.phases {
            if !p.report.non_approved.is_empty() {
                let list: Vec<String> = p
                    .report
                    .non_approved
                    .iter()
                    .map(|(k, n)| format!("{k} x{n}"))
                    .collect();
                writeln!(f, "{}: not approved: {}", p.name, list.join(", "))?;
            }
        }
        Ok(())
    }
}

/// A bare echo server: cups-pos framing, 0820 -> 0830 with 11, 41 and 39 `00`.
async fn bare_echo_server() -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)>
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(echo_connection(stream));
        }
    });
    Ok((addr, task))
}

async fn echo_connection(mut stream: TcpStream) {
    let frame = FrameConfig::cups_pos();
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let mut out = Vec::with_capacity(256);
    loop {
        loop {
            let (reply, used) = match frame.decode(&buf) {
                Ok(Some((f, used))) => (echo_reply(f.body), (used, f.tpdu, f.header)),
                Ok(None) => break,
                Err(_) => return,
            };
            let (used, tpdu, header) = used;
            buf.drain(..used.min(buf.len()));
            let Some(reply) = reply else { return };
            out.clear();
            if frame.encode(tpdu, header, &reply, &mut out).is_err()
                || stream.write_all(&out).await.is_err()
            {
                return;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
}

fn echo_reply(body: &[u8]) -> Option<Vec<u8>> {
    let spec = specs::cups_pos();
    let msg = decode(spec, body).ok()?;
    let mut m = MessageBuf::new("0830").ok()?;
    if let Some(stan) = msg.field(11) {
        m.set(11, stan.to_string());
    }
    if let Some(tid) = msg.field(41).and_then(|f| f.as_str().ok()) {
        m.set(41, tid.to_owned());
    }
    m.set(39, "00");
    m.to_vec(spec).ok()
}

/// The load-test cards as card holders.
pub fn load_card_holders() -> Vec<CardHolder> {
    (0..LOAD_CARDS)
        .filter_map(|i| {
            crate::possim::Card::new(&load_card_pan(i), "3012")
                .ok()
                .map(|card| CardHolder {
                    card,
                    pin: LOAD_CARD_PIN.to_owned(),
                })
        })
        .collect()
}

/// Runs the three phases (see the module documentation). Needs a multi-threaded runtime.
///
/// # Errors
/// [`DemoError`] when the node or the echo server cannot start, or the load generator fails.
pub async fn run_load_test(options: &LoadTestOptions) -> Result<LoadTestReport, DemoError> {
    let (dir, temporary) = match &options.data_dir {
        Some(d) => (d.clone(), false),
        None => (crate::demo::temp_dir("posp-load"), true),
    };
    let result = run_phases(&dir, options).await;
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run_phases(
    dir: &std::path::Path,
    options: &LoadTestOptions,
) -> Result<LoadTestReport, DemoError> {
    let failed = |step: &'static str| {
        move |e: &dyn fmt::Display| DemoError {
            step,
            detail: e.to_string(),
        }
    };
    let stack = Stack::start(
        dir,
        &StackOptions {
            terminals: options.terminals,
            drop_amount: None,
            link_timeout: Duration::from_secs(5),
            hsm_simulator: options.hsm_simulator,
            load_cards: LOAD_CARDS,
            ..StackOptions::default()
        },
    )
    .await?;
    let cards = load_card_holders();
    let load = |terminals, mix, sign_in| LoadConfig {
        terminals,
        transactions: options.transactions,
        mix,
        cards: cards.clone(),
        progress: options.progress,
        seed: 11,
        sign_in,
    };
    let mut phases = Vec::new();
    let bare = match bare_echo_server().await {
        Ok(b) => b,
        Err(e) => {
            stack.stop().await;
            return Err(failed("echo server")(&e));
        }
    };
    let mut bare_terminals = stack.terminals.clone();
    for t in &mut bare_terminals {
        t.front = bare.0.to_string();
    }
    let result = async {
        let r = run_load(load(bare_terminals, Mix::ECHOES, false))
            .await
            .map_err(|e| failed("bare echo")(&e))?;
        phases.push(Phase {
            name: "bare echo",
            report: r,
        });
        let r = run_load(load(stack.terminals.clone(), Mix::ECHOES, true))
            .await
            .map_err(|e| failed("front-end echo")(&e))?;
        phases.push(Phase {
            name: "front-end echo",
            report: r,
        });
        let mut purchase_terminals = stack.terminals.clone();
        for t in &mut purchase_terminals {
            t.first_stan = 500_000;
        }
        let r = run_load(load(purchase_terminals, Mix::PURCHASES, true))
            .await
            .map_err(|e| failed("purchases")(&e))?;
        phases.push(Phase {
            name: "purchases",
            report: r,
        });
        Ok::<(), DemoError>(())
    }
    .await;
    bare.1.abort();
    stack.stop().await;
    result?;
    Ok(LoadTestReport {
        terminals: options.terminals,
        transactions: options.transactions,
        hsm_simulator: options.hsm_simulator,
        phases,
    })
}

/// Arguments of `posp-node load-test`.
#[derive(Debug, clap::Args)]
pub struct LoadTestArgs {
    /// Terminals (the concurrency: each has one connection and one request at a time).
    #[arg(long, default_value_t = 32)]
    pub terminals: usize,
    /// Transactions per terminal in each phase.
    #[arg(long, default_value_t = 200)]
    pub transactions: u32,
    /// Use an in-process SoftHsm instead of the HSM simulator over the host protocol.
    #[arg(long)]
    pub in_process_hsm: bool,
    /// Keep the node directory here (it must not hold an earlier `init`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// `posp-node load-test`: prints a Markdown table; exit 0 when every transaction was
/// approved, 1 when not, 2 when it could not run.
pub fn run(args: LoadTestArgs) -> ExitCode {
    crate::cli::init_tracing("error");
    if args.terminals == 0 || args.terminals > 9_999 || args.transactions == 0 {
        eprintln!("error: --terminals 1 to 9999 and --transactions at least 1");
        return ExitCode::from(2);
    }
    let options = LoadTestOptions {
        terminals: args.terminals,
        transactions: args.transactions,
        hsm_simulator: !args.in_process_hsm,
        data_dir: args.data_dir,
        progress: true,
    };
    crate::cli::run_report(run_load_test(&options), LoadTestReport::all_approved)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn load_card_pans_pass_luhn() {
        assert_eq!(luhn_check_digit("7992739871"), 3);
        assert_eq!(load_card_pan(0), "6212349900000003");
        assert_eq!(load_card_pan(63), "6212349900000631");
        assert_eq!(load_card_holders().len(), LOAD_CARDS);
    }

    #[test]
    fn the_bare_echo_reply_answers_0820() {
        let mut m = MessageBuf::new("0820").unwrap();
        m.set(11, "000042")
            .set(41, "10000001")
            .set(60, "00000001301");
        let req = m.to_vec(specs::cups_pos()).unwrap();
        let reply = echo_reply(&req).unwrap();
        let msg = decode(specs::cups_pos(), &reply).unwrap();
        assert_eq!(msg.mti(), "0830");
        assert_eq!(msg.field(11).unwrap().to_string(), "000042");
        assert_eq!(msg.field(41).unwrap().as_str().unwrap(), "10000001");
        assert_eq!(msg.field(39).unwrap().as_str().unwrap(), "00");
        assert_eq!(echo_reply(b"garbage"), None);
    }
}
