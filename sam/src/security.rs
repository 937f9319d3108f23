//! The [`SecurityModule`] trait: what a payment HSM does for the rest of the stack, and the
//! types that cross it.
//!
//! Keys cross the trait only as [`KeyRef`]s: the key encrypted under the module's local master
//! key (LMK) variant of its type, plus its type, length and check value. Clear keys, PINs and
//! clear PIN blocks never cross it. The trait is dyn-compatible, so a pool can hold
//! `Arc<dyn SecurityModule>`; every method returns a boxed `Send` future ([`BoxFuture`]).
//!
//! Implementations: [`crate::softhsm::SoftHsm`] (in process) and, with the `tokio` feature, the
//! HSM host protocol client and pool.
//!
//! # Errors
//!
//! Every method returns [`HsmResult`]. [`HsmError`] carries a two-digit payShield-style
//! [`HsmErrorCode`] and a detail text saying what and where, and sorts into an
//! [`ErrorClass`]: *business* (01: the MAC, PIN or TAC is wrong — answer the customer),
//! *request* (our bug: bad input, wrong key type) and *device* (the HSM is unwell — only these
//! take an HSM out of a pool).

use core::fmt;
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;
use crate::kcv::Kcv;
use crate::key::{DesKeyLength, KeyType};
use crate::mac::Padding;
use crate::pinblock::{Pan, PinBlockFormat};

/// A boxed, `Send` future: the return type of every [`SecurityModule`] method.
pub type BoxFuture<'a, T> = core::pin::Pin<Box<dyn core::future::Future<Output = T> + Send + 'a>>;

/// Wraps a value that is already computed into a [`BoxFuture`] (for synchronous
/// implementations such as [`crate::softhsm::SoftHsm`]).
pub fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(core::future::ready(value))
}

/// The result of a [`SecurityModule`] operation.
pub type HsmResult<T> = Result<T, HsmError>;

/// The largest data buffer (MAC input, data to encrypt, echo payload) a [`SecurityModule`]
/// must accept, in bytes. Implementations refuse longer input with [`HsmErrorCode::InvalidInput`].
pub const MAX_DATA_LEN: usize = 16 * 1024;

/// The most diversification levels accepted by the PBOC operations.
pub const MAX_DIVERSIFICATION_LEVELS: usize = 8;

