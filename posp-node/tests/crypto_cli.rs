//! `posp-node crypto`: the development vectors of the UnionPay POS and PBOC purse specs,
//! published test vectors, round trips and the error cases.
//!
//! Values not taken from a spec or standard were recomputed independently with OpenSSL
//! (Python `cryptography`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_posp-node");

/// The MAB of the UnionPay POS MAC development example.
const MAB: &str = "0200302004C020C0981100000000000000005100183402100006324392260009942820D1312101120084393136363838303134303030303030303030303030303031313536ACF46E73838A82F92600000000000000000822000001";
/// "Now is the time for all " (the ISO 9797-1 / FIPS 81 sample text).
const NOW: &str = "4E6F77206973207468652074696D6520666F7220616C6C20";
const K1: &str = "0123456789ABCDEF";
const K2: &str = "0123456789ABCDEFFEDCBA9876543210";
const CARD_KEY: &str = "11223344556677888877665544332211";
const PAN: &str = "5555555551234567";
const TMK62: &str = "CA5D92598DCA48CE8A4C76361A9269E9";
const F62: &str =
    "6701EAD6A9AD51E51AA406E2C27FCFA9 8D0A74B8 B651F9E9BACE9AE1 0000000000000000 AB7153CA";
const AES_KEY: &str = "2B7E151628AED2A6ABF7158809CF4F3C";

fn run(args: &[&str]) -> Output {
    let mut full = vec!["crypto"];
    full.extend_from_slice(args);
    Command::new(BIN).args(&full).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// Runs a command that must succeed and returns its stdout without the final newline.
fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stderr), "");
    let s = text(&out.stdout);
    s.strip_suffix('\n').unwrap().to_string()
}

/// Runs a command that must fail with status 2 and returns its stderr.
fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}: {}",
        text(&out.stdout)
    );
    assert_eq!(text(&out.stdout), "");
    text(&out.stderr)
}

#[test]
fn unionpay_mac_development_example() {
    let mak = ok(&[
        "decrypt",
        "--alg",
        "3des-ecb",
        "--key",
        "70F2A84CCBC2AE8625CBB0F2C22AB923",
        "--data",
        "96D605EA176B7E9E",
    ]);
    assert_eq!(mak, "C24A8FB57AA20123");
    assert_eq!(
        ok(&["mac", "--alg", "unionpay-ecb", "--key", &mak, "--data", MAB]),
        "8A9E91B8"
    );
    // Lower-case input, and a double-length MAK with equal halves.
    assert_eq!(
        ok(&[
            "mac",
            "--alg",
            "unionpay-ecb",
            "--key",
            "c24a8fb57aa20123C24A8FB57AA20123",
            "--data",
            &MAB.to_lowercase(),
        ]),
        "8A9E91B8"
    );
    // And back: the MAK encrypts to the field 62 value.
    assert_eq!(
        ok(&[
            "encrypt",
            "--alg",
            "3des-ecb",
            "--key",
            "70F2A84CCBC2AE8625CBB0F2C22AB923",
            "--data",
            &mak,
        ]),
        "96D605EA176B7E9E"
    );
}

#[test]
fn field62_development_example() {
    let want = "PIK 807A23AD32B36D457AE91FDF927570EA KCV 8D0A74B8\n\
                MAK 5BB5C72CD00B7338 KCV AB7153CA";
    assert_eq!(ok(&["field62", "--tmk", TMK62, "--data", F62]), want);
    // With the 2-byte BCD length, as it appears on the wire, and the matching 60.3.
    let with_len = format!("0040 {F62}");
    assert_eq!(
        ok(&[
            "field62", "--tmk", TMK62, "--data", &with_len, "--code", "003"
        ]),
        want
    );
    assert_eq!(
        fails(&["field62", "--tmk", TMK62, "--data", F62, "--code", "001"]),
        "error: --code 001: field 62 should be 24 bytes, but --data has 40\n"
    );
    assert_eq!(
        fails(&["field62", "--tmk", TMK62, "--data", F62, "--code", "002"]),
        "error: --code: expected 001, 003 or 004, not \"002\"\n"
    );
    // A wrong TMK fails the PIK's check value.
    assert_eq!(
        fails(&["field62", "--tmk", K2, "--data", F62]),
        "error: --data: field 62 PIK: key check value mismatch (expected 8D0A74B8, computed \
         3EFABBFD)\n"
    );
    assert_eq!(
        fails(&["field62", "--tmk", TMK62, "--data", "00112233"]),
        "error: --data: field 62 is 24, 40, 56, 60 or 84 bytes (optionally after a 2-byte BCD \
         length), not 4\n"
    );
}

