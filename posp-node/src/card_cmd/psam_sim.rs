//! `posp-node card psam-sim`: a virtual PSAM in an APDU session.
//!
//! The PSAM comes from a PSAM file (`--image`, JSON, or TOML when the name ends in
//! `.toml`) or from the command line: `--terminal-id` (6 bytes), the purchase master key
//! `--master-dpk` (usage `01`, version `--key-version`, default `01`, algorithm `00`),
//! optionally the TAC master key `--master-dtk` (usage `02`, same version), the PSAM serial
//! `--serial` (10 bytes, default zeros) and the next terminal transaction seq
//! `--terminal-seq` (decimal, default 1). The PSAM file has the same content:
//!
//! ```json
//! {
//!   "terminal_id": "001122334455",
//!   "serial": "00000000000000000001",
//!   "version": 1, "key_type": 0, "command_set_version": 0, "fci_data": 0,
//!   "terminal_seq": 1,
//!   "aid": "D1560000015053414D",
//!   "keys": [ { "usage": 1, "version": 1, "algorithm_id": 0, "key": "<16 or 24 bytes hex>" } ]
//! }
//! ```
//!
//! Everything but `terminal_id` and `keys` has the default shown (`aid`: the virtual PSAM's
//! default). **The file holds master keys in clear**: a test artifact, to be protected like
//! key material. `--save FILE` writes the PSAM file when the session ends, with the terminal
//! transaction seq where the session left it. The control line `!reset` power-cycles the
//! PSAM (the purchase session and the delivered key are gone; the terminal seq stays).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use pboc_card::VirtualPsam;
use pboc_card::command::PsamInfo;
use pboc_card::psam::{ALGORITHM_3DES, DEFAULT_PSAM_AID, KEY_USAGE_PURCHASE, KEY_USAGE_TAC};
use pboc_sam::DesKey;
use serde::{Deserialize, Serialize};

use super::{
    Simulator, decode_hex_line, hex_byte, hex_option, hex_serde, is_toml, read_text, replace_file,
    stdio_session, wipe,
};

/// Arguments of `card psam-sim`.
#[derive(Args)]
pub struct PsamSimArgs {
    /// A PSAM file (JSON, or TOML by extension). Without it, give --terminal-id and
    /// --master-dpk.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = [
            "terminal_id", "master_dpk", "master_dtk", "key_version", "serial", "terminal_seq",
        ]
    )]
    image: Option<PathBuf>,
    /// The terminal id (6 bytes, hex).
    #[arg(long, value_name = "HEX")]
    terminal_id: Option<String>,
    /// The purchase master key MPK (16 or 24 bytes, hex).
    #[arg(long, value_name = "HEX")]
    master_dpk: Option<String>,
    /// The TAC master key MTK (16 or 24 bytes, hex), for DELIVERY KEY / CIPHER DATA.
    #[arg(long, value_name = "HEX")]
    master_dtk: Option<String>,
    /// The version of the master keys (1 byte, hex).
    #[arg(long, value_name = "HEX", default_value = "01")]
    key_version: String,
    /// The PSAM serial number (10 bytes, hex).
    #[arg(long, value_name = "HEX")]
    serial: Option<String>,
    /// The terminal transaction seq of the next INIT SAM FOR PURCHASE (decimal).
    #[arg(long, value_name = "N", default_value_t = 1)]
    terminal_seq: u32,
    /// Write the PSAM file here when the session ends.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
}

fn default_version() -> u8 {
    1
}

fn default_terminal_seq() -> u32 {
    1
}

fn default_aid() -> Vec<u8> {
    DEFAULT_PSAM_AID.to_vec()
}

/// One master key of a PSAM file. `Debug` shows the key's check value only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PsamKeyEntry {
    /// Key usage (DELIVERY KEY P1): `1` purchase (MPK), `2` TAC (MTK).
    pub usage: u8,
    /// Key version.
    pub version: u8,
    /// Algorithm id.
    #[serde(default)]
    pub algorithm_id: u8,
    /// The master key in clear (hex, 16 or 24 bytes).
    #[serde(with = "master_key_hex")]
    pub key: DesKey,
}

