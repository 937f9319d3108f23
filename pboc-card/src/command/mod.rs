//! Typed PBOC 2.0 card and PSAM commands.
//!
//! Each command is a struct with typed fields and
//!
//! - `to_apdu()`: the exact command APDU a terminal sends,
//! - `parse(&CommandApdu)`: the card/PSAM side, checking CLA, INS, P1, P2 and the data
//!   length (Le is only checked where it is a field of its own: READ RECORD, READ BINARY,
//!   GET RESPONSE; terminals on T=0 omit it and others send `00`),
//!
//! and its response data type has `parse(&[u8])` and `to_bytes()`. The [`Command`] and
//! [`Response`] traits tie the two together for generic code; [`parse_card_command`] and
//! [`parse_psam_command`] tell which command an APDU is.
//!
//! Amounts and balances are fen, 4-byte unsigned big-endian; overdraw limits are 3-byte
//! big-endian; dates are BCD `YYYYMMDD` (`[u8; 4]`), times BCD `hhmmss` (`[u8; 3]`), and
//! are not validated.
//!
//! Choices where sources disagree (UNCONFIRMED), each kept in one place:
//! - INITIALIZE FOR UPDATE P2 is `01`: [`INITIALIZE_FOR_UPDATE_P2`].
//! - DEBIT FOR UNLOAD returns a TAC (not MAC3): [`DebitForUnloadResponse`].
//! - GET TRANSACTION PROOF returns MAC then TAC: [`TransactionProof`].

mod balance;
mod capp;
mod cash;
mod cipher_data;
mod delivery_key;
mod dispatch;
mod error;
mod exchange;
mod get_response;
mod header;
mod load;
mod overdraw;
mod proof;
mod purchase;
mod read;
mod response;
mod sam_info;
mod sam_purchase;
mod select;
mod unload;
mod verify;

pub use balance::{GetBalance, GetBalanceResponse};
pub use capp::{InitializeForCappPurchase, UpdateCappDataCache};
pub use cash::InitializeForCashWithdraw;
pub use cipher_data::{CipherData, CipherMode};
pub use delivery_key::DeliveryKey;
pub use dispatch::{CardCommand, PsamCommand, parse_card_command, parse_psam_command};
pub use error::CommandError;
pub use exchange::{Command, Response};
pub use get_response::GetResponse;
pub use load::{
    CreditForLoad, CreditForLoadResponse, InitializeForLoad, InitializeForLoadResponse,
};
pub use overdraw::{
    INITIALIZE_FOR_UPDATE_P2, InitializeForUpdate, InitializeForUpdateResponse, MAX_OVERDRAW_LIMIT,
    UpdateOverdrawLimit, UpdateOverdrawLimitResponse,
};
pub use proof::{GetTransactionProof, TransactionProof};
pub use purchase::{
    DebitForPurchase, DebitForPurchaseResponse, InitializeForPurchase,
    InitializeForPurchaseResponse,
};
pub use read::{BinaryTarget, ReadBinary, ReadRecord};
pub use response::{DataResponse, NoData};
pub use sam_info::{
    PSAM_INFO_SFI, PsamInfo, ReadPsamInfo, ReadTerminalId, TERMINAL_ID_SFI, TerminalIdResponse,
};
pub use sam_purchase::{CreditSamForPurchase, InitSamForPurchase, InitSamForPurchaseResponse};
pub use select::Select;
pub use unload::{DebitForUnload, DebitForUnloadResponse, InitializeForUnload};
pub use verify::VerifyPin;
