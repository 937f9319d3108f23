//! Writes the seed corpus under `fuzz/corpus/<target>/`: `cargo run --example make_corpus`
//! (from `fuzz/`). Deterministic: running it again rewrites the same files.
//!
//! Seeds: the iso87-ascii fixtures and the same messages in iso87-binary, hand-built iso93 and
//! UnionPay messages, frames in every layout, BER-TLV (field 55 and templates), small spec files
//! in TOML and JSON, and a few inputs for the round-trip builder. For pboc-sam and pboc-card:
//! HSM host protocol requests and responses (the exact frames of `sam/tests/hsm_protocol.rs`),
//! field 62 in every layout, PIN blocks, and the card, PSAM and terminal APDUs of
//! `pboc-card/tests/card.rs` and `pboc-card/tests/psam.rs`, single and as sessions.

use std::fs;
use std::path::{Path, PathBuf};

use iso8583_wire::frame::{CupsHeader, FrameConfig, Tpdu};
use iso8583_wire::spec_file::{to_json, to_toml};
use iso8583_wire::tlv::{Tag, TlvBuilder};
use iso8583_wire::{
    Align, BitmapEncoding, Counts, DataClass, Encoding, FieldSpec, Layout, Length, MessageBuf,
    MtiEncoding, PadNibble, PrefixEncoding, Spec, Subfield, decode, specs,
};

use iso8583_wire_fuzz::card::join_session;
use pboc_card::TransactionType;
use pboc_card::command::{
    CipherData, CipherMode, CreditSamForPurchase, DeliveryKey, InitSamForPurchase,
};
use pboc_card::psam::{DEFAULT_PSAM_AID, KEY_USAGE_TAC, purchase_mac1};
use pboc_sam::hsm::{Command, FrameConfig as HsmFrameConfig, Request, Response};
use pboc_sam::keyexchange::{Field62Layout, WorkingKeys, build_field62, parse_field62};
use pboc_sam::{
    AesKey, DataMode, DesKey, DesKeyLength, ExportedKey, GeneratedKey, HsmError, HsmErrorCode, Kcv,
    KeyRef, KeyType, LoadRequest, MacAlgorithm, Pan, Pin, PinBlockFormat, PinTranslation,
    TacRequest, mac, pboc, pinblock,
};

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

fn write(target: &str, name: &str, bytes: &[u8]) -> Res {
    assert!(
        bytes.len() < 4096,
        "{target}/{name} is {} bytes",
        bytes.len()
    );
    let dir = root().join(target);
    fs::create_dir_all(&dir)?;
    fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn fixture(name: &str) -> Res<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../iso8583/tests/vectors/iso87-ascii")
        .join(format!("{name}.hex"));
    let text = fs::read_to_string(path)?;
    let text = text.trim();
    let mut out = Vec::with_capacity(text.len() / 2);
    for pair in text.as_bytes().chunks(2) {
        out.push(u8::from_str_radix(std::str::from_utf8(pair)?, 16)?);
    }
    Ok(out)
}

fn tag(t: u32) -> Res<Tag> {
    Tag::new(t).ok_or_else(|| format!("bad tag {t:X}").into())
}

/// Field 55 of the 0200 fixture.
fn field55() -> Res<Vec<u8>> {
    let bytes = fixture("0200")?;
    let msg = decode(specs::iso87_ascii(), &bytes)?;
    let f = msg.field(55).ok_or("no field 55")?;
    Ok(f.binary()?.to_vec())
}

