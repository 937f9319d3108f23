//! Round trips for random valid messages of every built-in spec.
//!
//! For each spec in [`specs::NAMES`] a strategy picks an MTI and a random subset of the defined
//! data fields, and gives each a canonical value generated from its [`FieldSpec`]: the exact
//! length for fixed fields, 0 to a small cap for variable ones, characters of the field's class.
//!
//! - Property A: `decode(spec, encode(m))` succeeds, validates, and `.to_buf() == m`.
//! - Property B: for the encoded bytes `x`, `decode(x).to_buf().encode() == x`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::fmt;

use iso8583_wire::{
    Counts, DataClass, Encoding, FieldSpec, Length, MessageBuf, Spec, Value, decode, specs,
};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

/// Variable-length values are at most this many units long, to keep cases fast.
const CAP: u16 = 40;

/// One generated field value, shown in full when a case fails (unlike `Value`'s Debug, which
/// hides contents).
#[derive(Clone, PartialEq, Eq)]
enum Gen {
    Text(String),
    Bytes(Vec<u8>),
}

impl fmt::Debug for Gen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gen::Text(t) => write!(f, "Text({t:?})"),
            Gen::Bytes(b) => write!(f, "Bytes({})", hex::encode_upper(b)),
        }
    }
}

impl Gen {
    fn value(&self) -> Value<'static> {
        match self {
            Gen::Text(t) => Value::Text(Cow::Owned(t.clone())),
            Gen::Bytes(b) => Value::Bytes(Cow::Owned(b.clone())),
        }
    }
}

/// A generated message: the MTI and the field values in ascending field order.
#[derive(Clone, Debug)]
struct Case {
    mti: String,
    fields: Vec<(u16, Gen)>,
}

impl Case {
    fn buf(&self) -> MessageBuf<'static> {
        let mut m = MessageBuf::new(&self.mti).unwrap();
        for (n, g) in &self.fields {
            m.set(*n, g.value());
        }
        m
    }
}

/// The characters a text class allows (printable ASCII only).
fn class_alphabet(class: DataClass) -> Vec<u8> {
    (0x20u8..=0x7E).filter(|&c| class.accepts(c)).collect()
}

/// Strategy for the length of a value, in units of the class.
fn length_strategy(def: &FieldSpec) -> BoxedStrategy<usize> {
    match def.length {
        Length::Fixed(len) => Just(len as usize).boxed(),
        Length::Var { max, .. } => {
            let cap = max.min(CAP) as usize;
            // A BCD prefix counting bytes cannot say whether the last nibble is a digit or a
            // pad: only even digit counts are canonical there.
            if def.encoding == Encoding::Bcd && def.counts == Counts::Bytes {
                (0..=cap / 2).prop_map(|half| half * 2).boxed()
            } else {
                (0..=cap).boxed()
            }
        }
    }
}

/// Strategy for one canonical value of field `def`.
fn value_strategy(def: &FieldSpec) -> BoxedStrategy<Gen> {
    let class = def.class;
    let bcd = def.encoding == Encoding::Bcd;
    length_strategy(def)
        .prop_flat_map(move |len| -> BoxedStrategy<Gen> {
            match class {
                DataClass::B => proptest::collection::vec(any::<u8>(), len)
                    .prop_map(Gen::Bytes)
                    .boxed(),
                DataClass::N => digits(len).prop_map(Gen::Text).boxed(),
                DataClass::Z => {
                    // The separator is nibble D in BCD (which decodes as 'D'), '=' in text.
                    let sep = if bcd { 'D' } else { '=' };
                    (digits(len), proptest::option::of(0..len.max(1)))
                        .prop_map(move |(mut s, at)| {
                            if let Some(at) = at.filter(|&at| at < s.len()) {
                                s.replace_range(at..=at, &sep.to_string());
                            }
                            Gen::Text(s)
                        })
                        .boxed()
                }
                DataClass::XN => {
                    if len == 0 {
                        Just(Gen::Text(String::new())).boxed()
                    } else {
                        (select(vec!['C', 'D']), digits(len - 1))
                            .prop_map(|(sign, d)| Gen::Text(format!("{sign}{d}")))
                            .boxed()
                    }
                }
                _ => proptest::collection::vec(select(class_alphabet(class)), len)
                    .prop_map(|chars| Gen::Text(chars.into_iter().map(char::from).collect()))
                    .boxed(),
            }
        })
        .boxed()
}

