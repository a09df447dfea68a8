//! The follow-up round both follow-up playbooks run (R2.5–R2.10; R3.4, R3.6 and R3.9 say "as R2.x"):
//! attempts on working days, not reached, declined, follow up later, the 7-day close and the 30-day re-open.
//!
//! Decisions the SPEC leaves open, settled here:
//! - Attempt n of a round falls at `attempt_time` on the later of the (n − 1 + `first_day`)-th
//!   working day after the round's first day and the next working day after the last outcome, so
//!   an early call (agent or customer) still leaves the next attempt on its own day.
//!   `cancellation_follow_up` starts on the first working day after the cancellation day
//!   (`first_day` 1), `second_visit_follow_up` calls at opening (`first_day` 0).
//! - R9.1 attempts do not wait on reports (`attempts.rs`): when attempt n's call task goes out,
//!   attempt n + 1 is placed on its own day, or, after the last attempt, a `report_due` timer at
//!   the end of that working day. An attempt still unreported when the next one falls due, or at
//!   that end of day, is recorded `unreported` and counts as not reached.
//! - Every reported outcome counts as the current attempt; the first moves the ticket to `pending`.
//!   An answered call without a resolution, and a decline that asks for a follow-up, keep the
//!   next attempt (placing one when none is pending); they do not count as "not reached".
//! - Using up the attempts (R2.6 / R3.4) also stops the SLA escalations that guard them (R9.4).
//! - After the attempts are used up (R2.6 / R3.4) the ticket waits on the customer and the case is
//!   still live: a late report can still rebook or decline (R9.1), and a follow-up request resumes
//!   calls. Outcomes reported on a resolved or closed case are written on the timeline and change
//!   nothing.

use super::attempts::{Attempts, Report};
use super::Playbook;
use crate::domain::commands::{CommandBody, Reason};
use crate::domain::ctx::Ctx;
use crate::domain::events::{CallCompleted, Resolution};
use crate::domain::policy::Policy;
use crate::domain::records::case::{CaseCore, Priority, TicketResult, TicketStatus, TimerKind};
use crate::domain::records::order::Order;
use crate::domain::refusal::{Refusal, Rule};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

crate::named_enum! {
    pub enum State {
        /// Call attempts under way.
        Following = "following",
        /// Every attempt not reached; the ticket waits on the customer (R2.6, R3.4).
        WaitingOnCustomer = "waiting_on_customer",
        /// R3.5 a new visit was created; engineering operation has the ticket.
        Rebooked = "rebooked",
        /// Rebooked or declined (R2.7, R2.8, R3.6).
        Resolved = "resolved",
        /// Closed unresolved (R2.9) or by a change of the subject.
        Closed = "closed",
        /// R2.2 superseded by a newer case for the same order.
        Duplicate = "duplicate",
    }
}

/// Where a case stands in its round of attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    pub state: State,
    /// First day of the current round: the opening day, or the re-open day (R2.10).
    pub start: NaiveDate,
    pub attempts: Attempts,
    /// The ticket has been `waiting_on_customer` at some point (R2.10).
    pub waited_on_customer: bool,
}

impl Round {
    pub fn new(start: NaiveDate) -> Round {
        Round { state: State::Following, start, attempts: Attempts::default(), waited_on_customer: false }
    }
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Resolved | State::Closed | State::Duplicate)
    }
}

/// The figures and rule ids one playbook runs its round with.
pub struct Rules {
    pub attempts: u32,
    pub attempt_time: NaiveTime,
    /// Working days between the round's first day and attempt 1 (see the module header).
    pub first_day: u32,
    pub close_after_days: u32,
    pub reopen_after_days: u32,
    /// R2.6 raises the priority when the attempts are used up; R3.4 does not.
    pub exhausted_priority: Option<Priority>,
    /// The rules this playbook cites: used up (R2.6 / R3.4), declined (R2.8 / R3.6), close (R2.9 / R3.9).
    pub exhausted_rule: Rule,
    pub declined_rule: Rule,
    pub close_rule: Rule,
}

/// A follow-up playbook: what it adds to the shared round.
pub trait FollowUp: Playbook<Subject = Order> {
    fn round(flow: &mut Self::Flow) -> &mut Round;
    fn rules(policy: &Policy) -> Rules;
    /// Places the round's first steps (attempt 1, SLAs, the close timer) at opening or re-open.
    fn start(case: &mut CaseCore, flow: &mut Self::Flow, close_at: DateTime<Utc>, subject: &Order, ctx: &mut Ctx);
    /// The call task of attempt `n`.
    fn call_task(case: &mut CaseCore, flow: &mut Self::Flow, n: u32, subject: &Order, ctx: &mut Ctx);
    /// Answered and rebooked (R2.7, R3.5).
    fn rebooked(case: &mut CaseCore, flow: &mut Self::Flow, window: (DateTime<Utc>, DateTime<Utc>), subject: &Order, ctx: &mut Ctx);
    /// What ends the order when the customer cannot be reached or declines: `cancel_order`
    /// (R2.6, R2.8) or `convert_order_to_complete` (R3.4, R3.6).
    fn give_up(reason: Reason) -> CommandBody;
}

