//! The logic behind the pboc-sam fuzz targets (`hsm_request`, `hsm_response`, `field62`,
//! `pin_block`), shared with `sam/tests/fuzz_corpus.rs`, which includes this file with
//! `#[path]` so that replaying the corpus runs exactly what the fuzzers run. It uses only
//! `pboc_sam` and `std`.
//!
//! Every function takes arbitrary bytes and must not panic except on a broken property: each
//! `assert!` is a claim the library makes (decoders never panic, whatever decodes re-encodes
//! to something that decodes equal, field 62 rebuilds to the bytes it was parsed from, a PIN
//! read from a block is the PIN written back...).

use pboc_sam::hsm::{Command, FrameConfig, Response, decode_request, decode_response};
use pboc_sam::keyexchange::{Field62Layout, WorkingKeys, build_field62, parse_field62};
use pboc_sam::pinblock::{self, ClearPinBlock, Pan, Pin, PinBlockFormat};
use pboc_sam::{AesKey, DesKey};

/// The header the structured variants put in front of the fuzzed fields.
const HEADER: &[u8; 4] = b"0000";

/// Wraps `message` in a frame with [`HEADER`] (the message is cut to fit two length bytes).
fn frame(code: [u8; 2], fields: &[u8]) -> Vec<u8> {
    let room = usize::from(u16::MAX) - HEADER.len() - 2;
    let fields = fields.get(..room).unwrap_or(fields);
    let len = HEADER.len() + 2 + fields.len();
    let mut out = Vec::with_capacity(2 + len);
    out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(HEADER);
    out.extend_from_slice(&code);
    out.extend_from_slice(fields);
    out
}

/// The command the first byte of `data` picks.
fn command_for(byte: u8) -> Command {
    Command::ALL[usize::from(byte) % Command::ALL.len()]
}

/// `hsm_request`: `data` as a whole request frame, and (so that the fuzzer reaches the field
/// decoders without having to find a length prefix and a command code) the first byte picking
/// a command whose fields are the rest.
pub fn hsm_request_target(data: &[u8]) {
    check_request_frame(data);
    if let Some((first, rest)) = data.split_first() {
        check_request_frame(&frame(command_for(*first).code(), rest));
    }
}

/// Decodes a request frame; one that decodes must encode again (with its header), decode to
/// the same header and request, and encode a second time to the same bytes.
pub fn check_request_frame(frame: &[u8]) {
    let (header, request) = match decode_request(frame) {
        Ok(ok) => ok,
        Err(e) => {
            let _ = (e.to_string(), e.hsm_code(), format!("{e:?}"));
            return;
        }
    };
    let _ = (request.command(), format!("{request:?}"));
    let config = FrameConfig::default();
    let mut wire = Vec::new();
    if let Err(e) = request.encode_frame(&config, header, &mut wire) {
        panic!("a decoded request does not encode: {e}");
    }
    let (header2, again) = match decode_request(&wire) {
        Ok(ok) => ok,
        Err(e) => panic!("a re-encoded request does not decode: {e}"),
    };
    assert!(
        header2 == header,
        "the header changed through encode and decode"
    );
    assert!(
        again == request,
        "the request changed through encode and decode"
    );
    let mut wire2 = Vec::new();
    if let Err(e) = again.encode_frame(&config, header2, &mut wire2) {
        panic!("a request decoded twice does not encode: {e}");
    }
    assert!(wire2 == wire, "the second encoding differs from the first");
}

/// `hsm_response`: `data` as a whole response frame, and the first byte picking the request
/// code whose response code goes in front of the rest (with error code `00` added for half
/// the values, so that the success layouts are reached).
pub fn hsm_response_target(data: &[u8]) {
    check_response_frame(data);
    if let Some((first, rest)) = data.split_first() {
        let code = command_for(*first).response_code();
        if (first / 16) % 2 == 0 {
            let mut fields = b"00".to_vec();
            fields.extend_from_slice(rest);
            check_response_frame(&frame(code, &fields));
        } else {
            check_response_frame(&frame(code, rest));
        }
    }
}

