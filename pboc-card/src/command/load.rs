//! Online load: INITIALIZE FOR LOAD (`80 50 00 P2 0B .. 10`) and CREDIT FOR LOAD
//! (`80 52 00 00 0B .. 04`).

use crate::apdu::CommandApdu;
use crate::application::Application;
use crate::command::error::CommandError;
use crate::command::exchange::{impl_command, impl_response};
use crate::command::header::{
    CLA_PBOC, INS_CREDIT_FOR_LOAD, INS_INITIALIZE, P1_INIT_LOAD, application_p2, exact_data,
    exact_response, expect_cla_ins, expect_header, expect_p1, init_data, parse_init_data,
};

/// INITIALIZE FOR LOAD: starts a load of `amount` fen into the ED or EP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InitializeForLoad {
    /// The application loaded (P2).
    pub application: Application,
    /// Index of the load key (DLK) on the card.
    pub key_index: u8,
    /// Amount in fen.
    pub amount: u32,
    /// Terminal id.
    pub terminal: [u8; 6],
}

impl InitializeForLoad {
    /// Name used in errors.
    pub const NAME: &'static str = "INITIALIZE FOR LOAD";

    /// `80 50 00 P2 0B key_index amount(4) terminal(6) 10`.
    pub fn to_apdu(&self) -> CommandApdu {
        CommandApdu::new(
            CLA_PBOC,
            INS_INITIALIZE,
            P1_INIT_LOAD,
            self.application.p2(),
        )
        .with_data(init_data(self.key_index, self.amount, &self.terminal))
        .with_ne(InitializeForLoadResponse::LEN as u32)
    }

    /// Parses the command; Le is not checked.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_cla_ins(apdu, Self::NAME, CLA_PBOC, INS_INITIALIZE)?;
        expect_p1(apdu, Self::NAME, P1_INIT_LOAD)?;
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

/// Response to INITIALIZE FOR LOAD (and INITIALIZE FOR UNLOAD), 16 bytes:
/// `balance(4) | online seq(2) | key version(1) | algorithm id(1) | random(4) | MAC1(4)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InitializeForLoadResponse {
    /// Balance before the transaction, in fen.
    pub balance: u32,
    /// Online transaction sequence number (before increment).
    pub online_seq: u16,
    /// Version of the key used.
    pub key_version: u8,
    /// Algorithm identifier of the key used.
    pub algorithm_id: u8,
    /// Card random number (pseudo-random for the session key).
    pub random: [u8; 4],
    /// MAC1, computed by the card with the load session key.
    pub mac1: [u8; 4],
}

impl InitializeForLoadResponse {
    /// Length of the response data.
    pub const LEN: usize = 16;

    /// Parses the 16-byte response data.
    pub fn parse(data: &[u8]) -> Result<Self, CommandError> {
        Self::parse_for(data, InitializeForLoad::NAME)
    }

    /// Parses the response, naming `command` in errors.
    pub(crate) fn parse_for(data: &[u8], command: &'static str) -> Result<Self, CommandError> {
        let mut r = exact_response(data, command, Self::LEN)?;
        Ok(Self {
            balance: r.u32()?,
            online_seq: r.u16()?,
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
        out.push(self.key_version);
        out.push(self.algorithm_id);
        out.extend_from_slice(&self.random);
        out.extend_from_slice(&self.mac1);
        out
    }
}

/// CREDIT FOR LOAD: completes a load with the issuer's MAC2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CreditForLoad {
    /// Transaction date, BCD `YYYYMMDD`.
    pub date: [u8; 4],
    /// Transaction time, BCD `hhmmss`.
    pub time: [u8; 3],
    /// MAC2 from the issuer.
    pub mac2: [u8; 4],
}

impl CreditForLoad {
    /// Name used in errors.
    pub const NAME: &'static str = "CREDIT FOR LOAD";
    /// Length of the command data.
    pub const DATA_LEN: usize = 11;

    /// `80 52 00 00 0B date(4) time(3) MAC2(4) 04`.
    pub fn to_apdu(&self) -> CommandApdu {
        let mut data = Vec::with_capacity(Self::DATA_LEN);
        data.extend_from_slice(&self.date);
        data.extend_from_slice(&self.time);
        data.extend_from_slice(&self.mac2);
        CommandApdu::new(CLA_PBOC, INS_CREDIT_FOR_LOAD, 0x00, 0x00)
            .with_data(data)
            .with_ne(4)
    }

    /// Parses the command; Le is not checked.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_header(
            apdu,
            Self::NAME,
            [CLA_PBOC, INS_CREDIT_FOR_LOAD, 0x00, 0x00],
        )?;
        let mut r = exact_data(apdu, Self::NAME, Self::DATA_LEN)?;
        Ok(Self {
            date: r.array()?,
            time: r.array()?,
            mac2: r.array()?,
        })
    }
}

