//! The SQLite backend: [`SqliteStore`] (writer thread + read pool) and [`SqliteReader`]
//! (read-only connections, also used alone by the `journal` CLI).
//!
//! Settings: SQLite bundled with the binary, WAL journal mode, `synchronous=FULL` (a commit
//! is on disk when it returns), foreign keys on, a busy timeout, and the schema created or
//! migrated on open (`schema_version`). Messages are stored as upper-case hex text.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, Value, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params, params_from_iter};
use serde::Deserialize;

use super::journal::{
    BatchTotals, EntryFilter, IdempotencyKey, InsertOutcome, JournalEntry, KindTotal, NewEntry,
    Origin, StateUpdate, TxnKind, TxnState,
};
use super::saf::{
    AttemptOutcome, NewSafEntry, SafConfig, SafDepth, SafEntry, SafEvent, SafEventKind, SafStatus,
};
use super::writer::{Writer, WriterStats};
use super::{Journal, SafQueue, StoreError, schema};

/// Settings of the SQLite store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// How long a connection waits for a lock held by another connection.
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
    /// Write requests that may wait for the writer; more make their callers wait.
    pub write_queue: usize,
    /// Most write requests committed in one transaction.
    pub batch_limit: usize,
    /// Read-only connections in the pool.
    pub readers: usize,
    /// SAF limits.
    pub saf: SafConfig,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            busy_timeout: Duration::from_secs(5),
            write_queue: 4096,
            batch_limit: 512,
            readers: 4,
            saf: SafConfig::default(),
        }
    }
}

impl StoreConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), StoreError> {
        for (field, value) in [
            ("write_queue", self.write_queue),
            ("batch_limit", self.batch_limit),
            ("readers", self.readers),
        ] {
            if value == 0 {
                return Err(StoreError::Invalid {
                    field,
                    reason: "must be at least 1".to_owned(),
                });
            }
        }
        self.saf.validate()
    }
}

/// The SQLite journal and SAF store: one writer thread with group commit, a pool of
/// read-only connections. Share it between tasks with an `Arc`.
pub struct SqliteStore {
    reader: SqliteReader,
    writer: Writer,
    saf: SafConfig,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, migrates its schema and starts
    /// the writer thread.
    pub fn open(path: &Path, config: &StoreConfig) -> Result<SqliteStore, StoreError> {
        config.validate()?;
        let open = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open)?;
        conn.busy_timeout(config.busy_timeout).map_err(open)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(open)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Schema {
                path: path.to_owned(),
                detail: format!("cannot switch to WAL journal mode (got {mode})"),
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open)?;
        stable_plans(&conn).map_err(open)?;
        schema::migrate(&mut conn, path)?;
        let reader = SqliteReader::open(path, config.readers, config.busy_timeout)?;
        let writer = Writer::start(conn, config.write_queue, config.batch_limit)?;
        Ok(SqliteStore {
            reader,
            writer,
            saf: config.saf,
        })
    }

    /// The read side, for synchronous lookups.
    pub fn reader(&self) -> &SqliteReader {
        &self.reader
    }

    /// The writer's counters.
    pub fn stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// Commits what is queued and stops the writer thread; later writes fail with
    /// [`StoreError::Closed`]. Dropping the store does the same.
    pub fn shutdown(&self) {
        self.writer.shutdown();
    }
}

impl Journal for SqliteStore {
    async fn insert(&self, entry: NewEntry) -> Result<InsertOutcome, StoreError> {
        entry.validate()?;
        self.writer
            .submit_one_statement(move |conn| insert_entry(conn, entry, None))
            .await
    }

    async fn insert_sent(
        &self,
        entry: NewEntry,
        upstream_stan: u32,
        at: i64,
    ) -> Result<InsertOutcome, StoreError> {
        entry.validate()?;
        StateUpdate {
            upstream_stan: Some(upstream_stan),
            ..StateUpdate::to(TxnState::Sent, at)
        }
        .validate()?;
        self.writer
            .submit_one_statement(move |conn| insert_entry(conn, entry, Some((upstream_stan, at))))
            .await
    }

    async fn update_state(&self, id: i64, update: StateUpdate) -> Result<JournalEntry, StoreError> {
        update.validate()?;
        self.writer
            .submit(move |conn| update_entry(conn, id, update))
            .await
    }

    async fn set_state(&self, id: i64, update: StateUpdate) -> Result<(), StoreError> {
        update.validate()?;
        self.writer
            .submit_one_statement(move |conn| set_entry_state(conn, id, &update))
            .await
    }

    async fn get(&self, id: i64) -> Result<Option<JournalEntry>, StoreError> {
        self.reader.get(id)
    }

