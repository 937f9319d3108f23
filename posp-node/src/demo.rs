//! `posp-node demo`: the whole system on loopback, one scripted business day, a summary.
//!
//! ```text
//!  pos-sim terminals --cups-pos--> front end --len2 cups-pos--> center
//!        (PIK, MAK)                 |   journal.db (SQLite)       |  center.db (SQLite)
//!                                   +------ HSM simulator <-------+
//!                                           (host protocol, SoftHsm on lmk.txt)
//! ```
//!
//! [`run_demo`] writes a fresh node directory with `posp-node init` (a temporary one unless
//! a data directory is given), seeds the center's registry with the demo cards, and starts
//! on loopback ports: an HSM simulator (the host-protocol server on a SoftHsm with the new
//! LMK), the center and the front end, both reaching the HSM through the host protocol.
//! The center drops its reply to purchases of [`DROPPED_AMOUNT`] fen (fault injection,
//! `[center.faults.drop]`), so one purchase times out and is reversed through the SAF.
//!
//! Then the business day:
//!
//! - the market stall terminal `10000001` signs in, sends an echo, asks a balance, buys and
//!   voids, buys and refunds part, buys the purchase whose reply is dropped (98 to the POS,
//!   reversal queued durably and sent by the SAF), sends a purchase with a corrupted MAC
//!   (`A0`), tries an over-balance card (`51`), a lost card (`41`) and an over-limit one
//!   (`61`), settles and signs off;
//! - the load outlet `10000002` loads a PBOC purse card (personalized from the demo issuer
//!   profile, so the center's MLK and MTK derive its keys) twice, with MAC1, MAC2 and the
//!   card's TAC confirmed, settles and signs off;
//! - all terminals then run a short purchase burst in parallel (the load generator), which
//!   gives the TPS and latency figures.
//!
//! Last, it checks the front end's journal against the center: the approved transactions
//! of each kind (count and amount) must be the same on both sides, and the money the
//! journal says moved must be what the center's accounts lost. [`DemoReport`] holds it all;
//! its `Display` is the summary `posp-node demo` prints. The exit status is 0 only when
//! every scripted step got its expected answer and the two sides agree.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pboc_card::personalize::personalize;
use pboc_card::{Application, FixedRandom, VirtualCard};
use pboc_sam::hsm::HsmServer;
use pboc_sam::transport::MemoryTransport;
use pboc_sam::{Lmk, SecurityModule, SoftHsm};

use crate::center::{
    AuthState, Center, DEMO_CARDS, DEMO_PURSES, FaultSelector, Registry, open_hsm, seed_demo,
};
use crate::config::Config;
use crate::front::{Front, FrontHandle, build_hsm};
use crate::init::{self, OsRandom};
use crate::possim::{
    CardHolder, LoadConfig, LoadReport, Mix, Operation, Outcome, Terminal, TerminalConfig,
    TerminalsFile, demo_card_holders, run_load,
};
use crate::store::{EntryFilter, Journal, TxnKind, TxnState};

/// The purchase amount (fen) whose reply the demo center drops.
pub const DROPPED_AMOUNT: u64 = 8_888;

/// Options of a demo run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where to write the node directory; a fresh temporary one (removed afterwards) when
    /// `None`. The directory must not hold an earlier `init`.
    pub data_dir: Option<PathBuf>,
    /// Purchases per terminal in the closing burst.
    pub burst: u32,
    /// Print each step as it happens.
    pub verbose: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            data_dir: None,
            burst: 50,
            verbose: false,
        }
    }
}

/// Why the demo could not run (a step failed to start; unexpected answers are reported in
/// [`DemoReport`] instead).
#[derive(Debug, thiserror::Error)]
#[error("demo: {step}: {detail}")]
pub struct DemoError {
    /// The step (`init`, `hsm`, `center`, `front` ...).
    pub step: &'static str,
    /// What went wrong.
    pub detail: String,
}

