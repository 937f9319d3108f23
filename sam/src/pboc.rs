//! PBOC 2.0 electronic purse / electronic deposit keys: diversification, session keys, the
//! TAC key, and the exact MAC/TAC input data of load and purchase.
//!
//! Compute the MACs themselves with [`crate::mac::pboc`]: e.g. load MAC1 is
//! `mac::pboc(&seslk, &load_mac1_input(..))`.
//!
//! All multi-byte numbers are big-endian binary (amounts and balances in fen); dates are
//! `YYYYMMDD` and times `hhmmss` in BCD, passed through as given.

use crate::block::DesEngine;
use crate::error::{Error, Result};
use crate::key::{DesKey, DesKeyLength};

/// Transaction type: electronic deposit (ED) load.
pub const TYPE_ED_LOAD: u8 = 0x01;
/// Transaction type: electronic purse (EP) load.
pub const TYPE_EP_LOAD: u8 = 0x02;
/// Transaction type: unload.
pub const TYPE_UNLOAD: u8 = 0x03;
/// Transaction type: ED cash withdrawal.
pub const TYPE_ED_WITHDRAW: u8 = 0x04;
/// Transaction type: ED purchase.
pub const TYPE_ED_PURCHASE: u8 = 0x05;
/// Transaction type: EP purchase.
pub const TYPE_EP_PURCHASE: u8 = 0x06;
/// Transaction type: ED overdraw-limit update.
pub const TYPE_ED_UPDATE: u8 = 0x07;
/// Transaction type: credit purchase.
pub const TYPE_CREDIT_PURCHASE: u8 = 0x08;
/// Transaction type: composite (CAPP) purchase.
pub const TYPE_CAPP_PURCHASE: u8 = 0x09;

/// One level of diversification: `DK = 3DES-ECB(MK, F) | 3DES-ECB(MK, NOT F)`, where NOT is
/// bytewise. The master key is used at its own length (a 16-byte MK is two-key 3DES); the
/// result is always a 16-byte key. Parity bits are left as computed.
#[must_use]
pub fn diversify(master: &DesKey, factor: &[u8; 8]) -> DesKey {
    let engine = DesEngine::new(master);
    let mut left = *factor;
    let mut right = factor.map(|b| !b);
    engine.encrypt(&mut left);
    engine.encrypt(&mut right);
    let mut dk = [0u8; 16];
    dk[..8].copy_from_slice(&left);
    dk[8..].copy_from_slice(&right);
    let key = DesKey::double(dk);
    zeroize::Zeroize::zeroize(&mut dk);
    zeroize::Zeroize::zeroize(&mut left);
    zeroize::Zeroize::zeroize(&mut right);
    key
}

/// Multi-level diversification: applies [`diversify`] with each factor in turn, each result
/// becoming the next master key.
///
/// **Order (UNCONFIRMED between sources; this is the one place the choice is made):**
/// `factors[0]` is applied first and the last factor last, so pass them outermost first —
/// issuer or city level first, the card application serial number last:
/// `diversify_path(&mk, &[city, card])`. An empty list returns a copy of the master key.
#[must_use]
pub fn diversify_path(master: &DesKey, factors: &[[u8; 8]]) -> DesKey {
    factors
        .iter()
        .fold(master.clone(), |key, factor| diversify(&key, factor))
}

fn session_key(card_key: &DesKey, input: [u8; 8]) -> DesKey {
    let mut block = input;
    DesEngine::new(card_key).encrypt(&mut block);
    let key = DesKey::single(block);
    zeroize::Zeroize::zeroize(&mut block);
    key
}

/// The load session key (also for unload and overdraw-limit update):
/// `SESLK = 3DES-ECB(DLK, random(4) | online seq(2) | 80 00)`, an 8-byte key.
#[must_use]
pub fn load_session_key(dlk: &DesKey, card_random: &[u8; 4], online_seq: u16) -> DesKey {
    let [r0, r1, r2, r3] = *card_random;
    let [s0, s1] = online_seq.to_be_bytes();
    session_key(dlk, [r0, r1, r2, r3, s0, s1, 0x80, 0x00])
}

/// The purchase session key (also for cash withdrawal and CAPP purchase):
/// `SESPK = 3DES-ECB(DPK, random(4) | offline seq(2) | last 2 bytes of the terminal
/// transaction seq)`, an 8-byte key.
#[must_use]
pub fn purchase_session_key(
    dpk: &DesKey,
    card_random: &[u8; 4],
    offline_seq: u16,
    terminal_seq: u32,
) -> DesKey {
    let [r0, r1, r2, r3] = *card_random;
    let [s0, s1] = offline_seq.to_be_bytes();
    let [_, _, t2, t3] = terminal_seq.to_be_bytes();
    session_key(dpk, [r0, r1, r2, r3, s0, s1, t2, t3])
}

