//! `crypto pinblock`: ISO 9564-1 PIN blocks, formats 0, 1 and 3.
//!
//! Building a block in format 1 or 3 needs fill: `--fill` if given, otherwise 8 bytes from
//! `/dev/urandom` (never a value derived from the inputs). Decoding without `--format`
//! takes the format from the block's control nibble, which formats 0, 1 and 3 leave in the
//! clear (their PAN field starts with `0000`).

use std::fs::File;
use std::io::Read;

use clap::{Args, ValueEnum};
use pboc_sam::pinblock::{self, ClearPinBlock, Pan, Pin, PinBlockFormat};
use pboc_sam::{Error, PinProblem};

use super::{Outcome, des_key, hex_fixed, not_applicable, upper};

/// The PIN block formats the tool handles.
#[derive(Clone, Copy, ValueEnum)]
pub enum PinFormat {
    /// ISO 9564 format 0 (ANSI X9.8): PAN-bound, fill F.
    #[value(name = "0")]
    Iso0,
    /// ISO 9564 format 1: not PAN-bound, fill from `--fill` or random.
    #[value(name = "1")]
    Iso1,
    /// ISO 9564 format 3: PAN-bound, fill A..F from `--fill` or random.
    #[value(name = "3")]
    Iso3,
}

impl PinFormat {
    /// The library's format.
    const fn format(self) -> PinBlockFormat {
        match self {
            Self::Iso0 => PinBlockFormat::Iso0,
            Self::Iso1 => PinBlockFormat::Iso1,
            Self::Iso3 => PinBlockFormat::Iso3,
        }
    }
}

/// Arguments of `crypto pinblock`.
#[derive(Args)]
pub struct PinblockArgs {
    /// Decode `--block` back to the PIN instead of building a block.
    #[arg(long, requires = "block", conflicts_with_all = ["pin", "fill"])]
    decode: bool,
    /// The format (0, 1 or 3). Required to build a block; when decoding, the control nibble
    /// is used if it is not given.
    #[arg(long, value_enum, required_unless_present = "decode")]
    format: Option<PinFormat>,
    /// The PIN (4 to 12 digits).
    #[arg(long, required_unless_present = "decode")]
    pin: Option<String>,
    /// The PAN (8 to 19 digits); required for formats 0 and 3.
    #[arg(long)]
    pan: Option<String>,
    /// The PIN key (hex): encrypt the built block, or decrypt `--block` before decoding.
    #[arg(long)]
    key: Option<String>,
    /// Fill for formats 1 and 3 (hex, 8 bytes; default: 8 bytes from /dev/urandom).
    #[arg(long)]
    fill: Option<String>,
    /// With `--decode`: the PIN block (hex, 8 bytes), encrypted if `--key` is given.
    #[arg(long, requires = "decode")]
    block: Option<String>,
}

/// Runs `crypto pinblock`.
pub fn run(args: &PinblockArgs) -> Outcome {
    match (&args.block, &args.pin) {
        (Some(block), _) if args.decode => decode(args, block),
        (_, Some(pin)) if !args.decode => encode(args, pin),
        _ => Err("give --pin to build a block, or --decode --block to decode one".to_string()),
    }
}

/// Builds a block and prints it (encrypted under `--key` if given).
fn encode(args: &PinblockArgs, pin: &str) -> Outcome {
    let format = args
        .format
        .ok_or_else(|| "--format is required to build a PIN block".to_string())?;
    let pin = super::secret_text("--pin", pin)?;
    let pin = Pin::new(&pin).map_err(pin_err)?;
    let pan = pan_for(format.format(), args.pan.as_deref())?;
    let fill = match (format, &args.fill) {
        (PinFormat::Iso0, Some(_)) => return Err(not_applicable("--fill", "format 0")),
        (PinFormat::Iso0, None) => [0; 8],
        (_, Some(fill)) => hex_fixed::<8>("--fill", "the fill", fill)?,
        (_, None) => random_fill()?,
    };
    let clear = pinblock::encode(format.format(), &pin, &pan, &fill).map_err(pin_err)?;
    match &args.key {
        None => Ok(upper(clear.as_bytes())),
        Some(key) => {
            let key = des_key("--key", key)?;
            Ok(upper(&pinblock::encrypt_block(&key, &clear)))
        }
    }
}

/// Decodes a block (decrypting it first under `--key` if given) and prints the PIN.
fn decode(args: &PinblockArgs, block: &str) -> Outcome {
    let bytes = hex_fixed::<8>("--block", "a PIN block", block)?;
    let clear = match &args.key {
        None => ClearPinBlock::new(bytes),
        Some(key) => pinblock::decrypt_block(&des_key("--key", key)?, &bytes),
    };
    let format = match args.format {
        Some(f) => f.format(),
        None => detect(&clear, args.key.is_some())?,
    };
    let pan = pan_for(format, args.pan.as_deref())?;
    let pin = pinblock::decode(format, &clear, &pan).map_err(|e| format!("--block: {e}"))?;
    Ok(pin.digits().iter().map(|d| char::from(b'0' + d)).collect())
}

/// The format named by a clear block's control nibble.
fn detect(clear: &ClearPinBlock, decrypted: bool) -> Result<PinBlockFormat, String> {
    let control = clear.as_bytes()[0] >> 4;
    match control {
        0 => Ok(PinBlockFormat::Iso0),
        1 => Ok(PinBlockFormat::Iso1),
        3 => Ok(PinBlockFormat::Iso3),
        _ => {
            let hint = if decrypted { " (wrong --key?)" } else { "" };
            Err(format!(
                "--block: control nibble {control:X} is not format 0, 1 or 3{hint}; give \
                 --format to decode it anyway"
            ))
        }
    }
}

/// The PAN: required for the PAN-bound formats; format 1 ignores it, so a placeholder
/// stands in when it is not given.
fn pan_for(format: PinBlockFormat, pan: Option<&str>) -> Result<Pan, String> {
    match (pan, format) {
        (Some(pan), _) => Pan::new(pan).map_err(pin_err),
        (None, PinBlockFormat::Iso1) => Pan::new("00000000").map_err(pin_err),
        (None, _) => Err(format!("--pan is required for {format}")),
    }
}

/// Eight bytes from the operating system's random source.
fn random_fill() -> Result<[u8; 8], String> {
    let mut fill = [0u8; 8];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut fill))
        .map_err(|e| format!("cannot read fill from /dev/urandom ({e}); give --fill"))?;
    Ok(fill)
}

/// Names the argument behind a PIN or PAN error.
fn pin_err(e: Error) -> String {
    match e {
        Error::BadPin(PinProblem::Length { found }) => {
            format!("--pin: a PIN is 4 to 12 digits, not {found}")
        }
        Error::BadPin(p) => format!("--pin: {p}"),
        Error::BadPan(p) => format!("--pan: {p}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_format_from_the_control_nibble() {
        let f = |b: u8| detect(&ClearPinBlock::new([b, 0, 0, 0, 0, 0, 0, 0]), false);
        assert_eq!(f(0x04), Ok(PinBlockFormat::Iso0));
        assert_eq!(f(0x14), Ok(PinBlockFormat::Iso1));
        assert_eq!(f(0x34), Ok(PinBlockFormat::Iso3));
        assert_eq!(
            f(0x44),
            Err(
                "--block: control nibble 4 is not format 0, 1 or 3; give --format to decode \
                 it anyway"
                    .to_string()
            )
        );
    }

    #[test]
    fn random_fill_comes_from_the_os() {
        // Two draws of 64 bits agree with probability 2^-64.
        assert_ne!(random_fill().unwrap(), random_fill().unwrap());
    }
}
