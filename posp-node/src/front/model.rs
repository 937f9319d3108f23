//! The internal transaction model: a terminal request parsed from the `cups-pos` spec into
//! typed fields, and the helpers that assemble messages back (masking for the journal, MAC
//! blocks).
//!
//! Card data in a [`Txn`] (PAN, track 2, PIN block) never prints: `Debug` shows the masked
//! PAN only.

use std::fmt;

use iso8583_wire::{Message, Spec, decode};

use crate::store::mask_pan;

/// A request that cannot be used: which field, where, and why. Answered `30`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The field (0 for the message as a whole).
    pub field: u16,
    /// Byte offset in the message body, when known.
    pub offset: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(at) => write!(f, "field {} at byte {at}: {}", self.field, self.reason),
            None => write!(f, "field {}: {}", self.field, self.reason),
        }
    }
}

impl ParseError {
    fn missing(field: u16) -> ParseError {
        ParseError {
            field,
            offset: None,
            reason: "required but absent".to_owned(),
        }
    }

    /// From a codec error (it names the part and the offset).
    pub fn from_wire(e: &iso8583_wire::Error) -> ParseError {
        ParseError {
            field: e.field().unwrap_or(0),
            offset: Some(e.offset()),
            reason: e.to_string(),
        }
    }
}

/// A terminal request in typed form.
#[derive(Clone, Default)]
pub struct Txn {
    /// Message type indicator.
    pub mti: String,
    /// Field 2, PAN (clear; never logged).
    pub pan: Option<String>,
    /// Field 3, processing code.
    pub processing_code: Option<String>,
    /// Field 4, amount in fen.
    pub amount: Option<u64>,
    /// Field 11, the terminal's STAN.
    pub stan: u32,
    /// Field 12, local time `hhmmss`, when the terminal sent it.
    pub local_time: Option<String>,
    /// Field 13, local date `MMDD`, when the terminal sent it.
    pub local_date: Option<String>,
    /// Field 35, track 2 (clear; never logged).
    pub track2: Option<String>,
    /// Field 39 (a reversal's reason).
    pub response_code: Option<String>,
    /// Field 41, terminal id.
    pub terminal_id: String,
    /// Field 42, merchant id.
    pub merchant_id: String,
    /// Field 48 digits (settlement totals).
    pub additional: Option<String>,
    /// Field 52, the PIN block under the terminal's PIK.
    pub pin_block: Option<[u8; 8]>,
    /// Field 60 digits.
    pub f60: String,
    /// Field 64, the MAC, and the MAC block it covers (body bytes before it).
    pub mac: Option<([u8; 8], usize)>,
}

impl fmt::Debug for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Txn")
            .field("mti", &self.mti)
            .field("pan", &self.masked_pan())
            .field("processing_code", &self.processing_code)
            .field("amount", &self.amount)
            .field("stan", &self.stan)
            .field("terminal_id", &self.terminal_id)
            .field("f60", &self.f60)
            .finish_non_exhaustive()
    }
}

fn text(msg: &Message<'_>, n: u16) -> Result<Option<String>, ParseError> {
    match msg.field(n) {
        None => Ok(None),
        Some(f) => {
            if let Ok(s) = f.as_str() {
                Ok(Some(s.to_owned()))
            } else {
                Ok(Some(f.chars().map(char::from).collect()))
            }
        }
    }
}

impl Txn {
    /// Parses a decoded and validated request. Fields needed by every request (11, 41, 42,
    /// 60) must be present; the flows check the rest.
    pub fn parse(msg: &Message<'_>) -> Result<Txn, ParseError> {
        let mut t = Txn {
            mti: msg.mti().to_owned(),
            ..Txn::default()
        };
        t.pan = text(msg, 2)?;
        t.processing_code = text(msg, 3)?;
        if let Some(f) = msg.field(4) {
            t.amount = Some(f.to_u64().map_err(|e| ParseError::from_wire(&e))?);
        }
        let stan = msg.field(11).ok_or(ParseError::missing(11))?;
        t.stan = u32::try_from(stan.to_u64().map_err(|e| ParseError::from_wire(&e))?)
            .unwrap_or(u32::MAX);
        t.local_time = text(msg, 12)?;
        t.local_date = text(msg, 13)?;
        t.track2 = text(msg, 35)?;
        t.response_code = text(msg, 39)?;
        t.terminal_id = text(msg, 41)?.ok_or(ParseError::missing(41))?;
        t.merchant_id = text(msg, 42)?.ok_or(ParseError::missing(42))?;
        t.additional = text(msg, 48)?;
        if let Some(f) = msg.field(52) {
            let raw = f.raw();
            let block: [u8; 8] = raw.try_into().map_err(|_| ParseError {
                field: 52,
                offset: Some(f.body_offset()),
                reason: format!("{} bytes, expected 8", raw.len()),
            })?;
            t.pin_block = Some(block);
        }
        t.f60 = text(msg, 60)?.ok_or(ParseError::missing(60))?;
        if t.f60.len() < 8 {
            return Err(ParseError {
                field: 60,
                offset: msg.field(60).map(|f| f.offset()),
                reason: format!(
                    "{} digits, expected at least 8 (60.1 and 60.2)",
                    t.f60.len()
                ),
            });
        }
        if let Some(f) = msg.field(64) {
            let mac: [u8; 8] = f.raw().try_into().map_err(|_| ParseError {
                field: 64,
                offset: Some(f.offset()),
                reason: "MAC is not 8 bytes".to_owned(),
            })?;
            t.mac = Some((mac, f.offset()));
        }
        if let Some(d) = &t.local_date
            && crate::store::journal::check_local_date(d).is_err()
        {
            return Err(ParseError {
                field: 13,
                offset: msg.field(13).map(|f| f.offset()),
                reason: format!("{d:?} is not a date MMDD"),
            });
        }
        Ok(t)
    }

