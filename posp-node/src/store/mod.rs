//! The service's storage: the transaction journal and the store-and-forward queues.
//!
//! They sit behind small traits, [`Journal`], [`SafQueue`] and [`LinkEvents`], so that a PostgreSQL
//! backend can serve nodes that share one journal. The embedded default is
//! [`SqliteStore`]: SQLite (bundled) in WAL mode with `synchronous=FULL`, one writer thread
//! that commits whatever is queued in one transaction (group commit: concurrent writers
//! share one fsync) and a small pool of read-only connections.
//!
//! The store has no clock: every time (`created_at`, `at`, `now`) is unix milliseconds
//! passed in by the caller. Writes return only once they are durable, which is what
//! "journal first" needs: a transaction is journaled before it goes upstream, and a
//! reversal is queued before the terminal hears "timed out".
//!
//! The trait methods are `async` (for tokio tasks); from synchronous code drive them with
//! [`block_on`] (never from inside a tokio runtime's worker).
//!
//! Card data: see [`journal`] for the contract (masked PAN only; messages masked by the
//! caller).

pub mod events;
pub mod journal;
pub mod saf;
mod schema;
pub mod sqlite;
mod writer;

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

pub use events::{LinkEvent, LinkEventKind, LinkEvents, NewLinkEvent};
pub use journal::{
    BatchTotals, EntryFilter, IdempotencyKey, InsertOutcome, JournalEntry, KindTotal, NewEntry,
    Origin, StateUpdate, TxnKind, TxnState, is_masked_pan, mask_pan,
};
pub use saf::{
    AttemptOutcome, NewSafEntry, SafConfig, SafDepth, SafEntry, SafEvent, SafEventKind, SafStatus,
    repeat_mti,
};
pub use sqlite::{SqliteReader, SqliteStore, StoreConfig};
pub use writer::WriterStats;

