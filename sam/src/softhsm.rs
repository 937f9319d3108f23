//! [`SoftHsm`]: an in-process [`SecurityModule`] built on the pure algorithms of this crate.
//!
//! It keeps one [`Lmk`] and a [`RandomSource`]; every key it hands out is a [`KeyRef`] whose
//! cryptogram is the key under the LMK variant of its type (see [`crate::lmk`]). On every use
//! a key is decrypted under the variant of its stated type and checked: its length against
//! the cryptogram (27), its parity (10: a cryptogram of another type or another LMK almost
//! never decrypts to an odd-parity key) and its check value (15: a tampered [`KeyRef`] is a
//! request error, not a business one). Its type is checked against the operation first (28).
//!
//! | operation | keys accepted |
//! |---|---|
//! | KEK of generate/import/export | TMK, ZMK |
//! | PIN translation | source TPK or ZPK, destination ZPK |
//! | MAC | TAK, ZAK |
//! | data encryption | TDK, ZEK |
//! | card key derivation | any `Pboc*` master |
//! | load MAC1/MAC2 | PBOC MLK ([`KeyType::PbocLoad`]) |
//! | TAC | PBOC MTK ([`KeyType::PbocTac`]) |
//!
//! **Parity.** Every key is stored with odd parity: generated keys are made so, and imported,
//! formed and derived keys have their parity bits set. DES ignores those bits, so check values
//! and every result are unchanged, but a key exported later carries the adjusted bits.
//!
//! **Opened keys.** A key that passed those checks is kept, by its type, cryptogram and check
//! value, in a bounded table (at most [`OPENED_KEYS`]; emptied when full; zeroized when
//! dropped), so the working keys a front end uses for every message are decrypted and checked
//! once, not per operation. A [`KeyRef`] that differs in any of those parts is checked anew.
//!
//! `SoftHsm` is synchronous: each trait method computes its result before returning an
//! already-completed future. It draws randomness only from its [`RandomSource`] (new keys and
//! PIN block fill) and never reads a clock.

use core::fmt;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use zeroize::Zeroize;

use crate::cipher::{self, Mode};
use crate::kcv::Kcv;
use crate::key::{DesKey, DesKeyLength, Key, KeyType, KeyUsage, Sm4Key};
use crate::lmk::{KCV_LENGTH, Lmk};
use crate::mac;
use crate::pboc;
use crate::pinblock;
use crate::security::{
    BoxFuture, DataMode, Diagnostics, ExportedKey, GeneratedKey, HsmError, HsmErrorCode, HsmResult,
    KeyRef, LoadRequest, MAX_DATA_LEN, MAX_DIVERSIFICATION_LEVELS, MacAlgorithm, PinTranslation,
    RandomSource, SecurityModule, TacRequest, ready,
};

/// The firmware string [`SoftHsm`] reports in its [`Diagnostics`].
pub const FIRMWARE: &str = concat!("one-card SoftHsm ", env!("CARGO_PKG_VERSION"));

/// The most key components [`SoftHsm::form_key_from_components`] accepts (as payShield FK).
pub const MAX_COMPONENTS: usize = 9;

/// An in-process software HSM. See the [module documentation](self).
pub struct SoftHsm {
    lmk: Lmk,
    rng: Box<dyn RandomSource>,
    /// Keys already opened and checked, by [`opened_id`].
    opened: Mutex<HashMap<OpenedId, DesKey>>,
}

/// The most opened keys [`SoftHsm`] keeps (see the module documentation).
pub const OPENED_KEYS: usize = 4096;

/// What identifies an opened key: its type, length, cryptogram (up to 24 bytes, with its
/// length) and check value (up to 8 bytes, with its length), packed into a fixed array so
/// that a lookup allocates nothing.
type OpenedId = [u8; 36];

/// See [`OpenedId`]; `None` for a cryptogram or check value longer than any key opens with
/// (such a `KeyRef` goes to the LMK, which refuses it).
fn opened_id(key: &KeyRef) -> Option<OpenedId> {
    let crypt = key.cryptogram.as_slice();
    let kcv = key.kcv.as_bytes();
    if crypt.len() > 24 || kcv.len() > 8 {
        return None;
    }
    let mut id = [0u8; 36];
    id[0] = key.key_type as u8;
    id[1] = key.length.bytes() as u8;
    id[2] = crypt.len() as u8;
    id[3..3 + crypt.len()].copy_from_slice(crypt);
    id[27] = kcv.len() as u8;
    id[28..28 + kcv.len()].copy_from_slice(kcv);
    Some(id)
}

