//! Key material: DES/3DES, AES and SM4 keys, odd parity, and key types.
//!
//! Every key type keeps its bytes in a fixed array that is zeroized on drop, and its `Debug`
//! output shows only the kind, the length and the key check value (see [`crate::kcv`]). Keys
//! are `Clone` (each clone zeroizes on its own drop) but not `Copy`, and they have no
//! `PartialEq`: compare them with [`DesKey::ct_eq`] and friends, which run in constant time.
//!
//! Cipher objects (key schedules) are built from these bytes for the length of one operation,
//! and wipe themselves on drop: the crate's own DES key schedules always, the `aes` and `sm4`
//! crates' through their `zeroize` cargo feature, which the workspace enables.

use core::fmt;

use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::hexutil;
use crate::kcv::KcvLength;

/// The length of a DES key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DesKeyLength {
    /// 8 bytes: single DES.
    Single,
    /// 16 bytes: two-key triple DES (K1, K2, K1).
    Double,
    /// 24 bytes: three-key triple DES.
    Triple,
}

impl DesKeyLength {
    /// The length in bytes (8, 16 or 24).
    #[must_use]
    pub const fn bytes(self) -> usize {
        match self {
            Self::Single => 8,
            Self::Double => 16,
            Self::Triple => 24,
        }
    }

    /// The length for a byte count, if it is 8, 16 or 24.
    #[must_use]
    pub const fn from_bytes(n: usize) -> Option<Self> {
        match n {
            8 => Some(Self::Single),
            16 => Some(Self::Double),
            24 => Some(Self::Triple),
            _ => None,
        }
    }
}

/// A DES or triple-DES key of 8, 16 or 24 bytes.
///
/// Parity bits are carried as given; [`DesKey::check_parity`] and
/// [`DesKey::adjust_parity`] deal with them. DES ignores them when encrypting.
#[derive(Clone)]
pub struct DesKey {
    bytes: [u8; 24],
    length: DesKeyLength,
}

impl DesKey {
    /// A single-length (8-byte) key.
    #[must_use]
    pub fn single(key: [u8; 8]) -> Self {
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&key);
        Self {
            bytes,
            length: DesKeyLength::Single,
        }
    }

    /// A double-length (16-byte) key.
    #[must_use]
    pub fn double(key: [u8; 16]) -> Self {
        let mut bytes = [0u8; 24];
        bytes[..16].copy_from_slice(&key);
        Self {
            bytes,
            length: DesKeyLength::Double,
        }
    }

    /// A triple-length (24-byte) key.
    #[must_use]
    pub fn triple(key: [u8; 24]) -> Self {
        Self {
            bytes: key,
            length: DesKeyLength::Triple,
        }
    }

    /// A key from 8, 16 or 24 bytes.
    ///
    /// # Errors
    /// [`Error::BadLength`] for any other length.
    pub fn from_bytes(key: &[u8]) -> Result<Self> {
        let length = DesKeyLength::from_bytes(key.len()).ok_or(Error::BadLength {
            what: "DES key",
            expected: "8, 16 or 24 bytes",
            found: key.len(),
        })?;
        let mut bytes = [0u8; 24];
        bytes[..length.bytes()].copy_from_slice(key);
        Ok(Self { bytes, length })
    }

    /// A key from 16, 32 or 48 hex digits (either case).
    ///
    /// # Errors
    /// [`Error::BadLength`] for any other number of characters, [`Error::BadHex`] for a
    /// character that is not a hex digit.
    pub fn from_hex(hex: &str) -> Result<Self> {
        let length = DesKeyLength::from_bytes(hex.len() / 2)
            .filter(|_| hex.len().is_multiple_of(2))
            .ok_or(Error::BadLength {
                what: "DES key hex",
                expected: "16, 32 or 48 hex digits",
                found: hex.len(),
            })?;
        let mut bytes = [0u8; 24];
        hexutil::decode_into("DES key hex", hex, &mut bytes[..length.bytes()])?;
        Ok(Self { bytes, length })
    }

    /// The key length.
    #[must_use]
    pub const fn length(&self) -> DesKeyLength {
        self.length
    }

    /// The key length in bytes (8, 16 or 24).
    #[must_use]
    pub const fn len(&self) -> usize {
        self.length.bytes()
    }

    /// Always `false`: a key has at least 8 bytes. Present for API symmetry with `len`.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// The key bytes. Handle with care: this is the secret itself.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.length.bytes()]
    }

    /// The `i`-th 8-byte component (0-based); components past the key length repeat the
    /// triple-DES convention: a double-length key's third component is its first.
    pub(crate) fn component(&self, i: usize) -> [u8; 8] {
        *self.component_ref(i)
    }

    /// The `i`-th 8-byte component as [`DesKey::component`] picks it, borrowed from the key
    /// (so no copy of it is left to wipe).
    pub(crate) fn component_ref(&self, i: usize) -> &[u8; 8] {
        let i = match (self.length, i) {
            (DesKeyLength::Single, _) => 0,
            (DesKeyLength::Double, 2) => 0,
            (_, i) => i.min(2),
        };
        &self.bytes.as_chunks::<8>().0[i]
    }

    /// `true` if every byte has odd parity.
    #[must_use]
    pub fn has_odd_parity(&self) -> bool {
        self.as_bytes().iter().all(|b| b.count_ones() % 2 == 1)
    }

    /// Checks that every byte has odd parity.
    ///
    /// # Errors
    /// [`Error::BadParity`] naming the first byte with even parity.
    pub fn check_parity(&self) -> Result<()> {
        match self.as_bytes().iter().position(|b| b.count_ones() % 2 == 0) {
            None => Ok(()),
            Some(index) => Err(Error::BadParity {
                what: "DES key",
                index,
            }),
        }
    }

    /// Sets the low bit of every byte so that each byte has odd parity.
    pub fn adjust_parity(&mut self) {
        let n = self.length.bytes();
        for b in &mut self.bytes[..n] {
            *b = odd_parity(*b);
        }
    }

    /// Returns the key with odd parity (see [`DesKey::adjust_parity`]).
    #[must_use]
    pub fn with_odd_parity(mut self) -> Self {
        self.adjust_parity();
        self
    }

    /// Compares two keys in constant time (for a given pair of lengths).
    #[must_use]
    pub fn ct_eq(&self, other: &Self) -> bool {
        let same_len = Choice::from(u8::from(self.length == other.length));
        bool::from(same_len & self.bytes.ct_eq(&other.bytes))
    }
}

