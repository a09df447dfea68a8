//! reschedule_outreach (R1.1–R1.6): voicemail / busy / no-answer outreach with the self-scheduling link (seed 000).
//!
//! Decisions the SPEC leaves open, settled here:
//! - Ticket: category `appointment`, sub_category `reschedule`, type `outreach`, status `open`,
//!   priority `medium`, group `customer_care`, area from the appointment, `resolution_due` = the
//!   T-1h cancel moment. The first reported outcome moves it to `pending` (as seed 001).
//! - A second `appointment.reschedule_requested` while the outreach is open keeps the same case
//!   and takes the new link (written on the timeline); the 202 names that case.
//! - Attempt 2 is due at `second_attempt_time` on the next working day after the day of the
//!   first outcome. An answered call without a resolution uses up an attempt without the SMS.
//!   When the attempts are used up the case waits for the customer (the link) or for T-1h.
//! - Requested inside the last hour before the start: no automatic cancel (seed 000 leaves it to
//!   "manual updating"); the ticket opens `urgent` and the calls still go out.
//! - R1.4 cancels by ops with reason `customer_unreached`, closes the ticket (result
//!   `unreachable`) and, as R0.2 does for an ops cancellation, opens `cancellation_follow_up`
//!   when R2.1 holds (a first visit).
//! - R1.5 `rebooked` moves the appointment through the reschedule policy (R7.1–R7.3: counted,
//!   fee, RESCHEDULE_CONFIRMATION; past the limit → 422 R7.2); inside 1.5 h of the start R3.8
//!   turns the update into cancel + create. `notify_technician` names the assigned technician
//!   (null when none); `revoke_stf_links` carries `before` = the new window start.
//! - R1.6 `declined`: `open_complaint` first when `complaint` is true (as R2.8), then
//!   `cancel_appointment` (by customer, with the reason); the ticket is resolved (result
//!   `declined`). R2.3 applies as to a customer cancellation: when R2.1 qualifies with
//!   `wants_follow_up` = the decline's `follow_up` (a first visit), `cancellation_follow_up`
//!   opens and makes the offer; otherwise an appointment without a discount gets the coupon and
//!   DISCOUNT_OFFER from this case.
//! - `follow_up_later` places the next call at the requested time (moved into working hours).
//! - A reschedule of the appointment by other means (`appointment.rescheduled`, e.g. the customer
//!   used the link) resolves the outreach (result `rescheduled`) and revokes the older links;
//!   a cancellation or a completion closes it.

use super::cancellation_follow_up::{self, Coupon};
use super::{appointments, Ctx, Flow as AnyFlow, Refusal};
use crate::domain::case::{Attempt, Case, Group, Priority, Ticket, TicketStatus, TimerKind};
use crate::domain::effects::CommandType;
use crate::domain::events::{CallCompleted, CancelledBy, Resolution};
use crate::domain::sms::{SmsVars, TemplateId};
use crate::domain::stream::{AppointmentStatus, Stream};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