fn cups_purchase() -> Res<Vec<u8>> {
    let mut icc = Vec::new();
    let mut b = TlvBuilder::new(&mut icc);
    b.push(
        tag(0x9F26)?,
        &[0x1A, 0x2B, 0x3C, 0x4D, 0x5E, 0x6F, 0x70, 0x81],
    )?
    .push(tag(0x9F27)?, &[0x80])?
    .push(tag(0x9F36)?, &[0x00, 0x42])?
    .push(
        tag(0x5A)?,
        &[0x62, 0x22, 0x02, 0x12, 0x34, 0x56, 0x01, 0x23],
    )?;
    b.finish()?;
    let mut m = MessageBuf::new("0200")?;
    m.set(2, "6222021234560123")
        .set(3, "000000")
        .set(4, "000000000051")
        .set(11, "000632")
        .set(14, "2812")
        .set(22, "051")
        .set(23, "001")
        .set(25, "00")
        .set(26, "12")
        .set(35, "6222021234560123D28122011143804")
        .set(41, "16688014")
        .set(42, "000000000000001")
        .set(49, "156")
        .set(52, &[0xAC, 0xF4, 0x6E, 0x73, 0x83, 0x8A, 0x82, 0xF9])
        .set(53, "2600000000000000")
        .set(55, icc)
        .set(60, "22000001000")
        .set(61, "000001000632")
        .set(63, "01 ")
        .set(64, &[0x38, 0x41, 0x39, 0x45, 0x39, 0x31, 0x42, 0x38]);
    Ok(m.to_vec(specs::cups_pos())?)
}

fn cups_signin() -> Res<Vec<u8>> {
    let mut m = MessageBuf::new("0800")?;
    m.set(11, 1u32)
        .set(41, "16688014")
        .set(42, "000000000000001")
        .set(60, "00000001003")
        .set(63, "01 ");
    Ok(m.to_vec(specs::cups_pos())?)
}

fn cups_signin_reply() -> Res<Vec<u8>> {
    let mut m = MessageBuf::new("0810")?;
    m.set(11, 1u32)
        .set(12, "113245")
        .set(13, "1128")
        .set(32, "48020000")
        .set(37, "633112345678")
        .set(39, "00")
        .set(41, "16688014")
        .set(42, "000000000000001")
        .set(60, "00000001003")
        .set(62, vec![0x5A; 40]);
    Ok(m.to_vec(specs::cups_pos())?)
}

fn iso93_messages() -> Res<Vec<(&'static str, Vec<u8>)>> {
    let spec = specs::iso93_ascii();
    let mut auth = MessageBuf::new("1100")?;
    auth.set(2, "4761739001010119")
        .set(3, "000000")
        .set(4, "000000012500")
        .set(11, "000001")
        .set(12, "261128113245")
        .set(22, "51010151134C")
        .set(24, "100")
        .set(35, "4761739001010119=2812201")
        .set(41, "TERM0001")
        .set(43, "ACME HARDWARE>SPRINGFIELD IL US")
        .set(49, "840")
        .set(55, vec![0x9F, 0x27, 0x01, 0x80]);
    let mut network = MessageBuf::new("1804")?;
    network
        .set(7, "1128113245")
        .set(11, "000002")
        .set(24, "831")
        .set(93, "12345")
        .set(94, "678")
        .set(96, vec![0x11; 16])
        .set(128, vec![0x22; 8]);
    // A tertiary bitmap announcing nothing: bit 65 set, word zero, then field 70.
    let mut tertiary = b"1804".to_vec();
    tertiary.extend_from_slice(b"8000000000000000");
    tertiary.extend_from_slice(b"8400000000000000");
    tertiary.extend_from_slice(b"0000000000000000");
    tertiary.extend_from_slice(b"301");
    Ok(vec![
        ("1100", auth.to_vec(spec)?),
        ("1804", network.to_vec(spec)?),
        ("tertiary-empty", tertiary),
    ])
}

