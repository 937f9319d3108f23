//! Framing of the HSM host protocol, the wire error type, and the field reader and writer the
//! command layer is built on. Sans-IO: everything here works on byte slices (and, with the
//! `tokio` feature, on a `bytes::BytesMut` read buffer).
//!
//! ```text
//! +--------+----------------------+------------------------------------------+
//! | length | header               | message                                  |
//! | 2, BE  | header_len bytes     | command code (2 ASCII) | fields ...      |
//! +--------+----------------------+------------------------------------------+
//!            ^ `length` counts the header and the message, not itself
//! ```
//!
//! Byte offsets in every [`WireError`] count from the first byte of the frame (the first
//! length byte), so the header starts at offset 2.

use core::fmt;

use crate::security::{HsmError, HsmErrorCode, MAX_DATA_LEN};

/// The usual header length: 4 ASCII characters.
pub const DEFAULT_HEADER_LEN: usize = 4;

/// The largest header length a [`FrameConfig`] accepts.
pub const MAX_HEADER_LEN: usize = 32;

/// The default largest frame (header and message, excluding the 2 length bytes): room for a
/// [`MAX_DATA_LEN`] data field plus keys and the other fields.
pub const DEFAULT_MAX_FRAME_LEN: usize = MAX_DATA_LEN + 1024;

/// Where the header starts in a frame: after the two length bytes.
pub const HEADER_OFFSET: usize = 2;

/// The framing parameters both ends must agree on.
///
/// A plain value: set the fields, or start from [`FrameConfig::default`] (4-byte header,
/// [`DEFAULT_MAX_FRAME_LEN`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameConfig {
    /// The header length in bytes (0 to [`MAX_HEADER_LEN`]); the header is echoed back.
    pub header_len: usize,
    /// The largest frame accepted or produced, counting the header and the message but not the
    /// two length bytes (at most 65,535, the largest length two bytes can carry). A longer
    /// length prefix is refused before any of the frame is buffered.
    pub max_frame_len: usize,
}

impl Default for FrameConfig {
    fn default() -> Self {
        Self {
            header_len: DEFAULT_HEADER_LEN,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }
}

impl FrameConfig {
    /// The effective limit: `max_frame_len` capped at 65,535.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.max_frame_len.min(usize::from(u16::MAX))
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// A [`WireErrorKind::OutOfRange`] error naming `header_len` if it exceeds
    /// [`MAX_HEADER_LEN`] or leaves no room for a command code within `max_frame_len`.
    pub fn validate(&self) -> Result<(), WireError> {
        if self.header_len > MAX_HEADER_LEN || self.header_len + 2 > self.limit() {
            return Err(WireError::new(
                "header length",
                0,
                WireErrorKind::OutOfRange {
                    expected: "0 to 32, and room for a command code within the frame limit",
                    found: self.header_len,
                },
            ));
        }
        Ok(())
    }
}

/// What is wrong with a frame or a field. See [`WireError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireErrorKind {
    /// The field runs past the end of the message.
    Truncated {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the message.
        available: usize,
    },
    /// The length prefix announces a frame longer than the limit.
    FrameTooLarge {
        /// The limit ([`FrameConfig::limit`]).
        max: usize,
        /// The announced length.
        found: usize,
    },
    /// The frame is shorter than the configured header (error 51).
    BadHeader {
        /// The configured header length.
        expected: usize,
        /// The bytes present.
        found: usize,
    },
    /// The command (or response) code is not one this protocol knows.
    UnknownCommand {
        /// The two bytes found.
        code: [u8; 2],
    },
    /// Expected a decimal digit.
    NotDigit {
        /// The byte found.
        found: u8,
    },
    /// Expected a hex digit.
    NotHex {
        /// The byte found.
        found: u8,
    },
    /// A byte that is not one of the values the field allows (a key scheme, a flag).
    BadByte {
        /// The values allowed, in words.
        expected: &'static str,
        /// The byte found.
        found: u8,
    },
    /// A number (a count, a length or a code) outside what the field allows.
    OutOfRange {
        /// The values allowed, in words.
        expected: &'static str,
        /// The number found.
        found: usize,
    },
    /// Bytes after the last field of the message.
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

/// A frame or field that does not decode (or cannot be encoded): what is wrong, in which
/// field, at which byte offset from the start of the frame.
///
/// Small and `Copy`; it never carries field contents other than the one offending byte or
/// number (never key material, PIN blocks or data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireError {
    /// The field (e.g. `"MAC key"`, `"data length"`, `"header"`).
    pub field: &'static str,
    /// The byte offset of the problem from the first byte of the frame.
    pub offset: usize,
    /// What is wrong.
    pub kind: WireErrorKind,
}

