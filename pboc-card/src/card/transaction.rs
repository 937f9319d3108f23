//! The commands that move money or limits: INITIALIZE, CREDIT/DEBIT/UPDATE, CAPP cache and
//! GET TRANSACTION PROOF.

use pboc_sam::pboc::{
    load_mac1_input, load_mac2_input, load_session_key, load_tac_input, purchase_mac1_input,
    purchase_mac2_input, purchase_session_key, purchase_tac_input,
};

use super::crypto::{overdraw_mac1_input, overdraw_mac2_input, overdraw_tac_input};
use super::{MAX_CAPP_CACHE_UPDATES, Online, Pending, SW_COUNTER_LIMIT, VirtualCard, mac};
use crate::application::Application;
use crate::command::{
    DebitForPurchase, DebitForPurchaseResponse, GetTransactionProof, InitializeForLoadResponse,
    InitializeForPurchaseResponse, InitializeForUpdateResponse, TransactionProof,
    UpdateCappDataCache,
};
use crate::image::{CappRecord, KeyPurpose, PUBLIC_DATA_SFI, Purse, RecordImage, StoredProof};
use crate::record::{DETAIL_SFI, TransactionDetail};
use crate::sw::StatusWord;
use crate::transaction_type::TransactionType;

impl Online {
    fn purpose(self) -> KeyPurpose {
        match self {
            Self::Load => KeyPurpose::Load,
            Self::Unload => KeyPurpose::Unload,
            Self::Update => KeyPurpose::OverdrawUpdate,
        }
    }

    fn tx_type(self, application: Application) -> TransactionType {
        match self {
            Self::Load => TransactionType::load(application),
            Self::Unload => TransactionType::Unload,
            Self::Update => TransactionType::EdOverdrawUpdate,
        }
    }
}

/// The purse after loading `amount`: overdraw repaid first, then the balance; `None` above
/// the maximum balance or when the counter cannot advance.
fn after_load(p: &Purse, amount: u32) -> Option<Purse> {
    let repay = amount.min(p.overdrawn);
    let balance = p.balance.checked_add(amount - repay)?;
    if balance > p.max_balance {
        return None;
    }
    Some(Purse {
        balance,
        overdrawn: p.overdrawn - repay,
        online_seq: p.online_seq.checked_add(1)?,
        ..*p
    })
}

/// The purse after unloading `amount` from the balance (never from the overdraw limit).
fn after_unload(p: &Purse, amount: u32) -> Option<Purse> {
    Some(Purse {
        balance: p.balance.checked_sub(amount)?,
        online_seq: p.online_seq.checked_add(1)?,
        ..*p
    })
}

/// The purse after debiting `amount`: the balance first, the rest from the overdraw limit.
fn after_debit(p: &Purse, amount: u32) -> Option<Purse> {
    if u64::from(amount) > p.available() {
        return None;
    }
    let from_balance = amount.min(p.balance);
    Some(Purse {
        balance: p.balance - from_balance,
        overdrawn: p.overdrawn.checked_add(amount - from_balance)?,
        offline_seq: p.offline_seq.checked_add(1)?,
        ..*p
    })
}

