//! Overdraw-limit update (ED only): INITIALIZE FOR UPDATE (`80 50 04 01 07 .. 13`) and
//! UPDATE OVERDRAW LIMIT (`80 58 00 00 0E .. 04`).
//!
//! Limits are 3-byte big-endian amounts in fen; values above [`MAX_OVERDRAW_LIMIT`] cannot
//! be represented and only their low 24 bits are encoded.

use crate::apdu::CommandApdu;
use crate::command::error::CommandError;
use crate::command::exchange::{impl_command, impl_response};
use crate::command::header::{
    CLA_PBOC, INS_INITIALIZE, INS_UPDATE_OVERDRAW_LIMIT, P1_INIT_UPDATE, exact_data,
    exact_response, expect_header,
};
use crate::reader::u24_bytes;

/// P2 of INITIALIZE FOR UPDATE.
///
/// UNCONFIRMED: most sources use `01` (the ED, like the other ED-only INITIALIZE
/// commands); some cards expect `00`. This crate sends and accepts `01` only; change it
/// here if a card family needs `00`.
pub const INITIALIZE_FOR_UPDATE_P2: u8 = 0x01;

/// Largest overdraw limit a 3-byte field can hold, in fen.
pub const MAX_OVERDRAW_LIMIT: u32 = 0x00FF_FFFF;

/// INITIALIZE FOR UPDATE: starts an update of the ED's overdraw limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InitializeForUpdate {
    /// Index of the overdraw-update key (DUK) on the card.
    pub key_index: u8,
    /// Terminal id.
    pub terminal: [u8; 6],
}

impl InitializeForUpdate {
    /// Name used in errors.
    pub const NAME: &'static str = "INITIALIZE FOR UPDATE";
    /// Length of the command data.
    pub const DATA_LEN: usize = 7;

    /// `80 50 04 01 07 key_index terminal(6) 13` (P2: [`INITIALIZE_FOR_UPDATE_P2`]).
    pub fn to_apdu(&self) -> CommandApdu {
        let mut data = Vec::with_capacity(Self::DATA_LEN);
        data.push(self.key_index);
        data.extend_from_slice(&self.terminal);
        CommandApdu::new(
            CLA_PBOC,
            INS_INITIALIZE,
            P1_INIT_UPDATE,
            INITIALIZE_FOR_UPDATE_P2,
        )
        .with_data(data)
        .with_ne(InitializeForUpdateResponse::LEN as u32)
    }

    /// Parses the command; Le is not checked.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_header(
            apdu,
            Self::NAME,
            [
                CLA_PBOC,
                INS_INITIALIZE,
                P1_INIT_UPDATE,
                INITIALIZE_FOR_UPDATE_P2,
            ],
        )?;
        let mut r = exact_data(apdu, Self::NAME, Self::DATA_LEN)?;
        Ok(Self {
            key_index: r.u8()?,
            terminal: r.array()?,
        })
    }
}

/// Response to INITIALIZE FOR UPDATE, 19 bytes: `balance(4) | online seq(2) | old limit(3)
/// | key version(1) | algorithm id(1) | random(4) | MAC1(4)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InitializeForUpdateResponse {
    /// Balance in fen.
    pub balance: u32,
    /// Online transaction sequence number (before increment).
    pub online_seq: u16,
    /// Current (old) overdraw limit in fen, 24 bits.
    pub overdraw_limit: u32,
    /// Version of the key used.
    pub key_version: u8,
    /// Algorithm identifier of the key used.
    pub algorithm_id: u8,
    /// Card random number.
    pub random: [u8; 4],
    /// MAC1, computed by the card.
    pub mac1: [u8; 4],
}

impl InitializeForUpdateResponse {
    /// Length of the response data.
    pub const LEN: usize = 19;

    /// Parses the 19-byte response data.
    pub fn parse(data: &[u8]) -> Result<Self, CommandError> {
        let mut r = exact_response(data, InitializeForUpdate::NAME, Self::LEN)?;
        Ok(Self {
            balance: r.u32()?,
            online_seq: r.u16()?,
            overdraw_limit: r.u24()?,
            key_version: r.u8()?,
            algorithm_id: r.u8()?,
            random: r.array()?,
            mac1: r.array()?,
        })
    }

    /// Encodes the response data.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.extend_from_slice(&self.balance.to_be_bytes());
        out.extend_from_slice(&self.online_seq.to_be_bytes());
        out.extend_from_slice(&u24_bytes(self.overdraw_limit));
        out.push(self.key_version);
        out.push(self.algorithm_id);
        out.extend_from_slice(&self.random);
        out.extend_from_slice(&self.mac1);
        out
    }
}

/// UPDATE OVERDRAW LIMIT: sets the new limit, authorised by the issuer's MAC2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpdateOverdrawLimit {
    /// New overdraw limit in fen, at most [`MAX_OVERDRAW_LIMIT`].
    pub new_limit: u32,
    /// Transaction date, BCD `YYYYMMDD`.
    pub date: [u8; 4],
    /// Transaction time, BCD `hhmmss`.
    pub time: [u8; 3],
    /// MAC2 from the issuer.
    pub mac2: [u8; 4],
}

impl UpdateOverdrawLimit {
    /// Name used in errors.
    pub const NAME: &'static str = "UPDATE OVERDRAW LIMIT";
    /// Length of the command data.
    pub const DATA_LEN: usize = 14;

