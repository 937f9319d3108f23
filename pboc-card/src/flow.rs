//! Terminal flows: what a POS or load terminal does between the card, its PSAM and the host.
//!
//! The flows are sans-IO and synchronous: they talk to the card through a
//! [`CardTransport`] and to the PSAM through the [`Psam`] trait, and take the date and time of
//! the transaction as arguments (BCD `YYYYMMDD` and `hhmmss`). The host (the issuer's
//! authorization system) is not called: the online flows stop after INITIALIZE with the
//! [`HostRequest`] to send, and go on with the host's MAC2 ([`HostReply`]).
//!
//! | flow | card (and PSAM) commands |
//! |---|---|
//! | [`get_balance`] | GET BALANCE |
//! | [`read_application_info`] | READ BINARY of EF15 (`00 B0 95 00 1E`): issuer id, card serial ... |
//! | [`verify_pin`] | VERIFY (the ED needs it first on a card with a PIN) |
//! | [`read_records`] | READ RECORD `00 B2 nn C4 17` from record 1 until `6A83` |
//! | [`start_load`], [`start_unload`], [`start_overdraw_update`] then [`complete_online`] | INITIALIZE FOR LOAD / UNLOAD / UPDATE, then CREDIT FOR LOAD / DEBIT FOR UNLOAD / UPDATE OVERDRAW LIMIT |
//! | [`purchase`] | INITIALIZE FOR PURCHASE / CASH WITHDRAW / CAPP PURCHASE, (UPDATE CAPP DATA CACHE,) PSAM INIT SAM FOR PURCHASE, DEBIT FOR PURCHASE, PSAM CREDIT SAM FOR PURCHASE |
//! | [`recover`] | GET TRANSACTION PROOF |
//!
//! # Tear recovery
//!
//! When the answer to the completing command (CREDIT FOR LOAD, DEBIT FOR PURCHASE, DEBIT FOR
//! UNLOAD, UPDATE OVERDRAW LIMIT) is lost — the transport fails, or returns fewer than the two
//! status bytes — the flow never repeats the command. It asks GET TRANSACTION PROOF for the
//! transaction's type and card sequence number (the counter INITIALIZE returned):
//!
//! - the card has a proof: the transaction happened; the flow finishes from the proof (its
//!   TAC, and for a purchase its MAC2, which the PSAM still checks) and returns
//!   [`TearOutcome::Recovered`];
//! - the card answers `9406` (no such proof): nothing happened on the card, and the flow
//!   returns [`TearOutcome::NotDebited`] (for a load: not credited, the host must reverse);
//! - GET TRANSACTION PROOF fails too: the outcome is unknown, and the flow returns
//!   [`FlowError::Indeterminate`] with what [`recover`] needs to ask again once the card is
//!   back. The flow never starts a new debit on its own, so a card is never debited twice.
//!
//! # T=0
//!
//! The flows expect complete answers. Behind a T=0 reader that answers `61xx`, wrap the
//! transport in [`pboc_sam::transport::GetResponse`].

use pboc_sam::transport::{CardTransport, TransportError};

use crate::apdu::{ApduError, CommandApdu, ResponseApdu};
use crate::application::Application;
use crate::command::CommandError;
use crate::command::{
    BinaryTarget, CreditForLoad, CreditForLoadResponse, DebitForPurchase, DebitForPurchaseResponse,
    DebitForUnload, DebitForUnloadResponse, GetBalance, GetBalanceResponse, GetTransactionProof,
    InitSamForPurchase, InitializeForCappPurchase, InitializeForCashWithdraw, InitializeForLoad,
    InitializeForLoadResponse, InitializeForPurchase, InitializeForPurchaseResponse,
    InitializeForUnload, InitializeForUpdate, InitializeForUpdateResponse, ReadBinary, ReadRecord,
    Select, TransactionProof, UpdateCappDataCache, UpdateOverdrawLimit,
    UpdateOverdrawLimitResponse, VerifyPin,
};
use crate::image::PUBLIC_DATA_SFI;
use crate::psam::init_sam_extra_factors;
use crate::record::{OfflinePurchaseRecord, RecordError, TransactionDetail};
use crate::sw::StatusWord;
use crate::terminal::{Psam, PsamError};
use crate::transaction_type::TransactionType;

