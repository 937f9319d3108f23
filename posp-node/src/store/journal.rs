//! The transaction journal's data: entries, kinds, states and their legal transitions, the
//! idempotency key, lookups and settlement totals.
//!
//! # What goes into an entry
//!
//! A journal entry records one transaction of the node: a terminal's request (a purchase,
//! a sign-in, a reversal the terminal sends) or a message the node originates itself
//! (an automatic reversal after a timeout). It is written as [`TxnState::Pending`] before
//! anything is sent upstream, then moved through [`TxnState`] by
//! [`Journal::update_state`](super::Journal::update_state).
//!
//! **Card data contract.** The journal never holds a PAN, track data or a PIN block in
//! clear. [`NewEntry::masked_pan`] must already be masked (first 6 / last 4 digits kept, the
//! rest `*`; see [`mask_pan`]) and the store refuses anything else. The request and response
//! messages are stored as the caller passes them: the caller must mask or remove the PAN,
//! track 2/3, PIN block and any key fields from them first (the `describe` masking of
//! `iso8583-wire` applied to the bytes, or the fields dropped). The store cannot check raw
//! message bytes, so this half of the contract is the caller's.

use std::fmt;
use std::str::FromStr;

use super::StoreError;

/// What a journal entry is: the transaction kinds a POSP handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TxnKind {
    /// Terminal sign-in (签到): working keys are issued.
    SignIn,
    /// Terminal sign-off (签退).
    SignOff,
    /// Echo test / heartbeat (回响测试).
    Echo,
    /// Balance inquiry (余额查询); never settles.
    Balance,
    /// Purchase (消费).
    Purchase,
    /// Void of a purchase in the same batch (消费撤销).
    PurchaseVoid,
    /// Refund (退货).
    Refund,
    /// Load of an electronic purse or deposit (圈存).
    Load,
    /// Confirmation that the card accepted a load (圈存确认); the load itself settles.
    LoadConfirm,
    /// Reversal (冲正) of an earlier entry.
    Reversal,
    /// Batch settlement (批结算).
    Settlement,
    /// Batch upload after a settlement mismatch (批上送).
    BatchUpload,
}

impl TxnKind {
    /// Every kind, in declaration order.
    pub const ALL: [TxnKind; 12] = [
        TxnKind::SignIn,
        TxnKind::SignOff,
        TxnKind::Echo,
        TxnKind::Balance,
        TxnKind::Purchase,
        TxnKind::PurchaseVoid,
        TxnKind::Refund,
        TxnKind::Load,
        TxnKind::LoadConfirm,
        TxnKind::Reversal,
        TxnKind::Settlement,
        TxnKind::BatchUpload,
    ];

    /// The text stored in the database and printed by the CLI (`PURCHASE_VOID`).
    pub fn as_str(self) -> &'static str {
        match self {
            TxnKind::SignIn => "SIGN_IN",
            TxnKind::SignOff => "SIGN_OFF",
            TxnKind::Echo => "ECHO",
            TxnKind::Balance => "BALANCE",
            TxnKind::Purchase => "PURCHASE",
            TxnKind::PurchaseVoid => "PURCHASE_VOID",
            TxnKind::Refund => "REFUND",
            TxnKind::Load => "LOAD",
            TxnKind::LoadConfirm => "LOAD_CONFIRM",
            TxnKind::Reversal => "REVERSAL",
            TxnKind::Settlement => "SETTLEMENT",
            TxnKind::BatchUpload => "BATCH_UPLOAD",
        }
    }

    /// Whether approved entries of this kind move money and so count in the batch totals
    /// a settlement is checked against: purchases, voids, refunds and loads. Balance
    /// inquiries, network management, load confirmations (the load settles), reversals
    /// (they cancel their original instead) and the settlement messages themselves do not.
    pub fn settles(self) -> bool {
        matches!(
            self,
            TxnKind::Purchase | TxnKind::PurchaseVoid | TxnKind::Refund | TxnKind::Load
        )
    }
}

