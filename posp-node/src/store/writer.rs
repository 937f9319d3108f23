//! The writer thread: one connection, group commit.
//!
//! Callers send write jobs through a bounded channel (a full channel makes them wait: the
//! queue is bounded). The thread takes the first job, drains whatever else is already queued
//! up to the batch limit, runs them all in ONE transaction (each job in its own savepoint,
//! so a job that fails leaves the others intact; a job that writes with one statement needs
//! none, SQLite undoing a failed statement by itself), commits once, and only then answers
//! each caller. Concurrent writers therefore share one fsync, and nobody hears "done" before the
//! data is durable. If the commit fails, every caller of the batch gets
//! [`StoreError::Commit`].
//!
//! Shutdown closes the channel; the thread finishes what is queued, then exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// A write to run inside the batch transaction.
trait Job: Send {
    /// Whether the job writes with one statement (it then runs without a savepoint).
    fn single_statement(&self) -> bool;
    /// Runs the write; returns the answer to send once the batch's fate is known.
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Answer>;
    /// Answers the caller with an error without running the write.
    fn fail(self: Box<Self>, err: StoreError);
}

/// The result of one job, held until the commit.
trait Answer: Send {
    /// Whether the job succeeded (its savepoint is released rather than rolled back).
    fn is_ok(&self) -> bool;
    /// Sends the result, or the commit failure when the commit failed.
    fn send(self: Box<Self>, commit: Result<(), &str>);
}

/// A write waiting in the queue: the work and where to send its result.
struct Task<T, F> {
    work: F,
    single_statement: bool,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

/// A write that has run: its result and where to send it.
struct Outcome<T> {
    result: Result<T, StoreError>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Task<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn single_statement(&self) -> bool {
        self.single_statement
    }

    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Answer> {
        let Task { work, reply, .. } = *self;
        Box::new(Outcome {
            result: work(conn),
            reply,
        })
    }

    fn fail(self: Box<Self>, err: StoreError) {
        // The caller may have given up waiting; nothing to do then.
        let _ = self.reply.send(Err(err));
    }
}

impl<T: Send> Answer for Outcome<T> {
    fn is_ok(&self) -> bool {
        self.result.is_ok()
    }

    fn send(self: Box<Self>, commit: Result<(), &str>) {
        let result = match (self.result, commit) {
            (Err(e), _) => Err(e),
            (Ok(v), Ok(())) => Ok(v),
            (Ok(_), Err(detail)) => Err(StoreError::Commit {
                detail: detail.to_owned(),
            }),
        };
        // The caller may have given up waiting; the write stands regardless.
        let _ = self.reply.send(result);
    }
}

/// Counters of the writer, for status and for checking that group commit happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: u64,
    /// Write requests committed (each insert, state update or SAF operation is one;
    /// requests that failed and were rolled back are not counted).
    pub entries: u64,
    /// The most requests one commit carried.
    pub largest_batch: u64,
}

#[derive(Default)]
/// The shared counters behind [`WriterStats`].
struct Counters {
    commits: AtomicU64,
    entries: AtomicU64,
    largest_batch: AtomicU64,
}

/// The handle callers use to submit writes.
pub(crate) struct Writer {
    jobs: std::sync::Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer thread on `conn` with a queue of `queue` jobs and at most
    /// `batch_limit` jobs per commit.
    pub(crate) fn start(
        conn: Connection,
        queue: usize,
        batch_limit: usize,
    ) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("posp-store-writer".to_owned())
            .spawn(move || run(conn, rx, batch_limit.max(1), &thread_counters))
            .map_err(StoreError::Spawn)?;
        Ok(Writer {
            jobs: std::sync::Mutex::new(Some(tx)),
            thread: std::sync::Mutex::new(Some(thread)),
            counters,
        })
    }

    /// Runs `work` inside the next batch transaction, in a savepoint of its own, and
    /// returns its result once the batch is committed.
    pub(crate) async fn submit<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit_job(work, false).await
    }

    /// As [`submit`](Self::submit), for `work` that writes with at most one statement
    /// (it may read before and after): it runs without a savepoint, since SQLite undoes a
    /// failed statement by itself. Two statements per job fewer, and no page copied to the
    /// savepoint journal, for the journal's inserts and state changes.
    pub(crate) async fn submit_one_statement<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit_job(work, true).await
    }

    async fn submit_job<T, F>(&self, work: F, single_statement: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let sender = self
            .jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(Box::new(Task {
                work,
                single_statement,
                reply,
            }))
            .await
            .map_err(|_| StoreError::Closed)?;
        drop(sender);
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// The counters so far.
    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            entries: self.counters.entries.load(Ordering::Relaxed),
            largest_batch: self.counters.largest_batch.load(Ordering::Relaxed),
        }
    }

    /// Closes the queue, lets the thread commit what is queued, and joins it. Later
    /// writes fail with [`StoreError::Closed`]. Calling it again does nothing.
    pub(crate) fn shutdown(&self) {
        drop(
            self.jobs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the journal writer thread panicked");
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The thread's loop: one batch per wake-up until the channel is closed and empty.
fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Box<dyn Job>>,
    batch_limit: usize,
    counters: &Counters,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(batch_limit);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < batch_limit {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, &mut batch, counters);
    }
}

/// Runs a statement without parameters through the statement cache: `BEGIN`, `COMMIT` and
/// the savepoints run for every batch and job, and `execute_batch` parsed them every time.
fn run_cached(conn: &Connection, stmt: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(stmt)?.execute([]).map(|_| ())
}