/// A small spec that uses every encoding and layout kind.
fn small_spec() -> Res<Spec> {
    let f = FieldSpec::new;
    let fields = vec![
        (
            2,
            f("pan", DataClass::N, Length::ll(19), Encoding::Ebcdic037)
                .with_prefix(PrefixEncoding::Ebcdic, Counts::Units),
        ),
        (
            3,
            f("code", DataClass::N, Length::Fixed(5), Encoding::Bcd)
                .with_bcd(Align::Right, PadNibble::F),
        ),
        (
            28,
            f("fee", DataClass::XN, Length::Fixed(9), Encoding::Ebcdic1047),
        ),
        (
            35,
            f("track", DataClass::Z, Length::ll(37), Encoding::Bcd)
                .with_prefix(PrefixEncoding::Binary, Counts::Bytes),
        ),
        (
            48,
            f("private", DataClass::Ans, Length::lll(99), Encoding::Ascii)
                .with_prefix(PrefixEncoding::HexAscii, Counts::Units),
        ),
        (
            55,
            FieldSpec {
                layout: Some(Layout::Tlv),
                ..f("icc", DataClass::B, Length::lll(255), Encoding::Binary)
                    .with_prefix(PrefixEncoding::Binary, Counts::Bytes)
            },
        ),
        (
            60,
            FieldSpec {
                layout: Some(Layout::Bitmapped {
                    bitmap_bytes: 1,
                    subfields: vec![Subfield::new("a", 2), Subfield::new("b", 3)],
                }),
                ..f("bits", DataClass::Ans, Length::lll(20), Encoding::Ascii)
            },
        ),
        (
            61,
            FieldSpec {
                layout: Some(Layout::Positional(vec![
                    Subfield::new("x", 2),
                    Subfield::new("y", 4),
                ])),
                ..f(
                    "pos",
                    DataClass::N,
                    Length::Var { prefix: 4, max: 12 },
                    Encoding::Ascii,
                )
            },
        ),
        (
            64,
            f("mac", DataClass::B, Length::Fixed(8), Encoding::HexAscii),
        ),
    ];
    Ok(Spec::new(
        "small",
        MtiEncoding::Ebcdic,
        BitmapEncoding::Ebcdic,
        false,
        fields,
    )?)
}

