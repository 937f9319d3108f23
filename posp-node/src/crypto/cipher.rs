//! `crypto encrypt` and `crypto decrypt`: block ciphers in ECB or CBC mode, no padding.

use clap::{Args, ValueEnum};
use pboc_sam::Key;
use pboc_sam::cipher::{self, Mode};

use super::{
    HexBytes, Outcome, aes_key, des_key_of, hex_arg, hex_fixed, lib_err, not_applicable, sm4_key,
    upper,
};

/// Which way to run the cipher.
#[derive(Clone, Copy)]
pub enum Direction {
    /// Plaintext to ciphertext.
    Encrypt,
    /// Ciphertext to plaintext.
    Decrypt,
}

/// The cipher and mode.
#[derive(Clone, Copy, ValueEnum)]
pub enum CipherAlg {
    /// Single DES, ECB (8-byte key).
    #[value(name = "des-ecb")]
    DesEcb,
    /// Single DES, CBC (8-byte key).
    #[value(name = "des-cbc")]
    DesCbc,
    /// Triple DES, ECB (16- or 24-byte key).
    #[value(name = "3des-ecb")]
    TdesEcb,
    /// Triple DES, CBC (16- or 24-byte key).
    #[value(name = "3des-cbc")]
    TdesCbc,
    /// AES, ECB (16, 24 or 32-byte key).
    #[value(name = "aes-ecb")]
    AesEcb,
    /// AES, CBC (16, 24 or 32-byte key).
    #[value(name = "aes-cbc")]
    AesCbc,
    /// SM4, ECB (16-byte key).
    #[value(name = "sm4-ecb")]
    Sm4Ecb,
    /// SM4, CBC (16-byte key).
    #[value(name = "sm4-cbc")]
    Sm4Cbc,
}

impl CipherAlg {
    /// The name on the command line.
    const fn name(self) -> &'static str {
        match self {
            Self::DesEcb => "des-ecb",
            Self::DesCbc => "des-cbc",
            Self::TdesEcb => "3des-ecb",
            Self::TdesCbc => "3des-cbc",
            Self::AesEcb => "aes-ecb",
            Self::AesCbc => "aes-cbc",
            Self::Sm4Ecb => "sm4-ecb",
            Self::Sm4Cbc => "sm4-cbc",
        }
    }

    /// `true` for the CBC modes, which take an IV.
    const fn is_cbc(self) -> bool {
        matches!(
            self,
            Self::DesCbc | Self::TdesCbc | Self::AesCbc | Self::Sm4Cbc
        )
    }
}

/// Arguments of `crypto encrypt` and `crypto decrypt`.
#[derive(Args)]
pub struct CipherArgs {
    /// The cipher and mode.
    #[arg(long, value_enum)]
    alg: CipherAlg,
    /// The key (hex).
    #[arg(long)]
    key: String,
    /// The CBC initial vector (hex, one block; default zeros).
    #[arg(long)]
    iv: Option<String>,
    /// The data (hex, whole blocks: 8 bytes for DES, 16 for AES and SM4).
    #[arg(long)]
    data: String,
}

/// Runs `crypto encrypt` or `crypto decrypt`.
pub fn run(args: &CipherArgs, direction: Direction) -> Outcome {
    let alg = args.alg;
    let key: Key = match alg {
        CipherAlg::DesEcb | CipherAlg::DesCbc => des_key_of(
            "--key",
            &args.key,
            &[8],
            &format!("{} needs an 8-byte key", alg.name()),
        )?
        .into(),
        CipherAlg::TdesEcb | CipherAlg::TdesCbc => des_key_of(
            "--key",
            &args.key,
            &[16, 24],
            &format!("{} needs a 16- or 24-byte key", alg.name()),
        )?
        .into(),
        CipherAlg::AesEcb | CipherAlg::AesCbc => aes_key("--key", &args.key)?.into(),
        CipherAlg::Sm4Ecb | CipherAlg::Sm4Cbc => sm4_key("--key", &args.key)?.into(),
    };
    let block = key.block_size();
    let data = hex_arg("--data", &args.data)?;
    if !data.len().is_multiple_of(block) {
        return Err(format!(
            "--data: {} works on whole {block}-byte blocks, not {} bytes",
            alg.name(),
            data.len()
        ));
    }
    let iv: Vec<u8> = match (&args.iv, alg.is_cbc(), block) {
        (Some(_), false, _) => return Err(not_applicable("--iv", alg.name())),
        (None, _, _) => vec![0; block],
        (Some(text), true, 8) => hex_fixed::<8>("--iv", "the IV (one block)", text)?.to_vec(),
        (Some(text), true, _) => hex_fixed::<16>("--iv", "the IV (one block)", text)?.to_vec(),
    };
    let mode = if alg.is_cbc() {
        Mode::Cbc { iv: &iv }
    } else {
        Mode::Ecb
    };
    // The output may be a clear key: wipe it once printed.
    let out = HexBytes(
        match direction {
            Direction::Encrypt => cipher::encrypt(&key, mode, &data),
            Direction::Decrypt => cipher::decrypt(&key, mode, &data),
        }
        .map_err(lib_err("--data"))?,
    );
    Ok(upper(&out))
}