fn step_err(step: &'static str) -> impl Fn(&dyn fmt::Display) -> DemoError {
    move |e| DemoError {
        step,
        detail: e.to_string(),
    }
}

/// One scripted step: what was done, what was expected and what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    /// The terminal id.
    pub terminal: String,
    /// What the step does, in words.
    pub what: &'static str,
    /// The operation.
    pub operation: Operation,
    /// The amount in fen (0 when none).
    pub amount: u64,
    /// The response code expected.
    pub expected: &'static str,
    /// The response code received (`-` when none), or the terminal's status label.
    pub got: String,
    /// The terminal's outcome line.
    pub line: String,
}

impl StepResult {
    /// Whether the answer was the expected one.
    pub fn ok(&self) -> bool {
        self.got == self.expected
    }
}

/// Count and amount of one kind of transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// How many.
    pub count: u64,
    /// Their amount in fen.
    pub amount: u64,
}

impl Tally {
    fn add(&mut self, amount: u64) {
        self.count += 1;
        self.amount += amount;
    }
}

/// The journal against the center, kind by kind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reconciliation {
    /// Approved transactions in the front end's journal, by center kind name.
    pub journal: BTreeMap<&'static str, Tally>,
    /// Approved authorizations at the center (not reversed), by kind.
    pub center: BTreeMap<&'static str, Tally>,
    /// Money out of card accounts by the journal: purchases + loads - voids - refunds.
    pub journal_net: i64,
    /// Money out of card accounts by the center's balances: opening minus now.
    pub center_net: i64,
}

impl Reconciliation {
    /// Whether both sides agree on every kind and on the money.
    pub fn agrees(&self) -> bool {
        self.journal == self.center && self.journal_net == self.center_net
    }
}

/// Everything a demo run did.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// The node directory used.
    pub data_dir: PathBuf,
    /// Whether it was a temporary directory (removed at the end).
    pub temporary: bool,
    /// The scripted steps in order.
    pub steps: Vec<StepResult>,
    /// Reversals the front end queued in its SAF.
    pub reversals_queued: u64,
    /// Reversals the center acknowledged (the journal entry is `REVERSED`).
    pub reversals_acknowledged: u64,
    /// SAF entries still queued, and in the exception queue, at the end.
    pub saf_left: (u64, u64),
    /// The closing purchase burst.
    pub burst: LoadReport,
    /// Journal against center.
    pub reconciliation: Reconciliation,
    /// The purse card's balance after the loads (fen).
    pub purse_balance: Option<u32>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl DemoReport {
    /// Whether everything went as scripted: every step's expected answer, every reversal
    /// acknowledged, nothing left in the SAF, and journal and center agreeing.
    pub fn success(&self) -> bool {
        self.steps.iter().all(StepResult::ok)
            && self.reversals_queued == self.reversals_acknowledged
            && self.saf_left == (0, 0)
            && self.burst.sign_in_failures == 0
            && self.reconciliation.agrees()
    }
}

fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn signed_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}", yuan(fen.unsigned_abs()))
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== posp-node demo: one business day ==")?;
        writeln!(
            f,
            "node directory {}{}",
            self.data_dir.display(),
            if self.temporary {
                " (temporary, removed)"
            } else {
                ""
            }
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<9} {:<44} {:>9}  {:<6} {:<6}",
            "terminal", "step", "yuan", "expect", "got"
        )?;
        for s in &self.steps {
            writeln!(
                f,
                "{:<9} {:<44} {:>9}  {:<6} {:<6}{}",
                s.terminal,
                s.what,
                if s.amount > 0 {
                    yuan(s.amount)
                } else {
                    String::new()
                },
                s.expected,
                s.got,
                if s.ok() { "" } else { "  <-- unexpected" }
            )?;
        }
        writeln!(f)?;
        let mut by: BTreeMap<(&str, &str), Tally> = BTreeMap::new();
        for s in &self.steps {
            let outcome = if s.got == "00" { "approved" } else { "other" };
            by.entry((s.operation.name(), outcome))
                .or_default()
                .add(s.amount);
        }
        writeln!(f, "scripted transactions by kind and outcome:")?;
        for ((kind, outcome), t) in &by {
            writeln!(
                f,
                "  {kind:<12} {outcome:<9} {:>4}  {:>10} yuan",
                t.count,
                yuan(t.amount)
            )?;
        }
        if let Some(b) = self.purse_balance {
            writeln!(
                f,
                "purse card balance after the loads: {} yuan",
                yuan(b.into())
            )?;
        }
        writeln!(
            f,
            "reversals: {} queued in the SAF, {} acknowledged by the center; SAF left: {} queued, {} exceptions",
            self.reversals_queued, self.reversals_acknowledged, self.saf_left.0, self.saf_left.1
        )?;
        writeln!(f)?;
        writeln!(f, "closing burst (load generator):")?;
        for line in self.burst.to_string().lines() {
            writeln!(f, "  {line}")?;
        }
        writeln!(f)?;
        let r = &self.reconciliation;
        writeln!(
            f,
            "journal against center (approved, not reversed): {}",
            if r.agrees() { "AGREE" } else { "DISAGREE" }
        )?;
        let kinds: std::collections::BTreeSet<&str> =
            r.journal.keys().chain(r.center.keys()).copied().collect();
        for k in kinds {
            let j = r.journal.get(k).copied().unwrap_or_default();
            let c = r.center.get(k).copied().unwrap_or_default();
            writeln!(
                f,
                "  {k:<13} journal {:>4} / {:>10} yuan   center {:>4} / {:>10} yuan{}",
                j.count,
                yuan(j.amount),
                c.count,
                yuan(c.amount),
                if j == c { "" } else { "  <-- differs" }
            )?;
        }
        writeln!(
            f,
            "  money out of card accounts: journal {} yuan, center balances {} yuan",
            signed_yuan(r.journal_net),
            signed_yuan(r.center_net)
        )?;
        writeln!(f)?;
        write!(
            f,
            "{} in {:.1} s",
            if self.success() {
                "DEMO OK"
            } else {
                "DEMO FAILED"
            },
            self.elapsed.as_secs_f64()
        )
    }
}

/// A fresh path in the system's temporary directory: `prefix-PID-NANOS`.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()))
}

/// Runs the demo (see the module documentation). Needs a multi-threaded tokio runtime.
///
/// # Errors
/// [`DemoError`] when a piece cannot be set up or started.
pub async fn run_demo(options: &DemoOptions) -> Result<DemoReport, DemoError> {
    let started = Instant::now();
    let (dir, temporary) = match &options.data_dir {
        Some(d) => (d.clone(), false),
        None => (temp_dir("posp-demo"), true),
    };
    let result = run_in(&dir, options).await;
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (steps, totals) = result?;
    let (reversals_queued, reversals_acknowledged, saf_left, burst, reconciliation, purse) = totals;
    Ok(DemoReport {
        data_dir: dir,
        temporary,
        steps,
        reversals_queued,
        reversals_acknowledged,
        saf_left,
        burst,
        reconciliation,
        purse_balance: purse,
        elapsed: started.elapsed(),
    })
}

type Totals = (
    u64,
    u64,
    (u64, u64),
    LoadReport,
    Reconciliation,
    Option<u32>,
);

async fn run_in(dir: &Path, options: &DemoOptions) -> Result<(Vec<StepResult>, Totals), DemoError> {
    let stack = Stack::start(
        dir,
        &StackOptions {
            drop_amount: Some(DROPPED_AMOUNT),
            ..StackOptions::default()
        },
    )
    .await?;
    let result = business_day(&stack, options).await;
    let db = stack.center_database.clone();
    stack.stop().await;
    let (steps, reversals_queued, reversals_acknowledged, saf_left, burst, journal, purse) =
        result?;
    let registry = Registry::open(&db).map_err(|e| step_err("center")(&e))?;
    let reconciliation = reconcile(&journal, &registry)?;
    Ok((
        steps,
        (
            reversals_queued,
            reversals_acknowledged,
            saf_left,
            burst,
            reconciliation,
            purse,
        ),
    ))
}

