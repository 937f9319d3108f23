//! The data-center host (`posp-node center --config FILE`): the authorization host the
//! front ends send transactions to, with the card and account registry, the issuer's PBOC
//! checks and fault injection for tests.
//!
//! # Wire
//!
//! TCP, `len2` framing (2-byte length), `cups-pos` messages as `PROTOCOL.md` describes for
//! the front -> center link. Requests from one connection are processed concurrently (at
//! most `max_in_flight`) and answered in completion order; the front end matches replies by
//! MTI class + 32 + 41 + 11, which every reply echoes.
//!
//! # Per request
//!
//! 1. 08xx (the front end's echo): `00` at once, no MAC.
//! 2. Field 64 must verify (ANSI X9.19 under the ZAK, through the HSM): otherwise `A0`.
//! 3. Field 32 must be a configured acquirer: otherwise `03`.
//! 4. Routing by MTI and the first two digits of field 3; anything else is `12`; a missing
//!    field 11, 41 or (except reversals) 2 is `30`.
//! 5. The matching key 32 + 41 + 11 within `duplicate_window`: a repeat of an answered request
//!    (same MTI, field 3, amount and card) gets the stored response byte for byte; another
//!    request with the key, or a repeat while the first is being processed, gets `94`.
//! 6. The decision (below), the response with 37 (RRN `Y`+day of year+8-digit sequence) and
//!    38 on approval, signed with X9.19 under the ZAK, stored with the authorization.
//!
//! | kind | checks, in order |
//! |---|---|
//! | purchase (0200/00) | card known (`14`), a bank card (`57`), status (lost `41`, stolen `43`, blocked `62`), blacklist (`62`), expiry and field 14 (`54`), PIN tries (`75`), PIN (`55`, undecodable block `99`), amount > 0 (`13`), single and daily limits (`61`), balance (`51`) -> debit |
//! | balance (0200/31) | as purchase without the amounts; field 54 = `10 02 156 C/D n12` |
//! | void (0200/20) | the original purchase by RRN (field 37) for the same card (`25`), still approved and not refunded (`12`), same amount (`64`) -> credit, original voided |
//! | refund (0220/20) | as void, amount up to what is left to refund (`64`) -> credit |
//! | purse load (0200/60) | field 55 tags DF01-DF09 (`30`), field 2 = DF01, a purse card (`14`/`57`), status, blacklist, expiry, amount (`13`), purse ceiling DF02 + amount (`61`), funding balance (`51`), MAC1 verified by the HSM (`59`) -> debit the funding account, reply field 55 = DF10 MAC2, DF11 host date, DF12 host time |
//! | load confirmation (0220/60) | the latest approved load at this terminal for this card and amount (`25`), TAC (DF13) verified with the card's DTK by the HSM and recorded: `00`, or `59` (recorded as failed) |
//! | reversal (0400/0401) | below |
//!
//! **PINs.** The registry keeps, per card, its ISO format 0 PIN block under the PIN
//! verification key (PVK, a ZPK in the HSM). The request's block (under the ZPK) is
//! translated by the HSM to the PVK and compared in constant time: the PIN never exists in
//! clear outside the HSM. Voids and refunds are not PIN-checked (they only return money).
//! Without a configured PVK, PINs are not verified.
//!
//! **Reversals.** The original is found by 32 + 41 + its STAN: digits 7-12 of field 61 (the
//! front end puts the original's upstream STAN there, and in field 11), within
//! `duplicate_window`. An approved original is undone (purchase: credited back less what was
//! refunded; void: debited again and the purchase restored; refund: debited again; load: the
//! funding account credited) and marked reversed; a declined one has nothing to undo. Both
//! get `00`. A field 4 that differs from the original's gets `64`. An unknown original gets
//! `25` and the reversal is remembered: an original arriving later with that key is
//! declined `05` and moves nothing. A repeated reversal (0400 again or 0401) gets the stored
//! answer byte for byte.
//!
//! **Journal.** The center keeps its own tables in its own SQLite file (see [`registry`])
//! rather than the front end's journal: its records are authorizations and balances, not
//! front-end states and SAF queues. Every request and response is journaled with its PAN
//! masked and a masked description.
//!
//! # From Rust
//!
//! ```no_run
//! # async fn demo() -> Result<(), posp_node::center::CenterError> {
//! use posp_node::center::{Center, CenterConfig, Registry, open_hsm};
//! let config = CenterConfig::load("posp.toml".as_ref())?;
//! let registry = Registry::open(&config.database)?;
//! let hsm = open_hsm(&config).await?;
//! let center = Center::start(&config, hsm, registry).await?;
//! println!("listening on {}", center.local_addr());
//! center.shutdown().await;
//! # Ok(()) }
//! ```

pub mod authorize;
pub mod clock;
pub mod config;
pub mod demo_cards;
pub mod faults;
pub mod registry;
pub mod server;

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use pboc_sam::{HsmClient, HsmPool, Lmk, RandomSource, SecurityModule, SoftHsm};

