//! The center's database: the registry of cards and accounts, the blacklist, the
//! authorizations it gave, and its message journal — one SQLite file (WAL,
//! `synchronous=FULL`), one connection.
//!
//! **Group commit.** The request path (`Registry::call`) hands each unit of work (a
//! decision: check, debit, record; a journal line) to one committer thread, which runs the
//! units in arrival order inside one transaction, each in its own savepoint (a unit that
//! fails is rolled back alone), commits once, and only then gives every unit its result. A
//! decision is therefore answered only once it is durable, the decisions stay serial (each
//! sees the balances the previous one left), and one fsync serves as many requests as
//! arrived while the previous commit was being written. The synchronous methods
//! (`add_account`, `card` ...) take the same connection directly, between batches.
//!
//! The committer never waits inside a transaction for anything but SQLite: a decision's
//! unit builds and stores its response itself, and the response's MAC is added after the
//! commit (see [`authorize`](super::authorize)).
//!
//! | table | what |
//! |---|---|
//! | `accounts` | id, balance in fen, owner |
//! | `cards` | bank cards (PAN) and purse cards (application serial as 16 digits): kind, account (a purse's funding account), status, expiry YYMM, PIN verification data, PIN tries, limits |
//! | `blacklist` | card numbers refused whatever their status (`62`) |
//! | `auths` | one row per transaction message answered: matching key (32, 41, 11), kind, amount, card, account, response code, RRN, authorization code, state, the original it refers to, the response as sent (replayed to duplicates), load data |
//! | `card_spend` | per local date and card: what the card's approved purchases of that date add up to, less what was refunded (the daily limit), kept in step with `auths` |
//! | `messages` | the journal: every request and response, its masked PAN, and the message itself without the fields a description masks (card numbers, tracks, PIN blocks, MACs) or the expiry and key fields; described, masked, when read |
//! | `counters` | the RRN sequence |
//!
//! PIN verification data is the card's ISO 9564 format 0 PIN block encrypted under the PIN
//! verification key (a ZPK held by the HSM), never a clear PIN: see
//! [`pin_verification_data`](super::demo_cards::pin_verification_data).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

use iso8583_wire::{decode_partial, specs};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::CenterError;

/// `execute` and `query_row` through the connection's prepared-statement cache: the center
/// runs the same few statements for every request, and parsing them again each time was a
/// large part of its committer's time.
pub(crate) trait Cached {
    /// [`Connection::execute`] with a cached statement.
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    /// [`Connection::query_row`] with a cached statement.
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// A card's status in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardStatus {
    /// In use.
    Active,
    /// Reported lost: `41`.
    Lost,
    /// Reported stolen: `43`.
    Stolen,
    /// Blocked by the issuer: `62`.
    Blocked,
}

impl CardStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CardStatus::Active => "active",
            CardStatus::Lost => "lost",
            CardStatus::Stolen => "stolen",
            CardStatus::Blocked => "blocked",
        }
    }

    /// The status for a stored name.
    pub fn parse(s: &str) -> Option<CardStatus> {
        Some(match s {
            "active" => CardStatus::Active,
            "lost" => CardStatus::Lost,
            "stolen" => CardStatus::Stolen,
            "blocked" => CardStatus::Blocked,
            _ => return None,
        })
    }
}

/// What kind of card a registry entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardKind {
    /// A bank card: purchases, voids, refunds and balance inquiries debit or credit its
    /// account.
    Bank,
    /// A PBOC purse card, known by its application serial: loads debit its funding account.
    Purse,
}

impl CardKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CardKind::Bank => "bank",
            CardKind::Purse => "purse",
        }
    }

    fn parse(s: &str) -> Option<CardKind> {
        match s {
            "bank" => Some(CardKind::Bank),
            "purse" => Some(CardKind::Purse),
            _ => None,
        }
    }
}

/// A card to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCard {
    /// The PAN (bank card, 13 to 19 digits) or the application serial (purse, 16 digits).
    pub number: String,
    /// Bank or purse.
    pub kind: CardKind,
    /// The account it debits (a purse's funding account). Must exist.
    pub account: String,
    /// Its status.
    pub status: CardStatus,
    /// Expiry, `YYMM`.
    pub expiry: String,
    /// PIN verification data (the format 0 PIN block under the PVK); `None`: no PIN.
    pub pin_data: Option<[u8; 8]>,
    /// The largest single purchase in fen; `None`: the configured default.
    pub single_limit: Option<u64>,
    /// The most spent per local day in fen; `None`: the configured default.
    pub daily_limit: Option<u64>,
}

/// A registered card as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct CardRecord {
    /// Row id.
    pub id: i64,
    /// The PAN or purse serial.
    pub number: String,
    /// Bank or purse.
    pub kind: CardKind,
    /// The account.
    pub account: String,
    /// Status.
    pub status: CardStatus,
    /// Expiry `YYMM`.
    pub expiry: String,
    /// PIN verification data.
    pub pin_data: Option<[u8; 8]>,
    /// Wrong PINs in a row.
    pub pin_tries: u32,
    /// Single purchase limit (fen), if the card has its own.
    pub single_limit: Option<u64>,
    /// Daily limit (fen), if the card has its own.
    pub daily_limit: Option<u64>,
}

