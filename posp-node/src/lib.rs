//! The one-card front-end processor (POSP) as a library: storage, the service modules and the
//! simulators, composed by the `posp-node` binary. See `README.md` and `PROTOCOL.md` for the
//! modules and the wire contracts between terminals, the front end and the data center.
#![forbid(unsafe_code)]

pub mod center;
pub mod cli;
pub mod config;
pub mod demo;
pub mod front;
pub mod init;
pub mod loadtest;
pub(crate) mod net;
pub mod possim;
pub mod store;
pub mod supervisor;
pub mod wire;
