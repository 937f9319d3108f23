//! `crypto diversify`, `crypto session-key` and `crypto tac`: PBOC 2.0 purse keys.

use clap::{Args, ValueEnum};
use pboc_sam::{mac, pboc};

use super::{Outcome, des_key, des_key_of, hex_arg, hex_fixed, lib_err, not_applicable, upper};

/// Arguments of `crypto diversify`.
#[derive(Args)]
pub struct DiversifyArgs {
    /// The master key (hex, 8, 16 or 24 bytes).
    #[arg(long)]
    key: String,
    /// An 8-byte diversification factor (hex). Repeat for multi-level diversification: the
    /// factors are applied in the order given, outermost (issuer, city) first.
    #[arg(long, required = true)]
    factor: Vec<String>,
}

/// Runs `crypto diversify`: prints the derived 16-byte key.
pub fn run_diversify(args: &DiversifyArgs) -> Outcome {
    let master = des_key("--key", &args.key)?;
    let mut factors = Vec::with_capacity(args.factor.len());
    for (i, text) in args.factor.iter().enumerate() {
        let bytes = hex_arg("--factor", text)?;
        let factor = <[u8; 8]>::try_from(&bytes[..]).map_err(|_| {
            format!(
                "--factor (number {}): a diversification factor is 8 bytes, not {}",
                i + 1,
                bytes.len()
            )
        })?;
        factors.push(factor);
    }
    let key = pboc::diversify_path(&master, &factors);
    Ok(upper(key.as_bytes()))
}

/// The kinds of session key.
#[derive(Clone, Copy, ValueEnum)]
pub enum SessionKind {
    /// SESLK (load, unload, overdraw-limit update) from the DLK:
    /// random(4) | online seq(2) | 8000.
    Load,
    /// SESPK (purchase, cash withdrawal, CAPP purchase) from the DPK:
    /// random(4) | offline seq(2) | last 2 bytes of the terminal transaction seq.
    Purchase,
}

/// Arguments of `crypto session-key`.
#[derive(Args)]
pub struct SessionKeyArgs {
    /// Load or purchase.
    #[arg(long, value_enum)]
    kind: SessionKind,
    /// The card's key: DLK for load, DPK for purchase (hex).
    #[arg(long)]
    key: String,
    /// The card's random number (hex, 4 bytes).
    #[arg(long)]
    random: String,
    /// The card's online (load) or offline (purchase) transaction sequence number (hex,
    /// 2 bytes).
    #[arg(long)]
    seq: String,
    /// The terminal transaction sequence number (hex, 4 bytes); purchase only.
    #[arg(long)]
    terminal_seq: Option<String>,
}

/// Runs `crypto session-key`: prints the 8-byte session key.
pub fn run_session_key(args: &SessionKeyArgs) -> Outcome {
    let card_key = des_key("--key", &args.key)?;
    let random = hex_fixed::<4>("--random", "the card random", &args.random)?;
    let seq = u16::from_be_bytes(hex_fixed::<2>(
        "--seq",
        "a transaction sequence number",
        &args.seq,
    )?);
    let key = match (args.kind, &args.terminal_seq) {
        (SessionKind::Load, None) => pboc::load_session_key(&card_key, &random, seq),
        (SessionKind::Load, Some(_)) => {
            return Err(not_applicable("--terminal-seq", "a load session key"));
        }
        (SessionKind::Purchase, Some(text)) => {
            let terminal_seq = u32::from_be_bytes(hex_fixed::<4>(
                "--terminal-seq",
                "the terminal transaction sequence number",
                text,
            )?);
            pboc::purchase_session_key(&card_key, &random, seq, terminal_seq)
        }
        (SessionKind::Purchase, None) => {
            return Err("--terminal-seq is required for --kind purchase".to_string());
        }
    };
    Ok(upper(key.as_bytes()))
}

/// Arguments of `crypto tac`.
#[derive(Args)]
pub struct TacArgs {
    /// The card's DTK (hex, 16 bytes); the TAC key is its left half XOR its right half.
    #[arg(long)]
    key: String,
    /// The TAC input data (hex).
    #[arg(long)]
    data: String,
}

/// Runs `crypto tac`: prints the 4-byte TAC.
pub fn run_tac(args: &TacArgs) -> Outcome {
    let dtk = des_key_of("--key", &args.key, &[16], "a DTK is 16 bytes")?;
    let data = hex_arg("--data", &args.data)?;
    let tac_key = pboc::tac_key(&dtk).map_err(lib_err("--key"))?;
    let tac = mac::pboc(&tac_key, &data).map_err(lib_err("--key"))?;
    Ok(upper(&tac))
}