crate::named_enum! {
    pub enum State {
        /// Call attempts under way (R1.1–R1.3).
        Reaching = "reaching",
        /// Attempts used up; waiting for the customer's link or the T-1h cancel (R1.4).
        Waiting = "waiting",
        /// R1.5 rebooked.
        Rebooked = "rebooked",
        /// R1.6 declined: the appointment is cancelled.
        Declined = "declined",
        /// R1.4 cancelled unreached at T-1h.
        Cancelled = "cancelled",
        /// Rescheduled, cancelled or completed by other means.
        Closed = "closed",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub state: State,
    pub stf_link: String,
    pub reason: String,
    /// Number of the next call attempt.
    pub next_attempt: u32,
    pub not_reached: u32,
    /// R1.6 → R2.3 a coupon issued from this case.
    pub coupon: Option<Coupon>,
}

flow_of!(RescheduleOutreach);

/// The open outreach case of an appointment, if any.
pub fn open_case(stream: &Stream, appointment_id: &str) -> Option<usize> {
    stream.cases.iter().position(|c| {
        matches!(c.flow, AnyFlow::RescheduleOutreach(_)) && c.appointment_id.as_deref() == Some(appointment_id) && c.ticket.is_open()
    })
}

fn cancel_moment(window_start: DateTime<Utc>, ctx: &Ctx) -> DateTime<Utc> {
    window_start - Duration::minutes(ctx.policy.reschedule_outreach.cancel_before_minutes as i64)
}

/// R1.1 opens the outreach (the appointment is booked; the caller checked).
pub fn open(stream: &mut Stream, appointment_id: &str, reason: &str, stf_link: &str, ctx: &mut Ctx) -> String {
    if let Some(idx) = open_case(stream, appointment_id) {
        let case = &mut stream.cases[idx];
        flow(case).stf_link = stf_link.to_string();
        case.note(ctx.now, "event", format!("reschedule requested again ({reason}); new link {stf_link}"));
        return case.case_id.clone();
    }
    let appointment = stream.appointment(appointment_id).expect("the caller checked the appointment").clone();
    let case_id = stream.next_case_id();
    let cancel_at = cancel_moment(appointment.window_start, ctx);
    let manual = ctx.now >= cancel_at;
    let priority = if manual { Priority::Urgent } else { Priority::Medium };
    let ticket =
        Ticket::open("appointment", "reschedule", "outreach", priority, Group::CustomerCare, &appointment.area).due(cancel_at.max(ctx.now));
    let initial = AnyFlow::RescheduleOutreach(Flow {
        state: State::Reaching,
        stf_link: stf_link.to_string(),
        reason: reason.to_string(),
        next_attempt: 1,
        not_reached: 0,
        coupon: None,
    });
    let mut case = Case::open(case_id.clone(), appointment.customer.clone(), ticket, ctx.now, initial)
        .about_appointment(&appointment.appointment_id, &appointment.order_id);
    case.note(ctx.now, "event", format!("appointment.reschedule_requested: {reason}"));
    // R1.1 attempt 1 the same day: now, or at the next working-hours start.
    if ctx.cal().in_working_hours(ctx.now) {
        call_task(&mut case, ctx);
    } else {
        let due = ctx.cal().working_moment(ctx.now);
        ctx.place(&mut case, TimerKind::CallAttempt, due);
    }
    // R1.4 cancel if still unresolved at T-1h.
    if manual {
        case.note(ctx.now, "decision", "R1.4 requested inside the last hour: no automatic cancel, left to ops");
    } else {
        ctx.place(&mut case, TimerKind::OutreachCancel, cancel_at);
    }
    stream.cases.push(case);
    case_id
}

/// The call task of attempt n, with the R1.5 hint to offer the soonest available time first.
fn call_task(case: &mut Case, ctx: &mut Ctx) {
    let f = flow(case).clone();
    let mut extra = Map::new();
    extra.insert("attempt".into(), f.next_attempt.into());
    extra.insert("stf_link".into(), f.stf_link.clone().into());
    extra.insert("offer".into(), Value::from("soonest_available_first"));
    let reason = format!("Reschedule the appointment ({}); offer the soonest available time first", f.reason);
    let due = ctx.now;
    ctx.call_task(case, &reason, due, extra);
}

pub fn on_timer(stream: &mut Stream, idx: usize, kind: TimerKind, ctx: &mut Ctx) {
    match kind {
        TimerKind::CallAttempt if flow(&mut stream.cases[idx]).state == State::Reaching => call_task(&mut stream.cases[idx], ctx),
        TimerKind::OutreachCancel if stream.cases[idx].ticket.is_open() => cancel_unreached(stream, idx, ctx),
        _ => {}
    }
}

/// R1.4 still unresolved at T-1h: ops cancels ("within the period it is blinking").
fn cancel_unreached(stream: &mut Stream, idx: usize, ctx: &mut Ctx) {
    let Some(appointment) = stream.cases[idx].appointment_id.as_deref().and_then(|a| stream.appointment(a)).cloned() else { return };
    let case = &mut stream.cases[idx];
    if appointment.status != AppointmentStatus::Booked {
        end(case, TicketStatus::Closed, "appointment_closed", ctx);
        return;
    }
    let mut data = case.subject_data();
    data.insert("by".into(), Value::from("ops"));
    data.insert("reason".into(), Value::from("customer_unreached"));
    ctx.command(case, CommandType::CancelAppointment, data);
    end(case, TicketStatus::Closed, "unreachable", ctx);
    flow(case).state = State::Cancelled;
    case.note(ctx.now, "decision", "R1.4 unresolved at T-1h: appointment cancelled by ops");
    let case_id = case.case_id.clone();
    if let Some(a) = stream.appointment_mut(&appointment.appointment_id) {
        a.status = AppointmentStatus::Cancelled;
    }
    appointments::end_cases(stream, &appointment.appointment_id, Some(&case_id), "cancelled", ctx);
    if appointment.visit_number == 1 {
        cancellation_follow_up::open(stream, &appointment, CancelledBy::Ops, "customer_unreached", None, ctx);
    }
}

pub fn on_call(stream: &mut Stream, idx: usize, call: &CallCompleted, ctx: &mut Ctx) -> Result<(), Refusal> {
    // R1.5 a rebooking goes through the reschedule policy first: a refusal (R7.2) stores nothing.
    if let (Some(Resolution::Rebooked { window_start, window_end }), true) = (&call.resolution, call.outcome.reached()) {
        if stream.cases[idx].ticket.is_open() {
            let appointment_id = stream.cases[idx].appointment_id.clone().unwrap_or_default();
            let change = appointments::reschedule(stream, &appointment_id, *window_start, *window_end, "customer", Some(idx), ctx)?;
            let technician = stream.appointment(&appointment_id).and_then(|a| a.technician_id.clone());
            let case = &mut stream.cases[idx];
            record(case, call, ctx);
            let window = |ctx: &Ctx, data: &mut Map<String, Value>| {
                data.insert("window_start".into(), ctx.cal().rfc3339(*window_start).into());
                data.insert("window_end".into(), ctx.cal().rfc3339(*window_end).into());
            };
            if change != appointments::Change::Replaced {
                let mut data = case.subject_data();
                window(ctx, &mut data);
                ctx.command(case, CommandType::UpdateAppointment, data);
            }
            let mut data = case.subject_data();
            data.insert("technician_id".into(), json!(technician));
            window(ctx, &mut data);
            ctx.command(case, CommandType::NotifyTechnician, data);
            let mut data = case.subject_data();
            data.insert("before".into(), ctx.cal().rfc3339(*window_start).into());
            data.insert("stf_link".into(), flow(case).stf_link.clone().into());
            ctx.command(case, CommandType::RevokeStfLinks, data);
            end(case, TicketStatus::Resolved, "rebooked", ctx);
            flow(case).state = State::Rebooked;
            case.note(ctx.now, "decision", "R1.5 rebooked: appointment updated, technician notified, older links revoked");
            return Ok(());
        }
    }
    let case = &mut stream.cases[idx];
    record(case, call, ctx);
    if !case.ticket.is_open() {
        let state = flow(case).state;
        case.note(ctx.now, "decision", format!("outcome recorded; the case is already {state}"));
        return Ok(());
    }
    // The outcome counts as the current attempt: its pending task is spent.
    ctx.cancel(case, &[TimerKind::CallAttempt]);
    if case.ticket.status == TicketStatus::Open {
        ctx.ticket(case, |t| t.status = TicketStatus::Pending);
    }
    if !call.outcome.reached() {
        // R1.2 / R1.3 not reached: the self-scheduling link, status left as is.
        let link = flow(case).stf_link.clone();
        ctx.sms(case, TemplateId::StfLink, &SmsVars { link: Some(link), ..SmsVars::default() });
        flow(case).not_reached += 1;
        case.note(ctx.now, "decision", "R1.2 not reached: STF link sent, appointment status unchanged");
        next_attempt(case, ctx);
        return Ok(());
    }
    match &call.resolution {
        Some(Resolution::Declined { reason, complaint, follow_up }) => declined(stream, idx, reason, *complaint, *follow_up, ctx),
        Some(Resolution::FollowUpLater { at }) => {
            let due = ctx.cal().working_moment((*at).max(ctx.now));
            case.note(ctx.now, "decision", format!("follow up later at {}", ctx.cal().rfc3339(due)));
            ctx.place(case, TimerKind::CallAttempt, due);
        }
        _ => {
            case.note(ctx.now, "decision", "answered without a resolution");
            next_attempt(case, ctx);
        }
    }
    Ok(())
}

fn record(case: &mut Case, call: &CallCompleted, ctx: &Ctx) {
    case.attempts.push(Attempt {
        at: ctx.now,
        outcome: call.outcome,
        call_id: Some(call.call_id.clone()),
        agent_id: Some(call.agent_id.clone()),
    });
}

/// R1.3 the next attempt on the next working day at `second_attempt_time`, while attempts remain.
fn next_attempt(case: &mut Case, ctx: &mut Ctx) {
    let p = &ctx.policy.reschedule_outreach;
    let f = flow(case);
    f.next_attempt += 1;
    if f.next_attempt > p.attempts {
        f.state = State::Waiting;
        case.note(ctx.now, "decision", "R1.3 attempts used up: waiting for the customer or the T-1h cancel");
        return;
    }
    let cal = ctx.cal();
    let due = cal.at(cal.next_working_day(cal.local_date(ctx.now)), p.second_attempt_time);
    ctx.place(case, TimerKind::CallAttempt, due);
}

/// R1.6 declined: cancel with the reason; R2.3 applies.
fn declined(stream: &mut Stream, idx: usize, reason: &str, complaint: bool, follow_up: bool, ctx: &mut Ctx) {
    let Some(appointment) = stream.cases[idx].appointment_id.as_deref().and_then(|a| stream.appointment(a)).cloned() else { return };
    let case = &mut stream.cases[idx];
    if complaint {
        let mut data = case.subject_data();
        data.insert("reason".into(), reason.into());
        ctx.command(case, CommandType::OpenComplaint, data);
    }
    let mut data = case.subject_data();
    data.insert("by".into(), Value::from("customer"));
    data.insert("reason".into(), reason.into());
    ctx.command(case, CommandType::CancelAppointment, data);
    end(case, TicketStatus::Resolved, "declined", ctx);
    flow(case).state = State::Declined;
    case.note(ctx.now, "decision", format!("R1.6 declined ({reason}): appointment cancelled"));
    let case_id = case.case_id.clone();
    if let Some(a) = stream.appointment_mut(&appointment.appointment_id) {
        a.status = AppointmentStatus::Cancelled;
    }
    appointments::end_cases(stream, &appointment.appointment_id, Some(&case_id), "cancelled", ctx);
    // R2.1 with wants_follow_up = the decline's follow_up; R2.3 comes with it.
    if appointment.visit_number == 1 && follow_up {
        let cfu = cancellation_follow_up::open(stream, &appointment, CancelledBy::Customer, reason, None, ctx);
        stream.cases[idx].note(ctx.now, "decision", format!("R1.6 cancellation follow-up {cfu} opened"));
        return;
    }
    // R2.3 a customer cancellation without an existing discount earns the coupon.
    if appointment.discount_percent == 0 {
        let p = &ctx.policy.cancellation_follow_up;
        let case = &mut stream.cases[idx];
        let coupon = Coupon {
            code: cancellation_follow_up::coupon_code(&case_id),
            discount: p.discount,
            valid_until: ctx.cal().local_date(ctx.now) + Duration::days(p.coupon_valid_days as i64),
        };
        case.note(ctx.now, "decision", format!("R2.3 coupon {} ({}%) valid until {}", coupon.code, coupon.discount, coupon.valid_until));
        let vars = SmsVars {
            coupon_code: Some(coupon.code.clone()),
            discount: Some(coupon.discount.to_string()),
            valid_until: Some(coupon.valid_until.to_string()),
            ..SmsVars::default()
        };
        ctx.sms(case, TemplateId::DiscountOffer, &vars);
        flow(case).coupon = Some(coupon);
    }
}

/// The appointment was rescheduled by other means (the link, the dashboard): the outreach is done.
pub fn on_rescheduled(case: &mut Case, window_start: DateTime<Utc>, ctx: &mut Ctx) {
    let mut data = case.subject_data();
    data.insert("before".into(), ctx.cal().rfc3339(window_start).into());
    data.insert("stf_link".into(), flow(case).stf_link.clone().into());
    ctx.command(case, CommandType::RevokeStfLinks, data);
    end(case, TicketStatus::Resolved, "rescheduled", ctx);
}

/// Ends the outreach: timers cancelled, ticket `status` with `result`.
pub fn end(case: &mut Case, status: TicketStatus, result: &str, ctx: &mut Ctx) {
    ctx.cancel(case, &[]);
    ctx.ticket(case, |t| {
        t.status = status;
        t.result = Some(result.into());
    });
    flow(case).state = State::Closed;
}

#[cfg(test)]
mod tests {
    //! Given an order with a booked visit, when the customer asks to reschedule, then the outreach of seed 000.
    use super::super::appointments::test_world::*;

    const MON_10: &str = "2026-03-02T10:00:00+02:00";
    const THU_14: &str = "2026-03-05T14:00:00+02:00";

    fn requested_at(now: &str) -> (World, String) {
        let mut w = World::new();
        w.when(booked("A1", THU_14, Some("T1")), MON_10).unwrap();
        let id = w.when(requested("A1"), now).unwrap().expect("R1.1 outreach case");
        (w, id)
    }

    fn rebooked(start: &str) -> Resolution {
        Resolution::Rebooked { window_start: t(start), window_end: t(start) + chrono::Duration::hours(2) }
    }

    #[test]
    fn r1_1_attempt_one_now_in_working_hours_with_the_soonest_first_hint() {
        let (w, id) = requested_at(MON_10);
        let task = w.command(CommandType::CallCustomer).expect("call task now");
        assert_eq!(task.data["offer"], "soonest_available_first");
        assert_eq!(task.data["stf_link"], "https://stf.example.com/r/A1");
        assert_eq!(task.data["due"], MON_10);
        let c = w.case(&id);
        assert_eq!(
            (c.playbook(), c.ticket.group, c.ticket.status),
            ("reschedule_outreach", crate::domain::case::Group::CustomerCare, TicketStatus::Open)
        );
        assert_eq!(w.due(&id, TimerKind::OutreachCancel), Some(t("2026-03-05T13:00:00+02:00")));
    }

    #[test]
    fn r1_1_outside_working_hours_attempt_one_at_the_next_opening() {
        let (mut w, id) = requested_at("2026-03-02T22:00:00+02:00");
        assert!(w.commands().is_empty());
        assert_eq!(w.fire_next(&id), (TimerKind::CallAttempt, t("2026-03-03T09:00:00+02:00")));
        assert_eq!(w.commands(), vec![CommandType::CallCustomer]);
    }

    #[test]
    fn r1_2_r1_3_not_reached_sends_the_link_twice_and_leaves_the_status() {
        let (mut w, id) = requested_at(MON_10);
        w.when(calls(call(&id, CallOutcome::Voicemail, None)), "2026-03-02T10:30:00+02:00").unwrap();
        assert_eq!(w.sms(), vec![TemplateId::StfLink]);
        assert!(w.sms_bodies()[0].contains("https://stf.example.com/r/A1"));
        assert!(w.commands().is_empty(), "R1.2 appointment status left unchanged");
        assert_eq!(w.stream.appointment("A1").unwrap().status, AppointmentStatus::Booked);
        assert_eq!(w.case(&id).ticket.status, TicketStatus::Pending);
        assert_eq!(w.fire_next(&id), (TimerKind::CallAttempt, t("2026-03-03T09:00:00+02:00")));
        w.when(calls(call(&id, CallOutcome::Busy, None)), "2026-03-03T09:10:00+02:00").unwrap();
        assert_eq!(w.sms(), vec![TemplateId::StfLink]);
        assert_eq!(w.case(&id).state(), "waiting");
        assert_eq!(w.case(&id).timers.len(), 1, "only the T-1h cancel left");
    }

    #[test]
    fn r1_4_unresolved_at_t_minus_1h_cancels_by_ops_and_follows_up_a_first_visit() {
        let (mut w, id) = requested_at(MON_10);
        w.when(calls(call(&id, CallOutcome::NoAnswer, None)), "2026-03-02T10:30:00+02:00").unwrap();
        w.fire_next(&id);
        w.when(calls(call(&id, CallOutcome::NoAnswer, None)), "2026-03-03T09:10:00+02:00").unwrap();
        assert_eq!(w.fire_next(&id), (TimerKind::OutreachCancel, t("2026-03-05T13:00:00+02:00")));
        let cancel = w.command(CommandType::CancelAppointment).unwrap();
        assert_eq!((cancel.data["by"].as_str(), cancel.data["reason"].as_str()), (Some("ops"), Some("customer_unreached")));
        assert_eq!(w.stream.appointment("A1").unwrap().status, AppointmentStatus::Cancelled);
        assert_eq!(w.case(&id).ticket.result.as_deref(), Some("unreachable"));
        assert!(w.stream.cases.iter().any(|c| c.playbook() == "cancellation_follow_up"));
    }

    #[test]
    fn r1_5_rebooked_updates_notifies_revokes_and_resolves() {
        let (mut w, id) = requested_at(MON_10);
        w.when(calls(call(&id, CallOutcome::Answered, Some(rebooked("2026-03-07T10:00:00+02:00")))), "2026-03-02T10:30:00+02:00").unwrap();
        assert_eq!(w.commands(), vec![CommandType::UpdateAppointment, CommandType::NotifyTechnician, CommandType::RevokeStfLinks]);
        assert_eq!(w.command(CommandType::UpdateAppointment).unwrap().data["window_start"], "2026-03-07T10:00:00+02:00");
        assert_eq!(w.command(CommandType::NotifyTechnician).unwrap().data["technician_id"], "T1");
        assert_eq!(w.command(CommandType::RevokeStfLinks).unwrap().data["before"], "2026-03-07T10:00:00+02:00");
        assert_eq!(w.sms(), vec![TemplateId::RescheduleConfirmation], "R7.3");
        let c = w.case(&id);
        assert_eq!((c.ticket.status, c.ticket.result.as_deref()), (TicketStatus::Resolved, Some("rebooked")));
        assert!(c.timers.is_empty());
        let a = w.stream.appointment("A1").unwrap();
        assert_eq!((a.window_start, a.reschedules), (t("2026-03-07T10:00:00+02:00"), 1));
    }

    #[test]
    fn r1_5_a_rebooking_past_the_limit_is_refused_by_r7_2() {
        let (mut w, id) = requested_at(MON_10);
        w.stream.appointment_mut("A1").unwrap().reschedules = 3;
        let e = w.when(calls(call(&id, CallOutcome::Answered, Some(rebooked("2026-03-07T10:00:00+02:00")))), "2026-03-02T10:30:00+02:00");
        assert_eq!(e.unwrap_err().rule, Some("R7.2"));
    }

    #[test]
    fn r1_6_declined_cancels_and_applies_the_discount_rule() {
        let declined = |follow_up| Resolution::Declined { reason: "no longer needed".into(), complaint: false, follow_up };
        // No follow-up wanted: the coupon comes from the outreach case.
        let (mut w, id) = requested_at(MON_10);
        w.when(calls(call(&id, CallOutcome::Answered, Some(declined(false)))), "2026-03-02T10:30:00+02:00").unwrap();
        let cancel = w.command(CommandType::CancelAppointment).unwrap();
        assert_eq!((cancel.data["by"].as_str(), cancel.data["reason"].as_str()), (Some("customer"), Some("no longer needed")));
        assert_eq!(w.sms(), vec![TemplateId::DiscountOffer]);
        assert_eq!(w.stream.cases.len(), 1);
        assert_eq!(w.case(&id).ticket.result.as_deref(), Some("declined"));
        // Follow-up wanted on a first visit: R2.1 opens the follow-up, which makes the offer.
        let (mut w, _) = requested_at(MON_10);
        w.when(calls(call("o1-O1", CallOutcome::Answered, Some(declined(true)))), "2026-03-02T10:30:00+02:00").unwrap();
        assert_eq!(w.sms(), vec![TemplateId::DiscountOffer]);
        assert!(w.stream.cases.iter().any(|c| c.playbook() == "cancellation_follow_up"));
    }

    #[test]
    fn a_dashboard_reschedule_resolves_the_outreach() {
        let (mut w, id) = requested_at(MON_10);
        w.when(rescheduled("A1", "2026-03-08T10:00:00+02:00"), "2026-03-02T11:00:00+02:00").unwrap();
        assert_eq!(w.case(&id).ticket.result.as_deref(), Some("rescheduled"));
        assert!(w.commands().contains(&CommandType::RevokeStfLinks));
        assert!(w.case(&id).timers.is_empty());
    }
}
