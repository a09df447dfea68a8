//! One representative decision per playbook: the snapshot a case reaches by deciding a run of
//! inputs, and the call report or timer that drives the playbook's main rule from there.

use chrono::{DateTime, Duration, Utc};
use followup::domain::ctx::SmsLedger;
use followup::domain::decide;
use followup::domain::effects::TimerRef;
use followup::domain::events::{
    AppointmentBooked, AppointmentCancelled, AppointmentCompleted, CallCompleted, CancelledBy, CompletionOutcome, Event, EventBody, Input,
    PackageBooked, PackageVisit, PaymentMethod, RescheduleRequested, Resolution, VisitCompleted,
};
use followup::domain::money::Money;
use followup::domain::playbooks::PlaybookName;
use followup::domain::policy::Policy;
use followup::domain::records::case::{CallOutcome, Customer, Language, TimerKind};
use followup::domain::subjects::snapshot::Snapshot;

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("RFC 3339").with_timezone(&Utc)
}

/// A decision to measure: `input` on `snapshot` at `now`, and the rule it exercises.
pub struct Scenario {
    pub snapshot: Snapshot,
    pub input: Input,
    pub now: DateTime<Utc>,
    pub rule: &'static str,
}

impl Scenario {
    /// Decides it once and checks it lands on a case of `playbook` with effects, so a scenario
    /// that drifts (refused, or decided by another playbook) stops the run instead of measuring
    /// something else.
    pub fn checked(self, playbook: PlaybookName, policy: &Policy) -> Scenario {
        let d = decide(Some(&self.snapshot), &self.input, self.now, policy, &SmsLedger::default())
            .unwrap_or_else(|r| panic!("{playbook} ({}): refused: {r:?}", self.rule));
        let case = d.case_id.as_deref().and_then(|id| self.snapshot.case(id));
        assert_eq!(case.map(|c| c.playbook()), Some(playbook), "{} is not decided by {playbook}", self.rule);
        assert!(!d.effects.is_empty(), "{playbook} ({}): no effects", self.rule);
        self
    }
}

/// The scenario of each playbook; the match keeps the list complete when a playbook is added.
pub fn scenario(playbook: PlaybookName, policy: &Policy) -> Scenario {
    let s = match playbook {
        PlaybookName::AppointmentWatch => appointment_watch(policy),
        PlaybookName::RescheduleOutreach => reschedule_outreach(policy),
        PlaybookName::CancellationFollowUp => cancellation_follow_up(policy),
        PlaybookName::SecondVisitFollowUp => second_visit_follow_up(policy),
        PlaybookName::PackagePayment => package_payment(policy),
        PlaybookName::PackageExpiry => package_expiry(policy),
    };
    s.checked(playbook, policy)
}

/// R0.2: booked unassigned on Monday for Tuesday 10:00, watched from T-3h; the T-1h timer fires.
fn appointment_watch(policy: &Policy) -> Scenario {
    let mut w = Given::new(policy);
    w.when(booked("A1", "2026-03-03T10:00:00+02:00", None), "2026-03-02T10:00:00+02:00");
    w.fire_subject(TimerKind::StatusUpdate);
    let id = w.only_case();
    w.case_timer(&id, TimerKind::AutoCancel, "R0.2 T-1h auto-cancel, cancellation follow-up with DISCOUNT_OFFER")
}

/// R1.2: a reschedule requested on Monday; the first call goes to voicemail.
fn reschedule_outreach(policy: &Policy) -> Scenario {
    let mut w = Given::new(policy);
    w.when(booked("A1", "2026-03-05T14:00:00+02:00", Some("T1")), "2026-03-02T10:00:00+02:00");
    let reschedule = EventBody::from(RescheduleRequested {
        appointment_id: "A1".into(),
        reason: "technician late".into(),
        stf_link: "https://stf.example.com/r/A1".into(),
    });
    w.when(event(reschedule), "2026-03-02T10:00:00+02:00");
    let id = w.only_case();
    w.then(call(&id, CallOutcome::Voicemail, None), "2026-03-02T10:30:00+02:00", "R1.2 not reached: STF_LINK")
}

/// R2.5: the customer cancels a first visit and wants a follow-up; the next morning's call is not answered.
fn cancellation_follow_up(policy: &Policy) -> Scenario {
    let mut w = Given::new(policy);
    w.when(booked("A1", "2026-12-05T10:00:00+02:00", Some("T1")), "2026-03-02T10:00:00+02:00");
    let cancel = EventBody::from(AppointmentCancelled {
        appointment_id: "A1".into(),
        cancelled_by: CancelledBy::Customer,
        reason: "travelling".into(),
        wants_follow_up: true,
        availability: None,
    });
    w.when(event(cancel), "2026-03-02T10:00:00+02:00");
    let id = w.only_case();
    w.then(call(&id, CallOutcome::NoAnswer, None), "2026-03-03T09:10:00+02:00", "R2.5 not reached: next attempt")
}

/// R3.5: an inspection completed on Monday opens the case an hour later; the customer rebooks.
fn second_visit_follow_up(policy: &Policy) -> Scenario {
    let mut w = Given::new(policy);
    w.when(booked("A1", "2026-03-02T08:00:00+02:00", Some("T1")), "2026-03-01T10:00:00+02:00");
    let completed = EventBody::from(AppointmentCompleted {
        appointment_id: "A1".into(),
        outcome: CompletionOutcome::Inspection,
        needs_material: false,
        material_days: None,
        painting: None,
    });
    w.when(event(completed), "2026-03-02T10:00:00+02:00");
    w.fire_subject(TimerKind::OpenSecondVisit);
    let id = w.only_case();
    let start = t("2026-03-02T15:00:00+02:00");
    let rebooked = Resolution::Rebooked { window_start: start, window_end: start + Duration::hours(3) };
    w.then(call(&id, CallOutcome::Answered, Some(rebooked)), "2026-03-02T11:10:00+02:00", "R3.5 rebooked: create_visit")
}

