//! Why a command or a response does not have the layout of the command it claims to be.

/// A command APDU or response data that does not match a PBOC command's layout.
///
/// `command` names the command (e.g. `"INITIALIZE FOR LOAD"`); data offsets count from the
/// first byte of the command or response data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The class byte is not the command's.
    #[error("{command}: CLA must be {expected:02X}, found {found:02X}")]
    WrongClass {
        /// The command being parsed.
        command: &'static str,
        /// The class byte of this command.
        expected: u8,
        /// The class byte received.
        found: u8,
    },
    /// The instruction byte is not the command's.
    #[error("{command}: INS must be {expected:02X}, found {found:02X}")]
    WrongInstruction {
        /// The command being parsed.
        command: &'static str,
        /// The instruction byte of this command.
        expected: u8,
        /// The instruction byte received.
        found: u8,
    },
    /// P1 is not the command's fixed value.
    #[error("{command}: P1 must be {expected:02X}, found {found:02X}")]
    WrongP1 {
        /// The command being parsed.
        command: &'static str,
        /// The fixed P1.
        expected: u8,
        /// The P1 received.
        found: u8,
    },
    /// P2 is not the command's fixed value.
    #[error("{command}: P2 must be {expected:02X}, found {found:02X}")]
    WrongP2 {
        /// The command being parsed.
        command: &'static str,
        /// The fixed P2.
        expected: u8,
        /// The P2 received.
        found: u8,
    },
    /// A parameter byte outside the values the command allows.
    #[error("{command}: {parameter} must be {expected}, found {found:02X}")]
    InvalidParameter {
        /// The command being parsed.
        command: &'static str,
        /// `"P1"` or `"P2"`.
        parameter: &'static str,
        /// What the parameter may be.
        expected: &'static str,
        /// The byte received.
        found: u8,
    },
    /// The command data (Lc) has the wrong length.
    #[error("{command}: command data (Lc) must be {expected} bytes, found {found}")]
    WrongDataLength {
        /// The command being parsed.
        command: &'static str,
        /// The length of this command's data.
        expected: usize,
        /// The length received.
        found: usize,
    },
    /// The command data length is outside the allowed range.
    #[error("{command}: command data (Lc) must be {min}..={max} bytes, found {found}")]
    DataLengthOutOfRange {
        /// The command being parsed.
        command: &'static str,
        /// Shortest allowed data.
        min: usize,
        /// Longest allowed data.
        max: usize,
        /// The length received.
        found: usize,
    },
    /// The command data length is not `base + step * n` for some `n >= min_steps`.
    #[error(
        "{command}: command data (Lc) must be {base} + {step}*N bytes with N >= {min_steps}, found {found}"
    )]
    DataLengthNotInSteps {
        /// The command being parsed.
        command: &'static str,
        /// Fixed part of the data.
        base: usize,
        /// Size of each repeated element.
        step: usize,
        /// Fewest repeated elements.
        min_steps: usize,
        /// The length received.
        found: usize,
    },
    /// The command needs an Le field and has none.
    #[error("{command}: Le is missing")]
    MissingLe {
        /// The command being parsed.
        command: &'static str,
    },
    /// The expected response length is larger than the command allows.
    #[error("{command}: Ne must be at most {max}, found {found}")]
    NeOutOfRange {
        /// The command being parsed.
        command: &'static str,
        /// Largest Ne allowed.
        max: u32,
        /// The Ne received.
        found: u32,
    },
    /// A byte of the command data that is not a valid value for its field.
    #[error("{command}: {field} at data offset {offset} is invalid: {found:02X}")]
    InvalidField {
        /// The command being parsed.
        command: &'static str,
        /// The field.
        field: &'static str,
        /// Offset of the byte in the command data.
        offset: usize,
        /// The byte received.
        found: u8,
    },
    /// A PIN given as text that is not 4..=12 decimal digits.
    #[error(
        "VERIFY: a PIN must be 4..=12 decimal digits, found {length} characters with {non_digits} non-digits"
    )]
    InvalidPin {
        /// Number of characters given.
        length: usize,
        /// How many of them are not `0`..=`9`.
        non_digits: usize,
    },
    /// Response data of the wrong length.
    #[error("{command} response: data must be {expected} bytes, found {found}")]
    WrongResponseLength {
        /// The command whose response is parsed.
        command: &'static str,
        /// The length of this response.
        expected: usize,
        /// The length received.
        found: usize,
    },
    /// No command of the dispatcher's set has this header.
    #[error("no {set} command has CLA {cla:02X} INS {ins:02X} P1 {p1:02X} P2 {p2:02X}")]
    UnknownCommand {
        /// `"card"` or `"PSAM"`.
        set: &'static str,
        /// Class byte.
        cla: u8,
        /// Instruction byte.
        ins: u8,
        /// P1.
        p1: u8,
        /// P2.
        p2: u8,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_and_where() {
        let e = CommandError::WrongDataLength {
            command: "CREDIT FOR LOAD",
            expected: 11,
            found: 10,
        };
        assert_eq!(
            e.to_string(),
            "CREDIT FOR LOAD: command data (Lc) must be 11 bytes, found 10"
        );
        let e = CommandError::InvalidField {
            command: "GET TRANSACTION PROOF",
            field: "transaction type",
            offset: 0,
            found: 0x0A,
        };
        assert_eq!(
            e.to_string(),
            "GET TRANSACTION PROOF: transaction type at data offset 0 is invalid: 0A"
        );
        let e = CommandError::UnknownCommand {
            set: "card",
            cla: 0x80,
            ins: 0x50,
            p1: 0x07,
            p2: 0x01,
        };
        assert_eq!(
            e.to_string(),
            "no card command has CLA 80 INS 50 P1 07 P2 01"
        );
    }
}