/// Name of the step that reads the card's public application data.
pub const READ_APPLICATION_INFO: &str = "READ BINARY EF15";

/// A flow step that did not succeed. Every variant names the step (the command's name, e.g.
/// `"DEBIT FOR PURCHASE"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// The command could not be encoded.
    #[error("{step}: cannot encode the command: {source}")]
    Encode {
        /// The step.
        step: &'static str,
        /// Why.
        source: ApduError,
    },
    /// The exchange with the card failed (reader error, card removed, response lost).
    #[error("{step}: transport failed: {source}")]
    Transport {
        /// The step.
        step: &'static str,
        /// The transport's error.
        source: TransportError,
    },
    /// The card answered with a status word other than `9000` (e.g. `9401` insufficient
    /// balance, `9302` MAC invalid, `6982` PIN not verified).
    #[error("{step}: card answered {sw}")]
    Status {
        /// The step.
        step: &'static str,
        /// The status word.
        sw: StatusWord,
    },
    /// The card answered `9000` with response data of the wrong layout.
    #[error("{step}: malformed card response: {source}")]
    Response {
        /// The step.
        step: &'static str,
        /// What is wrong with the data.
        source: CommandError,
    },
    /// A record read from the card does not parse.
    #[error("{step}: malformed record {number}: {source}")]
    Record {
        /// The step.
        step: &'static str,
        /// The record number.
        number: u8,
        /// What is wrong with it.
        source: RecordError,
    },
    /// A PSAM command failed (before the card was debited).
    #[error("{0}")]
    Psam(#[from] PsamError),
    /// The card debited (its TAC is in `record`) but the PSAM did not confirm the card's
    /// MAC2 (`9302`: the card's MAC2 is wrong; or the PSAM could not be reached). Keep the
    /// record: the issuer's TAC check decides whether it is genuine.
    #[error("purchase debited on the card but not confirmed by the PSAM: {source}")]
    Unconfirmed {
        /// The purchase as the card debited it.
        record: Box<OfflinePurchaseRecord>,
        /// The PSAM's error at CREDIT SAM FOR PURCHASE.
        source: PsamError,
    },
    /// The answer to the completing command was lost and GET TRANSACTION PROOF failed too:
    /// whether the card did the transaction is unknown. Ask again with [`recover`] (with
    /// these `transaction_type` and `card_seq`) once the card is back; never repeat the
    /// transaction before that.
    #[error(
        "{step}: response lost and GET TRANSACTION PROOF failed ({source}); outcome unknown for type {:02X} card seq {card_seq}",
        transaction_type.code()
    )]
    Indeterminate {
        /// The completing step whose answer was lost.
        step: &'static str,
        /// The transaction type to ask the proof for.
        transaction_type: TransactionType,
        /// The card sequence number to ask the proof for.
        card_seq: u16,
        /// Why GET TRANSACTION PROOF failed.
        source: Box<FlowError>,
    },
}

impl FlowError {
    /// The step that failed (for a PSAM error, the PSAM command).
    pub fn step(&self) -> &'static str {
        match self {
            Self::Encode { step, .. }
            | Self::Transport { step, .. }
            | Self::Status { step, .. }
            | Self::Response { step, .. }
            | Self::Record { step, .. }
            | Self::Indeterminate { step, .. } => step,
            Self::Psam(e) | Self::Unconfirmed { source: e, .. } => e.command(),
        }
    }

    /// The status word of the card or PSAM, if one answered with an error.
    pub fn status(&self) -> Option<StatusWord> {
        match self {
            Self::Status { sw, .. } => Some(*sw),
            Self::Psam(e) | Self::Unconfirmed { source: e, .. } => e.status(),
            _ => None,
        }
    }
}

/// How a transaction with a completing command (DEBIT or CREDIT) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TearOutcome<T> {
    /// The card answered the completing command.
    Completed(T),
    /// The answer was lost, and GET TRANSACTION PROOF showed that the card did the
    /// transaction; `T` is built from the proof.
    Recovered(T),
    /// The answer was lost, and the card has no proof of the transaction: nothing happened
    /// on the card (no debit; for a load or an overdraw update, no credit or change).
    NotDebited,
}

