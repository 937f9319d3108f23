//! Sans-IO message framing: length header, optional TPDU, optional UnionPay header, body;
//! plus a `tokio_util::codec` adapter behind the `tokio` feature.
//!
//! # Layouts
//!
//! A frame on the wire is
//!
//! ```text
//! +----------------+------------------+--------------------------+--------------------+
//! | length header  | TPDU (optional)  | CUPS header (optional)   | message body       |
//! | 0, 2 or 4 B    | 5 B              | 6 B, BCD                 | MTI, bitmap, ...   |
//! +----------------+------------------+--------------------------+--------------------+
//!                  |<------------- counted by the length header -------------------->|
//! ```
//!
//! The length header counts the bytes after it, unless
//! [`includes_self`](FrameConfig::includes_self) is set, in which case it counts its own bytes
//! too. The kinds of length header ([`LengthHeader`]):
//!
//! ```text
//! Binary2  2 bytes, unsigned big-endian         00 2E          = 46
//! Binary4  4 bytes, unsigned big-endian         00 00 00 2E    = 46
//! Ascii4   4 ASCII decimal digits               30 30 34 36    = "0046"
//! Bcd2     2 bytes packed BCD, 0000-9999        00 46          = 46
//! None     no length header: the transport delimits messages
//! ```
//!
//! The UnionPay POS layout ([`FrameConfig::cups_pos`]), for example a purchase request:
//!
//! ```text
//! +-------+----------------+-------------------+----------------------------------+
//! | 00 5A | 60 00 04 00 00 | 60 22 00 00 00 00 | 02 00 70 24 ...                  |
//! +-------+----------------+-------------------+----------------------------------+
//!  length  TPDU: id 60,     CUPS header:        body: MTI 0200 (BCD), bitmap, fields
//!  (2 B,   destination      application type 60,
//!  binary) 0004, source     software version 22, terminal status 0,
//!          0000             processing requirement 0, reserved 000000
//! ```
//!
//! The response swaps the TPDU's addresses ([`Tpdu::reply`]).
//!
//! # Decoding
//!
//! [`FrameConfig::decode`] looks at the start of a buffer and returns `Ok(None)` while more
//! bytes are needed, or a [`Frame`] borrowing its body from the buffer plus the number of bytes
//! consumed. [`FrameConfig::decode_bytes`] does the same on a [`BytesMut`] and splits the frame
//! off without copying, so the body ([`Bytes`]) can go straight to a zero-copy message decoder.
//!
//! The length header is checked as soon as it is complete, before any of the body is
//! buffered: a length above [`max_frame`](FrameConfig::max_frame) is
//! [`FrameErrorKind::FrameTooLong`], one too small to hold the TPDU and header is
//! [`FrameErrorKind::LengthTooSmall`], and a non-digit in an ASCII or BCD length is
//! [`FrameErrorKind::InvalidLengthDigit`]. Error offsets count from the start of the frame.
//!
//! With [`LengthHeader::None`] a frame is everything buffered when the input ends:
//! [`decode`](FrameConfig::decode) keeps returning `Ok(None)` (failing only once more than
//! `max_frame` bytes are buffered), and the caller calls
//! [`decode_eof`](FrameConfig::decode_eof) when the transport says the message is complete
//! (end of a connection that carries one message, a datagram, ...).
//!
//! ```
//! use iso8583_wire::frame::{CupsHeader, FrameConfig, Tpdu};
//!
//! let config = FrameConfig::cups_pos();
//! let tpdu = Tpdu::new(0x0004, 0x0000);
//! let header: CupsHeader = "602200000000".parse()?;
//! let mut wire = Vec::new();
//! config.encode(Some(tpdu), Some(header), &[0x08, 0x00], &mut wire)?;
//! assert_eq!(
//!     wire,
//!     [0x00, 0x0D, 0x60, 0x00, 0x04, 0x00, 0x00, 0x60, 0x22, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00]
//! );
//!
//! assert_eq!(config.decode(&wire[..5])?, None); // wait for more
//! let (frame, used) = config.decode(&wire)?.ok_or("incomplete")?;
//! assert_eq!(used, wire.len());
//! assert_eq!(frame.tpdu.map(|t| t.reply()), Some(Tpdu::new(0x0000, 0x0004)));
//! assert_eq!(frame.header.map(|h| h.software_version()), Some(22));
//! assert_eq!(frame.body, [0x08, 0x00]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::vec::Vec;
use bytes::{Buf, Bytes, BytesMut};
use core::fmt;
use core::str::FromStr;

/// Size of a TPDU in bytes.
pub const TPDU_LEN: usize = 5;

/// Size of a UnionPay (CUPS) message header in bytes.
pub const CUPS_HEADER_LEN: usize = 6;

/// The default for [`FrameConfig::max_frame`]: 8 KiB after the length header.
pub const DEFAULT_MAX_FRAME: usize = 8 * 1024;

/// The longest length header, in bytes.
const MAX_LENGTH_HEADER: usize = 4;

/// What went wrong while framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameErrorKind {
    /// The input ended in the middle of a frame (only from the `*_eof` methods and
    /// [`Tpdu::parse`] / [`CupsHeader::parse`]; the other decoders return `Ok(None)` and wait
    /// instead). The offset is the end of the available bytes.
    Incomplete {
        /// Bytes the frame needs in all, as far as known (at least the length header).
        needed: usize,
        /// Bytes that were available.
        available: usize,
    },
    /// The length header announces more than the configured maximum (or, when encoding, the
    /// frame does not fit the maximum or the length header). Both numbers are in the terms
    /// of the length header: they include its own size when it counts itself. Offset 0.
    FrameTooLong {
        /// The length read (or that would be written).
        length: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// The length header announces fewer bytes than the TPDU and header need (or, with
    /// `includes_self`, fewer than the length header itself). In the terms of the length
    /// header, like [`FrameTooLong`](Self::FrameTooLong). Offset 0.
    LengthTooSmall {
        /// The length read.
        length: usize,
        /// The smallest length allowed.
        min: usize,
    },
    /// A byte of an ASCII length header that is not `'0'`-`'9'`, or a byte of a BCD length
    /// header with a nibble above 9. The offset is that byte.
    InvalidLengthDigit {
        /// The byte found.
        found: u8,
    },
    /// A byte of the CUPS header with a nibble above 9 (or, parsing text, a character that is
    /// not a digit or one too many). The offset is that byte (character).
    InvalidHeaderDigit {
        /// The byte found.
        found: u8,
    },
    /// Encoding without a TPDU although the configuration has one. Offset: where it goes.
    MissingTpdu,
    /// Encoding with a TPDU although the configuration has none. Offset: where it would go.
    UnexpectedTpdu,
    /// Encoding without a CUPS header although the configuration has one.
    MissingHeader,
    /// Encoding with a CUPS header although the configuration has none.
    UnexpectedHeader,
}

/// A framing error: what went wrong and at which byte offset from the start of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameError {
    kind: FrameErrorKind,
    offset: usize,
}

impl FrameError {
    /// Makes an error of `kind` at `offset`.
    pub const fn new(kind: FrameErrorKind, offset: usize) -> Self {
        FrameError { kind, offset }
    }

    /// What went wrong.
    pub const fn kind(&self) -> FrameErrorKind {
        self.kind
    }