    async fn by_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<JournalEntry>, StoreError> {
        self.reader.by_idempotency_key(key)
    }

    async fn by_terminal_stan(
        &self,
        terminal_id: &str,
        stan: u32,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        self.reader.by_terminal_stan(terminal_id, stan)
    }

    async fn by_terminal_batch_stan(
        &self,
        terminal_id: &str,
        batch: u32,
        stan: u32,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        self.reader.by_terminal_batch_stan(terminal_id, batch, stan)
    }

    async fn by_rrn(&self, rrn: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.reader.by_rrn(rrn)
    }

    async fn by_created_range(
        &self,
        from: i64,
        until: i64,
        limit: u32,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        self.reader.find(&EntryFilter {
            created_from: Some(from),
            created_until: Some(until),
            ..EntryFilter::all(limit)
        })
    }

    async fn find(&self, filter: &EntryFilter) -> Result<Vec<JournalEntry>, StoreError> {
        self.reader.find(filter)
    }

    async fn unfinished(&self, after_id: i64, limit: u32) -> Result<Vec<JournalEntry>, StoreError> {
        self.reader.unfinished(after_id, limit)
    }

    async fn batch_totals(&self, terminal_id: &str, batch: u32) -> Result<BatchTotals, StoreError> {
        self.reader.batch_totals(terminal_id, batch)
    }
}

impl super::LinkEvents for SqliteStore {
    async fn record_link_event(&self, event: super::NewLinkEvent) -> Result<i64, StoreError> {
        self.writer
            .submit(move |conn| super::events::insert(conn, &event))
            .await
    }

    async fn link_events(&self, limit: u32) -> Result<Vec<super::LinkEvent>, StoreError> {
        self.reader.link_events(limit)
    }
}

impl SafQueue for SqliteStore {
    async fn enqueue(&self, entry: NewSafEntry) -> Result<SafEntry, StoreError> {
        entry.validate()?;
        let config = self.saf;
        self.writer
            .submit(move |conn| saf_enqueue(conn, &config, entry))
            .await
    }

    async fn head(&self, destination: &str) -> Result<Option<SafEntry>, StoreError> {
        self.reader.saf_head(destination)
    }

    async fn saf_entry(&self, id: i64) -> Result<Option<SafEntry>, StoreError> {
        self.reader.saf_entry(id)
    }

    async fn record_attempt(
        &self,
        id: i64,
        response_code: Option<String>,
        now: i64,
    ) -> Result<AttemptOutcome, StoreError> {
        let config = self.saf;
        self.writer
            .submit(move |conn| saf_record_attempt(conn, &config, id, response_code, now))
            .await
    }

    async fn complete(
        &self,
        id: i64,
        response_code: String,
        now: i64,
    ) -> Result<SafEntry, StoreError> {
        self.writer
            .submit(move |conn| saf_complete(conn, id, response_code, now))
            .await
    }

    async fn move_to_exception(
        &self,
        id: i64,
        reason: String,
        now: i64,
    ) -> Result<SafEntry, StoreError> {
        if reason.trim().is_empty() {
            return Err(StoreError::Invalid {
                field: "reason",
                reason: "an exception needs a reason".to_owned(),
            });
        }
        self.writer
            .submit(move |conn| {
                let entry = queued_saf(conn, id)?;
                saf_to_exception(conn, entry, reason, now)
            })
            .await
    }

    async fn expire(&self, now: i64) -> Result<Vec<SafEntry>, StoreError> {
        let config = self.saf;
        self.writer
            .submit(move |conn| saf_expire(conn, &config, now))
            .await
    }

    async fn depths(&self) -> Result<Vec<SafDepth>, StoreError> {
        self.reader.saf_depths()
    }

    async fn exceptions(&self, limit: u32) -> Result<Vec<SafEntry>, StoreError> {
        self.reader.saf_exceptions(limit)
    }

    async fn events(&self, id: i64) -> Result<Vec<SafEvent>, StoreError> {
        self.reader.saf_events(id)
    }
}

/// Read-only connections to a journal database: the read side of [`SqliteStore`], and
/// what the `journal` CLI opens (it never creates or changes a database).
pub struct SqliteReader {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
    path: PathBuf,
}

impl SqliteReader {
    /// Opens `readers` read-only connections (at least one) to an existing journal
    /// database and checks its schema version.
    pub fn open(
        path: &Path,
        readers: usize,
        busy_timeout: Duration,
    ) -> Result<SqliteReader, StoreError> {
        let open = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conns = Vec::with_capacity(readers.max(1));
        for _ in 0..readers.max(1) {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(open)?;
            conn.busy_timeout(busy_timeout).map_err(open)?;
            stable_plans(&conn).map_err(open)?;
            if conns.is_empty() {
                schema::check(&conn, path)?;
            }
            conns.push(Mutex::new(conn));
        }
        Ok(SqliteReader {
            conns,
            next: AtomicUsize::new(0),
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a free connection, or waits for one.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let n = self.conns.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            if let Ok(conn) = self.conns[(start + i) % n].try_lock() {
                return f(&conn);
            }
        }
        // A poisoned lock only means a reader panicked mid-query; the connection is fine.
        let conn = self.conns[start]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&conn)
    }