impl WireError {
    /// An error in `field` at `offset`.
    #[must_use]
    pub const fn new(field: &'static str, offset: usize, kind: WireErrorKind) -> Self {
        Self {
            field,
            offset,
            kind,
        }
    }

    /// The error code an HSM answers this with: 51 for a bad header, 15 for anything else.
    #[must_use]
    pub const fn hsm_code(&self) -> HsmErrorCode {
        match self.kind {
            WireErrorKind::BadHeader { .. } => HsmErrorCode::BadHeader,
            _ => HsmErrorCode::InvalidInput,
        }
    }
}

struct ShowByte(u8);

impl fmt::Display for ShowByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "0x{:02X} '{}'", self.0, char::from(self.0))
        } else {
            write!(f, "0x{:02X}", self.0)
        }
    }
}

impl fmt::Display for WireErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { needed, available } => write!(
                f,
                "truncated: needs {needed} bytes, {available} left in the message"
            ),
            Self::FrameTooLarge { max, found } => {
                write!(f, "frame length {found} exceeds the limit of {max}")
            }
            Self::BadHeader { expected, found } => write!(
                f,
                "expected a {expected}-byte header, the frame has {found} bytes"
            ),
            Self::UnknownCommand { code } => {
                write!(
                    f,
                    "unknown code {}, {}",
                    ShowByte(code[0]),
                    ShowByte(code[1])
                )
            }
            Self::NotDigit { found } => {
                write!(f, "expected a decimal digit, found {}", ShowByte(found))
            }
            Self::NotHex { found } => {
                write!(f, "expected a hex digit, found {}", ShowByte(found))
            }
            Self::BadByte { expected, found } => {
                write!(f, "expected {expected}, found {}", ShowByte(found))
            }
            Self::OutOfRange { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            Self::TrailingBytes { count } => {
                write!(f, "{count} unexpected bytes after the last field")
            }
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}: {}", self.field, self.offset, self.kind)
    }
}

impl std::error::Error for WireError {}

impl From<WireError> for HsmError {
    /// Error 51 for a bad header, 15 for anything else, with the message of the wire error.
    fn from(e: WireError) -> Self {
        Self::new(e.hsm_code(), e.to_string())
    }
}

/// One complete frame found in a buffer by [`split_frame`], borrowed from it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawFrame<'a> {
    /// The header and the message (everything after the two length bytes).
    pub body: &'a [u8],
    /// The configured header length.
    pub header_len: usize,
}

impl<'a> RawFrame<'a> {
    /// The header.
    ///
    /// # Errors
    /// [`WireErrorKind::BadHeader`] if the frame is shorter than the header.
    pub fn header(&self) -> Result<&'a [u8], WireError> {
        self.body.get(..self.header_len).ok_or(WireError::new(
            "header",
            HEADER_OFFSET,
            WireErrorKind::BadHeader {
                expected: self.header_len,
                found: self.body.len(),
            },
        ))
    }

    /// The message after the header (command or response code and fields); empty if the
    /// frame is shorter than the header.
    #[must_use]
    pub fn message(&self) -> &'a [u8] {
        self.body.get(self.header_len..).unwrap_or(&[])
    }

    /// The offset of the message from the start of the frame.
    #[must_use]
    pub const fn message_offset(&self) -> usize {
        HEADER_OFFSET + self.header_len
    }
}

impl fmt::Debug for RawFrame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message may carry PIN blocks and keys under the LMK: show only its shape.
        f.debug_struct("RawFrame")
            .field("len", &self.body.len())
            .field("header_len", &self.header_len)
            .field(
                "code",
                &self.message().get(..2).map(String::from_utf8_lossy),
            )
            .finish()
    }
}

/// The total length (two length bytes included) of the first frame in `buf`, once the length
/// prefix has arrived; `None` while fewer than two bytes are there.
///
/// # Errors
/// [`WireErrorKind::FrameTooLarge`] (offset 0) if the prefix exceeds [`FrameConfig::limit`].
pub fn frame_len(config: &FrameConfig, buf: &[u8]) -> Result<Option<usize>, WireError> {
    let [hi, lo, ..] = *buf else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len > config.limit() {
        return Err(WireError::new(
            "length",
            0,
            WireErrorKind::FrameTooLarge {
                max: config.limit(),
                found: len,
            },
        ));
    }
    Ok(Some(HEADER_OFFSET + len))
}