    /// The byte offset from the start of the frame; see each [`FrameErrorKind`].
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// Whether the input merely ended too early ([`FrameErrorKind::Incomplete`]): with more
    /// bytes the same input could succeed.
    pub const fn is_incomplete(&self) -> bool {
        matches!(self.kind, FrameErrorKind::Incomplete { .. })
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match self.kind {
            FrameErrorKind::Incomplete { needed, available } => write!(
                f,
                "frame at offset {at}: expected {needed} bytes, found only {available}"
            ),
            FrameErrorKind::FrameTooLong { length, max } => write!(
                f,
                "frame length at offset {at}: expected at most {max}, found {length}"
            ),
            FrameErrorKind::LengthTooSmall { length, min } => write!(
                f,
                "frame length at offset {at}: expected at least {min}, found {length}"
            ),
            FrameErrorKind::InvalidLengthDigit { found } => write!(
                f,
                "frame length at offset {at}: expected a decimal digit, found byte {found:02X}"
            ),
            FrameErrorKind::InvalidHeaderDigit { found } => write!(
                f,
                "CUPS header at offset {at}: expected BCD digits, found byte {found:02X}"
            ),
            FrameErrorKind::MissingTpdu => {
                write!(f, "frame at offset {at}: expected a TPDU, found none")
            }
            FrameErrorKind::UnexpectedTpdu => write!(
                f,
                "frame at offset {at}: expected no TPDU (not configured), found one"
            ),
            FrameErrorKind::MissingHeader => write!(
                f,
                "frame at offset {at}: expected a CUPS header, found none"
            ),
            FrameErrorKind::UnexpectedHeader => write!(
                f,
                "frame at offset {at}: expected no CUPS header (not configured), found one"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

/// The kind of length header in front of each frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LengthHeader {
    /// No length header: the transport delimits messages (see the module docs).
    None,
    /// 2 bytes, unsigned big-endian (0-65,535).
    Binary2,
    /// 4 bytes, unsigned big-endian (0-4,294,967,295).
    Binary4,
    /// 4 ASCII decimal digits (`"0000"`-`"9999"`).
    Ascii4,
    /// 2 bytes of packed BCD (`00 00`-`99 99`).
    Bcd2,
}

impl LengthHeader {
    /// The size of the length header in bytes.
    pub const fn size(self) -> usize {
        match self {
            LengthHeader::None => 0,
            LengthHeader::Binary2 | LengthHeader::Bcd2 => 2,
            LengthHeader::Binary4 | LengthHeader::Ascii4 => 4,
        }
    }

    /// The largest value the length header can hold (`usize::MAX` for [`LengthHeader::None`]).
    pub const fn max_value(self) -> usize {
        match self {
            LengthHeader::None => usize::MAX,
            LengthHeader::Binary2 => 0xFFFF,
            // Saturates on targets whose usize is narrower than 32 bits.
            LengthHeader::Binary4 => {
                if usize::BITS >= 32 {
                    u32::MAX as usize
                } else {
                    usize::MAX
                }
            }
            LengthHeader::Ascii4 | LengthHeader::Bcd2 => 9999,
        }
    }

    /// Reads the value of a complete length header at the start of `buf`.
    fn read(self, buf: &[u8]) -> Result<usize, FrameError> {
        let digit_error =
            |i: usize, found: u8| FrameError::new(FrameErrorKind::InvalidLengthDigit { found }, i);
        match self {
            LengthHeader::None => Ok(0),
            LengthHeader::Binary2 | LengthHeader::Binary4 => Ok(buf
                .iter()
                .take(self.size())
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))),
            LengthHeader::Ascii4 => {
                let mut value = 0usize;
                for (i, &b) in buf.iter().take(4).enumerate() {
                    if !b.is_ascii_digit() {
                        return Err(digit_error(i, b));
                    }
                    value = value * 10 + usize::from(b - b'0');
                }
                Ok(value)
            }
            LengthHeader::Bcd2 => {
                let mut value = 0usize;
                for (i, &b) in buf.iter().take(2).enumerate() {
                    let (hi, lo) = (b >> 4, b & 0x0F);
                    if hi > 9 || lo > 9 {
                        return Err(digit_error(i, b));
                    }
                    value = value * 100 + usize::from(hi * 10 + lo);
                }
                Ok(value)
            }
        }
    }

    /// Encodes `value` (at most [`max_value`](Self::max_value)) into a small buffer.
    fn write(self, value: usize) -> [u8; MAX_LENGTH_HEADER] {
        match self {
            LengthHeader::None => [0; MAX_LENGTH_HEADER],
            LengthHeader::Binary2 => {
                let [_, _, _, _, _, _, b1, b0] = (value as u64).to_be_bytes();
                [b1, b0, 0, 0]
            }
            LengthHeader::Binary4 => {
                let [_, _, _, _, b3, b2, b1, b0] = (value as u64).to_be_bytes();
                [b3, b2, b1, b0]
            }
            LengthHeader::Ascii4 => {
                let d = digits4(value);
                [b'0' + d[0], b'0' + d[1], b'0' + d[2], b'0' + d[3]]
            }
            LengthHeader::Bcd2 => {
                let d = digits4(value);
                [(d[0] << 4) | d[1], (d[2] << 4) | d[3], 0, 0]
            }
        }
    }
}

/// The four low decimal digits of `value`, most significant first.
fn digits4(value: usize) -> [u8; 4] {
    let v = value % 10_000;
    [
        (v / 1000) as u8,
        (v / 100 % 10) as u8,
        (v / 10 % 10) as u8,
        (v % 10) as u8,
    ]
}

/// A Transport Protocol Data Unit: the 5-byte routing prefix of UnionPay-style POS frames.
///
/// ```text
/// +------+------------------+------------------+
/// | id   | destination (2)  | source (2)       |
/// | 60   | 00 04            | 00 00            |
/// +------+------------------+------------------+
/// ```
///
/// The id is carried as data (it is `60` in practice, see [`Tpdu::ID`]); addresses are
/// big-endian. A response carries the request's TPDU with the addresses swapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tpdu {
    /// The TPDU id, normally [`Tpdu::ID`] (`0x60`).
    pub id: u8,
    /// The destination address (NII).
    pub destination: u16,
    /// The source (originator) address.
    pub source: u16,
}

impl Tpdu {
    /// The usual TPDU id, `0x60`.
    pub const ID: u8 = 0x60;

    /// A TPDU with id `0x60` and the given addresses.
    pub const fn new(destination: u16, source: u16) -> Self {
        Tpdu {
            id: Self::ID,
            destination,
            source,
        }
    }

    /// The TPDU in its 5 wire bytes.
    pub const fn from_bytes(bytes: [u8; TPDU_LEN]) -> Self {
        let [id, d0, d1, s0, s1] = bytes;
        Tpdu {
            id,
            destination: u16::from_be_bytes([d0, d1]),
            source: u16::from_be_bytes([s0, s1]),
        }
    }

    /// Reads a TPDU from the first 5 bytes of `bytes` ([`FrameErrorKind::Incomplete`] if
    /// there are fewer).
    pub fn parse(bytes: &[u8]) -> Result<Self, FrameError> {
        match bytes.first_chunk::<TPDU_LEN>() {
            Some(b) => Ok(Self::from_bytes(*b)),
            None => Err(FrameError::new(
                FrameErrorKind::Incomplete {
                    needed: TPDU_LEN,
                    available: bytes.len(),
                },
                bytes.len(),
            )),
        }
    }

    /// The 5 wire bytes.
    pub const fn to_bytes(self) -> [u8; TPDU_LEN] {
        let [d0, d1] = self.destination.to_be_bytes();
        let [s0, s1] = self.source.to_be_bytes();
        [self.id, d0, d1, s0, s1]
    }

    /// The TPDU for the response: same id, destination and source swapped.
    pub const fn reply(&self) -> Self {
        Tpdu {
            id: self.id,
            destination: self.source,
            source: self.destination,
        }
    }
}

impl fmt::Display for Tpdu {
    /// Upper-case hex of the 5 bytes, e.g. `6000040000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02X}{:04X}{:04X}",
            self.id, self.destination, self.source
        )
    }
}

/// The 6-byte BCD message header of UnionPay (CUPS) POS frames: 12 digits.
///
/// ```text
/// +--------------+--------------+-------------+-------------+----------------+
/// | app type n2  | software     | terminal    | processing  | reserved n6    |
/// | "60"         | version n2   | status n1   | requirement | "311003"       |
/// |              | "31"         | "0"         | n1 "0"      |                |
/// +--------------+--------------+-------------+-------------+----------------+
///   byte 0         byte 1         byte 2 high   byte 2 low    bytes 3-5
/// ```
///
/// Real headers seen: `603100311003`, `603210320072`, `602200000000`. What the status and
/// processing-requirement digits ask of a terminal is not confirmed; they are carried as data.
/// Every nibble is a decimal digit (checked when parsing).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CupsHeader {
    // Invariant: every nibble is 0-9.
    bcd: [u8; CUPS_HEADER_LEN],
}

impl CupsHeader {
    /// A header from its parts, or `None` if a part has too many digits (above 99 for the
    /// two-digit parts, 9 for the one-digit parts, 999,999 for `reserved`).
    pub const fn new(
        application_type: u8,
        software_version: u8,
        terminal_status: u8,
        processing_requirement: u8,
        reserved: u32,
    ) -> Option<Self> {
        if application_type > 99
            || software_version > 99
            || terminal_status > 9
            || processing_requirement > 9
            || reserved > 999_999
        {
            return None;
        }
        let r = reserved;
        Some(CupsHeader {
            bcd: [
                bcd_byte(application_type),
                bcd_byte(software_version),
                (terminal_status << 4) | processing_requirement,
                bcd_byte((r / 10_000) as u8),
                bcd_byte((r / 100 % 100) as u8),
                bcd_byte((r % 100) as u8),
            ],
        })
    }

