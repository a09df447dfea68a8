//! What one decision accumulates: effects (each also written on its case's timeline) and the
//! intents a playbook leaves for the subject to carry out.

use crate::domain::calendar::Calendar;
use crate::domain::commands::{CallCustomer, Command, CommandBody, PackageCancelReason};
use crate::domain::effects::{Effect, Sms};
use crate::domain::events::CancelledBy;
use crate::domain::ids::{SubjectId, SubjectKey, TimerSubject};
use crate::domain::policy::Policy;
use crate::domain::records::case::{
    mask_phone, CaseCore, Customer, PendingTimer, Ticket, TicketResult, TicketStatus, TimelineEntry, TimelineKind, TimerKind,
};
use crate::domain::sms::{self, SmsVars, TemplateId};
use crate::domain::timers::{SubjectTimer, SubjectTimers, TimerRef, TimerSpec};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The words of an `sms_suppressed` timeline line that the per-number daily cap (v3) stopped: the
/// console tells a capped SMS from a suppressed number by them, stored cases keep them.
pub const DAILY_CAP: &str = "daily cap";

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
    CancelPackage { reason: PackageCancelReason },
}

/// An intent with the case that asked for it and where its effects go among the others.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub case_id: String,
    pub intent: Intent,
    pub at_effect: usize,
}

/// SPEC §4 (v3) what the store holds of the per-number daily SMS cap: the count of each number
/// a decision asked about, on one local day. A number not in it is read and the input decided
/// again (`Decision::sms_unknown`), so an input that sends no SMS reads no counter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmsLedger {
    pub day: Option<NaiveDate>,
    pub counts: BTreeMap<String, u32>,
}

/// One number's daily count as a decision leaves it: written in the decision's commit on the
/// condition that the store still holds `held`, so two decisions sending to one number at once
/// cannot both pass the cap (the loser decides again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsCount {
    pub phone: String,
    pub day: NaiveDate,
    pub held: u32,
    pub count: u32,
}

pub struct Ctx<'a> {
    /// When the input arrived: every effect and timeline line is at this time.
    pub now: DateTime<Utc>,
    /// R9.7 (v3) when the input happened (`occurred_at`; a fired timer's is `now`): the rules
    /// that count from an event count from here.
    pub occurred: DateTime<Utc>,
    pub key: SubjectKey,
    pub policy: &'a Policy,
    pub effects: Vec<Effect>,
    pub intents: Vec<Pending>,
    /// Subject ids (`appointment:<id>`, `expiry:<day>:<id>`, `coupon:<code>`) the snapshot newly
    /// answers for; the store keeps each for one snapshot only.
    pub index: Vec<SubjectId>,
    /// SPEC §4 (v3) the daily counts read for this decision, the SMS it sends per number, and
    /// the numbers it asked about that the ledger did not hold.
    pub ledger: &'a SmsLedger,
    pub sms_sent: BTreeMap<String, u32>,
    pub sms_unknown: BTreeSet<String>,
    /// SPEC §4 (v2) promotional SMS to hold until the time given.
    pub held: Vec<(Sms, DateTime<Utc>)>,
    /// What the protection did to an SMS about the subject rather than a case (held, or not sent
    /// and why), for the subject's own timeline: no case would show it otherwise.
    pub subject_lines: Vec<TimelineEntry>,
}

/// What SPEC §4's customer protection lets happen to an SMS now.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    Send,
    /// Not sent, for this reason (a suppressed number, the daily cap).
    Suppressed(String),
    /// A promotional template outside its allowed time: held until then.
    Hold(DateTime<Utc>),
}

impl<'a> Ctx<'a> {
    pub fn new(now: DateTime<Utc>, key: SubjectKey, policy: &'a Policy, ledger: &'a SmsLedger) -> Self {
        Ctx {
            now,
            occurred: now,
            key,
            policy,
            effects: Vec::new(),
            intents: Vec::new(),
            index: Vec::new(),
            ledger,
            sms_sent: BTreeMap::new(),
            sms_unknown: BTreeSet::new(),
            held: Vec::new(),
            subject_lines: Vec::new(),
        }
    }

