//! The team lead's console read model: what the console lists of each case, the SLA deadlines and
//! their breaches, and the SMS the customer protection stopped — projected from a snapshot at
//! each commit, read back through [`ConsoleReads`].
//!
//! Everything here is derived from what the domain records: a case's pending timers, its
//! timeline (a call task is a `call_customer` command line; a breach is an SLA timer's `fired`
//! line followed by the decision's command or SMS), and the ticket. Nothing new is decided.

use crate::domain::ctx::DAILY_CAP;
use crate::domain::effects::Sms;
use crate::domain::playbooks::Case;
use crate::domain::records::case::{Group, PlaybookName, Priority, TicketStatus, TimelineEntry, TimelineKind, TimerKind};
use crate::domain::subjects::snapshot::Snapshot;
use crate::ports::StoreError;
use chrono::{DateTime, Utc};

/// The SLA and deadline timers of R9.4 with the rule each enforces (R0.1, R0.2, R1.4, R3.2, R3.3,
/// R4.4's 21:00, R5.4): each falls at its exact instant, and passing it is a breach.
pub const SLA_TIMERS: [(TimerKind, &str); 7] = [
    (TimerKind::StatusUpdate, "R0.1"),
    (TimerKind::AutoCancel, "R0.2"),
    (TimerKind::OutreachCancel, "R1.4"),
    (TimerKind::FirstCallSla, "R3.2"),
    (TimerKind::CostSla, "R3.3"),
    (TimerKind::PaymentDeadline, "R4.4"),
    (TimerKind::ExpiryDeactivate, "R5.4"),
];

/// The rule an SLA or deadline timer enforces; `None` for every other timer.
pub fn sla_rule(kind: TimerKind) -> Option<&'static str> {
    SLA_TIMERS.iter().find(|(k, _)| *k == kind).map(|(_, rule)| *rule)
}

/// One case as the console lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseRow {
    pub case_id: String,
    pub stream_key: String,
    pub playbook: PlaybookName,
    pub state: String,
    pub status: TicketStatus,
    pub priority: Priority,
    pub area: String,
    pub group: Group,
    pub customer_name: String,
    pub opened_at: DateTime<Utc>,
    /// The call task that went out and whose report has not come (SPEC §2, R9.1): when it was due.
    pub task_due: Option<DateTime<Utc>>,
}

/// A pending SLA or deadline timer of a case or of a snapshot's subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Deadline {
    pub stream_key: String,
    /// `None` for a subject's own timer (R0.1 before a watch case exists, R5.4).
    pub case_id: Option<String>,
    /// What a subject timer is about (`appointment:<id>`, `package:<id>`); `None` on a case's.
    pub subject: Option<String>,
    pub kind: TimerKind,
    pub step: u32,
    pub due_at: DateTime<Utc>,
}

/// An SLA or deadline that passed with its guard still holding: the timer fired and the decision
/// acted on it (escalated, cancelled, sent the status SMS).
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    pub case_id: String,
    /// The index of the `fired` line on the case's timeline: with the case, the breach's identity.
    pub line: u32,
    pub kind: TimerKind,
    pub at: DateTime<Utc>,
    /// What the decision did, as the timeline says it (its first command or SMS line).
    pub action: String,
}

crate::named_enum! {
    /// SPEC §4 (v2) why an SMS did not go out when it was decided.
    pub enum SmsStop {
        /// A promotional template outside its hours: it waits for the next allowed time.
        Held = "held",
        /// The number is on the suppression list.
        Suppressed = "suppressed",
        /// (v3) The number's daily cap was reached.
        Capped = "capped",
    }
}

/// An SMS the customer protection held or stopped, as the case's timeline records it (or the
/// subject's, for an SMS about no case: an R2.3 coupon without a follow-up, R6, R7.3).
#[derive(Debug, Clone, PartialEq)]
pub struct StoppedSms {
    /// The record whose timeline says it: the case id, or the subject's stream key (`order:O-6`).
    pub case_id: String,
    pub line: u32,
    pub at: DateTime<Utc>,
    pub stop: SmsStop,
    /// The template id, the first word of the line.
    pub template: String,
    pub detail: String,
}

/// What one snapshot adds to the console's read model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    pub cases: Vec<CaseRow>,
    pub deadlines: Vec<Deadline>,
    pub breaches: Vec<Breach>,
    pub stopped: Vec<StoppedSms>,
}

/// The console's read model of a snapshot.
pub fn project(snapshot: &Snapshot) -> Projection {
    let stream_key = snapshot.key.to_string();
    let mut p = Projection::default();
    for case in &snapshot.cases {
        p.cases.push(CaseRow {
            case_id: case.case_id.clone(),
            stream_key: stream_key.clone(),
            playbook: case.playbook(),
            state: case.state().to_string(),
            status: case.ticket.status,
            priority: case.ticket.priority,
            area: case.ticket.area.clone(),
            group: case.ticket.group,
            customer_name: case.customer.name.clone(),
            opened_at: case.opened_at,
            task_due: outstanding_task(case),
        });
        for t in case.timers.iter().filter(|t| sla_rule(t.kind).is_some()) {
            p.deadlines.push(Deadline {
                stream_key: stream_key.clone(),
                case_id: Some(case.case_id.clone()),
                subject: None,
                kind: t.kind,
                step: t.step,
                due_at: t.due_at,
            });
        }
        p.breaches.extend(breaches(case));
        p.stopped.extend(stopped(&case.case_id, &case.timeline));
    }
    p.stopped.extend(stopped(&stream_key, snapshot.subject.timeline()));
    for t in snapshot.timers.iter().filter(|t| sla_rule(t.timer.kind).is_some()) {
        p.deadlines.push(Deadline {
            stream_key: stream_key.clone(),
            case_id: None,
            subject: Some(t.subject_id.to_string()),
            kind: t.timer.kind,
            step: t.timer.step,
            due_at: t.timer.due_at,
        });
    }
    p
}

