//! PIN blocks: ISO 9564-1 formats 0, 1 and 3 (8 bytes, DES/3DES) and format 4 (16 bytes,
//! AES).
//!
//! [`Pin`], [`ClearPinBlock`] and the clear format 4 PIN field zeroize on drop and never
//! print their contents. Randomness is never drawn here: formats 1, 3 and 4 take their fill
//! as an argument, so the caller decides where it comes from (and tests stay exact).
//!
//! Conversions ([`convert`], [`translate`]) refuse to go from a PAN-bound format (0 or 3) to
//! format 1, which is not bound to the PAN: that would let an attacker who can submit
//! translations strip the PAN binding.

use core::fmt;

use zeroize::Zeroize;

use crate::block::{AesEngine, DesEngine};
use crate::error::{Error, PanProblem, PinBlockProblem, PinProblem, Result};
use crate::key::{AesKey, DesKey};

/// A PIN of 4 to 12 decimal digits. `Debug` never shows it; it zeroizes on drop.
#[derive(Clone)]
pub struct Pin {
    digits: [u8; 12],
    len: usize,
}

impl Pin {
    /// A PIN from its decimal digits.
    ///
    /// # Errors
    /// [`Error::BadPin`]: [`PinProblem::NotDigit`] with the position of the first
    /// non-digit, or [`PinProblem::Length`] for fewer than 4 or more than 12 digits.
    pub fn new(pin: &str) -> Result<Self> {
        let bytes = pin.as_bytes();
        if let Some(position) = bytes.iter().position(|b| !b.is_ascii_digit()) {
            return Err(Error::BadPin(PinProblem::NotDigit { position }));
        }
        if !(4..=12).contains(&bytes.len()) {
            return Err(Error::BadPin(PinProblem::Length { found: bytes.len() }));
        }
        let mut digits = [0u8; 12];
        for (d, s) in digits.iter_mut().zip(bytes) {
            *d = s - b'0';
        }
        Ok(Self {
            digits,
            len: bytes.len(),
        })
    }

    /// The number of digits (4 to 12).
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Always `false`. Present for API symmetry with `len`.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// The digits as values 0..=9. Handle with care: this is the secret itself.
    #[must_use]
    pub fn digits(&self) -> &[u8] {
        self.digits.get(..self.len).unwrap_or(&self.digits)
    }

    /// Compares two PINs in constant time (for a given pair of lengths).
    #[must_use]
    pub fn ct_eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.len == other.len && bool::from(self.digits.ct_eq(&other.digits))
    }

    /// Writes the PIN into the PIN field nibbles of an 8-byte block: control `c`, the length,
    /// the digits, then `fill(position)` for every remaining nibble.
    fn field(&self, control: u8, fill: impl Fn(usize) -> u8) -> [u8; 8] {
        let mut nibbles = [0u8; 16];
        for (i, n) in nibbles.iter_mut().enumerate() {
            *n = match i {
                0 => control,
                // len is 4..=12 by construction.
                1 => self.len as u8,
                _ => match self.digits().get(i - 2) {
                    Some(d) => *d,
                    None => fill(i) & 0x0F,
                },
            };
        }
        let out = pack(&nibbles);
        nibbles.zeroize();
        out
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.digits.zeroize();
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

fn pack(nibbles: &[u8; 16]) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (o, pair) in out.iter_mut().zip(nibbles.as_chunks::<2>().0) {
        *o = (pair[0] << 4) | (pair[1] & 0x0F);
    }
    out
}

fn nibble(block: &[u8], i: usize) -> u8 {
    let b = block.get(i / 2).copied().unwrap_or(0);
    if i.is_multiple_of(2) {
        b >> 4
    } else {
        b & 0x0F
    }
}

/// A primary account number of 8 to 19 decimal digits (ISO/IEC 7812). `Debug` and
/// `Display` mask it to the first 6 and last 4 digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Pan {
    digits: [u8; 19],
    len: usize,
}

impl Pan {
    /// A PAN from its digits.
    ///
    /// # Errors
    /// [`Error::BadPan`] with the position of the first non-digit, or for fewer than 8 or
    /// more than 19 digits.
    pub fn new(pan: &str) -> Result<Self> {
        let bytes = pan.as_bytes();
        if let Some(position) = bytes.iter().position(|b| !b.is_ascii_digit()) {
            return Err(Error::BadPan(PanProblem::NotDigit { position }));
        }
        if !(8..=19).contains(&bytes.len()) {
            return Err(Error::BadPan(PanProblem::Length { found: bytes.len() }));
        }
        let mut digits = [0u8; 19];
        for (d, s) in digits.iter_mut().zip(bytes) {
            *d = s - b'0';
        }
        Ok(Self {
            digits,
            len: bytes.len(),
        })
    }

