//! Store and forward of reversals: queueing them durably, and the sender task that drains
//! the latched heads of the queues through the links to the center.
//!
//! - The queued message is the upstream reversal (0400) without a MAC, in `cups-pos` form
//!   whatever the links speak, built from the journal entry alone (so crash recovery can
//!   build it too): the original's fields 3, 4, 22, 25, 41, 42, 49, 60 from the masked
//!   request, field 11 = the original's upstream STAN (a new one if it never got one), 32,
//!   39 = the reason, 61 = batch, upstream STAN and date of the original. It is queued under
//!   the SAF destination of the links (the first `[[link]]`'s name).
//! - Each transmission goes through a link that is up (the one with the fewest requests in
//!   flight), re-encoded in that link's spec; it takes the next MTI (`0400`, then `0401`
//!   when the first link has `repeat_mti`), is MACed with X9.19 under the ZAK (field 64, or
//!   128 with a secondary bitmap), and goes through the link's matcher. The sender drains
//!   the queue of every link's name, so entries queued under another link's name by an
//!   earlier configuration still go out.
//! - Only a received response counts as an attempt. A response code in `saf.done_codes`
//!   completes the entry and moves the journal entry REVERSAL_QUEUED -> REVERSED; any other
//!   code is a counted attempt; no response is recorded but not counted. Entries that
//!   exhaust their attempts or expire go to the exception queue (the store moves them).
//! - Up to `saf.batch_size` entries per round, then a pause of `saf.retry_interval` (also
//!   after a failure); a new entry wakes the sender at once.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use iso8583_wire::{MessageBuf, decode, specs};

use super::link::Link;
use pboc_sam::MacAlgorithm;
use tokio::sync::watch;
use tokio::time::sleep;
use tracing::{error, info, warn};

use crate::store::{
    AttemptOutcome, Journal, JournalEntry, LinkEventKind, LinkEvents, NewLinkEvent, NewSafEntry,
    SafEntry, SafQueue, StateUpdate, TxnState,
};

use super::Shared;
use super::clock::unix_millis;
use super::flows::FlowError;
use super::link::match_key;
use super::model::{encode_for_mac, journal_body, mab, put_mac};
use crate::wire::{journal_leaves_out, remove_fields};

/// Builds the upstream reversal of a journal entry (unsigned: field 64 zero).
pub fn reversal_body(
    entry: &JournalEntry,
    acquirer: &str,
    upstream_stan: u32,
    reason: &str,
) -> Result<Vec<u8>, FlowError> {
    let spec = specs::cups_pos();
    let bad = |m: String| FlowError {
        code: "REVERSAL_BUILD",
        at: "build reversal",
        message: m,
        response_code: "96",
    };
    let orig = decode(spec, &entry.request)
        .map_err(|e| bad(format!("journal entry {}: stored request: {e}", entry.id)))?;
    let mut m = MessageBuf::new("0400").map_err(|e| bad(e.to_string()))?;
    for n in [3u16, 4, 22, 25, 49, 60] {
        if let Some(f) = orig.field(n) {
            m.set(n, f.to_string());
        }
    }
    m.set(11, format!("{upstream_stan:06}"))
        .set(32, acquirer.to_owned())
        .set(39, reason.to_owned())
        .set(41, entry.terminal_id.clone())
        .set(42, entry.merchant_id.clone())
        .set(
            61,
            format!("{:06}{upstream_stan:06}{}", entry.batch, entry.local_date),
        );
    encode_for_mac(spec, &mut m).map_err(|e| bad(e.to_string()))
}

