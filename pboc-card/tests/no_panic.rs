//! Random bytes never panic any parser, and whatever parses re-encodes to something that
//! parses to the same value.
//!
//! Uses a small deterministic generator (SplitMix64) so failures reproduce exactly.

use pboc_card::command::{
    CreditForLoadResponse, DataResponse, DebitForPurchaseResponse, DebitForUnloadResponse,
    GetBalanceResponse, InitSamForPurchaseResponse, InitializeForLoadResponse,
    InitializeForPurchaseResponse, InitializeForUpdateResponse, NoData, PsamInfo,
    TerminalIdResponse, TransactionProof, UpdateOverdrawLimitResponse,
};
use pboc_card::{
    CommandApdu, OfflinePurchaseRecord, Response, ResponseApdu, TransactionDetail,
    parse_card_command, parse_psam_command,
};

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Headers of every command, so random bodies reach the command parsers.
const HEADERS: &[[u8; 3]] = &[
    [0x00, 0xA4, 0x04],
    [0x00, 0xB2, 0x01],
    [0x00, 0xB0, 0x96],
    [0x00, 0xB0, 0x95],
    [0x00, 0xB0, 0x81],
    [0x00, 0x20, 0x00],
    [0x00, 0xC0, 0x00],
    [0x80, 0x5C, 0x00],
    [0x80, 0x50, 0x00],
    [0x80, 0x50, 0x01],
    [0x80, 0x50, 0x02],
    [0x80, 0x50, 0x03],
    [0x80, 0x50, 0x04],
    [0x80, 0x50, 0x05],
    [0x80, 0x52, 0x00],
    [0x80, 0x54, 0x01],
    [0x80, 0x54, 0x03],
    [0x80, 0x58, 0x00],
    [0x80, 0xDC, 0x01],
    [0x80, 0x5A, 0x00],
    [0x80, 0x70, 0x00],
    [0x80, 0x72, 0x00],
    [0x80, 0x1A, 0x27],
    [0x80, 0xFA, 0x05],
];

/// A command APDU: fully random, or a known header with a P2 from a small set and a
/// well-formed Lc/Le around random data of a plausible length.
fn candidate(rng: &mut SplitMix64) -> Vec<u8> {
    if rng.below(4) == 0 {
        let len = rng.below(40) as usize;
        return rng.bytes(len);
    }
    let header = HEADERS[rng.below(HEADERS.len() as u64) as usize];
    let p2 = [0x00, 0x01, 0x02, 0x06, 0xC4, 0xB8, rng.next() as u8][rng.below(7) as usize];
    let mut out = vec![header[0], header[1], header[2], p2];
    let data_len = [0, 2, 4, 7, 11, 14, 15, 16, 28, 36, rng.below(64)][rng.below(11) as usize];
    if data_len > 0 {
        out.push(data_len as u8);
        out.extend(rng.bytes(data_len as usize));
    }
    if rng.below(2) == 0 {
        out.push(rng.next() as u8);
    }
    out
}

fn check_response<R: Response + PartialEq + core::fmt::Debug>(data: &[u8]) {
    if let Ok(parsed) = R::parse(data) {
        assert_eq!(parsed.to_bytes(), data);
        assert_eq!(R::parse(&parsed.to_bytes()).ok(), Some(parsed));
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = SplitMix64(0x05EE_D0FC_0FFE);
    let mut apdus = 0;
    let mut card = 0;
    let mut psam = 0;
    for _ in 0..200_000 {
        let bytes = candidate(&mut rng);

        if let Ok((case, apdu)) = CommandApdu::parse_with_case(&bytes) {
            apdus += 1;
            assert_eq!(apdu.case(), Ok(case));
            assert_eq!(apdu.to_bytes().as_deref(), Ok(bytes.as_slice()));

            if let Ok(command) = parse_card_command(&apdu) {
                card += 1;
                let again = CommandApdu::parse(&command.to_apdu().to_bytes().unwrap()).unwrap();
                assert_eq!(parse_card_command(&again), Ok(command));
            }
            if let Ok(command) = parse_psam_command(&apdu) {
                psam += 1;
                let again = CommandApdu::parse(&command.to_apdu().to_bytes().unwrap()).unwrap();
                assert_eq!(parse_psam_command(&again), Ok(command));
            }
        }

        if let Ok(response) = ResponseApdu::parse(&bytes) {
            assert_eq!(response.to_bytes(), bytes);
        }

        let data = bytes.get(4..).unwrap_or_default();
        check_response::<GetBalanceResponse>(data);
        check_response::<InitializeForLoadResponse>(data);
        check_response::<CreditForLoadResponse>(data);
        check_response::<InitializeForPurchaseResponse>(data);
        check_response::<DebitForPurchaseResponse>(data);
        check_response::<DebitForUnloadResponse>(data);
        check_response::<InitializeForUpdateResponse>(data);
        check_response::<UpdateOverdrawLimitResponse>(data);
        check_response::<TransactionProof>(data);
        check_response::<InitSamForPurchaseResponse>(data);
        check_response::<TerminalIdResponse>(data);
        check_response::<PsamInfo>(data);
        check_response::<NoData>(data);
        check_response::<DataResponse>(data);

        if let Ok(record) = TransactionDetail::parse(data) {
            assert_eq!(record.to_bytes().as_slice(), data);
        }
        if let Ok(record) = OfflinePurchaseRecord::parse(data) {
            assert_eq!(record.to_bytes().as_slice(), data);
        }
    }
    // The generator must reach the success paths, or the loop proves little.
    assert!(apdus > 100_000, "only {apdus} APDUs parsed");
    assert!(card > 1_000, "only {card} card commands parsed");
    assert!(psam > 500, "only {psam} PSAM commands parsed");
}

#[test]
fn every_length_of_zeros_and_ones() {
    for len in 0..600 {
        for fill in [0x00, 0xFF, 0x01] {
            let bytes = vec![fill; len];
            if let Ok(apdu) = CommandApdu::parse(&bytes) {
                assert_eq!(apdu.to_bytes().unwrap(), bytes);
                let _ = parse_card_command(&apdu);
                let _ = parse_psam_command(&apdu);
            }
            let _ = ResponseApdu::parse(&bytes);
            let _ = TransactionDetail::parse(&bytes);
            let _ = OfflinePurchaseRecord::parse(&bytes);
        }
    }
}
