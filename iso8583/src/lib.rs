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

pub mod bitmap;
pub mod decode;
pub mod encode;
pub mod error;
pub mod spec;
#[cfg(feature = "spec-files")]
pub mod spec_file;
pub mod specs;
pub mod describe;
pub mod subfield;
mod validate;

pub use bitmap::Bitmap;
pub use decode::{Binary, Chars, Field, Message, decode, decode_partial, scan};
pub use encode::{MessageBuf, Output, Value};
pub use describe::Describe;
pub use error::{Error, ErrorKind, Part, Result};
pub use subfield::SubValue;
pub use spec::{
    Align, BitmapEncoding, Counts, DataClass, Encoding, FieldSpec, Layout, Length, Mask,
    MtiEncoding, PadNibble, PrefixEncoding, Spec, SpecError, Subfield,
};
