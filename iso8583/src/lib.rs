#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

// Modules written by helpers (standalone, no dependency on the spec model):
pub mod ebcdic;
pub mod frame;
pub mod tlv;
