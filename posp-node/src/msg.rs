//! `posp-node msg`: decode, encode and inspect ISO 8583 messages.
//!
//! `decode` takes hex (whitespace ignored) and prints JSON; `encode` takes that JSON back and
//! prints hex, so `msg decode | msg encode` gives the input bytes back exactly. Bad input exits
//! with status 2 and one line on stderr naming the field and byte offset.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use iso8583_wire::frame::{CupsHeader, FrameConfig, Tpdu};
use iso8583_wire::{MessageBuf, Spec, decode, spec_file, specs};

/// The message tool's subcommands.
#[derive(Subcommand)]
pub enum MsgCommand {
    /// Decode a message (hex, as an argument or on stdin) to JSON, or to a masked dump.
    Decode(DecodeArgs),
    /// Encode the JSON that `decode` prints back into a message (hex on stdout).
    Encode(EncodeArgs),
    /// Print a built-in spec as TOML, to copy and edit.
    Spec {
        /// iso87-ascii, iso87-binary, iso93-ascii or cups-pos.
        name: String,
    },
}

/// Framings the tool understands.
#[derive(Clone, Copy, ValueEnum)]
pub enum FrameKind {
    /// No framing: the input is the message.
    None,
    /// 2-byte binary length, TPDU and the UnionPay 6-byte header.
    CupsPos,
    /// 2-byte binary length.
    Len2,
    /// 4-byte binary length.
    Len4,
    /// 4 ASCII digits of length.
    Ascii4,
    /// 2-byte BCD length.
    Bcd2,
}

impl FrameKind {
    fn config(self) -> FrameConfig {
        match self {
            FrameKind::None => FrameConfig::none(),
            FrameKind::CupsPos => FrameConfig::cups_pos(),
            FrameKind::Len2 => FrameConfig::len2(),
            FrameKind::Len4 => FrameConfig::len4(),
            FrameKind::Ascii4 => FrameConfig::ascii4(),
            FrameKind::Bcd2 => FrameConfig::bcd2(),
        }
    }
}

/// Arguments of `msg decode`.
#[derive(Args)]
pub struct DecodeArgs {
    /// A built-in spec name or a spec file (.toml or .json).
    #[arg(long, default_value = "iso87-ascii")]
    spec: String,
    /// The framing around the message.
    #[arg(long, value_enum, default_value = "none")]
    frame: FrameKind,
    /// Print the human-readable dump (masked) instead of JSON.
    #[arg(long)]
    describe: bool,
    /// With --describe: show PANs, tracks, PIN blocks and keys in clear.
    #[arg(long, requires = "describe")]
    unmask: bool,
    /// The message as hex; `-` or nothing reads stdin.
    input: Option<String>,
}

/// Arguments of `msg encode`.
#[derive(Args)]
pub struct EncodeArgs {
    /// A built-in spec name or a spec file (.toml or .json).
    #[arg(long, default_value = "iso87-ascii")]
    spec: String,
    /// The framing to add (its length is computed).
    #[arg(long, value_enum, default_value = "none")]
    frame: FrameKind,
    /// A JSON file as `msg decode` prints it; `-` or nothing reads stdin.
    input: Option<String>,
}

/// Runs a `msg` subcommand.
pub fn run(cmd: MsgCommand) -> ExitCode {
    let result = match cmd {
        MsgCommand::Decode(args) => run_decode(&args),
        MsgCommand::Encode(args) => run_encode(&args),
        MsgCommand::Spec { name } => run_spec(&name),
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

enum SpecRef {
    Builtin(&'static Spec),
    Loaded(Box<Spec>),
}

impl SpecRef {
    fn get(&self) -> &Spec {
        match self {
            SpecRef::Builtin(s) => s,
            SpecRef::Loaded(s) => s,
        }
    }
}

fn load_spec(name: &str) -> Result<SpecRef, String> {
    if let Some(s) = specs::by_name(name) {
        return Ok(SpecRef::Builtin(s));
    }
    let path = Path::new(name);
    if !path.exists() {
        return Err(format!(
            "spec {name:?} is neither a built-in ({}) nor a file",
            specs::NAMES.join(", ")
        ));
    }
    spec_file::load(path)
        .map(|s| SpecRef::Loaded(Box::new(s)))
        .map_err(|e| format!("spec file {name}: {e}"))
}

fn read_input(input: Option<&str>) -> Result<String, String> {
    match input {
        Some(text) if text != "-" => Ok(text.to_string()),
        _ => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("stdin: {e}"))?;
            Ok(s)
        }
    }
}

/// Parses hex with whitespace ignored; errors name the offending character's position.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<(usize, u8)> = text
        .bytes()
        .enumerate()
        .filter(|(_, b)| !b.is_ascii_whitespace())
        .collect();
    if let Some(&(i, b)) = digits.iter().find(|(_, b)| !b.is_ascii_hexdigit()) {
        return Err(format!(
            "input: character {:?} at position {i} is not a hex digit",
            b as char
        ));
    }
    if digits.len() % 2 == 1 {
        return Err(format!(
            "input: {} hex digits is an odd number; a byte takes two",
            digits.len()
        ));
    }
    let nibble = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
    Ok(digits
        .chunks_exact(2)
        .map(|p| nibble(p[0].1) << 4 | nibble(p[1].1))
        .collect())
}