impl fmt::Debug for SoftHsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftHsm")
            .field("lmk", &self.lmk)
            .finish_non_exhaustive()
    }
}

fn err(code: HsmErrorCode, detail: impl Into<std::borrow::Cow<'static, str>>) -> HsmError {
    HsmError::new(code, detail)
}

fn check_data(what: &'static str, data: &[u8]) -> HsmResult<()> {
    if data.len() > MAX_DATA_LEN {
        return Err(err(
            HsmErrorCode::InvalidInput,
            format!(
                "{what}: {} bytes, more than the limit of {MAX_DATA_LEN}",
                data.len()
            ),
        ));
    }
    Ok(())
}

fn check_levels(what: &'static str, factors: &[[u8; 8]], min: usize) -> HsmResult<()> {
    if factors.len() < min || factors.len() > MAX_DIVERSIFICATION_LEVELS {
        return Err(err(
            HsmErrorCode::InvalidInput,
            format!(
                "{what}: {} diversification factors, expected {min} to {MAX_DIVERSIFICATION_LEVELS}",
                factors.len()
            ),
        ));
    }
    Ok(())
}

fn require_type(what: &'static str, key: &KeyRef, expected: KeyType) -> HsmResult<()> {
    if key.key_type == expected {
        Ok(())
    } else {
        Err(err(
            HsmErrorCode::KeyType,
            format!(
                "{what}: a {} key where a {expected} is required",
                key.key_type
            ),
        ))
    }
}

fn key_length(
    what: &'static str,
    key: &DesKey,
    ok: &[DesKeyLength],
    expected: &str,
) -> HsmResult<()> {
    if ok.contains(&key.length()) {
        Ok(())
    } else {
        Err(err(
            HsmErrorCode::KeyLength,
            format!(
                "{what}: expected {expected}, found a key of {} bytes",
                key.len()
            ),
        ))
    }
}

impl SoftHsm {
    /// A software HSM with this LMK, drawing key material and PIN block fill from `rng`
    /// (which must be a cryptographically secure source outside tests).
    #[must_use]
    pub fn new(lmk: Lmk, rng: Box<dyn RandomSource>) -> Self {
        Self {
            lmk,
            rng,
            opened: Mutex::new(HashMap::new()),
        }
    }

    /// The check value of the LMK.
    #[must_use]
    pub fn lmk_kcv(&self) -> Kcv {
        self.lmk.kcv()
    }

    /// Forms a key from clear components by XORing them (as payShield A4/FK, the operator
    /// function used to load a master key entered by key custodians) and returns it under the
    /// LMK. The result gets odd parity; the components need not have it.
    ///
    /// Accepts 1 to [`MAX_COMPONENTS`] components of 8, 16 or 24 bytes, all of one length.
    /// (payShield requires at least 2; one is allowed here so that test and development keys
    /// can be entered as they are published.)
    ///
    /// # Errors
    /// [`HsmErrorCode::InvalidInput`] for no or too many components,
    /// [`HsmErrorCode::KeyLength`] for a bad or mixed length.
    pub fn form_key_from_components(
        &self,
        components: &[&[u8]],
        key_type: KeyType,
    ) -> HsmResult<KeyRef> {
        if components.is_empty() || components.len() > MAX_COMPONENTS {
            return Err(err(
                HsmErrorCode::InvalidInput,
                format!(
                    "key components: {} given, expected 1 to {MAX_COMPONENTS}",
                    components.len()
                ),
            ));
        }
        let len = components.first().map_or(0, |c| c.len());
        let Some(length) = DesKeyLength::from_bytes(len) else {
            return Err(err(
                HsmErrorCode::KeyLength,
                format!("key component 1: expected 8, 16 or 24 bytes, found {len}"),
            ));
        };
        let mut bytes = [0u8; 24];
        for (i, component) in components.iter().enumerate() {
            if component.len() != len {
                bytes.zeroize();
                return Err(err(
                    HsmErrorCode::KeyLength,
                    format!(
                        "key component {}: {} bytes, but component 1 has {len}",
                        i + 1,
                        component.len()
                    ),
                ));
            }
            for (d, s) in bytes.iter_mut().zip(component.iter()) {
                *d ^= s;
            }
        }
        let key = DesKey::from_bytes(bytes.get(..length.bytes()).unwrap_or(&bytes));
        bytes.zeroize();
        Ok(self.wrap(key_type, key?))
    }

    /// Puts a clear key under the LMK (with odd parity).
    fn wrap(&self, key_type: KeyType, key: DesKey) -> KeyRef {
        let key = key.with_odd_parity();
        KeyRef {
            key_type,
            length: key.length(),
            cryptogram: self.lmk.encrypt_key(key_type, &key),
            kcv: key.kcv(KCV_LENGTH),
        }
    }

