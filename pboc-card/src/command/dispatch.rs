//! Dispatch: which typed command a command APDU is, for the card and the PSAM side.

use crate::apdu::CommandApdu;
use crate::command::balance::GetBalance;
use crate::command::capp::{InitializeForCappPurchase, UpdateCappDataCache};
use crate::command::cash::InitializeForCashWithdraw;
use crate::command::cipher_data::CipherData;
use crate::command::delivery_key::DeliveryKey;
use crate::command::error::CommandError;
use crate::command::get_response::GetResponse;
use crate::command::header::{
    CLA_ISO, CLA_PBOC, INS_CIPHER_DATA, INS_CREDIT_FOR_LOAD, INS_CREDIT_SAM_FOR_PURCHASE,
    INS_DEBIT, INS_DELIVERY_KEY, INS_GET_BALANCE, INS_GET_RESPONSE, INS_GET_TRANSACTION_PROOF,
    INS_INIT_SAM_FOR_PURCHASE, INS_INITIALIZE, INS_READ_BINARY, INS_READ_RECORD, INS_SELECT,
    INS_UPDATE_CAPP_DATA_CACHE, INS_UPDATE_OVERDRAW_LIMIT, INS_VERIFY, P1_DEBIT_PURCHASE,
    P1_DEBIT_UNLOAD, P1_INIT_CAPP_PURCHASE, P1_INIT_CASH_WITHDRAW, P1_INIT_LOAD, P1_INIT_PURCHASE,
    P1_INIT_UNLOAD, P1_INIT_UPDATE,
};
use crate::command::load::{CreditForLoad, InitializeForLoad};
use crate::command::overdraw::{InitializeForUpdate, UpdateOverdrawLimit};
use crate::command::proof::GetTransactionProof;
use crate::command::purchase::{DebitForPurchase, InitializeForPurchase};
use crate::command::read::{ReadBinary, ReadRecord};
use crate::command::sam_info::{PSAM_INFO_SFI, ReadPsamInfo, ReadTerminalId, TERMINAL_ID_SFI};
use crate::command::sam_purchase::{CreditSamForPurchase, InitSamForPurchase};
use crate::command::select::Select;
use crate::command::unload::{DebitForUnload, InitializeForUnload};
use crate::command::verify::VerifyPin;

/// Every command a PBOC ED/EP card understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardCommand {
    /// SELECT by AID.
    Select(Select),
    /// READ RECORD.
    ReadRecord(ReadRecord),
    /// READ BINARY.
    ReadBinary(ReadBinary),
    /// VERIFY PIN.
    VerifyPin(VerifyPin),
    /// GET RESPONSE.
    GetResponse(GetResponse),
    /// GET BALANCE.
    GetBalance(GetBalance),
    /// INITIALIZE FOR LOAD.
    InitializeForLoad(InitializeForLoad),
    /// INITIALIZE FOR PURCHASE.
    InitializeForPurchase(InitializeForPurchase),
    /// INITIALIZE FOR CASH WITHDRAW.
    InitializeForCashWithdraw(InitializeForCashWithdraw),
    /// INITIALIZE FOR CAPP PURCHASE.
    InitializeForCappPurchase(InitializeForCappPurchase),
    /// INITIALIZE FOR UNLOAD.
    InitializeForUnload(InitializeForUnload),
    /// INITIALIZE FOR UPDATE.
    InitializeForUpdate(InitializeForUpdate),
    /// CREDIT FOR LOAD.
    CreditForLoad(CreditForLoad),
    /// DEBIT FOR PURCHASE / CASH WITHDRAW / CAPP PURCHASE.
    DebitForPurchase(DebitForPurchase),
    /// DEBIT FOR UNLOAD.
    DebitForUnload(DebitForUnload),
    /// UPDATE OVERDRAW LIMIT.
    UpdateOverdrawLimit(UpdateOverdrawLimit),
    /// UPDATE CAPP DATA CACHE.
    UpdateCappDataCache(UpdateCappDataCache),
    /// GET TRANSACTION PROOF.
    GetTransactionProof(GetTransactionProof),
}

