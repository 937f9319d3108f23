//! PSAM side of an offline purchase: INIT SAM FOR PURCHASE (`80 70 00 00 Lc .. 08`) and
//! CREDIT SAM FOR PURCHASE (`80 72 00 00 04 MAC2`).

use crate::apdu::CommandApdu;
use crate::command::error::CommandError;
use crate::command::exchange::{impl_command, impl_response};
use crate::command::header::{
    CLA_PBOC, INS_CREDIT_SAM_FOR_PURCHASE, INS_INIT_SAM_FOR_PURCHASE, exact_data, exact_response,
    expect_header,
};
use crate::command::response::NoData;
use crate::reader::Reader;
use crate::transaction_type::TransactionType;

/// INIT SAM FOR PURCHASE: the PSAM derives the card's purchase key and session key and
/// returns the terminal transaction sequence number and MAC1.
///
/// Data, `Lc = 0x14 + 8N` with N >= 1 diversification factors:
///
/// ```text
/// offset  0  card random (4)
///         4  card offline seq (2)
///         6  amount (4), fen
///        10  transaction type (1)
///        11  date (4), BCD YYYYMMDD
///        15  time (3), BCD hhmmss
///        18  key version (1)
///        19  algorithm id (1)
///        20  card application serial (8)        (first factor)
///        28  further factors, 8 bytes each
/// ```
///
/// At most 28 further factors fit a short APDU.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InitSamForPurchase {
    /// Card random number from INITIALIZE FOR PURCHASE.
    pub card_random: [u8; 4],
    /// Card offline sequence number from INITIALIZE FOR PURCHASE.
    pub card_offline_seq: u16,
    /// Amount in fen.
    pub amount: u32,
    /// Transaction type (e.g. EP purchase `06`).
    pub transaction_type: TransactionType,
    /// Transaction date, BCD `YYYYMMDD`.
    pub date: [u8; 4],
    /// Transaction time, BCD `hhmmss`.
    pub time: [u8; 3],
    /// Card key version from INITIALIZE FOR PURCHASE.
    pub key_version: u8,
    /// Card algorithm id from INITIALIZE FOR PURCHASE.
    pub algorithm_id: u8,
    /// Card application serial number, the first diversification factor.
    pub card_serial: [u8; 8],
    /// Further diversification factors, in the order they are sent.
    pub extra_factors: Vec<[u8; 8]>,
}

impl InitSamForPurchase {
    /// Name used in errors.
    pub const NAME: &'static str = "INIT SAM FOR PURCHASE";
    /// Length of the data before the diversification factors.
    pub const BASE_LEN: usize = 0x14;
    /// Length of one diversification factor.
    pub const FACTOR_LEN: usize = 8;
    /// Offset of the transaction type in the data.
    pub const TRANSACTION_TYPE_OFFSET: usize = 10;

    /// `80 70 00 00 Lc data 08`.
    pub fn to_apdu(&self) -> CommandApdu {
        let factors = 1 + self.extra_factors.len();
        let mut data = Vec::with_capacity(Self::BASE_LEN + Self::FACTOR_LEN * factors);
        data.extend_from_slice(&self.card_random);
        data.extend_from_slice(&self.card_offline_seq.to_be_bytes());
        data.extend_from_slice(&self.amount.to_be_bytes());
        data.push(self.transaction_type.code());
        data.extend_from_slice(&self.date);
        data.extend_from_slice(&self.time);
        data.push(self.key_version);
        data.push(self.algorithm_id);
        data.extend_from_slice(&self.card_serial);
        for factor in &self.extra_factors {
            data.extend_from_slice(factor);
        }
        CommandApdu::new(CLA_PBOC, INS_INIT_SAM_FOR_PURCHASE, 0x00, 0x00)
            .with_data(data)
            .with_ne(InitSamForPurchaseResponse::LEN as u32)
    }

