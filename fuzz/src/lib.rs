//! The logic behind the fuzz targets, shared with `iso8583/tests/fuzz_corpus.rs` (which includes
//! this file with `#[path]`) so that replaying the corpus runs exactly what the fuzzers run.
//!
//! Every function here takes arbitrary bytes and must not panic except on a broken property:
//! each `assert!` below is a claim the library makes (no panics, `decode` and `decode_partial`
//! agree, a valid message re-encodes to one that decodes to the same values, frames re-encode to
//! the bytes they came from, spec files save and load losslessly, ...).

// The pboc-sam and pboc-card targets' logic lives in files of its own, included by
// `sam/tests/fuzz_corpus.rs` and `pboc-card/tests/fuzz_corpus.rs`. They are left out when this
// file is compiled as part of `iso8583/tests/fuzz_corpus.rs` (a test, which has neither crate).
#[cfg(not(test))]
pub mod card;
#[cfg(not(test))]
pub mod sam;

use bytes::BytesMut;
use iso8583_wire::frame::{FrameConfig, LengthHeader};
use iso8583_wire::tlv::{self, MAX_DEPTH, Tag, TlvBuilder, TlvReader};
use iso8583_wire::{
    DataClass, Encoding, Field, Layout, Message, MessageBuf, Spec, decode, decode_partial, scan,
    specs,
};

/// The `last` arguments tried with `scan`.
const SCAN_LIMITS: [u16; 10] = [0, 1, 2, 3, 25, 64, 65, 128, 192, u16::MAX];

/// Decodes `data` with `spec` every way there is, touches every accessor of every field, and
/// checks the re-encoding properties of valid messages.
pub fn decode_target(spec: &Spec, data: &[u8]) {
    exercise(spec, data);
    if let Ok(msg) = decode(spec, data) {
        check_reencode(spec, &msg);
    }
}

/// [`decode_target`] with every built-in spec.
pub fn decode_every_spec(data: &[u8]) {
    for name in specs::NAMES {
        if let Some(spec) = specs::by_name(name) {
            decode_target(spec, data);
        }
    }
}

/// No-panic exercise: `decode`, `decode_partial`, `scan`, `validate`, `decode_validated`, every
/// accessor, describe and subfield paths. Asserts only that the decoders (and the validations)
/// agree with each other.
pub fn exercise(spec: &Spec, data: &[u8]) {
    let (partial, err) = decode_partial(spec, data);
    touch_message(&partial);
    if let Some(e) = err {
        let _ = (e.kind(), e.part(), e.offset(), e.field(), e.is_truncated());
        let _ = e.to_string();
        let _ = format!("{e:?}");
    }
    match decode(spec, data) {
        Ok(msg) => {
            assert!(err.is_none(), "decode succeeded but decode_partial failed");
            assert_eq!(msg.len(), partial.len());
            touch_message(&msg);
            // The fast validation (runs of same-class fields) and the field-by-field checks
            // name the same first problem, and decode_validated is the two in one.
            let first = msg.fields().find_map(|f| f.validate().err());
            assert_eq!(
                msg.validate().err(),
                first,
                "validate and Field::validate disagree"
            );
            assert_eq!(
                iso8583_wire::decode_validated(spec, data).err(),
                first,
                "decode_validated and decode + validate disagree"
            );
        }
        Err(e) => {
            assert_eq!(Some(e), err, "decode and decode_partial disagree");
            assert_eq!(iso8583_wire::decode_validated(spec, data).err(), Some(e));
        }
    }
    for last in SCAN_LIMITS {
        if let Ok(m) = scan(spec, data, last) {
            touch_message(&m);
            for f in m.fields() {
                assert!(f.number() <= last, "scan went past field {last}");
                let same = partial.field(f.number()).map(|p| (p.offset(), p.raw()));
                assert_eq!(
                    same,
                    Some((f.offset(), f.raw())),
                    "scan and decode disagree"
                );
            }
        }
    }
}