/// A payment HSM.
///
/// All methods take `&self` and may run concurrently. Each key argument is checked against the
/// usage the operation needs ([`KeyType::require`]); a key of the wrong type fails with
/// [`HsmErrorCode::KeyType`] (28) before anything is decrypted.
pub trait SecurityModule: Send + Sync {
    /// Generates a random key of `key_type` and `length` (odd parity), returned under the LMK
    /// and, when `export_under` names a key-encrypting key (TMK or ZMK), also encrypted under
    /// it (payShield A0).
    fn generate_key<'a>(
        &'a self,
        key_type: KeyType,
        length: DesKeyLength,
        export_under: Option<&'a KeyRef>,
    ) -> BoxFuture<'a, HsmResult<GeneratedKey>>;

    /// Imports a key of `key_type` received encrypted (DES/3DES-ECB, each 8-byte part on its
    /// own) under the key-encrypting key `kek` (TMK or ZMK), checking it against
    /// `expected_kcv` when given (mismatch: [`HsmErrorCode::VerificationFailed`]) (payShield
    /// A6).
    fn import_key<'a>(
        &'a self,
        kek: &'a KeyRef,
        key_type: KeyType,
        encrypted: &'a [u8],
        expected_kcv: Option<&'a Kcv>,
    ) -> BoxFuture<'a, HsmResult<KeyRef>>;

    /// Exports `key` encrypted under the key-encrypting key `kek` (TMK or ZMK), with its check
    /// value (payShield A8).
    fn export_key<'a>(
        &'a self,
        kek: &'a KeyRef,
        key: &'a KeyRef,
    ) -> BoxFuture<'a, HsmResult<ExportedKey>>;

    /// Recomputes the check value of `key` (payShield BU). Fails if the cryptogram does not
    /// match the check value the [`KeyRef`] carries.
    fn key_check_value<'a>(&'a self, key: &'a KeyRef) -> BoxFuture<'a, HsmResult<Kcv>>;

    /// Translates an encrypted PIN block from a TPK or ZPK to a ZPK, converting its format
    /// (payShield CA/CC). Every conversion between formats 0, 1 and 3 is allowed except from
    /// 0 or 3 to 1, which is refused with [`HsmErrorCode::PinFormat`] (23) because format 1 is
    /// not bound to the PAN. A block that does not decode in its stated format is
    /// [`HsmErrorCode::PinBlock`] (20).
    fn translate_pin<'a>(&'a self, req: &'a PinTranslation) -> BoxFuture<'a, HsmResult<[u8; 8]>>;

    /// Computes a MAC over `data` with a TAK or ZAK (payShield M6). The length of the result
    /// depends on the algorithm (see [`MacAlgorithm::output_len`]).
    fn generate_mac<'a>(
        &'a self,
        key: &'a KeyRef,
        alg: MacAlgorithm,
        data: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<Vec<u8>>>;

    /// Verifies a MAC over `data` with a TAK or ZAK, in constant time (payShield M8). `mac`
    /// may be the algorithm's whole output or its leftmost bytes (at least 4). A mismatch is
    /// [`HsmErrorCode::VerificationFailed`] (01, a business error).
    fn verify_mac<'a>(
        &'a self,
        key: &'a KeyRef,
        alg: MacAlgorithm,
        data: &'a [u8],
        mac: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<()>>;

    /// Derives a card key from a PBOC issuer master key (one of the `Pboc*` types) by
    /// diversification with each factor in order: issuer or city levels first, the card
    /// application serial number last (see [`crate::pboc::diversify_path`]). The result has the
    /// master's type, so it can be diversified further or passed to the PBOC operations with
    /// no factors.
    fn pboc_derive_key<'a>(
        &'a self,
        master: &'a KeyRef,
        factors: &'a [[u8; 8]],
    ) -> BoxFuture<'a, HsmResult<KeyRef>>;

    /// Online load: derives the card's DLK from `dlk_master` (a [`KeyType::PbocLoad`] key) and
    /// `req.factors`, the load session key, verifies the card's MAC1
    /// ([`HsmErrorCode::VerificationFailed`] if wrong) and returns MAC2.
    fn pboc_load_mac2<'a>(
        &'a self,
        dlk_master: &'a KeyRef,
        req: &'a LoadRequest,
    ) -> BoxFuture<'a, HsmResult<[u8; 4]>>;

    /// Verifies a TAC: derives the card's DTK from `dtk_master` (a [`KeyType::PbocTac`] key)
    /// and `req.factors`, then the TAC key, and checks `req.tac` over `req.data`
    /// ([`HsmErrorCode::VerificationFailed`] if wrong).
    fn pboc_verify_tac<'a>(
        &'a self,
        dtk_master: &'a KeyRef,
        req: &'a TacRequest,
    ) -> BoxFuture<'a, HsmResult<()>>;

    /// Encrypts data (a whole number of 8-byte blocks, no padding) with a TDK or ZEK
    /// (payShield M0).
    fn encrypt_data<'a>(
        &'a self,
        key: &'a KeyRef,
        mode: DataMode,
        data: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<Vec<u8>>>;

    /// Decrypts data (a whole number of 8-byte blocks) with a TDK or ZEK (payShield M2).
    fn decrypt_data<'a>(
        &'a self,
        key: &'a KeyRef,
        mode: DataMode,
        data: &'a [u8],
    ) -> BoxFuture<'a, HsmResult<Vec<u8>>>;

    /// The LMK check value and firmware version (payShield NC). A pool compares the LMK check
    /// values of its members.
    fn diagnostics(&self) -> BoxFuture<'_, HsmResult<Diagnostics>>;

    /// Returns `data` unchanged (payShield B2): a liveness probe.
    fn echo<'a>(&'a self, data: &'a [u8]) -> BoxFuture<'a, HsmResult<Vec<u8>>>;
}

/// A key as it travels outside an HSM: encrypted under the LMK variant of its type.
///
/// `Debug` shows the type, length and check value only. Equality compares all fields (the
/// cryptogram is not secret, but it is compared in constant time anyway).
#[derive(Clone, Eq)]
pub struct KeyRef {
    /// The key's type; operations check it against the usage they need.
    pub key_type: KeyType,
    /// The key's length.
    pub length: DesKeyLength,
    /// The key encrypted under the LMK variant of `key_type` (as many bytes as the key).
    pub cryptogram: Vec<u8>,
    /// The key's check value (E(key, zeros), truncated).
    pub kcv: Kcv,
}

