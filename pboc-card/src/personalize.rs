//! Personalization: an issuer profile and a serial number become a [`CardImage`], and the
//! quality check (卡质量检验) proves the image works with the issuer's master keys.
//!
//! An [`IssuerProfile`] (serde, `deny_unknown_fields`, shaped for TOML or JSON) gives the
//! issuer id, card type, validity, deposit, the applications with their initial balance,
//! the master keys in clear (DPK, DLK, DTK required; DULK, DUK optional) with index,
//! version and algorithm id, optional issuer/city diversification factors, the initial PIN
//! and the size of the record file. [`SerialAllocator`] hands out application serials from
//! an issuer prefix and a counter. [`personalize`] derives each card key with
//! [`pboc_sam::pboc::diversify_path`] over the profile's factors then the serial (outermost
//! first, the card level last) and writes the image.
//!
//! **The profile holds master keys in clear**, the image the derived card keys: both are
//! test and personalization-bureau artifacts to be protected like key material. `Debug`
//! shows key check values only.
//!
//! HSM path: not provided. [`pboc_sam::SecurityModule::pboc_derive_key`] returns a
//! [`KeyRef`](pboc_sam::KeyRef), a cryptogram under the HSM's LMK that no card can use; a
//! production bureau would have the HSM export each derived key under a transport key
//! shared with the card (or the card OS's secure personalization channel) instead of
//! building a clear image, which is out of scope for this simulator.
//!
//! [`quality_check`] loads a fresh [`VirtualCard`] from an image (the image itself is not
//! changed) and plays both the issuer host (MAC1 check, MAC2) and the PSAM (SESPK, MAC1)
//! with keys derived from the profile's masters, checking the public data, balances, a load
//! per DLK index, a purchase per DPK index (1 fen each), the TACs, the records and the
//! final balance. Each step passes or fails with a reason.

use core::fmt;

use pboc_sam::pboc::{
    diversify_path, load_mac1_input, load_mac2_input, load_session_key, load_tac_input,
    purchase_mac1_input, purchase_mac2_input, purchase_session_key, purchase_tac_input, tac_key,
};
use pboc_sam::{CounterRandom, DesKey, Pin};
use serde::{Deserialize, Serialize};

use crate::apdu::CommandApdu;
use crate::application::Application;
use crate::card::VirtualCard;
use crate::command::{
    BinaryTarget, CreditForLoad, CreditForLoadResponse, DebitForPurchase, DebitForPurchaseResponse,
    GetBalance, GetBalanceResponse, InitializeForLoad, InitializeForLoadResponse,
    InitializeForPurchase, InitializeForPurchaseResponse, ReadBinary, Select, VerifyPin,
};
use crate::image::{
    CardImage, CardKey, DEFAULT_AID, DEFAULT_PIN_TRIES, DEFAULT_RECORD_CAPACITY, IMAGE_FORMAT,
    ImageError, KeyPurpose, PUBLIC_DATA_SFI, PinState, Purse, des_key_hex, hex_array, hex_vec,
    pin_digits,
};
use crate::record::TransactionDetail;
use crate::sw::StatusWord;
use crate::transaction_type::TransactionType;

/// An application (ED or EP) as issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurseProfile {
    /// Balance at issue, in fen.
    #[serde(default)]
    pub initial_balance: u32,
    /// Overdraw limit in fen (ED only; 0 for an EP).
    #[serde(default)]
    pub overdraw_limit: u32,
    /// Largest balance a load may reach, in fen.
    pub max_balance: u32,
}

/// An issuer master key, from which card keys are diversified. `Debug` shows the KCV.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterKey {
    /// What the derived card key is for.
    pub purpose: KeyPurpose,
    /// Key index on the card.
    pub index: u8,
    /// Key version on the card.
    pub version: u8,
    /// Algorithm id on the card.
    #[serde(default)]
    pub algorithm_id: u8,
    /// The master key in clear (hex; 16 or 24 bytes).
    #[serde(with = "des_key_hex")]
    pub key: DesKey,
}

