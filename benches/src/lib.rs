//! Shared helpers for the criterion benches: the reference fixtures, loaded once.
//!
//! The benches themselves live in `benches/benches/`; run them with
//! `cargo bench -p benches`.

/// Decodes an upper- or lower-case hex string (whitespace ignored) into bytes.
///
/// Returns `None` when the text is not an even number of hex digits.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::unhex;

    #[test]
    fn unhex_accepts_both_cases_and_whitespace() {
        assert_eq!(unhex("0a FF\n10"), Some(vec![0x0A, 0xFF, 0x10]));
        assert_eq!(unhex("ABC"), None);
        assert_eq!(unhex("zz"), None);
    }
}
