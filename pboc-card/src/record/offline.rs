//! The offline purchase record a terminal uploads for clearing, and its duplicate key.

use crate::application::Application;
use crate::reader::Reader;
use crate::record::error::RecordError;
use crate::transaction_type::TransactionType;

/// One offline purchase as uploaded by a merchant terminal: everything the center needs
/// to verify the TAC and reject duplicates.
///
/// Fixed binary layout of 42 bytes defined by this crate (integers big-endian, amounts in
/// fen):
///
/// ```text
/// offset  0  card application serial (8)
///         8  card offline seq (2)
///        10  amount (4)
///        14  transaction type (1)
///        15  terminal id (6)
///        21  terminal transaction seq (4)
///        25  date (4), BCD YYYYMMDD
///        29  time (3), BCD hhmmss
///        32  TAC (4)
///        36  balance before (4)
///        40  key version (1)
///        41  algorithm id (1)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OfflinePurchaseRecord {
    /// Card application serial number.
    pub card_serial: [u8; 8],
    /// Card offline transaction sequence number (from INITIALIZE FOR PURCHASE).
    pub offline_seq: u16,
    /// Amount in fen.
    pub amount: u32,
    /// Transaction type (e.g. `06` EP purchase, `09` composite purchase).
    pub transaction_type: TransactionType,
    /// Terminal id.
    pub terminal: [u8; 6],
    /// Terminal transaction sequence number (from INIT SAM FOR PURCHASE).
    pub terminal_seq: u32,
    /// Date, BCD `YYYYMMDD`.
    pub date: [u8; 4],
    /// Time, BCD `hhmmss`.
    pub time: [u8; 3],
    /// TAC returned by DEBIT FOR PURCHASE.
    pub tac: [u8; 4],
    /// Balance before the purchase, in fen.
    pub balance_before: u32,
    /// Card key version.
    pub key_version: u8,
    /// Card algorithm id.
    pub algorithm_id: u8,
}

/// The key the center uses to reject duplicate uploads: card serial + application +
/// offline seq.
///
/// The ED and the EP of one card count their offline transactions separately, so the same
/// serial and offline seq can belong to two genuine records, one per application. The
/// application comes from the transaction type ([`TransactionType::application`]): `04`
/// and `05` are ED, `06` and `09` are EP (a composite purchase shares the EP counter, so it
/// collides with an EP purchase of the same seq). A `08` credit purchase, tied to neither
/// application by this crate, has `None` and collides only with other `08` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DuplicateKey {
    /// Card application serial number.
    pub card_serial: [u8; 8],
    /// The application whose offline counter produced the seq (`None` for `08`).
    pub application: Option<Application>,
    /// Card offline transaction sequence number.
    pub offline_seq: u16,
}

impl OfflinePurchaseRecord {
    /// Name used in errors.
    pub const NAME: &'static str = "offline purchase record";
    /// Length of the record.
    pub const LEN: usize = 42;
    /// Offset of the transaction type.
    pub const TYPE_OFFSET: usize = 14;

    /// The duplicate key of this record.
    pub fn duplicate_key(&self) -> DuplicateKey {
        DuplicateKey {
            card_serial: self.card_serial,
            application: self.transaction_type.application(),
            offline_seq: self.offline_seq,
        }
    }

    /// Parses a 42-byte record.
    pub fn parse(bytes: &[u8]) -> Result<Self, RecordError> {
        let length_error = RecordError::WrongLength {
            record: Self::NAME,
            expected: Self::LEN,
            found: bytes.len(),
        };
        if bytes.len() != Self::LEN {
            return Err(length_error);
        }
        let mut r = Reader::new(bytes, length_error);
        let card_serial = r.array()?;
        let offline_seq = r.u16()?;
        let amount = r.u32()?;
        let offset = r.pos();
        let code = r.u8()?;
        let transaction_type =
            TransactionType::from_code(code).ok_or(RecordError::InvalidField {
                record: Self::NAME,
                field: "transaction type",
                offset,
                found: code,
            })?;
        Ok(Self {
            card_serial,
            offline_seq,
            amount,
            transaction_type,
            terminal: r.array()?,
            terminal_seq: r.u32()?,
            date: r.array()?,
            time: r.array()?,
            tac: r.array()?,
            balance_before: r.u32()?,
            key_version: r.u8()?,
            algorithm_id: r.u8()?,
        })
    }

