//! A virtual PBOC 2.0 card with the electronic deposit (ED) and electronic purse (EP)
//! applications, answering command APDUs byte for byte.
//!
//! [`VirtualCard::process`] takes C-APDU bytes and returns R-APDU bytes (data, then `SW1
//! SW2`); nothing in it panics on any input. The state lives in a [`CardImage`], loaded with
//! [`VirtualCard::from_image`] and taken with [`VirtualCard::image`]. The card challenge
//! ("random") comes from an injected [`RandomSource`], so runs are reproducible.
//!
//! # Files and selection
//!
//! One ADF (the image's AID) holds both applications; P2 of each command picks ED `01` or
//! EP `02`, and a command for an application the card does not have answers `6A86`. The
//! application is selected at reset (single-application card), so SELECT is optional;
//! SELECT of the card's AID answers the FCI below, any other AID `6A82`. SELECT also clears
//! the session (PIN verified, pending transaction).
//!
//! ```text
//! FCI   6F L | 84 L <AID> | A5 L | 9F08 01 <app version> | BF0C 1E <EF15, 30 bytes>
//! EF15  issuer id(8) | card type(1) | app version(1) | 00 00 | serial(8) |
//!       valid from(4) | valid until(4) | 00 00           (READ BINARY 00 B0 95 off Le)
//! EF18  transaction detail, cyclic, 23-byte records, newest = 1 (READ RECORD 00 B2 nn C4 17)
//! ```
//!
//! CAPP files (written by UPDATE CAPP DATA CACHE during a composite purchase) are read
//! with READ RECORD of their SFI and record id.
//!
//! # Transactions
//!
//! - INITIALIZE FOR LOAD / UNLOAD / UPDATE: balance, online seq, (old limit), key version,
//!   algorithm id, random, MAC1 with the session key from DLK / DULK / DUK
//!   ([`pboc_sam::pboc::load_session_key`]). Load MAC1 is over
//!   [`pboc_sam::pboc::load_mac1_input`], unload the same with type `03`, update over
//!   [`overdraw_mac1_input`].
//! - INITIALIZE FOR PURCHASE / CASH WITHDRAW / CAPP PURCHASE: balance, offline seq,
//!   overdraw limit, key version, algorithm id, random. `9401` when the amount exceeds the
//!   balance (plus the unused overdraw limit for the ED).
//! - CREDIT FOR LOAD, DEBIT FOR UNLOAD, UPDATE OVERDRAW LIMIT check the issuer's MAC2;
//!   DEBIT FOR PURCHASE checks the PSAM's MAC1 (session key
//!   [`pboc_sam::pboc::purchase_session_key`] with the terminal seq of the DEBIT). Only
//!   then do they commit: the amount, the counter (+1), a detail record (card seq = the
//!   counter before the increment), the proof for GET TRANSACTION PROOF. They answer the
//!   TAC (with the DTK's TAC key), purchases also MAC2 over `amount`.
//! - A completing command must immediately follow its INITIALIZE (UPDATE CAPP DATA CACHE
//!   may come in between for a CAPP purchase): any other command, even a malformed one,
//!   cancels the pending transaction, and the completing command then answers `6985`. A
//!   MAC failure also ends it.
//!
//! A load that would take the balance above the purse's `max_balance` answers `6985` at
//! INITIALIZE. A counter at `FFFF` answers [`SW_COUNTER_LIMIT`] (`9402`). A card with a PIN
//! needs VERIFY (since reset or SELECT) before GET BALANCE or any INITIALIZE of the ED
//! (`6982`); the EP needs no PIN.
//!
//! # Keys
//!
//! Keys are card-wide, chosen by purpose and the key index of the INITIALIZE (`9403` for an
//! index the card lacks). The TAC uses the DTK with the same index, or else the DTK with
//! the lowest index; a card without DTK answers `9406` at INITIALIZE.
//!
//! Key blocking: each key counts consecutive MAC failures (`9302`); a correct MAC resets
//! the count. After [`MAX_MAC_FAILURES`] the key is blocked and every INITIALIZE that needs
//! it answers `6983`; other keys keep working. The count is part of the image.
//!
//! `9303`: a permanently locked application ([`VirtualCard::lock`], or `locked` in the
//! image) answers `9303` to everything but SELECT, READ RECORD, READ BINARY and GET
//! RESPONSE.
//!
//! # PIN
//!
//! VERIFY compares in constant time ([`pboc_sam::Pin::ct_eq`]). A wrong PIN answers `63Cx`
//! with `x` tries left; with no tries left VERIFY answers `6983`; a correct PIN restores
//! the tries. A card without a PIN answers VERIFY with `6A88`.
//!
//! # Tear
//!
//! [`VirtualCard::set_tear`] arms a one-shot power loss on the next completing command
//! (CREDIT FOR LOAD, DEBIT FOR PURCHASE, DEBIT FOR UNLOAD, UPDATE OVERDRAW LIMIT):
//! [`TearPoint::AfterCommitBeforeResponse`] executes it (committing if the MAC is right)
//! and loses the response; [`TearPoint::BeforeCommit`] loses power before it executes.
//! Either way `process` returns [`TORN_RESPONSE`] (no bytes at all, not even a status
//! word: a transport maps it to a communication error) and the session is cleared as by
//! [`VirtualCard::reset`]. GET TRANSACTION PROOF then tells whether the transaction
//! happened.
//!
//! # Status words for malformed commands
//!
//! Bytes that are not an APDU, or a wrong Lc / missing Le: `6700`. Unknown CLA: `6E00`;
//! unknown INS: `6D00`; bad P1/P2 (including unknown INITIALIZE/DEBIT variants): `6A86`;
//! bad data (PIN digits): `6A80`; READ RECORD/BINARY with a wrong Le: `6Cxx`.

