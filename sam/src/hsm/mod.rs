//! The HSM host protocol: a payShield-style request/response protocol over TCP, its sans-IO
//! codec, and (with the `tokio` feature) a server that serves any [`SecurityModule`], a
//! pipelining client that is itself a [`SecurityModule`], and a load-balanced pool.
//!
//! [`SecurityModule`]: crate::security::SecurityModule
//!
//! # Frames
//!
//! ```text
//! request:  length(2, binary BE, excludes itself) | header | command code(2)  | fields
//! response: length(2, binary BE, excludes itself) | header | response code(2) | error code(2) | fields
//! ```
//!
//! The header has a configured length ([`FrameConfig::header_len`], usually 4) and is echoed
//! back unchanged. `HsmClient` puts a request id in it (upper-case hex, one per request in
//! flight) and matches responses by id. The response code is the command code with its second
//! character plus one (`NC` -> `ND`, `CA` -> `CB`, `M6` -> `M7`, `A0` -> `A1`). The error code
//! is `00` on success; then the response fields follow. After a non-zero error code there are
//! no fields, only an optional detail text (printable ASCII, at most [`MAX_DETAIL_LEN`]; an
//! extension of ours, empty from other HSMs). A frame longer than
//! [`FrameConfig::max_frame_len`] is refused from its length prefix, before it is buffered.
//!
//! A request that does not decode is answered with error `15` (or `51` when the frame is
//! shorter than the header), with the request's code plus one as response code (`Z[` if the
//! frame has no code), and the detail naming the field and the byte offset.
//!
//! # Field encodings
//!
//! | name | encoding |
//! |---|---|
//! | `KTYPE` | 3 decimal digits: `000` ZMK, `001` ZPK, `002` TPK, `003` TAK, `004` TMK, `005` TDK, `008` ZAK, `009` ZEK, `101` PBOC MPK (purchase), `102` MLK (load), `103` MTK (TAC), `104` MULK (unload), `105` MUK (update) |
//! | `SCHEME` | 1 character: `Z` single, `U` double, `T` triple length |
//! | `KEY` | a cryptogram: `SCHEME` then 16, 32 or 48 hex digits; with no scheme (a hex digit first) single length. Sent with the scheme. |
//! | `KCV` | 1 digit *n* (1 to 8) then 2*n* hex digits |
//! | `KEYREF` | `KTYPE` `KEY` `KCV`: a key under the LMK, as [`KeyRef`](crate::KeyRef) |
//! | `FLAG` | `0` absent / `1` present |
//! | `DATA` | 5 decimal digits *n* (0 to 16384) then *n* raw bytes |
//! | `MAC` | 2 decimal digits *n* (1 to 16) then 2*n* hex digits |
//! | `ALG` | 2 decimal digits: the [`MacAlgorithm`](crate::MacAlgorithm) code, `01` to `08` |
//! | `MODE` | `00` ECB, or `01` CBC followed by the IV as 16 hex digits |
//! | `PINFMT` | 2 digits (payShield's): `01` ISO 0, `05` ISO 1, `47` ISO 3, `48` ISO 4 |
//! | `PAN` | 2 decimal digits *n* (8 to 19) then *n* digits: the whole card number |
//! | `FACTORS` | 1 digit *n* (0 to 8) then *n* factors of 16 hex digits, outermost first |
//! | `HEX`*k* | *k* bytes as 2*k* hex digits (either case accepted, upper case sent) |
//!
//! # Commands
//!
//! | request | response | operation | request fields | response fields (error `00`) |
//! |---|---|---|---|---|
//! | `NC` | `ND` | diagnostics | — | `KCV` (LMK check value), firmware: 2 digits *n* + *n* printable ASCII |
//! | `B2` | `B3` | echo | `DATA` | `DATA` |
//! | `A0` | `A1` | generate key | `KTYPE`, `SCHEME`, `FLAG` [+ `KEYREF` of a TMK/ZMK] | `KEYREF` (new key under the LMK), `FLAG` [+ `KEY` under the TMK/ZMK] |
//! | `A6` | `A7` | import key under a KEK | `KEYREF` (KEK), `KTYPE`, `KEY` (under the KEK), `FLAG` [+ `KCV` to check] | `KEYREF` |
//! | `A8` | `A9` | export key under a KEK | `KEYREF` (KEK), `KEYREF` (key) | `KEY` (under the KEK), `KCV` |
//! | `BU` | `BV` | key check value | `KEYREF` | `KCV` |
//! | `CA` | `CB` | translate PIN, TPK -> ZPK | `KEYREF` (TPK), `KEYREF` (ZPK), `PINFMT` source, `PINFMT` destination, `PAN`, `HEX`8 PIN block | `HEX`8 PIN block |
//! | `CC` | `CD` | translate PIN, ZPK -> ZPK | as `CA`, the source a ZPK | `HEX`8 PIN block |
//! | `M6` | `M7` | generate MAC | `KEYREF` (TAK/ZAK), `ALG`, `DATA` | `MAC` |
//! | `M8` | `M9` | verify MAC | `KEYREF` (TAK/ZAK), `ALG`, `DATA`, `MAC` | — (mismatch: error `01`) |
//! | `M0` | `M1` | encrypt data | `KEYREF` (TDK/ZEK), `MODE`, `DATA` | `DATA` |
//! | `M2` | `M3` | decrypt data | `KEYREF` (TDK/ZEK), `MODE`, `DATA` | `DATA` |
//! | `QA` | `QB` | PBOC: derive card key | `KEYREF` (master), `FACTORS` | `KEYREF` |
//! | `QC` | `QD` | PBOC: verify load MAC1, produce MAC2 | `KEYREF` (MLK), `FACTORS`, `HEX`4 card random, `HEX`2 online sequence, `HEX`4 balance, `HEX`4 amount, `HEX`1 transaction type, `HEX`6 terminal, `HEX`4 date, `HEX`3 time, `HEX`4 MAC1 | `HEX`4 MAC2 |
//! | `QE` | `QF` | PBOC: verify TAC | `KEYREF` (MTK), `FACTORS`, `DATA` (TAC input), `HEX`4 TAC | — (mismatch: error `01`) |
//!
//! **The `Q*` commands are ours, not payShield commands.** Chinese HSMs have vendor-specific
//! commands for these PBOC operations; this namespace keeps ours apart from payShield's codes.
//!
//! The field layouts are this crate's design, in the payShield style; they are not byte-for-
//! byte compatible with any vendor's HSM.
//!
//! # Example
//!
//! ```
//! use pboc_sam::hsm::{Request, Response, decode_request, decode_response, FrameConfig};
//!
//! let mut frame = Vec::new();
//! Request::Diagnostics
//!     .encode_frame(&FrameConfig::default(), b"0000", &mut frame)
//!     .unwrap();
//! assert_eq!(frame, b"\x00\x060000NC");
//! let (header, request) = decode_request(&frame).unwrap();
//! assert_eq!((header, request), (&b"0000"[..], Request::Diagnostics));
//!
//! // The answer of an HSM without keys.
//! let (_, response) = decode_response(b"\x00\x080000ND12").unwrap();
//! let Response::Error { error, .. } = response else { panic!() };
//! assert_eq!(error.code, pboc_sam::HsmErrorCode::NoKeysLoaded);
//! ```

