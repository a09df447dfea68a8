//! SQLite adapter for the local runtime: case store, durable timers and the SMS / command outboxes in one file.

use crate::domain::effects::{Command, Effect, Sms, TimerRef, TimerSpec};
use crate::domain::snapshot::{Snapshot, SubjectKey};
use crate::ports::{CaseStore, CommandBus, Commit, CommitError, Delivery, EffectError, PendingEffect, SmsSender, StoreError, Timers};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The file inside the data directory.
const DB_FILE: &str = "followup.db";

/// Bumped whenever `SCHEMA` changes shape; kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 3;

/// Another process (a `sqlite3` shell, a second server by mistake) may hold the write lock briefly.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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

/// The most writes one group commit takes.
const MAX_BATCH: usize = 256;

/// Every port of the local runtime over one SQLite connection.
///
/// Clones share the connections. Writes go to one writer thread that **group-commits**: it takes
/// every write waiting (up to [`MAX_BATCH`]), runs them one after the other in one `BEGIN
/// IMMEDIATE` transaction, commits once, with one fsync (`synchronous=FULL`), and only then
/// answers each write. So a 202 still means the delivery is on disk, and concurrent inputs share
/// the fsync. Each write is answered on its own: one refused on its condition (a stale version,
/// a delivery already recorded) checks before it writes, so it leaves nothing behind and its
/// batch goes on; one that fails after writing (a disk error, a panic) has the transaction rolled
/// back and the batch run again without it (see [`group_commit`]).
///
/// Reads go to connections of their own ([`READERS`] of them): under WAL they read the last
/// commit while the writer is in its next one, so a read never waits on an fsync. A point read
/// runs on the calling task when a reader is free (see `point`); every other read, and a point
/// read that would wait, runs on tokio's blocking pool, so a long read never stalls the HTTP
/// workers.
///
/// [`SqliteStore::performing_effects`] makes `commit` also perform the commit's effects (place
/// and cancel timers, append to the outboxes) in the same transaction: one durable write per
/// input instead of one per effect, no effect can be left pending by a crash, and none needs a
/// row in `effects`. Only for an engine whose timers and outboxes are this same store (the local
/// runtime).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    readers: Arc<[Arc<Mutex<Connection>>]>,
    next_reader: Arc<std::sync::atomic::AtomicUsize>,
    writes: std::sync::mpsc::Sender<Write>,
    /// Group commits made and writes they carried, since the store was opened.
    groups: Arc<GroupStats>,
    performs_effects: bool,
}

/// Read connections of a file store: one per core of the machine this runs on.
const READERS: usize = 2;

/// The WAL's size, in pages, past which a commit checkpoints (SQLite's own default).
const WAL_CHECKPOINT_PAGES: i64 = 1000;

/// How well writes shared their fsyncs.
#[derive(Debug, Default)]
pub struct GroupStats {
    pub commits: std::sync::atomic::AtomicU64,
    pub writes: std::sync::atomic::AtomicU64,
}

/// One write for the writer thread: `run` does it in the batch's transaction (again if the batch
/// is run again) and says how it went; `answer` is called once: after the batch is durable
/// (`None`: the write's own result goes back), or with the batch's failure (`Some`).
struct Write {
    run: Box<dyn FnMut(&Connection) -> Ran + Send>,
    answer: Box<dyn FnOnce(Option<StoreError>) + Send>,
}

/// How one write went inside its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    Done,
    /// Refused before writing anything: the batch goes on.
    Refused,
    /// Failed, possibly after writing: the batch is rolled back and run again without it.
    Failed,
}

/// Whether an error of a write means it left nothing behind: every write checks its conditions
/// before its first statement that writes, so a refusal on a condition never has.
trait WroteNothing {
    fn wrote_nothing(&self) -> bool;
}

impl WroteNothing for StoreError {
    fn wrote_nothing(&self) -> bool {
        false
    }
}

impl WroteNothing for CommitError {
    fn wrote_nothing(&self) -> bool {
        !matches!(self, CommitError::Store(_))
    }
}

