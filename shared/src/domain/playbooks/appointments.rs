//! Appointment events on an order's stream: the appointment record, which playbooks each event
//! starts or stops, and the reschedule policy (R7.1–R7.3, seed 002) with the late change of R3.8.
//!
//! Decisions the SPEC leaves open, settled here:
//! - The 202 names the case the event concerns: the watch case when `appointment.booked` opens
//!   one at once (inside the last 3 h, R0.1), the watch case an assignment ends, the outreach case of a reschedule request (R1.1),
//!   the follow-up a cancellation opens (R2.1), and for a reschedule an open case of the
//!   appointment (watch or outreach) when there is one. `appointment.completed` names none: its
//!   case opens an hour later (R3.1).
//! - R7.1 "< 24 h before the original start" is measured from the moment the engine learns of the
//!   change to the window start before it. The fee applies whoever asked (`requested_by` is
//!   recorded); it is written on the appointment's `reschedule_log` and on the timeline of every
//!   open case of the appointment. `fee_amount` 0 records "inform only". No command charges it.
//! - R7.2 counts every accepted window change of one appointment (events and R1.5 rebookings);
//!   the change past `max_reschedules` is refused with 422 citing R7.2 and nothing is stored.
//!   An `appointment.rescheduled` to the window the appointment already has (the dashboard
//!   echoing an update the engine ordered, R1.5) is recorded and changes nothing: no count, no SMS.
//! - R7.3 RESCHEDULE_CONFIRMATION carries the new local date (`YYYY-MM-DD`) and time (`HH:MM`) of
//!   the business calendar, in the customer's language; it is sent on the case that made the
//!   change, else on the appointment's open watch case, else as a subject SMS (`case_id` null).
//! - R3.8 applies to any visit (the SPEC says "a visit time change"): a change arriving within
//!   `late_change_minutes` (inclusive) of the current start emits `cancel_appointment` (by ops,
//!   reason `late_time_change`) and `create_visit` (with `replaces_appointment_id`) instead of
//!   moving the record; the old appointment is marked cancelled (the dashboard books the new
//!   visit, which is watched afresh), every open case of the order is closed with result
//!   `visit_replaced`, no cancellation follow-up opens, and R7.1–R7.3 still apply.
//! - A reschedule of a watched appointment moves the watch timers (R0.3); one of an appointment
//!   under reschedule outreach resolves the outreach (result `rescheduled`) and revokes the
//!   self-scheduling links for windows before the new one (seed 000).
//! - Assignment, cancellation and completion end the appointment's open watch and outreach
//!   cases; completion with outcome inspection / incomplete / painting places the subject timer
//!   that opens `second_visit_follow_up` (R3.1).

use super::{
    appointment_subject, appointment_watch, cancellation_follow_up, open_appointment, reschedule_outreach, second_visit_follow_up,
    unknown_subject, Ctx, Flow as AnyFlow, Outcome, Refusal,
};
use crate::domain::case::{Case, TicketStatus, TimerKind};
use crate::domain::effects::CommandType;
use crate::domain::events::{CompletionOutcome, Event, EventBody, Input};
use crate::domain::sms::{SmsVars, TemplateId};
use crate::domain::stream::{Appointment, AppointmentStatus, Completion, Reschedule, Stream, StreamKey, SubjectTimer};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

