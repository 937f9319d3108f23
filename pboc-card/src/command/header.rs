//! Header and length checks shared by the command parsers (crate-internal).

use crate::apdu::CommandApdu;
use crate::application::Application;
use crate::command::error::CommandError;
use crate::reader::Reader;

/// Class byte of ISO 7816-4 inter-industry commands.
pub(crate) const CLA_ISO: u8 = 0x00;
/// Class byte of the PBOC proprietary commands.
pub(crate) const CLA_PBOC: u8 = 0x80;

pub(crate) const INS_VERIFY: u8 = 0x20;
pub(crate) const INS_SELECT: u8 = 0xA4;
pub(crate) const INS_READ_BINARY: u8 = 0xB0;
pub(crate) const INS_READ_RECORD: u8 = 0xB2;
pub(crate) const INS_GET_RESPONSE: u8 = 0xC0;
pub(crate) const INS_INITIALIZE: u8 = 0x50;
pub(crate) const INS_CREDIT_FOR_LOAD: u8 = 0x52;
pub(crate) const INS_DEBIT: u8 = 0x54;
pub(crate) const INS_UPDATE_OVERDRAW_LIMIT: u8 = 0x58;
pub(crate) const INS_GET_TRANSACTION_PROOF: u8 = 0x5A;
pub(crate) const INS_GET_BALANCE: u8 = 0x5C;
pub(crate) const INS_UPDATE_CAPP_DATA_CACHE: u8 = 0xDC;
pub(crate) const INS_INIT_SAM_FOR_PURCHASE: u8 = 0x70;
pub(crate) const INS_CREDIT_SAM_FOR_PURCHASE: u8 = 0x72;
pub(crate) const INS_DELIVERY_KEY: u8 = 0x1A;
pub(crate) const INS_CIPHER_DATA: u8 = 0xFA;

/// P1 of the INITIALIZE (`80 50`) variants.
pub(crate) const P1_INIT_LOAD: u8 = 0x00;
pub(crate) const P1_INIT_PURCHASE: u8 = 0x01;
pub(crate) const P1_INIT_CASH_WITHDRAW: u8 = 0x02;
pub(crate) const P1_INIT_CAPP_PURCHASE: u8 = 0x03;
pub(crate) const P1_INIT_UPDATE: u8 = 0x04;
pub(crate) const P1_INIT_UNLOAD: u8 = 0x05;
/// P1 of the DEBIT (`80 54`) variants.
pub(crate) const P1_DEBIT_PURCHASE: u8 = 0x01;
pub(crate) const P1_DEBIT_UNLOAD: u8 = 0x03;

/// Checks CLA and INS.
pub(crate) fn expect_cla_ins(
    apdu: &CommandApdu,
    command: &'static str,
    cla: u8,
    ins: u8,
) -> Result<(), CommandError> {
    if apdu.cla != cla {
        return Err(CommandError::WrongClass {
            command,
            expected: cla,
            found: apdu.cla,
        });
    }
    if apdu.ins != ins {
        return Err(CommandError::WrongInstruction {
            command,
            expected: ins,
            found: apdu.ins,
        });
    }
    Ok(())
}

/// Checks CLA, INS, P1 and P2 against fixed values.
pub(crate) fn expect_header(
    apdu: &CommandApdu,
    command: &'static str,
    [cla, ins, p1, p2]: [u8; 4],
) -> Result<(), CommandError> {
    expect_cla_ins(apdu, command, cla, ins)?;
    expect_p1(apdu, command, p1)?;
    expect_p2(apdu, command, p2)
}

/// Checks P1 against a fixed value.
pub(crate) fn expect_p1(
    apdu: &CommandApdu,
    command: &'static str,
    p1: u8,
) -> Result<(), CommandError> {
    if apdu.p1 == p1 {
        Ok(())
    } else {
        Err(CommandError::WrongP1 {
            command,
            expected: p1,
            found: apdu.p1,
        })
    }
}

