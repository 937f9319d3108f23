//! One request in, one response out: MAC check, routing, the authorization decision and
//! the signed response. See the [module documentation](super) for the rules per
//! transaction kind.
//!
//! Each decision runs in phases: ask the HSM what the decision needs (PIN translation to the
//! PVK, MAC2; for a load confirmation, the load is read first and its TAC verified), then
//! one unit of work of the committer that journals the request, claims the matching key,
//! runs every check in order and moves the money. Two copies of one request can therefore
//! never both move money: the second finds the key claimed and gets the stored answer (or
//! `94` while the first is not answered). The same unit builds the response, stores it with
//! the authorization and journals it; the response's MAC, which depends only on its bytes
//! and the ZAK, is added by the HSM once the unit is committed (a repeat's stored answer is
//! signed again the same way, to the same bytes). A purchase thus waits for one group
//! commit at the center (it waited for five: journal in, card read, decision, response,
//! journal out), and the committer never waits for the HSM inside a transaction.

use std::sync::Arc;

use iso8583_wire::describe::mask_pan;
use iso8583_wire::tlv::{Tag, TlvBuilder, TlvReader};
use iso8583_wire::{Message, MessageBuf, Spec, decode, decode_partial};

use crate::wire::{
    binary_array, binary_value, encode_for_mac, journal_copy, journal_copy_of, mab, put_mac,
    received_mac, to_action_code, uses_action_codes,
};
use pboc_sam::security::{HsmErrorCode, LoadRequest, PinTranslation, TacRequest};
use pboc_sam::{MacAlgorithm, Pan, PinBlockFormat, SecurityModule};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tracing::{debug, error, info, warn};

use super::CenterError;
use super::clock::LocalTime;
use super::config::{CardLimits, ResolvedKeys};
use super::registry::Cached;
use super::registry::{
    AuthState, CardKind, CardRecord, CardStatus, CardView, INNER, Registry, add_spent,
    adjust_balance, card_by_number, card_view, in_savepoint, next_counter, set_pin_tries, to_i64,
};

/// Wrong PINs in a row after which a card gets `75` without its PIN being checked.
pub const MAX_PIN_TRIES: u32 = 3;

/// What a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 0200 / 31xxxx.
    Balance,
    /// 0200 / 00xxxx.
    Purchase,
    /// 0200 / 20xxxx.
    Void,
    /// 0220 / 20xxxx.
    Refund,
    /// 0200 / 60xxxx (ours).
    Load,
    /// 0220 / 60xxxx (ours).
    LoadConfirm,
    /// 0400 / 0401.
    Reversal,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Balance => "balance",
            Kind::Purchase => "purchase",
            Kind::Void => "void",
            Kind::Refund => "refund",
            Kind::Load => "load",
            Kind::LoadConfirm => "load_confirm",
            Kind::Reversal => "reversal",
        }
    }

    fn route(mti: &str, pc: &str) -> Option<Kind> {
        let class = pc.get(..2).unwrap_or("");
        Some(match (mti, class) {
            ("0400" | "0401", _) => Kind::Reversal,
            ("0200", "31") => Kind::Balance,
            ("0200", "00") => Kind::Purchase,
            ("0200", "20") => Kind::Void,
            ("0220", "20") => Kind::Refund,
            ("0200", "60") => Kind::Load,
            ("0220", "60") => Kind::LoadConfirm,
            _ => return None,
        })
    }
}

/// A request's fields, owned.
#[derive(Debug, Clone)]
struct Req {
    mti: String,
    kind: Kind,
    pc: String,
    amount: Option<u64>,
    stan: u32,
    acquirer: String,
    terminal: String,
    merchant: String,
    pan: Option<String>,
    expiry: Option<String>,
    pin_block: Option<[u8; 8]>,
    orig_rrn: Option<String>,
    f61: Option<String>,
    f55: Option<Vec<u8>>,
}

impl Req {
    fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.mti,
            self.pc,
            self.amount.unwrap_or(0),
            self.pan.as_deref().unwrap_or("")
        )
    }

    /// For a reversal: the original's STAN (field 61 digits 7-12, else field 11).
    fn original_stan(&self) -> u32 {
        self.f61
            .as_deref()
            .and_then(|s| s.get(6..12))
            .and_then(|s| s.parse().ok())
            .unwrap_or(self.stan)
    }
}

/// The outcome of a decision.
#[derive(Debug, Clone, Default)]
struct Decision {
    code: &'static str,
    auth_id: Option<i64>,
    rrn: Option<String>,
    auth_code: Option<String>,
    f54: Option<String>,
    f55: Option<Vec<u8>>,
    /// A stored response to send as it is.
    replay: Option<Vec<u8>>,
}

impl Decision {
    fn code(code: &'static str) -> Decision {
        Decision {
            code,
            ..Decision::default()
        }
    }
}

/// The load data kept with an approved load, for its confirmation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct LoadData {
    serial: String,
    balance_before: u32,
    online_seq: u16,
    tx_type: u8,
    terminal: String,
    date: String,
    time: String,
    #[serde(default)]
    tac: Option<String>,
    #[serde(default)]
    tac_ok: Option<bool>,
}

/// What field 55 of a load carries.
#[derive(Debug, Clone)]
struct LoadTlv {
    serial: [u8; 8],
    balance: u32,
    online_seq: u16,
    random: [u8; 4],
    mac1: [u8; 4],
    tx_type: u8,
    terminal: [u8; 6],
}

fn tag(v: u32) -> Option<Tag> {
    Tag::new(v)
}

fn tlv_value<const N: usize>(data: &[u8], t: u32) -> Option<[u8; N]> {
    let want = tag(t)?;
    for item in TlvReader::new(data) {
        let tlv = item.ok()?;
        if tlv.tag() == want {
            return <[u8; N]>::try_from(tlv.value()).ok();
        }
    }
    None
}

fn parse_load_tlv(data: &[u8]) -> Option<LoadTlv> {
    Some(LoadTlv {
        serial: tlv_value::<8>(data, 0xDF01)?,
        balance: u32::from_be_bytes(tlv_value::<4>(data, 0xDF02)?),
        online_seq: u16::from_be_bytes(tlv_value::<2>(data, 0xDF03)?),
        random: tlv_value::<4>(data, 0xDF04)?,
        mac1: tlv_value::<4>(data, 0xDF05)?,
        tx_type: tlv_value::<1>(data, 0xDF09)?[0],
        terminal: tlv_value::<6>(data, 0xDF08)?,
    })
}

/// The request's PIN block as the HSM gave it back under the PVK, before the card is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PinIn {
    /// No PVK configured: PINs are not verified.
    NoPvk,
    /// The request carries no PIN block.
    NoBlock,
    /// The block translated to the PVK.
    UnderPvk([u8; 8]),
    /// The block does not decode as format 0 under the ZPK (or the PAN is unusable).
    Format,
    /// The HSM failed.
    Failed,
}

impl PinIn {
    /// The check against the card's PIN verification data (compared in constant time).
    fn check(self, card: &CardRecord) -> PinCheck {
        let Some(stored) = card.pin_data else {
            return PinCheck::NotNeeded;
        };
        match self {
            PinIn::NoPvk => PinCheck::NotNeeded,
            PinIn::NoBlock => PinCheck::Missing,
            PinIn::Format => PinCheck::Format,
            PinIn::Failed => PinCheck::Failed,
            PinIn::UnderPvk(block) => {
                if pboc_sam::mac::verify("PIN", &stored, &block).is_ok() {
                    PinCheck::Good
                } else {
                    PinCheck::Wrong
                }
            }
        }
    }
}

/// The result of a PIN check through the HSM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PinCheck {
    /// No PIN to check (no PVK configured, or the card has no PIN).
    NotNeeded,
    /// The PIN matches.
    Good,
    /// The PIN does not match.
    Wrong,
    /// The card has a PIN but the request carries none.
    Missing,
    /// The block does not decode as format 0 under the ZPK: `99`.
    Format,
    /// The HSM failed: `96`.
    Failed,
}

/// The per-request logic, shared by every connection.
pub(crate) struct Authorizer {
    /// The dialect front ends speak (`[center] spec`).
    pub spec: &'static Spec,
    pub hsm: Arc<dyn SecurityModule>,
    pub keys: ResolvedKeys,
    pub registry: Registry,
    pub acquirers: Vec<String>,
    pub limits: CardLimits,
    pub utc_offset_minutes: i32,
    pub window_ms: i64,
}

