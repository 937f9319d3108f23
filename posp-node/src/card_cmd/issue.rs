//! `posp-node card issue`: personalize one card from an issuer profile, quality-check it and
//! write its image.
//!
//! The profile is an [`IssuerProfile`]: JSON, or TOML when the file name ends in `.toml`
//! (the same fields; see `pboc_card::personalize`). The serial comes from
//!
//! - `--serial HEX` (8 bytes): exactly this serial; or
//! - a serial allocator ([`SerialAllocator`]: issuer prefix, then a counter). With
//!   `--serial-state FILE` it is read from FILE (JSON `{"prefix": "31", "next": 7}`) and
//!   written back advanced; when FILE does not exist yet, a new allocator starts from
//!   `--serial-prefix` (hex, 0..=7 bytes, default none) and `--serial-start` (default 1).
//!   Without `--serial-state` that new allocator is used once and forgotten.
//!
//! The image (JSON, with the card keys and PIN in clear: a personalization artifact) goes to
//! `--out FILE`, which must not exist yet (a card image is never overwritten), or to stdout.
//! The allocator state is saved only after the image was written, and it is saved even when
//! the quality check failed: a serial that appeared in an image is never handed out again.
//!
//! The quality-check report has one line per step, `PASS step` or `FAIL step: reason`, on
//! stdout — or on stderr when stdout carries the image. Exit status: 0 when every step
//! passed, 1 when the quality check failed (the image is still written, for diagnosis), 2
//! on bad input (unreadable or inconsistent profile, bad serial options, exhausted
//! allocator, an existing `--out`) with one `error: ...` line on stderr and nothing written.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use pboc_card::personalize::{StepOutcome, personalize_next};
use pboc_card::{IssuerProfile, QualityReport, SerialAllocator, quality_check};

use super::{decode_hex_line, hex_option, is_toml, read_text, replace_file};

/// Arguments of `card issue`.
#[derive(Args)]
pub struct IssueArgs {
    /// The issuer profile (JSON, or TOML by extension).
    #[arg(long, value_name = "FILE")]
    profile: PathBuf,
    /// Write the card image here (a new file); default stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The serial allocator's state, read and written back advanced.
    #[arg(long, value_name = "FILE", conflicts_with = "serial")]
    serial_state: Option<PathBuf>,
    /// Issue exactly this application serial (8 bytes, hex).
    #[arg(long, value_name = "HEX", conflicts_with_all = ["serial_prefix", "serial_start"])]
    serial: Option<String>,
    /// Issuer prefix of a new serial allocator (0..=7 bytes, hex).
    #[arg(long, value_name = "HEX")]
    serial_prefix: Option<String>,
    /// First counter value of a new serial allocator.
    #[arg(long, value_name = "N")]
    serial_start: Option<u64>,
}

/// Parses an issuer profile, JSON or (for a `.toml` name) TOML, and validates it.
fn load_profile(path: &Path) -> Result<IssuerProfile, String> {
    let text = read_text(path)?;
    let parsed = if is_toml(path) {
        toml::from_str::<IssuerProfile>(&text).map_err(|e| e.to_string())
    } else {
        IssuerProfile::from_json(&text).map_err(|e| e.to_string())
    };
    let profile = parsed.map_err(|e| format!("{}: {e}", path.display()))?;
    profile
        .validate()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(profile)
}

/// The allocator to take the serial from (see the module documentation).
fn allocator_from(args: &IssueArgs) -> Result<SerialAllocator, String> {
    if let Some(text) = &args.serial {
        let serial = hex_option::<8>("--serial", "the application serial", text)?;
        // A full-length prefix with counter 0 hands out exactly this serial... but a prefix
        // is at most 7 bytes: the last byte is the counter.
        let (prefix, last) = serial.split_at(7);
        let next = last.first().copied().map(u64::from).unwrap_or_default();
        return SerialAllocator::new(prefix, next).map_err(|e| e.to_string());
    }
    let fresh = || -> Result<SerialAllocator, String> {
        let prefix = match &args.serial_prefix {
            Some(text) => decode_hex_line(text).map_err(|e| format!("--serial-prefix: {e}"))?,
            None => Vec::new(),
        };
        SerialAllocator::new(&prefix, args.serial_start.unwrap_or(1))
            .map_err(|e| format!("--serial-prefix: {e}"))
    };
    let Some(path) = &args.serial_state else {
        return fresh();
    };
    match fs::read_to_string(path) {
        Ok(text) => {
            if args.serial_prefix.is_some() || args.serial_start.is_some() {
                return Err(format!(
                    "{} already exists: --serial-prefix and --serial-start only start a new \
                     serial state",
                    path.display()
                ));
            }
            let state: SerialAllocator = serde_json::from_str(&text)
                .map_err(|e| format!("serial state {}: {e}", path.display()))?;
            // Checks the prefix length the file may have wrong.
            SerialAllocator::new(&state.prefix, state.next)
                .map_err(|e| format!("serial state {}: {e}", path.display()))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => fresh(),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The report, one line per step.
fn report_lines(report: &QualityReport) -> String {
    let mut out = String::new();
    for step in &report.steps {
        match &step.outcome {
            StepOutcome::Pass => out.push_str(&format!("PASS {}\n", step.name)),
            StepOutcome::Fail(reason) => {
                out.push_str(&format!("FAIL {}: {reason}\n", step.name));
            }
        }
    }
    out
}

/// Writes `text` to a new file at `path`; an existing file is an error.
fn write_new(path: &Path, text: &str) -> Result<(), String> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => format!(
                "{} already exists; a card image is never overwritten",
                path.display()
            ),
            _ => format!("cannot create {}: {e}", path.display()),
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes `text` to a standard stream, naming it in the error.
fn emit(stream: &mut dyn Write, text: &str, name: &str) -> Result<(), String> {
    stream
        .write_all(text.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| format!("writing {name}: {e}"))
}

/// Runs `card issue`.
pub fn run(args: &IssueArgs) -> Result<ExitCode, String> {
    let profile = load_profile(&args.profile)?;
    let mut serials = allocator_from(args)?;
    let image = personalize_next(&profile, &mut serials).map_err(|e| e.to_string())?;
    let report = quality_check(&image, &profile);
    let json = image.to_json().map_err(|e| e.to_string())?;
    let lines = report_lines(&report);
    let save_state = |serials: &SerialAllocator| -> Result<(), String> {
        match &args.serial_state {
            Some(state) => {
                let text = serde_json::to_string_pretty(serials).map_err(|e| e.to_string())?;
                replace_file(state, &format!("{text}\n"))
            }
            None => Ok(()),
        }
    };
    match &args.out {
        Some(path) => {
            write_new(path, &format!("{json}\n"))?;
            save_state(&serials)?;
            emit(&mut std::io::stdout().lock(), &lines, "stdout")?;
        }
        None => {
            emit(
                &mut std::io::stdout().lock(),
                &format!("{json}\n"),
                "stdout",
            )?;
            save_state(&serials)?;
            emit(&mut std::io::stderr().lock(), &lines, "stderr")?;
        }
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
