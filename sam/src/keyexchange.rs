//! Working-key exchange: keys encrypted under a key-encrypting key, and the UnionPay sign-in
//! field 62.
//!
//! Keys travel encrypted under a KEK (the terminal master key for a POS) with DES/3DES ECB:
//! each 8-byte part of the key is one ECB block; an 8-byte KEK is single DES. Check values
//! are the first 4 bytes of E(key, zeros) (see [`crate::kcv`]) and are compared in constant
//! time.
//!
//! # Field 62 layouts
//!
//! Field 62 of the sign-in response (0810) is a sequence of *slots*, each
//! `encrypted key(S) | KCV(4)`, with the slot size S fixed by the layout. The length of the
//! field selects the layout:
//!
//! | length | layout | 60.3 | source |
//! |---|---|---|---|
//! | 24 | PIK(8) \| KCV \| MAK(8) \| KCV | 001 | spec |
//! | 40 | PIK(16) \| KCV \| MAK(16) \| KCV | 003 | spec (MAK(8) \| 00×8) |
//! | 56 | PIK(24) \| KCV \| MAK(24) \| KCV | - | **our interpretation** |
//! | 60 | PIK(16) \| KCV \| MAK(16) \| KCV \| TDK(16) \| KCV | 004 | spec |
//! | 84 | PIK(24) \| KCV \| MAK(24) \| KCV \| TDK(24) \| KCV | - | **our interpretation** |
//!
//! The 56- and 84-byte layouts are not described by the sources we have; we read them as the
//! triple-length (24-byte key) analogues of 40 and 60, because that is the only reading in
//! which every length is `keys × (S + 4)` with S = 8, 16 or 24 (2 × 12, 2 × 20, 2 × 28,
//! 3 × 20, 3 × 28).
//!
//! A slot may hold a key shorter than S followed by zero bytes to fill it, as the spec's
//! 40-byte layout does with a single-length MAK (`MAK(8) | 00 × 8`). When parsing, trailing
//! all-zero 8-byte blocks of a slot are dropped (at least 8 bytes are kept) before the key
//! is decrypted; the KCV check then confirms the reading. This applies to every slot, not only
//! the MAK's.

use crate::block::DesEngine;
use crate::error::{Error, Result};
use crate::kcv::KcvLength;
use crate::key::{DesKey, DesKeyLength};

/// Encrypts `key` under `kek` (DES/3DES ECB, each 8-byte part on its own). The result has
/// the key's length.
#[must_use]
pub fn encrypt_key(kek: &DesKey, key: &DesKey) -> Vec<u8> {
    let engine = DesEngine::new(kek);
    let mut out = Vec::with_capacity(key.len());
    for part in key.as_bytes().as_chunks::<8>().0 {
        let mut b = *part;
        engine.encrypt(&mut b);
        out.extend_from_slice(&b);
    }
    out
}

/// Decrypts a key of 8, 16 or 24 bytes encrypted under `kek`.
///
/// # Errors
/// [`Error::BadLength`] for another length.
pub fn decrypt_key(kek: &DesKey, encrypted: &[u8]) -> Result<DesKey> {
    let n = encrypted.len();
    if DesKeyLength::from_bytes(n).is_none() {
        return Err(Error::BadLength {
            what: "encrypted key",
            expected: "8, 16 or 24 bytes",
            found: n,
        });
    }
    let engine = DesEngine::new(kek);
    let mut bytes = [0u8; 24];
    for (out, part) in bytes
        .as_chunks_mut::<8>()
        .0
        .iter_mut()
        .zip(encrypted.as_chunks::<8>().0)
    {
        *out = *part;
        engine.decrypt(out);
    }
    // n is 8, 16 or 24, checked above.
    let key = DesKey::from_bytes(&bytes[..n]);
    zeroize::Zeroize::zeroize(&mut bytes);
    key
}