/// How [`Stack::start`] sets a node up.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Demo terminals to register (`init --terminals`).
    pub terminals: usize,
    /// Purchases (0200) of this amount get no reply from the center.
    pub drop_amount: Option<u64>,
    /// The front end's link timeout.
    pub link_timeout: Duration,
    /// Key operations through an HSM simulator on loopback (the host protocol) rather than
    /// one in-process SoftHsm shared by the center and the front end.
    pub hsm_simulator: bool,
    /// Every center reply is sent this long after processing (`[center.faults] delay`).
    pub center_delay: Duration,
    /// Load-test cards to seed besides the demo cards
    /// ([`crate::loadtest::load_card_pan`], PIN [`crate::loadtest::LOAD_CARD_PIN`]).
    pub load_cards: usize,
}

impl StackOptions {
    /// One terminal and an in-process SoftHsm: the smallest stack, for tests.
    pub fn one_terminal() -> StackOptions {
        StackOptions {
            terminals: 1,
            hsm_simulator: false,
            ..StackOptions::default()
        }
    }
}

impl Default for StackOptions {
    /// 3 terminals, no fault, 1 s link timeout, the HSM simulator.
    fn default() -> Self {
        StackOptions {
            terminals: 3,
            drop_amount: None,
            link_timeout: Duration::from_secs(1),
            hsm_simulator: true,
            center_delay: Duration::ZERO,
            load_cards: 0,
        }
    }
}