/// Decodes a response frame; one that decodes must encode again, decode to the same header
/// and response, and encode a second time to the same bytes.
pub fn check_response_frame(frame: &[u8]) {
    let (header, response) = match decode_response(frame) {
        Ok(ok) => ok,
        Err(e) => {
            let _ = (e.to_string(), e.hsm_code(), format!("{e:?}"));
            return;
        }
    };
    let _ = (
        response.command(),
        response.response_code(),
        format!("{response:?}"),
    );
    if let Response::Error { error, .. } = &response {
        let _ = (error.code.as_str(), error.to_string());
    }
    let config = FrameConfig::default();
    let mut wire = Vec::new();
    if let Err(e) = response.encode_frame(&config, header, &mut wire) {
        panic!("a decoded response does not encode: {e}");
    }
    let (header2, again) = match decode_response(&wire) {
        Ok(ok) => ok,
        Err(e) => panic!("a re-encoded response does not decode: {e}"),
    };
    assert!(
        header2 == header,
        "the header changed through encode and decode"
    );
    assert!(
        again == response,
        "the response changed through encode and decode"
    );
    let mut wire2 = Vec::new();
    if let Err(e) = again.encode_frame(&config, header2, &mut wire2) {
        panic!("a response decoded twice does not encode: {e}");
    }
    assert!(wire2 == wire, "the second encoding differs from the first");
}

/// The TMK of the field 62 target: the development TMK of `keyexchange`'s tests.
pub const FIELD62_TMK: [u8; 16] = [
    0xCA, 0x5D, 0x92, 0x59, 0x8D, 0xCA, 0x48, 0xCE, 0x8A, 0x4C, 0x76, 0x36, 0x1A, 0x92, 0x69, 0xE9,
];

/// Every field 62 layout.
pub const LAYOUTS: [Field62Layout; 5] = [
    Field62Layout::Single24,
    Field62Layout::Double40,
    Field62Layout::Triple56,
    Field62Layout::DoubleTdk60,
    Field62Layout::TripleTdk84,
];

/// `field62`: `data` as field 62 under [`FIELD62_TMK`]; what parses must rebuild, with the
/// parsed keys and the layout its length selects, to exactly the same bytes, which parse to
/// the same keys. Then the inverse: keys taken from `data` are built into a field and parsed
/// back.
pub fn field62_target(data: &[u8]) {
    let tmk = DesKey::double(FIELD62_TMK);
    check_field62(&tmk, data);
    build_from_input(&tmk, data);
}

fn same_keys(a: &WorkingKeys, b: &WorkingKeys) -> bool {
    let tdk = match (&a.tdk, &b.tdk) {
        (Some(x), Some(y)) => x.ct_eq(y),
        (None, None) => true,
        _ => false,
    };
    a.pik.ct_eq(&b.pik) && a.mak.ct_eq(&b.mak) && tdk
}

/// Parses `field`; a field that parses must rebuild to itself.
pub fn check_field62(tmk: &DesKey, field: &[u8]) {
    let keys = match parse_field62(tmk, field) {
        Ok(keys) => keys,
        Err(e) => {
            let _ = (e.to_string(), format!("{e:?}"));
            return;
        }
    };
    let _ = format!("{keys:?}");
    let Some(layout) = Field62Layout::from_len(field.len()) else {
        panic!("field 62 of {} bytes parsed without a layout", field.len());
    };
    assert_eq!(layout.len(), field.len());
    assert_eq!(keys.tdk.is_some(), layout.keys() == 3, "TDK and layout");
    for key in [Some(&keys.pik), Some(&keys.mak), keys.tdk.as_ref()]
        .into_iter()
        .flatten()
    {
        assert!(key.len() <= layout.slot(), "a key longer than its slot");
    }
    let built = match build_field62(tmk, &keys, layout) {
        Ok(b) => b,
        Err(e) => panic!("parsed keys do not build in their own layout: {e}"),
    };
    assert!(built == field, "field 62 rebuilt differs from the input");
    match parse_field62(tmk, &built) {
        Ok(again) => assert!(same_keys(&again, &keys), "keys changed through build"),
        Err(e) => panic!("a rebuilt field 62 does not parse: {e}"),
    }
}

