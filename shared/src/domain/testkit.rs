//! The one given/when/then kit every playbook's unit tests are written with: inputs that read like
//! the SOPs, and a `World` that decides them in turn and shows what came out.

pub use crate::domain::ctx::SmsLedger;
pub use crate::domain::decide::decide;
pub use crate::domain::effects::{Effect, Sms, TimerRef};
pub use crate::domain::events::{
    AppointmentAssigned, AppointmentBooked, AppointmentCancelled, AppointmentCompleted, AppointmentEvent, AppointmentRescheduled,
    CallCompleted, CancelledBy, CaseReopen, CompletionOutcome, Event, EventBody, Input, PackageBooked, PackagePaid, PackageVisit,
    PaymentMethod, RescheduleRequested, Resolution, VisitCompleted,
};
pub use crate::domain::money::{Money, Percent};
pub use crate::domain::playbooks::Case;
pub use crate::domain::policy::Policy;
pub use crate::domain::records::case::{CallOutcome, Customer, Language, TicketResult, TicketStatus, TimerKind};
pub use crate::domain::records::order::{Appointment, AppointmentStatus, Order};
pub use crate::domain::records::package::{Package, PackageStatus};
pub use crate::domain::refusal::{Refusal, RefusalKind, Rule};
pub use crate::domain::sms::TemplateId;
pub use crate::domain::subjects::snapshot::{Snapshot, Subject};
pub use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// An event that happened at Monday 2026-03-02 10:00 Cairo (`World::when` makes it happen when it arrives).
pub fn event(body: EventBody) -> Input {
    Input::Event(Event { id: "e".into(), occurred_at: t("2026-03-02T10:00:00+02:00"), body })
}

/// A call outcome on `case_id`, with no topics or notes; each is a call of its own (R9.2: one
/// `call_id` is one attempt).
pub fn completed_call(case_id: &str, outcome: CallOutcome, resolution: Option<Resolution>) -> CallCompleted {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    CallCompleted {
        case_id: case_id.into(),
        call_id: format!("K{}", CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
        agent_id: "G".into(),
        outcome,
        resolution,
        topics: Vec::new(),
        requested_follow_up: None,
        cost_told: None,
        notes: None,
    }
}

/// `call.completed` for `case_id`.
pub fn call(case_id: &str, outcome: CallOutcome, resolution: Option<Resolution>) -> Input {
    calls(completed_call(case_id, outcome, resolution))
}

pub fn calls(c: CallCompleted) -> Input {
    event(EventBody::from(c))
}

pub fn mona(language: Language) -> Customer {
    Customer { id: "C1".into(), name: "Mona".into(), phone: "+201001234567".into(), language }
}

/// `appointment.booked` for order O1, a two-hour first visit starting at `start`.
pub fn booked(id: &str, start: &str, technician: Option<&str>) -> Input {
    event(EventBody::from(AppointmentBooked {
        appointment_id: id.into(),
        order_id: "O1".into(),
        customer: mona(Language::En),
        area: "Cairo".into(),
        service: "painting".into(),
        price: Money::new(45_000, "EGP"),
        window_start: t(start),
        window_end: t(start) + Duration::hours(2),
        visit_number: 1,
        technician_id: technician.map(Into::into),
        discount_percent: 0,
    }))
}

pub fn assigned(id: &str) -> Input {
    event(EventBody::from(AppointmentAssigned { appointment_id: id.into(), technician_id: "T1".into() }))
}

pub fn rescheduled(id: &str, start: &str) -> Input {
    event(EventBody::from(AppointmentRescheduled {
        appointment_id: id.into(),
        window_start: t(start),
        window_end: t(start) + Duration::hours(2),
        requested_by: "customer".into(),
    }))
}

pub fn cancelled(id: &str, by: CancelledBy, wants_follow_up: bool) -> Input {
    event(EventBody::from(AppointmentCancelled {
        appointment_id: id.into(),
        cancelled_by: by,
        reason: "moving".into(),
        wants_follow_up,
        availability: None,
    }))
}

pub fn completed(id: &str, outcome: CompletionOutcome) -> Input {
    event(EventBody::from(AppointmentCompleted {
        appointment_id: id.into(),
        outcome,
        needs_material: false,
        material_days: None,
        painting: None,
    }))
}

pub fn requested(id: &str) -> Input {
    event(EventBody::from(RescheduleRequested {
        appointment_id: id.into(),
        reason: "technician late".into(),
        stf_link: "https://stf.example.com/r/A1".into(),
    }))
}

/// Package P1: `visits` windows (RFC 3339), price in minor units.
pub fn package_booked(paid: bool, method: PaymentMethod, start_date: &str, visits: &[&str], price: i64) -> Input {
    event(EventBody::from(PackageBooked {
        package_id: "P1".into(),
        customer: mona(Language::Ar),
        area: "Cairo".into(),
        price: Money::new(price, "EGP"),
        visits: visits.iter().enumerate().map(|(i, w)| PackageVisit { visit_id: format!("V{}", i + 1), window_start: t(w) }).collect(),
        start_date: start_date.parse().unwrap(),
        payment_method: method,
        paid,
    }))
}

/// Four weekly visits from Monday 2026-03-09 10:00, 2 000.00 EGP.
pub fn weekly(paid: bool) -> Input {
    package_booked(
        paid,
        PaymentMethod::Card,
        "2026-03-09",
        &["2026-03-09T10:00:00+02:00", "2026-03-16T10:00:00+02:00", "2026-03-23T10:00:00+02:00", "2026-03-30T10:00:00+02:00"],
        200_000,
    )
}

pub fn visit(body: fn(String, String) -> EventBody, visit_id: &str) -> Input {
    event(body("P1".into(), visit_id.into()))
}

/// A command as it went out: the case it names and its `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    pub case_id: Option<String>,
    pub at: DateTime<Utc>,
    pub data: Value,
}

