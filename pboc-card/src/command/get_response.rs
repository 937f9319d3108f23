//! GET RESPONSE (`00 C0 00 00 Le`): fetches response data a T=0 card announced with `61xx`.

use crate::apdu::CommandApdu;
use crate::command::error::CommandError;
use crate::command::exchange::impl_command;
use crate::command::header::{
    CLA_ISO, INS_GET_RESPONSE, exact_data, expect_header, ne_from_le, short_le,
};
use crate::command::response::DataResponse;

/// GET RESPONSE for `le` bytes (the `xx` of `61xx`; `00` = 256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GetResponse {
    /// Le byte.
    pub le: u8,
}

impl GetResponse {
    /// Name used in errors.
    pub const NAME: &'static str = "GET RESPONSE";

    /// `00 C0 00 00 Le`.
    pub fn to_apdu(&self) -> CommandApdu {
        CommandApdu::new(CLA_ISO, INS_GET_RESPONSE, 0x00, 0x00).with_ne(ne_from_le(self.le))
    }

    /// Parses the command; Le must be present and short.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_header(apdu, Self::NAME, [CLA_ISO, INS_GET_RESPONSE, 0x00, 0x00])?;
        exact_data(apdu, Self::NAME, 0)?;
        Ok(Self {
            le: short_le(apdu, Self::NAME)?,
        })
    }
}

impl_command!(GetResponse => DataResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apdu, encoded};

    #[test]
    fn bytes_and_errors() {
        let cmd = GetResponse { le: 0x10 };
        assert_eq!(encoded(&cmd.to_apdu()), "00C0000010");
        assert_eq!(GetResponse::parse(&apdu("00C0000010")), Ok(cmd));
        assert_eq!(
            GetResponse::parse(&apdu("00C0000000")),
            Ok(GetResponse { le: 0 })
        );
        assert_eq!(
            GetResponse::parse(&apdu("00C00000")),
            Err(CommandError::MissingLe {
                command: "GET RESPONSE"
            })
        );
        assert_eq!(
            GetResponse::parse(&apdu("00C0010010")),
            Err(CommandError::WrongP1 {
                command: "GET RESPONSE",
                expected: 0x00,
                found: 0x01
            })
        );
    }
}