/// A PSAM's configuration and counter, as `--image` reads and `--save` writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PsamImage {
    /// Terminal id (6 bytes).
    #[serde(with = "hex_serde")]
    pub terminal_id: [u8; 6],
    /// PSAM serial number (10 bytes).
    #[serde(default, with = "hex_serde")]
    pub serial: [u8; 10],
    /// PSAM version.
    #[serde(default = "default_version")]
    pub version: u8,
    /// Key card type.
    #[serde(default)]
    pub key_type: u8,
    /// Command set version.
    #[serde(default)]
    pub command_set_version: u8,
    /// Issuer-defined FCI data.
    #[serde(default)]
    pub fci_data: u8,
    /// The terminal seq of the next INIT SAM FOR PURCHASE.
    #[serde(default = "default_terminal_seq")]
    pub terminal_seq: u32,
    /// The AID SELECT accepts.
    #[serde(default = "default_aid", with = "hex_serde")]
    pub aid: Vec<u8>,
    /// Master keys; `(usage, version)` unique.
    pub keys: Vec<PsamKeyEntry>,
}

impl PsamImage {
    /// Parses a PSAM file, JSON or (for a `.toml` name) TOML.
    fn load(path: &Path) -> Result<Self, String> {
        let text = read_text(path)?;
        let parsed = if is_toml(path) {
            toml::from_str(&text).map_err(|e| e.to_string())
        } else {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        };
        let image: Self = parsed.map_err(|e| format!("{}: {e}", path.display()))?;
        image
            .validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(image)
    }

    /// Checks the AID length, key lengths and that `(usage, version)` is unique.
    fn validate(&self) -> Result<(), String> {
        if !(5..=16).contains(&self.aid.len()) {
            return Err(format!("aid must be 5..=16 bytes, not {}", self.aid.len()));
        }
        for (i, entry) in self.keys.iter().enumerate() {
            if entry.key.len() < 16 {
                return Err(format!(
                    "key usage {:02X} version {:02X} must be 16 or 24 bytes",
                    entry.usage, entry.version
                ));
            }
            if self.keys[..i]
                .iter()
                .any(|k| k.usage == entry.usage && k.version == entry.version)
            {
                return Err(format!(
                    "key usage {:02X} version {:02X} appears twice",
                    entry.usage, entry.version
                ));
            }
        }
        Ok(())
    }

    /// The PSAM this file describes.
    fn build(&self) -> VirtualPsam {
        let info = PsamInfo {
            serial: self.serial,
            version: self.version,
            key_type: self.key_type,
            command_set_version: self.command_set_version,
            fci_data: self.fci_data,
        };
        let mut psam = VirtualPsam::new(self.terminal_id, info);
        for entry in &self.keys {
            psam.add_key(
                entry.usage,
                entry.version,
                entry.algorithm_id,
                entry.key.clone(),
            );
        }
        psam.set_terminal_seq(self.terminal_seq).set_aid(&self.aid);
        psam
    }
}

/// A master key (16 or 24 bytes) from a hex option; the decoded bytes are wiped.
fn master_key_option(arg: &str, text: &str) -> Result<DesKey, String> {
    let mut bytes = decode_hex_line(text).map_err(|e| format!("{arg}: {e}"))?;
    let key = if matches!(bytes.len(), 16 | 24) {
        DesKey::from_bytes(&bytes).map_err(|e| format!("{arg}: {e}"))
    } else {
        Err(format!(
            "{arg}: a master key is 16 or 24 bytes, not {}",
            bytes.len()
        ))
    };
    wipe(&mut bytes);
    key
}