/// Queues the reversal of `entry` for the link durably and wakes the sender.
pub async fn queue_reversal(
    sh: &Shared,
    entry: &JournalEntry,
    reason: &str,
) -> Result<(), FlowError> {
    let ustan = entry.upstream_stan.unwrap_or_else(|| sh.links.alloc_stan());
    let primary = sh.links.primary();
    let body = reversal_body(entry, primary.acquirer(), ustan, reason)?;
    let new = NewSafEntry {
        destination: sh.links.saf_destination().to_owned(),
        journal_id: Some(entry.id),
        created_at: unix_millis(),
        mti: "0400".to_owned(),
        repeat_mti: primary.config().repeat_mti,
        message: body,
    };
    sh.store.enqueue(new).await.map_err(|e| FlowError {
        code: "SAF_ENQUEUE",
        at: "queue reversal",
        message: e.to_string(),
        response_code: "96",
    })?;
    sh.metrics.reversals_queued.fetch_add(1, Ordering::Relaxed);
    info!(entry = entry.id, upstream_stan = ustan, "reversal queued");
    sh.saf_wake.notify_one();
    Ok(())
}

/// The message of a SAF entry as it goes out this time on `link`: in the link's spec, next
/// MTI, X9.19 MAC.
async fn prepare(
    sh: &Shared,
    link: &Link,
    entry: &SafEntry,
) -> Result<(Vec<u8>, String, u32), String> {
    let msg =
        decode(specs::cups_pos(), &entry.message).map_err(|e| format!("stored message: {e}"))?;
    let spec = link.spec();
    let stan = msg
        .field(11)
        .and_then(|f| f.to_u64().ok())
        .and_then(|s| u32::try_from(s).ok())
        .ok_or("stored message has no field 11")?;
    let tid = msg
        .field(41)
        .and_then(|f| f.as_str().ok())
        .unwrap_or("")
        .to_owned();
    let mti = entry.next_mti();
    let mut m = msg.to_buf();
    m.set_mti(&mti).map_err(|e| e.to_string())?;
    let mut body = encode_for_mac(spec, &mut m).map_err(|e| e.to_string())?;
    let mac = sh
        .hsm
        .generate_mac(&sh.zak, MacAlgorithm::X919, mab(spec, &body))
        .await
        .map_err(|e| e.to_string())?;
    put_mac(spec, &mut body, &mac);
    Ok((body, match_key(&mti, link.acquirer(), &tid, stan), stan))
}

/// What one transmission did.
enum Sent {
    /// Completed or moved on: take the next head now.
    Next,
    /// Try again after the retry interval.
    Wait,
}

async fn send_one(sh: &Shared, link: &Link, entry: &SafEntry) -> Sent {
    let (body, key, stan) = match prepare(sh, link, entry).await {
        Ok(x) => x,
        Err(why) => {
            error!(
                code = "SAF_PREPARE",
                saf = entry.id,
                "{why}; moved to the exception queue"
            );
            let _ = sh
                .store
                .move_to_exception(entry.id, format!("cannot prepare: {why}"), unix_millis())
                .await;
            sh.metrics.saf_exceptions.fetch_add(1, Ordering::Relaxed);
            return Sent::Next;
        }
    };
    sh.metrics.reversals_sent.fetch_add(1, Ordering::Relaxed);
    let reply = link.exchange(&body, &key, stan, None).await;
    let now = unix_millis();
    let code = match reply {
        Ok(resp) => response_code(link, &resp),
        Err(e) => {
            if e.maybe_sent() {
                let _ = sh.store.record_attempt(entry.id, None, now).await;
            }
            warn!(
                code = e.code(),
                saf = entry.id,
                "reversal not answered: {e}"
            );
            return Sent::Wait;
        }
    };
    let Some(code) = code else {
        warn!(
            code = "SAF_REPLY",
            saf = entry.id,
            "reversal reply without field 39"
        );
        let _ = sh
            .store
            .record_attempt(entry.id, Some("96".to_owned()), now)
            .await;
        return Sent::Wait;
    };
    if sh.config.saf.done_codes.contains(&code) {
        match sh.store.complete(entry.id, code.clone(), now).await {
            Ok(_) => {
                sh.metrics.reversals_done.fetch_add(1, Ordering::Relaxed);
                info!(saf = entry.id, code = %code, "reversal acknowledged");
                if let Some(jid) = entry.journal_id {
                    mark_reversed(sh, jid).await;
                }
            }
            Err(e) => error!(code = "STORE", saf = entry.id, "complete: {e}"),
        }
        return Sent::Next;
    }
    match sh
        .store
        .record_attempt(entry.id, Some(code.clone()), now)
        .await
    {
        Ok(AttemptOutcome::Exception { reason }) => {
            sh.metrics.saf_exceptions.fetch_add(1, Ordering::Relaxed);
            error!(
                code = "SAF_EXCEPTION",
                saf = entry.id,
                "reversal moved to the exception queue: {reason}"
            );
            Sent::Next
        }
        Ok(_) => {
            warn!(saf = entry.id, code = %code, "reversal answered with a retry code");
            Sent::Wait
        }
        Err(e) => {
            error!(code = "STORE", saf = entry.id, "record attempt: {e}");
            Sent::Wait
        }
    }
}