#[test]
fn kcvs() {
    assert_eq!(ok(&["kcv", "--key", K2]), "08D7B4FB");
    assert_eq!(ok(&["kcv", "--key", K1, "--len", "8"]), "D5D44FF720683D0D");
    assert_eq!(ok(&["kcv", "--key", K1, "--len", "3"]), "D5D44F");
    assert_eq!(
        ok(&["kcv", "--key", "807A23AD32B36D457AE91FDF927570EA"]),
        "8D0A74B8"
    );
    assert_eq!(ok(&["kcv", "--key", "5BB5C72CD00B7338"]), "AB7153CA");
    assert_eq!(ok(&["kcv", "--alg", "aes", "--key", AES_KEY]), "7DF76B0C");
    assert_eq!(
        ok(&["kcv", "--alg", "aes", "--key", AES_KEY, "--len", "8"]),
        "7DF76B0C1AB899B3"
    );
    assert_eq!(ok(&["kcv", "--alg", "sm4", "--key", K2]), "2677F46B");
    assert_eq!(
        fails(&["kcv", "--key", K1, "--len", "9"]),
        "error: --len: a KCV is 1 to 8 bytes, not 9\n"
    );
    assert_eq!(
        fails(&["kcv", "--alg", "sm4", "--key", K1]),
        "error: --key: an SM4 key is 16 bytes, not 8\n"
    );
}

#[test]
fn pin_blocks_development_examples() {
    assert_eq!(
        ok(&["pinblock", "--format", "0", "--pin", "1234", "--pan", PAN]),
        "041261AAAAEDCBA9"
    );
    assert_eq!(
        ok(&[
            "pinblock",
            "--format",
            "0",
            "--pin",
            "123456789",
            "--pan",
            PAN
        ]),
        "091261032D8DCBA9"
    );
    assert_eq!(
        ok(&[
            "pinblock",
            "--decode",
            "--block",
            "041261AAAAEDCBA9",
            "--pan",
            PAN
        ]),
        "1234"
    );
    assert_eq!(
        ok(&[
            "pinblock",
            "--decode",
            "--block",
            "091261032d8dcba9",
            "--pan",
            PAN,
            "--format",
            "0"
        ]),
        "123456789"
    );
}

#[test]
fn pin_blocks_encrypted_under_the_pik() {
    let pik = "807A23AD32B36D457AE91FDF927570EA";
    assert_eq!(
        ok(&[
            "pinblock", "--format", "0", "--pin", "1234", "--pan", PAN, "--key", pik
        ]),
        "5498D8190CF2927C"
    );
    assert_eq!(
        ok(&[
            "pinblock",
            "--decode",
            "--block",
            "5498D8190CF2927C",
            "--pan",
            PAN,
            "--key",
            pik
        ]),
        "1234"
    );
    // The wrong key gives garbage, which is refused rather than printed as a PIN.
    let err = fails(&[
        "pinblock",
        "--decode",
        "--block",
        "5498D8190CF2927C",
        "--pan",
        PAN,
        "--key",
        K2,
    ]);
    assert!(err.starts_with("error: --block: "), "{err}");
    assert!(err.ends_with('\n') && err.lines().count() == 1, "{err}");
}

#[test]
fn pin_blocks_formats_1_and_3_with_fill() {
    let fill = "0123456789ABCDEF";
    // Format 1: the fill nibbles at the same positions follow the PIN.
    assert_eq!(
        ok(&["pinblock", "--format", "1", "--pin", "1234", "--fill", fill]),
        "1412346789ABCDEF"
    );
    assert_eq!(
        ok(&["pinblock", "--decode", "--block", "1412346789ABCDEF"]),
        "1234"
    );
    // Format 3: fill A + (nibble mod 6), then XOR the PAN field 0000555555123456.
    assert_eq!(
        ok(&[
            "pinblock", "--format", "3", "--pin", "1234", "--pan", PAN, "--fill", fill
        ]),
        "341261FE98FD9F9B"
    );
    assert_eq!(
        ok(&[
            "pinblock",
            "--decode",
            "--block",
            "341261FE98FD9F9B",
            "--pan",
            PAN
        ]),
        "1234"
    );
}

