//! Crash recovery, run once at start before terminals are accepted: every journal entry left
//! PENDING or SENT (its outcome unknown: it may have reached the center) gets a reversal
//! queued in the SAF and moves to REVERSAL_QUEUED; entries left TIMED_OUT of a reversible
//! kind (a crash between the timeout and the queueing) get one too. Entries of kinds that
//! are not reversed (balance inquiries, refunds, load confirmations) move to FAILED
//! (PENDING) or TIMED_OUT (SENT) instead.

use crate::store::{EntryFilter, Journal, JournalEntry, StateUpdate, TxnState};

use super::Shared;
use super::clock::unix_millis;
use super::flows::FlowError;
use super::route::reversible;
use super::saf_sender::queue_reversal;

/// What recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Journal entries that got a reversal queued.
    pub reversals_queued: Vec<i64>,
    /// Entries closed without a reversal (not reversible kinds).
    pub closed: Vec<i64>,
}

/// Page size when walking the unfinished entries.
const PAGE: u32 = 500;

pub(crate) async fn recover_one(
    sh: &Shared,
    e: &JournalEntry,
    report: &mut RecoveryReport,
) -> Result<(), FlowError> {
    let store_err = |at: &'static str, err: crate::store::StoreError| FlowError {
        code: "STORE",
        at,
        message: format!("journal entry {}: {err}", e.id),
        response_code: "96",
    };
    if !reversible(e.kind) {
        let to = match e.state {
            TxnState::Pending => TxnState::Failed,
            TxnState::Sent => TxnState::TimedOut,
            _ => return Ok(()),
        };
        sh.store
            .update_state(e.id, StateUpdate::to(to, unix_millis()))
            .await
            .map_err(|x| store_err("recovery close", x))?;
        report.closed.push(e.id);
        return Ok(());
    }
    queue_reversal(sh, e, "98").await?;
    sh.store
        .update_state(
            e.id,
            StateUpdate::to(TxnState::ReversalQueued, unix_millis()),
        )
        .await
        .map_err(|x| store_err("recovery mark", x))?;
    report.reversals_queued.push(e.id);
    tracing::warn!(code = "RECOVERY", entry = e.id, state = %e.state, kind = %e.kind, terminal = %e.terminal_id, stan = e.stan, "unfinished entry at start: reversal queued");
    Ok(())
}

/// Runs recovery; see the module documentation.
pub async fn recover(sh: &Shared) -> Result<RecoveryReport, FlowError> {
    let mut report = RecoveryReport::default();
    let mut after = 0;
    loop {
        let page = sh
            .store
            .unfinished(after, PAGE)
            .await
            .map_err(|e| FlowError {
                code: "STORE",
                at: "recovery scan",
                message: e.to_string(),
                response_code: "96",
            })?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for e in &page {
            recover_one(sh, e, &mut report).await?;
        }
    }
    let filter = EntryFilter {
        state: Some(TxnState::TimedOut),
        ..EntryFilter::all(100_000)
    };
    let timed_out = sh.store.find(&filter).await.map_err(|e| FlowError {
        code: "STORE",
        at: "recovery scan",
        message: e.to_string(),
        response_code: "96",
    })?;
    for e in timed_out.iter().filter(|e| reversible(e.kind)) {
        recover_one(sh, e, &mut report).await?;
    }
    Ok(report)
}
