//! `posp-node card`: PBOC card tools — a virtual ED/EP card and a virtual PSAM driven by
//! APDUs on stdin, and card personalization with its quality check.
//!
//! # APDU sessions (`card sim`, `card psam-sim`)
//!
//! The simulator reads stdin line by line and answers on stdout:
//!
//! - a line of hex is one C-APDU (either case; spaces and tabs anywhere in the line are
//!   ignored). Its answer is one line: the R-APDU (response data, then `SW1 SW2`) in
//!   upper-case hex, flushed at once so a driving program can wait for it;
//! - blank lines and lines whose first non-blank character is `#` are skipped (so a recorded
//!   trace with `# expect ...` comments replays as it is);
//! - a line starting with `!` is a control line for the simulator itself: `!reset` (power
//!   cycle: the pending transaction and the PIN state are gone), `!tear before` and
//!   `!tear after` (arm a one-shot power loss on the next completing command — CREDIT FOR
//!   LOAD, DEBIT FOR PURCHASE, DEBIT FOR UNLOAD, UPDATE OVERDRAW LIMIT — before it commits,
//!   or after it committed with the response lost). Only the card knows them;
//! - a torn response (the card lost power, see `!tear`) prints an **empty line**: the card
//!   sends no bytes at all, not even a status word, which is what a reader reports as a
//!   communication error. The next line is answered by the card after its power cycle;
//! - a line that is not hex (an odd number of digits, a character that is not a hex digit,
//!   bytes that are not UTF-8, more than [`MAX_LINE`] bytes) or an unknown control line gets
//!   one line `error: line N: ...` on stderr and **no line on stdout**, and the session goes
//!   on with the next line: one bad line never ends a session. A driver that waits for an
//!   answer line should therefore send only well-formed hex (or watch stderr).
//!
//! At the end of stdin the simulator exits with status 0 (after writing the final state
//! with `--save`). Bad options, an unreadable image or a failed write exit with status 2
//! and one `error: ...` line on stderr.
//!
//! # Card issue (`card issue`)
//!
//! Personalizes a card from an issuer profile, quality-checks it and writes its image; see
//! [`issue`].

mod issue;
mod psam_sim;
mod sim;

use std::fs;
use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};

use clap::Subcommand;
use pboc_sam::RandomSource;

/// The card tools' subcommands.
#[derive(Subcommand)]
pub enum CardCommand {
    /// Run a virtual ED/EP card: one C-APDU per stdin line (hex), one R-APDU per stdout line.
    Sim(sim::SimArgs),
    /// Run a virtual PSAM: one C-APDU per stdin line (hex), one R-APDU per stdout line.
    PsamSim(psam_sim::PsamSimArgs),
    /// Personalize a card from an issuer profile, quality-check it and write its image.
    Issue(issue::IssueArgs),
}

