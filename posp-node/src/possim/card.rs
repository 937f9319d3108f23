//! The magnetic-stripe / debit card data a simulated POS reads: PAN, expiry and track 2.

use std::fmt;

/// A bank card as the POS reads it. `Debug` and `Display` mask the PAN (first 6 and last
/// 4 digits) and never show track 2.
#[derive(Clone, PartialEq, Eq)]
pub struct Card {
    pan: String,
    expiry: String,
    track2: String,
}

/// Why card data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardDataError {
    /// The PAN is not 13 to 19 digits.
    #[error("PAN: expected 13 to 19 digits")]
    Pan,
    /// The expiry is not 4 digits `YYMM` with a month 01-12.
    #[error("expiry: expected YYMM")]
    Expiry,
    /// Track 2 is not `PAN=YYMM...` of at most 37 digits.
    #[error("track 2: expected PAN=YYMM followed by digits, at most 37 characters")]
    Track2,
}

impl Card {
    /// A card with the track 2 a chip card's magnetic stripe carries:
    /// `PAN=YYMM` + service code `201` + discretionary data `00000`.
    ///
    /// # Errors
    /// [`CardDataError`] for a bad PAN or expiry.
    pub fn new(pan: &str, expiry: &str) -> Result<Card, CardDataError> {
        Card::with_track2(pan, expiry, &format!("{pan}={expiry}20100000"))
    }

    /// A card with an explicit track 2 (which must start with `PAN=YYMM`).
    ///
    /// # Errors
    /// [`CardDataError`] for a bad PAN, expiry or track 2.
    pub fn with_track2(pan: &str, expiry: &str, track2: &str) -> Result<Card, CardDataError> {
        if !(13..=19).contains(&pan.len()) || !pan.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardDataError::Pan);
        }
        let month = expiry.get(2..4).and_then(|m| m.parse::<u8>().ok());
        if expiry.len() != 4
            || !expiry.bytes().all(|b| b.is_ascii_digit())
            || !matches!(month, Some(1..=12))
        {
            return Err(CardDataError::Expiry);
        }
        let prefix = format!("{pan}={expiry}");
        let rest = track2.strip_prefix(&prefix).ok_or(CardDataError::Track2)?;
        if track2.len() > 37 || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardDataError::Track2);
        }
        Ok(Card {
            pan: pan.to_owned(),
            expiry: expiry.to_owned(),
            track2: track2.to_owned(),
        })
    }

    /// The PAN (field 2).
    pub fn pan(&self) -> &str {
        &self.pan
    }

    /// The expiry `YYMM` (field 14).
    pub fn expiry(&self) -> &str {
        &self.expiry
    }

    /// Track 2 (field 35), with `=` as the separator.
    pub fn track2(&self) -> &str {
        &self.track2
    }

    /// The PAN masked to its first 6 and last 4 digits.
    pub fn masked_pan(&self) -> String {
        mask_pan(&self.pan)
    }
}

/// Masks a PAN to its first 6 and last 4 characters (anything of 10 characters or fewer is
/// masked entirely).
pub(crate) fn mask_pan(pan: &str) -> String {
    let n = pan.len();
    match (pan.get(..6), pan.get(n.saturating_sub(4)..)) {
        (Some(head), Some(tail)) if n > 10 => format!("{head}{}{tail}", "*".repeat(n - 10)),
        _ => "*".repeat(n),
    }
}

impl fmt::Debug for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Card")
            .field("pan", &self.masked_pan())
            .field("expiry", &self.expiry)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked_pan())
    }
}

/// A card with its PIN, as the simulator's scripts use them. `Debug` hides the PIN.
#[derive(Clone, PartialEq, Eq)]
pub struct CardHolder {
    /// The card.
    pub card: Card,
    /// The PIN the holder types.
    pub pin: String,
}

impl fmt::Debug for CardHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardHolder")
            .field("card", &self.card)
            .field("pin", &"<redacted>")
            .finish()
    }
}