    /// Decrypts a key of any type.
    fn open_any(&self, what: &'static str, key: &KeyRef) -> HsmResult<DesKey> {
        let id = opened_id(key);
        if let Some(k) = id
            .as_ref()
            .and_then(|id| self.opened_keys().get(id).cloned())
        {
            return Ok(k);
        }
        let k = self
            .lmk
            .decrypt_key(what, key.key_type, key.length, &key.cryptogram, &key.kcv)?;
        let Some(id) = id else {
            return Ok(k);
        };
        let mut opened = self.opened_keys();
        if opened.len() >= OPENED_KEYS {
            opened.clear();
        }
        opened.insert(id, k.clone());
        Ok(k)
    }

    fn opened_keys(&self) -> std::sync::MutexGuard<'_, HashMap<OpenedId, DesKey>> {
        self.opened.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decrypts a key after checking that its type allows `usage`.
    fn open(&self, what: &'static str, key: &KeyRef, usage: KeyUsage) -> HsmResult<DesKey> {
        key.key_type.require(what, usage)?;
        self.open_any(what, key)
    }

    fn random_key(&self, length: DesKeyLength) -> DesKey {
        let mut bytes = [0u8; 24];
        let n = length.bytes();
        if let Some(part) = bytes.get_mut(..n) {
            self.rng.fill(part);
        }
        let key = match length {
            DesKeyLength::Single => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&bytes[..8]);
                let k = DesKey::single(b);
                b.zeroize();
                k
            }
            DesKeyLength::Double => {
                let mut b = [0u8; 16];
                b.copy_from_slice(&bytes[..16]);
                let k = DesKey::double(b);
                b.zeroize();
                k
            }
            DesKeyLength::Triple => DesKey::triple(bytes),
        };
        bytes.zeroize();
        key.with_odd_parity()
    }

    fn do_generate(
        &self,
        key_type: KeyType,
        length: DesKeyLength,
        export_under: Option<&KeyRef>,
    ) -> HsmResult<GeneratedKey> {
        let kek = export_under
            .map(|k| self.open("KEK", k, KeyUsage::KeyEncryption))
            .transpose()?;
        let key = self.random_key(length);
        let under_kek = kek.map(|kek| crate::keyexchange::encrypt_key(&kek, &key));
        Ok(GeneratedKey {
            key: self.wrap(key_type, key),
            under_kek,
        })
    }

    fn do_import(
        &self,
        kek: &KeyRef,
        key_type: KeyType,
        encrypted: &[u8],
        expected_kcv: Option<&Kcv>,
    ) -> HsmResult<KeyRef> {
        let kek = self.open("KEK", kek, KeyUsage::KeyEncryption)?;
        if DesKeyLength::from_bytes(encrypted.len()).is_none() {
            return Err(err(
                HsmErrorCode::KeyLength,
                format!(
                    "imported key: expected 8, 16 or 24 bytes, found {}",
                    encrypted.len()
                ),
            ));
        }
        let key = crate::keyexchange::decrypt_key(&kek, encrypted)?;
        if let Some(expected) = expected_kcv {
            let computed = key.kcv(expected.len());
            if computed != *expected {
                return Err(err(
                    HsmErrorCode::VerificationFailed,
                    format!(
                        "imported {key_type}: check value {computed} does not match the expected {expected}"
                    ),
                ));
            }
        }
        Ok(self.wrap(key_type, key))
    }

    fn do_export(&self, kek: &KeyRef, key: &KeyRef) -> HsmResult<ExportedKey> {
        let kek = self.open("KEK", kek, KeyUsage::KeyEncryption)?;
        let key = self.open_any("exported key", key)?;
        Ok(ExportedKey {
            encrypted: crate::keyexchange::encrypt_key(&kek, &key),
            kcv: key.kcv(KCV_LENGTH),
        })
    }

    fn do_translate(&self, req: &PinTranslation) -> HsmResult<[u8; 8]> {
        let source = self.open("source PIN key", &req.source_key, KeyUsage::PinEncryption)?;
        require_type("destination PIN key", &req.dest_key, KeyType::Zpk)?;
        let dest = self.open_any("destination PIN key", &req.dest_key)?;
        let mut fill = [0u8; 8];
        self.rng.fill(&mut fill);
        let out = pinblock::translate(
            &req.block,
            &source,
            req.source_format,
            &dest,
            req.dest_format,
            &req.pan,
            &fill,
        );
        fill.zeroize();
        Ok(out?)
    }

    fn compute_mac(&self, key: &KeyRef, alg: MacAlgorithm, data: &[u8]) -> HsmResult<Vec<u8>> {
        check_data("MAC data", data)?;
        let key = self.open("MAC key", key, KeyUsage::Mac)?;
        use DesKeyLength::{Double, Single, Triple};
        let out = match alg {
            MacAlgorithm::UnionPayEcb => mac::pos_ecb(&key, data).to_vec(),
            MacAlgorithm::X919 => {
                key_length("X9.19 MAC key", &key, &[Double], "a double-length key")?;
                mac::x9_19(&key, data)?.to_vec()
            }
            MacAlgorithm::X99 => {
                key_length("X9.9 MAC key", &key, &[Single], "a single-length key")?;
                mac::x9_9(&key, data)?.to_vec()
            }
            MacAlgorithm::CbcMac(padding) => {
                key_length(
                    "CBC-MAC key",
                    &key,
                    &[Single, Double, Triple],
                    "any DES key",
                )?;
                mac::iso9797_1_alg1(&key, data, padding).to_vec()
            }
            MacAlgorithm::Pboc => {
                key_length(
                    "PBOC MAC key",
                    &key,
                    &[Single, Double],
                    "a single- or double-length key",
                )?;
                mac::pboc(&key, data)?.to_vec()
            }
            MacAlgorithm::Sm4Mac(padding) => {
                key_length(
                    "SM4 MAC key",
                    &key,
                    &[Double],
                    "a double-length (16-byte) key",
                )?;
                let sm4 = Sm4Key::from_bytes(key.as_bytes())?;
                mac::sm4_cbc_mac(&sm4, data, padding).to_vec()
            }
        };
        Ok(out)
    }

    fn do_verify_mac(
        &self,
        key: &KeyRef,
        alg: MacAlgorithm,
        data: &[u8],
        received: &[u8],
    ) -> HsmResult<()> {
        let full = alg.output_len();
        if received.len() < 4 || received.len() > full {
            return Err(err(
                HsmErrorCode::InvalidInput,
                format!(
                    "MAC to verify: {} bytes, expected 4 to {full}",
                    received.len()
                ),
            ));
        }
        let computed = self.compute_mac(key, alg, data)?;
        let left = computed.get(..received.len()).unwrap_or(&computed);
        mac::verify("MAC", received, left)?;
        Ok(())
    }

    fn do_derive(&self, master: &KeyRef, factors: &[[u8; 8]]) -> HsmResult<KeyRef> {
        check_levels("card key derivation", factors, 1)?;
        let mk = self.open("PBOC master key", master, KeyUsage::CardKeyDerivation)?;
        key_length(
            "PBOC master key",
            &mk,
            &[DesKeyLength::Double, DesKeyLength::Triple],
            "a double- or triple-length key",
        )?;
        Ok(self.wrap(master.key_type, pboc::diversify_path(&mk, factors)))
    }

    /// Derives a card key (`factors` may be empty: the master is then the card key).
    fn card_key(
        &self,
        what: &'static str,
        master: &KeyRef,
        expected: KeyType,
        factors: &[[u8; 8]],
    ) -> HsmResult<DesKey> {
        require_type(what, master, expected)?;
        check_levels(what, factors, 0)?;
        let mk = self.open_any(what, master)?;
        key_length(
            what,
            &mk,
            &[DesKeyLength::Double, DesKeyLength::Triple],
            "a double- or triple-length key",
        )?;
        Ok(pboc::diversify_path(&mk, factors))
    }

    fn do_load_mac2(&self, master: &KeyRef, req: &LoadRequest) -> HsmResult<[u8; 4]> {
        let dlk = self.card_key("PBOC load key", master, KeyType::PbocLoad, &req.factors)?;
        let seslk = pboc::load_session_key(&dlk, &req.random, req.online_seq);
        let mac1 = mac::pboc(
            &seslk,
            &pboc::load_mac1_input(req.balance, req.amount, req.tx_type, &req.terminal),
        )?;
        mac::verify("load MAC1", &req.mac1, &mac1)?;
        let mac2 = mac::pboc(
            &seslk,
            &pboc::load_mac2_input(req.amount, req.tx_type, &req.terminal, &req.date, &req.time),
        )?;
        Ok(mac2)
    }

    fn do_verify_tac(&self, master: &KeyRef, req: &TacRequest) -> HsmResult<()> {
        check_data("TAC data", &req.data)?;
        let dtk = self.card_key("PBOC TAC key", master, KeyType::PbocTac, &req.factors)?;
        key_length(
            "PBOC TAC key (DTK)",
            &dtk,
            &[DesKeyLength::Double],
            "a double-length DTK",
        )?;
        let tac_key = pboc::tac_key(&dtk)?;
        let tac = mac::pboc(&tac_key, &req.data)?;
        mac::verify("TAC", &req.tac, &tac)?;
        Ok(())
    }

    fn crypt_data(
        &self,
        key: &KeyRef,
        mode: DataMode,
        data: &[u8],
        encrypt: bool,
    ) -> HsmResult<Vec<u8>> {
        check_data("data", data)?;
        let key = Key::from(self.open("data key", key, KeyUsage::DataEncryption)?);
        let iv;
        let mode = match mode {
            DataMode::Ecb => Mode::Ecb,
            DataMode::Cbc(v) => {
                iv = v;
                Mode::Cbc { iv: &iv }
            }
        };
        let out = if encrypt {
            cipher::encrypt(&key, mode, data)
        } else {
            cipher::decrypt(&key, mode, data)
        };
        Ok(out?)
    }

    fn do_echo(&self, data: &[u8]) -> HsmResult<Vec<u8>> {
        check_data("echo data", data)?;
        Ok(data.to_vec())
    }
}

