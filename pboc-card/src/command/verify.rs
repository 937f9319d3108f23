//! VERIFY PIN (`00 20 00 00 Lc <PIN>`).
//!
//! PBOC 2.0 sends the PIN in plain BCD, not in an ISO 9564 format-2 block: two digits per
//! byte, and when the number of digits is odd the last low nibble is `F`. So `123456` is
//! `12 34 56` (Lc 3) and `12345` is `12 34 5F`. PINs have 4..=12 digits.

use core::fmt;

use crate::apdu::CommandApdu;
use crate::command::error::CommandError;
use crate::command::exchange::impl_command;
use crate::command::header::{CLA_ISO, INS_VERIFY, data_in_range, expect_header};
use crate::command::response::NoData;

/// VERIFY with a plain-BCD PIN (see the module documentation for the encoding).
///
/// `Debug` does not show the PIN, and the bytes are overwritten with zeros on drop (best
/// effort, without the `zeroize` crate).
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyPin {
    bcd: Vec<u8>,
}

impl VerifyPin {
    /// Name used in errors.
    pub const NAME: &'static str = "VERIFY";
    /// Fewest PIN digits.
    pub const MIN_DIGITS: usize = 4;
    /// Most PIN digits.
    pub const MAX_DIGITS: usize = 12;

    /// A VERIFY command for a PIN given as 4..=12 decimal digits.
    pub fn from_digits(digits: &str) -> Result<Self, CommandError> {
        let length = digits.chars().count();
        let non_digits = digits.chars().filter(|c| !c.is_ascii_digit()).count();
        if non_digits != 0 || !(Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&length) {
            return Err(CommandError::InvalidPin { length, non_digits });
        }
        let nibbles: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
        let bcd = nibbles
            .chunks(2)
            .map(|pair| match pair {
                [hi, lo] => hi << 4 | lo,
                [hi] => hi << 4 | 0x0F,
                _ => 0xFF,
            })
            .collect();
        Ok(Self { bcd })
    }

    /// The PIN as sent: plain BCD, `F`-padded.
    pub fn bcd(&self) -> &[u8] {
        &self.bcd
    }

    /// Number of PIN digits.
    pub fn digit_count(&self) -> usize {
        let padded = self.bcd.last().is_some_and(|b| b & 0x0F == 0x0F);
        self.bcd.len() * 2 - usize::from(padded)
    }

    /// `00 20 00 00 Lc PIN`.
    pub fn to_apdu(&self) -> CommandApdu {
        CommandApdu::new(CLA_ISO, INS_VERIFY, 0x00, 0x00).with_data(self.bcd.clone())
    }

    /// Parses the command, checking every nibble.
    pub fn parse(apdu: &CommandApdu) -> Result<Self, CommandError> {
        expect_header(apdu, Self::NAME, [CLA_ISO, INS_VERIFY, 0x00, 0x00])?;
        let data = data_in_range(
            apdu,
            Self::NAME,
            Self::MIN_DIGITS.div_ceil(2),
            Self::MAX_DIGITS / 2,
        )?;
        let last = data.len() - 1;
        for (offset, &byte) in data.iter().enumerate() {
            let hi_ok = byte >> 4 <= 9;
            let lo = byte & 0x0F;
            // Only the last byte may be padded, and not when that leaves fewer than four
            // digits.
            let lo_ok = lo <= 9 || (lo == 0x0F && offset == last && last >= 2);
            if !hi_ok || !lo_ok {
                return Err(CommandError::InvalidField {
                    command: Self::NAME,
                    field: "PIN BCD digits",
                    offset,
                    found: byte,
                });
            }
        }
        Ok(Self { bcd: data.to_vec() })
    }
}

impl fmt::Debug for VerifyPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyPin")
            .field("digits", &self.digit_count())
            .finish_non_exhaustive()
    }
}

impl Drop for VerifyPin {
    fn drop(&mut self) {
        self.bcd.iter_mut().for_each(|b| *b = 0);
        core::hint::black_box(&self.bcd);
    }
}

impl_command!(VerifyPin => NoData);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{apdu, encoded};

    #[test]
    fn even_and_odd_pins() {
        let even = VerifyPin::from_digits("123456").unwrap();
        assert_eq!(encoded(&even.to_apdu()), "0020000003123456");
        assert_eq!(even.digit_count(), 6);
        assert_eq!(VerifyPin::parse(&apdu("0020000003123456")), Ok(even));

        let odd = VerifyPin::from_digits("12345").unwrap();
        assert_eq!(odd.bcd(), &[0x12, 0x34, 0x5F]);
        assert_eq!(odd.digit_count(), 5);
        assert_eq!(encoded(&odd.to_apdu()), "002000000312345F");
        assert_eq!(VerifyPin::parse(&apdu("002000000312345F")), Ok(odd));

        let max = VerifyPin::from_digits("123456789012").unwrap();
        assert_eq!(encoded(&max.to_apdu()), "0020000006123456789012");
    }

    #[test]
    fn invalid_pins() {
        assert_eq!(
            VerifyPin::from_digits("123"),
            Err(CommandError::InvalidPin {
                length: 3,
                non_digits: 0
            })
        );
        assert_eq!(
            VerifyPin::from_digits("12a4"),
            Err(CommandError::InvalidPin {
                length: 4,
                non_digits: 1
            })
        );
        assert_eq!(
            VerifyPin::from_digits("1234567890123"),
            Err(CommandError::InvalidPin {
                length: 13,
                non_digits: 0
            })
        );
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            VerifyPin::parse(&apdu("002000000312F456")),
            Err(CommandError::InvalidField {
                command: "VERIFY",
                field: "PIN BCD digits",
                offset: 1,
                found: 0xF4
            })
        );
        assert_eq!(
            VerifyPin::parse(&apdu("002000000312345A")),
            Err(CommandError::InvalidField {
                command: "VERIFY",
                field: "PIN BCD digits",
                offset: 2,
                found: 0x5A
            })
        );
        // Two bytes with padding would be three digits.
        assert_eq!(
            VerifyPin::parse(&apdu("0020000002123F")),
            Err(CommandError::InvalidField {
                command: "VERIFY",
                field: "PIN BCD digits",
                offset: 1,
                found: 0x3F
            })
        );
        assert_eq!(
            VerifyPin::parse(&apdu("002000000112")),
            Err(CommandError::DataLengthOutOfRange {
                command: "VERIFY",
                min: 2,
                max: 6,
                found: 1
            })
        );
        assert_eq!(
            VerifyPin::parse(&apdu("0020008003123456")),
            Err(CommandError::WrongP2 {
                command: "VERIFY",
                expected: 0x00,
                found: 0x80
            })
        );
    }

    #[test]
    fn debug_hides_the_pin() {
        let pin = VerifyPin::from_digits("987654").unwrap();
        let text = format!("{pin:?}");
        assert_eq!(text, "VerifyPin { digits: 6, .. }");
    }
}