/// The writer thread: one transaction and one fsync per batch of waiting writes.
fn writer(conn: Arc<Mutex<Connection>>, writes: std::sync::mpsc::Receiver<Write>, stats: Arc<GroupStats>) {
    use std::sync::atomic::Ordering::Relaxed;
    while let Ok(first) = writes.recv() {
        let mut batch = vec![first];
        batch.extend(writes.try_iter().take(MAX_BATCH - 1));
        stats.commits.fetch_add(1, Relaxed);
        stats.writes.fetch_add(batch.len() as u64, Relaxed);
        let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
        let answers = group_commit(&conn, batch);
        drop(conn);
        for (write, failed) in answers {
            (write.answer)(failed);
        }
    }
}

/// Runs the writes of `batch` one after the other in one transaction and commits it, returning
/// each write with its answer: `None` once committed (the write's own result goes back), or the
/// error that failed the transaction as a whole.
///
/// No write runs in a savepoint of its own (each would copy every page it touches into the
/// savepoint's journal). A write refused on its condition wrote nothing, so the batch simply
/// goes on. A write that fails otherwise, or panics, may have written part of itself: the
/// transaction is rolled back, that write is answered alone with its own failure, and the rest
/// of the batch runs again from the start (each `run` does its checks again, so a conflict
/// between batch-mates resolves as before).
fn group_commit(conn: &Connection, mut batch: Vec<Write>) -> Vec<(Write, Option<StoreError>)> {
    // IMMEDIATE takes the write lock before any check, so nothing slips in between check and write.
    // Statements from the cache: a batch parses no SQL of its own.
    let control = |statement: &str| exec(conn, statement, []).map(drop);
    let all_failed = |batch: Vec<Write>, e: StoreError| batch.into_iter().map(move |w| (w, Some(e.clone())));
    let mut answered = Vec::with_capacity(batch.len());
    loop {
        if let Err(e) = control("BEGIN IMMEDIATE") {
            answered.extend(all_failed(batch, sql("beginning a group commit")(e)));
            return answered;
        }
        // A panic in one write is that write's failure, not the batch's.
        let failed = batch.iter_mut().position(|write| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (write.run)(conn))).unwrap_or(Ran::Failed) == Ran::Failed
        });
        let Some(at) = failed else { break };
        if let Err(e) = control("ROLLBACK") {
            answered.extend(all_failed(batch, sql("rolling back a group commit")(e)));
            return answered;
        }
        // Its result holds its own error (none after a panic: the caller sees the store unavailable).
        answered.push((batch.remove(at), None));
        if batch.is_empty() {
            return answered;
        }
    }
    match control("COMMIT") {
        Ok(()) => answered.extend(batch.into_iter().map(|w| (w, None))),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            answered.extend(all_failed(batch, sql("committing a group")(e)));
        }
    }
    answered
}

impl SqliteStore {
    /// Opens (creating if needed) `<dir>/followup.db`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(format!("creating data dir {}: {e}", dir.display())))?;
        let path = dir.join(DB_FILE);
        let opening = format!("opening {}", path.display());
        let conn = Connection::open(&path).map_err(sql(&opening))?;
        let mut store = Self::init(conn)?;
        // Opened once the writer has created the schema and the WAL.
        let readers = (0..READERS)
            .map(|_| {
                let reader = Connection::open(&path).map_err(sql(&opening))?;
                reader.busy_timeout(BUSY_TIMEOUT).map_err(sql("setting busy_timeout"))?;
                reader.pragma_update(None, "query_only", true).map_err(sql("setting query_only"))?;
                Ok(Arc::new(Mutex::new(reader)))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        store.readers = readers.into();
        Ok(store)
    }

    /// A store that lives as long as this value and its clones (its reads share the writer's connection).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(sql("opening an in-memory database"))?;
        Self::init(conn)
    }