impl PartialEq for KeyRef {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.key_type == other.key_type
            && self.length == other.length
            && self.kcv == other.kcv
            && bool::from(
                self.cryptogram
                    .as_slice()
                    .ct_eq(other.cryptogram.as_slice()),
            )
    }
}

impl fmt::Debug for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRef")
            .field("key_type", &self.key_type)
            .field("length", &self.length)
            .field("kcv", &self.kcv)
            .finish_non_exhaustive()
    }
}

/// The result of [`SecurityModule::generate_key`].
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    /// The new key under the LMK.
    pub key: KeyRef,
    /// The new key encrypted under the requested key-encrypting key, if one was given.
    pub under_kek: Option<Vec<u8>>,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("key", &self.key)
            .field("under_kek", &self.under_kek.as_ref().map(Vec::len))
            .finish()
    }
}

/// The result of [`SecurityModule::export_key`].
#[derive(Clone, PartialEq, Eq)]
pub struct ExportedKey {
    /// The key encrypted under the key-encrypting key.
    pub encrypted: Vec<u8>,
    /// The key's check value.
    pub kcv: Kcv,
}

impl fmt::Debug for ExportedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportedKey")
            .field("encrypted_len", &self.encrypted.len())
            .field("kcv", &self.kcv)
            .finish()
    }
}

/// A request to translate a PIN block ([`SecurityModule::translate_pin`]).
///
/// `Debug` masks the PAN and does not show the PIN block.
#[derive(Clone, PartialEq, Eq)]
pub struct PinTranslation {
    /// The key the block is encrypted under now: a TPK or ZPK.
    pub source_key: KeyRef,
    /// The block's format now.
    pub source_format: PinBlockFormat,
    /// The key to encrypt the block under: a ZPK.
    pub dest_key: KeyRef,
    /// The format wanted.
    pub dest_format: PinBlockFormat,
    /// The card number the block is bound to (formats 0 and 3).
    pub pan: Pan,
    /// The encrypted PIN block.
    pub block: [u8; 8],
}

impl fmt::Debug for PinTranslation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinTranslation")
            .field("source_key", &self.source_key)
            .field("source_format", &self.source_format)
            .field("dest_key", &self.dest_key)
            .field("dest_format", &self.dest_format)
            .field("pan", &self.pan)
            .field("block", &"<redacted>")
            .finish()
    }
}

/// A MAC algorithm, with a stable one-byte code for the host protocol.
///
/// All algorithms use the DES key of a [`KeyRef`] (a TAK or ZAK), except the SM4 ones: a
/// [`KeyRef`] carries DES keys only, so [`MacAlgorithm::Sm4Mac`] uses the 16 bytes of a
/// double-length key as the SM4 key (Chinese HSMs keep SM4 keys in the same 16-byte slots).
/// Its check value stays the 3DES one. AES keys are not supported across the trait.
///
/// | algorithm | code | key length | output |
/// |---|---|---|---|
/// | `UnionPayEcb` | `01` | 8, 16, 24 | 8 ASCII hex characters (field 64) |
/// | `X919` | `02` | 16 | 8 bytes |
/// | `X99` | `03` | 8 | 8 bytes |
/// | `CbcMac(Method1)` | `04` | 8, 16, 24 | 8 bytes (ISO 9797-1 alg. 1) |
/// | `CbcMac(Method2)` | `05` | 8, 16, 24 | 8 bytes |
/// | `Pboc` | `06` | 8, 16 | 4 bytes |
/// | `Sm4Mac(Method1)` | `07` | 16 | 16 bytes |
/// | `Sm4Mac(Method2)` | `08` | 16 | 16 bytes |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacAlgorithm {
    /// The UnionPay POS "ECB" MAC ([`crate::mac::pos_ecb`]).
    UnionPayEcb,
    /// ANSI X9.19 retail MAC ([`crate::mac::x9_19`]).
    X919,
    /// ANSI X9.9 single-DES CBC-MAC ([`crate::mac::x9_9`]).
    X99,
    /// ISO/IEC 9797-1 algorithm 1 with the given padding ([`crate::mac::iso9797_1_alg1`]).
    CbcMac(Padding),
    /// The PBOC 2.0 MAC ([`crate::mac::pboc`]).
    Pboc,
    /// SM4 CBC-MAC with the given padding ([`crate::mac::sm4_cbc_mac`]).
    Sm4Mac(Padding),
}

