//! The 23-byte transaction detail record in the card's cyclic file.

use crate::command::ReadRecord;
use crate::reader::{Reader, u24_bytes};
use crate::record::error::RecordError;
use crate::transaction_type::TransactionType;

/// Short file identifier of the transaction detail file in the usual layout.
pub const DETAIL_SFI: u8 = 0x18;

/// One transaction detail record, newest in record 1:
///
/// ```text
/// offset  0  card transaction seq (2)
///         2  overdraw limit (3), fen
///         5  amount (4), fen
///         9  transaction type (1)
///        10  terminal id (6)
///        16  date (4), BCD YYYYMMDD
///        20  time (3), BCD hhmmss
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionDetail {
    /// Card transaction sequence number (online or offline, per the type).
    pub card_seq: u16,
    /// Overdraw limit in fen, 24 bits (low 24 bits encoded).
    pub overdraw_limit: u32,
    /// Amount in fen.
    pub amount: u32,
    /// Transaction type.
    pub transaction_type: TransactionType,
    /// Terminal id.
    pub terminal: [u8; 6],
    /// Date, BCD `YYYYMMDD`.
    pub date: [u8; 4],
    /// Time, BCD `hhmmss`.
    pub time: [u8; 3],
}

impl TransactionDetail {
    /// Name used in errors.
    pub const NAME: &'static str = "transaction detail record";
    /// Length of the record.
    pub const LEN: usize = 23;
    /// Offset of the transaction type.
    pub const TYPE_OFFSET: usize = 9;

    /// READ RECORD for record `number` (1 = newest) of the detail file:
    /// `00 B2 number C4 17`.
    pub fn read_command(number: u8) -> ReadRecord {
        ReadRecord {
            record: number,
            sfi: Some(DETAIL_SFI),
            le: Self::LEN as u8,
        }
    }

    /// Parses a 23-byte record.
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
        let card_seq = r.u16()?;
        let overdraw_limit = r.u24()?;
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
            card_seq,
            overdraw_limit,
            amount,
            transaction_type,
            terminal: r.array()?,
            date: r.array()?,
            time: r.array()?,
        })
    }

    /// Encodes the record.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0; Self::LEN];
        let fields: [&[u8]; 7] = [
            &self.card_seq.to_be_bytes(),
            &u24_bytes(self.overdraw_limit),
            &self.amount.to_be_bytes(),
            &[self.transaction_type.code()],
            &self.terminal,
            &self.date,
            &self.time,
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
    use crate::test_util::{encoded, hex};

    const RECORD: &str = "0007 000000 000003E8 06 112233445566 20240501 120000";

    fn sample() -> TransactionDetail {
        TransactionDetail {
            card_seq: 7,
            overdraw_limit: 0,
            amount: 1000,
            transaction_type: TransactionType::EpPurchase,
            terminal: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66],
            date: [0x20, 0x24, 0x05, 0x01],
            time: [0x12, 0x00, 0x00],
        }
    }

    #[test]
    fn round_trip() {
        let bytes = hex(RECORD);
        assert_eq!(TransactionDetail::parse(&bytes), Ok(sample()));
        assert_eq!(sample().to_bytes().to_vec(), bytes);
        let with_limit = TransactionDetail {
            overdraw_limit: 0x0186A0,
            transaction_type: TransactionType::EdPurchase,
            ..sample()
        };
        assert_eq!(
            hex::encode_upper(with_limit.to_bytes()),
            "00070186A0000003E80511223344556620240501120000"
        );
    }

    #[test]
    fn errors() {
        let bytes = hex(RECORD);
        assert_eq!(
            TransactionDetail::parse(&bytes[..22]),
            Err(RecordError::WrongLength {
                record: "transaction detail record",
                expected: 23,
                found: 22
            })
        );
        let mut bad = bytes.clone();
        bad[9] = 0x00;
        assert_eq!(
            TransactionDetail::parse(&bad),
            Err(RecordError::InvalidField {
                record: "transaction detail record",
                field: "transaction type",
                offset: 9,
                found: 0x00
            })
        );
        assert_eq!(
            RecordError::InvalidField {
                record: "transaction detail record",
                field: "transaction type",
                offset: 9,
                found: 0x00
            }
            .to_string(),
            "transaction detail record: transaction type at offset 9 is invalid: 00"
        );
    }

    #[test]
    fn read_command_bytes() {
        assert_eq!(
            encoded(&TransactionDetail::read_command(1).to_apdu()),
            "00B201C417"
        );
        assert_eq!(
            encoded(&TransactionDetail::read_command(10).to_apdu()),
            "00B20AC417"
        );
    }
}