pub fn on_event(stream: Option<&Stream>, event: &Event, ctx: &mut Ctx) -> Result<Outcome, Refusal> {
    if let EventBody::AppointmentBooked { .. } = &event.body {
        return booked(stream, event, ctx);
    }
    let mut stream = stream.cloned().ok_or_else(|| unknown_subject(&Input::Event(event.clone())))?;
    let case_id = match &event.body {
        EventBody::AppointmentCancelled { appointment_id, .. } => {
            let appointment = open_appointment(&mut stream, appointment_id)?;
            appointment.status = AppointmentStatus::Cancelled;
            let appointment = appointment.clone();
            end_cases(&mut stream, appointment_id, None, "cancelled", ctx);
            cancellation_follow_up::on_cancelled(&mut stream, &appointment, event, ctx)
        }
        EventBody::AppointmentAssigned { appointment_id, technician_id } => {
            let appointment = open_appointment(&mut stream, appointment_id)?;
            appointment.technician_id = Some(technician_id.clone());
            // R0.3 an assignment in time ends the watch.
            appointment_watch::unwatch(&mut stream, appointment_id, ctx);
            appointment_watch::open_case(&stream, appointment_id).map(|idx| {
                let case = &mut stream.cases[idx];
                appointment_watch::end(case, TicketStatus::Resolved, "assigned", ctx);
                case.case_id.clone()
            })
        }
        EventBody::AppointmentRescheduleRequested { appointment_id, reason, stf_link } => {
            open_appointment(&mut stream, appointment_id)?;
            Some(reschedule_outreach::open(&mut stream, appointment_id, reason, stf_link, ctx))
        }
        EventBody::AppointmentRescheduled { appointment_id, window_start, window_end, requested_by } => {
            reschedule(&mut stream, appointment_id, *window_start, *window_end, requested_by, None, ctx)?;
            open_cases_of(&stream, appointment_id).first().map(|&i| stream.cases[i].case_id.clone())
        }
        EventBody::AppointmentCompleted { appointment_id, outcome, needs_material, material_days, painting } => {
            let appointment = open_appointment(&mut stream, appointment_id)?;
            appointment.status = AppointmentStatus::Completed;
            appointment.completion = Some(Completion {
                at: ctx.now,
                outcome: *outcome,
                needs_material: *needs_material,
                material_days: *material_days,
                painting: painting.clone(),
            });
            end_cases(&mut stream, appointment_id, None, "completed", ctx);
            // R3.1 operations hand the ticket over one hour after completion.
            if matches!(outcome, CompletionOutcome::Inspection | CompletionOutcome::Incomplete | CompletionOutcome::Painting) {
                let due = ctx.now + Duration::minutes(ctx.policy.second_visit.open_after_minutes as i64);
                ctx.place_subject(&mut stream, &appointment_subject(appointment_id), TimerKind::OpenSecondVisit, due);
            }
            None
        }
        other => {
            return Err(Refusal::conflict(
                "unsupported_event",
                format!("{} is not handled by this engine version", other.kind()),
                Some("type"),
            ))
        }
    };
    Ok((stream, Vec::new(), case_id))
}

fn booked(stream: Option<&Stream>, event: &Event, ctx: &mut Ctx) -> Result<Outcome, Refusal> {
    let EventBody::AppointmentBooked {
        appointment_id,
        order_id,
        customer,
        area,
        service,
        price,
        window_start,
        window_end,
        visit_number,
        technician_id,
        discount_percent,
    } = &event.body
    else {
        unreachable!("called for appointment.booked only")
    };
    let mut stream = stream.cloned().unwrap_or_else(|| Stream::new(StreamKey::Order(order_id.clone())));
    if stream.appointment(appointment_id).is_some() {
        return Err(Refusal::conflict(
            "already_booked",
            format!("appointment {appointment_id:?} is already booked; send appointment.rescheduled or appointment.assigned to change it"),
            Some("data.appointment_id"),
        ));
    }
    stream.appointments.push(Appointment {
        appointment_id: appointment_id.clone(),
        order_id: order_id.clone(),
        customer: customer.clone(),
        area: area.clone(),
        service: service.clone(),
        price: price.clone(),
        window_start: *window_start,
        window_end: *window_end,
        visit_number: *visit_number,
        technician_id: technician_id.clone(),
        discount_percent: *discount_percent,
        status: AppointmentStatus::Booked,
        reschedules: 0,
        booked_at: Some(ctx.now),
        reschedule_log: Vec::new(),
        completion: None,
    });
    // R0.1 every booked appointment without a technician is watched.
    let case_id = appointment_watch::watch(&mut stream, appointment_id, ctx);
    Ok((stream, vec![appointment_subject(appointment_id)], case_id))
}

/// A timer placed on an appointment rather than a case.
pub fn on_subject_timer(stream: &mut Stream, timer: &SubjectTimer, ctx: &mut Ctx) -> Option<String> {
    let appointment_id = timer.subject_id.strip_prefix("appointment:")?.to_string();
    match timer.timer.kind {
        TimerKind::StatusUpdate => appointment_watch::on_status_due(stream, &appointment_id, ctx),
        TimerKind::OpenSecondVisit => second_visit_follow_up::open(stream, &appointment_id, ctx),
        _ => None,
    }
}