/// Finds the first complete frame in `buf`: `Ok(None)` if more bytes are needed, otherwise
/// the frame and the number of bytes it occupies (to consume before looking for the next).
///
/// # Errors
/// [`WireErrorKind::FrameTooLarge`] as [`frame_len`]: the stream cannot be trusted after it.
pub fn split_frame<'a>(
    config: &FrameConfig,
    buf: &'a [u8],
) -> Result<Option<(RawFrame<'a>, usize)>, WireError> {
    let Some(total) = frame_len(config, buf)? else {
        return Ok(None);
    };
    Ok(buf.get(HEADER_OFFSET..total).map(|body| {
        (
            RawFrame {
                body,
                header_len: config.header_len,
            },
            total,
        )
    }))
}

/// Appends a frame: the length prefix, `header` and `message`.
///
/// # Errors
/// [`WireErrorKind::FrameTooLarge`] if header and message exceed [`FrameConfig::limit`];
/// [`WireErrorKind::BadHeader`] if `header` is not `header_len` bytes. `out` is unchanged
/// on error.
pub fn write_frame(
    config: &FrameConfig,
    header: &[u8],
    message: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    if header.len() != config.header_len {
        return Err(WireError::new(
            "header",
            HEADER_OFFSET,
            WireErrorKind::BadHeader {
                expected: config.header_len,
                found: header.len(),
            },
        ));
    }
    let len = header.len() + message.len();
    let prefix = u16::try_from(len)
        .ok()
        .filter(|_| len <= config.limit())
        .ok_or(WireError::new(
            "length",
            0,
            WireErrorKind::FrameTooLarge {
                max: config.limit(),
                found: len,
            },
        ))?;
    out.reserve(HEADER_OFFSET + len);
    out.extend_from_slice(&prefix.to_be_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(message);
    Ok(())
}

/// A frame taken off a `BytesMut` by [`FrameDecoder`]: the header and the message, sharing
/// the read buffer's allocation.
#[cfg(feature = "tokio")]
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// Header and message (everything after the length bytes).
    pub body: bytes::Bytes,
    /// The configured header length.
    pub header_len: usize,
}

#[cfg(feature = "tokio")]
impl Frame {
    /// A borrowed view of this frame.
    #[must_use]
    pub fn raw(&self) -> RawFrame<'_> {
        RawFrame {
            body: &self.body,
            header_len: self.header_len,
        }
    }
}

#[cfg(feature = "tokio")]
impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.raw().fmt(f)
    }
}

/// Reassembles frames from a byte stream: feed it the read buffer after every read, take
/// frames until it returns `Ok(None)`. A frame split across reads waits for its last byte;
/// several frames in one read come out one call at a time.
///
/// The length prefix is checked against the limit as soon as its two bytes arrive, before
/// any of the body is buffered; after a [`WireErrorKind::FrameTooLarge`] error the stream is
/// out of step and the connection should be closed.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameDecoder {
    config: FrameConfig,
}

