//! Unload (ED only): INITIALIZE FOR UNLOAD (`80 50 05 01 0B .. 10`) and DEBIT FOR UNLOAD
//! (`80 54 03 00 0B .. 04`).
//!
//! UNCONFIRMED: sources disagree whether the 4 bytes DEBIT FOR UNLOAD returns are a MAC3 or
//! a TAC. This crate reads them as the TAC, like the other completing commands (CREDIT FOR
//! LOAD, UPDATE OVERDRAW LIMIT); the choice lives only in [`DebitForUnloadResponse`].

use crate::apdu::CommandApdu;
use crate::application::Application;
use crate::command::error::CommandError;
use crate::command::exchange::{impl_command, impl_response};
use crate::command::header::{
    CLA_PBOC, INS_DEBIT, INS_INITIALIZE, P1_DEBIT_UNLOAD, P1_INIT_UNLOAD, exact_data,
    exact_response, expect_header, init_data, parse_init_data,
};
use crate::command::load::InitializeForLoadResponse;

/// INITIALIZE FOR UNLOAD: starts an unload of `amount` fen from the ED.
///
/// The card answers with an [`InitializeForLoadResponse`] (balance, online seq, key
/// version, algorithm id, random, MAC1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InitializeForUnload {
    /// Index of the unload key (DULK) on the card.
    pub key_index: u8,
    /// Amount in fen.
    pub amount: u32,
    /// Terminal id.
    pub terminal: [u8; 6],
}

impl InitializeForUnload {
    /// Name used in errors.
    pub const NAME: &'static str = "INITIALIZE FOR UNLOAD";

    /// `80 50 05 01 0B key_index amount(4) terminal(6) 10`.
    pub fn to_apdu(&self) -> CommandApdu {
        CommandApdu::new(
            CLA_PBOC,
            INS_INITIALIZE,
            P1_INIT_UNLOAD,
            Application::Ed.p2(),
        )
        .with_data(init_data(self.key_index, self.amount, &self.terminal))
        .with_ne(InitializeForLoadResponse::LEN as u32)
    }

    /// Parses the command; Le is not checked.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_header(
            apdu,
            Self::NAME,
            [
                CLA_PBOC,
                INS_INITIALIZE,
                P1_INIT_UNLOAD,
                Application::Ed.p2(),
            ],
        )?;
        let (key_index, amount, terminal) = parse_init_data(apdu, Self::NAME)?;
        Ok(Self {
            key_index,
            amount,
            terminal,
        })
    }

    /// Parses the card's response, naming INITIALIZE FOR UNLOAD in errors.
    pub fn parse_response(data: &[u8]) -> Result<InitializeForLoadResponse, CommandError> {
        InitializeForLoadResponse::parse_for(data, Self::NAME)
    }
}

/// DEBIT FOR UNLOAD: completes an unload with the issuer's MAC2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DebitForUnload {
    /// Transaction date, BCD `YYYYMMDD`.
    pub date: [u8; 4],
    /// Transaction time, BCD `hhmmss`.
    pub time: [u8; 3],
    /// MAC2 from the issuer.
    pub mac2: [u8; 4],
}

impl DebitForUnload {
    /// Name used in errors.
    pub const NAME: &'static str = "DEBIT FOR UNLOAD";
    /// Length of the command data.
    pub const DATA_LEN: usize = 11;

    /// `80 54 03 00 0B date(4) time(3) MAC2(4) 04`.
    pub fn to_apdu(&self) -> CommandApdu {
        let mut data = Vec::with_capacity(Self::DATA_LEN);
        data.extend_from_slice(&self.date);
        data.extend_from_slice(&self.time);
        data.extend_from_slice(&self.mac2);
        CommandApdu::new(CLA_PBOC, INS_DEBIT, P1_DEBIT_UNLOAD, 0x00)
            .with_data(data)
            .with_ne(DebitForUnloadResponse::LEN as u32)
    }

