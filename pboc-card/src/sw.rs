//! Status words (`SW1 SW2`) returned by PBOC 2.0 cards and PSAMs.
//!
//! Every `u16` converts to a [`StatusWord`] and back unchanged: the values the PBOC
//! electronic purse/deposit application gives a meaning to have their own variants, the rest
//! land in [`StatusWord::Other`].

use core::fmt;

/// A status word, with the meanings the PBOC 2.0 e-purse/e-deposit application gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusWord {
    /// `9000`: command completed.
    Success,
    /// `9302`: MAC invalid.
    MacInvalid,
    /// `9303`: application permanently locked.
    ApplicationLocked,
    /// `9401`: insufficient balance.
    InsufficientBalance,
    /// `9403`: key index not supported.
    KeyIndexNotSupported,
    /// `9406`: required MAC unavailable.
    MacUnavailable,
    /// `6985`: conditions of use not satisfied (e.g. no preceding INITIALIZE).
    ConditionsNotSatisfied,
    /// `6982`: security status not satisfied.
    SecurityStatusNotSatisfied,
    /// `6983`: key or PIN blocked.
    AuthenticationBlocked,
    /// `63Cx`: PIN wrong, `x` tries left (0..=15; only the low four bits are encoded).
    PinWrong {
        /// Remaining tries.
        tries_left: u8,
    },
    /// `6700`: wrong length (Lc or Le).
    WrongLength,
    /// `6A82`: file not found.
    FileNotFound,
    /// `6A83`: record not found.
    RecordNotFound,
    /// `6A86`: incorrect P1 or P2.
    IncorrectP1P2,
    /// `6A88`: key (referenced data) not found.
    KeyNotFound,
    /// `6988`: secure-messaging MAC incorrect.
    SecureMessagingMacIncorrect,
    /// `6D00`: instruction not supported (ISO 7816-4).
    InsNotSupported,
    /// `6E00`: class not supported (ISO 7816-4).
    ClaNotSupported,
    /// `61xx`: response waiting, `xx` bytes available through GET RESPONSE (T=0; `00` means
    /// 256 or more).
    BytesAvailable(u8),
    /// Any other status word.
    Other(u16),
}

impl StatusWord {
    /// The status word from its two bytes.
    pub fn from_bytes(sw1: u8, sw2: u8) -> Self {
        Self::from(u16::from_be_bytes([sw1, sw2]))
    }

    /// The two bytes `SW1 SW2`.
    pub fn to_bytes(self) -> [u8; 2] {
        u16::from(self).to_be_bytes()
    }

    /// The numeric value, e.g. `0x9000`.
    pub fn code(self) -> u16 {
        u16::from(self)
    }

    /// `true` for `9000` only. `61xx` ([`StatusWord::BytesAvailable`]) also reports normal
    /// processing, but the data still has to be fetched with GET RESPONSE.
    pub fn is_success(self) -> bool {
        self == Self::Success
    }

    /// What the status word means, in English.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::MacInvalid => "MAC invalid",
            Self::ApplicationLocked => "application permanently locked",
            Self::InsufficientBalance => "insufficient balance",
            Self::KeyIndexNotSupported => "key index not supported",
            Self::MacUnavailable => "required MAC unavailable",
            Self::ConditionsNotSatisfied => "conditions of use not satisfied",
            Self::SecurityStatusNotSatisfied => "security status not satisfied",
            Self::AuthenticationBlocked => "key or PIN blocked",
            Self::PinWrong { .. } => "PIN wrong",
            Self::WrongLength => "wrong length",
            Self::FileNotFound => "file not found",
            Self::RecordNotFound => "record not found",
            Self::IncorrectP1P2 => "incorrect P1 or P2",
            Self::KeyNotFound => "key not found",
            Self::SecureMessagingMacIncorrect => "secure-messaging MAC incorrect",
            Self::InsNotSupported => "instruction not supported",
            Self::ClaNotSupported => "class not supported",
            Self::BytesAvailable(_) => "response bytes available",
            Self::Other(_) => "unknown status",
        }
    }
}

impl From<u16> for StatusWord {
    fn from(value: u16) -> Self {
        match value {
            0x9000 => Self::Success,
            0x9302 => Self::MacInvalid,
            0x9303 => Self::ApplicationLocked,
            0x9401 => Self::InsufficientBalance,
            0x9403 => Self::KeyIndexNotSupported,
            0x9406 => Self::MacUnavailable,
            0x6985 => Self::ConditionsNotSatisfied,
            0x6982 => Self::SecurityStatusNotSatisfied,
            0x6983 => Self::AuthenticationBlocked,
            0x63C0..=0x63CF => Self::PinWrong {
                tries_left: (value & 0x0F) as u8,
            },
            0x6700 => Self::WrongLength,
            0x6A82 => Self::FileNotFound,
            0x6A83 => Self::RecordNotFound,
            0x6A86 => Self::IncorrectP1P2,
            0x6A88 => Self::KeyNotFound,
            0x6988 => Self::SecureMessagingMacIncorrect,
            0x6D00 => Self::InsNotSupported,
            0x6E00 => Self::ClaNotSupported,
            0x6100..=0x61FF => Self::BytesAvailable((value & 0xFF) as u8),
            other => Self::Other(other),
        }
    }
}

