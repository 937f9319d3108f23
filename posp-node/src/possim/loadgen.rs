//! The load generator: N terminal tasks, each signing in and running M transactions of a
//! mix, measured with `Instant`; a report with TPS, latency percentiles and the
//! non-approved outcomes by response code.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::card::CardHolder;
use super::terminal::{Operation, Outcome, RecordKind, Terminal, TerminalConfig};

/// The transaction mix: relative weights per operation (`purchase=80,balance=10,void=10`).
/// A void with no purchase left to void in the batch becomes a purchase; so does a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// Weight of purchases.
    pub purchase: u32,
    /// Weight of balance inquiries.
    pub balance: u32,
    /// Weight of voids (of the terminal's latest purchase not yet voided).
    pub void: u32,
    /// Weight of refunds (1.00 yuan, or less, of the terminal's latest purchase).
    pub refund: u32,
    /// Weight of echo tests (0820, no card, no MAC).
    pub echo: u32,
}

impl Default for Mix {
    /// `purchase=80,balance=10,void=10`.
    fn default() -> Self {
        Mix {
            purchase: 80,
            balance: 10,
            void: 10,
            refund: 0,
            echo: 0,
        }
    }
}

impl Mix {
    /// Only purchases.
    pub const PURCHASES: Mix = Mix {
        purchase: 1,
        balance: 0,
        void: 0,
        refund: 0,
        echo: 0,
    };

    /// Only echo tests.
    pub const ECHOES: Mix = Mix {
        purchase: 0,
        balance: 0,
        void: 0,
        refund: 0,
        echo: 1,
    };

    fn total(&self) -> u64 {
        u64::from(self.purchase)
            + u64::from(self.balance)
            + u64::from(self.void)
            + u64::from(self.refund)
            + u64::from(self.echo)
    }

    /// The operation for a draw `r` (any `u64`).
    fn pick(&self, r: u64) -> Operation {
        let total = self.total().max(1);
        let mut x = r % total;
        for (weight, op) in [
            (self.purchase, Operation::Purchase),
            (self.balance, Operation::Balance),
            (self.void, Operation::Void),
            (self.refund, Operation::Refund),
            (self.echo, Operation::Echo),
        ] {
            let w = u64::from(weight);
            if x < w {
                return op;
            }
            x -= w;
        }
        Operation::Purchase
    }
}

impl FromStr for Mix {
    type Err = String;

    /// `name=weight` pairs separated by commas; names `purchase`, `balance`, `void`,
    /// `refund`, `echo`; missing names weigh 0; at least one weight must be positive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut mix = Mix {
            purchase: 0,
            balance: 0,
            void: 0,
            refund: 0,
            echo: 0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part}: expected name=weight"))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("{part}: the weight is not a whole number"))?;
            let slot = match name.trim() {
                "purchase" => &mut mix.purchase,
                "balance" => &mut mix.balance,
                "void" => &mut mix.void,
                "refund" => &mut mix.refund,
                "echo" => &mut mix.echo,
                other => {
                    return Err(format!(
                        "{other}: unknown operation (purchase, balance, void, refund, echo)"
                    ));
                }
            };
            *slot = weight;
        }
        if mix.total() == 0 {
            return Err("the mix has no positive weight".to_owned());
        }
        Ok(mix)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "purchase={},balance={},void={},refund={}",
            self.purchase, self.balance, self.void, self.refund
        )?;
        if self.echo > 0 {
            write!(f, ",echo={}", self.echo)?;
        }
        Ok(())
    }
}

/// What a load run does.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// One task per terminal.
    pub terminals: Vec<TerminalConfig>,
    /// Transactions per terminal (after its sign-in).
    pub transactions: u32,
    /// The mix.
    pub mix: Mix,
    /// The cards, used in turn: transaction `i` of terminal `t` uses card
    /// `(i x terminals + t) mod cards`.
    pub cards: Vec<CardHolder>,
    /// Print a `\r` progress line on stderr.
    pub progress: bool,
    /// Seed of the operation draws (each terminal draws from `seed + its index`).
    pub seed: u64,
    /// Sign each terminal in first (needed for everything but echo tests; off to measure a
    /// bare echo server).
    pub sign_in: bool,
}

