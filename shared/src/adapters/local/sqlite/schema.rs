//! The SQLite schema of the local runtime, and opening a data dir written by another build.

use super::sql;
use crate::ports::StoreError;
use rusqlite::Connection;

/// Bumped whenever `SCHEMA` changes shape; kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS streams (
    key         TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    doc         TEXT NOT NULL,
    -- The earliest pending timer of the snapshot, for the timer sweep (NULL: none).
    next_due_ms INTEGER
);
CREATE INDEX IF NOT EXISTS streams_due ON streams (next_due_ms) WHERE next_due_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS subject_index (
    subject    TEXT PRIMARY KEY,
    stream_key TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id          TEXT PRIMARY KEY,
    body_hash   TEXT NOT NULL,
    case_id     TEXT,
    accepted_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS effects (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    id   TEXT UNIQUE NOT NULL,
    doc  TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0
);
-- Done effects stay as the audit trail; the re-driver only ever scans the pending few.
CREATE INDEX IF NOT EXISTS effects_pending ON effects (seq) WHERE done = 0;
CREATE TABLE IF NOT EXISTS timers (
    name      TEXT PRIMARY KEY,
    seq       INTEGER NOT NULL,
    due_at_ms INTEGER NOT NULL,
    doc       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timers_due ON timers (due_at_ms, seq);
-- `place` takes MAX(seq) + 1: without this index every placement reads the whole table.
CREATE INDEX IF NOT EXISTS timers_seq ON timers (seq);
-- SPEC §4 (v3) the per-number daily SMS cap, written in the commit of the decision that sends.
CREATE TABLE IF NOT EXISTS sms_daily (
    phone TEXT NOT NULL,
    day   TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (phone, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sms_outbox (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    effect_id TEXT UNIQUE NOT NULL,
    doc       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS command_outbox (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    effect_id TEXT UNIQUE NOT NULL,
    doc       TEXT NOT NULL
);
";

/// Creates what is missing; refuses a database written by a newer build rather than guess at it.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql("reading user_version"))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!("the database has schema version {found}; this build knows up to {SCHEMA_VERSION}")));
    }
    if found == 1 {
        return Err(StoreError::Unavailable(
            "the data dir was written by an earlier version whose case format is gone; start on a new FOLLOWUP_DATA_DIR (or delete this one)"
                .into(),
        ));
    }
    let tx = conn.transaction().map_err(sql("beginning the schema migration"))?;
    tx.execute_batch(SCHEMA).map_err(sql("creating the schema"))?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(sql("writing user_version"))?;
    tx.commit().map_err(sql("committing the schema"))
}
