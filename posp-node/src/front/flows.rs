//! The transaction flows: each request goes through a list of steps chosen by its route.
//!
//! | route | steps |
//! |---|---|
//! | sign-in | registered -> generate PIK (TPK, double) and MAK (TAK, single) under the TMK -> field 62 (layout 003) -> session keys stored -> 0810 |
//! | sign-off, echo | registered -> (sign-off: keys forgotten) -> 0830 |
//! | settlement | registered -> signed in -> MAC if present -> journal totals vs field 48 -> 0510 with result flag 1 or 2 |
//! | forwarded (balance, purchase, void, refund, load, load confirmation) | registered -> signed in -> MAC verified (`A0`) -> PIN translated PIK -> ZPK -> a link up (the one with the fewest requests in flight)? journal SENT with the upstream STAN in one write (duplicates: `94` or the stored response); none up: journal PENDING, then FAILED and `96` -> request upstream in the link's spec (same field numbers and values, field 11 = upstream STAN, 32, 52 under the ZPK, X9.19 MAC under the ZAK in 64, or 128 with a secondary bitmap; a link found down before writing: the next up link) -> reply: decoded in the link's spec, MAC verified, APPROVED/DECLINED with RRN, answer; no reply: TIMED_OUT, reversal queued in the SAF, REVERSAL_QUEUED, answer `98` |
//! | terminal reversal (0400) | registered -> signed in -> MAC -> journal the reversal (repeats: the stored answer) -> the original found by terminal, batch and STAN (`25` if none) -> an APPROVED original gets a reversal queued in the SAF and moves to REVERSAL_QUEUED -> 0410 `00` |
//!
//! Journal first: every state is durable before the next step (the store's writes return
//! once committed), the pending match is registered before the request is written, and a
//! reversal is queued before a terminal hears `98`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use iso8583_wire::{Message, MessageBuf, decode, decode_partial, specs};
use pboc_sam::{
    DesKeyLength, ErrorClass, HsmError, HsmErrorCode, KeyRef, KeyType, MacAlgorithm, Pan,
    PinBlockFormat, PinTranslation,
};
use tokio::time::Instant;
use tracing::{Instrument, error, info, info_span, warn};

use crate::store::{
    InsertOutcome, Journal, JournalEntry, NewEntry, Origin, StateUpdate, TxnKind, TxnState,
};

use super::Shared;
use super::clock::{local_now, unix_millis};
use super::link::{Link, LinkError, match_key};
use super::model::{
    ParseError, Txn, encode_for_mac, is_request_mti, journal_body, mab, put_mac, response_mti,
};
use super::route::{Route, reversible, route};
use super::saf_sender::queue_reversal;
use super::session::{Session, Terminal};
use crate::wire::fit_text;

/// An error inside a flow: a stable code, where it happened, what happened, and the response
/// code the terminal gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowError {
    /// Stable code for logs (`HSM_DEVICE`, `STORE`, ...).
    pub code: &'static str,
    /// The step.
    pub at: &'static str,
    /// What happened.
    pub message: String,
    /// Field 39 for the terminal.
    pub response_code: &'static str,
}

impl std::fmt::Display for FlowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at {}: {} (answered {})",
            self.code, self.at, self.message, self.response_code
        )
    }
}

impl FlowError {
    fn store(at: &'static str, e: impl std::fmt::Display) -> FlowError {
        FlowError {
            code: "STORE",
            at,
            message: e.to_string(),
            response_code: "96",
        }
    }

    fn hsm(sh: &Shared, at: &'static str, e: &HsmError, business: &'static str) -> FlowError {
        let device = e.class() == ErrorClass::Device;
        sh.metrics.hsm_up.store(!device, Ordering::Relaxed);
        FlowError {
            code: if device { "HSM_DEVICE" } else { "HSM" },
            at,
            message: e.to_string(),
            response_code: if device { "96" } else { business },
        }
    }

    fn encode(at: &'static str, e: impl std::fmt::Display) -> FlowError {
        FlowError {
            code: "ENCODE",
            at,
            message: e.to_string(),
            response_code: "96",
        }
    }
}

/// What a flow produced: the response body (if any), the kind for metrics, field 39.
struct Outcome {
    body: Option<Vec<u8>>,
    kind: &'static str,
    code: String,
}

/// Handles one request body (after framing) and returns the response body, if any.
pub async fn handle(sh: &Arc<Shared>, body: &[u8]) -> Option<Vec<u8>> {
    let started = Instant::now();
    let spec = specs::cups_pos();
    let parsed = decode(spec, body)
        .and_then(|m| m.validate().map(|()| m))
        .map_err(|e| ParseError::from_wire(&e))
        .and_then(|m| Txn::parse(&m).map(|t| (t, m)));
    let (txn, msg) = match parsed {
        Ok(x) => x,
        Err(e) => {
            let out = format_error(sh, body, &e);
            sh.metrics.record("FORMAT_ERROR", "30", started.elapsed());
            return out;
        }
    };
    let span = info_span!("txn", terminal = %txn.terminal_id, stan = txn.stan, mti = %txn.mti);
    let out = process(sh, &txn, &msg, body).instrument(span.clone()).await;
    span.in_scope(|| info!(kind = out.kind, code = %out.code, "answered"));
    sh.metrics.record(out.kind, &out.code, started.elapsed());
    out.body
}