/// Indices of the open cases about one appointment.
pub(crate) fn open_cases_of(stream: &Stream, appointment_id: &str) -> Vec<usize> {
    (0..stream.cases.len())
        .filter(|&i| stream.cases[i].appointment_id.as_deref() == Some(appointment_id) && stream.cases[i].ticket.is_open())
        .collect()
}

/// Ends the appointment's open watch and outreach cases (the appointment was cancelled or completed).
pub(crate) fn end_cases(stream: &mut Stream, appointment_id: &str, except: Option<&str>, result: &str, ctx: &mut Ctx) {
    appointment_watch::unwatch(stream, appointment_id, ctx);
    for idx in open_cases_of(stream, appointment_id) {
        let case = &mut stream.cases[idx];
        if except == Some(case.case_id.as_str()) {
            continue;
        }
        match case.flow {
            AnyFlow::AppointmentWatch(_) => appointment_watch::end(case, TicketStatus::Closed, result, ctx),
            AnyFlow::RescheduleOutreach(_) => reschedule_outreach::end(case, TicketStatus::Closed, result, ctx),
            _ => {}
        }
    }
}

/// How a window change was carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The appointment already had this window: nothing to do.
    Same,
    /// The record moved to the new window (R7).
    Moved,
    /// R3.8 the visit was cancelled and a new one created.
    Replaced,
}

/// R7.1–R7.3 (and R3.8) for a window change of one appointment: from `appointment.rescheduled`,
/// or from an outreach case's rebooking (`via`, the case that made the change).
pub(crate) fn reschedule(
    stream: &mut Stream,
    appointment_id: &str,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
    requested_by: &str,
    via: Option<usize>,
    ctx: &mut Ctx,
) -> Result<Change, Refusal> {
    let rp = &ctx.policy.reschedule;
    let (max, fee_within, fee_amount) = (rp.max_reschedules, rp.fee_within_hours, rp.fee_amount);
    let late_minutes = ctx.policy.second_visit.late_change_minutes;
    let appointment = open_appointment(stream, appointment_id)?;
    if appointment.window_start == window_start && appointment.window_end == window_end {
        let text = "appointment.rescheduled to the current window: nothing to change";
        for idx in open_cases_of(stream, appointment_id) {
            stream.cases[idx].note(ctx.now, "decision", text);
        }
        return Ok(Change::Same);
    }
    // R7.2 at most `max_reschedules` per appointment.
    if appointment.reschedules >= max {
        return Err(Refusal::rule(
            "R7.2",
            format!(
                "appointment {appointment_id:?} has already been rescheduled {} times; at most {max} are allowed",
                appointment.reschedules
            ),
            Some("data.appointment_id"),
        ));
    }
    let original = appointment.window_start;
    let until_start = original - ctx.now;
    // R7.1 a change inside the fee period is charged (0 = inform only).
    let fee = (until_start < Duration::hours(fee_within as i64)).then(|| appointment.price.with_amount(fee_amount));
    let late = until_start <= Duration::minutes(late_minutes as i64);
    appointment.reschedules += 1;
    appointment.reschedule_log.push(Reschedule {
        at: ctx.now,
        from_start: original,
        to_start: window_start,
        requested_by: requested_by.to_string(),
        fee: fee.clone(),
    });
    appointment.window_start = window_start;
    appointment.window_end = window_end;
    let count = appointment.reschedules;
    let appointment = appointment.clone();

    let cal = ctx.cal();
    let mut text = format!("R7 reschedule {count} of {max} by {requested_by}: {} → {}", cal.rfc3339(original), cal.rfc3339(window_start));
    match &fee {
        Some(f) if f.amount > 0 => text.push_str(&format!("; R7.1 within {fee_within} h of the start: fee {} {}", f.amount, f.currency)),
        Some(_) => text.push_str(&format!("; R7.1 within {fee_within} h of the start: fee applies, inform only")),
        None => {}
    }
    let mut noted = open_cases_of(stream, appointment_id);
    if let Some(v) = via.filter(|v| !noted.contains(v)) {
        noted.push(v);
    }
    for &idx in &noted {
        stream.cases[idx].note(ctx.now, "reschedule", text.clone());
    }

    let change = if late {
        replace_visit(stream, &appointment, original, via, ctx);
        Change::Replaced
    } else {
        appointment_watch::watch(stream, appointment_id, ctx);
        if via.is_none() {
            if let Some(idx) = reschedule_outreach::open_case(stream, appointment_id) {
                reschedule_outreach::on_rescheduled(&mut stream.cases[idx], window_start, ctx);
            }
        }
        Change::Moved
    };

    // R7.3 confirm the new date and time in the customer's language.
    let local = ctx.cal().local(window_start);
    let vars =
        SmsVars { date: Some(local.format("%Y-%m-%d").to_string()), time: Some(local.format("%H:%M").to_string()), ..SmsVars::default() };
    let on_case = via.or_else(|| appointment_watch::open_case(stream, appointment_id));
    match on_case {
        Some(idx) => ctx.sms(&mut stream.cases[idx], TemplateId::RescheduleConfirmation, &vars),
        None => {
            if let Err(e) = ctx.subject_sms(&appointment.customer, TemplateId::RescheduleConfirmation, &vars) {
                unreachable!("RESCHEDULE_CONFIRMATION always has its variables: {e}")
            }
        }
    }
    Ok(change)
}

