//! second_visit_follow_up (R3.1–R3.9): the follow-up after inspection, incomplete work or painting (seed 001).
//!
//! Decisions the SPEC leaves open, settled here:
//! - Ticket (seed 001 "pending customer action"): category `follow_up`, sub_category
//!   `customer_care`, type `second_visit`, status `open`, priority `low`, group `customer_care`,
//!   area from the appointment, `resolution_due` = opening + `close_after_days` (R3.9 / R2.9).
//! - The SLAs (R3.2 8 h, R3.3 48 h) run in wall-clock hours from the case opening; a deadline
//!   that falls outside working hours moves to the next working-hours start, since the
//!   escalation is a task for the shift leader like a call task (SPEC §2). An outcome reported
//!   at or before the deadline is in time. R3.2 is met by any reported outcome; R3.3 only by a
//!   call with `cost_told` true, which also confirms the material price (R3.5).
//! - R3.4, R3.6 and R3.9 are the shared follow-up round (`round.rs`) with attempt 1 at opening:
//!   attempt 2 is due at `attempt_time` on the next working day after the first outcome.
//! - R3.5 lead time: `material_lead_hours` as whole working days (24 h → 1), or the material
//!   days ops noted capped at `max_material_days` (never less than the lead), added to the
//!   moment the price was confirmed with `Calendar::add_working_hours_days` (Fridays and
//!   holidays do not count; the time of day is kept). A rebooking needing material before the
//!   price was ever confirmed (no `cost_told`) is refused with R3.5 too.
//! - R3.5 after `create_visit` the ticket goes `pending` / `engineering_operation` and stays so
//!   (seed 001: operations resolve it after the visit); the call and close timers are cancelled,
//!   a cost SLA still running keeps running.
//! - R3.7 painting money, integer minor units: service price per day = total ÷ days with the
//!   remainder on the last day; material quotation = material price + 10% (half up); with a tax
//!   invoice 29% is added to the material quotation (the seed's sentence is about the material
//!   statement, which otherwise "is not a tax invoice"); the technician collects 50% of the
//!   material total (quotation + tax) on day 1, the rest on the next day. The quote rides on the
//!   call task and on `block_technician_days`, which lists every working day of the job from
//!   the new visit's day. The one follow-up call during the job is a call task on the job's
//!   middle working day (index days ÷ 2) at the window's local end time.
//! - R3.9 re-open as R2.10 (refused citing R2.10): the attempts and both SLAs start over.

use super::round::{self, FollowUp, Round, Rules, State};
use super::{Playbook, PlaybookName, SubjectEvent};
use crate::domain::calendar::Calendar;
use crate::domain::commands::{BlockTechnicianDays, CallCustomer, CommandBody, CreateVisit, Escalate, PaintingQuote, Reason};
use crate::domain::ctx::Ctx;
use crate::domain::events::{CallCompleted, CompletionOutcome, Painting, Resolution};
use crate::domain::money::{split_remainder_last, Money};
use crate::domain::policy::{Policy, SecondVisitPolicy};
use crate::domain::records::case::{CaseCore, Group, Priority, Ticket, TicketKind, TicketResult, TicketStatus, TimerKind};
use crate::domain::records::order::Order;
use crate::domain::refusal::{Refusal, Rule};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub struct SecondVisitFollowUp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub round: Round,
    pub outcome: CompletionOutcome,
    pub needs_material: bool,
    pub material_days: Option<u32>,
    pub painting: Option<PaintingQuote>,
    /// R3.3 / R3.5 when a call reported the cost (and material price) told.
    pub cost_confirmed_at: Option<DateTime<Utc>>,
}

/// R3.7 the painting money: per-day split, material quotation, tax, day-1 collection.
pub fn quote(p: &Painting, policy: &SecondVisitPolicy) -> PaintingQuote {
    let material = p.material_price.amount;
    let quotation = material + policy.material_markup.of(material);
    let tax = if p.tax_invoice { policy.tax_invoice.of(quotation) } else { 0 };
    let material_total = quotation + tax;
    let day1 = policy.material_upfront.of(material_total);
    PaintingQuote {
        currency: p.total_price.currency.clone(),
        days: p.days,
        total_price: p.total_price.amount,
        price_per_day: split_remainder_last(p.total_price.amount, p.days),
        material_price: material,
        material_quotation: quotation,
        tax,
        material_total,
        material_day1: day1,
        material_rest: material_total - day1,
    }
}

fn escalate(case: &mut CaseCore, sla: &str, reason: String, ctx: &mut Ctx) {
    let body = CommandBody::Escalate(Escalate { subject: case.subject(), to: "shift_leader".into(), sla: sla.into(), reason });
    ctx.command(case, body);
}

