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

use super::{Playbook, PlaybookName, SubjectEvent};
use crate::domain::ctx::{Ctx, Intent};
use crate::domain::events::{CallCompleted, CancelledBy, Resolution};
use crate::domain::policy::Policy;
use crate::domain::records::case::{CaseCore, Group, Priority, Ticket, TicketKind, TicketResult, TicketStatus, TimerKind};
use crate::domain::records::order::Order;
use crate::domain::refusal::Refusal;
use crate::domain::sms::{SmsVars, TemplateId};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub struct AppointmentWatch;

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

/// R0.1 T-3h: when the STATUS_UPDATE goes and the watch case opens.
pub fn status_moment(window_start: DateTime<Utc>, policy: &Policy) -> DateTime<Utc> {
    window_start - Duration::minutes(policy.appointment_watch.status_update_before_minutes as i64)
}

/// R0.2 T-1h: when an unassigned appointment is cancelled.
fn cancel_moment(window_start: DateTime<Utc>, policy: &Policy) -> DateTime<Utc> {
    window_start - Duration::minutes(policy.appointment_watch.auto_cancel_before_minutes as i64)
}

/// `3 h`, `90 min`: a policy span as the timeline shows it.
fn span(d: Duration) -> String {
    if d.num_minutes() % 60 == 0 {
        format!("{} h", d.num_hours())
    } else {
        format!("{} min", d.num_minutes())
    }
}

/// Places the T-3h / T-1h timers for a window, or takes the step at once when its moment has passed.
fn plan(case: &mut CaseCore, flow: &mut Flow, window_start: DateTime<Utc>, ctx: &mut Ctx) {
    let (status_at, cancel_at) = (status_moment(window_start, ctx.policy), cancel_moment(window_start, ctx.policy));
    let due = cancel_at.max(ctx.now);
    ctx.ticket(case, |t| t.resolution_due = Some(due));
    if ctx.now >= cancel_at {
        flow.state = State::Manual;
        ctx.ticket(case, |t| t.priority = Priority::Urgent);
        ctx.decided(
            case,
            format!("R0.2 inside the last {} before the start: no automatic cancel, left to ops", span(window_start - cancel_at)),
        );
        // R9.3 the ticket still ends: at the start, assigned or not.
        ctx.place(case, TimerKind::AutoClose, window_start.max(ctx.now));
        return;
    }
    if ctx.now >= status_at {
        if flow.state != State::StatusSent {
            ctx.decided(
                case,
                format!("R0.1 still unassigned inside the last {} before the start: STATUS_UPDATE", span(window_start - status_at)),
            );
            status_update(case, flow, ctx);
        }
    } else {
        // Only on a re-plan: a case opens at T-3h at the earliest.
        flow.state = State::Watching;
        ctx.place(case, TimerKind::StatusUpdate, status_at);
    }
    ctx.place(case, TimerKind::AutoCancel, cancel_at);
}

fn status_update(case: &mut CaseCore, flow: &mut Flow, ctx: &mut Ctx) {
    ctx.sms(case, TemplateId::StatusUpdate, &SmsVars::default());
    flow.state = State::StatusSent;
}

/// R0.3 assignment, cancellation or completion ends the watch; its timers are cancelled.
fn end(case: &mut CaseCore, flow: &mut Flow, status: TicketStatus, result: TicketResult, ctx: &mut Ctx) {
    ctx.finish(case, status, result);
    flow.state = if result == TicketResult::Assigned { State::Assigned } else { State::Closed };
    ctx.decided(case, format!("R0.3 watch ended: {result}"));
}

impl Playbook for AppointmentWatch {
    const NAME: PlaybookName = PlaybookName::AppointmentWatch;
    type Flow = Flow;
    type Subject = Order;
    /// The appointment watched (the order checked it is booked and unassigned).
    type Opening = String;

    /// Opens the watch case now and takes the step that is due.
    fn open(case_id: String, order: &Order, appointment_id: &String, ctx: &mut Ctx) -> (CaseCore, Flow) {
        let appointment = order.appointment(appointment_id).expect("the order checked the appointment");
        let cancel_at = cancel_moment(appointment.window_start, ctx.policy);
        let ticket = Ticket::open(TicketKind::Watch, Priority::Low, Group::Ops, &appointment.area).due(cancel_at.max(ctx.now));
        let mut flow = Flow { state: State::Watching };
        let mut case = CaseCore::open(case_id, appointment.customer.clone(), ticket, ctx.now)
            .about_appointment(&appointment.appointment_id, &appointment.order_id);
        ctx.decided(
            &mut case,
            format!("R0.1 appointment {appointment_id} starting {} is still unassigned", ctx.cal().rfc3339(appointment.window_start)),
        );
        plan(&mut case, &mut flow, appointment.window_start, ctx);
        (case, flow)
    }