    /// This store's `commit` also performs the commit's effects, in the same transaction (see the type).
    pub fn performing_effects(self) -> Self {
        SqliteStore { performs_effects: true, ..self }
    }

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql("setting busy_timeout"))?;
        // WAL: readers never block the writer. An in-memory database answers "memory".
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(sql("setting journal_mode"))?;
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            tracing::warn!(journal_mode = %mode, "SQLite refused WAL; commits stay durable but readers may wait on writers");
        }
        // A 202 promises the delivery is stored: WAL's usual NORMAL may lose the last commits on power loss.
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql("setting synchronous"))?;
        // The writer copies the WAL back into the database after the commit that takes it past
        // this many pages, so the next transaction can start the WAL over, in place: it stays
        // about 4 MiB under any load and its pages stay allocated and cached. A checkpoint off the
        // writer, beside it, never caught up with a writer that never stops: the WAL grew without
        // bound (578 MB in 60,000 events), and each commit paid for new file blocks.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES).map_err(sql("setting wal_autocheckpoint"))?;
        conn.pragma_update(None, "foreign_keys", true).map_err(sql("setting foreign_keys"))?;
        // Statement journals and temporary tables stay in memory, never a temp file (when each
        // write of a group commit had a savepoint of its own, its journal spilled to one).
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(sql("setting temp_store"))?;
        migrate(&mut conn)?;
        let conn = Arc::new(Mutex::new(conn));
        let (writes, queue) = std::sync::mpsc::channel();
        let (shared, groups) = (Arc::clone(&conn), Arc::new(GroupStats::default()));
        let counted = Arc::clone(&groups);
        // Ends when the last clone of the store is dropped (the queue closes).
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer(shared, queue, counted))
            .map_err(|e| StoreError::Unavailable(format!("starting the writer thread: {e}")))?;
        let readers = Arc::new([conn]);
        Ok(SqliteStore { readers, next_reader: Arc::default(), writes, groups, performs_effects: false })
    }

    /// Group commits made so far and the writes they carried.
    pub fn group_stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.groups.commits.load(Relaxed), self.groups.writes.load(Relaxed))
    }

    /// Runs `f` in the next group commit and answers once that is durable: with `f`'s result, or
    /// with the batch's failure. An `Err` from `f` undoes only what `f` wrote.
    ///
    /// `f` may run more than once (when a batch-mate fails and the batch runs again), each time in
    /// a fresh transaction; it must check every condition it can refuse on before it writes.
    async fn write<T, E, F>(&self, mut f: F) -> Result<T, E>
    where
        F: FnMut(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + WroteNothing + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let result = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&result);
        let write = Write {
            run: Box::new(move |conn| {
                let r = f(conn);
                let ran = match &r {
                    Ok(_) => Ran::Done,
                    Err(e) if e.wrote_nothing() => Ran::Refused,
                    Err(_) => Ran::Failed,
                };
                *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
                ran
            }),
            answer: Box::new(move |failed| {
                let r = match failed {
                    Some(e) => Some(Err(E::from(e))),
                    None => result.lock().unwrap_or_else(PoisonError::into_inner).take(),
                };
                if let Some(r) = r {
                    let _ = tx.send(r);
                }
            }),
        };
        let stopped = || StoreError::Unavailable("the storage write did not complete (the writer stopped or the write panicked)".into());
        self.writes.send(write).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// A point read (one row by its key): a few µs from the page cache, less than handing it to
    /// the blocking pool costs. So it runs right here, on the calling task, when a read connection
    /// is free at once; otherwise it goes to the blocking pool like any other read.
    async fn point<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        for reader in self.readers.iter() {
            if let Ok(mut conn) = reader.try_lock() {
                return f(&mut conn);
            }
        }
        self.run(f).await
    }

    /// Runs the read `f` against the next read connection on the blocking pool.
    async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let next = self.next_reader.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let conn = Arc::clone(&self.readers[next % self.readers.len()]);
        tokio::task::spawn_blocking(move || {
            // A panic inside `f` drops its open transaction, which rolls back: the connection is still sound.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("storage task failed: {e}")))?
    }

    /// When the earliest timer falls due, so the runner can sleep until then.
    pub async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.run(|conn| {
            // The index is at millisecond precision: the exact earliest is among that millisecond's timers.
            let first: Vec<TimerSpec> =
                query_docs(conn, "SELECT doc FROM timers WHERE due_at_ms = (SELECT MIN(due_at_ms) FROM timers)", "reading the next timer")?;
            Ok(first.into_iter().map(|t| t.due_at).min())
        })
        .await
    }

    /// Up to `limit` timers due at or before `upto` (exactly), earliest first. Timers
    /// due within the same millisecond come in the order they were placed.
    pub async fn due_timers(&self, upto: DateTime<Utc>, limit: usize) -> Result<Vec<TimerSpec>, StoreError> {
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT doc FROM timers WHERE due_at_ms <= ?1 ORDER BY due_at_ms, seq")
                .map_err(sql("listing due timers"))?;
            let mut rows = stmt.query([upto.timestamp_millis()]).map_err(sql("listing due timers"))?;
            let mut due = Vec::new();
            while due.len() < limit {
                let Some(row) = rows.next().map_err(sql("listing due timers"))? else { break };
                let spec: TimerSpec = decode(&row.get::<_, String>(0).map_err(sql("listing due timers"))?, "timer")?;
                // The index is at millisecond precision; the document holds the exact instant.
                if spec.due_at <= upto {
                    due.push(spec);
                }
            }
            Ok(due)
        })
        .await
    }

    /// Forgets a timer once it has fired; absent is fine.
    pub async fn remove_timer(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.write(move |conn| delete_timer(conn, &name)).await
    }

    /// Every pending timer, in firing order.
    pub async fn timers(&self) -> Result<Vec<TimerSpec>, StoreError> {
        self.run(|conn| query_docs(conn, "SELECT doc FROM timers ORDER BY due_at_ms, seq", "listing timers")).await
    }

    /// Every SMS sent, in send order (`GET /local/sms`).
    pub async fn sms_outbox(&self) -> Result<Vec<Sms>, StoreError> {
        self.run(|conn| query_docs(conn, "SELECT doc FROM sms_outbox ORDER BY seq", "listing sms_outbox")).await
    }

    /// Every command published, in emit order (`GET /local/commands`).
    pub async fn commands(&self) -> Result<Vec<Command>, StoreError> {
        self.run(|conn| query_docs(conn, "SELECT doc FROM command_outbox ORDER BY seq", "listing command_outbox")).await
    }

    /// Appends to an outbox unless this effect was already delivered there, and marks the effect
    /// done in the same write: sent and done are one fact here.
    async fn append_outbox(&self, outbox: Outbox, effect_id: &str, doc: String) -> Result<(), EffectError> {
        let effect_id = effect_id.to_owned();
        self.write(move |conn| {
            append(conn, outbox, &effect_id, &doc)?;
            exec(conn, "UPDATE effects SET done = 1 WHERE id = ?1", [&effect_id])
                .map(drop)
                .map_err(sql(format_args!("marking effect {effect_id} done")))
        })
        .await
        .map_err(effect_error)
    }
}

