//! The demo cards: the same table seeds the center's registry ([`seed_demo`]) and drives the
//! POS simulator, so both sides agree on PANs, PINs, expiry dates and balances.
//!
//! PANs are fictional (issuer prefix `621234`) with valid Luhn check digits. Amounts are in
//! fen. The PINs are here in clear because this is demo data; the registry keeps only PIN
//! verification data (the format 0 PIN block under the PVK, see [`pin_verification_data`]).

use pboc_sam::{DesKey, KeyRef, KeyType, Pan, Pin, PinBlockFormat, PinTranslation, SoftHsm};

use super::CenterError;
use super::registry::{CardKind, CardStatus, NewCard, Registry};

/// A demo bank card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoCard {
    /// The PAN.
    pub pan: &'static str,
    /// The PIN (demo data only).
    pub pin: &'static str,
    /// Expiry `YYMM` (field 14).
    pub expiry: &'static str,
    /// The account it debits.
    pub account: &'static str,
    /// The account's opening balance (fen).
    pub balance: i64,
    /// The card's status.
    pub status: CardStatus,
    /// Its own single-purchase limit (fen), if any.
    pub single_limit: Option<u64>,
    /// What the card is for in demos and tests.
    pub note: &'static str,
}

/// A demo purse (PBOC electronic purse) card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoPurse {
    /// The card application serial, 16 digits (field 2 of loads, tag DF01).
    pub serial: &'static str,
    /// Expiry `YYMM`.
    pub expiry: &'static str,
    /// The funding account loads debit.
    pub funding_account: &'static str,
    /// The funding account's opening balance (fen).
    pub funding_balance: i64,
}

/// The demo bank cards.
pub const DEMO_CARDS: [DemoCard; 5] = [
    DemoCard {
        pan: "6212340000000001",
        pin: "123456",
        expiry: "3012",
        account: "ACC-0001",
        balance: 1_000_000,
        status: CardStatus::Active,
        single_limit: None,
        note: "active, 10 000.00 yuan",
    },
    DemoCard {
        pan: "6212340000000019",
        pin: "1234",
        expiry: "3012",
        account: "ACC-0002",
        balance: 5_000,
        status: CardStatus::Active,
        single_limit: None,
        note: "active, 50.00 yuan: larger purchases get 51",
    },
    DemoCard {
        pan: "6212340000000027",
        pin: "111111",
        expiry: "3012",
        account: "ACC-0003",
        balance: 200_000,
        status: CardStatus::Lost,
        single_limit: None,
        note: "reported lost: 41",
    },
    DemoCard {
        pan: "6212340000000035",
        pin: "222222",
        expiry: "2001",
        account: "ACC-0004",
        balance: 200_000,
        status: CardStatus::Active,
        single_limit: None,
        note: "expired in January 2020: 54",
    },
    DemoCard {
        pan: "6212340000000043",
        pin: "333333",
        expiry: "3012",
        account: "ACC-0005",
        balance: 1_000_000,
        status: CardStatus::Active,
        single_limit: Some(10_000),
        note: "single-purchase limit 100.00 yuan: more gets 61",
    },
];

/// The demo purse cards.
pub const DEMO_PURSES: [DemoPurse; 1] = [DemoPurse {
    serial: "1000000000000001",
    expiry: "3012",
    funding_account: "ACC-P001",
    funding_balance: 500_000,
}];

/// The throwaway TPK PINs are enrolled under (see [`pin_verification_data`]).
const ENROL_TPK: [u8; 16] = [
    0x3B, 0x7C, 0x15, 0xE0, 0x68, 0xA1, 0x9D, 0x2F, 0x52, 0xC4, 0x0E, 0x97, 0xB6, 0x43, 0xF8, 0x1A,
];

/// The PIN verification data of a card: the ISO 9564 format 0 block of `pin` for `pan`,
/// encrypted under the PIN verification key `pvk` (a ZPK), made by the HSM.
///
/// Enrolment happens in process with a [`SoftHsm`]: the block is built and encrypted under a
/// throwaway TPK formed from fixed components, then translated by the HSM from that TPK to
/// the PVK, so the stored value is exactly what the HSM produces when it translates a
/// customer's block from the ZPK to the PVK (format 0 is deterministic). The center then
/// verifies a PIN by one translation and a constant-time comparison, never seeing it.
///
/// # Errors
/// [`CenterError::Hsm`] for a bad PIN, PAN or key.
pub fn pin_verification_data(
    hsm: &SoftHsm,
    pvk: &KeyRef,
    pan: &str,
    pin: &str,
) -> Result<[u8; 8], CenterError> {
    use pboc_sam::SecurityModule;
    let bad = |what: &'static str, e: pboc_sam::Error| CenterError::Hsm {
        at: what,
        detail: e.to_string(),
    };
    let pan_v = Pan::new(pan).map_err(|e| bad("enrol PIN: PAN", e))?;
    let pin_v = Pin::new(pin).map_err(|e| bad("enrol PIN: PIN", e))?;
    let clear = pboc_sam::pinblock::encode(PinBlockFormat::Iso0, &pin_v, &pan_v, &[0; 8])
        .map_err(|e| bad("enrol PIN: block", e))?;
    let tpk_clear = DesKey::from_bytes(&ENROL_TPK).map_err(|e| bad("enrol PIN: TPK", e))?;
    let block = pboc_sam::pinblock::encrypt_block(&tpk_clear, &clear);
    let tpk = hsm
        .form_key_from_components(&[&ENROL_TPK], KeyType::Tpk)
        .map_err(|e| CenterError::Hsm {
            at: "enrol PIN: form TPK",
            detail: e.to_string(),
        })?;
    let req = PinTranslation {
        source_key: tpk,
        source_format: PinBlockFormat::Iso0,
        dest_key: pvk.clone(),
        dest_format: PinBlockFormat::Iso0,
        pan: pan_v,
        block,
    };
    crate::store::block_on(hsm.translate_pin(&req)).map_err(|e| CenterError::Hsm {
        at: "enrol PIN: translate to PVK",
        detail: e.to_string(),
    })
}