/// Runs one job of a batch: in a savepoint of its own unless it writes with one statement.
/// Returns its answer (none when its savepoint could not be opened: the job has been failed)
/// and, when the savepoint could not be opened or closed, why the batch cannot commit.
fn run_job(conn: &Connection, job: Box<dyn Job>) -> (Option<Box<dyn Answer>>, Option<String>) {
    if job.single_statement() {
        return (Some(job.run(conn)), None);
    }
    if let Err(e) = run_cached(conn, "SAVEPOINT job") {
        let detail = format!("open savepoint: {e}");
        job.fail(StoreError::Commit {
            detail: detail.clone(),
        });
        return (None, Some(detail));
    }
    let answer = job.run(conn);
    let closed = if answer.is_ok() {
        run_cached(conn, "RELEASE job")
    } else {
        // ROLLBACK TO keeps the savepoint open: release it too.
        run_cached(conn, "ROLLBACK TO job").and_then(|()| run_cached(conn, "RELEASE job"))
    };
    (
        Some(answer),
        closed.err().map(|e| format!("close savepoint: {e}")),
    )
}

/// Runs `batch` in one transaction, commits, then answers every job.
fn commit_batch(conn: &mut Connection, batch: &mut Vec<Box<dyn Job>>, counters: &Counters) {
    if let Err(e) = run_cached(conn, "BEGIN IMMEDIATE") {
        let detail = format!("begin transaction: {e}");
        tracing::error!(%detail, "journal write batch failed");
        for job in batch.drain(..) {
            job.fail(StoreError::Commit {
                detail: detail.clone(),
            });
        }
        return;
    }
    let mut answers: Vec<Box<dyn Answer>> = Vec::with_capacity(batch.len());
    // Set when a savepoint cannot be opened or closed: the transaction's content is then
    // unknown, so the whole batch is rolled back and every caller hears it failed.
    let mut broken: Option<String> = None;
    for job in batch.drain(..) {
        if let Some(detail) = &broken {
            job.fail(StoreError::Commit {
                detail: detail.clone(),
            });
            continue;
        }
        let (answer, fault) = run_job(conn, job);
        answers.extend(answer);
        broken = fault;
        // Some errors (disk full, I/O) make SQLite roll the whole transaction back: what
        // the batch wrote so far is gone, and what follows would run outside it.
        if broken.is_none() && conn.is_autocommit() {
            broken = Some("SQLite rolled the transaction back after a failed write".to_owned());
        }
    }
    let committed = match broken {
        Some(detail) => Err(detail),
        None => run_cached(conn, "COMMIT").map_err(|e| format!("commit: {e}")),
    };
    if committed.is_err() && !conn.is_autocommit() {
        // Nothing of the batch stays.
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!("journal write batch: rollback failed: {e}");
        }
    }
    match committed {
        Ok(()) => {
            let ok = answers.iter().filter(|a| a.is_ok()).count() as u64;
            counters.commits.fetch_add(1, Ordering::Relaxed);
            counters.entries.fetch_add(ok, Ordering::Relaxed);
            counters
                .largest_batch
                .fetch_max(answers.len() as u64, Ordering::Relaxed);
            for answer in answers {
                answer.send(Ok(()));
            }
        }
        Err(detail) => {
            tracing::error!(%detail, "journal write batch failed, nothing of it is stored");
            for answer in answers {
                answer.send(Err(&detail));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn insert(conn: &Connection, v: i64) -> Result<i64, StoreError> {
        conn.execute("INSERT INTO t (v) VALUES (?1)", [v])
            .map(|_| v)
            .map_err(|e| StoreError::Invalid {
                field: "v",
                reason: e.to_string(),
            })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_job_with_or_without_a_savepoint_leaves_the_rest_of_its_batch() {
        let dir = crate::demo::temp_dir("posp-writer");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)")
            .unwrap();
        let writer = Arc::new(Writer::start(conn, 16, 16).unwrap());
        // The first batch holds the thread until the other jobs are queued, so that they
        // all share the second batch.
        let (running_tx, running_rx) = std::sync::mpsc::channel::<()>();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let w = Arc::clone(&writer);
        let first = tokio::spawn(async move {
            w.submit(move |c| {
                running_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                insert(c, 1)
            })
            .await
        });
        tokio::task::spawn_blocking(move || running_rx.recv().unwrap())
            .await
            .unwrap();
        // join! polls in order: each job is queued at its first poll, then the thread goes.
        let job = |v: i64, single: bool| {
            let w = Arc::clone(&writer);
            async move {
                w.submit_job(move |c| insert(c, v), single)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        let (a, b, c, d, e, ()) = tokio::join!(
            job(2, true),
            job(1, true),
            job(3, false),
            job(2, false),
            job(4, true),
            async { go_tx.send(()).unwrap() }
        );
        assert_eq!(first.await.unwrap().unwrap(), 1);
        let dup = Err("invalid v: UNIQUE constraint failed: t.v".to_owned());
        assert_eq!(
            vec![a, b, c, d, e],
            vec![Ok(2), dup.clone(), Ok(3), dup, Ok(4)]
        );
        assert_eq!(
            writer.stats(),
            WriterStats {
                commits: 2,
                entries: 4,
                largest_batch: 5
            }
        );
        writer.shutdown();
        let c = Connection::open(&path).unwrap();
        let rows: Vec<i64> = super::super::tests::column(&c, "SELECT v FROM t ORDER BY v");
        assert_eq!(rows, vec![1, 2, 3, 4]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
