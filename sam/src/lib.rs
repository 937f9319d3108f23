#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod block;
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

/// The RustCrypto crates this crate is built on, re-exported so that callers (and the
/// benches, which compare against raw DES block operations) use exactly the same versions.
pub mod primitives {
    pub use ::aes;
    pub use ::cipher;
    pub use ::des;
    pub use ::sm4;
}