    /// The entry with this id.
    pub fn get(&self, id: i64) -> Result<Option<JournalEntry>, StoreError> {
        self.with_conn(|conn| select_entry(conn, id))
    }

    /// The entry with this idempotency key.
    pub fn by_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<JournalEntry>, StoreError> {
        self.with_conn(|conn| select_entry_by_key(conn, key))
    }

    /// A terminal's entries with this STAN, oldest first (a scan of the terminal's entries
    /// in the `journal_idempotency` index, which starts with terminal, batch, STAN).
    pub fn by_terminal_stan(
        &self,
        terminal_id: &str,
        stan: u32,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        self.with_conn(|conn| {
            select_entries(
                conn,
                &format!("SELECT {ENTRY_COLUMNS} FROM journal WHERE terminal_id = ?1 AND stan = ?2 ORDER BY id"),
                &[Value::from(terminal_id.to_owned()), Value::from(stan)],
            )
        })
    }

    /// A terminal batch's entries with this STAN, oldest first (one seek in the
    /// `journal_idempotency` index).
    pub fn by_terminal_batch_stan(
        &self,
        terminal_id: &str,
        batch: u32,
        stan: u32,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        self.with_conn(|conn| {
            select_entries(
                conn,
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM journal \
                     WHERE terminal_id = ?1 AND batch = ?2 AND stan = ?3 ORDER BY id"
                ),
                &[
                    Value::from(terminal_id.to_owned()),
                    Value::from(batch),
                    Value::from(stan),
                ],
            )
        })
    }

    /// The entries with this RRN, oldest first.
    pub fn by_rrn(&self, rrn: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.with_conn(|conn| {
            select_entries(
                conn,
                &format!("SELECT {ENTRY_COLUMNS} FROM journal WHERE rrn = ?1 ORDER BY id"),
                &[Value::from(rrn.to_owned())],
            )
        })
    }

    /// The newest `filter.limit` entries matching the filter, oldest first.
    pub fn find(&self, filter: &EntryFilter) -> Result<Vec<JournalEntry>, StoreError> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if let Some(t) = &filter.terminal_id {
            clauses.push("terminal_id = ?");
            values.push(Value::from(t.clone()));
        }
        if let Some(stan) = filter.stan {
            clauses.push("stan = ?");
            values.push(Value::from(stan));
        }
        if let Some(rrn) = &filter.rrn {
            clauses.push("rrn = ?");
            values.push(Value::from(rrn.clone()));
        }
        if let Some(date) = &filter.local_date {
            clauses.push("local_date = ?");
            values.push(Value::from(date.clone()));
        }
        if let Some(state) = filter.state {
            clauses.push("state = ?");
            values.push(Value::from(state.as_str().to_owned()));
        }
        if let Some(from) = filter.created_from {
            clauses.push("created_at >= ?");
            values.push(Value::from(from));
        }
        if let Some(until) = filter.created_until {
            clauses.push("created_at < ?");
            values.push(Value::from(until));
        }
        let where_clause = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        values.push(Value::from(filter.limit));
        let sql = format!(
            "SELECT * FROM (SELECT {ENTRY_COLUMNS} FROM journal {where_clause} \
             ORDER BY id DESC LIMIT ?) ORDER BY id"
        );
        self.with_conn(|conn| select_entries(conn, &sql, &values))
    }

    /// Entries still PENDING or SENT with an id above `after_id`, at most `limit`, oldest
    /// first.
    pub fn unfinished(&self, after_id: i64, limit: u32) -> Result<Vec<JournalEntry>, StoreError> {
        self.with_conn(|conn| {
            select_entries(
                conn,
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM journal WHERE state IN ('PENDING', 'SENT') \
                     AND id > ?1 ORDER BY id LIMIT ?2"
                ),
                &[Value::from(after_id), Value::from(limit)],
            )
        })
    }

    /// A terminal batch's totals (see [`BatchTotals`]).
    pub fn batch_totals(&self, terminal_id: &str, batch: u32) -> Result<BatchTotals, StoreError> {
        let settling: Vec<String> = TxnKind::ALL
            .into_iter()
            .filter(|k| k.settles())
            .map(|k| format!("'{}'", k.as_str()))
            .collect();
        let settling = settling.join(", ");
        self.with_conn(|conn| {
            let op = "sum a batch";
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT kind, COUNT(*), SUM(amount) FROM journal \
                     WHERE terminal_id = ?1 AND batch = ?2 AND state = 'APPROVED' \
                     AND kind IN ({settling}) GROUP BY kind"
                ))
                .map_err(sql(op))?;
            let rows = stmt
                .query_map(params![terminal_id, batch], |row| {
                    Ok(KindTotal {
                        kind: row.get(0)?,
                        count: count(row.get(1)?),
                        amount: row.get(2)?,
                    })
                })
                .map_err(sql(op))?;
            let mut kinds = rows.collect::<Result<Vec<_>, _>>().map_err(sql(op))?;
            kinds.sort_by_key(|t| t.kind);
            let unresolved: i64 = conn
                .query_row(
                    &format!(
                        "SELECT COUNT(*) FROM journal WHERE terminal_id = ?1 AND batch = ?2 \
                         AND state IN ('PENDING', 'SENT', 'TIMED_OUT', 'REVERSAL_QUEUED') \
                         AND kind IN ({settling})"
                    ),
                    params![terminal_id, batch],
                    |r| r.get(0),
                )
                .map_err(sql(op))?;
            Ok(BatchTotals {
                kinds,
                unresolved: count(unresolved),
            })
        })
    }

    /// The latched head of a destination.
    pub fn saf_head(&self, destination: &str) -> Result<Option<SafEntry>, StoreError> {
        self.with_conn(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {SAF_COLUMNS} FROM saf WHERE destination = ?1 AND status = 'QUEUED' \
                 ORDER BY id LIMIT 1"
            ))
            .and_then(|mut s| s.query_row([destination], saf_from_row).optional())
            .map_err(sql("read the SAF head"))
        })
    }

    /// The SAF entry with this id.
    pub fn saf_entry(&self, id: i64) -> Result<Option<SafEntry>, StoreError> {
        self.with_conn(|conn| select_saf(conn, id))
    }

    /// Queued and exception counts of every destination ever used, by name.
    pub fn saf_depths(&self) -> Result<Vec<SafDepth>, StoreError> {
        self.with_conn(|conn| {
            let op = "count the SAF queues";
            let mut stmt = conn
                .prepare_cached(
                    "SELECT destination, SUM(status = 'QUEUED'), SUM(status = 'EXCEPTION') \
                     FROM saf GROUP BY destination ORDER BY destination",
                )
                .map_err(sql(op))?;
            let rows = stmt
                .query_map([], |row| {
                    Ok(SafDepth {
                        destination: row.get(0)?,
                        queued: count(row.get(1)?),
                        exception: count(row.get(2)?),
                    })
                })
                .map_err(sql(op))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql(op))
        })
    }

    /// The exception queue, oldest first, at most `limit`.
    pub fn saf_exceptions(&self, limit: u32) -> Result<Vec<SafEntry>, StoreError> {
        self.with_conn(|conn| {
            let op = "read the SAF exception queue";
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {SAF_COLUMNS} FROM saf WHERE status = 'EXCEPTION' ORDER BY id LIMIT ?1"
                ))
                .map_err(sql(op))?;
            let rows = stmt.query_map([limit], saf_from_row).map_err(sql(op))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql(op))
        })
    }

    /// The newest `limit` link events, oldest first.
    pub fn link_events(&self, limit: u32) -> Result<Vec<super::LinkEvent>, StoreError> {
        self.with_conn(|conn| super::events::newest(conn, limit))
    }

    /// The events of a SAF entry, oldest first.
    pub fn saf_events(&self, id: i64) -> Result<Vec<SafEvent>, StoreError> {
        self.with_conn(|conn| {
            let op = "read SAF events";
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, saf_id, at, event, send_no, mti, response_code, detail \
                     FROM saf_event WHERE saf_id = ?1 ORDER BY id",
                )
                .map_err(sql(op))?;
            let rows = stmt
                .query_map([id], |row| {
                    Ok(SafEvent {
                        id: row.get(0)?,
                        saf_id: row.get(1)?,
                        at: row.get(2)?,
                        kind: row.get(3)?,
                        send_no: row.get(4)?,
                        mti: row.get(5)?,
                        response_code: row.get(6)?,
                        detail: row.get(7)?,
                    })
                })
                .map_err(sql(op))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql(op))
        })
    }
}