/// The answer to a request whose flow worker died holding it: its journal entry, if it got
/// one and it is unfinished, is closed as crash recovery closes it at start (a reversible
/// one gets its reversal queued in the SAF), and the terminal gets `96`, MACed when the
/// terminal is signed in.
pub(crate) async fn after_crash(sh: &Arc<Shared>, body: &[u8]) -> Option<Vec<u8>> {
    let msg = decode(specs::cups_pos(), body).ok()?;
    let txn = Txn::parse(&msg).ok()?;
    let kind = match route(&txn) {
        Route::Local(k) | Route::Forward(k) => k,
        Route::Reversal => TxnKind::Reversal,
        Route::Unsupported => return plain("UNSUPPORTED", &base(&txn, "96"), "96").body,
    };
    if let Some(key) = new_entry(sh, &txn, kind, body, None).idempotency_key() {
        match sh.store.by_idempotency_key(&key).await {
            Ok(Some(e)) if e.state.is_unfinished() => {
                let mut report = super::recovery::RecoveryReport::default();
                if let Err(fe) = super::recovery::recover_one(sh, &e, &mut report).await {
                    error!(code = fe.code, at = fe.at, "{}", fe.message);
                } else if !report.reversals_queued.is_empty() {
                    sh.metrics.reversals_queued.fetch_add(1, Ordering::Relaxed);
                    sh.saf_wake.notify_one();
                }
            }
            Ok(_) => {}
            Err(e) => error!(code = "STORE", "after a worker crash: {e}"),
        }
    }
    let name = kind.as_str();
    sh.metrics.record(name, "96", std::time::Duration::ZERO);
    match sh.sessions.get(&txn.terminal_id) {
        Some(session) => {
            signed(sh, name, &session.tak, base(&txn, "96"), "96")
                .await
                .body
        }
        None => plain(name, &base(&txn, "96"), "96").body,
    }
}

/// Logs a malformed message and builds a `30` answer when the MTI allows one.
fn format_error(sh: &Shared, body: &[u8], e: &ParseError) -> Option<Vec<u8>> {
    sh.metrics.format_errors.fetch_add(1, Ordering::Relaxed);
    let spec = specs::cups_pos();
    let (partial, _) = decode_partial(spec, body);
    let mti = partial.mti().to_owned();
    let tid = partial
        .field(41)
        .and_then(|f| f.as_str().ok())
        .unwrap_or("")
        .to_owned();
    warn!(code = "FORMAT", field = e.field, offset = ?e.offset, terminal = %tid, mti = %mti,
        "malformed message: {e}");
    if !is_request_mti(&mti) {
        return None;
    }
    let mut m = MessageBuf::new(&response_mti(&mti)).ok()?;
    for n in [11u16, 41, 42] {
        if let Some(f) = partial.field(n)
            && f.validate().is_ok()
        {
            m.set(n, f.to_string());
        }
    }
    m.set(39, "30");
    m.to_vec(spec).ok()
}

fn base(txn: &Txn, code: &str) -> MessageBuf<'static> {
    let mut m = MessageBuf::new(&txn.response_mti()).unwrap_or_default();
    m.set(11, format!("{:06}", txn.stan))
        .set(39, code.to_owned())
        .set(41, txn.terminal_id.clone())
        .set(42, txn.merchant_id.clone())
        .set(60, txn.f60.clone());
    m
}

fn plain(kind: &'static str, m: &MessageBuf<'_>, code: &str) -> Outcome {
    Outcome {
        body: m.to_vec(specs::cups_pos()).ok(),
        kind,
        code: code.to_owned(),
    }
}

/// MACs a terminal response with the session's MAK.
async fn sign_terminal(
    sh: &Shared,
    tak: &KeyRef,
    m: &mut MessageBuf<'_>,
) -> Result<Vec<u8>, FlowError> {
    let spec = specs::cups_pos();
    let mut body = encode_for_mac(spec, m).map_err(|e| FlowError::encode("assemble", e))?;
    let mac = sh
        .hsm
        .generate_mac(tak, MacAlgorithm::UnionPayEcb, mab(spec, &body))
        .await
        .map_err(|e| FlowError::hsm(sh, "response MAC", &e, "96"))?;
    put_mac(spec, &mut body, &mac);
    Ok(body)
}

