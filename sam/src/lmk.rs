//! The local master key (LMK) of a [`crate::softhsm::SoftHsm`], its key-type variants and its
//! file format.
//!
//! # Variants
//!
//! Every key outside the HSM is a cryptogram under the *variant* of the LMK for its type:
//! the LMK with one constant XORed into its first byte, as payShield variant LMKs do. A
//! cryptogram made for one type therefore decrypts to an unrelated key under another type's
//! variant (and fails the parity and check-value tests), so a key's type cannot be changed
//! by relabelling its [`crate::security::KeyRef`]. The constants differ in their upper seven
//! bits (DES ignores the lowest bit of each byte, so constants differing only there would give
//! the same DES key):
//!
//! | key type | variant |
//! |---|---|
//! | TMK | `06` |
//! | ZMK | `A6` |
//! | TPK | `5A` |
//! | ZPK | `6A` |
//! | TAK | `DE` |
//! | ZAK | `2B` |
//! | TDK | `50` |
//! | ZEK | `74` |
//! | PBOC MPK (purchase) | `9C` |
//! | PBOC MLK (load) | `FA` |
//! | PBOC MTK (TAC) | `3C` |
//! | PBOC MULK (unload) | `96` |
//! | PBOC MUK (update) | `C3` |
//!
//! A cryptogram is `3DES-ECB(LMK variant, clear key)`, each 8-byte part of the key on its
//! own.
//!
//! # File format
//!
//! A small UTF-8 text file, one `name = value` per line; blank lines and lines starting with
//! `#` are ignored; names are `lmk` (required: 32 or 48 hex digits, a double- or
//! triple-length DES key) and `kcv` (optional: 2 to 16 hex digits; when present it must
//! match the key's check value, which catches typing errors). Any other name, a repeated
//! name or a line without `=` is an error naming the line.
//!
//! ```text
//! # one-card SoftHsm local master key. Keep this file secret.
//! lmk = 0123456789ABCDEFFEDCBA9876543210 89ABCDEF01234567
//! kcv = 2A1B0C9F
//! ```
//!
//! (Spaces inside the hex value are allowed.) [`Lmk::save`] writes this format with a
//! 4-byte KCV and, on Unix, creates the file with mode 0600.

use core::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::{Zeroize, Zeroizing};

use crate::block::DesEngine;
use crate::error::Error;
use crate::kcv::{Kcv, KcvLength};
use crate::key::{DesKey, DesKeyLength, KeyType};
use crate::security::{HsmError, HsmErrorCode, RandomSource};

/// The length of the check values the LMK and [`crate::softhsm::SoftHsm`] compute (4 bytes,
/// as UnionPay sends them).
pub const KCV_LENGTH: KcvLength = KcvLength::UNIONPAY;

/// Errors loading, parsing or saving an LMK.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LmkError {
    /// The file could not be read or written.
    #[error("LMK file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line of the text is malformed.
    #[error("LMK text line {line}: {reason}")]
    Syntax {
        /// The line number, from 1.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The text has no `lmk` line.
    #[error("LMK text: no `lmk = <hex>` line")]
    Missing,
    /// The key or check value is malformed (bad hex, bad length).
    #[error("LMK text line {line}: {source}")]
    Value {
        /// The line number, from 1.
        line: usize,
        /// The problem.
        source: Error,
    },
    /// The LMK is not double or triple length.
    #[error(
        "LMK: expected a double- or triple-length DES key (16 or 24 bytes), found {found} bytes"
    )]
    Length {
        /// The length given.
        found: usize,
    },
    /// The `kcv` line does not match the key.
    #[error("LMK: check value mismatch (file says {stated}, key gives {computed})")]
    KcvMismatch {
        /// The check value in the file.
        stated: Kcv,
        /// The check value of the key in the file.
        computed: Kcv,
    },
}

/// A local master key: a double- or triple-length DES key. Zeroized on drop; `Debug` shows
/// its length and check value only.
#[derive(Clone)]
pub struct Lmk {
    key: DesKey,
    /// The cipher of each key type's variant, in [`KeyType`] declaration order, set up once:
    /// every operation of the HSM opens its keys with one of these, and setting up a 3DES key
    /// schedule costs several block encryptions. (The ciphers zeroize their schedules on drop.)
    engines: Arc<[DesEngine; KeyType::ALL.len()]>,
}

impl fmt::Debug for Lmk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lmk")
            .field("length", &self.key.length())
            .field("kcv", &self.kcv())
            .finish()
    }
}