/// Maps an SQLite error to [`StoreError::Sql`] naming the operation.
/// Turns on the query planner stability guarantee. Without it SQLite marks a statement with
/// `col = ?` terms to be planned again whenever its parameters are cleared, which the
/// statement cache does after every use: each cached statement was parsed again each time.
fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map(|_| ())
}

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sql { op, source }
}

/// A `COUNT(*)` or `SUM` of flags as an unsigned count (SQLite never makes them negative).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Reads the enums back from their text.
macro_rules! from_sql_text {
    ($($t:ty),*) => {$(
        impl FromSql for $t {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: StoreError| FromSqlError::Other(Box::new(e)))
            }
        }
    )*};
}
from_sql_text!(TxnKind, TxnState, Origin, SafStatus, SafEventKind);

/// A message stored as hex text.
struct Hex(Vec<u8>);

impl FromSql for Hex {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        hex::decode(value.as_str()?)
            .map(Hex)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// A journal entry's request or response: bytes (a BLOB) since schema version 4, hex text
/// in rows written before.
struct StoredMessage(Vec<u8>);

impl FromSql for StoredMessage {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Blob(b) => Ok(StoredMessage(b.to_vec())),
            other => Hex::column_result(other).map(|h| StoredMessage(h.0)),
        }
    }
}