    /// The digits as values 0..=9.
    #[must_use]
    pub fn digits(&self) -> &[u8] {
        self.digits.get(..self.len).unwrap_or(&self.digits)
    }

    /// The number of digits (8 to 19).
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Always `false`. Present for API symmetry with `len`.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// The PAN field of formats 0 and 3: `0000` then the 12 rightmost digits excluding the
    /// check digit (left-padded with zeros when the PAN is shorter).
    fn field_iso0(&self) -> [u8; 8] {
        let body = self.digits().split_last().map_or(&[][..], |(_, b)| b);
        let mut nibbles = [0u8; 16];
        for (n, d) in nibbles.iter_mut().rev().zip(body.iter().rev()).take(12) {
            *n = *d;
        }
        pack(&nibbles)
    }

    /// The PAN field of format 4: `M` (PAN length - 12, or 0), the PAN left-padded with zeros
    /// to 12 digits, then zero nibbles to 16 bytes.
    fn field_iso4(&self) -> [u8; 16] {
        let mut nibbles = [0u8; 32];
        let m = self.len.saturating_sub(12);
        // m <= 7 because len <= 19.
        nibbles[0] = m as u8;
        let start = 1 + 12usize.saturating_sub(self.len);
        for (n, d) in nibbles.iter_mut().skip(start).zip(self.digits()) {
            *n = *d;
        }
        let mut out = [0u8; 16];
        let (a, b) = nibbles.split_at(16);
        let (mut l, mut r) = ([0u8; 16], [0u8; 16]);
        l.copy_from_slice(a);
        r.copy_from_slice(b);
        out[..8].copy_from_slice(&pack(&l));
        out[8..].copy_from_slice(&pack(&r));
        out
    }
}

impl fmt::Display for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.digits().iter().enumerate() {
            if i < 6 || i + 4 >= self.len {
                write!(f, "{d}")?;
            } else {
                f.write_str("*")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan(\"{self}\")")
    }
}

/// ISO 9564-1 PIN block formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinBlockFormat {
    /// Format 0 (ANSI X9.8, "ISO-0"): PIN field XOR PAN field, fill `F`.
    Iso0,
    /// Format 1: not PAN-bound, fill from a transaction-unique or random value.
    Iso1,
    /// Format 3: as format 0 with random fill nibbles `A`..`F`.
    Iso3,
    /// Format 4: 16 bytes for AES, enciphered twice around the PAN field.
    Iso4,
}

impl PinBlockFormat {
    /// The control nibble (the format number).
    #[must_use]
    pub const fn control(self) -> u8 {
        match self {
            Self::Iso0 => 0,
            Self::Iso1 => 1,
            Self::Iso3 => 3,
            Self::Iso4 => 4,
        }
    }
}

impl fmt::Display for PinBlockFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ISO 9564 format {}", self.control())
    }
}

/// A clear 8-byte PIN block (formats 0, 1, 3). Zeroizes on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct ClearPinBlock([u8; 8]);

impl ClearPinBlock {
    /// Wraps 8 bytes.
    #[must_use]
    pub const fn new(block: [u8; 8]) -> Self {
        Self(block)
    }

    /// The block bytes. Handle with care: with the PAN they reveal the PIN.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl Drop for ClearPinBlock {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for ClearPinBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClearPinBlock(<redacted>)")
    }
}

fn only_8_byte(format: PinBlockFormat) -> Result<()> {
    if format == PinBlockFormat::Iso4 {
        Err(Error::FormatConversion {
            from: format,
            to: format,
            reason: "format 4 blocks are 16-byte AES blocks: use encrypt_iso4/decrypt_iso4",
        })
    } else {
        Ok(())
    }
}

fn xor8(a: [u8; 8], b: [u8; 8]) -> [u8; 8] {
    (u64::from_ne_bytes(a) ^ u64::from_ne_bytes(b)).to_ne_bytes()
}