impl CardCommand {
    /// The command APDU.
    pub fn to_apdu(&self) -> CommandApdu {
        match self {
            Self::Select(c) => c.to_apdu(),
            Self::ReadRecord(c) => c.to_apdu(),
            Self::ReadBinary(c) => c.to_apdu(),
            Self::VerifyPin(c) => c.to_apdu(),
            Self::GetResponse(c) => c.to_apdu(),
            Self::GetBalance(c) => c.to_apdu(),
            Self::InitializeForLoad(c) => c.to_apdu(),
            Self::InitializeForPurchase(c) => c.to_apdu(),
            Self::InitializeForCashWithdraw(c) => c.to_apdu(),
            Self::InitializeForCappPurchase(c) => c.to_apdu(),
            Self::InitializeForUnload(c) => c.to_apdu(),
            Self::InitializeForUpdate(c) => c.to_apdu(),
            Self::CreditForLoad(c) => c.to_apdu(),
            Self::DebitForPurchase(c) => c.to_apdu(),
            Self::DebitForUnload(c) => c.to_apdu(),
            Self::UpdateOverdrawLimit(c) => c.to_apdu(),
            Self::UpdateCappDataCache(c) => c.to_apdu(),
            Self::GetTransactionProof(c) => c.to_apdu(),
        }
    }

    /// The command's name (e.g. `"GET BALANCE"`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Select(_) => Select::NAME,
            Self::ReadRecord(_) => ReadRecord::NAME,
            Self::ReadBinary(_) => ReadBinary::NAME,
            Self::VerifyPin(_) => VerifyPin::NAME,
            Self::GetResponse(_) => GetResponse::NAME,
            Self::GetBalance(_) => GetBalance::NAME,
            Self::InitializeForLoad(_) => InitializeForLoad::NAME,
            Self::InitializeForPurchase(_) => InitializeForPurchase::NAME,
            Self::InitializeForCashWithdraw(_) => InitializeForCashWithdraw::NAME,
            Self::InitializeForCappPurchase(_) => InitializeForCappPurchase::NAME,
            Self::InitializeForUnload(_) => InitializeForUnload::NAME,
            Self::InitializeForUpdate(_) => InitializeForUpdate::NAME,
            Self::CreditForLoad(_) => CreditForLoad::NAME,
            Self::DebitForPurchase(_) => DebitForPurchase::NAME,
            Self::DebitForUnload(_) => DebitForUnload::NAME,
            Self::UpdateOverdrawLimit(_) => UpdateOverdrawLimit::NAME,
            Self::UpdateCappDataCache(_) => UpdateCappDataCache::NAME,
            Self::GetTransactionProof(_) => GetTransactionProof::NAME,
        }
    }
}