/// The response MTI: third digit plus one, repeat digit cleared (0401 -> 0410).
fn response_mti(mti: &str) -> String {
    let b = mti.as_bytes();
    match b {
        [a, c, f, _] if f.is_ascii_digit() && *f < b'9' => {
            format!("{}{}{}0", *a as char, *c as char, (f + 1) as char)
        }
        _ => "0000".to_owned(),
    }
}

/// Fields echoed from the request, by kind.
fn echo_fields(kind: Option<Kind>) -> &'static [u16] {
    match kind {
        Some(Kind::LoadConfirm) => &[11, 32, 41, 42, 60],
        Some(Kind::Reversal) => &[3, 4, 11, 32, 41, 42, 60],
        _ => &[2, 3, 4, 11, 32, 41, 42, 49, 60],
    }
}

fn field_text(msg: &Message<'_>, n: u16) -> Option<String> {
    msg.field(n).map(|f| f.to_string().trim_end().to_owned())
}

/// Where a request is in its units of work: its journal line until a unit has written it,
/// the response template until a decision's unit has used it, and the response that unit
/// committed.
struct Progress {
    /// When the request came (its journal lines' time).
    at_ms: i64,
    in_line: Option<Line>,
    template: Option<MessageBuf<'static>>,
    /// The committed response, encoded with its MAC field zeroed ([`encode_for_mac`]): a
    /// fresh one or a repeat's stored one. Only the MAC is left to put in.
    answered: Option<Vec<u8>>,
}

/// A response its decision's unit answers with: the body encoded with its MAC field zeroed,
/// and, for a fresh response, its journal copy and the authorization that keeps it for
/// repeats (a repeat's stored answer has neither).
struct Answered {
    body: Vec<u8>,
    kept: Option<Vec<u8>>,
    auth_id: Option<i64>,
}

/// Journals a response in its decision's unit and, given the authorization it answers,
/// stores it there for repeats.
fn store_answer(
    c: &Connection,
    spec: &'static Spec,
    at_ms: i64,
    a: &mut Answered,
) -> Result<(), CenterError> {
    if let Some(id) = a.auth_id {
        c.execute_cached(
            "UPDATE auths SET response = ?2 WHERE id = ?1",
            params![id, a.body],
        )
        .map_err(db("store response"))?;
    }
    let (msg, _) = decode_partial(spec, &a.body);
    let line = match a.kept.take() {
        Some(kept) => journal_line_keeping("out", spec, &msg, at_ms, kept),
        None => journal_line("out", spec, &msg, at_ms),
    };
    insert_line(c, &line)
}

/// A response before its decision: the echoed fields, the response MTI, the time.
fn response_base(
    msg: &Message<'_>,
    kind: Option<Kind>,
    now: &LocalTime,
) -> Option<MessageBuf<'static>> {
    let mut out = msg.to_buf().into_owned();
    let keep = echo_fields(kind);
    let present: Vec<u16> = out.fields().map(|(n, _)| n).collect();
    for n in present {
        if !keep.contains(&n) {
            out.remove(n);
        }
    }
    out.set_mti(&response_mti(msg.mti())).ok()?;
    if !matches!(kind, Some(Kind::Reversal | Kind::LoadConfirm)) {
        out.set(12, now.hhmmss.clone()).set(13, now.mmdd.clone());
    }
    Some(out)
}

/// Field 39 of a response: `code` as it is, or the ISO 8583:1993 action code of the same
/// meaning where `spec` carries action codes ([`to_action_code`]).
fn set_response_code(spec: &Spec, out: &mut MessageBuf<'_>, code: &str) {
    if uses_action_codes(spec) {
        let action = to_action_code(out.mti(), code);
        out.set(39, action);
    } else {
        out.set(39, code.to_owned());
    }
}

/// Sets the decision's fields of a response.
fn apply_decision(spec: &Spec, out: &mut MessageBuf<'static>, decision: &Decision) {
    set_response_code(spec, out, decision.code);
    if let Some(rrn) = &decision.rrn {
        out.set(37, rrn.clone());
    }
    if let Some(a) = &decision.auth_code {
        out.set(38, a.clone());
    }
    if let Some(b) = &decision.f54 {
        out.set(54, b.clone());
    }
    if let Some(d) = &decision.f55 {
        out.set(55, d.clone());
    }
}

impl Authorizer {
    /// Handles one request body; `None` when there is nothing to answer (undecodable, or
    /// the response could not be signed).
    pub async fn handle(&self, body: &[u8]) -> Option<Vec<u8>> {
        let spec = self.spec;
        let now = LocalTime::now(self.utc_offset_minutes);
        let msg = match decode(spec, body) {
            Ok(m) => m,
            Err(e) => return self.undecodable(body, &e.to_string(), &now).await,
        };
        let mti = msg.mti().to_owned();
        if mti.starts_with("08") {
            return self
                .network(
                    &msg,
                    Some(journal_line("in", spec, &msg, now.unix_ms)),
                    &now,
                )
                .await;
        }
        let pc = field_text(&msg, 3).unwrap_or_default();
        let kind = Kind::route(&mti, &pc);
        // The request's journal line goes into the first unit of work this request has; a
        // decision's unit also builds and stores the response from the template.
        let mut progress = Progress {
            at_ms: now.unix_ms,
            in_line: Some(journal_line("in", spec, &msg, now.unix_ms)),
            template: response_base(&msg, kind, &now),
            answered: None,
        };
        let base = |code: &'static str| (kind, Decision::code(code));
        let (kind, decision) = match self.check_mac(&msg, body).await {
            Err(code) => base(code),
            Ok(()) => {
                let acquirer = field_text(&msg, 32).unwrap_or_default();
                if !self.acquirers.contains(&acquirer) {
                    warn!(acquirer = %acquirer, "acquirer not accepted: 03");
                    base("03")
                } else {
                    match kind {
                        None => base("12"),
                        Some(k) => match self.parse(&msg, k) {
                            None => base("30"),
                            Some(req) => (kind, self.decide(&req, &now, &mut progress).await),
                        },
                    }
                }
            }
        };
        // A decision's unit is committed with its response: only the MAC is left to put in.
        let unsigned = match progress.answered.take() {
            Some(body) => {
                if decision.replay.is_some() {
                    info!(mti = %mti, "repeated request: stored answer sent");
                }
                body
            }
            // No unit ran (the request was refused before its decision), or its commit
            // failed and nothing of it is stored (`decide` then answers `96`): the response
            // and the journal lines are one unit of their own.
            None => {
                let mut out = match progress.template.take() {
                    Some(t) => t,
                    None => response_base(&msg, kind, &now)?,
                };
                apply_decision(self.spec, &mut out, &decision);
                let signed = match self.sign(out).await {
                    Ok(b) => b,
                    Err(e) => {
                        error!(code = "CENTER_SIGN", "{e}; no answer sent");
                        self.finish(progress.in_line, None, &now).await;
                        return None;
                    }
                };
                self.finish(progress.in_line, Some(&signed), &now).await;
                return Some(signed);
            }
        };
        match self.put_mac(unsigned).await {
            Ok(b) => Some(b),
            Err(e) => {
                error!(code = "CENTER_SIGN", "{e}; no answer sent");
                None
            }
        }
    }

    /// The unit of work of a request that had no decision's unit (or whose decision's
    /// commit failed): its journal line and its response's. Returns once committed: the
    /// response is durable before it is sent. A failure is logged (the answer still goes
    /// out: nothing of it moved money).
    async fn finish(&self, in_line: Option<Line>, response: Option<&[u8]>, now: &LocalTime) {
        let out_line = response.map(|body| {
            let (msg, _) = decode_partial(self.spec, body);
            journal_line("out", self.spec, &msg, now.unix_ms)
        });
        let work = move |c: &Connection| {
            for line in in_line.iter().chain(out_line.iter()) {
                insert_line(c, line)?;
            }
            Ok(())
        };
        if let Err(e) = self.registry.call(work).await {
            error!(code = "CENTER_JOURNAL", "{e}");
        }
    }

