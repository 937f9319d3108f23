//! Shared helpers for the criterion benches: the reference fixtures, loaded once.
//!
//! The benches themselves live in `benches/benches/`; run them with
//! `cargo bench -p benches`.
//!
//! The ISO 8583 fixtures are the copies under `iso8583/tests/vectors/iso87-ascii/` (hex text of
//! the ASCII message bytes, pyiso8583's `default_ascii` layout), compiled in with `include_str!`
//! so the benches work from any fresh clone. [`cups`] builds a UnionPay POS purchase and its
//! frame (length, TPDU, header, body).

/// Decodes an upper- or lower-case hex string (whitespace ignored) into bytes.
///
/// Returns `None` when the text is not an even number of hex digits.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
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

/// Names of the `iso87-ascii` fixtures, smallest first.
pub const ISO87_FIXTURES: [&str; 3] = ["0800", "0200", "large"];

/// The hex text of an `iso87-ascii` fixture, by name (`0800`, `0200` or `large`).
pub fn iso87_fixture_hex(name: &str) -> Option<&'static str> {
    Some(match name {
        "0800" => include_str!("../../iso8583/tests/vectors/iso87-ascii/0800.hex"),
        "0200" => include_str!("../../iso8583/tests/vectors/iso87-ascii/0200.hex"),
        "large" => include_str!("../../iso8583/tests/vectors/iso87-ascii/large.hex"),
        _ => return None,
    })
}

/// The message bytes of an `iso87-ascii` fixture, by name (`0800`, `0200` or `large`).
pub fn iso87_fixture(name: &str) -> Option<Vec<u8>> {
    unhex(iso87_fixture_hex(name)?)
}

/// A UnionPay POS (`cups-pos` spec) purchase request, 0200, and its frame.
pub mod cups {
    use iso8583_wire::frame::{CupsHeader, FrameConfig, Tpdu};
    use iso8583_wire::{MessageBuf, specs};

    use crate::unhex;

    /// The TPDU of the request: id 60, destination 0004, source 0000.
    pub const TPDU: Tpdu = Tpdu::new(0x0004, 0x0000);

    /// The CUPS header bytes: application type 60, software version 22, the rest zero.
    pub const HEADER: [u8; 6] = [0x60, 0x22, 0x00, 0x00, 0x00, 0x00];

    /// The PIN block carried in field 52.
    pub const PIN_BLOCK: [u8; 8] = [0x3C, 0x1E, 0x8B, 0x5A, 0x90, 0x2D, 0x47, 0xF6];

    /// The MAC carried in field 64.
    pub const MAC: [u8; 8] = [0x5D, 0xA4, 0x0E, 0x71, 0xC3, 0x28, 0x9B, 0x16];

    /// Field 55: the ICC data of an ARQC for a PBOC debit card (BER-TLV, 23 data objects).
    pub const ICC_HEX: &str = "9F2608C2A1E0B7F3D4958E\
                               9F270180\
                               9F101307010103A0A802010A010000000000B1C2D3E4\
                               9F37045C3D2E1F\
                               9F3602021A\
                               95050000000800\
                               9A03261128\
                               9C0100\
                               9F0206000000012345\
                               5F2A020156\
                               82027C00\
                               9F1A020156\
                               9F0306000000000000\
                               9F3303E0E1C8\
                               9F3403420300\
                               9F350122\
                               9F1E083132333435363738\
                               8408A000000333010101\
                               9F09020030\
                               9F410400001234\
                               9F631030313032303030303030303030303030\
                               9F7403454343\
                               9F6E0420700000";

    /// The purchase request: PAN, amount 123.45 CNY, chip read (22 = 021, 23 = 001), PIN
    /// block, track 2, ICC data, 60 = 22 000001 000, MAC.
    pub fn purchase() -> Result<MessageBuf<'static>, iso8583_wire::Error> {
        let icc = unhex(ICC_HEX).unwrap_or_default();
        let mut m = MessageBuf::new("0200")?;
        m.set(2, "6212263602012345")
            .set(3, "000000")
            .set(4, "000000012345")
            .set(11, "000123")
            .set(14, "2812")
            .set(22, "021")
            .set(23, "001")
            .set(25, "00")
            .set(26, "12")
            .set(35, "6212263602012345=28122201234567890")
            .set(41, "10010001")
            .set(42, "898310048141234")
            .set(49, "156")
            .set(52, &PIN_BLOCK)
            .set(53, "2600000000000000")
            .set(55, icc)
            .set(60, "22000001000")
            .set(64, &MAC);
        Ok(m)
    }

    /// The purchase's body (MTI onwards) under `cups-pos`.
    pub fn purchase_body() -> Result<Vec<u8>, iso8583_wire::Error> {
        purchase()?.to_vec(specs::cups_pos())
    }

    /// The purchase as it travels: 2-byte big-endian length, TPDU, CUPS header, body
    /// (framed with [`FrameConfig::cups_pos`]).
    pub fn purchase_frame() -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let body = purchase_body()?;
        let header = CupsHeader::from_bytes(HEADER)?;
        let mut out = Vec::with_capacity(body.len() + 13);
        FrameConfig::cups_pos().encode(Some(TPDU), Some(header), &body, &mut out)?;
        Ok(out)
    }
}

/// Runs a future that is ready when first polled, such as any [`pboc_sam::SoftHsm`] operation
/// or a `pboc-card` issuer check through one, on the calling thread with no runtime.
///
/// The benches call the in-process HSM this way so that no executor sits inside the timing.
/// A future that is not ready is polled again at once (a busy wait): do not pass one that
/// waits for I/O or a timer.
pub fn ready_now<F: core::future::Future>(future: F) -> F::Output {
    let mut future = core::pin::pin!(future);
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    loop {
        if let core::task::Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ready_now, unhex};

    #[test]
    fn ready_now_returns_the_value() {
        assert_eq!(ready_now(core::future::ready(41)), 41);
        assert_eq!(ready_now(async { 6 * 7 }), 42);
    }

    #[test]
    fn unhex_accepts_both_cases_and_whitespace() {
        assert_eq!(unhex("0a FF\n10"), Some(vec![0x0A, 0xFF, 0x10]));
        assert_eq!(unhex("ABC"), None);
        assert_eq!(unhex("zz"), None);
    }
}