    /// The SMS to `phone` today: those the store holds and this decision's.
    fn sms_today(&mut self, phone: &str) -> u32 {
        let today = self.cal().local_date(self.now);
        let held = match (self.ledger.day == Some(today)).then(|| self.ledger.counts.get(phone)).flatten() {
            Some(n) => *n,
            None => {
                self.sms_unknown.insert(phone.to_string());
                0
            }
        };
        held + self.sms_sent.get(phone).copied().unwrap_or(0)
    }

    /// The counts this decision writes (SPEC §4 v3).
    pub fn sms_counts(&self) -> Vec<SmsCount> {
        let day = self.cal().local_date(self.now);
        self.sms_sent
            .iter()
            .map(|(phone, sent)| {
                let held = self.ledger.counts.get(phone).copied().filter(|_| self.ledger.day == Some(day)).unwrap_or(0);
                SmsCount { phone: phone.clone(), day, held, count: held + sent }
            })
            .collect()
    }

    pub fn cal(&self) -> &Calendar {
        &self.policy.calendar
    }

    /// Asks the subject to carry out `intent` for this case; its effects take this place.
    pub fn intend(&mut self, case: &CaseCore, intent: Intent) {
        self.intents.push(Pending { case_id: case.case_id.clone(), intent, at_effect: self.effects.len() });
    }

    /// R9.7 (v3) a call step due at `due`, counted from when its input happened: one that fell
    /// due before the input arrived is taken on arrival, at the next working-hours start when
    /// outside them.
    pub fn catch_up(&self, due: DateTime<Utc>) -> DateTime<Utc> {
        if due <= self.now {
            self.cal().working_moment(self.now)
        } else {
            due
        }
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
    pub fn place_subject(&mut self, timers: &mut SubjectTimers, subject: TimerSubject, kind: TimerKind, due_at: DateTime<Utc>) {
        timers.timer_seq += 1;
        let step = timers.timer_seq;
        timers.push(SubjectTimer { subject_id: subject, timer: PendingTimer { kind, due_at, step } });
        self.effects.push(Effect::PlaceTimer(TimerSpec {
            timer: TimerRef { stream: self.key.clone(), case_id: None, kind, step },
            due_at,
            playbook: None,
        }));
    }

    /// Cancels the subject's pending timers of these kinds (all of them when `kinds` is empty).
    pub fn cancel_subject(&mut self, timers: &mut SubjectTimers, subject: &TimerSubject, kinds: &[TimerKind]) {
        let (gone, kept): (Vec<_>, Vec<_>) =
            timers.drain(..).partition(|t| t.subject_id == *subject && (kinds.is_empty() || kinds.contains(&t.timer.kind)));
        timers.timers = kept;
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
            Ok(sms) => self.send(sms, Some(case)),
            // A template missing a variable is a bug in a playbook; it is written on the
            // timeline so the case shows it, rather than failing the customer's webhook.
            Err(e) => case.note(self.now, TimelineKind::SmsFailed, e.to_string()),
        }
    }

    /// An SMS about a subject rather than a case (`case_id` null, R6 / R7.3).
    pub fn subject_sms(&mut self, customer: &Customer, template: TemplateId, vars: &SmsVars) -> Result<(), sms::RenderError> {
        let sms = self.render(customer, template, vars, None)?;
        self.send(sms, None);
        Ok(())
    }

