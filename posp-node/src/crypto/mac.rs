//! `crypto mac`: every MAC the stack speaks.
//!
//! The CBC-based MACs (cbc-mac, x9.9, x9.19, sm4-mac) accept an `--iv`. The library computes
//! them from a zero IV, so the glue here pads the data itself and XORs the IV into the first
//! block: CBC from IV over `B1 B2 ..` is CBC from zero over `B1^IV B2 ..`.

use clap::{Args, ValueEnum};
use pboc_sam::Padding;
use pboc_sam::mac;

use super::{
    Outcome, aes_key, des_key, des_key_of, hex_arg, hex_fixed, lib_err, not_applicable, sm4_key,
    upper,
};

/// The MAC algorithms.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MacAlg {
    /// UnionPay POS "ECB" MAC: prints the 8 characters that go into field 64.
    #[value(name = "unionpay-ecb")]
    UnionpayEcb,
    /// ANSI X9.19 retail MAC (ISO 9797-1 algorithm 3), 16-byte key.
    #[value(name = "x9.19")]
    X919,
    /// ANSI X9.9: single-DES CBC-MAC, padding method 1, 8-byte key.
    #[value(name = "x9.9")]
    X99,
    /// ISO 9797-1 algorithm 1: CBC-MAC with DES or triple DES on every block.
    #[value(name = "cbc-mac")]
    CbcMac,
    /// PBOC 2.0 MAC/TAC: padding 80 00.., 4 bytes.
    Pboc,
    /// AES-CMAC (NIST SP 800-38B, RFC 4493).
    #[value(name = "cmac-aes")]
    CmacAes,
    /// CBC-MAC with SM4.
    #[value(name = "sm4-mac")]
    Sm4Mac,
}

impl MacAlg {
    /// The name on the command line.
    const fn name(self) -> &'static str {
        match self {
            Self::UnionpayEcb => "unionpay-ecb",
            Self::X919 => "x9.19",
            Self::X99 => "x9.9",
            Self::CbcMac => "cbc-mac",
            Self::Pboc => "pboc",
            Self::CmacAes => "cmac-aes",
            Self::Sm4Mac => "sm4-mac",
        }
    }
}

/// ISO/IEC 9797-1 padding methods, by number.
#[derive(Clone, Copy, ValueEnum)]
pub enum PadArg {
    /// Method 1: zero bytes up to a whole block.
    #[value(name = "1")]
    Method1,
    /// Method 2: `80`, then zero bytes up to a whole block.
    #[value(name = "2")]
    Method2,
}

/// Arguments of `crypto mac`.
#[derive(Args)]
pub struct MacArgs {
    /// The algorithm.
    #[arg(long, value_enum)]
    alg: MacAlg,
    /// The MAC key (hex).
    #[arg(long)]
    key: String,
    /// ISO 9797-1 padding method for cbc-mac, x9.19 and sm4-mac (default 1).
    #[arg(long, value_enum)]
    pad: Option<PadArg>,
    /// Initial vector (hex, one block) for pboc, cbc-mac, x9.9, x9.19 and sm4-mac (default
    /// zeros).
    #[arg(long)]
    iv: Option<String>,
    /// Print only the first N bytes of the MAC.
    #[arg(long)]
    len: Option<usize>,
    /// The data (hex; may be empty).
    #[arg(long)]
    data: String,
}