    /// Parses the command; Le is not checked.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_header(
            apdu,
            Self::NAME,
            [CLA_PBOC, INS_INIT_SAM_FOR_PURCHASE, 0x00, 0x00],
        )?;
        let found = apdu.data.len();
        let length_error = CommandError::DataLengthNotInSteps {
            command: Self::NAME,
            base: Self::BASE_LEN,
            step: Self::FACTOR_LEN,
            min_steps: 1,
            found,
        };
        let factor_bytes = found
            .checked_sub(Self::BASE_LEN + Self::FACTOR_LEN)
            .ok_or(length_error)?;
        if factor_bytes % Self::FACTOR_LEN != 0 {
            return Err(length_error);
        }
        let mut r = Reader::new(&apdu.data, length_error);
        let card_random = r.array()?;
        let card_offline_seq = r.u16()?;
        let amount = r.u32()?;
        let type_offset = r.pos();
        let code = r.u8()?;
        let transaction_type =
            TransactionType::from_code(code).ok_or(CommandError::InvalidField {
                command: Self::NAME,
                field: "transaction type",
                offset: type_offset,
                found: code,
            })?;
        let date = r.array()?;
        let time = r.array()?;
        let key_version = r.u8()?;
        let algorithm_id = r.u8()?;
        let card_serial = r.array()?;
        let (extra, remainder) = r.rest().as_chunks::<8>();
        if !remainder.is_empty() {
            return Err(length_error);
        }
        Ok(Self {
            card_random,
            card_offline_seq,
            amount,
            transaction_type,
            date,
            time,
            key_version,
            algorithm_id,
            card_serial,
            extra_factors: extra.to_vec(),
        })
    }
}

/// Response to INIT SAM FOR PURCHASE: `terminal transaction seq(4) | MAC1(4)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InitSamForPurchaseResponse {
    /// Terminal transaction sequence number.
    pub terminal_seq: u32,
    /// MAC1 for DEBIT FOR PURCHASE.
    pub mac1: [u8; 4],
}

impl InitSamForPurchaseResponse {
    /// Length of the response data.
    pub const LEN: usize = 8;

    /// Parses the 8-byte response data.
    pub fn parse(data: &[u8]) -> Result<Self, CommandError> {
        let mut r = exact_response(data, InitSamForPurchase::NAME, Self::LEN)?;
        Ok(Self {
            terminal_seq: r.u32()?,
            mac1: r.array()?,
        })
    }

    /// Encodes the response data.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.extend_from_slice(&self.terminal_seq.to_be_bytes());
        out.extend_from_slice(&self.mac1);
        out
    }
}

/// CREDIT SAM FOR PURCHASE: the PSAM verifies the card's MAC2 (`9000` = valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CreditSamForPurchase {
    /// MAC2 from DEBIT FOR PURCHASE.
    pub mac2: [u8; 4],
}

impl CreditSamForPurchase {
    /// Name used in errors.
    pub const NAME: &'static str = "CREDIT SAM FOR PURCHASE";

    /// `80 72 00 00 04 MAC2`.
    pub fn to_apdu(&self) -> CommandApdu {
        CommandApdu::new(CLA_PBOC, INS_CREDIT_SAM_FOR_PURCHASE, 0x00, 0x00)
            .with_data(self.mac2.to_vec())
    }

    /// Parses the command.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_header(
            apdu,
            Self::NAME,
            [CLA_PBOC, INS_CREDIT_SAM_FOR_PURCHASE, 0x00, 0x00],
        )?;
        let mut r = exact_data(apdu, Self::NAME, 4)?;
        Ok(Self { mac2: r.array()? })
    }
}