/// R3.8 a change within `late_change_minutes` of the start: cancel the visit, create a new one,
/// close the order's pending cases.
fn replace_visit(stream: &mut Stream, appointment: &Appointment, original: DateTime<Utc>, via: Option<usize>, ctx: &mut Ctx) {
    let cal = ctx.cal();
    let mut cancel = Map::new();
    cancel.insert("appointment_id".into(), json!(appointment.appointment_id));
    cancel.insert("order_id".into(), json!(appointment.order_id));
    cancel.insert("by".into(), Value::from("ops"));
    cancel.insert("reason".into(), Value::from("late_time_change"));
    cancel.insert("window_start".into(), cal.rfc3339(original).into());
    let mut create = Map::new();
    create.insert("order_id".into(), json!(appointment.order_id));
    create.insert("replaces_appointment_id".into(), json!(appointment.appointment_id));
    create.insert("visit_number".into(), json!(appointment.visit_number));
    create.insert("window_start".into(), cal.rfc3339(appointment.window_start).into());
    create.insert("window_end".into(), cal.rfc3339(appointment.window_end).into());
    match via {
        Some(idx) => {
            let case = &mut stream.cases[idx];
            ctx.command(case, CommandType::CancelAppointment, cancel);
            ctx.command(case, CommandType::CreateVisit, create);
        }
        None => {
            ctx.subject_command(CommandType::CancelAppointment, cancel);
            ctx.subject_command(CommandType::CreateVisit, create);
        }
    }
    if let Some(a) = stream.appointment_mut(&appointment.appointment_id) {
        a.status = AppointmentStatus::Cancelled;
    }
    appointment_watch::unwatch(stream, &appointment.appointment_id, ctx);
    let via_id = via.map(|i| stream.cases[i].case_id.clone());
    for case in stream.cases.iter_mut().filter(|c| c.ticket.is_open() && Some(&c.case_id) != via_id.as_ref()) {
        close_case(case, "visit_replaced", ctx);
        case.note(ctx.now, "decision", format!("R3.8 visit {} replaced by a new one: pending case closed", appointment.appointment_id));
    }
}

/// Closes an open case of any appointment playbook (R3.8).
fn close_case(case: &mut Case, result: &str, ctx: &mut Ctx) {
    match case.flow {
        AnyFlow::AppointmentWatch(_) => appointment_watch::end(case, TicketStatus::Closed, result, ctx),
        AnyFlow::RescheduleOutreach(_) => reschedule_outreach::end(case, TicketStatus::Closed, result, ctx),
        AnyFlow::CancellationFollowUp(_) => {
            if let AnyFlow::CancellationFollowUp(f) = &mut case.flow {
                f.state = cancellation_follow_up::State::Closed;
            }
            close_ticket(case, result, ctx);
        }
        AnyFlow::SecondVisitFollowUp(_) => second_visit_follow_up::end(case, TicketStatus::Closed, result, ctx),
        AnyFlow::PackagePayment(_) | AnyFlow::PackageExpiry(_) => {}
    }
}

