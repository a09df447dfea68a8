//! The SQLite schema of the local runtime, and opening a data dir written by another build.

use super::sql;
use crate::ports::StoreError;
use rusqlite::Connection;

/// Bumped whenever `SCHEMA` changes shape; kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 5;

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
    doc       TEXT NOT NULL,
    -- (v4) when it was sent and its case, for the console's today's SMS and case story.
    at_ms     INTEGER,
    case_id   TEXT
);
-- (v5) Every webhook accepted, as received (its route, occurred_at and raw envelope), written
-- in the commit that records its delivery: `followup-local export` writes them out for a replay.
CREATE TABLE IF NOT EXISTS inputs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT UNIQUE NOT NULL,
    route       TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS command_outbox (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    effect_id TEXT UNIQUE NOT NULL,
    doc       TEXT NOT NULL
);
-- (v4) The console's read model (shared/src/console.rs), written in the commit of each
-- snapshot: one row per case, its pending SLA and deadline timers, the SLA breaches and the SMS
-- the customer protection stopped. Every console question is a range on one of these indexes.
CREATE TABLE IF NOT EXISTS console_cases (
    case_id     TEXT PRIMARY KEY,
    stream_key  TEXT NOT NULL,
    playbook    TEXT NOT NULL,
    state       TEXT NOT NULL,
    status      TEXT NOT NULL,
    priority    TEXT NOT NULL,
    area        TEXT NOT NULL,
    grp         TEXT NOT NULL,
    customer    TEXT NOT NULL,
    opened_ms   INTEGER NOT NULL,
    -- The call task out and unreported (NULL: none), for the console's due-now page.
    task_due_ms INTEGER
);
CREATE INDEX IF NOT EXISTS console_cases_task ON console_cases (task_due_ms) WHERE task_due_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS console_cases_opened ON console_cases (opened_ms);
CREATE INDEX IF NOT EXISTS console_cases_playbook ON console_cases (playbook, state, opened_ms);
CREATE INDEX IF NOT EXISTS console_cases_state ON console_cases (state, opened_ms);
CREATE INDEX IF NOT EXISTS console_cases_status ON console_cases (status, opened_ms);
CREATE INDEX IF NOT EXISTS console_cases_area ON console_cases (area, opened_ms);
-- Pending SLA / deadline timers; a snapshot's rows are replaced at each of its commits.
CREATE TABLE IF NOT EXISTS console_deadlines (
    stream_key TEXT NOT NULL,
    case_id    TEXT NOT NULL,  -- '' for a subject's own timer
    kind       TEXT NOT NULL,
    step       INTEGER NOT NULL,
    subject    TEXT,
    due_ms     INTEGER NOT NULL,
    PRIMARY KEY (stream_key, case_id, kind, step)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS console_deadlines_due ON console_deadlines (due_ms);
CREATE TABLE IF NOT EXISTS console_breaches (
    case_id TEXT NOT NULL,
    line    INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    at_ms   INTEGER NOT NULL,
    action  TEXT NOT NULL,
    PRIMARY KEY (case_id, line)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS console_breaches_at ON console_breaches (at_ms);
CREATE TABLE IF NOT EXISTS console_sms_stops (
    case_id  TEXT NOT NULL,
    line     INTEGER NOT NULL,
    at_ms    INTEGER NOT NULL,
    stop     TEXT NOT NULL,
    template TEXT NOT NULL,
    detail   TEXT NOT NULL,
    PRIMARY KEY (case_id, line)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS console_sms_stops_at ON console_sms_stops (at_ms);
";

/// Indexes on columns a version-3 data dir gains by `ALTER TABLE`: created once they exist.
const OUTBOX_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS sms_outbox_at ON sms_outbox (at_ms);
CREATE INDEX IF NOT EXISTS sms_outbox_case ON sms_outbox (case_id);
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
    // A version 4 data dir gains the (empty) `inputs` table from `SCHEMA`: the inputs it accepted
    // before were never kept, so an export of it starts at the upgrade.
    // Version 2 and 3 data dirs: the outbox gains its console columns and the console's read
    // model is built once from every stored snapshot (a single pass at start-up, never again).
    if (2..4).contains(&found) {
        let has_at: bool = tx
            .prepare("SELECT 1 FROM pragma_table_info('sms_outbox') WHERE name = 'at_ms'")
            .and_then(|mut s| s.exists([]))
            .map_err(sql("reading the columns of sms_outbox"))?;
        if !has_at {
            tx.execute_batch("ALTER TABLE sms_outbox ADD COLUMN at_ms INTEGER; ALTER TABLE sms_outbox ADD COLUMN case_id TEXT;")
                .map_err(sql("adding the console columns to sms_outbox"))?;
        }
        super::console::backfill(&tx)?;
    }
    tx.execute_batch(OUTBOX_INDEXES).map_err(sql("creating the outbox indexes"))?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(sql("writing user_version"))?;
    tx.commit().map_err(sql("committing the schema"))
}