impl fmt::Display for TxnKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TxnKind {
    type Err = StoreError;

    /// Parses the stored text, ignoring case and accepting `-` for `_`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_uppercase().replace('-', "_");
        TxnKind::ALL
            .into_iter()
            .find(|k| k.as_str() == wanted)
            .ok_or_else(|| StoreError::Invalid {
                field: "kind",
                reason: format!("unknown transaction kind {s:?}"),
            })
    }
}

/// Where a transaction is in its life. The store enforces the transitions of
/// [`TxnState::can_move_to`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    /// Journaled, not yet written upstream (the state every entry starts in).
    Pending,
    /// Written upstream, waiting for the response.
    Sent,
    /// Approved (upstream, or locally for network management). Final unless reversed.
    Approved,
    /// Declined, upstream or locally (bad MAC, unknown terminal). Final.
    Declined,
    /// No response in time; the reversal follows (financial kinds) or it ends here.
    TimedOut,
    /// A reversal is durably queued in the SAF and not yet acknowledged.
    ReversalQueued,
    /// The reversal was acknowledged. Final.
    Reversed,
    /// Never reached the upstream host (HSM error, no link, bad request). Final.
    Failed,
}

impl TxnState {
    /// Every state, in declaration order.
    pub const ALL: [TxnState; 8] = [
        TxnState::Pending,
        TxnState::Sent,
        TxnState::Approved,
        TxnState::Declined,
        TxnState::TimedOut,
        TxnState::ReversalQueued,
        TxnState::Reversed,
        TxnState::Failed,
    ];

    /// The text stored in the database and printed by the CLI (`REVERSAL_QUEUED`).
    pub fn as_str(self) -> &'static str {
        match self {
            TxnState::Pending => "PENDING",
            TxnState::Sent => "SENT",
            TxnState::Approved => "APPROVED",
            TxnState::Declined => "DECLINED",
            TxnState::TimedOut => "TIMED_OUT",
            TxnState::ReversalQueued => "REVERSAL_QUEUED",
            TxnState::Reversed => "REVERSED",
            TxnState::Failed => "FAILED",
        }
    }

    /// Whether the store accepts a move from `self` to `to`:
    ///
    /// | from | to |
    /// |---|---|
    /// | PENDING | SENT, APPROVED, DECLINED, FAILED, REVERSAL_QUEUED (crash recovery: it may have gone out) |
    /// | SENT | APPROVED, DECLINED, TIMED_OUT, REVERSAL_QUEUED (crash recovery) |
    /// | APPROVED | REVERSAL_QUEUED (the terminal reverses it, or its reply could not be delivered) |
    /// | TIMED_OUT | REVERSAL_QUEUED, DECLINED (a late decline before the reversal is queued) |
    /// | REVERSAL_QUEUED | REVERSED, DECLINED (a late decline cancels a reversal not yet sent) |
    /// | DECLINED, REVERSED, FAILED | nothing: they are final |
    ///
    /// Staying in the same state is not a transition and is refused too. A late approval
    /// after a timeout keeps its reversal, so TIMED_OUT never goes to APPROVED.
    pub fn can_move_to(self, to: TxnState) -> bool {
        use TxnState::*;
        matches!(
            (self, to),
            (
                Pending,
                Sent | Approved | Declined | Failed | ReversalQueued
            ) | (Sent, Approved | Declined | TimedOut | ReversalQueued)
                | (Approved, ReversalQueued)
                | (TimedOut, ReversalQueued | Declined)
                | (ReversalQueued, Reversed | Declined)
        )
    }

    /// Whether crash recovery must look at an entry in this state: PENDING and SENT have no
    /// outcome yet, and on restart each of them produces a reversal.
    pub fn is_unfinished(self) -> bool {
        matches!(self, TxnState::Pending | TxnState::Sent)
    }
}