#[cfg(feature = "tokio")]
impl FrameDecoder {
    /// A decoder for `config`.
    #[must_use]
    pub const fn new(config: FrameConfig) -> Self {
        Self { config }
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &FrameConfig {
        &self.config
    }

    /// Takes the next complete frame off the front of `buf`, if there is one. When the frame
    /// is incomplete, reserves room for the rest of it (at most the limit).
    ///
    /// # Errors
    /// [`WireErrorKind::FrameTooLarge`] as [`frame_len`].
    pub fn decode(&mut self, buf: &mut bytes::BytesMut) -> Result<Option<Frame>, WireError> {
        let Some(total) = frame_len(&self.config, buf)? else {
            return Ok(None);
        };
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let mut frame = buf.split_to(total);
        let body = frame.split_off(HEADER_OFFSET).freeze();
        Ok(Some(Frame {
            body,
            header_len: self.config.header_len,
        }))
    }
}

/// A cursor over a message that reports errors with frame offsets.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, which starts at frame offset `base`.
    pub(crate) const fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    /// The frame offset of the next byte.
    pub(crate) const fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) fn err(&self, field: &'static str, kind: WireErrorKind) -> WireError {
        WireError::new(field, self.offset(), kind)
    }

    fn remaining(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// The next byte without consuming it.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.remaining().first().copied()
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], WireError> {
        let rest = self.remaining();
        match rest.get(..n) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.err(
                field,
                WireErrorKind::Truncated {
                    needed: n,
                    available: rest.len(),
                },
            )),
        }
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = self.remaining();
        self.pos += rest.len();
        rest
    }

    /// One byte.
    pub(crate) fn byte(&mut self, field: &'static str) -> Result<u8, WireError> {
        let s = self.take(field, 1)?;
        Ok(s.first().copied().unwrap_or(0))
    }

    /// A number of `n` (at most 9) decimal digits.
    pub(crate) fn decimal(&mut self, field: &'static str, n: usize) -> Result<usize, WireError> {
        let start = self.offset();
        let s = self.take(field, n)?;
        let mut v = 0usize;
        for (i, &c) in s.iter().enumerate() {
            if !c.is_ascii_digit() {
                return Err(WireError::new(
                    field,
                    start + i,
                    WireErrorKind::NotDigit { found: c },
                ));
            }
            v = v * 10 + usize::from(c - b'0');
        }
        Ok(v)
    }

    /// `out.len()` bytes as twice as many hex digits (either case).
    pub(crate) fn hex_into(
        &mut self,
        field: &'static str,
        out: &mut [u8],
    ) -> Result<(), WireError> {
        let start = self.offset();
        let s = self.take(field, 2 * out.len())?;
        for (i, (pair, o)) in s.chunks_exact(2).zip(out.iter_mut()).enumerate() {
            let mut v = 0u8;
            for (j, &c) in pair.iter().enumerate() {
                let d = hex_value(c).ok_or(WireError::new(
                    field,
                    start + 2 * i + j,
                    WireErrorKind::NotHex { found: c },
                ))?;
                v = (v << 4) | d;
            }
            *o = v;
        }
        Ok(())
    }

    /// A fixed-size array as hex.
    pub(crate) fn hex_array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        self.hex_into(field, &mut out)?;
        Ok(out)
    }

    /// `n` bytes as hex, into a new vector (the length is checked before allocating).
    pub(crate) fn hex_vec(&mut self, field: &'static str, n: usize) -> Result<Vec<u8>, WireError> {
        let available = self.remaining().len();
        if available < 2 * n {
            return Err(self.err(
                field,
                WireErrorKind::Truncated {
                    needed: 2 * n,
                    available,
                },
            ));
        }
        let mut out = vec![0u8; n];
        self.hex_into(field, &mut out)?;
        Ok(out)
    }

    /// Fails if anything is left.
    pub(crate) fn finish(&self, field: &'static str) -> Result<(), WireError> {
        let count = self.remaining().len();
        if count == 0 {
            Ok(())
        } else {
            Err(self.err(field, WireErrorKind::TrailingBytes { count }))
        }
    }
}

const fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Appends the upper-case hex of `bytes`.
pub(crate) fn put_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(2 * bytes.len());
    for b in bytes {
        out.push(crate::hexutil::nibble_char(b >> 4));
        out.push(crate::hexutil::nibble_char(*b));
    }
}