/// An answer MACed when possible; without a MAC if signing fails (logged).
async fn signed(
    sh: &Shared,
    kind: &'static str,
    tak: &KeyRef,
    mut m: MessageBuf<'_>,
    code: &str,
) -> Outcome {
    match sign_terminal(sh, tak, &mut m).await {
        Ok(body) => Outcome {
            body: Some(body),
            kind,
            code: code.to_owned(),
        },
        Err(e) => {
            error!(
                code = e.code,
                at = e.at,
                "cannot MAC the response: {}",
                e.message
            );
            m.remove(64);
            m.set(39, "96");
            plain(kind, &m, "96")
        }
    }
}

async fn process(sh: &Arc<Shared>, txn: &Txn, msg: &Message<'_>, body: &[u8]) -> Outcome {
    let route = route(txn);
    let kind_name = match route {
        Route::Local(k) | Route::Forward(k) => k.as_str(),
        Route::Reversal => TxnKind::Reversal.as_str(),
        Route::Unsupported => "UNSUPPORTED",
    };
    let Some(terminal) = sh.terminals.get(&txn.terminal_id) else {
        warn!(code = "UNREGISTERED", "terminal not registered");
        return plain(kind_name, &base(txn, "97"), "97");
    };
    if terminal.merchant_id != txn.merchant_id {
        warn!(
            code = "MERCHANT",
            "merchant id does not match the registration"
        );
        return plain(kind_name, &base(txn, "03"), "03");
    }
    match route {
        Route::Local(TxnKind::SignIn) => return sign_in(sh, txn, terminal).await,
        Route::Local(TxnKind::Echo) => return plain(kind_name, &base(txn, "00"), "00"),
        _ => {}
    }
    let Some(session) = sh.sessions.get(&txn.terminal_id) else {
        warn!(code = "NOT_SIGNED_IN", "terminal not signed in");
        return plain(kind_name, &base(txn, "99"), "99");
    };
    // MAC: required on everything but sign-off and settlement, verified whenever present.
    let needs_mac = !matches!(route, Route::Local(_) | Route::Unsupported);
    match txn.mac {
        Some((mac, at)) => {
            let mab = body.get(..at).unwrap_or_default();
            if let Err(e) = sh
                .hsm
                .verify_mac(&session.tak, MacAlgorithm::UnionPayEcb, mab, &mac)
                .await
            {
                if e.code == HsmErrorCode::VerificationFailed {
                    warn!(code = "MAC", "MAC verification failed");
                    return plain(kind_name, &base(txn, "A0"), "A0");
                }
                let fe = FlowError::hsm(sh, "verify MAC", &e, "A0");
                error!(code = fe.code, at = fe.at, "{}", fe.message);
                return plain(kind_name, &base(txn, fe.response_code), fe.response_code);
            }
        }
        None if needs_mac => {
            warn!(code = "MAC_MISSING", "request without field 64");
            return plain(kind_name, &base(txn, "A0"), "A0");
        }
        None => {}
    }
    match route {
        Route::Local(TxnKind::SignOff) => {
            sh.sessions.sign_off(&txn.terminal_id);
            plain(kind_name, &base(txn, "00"), "00")
        }
        Route::Local(TxnKind::Settlement) => settlement(sh, txn, &session).await,
        Route::Local(_) | Route::Unsupported => {
            signed(sh, kind_name, &session.tak, base(txn, "12"), "12").await
        }
        Route::Forward(kind) => forward(sh, txn, msg, body, kind, &session).await,
        Route::Reversal => terminal_reversal(sh, txn, body, &session).await,
    }
}