impl fmt::Display for TxnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TxnState {
    type Err = StoreError;

    /// Parses the stored text, ignoring case and accepting `-` for `_`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_uppercase().replace('-', "_");
        TxnState::ALL
            .into_iter()
            .find(|k| k.as_str() == wanted)
            .ok_or_else(|| StoreError::Invalid {
                field: "state",
                reason: format!("unknown transaction state {s:?}"),
            })
    }
}

/// Who started a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A terminal's request: it has an idempotency key, and a retransmission of it is a
    /// duplicate.
    Terminal,
    /// A message the node originates (an automatic reversal, a sign-in to the center): no
    /// idempotency key.
    Node,
}

impl Origin {
    /// The text stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Terminal => "TERMINAL",
            Origin::Node => "NODE",
        }
    }
}

impl FromStr for Origin {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "TERMINAL" => Ok(Origin::Terminal),
            "NODE" => Ok(Origin::Node),
            _ => Err(StoreError::Invalid {
                field: "origin",
                reason: format!("unknown origin {s:?}"),
            }),
        }
    }
}

/// A transaction to journal, as the caller knows it before anything is sent. The store
/// adds the id, sets the state to [`TxnState::Pending`] and `updated_at` to `created_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// When the node received or created it, unix milliseconds (the caller's clock).
    pub created_at: i64,
    /// A terminal's request or the node's own message.
    pub origin: Origin,
    /// Terminal id (field 41): exactly 8 printable ASCII characters.
    pub terminal_id: String,
    /// Merchant id (field 42): 1 to 15 printable ASCII characters.
    pub merchant_id: String,
    /// Batch number (field 60.2), 0 to 999999.
    pub batch: u32,
    /// The terminal's STAN (field 11), 0 to 999999.
    pub stan: u32,
    /// Local transaction date (field 13), `MMDD`.
    pub local_date: String,
    /// Local transaction time (field 12), `hhmmss`.
    pub local_time: String,
    /// What the transaction is.
    pub kind: TxnKind,
    /// The request's message type indicator, 4 digits.
    pub mti: String,
    /// Processing code (field 3): 6 digits, or empty when the message has none.
    pub processing_code: String,
    /// Amount in fen (0.01 yuan), not negative; 0 when the message carries none.
    pub amount: i64,
    /// The PAN masked as first 6 / last 4 (`622202*********0123`), or `None`.
    pub masked_pan: Option<String>,
    /// The entry this one voids or reverses.
    pub original_id: Option<i64>,
    /// The request message, with PAN, tracks, PIN block and keys already masked or removed
    /// by the caller (see the module documentation).
    pub request: Vec<u8>,
}

impl NewEntry {
    /// The idempotency key of a terminal's request; `None` for the node's own messages.
    pub fn idempotency_key(&self) -> Option<IdempotencyKey> {
        IdempotencyKey::for_fields(
            self.origin,
            &self.terminal_id,
            self.batch,
            self.stan,
            &self.local_date,
            &self.local_time,
            self.kind,
        )
    }