    fn state(flow: &Flow) -> &'static str {
        flow.state.as_str()
    }

    /// A watch case has no call steps: any outcome is recorded.
    fn refuses(_: &Resolution) -> Option<&'static str> {
        None
    }

    fn on_call(case: &mut CaseCore, _: &mut Flow, _: &CallCompleted, _: &Order, ctx: &mut Ctx) -> Result<(), Refusal> {
        ctx.decided(case, "outcome recorded; a watch case has no call steps");
        Ok(())
    }

    fn on_timer(case: &mut CaseCore, flow: &mut Flow, kind: TimerKind, order: &Order, ctx: &mut Ctx) {
        let Some(appointment) = case.appointment_id.as_deref().and_then(|a| order.appointment(a)) else { return };
        // Defensive: the events that end the watch cancel its timers, so these hold whenever one fires.
        if !appointment.is_booked() || appointment.technician_id.is_some() {
            return;
        }
        match kind {
            TimerKind::StatusUpdate => {
                let before = Duration::minutes(ctx.policy.appointment_watch.status_update_before_minutes as i64);
                ctx.decided(case, format!("R0.1 still unassigned {} before the new window: STATUS_UPDATE", span(before)));
                status_update(case, flow, ctx);
            }
            // R9.3 the start came with the ticket left to ops.
            TimerKind::AutoClose => {
                ctx.finish(case, TicketStatus::Closed, TicketResult::Expired);
                flow.state = State::Closed;
                ctx.decided(case, "the appointment started with the ticket left to ops: closed");
            }
            TimerKind::AutoCancel => {
                let intent = Intent::CancelAppointment {
                    appointment_id: appointment.appointment_id.clone(),
                    by: CancelledBy::Ops,
                    reason: "unassigned".into(),
                    wants_follow_up: false,
                };
                ctx.intend(case, intent);
                ctx.finish(case, TicketStatus::Resolved, TicketResult::AutoCancelled);
                flow.state = State::AutoCancelled;
                let before = Duration::minutes(ctx.policy.appointment_watch.auto_cancel_before_minutes as i64);
                ctx.decided(case, format!("R0.2 still unassigned {} before the start: appointment cancelled by ops", span(before)));
            }
            _ => {}
        }
    }

    fn on_subject(case: &mut CaseCore, flow: &mut Flow, event: &SubjectEvent, _: &Order, ctx: &mut Ctx) {
        match event {
            SubjectEvent::Assigned => end(case, flow, TicketStatus::Resolved, TicketResult::Assigned, ctx),
            SubjectEvent::AppointmentEnded(result) => end(case, flow, TicketStatus::Closed, *result, ctx),
            // R0.3 a reschedule re-plans the watch from the new window.
            SubjectEvent::Moved { window_start } => {
                ctx.cancel(case, &[TimerKind::StatusUpdate, TimerKind::AutoCancel, TimerKind::AutoClose]);
                if flow.state == State::Manual && ctx.now < cancel_moment(*window_start, ctx.policy) {
                    flow.state = State::Watching;
                }
                plan(case, flow, *window_start, ctx);
            }
            SubjectEvent::VisitReplaced { appointment_id } => {
                end(case, flow, TicketStatus::Closed, TicketResult::VisitReplaced, ctx);
                ctx.decided(case, format!("R3.8 visit {appointment_id} replaced by a new one: pending case closed"));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    //! Given an order stream, when an appointment event or a watch timer arrives, then these effects.
    use super::*;
    use crate::domain::testkit::*;

    const MON_10: &str = "2026-03-02T10:00:00+02:00";
    const TUE_10: &str = "2026-03-03T10:00:00+02:00";

    /// A1 booked unassigned on Monday for Tuesday 10:00; the T-3h subject timer fires.
    fn watched() -> (World, String) {
        let mut w = World::new();
        assert_eq!(w.when(booked("A1", TUE_10, None), MON_10).unwrap(), None, "no case before T-3h");
        assert_eq!(w.snapshot().timers[0].timer.due_at, t("2026-03-03T07:00:00+02:00"));
        let id = w.fire_subject().expect("R0.1 the watch case opens at T-3h");
        (w, id)
    }

    #[test]
    fn r0_1_unassigned_at_t_minus_3h_opens_an_ops_ticket_and_sends_the_status_update() {
        let (w, id) = watched();
        assert_eq!(w.sms(), vec![TemplateId::StatusUpdate]);
        let c = w.case(&id);
        assert_eq!(c.playbook().as_str(), "appointment_watch");
        assert_eq!(c.opened_at, t("2026-03-03T07:00:00+02:00"), "exact, before working hours");
        assert_eq!((c.ticket.kind.category(), c.ticket.group, c.ticket.status), ("appointment", Group::Ops, TicketStatus::Open));
        assert_eq!(c.state(), "status_sent");
        assert_eq!(w.due(&id, TimerKind::AutoCancel), Some(t("2026-03-03T09:00:00+02:00")));
        assert_eq!(c.ticket.resolution_due, Some(t("2026-03-03T09:00:00+02:00")));
    }

    #[test]
    fn r0_1_assigned_bookings_and_past_windows_are_not_watched() {
        let mut w = World::new();
        assert_eq!(w.when(booked("A1", TUE_10, Some("T-1")), MON_10).unwrap(), None);
        assert!(w.snapshot().timers.is_empty());
        let mut w = World::new();
        assert_eq!(w.when(booked("A1", "2026-03-02T09:00:00+02:00", None), MON_10).unwrap(), None);
        assert!(w.snapshot().timers.is_empty() && w.snapshot().cases.is_empty());
    }

    #[test]
    fn r0_2_still_unassigned_at_t_minus_1h_cancels_and_opens_the_follow_up() {
        let (mut w, id) = watched();
        assert_eq!(w.fire_next(&id), (TimerKind::AutoCancel, t("2026-03-03T09:00:00+02:00")));
        let cancel = w.command("cancel_appointment").expect("R0.2 cancel");
        assert_eq!(cancel.data["by"], "ops");
        assert_eq!(cancel.data["reason"], "unassigned");
        assert_eq!(cancel.data["appointment_id"], "A1");
        assert_eq!(cancel.data["order_id"], "O1");
        assert_eq!(w.order().appointment("A1").unwrap().status, AppointmentStatus::Cancelled);
        let c = w.case(&id);
        assert_eq!((c.ticket.status, c.ticket.result.map(TicketResult::as_str)), (TicketStatus::Resolved, Some("auto_cancelled")));
        let cfu = w.snapshot().cases.iter().find(|c| c.playbook() == "cancellation_follow_up").expect("R2.1 as an ops cancellation");
        assert!(cfu.timeline.iter().any(|e| e.detail.contains("unassigned")));
        assert_eq!(w.sms(), vec![TemplateId::DiscountOffer], "R2.3 ops cancellation without discount");
    }

    #[test]
    fn r0_2_a_second_visit_is_cancelled_without_a_follow_up() {
        let mut w = World::new();
        let mut b = booked("A1", TUE_10, None);
        if let Input::Event(e) = &mut b {
            if let EventBody::Appointment(AppointmentEvent::Booked(AppointmentBooked { visit_number, .. })) = &mut e.body {
                *visit_number = 2;
            }
        }
        w.when(b, MON_10).unwrap();
        let id = w.fire_subject().unwrap();
        w.fire_next(&id);
        assert!(w.command("cancel_appointment").is_some());
        assert_eq!(w.snapshot().cases.len(), 1);
    }

    #[test]
    fn r0_3_assignment_between_t3h_and_t1h_cancels_the_watch_and_stale_timers_do_nothing() {
        let (mut w, id) = watched();
        let cancel = w.case(&id).pending(TimerKind::AutoCancel).unwrap().clone();
        assert_eq!(w.when(assigned("A1"), "2026-03-03T08:00:00+02:00").unwrap(), Some(id.clone()));
        let c = w.case(&id);
        assert_eq!((c.ticket.status, c.ticket.result.map(TicketResult::as_str)), (TicketStatus::Resolved, Some("assigned")));
        assert!(c.timers.is_empty());
        assert!(w.effects.iter().any(|e| matches!(e, Effect::CancelTimer(t) if t.kind == TimerKind::AutoCancel)));
        let before = w.snapshot().clone();
        w.fire(&id, TimerKind::AutoCancel, cancel.step, "2026-03-03T09:00:00+02:00");
        assert!(w.effects.is_empty(), "R0.3 a stale timer does nothing");
        assert_eq!(w.snapshot().cases, before.cases);
    }

    #[test]
    fn r0_3_assignment_before_t_minus_3h_cancels_the_subject_timer() {
        let mut w = World::new();
        w.when(booked("A1", TUE_10, None), MON_10).unwrap();
        let step = w.snapshot().timers[0].timer.step;
        assert_eq!(w.when(assigned("A1"), "2026-03-02T12:00:00+02:00").unwrap(), None);
        assert!(w.snapshot().timers.is_empty());
        assert!(w.effects.iter().any(|e| matches!(e, Effect::CancelTimer(t) if t.kind == TimerKind::StatusUpdate && t.case_id.is_none())));
        let stale = TimerRef { stream: w.snapshot().key.clone(), case_id: None, kind: TimerKind::StatusUpdate, step };
        w.when(Input::Timer(stale), "2026-03-03T07:00:00+02:00").unwrap();
        assert!(w.effects.is_empty() && w.snapshot().cases.is_empty(), "stale");
    }

    #[test]
    fn r0_3_cancellation_and_completion_close_the_watch() {
        let (mut w, id) = watched();
        w.when(cancelled("A1", CancelledBy::Customer, false), "2026-03-03T08:00:00+02:00").unwrap();
        assert_eq!(w.case(&id).ticket.result.map(TicketResult::as_str), Some("cancelled"));
        assert!(w.case(&id).timers.is_empty());

        let (mut w, id) = watched();
        w.when(completed("A1", CompletionOutcome::Done), "2026-03-03T08:00:00+02:00").unwrap();
        assert_eq!(
            (w.case(&id).ticket.status, w.case(&id).ticket.result.map(TicketResult::as_str)),
            (TicketStatus::Closed, Some("completed"))
        );
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
        assert_eq!(w.dues(&id, TimerKind::AutoClose), vec![t(TUE_10)], "R9.3 it ends at the start");
        assert_eq!(c.timers.len(), 1);
        assert_eq!((c.state(), c.ticket.priority), ("manual", Priority::Urgent));
        w.fire_next(&id);
        assert_eq!(w.case(&id).ticket.result, Some(TicketResult::Expired));
    }

    #[test]
    fn r0_3_a_reschedule_moves_the_watch() {
        let mut w = World::new();
        w.when(booked("A1", TUE_10, None), MON_10).unwrap();
        w.when(rescheduled("A1", "2026-03-04T16:00:00+02:00"), MON_10).unwrap();
        assert_eq!(w.snapshot().timers.len(), 1);
        assert_eq!(w.snapshot().timers[0].timer.due_at, t("2026-03-04T13:00:00+02:00"));

        let (mut w, id) = watched();
        w.when(rescheduled("A1", "2026-03-04T16:00:00+02:00"), "2026-03-03T08:00:00+02:00").unwrap();
        assert_eq!(w.due(&id, TimerKind::StatusUpdate), Some(t("2026-03-04T13:00:00+02:00")));
        assert_eq!(w.due(&id, TimerKind::AutoCancel), Some(t("2026-03-04T15:00:00+02:00")));
        assert_eq!(w.case(&id).state(), "watching");
    }

    #[test]
    fn r9_2_the_dashboards_echo_of_the_auto_cancel_is_accepted_and_opens_nothing() {
        let (mut w, id) = watched();
        let cancel = w.case(&id).pending(TimerKind::AutoCancel).unwrap().clone();
        w.fire(&id, TimerKind::AutoCancel, cancel.step, "2026-03-03T09:00:00+02:00");
        let cases = w.snapshot().cases.len();
        let follow_up = w.when(cancelled("A1", CancelledBy::Ops, false), "2026-03-03T09:01:00+02:00").unwrap();
        assert_eq!(w.snapshot().cases.len(), cases, "nothing new opens");
        assert!(w.commands().is_empty() && w.sms().is_empty());
        assert!(follow_up.is_some(), "the 202 names the follow-up R0.2 opened");
        assert!(w.order().timeline.iter().any(|e| e.detail.starts_with("R9.2")));
        assert!(w.case(&id).timeline.iter().any(|e| e.detail.starts_with("R9.2")));
    }
}