/// The initial PIN. `Debug` does not show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinProfile {
    /// The PIN every card starts with (4..=12 digits).
    #[serde(with = "pin_digits")]
    pub initial: Pin,
    /// Tries before the PIN blocks (1..=15).
    #[serde(default = "default_pin_tries")]
    pub max_tries: u8,
}

fn default_pin_tries() -> u8 {
    DEFAULT_PIN_TRIES
}

fn default_aid() -> Vec<u8> {
    DEFAULT_AID.to_vec()
}

fn default_app_version() -> u8 {
    0x01
}

fn default_record_capacity() -> u8 {
    DEFAULT_RECORD_CAPACITY
}

/// Everything an issuer decides about the cards of one product.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerProfile {
    /// Issuer identification (8 bytes, hex).
    #[serde(with = "hex_array")]
    pub issuer_id: [u8; 8],
    /// Card type.
    pub card_type: u8,
    /// Issuer application version.
    #[serde(default = "default_app_version")]
    pub app_version: u8,
    /// AID of the ED/EP application (hex; default [`DEFAULT_AID`]).
    #[serde(default = "default_aid", with = "hex_vec")]
    pub aid: Vec<u8>,
    /// First day of validity, `YYYYMMDD`.
    #[serde(with = "hex_array")]
    pub valid_from: [u8; 4],
    /// Last day of validity, `YYYYMMDD`.
    #[serde(with = "hex_array")]
    pub valid_until: [u8; 4],
    /// Deposit in fen.
    #[serde(default)]
    pub deposit: u32,
    /// The electronic deposit, if issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ed: Option<PurseProfile>,
    /// The electronic purse, if issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ep: Option<PurseProfile>,
    /// Diversification factors applied before the card serial, outermost first (e.g. a city
    /// code); usually empty or one.
    #[serde(default, with = "hex_factors")]
    pub diversification_factors: Vec<[u8; 8]>,
    /// Master keys; `(purpose, index)` unique; DPK, DLK and DTK required.
    pub master_keys: Vec<MasterKey>,
    /// The initial PIN, if the cards have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<PinProfile>,
    /// Capacity of the transaction detail file.
    #[serde(default = "default_record_capacity")]
    pub record_capacity: u8,
}

/// Why personalization failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PersonalizeError {
    /// The profile is inconsistent.
    #[error("issuer profile: {0}")]
    Profile(String),
    /// The serial allocator has no serial left.
    #[error("serial allocator: no serial left after prefix {prefix} and counter {next}")]
    SerialsExhausted {
        /// The prefix, hex.
        prefix: String,
        /// The counter value that does not fit.
        next: u64,
    },
    /// The serial prefix is longer than 7 bytes.
    #[error("serial allocator: prefix must be 0..=7 bytes, found {0}")]
    PrefixTooLong(usize),
    /// The resulting image is invalid.
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl IssuerProfile {
    /// Parses a profile from JSON.
    pub fn from_json(text: &str) -> Result<Self, PersonalizeError> {
        serde_json::from_str(text).map_err(|e| PersonalizeError::Profile(e.to_string()))
    }

    /// The master key of `purpose` with `index`.
    pub fn master(&self, purpose: KeyPurpose, index: u8) -> Option<&MasterKey> {
        self.master_keys
            .iter()
            .find(|k| k.purpose == purpose && k.index == index)
    }

    /// The master keys of `purpose`, by index.
    pub fn masters(&self, purpose: KeyPurpose) -> Vec<&MasterKey> {
        let mut keys: Vec<&MasterKey> = self
            .master_keys
            .iter()
            .filter(|k| k.purpose == purpose)
            .collect();
        keys.sort_by_key(|k| k.index);
        keys
    }

    /// The card key diversified from `master` for the card with `serial`:
    /// `diversify_path(master, [factors.., serial])`.
    pub fn derive(&self, master: &MasterKey, serial: &[u8; 8]) -> DesKey {
        let mut factors = self.diversification_factors.clone();
        factors.push(*serial);
        diversify_path(&master.key, &factors)
    }

    /// Checks the profile: an application, DPK/DLK/DTK masters, unique `(purpose,
    /// index)`, 16- or 24-byte masters.
    pub fn validate(&self) -> Result<(), PersonalizeError> {
        let problem = |text: String| Err(PersonalizeError::Profile(text));
        if self.ed.is_none() && self.ep.is_none() {
            return problem("issue at least one application (ed or ep)".into());
        }
        for purpose in [KeyPurpose::Purchase, KeyPurpose::Load, KeyPurpose::Tac] {
            if self.masters(purpose).is_empty() {
                return problem(format!("a {purpose} master key is required"));
            }
        }
        for (i, key) in self.master_keys.iter().enumerate() {
            if key.key.len() < 16 {
                return problem(format!(
                    "{} master index {:02X} must be 16 or 24 bytes",
                    key.purpose, key.index
                ));
            }
            if self.master_keys[..i]
                .iter()
                .any(|k| k.purpose == key.purpose && k.index == key.index)
            {
                return problem(format!(
                    "{} master index {:02X} appears twice",
                    key.purpose, key.index
                ));
            }
        }
        Ok(())
    }
}