impl MacAlgorithm {
    /// Every algorithm, in code order.
    pub const ALL: [Self; 8] = [
        Self::UnionPayEcb,
        Self::X919,
        Self::X99,
        Self::CbcMac(Padding::Method1),
        Self::CbcMac(Padding::Method2),
        Self::Pboc,
        Self::Sm4Mac(Padding::Method1),
        Self::Sm4Mac(Padding::Method2),
    ];

    /// The one-byte wire code (see the table above).
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::UnionPayEcb => 0x01,
            Self::X919 => 0x02,
            Self::X99 => 0x03,
            Self::CbcMac(Padding::Method1) => 0x04,
            Self::CbcMac(Padding::Method2) => 0x05,
            Self::Pboc => 0x06,
            Self::Sm4Mac(Padding::Method1) => 0x07,
            Self::Sm4Mac(Padding::Method2) => 0x08,
        }
    }

    /// The algorithm for a wire code, if it is one.
    #[must_use]
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x01 => Self::UnionPayEcb,
            0x02 => Self::X919,
            0x03 => Self::X99,
            0x04 => Self::CbcMac(Padding::Method1),
            0x05 => Self::CbcMac(Padding::Method2),
            0x06 => Self::Pboc,
            0x07 => Self::Sm4Mac(Padding::Method1),
            0x08 => Self::Sm4Mac(Padding::Method2),
            _ => return None,
        })
    }

    /// The length of the MAC this algorithm produces, in bytes.
    #[must_use]
    pub const fn output_len(self) -> usize {
        match self {
            Self::UnionPayEcb | Self::X919 | Self::X99 | Self::CbcMac(_) => 8,
            Self::Pboc => 4,
            Self::Sm4Mac(_) => 16,
        }
    }
}

/// The online load request the issuer's HSM checks ([`SecurityModule::pboc_load_mac2`]).
/// The fields are what the card returned to INITIALIZE FOR LOAD and what the terminal sent.
///
/// `Debug` hides the card random and MAC1.
#[derive(Clone, PartialEq, Eq)]
pub struct LoadRequest {
    /// Diversification factors, outermost first, the card application serial number last.
    pub factors: Vec<[u8; 8]>,
    /// The card's random number.
    pub random: [u8; 4],
    /// The card's online transaction sequence number (before the load).
    pub online_seq: u16,
    /// The balance before the load (fen).
    pub balance: u32,
    /// The amount to load (fen).
    pub amount: u32,
    /// The transaction type (01 ED load, 02 EP load).
    pub tx_type: u8,
    /// The terminal id.
    pub terminal: [u8; 6],
    /// The host date, `YYYYMMDD` BCD (goes into MAC2).
    pub date: [u8; 4],
    /// The host time, `hhmmss` BCD (goes into MAC2).
    pub time: [u8; 3],
    /// The card's MAC1.
    pub mac1: [u8; 4],
}

/// A TAC to verify ([`SecurityModule::pboc_verify_tac`]).
///
/// `Debug` shows the lengths only, not the data or the TAC.
#[derive(Clone, PartialEq, Eq)]
pub struct TacRequest {
    /// Diversification factors, outermost first, the card application serial number last.
    pub factors: Vec<[u8; 8]>,
    /// The TAC input, as built by [`crate::pboc::purchase_tac_input`] or
    /// [`crate::pboc::load_tac_input`].
    pub data: Vec<u8>,
    /// The TAC the card produced.
    pub tac: [u8; 4],
}

impl fmt::Debug for LoadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadRequest")
            .field("factors", &self.factors.len())
            .field("online_seq", &self.online_seq)
            .field("balance", &self.balance)
            .field("amount", &self.amount)
            .field("tx_type", &self.tx_type)
            .field("terminal", &Hex(&self.terminal))
            .field("date", &Hex(&self.date))
            .field("time", &Hex(&self.time))
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for TacRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TacRequest")
            .field("factors", &self.factors.len())
            .field("data_len", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// Upper-case hex for `Debug` output of public values.
struct Hex<'a>(&'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// The block cipher mode of [`SecurityModule::encrypt_data`] and
/// [`SecurityModule::decrypt_data`] (DES/3DES, 8-byte blocks, no padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataMode {
    /// Electronic codebook.
    Ecb,
    /// Cipher block chaining from this IV.
    Cbc([u8; 8]),
}