    /// Parses the command; Le is not checked.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_header(
            apdu,
            Self::NAME,
            [CLA_PBOC, INS_DEBIT, P1_DEBIT_UNLOAD, 0x00],
        )?;
        let mut r = exact_data(apdu, Self::NAME, Self::DATA_LEN)?;
        Ok(Self {
            date: r.array()?,
            time: r.array()?,
            mac2: r.array()?,
        })
    }
}

/// Response to DEBIT FOR UNLOAD: 4 bytes, read as the TAC (UNCONFIRMED: some sources call
/// it MAC3; see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DebitForUnloadResponse {
    /// Transaction authorization code (UNCONFIRMED, possibly MAC3).
    pub tac: [u8; 4],
}

impl DebitForUnloadResponse {
    /// Length of the response data.
    pub const LEN: usize = 4;

    /// Parses the 4-byte response data.
    pub fn parse(data: &[u8]) -> Result<Self, CommandError> {
        let mut r = exact_response(data, DebitForUnload::NAME, Self::LEN)?;
        Ok(Self { tac: r.array()? })
    }

    /// Encodes the response data.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.tac.to_vec()
    }
}

impl_command!(InitializeForUnload => InitializeForLoadResponse);
impl_command!(DebitForUnload => DebitForUnloadResponse);
impl_response!(DebitForUnloadResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apdu, encoded, hex};

    #[test]
    fn initialize_for_unload_bytes() {
        let cmd = InitializeForUnload {
            key_index: 0x01,
            amount: 1000,
            terminal: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66],
        };
        let text = "805005010B01000003E811223344556610";
        assert_eq!(encoded(&cmd.to_apdu()), text);
        assert_eq!(InitializeForUnload::parse(&apdu(text)), Ok(cmd));
        assert_eq!(
            InitializeForUnload::parse(&apdu("805005020B01000003E811223344556610")),
            Err(CommandError::WrongP2 {
                command: "INITIALIZE FOR UNLOAD",
                expected: 0x01,
                found: 0x02
            })
        );
    }

    #[test]
    fn initialize_for_unload_response_names_unload() {
        let bytes = hex("000003E8 0001 01 00 AABBCCDD 01020304");
        let r = InitializeForUnload::parse_response(&bytes).unwrap();
        assert_eq!(r.balance, 1000);
        assert_eq!(r.online_seq, 1);
        assert_eq!(r.mac1, [1, 2, 3, 4]);
        assert_eq!(r.to_bytes(), bytes);
        assert_eq!(
            InitializeForUnload::parse_response(&bytes[..4]),
            Err(CommandError::WrongResponseLength {
                command: "INITIALIZE FOR UNLOAD",
                expected: 16,
                found: 4
            })
        );
    }

    #[test]
    fn debit_for_unload_bytes() {
        let cmd = DebitForUnload {
            date: [0x20, 0x24, 0x01, 0x31],
            time: [0x23, 0x59, 0x59],
            mac2: [0xDE, 0xAD, 0xBE, 0xEF],
        };
        let text = "805403000B20240131235959DEADBEEF04";
        assert_eq!(encoded(&cmd.to_apdu()), text);
        assert_eq!(DebitForUnload::parse(&apdu(text)), Ok(cmd));
        assert_eq!(
            DebitForUnload::parse(&apdu("805403000C20240131235959DEADBEEF0004")),
            Err(CommandError::WrongDataLength {
                command: "DEBIT FOR UNLOAD",
                expected: 11,
                found: 12
            })
        );
    }

    #[test]
    fn debit_for_unload_response_round_trip() {
        let r = DebitForUnloadResponse::parse(&hex("01020304")).unwrap();
        assert_eq!(r.tac, [1, 2, 3, 4]);
        assert_eq!(r.to_bytes(), hex("01020304"));
        assert_eq!(
            DebitForUnloadResponse::parse(&[]),
            Err(CommandError::WrongResponseLength {
                command: "DEBIT FOR UNLOAD",
                expected: 4,
                found: 0
            })
        );
    }
}