/// R3.5 a material job's window must start at least the lead time after the price was confirmed,
/// counting working days only.
fn material_lead(flow: &Flow, call: &CallCompleted, window_start: DateTime<Utc>, ctx: &Ctx) -> Result<(), Refusal> {
    let p = &ctx.policy.second_visit;
    if !flow.needs_material {
        return Ok(());
    }
    let confirmed = match (flow.cost_confirmed_at, call.cost_told) {
        (Some(at), _) => at,
        (None, Some(true)) => ctx.now,
        (None, _) => {
            return Err(Refusal::rule(
                Rule::R3_5,
                "the job needs material: confirm the material price with the customer (cost_told) before booking",
                Some("data.resolution.window_start"),
            ))
        }
    };
    let lead = p.material_lead_hours.div_ceil(24).max(1);
    let days = flow.material_days.map_or(lead, |d| d.min(p.max_material_days).max(lead));
    let earliest = ctx.cal().add_working_hours_days(confirmed, days);
    if window_start < earliest {
        return Err(Refusal::rule(
            Rule::R3_5,
            format!(
                "the job needs material: the visit can start from {} ({days} working day(s) after the material price was confirmed)",
                ctx.cal().rfc3339(earliest)
            ),
            Some("data.resolution.window_start"),
        ));
    }
    Ok(())
}

/// The `n` working days of a job starting on `first` (or the next working day).
fn job_days(cal: &Calendar, first: NaiveDate, n: u32) -> Vec<NaiveDate> {
    let start = if cal.is_working_day(first) { first } else { cal.next_working_day(first) };
    (0..n.max(1)).map(|i| cal.nth_working_day_after(start, i)).collect()
}

/// R3.3 the cost told (when the call happened), which confirms the material price (R3.5).
fn cost_told(case: &mut CaseCore, flow: &mut Flow, call: &CallCompleted, ctx: &mut Ctx) {
    if call.cost_told == Some(true) && flow.cost_confirmed_at.is_none() {
        flow.cost_confirmed_at = Some(ctx.occurred);
        ctx.cancel(case, &[TimerKind::CostSla]);
        ctx.decided(case, "R3.3 cost told: material price confirmed");
    }
}

/// R3.5 resolved as rebooked. R3.7 (v3) a painting job's one follow-up call outlives the
/// resolution: it is the case's one timer after it, and the case stays resolved.
fn resolve_rebooked(case: &mut CaseCore, flow: &mut Flow, why: String, ctx: &mut Ctx) {
    let job_call = case.timers.iter().find(|t| t.kind == TimerKind::CallAttempt && flow.painting.is_some()).cloned();
    case.timers.retain(|t| Some(t) != job_call.as_ref());
    round::resolve(case, &mut flow.round, TicketResult::Rebooked, None, ctx);
    ctx.decided(case, why);
    if let Some(call) = job_call {
        case.timers.push(call);
        ctx.decided(case, "R3.7 the follow-up call during the painting job still goes out; the case stays resolved");
    }
}

impl Playbook for SecondVisitFollowUp {
    const NAME: PlaybookName = PlaybookName::SecondVisitFollowUp;
    type Flow = Flow;
    type Subject = Order;
    /// The completed appointment.
    type Opening = String;

    /// R3.1 opens the case (the order checked the appointment was completed).
    fn open(case_id: String, order: &Order, appointment_id: &String, ctx: &mut Ctx) -> (CaseCore, Flow) {
        let appointment = order.appointment(appointment_id).expect("the order checked the appointment");
        let completion = appointment.completion.clone().expect("the order checked the completion");
        let p = &ctx.policy.second_visit;
        let now = ctx.now;
        let close_at = now + Duration::days(p.close_after_days as i64);
        let ticket = Ticket::open(TicketKind::SecondVisit, Priority::Low, Group::CustomerCare, &appointment.area).due(close_at);
        let mut flow = Flow {
            round: Round::new(ctx.cal().local_date(now)),
            outcome: completion.outcome,
            needs_material: completion.needs_material,
            material_days: completion.material_days,
            painting: completion.painting.as_ref().map(|x| quote(x, p)),
            cost_confirmed_at: None,
        };
        let mut case = CaseCore::open(case_id, appointment.customer.clone(), ticket, now)
            .about_appointment(&appointment.appointment_id, &appointment.order_id);
        ctx.decided(
            &mut case,
            format!("R3.1 second-visit follow-up opened after {} of {}", completion.outcome, appointment.appointment_id),
        );
        if let Some(q) = &flow.painting {
            ctx.decided(
                &mut case,
                format!(
                    "R3.7 painting quote: per day {:?}, material quotation {}, tax {}, material total {}, day-1 material {} ({})",
                    q.price_per_day, q.material_quotation, q.tax, q.material_total, q.material_day1, q.currency
                ),
            );
        }
        Self::start(&mut case, &mut flow, close_at, order, ctx);
        (case, flow)
    }

