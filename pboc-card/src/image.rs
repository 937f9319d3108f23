//! The card image: a complete, serde-serializable description of a virtual card's
//! persistent state, for personalization, test fixtures and simulators.
//!
//! [`VirtualCard::from_image`](crate::card::VirtualCard::from_image) loads an image and
//! [`VirtualCard::image`](crate::card::VirtualCard::image) takes one; the round trip is
//! exact. Volatile state (a pending transaction, the PIN-verified flag, an armed tear) is not
//! part of an image, as it would not survive a power cycle of a real card either.
//!
//! **An image holds the card's diversified keys and its PIN in clear.** It is a test and
//! personalization artifact: protect the files like key material (never commit production
//! images, keep them on the personalization host). In memory, keys are [`DesKey`]s (zeroized
//! on drop) and the PIN is a [`Pin`]; `Debug` shows key check values only and never the PIN.
//! Serialization writes both as text, and the intermediate strings are wiped where this
//! crate owns them (best effort: serde's own buffers are out of reach).
//!
//! The JSON layout (field names below are the serde names):
//!
//! ```text
//! { "aid": "A00000000386980701", "serial": "0000000000000001", "issuer_id": "...(8 bytes)",
//!   "card_type": 2, "app_version": 1, "valid_from": "20240101", "valid_until": "20341231",
//!   "deposit": 2000, "locked": false,
//!   "ed": null, "ep": { "balance": 0, "online_seq": 0, "offline_seq": 0,
//!                       "overdraw_limit": 0, "overdrawn": 0, "max_balance": 100000 },
//!   "keys": [ { "purpose": "DPK", "index": 1, "version": 1, "algorithm_id": 0,
//!               "key": "32 hex digits", "mac_failures": 0 }, ... ],
//!   "pin": { "digits": "123456", "tries_left": 3, "max_tries": 3 },
//!   "record_capacity": 10,
//!   "records": [ { "card_seq": 0, "overdraw_limit": 0, "amount": 4096, "transaction_type": 2,
//!                  "terminal": "001122334455", "date": "20111221", "time": "214822" } ],
//!   "capp_records": [], "proofs": [] }
//! ```
//!
//! Byte strings are upper-case hex (accepted in either case); BCD dates and times are their
//! hex digits, so `20111221` is the date 2011-12-21. Records are newest first.

use core::fmt;

use pboc_sam::{DesKey, DesKeyLength, Pin};
use serde::{Deserialize, Serialize};

use crate::application::Application;
use crate::command::{MAX_OVERDRAW_LIMIT, Select};
use crate::record::{DETAIL_SFI, TransactionDetail};
use crate::transaction_type::TransactionType;

/// Version of the image layout this crate writes and reads.
pub const IMAGE_FORMAT: u32 = 1;

/// The default application identifier of the PBOC ED/EP application in an image.
pub const DEFAULT_AID: [u8; 9] = [0xA0, 0x00, 0x00, 0x00, 0x03, 0x86, 0x98, 0x07, 0x01];

/// Default capacity of the transaction detail file (records).
pub const DEFAULT_RECORD_CAPACITY: u8 = 10;

/// Default number of PIN tries.
pub const DEFAULT_PIN_TRIES: u8 = 3;

/// The short file identifier of the public application data file (EF15), read with READ
/// BINARY; see [`VirtualCard`](crate::card::VirtualCard) for its layout.
pub const PUBLIC_DATA_SFI: u8 = 0x15;

/// What a card key is for.
///
/// Serialized by its usual abbreviation: `"DPK"`, `"DLK"`, `"DTK"`, `"DULK"`, `"DUK"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KeyPurpose {
    /// DPK: purchase, cash withdrawal and CAPP purchase (session key SESPK).
    #[serde(rename = "DPK")]
    Purchase,
    /// DLK: load (session key SESLK).
    #[serde(rename = "DLK")]
    Load,
    /// DTK: TAC (the TAC key is its left half XOR its right half).
    #[serde(rename = "DTK")]
    Tac,
    /// DULK: unload (ED).
    #[serde(rename = "DULK")]
    Unload,
    /// DUK: overdraw-limit update (ED).
    #[serde(rename = "DUK")]
    OverdrawUpdate,
}

impl KeyPurpose {
    /// All purposes, in serialization order.
    pub const ALL: [Self; 5] = [
        Self::Purchase,
        Self::Load,
        Self::Tac,
        Self::Unload,
        Self::OverdrawUpdate,
    ];