fn digits(len: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(b'0'..=b'9', len)
        .prop_map(|d| d.into_iter().map(char::from).collect::<String>())
}

/// Strategy for a whole message of `spec`.
fn message_strategy(spec: &'static Spec) -> impl Strategy<Value = Case> {
    let candidates: Vec<u16> = spec
        .fields()
        .map(|(n, _)| n)
        .filter(|&n| n != 1 && !spec.is_bitmap_field(n))
        .collect();
    let total = candidates.len();
    let mti = proptest::array::uniform4(b'0'..=b'9')
        .prop_map(|d| d.into_iter().map(char::from).collect::<String>());
    let fields = subsequence(candidates, 0..=total).prop_flat_map(move |chosen| {
        chosen
            .into_iter()
            .map(|n| {
                let def = spec.field(n).unwrap();
                value_strategy(def).prop_map(move |g| (n, g)).boxed()
            })
            .collect::<Vec<_>>()
    });
    (mti, fields).prop_map(|(mti, fields)| Case { mti, fields })
}

/// Properties A and B for one case.
fn check(spec: &Spec, case: &Case) -> Result<(), TestCaseError> {
    let m = case.buf();
    let wire = m
        .to_vec(spec)
        .map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
    // A: decode, validate, and get the same values back.
    let decoded = decode(spec, &wire).map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
    decoded
        .validate()
        .map_err(|e| TestCaseError::fail(format!("validate: {e}")))?;
    prop_assert_eq!(decoded.mti(), case.mti.as_str());
    prop_assert_eq!(decoded.len(), case.fields.len());
    let back = decoded.to_buf();
    for (n, g) in &case.fields {
        let expected = g.value();
        prop_assert!(
            back.get(*n) == Some(&expected),
            "field {}: decoded {:?}, expected {:?}",
            n,
            decoded.field(*n).map(|f| f.to_string()),
            g
        );
    }
    prop_assert!(back == m, "to_buf differs from the original");
    // B: re-encoding the decoded view gives the same bytes.
    let again = back
        .to_vec(spec)
        .map_err(|e| TestCaseError::fail(format!("re-encode: {e}")))?;
    prop_assert!(
        again == wire,
        "re-encode differs:\n  first  {}\n  second {}",
        hex::encode_upper(&wire),
        hex::encode_upper(&again)
    );
    Ok(())
}