/// Builds a clear PIN block.
///
/// - Format 0: `0 | N | PIN | F..F` XOR `0000 | 12 rightmost PAN digits excluding the check
///   digit`; `fill` is ignored.
/// - Format 1: `1 | N | PIN | fill`, where the nibbles after the PIN are the nibbles at the
///   same positions of `fill`; `pan` is ignored.
/// - Format 3: as format 0 with fill nibbles `A`..`F`: the nibble at each fill position
///   is `A + (fill nibble mod 6)`.
///
/// # Errors
/// [`Error::FormatConversion`] for [`PinBlockFormat::Iso4`], which is 16 bytes (see
/// [`encrypt_iso4`]).
pub fn encode(
    format: PinBlockFormat,
    pin: &Pin,
    pan: &Pan,
    fill: &[u8; 8],
) -> Result<ClearPinBlock> {
    only_8_byte(format)?;
    let block = match format {
        PinBlockFormat::Iso0 => xor8(pin.field(0, |_| 0x0F), pan.field_iso0()),
        PinBlockFormat::Iso1 => pin.field(1, |i| nibble(fill, i)),
        _ => xor8(
            pin.field(3, |i| 0x0A + nibble(fill, i) % 6),
            pan.field_iso0(),
        ),
    };
    Ok(ClearPinBlock(block))
}

/// Reads the PIN back out of a PIN field (after the PAN field is removed).
fn read_field(format: PinBlockFormat, field: &[u8], nibbles: usize) -> Result<Pin> {
    let bad = |problem| Error::BadPinBlock { format, problem };
    let control = nibble(field, 0);
    if control != format.control() {
        return Err(bad(PinBlockProblem::Control { found: control }));
    }
    let n = nibble(field, 1);
    if !(4..=12).contains(&n) {
        return Err(bad(PinBlockProblem::PinLength { found: n }));
    }
    let n = usize::from(n);
    let mut pin = Pin {
        digits: [0; 12],
        len: n,
    };
    for (i, d) in pin.digits.iter_mut().enumerate().take(n) {
        let v = nibble(field, i + 2);
        if v > 9 {
            return Err(bad(PinBlockProblem::PinDigit { position: i + 2 }));
        }
        *d = v;
    }
    for position in n + 2..nibbles {
        let v = nibble(field, position);
        let ok = match format {
            PinBlockFormat::Iso0 => v == 0x0F,
            PinBlockFormat::Iso1 => true,
            PinBlockFormat::Iso3 => v >= 0x0A,
            PinBlockFormat::Iso4 => v == 0x0A,
        };
        if !ok {
            return Err(bad(PinBlockProblem::Fill { position }));
        }
    }
    Ok(pin)
}

/// Recovers the PIN from a clear PIN block of format 0, 1 or 3 (`pan` is ignored for
/// format 1).
///
/// # Errors
/// [`Error::BadPinBlock`] if the block is not valid in `format` (wrong control nibble, PIN
/// length outside 4..=12, a non-digit PIN nibble, a bad fill nibble);
/// [`Error::FormatConversion`] for format 4.
pub fn decode(format: PinBlockFormat, block: &ClearPinBlock, pan: &Pan) -> Result<Pin> {
    only_8_byte(format)?;
    let mut field = match format {
        PinBlockFormat::Iso1 => block.0,
        _ => xor8(block.0, pan.field_iso0()),
    };
    let pin = read_field(format, &field, 16);
    field.zeroize();
    pin
}

/// Re-encodes a clear PIN block from one format into another (0, 1 and 3).
///
/// # Errors
/// [`Error::FormatConversion`] from format 0 or 3 to format 1 (format 1 is not bound to the
/// PAN) or to or from format 4; the errors of [`decode`] for a bad block.
pub fn convert(
    block: &ClearPinBlock,
    from: PinBlockFormat,
    to: PinBlockFormat,
    pan: &Pan,
    fill: &[u8; 8],
) -> Result<ClearPinBlock> {
    check_conversion(from, to)?;
    let pin = decode(from, block, pan)?;
    encode(to, &pin, pan, fill)
}

fn check_conversion(from: PinBlockFormat, to: PinBlockFormat) -> Result<()> {
    use PinBlockFormat::{Iso0, Iso1, Iso3, Iso4};
    match (from, to) {
        (Iso0 | Iso3, Iso1) => Err(Error::FormatConversion {
            from,
            to,
            reason: "format 1 is not bound to the PAN",
        }),
        (Iso4, _) | (_, Iso4) => Err(Error::FormatConversion {
            from,
            to,
            reason: "format 4 blocks are 16-byte AES blocks",
        }),
        _ => Ok(()),
    }
}