    /// The usual abbreviation (`"DPK"`, ...).
    pub fn abbreviation(self) -> &'static str {
        match self {
            Self::Purchase => "DPK",
            Self::Load => "DLK",
            Self::Tac => "DTK",
            Self::Unload => "DULK",
            Self::OverdrawUpdate => "DUK",
        }
    }
}

impl fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.abbreviation())
    }
}

/// One diversified card key with its metadata.
///
/// The card selects keys by purpose and index (the key index of the INITIALIZE command);
/// version and algorithm id are returned to the terminal. The card computes with DES/3DES
/// whatever the algorithm id says (SM4 keys are not supported). `Debug` shows the key's KCV.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardKey {
    /// What the key is for.
    pub purpose: KeyPurpose,
    /// Key index (from the INITIALIZE command).
    pub index: u8,
    /// Key version, returned by INITIALIZE.
    pub version: u8,
    /// Algorithm identifier, returned by INITIALIZE.
    pub algorithm_id: u8,
    /// The 16-byte diversified key (hex in an image).
    #[serde(with = "des_key_hex")]
    pub key: DesKey,
    /// Consecutive MAC failures with this key; at
    /// [`MAX_MAC_FAILURES`](crate::card::MAX_MAC_FAILURES) the key is blocked.
    #[serde(default)]
    pub mac_failures: u8,
}

impl PartialEq for CardKey {
    fn eq(&self, other: &Self) -> bool {
        self.purpose == other.purpose
            && self.index == other.index
            && self.version == other.version
            && self.algorithm_id == other.algorithm_id
            && self.mac_failures == other.mac_failures
            && self.key.ct_eq(&other.key)
    }
}

impl Eq for CardKey {}

/// The card's PIN and its try counter. `Debug` never shows the digits.
///
/// Stored in clear in an image (a simulator artifact; see the module documentation).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinState {
    /// The PIN (4 to 12 digits; a digit string in an image).
    #[serde(with = "pin_digits")]
    pub digits: Pin,
    /// Tries left before the PIN blocks (0 = blocked).
    pub tries_left: u8,
    /// Tries after a correct PIN (1..=15).
    pub max_tries: u8,
}

impl PartialEq for PinState {
    fn eq(&self, other: &Self) -> bool {
        self.tries_left == other.tries_left
            && self.max_tries == other.max_tries
            && self.digits.ct_eq(&other.digits)
    }
}

impl Eq for PinState {}

/// One application's balance and counters (ED or EP).
///
/// For the ED, `overdrawn` is the part of the overdraw limit in use: a debit takes the
/// balance first and the rest from the overdraw limit; a load repays `overdrawn` first.
/// The balance on the wire (GET BALANCE, INITIALIZE, MAC and TAC inputs) is `balance`. An
/// EP has no overdraw limit (both fields 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Purse {
    /// Balance in fen.
    pub balance: u32,
    /// Online transaction counter (load, unload, overdraw update): the seq the next one
    /// uses.
    pub online_seq: u16,
    /// Offline transaction counter (purchase, cash withdrawal, CAPP purchase).
    pub offline_seq: u16,
    /// Overdraw limit in fen (ED only; at most 0xFFFFFF).
    #[serde(default)]
    pub overdraw_limit: u32,
    /// Overdraw in use, in fen (ED only).
    #[serde(default)]
    pub overdrawn: u32,
    /// Largest balance a load may reach, in fen.
    pub max_balance: u32,
}

impl Purse {
    /// An application with `balance`, counters at 0, no overdraw and the given maximum.
    pub fn new(balance: u32, max_balance: u32) -> Self {
        Self {
            balance,
            online_seq: 0,
            offline_seq: 0,
            overdraw_limit: 0,
            overdrawn: 0,
            max_balance,
        }
    }

    /// What a debit may take: the balance plus the unused overdraw limit.
    pub fn available(&self) -> u64 {
        u64::from(self.balance) + u64::from(self.overdraw_limit.saturating_sub(self.overdrawn))
    }
}