/// The journal columns, in the order [`entry_from_row`] reads them.
const ENTRY_COLUMNS: &str = "id, created_at, updated_at, origin, terminal_id, merchant_id, \
    batch, stan, local_date, local_time, kind, mti, processing_code, amount, masked_pan, \
    state, response_code, rrn, auth_code, upstream_stan, original_id, request, response";

/// Reads a journal row selected with [`ENTRY_COLUMNS`].
fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<JournalEntry> {
    Ok(JournalEntry {
        id: row.get(0)?,
        created_at: row.get(1)?,
        updated_at: row.get(2)?,
        origin: row.get(3)?,
        terminal_id: row.get(4)?,
        merchant_id: row.get(5)?,
        batch: row.get(6)?,
        stan: row.get(7)?,
        local_date: row.get(8)?,
        local_time: row.get(9)?,
        kind: row.get(10)?,
        mti: row.get(11)?,
        processing_code: row.get(12)?,
        amount: row.get(13)?,
        masked_pan: row.get(14)?,
        state: row.get(15)?,
        response_code: row.get(16)?,
        rrn: row.get(17)?,
        auth_code: row.get(18)?,
        upstream_stan: row.get(19)?,
        original_id: row.get(20)?,
        request: row.get::<_, StoredMessage>(21)?.0,
        response: row.get::<_, Option<StoredMessage>>(22)?.map(|m| m.0),
    })
}

/// Runs a journal query selecting [`ENTRY_COLUMNS`] with positional `values`.
fn select_entries(
    conn: &Connection,
    sql_text: &str,
    values: &[Value],
) -> Result<Vec<JournalEntry>, StoreError> {
    let op = "read journal entries";
    let mut stmt = conn.prepare_cached(sql_text).map_err(sql(op))?;
    let rows = stmt
        .query_map(params_from_iter(values), entry_from_row)
        .map_err(sql(op))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql(op))
}

/// The journal entry with this id.
fn select_entry(conn: &Connection, id: i64) -> Result<Option<JournalEntry>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM journal WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], entry_from_row).optional())
    .map_err(sql("read a journal entry"))
}

/// The journal entry with this idempotency key: one seek in `journal_idempotency`.
fn select_entry_by_key(
    conn: &Connection,
    key: &IdempotencyKey,
) -> Result<Option<JournalEntry>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM journal WHERE terminal_id = ?1 AND batch = ?2 \
         AND stan = ?3 AND local_date = ?4 AND local_time = ?5 AND kind = ?6 \
         AND terminal_request = 1"
    ))
    .and_then(|mut s| {
        s.query_row(
            params![
                key.terminal_id,
                key.batch,
                key.stan,
                key.local_date,
                key.local_time,
                key.kind.as_str()
            ],
            entry_from_row,
        )
        .optional()
    })
    .map_err(sql("read a journal entry by idempotency key"))
}

