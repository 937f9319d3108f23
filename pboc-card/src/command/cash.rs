//! INITIALIZE FOR CASH WITHDRAW (`80 50 02 01 0B .. 0F`), electronic deposit only.
//!
//! The withdrawal completes with [`DebitForPurchase`](crate::command::DebitForPurchase);
//! the card answers with an
//! [`InitializeForPurchaseResponse`](crate::command::InitializeForPurchaseResponse).

use crate::apdu::CommandApdu;
use crate::application::Application;
use crate::command::error::CommandError;
use crate::command::exchange::impl_command;
use crate::command::header::{
    CLA_PBOC, INS_INITIALIZE, P1_INIT_CASH_WITHDRAW, expect_header, init_data, parse_init_data,
};
use crate::command::purchase::InitializeForPurchaseResponse;

/// INITIALIZE FOR CASH WITHDRAW: starts a cash withdrawal of `amount` fen from the ED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InitializeForCashWithdraw {
    /// Index of the purchase key (DPK) on the card.
    pub key_index: u8,
    /// Amount in fen.
    pub amount: u32,
    /// Terminal id.
    pub terminal: [u8; 6],
}

impl InitializeForCashWithdraw {
    /// Name used in errors.
    pub const NAME: &'static str = "INITIALIZE FOR CASH WITHDRAW";

    /// `80 50 02 01 0B key_index amount(4) terminal(6) 0F`.
    pub fn to_apdu(&self) -> CommandApdu {
        CommandApdu::new(
            CLA_PBOC,
            INS_INITIALIZE,
            P1_INIT_CASH_WITHDRAW,
            Application::Ed.p2(),
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
                P1_INIT_CASH_WITHDRAW,
                Application::Ed.p2(),
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

impl_command!(InitializeForCashWithdraw => InitializeForPurchaseResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apdu, encoded};

    #[test]
    fn bytes_and_errors() {
        let cmd = InitializeForCashWithdraw {
            key_index: 0x02,
            amount: 50_000,
            terminal: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66],
        };
        let text = "805002010B020000C3501122334455660F";
        assert_eq!(encoded(&cmd.to_apdu()), text);
        assert_eq!(InitializeForCashWithdraw::parse(&apdu(text)), Ok(cmd));
        assert_eq!(
            InitializeForCashWithdraw::parse(&apdu("805002020B020000C3501122334455660F")),
            Err(CommandError::WrongP2 {
                command: "INITIALIZE FOR CASH WITHDRAW",
                expected: 0x01,
                found: 0x02
            })
        );
        assert_eq!(
            InitializeForCashWithdraw::parse(&apdu("805002010A020000C35011223344550F")),
            Err(CommandError::WrongDataLength {
                command: "INITIALIZE FOR CASH WITHDRAW",
                expected: 11,
                found: 10
            })
        );
    }
}
