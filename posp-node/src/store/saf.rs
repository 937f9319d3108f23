//! Store and forward (SAF): the durable, per-destination queue of messages that must reach
//! an upstream host eventually (reversals, advices, confirmations), and its exception queue.
//!
//! # Semantics
//!
//! - Entries of one destination leave in the order they were queued. The **head** of a
//!   destination is its oldest entry still [`SafStatus::Queued`]; it stays the head, across
//!   crashes and restarts, until it is completed or moved to the exception queue. Nothing
//!   behind it is sent first.
//! - Every transmission is recorded with
//!   [`SafQueue::record_attempt`](super::SafQueue::record_attempt) or, when its response
//!   completes the entry, [`SafQueue::complete`](super::SafQueue::complete); each one is an
//!   event row (the second and later ones are repeats, sent with the repeat MTI when the
//!   entry asks for it).
//! - **Only a received response counts as an attempt.** A transmission without a response
//!   means the link does not work, not that the entry is bad; it is recorded but not counted.
//! - An entry whose counted attempts reach [`SafConfig::max_attempts`], or that is older
//!   than [`SafConfig::expiry`], moves to the exception queue
//!   ([`SafStatus::Exception`]) with the reason. Entries are never deleted.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use super::StoreError;

/// Limits of the SAF queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafConfig {
    /// Responses received without completing the entry after which it moves to the
    /// exception queue (the spec's "max retries": only responses count). At least 1.
    pub max_attempts: u32,
    /// Age (from `created_at`) after which a queued entry moves to the exception queue.
    #[serde(with = "humantime_serde")]
    pub expiry: Duration,
    /// Most entries queued (not done, not exception) per destination; enqueueing beyond it
    /// is refused with [`StoreError::SafFull`] so the caller stops taking new work instead
    /// of growing the queue without bound.
    pub max_queued: u32,
}

impl Default for SafConfig {
    fn default() -> SafConfig {
        SafConfig {
            max_attempts: 3,
            expiry: Duration::from_secs(24 * 3600),
            max_queued: 100_000,
        }
    }
}

impl SafConfig {
    /// Checks the limits.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.max_attempts == 0 {
            return Err(StoreError::Invalid {
                field: "saf.max_attempts",
                reason: "must be at least 1".to_owned(),
            });
        }
        if self.max_queued == 0 {
            return Err(StoreError::Invalid {
                field: "saf.max_queued",
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(())
    }

    /// The expiry in milliseconds, saturating.
    pub fn expiry_millis(&self) -> i64 {
        i64::try_from(self.expiry.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A message to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSafEntry {
    /// The upstream host it goes to (a link name from the config).
    pub destination: String,
    /// The journal entry it belongs to (the transaction a reversal reverses).
    pub journal_id: Option<i64>,
    /// When it was queued, unix milliseconds (the caller's clock); expiry counts from here.
    pub created_at: i64,
    /// The MTI of the first transmission (`0400`).
    pub mti: String,
    /// Whether transmissions after the first carry the repeat MTI (`0401`).
    pub repeat_mti: bool,
    /// The message, with card data masked or removed as for the journal, or in the form
    /// the sender re-signs before each transmission.
    pub message: Vec<u8>,
}

impl NewSafEntry {
    /// Checks the destination and MTI.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.destination.is_empty()
            || self.destination.len() > 64
            || !self.destination.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(StoreError::Invalid {
                field: "destination",
                reason: format!(
                    "{:?} is not 1 to 64 printable ASCII characters without spaces",
                    self.destination
                ),
            });
        }
        if self.mti.len() != 4 || !self.mti.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StoreError::Invalid {
                field: "mti",
                reason: format!("{:?} is not 4 digits", self.mti),
            });
        }
        Ok(())
    }
}

/// Where a SAF entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SafStatus {
    /// Waiting to be sent, or being retried.
    Queued,
    /// Acknowledged by the destination.
    Done,
    /// Exhausted or expired: in the exception queue for an operator.
    Exception,
}

impl SafStatus {
    /// The text stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            SafStatus::Queued => "QUEUED",
            SafStatus::Done => "DONE",
            SafStatus::Exception => "EXCEPTION",
        }
    }
}

impl fmt::Display for SafStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SafStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "QUEUED" => Ok(SafStatus::Queued),
            "DONE" => Ok(SafStatus::Done),
            "EXCEPTION" => Ok(SafStatus::Exception),
            _ => Err(StoreError::Invalid {
                field: "status",
                reason: format!("unknown SAF status {s:?}"),
            }),
        }
    }
}