impl From<StatusWord> for u16 {
    fn from(sw: StatusWord) -> Self {
        match sw {
            StatusWord::Success => 0x9000,
            StatusWord::MacInvalid => 0x9302,
            StatusWord::ApplicationLocked => 0x9303,
            StatusWord::InsufficientBalance => 0x9401,
            StatusWord::KeyIndexNotSupported => 0x9403,
            StatusWord::MacUnavailable => 0x9406,
            StatusWord::ConditionsNotSatisfied => 0x6985,
            StatusWord::SecurityStatusNotSatisfied => 0x6982,
            StatusWord::AuthenticationBlocked => 0x6983,
            StatusWord::PinWrong { tries_left } => 0x63C0 | u16::from(tries_left & 0x0F),
            StatusWord::WrongLength => 0x6700,
            StatusWord::FileNotFound => 0x6A82,
            StatusWord::RecordNotFound => 0x6A83,
            StatusWord::IncorrectP1P2 => 0x6A86,
            StatusWord::KeyNotFound => 0x6A88,
            StatusWord::SecureMessagingMacIncorrect => 0x6988,
            StatusWord::InsNotSupported => 0x6D00,
            StatusWord::ClaNotSupported => 0x6E00,
            StatusWord::BytesAvailable(n) => 0x6100 | u16::from(n),
            StatusWord::Other(code) => code,
        }
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} {}", u16::from(*self), self.meaning())?;
        match self {
            Self::PinWrong { tries_left } => write!(f, ", {} tries left", tries_left & 0x0F),
            Self::BytesAvailable(0) => f.write_str(", 256 bytes"),
            Self::BytesAvailable(n) => write!(f, ", {n} bytes"),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_u16_round_trips() {
        for code in 0..=u16::MAX {
            assert_eq!(u16::from(StatusWord::from(code)), code, "{code:04X}");
        }
    }

    #[test]
    fn named_values() {
        let cases = [
            (0x9000, StatusWord::Success),
            (0x9302, StatusWord::MacInvalid),
            (0x9303, StatusWord::ApplicationLocked),
            (0x9401, StatusWord::InsufficientBalance),
            (0x9403, StatusWord::KeyIndexNotSupported),
            (0x9406, StatusWord::MacUnavailable),
            (0x6985, StatusWord::ConditionsNotSatisfied),
            (0x6982, StatusWord::SecurityStatusNotSatisfied),
            (0x6983, StatusWord::AuthenticationBlocked),
            (0x63C3, StatusWord::PinWrong { tries_left: 3 }),
            (0x6700, StatusWord::WrongLength),
            (0x6A82, StatusWord::FileNotFound),
            (0x6A83, StatusWord::RecordNotFound),
            (0x6A86, StatusWord::IncorrectP1P2),
            (0x6A88, StatusWord::KeyNotFound),
            (0x6988, StatusWord::SecureMessagingMacIncorrect),
            (0x6D00, StatusWord::InsNotSupported),
            (0x6E00, StatusWord::ClaNotSupported),
            (0x6110, StatusWord::BytesAvailable(0x10)),
            (0x6A81, StatusWord::Other(0x6A81)),
        ];
        for (code, sw) in cases {
            assert_eq!(StatusWord::from(code), sw);
            assert_eq!(sw.code(), code);
        }
        assert_eq!(
            StatusWord::from_bytes(0x94, 0x01),
            StatusWord::InsufficientBalance
        );
        assert_eq!(StatusWord::InsufficientBalance.to_bytes(), [0x94, 0x01]);
    }

    #[test]
    fn only_9000_is_success() {
        assert!(StatusWord::Success.is_success());
        assert!(!StatusWord::BytesAvailable(4).is_success());
        assert!(!StatusWord::Other(0x9001).is_success());
    }

    #[test]
    fn display_includes_code_and_meaning() {
        assert_eq!(StatusWord::Success.to_string(), "9000 success");
        assert_eq!(
            StatusWord::InsufficientBalance.to_string(),
            "9401 insufficient balance"
        );
        assert_eq!(
            StatusWord::PinWrong { tries_left: 2 }.to_string(),
            "63C2 PIN wrong, 2 tries left"
        );
        assert_eq!(
            StatusWord::BytesAvailable(8).to_string(),
            "6108 response bytes available, 8 bytes"
        );
        assert_eq!(
            StatusWord::BytesAvailable(0).to_string(),
            "6100 response bytes available, 256 bytes"
        );
        assert_eq!(StatusWord::Other(0x6A81).to_string(), "6A81 unknown status");
    }

    #[test]
    fn pin_tries_are_masked_to_four_bits() {
        assert_eq!(StatusWord::PinWrong { tries_left: 0x12 }.code(), 0x63C2);
    }
}
