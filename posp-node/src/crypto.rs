//! `posp-node crypto`: the payment engineer's cryptographic calculator.
//!
//! Every value goes in as hex (either case, spaces ignored) and comes out as upper-case hex,
//! one value per line. Bad hex, a bad length or a bad combination of options exits with
//! status 2 and one line on stderr naming the argument at fault; clap's own errors (unknown
//! algorithm, missing option) also exit with status 2.
//!
//! The algorithms themselves live in `pboc-sam`; this module parses arguments, checks
//! lengths up front so that errors name the argument, and adds a little glue that the
//! library does not offer (an IV for the CBC-based MACs, the optional length prefix of
//! field 62, format detection when decoding a PIN block).
//!
//! This is an operator's tool: it prints keys, PINs and clear blocks when that is what the
//! command is for, and nothing else. Decoded key bytes are wiped when dropped.
//!
//! Any hex value and any PIN can be given indirectly, so that keys and PINs stay out of the
//! process list and the shell history: `@PATH` reads the value from a file (surrounding
//! whitespace ignored) and `env:NAME` from an environment variable.

mod cipher;
mod keys;
mod mac;
mod pboc;
mod pin;

use std::ops::Deref;
use std::process::ExitCode;

use clap::Subcommand;
use pboc_sam::{AesKey, DesKey, Sm4Key};

/// The calculator's subcommands.
#[derive(Subcommand)]
pub enum CryptoCommand {
    /// Compute a MAC (UnionPay POS ECB, X9.19, X9.9, CBC-MAC, PBOC, AES-CMAC, SM4 CBC-MAC).
    Mac(mac::MacArgs),
    /// Compute a key check value (encrypt zeros, truncated).
    Kcv(keys::KcvArgs),
    /// Build, encrypt, decrypt or decode an ISO 9564 PIN block (formats 0, 1, 3).
    Pinblock(pin::PinblockArgs),
    /// Diversify a PBOC master key by one or more 8-byte factors, in the order given.
    Diversify(pboc::DiversifyArgs),
    /// Compute a PBOC load or purchase session key.
    SessionKey(pboc::SessionKeyArgs),
    /// Compute a PBOC TAC with a card's DTK.
    Tac(pboc::TacArgs),
    /// Decode the working keys of a sign-in field 62 under the TMK and check their KCVs.
    Field62(keys::Field62Args),
    /// Encrypt data (no padding: the data must be whole blocks).
    Encrypt(cipher::CipherArgs),
    /// Decrypt data (no padding: the data must be whole blocks).
    Decrypt(cipher::CipherArgs),
}

