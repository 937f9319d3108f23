//! Message authentication codes.
//!
//! | function | algorithm | key | output |
//! |---|---|---|---|
//! | [`iso9797_1_alg1`] | ISO/IEC 9797-1 MAC algorithm 1 (CBC-MAC) | DES or 3DES | 8 bytes |
//! | [`iso9797_1_alg3`] | ISO/IEC 9797-1 MAC algorithm 3 (retail MAC) | double-length 3DES | 8 bytes |
//! | [`x9_19`] | ANSI X9.19 = algorithm 3, padding method 1 | double-length 3DES | 8 bytes |
//! | [`x9_9`] | ANSI X9.9 = algorithm 1 with single DES, padding method 1 | DES | 8 bytes |
//! | [`pos_ecb`] | UnionPay POS "ECB" MAC | DES or 3DES | 8 ASCII hex characters |
//! | [`pboc`], [`pboc_with_iv`] | PBOC 2.0 MAC/TAC | DES, or 3DES on the last block | 4 bytes |
//! | [`aes_cmac`] | AES-CMAC (NIST SP 800-38B, RFC 4493) | AES | 16 bytes |
//! | [`sm4_cbc_mac`] | CBC-MAC with SM4 | SM4 | 16 bytes |
//!
//! Results are full blocks; truncate as the protocol requires (many send the left 4 bytes).
//! Compare received MACs with [`verify`], which runs in constant time. None of these
//! functions allocates.

use cmac::digest::InnerInit;
use cmac::{Cmac, Mac};
use subtle::ConstantTimeEq;

use crate::block::{AesEngine, DesEngine, Sm4Engine};
use crate::des_core::DesKeySchedule;
use crate::error::{Error, Result};
use crate::hexutil;
use crate::key::{AesKey, DesKey, DesKeyLength, Sm4Key};

/// ISO/IEC 9797-1 padding methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Method 1: append zero bytes up to a whole block (nothing if already aligned; one zero
    /// block for empty data).
    Method1,
    /// Method 2: append `80`, then zero bytes up to a whole block (always at least one byte).
    /// This is the PBOC padding.
    Method2,
}

/// Calls `f` with each block of `data` padded as `padding` says, without allocating.
#[inline]
fn for_each_block<const N: usize>(data: &[u8], padding: Padding, mut f: impl FnMut(&[u8; N])) {
    let (blocks, rest) = data.as_chunks::<N>();
    for b in blocks {
        f(b);
    }
    let mut last = [0u8; N];
    for (d, s) in last.iter_mut().zip(rest) {
        *d = *s;
    }
    match padding {
        Padding::Method1 => {
            if !rest.is_empty() || data.is_empty() {
                f(&last);
            }
        }
        Padding::Method2 => {
            if let Some(b) = last.get_mut(rest.len()) {
                *b = 0x80;
            }
            f(&last);
        }
    }
}

#[inline]
fn xor8(a: [u8; 8], b: &[u8; 8]) -> [u8; 8] {
    (u64::from_ne_bytes(a) ^ u64::from_ne_bytes(*b)).to_ne_bytes()
}

#[inline]
fn xor16(a: [u8; 16], b: &[u8; 16]) -> [u8; 16] {
    (u128::from_ne_bytes(a) ^ u128::from_ne_bytes(*b)).to_ne_bytes()
}

/// ISO/IEC 9797-1 MAC algorithm 1: CBC-MAC with a zero IV, using single DES for an 8-byte
/// key and triple DES on every block for a 16- or 24-byte key. Returns the whole last block.
#[must_use]
pub fn iso9797_1_alg1(key: &DesKey, data: &[u8], padding: Padding) -> [u8; 8] {
    let engine = DesEngine::new(key);
    let mut state = [0u8; 8];
    for_each_block(data, padding, |b| {
        state = xor8(state, b);
        engine.encrypt(&mut state);
    });
    state
}

/// The retail MAC core: CBC with the single-DES `left` key from `iv`, then decrypt with
/// `right` and encrypt with `left` on the result (so the last block sees 3DES).
#[inline]
fn retail(key: &DesKey, iv: [u8; 8], data: &[u8], padding: Padding) -> [u8; 8] {
    let left = DesKeySchedule::new(key.component_ref(0));
    let right = DesKeySchedule::new(key.component_ref(1));
    let mut state = iv;
    for_each_block(data, padding, |b| {
        state = xor8(state, b);
        left.encrypt(&mut state);
    });
    right.decrypt(&mut state);
    left.encrypt(&mut state);
    state
}

