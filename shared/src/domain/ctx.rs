//! What one decision accumulates: effects (each also written on its case's timeline) and the
//! intents a playbook leaves for the subject to carry out.

use super::calendar::Calendar;
use super::case::{mask_phone, CaseCore, Customer, PendingTimer, Ticket, TicketResult, TicketStatus, TimelineKind, TimerKind};
use super::commands::{CallCustomer, Command, CommandBody};
use super::effects::{Effect, Sms, TimerRef, TimerSpec};
use super::events::CancelledBy;
use super::policy::Policy;
use super::sms::{self, SmsVars, TemplateId};
use super::snapshot::{Snapshot, SubjectKey, SubjectTimer};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// What a playbook asks of its subject (or, through it, of another playbook); the order or the
/// package carries it out once, after the playbook's handler.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// Cancel the appointment on the dashboard (R0.2, R1.4, R1.6): then R2.1 decides whether a
    /// cancellation follow-up opens, with `wants_follow_up` as for a dashboard cancellation.
    CancelAppointment { appointment_id: String, by: CancelledBy, reason: String, wants_follow_up: bool },
    /// Move the appointment to a new window through the reschedule policy (R1.5 → R7, R3.8).
    MoveAppointment { appointment_id: String, window_start: DateTime<Utc>, window_end: DateTime<Utc>, requested_by: String },
    /// Cancel the package and its open visits (R4.4, or the customer declined it).
    CancelPackage { reason: String },
}

/// An intent with the case that asked for it and where its effects go among the others.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub case_id: String,
    pub intent: Intent,
    pub at_effect: usize,
}

pub struct Ctx<'a> {
    pub now: DateTime<Utc>,
    pub key: SubjectKey,
    pub policy: &'a Policy,
    pub effects: Vec<Effect>,
    pub intents: Vec<Pending>,
    /// Subject ids (`appointment:<id>`, `expiry:<day>:<id>`, `coupon:<code>`) the snapshot newly
    /// answers for; the store keeps each for one snapshot only.
    pub index: Vec<String>,
}

impl<'a> Ctx<'a> {
    pub fn new(now: DateTime<Utc>, key: SubjectKey, policy: &'a Policy) -> Self {
        Ctx { now, key, policy, effects: Vec::new(), intents: Vec::new(), index: Vec::new() }
    }

    pub fn cal(&self) -> &Calendar {
        &self.policy.calendar
    }

    /// Asks the subject to carry out `intent` for this case; its effects take this place.
    pub fn intend(&mut self, case: &CaseCore, intent: Intent) {
        self.intents.push(Pending { case_id: case.case_id.clone(), intent, at_effect: self.effects.len() });
    }

    /// Places a timer for the case's next step.
    pub fn place(&mut self, case: &mut CaseCore, kind: TimerKind, due_at: DateTime<Utc>) {
        case.step += 1;
        let timer = TimerRef { stream: self.key.clone(), case_id: Some(case.case_id.clone()), kind, step: case.step };
        case.note(self.now, TimelineKind::TimerPlaced, format!("{kind} due {}", self.cal().rfc3339(due_at)));
        case.timers.push(PendingTimer { kind, due_at, step: case.step });
        // The playbook that owns the timer is filled in once the decision is complete.
        self.effects.push(Effect::PlaceTimer(TimerSpec { timer, due_at, playbook: None }));
    }

    /// Cancels the case's pending timers of these kinds (all of them when `kinds` is empty).
    pub fn cancel(&mut self, case: &mut CaseCore, kinds: &[TimerKind]) {
        let (gone, kept): (Vec<_>, Vec<_>) = case.timers.drain(..).partition(|t| kinds.is_empty() || kinds.contains(&t.kind));
        case.timers = kept;
        for t in gone {
            case.note(self.now, TimelineKind::TimerCancelled, format!("{} due {}", t.kind, self.cal().rfc3339(t.due_at)));
            self.effects.push(Effect::CancelTimer(TimerRef {
                stream: self.key.clone(),
                case_id: Some(case.case_id.clone()),
                kind: t.kind,
                step: t.step,
            }));
        }
    }

    /// Places a timer on the snapshot's subject (no case yet, or none at all).
    pub fn place_subject(&mut self, snapshot: &mut Snapshot, subject_id: &str, kind: TimerKind, due_at: DateTime<Utc>) {
        snapshot.timer_seq += 1;
        let step = snapshot.timer_seq;
        snapshot.timers.push(SubjectTimer { subject_id: subject_id.to_string(), timer: PendingTimer { kind, due_at, step } });
        self.effects.push(Effect::PlaceTimer(TimerSpec {
            timer: TimerRef { stream: self.key.clone(), case_id: None, kind, step },
            due_at,
            playbook: None,
        }));
    }