/// SPEC §2 the call task that went out last, while no report (R9.1: nor a lapse) has come after
/// it and the ticket still needs work: when it was due.
pub fn outstanding_task(case: &Case) -> Option<DateTime<Utc>> {
    if !case.ticket.is_open() {
        return None;
    }
    for line in case.timeline.iter().rev() {
        match line.kind {
            TimelineKind::Command if line.detail.starts_with("call_customer ") => return Some(line.at),
            TimelineKind::Call => return None,
            TimelineKind::Decision if line.detail.starts_with("R9.1 attempt") => return None,
            _ => {}
        }
    }
    None
}

/// R9.4 the SLA timers of the case that fired and were acted on.
fn breaches(case: &Case) -> Vec<Breach> {
    let lines = &case.timeline;
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate().filter(|(_, l)| l.kind == TimelineKind::Timer) {
        let Some(kind) = line.detail.strip_suffix(" fired").and_then(|k| k.parse::<TimerKind>().ok()) else { continue };
        if sla_rule(kind).is_none() {
            continue;
        }
        // The decision the firing made: the lines after it at the same instant, up to the next input.
        let action = lines[i + 1..]
            .iter()
            .take_while(|l| l.at == line.at && !matches!(l.kind, TimelineKind::Timer | TimelineKind::Event | TimelineKind::Call))
            .find(|l| matches!(l.kind, TimelineKind::Command | TimelineKind::Sms | TimelineKind::SmsHeld | TimelineKind::SmsSuppressed));
        if let Some(action) = action {
            let line = u32::try_from(i).unwrap_or(u32::MAX);
            found.push(Breach { case_id: case.case_id.clone(), line, kind, at: case.timeline[i].at, action: action.detail.clone() });
        }
    }
    found
}

/// SPEC §4 the SMS the protection held or stopped, as one record's timeline says them.
fn stopped(record: &str, timeline: &[TimelineEntry]) -> Vec<StoppedSms> {
    let mut found = Vec::new();
    for (i, line) in timeline.iter().enumerate() {
        let stop = match line.kind {
            TimelineKind::SmsHeld => SmsStop::Held,
            // The domain words a cap stop with the cap it reached (`ctx::gate`).
            TimelineKind::SmsSuppressed if line.detail.contains(DAILY_CAP) => SmsStop::Capped,
            TimelineKind::SmsSuppressed => SmsStop::Suppressed,
            _ => continue,
        };
        found.push(StoppedSms {
            case_id: record.to_owned(),
            line: u32::try_from(i).unwrap_or(u32::MAX),
            at: line.at,
            stop,
            template: line.detail.split_whitespace().next().unwrap_or_default().to_string(),
            detail: line.detail.clone(),
        });
    }
    found
}

/// The case list's filters; each is an exact match, `None` matches all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseFilter {
    pub playbook: Option<PlaybookName>,
    pub state: Option<String>,
    pub status: Option<TicketStatus>,
    pub area: Option<String>,
    /// At most this many, the newest first.
    pub limit: usize,
}

/// What the console asks of a store. Each answer comes from an index, never a scan of every case:
/// the SQLite adapter keeps one (`console_*` tables, written in each commit); docs/dynamodb.md
/// designs the DynamoDB one.
#[allow(async_fn_in_trait)]
pub trait ConsoleReads {
    /// Cases with a call task outstanding that fell due at or before `upto`, the earliest first.
    async fn call_tasks(&self, upto: DateTime<Utc>, limit: usize) -> Result<Vec<CaseRow>, StoreError>;
    /// Pending SLA and deadline timers due in `[from, to)`, the earliest first.
    async fn deadlines(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Result<Vec<Deadline>, StoreError>;
    /// Breaches at or after `since`, the latest first.
    async fn breaches(&self, since: DateTime<Utc>, limit: usize) -> Result<Vec<Breach>, StoreError>;
    /// Cases matching the filter, the newest first.
    async fn find_cases(&self, filter: &CaseFilter) -> Result<Vec<CaseRow>, StoreError>;
    /// SMS sent in `[from, to)`, in send order.
    async fn sms_sent(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Sms>, StoreError>;
    /// SMS of one case, in send order.
    async fn sms_of_case(&self, case_id: &str) -> Result<Vec<Sms>, StoreError>;
    /// SMS held or stopped in `[from, to)`, in time order.
    async fn sms_stopped(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<StoppedSms>, StoreError>;
}