impl CaseStore for SqliteStore {
    async fn locate(&self, subject: &str) -> Result<Option<SubjectKey>, StoreError> {
        let subject = subject.to_owned();
        self.point(move |conn| {
            let key: Option<String> = one(conn, "SELECT stream_key FROM subject_index WHERE subject = ?1", [&subject], |r| r.get(0))
                .map_err(sql("reading subject_index"))?;
            key.map(|k| {
                SubjectKey::parse(&k).ok_or_else(|| StoreError::Corrupt(format!("subject {subject:?} points at {k:?}, not a stream key")))
            })
            .transpose()
        })
        .await
    }

    async fn load(&self, key: &SubjectKey) -> Result<Option<Snapshot>, StoreError> {
        let key = key.to_string();
        self.point(move |conn| {
            let doc: Option<String> = one(conn, "SELECT doc FROM streams WHERE key = ?1", [&key], |r| r.get(0))
                .map_err(sql(format_args!("loading stream {key}")))?;
            doc.map(|d| decode(&d, format_args!("stream {key}"))).transpose()
        })
        .await
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let id = id.to_owned();
        self.point(move |conn| read_delivery(conn, &id)).await
    }

    async fn sms_counts(&self, phones: &[String], day: NaiveDate) -> Result<BTreeMap<String, u32>, StoreError> {
        let (phones, day) = (phones.to_vec(), day.to_string());
        self.point(move |conn| {
            let mut counts = BTreeMap::new();
            for phone in phones {
                if let Some(n) = read_sms_count(conn, &phone, &day)? {
                    counts.insert(phone, n);
                }
            }
            Ok(counts)
        })
        .await
    }