/// Appends `value` as exactly `n` decimal digits.
///
/// # Errors
/// [`WireErrorKind::OutOfRange`] if it does not fit (`offset` is where it would go).
pub(crate) fn put_decimal(
    out: &mut Vec<u8>,
    field: &'static str,
    offset: usize,
    expected: &'static str,
    value: usize,
    n: usize,
) -> Result<(), WireError> {
    let fits = u32::try_from(n)
        .ok()
        .and_then(|n| 10usize.checked_pow(n))
        .is_some_and(|limit| value < limit);
    if !fits {
        return Err(WireError::new(
            field,
            offset,
            WireErrorKind::OutOfRange {
                expected,
                found: value,
            },
        ));
    }
    let start = out.len();
    let mut v = value;
    out.resize(start + n, b'0');
    for slot in out.iter_mut().skip(start).rev() {
        // `v % 10` is below 10, so the cast cannot truncate.
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_join() {
        let cfg = FrameConfig::default();
        let buf = b"\x00\x060000NC\x00\x060001B2";
        let (f, used) = split_frame(&cfg, buf).unwrap().unwrap();
        assert_eq!(used, 8);
        assert_eq!(f.header().unwrap(), b"0000");
        assert_eq!(f.message(), b"NC");
        assert_eq!(f.message_offset(), 6);
        let (f, used) = split_frame(&cfg, &buf[8..]).unwrap().unwrap();
        assert_eq!(
            (f.header().unwrap(), f.message(), used),
            (&b"0001"[..], &b"B2"[..], 8)
        );
        for n in 0..8 {
            assert_eq!(split_frame(&cfg, &buf[..n]).unwrap(), None, "{n}");
        }
    }

    #[test]
    fn too_large_is_refused_from_the_prefix() {
        let cfg = FrameConfig {
            header_len: 4,
            max_frame_len: 10,
        };
        assert_eq!(frame_len(&cfg, b"\x00\x0A"), Ok(Some(12)));
        let e = frame_len(&cfg, b"\x00\x0B").unwrap_err();
        assert_eq!(
            e,
            WireError::new(
                "length",
                0,
                WireErrorKind::FrameTooLarge { max: 10, found: 11 }
            )
        );
        assert_eq!(
            e.to_string(),
            "length at byte 0: frame length 11 exceeds the limit of 10"
        );
        assert_eq!(e.hsm_code(), HsmErrorCode::InvalidInput);
    }

    #[test]
    fn short_header() {
        let cfg = FrameConfig::default();
        let (f, _) = split_frame(&cfg, b"\x00\x0200").unwrap().unwrap();
        let e = f.header().unwrap_err();
        assert_eq!(
            e.to_string(),
            "header at byte 2: expected a 4-byte header, the frame has 2 bytes"
        );
        assert_eq!(e.hsm_code(), HsmErrorCode::BadHeader);
        assert_eq!(f.message(), b"");
    }

    #[test]
    fn write_frame_checks() {
        let cfg = FrameConfig {
            header_len: 2,
            max_frame_len: 6,
        };
        let mut out = Vec::new();
        write_frame(&cfg, b"AB", b"NCxx", &mut out).unwrap();
        assert_eq!(out, b"\x00\x06ABNCxx");
        assert!(matches!(
            write_frame(&cfg, b"AB", b"NCxxx", &mut out)
                .unwrap_err()
                .kind,
            WireErrorKind::FrameTooLarge { max: 6, found: 7 }
        ));
        assert!(matches!(
            write_frame(&cfg, b"A", b"NC", &mut out).unwrap_err().kind,
            WireErrorKind::BadHeader {
                expected: 2,
                found: 1
            }
        ));
        assert_eq!(out.len(), 8);
    }

    #[test]
    fn config_validation() {
        assert_eq!(FrameConfig::default().validate(), Ok(()));
        let cfg = FrameConfig {
            header_len: 33,
            max_frame_len: 100,
        };
        assert!(cfg.validate().is_err());
        let cfg = FrameConfig {
            header_len: 4,
            max_frame_len: 1 << 20,
        };
        assert_eq!(cfg.limit(), 65_535);
    }

    #[test]
    fn reader_reports_offsets() {
        let mut r = Reader::new(b"12x4AbG", 10);
        assert_eq!(
            r.decimal("count", 3).unwrap_err(),
            WireError::new("count", 12, WireErrorKind::NotDigit { found: b'x' })
        );
        let mut r = Reader::new(b"0042AbG", 10);
        assert_eq!(r.decimal("count", 4), Ok(42));
        let e = r.hex_array::<2>("mac").unwrap_err();
        assert_eq!(
            e,
            WireError::new(
                "mac",
                14,
                WireErrorKind::Truncated {
                    needed: 4,
                    available: 3
                }
            )
        );
        let e = r.hex_vec("mac", 1000).unwrap_err();
        assert_eq!(
            e.kind,
            WireErrorKind::Truncated {
                needed: 2000,
                available: 3
            }
        );
        assert_eq!(r.hex_array::<1>("mac"), Ok([0xAB]));
        assert_eq!(
            r.finish("message").unwrap_err().to_string(),
            "message at byte 16: 1 unexpected bytes after the last field"
        );
        let mut r = Reader::new(b"0G", 0);
        assert_eq!(
            r.hex_array::<1>("kcv").unwrap_err().to_string(),
            "kcv at byte 1: expected a hex digit, found 0x47 'G'"
        );
    }

    #[test]
    fn decimal_writer() {
        let mut out = Vec::new();
        put_decimal(&mut out, "n", 0, "0..=99", 7, 2).unwrap();
        put_decimal(&mut out, "n", 0, "0..=99999", 16384, 5).unwrap();
        assert_eq!(out, b"0716384");
        assert!(put_decimal(&mut out, "n", 3, "0..=99", 100, 2).is_err());
        put_hex(&mut out, &[0xAB, 0x01]);
        assert_eq!(out, b"0716384AB01");
    }
}