#[cfg(feature = "tokio")]
mod client;
mod codec;
mod commands;
#[cfg(feature = "tokio")]
mod pool;
#[cfg(feature = "tokio")]
mod server;

#[cfg(feature = "tokio")]
pub use client::{
    DEFAULT_BACKOFF_MAX, DEFAULT_BACKOFF_MIN, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_REQUEST_TIMEOUT, HsmClient, HsmClientBuilder,
};
#[cfg(feature = "tokio")]
pub use pool::{
    DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_PROBE_INTERVAL, HsmPool, HsmPoolBuilder, MemberState,
    MemberStatus,
};
#[cfg(feature = "tokio")]
pub use server::{
    DEFAULT_DRAIN_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_PIPELINE_DEPTH, HsmServer,
    HsmServerBuilder, ShutdownHandle, execute,
};

pub use codec::{
    DEFAULT_HEADER_LEN, DEFAULT_MAX_FRAME_LEN, FrameConfig, HEADER_OFFSET, MAX_HEADER_LEN,
    RawFrame, WireError, WireErrorKind, frame_len, split_frame, write_frame,
};
#[cfg(feature = "tokio")]
pub use codec::{Frame, FrameDecoder};
pub use commands::{
    Command, MAX_DETAIL_LEN, MAX_FIRMWARE_LEN, MAX_MAC_LEN, Request, Response, decode_request,
    decode_request_with, decode_response, decode_response_with, key_type_code, key_type_from_code,
    pin_format_code, response_code, scheme_char,
};