impl VirtualCard {
    pub(super) fn init_online(
        &mut self,
        kind: Online,
        application: Application,
        key_index: u8,
        amount: u32,
        terminal: [u8; 6],
    ) -> Result<Vec<u8>, StatusWord> {
        let purse = self.purse_or_sw(application)?;
        self.check_pin(application)?;
        let key = self.usable_key(kind.purpose(), key_index)?;
        let (key_version, algorithm_id) = (key.version, key.algorithm_id);
        self.tac_key(key_index)?;
        if purse.online_seq == u16::MAX {
            return Err(SW_COUNTER_LIMIT);
        }
        let tx_type = kind.tx_type(application);
        match kind {
            Online::Load if after_load(&purse, amount).is_none() => {
                return Err(StatusWord::ConditionsNotSatisfied);
            }
            Online::Unload if amount > purse.balance => {
                return Err(StatusWord::InsufficientBalance);
            }
            _ => {}
        }
        let random = self.challenge();
        let session = load_session_key(&key.key, &random, purse.online_seq);
        let mac1 = match kind {
            Online::Update => mac(
                &session,
                &overdraw_mac1_input(purse.balance, purse.overdraw_limit, &terminal),
            )?,
            _ => mac(
                &session,
                &load_mac1_input(purse.balance, amount, tx_type.code(), &terminal),
            )?,
        };
        self.pending = Some(Pending::Online {
            kind,
            application,
            key_index,
            amount,
            terminal,
            seq: purse.online_seq,
            random,
        });
        Ok(match kind {
            Online::Update => InitializeForUpdateResponse {
                balance: purse.balance,
                online_seq: purse.online_seq,
                overdraw_limit: purse.overdraw_limit,
                key_version,
                algorithm_id,
                random,
                mac1,
            }
            .to_bytes(),
            _ => InitializeForLoadResponse {
                balance: purse.balance,
                online_seq: purse.online_seq,
                key_version,
                algorithm_id,
                random,
                mac1,
            }
            .to_bytes(),
        })
    }

    /// CREDIT FOR LOAD, DEBIT FOR UNLOAD, UPDATE OVERDRAW LIMIT (`new_limit` for the last).
    pub(super) fn complete_online(
        &mut self,
        expected: Online,
        new_limit: u32,
        date: [u8; 4],
        time: [u8; 3],
        mac2: [u8; 4],
        pending: Option<Pending>,
    ) -> Result<Vec<u8>, StatusWord> {
        let Some(Pending::Online {
            kind,
            application,
            key_index,
            amount,
            terminal,
            seq,
            random,
        }) = pending
        else {
            return Err(StatusWord::ConditionsNotSatisfied);
        };
        if kind != expected {
            return Err(StatusWord::ConditionsNotSatisfied);
        }
        let purpose = kind.purpose();
        let tx_type = kind.tx_type(application);
        let key = self
            .state
            .key(purpose, key_index)
            .ok_or(StatusWord::KeyIndexNotSupported)?;
        let session = load_session_key(&key.key, &random, seq);
        let expected_mac2 = match kind {
            Online::Update => mac(
                &session,
                &overdraw_mac2_input(new_limit, &terminal, &date, &time),
            )?,
            _ => mac(
                &session,
                &load_mac2_input(amount, tx_type.code(), &terminal, &date, &time),
            )?,
        };
        if pboc_sam::mac::verify("MAC2", &mac2, &expected_mac2).is_err() {
            self.mac_failed(purpose, key_index);
            return Err(StatusWord::MacInvalid);
        }
        let purse = self.purse_or_sw(application)?;
        let after = match kind {
            Online::Load => after_load(&purse, amount),
            Online::Unload => after_unload(&purse, amount),
            Online::Update => purse.online_seq.checked_add(1).map(|online_seq| Purse {
                overdraw_limit: new_limit,
                online_seq,
                ..purse
            }),
        }
        .ok_or(StatusWord::ConditionsNotSatisfied)?;
        let tac_key = self.tac_key(key_index)?;
        let tac = match kind {
            Online::Update => mac(
                &tac_key,
                &overdraw_tac_input(after.balance, seq, new_limit, &terminal, &date, &time),
            )?,
            _ => mac(
                &tac_key,
                &load_tac_input(
                    after.balance,
                    seq,
                    amount,
                    tx_type.code(),
                    &terminal,
                    &date,
                    &time,
                ),
            )?,
        };
        self.mac_passed(purpose, key_index);
        self.set_purse(application, after);
        self.push_record(TransactionDetail {
            card_seq: seq,
            overdraw_limit: after.overdraw_limit,
            amount: if kind == Online::Update { 0 } else { amount },
            transaction_type: tx_type,
            terminal,
            date,
            time,
        });
        self.store_proof(tx_type, seq, mac2, tac);
        Ok(tac.to_vec())
    }