/// The next attempt's due time (see the module header); `after` an outcome or a task, the next
/// working day at the earliest.
pub fn attempt_due(round: &Round, rules: &Rules, after: Option<DateTime<Utc>>, ctx: &Ctx) -> DateTime<Utc> {
    let cal = ctx.cal();
    let scheduled = cal.nth_working_day_after(round.start, (round.attempts.next + rules.first_day).saturating_sub(1));
    let day = match after {
        Some(at) => scheduled.max(cal.next_working_day(cal.local_date(at))),
        None => scheduled,
    };
    cal.at(day, rules.attempt_time)
}

/// The call task of the next attempt goes out now (R2.5, R3.4), with the step after it placed
/// on its own schedule (R9.1): the next attempt, or the last one's end-of-day report deadline.
pub fn task<P: FollowUp>(case: &mut CaseCore, flow: &mut P::Flow, subject: &Order, ctx: &mut Ctx) {
    let rules = P::rules(ctx.policy);
    let n = P::round(flow).attempts.task();
    P::call_task(case, flow, n, subject, ctx);
    let round = P::round(flow);
    if round.attempts.next <= rules.attempts {
        let due = attempt_due(round, &rules, Some(ctx.now), ctx);
        ctx.place(case, TimerKind::CallAttempt, due);
    } else {
        let cal = ctx.cal();
        let end_of_day = cal.at(cal.local_date(ctx.now), cal.work_end()).max(ctx.now);
        ctx.place(case, TimerKind::ReportDue, end_of_day);
    }
}

/// A reported call on a live case of the round.
pub fn on_call<P: FollowUp>(
    case: &mut CaseCore,
    flow: &mut P::Flow,
    call: &CallCompleted,
    subject: &Order,
    ctx: &mut Ctx,
) -> Result<(), Refusal> {
    let rules = P::rules(ctx.policy);
    let late_resolution = resolves(case, P::round(flow), call);
    let round = P::round(flow);
    if round.is_done() || round.state == State::Rebooked {
        let state = round.state;
        if !(state == State::Closed && late_resolution) {
            ctx.decided(case, format!("outcome recorded; the case is already {state}"));
            return Ok(());
        }
        // R9.1 (v3) a late report resolves a case closed unreachable: it acts from now.
        ctx.decided(case, format!("R9.1 a late report resolves the case closed by {}: it acts from now", rules.close_rule));
        round.state = State::WaitingOnCustomer;
    }
    // The report counts as the current attempt; a call before the next task was due spends it.
    if let Report::Early(_) = round.attempts.report() {
        ctx.cancel(case, &[TimerKind::CallAttempt]);
    }
    ctx.cancel(case, &[TimerKind::ReportDue]);
    // R2.5 the first reported outcome moves the ticket to pending.
    if case.ticket.status == TicketStatus::Open {
        ctx.ticket(case, |t| t.status = TicketStatus::Pending);
    }

    if !call.outcome.reached() {
        if round.state == State::WaitingOnCustomer {
            ctx.decided(case, "not reached again; still waiting on the customer");
            return Ok(());
        }
        round.attempts.not_reached += 1;
        if round.attempts.not_reached >= rules.attempts {
            exhausted::<P>(case, flow, &rules, ctx);
        } else {
            keep_following::<P>(case, flow, &rules, ctx);
        }
        return Ok(());
    }

    match &call.resolution {
        Some(Resolution::Rebooked { window_start, window_end }) => P::rebooked(case, flow, (*window_start, *window_end), subject, ctx),
        Some(Resolution::Declined { reason, complaint, follow_up }) => {
            // R2.8 a complaint first, then end or keep following as the customer asks.
            if *complaint {
                ctx.command(case, CommandBody::OpenComplaint(Reason { subject: case.subject(), reason: reason.clone() }));
            }
            if *follow_up {
                ctx.decided(case, format!("{} declined for now; the customer asked to be followed", rules.declined_rule));
                keep_following::<P>(case, flow, &rules, ctx);
            } else {
                ctx.command(case, P::give_up(Reason { subject: case.subject(), reason: reason.clone() }));
                resolve(case, P::round(flow), TicketResult::Declined, None, ctx);
                ctx.decided(case, format!("{} declined without follow-up: ticket resolved", rules.declined_rule));
            }
        }
        Some(Resolution::FollowUpLater { at }) => {
            // R2.8 the next attempt at the requested time (within working hours).
            let due = ctx.cal().working_moment((*at).max(ctx.now));
            ctx.decided(case, format!("{} follow up later at {}", rules.declined_rule, ctx.cal().rfc3339(due)));
            ctx.cancel(case, &[TimerKind::CallAttempt]);
            P::round(flow).state = State::Following;
            ctx.place(case, TimerKind::CallAttempt, due);
        }
        Some(Resolution::WillPay) | None => {
            ctx.decided(case, "answered without a resolution; the attempts go on");
            keep_following::<P>(case, flow, &rules, ctx);
        }
    }
    Ok(())
}