impl<T> TearOutcome<T> {
    /// The result if the card did the transaction (answered or recovered).
    pub fn done(self) -> Option<T> {
        match self {
            Self::Completed(t) | Self::Recovered(t) => Some(t),
            Self::NotDebited => None,
        }
    }

    /// Whether the result came from GET TRANSACTION PROOF.
    pub fn is_recovered(&self) -> bool {
        matches!(self, Self::Recovered(_))
    }
}

// ---------------------------------------------------------------------------------------
// Exchanges
// ---------------------------------------------------------------------------------------

/// Sends a command and returns the response (any status word).
fn transmit(
    card: &mut dyn CardTransport,
    step: &'static str,
    apdu: &CommandApdu,
) -> Result<ResponseApdu, FlowError> {
    let bytes = apdu
        .to_bytes()
        .map_err(|source| FlowError::Encode { step, source })?;
    let raw = card
        .transmit(&bytes)
        .map_err(|source| FlowError::Transport { step, source })?;
    ResponseApdu::parse(&raw).map_err(|_| FlowError::Transport {
        step,
        source: TransportError::Protocol(format!(
            "R-APDU of {} bytes, expected at least 2 (SW1 SW2)",
            raw.len()
        )),
    })
}

/// Sends a command and returns the data of a `9000` answer.
fn exchange(
    card: &mut dyn CardTransport,
    step: &'static str,
    apdu: &CommandApdu,
) -> Result<Vec<u8>, FlowError> {
    let response = transmit(card, step, apdu)?;
    if response.sw.is_success() {
        Ok(response.data)
    } else {
        Err(FlowError::Status {
            step,
            sw: response.sw,
        })
    }
}

/// Parses response data, naming the step in the error.
fn parsed<T>(step: &'static str, result: Result<T, CommandError>) -> Result<T, FlowError> {
    result.map_err(|source| FlowError::Response { step, source })
}

// ---------------------------------------------------------------------------------------
// Simple reads
// ---------------------------------------------------------------------------------------

/// Selects the ED/EP application by AID; returns the FCI.
///
/// # Errors
/// A [`FlowError`] naming SELECT (`6A82`: no such application).
pub fn select(card: &mut dyn CardTransport, aid: &[u8]) -> Result<Vec<u8>, FlowError> {
    exchange(card, Select::NAME, &Select { aid: aid.to_vec() }.to_apdu())
}

/// Reads the balance of `application` in fen.
///
/// # Errors
/// A [`FlowError`] naming GET BALANCE (`6982`: the ED needs the PIN first).
pub fn get_balance(
    card: &mut dyn CardTransport,
    application: Application,
) -> Result<u32, FlowError> {
    let step = GetBalance::NAME;
    let data = exchange(card, step, &GetBalance { application }.to_apdu())?;
    parsed(step, GetBalanceResponse::parse(&data)).map(|r| r.balance)
}

/// Presents the cardholder's PIN (decimal digits).
///
/// # Errors
/// A [`FlowError`] naming VERIFY: [`FlowError::Response`] for a PIN that is not 4..=12
/// digits, [`StatusWord::PinWrong`] with the tries left, `6983` when blocked.
pub fn verify_pin(card: &mut dyn CardTransport, pin: &str) -> Result<(), FlowError> {
    let step = VerifyPin::NAME;
    let command = parsed(step, VerifyPin::from_digits(pin))?;
    exchange(card, step, &command.to_apdu()).map(|_| ())
}

/// The card's public application data (EF15, 30 bytes), as the virtual card of this crate
/// lays it out:
///
/// ```text
/// offset  0  issuer id (8)
///         8  card type (1)
///         9  application version (1)
///        10  RFU (2)
///        12  application serial number (8)   (the card-level diversification factor)
///        20  valid from (4), BCD YYYYMMDD
///        24  valid until (4), BCD YYYYMMDD
///        28  RFU (2)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApplicationInfo {
    /// Issuer identification.
    pub issuer_id: [u8; 8],
    /// Card (application) type.
    pub card_type: u8,
    /// Application version.
    pub app_version: u8,
    /// Application serial number.
    pub serial: [u8; 8],
    /// First day of validity.
    pub valid_from: [u8; 4],
    /// Last day of validity.
    pub valid_until: [u8; 4],
}

