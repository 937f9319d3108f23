//! Offline purchase: INITIALIZE FOR PURCHASE (`80 50 01 P2 0B .. 0F`) and DEBIT FOR
//! PURCHASE (`80 54 01 00 0F .. 08`).
//!
//! DEBIT FOR PURCHASE has the same bytes after INITIALIZE FOR PURCHASE, CASH WITHDRAW and
//! CAPP PURCHASE; the card knows which from the preceding INITIALIZE. Likewise all three
//! INITIALIZE commands answer with an [`InitializeForPurchaseResponse`].

use crate::apdu::CommandApdu;
use crate::application::Application;
use crate::command::error::CommandError;
use crate::command::exchange::{impl_command, impl_response};
use crate::command::header::{
    CLA_PBOC, INS_DEBIT, INS_INITIALIZE, P1_DEBIT_PURCHASE, P1_INIT_PURCHASE, application_p2,
    exact_data, exact_response, expect_cla_ins, expect_header, expect_p1, init_data,
    parse_init_data,
};
use crate::reader::u24_bytes;

/// INITIALIZE FOR PURCHASE: starts an offline purchase of `amount` fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InitializeForPurchase {
    /// The application debited (P2).
    pub application: Application,
    /// Index of the purchase key (DPK) on the card.
    pub key_index: u8,
    /// Amount in fen.
    pub amount: u32,
    /// Terminal id.
    pub terminal: [u8; 6],
}

impl InitializeForPurchase {
    /// Name used in errors.
    pub const NAME: &'static str = "INITIALIZE FOR PURCHASE";

    /// `80 50 01 P2 0B key_index amount(4) terminal(6) 0F`.
    pub fn to_apdu(&self) -> CommandApdu {
        CommandApdu::new(
            CLA_PBOC,
            INS_INITIALIZE,
            P1_INIT_PURCHASE,
            self.application.p2(),
        )
        .with_data(init_data(self.key_index, self.amount, &self.terminal))
        .with_ne(InitializeForPurchaseResponse::LEN as u32)
    }

    /// Parses the command; Le is not checked.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_cla_ins(apdu, Self::NAME, CLA_PBOC, INS_INITIALIZE)?;
        expect_p1(apdu, Self::NAME, P1_INIT_PURCHASE)?;
        let application = application_p2(apdu, Self::NAME)?;
        let (key_index, amount, terminal) = parse_init_data(apdu, Self::NAME)?;
        Ok(Self {
            application,
            key_index,
            amount,
            terminal,
        })
    }
}

/// Response to INITIALIZE FOR PURCHASE, CASH WITHDRAW and CAPP PURCHASE, 15 bytes:
/// `balance(4) | offline seq(2) | overdraw limit(3) | key version(1) | algorithm id(1) |
/// random(4)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InitializeForPurchaseResponse {
    /// Balance before the transaction, in fen.
    pub balance: u32,
    /// Offline transaction sequence number (before increment).
    pub offline_seq: u16,
    /// Overdraw limit in fen; 3 bytes on the wire, so only the low 24 bits are encoded.
    pub overdraw_limit: u32,
    /// Version of the key used.
    pub key_version: u8,
    /// Algorithm identifier of the key used.
    pub algorithm_id: u8,
    /// Card random number (pseudo-random for the session key).
    pub random: [u8; 4],
}

impl InitializeForPurchaseResponse {
    /// Length of the response data.
    pub const LEN: usize = 15;

    /// Parses the 15-byte response data.
    pub fn parse(data: &[u8]) -> Result<Self, CommandError> {
        let mut r = exact_response(data, InitializeForPurchase::NAME, Self::LEN)?;
        Ok(Self {
            balance: r.u32()?,
            offline_seq: r.u16()?,
            overdraw_limit: r.u24()?,
            key_version: r.u8()?,
            algorithm_id: r.u8()?,
            random: r.array()?,
        })
    }

    /// Encodes the response data.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.extend_from_slice(&self.balance.to_be_bytes());
        out.extend_from_slice(&self.offline_seq.to_be_bytes());
        out.extend_from_slice(&u24_bytes(self.overdraw_limit));
        out.push(self.key_version);
        out.push(self.algorithm_id);
        out.extend_from_slice(&self.random);
        out
    }
}

/// DEBIT FOR PURCHASE (also completes CASH WITHDRAW and CAPP PURCHASE): carries the
/// PSAM's MAC1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DebitForPurchase {
    /// Terminal transaction sequence number (from INIT SAM FOR PURCHASE).
    pub terminal_seq: u32,
    /// Transaction date, BCD `YYYYMMDD`.
    pub date: [u8; 4],
    /// Transaction time, BCD `hhmmss`.
    pub time: [u8; 3],
    /// MAC1 from the PSAM.
    pub mac1: [u8; 4],
}

impl DebitForPurchase {
    /// Name used in errors.
    pub const NAME: &'static str = "DEBIT FOR PURCHASE";
    /// Length of the command data.
    pub const DATA_LEN: usize = 15;

    /// `80 54 01 00 0F terminal_seq(4) date(4) time(3) MAC1(4) 08`.
    pub fn to_apdu(&self) -> CommandApdu {
        let mut data = Vec::with_capacity(Self::DATA_LEN);
        data.extend_from_slice(&self.terminal_seq.to_be_bytes());
        data.extend_from_slice(&self.date);
        data.extend_from_slice(&self.time);
        data.extend_from_slice(&self.mac1);
        CommandApdu::new(CLA_PBOC, INS_DEBIT, P1_DEBIT_PURCHASE, 0x00)
            .with_data(data)
            .with_ne(DebitForPurchaseResponse::LEN as u32)
    }

