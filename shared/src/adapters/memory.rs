//! An in-memory adapter of every port: case store, timers and outboxes in one process's memory.
//!
//! Nothing survives the process, so no runtime that answers a webhook uses it; it is for whatever
//! runs the engine through many inputs in one process and needs the store's rules, not its
//! durability (the month simulation, tests). It keeps the rules the contract suite holds SQLite
//! and DynamoDB to: a commit is conditional on the stream's version, on the delivery being new,
//! on each subject being free and on each daily SMS count holding what it was decided with, and
//! writes all of it or nothing; the subject index answers prefix ranges and the due index
//! answers overdue snapshots without a scan; timers fire by due millisecond, then placement.

use super::embedded::EmbeddedStore;
use crate::domain::effects::{Command, Sms, TimerRef, TimerSpec};
use crate::domain::subjects::snapshot::{Snapshot, SubjectKey};
use crate::ports::{CaseStore, CommandBus, Commit, CommitError, Delivery, EffectError, PendingEffect, SmsSender, StoreError, Timers};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Every port over one shared state; clones share it.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    streams: HashMap<SubjectKey, Stored>,
    /// (earliest pending timer in epoch ms, stream) of every snapshot waiting on one.
    due: BTreeSet<(i64, SubjectKey)>,
    deliveries: HashMap<String, Delivery>,
    /// Subject → stream, in subject order for prefix ranges.
    subjects: BTreeMap<String, SubjectKey>,
    sms_daily: HashMap<(String, NaiveDate), u32>,
    /// Pending effects by commit order, and each one's place in it.
    pending: BTreeMap<u64, PendingEffect>,
    pending_seq: HashMap<String, u64>,
    timers: Timetable,
    sms_outbox: Outbox<Sms>,
    command_outbox: Outbox<Command>,
    seq: u64,
}

#[derive(Debug)]
struct Stored {
    snapshot: Snapshot,
    /// Its key in `State::due`, if it waits on a timer.
    due_ms: Option<i64>,
}

/// Timers by name, and their firing order: due millisecond, then placement.
#[derive(Debug, Default)]
struct Timetable {
    by_name: HashMap<String, (i64, u64, TimerSpec)>,
    order: BTreeMap<(i64, u64), String>,
}

/// What an outbox delivered, once per effect id, in delivery order.
#[derive(Debug)]
struct Outbox<T> {
    delivered: HashSet<String>,
    items: Vec<T>,
}

impl<T> Default for Outbox<T> {
    fn default() -> Self {
        Outbox { delivered: HashSet::new(), items: Vec::new() }
    }
}

impl<T> Outbox<T> {
    /// Appends unless this effect was already delivered here.
    fn append(&mut self, effect_id: &str, item: T) {
        if self.delivered.insert(effect_id.to_owned()) {
            self.items.push(item);
        }
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every write checks before it changes anything, so a panicking holder left no half-write.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn mark_done(&mut self, id: &str) {
        if let Some(seq) = self.pending_seq.remove(id) {
            self.pending.remove(&seq);
        }
    }

    /// Every condition of `commit`, checked before anything is written, in SQLite's order.
    fn check(&self, commit: &Commit, key: &SubjectKey) -> Result<(), CommitError> {
        if let Some(existing) = self.deliveries.get(&commit.delivery.id) {
            return Err(CommitError::DuplicateDelivery(existing.clone()));
        }
        if self.streams.get(key).map(|s| s.snapshot.version) != commit.expected_version {
            return Err(CommitError::Conflict);
        }
        for c in &commit.sms_counts {
            if self.sms_daily.get(&(c.phone.clone(), c.day)).copied().unwrap_or(0) != c.held {
                return Err(CommitError::Conflict);
            }
        }
        for subject in &commit.index {
            match self.subjects.get(subject) {
                Some(other) if other != key => return Err(CommitError::SubjectTaken(subject.clone())),
                _ => {}
            }
        }
        Ok(())
    }

    fn write(&mut self, commit: Commit) {
        let Commit { stream, delivery, index, effects, sms_counts, .. } = commit;
        let key = stream.key.clone();
        for subject in index {
            self.subjects.entry(subject).or_insert_with(|| key.clone());
        }
        for c in sms_counts {
            self.sms_daily.insert((c.phone, c.day), c.count);
        }
        for effect in effects {
            let seq = self.next_seq();
            self.pending_seq.insert(effect.id.clone(), seq);
            self.pending.insert(seq, effect);
        }
        self.deliveries.insert(delivery.id.clone(), delivery);
        let due_ms = stream.next_due().map(|d| d.timestamp_millis());
        let before = self.streams.insert(key.clone(), Stored { snapshot: stream, due_ms });
        match before.and_then(|b| b.due_ms) {
            Some(ms) if Some(ms) == due_ms => return,
            Some(ms) => {
                self.due.remove(&(ms, key.clone()));
            }
            None => {}
        }
        if let Some(ms) = due_ms {
            self.due.insert((ms, key));
        }
    }
}

impl CaseStore for MemoryStore {
    async fn locate(&self, subject: &str) -> Result<Option<SubjectKey>, StoreError> {
        Ok(self.state().subjects.get(subject).cloned())
    }

