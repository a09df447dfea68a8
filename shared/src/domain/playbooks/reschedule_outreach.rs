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
//!   `declined`). The order carries the cancellation out as a customer's with `wants_follow_up` =
//!   the decline's `follow_up`: R2.1 may open `cancellation_follow_up`, which makes the R2.3
//!   offer; otherwise an appointment without a discount gets the coupon and DISCOUNT_OFFER from
//!   this case.
//! - `follow_up_later` places the next call at the requested time (moved into working hours).
//! - A reschedule of the appointment by other means (`appointment.rescheduled`, e.g. the customer
//!   used the link) resolves the outreach (result `rescheduled`) and revokes the older links;
//!   a cancellation or a completion closes it.

use super::attempts::{Attempts, Report};
use super::{Playbook, PlaybookName, SubjectEvent};
use crate::domain::commands::{CallCustomer, CommandBody, NotifyTechnician, Reason, RevokeStfLinks};
use crate::domain::ctx::{Ctx, Intent};
use crate::domain::events::{CallCompleted, CancelledBy, Resolution};
use crate::domain::records::case::{CaseCore, Group, Priority, Ticket, TicketKind, TicketResult, TicketStatus, TimelineKind, TimerKind};
use crate::domain::records::order::Order;
use crate::domain::refusal::Refusal;
use crate::domain::sms::{SmsVars, TemplateId};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub struct RescheduleOutreach;

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
    pub attempts: Attempts,
}

fn cancel_moment(window_start: DateTime<Utc>, ctx: &Ctx) -> DateTime<Utc> {
    window_start - Duration::minutes(ctx.policy.reschedule_outreach.cancel_before_minutes as i64)
}

/// The call task of the next attempt, with the R1.5 hint to offer the soonest available time
/// first; the step after it goes on its own schedule (R9.1): attempt 2 on the next working day at
/// `second_attempt_time` (R1.3), or after the last attempt its end-of-day report deadline.
fn call_task(case: &mut CaseCore, flow: &mut Flow, ctx: &mut Ctx) {
    let n = flow.attempts.task();
    let task = CallCustomer {
        attempt: Some(n),
        stf_link: Some(flow.stf_link.clone()),
        offer: Some("soonest_available_first".into()),
        ..CallCustomer::default()
    };
    ctx.call_task(case, format!("Reschedule the appointment ({}); offer the soonest available time first", flow.reason), task);
    let p = &ctx.policy.reschedule_outreach;
    let cal = ctx.cal();
    let today = cal.local_date(ctx.now);
    if flow.attempts.next <= p.attempts {
        let due = cal.at(cal.next_working_day(today), p.second_attempt_time);
        ctx.place(case, TimerKind::CallAttempt, due);
    } else {
        let end_of_day = cal.at(today, cal.work_end()).max(ctx.now);
        ctx.place(case, TimerKind::ReportDue, end_of_day);
    }
}

/// R1.2 / R1.3 an attempt not reached (reported or lapsed): the self-scheduling link, the
/// appointment left as it is; after the last attempt the case waits for the link or T-1h.
fn not_reached(case: &mut CaseCore, flow: &mut Flow, ctx: &mut Ctx) {
    ctx.sms(case, TemplateId::StfLink, &SmsVars { link: Some(flow.stf_link.clone()), ..SmsVars::default() });
    ctx.decided(case, "R1.2 not reached: STF link sent, appointment status unchanged");
    waits_when_used_up(case, flow, ctx);
}

/// With every attempt made and none pending, the case waits for the customer or the T-1h cancel.
fn waits_when_used_up(case: &mut CaseCore, flow: &mut Flow, ctx: &mut Ctx) {
    let p = &ctx.policy.reschedule_outreach;
    if flow.attempts.next > p.attempts && case.pending(TimerKind::CallAttempt).is_none() {
        flow.state = State::Waiting;
        let before = p.cancel_before_minutes;
        ctx.decided(case, format!("R1.3 attempts used up: waiting for the customer or the cancel {before} minutes before the start"));
    }
}

/// An early call spent the next attempt's task: the one after it is placed (R1.3).
fn next_attempt(case: &mut CaseCore, flow: &Flow, ctx: &mut Ctx) {
    let p = &ctx.policy.reschedule_outreach;
    if flow.attempts.next <= p.attempts && case.pending(TimerKind::CallAttempt).is_none() {
        let cal = ctx.cal();
        let due = cal.at(cal.next_working_day(cal.local_date(ctx.now)), p.second_attempt_time);
        ctx.place(case, TimerKind::CallAttempt, due);
    }
}

/// Ends the outreach: timers cancelled, ticket `status` with `result`.
fn end(case: &mut CaseCore, flow: &mut Flow, state: State, status: TicketStatus, result: TicketResult, ctx: &mut Ctx) {
    ctx.finish(case, status, result);
    flow.state = state;
}

