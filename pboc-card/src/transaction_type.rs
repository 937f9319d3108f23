//! The one-byte transaction type used in MAC/TAC input, detail records and GET
//! TRANSACTION PROOF.

use crate::application::Application;

/// PBOC 2.0 transaction type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransactionType {
    /// `01`: electronic deposit load.
    EdLoad,
    /// `02`: electronic purse load.
    EpLoad,
    /// `03`: unload (ED).
    Unload,
    /// `04`: electronic deposit cash withdrawal.
    EdCashWithdrawal,
    /// `05`: electronic deposit purchase.
    EdPurchase,
    /// `06`: electronic purse purchase.
    EpPurchase,
    /// `07`: electronic deposit overdraw-limit update.
    EdOverdrawUpdate,
    /// `08`: credit purchase.
    CreditPurchase,
    /// `09`: composite (CAPP) purchase.
    CompositePurchase,
}

impl TransactionType {
    /// The wire value.
    pub fn code(self) -> u8 {
        match self {
            Self::EdLoad => 0x01,
            Self::EpLoad => 0x02,
            Self::Unload => 0x03,
            Self::EdCashWithdrawal => 0x04,
            Self::EdPurchase => 0x05,
            Self::EpPurchase => 0x06,
            Self::EdOverdrawUpdate => 0x07,
            Self::CreditPurchase => 0x08,
            Self::CompositePurchase => 0x09,
        }
    }

    /// The type with this wire value, if any.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x01 => Self::EdLoad,
            0x02 => Self::EpLoad,
            0x03 => Self::Unload,
            0x04 => Self::EdCashWithdrawal,
            0x05 => Self::EdPurchase,
            0x06 => Self::EpPurchase,
            0x07 => Self::EdOverdrawUpdate,
            0x08 => Self::CreditPurchase,
            0x09 => Self::CompositePurchase,
            _ => return None,
        })
    }

    /// The load type for an application: `01` for ED, `02` for EP.
    pub fn load(application: Application) -> Self {
        match application {
            Application::Ed => Self::EdLoad,
            Application::Ep => Self::EpLoad,
        }
    }

    /// The plain purchase type for an application: `05` for ED, `06` for EP.
    pub fn purchase(application: Application) -> Self {
        match application {
            Application::Ed => Self::EdPurchase,
            Application::Ep => Self::EpPurchase,
        }
    }

    /// The application whose balance and counters the transaction uses: ED for `01`, `03`,
    /// `04`, `05` and `07`; EP for `02`, `06` and `09` (the card runs a composite purchase
    /// on the EP). `None` for `08` credit purchase, which this crate ties to neither.
    pub fn application(self) -> Option<Application> {
        match self {
            Self::EdLoad
            | Self::Unload
            | Self::EdCashWithdrawal
            | Self::EdPurchase
            | Self::EdOverdrawUpdate => Some(Application::Ed),
            Self::EpLoad | Self::EpPurchase | Self::CompositePurchase => Some(Application::Ep),
            Self::CreditPurchase => None,
        }
    }
}

impl TryFrom<u8> for TransactionType {
    type Error = u8;

    /// Fails with the unknown byte.
    fn try_from(code: u8) -> Result<Self, u8> {
        Self::from_code(code).ok_or(code)
    }
}

impl From<TransactionType> for u8 {
    fn from(t: TransactionType) -> Self {
        t.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknowns_fail() {
        for code in 0..=u8::MAX {
            match TransactionType::try_from(code) {
                Ok(t) => {
                    assert!((1..=9).contains(&code));
                    assert_eq!(t.code(), code);
                }
                Err(found) => {
                    assert!(!(1..=9).contains(&code));
                    assert_eq!(found, code);
                }
            }
        }
        assert_eq!(
            TransactionType::from_code(0x06),
            Some(TransactionType::EpPurchase)
        );
        assert_eq!(u8::from(TransactionType::CompositePurchase), 0x09);
    }

    #[test]
    fn per_application_types() {
        assert_eq!(
            TransactionType::load(Application::Ed),
            TransactionType::EdLoad
        );
        assert_eq!(
            TransactionType::load(Application::Ep),
            TransactionType::EpLoad
        );
        assert_eq!(
            TransactionType::purchase(Application::Ed),
            TransactionType::EdPurchase
        );
        assert_eq!(
            TransactionType::purchase(Application::Ep),
            TransactionType::EpPurchase
        );
        let by_code: Vec<(u8, Option<Application>)> = (1..=9)
            .filter_map(TransactionType::from_code)
            .map(|t| (t.code(), t.application()))
            .collect();
        assert_eq!(
            by_code,
            vec![
                (0x01, Some(Application::Ed)),
                (0x02, Some(Application::Ep)),
                (0x03, Some(Application::Ed)),
                (0x04, Some(Application::Ed)),
                (0x05, Some(Application::Ed)),
                (0x06, Some(Application::Ep)),
                (0x07, Some(Application::Ed)),
                (0x08, None),
                (0x09, Some(Application::Ep)),
            ]
        );
    }
}
