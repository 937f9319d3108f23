//! The issuer side: checking what cards and terminals send, with the keys in an HSM.
//!
//! Every check goes through a [`SecurityModule`] (an HSM, a pool, or the in-process
//! [`pboc_sam::SoftHsm`]): the issuer holds its master keys only as [`KeyRef`]s, and the HSM
//! derives each card's key from the master with the issuer's factors (outermost first) and
//! the card application serial number last ([`IssuerKeys::factors_for`]).
//!
//! - [`load_mac2`]: an online load — verify the card's MAC1 and produce MAC2 for CREDIT
//!   FOR LOAD.
//! - [`verify_purchase_tac`] / [`verify_load_tac`]: a TAC the card produced.
//! - [`BatchChecker`]: the offline records a merchant uploads — each TAC verified,
//!   duplicates (same card serial, application and offline seq as a record already
//!   accepted; see [`DuplicateKey`]) rejected, a verdict per record.
//! - [`recompute_tac_with_psam`]: the same TAC recomputed inside a PSAM (DELIVERY KEY and
//!   CIPHER DATA), for clearing centers that keep their TAC master in PSAMs.
//!
//! The functions are `async` because the HSM is; the futures are `Send`.

use std::collections::HashSet;

use pboc_sam::pboc;
use pboc_sam::security::{HsmError, HsmErrorCode, KeyRef, LoadRequest, SecurityModule, TacRequest};

use crate::command::{CipherData, CipherMode, DeliveryKey};
use crate::flow::{HostReply, HostRequest, OnlineKind};
use crate::psam::KEY_USAGE_TAC;
use crate::record::{DuplicateKey, OfflinePurchaseRecord, RecordError};
use crate::terminal::{Psam, PsamError};

/// The issuer's master keys, as [`KeyRef`]s of its HSM, and its diversification factors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerKeys {
    /// The master load key (a [`pboc_sam::KeyType::PbocLoad`] key): each card's DLK is
    /// derived from it.
    pub dlk_master: KeyRef,
    /// The master TAC key (a [`pboc_sam::KeyType::PbocTac`] key): each card's DTK is derived
    /// from it.
    pub dtk_master: KeyRef,
    /// Diversification factors above the card (issuer, city ...), outermost first; empty for
    /// one-level diversification by the card serial alone.
    pub issuer_factors: Vec<[u8; 8]>,
}

impl IssuerKeys {
    /// Keys diversified by the card serial alone.
    pub fn new(dlk_master: KeyRef, dtk_master: KeyRef) -> Self {
        Self {
            dlk_master,
            dtk_master,
            issuer_factors: Vec::new(),
        }
    }

    /// The full diversification path for a card: the issuer factors, then the card serial.
    pub fn factors_for(&self, card_serial: [u8; 8]) -> Vec<[u8; 8]> {
        let mut factors = self.issuer_factors.clone();
        factors.push(card_serial);
        factors
    }
}

/// Why an issuer-side check did not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// The card's load MAC1 does not verify: decline the load.
    #[error("load MAC1 of card {} does not verify", hex::encode_upper(card_serial))]
    BadMac1 {
        /// The card.
        card_serial: [u8; 8],
    },
    /// The TAC does not verify: the transaction is not genuine (or the record was altered).
    #[error(
        "TAC of card {} seq {card_seq} does not verify",
        hex::encode_upper(card_serial)
    )]
    BadTac {
        /// The card.
        card_serial: [u8; 8],
        /// The card's sequence number of the transaction.
        card_seq: u16,
    },
    /// The host request is not a load: the [`SecurityModule`] computes load MACs only.
    #[error("MAC2 through the HSM is for loads; this request is transaction type {code:02X}")]
    NotALoad {
        /// The request's transaction type.
        code: u8,
    },
    /// The HSM failed (a device or request error, not a wrong MAC or TAC).
    #[error("{0}")]
    Hsm(HsmError),
}

/// The [`LoadRequest`] the HSM checks for a load's [`HostRequest`], with the host's date
/// and time (they go into MAC2) and the full diversification path.
pub fn load_request(
    keys: &IssuerKeys,
    request: &HostRequest,
    date: [u8; 4],
    time: [u8; 3],
) -> LoadRequest {
    LoadRequest {
        factors: keys.factors_for(request.card_serial),
        random: request.random,
        online_seq: request.online_seq,
        balance: request.balance,
        amount: request.amount,
        tx_type: request.transaction_type().code(),
        terminal: request.terminal,
        date,
        time,
        mac1: request.mac1,
    }
}

