//! Key check values.
//!
//! A key check value (KCV) identifies a key without revealing it. This crate computes it as
//! **E(K, zeros)**, truncated to a selectable length:
//!
//! | key | check block | notes |
//! |---|---|---|
//! | DES, 3DES | DES/3DES-ECB of 8 zero bytes | UnionPay sends 4 bytes, payShield shows 3 |
//! | AES | AES-ECB of 16 zero bytes | the common "encrypt zeros" AES KCV |
//! | SM4 | SM4-ECB of 16 zero bytes | same convention as AES |
//!
//! ANSI X9.24-1:2017 recommends for AES the AES-CMAC of a block of zeros instead; that value
//! is available as [`aes_cmac_kcv`] when a peer uses it. Only the first 1 to 8 bytes of the
//! check block are ever used, so [`Kcv`] holds at most 8 bytes.
//!
//! KCVs are public by design: they appear in `Debug` output and in errors.

use core::fmt;

use subtle::ConstantTimeEq;

use crate::block::{AesEngine, DesEngine, Sm4Engine};
use crate::error::{Error, Result};
use crate::hexutil;
use crate::key::{AesKey, DesKey, Key, Sm4Key};

/// How many bytes of the check block a KCV keeps (1 to 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KcvLength(u8);

impl KcvLength {
    /// 4 bytes, as UnionPay field 62 carries them.
    pub const UNIONPAY: Self = Self(4);
    /// 3 bytes (6 hex digits), as Thales payShield displays them.
    pub const PAYSHIELD: Self = Self(3);
    /// The whole first 8 bytes of the check block.
    pub const FULL: Self = Self(8);

    /// A length of `n` bytes.
    ///
    /// # Errors
    /// [`Error::BadLength`] unless `1 <= n <= 8`.
    pub const fn new(n: usize) -> Result<Self> {
        if n >= 1 && n <= 8 {
            Ok(Self(n as u8))
        } else {
            Err(Error::BadLength {
                what: "KCV length",
                expected: "1 to 8 bytes",
                found: n,
            })
        }
    }

    /// The length in bytes.
    #[must_use]
    pub const fn get(self) -> usize {
        self.0 as usize
    }
}

/// A key check value of 1 to 8 bytes. `Display` and `Debug` show upper-case hex.
///
/// Equality (`==`) is constant-time over the bytes.
#[derive(Clone, Copy, Eq)]
pub struct Kcv {
    bytes: [u8; 8],
    len: KcvLength,
}

impl Kcv {
    /// The KCV of a check block, truncated to `len`.
    #[must_use]
    pub fn from_check_block(block: &[u8], len: KcvLength) -> Self {
        let mut bytes = [0u8; 8];
        for (d, s) in bytes.iter_mut().zip(block).take(len.get()) {
            *d = *s;
        }
        Self { bytes, len }
    }

    /// A KCV as received (1 to 8 bytes).
    ///
    /// # Errors
    /// [`Error::BadLength`] for an empty or longer value.
    pub fn from_bytes(kcv: &[u8]) -> Result<Self> {
        let len = KcvLength::new(kcv.len()).map_err(|_| Error::BadLength {
            what: "KCV",
            expected: "1 to 8 bytes",
            found: kcv.len(),
        })?;
        Ok(Self::from_check_block(kcv, len))
    }

    /// A KCV from 2 to 16 hex digits (an even number).
    ///
    /// # Errors
    /// [`Error::BadLength`] for another number of characters, [`Error::BadHex`] for a bad
    /// character.
    pub fn from_hex(hex: &str) -> Result<Self> {
        if !hex.len().is_multiple_of(2) || hex.is_empty() || hex.len() > 16 {
            return Err(Error::BadLength {
                what: "KCV hex",
                expected: "2 to 16 hex digits, an even number",
                found: hex.len(),
            });
        }
        let mut bytes = [0u8; 8];
        let n = hexutil::decode_into("KCV hex", hex, &mut bytes)?;
        let len = KcvLength::new(n)?;
        Ok(Self { bytes, len })
    }