    /// 60.1, the message type code.
    pub fn msg_type(&self) -> &str {
        self.f60.get(..2).unwrap_or("")
    }

    /// 60.2, the batch number.
    pub fn batch(&self) -> u32 {
        self.f60.get(2..8).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    /// 60.3, the network management code (empty when absent).
    pub fn network_code(&self) -> &str {
        self.f60.get(8..11).unwrap_or("")
    }

    /// The PAN from field 2, or from track 2 (digits before the separator).
    pub fn card_number(&self) -> Option<String> {
        if let Some(p) = &self.pan {
            return Some(p.clone());
        }
        self.track2.as_ref().map(|t| {
            t.chars()
                .take_while(|c| c.is_ascii_digit())
                .collect::<String>()
        })
    }

    /// The PAN masked for the journal and logs.
    pub fn masked_pan(&self) -> Option<String> {
        self.card_number().and_then(|p| mask_pan(&p))
    }

    /// The response MTI (`0200` -> `0210`).
    pub fn response_mti(&self) -> String {
        response_mti(&self.mti)
    }
}

/// The response MTI of a request MTI: third digit + 1 (`0200` -> `0210`, `0401` -> `0411`).
pub fn response_mti(mti: &str) -> String {
    let mut b = mti.as_bytes().to_vec();
    if let Some(d) = b.get_mut(2)
        && d.is_ascii_digit()
        && *d < b'9'
    {
        *d += 1;
    }
    String::from_utf8(b).unwrap_or_else(|_| mti.to_owned())
}

/// Whether an MTI is a request that takes a response (third digit even).
pub fn is_request_mti(mti: &str) -> bool {
    mti.len() == 4
        && mti.bytes().all(|b| b.is_ascii_digit())
        && mti
            .as_bytes()
            .get(2)
            .is_some_and(|d| (d - b'0').is_multiple_of(2))
}

/// The body as the journal keeps it, by the same rule as the center's journal
/// ([`crate::wire::journal_copy`]): without the fields `spec` masks (card numbers, tracks 1
/// to 3, PIN block, secrets) and without the expiry, key data and MACs. Empty when it does
/// not decode.
pub fn journal_body(spec: &Spec, body: &[u8]) -> Vec<u8> {
    match decode(spec, body) {
        Ok(msg) => crate::wire::journal_copy(spec, &msg),
        Err(_) => Vec::new(),
    }
}

pub use crate::wire::{encode_for_mac, mab, put_mac};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use iso8583_wire::{MessageBuf, specs};

    #[test]
    fn parses_a_purchase_and_masks_it() {
        let mut buf = MessageBuf::new("0200").unwrap();
        buf.set(2, "6222021234567890123")
            .set(3, "000000")
            .set(4, "000000000123")
            .set(11, "000042")
            .set(41, "10000001")
            .set(42, "898100012340001")
            .set(52, vec![1u8; 8])
            .set(60, "22000001")
            .set(64, vec![9u8; 8]);
        let body = buf.to_vec(specs::cups_pos()).unwrap();
        let msg = decode(specs::cups_pos(), &body).unwrap();
        let t = Txn::parse(&msg).unwrap();
        // With the expiry and both tracks too: the journal keeps none of them.
        buf.set(14, "3012")
            .set(35, "6222021234567890123=30121011234")
            .set(
                36,
                "996222021234567890123=1561560000000000001003123450000000000000000",
            );
        let with_tracks = buf.to_vec(specs::cups_pos()).unwrap();
        let copy = journal_body(specs::cups_pos(), &with_tracks);
        let m = decode(specs::cups_pos(), &copy).unwrap();
        let kept: Vec<u16> = m.fields().map(|f| f.number()).collect();
        assert_eq!(kept, [3, 4, 11, 41, 42, 60]);
        assert_eq!(t.amount, Some(123));
        assert_eq!(t.stan, 42);
        assert_eq!(t.msg_type(), "22");
        assert_eq!(t.batch(), 1);
        assert_eq!(t.network_code(), "");
        assert_eq!(t.masked_pan().as_deref(), Some("622202*********0123"));
        assert_eq!(t.mac.unwrap().1, body.len() - 8);
        assert!(!format!("{t:?}").contains("6222021234567890123"));
        let masked = journal_body(specs::cups_pos(), &body);
        let m = decode(specs::cups_pos(), &masked).unwrap();
        let kept: Vec<u16> = m.fields().map(|f| f.number()).collect();
        assert_eq!(kept, [3, 4, 11, 41, 42, 60]);
        assert_eq!(response_mti("0200"), "0210");
        assert_eq!(response_mti("0401"), "0411");
        assert!(is_request_mti("0820") && !is_request_mti("0830"));
    }

    #[test]
    fn missing_terminal_id_is_named() {
        let mut buf = MessageBuf::new("0800").unwrap();
        buf.set(11, "000001").set(60, "00000001003");
        let body = buf.to_vec(specs::cups_pos()).unwrap();
        let msg = decode(specs::cups_pos(), &body).unwrap();
        assert_eq!(
            Txn::parse(&msg).unwrap_err().to_string(),
            "field 41: required but absent"
        );
    }
}