/// The PSAM file the arguments describe.
fn image_from(args: &PsamSimArgs) -> Result<PsamImage, String> {
    if let Some(path) = &args.image {
        return PsamImage::load(path);
    }
    let (Some(terminal_id), Some(master_dpk)) = (&args.terminal_id, &args.master_dpk) else {
        return Err("card psam-sim needs --image FILE, or --terminal-id and --master-dpk".into());
    };
    let terminal_id = hex_option::<6>("--terminal-id", "the terminal id", terminal_id)?;
    let version = hex_byte("--key-version", &args.key_version)?;
    let serial = match &args.serial {
        Some(text) => hex_option::<10>("--serial", "the PSAM serial", text)?,
        None => [0; 10],
    };
    let mut keys = vec![PsamKeyEntry {
        usage: KEY_USAGE_PURCHASE,
        version,
        algorithm_id: ALGORITHM_3DES,
        key: master_key_option("--master-dpk", master_dpk)?,
    }];
    if let Some(text) = &args.master_dtk {
        keys.push(PsamKeyEntry {
            usage: KEY_USAGE_TAC,
            version,
            algorithm_id: ALGORITHM_3DES,
            key: master_key_option("--master-dtk", text)?,
        });
    }
    Ok(PsamImage {
        terminal_id,
        serial,
        version: default_version(),
        key_type: 0,
        command_set_version: 0,
        fci_data: 0,
        terminal_seq: args.terminal_seq,
        aid: default_aid(),
        keys,
    })
}

/// A PSAM in a session, with its file for `!reset` and `--save`.
struct PsamSession {
    image: PsamImage,
    psam: VirtualPsam,
}

impl Simulator for PsamSession {
    fn process(&mut self, capdu: &[u8]) -> Vec<u8> {
        self.psam.process(capdu)
    }

    fn control(&mut self, words: &[&str]) -> Result<(), String> {
        match words {
            ["reset"] => {
                let next = self.psam.terminal_seq();
                self.psam = self.image.build();
                self.psam.set_terminal_seq(next);
                Ok(())
            }
            _ => Err(format!(
                "unknown control line `!{}` (the PSAM knows !reset)",
                words.join(" ")
            )),
        }
    }
}

/// Runs `card psam-sim`.
pub fn run(args: &PsamSimArgs) -> Result<ExitCode, String> {
    let image = image_from(args)?;
    let psam = image.build();
    let mut session = PsamSession { image, psam };
    stdio_session(&mut session)?;
    if let Some(path) = &args.save {
        let mut image = session.image.clone();
        image.terminal_seq = session.psam.terminal_seq();
        let json = serde_json::to_string_pretty(&image).map_err(|e| e.to_string())?;
        replace_file(path, &format!("{json}\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Serde for a master key as hex text (16 or 24 bytes); the intermediate text is wiped.
mod master_key_hex {
    use pboc_sam::DesKey;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the key as upper-case hex.
    pub(super) fn serialize<S: Serializer>(key: &DesKey, s: S) -> Result<S::Ok, S::Error> {
        let mut text = hex::encode_upper(key.as_bytes()).into_bytes();
        let result = s.serialize_str(core::str::from_utf8(&text).unwrap_or_default());
        super::wipe(&mut text);
        result
    }

    /// Reads a 16- or 24-byte key from hex text.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DesKey, D::Error> {
        let mut text = String::deserialize(d)?.into_bytes();
        let key = match hex::decode(&text) {
            Ok(mut bytes) => {
                let key = if matches!(bytes.len(), 16 | 24) {
                    DesKey::from_bytes(&bytes).map_err(|e| D::Error::custom(e.to_string()))
                } else {
                    Err(D::Error::custom(format!(
                        "a master key is 16 or 24 bytes, not {}",
                        bytes.len()
                    )))
                };
                super::wipe(&mut bytes);
                key
            }
            Err(e) => Err(D::Error::custom(format!("hex: {e}"))),
        };
        super::wipe(&mut text);
        key
    }
}