fn run_decode(args: &DecodeArgs) -> Result<String, String> {
    let spec = load_spec(&args.spec)?;
    let spec = spec.get();
    let bytes = parse_hex(&read_input(args.input.as_deref())?)?;
    let config = args.frame.config();
    let (tpdu, header, body, body_at) = match args.frame {
        FrameKind::None => (None, None, &bytes[..], 0),
        _ => {
            let (frame, used) = config
                .decode_eof(&bytes)
                .map_err(|e| format!("frame: {e}"))?
                .ok_or("frame: the input is empty")?;
            if used != bytes.len() {
                return Err(format!(
                    "frame: {} bytes after the frame, which ends at byte {used}",
                    bytes.len() - used
                ));
            }
            (
                frame.tpdu,
                frame.header,
                frame.body,
                used - frame.body.len(),
            )
        }
    };
    let located = |e: iso8583_wire::Error| {
        if body_at == 0 {
            e.to_string()
        } else {
            format!("{e} [the message starts at byte {body_at} of the input]")
        }
    };
    let msg = decode(spec, body).map_err(located)?;
    msg.validate().map_err(located)?;
    if args.describe {
        let d = msg.describe();
        let d = if args.unmask { d.unmasked() } else { d };
        return Ok(d.to_string().trim_end().to_string());
    }
    let json_str = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let mut out = format!("{{\"mti\": {}", json_str(msg.mti()));
    if let Some(t) = tpdu {
        out.push_str(&format!(
            ", \"tpdu\": \"{}\"",
            hex::encode_upper(t.to_bytes())
        ));
    }
    if let Some(h) = header {
        out.push_str(&format!(
            ", \"header\": \"{}\"",
            hex::encode_upper(h.to_bytes())
        ));
    }
    out.push_str(", \"fields\": {");
    let mut first = true;
    for f in msg.fields() {
        if spec.is_bitmap_field(f.number()) {
            continue;
        }
        if !first {
            out.push_str(", ");
        }
        first = false;
        out.push_str(&format!("\"{}\": {}", f.number(), json_str(&f.to_string())));
    }
    out.push_str("}}");
    Ok(out)
}

fn run_encode(args: &EncodeArgs) -> Result<String, String> {
    let spec = load_spec(&args.spec)?;
    let spec = spec.get();
    let text = match args.input.as_deref() {
        Some(path) if path != "-" => {
            std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?
        }
        _ => read_input(None)?,
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("input: not JSON: {e}"))?;
    let obj = json.as_object().ok_or("input: expected a JSON object")?;
    for key in obj.keys() {
        if !matches!(key.as_str(), "mti" | "tpdu" | "header" | "fields") {
            return Err(format!(
                "input: unknown key {key:?} (expected mti, tpdu, header, fields)"
            ));
        }
    }
    let str_of = |key: &str| -> Result<Option<&str>, String> {
        match obj.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| format!("input: {key:?} must be a string")),
        }
    };
    let mti = str_of("mti")?.ok_or("input: \"mti\" is missing")?;
    let mut msg =
        MessageBuf::new(mti).map_err(|_| format!("input: MTI {mti:?} is not four digits"))?;
    if let Some(fields) = obj.get("fields") {
        let fields = fields
            .as_object()
            .ok_or("input: \"fields\" must be an object")?;
        for (key, value) in fields {
            let n: u16 = key
                .parse()
                .ok()
                .filter(|n| (1..=192).contains(n))
                .ok_or_else(|| format!("input: field key {key:?} is not a field number 1..192"))?;
            let value = value
                .as_str()
                .ok_or_else(|| format!("input: field {n} must be a string"))?;
            msg.set(n, value.to_string());
        }
    }
    let body = msg.to_vec(spec).map_err(|e| e.to_string())?;
    let config = args.frame.config();
    let tpdu = match str_of("tpdu")? {
        Some(t) if config.has_tpdu() => {
            let bytes = parse_hex(t).map_err(|e| format!("tpdu: {e}"))?;
            Some(Tpdu::parse(&bytes).map_err(|e| format!("tpdu: {e}"))?)
        }
        None if config.has_tpdu() => return Err("input: the frame needs a \"tpdu\"".into()),
        _ => None,
    };
    let header = match str_of("header")? {
        Some(h) if config.has_cups_header() => {
            let bytes = parse_hex(h).map_err(|e| format!("header: {e}"))?;
            Some(CupsHeader::parse(&bytes).map_err(|e| format!("header: {e}"))?)
        }
        None if config.has_cups_header() => {
            return Err("input: the frame needs a \"header\"".into());
        }
        _ => None,
    };
    let out = match args.frame {
        FrameKind::None => body,
        _ => {
            let mut out = Vec::with_capacity(body.len() + 16);
            config
                .encode(tpdu, header, &body, &mut out)
                .map_err(|e| format!("frame: {e}"))?;
            out
        }
    };
    Ok(hex::encode_upper(out))
}

fn run_spec(name: &str) -> Result<String, String> {
    let spec = specs::by_name(name).ok_or_else(|| {
        format!(
            "no built-in spec {name:?}; the built-ins are {}",
            specs::NAMES.join(", ")
        )
    })?;
    spec_file::to_toml(spec).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::parse_hex;

    #[test]
    fn hex_input_errors_say_where() {
        assert_eq!(parse_hex("0a 0B\n"), Ok(vec![0x0A, 0x0B]));
        assert_eq!(
            parse_hex("0a0x"),
            Err("input: character 'x' at position 3 is not a hex digit".to_string())
        );
        assert_eq!(
            parse_hex("abc"),
            Err("input: 3 hex digits is an odd number; a byte takes two".to_string())
        );
    }
}