/// The variant constant of a key type (see the module documentation).
#[must_use]
pub const fn variant(key_type: KeyType) -> u8 {
    match key_type {
        KeyType::Tmk => 0x06,
        KeyType::Zmk => 0xA6,
        KeyType::Tpk => 0x5A,
        KeyType::Zpk => 0x6A,
        KeyType::Tak => 0xDE,
        KeyType::Zak => 0x2B,
        KeyType::Tdk => 0x50,
        KeyType::Zek => 0x74,
        KeyType::PbocPurchase => 0x9C,
        KeyType::PbocLoad => 0xFA,
        KeyType::PbocTac => 0x3C,
        KeyType::PbocUnload => 0x96,
        KeyType::PbocUpdate => 0xC3,
    }
}

/// The LMK variant for a key type: the LMK with [`variant`] XORed into its first byte.
fn variant_of(lmk: &DesKey, key_type: KeyType) -> DesKey {
    let mut bytes = [0u8; 24];
    let n = lmk.len();
    for (d, s) in bytes.iter_mut().zip(lmk.as_bytes()) {
        *d = *s;
    }
    bytes[0] ^= variant(key_type);
    // n is 16 or 24 (checked when the LMK was made), so this cannot fail; fall back to the
    // plain LMK rather than panic.
    let key = DesKey::from_bytes(bytes.get(..n).unwrap_or(&bytes)).unwrap_or_else(|_| lmk.clone());
    bytes.zeroize();
    key
}

impl Lmk {
    /// An LMK from a double- or triple-length DES key.
    ///
    /// # Errors
    /// [`LmkError::Length`] for a single-length key.
    pub fn from_key(key: DesKey) -> Result<Self, LmkError> {
        if key.length() == DesKeyLength::Single {
            return Err(LmkError::Length { found: key.len() });
        }
        Ok(Self::with_key(key))
    }

    fn with_key(key: DesKey) -> Self {
        let engines = Arc::new(KeyType::ALL.map(|t| DesEngine::new(&variant_of(&key, t))));
        Self { key, engines }
    }

    /// The cipher of the LMK variant for `key_type`.
    fn engine(&self, key_type: KeyType) -> &DesEngine {
        // `KeyType::ALL` lists every type in declaration order, so the index is in range.
        &self.engines[key_type as usize]
    }

    /// A new random triple-length LMK with odd parity.
    #[must_use]
    pub fn generate(rng: &dyn RandomSource) -> Self {
        let mut bytes = [0u8; 24];
        rng.fill(&mut bytes);
        let key = DesKey::triple(bytes).with_odd_parity();
        bytes.zeroize();
        Self::with_key(key)
    }

    /// The LMK's check value (4 bytes).
    #[must_use]
    pub fn kcv(&self) -> Kcv {
        self.key.kcv(KCV_LENGTH)
    }

    /// The LMK's length.
    #[must_use]
    pub const fn length(&self) -> DesKeyLength {
        self.key.length()
    }

