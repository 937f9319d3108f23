//! A readable dump of a message, masked by default.
//!
//! ```text
//! MTI    0200  (cups-pos)
//! Bitmap 7024048000C08011
//!   2  Primary account number ..................... 622202******0123
//!  35  Track 2 data ............................... 622202******0123=*****************
//!  52  PIN data ................................... [masked, 8 bytes]
//!  55  ICC system related data .................... 9F2608...
//!        9F26 ..................................... 1A2B3C4D5E6F7081
//!        5A ....................................... 622202******0123
//!  60  Reserved private ........................... 22000001000
//!        60.1 Message type code ................... 22
//! ```
//!
//! Masking follows each field's [`Mask`]: card numbers show the first 6 and last 4 digits,
//! track data hides everything after the separator, PIN blocks, MACs and key material show
//! only their length. Inside field 55 the tags that carry card data (5A, 57, 56, 5F20, 9F1F,
//! 9F20, 9F6B) are masked the same way. [`Describe::unmasked`] shows everything, for an
//! operator who is entitled to see it.

use alloc::string::String;
use core::fmt::{self, Write};

use crate::decode::{Field, Message};
use crate::spec::{Layout, Mask};
use crate::tlv::{Tag, TlvReader};

/// Displays a message field by field; see the module docs.
#[derive(Clone, Debug)]
pub struct Describe<'m, 'a> {
    message: &'m Message<'a>,
    unmask: bool,
}

impl<'a> Message<'a> {
    /// A masked, human-readable dump of the message (implements `Display`).
    pub fn describe(&self) -> Describe<'_, 'a> {
        Describe {
            message: self,
            unmask: false,
        }
    }
}

impl Describe<'_, '_> {
    /// Shows every value in clear, including PANs, tracks, PIN blocks and keys.
    pub fn unmasked(mut self) -> Self {
        self.unmask = true;
        self
    }
}

const WIDTH: usize = 44;

fn label(f: &mut fmt::Formatter<'_>, indent: usize, text: &str) -> fmt::Result {
    for _ in 0..indent {
        f.write_char(' ')?;
    }
    f.write_str(text)?;
    f.write_char(' ')?;
    let used = indent + text.chars().count() + 1;
    for _ in used..WIDTH.max(used + 3) {
        f.write_char('.')?;
    }
    f.write_char(' ')
}

/// Masks a card number: first 6 and last 4 shown (only the last 4 for short numbers).
pub fn mask_pan(digits: &str) -> String {
    let n = digits.chars().count();
    let (head, tail) = if n >= 16 {
        (6, 4)
    } else if n > 4 {
        (0, 4)
    } else {
        (0, 0)
    };
    digits
        .chars()
        .enumerate()
        .map(|(i, c)| if i < head || i + tail >= n { c } else { '*' })
        .collect()
}

/// Masks track data: the PAN part as [`mask_pan`], everything after the separator hidden.
pub fn mask_track(track: &str) -> String {
    let cut = track.find(['=', 'D', '^']).unwrap_or(track.len());
    let (pan, rest) = track.split_at(cut);
    let mut out = mask_pan(pan.trim_start_matches(|c: char| !c.is_ascii_digit()));
    let lead = pan.len() - pan.trim_start_matches(|c: char| !c.is_ascii_digit()).len();
    out.insert_str(0, pan.get(..lead).unwrap_or(""));
    let mut chars = rest.chars();
    if let Some(sep) = chars.next() {
        out.push(sep);
        out.extend(chars.map(|_| '*'));
    }
    out
}

fn masked_value(mask: Mask, text: &str, wire_len: usize) -> String {
    match mask {
        Mask::None => String::from(text),
        Mask::Pan => mask_pan(text),
        Mask::Track => mask_track(text),
        Mask::Secret => alloc::format!("[masked, {wire_len} bytes]"),
    }
}

fn tlv_mask(tag: Tag) -> Mask {
    match tag.bytes() {
        [0x5A] => Mask::Pan,
        [0x57] | [0x9F, 0x6B] => Mask::Track,
        [0x56] | [0x5F, 0x20] | [0x9F, 0x1F] | [0x9F, 0x20] => Mask::Secret,
        _ => Mask::None,
    }
}

impl Describe<'_, '_> {
    fn field(&self, f: &mut fmt::Formatter<'_>, field: &Field<'_>) -> fmt::Result {
        let def = field.spec();
        let n = field.number();
        label(f, 0, &alloc::format!("{n:>3}  {}", def.name))?;
        let text = alloc::string::ToString::to_string(field);
        let mask = if self.unmask { Mask::None } else { def.mask };
        if mask == Mask::None && !self.unmask && matches!(def.layout, Some(Layout::Tlv)) {
            // The whole value could carry card data (tags 5A, 57): show it tag by tag below.
            let len = field.binary().map(|b| b.len()).unwrap_or(0);
            writeln!(f, "[TLV, {len} bytes]")?;
        } else {
            writeln!(f, "{}", masked_value(mask, &text, field.raw().len()))?;
        }
        if mask == Mask::Secret {
            return Ok(());
        }
        match &def.layout {
            Some(Layout::Tlv) => {
                let Ok(bytes) = field.tlv_bytes() else {
                    return Ok(());
                };
                for item in TlvReader::new(&bytes) {
                    let Ok(tlv) = item else {
                        return writeln!(f, "       (malformed TLV)");
                    };
                    label(f, 7, &alloc::format!("{}", tlv.tag()))?;
                    let mut hex = String::new();
                    for b in tlv.value() {
                        let _ = write!(hex, "{b:02X}");
                    }
                    let mask = if self.unmask {
                        Mask::None
                    } else {
                        tlv_mask(tlv.tag())
                    };
                    writeln!(f, "{}", masked_value(mask, &hex, tlv.value().len()))?;
                }
            }
            Some(Layout::Positional(_) | Layout::Bitmapped { .. }) => {
                if let Ok(subs) = field.subfields() {
                    for s in subs {
                        label(f, 7, &alloc::format!("{n}.{} {}", s.position, s.spec.name))?;
                        writeln!(f, "{}", s.value)?;
                    }
                }
            }
            None => {}
        }
        Ok(())
    }
}

impl fmt::Display for Describe<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.message;
        writeln!(f, "MTI    {}  ({})", m.mti(), m.spec().name())?;
        let w = m.bitmap().words();
        write!(f, "Bitmap {:016X}", w[0])?;
        if m.bitmap().contains(1) {
            write!(f, " {:016X}", w[1])?;
        }
        if m.spec().tertiary_bitmap() && m.bitmap().contains(65) {
            write!(f, " {:016X}", w[2])?;
        }
        writeln!(f)?;
        for field in m.fields() {
            if m.spec().is_bitmap_field(field.number()) {
                continue;
            }
            self.field(f, &field)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_and_track_masks() {
        assert_eq!(mask_pan("4761739001010119"), "476173******0119");
        assert_eq!(mask_pan("6222021234567890123"), "622202*********0123");
        assert_eq!(mask_pan("12345678"), "****5678");
        assert_eq!(
            mask_track("4761739001010119=2812201114380440000"),
            "476173******0119=*******************"
        );
        assert_eq!(mask_track("6222021234567890D2812"), "622202******7890D****");
        assert_eq!(
            mask_track("B5413330089020011^CARDHOLDER/TEST^29"),
            "B541333******0011^******************"
        );
    }
}