/// A transaction detail record as stored in an image (the fields of
/// [`TransactionDetail`], with the type as its code and byte strings as hex).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordImage {
    /// Card transaction seq.
    pub card_seq: u16,
    /// Overdraw limit in fen.
    pub overdraw_limit: u32,
    /// Amount in fen.
    pub amount: u32,
    /// Transaction type code (`01`..=`09`).
    pub transaction_type: u8,
    /// Terminal id.
    #[serde(with = "hex_array")]
    pub terminal: [u8; 6],
    /// Date, BCD `YYYYMMDD`.
    #[serde(with = "hex_array")]
    pub date: [u8; 4],
    /// Time, BCD `hhmmss`.
    #[serde(with = "hex_array")]
    pub time: [u8; 3],
}

impl From<&TransactionDetail> for RecordImage {
    fn from(r: &TransactionDetail) -> Self {
        Self {
            card_seq: r.card_seq,
            overdraw_limit: r.overdraw_limit,
            amount: r.amount,
            transaction_type: r.transaction_type.code(),
            terminal: r.terminal,
            date: r.date,
            time: r.time,
        }
    }
}

impl RecordImage {
    /// The record, if its type code is valid.
    pub fn to_detail(&self) -> Option<TransactionDetail> {
        Some(TransactionDetail {
            card_seq: self.card_seq,
            overdraw_limit: self.overdraw_limit,
            amount: self.amount,
            transaction_type: TransactionType::from_code(self.transaction_type)?,
            terminal: self.terminal,
            date: self.date,
            time: self.time,
        })
    }
}

/// A record of a CAPP (composite application) file, written by UPDATE CAPP DATA CACHE and
/// committed by the DEBIT of the CAPP purchase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CappRecord {
    /// Short file identifier (1..=30, not 0x15 or 0x18).
    pub sfi: u8,
    /// Record identifier (P1 of UPDATE CAPP DATA CACHE, record number of READ RECORD).
    pub record_id: u8,
    /// Content, 1..=255 bytes.
    #[serde(with = "hex_vec")]
    pub data: Vec<u8>,
}

/// The MAC and TAC of the last completed transaction of one type, as GET TRANSACTION PROOF
/// returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredProof {
    /// Transaction type code.
    pub transaction_type: u8,
    /// Card transaction seq of the transaction (before increment).
    pub card_seq: u16,
    /// The MAC2 of the transaction (the card's for purchases, the issuer's for online
    /// transactions).
    #[serde(with = "hex_array")]
    pub mac: [u8; 4],
    /// The TAC.
    #[serde(with = "hex_array")]
    pub tac: [u8; 4],
}

/// A card's complete persistent state. See the module documentation for the layout and
/// for the handling of the clear keys and PIN it contains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardImage {
    /// Layout version, [`IMAGE_FORMAT`].
    pub format: u32,
    /// AID of the ED/EP application (5..=16 bytes).
    #[serde(with = "hex_vec")]
    pub aid: Vec<u8>,
    /// Application serial number, the card-level diversification factor.
    #[serde(with = "hex_array")]
    pub serial: [u8; 8],
    /// Issuer identification.
    #[serde(with = "hex_array")]
    pub issuer_id: [u8; 8],
    /// Card (application) type.
    pub card_type: u8,
    /// Issuer application version.
    pub app_version: u8,
    /// First day of validity, BCD `YYYYMMDD`.
    #[serde(with = "hex_array")]
    pub valid_from: [u8; 4],
    /// Last day of validity, BCD `YYYYMMDD`.
    #[serde(with = "hex_array")]
    pub valid_until: [u8; 4],
    /// Card deposit (押金) in fen, kept for the issuer; the card does not use it.
    pub deposit: u32,
    /// Application permanently locked: every application command answers `9303`.
    #[serde(default)]
    pub locked: bool,
    /// The electronic deposit, if the card has one.
    #[serde(default)]
    pub ed: Option<Purse>,
    /// The electronic purse, if the card has one.
    #[serde(default)]
    pub ep: Option<Purse>,
    /// Diversified card keys; `(purpose, index)` is unique.
    pub keys: Vec<CardKey>,
    /// The PIN; a card with a PIN needs VERIFY before any ED transaction.
    #[serde(default)]
    pub pin: Option<PinState>,
    /// Capacity of the cyclic transaction detail file (1..=255).
    pub record_capacity: u8,
    /// Transaction detail records, newest first.
    #[serde(default)]
    pub records: Vec<RecordImage>,
    /// CAPP file records.
    #[serde(default)]
    pub capp_records: Vec<CappRecord>,
    /// Proofs of the last completed transaction per type.
    #[serde(default)]
    pub proofs: Vec<StoredProof>,
}