/// Hands out 8-byte application serials: the issuer prefix, then the counter big-endian in
/// the remaining bytes. Serializable so the issuer can persist where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialAllocator {
    /// Issuer prefix, 0..=7 bytes (hex).
    #[serde(with = "hex_vec")]
    pub prefix: Vec<u8>,
    /// The counter value of the next serial.
    pub next: u64,
}

impl SerialAllocator {
    /// An allocator starting at `next`.
    pub fn new(prefix: &[u8], next: u64) -> Result<Self, PersonalizeError> {
        if prefix.len() > 7 {
            return Err(PersonalizeError::PrefixTooLong(prefix.len()));
        }
        Ok(Self {
            prefix: prefix.to_vec(),
            next,
        })
    }

    /// The serial [`SerialAllocator::allocate`] would return, without taking it.
    pub fn peek(&self) -> Result<[u8; 8], PersonalizeError> {
        let exhausted = || PersonalizeError::SerialsExhausted {
            prefix: hex::encode_upper(&self.prefix),
            next: self.next,
        };
        if self.prefix.len() > 7 {
            return Err(PersonalizeError::PrefixTooLong(self.prefix.len()));
        }
        let counter_len = 8 - self.prefix.len();
        let counter = self.next.to_be_bytes();
        let (high, low) = counter.split_at(8 - counter_len);
        if high.iter().any(|b| *b != 0) {
            return Err(exhausted());
        }
        let mut serial = [0u8; 8];
        for (d, s) in serial.iter_mut().zip(self.prefix.iter().chain(low)) {
            *d = *s;
        }
        Ok(serial)
    }

    /// The next serial; the counter advances.
    pub fn allocate(&mut self) -> Result<[u8; 8], PersonalizeError> {
        let serial = self.peek()?;
        self.next = self.next.saturating_add(1);
        Ok(serial)
    }
}

/// The image of a new card with `serial`: keys diversified from the profile's masters,
/// balances, counters at 0, the initial PIN, no records.
pub fn personalize(
    profile: &IssuerProfile,
    serial: [u8; 8],
) -> Result<CardImage, PersonalizeError> {
    profile.validate()?;
    let keys = profile
        .master_keys
        .iter()
        .map(|master| CardKey {
            purpose: master.purpose,
            index: master.index,
            version: master.version,
            algorithm_id: master.algorithm_id,
            key: profile.derive(master, &serial),
            mac_failures: 0,
        })
        .collect();
    let purse = |p: &PurseProfile| Purse {
        overdraw_limit: p.overdraw_limit,
        ..Purse::new(p.initial_balance, p.max_balance)
    };
    let image = CardImage {
        format: IMAGE_FORMAT,
        aid: profile.aid.clone(),
        serial,
        issuer_id: profile.issuer_id,
        card_type: profile.card_type,
        app_version: profile.app_version,
        valid_from: profile.valid_from,
        valid_until: profile.valid_until,
        deposit: profile.deposit,
        locked: false,
        ed: profile.ed.as_ref().map(purse),
        ep: profile.ep.as_ref().map(purse),
        keys,
        pin: profile.pin.as_ref().map(|p| PinState {
            digits: p.initial.clone(),
            tries_left: p.max_tries,
            max_tries: p.max_tries,
        }),
        record_capacity: profile.record_capacity,
        records: Vec::new(),
        capp_records: Vec::new(),
        proofs: Vec::new(),
    };
    image.validate()?;
    Ok(image)
}