/// What [`SecurityModule::diagnostics`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    /// The check value of the local master key. HSMs sharing keys must agree on it.
    pub lmk_kcv: Kcv,
    /// The firmware name and version.
    pub firmware: String,
}

/// A two-digit payShield-style error code. `00` (success) is never an error.
///
/// Codes 90 and 91 are ours, not payShield's: they stand for conditions a client sees when
/// there is no response at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HsmErrorCode {
    /// 01: verification failed (MAC, PIN, TAC, KCV). A business error.
    VerificationFailed,
    /// 10: source (or only) key parity error.
    KeyParity,
    /// 11: destination key parity error.
    DestKeyParity,
    /// 12: no keys loaded (the HSM has no LMK).
    NoKeysLoaded,
    /// 15: invalid input data.
    InvalidInput,
    /// 17: not authorised (HSM not in the needed state).
    NotAuthorised,
    /// 20: the PIN block does not contain valid values.
    PinBlock,
    /// 23: invalid PIN block format (or a refused conversion).
    PinFormat,
    /// 24: the PIN is too short or too long.
    PinLength,
    /// 26: invalid key scheme.
    KeyScheme,
    /// 27: invalid key length.
    KeyLength,
    /// 28: invalid key type (a key used for something its type does not allow).
    KeyType,
    /// 29: function not permitted.
    FunctionNotPermitted,
    /// 41: internal hardware or software error.
    HardwareError,
    /// 42: DES failure.
    DesFailure,
    /// 51: invalid message header.
    BadHeader,
    /// 67: command not licensed.
    NotLicensed,
    /// 68: command disabled.
    Disabled,
    /// 83: key block error.
    KeyBlock,
    /// 84: key block usage or mode error.
    KeyBlockUsage,
    /// 90 (ours): the HSM did not answer in time.
    Timeout,
    /// 91 (ours): no HSM reachable (connection down, pool empty).
    Unavailable,
}

