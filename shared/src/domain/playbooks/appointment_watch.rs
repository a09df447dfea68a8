//! appointment_watch (R0.1–R0.3): T-3h status SMS and T-1h auto-cancel of an unassigned appointment (seed 000).
//!
//! Decisions the SPEC leaves open, settled here:
//! - The watch starts at booking as a subject timer at T-3h; the watch *case* opens when its
//!   first step is due (the T-3h STATUS_UPDATE), so an appointment assigned, cancelled or
//!   completed before T-3h leaves no ticket behind and the 202 of the booking names no case.
//!   An appointment booked with a technician, or whose window has already started, is not watched.
//! - Ticket: category `appointment`, sub_category `technician_assignment`, type `watch`, status
//!   `open`, priority `low`, group `ops`, area from the appointment, `resolution_due` = the
//!   auto-cancel moment.
//! - T-3h and T-1h are exact instants before `window_start` (SPEC §2), not moved into working hours.
//! - Booked less than 3 h before the start (but more than 1 h): the case opens at once and the
//!   STATUS_UPDATE goes now — the customer is already inside the period the SMS is about; the
//!   T-1h cancel stays. The 202 names the case.
//! - Booked less than 1 h before the start: no SMS and no automatic cancel (the T-1h moment was
//!   never reached while the appointment was watched; seed 000 leaves a last-minute booking to
//!   "manual updating"): the watch case opens at once with priority `urgent` for ops, no timers.
//! - Assignment resolves the ticket (result `assigned`); a cancellation or a completion closes it
//!   (result `cancelled` / `completed`); the T-1h auto-cancel resolves it (result `auto_cancelled`).
//!   Pending timers (subject and case) are cancelled every time, so a late-firing one is stale (R0.3).
//! - A reschedule (R7) re-plans the watch from the new window with the same rules, so a moved
//!   appointment may get a second STATUS_UPDATE before its new start.
//! - R0.2 opens `cancellation_follow_up` as for an ops cancellation with reason `unassigned`,
//!   only when R2.1 holds (a first visit); the watch case keeps its own id.
//! - Call outcomes reported on a watch case are recorded on the timeline and change nothing.

use super::{appointment_subject, cancellation_follow_up, Ctx, Flow as AnyFlow, Refusal};
use crate::domain::case::{Attempt, Case, Group, Priority, Ticket, TicketStatus, TimerKind};
use crate::domain::effects::CommandType;
use crate::domain::events::{CallCompleted, CancelledBy};
use crate::domain::sms::{SmsVars, TemplateId};
use crate::domain::stream::{AppointmentStatus, Stream};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