    async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        let key = commit.stream.key.to_string();
        let stream_doc = encode(&commit.stream, "stream")?;
        let next_due_ms = commit.stream.next_due().map(|d| d.timestamp_millis());
        let accepted_at = commit.delivery.accepted_at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        // Effects performed here need no pending row: the timer table and the outboxes hold what
        // they did, and the case timeline records each. Otherwise each waits in `effects` for
        // the engine to perform it, and stays there, done, as the audit trail.
        let (effects, performed) = if self.performs_effects {
            (Vec::new(), commit.effects.iter().map(|e| Performed::of(&e.id, &e.effect)).collect::<Result<Vec<_>, StoreError>>()?)
        } else {
            let pending = commit.effects.iter().map(|e| Ok((e.id.clone(), encode(&e.effect, "effect")?)));
            (pending.collect::<Result<Vec<_>, StoreError>>()?, Vec::new())
        };
        self.write(move |tx| {
            // Inside the group commit's transaction: its checks see every write before it. Every
            // check comes before the first write, so a refused commit leaves nothing behind.
            if let Some(existing) = read_delivery(tx, &commit.delivery.id)? {
                return Err(CommitError::DuplicateDelivery(existing));
            }
            let current: Option<u64> = one(tx, "SELECT version FROM streams WHERE key = ?1", [&key], |r| r.get(0))
                .map_err(sql(format_args!("reading the version of {key}")))?;
            if current != commit.expected_version {
                return Err(CommitError::Conflict);
            }
            for c in &commit.sms_counts {
                if read_sms_count(tx, &c.phone, &c.day.to_string())?.unwrap_or(0) != c.held {
                    return Err(CommitError::Conflict);
                }
            }
            let mut unindexed = Vec::with_capacity(commit.index.len());
            for subject in &commit.index {
                let holder: Option<String> = one(tx, "SELECT stream_key FROM subject_index WHERE subject = ?1", [subject], |r| r.get(0))
                    .map_err(sql(format_args!("reading the index of {subject}")))?;
                match holder {
                    Some(other) if other != key => return Err(CommitError::SubjectTaken(subject.clone())),
                    Some(_) => {}
                    None => unindexed.push(subject),
                }
            }
            exec(
                tx,
                "INSERT INTO streams (key, version, doc, next_due_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET version = excluded.version, doc = excluded.doc, next_due_ms = excluded.next_due_ms",
                params![key, commit.stream.version, stream_doc, next_due_ms],
            )
            .map_err(sql(format_args!("writing stream {key}")))?;
            let d = &commit.delivery;
            exec(
                tx,
                "INSERT INTO deliveries (id, body_hash, case_id, accepted_at) VALUES (?1, ?2, ?3, ?4)",
                params![d.id, d.body_hash, d.case_id, accepted_at],
            )
            .map_err(sql(format_args!("recording delivery {}", d.id)))?;
            for subject in unindexed {
                exec(tx, "INSERT INTO subject_index (subject, stream_key) VALUES (?1, ?2)", params![subject, key])
                    .map_err(sql(format_args!("indexing {subject}")))?;
            }
            for c in &commit.sms_counts {
                exec(
                    tx,
                    "INSERT INTO sms_daily (phone, day, count) VALUES (?1, ?2, ?3)
                     ON CONFLICT (phone, day) DO UPDATE SET count = excluded.count",
                    params![c.phone, c.day.to_string(), c.count],
                )
                .map_err(sql(format_args!("counting the SMS of {}", c.day)))?;
            }
            for (id, doc) in &effects {
                exec(tx, "INSERT INTO effects (id, doc) VALUES (?1, ?2)", params![id, doc])
                    .map_err(sql(format_args!("recording effect {id}")))?;
            }
            for effect in &performed {
                effect.perform(tx)?;
            }
            Ok(())
        })
        .await
    }

    fn performs_effects(&self) -> bool {
        self.performs_effects
    }

    async fn pending_effects(&self, limit: usize) -> Result<Vec<PendingEffect>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |conn| {
            let what = "listing pending effects";
            let mut stmt = conn.prepare_cached("SELECT id, doc FROM effects WHERE done = 0 ORDER BY seq LIMIT ?1").map_err(sql(what))?;
            let rows = stmt
                .query_map([limit], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql(what))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql(what))?;
            rows.into_iter()
                .map(|(id, doc)| {
                    let effect: Effect = decode(&doc, format_args!("effect {id}"))?;
                    Ok(PendingEffect { id, effect })
                })
                .collect()
        })
        .await
    }

    async fn effect_done(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write(move |conn| {
            exec(conn, "UPDATE effects SET done = 1 WHERE id = ?1", [&id]).map(drop).map_err(sql(format_args!("marking effect {id} done")))
        })
        .await
    }

    async fn overdue(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<Vec<SubjectKey>, StoreError> {
        let (cutoff, limit) = (cutoff.timestamp_millis(), i64::try_from(limit).unwrap_or(i64::MAX));
        self.run(move |conn| {
            let what = "listing snapshots with an overdue timer";
            // The partial index holds only snapshots that wait on a timer.
            let mut stmt = conn
                .prepare_cached("SELECT key FROM streams WHERE next_due_ms IS NOT NULL AND next_due_ms <= ?1 ORDER BY next_due_ms LIMIT ?2")
                .map_err(sql(what))?;
            let keys = stmt.query_map(params![cutoff, limit], |r| r.get::<_, String>(0)).map_err(sql(what))?;
            keys.map(|k| {
                let k = k.map_err(sql(what))?;
                SubjectKey::parse(&k).ok_or_else(|| StoreError::Corrupt(format!("{k:?} is not a stream key")))
            })
            .collect()
        })
        .await
    }

    async fn subjects_with_prefix(&self, prefix: &str) -> Result<Vec<(String, SubjectKey)>, StoreError> {
        let (low, high) = (prefix.to_owned(), prefix_end(prefix));
        self.run(move |conn| {
            let what = "listing subject_index by prefix";
            // A range on the primary key: only the entries under the prefix are read.
            let mut stmt = conn
                .prepare_cached("SELECT subject, stream_key FROM subject_index WHERE subject >= ?1 AND subject < ?2 ORDER BY subject")
                .map_err(sql(what))?;
            let rows = stmt
                .query_map(params![low, high], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql(what))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql(what))?;
            rows.into_iter()
                .map(|(subject, key)| {
                    let stream = SubjectKey::parse(&key)
                        .ok_or_else(|| StoreError::Corrupt(format!("subject {subject:?} points at {key:?}, not a stream key")))?;
                    Ok((subject, stream))
                })
                .collect()
        })
        .await
    }
}