/// Personalizes the next card: the allocator advances only when the image is made.
pub fn personalize_next(
    profile: &IssuerProfile,
    serials: &mut SerialAllocator,
) -> Result<CardImage, PersonalizeError> {
    let image = personalize(profile, serials.peek()?)?;
    serials.allocate()?;
    Ok(image)
}

/// The outcome of one quality-check step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The step passed.
    Pass,
    /// The step failed, with the reason.
    Fail(String),
}

/// One quality-check step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityStep {
    /// What was checked, e.g. `"EP purchase (DPK 01)"`.
    pub name: String,
    /// Pass or fail.
    pub outcome: StepOutcome,
}

/// The result of [`quality_check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityReport {
    /// The application serial checked.
    pub serial: [u8; 8],
    /// The steps, in order.
    pub steps: Vec<QualityStep>,
}

impl QualityReport {
    /// Whether every step passed (and there was at least one).
    pub fn passed(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.outcome == StepOutcome::Pass)
    }

    /// The first failed step.
    pub fn first_failure(&self) -> Option<&QualityStep> {
        self.steps.iter().find(|s| s.outcome != StepOutcome::Pass)
    }

    /// The step called `name`.
    pub fn step(&self, name: &str) -> Option<&QualityStep> {
        self.steps.iter().find(|s| s.name == name)
    }

    fn record(&mut self, name: String, result: Result<(), String>) -> bool {
        let passed = result.is_ok();
        self.steps.push(QualityStep {
            name,
            outcome: match result {
                Ok(()) => StepOutcome::Pass,
                Err(reason) => StepOutcome::Fail(reason),
            },
        });
        passed
    }
}

impl fmt::Display for QualityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        writeln!(
            f,
            "quality check of {}: {verdict}",
            hex::encode_upper(self.serial)
        )?;
        for step in &self.steps {
            match &step.outcome {
                StepOutcome::Pass => writeln!(f, "  pass  {}", step.name)?,
                StepOutcome::Fail(reason) => writeln!(f, "  FAIL  {}: {reason}", step.name)?,
            }
        }
        Ok(())
    }
}

/// Terminal id the quality check uses ("QC" then 000001).
pub const QC_TERMINAL: [u8; 6] = [0x51, 0x43, 0x00, 0x00, 0x00, 0x01];
/// Amount of each quality-check purchase, in fen; each load is this times the number of
/// DPK masters.
pub const QC_AMOUNT: u32 = 1;
/// Terminal transaction seq of the quality-check purchases.
pub const QC_TERMINAL_SEQ: u32 = 1;

/// Sends a command and returns the response data, or why it did not succeed.
fn send(card: &mut VirtualCard, name: &str, apdu: &CommandApdu) -> Result<Vec<u8>, String> {
    let response = card
        .exchange(apdu)
        .ok_or_else(|| format!("{name}: no response"))?;
    if response.sw == StatusWord::Success {
        Ok(response.data)
    } else {
        Err(format!("{name} answered {}", response.sw))
    }
}

fn verify(what: &str, received: &[u8; 4], computed: &[u8; 4], key: &str) -> Result<(), String> {
    pboc_sam::mac::verify("quality check", received, computed).map_err(|_| {
        format!(
            "{what} {} does not verify with the {key} derived from the master key (expected {})",
            hex::encode_upper(received),
            hex::encode_upper(computed)
        )
    })
}

fn mac(key: &DesKey, data: &[u8]) -> Result<[u8; 4], String> {
    pboc_sam::mac::pboc(key, data).map_err(|e| e.to_string())
}

