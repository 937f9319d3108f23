//! The database schema and its migrations, applied on open.
//!
//! `schema_version` holds one row per applied version. Migration `n` (1-based) is the
//! file `schema_v{n}.sql`; a database newer than this binary is refused.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// The migrations in order: index 0 brings an empty database to version 1.
const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
];

/// The schema version this binary writes and reads.
pub(crate) const VERSION: i64 = 4;

/// Creates or upgrades the schema in one transaction.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let open = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(open)?;
    let current: Option<i64> = tx
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .map_err(open)?;
    let current = current.unwrap_or(0);
    if current > VERSION {
        return Err(StoreError::Schema {
            path: path.to_owned(),
            detail: format!(
                "schema version {current} is newer than this posp-node understands ({VERSION})"
            ),
        });
    }
    for (version, sql) in (1_i64..).zip(MIGRATIONS).skip_while(|(v, _)| *v <= current) {
        tx.execute_batch(sql).map_err(|source| StoreError::Schema {
            path: path.to_owned(),
            detail: format!("migration to version {version} failed: {source}"),
        })?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [version],
        )
        .map_err(open)?;
    }
    tx.commit().map_err(open)
}

/// Checks, without writing, that a database has exactly this binary's schema version.
pub(crate) fn check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let schema = |detail: String| StoreError::Schema {
        path: path.to_owned(),
        detail,
    };
    let version: Option<i64> = conn
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .map_err(|e| schema(format!("no schema version ({e})")))?;
    match version {
        Some(VERSION) => Ok(()),
        Some(v) if v > VERSION => Err(schema(format!(
            "schema version {v} is newer than this posp-node understands ({VERSION})"
        ))),
        Some(v) => Err(schema(format!(
            "schema version {v} is older than {VERSION}; open it once with the service to migrate"
        ))),
        None => Err(schema("no schema version recorded".to_owned())),
    }
}
