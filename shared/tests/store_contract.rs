//! The adapter contract run against SQLite (in memory and on a file) and the in-memory store,
//! plus SQLite specifics.
//!
//! The generic `contract_*` functions live in `common/contract.rs`; `aws_contract.rs` runs
//! the same functions against the AWS adapters.
#![cfg(feature = "local")]

#[macro_use]
#[path = "common/contract.rs"]
mod contract;

use chrono::Duration;
use contract::*;
use followup::adapters::embedded::EmbeddedStore;
use followup::adapters::local::SqliteStore;
use followup::adapters::memory::MemoryStore;
use followup::domain::effects::{Command, Effect, TimerSpec};
use followup::domain::records::case::TimerKind;
use followup::ports::{CaseStore, CommandBus, SmsSender, StoreError, Timers};
use std::path::{Path, PathBuf};

/// Both embedded stores are read back through their own timer table and outboxes.
macro_rules! probe_embedded {
    ($($store:ty),+) => {
        $(
            impl Probe for $store {
                async fn all_timers(&self) -> Vec<TimerSpec> {
                    EmbeddedStore::timers(self).await.expect("timers")
                }
                async fn sent_sms(&self) -> Vec<Delivered> {
                    EmbeddedStore::sms_outbox(self).await.expect("sms_outbox").iter().map(delivered).collect()
                }
                async fn published(&self) -> Vec<Command> {
                    EmbeddedStore::commands(self).await.expect("commands")
                }
            }
        )+
    };
}

probe_embedded!(SqliteStore, MemoryStore);

// ---- the embedded timer table's view (SQLite and memory) --------------------

async fn local_due_timers_are_bounded_ordered_and_removable<S: EmbeddedStore + Timers>(s: &S) {
    assert_eq!(s.next_due_at().await.expect("next"), None);
    assert!(s.due_timers(at(23, 0), 10).await.expect("due").is_empty());

    let late = timer("O1", "o1-O1", TimerKind::AutoClose, 1, at(12, 0));
    let tie_first = timer("O2", "o1-O2", TimerKind::CallAttempt, 1, at(11, 0));
    let tie_second = timer("O1", "o1-O1", TimerKind::CallAttempt, 2, at(11, 0));
    // Half a millisecond past 11:00, beyond an `upto` of exactly 11:00 though in the same millisecond.
    let just_after = timer("O4", "o1-O4", TimerKind::FirstCallSla, 1, at(11, 0) + Duration::microseconds(500));
    let early = timer("O3", "o1-O3", TimerKind::StatusUpdate, 1, at(10, 0));
    for t in [&late, &tie_first, &just_after, &tie_second, &early] {
        s.place(t).await.expect("place");
    }

    assert_eq!(s.next_due_at().await.expect("next"), Some(at(10, 0)));
    assert_eq!(s.due_timers(at(9, 59), 10).await.expect("due"), []);
    assert_eq!(s.due_timers(at(11, 0), 10).await.expect("due"), [early.clone(), tie_first.clone(), tie_second.clone()]);
    assert_eq!(s.due_timers(at(11, 0), 2).await.expect("due"), [early.clone(), tie_first.clone()]);
    assert_eq!(s.due_timers(at(11, 0), 0).await.expect("due"), []);

    s.remove_timer(&early.timer.name()).await.expect("remove");
    s.remove_timer(&early.timer.name()).await.expect("removing twice is fine");
    assert_eq!(s.next_due_at().await.expect("next"), Some(at(11, 0)));
    // Within one millisecond, placement order decides.
    assert_eq!(s.due_timers(at(13, 0), 10).await.expect("due"), [tie_first.clone(), just_after.clone(), tie_second.clone(), late]);

    s.remove_timer(&tie_first.timer.name()).await.expect("remove");
    s.remove_timer(&tie_second.timer.name()).await.expect("remove");
    assert_eq!(s.next_due_at().await.expect("next"), Some(just_after.due_at));
}

// ---- run it against every implementation ------------------------------------

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("followup-store-contract-{test}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

macro_rules! run_against_embedded {
    ($($name:ident),+ $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&MemoryStore::new()).await;
                }
            )+
        }

        mod sqlite_in_memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let store = SqliteStore::open_in_memory().expect("open in memory");
                    super::$name(&store).await;
                }
            )+
        }

        mod sqlite_file {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = TempDir::new(stringify!($name));
                    let store = SqliteStore::open(&dir.path().join("data")).expect("open file store");
                    super::$name(&store).await;
                }
            )+
        }
    };
}

every_contract!(run_against_embedded, local_due_timers_are_bounded_ordered_and_removable);

// ---- SQLite specifics -------------------------------------------------------