    async fn load(&self, key: &SubjectKey) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.state().streams.get(key).map(|s| s.snapshot.clone()))
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        Ok(self.state().deliveries.get(id).cloned())
    }

    async fn sms_counts(&self, phones: &[String], day: NaiveDate) -> Result<BTreeMap<String, u32>, StoreError> {
        let state = self.state();
        Ok(phones.iter().filter_map(|p| state.sms_daily.get(&(p.clone(), day)).map(|n| (p.clone(), *n))).collect())
    }

    async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        let mut state = self.state();
        let key = commit.stream.key.clone();
        state.check(&commit, &key)?;
        state.write(commit);
        Ok(())
    }

    async fn pending_effects(&self, limit: usize) -> Result<Vec<PendingEffect>, StoreError> {
        Ok(self.state().pending.values().take(limit).cloned().collect())
    }

    async fn effect_done(&self, id: &str) -> Result<(), StoreError> {
        self.state().mark_done(id);
        Ok(())
    }

    async fn effects_done(&self, ids: &[&str]) -> Result<(), StoreError> {
        let mut state = self.state();
        ids.iter().for_each(|id| state.mark_done(id));
        Ok(())
    }

    async fn subjects_with_prefix(&self, prefix: &str) -> Result<Vec<(String, SubjectKey)>, StoreError> {
        let state = self.state();
        let from = state.subjects.range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded));
        Ok(from.take_while(|(s, _)| s.starts_with(prefix)).map(|(s, k)| (s.clone(), k.clone())).collect())
    }

    async fn overdue(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<Vec<SubjectKey>, StoreError> {
        let cutoff = cutoff.timestamp_millis();
        Ok(self.state().due.iter().take_while(|(ms, _)| *ms <= cutoff).take(limit).map(|(_, k)| k.clone()).collect())
    }
}

impl Timers for MemoryStore {
    async fn place(&self, timer: &TimerSpec) -> Result<(), EffectError> {
        let mut state = self.state();
        let name = timer.timer.name();
        if state.timers.by_name.contains_key(&name) {
            return Ok(());
        }
        let (due_ms, seq) = (timer.due_at.timestamp_millis(), state.next_seq());
        state.timers.order.insert((due_ms, seq), name.clone());
        state.timers.by_name.insert(name, (due_ms, seq, timer.clone()));
        Ok(())
    }

    async fn cancel(&self, timer: &TimerRef) -> Result<(), EffectError> {
        self.state().timers.remove(&timer.name());
        Ok(())
    }
}

impl Timetable {
    fn remove(&mut self, name: &str) {
        if let Some((due_ms, seq, _)) = self.by_name.remove(name) {
            self.order.remove(&(due_ms, seq));
        }
    }

    fn in_order(&self) -> impl Iterator<Item = &TimerSpec> {
        self.order.values().map(|name| &self.by_name[name].2)
    }
}

/// Sent and done are one fact here, as in the SQLite outbox.
impl SmsSender for MemoryStore {
    const MARKS_DONE: bool = true;
    async fn send(&self, effect_id: &str, sms: &Sms) -> Result<(), EffectError> {
        let mut state = self.state();
        state.sms_outbox.append(effect_id, sms.clone());
        state.mark_done(effect_id);
        Ok(())
    }
}

impl CommandBus for MemoryStore {
    const MARKS_DONE: bool = true;
    async fn publish(&self, effect_id: &str, command: &Command) -> Result<(), EffectError> {
        let mut state = self.state();
        state.command_outbox.append(effect_id, command.clone());
        state.mark_done(effect_id);
        Ok(())
    }
}

impl EmbeddedStore for MemoryStore {
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let state = self.state();
        let Some(((first_ms, _), _)) = state.timers.order.first_key_value() else { return Ok(None) };
        // Ordered by millisecond: the exact earliest is among that millisecond's timers.
        let same_ms = state.timers.in_order().take_while(|t| t.due_at.timestamp_millis() == *first_ms);
        Ok(same_ms.map(|t| t.due_at).min())
    }

    async fn due_timers(&self, upto: DateTime<Utc>, limit: usize) -> Result<Vec<TimerSpec>, StoreError> {
        let (state, upto_ms) = (self.state(), upto.timestamp_millis());
        let in_range = state.timers.in_order().take_while(|t| t.due_at.timestamp_millis() <= upto_ms);
        Ok(in_range.filter(|t| t.due_at <= upto).take(limit).cloned().collect())
    }

    async fn remove_timer(&self, name: &str) -> Result<(), StoreError> {
        self.state().timers.remove(name);
        Ok(())
    }

    async fn timers(&self) -> Result<Vec<TimerSpec>, StoreError> {
        Ok(self.state().timers.in_order().cloned().collect())
    }

    async fn sms_outbox(&self) -> Result<Vec<Sms>, StoreError> {
        Ok(self.state().sms_outbox.items.clone())
    }

    async fn commands(&self) -> Result<Vec<Command>, StoreError> {
        Ok(self.state().command_outbox.items.clone())
    }
}