    /// The unit of work of a decision: the request's journal line (if not written yet),
    /// then `f` in a savepoint of its own (a decision that fails is answered `96` and leaves
    /// the journal line in place), then the response built from `progress.template`:
    /// stored with the authorization for repeats, and journaled. The response is encoded
    /// with its MAC field zeroed: the MAC depends only on those bytes and the ZAK, so the
    /// caller puts it in once the unit is committed, and a repeat's stored answer gets the
    /// same MAC the same way. One group commit makes the decision and its response durable
    /// together, with no wait for the HSM inside the committer's transaction.
    async fn decision_unit(
        &self,
        progress: &mut Progress,
        f: impl FnOnce(&Connection) -> Result<Decision, CenterError> + Send + 'static,
    ) -> Result<Decision, CenterError> {
        let line = progress.in_line.take();
        let template = progress.template.take();
        let (spec, at_ms) = (self.spec, progress.at_ms);
        let (decision, answered) = self
            .registry
            .call_infallible(move |c| {
                if let Some(l) = &line
                    && let Err(e) = insert_line(c, l)
                {
                    error!(code = "CENTER_JOURNAL", "{e}");
                }
                let decision = in_savepoint(c, &INNER, f).unwrap_or_else(|e| {
                    error!(code = "CENTER_DB", "{e}: 96");
                    Decision::code("96")
                });
                // A repeat's stored answer is journaled; a fresh response is also stored. The
                // response's journal copy is made from the message just built, not decoded
                // back from its bytes.
                let answered = match (&decision.replay, template) {
                    (Some(stored), _) => Some(Answered {
                        body: stored.clone(),
                        kept: None,
                        auth_id: None,
                    }),
                    (None, Some(mut t)) => {
                        apply_decision(spec, &mut t, &decision);
                        match encode_for_mac(spec, &mut t) {
                            Ok(body) => Some(Answered {
                                body,
                                kept: Some(journal_copy_of(spec, t)),
                                auth_id: decision.auth_id,
                            }),
                            Err(e) => {
                                error!(code = "CENTER_SIGN", "response: {e}; no answer sent");
                                None
                            }
                        }
                    }
                    (None, None) => None,
                };
                let answered = answered.map(|mut a| {
                    if let Err(e) = store_answer(c, spec, at_ms, &mut a) {
                        error!(code = "CENTER_JOURNAL", "{e}");
                    }
                    a.body
                });
                (decision, answered)
            })
            .await?;
        progress.answered = answered;
        Ok(decision)
    }

    /// A body that does not decode: answered `30` when its MTI and STAN can be read.
    async fn undecodable(&self, body: &[u8], why: &str, now: &LocalTime) -> Option<Vec<u8>> {
        warn!(code = "CENTER_FORMAT", "request does not decode: {why}");
        let (msg, _) = decode_partial(self.spec, body);
        let mti = msg.mti().to_owned();
        if !matches!(mti.as_bytes().get(2), Some(b'0' | b'2')) || msg.field(11).is_none() {
            return None;
        }
        let mut out = MessageBuf::new(&response_mti(&mti)).ok()?;
        for n in [3u16, 11, 32, 41, 42] {
            if let Some(f) = msg.field(n) {
                out.set(n, f.to_string());
            }
        }
        set_response_code(self.spec, &mut out, "30");
        let signed = self.sign(out.into_owned()).await.ok()?;
        self.finish(None, Some(&signed), now).await;
        Some(signed)
    }

    /// 08xx: answered `00` at once, without a MAC.
    async fn network(
        &self,
        msg: &Message<'_>,
        in_line: Option<Line>,
        now: &LocalTime,
    ) -> Option<Vec<u8>> {
        let mut out = MessageBuf::new(&response_mti(msg.mti())).ok()?;
        for n in [11u16, 32, 41, 42, 60] {
            if let Some(f) = msg.field(n) {
                out.set(n, f.to_string());
            }
        }
        set_response_code(self.spec, &mut out, "00");
        let body = match out.to_vec(self.spec) {
            Ok(b) => b,
            Err(_) => {
                self.finish(in_line, None, now).await;
                return None;
            }
        };
        self.finish(in_line, Some(&body), now).await;
        Some(body)
    }

    /// The MAC (field 64, or 128 with a secondary bitmap) must be the last field and verify
    /// (X9.19, ZAK) over everything before it.
    async fn check_mac(&self, msg: &Message<'_>, body: &[u8]) -> Result<(), &'static str> {
        let (mab, mac) = match received_mac(msg, body) {
            Ok(x) => x,
            Err(why) => {
                warn!(code = "CENTER_MAC", "request MAC: {why}: A0");
                return Err("A0");
            }
        };
        match self
            .hsm
            .verify_mac(&self.keys.zak, MacAlgorithm::X919, mab, &mac)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.code == HsmErrorCode::VerificationFailed => {
                warn!(code = "CENTER_MAC", "field 64 does not verify: A0");
                Err("A0")
            }
            Err(e) => {
                error!(code = "CENTER_HSM", "verify MAC: {e}");
                Err("96")
            }
        }
    }

    /// Reads the fields a decision needs; `None` when a required one is missing or bad.
    fn parse(&self, msg: &Message<'_>, kind: Kind) -> Option<Req> {
        let stan = u32::try_from(msg.field(11)?.to_u64().ok()?).ok()?;
        let amount = match msg.field(4) {
            Some(f) => Some(f.to_u64().ok()?),
            None => None,
        };
        let pin_block = match msg.field(52) {
            Some(f) => Some(binary_array::<8>(&f)?),
            None => None,
        };
        let req = Req {
            mti: msg.mti().to_owned(),
            kind,
            pc: field_text(msg, 3).unwrap_or_default(),
            amount,
            stan,
            acquirer: field_text(msg, 32).unwrap_or_default(),
            terminal: field_text(msg, 41)?,
            merchant: field_text(msg, 42).unwrap_or_default(),
            pan: field_text(msg, 2),
            expiry: field_text(msg, 14),
            pin_block,
            orig_rrn: field_text(msg, 37),
            f61: field_text(msg, 61),
            f55: match msg.field(55) {
                Some(f) => Some(binary_value(&f)?),
                None => None,
            },
        };
        let needs_pan = !matches!(kind, Kind::Reversal);
        if needs_pan && req.pan.is_none() {
            return None;
        }
        Some(req)
    }

    async fn decide(&self, req: &Req, now: &LocalTime, progress: &mut Progress) -> Decision {
        let span = tracing::info_span!(
            "center",
            kind = req.kind.as_str(),
            terminal = %req.terminal,
            stan = req.stan,
            pan = %req.pan.as_deref().map(mask_pan).unwrap_or_default()
        );
        let _enter = span.enter();
        let result = match req.kind {
            Kind::Purchase | Kind::Balance => self.card_debit(req, now, progress).await,
            Kind::Void | Kind::Refund => self.credit_back(req, now, progress).await,
            Kind::Load => self.load(req, now, progress).await,
            Kind::LoadConfirm => self.load_confirm(req, now, progress).await,
            Kind::Reversal => self.reversal(req, now, progress).await,
        };
        match result {
            Ok(d) => {
                info!(code = d.code, rrn = ?d.rrn, "answered");
                d
            }
            Err(e) => {
                error!(code = "CENTER_DB", "{e}: 96");
                Decision::code("96")
            }
        }
    }

    /// The PIN block translated from the ZPK to the PVK, before the card is read (the card
    /// is the one whose number is field 2); [`PinIn::check`] compares it with the card's
    /// verification data inside the decision.
    async fn translate_pin(&self, req: &Req) -> PinIn {
        let Some(pvk) = &self.keys.pvk else {
            return PinIn::NoPvk;
        };
        let Some(block) = req.pin_block else {
            return PinIn::NoBlock;
        };
        let Ok(pan) = Pan::new(req.pan.as_deref().unwrap_or_default()) else {
            return PinIn::Format;
        };
        let t = PinTranslation {
            source_key: self.keys.zpk.clone(),
            source_format: PinBlockFormat::Iso0,
            dest_key: pvk.clone(),
            dest_format: PinBlockFormat::Iso0,
            pan,
            block,
        };
        match self.hsm.translate_pin(&t).await {
            Ok(under_pvk) => PinIn::UnderPvk(under_pvk),
            Err(e)
                if matches!(
                    e.code,
                    HsmErrorCode::PinBlock | HsmErrorCode::PinFormat | HsmErrorCode::PinLength
                ) =>
            {
                PinIn::Format
            }
            Err(e) => {
                error!(code = "CENTER_HSM", "translate PIN: {e}");
                PinIn::Failed
            }
        }
    }

    /// Purchase and balance inquiry.
    async fn card_debit(
        &self,
        req: &Req,
        now: &LocalTime,
        progress: &mut Progress,
    ) -> Result<Decision, CenterError> {
        let pin = self.translate_pin(req).await;
        let (req, now, limits, window) = (req.clone(), now.clone(), self.limits, self.window_ms);
        self.decision_unit(progress, move |c| {
            decide_card_debit(c, &req, &now, &limits, window, pin)
        })
        .await
    }

    /// Void and refund.
    async fn credit_back(
        &self,
        req: &Req,
        now: &LocalTime,
        progress: &mut Progress,
    ) -> Result<Decision, CenterError> {
        let (req, now, window) = (req.clone(), now.clone(), self.window_ms);
        self.decision_unit(progress, move |c| decide_credit_back(c, &req, &now, window))
            .await
    }