/// Builds a field from keys in `data` (byte 0: layout and key lengths; then key bytes) and
/// parses it back. Building fails only for a key longer than the slot or a TDK that does not
/// match the layout.
fn build_from_input(tmk: &DesKey, data: &[u8]) {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let layout = LAYOUTS[usize::from(choice % 5)];
    let lengths = [8usize, 16, 24];
    let mut rest = rest;
    let mut take = |selector: u8| -> Option<DesKey> {
        let len = lengths[usize::from(selector % 3)];
        let (bytes, tail) = rest.split_at_checked(len)?;
        rest = tail;
        DesKey::from_bytes(bytes).ok()
    };
    let (Some(pik), Some(mak)) = (take(choice / 5), take(choice / 15)) else {
        return;
    };
    let tdk = if layout.keys() == 3 {
        match take(choice / 45) {
            Some(k) => Some(k),
            None => return,
        }
    } else {
        None
    };
    let keys = WorkingKeys { pik, mak, tdk };
    let fits = [Some(&keys.pik), Some(&keys.mak), keys.tdk.as_ref()]
        .into_iter()
        .flatten()
        .all(|k| k.len() <= layout.slot());
    let field = match build_field62(tmk, &keys, layout) {
        Ok(f) => f,
        Err(e) => {
            assert!(!fits, "keys that fit do not build: {e}");
            return;
        }
    };
    assert!(fits, "a key longer than the slot was built");
    assert_eq!(field.len(), layout.len());
    // A slot whose encrypted key ends in a zero block reads back shorter (a chance of 2^-64
    // per block for random keys); the KCV catches it, so that is the one allowed failure.
    match parse_field62(tmk, &field) {
        Ok(back) => {
            assert!(
                same_keys(&back, &keys),
                "keys changed through build and parse"
            );
            check_field62(tmk, &field);
        }
        Err(e) => {
            let zero_block = field.chunks(8).any(|b| b == [0u8; 8]);
            assert!(zero_block, "a built field 62 does not parse: {e}");
        }
    }
}

/// The fixed PAN of the PIN block target.
pub const PIN_PAN: &str = "5555555551234567";

/// The formats of the PIN block target.
pub const FORMATS: [PinBlockFormat; 4] = [
    PinBlockFormat::Iso0,
    PinBlockFormat::Iso1,
    PinBlockFormat::Iso3,
    PinBlockFormat::Iso4,
];

fn array<const N: usize>(data: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(data.iter().skip(at)) {
        *o = *b;
    }
    out
}

/// `pin_block`: bytes 0..8 are a clear 8-byte block, 8..16 the fill, 16..32 a format 4 block,
/// byte 32 a PIN length and the bytes after it digits (a PAN of up to 19, then the PIN). Every
/// format is decoded against the fixed PAN and the PAN from the input; whatever decodes is
/// re-encoded, converted to every format and translated between two keys, and must give the
/// same PIN back. The PIN from the input goes the other way round.
pub fn pin_block_target(data: &[u8]) {
    let block: [u8; 8] = array(data, 0);
    let fill: [u8; 8] = array(data, 8);
    let iso4: [u8; 16] = array(data, 16);
    let tail = data.get(33..).unwrap_or_default();
    // The raw tail as a PAN and a PIN: mostly errors, which must not panic.
    if let Ok(text) = std::str::from_utf8(tail) {
        let _ = Pan::new(text).map(|p| (p.to_string(), format!("{p:?}")));
        let _ = Pin::new(text).map(|p| format!("{p:?}"));
    }
    let digits: String = tail.iter().map(|b| char::from(b'0' + b % 10)).collect();
    let mut pans = Vec::new();
    if let Ok(pan) = Pan::new(PIN_PAN) {
        pans.push(pan);
    }
    let pan_len = digits.len().min(19);
    if let Ok(pan) = Pan::new(&digits[..pan_len]) {
        assert_eq!(pan.len(), pan_len);
        pans.push(pan);
    }
    let pin_len = usize::from(data.get(32).copied().unwrap_or(0) % 16);
    let pin = digits
        .get(pan_len..pan_len + pin_len)
        .and_then(|d| Pin::new(d).ok());
    for pan in &pans {
        for format in FORMATS {
            check_block(format, &ClearPinBlock::new(block), pan, &fill);
        }
        check_iso4(&iso4, pan, &fill);
        if let Some(pin) = &pin {
            check_pin(pin, pan, &fill);
        }
    }
}

fn keys() -> (DesKey, DesKey, AesKey) {
    (
        DesKey::double(*b"0123456789ABCDEF"),
        DesKey::single(*b"PINKEY!!"),
        match AesKey::from_bytes(b"AES PIN BLOCK K!") {
            Ok(k) => k,
            Err(e) => panic!("the fixed AES key: {e}"),
        },
    )
}

