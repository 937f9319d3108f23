//! The terminals file: which terminals the simulator plays, with their clear TMKs.
//!
//! `posp-node init` writes it next to the front end's configuration (`terminals.json`); the
//! simulator reads it. JSON (a `.json` file) or TOML (any other name), with unknown keys
//! refused:
//!
//! ```json
//! {
//!   "front": "127.0.0.1:5860",
//!   "tpdu": "6000040000",
//!   "header": "603100000000",
//!   "terminals": [
//!     { "id": "10000001", "merchant_id": "898100012340001",
//!       "tmk": "CA5D92598DCA48CE8A4C76361A9269E9" }
//!   ]
//! }
//! ```
//!
//! | key | meaning |
//! |---|---|
//! | `front` | optional: the front end's address (`host:port`); `--front` overrides it |
//! | `tpdu` | optional: the TPDU the terminals send, 10 hex digits (default `6000040000`) |
//! | `header` | optional: the 6-byte UnionPay header, 12 digits (default `603100000000`) |
//! | `terminals[].id` | terminal id, field 41: 8 characters |
//! | `terminals[].merchant_id` | merchant id, field 42: 15 characters |
//! | `terminals[].tmk` | the terminal master key in clear, 16 or 32 hex digits (what the POS's secure element holds) |
//! | `terminals[].batch` | optional: the batch number to start with, 1 to 999999 (default 1) |
//! | `terminals[].stan` | optional: the first STAN, 1 to 999999 (default 1) |
//! | `terminals[].card_terminal_id` | optional: the 6-byte terminal id a purse card sees in a load, 12 hex digits (default: the last 12 digits of `id`, zero-filled, as BCD) |
//!
//! In TOML the terminals are `[[terminals]]` tables. The file holds clear keys: it is
//! written with mode 0600 and never overwritten ([`write_terminals_file`]).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use iso8583_wire::frame::{CupsHeader, Tpdu};
use pboc_sam::DesKey;
use serde::{Deserialize, Serialize};

use super::terminal::TerminalConfig;

/// The terminals file (see the [module documentation](self) for the format).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalsFile {
    /// The front end's address, `host:port` (`--front` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub front: Option<String>,
    /// The TPDU the terminals send, 10 hex digits (default `6000040000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpdu: Option<String>,
    /// The UnionPay header the terminals send, 12 digits (default `603100000000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The terminals.
    #[serde(default)]
    pub terminals: Vec<TerminalEntry>,
}

/// One terminal of a [`TerminalsFile`]. `Debug` shows the TMK's check value only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalEntry {
    /// Terminal id (field 41), 8 characters.
    pub id: String,
    /// Merchant id (field 42), 15 characters.
    pub merchant_id: String,
    /// The clear terminal master key, 16 or 32 hex digits.
    pub tmk: String,
    /// The batch number to start with (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<u32>,
    /// The first STAN (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stan: Option<u32>,
    /// The 6-byte terminal id a purse card sees in a load, 12 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_terminal_id: Option<String>,
}

impl fmt::Debug for TerminalEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tmk = DesKey::from_hex(&self.tmk)
            .map(|k| format!("{k:?}"))
            .unwrap_or_else(|_| "<invalid>".to_owned());
        f.debug_struct("TerminalEntry")
            .field("id", &self.id)
            .field("merchant_id", &self.merchant_id)
            .field("tmk", &tmk)
            .field("batch", &self.batch)
            .field("stan", &self.stan)
            .field("card_terminal_id", &self.card_terminal_id)
            .finish()
    }
}

impl TerminalEntry {
    /// An entry with the defaults for batch, STAN and card terminal id.
    pub fn new(id: impl Into<String>, merchant_id: impl Into<String>, tmk: &DesKey) -> Self {
        TerminalEntry {
            id: id.into(),
            merchant_id: merchant_id.into(),
            tmk: hex::encode_upper(tmk.as_bytes()),
            batch: None,
            stan: None,
            card_terminal_id: None,
        }
    }
}