impl std::fmt::Debug for CardRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardRecord")
            .field("id", &self.id)
            .field("number", &iso8583_wire::describe::mask_pan(&self.number))
            .field("kind", &self.kind)
            .field("account", &self.account)
            .field("status", &self.status)
            .field("expiry", &self.expiry)
            .field("pin", &self.pin_data.map(|_| "<set>"))
            .field("pin_tries", &self.pin_tries)
            .finish_non_exhaustive()
    }
}

/// The state of an authorization row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthState {
    /// Approved and in effect.
    Approved,
    /// Declined: nothing moved.
    Declined,
    /// Approved, then undone by a reversal.
    Reversed,
    /// A purchase undone by a void.
    Voided,
}

impl AuthState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthState::Approved => "approved",
            AuthState::Declined => "declined",
            AuthState::Reversed => "reversed",
            AuthState::Voided => "voided",
        }
    }

    fn parse(s: &str) -> Option<AuthState> {
        Some(match s {
            "approved" => AuthState::Approved,
            "declined" => AuthState::Declined,
            "reversed" => AuthState::Reversed,
            "voided" => AuthState::Voided,
            _ => return None,
        })
    }
}

/// One authorization as stored (for inspection and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRecord {
    /// Row id.
    pub id: i64,
    /// `purchase`, `void`, `refund`, `balance`, `load`, `load_confirm`, `reversal`.
    pub kind: String,
    /// Request MTI.
    pub mti: String,
    /// Field 32.
    pub acquirer: String,
    /// Field 41.
    pub terminal: String,
    /// Field 11 (for a reversal: the original's STAN).
    pub stan: u32,
    /// Amount in fen.
    pub amount: u64,
    /// Response code.
    pub response_code: String,
    /// RRN, on approval.
    pub rrn: Option<String>,
    /// Authorization code, on approval.
    pub auth_code: Option<String>,
    /// State.
    pub state: AuthState,
    /// The row this one refers to (void, refund, reversal, load confirmation).
    pub original_id: Option<i64>,
    /// The response body as sent.
    pub response: Option<Vec<u8>>,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalLine {
    /// `in` or `out`.
    pub direction: String,
    /// MTI.
    pub mti: String,
    /// Field 11.
    pub stan: Option<u32>,
    /// Field 41.
    pub terminal: Option<String>,
    /// The PAN or purse serial, masked.
    pub pan_masked: Option<String>,
    /// Field 39 of responses.
    pub response_code: Option<String>,
    /// The masked description of the message.
    pub text: String,
}

const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    balance INTEGER NOT NULL,
    owner TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS cards (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('bank', 'purse')),
    account_id TEXT NOT NULL REFERENCES accounts(id),
    status TEXT NOT NULL CHECK (status IN ('active', 'lost', 'stolen', 'blocked')),
    expiry TEXT NOT NULL,
    pin_data BLOB,
    pin_tries INTEGER NOT NULL DEFAULT 0,
    single_limit INTEGER,
    daily_limit INTEGER
);
CREATE TABLE IF NOT EXISTS blacklist (
    number TEXT PRIMARY KEY,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS auths (
    id INTEGER PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    local_date TEXT NOT NULL,
    kind TEXT NOT NULL,
    mti TEXT NOT NULL,
    acquirer TEXT NOT NULL,
    terminal TEXT NOT NULL,
    merchant TEXT NOT NULL,
    stan INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    card_id INTEGER,
    account_id TEXT,
    amount INTEGER NOT NULL,
    response_code TEXT NOT NULL,
    rrn TEXT,
    auth_code TEXT,
    state TEXT NOT NULL,
    original_id INTEGER,
    refunded INTEGER NOT NULL DEFAULT 0,
    load_data TEXT,
    response BLOB
);
CREATE INDEX IF NOT EXISTS auths_key ON auths (acquirer, terminal, stan);
CREATE INDEX IF NOT EXISTS auths_rrn ON auths (rrn);
-- The daily limit reads one row: a card's spending of a day (its approved purchases less
-- what was refunded) is a running total, kept in step with every purchase, void, refund and
-- reversal. It replaces the index auths_card_spend (card_id, local_date, kind, state,
-- amount, refunded), which the check summed but which every purchase wrote at a page of its
-- own card: one more WAL page per card per group commit. card_spend is keyed date first, so
-- one day's rows are contiguous and a commit touches few pages. A database without it gets
-- it filled from auths, and that index dropped, on open (add_card_spend); the index before
-- that one, auths_card_day (card_id, local_date), made the check read every row of the day.
DROP INDEX IF EXISTS auths_card_day;
CREATE TABLE IF NOT EXISTS card_spend (
    local_date TEXT NOT NULL,
    card_id INTEGER NOT NULL,
    spent INTEGER NOT NULL,
    PRIMARY KEY (local_date, card_id)
) WITHOUT ROWID;
-- A load confirmation looks its load up by card (find_load): only load rows are in this
-- index, so purchases do not write it.
CREATE INDEX IF NOT EXISTS auths_load ON auths (card_id) WHERE kind = 'load';
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    direction TEXT NOT NULL,
    mti TEXT NOT NULL,
    acquirer TEXT,
    terminal TEXT,
    stan INTEGER,
    pan_masked TEXT,
    response_code TEXT,
    text TEXT NOT NULL,
    spec TEXT,
    message BLOB
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> CenterError {
    move |source| CenterError::Database {
        op,
        detail: source.to_string(),
    }
}

