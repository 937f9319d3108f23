//! Spec files: interface specs as TOML or JSON (feature `spec-files`).
//!
//! A spec file names the dialect, its MTI and bitmap encodings, and lists every field with all
//! of its parts, so that `from_toml(&to_toml(s)) == s` holds exactly. Unknown keys and impossible
//! definitions are refused with the field number and the problem.
//!
//! ```toml
//! name = "cups-pos"
//! mti = "bcd"              # ascii | bcd | ebcdic
//! bitmap = "binary"        # binary | hex | ebcdic
//! tertiary_bitmap = false  # whether field 65 is a tertiary bitmap
//!
//! [[field]]
//! number = 2
//! name = "Primary account number"
//! class = "n"              # n a an ans as ns b z x+n
//! length = "LL"            # fixed | L | LL | LLL | LLLL
//! max = 19                 # the fixed length, or the maximum, in units of the class
//! prefix = "bcd"           # ascii | bcd | binary | ebcdic | hex   (default ascii)
//! counts = "units"         # units | bytes                         (default units)
//! encoding = "bcd"         # ascii | ebcdic037 | ebcdic1047 | bcd | binary | hex
//! align = "left"           # left | right: odd BCD digits (required where they can occur)
//! pad = "0"                # 0 | F                                 (default 0)
//! pad_short = true         # pad short fixed values                (default true)
//! mask = "pan"             # none | pan | track | secret           (default none)
//! # layout = "tlv", or { positional = [{ name = "...", length = 2 }, ...] },
//! # or { bitmapped = { bitmap_bytes = 1, subfields = [...] } }
//! ```

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::spec::{
    Align, BitmapEncoding, Counts, DataClass, Encoding, FieldSpec, Layout, Length, Mask,
    MtiEncoding, PadNibble, PrefixEncoding, Spec, SpecError,
};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header<F> {
    name: String,
    mti: MtiEncoding,
    bitmap: BitmapEncoding,
    #[serde(default)]
    tertiary_bitmap: bool,
    #[serde(default = "Vec::new")]
    field: Vec<F>,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
enum LengthKind {
    #[serde(rename = "fixed")]
    Fixed,
    #[serde(rename = "L")]
    L1,
    #[serde(rename = "LL")]
    L2,
    #[serde(rename = "LLL")]
    L3,
    #[serde(rename = "LLLL")]
    L4,
}

fn default_true() -> bool {
    true
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    number: u16,
    name: String,
    class: DataClass,
    length: LengthKind,
    max: u16,
    #[serde(default = "PrefixEncoding::default_ascii")]
    prefix: PrefixEncoding,
    #[serde(default = "Counts::default_units")]
    counts: Counts,
    encoding: Encoding,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    align: Option<Align>,
    #[serde(default = "PadNibble::default_zero")]
    pad: PadNibble,
    #[serde(default = "default_true")]
    pad_short: bool,
    #[serde(default = "Mask::default_none")]
    mask: Mask,
    #[serde(default, skip_serializing_if = "is_default")]
    layout: Option<Layout>,
}

impl PrefixEncoding {
    fn default_ascii() -> Self {
        PrefixEncoding::Ascii
    }
}

impl Counts {
    fn default_units() -> Self {
        Counts::Units
    }
}

impl PadNibble {
    fn default_zero() -> Self {
        PadNibble::Zero
    }
}

impl Mask {
    fn default_none() -> Self {
        Mask::None
    }
}

impl FieldFile {
    fn from_spec(number: u16, f: &FieldSpec) -> Self {
        let (length, max) = match f.length {
            Length::Fixed(n) => (LengthKind::Fixed, n),
            Length::Var { prefix, max } => (
                match prefix {
                    1 => LengthKind::L1,
                    2 => LengthKind::L2,
                    3 => LengthKind::L3,
                    _ => LengthKind::L4,
                },
                max,
            ),
        };
        FieldFile {
            number,
            name: f.name.to_string(),
            class: f.class,
            length,
            max,
            prefix: f.prefix,
            counts: f.counts,
            encoding: f.encoding,
            align: f.align,
            pad: f.pad,
            pad_short: f.pad_short,
            mask: f.mask,
            layout: f.layout.clone(),
        }
    }

    fn into_spec(self) -> (u16, FieldSpec) {
        let length = match self.length {
            LengthKind::Fixed => Length::Fixed(self.max),
            LengthKind::L1 => Length::Var {
                prefix: 1,
                max: self.max,
            },
            LengthKind::L2 => Length::Var {
                prefix: 2,
                max: self.max,
            },
            LengthKind::L3 => Length::Var {
                prefix: 3,
                max: self.max,
            },
            LengthKind::L4 => Length::Var {
                prefix: 4,
                max: self.max,
            },
        };
        (
            self.number,
            FieldSpec {
                name: Cow::Owned(self.name),
                class: self.class,
                length,
                prefix: self.prefix,
                counts: self.counts,
                encoding: self.encoding,
                align: self.align,
                pad: self.pad,
                pad_short: self.pad_short,
                mask: self.mask,
                layout: self.layout,
            },
        )
    }
}

fn file_error(message: impl core::fmt::Display) -> SpecError {
    SpecError {
        field: None,
        message: message.to_string(),
    }
}

/// Turns parsed field entries into a spec, naming the field of any error.
fn assemble<F>(
    header: Header<F>,
    number_of: impl Fn(&F) -> Option<u16>,
    parse: impl Fn(F) -> Result<FieldFile, String>,
) -> Result<Spec, SpecError> {
    let mut fields = Vec::with_capacity(header.field.len());
    for (i, raw) in header.field.into_iter().enumerate() {
        let number = number_of(&raw);
        let f = parse(raw).map_err(|message| SpecError {
            field: number,
            message: match number {
                Some(_) => message,
                None => format!("field entry {} (no valid `number`): {message}", i + 1),
            },
        })?;
        fields.push(f.into_spec());
    }
    Spec::new(
        header.name,
        header.mti,
        header.bitmap,
        header.tertiary_bitmap,
        fields,
    )
}

/// Loads a spec from TOML text.
pub fn from_toml(text: &str) -> Result<Spec, SpecError> {
    let header: Header<toml::Value> = toml::from_str(text).map_err(file_error)?;
    assemble(
        header,
        |v| {
            v.get("number")
                .and_then(toml::Value::as_integer)
                .and_then(|n| u16::try_from(n).ok())
        },
        |v| {
            v.try_into::<FieldFile>()
                .map_err(|e| e.message().to_string())
        },
    )
}

/// Loads a spec from JSON text.
pub fn from_json(text: &str) -> Result<Spec, SpecError> {
    let header: Header<serde_json::Value> = serde_json::from_str(text).map_err(file_error)?;
    assemble(
        header,
        |v| {
            v.get("number")
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| u16::try_from(n).ok())
        },
        |v| serde_json::from_value::<FieldFile>(v).map_err(|e| e.to_string()),
    )
}