    /// `80 58 00 00 0E new_limit(3) date(4) time(3) MAC2(4) 04`.
    pub fn to_apdu(&self) -> CommandApdu {
        let mut data = Vec::with_capacity(Self::DATA_LEN);
        data.extend_from_slice(&u24_bytes(self.new_limit));
        data.extend_from_slice(&self.date);
        data.extend_from_slice(&self.time);
        data.extend_from_slice(&self.mac2);
        CommandApdu::new(CLA_PBOC, INS_UPDATE_OVERDRAW_LIMIT, 0x00, 0x00)
            .with_data(data)
            .with_ne(UpdateOverdrawLimitResponse::LEN as u32)
    }

    /// Parses the command; Le is not checked.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_header(
            apdu,
            Self::NAME,
            [CLA_PBOC, INS_UPDATE_OVERDRAW_LIMIT, 0x00, 0x00],
        )?;
        let mut r = exact_data(apdu, Self::NAME, Self::DATA_LEN)?;
        Ok(Self {
            new_limit: r.u24()?,
            date: r.array()?,
            time: r.array()?,
            mac2: r.array()?,
        })
    }
}

/// Response to UPDATE OVERDRAW LIMIT: the TAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpdateOverdrawLimitResponse {
    /// Transaction authorization code.
    pub tac: [u8; 4],
}

impl UpdateOverdrawLimitResponse {
    /// Length of the response data.
    pub const LEN: usize = 4;

    /// Parses the 4-byte response data.
    pub fn parse(data: &[u8]) -> Result<Self, CommandError> {
        let mut r = exact_response(data, UpdateOverdrawLimit::NAME, Self::LEN)?;
        Ok(Self { tac: r.array()? })
    }

    /// Encodes the response data.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.tac.to_vec()
    }
}

impl_command!(InitializeForUpdate => InitializeForUpdateResponse);
impl_command!(UpdateOverdrawLimit => UpdateOverdrawLimitResponse);
impl_response!(InitializeForUpdateResponse);
impl_response!(UpdateOverdrawLimitResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apdu, encoded, hex};

    #[test]
    fn initialize_for_update_bytes() {
        let cmd = InitializeForUpdate {
            key_index: 0x01,
            terminal: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66],
        };
        let text = "805004010701112233445566 13".replace(' ', "");
        assert_eq!(encoded(&cmd.to_apdu()), text);
        assert_eq!(InitializeForUpdate::parse(&apdu(&text)), Ok(cmd));
        assert_eq!(
            InitializeForUpdate::parse(&apdu("80500400070111223344556613")),
            Err(CommandError::WrongP2 {
                command: "INITIALIZE FOR UPDATE",
                expected: 0x01,
                found: 0x00
            })
        );
        assert_eq!(
            InitializeForUpdate::parse(&apdu("805004010601112233445513")),
            Err(CommandError::WrongDataLength {
                command: "INITIALIZE FOR UPDATE",
                expected: 7,
                found: 6
            })
        );
    }

    #[test]
    fn initialize_for_update_response_round_trip() {
        let bytes = hex("00002710 0003 0003E8 02 00 0A0B0C0D 01020304");
        let r = InitializeForUpdateResponse::parse(&bytes).unwrap();
        assert_eq!(
            r,
            InitializeForUpdateResponse {
                balance: 10_000,
                online_seq: 3,
                overdraw_limit: 1000,
                key_version: 2,
                algorithm_id: 0,
                random: [0x0A, 0x0B, 0x0C, 0x0D],
                mac1: [1, 2, 3, 4],
            }
        );
        assert_eq!(r.to_bytes(), bytes);
        assert_eq!(
            InitializeForUpdateResponse::parse(&bytes[..18]),
            Err(CommandError::WrongResponseLength {
                command: "INITIALIZE FOR UPDATE",
                expected: 19,
                found: 18
            })
        );
    }

    #[test]
    fn update_overdraw_limit_bytes() {
        let cmd = UpdateOverdrawLimit {
            new_limit: 50_000,
            date: [0x20, 0x24, 0x06, 0x01],
            time: [0x08, 0x30, 0x00],
            mac2: [0xCA, 0xFE, 0xBA, 0xBE],
        };
        let text = "805800000E00C35020240601083000CAFEBABE04";
        assert_eq!(encoded(&cmd.to_apdu()), text);
        assert_eq!(UpdateOverdrawLimit::parse(&apdu(text)), Ok(cmd));
        assert_eq!(
            UpdateOverdrawLimit::parse(&apdu("805800000B20240601083000CAFEBABE04")),
            Err(CommandError::WrongDataLength {
                command: "UPDATE OVERDRAW LIMIT",
                expected: 14,
                found: 11
            })
        );
    }

    #[test]
    fn limit_above_24_bits_keeps_low_bits() {
        let cmd = UpdateOverdrawLimit {
            new_limit: MAX_OVERDRAW_LIMIT + 2,
            date: [0; 4],
            time: [0; 3],
            mac2: [0; 4],
        };
        assert_eq!(cmd.to_apdu().data[..3], [0x00, 0x00, 0x01]);
    }

    #[test]
    fn update_overdraw_limit_response_round_trip() {
        let r = UpdateOverdrawLimitResponse::parse(&hex("11223344")).unwrap();
        assert_eq!(r.tac, [0x11, 0x22, 0x33, 0x44]);
        assert_eq!(r.to_bytes(), hex("11223344"));
        assert_eq!(
            UpdateOverdrawLimitResponse::parse(&hex("112233")),
            Err(CommandError::WrongResponseLength {
                command: "UPDATE OVERDRAW LIMIT",
                expected: 4,
                found: 3
            })
        );
    }
}