/// Runs `crypto mac`.
pub fn run(args: &MacArgs) -> Outcome {
    let alg = args.alg;
    let data = hex_arg("--data", &args.data)?;
    if args.pad.is_some() && !matches!(alg, MacAlg::CbcMac | MacAlg::X919 | MacAlg::Sm4Mac) {
        let fixed = match alg {
            MacAlg::Pboc => " (always padding method 2)",
            MacAlg::X99 => " (always padding method 1)",
            _ => "",
        };
        return Err(not_applicable("--pad", &format!("{}{fixed}", alg.name())));
    }
    if args.iv.is_some() && matches!(alg, MacAlg::UnionpayEcb | MacAlg::CmacAes) {
        return Err(not_applicable("--iv", alg.name()));
    }
    let padding = match args.pad {
        Some(PadArg::Method2) => Padding::Method2,
        Some(PadArg::Method1) | None => Padding::Method1,
    };
    let full: Vec<u8> = match alg {
        MacAlg::UnionpayEcb => {
            if args.len.is_some() {
                return Err(not_applicable(
                    "--len",
                    "unionpay-ecb (it always prints the 8 characters of field 64)",
                ));
            }
            let key = des_key("--key", &args.key)?;
            let text = mac::pos_ecb(&key, &data);
            // The library returns 8 upper-case ASCII hex digits: print them as they are.
            return Ok(String::from_utf8_lossy(&text).into_owned());
        }
        MacAlg::X919 => {
            let key = des_key_of("--key", &args.key, &[16], "x9.19 needs a 16-byte key")?;
            let (data, padding) = with_iv::<8>(&data, padding, args.iv.as_deref())?;
            mac::iso9797_1_alg3(&key, &data, padding)
                .map_err(lib_err("--key"))?
                .to_vec()
        }
        MacAlg::X99 => {
            let key = des_key_of("--key", &args.key, &[8], "x9.9 needs an 8-byte key")?;
            let (data, padding) = with_iv::<8>(&data, Padding::Method1, args.iv.as_deref())?;
            mac::iso9797_1_alg1(&key, &data, padding).to_vec()
        }
        MacAlg::CbcMac => {
            let key = des_key("--key", &args.key)?;
            let (data, padding) = with_iv::<8>(&data, padding, args.iv.as_deref())?;
            mac::iso9797_1_alg1(&key, &data, padding).to_vec()
        }
        MacAlg::Pboc => {
            let key = des_key_of(
                "--key",
                &args.key,
                &[8, 16],
                "pboc needs an 8- or 16-byte key",
            )?;
            let iv = match &args.iv {
                Some(iv) => hex_fixed::<8>("--iv", "a pboc IV", iv)?,
                None => [0; 8],
            };
            mac::pboc_with_iv(&key, &iv, &data)
                .map_err(lib_err("--key"))?
                .to_vec()
        }
        MacAlg::CmacAes => {
            let key = aes_key("--key", &args.key)?;
            mac::aes_cmac(&key, &data).to_vec()
        }
        MacAlg::Sm4Mac => {
            let key = sm4_key("--key", &args.key)?;
            let (data, padding) = with_iv::<16>(&data, padding, args.iv.as_deref())?;
            mac::sm4_cbc_mac(&key, &data, padding).to_vec()
        }
    };
    match args.len {
        None => Ok(upper(&full)),
        Some(n) if (1..=full.len()).contains(&n) => Ok(upper(full.get(..n).unwrap_or(&full))),
        Some(n) => Err(format!(
            "--len: {} gives {} bytes, so --len is 1 to {}, not {n}",
            alg.name(),
            full.len(),
            full.len()
        )),
    }
}

/// Prepares the input of a zero-IV CBC-MAC so that it computes the MAC from `iv`.
///
/// Without an IV the data and padding are passed through. With one, the data is padded here
/// (so it is whole, non-empty blocks), the IV is XORed into the first block, and the library
/// is asked for padding method 1, which adds nothing to whole non-empty blocks.
fn with_iv<const N: usize>(
    data: &[u8],
    padding: Padding,
    iv: Option<&str>,
) -> Result<(Vec<u8>, Padding), String> {
    let Some(iv) = iv else {
        return Ok((data.to_vec(), padding));
    };
    let iv = hex_fixed::<N>("--iv", "the IV (one block)", iv)?;
    let mut out = data.to_vec();
    match padding {
        Padding::Method1 => {
            let blocks = out.len().div_ceil(N).max(1);
            out.resize(blocks * N, 0);
        }
        Padding::Method2 => {
            out.push(0x80);
            out.resize(out.len().div_ceil(N) * N, 0);
        }
    }
    for (d, s) in out.iter_mut().zip(&iv) {
        *d ^= s;
    }
    Ok((out, Padding::Method1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pboc_sam::DesKey;

    #[test]
    fn iv_glue_matches_chaining() {
        // CBC-MAC over B1 B2 from zero = CBC-MAC over B2 from IV E(K, B1).
        let key = DesKey::from_hex("0123456789ABCDEF").unwrap();
        let now = b"Now is the time for all ";
        let mut iv = [0u8; 8];
        iv.copy_from_slice(&mac::iso9797_1_alg1(&key, &now[..8], Padding::Method1));
        for padding in [Padding::Method1, Padding::Method2] {
            let (d, p) = with_iv::<8>(&now[8..], padding, Some(&upper(&iv))).unwrap();
            assert_eq!(
                mac::iso9797_1_alg1(&key, &d, p),
                mac::iso9797_1_alg1(&key, now, padding)
            );
        }
        // Short data: the padding lands in the first block, before the IV.
        let (d, p) = with_iv::<8>(b"ab", Padding::Method2, Some("0102030405060708")).unwrap();
        assert_eq!(d, [0x61 ^ 1, 0x62 ^ 2, 0x80 ^ 3, 4, 5, 6, 7, 8]);
        assert_eq!(p, Padding::Method1);
        let (d, _) = with_iv::<8>(b"", Padding::Method1, Some("0102030405060708")).unwrap();
        assert_eq!(d, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            with_iv::<16>(b"", Padding::Method1, Some("00"))
                .err()
                .unwrap(),
            "--iv: the IV (one block) is 16 bytes, not 1"
        );
    }
}