/// Why a load run could not start or finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// No terminal to run.
    #[error("no terminals to run")]
    NoTerminals,
    /// No card to use.
    #[error("no cards to use")]
    NoCards,
    /// A terminal task did not finish.
    #[error("a terminal task failed: {0}")]
    Task(String),
}

/// Sent and approved counts of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OperationCounts {
    /// Transactions attempted.
    pub sent: u64,
    /// Approved.
    pub approved: u64,
}

/// Latency percentiles (nearest rank over the sorted latencies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Percentiles {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// The slowest.
    pub max: Duration,
}

impl Percentiles {
    /// Percentiles of `latencies` (sorted here); all zero when empty.
    pub fn of(latencies: &mut [Duration]) -> Percentiles {
        latencies.sort_unstable();
        let n = latencies.len();
        let at = |q: f64| {
            if n == 0 {
                return Duration::ZERO;
            }
            // Nearest rank: the smallest value with at least q of the values at or below it.
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            latencies.get(rank - 1).copied().unwrap_or_default()
        };
        Percentiles {
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: latencies.last().copied().unwrap_or_default(),
        }
    }
}

/// What a load run measured. Sign-ins are not counted as transactions.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    /// Terminal tasks run.
    pub terminals: usize,
    /// Terminals whose sign-in failed (they ran no transactions).
    pub sign_in_failures: u64,
    /// Transactions attempted.
    pub transactions: u64,
    /// Transactions approved.
    pub approved: u64,
    /// Per operation.
    pub by_operation: BTreeMap<Operation, OperationCounts>,
    /// Non-approved outcomes (sign-ins included) by response code, or by status label
    /// (`NO_RESPONSE`, `BAD_MAC` ...) when there was none.
    pub non_approved: BTreeMap<String, u64>,
    /// Wall time of the transactions (from the first start to the last end).
    pub elapsed: Duration,
    /// Transactions per second over `elapsed`.
    pub tps: f64,
    /// Transaction latencies.
    pub latency: Percentiles,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(
            f,
            "{} terminals: {} transactions, {} approved in {:.3} s = {:.1} TPS",
            self.terminals,
            self.transactions,
            self.approved,
            self.elapsed.as_secs_f64(),
            self.tps
        )?;
        writeln!(
            f,
            "latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            ms(self.latency.p50),
            ms(self.latency.p99),
            ms(self.latency.p999),
            ms(self.latency.max)
        )?;
        for (op, c) in &self.by_operation {
            writeln!(f, "{op}: {} sent, {} approved", c.sent, c.approved)?;
        }
        if self.sign_in_failures > 0 {
            writeln!(f, "sign-in failed on {} terminals", self.sign_in_failures)?;
        }
        if self.non_approved.is_empty() {
            write!(f, "not approved: none")
        } else {
            let list: Vec<String> = self
                .non_approved
                .iter()
                .map(|(k, n)| format!("{k} x{n}"))
                .collect();
            write!(f, "not approved: {}", list.join(", "))
        }
    }
}

/// What one terminal task brings back.
#[derive(Default)]
struct TaskResult {
    sign_in_failed: bool,
    outcomes: Vec<Outcome>,
    started: Option<Instant>,
    ended: Option<Instant>,
    sign_in_key: Option<String>,
}

/// SplitMix64: a small deterministic generator for the operation draws.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

