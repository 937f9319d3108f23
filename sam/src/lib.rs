#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod block;
mod des_core;
mod hexutil;

pub mod cipher;
pub mod error;
pub mod hsm;
pub mod kcv;
pub mod key;
pub mod keyexchange;
pub mod lmk;
pub mod mac;
pub mod pboc;
pub mod pinblock;
pub mod security;
pub mod softhsm;
pub mod transport;

pub use crate::error::{Error, PanProblem, PinBlockProblem, PinProblem, Result};
#[cfg(feature = "tokio")]
pub use crate::hsm::{HsmClient, HsmPool, HsmServer, MemberState};
pub use crate::kcv::{Kcv, KcvLength};
pub use crate::key::{AesKey, DesKey, DesKeyLength, Key, KeyType, KeyUsage, Sm4Key};
pub use crate::keyexchange::{Field62Layout, WorkingKeys};
pub use crate::lmk::{Lmk, LmkError};
pub use crate::mac::Padding;
pub use crate::pinblock::{ClearPinBlock, Pan, Pin, PinBlockFormat};
pub use crate::security::{
    BoxFuture, CounterRandom, DataMode, Diagnostics, ErrorClass, ExportedKey, GeneratedKey,
    HsmError, HsmErrorCode, HsmResult, KeyRef, LoadRequest, MacAlgorithm, PinTranslation,
    RandomSource, SecurityModule, TacRequest,
};
pub use crate::softhsm::SoftHsm;
pub use crate::transport::{ApduHandler, CardTransport, MemoryTransport, TransportError};

/// The crate's internal DES/3DES engine, for the benches only (feature `bench-internals`).
/// Not a stable API.
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_internals {
    use crate::key::DesKey;

    /// DES or triple DES chosen by the key length, exactly as the MAC, PIN block and key
    /// functions use it. The key schedule is built by [`DesEngine::new`].
    pub struct DesEngine(crate::block::DesEngine);

    impl DesEngine {
        /// Builds the key schedule(s) for `key`.
        #[must_use]
        pub fn new(key: &DesKey) -> Self {
            Self(crate::block::DesEngine::new(key))
        }

        /// Encrypts one block in place.
        #[inline]
        pub fn encrypt(&self, block: &mut [u8; 8]) {
            self.0.encrypt(block);
        }

        /// Decrypts one block in place.
        #[inline]
        pub fn decrypt(&self, block: &mut [u8; 8]) {
            self.0.decrypt(block);
        }
    }
}

/// The RustCrypto crates this crate is built on (AES, SM4 and their cipher traits),
/// re-exported so that callers use exactly the same versions. DES and triple DES are the
/// crate's own table-driven implementation, not the RustCrypto `des` crate.
pub mod primitives {
    pub use ::aes;
    pub use ::cipher;
    pub use ::sm4;
}