    /// Parses the text format (see the module documentation).
    ///
    /// # Errors
    /// [`LmkError::Syntax`], [`LmkError::Value`], [`LmkError::Missing`],
    /// [`LmkError::Length`] or [`LmkError::KcvMismatch`], naming the line at fault.
    pub fn from_text(text: &str) -> Result<Self, LmkError> {
        let mut key: Option<DesKey> = None;
        let mut stated: Option<(usize, Kcv)> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((name, value)) = trimmed.split_once('=') else {
                return Err(LmkError::Syntax {
                    line,
                    reason: "expected `name = value`",
                });
            };
            let mut hex: Zeroizing<String> =
                Zeroizing::new(value.chars().filter(|c| !c.is_whitespace()).collect());
            match name.trim() {
                "lmk" => {
                    if key.is_some() {
                        return Err(LmkError::Syntax {
                            line,
                            reason: "`lmk` given twice",
                        });
                    }
                    let k = DesKey::from_hex(&hex)
                        .map_err(|source| LmkError::Value { line, source })?;
                    if k.length() == DesKeyLength::Single {
                        return Err(LmkError::Length { found: k.len() });
                    }
                    key = Some(k);
                }
                "kcv" => {
                    if stated.is_some() {
                        return Err(LmkError::Syntax {
                            line,
                            reason: "`kcv` given twice",
                        });
                    }
                    let kcv =
                        Kcv::from_hex(&hex).map_err(|source| LmkError::Value { line, source })?;
                    stated = Some((line, kcv));
                }
                _ => {
                    return Err(LmkError::Syntax {
                        line,
                        reason: "unknown name (expected `lmk` or `kcv`)",
                    });
                }
            }
            hex.zeroize();
        }
        let key = key.ok_or(LmkError::Missing)?;
        if let Some((_, stated)) = stated {
            let computed = key.kcv(stated.len());
            if computed != stated {
                return Err(LmkError::KcvMismatch { stated, computed });
            }
        }
        Ok(Self::with_key(key))
    }

    /// The text format of this LMK (see the module documentation). The result holds the key:
    /// it is zeroized when dropped.
    #[must_use]
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(128));
        out.push_str("# one-card SoftHsm local master key. Keep this file secret.\nlmk = ");
        push_hex(&mut out, self.key.as_bytes());
        out.push_str("\nkcv = ");
        push_hex(&mut out, self.kcv().as_bytes());
        out.push('\n');
        out
    }

    /// Reads an LMK file.
    ///
    /// # Errors
    /// [`LmkError::Io`] if the file cannot be read, otherwise as [`Lmk::from_text`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, LmkError> {
        let path = path.as_ref();
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| LmkError::Io {
                    path: path.to_path_buf(),
                    source,
                })?,
            );
        Self::from_text(&text)
    }

    /// Writes the LMK to a file (created with mode 0600 on Unix, replaced if it exists).
    ///
    /// # Errors
    /// [`LmkError::Io`] if the file cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), LmkError> {
        use std::io::Write;
        let path = path.as_ref();
        let io = |source| LmkError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        file.write_all(self.to_text().as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Encrypts a clear key under the LMK variant of `key_type`.
    pub(crate) fn encrypt_key(&self, key_type: KeyType, key: &DesKey) -> Vec<u8> {
        let engine = self.engine(key_type);
        let mut out = Vec::with_capacity(key.len());
        for part in key.as_bytes().as_chunks::<8>().0 {
            let mut b = *part;
            engine.encrypt(&mut b);
            out.extend_from_slice(&b);
        }
        out
    }

    /// Decrypts a cryptogram under the LMK variant of `key_type`, checking its length against
    /// `length`, the parity of the result (which catches a cryptogram of another type) and its
    /// check value against `kcv` (which catches any other tampering). `what` names the key.
    pub(crate) fn decrypt_key(
        &self,
        what: &'static str,
        key_type: KeyType,
        length: DesKeyLength,
        cryptogram: &[u8],
        kcv: &Kcv,
    ) -> Result<DesKey, HsmError> {
        if cryptogram.len() != length.bytes() {
            return Err(HsmError::new(
                HsmErrorCode::KeyLength,
                format!(
                    "{what}: cryptogram of {} bytes for a key of {} bytes",
                    cryptogram.len(),
                    length.bytes()
                ),
            ));
        }
        let engine = self.engine(key_type);
        let mut bytes = [0u8; 24];
        for (out, part) in bytes
            .as_chunks_mut::<8>()
            .0
            .iter_mut()
            .zip(cryptogram.as_chunks::<8>().0)
        {
            *out = *part;
            engine.decrypt(out);
        }
        let key = DesKey::from_bytes(bytes.get(..length.bytes()).unwrap_or(&bytes));
        bytes.zeroize();
        let key = key.map_err(HsmError::from)?;
        if !key.has_odd_parity() {
            return Err(HsmError::new(
                HsmErrorCode::KeyParity,
                format!(
                    "{what}: parity error under the LMK ({key_type} variant): not a {key_type} of this LMK"
                ),
            ));
        }
        let computed = key.kcv(kcv.len());
        if computed != *kcv {
            return Err(HsmError::new(
                HsmErrorCode::InvalidInput,
                format!(
                    "{what}: the key reference's check value {kcv} does not match its cryptogram ({computed})"
                ),
            ));
        }
        Ok(key)
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::CounterRandom;

    /// The engine table is indexed by the key type's discriminant.
    #[test]
    fn key_types_are_listed_in_declaration_order() {
        for (i, t) in KeyType::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i, "{t}");
        }
    }

    fn lmk() -> Lmk {
        Lmk::from_key(DesKey::from_hex("0123456789ABCDEFFEDCBA987654321089ABCDEF01234567").unwrap())
            .unwrap()
    }

    #[test]
    fn variants_differ_in_the_des_bits() {
        let mut seen: Vec<u8> = KeyType::ALL.iter().map(|t| variant(*t) >> 1).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), KeyType::ALL.len());
        assert!(!seen.contains(&0));
    }

    #[test]
    fn cryptograms_are_bound_to_the_type() {
        let lmk = lmk();
        let key = DesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let kcv = key.kcv(KCV_LENGTH);
        assert_eq!(kcv.to_string(), "08D7B4FB");
        let c = lmk.encrypt_key(KeyType::Tak, &key);
        assert_eq!(c.len(), 16);
        let back = lmk
            .decrypt_key("k", KeyType::Tak, DesKeyLength::Double, &c, &kcv)
            .unwrap();
        assert!(back.ct_eq(&key));
        // The cryptogram is DES-ECB under the variant, part by part.
        let mut variant = lmk.key.as_bytes().to_vec();
        variant[0] ^= 0xDE;
        let expect = crate::keyexchange::encrypt_key(&DesKey::from_bytes(&variant).unwrap(), &key);
        assert_eq!(c, expect);
        for t in KeyType::ALL {
            if t == KeyType::Tak {
                continue;
            }
            let e = lmk
                .decrypt_key("k", t, DesKeyLength::Double, &c, &kcv)
                .unwrap_err();
            assert!(
                matches!(e.code, HsmErrorCode::KeyParity | HsmErrorCode::InvalidInput),
                "{t}: {e}"
            );
        }
        let e = lmk
            .decrypt_key("MAK", KeyType::Tak, DesKeyLength::Triple, &c, &kcv)
            .unwrap_err();
        assert_eq!(e.code, HsmErrorCode::KeyLength);
        assert_eq!(
            e.detail,
            "MAK: cryptogram of 16 bytes for a key of 24 bytes"
        );
        let other = Kcv::from_hex("00000000").unwrap();
        let e = lmk
            .decrypt_key("MAK", KeyType::Tak, DesKeyLength::Double, &c, &other)
            .unwrap_err();
        assert_eq!(e.code, HsmErrorCode::InvalidInput);
        assert_eq!(
            e.detail,
            "MAK: the key reference's check value 00000000 does not match its cryptogram (08D7B4FB)"
        );
    }

    #[test]
    fn text_round_trip() {
        let lmk = lmk();
        let text = lmk.to_text();
        assert_eq!(
            text.as_str(),
            "# one-card SoftHsm local master key. Keep this file secret.\n\
             lmk = 0123456789ABCDEFFEDCBA987654321089ABCDEF01234567\n\
             kcv = "
                .to_owned()
                + &lmk.kcv().to_string()
                + "\n"
        );
        let back = Lmk::from_text(&text).unwrap();
        assert!(back.key.ct_eq(&lmk.key));
        assert_eq!(back.kcv(), lmk.kcv());
    }

    #[test]
    fn text_errors_name_the_line() {
        let err = |t: &str| Lmk::from_text(t).unwrap_err().to_string();
        assert_eq!(err("# nothing\n"), "LMK text: no `lmk = <hex>` line");
        assert_eq!(
            err("\nlmk 0123\n"),
            "LMK text line 2: expected `name = value`"
        );
        assert_eq!(
            err("key = 00\n"),
            "LMK text line 1: unknown name (expected `lmk` or `kcv`)"
        );
        assert_eq!(
            err("lmk = 0123456789ABCDEG0123456789ABCDEF\n"),
            "LMK text line 1: DES key hex: character at offset 15 is not a hex digit"
        );
        assert_eq!(
            err("lmk = 0123456789ABCDEF\n"),
            "LMK: expected a double- or triple-length DES key (16 or 24 bytes), found 8 bytes"
        );
        assert_eq!(
            err("kcv = 08D7B4\nkcv = 08D7B4\n"),
            "LMK text line 2: `kcv` given twice"
        );
        assert_eq!(
            err("lmk = 0123456789ABCDEF FEDCBA9876543210\nkcv = 08D7B5\n"),
            "LMK: check value mismatch (file says 08D7B5, key gives 08D7B4)"
        );
        assert_eq!(
            err("lmk = 0123456789ABCDEFFEDCBA9876543210\nlmk = 0123456789ABCDEFFEDCBA9876543210\n"),
            "LMK text line 2: `lmk` given twice"
        );
        assert!(Lmk::from_text("lmk = 0123456789ABCDEF FEDCBA9876543210\nkcv = 08D7B4\n").is_ok());
    }

    #[test]
    fn generate_is_odd_parity_and_deterministic_for_a_seed() {
        let a = Lmk::generate(&CounterRandom::new(7));
        let b = Lmk::generate(&CounterRandom::new(7));
        assert!(a.key.has_odd_parity());
        assert_eq!(a.length(), DesKeyLength::Triple);
        assert!(a.key.ct_eq(&b.key));
        assert_eq!(
            format!("{a:?}"),
            format!("Lmk {{ length: Triple, kcv: {:?} }}", a.kcv())
        );
    }

    #[test]
    fn save_and_load() {
        let dir = std::env::temp_dir().join(format!("pboc-sam-lmk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lmk.txt");
        let lmk = lmk();
        lmk.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back = Lmk::load(&path).unwrap();
        assert_eq!(back.kcv(), lmk.kcv());
        std::fs::remove_dir_all(&dir).unwrap();
        let e = Lmk::load(dir.join("missing")).unwrap_err();
        assert!(matches!(e, LmkError::Io { .. }));
    }
}