impl SecurityModule for SoftHsm {
    fn generate_key<'a>(
        &'a self,
        key_type: KeyType,
        length: DesKeyLength,
        export_under: Option<&'a KeyRef>,
    ) -> BoxFuture<'a, HsmResult<GeneratedKey>> {
        ready(self.do_generate(key_type, length, export_under))
    }

    fn import_key<'a>(
        &'a self,
        kek: &'a KeyRef,
        key_type: KeyType,
        encrypted: &'a [u8],
        expected_kcv: Option<&'a Kcv>,
    ) -> BoxFuture<'a, HsmResult<KeyRef>> {
        ready(self.do_import(kek, key_type, encrypted, expected_kcv))
    }

    fn export_key<'a>(
        &'a self,
        kek: &'a KeyRef,
        key: &'a KeyRef,
    ) -> BoxFuture<'a, HsmResult<ExportedKey>> {
        ready(self.do_export(kek, key))
    }

    fn key_check_value<'a>(&'a self, key: &'a KeyRef) -> BoxFuture<'a, HsmResult<Kcv>> {
        ready(self.open_any("key", key).map(|k| k.kcv(KCV_LENGTH)))
    }

    fn translate_pin<'a>(&'a self, req: &'a PinTranslation) -> BoxFuture<'a, HsmResult<[u8; 8]>> {
        ready(self.do_translate(req))
    }

    fn generate_mac<'a>(
        &'a self,
        key: &'a KeyRef,
        alg: MacAlgorithm,
        data: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<Vec<u8>>> {
        ready(self.compute_mac(key, alg, data))
    }

    fn verify_mac<'a>(
        &'a self,
        key: &'a KeyRef,
        alg: MacAlgorithm,
        data: &'a [u8],
        mac: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<()>> {
        ready(self.do_verify_mac(key, alg, data, mac))
    }

    fn pboc_derive_key<'a>(
        &'a self,
        master: &'a KeyRef,
        factors: &'a [[u8; 8]],
    ) -> BoxFuture<'a, HsmResult<KeyRef>> {
        ready(self.do_derive(master, factors))
    }

    fn pboc_load_mac2<'a>(
        &'a self,
        dlk_master: &'a KeyRef,
        req: &'a LoadRequest,
    ) -> BoxFuture<'a, HsmResult<[u8; 4]>> {
        ready(self.do_load_mac2(dlk_master, req))
    }

    fn pboc_verify_tac<'a>(
        &'a self,
        dtk_master: &'a KeyRef,
        req: &'a TacRequest,
    ) -> BoxFuture<'a, HsmResult<()>> {
        ready(self.do_verify_tac(dtk_master, req))
    }

    fn encrypt_data<'a>(
        &'a self,
        key: &'a KeyRef,
        mode: DataMode,
        data: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<Vec<u8>>> {
        ready(self.crypt_data(key, mode, data, true))
    }

    fn decrypt_data<'a>(
        &'a self,
        key: &'a KeyRef,
        mode: DataMode,
        data: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<Vec<u8>>> {
        ready(self.crypt_data(key, mode, data, false))
    }

    fn diagnostics(&self) -> BoxFuture<'_, HsmResult<Diagnostics>> {
        ready(Ok(Diagnostics {
            lmk_kcv: self.lmk.kcv(),
            firmware: FIRMWARE.to_owned(),
        }))
    }

    fn echo<'a>(&'a self, data: &'a [u8]) -> BoxFuture<'a, HsmResult<Vec<u8>>> {
        ready(self.do_echo(data))
    }
}
