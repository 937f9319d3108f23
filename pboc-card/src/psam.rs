//! The PSAM application: a virtual PSAM (purchase secure access module) as a merchant
//! terminal holds it.
//!
//! [`VirtualPsam`] answers the PSAM commands of [`crate::command`] byte for byte:
//!
//! | command | what the PSAM does |
//! |---|---|
//! | SELECT (`00 A4 04 00`) | selects its application by AID ([`DEFAULT_PSAM_AID`] unless set) |
//! | READ BINARY `00 B0 96 00 06` | returns the 6-byte terminal id |
//! | READ BINARY `00 B0 95 00 0E` | returns the 14-byte [`PsamInfo`] (serial, version ...) |
//! | INIT SAM FOR PURCHASE (`80 70`) | derives the card's DPK, SESPK and MAC1; returns terminal seq + MAC1 |
//! | CREDIT SAM FOR PURCHASE (`80 72`) | verifies the card's MAC2 with the kept SESPK |
//! | DELIVERY KEY (`80 1A`) | derives a temporary key from a master key and factors |
//! | CIPHER DATA (`80 FA`) | encrypts or MACs with the temporary key |
//!
//! # Keys
//!
//! The PSAM holds master keys by *usage* (the P1 of DELIVERY KEY) and *version* (its P2, and
//! the card's key version in INIT SAM FOR PURCHASE). INIT SAM FOR PURCHASE uses the key of
//! usage [`KEY_USAGE_PURCHASE`] (the MPK) with the card's key version and algorithm id.
//! These usage codes are this crate's choice (the standard is not available here); a real
//! PSAM's codes are whatever its issuer personalized.
//!
//! # Diversification order (INIT SAM FOR PURCHASE)
//!
//! The command carries the card application serial first and then further 8-byte factors.
//! This crate reads that list as going *outwards from the card*: the factor right after the
//! serial is the level just above the card (e.g. the city), the last one the outermost
//! (e.g. the province or group). Keys are derived outermost first and the card serial last,
//! as [`pboc_sam::pboc::diversify_path`] documents, so the PSAM derives
//! `diversify_path(MPK, [last factor, .., first further factor, card serial])`
//! ([`init_sam_diversification_path`]). Terminals that keep their issuer factors outermost
//! first (as the issuer does) put them on the wire with [`init_sam_extra_factors`]. With one
//! further factor (the usual two-level scheme) both readings agree.
//!
//! DELIVERY KEY applies its factors in the order sent (outermost first, the card serial last).
//!
//! # Session and counters
//!
//! INIT SAM FOR PURCHASE uses the terminal transaction counter for the terminal seq it
//! returns and then advances it by one (wrapping at `u32::MAX`); the session key (SESPK) and
//! the amount are kept for the following CREDIT SAM FOR PURCHASE, which ends the session
//! whatever its result. Only the low two bytes of the terminal seq enter SESPK.
//!
//! # CIPHER DATA
//!
//! The temporary key of DELIVERY KEY is the diversified key (16 bytes), except for a master of
//! usage [`KEY_USAGE_TAC`]: there it is the card's TAC key (left half XOR right half of the
//! DTK, 8 bytes), so that a clearing center recomputes a TAC with DELIVERY KEY (TAC master,
//! card serial) and CIPHER DATA `05` (zero IV, TAC input). MACs are PBOC MACs (padding
//! `80 00..`, 4 bytes): single-DES CBC for an 8-byte key, single DES with the left half and
//! triple DES on the last block for a 16-byte key.
//!
//! | P1 | data | result |
//! |---|---|---|
//! | `00` encrypt | a multiple of 8 bytes | DES/3DES-ECB of the data |
//! | `05` MAC, one go | IV (8) then the message | the 4-byte MAC |
//! | `07` MAC, first part | IV (8) then whole blocks | none (chain kept) |
//! | `03` MAC, next part | whole blocks | none (chain kept) |
//! | `01` MAC, last part | the rest of the message (any length) | the 4-byte MAC |
//!
//! # Status words
//!
//! As on the card: `6700` wrong length (and malformed APDUs), `6A86` bad P1/P2, `6D00` unknown
//! instruction, `6E00` unknown class, `6985` out of order (CREDIT SAM without INIT SAM, CIPHER
//! DATA without DELIVERY KEY, a MAC part without its first part), `6A88` key not found,
//! `6A82` file not found, `9302` MAC2 invalid, `6A80` an invalid data field (e.g. an unknown
//! transaction type), `6F00` an internal error that should never happen.