/// Sign-in: new working keys generated by the HSM under the terminal's TMK, sent in field
/// 62 in the layout 60.3 asks for (`unionpay-pos.md`):
///
/// | 60.3 | field 62 | keys |
/// |---|---|---|
/// | `001` | `PIK(8) KCV(4) MAK(8) KCV(4)`, 24 bytes | single-length PIK and MAK |
/// | `003` | `PIK(16) KCV(4) MAK(8) 00x8 KCV(4)`, 40 bytes | double-length PIK, single MAK |
/// | `004` | the 40 bytes of `003`, then `TDK(16) KCV(4)`, 60 bytes | and a double-length TDK |
///
/// Any other code is answered `12`. The keys replace the terminal's earlier session.
async fn sign_in(sh: &Shared, txn: &Txn, terminal: &Terminal) -> Outcome {
    let kind = TxnKind::SignIn.as_str();
    let (pik_len, with_tdk) = match txn.network_code() {
        "001" => (DesKeyLength::Single, false),
        "003" => (DesKeyLength::Double, false),
        "004" => (DesKeyLength::Double, true),
        other => {
            warn!(
                code = "SIGN_IN_LAYOUT",
                network_code = other,
                "60.3 must be 001, 003 or 004"
            );
            return plain(kind, &base(txn, "12"), "12");
        }
    };
    let make = async {
        let pik = sh
            .hsm
            .generate_key(KeyType::Tpk, pik_len, Some(&terminal.tmk))
            .await?;
        let mak = sh
            .hsm
            .generate_key(KeyType::Tak, DesKeyLength::Single, Some(&terminal.tmk))
            .await?;
        let tdk = if with_tdk {
            Some(
                sh.hsm
                    .generate_key(KeyType::Tdk, DesKeyLength::Double, Some(&terminal.tmk))
                    .await?,
            )
        } else {
            None
        };
        Ok::<_, HsmError>((pik, mak, tdk))
    };
    let (pik, mak, tdk) = match make.await {
        Ok(k) => k,
        Err(e) => {
            let fe = FlowError::hsm(sh, "generate working keys", &e, "96");
            error!(code = fe.code, at = fe.at, "{}", fe.message);
            return plain(kind, &base(txn, "96"), "96");
        }
    };
    let under_tmk = |g: &pboc_sam::GeneratedKey| g.under_kek.clone();
    let (Some(pik_tmk), Some(mak_tmk)) = (under_tmk(&pik), under_tmk(&mak)) else {
        error!(
            code = "HSM",
            at = "generate working keys",
            "no cryptogram under the TMK"
        );
        return plain(kind, &base(txn, "96"), "96");
    };
    let mut f62 = Vec::with_capacity(60);
    f62.extend_from_slice(&pik_tmk);
    f62.extend_from_slice(pik.key.kcv.as_bytes());
    f62.extend_from_slice(&mak_tmk);
    if pik_len == DesKeyLength::Double {
        // The MAK's slot is double length; a single-length MAK leaves it zero-padded.
        f62.extend_from_slice(&[0u8; 8]);
    }
    f62.extend_from_slice(mak.key.kcv.as_bytes());
    let tdk_key = match &tdk {
        Some(g) => {
            let Some(c) = under_tmk(g) else {
                error!(
                    code = "HSM",
                    at = "generate TDK",
                    "no cryptogram under the TMK"
                );
                return plain(kind, &base(txn, "96"), "96");
            };
            f62.extend_from_slice(&c);
            f62.extend_from_slice(g.key.kcv.as_bytes());
            Some(g.key.clone())
        }
        None => None,
    };
    let expected = match (pik_len, with_tdk) {
        (DesKeyLength::Single, _) => 24,
        (_, false) => 40,
        (_, true) => 60,
    };
    if f62.len() != expected {
        error!(
            code = "SIGN_IN_LAYOUT",
            len = f62.len(),
            expected,
            "field 62 has the wrong length"
        );
        return plain(kind, &base(txn, "96"), "96");
    }
    sh.sessions.sign_in(
        &txn.terminal_id,
        Session {
            tpk: pik.key,
            tak: mak.key,
            tdk: tdk_key,
        },
    );
    let now = local_now(sh.config.node.utc_offset_minutes);
    let mut m = base(txn, "00");
    m.set(12, now.hhmmss.clone())
        .set(13, now.mmdd.clone())
        .set(37, sh.next_rrn(&now.hhmmss))
        .set(62, f62);
    info!(pik_kcv = %pik_kcv_text(&m), "signed in");
    plain(kind, &m, "00")
}

fn pik_kcv_text(m: &MessageBuf<'_>) -> String {
    match m.get(62) {
        Some(iso8583_wire::Value::Bytes(b)) => {
            // The PIK's KCV follows its cryptogram: byte 8 for 60.3 = 001 (24 bytes), 16 else.
            let at = if b.len() == 24 { 8 } else { 16 };
            hex::encode_upper(b.get(at..at + 4).unwrap_or_default())
        }
        _ => String::new(),
    }
}

/// Settlement: the journal's batch totals against field 48.
async fn settlement(sh: &Shared, txn: &Txn, session: &Session) -> Outcome {
    let kind = TxnKind::Settlement.as_str();
    let Some(req) = txn
        .additional
        .as_deref()
        .filter(|d| d.len() >= 30 && d.bytes().all(|b| b.is_ascii_digit()))
    else {
        warn!(
            code = "FORMAT",
            field = 48,
            "settlement totals missing or shorter than 30 digits"
        );
        return plain(kind, &base(txn, "30"), "30");
    };
    let totals = match sh.store.batch_totals(&txn.terminal_id, txn.batch()).await {
        Ok(t) => t,
        Err(e) => {
            let fe = FlowError::store("batch totals", e);
            error!(code = fe.code, at = fe.at, "{}", fe.message);
            return signed(sh, kind, &session.tak, base(txn, "96"), "96").await;
        }
    };
    let debit = totals.of(TxnKind::Purchase);
    let refund = totals.of(TxnKind::Refund);
    let void = totals.of(TxnKind::PurchaseVoid);
    let load = totals.of(TxnKind::Load);
    let ours = format!(
        "{:03}{:012}{:03}{:012}",
        debit.count,
        debit.amount,
        refund.count + void.count,
        refund.amount + void.amount
    );
    let ours_loads = format!("{:03}{:012}{:03}{:012}", load.count, load.amount, 0, 0);
    let theirs = req.get(..30).unwrap_or_default();
    let theirs_loads = req.get(31..61).unwrap_or("000000000000000000000000000000");
    let balanced = totals.unresolved == 0 && theirs == ours && theirs_loads == ours_loads;
    let flag = if balanced { "1" } else { "2" };
    let mut f48 = format!("{theirs}{flag}");
    if req.len() >= 62 {
        f48.push_str(theirs_loads);
        f48.push_str(flag);
    }
    info!(balanced, ours = %ours, unresolved = totals.unresolved, "settlement checked");
    let now = local_now(sh.config.node.utc_offset_minutes);
    let mut m = base(txn, "00");
    m.set(15, now.mmdd).set(48, f48);
    signed(sh, kind, &session.tak, m, "00").await
}

