//! What the what-if report and the capacity figures read beyond the month's totals, noted as the
//! ports and the inputs run: when each AWS call happened (per virtual second), call tasks and
//! SMS by local hour, attempts per case, the customers reached, and the SMS the customer
//! protection held, capped or suppressed (SPEC §4 v2).

use super::clock::NOW;
use chrono::{DateTime, Utc};
use followup::domain::commands::CommandBody;
use followup::domain::effects::Command;
use followup::domain::records::case::{TimelineEntry, TimelineKind};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The AWS calls whose per-second peak is held to a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rate {
    /// EventBridge Scheduler `CreateSchedule` (a timer placed).
    CreateSchedule,
    /// Scheduler invoking its target (a timer firing).
    SchedulerInvocation,
    /// SNS `Publish` to the ops topic (a command).
    SnsPublish,
    /// An SMS handed to SNS.
    SmsSend,
}

/// How an SMS the playbook asked for went (SPEC §4 v2).
#[derive(Debug, Clone, Copy)]
pub enum SmsFate {
    Held,
    Capped,
    Suppressed,
}

/// What the month noted, beside the meter's totals.
#[derive(Debug, Default)]
pub struct Observed {
    /// (rate, virtual second) → calls in that second.
    per_second: HashMap<(Rate, i64), u32>,
    /// Virtual second → milliseconds of handler time started in it (Lambda concurrency, by
    /// Little's law: the work of a second over the second).
    lambda_ms: HashMap<i64, f64>,
    /// Stream key → (second, write units in it) of its latest second, and the busiest any stream had.
    stream_units: HashMap<String, (i64, u64)>,
    pub peak_stream_units: (u64, String, i64),
    /// Virtual second → write units the `pending` GSI's one partition took.
    pending_gsi_units: HashMap<i64, u64>,
    /// Schedules placed (+1) and gone (-1, fired or deleted), by virtual second.
    live_delta: HashMap<i64, i64>,
    /// Due instant of every call task published.
    pub call_tasks: Vec<DateTime<Utc>>,
    /// Instant of every SMS sent.
    pub sms_sent: Vec<DateTime<Utc>>,
    /// Call tasks per case.
    pub attempts: HashMap<String, u32>,
    /// Cases whose customer answered at least once.
    pub reached: HashSet<String>,
    /// Template → (held, capped, suppressed).
    pub sms_stops: BTreeMap<String, (u64, u64, u64)>,
    /// `cancel_order` published by a cancellation follow-up (R2.6: the customer never reached).
    pub cancelled_unreached: u64,
}

/// The virtual instant of the input being decided on this task.
fn now() -> Option<DateTime<Utc>> {
    NOW.try_with(|t| *t).ok()
}

impl Observed {
    /// One AWS call of `rate`, now.
    pub fn call(&mut self, rate: Rate) {
        if let Some(at) = now() {
            *self.per_second.entry((rate, at.timestamp())).or_default() += 1;
        }
    }

    /// An SMS handed to SNS, now.
    pub fn sms_sent(&mut self) {
        self.call(Rate::SmsSend);
        if let Some(at) = now() {
            self.sms_sent.push(at);
        }
    }

    /// A command published to the ops topic, now, by a case of `playbook`.
    pub fn command(&mut self, command: &Command, playbook: Option<&str>) {
        self.call(Rate::SnsPublish);
        match (&command.body, &command.case_id) {
            (CommandBody::CallCustomer(c), Some(case_id)) => {
                let due = DateTime::parse_from_rfc3339(&c.due).map_or(command.at, |d| d.with_timezone(&Utc)).max(command.at);
                self.call_tasks.push(due);
                *self.attempts.entry(case_id.clone()).or_default() += 1;
            }
            (CommandBody::CancelOrder(_), Some(_)) if playbook == Some("cancellation_follow_up") => self.cancelled_unreached += 1,
            _ => {}
        }
    }

    /// A timer fired at `at` (its schedule invoked, and gone).
    pub fn fired(&mut self, at: DateTime<Utc>) {
        *self.per_second.entry((Rate::SchedulerInvocation, at.timestamp())).or_default() += 1;
        *self.live_delta.entry(at.timestamp()).or_default() -= 1;
    }

    /// A schedule created (+1) or deleted (-1), now.
    pub fn schedule(&mut self, delta: i64) {
        if let Some(at) = now() {
            *self.live_delta.entry(at.timestamp()).or_default() += delta;
        }
    }

    /// A handler ran `ms` from `at`.
    pub fn lambda(&mut self, at: DateTime<Utc>, ms: f64) {
        *self.lambda_ms.entry(at.timestamp()).or_default() += ms;
    }

    /// A commit's transaction wrote `units` to the stream item `key` and `pending` to the
    /// `pending` GSI.
    pub fn write(&mut self, key: &str, units: u64, pending: u64) {
        let Some(at) = now().map(|t| t.timestamp()) else { return };
        let slot = self.stream_units.entry(key.to_owned()).or_insert((at, 0));
        if slot.0 != at {
            *slot = (at, 0);
        }
        slot.1 += units;
        if slot.1 > self.peak_stream_units.0 {
            self.peak_stream_units = (slot.1, key.to_owned(), at);
        }
        if pending > 0 {
            *self.pending_gsi_units.entry(at).or_default() += pending;
        }
    }

    /// New timeline lines of a case: the SMS the protection held, capped or suppressed.
    pub fn timeline(&mut self, lines: &[TimelineEntry]) {
        for line in lines {
            let fate = match line.kind {
                TimelineKind::SmsHeld => SmsFate::Held,
                TimelineKind::SmsSuppressed if line.detail.contains(followup::domain::ctx::DAILY_CAP) => SmsFate::Capped,
                TimelineKind::SmsSuppressed => SmsFate::Suppressed,
                _ => continue,
            };
            // "<TEMPLATE> to <number> …": the template is the line's first word.
            let template = line.detail.split_whitespace().next().unwrap_or("").to_owned();
            let stops = self.sms_stops.entry(template).or_default();
            match fate {
                SmsFate::Held => stops.0 += 1,
                SmsFate::Capped => stops.1 += 1,
                SmsFate::Suppressed => stops.2 += 1,
            }
        }
    }

    /// The busiest second of a rate: (calls, the second).
    pub fn peak(&self, rate: Rate) -> (u64, i64) {
        self.per_second
            .iter()
            .filter(|((r, _), _)| *r == rate)
            .map(|((_, s), n)| (u64::from(*n), *s))
            .max_by_key(|(n, s)| (*n, -s))
            .unwrap_or((0, 0))
    }

    /// The busiest second of Lambda work: (concurrent executions, the second).
    pub fn peak_lambda(&self) -> (f64, i64) {
        self.lambda_ms.iter().map(|(s, ms)| (ms / 1000.0, *s)).fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a })
    }

    /// The busiest second of the `pending` GSI's partition: (write units, the second).
    pub fn peak_pending_gsi(&self) -> (u64, i64) {
        self.pending_gsi_units.iter().map(|(s, u)| (*u, *s)).max_by_key(|(u, s)| (*u, -s)).unwrap_or((0, 0))
    }

    /// The most schedules alive at once, and when.
    pub fn peak_live_schedules(&self) -> (u64, i64) {
        let mut seconds: Vec<(&i64, &i64)> = self.live_delta.iter().collect();
        seconds.sort();
        let (mut live, mut peak) = (0i64, (0u64, 0i64));
        for (s, d) in seconds {
            live += d;
            if live.max(0) as u64 > peak.0 {
                peak = (live as u64, *s);
            }
        }
        peak
    }
}