/// The PIN in `block`, if it decodes, survives re-encoding, conversion and translation.
fn check_block(format: PinBlockFormat, block: &ClearPinBlock, pan: &Pan, fill: &[u8; 8]) {
    let decoded = pinblock::decode(format, block, pan);
    if format == PinBlockFormat::Iso4 {
        assert!(decoded.is_err(), "format 4 decoded from 8 bytes");
    }
    let pin = match decoded {
        Ok(pin) => pin,
        Err(e) => {
            let _ = e.to_string();
            for to in FORMATS {
                assert!(
                    pinblock::convert(block, format, to, pan, fill).is_err(),
                    "a block that does not decode converts"
                );
            }
            return;
        }
    };
    assert!((4..=12).contains(&pin.len()), "PIN length {}", pin.len());
    assert!(pin.digits().iter().all(|d| *d <= 9), "a PIN digit over 9");
    let _ = format!("{pin:?}");
    match pinblock::encode(format, &pin, pan, fill) {
        Ok(again) => {
            if format == PinBlockFormat::Iso0 {
                assert!(again.as_bytes() == block.as_bytes(), "format 0 re-encodes");
            }
            match pinblock::decode(format, &again, pan) {
                Ok(p) => assert!(p.ct_eq(&pin), "re-encoded PIN differs"),
                Err(e) => panic!("a re-encoded block does not decode: {e}"),
            }
        }
        Err(e) => panic!("a decoded PIN does not encode: {e}"),
    }
    let (from_key, to_key, _) = keys();
    for to in FORMATS {
        // Format 1 is not bound to the PAN, format 4 is 16 bytes: no conversion into them.
        let allowed = !matches!(
            (format, to),
            (
                PinBlockFormat::Iso0 | PinBlockFormat::Iso3,
                PinBlockFormat::Iso1
            ) | (PinBlockFormat::Iso4, _)
                | (_, PinBlockFormat::Iso4)
        );
        match pinblock::convert(block, format, to, pan, fill) {
            Ok(out) => {
                assert!(allowed, "{format} converted to {to}");
                match pinblock::decode(to, &out, pan) {
                    Ok(p) => assert!(p.ct_eq(&pin), "conversion changed the PIN"),
                    Err(e) => panic!("a converted block does not decode: {e}"),
                }
            }
            Err(e) => assert!(!allowed, "{format} to {to} refused: {e}"),
        }
        let encrypted = pinblock::encrypt_block(&from_key, block);
        match pinblock::translate(&encrypted, &from_key, format, &to_key, to, pan, fill) {
            Ok(out) => {
                assert!(allowed, "{format} translated to {to}");
                let clear = pinblock::decrypt_block(&to_key, &out);
                match pinblock::decode(to, &clear, pan) {
                    Ok(p) => assert!(p.ct_eq(&pin), "translation changed the PIN"),
                    Err(e) => panic!("a translated block does not decode: {e}"),
                }
            }
            Err(e) => assert!(!allowed, "{format} to {to} not translated: {e}"),
        }
    }
}

/// A format 4 block from the input: what decrypts must encrypt and decrypt to the same PIN.
fn check_iso4(block: &[u8; 16], pan: &Pan, fill: &[u8; 8]) {
    let (_, _, aes) = keys();
    if let Ok(pin) = pinblock::decrypt_iso4(&aes, block, pan) {
        let again = pinblock::encrypt_iso4(&aes, &pin, pan, fill);
        match pinblock::decrypt_iso4(&aes, &again, pan) {
            Ok(p) => assert!(p.ct_eq(&pin), "format 4 changed the PIN"),
            Err(e) => panic!("a format 4 block does not decrypt: {e}"),
        }
    }
}

/// A PIN from the input, written in every format, reads back the same.
fn check_pin(pin: &Pin, pan: &Pan, fill: &[u8; 8]) {
    for format in FORMATS {
        match pinblock::encode(format, pin, pan, fill) {
            Ok(block) => {
                match pinblock::decode(format, &block, pan) {
                    Ok(p) => assert!(p.ct_eq(pin), "{format}: the PIN changed"),
                    Err(e) => panic!("{format}: an encoded PIN does not decode: {e}"),
                }
                check_block(format, &block, pan, fill);
            }
            Err(e) => assert!(format == PinBlockFormat::Iso4, "{format}: {e}"),
        }
    }
    let (_, _, aes) = keys();
    let block = pinblock::encrypt_iso4(&aes, pin, pan, fill);
    match pinblock::decrypt_iso4(&aes, &block, pan) {
        Ok(p) => assert!(p.ct_eq(pin), "format 4 changed the PIN"),
        Err(e) => panic!("format 4 does not decrypt its own block: {e}"),
    }
}
