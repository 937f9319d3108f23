//! Selection, files, PIN and balance: the commands that do not move money.

use pboc_sam::Pin;
use zeroize::Zeroizing;

use super::VirtualCard;
use crate::application::Application;
use crate::command::{BinaryTarget, ReadBinary, ReadRecord, Select, VerifyPin};
use crate::image::PUBLIC_DATA_SFI;
use crate::record::{DETAIL_SFI, TransactionDetail};
use crate::sw::StatusWord;

/// Length of the public application data file (EF15).
pub(super) const PUBLIC_DATA_LEN: usize = 30;

/// `6Cxx`: wrong Le, `xx` is the right one.
fn wrong_le(right: usize) -> StatusWord {
    StatusWord::Other(0x6C00 | (right & 0xFF) as u16)
}

/// Whether a short Le byte asks for `len` bytes (`00` asks for whatever there is).
fn le_fits(le: u8, len: usize) -> bool {
    le == 0 || usize::from(le) == len
}

impl VirtualCard {
    /// EF15: issuer id(8) | card type(1) | app version(1) | 00 00 | serial(8) | valid
    /// from(4) | valid until(4) | 00 00.
    pub(super) fn public_data(&self) -> [u8; PUBLIC_DATA_LEN] {
        let s = &self.state;
        let mut out = [0u8; PUBLIC_DATA_LEN];
        let parts: [&[u8]; 7] = [
            &s.issuer_id,
            &[s.card_type, s.app_version],
            &[0, 0],
            &s.serial,
            &s.valid_from,
            &s.valid_until,
            &[0, 0],
        ];
        let mut at = 0;
        for part in parts {
            for (d, b) in out.iter_mut().skip(at).zip(part) {
                *d = *b;
            }
            at += part.len();
        }
        out
    }

    /// The FCI: `6F | 84 AID | A5 (9F08 version, BF0C EF15)`.
    fn fci(&self) -> Vec<u8> {
        let aid = &self.state.aid;
        let public = self.public_data();
        let mut a5 = vec![0x9F, 0x08, 0x01, self.state.app_version, 0xBF, 0x0C];
        a5.push(PUBLIC_DATA_LEN as u8);
        a5.extend_from_slice(&public);
        let mut body = vec![0x84];
        // The AID is 5..=16 bytes and A5 is 37: every length fits one byte below 0x80.
        body.push(aid.len() as u8);
        body.extend_from_slice(aid);
        body.push(0xA5);
        body.push(a5.len() as u8);
        body.extend_from_slice(&a5);
        let mut fci = vec![0x6F, body.len() as u8];
        fci.extend_from_slice(&body);
        fci
    }

    pub(super) fn select(&mut self, command: &Select) -> Result<Vec<u8>, StatusWord> {
        if command.aid != self.state.aid {
            return Err(StatusWord::FileNotFound);
        }
        self.pin_verified = false;
        Ok(self.fci())
    }

    pub(super) fn read_record(&self, command: &ReadRecord) -> Result<Vec<u8>, StatusWord> {
        match command.sfi {
            Some(DETAIL_SFI) => {
                let index = usize::from(command.record)
                    .checked_sub(1)
                    .ok_or(StatusWord::RecordNotFound)?;
                let record = self
                    .state
                    .records
                    .get(index)
                    .and_then(|r| r.to_detail())
                    .ok_or(StatusWord::RecordNotFound)?;
                if !le_fits(command.le, TransactionDetail::LEN) {
                    return Err(wrong_le(TransactionDetail::LEN));
                }
                Ok(record.to_bytes().to_vec())
            }
            Some(sfi) => {
                let mut file = self
                    .state
                    .capp_records
                    .iter()
                    .filter(|r| r.sfi == sfi)
                    .peekable();
                if file.peek().is_none() {
                    return Err(StatusWord::FileNotFound);
                }
                let record = file
                    .find(|r| r.record_id == command.record)
                    .ok_or(StatusWord::RecordNotFound)?;
                if !le_fits(command.le, record.data.len()) {
                    return Err(wrong_le(record.data.len()));
                }
                Ok(record.data.clone())
            }
            None => Err(StatusWord::FileNotFound),
        }
    }

    pub(super) fn read_binary(&self, command: &ReadBinary) -> Result<Vec<u8>, StatusWord> {
        let offset = match command.target {
            BinaryTarget::ShortEf {
                sfi: PUBLIC_DATA_SFI,
                offset,
            } => usize::from(offset),
            _ => return Err(StatusWord::FileNotFound),
        };
        let data = self.public_data();
        let rest = data.get(offset..).ok_or(StatusWord::Other(0x6B00))?;
        let wanted = if command.le == 0 {
            rest.len()
        } else {
            usize::from(command.le)
        };
        match rest.get(..wanted) {
            Some(bytes) => Ok(bytes.to_vec()),
            None => Err(wrong_le(rest.len())),
        }
    }

    pub(super) fn verify_pin(&mut self, command: &VerifyPin) -> Result<Vec<u8>, StatusWord> {
        let pin = self.state.pin.as_mut().ok_or(StatusWord::KeyNotFound)?;
        if pin.tries_left == 0 {
            return Err(StatusWord::AuthenticationBlocked);
        }
        let digits: Zeroizing<String> = Zeroizing::new(
            command
                .bcd()
                .iter()
                .flat_map(|b| [b >> 4, b & 0x0F])
                .filter(|n| *n <= 9)
                .map(|n| char::from(b'0' + n))
                .collect(),
        );
        let candidate = Pin::new(&digits).map_err(|_| StatusWord::Other(0x6A80))?;
        if candidate.ct_eq(&pin.digits) {
            pin.tries_left = pin.max_tries;
            self.pin_verified = true;
            Ok(Vec::new())
        } else {
            pin.tries_left = pin.tries_left.saturating_sub(1);
            self.pin_verified = false;
            Err(StatusWord::PinWrong {
                tries_left: pin.tries_left,
            })
        }
    }

    pub(super) fn get_balance(&self, application: Application) -> Result<Vec<u8>, StatusWord> {
        let purse = self.purse_or_sw(application)?;
        self.check_pin(application)?;
        Ok(purse.balance.to_be_bytes().to_vec())
    }
}