/// Encrypts a clear 8-byte PIN block under a PIN key (DES or 3DES ECB).
#[must_use]
pub fn encrypt_block(key: &DesKey, block: &ClearPinBlock) -> [u8; 8] {
    let mut out = block.0;
    DesEngine::new(key).encrypt(&mut out);
    out
}

/// Decrypts an 8-byte PIN block under a PIN key (DES or 3DES ECB).
#[must_use]
pub fn decrypt_block(key: &DesKey, block: &[u8; 8]) -> ClearPinBlock {
    let mut out = *block;
    DesEngine::new(key).decrypt(&mut out);
    ClearPinBlock(out)
}

/// Translates an encrypted PIN block: decrypts it under `from_key`, checks it in
/// `from_format`, re-encodes it in `to_format` and encrypts it under `to_key`. The PIN is
/// validated on the way, so a wrong key or PAN is an error rather than garbage out.
///
/// # Errors
/// As [`convert`].
pub fn translate(
    block: &[u8; 8],
    from_key: &DesKey,
    from_format: PinBlockFormat,
    to_key: &DesKey,
    to_format: PinBlockFormat,
    pan: &Pan,
    fill: &[u8; 8],
) -> Result<[u8; 8]> {
    check_conversion(from_format, to_format)?;
    let clear = decrypt_block(from_key, block);
    let pin = decode(from_format, &clear, pan)?;
    let out = encode(to_format, &pin, pan, fill)?;
    Ok(encrypt_block(to_key, &out))
}