#[test]
fn pin_blocks_formats_1_and_3_draw_random_fill() {
    for format in ["1", "3"] {
        let a = ok(&[
            "pinblock", "--format", format, "--pin", "1234", "--pan", PAN,
        ]);
        let b = ok(&[
            "pinblock", "--format", format, "--pin", "1234", "--pan", PAN,
        ]);
        assert_eq!(a.len(), 16);
        assert_eq!(&a[..1], format);
        // 10 fill nibbles: format 1 draws 16 values each, format 3 six.
        assert_ne!(a, b, "format {format}");
        assert_eq!(
            ok(&["pinblock", "--decode", "--block", &a, "--pan", PAN]),
            "1234"
        );
    }
}

#[test]
fn pin_block_errors() {
    assert_eq!(
        fails(&["pinblock", "--format", "0", "--pin", "12", "--pan", PAN]),
        "error: --pin: a PIN is 4 to 12 digits, not 2\n"
    );
    assert_eq!(
        fails(&["pinblock", "--format", "0", "--pin", "12a4", "--pan", PAN]),
        "error: --pin: character at position 2 is not a decimal digit\n"
    );
    assert_eq!(
        fails(&["pinblock", "--format", "0", "--pin", "1234"]),
        "error: --pan is required for ISO 9564 format 0\n"
    );
    assert_eq!(
        fails(&[
            "pinblock", "--format", "0", "--pin", "1234", "--pan", "12345"
        ]),
        "error: --pan: expected 8 to 19 digits, found 5\n"
    );
    assert_eq!(
        fails(&[
            "pinblock", "--format", "0", "--pin", "1234", "--pan", PAN, "--fill", K1
        ]),
        "error: --fill does not apply to format 0\n"
    );
    assert_eq!(
        fails(&[
            "pinblock", "--format", "3", "--pin", "1234", "--pan", PAN, "--fill", "0011"
        ]),
        "error: --fill: the fill is 8 bytes, not 2\n"
    );
    assert_eq!(
        fails(&[
            "pinblock",
            "--decode",
            "--block",
            "441261AAAAEDCBA9",
            "--pan",
            PAN
        ]),
        "error: --block: control nibble 4 is not format 0, 1 or 3; give --format to decode it \
         anyway\n"
    );
    assert_eq!(
        fails(&[
            "pinblock",
            "--decode",
            "--block",
            "041261AAAAEDCB",
            "--pan",
            PAN
        ]),
        "error: --block: a PIN block is 8 bytes, not 7\n"
    );
    // Format 0 fill must be F: with the wrong PAN it is not.
    assert_eq!(
        fails(&[
            "pinblock",
            "--decode",
            "--block",
            "041261AAAAEDCBA9",
            "--pan",
            "5555555551234577"
        ]),
        "error: --block: PIN block (ISO 9564 format 0): bad fill nibble at position 15\n"
    );
    // clap's own errors also exit with 2.
    assert!(fails(&["pinblock", "--pin", "1234", "--pan", PAN]).starts_with("error: "));
    assert!(fails(&["pinblock", "--decode", "--pan", PAN]).starts_with("error: "));
    assert!(
        fails(&["pinblock", "--format", "2", "--pin", "1234", "--pan", PAN])
            .starts_with("error: invalid value '2' for '--format <FORMAT>'")
    );
}

#[test]
fn pboc_load_development_example() {
    let seslk = ok(&[
        "session-key",
        "--kind",
        "load",
        "--key",
        CARD_KEY,
        "--random",
        "11223344",
        "--seq",
        "0000",
    ]);
    assert_eq!(seslk, "9B1D924E05595603");
    assert_eq!(
        ok(&[
            "mac",
            "--alg",
            "pboc",
            "--key",
            &seslk,
            "--data",
            "000000000000100001001122334455"
        ]),
        "2988AE5A"
    );
    assert_eq!(
        ok(&[
            "mac",
            "--alg",
            "pboc",
            "--key",
            &seslk,
            "--data",
            "000010000100112233445520111221214822"
        ]),
        "3A845BF0"
    );
}

