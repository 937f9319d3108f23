//! One simulated POS terminal: its state (STAN, batch, session keys, pending reversal, batch
//! records), its long connection to the front end, and the transactions of `PROTOCOL.md`.
//!
//! Terminal rules it follows:
//!
//! - one request at a time on one long connection; a connection found closed before a
//!   request is reopened, and one that failed (timeout, reset, undecodable frame) is dropped
//!   so that a late answer can never be taken for the next request's;
//! - answers are matched by MTI and STAN; frames that do not match are skipped;
//! - a reversible request (purchase, void, purse load) that gets no answer within
//!   [`TerminalConfig::response_timeout`] leaves a reversal (0400, field 39 `98`, the
//!   original's STAN) in the pending-reversal slot; an answer that cannot be trusted (bad
//!   MAC, malformed) or a load the card could not complete leaves one with `06` (terminal
//!   error). Before any new transaction the reversal is sent, and resent with the same STAN,
//!   until it is answered (at most [`TerminalConfig::reversal_attempts`] sends per call;
//!   the call then returns [`Status::ReversalPending`] without sending its own request);
//! - responses to MACed requests must carry a MAC that verifies (UnionPay ECB under the
//!   MAK), except declines without field 64 (the front end cannot MAC for a terminal it
//!   does not know); an approval without a MAC is [`Status::BadResponseMac`].

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use iso8583_wire::frame::{CupsHeader, FrameConfig, Tpdu};
use iso8583_wire::tlv::{Tag, TlvBuilder, TlvReader};
use iso8583_wire::{MessageBuf, decode, specs};
use pboc_card::flow::{self, HostReply, TearOutcome};
use pboc_card::{Application, Psam};
use pboc_sam::keyexchange::{self, WorkingKeys};
use pboc_sam::pinblock::{self, Pan, Pin, PinBlockFormat};
use pboc_sam::{CardTransport, DesKey, mac};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::debug;

use super::card::Card;

/// The TPDU terminals send by default: id `60`, destination `0004`, source `0000`.
pub const DEFAULT_TPDU: Tpdu = Tpdu::new(0x0004, 0x0000);

/// The UnionPay header terminals send by default: `603100000000`.
pub const DEFAULT_HEADER: CupsHeader = match CupsHeader::new(60, 31, 0, 0, 0) {
    Some(h) => h,
    // Evaluated at compile time: every part is in range.
    None => panic!("default header out of range"),
};

/// Field 53: PIN format 0, double-length keys.
pub const SECURITY_CONTROL: &str = "2600000000000000";

/// The card key index used for purse loads.
pub const LOAD_KEY_INDEX: u8 = 0x01;

/// Everything a terminal is configured with. `Debug` shows the TMK's check value only.
#[derive(Clone, Debug)]
pub struct TerminalConfig {
    /// The front end's address, `host:port`.
    pub front: String,
    /// Terminal id (field 41), 8 characters.
    pub terminal_id: String,
    /// Merchant id (field 42), 15 characters.
    pub merchant_id: String,
    /// The clear terminal master key, as the POS's secure element holds it.
    pub tmk: DesKey,
    /// The TPDU of every request.
    pub tpdu: Tpdu,
    /// The UnionPay header of every request.
    pub header: CupsHeader,
    /// The batch number (60.2) to start with, 1 to 999999.
    pub batch: u32,
    /// The first STAN, 1 to 999999.
    pub first_stan: u32,
    /// The 6-byte terminal id purse cards see in a load when no PSAM is given (DF08).
    pub card_terminal_id: [u8; 6],
    /// Field 63 of sign-in and settlement: the operator (`01 `).
    pub operator: String,
    /// How long to wait for a TCP connection.
    pub connect_timeout: Duration,
    /// How long to wait for the answer to a request.
    pub response_timeout: Duration,
    /// How many times a pending reversal (or a load confirmation) is sent per call.
    pub reversal_attempts: u32,
    /// 60.3 of the sign-in, which chooses the working keys' layout in field 62: `001`
    /// (single-length PIK and MAK), `003` (double-length PIK) or `004` (and a TDK).
    pub sign_in_code: &'static str,
}

impl TerminalConfig {
    /// A configuration with the defaults: [`DEFAULT_TPDU`], [`DEFAULT_HEADER`], batch 1,
    /// STAN 1, the card terminal id from the terminal id's digits, operator `01 `, 5 s to
    /// connect, 30 s for an answer, 3 reversal sends per call.
    pub fn new(
        front: impl Into<String>,
        terminal_id: &str,
        merchant_id: &str,
        tmk: DesKey,
    ) -> TerminalConfig {
        TerminalConfig {
            front: front.into(),
            terminal_id: terminal_id.to_owned(),
            merchant_id: merchant_id.to_owned(),
            tmk,
            tpdu: DEFAULT_TPDU,
            header: DEFAULT_HEADER,
            batch: 1,
            first_stan: 1,
            card_terminal_id: card_terminal_id_from(terminal_id),
            operator: "01 ".to_owned(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(30),
            reversal_attempts: 3,
            sign_in_code: "003",
        }
    }
}

/// The last 12 digits of a terminal id (non-digits read as 0), zero-filled on the left, as
/// 6 BCD bytes: `10000001` -> `00 00 10 00 00 01`.
pub fn card_terminal_id_from(terminal_id: &str) -> [u8; 6] {
    let mut digits = [0u8; 12];
    let bytes = terminal_id.as_bytes();
    let take = bytes.len().min(12);
    let from = bytes.len() - take;
    for (slot, b) in digits[12 - take..].iter_mut().zip(&bytes[from..]) {
        *slot = if b.is_ascii_digit() { b - b'0' } else { 0 };
    }
    let mut out = [0u8; 6];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *o = (pair[0] << 4) | pair[1];
    }
    out
}

/// The transaction an [`Outcome`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// 0800 sign-in.
    SignIn,
    /// 0820 sign-off.
    SignOff,
    /// 0820 echo test.
    Echo,
    /// 0200 balance inquiry.
    Balance,
    /// 0200 purchase.
    Purchase,
    /// 0200 purchase void.
    Void,
    /// 0220 refund.
    Refund,
    /// 0200 purse load (with its 0220 confirmation).
    Load,
    /// 0400 reversal.
    Reversal,
    /// 0500 batch settlement.
    Settlement,
}