/// Writer side: journals a new entry (its request already hex-encoded) unless its
/// idempotency key is taken: PENDING, or given `sent` (the upstream STAN and when), SENT
/// with that STAN.
fn insert_entry(
    conn: &Connection,
    new: NewEntry,
    sent: Option<(u32, i64)>,
) -> Result<InsertOutcome, StoreError> {
    // A terminal's request carries the key's last column (1); the node's own entries leave
    // it NULL and so never conflict. The key itself is built only when there is a conflict.
    let terminal_request = (new.origin == Origin::Terminal).then_some(1);
    let op = "insert a journal entry";
    let (state, upstream_stan, updated_at) = match sent {
        Some((stan, at)) => (TxnState::Sent, Some(stan), at),
        None => (TxnState::Pending, None, new.created_at),
    };
    let inserted = conn
        .prepare_cached(
            "INSERT INTO journal (created_at, updated_at, origin, terminal_id, merchant_id, \
             batch, stan, local_date, local_time, kind, mti, processing_code, amount, \
             masked_pan, state, original_id, request, terminal_request, upstream_stan) \
             VALUES (?1, ?18, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
             ?17, ?19) ON CONFLICT (terminal_id, batch, stan, local_date, local_time, kind, \
             terminal_request) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                new.created_at,
                new.origin.as_str(),
                new.terminal_id,
                new.merchant_id,
                new.batch,
                new.stan,
                new.local_date,
                new.local_time,
                new.kind.as_str(),
                new.mti,
                new.processing_code,
                new.amount,
                new.masked_pan,
                state.as_str(),
                new.original_id,
                new.request,
                terminal_request,
                updated_at,
                upstream_stan,
            ])
        })
        .map_err(sql(op))?;
    if inserted == 1 {
        let mut entry = JournalEntry::from_new(conn.last_insert_rowid(), new);
        entry.state = state;
        entry.updated_at = updated_at;
        entry.upstream_stan = upstream_stan;
        return Ok(InsertOutcome::Inserted(entry));
    }
    // Only the idempotency key can conflict (the node's entries, without one, never do).
    let Some(key) = new.idempotency_key() else {
        return Err(StoreError::Invalid {
            field: "idempotency key",
            reason: "an entry of the node's own conflicted".to_owned(),
        });
    };
    match select_entry_by_key(conn, &key)? {
        Some(existing) => Ok(InsertOutcome::DuplicateOf(existing)),
        None => Err(StoreError::Invalid {
            field: "idempotency key",
            reason: format!("{key} conflicted, but no entry has it"),
        }),
    }
}

/// Writer side: moves an entry to a new state if the transition is legal.
fn update_entry(
    conn: &Connection,
    id: i64,
    update: StateUpdate,
) -> Result<JournalEntry, StoreError> {
    let mut entry = select_entry(conn, id)?.ok_or(StoreError::NotFound {
        what: "journal entry",
        id,
    })?;
    if !entry.state.can_move_to(update.to) {
        return Err(StoreError::IllegalTransition {
            id,
            from: entry.state,
            to: update.to,
        });
    }
    set_entry_state(conn, id, &update)?;
    entry.state = update.to;
    entry.updated_at = update.at;
    if update.response_code.is_some() {
        entry.response_code = update.response_code;
    }
    if update.rrn.is_some() {
        entry.rrn = update.rrn;
    }
    if update.auth_code.is_some() {
        entry.auth_code = update.auth_code;
    }
    if update.upstream_stan.is_some() {
        entry.upstream_stan = update.upstream_stan;
    }
    if update.response.is_some() {
        entry.response = update.response;
    }
    Ok(entry)
}

/// The states an entry may move to `to` from, as `,A,B,` for `instr`.
fn legal_sources(to: TxnState) -> String {
    let mut out = String::from(",");
    for from in TxnState::ALL {
        if from.can_move_to(to) {
            out.push_str(from.as_str());
            out.push(',');
        }
    }
    out
}

/// Writer side: [`update_entry`] in one statement, the transition checked in its `WHERE`;
/// the entry is read only to say why nothing changed.
fn set_entry_state(conn: &Connection, id: i64, update: &StateUpdate) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE journal SET state = ?2, updated_at = ?3, \
             response_code = COALESCE(?4, response_code), rrn = COALESCE(?5, rrn), \
             auth_code = COALESCE(?6, auth_code), upstream_stan = COALESCE(?7, upstream_stan), \
             response = COALESCE(?8, response) \
             WHERE id = ?1 AND instr(?9, ',' || state || ',') > 0",
        )
        .and_then(|mut s| {
            s.execute(params![
                id,
                update.to.as_str(),
                update.at,
                update.response_code,
                update.rrn,
                update.auth_code,
                update.upstream_stan,
                update.response,
                legal_sources(update.to),
            ])
        })
        .map_err(sql("update a journal entry's state"))?;
    if changed == 1 {
        return Ok(());
    }
    let from: Option<TxnState> = conn
        .prepare_cached("SELECT state FROM journal WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(sql("read a journal entry's state"))?;
    Err(match from {
        None => StoreError::NotFound {
            what: "journal entry",
            id,
        },
        Some(from) => StoreError::IllegalTransition {
            id,
            from,
            to: update.to,
        },
    })
}

/// The SAF columns, in the order [`saf_from_row`] reads them.
const SAF_COLUMNS: &str = "id, destination, journal_id, created_at, updated_at, mti, \
    repeat_mti, message_hex, status, sends, attempts, last_response, reason";