impl ApplicationInfo {
    /// Length of EF15.
    pub const LEN: usize = 30;

    /// Parses the 30 bytes of EF15.
    ///
    /// # Errors
    /// [`CommandError::WrongResponseLength`] for any other length.
    pub fn parse(data: &[u8]) -> Result<Self, CommandError> {
        let error = CommandError::WrongResponseLength {
            command: READ_APPLICATION_INFO,
            expected: Self::LEN,
            found: data.len(),
        };
        let data: &[u8; Self::LEN] = data.try_into().map_err(|_| error)?;
        let take8 = |at: usize| -> [u8; 8] {
            let mut out = [0; 8];
            for (d, s) in out.iter_mut().zip(data.iter().skip(at)) {
                *d = *s;
            }
            out
        };
        let [issuer_id, serial] = [take8(0), take8(12)];
        let [_, _, _, _, _, _, _, _, card_type, app_version, ..] = *data;
        let [from0, from1, from2, from3, until0, until1, until2, until3] = take8(20);
        Ok(Self {
            issuer_id,
            card_type,
            app_version,
            serial,
            valid_from: [from0, from1, from2, from3],
            valid_until: [until0, until1, until2, until3],
        })
    }
}

/// Reads the card's public application data (issuer id, serial, validity) with
/// `00 B0 95 00 1E`.
///
/// # Errors
/// A [`FlowError`] naming [`READ_APPLICATION_INFO`].
pub fn read_application_info(card: &mut dyn CardTransport) -> Result<ApplicationInfo, FlowError> {
    let step = READ_APPLICATION_INFO;
    let command = ReadBinary {
        target: BinaryTarget::ShortEf {
            sfi: PUBLIC_DATA_SFI,
            offset: 0,
        },
        le: ApplicationInfo::LEN as u8,
    };
    let data = exchange(card, step, &command.to_apdu())?;
    parsed(step, ApplicationInfo::parse(&data))
}

/// Reads up to `max` transaction detail records, newest (record 1) first, stopping at the
/// first record the card does not have (`6A83`).
///
/// # Errors
/// A [`FlowError`] naming READ RECORD for any other status word, or
/// [`FlowError::Record`] for a record that does not parse.
pub fn read_records(
    card: &mut dyn CardTransport,
    max: u8,
) -> Result<Vec<TransactionDetail>, FlowError> {
    let step = ReadRecord::NAME;
    let mut records = Vec::new();
    for number in 1..=max {
        let response = transmit(
            card,
            step,
            &TransactionDetail::read_command(number).to_apdu(),
        )?;
        match response.sw {
            StatusWord::Success => {}
            StatusWord::RecordNotFound => break,
            sw => return Err(FlowError::Status { step, sw }),
        }
        let record =
            TransactionDetail::parse(&response.data).map_err(|source| FlowError::Record {
                step,
                number,
                source,
            })?;
        records.push(record);
    }
    Ok(records)
}

/// Asks the card whether the transaction `transaction_type` with card sequence number
/// `card_seq` happened: `Some(proof)` if it did, `None` if the card has no proof of it
/// (`9406`: nothing happened).
///
/// # Errors
/// A [`FlowError`] naming GET TRANSACTION PROOF for a lost answer or any other status word:
/// the outcome is then still unknown.
pub fn recover(
    card: &mut dyn CardTransport,
    transaction_type: TransactionType,
    card_seq: u16,
) -> Result<Option<TransactionProof>, FlowError> {
    let step = GetTransactionProof::NAME;
    let command = GetTransactionProof {
        transaction_type,
        card_seq,
    };
    let response = transmit(card, step, &command.to_apdu())?;
    match response.sw {
        StatusWord::Success => parsed(step, TransactionProof::parse(&response.data)).map(Some),
        StatusWord::MacUnavailable => Ok(None),
        sw => Err(FlowError::Status { step, sw }),
    }
}