    /// Purse load: MAC1 verified and MAC2 made by the HSM, the funding account debited.
    async fn load(
        &self,
        req: &Req,
        now: &LocalTime,
        progress: &mut Progress,
    ) -> Result<Decision, CenterError> {
        let Some(tlv) = req.f55.as_deref().and_then(parse_load_tlv) else {
            return Ok(Decision::code("30"));
        };
        let serial_hex = hex::encode_upper(tlv.serial);
        if req.pan.as_deref() != Some(serial_hex.as_str()) {
            warn!("field 2 and tag DF01 name different cards: 30");
            return Ok(Decision::code("30"));
        }
        let amount = req.amount.unwrap_or(0);
        let mac2 = match u32::try_from(amount) {
            Ok(a) if a > 0 => {
                let load = LoadRequest {
                    factors: self.keys.issuer.factors_for(tlv.serial),
                    random: tlv.random,
                    online_seq: tlv.online_seq,
                    balance: tlv.balance,
                    amount: a,
                    tx_type: tlv.tx_type,
                    terminal: tlv.terminal,
                    date: now.date_bcd(),
                    time: now.time_bcd(),
                    mac1: tlv.mac1,
                };
                match self
                    .hsm
                    .pboc_load_mac2(&self.keys.issuer.dlk_master, &load)
                    .await
                {
                    Ok(m) => Ok(m),
                    Err(e) if e.code == HsmErrorCode::VerificationFailed => {
                        warn!("load MAC1 does not verify: 59");
                        Err("59")
                    }
                    Err(e) => {
                        error!(code = "CENTER_HSM", "load MAC2: {e}");
                        Err("96")
                    }
                }
            }
            _ => Err("13"),
        };
        let (req, now, limits, window) = (req.clone(), now.clone(), self.limits, self.window_ms);
        self.decision_unit(progress, move |c| {
            decide_load(c, &req, &now, &limits, window, &tlv, mac2)
        })
        .await
    }

    /// Load confirmation: the load found, its TAC verified by the HSM and recorded.
    async fn load_confirm(
        &self,
        req: &Req,
        now: &LocalTime,
        progress: &mut Progress,
    ) -> Result<Decision, CenterError> {
        let tac = req.f55.as_deref().and_then(|d| tlv_value::<4>(d, 0xDF13));
        let Some(tac) = tac else {
            return Ok(Decision::code("30"));
        };
        let found = {
            let req = req.clone();
            let window = self.window_ms;
            let at = now.unix_ms;
            self.registry
                .call(move |c| find_load(c, &req, at - window))
                .await?
        };
        let verdict = match &found {
            None => None,
            Some((_, data)) => Some(self.verify_load_tac(req, data, tac).await),
        };
        let (req, now, window) = (req.clone(), now.clone(), self.window_ms);
        self.decision_unit(progress, move |c| {
            decide_load_confirm(c, &req, &now, window, found, tac, verdict)
        })
        .await
    }

    async fn verify_load_tac(&self, req: &Req, data: &LoadData, tac: [u8; 4]) -> Option<bool> {
        let serial: [u8; 8] = hex::decode(&data.serial).ok()?.try_into().ok()?;
        let terminal: [u8; 6] = hex::decode(&data.terminal).ok()?.try_into().ok()?;
        let date: [u8; 4] = hex::decode(&data.date).ok()?.try_into().ok()?;
        let time: [u8; 3] = hex::decode(&data.time).ok()?.try_into().ok()?;
        let amount = u32::try_from(req.amount.unwrap_or(0)).ok()?;
        let input = pboc_sam::pboc::load_tac_input(
            data.balance_before.checked_add(amount)?,
            data.online_seq,
            amount,
            data.tx_type,
            &terminal,
            &date,
            &time,
        );
        let t = TacRequest {
            factors: self.keys.issuer.factors_for(serial),
            data: input.to_vec(),
            tac,
        };
        match self
            .hsm
            .pboc_verify_tac(&self.keys.issuer.dtk_master, &t)
            .await
        {
            Ok(()) => Some(true),
            Err(e) if e.code == HsmErrorCode::VerificationFailed => Some(false),
            Err(e) => {
                error!(code = "CENTER_HSM", "verify load TAC: {e}");
                None
            }
        }
    }

    async fn reversal(
        &self,
        req: &Req,
        now: &LocalTime,
        progress: &mut Progress,
    ) -> Result<Decision, CenterError> {
        let (req, now, window) = (req.clone(), now.clone(), self.window_ms);
        self.decision_unit(progress, move |c| decide_reversal(c, &req, &now, window))
            .await
    }

    /// Encodes `out` with its MAC field (64, or 128 with a secondary bitmap) set to the
    /// X9.19 MAC (ZAK) of everything before it.
    async fn sign(&self, mut out: MessageBuf<'static>) -> Result<Vec<u8>, CenterError> {
        let body =
            encode_for_mac(self.spec, &mut out).map_err(|e| CenterError::Encode(e.to_string()))?;
        self.put_mac(body).await
    }

    /// Puts the X9.19 MAC (ZAK) of everything before it into the MAC field of `body`, a
    /// response encoded by [`encode_for_mac`] (the MAC field last, zeroed or not).
    async fn put_mac(&self, mut body: Vec<u8>) -> Result<Vec<u8>, CenterError> {
        let mac = self
            .hsm
            .generate_mac(&self.keys.zak, MacAlgorithm::X919, mab(self.spec, &body))
            .await
            .map_err(|e| CenterError::Hsm {
                at: "response MAC",
                detail: e.to_string(),
            })?;
        put_mac(self.spec, &mut body, &mac);
        Ok(body)
    }
}

/// A journal row.
struct Line {
    at_ms: i64,
    direction: &'static str,
    mti: String,
    acquirer: Option<String>,
    terminal: Option<String>,
    stan: Option<i64>,
    pan_masked: Option<String>,
    code: Option<String>,
    /// The dialect of `message`.
    spec: &'static str,
    /// The message without its sensitive fields ([`journal_copy`]), described when read.
    message: Vec<u8>,
}

/// Writes a journal row.
fn insert_line(c: &Connection, line: &Line) -> Result<(), CenterError> {
    c.execute_cached(
        "INSERT INTO messages (at_ms, direction, mti, acquirer, terminal, stan, \
         pan_masked, response_code, text, spec, message) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '', ?9, ?10)",
        params![
            line.at_ms,
            line.direction,
            line.mti,
            line.acquirer,
            line.terminal,
            line.stan,
            line.pan_masked,
            line.code,
            line.spec,
            line.message
        ],
    )
    .map_err(db("journal message"))?;
    Ok(())
}

/// The journal row of a message. The message is kept as bytes without its sensitive fields
/// and described when the journal is read: describing it here cost more than the rest of
/// the row, and the description was seven times the bytes to write.
fn journal_line(
    direction: &'static str,
    spec: &'static Spec,
    msg: &Message<'_>,
    at_ms: i64,
) -> Line {
    journal_line_keeping(direction, spec, msg, at_ms, journal_copy(spec, msg))
}

/// [`journal_line`] with the message as kept (`kept`, the [`journal_copy`] of `msg`)
/// already made: the decision's unit makes it from the response it has just built.
fn journal_line_keeping(
    direction: &'static str,
    spec: &'static Spec,
    msg: &Message<'_>,
    at_ms: i64,
    kept: Vec<u8>,
) -> Line {
    Line {
        at_ms,
        direction,
        mti: msg.mti().to_owned(),
        acquirer: field_text(msg, 32),
        terminal: field_text(msg, 41),
        stan: msg
            .field(11)
            .and_then(|f| f.to_u64().ok())
            .and_then(|v| i64::try_from(v).ok()),
        pan_masked: field_text(msg, 2).map(|p| mask_pan(&p)),
        code: field_text(msg, 39),
        spec: spec.name(),
        message: kept,
    }
}

fn db(op: &'static str) -> impl Fn(rusqlite::Error) -> CenterError {
    move |e| CenterError::Database {
        op,
        detail: e.to_string(),
    }
}

/// What the matching key already has.
enum Claim {
    /// Nothing: go ahead.
    Free,
    /// Answer this (a stored response, `94`, or `05` for an original after its reversal).
    Early(Decision),
}