    /// The header in its 6 wire bytes, checking that every nibble is a digit
    /// ([`FrameErrorKind::InvalidHeaderDigit`] at the offending byte otherwise).
    pub fn from_bytes(bytes: [u8; CUPS_HEADER_LEN]) -> Result<Self, FrameError> {
        for (i, &b) in bytes.iter().enumerate() {
            if b >> 4 > 9 || b & 0x0F > 9 {
                return Err(FrameError::new(
                    FrameErrorKind::InvalidHeaderDigit { found: b },
                    i,
                ));
            }
        }
        Ok(CupsHeader { bcd: bytes })
    }

    /// Reads a header from the first 6 bytes of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, FrameError> {
        match bytes.first_chunk::<CUPS_HEADER_LEN>() {
            Some(b) => Self::from_bytes(*b),
            None => Err(FrameError::new(
                FrameErrorKind::Incomplete {
                    needed: CUPS_HEADER_LEN,
                    available: bytes.len(),
                },
                bytes.len(),
            )),
        }
    }

    /// The 6 wire bytes.
    pub const fn to_bytes(self) -> [u8; CUPS_HEADER_LEN] {
        self.bcd
    }

    /// The 6 wire bytes, borrowed.
    pub const fn as_bytes(&self) -> &[u8; CUPS_HEADER_LEN] {
        &self.bcd
    }

    /// The application type (digits 1-2; 60 in practice).
    pub const fn application_type(self) -> u8 {
        bcd_value(self.bcd[0])
    }

    /// The software version (digits 3-4, e.g. 22, 31, 32).
    pub const fn software_version(self) -> u8 {
        bcd_value(self.bcd[1])
    }

    /// The terminal status (digit 5).
    pub const fn terminal_status(self) -> u8 {
        self.bcd[2] >> 4
    }

    /// The processing requirement (digit 6).
    pub const fn processing_requirement(self) -> u8 {
        self.bcd[2] & 0x0F
    }

    /// The reserved part (digits 7-12) as a number, 0-999,999.
    pub const fn reserved(self) -> u32 {
        bcd_value(self.bcd[3]) as u32 * 10_000
            + bcd_value(self.bcd[4]) as u32 * 100
            + bcd_value(self.bcd[5]) as u32
    }

    /// The 12 digits as ASCII, e.g. `*b"603100311003"`.
    pub const fn digits(self) -> [u8; 2 * CUPS_HEADER_LEN] {
        let mut out = [0u8; 2 * CUPS_HEADER_LEN];
        let mut i = 0;
        while i < CUPS_HEADER_LEN {
            out[2 * i] = b'0' + (self.bcd[i] >> 4);
            out[2 * i + 1] = b'0' + (self.bcd[i] & 0x0F);
            i += 1;
        }
        out
    }
}

const fn bcd_byte(v: u8) -> u8 {
    ((v / 10) << 4) | (v % 10)
}

const fn bcd_value(b: u8) -> u8 {
    (b >> 4) * 10 + (b & 0x0F)
}

impl fmt::Display for CupsHeader {
    /// The 12 digits, e.g. `603100311003`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.bcd {
            write!(f, "{:X}{:X}", b >> 4, b & 0x0F)?;
        }
        Ok(())
    }
}

impl fmt::Debug for CupsHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CupsHeader({self})")
    }
}

impl FromStr for CupsHeader {
    type Err = FrameError;

    /// Parses exactly 12 ASCII digits such as `"603100311003"`: a non-digit or a 13th
    /// character is [`FrameErrorKind::InvalidHeaderDigit`] at that character, fewer than 12
    /// are [`FrameErrorKind::Incomplete`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.as_bytes();
        let mut bcd = [0u8; CUPS_HEADER_LEN];
        for (i, &c) in text.iter().enumerate() {
            let slot = bcd.get_mut(i / 2);
            match slot {
                Some(slot) if c.is_ascii_digit() => *slot = (*slot << 4) | (c - b'0'),
                _ => {
                    return Err(FrameError::new(
                        FrameErrorKind::InvalidHeaderDigit { found: c },
                        i,
                    ));
                }
            }
        }
        if text.len() < 2 * CUPS_HEADER_LEN {
            return Err(FrameError::new(
                FrameErrorKind::Incomplete {
                    needed: 2 * CUPS_HEADER_LEN,
                    available: text.len(),
                },
                text.len(),
            ));
        }
        Ok(CupsHeader { bcd })
    }
}

/// One decoded frame, borrowing its body from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The TPDU, if the configuration has one.
    pub tpdu: Option<Tpdu>,
    /// The CUPS header, if the configuration has one.
    pub header: Option<CupsHeader>,
    /// The message body (starting with the MTI).
    pub body: &'a [u8],
}

/// One decoded frame owning its body as [`Bytes`] (split off the read buffer without copying).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameBytes {
    /// The TPDU, if the configuration has one.
    pub tpdu: Option<Tpdu>,
    /// The CUPS header, if the configuration has one.
    pub header: Option<CupsHeader>,
    /// The message body (starting with the MTI).
    pub body: Bytes,
}

impl FrameBytes {
    /// A borrowed view of this frame.
    pub fn as_frame(&self) -> Frame<'_> {
        Frame {
            tpdu: self.tpdu,
            header: self.header,
            body: &self.body,
        }
    }
}

/// How frames are laid out: the kind of length header, whether it counts itself, whether a
/// TPDU and a CUPS header follow it, and the largest frame accepted.
///
/// Start from a preset and adjust with the builder methods:
///
/// ```
/// use iso8583_wire::frame::{FrameConfig, LengthHeader};
///
/// let mut config = FrameConfig::len2();
/// config.tpdu(true).max_frame(2048);
/// assert_eq!(config.length_header(), LengthHeader::Binary2);
/// assert!(config.has_tpdu() && !config.has_cups_header());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameConfig {
    length: LengthHeader,
    includes_self: bool,
    tpdu: bool,
    cups_header: bool,
    max_frame: usize,
}

impl FrameConfig {
    const fn preset(length: LengthHeader, tpdu: bool, cups_header: bool) -> Self {
        FrameConfig {
            length,
            includes_self: false,
            tpdu,
            cups_header,
            max_frame: DEFAULT_MAX_FRAME,
        }
    }

    /// UnionPay POS: 2-byte binary length, TPDU, CUPS header.
    pub const fn cups_pos() -> Self {
        Self::preset(LengthHeader::Binary2, true, true)
    }

    /// A 2-byte binary length and nothing else.
    pub const fn len2() -> Self {
        Self::preset(LengthHeader::Binary2, false, false)
    }

    /// A 4-byte binary length and nothing else.
    pub const fn len4() -> Self {
        Self::preset(LengthHeader::Binary4, false, false)
    }

    /// A 4-digit ASCII length and nothing else.
    pub const fn ascii4() -> Self {
        Self::preset(LengthHeader::Ascii4, false, false)
    }

    /// A 2-byte BCD length and nothing else.
    pub const fn bcd2() -> Self {
        Self::preset(LengthHeader::Bcd2, false, false)
    }

    /// No length header: the transport delimits messages.
    pub const fn none() -> Self {
        Self::preset(LengthHeader::None, false, false)
    }

    /// Sets the kind of length header.
    pub fn length(&mut self, length: LengthHeader) -> &mut Self {
        self.length = length;
        self
    }

    /// Sets whether the length header counts its own bytes too (default: no).
    pub fn includes_self(&mut self, includes_self: bool) -> &mut Self {
        self.includes_self = includes_self;
        self
    }

    /// Sets whether a 5-byte TPDU follows the length header.
    pub fn tpdu(&mut self, tpdu: bool) -> &mut Self {
        self.tpdu = tpdu;
        self
    }

    /// Sets whether a 6-byte CUPS header follows (the TPDU, if any).
    pub fn cups_header(&mut self, cups_header: bool) -> &mut Self {
        self.cups_header = cups_header;
        self
    }

    /// Sets the largest frame accepted or produced, counted in bytes after the length header
    /// (TPDU, CUPS header and body). Default [`DEFAULT_MAX_FRAME`].
    pub fn max_frame(&mut self, max_frame: usize) -> &mut Self {
        self.max_frame = max_frame;
        self
    }

    /// The kind of length header.
    pub const fn length_header(&self) -> LengthHeader {
        self.length
    }

    /// Whether the length header counts its own bytes.
    pub const fn length_includes_self(&self) -> bool {
        self.includes_self
    }