impl HsmErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [Self; 22] = [
        Self::VerificationFailed,
        Self::KeyParity,
        Self::DestKeyParity,
        Self::NoKeysLoaded,
        Self::InvalidInput,
        Self::NotAuthorised,
        Self::PinBlock,
        Self::PinFormat,
        Self::PinLength,
        Self::KeyScheme,
        Self::KeyLength,
        Self::KeyType,
        Self::FunctionNotPermitted,
        Self::HardwareError,
        Self::DesFailure,
        Self::BadHeader,
        Self::NotLicensed,
        Self::Disabled,
        Self::KeyBlock,
        Self::KeyBlockUsage,
        Self::Timeout,
        Self::Unavailable,
    ];

    /// The code as a number (1 to 91).
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::VerificationFailed => 1,
            Self::KeyParity => 10,
            Self::DestKeyParity => 11,
            Self::NoKeysLoaded => 12,
            Self::InvalidInput => 15,
            Self::NotAuthorised => 17,
            Self::PinBlock => 20,
            Self::PinFormat => 23,
            Self::PinLength => 24,
            Self::KeyScheme => 26,
            Self::KeyLength => 27,
            Self::KeyType => 28,
            Self::FunctionNotPermitted => 29,
            Self::HardwareError => 41,
            Self::DesFailure => 42,
            Self::BadHeader => 51,
            Self::NotLicensed => 67,
            Self::Disabled => 68,
            Self::KeyBlock => 83,
            Self::KeyBlockUsage => 84,
            Self::Timeout => 90,
            Self::Unavailable => 91,
        }
    }

    /// The code for a number; `None` for 0 (success) and for numbers that are not listed.
    #[must_use]
    pub const fn from_u8(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::VerificationFailed,
            10 => Self::KeyParity,
            11 => Self::DestKeyParity,
            12 => Self::NoKeysLoaded,
            15 => Self::InvalidInput,
            17 => Self::NotAuthorised,
            20 => Self::PinBlock,
            23 => Self::PinFormat,
            24 => Self::PinLength,
            26 => Self::KeyScheme,
            27 => Self::KeyLength,
            28 => Self::KeyType,
            29 => Self::FunctionNotPermitted,
            41 => Self::HardwareError,
            42 => Self::DesFailure,
            51 => Self::BadHeader,
            67 => Self::NotLicensed,
            68 => Self::Disabled,
            83 => Self::KeyBlock,
            84 => Self::KeyBlockUsage,
            90 => Self::Timeout,
            91 => Self::Unavailable,
            _ => return None,
        })
    }

    /// The two ASCII digits, as on the wire (`"01"`, `"28"`...).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VerificationFailed => "01",
            Self::KeyParity => "10",
            Self::DestKeyParity => "11",
            Self::NoKeysLoaded => "12",
            Self::InvalidInput => "15",
            Self::NotAuthorised => "17",
            Self::PinBlock => "20",
            Self::PinFormat => "23",
            Self::PinLength => "24",
            Self::KeyScheme => "26",
            Self::KeyLength => "27",
            Self::KeyType => "28",
            Self::FunctionNotPermitted => "29",
            Self::HardwareError => "41",
            Self::DesFailure => "42",
            Self::BadHeader => "51",
            Self::NotLicensed => "67",
            Self::Disabled => "68",
            Self::KeyBlock => "83",
            Self::KeyBlockUsage => "84",
            Self::Timeout => "90",
            Self::Unavailable => "91",
        }
    }

    /// The code for two ASCII digits; `None` for `"00"` and anything not listed.
    #[must_use]
    pub fn from_ascii(digits: [u8; 2]) -> Option<Self> {
        let [a, b] = digits;
        if !a.is_ascii_digit() || !b.is_ascii_digit() {
            return None;
        }
        Self::from_u8((a - b'0') * 10 + (b - b'0'))
    }

    /// A short description.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::VerificationFailed => "verification failed",
            Self::KeyParity => "key parity error",
            Self::DestKeyParity => "destination key parity error",
            Self::NoKeysLoaded => "no keys loaded",
            Self::InvalidInput => "invalid input data",
            Self::NotAuthorised => "not authorised",
            Self::PinBlock => "PIN block error",
            Self::PinFormat => "invalid PIN block format",
            Self::PinLength => "PIN length error",
            Self::KeyScheme => "invalid key scheme",
            Self::KeyLength => "invalid key length",
            Self::KeyType => "invalid key type",
            Self::FunctionNotPermitted => "function not permitted",
            Self::HardwareError => "hardware error",
            Self::DesFailure => "DES failure",
            Self::BadHeader => "invalid message header",
            Self::NotLicensed => "command not licensed",
            Self::Disabled => "command disabled",
            Self::KeyBlock => "key block error",
            Self::KeyBlockUsage => "key block usage error",
            Self::Timeout => "timeout",
            Self::Unavailable => "HSM unavailable",
        }
    }

    /// The class of the code:
    ///
    /// - business ([`ErrorClass::Business`]): 01.
    /// - device ([`ErrorClass::Device`]): 12, 17, 41, 42, 67, 68, 90 (timeout), 91 (unavailable).
    /// - request ([`ErrorClass::Request`]): everything else (10, 11, 15, 2x, 51, 8x).
    #[must_use]
    pub const fn class(self) -> ErrorClass {
        match self {
            Self::VerificationFailed => ErrorClass::Business,
            Self::NoKeysLoaded
            | Self::NotAuthorised
            | Self::HardwareError
            | Self::DesFailure
            | Self::NotLicensed
            | Self::Disabled
            | Self::Timeout
            | Self::Unavailable => ErrorClass::Device,
            Self::KeyParity
            | Self::DestKeyParity
            | Self::InvalidInput
            | Self::PinBlock
            | Self::PinFormat
            | Self::PinLength
            | Self::KeyScheme
            | Self::KeyLength
            | Self::KeyType
            | Self::FunctionNotPermitted
            | Self::BadHeader
            | Self::KeyBlock
            | Self::KeyBlockUsage => ErrorClass::Request,
        }
    }
}

impl fmt::Display for HsmErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.as_str(), self.description())
    }
}

/// How an error should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The data is wrong (a MAC, PIN or TAC does not verify): answer the request with a
    /// decline; the HSM is fine.
    Business,
    /// The request is wrong (bad input, wrong key type or length): a bug on our side; the HSM
    /// is fine and retrying elsewhere will not help.
    Request,
    /// The HSM is unwell or unreachable: take it out of the pool; an idempotent request may be
    /// retried on another HSM.
    Device,
}