    fn state(flow: &Flow) -> &'static str {
        flow.round.state.as_str()
    }

    /// As the round, and the report of R3.7's call during a painting job, which comes after the
    /// rebooking and may come after the case resolved (v3).
    fn resolves(case: &CaseCore, flow: &Flow, call: &CallCompleted) -> bool {
        let job_call = flow.painting.is_some() && matches!(flow.round.state, State::Rebooked | State::Resolved);
        job_call || round::resolves(case, &flow.round, call)
    }

    /// A late report still tells that the cost was told (R3.3, R3.5).
    fn late_report(case: &mut CaseCore, flow: &mut Flow, call: &CallCompleted, ctx: &mut Ctx) {
        cost_told(case, flow, call, ctx);
    }

    fn on_call(case: &mut CaseCore, flow: &mut Flow, call: &CallCompleted, order: &Order, ctx: &mut Ctx) -> Result<(), Refusal> {
        let rebooks = round::resolves(case, &flow.round, call);
        if let (true, Some(Resolution::Rebooked { window_start, .. })) = (rebooks, &call.resolution) {
            material_lead(flow, call, *window_start, ctx)?;
        }
        // R3.2 any outcome meets the first-call SLA.
        ctx.cancel(case, &[TimerKind::FirstCallSla]);
        cost_told(case, flow, call, ctx);
        if matches!(flow.round.state, State::Rebooked | State::Resolved) && flow.painting.is_some() {
            ctx.decided(case, "R3.7 follow-up during the job recorded");
            return Ok(());
        }
        round::on_call::<Self>(case, flow, call, order, ctx)
    }

    fn on_timer(case: &mut CaseCore, flow: &mut Flow, kind: TimerKind, order: &Order, ctx: &mut Ctx) {
        let p = &ctx.policy.second_visit;
        match kind {
            // R3.7 the one follow-up call during the painting job.
            // (v3) It goes out even when R3.5 resolved the case on the booking of the job's visit.
            TimerKind::CallAttempt if matches!(flow.round.state, State::Rebooked | State::Resolved) => {
                ctx.call_task(
                    case,
                    "Follow up the painting job in progress",
                    CallCustomer { painting: flow.painting.clone(), ..CallCustomer::default() },
                );
            }
            // R3.2 no outcome within the first-call SLA (R9.4: only while the calls are under way).
            TimerKind::FirstCallSla if flow.round.state == State::Following => {
                let hours = p.first_call_sla_hours;
                escalate(case, "first_call_sla", format!("no call outcome within {hours} hours of the case opening"), ctx);
                ctx.ticket(case, |t| t.priority = Priority::High);
                ctx.decided(case, format!("R3.2 no call outcome within {hours} h: escalated, priority high"));
            }
            // R3.3 the cost was not told in time (R9.4: not once the order is converted, resolved or closed).
            TimerKind::CostSla if flow.cost_confirmed_at.is_none() && matches!(flow.round.state, State::Following | State::Rebooked) => {
                let hours = p.cost_sla_hours;
                escalate(case, "cost_sla", format!("the cost was not told to the customer within {hours} hours"), ctx);
                ctx.decided(case, format!("R3.3 cost not told within {hours} h: escalated"));
            }
            // R3.5 (v2) rebooked but no later visit of the order booked in time.
            TimerKind::AutoClose if flow.round.state == State::Rebooked => {
                round::close(case, &mut flow.round, State::Closed, TicketStatus::Closed, TicketResult::NotBooked, ctx);
                let days = p.close_after_days;
                ctx.decided(case, format!("R3.5 no later visit of the order was booked within {days} days of opening: closed"));
            }
            _ => round::on_timer::<Self>(case, flow, kind, order, ctx),
        }
    }

    fn on_reopen(case: &mut CaseCore, flow: &mut Flow, order: &Order, ctx: &mut Ctx) -> Result<(), Refusal> {
        round::on_reopen::<Self>(case, flow, order, ctx)
    }

    fn on_subject(case: &mut CaseCore, flow: &mut Flow, event: &SubjectEvent, _: &Order, ctx: &mut Ctx) {
        match event {
            SubjectEvent::VisitReplaced { appointment_id } => {
                round::close(case, &mut flow.round, State::Closed, TicketStatus::Closed, TicketResult::VisitReplaced, ctx);
                ctx.decided(case, format!("R3.8 visit {appointment_id} replaced by a new one: pending case closed"));
            }
            // R3.5 (v2) the rebooked visit is booked: the follow-up is done.
            SubjectEvent::VisitBooked { appointment_id } if flow.round.state == State::Rebooked => {
                resolve_rebooked(case, flow, format!("R3.5 visit {appointment_id} of the order booked: resolved"), ctx);
            }
            _ => {}
        }
    }
}

