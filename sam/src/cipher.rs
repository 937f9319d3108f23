//! Data encryption with DES/3DES, AES and SM4 in ECB or CBC mode, without padding.
//!
//! The input must be a whole number of blocks (8 bytes for DES, 16 for AES and SM4); pad it
//! first as the protocol requires. Functions come in two forms: `*_in_place` work on a
//! caller's buffer and never allocate; [`encrypt`] and [`decrypt`] return a new `Vec`.

use crate::block::{AesEngine, DesEngine, Sm4Engine};
use crate::error::{Error, Result};
use crate::key::Key;

/// A block cipher mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode<'a> {
    /// Electronic codebook: each block on its own.
    Ecb,
    /// Cipher block chaining from an initial vector of one block.
    Cbc {
        /// The IV: 8 bytes for DES, 16 for AES and SM4.
        iv: &'a [u8],
    },
}

#[derive(Clone, Copy)]
enum Direction {
    Encrypt,
    Decrypt,
}

fn check_len(key: &Key, mode: Mode<'_>, len: usize) -> Result<()> {
    let (what, expected) = match key {
        Key::Des(_) => ("data", "a multiple of 8 bytes"),
        Key::Aes(_) | Key::Sm4(_) => ("data", "a multiple of 16 bytes"),
    };
    if !len.is_multiple_of(key.block_size()) {
        return Err(Error::BadLength {
            what,
            expected,
            found: len,
        });
    }
    if let Mode::Cbc { iv } = mode
        && iv.len() != key.block_size()
    {
        let expected = if key.block_size() == 8 {
            "8 bytes"
        } else {
            "16 bytes"
        };
        return Err(Error::BadLength {
            what: "CBC IV",
            expected,
            found: iv.len(),
        });
    }
    Ok(())
}

/// Runs the mode over `buf` with a block function `f` (encrypt or decrypt in place).
fn run<const N: usize>(mode: Mode<'_>, dir: Direction, buf: &mut [u8], f: impl Fn(&mut [u8; N])) {
    let (blocks, _) = buf.as_chunks_mut::<N>();
    match mode {
        Mode::Ecb => blocks.iter_mut().for_each(f),
        Mode::Cbc { iv } => {
            let mut chain = [0u8; N];
            for (d, s) in chain.iter_mut().zip(iv) {
                *d = *s;
            }
            for b in blocks {
                match dir {
                    Direction::Encrypt => {
                        for (x, c) in b.iter_mut().zip(&chain) {
                            *x ^= c;
                        }
                        f(b);
                        chain = *b;
                    }
                    Direction::Decrypt => {
                        let next = *b;
                        f(b);
                        for (x, c) in b.iter_mut().zip(&chain) {
                            *x ^= c;
                        }
                        chain = next;
                    }
                }
            }
        }
    }
}

fn apply(key: &Key, mode: Mode<'_>, dir: Direction, buf: &mut [u8]) -> Result<()> {
    check_len(key, mode, buf.len())?;
    match (key, dir) {
        (Key::Des(k), Direction::Encrypt) => {
            let e = DesEngine::new(k);
            run::<8>(mode, dir, buf, |b| e.encrypt(b));
        }
        (Key::Des(k), Direction::Decrypt) => {
            let e = DesEngine::new(k);
            run::<8>(mode, dir, buf, |b| e.decrypt(b));
        }
        (Key::Aes(k), Direction::Encrypt) => {
            let e = AesEngine::new(k);
            run::<16>(mode, dir, buf, |b| e.encrypt(b));
        }
        (Key::Aes(k), Direction::Decrypt) => {
            let e = AesEngine::new(k);
            run::<16>(mode, dir, buf, |b| e.decrypt(b));
        }
        (Key::Sm4(k), Direction::Encrypt) => {
            let e = Sm4Engine::new(k);
            run::<16>(mode, dir, buf, |b| e.encrypt(b));
        }
        (Key::Sm4(k), Direction::Decrypt) => {
            let e = Sm4Engine::new(k);
            run::<16>(mode, dir, buf, |b| e.decrypt(b));
        }
    }
    Ok(())
}

/// Encrypts `buf` in place.
///
/// # Errors
/// [`Error::BadLength`] if `buf` is not a whole number of blocks or a CBC IV is not one
/// block; `buf` is then left unchanged.
pub fn encrypt_in_place(key: &Key, mode: Mode<'_>, buf: &mut [u8]) -> Result<()> {
    apply(key, mode, Direction::Encrypt, buf)
}

/// Decrypts `buf` in place.
///
/// # Errors
/// As [`encrypt_in_place`].
pub fn decrypt_in_place(key: &Key, mode: Mode<'_>, buf: &mut [u8]) -> Result<()> {
    apply(key, mode, Direction::Decrypt, buf)
}