/// After a lost answer to `step`: the proof, or why the outcome is unknown.
fn recover_after_tear(
    card: &mut dyn CardTransport,
    step: &'static str,
    transaction_type: TransactionType,
    card_seq: u16,
) -> Result<Option<TransactionProof>, FlowError> {
    recover(card, transaction_type, card_seq).map_err(|source| FlowError::Indeterminate {
        step,
        transaction_type,
        card_seq,
        source: Box::new(source),
    })
}

// ---------------------------------------------------------------------------------------
// Online: load, unload, overdraw-limit update
// ---------------------------------------------------------------------------------------

/// The online transaction a [`PendingOnline`] completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnlineKind {
    /// Load of the ED (`01`) or EP (`02`): completed by CREDIT FOR LOAD.
    Load(Application),
    /// Unload of the ED (`03`): completed by DEBIT FOR UNLOAD.
    Unload,
    /// ED overdraw-limit update (`07`) to `new_limit` fen: completed by UPDATE OVERDRAW
    /// LIMIT.
    OverdrawUpdate {
        /// The new limit (3 bytes on the wire).
        new_limit: u32,
    },
}

impl OnlineKind {
    /// The transaction type.
    pub fn transaction_type(self) -> TransactionType {
        match self {
            Self::Load(application) => TransactionType::load(application),
            Self::Unload => TransactionType::Unload,
            Self::OverdrawUpdate { .. } => TransactionType::EdOverdrawUpdate,
        }
    }

    /// The name of the completing command.
    pub fn completing_step(self) -> &'static str {
        match self {
            Self::Load(_) => CreditForLoad::NAME,
            Self::Unload => DebitForUnload::NAME,
            Self::OverdrawUpdate { .. } => UpdateOverdrawLimit::NAME,
        }
    }
}

/// What the terminal sends the host for an online transaction: the card's answer to
/// INITIALIZE and the transaction's data. The host checks `mac1` with the card's key
/// (derived from its master with the card serial as the last factor) and answers MAC2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostRequest {
    /// The transaction.
    pub kind: OnlineKind,
    /// The card application serial number.
    pub card_serial: [u8; 8],
    /// Amount in fen (0 for an overdraw update).
    pub amount: u32,
    /// Terminal id.
    pub terminal: [u8; 6],
    /// Key index used.
    pub key_index: u8,
    /// Balance before the transaction.
    pub balance: u32,
    /// Online sequence number before the transaction (also the card seq of its proof).
    pub online_seq: u16,
    /// The current overdraw limit (overdraw update only; 0 otherwise).
    pub old_limit: u32,
    /// Version of the card key used.
    pub key_version: u8,
    /// Algorithm id of the card key used.
    pub algorithm_id: u8,
    /// The card's random number.
    pub random: [u8; 4],
    /// The card's MAC1.
    pub mac1: [u8; 4],
}

impl HostRequest {
    /// The transaction type.
    pub fn transaction_type(&self) -> TransactionType {
        self.kind.transaction_type()
    }
}

/// The host's answer to a [`HostRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostReply {
    /// MAC2 for the card.
    pub mac2: [u8; 4],
    /// Transaction date, BCD `YYYYMMDD` (the one MAC2 covers).
    pub date: [u8; 4],
    /// Transaction time, BCD `hhmmss` (the one MAC2 covers).
    pub time: [u8; 3],
}

/// An online transaction between INITIALIZE and its completing command. Send
/// [`PendingOnline::request`] to the host, then call [`complete_online`] with its reply, with
/// no other card command in between (the card forgets the transaction otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PendingOnline {
    /// What goes to the host.
    pub request: HostRequest,
}

/// The result of a completed online transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OnlineCompletion {
    /// The card's TAC.
    pub tac: [u8; 4],
}

