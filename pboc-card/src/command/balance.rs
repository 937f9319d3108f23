//! GET BALANCE (`80 5C 00 P2 04`).

use crate::apdu::CommandApdu;
use crate::application::Application;
use crate::command::error::CommandError;
use crate::command::exchange::{impl_command, impl_response};
use crate::command::header::{
    CLA_PBOC, INS_GET_BALANCE, application_p2, exact_data, exact_response, expect_cla_ins,
    expect_p1,
};

/// GET BALANCE: reads the balance of the ED or EP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GetBalance {
    /// The application whose balance is read (P2).
    pub application: Application,
}

impl GetBalance {
    /// Name used in errors.
    pub const NAME: &'static str = "GET BALANCE";

    /// `80 5C 00 P2 04`.
    pub fn to_apdu(&self) -> CommandApdu {
        CommandApdu::new(CLA_PBOC, INS_GET_BALANCE, 0x00, self.application.p2()).with_ne(4)
    }

    /// Parses the command; Le is not checked (T=0 terminals omit it, others send `00`).
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_cla_ins(apdu, Self::NAME, CLA_PBOC, INS_GET_BALANCE)?;
        expect_p1(apdu, Self::NAME, 0x00)?;
        let application = application_p2(apdu, Self::NAME)?;
        exact_data(apdu, Self::NAME, 0)?;
        Ok(Self { application })
    }
}

/// GET BALANCE response: the balance, 4 bytes big-endian, in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GetBalanceResponse {
    /// Balance in fen.
    pub balance: u32,
}

impl GetBalanceResponse {
    /// Length of the response data.
    pub const LEN: usize = 4;

    /// Parses the 4-byte response data.
    pub fn parse(data: &[u8]) -> Result<Self, CommandError> {
        let mut r = exact_response(data, GetBalance::NAME, Self::LEN)?;
        Ok(Self { balance: r.u32()? })
    }

    /// Encodes the response data.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.balance.to_be_bytes().to_vec()
    }
}

impl_command!(GetBalance => GetBalanceResponse);
impl_response!(GetBalanceResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apdu, encoded, hex};

    #[test]
    fn apdu_bytes() {
        let ep = GetBalance {
            application: Application::Ep,
        };
        assert_eq!(encoded(&ep.to_apdu()), "805C000204");
        let ed = GetBalance {
            application: Application::Ed,
        };
        assert_eq!(encoded(&ed.to_apdu()), "805C000104");
    }

    #[test]
    fn parse_round_trip() {
        assert_eq!(
            GetBalance::parse(&apdu("805C000204")),
            Ok(GetBalance {
                application: Application::Ep
            })
        );
        // Without Le (T=0 case 1) the command is still recognised.
        assert_eq!(
            GetBalance::parse(&apdu("805C0001")),
            Ok(GetBalance {
                application: Application::Ed
            })
        );
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            GetBalance::parse(&apdu("805D000204")),
            Err(CommandError::WrongInstruction {
                command: "GET BALANCE",
                expected: 0x5C,
                found: 0x5D
            })
        );
        assert_eq!(
            GetBalance::parse(&apdu("005C000204")),
            Err(CommandError::WrongClass {
                command: "GET BALANCE",
                expected: 0x80,
                found: 0x00
            })
        );
        assert_eq!(
            GetBalance::parse(&apdu("805C010204")),
            Err(CommandError::WrongP1 {
                command: "GET BALANCE",
                expected: 0x00,
                found: 0x01
            })
        );
        assert_eq!(
            GetBalance::parse(&apdu("805C000304")),
            Err(CommandError::InvalidParameter {
                command: "GET BALANCE",
                parameter: "P2",
                expected: "01 (ED) or 02 (EP)",
                found: 0x03
            })
        );
        assert_eq!(
            GetBalance::parse(&apdu("805C00020100")),
            Err(CommandError::WrongDataLength {
                command: "GET BALANCE",
                expected: 0,
                found: 1
            })
        );
    }

    #[test]
    fn response_round_trip_and_errors() {
        let r = GetBalanceResponse::parse(&hex("000003E8")).unwrap();
        assert_eq!(r, GetBalanceResponse { balance: 1000 });
        assert_eq!(r.to_bytes(), hex("000003E8"));
        assert_eq!(
            GetBalanceResponse::parse(&hex("0003E8")),
            Err(CommandError::WrongResponseLength {
                command: "GET BALANCE",
                expected: 4,
                found: 3
            })
        );
    }
}
