//! Which PBOC application a command addresses: electronic deposit or electronic purse.

/// The PBOC 2.0 application selected by P2 of GET BALANCE and the INITIALIZE commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Application {
    /// Electronic deposit (电子存折), P2 `01`. Needs a PIN; supports cash withdrawal,
    /// unload and an overdraw limit.
    Ed,
    /// Electronic purse (电子钱包), P2 `02`.
    Ep,
}

impl Application {
    /// The P2 value that selects this application.
    pub fn p2(self) -> u8 {
        match self {
            Self::Ed => 0x01,
            Self::Ep => 0x02,
        }
    }

    /// The application a P2 value selects, if any.
    pub fn from_p2(p2: u8) -> Option<Self> {
        match p2 {
            0x01 => Some(Self::Ed),
            0x02 => Some(Self::Ep),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p2_values() {
        assert_eq!(Application::Ed.p2(), 0x01);
        assert_eq!(Application::Ep.p2(), 0x02);
        assert_eq!(Application::from_p2(0x01), Some(Application::Ed));
        assert_eq!(Application::from_p2(0x02), Some(Application::Ep));
        assert_eq!(Application::from_p2(0x00), None);
        assert_eq!(Application::from_p2(0x03), None);
    }
}