/// Starts a load: INITIALIZE FOR LOAD of `amount` fen into `application`.
///
/// # Errors
/// A [`FlowError`] naming INITIALIZE FOR LOAD (`9403` unknown key index, `6985` above the
/// maximum balance ...).
pub fn start_load(
    card: &mut dyn CardTransport,
    application: Application,
    key_index: u8,
    amount: u32,
    terminal: [u8; 6],
    card_serial: [u8; 8],
) -> Result<PendingOnline, FlowError> {
    let step = InitializeForLoad::NAME;
    let command = InitializeForLoad {
        application,
        key_index,
        amount,
        terminal,
    };
    let data = exchange(card, step, &command.to_apdu())?;
    let init = parsed(step, InitializeForLoadResponse::parse(&data))?;
    Ok(pending_from_load(
        OnlineKind::Load(application),
        &init,
        key_index,
        amount,
        terminal,
        card_serial,
    ))
}

/// Starts an unload from the ED: INITIALIZE FOR UNLOAD of `amount` fen.
///
/// # Errors
/// A [`FlowError`] naming INITIALIZE FOR UNLOAD (`9401` more than the balance ...).
pub fn start_unload(
    card: &mut dyn CardTransport,
    key_index: u8,
    amount: u32,
    terminal: [u8; 6],
    card_serial: [u8; 8],
) -> Result<PendingOnline, FlowError> {
    let step = InitializeForUnload::NAME;
    let command = InitializeForUnload {
        key_index,
        amount,
        terminal,
    };
    let data = exchange(card, step, &command.to_apdu())?;
    let init = parsed(step, InitializeForUnload::parse_response(&data))?;
    Ok(pending_from_load(
        OnlineKind::Unload,
        &init,
        key_index,
        amount,
        terminal,
        card_serial,
    ))
}

/// Starts an ED overdraw-limit update to `new_limit` fen: INITIALIZE FOR UPDATE.
///
/// # Errors
/// A [`FlowError`] naming INITIALIZE FOR UPDATE.
pub fn start_overdraw_update(
    card: &mut dyn CardTransport,
    key_index: u8,
    new_limit: u32,
    terminal: [u8; 6],
    card_serial: [u8; 8],
) -> Result<PendingOnline, FlowError> {
    let step = InitializeForUpdate::NAME;
    let command = InitializeForUpdate {
        key_index,
        terminal,
    };
    let data = exchange(card, step, &command.to_apdu())?;
    let init = parsed(step, InitializeForUpdateResponse::parse(&data))?;
    Ok(PendingOnline {
        request: HostRequest {
            kind: OnlineKind::OverdrawUpdate { new_limit },
            card_serial,
            amount: 0,
            terminal,
            key_index,
            balance: init.balance,
            online_seq: init.online_seq,
            old_limit: init.overdraw_limit,
            key_version: init.key_version,
            algorithm_id: init.algorithm_id,
            random: init.random,
            mac1: init.mac1,
        },
    })
}

fn pending_from_load(
    kind: OnlineKind,
    init: &InitializeForLoadResponse,
    key_index: u8,
    amount: u32,
    terminal: [u8; 6],
    card_serial: [u8; 8],
) -> PendingOnline {
    PendingOnline {
        request: HostRequest {
            kind,
            card_serial,
            amount,
            terminal,
            key_index,
            balance: init.balance,
            online_seq: init.online_seq,
            old_limit: 0,
            key_version: init.key_version,
            algorithm_id: init.algorithm_id,
            random: init.random,
            mac1: init.mac1,
        },
    }
}

