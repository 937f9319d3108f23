//! Command and response APDUs (ISO/IEC 7816-4).
//!
//! A [`CommandApdu`] is the header `CLA INS P1 P2`, optional command data and an optional
//! expected response length (Ne, carried on the wire as Le). It encodes to and parses from
//! the seven ISO 7816-4 cases:
//!
//! ```text
//! case 1   CLA INS P1 P2
//! case 2S  CLA INS P1 P2 Le                     Le  1 byte,  00 = 256
//! case 3S  CLA INS P1 P2 Lc data                Lc  1 byte,  01..FF
//! case 4S  CLA INS P1 P2 Lc data Le
//! case 2E  CLA INS P1 P2 00 Le(2)               Le  2 bytes, 0000 = 65536
//! case 3E  CLA INS P1 P2 00 Lc(2) data          Lc  2 bytes, 0001..FFFF
//! case 4E  CLA INS P1 P2 00 Lc(2) data Le(2)
//! ```
//!
//! A [`ResponseApdu`] is the response data followed by the status word `SW1 SW2`.

use crate::sw::StatusWord;

/// Largest Ne a short Le byte can express (`00` means 256).
pub const SHORT_MAX_NE: u32 = 256;
/// Largest Ne an extended Le field can express (`0000` means 65536).
pub const EXTENDED_MAX_NE: u32 = 65_536;
/// Largest command data a short Lc byte can announce.
pub const SHORT_MAX_DATA: usize = 255;
/// Largest command data an extended Lc field can announce.
pub const EXTENDED_MAX_DATA: usize = 65_535;

/// The ISO 7816-4 case of a command APDU: which of Lc/data and Le are present, and whether
/// the lengths are short (one byte) or extended (`00` then two bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApduCase {
    /// Header only.
    Case1,
    /// Header and a short Le.
    Case2Short,
    /// Header, short Lc and data.
    Case3Short,
    /// Header, short Lc, data and short Le.
    Case4Short,
    /// Header and an extended Le.
    Case2Extended,
    /// Header, extended Lc and data.
    Case3Extended,
    /// Header, extended Lc, data and extended Le.
    Case4Extended,
}

impl ApduCase {
    /// The conventional short name: `1`, `2S`, `3S`, `4S`, `2E`, `3E` or `4E`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Case1 => "1",
            Self::Case2Short => "2S",
            Self::Case3Short => "3S",
            Self::Case4Short => "4S",
            Self::Case2Extended => "2E",
            Self::Case3Extended => "3E",
            Self::Case4Extended => "4E",
        }
    }

    /// Whether this case uses extended (two-byte) length fields.
    pub fn is_extended(self) -> bool {
        matches!(
            self,
            Self::Case2Extended | Self::Case3Extended | Self::Case4Extended
        )
    }
}

impl core::fmt::Display for ApduCase {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "case {}", self.name())
    }
}

/// An APDU that cannot be parsed or encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApduError {
    /// The command is shorter than the four header bytes.
    #[error("command APDU: header needs 4 bytes, found {found}")]
    TooShort {
        /// Number of bytes present.
        found: usize,
    },
    /// A short Lc (byte 4) announces data that does not fit the input: the total must be
    /// `5 + Lc` (case 3S) or `6 + Lc` (case 4S).
    #[error(
        "command APDU case 3S/4S: Lc at offset 4 is {lc}, so the APDU must be {} (3S) or {} (4S) bytes, found {found}",
        5 + *lc as usize,
        6 + *lc as usize
    )]
    ShortLengthMismatch {
        /// The Lc byte.
        lc: u8,
        /// Total number of bytes present.
        found: usize,
    },
    /// Byte 4 is `00` (extended lengths follow) but the input ends after 6 bytes: the
    /// two-byte length at offsets 5..7 is cut off.
    #[error("command APDU case 2E/3E/4E: extended length at offset 5 needs 2 bytes, found 1")]
    TruncatedExtendedLength,
    /// An extended Lc (offsets 5..7) of `0000`, which no case allows.
    #[error("command APDU case 3E/4E: extended Lc at offset 5 is 0000")]
    ZeroExtendedLc {
        /// Total number of bytes present.
        found: usize,
    },
    /// An extended Lc (offsets 5..7) announces data that does not fit the input: the total
    /// must be `7 + Lc` (case 3E) or `9 + Lc` (case 4E).
    #[error(
        "command APDU case 3E/4E: extended Lc at offset 5 is {lc}, so the APDU must be {} (3E) or {} (4E) bytes, found {found}",
        7 + *lc as usize,
        9 + *lc as usize
    )]
    ExtendedLengthMismatch {
        /// The extended Lc value.
        lc: u16,
        /// Total number of bytes present.
        found: usize,
    },
    /// Encoding: the command data is longer than an extended Lc can announce (65535).
    #[error("command APDU: data of {found} bytes exceeds the extended maximum of 65535")]
    DataTooLong {
        /// Length of the data.
        found: usize,
    },
    /// Encoding: Ne is 0 or above 65536.
    #[error("command APDU: Ne must be 1..=65536, found {found}")]
    NeOutOfRange {
        /// The requested Ne.
        found: u32,
    },
    /// A response APDU shorter than the two status bytes.
    #[error("response APDU: needs at least 2 bytes (SW1 SW2), found {found}")]
    ResponseTooShort {
        /// Number of bytes present.
        found: usize,
    },
}