/// Decrypts a key under `kek` and checks it against its check value (1 to 8 bytes; the
/// length selects the truncation), comparing in constant time. `what` names the key in
/// errors.
///
/// # Errors
/// [`Error::BadLength`] for a bad key or KCV length, [`Error::KcvMismatch`] if the decrypted
/// key does not match.
pub fn decrypt_key_checked(
    what: &'static str,
    kek: &DesKey,
    encrypted: &[u8],
    kcv: &[u8],
) -> Result<DesKey> {
    let key = decrypt_key(kek, encrypted)?;
    key.verify_kcv(what, kcv)?;
    Ok(key)
}

/// The layouts of UnionPay field 62 (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field62Layout {
    /// 24 bytes: single-length PIK and MAK (60.3 = 001).
    Single24,
    /// 40 bytes: double-length slots for PIK and MAK (60.3 = 003).
    Double40,
    /// 56 bytes: triple-length slots for PIK and MAK (our interpretation).
    Triple56,
    /// 60 bytes: double-length slots for PIK, MAK and TDK (60.3 = 004).
    DoubleTdk60,
    /// 84 bytes: triple-length slots for PIK, MAK and TDK (our interpretation).
    TripleTdk84,
}

impl Field62Layout {
    /// The layout of a field 62 of `len` bytes.
    #[must_use]
    pub const fn from_len(len: usize) -> Option<Self> {
        match len {
            24 => Some(Self::Single24),
            40 => Some(Self::Double40),
            56 => Some(Self::Triple56),
            60 => Some(Self::DoubleTdk60),
            84 => Some(Self::TripleTdk84),
            _ => None,
        }
    }

    /// The layout for a network management code (field 60.3): 1, 3 or 4.
    #[must_use]
    pub const fn from_network_code(code: u16) -> Option<Self> {
        match code {
            1 => Some(Self::Single24),
            3 => Some(Self::Double40),
            4 => Some(Self::DoubleTdk60),
            _ => None,
        }
    }

    /// The field length in bytes.
    #[must_use]
    pub const fn len(self) -> usize {
        self.keys() * (self.slot() + 4)
    }

    /// Always `false`. Present for API symmetry with `len`.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        false
    }

    /// The size of each key slot in bytes (8, 16 or 24).
    #[must_use]
    pub const fn slot(self) -> usize {
        match self {
            Self::Single24 => 8,
            Self::Double40 | Self::DoubleTdk60 => 16,
            Self::Triple56 | Self::TripleTdk84 => 24,
        }
    }

    /// The number of keys: 2 (PIK, MAK) or 3 (PIK, MAK, TDK).
    #[must_use]
    pub const fn keys(self) -> usize {
        match self {
            Self::Single24 | Self::Double40 | Self::Triple56 => 2,
            Self::DoubleTdk60 | Self::TripleTdk84 => 3,
        }
    }

    const fn slot_expected(self) -> &'static str {
        match self.slot() {
            8 => "8 bytes",
            16 => "at most 16 bytes",
            _ => "at most 24 bytes",
        }
    }
}

/// The working keys of a terminal, in the clear.
#[derive(Debug, Clone)]
pub struct WorkingKeys {
    /// PIN key (PIK, a TPK).
    pub pik: DesKey,
    /// MAC key (MAK, a TAK).
    pub mak: DesKey,
    /// Track data key (TDK), in the 60- and 84-byte layouts.
    pub tdk: Option<DesKey>,
}

const SLOT_NAMES: [&str; 3] = ["field 62 PIK", "field 62 MAK", "field 62 TDK"];