/// Completes an online transaction with the host's MAC2: CREDIT FOR LOAD, DEBIT FOR UNLOAD
/// or UPDATE OVERDRAW LIMIT; on a lost answer, GET TRANSACTION PROOF (see the
/// [module documentation](self)).
///
/// # Errors
/// A [`FlowError`] naming the completing command (`9302`: the host's MAC2 is wrong; `6985`:
/// the card forgot the INITIALIZE), or [`FlowError::Indeterminate`].
pub fn complete_online(
    card: &mut dyn CardTransport,
    pending: &PendingOnline,
    reply: &HostReply,
) -> Result<TearOutcome<OnlineCompletion>, FlowError> {
    let request = &pending.request;
    let step = request.kind.completing_step();
    let HostReply { mac2, date, time } = *reply;
    let apdu = match request.kind {
        OnlineKind::Load(_) => CreditForLoad { date, time, mac2 }.to_apdu(),
        OnlineKind::Unload => DebitForUnload { date, time, mac2 }.to_apdu(),
        OnlineKind::OverdrawUpdate { new_limit } => UpdateOverdrawLimit {
            new_limit,
            date,
            time,
            mac2,
        }
        .to_apdu(),
    };
    let response = match transmit(card, step, &apdu) {
        Ok(response) => response,
        Err(FlowError::Transport { .. }) => {
            let proof =
                recover_after_tear(card, step, request.transaction_type(), request.online_seq)?;
            return Ok(match proof {
                Some(proof) => TearOutcome::Recovered(OnlineCompletion { tac: proof.tac }),
                None => TearOutcome::NotDebited,
            });
        }
        Err(e) => return Err(e),
    };
    if !response.sw.is_success() {
        return Err(FlowError::Status {
            step,
            sw: response.sw,
        });
    }
    let tac = match request.kind {
        OnlineKind::Load(_) => parsed(step, CreditForLoadResponse::parse(&response.data))?.tac,
        OnlineKind::Unload => parsed(step, DebitForUnloadResponse::parse(&response.data))?.tac,
        OnlineKind::OverdrawUpdate { .. } => {
            parsed(step, UpdateOverdrawLimitResponse::parse(&response.data))?.tac
        }
    };
    Ok(TearOutcome::Completed(OnlineCompletion { tac }))
}

// ---------------------------------------------------------------------------------------
// Offline: purchase, cash withdrawal, composite purchase
// ---------------------------------------------------------------------------------------

/// The kind of offline debit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PurchaseKind {
    /// A plain purchase from the ED (`05`) or EP (`06`): INITIALIZE FOR PURCHASE.
    Purchase(Application),
    /// An ED cash withdrawal (`04`): INITIALIZE FOR CASH WITHDRAW.
    CashWithdrawal,
    /// An EP composite purchase (`09`): INITIALIZE FOR CAPP PURCHASE, then these UPDATE CAPP
    /// DATA CACHE commands (the card writes them together with the debit).
    Composite(Vec<UpdateCappDataCache>),
}

impl PurchaseKind {
    /// The transaction type.
    pub fn transaction_type(&self) -> TransactionType {
        match self {
            Self::Purchase(application) => TransactionType::purchase(*application),
            Self::CashWithdrawal => TransactionType::EdCashWithdrawal,
            Self::Composite(_) => TransactionType::CompositePurchase,
        }
    }
}

/// An offline debit to run with [`purchase`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PurchaseRequest {
    /// Purchase, cash withdrawal or composite purchase.
    pub kind: PurchaseKind,
    /// Index of the card's purchase key.
    pub key_index: u8,
    /// Amount in fen.
    pub amount: u32,
    /// The terminal id: it must be the PSAM's (read it once with [`Psam::terminal_id`]), as
    /// the PSAM puts its own into MAC1.
    pub terminal: [u8; 6],
    /// The card application serial number (e.g. from [`read_application_info`]).
    pub card_serial: [u8; 8],
    /// Further diversification factors above the card, outermost first (as the issuer
    /// keeps them; empty for one-level diversification). They go to the PSAM in its wire
    /// order ([`init_sam_extra_factors`]).
    pub issuer_factors: Vec<[u8; 8]>,
    /// Transaction date, BCD `YYYYMMDD`.
    pub date: [u8; 4],
    /// Transaction time, BCD `hhmmss`.
    pub time: [u8; 3],
}

/// A completed offline debit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PurchaseReceipt {
    /// The record to upload for clearing, with the card's TAC.
    pub record: OfflinePurchaseRecord,
    /// The card's MAC2, which the PSAM verified.
    pub mac2: [u8; 4],
    /// The balance after the debit (0 when the ED went into its overdraw limit).
    pub balance_after: u32,
}