use core::fmt;

use pboc_sam::cipher::{self, Mode};
use pboc_sam::kcv::{Kcv, KcvLength};
use pboc_sam::key::{DesKey, Key};
use pboc_sam::{mac, pboc};
use zeroize::Zeroize;

use crate::apdu::{CommandApdu, ResponseApdu};
use crate::command::{
    CipherData, CipherMode, CommandError, CreditSamForPurchase, DeliveryKey, InitSamForPurchase,
    InitSamForPurchaseResponse, PsamCommand, PsamInfo, Select, parse_psam_command,
};
use crate::sw::StatusWord;

/// Key usage (DELIVERY KEY P1) of the purchase master key (MPK), used by INIT SAM FOR
/// PURCHASE. This crate's choice.
pub const KEY_USAGE_PURCHASE: u8 = 0x01;
/// Key usage (DELIVERY KEY P1) of the TAC master key (MTK): DELIVERY KEY with it yields the
/// card's TAC key. This crate's choice.
pub const KEY_USAGE_TAC: u8 = 0x02;
/// Algorithm id of triple DES, the only algorithm of the PBOC 2.0 purse keys.
pub const ALGORITHM_3DES: u8 = 0x00;
/// The AID the virtual PSAM answers to by default: `D1 56 00 00 01` (a proprietary
/// Chinese RID) followed by `"PSAM"` in ASCII. This crate's choice; set another with
/// [`VirtualPsam::set_aid`].
pub const DEFAULT_PSAM_AID: [u8; 9] = [0xD1, 0x56, 0x00, 0x00, 0x01, 0x50, 0x53, 0x41, 0x4D];

/// The status word of an internal error (`6F00`, no precise diagnosis).
const SW_INTERNAL: StatusWord = StatusWord::Other(0x6F00);
/// The status word of an invalid data field (`6A80`).
const SW_BAD_DATA: StatusWord = StatusWord::Other(0x6A80);

/// The order in which INIT SAM FOR PURCHASE diversifies the purchase master key: the further
/// factors from the last sent to the first, then the card serial (see the
/// [module documentation](self)).
pub fn init_sam_diversification_path(command: &InitSamForPurchase) -> Vec<[u8; 8]> {
    command
        .extra_factors
        .iter()
        .rev()
        .copied()
        .chain(core::iter::once(command.card_serial))
        .collect()
}

/// The further factors of INIT SAM FOR PURCHASE in wire order, from issuer factors given
/// outermost first (the order [`pboc_sam::pboc::diversify_path`] and the issuer use, without
/// the card serial): the list reversed.
pub fn init_sam_extra_factors(issuer_factors: &[[u8; 8]]) -> Vec<[u8; 8]> {
    issuer_factors.iter().rev().copied().collect()
}

/// What INIT SAM FOR PURCHASE computes for one card: the purchase session key and MAC1.
pub struct PurchaseMac1 {
    /// The purchase session key SESPK (8 bytes).
    pub sespk: DesKey,
    /// MAC1 over `amount | type | terminal | date | time`.
    pub mac1: [u8; 4],
}

impl fmt::Debug for PurchaseMac1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PurchaseMac1")
            .field("sespk", &self.sespk)
            .field("mac1", &"<redacted>")
            .finish()
    }
}

/// The PSAM's computation for INIT SAM FOR PURCHASE once the card's purchase key is known:
/// `SESPK = 3DES(DPK, card random | card offline seq | low 2 bytes of terminal_seq)` and
/// `MAC1 = PBOC-MAC(SESPK, amount | type | terminal | date | time)`.
///
/// # Errors
/// A [`pboc_sam::Error`] only if the MAC cannot be computed, which an 8-byte session key
/// never causes.
pub fn purchase_mac1(
    dpk: &DesKey,
    command: &InitSamForPurchase,
    terminal: &[u8; 6],
    terminal_seq: u32,
) -> Result<PurchaseMac1, pboc_sam::Error> {
    let sespk = pboc::purchase_session_key(
        dpk,
        &command.card_random,
        command.card_offline_seq,
        terminal_seq,
    );
    let input = pboc::purchase_mac1_input(
        command.amount,
        command.transaction_type.code(),
        terminal,
        &command.date,
        &command.time,
    );
    let mac1 = mac::pboc(&sespk, &input)?;
    Ok(PurchaseMac1 { sespk, mac1 })
}