/// Parses field 62 of a sign-in response (without its length prefix): decrypts each key
/// under the TMK and verifies its 4-byte KCV in constant time.
///
/// # Errors
/// [`Error::BadLength`] if the field is not 24, 40, 56, 60 or 84 bytes;
/// [`Error::KcvMismatch`] naming the key whose check value does not match.
pub fn parse_field62(tmk: &DesKey, field: &[u8]) -> Result<WorkingKeys> {
    let layout = Field62Layout::from_len(field.len()).ok_or(Error::BadLength {
        what: "field 62",
        expected: "24, 40, 56, 60 or 84 bytes",
        found: field.len(),
    })?;
    let slot = layout.slot();
    let mut keys = field
        .chunks_exact(slot + 4)
        .zip(SLOT_NAMES)
        .map(|(chunk, what)| {
            let (encrypted, kcv) = chunk.split_at(slot);
            let encrypted = strip_zero_blocks(encrypted);
            decrypt_key_checked(what, tmk, encrypted, kcv)
        });
    let missing = Error::BadLength {
        what: "field 62",
        expected: "2 or 3 keys",
        found: 0,
    };
    let pik = keys.next().unwrap_or(Err(missing))?;
    let mak = keys.next().unwrap_or(Err(missing))?;
    let tdk = keys.next().transpose()?;
    Ok(WorkingKeys { pik, mak, tdk })
}

/// Drops trailing all-zero 8-byte blocks, keeping at least one block.
fn strip_zero_blocks(mut slot: &[u8]) -> &[u8] {
    while slot.len() > 8 {
        match slot.split_last_chunk::<8>() {
            Some((rest, last)) if *last == [0; 8] => slot = rest,
            _ => break,
        }
    }
    slot
}