    /// The check value bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len.get()).unwrap_or(&self.bytes)
    }

    /// The length.
    #[must_use]
    pub const fn len(&self) -> KcvLength {
        self.len
    }

    /// Always `false`. Present for API symmetry with `len`.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        false
    }
}

impl PartialEq for Kcv {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && bool::from(self.bytes.ct_eq(&other.bytes))
    }
}

impl fmt::Display for Kcv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hexutil::fmt_upper(self.as_bytes(), f)
    }
}

impl fmt::Debug for Kcv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kcv(\"{self}\")")
    }
}

/// Checks `key`'s computed KCV against `expected` in constant time.
fn check(
    what: &'static str,
    expected: &[u8],
    compute: impl FnOnce(KcvLength) -> Kcv,
) -> Result<()> {
    let expected = Kcv::from_bytes(expected)?;
    let computed = compute(expected.len());
    if computed == expected {
        Ok(())
    } else {
        Err(Error::KcvMismatch {
            what,
            expected,
            computed,
        })
    }
}

impl DesKey {
    /// The key check value: the first `len` bytes of DES/3DES-ECB(key, 8 zero bytes).
    #[must_use]
    pub fn kcv(&self, len: KcvLength) -> Kcv {
        let mut block = [0u8; 8];
        DesEngine::new(self).encrypt(&mut block);
        Kcv::from_check_block(&block, len)
    }

    /// Checks the key against a received check value (its length selects the truncation),
    /// comparing in constant time. `what` names the key in the error.
    ///
    /// # Errors
    /// [`Error::BadLength`] if `expected` is empty or longer than 8 bytes,
    /// [`Error::KcvMismatch`] if it does not match.
    pub fn verify_kcv(&self, what: &'static str, expected: &[u8]) -> Result<()> {
        check(what, expected, |len| self.kcv(len))
    }
}

impl AesKey {
    /// The key check value: the first `len` bytes of AES-ECB(key, 16 zero bytes).
    #[must_use]
    pub fn kcv(&self, len: KcvLength) -> Kcv {
        let mut block = [0u8; 16];
        AesEngine::new(self).encrypt(&mut block);
        Kcv::from_check_block(&block, len)
    }

    /// Checks the key against a received "encrypt zeros" check value, in constant time.
    ///
    /// # Errors
    /// As [`DesKey::verify_kcv`].
    pub fn verify_kcv(&self, what: &'static str, expected: &[u8]) -> Result<()> {
        check(what, expected, |len| self.kcv(len))
    }
}

/// The ANSI X9.24-1:2017 AES key check value: the first `len` bytes of AES-CMAC(key, 16 zero
/// bytes).
#[must_use]
pub fn aes_cmac_kcv(key: &AesKey, len: KcvLength) -> Kcv {
    Kcv::from_check_block(&crate::mac::aes_cmac(key, &[0u8; 16]), len)
}

impl Sm4Key {
    /// The key check value: the first `len` bytes of SM4-ECB(key, 16 zero bytes).
    #[must_use]
    pub fn kcv(&self, len: KcvLength) -> Kcv {
        let mut block = [0u8; 16];
        Sm4Engine::new(self).encrypt(&mut block);
        Kcv::from_check_block(&block, len)
    }

    /// Checks the key against a received check value, in constant time.
    ///
    /// # Errors
    /// As [`DesKey::verify_kcv`].
    pub fn verify_kcv(&self, what: &'static str, expected: &[u8]) -> Result<()> {
        check(what, expected, |len| self.kcv(len))
    }
}

impl Key {
    /// The key check value under this crate's convention for the key's algorithm.
    #[must_use]
    pub fn kcv(&self, len: KcvLength) -> Kcv {
        match self {
            Self::Des(k) => k.kcv(len),
            Self::Aes(k) => k.kcv(len),
            Self::Sm4(k) => k.kcv(len),
        }
    }