impl FollowUp for SecondVisitFollowUp {
    fn round(flow: &mut Flow) -> &mut Round {
        &mut flow.round
    }
    fn rules(policy: &Policy) -> Rules {
        let p = &policy.second_visit;
        Rules {
            attempts: p.attempts,
            attempt_time: p.attempt_time,
            first_day: 0,
            close_after_days: p.close_after_days,
            reopen_after_days: p.reopen_after_days,
            exhausted_priority: None,
            exhausted_rule: Rule::R3_4,
            declined_rule: Rule::R3_6,
            close_rule: Rule::R3_9,
        }
    }
    /// Attempt 1 (now, or at the next opening), both SLAs at their exact instants (R9.4) and the
    /// close timer (R3.1–R3.3, R3.9).
    fn start(case: &mut CaseCore, flow: &mut Flow, close_at: DateTime<Utc>, order: &Order, ctx: &mut Ctx) {
        let p = &ctx.policy.second_visit;
        let (first_sla, cost_sla) = (p.first_call_sla_hours as i64, p.cost_sla_hours as i64);
        if ctx.cal().in_working_hours(ctx.now) {
            round::task::<Self>(case, flow, order, ctx);
        } else {
            let due = ctx.cal().working_moment(ctx.now);
            ctx.place(case, TimerKind::CallAttempt, due);
        }
        ctx.place(case, TimerKind::FirstCallSla, ctx.now + Duration::hours(first_sla));
        if flow.cost_confirmed_at.is_none() {
            ctx.place(case, TimerKind::CostSla, ctx.now + Duration::hours(cost_sla));
        }
        ctx.place(case, TimerKind::AutoClose, close_at);
    }
    fn call_task(case: &mut CaseCore, flow: &mut Flow, n: u32, _: &Order, ctx: &mut Ctx) {
        let task = CallCustomer {
            attempt: Some(n),
            completion_outcome: Some(flow.outcome),
            needs_material: Some(flow.needs_material),
            painting: flow.painting.clone(),
            ..CallCustomer::default()
        };
        ctx.call_task(case, format!("Book the second visit after {} (attempt {n})", flow.outcome), task);
    }
    /// R3.5 the new visit; R3.7 the technician's days and the follow-up call of a painting job.
    fn rebooked(case: &mut CaseCore, flow: &mut Flow, (start, end): (DateTime<Utc>, DateTime<Utc>), _: &Order, ctx: &mut Ctx) {
        // R9.1 (v3) reported after R3.9 closed the case: the visit is created and the case
        // resolves at once, its close having passed.
        let closed = case.ticket.status == TicketStatus::Closed;
        let cal = ctx.cal().clone();
        let body = CommandBody::CreateVisit(CreateVisit {
            subject: case.subject(),
            window_start: cal.rfc3339(start),
            window_end: cal.rfc3339(end),
            coupon_code: None,
            needs_material: Some(flow.needs_material),
            replaces_appointment_id: None,
            visit_number: None,
        });
        ctx.command(case, body);
        // R3.5 (v2) the close timer stays: the case resolves when the visit is booked, or closes.
        ctx.cancel(case, &[TimerKind::CallAttempt, TimerKind::ReportDue]);
        ctx.ticket(case, |t| {
            t.status = TicketStatus::Pending;
            t.group = Group::EngineeringOperation;
        });
        flow.round.state = State::Rebooked;
        ctx.decided(case, "R3.5 new visit created: ticket pending with engineering operation until the visit is booked");
        if let Some(q) = &flow.painting {
            let days = job_days(&cal, cal.local_date(start), q.days);
            let body = CommandBody::BlockTechnicianDays(BlockTechnicianDays {
                subject: case.subject(),
                days: days.clone(),
                window_start: cal.local(start).time().format("%H:%M").to_string(),
                window_end: cal.local(end).time().format("%H:%M").to_string(),
                painting: q.clone(),
                price_per_day: q.price_per_day.iter().map(|a| Money::new(*a, q.currency.clone())).collect(),
            });
            ctx.command(case, body);
            let middle = days[days.len() / 2];
            let due = cal.working_moment(cal.at(middle, cal.local(end).time()));
            ctx.decided(case, format!("R3.7 {} technician days blocked; one follow-up call during the job", days.len()));
            ctx.place(case, TimerKind::CallAttempt, due);
        }
        if closed {
            resolve_rebooked(case, flow, "R9.1 rebooked after the close: resolved".into(), ctx);
        }
    }
    fn give_up(reason: Reason) -> CommandBody {
        CommandBody::ConvertOrderToComplete(reason)
    }
}

#[cfg(test)]
mod tests;