/// Group commit: 64 commits in flight at once, 48 on streams of their own and 16 on one stream at
/// one version. They share transactions, yet each is answered on its own: every own-stream commit
/// lands, exactly one of the 16 wins and the other 15 are conflicts that wrote nothing; all of it
/// is on disk for a store opened afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_group_commit_answers_each_commit_on_its_own() {
    let dir = TempDir::new("group");
    let s = SqliteStore::open(dir.path()).expect("open");
    let contested = order("SHARED");
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (s, key) = (s.clone(), if i % 4 == 0 { contested.clone() } else { order(&format!("O{i}")) });
        tasks.push(tokio::spawn(async move {
            let c = commit(stream_at(&key, 1), None, &format!("d{i}"), &[], vec![Effect::SendSms(sms("hello"))]);
            (key, s.commit(c).await)
        }));
    }
    let (mut won, mut lost) = (0, 0);
    for task in tasks {
        let (key, result) = task.await.expect("task");
        match (key == contested, result) {
            (false, r) => r.expect("a commit on its own stream lands"),
            (true, Ok(())) => won += 1,
            (true, Err(followup::ports::CommitError::Conflict)) => lost += 1,
            (true, Err(e)) => panic!("{e}"),
        }
    }
    assert_eq!((won, lost), (1, 15), "exactly one commit on the shared version wins");
    let (groups, writes) = s.group_stats();
    assert_eq!(writes, 64);
    assert!(groups < writes, "commits in flight shared transactions: {groups} for {writes}");
    drop(s);
    let reopened = SqliteStore::open(dir.path()).expect("reopen");
    for i in (0..64).filter(|i| i % 4 != 0) {
        assert!(reopened.load(&order(&format!("O{i}"))).await.expect("load").is_some(), "O{i} is on disk");
    }
    assert_eq!(reopened.load(&contested).await.expect("load").map(|s| s.version), Some(1));
    // The winner's effect is pending; the 15 losers recorded none.
    assert_eq!(reopened.pending_effects(1_000).await.expect("pending").len(), 48 + 1);
}

#[tokio::test]
async fn sqlite_file_survives_a_restart() {
    let dir = TempDir::new("restart");
    let key = order("O1");
    let stream = stream_at(&key, 1);
    let fx = vec![Effect::SendSms(sms("before the crash")), Effect::Emit(call_customer("o1-O1"))];
    let t = timer("O1", "o1-O1", TimerKind::CallAttempt, 1, at(11, 0));
    {
        let s = SqliteStore::open(dir.path()).expect("open");
        s.commit(commit(stream.clone(), None, "d1", &["appointment:A1"], fx.clone())).await.expect("commit");
        s.place(&t).await.expect("place");
        // Sent and marked done in one write; the crash comes before the command is published.
        s.send("d1#0", &sms("before the crash")).await.expect("send");
    }
    assert!(dir.path().join("followup.db").is_file());

    let s = SqliteStore::open(dir.path()).expect("reopen");
    assert_eq!(s.load(&key).await.expect("load"), Some(stream));
    assert_eq!(s.delivery("d1").await.expect("delivery"), Some(delivery("d1")));
    assert_eq!(s.locate("appointment:A1").await.expect("locate"), Some(key.clone()));
    let pending = s.pending_effects(100).await.expect("pending");
    assert_eq!(ids(&pending), ["d1#1"]);
    assert_eq!(pending[0].effect, fx[1]);
    assert_eq!(s.timers().await.expect("timers"), std::slice::from_ref(&t));
    assert_eq!(s.sms_outbox().await.expect("sms"), [sms("before the crash")]);
    assert_eq!(s.commands().await.expect("commands"), []);
    s.publish("d1#1", &call_customer("o1-O1")).await.expect("publish");
    assert!(s.pending_effects(100).await.expect("pending").is_empty(), "publishing marked it done");

    // The reopened store carries on from where it was, sequences included.
    let t2 = timer("O1", "o1-O1", TimerKind::CallAttempt, 0, at(11, 0));
    s.place(&t2).await.expect("place");
    assert_eq!(s.timers().await.expect("timers"), [t, t2]);
    s.commit(commit(stream_at(&key, 2), Some(1), "d2", &[], vec![])).await.expect("commit after restart");
}

/// Commits that never stop, from 16 tasks, each reading its stream before it writes: the writer
/// checkpoints as it goes, so the WAL starts over in place instead of growing with every commit
/// (a checkpoint beside the writer never caught up, and the WAL grew to hundreds of MB), and what
/// it held reaches followup.db.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_the_wal_bounded_while_commits_never_stop() {
    let dir = TempDir::new("checkpoint");
    let s = SqliteStore::open(dir.path()).expect("open");
    let (db, wal) = (dir.path().join("followup.db"), dir.path().join("followup.db-wal"));
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let before = size(&db);
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 0..250 {
                    let key = order(&format!("O{t}-{i}"));
                    assert!(s.load(&key).await.expect("load").is_none());
                    let effects = vec![Effect::SendSms(sms(&"x".repeat(2_000)))];
                    s.commit(commit(stream_at(&key, 1), None, &format!("d{t}-{i}"), &[], effects)).await.expect("commit");
                }
            })
        })
        .collect();
    let mut largest = 0;
    for task in tasks {
        while !task.is_finished() {
            largest = largest.max(size(&wal));
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        task.await.expect("task");
    }
    // 4,000 commits of over 2 KB each: over 8 MB went through a WAL that never held 1,000 pages
    // (4 MiB) past its checkpoint by more than a batch.
    assert!(largest < 8 << 20, "the WAL reached {largest} bytes");
    assert!(size(&db) > before + (4 << 20), "followup.db still {} bytes after 4,000 commits", size(&db));
}