    pub(super) fn init_offline(
        &mut self,
        tx_type: TransactionType,
        application: Application,
        key_index: u8,
        amount: u32,
        terminal: [u8; 6],
    ) -> Result<Vec<u8>, StatusWord> {
        let purse = self.purse_or_sw(application)?;
        self.check_pin(application)?;
        let key = self.usable_key(KeyPurpose::Purchase, key_index)?;
        let (key_version, algorithm_id) = (key.version, key.algorithm_id);
        self.tac_key(key_index)?;
        if purse.offline_seq == u16::MAX {
            return Err(SW_COUNTER_LIMIT);
        }
        if after_debit(&purse, amount).is_none() {
            return Err(StatusWord::InsufficientBalance);
        }
        let random = self.challenge();
        self.pending = Some(Pending::Offline {
            tx_type,
            application,
            key_index,
            amount,
            terminal,
            seq: purse.offline_seq,
            random,
            capp: Vec::new(),
        });
        Ok(InitializeForPurchaseResponse {
            balance: purse.balance,
            offline_seq: purse.offline_seq,
            overdraw_limit: purse.overdraw_limit,
            key_version,
            algorithm_id,
            random,
        }
        .to_bytes())
    }

    pub(super) fn complete_offline(
        &mut self,
        command: &DebitForPurchase,
        pending: Option<Pending>,
    ) -> Result<Vec<u8>, StatusWord> {
        let Some(Pending::Offline {
            tx_type,
            application,
            key_index,
            amount,
            terminal,
            seq,
            random,
            capp,
        }) = pending
        else {
            return Err(StatusWord::ConditionsNotSatisfied);
        };
        let DebitForPurchase {
            terminal_seq,
            date,
            time,
            mac1,
        } = *command;
        let key = self
            .state
            .key(KeyPurpose::Purchase, key_index)
            .ok_or(StatusWord::KeyIndexNotSupported)?;
        let session = purchase_session_key(&key.key, &random, seq, terminal_seq);
        let expected_mac1 = mac(
            &session,
            &purchase_mac1_input(amount, tx_type.code(), &terminal, &date, &time),
        )?;
        if pboc_sam::mac::verify("MAC1", &mac1, &expected_mac1).is_err() {
            self.mac_failed(KeyPurpose::Purchase, key_index);
            return Err(StatusWord::MacInvalid);
        }
        let purse = self.purse_or_sw(application)?;
        let after = after_debit(&purse, amount).ok_or(StatusWord::InsufficientBalance)?;
        let tac_key = self.tac_key(key_index)?;
        let tac = mac(
            &tac_key,
            &purchase_tac_input(
                amount,
                tx_type.code(),
                &terminal,
                terminal_seq,
                &date,
                &time,
            ),
        )?;
        let mac2 = mac(&session, &purchase_mac2_input(amount))?;
        self.mac_passed(KeyPurpose::Purchase, key_index);
        self.set_purse(application, after);
        for record in capp {
            let files = &mut self.state.capp_records;
            match files
                .iter_mut()
                .find(|r| r.sfi == record.sfi && r.record_id == record.record_id)
            {
                Some(existing) => existing.data = record.data,
                None => files.push(record),
            }
        }
        self.push_record(TransactionDetail {
            card_seq: seq,
            overdraw_limit: after.overdraw_limit,
            amount,
            transaction_type: tx_type,
            terminal,
            date,
            time,
        });
        self.store_proof(tx_type, seq, mac2, tac);
        Ok(DebitForPurchaseResponse { tac, mac2 }.to_bytes())
    }

    pub(super) fn update_capp(
        &mut self,
        command: UpdateCappDataCache,
        pending: Option<Pending>,
    ) -> Result<Vec<u8>, StatusWord> {
        let Some(Pending::Offline {
            tx_type: tx_type @ TransactionType::CompositePurchase,
            mut capp,
            application,
            key_index,
            amount,
            terminal,
            seq,
            random,
        }) = pending
        else {
            return Err(StatusWord::ConditionsNotSatisfied);
        };
        if command.sfi == DETAIL_SFI || command.sfi == PUBLIC_DATA_SFI {
            return Err(StatusWord::IncorrectP1P2);
        }
        if capp.len() >= MAX_CAPP_CACHE_UPDATES {
            return Err(StatusWord::Other(0x6A84));
        }
        capp.push(CappRecord {
            sfi: command.sfi,
            record_id: command.record_id,
            data: command.record,
        });
        self.pending = Some(Pending::Offline {
            tx_type,
            application,
            key_index,
            amount,
            terminal,
            seq,
            random,
            capp,
        });
        Ok(Vec::new())
    }