/// The smallest string above every string that starts with `prefix` (SQLite compares TEXT bytewise).
/// SPEC §4 (v3) one number's SMS count on one local day, if any were sent.
fn read_sms_count(conn: &Connection, phone: &str, day: &str) -> Result<Option<u32>, StoreError> {
    one(conn, "SELECT count FROM sms_daily WHERE phone = ?1 AND day = ?2", [phone, day], |r| r.get(0))
        .map_err(sql("reading the daily SMS count"))
}

fn prefix_end(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32) {
            chars.push(next);
            return chars.into_iter().collect();
        }
    }
    // Only a prefix of nothing but char::MAX gets here; every subject sorts below this.
    format!("{prefix}{}", char::MAX)
}

impl Timers for SqliteStore {
    async fn place(&self, timer: &TimerSpec) -> Result<(), EffectError> {
        let placed = Performed::of("", &Effect::PlaceTimer(timer.clone())).map_err(effect_error)?;
        self.write(move |conn| placed.perform(conn)).await.map_err(effect_error)
    }

    async fn cancel(&self, timer: &TimerRef) -> Result<(), EffectError> {
        let name = timer.name();
        self.write(move |conn| delete_timer(conn, &name)).await.map_err(effect_error)
    }
}

impl SmsSender for SqliteStore {
    const MARKS_DONE: bool = true;
    async fn send(&self, effect_id: &str, sms: &Sms) -> Result<(), EffectError> {
        let doc = encode(sms, "sms").map_err(effect_error)?;
        self.append_outbox(Outbox::Sms, effect_id, doc).await
    }
}