fn main() -> Res {
    let _ = fs::remove_dir_all(root());
    let fixtures = ["0800", "0200", "large"];

    // Message decoders.
    for name in fixtures {
        let bytes = fixture(name)?;
        write("decode_iso87_ascii", &format!("{name}.bin"), &bytes)?;
        let buf = decode(specs::iso87_ascii(), &bytes)?.to_buf();
        write(
            "decode_iso87_binary",
            &format!("{name}.bin"),
            &buf.to_vec(specs::iso87_binary())?,
        )?;
    }
    for (name, bytes) in iso93_messages()? {
        write("decode_iso93_ascii", &format!("{name}.bin"), &bytes)?;
    }
    let purchase = cups_purchase()?;
    let signin = cups_signin()?;
    let reply = cups_signin_reply()?;
    write("decode_cups_pos", "purchase.bin", &purchase)?;
    write("decode_cups_pos", "signin.bin", &signin)?;
    write("decode_cups_pos", "signin-reply.bin", &reply)?;

    // Frames.
    let tpdu = Tpdu::new(0x0004, 0x0000);
    let header: CupsHeader = "602200000000".parse()?;
    let mut wire = Vec::new();
    FrameConfig::cups_pos().encode(Some(tpdu), Some(header), &purchase, &mut wire)?;
    write("frame_decode", "cups-purchase.bin", &wire)?;
    let mut two = Vec::new();
    FrameConfig::cups_pos().encode(Some(tpdu), Some(header), &signin, &mut two)?;
    FrameConfig::cups_pos().encode(Some(tpdu.reply()), Some(header), &reply, &mut two)?;
    write("frame_decode", "cups-two-frames.bin", &two)?;
    let f0800 = fixture("0800")?;
    let f0200 = fixture("0200")?;
    for (name, config) in [
        ("len2", FrameConfig::len2()),
        ("len4", FrameConfig::len4()),
        ("ascii4", FrameConfig::ascii4()),
        ("bcd2", FrameConfig::bcd2()),
    ] {
        let mut out = Vec::new();
        config.encode(None, None, &f0800, &mut out)?;
        config.encode(None, None, &f0200, &mut out)?;
        write("frame_decode", &format!("{name}.bin"), &out)?;
        let mut own = config;
        own.includes_self(true);
        let mut out = Vec::new();
        own.encode(None, None, &f0800, &mut out)?;
        write("frame_decode", &format!("{name}-includes-self.bin"), &out)?;
    }
    write("frame_decode", "none.bin", &f0800)?;
    let mut partial = Vec::new();
    FrameConfig::ascii4().encode(None, None, &f0800, &mut partial)?;
    partial.truncate(20);
    write("frame_decode", "ascii4-partial.bin", &partial)?;

    // BER-TLV.
    let f55 = field55()?;
    write("tlv_reader", "field55.bin", &f55)?;
    let mut nested = Vec::new();
    let mut b = TlvBuilder::new(&mut nested);
    b.begin(tag(0x70)?)?
        .push(
            tag(0x5A)?,
            &[0x62, 0x22, 0x02, 0x12, 0x34, 0x56, 0x01, 0x23],
        )?
        .begin(tag(0xBF0C)?)?
        .push(tag(0x9F4D)?, &[0x0B, 0x0A])?
        .end()?
        .end()?
        .begin(tag(0x77)?)?
        .push(tag(0x9F27)?, &[0x80])?
        .push(tag(0x9F10)?, &[0x06, 0x01, 0x0A, 0x03, 0xA0, 0xB8, 0x00])?
        .end()?;
    b.finish()?;
    write("tlv_reader", "templates.bin", &nested)?;
    let mut long = Vec::new();
    let mut b = TlvBuilder::new(&mut long);
    b.push(tag(0x9F1F)?, &[0x31; 200])?
        .push(tag(0xDF8101)?, &[0x32; 300])?
        .push(tag(0x00)?, &[])?;
    b.finish()?;
    write("tlv_reader", "long-forms.bin", &long)?;
    // Non-minimal lengths and padding, as some terminals send them.
    write(
        "tlv_reader",
        "non-minimal.bin",
        &[
            0x9F, 0x27, 0x81, 0x01, 0x80, 0x00, 0x00, 0x95, 0x82, 0x00, 0x01, 0x00,
        ],
    )?;
    write(
        "tlv_reader",
        "indefinite.bin",
        &[0x70, 0x80, 0x9F, 0x27, 0x01, 0x80, 0x00, 0x00],
    )?;

    // Spec files.
    let small = small_spec()?;
    write("spec_file", "small.toml", to_toml(&small)?.as_bytes())?;
    write("spec_file", "small.json", to_json(&small)?.as_bytes())?;
    let tiny = Spec::new(
        "tiny",
        MtiEncoding::Ascii,
        BitmapEncoding::HexAscii,
        true,
        vec![
            (
                65,
                FieldSpec::new(
                    "tertiary",
                    DataClass::B,
                    Length::Fixed(8),
                    Encoding::HexAscii,
                ),
            ),
            (
                130,
                FieldSpec::new("extra", DataClass::An, Length::ll(10), Encoding::Ascii),
            ),
        ],
    )?;
    write("spec_file", "tiny.toml", to_toml(&tiny)?.as_bytes())?;
    write("spec_file", "tiny.json", to_json(&tiny)?.as_bytes())?;

    // The round-trip builder: first byte picks the spec, the rest drives the choices.
    for (i, fill) in [(0u8, 0xFFu8), (1, 0x5A), (2, 0xA5), (3, 0xFF), (3, 0x01)] {
        let mut input = vec![i];
        input.extend((0..256u32).map(|k| fill.rotate_left(k % 8) ^ (k as u8)));
        write("roundtrip", &format!("spec{i}-{fill:02x}.bin"), &input)?;
    }

    hsm_seeds()?;
    field62_seeds()?;
    pin_block_seeds()?;
    card_seeds()?;
    psam_seeds()?;
    terminal_seeds()?;

    let mut count = 0;
    for dir in fs::read_dir(root())? {
        count += fs::read_dir(dir?.path())?.count();
    }
    println!("wrote {count} files under {}", root().display());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// pboc-sam and pboc-card

/// Hex text (spaces allowed) to bytes.
fn h(text: &str) -> Res<Vec<u8>> {
    let text: String = text.split_whitespace().collect();
    let mut out = Vec::with_capacity(text.len() / 2);
    for pair in text.as_bytes().chunks(2) {
        out.push(u8::from_str_radix(std::str::from_utf8(pair)?, 16)?);
    }
    Ok(out)
}

fn key_ref(key_type: KeyType, length: DesKeyLength, byte: u8, kcv: &str) -> Res<KeyRef> {
    Ok(KeyRef {
        key_type,
        length,
        cryptogram: vec![byte; length.bytes()],
        kcv: Kcv::from_hex(kcv)?,
    })
}

fn hsm_seeds() -> Res {
    let config = HsmFrameConfig::default();
    let requests = [
        ("nc", b"0000".as_slice(), Request::Diagnostics),
        (
            "m6",
            b"00A1",
            Request::GenerateMac {
                key: key_ref(KeyType::Tak, DesKeyLength::Double, 0x1A, "AB7153")?,
                algorithm: MacAlgorithm::X919,
                data: b"hello".to_vec(),
            },
        ),
        (
            "m8",
            b"ZZZZ",
            Request::VerifyMac {
                key: key_ref(KeyType::Zak, DesKeyLength::Single, 0x22, "01020304")?,
                algorithm: MacAlgorithm::Pboc,
                data: vec![0x00, 0xFF],
                mac: vec![1, 2, 3, 4],
            },
        ),
        (
            "a0",
            b"0001",
            Request::GenerateKey {
                key_type: KeyType::Zpk,
                length: DesKeyLength::Double,
                export_under: Some(key_ref(KeyType::Zmk, DesKeyLength::Triple, 0xC3, "C0FFEE")?),
            },
        ),
        (
            "ca",
            b"1234",
            Request::TranslatePinTpk(PinTranslation {
                source_key: key_ref(KeyType::Tpk, DesKeyLength::Double, 0x01, "AAAAAA")?,
                source_format: PinBlockFormat::Iso0,
                dest_key: key_ref(KeyType::Zpk, DesKeyLength::Double, 0x02, "BBBBBB")?,
                dest_format: PinBlockFormat::Iso3,
                pan: Pan::new("6228480402564890018")?,
                block: [0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0],
            }),
        ),
        (
            "qc",
            b"0000",
            Request::PbocLoadMac2 {
                dlk_master: key_ref(KeyType::PbocLoad, DesKeyLength::Double, 0x44, "0A0B0C0D")?,
                request: LoadRequest {
                    factors: vec![[0x11; 8], [0x22; 8]],
                    random: [0xA1, 0xA2, 0xA3, 0xA4],
                    online_seq: 0x0102,
                    balance: 1000,
                    amount: 5000,
                    tx_type: 0x02,
                    terminal: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66],
                    date: [0x20, 0x24, 0x01, 0x31],
                    time: [0x12, 0x34, 0x56],
                    mac1: [0xCA, 0xFE, 0xBA, 0xBE],
                },
            },
        ),
        (
            "qe",
            b"0000",
            Request::PbocVerifyTac {
                dtk_master: key_ref(KeyType::PbocTac, DesKeyLength::Double, 0x55, "01")?,
                request: TacRequest {
                    factors: vec![],
                    data: vec![b'x'; 3],
                    tac: [9, 8, 7, 6],
                },
            },
        ),
        (
            "m0",
            b"0000",
            Request::EncryptData {
                key: key_ref(KeyType::Tdk, DesKeyLength::Double, 0x77, "112233")?,
                mode: DataMode::Cbc([0, 1, 2, 3, 4, 5, 6, 7]),
                data: vec![0xAA; 8],
            },
        ),
        (
            "a6",
            b"0000",
            Request::ImportKey {
                kek: key_ref(KeyType::Tmk, DesKeyLength::Double, 0x99, "ABCDEF")?,
                key_type: KeyType::Tak,
                encrypted: vec![0x10; 16],
                expected_kcv: Some(Kcv::from_hex("FEDCBA")?),
            },
        ),
    ];
    for (name, header, request) in requests {
        let mut frame = Vec::new();
        request.encode_frame(&config, header, &mut frame)?;
        write("hsm_request", &format!("{name}.bin"), &frame)?;
    }
    // The structured form: the first byte picks the command (index in `Command::ALL`).
    let qa = Command::ALL
        .iter()
        .position(|c| *c == Command::PbocDeriveKey)
        .ok_or("no QA")?;
    let mut derive = vec![u8::try_from(qa)?];
    derive.extend_from_slice(b"101U");
    derive.extend_from_slice("66".repeat(16).as_bytes());
    derive.extend_from_slice(b"3ABCDEF10123456789ABCDEF");
    write("hsm_request", "structured-qa.bin", &derive)?;

    let responses = [
        (
            "m7",
            Response::GenerateMac(vec![0xDE, 0xAD, 0xBE, 0xEF, 0, 1, 2, 3]),
        ),
        (
            "m9-01",
            Response::error(
                Command::VerifyMac,
                HsmError::new(HsmErrorCode::VerificationFailed, "MAC: verification failed"),
            ),
        ),
        (
            "a1",
            Response::GenerateKey(GeneratedKey {
                key: key_ref(KeyType::Zpk, DesKeyLength::Double, 0x0F, "12345678")?,
                under_kek: Some(vec![0xF0; 16]),
            }),
        ),
        ("cb", Response::TranslatePinTpk([0xAB; 8])),
        ("qd", Response::PbocLoadMac2([0x01, 0x02, 0x03, 0x04])),
        ("b3", Response::Echo(b"ping".to_vec())),
        (
            "bv",
            Response::KeyCheckValue(Kcv::from_hex("0123456789ABCDEF")?),
        ),
        (
            "a9",
            Response::ExportKey(ExportedKey {
                encrypted: vec![0x21; 8],
                kcv: Kcv::from_hex("C0C0C0")?,
            }),
        ),
    ];
    for (name, response) in responses {
        let mut frame = Vec::new();
        response.encode_frame(&config, b"0000", &mut frame)?;
        write("hsm_response", &format!("{name}.bin"), &frame)?;
    }
    // An HSM without keys, and another HSM's bare error code.
    write("hsm_response", "nd-12.bin", b"\x00\x080000ND12")?;
    write("hsm_response", "m9-bare.bin", b"\x00\x080000M901")?;
    Ok(())
}