fn require_double(what: &'static str, key: &DesKey) -> Result<()> {
    if key.length() == DesKeyLength::Double {
        Ok(())
    } else {
        Err(Error::BadLength {
            what,
            expected: "16 bytes",
            found: key.len(),
        })
    }
}

/// ISO/IEC 9797-1 MAC algorithm 3 (the "retail MAC"): CBC-MAC with single DES under the left
/// half of a double-length key on every block, then decrypt with the right half and encrypt
/// with the left half. Costs one DES operation per block plus two.
///
/// # Errors
/// [`Error::BadLength`] unless the key is 16 bytes.
pub fn iso9797_1_alg3(key: &DesKey, data: &[u8], padding: Padding) -> Result<[u8; 8]> {
    require_double("retail MAC key", key)?;
    Ok(retail(key, [0; 8], data, padding))
}

/// ANSI X9.19: ISO/IEC 9797-1 algorithm 3 with padding method 1.
///
/// # Errors
/// [`Error::BadLength`] unless the key is 16 bytes.
pub fn x9_19(key: &DesKey, data: &[u8]) -> Result<[u8; 8]> {
    require_double("X9.19 key", key)?;
    Ok(retail(key, [0; 8], data, Padding::Method1))
}

/// ANSI X9.9: single-DES CBC-MAC with padding method 1.
///
/// # Errors
/// [`Error::BadLength`] unless the key is 8 bytes.
pub fn x9_9(key: &DesKey, data: &[u8]) -> Result<[u8; 8]> {
    if key.length() != DesKeyLength::Single {
        return Err(Error::BadLength {
            what: "X9.9 key",
            expected: "8 bytes",
            found: key.len(),
        });
    }
    Ok(iso9797_1_alg1(key, data, Padding::Method1))
}

/// The UnionPay POS "ECB" MAC block D (see [`pos_ecb`]).
#[inline]
fn pos_ecb_block(key: &DesKey, mab: &[u8]) -> [u8; 8] {
    let (blocks, rest) = mab.as_chunks::<8>();
    let mut acc = 0u64;
    for b in blocks {
        acc ^= u64::from_be_bytes(*b);
    }
    let mut last = [0u8; 8];
    for (d, s) in last.iter_mut().zip(rest) {
        *d = *s;
    }
    acc ^= u64::from_be_bytes(last);

    let mut h = [0u8; 16];
    hexutil::encode_into(&acc.to_be_bytes(), &mut h);
    let (h_left, h_right) = h.split_at(8);
    let mut block = [0u8; 8];
    block.copy_from_slice(h_left);
    let engine = DesEngine::new(key);
    engine.encrypt(&mut block);
    for (d, s) in block.iter_mut().zip(h_right) {
        *d ^= s;
    }
    engine.encrypt(&mut block);
    block
}

/// The UnionPay POS "ECB" MAC of a MAC block (MAB).
///
/// 1. Zero-pad the MAB to a multiple of 8 and XOR all blocks into R.
/// 2. H = the 16 upper-case hex characters of R.
/// 3. E = E(MAK, H\[0..8\]); T = E XOR H\[8..16\]; D = E(MAK, T).
/// 4. The MAC is the first 8 upper-case hex characters of D, as ASCII: the 8 bytes of
///    field 64.
///
/// E is single DES for an 8-byte MAK and triple DES for a 16- or 24-byte one (so a
/// double-length MAK with equal halves gives the single-DES result). Allocation-free.
#[must_use]
pub fn pos_ecb(key: &DesKey, mab: &[u8]) -> [u8; 8] {
    let d = pos_ecb_block(key, mab);
    let mut out = [0u8; 8];
    hexutil::encode_into(&d, &mut out);
    out
}

/// The PBOC 2.0 MAC (and TAC) with a zero IV: see [`pboc_with_iv`].
///
/// # Errors
/// [`Error::BadLength`] unless the key is 8 or 16 bytes.
pub fn pboc(key: &DesKey, data: &[u8]) -> Result<[u8; 4]> {
    pboc_with_iv(key, &[0; 8], data)
}