impl CommandBus for SqliteStore {
    const MARKS_DONE: bool = true;
    async fn publish(&self, effect_id: &str, command: &Command) -> Result<(), EffectError> {
        let doc = encode(command, "command").map_err(effect_error)?;
        self.append_outbox(Outbox::Commands, effect_id, doc).await
    }
}

/// An effect as the local runtime performs it: a row of the timer table or an outbox, ready to write.
enum Performed {
    PlaceTimer { name: String, due_at_ms: i64, doc: String },
    CancelTimer { name: String },
    Append { outbox: Outbox, effect_id: String, doc: String },
}

#[derive(Debug, Clone, Copy)]
enum Outbox {
    Sms,
    Commands,
}

impl Outbox {
    fn table(self) -> &'static str {
        match self {
            Outbox::Sms => "sms_outbox",
            Outbox::Commands => "command_outbox",
        }
    }

    /// Appends unless this effect was already delivered there.
    fn insert(self) -> &'static str {
        match self {
            Outbox::Sms => "INSERT OR IGNORE INTO sms_outbox (effect_id, doc) VALUES (?1, ?2)",
            Outbox::Commands => "INSERT OR IGNORE INTO command_outbox (effect_id, doc) VALUES (?1, ?2)",
        }
    }
}

impl Performed {
    fn of(effect_id: &str, effect: &Effect) -> Result<Performed, StoreError> {
        Ok(match effect {
            Effect::PlaceTimer(t) => {
                Performed::PlaceTimer { name: t.timer.name(), due_at_ms: t.due_at.timestamp_millis(), doc: encode(t, "timer")? }
            }
            Effect::CancelTimer(t) => Performed::CancelTimer { name: t.name() },
            Effect::SendSms(sms) => Performed::Append { outbox: Outbox::Sms, effect_id: effect_id.to_owned(), doc: encode(sms, "sms")? },
            Effect::Emit(cmd) => {
                Performed::Append { outbox: Outbox::Commands, effect_id: effect_id.to_owned(), doc: encode(cmd, "command")? }
            }
        })
    }

    fn perform(&self, conn: &Connection) -> Result<(), StoreError> {
        match self {
            // MAX(seq) + 1 only has to order the live timers, and a removed maximum leaves none behind it.
            Performed::PlaceTimer { name, due_at_ms, doc } => exec(
                conn,
                "INSERT OR IGNORE INTO timers (name, seq, due_at_ms, doc)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM timers), ?2, ?3)",
                params![name, due_at_ms, doc],
            )
            .map(drop)
            .map_err(sql(format_args!("placing timer {name}"))),
            Performed::CancelTimer { name } => delete_timer(conn, name),
            Performed::Append { outbox, effect_id, doc } => append(conn, *outbox, effect_id, doc),
        }
    }
}

/// Appends to an outbox unless this effect was already delivered there.
fn append(conn: &Connection, outbox: Outbox, effect_id: &str, doc: &str) -> Result<(), StoreError> {
    exec(conn, outbox.insert(), params![effect_id, doc]).map(drop).map_err(sql(format_args!("appending to {}", outbox.table())))
}

/// Creates what is missing; refuses a database written by a newer build rather than guess at it.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
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