/// A command APDU.
///
/// `data` empty means no Lc and no data field; `ne` `None` means no Le field. `ne` holds the
/// expected response length Ne (1..=65536), not the raw Le byte: `Some(256)` encodes as the
/// short Le `00`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommandApdu {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (empty: no Lc, no data).
    pub data: Vec<u8>,
    /// Expected response length Ne, 1..=65536 (`None`: no Le).
    pub ne: Option<u32>,
    /// Encode with extended lengths even when short ones would do. [`CommandApdu::parse`]
    /// sets it when the input used extended lengths, so parse and encode round-trip exactly.
    pub extended: bool,
}

impl CommandApdu {
    /// A case-1 command (header only); add data or Ne through the public fields.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Self {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            ne: None,
            extended: false,
        }
    }

    /// Sets the command data (builder style for literals).
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self
    }

    /// Sets the expected response length Ne (builder style for literals).
    pub fn with_ne(mut self, ne: u32) -> Self {
        self.ne = Some(ne);
        self
    }

    /// The case this command encodes as, or why it cannot be encoded.
    pub fn case(&self) -> Result<ApduCase, ApduError> {
        let len = self.data.len();
        if len > EXTENDED_MAX_DATA {
            return Err(ApduError::DataTooLong { found: len });
        }
        if let Some(ne) = self.ne
            && (ne == 0 || ne > EXTENDED_MAX_NE)
        {
            return Err(ApduError::NeOutOfRange { found: ne });
        }
        let short =
            !self.extended && len <= SHORT_MAX_DATA && self.ne.is_none_or(|ne| ne <= SHORT_MAX_NE);
        Ok(match (len == 0, self.ne.is_some(), short) {
            (true, false, _) => ApduCase::Case1,
            (true, true, true) => ApduCase::Case2Short,
            (true, true, false) => ApduCase::Case2Extended,
            (false, false, true) => ApduCase::Case3Short,
            (false, false, false) => ApduCase::Case3Extended,
            (false, true, true) => ApduCase::Case4Short,
            (false, true, false) => ApduCase::Case4Extended,
        })
    }

    /// Encodes the command, appending to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), ApduError> {
        let case = self.case()?;
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        // `case()` has checked data.len() <= 65535 and ne in 1..=65536, so the narrowing
        // casts below keep every value (256 and 65536 encode as 00 / 0000 by design).
        let len = self.data.len();
        let ne = self.ne.unwrap_or(0);
        match case {
            ApduCase::Case1 => {}
            ApduCase::Case2Short => out.push(ne as u8),
            ApduCase::Case3Short => {
                out.push(len as u8);
                out.extend_from_slice(&self.data);
            }
            ApduCase::Case4Short => {
                out.push(len as u8);
                out.extend_from_slice(&self.data);
                out.push(ne as u8);
            }
            ApduCase::Case2Extended => {
                out.push(0);
                out.extend_from_slice(&(ne as u16).to_be_bytes());
            }
            ApduCase::Case3Extended => {
                out.push(0);
                out.extend_from_slice(&(len as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
            }
            ApduCase::Case4Extended => {
                out.push(0);
                out.extend_from_slice(&(len as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
                out.extend_from_slice(&(ne as u16).to_be_bytes());
            }
        }
        Ok(())
    }

    /// Encodes the command into a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ApduError> {
        let mut out = Vec::with_capacity(4 + 3 + self.data.len() + 2);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Parses a complete command APDU; the input must be exactly one command.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        Self::parse_with_case(bytes).map(|(_, apdu)| apdu)
    }

    /// Parses a complete command APDU and reports which case it was.
    pub fn parse_with_case(bytes: &[u8]) -> Result<(ApduCase, Self), ApduError> {
        let [cla, ins, p1, p2, body @ ..] = bytes else {
            return Err(ApduError::TooShort { found: bytes.len() });
        };
        let mut apdu = Self::new(*cla, *ins, *p1, *p2);
        let found = bytes.len();
        let case = match body {
            [] => ApduCase::Case1,
            [le] => {
                apdu.ne = Some(short_ne(*le));
                ApduCase::Case2Short
            }
            [0, rest @ ..] => {
                let [hi, lo, rest @ ..] = rest else {
                    return Err(ApduError::TruncatedExtendedLength);
                };
                let field = u16::from_be_bytes([*hi, *lo]);
                if rest.is_empty() {
                    apdu.ne = Some(extended_ne(field));
                    apdu.extended = true;
                    ApduCase::Case2Extended
                } else if field == 0 {
                    return Err(ApduError::ZeroExtendedLc { found });
                } else {
                    let lc = usize::from(field);
                    let mismatch = ApduError::ExtendedLengthMismatch { lc: field, found };
                    let data = rest.get(..lc).ok_or(mismatch)?;
                    let case = match rest.get(lc..) {
                        Some([]) => ApduCase::Case3Extended,
                        Some([hi, lo]) => {
                            apdu.ne = Some(extended_ne(u16::from_be_bytes([*hi, *lo])));
                            ApduCase::Case4Extended
                        }
                        _ => return Err(mismatch),
                    };
                    apdu.data = data.to_vec();
                    apdu.extended = true;
                    case
                }
            }
            [lc, rest @ ..] => {
                let mismatch = ApduError::ShortLengthMismatch { lc: *lc, found };
                let n = usize::from(*lc);
                let data = rest.get(..n).ok_or(mismatch)?;
                let case = match rest.get(n..) {
                    Some([]) => ApduCase::Case3Short,
                    Some([le]) => {
                        apdu.ne = Some(short_ne(*le));
                        ApduCase::Case4Short
                    }
                    _ => return Err(mismatch),
                };
                apdu.data = data.to_vec();
                case
            }
        };
        Ok((case, apdu))
    }
}

fn short_ne(le: u8) -> u32 {
    if le == 0 { SHORT_MAX_NE } else { u32::from(le) }
}

fn extended_ne(le: u16) -> u32 {
    if le == 0 {
        EXTENDED_MAX_NE
    } else {
        u32::from(le)
    }
}

/// A response APDU: response data followed by the status word.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResponseApdu {
    /// Response data (may be empty).
    pub data: Vec<u8>,
    /// The status word `SW1 SW2`.
    pub sw: StatusWord,
}

