//! `crypto kcv` and `crypto field62`: key check values and the sign-in working keys.

use clap::{Args, ValueEnum};
use pboc_sam::keyexchange::parse_field62;
use pboc_sam::{DesKey, Field62Layout, KcvLength};

use super::{Outcome, aes_key, des_key, hex_arg, lib_err, sm4_key, upper};

/// The key algorithms of a KCV.
#[derive(Clone, Copy, ValueEnum)]
pub enum KcvAlg {
    /// DES or triple DES (8, 16 or 24 bytes): DES/3DES-ECB of 8 zero bytes.
    Des,
    /// AES (16, 24 or 32 bytes): AES-ECB of 16 zero bytes.
    Aes,
    /// SM4 (16 bytes): SM4-ECB of 16 zero bytes.
    Sm4,
}

/// Arguments of `crypto kcv`.
#[derive(Args)]
pub struct KcvArgs {
    /// The key (hex).
    #[arg(long)]
    key: String,
    /// The key's algorithm.
    #[arg(long, value_enum, default_value = "des")]
    alg: KcvAlg,
    /// How many bytes of the check block to print (1 to 8).
    #[arg(long, default_value_t = 4)]
    len: usize,
}

/// Runs `crypto kcv`.
pub fn run_kcv(args: &KcvArgs) -> Outcome {
    let len = KcvLength::new(args.len)
        .map_err(|_| format!("--len: a KCV is 1 to 8 bytes, not {}", args.len))?;
    let kcv = match args.alg {
        KcvAlg::Des => des_key("--key", &args.key)?.kcv(len),
        KcvAlg::Aes => aes_key("--key", &args.key)?.kcv(len),
        KcvAlg::Sm4 => sm4_key("--key", &args.key)?.kcv(len),
    };
    Ok(kcv.to_string())
}

/// Arguments of `crypto field62`.
#[derive(Args)]
pub struct Field62Args {
    /// The terminal master key (hex).
    #[arg(long)]
    tmk: String,
    /// Field 62 of the 0810 (hex), with or without its 2-byte BCD length.
    #[arg(long)]
    data: String,
    /// The network management code of field 60.3 (001, 003 or 004): check the layout
    /// matches it.
    #[arg(long)]
    code: Option<String>,
}

/// Runs `crypto field62`: prints `PIK <key> KCV <kcv>`, `MAK ..` and, when present,
/// `TDK ..`, one per line.
pub fn run_field62(args: &Field62Args) -> Outcome {
    let tmk = des_key("--tmk", &args.tmk)?;
    let data = hex_arg("--data", &args.data)?;
    let field = strip_length_prefix(&data);
    let layout = Field62Layout::from_len(field.len()).ok_or_else(|| {
        format!(
            "--data: field 62 is 24, 40, 56, 60 or 84 bytes (optionally after a 2-byte BCD \
             length), not {}",
            data.len()
        )
    })?;
    if let Some(code) = &args.code {
        let wanted = network_code(code)?;
        if wanted != layout {
            return Err(format!(
                "--code {code}: field 62 should be {} bytes, but --data has {}",
                wanted.len(),
                field.len()
            ));
        }
    }
    let keys = parse_field62(&tmk, field).map_err(lib_err("--data"))?;
    let mut lines = vec![line("PIK", &keys.pik), line("MAK", &keys.mak)];
    if let Some(tdk) = &keys.tdk {
        lines.push(line("TDK", tdk));
    }
    Ok(lines.join("\n"))
}

/// One output line: the name, the clear key and its 4-byte KCV.
fn line(name: &str, key: &DesKey) -> String {
    format!(
        "{name} {} KCV {}",
        upper(key.as_bytes()),
        key.kcv(KcvLength::UNIONPAY)
    )
}

/// Drops the 2-byte BCD length that field 62 carries on the wire, if it is there and agrees
/// with the rest. No layout length plus 2 is itself a layout length, so this is unambiguous.
fn strip_length_prefix(data: &[u8]) -> &[u8] {
    if Field62Layout::from_len(data.len()).is_some() {
        return data;
    }
    match data.split_first_chunk::<2>() {
        Some((prefix, rest))
            if Field62Layout::from_len(rest.len()).is_some()
                && upper(prefix) == format!("{:04}", rest.len()) =>
        {
            rest
        }
        _ => data,
    }
}

/// The layout named by a network management code: `1`, `001`, `3`, `003`, `4` or `004`.
fn network_code(code: &str) -> Result<Field62Layout, String> {
    let bad = || format!("--code: expected 001, 003 or 004, not {code:?}");
    if code.is_empty() || code.len() > 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u16 = code.parse().map_err(|_| bad())?;
    Field62Layout::from_network_code(n).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefix_is_optional() {
        let f = [7u8; 40];
        assert_eq!(strip_length_prefix(&f).len(), 40);
        let mut p = vec![0x00, 0x40];
        p.extend_from_slice(&f);
        assert_eq!(strip_length_prefix(&p).len(), 40);
        // A prefix that disagrees is not a prefix.
        p[1] = 0x41;
        assert_eq!(strip_length_prefix(&p).len(), 42);
        assert_eq!(strip_length_prefix(&[0x00]).len(), 1);
    }

    #[test]
    fn network_codes() {
        assert_eq!(network_code("001"), Ok(Field62Layout::Single24));
        assert_eq!(network_code("3"), Ok(Field62Layout::Double40));
        assert_eq!(network_code("004"), Ok(Field62Layout::DoubleTdk60));
        assert_eq!(
            network_code("002"),
            Err("--code: expected 001, 003 or 004, not \"002\"".to_string())
        );
        assert_eq!(
            network_code("+3"),
            Err("--code: expected 001, 003 or 004, not \"+3\"".to_string())
        );
    }
}