/// Which card command `apdu` is, chosen by CLA, INS and (for INITIALIZE and DEBIT) P1, then
/// parsed by that command; its errors pass through.
pub fn parse_card_command(apdu: &CommandApdu) -> Result<CardCommand, CommandError> {
    Ok(match (apdu.cla, apdu.ins, apdu.p1) {
        (CLA_ISO, INS_SELECT, _) => CardCommand::Select(Select::parse(apdu)?),
        (CLA_ISO, INS_READ_RECORD, _) => CardCommand::ReadRecord(ReadRecord::parse(apdu)?),
        (CLA_ISO, INS_READ_BINARY, _) => CardCommand::ReadBinary(ReadBinary::parse(apdu)?),
        (CLA_ISO, INS_VERIFY, _) => CardCommand::VerifyPin(VerifyPin::parse(apdu)?),
        (CLA_ISO, INS_GET_RESPONSE, _) => CardCommand::GetResponse(GetResponse::parse(apdu)?),
        (CLA_PBOC, INS_GET_BALANCE, _) => CardCommand::GetBalance(GetBalance::parse(apdu)?),
        (CLA_PBOC, INS_INITIALIZE, P1_INIT_LOAD) => {
            CardCommand::InitializeForLoad(InitializeForLoad::parse(apdu)?)
        }
        (CLA_PBOC, INS_INITIALIZE, P1_INIT_PURCHASE) => {
            CardCommand::InitializeForPurchase(InitializeForPurchase::parse(apdu)?)
        }
        (CLA_PBOC, INS_INITIALIZE, P1_INIT_CASH_WITHDRAW) => {
            CardCommand::InitializeForCashWithdraw(InitializeForCashWithdraw::parse(apdu)?)
        }
        (CLA_PBOC, INS_INITIALIZE, P1_INIT_CAPP_PURCHASE) => {
            CardCommand::InitializeForCappPurchase(InitializeForCappPurchase::parse(apdu)?)
        }
        (CLA_PBOC, INS_INITIALIZE, P1_INIT_UPDATE) => {
            CardCommand::InitializeForUpdate(InitializeForUpdate::parse(apdu)?)
        }
        (CLA_PBOC, INS_INITIALIZE, P1_INIT_UNLOAD) => {
            CardCommand::InitializeForUnload(InitializeForUnload::parse(apdu)?)
        }
        (CLA_PBOC, INS_CREDIT_FOR_LOAD, _) => {
            CardCommand::CreditForLoad(CreditForLoad::parse(apdu)?)
        }
        (CLA_PBOC, INS_DEBIT, P1_DEBIT_PURCHASE) => {
            CardCommand::DebitForPurchase(DebitForPurchase::parse(apdu)?)
        }
        (CLA_PBOC, INS_DEBIT, P1_DEBIT_UNLOAD) => {
            CardCommand::DebitForUnload(DebitForUnload::parse(apdu)?)
        }
        (CLA_PBOC, INS_UPDATE_OVERDRAW_LIMIT, _) => {
            CardCommand::UpdateOverdrawLimit(UpdateOverdrawLimit::parse(apdu)?)
        }
        (CLA_PBOC, INS_UPDATE_CAPP_DATA_CACHE, _) => {
            CardCommand::UpdateCappDataCache(UpdateCappDataCache::parse(apdu)?)
        }
        (CLA_PBOC, INS_GET_TRANSACTION_PROOF, _) => {
            CardCommand::GetTransactionProof(GetTransactionProof::parse(apdu)?)
        }
        _ => return Err(unknown("card", apdu)),
    })
}

/// Every PSAM command a PBOC terminal sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsamCommand {
    /// SELECT by AID.
    Select(Select),
    /// GET RESPONSE.
    GetResponse(GetResponse),
    /// READ BINARY of the terminal id (`00 B0 96 00`).
    ReadTerminalId(ReadTerminalId),
    /// READ BINARY of the public information (`00 B0 95 00`).
    ReadPsamInfo(ReadPsamInfo),
    /// Any other READ BINARY.
    ReadBinary(ReadBinary),
    /// INIT SAM FOR PURCHASE.
    InitSamForPurchase(InitSamForPurchase),
    /// CREDIT SAM FOR PURCHASE.
    CreditSamForPurchase(CreditSamForPurchase),
    /// DELIVERY KEY.
    DeliveryKey(DeliveryKey),
    /// CIPHER DATA.
    CipherData(CipherData),
}

impl PsamCommand {
    /// The command APDU.
    pub fn to_apdu(&self) -> CommandApdu {
        match self {
            Self::Select(c) => c.to_apdu(),
            Self::GetResponse(c) => c.to_apdu(),
            Self::ReadTerminalId(c) => c.to_apdu(),
            Self::ReadPsamInfo(c) => c.to_apdu(),
            Self::ReadBinary(c) => c.to_apdu(),
            Self::InitSamForPurchase(c) => c.to_apdu(),
            Self::CreditSamForPurchase(c) => c.to_apdu(),
            Self::DeliveryKey(c) => c.to_apdu(),
            Self::CipherData(c) => c.to_apdu(),
        }
    }