    /// Checks every field against its format; the first bad one is named in the error.
    pub fn validate(&self) -> Result<(), StoreError> {
        check_ascii("terminal_id", &self.terminal_id, 8, 8)?;
        check_ascii("merchant_id", &self.merchant_id, 1, 15)?;
        check_six_digits("batch", self.batch)?;
        check_six_digits("stan", self.stan)?;
        check_local_date(&self.local_date)?;
        check_local_time(&self.local_time)?;
        check_digits("mti", &self.mti, 4)?;
        if !self.processing_code.is_empty() {
            check_digits("processing_code", &self.processing_code, 6)?;
        }
        if self.amount < 0 {
            return Err(invalid(
                "amount",
                format!("{} fen is negative", self.amount),
            ));
        }
        if let Some(pan) = &self.masked_pan
            && !is_masked_pan(pan)
        {
            return Err(invalid(
                "masked_pan",
                "is not a PAN masked as first 6 / last 4 digits (the journal never keeps a clear PAN)"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

/// One journal entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// The store's id, increasing in insertion order.
    pub id: i64,
    /// When it was created, unix milliseconds (the caller's clock).
    pub created_at: i64,
    /// When it last changed state, unix milliseconds (the caller's clock).
    pub updated_at: i64,
    /// A terminal's request or the node's own message.
    pub origin: Origin,
    /// Terminal id (field 41).
    pub terminal_id: String,
    /// Merchant id (field 42).
    pub merchant_id: String,
    /// Batch number.
    pub batch: u32,
    /// The terminal's STAN.
    pub stan: u32,
    /// Local date, `MMDD`.
    pub local_date: String,
    /// Local time, `hhmmss`.
    pub local_time: String,
    /// What the transaction is.
    pub kind: TxnKind,
    /// The request's MTI.
    pub mti: String,
    /// Processing code, or empty.
    pub processing_code: String,
    /// Amount in fen.
    pub amount: i64,
    /// The masked PAN.
    pub masked_pan: Option<String>,
    /// Where the transaction is.
    pub state: TxnState,
    /// Response code (field 39) once known.
    pub response_code: Option<String>,
    /// Retrieval reference number (field 37) once known.
    pub rrn: Option<String>,
    /// Authorization code (field 38) once known.
    pub auth_code: Option<String>,
    /// The STAN the node used upstream, once allocated.
    pub upstream_stan: Option<u32>,
    /// The entry this one voids or reverses.
    pub original_id: Option<i64>,
    /// The request message, masked by the caller.
    pub request: Vec<u8>,
    /// The response message, masked by the caller, once known.
    pub response: Option<Vec<u8>>,
}

impl JournalEntry {
    /// Builds the stored entry for a new one: state PENDING, nothing known of the response.
    pub fn from_new(id: i64, new: NewEntry) -> JournalEntry {
        JournalEntry {
            id,
            created_at: new.created_at,
            updated_at: new.created_at,
            origin: new.origin,
            terminal_id: new.terminal_id,
            merchant_id: new.merchant_id,
            batch: new.batch,
            stan: new.stan,
            local_date: new.local_date,
            local_time: new.local_time,
            kind: new.kind,
            mti: new.mti,
            processing_code: new.processing_code,
            amount: new.amount,
            masked_pan: new.masked_pan,
            state: TxnState::Pending,
            response_code: None,
            rrn: None,
            auth_code: None,
            upstream_stan: None,
            original_id: new.original_id,
            request: new.request,
            response: None,
        }
    }

    /// The idempotency key of a terminal's request; `None` for the node's own messages.
    pub fn idempotency_key(&self) -> Option<IdempotencyKey> {
        IdempotencyKey::for_fields(
            self.origin,
            &self.terminal_id,
            self.batch,
            self.stan,
            &self.local_date,
            &self.local_time,
            self.kind,
        )
    }
}

/// The key that makes a terminal's request a duplicate of an earlier one: terminal id,
/// batch, STAN and local date/time, plus the kind (a terminal's reversal carries the STAN of
/// the transaction it reverses, and must not be taken for a retransmission of it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    /// Terminal id.
    pub terminal_id: String,
    /// Batch number.
    pub batch: u32,
    /// The terminal's STAN.
    pub stan: u32,
    /// Local date, `MMDD`.
    pub local_date: String,
    /// Local time, `hhmmss`.
    pub local_time: String,
    /// The request's kind.
    pub kind: TxnKind,
}

impl IdempotencyKey {
    /// The key of an entry with these fields; `None` for the node's own messages.
    fn for_fields(
        origin: Origin,
        terminal_id: &str,
        batch: u32,
        stan: u32,
        local_date: &str,
        local_time: &str,
        kind: TxnKind,
    ) -> Option<IdempotencyKey> {
        match origin {
            Origin::Node => None,
            Origin::Terminal => Some(IdempotencyKey {
                terminal_id: terminal_id.to_owned(),
                batch,
                stan,
                local_date: local_date.to_owned(),
                local_time: local_time.to_owned(),
                kind,
            }),
        }
    }
}

impl fmt::Display for IdempotencyKey {
    /// The text form, `12345678/000001/000123/0611143005/PURCHASE`: in messages, and in the
    /// `idem_key` column of rows written before schema version 4.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{:06}/{:06}/{}{}/{}",
            self.terminal_id, self.batch, self.stan, self.local_date, self.local_time, self.kind
        )
    }
}

/// What [`Journal::insert`](super::Journal::insert) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The entry is new and now durable.
    Inserted(JournalEntry),
    /// A terminal request with the same idempotency key is already journaled; nothing was
    /// written. While it is unfinished the caller answers 94 (duplicate); once it has a final
    /// state the caller replays its stored response.
    DuplicateOf(JournalEntry),
}