#[test]
fn pboc_purchase_development_example() {
    let sespk = ok(&[
        "session-key",
        "--kind",
        "purchase",
        "--key",
        CARD_KEY,
        "--random",
        "11223344",
        "--seq",
        "0000",
        "--terminal-seq",
        "00000001",
    ]);
    assert_eq!(sespk, "003238ABC57659DD");
    assert_eq!(
        ok(&[
            "mac",
            "--alg",
            "pboc",
            "--key",
            &sespk,
            "--data",
            "000010000600112233445520120229135100"
        ]),
        "F15CAB75"
    );
    assert_eq!(
        ok(&[
            "mac", "--alg", "pboc", "--key", &sespk, "--data", "00001000"
        ]),
        "56988A13"
    );
}

#[test]
fn session_key_errors() {
    let base = [
        "session-key",
        "--kind",
        "purchase",
        "--key",
        CARD_KEY,
        "--random",
        "11223344",
        "--seq",
        "0000",
    ];
    assert_eq!(
        fails(&base),
        "error: --terminal-seq is required for --kind purchase\n"
    );
    let mut load = base;
    load[2] = "load";
    let mut with_terminal = load.to_vec();
    with_terminal.extend_from_slice(&["--terminal-seq", "00000001"]);
    assert_eq!(
        fails(&with_terminal),
        "error: --terminal-seq does not apply to a load session key\n"
    );
    let mut short_random = load;
    short_random[6] = "112233";
    assert_eq!(
        fails(&short_random),
        "error: --random: the card random is 4 bytes, not 3\n"
    );
    let mut long_seq = load;
    long_seq[8] = "000001";
    assert_eq!(
        fails(&long_seq),
        "error: --seq: a transaction sequence number is 2 bytes, not 3\n"
    );
}

#[test]
fn tac() {
    assert_eq!(
        ok(&[
            "tac",
            "--key",
            CARD_KEY,
            "--data",
            "00001000060011223344550000000120120229135100"
        ]),
        "F5B221C9"
    );
    assert_eq!(
        ok(&[
            "tac",
            "--key",
            CARD_KEY,
            "--data",
            "000027100000000010000200112233445520111221214822"
        ]),
        "9A9073ED"
    );
    assert_eq!(
        fails(&["tac", "--key", "1122334455667788", "--data", "00"]),
        "error: --key: a DTK is 16 bytes, not 8\n"
    );
}

#[test]
fn diversify() {
    assert_eq!(
        ok(&["diversify", "--key", K2, "--factor", "1122334455667788"]),
        "3EB3B72576BBBE831355AB0EE3123AE8"
    );
    // Factors apply in the order given: city, then card.
    assert_eq!(
        ok(&[
            "diversify",
            "--key",
            K2,
            "--factor",
            "1122334455667788",
            "--factor",
            "0000000012345678"
        ]),
        "CC3A12B0C64D614D9AA641F59E1B4A4B"
    );
    assert_ne!(
        ok(&[
            "diversify",
            "--key",
            K2,
            "--factor",
            "0000000012345678",
            "--factor",
            "1122334455667788"
        ]),
        "CC3A12B0C64D614D9AA641F59E1B4A4B"
    );
    assert_eq!(
        fails(&[
            "diversify",
            "--key",
            K2,
            "--factor",
            "1122334455667788",
            "--factor",
            "00112233"
        ]),
        "error: --factor (number 2): a diversification factor is 8 bytes, not 4\n"
    );
    assert!(fails(&["diversify", "--key", K2]).starts_with("error: "));
}

#[test]
fn aes_cmac_rfc4493() {
    assert_eq!(
        ok(&["mac", "--alg", "cmac-aes", "--key", AES_KEY, "--data", ""]),
        "BB1D6929E95937287FA37D129B756746"
    );
    assert_eq!(
        ok(&[
            "mac",
            "--alg",
            "cmac-aes",
            "--key",
            AES_KEY,
            "--data",
            "6BC1BEE22E409F96E93D7E117393172A"
        ]),
        "070A16B46B4D4144F79BDD9DD04A287C"
    );
    assert_eq!(
        ok(&[
            "mac",
            "--alg",
            "cmac-aes",
            "--key",
            &AES_KEY.to_lowercase(),
            "--data",
            "6bc1bee22e409f96e93d7e117393172a",
            "--len",
            "4"
        ]),
        "070A16B4"
    );
}