/// Quality-checks `image` against the masters of `profile` (see the module documentation).
pub fn quality_check(image: &CardImage, profile: &IssuerProfile) -> QualityReport {
    let mut report = QualityReport {
        serial: image.serial,
        steps: Vec::new(),
    };
    let random = CounterRandom::new(u64::from_be_bytes(image.serial));
    let mut card = match VirtualCard::from_image(image, Box::new(random)) {
        Ok(card) => card,
        Err(e) => {
            report.record("image".into(), Err(e.to_string()));
            return report;
        }
    };
    report.record("image".into(), Ok(()));
    let qc = QualityCheck {
        profile,
        serial: image.serial,
        date: image.valid_from,
        time: [0x00, 0x00, 0x00],
    };
    let public = qc.public_data(&mut card);
    if !report.record("public data".into(), public) {
        return report;
    }
    let mut expected_records = Vec::new();
    for application in [Application::Ep, Application::Ed] {
        let Some(purse) = image.purse(application).copied() else {
            continue;
        };
        let label = match application {
            Application::Ed => "ED",
            Application::Ep => "EP",
        };
        if application == Application::Ed && image.pin.is_some() {
            let verified = qc.verify_pin(&mut card);
            if !report.record("ED verify PIN".into(), verified) {
                continue;
            }
        }
        let balance = qc.balance(&mut card, application, purse.balance);
        report.record(format!("{label} balance"), balance);
        let mut expected_balance = purse.balance;
        // Each load covers all the purchases, so a card issued empty can still be checked.
        let purchases = profile.masters(KeyPurpose::Purchase).len();
        let load_amount = QC_AMOUNT.saturating_mul(u32::try_from(purchases.max(1)).unwrap_or(1));
        let purchase_first = purse.balance.saturating_add(load_amount) > purse.max_balance;
        for pass in 0..2 {
            let loads = (pass == 0) != purchase_first;
            let (purpose, what) = if loads {
                (KeyPurpose::Load, "load")
            } else {
                (KeyPurpose::Purchase, "purchase")
            };
            for master in profile.masters(purpose) {
                let name = format!("{label} {what} ({purpose} {:02X})", master.index);
                let result = if loads {
                    qc.load(&mut card, application, master, load_amount)
                } else {
                    qc.purchase(&mut card, application, master)
                };
                let result = result.map(|record| {
                    expected_records.insert(0, record);
                    if loads {
                        expected_balance = expected_balance.saturating_add(load_amount);
                    } else {
                        expected_balance = expected_balance.saturating_sub(QC_AMOUNT);
                    }
                });
                report.record(name, result);
            }
        }
        let final_balance = qc.balance(&mut card, application, expected_balance);
        report.record(format!("{label} final balance"), final_balance);
    }
    let records = qc.records(&mut card, &expected_records, image);
    report.record("records".into(), records);
    report
}

/// The issuer/PSAM side of the quality check.
struct QualityCheck<'a> {
    profile: &'a IssuerProfile,
    serial: [u8; 8],
    date: [u8; 4],
    time: [u8; 3],
}