/// Touches everything a decoded (possibly partial) message offers.
pub fn touch_message(msg: &Message<'_>) {
    let _ = (
        msg.mti(),
        msg.bitmap(),
        msg.len(),
        msg.is_empty(),
        msg.spec(),
    );
    let _ = format!("{msg:?}");
    let _ = msg.validate();
    let mut seen = 0;
    for f in msg.fields() {
        touch_field(&f);
        seen += 1;
    }
    assert_eq!(seen, msg.len(), "fields() and len() disagree");
    for n in 0..=193u16 {
        let f = msg.field(n);
        assert_eq!(f.is_some(), msg.has(n));
        if let Some(f) = f {
            assert_eq!(f.number(), n);
        }
    }
    let _ = msg.describe().to_string();
    let _ = msg.describe().unmasked().to_string();
    for path in [
        "",
        ".",
        "abc",
        "2.",
        ".1",
        "0",
        "1",
        "65",
        "99999",
        "55.",
        "55.9F26",
        "55.9F",
        "55.ZZ",
        "55.9F2601",
        "55.70",
        "60.0",
        "60.1",
        "60.7",
        "60.8",
        "60.99999",
        "61.4",
        "63.2",
        "48.1",
    ] {
        touch_path(msg, path);
    }
    for f in msg.fields() {
        let n = f.number();
        touch_path(msg, &n.to_string());
        touch_path(msg, &format!("{n}.1"));
        match &f.spec().layout {
            Some(
                Layout::Positional(subs)
                | Layout::Bitmapped {
                    subfields: subs, ..
                },
            ) => {
                for s in 2..=subs.len() + 1 {
                    touch_path(msg, &format!("{n}.{s}"));
                }
            }
            Some(Layout::Tlv) => {
                if let Ok(data) = f.tlv_bytes() {
                    for t in TlvReader::new(&data).take(64).flatten() {
                        touch_path(msg, &format!("{n}.{}", t.tag()));
                    }
                }
            }
            None => {}
        }
    }
}