fn revoke_links(case: &mut CaseCore, flow: &Flow, before: DateTime<Utc>, ctx: &mut Ctx) {
    let body = CommandBody::RevokeStfLinks(RevokeStfLinks {
        subject: case.subject(),
        before: ctx.cal().rfc3339(before),
        stf_link: flow.stf_link.clone(),
    });
    ctx.command(case, body);
}

/// `appointment.reschedule_requested`: what opens an outreach.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub appointment_id: String,
    pub reason: String,
    pub stf_link: String,
}

impl Playbook for RescheduleOutreach {
    const NAME: PlaybookName = PlaybookName::RescheduleOutreach;
    type Flow = Flow;
    type Subject = Order;
    type Opening = Request;

    /// R1.1 opens the outreach (the order checked the appointment is booked and has no open one).
    fn open(case_id: String, order: &Order, request: &Request, ctx: &mut Ctx) -> (CaseCore, Flow) {
        let Request { appointment_id, reason, stf_link } = request;
        let appointment = order.appointment(appointment_id).expect("the order checked the appointment");
        let cancel_at = cancel_moment(appointment.window_start, ctx);
        let manual = ctx.now >= cancel_at;
        let priority = if manual { Priority::Urgent } else { Priority::Medium };
        let ticket = Ticket::open(TicketKind::Outreach, priority, Group::CustomerCare, &appointment.area).due(cancel_at.max(ctx.now));
        let mut flow = Flow { state: State::Reaching, stf_link: stf_link.clone(), reason: reason.clone(), attempts: Attempts::default() };
        let mut case = CaseCore::open(case_id, appointment.customer.clone(), ticket, ctx.now)
            .about_appointment(&appointment.appointment_id, &appointment.order_id);
        case.note(ctx.now, TimelineKind::Event, format!("appointment.reschedule_requested: {reason}"));
        // R1.1 attempt 1 the same day: now, or at the next working-hours start.
        if ctx.cal().in_working_hours(ctx.now) {
            call_task(&mut case, &mut flow, ctx);
        } else {
            let due = ctx.cal().working_moment(ctx.now);
            ctx.place(&mut case, TimerKind::CallAttempt, due);
        }
        // R1.4 cancel if still unresolved at T-1h.
        if manual {
            let before = ctx.policy.reschedule_outreach.cancel_before_minutes;
            ctx.decided(
                &mut case,
                format!("R1.4 requested inside the last {before} minutes before the start: no automatic cancel, left to ops"),
            );
            // R9.3 the ticket still ends: at the start.
            ctx.place(&mut case, TimerKind::AutoClose, appointment.window_start.max(ctx.now));
        } else {
            ctx.place(&mut case, TimerKind::OutreachCancel, cancel_at);
        }
        (case, flow)
    }

