//! GET TRANSACTION PROOF (`80 5A 00 <type> 02 <card seq(2)> 08`): asks the card for the
//! MAC and TAC of a transaction whose response was lost.
//!
//! UNCONFIRMED: sources disagree on the order of the 8 response bytes. This crate reads
//! MAC first, then TAC; the choice lives only in [`TransactionProof`].

use crate::apdu::CommandApdu;
use crate::command::error::CommandError;
use crate::command::exchange::{impl_command, impl_response};
use crate::command::header::{
    CLA_PBOC, INS_GET_TRANSACTION_PROOF, exact_data, exact_response, expect_cla_ins, expect_p1,
};
use crate::transaction_type::TransactionType;

/// GET TRANSACTION PROOF for the transaction of `transaction_type` with card sequence
/// number `card_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GetTransactionProof {
    /// Type of the transaction (P2).
    pub transaction_type: TransactionType,
    /// Card transaction sequence number (online or offline, per the type).
    pub card_seq: u16,
}

impl GetTransactionProof {
    /// Name used in errors.
    pub const NAME: &'static str = "GET TRANSACTION PROOF";

    /// `80 5A 00 type 02 card_seq(2) 08`.
    pub fn to_apdu(&self) -> CommandApdu {
        CommandApdu::new(
            CLA_PBOC,
            INS_GET_TRANSACTION_PROOF,
            0x00,
            self.transaction_type.code(),
        )
        .with_data(self.card_seq.to_be_bytes().to_vec())
        .with_ne(TransactionProof::LEN as u32)
    }

    /// Parses the command; Le is not checked.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_cla_ins(apdu, Self::NAME, CLA_PBOC, INS_GET_TRANSACTION_PROOF)?;
        expect_p1(apdu, Self::NAME, 0x00)?;
        let transaction_type =
            TransactionType::from_code(apdu.p2).ok_or(CommandError::InvalidParameter {
                command: Self::NAME,
                parameter: "P2",
                expected: "a transaction type 01..=09",
                found: apdu.p2,
            })?;
        let mut r = exact_data(apdu, Self::NAME, 2)?;
        Ok(Self {
            transaction_type,
            card_seq: r.u16()?,
        })
    }
}

/// Response to GET TRANSACTION PROOF: `MAC(4) | TAC(4)` (order UNCONFIRMED, MAC first
/// chosen). The MAC is the MAC2 of that transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionProof {
    /// The transaction's MAC.
    pub mac: [u8; 4],
    /// The transaction's TAC.
    pub tac: [u8; 4],
}

impl TransactionProof {
    /// Length of the response data.
    pub const LEN: usize = 8;

    /// Parses the 8-byte response data, MAC first.
    pub fn parse(data: &[u8]) -> Result<Self, CommandError> {
        let mut r = exact_response(data, GetTransactionProof::NAME, Self::LEN)?;
        Ok(Self {
            mac: r.array()?,
            tac: r.array()?,
        })
    }

    /// Encodes the response data, MAC first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.extend_from_slice(&self.mac);
        out.extend_from_slice(&self.tac);
        out
    }
}

impl_command!(GetTransactionProof => TransactionProof);
impl_response!(TransactionProof);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apdu, encoded, hex};

    #[test]
    fn apdu_bytes() {
        let cmd = GetTransactionProof {
            transaction_type: TransactionType::EpLoad,
            card_seq: 0x0001,
        };
        assert_eq!(encoded(&cmd.to_apdu()), "805A000202000108");
        assert_eq!(
            GetTransactionProof::parse(&apdu("805A000202000108")),
            Ok(cmd)
        );
        let cmd = GetTransactionProof {
            transaction_type: TransactionType::EpPurchase,
            card_seq: 0x1234,
        };
        assert_eq!(encoded(&cmd.to_apdu()), "805A000602123408");
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            GetTransactionProof::parse(&apdu("805A000A02000108")),
            Err(CommandError::InvalidParameter {
                command: "GET TRANSACTION PROOF",
                parameter: "P2",
                expected: "a transaction type 01..=09",
                found: 0x0A
            })
        );
        assert_eq!(
            GetTransactionProof::parse(&apdu("805A0002010108")),
            Err(CommandError::WrongDataLength {
                command: "GET TRANSACTION PROOF",
                expected: 2,
                found: 1
            })
        );
        assert_eq!(
            GetTransactionProof::parse(&apdu("805A010202000108")),
            Err(CommandError::WrongP1 {
                command: "GET TRANSACTION PROOF",
                expected: 0x00,
                found: 0x01
            })
        );
    }

    #[test]
    fn response_is_mac_then_tac() {
        let r = TransactionProof::parse(&hex("3A845BF0 A1B2C3D4")).unwrap();
        assert_eq!(r.mac, [0x3A, 0x84, 0x5B, 0xF0]);
        assert_eq!(r.tac, [0xA1, 0xB2, 0xC3, 0xD4]);
        assert_eq!(r.to_bytes(), hex("3A845BF0A1B2C3D4"));
        assert_eq!(
            TransactionProof::parse(&hex("3A845BF0A1B2C3")),
            Err(CommandError::WrongResponseLength {
                command: "GET TRANSACTION PROOF",
                expected: 8,
                found: 7
            })
        );
    }
}