mod crypto;
mod files;
mod transaction;

pub use crypto::{FixedRandom, overdraw_mac1_input, overdraw_mac2_input, overdraw_tac_input};

use core::fmt;

use pboc_sam::{DesKey, RandomSource};

use crate::apdu::{CommandApdu, ResponseApdu};
use crate::application::Application;
use crate::command::{CardCommand, CommandError, parse_card_command};
use crate::image::{CardImage, CardKey, ImageError, KeyPurpose, Purse, RecordImage, StoredProof};
use crate::record::TransactionDetail;
use crate::sw::StatusWord;
use crate::transaction_type::TransactionType;

/// Consecutive MAC failures after which a key is blocked (`6983`).
pub const MAX_MAC_FAILURES: u8 = 3;

/// What [`VirtualCard::process`] returns when a tear cut the response: no bytes.
pub const TORN_RESPONSE: &[u8] = &[];

/// `9402`: a transaction counter has reached its maximum (`FFFF`).
pub const SW_COUNTER_LIMIT: StatusWord = StatusWord::Other(0x9402);

/// Most UPDATE CAPP DATA CACHE commands in one CAPP purchase; more answer `6A84`.
pub const MAX_CAPP_CACHE_UPDATES: usize = 4;

/// `6F00`: an internal error (never expected: key lengths are checked on load).
const SW_INTERNAL: StatusWord = StatusWord::Other(0x6F00);

/// Where a simulated power loss cuts the next completing command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TearPoint {
    /// Power is lost before the command executes: nothing is written.
    BeforeCommit,
    /// The command executes and commits; its response is lost.
    AfterCommitBeforeResponse,
}

/// Which online transaction is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Online {
    Load,
    Unload,
    Update,
}

/// The transaction an INITIALIZE started (volatile).
#[derive(Debug, Clone)]
enum Pending {
    Online {
        kind: Online,
        application: Application,
        key_index: u8,
        amount: u32,
        terminal: [u8; 6],
        seq: u16,
        random: [u8; 4],
    },
    Offline {
        tx_type: TransactionType,
        application: Application,
        key_index: u8,
        amount: u32,
        terminal: [u8; 6],
        seq: u16,
        random: [u8; 4],
        capp: Vec<crate::image::CappRecord>,
    },
}

/// A virtual PBOC 2.0 ED/EP card. See the module documentation for its exact behaviour.
pub struct VirtualCard {
    state: CardImage,
    random: Box<dyn RandomSource>,
    pending: Option<Pending>,
    pin_verified: bool,
    tear: Option<TearPoint>,
}

/// A virtual card answers APDUs through any `pboc_sam` card transport
/// (`MemoryTransport::new(card)`), like the virtual PSAM.
impl pboc_sam::ApduHandler for VirtualCard {
    fn handle(&mut self, capdu: &[u8]) -> Vec<u8> {
        self.process(capdu)
    }
}