/// The replay of a completed duplicate: the stored response with the request's PAN put
/// back, MACed again with the current MAK.
async fn replay(
    sh: &Shared,
    txn: &Txn,
    kind: &'static str,
    stored: &[u8],
    session: &Session,
) -> Outcome {
    let spec = specs::cups_pos();
    let Ok(msg) = decode(spec, stored) else {
        error!(
            code = "STORE",
            at = "replay",
            "stored response does not decode"
        );
        return signed(sh, kind, &session.tak, base(txn, "96"), "96").await;
    };
    let code = msg
        .field(39)
        .and_then(|f| f.as_str().ok())
        .unwrap_or("96")
        .to_owned();
    let mut m = msg.to_buf();
    if msg.has(2)
        && let Some(pan) = &txn.pan
    {
        m.set(2, pan.clone());
    }
    info!(code = %code, "duplicate of a completed request: stored response replayed");
    signed(sh, kind, &session.tak, m, &code).await
}

fn new_entry(
    sh: &Shared,
    txn: &Txn,
    kind: TxnKind,
    body: &[u8],
    original_id: Option<i64>,
) -> NewEntry {
    let now = local_now(sh.config.node.utc_offset_minutes);
    NewEntry {
        created_at: unix_millis(),
        origin: Origin::Terminal,
        terminal_id: txn.terminal_id.clone(),
        merchant_id: txn.merchant_id.clone(),
        batch: txn.batch(),
        stan: txn.stan,
        local_date: txn.local_date.clone().unwrap_or(now.mmdd),
        local_time: txn
            .local_time
            .clone()
            .unwrap_or_else(|| "000000".to_owned()),
        kind,
        mti: txn.mti.clone(),
        processing_code: txn.processing_code.clone().unwrap_or_default(),
        amount: txn.amount.and_then(|a| i64::try_from(a).ok()).unwrap_or(0),
        masked_pan: txn.masked_pan(),
        original_id,
        request: journal_body(specs::cups_pos(), body),
    }
}

/// Inserts a journal entry (PENDING, or given an upstream STAN, SENT with it);
/// `Err(outcome)` answers a duplicate or a store failure.
async fn journal_new(
    sh: &Shared,
    txn: &Txn,
    kind: TxnKind,
    body: &[u8],
    original_id: Option<i64>,
    session: &Session,
    upstream_stan: Option<u32>,
) -> Result<JournalEntry, Outcome> {
    let name = kind.as_str();
    let new = new_entry(sh, txn, kind, body, original_id);
    let inserted = match upstream_stan {
        Some(stan) => sh.store.insert_sent(new, stan, unix_millis()).await,
        None => sh.store.insert(new).await,
    };
    match inserted {
        Ok(InsertOutcome::Inserted(e)) => Ok(e),
        Ok(InsertOutcome::DuplicateOf(e)) => match (&e.response, e.state.is_unfinished()) {
            (Some(stored), false) => Err(replay(sh, txn, name, stored, session).await),
            _ => {
                warn!(
                    code = "DUPLICATE",
                    original = e.id,
                    "duplicate of a request still in progress"
                );
                Err(signed(sh, name, &session.tak, base(txn, "94"), "94").await)
            }
        },
        Err(e) => {
            let fe = FlowError::store("journal insert", e);
            error!(code = fe.code, at = fe.at, "{}", fe.message);
            Err(signed(sh, name, &session.tak, base(txn, "96"), "96").await)
        }
    }
}

/// A state change whose failure is logged (the answer still goes out).
async fn update(sh: &Shared, id: i64, up: StateUpdate) -> Option<JournalEntry> {
    let to = up.to;
    match sh.store.update_state(id, up).await {
        Ok(e) => Some(e),
        Err(e) => {
            error!(code = "STORE", at = "journal update", entry = id, to = %to, "{e}");
            None
        }
    }
}