/// A master key held by the PSAM.
struct KeySlot {
    usage: u8,
    version: u8,
    algorithm_id: u8,
    key: DesKey,
}

/// The state INIT SAM FOR PURCHASE leaves for CREDIT SAM FOR PURCHASE.
struct PurchaseSession {
    sespk: DesKey,
    amount: u32,
}

/// The temporary key of DELIVERY KEY and the MAC chain of CIPHER DATA.
struct Delivered {
    key: DesKey,
    chain: Option<[u8; 8]>,
}

impl Drop for Delivered {
    fn drop(&mut self) {
        if let Some(chain) = self.chain.as_mut() {
            chain.zeroize();
        }
    }
}

/// A virtual PSAM: the PSAM application of a merchant terminal, in memory.
///
/// Feed it command APDUs with [`VirtualPsam::process`] (or put it behind a
/// [`pboc_sam::transport::MemoryTransport`]: it is an [`pboc_sam::transport::ApduHandler`]).
/// Keys are zeroized on drop and never printed: `Debug` shows usage, version and check value.
pub struct VirtualPsam {
    aid: Vec<u8>,
    terminal_id: [u8; 6],
    info: PsamInfo,
    terminal_seq: u32,
    keys: Vec<KeySlot>,
    purchase: Option<PurchaseSession>,
    delivered: Option<Delivered>,
}

impl fmt::Debug for VirtualPsam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Slots<'a>(&'a [KeySlot]);
        impl fmt::Debug for Slots<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|s| {
                        (
                            format!("usage {:02X}", s.usage),
                            format!("version {:02X}", s.version),
                            s.key.kcv(KcvLength::UNIONPAY),
                        )
                    }))
                    .finish()
            }
        }
        f.debug_struct("VirtualPsam")
            .field("terminal_id", &hex::encode_upper(self.terminal_id))
            .field("terminal_seq", &self.terminal_seq)
            .field("keys", &Slots(&self.keys))
            .field("in_purchase", &self.purchase.is_some())
            .finish_non_exhaustive()
    }
}

impl VirtualPsam {
    /// A PSAM with this terminal id and public information, no keys, the terminal
    /// transaction counter at 1 and the AID [`DEFAULT_PSAM_AID`].
    pub fn new(terminal_id: [u8; 6], info: PsamInfo) -> Self {
        Self {
            aid: DEFAULT_PSAM_AID.to_vec(),
            terminal_id,
            info,
            terminal_seq: 1,
            keys: Vec::new(),
            purchase: None,
            delivered: None,
        }
    }

    /// Adds a master key of `usage` and `version` (replacing one already there).
    pub fn add_key(&mut self, usage: u8, version: u8, algorithm_id: u8, key: DesKey) -> &mut Self {
        self.keys
            .retain(|slot| !(slot.usage == usage && slot.version == version));
        self.keys.push(KeySlot {
            usage,
            version,
            algorithm_id,
            key,
        });
        self
    }

    /// Adds a purchase master key (usage [`KEY_USAGE_PURCHASE`], algorithm
    /// [`ALGORITHM_3DES`]) of `version`.
    pub fn add_purchase_key(&mut self, version: u8, key: DesKey) -> &mut Self {
        self.add_key(KEY_USAGE_PURCHASE, version, ALGORITHM_3DES, key)
    }

    /// Sets the terminal transaction counter: the terminal seq the next INIT SAM FOR
    /// PURCHASE uses.
    pub fn set_terminal_seq(&mut self, next: u32) -> &mut Self {
        self.terminal_seq = next;
        self
    }

    /// Sets the AID SELECT accepts.
    pub fn set_aid(&mut self, aid: &[u8]) -> &mut Self {
        self.aid = aid.to_vec();
        self
    }

    /// The terminal id.
    pub fn terminal_id(&self) -> [u8; 6] {
        self.terminal_id
    }

    /// The public information (serial, version ...).
    pub fn info(&self) -> PsamInfo {
        self.info
    }

    /// The terminal seq the next INIT SAM FOR PURCHASE will use.
    pub fn terminal_seq(&self) -> u32 {
        self.terminal_seq
    }

    /// The check value of the key of `usage` and `version`, if the PSAM has it.
    pub fn key_check_value(&self, usage: u8, version: u8) -> Option<Kcv> {
        self.find_key(usage, version)
            .map(|slot| slot.key.kcv(KcvLength::UNIONPAY))
    }