impl Drop for DesKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for DesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.length {
            DesKeyLength::Single => "DES",
            DesKeyLength::Double => "3DES-2",
            DesKeyLength::Triple => "3DES-3",
        };
        f.debug_struct("DesKey")
            .field("kind", &kind)
            .field("kcv", &self.kcv(KcvLength::UNIONPAY))
            .finish()
    }
}

/// Returns `b` with its low bit set so that the byte has odd parity.
#[must_use]
pub const fn odd_parity(b: u8) -> u8 {
    let high = b & 0xFE;
    if high.count_ones().is_multiple_of(2) {
        high | 1
    } else {
        high
    }
}

/// An AES key of 16, 24 or 32 bytes.
#[derive(Clone)]
pub struct AesKey {
    bytes: [u8; 32],
    len: usize,
}

impl AesKey {
    /// A key from 16, 24 or 32 bytes.
    ///
    /// # Errors
    /// [`Error::BadLength`] for any other length.
    pub fn from_bytes(key: &[u8]) -> Result<Self> {
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(Error::BadLength {
                what: "AES key",
                expected: "16, 24 or 32 bytes",
                found: key.len(),
            });
        }
        let mut bytes = [0u8; 32];
        bytes[..key.len()].copy_from_slice(key);
        Ok(Self {
            bytes,
            len: key.len(),
        })
    }

    /// A key from 32, 48 or 64 hex digits (either case).
    ///
    /// # Errors
    /// [`Error::BadLength`] for any other number of characters, [`Error::BadHex`] for a
    /// character that is not a hex digit.
    pub fn from_hex(hex: &str) -> Result<Self> {
        if !matches!(hex.len(), 32 | 48 | 64) {
            return Err(Error::BadLength {
                what: "AES key hex",
                expected: "32, 48 or 64 hex digits",
                found: hex.len(),
            });
        }
        let len = hex.len() / 2;
        let mut bytes = [0u8; 32];
        hexutil::decode_into("AES key hex", hex, &mut bytes[..len])?;
        Ok(Self { bytes, len })
    }

    /// The key length in bytes (16, 24 or 32).
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Always `false`. Present for API symmetry with `len`.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// The key bytes. Handle with care: this is the secret itself.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&self.bytes)
    }

    /// Compares two keys in constant time (for a given pair of lengths).
    #[must_use]
    pub fn ct_eq(&self, other: &Self) -> bool {
        let same_len = Choice::from(u8::from(self.len == other.len));
        bool::from(same_len & self.bytes.ct_eq(&other.bytes))
    }
}