/// What is wrong with a terminals file.
#[derive(Debug, thiserror::Error)]
pub enum TerminalsFileError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file exists and would be overwritten.
    #[error("{0}: exists; the terminals file is never overwritten")]
    Exists(PathBuf),
    /// The text is not a terminals file.
    #[error("{path}: {message}")]
    Parse {
        /// The file (or `<text>`).
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("{what}: {message}")]
    Invalid {
        /// Which value (`terminals[1].tmk`, `tpdu` ...).
        what: String,
        /// What is wrong.
        message: String,
    },
    /// The file could not be serialized.
    #[error("cannot serialize the terminals file: {0}")]
    Serialize(String),
}

fn invalid(what: impl Into<String>, message: impl Into<String>) -> TerminalsFileError {
    TerminalsFileError::Invalid {
        what: what.into(),
        message: message.into(),
    }
}

/// Whether `path` names a JSON file (by its extension); anything else is TOML.
fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

impl TerminalsFile {
    /// Parses JSON text.
    ///
    /// # Errors
    /// [`TerminalsFileError::Parse`] for malformed text or unknown keys.
    pub fn from_json(text: &str) -> Result<Self, TerminalsFileError> {
        serde_json::from_str(text).map_err(|e| TerminalsFileError::Parse {
            path: "<json>".to_owned(),
            message: e.to_string(),
        })
    }

    /// Parses TOML text.
    ///
    /// # Errors
    /// [`TerminalsFileError::Parse`] for malformed text or unknown keys.
    pub fn from_toml(text: &str) -> Result<Self, TerminalsFileError> {
        toml::from_str(text).map_err(|e| TerminalsFileError::Parse {
            path: "<toml>".to_owned(),
            message: e.to_string(),
        })
    }