    /// Handles one command APDU and returns the response APDU (data, then SW1 SW2). Never
    /// panics: malformed input gets a status word.
    pub fn process(&mut self, capdu: &[u8]) -> Vec<u8> {
        self.respond(capdu).to_bytes()
    }

    fn respond(&mut self, capdu: &[u8]) -> ResponseApdu {
        let Ok(apdu) = CommandApdu::parse(capdu) else {
            return ResponseApdu::status(StatusWord::WrongLength);
        };
        let command = match parse_psam_command(&apdu) {
            Ok(command) => command,
            Err(error) => return ResponseApdu::status(status_for(&error)),
        };
        let result = match command {
            PsamCommand::Select(select) => self.select(&select),
            PsamCommand::GetResponse(_) => Err(StatusWord::ConditionsNotSatisfied),
            PsamCommand::ReadTerminalId(_) => Ok(self.terminal_id.to_vec()),
            PsamCommand::ReadPsamInfo(_) => Ok(self.info.to_bytes()),
            PsamCommand::ReadBinary(_) => Err(StatusWord::FileNotFound),
            PsamCommand::InitSamForPurchase(init) => self.init_sam_for_purchase(&init),
            PsamCommand::CreditSamForPurchase(credit) => self.credit_sam_for_purchase(&credit),
            PsamCommand::DeliveryKey(delivery) => self.delivery_key(&delivery),
            PsamCommand::CipherData(cipher) => self.cipher_data(&cipher),
        };
        match result {
            Ok(data) => ResponseApdu::success(data),
            Err(sw) => ResponseApdu::status(sw),
        }
    }

    fn find_key(&self, usage: u8, version: u8) -> Option<&KeySlot> {
        self.keys
            .iter()
            .find(|slot| slot.usage == usage && slot.version == version)
    }

    fn select(&mut self, select: &Select) -> Result<Vec<u8>, StatusWord> {
        if select.aid != self.aid {
            return Err(StatusWord::FileNotFound);
        }
        self.purchase = None;
        self.delivered = None;
        // FCI: 6F L 84 L AID.
        let aid_len = u8::try_from(self.aid.len()).map_err(|_| SW_INTERNAL)?;
        let mut fci = vec![0x6F, aid_len + 2, 0x84, aid_len];
        fci.extend_from_slice(&self.aid);
        Ok(fci)
    }

    fn init_sam_for_purchase(&mut self, init: &InitSamForPurchase) -> Result<Vec<u8>, StatusWord> {
        // A new INIT SAM ends any earlier session, whatever happens next.
        self.purchase = None;
        let slot = self
            .find_key(KEY_USAGE_PURCHASE, init.key_version)
            .filter(|slot| slot.algorithm_id == init.algorithm_id)
            .ok_or(StatusWord::KeyNotFound)?;
        let dpk = pboc::diversify_path(&slot.key, &init_sam_diversification_path(init));
        let terminal_seq = self.terminal_seq;
        let computed =
            purchase_mac1(&dpk, init, &self.terminal_id, terminal_seq).map_err(|_| SW_INTERNAL)?;
        self.terminal_seq = terminal_seq.wrapping_add(1);
        self.purchase = Some(PurchaseSession {
            sespk: computed.sespk,
            amount: init.amount,
        });
        Ok(InitSamForPurchaseResponse {
            terminal_seq,
            mac1: computed.mac1,
        }
        .to_bytes())
    }

    fn credit_sam_for_purchase(
        &mut self,
        credit: &CreditSamForPurchase,
    ) -> Result<Vec<u8>, StatusWord> {
        let session = self
            .purchase
            .take()
            .ok_or(StatusWord::ConditionsNotSatisfied)?;
        let expected = mac::pboc(&session.sespk, &pboc::purchase_mac2_input(session.amount))
            .map_err(|_| SW_INTERNAL)?;
        match mac::verify("purchase MAC2", &credit.mac2, &expected) {
            Ok(()) => Ok(Vec::new()),
            Err(_) => Err(StatusWord::MacInvalid),
        }
    }