    /// Parses the command; Le is not checked.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_header(
            apdu,
            Self::NAME,
            [CLA_PBOC, INS_DEBIT, P1_DEBIT_PURCHASE, 0x00],
        )?;
        let mut r = exact_data(apdu, Self::NAME, Self::DATA_LEN)?;
        Ok(Self {
            terminal_seq: r.u32()?,
            date: r.array()?,
            time: r.array()?,
            mac1: r.array()?,
        })
    }
}

/// Response to DEBIT FOR PURCHASE: `TAC(4) | MAC2(4)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DebitForPurchaseResponse {
    /// Transaction authorization code.
    pub tac: [u8; 4],
    /// MAC2 for the PSAM (CREDIT SAM FOR PURCHASE).
    pub mac2: [u8; 4],
}

impl DebitForPurchaseResponse {
    /// Length of the response data.
    pub const LEN: usize = 8;

    /// Parses the 8-byte response data.
    pub fn parse(data: &[u8]) -> Result<Self, CommandError> {
        let mut r = exact_response(data, DebitForPurchase::NAME, Self::LEN)?;
        Ok(Self {
            tac: r.array()?,
            mac2: r.array()?,
        })
    }

    /// Encodes the response data.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.extend_from_slice(&self.tac);
        out.extend_from_slice(&self.mac2);
        out
    }
}

impl_command!(InitializeForPurchase => InitializeForPurchaseResponse);
impl_command!(DebitForPurchase => DebitForPurchaseResponse);
impl_response!(InitializeForPurchaseResponse);
impl_response!(DebitForPurchaseResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apdu, encoded, hex};

    #[test]
    fn initialize_for_purchase_bytes() {
        let cmd = InitializeForPurchase {
            application: Application::Ep,
            key_index: 0x01,
            amount: 0x1000,
            terminal: [0x00, 0x11, 0x22, 0x33, 0x44, 0x55],
        };
        assert_eq!(
            encoded(&cmd.to_apdu()),
            "805001020B01000010000011223344550F"
        );
        assert_eq!(
            InitializeForPurchase::parse(&apdu("805001020B01000010000011223344550F")),
            Ok(cmd)
        );
        assert_eq!(
            InitializeForPurchase::parse(&apdu("805001020C0100001000001122334455660F")),
            Err(CommandError::WrongDataLength {
                command: "INITIALIZE FOR PURCHASE",
                expected: 11,
                found: 12
            })
        );
        assert_eq!(
            InitializeForPurchase::parse(&apdu("805001000B01000010000011223344550F")),
            Err(CommandError::InvalidParameter {
                command: "INITIALIZE FOR PURCHASE",
                parameter: "P2",
                expected: "01 (ED) or 02 (EP)",
                found: 0x00
            })
        );
    }

    #[test]
    fn initialize_for_purchase_response_round_trip() {
        let bytes = hex("000186A0 0005 002710 01 00 11223344");
        let r = InitializeForPurchaseResponse::parse(&bytes).unwrap();
        assert_eq!(
            r,
            InitializeForPurchaseResponse {
                balance: 100_000,
                offline_seq: 5,
                overdraw_limit: 10_000,
                key_version: 1,
                algorithm_id: 0,
                random: [0x11, 0x22, 0x33, 0x44],
            }
        );
        assert_eq!(r.to_bytes(), bytes);
        assert_eq!(
            InitializeForPurchaseResponse::parse(&hex("000186A0")),
            Err(CommandError::WrongResponseLength {
                command: "INITIALIZE FOR PURCHASE",
                expected: 15,
                found: 4
            })
        );
    }

    #[test]
    fn debit_for_purchase_bytes() {
        let cmd = DebitForPurchase {
            terminal_seq: 1,
            date: [0x20, 0x12, 0x02, 0x29],
            time: [0x13, 0x51, 0x00],
            mac1: [0xF1, 0x5C, 0xAB, 0x75],
        };
        let text = "805401000F0000000120120229135100F15CAB7508";
        assert_eq!(encoded(&cmd.to_apdu()), text);
        assert_eq!(DebitForPurchase::parse(&apdu(text)), Ok(cmd));
        assert_eq!(
            DebitForPurchase::parse(&apdu("805403000F0000000120120229135100F15CAB7508")),
            Err(CommandError::WrongP1 {
                command: "DEBIT FOR PURCHASE",
                expected: 0x01,
                found: 0x03
            })
        );
        assert_eq!(
            DebitForPurchase::parse(&apdu("805401000B2012022913510000000001")),
            Err(CommandError::WrongDataLength {
                command: "DEBIT FOR PURCHASE",
                expected: 15,
                found: 11
            })
        );
    }

    #[test]
    fn debit_for_purchase_response_round_trip() {
        let r = DebitForPurchaseResponse::parse(&hex("A1A2A3A4 56988A13")).unwrap();
        assert_eq!(r.tac, [0xA1, 0xA2, 0xA3, 0xA4]);
        assert_eq!(r.mac2, [0x56, 0x98, 0x8A, 0x13]);
        assert_eq!(r.to_bytes(), hex("A1A2A3A456988A13"));
        assert_eq!(
            DebitForPurchaseResponse::parse(&hex("A1A2A3A4")),
            Err(CommandError::WrongResponseLength {
                command: "DEBIT FOR PURCHASE",
                expected: 8,
                found: 4
            })
        );
    }
}