/// Encrypts `data` into a new buffer.
///
/// # Errors
/// As [`encrypt_in_place`].
pub fn encrypt(key: &Key, mode: Mode<'_>, data: &[u8]) -> Result<Vec<u8>> {
    check_len(key, mode, data.len())?;
    let mut out = data.to_vec();
    apply(key, mode, Direction::Encrypt, &mut out)?;
    Ok(out)
}

/// Decrypts `data` into a new buffer.
///
/// # Errors
/// As [`encrypt_in_place`].
pub fn decrypt(key: &Key, mode: Mode<'_>, data: &[u8]) -> Result<Vec<u8>> {
    check_len(key, mode, data.len())?;
    let mut out = data.to_vec();
    apply(key, mode, Direction::Decrypt, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{AesKey, DesKey, Sm4Key};

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    fn round_trip(key: &Key, mode: Mode<'_>, plain: &[u8], cipher: &[u8]) {
        assert_eq!(encrypt(key, mode, plain).unwrap(), cipher);
        assert_eq!(decrypt(key, mode, cipher).unwrap(), plain);
        let mut buf = plain.to_vec();
        encrypt_in_place(key, mode, &mut buf).unwrap();
        assert_eq!(buf, cipher);
        decrypt_in_place(key, mode, &mut buf).unwrap();
        assert_eq!(buf, plain);
    }

    #[test]
    fn des_cbc_fips81() {
        // FIPS 81 appendix C: CBC with IV 1234567890ABCDEF.
        let key = Key::from(DesKey::from_hex("0123456789ABCDEF").unwrap());
        let iv = h("1234567890ABCDEF");
        round_trip(
            &key,
            Mode::Cbc { iv: &iv },
            b"Now is the time for all ",
            &h("E5C7CDDE872BF27C 43E934008C389C0F 683788499A7C05F6"),
        );
    }

    #[test]
    fn des_ecb_and_tdes() {
        let key = Key::from(DesKey::from_hex("0123456789ABCDEF").unwrap());
        round_trip(
            &key,
            Mode::Ecb,
            &[0; 16],
            &h("D5D44FF720683D0D D5D44FF720683D0D"),
        );
        let key = Key::from(DesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap());
        round_trip(&key, Mode::Ecb, &[0; 8], &h("08D7B4FB629D0885"));
    }

    #[test]
    fn aes_fips197_and_sp800_38a_cbc() {
        let key = Key::from(AesKey::from_hex("000102030405060708090a0b0c0d0e0f").unwrap());
        round_trip(
            &key,
            Mode::Ecb,
            &h("00112233445566778899aabbccddeeff"),
            &h("69c4e0d86a7b0430d8cdb78070b4c55a"),
        );
        let key = Key::from(AesKey::from_hex("2b7e151628aed2a6abf7158809cf4f3c").unwrap());
        let iv = h("000102030405060708090a0b0c0d0e0f");
        round_trip(
            &key,
            Mode::Cbc { iv: &iv },
            &h("6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51"),
            &h("7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2"),
        );
        let key = Key::from(
            AesKey::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
                .unwrap(),
        );
        round_trip(
            &key,
            Mode::Ecb,
            &h("00112233445566778899aabbccddeeff"),
            &h("8ea2b7ca516745bfeafc49904b496089"),
        );
    }

    #[test]
    fn sm4_standard_example() {
        let hx = "0123456789ABCDEFFEDCBA9876543210";
        let key = Key::from(Sm4Key::from_hex(hx).unwrap());
        round_trip(
            &key,
            Mode::Ecb,
            &h(hx),
            &h("681EDF34D206965E86B3E94F536E4246"),
        );
        // CBC of two copies with a zero IV: second block = E(C1 xor P).
        round_trip(
            &key,
            Mode::Cbc { iv: &[0; 16] },
            &h(&format!("{hx}{hx}")),
            &h("681EDF34D206965E86B3E94F536E4246 9FF11DCFD3AFAA236C76090BABC3BB85"),
        );
    }

    #[test]
    fn lengths_are_checked() {
        let key = Key::from(DesKey::from_hex("0123456789ABCDEF").unwrap());
        assert_eq!(
            encrypt(&key, Mode::Ecb, &[0; 12]),
            Err(Error::BadLength {
                what: "data",
                expected: "a multiple of 8 bytes",
                found: 12
            })
        );
        assert_eq!(
            decrypt(&key, Mode::Cbc { iv: &[0; 16] }, &[0; 16]),
            Err(Error::BadLength {
                what: "CBC IV",
                expected: "8 bytes",
                found: 16
            })
        );
        let key = Key::from(Sm4Key::new([0; 16]));
        let mut buf = [7u8; 24];
        assert_eq!(
            encrypt_in_place(&key, Mode::Ecb, &mut buf),
            Err(Error::BadLength {
                what: "data",
                expected: "a multiple of 16 bytes",
                found: 24
            })
        );
        assert_eq!(buf, [7u8; 24]);
        assert_eq!(encrypt(&key, Mode::Ecb, &[]), Ok(Vec::new()));
    }
}