    /// Encodes the record.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0; Self::LEN];
        let fields: [&[u8]; 12] = [
            &self.card_serial,
            &self.offline_seq.to_be_bytes(),
            &self.amount.to_be_bytes(),
            &[self.transaction_type.code()],
            &self.terminal,
            &self.terminal_seq.to_be_bytes(),
            &self.date,
            &self.time,
            &self.tac,
            &self.balance_before.to_be_bytes(),
            &[self.key_version],
            &[self.algorithm_id],
        ];
        let mut at = 0;
        for field in fields {
            // The field widths add up to LEN, so every destination range is in bounds.
            if let Some(dest) = out.get_mut(at..at + field.len()) {
                dest.copy_from_slice(field);
            }
            at += field.len();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;
    use std::collections::HashSet;

    const RECORD: &str = "1000000000000001 0005 00001000 06 112233445566 00000001 20120229 135100 A1B2C3D4 000186A0 01 00";

    fn sample() -> OfflinePurchaseRecord {
        OfflinePurchaseRecord {
            card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0x01],
            offline_seq: 5,
            amount: 0x1000,
            transaction_type: TransactionType::EpPurchase,
            terminal: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66],
            terminal_seq: 1,
            date: [0x20, 0x12, 0x02, 0x29],
            time: [0x13, 0x51, 0x00],
            tac: [0xA1, 0xB2, 0xC3, 0xD4],
            balance_before: 100_000,
            key_version: 1,
            algorithm_id: 0,
        }
    }

    #[test]
    fn layout_and_round_trip() {
        let bytes = hex(RECORD);
        assert_eq!(bytes.len(), OfflinePurchaseRecord::LEN);
        assert_eq!(sample().to_bytes().to_vec(), bytes);
        assert_eq!(OfflinePurchaseRecord::parse(&bytes), Ok(sample()));
        assert_eq!(bytes[OfflinePurchaseRecord::TYPE_OFFSET], 0x06);
    }

    #[test]
    fn errors() {
        let bytes = hex(RECORD);
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            OfflinePurchaseRecord::parse(&long),
            Err(RecordError::WrongLength {
                record: "offline purchase record",
                expected: 42,
                found: 43
            })
        );
        let mut bad = bytes;
        bad[14] = 0x0A;
        assert_eq!(
            OfflinePurchaseRecord::parse(&bad),
            Err(RecordError::InvalidField {
                record: "offline purchase record",
                field: "transaction type",
                offset: 14,
                found: 0x0A
            })
        );
    }

    #[test]
    fn duplicates_are_found_by_serial_application_and_seq() {
        let first = sample();
        let retry = OfflinePurchaseRecord {
            terminal_seq: 2,
            tac: [0; 4],
            ..first
        };
        let next = OfflinePurchaseRecord {
            offline_seq: 6,
            ..first
        };
        let other_card = OfflinePurchaseRecord {
            card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0x02],
            ..first
        };
        // The ED counts its own offline seqs: same serial and seq, another record.
        let ed = OfflinePurchaseRecord {
            transaction_type: TransactionType::EdPurchase,
            ..first
        };
        let ed_cash = OfflinePurchaseRecord {
            transaction_type: TransactionType::EdCashWithdrawal,
            ..first
        };
        // A composite purchase runs on the EP counter.
        let composite = OfflinePurchaseRecord {
            transaction_type: TransactionType::CompositePurchase,
            ..first
        };
        let credit = OfflinePurchaseRecord {
            transaction_type: TransactionType::CreditPurchase,
            ..first
        };
        let mut seen = HashSet::new();
        assert!(seen.insert(first.duplicate_key()));
        assert!(!seen.insert(retry.duplicate_key()));
        assert!(seen.insert(next.duplicate_key()));
        assert!(seen.insert(other_card.duplicate_key()));
        assert!(seen.insert(ed.duplicate_key()));
        assert!(!seen.insert(ed_cash.duplicate_key()));
        assert!(!seen.insert(composite.duplicate_key()));
        assert!(seen.insert(credit.duplicate_key()));
        assert_eq!(seen.len(), 5);
        assert_eq!(
            first.duplicate_key(),
            DuplicateKey {
                card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0x01],
                application: Some(Application::Ep),
                offline_seq: 5
            }
        );
        assert_eq!(
            ed.duplicate_key(),
            DuplicateKey {
                card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0x01],
                application: Some(Application::Ed),
                offline_seq: 5
            }
        );
        assert_eq!(credit.duplicate_key().application, None);
    }
}