async fn run_terminal(
    index: usize,
    config: TerminalConfig,
    load: Arc<LoadConfig>,
    done: Arc<AtomicU64>,
) -> TaskResult {
    let mut result = TaskResult::default();
    let mut terminal = Terminal::new(config);
    let signed = if load.sign_in {
        terminal.sign_in().await
    } else {
        terminal.echo().await
    };
    if !signed.is_approved() {
        result.sign_in_failed = true;
        result.sign_in_key = Some(signed.report_key());
        done.fetch_add(u64::from(load.transactions), Ordering::Relaxed);
        return result;
    }
    let mut draws = Draws(load.seed.wrapping_add(index as u64));
    result.started = Some(Instant::now());
    for i in 0..load.transactions {
        let r = draws.next();
        let card = card_turn(i, index, load.terminals.len(), load.cards.len());
        let holder = match load.cards.get(card) {
            Some(h) => h,
            None => break,
        };
        let amount = 100 + (r >> 32) % 9_900;
        let operation = load.mix.pick(r);
        // Only a void or a refund needs the purchase it undoes: the others skip the search
        // and the copy of the record.
        let latest_purchase = match operation {
            Operation::Void | Operation::Refund => terminal
                .records()
                .iter()
                .rev()
                .find(|rec| rec.kind == RecordKind::Purchase && !rec.voided)
                .cloned(),
            _ => None,
        };
        let outcome = match (operation, latest_purchase) {
            (Operation::Balance, _) => terminal.balance(&holder.card, &holder.pin).await,
            (Operation::Void, Some(original)) => terminal.void(&original).await,
            (Operation::Refund, Some(original)) => {
                terminal.refund(&original, original.amount.min(100)).await
            }
            (Operation::Echo, _) => terminal.echo().await,
            _ => terminal.purchase(&holder.card, amount, &holder.pin).await,
        };
        result.outcomes.push(outcome);
        done.fetch_add(1, Ordering::Relaxed);
    }
    result.ended = Some(Instant::now());
    result
}

/// Runs the load: one task per terminal (sign-in, then `transactions` of the mix, one at a
/// time on its connection), and reports.
///
/// # Errors
/// [`LoadError::NoTerminals`], [`LoadError::NoCards`], or [`LoadError::Task`] if a task
/// could not be joined.
pub async fn run_load(config: LoadConfig) -> Result<LoadReport, LoadError> {
    if config.terminals.is_empty() {
        return Err(LoadError::NoTerminals);
    }
    if config.cards.is_empty() {
        return Err(LoadError::NoCards);
    }
    let config = Arc::new(config);
    let total = config.terminals.len() as u64 * u64::from(config.transactions);
    let done = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let progress = if config.progress {
        let (done, finished) = (done.clone(), finished.clone());
        Some(tokio::spawn(async move {
            loop {
                let n = done.load(Ordering::Relaxed);
                {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r{n}/{total} transactions");
                    let _ = err.flush();
                }
                if finished.load(Ordering::Relaxed) {
                    let _ = writeln!(std::io::stderr());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }))
    } else {
        None
    };
    let tasks: Vec<_> = config
        .terminals
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, t)| tokio::spawn(run_terminal(i, t, config.clone(), done.clone())))
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok(r) => results.push(r),
            Err(e) => failure = Some(LoadError::Task(e.to_string())),
        }
    }
    finished.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        let _ = p.await;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(report(config.terminals.len(), results))
}