/// Checks the matching key (32 + 41 + 11) of an original within the window: a repeat of an
/// answered request gets its stored response, a different request or one not answered yet
/// gets `94`; an original whose reversal came first gets `05` (and is recorded, declined).
fn claim(c: &Connection, req: &Req, now: &LocalTime, window: i64) -> Result<Claim, CenterError> {
    Ok(match on_key(c, req, now.unix_ms - window)? {
        OnKey::Original {
            fingerprint,
            response,
        } => Claim::Early(match response {
            Some(bytes) if fingerprint == req.fingerprint() => Decision {
                replay: Some(bytes),
                ..Decision::code("00")
            },
            _ => {
                warn!("matching key in use by another request: 94");
                Decision::code("94")
            }
        }),
        OnKey::OrphanReversal => {
            warn!("original arrived after its reversal: 05");
            let id = insert_auth(c, req, now, &NewAuth::declined("05"))?;
            Claim::Early(Decision {
                auth_id: Some(id),
                ..Decision::code("05")
            })
        }
        OnKey::Nothing => Claim::Free,
    })
}

/// What the matching key (32 + 41 + 11) of a request has had since a time.
enum OnKey {
    /// An original: the latest one's fingerprint and stored response.
    Original {
        fingerprint: String,
        response: Option<Vec<u8>>,
    },
    /// No original, but a reversal that found none.
    OrphanReversal,
    /// Nothing.
    Nothing,
}

/// One look at the key's rows since `since`, newest first.
fn on_key(c: &Connection, req: &Req, since: i64) -> Result<OnKey, CenterError> {
    let err = db("find duplicate");
    let mut stmt = c
        .prepare_cached(
            "SELECT kind = 'reversal', fingerprint, response, original_id IS NULL FROM auths \
             WHERE acquirer = ?1 AND terminal = ?2 AND stan = ?3 AND created_ms >= ?4 \
             ORDER BY id DESC",
        )
        .map_err(&err)?;
    let mut rows = stmt
        .query(params![req.acquirer, req.terminal, req.stan, since])
        .map_err(&err)?;
    let mut seen = OnKey::Nothing;
    while let Some(row) = rows.next().map_err(&err)? {
        if !row.get::<_, bool>(0).map_err(&err)? {
            return Ok(OnKey::Original {
                fingerprint: row.get(1).map_err(&err)?,
                response: row.get(2).map_err(&err)?,
            });
        }
        if row.get::<_, bool>(3).map_err(&err)? {
            seen = OnKey::OrphanReversal;
        }
    }
    Ok(seen)
}

/// The columns of a new authorization that vary.
#[derive(Debug, Clone, Default)]
struct NewAuth {
    code: &'static str,
    state: Option<AuthState>,
    card_id: Option<i64>,
    account: Option<String>,
    rrn: Option<String>,
    auth_code: Option<String>,
    original_id: Option<i64>,
    load_data: Option<String>,
}

impl NewAuth {
    fn declined(code: &'static str) -> NewAuth {
        NewAuth {
            code,
            ..NewAuth::default()
        }
    }

    fn card(code: &'static str, card: &CardRecord) -> NewAuth {
        NewAuth {
            code,
            card_id: Some(card.id),
            account: Some(card.account.clone()),
            ..NewAuth::default()
        }
    }
}

fn insert_auth(
    c: &Connection,
    req: &Req,
    now: &LocalTime,
    a: &NewAuth,
) -> Result<i64, CenterError> {
    let state = a.state.unwrap_or(if a.code == "00" {
        AuthState::Approved
    } else {
        AuthState::Declined
    });
    let stan = if req.kind == Kind::Reversal {
        req.original_stan()
    } else {
        req.stan
    };
    c.execute_cached(
        "INSERT INTO auths (created_ms, local_date, kind, mti, acquirer, terminal, merchant, \
         stan, fingerprint, card_id, account_id, amount, response_code, rrn, auth_code, state, \
         original_id, load_data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
         ?13, ?14, ?15, ?16, ?17, ?18)",
        params![
            now.unix_ms,
            now.yyyymmdd,
            req.kind.as_str(),
            req.mti,
            req.acquirer,
            req.terminal,
            req.merchant,
            stan,
            req.fingerprint(),
            a.card_id,
            a.account,
            to_i64(req.amount.unwrap_or(0)),
            a.code,
            a.rrn,
            a.auth_code,
            state.as_str(),
            a.original_id,
            a.load_data,
        ],
    )
    .map_err(db("record authorization"))?;
    let id = c.last_insert_rowid();
    if req.kind == Kind::Purchase
        && state == AuthState::Approved
        && let Some(card) = a.card_id
    {
        add_spent(c, card, &now.yyyymmdd, to_i64(req.amount.unwrap_or(0)))?;
    }
    Ok(id)
}

/// A new RRN (`Y` + day of year + 8-digit sequence) and authorization code (6 digits).
fn new_reference(c: &Connection, now: &LocalTime) -> Result<(String, String), CenterError> {
    let seq = next_counter(c, "rrn")?;
    let rrn = format!(
        "{}{:03}{:08}",
        now.year.rem_euclid(10),
        now.day_of_year,
        seq % 100_000_000
    );
    let auth = format!(
        "{:06}",
        (seq.wrapping_mul(7_919).wrapping_add(104_729)) % 1_000_000
    );
    Ok((rrn, auth))
}

/// Status, blacklist and expiry of a card: the decline code, if any.
fn card_state_code(view: &CardView, req: &Req, now: &LocalTime) -> Option<&'static str> {
    let card = &view.card;
    let code = match card.status {
        CardStatus::Active => None,
        CardStatus::Lost => Some("41"),
        CardStatus::Stolen => Some("43"),
        CardStatus::Blocked => Some("62"),
    };
    if code.is_some() {
        return code;
    }
    if view.blacklisted {
        return Some("62");
    }
    if card.expiry.as_str() < now.yymm.as_str() {
        return Some("54");
    }
    if let Some(e) = &req.expiry
        && *e != card.expiry
    {
        return Some("54");
    }
    None
}

/// Declines and records; the card's PIN tries are kept as they are.
fn decline(
    c: &Connection,
    req: &Req,
    now: &LocalTime,
    code: &'static str,
    card: Option<&CardRecord>,
) -> Result<Decision, CenterError> {
    let a = match card {
        Some(card) => NewAuth::card(code, card),
        None => NewAuth::declined(code),
    };
    let id = insert_auth(c, req, now, &a)?;
    Ok(Decision {
        auth_id: Some(id),
        ..Decision::code(code)
    })
}

/// The field 54 balance: account type `10`, amount type `02` (available), `156`, sign, n12.
fn balance_field(balance: i64) -> String {
    let sign = if balance < 0 { 'D' } else { 'C' };
    format!("1002156{sign}{:012}", balance.unsigned_abs())
}

fn decide_card_debit(
    c: &Connection,
    req: &Req,
    now: &LocalTime,
    limits: &CardLimits,
    window: i64,
    pin: PinIn,
) -> Result<Decision, CenterError> {
    if let Claim::Early(d) = claim(c, req, now, window)? {
        return Ok(d);
    }
    let pan = req.pan.as_deref().unwrap_or("");
    let Some(view) = card_view(c, pan, &now.yyyymmdd)? else {
        return decline(c, req, now, "14", None);
    };
    let card = &view.card;
    if card.kind != CardKind::Bank {
        return decline(c, req, now, "57", Some(card));
    }
    if let Some(code) = card_state_code(&view, req, now) {
        return decline(c, req, now, code, Some(card));
    }
    let pin = pin.check(card);
    if pin != PinCheck::NotNeeded && card.pin_tries >= MAX_PIN_TRIES {
        return decline(c, req, now, "75", Some(card));
    }
    match pin {
        PinCheck::NotNeeded => {}
        PinCheck::Good => {
            if card.pin_tries > 0 {
                set_pin_tries(c, card.id, 0)?;
            }
        }
        PinCheck::Wrong => {
            set_pin_tries(c, card.id, card.pin_tries.saturating_add(1))?;
            return decline(c, req, now, "55", Some(card));
        }
        PinCheck::Missing => return decline(c, req, now, "55", Some(card)),
        PinCheck::Format => return decline(c, req, now, "99", Some(card)),
        PinCheck::Failed => return decline(c, req, now, "96", Some(card)),
    }
    let balance = view.balance;
    if req.kind == Kind::Balance {
        let (rrn, auth) = new_reference(c, now)?;
        let a = NewAuth {
            rrn: Some(rrn.clone()),
            auth_code: Some(auth.clone()),
            ..NewAuth::card("00", card)
        };
        let id = insert_auth(c, req, now, &a)?;
        return Ok(Decision {
            auth_id: Some(id),
            rrn: Some(rrn),
            auth_code: Some(auth),
            f54: Some(balance_field(balance)),
            ..Decision::code("00")
        });
    }
    let amount = req.amount.unwrap_or(0);
    if amount == 0 {
        return decline(c, req, now, "13", Some(card));
    }
    if amount > card.single_limit.unwrap_or(limits.single) {
        return decline(c, req, now, "61", Some(card));
    }
    if view.spent.saturating_add(amount) > card.daily_limit.unwrap_or(limits.daily) {
        return decline(c, req, now, "61", Some(card));
    }
    if balance < to_i64(amount) {
        return decline(c, req, now, "51", Some(card));
    }
    adjust_balance(c, &card.account, -to_i64(amount))?;
    let (rrn, auth) = new_reference(c, now)?;
    let a = NewAuth {
        rrn: Some(rrn.clone()),
        auth_code: Some(auth.clone()),
        ..NewAuth::card("00", card)
    };
    let id = insert_auth(c, req, now, &a)?;
    Ok(Decision {
        auth_id: Some(id),
        rrn: Some(rrn),
        auth_code: Some(auth),
        ..Decision::code("00")
    })
}

