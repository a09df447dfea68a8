//! What an embedded store offers beside the ports: its timer table and outboxes, read back by
//! whatever drives it in-process (the month simulation's clock, the contract suite).
//!
//! On AWS a timer is a Scheduler schedule and fires by itself; an embedded store keeps its timers
//! in a table of its own, and its driver asks which are due.

use crate::domain::effects::{Command, Sms, TimerSpec};
use crate::ports::StoreError;
use chrono::{DateTime, Utc};
use std::future::Future;

/// The timer table and outboxes of a store that is its own timers and outboxes.
pub trait EmbeddedStore: Send + Sync + 'static {
    /// When the earliest timer falls due.
    fn next_due_at(&self) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send;
    /// Up to `limit` timers due at or before `upto` (exactly), earliest first; timers due within
    /// the same millisecond come in the order they were placed.
    fn due_timers(&self, upto: DateTime<Utc>, limit: usize) -> impl Future<Output = Result<Vec<TimerSpec>, StoreError>> + Send;
    /// Forgets a timer once it has fired; absent is fine.
    fn remove_timer(&self, name: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every pending timer, in firing order.
    fn timers(&self) -> impl Future<Output = Result<Vec<TimerSpec>, StoreError>> + Send;
    /// Every SMS sent, in send order.
    fn sms_outbox(&self) -> impl Future<Output = Result<Vec<Sms>, StoreError>> + Send;
    /// Every command published, in emit order.
    fn commands(&self) -> impl Future<Output = Result<Vec<Command>, StoreError>> + Send;
}