/// An error from a [`SecurityModule`]: a code and a detail saying what and where. The detail
/// never contains key material, PINs or PIN blocks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HSM error {code}: {detail}")]
pub struct HsmError {
    /// The payShield-style code.
    pub code: HsmErrorCode,
    /// What went wrong and where.
    pub detail: Cow<'static, str>,
}

impl HsmError {
    /// An error with a code and a detail.
    pub fn new(code: HsmErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }

    /// The error's class (see [`HsmErrorCode::class`]).
    #[must_use]
    pub const fn class(&self) -> ErrorClass {
        self.code.class()
    }
}

impl From<Error> for HsmError {
    /// Maps a crate error to the code an HSM would return:
    ///
    /// | [`Error`] | code |
    /// |---|---|
    /// | `BadLength`, `BadHex`, `BadPan` | 15 invalid input |
    /// | `BadParity` | 10 key parity |
    /// | `KcvMismatch`, `MacMismatch` | 01 verification failed |
    /// | `BadPin` | 24 PIN length |
    /// | `BadPinBlock` | 20 PIN block |
    /// | `FormatConversion` | 23 PIN format |
    /// | `WrongKeyType` | 28 key type |
    fn from(e: Error) -> Self {
        let code = match e {
            Error::BadLength { .. } | Error::BadHex { .. } | Error::BadPan(_) => {
                HsmErrorCode::InvalidInput
            }
            Error::BadParity { .. } => HsmErrorCode::KeyParity,
            Error::KcvMismatch { .. } | Error::MacMismatch { .. } => {
                HsmErrorCode::VerificationFailed
            }
            Error::BadPin(_) => HsmErrorCode::PinLength,
            Error::BadPinBlock { .. } => HsmErrorCode::PinBlock,
            Error::FormatConversion { .. } => HsmErrorCode::PinFormat,
            Error::WrongKeyType { .. } => HsmErrorCode::KeyType,
        };
        Self::new(code, e.to_string())
    }
}

/// A source of random bytes for key generation and PIN block fill.
///
/// The library never reads OS randomness itself: the service passes a cryptographically
/// secure source (e.g. one backed by `getrandom`), tests pass [`CounterRandom`].
pub trait RandomSource: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// A deterministic [`RandomSource`] for tests and reproducible runs: SplitMix64 over a seed.
///
/// **Not random.** Anyone who knows the seed knows every key it produces. The sequence is fixed
/// for a seed: each call consumes whole 8-byte outputs (big-endian), dropping the unused tail
/// of the last one. Thread-safe (an atomic counter).
#[derive(Debug)]
pub struct CounterRandom {
    state: AtomicU64,
}