crate::named_enum! {
    pub enum State {
        /// Unassigned; T-3h and T-1h timers pending (R0.1, R0.2).
        Watching = "watching",
        /// R0.1 the STATUS_UPDATE went out; the T-1h cancel is pending.
        StatusSent = "status_sent",
        /// Booked inside the last hour: left to ops, no automatic step.
        Manual = "manual",
        /// R0.3 a technician was assigned in time.
        Assigned = "assigned",
        /// R0.2 cancelled at T-1h as unassigned.
        AutoCancelled = "auto_cancelled",
        /// R0.3 cancelled, completed or replaced by other means.
        Closed = "closed",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub state: State,
}

flow_of!(AppointmentWatch);

/// The open watch case of an appointment, if any.
pub fn open_case(stream: &Stream, appointment_id: &str) -> Option<usize> {
    stream.cases.iter().position(|c| {
        matches!(c.flow, AnyFlow::AppointmentWatch(_)) && c.appointment_id.as_deref() == Some(appointment_id) && c.ticket.is_open()
    })
}

/// R0.1 watches an unassigned appointment whose window is still ahead: a subject timer at T-3h,
/// or the case at once when T-3h has passed. Returns the case when one is open.
pub fn watch(stream: &mut Stream, appointment_id: &str, ctx: &mut Ctx) -> Option<String> {
    let appointment = stream.appointment(appointment_id)?.clone();
    let subject = appointment_subject(appointment_id);
    ctx.cancel_subject(stream, &subject, &[TimerKind::StatusUpdate]);
    if appointment.status != AppointmentStatus::Booked || appointment.technician_id.is_some() || appointment.window_start <= ctx.now {
        return None;
    }
    if let Some(idx) = open_case(stream, appointment_id) {
        let case = &mut stream.cases[idx];
        ctx.cancel(case, &[TimerKind::StatusUpdate, TimerKind::AutoCancel]);
        if flow(case).state == State::Manual && ctx.now < cancel_moment(appointment.window_start, ctx) {
            flow(case).state = State::Watching;
        }
        plan(case, appointment.window_start, ctx);
        return Some(case.case_id.clone());
    }
    let status_at = status_moment(appointment.window_start, ctx);
    if ctx.now < status_at {
        ctx.place_subject(stream, &subject, TimerKind::StatusUpdate, status_at);
        return None;
    }
    Some(open(stream, appointment_id, ctx))
}

/// The T-3h subject timer fired (R0.1): the watch case opens if the appointment is still unassigned.
pub fn on_status_due(stream: &mut Stream, appointment_id: &str, ctx: &mut Ctx) -> Option<String> {
    let appointment = stream.appointment(appointment_id)?;
    if appointment.status != AppointmentStatus::Booked || appointment.technician_id.is_some() || open_case(stream, appointment_id).is_some()
    {
        return None;
    }
    Some(open(stream, appointment_id, ctx))
}

/// Stops watching (R0.3): the pending T-3h subject timer is cancelled.
pub fn unwatch(stream: &mut Stream, appointment_id: &str, ctx: &mut Ctx) {
    ctx.cancel_subject(stream, &appointment_subject(appointment_id), &[TimerKind::StatusUpdate]);
}

/// Opens the watch case now and takes the step that is due.
fn open(stream: &mut Stream, appointment_id: &str, ctx: &mut Ctx) -> String {
    let appointment = stream.appointment(appointment_id).expect("the caller checked the appointment").clone();
    let case_id = stream.next_case_id();
    let cancel_at = cancel_moment(appointment.window_start, ctx);
    let ticket = Ticket::open("appointment", "technician_assignment", "watch", Priority::Low, Group::Ops, &appointment.area)
        .due(cancel_at.max(ctx.now));
    let initial = AnyFlow::AppointmentWatch(Flow { state: State::Watching });
    let mut case = Case::open(case_id.clone(), appointment.customer.clone(), ticket, ctx.now, initial)
        .about_appointment(&appointment.appointment_id, &appointment.order_id);
    case.note(
        ctx.now,
        "decision",
        format!("R0.1 appointment {} starting {} is still unassigned", appointment_id, ctx.cal().rfc3339(appointment.window_start)),
    );
    plan(&mut case, appointment.window_start, ctx);
    stream.cases.push(case);
    case_id
}

fn status_moment(window_start: DateTime<Utc>, ctx: &Ctx) -> DateTime<Utc> {
    window_start - Duration::minutes(ctx.policy.appointment_watch.status_update_before_minutes as i64)
}

fn cancel_moment(window_start: DateTime<Utc>, ctx: &Ctx) -> DateTime<Utc> {
    window_start - Duration::minutes(ctx.policy.appointment_watch.auto_cancel_before_minutes as i64)
}

/// Places the T-3h / T-1h timers for a window, or takes the step at once when its moment has passed.
fn plan(case: &mut Case, window_start: DateTime<Utc>, ctx: &mut Ctx) {
    let (status_at, cancel_at) = (status_moment(window_start, ctx), cancel_moment(window_start, ctx));
    let due = cancel_at.max(ctx.now);
    ctx.ticket(case, |t| t.resolution_due = Some(due));
    if ctx.now >= cancel_at {
        flow(case).state = State::Manual;
        ctx.ticket(case, |t| t.priority = Priority::Urgent);
        case.note(ctx.now, "decision", "R0.2 inside the last hour before the start: no automatic cancel, left to ops");
        return;
    }
    if ctx.now >= status_at {
        if flow(case).state != State::StatusSent {
            case.note(ctx.now, "decision", "R0.1 still unassigned inside the last 3 hours: STATUS_UPDATE");
            status_update(case, ctx);
        }
    } else {
        // Only on a re-plan: a case opens at T-3h at the earliest.
        flow(case).state = State::Watching;
        ctx.place(case, TimerKind::StatusUpdate, status_at);
    }
    ctx.place(case, TimerKind::AutoCancel, cancel_at);
}

fn status_update(case: &mut Case, ctx: &mut Ctx) {
    ctx.sms(case, TemplateId::StatusUpdate, &SmsVars::default());
    flow(case).state = State::StatusSent;
}

/// R0.3 assignment, cancellation or completion ends the watch; its timers are cancelled.
pub fn end(case: &mut Case, status: TicketStatus, result: &str, ctx: &mut Ctx) {
    ctx.cancel(case, &[]);
    ctx.ticket(case, |t| {
        t.status = status;
        t.result = Some(result.into());
    });
    flow(case).state = if result == "assigned" { State::Assigned } else { State::Closed };
    case.note(ctx.now, "decision", format!("R0.3 watch ended: {result}"));
}

pub fn on_timer(stream: &mut Stream, idx: usize, kind: TimerKind, ctx: &mut Ctx) {
    let Some(appointment) = stream.cases[idx].appointment_id.as_deref().and_then(|a| stream.appointment(a)).cloned() else {
        return;
    };
    // Defensive: the events that end the watch cancel its timers, so these hold whenever one fires.
    if appointment.status != AppointmentStatus::Booked || appointment.technician_id.is_some() {
        return;
    }
    match kind {
        TimerKind::StatusUpdate => {
            let case = &mut stream.cases[idx];
            case.note(ctx.now, "decision", "R0.1 still unassigned at T-3h of the new window: STATUS_UPDATE");
            status_update(case, ctx);
        }
        TimerKind::AutoCancel => {
            let case = &mut stream.cases[idx];
            let mut data = Map::new();
            data.insert("appointment_id".into(), json!(appointment.appointment_id));
            data.insert("order_id".into(), json!(appointment.order_id));
            data.insert("by".into(), Value::from("ops"));
            data.insert("reason".into(), Value::from("unassigned"));
            ctx.command(case, CommandType::CancelAppointment, data);
            ctx.cancel(case, &[]);
            ctx.ticket(case, |t| {
                t.status = TicketStatus::Resolved;
                t.result = Some("auto_cancelled".into());
            });
            flow(case).state = State::AutoCancelled;
            case.note(ctx.now, "decision", "R0.2 still unassigned at T-1h: appointment cancelled by ops");
            let watch_id = case.case_id.clone();
            if let Some(a) = stream.appointment_mut(&appointment.appointment_id) {
                a.status = AppointmentStatus::Cancelled;
            }
            super::appointments::end_cases(stream, &appointment.appointment_id, Some(&watch_id), "appointment_cancelled", ctx);
            // R0.2 → R2.1: the follow-up of an ops cancellation, first visits only.
            if appointment.visit_number == 1 {
                let cfu = cancellation_follow_up::open(stream, &appointment, CancelledBy::Ops, "unassigned", None, ctx);
                if let Some(case) = stream.cases.iter_mut().find(|c| c.case_id == watch_id) {
                    case.note(ctx.now, "decision", format!("R0.2 cancellation follow-up {cfu} opened"));
                }
            }
        }
        _ => {}
    }
}

pub fn on_call(stream: &mut Stream, idx: usize, call: &CallCompleted, ctx: &mut Ctx) -> Result<(), Refusal> {
    let case = &mut stream.cases[idx];
    case.attempts.push(Attempt {
        at: ctx.now,
        outcome: call.outcome,
        call_id: Some(call.call_id.clone()),
        agent_id: Some(call.agent_id.clone()),
    });
    case.note(ctx.now, "decision", "outcome recorded; a watch case has no call steps");
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Given an order stream, when an appointment event or a watch timer arrives, then these effects.
    use super::super::appointments::test_world::*;
    use super::*;

    const MON_10: &str = "2026-03-02T10:00:00+02:00";
    const TUE_10: &str = "2026-03-03T10:00:00+02:00";

    /// A1 booked unassigned on Monday for Tuesday 10:00; the T-3h subject timer fires.
    fn watched() -> (World, String) {
        let mut w = World::new();
        assert_eq!(w.when(booked("A1", TUE_10, None), MON_10).unwrap(), None, "no case before T-3h");
        assert_eq!(w.stream.timers[0].timer.due_at, t("2026-03-03T07:00:00+02:00"));
        let id = w.fire_subject().expect("R0.1 the watch case opens at T-3h");
        (w, id)
    }

    #[test]
    fn r0_1_unassigned_at_t_minus_3h_opens_an_ops_ticket_and_sends_the_status_update() {
        let (w, id) = watched();
        assert_eq!(w.sms(), vec![TemplateId::StatusUpdate]);
        let c = w.case(&id);
        assert_eq!(c.playbook(), "appointment_watch");
        assert_eq!(c.opened_at, t("2026-03-03T07:00:00+02:00"), "exact, before working hours");
        assert_eq!((c.ticket.category.as_str(), c.ticket.group, c.ticket.status), ("appointment", Group::Ops, TicketStatus::Open));
        assert_eq!(c.state(), "status_sent");
        assert_eq!(w.due(&id, TimerKind::AutoCancel), Some(t("2026-03-03T09:00:00+02:00")));
        assert_eq!(c.ticket.resolution_due, Some(t("2026-03-03T09:00:00+02:00")));
    }

    #[test]
    fn r0_1_assigned_bookings_and_past_windows_are_not_watched() {
        let mut w = World::new();
        assert_eq!(w.when(booked("A1", TUE_10, Some("T-1")), MON_10).unwrap(), None);
        assert!(w.stream.timers.is_empty());
        let mut w = World::new();
        assert_eq!(w.when(booked("A1", "2026-03-02T09:00:00+02:00", None), MON_10).unwrap(), None);
        assert!(w.stream.timers.is_empty() && w.stream.cases.is_empty());
    }

    #[test]
    fn r0_2_still_unassigned_at_t_minus_1h_cancels_and_opens_the_follow_up() {
        let (mut w, id) = watched();
        assert_eq!(w.fire_next(&id), (TimerKind::AutoCancel, t("2026-03-03T09:00:00+02:00")));
        let cancel = w.command(CommandType::CancelAppointment).expect("R0.2 cancel");
        assert_eq!(cancel.data["by"], "ops");
        assert_eq!(cancel.data["reason"], "unassigned");
        assert_eq!(cancel.data["appointment_id"], "A1");
        assert_eq!(cancel.data["order_id"], "O1");
        assert_eq!(w.stream.appointment("A1").unwrap().status, AppointmentStatus::Cancelled);
        let c = w.case(&id);
        assert_eq!((c.ticket.status, c.ticket.result.as_deref()), (TicketStatus::Resolved, Some("auto_cancelled")));
        let cfu = w.stream.cases.iter().find(|c| c.playbook() == "cancellation_follow_up").expect("R2.1 as an ops cancellation");
        assert!(cfu.timeline.iter().any(|e| e.detail.contains("unassigned")));
        assert_eq!(w.sms(), vec![TemplateId::DiscountOffer], "R2.3 ops cancellation without discount");
    }

    #[test]
    fn r0_2_a_second_visit_is_cancelled_without_a_follow_up() {
        let mut w = World::new();
        let mut b = booked("A1", TUE_10, None);
        if let Input::Event(e) = &mut b {
            if let EventBody::AppointmentBooked { visit_number, .. } = &mut e.body {
                *visit_number = 2;
            }
        }
        w.when(b, MON_10).unwrap();
        let id = w.fire_subject().unwrap();
        w.fire_next(&id);
        assert!(w.command(CommandType::CancelAppointment).is_some());
        assert_eq!(w.stream.cases.len(), 1);
    }

    #[test]
    fn r0_3_assignment_between_t3h_and_t1h_cancels_the_watch_and_stale_timers_do_nothing() {
        let (mut w, id) = watched();
        let cancel = w.case(&id).pending(TimerKind::AutoCancel).unwrap().clone();
        assert_eq!(w.when(assigned("A1"), "2026-03-03T08:00:00+02:00").unwrap(), Some(id.clone()));
        let c = w.case(&id);
        assert_eq!((c.ticket.status, c.ticket.result.as_deref()), (TicketStatus::Resolved, Some("assigned")));
        assert!(c.timers.is_empty());
        assert!(w.effects.iter().any(|e| matches!(e, Effect::CancelTimer(t) if t.kind == TimerKind::AutoCancel)));
        let before = w.stream.clone();
        w.fire(&id, TimerKind::AutoCancel, cancel.step, "2026-03-03T09:00:00+02:00");
        assert!(w.effects.is_empty(), "R0.3 a stale timer does nothing");
        assert_eq!(w.stream.cases, before.cases);
    }

    #[test]
    fn r0_3_assignment_before_t_minus_3h_cancels_the_subject_timer() {
        let mut w = World::new();
        w.when(booked("A1", TUE_10, None), MON_10).unwrap();
        let step = w.stream.timers[0].timer.step;
        assert_eq!(w.when(assigned("A1"), "2026-03-02T12:00:00+02:00").unwrap(), None);
        assert!(w.stream.timers.is_empty());
        assert!(w.effects.iter().any(|e| matches!(e, Effect::CancelTimer(t) if t.kind == TimerKind::StatusUpdate && t.case_id.is_none())));
        let stale = TimerRef { stream: w.stream.key.clone(), case_id: None, kind: TimerKind::StatusUpdate, step };
        w.when(Input::Timer(stale), "2026-03-03T07:00:00+02:00").unwrap();
        assert!(w.effects.is_empty() && w.stream.cases.is_empty(), "stale");
    }

    #[test]
    fn r0_3_cancellation_and_completion_close_the_watch() {
        let (mut w, id) = watched();
        w.when(cancelled("A1", CancelledBy::Customer, false), "2026-03-03T08:00:00+02:00").unwrap();
        assert_eq!(w.case(&id).ticket.result.as_deref(), Some("cancelled"));
        assert!(w.case(&id).timers.is_empty());

        let (mut w, id) = watched();
        w.when(completed("A1", CompletionOutcome::Done), "2026-03-03T08:00:00+02:00").unwrap();
        assert_eq!((w.case(&id).ticket.status, w.case(&id).ticket.result.as_deref()), (TicketStatus::Closed, Some("completed")));
    }

    #[test]
    fn booked_less_than_3h_before_sends_now_and_less_than_1h_is_left_to_ops() {
        let mut w = World::new();
        let id = w.when(booked("A1", TUE_10, None), "2026-03-03T08:00:00+02:00").unwrap().unwrap();
        assert_eq!(w.sms(), vec![TemplateId::StatusUpdate]);
        assert_eq!(w.due(&id, TimerKind::StatusUpdate), None);
        assert_eq!(w.due(&id, TimerKind::AutoCancel), Some(t("2026-03-03T09:00:00+02:00")));

        let mut w = World::new();
        let id = w.when(booked("A1", TUE_10, None), "2026-03-03T09:30:00+02:00").unwrap().unwrap();
        assert!(w.sms().is_empty() && w.commands().is_empty());
        let c = w.case(&id);
        assert!(c.timers.is_empty());
        assert_eq!((c.state(), c.ticket.priority), ("manual", Priority::Urgent));
    }

    #[test]
    fn r0_3_a_reschedule_moves_the_watch() {
        let mut w = World::new();
        w.when(booked("A1", TUE_10, None), MON_10).unwrap();
        w.when(rescheduled("A1", "2026-03-04T16:00:00+02:00"), MON_10).unwrap();
        assert_eq!(w.stream.timers.len(), 1);
        assert_eq!(w.stream.timers[0].timer.due_at, t("2026-03-04T13:00:00+02:00"));

        let (mut w, id) = watched();
        w.when(rescheduled("A1", "2026-03-04T16:00:00+02:00"), "2026-03-03T08:00:00+02:00").unwrap();
        assert_eq!(w.due(&id, TimerKind::StatusUpdate), Some(t("2026-03-04T13:00:00+02:00")));
        assert_eq!(w.due(&id, TimerKind::AutoCancel), Some(t("2026-03-04T15:00:00+02:00")));
        assert_eq!(w.case(&id).state(), "watching");
    }
}