impl QualityCheck<'_> {
    fn public_data(&self, card: &mut VirtualCard) -> Result<(), String> {
        let select = Select {
            aid: self.profile.aid.clone(),
        };
        send(card, "SELECT", &select.to_apdu())?;
        let read = ReadBinary {
            target: BinaryTarget::ShortEf {
                sfi: PUBLIC_DATA_SFI,
                offset: 0,
            },
            le: 0,
        };
        let data = send(card, "READ BINARY EF15", &read.to_apdu())?;
        let expect =
            |what: &str, range: core::ops::Range<usize>, value: &[u8]| match data.get(range) {
                Some(found) if found == value => Ok(()),
                found => Err(format!(
                    "EF15 {what} is {}, expected {}",
                    found.map(hex::encode_upper).unwrap_or_default(),
                    hex::encode_upper(value)
                )),
            };
        expect("issuer id", 0..8, &self.profile.issuer_id)?;
        expect("card type", 8..9, &[self.profile.card_type])?;
        expect("serial", 12..20, &self.serial)?;
        expect("validity start", 20..24, &self.profile.valid_from)?;
        expect("validity end", 24..28, &self.profile.valid_until)
    }

    fn verify_pin(&self, card: &mut VirtualCard) -> Result<(), String> {
        let pin = self
            .profile
            .pin
            .as_ref()
            .ok_or("the card has a PIN but the profile has none")?;
        let digits: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(
            pin.initial
                .digits()
                .iter()
                .map(|d| char::from(b'0' + d))
                .collect(),
        );
        let verify = VerifyPin::from_digits(&digits).map_err(|e| e.to_string())?;
        send(card, "VERIFY", &verify.to_apdu()).map(|_| ())
    }

    fn balance(
        &self,
        card: &mut VirtualCard,
        application: Application,
        expected: u32,
    ) -> Result<(), String> {
        let data = send(card, "GET BALANCE", &GetBalance { application }.to_apdu())?;
        let balance = GetBalanceResponse::parse(&data)
            .map_err(|e| e.to_string())?
            .balance;
        if balance == expected {
            Ok(())
        } else {
            Err(format!("balance is {balance} fen, expected {expected}"))
        }
    }

    /// The TAC key the card uses with key `index`: DTK of that index, else the lowest.
    fn tac_key(&self, index: u8) -> Result<DesKey, String> {
        let dtk = self
            .profile
            .master(KeyPurpose::Tac, index)
            .or_else(|| self.profile.masters(KeyPurpose::Tac).into_iter().next())
            .ok_or("the profile has no DTK master")?;
        tac_key(&self.profile.derive(dtk, &self.serial)).map_err(|e| e.to_string())
    }

    fn check_key_info(master: &MasterKey, version: u8, algorithm_id: u8) -> Result<(), String> {
        if (version, algorithm_id) == (master.version, master.algorithm_id) {
            Ok(())
        } else {
            Err(format!(
                "card reports key version {version:02X} algorithm {algorithm_id:02X}, \
                 the profile {:02X} {:02X}",
                master.version, master.algorithm_id
            ))
        }
    }

    fn load(
        &self,
        card: &mut VirtualCard,
        application: Application,
        master: &MasterKey,
        amount: u32,
    ) -> Result<TransactionDetail, String> {
        let tx_type = TransactionType::load(application);
        let init = InitializeForLoad {
            application,
            key_index: master.index,
            amount,
            terminal: QC_TERMINAL,
        };
        let data = send(card, InitializeForLoad::NAME, &init.to_apdu())?;
        let r = InitializeForLoadResponse::parse(&data).map_err(|e| e.to_string())?;
        Self::check_key_info(master, r.key_version, r.algorithm_id)?;
        // The issuer host's side: DLK from the master, MAC1 check, MAC2.
        let dlk = self.profile.derive(master, &self.serial);
        let session = load_session_key(&dlk, &r.random, r.online_seq);
        let mac1 = mac(
            &session,
            &load_mac1_input(r.balance, amount, tx_type.code(), &QC_TERMINAL),
        )?;
        verify("MAC1", &r.mac1, &mac1, "DLK")?;
        let mac2 = mac(
            &session,
            &load_mac2_input(amount, tx_type.code(), &QC_TERMINAL, &self.date, &self.time),
        )?;
        let credit = CreditForLoad {
            date: self.date,
            time: self.time,
            mac2,
        };
        let data = send(card, CreditForLoad::NAME, &credit.to_apdu())?;
        let tac = CreditForLoadResponse::parse(&data)
            .map_err(|e| e.to_string())?
            .tac;
        let overdraw = card.purse(application).copied().unwrap_or(Purse::new(0, 0));
        // A load repays overdraw first; a card fresh from personalization has none.
        let balance_after = if overdraw.overdrawn > 0 {
            r.balance
        } else {
            r.balance.saturating_add(amount)
        };
        let expected_tac = mac(
            &self.tac_key(master.index)?,
            &load_tac_input(
                balance_after,
                r.online_seq,
                amount,
                tx_type.code(),
                &QC_TERMINAL,
                &self.date,
                &self.time,
            ),
        )?;
        verify("TAC", &tac, &expected_tac, "DTK")?;
        Ok(TransactionDetail {
            card_seq: r.online_seq,
            overdraw_limit: overdraw.overdraw_limit,
            amount,
            transaction_type: tx_type,
            terminal: QC_TERMINAL,
            date: self.date,
            time: self.time,
        })
    }

    fn purchase(
        &self,
        card: &mut VirtualCard,
        application: Application,
        master: &MasterKey,
    ) -> Result<TransactionDetail, String> {
        let tx_type = TransactionType::purchase(application);
        let init = InitializeForPurchase {
            application,
            key_index: master.index,
            amount: QC_AMOUNT,
            terminal: QC_TERMINAL,
        };
        let data = send(card, InitializeForPurchase::NAME, &init.to_apdu())?;
        let r = InitializeForPurchaseResponse::parse(&data).map_err(|e| e.to_string())?;
        Self::check_key_info(master, r.key_version, r.algorithm_id)?;
        // The PSAM's side: DPK from the master, SESPK, MAC1.
        let dpk = self.profile.derive(master, &self.serial);
        let session = purchase_session_key(&dpk, &r.random, r.offline_seq, QC_TERMINAL_SEQ);
        let mac1 = mac(
            &session,
            &purchase_mac1_input(
                QC_AMOUNT,
                tx_type.code(),
                &QC_TERMINAL,
                &self.date,
                &self.time,
            ),
        )?;
        let debit = DebitForPurchase {
            terminal_seq: QC_TERMINAL_SEQ,
            date: self.date,
            time: self.time,
            mac1,
        };
        let data = send(card, DebitForPurchase::NAME, &debit.to_apdu()).map_err(|e| {
            if e.contains("9302") {
                format!("{e}: the card's DPK is not the one derived from the master key")
            } else {
                e
            }
        })?;
        let r2 = DebitForPurchaseResponse::parse(&data).map_err(|e| e.to_string())?;
        let mac2 = mac(&session, &purchase_mac2_input(QC_AMOUNT))?;
        verify("MAC2", &r2.mac2, &mac2, "DPK")?;
        let tac = mac(
            &self.tac_key(master.index)?,
            &purchase_tac_input(
                QC_AMOUNT,
                tx_type.code(),
                &QC_TERMINAL,
                QC_TERMINAL_SEQ,
                &self.date,
                &self.time,
            ),
        )?;
        verify("TAC", &r2.tac, &tac, "DTK")?;
        Ok(TransactionDetail {
            card_seq: r.offline_seq,
            overdraw_limit: r.overdraw_limit,
            amount: QC_AMOUNT,
            transaction_type: tx_type,
            terminal: QC_TERMINAL,
            date: self.date,
            time: self.time,
        })
    }

    /// The newest records are the check's transactions, then the image's own.
    fn records(
        &self,
        card: &mut VirtualCard,
        ours: &[TransactionDetail],
        image: &CardImage,
    ) -> Result<(), String> {
        let theirs = image.records.iter().filter_map(|r| r.to_detail());
        let expected: Vec<TransactionDetail> = ours
            .iter()
            .copied()
            .chain(theirs)
            .take(usize::from(image.record_capacity))
            .collect();
        for (i, want) in expected.iter().enumerate() {
            let number = u8::try_from(i + 1).map_err(|_| "too many records".to_string())?;
            let name = format!("READ RECORD {number}");
            let data = send(
                card,
                &name,
                &TransactionDetail::read_command(number).to_apdu(),
            )?;
            if data != want.to_bytes() {
                return Err(format!(
                    "record {number} is {}, expected {}",
                    hex::encode_upper(&data),
                    hex::encode_upper(want.to_bytes())
                ));
            }
        }
        let past_end = u8::try_from(expected.len() + 1).unwrap_or(u8::MAX);
        match card.exchange(&TransactionDetail::read_command(past_end).to_apdu()) {
            Some(r) if r.sw == StatusWord::RecordNotFound => Ok(()),
            Some(r) => Err(format!("record {past_end} answered {}", r.sw)),
            None => Err(format!("record {past_end}: no response")),
        }
    }
}

/// Serde for `Vec<[u8; 8]>` as a list of hex strings.
mod hex_factors {
    use serde::de::Error as _;
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &[[u8; 8]], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(value.len()))?;
        for factor in value {
            seq.serialize_element(&hex::encode_upper(factor))?;
        }
        seq.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 8]>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .iter()
            .map(|text| {
                let mut out = [0u8; 8];
                hex::decode_to_slice(text.as_bytes(), &mut out)
                    .map_err(|e| D::Error::custom(format!("expected 16 hex digits: {e}")))?;
                Ok(out)
            })
            .collect()
    }
}