    /// Whether frames carry a TPDU.
    pub const fn has_tpdu(&self) -> bool {
        self.tpdu
    }

    /// Whether frames carry a CUPS header.
    pub const fn has_cups_header(&self) -> bool {
        self.cups_header
    }

    /// The largest frame, in bytes after the length header.
    pub const fn max_frame_len(&self) -> usize {
        self.max_frame
    }

    /// Bytes between the length header and the body (TPDU and CUPS header): 0, 5, 6 or 11.
    pub const fn prefix_len(&self) -> usize {
        (if self.tpdu { TPDU_LEN } else { 0 }) + if self.cups_header { CUPS_HEADER_LEN } else { 0 }
    }

    /// What the length header counts besides the bytes after it.
    const fn self_count(&self) -> usize {
        if self.includes_self {
            self.length.size()
        } else {
            0
        }
    }

    /// The largest length-header value accepted, in the header's own terms.
    fn max_length_value(&self) -> usize {
        self.max_frame
            .saturating_add(self.self_count())
            .min(self.length.max_value())
    }

    /// Reads and checks the length header at the start of `buf`: `Ok(None)` if it is not
    /// complete yet, otherwise the total size of the frame including the length header.
    ///
    /// For [`LengthHeader::None`] this is always `Ok(None)`. Useful to reserve buffer space
    /// once the size is known.
    pub fn frame_len(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let hs = self.length.size();
        if self.length == LengthHeader::None || buf.len() < hs {
            return Ok(None);
        }
        let value = self.length.read(buf)?;
        let min = self.prefix_len() + self.self_count();
        let max = self.max_length_value();
        if value > max {
            return Err(FrameError::new(
                FrameErrorKind::FrameTooLong { length: value, max },
                0,
            ));
        }
        if value < min {
            return Err(FrameError::new(
                FrameErrorKind::LengthTooSmall { length: value, min },
                0,
            ));
        }
        // value >= self_count here, and value <= max_frame + self_count, so no overflow.
        Ok(Some(hs + (value - self.self_count())))
    }

    /// Locates the next frame in `buf`: `Ok(None)` to wait for more, or the frame's parts.
    fn locate(&self, buf: &[u8], eof: bool) -> Result<Option<Located>, FrameError> {
        let hs = self.length.size();
        let end = if self.length == LengthHeader::None {
            if buf.len() > self.max_frame {
                return Err(FrameError::new(
                    FrameErrorKind::FrameTooLong {
                        length: buf.len(),
                        max: self.max_frame,
                    },
                    0,
                ));
            }
            if !eof || buf.is_empty() {
                return Ok(None);
            }
            if buf.len() < self.prefix_len() {
                return Err(FrameError::new(
                    FrameErrorKind::LengthTooSmall {
                        length: buf.len(),
                        min: self.prefix_len(),
                    },
                    0,
                ));
            }
            buf.len()
        } else {
            match self.frame_len(buf)? {
                Some(total) if total <= buf.len() => total,
                known => {
                    if eof && !buf.is_empty() {
                        let needed = known.unwrap_or(hs);
                        return Err(FrameError::new(
                            FrameErrorKind::Incomplete {
                                needed,
                                available: buf.len(),
                            },
                            buf.len(),
                        ));
                    }
                    return Ok(None);
                }
            }
        };
        let mut at = hs;
        let tpdu = if self.tpdu {
            let t = Tpdu::parse(buf.get(at..).unwrap_or_default())?;
            at += TPDU_LEN;
            Some(t)
        } else {
            None
        };
        let header = if self.cups_header {
            let h = CupsHeader::parse(buf.get(at..).unwrap_or_default())
                .map_err(|e| FrameError::new(e.kind, at + e.offset))?;
            at += CUPS_HEADER_LEN;
            Some(h)
        } else {
            None
        };
        Ok(Some(Located {
            tpdu,
            header,
            body_start: at,
            end,
        }))
    }

    fn decode_slice<'b>(
        &self,
        buf: &'b [u8],
        eof: bool,
    ) -> Result<Option<(Frame<'b>, usize)>, FrameError> {
        let Some(loc) = self.locate(buf, eof)? else {
            return Ok(None);
        };
        // `locate` checked body_start <= end <= buf.len().
        let body = buf.get(loc.body_start..loc.end).unwrap_or_default();
        Ok(Some((
            Frame {
                tpdu: loc.tpdu,
                header: loc.header,
                body,
            },
            loc.end,
        )))
    }

    /// Decodes the frame at the start of `buf`.
    ///
    /// Returns `Ok(None)` while more bytes are needed, otherwise the frame and the number of
    /// bytes it took (the next frame starts there). With [`LengthHeader::None`] this never
    /// returns a frame; see [`decode_eof`](Self::decode_eof). Allocates nothing.
    pub fn decode<'b>(&self, buf: &'b [u8]) -> Result<Option<(Frame<'b>, usize)>, FrameError> {
        self.decode_slice(buf, false)
    }

    /// Like [`decode`](Self::decode), for when no more input will come: a partial frame is
    /// [`FrameErrorKind::Incomplete`] rather than `Ok(None)`, and with [`LengthHeader::None`]
    /// everything in `buf` is one frame. `Ok(None)` means `buf` is empty.
    pub fn decode_eof<'b>(&self, buf: &'b [u8]) -> Result<Option<(Frame<'b>, usize)>, FrameError> {
        self.decode_slice(buf, true)
    }

    fn decode_owned(
        &self,
        buf: &mut BytesMut,
        eof: bool,
    ) -> Result<Option<FrameBytes>, FrameError> {
        let Some(loc) = self.locate(buf, eof)? else {
            return Ok(None);
        };
        let mut frame = buf.split_to(loc.end);
        frame.advance(loc.body_start);
        Ok(Some(FrameBytes {
            tpdu: loc.tpdu,
            header: loc.header,
            body: frame.freeze(),
        }))
    }

    /// Decodes the frame at the start of `buf` and splits it off `buf` without copying.
    ///
    /// Returns `Ok(None)` (leaving `buf` as it is) while more bytes are needed. On an error
    /// `buf` is left as it is too; the stream cannot be resynchronised and should be closed.
    pub fn decode_bytes(&self, buf: &mut BytesMut) -> Result<Option<FrameBytes>, FrameError> {
        self.decode_owned(buf, false)
    }

    /// Like [`decode_bytes`](Self::decode_bytes), for when no more input will come (see
    /// [`decode_eof`](Self::decode_eof)).
    pub fn decode_bytes_eof(&self, buf: &mut BytesMut) -> Result<Option<FrameBytes>, FrameError> {
        self.decode_owned(buf, true)
    }

    /// Checks the parts against the configuration and returns the length header, TPDU and
    /// CUPS header bytes to write in front of a body of `body_len` bytes.
    fn head(
        &self,
        tpdu: Option<Tpdu>,
        header: Option<CupsHeader>,
        body_len: usize,
    ) -> Result<([u8; MAX_LENGTH_HEADER + TPDU_LEN + CUPS_HEADER_LEN], usize), FrameError> {
        let hs = self.length.size();
        let mut head = [0u8; MAX_LENGTH_HEADER + TPDU_LEN + CUPS_HEADER_LEN];
        let mut n = hs;
        match (self.tpdu, tpdu) {
            (true, Some(t)) => {
                copy_into(&mut head, n, &t.to_bytes());
                n += TPDU_LEN;
            }
            (true, None) => return Err(FrameError::new(FrameErrorKind::MissingTpdu, n)),
            (false, Some(_)) => return Err(FrameError::new(FrameErrorKind::UnexpectedTpdu, n)),
            (false, None) => {}
        }
        match (self.cups_header, header) {
            (true, Some(h)) => {
                copy_into(&mut head, n, h.as_bytes());
                n += CUPS_HEADER_LEN;
            }
            (true, None) => return Err(FrameError::new(FrameErrorKind::MissingHeader, n)),
            (false, Some(_)) => return Err(FrameError::new(FrameErrorKind::UnexpectedHeader, n)),
            (false, None) => {}
        }
        let payload = (n - hs).saturating_add(body_len);
        let value = payload.saturating_add(self.self_count());
        let max = self.max_length_value();
        if payload > self.max_frame || value > max {
            return Err(FrameError::new(
                FrameErrorKind::FrameTooLong { length: value, max },
                0,
            ));
        }
        let length = self.length.write(value);
        copy_into(&mut head, 0, length.get(..hs).unwrap_or_default());
        Ok((head, n))
    }

    /// Appends one frame (length header, TPDU, CUPS header, body) to `out`.
    ///
    /// The TPDU and header must be given exactly when the configuration has them
    /// ([`FrameErrorKind::MissingTpdu`] and friends otherwise), and the frame must fit
    /// [`max_frame`](Self::max_frame) and the length header
    /// ([`FrameErrorKind::FrameTooLong`]). On an error nothing is written.
    pub fn encode(
        &self,
        tpdu: Option<Tpdu>,
        header: Option<CupsHeader>,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), FrameError> {
        let (head, n) = self.head(tpdu, header, body.len())?;
        out.reserve(n + body.len());
        out.extend_from_slice(head.get(..n).unwrap_or_default());
        out.extend_from_slice(body);
        Ok(())
    }

    /// Like [`encode`](Self::encode), appending to a [`BytesMut`].
    pub fn encode_bytes(
        &self,
        tpdu: Option<Tpdu>,
        header: Option<CupsHeader>,
        body: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), FrameError> {
        let (head, n) = self.head(tpdu, header, body.len())?;
        out.reserve(n + body.len());
        out.extend_from_slice(head.get(..n).unwrap_or_default());
        out.extend_from_slice(body);
        Ok(())
    }
}