impl Drop for AesKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.len {
            16 => "AES-128",
            24 => "AES-192",
            _ => "AES-256",
        };
        f.debug_struct("AesKey")
            .field("kind", &kind)
            .field("kcv", &self.kcv(KcvLength::UNIONPAY))
            .finish()
    }
}

/// An SM4 key (16 bytes).
#[derive(Clone)]
pub struct Sm4Key {
    bytes: [u8; 16],
}

impl Sm4Key {
    /// A key from its 16 bytes.
    #[must_use]
    pub fn new(key: [u8; 16]) -> Self {
        Self { bytes: key }
    }

    /// A key from 16 bytes.
    ///
    /// # Errors
    /// [`Error::BadLength`] for any other length.
    pub fn from_bytes(key: &[u8]) -> Result<Self> {
        let bytes: [u8; 16] = key.try_into().map_err(|_| Error::BadLength {
            what: "SM4 key",
            expected: "16 bytes",
            found: key.len(),
        })?;
        Ok(Self { bytes })
    }

    /// A key from 32 hex digits (either case).
    ///
    /// # Errors
    /// [`Error::BadLength`] for any other number of characters, [`Error::BadHex`] for a
    /// character that is not a hex digit.
    pub fn from_hex(hex: &str) -> Result<Self> {
        if hex.len() != 32 {
            return Err(Error::BadLength {
                what: "SM4 key hex",
                expected: "32 hex digits",
                found: hex.len(),
            });
        }
        let mut bytes = [0u8; 16];
        hexutil::decode_into("SM4 key hex", hex, &mut bytes)?;
        Ok(Self { bytes })
    }

    /// The key bytes. Handle with care: this is the secret itself.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.bytes
    }

    /// Compares two keys in constant time.
    #[must_use]
    pub fn ct_eq(&self, other: &Self) -> bool {
        bool::from(self.bytes.ct_eq(&other.bytes))
    }
}

impl Drop for Sm4Key {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for Sm4Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sm4Key")
            .field("kind", &"SM4")
            .field("kcv", &self.kcv(KcvLength::UNIONPAY))
            .finish()
    }
}

/// A key of any supported algorithm, for the algorithm-agnostic functions in
/// [`crate::cipher`].
#[derive(Clone, Debug)]
pub enum Key {
    /// DES or triple DES.
    Des(DesKey),
    /// AES.
    Aes(AesKey),
    /// SM4.
    Sm4(Sm4Key),
}

impl Key {
    /// The cipher's block size in bytes: 8 for DES, 16 for AES and SM4.
    #[must_use]
    pub const fn block_size(&self) -> usize {
        match self {
            Self::Des(_) => 8,
            Self::Aes(_) | Self::Sm4(_) => 16,
        }
    }
}

impl From<DesKey> for Key {
    fn from(k: DesKey) -> Self {
        Self::Des(k)
    }
}

impl From<AesKey> for Key {
    fn from(k: AesKey) -> Self {
        Self::Aes(k)
    }
}

impl From<Sm4Key> for Key {
    fn from(k: Sm4Key) -> Self {
        Self::Sm4(k)
    }
}

/// What a key may be used for. Operations that take a key check its [`KeyType`] against the
/// usage they need (see [`KeyType::require`]), so a MAC key cannot encrypt PINs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyUsage {
    /// Encrypting other keys for transport (key-encrypting keys).
    KeyEncryption,
    /// Encrypting PIN blocks.
    PinEncryption,
    /// Computing and verifying MACs.
    Mac,
    /// Encrypting data.
    DataEncryption,
    /// Deriving PBOC card keys by diversification.
    CardKeyDerivation,
}

impl fmt::Display for KeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::KeyEncryption => "key encryption",
            Self::PinEncryption => "PIN encryption",
            Self::Mac => "MAC",
            Self::DataEncryption => "data encryption",
            Self::CardKeyDerivation => "card key derivation",
        })
    }
}