/// Runs a `card` subcommand and returns its exit status (see the module documentation).
pub fn run(cmd: CardCommand) -> ExitCode {
    let result = match cmd {
        CardCommand::Sim(args) => sim::run(&args),
        CardCommand::PsamSim(args) => psam_sim::run(&args),
        CardCommand::Issue(args) => issue::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Longest input line a session accepts, in bytes (the longest extended APDU in hex is
/// about 131,090 characters; this leaves room for spacing).
pub const MAX_LINE: usize = 1 << 20;

/// A simulator an APDU session drives.
trait Simulator {
    /// Answers one C-APDU with the R-APDU bytes (empty when the response was torn).
    fn process(&mut self, capdu: &[u8]) -> Vec<u8>;

    /// Handles a control line (the words after `!`).
    ///
    /// # Errors
    /// Why the control line is not understood.
    fn control(&mut self, words: &[&str]) -> Result<(), String>;
}

/// What one input line of a session is.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// Blank or a `#` comment.
    Skip,
    /// A C-APDU.
    Apdu(Vec<u8>),
    /// A control line: the words after `!`.
    Control(Vec<String>),
    /// Not usable: why.
    Bad(String),
}

/// Classifies one input line (without its line feed).
fn classify(raw: &[u8]) -> Line {
    let Ok(text) = std::str::from_utf8(raw) else {
        return Line::Bad("the line is not UTF-8 text".into());
    };
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Line::Skip;
    }
    if let Some(control) = trimmed.strip_prefix('!') {
        return Line::Control(control.split_whitespace().map(str::to_owned).collect());
    }
    match decode_hex_line(text) {
        Ok(bytes) => Line::Apdu(bytes),
        Err(e) => Line::Bad(e),
    }
}

/// Decodes a line of hex, ignoring whitespace anywhere; errors name the column (1-based).
fn decode_hex_line(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<u8> = None;
    let mut digits = 0usize;
    for (column, c) in text.chars().enumerate() {
        if c.is_whitespace() {
            continue;
        }
        let Some(value) = c.to_digit(16).and_then(|v| u8::try_from(v).ok()) else {
            return Err(format!(
                "character {c:?} at column {} is not a hex digit",
                column + 1
            ));
        };
        digits += 1;
        match high.take() {
            None => high = Some(value),
            Some(h) => out.push((h << 4) | value),
        }
    }
    if high.is_some() {
        return Err(format!("{digits} hex digits is an odd number"));
    }
    Ok(out)
}

/// Reads the next line (without its line feed) into `line`, keeping at most [`MAX_LINE`]
/// bytes. `None` at the end of the input; `Some(true)` when the line was longer (its
/// content is then dropped).
fn next_line(input: &mut dyn BufRead, line: &mut Vec<u8>) -> io::Result<Option<bool>> {
    line.clear();
    let mut overlong = false;
    let mut read_any = false;
    loop {
        let available = match input.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(read_any.then_some(overlong));
        }
        read_any = true;
        let end = available.iter().position(|b| *b == b'\n');
        let (chunk, consumed) = match end {
            Some(at) => available.split_at(at),
            None => (available, &[][..]),
        };
        if !overlong {
            if line.len() + chunk.len() > MAX_LINE {
                overlong = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        // The chunk, plus the line feed when there is one.
        let used = chunk.len() + usize::from(!consumed.is_empty());
        input.consume(used);
        if end.is_some() {
            return Ok(Some(overlong));
        }
    }
}

/// Runs an APDU session: reads `input` to its end, answers on `output`, reports bad lines
/// on `errors` (see the module documentation).
///
/// # Errors
/// Reading the input or writing the output failed.
fn session(
    simulator: &mut dyn Simulator,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    errors: &mut dyn Write,
) -> Result<(), String> {
    let mut raw = Vec::new();
    let mut number = 0u64;
    loop {
        let overlong = next_line(input, &mut raw).map_err(|e| format!("reading stdin: {e}"))?;
        let Some(overlong) = overlong else {
            return Ok(());
        };
        number += 1;
        let line = if overlong {
            Line::Bad(format!("the line is longer than {MAX_LINE} bytes"))
        } else {
            classify(raw.strip_suffix(b"\r").unwrap_or(&raw))
        };
        let problem = match line {
            Line::Skip => None,
            Line::Bad(problem) => Some(problem),
            Line::Control(words) => {
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                simulator.control(&words).err()
            }
            Line::Apdu(capdu) => {
                let response = simulator.process(&capdu);
                writeln!(output, "{}", hex::encode_upper(response))
                    .and_then(|()| output.flush())
                    .map_err(|e| format!("writing stdout: {e}"))?;
                None
            }
        };
        if let Some(problem) = problem {
            // A lost diagnostic must not end the session.
            let _ignored = writeln!(errors, "error: line {number}: {problem}");
        }
    }
}

/// Runs a session over the process's stdin, stdout and stderr.
fn stdio_session(simulator: &mut dyn Simulator) -> Result<(), String> {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let stdout = io::stdout();
    let mut output = stdout.lock();
    let stderr = io::stderr();
    let mut errors = stderr.lock();
    session(simulator, &mut input, &mut output, &mut errors)
}

/// Decodes the hex value of option `arg`: either case, whitespace ignored, exactly `N`
/// bytes; `what` names the value in the error.
fn hex_option<const N: usize>(arg: &str, what: &str, text: &str) -> Result<[u8; N], String> {
    let bytes = decode_hex_line(text).map_err(|e| format!("{arg}: {e}"))?;
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{arg}: {what} is {N} bytes, not {}", bytes.len()))
}

/// A one-byte hex option (`--key-index 01`).
fn hex_byte(arg: &str, text: &str) -> Result<u8, String> {
    let [byte] = hex_option::<1>(arg, "the value", text)?;
    Ok(byte)
}

/// A 16-byte DES key from a hex option; the decoded bytes are wiped.
fn des_key_option(arg: &str, text: &str) -> Result<pboc_sam::DesKey, String> {
    let mut bytes = decode_hex_line(text).map_err(|e| format!("{arg}: {e}"))?;
    let key = if bytes.len() == 16 {
        pboc_sam::DesKey::from_bytes(&bytes).map_err(|e| format!("{arg}: {e}"))
    } else {
        Err(format!(
            "{arg}: a card key is 16 bytes, not {}",
            bytes.len()
        ))
    };
    wipe(&mut bytes);
    key
}

/// Overwrites bytes that may be key material (best effort).
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(bytes);
}

/// Reads a text file, naming it in the error.
fn read_text(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Whether `path` names a TOML file (by its extension).
fn is_toml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("toml"))
}