impl ResponseApdu {
    /// A response with data and a status word.
    pub fn new(data: impl Into<Vec<u8>>, sw: StatusWord) -> Self {
        Self {
            data: data.into(),
            sw,
        }
    }

    /// A response with no data.
    pub fn status(sw: StatusWord) -> Self {
        Self::new(Vec::new(), sw)
    }

    /// A `9000` response carrying `data`.
    pub fn success(data: impl Into<Vec<u8>>) -> Self {
        Self::new(data, StatusWord::Success)
    }

    /// Parses `data SW1 SW2`; at least the two status bytes must be present.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        let [data @ .., sw1, sw2] = bytes else {
            return Err(ApduError::ResponseTooShort { found: bytes.len() });
        };
        Ok(Self {
            data: data.to_vec(),
            sw: StatusWord::from_bytes(*sw1, *sw2),
        })
    }

    /// Encodes `data SW1 SW2`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.to_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn case_1_round_trip() {
        let apdu = CommandApdu::parse(&hex("00A40400")).unwrap();
        assert_eq!(apdu, CommandApdu::new(0x00, 0xA4, 0x04, 0x00));
        assert_eq!(apdu.case(), Ok(ApduCase::Case1));
        assert_eq!(apdu.to_bytes().unwrap(), hex("00A40400"));
    }

    #[test]
    fn case_2s_le_00_is_256() {
        let (case, apdu) = CommandApdu::parse_with_case(&hex("00C0000000")).unwrap();
        assert_eq!(case, ApduCase::Case2Short);
        assert_eq!(apdu.ne, Some(256));
        assert!(apdu.data.is_empty());
        assert_eq!(apdu.to_bytes().unwrap(), hex("00C0000000"));
        let apdu = CommandApdu::parse(&hex("805C000204")).unwrap();
        assert_eq!(apdu.ne, Some(4));
        assert_eq!(apdu.to_bytes().unwrap(), hex("805C000204"));
    }

    #[test]
    fn case_3s_and_4s() {
        let (case, apdu) = CommandApdu::parse_with_case(&hex("8072000004A1B2C3D4")).unwrap();
        assert_eq!(case, ApduCase::Case3Short);
        assert_eq!(apdu.data, hex("A1B2C3D4"));
        assert_eq!(apdu.ne, None);
        assert_eq!(apdu.to_bytes().unwrap(), hex("8072000004A1B2C3D4"));

        let bytes = hex("00A4040007A000000003101000");
        let (case, apdu) = CommandApdu::parse_with_case(&bytes).unwrap();
        assert_eq!(case, ApduCase::Case4Short);
        assert_eq!(apdu.data, hex("A0000000031010"));
        assert_eq!(apdu.ne, Some(256));
        assert_eq!(apdu.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn extended_cases_round_trip() {
        let (case, apdu) = CommandApdu::parse_with_case(&hex("00B00000000000")).unwrap();
        assert_eq!(case, ApduCase::Case2Extended);
        assert_eq!(apdu.ne, Some(65_536));
        assert!(apdu.extended);
        assert_eq!(apdu.to_bytes().unwrap(), hex("00B00000000000"));

        let bytes = hex("00D60000000003AABBCC");
        let (case, apdu) = CommandApdu::parse_with_case(&bytes).unwrap();
        assert_eq!(case, ApduCase::Case3Extended);
        assert_eq!(apdu.data, hex("AABBCC"));
        assert_eq!(apdu.to_bytes().unwrap(), bytes);

        let bytes = hex("80CA00000000020102" /* Lc 2, data 0102 */);
        let (case, apdu) = CommandApdu::parse_with_case(&bytes).unwrap();
        assert_eq!(case, ApduCase::Case3Extended);
        assert_eq!(apdu.data, hex("0102"));

        let bytes = hex("80CA000000000201020100");
        let (case, apdu) = CommandApdu::parse_with_case(&bytes).unwrap();
        assert_eq!(case, ApduCase::Case4Extended);
        assert_eq!(apdu.data, hex("0102"));
        assert_eq!(apdu.ne, Some(256));
        assert_eq!(apdu.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn encoder_switches_to_extended_when_needed() {
        let apdu = CommandApdu::new(0x00, 0xB0, 0x00, 0x00).with_ne(257);
        assert_eq!(apdu.case(), Ok(ApduCase::Case2Extended));
        assert_eq!(apdu.to_bytes().unwrap(), hex("00B00000000101"));

        let apdu = CommandApdu::new(0x00, 0xD6, 0x00, 0x00).with_data(vec![0x5A; 256]);
        assert_eq!(apdu.case(), Ok(ApduCase::Case3Extended));
        let bytes = apdu.to_bytes().unwrap();
        assert_eq!(bytes[..7], hex("00D60000000100")[..]);
        assert_eq!(bytes.len(), 7 + 256);
        assert_eq!(
            CommandApdu::parse(&bytes).unwrap(),
            apdu.clone().extended_flag()
        );

        // Data that fits short with Ne that does not: both lengths go extended.
        let apdu = CommandApdu::new(0x80, 0xCA, 0x00, 0x00)
            .with_data(hex("01"))
            .with_ne(65_536);
        assert_eq!(apdu.to_bytes().unwrap(), hex("80CA0000000001010000"));
    }

    impl CommandApdu {
        fn extended_flag(mut self) -> Self {
            self.extended = true;
            self
        }
    }

    #[test]
    fn encode_errors() {
        let apdu = CommandApdu::new(0, 0, 0, 0).with_ne(0);
        assert_eq!(apdu.to_bytes(), Err(ApduError::NeOutOfRange { found: 0 }));
        let apdu = CommandApdu::new(0, 0, 0, 0).with_ne(65_537);
        assert_eq!(
            apdu.to_bytes(),
            Err(ApduError::NeOutOfRange { found: 65_537 })
        );
        let apdu = CommandApdu::new(0, 0, 0, 0).with_data(vec![0; 65_536]);
        assert_eq!(
            apdu.to_bytes(),
            Err(ApduError::DataTooLong { found: 65_536 })
        );
    }

    #[test]
    fn parse_errors_are_exact() {
        assert_eq!(
            CommandApdu::parse(&hex("00A404")),
            Err(ApduError::TooShort { found: 3 })
        );
        assert_eq!(
            CommandApdu::parse(&[]),
            Err(ApduError::TooShort { found: 0 })
        );
        // Lc = 3 but only 2 data bytes.
        assert_eq!(
            CommandApdu::parse(&hex("00200000031234")),
            Err(ApduError::ShortLengthMismatch { lc: 3, found: 7 })
        );
        // Lc = 1 with two trailing bytes after the data.
        assert_eq!(
            CommandApdu::parse(&hex("0020000001123456")),
            Err(ApduError::ShortLengthMismatch { lc: 1, found: 8 })
        );
        assert_eq!(
            CommandApdu::parse(&hex("00B000000001")),
            Err(ApduError::TruncatedExtendedLength)
        );
        assert_eq!(
            CommandApdu::parse(&hex("00D60000000000AA")),
            Err(ApduError::ZeroExtendedLc { found: 8 })
        );
        assert_eq!(
            CommandApdu::parse(&hex("00D60000000003AABB")),
            Err(ApduError::ExtendedLengthMismatch { lc: 3, found: 9 })
        );
        // 3E data followed by a single byte: neither 3E nor 4E.
        assert_eq!(
            CommandApdu::parse(&hex("00D60000000001AABB")),
            Err(ApduError::ExtendedLengthMismatch { lc: 1, found: 9 })
        );
    }

    #[test]
    fn error_messages_name_case_and_lengths() {
        let msg = ApduError::ShortLengthMismatch { lc: 3, found: 7 }.to_string();
        assert_eq!(
            msg,
            "command APDU case 3S/4S: Lc at offset 4 is 3, so the APDU must be 8 (3S) or 9 (4S) bytes, found 7"
        );
        let msg = ApduError::ExtendedLengthMismatch { lc: 3, found: 9 }.to_string();
        assert_eq!(
            msg,
            "command APDU case 3E/4E: extended Lc at offset 5 is 3, so the APDU must be 10 (3E) or 12 (4E) bytes, found 9"
        );
    }

    #[test]
    fn response_parse_and_encode() {
        let r = ResponseApdu::parse(&hex("000003E89000")).unwrap();
        assert_eq!(r.data, hex("000003E8"));
        assert_eq!(r.sw, StatusWord::Success);
        assert_eq!(r.to_bytes(), hex("000003E89000"));

        let r = ResponseApdu::parse(&hex("63C2")).unwrap();
        assert!(r.data.is_empty());
        assert_eq!(r.sw, StatusWord::PinWrong { tries_left: 2 });
        assert_eq!(r.to_bytes(), hex("63C2"));

        assert_eq!(
            ResponseApdu::parse(&hex("90")),
            Err(ApduError::ResponseTooShort { found: 1 })
        );
        assert_eq!(
            ResponseApdu::parse(&[]),
            Err(ApduError::ResponseTooShort { found: 0 })
        );
    }

    #[test]
    fn case_names() {
        assert_eq!(ApduCase::Case4Extended.to_string(), "case 4E");
        assert!(ApduCase::Case3Extended.is_extended());
        assert!(!ApduCase::Case4Short.is_extended());
    }
}