/// Runs a `crypto` subcommand: prints the result on stdout, or one `error: ...` line on
/// stderr and exits with status 2.
pub fn run(cmd: CryptoCommand) -> ExitCode {
    let result = match cmd {
        CryptoCommand::Mac(args) => mac::run(&args),
        CryptoCommand::Kcv(args) => keys::run_kcv(&args),
        CryptoCommand::Pinblock(args) => pin::run(&args),
        CryptoCommand::Diversify(args) => pboc::run_diversify(&args),
        CryptoCommand::SessionKey(args) => pboc::run_session_key(&args),
        CryptoCommand::Tac(args) => pboc::run_tac(&args),
        CryptoCommand::Field62(args) => keys::run_field62(&args),
        CryptoCommand::Encrypt(args) => cipher::run(&args, cipher::Direction::Encrypt),
        CryptoCommand::Decrypt(args) => cipher::run(&args, cipher::Direction::Decrypt),
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

/// What a subcommand produces: the text for stdout, or the message for the error line.
type Outcome = Result<String, String>;

/// Bytes decoded from a hex argument. They may be a key, so they are overwritten with zeros
/// when dropped (best effort: the binary does not depend on `zeroize`).
pub(crate) struct HexBytes(Vec<u8>);

impl Deref for HexBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for HexBytes {
    fn drop(&mut self) {
        for b in &mut self.0 {
            *b = 0;
        }
        std::hint::black_box(&mut self.0);
    }
}

/// The value of the option `arg` as given, or read from where it points: `@PATH` is the
/// contents of a file and `env:NAME` an environment variable (surrounding whitespace removed
/// from both). The text read is wiped when dropped, as it may be a key or a PIN.
pub(crate) fn secret_text(arg: &str, text: &str) -> Result<SecretText, String> {
    let read = if let Some(path) = text.strip_prefix('@') {
        std::fs::read_to_string(path).map_err(|e| format!("{arg}: cannot read {path}: {e}"))?
    } else if let Some(name) = text.strip_prefix("env:") {
        std::env::var(name).map_err(|e| format!("{arg}: environment variable {name}: {e}"))?
    } else {
        return Ok(SecretText(text.to_owned()));
    };
    let trimmed = SecretText(read.trim().to_owned());
    drop(SecretText(read));
    Ok(trimmed)
}

/// Text that may be a key or a PIN, overwritten with zeros when dropped (best effort).
pub(crate) struct SecretText(String);

impl Deref for SecretText {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for SecretText {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&mut bytes);
    }
}

/// Decodes the hex value of the option `arg` (e.g. `--key`): either case, ASCII whitespace
/// ignored, given directly or as `@PATH` / `env:NAME` ([`secret_text`]). Errors name the
/// option and say what is wrong.
pub(crate) fn hex_arg(arg: &str, text: &str) -> Result<HexBytes, String> {
    let text = secret_text(arg, text)?;
    let mut out = HexBytes(Vec::with_capacity(text.len() / 2));
    let mut high: Option<u8> = None;
    let mut digits = 0usize;
    for (position, c) in text.chars().enumerate() {
        if c.is_ascii_whitespace() {
            continue;
        }
        let Some(v) = c.to_digit(16).and_then(|v| u8::try_from(v).ok()) else {
            return Err(format!(
                "{arg}: character {c:?} at position {position} is not a hex digit"
            ));
        };
        digits += 1;
        match high.take() {
            None => high = Some(v),
            Some(h) => out.0.push((h << 4) | v),
        }
    }
    if high.is_some() {
        return Err(format!("{arg}: {digits} hex digits is an odd number"));
    }
    Ok(out)
}

/// Decodes a hex option that must be exactly `N` bytes; `what` names the value in the error
/// (e.g. "the card random").
pub(crate) fn hex_fixed<const N: usize>(
    arg: &str,
    what: &str,
    text: &str,
) -> Result<[u8; N], String> {
    let bytes = hex_arg(arg, text)?;
    <[u8; N]>::try_from(&bytes[..])
        .map_err(|_| format!("{arg}: {what} is {N} bytes, not {}", bytes.len()))
}

/// A DES or triple-DES key (8, 16 or 24 bytes) from a hex option.
pub(crate) fn des_key(arg: &str, text: &str) -> Result<DesKey, String> {
    let bytes = hex_arg(arg, text)?;
    DesKey::from_bytes(&bytes)
        .map_err(|_| format!("{arg}: a DES key is 8, 16 or 24 bytes, not {}", bytes.len()))
}

/// A DES key whose length must be one of `allowed` bytes; `rule` says so in the error
/// (e.g. "x9.19 needs a 16-byte key").
pub(crate) fn des_key_of(
    arg: &str,
    text: &str,
    allowed: &[usize],
    rule: &str,
) -> Result<DesKey, String> {
    let key = des_key(arg, text)?;
    if allowed.contains(&key.len()) {
        Ok(key)
    } else {
        Err(format!("{arg}: {rule}, not {}", key.len()))
    }
}

/// An AES key (16, 24 or 32 bytes) from a hex option.
pub(crate) fn aes_key(arg: &str, text: &str) -> Result<AesKey, String> {
    let bytes = hex_arg(arg, text)?;
    AesKey::from_bytes(&bytes).map_err(|_| {
        format!(
            "{arg}: an AES key is 16, 24 or 32 bytes, not {}",
            bytes.len()
        )
    })
}

/// An SM4 key (16 bytes) from a hex option.
pub(crate) fn sm4_key(arg: &str, text: &str) -> Result<Sm4Key, String> {
    let bytes = hex_arg(arg, text)?;
    Sm4Key::from_bytes(&bytes)
        .map_err(|_| format!("{arg}: an SM4 key is 16 bytes, not {}", bytes.len()))
}

/// Upper-case hex.
pub(crate) fn upper(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

/// Turns a library error into a message naming the argument it came from.
pub(crate) fn lib_err(arg: &str) -> impl Fn(pboc_sam::Error) -> String + '_ {
    move |e| format!("{arg}: {e}")
}

/// An error for an option that has no meaning with the chosen algorithm or mode.
pub(crate) fn not_applicable(arg: &str, context: &str) -> String {
    format!("{arg} does not apply to {context}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_accepts_either_case_and_spaces() {
        assert_eq!(
            &hex_arg("--data", "0a Bc\tDE").unwrap()[..],
            [0x0A, 0xBC, 0xDE]
        );
        assert_eq!(&hex_arg("--data", "").unwrap()[..], [0u8; 0]);
    }

    #[test]
    fn hex_errors_name_the_argument() {
        assert_eq!(
            hex_arg("--key", "0123456789ABCDE").err().unwrap(),
            "--key: 15 hex digits is an odd number"
        );
        assert_eq!(
            hex_arg("--key", "01 2G").err().unwrap(),
            "--key: character 'G' at position 4 is not a hex digit"
        );
        assert_eq!(
            hex_arg("--iv", "é0").err().unwrap(),
            "--iv: character 'é' at position 0 is not a hex digit"
        );
    }

    #[test]
    fn key_lengths_are_explained() {
        assert_eq!(
            des_key("--key", "00112233445566778899").err().unwrap(),
            "--key: a DES key is 8, 16 or 24 bytes, not 10"
        );
        assert_eq!(
            aes_key("--key", "0011").err().unwrap(),
            "--key: an AES key is 16, 24 or 32 bytes, not 2"
        );
        assert_eq!(
            sm4_key("--key", "0011223344556677").err().unwrap(),
            "--key: an SM4 key is 16 bytes, not 8"
        );
        assert_eq!(
            des_key_of(
                "--key",
                "0011223344556677",
                &[16],
                "x9.19 needs a 16-byte key"
            )
            .err()
            .unwrap(),
            "--key: x9.19 needs a 16-byte key, not 8"
        );
        assert_eq!(
            hex_fixed::<4>("--random", "the card random", "112233")
                .err()
                .unwrap(),
            "--random: the card random is 4 bytes, not 3"
        );
    }
}
