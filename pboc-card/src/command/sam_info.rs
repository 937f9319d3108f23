//! Reading the PSAM's identity: the terminal id (`00 B0 96 00 06`, EF `0x16`) and the
//! public information file (`00 B0 95 00 0E`, EF `0x15`).

use crate::apdu::CommandApdu;
use crate::command::error::CommandError;
use crate::command::exchange::{impl_command, impl_response};
use crate::command::header::{CLA_ISO, INS_READ_BINARY, exact_data, exact_response, expect_header};

/// Short EF id of the terminal id file.
pub const TERMINAL_ID_SFI: u8 = 0x16;
/// Short EF id of the PSAM public information file.
pub const PSAM_INFO_SFI: u8 = 0x15;

/// READ BINARY of the PSAM's terminal id (`00 B0 96 00 06`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReadTerminalId;

impl ReadTerminalId {
    /// Name used in errors.
    pub const NAME: &'static str = "READ TERMINAL ID";

    /// `00 B0 96 00 06`.
    pub fn to_apdu(&self) -> CommandApdu {
        CommandApdu::new(CLA_ISO, INS_READ_BINARY, 0x80 | TERMINAL_ID_SFI, 0x00)
            .with_ne(TerminalIdResponse::LEN as u32)
    }

    /// Parses the command; Le is not checked.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_header(
            apdu,
            Self::NAME,
            [CLA_ISO, INS_READ_BINARY, 0x80 | TERMINAL_ID_SFI, 0x00],
        )?;
        exact_data(apdu, Self::NAME, 0)?;
        Ok(Self)
    }
}

/// The terminal id stored in the PSAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TerminalIdResponse {
    /// Terminal id.
    pub terminal: [u8; 6],
}

impl TerminalIdResponse {
    /// Length of the response data.
    pub const LEN: usize = 6;

    /// Parses the 6-byte response data.
    pub fn parse(data: &[u8]) -> Result<Self, CommandError> {
        let mut r = exact_response(data, ReadTerminalId::NAME, Self::LEN)?;
        Ok(Self {
            terminal: r.array()?,
        })
    }

    /// Encodes the response data.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.terminal.to_vec()
    }
}

/// READ BINARY of the PSAM public information file (`00 B0 95 00 0E`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReadPsamInfo;

impl ReadPsamInfo {
    /// Name used in errors.
    pub const NAME: &'static str = "READ PSAM INFO";

    /// `00 B0 95 00 0E`.
    pub fn to_apdu(&self) -> CommandApdu {
        CommandApdu::new(CLA_ISO, INS_READ_BINARY, 0x80 | PSAM_INFO_SFI, 0x00)
            .with_ne(PsamInfo::LEN as u32)
    }

    /// Parses the command; Le is not checked.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_header(
            apdu,
            Self::NAME,
            [CLA_ISO, INS_READ_BINARY, 0x80 | PSAM_INFO_SFI, 0x00],
        )?;
        exact_data(apdu, Self::NAME, 0)?;
        Ok(Self)
    }
}

/// The PSAM public information file, 14 bytes.
///
/// The spec page only says "serial and version". This crate uses the layout commonly
/// documented for PSAM EF `0x15`:
///
/// ```text
/// offset  0  PSAM serial number (10)
///        10  PSAM version (1)
///        11  key card type (1)
///        12  command set version (1)
///        13  issuer FCI data (1)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PsamInfo {
    /// PSAM serial number.
    pub serial: [u8; 10],
    /// PSAM version.
    pub version: u8,
    /// Key card type.
    pub key_type: u8,
    /// Command set version.
    pub command_set_version: u8,
    /// Issuer-defined FCI data.
    pub fci_data: u8,
}

impl PsamInfo {
    /// Length of the response data.
    pub const LEN: usize = 14;

    /// Parses the 14-byte response data.
    pub fn parse(data: &[u8]) -> Result<Self, CommandError> {
        let mut r = exact_response(data, ReadPsamInfo::NAME, Self::LEN)?;
        Ok(Self {
            serial: r.array()?,
            version: r.u8()?,
            key_type: r.u8()?,
            command_set_version: r.u8()?,
            fci_data: r.u8()?,
        })
    }

    /// Encodes the response data.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.extend_from_slice(&self.serial);
        out.extend_from_slice(&[
            self.version,
            self.key_type,
            self.command_set_version,
            self.fci_data,
        ]);
        out
    }
}

impl_command!(ReadTerminalId => TerminalIdResponse);
impl_command!(ReadPsamInfo => PsamInfo);
impl_response!(TerminalIdResponse);
impl_response!(PsamInfo);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apdu, encoded, hex};

    #[test]
    fn terminal_id() {
        assert_eq!(encoded(&ReadTerminalId.to_apdu()), "00B0960006");
        assert_eq!(
            ReadTerminalId::parse(&apdu("00B0960006")),
            Ok(ReadTerminalId)
        );
        assert_eq!(
            ReadTerminalId::parse(&apdu("00B0950006")),
            Err(CommandError::WrongP1 {
                command: "READ TERMINAL ID",
                expected: 0x96,
                found: 0x95
            })
        );
        let r = TerminalIdResponse::parse(&hex("112233445566")).unwrap();
        assert_eq!(r.terminal, [0x11, 0x22, 0x33, 0x44, 0x55, 0x66]);
        assert_eq!(r.to_bytes(), hex("112233445566"));
        assert_eq!(
            TerminalIdResponse::parse(&hex("1122334455")),
            Err(CommandError::WrongResponseLength {
                command: "READ TERMINAL ID",
                expected: 6,
                found: 5
            })
        );
    }

    #[test]
    fn psam_info() {
        assert_eq!(encoded(&ReadPsamInfo.to_apdu()), "00B095000E");
        assert_eq!(ReadPsamInfo::parse(&apdu("00B095000E")), Ok(ReadPsamInfo));
        assert_eq!(
            ReadPsamInfo::parse(&apdu("00B0950001000E")),
            Err(CommandError::WrongDataLength {
                command: "READ PSAM INFO",
                expected: 0,
                found: 1
            })
        );
        let bytes = hex("01020304050607080910 01 02 03 04");
        let r = PsamInfo::parse(&bytes).unwrap();
        assert_eq!(
            r,
            PsamInfo {
                serial: [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x10],
                version: 1,
                key_type: 2,
                command_set_version: 3,
                fci_data: 4,
            }
        );
        assert_eq!(r.to_bytes(), bytes);
        assert_eq!(
            PsamInfo::parse(&bytes[..13]),
            Err(CommandError::WrongResponseLength {
                command: "READ PSAM INFO",
                expected: 14,
                found: 13
            })
        );
    }
}
