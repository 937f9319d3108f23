//! The inverse target: builds a valid message from the input (the first byte picks the
//! built-in spec, the rest drives `arbitrary`), then checks encode -> decode -> validate ->
//! `to_buf` gives back exactly that message and re-encodes to the same bytes
//! (see `iso8583_wire_fuzz::check_roundtrip`).
//!
//! Values follow the same rules as the proptest in `iso8583/tests/roundtrip.rs`: the exact
//! length for fixed fields, 0 to 40 units for variable ones (even for BCD fields whose prefix
//! counts bytes), digits for `n`, digits with at most one separator for `z` (`D` in BCD, `=` in
//! text), a sign then digits for `x+n`, class characters for text, any bytes for `b`.

#![no_main]

use arbitrary::{Result, Unstructured};
use iso8583_wire::{Counts, DataClass, Encoding, FieldSpec, Length, MessageBuf, Spec, specs};
use libfuzzer_sys::fuzz_target;

/// Variable-length values are at most this many units long.
const CAP: u16 = 40;

fn digit(u: &mut Unstructured<'_>) -> Result<char> {
    Ok(char::from(b'0' + u.int_in_range(0..=9u8)?))
}

fn length(u: &mut Unstructured<'_>, def: &FieldSpec) -> Result<usize> {
    Ok(match def.length {
        Length::Fixed(len) => len as usize,
        Length::Var { max, .. } => {
            let len = u.int_in_range(0..=max.min(CAP))? as usize;
            if def.encoding == Encoding::Bcd && def.counts == Counts::Bytes {
                len & !1
            } else {
                len
            }
        }
    })
}

fn text_value(u: &mut Unstructured<'_>, def: &FieldSpec, len: usize) -> Result<String> {
    let mut s = String::with_capacity(len);
    match def.class {
        DataClass::N => {
            for _ in 0..len {
                s.push(digit(u)?);
            }
        }
        DataClass::Z => {
            let sep = if def.encoding == Encoding::Bcd {
                'D'
            } else {
                '='
            };
            let at = if len > 0 && u.arbitrary::<bool>()? {
                Some(u.choose_index(len)?)
            } else {
                None
            };
            for i in 0..len {
                s.push(if Some(i) == at { sep } else { digit(u)? });
            }
        }
        DataClass::XN => {
            if len > 0 {
                s.push(if u.arbitrary::<bool>()? { 'C' } else { 'D' });
                for _ in 1..len {
                    s.push(digit(u)?);
                }
            }
        }
        class => {
            let alphabet: Vec<u8> = (0x20u8..=0x7E).filter(|&c| class.accepts(c)).collect();
            for _ in 0..len {
                s.push(char::from(*u.choose(&alphabet)?));
            }
        }
    }
    Ok(s)
}

fn build(spec: &Spec, u: &mut Unstructured<'_>) -> Result<MessageBuf<'static>> {
    let mut mti = String::with_capacity(4);
    for _ in 0..4 {
        mti.push(digit(u)?);
    }
    let Ok(mut m) = MessageBuf::new(&mti) else {
        return Err(arbitrary::Error::IncorrectFormat);
    };
    for (n, def) in spec.fields() {
        if spec.is_bitmap_field(n) || !u.arbitrary::<bool>()? {
            continue;
        }
        let len = length(u, def)?;
        if def.class == DataClass::B {
            let mut bytes = vec![0u8; len];
            for b in &mut bytes {
                *b = u.arbitrary()?;
            }
            m.set(n, bytes);
        } else {
            m.set(n, text_value(u, def, len)?);
        }
    }
    Ok(m)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let names = specs::NAMES;
    let Some(spec) = specs::by_name(names[first as usize % names.len()]) else {
        return;
    };
    let mut u = Unstructured::new(rest);
    if let Ok(m) = build(spec, &mut u) {
        iso8583_wire_fuzz::check_roundtrip(spec, &m);
    }
});