impl fmt::Debug for VirtualCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualCard")
            .field("serial", &hex::encode_upper(self.state.serial))
            .field("ed", &self.state.ed)
            .field("ep", &self.state.ep)
            .field("keys", &self.state.keys)
            .field("locked", &self.state.locked)
            .field("records", &self.state.records.len())
            .field("pending", &self.pending.is_some())
            .field("pin_verified", &self.pin_verified)
            .field("tear", &self.tear)
            .finish_non_exhaustive()
    }
}

impl VirtualCard {
    /// A card with the state of `image` (validated first) and `random` for its challenges.
    pub fn from_image(
        image: &CardImage,
        random: Box<dyn RandomSource>,
    ) -> Result<Self, ImageError> {
        image.validate()?;
        Ok(Self {
            state: image.clone(),
            random,
            pending: None,
            pin_verified: false,
            tear: None,
        })
    }

    /// The card's persistent state; `from_image(&card.image(), ..)` is the same card.
    pub fn image(&self) -> CardImage {
        self.state.clone()
    }

    /// Processes one command APDU and returns the response APDU bytes (data, `SW1 SW2`),
    /// or [`TORN_RESPONSE`] when an armed tear cut the response.
    pub fn process(&mut self, capdu: &[u8]) -> Vec<u8> {
        // Any command ends a pending transaction unless it is the one completing it.
        let pending = self.pending.take();
        let command = match CommandApdu::parse(capdu) {
            Err(_) => return respond(Err(StatusWord::WrongLength)),
            Ok(apdu) => match parse_card_command(&apdu) {
                Ok(command) => command,
                Err(e) => return respond(Err(status_for(&e))),
            },
        };
        let completing = matches!(
            command,
            CardCommand::CreditForLoad(_)
                | CardCommand::DebitForPurchase(_)
                | CardCommand::DebitForUnload(_)
                | CardCommand::UpdateOverdrawLimit(_)
        );
        if completing && let Some(tear) = self.tear.take() {
            if tear == TearPoint::AfterCommitBeforeResponse {
                // The result is what the lost response would have said.
                let _lost = self.execute(command, pending);
            }
            self.reset();
            return TORN_RESPONSE.to_vec();
        }
        respond(self.execute(command, pending))
    }

    /// Typed convenience over [`VirtualCard::process`]: `None` when the response was torn
    /// (or, for an APDU that cannot be encoded, a `6700` response).
    pub fn exchange(&mut self, command: &CommandApdu) -> Option<ResponseApdu> {
        let bytes = match command.to_bytes() {
            Ok(bytes) => bytes,
            Err(_) => return Some(ResponseApdu::status(StatusWord::WrongLength)),
        };
        ResponseApdu::parse(&self.process(&bytes)).ok()
    }

    /// Simulates a power cycle: the pending transaction, the PIN-verified state and an
    /// armed tear are gone; the persistent state stays.
    pub fn reset(&mut self) {
        self.pending = None;
        self.pin_verified = false;
        self.tear = None;
    }

    /// Arms a one-shot tear on the next completing command (see the module
    /// documentation).
    pub fn set_tear(&mut self, point: TearPoint) {
        self.tear = Some(point);
    }

    /// Disarms the tear.
    pub fn clear_tear(&mut self) {
        self.tear = None;
    }

    /// Locks the application permanently (as the issuer's APPLICATION BLOCK would).
    pub fn lock(&mut self) {
        self.state.locked = true;
        self.pending = None;
    }

    /// Whether the application is permanently locked.
    pub fn is_locked(&self) -> bool {
        self.state.locked
    }

    /// The application serial number.
    pub fn serial(&self) -> [u8; 8] {
        self.state.serial
    }

    /// The application identifier.
    pub fn aid(&self) -> &[u8] {
        &self.state.aid
    }

    /// The state of `application`, if the card has it.
    pub fn purse(&self, application: Application) -> Option<&Purse> {
        self.state.purse(application)
    }

    /// The balance of `application` in fen.
    pub fn balance(&self, application: Application) -> Option<u32> {
        self.purse(application).map(|p| p.balance)
    }

    /// The online transaction counter of `application`.
    pub fn online_seq(&self, application: Application) -> Option<u16> {
        self.purse(application).map(|p| p.online_seq)
    }

    /// The offline transaction counter of `application`.
    pub fn offline_seq(&self, application: Application) -> Option<u16> {
        self.purse(application).map(|p| p.offline_seq)
    }