    /// The command's name (e.g. `"INIT SAM FOR PURCHASE"`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Select(_) => Select::NAME,
            Self::GetResponse(_) => GetResponse::NAME,
            Self::ReadTerminalId(_) => ReadTerminalId::NAME,
            Self::ReadPsamInfo(_) => ReadPsamInfo::NAME,
            Self::ReadBinary(_) => ReadBinary::NAME,
            Self::InitSamForPurchase(_) => InitSamForPurchase::NAME,
            Self::CreditSamForPurchase(_) => CreditSamForPurchase::NAME,
            Self::DeliveryKey(_) => DeliveryKey::NAME,
            Self::CipherData(_) => CipherData::NAME,
        }
    }
}

/// Which PSAM command `apdu` is, chosen by CLA, INS and (for READ BINARY) P1/P2, then
/// parsed by that command; its errors pass through.
pub fn parse_psam_command(apdu: &CommandApdu) -> Result<PsamCommand, CommandError> {
    const TERMINAL_ID_P1: u8 = 0x80 | TERMINAL_ID_SFI;
    const PSAM_INFO_P1: u8 = 0x80 | PSAM_INFO_SFI;
    Ok(match (apdu.cla, apdu.ins, apdu.p1, apdu.p2) {
        (CLA_ISO, INS_SELECT, _, _) => PsamCommand::Select(Select::parse(apdu)?),
        (CLA_ISO, INS_GET_RESPONSE, _, _) => PsamCommand::GetResponse(GetResponse::parse(apdu)?),
        (CLA_ISO, INS_READ_BINARY, TERMINAL_ID_P1, 0x00) => {
            PsamCommand::ReadTerminalId(ReadTerminalId::parse(apdu)?)
        }
        (CLA_ISO, INS_READ_BINARY, PSAM_INFO_P1, 0x00) => {
            PsamCommand::ReadPsamInfo(ReadPsamInfo::parse(apdu)?)
        }
        (CLA_ISO, INS_READ_BINARY, _, _) => PsamCommand::ReadBinary(ReadBinary::parse(apdu)?),
        (CLA_PBOC, INS_INIT_SAM_FOR_PURCHASE, _, _) => {
            PsamCommand::InitSamForPurchase(InitSamForPurchase::parse(apdu)?)
        }
        (CLA_PBOC, INS_CREDIT_SAM_FOR_PURCHASE, _, _) => {
            PsamCommand::CreditSamForPurchase(CreditSamForPurchase::parse(apdu)?)
        }
        (CLA_PBOC, INS_DELIVERY_KEY, _, _) => PsamCommand::DeliveryKey(DeliveryKey::parse(apdu)?),
        (CLA_PBOC, INS_CIPHER_DATA, _, _) => PsamCommand::CipherData(CipherData::parse(apdu)?),
        _ => return Err(unknown("PSAM", apdu)),
    })
}