/// Replaces `path` with `text` atomically: a temporary file next to it, flushed to disk,
/// then renamed over it.
fn replace_file(path: &Path, text: &str) -> Result<(), String> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    let temp: PathBuf = path.with_file_name(name);
    let written = fs::File::create(&temp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&temp, path));
    written.map_err(|e| {
        let _ignored = fs::remove_file(&temp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// The operating system's random source (`/dev/urandom`) for card challenges.
struct OsRandom {
    file: Mutex<fs::File>,
}

impl OsRandom {
    /// Opens `/dev/urandom` and reads it once, so a broken source fails at start.
    fn open() -> Result<Self, String> {
        let mut file =
            fs::File::open("/dev/urandom").map_err(|e| format!("cannot open /dev/urandom: {e}"))?;
        let mut probe = [0u8; 4];
        file.read_exact(&mut probe)
            .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }
}

impl RandomSource for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = file.read_exact(buf) {
            // A card challenge from a broken source would be predictable: stop.
            eprintln!("fatal: reading /dev/urandom failed: {e}");
            std::process::abort();
        }
    }
}

/// Serde for byte strings and arrays as hex text (either case on input, upper case out).
mod hex_serde {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the bytes as upper-case hex.
    pub(super) fn serialize<S: Serializer, T: AsRef<[u8]>>(
        value: &T,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(value.as_ref()))
    }

    /// Reads hex text into bytes of the target's length.
    pub(super) fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Vec<u8>>>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        let bytes =
            hex::decode(text.as_bytes()).map_err(|e| D::Error::custom(format!("hex: {e}")))?;
        let found = bytes.len();
        T::try_from(bytes).map_err(|_| D::Error::custom(format!("wrong length: {found} bytes")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Echoes each C-APDU reversed, with `9000`; the C-APDU `00` "tears" (no bytes).
    struct Echo {
        controls: Vec<String>,
    }

    impl Simulator for Echo {
        fn process(&mut self, capdu: &[u8]) -> Vec<u8> {
            if capdu == [0x00] {
                return Vec::new();
            }
            let mut out: Vec<u8> = capdu.iter().rev().copied().collect();
            out.extend_from_slice(&[0x90, 0x00]);
            out
        }

        fn control(&mut self, words: &[&str]) -> Result<(), String> {
            match words {
                ["ok", rest @ ..] => {
                    self.controls.push(rest.join(" "));
                    Ok(())
                }
                _ => Err(format!("unknown control {words:?}")),
            }
        }
    }

    fn run_session(input: &[u8]) -> (String, String, Vec<String>) {
        let mut sim = Echo {
            controls: Vec::new(),
        };
        let mut out = Vec::new();
        let mut err = Vec::new();
        session(&mut sim, &mut &input[..], &mut out, &mut err).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
            sim.controls,
        )
    }

    #[test]
    fn lines_become_answers_comments_and_blanks_are_skipped() {
        let (out, err, controls) =
            run_session(b"# a comment\n\n  0a 0B\t0c \n   # indented comment\r\n!ok x y\nff");
        assert_eq!(out, "0C0B0A9000\nFF9000\n");
        assert_eq!(err, "");
        assert_eq!(controls, vec!["x y".to_string()]);
    }

    #[test]
    fn bad_lines_are_reported_by_number_and_the_session_goes_on() {
        let (out, err, _) = run_session(b"abc\n0102\nzz\n!nope\n\xff\xfe\n03\n");
        assert_eq!(out, "02019000\n039000\n");
        assert_eq!(
            err,
            "error: line 1: 3 hex digits is an odd number\n\
             error: line 3: character 'z' at column 1 is not a hex digit\n\
             error: line 4: unknown control [\"nope\"]\n\
             error: line 5: the line is not UTF-8 text\n"
        );
    }

    #[test]
    fn an_overlong_line_is_dropped_whole() {
        let mut input = vec![b'a'; MAX_LINE + 2];
        input.extend_from_slice(b"\n0102\n");
        let (out, err, _) = run_session(&input);
        assert_eq!(out, "02019000\n");
        assert_eq!(
            err,
            format!("error: line 1: the line is longer than {MAX_LINE} bytes\n")
        );
        // Exactly MAX_LINE bytes is still a line (and here an even run of hex digits).
        let mut input = vec![b'a'; MAX_LINE];
        input.push(b'\n');
        let (out, err, _) = run_session(&input);
        assert_eq!(err, "");
        assert_eq!(out.len(), MAX_LINE + 4 + 1);
    }

    #[test]
    fn an_empty_answer_is_an_empty_line() {
        let (out, err, _) = run_session(b"00\n0102\n");
        assert_eq!(out, "\n02019000\n");
        assert_eq!(err, "");
    }

    #[test]
    fn hex_options_check_their_length() {
        assert_eq!(
            hex_option::<4>("--random", "the random", "11 22 33 44").unwrap(),
            [0x11, 0x22, 0x33, 0x44]
        );
        assert_eq!(
            hex_option::<4>("--random", "the random", "112233").unwrap_err(),
            "--random: the random is 4 bytes, not 3"
        );
        assert_eq!(
            hex_byte("--key-index", "1").unwrap_err(),
            "--key-index: 1 hex digits is an odd number"
        );
        assert_eq!(
            des_key_option("--dlk", "0011").unwrap_err(),
            "--dlk: a card key is 16 bytes, not 2"
        );
        assert!(des_key_option("--dlk", "11223344556677888877665544332211").is_ok());
    }
}
