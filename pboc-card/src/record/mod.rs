//! Transaction records: the card's transaction detail records and the offline purchase
//! records merchants upload for clearing.

mod detail;
mod error;
mod offline;

pub use detail::{DETAIL_SFI, TransactionDetail};
pub use error::RecordError;
pub use offline::{DuplicateKey, OfflinePurchaseRecord};