/// An authorization row as the undo logic needs it.
#[derive(Debug, Clone)]
struct Orig {
    id: i64,
    kind: String,
    card_id: Option<i64>,
    account: Option<String>,
    amount: u64,
    state: String,
    refunded: u64,
    original_id: Option<i64>,
}

const ORIG_COLUMNS: &str = "id, kind, card_id, account_id, amount, state, refunded, original_id";

fn orig_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Orig> {
    Ok(Orig {
        id: r.get(0)?,
        kind: r.get(1)?,
        card_id: r.get(2)?,
        account: r.get(3)?,
        amount: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        state: r.get(5)?,
        refunded: u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
        original_id: r.get(7)?,
    })
}

fn orig_by_id(c: &Connection, id: i64) -> Result<Option<Orig>, CenterError> {
    c.query_row_cached(
        &format!("SELECT {ORIG_COLUMNS} FROM auths WHERE id = ?1"),
        params![id],
        orig_from_row,
    )
    .optional()
    .map_err(db("read original"))
}

/// What the daily spending needs of an authorization: the card of a purchase (`None` for
/// any other kind, or a purchase without a card), the purchase's date, what is left of it
/// (`amount - refunded`) and whether it is approved.
struct Spend {
    purchase_card: Option<i64>,
    local_date: String,
    left: i64,
    approved: bool,
}

/// The columns [`Spend::from_row`] reads.
const SPEND_COLUMNS: &str = "CASE kind WHEN 'purchase' THEN card_id END, local_date, amount - refunded, \
     state = 'approved'";

impl Spend {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Spend> {
        Ok(Spend {
            purchase_card: r.get(0)?,
            local_date: r.get(1)?,
            left: r.get(2)?,
            approved: r.get(3)?,
        })
    }
}

/// Sets an authorization's state. A purchase that enters or leaves `approved` adds its
/// `amount - refunded` to, or takes it from, its card's spending of its own date
/// ([`add_spent`]): the daily limit counts approved purchases only.
fn set_state(c: &Connection, id: i64, state: AuthState) -> Result<(), CenterError> {
    let before = c
        .query_row_cached(
            &format!("SELECT {SPEND_COLUMNS} FROM auths WHERE id = ?1"),
            params![id],
            Spend::from_row,
        )
        .optional()
        .map_err(db("read authorization state"))?;
    c.execute_cached(
        "UPDATE auths SET state = ?2 WHERE id = ?1",
        params![id, state.as_str()],
    )
    .map_err(db("update authorization state"))?;
    if let Some(Spend {
        purchase_card: Some(card),
        local_date,
        left,
        approved,
    }) = before
    {
        let delta = match (approved, state == AuthState::Approved) {
            (false, true) => left,
            (true, false) => -left,
            _ => 0,
        };
        add_spent(c, card, &local_date, delta)?;
    }
    Ok(())
}

/// Adds `delta` to what was refunded of a purchase (negative: a refund reversed). While the
/// purchase is approved, its card's spending of the purchase's date moves the other way
/// ([`add_spent`]).
fn add_refunded(c: &Connection, id: i64, delta: i64) -> Result<(), CenterError> {
    let after = c
        .query_row_cached(
            &format!(
                "UPDATE auths SET refunded = refunded + ?2 WHERE id = ?1 RETURNING {SPEND_COLUMNS}"
            ),
            params![id, delta],
            Spend::from_row,
        )
        .optional()
        .map_err(db("update refunded amount"))?;
    if let Some(Spend {
        purchase_card: Some(card),
        local_date,
        approved: true,
        ..
    }) = after
    {
        add_spent(c, card, &local_date, delta.saturating_neg())?;
    }
    Ok(())
}

fn decide_credit_back(
    c: &Connection,
    req: &Req,
    now: &LocalTime,
    window: i64,
) -> Result<Decision, CenterError> {
    if let Claim::Early(d) = claim(c, req, now, window)? {
        return Ok(d);
    }
    let pan = req.pan.as_deref().unwrap_or("");
    let card = card_by_number(c, pan)?;
    let orig = match &req.orig_rrn {
        Some(rrn) => c
            .query_row_cached(
                &format!(
                    "SELECT {ORIG_COLUMNS} FROM auths WHERE rrn = ?1 AND kind = 'purchase' \
                     ORDER BY id DESC LIMIT 1"
                ),
                params![rrn],
                orig_from_row,
            )
            .optional()
            .map_err(db("find original by RRN"))?,
        None => None,
    };
    let (Some(orig), Some(card)) = (orig, card) else {
        return decline(c, req, now, "25", None);
    };
    if orig.card_id != Some(card.id) {
        return decline(c, req, now, "25", Some(&card));
    }
    if orig.state != AuthState::Approved.as_str() {
        return decline(c, req, now, "12", Some(&card));
    }
    let amount = req.amount.unwrap_or(0);
    let ok_amount = match req.kind {
        Kind::Void => amount == orig.amount && orig.refunded == 0,
        _ => amount > 0 && amount <= orig.amount.saturating_sub(orig.refunded),
    };
    if !ok_amount {
        return decline(c, req, now, "64", Some(&card));
    }
    let account = orig.account.clone().unwrap_or_else(|| card.account.clone());
    adjust_balance(c, &account, to_i64(amount))?;
    if req.kind == Kind::Void {
        set_state(c, orig.id, AuthState::Voided)?;
    } else {
        add_refunded(c, orig.id, to_i64(amount))?;
    }
    let (rrn, auth) = new_reference(c, now)?;
    let a = NewAuth {
        rrn: Some(rrn.clone()),
        auth_code: Some(auth.clone()),
        original_id: Some(orig.id),
        account: Some(account),
        ..NewAuth::card("00", &card)
    };
    let id = insert_auth(c, req, now, &a)?;
    Ok(Decision {
        auth_id: Some(id),
        rrn: Some(rrn),
        auth_code: Some(auth),
        ..Decision::code("00")
    })
}

fn decide_load(
    c: &Connection,
    req: &Req,
    now: &LocalTime,
    limits: &CardLimits,
    window: i64,
    tlv: &LoadTlv,
    mac2: Result<[u8; 4], &'static str>,
) -> Result<Decision, CenterError> {
    if let Claim::Early(d) = claim(c, req, now, window)? {
        return Ok(d);
    }
    let serial = hex::encode_upper(tlv.serial);
    let Some(view) = card_view(c, &serial, &now.yyyymmdd)? else {
        return decline(c, req, now, "14", None);
    };
    let card = &view.card;
    if card.kind != CardKind::Purse {
        return decline(c, req, now, "57", Some(card));
    }
    if let Some(code) = card_state_code(&view, req, now) {
        return decline(c, req, now, code, Some(card));
    }
    let amount = req.amount.unwrap_or(0);
    if amount == 0 || u32::try_from(amount).is_err() {
        return decline(c, req, now, "13", Some(card));
    }
    if u64::from(tlv.balance).saturating_add(amount) > limits.purse_max_balance {
        return decline(c, req, now, "61", Some(card));
    }
    if view.balance < to_i64(amount) {
        return decline(c, req, now, "51", Some(card));
    }
    let mac2 = match mac2 {
        Ok(m) => m,
        Err(code) => return decline(c, req, now, code, Some(card)),
    };
    adjust_balance(c, &card.account, -to_i64(amount))?;
    let date = now.date_bcd();
    let time = now.time_bcd();
    let data = LoadData {
        serial,
        balance_before: tlv.balance,
        online_seq: tlv.online_seq,
        tx_type: tlv.tx_type,
        terminal: hex::encode_upper(tlv.terminal),
        date: hex::encode_upper(date),
        time: hex::encode_upper(time),
        tac: None,
        tac_ok: None,
    };
    let (rrn, auth) = new_reference(c, now)?;
    let a = NewAuth {
        rrn: Some(rrn.clone()),
        auth_code: Some(auth.clone()),
        load_data: serde_json::to_string(&data).ok(),
        ..NewAuth::card("00", card)
    };
    let id = insert_auth(c, req, now, &a)?;
    let mut f55 = Vec::new();
    let mut b = TlvBuilder::new(&mut f55);
    for (t, v) in [
        (0xDF10u32, &mac2[..]),
        (0xDF11, &date[..]),
        (0xDF12, &time[..]),
    ] {
        if let Some(t) = tag(t) {
            b.push(t, v)
                .map_err(|e| CenterError::Encode(e.to_string()))?;
        }
    }
    b.finish().map_err(|e| CenterError::Encode(e.to_string()))?;
    Ok(Decision {
        auth_id: Some(id),
        rrn: Some(rrn),
        auth_code: Some(auth),
        f55: Some(f55),
        ..Decision::code("00")
    })
}