fn report(terminals: usize, results: Vec<TaskResult>) -> LoadReport {
    let mut by_operation: BTreeMap<Operation, OperationCounts> = BTreeMap::new();
    let mut non_approved: BTreeMap<String, u64> = BTreeMap::new();
    let mut latencies = Vec::new();
    let (mut transactions, mut approved, mut sign_in_failures) = (0u64, 0u64, 0u64);
    let start = results.iter().filter_map(|r| r.started).min();
    let end = results.iter().filter_map(|r| r.ended).max();
    for r in results {
        if r.sign_in_failed {
            sign_in_failures += 1;
            if let Some(key) = r.sign_in_key {
                *non_approved.entry(format!("sign-in {key}")).or_default() += 1;
            }
        }
        for o in r.outcomes {
            transactions += 1;
            let counts = by_operation.entry(o.operation).or_default();
            counts.sent += 1;
            if o.is_approved() {
                approved += 1;
                counts.approved += 1;
            } else {
                *non_approved.entry(o.report_key()).or_default() += 1;
            }
            latencies.push(o.latency);
        }
    }
    let elapsed = match (start, end) {
        (Some(s), Some(e)) => e.saturating_duration_since(s),
        _ => Duration::ZERO,
    };
    let tps = if elapsed.is_zero() {
        0.0
    } else {
        transactions as f64 / elapsed.as_secs_f64()
    };
    LoadReport {
        terminals,
        sign_in_failures,
        transactions,
        approved,
        by_operation,
        non_approved,
        elapsed,
        tps,
        latency: Percentiles::of(&mut latencies),
    }
}

/// The card of transaction `i` of terminal `index`: round by round, terminal after terminal,
/// through all the cards, so that every card is used about equally whatever the numbers of
/// terminals and transactions.
fn card_turn(i: u32, index: usize, terminals: usize, cards: usize) -> usize {
    (i as usize * terminals.max(1) + index) % cards.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_are_used_in_turn_across_terminals() {
        // 3 terminals x 4 transactions over 5 cards: 12 turns, cards 0, 1 used three times.
        let mut uses = [0u32; 5];
        let mut order = Vec::new();
        for i in 0..4 {
            for t in 0..3 {
                let c = card_turn(i, t, 3, 5);
                uses[c] += 1;
                order.push(c);
            }
        }
        assert_eq!(order, [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]);
        assert_eq!(uses, [3, 3, 2, 2, 2]);
        assert_eq!(
            card_turn(7, 0, 0, 0),
            0,
            "no terminals or cards: no division by zero"
        );
    }

    #[test]
    fn mixes_parse_and_pick() {
        let mix: Mix = "purchase=80, balance=10,void=10".parse().unwrap();
        assert_eq!(mix, Mix::default());
        assert_eq!(mix.to_string(), "purchase=80,balance=10,void=10,refund=0");
        assert_eq!(mix.pick(0), Operation::Purchase);
        assert_eq!(mix.pick(79), Operation::Purchase);
        assert_eq!(mix.pick(80), Operation::Balance);
        assert_eq!(mix.pick(90), Operation::Void);
        assert_eq!(mix.pick(199), Operation::Void);
        assert_eq!(
            "refund=1".parse::<Mix>().unwrap().pick(7),
            Operation::Refund
        );
        assert_eq!(
            "purchase=0".parse::<Mix>().unwrap_err(),
            "the mix has no positive weight"
        );
        assert_eq!(
            "cash=1".parse::<Mix>().unwrap_err(),
            "cash: unknown operation (purchase, balance, void, refund, echo)"
        );
        let echoes: Mix = "echo=3".parse().unwrap();
        assert_eq!(echoes.pick(2), Operation::Echo);
        assert_eq!(
            echoes.to_string(),
            "purchase=0,balance=0,void=0,refund=0,echo=3"
        );
        assert_eq!(
            "purchase".parse::<Mix>().unwrap_err(),
            "purchase: expected name=weight"
        );
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<Duration> = (1..=1000).rev().map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut v);
        assert_eq!(p.p50, Duration::from_millis(500));
        assert_eq!(p.p99, Duration::from_millis(990));
        assert_eq!(p.p999, Duration::from_millis(999));
        assert_eq!(p.max, Duration::from_millis(1000));
        let mut few = vec![Duration::from_millis(3), Duration::from_millis(1)];
        let p = Percentiles::of(&mut few);
        assert_eq!(p.p50, Duration::from_millis(1));
        assert_eq!(p.p999, Duration::from_millis(3));
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
    }
}