/// Whether a reported call resolves a case of the round (R2.7, R2.8, R3.5, R3.6): answered and
/// rebooked, or declined without a follow-up, on a case still live or closed unreachable (R2.9,
/// R9.1 v3). What else a late report says resolves nothing.
pub fn resolves(case: &CaseCore, round: &Round, call: &CallCompleted) -> bool {
    let live = !round.is_done() && round.state != State::Rebooked;
    let unreachable = round.state == State::Closed && case.ticket.result == Some(TicketResult::Unreachable);
    (live || unreachable)
        && call.outcome.reached()
        && matches!(call.resolution, Some(Resolution::Rebooked { .. }) | Some(Resolution::Declined { follow_up: false, .. }))
}

/// The round's first attempt at opening or re-open (R2.5, R3.4). R9.7 (v3) when its time fell
/// due before the input arrived (the input happened earlier), it is taken on arrival: the call
/// task now inside working hours, else at the next working-hours start; the steps after it keep
/// their spacing from it.
pub fn first_attempt<P: FollowUp>(case: &mut CaseCore, flow: &mut P::Flow, subject: &Order, ctx: &mut Ctx) {
    let due = ctx.catch_up(attempt_due(P::round(flow), &P::rules(ctx.policy), None, ctx));
    if due <= ctx.now {
        task::<P>(case, flow, subject, ctx);
    } else {
        ctx.place(case, TimerKind::CallAttempt, due);
    }
}

/// The round goes on: a next attempt stays pending, or one is placed.
fn keep_following<P: FollowUp>(case: &mut CaseCore, flow: &mut P::Flow, rules: &Rules, ctx: &mut Ctx) {
    let round = P::round(flow);
    round.state = State::Following;
    if case.pending(TimerKind::CallAttempt).is_none() {
        // R9.7 from when the outcome happened (a timer's is now).
        let due = attempt_due(round, rules, Some(ctx.occurred), ctx);
        ctx.place(case, TimerKind::CallAttempt, due);
    }
}

/// R2.6 / R3.4 every attempt not reached: the order is given up and the ticket waits on the
/// customer; the calls and the SLAs that guarded them stop (R9.4).
fn exhausted<P: FollowUp>(case: &mut CaseCore, flow: &mut P::Flow, rules: &Rules, ctx: &mut Ctx) {
    let round = P::round(flow);
    round.state = State::WaitingOnCustomer;
    round.waited_on_customer = true;
    ctx.cancel(case, &[TimerKind::CallAttempt, TimerKind::ReportDue, TimerKind::FirstCallSla, TimerKind::CostSla]);
    ctx.command(case, P::give_up(Reason { subject: case.subject(), reason: "customer_unreached".into() }));
    ctx.ticket(case, |t| {
        t.status = TicketStatus::WaitingOnCustomer;
        if let Some(p) = rules.exhausted_priority {
            t.priority = p;
        }
    });
    ctx.decided(case, format!("{} not reached in {} attempts: waiting on the customer", rules.exhausted_rule, rules.attempts));
}

/// An attempt whose report did not come before `by` counts as not reached (R9.1); returns
/// whether that used up the attempts.
fn lapse<P: FollowUp>(case: &mut CaseCore, flow: &mut P::Flow, rules: &Rules, by: &str, ctx: &mut Ctx) -> bool {
    let round = P::round(flow);
    if round.attempts.lapse(case, ctx.now, by).is_none() {
        return false;
    }
    if case.ticket.status == TicketStatus::Open {
        ctx.ticket(case, |t| t.status = TicketStatus::Pending);
    }
    if round.attempts.not_reached >= rules.attempts {
        exhausted::<P>(case, flow, rules, ctx);
        return true;
    }
    false
}

/// Resolves the ticket (R2.7, R2.8, R3.6), every timer cancelled.
pub fn resolve(case: &mut CaseCore, round: &mut Round, result: TicketResult, priority: Option<Priority>, ctx: &mut Ctx) {
    ctx.cancel(case, &[]);
    ctx.ticket(case, |t| {
        t.status = TicketStatus::Resolved;
        t.result = Some(result);
        if let Some(p) = priority {
            t.priority = p;
        }
    });
    round.state = State::Resolved;
}