/// The type of a key, in the usual HSM vocabulary.
///
/// Terminal keys (`T..`) are shared with one POS terminal; zone keys (`Z..`) with another
/// institution. UnionPay names: TMK = terminal master key, PIK = [`KeyType::Tpk`],
/// MAK = [`KeyType::Tak`], TDK = [`KeyType::Tdk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// Terminal master key: encrypts the working keys sent to a terminal.
    Tmk,
    /// Zone master key: encrypts working keys exchanged with another institution.
    Zmk,
    /// Terminal PIN key (UnionPay PIK).
    Tpk,
    /// Zone PIN key.
    Zpk,
    /// Terminal authentication (MAC) key (UnionPay MAK).
    Tak,
    /// Zone authentication (MAC) key.
    Zak,
    /// Terminal data key (UnionPay TDK: track data encryption).
    Tdk,
    /// Zone encryption key (data).
    Zek,
    /// PBOC master purchase key (MPK), diversified into each card's DPK.
    PbocPurchase,
    /// PBOC master load key (MLK), diversified into each card's DLK.
    PbocLoad,
    /// PBOC master TAC key (MTK), diversified into each card's DTK.
    PbocTac,
    /// PBOC master unload key (MULK), diversified into each card's DULK.
    PbocUnload,
    /// PBOC master overdraw-limit update key (MUK), diversified into each card's DUK.
    PbocUpdate,
}

impl KeyType {
    /// Every key type, in declaration order (`KeyType::ALL[t as usize] == t`).
    pub const ALL: [KeyType; 13] = [
        KeyType::Tmk,
        KeyType::Zmk,
        KeyType::Tpk,
        KeyType::Zpk,
        KeyType::Tak,
        KeyType::Zak,
        KeyType::Tdk,
        KeyType::Zek,
        KeyType::PbocPurchase,
        KeyType::PbocLoad,
        KeyType::PbocTac,
        KeyType::PbocUnload,
        KeyType::PbocUpdate,
    ];

    /// What this type of key may be used for.
    #[must_use]
    pub const fn usage(self) -> KeyUsage {
        match self {
            Self::Tmk | Self::Zmk => KeyUsage::KeyEncryption,
            Self::Tpk | Self::Zpk => KeyUsage::PinEncryption,
            Self::Tak | Self::Zak => KeyUsage::Mac,
            Self::Tdk | Self::Zek => KeyUsage::DataEncryption,
            Self::PbocPurchase
            | Self::PbocLoad
            | Self::PbocTac
            | Self::PbocUnload
            | Self::PbocUpdate => KeyUsage::CardKeyDerivation,
        }
    }