/// Reads a SAF row selected with [`SAF_COLUMNS`].
fn saf_from_row(row: &Row<'_>) -> rusqlite::Result<SafEntry> {
    Ok(SafEntry {
        id: row.get(0)?,
        destination: row.get(1)?,
        journal_id: row.get(2)?,
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
        mti: row.get(5)?,
        repeat_mti: row.get(6)?,
        message: row.get::<_, Hex>(7)?.0,
        status: row.get(8)?,
        sends: row.get(9)?,
        attempts: row.get(10)?,
        last_response: row.get(11)?,
        reason: row.get(12)?,
    })
}

/// The SAF entry with this id.
fn select_saf(conn: &Connection, id: i64) -> Result<Option<SafEntry>, StoreError> {
    conn.prepare_cached(&format!("SELECT {SAF_COLUMNS} FROM saf WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], saf_from_row).optional())
        .map_err(sql("read a SAF entry"))
}

/// The SAF entry `id`, which must be queued.
fn queued_saf(conn: &Connection, id: i64) -> Result<SafEntry, StoreError> {
    let entry = select_saf(conn, id)?.ok_or(StoreError::NotFound {
        what: "SAF entry",
        id,
    })?;
    if entry.status != SafStatus::Queued {
        return Err(StoreError::SafNotQueued {
            id,
            status: entry.status,
        });
    }
    Ok(entry)
}

/// One row of `saf_event`.
struct EventRow<'a> {
    saf_id: i64,
    at: i64,
    kind: SafEventKind,
    send_no: Option<u32>,
    mti: Option<&'a str>,
    response_code: Option<&'a str>,
    detail: Option<&'a str>,
}

/// Appends one row to `saf_event`.
fn insert_event(conn: &Connection, e: &EventRow<'_>) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO saf_event (saf_id, at, event, send_no, mti, response_code, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            e.saf_id,
            e.at,
            e.kind.as_str(),
            e.send_no,
            e.mti,
            e.response_code,
            e.detail
        ])
    })
    .map(|_| ())
    .map_err(sql("record a SAF event"))
}

/// Records a transmission of `entry` as a SENT (first) or REPEAT event; returns the
/// entry's new send count.
fn record_send(
    conn: &Connection,
    entry: &SafEntry,
    response_code: Option<&str>,
    now: i64,
) -> Result<u32, StoreError> {
    let send_no = entry.sends.saturating_add(1);
    let mti = entry.next_mti();
    insert_event(
        conn,
        &EventRow {
            saf_id: entry.id,
            at: now,
            kind: if entry.sends == 0 {
                SafEventKind::Sent
            } else {
                SafEventKind::Repeat
            },
            send_no: Some(send_no),
            mti: Some(&mti),
            response_code,
            detail: None,
        },
    )?;
    Ok(send_no)
}

/// Writer side: queues an entry at the tail of its destination unless the queue is full.
fn saf_enqueue(
    conn: &Connection,
    config: &SafConfig,
    new: NewSafEntry,
) -> Result<SafEntry, StoreError> {
    let op = "queue a SAF entry";
    let queued: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM saf WHERE destination = ?1 AND status = 'QUEUED'")
        .and_then(|mut s| s.query_row([&new.destination], |r| r.get(0)))
        .map_err(sql(op))?;
    let queued = count(queued);
    if queued >= u64::from(config.max_queued) {
        return Err(StoreError::SafFull {
            destination: new.destination,
            queued,
        });
    }
    conn.prepare_cached(
        "INSERT INTO saf (destination, journal_id, created_at, updated_at, mti, repeat_mti, \
         message_hex, status) VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, 'QUEUED')",
    )
    .and_then(|mut s| {
        s.execute(params![
            new.destination,
            new.journal_id,
            new.created_at,
            new.mti,
            new.repeat_mti,
            hex::encode_upper(&new.message),
        ])
    })
    .map_err(sql(op))?;
    let entry = SafEntry {
        id: conn.last_insert_rowid(),
        destination: new.destination,
        journal_id: new.journal_id,
        created_at: new.created_at,
        updated_at: new.created_at,
        mti: new.mti,
        repeat_mti: new.repeat_mti,
        message: new.message,
        status: SafStatus::Queued,
        sends: 0,
        attempts: 0,
        last_response: None,
        reason: None,
    };
    insert_event(
        conn,
        &EventRow {
            saf_id: entry.id,
            at: entry.created_at,
            kind: SafEventKind::Enqueued,
            send_no: None,
            mti: Some(&entry.mti),
            response_code: None,
            detail: None,
        },
    )?;
    Ok(entry)
}