fn unknown(set: &'static str, apdu: &CommandApdu) -> CommandError {
    CommandError::UnknownCommand {
        set,
        cla: apdu.cla,
        ins: apdu.ins,
        p1: apdu.p1,
        p2: apdu.p2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::Application;
    use crate::command::cipher_data::CipherMode;
    use crate::command::read::BinaryTarget;
    use crate::test_util::{apdu, encoded, hex};
    use crate::transaction_type::TransactionType;

    const T: [u8; 6] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
    const DATE: [u8; 4] = [0x20, 0x24, 0x05, 0x01];
    const TIME: [u8; 3] = [0x12, 0x00, 0x00];

    fn card_commands() -> Vec<(CardCommand, &'static str)> {
        vec![
            (
                CardCommand::Select(Select {
                    aid: hex("A000000003869807"),
                }),
                "00A4040008A00000000386980700",
            ),
            (
                CardCommand::ReadRecord(ReadRecord {
                    record: 1,
                    sfi: Some(0x18),
                    le: 0x17,
                }),
                "00B201C417",
            ),
            (
                CardCommand::ReadBinary(ReadBinary {
                    target: BinaryTarget::ShortEf {
                        sfi: 0x15,
                        offset: 0,
                    },
                    le: 0x1E,
                }),
                "00B095001E",
            ),
            (
                CardCommand::VerifyPin(VerifyPin::from_digits("123456").unwrap()),
                "0020000003123456",
            ),
            (
                CardCommand::GetResponse(GetResponse { le: 0x0F }),
                "00C000000F",
            ),
            (
                CardCommand::GetBalance(GetBalance {
                    application: Application::Ep,
                }),
                "805C000204",
            ),
            (
                CardCommand::InitializeForLoad(InitializeForLoad {
                    application: Application::Ep,
                    key_index: 1,
                    amount: 1000,
                    terminal: T,
                }),
                "805000020B01000003E811223344556610",
            ),
            (
                CardCommand::InitializeForPurchase(InitializeForPurchase {
                    application: Application::Ed,
                    key_index: 1,
                    amount: 1000,
                    terminal: T,
                }),
                "805001010B01000003E81122334455660F",
            ),
            (
                CardCommand::InitializeForCashWithdraw(InitializeForCashWithdraw {
                    key_index: 1,
                    amount: 1000,
                    terminal: T,
                }),
                "805002010B01000003E81122334455660F",
            ),
            (
                CardCommand::InitializeForCappPurchase(InitializeForCappPurchase {
                    key_index: 1,
                    amount: 1000,
                    terminal: T,
                }),
                "805003020B01000003E81122334455660F",
            ),
            (
                CardCommand::InitializeForUpdate(InitializeForUpdate {
                    key_index: 1,
                    terminal: T,
                }),
                "80500401070111223344556613",
            ),
            (
                CardCommand::InitializeForUnload(InitializeForUnload {
                    key_index: 1,
                    amount: 1000,
                    terminal: T,
                }),
                "805005010B01000003E811223344556610",
            ),
            (
                CardCommand::CreditForLoad(CreditForLoad {
                    date: DATE,
                    time: TIME,
                    mac2: [1, 2, 3, 4],
                }),
                "805200000B202405011200000102030404",
            ),
            (
                CardCommand::DebitForPurchase(DebitForPurchase {
                    terminal_seq: 7,
                    date: DATE,
                    time: TIME,
                    mac1: [1, 2, 3, 4],
                }),
                "805401000F00000007202405011200000102030408",
            ),
            (
                CardCommand::DebitForUnload(DebitForUnload {
                    date: DATE,
                    time: TIME,
                    mac2: [1, 2, 3, 4],
                }),
                "805403000B202405011200000102030404",
            ),
            (
                CardCommand::UpdateOverdrawLimit(UpdateOverdrawLimit {
                    new_limit: 0x0186A0,
                    date: DATE,
                    time: TIME,
                    mac2: [1, 2, 3, 4],
                }),
                "805800000E0186A0202405011200000102030404",
            ),
            (
                CardCommand::UpdateCappDataCache(UpdateCappDataCache {
                    record_id: 1,
                    sfi: 0x1E,
                    record: hex("0102"),
                }),
                "80DC01F0020102",
            ),
            (
                CardCommand::GetTransactionProof(GetTransactionProof {
                    transaction_type: TransactionType::EpPurchase,
                    card_seq: 9,
                }),
                "805A000602000908",
            ),
        ]
    }

    #[test]
    fn card_dispatch_covers_every_command() {
        let commands = card_commands();
        assert_eq!(commands.len(), 18);
        for (command, text) in commands {
            assert_eq!(encoded(&command.to_apdu()), text, "{}", command.name());
            assert_eq!(parse_card_command(&apdu(text)), Ok(command));
        }
    }

    #[test]
    fn card_dispatch_errors() {
        assert_eq!(
            parse_card_command(&apdu("805006010B01000003E81122334455660F")),
            Err(CommandError::UnknownCommand {
                set: "card",
                cla: 0x80,
                ins: 0x50,
                p1: 0x06,
                p2: 0x01
            })
        );
        assert_eq!(
            parse_card_command(&apdu("80CA9F7900")),
            Err(CommandError::UnknownCommand {
                set: "card",
                cla: 0x80,
                ins: 0xCA,
                p1: 0x9F,
                p2: 0x79
            })
        );
        // A known command with a bad body reports the command's own error.
        assert_eq!(
            parse_card_command(&apdu("805000020A01000003E8112233445510")),
            Err(CommandError::WrongDataLength {
                command: "INITIALIZE FOR LOAD",
                expected: 11,
                found: 10
            })
        );
    }

    #[test]
    fn psam_dispatch_covers_every_command() {
        let commands = vec![
            (
                PsamCommand::Select(Select {
                    aid: hex("D15600000100"),
                }),
                "00A4040006D1560000010000",
            ),
            (
                PsamCommand::GetResponse(GetResponse { le: 8 }),
                "00C0000008",
            ),
            (PsamCommand::ReadTerminalId(ReadTerminalId), "00B0960006"),
            (PsamCommand::ReadPsamInfo(ReadPsamInfo), "00B095000E"),
            (
                PsamCommand::ReadBinary(ReadBinary {
                    target: BinaryTarget::ShortEf {
                        sfi: 0x17,
                        offset: 0,
                    },
                    le: 0x19,
                }),
                "00B0970019",
            ),
            (
                PsamCommand::InitSamForPurchase(InitSamForPurchase {
                    card_random: [0x11, 0x22, 0x33, 0x44],
                    card_offline_seq: 2,
                    amount: 100,
                    transaction_type: TransactionType::EpPurchase,
                    date: DATE,
                    time: TIME,
                    key_version: 1,
                    algorithm_id: 0,
                    card_serial: [0, 0, 0, 0, 0, 0, 0, 9],
                    extra_factors: Vec::new(),
                }),
                "807000001C11223344000200000064062024050112000001000000000000000009 08",
            ),
            (
                PsamCommand::CreditSamForPurchase(CreditSamForPurchase { mac2: [9, 8, 7, 6] }),
                "807200000409080706",
            ),
            (
                PsamCommand::DeliveryKey(DeliveryKey {
                    key_usage: 0x27,
                    key_version: 0x01,
                    factors: vec![[0, 0, 0, 0, 0, 0, 0, 9]],
                }),
                "801A2701080000000000000009",
            ),
            (
                PsamCommand::CipherData(CipherData {
                    mode: CipherMode::MacLast,
                    data: hex("0102030405060708"),
                }),
                "80FA0100080102030405060708",
            ),
        ];
        for (command, text) in commands {
            let text = text.replace(' ', "");
            assert_eq!(encoded(&command.to_apdu()), text, "{}", command.name());
            assert_eq!(parse_psam_command(&apdu(&text)), Ok(command));
        }
    }

    #[test]
    fn psam_dispatch_errors() {
        assert_eq!(
            parse_psam_command(&apdu("805C000204")),
            Err(CommandError::UnknownCommand {
                set: "PSAM",
                cla: 0x80,
                ins: 0x5C,
                p1: 0x00,
                p2: 0x02
            })
        );
        assert_eq!(
            parse_psam_command(&apdu("8072000003090807")),
            Err(CommandError::WrongDataLength {
                command: "CREDIT SAM FOR PURCHASE",
                expected: 4,
                found: 3
            })
        );
    }
}
