//! CIPHER DATA (`80 FA P1 00 Lc data`): encrypts or MACs with the key set up by DELIVERY
//! KEY. Clearing uses it to recompute TACs inside a PSAM.

use crate::apdu::CommandApdu;
use crate::command::error::CommandError;
use crate::command::exchange::impl_command;
use crate::command::header::{CLA_PBOC, INS_CIPHER_DATA, data_in_range, expect_cla_ins, expect_p2};
use crate::command::response::DataResponse;

/// What CIPHER DATA does (P1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherMode {
    /// `00`: encrypt.
    Encrypt,
    /// `05`: MAC over a single block sequence, the data starting with an 8-byte IV.
    MacWithIv,
    /// `07`: first block(s) of a chained MAC.
    MacFirst,
    /// `03`: next block(s) of a chained MAC.
    MacNext,
    /// `01`: last block(s) of a chained MAC; returns the MAC.
    MacLast,
}

impl CipherMode {
    /// The P1 value.
    pub fn p1(self) -> u8 {
        match self {
            Self::Encrypt => 0x00,
            Self::MacWithIv => 0x05,
            Self::MacFirst => 0x07,
            Self::MacNext => 0x03,
            Self::MacLast => 0x01,
        }
    }

    /// The mode a P1 value selects, if any.
    pub fn from_p1(p1: u8) -> Option<Self> {
        Some(match p1 {
            0x00 => Self::Encrypt,
            0x05 => Self::MacWithIv,
            0x07 => Self::MacFirst,
            0x03 => Self::MacNext,
            0x01 => Self::MacLast,
            _ => return None,
        })
    }
}

/// CIPHER DATA. The spec's form has no Le; a T=0 PSAM announces its result with `61xx`.
/// The result comes back as a [`DataResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CipherData {
    /// Operation (P1).
    pub mode: CipherMode,
    /// Input, 1..=255 bytes (for [`CipherMode::MacWithIv`] the first 8 bytes are the IV).
    pub data: Vec<u8>,
}

impl CipherData {
    /// Name used in errors.
    pub const NAME: &'static str = "CIPHER DATA";

    /// `80 FA P1 00 Lc data`.
    pub fn to_apdu(&self) -> CommandApdu {
        CommandApdu::new(CLA_PBOC, INS_CIPHER_DATA, self.mode.p1(), 0x00)
            .with_data(self.data.clone())
    }

    /// Parses the command; Le is not checked.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_cla_ins(apdu, Self::NAME, CLA_PBOC, INS_CIPHER_DATA)?;
        let mode = CipherMode::from_p1(apdu.p1).ok_or(CommandError::InvalidParameter {
            command: Self::NAME,
            parameter: "P1",
            expected: "00, 01, 03, 05 or 07",
            found: apdu.p1,
        })?;
        expect_p2(apdu, Self::NAME, 0x00)?;
        let data = data_in_range(apdu, Self::NAME, 1, 255)?;
        Ok(Self {
            mode,
            data: data.to_vec(),
        })
    }
}

impl_command!(CipherData => DataResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apdu, encoded};

    #[test]
    fn modes_round_trip() {
        for p1 in 0..=u8::MAX {
            match CipherMode::from_p1(p1) {
                Some(mode) => assert_eq!(mode.p1(), p1),
                None => assert!(![0x00, 0x01, 0x03, 0x05, 0x07].contains(&p1)),
            }
        }
    }

    #[test]
    fn bytes_and_errors() {
        let cmd = CipherData {
            mode: CipherMode::MacWithIv,
            data: vec![0; 16],
        };
        let text = "80FA050010 0000000000000000 0000000000000000".replace(' ', "");
        assert_eq!(encoded(&cmd.to_apdu()), text);
        assert_eq!(CipherData::parse(&apdu(&text)), Ok(cmd));
        let cmd = CipherData {
            mode: CipherMode::Encrypt,
            data: vec![0x11; 8],
        };
        assert_eq!(encoded(&cmd.to_apdu()), "80FA0000081111111111111111");
        assert_eq!(
            CipherData::parse(&apdu("80FA0200081111111111111111")),
            Err(CommandError::InvalidParameter {
                command: "CIPHER DATA",
                parameter: "P1",
                expected: "00, 01, 03, 05 or 07",
                found: 0x02
            })
        );
        assert_eq!(
            CipherData::parse(&apdu("80FA0100")),
            Err(CommandError::DataLengthOutOfRange {
                command: "CIPHER DATA",
                min: 1,
                max: 255,
                found: 0
            })
        );
        assert_eq!(
            CipherData::parse(&apdu("80FA01010111")),
            Err(CommandError::WrongP2 {
                command: "CIPHER DATA",
                expected: 0x00,
                found: 0x01
            })
        );
    }
}
