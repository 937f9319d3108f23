//! `posp-node journal`: look transactions up in a journal database.
//!
//! The database is opened read-only (it is never created or changed, so this is safe
//! against a running node). Output is one line per entry in aligned columns; amounts are
//! printed in yuan with two decimals, PANs only ever masked (the journal holds nothing
//! else). A missing or unusable database exits with status 2 and one `error: ...` line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use posp_node::store::{EntryFilter, JournalEntry, SafEntry, SqliteReader, TxnState};

/// The `journal` subcommands.
#[derive(Subcommand)]
pub enum JournalCommand {
    /// Print matching journal entries, one line each, oldest first.
    Show(ShowArgs),
    /// Print the store-and-forward queue depths and the exception queue with reasons.
    Saf(SafArgs),
    /// Print the link events: late, unmatched and untrusted responses from the center.
    Events(EventsArgs),
}

/// Arguments of `journal events`.
#[derive(Args)]
pub struct EventsArgs {
    /// The journal database file.
    #[arg(long)]
    db: PathBuf,
    /// The newest this many events, oldest first.
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

/// Arguments of `journal show`. Every filter given must match.
#[derive(Args)]
pub struct ShowArgs {
    /// The journal database file.
    #[arg(long)]
    db: PathBuf,
    /// Only entries of this terminal id (field 41).
    #[arg(long)]
    terminal: Option<String>,
    /// Only entries with this terminal STAN (field 11).
    #[arg(long)]
    stan: Option<u32>,
    /// Only entries with this retrieval reference number (field 37).
    #[arg(long)]
    rrn: Option<String>,
    /// Only entries with this local date, MMDD (field 13).
    #[arg(long, value_parser = parse_date)]
    date: Option<String>,
    /// Only entries in this state (pending, sent, approved, declined, timed-out,
    /// reversal-queued, reversed, failed).
    #[arg(long)]
    state: Option<TxnState>,
    /// At most this many entries: the newest that match.
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

/// Arguments of `journal saf`.
#[derive(Args)]
pub struct SafArgs {
    /// The journal database file.
    #[arg(long)]
    db: PathBuf,
    /// At most this many exception entries, oldest first.
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

/// Runs a `journal` subcommand: prints the result on stdout, or one `error: ...` line on
/// stderr and exits with status 2.
pub fn run(cmd: JournalCommand) -> ExitCode {
    let result = match cmd {
        JournalCommand::Show(args) => show(&args),
        JournalCommand::Saf(args) => saf(&args),
        JournalCommand::Events(args) => events(&args),
    };
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Parses `--date`: a valid `MMDD`.
fn parse_date(s: &str) -> Result<String, String> {
    posp_node::store::journal::check_local_date(s)
        .map(|()| s.to_owned())
        .map_err(|_| format!("{s:?} is not a date MMDD"))
}

/// Opens an existing journal database read-only.
fn open(db: &Path) -> Result<SqliteReader, String> {
    if !db.is_file() {
        return Err(format!("journal database {} does not exist", db.display()));
    }
    SqliteReader::open(db, 1, Duration::from_secs(5)).map_err(|e| e.to_string())
}

/// Runs `journal show`.
fn show(args: &ShowArgs) -> Result<String, String> {
    let reader = open(&args.db)?;
    let entries = reader
        .find(&EntryFilter {
            terminal_id: args.terminal.clone(),
            stan: args.stan,
            rrn: args.rrn.clone(),
            local_date: args.date.clone(),
            state: args.state,
            ..EntryFilter::all(args.limit)
        })
        .map_err(|e| e.to_string())?;
    Ok(entries_table(&entries))
}

/// Runs `journal saf`.
fn saf(args: &SafArgs) -> Result<String, String> {
    let reader = open(&args.db)?;
    let depths = reader.saf_depths().map_err(|e| e.to_string())?;
    let exceptions = reader
        .saf_exceptions(args.limit)
        .map_err(|e| e.to_string())?;
    let mut out = if depths.is_empty() {
        "no SAF entries\n".to_owned()
    } else {
        table(
            &[
                ("DESTINATION", Align::Left),
                ("QUEUED", Align::Right),
                ("EXCEPTION", Align::Right),
            ],
            depths
                .iter()
                .map(|d| {
                    vec![
                        d.destination.clone(),
                        d.queued.to_string(),
                        d.exception.to_string(),
                    ]
                })
                .collect(),
        )
    };
    out.push('\n');
    if exceptions.is_empty() {
        out.push_str("no entries in the exception queue\n");
    } else {
        out.push_str(&exceptions_table(&exceptions));
    }
    Ok(out)
}

/// Runs `journal events`.
fn events(args: &EventsArgs) -> Result<String, String> {
    let reader = open(&args.db)?;
    let events = reader.link_events(args.limit).map_err(|e| e.to_string())?;
    if events.is_empty() {
        return Ok("no link events\n".to_owned());
    }
    Ok(table(
        &[
            ("ID", Align::Right),
            ("AT_MS", Align::Right),
            ("LINK", Align::Left),
            ("EVENT", Align::Left),
            ("ENTRY", Align::Right),
            ("RC", Align::Left),
            ("KEY", Align::Left),
        ],
        events
            .iter()
            .map(|e| {
                let ev = &e.event;
                vec![
                    e.id.to_string(),
                    ev.at.to_string(),
                    ev.link.clone(),
                    ev.kind.to_string(),
                    ev.journal_id.map(|j| j.to_string()).unwrap_or_default(),
                    ev.response_code.clone().unwrap_or_default(),
                    ev.match_key.clone().unwrap_or_default(),
                ]
            })
            .collect(),
    ))
}

/// Formats entries as `journal show` prints them.
fn entries_table(entries: &[JournalEntry]) -> String {
    table(
        &[
            ("ID", Align::Right),
            ("TIME", Align::Left),
            ("TERMINAL", Align::Left),
            ("BATCH", Align::Left),
            ("STAN", Align::Left),
            ("KIND", Align::Left),
            ("AMOUNT", Align::Right),
            ("PAN", Align::Left),
            ("STATE", Align::Left),
            ("RC", Align::Left),
            ("RRN", Align::Left),
        ],
        entries
            .iter()
            .map(|e| {
                vec![
                    e.id.to_string(),
                    local_time(&e.local_date, &e.local_time),
                    e.terminal_id.clone(),
                    format!("{:06}", e.batch),
                    format!("{:06}", e.stan),
                    e.kind.to_string(),
                    yuan(e.amount),
                    or_dash(e.masked_pan.as_deref()),
                    e.state.to_string(),
                    or_dash(e.response_code.as_deref()),
                    or_dash(e.rrn.as_deref()),
                ]
            })
            .collect(),
    )
}

/// Formats exception entries as `journal saf` prints them.
fn exceptions_table(entries: &[SafEntry]) -> String {
    table(
        &[
            ("ID", Align::Right),
            ("DESTINATION", Align::Left),
            ("MTI", Align::Left),
            ("SENDS", Align::Right),
            ("ATTEMPTS", Align::Right),
            ("LAST RC", Align::Left),
            ("JOURNAL", Align::Right),
            ("REASON", Align::Left),
        ],
        entries
            .iter()
            .map(|e| {
                vec![
                    e.id.to_string(),
                    e.destination.clone(),
                    e.mti.clone(),
                    e.sends.to_string(),
                    e.attempts.to_string(),
                    or_dash(e.last_response.as_deref()),
                    e.journal_id
                        .map_or_else(|| "-".to_owned(), |id| id.to_string()),
                    or_dash(e.reason.as_deref()),
                ]
            })
            .collect(),
    )
}

/// `MMDD` + `hhmmss` as `MM-DD hh:mm:ss` (the terminal's local time).
fn local_time(date: &str, time: &str) -> String {
    match (
        date.get(..2),
        date.get(2..4),
        time.get(..2),
        time.get(2..4),
        time.get(4..6),
    ) {
        (Some(mo), Some(d), Some(h), Some(mi), Some(s)) => format!("{mo}-{d} {h}:{mi}:{s}"),
        _ => format!("{date} {time}"),
    }
}

/// Fen as yuan with two decimals.
fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// The value, or `-` when there is none.
fn or_dash(s: Option<&str>) -> String {
    s.unwrap_or("-").to_owned()
}

/// How a column is aligned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// A header line and one line per row, columns padded to their widest cell and separated
/// by two spaces, trailing spaces trimmed.
fn table(columns: &[(&str, Align)], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = columns.iter().map(|(h, _)| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = columns.iter().map(|(h, _)| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(columns.iter().zip(&widths))
            .map(|(cell, ((_, align), width))| match align {
                Align::Left => format!("{cell:<width$}"),
                Align::Right => format!("{cell:>width$}"),
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_has_two_decimals() {
        assert_eq!(yuan(0), "0.00");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(123_456), "1234.56");
        assert_eq!(yuan(-250), "-2.50");
    }

    #[test]
    fn table_aligns_columns() {
        let out = table(
            &[("ID", Align::Right), ("NAME", Align::Left)],
            vec![
                vec!["7".into(), "a".into()],
                vec!["123".into(), "bcdef".into()],
            ],
        );
        assert_eq!(out, " ID  NAME\n  7  a\n123  bcdef\n");
    }

    #[test]
    fn local_time_is_readable() {
        assert_eq!(local_time("0611", "143005"), "06-11 14:30:05");
    }
}