#[tokio::test]
async fn sqlite_keeps_done_effects_as_the_audit_trail() {
    let dir = TempDir::new("audit");
    let s = SqliteStore::open(dir.path()).expect("open");
    s.commit(commit(stream_at(&order("O1"), 1), None, "d1", &[], vec![Effect::SendSms(sms("x"))])).await.expect("commit");
    s.effect_done("d1#0").await.expect("done");

    let raw = rusqlite::Connection::open(dir.path().join("followup.db")).expect("raw open");
    let rows: Vec<(String, i64)> = raw
        .prepare("SELECT id, done FROM effects ORDER BY seq")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(rows, [("d1#0".to_string(), 1)]);
    let journal: String = raw.pragma_query_value(None, "journal_mode", |r| r.get(0)).expect("journal_mode");
    assert_eq!(journal, "wal");
    let version: i64 = raw.pragma_query_value(None, "user_version", |r| r.get(0)).expect("user_version");
    // 3: the daily SMS counts of SPEC §4 (v3); 4: the console's read model; 5: the inputs as received.
    assert_eq!(version, 5);
}

#[tokio::test]
async fn sqlite_performing_effects_does_them_in_the_commit_itself() {
    let dir = TempDir::new("in-commit");
    let s = SqliteStore::open(dir.path()).expect("open").performing_effects();
    assert!(s.performs_effects());
    let key = order("O1");
    let first = timer("O1", "o1-O1", TimerKind::CallAttempt, 1, at(11, 0));
    let second = timer("O1", "o1-O1", TimerKind::AutoClose, 1, at(12, 0));
    let effects = vec![Effect::PlaceTimer(first.clone()), Effect::PlaceTimer(second.clone()), Effect::SendSms(sms("hello"))];
    s.commit(commit(stream_at(&key, 1), None, "d1", &[], effects)).await.expect("commit");
    assert_eq!(s.timers().await.expect("timers"), [first.clone(), second.clone()]);
    assert_eq!(s.sms_outbox().await.expect("outbox").len(), 1);
    assert!(s.pending_effects(10).await.expect("pending").is_empty(), "done in the same write");

    // A refused commit performs nothing: the cancel stays undone and no command goes out.
    let cancel = vec![Effect::CancelTimer(first.timer.clone()), Effect::Emit(call_customer("o1-O1"))];
    let stale = s.commit(commit(stream_at(&key, 2), None, "d2", &[], cancel.clone())).await;
    assert!(matches!(stale, Err(followup::ports::CommitError::Conflict)), "{stale:?}");
    assert_eq!(s.timers().await.expect("timers"), [first.clone(), second.clone()]);
    assert!(s.commands().await.expect("commands").is_empty());

    s.commit(commit(stream_at(&key, 2), Some(1), "d2", &[], cancel)).await.expect("commit");
    assert_eq!(s.timers().await.expect("timers"), [second]);
    assert_eq!(s.commands().await.expect("commands").len(), 1);

    // A plain store leaves them to the engine.
    drop(s);
    assert!(!SqliteStore::open(dir.path()).expect("reopen").performs_effects());
}

#[tokio::test]
async fn sqlite_reports_undecodable_rows_as_corrupt() {
    let dir = TempDir::new("corrupt");
    let s = SqliteStore::open(dir.path()).expect("open");
    let key = order("O1");
    s.commit(commit(stream_at(&key, 1), None, "d1", &[], vec![])).await.expect("commit");

    let raw = rusqlite::Connection::open(dir.path().join("followup.db")).expect("raw open");
    raw.execute("UPDATE streams SET doc = '{not json' WHERE key = 'order:O1'", []).expect("break the row");
    raw.execute("INSERT INTO subject_index (subject, stream_key) VALUES ('appointment:A1', 'basket:7')", []).expect("bad index");

    assert!(matches!(s.load(&key).await, Err(StoreError::Corrupt(_))));
    assert!(matches!(s.locate("appointment:A1").await, Err(StoreError::Corrupt(_))));
}

#[tokio::test]
async fn sqlite_refuses_a_data_dir_of_the_earlier_case_format_with_a_clear_message() {
    let dir = TempDir::new("older");
    drop(SqliteStore::open(dir.path()).expect("open"));
    let raw = rusqlite::Connection::open(dir.path().join("followup.db")).expect("raw open");
    raw.pragma_update(None, "user_version", 1).expect("an earlier build");
    drop(raw);
    match SqliteStore::open(dir.path()) {
        Err(StoreError::Unavailable(m)) => assert!(m.contains("FOLLOWUP_DATA_DIR"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn sqlite_refuses_a_database_from_a_newer_build() {
    let dir = TempDir::new("newer");
    drop(SqliteStore::open(dir.path()).expect("open"));
    let raw = rusqlite::Connection::open(dir.path().join("followup.db")).expect("raw open");
    raw.pragma_update(None, "user_version", 99).expect("bump");
    drop(raw);
    assert!(matches!(SqliteStore::open(dir.path()), Err(StoreError::Unavailable(_))));
}