/// The PBOC 2.0 MAC with an initial vector (secure messaging uses the card challenge).
///
/// Padding is always `80 00..` (ISO/IEC 9797-1 method 2). With an 8-byte key it is
/// single-DES CBC; with a 16-byte key, single DES with the left half on every block and
/// triple DES on the last (ISO/IEC 9797-1 algorithm 3). The result is the first 4 bytes.
///
/// # Errors
/// [`Error::BadLength`] unless the key is 8 or 16 bytes.
pub fn pboc_with_iv(key: &DesKey, iv: &[u8; 8], data: &[u8]) -> Result<[u8; 4]> {
    let full = match key.length() {
        DesKeyLength::Single => {
            let engine = DesKeySchedule::new(key.component_ref(0));
            let mut state = *iv;
            for_each_block(data, Padding::Method2, |b| {
                state = xor8(state, b);
                engine.encrypt(&mut state);
            });
            state
        }
        DesKeyLength::Double => retail(key, *iv, data, Padding::Method2),
        DesKeyLength::Triple => {
            return Err(Error::BadLength {
                what: "PBOC MAC key",
                expected: "8 or 16 bytes",
                found: 24,
            });
        }
    };
    let [a, b, c, d, ..] = full;
    Ok([a, b, c, d])
}

/// AES-CMAC (NIST SP 800-38B; RFC 4493 for AES-128) over `data`: the full 16-byte tag.
#[must_use]
pub fn aes_cmac(key: &AesKey, data: &[u8]) -> [u8; 16] {
    let tag = match AesEngine::new(key) {
        AesEngine::Aes128(c) => {
            let mut m = Cmac::<aes::Aes128>::inner_init(c);
            m.update(data);
            m.finalize().into_bytes()
        }
        AesEngine::Aes192(c) => {
            let mut m = Cmac::<aes::Aes192>::inner_init(c);
            m.update(data);
            m.finalize().into_bytes()
        }
        AesEngine::Aes256(c) => {
            let mut m = Cmac::<aes::Aes256>::inner_init(c);
            m.update(data);
            m.finalize().into_bytes()
        }
    };
    tag.into()
}

/// CBC-MAC with SM4 (zero IV, ISO/IEC 9797-1 algorithm 1 with a 16-byte block): the whole
/// last block.
#[must_use]
pub fn sm4_cbc_mac(key: &Sm4Key, data: &[u8], padding: Padding) -> [u8; 16] {
    let engine = Sm4Engine::new(key);
    let mut state = [0u8; 16];
    for_each_block(data, padding, |b| {
        state = xor16(state, b);
        engine.encrypt(&mut state);
    });
    state
}