fn header(spec: &Spec) -> Header<FieldFile> {
    Header {
        name: spec.name().to_string(),
        mti: spec.mti_encoding(),
        bitmap: spec.bitmap_encoding(),
        tertiary_bitmap: spec.tertiary_bitmap(),
        field: spec
            .fields()
            .map(|(n, f)| FieldFile::from_spec(n, f))
            .collect(),
    }
}

/// Saves a spec as TOML.
pub fn to_toml(spec: &Spec) -> Result<String, SpecError> {
    toml::to_string(&header(spec)).map_err(file_error)
}

/// Saves a spec as pretty-printed JSON.
pub fn to_json(spec: &Spec) -> Result<String, SpecError> {
    serde_json::to_string_pretty(&header(spec)).map_err(file_error)
}

/// Loads a spec file: JSON when the name ends in `.json`, TOML otherwise.
pub fn load(path: &Path) -> Result<Spec, SpecError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| file_error(format!("{}: {e}", path.display())))?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        from_json(&text)
    } else {
        from_toml(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::specs;

    #[test]
    fn built_ins_round_trip_through_toml_and_json() {
        for name in specs::NAMES {
            let spec = specs::build_by_name(name).unwrap();
            let toml = to_toml(&spec).unwrap();
            assert_eq!(from_toml(&toml).unwrap(), spec, "{name} via TOML");
            let json = to_json(&spec).unwrap();
            assert_eq!(from_json(&json).unwrap(), spec, "{name} via JSON");
        }
    }

    #[test]
    fn shipped_files_match_the_built_ins() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
        for name in specs::NAMES {
            let path = dir.join(format!("{name}.toml"));
            if std::env::var_os("UPDATE_SPECS").is_some() {
                let spec = specs::build_by_name(name).unwrap();
                std::fs::write(&path, to_toml(&spec).unwrap()).unwrap();
            }
            let loaded = load(&path).unwrap();
            assert_eq!(
                loaded,
                specs::build_by_name(name).unwrap(),
                "specs/{name}.toml"
            );
        }
    }

    const MINIMAL: &str = r#"
name = "tiny"
mti = "ascii"
bitmap = "hex"

[[field]]
number = 2
name = "PAN"
class = "n"
length = "LL"
max = 19
encoding = "ascii"
"#;

    #[test]
    fn minimal_file_takes_defaults() {
        let spec = from_toml(MINIMAL).unwrap();
        let f = spec.field(2).unwrap();
        assert_eq!(f.length, Length::Var { prefix: 2, max: 19 });
        assert_eq!(
            (f.prefix, f.counts, f.pad, f.pad_short, f.mask),
            (
                PrefixEncoding::Ascii,
                Counts::Units,
                PadNibble::Zero,
                true,
                Mask::None
            )
        );
        assert_eq!(f.align, None);
    }

    #[test]
    fn unknown_keys_are_refused_with_the_field() {
        let text = MINIMAL.replace("max = 19", "max = 19\ncolour = \"red\"");
        let err = from_toml(&text).unwrap_err();
        assert_eq!(err.field, Some(2));
        assert!(err.message.contains("unknown field `colour`"), "{err}");
        let err = from_toml(&MINIMAL.replace("bitmap = \"hex\"", "bitmap = \"hex\"\nspeed = 1"))
            .unwrap_err();
        assert_eq!(err.field, None);
        assert!(err.message.contains("unknown field `speed`"), "{err}");
    }

    #[test]
    fn impossible_definitions_are_refused() {
        let err = from_toml(&MINIMAL.replace("max = 19", "max = 100")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field 2: a 2-digit Ascii prefix holds at most 99, too short for the maximum 100"
        );
        let odd_bcd = MINIMAL
            .replace("length = \"LL\"", "length = \"fixed\"")
            .replace("max = 19", "max = 3")
            .replace("encoding = \"ascii\"", "encoding = \"bcd\"");
        let err = from_toml(&odd_bcd).unwrap_err();
        assert_eq!(err.field, Some(2));
        assert!(err.message.contains("alignment rule"), "{err}");
        let json = r#"{"name":"j","mti":"bcd","bitmap":"binary","tertiary_bitmap":true,
            "field":[{"number":65,"name":"x","class":"n","length":"fixed","max":1,"encoding":"ascii"}]}"#;
        let err = from_json(json).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field 65: used as a bitmap but not defined as one (class b, fixed length 8)"
        );
    }
}