/// Online load at the issuer: derives the card's DLK and session key in the HSM, verifies
/// the card's MAC1 and returns the reply for the terminal (MAC2 over the amount, type,
/// terminal, `date` and `time`).
///
/// # Errors
/// [`IssuerError::BadMac1`], [`IssuerError::NotALoad`] for an unload or overdraw update,
/// or [`IssuerError::Hsm`].
pub async fn load_mac2(
    hsm: &dyn SecurityModule,
    keys: &IssuerKeys,
    request: &HostRequest,
    date: [u8; 4],
    time: [u8; 3],
) -> Result<HostReply, IssuerError> {
    if !matches!(request.kind, OnlineKind::Load(_)) {
        return Err(IssuerError::NotALoad {
            code: request.transaction_type().code(),
        });
    }
    let load = load_request(keys, request, date, time);
    match hsm.pboc_load_mac2(&keys.dlk_master, &load).await {
        Ok(mac2) => Ok(HostReply { mac2, date, time }),
        Err(e) if e.code == HsmErrorCode::VerificationFailed => Err(IssuerError::BadMac1 {
            card_serial: request.card_serial,
        }),
        Err(e) => Err(IssuerError::Hsm(e)),
    }
}

/// The TAC input of an offline purchase record (amount, type, terminal, terminal seq, date,
/// time).
pub fn purchase_tac_data(record: &OfflinePurchaseRecord) -> [u8; 22] {
    pboc::purchase_tac_input(
        record.amount,
        record.transaction_type.code(),
        &record.terminal,
        record.terminal_seq,
        &record.date,
        &record.time,
    )
}

async fn verify_tac(
    hsm: &dyn SecurityModule,
    keys: &IssuerKeys,
    card_serial: [u8; 8],
    card_seq: u16,
    data: Vec<u8>,
    tac: [u8; 4],
) -> Result<(), IssuerError> {
    let request = TacRequest {
        factors: keys.factors_for(card_serial),
        data,
        tac,
    };
    match hsm.pboc_verify_tac(&keys.dtk_master, &request).await {
        Ok(()) => Ok(()),
        Err(e) if e.code == HsmErrorCode::VerificationFailed => Err(IssuerError::BadTac {
            card_serial,
            card_seq,
        }),
        Err(e) => Err(IssuerError::Hsm(e)),
    }
}

/// Verifies the TAC of an offline purchase (also cash withdrawal and composite purchase)
/// with the card's DTK, derived in the HSM.
///
/// # Errors
/// [`IssuerError::BadTac`] or [`IssuerError::Hsm`].
pub async fn verify_purchase_tac(
    hsm: &dyn SecurityModule,
    keys: &IssuerKeys,
    record: &OfflinePurchaseRecord,
) -> Result<(), IssuerError> {
    verify_tac(
        hsm,
        keys,
        record.card_serial,
        record.offline_seq,
        purchase_tac_data(record).to_vec(),
        record.tac,
    )
    .await
}

/// Verifies the TAC of a completed load: `balance_after` is the card's balance after the
/// load (the balance before plus the amount, less any overdraw repaid on an ED), `reply`
/// the date and time MAC2 covered.
///
/// # Errors
/// [`IssuerError::BadTac`] or [`IssuerError::Hsm`].
pub async fn verify_load_tac(
    hsm: &dyn SecurityModule,
    keys: &IssuerKeys,
    request: &HostRequest,
    reply: &HostReply,
    balance_after: u32,
    tac: [u8; 4],
) -> Result<(), IssuerError> {
    let data = pboc::load_tac_input(
        balance_after,
        request.online_seq,
        request.amount,
        request.transaction_type().code(),
        &request.terminal,
        &reply.date,
        &reply.time,
    );
    verify_tac(
        hsm,
        keys,
        request.card_serial,
        request.online_seq,
        data.to_vec(),
        tac,
    )
    .await
}

/// Recomputes a TAC inside a PSAM that holds the TAC master key (usage
/// [`KEY_USAGE_TAC`], `key_version`): DELIVERY KEY with `factors` (outermost first, the card
/// serial last), then CIPHER DATA `05` with a zero IV over `tac_data`. Compare the result
/// with the card's TAC in constant time ([`pboc_sam::mac::verify`]).
///
/// # Errors
/// A [`PsamError`] naming DELIVERY KEY or CIPHER DATA.
pub fn recompute_tac_with_psam(
    psam: &mut dyn Psam,
    key_version: u8,
    factors: &[[u8; 8]],
    tac_data: &[u8],
) -> Result<[u8; 4], PsamError> {
    psam.delivery_key(&DeliveryKey {
        key_usage: KEY_USAGE_TAC,
        key_version,
        factors: factors.to_vec(),
    })?;
    let mut data = vec![0u8; 8];
    data.extend_from_slice(tac_data);
    let mac = psam.cipher_data(&CipherData {
        mode: CipherMode::MacWithIv,
        data,
    })?;
    let found = mac.len();
    mac.try_into().map_err(|_| PsamError::Response {
        command: CipherData::NAME,
        source: crate::command::CommandError::WrongResponseLength {
            command: CipherData::NAME,
            expected: 4,
            found,
        },
    })
}