/// The latest approved load at this terminal for this card and amount.
fn find_load(
    c: &Connection,
    req: &Req,
    since: i64,
) -> Result<Option<(i64, LoadData)>, CenterError> {
    let serial = req.pan.clone().unwrap_or_default();
    let Some(card) = card_by_number(c, &serial)? else {
        return Ok(None);
    };
    let row = c
        .query_row_cached(
            "SELECT id, load_data FROM auths WHERE kind = 'load' AND state = 'approved' \
             AND terminal = ?1 AND card_id = ?2 AND amount = ?3 AND created_ms >= ?4 \
             ORDER BY id DESC LIMIT 1",
            params![
                req.terminal,
                card.id,
                to_i64(req.amount.unwrap_or(0)),
                since
            ],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)),
        )
        .optional()
        .map_err(db("find load"))?;
    let Some((id, Some(json))) = row else {
        return Ok(None);
    };
    let data: LoadData = serde_json::from_str(&json).map_err(|e| CenterError::Database {
        op: "read load data",
        detail: format!("auth row {id}: {e}"),
    })?;
    Ok(Some((id, data)))
}

fn decide_load_confirm(
    c: &Connection,
    req: &Req,
    now: &LocalTime,
    window: i64,
    found: Option<(i64, LoadData)>,
    tac: [u8; 4],
    verdict: Option<Option<bool>>,
) -> Result<Decision, CenterError> {
    if let Claim::Early(d) = claim(c, req, now, window)? {
        return Ok(d);
    }
    let Some((load_id, mut data)) = found else {
        return decline(c, req, now, "25", None);
    };
    let tac_hex = hex::encode_upper(tac);
    if let Some(prior) = &data.tac
        && *prior != tac_hex
    {
        return decline(c, req, now, "94", None);
    }
    let code = match verdict.flatten() {
        Some(true) => "00",
        Some(false) => "59",
        None => "96",
    };
    if code == "96" {
        return decline(c, req, now, code, None);
    }
    data.tac = Some(tac_hex);
    data.tac_ok = Some(code == "00");
    let json = serde_json::to_string(&data).map_err(|e| CenterError::Encode(e.to_string()))?;
    c.execute_cached(
        "UPDATE auths SET load_data = ?2 WHERE id = ?1",
        params![load_id, json],
    )
    .map_err(db("record TAC"))?;
    if code == "59" {
        warn!(load = load_id, "load TAC does not verify: recorded, 59");
    }
    let a = NewAuth {
        original_id: Some(load_id),
        state: Some(if code == "00" {
            AuthState::Approved
        } else {
            AuthState::Declined
        }),
        ..NewAuth::declined(code)
    };
    let id = insert_auth(c, req, now, &a)?;
    Ok(Decision {
        auth_id: Some(id),
        ..Decision::code(code)
    })
}