/// A whole node on loopback ports: `init` into a directory, the center with the demo cards,
/// the front end, and optionally an HSM simulator; the terminals ready to connect.
pub struct Stack {
    /// What `init` wrote (keys, the issuer profile).
    pub init: init::InitReport,
    /// The front end.
    pub front: FrontHandle,
    /// The center.
    pub center: Center,
    /// The registered terminals, pointed at the front end (10 s answer timeout).
    pub terminals: Vec<TerminalConfig>,
    /// The center's database file.
    pub center_database: PathBuf,
    hsm: Option<(
        pboc_sam::hsm::ShutdownHandle,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("front", &self.front)
            .field("center", &self.center.local_addr())
            .field("terminals", &self.terminals.len())
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Runs `init` into `dir` (which must not hold one) and starts everything.
    ///
    /// # Errors
    /// [`DemoError`] naming the step that failed; what was started is stopped.
    pub async fn start(dir: &Path, options: &StackOptions) -> Result<Stack, DemoError> {
        let made = init::init_with(dir, options.terminals).map_err(|e| step_err("init")(&e))?;
        let mut config =
            Config::load(&dir.join("posp.toml")).map_err(|e| step_err("config")(&e))?;
        let mut center_config = config.center.clone().ok_or_else(|| DemoError {
            step: "config",
            detail: "init wrote no [center] section".to_owned(),
        })?;
        let lmk = Lmk::load(dir.join("lmk.txt")).map_err(|e| step_err("hsm")(&e))?;
        let rng = OsRandom::open().map_err(|e| step_err("hsm")(&e))?;
        let soft = Arc::new(SoftHsm::new(lmk, Box::new(rng)));

        // The center: registry seeded, one fault if asked.
        let registry =
            Registry::open(&center_config.database).map_err(|e| step_err("center")(&e))?;
        let keys = center_config
            .resolve_keys()
            .map_err(|e| step_err("center")(&e))?;
        seed_demo(&registry, &soft, keys.pvk.as_ref()).map_err(|e| step_err("center")(&e))?;
        seed_load_cards(&registry, &soft, keys.pvk.as_ref(), options.load_cards)
            .map_err(|e| step_err("center")(&e))?;
        center_config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        center_config.faults.delay = options.center_delay;
        if let Some(amount) = options.drop_amount {
            center_config.faults.drop = Some(FaultSelector {
                amounts: vec![amount],
                mtis: vec!["0200".to_owned()],
                ..FaultSelector::default()
            });
        }
        let mut hsm = None;
        let (center_hsm, front_hsm): (Arc<dyn SecurityModule>, Arc<dyn SecurityModule>) =
            if options.hsm_simulator {
                let server = HsmServer::builder(soft.clone())
                    .bind("127.0.0.1:0")
                    .await
                    .map_err(|e| step_err("hsm")(&e))?;
                let addr = server.local_addr().map_err(|e| step_err("hsm")(&e))?;
                hsm = Some((server.shutdown_handle(), tokio::spawn(server.run())));
                center_config.hsm.lmk_file = None;
                center_config.hsm.remote = vec![addr.to_string()];
                config.hsm.lmk_file = None;
                config.hsm.remote = vec![addr.to_string()];
                let center_hsm = open_hsm(&center_config)
                    .await
                    .map_err(|e| step_err("center")(&e))?;
                let front_hsm = build_hsm(&config)
                    .await
                    .map_err(|e| step_err("front")(&e))?;
                (center_hsm, front_hsm)
            } else {
                (soft.clone(), soft)
            };
        let stop_hsm = |hsm: Option<(pboc_sam::hsm::ShutdownHandle, _)>| {
            if let Some((h, _)) = hsm {
                h.shutdown();
            }
        };
        let center = match Center::start(&center_config, center_hsm, registry).await {
            Ok(c) => c,
            Err(e) => {
                stop_hsm(hsm);
                return Err(step_err("center")(&e));
            }
        };

        // The front end: loopback ports, a short link timeout and SAF interval.
        for l in &mut config.listeners {
            l.address = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        }
        if let Some(admin) = &mut config.admin {
            admin.address = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        }
        for link in &mut config.links {
            link.address = center.local_addr().to_string();
            link.timeout = options.link_timeout;
            link.reconnect_min = Duration::from_millis(50);
        }
        config.saf.retry_interval = Duration::from_millis(200);
        config.center = None;
        let front = match Front::start_with_hsm(config, front_hsm).await {
            Ok(f) => f,
            Err(e) => {
                center.shutdown().await;
                stop_hsm(hsm);
                return Err(step_err("front")(&e));
            }
        };
        let terminals = TerminalsFile::load(&dir.join("terminals.json"))
            .and_then(|file| file.terminal_configs(Some(&front.local_addr().to_string())))
            .map_err(|e| step_err("terminals")(&e));
        let stack = Stack {
            init: made,
            front,
            center,
            terminals: Vec::new(),
            center_database: center_config.database.clone(),
            hsm,
        };
        let mut terminals = match terminals {
            Ok(t) => t,
            Err(e) => {
                stack.stop().await;
                return Err(e);
            }
        };
        for t in &mut terminals {
            t.response_timeout = Duration::from_secs(10);
        }
        if !stack.front.wait_link_up(Duration::from_secs(5)).await {
            stack.stop().await;
            return Err(DemoError {
                step: "front",
                detail: "the link to the center did not come up within 5 s".to_owned(),
            });
        }
        Ok(Stack { terminals, ..stack })
    }

    /// Stops the front end, the center and the HSM simulator, in that order.
    pub async fn stop(self) {
        self.front.shutdown().await;
        self.center.shutdown().await;
        if let Some((handle, task)) = self.hsm {
            handle.shutdown();
            let _ = task.await;
        }
    }
}

type DayResult = (
    Vec<StepResult>,
    u64,
    u64,
    (u64, u64),
    LoadReport,
    Vec<crate::store::JournalEntry>,
    Option<u32>,
);

struct Script {
    steps: Vec<StepResult>,
    verbose: bool,
}

impl Script {
    fn record(
        &mut self,
        t: &Terminal,
        what: &'static str,
        amount: u64,
        expected: &'static str,
        o: &Outcome,
    ) {
        let got = o
            .response_code
            .clone()
            .unwrap_or_else(|| o.status.label().to_owned());
        let step = StepResult {
            terminal: t.terminal_id().to_owned(),
            what,
            operation: o.operation,
            amount,
            expected,
            got,
            line: o.to_string(),
        };
        if self.verbose {
            println!("{} {}", step.terminal, step.line);
        }
        self.steps.push(step);
    }
}

async fn business_day(stack: &Stack, options: &DemoOptions) -> Result<DayResult, DemoError> {
    let configs = &stack.terminals;
    let cards = demo_card_holders();
    let card = |i: usize| -> Result<&CardHolder, DemoError> {
        cards.get(i).ok_or_else(|| DemoError {
            step: "cards",
            detail: format!("no demo card {i}"),
        })
    };
    let (rich, poor, lost, limited) = (card(0)?, card(1)?, card(2)?, card(4)?);
    let mut s = Script {
        steps: Vec::new(),
        verbose: options.verbose,
    };

    // The market stall.
    let stall_config = configs.first().cloned().ok_or_else(|| DemoError {
        step: "terminals",
        detail: "no terminal in terminals.json".to_owned(),
    })?;
    let mut t = Terminal::new(stall_config);
    let o = t.sign_in().await;
    s.record(&t, "sign-in: working keys in field 62", 0, "00", &o);
    let o = t.echo().await;
    s.record(&t, "echo", 0, "00", &o);
    let o = t.balance(&rich.card, &rich.pin).await;
    s.record(&t, "balance inquiry", 0, "00", &o);
    let o = t.purchase(&rich.card, 12_345, &rich.pin).await;
    s.record(&t, "purchase", 12_345, "00", &o);
    if let Some(record) = o.record {
        let o = t.void(&record).await;
        s.record(&t, "void of that purchase", record.amount, "00", &o);
    }
    let o = t.purchase(&rich.card, 25_600, &rich.pin).await;
    s.record(&t, "purchase", 25_600, "00", &o);
    if let Some(record) = o.record {
        let o = t.refund(&record, 5_600).await;
        s.record(&t, "partial refund of that purchase", 5_600, "00", &o);
    }
    let o = t.purchase(&rich.card, DROPPED_AMOUNT, &rich.pin).await;
    s.record(
        &t,
        "purchase, center reply dropped: reversed",
        DROPPED_AMOUNT,
        "98",
        &o,
    );
    t.corrupt_next_mac();
    let o = t.purchase(&rich.card, 1_200, &rich.pin).await;
    s.record(&t, "purchase with a corrupted MAC", 1_200, "A0", &o);
    let o = t.purchase(&poor.card, 6_000, &poor.pin).await;
    s.record(&t, "purchase over the balance", 6_000, "51", &o);
    let o = t.purchase(&lost.card, 1_000, &lost.pin).await;
    s.record(&t, "purchase with a lost card", 1_000, "41", &o);
    let o = t.purchase(&limited.card, 15_000, &limited.pin).await;
    s.record(
        &t,
        "purchase over the card's single limit",
        15_000,
        "61",
        &o,
    );
    let o = t.settle().await;
    s.record(&t, "batch settlement (totals checked)", 0, "00", &o);
    let o = t.sign_off().await;
    s.record(&t, "sign-off", 0, "00", &o);

    // The load outlet, with a purse card personalized from the demo issuer profile.
    let outlet_config = configs.get(1).cloned().ok_or_else(|| DemoError {
        step: "terminals",
        detail: "a second terminal is needed".to_owned(),
    })?;
    let serial = purse_serial(DEMO_PURSES[0].serial)?;
    let image =
        personalize(&stack.init.keys.issuer, serial).map_err(|e| step_err("purse card")(&e))?;
    let vcard =
        VirtualCard::from_image(&image, Box::new(FixedRandom::new([0x5A, 0xA5, 0x3C, 0xC3])))
            .map_err(|e| step_err("purse card")(&e))?;
    let mut purse = MemoryTransport::new(vcard);
    let mut t = Terminal::new(outlet_config);
    let o = t.sign_in().await;
    s.record(&t, "sign-in", 0, "00", &o);
    for amount in [10_000u32, 5_000] {
        let o = t.load(&mut purse, None, amount).await;
        let confirmed = o.confirmation_code.as_deref() == Some("00");
        s.record(
            &t,
            if confirmed {
                "purse load (MAC1, MAC2, TAC confirmed)"
            } else {
                "purse load (TAC NOT confirmed)"
            },
            u64::from(amount),
            "00",
            &o,
        );
        if !confirmed && o.is_approved() {
            // Make the report show the missing confirmation as unexpected.
            if let Some(last) = s.steps.last_mut() {
                last.got = o
                    .confirmation_code
                    .clone()
                    .unwrap_or_else(|| "-".to_owned());
            }
        }
    }
    let purse_balance = purse.handler().balance(Application::Ep);
    let o = t.settle().await;
    s.record(&t, "batch settlement (loads in field 48)", 0, "00", &o);
    let o = t.sign_off().await;
    s.record(&t, "sign-off", 0, "00", &o);

    // The closing burst: every terminal, a new batch, purchases and voids on the rich card.
    let mut burst_configs = configs.clone();
    for c in &mut burst_configs {
        c.batch = 2;
        c.first_stan = 1_000;
    }
    let mix: Mix = "purchase=70,void=30"
        .parse()
        .map_err(|e: String| DemoError {
            step: "burst",
            detail: e,
        })?;
    let burst = run_load(LoadConfig {
        terminals: burst_configs,
        transactions: options.burst,
        mix,
        cards: vec![rich.clone()],
        progress: false,
        seed: 7,
        sign_in: true,
    })
    .await
    .map_err(|e| step_err("burst")(&e))?;

    // The SAF: wait until the dropped purchase's reversal is acknowledged.
    let shared = stack.front.shared();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut entries;
    loop {
        entries = shared
            .store
            .find(&EntryFilter::all(1_000_000))
            .await
            .map_err(|e| step_err("journal")(&e))?;
        let waiting = entries
            .iter()
            .any(|e| matches!(e.state, TxnState::TimedOut | TxnState::ReversalQueued));
        if !waiting || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reversed = entries
        .iter()
        .filter(|e| e.state == TxnState::Reversed)
        .count() as u64;
    let still = entries
        .iter()
        .filter(|e| matches!(e.state, TxnState::TimedOut | TxnState::ReversalQueued))
        .count() as u64;
    let depths = shared
        .store
        .reader()
        .saf_depths()
        .map_err(|e| step_err("journal")(&e))?;
    let saf_left = depths
        .iter()
        .fold((0, 0), |(q, x), d| (q + d.queued, x + d.exception));
    Ok((
        s.steps,
        reversed + still,
        reversed,
        saf_left,
        burst,
        entries,
        purse_balance,
    ))
}

fn purse_serial(digits: &str) -> Result<[u8; 8], DemoError> {
    let bytes = hex::decode(digits).map_err(|e| step_err("purse card")(&e))?;
    bytes.try_into().map_err(|_| DemoError {
        step: "purse card",
        detail: format!("serial {digits} is not 16 digits"),
    })
}

/// Seeds `n` load-test cards, each with its own account.
fn seed_load_cards(
    registry: &Registry,
    hsm: &SoftHsm,
    pvk: Option<&pboc_sam::KeyRef>,
    n: usize,
) -> Result<(), crate::center::CenterError> {
    use crate::loadtest::{LOAD_CARD_BALANCE, LOAD_CARD_PIN, load_card_pan};
    for i in 0..n {
        let pan = load_card_pan(i);
        let account = format!("LOAD-{i:05}");
        registry.add_account(&account, LOAD_CARD_BALANCE, "load test")?;
        let pin_data = match pvk {
            Some(k) => Some(crate::center::pin_verification_data(
                hsm,
                k,
                &pan,
                LOAD_CARD_PIN,
            )?),
            None => None,
        };
        registry.add_card(&crate::center::NewCard {
            number: pan,
            kind: crate::center::CardKind::Bank,
            account,
            status: crate::center::CardStatus::Active,
            expiry: "3012".to_owned(),
            pin_data,
            single_limit: None,
            daily_limit: Some(u64::MAX / 4),
        })?;
    }
    Ok(())
}

/// The center's kind name of a journal kind that moves money or asks for a balance.
fn center_kind(kind: TxnKind) -> Option<&'static str> {
    Some(match kind {
        TxnKind::Purchase => "purchase",
        TxnKind::PurchaseVoid => "void",
        TxnKind::Refund => "refund",
        TxnKind::Balance => "balance",
        TxnKind::Load => "load",
        TxnKind::LoadConfirm => "load_confirm",
        _ => return None,
    })
}

fn reconcile(
    journal: &[crate::store::JournalEntry],
    registry: &Registry,
) -> Result<Reconciliation, DemoError> {
    let mut r = Reconciliation::default();
    for e in journal {
        let Some(kind) = center_kind(e.kind) else {
            continue;
        };
        if e.state != TxnState::Approved {
            continue;
        }
        let amount = e.amount.unsigned_abs();
        r.journal.entry(kind).or_default().add(amount);
        let signed = i64::try_from(amount).unwrap_or(i64::MAX);
        match e.kind {
            TxnKind::Purchase | TxnKind::Load => r.journal_net += signed,
            TxnKind::PurchaseVoid | TxnKind::Refund => r.journal_net -= signed,
            _ => {}
        }
    }
    let auths = registry
        .authorizations()
        .map_err(|e| step_err("center")(&e))?;
    for a in &auths {
        let kind: &'static str = match a.kind.as_str() {
            "purchase" => "purchase",
            "void" => "void",
            "refund" => "refund",
            "balance" => "balance",
            "load" => "load",
            "load_confirm" => "load_confirm",
            _ => continue,
        };
        if a.response_code != "00" || a.state == AuthState::Reversed {
            continue;
        }
        r.center.entry(kind).or_default().add(a.amount);
    }
    let mut opening = 0i64;
    let mut now = 0i64;
    let accounts = DEMO_CARDS.iter().map(|c| (c.account, c.balance)).chain(
        DEMO_PURSES
            .iter()
            .map(|p| (p.funding_account, p.funding_balance)),
    );
    let mut seen = std::collections::BTreeSet::new();
    for (account, balance) in accounts {
        if !seen.insert(account) {
            continue;
        }
        opening += balance;
        now += registry
            .balance(account)
            .map_err(|e| step_err("center")(&e))?
            .unwrap_or(0);
    }
    r.center_net = opening - now;
    Ok(r)
}

/// Arguments of `posp-node demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the node directory here (it must not hold an earlier `init`); default: a
    /// temporary directory, removed at the end.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Purchases (and voids) per terminal in the closing burst.
    #[arg(long, default_value_t = 50)]
    pub burst: u32,
    /// Print each transaction as it happens.
    #[arg(long, short)]
    pub verbose: bool,
}

/// `posp-node demo`: exit 0 when the day went as scripted, 1 when it did not, 2 when the
/// demo could not start.
pub fn run(args: DemoArgs) -> ExitCode {
    crate::cli::init_tracing("error");
    let options = DemoOptions {
        data_dir: args.data_dir,
        burst: args.burst,
        verbose: args.verbose,
    };
    crate::cli::run_report(run_demo(&options), DemoReport::success)
}