    /// Checks that a key of this type may be used for `usage`; `what` names the argument in
    /// the error.
    ///
    /// # Errors
    /// [`Error::WrongKeyType`] if it may not.
    pub const fn require(self, what: &'static str, usage: KeyUsage) -> Result<()> {
        if self.usage() as u8 == usage as u8 {
            Ok(())
        } else {
            Err(Error::WrongKeyType {
                what,
                expected: usage,
                found: self,
            })
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tmk => "TMK",
            Self::Zmk => "ZMK",
            Self::Tpk => "TPK",
            Self::Zpk => "ZPK",
            Self::Tak => "TAK",
            Self::Zak => "ZAK",
            Self::Tdk => "TDK",
            Self::Zek => "ZEK",
            Self::PbocPurchase => "PBOC MPK",
            Self::PbocLoad => "PBOC MLK",
            Self::PbocTac => "PBOC MTK",
            Self::PbocUnload => "PBOC MULK",
            Self::PbocUpdate => "PBOC MUK",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn des_key_lengths() {
        assert_eq!(DesKey::from_bytes(&[1; 8]).map(|k| k.len()), Ok(8));
        assert_eq!(DesKey::from_bytes(&[1; 16]).map(|k| k.len()), Ok(16));
        assert_eq!(DesKey::from_bytes(&[1; 24]).map(|k| k.len()), Ok(24));
        assert_eq!(
            DesKey::from_bytes(&[1; 10]).map(|k| k.len()),
            Err(Error::BadLength {
                what: "DES key",
                expected: "8, 16 or 24 bytes",
                found: 10
            })
        );
    }

    #[test]
    fn des_key_from_hex() {
        let k = DesKey::from_hex("0123456789abcdefFEDCBA9876543210").unwrap();
        assert_eq!(
            hex::encode_upper(k.as_bytes()),
            "0123456789ABCDEFFEDCBA9876543210"
        );
        assert_eq!(k.length(), DesKeyLength::Double);
        assert_eq!(
            DesKey::from_hex("0123456789ABCDE").map(|k| k.len()),
            Err(Error::BadLength {
                what: "DES key hex",
                expected: "16, 32 or 48 hex digits",
                found: 15
            })
        );
        assert_eq!(
            DesKey::from_hex("0123456789ABCDEG").map(|k| k.len()),
            Err(Error::BadHex {
                what: "DES key hex",
                offset: 15
            })
        );
        // 17 hex digits: 17 / 2 = 8 would be a valid length if oddness were not checked.
        assert_eq!(
            DesKey::from_hex("é123456789ABCDE").map(|k| k.len()),
            Err(Error::BadHex {
                what: "DES key hex",
                offset: 0
            })
        );
        assert!(matches!(
            DesKey::from_hex("0123456789ABCDEF0"),
            Err(Error::BadLength { found: 17, .. })
        ));
    }

    #[test]
    fn components_follow_tdes_conventions() {
        let k = DesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        assert_eq!(
            k.component(0),
            [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]
        );
        assert_eq!(
            k.component(1),
            [0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10]
        );
        assert_eq!(k.component(2), k.component(0));
        let s = DesKey::single([7; 8]);
        assert_eq!(s.component(1), [7; 8]);
    }

    #[test]
    fn parity() {
        let mut k = DesKey::from_hex("0022446688AACCEE").unwrap();
        assert!(!k.has_odd_parity());
        assert_eq!(
            k.check_parity(),
            Err(Error::BadParity {
                what: "DES key",
                index: 0
            })
        );
        k.adjust_parity();
        assert_eq!(hex::encode_upper(k.as_bytes()), "0123456789ABCDEF");
        assert!(k.has_odd_parity());
        assert_eq!(k.check_parity(), Ok(()));
        let k = DesKey::from_hex("0123456789ABCDEE").unwrap();
        assert_eq!(
            k.check_parity(),
            Err(Error::BadParity {
                what: "DES key",
                index: 7
            })
        );
        assert_eq!(odd_parity(0xFF), 0xFE);
        assert_eq!(odd_parity(0x00), 0x01);
    }

    #[test]
    fn debug_shows_kind_and_kcv_only() {
        let k = DesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        assert_eq!(
            format!("{k:?}"),
            r#"DesKey { kind: "3DES-2", kcv: Kcv("08D7B4FB") }"#
        );
        let a = AesKey::from_hex("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        assert_eq!(
            format!("{a:?}"),
            r#"AesKey { kind: "AES-128", kcv: Kcv("7DF76B0C") }"#
        );
        let s = Sm4Key::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        assert_eq!(
            format!("{s:?}"),
            r#"Sm4Key { kind: "SM4", kcv: Kcv("2677F46B") }"#
        );
        assert_eq!(
            format!("{:?}", Key::from(s)),
            r#"Sm4(Sm4Key { kind: "SM4", kcv: Kcv("2677F46B") })"#
        );
    }

    #[test]
    fn aes_and_sm4_lengths() {
        assert_eq!(AesKey::from_bytes(&[0; 24]).map(|k| k.len()), Ok(24));
        assert_eq!(
            AesKey::from_bytes(&[0; 20]).map(|k| k.len()),
            Err(Error::BadLength {
                what: "AES key",
                expected: "16, 24 or 32 bytes",
                found: 20
            })
        );
        assert!(matches!(
            AesKey::from_hex("00"),
            Err(Error::BadLength {
                what: "AES key hex",
                found: 2,
                ..
            })
        ));
        assert!(matches!(
            Sm4Key::from_bytes(&[0; 8]),
            Err(Error::BadLength {
                what: "SM4 key",
                found: 8,
                ..
            })
        ));
        assert!(matches!(
            Sm4Key::from_hex("0123456789ABCDEFFEDCBA987654321X"),
            Err(Error::BadHex {
                what: "SM4 key hex",
                offset: 31
            })
        ));
    }

    #[test]
    fn constant_time_equality() {
        let a = DesKey::from_hex("0123456789ABCDEF").unwrap();
        let b = DesKey::from_hex("0123456789ABCDEF0123456789ABCDEF").unwrap();
        assert!(a.ct_eq(&a.clone()));
        assert!(!a.ct_eq(&b));
    }

    #[test]
    fn key_types_guard_usage() {
        assert_eq!(KeyType::Tpk.require("PIK", KeyUsage::PinEncryption), Ok(()));
        assert_eq!(
            KeyType::Tak.require("PIK", KeyUsage::PinEncryption),
            Err(Error::WrongKeyType {
                what: "PIK",
                expected: KeyUsage::PinEncryption,
                found: KeyType::Tak
            })
        );
        assert_eq!(
            Error::WrongKeyType {
                what: "PIK",
                expected: KeyUsage::PinEncryption,
                found: KeyType::Tak
            }
            .to_string(),
            "PIK: a TAK key cannot be used for PIN encryption"
        );
        assert_eq!(KeyType::PbocTac.usage(), KeyUsage::CardKeyDerivation);
    }
}
