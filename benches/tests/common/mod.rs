//! Helpers shared by the integration tests of this package.

pub mod peers;
