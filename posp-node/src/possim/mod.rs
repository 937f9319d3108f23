//! `pos-sim`: simulated POS terminals against a front end (the terminal side of
//! `PROTOCOL.md`), and a load generator.
//!
//! - [`Terminal`] is one POS: its TMK, STAN, batch, session keys from sign-in, a
//!   pending-reversal slot and the batch's records, over one long connection with `cups-pos`
//!   framing. Each operation ([`Terminal::sign_in`], [`Terminal::purchase`],
//!   [`Terminal::load`], [`Terminal::settle`] ...) returns an [`Outcome`] and never panics
//!   on what the front end sends.
//! - [`TerminalsFile`] is the file `posp-node init` writes for the simulator (see
//!   [`file`](mod@file)); [`write_terminals_file`] writes one.
//! - [`run_load`] runs N terminals x M transactions of a [`Mix`] and returns a
//!   [`LoadReport`] (TPS, p50/p99/p99.9 latency, non-approved outcomes by response code).
//!
//! ```text
//! posp-node pos-sim --terminals DIR/terminals.json [--front ADDR] [--script demo|purchases] [--count N]
//! posp-node pos-sim --terminals FILE --load [--terminals-count N] [--transactions M] [--mix purchase=80,balance=10,void=10]
//! ```
//!
//! The `demo` script runs on the first terminal: sign-in, echo, balance inquiry, purchase,
//! its void, a second purchase, a partial refund, settlement, sign-off. `purchases` runs on
//! every terminal: sign-in, `--count` purchases, settlement, sign-off. The cards are the
//! center's demo cards ([`demo_card_holders`]). Purse loads need a card personalized with
//! the center's load keys: `posp-node demo` does them with a card made from the issuer
//! profile `init` writes (the library's [`Terminal::load`]).
//!
//! Exit status: 0 when the script or the load ran (declines included), 1 when a sign-in
//! failed, 2 with one `error: ...` line for bad arguments or an unreadable terminals file.

pub mod card;
pub mod file;
pub mod loadgen;
pub mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub use card::{Card, CardDataError, CardHolder};
pub use file::{TerminalEntry, TerminalsFile, TerminalsFileError, write_terminals_file};
pub use loadgen::{LoadConfig, LoadError, LoadReport, Mix, OperationCounts, Percentiles, run_load};
pub use terminal::{
    BatchTotals, Operation, Outcome, PendingReversal, RecordKind, SettlementResult, Status,
    Terminal, TerminalConfig, TxnRecord,
};

/// The demo bank cards with their PINs: the center's demo card table
/// ([`crate::center::DEMO_CARDS`]: active 10 000.00 yuan, active 50.00 yuan, lost, expired,
/// single-purchase limit 100.00 yuan), in that order.
pub fn demo_card_holders() -> Vec<CardHolder> {
    crate::center::DEMO_CARDS
        .iter()
        .filter_map(|c| {
            Card::new(c.pan, c.expiry).ok().map(|card| CardHolder {
                card,
                pin: c.pin.to_owned(),
            })
        })
        .collect()
}

/// The scripts of `pos-sim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Script {
    /// Every transaction once on the first terminal.
    Demo,
    /// `--count` purchases on every terminal, then settlement.
    Purchases,
}