/// Runs a statement without parameters through the statement cache (`BEGIN`, `COMMIT`,
/// savepoints: the committer runs them for every batch and unit, and parsing them each
/// time was measurable).
pub(crate) fn run_cached(c: &Connection, stmt: &str) -> rusqlite::Result<()> {
    c.prepare_cached(stmt)?.execute([]).map(|_| ())
}

/// The statements of one savepoint level: open, release, roll back.
pub(crate) struct SavepointSql {
    open: &'static str,
    release: &'static str,
    rollback: &'static str,
}

/// The committer's savepoint around each unit of work.
pub(crate) const UNIT: SavepointSql = SavepointSql {
    open: "SAVEPOINT unit",
    release: "RELEASE unit",
    rollback: "ROLLBACK TO unit",
};

/// A savepoint inside a unit (a decision that may fail while the unit's journal line stays).
pub(crate) const INNER: SavepointSql = SavepointSql {
    open: "SAVEPOINT inner",
    release: "RELEASE inner",
    rollback: "ROLLBACK TO inner",
};

/// A unit of work's first stage: `f` in its own savepoint of the batch's transaction, or,
/// when the batch did not begin (`None`), an error (the delivery reports why).
fn run_unit<T>(
    c: Option<&mut Connection>,
    f: impl FnOnce(&Connection) -> Result<T, CenterError>,
) -> Result<T, CenterError> {
    match c {
        Some(c) => in_savepoint(c, &UNIT, f),
        None => Err(not_run()),
    }
}

/// The error of a unit whose batch did not begin (the delivery reports why).
fn not_run() -> CenterError {
    CenterError::Database {
        op: "group commit",
        detail: "not run".to_owned(),
    }
}

/// Runs `f` in a savepoint (statements from the cache): an error from `f` rolls back `f`'s
/// work alone and is returned; what was written before the savepoint stays.
pub(crate) fn in_savepoint<T>(
    c: &Connection,
    level: &SavepointSql,
    f: impl FnOnce(&Connection) -> Result<T, CenterError>,
) -> Result<T, CenterError> {
    run_cached(c, level.open).map_err(sql("savepoint"))?;
    let result = f(c).and_then(|v| {
        run_cached(c, level.release)
            .map(|()| v)
            .map_err(sql("release savepoint"))
    });
    if result.is_err() {
        // ROLLBACK TO keeps the savepoint open: release it too.
        run_cached(c, level.rollback)
            .and_then(|()| run_cached(c, level.release))
            .map_err(sql("roll back savepoint"))?;
    }
    result
}

/// The most units of work committed in one transaction.
const MAX_BATCH: usize = 256;

/// A unit of work for the committer: runs inside the batch's transaction (or, given `None`,
/// not at all because the batch could not begin) and returns how to answer its caller once
/// the batch's commit has succeeded (`Ok`) or failed (the reason).
type Job = Box<dyn FnOnce(Option<&mut Connection>) -> Deliver + Send>;

type Deliver = Box<dyn FnOnce(Result<(), String>) + Send>;

/// The center's database. Cloning shares the connection and the committer.
#[derive(Clone)]
pub struct Registry {
    conn: Arc<Mutex<Connection>>,
    jobs: Arc<Mutex<Sender<Job>>>,
    path: PathBuf,
}

