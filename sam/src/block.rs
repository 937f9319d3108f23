//! Block-cipher engines built from the key types for the length of one operation, plus the
//! single-block helpers the MAC, PIN block and key functions share. Private to the crate.
//!
//! DES and triple DES are the crate's own table-driven core ([`crate::des_core`]); AES and
//! SM4 are the RustCrypto crates.

use ::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

use crate::des_core::{DesKeySchedule, ede_decrypt, ede_encrypt};
use crate::key::{AesKey, DesKey, DesKeyLength, Sm4Key};

/// DES or triple DES (EDE), chosen by the key length. Two-key triple DES keeps the schedules
/// of K1 and K2 and runs K1 again as the third key. Every schedule zeroizes itself on drop.
#[derive(Debug)]
pub(crate) enum DesEngine {
    Single(DesKeySchedule),
    Double(DesKeySchedule, DesKeySchedule),
    Triple(DesKeySchedule, DesKeySchedule, DesKeySchedule),
}

impl DesEngine {
    pub(crate) fn new(key: &DesKey) -> Self {
        let k = |i| DesKeySchedule::new(key.component_ref(i));
        match key.length() {
            DesKeyLength::Single => Self::Single(k(0)),
            DesKeyLength::Double => Self::Double(k(0), k(1)),
            DesKeyLength::Triple => Self::Triple(k(0), k(1), k(2)),
        }
    }

    #[inline]
    pub(crate) fn encrypt(&self, block: &mut [u8; 8]) {
        match self {
            Self::Single(k) => k.encrypt(block),
            Self::Double(k1, k2) => ede_encrypt(k1, k2, k1, block),
            Self::Triple(k1, k2, k3) => ede_encrypt(k1, k2, k3, block),
        }
    }

    #[inline]
    pub(crate) fn decrypt(&self, block: &mut [u8; 8]) {
        match self {
            Self::Single(k) => k.decrypt(block),
            Self::Double(k1, k2) => ede_decrypt(k1, k2, k1, block),
            Self::Triple(k1, k2, k3) => ede_decrypt(k1, k2, k3, block),
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

#[cfg(test)]
mod tests {
    use super::*;
    use des::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

    /// A deterministic 64-bit generator (SplitMix64) for keys and blocks.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn bytes<const N: usize>(&mut self) -> [u8; N] {
            let mut out = [0u8; N];
            for chunk in out.chunks_mut(8) {
                let word = self.next().to_be_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
            }
            out
        }
    }

    /// The RustCrypto engine for the same key: (encrypt, decrypt) of one block.
    fn reference(key: &[u8], block: [u8; 8]) -> ([u8; 8], [u8; 8]) {
        let (mut e, mut d) = (block, block);
        macro_rules! run {
            ($cipher:ty) => {{
                let c = <$cipher>::new_from_slice(key).unwrap();
                c.encrypt_block((&mut e).into());
                c.decrypt_block((&mut d).into());
            }};
        }
        match key.len() {
            8 => run!(des::Des),
            16 => run!(des::TdesEde2),
            24 => run!(des::TdesEde3),
            n => panic!("key length {n}"),
        }
        (e, d)
    }

    fn cross_check<const N: usize>(seed: u64, rounds: usize) {
        let mut g = Gen(seed);
        for i in 0..rounds {
            let key_bytes: [u8; N] = g.bytes();
            let block: [u8; 8] = g.bytes();
            let key = DesKey::from_bytes(&key_bytes).unwrap();
            let engine = DesEngine::new(&key);
            let (want_enc, want_dec) = reference(&key_bytes, block);

            let mut e = block;
            engine.encrypt(&mut e);
            assert_eq!(
                e, want_enc,
                "encrypt #{i}: key {key_bytes:02X?} block {block:02X?}"
            );
            let mut d = block;
            engine.decrypt(&mut d);
            assert_eq!(
                d, want_dec,
                "decrypt #{i}: key {key_bytes:02X?} block {block:02X?}"
            );
            engine.decrypt(&mut e);
            assert_eq!(e, block, "round trip #{i}");

            if N == 8 {
                let ks = DesKeySchedule::new(key.component_ref(0));
                let mut b = block;
                ks.encrypt(&mut b);
                assert_eq!(b, want_enc, "des_encrypt #{i}");
                let mut b = block;
                ks.decrypt(&mut b);
                assert_eq!(b, want_dec, "des_decrypt #{i}");
            }
        }
    }

    #[test]
    fn single_des_matches_rustcrypto() {
        cross_check::<8>(1, 3000);
    }

    #[test]
    fn two_key_tdes_matches_rustcrypto() {
        cross_check::<16>(2, 3000);
    }

    #[test]
    fn three_key_tdes_matches_rustcrypto() {
        cross_check::<24>(3, 3000);
    }

    /// Chained: each output is the next input, so an error anywhere propagates to the end.
    #[test]
    fn long_chain_matches_rustcrypto() {
        let key_bytes: [u8; 24] = Gen(4).bytes();
        let engine = DesEngine::new(&DesKey::from_bytes(&key_bytes).unwrap());
        let reference = des::TdesEde3::new_from_slice(&key_bytes).unwrap();
        let mut ours = [0u8; 8];
        let mut theirs = Array([0u8; 8]);
        for _ in 0..10_000 {
            engine.encrypt(&mut ours);
            reference.encrypt_block(&mut theirs);
        }
        assert_eq!(ours, theirs.0);
        for _ in 0..10_000 {
            engine.decrypt(&mut ours);
        }
        assert_eq!(ours, [0u8; 8]);
    }

    #[test]
    fn engine_debug_shows_no_key_material() {
        let key = DesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let shown = format!("{:?}", DesEngine::new(&key));
        assert_eq!(
            shown,
            "Double(DesKeySchedule(<redacted>), DesKeySchedule(<redacted>))"
        );
    }
}