/// What the batch check decided about one uploaded record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The TAC verifies and the record is new: pay the merchant.
    Accepted,
    /// A record with the same card serial, application (ED or EP) and offline seq was
    /// accepted before.
    Duplicate,
    /// The TAC does not verify.
    BadTac,
    /// The bytes are not an offline purchase record.
    Malformed(RecordError),
    /// The HSM failed: the record was neither accepted nor rejected; check it again later.
    Failed(HsmError),
}

/// The verdict on the record at `index` (0-based) of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordResult {
    /// Position in the batch.
    pub index: usize,
    /// The record, if it parsed.
    pub record: Option<OfflinePurchaseRecord>,
    /// The verdict.
    pub verdict: Verdict,
}

/// The verdicts on a batch, in batch order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// One result per record.
    pub results: Vec<RecordResult>,
}

impl BatchReport {
    /// How many records got a verdict like `verdict` (the payload of `Malformed` and
    /// `Failed` is ignored).
    pub fn count(&self, verdict: &Verdict) -> usize {
        self.results
            .iter()
            .filter(|r| core::mem::discriminant(&r.verdict) == core::mem::discriminant(verdict))
            .count()
    }

    /// The accepted records.
    pub fn accepted(&self) -> impl Iterator<Item = &OfflinePurchaseRecord> {
        self.results
            .iter()
            .filter(|r| r.verdict == Verdict::Accepted)
            .filter_map(|r| r.record.as_ref())
    }

    /// The total amount of the accepted records, in fen.
    pub fn accepted_amount(&self) -> u64 {
        self.accepted().map(|r| u64::from(r.amount)).sum()
    }
}

/// Checks uploaded offline purchase records: verifies each TAC through the HSM and rejects
/// duplicates by [`OfflinePurchaseRecord::duplicate_key`], remembering every record it has
/// accepted (across batches, for as long as it lives). A record is only remembered once
/// accepted, so a tampered copy that comes first does not block the genuine one.
#[derive(Debug, Clone, Default)]
pub struct BatchChecker {
    seen: HashSet<DuplicateKey>,
}

impl BatchChecker {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// A checker that already knows these accepted records (e.g. loaded from the clearing
    /// database).
    pub fn with_seen(seen: impl IntoIterator<Item = DuplicateKey>) -> Self {
        Self {
            seen: seen.into_iter().collect(),
        }
    }

    /// Whether a record with this key was accepted.
    pub fn is_seen(&self, key: &DuplicateKey) -> bool {
        self.seen.contains(key)
    }

    /// How many records were accepted.
    pub fn seen_count(&self) -> usize {
        self.seen.len()
    }

    /// Checks one record.
    pub async fn check_record(
        &mut self,
        hsm: &dyn SecurityModule,
        keys: &IssuerKeys,
        record: &OfflinePurchaseRecord,
    ) -> Verdict {
        let key = record.duplicate_key();
        if self.seen.contains(&key) {
            return Verdict::Duplicate;
        }
        match verify_purchase_tac(hsm, keys, record).await {
            Ok(()) => {
                self.seen.insert(key);
                Verdict::Accepted
            }
            Err(IssuerError::Hsm(e)) => Verdict::Failed(e),
            Err(_) => Verdict::BadTac,
        }
    }

    /// Checks records in order.
    pub async fn check_records(
        &mut self,
        hsm: &dyn SecurityModule,
        keys: &IssuerKeys,
        records: &[OfflinePurchaseRecord],
    ) -> BatchReport {
        let mut report = BatchReport::default();
        for (index, record) in records.iter().enumerate() {
            let verdict = self.check_record(hsm, keys, record).await;
            report.results.push(RecordResult {
                index,
                record: Some(*record),
                verdict,
            });
        }
        report
    }

    /// Checks a batch file: records of [`OfflinePurchaseRecord::LEN`] bytes back to back. A
    /// record that does not parse, and a short piece at the end, are
    /// [`Verdict::Malformed`].
    pub async fn check_file(
        &mut self,
        hsm: &dyn SecurityModule,
        keys: &IssuerKeys,
        file: &[u8],
    ) -> BatchReport {
        let mut report = BatchReport::default();
        for (index, chunk) in file.chunks(OfflinePurchaseRecord::LEN).enumerate() {
            let result = match OfflinePurchaseRecord::parse(chunk) {
                Ok(record) => RecordResult {
                    index,
                    record: Some(record),
                    verdict: self.check_record(hsm, keys, &record).await,
                },
                Err(e) => RecordResult {
                    index,
                    record: None,
                    verdict: Verdict::Malformed(e),
                },
            };
            report.results.push(result);
        }
        report
    }
}