/// Why an image cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The JSON text does not parse into an image.
    #[error("card image JSON: {0}")]
    Json(String),
    /// An unsupported layout version.
    #[error("card image: format {found} is not supported (expected {IMAGE_FORMAT})")]
    Format {
        /// The version found.
        found: u32,
    },
    /// A field with a value outside its range.
    #[error("card image: {field}: {problem}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
}

fn invalid(field: &'static str, problem: impl Into<String>) -> ImageError {
    ImageError::Invalid {
        field,
        problem: problem.into(),
    }
}

fn is_bcd(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| b >> 4 <= 9 && b & 0x0F <= 9)
}

impl CardImage {
    /// Parses an image from JSON and validates it.
    pub fn from_json(text: &str) -> Result<Self, ImageError> {
        let image: Self =
            serde_json::from_str(text).map_err(|e| ImageError::Json(e.to_string()))?;
        image.validate()?;
        Ok(image)
    }

    /// The image as pretty-printed JSON (contains the keys and PIN in clear).
    pub fn to_json(&self) -> Result<String, ImageError> {
        serde_json::to_string_pretty(self).map_err(|e| ImageError::Json(e.to_string()))
    }

    /// The purse of `application`, if the card has it.
    pub fn purse(&self, application: Application) -> Option<&Purse> {
        match application {
            Application::Ed => self.ed.as_ref(),
            Application::Ep => self.ep.as_ref(),
        }
    }

    /// The purse of `application`, mutably.
    pub fn purse_mut(&mut self, application: Application) -> Option<&mut Purse> {
        match application {
            Application::Ed => self.ed.as_mut(),
            Application::Ep => self.ep.as_mut(),
        }
    }

    /// The key of `purpose` with `index`, if present.
    pub fn key(&self, purpose: KeyPurpose, index: u8) -> Option<&CardKey> {
        self.keys
            .iter()
            .find(|k| k.purpose == purpose && k.index == index)
    }

    /// The key of `purpose` with `index`, mutably.
    pub fn key_mut(&mut self, purpose: KeyPurpose, index: u8) -> Option<&mut CardKey> {
        self.keys
            .iter_mut()
            .find(|k| k.purpose == purpose && k.index == index)
    }

    /// Checks every field: layout version, AID length, at least one application, EP
    /// without overdraw, ED limit within 24 bits, balances within their maximum, 16-byte
    /// keys unique by purpose and index with failure counts within the limit, a PIN with
    /// 1..=15 tries, BCD dates, record count within capacity and valid types, CAPP records
    /// and proofs.
    pub fn validate(&self) -> Result<(), ImageError> {
        if self.format != IMAGE_FORMAT {
            return Err(ImageError::Format { found: self.format });
        }
        if !(Select::MIN_AID_LEN..=Select::MAX_AID_LEN).contains(&self.aid.len()) {
            return Err(invalid(
                "aid",
                format!("must be 5..=16 bytes, found {}", self.aid.len()),
            ));
        }
        for (field, date) in [
            ("valid_from", &self.valid_from),
            ("valid_until", &self.valid_until),
        ] {
            if !is_bcd(date) {
                return Err(invalid(field, "must be BCD YYYYMMDD"));
            }
        }
        if self.ed.is_none() && self.ep.is_none() {
            return Err(invalid("ed/ep", "the card needs at least one application"));
        }
        if let Some(ep) = &self.ep
            && (ep.overdraw_limit != 0 || ep.overdrawn != 0)
        {
            return Err(invalid("ep", "an EP has no overdraw limit"));
        }
        if let Some(ed) = &self.ed
            && ed.overdraw_limit > MAX_OVERDRAW_LIMIT
        {
            return Err(invalid("ed.overdraw_limit", "must fit 3 bytes"));
        }
        for (field, purse) in [("ed", &self.ed), ("ep", &self.ep)] {
            if let Some(p) = purse
                && p.balance > p.max_balance
            {
                return Err(invalid(
                    field,
                    format!(
                        "balance {} exceeds max_balance {}",
                        p.balance, p.max_balance
                    ),
                ));
            }
        }
        self.validate_keys()?;
        if let Some(pin) = &self.pin
            && (!(1..=15).contains(&pin.max_tries) || pin.tries_left > pin.max_tries)
        {
            return Err(invalid(
                "pin",
                "max_tries must be 1..=15 and tries_left at most max_tries",
            ));
        }
        self.validate_files()
    }

