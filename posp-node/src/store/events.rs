//! Link events: responses from the center that no request was waiting for, journaled so
//! that none is silently dropped (`hsm-and-posp.md`, "Matching").
//!
//! | event | what arrived | what the front end did |
//! |---|---|---|
//! | `LATE_APPROVAL` | an approval after its request timed out | nothing: the reversal stands |
//! | `LATE_DECLINE` | a decline after its request timed out | the entry is declined; a reversal already queued still goes |
//! | `UNMATCHED` | a response matching no request, pending or remembered | nothing |
//! | `BAD_MAC` | a late or unmatched response whose MAC does not verify | nothing: it is not trusted |

use std::fmt;
use std::future::Future;

use rusqlite::{Connection, params};

use super::StoreError;

/// What kind of link event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkEventKind {
    /// An approval after the request timed out.
    LateApproval,
    /// A decline after the request timed out.
    LateDecline,
    /// A response matching no request.
    Unmatched,
    /// A late or unmatched response whose MAC did not verify.
    BadMac,
}

impl LinkEventKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkEventKind::LateApproval => "LATE_APPROVAL",
            LinkEventKind::LateDecline => "LATE_DECLINE",
            LinkEventKind::Unmatched => "UNMATCHED",
            LinkEventKind::BadMac => "BAD_MAC",
        }
    }

    /// The kind of a stored name.
    pub fn parse(s: &str) -> Option<LinkEventKind> {
        Some(match s {
            "LATE_APPROVAL" => LinkEventKind::LateApproval,
            "LATE_DECLINE" => LinkEventKind::LateDecline,
            "UNMATCHED" => LinkEventKind::Unmatched,
            "BAD_MAC" => LinkEventKind::BadMac,
            _ => return None,
        })
    }
}

impl fmt::Display for LinkEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A link event to journal. `message` must already have its sensitive fields removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLinkEvent {
    /// Unix milliseconds.
    pub at: i64,
    /// The link's name.
    pub link: String,
    /// What happened.
    pub kind: LinkEventKind,
    /// The journal entry of the timed-out request it answers, when known.
    pub journal_id: Option<i64>,
    /// Its matching key, if it decoded.
    pub match_key: Option<String>,
    /// Its field 39, if any.
    pub response_code: Option<String>,
    /// The message, sensitive fields removed.
    pub message: Vec<u8>,
}

/// A journaled link event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    /// Row id.
    pub id: i64,
    /// The event as it was recorded.
    pub event: NewLinkEvent,
}

/// The journal of link events.
pub trait LinkEvents: Send + Sync {
    /// Journals an event (durable on return); returns its id.
    fn record_link_event(
        &self,
        event: NewLinkEvent,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// The newest `limit` events, oldest first.
    fn link_events(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<LinkEvent>, StoreError>> + Send;
}

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sql { op, source }
}

pub(crate) fn insert(conn: &Connection, e: &NewLinkEvent) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO link_event (at, link, event, journal_id, match_key, response_code, message) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            e.at,
            e.link,
            e.kind.as_str(),
            e.journal_id,
            e.match_key,
            e.response_code,
            e.message
        ])
    })
    .map_err(sql("record a link event"))?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn newest(conn: &Connection, limit: u32) -> Result<Vec<LinkEvent>, StoreError> {
    let op = "read link events";
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, at, link, event, journal_id, match_key, response_code, message FROM \
             (SELECT * FROM link_event ORDER BY id DESC LIMIT ?1) ORDER BY id",
        )
        .map_err(sql(op))?;
    let rows = stmt
        .query_map([limit], |r| {
            let kind: String = r.get(3)?;
            Ok(LinkEvent {
                id: r.get(0)?,
                event: NewLinkEvent {
                    at: r.get(1)?,
                    link: r.get(2)?,
                    kind: LinkEventKind::parse(&kind).ok_or_else(|| {
                        rusqlite::Error::FromSqlConversionFailure(
                            3,
                            rusqlite::types::Type::Text,
                            format!("unknown link event {kind:?}").into(),
                        )
                    })?,
                    journal_id: r.get(4)?,
                    match_key: r.get(5)?,
                    response_code: r.get(6)?,
                    message: r.get(7)?,
                },
            })
        })
        .map_err(sql(op))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql(op))
}