impl Operation {
    /// A lower-case name (`purchase`, `sign-in` ...).
    pub fn name(self) -> &'static str {
        match self {
            Operation::SignIn => "sign-in",
            Operation::SignOff => "sign-off",
            Operation::Echo => "echo",
            Operation::Balance => "balance",
            Operation::Purchase => "purchase",
            Operation::Void => "void",
            Operation::Refund => "refund",
            Operation::Load => "load",
            Operation::Reversal => "reversal",
            Operation::Settlement => "settlement",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Answered `00`, MAC verified.
    Approved,
    /// Answered with another response code (in [`Outcome::response_code`]).
    Declined,
    /// No answer within the timeout, or the connection dropped after the request was sent.
    /// For a reversible request a reversal with `98` is now pending.
    NoResponse,
    /// The answer's MAC does not verify (or an approval came without one).
    BadResponseMac,
    /// The answer is malformed or does not belong to the request (the reason).
    BadResponse(String),
    /// The front end could not be reached (nothing was sent).
    ConnectFailed(String),
    /// The request could not be written (the connection broke; nothing was answered).
    SendFailed(String),
    /// The terminal has no session keys: sign in first (nothing was sent).
    NotSignedIn,
    /// A pending reversal is still unanswered; the operation's own request was not sent.
    ReversalPending,
    /// The purse card or the PSAM failed (the step and the error).
    CardError(String),
    /// The operation's input was refused before anything was sent (the reason).
    Rejected(String),
}

impl Status {
    /// A short upper-case label for reports (`APPROVED`, `NO_RESPONSE`, `BAD_MAC` ...).
    pub fn label(&self) -> &'static str {
        match self {
            Status::Approved => "APPROVED",
            Status::Declined => "DECLINED",
            Status::NoResponse => "NO_RESPONSE",
            Status::BadResponseMac => "BAD_MAC",
            Status::BadResponse(_) => "BAD_RESPONSE",
            Status::ConnectFailed(_) => "CONNECT_FAILED",
            Status::SendFailed(_) => "SEND_FAILED",
            Status::NotSignedIn => "NOT_SIGNED_IN",
            Status::ReversalPending => "REVERSAL_PENDING",
            Status::CardError(_) => "CARD_ERROR",
            Status::Rejected(_) => "REJECTED",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::BadResponse(m)
            | Status::ConnectFailed(m)
            | Status::SendFailed(m)
            | Status::CardError(m)
            | Status::Rejected(m) => write!(f, "{} ({m})", self.label()),
            _ => f.write_str(self.label()),
        }
    }
}

/// The kind of an approved transaction kept in the terminal's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A purchase (a debit in the settlement totals).
    Purchase,
    /// A purchase void (a credit).
    Void,
    /// A refund (a credit).
    Refund,
    /// A purse load (counted apart).
    Load,
}

/// An approved transaction of the current batch: what settlement totals are computed from
/// and what a void or refund refers to. `Debug` masks the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    /// What it was.
    pub kind: RecordKind,
    /// Its STAN.
    pub stan: u32,
    /// Its batch number.
    pub batch: u32,
    /// Amount in fen.
    pub amount: u64,
    /// RRN (field 37) from the answer.
    pub rrn: String,
    /// Authorization code (field 38) from the answer, empty if none.
    pub auth_code: String,
    /// The host's date `MMDD` (field 13) from the answer, `0000` if none.
    pub date: String,
    /// The card (purchases, voids, refunds).
    pub card: Option<Card>,
    /// For a purchase: whether it was voided since.
    pub voided: bool,
}

/// Settlement's result flags from field 48 of the 0510.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettlementResult {
    /// Debits and credits agree with the front end's journal (result digit `1`).
    pub balanced: bool,
    /// Purse loads agree (the second result digit), when the answer has one.
    pub loads_balanced: Option<bool>,
    /// The totals sent (62 digits).
    pub totals: BatchTotals,
}

/// The batch totals of settlement field 48 (PROTOCOL.md): debits are purchases, credits
/// are refunds and voids, loads count apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchTotals {
    /// Number of purchases.
    pub debit_count: u64,
    /// Sum of purchases, fen.
    pub debit_amount: u64,
    /// Number of refunds and voids.
    pub credit_count: u64,
    /// Sum of refunds and voids, fen.
    pub credit_amount: u64,
    /// Number of purse loads.
    pub load_count: u64,
    /// Sum of purse loads, fen.
    pub load_amount: u64,
}

impl BatchTotals {
    /// Totals of `records`.
    pub fn of(records: &[TxnRecord]) -> BatchTotals {
        let mut t = BatchTotals::default();
        for r in records {
            let (count, amount) = match r.kind {
                RecordKind::Purchase => (&mut t.debit_count, &mut t.debit_amount),
                RecordKind::Void | RecordKind::Refund => {
                    (&mut t.credit_count, &mut t.credit_amount)
                }
                RecordKind::Load => (&mut t.load_count, &mut t.load_amount),
            };
            *count += 1;
            *amount += r.amount;
        }
        t
    }

    /// Field 48 of the 0500 request, 62 digits: `debit count n3 | debit amount n12 | credit
    /// count n3 | credit amount n12 | 0`, then `load count n3 | load amount n12 | 000 |
    /// 000000000000 | 0`. Counts above 999 and amounts above 12 digits keep their low
    /// digits.
    pub fn field48(&self) -> String {
        let c = |n: u64| n % 1_000;
        let a = |n: u64| n % 1_000_000_000_000;
        format!(
            "{:03}{:012}{:03}{:012}0{:03}{:012}{:03}{:012}0",
            c(self.debit_count),
            a(self.debit_amount),
            c(self.credit_count),
            a(self.credit_amount),
            c(self.load_count),
            a(self.load_amount),
            0,
            0
        )
    }
}

/// What one operation produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The operation.
    pub operation: Operation,
    /// How it ended.
    pub status: Status,
    /// The STAN of its request (0 if none was sent).
    pub stan: u32,
    /// Field 39 of the answer.
    pub response_code: Option<String>,
    /// Field 37 of the answer.
    pub rrn: Option<String>,
    /// Field 38 of the answer.
    pub auth_code: Option<String>,
    /// The balance in fen: field 54 of a balance inquiry, the card's balance after a load.
    pub balance: Option<i64>,
    /// The purse card's TAC after a load.
    pub tac: Option<[u8; 4]>,
    /// From the first byte sent to the answer checked (reversals sent first included).
    pub latency: Duration,
    /// The batch record an approval added (a purchase to void or refund later).
    pub record: Option<TxnRecord>,
    /// Settlement's result flags.
    pub settlement: Option<SettlementResult>,
    /// A load confirmation's response code (`None` if it was not answered).
    pub confirmation_code: Option<String>,
    /// How many reversal sends this operation made before its own request.
    pub reversals_sent: u32,
}

impl Outcome {
    fn new(operation: Operation, status: Status) -> Outcome {
        Outcome {
            operation,
            status,
            stan: 0,
            response_code: None,
            rrn: None,
            auth_code: None,
            balance: None,
            tac: None,
            latency: Duration::ZERO,
            record: None,
            settlement: None,
            confirmation_code: None,
            reversals_sent: 0,
        }
    }

    /// Whether the operation was approved.
    pub fn is_approved(&self) -> bool {
        self.status == Status::Approved
    }