/// Response to CREDIT FOR LOAD: the TAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CreditForLoadResponse {
    /// Transaction authorization code.
    pub tac: [u8; 4],
}

impl CreditForLoadResponse {
    /// Length of the response data.
    pub const LEN: usize = 4;

    /// Parses the 4-byte response data.
    pub fn parse(data: &[u8]) -> Result<Self, CommandError> {
        let mut r = exact_response(data, CreditForLoad::NAME, Self::LEN)?;
        Ok(Self { tac: r.array()? })
    }

    /// Encodes the response data.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.tac.to_vec()
    }
}

impl_command!(InitializeForLoad => InitializeForLoadResponse);
impl_command!(CreditForLoad => CreditForLoadResponse);
impl_response!(InitializeForLoadResponse);
impl_response!(CreditForLoadResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apdu, encoded, hex};

    const TERMINAL: [u8; 6] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];

    #[test]
    fn initialize_for_load_bytes() {
        let cmd = InitializeForLoad {
            application: Application::Ep,
            key_index: 0x01,
            amount: 1000,
            terminal: TERMINAL,
        };
        assert_eq!(
            encoded(&cmd.to_apdu()),
            "805000020B01000003E811223344556610"
        );
        assert_eq!(
            InitializeForLoad::parse(&apdu("805000020B01000003E811223344556610")),
            Ok(cmd)
        );
        let ed = InitializeForLoad {
            application: Application::Ed,
            ..cmd
        };
        assert_eq!(encoded(&ed.to_apdu()), "805000010B01000003E811223344556610");
    }

    #[test]
    fn initialize_for_load_errors() {
        assert_eq!(
            InitializeForLoad::parse(&apdu("805000020A01000003E8112233445510")),
            Err(CommandError::WrongDataLength {
                command: "INITIALIZE FOR LOAD",
                expected: 11,
                found: 10
            })
        );
        assert_eq!(
            InitializeForLoad::parse(&apdu("805001020B01000003E811223344556610")),
            Err(CommandError::WrongP1 {
                command: "INITIALIZE FOR LOAD",
                expected: 0x00,
                found: 0x01
            })
        );
        assert_eq!(
            InitializeForLoad::parse(&apdu("805200020B01000003E811223344556610")),
            Err(CommandError::WrongInstruction {
                command: "INITIALIZE FOR LOAD",
                expected: 0x50,
                found: 0x52
            })
        );
    }

    #[test]
    fn initialize_for_load_response_round_trip() {
        let bytes = hex("00000000 0000 01 00 11223344 2988AE5A");
        let r = InitializeForLoadResponse::parse(&bytes).unwrap();
        assert_eq!(
            r,
            InitializeForLoadResponse {
                balance: 0,
                online_seq: 0,
                key_version: 0x01,
                algorithm_id: 0x00,
                random: [0x11, 0x22, 0x33, 0x44],
                mac1: [0x29, 0x88, 0xAE, 0x5A],
            }
        );
        assert_eq!(r.to_bytes(), bytes);
        assert_eq!(
            InitializeForLoadResponse::parse(&bytes[..15]),
            Err(CommandError::WrongResponseLength {
                command: "INITIALIZE FOR LOAD",
                expected: 16,
                found: 15
            })
        );
    }

    #[test]
    fn credit_for_load_bytes() {
        let cmd = CreditForLoad {
            date: [0x20, 0x11, 0x12, 0x21],
            time: [0x21, 0x48, 0x22],
            mac2: [0x3A, 0x84, 0x5B, 0xF0],
        };
        assert_eq!(
            encoded(&cmd.to_apdu()),
            "805200000B20111221214822 3A845BF004".replace(' ', "")
        );
        assert_eq!(
            CreditForLoad::parse(&apdu("805200000B201112212148223A845BF004")),
            Ok(cmd)
        );
        assert_eq!(
            CreditForLoad::parse(&apdu("805200000A201112212148223A845B04")),
            Err(CommandError::WrongDataLength {
                command: "CREDIT FOR LOAD",
                expected: 11,
                found: 10
            })
        );
        assert_eq!(
            CreditForLoad::parse(&apdu("805200010B201112212148223A845BF004")),
            Err(CommandError::WrongP2 {
                command: "CREDIT FOR LOAD",
                expected: 0x00,
                found: 0x01
            })
        );
    }

    #[test]
    fn credit_for_load_response_round_trip() {
        let r = CreditForLoadResponse::parse(&hex("A1B2C3D4")).unwrap();
        assert_eq!(r.tac, [0xA1, 0xB2, 0xC3, 0xD4]);
        assert_eq!(r.to_bytes(), hex("A1B2C3D4"));
        assert_eq!(
            CreditForLoadResponse::parse(&hex("A1B2C3D4E5")),
            Err(CommandError::WrongResponseLength {
                command: "CREDIT FOR LOAD",
                expected: 4,
                found: 5
            })
        );
    }
}