    /// Reads a file: JSON if its name ends in `.json`, TOML otherwise.
    ///
    /// # Errors
    /// [`TerminalsFileError::Io`] or [`TerminalsFileError::Parse`] naming the file.
    pub fn load(path: &Path) -> Result<Self, TerminalsFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TerminalsFileError::Io {
            path: path.to_owned(),
            source,
        })?;
        let parsed = if is_json(path) {
            Self::from_json(&text)
        } else {
            Self::from_toml(&text)
        };
        parsed.map_err(|e| match e {
            TerminalsFileError::Parse { message, .. } => TerminalsFileError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// The file as pretty JSON (with a final newline).
    ///
    /// # Errors
    /// [`TerminalsFileError::Serialize`] (does not happen for these types).
    pub fn to_json(&self) -> Result<String, TerminalsFileError> {
        serde_json::to_string_pretty(self)
            .map(|s| s + "\n")
            .map_err(|e| TerminalsFileError::Serialize(e.to_string()))
    }

    /// The file as TOML.
    ///
    /// # Errors
    /// [`TerminalsFileError::Serialize`] (does not happen for these types).
    pub fn to_toml(&self) -> Result<String, TerminalsFileError> {
        toml::to_string(self).map_err(|e| TerminalsFileError::Serialize(e.to_string()))
    }

    /// The TPDU the terminals send.
    ///
    /// # Errors
    /// [`TerminalsFileError::Invalid`] unless `tpdu` is 10 hex digits.
    pub fn tpdu(&self) -> Result<Tpdu, TerminalsFileError> {
        let Some(text) = &self.tpdu else {
            return Ok(super::terminal::DEFAULT_TPDU);
        };
        let bytes = hex::decode(text).map_err(|e| invalid("tpdu", e.to_string()))?;
        let bytes: [u8; 5] = bytes
            .try_into()
            .map_err(|_| invalid("tpdu", "expected 10 hex digits"))?;
        Ok(Tpdu::from_bytes(bytes))
    }

    /// The UnionPay header the terminals send.
    ///
    /// # Errors
    /// [`TerminalsFileError::Invalid`] unless `header` is 12 digits.
    pub fn header(&self) -> Result<CupsHeader, TerminalsFileError> {
        let Some(text) = &self.header else {
            return Ok(super::terminal::DEFAULT_HEADER);
        };
        text.parse::<CupsHeader>()
            .map_err(|e| invalid("header", e.to_string()))
            .and_then(|h| {
                if text.len() == 12 {
                    Ok(h)
                } else {
                    Err(invalid("header", "expected 12 digits"))
                }
            })
    }

    /// Checks every value and builds one [`TerminalConfig`] per terminal, connecting to
    /// `front` (or, when `None`, the file's `front`).
    ///
    /// # Errors
    /// [`TerminalsFileError::Invalid`] naming the first bad value: no front address, an id
    /// that is not 8 characters, a merchant id that is not 15, a TMK that is not 16 or 32 hex
    /// digits, a batch or STAN outside 1..=999999, a card terminal id that is not 12 hex
    /// digits, or a terminal id given twice.
    pub fn terminal_configs(
        &self,
        front: Option<&str>,
    ) -> Result<Vec<TerminalConfig>, TerminalsFileError> {
        let front = front
            .map(str::to_owned)
            .or_else(|| self.front.clone())
            .ok_or_else(|| invalid("front", "no front end address (give --front)"))?;
        let tpdu = self.tpdu()?;
        let header = self.header()?;
        let mut out: Vec<TerminalConfig> = Vec::with_capacity(self.terminals.len());
        for (i, t) in self.terminals.iter().enumerate() {
            let at = |key: &str| format!("terminals[{i}].{key}");
            if t.id.len() != 8 || !t.id.is_ascii() {
                return Err(invalid(at("id"), "expected 8 ASCII characters"));
            }
            if out.iter().any(|c| c.terminal_id == t.id) {
                return Err(invalid(at("id"), format!("{} is listed twice", t.id)));
            }
            if t.merchant_id.len() != 15 || !t.merchant_id.is_ascii() {
                return Err(invalid(at("merchant_id"), "expected 15 ASCII characters"));
            }
            let tmk = match DesKey::from_hex(&t.tmk) {
                Ok(k) if matches!(k.as_bytes().len(), 8 | 16) => k,
                _ => return Err(invalid(at("tmk"), "expected 16 or 32 hex digits")),
            };
            let mut config = TerminalConfig::new(front.clone(), &t.id, &t.merchant_id, tmk);
            config.tpdu = tpdu;
            config.header = header;
            if let Some(batch) = t.batch {
                if !(1..=999_999).contains(&batch) {
                    return Err(invalid(at("batch"), "expected 1 to 999999"));
                }
                config.batch = batch;
            }
            if let Some(stan) = t.stan {
                if !(1..=999_999).contains(&stan) {
                    return Err(invalid(at("stan"), "expected 1 to 999999"));
                }
                config.first_stan = stan;
            }
            if let Some(text) = &t.card_terminal_id {
                let id: [u8; 6] = hex::decode(text)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| invalid(at("card_terminal_id"), "expected 12 hex digits"))?;
                config.card_terminal_id = id;
            }
            out.push(config);
        }
        Ok(out)
    }
}

/// Writes `file` to `path` (JSON if the name ends in `.json`, TOML otherwise) with mode 0600,
/// refusing to overwrite an existing file. This is what `posp-node init` calls.
///
/// # Errors
/// [`TerminalsFileError::Exists`] if `path` exists, [`TerminalsFileError::Io`] if it cannot
/// be written.
pub fn write_terminals_file(path: &Path, file: &TerminalsFile) -> Result<(), TerminalsFileError> {
    let text = if is_json(path) {
        file.to_json()?
    } else {
        file.to_toml()?
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let io = |source| TerminalsFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            TerminalsFileError::Exists(path.to_owned())
        } else {
            io(e)
        }
    })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io)
}