/// A state change and what came with it. `None` fields leave the stored value as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateUpdate {
    /// The new state; it must be a legal move from the current one.
    pub to: TxnState,
    /// When, unix milliseconds (the caller's clock); becomes `updated_at`.
    pub at: i64,
    /// Response code (field 39).
    pub response_code: Option<String>,
    /// Retrieval reference number (field 37).
    pub rrn: Option<String>,
    /// Authorization code (field 38).
    pub auth_code: Option<String>,
    /// The STAN used upstream.
    pub upstream_stan: Option<u32>,
    /// The response message, masked by the caller.
    pub response: Option<Vec<u8>>,
}

impl StateUpdate {
    /// A bare state change at `at`.
    pub fn to(to: TxnState, at: i64) -> StateUpdate {
        StateUpdate {
            to,
            at,
            response_code: None,
            rrn: None,
            auth_code: None,
            upstream_stan: None,
            response: None,
        }
    }

    /// Checks the formats of the fields that are set.
    pub fn validate(&self) -> Result<(), StoreError> {
        if let Some(code) = &self.response_code {
            check_ascii("response_code", code, 2, 2)?;
        }
        if let Some(rrn) = &self.rrn {
            check_ascii("rrn", rrn, 12, 12)?;
        }
        if let Some(auth) = &self.auth_code {
            check_ascii("auth_code", auth, 6, 6)?;
        }
        if let Some(stan) = self.upstream_stan {
            check_six_digits("upstream_stan", stan)?;
        }
        Ok(())
    }
}

/// A search of the journal: every field that is set must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFilter {
    /// Terminal id.
    pub terminal_id: Option<String>,
    /// The terminal's STAN.
    pub stan: Option<u32>,
    /// Retrieval reference number.
    pub rrn: Option<String>,
    /// Local date, `MMDD`.
    pub local_date: Option<String>,
    /// State.
    pub state: Option<TxnState>,
    /// Created at or after, unix milliseconds.
    pub created_from: Option<i64>,
    /// Created before, unix milliseconds.
    pub created_until: Option<i64>,
    /// At most this many entries: the newest ones that match, returned oldest first.
    pub limit: u32,
}

impl EntryFilter {
    /// A filter that matches everything, limited to `limit` entries.
    pub fn all(limit: u32) -> EntryFilter {
        EntryFilter {
            terminal_id: None,
            stan: None,
            rrn: None,
            local_date: None,
            state: None,
            created_from: None,
            created_until: None,
            limit,
        }
    }
}

/// The approved, settling entries of one kind in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindTotal {
    /// The kind.
    pub kind: TxnKind,
    /// How many entries.
    pub count: u64,
    /// Their amounts added up, in fen.
    pub amount: i64,
}