    /// The transaction detail records, newest first.
    pub fn records(&self) -> Vec<TransactionDetail> {
        self.state
            .records
            .iter()
            .filter_map(RecordImage::to_detail)
            .collect()
    }

    /// The content of a CAPP file record.
    pub fn capp_record(&self, sfi: u8, record_id: u8) -> Option<&[u8]> {
        self.state
            .capp_records
            .iter()
            .find(|r| r.sfi == sfi && r.record_id == record_id)
            .map(|r| r.data.as_slice())
    }

    /// The stored proof of the last completed transaction of `transaction_type`.
    pub fn proof(&self, transaction_type: TransactionType) -> Option<StoredProof> {
        self.state
            .proofs
            .iter()
            .find(|p| p.transaction_type == transaction_type.code())
            .copied()
    }

    /// PIN tries left, if the card has a PIN.
    pub fn pin_tries_left(&self) -> Option<u8> {
        self.state.pin.as_ref().map(|p| p.tries_left)
    }

    /// Whether the PIN has been verified since the last reset or SELECT.
    pub fn pin_verified(&self) -> bool {
        self.pin_verified
    }

    /// Consecutive MAC failures of a key, if the card has it.
    pub fn mac_failures(&self, purpose: KeyPurpose, index: u8) -> Option<u8> {
        self.state.key(purpose, index).map(|k| k.mac_failures)
    }

    /// Whether a transaction is waiting for its completing command.
    pub fn has_pending_transaction(&self) -> bool {
        self.pending.is_some()
    }

    fn execute(
        &mut self,
        command: CardCommand,
        pending: Option<Pending>,
    ) -> Result<Vec<u8>, StatusWord> {
        let always_allowed = matches!(
            command,
            CardCommand::Select(_)
                | CardCommand::ReadRecord(_)
                | CardCommand::ReadBinary(_)
                | CardCommand::GetResponse(_)
        );
        if self.state.locked && !always_allowed {
            return Err(StatusWord::ApplicationLocked);
        }
        match command {
            CardCommand::Select(c) => self.select(&c),
            CardCommand::ReadRecord(c) => self.read_record(&c),
            CardCommand::ReadBinary(c) => self.read_binary(&c),
            CardCommand::VerifyPin(c) => self.verify_pin(&c),
            CardCommand::GetResponse(_) => Err(StatusWord::ConditionsNotSatisfied),
            CardCommand::GetBalance(c) => self.get_balance(c.application),
            CardCommand::InitializeForLoad(c) => self.init_online(
                Online::Load,
                c.application,
                c.key_index,
                c.amount,
                c.terminal,
            ),
            CardCommand::InitializeForUnload(c) => self.init_online(
                Online::Unload,
                Application::Ed,
                c.key_index,
                c.amount,
                c.terminal,
            ),
            CardCommand::InitializeForUpdate(c) => {
                self.init_online(Online::Update, Application::Ed, c.key_index, 0, c.terminal)
            }
            CardCommand::InitializeForPurchase(c) => self.init_offline(
                TransactionType::purchase(c.application),
                c.application,
                c.key_index,
                c.amount,
                c.terminal,
            ),
            CardCommand::InitializeForCashWithdraw(c) => self.init_offline(
                TransactionType::EdCashWithdrawal,
                Application::Ed,
                c.key_index,
                c.amount,
                c.terminal,
            ),
            CardCommand::InitializeForCappPurchase(c) => self.init_offline(
                TransactionType::CompositePurchase,
                Application::Ep,
                c.key_index,
                c.amount,
                c.terminal,
            ),
            CardCommand::CreditForLoad(c) => {
                self.complete_online(Online::Load, 0, c.date, c.time, c.mac2, pending)
            }
            CardCommand::DebitForUnload(c) => {
                self.complete_online(Online::Unload, 0, c.date, c.time, c.mac2, pending)
            }
            CardCommand::UpdateOverdrawLimit(c) => {
                self.complete_online(Online::Update, c.new_limit, c.date, c.time, c.mac2, pending)
            }
            CardCommand::DebitForPurchase(c) => self.complete_offline(&c, pending),
            CardCommand::UpdateCappDataCache(c) => self.update_capp(c, pending),
            CardCommand::GetTransactionProof(c) => self.transaction_proof(&c),
        }
    }