    /// The key a report counts a non-approved outcome under: the response code when there
    /// is one, the status label otherwise.
    pub fn report_key(&self) -> String {
        match (&self.status, &self.response_code) {
            (Status::Declined, Some(code)) => code.clone(),
            (status, _) => status.label().to_owned(),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<10} stan {:06} {}",
            self.operation.name(),
            self.stan,
            self.status
        )?;
        if let Some(code) = &self.response_code {
            write!(f, " code {code}")?;
        }
        if let Some(rrn) = &self.rrn {
            write!(f, " rrn {rrn}")?;
        }
        if let Some(auth) = &self.auth_code {
            write!(f, " auth {auth}")?;
        }
        if let Some(balance) = self.balance {
            write!(f, " balance {balance}")?;
        }
        if let Some(tac) = self.tac {
            write!(f, " tac {}", hex::encode_upper(tac))?;
        }
        if let Some(code) = &self.confirmation_code {
            write!(f, " confirmed {code}")?;
        }
        if let Some(s) = &self.settlement {
            write!(f, " balanced {}", s.balanced)?;
        }
        if self.reversals_sent > 0 {
            write!(f, " (after {} reversal sends)", self.reversals_sent)?;
        }
        write!(f, " {:.1} ms", self.latency.as_secs_f64() * 1000.0)
    }
}

/// The pending-reversal slot's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingReversal {
    /// The operation reversed.
    pub operation: Operation,
    /// The original's STAN (also the reversal's).
    pub stan: u32,
    /// The original's amount in fen.
    pub amount: u64,
    /// Field 39 of the reversal: `98` (no answer) or `06` (terminal error).
    pub reason: &'static str,
    /// How many times it was sent so far.
    pub sends: u32,
    /// The 0400 without its MAC (it is MACed with the MAK current at each send).
    message: MessageBuf<'static>,
}

/// Why an exchange brought no usable answer.
enum Failure {
    Encode(String),
    Connect(String),
    Send(String),
    NoResponse,
    Malformed(String),
}

impl Failure {
    fn status(self) -> Status {
        match self {
            Failure::Encode(m) => Status::Rejected(m),
            Failure::Connect(m) => Status::ConnectFailed(m),
            Failure::Send(m) => Status::SendFailed(m),
            Failure::NoResponse => Status::NoResponse,
            Failure::Malformed(m) => Status::BadResponse(m),
        }
    }
}

/// The fields of a checked answer.
#[derive(Default)]
struct Reply {
    code: String,
    rrn: Option<String>,
    auth: Option<String>,
    date: Option<String>,
    f48: Option<String>,
    f54: Option<String>,
    f55: Option<Vec<u8>>,
    f62: Option<Vec<u8>>,
}

/// One long connection: the stream and the bytes read but not yet framed.
struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

enum RecvError {
    Timeout,
    Closed,
    Frame(String),
}