/// Checks P2 against a fixed value.
pub(crate) fn expect_p2(
    apdu: &CommandApdu,
    command: &'static str,
    p2: u8,
) -> Result<(), CommandError> {
    if apdu.p2 == p2 {
        Ok(())
    } else {
        Err(CommandError::WrongP2 {
            command,
            expected: p2,
            found: apdu.p2,
        })
    }
}

/// The application P2 selects.
pub(crate) fn application_p2(
    apdu: &CommandApdu,
    command: &'static str,
) -> Result<Application, CommandError> {
    Application::from_p2(apdu.p2).ok_or(CommandError::InvalidParameter {
        command,
        parameter: "P2",
        expected: "01 (ED) or 02 (EP)",
        found: apdu.p2,
    })
}

/// A reader over command data that must be exactly `len` bytes long.
pub(crate) fn exact_data<'a>(
    apdu: &'a CommandApdu,
    command: &'static str,
    len: usize,
) -> Result<Reader<'a, CommandError>, CommandError> {
    let error = CommandError::WrongDataLength {
        command,
        expected: len,
        found: apdu.data.len(),
    };
    if apdu.data.len() == len {
        Ok(Reader::new(&apdu.data, error))
    } else {
        Err(error)
    }
}

/// Command data whose length lies in `min..=max`.
pub(crate) fn data_in_range<'a>(
    apdu: &'a CommandApdu,
    command: &'static str,
    min: usize,
    max: usize,
) -> Result<&'a [u8], CommandError> {
    let found = apdu.data.len();
    if (min..=max).contains(&found) {
        Ok(&apdu.data)
    } else {
        Err(CommandError::DataLengthOutOfRange {
            command,
            min,
            max,
            found,
        })
    }
}

/// A reader over response data that must be exactly `len` bytes long.
pub(crate) fn exact_response<'a>(
    data: &'a [u8],
    command: &'static str,
    len: usize,
) -> Result<Reader<'a, CommandError>, CommandError> {
    let error = CommandError::WrongResponseLength {
        command,
        expected: len,
        found: data.len(),
    };
    if data.len() == len {
        Ok(Reader::new(data, error))
    } else {
        Err(error)
    }
}

/// The short Le of a command whose Le is a field of its own (READ RECORD, READ BINARY,
/// GET RESPONSE): the raw byte, `00` standing for 256.
pub(crate) fn short_le(apdu: &CommandApdu, command: &'static str) -> Result<u8, CommandError> {
    match apdu.ne {
        None => Err(CommandError::MissingLe { command }),
        Some(ne) if ne > 256 => Err(CommandError::NeOutOfRange {
            command,
            max: 256,
            found: ne,
        }),
        // 256 maps to the Le byte 00; every other value fits a byte.
        Some(ne) => Ok((ne & 0xFF) as u8),
    }
}

/// Ne from a short Le byte (`00` = 256).
pub(crate) fn ne_from_le(le: u8) -> u32 {
    if le == 0 { 256 } else { u32::from(le) }
}

/// Length of the data of INITIALIZE FOR LOAD / PURCHASE / CASH WITHDRAW / CAPP PURCHASE /
/// UNLOAD: key index(1), amount(4), terminal id(6).
pub(crate) const INIT_DATA_LEN: usize = 11;

/// The data of the amount-carrying INITIALIZE commands.
pub(crate) fn init_data(key_index: u8, amount: u32, terminal: &[u8; 6]) -> Vec<u8> {
    let mut data = Vec::with_capacity(INIT_DATA_LEN);
    data.push(key_index);
    data.extend_from_slice(&amount.to_be_bytes());
    data.extend_from_slice(terminal);
    data
}

/// Parses the data of the amount-carrying INITIALIZE commands: (key index, amount,
/// terminal id).
pub(crate) fn parse_init_data(
    apdu: &CommandApdu,
    command: &'static str,
) -> Result<(u8, u32, [u8; 6]), CommandError> {
    let mut r = exact_data(apdu, command, INIT_DATA_LEN)?;
    Ok((r.u8()?, r.u32()?, r.array()?))
}