fn field62_seeds() -> Res {
    let tmk = DesKey::from_hex("CA5D92598DCA48CE8A4C76361A9269E9")?;
    let f40 =
        h("6701EAD6A9AD51E51AA406E2C27FCFA9 8D0A74B8 B651F9E9BACE9AE1 0000000000000000 AB7153CA")?;
    let keys = parse_field62(&tmk, &f40)?;
    write("field62", "double40.bin", &f40)?;
    let single = WorkingKeys {
        pik: DesKey::from_hex("1111111111111111")?,
        mak: DesKey::from_hex("2222222222222222")?,
        tdk: None,
    };
    write(
        "field62",
        "single24.bin",
        &build_field62(&tmk, &single, Field62Layout::Single24)?,
    )?;
    let triple = WorkingKeys {
        pik: DesKey::from_hex("0123456789ABCDEFFEDCBA987654321089ABCDEF01234567")?,
        mak: keys.mak.clone(),
        tdk: None,
    };
    write(
        "field62",
        "triple56.bin",
        &build_field62(&tmk, &triple, Field62Layout::Triple56)?,
    )?;
    let with_tdk = WorkingKeys {
        tdk: Some(DesKey::from_hex("0123456789ABCDEFFEDCBA9876543210")?),
        ..keys.clone()
    };
    write(
        "field62",
        "tdk60.bin",
        &build_field62(&tmk, &with_tdk, Field62Layout::DoubleTdk60)?,
    )?;
    write(
        "field62",
        "tdk84.bin",
        &build_field62(&tmk, &with_tdk, Field62Layout::TripleTdk84)?,
    )?;
    // A KCV off by one bit.
    let mut bad = f40.clone();
    if let Some(last) = bad.last_mut() {
        *last ^= 1;
    }
    write("field62", "kcv-mismatch.bin", &bad)?;
    Ok(())
}