async fn mark_reversed(sh: &Shared, journal_id: i64) {
    match sh.store.get(journal_id).await {
        Ok(Some(e)) if e.state == TxnState::ReversalQueued => {
            if let Err(err) = sh
                .store
                .update_state(
                    journal_id,
                    StateUpdate::to(TxnState::Reversed, unix_millis()),
                )
                .await
            {
                error!(code = "STORE", entry = journal_id, "mark reversed: {err}");
            }
        }
        Ok(Some(e)) => {
            info!(entry = journal_id, state = %e.state, "reversal done; entry already final")
        }
        Ok(None) => warn!(
            entry = journal_id,
            "reversal done for an unknown journal entry"
        ),
        Err(err) => error!(code = "STORE", entry = journal_id, "{err}"),
    }
}

/// The SAF sender of the links, until `shutdown` turns true: each round takes the heads of
/// the queues (the SAF destination first, then every other link's name) through a link that
/// is up; with no link up it waits for one.
pub async fn run(sh: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let interval = sh.config.saf.retry_interval;
    let mut dests = vec![sh.links.saf_destination().to_owned()];
    for l in sh.links.iter() {
        if !dests.iter().any(|d| d == l.name()) {
            dests.push(l.name().to_owned());
        }
    }
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Ok(expired) = sh.store.expire(unix_millis()).await {
            for e in expired {
                sh.metrics.saf_exceptions.fetch_add(1, Ordering::Relaxed);
                error!(
                    code = "SAF_EXPIRED",
                    saf = e.id,
                    "reversal expired into the exception queue"
                );
            }
        }
        let mut wait = true;
        let mut sent = 0;
        'dests: for dest in &dests {
            while sent < sh.config.saf.batch_size {
                let Some(link) = sh.links.pick(&[]) else {
                    break 'dests;
                };
                let head = match sh.store.head(dest).await {
                    Ok(Some(h)) => h,
                    Ok(None) => continue 'dests,
                    Err(e) => {
                        error!(code = "STORE", "SAF head: {e}");
                        break 'dests;
                    }
                };
                sent += 1;
                if let Sent::Wait = send_one(&sh, link, &head).await {
                    break 'dests;
                }
                if *shutdown.borrow() {
                    return;
                }
            }
            // The batch is spent: the next round comes at once.
            wait = false;
            break;
        }
        if wait {
            tokio::select! {
                _ = sleep(interval) => {}
                _ = sh.saf_wake.notified() => {}
                _ = sh.links.up_notify.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Handles the responses on `link` that arrive after their request timed out, or match
/// nothing: each is
/// journaled as a link event (see [`crate::store::events`]); its MAC must verify first
/// (`BAD_MAC` otherwise, and nothing more is done); a late decline moves its timed-out
/// entry to DECLINED; a late approval keeps its reversal.
pub async fn run_late(sh: Arc<Shared>, link: Arc<Link>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let late = tokio::select! {
            l = link.take_late() => l,
            _ = shutdown.changed() => return,
        };
        let Some(late) = late else { return };
        handle_late(&sh, &link, late).await;
    }
}

async fn handle_late(sh: &Shared, link: &Link, late: super::link::LateResponse) {
    let code = response_code(link, &late.body);
    let trusted = super::flows::check_reply(sh, link, &late.body)
        .await
        .map(|_| ());
    let kind = match (&trusted, late.journal_id, code.as_deref()) {
        (Err(_), _, _) => LinkEventKind::BadMac,
        (Ok(()), None, _) => LinkEventKind::Unmatched,
        (Ok(()), Some(_), Some("00")) => LinkEventKind::LateApproval,
        (Ok(()), Some(_), _) => LinkEventKind::LateDecline,
    };
    let event = NewLinkEvent {
        at: unix_millis(),
        link: link.name().to_owned(),
        kind,
        journal_id: late.journal_id,
        match_key: late.key.clone(),
        response_code: code.clone(),
        message: journal_form(link, &late.body),
    };
    if let Err(e) = sh.store.record_link_event(event).await {
        error!(code = "STORE", event = %kind, "cannot journal a link event: {e}");
    }
    match kind {
        LinkEventKind::BadMac => {
            sh.metrics.unmatched.fetch_add(1, Ordering::Relaxed);
            warn!(code = "BAD_MAC", key = ?late.key, response = ?code, reason = ?trusted.err(), "late or unmatched response with a bad MAC; ignored");
        }
        LinkEventKind::Unmatched => {
            sh.metrics.unmatched.fetch_add(1, Ordering::Relaxed);
            warn!(code = "UNMATCHED", key = ?late.key, response = ?code, "response from the center matches no request");
        }
        LinkEventKind::LateApproval => {
            sh.metrics.late_approvals.fetch_add(1, Ordering::Relaxed);
            warn!(code = "LATE_APPROVAL", entry = ?late.journal_id, "late approval after a timeout; the reversal stands");
        }
        LinkEventKind::LateDecline => {
            sh.metrics.late_declines.fetch_add(1, Ordering::Relaxed);
            if let Some(jid) = late.journal_id {
                late_decline(sh, jid, code).await;
            }
        }
    }
}

async fn late_decline(sh: &Shared, jid: i64, code: Option<String>) {
    match sh.store.get(jid).await {
        Ok(Some(e)) if matches!(e.state, TxnState::TimedOut | TxnState::ReversalQueued) => {
            let up = StateUpdate {
                response_code: code.clone().filter(|c| c.len() == 2),
                ..StateUpdate::to(TxnState::Declined, unix_millis())
            };
            match sh.store.update_state(jid, up).await {
                Ok(_) => {
                    warn!(code = "LATE_DECLINE", entry = jid, response = ?code, "late decline journaled")
                }
                Err(err) => error!(code = "STORE", entry = jid, "late decline: {err}"),
            }
        }
        Ok(_) => {
            warn!(code = "LATE_DECLINE", entry = jid, response = ?code, "late decline; entry already final")
        }
        Err(err) => error!(code = "STORE", entry = jid, "{err}"),
    }
}

/// A late response as journaled: in `cups-pos` form (as every other journaled message),
/// without the fields a journal leaves out ([`crate::wire::journal_copy`]: what either spec
/// masks, the expiry, key data and MACs); the link's own form when it does not fit
/// `cups-pos`.
fn journal_form(link: &Link, body: &[u8]) -> Vec<u8> {
    let spec = link.spec();
    let cups = specs::cups_pos();
    if std::ptr::eq(spec, cups) {
        return journal_body(cups, body);
    }
    let Ok(msg) = decode(spec, body) else {
        return Vec::new();
    };
    let mut buf = msg.to_buf();
    remove_fields(&mut buf, |n| {
        journal_leaves_out(spec, n) || journal_leaves_out(cups, n)
    });
    buf.to_vec(cups)
        .or_else(|_| buf.to_vec(spec))
        .unwrap_or_default()
}

/// Field 39 of a response on `link`, as a response code of the terminals when it gives one
/// (an ISO 8583:1993 action code translated, `400` is `00`), else as carried.
fn response_code(link: &Link, body: &[u8]) -> Option<String> {
    let msg = decode(link.spec(), body).ok()?;
    let code = msg.field(39)?.to_string();
    Some(crate::wire::terminal_response_code(link.spec(), &code).unwrap_or(code))
}