/// Compares a received MAC with the computed one in constant time (the lengths are not
/// secret). `what` names the value in the error.
///
/// # Errors
/// [`Error::MacMismatch`] if they differ (including in length).
pub fn verify(what: &'static str, received: &[u8], computed: &[u8]) -> Result<()> {
    if bool::from(received.ct_eq(computed)) {
        Ok(())
    } else {
        Err(Error::MacMismatch { what })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    fn k(s: &str) -> DesKey {
        DesKey::from_hex(s).unwrap()
    }

    // ISO/IEC 9797-1 Annex B data and keys; the values below were recomputed independently
    // with OpenSSL (Python `cryptography`).
    const NOW: &[u8] = b"Now is the time for all ";
    const K: &str = "0123456789ABCDEF";
    const KK: &str = "0123456789ABCDEFFEDCBA9876543210";

    #[test]
    fn alg1_single_des() {
        assert_eq!(
            iso9797_1_alg1(&k(K), NOW, Padding::Method1).to_vec(),
            h("70A30640CC76DD8B")
        );
        assert_eq!(
            iso9797_1_alg1(&k(K), NOW, Padding::Method2).to_vec(),
            h("10E1F0F108341B6D")
        );
        assert_eq!(
            iso9797_1_alg1(&k(K), b"", Padding::Method1).to_vec(),
            h("D5D44FF720683D0D")
        );
        assert_eq!(
            iso9797_1_alg1(&k(K), b"", Padding::Method2).to_vec(),
            h("CAEE534C523E1E79")
        );
        assert_eq!(
            iso9797_1_alg1(&k(K), b"Now is the time for it", Padding::Method1).to_vec(),
            h("E45B3AD2B7CC0856")
        );
    }

    #[test]
    fn alg1_triple_des() {
        assert_eq!(
            iso9797_1_alg1(&k(KK), NOW, Padding::Method1).to_vec(),
            h("93462A6DB9B4A4D1")
        );
        let k3 = k("0123456789ABCDEFFEDCBA987654321089ABCDEF01234567");
        assert_eq!(
            iso9797_1_alg1(&k3, NOW, Padding::Method2).to_vec(),
            h("A80D295FD425CD2A")
        );
    }

    #[test]
    fn alg3_and_x9_19() {
        assert_eq!(
            iso9797_1_alg3(&k(KK), NOW, Padding::Method1)
                .unwrap()
                .to_vec(),
            h("A1C72E74EA3FA9B6")
        );
        assert_eq!(
            iso9797_1_alg3(&k(KK), NOW, Padding::Method2)
                .unwrap()
                .to_vec(),
            h("E9086230CA3BE796")
        );
        assert_eq!(x9_19(&k(KK), NOW).unwrap().to_vec(), h("A1C72E74EA3FA9B6"));
        assert_eq!(
            x9_19(&k(KK), b"Now is the time for it").unwrap().to_vec(),
            h("2E2B1428CC78254F")
        );
        assert_eq!(
            x9_19(&k(K), NOW),
            Err(Error::BadLength {
                what: "X9.19 key",
                expected: "16 bytes",
                found: 8
            })
        );
        assert_eq!(
            iso9797_1_alg3(&k(&format!("{KK}{K}")), NOW, Padding::Method1),
            Err(Error::BadLength {
                what: "retail MAC key",
                expected: "16 bytes",
                found: 24
            })
        );
    }

    #[test]
    fn x9_9_is_single_des_alg1() {
        assert_eq!(x9_9(&k(K), NOW).unwrap().to_vec(), h("70A30640CC76DD8B"));
        assert_eq!(
            x9_9(&k(KK), NOW),
            Err(Error::BadLength {
                what: "X9.9 key",
                expected: "8 bytes",
                found: 16
            })
        );
    }

    const MAB: &str = "0200302004C020C0981100000000000000005100183402100006324392260009942820D1312101120084393136363838303134303030303030303030303030303031313536ACF46E73838A82F92600000000000000000822000001";

    #[test]
    fn pos_ecb_development_example() {
        let mak = k("C24A8FB57AA20123");
        assert_eq!(pos_ecb_block(&mak, &h(MAB)).to_vec(), h("8A9E91B88D839AC5"));
        assert_eq!(&pos_ecb(&mak, &h(MAB)), b"8A9E91B8");
        // A double-length MAK with equal halves gives the single-DES result.
        let mak2 = k("C24A8FB57AA20123C24A8FB57AA20123");
        assert_eq!(&pos_ecb(&mak2, &h(MAB)), b"8A9E91B8");
        // A real double-length MAK uses 3DES (recomputed with OpenSSL).
        assert_eq!(
            pos_ecb_block(&k(KK), &h(MAB)).to_vec(),
            h("84C8B24124A71EAF")
        );
    }

    #[test]
    fn pos_ecb_pads_with_zeros() {
        let mak = k("C24A8FB57AA20123");
        let mut padded = h(MAB);
        assert_eq!(padded.len() % 8, 3);
        padded.extend_from_slice(&[0; 5]);
        assert_eq!(pos_ecb(&mak, &padded), pos_ecb(&mak, &h(MAB)));
        // Empty MAB: R = 0, H = "0000000000000000".
        let mut e = *b"00000000";
        let c = DesKeySchedule::new(&mak.component(0));
        c.encrypt(&mut e);
        for b in &mut e {
            *b ^= b'0';
        }
        c.encrypt(&mut e);
        let mut want = [0u8; 8];
        hexutil::encode_into(&e, &mut want);
        assert_eq!(pos_ecb(&mak, b""), want);
    }

    #[test]
    fn pboc_mac_single_and_double() {
        // The load MAC1 example from pboc-purse.md.
        let seslk = k("9B1D924E05595603");
        assert_eq!(
            pboc(&seslk, &h("000000000000100001001122334455"))
                .unwrap()
                .to_vec(),
            h("2988AE5A")
        );
        // 16-byte key = ISO 9797-1 algorithm 3 with padding method 2, left 4 bytes.
        assert_eq!(pboc(&k(KK), NOW).unwrap().to_vec(), h("E9086230"));
        // Aligned data gets a whole padding block.
        assert_eq!(pboc(&k(K), NOW).unwrap().to_vec(), h("10E1F0F1"));
        assert_eq!(
            pboc(&k(&format!("{KK}{K}")), NOW),
            Err(Error::BadLength {
                what: "PBOC MAC key",
                expected: "8 or 16 bytes",
                found: 24
            })
        );
    }

    #[test]
    fn pboc_mac_iv_is_first_chaining_value() {
        // CBC from IV = E(K, B1) over B2.. is the CBC over B1 B2.. from a zero IV.
        let c = DesKeySchedule::new(&k(K).component(0));
        let mut iv: [u8; 8] = *b"Now is t";
        c.encrypt(&mut iv);
        assert_eq!(
            pboc_with_iv(&k(K), &iv, b"he time for all ")
                .unwrap()
                .to_vec(),
            h("10E1F0F1")
        );
        assert_ne!(
            pboc_with_iv(&k(K), &[1; 8], NOW).unwrap().to_vec(),
            h("10E1F0F1")
        );
    }

    #[test]
    fn aes_cmac_rfc4493() {
        let key = AesKey::from_hex("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        let m = h(
            "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51 30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710",
        );
        assert_eq!(
            aes_cmac(&key, b"").to_vec(),
            h("bb1d6929e95937287fa37d129b756746")
        );
        assert_eq!(
            aes_cmac(&key, &m[..16]).to_vec(),
            h("070a16b46b4d4144f79bdd9dd04a287c")
        );
        assert_eq!(
            aes_cmac(&key, &m[..40]).to_vec(),
            h("dfa66747de9ae63030ca32611497c827")
        );
        assert_eq!(
            aes_cmac(&key, &m).to_vec(),
            h("51f0bebf7e3b9d92fc49741779363cfe")
        );
    }

    #[test]
    fn sm4_cbc_mac_from_standard_example() {
        // GB/T 32907-2016 example 1: key = plaintext = 0123456789ABCDEFFEDCBA9876543210,
        // ciphertext 681EDF34D206965E86B3E94F536E4246. A one-block CBC-MAC is that block.
        let hx = "0123456789ABCDEFFEDCBA9876543210";
        let key = Sm4Key::from_hex(hx).unwrap();
        assert_eq!(
            sm4_cbc_mac(&key, &h(hx), Padding::Method1).to_vec(),
            h("681EDF34D206965E86B3E94F536E4246")
        );
        // Two blocks and padding method 2 (recomputed with OpenSSL).
        assert_eq!(
            sm4_cbc_mac(&key, &h(&format!("{hx}{hx}")), Padding::Method1).to_vec(),
            h("9FF11DCFD3AFAA236C76090BABC3BB85")
        );
        assert_eq!(
            sm4_cbc_mac(&key, &h(hx), Padding::Method2).to_vec(),
            h("780D0374AF7C0B35625605638319CF2C")
        );
    }

    #[test]
    fn verify_is_exact() {
        assert_eq!(verify("MAC", b"8A9E91B8", b"8A9E91B8"), Ok(()));
        assert_eq!(
            verify("MAC", b"8A9E91B9", b"8A9E91B8"),
            Err(Error::MacMismatch { what: "MAC" })
        );
        assert_eq!(
            verify("MAC", b"8A9E91", b"8A9E91B8"),
            Err(Error::MacMismatch { what: "MAC" })
        );
        assert_eq!(
            Error::MacMismatch { what: "field 64" }.to_string(),
            "field 64: verification failed"
        );
    }

    #[test]
    fn every_length_pads_as_specified() {
        let data: Vec<u8> = (0..=200u8).collect();
        let (k8, k16) = (k(K), k(KK));
        let sm4 = Sm4Key::from_hex(KK).unwrap();
        for n in 0..=data.len() {
            let d = &data[..n];
            // Method 1 = zero-extend to whole blocks (one zero block when empty).
            let mut z = d.to_vec();
            z.resize(n.div_ceil(8).max(1) * 8, 0);
            // Method 2 = append 80, then method 1.
            let mut m2 = d.to_vec();
            m2.push(0x80);
            assert_eq!(
                iso9797_1_alg1(&k8, d, Padding::Method1),
                iso9797_1_alg1(&k8, &z, Padding::Method1)
            );
            assert_eq!(
                iso9797_1_alg1(&k16, d, Padding::Method2),
                iso9797_1_alg1(&k16, &m2, Padding::Method1)
            );
            assert_eq!(
                x9_19(&k16, d).unwrap(),
                iso9797_1_alg3(&k16, &z, Padding::Method1).unwrap()
            );
            let alg3 = iso9797_1_alg3(&k16, &m2, Padding::Method1).unwrap();
            assert_eq!(pboc(&k16, d).unwrap()[..], alg3[..4]);
            assert_eq!(
                pboc(&k8, d).unwrap()[..],
                iso9797_1_alg1(&k8, &m2, Padding::Method1)[..4]
            );
            assert_eq!(pos_ecb(&k8, d), pos_ecb(&k8, &z));
            let mut z16 = d.to_vec();
            z16.resize(n.div_ceil(16).max(1) * 16, 0);
            assert_eq!(
                sm4_cbc_mac(&sm4, d, Padding::Method1),
                sm4_cbc_mac(&sm4, &z16, Padding::Method1)
            );
            assert_eq!(
                sm4_cbc_mac(&sm4, d, Padding::Method2),
                sm4_cbc_mac(&sm4, &m2, Padding::Method1)
            );
        }
    }
}