/// The clear format 4 PIN field: `4 | N | PIN | A..A` (8 bytes) then the 8 fill bytes.
fn field_iso4(pin: &Pin, fill: &[u8; 8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut head = pin.field(4, |_| 0x0A);
    out[..8].copy_from_slice(&head);
    out[8..].copy_from_slice(fill);
    head.zeroize();
    out
}

fn xor16(a: [u8; 16], b: [u8; 16]) -> [u8; 16] {
    (u128::from_ne_bytes(a) ^ u128::from_ne_bytes(b)).to_ne_bytes()
}

/// ISO 9564-1:2017 format 4: builds the PIN field (`4 | N | PIN | A` fill to 8 bytes, then
/// the 8 bytes of `fill`, which should be random), enciphers it with AES, XORs the PAN field
/// (`M | PAN` left-padded to 12 digits `| 0` fill, where `M` = PAN length - 12) and
/// enciphers again.
#[must_use]
pub fn encrypt_iso4(key: &AesKey, pin: &Pin, pan: &Pan, fill: &[u8; 8]) -> [u8; 16] {
    let engine = AesEngine::new(key);
    let mut block = field_iso4(pin, fill);
    engine.encrypt(&mut block);
    let mut block = xor16(block, pan.field_iso4());
    engine.encrypt(&mut block);
    block
}

/// Deciphers a format 4 PIN block and recovers the PIN (see [`encrypt_iso4`]).
///
/// # Errors
/// [`Error::BadPinBlock`] if the deciphered PIN field is not a valid format 4 field (which is
/// what a wrong key or PAN produces).
pub fn decrypt_iso4(key: &AesKey, block: &[u8; 16], pan: &Pan) -> Result<Pin> {
    let engine = AesEngine::new(key);
    let mut b = *block;
    engine.decrypt(&mut b);
    let mut b = xor16(b, pan.field_iso4());
    engine.decrypt(&mut b);
    let pin = read_field(PinBlockFormat::Iso4, &b, 16);
    b.zeroize();
    pin
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h8(s: &str) -> [u8; 8] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    fn pan() -> Pan {
        Pan::new("5555555551234567").unwrap()
    }

    #[test]
    fn format0_development_examples() {
        let b = encode(
            PinBlockFormat::Iso0,
            &Pin::new("1234").unwrap(),
            &pan(),
            &[0; 8],
        )
        .unwrap();
        assert_eq!(b.as_bytes(), &h8("041261AAAAEDCBA9"));
        let b = encode(
            PinBlockFormat::Iso0,
            &Pin::new("123456789").unwrap(),
            &pan(),
            &[0; 8],
        )
        .unwrap();
        assert_eq!(b.as_bytes(), &h8("091261032D8DCBA9"));
        let pin = decode(PinBlockFormat::Iso0, &b, &pan()).unwrap();
        assert_eq!(pin.digits(), &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn format0_short_pan_is_left_padded() {
        // PAN 12345678 -> body 1234567 -> field 0000 00000 1234567.
        let p = Pan::new("12345678").unwrap();
        let b = encode(
            PinBlockFormat::Iso0,
            &Pin::new("1234").unwrap(),
            &p,
            &[0; 8],
        )
        .unwrap();
        assert_eq!(b.as_bytes(), &h8("041234FFFEDCBA98"));
    }

    #[test]
    fn format1_uses_fill_nibbles() {
        let fill = h8("0123456789ABCDEF");
        let pin = Pin::new("1234").unwrap();
        let b = encode(PinBlockFormat::Iso1, &pin, &pan(), &fill).unwrap();
        assert_eq!(b.as_bytes(), &h8("1412346789ABCDEF"));
        assert!(
            decode(PinBlockFormat::Iso1, &b, &pan())
                .unwrap()
                .ct_eq(&pin)
        );
    }

    #[test]
    fn format3_maps_fill_to_a_through_f() {
        let fill = h8("0123456789ABCDEF");
        let pin = Pin::new("1234").unwrap();
        let b = encode(PinBlockFormat::Iso3, &pin, &pan(), &fill).unwrap();
        // PIN field 341234 ABCDEFABCD XOR PAN field 0000 555555123456.
        assert_eq!(b.as_bytes(), &h8("341261FE98FD9F9B"));
        assert!(
            decode(PinBlockFormat::Iso3, &b, &pan())
                .unwrap()
                .ct_eq(&pin)
        );
    }

    #[test]
    fn twelve_digit_pin() {
        let pin = Pin::new("123456789012").unwrap();
        let b = encode(PinBlockFormat::Iso0, &pin, &pan(), &[0; 8]).unwrap();
        // 0C123456789012FF XOR 0000555555123456.
        assert_eq!(b.as_bytes(), &h8("0C1261032D8226A9"));
        assert_eq!(decode(PinBlockFormat::Iso0, &b, &pan()).unwrap().len(), 12);
    }

    #[test]
    fn pin_validation() {
        assert!(matches!(
            Pin::new("123"),
            Err(Error::BadPin(PinProblem::Length { found: 3 }))
        ));
        assert!(matches!(
            Pin::new("1234567890123"),
            Err(Error::BadPin(PinProblem::Length { found: 13 }))
        ));
        assert!(matches!(
            Pin::new("12a4"),
            Err(Error::BadPin(PinProblem::NotDigit { position: 2 }))
        ));
        assert_eq!(
            Pin::new("12").map(|p| p.len()).unwrap_err().to_string(),
            "PIN: expected 4 to 12 digits, found 2"
        );
        assert!(matches!(
            Pan::new("1234567"),
            Err(Error::BadPan(PanProblem::Length { found: 7 }))
        ));
        assert!(matches!(
            Pan::new("5555-5555"),
            Err(Error::BadPan(PanProblem::NotDigit { position: 4 }))
        ));
    }

    #[test]
    fn secrets_do_not_print() {
        let pin = Pin::new("1234").unwrap();
        assert_eq!(format!("{pin:?}"), "Pin(<redacted>)");
        let b = encode(PinBlockFormat::Iso0, &pin, &pan(), &[0; 8]).unwrap();
        assert_eq!(format!("{b:?}"), "ClearPinBlock(<redacted>)");
        assert_eq!(format!("{:?}", pan()), "Pan(\"555555******4567\")");
        assert_eq!(pan().to_string(), "555555******4567");
    }

    #[test]
    fn decode_reports_problems() {
        let p = pan();
        let bad =
            |hex: &str, format| decode(format, &ClearPinBlock::new(h8(hex)), &p).map(|x| x.len());
        // Control nibble 1 in a format 0 block (after removing the PAN field: 14...).
        assert_eq!(
            bad("141261AAAAEDCBA9", PinBlockFormat::Iso0),
            Err(Error::BadPinBlock {
                format: PinBlockFormat::Iso0,
                problem: PinBlockProblem::Control { found: 1 }
            })
        );
        // Length nibble 3.
        assert_eq!(
            bad("031261AAAAEDCBA9", PinBlockFormat::Iso0),
            Err(Error::BadPinBlock {
                format: PinBlockFormat::Iso0,
                problem: PinBlockProblem::PinLength { found: 3 }
            })
        );
        // Fill nibble E instead of F at position 15.
        assert_eq!(
            bad("041261AAAAEDCBA8", PinBlockFormat::Iso0),
            Err(Error::BadPinBlock {
                format: PinBlockFormat::Iso0,
                problem: PinBlockProblem::Fill { position: 15 }
            })
        );
        // PIN digit A at position 2 (field 04A2...).
        assert_eq!(
            bad("04F761AAAAEDCBA9", PinBlockFormat::Iso0),
            Err(Error::BadPinBlock {
                format: PinBlockFormat::Iso0,
                problem: PinBlockProblem::PinDigit { position: 2 }
            })
        );
        // A format 0 block read as format 3: the F fill is fine but the control is 0.
        assert!(matches!(
            bad("041261AAAAEDCBA9", PinBlockFormat::Iso3),
            Err(Error::BadPinBlock {
                problem: PinBlockProblem::Control { found: 0 },
                ..
            })
        ));
    }

    #[test]
    fn conversions() {
        let pin = Pin::new("1234").unwrap();
        let fill = h8("0123456789ABCDEF");
        let b0 = encode(PinBlockFormat::Iso0, &pin, &pan(), &fill).unwrap();
        let b3 = convert(
            &b0,
            PinBlockFormat::Iso0,
            PinBlockFormat::Iso3,
            &pan(),
            &fill,
        )
        .unwrap();
        assert_eq!(b3.as_bytes(), &h8("341261FE98FD9F9B"));
        let back = convert(
            &b3,
            PinBlockFormat::Iso3,
            PinBlockFormat::Iso0,
            &pan(),
            &fill,
        )
        .unwrap();
        assert_eq!(back.as_bytes(), &h8("041261AAAAEDCBA9"));
        let b1 = encode(PinBlockFormat::Iso1, &pin, &pan(), &fill).unwrap();
        let b0 = convert(
            &b1,
            PinBlockFormat::Iso1,
            PinBlockFormat::Iso0,
            &pan(),
            &fill,
        )
        .unwrap();
        assert_eq!(b0.as_bytes(), &h8("041261AAAAEDCBA9"));
        for from in [PinBlockFormat::Iso0, PinBlockFormat::Iso3] {
            assert_eq!(
                convert(&b0, from, PinBlockFormat::Iso1, &pan(), &fill).map(|b| *b.as_bytes()),
                Err(Error::FormatConversion {
                    from,
                    to: PinBlockFormat::Iso1,
                    reason: "format 1 is not bound to the PAN"
                })
            );
        }
        assert!(matches!(
            encode(PinBlockFormat::Iso4, &pin, &pan(), &fill),
            Err(Error::FormatConversion {
                from: PinBlockFormat::Iso4,
                ..
            })
        ));
        assert_eq!(
            Error::FormatConversion {
                from: PinBlockFormat::Iso0,
                to: PinBlockFormat::Iso1,
                reason: "format 1 is not bound to the PAN"
            }
            .to_string(),
            "cannot convert a PIN block from ISO 9564 format 0 to ISO 9564 format 1: format 1 is not bound to the PAN"
        );
    }

    #[test]
    fn encrypt_and_translate() {
        let pin = Pin::new("1234").unwrap();
        let zpk1 = DesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let zpk2 = DesKey::from_hex("CA5D92598DCA48CE8A4C76361A9269E9").unwrap();
        let clear = encode(PinBlockFormat::Iso0, &pin, &pan(), &[0; 8]).unwrap();
        let enc = encrypt_block(&zpk1, &clear);
        assert_eq!(
            decrypt_block(&zpk1, &enc).as_bytes(),
            &h8("041261AAAAEDCBA9")
        );
        let fill = h8("0123456789ABCDEF");
        let out = translate(
            &enc,
            &zpk1,
            PinBlockFormat::Iso0,
            &zpk2,
            PinBlockFormat::Iso3,
            &pan(),
            &fill,
        )
        .unwrap();
        assert_eq!(
            decrypt_block(&zpk2, &out).as_bytes(),
            &h8("341261FE98FD9F9B")
        );
        // Under the wrong key the block does not decode.
        assert!(matches!(
            translate(
                &enc,
                &zpk2,
                PinBlockFormat::Iso0,
                &zpk1,
                PinBlockFormat::Iso0,
                &pan(),
                &fill
            ),
            Err(Error::BadPinBlock { .. })
        ));
        assert!(matches!(
            translate(
                &enc,
                &zpk1,
                PinBlockFormat::Iso0,
                &zpk2,
                PinBlockFormat::Iso1,
                &pan(),
                &fill
            ),
            Err(Error::FormatConversion { .. })
        ));
    }

    #[test]
    fn format4_aes() {
        // Recomputed independently with OpenSSL (Python `cryptography`).
        let key = AesKey::from_hex("C1D0F8FB4958670DBA40AB1F3752EF0D").unwrap();
        let pin = Pin::new("1234").unwrap();
        let pan18 = Pan::new("432198765432109870").unwrap();
        let fill = h8("2F69ADDE2E9E7ACE");
        let enc = encrypt_iso4(&key, &pin, &pan18, &fill);
        assert_eq!(hex::encode_upper(enc), "7919AF472DC746FEBD159F1105FC1DA4");
        assert!(decrypt_iso4(&key, &enc, &pan18).unwrap().ct_eq(&pin));
        // Short PAN (11 digits, left-padded to 12) and a 12-digit PIN.
        let pin12 = Pin::new("123456789012").unwrap();
        let pan11 = Pan::new("55555555512").unwrap();
        let enc = encrypt_iso4(&key, &pin12, &pan11, &[0; 8]);
        assert_eq!(hex::encode_upper(enc), "B60EFAE2A1C8D138A4436D5637867C03");
        assert!(decrypt_iso4(&key, &enc, &pan11).unwrap().ct_eq(&pin12));
        // The PAN is bound: another PAN does not decode.
        assert!(matches!(
            decrypt_iso4(&key, &enc, &pan18),
            Err(Error::BadPinBlock { .. })
        ));
    }

    #[test]
    fn format4_fields() {
        let pan18 = Pan::new("432198765432109870").unwrap();
        assert_eq!(
            hex::encode_upper(pan18.field_iso4()),
            "64321987654321098700000000000000"
        );
        let pan11 = Pan::new("55555555512").unwrap();
        assert_eq!(
            hex::encode_upper(pan11.field_iso4()),
            "00555555555120000000000000000000"
        );
        let f = field_iso4(&Pin::new("1234").unwrap(), &h8("2F69ADDE2E9E7ACE"));
        assert_eq!(hex::encode_upper(f), "441234AAAAAAAAAA2F69ADDE2E9E7ACE");
    }

    #[test]
    fn round_trips_for_every_pin_and_pan_length() {
        let aes = AesKey::from_hex("C1D0F8FB4958670DBA40AB1F3752EF0D").unwrap();
        let fill = h8("F0E1D2C3B4A59687");
        let digits = "9876543210987654321";
        for pin_len in 4..=12 {
            let pin = Pin::new(&digits[..pin_len]).unwrap();
            for pan_len in 8..=19 {
                let pan = Pan::new(&digits[19 - pan_len..]).unwrap();
                for format in [
                    PinBlockFormat::Iso0,
                    PinBlockFormat::Iso1,
                    PinBlockFormat::Iso3,
                ] {
                    let b = encode(format, &pin, &pan, &fill).unwrap();
                    assert!(
                        decode(format, &b, &pan).unwrap().ct_eq(&pin),
                        "{format} {pin_len} {pan_len}"
                    );
                }
                let e = encrypt_iso4(&aes, &pin, &pan, &fill);
                assert!(decrypt_iso4(&aes, &e, &pan).unwrap().ct_eq(&pin));
            }
        }
    }

    #[test]
    fn any_block_decodes_or_errors() {
        // Every control/length nibble combination over a few bodies: no panics, and
        // whatever decodes re-encodes to the same block.
        let p = pan();
        for first in 0..=255u8 {
            for body in [[0x12u8; 7], [0xFF; 7], [0xAA; 7]] {
                let mut raw = [0u8; 8];
                raw[0] = first;
                raw[1..].copy_from_slice(&body);
                for format in [
                    PinBlockFormat::Iso0,
                    PinBlockFormat::Iso1,
                    PinBlockFormat::Iso3,
                ] {
                    let block = ClearPinBlock::new(raw);
                    if let Ok(pin) = decode(format, &block, &p)
                        && format == PinBlockFormat::Iso0
                    {
                        assert_eq!(encode(format, &pin, &p, &[0; 8]).unwrap().as_bytes(), &raw);
                    }
                }
            }
        }
    }
}