/// A final state change whose failure is logged (the answer still goes out): durable when
/// it returns, the entry not read back.
async fn settle(sh: &Shared, id: i64, up: StateUpdate) {
    let to = up.to;
    if let Err(e) = sh.store.set_state(id, up).await {
        error!(code = "STORE", at = "journal update", entry = id, to = %to, "{e}");
    }
}

/// A response as journaled: the MAC removed and the PAN's digits zeroed (its presence and
/// length kept, so a replay puts the request's PAN back exactly where it was).
fn stored_response(response: &[u8]) -> Vec<u8> {
    let spec = specs::cups_pos();
    let Ok(msg) = decode(spec, response) else {
        return Vec::new();
    };
    let mut buf = msg.to_buf();
    if let Some(f) = msg.field(2) {
        buf.set(2, "0".repeat(f.len()));
    }
    buf.remove(64);
    buf.to_vec(spec).unwrap_or_default()
}

fn final_update(to: TxnState, code: &str, response: &[u8]) -> StateUpdate {
    StateUpdate {
        response_code: Some(code.to_owned()),
        response: Some(stored_response(response)),
        ..StateUpdate::to(to, unix_millis())
    }
}

/// Forwarded transactions: PIN translation, journal, upstream, answer.
async fn forward(
    sh: &Arc<Shared>,
    txn: &Txn,
    msg: &Message<'_>,
    body: &[u8],
    kind: TxnKind,
    session: &Session,
) -> Outcome {
    let name = kind.as_str();
    // 1. PIN: PIK -> ZPK.
    let mut zone_pin = None;
    if let Some(block) = txn.pin_block {
        let Some(pan) = txn.card_number().and_then(|p| Pan::new(&p).ok()) else {
            warn!(code = "PAN", "no usable PAN for the PIN block");
            return signed(sh, name, &session.tak, base(txn, "14"), "14").await;
        };
        let req = PinTranslation {
            source_key: session.tpk.clone(),
            source_format: PinBlockFormat::Iso0,
            dest_key: sh.zpk.clone(),
            dest_format: PinBlockFormat::Iso0,
            pan,
            block,
        };
        match sh.hsm.translate_pin(&req).await {
            Ok(b) => zone_pin = Some(b),
            Err(e) => {
                let fe = FlowError::hsm(sh, "translate PIN", &e, "99");
                warn!(code = fe.code, at = fe.at, "{}", fe.message);
                return signed(
                    sh,
                    name,
                    &session.tak,
                    base(txn, fe.response_code),
                    fe.response_code,
                )
                .await;
            }
        }
    }
    // 2. Journal first. With a link up, the entry is journaled SENT with the upstream STAN
    //    it goes out with (unique across the links): one durable write before the request is
    //    written (it was PENDING, then SENT: two). Crash recovery treats a SENT entry as it
    //    treats a PENDING one of a reversible kind (a reversal); for the others it means
    //    TIMED_OUT rather than FAILED, the answer that does not assume the request never left.
    let first = sh.links.pick(&[]).cloned();
    let ustan = first.as_ref().map(|_| sh.links.alloc_stan());
    let entry = match journal_new(sh, txn, kind, body, None, session, ustan).await {
        Ok(e) => e,
        Err(out) => return out,
    };
    let hook = sh.test_panic_amount.load(Ordering::Relaxed);
    if hook != 0 && txn.amount == Some(hook) {
        // The test hook of `Shared::test_panic_amount`: a flow that dies mid-way.
        panic!(
            "test hook: the flow worker dies holding journal entry {}",
            entry.id
        );
    }
    // 3. No link was up: nothing goes out.
    let (Some(first), Some(ustan)) = (first, ustan) else {
        warn!(code = "LINK_DOWN", "center unreachable; not sent");
        let out = signed(sh, name, &session.tak, base(txn, "96"), "96").await;
        if let Some(b) = &out.body {
            settle(sh, entry.id, final_update(TxnState::Failed, "96", b)).await;
        }
        return out;
    };
    let acq = first.acquirer().to_owned();
    let key = match_key(&txn.mti, &acq, &txn.terminal_id, ustan);
    let mut link = first.clone();
    let mut tried: Vec<String> = Vec::new();
    loop {
        // 4. Assemble the upstream request in the link's spec.
        let upstream = match assemble_upstream(sh, &link, msg, ustan, zone_pin).await {
            Ok(b) => b,
            Err(fe) => {
                // Not sent: the entry is SENT, so it goes the unknown-outcome way (a
                // reversal the center answers "not found" is harmless).
                error!(code = fe.code, at = fe.at, link = %link.name(), "{}", fe.message);
                return unknown_outcome(sh, txn, &entry, kind, session, LinkError::Frame).await;
            }
        };
        // 5. Exchange (the pending match is registered before the write).
        match link.exchange(&upstream, &key, ustan, Some(entry.id)).await {
            Ok(resp) => {
                return match check_reply(sh, &link, &resp).await {
                    Ok(r) => answer_from_reply(sh, &link, txn, &entry, kind, session, &r).await,
                    Err(why) => {
                        error!(code = "UPSTREAM_REPLY", link = %link.name(), "{why}; handled as no response");
                        unknown_outcome(sh, txn, &entry, kind, session, LinkError::Timeout).await
                    }
                };
            }
            // Found down before anything was written: another link that is up gets it.
            Err(LinkError::Down) => {
                tried.push(link.name().to_owned());
                let skip: Vec<&str> = tried.iter().map(String::as_str).collect();
                match sh.links.pick(&skip) {
                    Some(next) => {
                        warn!(code = "LINK_DOWN", from = %link.name(), to = %next.name(), "link went down before the write; trying another");
                        link = next.clone();
                    }
                    None => {
                        return unknown_outcome(sh, txn, &entry, kind, session, LinkError::Down)
                            .await;
                    }
                }
            }
            Err(e) => return unknown_outcome(sh, txn, &entry, kind, session, e).await,
        }
    }
}