    pub(super) fn transaction_proof(
        &self,
        command: &GetTransactionProof,
    ) -> Result<Vec<u8>, StatusWord> {
        let code = command.transaction_type.code();
        self.state
            .proofs
            .iter()
            .find(|p| p.transaction_type == code && p.card_seq == command.card_seq)
            .map(|p| {
                TransactionProof {
                    mac: p.mac,
                    tac: p.tac,
                }
                .to_bytes()
            })
            .ok_or(StatusWord::MacUnavailable)
    }

    fn set_purse(&mut self, application: Application, purse: Purse) {
        if let Some(p) = self.state.purse_mut(application) {
            *p = purse;
        }
    }

    /// Adds a record as number 1; the oldest falls off a full file.
    fn push_record(&mut self, record: TransactionDetail) {
        let records = &mut self.state.records;
        records.insert(0, RecordImage::from(&record));
        records.truncate(usize::from(self.state.record_capacity));
    }

    /// Keeps the proof of the last completed transaction of its type.
    fn store_proof(&mut self, tx_type: TransactionType, seq: u16, mac: [u8; 4], tac: [u8; 4]) {
        let proof = StoredProof {
            transaction_type: tx_type.code(),
            card_seq: seq,
            mac,
            tac,
        };
        let proofs = &mut self.state.proofs;
        match proofs
            .iter_mut()
            .find(|p| p.transaction_type == proof.transaction_type)
        {
            Some(existing) => *existing = proof,
            None => proofs.push(proof),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ed(balance: u32, limit: u32, overdrawn: u32) -> Purse {
        Purse {
            overdraw_limit: limit,
            overdrawn,
            ..Purse::new(balance, 1000)
        }
    }

    #[test]
    fn debits_take_the_balance_first_then_the_overdraw() {
        let after = after_debit(&ed(100, 500, 0), 250).unwrap();
        assert_eq!(
            (after.balance, after.overdrawn, after.offline_seq),
            (0, 150, 1)
        );
        assert_eq!(after_debit(&ed(100, 500, 0), 600).unwrap().overdrawn, 500);
        assert_eq!(after_debit(&ed(100, 500, 0), 601), None);
        assert_eq!(after_debit(&ed(100, 500, 450), 151), None);
        // A limit lowered below what is in use leaves only the balance.
        assert_eq!(after_debit(&ed(100, 200, 300), 100).unwrap().balance, 0);
        assert_eq!(after_debit(&ed(100, 200, 300), 101), None);
        let mut last = ed(10, 0, 0);
        last.offline_seq = u16::MAX;
        assert_eq!(after_debit(&last, 1), None);
    }

    #[test]
    fn loads_repay_the_overdraw_first_and_respect_the_maximum() {
        let after = after_load(&ed(0, 500, 150), 200).unwrap();
        assert_eq!(
            (after.balance, after.overdrawn, after.online_seq),
            (50, 0, 1)
        );
        assert_eq!(after_load(&ed(0, 500, 150), 100).unwrap().overdrawn, 50);
        assert_eq!(after_load(&ed(900, 0, 0), 100).unwrap().balance, 1000);
        assert_eq!(after_load(&ed(900, 0, 0), 101), None);
        assert_eq!(after_load(&Purse::new(u32::MAX, u32::MAX), 1), None);
    }

    #[test]
    fn unloads_never_touch_the_overdraw() {
        assert_eq!(after_unload(&ed(100, 500, 0), 100).unwrap().balance, 0);
        assert_eq!(after_unload(&ed(100, 500, 0), 101), None);
    }
}