fn run_spec(name: &str) {
    let spec = specs::by_name(name).unwrap();
    let config = Config {
        cases: 256,
        source_file: Some(file!()),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    match runner.run(&message_strategy(spec), |case| check(spec, &case)) {
        Ok(()) => {}
        Err(TestError::Fail(reason, case)) => {
            panic!("{name}: {reason}\nminimal case: {case:#?}")
        }
        Err(e) => panic!("{name}: {e}"),
    }
}

#[test]
fn every_built_in_spec_round_trips() {
    let mut ran = Vec::new();
    for name in specs::NAMES {
        run_spec(name);
        ran.push(name);
    }
    assert_eq!(
        ran,
        ["iso87-ascii", "iso87-binary", "iso93-ascii", "cups-pos"]
    );
}

/// The strategy covers what the specs define: every data field of every spec can be chosen
/// (bitmap fields excluded), and a value of each is accepted by the encoder.
#[test]
fn candidates_cover_every_data_field() {
    let counts: Vec<(&str, usize)> = specs::NAMES
        .iter()
        .map(|&name| {
            let spec = specs::by_name(name).unwrap();
            let n = spec
                .fields()
                .filter(|&(n, _)| !spec.is_bitmap_field(n))
                .count();
            (name, n)
        })
        .collect();
    // iso87: 128 fields minus field 1; iso93: minus 1 and the tertiary bitmap 65;
    // cups-pos: 34 rows minus field 1.
    assert_eq!(
        counts,
        [
            ("iso87-ascii", 127),
            ("iso87-binary", 127),
            ("iso93-ascii", 126),
            ("cups-pos", 33)
        ]
    );
}

/// Hand-picked edge cases of the value rules, checked with exact bytes.
#[test]
fn bcd_odd_lengths_and_track_separator_exact() {
    let spec = specs::cups_pos();
    let mut m = MessageBuf::new("0200").unwrap();
    m.set(22, "051") // n3 fixed, left-aligned: 05 10
        .set(23, "001") // n3 fixed, right-aligned: 00 01
        .set(35, "12D45"); // z..37, LL BCD prefix counting digits: 05 12 D4 50
    let wire = m.to_vec(spec).unwrap();
    assert_eq!(
        hex::encode_upper(&wire),
        "02000000060020000000051000010512D450"
    );
    let decoded = decode(spec, &wire).unwrap();
    decoded.validate().unwrap();
    assert_eq!(decoded.to_buf(), m);
    assert_eq!(decoded.field(35).unwrap().to_string(), "12D45");
    // In an ASCII dialect the separator is carried as '='.
    let spec = specs::iso87_ascii();
    let mut m = MessageBuf::new("0200").unwrap();
    m.set(35, "12=45").set(28, "C00000150");
    let wire = m.to_vec(spec).unwrap();
    assert_eq!(
        std::str::from_utf8(&wire).unwrap(),
        "02000000001020000000C000001500512=45"
    );
    let decoded = decode(spec, &wire).unwrap();
    decoded.validate().unwrap();
    assert_eq!(decoded.to_buf(), m);
}

/// LIBRARY BUG (reported): `ans` accepts bytes 0x80 and above so that GBK text passes (merchant
/// names), and such a message decodes and validates, but `to_buf` reads the non-UTF-8 bytes as
/// Latin-1 characters, so re-encoding writes their UTF-8 form instead: a variable field comes
/// back longer (here 8 bytes for 4), a fixed one no longer fits.
#[test]
fn gbk_text_survives_to_buf_and_encode() {
    let spec = specs::iso87_ascii();
    // "商户" in GBK.
    let gbk: &[u8] = &[0xC9, 0xCC, 0xBB, 0xA7];
    let mut wire = b"02000000000000010000004".to_vec();
    wire.extend_from_slice(gbk);
    let mut m = MessageBuf::new("0200").unwrap();
    m.set(48, gbk);
    assert_eq!(m.to_vec(spec).unwrap(), wire);
    let decoded = decode(spec, &wire).unwrap();
    decoded.validate().unwrap();
    assert_eq!(decoded.field(48).unwrap().raw(), gbk);
    assert_eq!(decoded.to_buf().to_vec(spec).unwrap(), wire);

    // Field 43 is fixed at 40: GBK name padded with spaces.
    let mut name = gbk.to_vec();
    name.resize(40, b' ');
    let mut wire = b"02000000000000200000".to_vec();
    wire.extend_from_slice(&name);
    let decoded = decode(spec, &wire).unwrap();
    decoded.validate().unwrap();
    assert_eq!(decoded.to_buf().to_vec(spec).unwrap(), wire);
}

/// LIBRARY BUG (reported): a hex-ASCII binary field whose prefix counts nibbles (iso87-ascii
/// field 55, `LLL` in hex characters) with an odd count decodes and validates, and `to_buf`
/// then silently drops the last nibble. A raw binary field refuses the same odd count with
/// `OddNibbleCount`; this one should too (at decode or at validate).
#[test]
fn odd_nibble_count_in_a_hex_field_is_refused() {
    let spec = specs::iso87_ascii();
    let wire = b"02000000000000000200003ABC";
    let result = decode(spec, wire).and_then(|m| m.validate());
    assert_eq!(
        result.map_err(|e| (e.kind(), e.part())),
        Err((
            iso8583_wire::ErrorKind::OddNibbleCount { length: 3 },
            iso8583_wire::Part::Field(55)
        ))
    );
}
