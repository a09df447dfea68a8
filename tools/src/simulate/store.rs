//! The store a month runs on: in memory, or SQLite in `--data-dir`; one type either way, so the
//! meter and the clock above it do not depend on the choice.

use chrono::{DateTime, NaiveDate, Utc};
use followup::adapters::embedded::EmbeddedStore;
use followup::adapters::local::SqliteStore;
use followup::adapters::memory::MemoryStore;
use followup::domain::effects::{Command, Sms, TimerRef, TimerSpec};
use followup::domain::subjects::snapshot::{Snapshot, SubjectKey};
use followup::ports::{CaseStore, CommandBus, Commit, CommitError, Delivery, EffectError, PendingEffect, SmsSender, StoreError, Timers};
use std::collections::BTreeMap;

/// Both mark an effect done in the same write as its send, so the engine does the same work on either.
const _: () = assert!(
    <SqliteStore as SmsSender>::MARKS_DONE == <MemoryStore as SmsSender>::MARKS_DONE
        && <SqliteStore as CommandBus>::MARKS_DONE == <MemoryStore as CommandBus>::MARKS_DONE
);

#[derive(Debug, Clone)]
pub enum SimStore {
    Memory(MemoryStore),
    Sqlite(SqliteStore),
}

/// Calls the same method on whichever store this is.
macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            SimStore::Memory($s) => $call,
            SimStore::Sqlite($s) => $call,
        }
    };
}

impl SimStore {
    pub fn name(&self) -> &'static str {
        match self {
            SimStore::Memory(_) => "memory",
            SimStore::Sqlite(_) => "sqlite",
        }
    }
    pub async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        each!(self, s => EmbeddedStore::next_due_at(s).await)
    }
    pub async fn due_timers(&self, upto: DateTime<Utc>, limit: usize) -> Result<Vec<TimerSpec>, StoreError> {
        each!(self, s => EmbeddedStore::due_timers(s, upto, limit).await)
    }
    pub async fn remove_timer(&self, name: &str) -> Result<(), StoreError> {
        each!(self, s => EmbeddedStore::remove_timer(s, name).await)
    }
    pub async fn timers(&self) -> Result<Vec<TimerSpec>, StoreError> {
        each!(self, s => EmbeddedStore::timers(s).await)
    }
    pub async fn sms_outbox(&self) -> Result<Vec<Sms>, StoreError> {
        each!(self, s => EmbeddedStore::sms_outbox(s).await)
    }
    pub async fn commands(&self) -> Result<Vec<Command>, StoreError> {
        each!(self, s => EmbeddedStore::commands(s).await)
    }
}

impl CaseStore for SimStore {
    async fn locate(&self, subject: &str) -> Result<Option<SubjectKey>, StoreError> {
        each!(self, s => s.locate(subject).await)
    }
    async fn load(&self, key: &SubjectKey) -> Result<Option<Snapshot>, StoreError> {
        each!(self, s => s.load(key).await)
    }
    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        each!(self, s => s.delivery(id).await)
    }
    async fn sms_counts(&self, phones: &[String], day: NaiveDate) -> Result<BTreeMap<String, u32>, StoreError> {
        each!(self, s => s.sms_counts(phones, day).await)
    }
    async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        each!(self, s => s.commit(commit).await)
    }
    fn performs_effects(&self) -> bool {
        each!(self, s => s.performs_effects())
    }
    fn keeps_inputs(&self) -> bool {
        each!(self, s => s.keeps_inputs())
    }
    async fn pending_effects(&self, limit: usize) -> Result<Vec<PendingEffect>, StoreError> {
        each!(self, s => s.pending_effects(limit).await)
    }
    async fn effect_done(&self, id: &str) -> Result<(), StoreError> {
        each!(self, s => s.effect_done(id).await)
    }
    async fn effects_done(&self, ids: &[&str]) -> Result<(), StoreError> {
        each!(self, s => s.effects_done(ids).await)
    }
    async fn subjects_with_prefix(&self, prefix: &str) -> Result<Vec<(String, SubjectKey)>, StoreError> {
        each!(self, s => s.subjects_with_prefix(prefix).await)
    }
    async fn overdue(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<Vec<SubjectKey>, StoreError> {
        each!(self, s => s.overdue(cutoff, limit).await)
    }
}

impl Timers for SimStore {
    async fn place(&self, timer: &TimerSpec) -> Result<(), EffectError> {
        each!(self, s => s.place(timer).await)
    }
    async fn cancel(&self, timer: &TimerRef) -> Result<(), EffectError> {
        each!(self, s => s.cancel(timer).await)
    }
}

impl SmsSender for SimStore {
    const MARKS_DONE: bool = <SqliteStore as SmsSender>::MARKS_DONE;
    async fn send(&self, effect_id: &str, sms: &Sms) -> Result<(), EffectError> {
        each!(self, s => s.send(effect_id, sms).await)
    }
}

impl CommandBus for SimStore {
    const MARKS_DONE: bool = <SqliteStore as CommandBus>::MARKS_DONE;
    async fn publish(&self, effect_id: &str, command: &Command) -> Result<(), EffectError> {
        each!(self, s => s.publish(effect_id, command).await)
    }
}