impl CounterRandom {
    /// A generator starting from `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    fn next_u64(&self) -> u64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut z = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl RandomSource for CounterRandom {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_be_bytes();
            for (d, s) in chunk.iter_mut().zip(v) {
                *d = s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::PinProblem;
    use crate::key::KeyUsage;

    #[test]
    fn trait_is_dyn_compatible() {
        let none: Option<std::sync::Arc<dyn SecurityModule>> = None;
        assert!(none.is_none());
    }

    #[test]
    fn codes_round_trip() {
        for code in HsmErrorCode::ALL {
            assert_eq!(HsmErrorCode::from_u8(code.as_u8()), Some(code));
            let s = code.as_str();
            assert_eq!(s.len(), 2);
            assert_eq!(s, format!("{:02}", code.as_u8()));
            let b = s.as_bytes();
            assert_eq!(HsmErrorCode::from_ascii([b[0], b[1]]), Some(code));
        }
        assert_eq!(HsmErrorCode::from_u8(0), None);
        assert_eq!(HsmErrorCode::from_ascii(*b"00"), None);
        assert_eq!(HsmErrorCode::from_ascii(*b"0A"), None);
        assert_eq!(HsmErrorCode::from_u8(2), None);
        assert_eq!(HsmErrorCode::from_u8(255), None);
    }

    #[test]
    fn classes_follow_the_spec() {
        use ErrorClass::{Business, Device, Request};
        let expect = |n: u8, class| {
            assert_eq!(
                HsmErrorCode::from_u8(n).map(HsmErrorCode::class),
                Some(class),
                "{n}"
            );
        };
        expect(1, Business);
        for n in [10, 11, 15, 20, 23, 24, 26, 27, 28, 29, 51, 83, 84] {
            expect(n, Request);
        }
        for n in [12, 17, 41, 42, 67, 68, 90, 91] {
            expect(n, Device);
        }
    }

    #[test]
    fn errors_map_to_codes() {
        let e = HsmError::from(Error::MacMismatch { what: "field 64" });
        assert_eq!(e.code, HsmErrorCode::VerificationFailed);
        assert_eq!(e.class(), ErrorClass::Business);
        assert_eq!(
            e.to_string(),
            "HSM error 01 (verification failed): field 64: verification failed"
        );
        let e = HsmError::from(Error::WrongKeyType {
            what: "MAC key",
            expected: KeyUsage::Mac,
            found: KeyType::Tpk,
        });
        assert_eq!(e.code, HsmErrorCode::KeyType);
        assert_eq!(e.detail, "MAC key: a TPK key cannot be used for MAC");
        assert_eq!(
            HsmError::from(Error::BadPin(PinProblem::Length { found: 3 })).code,
            HsmErrorCode::PinLength
        );
        assert_eq!(
            HsmError::from(Error::BadParity {
                what: "k",
                index: 0
            })
            .code,
            HsmErrorCode::KeyParity
        );
        assert_eq!(
            HsmError::from(Error::BadLength {
                what: "data",
                expected: "8",
                found: 3
            })
            .code,
            HsmErrorCode::InvalidInput
        );
    }

    #[test]
    fn mac_codes_round_trip() {
        for (i, alg) in MacAlgorithm::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(alg.code()), i + 1);
            assert_eq!(MacAlgorithm::from_code(alg.code()), Some(alg));
        }
        assert_eq!(MacAlgorithm::from_code(0), None);
        assert_eq!(MacAlgorithm::from_code(9), None);
        assert_eq!(MacAlgorithm::Pboc.output_len(), 4);
    }

    #[test]
    fn counter_random_is_splitmix64() {
        // SplitMix64 from seed 0: the published first outputs.
        let r = CounterRandom::new(0);
        let mut buf = [0u8; 12];
        r.fill(&mut buf);
        assert_eq!(hex::encode_upper(buf), "E220A8397B1DCDAF6E789E6A");
        let mut next = [0u8; 8];
        r.fill(&mut next);
        assert_eq!(hex::encode_upper(next), "06C45D188009454F");
    }

    #[test]
    fn pboc_requests_debug_hide_macs() {
        let req = LoadRequest {
            factors: vec![[1; 8]],
            random: [0x11, 0x22, 0x33, 0x44],
            online_seq: 7,
            balance: 100,
            amount: 4096,
            tx_type: 2,
            terminal: [0, 0x11, 0x22, 0x33, 0x44, 0x55],
            date: [0x20, 0x11, 0x12, 0x21],
            time: [0x21, 0x48, 0x22],
            mac1: [0x29, 0x88, 0xAE, 0x5A],
        };
        assert_eq!(
            format!("{req:?}"),
            "LoadRequest { factors: 1, online_seq: 7, balance: 100, amount: 4096, tx_type: 2, \
             terminal: 001122334455, date: 20111221, time: 214822, .. }"
        );
        let tac = TacRequest {
            factors: vec![],
            data: vec![0; 22],
            tac: [1, 2, 3, 4],
        };
        assert_eq!(
            format!("{tac:?}"),
            "TacRequest { factors: 0, data_len: 22, .. }"
        );
    }

    #[test]
    fn key_ref_debug_hides_the_cryptogram() {
        let k = KeyRef {
            key_type: KeyType::Tak,
            length: DesKeyLength::Double,
            cryptogram: vec![0xAB; 16],
            kcv: Kcv::from_hex("AB7153CA").unwrap(),
        };
        assert_eq!(
            format!("{k:?}"),
            r#"KeyRef { key_type: Tak, length: Double, kcv: Kcv("AB7153CA"), .. }"#
        );
        let g = GeneratedKey {
            key: k.clone(),
            under_kek: Some(vec![1; 16]),
        };
        assert!(!format!("{g:?}").contains("171717"));
        assert_eq!(
            format!("{g:?}"),
            r#"GeneratedKey { key: KeyRef { key_type: Tak, length: Double, kcv: Kcv("AB7153CA"), .. }, under_kek: Some(16) }"#
        );
    }
}
