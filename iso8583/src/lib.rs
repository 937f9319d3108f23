#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod bitmap;
pub mod decode;
pub mod describe;
pub mod ebcdic;
pub mod encode;
pub mod error;
pub mod frame;
pub mod spec;
#[cfg(feature = "spec-files")]
pub mod spec_file;
pub mod specs;
pub mod subfield;
pub mod tlv;
mod validate;

pub use bitmap::Bitmap;
pub use decode::{Binary, Chars, Field, Message, decode, decode_partial, decode_validated, scan};
pub use describe::Describe;
pub use encode::{MessageBuf, Output, Value};
pub use error::{Error, ErrorKind, Part, Result};
pub use spec::{
    Align, BitmapEncoding, Counts, DataClass, Encoding, FieldSpec, Layout, Length, Mask,
    MtiEncoding, PadNibble, PrefixEncoding, Spec, SpecError, Subfield,
};
pub use subfield::SubValue;