impl_command!(InitSamForPurchase => InitSamForPurchaseResponse);
impl_command!(CreditSamForPurchase => NoData);
impl_response!(InitSamForPurchaseResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apdu, encoded, hex};

    fn sample() -> InitSamForPurchase {
        InitSamForPurchase {
            card_random: [0x11, 0x22, 0x33, 0x44],
            card_offline_seq: 0,
            amount: 0x1000,
            transaction_type: TransactionType::EpPurchase,
            date: [0x20, 0x12, 0x02, 0x29],
            time: [0x13, 0x51, 0x00],
            key_version: 0x01,
            algorithm_id: 0x00,
            card_serial: [0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01],
            extra_factors: Vec::new(),
        }
    }

    const ONE_FACTOR: &str =
        "807000001C 11223344 0000 00001000 06 20120229 135100 01 00 1000000000000001 08";

    #[test]
    fn init_sam_for_purchase_bytes() {
        let text = ONE_FACTOR.replace(' ', "");
        assert_eq!(encoded(&sample().to_apdu()), text);
        assert_eq!(InitSamForPurchase::parse(&apdu(&text)), Ok(sample()));

        let two = InitSamForPurchase {
            extra_factors: vec![[0xAA; 8]],
            ..sample()
        };
        let text = "8070000024 11223344 0000 00001000 06 20120229 135100 01 00 1000000000000001 AAAAAAAAAAAAAAAA 08";
        assert_eq!(encoded(&two.to_apdu()), text.replace(' ', ""));
        assert_eq!(InitSamForPurchase::parse(&apdu(text)), Ok(two));
    }

    #[test]
    fn init_sam_for_purchase_errors() {
        // 20 bytes: the card serial is missing.
        assert_eq!(
            InitSamForPurchase::parse(&apdu(
                "8070000014 11223344 0000 00001000 06 20120229 135100 01 00 08"
            )),
            Err(CommandError::DataLengthNotInSteps {
                command: "INIT SAM FOR PURCHASE",
                base: 20,
                step: 8,
                min_steps: 1,
                found: 20
            })
        );
        // 29 bytes: one stray byte after the serial.
        assert_eq!(
            InitSamForPurchase::parse(&apdu(
                "807000001D 11223344 0000 00001000 06 20120229 135100 01 00 1000000000000001 FF 08"
            )),
            Err(CommandError::DataLengthNotInSteps {
                command: "INIT SAM FOR PURCHASE",
                base: 20,
                step: 8,
                min_steps: 1,
                found: 29
            })
        );
        assert_eq!(
            InitSamForPurchase::parse(&apdu(
                "807000001C 11223344 0000 00001000 0A 20120229 135100 01 00 1000000000000001 08"
            )),
            Err(CommandError::InvalidField {
                command: "INIT SAM FOR PURCHASE",
                field: "transaction type",
                offset: 10,
                found: 0x0A
            })
        );
        assert_eq!(
            InitSamForPurchase::parse(&apdu("8071000000")),
            Err(CommandError::WrongInstruction {
                command: "INIT SAM FOR PURCHASE",
                expected: 0x70,
                found: 0x71
            })
        );
    }

    #[test]
    fn init_sam_for_purchase_response_round_trip() {
        let r = InitSamForPurchaseResponse::parse(&hex("00000001 F15CAB75")).unwrap();
        assert_eq!(r.terminal_seq, 1);
        assert_eq!(r.mac1, [0xF1, 0x5C, 0xAB, 0x75]);
        assert_eq!(r.to_bytes(), hex("00000001F15CAB75"));
        assert_eq!(
            InitSamForPurchaseResponse::parse(&hex("00000001F15CAB7500")),
            Err(CommandError::WrongResponseLength {
                command: "INIT SAM FOR PURCHASE",
                expected: 8,
                found: 9
            })
        );
    }

    #[test]
    fn credit_sam_for_purchase_bytes() {
        let cmd = CreditSamForPurchase {
            mac2: [0x56, 0x98, 0x8A, 0x13],
        };
        assert_eq!(encoded(&cmd.to_apdu()), "807200000456988A13");
        assert_eq!(
            CreditSamForPurchase::parse(&apdu("807200000456988A13")),
            Ok(cmd)
        );
        assert_eq!(
            CreditSamForPurchase::parse(&apdu("807200000356988A")),
            Err(CommandError::WrongDataLength {
                command: "CREDIT SAM FOR PURCHASE",
                expected: 4,
                found: 3
            })
        );
    }
}