    /// SPEC §4 (v2) customer protection, then the send: a suppressed number or a reached daily
    /// cap stops it (written on the case's timeline; the case goes on), a promotional template
    /// outside its allowed time waits for it. An SMS about the subject rather than a case has its
    /// hold or stop written on the subject's timeline ([`Ctx::subject_lines`]); one that goes is
    /// in the SMS outbox, as every SMS sent.
    pub fn send(&mut self, sms: Sms, case: Option<&mut CaseCore>) {
        let (template, to) = (sms.template, mask_phone(&sms.to));
        match self.gate(&sms) {
            Gate::Send => {
                if let Some(case) = case {
                    case.note(self.now, TimelineKind::Sms, format!("{template} to {to} ({} segments)", sms.segments));
                }
                *self.sms_sent.entry(sms.to.clone()).or_insert(0) += 1;
                self.effects.push(Effect::SendSms(Sms { at: self.now, ..sms }));
            }
            Gate::Suppressed(why) => self.record(case, TimelineKind::SmsSuppressed, format!("{template} to {to} not sent: {why}")),
            Gate::Hold(until) => {
                let when = self.cal().rfc3339(until);
                let line = format!("{template} to {to} held until {when}: promotional SMS go out only in their hours");
                self.record(case, TimelineKind::SmsHeld, line);
                self.held.push((sms, until));
            }
        }
    }

    /// SPEC §4 (v2, v3) what the protection did to an SMS, on the case's timeline, or on the
    /// subject's when the SMS is about no case (an R2.3 coupon without a follow-up, R6, R7.3).
    fn record(&mut self, case: Option<&mut CaseCore>, kind: TimelineKind, detail: String) {
        match case {
            Some(case) => case.note(self.now, kind, detail),
            None => self.subject_lines.push(TimelineEntry::new(self.now, kind, detail)),
        }
    }

    /// What SPEC §4's customer protection lets happen to this SMS now.
    pub fn gate(&mut self, sms: &Sms) -> Gate {
        let policy: &'a Policy = self.policy;
        let p = &policy.sms;
        if p.suppressed.contains(&sms.to) {
            return Gate::Suppressed("the number is on the suppression list".into());
        }
        if p.promotional.contains(&sms.template) {
            let allowed = self.promo_allowed_from(self.now);
            if allowed > self.now {
                return Gate::Hold(allowed);
            }
        }
        let sent = self.sms_today(&sms.to);
        if sent >= p.daily_cap {
            return Gate::Suppressed(format!("{} SMS already went to this number today ({DAILY_CAP} {})", sent, p.daily_cap));
        }
        Gate::Send
    }

