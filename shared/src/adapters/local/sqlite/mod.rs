//! SQLite adapter for the local runtime: case store, durable timers and the SMS / command outboxes in one file.
//!
//! [`SqliteStore`] and its connections here; the schema in `schema`, the group-commit writer in
//! `writer`, the case store in `store`, the timers and outboxes in `effects`, the console's read
//! model in `console`.

mod console;
mod effects;
mod schema;
mod store;
mod writer;

use crate::ports::{EffectError, StoreError};
pub use effects::AcceptedInput;
use rusqlite::{Connection, OptionalExtension};
use schema::migrate;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use writer::{WriteQueue, WroteNothing};

/// The file inside the data directory.
const DB_FILE: &str = "followup.db";

/// Another process (a `sqlite3` shell, a second server by mistake) may hold the write lock briefly.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Every port of the local runtime over one SQLite connection.
///
/// Clones share the connections. Writes go to one writer thread that **group-commits**: it takes
/// every write waiting (up to [`MAX_BATCH`](writer::MAX_BATCH)), runs them one after the other
/// in one `BEGIN IMMEDIATE` transaction, commits once, with one fsync (`synchronous=FULL`), and
/// only then answers each write. So a 202 still means the delivery is on disk, and concurrent
/// inputs share the fsync. Each write is answered on its own: one refused on its condition (a stale version,
/// a delivery already recorded) checks before it writes, so it leaves nothing behind and its
/// batch goes on; one that fails after writing (a disk error, a panic) has the transaction rolled
/// back and the batch run again without it (see [`group_commit`](writer::group_commit)).
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
    /// The writer thread's queue, with how many group commits it made and the writes they carried.
    writes: WriteQueue,
    performs_effects: bool,
}

/// Read connections of a file store: one per core of the machine this runs on.
const READERS: usize = 2;

/// The WAL's size, in pages, past which a commit checkpoints (SQLite's own default).
const WAL_CHECKPOINT_PAGES: i64 = 1000;

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
        // The writer thread ends when the last clone of the store is dropped (the queue closes).
        let writes = WriteQueue::start(Arc::clone(&conn))?;
        let readers = Arc::new([conn]);
        Ok(SqliteStore { readers, next_reader: Arc::default(), writes, performs_effects: false })
    }

    /// Group commits made so far and the writes they carried.
    pub fn group_stats(&self) -> (u64, u64) {
        self.writes.stats()
    }

    /// Runs `f` in the next group commit and answers once that is durable (see [`WriteQueue::write`]).
    async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnMut(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + WroteNothing + Send + 'static,
    {
        self.writes.write(f).await
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
