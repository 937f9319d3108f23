//! Writes the seed corpus under `fuzz/corpus/<target>/`: `cargo run --example make_corpus`
//! (from `fuzz/`). Deterministic: running it again rewrites the same files.
//!
//! Seeds: the iso87-ascii fixtures and the same messages in iso87-binary, hand-built iso93 and
//! UnionPay messages, frames in every layout, BER-TLV (field 55 and templates), small spec files
//! in TOML and JSON, and a few inputs for the round-trip builder.

use std::fs;
use std::path::{Path, PathBuf};

use iso8583_wire::frame::{CupsHeader, FrameConfig, Tpdu};
use iso8583_wire::spec_file::{to_json, to_toml};
use iso8583_wire::tlv::{Tag, TlvBuilder};
use iso8583_wire::{
    Align, BitmapEncoding, Counts, DataClass, Encoding, FieldSpec, Layout, Length, MessageBuf,
    MtiEncoding, PadNibble, PrefixEncoding, Spec, Subfield, decode, specs,
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

    let mut count = 0;
    for dir in fs::read_dir(root())? {
        count += fs::read_dir(dir?.path())?.count();
    }
    println!("wrote {count} files under {}", root().display());
    Ok(())
}
