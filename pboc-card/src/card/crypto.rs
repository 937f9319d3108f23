//! MAC and TAC inputs the spec leaves open (the overdraw-limit update), and a fixed
//! "random" source for reproducible runs.
//!
//! Load, unload and purchase use the inputs of [`pboc_sam::pboc`]; unload uses the load
//! inputs with transaction type `03` and the DULK.
//!
//! UNCONFIRMED (no public source gives them byte for byte; this is the one place the choice
//! is made, and the issuer side must use these functions): the overdraw-limit update
//! (type `07`, session key from the DUK as for load) uses
//!
//! | value | input |
//! |---|---|
//! | MAC1 (card) | balance(4), old limit(3), type(1), terminal(6) |
//! | MAC2 (issuer) | new limit(3), type(1), terminal(6), date(4), time(3) |
//! | TAC (card) | balance(4), online seq before increment(2), new limit(3), type(1), terminal(6), date(4), time(3) |

use pboc_sam::RandomSource;

use crate::reader::u24_bytes;
use crate::transaction_type::TransactionType;

fn concat<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    for part in parts {
        // The callers' part lengths add up to N; zip stops at the end in any case.
        for (d, s) in out.iter_mut().skip(at).zip(part.iter()) {
            *d = *s;
        }
        at += part.len();
    }
    out
}

/// Overdraw-update MAC1 input (computed by the card): `balance(4) | old limit(3) | 07 |
/// terminal(6)`.
#[must_use]
pub fn overdraw_mac1_input(balance: u32, old_limit: u32, terminal: &[u8; 6]) -> [u8; 14] {
    concat(&[
        &balance.to_be_bytes(),
        &u24_bytes(old_limit),
        &[TransactionType::EdOverdrawUpdate.code()],
        terminal,
    ])
}

/// Overdraw-update MAC2 input (computed by the issuer): `new limit(3) | 07 | terminal(6) |
/// date(4) | time(3)`.
#[must_use]
pub fn overdraw_mac2_input(
    new_limit: u32,
    terminal: &[u8; 6],
    date: &[u8; 4],
    time: &[u8; 3],
) -> [u8; 17] {
    concat(&[
        &u24_bytes(new_limit),
        &[TransactionType::EdOverdrawUpdate.code()],
        terminal,
        date,
        time,
    ])
}

/// Overdraw-update TAC input (computed by the card): `balance(4) | online seq(2) | new
/// limit(3) | 07 | terminal(6) | date(4) | time(3)`.
#[must_use]
pub fn overdraw_tac_input(
    balance: u32,
    online_seq: u16,
    new_limit: u32,
    terminal: &[u8; 6],
    date: &[u8; 4],
    time: &[u8; 3],
) -> [u8; 23] {
    concat(&[
        &balance.to_be_bytes(),
        &online_seq.to_be_bytes(),
        &u24_bytes(new_limit),
        &[TransactionType::EdOverdrawUpdate.code()],
        terminal,
        date,
        time,
    ])
}

/// A [`RandomSource`] that repeats a fixed 4-byte pattern: every card challenge is the
/// same. **Not random**: for reproducing published vectors and deterministic tests only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedRandom {
    pattern: [u8; 4],
}

impl FixedRandom {
    /// A source whose every 4-byte challenge is `pattern`.
    pub const fn new(pattern: [u8; 4]) -> Self {
        Self { pattern }
    }
}

impl RandomSource for FixedRandom {
    fn fill(&self, buf: &mut [u8]) {
        for (d, s) in buf.iter_mut().zip(self.pattern.iter().cycle()) {
            *d = *s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;

    #[test]
    fn overdraw_inputs_have_the_documented_layout() {
        let t = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
        let date = [0x20, 0x24, 0x01, 0x02];
        let time = [0x03, 0x04, 0x05];
        assert_eq!(
            overdraw_mac1_input(0x1234, 0x00_0100, &t).to_vec(),
            hex("00001234 000100 07 001122334455")
        );
        assert_eq!(
            overdraw_mac2_input(0x00_0200, &t, &date, &time).to_vec(),
            hex("000200 07 001122334455 20240102 030405")
        );
        assert_eq!(
            overdraw_tac_input(0x1234, 5, 0x00_0200, &t, &date, &time).to_vec(),
            hex("00001234 0005 000200 07 001122334455 20240102 030405")
        );
    }

    #[test]
    fn fixed_random_repeats_its_pattern() {
        let r = FixedRandom::new([0x11, 0x22, 0x33, 0x44]);
        let mut buf = [0u8; 6];
        r.fill(&mut buf);
        assert_eq!(buf, [0x11, 0x22, 0x33, 0x44, 0x11, 0x22]);
        let mut four = [0u8; 4];
        r.fill(&mut four);
        assert_eq!(four, [0x11, 0x22, 0x33, 0x44]);
    }
}