/// The upstream request of a forwarded terminal request for `link`: the terminal's fields
/// in the link's spec, field 11 = the upstream STAN, 32 = the acquirer id, 52 = the PIN block
/// under the ZPK, and the X9.19 MAC under the ZAK in field 64 (128 with a secondary bitmap).
async fn assemble_upstream(
    sh: &Shared,
    link: &Link,
    msg: &Message<'_>,
    ustan: u32,
    zone_pin: Option<[u8; 8]>,
) -> Result<Vec<u8>, FlowError> {
    let spec = link.spec();
    let mut up = msg.to_buf();
    up.set(11, format!("{ustan:06}"))
        .set(32, link.acquirer().to_owned());
    if let Some(b) = zone_pin {
        up.set(52, b.to_vec());
    }
    up.remove(64);
    let mut b =
        encode_for_mac(spec, &mut up).map_err(|e| FlowError::encode("assemble upstream", e))?;
    let mac = sh
        .hsm
        .generate_mac(&sh.zak, MacAlgorithm::X919, mab(spec, &b))
        .await
        .map_err(|e| FlowError::hsm(sh, "upstream MAC", &e, "96"))?;
    put_mac(spec, &mut b, &mac);
    Ok(b)
}

/// Checks a reply from the center on `link`: it decodes in the link's spec, carries field
/// 39, and its X9.19 MAC (field 64, or 128 with a secondary bitmap) verifies under the ZAK.
/// Returns the decoded reply, which the caller reads instead of decoding it again.
pub(crate) async fn check_reply<'r>(
    sh: &Shared,
    link: &Link,
    resp: &'r [u8],
) -> Result<Message<'r>, String> {
    let msg = decode(link.spec(), resp).map_err(|e| format!("reply does not decode: {e}"))?;
    if msg.field(39).and_then(|f| f.as_str().ok()).is_none() {
        return Err("reply without field 39".to_owned());
    }
    let (mab, mac) = crate::wire::received_mac(&msg, resp).map_err(|e| format!("reply: {e}"))?;
    sh.hsm
        .verify_mac(&sh.zak, MacAlgorithm::X919, mab, &mac)
        .await
        .map_err(|e| format!("reply MAC: {e}"))?;
    Ok(msg)
}

/// The center answered (`r`, checked by [`check_reply`]): journal the outcome, answer the
/// terminal. Values come over in the terminals' `cups-pos` form ([`crate::wire::fit_text`]; field 39 through
/// [`crate::wire::terminal_response_code`], which also translates ISO 8583:1993 action
/// codes): a field 39 that gives no response code is handled as no response (98 and a
/// reversal); other fields that do not fit are left out (12 and 13 then carry the front
/// end's time).
async fn answer_from_reply(
    sh: &Shared,
    link: &Link,
    txn: &Txn,
    entry: &JournalEntry,
    kind: TxnKind,
    session: &Session,
    r: &Message<'_>,
) -> Outcome {
    let name = kind.as_str();
    let cups = specs::cups_pos();
    let get = |n: u16| {
        r.field(n)
            .map(|f| f.to_string())
            .and_then(|v| fit_text(cups, n, &v))
    };
    let code = r
        .field(39)
        .map(|f| f.to_string())
        .and_then(|v| crate::wire::terminal_response_code(link.spec(), &v));
    let Some(code) = code else {
        error!(code = "UPSTREAM_REPLY", link = %link.name(), "field 39 is not a response code the terminals can be given; handled as no response");
        return unknown_outcome(sh, txn, entry, kind, session, LinkError::Timeout).await;
    };
    let now = local_now(sh.config.node.utc_offset_minutes);
    let mut m = base(txn, &code);
    if let Some(pan) = &txn.pan {
        m.set(2, pan.clone());
    }
    if let Some(pc) = &txn.processing_code {
        m.set(3, pc.clone());
    }
    if let Some(a) = txn.amount {
        m.set(4, format!("{a:012}"));
    }
    m.set(12, get(12).unwrap_or(now.hhmmss))
        .set(13, get(13).unwrap_or(now.mmdd));
    let rrn = get(37).filter(|s| s.len() == 12);
    let auth = get(38).filter(|s| s.len() == 6);
    if let Some(v) = &rrn {
        m.set(37, v.clone());
    }
    if let Some(v) = &auth {
        m.set(38, v.clone());
    }
    if let Some(v) = get(49) {
        m.set(49, v);
    }
    if let Some(v) = get(54) {
        m.set(54, v);
    }
    if let Some(v) = r.field(55).as_ref().and_then(crate::wire::binary_value) {
        m.set(55, v);
    }
    let out = signed(sh, name, &session.tak, m, &code).await;
    let to = if code == "00" {
        TxnState::Approved
    } else {
        TxnState::Declined
    };
    if let Some(b) = &out.body {
        let mut up = final_update(to, &out.code, b);
        up.rrn = rrn;
        up.auth_code = auth;
        settle(sh, entry.id, up).await;
    }
    out
}