fn read_delivery(conn: &Connection, id: &str) -> Result<Option<Delivery>, StoreError> {
    let row: Option<(String, String, Option<String>, String)> =
        one(conn, "SELECT id, body_hash, case_id, accepted_at FROM deliveries WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .map_err(sql(format_args!("reading delivery {id}")))?;
    row.map(|(id, body_hash, case_id, accepted_at)| {
        let accepted_at = DateTime::parse_from_rfc3339(&accepted_at)
            .map_err(|e| StoreError::Corrupt(format!("delivery {id}: accepted_at {accepted_at:?}: {e}")))?
            .with_timezone(&Utc);
        Ok(Delivery { id, body_hash, case_id, accepted_at })
    })
    .transpose()
}

fn delete_timer(conn: &Connection, name: &str) -> Result<(), StoreError> {
    exec(conn, "DELETE FROM timers WHERE name = ?1", [name]).map(drop).map_err(sql(format_args!("removing timer {name}")))
}

/// One statement from the connection's statement cache (the hot path prepares nothing twice).
fn exec<P: rusqlite::Params>(conn: &Connection, statement: &str, params: P) -> rusqlite::Result<usize> {
    conn.prepare_cached(statement)?.execute(params)
}

/// The one row a cached `query` finds, if any.
fn one<T, P: rusqlite::Params>(
    conn: &Connection,
    query: &str,
    params: P,
    row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    conn.prepare_cached(query)?.query_row(params, row).optional()
}

/// Decodes the single `doc` column of every row `query` returns, in row order.
fn query_docs<T: DeserializeOwned>(conn: &Connection, query: &str, what: &str) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(query).map_err(sql(what))?;
    let docs = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(sql(what))?.collect::<Result<Vec<_>, _>>().map_err(sql(what))?;
    docs.iter().map(|d| decode(d, what)).collect()
}

/// Maps a SQLite failure to `Unavailable`, saying what was being done. The context is only
/// formatted on failure: pass `format_args!` rather than a `format!`ed string.
fn sql<'a>(context: impl std::fmt::Display + 'a) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |e| StoreError::Unavailable(format!("{context}: {e}"))
}

fn encode<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode {what}: {e}")))
}

/// The context is only formatted on failure, as for [`sql`].
fn decode<T: DeserializeOwned>(doc: &str, what: impl std::fmt::Display) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn effect_error(e: StoreError) -> EffectError {
    match e {
        // A busy or failing disk may recover; the effect stays pending and is re-driven.
        StoreError::Unavailable(m) => EffectError::Transient(m),
        // No retry makes a value encodable that was not.
        StoreError::Corrupt(m) => EffectError::Permanent(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes of one batch that fail after writing (an error, a panic) are undone alone: the batch
    /// runs again without them, every other write lands, and each is answered with its own result.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_failing_after_it_wrote_is_undone_alone() {
        let dir = std::env::temp_dir().join(format!("followup-group-{}", std::process::id()));
        let store = SqliteStore::open(&dir).expect("open");
        let insert = |conn: &Connection, key: &str| {
            exec(conn, "INSERT INTO subject_index (subject, stream_key) VALUES (?1, 'order:x')", [key]).map(drop).map_err(sql("insert"))
        };
        let writes: Vec<_> = (0..48)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let key = format!("s{i}");
                    let result = store
                        .write(move |conn| {
                            insert(conn, &key)?;
                            match i % 8 {
                                3 => Err(StoreError::Unavailable(format!("write {i} failed after writing"))),
                                5 => panic!("write {i} panicked after writing"),
                                _ => Ok(i),
                            }
                        })
                        .await;
                    (i, result)
                })
            })
            .collect();
        for write in writes {
            let (i, result) = write.await.expect("task");
            match (i % 8, result) {
                (3, Err(StoreError::Unavailable(m))) => assert!(m.contains("after writing"), "{m}"),
                (5, Err(StoreError::Unavailable(m))) => assert!(m.contains("did not complete"), "{m}"),
                (0 | 1 | 2 | 4 | 6 | 7, Ok(n)) => assert_eq!(n, i),
                (_, other) => panic!("write {i}: {other:?}"),
            }
        }
        let (groups, writes) = store.group_stats();
        assert!(groups < writes, "the writes shared batches: {groups} for {writes}");
        let stored: Vec<String> = store
            .run(|conn| {
                let mut stmt =
                    conn.prepare("SELECT subject FROM subject_index ORDER BY CAST(substr(subject, 2) AS INTEGER)").map_err(sql("list"))?;
                let rows = stmt.query_map([], |r| r.get(0)).map_err(sql("list"))?;
                rows.collect::<Result<Vec<String>, _>>().map_err(sql("list"))
            })
            .await
            .expect("list");
        let expected: Vec<String> = (0..48).filter(|i| i % 8 != 3 && i % 8 != 5).map(|i| format!("s{i}")).collect();
        assert_eq!(stored, expected);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
