//! The narrow traits the engine shell talks through: store, timers, SMS, commands, clock, and
//! the bundle of them a runtime names once.
//!
//! Every adapter (SQLite locally, DynamoDB / Scheduler / SNS on AWS) implements
//! these and is checked by the same contract suite.

use crate::domain::ctx::SmsCount;
use crate::domain::effects::{Command, Effect, Sms, TimerRef, TimerSpec};
use crate::domain::subjects::snapshot::{Snapshot, SubjectKey};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;

/// A webhook as it was received: its route's path, its `occurred_at` and the raw envelope, for a
/// store that keeps every input it accepted (the local runtime's `inputs` table, which
/// `followup-local export` writes out for a replay).
#[derive(Debug, Clone)]
pub struct Received {
    pub route: &'static str,
    pub occurred_at: DateTime<Utc>,
    pub body: std::sync::Arc<[u8]>,
}

/// What the idempotency record remembers of an accepted delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The envelope id (or `timer:<name>` for a fired timer).
    pub id: String,
    /// SHA-256 hex of the raw body: the same id with another body is a 409.
    pub body_hash: String,
    /// The case id the 202 answered with.
    pub case_id: Option<String>,
    pub accepted_at: DateTime<Utc>,
}

/// An effect committed with its decision, performed afterwards and then marked done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingEffect {
    /// `<delivery id>#<n>`: the commit's delivery and the effect's place in it. Stable across
    /// retries, so performing twice is detectable, and it names the commit the effect came from.
    pub id: String,
    pub effect: Effect,
}

/// One decision's durable outcome, written atomically or not at all.
#[derive(Debug, Clone)]
pub struct Commit {
    /// The new stream; its `version` is one more than `expected_version`.
    pub stream: Snapshot,
    /// `None`: the stream must not exist yet.
    pub expected_version: Option<u64>,
    pub delivery: Delivery,
    /// Subject ids this stream now answers for (`appointment:<id>`), kept for lookups.
    pub index: Vec<String>,
    pub effects: Vec<PendingEffect>,
    /// SPEC §4 (v3) the per-number daily SMS counts the decision moved, each conditional on the
    /// store still holding the count it was decided with (`SmsCount::held`; 0 = none yet).
    pub sms_counts: Vec<SmsCount>,
    /// The webhook this commit decides, as it was received: given only to a store that
    /// [`keeps_inputs`](CaseStore::keeps_inputs), which writes it in the same transaction as the
    /// delivery record (SQLite's `inputs` table); `None` for a fired timer and for other stores.
    pub received: Option<Received>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Someone else committed this stream first: reload and decide again.
    #[error("the stream changed since it was loaded")]
    Conflict,
    /// The delivery id was recorded meanwhile.
    #[error("delivery {} already recorded", .0.id)]
    DuplicateDelivery(Delivery),
    /// A subject id of `Commit::index` already belongs to another stream.
    #[error("{0} already belongs to another stream")]
    SubjectTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors performing an effect; the effect stays pending and is retried.
#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    #[error("transient failure, retry later: {0}")]
    Transient(String),
    #[error("permanent failure: {0}")]
    Permanent(String),
}

pub trait CaseStore: Send + Sync + 'static {
    /// The stream that holds a subject (`appointment:<id>`), if known.
    fn locate(&self, subject: &str) -> impl Future<Output = Result<Option<SubjectKey>, StoreError>> + Send;
    fn load(&self, key: &SubjectKey) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send;
    fn delivery(&self, id: &str) -> impl Future<Output = Result<Option<Delivery>, StoreError>> + Send;
    /// SPEC §4 (v3) how many SMS went to each of these numbers on `day` (a number with none is
    /// absent): one key read each, never a scan.
    fn sms_counts(&self, phones: &[String], day: NaiveDate) -> impl Future<Output = Result<BTreeMap<String, u32>, StoreError>> + Send;
    /// Snapshot (conditional on its version), delivery record (conditional on its absence), index
    /// (conditional on no other stream holding the subject), the daily SMS counts (conditional on
    /// each holding what it was decided with; a mismatch is a `Conflict`) and pending effects, in
    /// one transaction.
    fn commit(&self, commit: Commit) -> impl Future<Output = Result<(), CommitError>> + Send;
    /// True when `commit` also performs the commit's effects in the same transaction and records
    /// them done, so the engine must not perform them again: only a store whose own tables are the
    /// engine's timers and outboxes (the local runtime's SQLite file) may say so.
    fn performs_effects(&self) -> bool {
        false
    }
    /// True when `commit` keeps the webhook it decides as received ([`Commit::received`]) for a
    /// later export: the engine copies the raw envelope only for such a store (the local
    /// runtime's SQLite file), never on the Lambda path.
    fn keeps_inputs(&self) -> bool {
        false
    }
    /// Effects committed but not yet marked done, oldest first.
    fn pending_effects(&self, limit: usize) -> impl Future<Output = Result<Vec<PendingEffect>, StoreError>> + Send;
    fn effect_done(&self, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Marks several effects done; a store that keeps a commit's effects together marks them in
    /// one write. Marking an effect done twice, or one this store does not hold, is harmless.
    fn effects_done(&self, ids: &[&str]) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            for id in ids {
                self.effect_done(id).await?;
            }
            Ok(())
        }
    }
    /// Index entries whose subject starts with `prefix` (`expiry:2026-04-09:`), in subject order:
    /// a range read of the subject index, never a scan of the streams (R5 daily safety sweep).
    fn subjects_with_prefix(&self, prefix: &str) -> impl Future<Output = Result<Vec<(String, SubjectKey)>, StoreError>> + Send;
    /// Snapshots whose earliest pending timer (`Snapshot::next_due`, indexed by `commit` in the same
    /// write) is due at or before `cutoff`, earliest first: an index read, never a scan (R9.3's
    /// safety net for timers lost on the way).
    fn overdue(&self, cutoff: DateTime<Utc>, limit: usize) -> impl Future<Output = Result<Vec<SubjectKey>, StoreError>> + Send;
}

pub trait Timers: Send + Sync + 'static {
    /// Placing a timer that already exists (same name) is a no-op success.
    fn place(&self, timer: &TimerSpec) -> impl Future<Output = Result<(), EffectError>> + Send;
    /// Cancelling a timer that does not exist (fired or never placed) is a success.
    fn cancel(&self, timer: &TimerRef) -> impl Future<Output = Result<(), EffectError>> + Send;
}

pub trait SmsSender: Send + Sync + 'static {
    /// The adapter marks the effect done (`CaseStore::effect_done`) in the same write as the
    /// send, so the engine need not: true where the outbox and the store are one database.
    const MARKS_DONE: bool = false;
    /// `effect_id` lets an adapter drop a repeat of the same send.
    fn send(&self, effect_id: &str, sms: &Sms) -> impl Future<Output = Result<(), EffectError>> + Send;
}

pub trait CommandBus: Send + Sync + 'static {
    /// As [`SmsSender::MARKS_DONE`].
    const MARKS_DONE: bool = false;
    fn publish(&self, effect_id: &str, command: &Command) -> impl Future<Output = Result<(), EffectError>> + Send;
}

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// One runtime's adapters, one for each port, named once: `Engine<P: Ports>` holds one of each,
/// and code generic over the engine takes one parameter instead of five. A bundle is a type that
/// is never built (`LocalPorts`, `AwsPorts`, a test's own): only its associated types matter.
pub trait Ports: 'static {
    type Store: CaseStore;
    type Timers: Timers;
    type Sms: SmsSender;
    type Commands: CommandBus;
    type Clock: Clock;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
