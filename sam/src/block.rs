//! Block-cipher engines built from the key types for the length of one operation, plus the
//! single-block helpers the MAC, PIN block and key functions share. Private to the crate.

use ::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use des::{Des, TdesEde2, TdesEde3};

use crate::key::{AesKey, DesKey, DesKeyLength, Sm4Key};

/// Single DES from an 8-byte key.
#[inline]
pub(crate) fn des(key: &[u8; 8]) -> Des {
    Des::new(&Array::from(*key))
}

/// Encrypts one 8-byte block with a prepared DES engine.
#[inline]
pub(crate) fn des_encrypt(c: &Des, block: &mut [u8; 8]) {
    c.encrypt_block(block.into());
}

/// Decrypts one 8-byte block with a prepared DES engine.
#[inline]
pub(crate) fn des_decrypt(c: &Des, block: &mut [u8; 8]) {
    c.decrypt_block(block.into());
}

/// DES or triple DES, chosen by the key length.
pub(crate) enum DesEngine {
    Single(Des),
    Double(TdesEde2),
    Triple(TdesEde3),
}

impl DesEngine {
    pub(crate) fn new(key: &DesKey) -> Self {
        match key.length() {
            DesKeyLength::Single => Self::Single(des(&key.component(0))),
            DesKeyLength::Double => {
                let mut k = [0u8; 16];
                k.copy_from_slice(key.as_bytes());
                let engine = Self::Double(TdesEde2::new(&Array::from(k)));
                zeroize::Zeroize::zeroize(&mut k);
                engine
            }
            DesKeyLength::Triple => {
                let mut k = [0u8; 24];
                k.copy_from_slice(key.as_bytes());
                let engine = Self::Triple(TdesEde3::new(&Array::from(k)));
                zeroize::Zeroize::zeroize(&mut k);
                engine
            }
        }
    }

    #[inline]
    pub(crate) fn encrypt(&self, block: &mut [u8; 8]) {
        match self {
            Self::Single(c) => c.encrypt_block(block.into()),
            Self::Double(c) => c.encrypt_block(block.into()),
            Self::Triple(c) => c.encrypt_block(block.into()),
        }
    }

    #[inline]
    pub(crate) fn decrypt(&self, block: &mut [u8; 8]) {
        match self {
            Self::Single(c) => c.decrypt_block(block.into()),
            Self::Double(c) => c.decrypt_block(block.into()),
            Self::Triple(c) => c.decrypt_block(block.into()),
        }
    }
}

/// AES of any key size.
pub(crate) enum AesEngine {
    Aes128(aes::Aes128),
    Aes192(aes::Aes192),
    Aes256(aes::Aes256),
}

impl AesEngine {
    pub(crate) fn new(key: &AesKey) -> Self {
        let k = key.as_bytes();
        // The key type guarantees 16, 24 or 32 bytes, so exactly one arm matches; the final
        // arm covers 32 and (unreachably) anything else by falling back to AES-256 over a
        // zero-extended key rather than panicking.
        if let Ok(c) = aes::Aes128::new_from_slice(k) {
            Self::Aes128(c)
        } else if let Ok(c) = aes::Aes192::new_from_slice(k) {
            Self::Aes192(c)
        } else {
            let mut full = [0u8; 32];
            for (d, s) in full.iter_mut().zip(k) {
                *d = *s;
            }
            let engine = Self::Aes256(aes::Aes256::new(&Array::from(full)));
            zeroize::Zeroize::zeroize(&mut full);
            engine
        }
    }

    #[inline]
    pub(crate) fn encrypt(&self, block: &mut [u8; 16]) {
        match self {
            Self::Aes128(c) => c.encrypt_block(block.into()),
            Self::Aes192(c) => c.encrypt_block(block.into()),
            Self::Aes256(c) => c.encrypt_block(block.into()),
        }
    }

    #[inline]
    pub(crate) fn decrypt(&self, block: &mut [u8; 16]) {
        match self {
            Self::Aes128(c) => c.decrypt_block(block.into()),
            Self::Aes192(c) => c.decrypt_block(block.into()),
            Self::Aes256(c) => c.decrypt_block(block.into()),
        }
    }
}

/// SM4.
pub(crate) struct Sm4Engine(sm4::Sm4);

impl Sm4Engine {
    pub(crate) fn new(key: &Sm4Key) -> Self {
        Self(sm4::Sm4::new(&Array::from(*key.as_bytes())))
    }

    #[inline]
    pub(crate) fn encrypt(&self, block: &mut [u8; 16]) {
        self.0.encrypt_block(block.into());
    }

    #[inline]
    pub(crate) fn decrypt(&self, block: &mut [u8; 16]) {
        self.0.decrypt_block(block.into());
    }
}