/// Copies `src` into `dst` at `at`, as far as it fits (callers size `dst` for it).
fn copy_into(dst: &mut [u8], at: usize, src: &[u8]) {
    if let Some(slot) = dst.get_mut(at..) {
        for (d, s) in slot.iter_mut().zip(src) {
            *d = *s;
        }
    }
}

/// Where the parts of a complete frame are in the buffer.
struct Located {
    tpdu: Option<Tpdu>,
    header: Option<CupsHeader>,
    body_start: usize,
    end: usize,
}

#[cfg(feature = "tokio")]
pub use codec::{FrameCodec, FrameCodecError};

#[cfg(feature = "tokio")]
mod codec {
    use super::{Frame, FrameBytes, FrameConfig, FrameError};
    use bytes::BytesMut;
    use core::fmt;
    use tokio_util::codec::{Decoder, Encoder};

    /// A [`tokio_util::codec`] codec for frames laid out as a [`FrameConfig`] says.
    ///
    /// Decodes to [`FrameBytes`] (the body split off the read buffer without copying) and
    /// encodes both [`FrameBytes`] and borrowed [`Frame`]s. Once the length header of the
    /// next frame is read, the read buffer reserves room for the rest of that frame (at most
    /// [`FrameConfig::max_frame`]).
    ///
    /// At the end of the stream, leftover bytes of a partial frame are an error
    /// ([`FrameErrorKind::Incomplete`](super::FrameErrorKind::Incomplete)); with
    /// [`LengthHeader::None`](super::LengthHeader::None) the whole stream is one frame,
    /// delivered when it ends.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use iso8583_wire::frame::{FrameBytes, FrameCodec, FrameConfig};
    /// use tokio_util::codec::{Decoder, Encoder};
    ///
    /// let mut codec = FrameCodec::new(FrameConfig::len2());
    /// let mut buf = BytesMut::new();
    /// let frame = FrameBytes { tpdu: None, header: None, body: bytes::Bytes::from_static(b"0800") };
    /// codec.encode(frame.clone(), &mut buf)?;
    /// assert_eq!(&buf[..], b"\x00\x040800");
    /// assert_eq!(codec.decode(&mut buf)?, Some(frame));
    /// assert!(buf.is_empty());
    /// # Ok::<(), iso8583_wire::frame::FrameCodecError>(())
    /// ```
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct FrameCodec {
        config: FrameConfig,
    }

    impl FrameCodec {
        /// A codec for `config`.
        pub const fn new(config: FrameConfig) -> Self {
            FrameCodec { config }
        }

        /// The configuration.
        pub const fn config(&self) -> &FrameConfig {
            &self.config
        }

        /// The configuration, to adjust between frames.
        pub fn config_mut(&mut self) -> &mut FrameConfig {
            &mut self.config
        }
    }

    impl From<FrameConfig> for FrameCodec {
        fn from(config: FrameConfig) -> Self {
            FrameCodec::new(config)
        }
    }

    /// An error from [`FrameCodec`]: a framing error or an I/O error of the transport.
    #[derive(Debug)]
    #[non_exhaustive]
    pub enum FrameCodecError {
        /// The bytes do not form a valid frame.
        Frame(FrameError),
        /// Reading or writing the transport failed.
        Io(std::io::Error),
    }