/// Runs an offline debit: the card's INITIALIZE, (UPDATE CAPP DATA CACHE,) the PSAM's INIT
/// SAM FOR PURCHASE, the card's DEBIT FOR PURCHASE and the PSAM's CREDIT SAM FOR PURCHASE.
/// On a lost DEBIT answer it asks GET TRANSACTION PROOF (see the
/// [module documentation](self)).
///
/// # Errors
/// A [`FlowError`] naming the step: e.g. `9401` at INITIALIZE (insufficient balance), a
/// [`FlowError::Psam`] before the debit, [`FlowError::Unconfirmed`] after it, or
/// [`FlowError::Indeterminate`].
pub fn purchase(
    card: &mut dyn CardTransport,
    psam: &mut dyn Psam,
    request: &PurchaseRequest,
) -> Result<TearOutcome<PurchaseReceipt>, FlowError> {
    let transaction_type = request.kind.transaction_type();
    let (step, apdu) = match &request.kind {
        PurchaseKind::Purchase(application) => (
            InitializeForPurchase::NAME,
            InitializeForPurchase {
                application: *application,
                key_index: request.key_index,
                amount: request.amount,
                terminal: request.terminal,
            }
            .to_apdu(),
        ),
        PurchaseKind::CashWithdrawal => (
            InitializeForCashWithdraw::NAME,
            InitializeForCashWithdraw {
                key_index: request.key_index,
                amount: request.amount,
                terminal: request.terminal,
            }
            .to_apdu(),
        ),
        PurchaseKind::Composite(_) => (
            InitializeForCappPurchase::NAME,
            InitializeForCappPurchase {
                key_index: request.key_index,
                amount: request.amount,
                terminal: request.terminal,
            }
            .to_apdu(),
        ),
    };
    let data = exchange(card, step, &apdu)?;
    let init = parsed(step, InitializeForPurchaseResponse::parse(&data))?;
    if let PurchaseKind::Composite(updates) = &request.kind {
        for update in updates {
            exchange(card, UpdateCappDataCache::NAME, &update.to_apdu())?;
        }
    }

    let sam = psam.init_for_purchase(&InitSamForPurchase {
        card_random: init.random,
        card_offline_seq: init.offline_seq,
        amount: request.amount,
        transaction_type,
        date: request.date,
        time: request.time,
        key_version: init.key_version,
        algorithm_id: init.algorithm_id,
        card_serial: request.card_serial,
        extra_factors: init_sam_extra_factors(&request.issuer_factors),
    })?;

    let step = DebitForPurchase::NAME;
    let debit = DebitForPurchase {
        terminal_seq: sam.terminal_seq,
        date: request.date,
        time: request.time,
        mac1: sam.mac1,
    };
    let (tac, mac2, recovered) = match transmit(card, step, &debit.to_apdu()) {
        Ok(response) if response.sw.is_success() => {
            let r = parsed(step, DebitForPurchaseResponse::parse(&response.data))?;
            (r.tac, r.mac2, false)
        }
        Ok(response) => {
            return Err(FlowError::Status {
                step,
                sw: response.sw,
            });
        }
        Err(FlowError::Transport { .. }) => {
            match recover_after_tear(card, step, transaction_type, init.offline_seq)? {
                Some(proof) => (proof.tac, proof.mac, true),
                None => return Ok(TearOutcome::NotDebited),
            }
        }
        Err(e) => return Err(e),
    };

    let record = OfflinePurchaseRecord {
        card_serial: request.card_serial,
        offline_seq: init.offline_seq,
        amount: request.amount,
        transaction_type,
        terminal: request.terminal,
        terminal_seq: sam.terminal_seq,
        date: request.date,
        time: request.time,
        tac,
        balance_before: init.balance,
        key_version: init.key_version,
        algorithm_id: init.algorithm_id,
    };
    if let Err(source) = psam.credit_for_purchase(mac2) {
        return Err(FlowError::Unconfirmed {
            record: Box::new(record),
            source,
        });
    }
    let receipt = PurchaseReceipt {
        record,
        mac2,
        balance_after: init.balance.saturating_sub(request.amount),
    };
    Ok(if recovered {
        TearOutcome::Recovered(receipt)
    } else {
        TearOutcome::Completed(receipt)
    })
}