/// Closes the ticket with `result` (R2.2, R2.9, R3.8), every timer cancelled.
pub fn close(case: &mut CaseCore, round: &mut Round, state: State, status: TicketStatus, result: TicketResult, ctx: &mut Ctx) {
    ctx.finish(case, status, result);
    round.state = state;
}

/// The round's timers: the call task of the next attempt, the last attempt's report deadline
/// (R9.1), and the close (R2.9).
pub fn on_timer<P: FollowUp>(case: &mut CaseCore, flow: &mut P::Flow, kind: TimerKind, subject: &Order, ctx: &mut Ctx) {
    let rules = P::rules(ctx.policy);
    match kind {
        TimerKind::CallAttempt if P::round(flow).state == State::Following => {
            let used_up = lapse::<P>(case, flow, &rules, "when the next attempt fell due", ctx);
            if !used_up {
                task::<P>(case, flow, subject, ctx);
            }
        }
        TimerKind::ReportDue if P::round(flow).state == State::Following => {
            lapse::<P>(case, flow, &rules, "by the end of its working day", ctx);
            keep_if_live::<P>(case, flow, &rules, ctx);
        }
        // R2.9 a ticket not resolved in time is closed.
        TimerKind::AutoClose if case.ticket.is_open() && P::round(flow).state != State::Rebooked => {
            close(case, P::round(flow), State::Closed, TicketStatus::Closed, TicketResult::Unreachable, ctx);
            ctx.decided(case, format!("{} closed unresolved {} days after it opened", rules.close_rule, rules.close_after_days));
        }
        _ => {}
    }
}

/// After a report deadline that did not use up the attempts (an earlier one was answered), the
/// round goes on with one more attempt, as after an answer without a resolution.
fn keep_if_live<P: FollowUp>(case: &mut CaseCore, flow: &mut P::Flow, rules: &Rules, ctx: &mut Ctx) {
    if P::round(flow).state == State::Following {
        keep_following::<P>(case, flow, rules, ctx);
    }
}

/// R2.10 re-open from `reopen_after_days` after the appointment day, only for a case that
/// waited on the customer and is still waiting, or was since closed unreachable by R2.9; the
/// round starts over from today. A case closed otherwise stays closed: R2.2's duplicate (the
/// order's newer case follows up; re-opening the old one would put two live follow-ups on one
/// order), R3.8's replaced visit and R3.5's rebooking that was never booked (the order moved on
/// without this case).
pub fn on_reopen<P: FollowUp>(case: &mut CaseCore, flow: &mut P::Flow, subject: &Order, ctx: &mut Ctx) -> Result<(), Refusal> {
    let rules = P::rules(ctx.policy);
    let round = P::round(flow);
    let refuse = |message: String| Err(Refusal::rule(Rule::R2_10, message, Some("data.case_id")));
    if !round.waited_on_customer {
        return refuse("only a case whose ticket went waiting_on_customer can be re-opened".into());
    }
    match (case.ticket.status, case.ticket.result) {
        (TicketStatus::WaitingOnCustomer, _) | (TicketStatus::Closed, Some(TicketResult::Unreachable)) => {}
        (TicketStatus::Resolved, _) => {
            return refuse("the case was resolved; only a ticket waiting on the customer or closed unreachable re-opens".into())
        }
        (TicketStatus::WaitingOnThirdParty, _) => {
            return refuse("the case was closed as a duplicate (R2.2); the order's newer case carries the follow-up".into())
        }
        (TicketStatus::Closed, result) => {
            let result = result.map_or("-", |r| r.as_str());
            return refuse(format!("the case was closed ({result}); only a ticket closed unreachable (R2.9) re-opens"));
        }
        (TicketStatus::Open | TicketStatus::Pending, _) => return refuse("the case is already open".into()),
    }
    let cal = ctx.cal();
    let today = cal.local_date(ctx.now);
    let appointment_day = case.appointment_id.as_deref().and_then(|a| subject.appointment(a)).map(|a| a.day(cal));
    let from = appointment_day.unwrap_or_else(|| cal.local_date(case.opened_at)) + Duration::days(rules.reopen_after_days as i64);
    if today < from {
        return Err(Refusal::rule(
            Rule::R2_10,
            format!("the case can be re-opened from {from}, {} days after the appointment day", rules.reopen_after_days),
            Some("data.case_id"),
        ));
    }
    let close_at = ctx.now + Duration::days(rules.close_after_days as i64);
    ctx.cancel(case, &[]);
    ctx.ticket(case, |t| {
        t.status = TicketStatus::Open;
        t.result = None;
        t.resolution_due = Some(close_at);
    });
    *round = Round { waited_on_customer: true, ..Round::new(today) };
    ctx.decided(case, "R2.10 re-opened: attempts start over");
    P::start(case, flow, close_at, subject, ctx);
    Ok(())
}