/// The TAC key: the left half of the card's DTK XOR its right half (an 8-byte key).
///
/// # Errors
/// [`Error::BadLength`] unless the DTK is 16 bytes.
pub fn tac_key(dtk: &DesKey) -> Result<DesKey> {
    if dtk.length() != DesKeyLength::Double {
        return Err(Error::BadLength {
            what: "DTK",
            expected: "16 bytes",
            found: dtk.len(),
        });
    }
    let mut k = dtk.component(0);
    for (a, b) in k.iter_mut().zip(dtk.component(1)) {
        *a ^= b;
    }
    let key = DesKey::single(k);
    zeroize::Zeroize::zeroize(&mut k);
    Ok(key)
}

/// A little writer over a fixed array; the sizes below are checked by the tests.
struct Out<const N: usize> {
    buf: [u8; N],
    at: usize,
}

impl<const N: usize> Out<N> {
    fn new() -> Self {
        Self { buf: [0; N], at: 0 }
    }

    fn put(mut self, bytes: &[u8]) -> Self {
        for (d, s) in self.buf.iter_mut().skip(self.at).zip(bytes) {
            *d = *s;
        }
        self.at += bytes.len();
        self
    }

    fn done(self) -> [u8; N] {
        debug_assert_eq!(self.at, N);
        self.buf
    }
}

/// Load MAC1 input (computed by the card, verified by the issuer):
/// `balance before(4) | amount(4) | type(1) | terminal(6)`.
#[must_use]
pub fn load_mac1_input(
    balance_before: u32,
    amount: u32,
    tx_type: u8,
    terminal: &[u8; 6],
) -> [u8; 15] {
    Out::new()
        .put(&balance_before.to_be_bytes())
        .put(&amount.to_be_bytes())
        .put(&[tx_type])
        .put(terminal)
        .done()
}

/// Load MAC2 input (computed by the issuer, verified by the card):
/// `amount(4) | type(1) | terminal(6) | date(4) | time(3)`.
#[must_use]
pub fn load_mac2_input(
    amount: u32,
    tx_type: u8,
    terminal: &[u8; 6],
    date: &[u8; 4],
    time: &[u8; 3],
) -> [u8; 18] {
    Out::new()
        .put(&amount.to_be_bytes())
        .put(&[tx_type])
        .put(terminal)
        .put(date)
        .put(time)
        .done()
}

/// Load TAC input (computed by the card with the TAC key): `balance after(4) | online seq
/// before increment(2) | amount(4) | type(1) | terminal(6) | date(4) | time(3)`.
#[must_use]
pub fn load_tac_input(
    balance_after: u32,
    online_seq: u16,
    amount: u32,
    tx_type: u8,
    terminal: &[u8; 6],
    date: &[u8; 4],
    time: &[u8; 3],
) -> [u8; 24] {
    Out::new()
        .put(&balance_after.to_be_bytes())
        .put(&online_seq.to_be_bytes())
        .put(&amount.to_be_bytes())
        .put(&[tx_type])
        .put(terminal)
        .put(date)
        .put(time)
        .done()
}

/// Purchase MAC1 input (computed by the PSAM, verified by the card):
/// `amount(4) | type(1) | terminal(6) | date(4) | time(3)`.
#[must_use]
pub fn purchase_mac1_input(
    amount: u32,
    tx_type: u8,
    terminal: &[u8; 6],
    date: &[u8; 4],
    time: &[u8; 3],
) -> [u8; 18] {
    Out::new()
        .put(&amount.to_be_bytes())
        .put(&[tx_type])
        .put(terminal)
        .put(date)
        .put(time)
        .done()
}

/// Purchase MAC2 input (computed by the card, verified by the PSAM): `amount(4)`.
#[must_use]
pub const fn purchase_mac2_input(amount: u32) -> [u8; 4] {
    amount.to_be_bytes()
}