    impl fmt::Display for FrameCodecError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                FrameCodecError::Frame(e) => e.fmt(f),
                FrameCodecError::Io(e) => write!(f, "frame transport: {e}"),
            }
        }
    }

    impl std::error::Error for FrameCodecError {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            match self {
                FrameCodecError::Frame(e) => Some(e),
                FrameCodecError::Io(e) => Some(e),
            }
        }
    }

    impl From<std::io::Error> for FrameCodecError {
        fn from(e: std::io::Error) -> Self {
            FrameCodecError::Io(e)
        }
    }

    impl From<FrameError> for FrameCodecError {
        fn from(e: FrameError) -> Self {
            FrameCodecError::Frame(e)
        }
    }

    impl Decoder for FrameCodec {
        type Item = FrameBytes;
        type Error = FrameCodecError;

        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<FrameBytes>, FrameCodecError> {
            if let Some(frame) = self.config.decode_bytes(src)? {
                return Ok(Some(frame));
            }
            if let Some(total) = self.config.frame_len(src)? {
                src.reserve(total.saturating_sub(src.len()));
            }
            Ok(None)
        }

        fn decode_eof(
            &mut self,
            src: &mut BytesMut,
        ) -> Result<Option<FrameBytes>, FrameCodecError> {
            Ok(self.config.decode_bytes_eof(src)?)
        }
    }

    impl Encoder<FrameBytes> for FrameCodec {
        type Error = FrameCodecError;

        fn encode(&mut self, item: FrameBytes, dst: &mut BytesMut) -> Result<(), FrameCodecError> {
            Ok(self
                .config
                .encode_bytes(item.tpdu, item.header, &item.body, dst)?)
        }
    }

    impl Encoder<Frame<'_>> for FrameCodec {
        type Error = FrameCodecError;

        fn encode(&mut self, item: Frame<'_>, dst: &mut BytesMut) -> Result<(), FrameCodecError> {
            Ok(self
                .config
                .encode_bytes(item.tpdu, item.header, item.body, dst)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    const BODY: &[u8] = b"0800ABC";

    fn header(s: &str) -> CupsHeader {
        s.parse().unwrap()
    }

    fn err(kind: FrameErrorKind, offset: usize) -> FrameError {
        FrameError::new(kind, offset)
    }

    fn encode(
        config: &FrameConfig,
        tpdu: Option<Tpdu>,
        h: Option<CupsHeader>,
        body: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        config.encode(tpdu, h, body, &mut out).unwrap();
        let mut bm = BytesMut::new();
        config.encode_bytes(tpdu, h, body, &mut bm).unwrap();
        assert_eq!(bm[..], out[..]);
        out
    }

    /// Encodes BODY with `config`, checks the exact bytes, and decodes them back both ways.
    fn round_trip(config: &FrameConfig, expected_head: &[u8]) {
        let wire = encode(config, None, None, BODY);
        assert_eq!(wire[..expected_head.len()], *expected_head);
        assert_eq!(wire[expected_head.len()..], *BODY);
        assert_eq!(config.frame_len(&wire), Ok(Some(wire.len())));

        for cut in 0..wire.len() {
            assert_eq!(config.decode(&wire[..cut]), Ok(None), "cut at {cut}");
        }
        let (frame, used) = config.decode(&wire).unwrap().unwrap();
        assert_eq!(
            frame,
            Frame {
                tpdu: None,
                header: None,
                body: BODY
            }
        );
        assert_eq!(used, wire.len());

        let mut buf = BytesMut::from(&wire[..]);
        buf.extend_from_slice(&[0x00]); // start of a next frame stays in the buffer
        let frame = config.decode_bytes(&mut buf).unwrap().unwrap();
        assert_eq!(frame.body, BODY);
        assert_eq!(buf[..], [0x00]);
    }

    #[test]
    fn each_length_kind_round_trips() {
        round_trip(&FrameConfig::len2(), &[0x00, 0x07]);
        round_trip(&FrameConfig::len4(), &[0x00, 0x00, 0x00, 0x07]);
        round_trip(&FrameConfig::ascii4(), b"0007");
        round_trip(&FrameConfig::bcd2(), &[0x00, 0x07]);
        round_trip(FrameConfig::len2().includes_self(true), &[0x00, 0x09]);
        round_trip(
            FrameConfig::len4().includes_self(true),
            &[0x00, 0x00, 0x00, 0x0B],
        );
        round_trip(FrameConfig::ascii4().includes_self(true), b"0011");
        round_trip(FrameConfig::bcd2().includes_self(true), &[0x00, 0x09]);
    }

    #[test]
    fn multi_byte_length_values() {
        let body = vec![0x5A; 1234];
        let wire = encode(&FrameConfig::bcd2(), None, None, &body);
        assert_eq!(wire[..2], [0x12, 0x34]);
        let wire = encode(&FrameConfig::ascii4(), None, None, &body);
        assert_eq!(wire[..4], *b"1234");
        let wire = encode(&FrameConfig::len2(), None, None, &body);
        assert_eq!(wire[..2], [0x04, 0xD2]);
        let mut big = FrameConfig::len4();
        big.max_frame(100_000);
        let body = vec![0x5A; 70_000];
        let wire = encode(&big, None, None, &body);
        assert_eq!(wire[..4], [0x00, 0x01, 0x11, 0x70]);
        let (frame, used) = big.decode(&wire).unwrap().unwrap();
        assert_eq!((frame.body.len(), used), (70_000, 70_004));
    }

    #[test]
    fn unionpay_layout() {
        let config = FrameConfig::cups_pos();
        let tpdu = Tpdu::new(0x0004, 0x0000);
        let h = header("602200000000");
        let body = [0x02, 0x00, 0x70, 0x24, 0x06, 0x80, 0x20, 0xC0, 0x08, 0x11];
        let wire = encode(&config, Some(tpdu), Some(h), &body);
        assert_eq!(
            wire,
            [
                0x00, 0x15, // length 21 = 5 + 6 + 10
                0x60, 0x00, 0x04, 0x00, 0x00, // TPDU
                0x60, 0x22, 0x00, 0x00, 0x00, 0x00, // header
                0x02, 0x00, 0x70, 0x24, 0x06, 0x80, 0x20, 0xC0, 0x08, 0x11,
            ]
        );
        let (frame, used) = config.decode(&wire).unwrap().unwrap();
        assert_eq!(used, 23);
        assert_eq!(
            frame.tpdu,
            Some(Tpdu {
                id: 0x60,
                destination: 4,
                source: 0
            })
        );
        assert_eq!(frame.header, Some(h));
        assert_eq!(frame.body, body);

        let mut buf = BytesMut::from(&wire[..]);
        let owned = config.decode_bytes(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        assert_eq!(owned.as_frame(), frame);

        // The reply goes back with the addresses swapped.
        let reply = encode(
            &config,
            frame.tpdu.map(|t| t.reply()),
            Some(h),
            &[0x02, 0x10],
        );
        assert_eq!(
            reply,
            [
                0x00, 0x0D, 0x60, 0x00, 0x00, 0x00, 0x04, 0x60, 0x22, 0x00, 0x00, 0x00, 0x00, 0x02,
                0x10
            ]
        );
    }

    #[test]
    fn tpdu_parse_write_reply() {
        let t = Tpdu::from_bytes([0x60, 0x00, 0x04, 0x12, 0x34]);
        assert_eq!(
            t,
            Tpdu {
                id: 0x60,
                destination: 0x0004,
                source: 0x1234
            }
        );
        assert_eq!(t.to_bytes(), [0x60, 0x00, 0x04, 0x12, 0x34]);
        assert_eq!(
            t.reply(),
            Tpdu {
                id: 0x60,
                destination: 0x1234,
                source: 0x0004
            }
        );
        assert_eq!(t.reply().to_bytes(), [0x60, 0x12, 0x34, 0x00, 0x04]);
        assert_eq!(t.reply().reply(), t);
        assert_eq!(t.to_string(), "6000041234");
        assert_eq!(
            Tpdu::parse(&[0x68, 0xAB, 0xCD, 0xEF, 0x01, 0x99]).map(|t| t.id),
            Ok(0x68)
        );
        assert_eq!(
            Tpdu::parse(&[0x60, 0x00]),
            Err(err(
                FrameErrorKind::Incomplete {
                    needed: 5,
                    available: 2
                },
                2
            ))
        );
    }

    #[test]
    fn cups_header_parts_and_text() {
        for (text, parts) in [
            ("603100311003", (60, 31, 0, 0, 311_003)),
            ("603210320072", (60, 32, 1, 0, 320_072)),
            ("602200000000", (60, 22, 0, 0, 0)),
        ] {
            let h = header(text);
            assert_eq!(h.to_string(), text);
            assert_eq!(h.digits(), text.as_bytes());
            assert_eq!(
                (
                    h.application_type(),
                    h.software_version(),
                    h.terminal_status(),
                    h.processing_requirement(),
                    h.reserved()
                ),
                parts
            );
            assert_eq!(
                CupsHeader::new(parts.0, parts.1, parts.2, parts.3, parts.4),
                Some(h)
            );
            assert_eq!(CupsHeader::from_bytes(h.to_bytes()), Ok(h));
        }
        assert_eq!(
            header("603210320072").to_bytes(),
            [0x60, 0x32, 0x10, 0x32, 0x00, 0x72]
        );
        assert_eq!(
            alloc::format!("{:?}", header("602200000000")),
            "CupsHeader(602200000000)"
        );
        assert_eq!(CupsHeader::new(100, 0, 0, 0, 0), None);
        assert_eq!(CupsHeader::new(60, 22, 10, 0, 0), None);
        assert_eq!(CupsHeader::new(60, 22, 0, 0, 1_000_000), None);

        let bad = |s: &str| s.parse::<CupsHeader>().unwrap_err();
        assert_eq!(
            bad("60310031100X"),
            err(FrameErrorKind::InvalidHeaderDigit { found: b'X' }, 11)
        );
        assert_eq!(
            bad("6031003110030"),
            err(FrameErrorKind::InvalidHeaderDigit { found: b'0' }, 12)
        );
        assert_eq!(
            bad("6031"),
            err(
                FrameErrorKind::Incomplete {
                    needed: 12,
                    available: 4
                },
                4
            )
        );
        assert_eq!(
            CupsHeader::from_bytes([0x60, 0x31, 0x00, 0x3A, 0x10, 0x03]),
            Err(err(FrameErrorKind::InvalidHeaderDigit { found: 0x3A }, 3))
        );
        assert_eq!(
            CupsHeader::parse(&[0x60, 0x31]),
            Err(err(
                FrameErrorKind::Incomplete {
                    needed: 6,
                    available: 2
                },
                2
            ))
        );
    }

    #[test]
    fn many_frames_in_one_read() {
        let config = FrameConfig::cups_pos();
        let t = Tpdu::new(0x0004, 0x0000);
        let h = header("603100311003");
        let mut wire = Vec::new();
        for body in [&b"\x08\x00A"[..], b"\x02\x00BB", b"\x04\x00CCC"] {
            config.encode(Some(t), Some(h), body, &mut wire).unwrap();
        }
        assert_eq!(wire.len(), 3 * 13 + 3 + 4 + 5);

        // Borrowed decoding, advancing by `used`.
        let mut rest = &wire[..];
        let mut bodies = Vec::new();
        while let Some((frame, used)) = config.decode(rest).unwrap() {
            bodies.push(frame.body);
            rest = &rest[used..];
        }
        assert!(rest.is_empty());
        assert_eq!(bodies, [&b"\x08\x00A"[..], b"\x02\x00BB", b"\x04\x00CCC"]);

        // Owned decoding splits each frame off.
        let mut buf = BytesMut::from(&wire[..]);
        let mut owned = Vec::new();
        while let Some(frame) = config.decode_bytes(&mut buf).unwrap() {
            owned.push(frame.body);
        }
        assert!(buf.is_empty());
        assert_eq!(owned, [&b"\x08\x00A"[..], b"\x02\x00BB", b"\x04\x00CCC"]);
    }

    #[test]
    fn one_byte_at_a_time_sans_io() {
        let config = FrameConfig::cups_pos();
        let wire = encode(
            &config,
            Some(Tpdu::new(1, 2)),
            Some(header("603100311003")),
            BODY,
        );
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for (i, &b) in wire.iter().enumerate() {
            buf.extend_from_slice(&[b]);
            if let Some(frame) = config.decode_bytes(&mut buf).unwrap() {
                frames.push((i, frame));
            }
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0, wire.len() - 1);
        assert_eq!(frames[0].1.body, BODY);
        assert!(buf.is_empty());
    }

    #[test]
    fn max_frame_enforced_from_the_length_header() {
        let mut config = FrameConfig::len2();
        config.max_frame(100);
        assert_eq!(config.decode(&[0x01]), Ok(None));
        let too_long = err(
            FrameErrorKind::FrameTooLong {
                length: 256,
                max: 100,
            },
            0,
        );
        assert_eq!(config.decode(&[0x01, 0x00]), Err(too_long));
        let mut buf = BytesMut::from(&[0x01u8, 0x00][..]);
        assert_eq!(config.decode_bytes(&mut buf), Err(too_long));
        assert_eq!(buf.len(), 2);
        assert_eq!(config.decode(&[0x00, 0x64]), Ok(None)); // exactly 100 is fine

        config.includes_self(true);
        assert_eq!(
            config.decode(&[0x00, 0x67]),
            Err(err(
                FrameErrorKind::FrameTooLong {
                    length: 103,
                    max: 102
                },
                0
            ))
        );
        assert_eq!(config.decode(&[0x00, 0x66]), Ok(None));

        // The header's own limit applies too: ASCII and BCD stop at 9999.
        let mut ascii = FrameConfig::ascii4();
        ascii.max_frame(50_000);
        assert_eq!(ascii.decode(b"9999"), Ok(None));
        let body = vec![0u8; 10_000];
        let mut out = vec![0xEE];
        assert_eq!(
            ascii.encode(None, None, &body, &mut out),
            Err(err(
                FrameErrorKind::FrameTooLong {
                    length: 10_000,
                    max: 9_999
                },
                0
            ))
        );
        assert_eq!(out, [0xEE]); // nothing written
        assert_eq!(
            FrameConfig::len2().encode(None, None, &vec![0u8; DEFAULT_MAX_FRAME + 1], &mut out),
            Err(err(
                FrameErrorKind::FrameTooLong {
                    length: DEFAULT_MAX_FRAME + 1,
                    max: DEFAULT_MAX_FRAME
                },
                0
            ))
        );
        assert_eq!(
            FrameConfig::len4().decode(&[0xFF, 0xFF, 0xFF, 0xFF]),
            Err(err(
                FrameErrorKind::FrameTooLong {
                    length: 0xFFFF_FFFF,
                    max: DEFAULT_MAX_FRAME
                },
                0
            ))
        );
    }

    #[test]
    fn lengths_too_small_for_the_prefix() {
        let config = FrameConfig::cups_pos();
        assert_eq!(
            config.decode(&[0x00, 0x0A]),
            Err(err(
                FrameErrorKind::LengthTooSmall {
                    length: 10,
                    min: 11
                },
                0
            ))
        );
        // Exactly the prefix: an empty body.
        let wire = [0x00, 0x0B, 0x60, 0, 4, 0, 0, 0x60, 0x22, 0, 0, 0, 0];
        let (frame, used) = config.decode(&wire).unwrap().unwrap();
        assert_eq!((frame.body, used), (&[][..], 13));

        let mut with_self = FrameConfig::len2();
        with_self.includes_self(true);
        assert_eq!(
            with_self.decode(&[0x00, 0x01]),
            Err(err(FrameErrorKind::LengthTooSmall { length: 1, min: 2 }, 0))
        );
        // A zero-length frame (keep-alive) is an empty body when nothing else is configured.
        assert_eq!(
            FrameConfig::len2().decode(&[0x00, 0x00, 0x00]),
            Ok(Some((
                Frame {
                    tpdu: None,
                    header: None,
                    body: &[]
                },
                2
            )))
        );
    }

    #[test]
    fn bad_digits_in_headers() {
        let digit = |found: u8, at: usize| err(FrameErrorKind::InvalidLengthDigit { found }, at);
        assert_eq!(FrameConfig::ascii4().decode(b"00A1xx"), Err(digit(b'A', 2)));
        assert_eq!(FrameConfig::ascii4().decode(b" 012"), Err(digit(b' ', 0)));
        assert_eq!(
            FrameConfig::bcd2().decode(&[0x0A, 0x00]),
            Err(digit(0x0A, 0))
        );
        assert_eq!(
            FrameConfig::bcd2().decode(&[0x00, 0xA1]),
            Err(digit(0xA1, 1))
        );
        // A partial ASCII header is not judged until complete.
        assert_eq!(FrameConfig::ascii4().decode(b"0A"), Ok(None));

        let config = FrameConfig::cups_pos();
        let mut wire = vec![
            0x00, 0x0C, 0x60, 0, 4, 0, 0, 0x60, 0x22, 0x00, 0xF0, 0x00, 0x00, 0x02,
        ];
        assert_eq!(
            config.decode(&wire),
            Err(err(FrameErrorKind::InvalidHeaderDigit { found: 0xF0 }, 10))
        );
        wire[10] = 0x00;
        assert_eq!(
            config.decode(&wire).map(|f| f.map(|f| f.0.body)),
            Ok(Some(&[0x02][..]))
        );
    }

    #[test]
    fn end_of_input() {
        let config = FrameConfig::len2();
        let wire = encode(&config, None, None, BODY);
        assert_eq!(config.decode_eof(&[]), Ok(None));
        assert_eq!(
            config.decode_eof(&wire[..1]),
            Err(err(
                FrameErrorKind::Incomplete {
                    needed: 2,
                    available: 1
                },
                1
            ))
        );
        assert_eq!(
            config.decode_eof(&wire[..5]),
            Err(err(
                FrameErrorKind::Incomplete {
                    needed: 9,
                    available: 5
                },
                5
            ))
        );
        assert!(config.decode_eof(&wire[..5]).unwrap_err().is_incomplete());
        assert_eq!(
            config.decode_eof(&wire).map(|f| f.map(|f| f.1)),
            Ok(Some(9))
        );

        // No length header: nothing until the end, then everything.
        let mut none = FrameConfig::none();
        assert_eq!(encode(&none, None, None, BODY), BODY);
        assert_eq!(none.decode(BODY), Ok(None));
        assert_eq!(none.frame_len(BODY), Ok(None));
        assert_eq!(
            none.decode_eof(BODY),
            Ok(Some((
                Frame {
                    tpdu: None,
                    header: None,
                    body: BODY
                },
                7
            )))
        );
        let mut buf = BytesMut::from(BODY);
        assert_eq!(none.decode_bytes(&mut buf), Ok(None));
        assert_eq!(none.decode_bytes_eof(&mut buf).unwrap().unwrap().body, BODY);
        assert!(buf.is_empty());
        assert_eq!(none.decode_bytes_eof(&mut buf), Ok(None));

        none.max_frame(4);
        assert_eq!(
            none.decode(BODY),
            Err(err(FrameErrorKind::FrameTooLong { length: 7, max: 4 }, 0))
        );
        none.max_frame(100).tpdu(true);
        assert_eq!(
            none.decode_eof(&[0x60, 0x00]),
            Err(err(FrameErrorKind::LengthTooSmall { length: 2, min: 5 }, 0))
        );
        let wire = encode(&none, Some(Tpdu::new(3, 4)), None, b"X");
        assert_eq!(wire, [0x60, 0x00, 0x03, 0x00, 0x04, b'X']);
        let (frame, _) = none.decode_eof(&wire).unwrap().unwrap();
        assert_eq!((frame.tpdu, frame.body), (Some(Tpdu::new(3, 4)), &b"X"[..]));
    }

    #[test]
    fn encode_checks_parts_against_config() {
        let t = Some(Tpdu::new(4, 0));
        let h = Some(header("602200000000"));
        let mut out = Vec::new();
        let e = |r: Result<(), FrameError>| r.unwrap_err();
        let cups = FrameConfig::cups_pos();
        assert_eq!(
            e(cups.encode(None, h, BODY, &mut out)),
            err(FrameErrorKind::MissingTpdu, 2)
        );
        assert_eq!(
            e(cups.encode(t, None, BODY, &mut out)),
            err(FrameErrorKind::MissingHeader, 7)
        );
        let plain = FrameConfig::len2();
        assert_eq!(
            e(plain.encode(t, None, BODY, &mut out)),
            err(FrameErrorKind::UnexpectedTpdu, 2)
        );
        assert_eq!(
            e(plain.encode(None, h, BODY, &mut out)),
            err(FrameErrorKind::UnexpectedHeader, 2)
        );
        assert!(out.is_empty());

        let mut header_only = FrameConfig::bcd2();
        header_only.cups_header(true);
        assert_eq!(header_only.prefix_len(), 6);
        assert_eq!(
            encode(&header_only, None, h, &[0x08, 0x00]),
            [0x00, 0x08, 0x60, 0x22, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00]
        );
    }

    #[test]
    fn config_builder_and_getters() {
        let mut c = FrameConfig::none();
        c.length(LengthHeader::Ascii4)
            .includes_self(true)
            .tpdu(true)
            .cups_header(true)
            .max_frame(512);
        assert_eq!(c.length_header(), LengthHeader::Ascii4);
        assert!(c.length_includes_self() && c.has_tpdu() && c.has_cups_header());
        assert_eq!((c.max_frame_len(), c.prefix_len()), (512, 11));
        let cups = FrameConfig::cups_pos();
        assert_eq!(
            (
                cups.length_header(),
                cups.length_includes_self(),
                cups.max_frame_len()
            ),
            (LengthHeader::Binary2, false, DEFAULT_MAX_FRAME)
        );
        assert_eq!(
            [
                LengthHeader::None,
                LengthHeader::Binary2,
                LengthHeader::Binary4,
                LengthHeader::Ascii4,
                LengthHeader::Bcd2
            ]
            .map(LengthHeader::size),
            [0, 2, 4, 4, 2]
        );
    }

    #[test]
    fn error_messages_say_expected_and_found() {
        assert_eq!(
            err(
                FrameErrorKind::FrameTooLong {
                    length: 256,
                    max: 100
                },
                0
            )
            .to_string(),
            "frame length at offset 0: expected at most 100, found 256"
        );
        assert_eq!(
            err(FrameErrorKind::InvalidLengthDigit { found: b'A' }, 2).to_string(),
            "frame length at offset 2: expected a decimal digit, found byte 41"
        );
        assert_eq!(
            err(
                FrameErrorKind::Incomplete {
                    needed: 9,
                    available: 5
                },
                5
            )
            .to_string(),
            "frame at offset 5: expected 9 bytes, found only 5"
        );
    }

    #[cfg(feature = "tokio")]
    mod codec {
        use super::*;
        use tokio_util::codec::{Decoder, Encoder};

        #[test]
        fn split_across_many_reads() {
            let mut codec = FrameCodec::new(FrameConfig::cups_pos());
            let frame = FrameBytes {
                tpdu: Some(Tpdu::new(0x0004, 0x0000)),
                header: Some(header("603210320072")),
                body: Bytes::from_static(b"\x02\x00\x30\x20\x04\x80\x00\xC0\x00\x00"),
            };
            let mut wire = BytesMut::new();
            codec.encode(frame.clone(), &mut wire).unwrap();
            assert_eq!(
                wire[..13],
                [
                    0x00, 0x15, 0x60, 0x00, 0x04, 0x00, 0x00, 0x60, 0x32, 0x10, 0x32, 0x00, 0x72
                ]
            );

            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for (i, b) in wire.iter().enumerate() {
                buf.extend_from_slice(&[*b]);
                if i == 1 {
                    // The length is known: room for the rest is reserved.
                    assert_eq!(codec.decode(&mut buf).unwrap(), None);
                    assert!(buf.capacity() >= wire.len());
                    continue;
                }
                if let Some(f) = codec.decode(&mut buf).unwrap() {
                    out.push((i, f));
                }
            }
            assert_eq!(out, [(wire.len() - 1, frame)]);
            assert!(buf.is_empty());
            assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
        }

        #[test]
        fn three_frames_in_one_read() {
            let mut codec = FrameCodec::from(FrameConfig::ascii4());
            let mut buf = BytesMut::new();
            for body in [&b"one"[..], b"two!", b"three"] {
                let f = Frame {
                    tpdu: None,
                    header: None,
                    body,
                };
                codec.encode(f, &mut buf).unwrap();
            }
            assert_eq!(&buf[..], b"0003one0004two!0005three");
            let mut bodies = Vec::new();
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                bodies.push(f.body);
            }
            assert_eq!(bodies, [&b"one"[..], b"two!", b"three"]);
            assert!(buf.is_empty());
        }

        #[test]
        fn too_long_fails_on_the_header_alone() {
            let mut config = FrameConfig::len2();
            config.max_frame(64);
            let mut codec = FrameCodec::new(config);
            let mut buf = BytesMut::from(&[0x00u8][..]);
            assert_eq!(codec.decode(&mut buf).unwrap(), None);
            buf.extend_from_slice(&[0x41]);
            match codec.decode(&mut buf) {
                Err(FrameCodecError::Frame(e)) => {
                    assert_eq!(
                        e,
                        err(
                            FrameErrorKind::FrameTooLong {
                                length: 65,
                                max: 64
                            },
                            0
                        )
                    );
                }
                other => panic!("expected FrameTooLong, got {other:?}"),
            }
            assert!(buf.capacity() < 64);
        }

        #[test]
        fn end_of_stream() {
            let mut codec = FrameCodec::new(FrameConfig::len2());
            let mut buf = BytesMut::from(&[0x00u8, 0x05, b'a'][..]);
            assert_eq!(codec.decode(&mut buf).unwrap(), None);
            match codec.decode_eof(&mut buf) {
                Err(FrameCodecError::Frame(e)) => assert!(e.is_incomplete()),
                other => panic!("expected Incomplete, got {other:?}"),
            }

            let mut whole = FrameCodec::new(FrameConfig::none());
            let mut buf = BytesMut::from(&b"raw message"[..]);
            assert_eq!(whole.decode(&mut buf).unwrap(), None);
            assert_eq!(
                whole.decode_eof(&mut buf).unwrap().map(|f| f.body),
                Some(Bytes::from_static(b"raw message"))
            );
            assert_eq!(whole.decode_eof(&mut buf).unwrap(), None);
            whole.config_mut().tpdu(true);
            assert!(whole.config().has_tpdu());

            let io = FrameCodecError::from(std::io::Error::other("reset"));
            assert_eq!(io.to_string(), "frame transport: reset");
            assert!(std::error::Error::source(&io).is_some());
        }
    }

    #[cfg(feature = "std")]
    mod props {
        use super::*;
        use proptest::prelude::*;

        fn configs() -> [FrameConfig; 7] {
            let mut small = FrameConfig::len2();
            small.max_frame(16).includes_self(true).tpdu(true);
            let mut bcd_self = FrameConfig::bcd2();
            bcd_self.includes_self(true).cups_header(true);
            [
                FrameConfig::cups_pos(),
                FrameConfig::len4(),
                FrameConfig::ascii4(),
                bcd_self,
                FrameConfig::none(),
                small,
                *FrameConfig::none().tpdu(true).cups_header(true),
            ]
        }

        proptest! {
            #[test]
            fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..80)) {
                for config in configs() {
                    let mut rest = &data[..];
                    while let Ok(Some((frame, used))) = config.decode(rest) {
                        prop_assert!(used > 0 && used <= rest.len());
                        prop_assert!(frame.body.len() < used);
                        rest = &rest[used..];
                    }
                    let _ = config.decode_eof(rest);
                    let _ = config.frame_len(rest);
                    let mut buf = BytesMut::from(&data[..]);
                    while let Ok(Some(_)) = config.decode_bytes(&mut buf) {}
                    let _ = config.decode_bytes_eof(&mut buf).map_err(|e| e.to_string());
                }
            }

            #[test]
            fn encoded_frames_decode_back(
                body in proptest::collection::vec(any::<u8>(), 0..300),
                dest in any::<u16>(),
                src in any::<u16>(),
                status in 0u8..10,
                reserved in 0u32..1_000_000,
            ) {
                let tpdu = Tpdu::new(dest, src);
                let h = CupsHeader::new(60, 31, status, 0, reserved).unwrap();
                for config in configs() {
                    let t = config.has_tpdu().then_some(tpdu);
                    let hh = config.has_cups_header().then_some(h);
                    let mut wire = Vec::new();
                    match config.encode(t, hh, &body, &mut wire) {
                        Ok(()) => {}
                        Err(e) => {
                            let too_long = matches!(e.kind(), FrameErrorKind::FrameTooLong { .. });
                            prop_assert!(too_long);
                            continue;
                        }
                    }
                    if wire.is_empty() {
                        // Only possible without a length header: an empty message is no frame.
                        prop_assert_eq!(config.decode_eof(&wire), Ok(None));
                        continue;
                    }
                    let (frame, used) = config.decode_eof(&wire).unwrap().unwrap();
                    prop_assert_eq!(used, wire.len());
                    prop_assert_eq!(frame, Frame { tpdu: t, header: hh, body: &body });
                }
            }
        }
    }
}
