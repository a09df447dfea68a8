//! The group-commit writer: one thread, one transaction and one fsync per batch of waiting writes.

use super::{exec, sql};
use crate::ports::{CommitError, StoreError};
use rusqlite::Connection;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

/// The most writes one group commit takes.
const MAX_BATCH: usize = 256;

/// The way to the writer thread: clones share it, and the thread ends when the last clone is
/// dropped (the queue closes).
#[derive(Debug, Clone)]
pub(super) struct WriteQueue {
    writes: Sender<Write>,
    /// Group commits made and writes they carried, since the queue was started.
    stats: Arc<GroupStats>,
}

impl WriteQueue {
    /// Starts the writer thread on `conn`, the connection every write of the store goes through.
    pub(super) fn start(conn: Arc<Mutex<Connection>>) -> Result<WriteQueue, StoreError> {
        let (writes, queue) = std::sync::mpsc::channel();
        let stats = Arc::new(GroupStats::default());
        let counted = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer(conn, queue, counted))
            .map_err(|e| StoreError::Unavailable(format!("starting the writer thread: {e}")))?;
        Ok(WriteQueue { writes, stats })
    }

    /// Group commits made so far and the writes they carried.
    pub(super) fn stats(&self) -> (u64, u64) {
        (self.stats.commits.load(Relaxed), self.stats.writes.load(Relaxed))
    }

    /// Runs `f` in the next group commit and answers once that is durable: with `f`'s result, or
    /// with the batch's failure. An `Err` from `f` undoes only what `f` wrote.
    ///
    /// `f` may run more than once (when a batch-mate fails and the batch runs again), each time in
    /// a fresh transaction; it must check every condition it can refuse on before it writes.
    pub(super) async fn write<T, E, F>(&self, mut f: F) -> Result<T, E>
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
}

/// How well writes shared their fsyncs.
#[derive(Debug, Default)]
struct GroupStats {
    commits: AtomicU64,
    writes: AtomicU64,
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
pub(super) trait WroteNothing {
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
fn writer(conn: Arc<Mutex<Connection>>, writes: Receiver<Write>, stats: Arc<GroupStats>) {
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

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;
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

    type Answers = Arc<Mutex<Vec<(&'static str, Option<StoreError>)>>>;

    /// A connection with one table of keys, for `group_commit` alone.
    fn keys_table() -> Connection {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE keys (k TEXT PRIMARY KEY)").expect("create");
        conn
    }

    fn keys(conn: &Connection) -> Vec<String> {
        let mut stmt = conn.prepare("SELECT k FROM keys ORDER BY k").expect("select");
        let rows = stmt.query_map([], |r| r.get(0)).expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    }

    /// A write that inserts `key` (unless it is refused, which writes nothing) and then says `ran`;
    /// its answer goes to `answers`.
    fn write(key: &'static str, ran: Ran, answers: &Answers) -> Write {
        let answers = Arc::clone(answers);
        Write {
            run: Box::new(move |conn| {
                if ran != Ran::Refused {
                    exec(conn, "INSERT INTO keys (k) VALUES (?1)", [key]).expect("insert");
                }
                ran
            }),
            answer: Box::new(move |failed| answers.lock().expect("answers").push((key, failed))),
        }
    }

    fn answer_all(answers: Vec<(Write, Option<StoreError>)>) {
        for (write, failed) in answers {
            (write.answer)(failed);
        }
    }

    /// A refused write leaves its batch going; a write that failed after writing is answered first
    /// and alone, and the rest of the batch runs again without it and commits.
    #[test]
    fn a_refused_write_keeps_its_batch_and_a_failed_one_is_run_again_without() {
        let conn = keys_table();
        let answers = Answers::default();
        let batch = vec![
            write("a", Ran::Done, &answers),
            write("b", Ran::Refused, &answers),
            write("c", Ran::Failed, &answers),
            write("d", Ran::Done, &answers),
        ];
        answer_all(group_commit(&conn, batch));
        let answered: Vec<_> = answers.lock().expect("answers").iter().map(|(k, failed)| (*k, failed.is_some())).collect();
        assert_eq!(answered, [("c", false), ("a", false), ("b", false), ("d", false)]);
        assert_eq!(keys(&conn), ["a", "d"]);
        assert!(conn.is_autocommit(), "no transaction is left open");
    }

    /// A batch whose transaction cannot begin runs none of its writes, and answers each with that failure.
    #[test]
    fn a_batch_that_cannot_begin_answers_every_write_with_that_failure() {
        let conn = keys_table();
        conn.execute_batch("BEGIN").expect("an open transaction");
        let answers = Answers::default();
        answer_all(group_commit(&conn, vec![write("a", Ran::Done, &answers), write("b", Ran::Done, &answers)]));
        let answers = answers.lock().expect("answers");
        assert_eq!(answers.len(), 2);
        for (key, failed) in answers.iter() {
            assert!(matches!(failed, Some(StoreError::Unavailable(m)) if m.contains("beginning a group commit")), "{key}: {failed:?}");
        }
        assert!(keys(&conn).is_empty());
    }
}