/// Everything that can go wrong in the store. Each message says what and where.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or prepared.
    #[error("cannot open journal database {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The file is not a journal database this version understands.
    #[error("{path} is not a usable journal database: {detail}")]
    Schema {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A statement failed.
    #[error("{op}: {source}")]
    Sql {
        /// What the store was doing.
        op: &'static str,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A stored value could not be read back.
    #[error("{table} row {id}: bad {column}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row id.
        id: i64,
        /// The column.
        column: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A field of a new entry or update has the wrong format.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No row with that id.
    #[error("{what} {id} not found")]
    NotFound {
        /// "journal entry" or "SAF entry".
        what: &'static str,
        /// The id asked for.
        id: i64,
    },
    /// A state change the journal does not allow.
    #[error("journal entry {id}: illegal state transition from {from} to {to}")]
    IllegalTransition {
        /// The entry.
        id: i64,
        /// Its current state.
        from: TxnState,
        /// The state asked for.
        to: TxnState,
    },
    /// A SAF operation on an entry that is no longer queued.
    #[error("SAF entry {id} is {status}, not QUEUED")]
    SafNotQueued {
        /// The entry.
        id: i64,
        /// Its status.
        status: SafStatus,
    },
    /// A destination's queue is at its limit.
    #[error("SAF queue for {destination} is full ({queued} entries queued)")]
    SafFull {
        /// The destination.
        destination: String,
        /// Entries queued.
        queued: u64,
    },
    /// The batch this write was part of failed to commit; none of it is stored.
    #[error("commit failed, the write is not stored: {detail}")]
    Commit {
        /// What SQLite said.
        detail: String,
    },
    /// The writer thread has stopped (the store was shut down).
    #[error("the journal writer has shut down")]
    Closed,
    /// The writer thread could not be started.
    #[error("cannot start the journal writer thread: {0}")]
    Spawn(std::io::Error),
}

/// The transaction journal.
///
/// Writes return once durable. Lookups that can match several entries return them oldest
/// first.
pub trait Journal: Send + Sync {
    /// Journals a new entry in [`TxnState::Pending`], or returns the entry that already has
    /// its idempotency key (nothing is written then).
    fn insert(
        &self,
        entry: NewEntry,
    ) -> impl Future<Output = Result<InsertOutcome, StoreError>> + Send;

    /// Journals a new entry directly in [`TxnState::Sent`] with the upstream STAN it is about
    /// to go out with, at `at` (unix milliseconds): one durable write where
    /// [`insert`](Journal::insert) and [`update_state`](Journal::update_state) to SENT took
    /// two. Returns once durable, like them, so the entry (an unfinished one, that crash
    /// recovery reverses) is on disk before the request is written upstream. A duplicate is
    /// returned as by `insert`, and nothing is written.
    fn insert_sent(
        &self,
        entry: NewEntry,
        upstream_stan: u32,
        at: i64,
    ) -> impl Future<Output = Result<InsertOutcome, StoreError>> + Send;

    /// Moves an entry to a new state with what came with it; an illegal transition is
    /// [`StoreError::IllegalTransition`]. Returns the updated entry.
    fn update_state(
        &self,
        id: i64,
        update: StateUpdate,
    ) -> impl Future<Output = Result<JournalEntry, StoreError>> + Send;

    /// [`update_state`](Journal::update_state) without reading the entry back: for a
    /// caller that needs only to know the change is durable (the outcome of a transaction,
    /// before its answer). Same rules, same errors.
    fn set_state(
        &self,
        id: i64,
        update: StateUpdate,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The entry with this id.
    fn get(&self, id: i64)
    -> impl Future<Output = Result<Option<JournalEntry>, StoreError>> + Send;

    /// The entry with this idempotency key.
    fn by_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<Option<JournalEntry>, StoreError>> + Send;

    /// The entries of a terminal with this STAN (STANs repeat across days and batches),
    /// oldest first. This reads all of the terminal's index entries; a reversal's search for
    /// its original uses [`by_terminal_batch_stan`](Self::by_terminal_batch_stan).
    fn by_terminal_stan(
        &self,
        terminal_id: &str,
        stan: u32,
    ) -> impl Future<Output = Result<Vec<JournalEntry>, StoreError>> + Send;

    /// The entries of a terminal's batch with this STAN (STANs repeat across days and
    /// batches), oldest first.
    fn by_terminal_batch_stan(
        &self,
        terminal_id: &str,
        batch: u32,
        stan: u32,
    ) -> impl Future<Output = Result<Vec<JournalEntry>, StoreError>> + Send;

    /// The entries with this retrieval reference number.
    fn by_rrn(
        &self,
        rrn: &str,
    ) -> impl Future<Output = Result<Vec<JournalEntry>, StoreError>> + Send;

    /// Entries created in `[from, until)` (unix milliseconds), at most `limit` (the newest).
    fn by_created_range(
        &self,
        from: i64,
        until: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<JournalEntry>, StoreError>> + Send;

    /// Entries matching a filter.
    fn find(
        &self,
        filter: &EntryFilter,
    ) -> impl Future<Output = Result<Vec<JournalEntry>, StoreError>> + Send;

    /// Crash recovery: entries still PENDING or SENT with an id above `after_id`, at most
    /// `limit`, oldest first. Page through with the last id returned.
    fn unfinished(
        &self,
        after_id: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<JournalEntry>, StoreError>> + Send;

    /// The totals of a terminal's batch for a settlement check.
    fn batch_totals(
        &self,
        terminal_id: &str,
        batch: u32,
    ) -> impl Future<Output = Result<BatchTotals, StoreError>> + Send;
}

/// The store-and-forward queues; see [`saf`] for the semantics.
pub trait SafQueue: Send + Sync {
    /// Queues a message durably at the tail of its destination.
    fn enqueue(
        &self,
        entry: NewSafEntry,
    ) -> impl Future<Output = Result<SafEntry, StoreError>> + Send;

    /// The latched head of a destination: its oldest entry still queued.
    fn head(
        &self,
        destination: &str,
    ) -> impl Future<Output = Result<Option<SafEntry>, StoreError>> + Send;

    /// The SAF entry with this id.
    fn saf_entry(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<SafEntry>, StoreError>> + Send;

    /// Records one transmission of a queued entry at `now`, with the response code received
    /// (`None`: no response, not counted). Moves the entry to the exception queue when its
    /// attempts are exhausted or it has expired.
    fn record_attempt(
        &self,
        id: i64,
        response_code: Option<String>,
        now: i64,
    ) -> impl Future<Output = Result<AttemptOutcome, StoreError>> + Send;

    /// Records the transmission whose response `response_code` completes a queued entry.
    fn complete(
        &self,
        id: i64,
        response_code: String,
        now: i64,
    ) -> impl Future<Output = Result<SafEntry, StoreError>> + Send;

    /// Moves a queued entry to the exception queue with a reason.
    fn move_to_exception(
        &self,
        id: i64,
        reason: String,
        now: i64,
    ) -> impl Future<Output = Result<SafEntry, StoreError>> + Send;

    /// Moves every queued entry older than the expiry at `now` to the exception queue;
    /// returns them.
    fn expire(&self, now: i64) -> impl Future<Output = Result<Vec<SafEntry>, StoreError>> + Send;

    /// Queued and exception counts per destination that has any.
    fn depths(&self) -> impl Future<Output = Result<Vec<SafDepth>, StoreError>> + Send;

    /// The exception queue, oldest first, at most `limit`.
    fn exceptions(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<SafEntry>, StoreError>> + Send;

    /// The events of a SAF entry, oldest first.
    fn events(&self, id: i64) -> impl Future<Output = Result<Vec<SafEvent>, StoreError>> + Send;
}

/// Runs a future to completion on the current thread, for synchronous callers (tests, the
/// CLI). The store's futures need no runtime: they wait on channels only. Do not call it
/// from a tokio worker thread; it blocks the thread.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    /// Wakes the blocked thread by unparking it.
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests;
