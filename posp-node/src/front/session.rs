//! The terminal registry (from the configuration) and the session table: the working keys
//! each terminal received at its last sign-in, as HSM key references.
//!
//! Sessions live in memory: after a restart every terminal signs in again (it gets `99`
//! until it does).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use pboc_sam::KeyRef;

/// A registered terminal.
#[derive(Debug, Clone)]
pub struct Terminal {
    /// Terminal id (field 41).
    pub id: String,
    /// Merchant id (field 42) it must send.
    pub merchant_id: String,
    /// Its master key under the LMK.
    pub tmk: KeyRef,
}

/// A signed-in terminal's working keys.
#[derive(Debug, Clone)]
pub struct Session {
    /// PIN key (PIK), a TPK: single length after a sign-in with 60.3 = 001, double after
    /// 003 or 004.
    pub tpk: KeyRef,
    /// MAC key (MAK), a single-length TAK.
    pub tak: KeyRef,
    /// Track data key (TDK), double length, after a sign-in with 60.3 = 004.
    pub tdk: Option<KeyRef>,
}

/// The session table, shared by every connection.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    /// The session of a terminal, if it is signed in.
    pub fn get(&self, terminal_id: &str) -> Option<Arc<Session>> {
        self.lock().get(terminal_id).cloned()
    }

    /// Stores the keys of a sign-in, replacing earlier ones.
    pub fn sign_in(&self, terminal_id: &str, session: Session) {
        self.lock()
            .insert(terminal_id.to_owned(), Arc::new(session));
    }

    /// Forgets a terminal's keys (sign-off); true if it was signed in.
    pub fn sign_off(&self, terminal_id: &str) -> bool {
        self.lock().remove(terminal_id).is_some()
    }

    /// How many terminals are signed in.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no terminal is signed in.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
