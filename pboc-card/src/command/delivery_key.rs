//! DELIVERY KEY (`80 1A <usage> <version> Lc <factors 8N>`): derives a temporary key
//! inside the PSAM, used by the following CIPHER DATA commands.

use crate::apdu::CommandApdu;
use crate::command::error::CommandError;
use crate::command::exchange::impl_command;
use crate::command::header::{CLA_PBOC, INS_DELIVERY_KEY, expect_cla_ins};
use crate::command::response::NoData;

/// DELIVERY KEY: diversifies the PSAM key of `key_usage`/`key_version` with each factor
/// in turn.
///
/// At least one factor is required (the spec's form always carries Lc); at most 31 fit a
/// short APDU.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    /// Key usage (P1).
    pub key_usage: u8,
    /// Key version (P2).
    pub key_version: u8,
    /// Diversification factors, 8 bytes each, in the order sent.
    pub factors: Vec<[u8; 8]>,
}

impl DeliveryKey {
    /// Name used in errors.
    pub const NAME: &'static str = "DELIVERY KEY";

    /// `80 1A usage version Lc factors`.
    pub fn to_apdu(&self) -> CommandApdu {
        CommandApdu::new(CLA_PBOC, INS_DELIVERY_KEY, self.key_usage, self.key_version)
            .with_data(self.factors.concat())
    }

    /// Parses the command.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_cla_ins(apdu, Self::NAME, CLA_PBOC, INS_DELIVERY_KEY)?;
        let (factors, remainder) = apdu.data.as_chunks::<8>();
        if factors.is_empty() || !remainder.is_empty() {
            return Err(CommandError::DataLengthNotInSteps {
                command: Self::NAME,
                base: 0,
                step: 8,
                min_steps: 1,
                found: apdu.data.len(),
            });
        }
        Ok(Self {
            key_usage: apdu.p1,
            key_version: apdu.p2,
            factors: factors.to_vec(),
        })
    }
}

impl_command!(DeliveryKey => NoData);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apdu, encoded};

    #[test]
    fn bytes_and_errors() {
        let cmd = DeliveryKey {
            key_usage: 0x27,
            key_version: 0x01,
            factors: vec![
                [0x10, 0, 0, 0, 0, 0, 0, 0x01],
                [0x20, 0x24, 0, 0, 0, 0, 0, 0x02],
            ],
        };
        let text = "801A2701101000000000000001 2024000000000002".replace(' ', "");
        assert_eq!(encoded(&cmd.to_apdu()), text);
        assert_eq!(DeliveryKey::parse(&apdu(&text)), Ok(cmd));
        assert_eq!(
            DeliveryKey::parse(&apdu("801A27010710000000000000")),
            Err(CommandError::DataLengthNotInSteps {
                command: "DELIVERY KEY",
                base: 0,
                step: 8,
                min_steps: 1,
                found: 7
            })
        );
        assert_eq!(
            DeliveryKey::parse(&apdu("801A2701")),
            Err(CommandError::DataLengthNotInSteps {
                command: "DELIVERY KEY",
                base: 0,
                step: 8,
                min_steps: 1,
                found: 0
            })
        );
    }
}