    /// Checks the key against a received check value, in constant time.
    ///
    /// # Errors
    /// As [`DesKey::verify_kcv`].
    pub fn verify_kcv(&self, what: &'static str, expected: &[u8]) -> Result<()> {
        check(what, expected, |len| self.kcv(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Check blocks computed independently with OpenSSL (Python `cryptography`).
    #[test]
    fn des_kcvs() {
        let k = DesKey::from_hex("0123456789ABCDEF").unwrap();
        assert_eq!(k.kcv(KcvLength::FULL).to_string(), "D5D44FF720683D0D");
        assert_eq!(k.kcv(KcvLength::PAYSHIELD).to_string(), "D5D44F");
        let k = DesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        assert_eq!(k.kcv(KcvLength::UNIONPAY).to_string(), "08D7B4FB");
        // The UnionPay development TMK.
        let k = DesKey::from_hex("CA5D92598DCA48CE8A4C76361A9269E9").unwrap();
        assert_eq!(k.kcv(KcvLength::FULL).to_string(), "43C6CCCB5B1BC494");
        // The PIK from the field 62 example: its KCV is 8D0A74B8.
        let pik = DesKey::from_hex("807A23AD32B36D457AE91FDF927570EA").unwrap();
        assert_eq!(
            pik.kcv(KcvLength::UNIONPAY).as_bytes(),
            &[0x8D, 0x0A, 0x74, 0xB8]
        );
    }

    #[test]
    fn aes_and_sm4_kcvs() {
        let k = AesKey::from_hex("2B7E151628AED2A6ABF7158809CF4F3C").unwrap();
        assert_eq!(k.kcv(KcvLength::FULL).to_string(), "7DF76B0C1AB899B3");
        // X9.24-2017 variant: AES-CMAC of a zero block.
        assert_eq!(
            aes_cmac_kcv(&k, KcvLength::FULL).to_string(),
            "7AD386C3760FB349"
        );
        let s = Sm4Key::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        assert_eq!(s.kcv(KcvLength::FULL).to_string(), "2677F46B09C122CC");
        assert_eq!(Key::from(s).kcv(KcvLength::PAYSHIELD).to_string(), "2677F4");
    }

    #[test]
    fn verify_in_constant_time() {
        let k = DesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        assert_eq!(k.verify_kcv("ZPK", &[0x08, 0xD7, 0xB4, 0xFB]), Ok(()));
        assert_eq!(k.verify_kcv("ZPK", &[0x08, 0xD7, 0xB4]), Ok(()));
        assert_eq!(
            k.verify_kcv("ZPK", &[0x08, 0xD7, 0xB4, 0xFC]),
            Err(Error::KcvMismatch {
                what: "ZPK",
                expected: Kcv::from_hex("08D7B4FC").unwrap(),
                computed: Kcv::from_hex("08D7B4FB").unwrap(),
            })
        );
        assert_eq!(
            k.verify_kcv("ZPK", &[]),
            Err(Error::BadLength {
                what: "KCV",
                expected: "1 to 8 bytes",
                found: 0
            })
        );
        let e = k.verify_kcv("ZPK", &[0, 0, 0, 0]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ZPK: key check value mismatch (expected 00000000, computed 08D7B4FB)"
        );
    }

    #[test]
    fn kcv_parsing() {
        assert_eq!(
            KcvLength::new(9),
            Err(Error::BadLength {
                what: "KCV length",
                expected: "1 to 8 bytes",
                found: 9
            })
        );
        assert!(matches!(
            Kcv::from_hex("ABC"),
            Err(Error::BadLength { found: 3, .. })
        ));
        assert!(matches!(
            Kcv::from_hex("ABCX"),
            Err(Error::BadHex { offset: 3, .. })
        ));
        assert_eq!(Kcv::from_hex("abcd").unwrap().as_bytes(), &[0xAB, 0xCD]);
        assert_ne!(
            Kcv::from_hex("ABCD").unwrap(),
            Kcv::from_hex("ABCD00").unwrap()
        );
        assert_eq!(
            format!("{:?}", Kcv::from_hex("ABCD").unwrap()),
            "Kcv(\"ABCD\")"
        );
    }
}