fn close_ticket(case: &mut Case, result: &str, ctx: &mut Ctx) {
    ctx.cancel(case, &[]);
    ctx.ticket(case, |t| {
        t.status = TicketStatus::Closed;
        t.result = Some(result.into());
    });
}

#[cfg(test)]
pub(crate) mod test_world {
    //! The given/when/then harness the appointment playbooks' unit tests share.
    pub use crate::domain::case::{CallOutcome, Customer, Language, Priority, TicketStatus, TimerKind};
    pub use crate::domain::effects::{Command, CommandType, Effect, TimerRef};
    pub use crate::domain::events::{CallCompleted, CancelledBy, CompletionOutcome, EventBody, Input, Painting, Resolution, Topic};
    pub use crate::domain::money::Money;
    pub use crate::domain::playbooks::testkit::{completed as call, event, t};
    pub use crate::domain::playbooks::{decide, Refusal};
    pub use crate::domain::policy::Policy;
    pub use crate::domain::sms::TemplateId;
    pub use crate::domain::stream::{AppointmentStatus, Stream};
    pub use chrono::{DateTime, Utc};

    /// `appointment.booked` for order O1, a two-hour first visit starting at `start`.
    pub fn booked(id: &str, start: &str, technician: Option<&str>) -> Input {
        event(EventBody::AppointmentBooked {
            appointment_id: id.into(),
            order_id: "O1".into(),
            customer: Customer { id: "C1".into(), name: "Mona".into(), phone: "+201001234567".into(), language: Language::En },
            area: "Cairo".into(),
            service: "painting".into(),
            price: Money::new(45_000, "EGP"),
            window_start: t(start),
            window_end: t(start) + chrono::Duration::hours(2),
            visit_number: 1,
            technician_id: technician.map(Into::into),
            discount_percent: 0,
        })
    }

    pub fn assigned(id: &str) -> Input {
        event(EventBody::AppointmentAssigned { appointment_id: id.into(), technician_id: "T1".into() })
    }

    pub fn rescheduled(id: &str, start: &str) -> Input {
        event(EventBody::AppointmentRescheduled {
            appointment_id: id.into(),
            window_start: t(start),
            window_end: t(start) + chrono::Duration::hours(2),
            requested_by: "customer".into(),
        })
    }

    pub fn cancelled(id: &str, by: CancelledBy, wants_follow_up: bool) -> Input {
        event(EventBody::AppointmentCancelled {
            appointment_id: id.into(),
            cancelled_by: by,
            reason: "moving".into(),
            wants_follow_up,
            availability: None,
        })
    }

    pub fn completed(id: &str, outcome: CompletionOutcome) -> Input {
        event(EventBody::AppointmentCompleted {
            appointment_id: id.into(),
            outcome,
            needs_material: false,
            material_days: None,
            painting: None,
        })
    }

    pub fn requested(id: &str) -> Input {
        event(EventBody::AppointmentRescheduleRequested {
            appointment_id: id.into(),
            reason: "technician late".into(),
            stf_link: "https://stf.example.com/r/A1".into(),
        })
    }

    pub fn calls(c: CallCompleted) -> Input {
        event(EventBody::CallCompleted(c))
    }

    pub struct World {
        pub stream: Stream,
        pub effects: Vec<Effect>,
        pub policy: Policy,
        started: bool,
    }