#[test]
fn des_macs() {
    // ISO 9797-1 algorithm 1 and X9.9.
    assert_eq!(
        ok(&["mac", "--alg", "cbc-mac", "--key", K1, "--data", NOW]),
        "70A30640CC76DD8B"
    );
    assert_eq!(
        ok(&["mac", "--alg", "x9.9", "--key", K1, "--data", NOW]),
        "70A30640CC76DD8B"
    );
    assert_eq!(
        ok(&[
            "mac", "--alg", "cbc-mac", "--key", K1, "--pad", "2", "--data", NOW
        ]),
        "10E1F0F108341B6D"
    );
    assert_eq!(
        ok(&["mac", "--alg", "cbc-mac", "--key", K2, "--data", NOW]),
        "93462A6DB9B4A4D1"
    );
    // FIPS 81 CBC example: the last ciphertext block from IV 1234567890ABCDEF.
    assert_eq!(
        ok(&[
            "mac",
            "--alg",
            "cbc-mac",
            "--key",
            K1,
            "--iv",
            "1234567890ABCDEF",
            "--data",
            NOW
        ]),
        "683788499A7C05F6"
    );
    // X9.19 / algorithm 3.
    assert_eq!(
        ok(&["mac", "--alg", "x9.19", "--key", K2, "--data", NOW]),
        "A1C72E74EA3FA9B6"
    );
    assert_eq!(
        ok(&[
            "mac", "--alg", "x9.19", "--key", K2, "--pad", "2", "--data", NOW
        ]),
        "E9086230CA3BE796"
    );
    assert_eq!(
        ok(&[
            "mac",
            "--alg",
            "x9.19",
            "--key",
            K2,
            "--iv",
            "1234567890ABCDEF",
            "--data",
            NOW
        ]),
        "1FD08E499607B662"
    );
    assert_eq!(
        ok(&[
            "mac", "--alg", "x9.19", "--key", K2, "--len", "4", "--data", NOW
        ]),
        "A1C72E74"
    );
    // PBOC MAC with a 16-byte key and with an IV.
    assert_eq!(
        ok(&["mac", "--alg", "pboc", "--key", K2, "--data", NOW]),
        "E9086230"
    );
    assert_eq!(
        ok(&[
            "mac",
            "--alg",
            "pboc",
            "--key",
            K1,
            "--iv",
            "1234567890ABCDEF",
            "--data",
            NOW
        ]),
        "CFB7C764"
    );
}

#[test]
fn sm4_mac() {
    // GB/T 32907-2016 example 1: a one-block CBC-MAC is the ciphertext.
    assert_eq!(
        ok(&["mac", "--alg", "sm4-mac", "--key", K2, "--data", K2]),
        "681EDF34D206965E86B3E94F536E4246"
    );
    assert_eq!(
        ok(&[
            "mac", "--alg", "sm4-mac", "--key", K2, "--pad", "2", "--data", K2
        ]),
        "780D0374AF7C0B35625605638319CF2C"
    );
    assert_eq!(
        ok(&[
            "mac",
            "--alg",
            "sm4-mac",
            "--key",
            K2,
            "--pad",
            "2",
            "--iv",
            "00112233445566778899AABBCCDDEEFF",
            "--data",
            K2
        ]),
        "5E71FD97D348BE46F52A47A5CFF07F0F"
    );
}