/// A `pin_block` input: block, fill, format 4 block, PIN length, then PAN and PIN digits.
fn pin_input(
    block: &[u8; 8],
    fill: &[u8; 8],
    iso4: &[u8; 16],
    pin_len: u8,
    digits: &str,
) -> Vec<u8> {
    let mut out = block.to_vec();
    out.extend_from_slice(fill);
    out.extend_from_slice(iso4);
    out.push(pin_len);
    out.extend_from_slice(digits.as_bytes());
    out
}

fn pin_block_seeds() -> Res {
    let pan = Pan::new(iso8583_wire_fuzz::sam::PIN_PAN)?;
    let pin = Pin::new("1234")?;
    let fill = [0x5A; 8];
    let aes = AesKey::from_bytes(b"AES PIN BLOCK K!")?;
    let iso4 = pinblock::encrypt_iso4(&aes, &pin, &pan, &fill);
    // The tail: a 16-digit PAN then a PIN of `pin_len` digits (digits are bytes mod 10).
    let tail = "6225880123456789123456";
    for (name, format) in [
        ("iso0", PinBlockFormat::Iso0),
        ("iso1", PinBlockFormat::Iso1),
        ("iso3", PinBlockFormat::Iso3),
    ] {
        let block = pinblock::encode(format, &pin, &pan, &fill)?;
        write(
            "pin_block",
            &format!("{name}.bin"),
            &pin_input(block.as_bytes(), &fill, &iso4, 6, tail),
        )?;
    }
    // Format 0 against the PAN from the input: PIN 123456 with 6225880123456789.
    let other = Pan::new("6225880123456789")?;
    let block = pinblock::encode(PinBlockFormat::Iso0, &Pin::new("123456")?, &other, &fill)?;
    write(
        "pin_block",
        "iso0-input-pan.bin",
        &pin_input(
            block.as_bytes(),
            &fill,
            &iso4,
            12,
            "6225880123456789987654321098",
        ),
    )?;
    Ok(())
}

