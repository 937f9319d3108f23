//! SELECT by application identifier (`00 A4 04 00 Lc AID 00`).

use crate::apdu::CommandApdu;
use crate::command::error::CommandError;
use crate::command::exchange::impl_command;
use crate::command::header::{CLA_ISO, INS_SELECT, data_in_range, expect_header};
use crate::command::response::DataResponse;

/// SELECT by DF name / AID (P1 `04`, first or only occurrence). The response data is the
/// file control information, returned as a [`DataResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Select {
    /// The AID or DF name, 5..=16 bytes (e.g. `1PAY.SYS.DDF01` or an application AID).
    pub aid: Vec<u8>,
}

impl Select {
    /// Name used in errors.
    pub const NAME: &'static str = "SELECT";
    /// Shortest AID (ISO/IEC 7816-5).
    pub const MIN_AID_LEN: usize = 5;
    /// Longest AID (ISO/IEC 7816-5).
    pub const MAX_AID_LEN: usize = 16;

    /// `00 A4 04 00 Lc AID 00`.
    pub fn to_apdu(&self) -> CommandApdu {
        CommandApdu::new(CLA_ISO, INS_SELECT, 0x04, 0x00)
            .with_data(self.aid.clone())
            .with_ne(256)
    }

    /// Parses the command; Le is not checked.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_header(apdu, Self::NAME, [CLA_ISO, INS_SELECT, 0x04, 0x00])?;
        let aid = data_in_range(apdu, Self::NAME, Self::MIN_AID_LEN, Self::MAX_AID_LEN)?;
        Ok(Self { aid: aid.to_vec() })
    }
}

impl_command!(Select => DataResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apdu, encoded};

    #[test]
    fn apdu_bytes() {
        let cmd = Select {
            aid: b"1PAY.SYS.DDF01".to_vec(),
        };
        let text = "00A404000E315041592E5359532E444446303100";
        assert_eq!(encoded(&cmd.to_apdu()), text);
        assert_eq!(Select::parse(&apdu(text)), Ok(cmd));
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            Select::parse(&apdu("00A4040004A000000300")),
            Err(CommandError::DataLengthOutOfRange {
                command: "SELECT",
                min: 5,
                max: 16,
                found: 4
            })
        );
        assert_eq!(
            Select::parse(&apdu("00A4000002DF0100")),
            Err(CommandError::WrongP1 {
                command: "SELECT",
                expected: 0x04,
                found: 0x00
            })
        );
        assert_eq!(
            Select::parse(&apdu("00B2040005A00000000300")),
            Err(CommandError::WrongInstruction {
                command: "SELECT",
                expected: 0xA4,
                found: 0xB2
            })
        );
    }
}