#[test]
fn mac_errors() {
    assert_eq!(
        fails(&["mac", "--alg", "x9.19", "--key", K1, "--data", NOW]),
        "error: --key: x9.19 needs a 16-byte key, not 8\n"
    );
    assert_eq!(
        fails(&["mac", "--alg", "x9.9", "--key", K2, "--data", NOW]),
        "error: --key: x9.9 needs an 8-byte key, not 16\n"
    );
    assert_eq!(
        fails(&[
            "mac",
            "--alg",
            "pboc",
            "--key",
            "0123456789ABCDEFFEDCBA987654321089ABCDEF01234567",
            "--data",
            NOW
        ]),
        "error: --key: pboc needs an 8- or 16-byte key, not 24\n"
    );
    assert_eq!(
        fails(&[
            "mac", "--alg", "pboc", "--key", K1, "--pad", "1", "--data", NOW
        ]),
        "error: --pad does not apply to pboc (always padding method 2)\n"
    );
    assert_eq!(
        fails(&[
            "mac", "--alg", "cmac-aes", "--key", AES_KEY, "--iv", K1, "--data", NOW
        ]),
        "error: --iv does not apply to cmac-aes\n"
    );
    assert_eq!(
        fails(&[
            "mac", "--alg", "pboc", "--key", K1, "--len", "5", "--data", NOW
        ]),
        "error: --len: pboc gives 4 bytes, so --len is 1 to 4, not 5\n"
    );
    assert_eq!(
        fails(&[
            "mac",
            "--alg",
            "unionpay-ecb",
            "--key",
            K1,
            "--len",
            "4",
            "--data",
            NOW
        ]),
        "error: --len does not apply to unionpay-ecb (it always prints the 8 characters of \
         field 64)\n"
    );
    assert_eq!(
        fails(&[
            "mac", "--alg", "cbc-mac", "--key", K1, "--iv", "0011", "--data", NOW
        ]),
        "error: --iv: the IV (one block) is 8 bytes, not 2\n"
    );
    assert_eq!(
        fails(&[
            "mac",
            "--alg",
            "cbc-mac",
            "--key",
            "0123456789ABCDE",
            "--data",
            NOW
        ]),
        "error: --key: 15 hex digits is an odd number\n"
    );
    assert_eq!(
        fails(&[
            "mac",
            "--alg",
            "cbc-mac",
            "--key",
            "00112233445566778899",
            "--data",
            NOW
        ]),
        "error: --key: a DES key is 8, 16 or 24 bytes, not 10\n"
    );
    assert_eq!(
        fails(&["mac", "--alg", "cbc-mac", "--key", K1, "--data", "4E6G"]),
        "error: --data: character 'G' at position 3 is not a hex digit\n"
    );
    assert_eq!(
        fails(&["mac", "--alg", "cmac-aes", "--key", K1, "--data", ""]),
        "error: --key: an AES key is 16, 24 or 32 bytes, not 8\n"
    );
    let unknown = fails(&["mac", "--alg", "x9.20", "--key", K1, "--data", NOW]);
    assert!(
        unknown.starts_with("error: invalid value 'x9.20' for '--alg <ALG>'"),
        "{unknown}"
    );
}

#[test]
fn encrypt_decrypt_round_trips() {
    // (alg, key, iv, plain, cipher): FIPS 81, SP 800-38A, GB/T 32907 and OpenSSL values.
    let cases: [(&str, &str, Option<&str>, &str, &str); 7] = [
        ("des-ecb", K1, None, "0000000000000000", "D5D44FF720683D0D"),
        (
            "des-cbc",
            K1,
            Some("1234567890ABCDEF"),
            NOW,
            "E5C7CDDE872BF27C43E934008C389C0F683788499A7C05F6",
        ),
        ("3des-ecb", K2, None, "0000000000000000", "08D7B4FB629D0885"),
        (
            "3des-cbc",
            K2,
            Some("1234567890ABCDEF"),
            NOW,
            "F85D4AB92066789E1D0430671F28AE7AB9627D35385D2E24",
        ),
        (
            "aes-ecb",
            "000102030405060708090A0B0C0D0E0F",
            None,
            "00112233445566778899AABBCCDDEEFF",
            "69C4E0D86A7B0430D8CDB78070B4C55A",
        ),
        (
            "aes-cbc",
            AES_KEY,
            Some("000102030405060708090A0B0C0D0E0F"),
            "6BC1BEE22E409F96E93D7E117393172AAE2D8A571E03AC9C9EB76FAC45AF8E51",
            "7649ABAC8119B246CEE98E9B12E9197D5086CB9B507219EE95DB113A917678B2",
        ),
        ("sm4-ecb", K2, None, K2, "681EDF34D206965E86B3E94F536E4246"),
    ];
    for (alg, key, iv, plain, cipher) in cases {
        let mut args = vec!["--alg", alg, "--key", key];
        if let Some(iv) = iv {
            args.extend_from_slice(&["--iv", iv]);
        }
        let mut enc = vec!["encrypt"];
        enc.extend_from_slice(&args);
        enc.extend_from_slice(&["--data", plain]);
        assert_eq!(ok(&enc), cipher, "{alg}");
        let mut dec = vec!["decrypt"];
        dec.extend_from_slice(&args);
        dec.extend_from_slice(&["--data", cipher]);
        assert_eq!(ok(&dec), plain, "{alg}");
    }
    // SM4-CBC (OpenSSL) and the default zero IV.
    let iv = "00112233445566778899AABBCCDDEEFF";
    let two = format!("{K2}{K2}");
    let c = "5D1FEE63F5EB8BB503580AB823925D55CF48A95AE7D1433913CEA96270EE6ED6";
    assert_eq!(
        ok(&[
            "encrypt", "--alg", "sm4-cbc", "--key", K2, "--iv", iv, "--data", &two
        ]),
        c
    );
    assert_eq!(
        ok(&[
            "decrypt", "--alg", "sm4-cbc", "--key", K2, "--iv", iv, "--data", c
        ]),
        two
    );
    assert_eq!(
        ok(&["encrypt", "--alg", "sm4-cbc", "--key", K2, "--data", &two]),
        "681EDF34D206965E86B3E94F536E42469FF11DCFD3AFAA236C76090BABC3BB85"
    );
}

