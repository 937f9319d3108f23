//! Composite (CAPP) purchase: INITIALIZE FOR CAPP PURCHASE (`80 50 03 02 0B .. 0F`) and
//! UPDATE CAPP DATA CACHE (`80 DC <record id> <SFI << 3> Lc <record>`).
//!
//! The purchase completes with [`DebitForPurchase`](crate::command::DebitForPurchase)
//! after the cache update; transaction type `09`.

use crate::apdu::CommandApdu;
use crate::application::Application;
use crate::command::error::CommandError;
use crate::command::exchange::impl_command;
use crate::command::header::{
    CLA_PBOC, INS_INITIALIZE, INS_UPDATE_CAPP_DATA_CACHE, P1_INIT_CAPP_PURCHASE, data_in_range,
    expect_cla_ins, expect_header, init_data, parse_init_data,
};
use crate::command::purchase::InitializeForPurchaseResponse;
use crate::command::response::NoData;

/// INITIALIZE FOR CAPP PURCHASE: starts a composite purchase of `amount` fen from the EP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InitializeForCappPurchase {
    /// Index of the purchase key (DPK) on the card.
    pub key_index: u8,
    /// Amount in fen.
    pub amount: u32,
    /// Terminal id.
    pub terminal: [u8; 6],
}

impl InitializeForCappPurchase {
    /// Name used in errors.
    pub const NAME: &'static str = "INITIALIZE FOR CAPP PURCHASE";

    /// `80 50 03 02 0B key_index amount(4) terminal(6) 0F`.
    pub fn to_apdu(&self) -> CommandApdu {
        CommandApdu::new(
            CLA_PBOC,
            INS_INITIALIZE,
            P1_INIT_CAPP_PURCHASE,
            Application::Ep.p2(),
        )
        .with_data(init_data(self.key_index, self.amount, &self.terminal))
        .with_ne(InitializeForPurchaseResponse::LEN as u32)
    }

    /// Parses the command; Le is not checked.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_header(
            apdu,
            Self::NAME,
            [
                CLA_PBOC,
                INS_INITIALIZE,
                P1_INIT_CAPP_PURCHASE,
                Application::Ep.p2(),
            ],
        )?;
        let (key_index, amount, terminal) = parse_init_data(apdu, Self::NAME)?;
        Ok(Self {
            key_index,
            amount,
            terminal,
        })
    }
}

/// UPDATE CAPP DATA CACHE: stages a record of a CAPP (composite application) file, written
/// when the following DEBIT succeeds.
///
/// P1 is the record identifier, P2 is `SFI << 3` (the low three bits are zero). The SFI
/// must be 1..=30; it is masked to five bits when encoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpdateCappDataCache {
    /// Record identifier (P1).
    pub record_id: u8,
    /// Short file identifier of the CAPP file, 1..=30.
    pub sfi: u8,
    /// The new record content, 1..=255 bytes.
    pub record: Vec<u8>,
}

impl UpdateCappDataCache {
    /// Name used in errors.
    pub const NAME: &'static str = "UPDATE CAPP DATA CACHE";

    /// `80 DC record_id (SFI << 3) Lc record`.
    pub fn to_apdu(&self) -> CommandApdu {
        CommandApdu::new(
            CLA_PBOC,
            INS_UPDATE_CAPP_DATA_CACHE,
            self.record_id,
            (self.sfi & 0x1F) << 3,
        )
        .with_data(self.record.clone())
    }

    /// Parses the command.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_cla_ins(apdu, Self::NAME, CLA_PBOC, INS_UPDATE_CAPP_DATA_CACHE)?;
        let sfi = apdu.p2 >> 3;
        if apdu.p2 & 0x07 != 0 || !(1..=30).contains(&sfi) {
            return Err(CommandError::InvalidParameter {
                command: Self::NAME,
                parameter: "P2",
                expected: "SFI << 3 with SFI 1..=30",
                found: apdu.p2,
            });
        }
        let record = data_in_range(apdu, Self::NAME, 1, 255)?;
        Ok(Self {
            record_id: apdu.p1,
            sfi,
            record: record.to_vec(),
        })
    }
}

impl_command!(InitializeForCappPurchase => InitializeForPurchaseResponse);
impl_command!(UpdateCappDataCache => NoData);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apdu, encoded, hex};

    #[test]
    fn initialize_for_capp_purchase_bytes() {
        let cmd = InitializeForCappPurchase {
            key_index: 0x01,
            amount: 200,
            terminal: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66],
        };
        let text = "805003020B01000000C81122334455660F";
        assert_eq!(encoded(&cmd.to_apdu()), text);
        assert_eq!(InitializeForCappPurchase::parse(&apdu(text)), Ok(cmd));
        assert_eq!(
            InitializeForCappPurchase::parse(&apdu("805003010B01000000C81122334455660F")),
            Err(CommandError::WrongP2 {
                command: "INITIALIZE FOR CAPP PURCHASE",
                expected: 0x02,
                found: 0x01
            })
        );
    }

    #[test]
    fn update_capp_data_cache_bytes() {
        let cmd = UpdateCappDataCache {
            record_id: 0x02,
            sfi: 0x17,
            record: hex("0202000102"),
        };
        let text = "80DC02B8050202000102";
        assert_eq!(encoded(&cmd.to_apdu()), text);
        assert_eq!(UpdateCappDataCache::parse(&apdu(text)), Ok(cmd));
    }

    #[test]
    fn update_capp_data_cache_errors() {
        assert_eq!(
            UpdateCappDataCache::parse(&apdu("80DC02BC050202000102")),
            Err(CommandError::InvalidParameter {
                command: "UPDATE CAPP DATA CACHE",
                parameter: "P2",
                expected: "SFI << 3 with SFI 1..=30",
                found: 0xBC
            })
        );
        assert_eq!(
            UpdateCappDataCache::parse(&apdu("80DC0200050202000102")),
            Err(CommandError::InvalidParameter {
                command: "UPDATE CAPP DATA CACHE",
                parameter: "P2",
                expected: "SFI << 3 with SFI 1..=30",
                found: 0x00
            })
        );
        assert_eq!(
            UpdateCappDataCache::parse(&apdu("80DC02B8")),
            Err(CommandError::DataLengthOutOfRange {
                command: "UPDATE CAPP DATA CACHE",
                min: 1,
                max: 255,
                found: 0
            })
        );
        assert_eq!(
            UpdateCappDataCache::parse(&apdu("00DC02B8050202000102")),
            Err(CommandError::WrongClass {
                command: "UPDATE CAPP DATA CACHE",
                expected: 0x80,
                found: 0x00
            })
        );
    }
}