/// Arguments of `posp-node pos-sim`.
#[derive(Debug, clap::Args)]
pub struct PosSimArgs {
    /// The front end's address (host:port); default: the terminals file's `front`.
    #[arg(long)]
    pub front: Option<String>,
    /// The terminals file (JSON or TOML, as `posp-node init` writes it).
    #[arg(long)]
    pub terminals: PathBuf,
    /// The script to run.
    #[arg(long, value_enum, default_value = "demo")]
    pub script: Script,
    /// Purchases per terminal in the `purchases` script.
    #[arg(long, default_value_t = 5)]
    pub count: u32,
    /// Run the load generator instead of a script.
    #[arg(long)]
    pub load: bool,
    /// Load: how many terminals of the file to run (default: all).
    #[arg(long = "terminals-count")]
    pub terminals_count: Option<usize>,
    /// Load: transactions per terminal.
    #[arg(long, default_value_t = 100)]
    pub transactions: u32,
    /// Load: the transaction mix (`purchase`, `balance`, `void`, `refund`, `echo`).
    #[arg(long, default_value = "purchase=80,balance=10,void=10")]
    pub mix: Mix,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Runs `posp-node pos-sim` (see the module documentation for the exit status).
pub fn run(args: PosSimArgs) -> ExitCode {
    let file = match TerminalsFile::load(&args.terminals) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let mut configs = match file.terminal_configs(args.front.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(format!("{}: {e}", args.terminals.display())),
    };
    if configs.is_empty() {
        return fail(format!("{}: no terminals", args.terminals.display()));
    }
    if args.timeout == 0 {
        return fail("--timeout: at least 1 second");
    }
    for c in &mut configs {
        c.response_timeout = Duration::from_secs(args.timeout);
    }
    let runtime = match crate::cli::runtime() {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if args.load {
        let n = args.terminals_count.unwrap_or(configs.len());
        if n == 0 || n > configs.len() {
            return fail(format!(
                "--terminals-count: 1 to {} (the terminals in the file)",
                configs.len()
            ));
        }
        configs.truncate(n);
        let load = LoadConfig {
            terminals: configs,
            transactions: args.transactions,
            mix: args.mix,
            cards: demo_card_holders(),
            progress: true,
            seed: 1,
            sign_in: true,
        };
        return match runtime.block_on(run_load(load)) {
            Ok(report) => {
                println!("{report}");
                if report.sign_in_failures > 0 {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(e) => fail(e),
        };
    }
    let signed_in = runtime.block_on(async {
        match args.script {
            Script::Demo => match configs.into_iter().next() {
                Some(config) => demo(config).await,
                None => false,
            },
            Script::Purchases => {
                let mut all = true;
                for config in configs {
                    all &= purchases(config, args.count).await;
                }
                all
            }
        }
    });
    if signed_in {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn show(terminal: &Terminal, outcome: &Outcome) {
    println!("{} {outcome}", terminal.terminal_id());
}

/// The `demo` script; `false` if the sign-in failed.
async fn demo(config: TerminalConfig) -> bool {
    let cards = demo_card_holders();
    let Some(holder) = cards.first() else {
        return false;
    };
    let mut t = Terminal::new(config);
    let o = t.sign_in().await;
    show(&t, &o);
    if !o.is_approved() {
        return false;
    }
    let o = t.echo().await;
    show(&t, &o);
    let o = t.balance(&holder.card, &holder.pin).await;
    show(&t, &o);
    let o = t.purchase(&holder.card, 1_234, &holder.pin).await;
    show(&t, &o);
    if let Some(record) = o.record {
        let o = t.void(&record).await;
        show(&t, &o);
    }
    let o = t.purchase(&holder.card, 5_000, &holder.pin).await;
    show(&t, &o);
    if let Some(record) = o.record {
        let o = t.refund(&record, 1_000).await;
        show(&t, &o);
    }
    let o = t.settle().await;
    show(&t, &o);
    let o = t.sign_off().await;
    show(&t, &o);
    true
}

/// The `purchases` script on one terminal; `false` if the sign-in failed.
async fn purchases(config: TerminalConfig, count: u32) -> bool {
    let cards = demo_card_holders();
    let mut t = Terminal::new(config);
    let o = t.sign_in().await;
    show(&t, &o);
    if !o.is_approved() {
        return false;
    }
    for i in 0..count {
        // The two active cards without limits, in turn.
        let Some(holder) = cards.get(i as usize % 2) else {
            break;
        };
        let o = t
            .purchase(&holder.card, 100 + u64::from(i) * 11, &holder.pin)
            .await;
        show(&t, &o);
    }
    let o = t.settle().await;
    show(&t, &o);
    let o = t.sign_off().await;
    show(&t, &o);
    true
}