#[test]
fn encrypt_decrypt_errors() {
    assert_eq!(
        fails(&[
            "encrypt", "--alg", "3des-ecb", "--key", K2, "--data", "00112233"
        ]),
        "error: --data: 3des-ecb works on whole 8-byte blocks, not 4 bytes\n"
    );
    assert_eq!(
        fails(&["encrypt", "--alg", "des-ecb", "--key", K2, "--data", NOW]),
        "error: --key: des-ecb needs an 8-byte key, not 16\n"
    );
    assert_eq!(
        fails(&["decrypt", "--alg", "3des-cbc", "--key", K1, "--data", NOW]),
        "error: --key: 3des-cbc needs a 16- or 24-byte key, not 8\n"
    );
    assert_eq!(
        fails(&[
            "encrypt", "--alg", "aes-ecb", "--key", AES_KEY, "--iv", AES_KEY, "--data", AES_KEY
        ]),
        "error: --iv does not apply to aes-ecb\n"
    );
    assert_eq!(
        fails(&[
            "encrypt", "--alg", "aes-cbc", "--key", AES_KEY, "--iv", K1, "--data", AES_KEY
        ]),
        "error: --iv: the IV (one block) is 16 bytes, not 8\n"
    );
    assert_eq!(
        fails(&[
            "encrypt",
            "--alg",
            "3des-ecb",
            "--key",
            "0123456789ABCDEF0",
            "--data",
            NOW
        ]),
        "error: --key: 17 hex digits is an odd number\n"
    );
    let unknown = fails(&["encrypt", "--alg", "rc4", "--key", K1, "--data", NOW]);
    assert!(
        unknown.starts_with("error: invalid value 'rc4' for '--alg <ALG>'"),
        "{unknown}"
    );
}

/// Keys and PINs can come from a file (`@PATH`) or an environment variable (`env:NAME`), so
/// that they are not in the process list: the results are the same as with the values given
/// directly, and a source that cannot be read is named.
#[test]
fn secrets_from_files_and_environment() {
    let dir = std::env::temp_dir().join(format!("crypto-cli-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("k2.hex");
    std::fs::write(&key_file, format!("  {K2}\n")).unwrap();
    let pin_file = dir.join("pin");
    std::fs::write(&pin_file, "1234\n").unwrap();
    let key_arg = format!("@{}", key_file.display());
    let pin_arg = format!("@{}", pin_file.display());

    assert_eq!(ok(&["kcv", "--key", &key_arg]), "08D7B4FB");
    assert_eq!(
        ok(&["pinblock", "--format", "0", "--pin", &pin_arg, "--pan", PAN]),
        "041261AAAAEDCBA9"
    );

    let out = Command::new(BIN)
        .args(["crypto", "kcv", "--key", "env:POSP_TEST_KEY"])
        .env("POSP_TEST_KEY", K2)
        .output()
        .unwrap();
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "08D7B4FB\n".to_string())
    );

    let missing = dir.join("missing.hex");
    let err = fails(&["kcv", "--key", &format!("@{}", missing.display())]);
    assert!(
        err.starts_with(&format!(
            "error: --key: cannot read {}: ",
            missing.display()
        )),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["crypto", "kcv", "--key", "env:POSP_TEST_UNSET_KEY"])
        .env_remove("POSP_TEST_UNSET_KEY")
        .output()
        .unwrap();
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (
            Some(2),
            "error: --key: environment variable POSP_TEST_UNSET_KEY: environment variable not found\n"
                .to_string()
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