fn decide_reversal(
    c: &Connection,
    req: &Req,
    now: &LocalTime,
    window: i64,
) -> Result<Decision, CenterError> {
    let since = now.unix_ms - window;
    let stan = req.original_stan();
    let prior = c
        .query_row_cached(
            "SELECT response FROM auths WHERE acquirer = ?1 AND terminal = ?2 AND stan = ?3 \
             AND kind = 'reversal' AND created_ms >= ?4 ORDER BY id DESC LIMIT 1",
            params![req.acquirer, req.terminal, stan, since],
            |r| r.get::<_, Option<Vec<u8>>>(0),
        )
        .optional()
        .map_err(db("find reversal"))?;
    if let Some(resp) = prior {
        return Ok(match resp {
            Some(bytes) => Decision {
                replay: Some(bytes),
                ..Decision::code("00")
            },
            None => Decision::code("94"),
        });
    }
    let orig = c
        .query_row_cached(
            &format!(
                "SELECT {ORIG_COLUMNS} FROM auths WHERE acquirer = ?1 AND terminal = ?2 \
                 AND stan = ?3 AND kind != 'reversal' AND created_ms >= ?4 \
                 ORDER BY id DESC LIMIT 1"
            ),
            params![req.acquirer, req.terminal, stan, since],
            orig_from_row,
        )
        .optional()
        .map_err(db("find original"))?;
    let Some(orig) = orig else {
        warn!(
            original_stan = stan,
            "reversal of an unknown original: 25, remembered"
        );
        return decline(c, req, now, "25", None);
    };
    if let Some(a) = req.amount
        && orig.amount > 0
        && a != orig.amount
    {
        return decline(c, req, now, "64", None);
    }
    if orig.state == AuthState::Approved.as_str() {
        let amount = to_i64(orig.amount);
        let account = orig.account.clone().unwrap_or_default();
        match orig.kind.as_str() {
            "purchase" => {
                adjust_balance(
                    c,
                    &account,
                    to_i64(orig.amount.saturating_sub(orig.refunded)),
                )?;
            }
            "load" => adjust_balance(c, &account, amount)?,
            "void" => {
                adjust_balance(c, &account, -amount)?;
                if let Some(p) = orig
                    .original_id
                    .map(|id| orig_by_id(c, id))
                    .transpose()?
                    .flatten()
                {
                    set_state(c, p.id, AuthState::Approved)?;
                }
            }
            "refund" => {
                adjust_balance(c, &account, -amount)?;
                if let Some(p) = orig.original_id {
                    add_refunded(c, p, -amount)?;
                }
            }
            _ => {}
        }
        set_state(c, orig.id, AuthState::Reversed)?;
        debug!(original = orig.id, kind = %orig.kind, "reversed");
    } else {
        debug!(original = orig.id, state = %orig.state, "nothing to undo");
    }
    let a = NewAuth {
        original_id: Some(orig.id),
        card_id: orig.card_id,
        account: orig.account.clone(),
        ..NewAuth::declined("00")
    };
    let id = insert_auth(c, req, now, &a)?;
    Ok(Decision {
        auth_id: Some(id),
        ..Decision::code("00")
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::registry::{NewCard, spent_on};
    use super::*;

    const RICH: &str = "6212340000000001";
    const OTHER: &str = "6212340000000019";
    const WINDOW: i64 = 2 * 86_400_000;

    fn req(kind: Kind, stan: u32, pan: &str, amount: u64, orig_rrn: Option<&str>) -> Req {
        let (mti, pc) = match kind {
            Kind::Void => ("0200", "200000"),
            Kind::Refund => ("0220", "200000"),
            Kind::Reversal => ("0400", "000000"),
            _ => ("0200", "000000"),
        };
        Req {
            mti: mti.to_owned(),
            kind,
            pc: pc.to_owned(),
            amount: Some(amount),
            stan,
            acquirer: "48020000".to_owned(),
            terminal: "10000001".to_owned(),
            merchant: "898100012340001".to_owned(),
            pan: Some(pan.to_owned()),
            expiry: None,
            pin_block: None,
            orig_rrn: orig_rrn.map(str::to_owned),
            f61: None,
            f55: None,
        }
    }

    fn purchase(c: &Connection, now: &LocalTime, pan: &str, stan: u32, amount: u64) -> Decision {
        let r = req(Kind::Purchase, stan, pan, amount, None);
        decide_card_debit(c, &r, now, &CardLimits::default(), WINDOW, PinIn::NoPvk).unwrap()
    }

    fn credit_back(
        c: &Connection,
        now: &LocalTime,
        kind: Kind,
        stan: u32,
        amount: u64,
        rrn: &str,
    ) -> Decision {
        let r = req(kind, stan, RICH, amount, Some(rrn));
        decide_credit_back(c, &r, now, WINDOW).unwrap()
    }

    /// The reversal of the original with STAN `stan` and amount `amount`.
    fn reverse(c: &Connection, now: &LocalTime, stan: u32, amount: u64) -> Decision {
        let r = req(Kind::Reversal, stan, RICH, amount, None);
        decide_reversal(c, &r, now, WINDOW).unwrap()
    }

    /// The card's spending of the day as kept (`card_spend`, through `spent_on`), after
    /// checking that it is what the sum over `auths` says.
    fn spent(c: &Connection, card: i64, date: &str) -> i64 {
        let kept = i64::try_from(spent_on(c, card, date).unwrap()).unwrap();
        let sum: i64 = c
            .query_row(
                "SELECT COALESCE(SUM(amount - refunded), 0) FROM auths WHERE card_id = ?1 \
                 AND local_date = ?2 AND kind = 'purchase' AND state = 'approved'",
                params![card, date],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kept, sum, "card {card} on {date}");
        kept
    }

    #[test]
    fn a_card_view_reads_the_blacklist_the_balance_and_the_days_spending() {
        let reg = Registry::open_in_memory().unwrap();
        reg.add_account("A", 50_000, "test").unwrap();
        for pan in [RICH, OTHER] {
            reg.add_card(&NewCard {
                number: pan.to_owned(),
                kind: CardKind::Bank,
                account: "A".to_owned(),
                status: CardStatus::Active,
                expiry: "9912".to_owned(),
                pin_data: None,
                single_limit: None,
                daily_limit: None,
            })
            .unwrap();
        }
        reg.blacklist(OTHER, "reported").unwrap();
        let day = LocalTime::at(1_710_003_600_000, 480);
        reg.with(|c| {
            let v = card_view(c, RICH, "20240310")?.unwrap();
            assert_eq!((v.blacklisted, v.balance, v.spent), (false, 50_000, 0));
            assert_eq!(v.card.number, RICH);
            assert_eq!(purchase(c, &day, RICH, 1, 1_200).code, "00");
            let v = card_view(c, RICH, "20240310")?.unwrap();
            assert_eq!((v.blacklisted, v.balance, v.spent), (false, 48_800, 1_200));
            // Another day's spending is not this day's.
            assert_eq!(card_view(c, RICH, "20240311")?.unwrap().spent, 0);
            // An active card on the blacklist is declined 62 and nothing moves.
            let v = card_view(c, OTHER, "20240310")?.unwrap();
            assert_eq!((v.blacklisted, v.balance, v.spent), (true, 48_800, 0));
            assert_eq!(purchase(c, &day, OTHER, 2, 100).code, "62");
            assert_eq!(card_view(c, OTHER, "20240310")?.unwrap().balance, 48_800);
            assert!(card_view(c, "6212349999999999", "20240310")?.is_none());
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn card_spend_follows_purchases_refunds_voids_and_reversals() {
        let reg = Registry::open_in_memory().unwrap();
        for (pan, account) in [(RICH, "A"), (OTHER, "B")] {
            reg.add_account(account, 1_000_000, "test").unwrap();
            reg.add_card(&NewCard {
                number: pan.to_owned(),
                kind: CardKind::Bank,
                account: account.to_owned(),
                status: CardStatus::Active,
                expiry: "9912".to_owned(),
                pin_data: None,
                single_limit: None,
                daily_limit: Some(20_000),
            })
            .unwrap();
        }
        // 01:00 local (UTC+8) on 10 March 2024, and a day later.
        let day1 = LocalTime::at(1_710_003_600_000, 480);
        let day2 = LocalTime::at(1_710_003_600_000 + 86_400_000, 480);
        assert_eq!(
            (day1.yyyymmdd.as_str(), day2.yyyymmdd.as_str()),
            ("20240310", "20240311")
        );
        let (d1, d2) = ("20240310", "20240311");
        reg.with(|c| {
            let card = card_by_number(c, RICH)?.map_or(0, |k| k.id);
            let other = card_by_number(c, OTHER)?.map_or(0, |k| k.id);
            let p1 = purchase(c, &day1, RICH, 1, 10_000);
            assert_eq!(p1.code, "00");
            assert_eq!(spent(c, card, d1), 10_000);
            let p2 = purchase(c, &day1, RICH, 2, 6_000);
            assert_eq!(p2.code, "00");
            assert_eq!(spent(c, card, d1), 16_000);
            // Over the daily limit: declined, nothing counted.
            assert_eq!(purchase(c, &day1, RICH, 3, 5_000).code, "61");
            assert_eq!(spent(c, card, d1), 16_000);
            // Another card's purchases are its own.
            assert_eq!(purchase(c, &day1, OTHER, 9, 7_000).code, "00");
            assert_eq!(spent(c, other, d1), 7_000);
            // A partial refund gives room back: the same 5 000 now fits.
            let rrn1 = p1.rrn.unwrap();
            let rrn2 = p2.rrn.unwrap();
            assert_eq!(
                credit_back(c, &day1, Kind::Refund, 4, 1_500, &rrn2).code,
                "00"
            );
            assert_eq!(spent(c, card, d1), 14_500);
            assert_eq!(purchase(c, &day1, RICH, 5, 5_000).code, "00");
            assert_eq!(spent(c, card, d1), 19_500);
            // A void takes the whole purchase off, a reversal of a purchase what is left.
            assert_eq!(
                credit_back(c, &day1, Kind::Void, 6, 10_000, &rrn1).code,
                "00"
            );
            assert_eq!(spent(c, card, d1), 9_500);
            assert_eq!(reverse(c, &day1, 5, 5_000).code, "00");
            assert_eq!(spent(c, card, d1), 4_500);
            // The next day: a refund of the first day's purchase counts on the first day.
            assert_eq!(
                credit_back(c, &day2, Kind::Refund, 7, 2_000, &rrn2).code,
                "00"
            );
            assert_eq!(spent(c, card, d1), 2_500);
            assert_eq!(spent(c, card, d2), 0);
            // Reversing a refund adds it back; reversing the void restores the purchase.
            assert_eq!(reverse(c, &day2, 4, 1_500).code, "00");
            assert_eq!(spent(c, card, d1), 4_000);
            assert_eq!(reverse(c, &day2, 6, 10_000).code, "00");
            assert_eq!(spent(c, card, d1), 14_000);
            assert_eq!(purchase(c, &day2, RICH, 8, 3_000).code, "00");
            assert_eq!(spent(c, card, d2), 3_000);
            // The refunded purchase reversed: what was left of it (6 000 - 2 000) goes; the
            // reversal of its refund then changes nothing, the purchase being no more approved.
            assert_eq!(reverse(c, &day2, 2, 6_000).code, "00");
            assert_eq!(spent(c, card, d1), 10_000);
            assert_eq!(reverse(c, &day2, 7, 2_000).code, "00");
            assert_eq!(spent(c, card, d1), 10_000);
            assert_eq!(spent(c, other, d1), 7_000);
            // Every row agrees with the sum over auths, and there are no others.
            let kept = super::super::registry::card_spend_rows(c);
            let summed = super::super::registry::date_card_amounts(
                c,
                "SELECT local_date, card_id, SUM(amount - refunded) FROM auths \
                 WHERE kind = 'purchase' AND state = 'approved' GROUP BY 1, 2 ORDER BY 1, 2",
            );
            assert_eq!(summed, kept);
            assert_eq!(
                kept,
                vec![
                    (d1.to_owned(), card, 10_000),
                    (d1.to_owned(), other, 7_000),
                    (d2.to_owned(), card, 3_000),
                ]
            );
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn response_mtis() {
        assert_eq!(response_mti("0200"), "0210");
        assert_eq!(response_mti("0220"), "0230");
        assert_eq!(response_mti("0400"), "0410");
        assert_eq!(response_mti("0401"), "0410");
        assert_eq!(response_mti("0820"), "0830");
    }

    #[test]
    fn routes() {
        assert_eq!(Kind::route("0200", "000000"), Some(Kind::Purchase));
        assert_eq!(Kind::route("0200", "310000"), Some(Kind::Balance));
        assert_eq!(Kind::route("0200", "200000"), Some(Kind::Void));
        assert_eq!(Kind::route("0220", "200000"), Some(Kind::Refund));
        assert_eq!(Kind::route("0200", "600000"), Some(Kind::Load));
        assert_eq!(Kind::route("0220", "600000"), Some(Kind::LoadConfirm));
        assert_eq!(Kind::route("0401", "000000"), Some(Kind::Reversal));
        assert_eq!(Kind::route("0100", "030000"), None);
    }

    #[test]
    fn balance_field_layout() {
        assert_eq!(balance_field(123_456), "1002156C000000123456");
        assert_eq!(balance_field(-5), "1002156D000000000005");
    }
}