impl Connection {
    async fn open(addr: &str, timeout: Duration) -> Result<Connection, String> {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Requests are small and answered one at a time: do not delay them.
                let _ = stream.set_nodelay(true);
                Ok(Connection {
                    stream,
                    buf: Vec::new(),
                })
            }
            Ok(Err(e)) => Err(format!("{addr}: {e}")),
            Err(_) => Err(format!("{addr}: no connection within {timeout:?}")),
        }
    }

    /// Whether the peer has not closed the connection (bytes waiting are kept).
    fn is_alive(&mut self) -> bool {
        let mut scratch = [0u8; 512];
        loop {
            match self.stream.try_read(&mut scratch) {
                Ok(0) => return false,
                Ok(n) => self
                    .buf
                    .extend_from_slice(scratch.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
    }

    /// The next frame's body, by `deadline`.
    async fn recv(&mut self, deadline: Instant) -> Result<Vec<u8>, RecvError> {
        let config = FrameConfig::cups_pos();
        loop {
            let found = match config.decode(&self.buf) {
                Ok(Some((frame, used))) => Some((frame.body.to_vec(), used)),
                Ok(None) => None,
                Err(e) => return Err(RecvError::Frame(e.to_string())),
            };
            if let Some((body, used)) = found {
                self.buf.drain(..used.min(self.buf.len()));
                return Ok(body);
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(RecvError::Timeout),
                Ok(Ok(0)) | Ok(Err(_)) => return Err(RecvError::Closed),
                Ok(Ok(n)) => self
                    .buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        }
    }
}

/// A new message with a constant MTI.
fn message(mti: &str) -> MessageBuf<'static> {
    // Every MTI passed here is a four-digit constant, which `new` accepts.
    MessageBuf::new(mti).unwrap_or_default()
}

/// Today's date `MMDD` in UTC (the terminal's clock, for field 61 of reversals).
fn utc_mmdd(now: SystemTime) -> String {
    let days = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{month:02}{day:02}")
}

/// Reads the balance from field 54: the UnionPay layout (`account type n2 | amount type n2
/// | currency n3 | C/D | amount n12`, possibly repeated: the first entry is used) or plain
/// digits.
fn parse_balance(f54: &str) -> Option<i64> {
    if f54.len() >= 20 {
        let sign = f54.get(7..8)?;
        let amount: i64 = f54.get(8..20)?.parse().ok()?;
        return match sign {
            "C" => Some(amount),
            "D" => Some(-amount),
            _ => None,
        };
    }
    if !f54.is_empty() && f54.bytes().all(|b| b.is_ascii_digit()) {
        return f54.parse().ok();
    }
    None
}

/// The private two-byte tag `DFnn` of the purse-load field 55.
const fn df(n: u8) -> Tag {
    match Tag::new(0xDF00 | n as u32) {
        Some(t) => t,
        // Only evaluated in the constants below, at compile time: `DF` announces a second
        // tag byte and `n` < 0x80 ends it.
        None => panic!("not a two-byte tag"),
    }
}

const DF01: Tag = df(0x01);
const DF02: Tag = df(0x02);
const DF03: Tag = df(0x03);
const DF04: Tag = df(0x04);
const DF05: Tag = df(0x05);
const DF06: Tag = df(0x06);
const DF07: Tag = df(0x07);
const DF08: Tag = df(0x08);
const DF09: Tag = df(0x09);
const DF10: Tag = df(0x10);
const DF11: Tag = df(0x11);
const DF12: Tag = df(0x12);
const DF13: Tag = df(0x13);

/// The value of a top-level tag in field 55 (constructed-looking `DFxx` tags are not
/// entered: their values are opaque).
fn tlv_value(data: &[u8], wanted: Tag) -> Option<Vec<u8>> {
    for item in TlvReader::new(data) {
        let tlv = item.ok()?;
        if tlv.tag() == wanted {
            return Some(tlv.value().to_vec());
        }
    }
    None
}

/// A simulated POS terminal. `Debug` shows ids, counters and key check values only.
pub struct Terminal {
    config: TerminalConfig,
    next_stan: u32,
    batch: u32,
    keys: Option<WorkingKeys>,
    reversal: Option<PendingReversal>,
    records: Vec<TxnRecord>,
    conn: Option<Connection>,
    corrupt_next_mac: bool,
}

impl fmt::Debug for Terminal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Terminal")
            .field("terminal_id", &self.config.terminal_id)
            .field("merchant_id", &self.config.merchant_id)
            .field("next_stan", &self.next_stan)
            .field("batch", &self.batch)
            .field("keys", &self.keys)
            .field("pending_reversal", &self.reversal)
            .field("records", &self.records.len())
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl Terminal {
    /// A terminal that has not connected or signed in yet.
    pub fn new(config: TerminalConfig) -> Terminal {
        let next_stan = config.first_stan.clamp(1, 999_999);
        let batch = config.batch.clamp(1, 999_999);
        Terminal {
            config,
            next_stan,
            batch,
            keys: None,
            reversal: None,
            records: Vec::new(),
            conn: None,
            corrupt_next_mac: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TerminalConfig {
        &self.config
    }

    /// The terminal id.
    pub fn terminal_id(&self) -> &str {
        &self.config.terminal_id
    }

    /// Fault injection for tests and the demo: the next request sent with a MAC has the
    /// last bit of its field 64 flipped, as a line error or a wrong key would leave it (the
    /// front end answers `A0`).
    pub fn corrupt_next_mac(&mut self) {
        self.corrupt_next_mac = true;
    }

    /// The STAN the next request will get.
    pub fn next_stan(&self) -> u32 {
        self.next_stan
    }

    /// The current batch number.
    pub fn batch(&self) -> u32 {
        self.batch
    }

    /// Whether the terminal holds session keys.
    pub fn is_signed_in(&self) -> bool {
        self.keys.is_some()
    }

    /// The session keys from the last sign-in.
    pub fn session_keys(&self) -> Option<&WorkingKeys> {
        self.keys.as_ref()
    }

    /// The reversal waiting to be sent, if any.
    pub fn pending_reversal(&self) -> Option<&PendingReversal> {
        self.reversal.as_ref()
    }

    /// The approved transactions of the current batch.
    pub fn records(&self) -> &[TxnRecord] {
        &self.records
    }

    /// Closes the connection (the next request opens a new one).
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    fn take_stan(&mut self) -> u32 {
        let stan = self.next_stan;
        self.next_stan = if stan >= 999_999 { 1 } else { stan + 1 };
        stan
    }

    fn field60(&self, message_type: &str, network_code: &str) -> String {
        format!("{message_type}{:06}{network_code}", self.batch)
    }

    /// A request with 11, 41 and 42.
    fn request(&self, mti: &str, stan: u32) -> MessageBuf<'static> {
        let mut m = message(mti);
        m.set(11, format!("{stan:06}"))
            .set(41, self.config.terminal_id.clone())
            .set(42, self.config.merchant_id.clone());
        m
    }

    /// Encodes `m`, with the UnionPay ECB MAC under `mak` in field 64 when given.
    fn encode(m: &MessageBuf<'static>, mak: Option<&DesKey>) -> Result<Vec<u8>, Failure> {
        let spec = specs::cups_pos();
        let Some(mak) = mak else {
            return m.to_vec(spec).map_err(|e| Failure::Encode(e.to_string()));
        };
        let mut m = m.clone();
        m.set(64, vec![0u8; 8]);
        let mut body = m.to_vec(spec).map_err(|e| Failure::Encode(e.to_string()))?;
        let n = body.len();
        let computed = mac::pos_ecb(mak, body.get(..n.saturating_sub(8)).unwrap_or_default());
        if let Some(slot) = body.get_mut(n.saturating_sub(8)..) {
            slot.copy_from_slice(&computed);
        }
        Ok(body)
    }

    /// Sends one request body and waits for the answer with `mti` and `stan`.
    async fn round_trip(&mut self, body: &[u8], mti: &str, stan: u32) -> Result<Vec<u8>, Failure> {
        let mut frame = Vec::with_capacity(body.len() + 13);
        FrameConfig::cups_pos()
            .encode(
                Some(self.config.tpdu),
                Some(self.config.header),
                body,
                &mut frame,
            )
            .map_err(|e| Failure::Encode(e.to_string()))?;
        let alive = self.conn.as_mut().is_some_and(Connection::is_alive);
        if !alive {
            self.conn = None;
            let conn = Connection::open(&self.config.front, self.config.connect_timeout)
                .await
                .map_err(Failure::Connect)?;
            self.conn = Some(conn);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(Failure::Connect("no connection".to_owned()));
        };
        if let Err(e) = conn.stream.write_all(&frame).await {
            self.conn = None;
            return Err(Failure::Send(e.to_string()));
        }
        let deadline = Instant::now() + self.config.response_timeout;
        let spec = specs::cups_pos();
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Err(Failure::NoResponse);
            };
            let reply = match conn.recv(deadline).await {
                Ok(reply) => reply,
                Err(RecvError::Timeout | RecvError::Closed) => {
                    self.conn = None;
                    return Err(Failure::NoResponse);
                }
                Err(RecvError::Frame(e)) => {
                    self.conn = None;
                    return Err(Failure::Malformed(format!("frame: {e}")));
                }
            };
            let msg = match decode(spec, &reply) {
                Ok(msg) => msg,
                Err(e) => return Err(Failure::Malformed(e.to_string())),
            };
            let same_stan = msg
                .field(11)
                .and_then(|f| f.to_u64().ok())
                .is_some_and(|s| s == u64::from(stan));
            if msg.mti() == mti && same_stan {
                return Ok(reply);
            }
            debug!(terminal = %self.config.terminal_id, stan, mti = msg.mti(), "skipped an answer to another request");
        }
    }

    /// Checks an answer: structure, terminal id, field 39 and (when the request had one)
    /// the MAC.
    fn check(&self, body: &[u8], mak: Option<&DesKey>) -> Result<Reply, Status> {
        let spec = specs::cups_pos();
        let msg = decode(spec, body).map_err(|e| Status::BadResponse(e.to_string()))?;
        msg.validate()
            .map_err(|e| Status::BadResponse(e.to_string()))?;
        let text = |n: u16| {
            msg.field(n)
                .and_then(|f| f.as_str().ok())
                .map(|s| s.trim_end().to_owned())
        };
        let digits = |n: u16| msg.field(n).map(|f| f.to_string());
        if let Some(tid) = text(41)
            && tid != self.config.terminal_id
        {
            return Err(Status::BadResponse(format!(
                "field 41 is {tid}, not this terminal"
            )));
        }
        let code = text(39).ok_or_else(|| Status::BadResponse("no field 39".to_owned()))?;
        if let Some(mak) = mak {
            if msg.has(64) {
                let received = msg
                    .field(64)
                    .and_then(|f| f.binary().ok())
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
                let mab = body.get(..body.len().saturating_sub(8)).unwrap_or_default();
                if mac::verify("field 64", &received, &mac::pos_ecb(mak, mab)).is_err() {
                    return Err(Status::BadResponseMac);
                }
            } else if code == "00" {
                return Err(Status::BadResponseMac);
            }
        }
        let binary = |n: u16| {
            msg.field(n)
                .and_then(|f| f.binary().ok())
                .map(|b| b.to_vec())
        };
        Ok(Reply {
            rrn: text(37),
            auth: text(38),
            date: digits(13),
            f48: digits(48),
            f54: text(54),
            f55: binary(55),
            f62: binary(62),
            code,
        })
    }

    fn mak(&self) -> Option<DesKey> {
        self.keys.as_ref().map(|k| k.mak.clone())
    }

    /// Sends a request and checks its answer; on no answer (or an untrusted one) of a
    /// reversible request, fills the reversal slot. `outcome.stan` and `latency` are set.
    async fn exchange(
        &mut self,
        outcome: &mut Outcome,
        m: &MessageBuf<'static>,
        response_mti: &str,
        with_mac: bool,
        reversible: bool,
        started: Instant,
    ) -> Option<Reply> {
        let stan = m
            .get(11)
            .and_then(|v| match v {
                iso8583_wire::Value::Text(t) => t.parse().ok(),
                _ => None,
            })
            .unwrap_or(0);
        outcome.stan = stan;
        let mak = if with_mac {
            match self.mak() {
                Some(k) => Some(k),
                None => {
                    outcome.status = Status::NotSignedIn;
                    return None;
                }
            }
        } else {
            None
        };
        let result = match Self::encode(m, mak.as_ref()) {
            Ok(mut body) => {
                if mak.is_some()
                    && std::mem::take(&mut self.corrupt_next_mac)
                    && let Some(last) = body.last_mut()
                {
                    *last ^= 0x01;
                }
                self.round_trip(&body, response_mti, stan).await
            }
            Err(e) => Err(e),
        };
        outcome.latency = started.elapsed();
        let checked = match result {
            Ok(body) => self.check(&body, mak.as_ref()),
            Err(f) => Err(f.status()),
        };
        match checked {
            Ok(reply) => {
                outcome.status = if reply.code == "00" {
                    Status::Approved
                } else {
                    Status::Declined
                };
                outcome.response_code = Some(reply.code.clone());
                outcome.rrn.clone_from(&reply.rrn);
                outcome.auth_code.clone_from(&reply.auth);
                Some(reply)
            }
            Err(status) => {
                if reversible {
                    match status {
                        Status::NoResponse => self.queue_reversal(outcome.operation, m, "98"),
                        Status::BadResponseMac | Status::BadResponse(_) => {
                            self.queue_reversal(outcome.operation, m, "06");
                        }
                        _ => {}
                    }
                }
                outcome.status = status;
                None
            }
        }
    }

    /// Fills the reversal slot with the reversal of `original`.
    fn queue_reversal(
        &mut self,
        operation: Operation,
        original: &MessageBuf<'static>,
        reason: &'static str,
    ) {
        let mut r = message("0400");
        for n in [2u16, 3, 4, 11, 14, 22, 25, 41, 42, 49, 60] {
            if let Some(v) = original.get(n) {
                r.set(n, v.clone());
            }
        }
        let text = |n: u16| match original.get(n) {
            Some(iso8583_wire::Value::Text(t)) => t.to_string(),
            _ => String::new(),
        };
        let stan: u32 = text(11).parse().unwrap_or(0);
        let amount: u64 = text(4).parse().unwrap_or(0);
        let batch = text(60).get(2..8).unwrap_or("000000").to_owned();
        r.set(39, reason).set(
            61,
            format!("{batch}{stan:06}{}", utc_mmdd(SystemTime::now())),
        );
        debug!(terminal = %self.config.terminal_id, stan, reason, "reversal pending");
        self.reversal = Some(PendingReversal {
            operation,
            stan,
            amount,
            reason,
            sends: 0,
            message: r,
        });
    }

    /// Sends the pending reversal until it is answered (at most
    /// [`TerminalConfig::reversal_attempts`] sends). Returns the number of sends, or the
    /// status that stops the caller.
    async fn flush_reversal(&mut self) -> Result<u32, (u32, Status)> {
        let mut sent = 0u32;
        while let Some(pending) = &self.reversal {
            if sent >= self.config.reversal_attempts {
                return Err((sent, Status::ReversalPending));
            }
            let Some(mak) = self.mak() else {
                return Err((sent, Status::NotSignedIn));
            };
            let stan = pending.stan;
            let body = match Self::encode(&pending.message, Some(&mak)) {
                Ok(body) => body,
                Err(f) => return Err((sent, f.status())),
            };
            sent += 1;
            if let Some(p) = self.reversal.as_mut() {
                p.sends += 1;
            }
            match self.round_trip(&body, "0410", stan).await {
                Ok(answer) => match self.check(&answer, Some(&mak)) {
                    Ok(reply) if matches!(reply.code.as_str(), "97" | "99" | "A0") => {
                        // Not processed (the front end wants a sign-in first): still pending.
                        return Err((sent, Status::ReversalPending));
                    }
                    Ok(_) => {
                        debug!(terminal = %self.config.terminal_id, stan, "reversal answered");
                        self.reversal = None;
                    }
                    Err(_) => continue,
                },
                Err(Failure::Connect(m)) => return Err((sent, Status::ConnectFailed(m))),
                Err(_) => continue,
            }
        }
        Ok(sent)
    }

    /// Prepares a financial operation: flushes the pending reversal and checks for keys.
    /// `Err` is the outcome to return at once.
    async fn prepare(&mut self, operation: Operation) -> Result<(Outcome, Instant), Outcome> {
        let started = Instant::now();
        let mut outcome = Outcome::new(operation, Status::NotSignedIn);
        match self.flush_reversal().await {
            Ok(sent) => outcome.reversals_sent = sent,
            Err((sent, status)) => {
                outcome.reversals_sent = sent;
                outcome.status = status;
                outcome.latency = started.elapsed();
                return Err(outcome);
            }
        }
        if self.keys.is_none() {
            outcome.latency = started.elapsed();
            return Err(outcome);
        }
        Ok((outcome, started))
    }

    /// Sign-in (0800, 60.3 = [`TerminalConfig::sign_in_code`]): on `00`, field 62 is
    /// decrypted under the TMK, the KCVs are checked, the layout must be the one asked for
    /// and the PIK, MAK (and TDK) become the session keys.
    pub async fn sign_in(&mut self) -> Outcome {
        let started = Instant::now();
        let mut outcome = Outcome::new(Operation::SignIn, Status::NoResponse);
        let stan = self.take_stan();
        let mut m = self.request("0800", stan);
        m.set(60, self.field60("00", self.config.sign_in_code))
            .set(63, self.config.operator.clone());
        let Some(reply) = self
            .exchange(&mut outcome, &m, "0810", false, false, started)
            .await
        else {
            return outcome;
        };
        if reply.code != "00" {
            return outcome;
        }
        let Some(f62) = reply.f62 else {
            outcome.status = Status::BadResponse("sign-in approved without field 62".to_owned());
            return outcome;
        };
        let (pik_len, tdk) = match self.config.sign_in_code {
            "001" => (8, false),
            "004" => (16, true),
            _ => (16, false),
        };
        match keyexchange::parse_field62(&self.config.tmk, &f62) {
            Ok(keys) if keys.pik.as_bytes().len() == pik_len && keys.tdk.is_some() == tdk => {
                self.keys = Some(keys);
            }
            Ok(_) => {
                outcome.status = Status::BadResponse(format!(
                    "field 62: not the key layout of 60.3 = {}",
                    self.config.sign_in_code
                ));
            }
            Err(e) => outcome.status = Status::BadResponse(e.to_string()),
        }
        outcome
    }

    /// Sign-off (0820, 60.3 = `002`): on `00` the session keys are forgotten.
    pub async fn sign_off(&mut self) -> Outcome {
        let started = Instant::now();
        let mut outcome = Outcome::new(Operation::SignOff, Status::NoResponse);
        let stan = self.take_stan();
        let mut m = self.request("0820", stan);
        m.set(60, self.field60("00", "002"));
        if let Some(reply) = self
            .exchange(&mut outcome, &m, "0830", false, false, started)
            .await
            && reply.code == "00"
        {
            self.keys = None;
        }
        outcome
    }

    /// Echo test (0820, 60.3 = `301`).
    pub async fn echo(&mut self) -> Outcome {
        let started = Instant::now();
        let mut outcome = Outcome::new(Operation::Echo, Status::NoResponse);
        let stan = self.take_stan();
        let mut m = self.request("0820", stan);
        m.set(60, self.field60("00", "301"));
        let _ = self
            .exchange(&mut outcome, &m, "0830", false, false, started)
            .await;
        outcome
    }

    /// The PIN block of `pin` for `card` under the PIK.
    fn pin_block(&self, card: &Card, pin: &str) -> Result<[u8; 8], Status> {
        let keys = self.keys.as_ref().ok_or(Status::NotSignedIn)?;
        let pin = Pin::new(pin).map_err(|e| Status::Rejected(format!("PIN: {e}")))?;
        let pan = Pan::new(card.pan()).map_err(|e| Status::Rejected(format!("PAN: {e}")))?;
        let clear = pinblock::encode(PinBlockFormat::Iso0, &pin, &pan, &[0u8; 8])
            .map_err(|e| Status::Rejected(format!("PIN block: {e}")))?;
        Ok(pinblock::encrypt_block(&keys.pik, &clear))
    }

    /// The card fields of a request: 2, 14 (unless `with_expiry` is false), 22, 25, 35,
    /// and with a PIN 26, 52, 53.
    fn card_fields(
        &self,
        m: &mut MessageBuf<'static>,
        card: &Card,
        pin_block: Option<[u8; 8]>,
        with_expiry: bool,
    ) {
        m.set(2, card.pan().to_owned());
        if with_expiry {
            m.set(14, card.expiry().to_owned());
        }
        m.set(22, if pin_block.is_some() { "021" } else { "022" })
            .set(25, "00")
            .set(35, card.track2().to_owned());
        if let Some(block) = pin_block {
            m.set(26, "12")
                .set(52, block.to_vec())
                .set(53, SECURITY_CONTROL);
        }
    }

    /// Balance inquiry (0200, 310000, 60.1 `01`) with the card's PIN; the balance from
    /// field 54.
    pub async fn balance(&mut self, card: &Card, pin: &str) -> Outcome {
        let (mut outcome, started) = match self.prepare(Operation::Balance).await {
            Ok(x) => x,
            Err(o) => return o,
        };
        let block = match self.pin_block(card, pin) {
            Ok(b) => b,
            Err(status) => {
                outcome.status = status;
                return outcome;
            }
        };
        let stan = self.take_stan();
        let mut m = self.request("0200", stan);
        m.set(3, "310000").set(49, "156");
        self.card_fields(&mut m, card, Some(block), false);
        m.set(60, self.field60("01", ""));
        if let Some(reply) = self
            .exchange(&mut outcome, &m, "0210", true, false, started)
            .await
        {
            outcome.balance = reply.f54.as_deref().and_then(parse_balance);
        }
        outcome
    }

    fn record(
        &mut self,
        kind: RecordKind,
        stan: u32,
        amount: u64,
        reply: &Reply,
        card: Option<Card>,
    ) -> TxnRecord {
        let record = TxnRecord {
            kind,
            stan,
            batch: self.batch,
            amount,
            rrn: reply.rrn.clone().unwrap_or_default(),
            auth_code: reply.auth.clone().unwrap_or_default(),
            date: reply.date.clone().unwrap_or_else(|| "0000".to_owned()),
            card,
            voided: false,
        };
        self.records.push(record.clone());
        record
    }

    /// Purchase (0200, 000000, 60.1 `22`) of `amount` fen with the card's PIN: field 22
    /// `021`, 52 the format-0 PIN block under the PIK, 53 [`SECURITY_CONTROL`], 64 the MAC.
    /// An approval adds a [`TxnRecord`] to the batch (in [`Outcome::record`]).
    pub async fn purchase(&mut self, card: &Card, amount: u64, pin: &str) -> Outcome {
        let (mut outcome, started) = match self.prepare(Operation::Purchase).await {
            Ok(x) => x,
            Err(o) => return o,
        };
        if amount == 0 || amount > 999_999_999_999 {
            outcome.status = Status::Rejected("amount: 1 to 999999999999 fen".to_owned());
            return outcome;
        }
        let block = match self.pin_block(card, pin) {
            Ok(b) => b,
            Err(status) => {
                outcome.status = status;
                return outcome;
            }
        };
        let stan = self.take_stan();
        let mut m = self.request("0200", stan);
        m.set(3, "000000")
            .set(4, format!("{amount:012}"))
            .set(49, "156");
        self.card_fields(&mut m, card, Some(block), true);
        m.set(60, self.field60("22", ""));
        if let Some(reply) = self
            .exchange(&mut outcome, &m, "0210", true, true, started)
            .await
            && outcome.is_approved()
        {
            let record = self.record(
                RecordKind::Purchase,
                stan,
                amount,
                &reply,
                Some(card.clone()),
            );
            outcome.record = Some(record);
        }
        outcome
    }

    /// The request of a void or refund of `original`.
    fn refer(
        &self,
        mti: &str,
        stan: u32,
        original: &TxnRecord,
        card: &Card,
        amount: u64,
        message_type: &str,
    ) -> MessageBuf<'static> {
        let mut m = self.request(mti, stan);
        m.set(3, "200000")
            .set(4, format!("{amount:012}"))
            .set(37, original.rrn.clone())
            .set(49, "156")
            .set(
                61,
                format!("{:06}{:06}{}", original.batch, original.stan, original.date),
            );
        self.card_fields(&mut m, card, None, true);
        m.set(60, self.field60(message_type, ""));
        m
    }

    fn original_purchase(original: &TxnRecord) -> Result<Card, Status> {
        match (&original.kind, &original.card) {
            (RecordKind::Purchase, Some(card)) => Ok(card.clone()),
            _ => Err(Status::Rejected(
                "the original is not a purchase with card data".to_owned(),
            )),
        }
    }

    /// Purchase void (0200, 200000, 60.1 `23`) of an approved purchase: its amount, 37 its
    /// RRN, 61 its batch, STAN and date; no PIN (field 22 `022`). An approval marks the
    /// purchase voided and adds a void record.
    pub async fn void(&mut self, original: &TxnRecord) -> Outcome {
        let (mut outcome, started) = match self.prepare(Operation::Void).await {
            Ok(x) => x,
            Err(o) => return o,
        };
        let card = match Self::original_purchase(original) {
            Ok(c) => c,
            Err(status) => {
                outcome.status = status;
                return outcome;
            }
        };
        let stan = self.take_stan();
        let m = self.refer("0200", stan, original, &card, original.amount, "23");
        if let Some(reply) = self
            .exchange(&mut outcome, &m, "0210", true, true, started)
            .await
            && outcome.is_approved()
        {
            for r in &mut self.records {
                if r.kind == RecordKind::Purchase
                    && r.stan == original.stan
                    && r.batch == original.batch
                {
                    r.voided = true;
                }
            }
            let record = self.record(RecordKind::Void, stan, original.amount, &reply, Some(card));
            outcome.record = Some(record);
        }
        outcome
    }

    /// Refund (0220, 200000, 60.1 `25`) of `amount` fen (at most the original's) of a
    /// purchase, as a void without PIN. A refund is not reversible: an unanswered one is
    /// reported as [`Status::NoResponse`] and left to the operator.
    pub async fn refund(&mut self, original: &TxnRecord, amount: u64) -> Outcome {
        let (mut outcome, started) = match self.prepare(Operation::Refund).await {
            Ok(x) => x,
            Err(o) => return o,
        };
        let card = match Self::original_purchase(original) {
            Ok(c) => c,
            Err(status) => {
                outcome.status = status;
                return outcome;
            }
        };
        if amount == 0 || amount > original.amount {
            outcome.status = Status::Rejected(format!(
                "refund amount: 1 to {} fen (the original's)",
                original.amount
            ));
            return outcome;
        }
        let stan = self.take_stan();
        let m = self.refer("0220", stan, original, &card, amount, "25");
        if let Some(reply) = self
            .exchange(&mut outcome, &m, "0230", true, false, started)
            .await
            && outcome.is_approved()
        {
            let record = self.record(RecordKind::Refund, stan, amount, &reply, Some(card));
            outcome.record = Some(record);
        }
        outcome
    }

    /// Purse load (PROTOCOL.md) of `amount` fen into the EP of the card behind `card` (a
    /// `MemoryTransport` over a `VirtualCard`, or a reader): INITIALIZE FOR LOAD -> 0200
    /// (600000, 60.1 `48`, field 55 DF01..DF09) -> MAC2, date and time from the answer's
    /// field 55 -> CREDIT FOR LOAD -> TAC -> load confirmation 0220 (60.1 `49`, DF13 the
    /// TAC, 61 the load's batch, STAN, date), sent up to
    /// [`TerminalConfig::reversal_attempts`] times.
    ///
    /// The terminal id the card sees (DF08) is the PSAM's when one is given, otherwise
    /// [`TerminalConfig::card_terminal_id`]. If the host approves but the card cannot be
    /// credited (no MAC2, MAC2 refused, no proof after a tear), the load is reversed with
    /// `06`. [`Outcome::balance`] is the card's balance after the load, [`Outcome::tac`]
    /// its TAC, [`Outcome::confirmation_code`] the confirmation's answer.
    pub async fn load(
        &mut self,
        card: &mut dyn CardTransport,
        psam: Option<&mut (dyn Psam + Send)>,
        amount: u32,
    ) -> Outcome {
        let (mut outcome, started) = match self.prepare(Operation::Load).await {
            Ok(x) => x,
            Err(o) => return o,
        };
        if amount == 0 {
            outcome.status = Status::Rejected("amount: at least 1 fen".to_owned());
            return outcome;
        }
        let terminal = match psam {
            Some(p) => match p.terminal_id() {
                Ok(id) => id,
                Err(e) => {
                    outcome.status = Status::CardError(e.to_string());
                    return outcome;
                }
            },
            None => self.config.card_terminal_id,
        };
        let serial = match flow::read_application_info(card) {
            Ok(info) => info.serial,
            Err(e) => {
                outcome.status = Status::CardError(e.to_string());
                return outcome;
            }
        };
        let serial_digits = hex::encode_upper(serial);
        if !serial_digits.bytes().all(|b| b.is_ascii_digit()) {
            outcome.status = Status::Rejected("card serial is not 16 digits".to_owned());
            return outcome;
        }
        let pending = match flow::start_load(
            card,
            Application::Ep,
            LOAD_KEY_INDEX,
            amount,
            terminal,
            serial,
        ) {
            Ok(p) => p,
            Err(e) => {
                outcome.status = Status::CardError(e.to_string());
                return outcome;
            }
        };
        let req = &pending.request;
        let mut f55 = Vec::with_capacity(64);
        let mut tlv = TlvBuilder::new(&mut f55);
        let built = tlv
            .push(DF01, &req.card_serial)
            .and_then(|b| b.push(DF02, &req.balance.to_be_bytes()))
            .and_then(|b| b.push(DF03, &req.online_seq.to_be_bytes()))
            .and_then(|b| b.push(DF04, &req.random))
            .and_then(|b| b.push(DF05, &req.mac1))
            .and_then(|b| b.push(DF06, &[req.key_version]))
            .and_then(|b| b.push(DF07, &[req.algorithm_id]))
            .and_then(|b| b.push(DF08, &req.terminal))
            .and_then(|b| b.push(DF09, &[req.transaction_type().code()]))
            .map(|_| ());
        if let Err(e) = built.and_then(|()| tlv.finish().map(|_| ())) {
            outcome.status = Status::Rejected(format!("field 55: {e}"));
            return outcome;
        }
        let stan = self.take_stan();
        let mut m = self.request("0200", stan);
        m.set(2, serial_digits.clone())
            .set(3, "600000")
            .set(4, format!("{amount:012}"))
            .set(49, "156")
            .set(55, f55)
            .set(60, self.field60("48", ""));
        let Some(reply) = self
            .exchange(&mut outcome, &m, "0210", true, true, started)
            .await
        else {
            return outcome;
        };
        if !outcome.is_approved() {
            return outcome;
        }
        let host = reply.f55.as_deref().and_then(|d| {
            let mac2: [u8; 4] = tlv_value(d, DF10)?.try_into().ok()?;
            let date: [u8; 4] = tlv_value(d, DF11)?.try_into().ok()?;
            let time: [u8; 3] = tlv_value(d, DF12)?.try_into().ok()?;
            Some(HostReply { mac2, date, time })
        });
        let Some(host) = host else {
            self.queue_reversal(Operation::Load, &m, "06");
            outcome.status =
                Status::BadResponse("field 55 lacks DF10 MAC2, DF11 date or DF12 time".to_owned());
            return outcome;
        };
        let tac = match flow::complete_online(card, &pending, &host) {
            Ok(TearOutcome::Completed(c) | TearOutcome::Recovered(c)) => c.tac,
            Ok(TearOutcome::NotDebited) => {
                self.queue_reversal(Operation::Load, &m, "06");
                outcome.status =
                    Status::CardError("CREDIT FOR LOAD: the card was not credited".to_owned());
                return outcome;
            }
            Err(e) => {
                self.queue_reversal(Operation::Load, &m, "06");
                outcome.status = Status::CardError(e.to_string());
                return outcome;
            }
        };
        outcome.tac = Some(tac);
        outcome.balance = Some(i64::from(req.balance) + i64::from(amount));
        let record = self.record(RecordKind::Load, stan, u64::from(amount), &reply, None);
        outcome.record = Some(record.clone());
        outcome.confirmation_code = self
            .confirm_load(&record, &serial_digits, amount, tac)
            .await;
        outcome.latency = started.elapsed();
        outcome
    }

    /// The load confirmation (0220, 600000, 60.1 `49`), resent with its STAN until
    /// answered (at most [`TerminalConfig::reversal_attempts`] sends). Its answer code.
    async fn confirm_load(
        &mut self,
        load: &TxnRecord,
        serial_digits: &str,
        amount: u32,
        tac: [u8; 4],
    ) -> Option<String> {
        let mut f55 = Vec::with_capacity(7);
        let mut tlv = TlvBuilder::new(&mut f55);
        tlv.push(DF13, &tac).ok()?;
        tlv.finish().ok()?;
        let stan = self.take_stan();
        let mut m = self.request("0220", stan);
        m.set(2, serial_digits.to_owned())
            .set(3, "600000")
            .set(4, format!("{amount:012}"))
            .set(55, f55)
            .set(60, self.field60("49", ""))
            .set(
                61,
                format!("{:06}{:06}{}", load.batch, load.stan, load.date),
            );
        for _ in 0..self.config.reversal_attempts.max(1) {
            let mut confirmation = Outcome::new(Operation::Load, Status::NoResponse);
            if let Some(reply) = self
                .exchange(&mut confirmation, &m, "0230", true, false, Instant::now())
                .await
            {
                return Some(reply.code);
            }
            if !matches!(confirmation.status, Status::NoResponse) {
                return None;
            }
        }
        None
    }

    /// Batch settlement (0500, 60.3 `201`): field 48 from the batch's own records
    /// ([`BatchTotals::field48`]). On `00` the batch is closed: its records are dropped and
    /// the batch number goes up by one. Batch upload (0320) after an unbalanced answer is
    /// not done; [`SettlementResult::balanced`] says whether it would be needed.
    pub async fn settle(&mut self) -> Outcome {
        let (mut outcome, started) = match self.prepare(Operation::Settlement).await {
            Ok(x) => x,
            Err(o) => return o,
        };
        let totals = BatchTotals::of(&self.records);
        let stan = self.take_stan();
        let mut m = self.request("0500", stan);
        m.set(48, totals.field48())
            .set(49, "156")
            .set(60, self.field60("00", "201"))
            .set(63, self.config.operator.clone());
        // The request carries no MAC (PROTOCOL.md); a MAC on the answer is still checked.
        let mak = self.mak();
        let result = match Self::encode(&m, None) {
            Ok(body) => self.round_trip(&body, "0510", stan).await,
            Err(e) => Err(e),
        };
        outcome.stan = stan;
        outcome.latency = started.elapsed();
        let reply = match result {
            Ok(body) => {
                let checked = match decode(specs::cups_pos(), &body) {
                    Ok(msg) if msg.has(64) => self.check(&body, mak.as_ref()),
                    _ => self.check(&body, None),
                };
                match checked {
                    Ok(reply) => reply,
                    Err(status) => {
                        outcome.status = status;
                        return outcome;
                    }
                }
            }
            Err(f) => {
                outcome.status = f.status();
                return outcome;
            }
        };
        outcome.response_code = Some(reply.code.clone());
        if reply.code != "00" {
            outcome.status = Status::Declined;
            return outcome;
        }
        outcome.status = Status::Approved;
        let flags = reply.f48.unwrap_or_default();
        let flag = |i: usize| match flags.get(i..i + 1) {
            Some("1") => Some(true),
            Some("2") => Some(false),
            _ => None,
        };
        outcome.settlement = Some(SettlementResult {
            balanced: flag(30).unwrap_or(false),
            loads_balanced: flag(61),
            totals,
        });
        self.records.clear();
        self.batch = if self.batch >= 999_999 {
            1
        } else {
            self.batch + 1
        };
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::super::card::mask_pan;
    use super::*;

    #[test]
    fn card_terminal_id_is_bcd_of_the_last_digits() {
        assert_eq!(
            card_terminal_id_from("10000001"),
            [0x00, 0x00, 0x10, 0x00, 0x00, 0x01]
        );
        assert_eq!(
            card_terminal_id_from("1234567890123"),
            [0x23, 0x45, 0x67, 0x89, 0x01, 0x23]
        );
        assert_eq!(card_terminal_id_from("T1"), [0, 0, 0, 0, 0, 0x01]);
    }

    #[test]
    fn utc_dates() {
        let at = |secs: u64| utc_mmdd(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "0101");
        // 2024-02-29 12:00:00 UTC
        assert_eq!(at(1_709_208_000), "0229");
        // 2023-12-31 23:59:59 UTC
        assert_eq!(at(1_704_067_199), "1231");
    }

    #[test]
    fn balances_from_field_54() {
        assert_eq!(parse_balance("1001156C000000012345"), Some(12_345));
        assert_eq!(parse_balance("1002156D000000000100"), Some(-100));
        assert_eq!(parse_balance("000000005000"), Some(5_000));
        assert_eq!(parse_balance("1001156X000000012345"), None);
        assert_eq!(parse_balance(""), None);
    }

    #[test]
    fn settlement_totals() {
        let rec = |kind, amount| TxnRecord {
            kind,
            stan: 1,
            batch: 1,
            amount,
            rrn: String::new(),
            auth_code: String::new(),
            date: "0101".to_owned(),
            card: None,
            voided: false,
        };
        let records = [
            rec(RecordKind::Purchase, 1234),
            rec(RecordKind::Purchase, 100),
            rec(RecordKind::Void, 100),
            rec(RecordKind::Refund, 34),
            rec(RecordKind::Load, 10_000),
        ];
        let t = BatchTotals::of(&records);
        assert_eq!(
            t.field48(),
            concat!(
                "002000000001334002000000000134",
                "0",
                "001000000010000000000000000000",
                "0"
            )
        );
    }

    #[test]
    fn stan_wraps_to_one() {
        let mut config = TerminalConfig::new(
            "127.0.0.1:1",
            "10000001",
            "898100012340001",
            DesKey::single([1; 8]),
        );
        config.first_stan = 999_999;
        let mut t = Terminal::new(config);
        assert_eq!(t.take_stan(), 999_999);
        assert_eq!(t.take_stan(), 1);
        assert_eq!(t.next_stan(), 2);
    }

    #[test]
    fn pan_masking() {
        assert_eq!(mask_pan("6225880123456789"), "622588******6789");
        assert_eq!(mask_pan("1234567890"), "**********");
    }
}