/// A terminal batch's totals, to check a settlement request against.
///
/// Only APPROVED entries of kinds that [settle](TxnKind::settles) are counted: declined,
/// reversed and failed entries never settle, and an entry with a reversal queued is on its
/// way to reversed. Entries still without an outcome are counted apart in `unresolved`, so
/// that a settlement check can wait or report them rather than silently leave them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTotals {
    /// Per kind, in [`TxnKind`] order; kinds with no entries are left out.
    pub kinds: Vec<KindTotal>,
    /// Settling entries in PENDING, SENT, TIMED_OUT or REVERSAL_QUEUED.
    pub unresolved: u64,
}

impl BatchTotals {
    /// The total of one kind (zero when the batch has none).
    pub fn of(&self, kind: TxnKind) -> KindTotal {
        self.kinds
            .iter()
            .copied()
            .find(|t| t.kind == kind)
            .unwrap_or(KindTotal {
                kind,
                count: 0,
                amount: 0,
            })
    }
}

/// Masks a PAN for the journal: the first 6 and last 4 digits kept, the rest `*`.
/// Returns `None` unless `pan` is 13 to 19 digits.
pub fn mask_pan(pan: &str) -> Option<String> {
    let len = pan.len();
    if !(13..=19).contains(&len) || !pan.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut out = String::with_capacity(len);
    out.push_str(&pan[..6]);
    out.extend(std::iter::repeat_n('*', len - 10));
    out.push_str(&pan[len - 4..]);
    Some(out)
}

/// Whether `s` is a PAN masked as [`mask_pan`] does it: 6 digits, 3 to 9 `*`, 4 digits.
pub fn is_masked_pan(s: &str) -> bool {
    let b = s.as_bytes();
    (13..=19).contains(&b.len())
        && b[..6].iter().all(u8::is_ascii_digit)
        && b[6..b.len() - 4].iter().all(|&c| c == b'*')
        && b[b.len() - 4..].iter().all(u8::is_ascii_digit)
}

/// An [`StoreError::Invalid`] for `field`.
fn invalid(field: &'static str, reason: String) -> StoreError {
    StoreError::Invalid { field, reason }
}

/// Checks that `s` is `min` to `max` printable ASCII characters.
fn check_ascii(field: &'static str, s: &str, min: usize, max: usize) -> Result<(), StoreError> {
    if s.len() < min || s.len() > max {
        let want = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(invalid(
            field,
            format!("{s:?} has {} characters, expected {want}", s.len()),
        ));
    }
    if !s.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(invalid(
            field,
            format!("{s:?} has characters other than printable ASCII"),
        ));
    }
    Ok(())
}

/// Checks that `s` is exactly `len` ASCII digits.
fn check_digits(field: &'static str, s: &str, len: usize) -> Result<(), StoreError> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(field, format!("{s:?} is not {len} digits")));
    }
    Ok(())
}

/// Checks that `n` fits a 6-digit field.
fn check_six_digits(field: &'static str, n: u32) -> Result<(), StoreError> {
    if n > 999_999 {
        return Err(invalid(field, format!("{n} is above 999999")));
    }
    Ok(())
}

/// The number in the two ASCII digits at `at` (the caller has checked they are digits).
fn two_digits(s: &str, at: usize) -> u32 {
    let b = s.as_bytes();
    u32::from(b[at] - b'0') * 10 + u32::from(b[at + 1] - b'0')
}

/// Checks a local date `MMDD`.
pub fn check_local_date(s: &str) -> Result<(), StoreError> {
    check_digits("local_date", s, 4)?;
    let (month, day) = (two_digits(s, 0), two_digits(s, 2));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(invalid("local_date", format!("{s:?} is not a date MMDD")));
    }
    Ok(())
}