fn touch_path(msg: &Message<'_>, path: &str) {
    match msg.get(path) {
        Ok(Some(v)) => {
            let _ = v.to_string();
            let _ = format!("{v:?}");
        }
        Ok(None) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// Touches every accessor of one field.
pub fn touch_field(f: &Field<'_>) {
    let _ = (f.number(), f.spec(), f.prefix(), f.is_empty());
    let raw = f.raw();
    assert!(f.body_offset() >= f.offset());
    assert_eq!(f.body_offset() - f.offset(), f.prefix().len());
    let _ = f.len();
    if let Ok(s) = f.as_str() {
        assert_eq!(s.as_bytes(), raw, "as_str is not the body");
    }
    let chars = f.chars();
    let expected = chars.len();
    assert_eq!(chars.count(), expected, "chars: size_hint and count differ");
    let digits = f.digits();
    let expected = digits.len();
    assert_eq!(
        digits.count(),
        expected,
        "digits: size_hint and count differ"
    );
    let _ = f.digits().to_string();
    let _ = f.to_u64();
    if let Ok(b) = f.binary() {
        let v = b.to_vec();
        assert_eq!(v.len(), b.len(), "binary: len and to_vec differ");
        assert_eq!(b.iter().count(), b.len());
        let _ = b.is_empty();
        if let Some(s) = b.as_slice() {
            assert_eq!(s, &v[..]);
        }
        let mut out = vec![0u8; b.len()];
        assert_eq!(b.copy_to(&mut out), Some(&v[..]));
        if !v.is_empty() {
            let mut short = vec![0u8; v.len() - 1];
            assert_eq!(b.copy_to(&mut short), None);
        }
    }
    let _ = f.validate();
    let _ = f.to_string();
    let _ = format!("{f:?}");
    if let Ok(subs) = f.subfields() {
        for s in subs {
            let _ = (s.position, &s.spec.name, s.value.to_string());
        }
    }
    if let Ok(data) = f.tlv_bytes() {
        tlv_target(&data);
    }
}

/// True when some ASCII text field is not UTF-8: `to_buf` reads such bytes as Latin-1
/// characters (see `tests/robustness.rs`, `gbk_text_survives_to_buf_and_encode`), so the
/// re-encoding may differ or not fit.
fn has_non_utf8_text(msg: &Message<'_>) -> bool {
    msg.fields().any(|f| {
        f.spec().class != DataClass::B
            && f.spec().encoding == Encoding::Ascii
            && f.as_str().is_err()
    })
}

/// For a message that decoded: if it validates, its values re-encode; the re-encoding decodes,
/// validates, gives the same values (`to_buf` and every field's text), and encodes again to
/// the very same bytes.
pub fn check_reencode(spec: &Spec, msg: &Message<'_>) {
    let buf = msg.to_buf();
    let valid = msg.validate().is_ok();
    let wire = match buf.to_vec(spec) {
        Ok(w) => w,
        Err(e) => {
            assert!(
                !valid || has_non_utf8_text(msg),
                "a valid message does not re-encode: {e}"
            );
            return;
        }
    };
    let again = match decode(spec, &wire) {
        Ok(m) => m,
        Err(e) => panic!("re-encoded message does not decode: {e}"),
    };
    if valid && let Err(e) = again.validate() {
        panic!("re-encoded valid message does not validate: {e}");
    }
    let buf2 = again.to_buf();
    assert!(buf2 == buf, "to_buf changed through encode and decode");
    if valid && !has_non_utf8_text(msg) {
        for f in msg.fields() {
            if spec.is_bitmap_field(f.number()) {
                continue;
            }
            let text = again.field(f.number()).map(|g| g.to_string());
            assert_eq!(
                text,
                Some(f.to_string()),
                "field {} reads differently after encode and decode",
                f.number()
            );
        }
    }
    match buf2.to_vec(spec) {
        Ok(wire2) => assert!(wire2 == wire, "second encoding differs from the first"),
        Err(e) => panic!("decoded re-encoding does not encode again: {e}"),
    }
}

/// Property A and B for a message built from valid canonical values (the `roundtrip` target):
/// it encodes, decodes, validates, gives back exactly the values, and re-encodes to the same
/// bytes.
pub fn check_roundtrip(spec: &Spec, m: &MessageBuf<'_>) {
    let wire = match m.to_vec(spec) {
        Ok(w) => w,
        Err(e) => panic!("a canonical message does not encode: {e}"),
    };
    let msg = match decode(spec, &wire) {
        Ok(msg) => msg,
        Err(e) => panic!("an encoded message does not decode: {e}"),
    };
    if let Err(e) = msg.validate() {
        panic!("an encoded canonical message does not validate: {e}");
    }
    let back = msg.to_buf();
    for (n, v) in m.fields() {
        assert!(
            back.get(n) == Some(v),
            "field {n}: the value changed through encode and decode"
        );
    }
    assert!(back == *m, "to_buf differs from the original");
    match back.to_vec(spec) {
        Ok(again) => assert!(again == wire, "re-encoding differs"),
        Err(e) => panic!("the decoded message does not encode again: {e}"),
    }
    touch_message(&msg);
}

/// Every framing preset, and each with a length that counts itself.
pub fn frame_configs() -> Vec<FrameConfig> {
    let presets = [
        FrameConfig::cups_pos(),
        FrameConfig::len2(),
        FrameConfig::len4(),
        FrameConfig::ascii4(),
        FrameConfig::bcd2(),
        FrameConfig::none(),
    ];
    let mut all = presets.to_vec();
    for p in presets {
        if p.length_header() != LengthHeader::None {
            let mut c = p;
            c.includes_self(true);
            all.push(c);
        }
    }
    // A small maximum, so that the limit is hit too.
    let mut small = FrameConfig::cups_pos();
    small.max_frame(64);
    all.push(small);
    all
}

/// Decodes frames from `data` with every configuration, the way a connection would: frame
/// after frame with `decode` until it waits or fails, then `decode_eof` on the rest. Each frame
/// must re-encode to the bytes it came from, the `BytesMut` decoder must find the same frames,
/// and each body goes through the message decoders.
pub fn frame_target(data: &[u8]) {
    for config in frame_configs() {
        let _ = config.frame_len(data);
        let found = frames_slice(&config, data);
        let owned = frames_bytes(&config, data);
        assert!(found == owned, "slice and BytesMut decoders disagree");
        for (body, _) in &found {
            decode_every_spec(body);
        }
    }
}

type Found = Vec<(Vec<u8>, Vec<u8>)>;

/// Frames found by the slice decoder: (body, the bytes the frame took).
fn frames_slice(config: &FrameConfig, data: &[u8]) -> Found {
    let mut found = Vec::new();
    let mut rest = data;
    let mut eof = false;
    loop {
        let step = if eof {
            config.decode_eof(rest)
        } else {
            config.decode(rest)
        };
        match step {
            Ok(Some((frame, used))) => {
                assert!(used > 0 && used <= rest.len(), "frame used {used} bytes");
                let consumed = &rest[..used];
                let _ = (frame.tpdu.map(|t| (t.reply(), t.to_string())), frame.header);
                if let Some(h) = frame.header {
                    let _ = (
                        h.to_string(),
                        h.digits(),
                        h.reserved(),
                        h.software_version(),
                    );
                    let _ = (h.application_type(), h.terminal_status());
                    let _ = h.processing_requirement();
                }
                let mut out = Vec::new();
                if let Err(e) = config.encode(frame.tpdu, frame.header, frame.body, &mut out) {
                    panic!("a decoded frame does not encode: {e}");
                }
                assert!(out == consumed, "re-encoded frame differs");
                found.push((frame.body.to_vec(), consumed.to_vec()));
                rest = &rest[used..];
            }
            Ok(None) if !eof => eof = true,
            Ok(None) => break,
            Err(e) => {
                let _ = (e.kind(), e.offset(), e.is_incomplete(), e.to_string());
                break;
            }
        }
    }
    found
}

/// The same walk with the `BytesMut` decoder.
fn frames_bytes(config: &FrameConfig, data: &[u8]) -> Found {
    let mut found = Vec::new();
    let mut buf = BytesMut::from(data);
    let mut eof = false;
    loop {
        let before = buf.len();
        let step = if eof {
            config.decode_bytes_eof(&mut buf)
        } else {
            config.decode_bytes(&mut buf)
        };
        match step {
            Ok(Some(frame)) => {
                let used = before - buf.len();
                let consumed = &data[data.len() - before..data.len() - before + used];
                let view = frame.as_frame();
                assert!(view.body == &frame.body[..]);
                found.push((frame.body.to_vec(), consumed.to_vec()));
            }
            Ok(None) if !eof => {
                assert_eq!(buf.len(), before, "decode_bytes consumed without a frame");
                eof = true;
            }
            Ok(None) => break,
            Err(_) => {
                assert_eq!(buf.len(), before, "decode_bytes consumed on an error");
                break;
            }
        }
    }
    found
}

/// Reads `data` as BER-TLV: every object at every depth, `find` and `validate`, and checks
/// that rebuilding is stable (and exact when every length was written in its shortest form).
pub fn tlv_target(data: &[u8]) {
    walk(TlvReader::new(data), 0);
    let valid = tlv::validate(data);
    if let Ok(count) = valid {
        assert_eq!(count, TlvReader::new(data).count());
    }
    for tag in [0x9F26u32, 0x5A, 0x70, 0x77, 0x9F, 0x00] {
        if let Some(t) = Tag::new(tag)
            && let Ok(Some(found)) = tlv::find(data, t)
        {
            assert_eq!(found.tag(), t);
        }
    }
    // Rebuild the objects read before any error.
    let (first, minimal) = rebuild(data);
    let (second, minimal_again) = rebuild(&first);
    assert!(minimal_again, "the builder wrote a non-minimal length");
    assert!(first == second, "rebuilding is not stable");
    if minimal && valid.is_ok() {
        assert!(first == data, "rebuilding a minimal encoding changed it");
    }
}

/// Iterates every object, recursing into constructed ones (bounded).
fn walk(reader: TlvReader<'_>, depth: usize) {
    for item in reader {
        match item {
            Ok(t) => {
                let tag = t.tag();
                assert_eq!(Tag::new(tag.to_u32()), Some(tag));
                assert_eq!(Tag::from_bytes(tag.bytes()), Some(tag));
                assert_eq!(tag.to_string().parse::<Tag>(), Ok(tag));
                assert_eq!(tag.bytes().len(), tag.encoded_len());
                let _ = (tag.number(), tag.class(), format!("{tag:?}"));
                assert_eq!(t.total_len(), t.header_len() + t.value().len());
                assert_eq!(t.value_offset(), t.offset() + t.header_len());
                match t.children() {
                    Some(children) if depth <= MAX_DEPTH + 1 => walk(children, depth + 1),
                    Some(_) => {}
                    None => assert!(!t.is_constructed()),
                }
            }
            Err(e) => {
                let _ = (e.kind(), e.offset(), e.is_truncated(), e.to_string());
            }
        }
    }
}

/// Minimal length-field size for a value length.
fn minimal_length_len(len: usize) -> usize {
    match len {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        0x100..=0xFFFF => 3,
        _ => 4,
    }
}

/// Rebuilds the well-formed leading objects of `data` with the builder: constructed objects
/// whose value parses are rebuilt from their children, others copied. Returns the bytes and
/// whether every length read was in its shortest form.
fn rebuild(data: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut minimal = true;
    {
        let mut b = TlvBuilder::new(&mut out);
        rebuild_into(&mut b, TlvReader::new(data), 0, &mut minimal);
        if let Err(e) = b.finish() {
            panic!("builder left open: {e}");
        }
    }
    (out, minimal)
}

fn rebuild_into(b: &mut TlvBuilder<'_>, reader: TlvReader<'_>, depth: usize, minimal: &mut bool) {
    for item in reader {
        let Ok(t) = item else { break };
        if t.header_len() != t.tag().encoded_len() + minimal_length_len(t.value().len()) {
            *minimal = false;
        }
        let nested_ok = depth + 1 < MAX_DEPTH && tlv::validate(t.value()).is_ok();
        match t.children() {
            Some(children) if nested_ok => {
                if let Err(e) = b.begin(t.tag()) {
                    panic!("begin: {e}");
                }
                rebuild_into(b, children, depth + 1, minimal);
                if let Err(e) = b.end() {
                    panic!("end: {e}");
                }
            }
            _ => {
                if let Err(e) = b.push_tlv(&t) {
                    panic!("push: {e}");
                }
            }
        }
    }
}

/// Loads `data` (as UTF-8) as a TOML and as a JSON spec file; a spec that loads must save and
/// load back equal in both formats, and is then used to decode the input and an empty message.
pub fn spec_file_target(data: &[u8]) {
    use iso8583_wire::spec_file::{from_json, from_toml};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for loaded in [from_toml(text), from_json(text)] {
        match loaded {
            Ok(spec) => check_spec(&spec, data),
            Err(e) => {
                let _ = (e.field, e.to_string());
            }
        }
    }
}

fn check_spec(spec: &Spec, data: &[u8]) {
    use iso8583_wire::spec_file::{from_json, from_toml, to_json, to_toml};
    let toml = match to_toml(spec) {
        Ok(t) => t,
        Err(e) => panic!("a loaded spec does not save as TOML: {e}"),
    };
    match from_toml(&toml) {
        Ok(back) => assert!(back == *spec, "TOML save and load is not lossless"),
        Err(e) => panic!("a saved TOML spec does not load: {e}"),
    }
    let json = match to_json(spec) {
        Ok(t) => t,
        Err(e) => panic!("a loaded spec does not save as JSON: {e}"),
    };
    match from_json(&json) {
        Ok(back) => assert!(back == *spec, "JSON save and load is not lossless"),
        Err(e) => panic!("a saved JSON spec does not load: {e}"),
    }
    let _ = format!("{spec:?}");
    for (n, f) in spec.fields() {
        let _ = (n, spec.is_bitmap_field(n), &f.name);
    }
    decode_target(spec, data);
    // A message with no data fields encodes and decodes under any spec.
    if let Ok(empty) = MessageBuf::new("0800") {
        check_roundtrip(spec, &empty);
    }
}