    /// The purse of `application`, or `6A86` when the card does not have it.
    fn purse_or_sw(&self, application: Application) -> Result<Purse, StatusWord> {
        self.state
            .purse(application)
            .copied()
            .ok_or(StatusWord::IncorrectP1P2)
    }

    /// `6982` for an ED command on a card with a PIN that has not been verified.
    fn check_pin(&self, application: Application) -> Result<(), StatusWord> {
        if application == Application::Ed && self.state.pin.is_some() && !self.pin_verified {
            Err(StatusWord::SecurityStatusNotSatisfied)
        } else {
            Ok(())
        }
    }

    /// A key usable for a new transaction: `9403` if absent, `6983` if blocked.
    fn usable_key(&self, purpose: KeyPurpose, index: u8) -> Result<&CardKey, StatusWord> {
        let key = self
            .state
            .key(purpose, index)
            .ok_or(StatusWord::KeyIndexNotSupported)?;
        if key.mac_failures >= MAX_MAC_FAILURES {
            return Err(StatusWord::AuthenticationBlocked);
        }
        Ok(key)
    }

    /// The TAC key: from the DTK with `index`, else the lowest-index DTK; `9406` if none.
    fn tac_key(&self, index: u8) -> Result<DesKey, StatusWord> {
        let dtk = self.state.key(KeyPurpose::Tac, index).or_else(|| {
            self.state
                .keys
                .iter()
                .filter(|k| k.purpose == KeyPurpose::Tac)
                .min_by_key(|k| k.index)
        });
        let dtk = dtk.ok_or(StatusWord::MacUnavailable)?;
        pboc_sam::pboc::tac_key(&dtk.key).map_err(|_| StatusWord::MacUnavailable)
    }

    /// Counts a MAC failure against a key.
    fn mac_failed(&mut self, purpose: KeyPurpose, index: u8) {
        if let Some(key) = self.state.key_mut(purpose, index) {
            key.mac_failures = key.mac_failures.saturating_add(1).min(MAX_MAC_FAILURES);
        }
    }

    /// Clears a key's failure count after a correct MAC.
    fn mac_passed(&mut self, purpose: KeyPurpose, index: u8) {
        if let Some(key) = self.state.key_mut(purpose, index) {
            key.mac_failures = 0;
        }
    }

    /// Four challenge bytes from the random source.
    fn challenge(&self) -> [u8; 4] {
        let mut random = [0u8; 4];
        self.random.fill(&mut random);
        random
    }
}

/// A PBOC MAC; `6F00` if the key length is unusable (never for a validated image).
fn mac(key: &DesKey, data: &[u8]) -> Result<[u8; 4], StatusWord> {
    pboc_sam::mac::pboc(key, data).map_err(|_| SW_INTERNAL)
}

/// Response bytes: the data and `9000`, or the status word alone.
fn respond(result: Result<Vec<u8>, StatusWord>) -> Vec<u8> {
    match result {
        Ok(mut data) => {
            data.extend_from_slice(&StatusWord::Success.to_bytes());
            data
        }
        Err(sw) => sw.to_bytes().to_vec(),
    }
}

/// The status word for a command that does not parse.
fn status_for(error: &CommandError) -> StatusWord {
    match error {
        CommandError::UnknownCommand { cla, ins, .. } => match (cla, ins) {
            (0x80, 0x50 | 0x54) => StatusWord::IncorrectP1P2,
            (0x00 | 0x80, _) => StatusWord::InsNotSupported,
            _ => StatusWord::ClaNotSupported,
        },
        CommandError::WrongClass { .. } => StatusWord::ClaNotSupported,
        CommandError::WrongInstruction { .. } => StatusWord::InsNotSupported,
        CommandError::WrongP1 { .. }
        | CommandError::WrongP2 { .. }
        | CommandError::InvalidParameter { .. } => StatusWord::IncorrectP1P2,
        CommandError::WrongDataLength { .. }
        | CommandError::DataLengthOutOfRange { .. }
        | CommandError::DataLengthNotInSteps { .. }
        | CommandError::MissingLe { .. }
        | CommandError::NeOutOfRange { .. } => StatusWord::WrongLength,
        CommandError::InvalidField { .. } | CommandError::InvalidPin { .. } => {
            StatusWord::Other(0x6A80)
        }
        _ => SW_INTERNAL,
    }
}