    /// Cancels the subject's pending timers of these kinds (all of them when `kinds` is empty).
    pub fn cancel_subject(&mut self, snapshot: &mut Snapshot, subject_id: &str, kinds: &[TimerKind]) {
        let (gone, kept): (Vec<_>, Vec<_>) =
            snapshot.timers.drain(..).partition(|t| t.subject_id == subject_id && (kinds.is_empty() || kinds.contains(&t.timer.kind)));
        snapshot.timers = kept;
        for t in gone {
            self.effects.push(Effect::CancelTimer(TimerRef {
                stream: self.key.clone(),
                case_id: None,
                kind: t.timer.kind,
                step: t.timer.step,
            }));
        }
    }

    /// A command about the case.
    pub fn command(&mut self, case: &mut CaseCore, body: CommandBody) {
        case.note(self.now, TimelineKind::Command, format!("{} {}", body.kind(), body.data()));
        self.effects.push(Effect::Emit(Command { body, case_id: Some(case.case_id.clone()), at: self.now }));
    }

    /// A command that acts on a subject rather than a case (`case_id` null, R6).
    pub fn subject_command(&mut self, body: CommandBody) {
        self.effects.push(Effect::Emit(Command { body, case_id: None, at: self.now }));
    }

    /// The call task of SPEC §2, due now: `task` carries what this playbook adds to it.
    pub fn call_task(&mut self, case: &mut CaseCore, reason: impl Into<String>, task: CallCustomer) {
        let body = CallCustomer {
            subject: case.subject(),
            phone: case.customer.phone.clone(),
            customer_name: case.customer.name.clone(),
            reason: reason.into(),
            due: self.cal().rfc3339(self.now),
            ..task
        };
        self.command(case, CommandBody::CallCustomer(body));
    }

    pub fn sms(&mut self, case: &mut CaseCore, template: TemplateId, vars: &SmsVars) {
        let customer = case.customer.clone();
        match self.render(&customer, template, vars, Some(case.case_id.clone())) {
            Ok(sms) => {
                case.note(self.now, TimelineKind::Sms, format!("{template} to {} ({} segments)", mask_phone(&sms.to), sms.segments));
                self.effects.push(Effect::SendSms(sms));
            }
            // A template missing a variable is a bug in a playbook; it is written on the
            // timeline so the case shows it, rather than failing the customer's webhook.
            Err(e) => case.note(self.now, TimelineKind::SmsFailed, e.to_string()),
        }
    }

    /// An SMS about a subject rather than a case (`case_id` null, R6 / R7.3).
    pub fn subject_sms(&mut self, customer: &Customer, template: TemplateId, vars: &SmsVars) -> Result<(), sms::RenderError> {
        let sms = self.render(customer, template, vars, None)?;
        self.effects.push(Effect::SendSms(sms));
        Ok(())
    }

    fn render(&self, customer: &Customer, template: TemplateId, vars: &SmsVars, case_id: Option<String>) -> Result<Sms, sms::RenderError> {
        let (language, body) = sms::render(template, customer.language, vars, &self.policy.sms.hotline)?;
        Ok(Sms { to: customer.phone.clone(), template, language, segments: sms::segments(&body), body, case_id, at: self.now })
    }

    /// Changes the ticket and writes what changed on the timeline.
    pub fn ticket(&mut self, case: &mut CaseCore, change: impl FnOnce(&mut Ticket)) {
        let before = case.ticket.clone();
        change(&mut case.ticket);
        let after = &case.ticket;
        let mut diffs = Vec::new();
        if before.status != after.status {
            diffs.push(format!("status {} → {}", wire_name(&before.status), wire_name(&after.status)));
        }
        if before.priority != after.priority {
            diffs.push(format!("priority {} → {}", wire_name(&before.priority), wire_name(&after.priority)));
        }
        if before.group != after.group {
            diffs.push(format!("group {} → {}", wire_name(&before.group), wire_name(&after.group)));
        }
        if before.result != after.result {
            diffs.push(format!("result {}", after.result.map_or("none", TicketResult::as_str)));
        }
        if before.resolution_due != after.resolution_due {
            diffs.push(format!("resolution_due {}", after.resolution_due.map(|d| self.cal().rfc3339(d)).unwrap_or_else(|| "none".into())));
        }
        if !diffs.is_empty() {
            case.note(self.now, TimelineKind::Ticket, diffs.join(", "));
        }
    }

    /// Ends the case's ticket: every timer cancelled, `status` with `result`.
    pub fn finish(&mut self, case: &mut CaseCore, status: TicketStatus, result: TicketResult) {
        self.cancel(case, &[]);
        self.ticket(case, |t| {
            t.status = status;
            t.result = Some(result);
        });
    }

    /// Writes a decision on the case's timeline.
    pub fn decided(&self, case: &mut CaseCore, detail: impl Into<String>) {
        case.note(self.now, TimelineKind::Decision, detail);
    }
}

/// The wire name of a serde enum value (`waiting_on_customer`), for timeline text.
pub fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(Value::Object(o)) => o.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned(),
        _ => String::new(),
    }
}
