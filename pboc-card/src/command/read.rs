//! Reading files: READ RECORD (`00 B2 rec P2 Le`) and READ BINARY (`00 B0 P1 P2 Le`).
//!
//! Le is a field of these commands: `le` holds the raw Le byte, `00` meaning "up to 256
//! bytes". The response data is returned as a [`DataResponse`].

use crate::apdu::CommandApdu;
use crate::command::error::CommandError;
use crate::command::exchange::impl_command;
use crate::command::header::{
    CLA_ISO, INS_READ_BINARY, INS_READ_RECORD, exact_data, expect_cla_ins, ne_from_le, short_le,
};
use crate::command::response::DataResponse;

/// READ RECORD of record number `record` (P1), P2 = `SFI << 3 | 4`.
///
/// `sfi: None` reads from the currently selected EF (P2 `04`). `Some(0)` encodes the same
/// way, so parsing gives `None` back; SFIs above 30 are masked to five bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReadRecord {
    /// Record number, 1 = newest in a cyclic file.
    pub record: u8,
    /// Short file identifier (1..=30), or `None` for the current EF.
    pub sfi: Option<u8>,
    /// Le byte: expected record length (`00` = up to 256).
    pub le: u8,
}

impl ReadRecord {
    /// Name used in errors.
    pub const NAME: &'static str = "READ RECORD";

    /// `00 B2 record P2 Le`, e.g. `00 B2 01 C4 17` for the newest transaction detail.
    pub fn to_apdu(&self) -> CommandApdu {
        let p2 = (self.sfi.unwrap_or(0) & 0x1F) << 3 | 0x04;
        CommandApdu::new(CLA_ISO, INS_READ_RECORD, self.record, p2).with_ne(ne_from_le(self.le))
    }

    /// Parses the command; Le must be present and short.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_cla_ins(apdu, Self::NAME, CLA_ISO, INS_READ_RECORD)?;
        let sfi = apdu.p2 >> 3;
        if apdu.p2 & 0x07 != 0x04 || sfi == 31 {
            return Err(CommandError::InvalidParameter {
                command: Self::NAME,
                parameter: "P2",
                expected: "SFI << 3 | 4 with SFI 0..=30",
                found: apdu.p2,
            });
        }
        exact_data(apdu, Self::NAME, 0)?;
        Ok(Self {
            record: apdu.p1,
            sfi: (sfi != 0).then_some(sfi),
            le: short_le(apdu, Self::NAME)?,
        })
    }
}

/// Where READ BINARY reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryTarget {
    /// The currently selected EF at a 15-bit offset (P1 bit 8 clear, P1P2 = offset).
    Current {
        /// Offset, 0..=0x7FFF (higher bits are masked).
        offset: u16,
    },
    /// The EF with a short file identifier (P1 = `80 | SFI`, P2 = offset).
    ShortEf {
        /// Short file identifier, 1..=30 (masked to five bits).
        sfi: u8,
        /// Offset, 0..=255.
        offset: u8,
    },
}

/// READ BINARY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReadBinary {
    /// File and offset.
    pub target: BinaryTarget,
    /// Le byte: number of bytes to read (`00` = up to 256).
    pub le: u8,
}

impl ReadBinary {
    /// Name used in errors.
    pub const NAME: &'static str = "READ BINARY";

    /// `00 B0 P1 P2 Le`.
    pub fn to_apdu(&self) -> CommandApdu {
        let (p1, p2) = match self.target {
            BinaryTarget::Current { offset } => {
                let [hi, lo] = (offset & 0x7FFF).to_be_bytes();
                (hi, lo)
            }
            BinaryTarget::ShortEf { sfi, offset } => (0x80 | (sfi & 0x1F), offset),
        };
        CommandApdu::new(CLA_ISO, INS_READ_BINARY, p1, p2).with_ne(ne_from_le(self.le))
    }