    /// The first instant from `at` when a promotional SMS may go out.
    fn promo_allowed_from(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let (p, cal) = (&self.policy.sms, self.cal());
        let mut day = cal.local_date(at);
        // A week always has an allowed day unless every day is off; then send at once.
        for _ in 0..370 {
            let allowed = !p.promo_days_off.contains(&day.weekday()) && !cal.is_holiday(day);
            if allowed {
                let (start, end) = (cal.at(day, p.promo_start), cal.at(day, p.promo_end));
                if at < start {
                    return start;
                }
                if at < end {
                    return at;
                }
            }
            day = day.succ_opt().expect("date in range");
        }
        at
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
            diffs.push(format!("status {} → {}", before.status, after.status));
        }
        if before.priority != after.priority {
            diffs.push(format!("priority {} → {}", before.priority, after.priority));
        }
        if before.group != after.group {
            diffs.push(format!("group {} → {}", before.group, after.group));
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

#[cfg(test)]
mod tests {
    //! SPEC §4 (v2) customer protection: suppression list, daily cap, promotional hours.
    use super::DAILY_CAP;
    use crate::domain::records::case::TimelineKind;
    use crate::domain::testkit::*;

    fn cancelled_at(now: &str, policy: Policy) -> (World, Option<String>) {
        let mut w = World { policy, ..World::new() };
        w.when(booked("A1", "2026-03-10T10:00:00+02:00", Some("T1")), "2026-03-01T10:00:00+02:00").unwrap();
        let id = w.when(cancelled("A1", CancelledBy::Customer, true), now).unwrap();
        (w, id)
    }

    #[test]
    fn a_suppressed_number_gets_no_sms_and_the_case_goes_on() {
        let mut policy = Policy::default();
        policy.sms.suppressed = vec!["+201001234567".into()];
        let (w, id) = cancelled_at("2026-03-02T10:00:00+02:00", policy);
        let id = id.unwrap();
        assert!(w.sms().is_empty());
        assert_eq!(w.commands(), vec!["issue_coupon"], "the coupon is still registered");
        let c = w.case(&id);
        assert!(c
            .timeline
            .iter()
            .any(|e| e.kind == crate::domain::records::case::TimelineKind::SmsSuppressed && e.detail.contains("suppression list")));
        assert!(c.pending(TimerKind::CallAttempt).is_some(), "the case goes on");
    }

    #[test]
    fn the_daily_cap_holds_per_number() {
        let mut policy = Policy::default();
        policy.sms.daily_cap = 1;
        let (mut w, _) = cancelled_at("2026-03-02T10:00:00+02:00", policy);
        assert_eq!(w.sms(), vec![TemplateId::DiscountOffer]);
        // A second appointment of the order, rescheduled the same day: R7.3's confirmation is capped.
        w.when(booked("A2", "2026-03-12T10:00:00+02:00", Some("T1")), "2026-03-02T11:00:00+02:00").unwrap();
        w.when(rescheduled("A2", "2026-03-13T10:00:00+02:00"), "2026-03-02T12:00:00+02:00").unwrap();
        assert!(w.sms().is_empty(), "one SMS a day to this number");
        // It is about the order, not a case: the order's own timeline says why it did not go.
        let Some(crate::domain::records::Subject::Order(order)) = w.snapshot.as_ref().map(|s| &s.subject) else { panic!("an order") };
        let stopped: Vec<&str> =
            order.timeline.iter().filter(|l| l.kind == TimelineKind::SmsSuppressed).map(|l| l.detail.as_str()).collect();
        assert_eq!(stopped.len(), 1, "{:?}", order.timeline);
        assert!(stopped[0].starts_with("RESCHEDULE_CONFIRMATION") && stopped[0].contains(DAILY_CAP), "{stopped:?}");
        w.when(rescheduled("A2", "2026-03-14T10:00:00+02:00"), "2026-03-03T12:00:00+02:00").unwrap();
        assert_eq!(w.sms(), vec![TemplateId::RescheduleConfirmation], "a new day");
    }

    #[test]
    fn a_promotional_sms_waits_for_its_hours_and_a_service_sms_does_not() {
        // Friday 10:00: no promotional SMS on Friday or Saturday; Sunday 09:00 it goes.
        let (mut w, id) = cancelled_at("2026-03-06T10:00:00+02:00", Policy::default());
        let id = id.unwrap();
        assert!(w.sms().is_empty());
        assert_eq!(w.subject_due(TimerKind::HeldSms), Some(t("2026-03-08T09:00:00+02:00")));
        assert!(w.case(&id).timeline.iter().any(|e| e.kind == crate::domain::records::case::TimelineKind::SmsHeld));
        assert_eq!(w.fire_subject_at(TimerKind::HeldSms, None), Some(id.clone()));
        let sent = w.sent_sms();
        assert_eq!((sent.len(), sent[0].template, sent[0].at), (1, TemplateId::DiscountOffer, t("2026-03-08T09:00:00+02:00")));
        assert_eq!(sent[0].case_id.as_deref(), Some(id.as_str()));
        // Monday 22:00: Tuesday 09:00.
        let (w, _) = cancelled_at("2026-03-02T22:00:00+02:00", Policy::default());
        assert_eq!(w.subject_due(TimerKind::HeldSms), Some(t("2026-03-03T09:00:00+02:00")));
        // A service SMS goes at once, Friday included (R4.3's SMS1).
        let mut w = World::new();
        let case = w.when(weekly(false), "2026-03-06T10:00:00+02:00").unwrap().unwrap();
        w.when(call(&case, CallOutcome::NoAnswer, None), "2026-03-06T21:30:00+02:00").unwrap();
        assert_eq!(w.sms(), vec![TemplateId::Sms1]);
    }
}