/// No usable reply: TIMED_OUT, reversal queued durably (reversible kinds), then `98`.
async fn unknown_outcome(
    sh: &Shared,
    txn: &Txn,
    entry: &JournalEntry,
    kind: TxnKind,
    session: &Session,
    why: LinkError,
) -> Outcome {
    let name = kind.as_str();
    warn!(code = why.code(), "no response from the center: {why}");
    let out = signed(sh, name, &session.tak, base(txn, "98"), "98").await;
    let Some(b) = &out.body else { return out };
    let Some(timed_out) = update(sh, entry.id, final_update(TxnState::TimedOut, "98", b)).await
    else {
        return signed(sh, name, &session.tak, base(txn, "96"), "96").await;
    };
    if !reversible(kind) {
        return out;
    }
    if let Err(e) = queue_reversal(sh, &timed_out, "98").await {
        error!(code = e.code, at = e.at, "{}", e.message);
        return signed(sh, name, &session.tak, base(txn, "96"), "96").await;
    }
    update(
        sh,
        entry.id,
        StateUpdate::to(TxnState::ReversalQueued, unix_millis()),
    )
    .await;
    out
}

/// A terminal's reversal of an earlier transaction: journaled, then the original's reversal
/// goes to the center through the SAF.
async fn terminal_reversal(sh: &Arc<Shared>, txn: &Txn, body: &[u8], session: &Session) -> Outcome {
    let name = TxnKind::Reversal.as_str();
    let originals = match sh
        .store
        .by_terminal_batch_stan(&txn.terminal_id, txn.batch(), txn.stan)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            error!(code = "STORE", at = "find original", "{e}");
            return signed(sh, name, &session.tak, base(txn, "96"), "96").await;
        }
    };
    let original = originals.into_iter().rfind(|e| {
        e.batch == txn.batch()
            && e.origin == Origin::Terminal
            && e.kind != TxnKind::Reversal
            && reversible(e.kind)
    });
    let entry = match journal_new(
        sh,
        txn,
        TxnKind::Reversal,
        body,
        original.as_ref().map(|o| o.id),
        session,
        None,
    )
    .await
    {
        Ok(e) => e,
        Err(out) => return out,
    };
    let mut m = base(txn, "00");
    if let Some(pc) = &txn.processing_code {
        m.set(3, pc.clone());
    }
    if let Some(a) = txn.amount {
        m.set(4, format!("{a:012}"));
    }
    let (code, to) = match &original {
        None => ("25", TxnState::Declined),
        Some(o) => match o.state {
            TxnState::Approved => {
                match queue_reversal(sh, o, txn.response_code.as_deref().unwrap_or("06")).await {
                    Ok(()) => {
                        update(
                            sh,
                            o.id,
                            StateUpdate::to(TxnState::ReversalQueued, unix_millis()),
                        )
                        .await;
                        ("00", TxnState::Approved)
                    }
                    Err(e) => {
                        error!(code = e.code, at = e.at, "{}", e.message);
                        ("96", TxnState::Failed)
                    }
                }
            }
            TxnState::Pending | TxnState::Sent => ("96", TxnState::Failed),
            // Declined, failed, timed out (reversal already queued) or reversed: nothing
            // more to undo.
            _ => ("00", TxnState::Approved),
        },
    };
    m.set(39, code);
    let out = signed(sh, name, &session.tak, m, code).await;
    if let Some(b) = &out.body {
        settle(sh, entry.id, final_update(to, code, b)).await;
    }
    out
}