    fn delivery_key(&mut self, delivery: &DeliveryKey) -> Result<Vec<u8>, StatusWord> {
        self.delivered = None;
        let slot = self
            .find_key(delivery.key_usage, delivery.key_version)
            .ok_or(StatusWord::KeyNotFound)?;
        let derived = pboc::diversify_path(&slot.key, &delivery.factors);
        let key = if delivery.key_usage == KEY_USAGE_TAC {
            pboc::tac_key(&derived).map_err(|_| SW_INTERNAL)?
        } else {
            derived
        };
        self.delivered = Some(Delivered { key, chain: None });
        Ok(Vec::new())
    }

    fn cipher_data(&mut self, cipher_data: &CipherData) -> Result<Vec<u8>, StatusWord> {
        let delivered = self
            .delivered
            .as_mut()
            .ok_or(StatusWord::ConditionsNotSatisfied)?;
        let data = cipher_data.data.as_slice();
        match cipher_data.mode {
            CipherMode::Encrypt => {
                if data.is_empty() || !data.len().is_multiple_of(8) {
                    return Err(StatusWord::WrongLength);
                }
                cipher::encrypt(&Key::Des(delivered.key.clone()), Mode::Ecb, data)
                    .map_err(|_| SW_INTERNAL)
            }
            CipherMode::MacWithIv => {
                delivered.chain = None;
                let (iv, message) = data
                    .split_first_chunk::<8>()
                    .ok_or(StatusWord::WrongLength)?;
                mac::pboc_with_iv(&delivered.key, iv, message)
                    .map(|m| m.to_vec())
                    .map_err(|_| SW_INTERNAL)
            }
            CipherMode::MacFirst => {
                delivered.chain = None;
                let (iv, blocks) = data
                    .split_first_chunk::<8>()
                    .ok_or(StatusWord::WrongLength)?;
                if !blocks.len().is_multiple_of(8) {
                    return Err(StatusWord::WrongLength);
                }
                delivered.chain = Some(chain_blocks(&delivered.key, *iv, blocks)?);
                Ok(Vec::new())
            }
            CipherMode::MacNext => {
                let chain = delivered.chain.ok_or(StatusWord::ConditionsNotSatisfied)?;
                if !data.len().is_multiple_of(8) {
                    delivered.chain = None;
                    return Err(StatusWord::WrongLength);
                }
                delivered.chain = Some(chain_blocks(&delivered.key, chain, data)?);
                Ok(Vec::new())
            }
            CipherMode::MacLast => {
                let chain = delivered
                    .chain
                    .take()
                    .ok_or(StatusWord::ConditionsNotSatisfied)?;
                mac::pboc_with_iv(&delivered.key, &chain, data)
                    .map(|m| m.to_vec())
                    .map_err(|_| SW_INTERNAL)
            }
        }
    }
}

impl pboc_sam::transport::ApduHandler for VirtualPsam {
    fn handle(&mut self, capdu: &[u8]) -> Vec<u8> {
        self.process(capdu)
    }
}

/// Continues a PBOC MAC chain over whole blocks: single-DES CBC under the left 8 bytes of the
/// key (for a 16-byte key the triple-DES step only comes on the last block).
fn chain_blocks(key: &DesKey, chain: [u8; 8], blocks: &[u8]) -> Result<[u8; 8], StatusWord> {
    if blocks.is_empty() {
        return Ok(chain);
    }
    let mut left = [0u8; 8];
    if let Some(bytes) = key.as_bytes().first_chunk::<8>() {
        left = *bytes;
    }
    let single = Key::Des(DesKey::single(left));
    left.zeroize();
    let mut out =
        cipher::encrypt(&single, Mode::Cbc { iv: &chain }, blocks).map_err(|_| SW_INTERNAL)?;
    let last = out.last_chunk::<8>().copied().ok_or(SW_INTERNAL);
    out.zeroize();
    last
}

/// The status word for a command that does not parse.
fn status_for(error: &CommandError) -> StatusWord {
    match error {
        CommandError::WrongClass { .. } => StatusWord::ClaNotSupported,
        CommandError::WrongInstruction { .. } => StatusWord::InsNotSupported,
        CommandError::UnknownCommand { cla, .. } => {
            if *cla == 0x00 || *cla == 0x80 {
                StatusWord::InsNotSupported
            } else {
                StatusWord::ClaNotSupported
            }
        }
        CommandError::WrongP1 { .. }
        | CommandError::WrongP2 { .. }
        | CommandError::InvalidParameter { .. } => StatusWord::IncorrectP1P2,
        CommandError::InvalidField { .. } | CommandError::InvalidPin { .. } => SW_BAD_DATA,
        _ => StatusWord::WrongLength,
    }
}