/// R4.3: four weekly visits booked unpaid on Monday; the first call is not answered.
fn package_payment(policy: &Policy) -> Scenario {
    let mut w = Given::new(policy);
    w.when(weekly(false), "2026-03-02T10:00:00+02:00");
    let id = w.only_case();
    w.then(call(&id, CallOutcome::NoAnswer, None), "2026-03-02T10:30:00+02:00", "R4.3 not reached: SMS1")
}

/// R5.2: a paid package with one visit used expires; the Day 1 call is not answered.
fn package_expiry(policy: &Policy) -> Scenario {
    let mut w = Given::new(policy);
    w.when(weekly(true), "2026-03-02T10:00:00+02:00");
    let visit = EventBody::from(VisitCompleted { package_id: "P1".into(), visit_id: "V1".into() });
    w.when(event(visit), "2026-03-09T12:00:00+02:00");
    w.fire_subject(TimerKind::ExpiryDay1);
    let id = w.only_case();
    w.then(call(&id, CallOutcome::NoAnswer, None), "2026-04-09T09:30:00+02:00", "R5.2 Day 1 not reached: SMS3")
}

/// A snapshot built by deciding inputs in turn, as the engine would.
struct Given<'p> {
    snapshot: Option<Snapshot>,
    policy: &'p Policy,
}

impl<'p> Given<'p> {
    fn new(policy: &'p Policy) -> Self {
        Given { snapshot: None, policy }
    }

    fn when(&mut self, input: Input, now: &str) {
        self.decide(input, t(now));
    }

    fn decide(&mut self, input: Input, now: DateTime<Utc>) {
        let d = decide(self.snapshot.as_ref(), &input, now, self.policy, &SmsLedger::default())
            .unwrap_or_else(|r| panic!("setup refused: {r:?}"));
        self.snapshot = Some(d.snapshot);
    }

    fn snapshot(&self) -> &Snapshot {
        self.snapshot.as_ref().expect("a snapshot")
    }

    /// The one case the setup has opened.
    fn only_case(&self) -> String {
        match self.snapshot().cases.as_slice() {
            [case] => case.case_id.clone(),
            cases => panic!("expected one case, found {}", cases.len()),
        }
    }

    /// Fires the subject timer of this kind at its due time.
    fn fire_subject(&mut self, kind: TimerKind) {
        let pending = self.snapshot().timers.iter().find(|s| s.timer.kind == kind).expect("a subject timer").timer.clone();
        let timer = TimerRef { stream: self.snapshot().key.clone(), case_id: None, kind, step: pending.step };
        self.decide(Input::Timer(timer), pending.due_at);
    }

    /// The case's timer of this kind, fired at its due time, as the input to measure.
    fn case_timer(self, case_id: &str, kind: TimerKind, rule: &'static str) -> Scenario {
        let snapshot = self.snapshot.expect("a snapshot");
        let pending = snapshot.case(case_id).and_then(|c| c.pending(kind)).expect("a pending case timer").clone();
        let timer = TimerRef { stream: snapshot.key.clone(), case_id: Some(case_id.into()), kind, step: pending.step };
        Scenario { snapshot, input: Input::Timer(timer), now: pending.due_at, rule }
    }

    /// `input` at `now` as the input to measure.
    fn then(self, input: Input, now: &str, rule: &'static str) -> Scenario {
        Scenario { snapshot: self.snapshot.expect("a snapshot"), input, now: t(now), rule }
    }
}

fn event(body: EventBody) -> Input {
    Input::Event(Event { id: "e".into(), occurred_at: t("2026-03-02T10:00:00+02:00"), body })
}

fn mona() -> Customer {
    Customer { id: "C1".into(), name: "Mona".into(), phone: "+201001234567".into(), language: Language::Ar }
}

/// A two-hour first visit of order O1.
fn booked(id: &str, start: &str, technician: Option<&str>) -> Input {
    event(EventBody::from(AppointmentBooked {
        appointment_id: id.into(),
        order_id: "O1".into(),
        customer: mona(),
        area: "Cairo".into(),
        service: "AC maintenance".into(),
        price: Money::new(45_000, "EGP"),
        window_start: t(start),
        window_end: t(start) + Duration::hours(2),
        visit_number: 1,
        technician_id: technician.map(Into::into),
        discount_percent: 0,
    }))
}

/// Package P1: four weekly visits from Monday 2026-03-09 10:00, 2 000.00 EGP by card.
fn weekly(paid: bool) -> Input {
    let starts = ["2026-03-09T10:00:00+02:00", "2026-03-16T10:00:00+02:00", "2026-03-23T10:00:00+02:00", "2026-03-30T10:00:00+02:00"];
    event(EventBody::from(PackageBooked {
        package_id: "P1".into(),
        customer: mona(),
        area: "Cairo".into(),
        price: Money::new(200_000, "EGP"),
        visits: starts.iter().enumerate().map(|(i, s)| PackageVisit { visit_id: format!("V{}", i + 1), window_start: t(s) }).collect(),
        start_date: "2026-03-09".parse().expect("date"),
        payment_method: PaymentMethod::Card,
        paid,
    }))
}

fn call(case_id: &str, outcome: CallOutcome, resolution: Option<Resolution>) -> Input {
    event(EventBody::from(CallCompleted {
        case_id: case_id.into(),
        call_id: "K1".into(),
        agent_id: "G".into(),
        outcome,
        resolution,
        topics: Vec::new(),
        requested_follow_up: None,
        cost_told: None,
        notes: None,
    }))
}