/// A snapshot and the effects of the last decision on it.
pub struct World {
    pub snapshot: Option<Snapshot>,
    pub effects: Vec<Effect>,
    pub policy: Policy,
    /// R9.2 the last decision was an echo.
    pub echo: bool,
    /// SPEC §4 (v3) the per-number daily SMS counts, as the store keeps them.
    pub sms_counts: std::collections::BTreeMap<(String, chrono::NaiveDate), u32>,
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    pub fn new() -> Self {
        World { snapshot: None, effects: Vec::new(), policy: Policy::default(), echo: false, sms_counts: Default::default() }
    }
    pub fn given(snapshot: Snapshot) -> Self {
        World { snapshot: Some(snapshot), ..World::new() }
    }
    /// Decides `input` arriving at `now`, an event having happened then too; the snapshot and
    /// effects become the decision's.
    pub fn when(&mut self, input: Input, now: &str) -> Result<Option<String>, Refusal> {
        self.when_late(input, now, now)
    }
    /// Decides an event that happened at `occurred` and arrives at `now` (R9.7).
    pub fn when_late(&mut self, mut input: Input, occurred: &str, now: &str) -> Result<Option<String>, Refusal> {
        if let Input::Event(e) = &mut input {
            e.occurred_at = t(occurred);
        }
        let day = self.policy.calendar.local_date(t(now));
        let counts = self.sms_counts.iter().filter(|((_, d), _)| *d == day).map(|((p, _), n)| (p.clone(), *n)).collect();
        // Every number is known here: one the ledger lacks has sent nothing today.
        let ledger = SmsLedger { day: Some(day), counts };
        let d = decide(self.snapshot.as_ref(), &input, t(now), &self.policy, &ledger)?;
        for c in &d.sms_counts {
            self.sms_counts.insert((c.phone.clone(), c.day), c.count);
        }
        self.snapshot = Some(d.snapshot);
        self.effects = d.effects;
        self.echo = d.echo;
        Ok(d.case_id)
    }
    pub fn snapshot(&self) -> &Snapshot {
        self.snapshot.as_ref().expect("a snapshot")
    }
    pub fn snapshot_mut(&mut self) -> &mut Snapshot {
        self.snapshot.as_mut().expect("a snapshot")
    }
    pub fn order(&self) -> &Order {
        self.snapshot().as_order().expect("an order")
    }
    pub fn order_mut(&mut self) -> &mut Order {
        match &mut self.snapshot_mut().subject {
            Subject::Order(o) => o,
            Subject::Package(_) => panic!("not an order"),
        }
    }
    pub fn appointment(&self, id: &str) -> &Appointment {
        self.order().appointment(id).expect("an appointment")
    }
    pub fn pkg(&self) -> &Package {
        self.snapshot().as_package().expect("a package")
    }
    pub fn case(&self, id: &str) -> &Case {
        self.snapshot().case(id).expect("a case")
    }
    /// Fires one timer of a case at `now`.
    pub fn fire(&mut self, case_id: &str, kind: TimerKind, step: u32, now: &str) {
        let timer = TimerRef { stream: self.snapshot().key.clone(), case_id: Some(case_id.into()), kind, step };
        self.when(Input::Timer(timer), now).unwrap();
    }
    /// Fires the case's earliest pending timer at its due time.
    pub fn fire_next(&mut self, case_id: &str) -> (TimerKind, DateTime<Utc>) {
        let next = self.case(case_id).timers.iter().min_by_key(|t| t.due_at).expect("a pending timer").clone();
        let now = self.policy.calendar.rfc3339(next.due_at);
        self.fire(case_id, next.kind, next.step, &now);
        (next.kind, next.due_at)
    }
    /// Fires the snapshot's earliest subject timer at its due time.
    pub fn fire_subject(&mut self) -> Option<String> {
        let next = self.snapshot().timers.iter().min_by_key(|t| t.timer.due_at).expect("a subject timer").timer.clone();
        let now = self.policy.calendar.rfc3339(next.due_at);
        let timer = TimerRef { stream: self.snapshot().key.clone(), case_id: None, kind: next.kind, step: next.step };
        self.when(Input::Timer(timer), &now).unwrap()
    }
    /// Fires the subject timer of this kind at its due time, or `late` at that time.
    pub fn fire_subject_at(&mut self, kind: TimerKind, late: Option<&str>) -> Option<String> {
        let pending = self.snapshot().timers.iter().find(|t| t.timer.kind == kind).expect("a subject timer").timer.clone();
        let timer = TimerRef { stream: self.snapshot().key.clone(), case_id: None, kind, step: pending.step };
        let now = late.map(str::to_owned).unwrap_or_else(|| self.policy.calendar.rfc3339(pending.due_at));
        self.when(Input::Timer(timer), &now).unwrap()
    }
    pub fn subject_due(&self, kind: TimerKind) -> Option<DateTime<Utc>> {
        self.snapshot().timers.iter().find(|t| t.timer.kind == kind).map(|t| t.timer.due_at)
    }
    /// The earliest pending timer of this kind on the case.
    pub fn due(&self, id: &str, kind: TimerKind) -> Option<DateTime<Utc>> {
        self.dues(id, kind).first().copied()
    }
    /// Every pending timer of this kind on the case, in due order.
    pub fn dues(&self, id: &str, kind: TimerKind) -> Vec<DateTime<Utc>> {
        let mut v: Vec<_> = self.case(id).timers.iter().filter(|t| t.kind == kind).map(|t| t.due_at).collect();
        v.sort();
        v
    }
    /// The `type` of every command the last decision emitted, in order, but the interaction
    /// summary every reported call gets (R8.3, R9.5), which `command` still finds.
    pub fn commands(&self) -> Vec<&'static str> {
        self.effects
            .iter()
            .filter_map(|e| if let Effect::Emit(c) = e { Some(c.body.kind()) } else { None })
            .filter(|kind| *kind != "interaction_summary")
            .collect()
    }
    /// The first command of this `type` the last decision emitted.
    pub fn command(&self, kind: &str) -> Option<Emitted> {
        self.effects.iter().find_map(|e| match e {
            Effect::Emit(c) if c.body.kind() == kind => Some(Emitted { case_id: c.case_id.clone(), at: c.at, data: c.body.data() }),
            _ => None,
        })
    }
    pub fn sms(&self) -> Vec<TemplateId> {
        self.sent_sms().into_iter().map(|s| s.template).collect()
    }
    pub fn sms_bodies(&self) -> Vec<String> {
        self.sent_sms().into_iter().map(|s| s.body).collect()
    }
    pub fn sent_sms(&self) -> Vec<Sms> {
        self.effects.iter().filter_map(|e| if let Effect::SendSms(s) = e { Some(s.clone()) } else { None }).collect()
    }
}