/// The committer thread: batches of jobs, one transaction and one commit each.
fn committer(conn: Arc<Mutex<Connection>>, jobs: Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut c = conn.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = run_cached(&c, "BEGIN IMMEDIATE") {
            drop(c);
            first(None)(Err(format!("begin: {e}")));
            continue;
        }
        let mut done = vec![first(Some(&mut c))];
        while done.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => done.push(job(Some(&mut c))),
                Err(_) => break,
            }
        }
        let committed = run_cached(&c, "COMMIT").map_err(|e| format!("commit: {e}"));
        if committed.is_err() {
            let _ = c.execute_batch("ROLLBACK");
        }
        drop(c);
        for deliver in done {
            deliver(committed.clone());
        }
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Opens (creating if needed) the database at `path`: WAL, `synchronous=FULL`.
    ///
    /// # Errors
    /// [`CenterError::Database`] naming the file.
    pub fn open(path: &Path) -> Result<Registry, CenterError> {
        let open = |e: rusqlite::Error| CenterError::Database {
            op: "open center database",
            detail: format!("{}: {e}", path.display()),
        };
        let conn = Connection::open(path).map_err(open)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .map_err(open)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open)?;
        Self::init(conn, path.to_path_buf())
    }

    /// An in-memory database (tests, demos).
    ///
    /// # Errors
    /// [`CenterError::Database`].
    pub fn open_in_memory() -> Result<Registry, CenterError> {
        let conn = Connection::open_in_memory().map_err(sql("open in-memory database"))?;
        Self::init(conn, PathBuf::from(":memory:"))
    }

    fn init(mut conn: Connection, path: PathBuf) -> Result<Registry, CenterError> {
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql("enable foreign keys"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql("set busy timeout"))?;
        conn.set_prepared_statement_cache_capacity(64);
        // Query planner stability: without it, SQLite marks a statement with `col = ?`
        // terms to be re-planned when its parameters are cleared, which the statement
        // cache does after every use, so every cached statement was parsed again each time.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(sql("enable query planner stability"))?;
        // The schema and its migrations in one transaction: a database is either brought
        // up to date whole or left as it was.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin the schema update"))?;
        let had_card_spend = has_table(&tx, "card_spend")?;
        tx.execute_batch(SCHEMA)
            .map_err(sql("create center schema"))?;
        add_card_spend(&tx, had_card_spend)?;
        add_message_columns(&tx)?;
        tx.commit().map_err(sql("commit the schema update"))?;
        let conn = Arc::new(Mutex::new(conn));
        let (tx, rx) = channel::<Job>();
        let shared = conn.clone();
        std::thread::Builder::new()
            .name("center-committer".to_owned())
            .spawn(move || committer(shared, rx))
            .map_err(|e| CenterError::Database {
                op: "start the committer thread",
                detail: e.to_string(),
            })?;
        Ok(Registry {
            conn,
            jobs: Arc::new(Mutex::new(tx)),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection (blocking the calling thread while another holds it).
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, CenterError>,
    ) -> Result<T, CenterError> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn)
    }

    /// Runs `f` as one unit of work of the committer (see the module documentation): in
    /// its own savepoint inside the current batch's transaction, its result given back only
    /// after the batch is committed. An error from `f` rolls back `f`'s work alone.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, CenterError> + Send + 'static,
    ) -> Result<T, CenterError> {
        self.unit(move |c| run_unit(c, f)).await
    }

    /// Runs `f` as one unit of work of the committer, as [`call`](Self::call) does, for
    /// work that cannot fail as a whole: it handles its own errors (with savepoints of its
    /// own around the parts that must be undone together), so it needs no savepoint
    /// around it. The error is the batch's (not begun, or its commit failed).
    pub(crate) async fn call_infallible<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> T + Send + 'static,
    ) -> Result<T, CenterError> {
        self.unit(move |c| match c {
            Some(c) => Ok(f(c)),
            None => Err(not_run()),
        })
        .await
    }

    /// Hands `run` to the committer and returns its result once the batch is committed.
    async fn unit<T: Send + 'static>(
        &self,
        run: impl FnOnce(Option<&mut Connection>) -> Result<T, CenterError> + Send + 'static,
    ) -> Result<T, CenterError> {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, CenterError>>();
        let job: Job = Box::new(move |c: Option<&mut Connection>| {
            let result = run(c);
            Box::new(move |committed: Result<(), String>| {
                let out = match committed {
                    Ok(()) => result,
                    Err(detail) => Err(CenterError::Database {
                        op: "group commit",
                        detail,
                    }),
                };
                let _ = tx.send(out);
            })
        });
        self.submit(job)?;
        rx.await.map_err(|_| CenterError::Database {
            op: "group commit",
            detail: "the committer dropped the request".to_owned(),
        })?
    }

    fn submit(&self, job: Job) -> Result<(), CenterError> {
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| CenterError::Database {
                op: "group commit",
                detail: "the committer thread has stopped".to_owned(),
            })
    }

    /// Adds an account with an opening balance (fen).
    ///
    /// # Errors
    /// [`CenterError::Database`] (for example an id that exists).
    pub fn add_account(&self, id: &str, balance: i64, owner: &str) -> Result<(), CenterError> {
        self.with(|c| {
            c.execute_cached(
                "INSERT INTO accounts (id, balance, owner) VALUES (?1, ?2, ?3)",
                params![id, balance, owner],
            )
            .map_err(sql("add account"))?;
            Ok(())
        })
    }

    /// An account's balance (fen), if it exists.
    ///
    /// # Errors
    /// [`CenterError::Database`].
    pub fn balance(&self, account: &str) -> Result<Option<i64>, CenterError> {
        self.with(|c| account_balance(c, account))
    }

    /// Registers a card.
    ///
    /// # Errors
    /// [`CenterError::Database`] (a number that exists, an unknown account).
    pub fn add_card(&self, card: &NewCard) -> Result<(), CenterError> {
        self.with(|c| {
            c.execute_cached(
                "INSERT INTO cards (number, kind, account_id, status, expiry, pin_data, \
                 single_limit, daily_limit) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    card.number,
                    card.kind.as_str(),
                    card.account,
                    card.status.as_str(),
                    card.expiry,
                    card.pin_data.map(|p| p.to_vec()),
                    card.single_limit.map(to_i64),
                    card.daily_limit.map(to_i64),
                ],
            )
            .map_err(sql("add card"))?;
            Ok(())
        })
    }

    /// Changes a card's status; `false` if no such card.
    ///
    /// # Errors
    /// [`CenterError::Database`].
    pub fn set_status(&self, number: &str, status: CardStatus) -> Result<bool, CenterError> {
        self.with(|c| {
            let n = c
                .execute_cached(
                    "UPDATE cards SET status = ?2 WHERE number = ?1",
                    params![number, status.as_str()],
                )
                .map_err(sql("set card status"))?;
            Ok(n == 1)
        })
    }

    /// Puts a card number on the blacklist (idempotent).
    ///
    /// # Errors
    /// [`CenterError::Database`].
    pub fn blacklist(&self, number: &str, reason: &str) -> Result<(), CenterError> {
        self.with(|c| {
            c.execute_cached(
                "INSERT OR REPLACE INTO blacklist (number, reason) VALUES (?1, ?2)",
                params![number, reason],
            )
            .map_err(sql("blacklist card"))?;
            Ok(())
        })
    }

    /// A card by PAN or purse serial.
    ///
    /// # Errors
    /// [`CenterError::Database`].
    pub fn card(&self, number: &str) -> Result<Option<CardRecord>, CenterError> {
        self.with(|c| card_by_number(c, number))
    }

    /// How many cards are registered.
    ///
    /// # Errors
    /// [`CenterError::Database`].
    pub fn card_count(&self) -> Result<u64, CenterError> {
        self.with(|c| {
            let n: i64 = c
                .query_row_cached("SELECT COUNT(*) FROM cards", [], |r| r.get(0))
                .map_err(sql("count cards"))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// Every authorization, oldest first.
    ///
    /// # Errors
    /// [`CenterError::Database`].
    pub fn authorizations(&self) -> Result<Vec<AuthRecord>, CenterError> {
        self.with(|c| {
            let mut stmt = c
                .prepare(&format!("SELECT {AUTH_COLUMNS} FROM auths ORDER BY id"))
                .map_err(sql("list authorizations"))?;
            let rows = stmt
                .query_map([], auth_from_row)
                .map_err(sql("list authorizations"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(sql("list authorizations"))
        })
    }

    /// The journal, oldest first.
    ///
    /// # Errors
    /// [`CenterError::Database`].
    pub fn journal(&self) -> Result<Vec<JournalLine>, CenterError> {
        self.with(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT direction, mti, stan, terminal, pan_masked, response_code, text, \
                     spec, message FROM messages ORDER BY id",
                )
                .map_err(sql("read journal"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(JournalLine {
                        direction: r.get(0)?,
                        mti: r.get(1)?,
                        stan: r
                            .get::<_, Option<i64>>(2)?
                            .and_then(|s| u32::try_from(s).ok()),
                        terminal: r.get(3)?,
                        pan_masked: r.get(4)?,
                        response_code: r.get(5)?,
                        text: described(
                            r.get(6)?,
                            r.get::<_, Option<String>>(7)?.as_deref(),
                            r.get::<_, Option<Vec<u8>>>(8)?.as_deref(),
                        ),
                    })
                })
                .map_err(sql("read journal"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(sql("read journal"))
        })
    }
}

/// Every `card_spend` row as (date, card, spent), in key order (tests).
#[cfg(test)]
pub(crate) fn card_spend_rows(c: &Connection) -> Vec<(String, i64, i64)> {
    date_card_amounts(
        c,
        "SELECT local_date, card_id, spent FROM card_spend ORDER BY 1, 2",
    )
}

/// The (date, card, amount) rows `sql` selects (tests).
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn date_card_amounts(c: &Connection, sql: &str) -> Vec<(String, i64, i64)> {
    let mut stmt = c.prepare(sql).unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Whether the database has a table `name`.
fn has_table(conn: &Connection, name: &str) -> Result<bool, CenterError> {
    conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        params![name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(sql("read the database's tables"))
}

/// Databases made before `card_spend` (`had_card_spend` false: the schema just created it
/// empty) get each card's day filled from `auths` with the sum the daily limit check ran;
/// the index that sum read, `auths_card_spend`, is then dropped.
fn add_card_spend(conn: &Connection, had_card_spend: bool) -> Result<(), CenterError> {
    if !had_card_spend {
        conn.execute(
            "INSERT INTO card_spend (local_date, card_id, spent) \
             SELECT local_date, card_id, SUM(amount - refunded) FROM auths \
             WHERE kind = 'purchase' AND state = 'approved' AND card_id IS NOT NULL \
             GROUP BY local_date, card_id",
            [],
        )
        .map_err(sql("fill card_spend from auths"))?;
    }
    conn.execute_batch("DROP INDEX IF EXISTS auths_card_spend;")
        .map_err(sql("drop index auths_card_spend"))
}

/// Databases made before messages were stored as bytes gain the two columns (their rows
/// keep their text, and the new columns stay empty for them).
fn add_message_columns(conn: &Connection) -> Result<(), CenterError> {
    let has: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name = 'message'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(sql("read the messages table's columns"))?;
    if !has {
        conn.execute_batch(
            "ALTER TABLE messages ADD COLUMN spec TEXT; \
             ALTER TABLE messages ADD COLUMN message BLOB;",
        )
        .map_err(sql("add the messages table's message columns"))?;
    }
    Ok(())
}

/// A journal row's text: its stored message described (masked) in its dialect, or the
/// text stored with it (rows from before messages were stored as bytes, and notes).
fn described(text: String, spec: Option<&str>, message: Option<&[u8]>) -> String {
    let (Some(spec), Some(message)) = (spec.and_then(specs::by_name), message) else {
        return text;
    };
    let (msg, err) = decode_partial(spec, message);
    let mut out = msg.describe().to_string();
    if let Some(e) = err {
        out.push_str(&format!("(stored message does not decode: {e})\n"));
    }
    out
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn account_balance(c: &Connection, account: &str) -> Result<Option<i64>, CenterError> {
    c.query_row_cached(
        "SELECT balance FROM accounts WHERE id = ?1",
        params![account],
        |r| r.get(0),
    )
    .optional()
    .map_err(sql("read balance"))
}

/// Adds `delta` (negative: debit) to an account.
pub(crate) fn adjust_balance(c: &Connection, account: &str, delta: i64) -> Result<(), CenterError> {
    let n = c
        .execute_cached(
            "UPDATE accounts SET balance = balance + ?2 WHERE id = ?1",
            params![account, delta],
        )
        .map_err(sql("update balance"))?;
    if n != 1 {
        return Err(CenterError::Database {
            op: "update balance",
            detail: format!("no account {account:?}"),
        });
    }
    Ok(())
}

/// The columns of a card row as [`card_from_row`] reads them (first, in this order); a
/// macro so that the statements are literals, not formatted on every call.
macro_rules! card_columns {
    () => {
        "c.id, c.number, c.kind, c.account_id, c.status, c.expiry, c.pin_data, c.pin_tries, \
         c.single_limit, c.daily_limit"
    };
}

pub(crate) fn card_by_number(
    c: &Connection,
    number: &str,
) -> Result<Option<CardRecord>, CenterError> {
    c.query_row_cached(
        concat!(
            "SELECT ",
            card_columns!(),
            " FROM cards c WHERE c.number = ?1"
        ),
        params![number],
        |r| Ok(card_from_row(r)),
    )
    .optional()
    .map_err(sql("read card"))?
    .transpose()
}

/// A card with what a debit or a load decides on besides it, read in one statement: whether
/// it is blacklisted, its account's balance (0 without an account row) and its spending of
/// `local_date`. Four lookups were four statements in the committer's serial section.
#[derive(Debug)]
pub(crate) struct CardView {
    /// The card.
    pub card: CardRecord,
    /// Its number is on the blacklist.
    pub blacklisted: bool,
    /// Its account's balance.
    pub balance: i64,
    /// What it spent on the day asked for: its `card_spend` row, 0 without one.
    pub spent: u64,
}

pub(crate) fn card_view(
    c: &Connection,
    number: &str,
    local_date: &str,
) -> Result<Option<CardView>, CenterError> {
    c.query_row_cached(
        concat!(
            "SELECT ",
            card_columns!(),
            ", EXISTS (SELECT 1 FROM blacklist b WHERE b.number = c.number), \
             (SELECT a.balance FROM accounts a WHERE a.id = c.account_id), \
             (SELECT s.spent FROM card_spend s WHERE s.local_date = ?2 AND s.card_id = c.id) \
             FROM cards c WHERE c.number = ?1"
        ),
        params![number, local_date],
        |r| {
            let extra = (
                r.get::<_, bool>(10)?,
                r.get::<_, Option<i64>>(11)?,
                r.get::<_, Option<i64>>(12)?,
            );
            Ok(card_from_row(r).map(|card| (card, extra)))
        },
    )
    .optional()
    .map_err(sql("read card"))?
    .transpose()
    .map(|found| {
        found.map(|(card, (blacklisted, balance, spent))| CardView {
            card,
            blacklisted,
            balance: balance.unwrap_or(0),
            spent: spent.map_or(0, |n| u64::try_from(n).unwrap_or(0)),
        })
    })
}

/// A card from the first ten columns of `r` (`card_columns!`); a column that does not
/// read is a database error, a value out of its domain names the row and the column.
fn card_from_row(r: &rusqlite::Row<'_>) -> Result<CardRecord, CenterError> {
    let id: i64 = r.get(0).map_err(sql("read card"))?;
    let text = |i: usize| r.get::<_, String>(i).map_err(sql("read card"));
    let corrupt = |column: &str, v: &str| CenterError::Database {
        op: "read card",
        detail: format!("card row {id}: bad {column} {v:?}"),
    };
    let kind = text(2)?;
    let kind = CardKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?;
    let status = text(4)?;
    let status = CardStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?;
    let pin_data = match r.get::<_, Option<Vec<u8>>>(6).map_err(sql("read card"))? {
        None => None,
        Some(p) => Some(
            <[u8; 8]>::try_from(p.as_slice())
                .map_err(|_| corrupt("pin_data length", &p.len().to_string()))?,
        ),
    };
    let limit = |i: usize| {
        r.get::<_, Option<i64>>(i)
            .map(|v| v.and_then(|v| u64::try_from(v).ok()))
            .map_err(sql("read card"))
    };
    Ok(CardRecord {
        id,
        number: text(1)?,
        kind,
        account: text(3)?,
        status,
        expiry: text(5)?,
        pin_data,
        pin_tries: u32::try_from(r.get::<_, i64>(7).map_err(sql("read card"))?).unwrap_or(u32::MAX),
        single_limit: limit(8)?,
        daily_limit: limit(9)?,
    })
}

pub(crate) fn set_pin_tries(c: &Connection, card_id: i64, tries: u32) -> Result<(), CenterError> {
    c.execute_cached(
        "UPDATE cards SET pin_tries = ?2 WHERE id = ?1",
        params![card_id, i64::from(tries)],
    )
    .map_err(sql("update PIN tries"))?;
    Ok(())
}

/// The amount a card spent on `local_date` (approved purchases not undone, less what was
/// refunded): its `card_spend` row, 0 without one. The decisions read it through
/// [`card_view`]; the tests check the running total with it.
#[cfg(test)]
pub(crate) fn spent_on(c: &Connection, card_id: i64, local_date: &str) -> Result<u64, CenterError> {
    let n: Option<i64> = c
        .query_row_cached(
            "SELECT spent FROM card_spend WHERE local_date = ?1 AND card_id = ?2",
            params![local_date, card_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("read daily spending"))?;
    Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// Adds `delta` (negative: less spent) to a card's spending of `local_date`, the purchase's
/// own date. Callers: every change of an approved purchase's `amount - refunded`, in the
/// same unit of work (see `insert_auth`, `set_state` and `add_refunded` in
/// [`authorize`](super::authorize)).
pub(crate) fn add_spent(
    c: &Connection,
    card_id: i64,
    local_date: &str,
    delta: i64,
) -> Result<(), CenterError> {
    if delta == 0 {
        return Ok(());
    }
    c.execute_cached(
        "INSERT INTO card_spend (local_date, card_id, spent) VALUES (?1, ?2, ?3) \
         ON CONFLICT (local_date, card_id) DO UPDATE SET spent = spent + excluded.spent",
        params![local_date, card_id, delta],
    )
    .map_err(sql("update daily spending"))?;
    Ok(())
}

/// Next value of a counter (starting at 1).
pub(crate) fn next_counter(c: &Connection, name: &str) -> Result<u64, CenterError> {
    let v: i64 = c
        .query_row_cached(
            "INSERT INTO counters (name, value) VALUES (?1, 1) \
             ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
            params![name],
            |r| r.get(0),
        )
        .map_err(sql("advance counter"))?;
    Ok(u64::try_from(v).unwrap_or(0))
}

pub(crate) const AUTH_COLUMNS: &str = "id, kind, mti, acquirer, terminal, stan, amount, \
     response_code, rrn, auth_code, state, original_id, response";

pub(crate) fn auth_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuthRecord> {
    let state: String = r.get(10)?;
    Ok(AuthRecord {
        id: r.get(0)?,
        kind: r.get(1)?,
        mti: r.get(2)?,
        acquirer: r.get(3)?,
        terminal: r.get(4)?,
        stan: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
        amount: u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
        response_code: r.get(7)?,
        rrn: r.get(8)?,
        auth_code: r.get(9)?,
        state: AuthState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                10,
                rusqlite::types::Type::Text,
                format!("unknown authorization state {state:?}").into(),
            )
        })?,
        original_id: r.get(11)?,
        response: r.get(12)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_commit_keeps_units_serial_and_rolls_back_a_failed_one_alone() {
        let reg = Registry::open_in_memory().unwrap();
        reg.add_account("A", 1_000, "test").unwrap();
        // 50 concurrent debits of 30 fen: each reads and writes in its own unit, so none
        // sees a stale balance; those that would overdraw fail and are rolled back.
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let r = reg.clone();
            tasks.push(tokio::spawn(async move {
                r.call(|c| {
                    let balance = account_balance(c, "A")?.unwrap_or(0);
                    adjust_balance(c, "A", -30)?;
                    if balance < 30 {
                        return Err(CenterError::Database {
                            op: "test",
                            detail: "insufficient".to_owned(),
                        });
                    }
                    Ok(balance - 30)
                })
                .await
            }));
        }
        let mut approved = 0;
        for t in tasks {
            if t.await.unwrap().is_ok() {
                approved += 1;
            }
        }
        assert_eq!(approved, 33);
        assert_eq!(reg.balance("A").unwrap(), Some(10));
    }

    #[test]
    fn journal_rows_are_described_from_their_stored_message_and_old_rows_keep_their_text() {
        // A database from before messages were stored as bytes.
        let (dir, path, _) = old_database(
            "posp-center-journal",
            "CREATE TABLE messages (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, \
             direction TEXT NOT NULL, mti TEXT NOT NULL, acquirer TEXT, terminal TEXT, \
             stan INTEGER, pan_masked TEXT, response_code TEXT, text TEXT NOT NULL); \
             INSERT INTO messages (at_ms, direction, mti, text) \
             VALUES (1, 'in', '0200', 'described before');",
        );
        let reg = Registry::open(&path).unwrap();
        let spec = iso8583_wire::specs::cups_pos();
        let mut m = iso8583_wire::MessageBuf::new("0200").unwrap();
        m.set(11, "000042").set(41, "10000001");
        let body = m.to_vec(spec).unwrap();
        {
            let c = reg.conn.lock().unwrap();
            c.execute(
                "INSERT INTO messages (at_ms, direction, mti, text, spec, message) \
                 VALUES (2, 'in', '0200', '', 'cups-pos', ?1)",
                params![body],
            )
            .unwrap();
        }
        let texts: Vec<String> = reg.journal().unwrap().into_iter().map(|l| l.text).collect();
        let want = iso8583_wire::decode(spec, &body)
            .unwrap()
            .describe()
            .to_string();
        assert_eq!(texts, vec!["described before".to_owned(), want]);
        assert!(
            texts[1].starts_with("MTI    0200  (cups-pos)\n"),
            "{}",
            texts[1]
        );
        drop(reg);
        // Opening again does not add the columns twice.
        drop(Registry::open(&path).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A database made by hand in a new directory: the directory, the file, and the open
    /// connection that made it.
    fn old_database(prefix: &str, schema: &str) -> (PathBuf, PathBuf, Connection) {
        let dir = crate::demo::temp_dir(prefix);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("center.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(schema).unwrap();
        (dir, path, c)
    }

    fn index_names(c: &Connection) -> Vec<String> {
        let mut stmt = c
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'auths' \
                 AND sql IS NOT NULL ORDER BY name",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn an_old_database_gets_card_spend_filled_from_auths_and_loses_the_spending_index() {
        // A database from before card_spend: the daily limit summed this index.
        let (dir, path, c) = old_database(
            "posp-center-spend",
            "CREATE TABLE auths (id INTEGER PRIMARY KEY, created_ms INTEGER NOT NULL, \
             local_date TEXT NOT NULL, kind TEXT NOT NULL, mti TEXT NOT NULL, \
             acquirer TEXT NOT NULL, terminal TEXT NOT NULL, merchant TEXT NOT NULL, \
             stan INTEGER NOT NULL, fingerprint TEXT NOT NULL, card_id INTEGER, \
             account_id TEXT, amount INTEGER NOT NULL, response_code TEXT NOT NULL, \
             rrn TEXT, auth_code TEXT, state TEXT NOT NULL, original_id INTEGER, \
             refunded INTEGER NOT NULL DEFAULT 0, load_data TEXT, response BLOB); \
             CREATE INDEX auths_key ON auths (acquirer, terminal, stan); \
             CREATE INDEX auths_rrn ON auths (rrn); \
             CREATE INDEX auths_card_spend \
                 ON auths (card_id, local_date, kind, state, amount, refunded);",
        );
        let rows = [
            (Some(1), "20240310", "purchase", "approved", 10_000, 0),
            (Some(1), "20240310", "purchase", "approved", 6_000, 1_500),
            (Some(1), "20240310", "purchase", "voided", 4_000, 0),
            (Some(1), "20240310", "purchase", "reversed", 3_000, 1_000),
            (Some(1), "20240310", "refund", "approved", 1_500, 0),
            (Some(1), "20240311", "purchase", "approved", 3_000, 0),
            (Some(2), "20240310", "purchase", "declined", 9_000, 0),
            (Some(2), "20240310", "purchase", "approved", 700, 0),
            (None, "20240310", "purchase", "declined", 100, 0),
        ];
        for (stan, (card, date, kind, state, amount, refunded)) in (1i64..).zip(rows) {
            c.execute(
                "INSERT INTO auths (created_ms, local_date, kind, mti, acquirer, terminal, \
                     merchant, stan, fingerprint, card_id, amount, response_code, state, \
                     refunded) VALUES (0, ?1, ?2, '0200', '48020000', '10000001', 'M', ?3, \
                     '', ?4, ?5, '00', ?6, ?7)",
                params![date, kind, stan, card, amount, state, refunded],
            )
            .unwrap();
        }
        drop(c);
        let want = vec![
            ("20240310".to_owned(), 1, 14_500),
            ("20240310".to_owned(), 2, 700),
            ("20240311".to_owned(), 1, 3_000),
        ];
        let reg = Registry::open(&path).unwrap();
        reg.with(|c| {
            assert_eq!(card_spend_rows(c), want);
            assert_eq!(index_names(c), ["auths_key", "auths_load", "auths_rrn"]);
            assert_eq!(spent_on(c, 1, "20240310")?, 14_500);
            assert_eq!(spent_on(c, 1, "20240312")?, 0);
            Ok(())
        })
        .unwrap();
        drop(reg);
        // Opened again, the table is there: it is not filled a second time.
        let reg = Registry::open(&path).unwrap();
        reg.with(|c| {
            assert_eq!(card_spend_rows(c), want);
            Ok(())
        })
        .unwrap();
        drop(reg);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