/// Why an entry has expired at `now`, if it has.
fn expired(config: &SafConfig, entry: &SafEntry, now: i64) -> Option<String> {
    let age = now.saturating_sub(entry.created_at);
    let expiry = config.expiry_millis();
    (age >= expiry).then(|| format!("expired: queued {} ms ago, expiry is {} ms", age, expiry))
}

/// Writer side: records a transmission, counts it if a response came, and moves the entry
/// to the exception queue when exhausted or expired.
fn saf_record_attempt(
    conn: &Connection,
    config: &SafConfig,
    id: i64,
    response_code: Option<String>,
    now: i64,
) -> Result<AttemptOutcome, StoreError> {
    let mut entry = queued_saf(conn, id)?;
    entry.sends = record_send(conn, &entry, response_code.as_deref(), now)?;
    if let Some(code) = &response_code {
        entry.attempts = entry.attempts.saturating_add(1);
        entry.last_response = Some(code.clone());
    }
    conn.prepare_cached(
        "UPDATE saf SET sends = ?2, attempts = ?3, last_response = ?4, updated_at = ?5 \
         WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            entry.sends,
            entry.attempts,
            entry.last_response,
            now
        ])
    })
    .map_err(sql("record a SAF attempt"))?;
    let reason = match &response_code {
        Some(code) if entry.attempts >= config.max_attempts => Some(format!(
            "exhausted: {} responses without completion, the last {code}",
            entry.attempts
        )),
        _ => expired(config, &entry, now),
    };
    match reason {
        Some(reason) => {
            saf_to_exception(conn, entry, reason.clone(), now)?;
            Ok(AttemptOutcome::Exception { reason })
        }
        None if response_code.is_some() => Ok(AttemptOutcome::Retry {
            attempts: entry.attempts,
        }),
        None => Ok(AttemptOutcome::NoResponse),
    }
}

/// Writer side: records the transmission whose response completes the entry.
fn saf_complete(
    conn: &Connection,
    id: i64,
    response_code: String,
    now: i64,
) -> Result<SafEntry, StoreError> {
    let mut entry = queued_saf(conn, id)?;
    entry.sends = record_send(conn, &entry, Some(&response_code), now)?;
    entry.attempts = entry.attempts.saturating_add(1);
    entry.status = SafStatus::Done;
    entry.updated_at = now;
    conn.prepare_cached(
        "UPDATE saf SET status = 'DONE', sends = ?2, attempts = ?3, last_response = ?4, \
         updated_at = ?5 WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![id, entry.sends, entry.attempts, response_code, now]))
    .map_err(sql("complete a SAF entry"))?;
    insert_event(
        conn,
        &EventRow {
            saf_id: id,
            at: now,
            kind: SafEventKind::Completed,
            send_no: None,
            mti: None,
            response_code: Some(&response_code),
            detail: None,
        },
    )?;
    entry.last_response = Some(response_code);
    Ok(entry)
}

/// Moves a queued entry to the exception queue.
fn saf_to_exception(
    conn: &Connection,
    mut entry: SafEntry,
    reason: String,
    now: i64,
) -> Result<SafEntry, StoreError> {
    conn.prepare_cached(
        "UPDATE saf SET status = 'EXCEPTION', reason = ?2, updated_at = ?3 WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![entry.id, reason, now]))
    .map_err(sql("move a SAF entry to the exception queue"))?;
    insert_event(
        conn,
        &EventRow {
            saf_id: entry.id,
            at: now,
            kind: SafEventKind::Exception,
            send_no: None,
            mti: None,
            response_code: None,
            detail: Some(&reason),
        },
    )?;
    tracing::warn!(
        saf_id = entry.id,
        destination = %entry.destination,
        %reason,
        "SAF entry moved to the exception queue"
    );
    entry.status = SafStatus::Exception;
    entry.reason = Some(reason);
    entry.updated_at = now;
    Ok(entry)
}

/// Writer side: moves every queued entry past its expiry to the exception queue.
fn saf_expire(
    conn: &Connection,
    config: &SafConfig,
    now: i64,
) -> Result<Vec<SafEntry>, StoreError> {
    let op = "find expired SAF entries";
    let cutoff = now.saturating_sub(config.expiry_millis());
    let due = {
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {SAF_COLUMNS} FROM saf WHERE status = 'QUEUED' AND created_at <= ?1 \
                 ORDER BY id"
            ))
            .map_err(sql(op))?;
        let rows = stmt.query_map([cutoff], saf_from_row).map_err(sql(op))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sql(op))?
    };
    let mut moved = Vec::with_capacity(due.len());
    for entry in due {
        let reason = expired(config, &entry, now).unwrap_or_default();
        moved.push(saf_to_exception(conn, entry, reason, now)?);
    }
    Ok(moved)
}