/// A SAF entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafEntry {
    /// The store's id; order within a destination.
    pub id: i64,
    /// The upstream host.
    pub destination: String,
    /// The journal entry it belongs to.
    pub journal_id: Option<i64>,
    /// When it was queued, unix milliseconds.
    pub created_at: i64,
    /// When it last changed, unix milliseconds.
    pub updated_at: i64,
    /// The MTI of the first transmission.
    pub mti: String,
    /// Whether later transmissions carry the repeat MTI.
    pub repeat_mti: bool,
    /// The message.
    pub message: Vec<u8>,
    /// Where it is.
    pub status: SafStatus,
    /// Transmissions so far, with or without a response.
    pub sends: u32,
    /// Responses received so far (the counted attempts).
    pub attempts: u32,
    /// The last response code received.
    pub last_response: Option<String>,
    /// Why it is in the exception queue.
    pub reason: Option<String>,
}

impl SafEntry {
    /// The MTI for the next transmission: the original for the first, the repeat MTI
    /// (last digit + 1: `0400` -> `0401`, `0420` -> `0421`) afterwards when the entry asks
    /// for it.
    pub fn next_mti(&self) -> String {
        if self.repeat_mti && self.sends > 0 {
            repeat_mti(&self.mti)
        } else {
            self.mti.clone()
        }
    }
}

/// The repeat form of an MTI: an even last digit goes up by one (`0400` -> `0401`,
/// `0420` -> `0421`); an MTI that is already a repeat (odd last digit) is returned as is.
pub fn repeat_mti(mti: &str) -> String {
    let mut bytes = mti.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut()
        && last.is_ascii_digit()
        && (*last - b'0').is_multiple_of(2)
    {
        *last += 1;
    }
    String::from_utf8(bytes).unwrap_or_else(|_| mti.to_owned())
}

/// What [`SafQueue::record_attempt`](super::SafQueue::record_attempt) made of a transmission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// No response: not counted; the entry stays the head.
    NoResponse,
    /// A response that does not complete the entry was counted; retry later.
    Retry {
        /// Counted attempts so far.
        attempts: u32,
    },
    /// The entry exhausted its attempts or expired and is now in the exception queue.
    Exception {
        /// Why.
        reason: String,
    },
}

/// What happened to a SAF entry, one row per event, never deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SafEventKind {
    /// Queued.
    Enqueued,
    /// First transmission.
    Sent,
    /// A retransmission.
    Repeat,
    /// Acknowledged.
    Completed,
    /// Moved to the exception queue.
    Exception,
}

impl SafEventKind {
    /// The text stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            SafEventKind::Enqueued => "ENQUEUED",
            SafEventKind::Sent => "SENT",
            SafEventKind::Repeat => "REPEAT",
            SafEventKind::Completed => "COMPLETED",
            SafEventKind::Exception => "EXCEPTION",
        }
    }
}

impl FromStr for SafEventKind {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            SafEventKind::Enqueued,
            SafEventKind::Sent,
            SafEventKind::Repeat,
            SafEventKind::Completed,
            SafEventKind::Exception,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| StoreError::Invalid {
            field: "event",
            reason: format!("unknown SAF event {s:?}"),
        })
    }
}

/// One event of a SAF entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafEvent {
    /// The event's id.
    pub id: i64,
    /// The SAF entry.
    pub saf_id: i64,
    /// When, unix milliseconds (the caller's clock).
    pub at: i64,
    /// What happened.
    pub kind: SafEventKind,
    /// The transmission's number (1 for the first) for SENT and REPEAT.
    pub send_no: Option<u32>,
    /// The MTI the transmission carried.
    pub mti: Option<String>,
    /// The response code received, if any.
    pub response_code: Option<String>,
    /// The reason, for EXCEPTION.
    pub detail: Option<String>,
}

/// How many entries a destination has queued and in the exception queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafDepth {
    /// The destination.
    pub destination: String,
    /// Entries queued.
    pub queued: u64,
    /// Entries in the exception queue.
    pub exception: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_mti_bumps_even_last_digits_only() {
        assert_eq!(repeat_mti("0400"), "0401");
        assert_eq!(repeat_mti("0420"), "0421");
        assert_eq!(repeat_mti("0401"), "0401");
        assert_eq!(repeat_mti("0220"), "0221");
    }

    #[test]
    fn config_from_toml() {
        let cfg: SafConfig =
            toml::from_str("max_attempts = 5\nexpiry = \"2h\"\nmax_queued = 10\n").unwrap();
        assert_eq!(
            cfg,
            SafConfig {
                max_attempts: 5,
                expiry: Duration::from_secs(7200),
                max_queued: 10
            }
        );
        let err = toml::from_str::<SafConfig>("retries = 5\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `retries`"), "{err}");
        assert_eq!(
            SafConfig {
                max_attempts: 0,
                ..SafConfig::default()
            }
            .validate()
            .unwrap_err()
            .to_string(),
            "invalid saf.max_attempts: must be at least 1"
        );
    }
}