/// Builds field 62 (without its length prefix) in `layout`: each key encrypted under the
/// TMK, zero-filled to the slot size, followed by its 4-byte KCV.
///
/// # Errors
/// [`Error::BadLength`] if a key is longer than the layout's slot, if the layout needs a TDK
/// and `keys.tdk` is `None` (found 0), or if `keys.tdk` is given for a layout without one.
pub fn build_field62(tmk: &DesKey, keys: &WorkingKeys, layout: Field62Layout) -> Result<Vec<u8>> {
    let mut list: Vec<(&'static str, &DesKey)> =
        vec![(SLOT_NAMES[0], &keys.pik), (SLOT_NAMES[1], &keys.mak)];
    match (&keys.tdk, layout.keys()) {
        (Some(tdk), 3) => list.push((SLOT_NAMES[2], tdk)),
        (None, 2) => {}
        (None, _) => {
            return Err(Error::BadLength {
                what: "field 62 TDK",
                expected: "a TDK for this layout",
                found: 0,
            });
        }
        (Some(tdk), _) => {
            return Err(Error::BadLength {
                what: "field 62 TDK",
                expected: "no TDK for this layout",
                found: tdk.len(),
            });
        }
    }
    let mut out = Vec::with_capacity(layout.len());
    for (what, key) in list {
        if key.len() > layout.slot() {
            return Err(Error::BadLength {
                what,
                expected: layout.slot_expected(),
                found: key.len(),
            });
        }
        out.extend_from_slice(&encrypt_key(tmk, key));
        out.resize(out.len() + layout.slot() - key.len(), 0);
        out.extend_from_slice(key.kcv(KcvLength::UNIONPAY).as_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kcv::Kcv;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    fn k(s: &str) -> DesKey {
        DesKey::from_hex(s).unwrap()
    }

    fn hx(b: &[u8]) -> String {
        hex::encode_upper(b)
    }

    const TMK: &str = "CA5D92598DCA48CE8A4C76361A9269E9";
    const F40: &str =
        "6701EAD6A9AD51E51AA406E2C27FCFA9 8D0A74B8 B651F9E9BACE9AE1 0000000000000000 AB7153CA";

    #[test]
    fn field62_development_example() {
        let keys = parse_field62(&k(TMK), &h(F40)).unwrap();
        assert_eq!(hx(keys.pik.as_bytes()), "807A23AD32B36D457AE91FDF927570EA");
        assert_eq!(hx(keys.mak.as_bytes()), "5BB5C72CD00B7338");
        assert!(keys.tdk.is_none());
        assert_eq!(
            build_field62(&k(TMK), &keys, Field62Layout::Double40).unwrap(),
            h(F40)
        );
    }

    #[test]
    fn mak_under_tmk_example() {
        let tmk = k("70F2A84CCBC2AE8625CBB0F2C22AB923");
        let mak = decrypt_key(&tmk, &h("96D605EA176B7E9E")).unwrap();
        assert_eq!(hx(mak.as_bytes()), "C24A8FB57AA20123");
        assert_eq!(encrypt_key(&tmk, &mak), h("96D605EA176B7E9E"));
    }

    #[test]
    fn single_length_kek_is_single_des() {
        let kek = k("0123456789ABCDEF");
        let key = k("0000000000000000");
        // E(0123456789ABCDEF, 0) = D5D44FF720683D0D.
        assert_eq!(encrypt_key(&kek, &key), h("D5D44FF720683D0D"));
    }

    #[test]
    fn checked_decryption() {
        let tmk = k(TMK);
        let f = h(F40);
        let pik = decrypt_key_checked("PIK", &tmk, &f[..16], &f[16..20]).unwrap();
        assert_eq!(hx(pik.as_bytes()), "807A23AD32B36D457AE91FDF927570EA");
        assert_eq!(
            decrypt_key_checked("PIK", &tmk, &f[..16], &[0x8D, 0x0A, 0x74, 0xB9]).map(|k| k.len()),
            Err(Error::KcvMismatch {
                what: "PIK",
                expected: Kcv::from_hex("8D0A74B9").unwrap(),
                computed: Kcv::from_hex("8D0A74B8").unwrap(),
            })
        );
        assert_eq!(
            decrypt_key(&tmk, &f[..12]).map(|k| k.len()),
            Err(Error::BadLength {
                what: "encrypted key",
                expected: "8, 16 or 24 bytes",
                found: 12
            })
        );
    }

    #[test]
    fn field62_kcv_mismatch_and_length() {
        let mut f = h(F40);
        f[39] ^= 1;
        assert!(matches!(
            parse_field62(&k(TMK), &f),
            Err(Error::KcvMismatch {
                what: "field 62 MAK",
                ..
            })
        ));
        assert_eq!(
            parse_field62(&k(TMK), &f[..39]).map(|w| w.pik.len()),
            Err(Error::BadLength {
                what: "field 62",
                expected: "24, 40, 56, 60 or 84 bytes",
                found: 39
            })
        );
        assert!(parse_field62(&k(TMK), &[]).is_err());
    }

    #[test]
    fn field62_single_24() {
        // Recomputed independently with OpenSSL (Python `cryptography`).
        let keys = WorkingKeys {
            pik: k("1111111111111111"),
            mak: k("2222222222222222"),
            tdk: None,
        };
        let f = build_field62(&k(TMK), &keys, Field62Layout::Single24).unwrap();
        assert_eq!(hx(&f), "AF639A92DB0DCF4C82E13665DC1B74B8B3C0F9D000962B60");
        let back = parse_field62(&k(TMK), &f).unwrap();
        assert!(back.pik.ct_eq(&keys.pik) && back.mak.ct_eq(&keys.mak));
        // A double-length key does not fit an 8-byte slot.
        let big = WorkingKeys {
            pik: k(TMK),
            mak: k("2222222222222222"),
            tdk: None,
        };
        assert_eq!(
            build_field62(&k(TMK), &big, Field62Layout::Single24),
            Err(Error::BadLength {
                what: "field 62 PIK",
                expected: "8 bytes",
                found: 16
            })
        );
    }

    #[test]
    fn field62_with_tdk_60_and_84() {
        let tdk = k("0123456789ABCDEFFEDCBA9876543210");
        let keys = WorkingKeys {
            pik: k("807A23AD32B36D457AE91FDF927570EA"),
            mak: k("5BB5C72CD00B7338"),
            tdk: Some(tdk.clone()),
        };
        let f60 = build_field62(&k(TMK), &keys, Field62Layout::DoubleTdk60).unwrap();
        assert_eq!(
            hx(&f60),
            format!(
                "{}AA3A8E0552E755BDA9D6A7B8B636717408D7B4FB",
                F40.replace(' ', "")
            )
        );
        let back = parse_field62(&k(TMK), &f60).unwrap();
        assert!(back.tdk.is_some_and(|t| t.ct_eq(&tdk)));

        let keys84 = WorkingKeys {
            pik: k("0123456789ABCDEFFEDCBA987654321089ABCDEF01234567"),
            mak: k("5BB5C72CD00B7338"),
            tdk: Some(tdk.clone()),
        };
        let f84 = build_field62(&k(TMK), &keys84, Field62Layout::TripleTdk84).unwrap();
        assert_eq!(
            hx(&f84),
            concat!(
                "AA3A8E0552E755BDA9D6A7B8B636717456678A76F419E4CD3FD539E3",
                "B651F9E9BACE9AE100000000000000000000000000000000AB7153CA",
                "AA3A8E0552E755BDA9D6A7B8B6367174000000000000000008D7B4FB"
            )
        );
        let back = parse_field62(&k(TMK), &f84).unwrap();
        assert_eq!(back.pik.len(), 24);
        assert_eq!(back.mak.len(), 8);
        assert!(back.tdk.is_some_and(|t| t.ct_eq(&tdk)));

        // 56 bytes: the triple-length slots without a TDK.
        let keys56 = WorkingKeys {
            tdk: None,
            ..keys84
        };
        let f56 = build_field62(&k(TMK), &keys56, Field62Layout::Triple56).unwrap();
        assert_eq!(f56.len(), 56);
        assert_eq!(&f56[..], &f84[..56]);
        assert_eq!(parse_field62(&k(TMK), &f56).unwrap().pik.len(), 24);
    }

    #[test]
    fn field62_tdk_presence_must_match_layout() {
        let keys = WorkingKeys {
            pik: k(TMK),
            mak: k("5BB5C72CD00B7338"),
            tdk: None,
        };
        assert_eq!(
            build_field62(&k(TMK), &keys, Field62Layout::DoubleTdk60),
            Err(Error::BadLength {
                what: "field 62 TDK",
                expected: "a TDK for this layout",
                found: 0
            })
        );
        let keys = WorkingKeys {
            tdk: Some(k(TMK)),
            ..keys
        };
        assert_eq!(
            build_field62(&k(TMK), &keys, Field62Layout::Double40),
            Err(Error::BadLength {
                what: "field 62 TDK",
                expected: "no TDK for this layout",
                found: 16
            })
        );
    }

    #[test]
    fn layouts() {
        for (n, l) in [
            (24, Field62Layout::Single24),
            (40, Field62Layout::Double40),
            (56, Field62Layout::Triple56),
            (60, Field62Layout::DoubleTdk60),
            (84, Field62Layout::TripleTdk84),
        ] {
            assert_eq!(Field62Layout::from_len(n), Some(l));
            assert_eq!(l.len(), n);
        }
        assert_eq!(Field62Layout::from_len(48), None);
        assert_eq!(
            Field62Layout::from_network_code(3),
            Some(Field62Layout::Double40)
        );
        assert_eq!(
            Field62Layout::from_network_code(4),
            Some(Field62Layout::DoubleTdk60)
        );
        assert_eq!(Field62Layout::from_network_code(2), None);
    }

    #[test]
    fn garbage_of_every_length_is_an_error() {
        let tmk = k(TMK);
        let junk: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(37)).collect();
        for n in 0..=junk.len() {
            let r = parse_field62(&tmk, &junk[..n]);
            match Field62Layout::from_len(n) {
                Some(_) => assert!(matches!(
                    r,
                    Err(Error::KcvMismatch {
                        what: "field 62 PIK",
                        ..
                    })
                )),
                None => assert!(matches!(
                    r,
                    Err(Error::BadLength {
                        what: "field 62",
                        ..
                    })
                )),
            }
            let d = decrypt_key(&tmk, &junk[..n]);
            assert_eq!(d.is_ok(), matches!(n, 8 | 16 | 24));
        }
    }
}