pub use config::{
    CardLimits, CenterConfig, CenterHsmConfig, CenterKeys, FaultSelector, FaultsConfig, KeySpec,
    LateFault,
};
pub use demo_cards::{
    DEMO_CARDS, DEMO_PURSES, DemoCard, DemoPurse, pin_verification_data, seed_demo,
};
pub use registry::{AuthRecord, AuthState, CardKind, CardRecord, CardStatus, NewCard, Registry};
pub use server::Center;

/// What can go wrong in the center, saying what and where.
#[derive(Debug, thiserror::Error)]
pub enum CenterError {
    /// A configuration value is wrong.
    #[error("config {key}: {reason}")]
    Config {
        /// The file or key (`center.keys.zak.kcv`).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A database operation failed.
    #[error("database: {op}: {detail}")]
    Database {
        /// What the center was doing.
        op: &'static str,
        /// What SQLite said.
        detail: String,
    },
    /// An HSM operation failed.
    #[error("HSM: {at}: {detail}")]
    Hsm {
        /// The operation.
        at: &'static str,
        /// The HSM's error.
        detail: String,
    },
    /// A message could not be built.
    #[error("encode: {0}")]
    Encode(String),
    /// A socket or file operation failed.
    #[error("{at}: {detail}")]
    Io {
        /// What and where.
        at: String,
        /// The OS error.
        detail: String,
    },
}

impl CenterError {
    pub(crate) fn config(key: impl Into<String>, reason: impl Into<String>) -> CenterError {
        CenterError::Config {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The operating system's random source (`/dev/urandom`) for the in-process SoftHsm.
#[derive(Debug)]
struct OsRandom(Mutex<File>);

impl RandomSource for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        let mut f = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = f.read_exact(buf) {
            // Never go on with predictable key material or PIN fill.
            eprintln!("fatal: reading /dev/urandom failed: {e}");
            std::process::abort();
        }
    }
}

/// Loads the configured LMK into a SoftHsm (randomness from `/dev/urandom`).
///
/// # Errors
/// [`CenterError::Config`] when the configuration has no LMK file or it cannot be read.
pub fn open_soft_hsm(config: &CenterConfig) -> Result<SoftHsm, CenterError> {
    let Some(path) = &config.hsm.lmk_file else {
        return Err(CenterError::config(
            "center.hsm.lmk_file",
            "no LMK file configured",
        ));
    };
    let lmk = Lmk::load(path).map_err(|e| {
        CenterError::config("center.hsm.lmk_file", format!("{}: {e}", path.display()))
    })?;
    let rng = File::open("/dev/urandom").map_err(|e| CenterError::Io {
        at: "open /dev/urandom".to_owned(),
        detail: e.to_string(),
    })?;
    Ok(SoftHsm::new(lmk, Box::new(OsRandom(Mutex::new(rng)))))
}

/// The configured HSM: a SoftHsm on the LMK file, or a pool of host-protocol clients.
/// Needs a tokio runtime.
///
/// # Errors
/// [`CenterError::Config`] or [`CenterError::Hsm`].
pub async fn open_hsm(config: &CenterConfig) -> Result<Arc<dyn SecurityModule>, CenterError> {
    if config.hsm.lmk_file.is_some() {
        return Ok(Arc::new(open_soft_hsm(config)?));
    }
    let mut pool = HsmPool::builder();
    for addr in &config.hsm.remote {
        let client = HsmClient::builder(addr.clone())
            .request_timeout(config.hsm.request_timeout)
            .build()
            .map_err(|e| CenterError::Hsm {
                at: "HSM client",
                detail: format!("{addr}: {e}"),
            })?;
        pool.member(addr.clone(), Arc::new(client));
    }
    pool.attempt_timeout(config.hsm.request_timeout);
    Ok(Arc::new(pool.build().await))
}

/// `posp-node center`: the arguments.
#[derive(Debug, clap::Args)]
pub struct CenterArgs {
    /// The configuration file: its `[center]` section, or a file of center keys alone.
    #[arg(long)]
    pub config: PathBuf,
    /// Add the demo cards and accounts to the registry first (needs `hsm.lmk_file`; cards
    /// already present are left alone).
    #[arg(long)]
    pub seed_demo: bool,
}

/// Runs the center until Ctrl-C or SIGTERM. Errors print `error: ...` and exit 2.
pub fn run(args: CenterArgs) -> ExitCode {
    let runtime = match crate::cli::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn serve(args: CenterArgs) -> Result<(), CenterError> {
    crate::cli::init_tracing("info");
    let config = CenterConfig::load(&args.config)?;
    let registry = Registry::open(&config.database)?;
    if args.seed_demo {
        let hsm = open_soft_hsm(&config)?;
        let keys = config.resolve_keys()?;
        let n = seed_demo(&registry, &hsm, keys.pvk.as_ref())?;
        eprintln!("seeded {n} demo cards into {}", registry.path().display());
    }
    let hsm = open_hsm(&config).await?;
    let center = Center::start(&config, hsm, registry).await?;
    eprintln!("center listening on {}", center.local_addr());
    crate::cli::wait_for_signal().await;
    center.shutdown().await;
    Ok(())
}