/// Purchase TAC input (computed by the card with the TAC key, verified by the center):
/// `amount(4) | type(1) | terminal(6) | terminal transaction seq(4) | date(4) | time(3)`.
#[must_use]
pub fn purchase_tac_input(
    amount: u32,
    tx_type: u8,
    terminal: &[u8; 6],
    terminal_seq: u32,
    date: &[u8; 4],
    time: &[u8; 3],
) -> [u8; 22] {
    Out::new()
        .put(&amount.to_be_bytes())
        .put(&[tx_type])
        .put(terminal)
        .put(&terminal_seq.to_be_bytes())
        .put(date)
        .put(time)
        .done()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mac;

    fn k(s: &str) -> DesKey {
        DesKey::from_hex(s).unwrap()
    }

    fn hx(b: &[u8]) -> String {
        hex::encode_upper(b)
    }

    const TERMINAL: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
    const CARD_KEY: &str = "11223344556677888877665544332211";

    #[test]
    fn load_development_example() {
        let seslk = load_session_key(&k(CARD_KEY), &[0x11, 0x22, 0x33, 0x44], 0);
        assert_eq!(hx(seslk.as_bytes()), "9B1D924E05595603");
        let mac1_in = load_mac1_input(0, 0x1000, TYPE_EP_LOAD, &TERMINAL);
        assert_eq!(hx(&mac1_in), "000000000000100002001122334455");
        let mac1_in = load_mac1_input(0, 0x1000, TYPE_ED_LOAD, &TERMINAL);
        assert_eq!(hx(&mac1_in), "000000000000100001001122334455");
        assert_eq!(hx(&mac::pboc(&seslk, &mac1_in).unwrap()), "2988AE5A");
        let mac2_in = load_mac2_input(
            0x1000,
            TYPE_ED_LOAD,
            &TERMINAL,
            &[0x20, 0x11, 0x12, 0x21],
            &[0x21, 0x48, 0x22],
        );
        assert_eq!(hx(&mac2_in), "000010000100112233445520111221214822");
        assert_eq!(hx(&mac::pboc(&seslk, &mac2_in).unwrap()), "3A845BF0");
    }

    #[test]
    fn purchase_development_example() {
        let sespk = purchase_session_key(&k(CARD_KEY), &[0x11, 0x22, 0x33, 0x44], 0, 1);
        assert_eq!(hx(sespk.as_bytes()), "003238ABC57659DD");
        // Only the last two bytes of the terminal sequence number count.
        let again = purchase_session_key(&k(CARD_KEY), &[0x11, 0x22, 0x33, 0x44], 0, 0x7FFF_0001);
        assert!(again.ct_eq(&sespk));
        let mac1_in = purchase_mac1_input(
            0x1000,
            TYPE_EP_PURCHASE,
            &TERMINAL,
            &[0x20, 0x12, 0x02, 0x29],
            &[0x13, 0x51, 0x00],
        );
        assert_eq!(hx(&mac1_in), "000010000600112233445520120229135100");
        assert_eq!(hx(&mac::pboc(&sespk, &mac1_in).unwrap()), "F15CAB75");
        let mac2_in = purchase_mac2_input(0x1000);
        assert_eq!(hx(&mac2_in), "00001000");
        assert_eq!(hx(&mac::pboc(&sespk, &mac2_in).unwrap()), "56988A13");
    }

    #[test]
    fn tac_key_and_tacs() {
        // Recomputed independently with OpenSSL (Python `cryptography`).
        let tk = tac_key(&k(CARD_KEY)).unwrap();
        assert_eq!(hx(tk.as_bytes()), "9955551111555599");
        let p = purchase_tac_input(
            0x1000,
            TYPE_EP_PURCHASE,
            &TERMINAL,
            1,
            &[0x20, 0x12, 0x02, 0x29],
            &[0x13, 0x51, 0x00],
        );
        assert_eq!(hx(&p), "00001000060011223344550000000120120229135100");
        assert_eq!(hx(&mac::pboc(&tk, &p).unwrap()), "F5B221C9");
        let l = load_tac_input(
            10_000,
            0,
            0x1000,
            TYPE_EP_LOAD,
            &TERMINAL,
            &[0x20, 0x11, 0x12, 0x21],
            &[0x21, 0x48, 0x22],
        );
        assert_eq!(hx(&l), "000027100000000010000200112233445520111221214822");
        assert_eq!(hx(&mac::pboc(&tk, &l).unwrap()), "9A9073ED");
        assert_eq!(
            tac_key(&k("1122334455667788")).map(|k| k.len()),
            Err(Error::BadLength {
                what: "DTK",
                expected: "16 bytes",
                found: 8
            })
        );
    }

    #[test]
    fn diversification() {
        // Recomputed independently with OpenSSL (Python `cryptography`).
        let mk = k("0123456789ABCDEFFEDCBA9876543210");
        let card = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
        let dk = diversify(&mk, &card);
        assert_eq!(hx(dk.as_bytes()), "3EB3B72576BBBE831355AB0EE3123AE8");
        let city = card;
        let card2 = [0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
        let two = diversify_path(&mk, &[city, card2]);
        assert_eq!(hx(two.as_bytes()), "CC3A12B0C64D614D9AA641F59E1B4A4B");
        // Order matters: the reverse order gives another key.
        assert!(!diversify_path(&mk, &[card2, city]).ct_eq(&two));
        assert!(diversify_path(&mk, &[]).ct_eq(&mk));
    }
}