    /// Parses the command; Le must be present and short.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_cla_ins(apdu, Self::NAME, CLA_ISO, INS_READ_BINARY)?;
        let target = if apdu.p1 & 0x80 == 0 {
            BinaryTarget::Current {
                offset: u16::from_be_bytes([apdu.p1, apdu.p2]),
            }
        } else {
            let sfi = apdu.p1 & 0x1F;
            if apdu.p1 & 0x60 != 0 || sfi == 0 || sfi == 31 {
                return Err(CommandError::InvalidParameter {
                    command: Self::NAME,
                    parameter: "P1",
                    expected: "an offset below 8000 or 80 | SFI with SFI 1..=30",
                    found: apdu.p1,
                });
            }
            BinaryTarget::ShortEf {
                sfi,
                offset: apdu.p2,
            }
        };
        exact_data(apdu, Self::NAME, 0)?;
        Ok(Self {
            target,
            le: short_le(apdu, Self::NAME)?,
        })
    }
}

impl_command!(ReadRecord => DataResponse);
impl_command!(ReadBinary => DataResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apdu, encoded};

    #[test]
    fn read_record_bytes() {
        let cmd = ReadRecord {
            record: 1,
            sfi: Some(0x18),
            le: 0x17,
        };
        assert_eq!(encoded(&cmd.to_apdu()), "00B201C417");
        assert_eq!(ReadRecord::parse(&apdu("00B201C417")), Ok(cmd));
        let current = ReadRecord {
            record: 3,
            sfi: None,
            le: 0,
        };
        assert_eq!(encoded(&current.to_apdu()), "00B2030400");
        assert_eq!(ReadRecord::parse(&apdu("00B2030400")), Ok(current));
    }

    #[test]
    fn read_record_errors() {
        assert_eq!(
            ReadRecord::parse(&apdu("00B201C017")),
            Err(CommandError::InvalidParameter {
                command: "READ RECORD",
                parameter: "P2",
                expected: "SFI << 3 | 4 with SFI 0..=30",
                found: 0xC0
            })
        );
        assert_eq!(
            ReadRecord::parse(&apdu("00B201C4")),
            Err(CommandError::MissingLe {
                command: "READ RECORD"
            })
        );
        assert_eq!(
            ReadRecord::parse(&apdu("00B201C4000101")),
            Err(CommandError::NeOutOfRange {
                command: "READ RECORD",
                max: 256,
                found: 257
            })
        );
        assert_eq!(
            ReadRecord::parse(&apdu("00B201C4011717")),
            Err(CommandError::WrongDataLength {
                command: "READ RECORD",
                expected: 0,
                found: 1
            })
        );
    }

    #[test]
    fn read_binary_bytes() {
        let terminal_id = ReadBinary {
            target: BinaryTarget::ShortEf {
                sfi: 0x16,
                offset: 0,
            },
            le: 6,
        };
        assert_eq!(encoded(&terminal_id.to_apdu()), "00B0960006");
        assert_eq!(ReadBinary::parse(&apdu("00B0960006")), Ok(terminal_id));
        let offset = ReadBinary {
            target: BinaryTarget::Current { offset: 0x0123 },
            le: 0,
        };
        assert_eq!(encoded(&offset.to_apdu()), "00B0012300");
        assert_eq!(ReadBinary::parse(&apdu("00B0012300")), Ok(offset));
    }

    #[test]
    fn read_binary_errors() {
        assert_eq!(
            ReadBinary::parse(&apdu("00B0C00006")),
            Err(CommandError::InvalidParameter {
                command: "READ BINARY",
                parameter: "P1",
                expected: "an offset below 8000 or 80 | SFI with SFI 1..=30",
                found: 0xC0
            })
        );
        assert_eq!(
            ReadBinary::parse(&apdu("00B0800006")),
            Err(CommandError::InvalidParameter {
                command: "READ BINARY",
                parameter: "P1",
                expected: "an offset below 8000 or 80 | SFI with SFI 1..=30",
                found: 0x80
            })
        );
        assert_eq!(
            ReadBinary::parse(&apdu("80B0960006")),
            Err(CommandError::WrongClass {
                command: "READ BINARY",
                expected: 0x00,
                found: 0x80
            })
        );
    }
}