/// Seeds the registry with [`DEMO_CARDS`] and [`DEMO_PURSES`] and their accounts; cards and
/// accounts already present are left alone. With a `pvk`, each bank card gets its PIN
/// verification data through `hsm`; without, the cards have no PIN and PINs are not checked.
/// Returns how many cards were added.
///
/// # Errors
/// [`CenterError::Database`] or [`CenterError::Hsm`].
pub fn seed_demo(
    registry: &Registry,
    hsm: &SoftHsm,
    pvk: Option<&KeyRef>,
) -> Result<usize, CenterError> {
    let mut added = 0;
    for card in DEMO_CARDS {
        if registry.card(card.pan)?.is_some() {
            continue;
        }
        if registry.balance(card.account)?.is_none() {
            registry.add_account(card.account, card.balance, card.note)?;
        }
        let pin_data = match pvk {
            Some(k) => Some(pin_verification_data(hsm, k, card.pan, card.pin)?),
            None => None,
        };
        registry.add_card(&NewCard {
            number: card.pan.to_owned(),
            kind: CardKind::Bank,
            account: card.account.to_owned(),
            status: card.status,
            expiry: card.expiry.to_owned(),
            pin_data,
            single_limit: card.single_limit,
            daily_limit: None,
        })?;
        added += 1;
    }
    for purse in DEMO_PURSES {
        if registry.card(purse.serial)?.is_some() {
            continue;
        }
        if registry.balance(purse.funding_account)?.is_none() {
            registry.add_account(
                purse.funding_account,
                purse.funding_balance,
                "purse funding",
            )?;
        }
        registry.add_card(&NewCard {
            number: purse.serial.to_owned(),
            kind: CardKind::Purse,
            account: purse.funding_account.to_owned(),
            status: CardStatus::Active,
            expiry: purse.expiry.to_owned(),
            pin_data: None,
            single_limit: None,
            daily_limit: None,
        })?;
        added += 1;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn luhn_ok(pan: &str) -> bool {
        let mut sum = 0;
        for (i, c) in pan.bytes().rev().enumerate() {
            let mut d = u32::from(c - b'0');
            if i % 2 == 1 {
                d *= 2;
                if d > 9 {
                    d -= 9;
                }
            }
            sum += d;
        }
        sum % 10 == 0
    }

    #[test]
    fn demo_pans_pass_luhn_and_are_unique() {
        for c in DEMO_CARDS {
            assert!(luhn_ok(c.pan), "{}", c.pan);
            assert_eq!(c.expiry.len(), 4);
        }
        let mut pans: Vec<_> = DEMO_CARDS.iter().map(|c| c.pan).collect();
        pans.dedup();
        assert_eq!(pans.len(), 5);
        assert_eq!(DEMO_PURSES[0].serial.len(), 16);
    }

    #[test]
    fn seeding_twice_adds_nothing_the_second_time() {
        let lmk = pboc_sam::Lmk::generate(&pboc_sam::CounterRandom::new(1));
        let hsm = SoftHsm::new(lmk, Box::new(pboc_sam::CounterRandom::new(2)));
        let pvk = hsm
            .form_key_from_components(&[&[0x11; 16]], KeyType::Zpk)
            .unwrap();
        let reg = Registry::open_in_memory().unwrap();
        assert_eq!(seed_demo(&reg, &hsm, Some(&pvk)).unwrap(), 6);
        assert_eq!(seed_demo(&reg, &hsm, Some(&pvk)).unwrap(), 0);
        assert_eq!(reg.card_count().unwrap(), 6);
        assert_eq!(reg.balance("ACC-0002").unwrap(), Some(5_000));
        let lost = reg.card("6212340000000027").unwrap().unwrap();
        assert_eq!(lost.status, CardStatus::Lost);
        // Format 0 under the PVK, recomputed in software.
        let pvk_clear = DesKey::from_bytes(&[0x11; 16]).unwrap().with_odd_parity();
        let clear = pboc_sam::pinblock::encode(
            PinBlockFormat::Iso0,
            &Pin::new("123456").unwrap(),
            &Pan::new("6212340000000001").unwrap(),
            &[0; 8],
        )
        .unwrap();
        let want = pboc_sam::pinblock::encrypt_block(&pvk_clear, &clear);
        let card = reg.card("6212340000000001").unwrap().unwrap();
        assert_eq!(card.pin_data, Some(want));
    }
}