fn apdu(text: &str) -> Res<Vec<u8>> {
    h(text)
}

fn card_seeds() -> Res {
    let singles = [
        ("select", "00A4040009 A00000000386980701 00"),
        ("get-balance-ep", "805C000204"),
        ("read-record", "00B201C417"),
        ("verify-pin", "0020000003 123456"),
        ("init-load", "805000010B 01 00001000 001122334455 10"),
        ("init-purchase", "805001020B 01 00001000 001122334455 0F"),
        (
            "debit-purchase",
            "805401000F 00000001 20120229 135100 F15CAB75 08",
        ),
        ("transaction-proof", "805A000602000008"),
    ];
    for (name, text) in singles {
        write("apdu_card", &format!("{name}.bin"), &apdu(text)?)?;
    }
    // Sessions: the load vector, then the purchase vector and the proof; the PIN, balances and
    // records on the card with a PIN.
    let load_purchase = [
        "805000010B 01 00001000 001122334455 10",
        "805200000B 20111221 214822 3A845BF0 04",
        "805001020B 01 00001000 001122334455 0F",
        "805401000F 00000001 20120229 135100 F15CAB75 08",
        "805A000602000008",
        "00B201C417",
    ];
    let pin_session = [
        "00A4040009 A00000000386980701 00",
        "0020000003 123456",
        "805C000104",
        "805C000204",
        "00B095001E",
        "00B201C400",
    ];
    for (name, apdus) in [
        ("session-load-purchase", &load_purchase),
        ("session-pin", &pin_session),
    ] {
        let apdus = apdus.iter().map(|a| apdu(a)).collect::<Res<Vec<_>>>()?;
        write("apdu_card", &format!("{name}.bin"), &join_session(&apdus))?;
    }
    Ok(())
}