    impl World {
        pub fn new() -> Self {
            World {
                stream: Stream::new(crate::domain::stream::StreamKey::Order("O1".into())),
                effects: Vec::new(),
                policy: Policy::default(),
                started: false,
            }
        }
        pub fn when(&mut self, input: Input, now: &str) -> Result<Option<String>, Refusal> {
            let d = decide(self.started.then_some(&self.stream), &input, t(now), &self.policy)?;
            self.started = true;
            self.stream = d.stream;
            self.effects = d.effects;
            Ok(d.case_id)
        }
        /// Fires one timer of a case at `now`.
        pub fn fire(&mut self, case_id: &str, kind: TimerKind, step: u32, now: &str) {
            let timer = TimerRef { stream: self.stream.key.clone(), case_id: Some(case_id.into()), kind, step };
            self.when(Input::Timer(timer), now).unwrap();
        }
        /// Fires the case's earliest pending timer at its due time.
        pub fn fire_next(&mut self, case_id: &str) -> (TimerKind, DateTime<Utc>) {
            let next = self.case(case_id).timers.iter().min_by_key(|t| t.due_at).expect("a pending timer").clone();
            let now = self.policy.calendar.rfc3339(next.due_at);
            self.fire(case_id, next.kind, next.step, &now);
            (next.kind, next.due_at)
        }
        /// Fires the stream's earliest subject timer at its due time.
        pub fn fire_subject(&mut self) -> Option<String> {
            let next = self.stream.timers.iter().min_by_key(|t| t.timer.due_at).expect("a subject timer").timer.clone();
            let now = self.policy.calendar.rfc3339(next.due_at);
            let timer = TimerRef { stream: self.stream.key.clone(), case_id: None, kind: next.kind, step: next.step };
            self.when(Input::Timer(timer), &now).unwrap()
        }
        pub fn case(&self, id: &str) -> &crate::domain::case::Case {
            self.stream.case(id).unwrap()
        }
        pub fn commands(&self) -> Vec<CommandType> {
            self.effects.iter().filter_map(|e| if let Effect::Emit(c) = e { Some(c.kind) } else { None }).collect()
        }
        pub fn command(&self, kind: CommandType) -> Option<Command> {
            self.effects.iter().find_map(|e| match e {
                Effect::Emit(c) if c.kind == kind => Some(c.clone()),
                _ => None,
            })
        }
        pub fn sms(&self) -> Vec<TemplateId> {
            self.effects.iter().filter_map(|e| if let Effect::SendSms(s) = e { Some(s.template) } else { None }).collect()
        }
        pub fn sms_bodies(&self) -> Vec<String> {
            self.effects.iter().filter_map(|e| if let Effect::SendSms(s) = e { Some(s.body.clone()) } else { None }).collect()
        }
        pub fn due(&self, id: &str, kind: TimerKind) -> Option<DateTime<Utc>> {
            self.case(id).pending(kind).map(|t| t.due_at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_world::*;

    const MON_10: &str = "2026-03-02T10:00:00+02:00";

    fn world_with(start: &str) -> World {
        let mut w = World::new();
        w.when(booked("A1", start, Some("T1")), MON_10).unwrap();
        w
    }

    #[test]
    fn r7_1_a_change_inside_24h_records_the_fee_outside_does_not() {
        let mut w = world_with("2026-03-03T09:00:00+02:00");
        w.policy.reschedule.fee_amount = 5_000;
        w.when(rescheduled("A1", "2026-03-05T10:00:00+02:00"), MON_10).unwrap();
        let a = w.stream.appointment("A1").unwrap();
        assert_eq!(a.reschedule_log[0].fee.as_ref().map(|f| f.amount), Some(5_000), "23 h before the original start");
        assert_eq!(a.window_start, t("2026-03-05T10:00:00+02:00"));
        w.when(rescheduled("A1", "2026-03-06T10:00:00+02:00"), MON_10).unwrap();
        assert_eq!(w.stream.appointment("A1").unwrap().reschedule_log[1].fee, None, "3 days ahead: free");
    }

    #[test]
    fn r7_1_default_fee_is_inform_only_and_written_on_the_open_case() {
        let mut w = World::new();
        let watch = w.when(booked("A1", "2026-03-02T12:30:00+02:00", None), MON_10).unwrap().unwrap();
        assert_eq!(w.when(rescheduled("A1", "2026-03-04T10:00:00+02:00"), MON_10).unwrap(), Some(watch.clone()));
        assert_eq!(w.due(&watch, TimerKind::StatusUpdate), Some(t("2026-03-04T07:00:00+02:00")), "R0.3 timers move");
        assert_eq!(w.stream.appointment("A1").unwrap().reschedule_log[0].fee.as_ref().map(|f| f.amount), Some(0));
        assert!(w.case(&watch).timeline.iter().any(|e| e.detail.contains("R7.1") && e.detail.contains("inform only")));
    }

    #[test]
    fn r7_2_the_fourth_reschedule_is_refused() {
        let mut w = world_with("2026-03-10T10:00:00+02:00");
        for day in ["11", "12", "14"] {
            w.when(rescheduled("A1", &format!("2026-03-{day}T10:00:00+02:00")), MON_10).unwrap();
        }
        let before = w.stream.clone();
        let e = w.when(rescheduled("A1", "2026-03-15T10:00:00+02:00"), MON_10).unwrap_err();
        assert_eq!(e.rule, Some("R7.2"));
        assert_eq!(w.stream, before, "nothing stored on a refusal");
        // The same window again is the dashboard echoing: not a fourth change.
        w.when(rescheduled("A1", "2026-03-14T10:00:00+02:00"), MON_10).unwrap();
        assert!(w.effects.is_empty());
    }

    #[test]
    fn r7_3_confirmation_in_the_customer_language_with_local_date_and_time() {
        let mut w = world_with("2026-03-10T10:00:00+02:00");
        w.when(rescheduled("A1", "2026-03-11T14:30:00+02:00"), MON_10).unwrap();
        assert_eq!(w.sms(), vec![TemplateId::RescheduleConfirmation]);
        let body = &w.sms_bodies()[0];
        assert!(body.contains("2026-03-11") && body.contains("14:30") && body.starts_with("Hello"), "{body}");
        let Effect::SendSms(s) = w.effects.iter().find(|e| matches!(e, Effect::SendSms(_))).unwrap() else { unreachable!() };
        assert_eq!(s.case_id, None, "no case involved: a subject SMS");
    }

    #[test]
    fn r3_8_a_change_within_90_minutes_replaces_the_visit_and_closes_pending_cases() {
        let mut w = World::new();
        let watch = w.when(booked("A1", "2026-03-02T11:30:00+02:00", None), MON_10).unwrap().unwrap();
        w.when(rescheduled("A1", "2026-03-02T15:00:00+02:00"), MON_10).unwrap();
        assert_eq!(w.commands(), vec![CommandType::CancelAppointment, CommandType::CreateVisit]);
        let create = w.command(CommandType::CreateVisit).unwrap();
        assert_eq!(create.data["window_start"], "2026-03-02T15:00:00+02:00");
        assert_eq!(create.data["replaces_appointment_id"], "A1");
        assert_eq!(w.command(CommandType::CancelAppointment).unwrap().data["reason"], "late_time_change");
        assert_eq!(w.stream.appointment("A1").unwrap().status, AppointmentStatus::Cancelled);
        let c = w.case(&watch);
        assert_eq!((c.ticket.status, c.ticket.result.as_deref()), (TicketStatus::Closed, Some("visit_replaced")));
        assert!(c.timers.is_empty());
        assert_eq!(w.stream.cases.len(), 1, "R3.8 is not a cancellation: no follow-up opens");
        assert_eq!(w.sms(), vec![TemplateId::RescheduleConfirmation]);

        let mut w = world_with("2026-03-02T11:31:00+02:00");
        w.when(rescheduled("A1", "2026-03-02T15:00:00+02:00"), MON_10).unwrap();
        assert!(w.commands().is_empty(), "91 minutes before: an ordinary reschedule");
    }

    #[test]
    fn timer_samples_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        let mut kinds = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("timer.") {
                let timer: TimerRef = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(name, format!("timer.{}.json", timer.kind));
                kinds.insert(timer.kind);
            }
        }
        for kind in [
            TimerKind::StatusUpdate,
            TimerKind::AutoCancel,
            TimerKind::OutreachCancel,
            TimerKind::OpenSecondVisit,
            TimerKind::FirstCallSla,
            TimerKind::CostSla,
            TimerKind::CallAttempt,
            TimerKind::AutoClose,
        ] {
            assert!(kinds.contains(&kind), "events/timer.{kind}.json");
        }
    }
}