/// Checks a local time `hhmmss`.
fn check_local_time(s: &str) -> Result<(), StoreError> {
    check_digits("local_time", s, 6)?;
    if two_digits(s, 0) > 23 || two_digits(s, 2) > 59 || two_digits(s, 4) > 59 {
        return Err(invalid("local_time", format!("{s:?} is not a time hhmmss")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_states_round_trip_through_their_text() {
        for kind in TxnKind::ALL {
            assert_eq!(kind.as_str().parse::<TxnKind>().unwrap(), kind);
        }
        for state in TxnState::ALL {
            assert_eq!(state.as_str().parse::<TxnState>().unwrap(), state);
        }
        assert_eq!(
            "reversal-queued".parse::<TxnState>().unwrap(),
            TxnState::ReversalQueued
        );
        assert_eq!(
            "bogus".parse::<TxnState>().unwrap_err().to_string(),
            "invalid state: unknown transaction state \"bogus\""
        );
    }

    #[test]
    fn transition_table() {
        use TxnState::*;
        let legal: Vec<(TxnState, TxnState)> = TxnState::ALL
            .into_iter()
            .flat_map(|a| TxnState::ALL.into_iter().map(move |b| (a, b)))
            .filter(|(a, b)| a.can_move_to(*b))
            .collect();
        assert_eq!(
            legal,
            vec![
                (Pending, Sent),
                (Pending, Approved),
                (Pending, Declined),
                (Pending, ReversalQueued),
                (Pending, Failed),
                (Sent, Approved),
                (Sent, Declined),
                (Sent, TimedOut),
                (Sent, ReversalQueued),
                (Approved, ReversalQueued),
                (TimedOut, Declined),
                (TimedOut, ReversalQueued),
                (ReversalQueued, Declined),
                (ReversalQueued, Reversed),
            ]
        );
    }

    #[test]
    fn pan_masking() {
        assert_eq!(
            mask_pan("6222021234567890123").unwrap(),
            "622202*********0123"
        );
        assert_eq!(mask_pan("4111111111111").unwrap(), "411111***1111");
        assert_eq!(mask_pan("411111111111"), None);
        assert_eq!(mask_pan("62220212345678901x3"), None);
        assert!(is_masked_pan("622202*********0123"));
        assert!(!is_masked_pan("6222021234567890123"));
        assert!(!is_masked_pan("622202**"));
    }

    #[test]
    fn validation_names_the_field() {
        let entry = NewEntry {
            created_at: 1,
            origin: Origin::Terminal,
            terminal_id: "T0000001".into(),
            merchant_id: "898100012340001".into(),
            batch: 1,
            stan: 1,
            local_date: "0611".into(),
            local_time: "143005".into(),
            kind: TxnKind::Purchase,
            mti: "0200".into(),
            processing_code: "000000".into(),
            amount: 100,
            masked_pan: Some("6222021234567890123".into()),
            original_id: None,
            request: vec![],
        };
        assert_eq!(
            entry.validate().unwrap_err().to_string(),
            "invalid masked_pan: is not a PAN masked as first 6 / last 4 digits (the journal never keeps a clear PAN)"
        );
        let bad_time = NewEntry {
            masked_pan: None,
            local_time: "246000".into(),
            ..entry.clone()
        };
        assert_eq!(
            bad_time.validate().unwrap_err().to_string(),
            "invalid local_time: \"246000\" is not a time hhmmss"
        );
        let short_tid = NewEntry {
            masked_pan: None,
            terminal_id: "T1".into(),
            ..entry
        };
        assert_eq!(
            short_tid.validate().unwrap_err().to_string(),
            "invalid terminal_id: \"T1\" has 2 characters, expected 8"
        );
    }

    #[test]
    fn idempotency_key_text() {
        let key = IdempotencyKey {
            terminal_id: "T0000001".into(),
            batch: 1,
            stan: 123,
            local_date: "0611".into(),
            local_time: "143005".into(),
            kind: TxnKind::Purchase,
        };
        assert_eq!(
            key.to_string(),
            "T0000001/000001/000123/0611143005/PURCHASE"
        );
    }
}