    fn state(flow: &Flow) -> &'static str {
        flow.state.as_str()
    }

    fn on_timer(case: &mut CaseCore, flow: &mut Flow, kind: TimerKind, order: &Order, ctx: &mut Ctx) {
        match kind {
            TimerKind::CallAttempt if flow.state == State::Reaching => {
                // R9.1 the previous attempt's report never came: not reached.
                if flow.attempts.lapse(case, ctx.now, "when the next attempt fell due").is_some() {
                    not_reached(case, flow, ctx);
                }
                call_task(case, flow, ctx);
            }
            // R9.3 the start came with the ticket left to ops.
            TimerKind::AutoClose if case.ticket.is_open() => {
                end(case, flow, State::Closed, TicketStatus::Closed, TicketResult::Expired, ctx);
                ctx.decided(case, "the appointment started with the ticket left to ops: closed");
            }
            TimerKind::ReportDue if flow.state == State::Reaching => {
                let lapsed = flow.attempts.lapse(case, ctx.now, "by the end of its working day");
                if lapsed.is_some() {
                    not_reached(case, flow, ctx);
                }
            }
            // R1.4 still unresolved at T-1h: ops cancels ("within the period it is blinking").
            TimerKind::OutreachCancel if case.ticket.is_open() => {
                let Some(appointment) = case.appointment_id.as_deref().and_then(|a| order.appointment(a)) else { return };
                if !appointment.is_booked() {
                    end(case, flow, State::Closed, TicketStatus::Closed, TicketResult::AppointmentClosed, ctx);
                    return;
                }
                let intent = Intent::CancelAppointment {
                    appointment_id: appointment.appointment_id.clone(),
                    by: CancelledBy::Ops,
                    reason: "customer_unreached".into(),
                    wants_follow_up: false,
                };
                ctx.intend(case, intent);
                end(case, flow, State::Cancelled, TicketStatus::Closed, TicketResult::Unreachable, ctx);
                let before = ctx.policy.reschedule_outreach.cancel_before_minutes;
                ctx.decided(case, format!("R1.4 unresolved {before} minutes before the start: appointment cancelled by ops"));
            }
            _ => {}
        }
    }

    /// R1.5 rebooked or R1.6 declined, on an outreach still open: once R1.4 cancelled the
    /// appointment there is nothing left to rebook, so a late report there resolves nothing.
    fn resolves(case: &CaseCore, _: &Flow, call: &CallCompleted) -> bool {
        case.ticket.is_open()
            && call.outcome.reached()
            && matches!(call.resolution, Some(Resolution::Rebooked { .. }) | Some(Resolution::Declined { .. }))
    }

    fn on_call(case: &mut CaseCore, flow: &mut Flow, call: &CallCompleted, order: &Order, ctx: &mut Ctx) -> Result<(), Refusal> {
        if !case.ticket.is_open() {
            ctx.decided(case, format!("outcome recorded; the case is already {}", flow.state));
            return Ok(());
        }
        // The outcome counts as the current attempt; a call before the next task was due spends it.
        if let Report::Early(_) = flow.attempts.report() {
            ctx.cancel(case, &[TimerKind::CallAttempt]);
        }
        ctx.cancel(case, &[TimerKind::ReportDue]);
        if case.ticket.status == TicketStatus::Open {
            ctx.ticket(case, |t| t.status = TicketStatus::Pending);
        }
        if !call.outcome.reached() {
            flow.attempts.not_reached += 1;
            next_attempt(case, flow, ctx);
            not_reached(case, flow, ctx);
            return Ok(());
        }
        let appointment_id = case.appointment_id.clone().unwrap_or_default();
        match &call.resolution {
            // R1.5 the order moves the appointment through the reschedule policy (a refusal, R7.2, stores nothing).
            Some(Resolution::Rebooked { window_start, window_end }) => {
                let technician = order.appointment(&appointment_id).and_then(|a| a.technician_id.clone());
                let (start, end_) = (*window_start, *window_end);
                ctx.intend(
                    case,
                    Intent::MoveAppointment { appointment_id, window_start: start, window_end: end_, requested_by: "customer".into() },
                );
                let cal = ctx.cal();
                let body = CommandBody::NotifyTechnician(NotifyTechnician {
                    subject: case.subject(),
                    technician_id: technician,
                    window_start: cal.rfc3339(start),
                    window_end: cal.rfc3339(end_),
                });
                ctx.command(case, body);
                revoke_links(case, flow, start, ctx);
                end(case, flow, State::Rebooked, TicketStatus::Resolved, TicketResult::Rebooked, ctx);
                ctx.decided(case, "R1.5 rebooked: appointment updated, technician notified, older links revoked");
            }
            // R1.6 declined: cancel with the reason; R2.1 / R2.3 apply as to a customer cancellation.
            Some(Resolution::Declined { reason, complaint, follow_up }) => {
                if *complaint {
                    ctx.command(case, CommandBody::OpenComplaint(Reason { subject: case.subject(), reason: reason.clone() }));
                }
                let intent = Intent::CancelAppointment {
                    appointment_id,
                    by: CancelledBy::Customer,
                    reason: reason.clone(),
                    wants_follow_up: *follow_up,
                };
                ctx.intend(case, intent);
                end(case, flow, State::Declined, TicketStatus::Resolved, TicketResult::Declined, ctx);
                ctx.decided(case, format!("R1.6 declined ({reason}): appointment cancelled"));
            }
            Some(Resolution::FollowUpLater { at }) => {
                let due = ctx.cal().working_moment((*at).max(ctx.now));
                ctx.decided(case, format!("follow up later at {}", ctx.cal().rfc3339(due)));
                ctx.cancel(case, &[TimerKind::CallAttempt]);
                flow.state = State::Reaching;
                ctx.place(case, TimerKind::CallAttempt, due);
            }
            _ => {
                ctx.decided(case, "answered without a resolution");
                next_attempt(case, flow, ctx);
                waits_when_used_up(case, flow, ctx);
            }
        }
        Ok(())
    }

    fn on_subject(case: &mut CaseCore, flow: &mut Flow, event: &SubjectEvent, _: &Order, ctx: &mut Ctx) {
        match event {
            // A second request while the outreach is open keeps the case and takes the new link.
            SubjectEvent::RequestedAgain { reason, stf_link } => {
                flow.stf_link = stf_link.clone();
                case.note(ctx.now, TimelineKind::Event, format!("reschedule requested again ({reason}); new link {stf_link}"));
            }
            SubjectEvent::AppointmentEnded(result) => end(case, flow, State::Closed, TicketStatus::Closed, *result, ctx),
            // Rescheduled by other means (the link, the dashboard): the outreach is done.
            SubjectEvent::Moved { window_start } => {
                revoke_links(case, flow, *window_start, ctx);
                end(case, flow, State::Closed, TicketStatus::Resolved, TicketResult::Rescheduled, ctx);
            }
            SubjectEvent::VisitReplaced { appointment_id } => {
                end(case, flow, State::Closed, TicketStatus::Closed, TicketResult::VisitReplaced, ctx);
                ctx.decided(case, format!("R3.8 visit {appointment_id} replaced by a new one: pending case closed"));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