    fn validate_keys(&self) -> Result<(), ImageError> {
        for (i, key) in self.keys.iter().enumerate() {
            if key.key.length() != DesKeyLength::Double {
                return Err(invalid(
                    "keys",
                    format!(
                        "{} index {:02X} must be 16 bytes, found {}",
                        key.purpose,
                        key.index,
                        key.key.len()
                    ),
                ));
            }
            if key.mac_failures > crate::card::MAX_MAC_FAILURES {
                return Err(invalid(
                    "keys",
                    format!(
                        "{} index {:02X}: mac_failures above {}",
                        key.purpose,
                        key.index,
                        crate::card::MAX_MAC_FAILURES
                    ),
                ));
            }
            let duplicate = self.keys[..i]
                .iter()
                .any(|k| k.purpose == key.purpose && k.index == key.index);
            if duplicate {
                return Err(invalid(
                    "keys",
                    format!("{} index {:02X} appears twice", key.purpose, key.index),
                ));
            }
        }
        Ok(())
    }

    fn validate_files(&self) -> Result<(), ImageError> {
        if self.record_capacity == 0 {
            return Err(invalid("record_capacity", "must be 1..=255"));
        }
        if self.records.len() > usize::from(self.record_capacity) {
            return Err(invalid(
                "records",
                format!(
                    "{} records exceed the capacity of {}",
                    self.records.len(),
                    self.record_capacity
                ),
            ));
        }
        if let Some(r) = self.records.iter().find(|r| r.to_detail().is_none()) {
            return Err(invalid(
                "records",
                format!("transaction type {:02X} is not 01..=09", r.transaction_type),
            ));
        }
        for (i, r) in self.capp_records.iter().enumerate() {
            if !(1..=30).contains(&r.sfi) || r.sfi == DETAIL_SFI || r.sfi == PUBLIC_DATA_SFI {
                return Err(invalid(
                    "capp_records",
                    format!("SFI {:02X} is not a CAPP file", r.sfi),
                ));
            }
            if !(1..=255).contains(&r.data.len()) {
                return Err(invalid("capp_records", "data must be 1..=255 bytes"));
            }
            if self.capp_records[..i]
                .iter()
                .any(|o| o.sfi == r.sfi && o.record_id == r.record_id)
            {
                return Err(invalid("capp_records", "a record appears twice"));
            }
        }
        for (i, p) in self.proofs.iter().enumerate() {
            if TransactionType::from_code(p.transaction_type).is_none() {
                return Err(invalid(
                    "proofs",
                    format!("transaction type {:02X} is not 01..=09", p.transaction_type),
                ));
            }
            if self.proofs[..i]
                .iter()
                .any(|o| o.transaction_type == p.transaction_type)
            {
                return Err(invalid("proofs", "one proof per transaction type"));
            }
        }
        Ok(())
    }
}

/// Serde for `[u8; N]` as hex text.
pub(crate) mod hex_array {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer, const N: usize>(
        value: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(value))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(text.as_bytes(), &mut out)
            .map_err(|e| D::Error::custom(format!("expected {} hex digits: {e}", 2 * N)))?;
        Ok(out)
    }
}

/// Serde for `Vec<u8>` as hex text.
pub(crate) mod hex_vec {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(value))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text.as_bytes()).map_err(|e| D::Error::custom(format!("hex: {e}")))
    }
}

/// Serde for a [`DesKey`] as hex text; the intermediate strings are wiped.
pub(crate) mod des_key_hex {
    use pboc_sam::DesKey;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub(crate) fn serialize<S: Serializer>(key: &DesKey, s: S) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(hex::encode_upper(key.as_bytes()));
        s.serialize_str(&text)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DesKey, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        DesKey::from_hex(&text).map_err(|e| D::Error::custom(e.to_string()))
    }
}

/// Serde for a [`Pin`] as its digit string; the intermediate strings are wiped.
pub(crate) mod pin_digits {
    use pboc_sam::Pin;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub(crate) fn serialize<S: Serializer>(pin: &Pin, s: S) -> Result<S::Ok, S::Error> {
        let text: Zeroizing<String> =
            Zeroizing::new(pin.digits().iter().map(|d| char::from(b'0' + d)).collect());
        s.serialize_str(&text)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Pin, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        Pin::new(&text).map_err(|e| D::Error::custom(e.to_string()))
    }
}