fn psam_seeds() -> Res {
    let serial = [0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];
    let init = InitSamForPurchase {
        card_random: [0x11, 0x22, 0x33, 0x44],
        card_offline_seq: 0,
        amount: 0x1000,
        transaction_type: TransactionType::EpPurchase,
        date: [0x20, 0x12, 0x02, 0x29],
        time: [0x13, 0x51, 0x00],
        key_version: 0x01,
        algorithm_id: 0x00,
        card_serial: serial,
        extra_factors: Vec::new(),
    };
    let init_apdu = init.to_apdu().to_bytes()?;
    let mut select = apdu("00A4040009")?;
    select.extend_from_slice(&DEFAULT_PSAM_AID);
    select.push(0x00);
    write("apdu_psam", "select.bin", &select)?;
    write("apdu_psam", "read-terminal-id.bin", &apdu("00B0960006")?)?;
    write("apdu_psam", "read-info.bin", &apdu("00B095000E")?)?;
    write("apdu_psam", "init-sam.bin", &init_apdu)?;
    // A whole purchase: INIT SAM, then CREDIT SAM with the MAC2 the card would compute.
    let dpk = pboc::diversify_path(
        &DesKey::double(iso8583_wire_fuzz::card::PSAM_MPK),
        &[serial],
    );
    let computed = purchase_mac1(&dpk, &init, &iso8583_wire_fuzz::card::TERMINAL, 1)?;
    let mac2 = mac::pboc(&computed.sespk, &pboc::purchase_mac2_input(0x1000))?;
    let credit = CreditSamForPurchase { mac2 }.to_apdu().to_bytes()?;
    write(
        "apdu_psam",
        "session-purchase.bin",
        &join_session(&[select.clone(), init_apdu.clone(), credit.clone(), credit]),
    )?;
    // DELIVERY KEY, then a TAC in three CIPHER DATA parts.
    let delivery = DeliveryKey {
        key_usage: KEY_USAGE_TAC,
        key_version: 0x01,
        factors: vec![serial],
    };
    let parts = [
        (CipherMode::MacFirst, vec![0u8; 16]),
        (CipherMode::MacNext, vec![0x11; 8]),
        (CipherMode::MacLast, vec![0x22; 6]),
    ];
    let mut session = vec![delivery.to_apdu().to_bytes()?];
    for (mode, data) in parts {
        session.push(CipherData { mode, data }.to_apdu().to_bytes()?);
    }
    write("apdu_psam", "session-tac.bin", &join_session(&session))?;
    Ok(())
}

fn terminal_seeds() -> Res {
    let responses = [
        ("init-load", "00000000 0000 01 00 11223344 2988AE5A 9000"),
        ("credit-load", "B5EFA318 9000"),
        ("init-purchase", "00002710 0000 000000 01 00 11223344 9000"),
        ("debit-purchase", "BAE5A6B1 56988A13 9000"),
        ("balance", "00001000 9000"),
        ("proof", "3A845BF0B5EFA318 9000"),
        ("terminal-id", "001122334455 9000"),
        ("psam-info", "01020304050607080910 01020304 9000"),
        ("init-sam", "00000001 42E1D6F6 9000"),
        ("not-found", "6A82"),
        ("more-data", "61 10"),
        (
            "record",
            "0000 000000 00001000 02 001122334455 20111221 214822 9000",
        ),
    ];
    for (name, text) in responses {
        write("apdu_terminal", &format!("{name}.bin"), &h(text)?)?;
    }
    Ok(())
}
