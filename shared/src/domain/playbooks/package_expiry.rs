//! package_expiry (R5.1–R5.5): the expired-package grace period (seed 004).
//!
//! Decisions the SPEC leaves open, settled here:
//! - The Day 1 tick and the end of grace are one-shot subject timers placed at booking
//!   (`packages.rs`), so the end of grace happens even when no case was opened. A tick that
//!   arrives late (the daily safety sweep re-driving a lost one) decides as at its due time, except
//!   that a call task never falls before the next working-hours start.
//! - Day 1 opens a case only for a package paid, not cancelled, with visits remaining (visits
//!   cancelled free count as remaining: they are still owed). Ticket: category `package`,
//!   sub_category `expired`, type `package_expired`, priority `low`, group `customer_success`,
//!   `resolution_due` = the end of grace. One expiry case per package.
//! - The Day 1 call is due at once when Day 1 09:00 is inside working hours, otherwise at the
//!   next working-hours start; the Day 6 call likewise. Both are placed when the case opens.
//!   An outcome before Day 6 is the first call's; from Day 6 on, the second's.
//! - First call not reached → SMS3 (once), ticket `waiting_on_customer`. Second call not reached →
//!   SMS4, ticket `closed`, result `unreachable`. X is the remaining visits when the SMS is sent.
//! - Answered `rebooked` → resolved (result `rebooked`); the new visit itself arrives as
//!   `package_visit.rescheduled`. Declined without follow-up → resolved (result `declined`).
//!   Other answers are recorded and the calls go on. `will_pay` does not apply (422).
//! - End of grace (R5.4): `deactivate_package` names the package and the forfeited visits; it is a
//!   command of the expiry case when there is one (and closes it if still open, result
//!   `deactivated`), otherwise a subject command (`case_id` null). A package cancelled before then
//!   is not deactivated.

use super::packages::{package, package_mut};
use super::{Ctx, Flow as AnyFlow, Refusal, RefusalKind};
use crate::domain::case::{Attempt, Case, Group, Priority, Ticket, TicketStatus, TimerKind};
use crate::domain::effects::CommandType;
use crate::domain::events::{CallCompleted, Resolution};
use crate::domain::package::{PackageStatus, VisitState};
use crate::domain::sms::{SmsVars, TemplateId};
use crate::domain::stream::Stream;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

crate::named_enum! {
    pub enum State {
        /// R5.2 / R5.3 calls under way.
        Calling = "calling",
        /// R5.2 first call not reached: SMS3 sent.
        WaitingOnCustomer = "waiting_on_customer",
        /// R5.5 rebooked (or declined).
        Resolved = "resolved",
        /// R5.3 unreachable twice, SMS4.
        Closed = "closed",
        /// R5.4 grace over while the case was still open.
        Deactivated = "deactivated",
        /// The customer cancelled the package.
        Withdrawn = "withdrawn",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub state: State,
    /// R5.1 Day 1 after expiry.
    pub day1: NaiveDate,
    /// R5.3 when the second call falls due; outcomes from then on are the second call's.
    pub second_call_at: DateTime<Utc>,
    pub sms3_sent: bool,
}

/// The router sends only this playbook's cases here.
fn flow(case: &mut Case) -> &mut Flow {
    match &mut case.flow {
        AnyFlow::PackageExpiry(f) => f,
        other => unreachable!("a {} case was routed to package_expiry", other.playbook()),
    }
}

fn is_done(state: State) -> bool {
    matches!(state, State::Resolved | State::Closed | State::Deactivated | State::Withdrawn)
}

fn expiry_case(stream: &Stream) -> Option<usize> {
    stream.cases.iter().position(|c| matches!(c.flow, AnyFlow::PackageExpiry(_)))
}

/// R5.2 the Day 1 tick: opens the case when visits remain on a paid, active package.
pub fn on_day1(stream: &mut Stream, ctx: &mut Ctx) -> Option<String> {
    let now = ctx.now;
    let p = ctx.policy.package_expiry.clone();
    let cal = ctx.cal().clone();
    let pkg = package(stream).clone();
    let remaining = pkg.remaining();
    if !pkg.paid || !pkg.is_active() || remaining == 0 || expiry_case(stream).is_some() {
        let why = format!("paid {}, {}, {remaining} visits remaining", pkg.paid, pkg.status);
        package_mut(stream).note(now, "decision", format!("R5.2 Day 1: no expiry case ({why})"));
        return None;
    }
    let day1 = pkg.expiry_day1(p.validity_months);
    let end = cal.at(day1 + Duration::days(p.grace_days as i64), p.deactivate_time);
    let second_day = day1 + Duration::days(p.second_call_day.saturating_sub(1) as i64);
    let second_call_at = cal.working_moment(cal.at(second_day, p.call_time));
    let case_id = stream.next_case_id();
    let mut case = Case {
        case_id: case_id.clone(),
        appointment_id: None,
        order_id: None,
        package_id: Some(pkg.package_id.clone()),
        customer: pkg.customer.clone(),
        ticket: Ticket {
            category: "package".into(),
            sub_category: "expired".into(),
            kind: "package_expired".into(),
            status: TicketStatus::Open,
            priority: Priority::Low,
            area: pkg.area.clone(),
            group: Group::CustomerSuccess,
            resolution_due: Some(end),
            result: None,
            tags: vec!["package_expired".into()],
        },
        attempts: Vec::new(),
        timers: Vec::new(),
        timeline: Vec::new(),
        opened_at: now,
        version: 0,
        step: 0,
        flow: AnyFlow::PackageExpiry(Flow { state: State::Calling, day1, second_call_at, sms3_sent: false }),
    };
    case.note(
        now,
        "decision",
        format!(
            "R5.2 package expired on {} with {remaining} of {} visits remaining; grace until {}",
            pkg.valid_until(p.validity_months),
            pkg.total(),
            cal.rfc3339(end)
        ),
    );
    let first = cal.working_moment(now);
    if first <= now {
        call(&mut case, 1, ctx);
    } else {
        ctx.place(&mut case, TimerKind::CallAttempt, first);
    }
    ctx.place(&mut case, TimerKind::CallAttempt, second_call_at);
    stream.cases.push(case);
    Some(case_id)
}

fn call(case: &mut Case, n: u32, ctx: &mut Ctx) {
    let mut extra = Map::new();
    extra.insert("attempt".into(), n.into());
    let reason = if n == 1 {
        "The package has expired: book the remaining visits within the grace period (R5.2)"
    } else {
        "The package has expired: last call to book the remaining visits (R5.3)"
    };
    let now = ctx.now;
    ctx.call_task(case, reason, now, extra);
}

pub fn on_timer(stream: &mut Stream, idx: usize, kind: TimerKind, ctx: &mut Ctx) {
    let case = &mut stream.cases[idx];
    let f = flow(case).clone();
    if kind != TimerKind::CallAttempt || is_done(f.state) {
        return;
    }
    if ctx.now >= f.second_call_at {
        // R5.3 the Day 6 call overtakes a first-call task still pending.
        ctx.cancel(case, &[TimerKind::CallAttempt]);
        call(case, 2, ctx);
    } else {
        call(case, 1, ctx);
    }
}

fn sms(stream: &mut Stream, idx: usize, template: TemplateId, ctx: &mut Ctx) {
    let remaining = package(stream).remaining();
    let vars = SmsVars { remaining_visits: Some(remaining), ..SmsVars::default() };
    ctx.sms(&mut stream.cases[idx], template, &vars);
}

pub fn on_call(stream: &mut Stream, idx: usize, call: &CallCompleted, ctx: &mut Ctx) -> Result<(), Refusal> {
    if matches!(call.resolution, Some(Resolution::WillPay)) {
        return Err(Refusal {
            kind: RefusalKind::Rule,
            code: "resolution_not_applicable",
            message: "a will_pay resolution applies to package_payment cases only".into(),
            field: Some("data.resolution.kind".into()),
            rule: None,
        });
    }
    let now = ctx.now;
    let case = &mut stream.cases[idx];
    case.attempts.push(Attempt {
        at: now,
        outcome: call.outcome,
        call_id: Some(call.call_id.clone()),
        agent_id: Some(call.agent_id.clone()),
    });
    let f = flow(case).clone();
    if is_done(f.state) {
        case.note(now, "decision", format!("outcome recorded; the case is already {}", f.state));
        return Ok(());
    }
    let second = now >= f.second_call_at;
    if second {
        ctx.cancel(case, &[TimerKind::CallAttempt]);
    } else {
        // The outcome spends a first-call task still pending, never the Day 6 one.
        let keep: Vec<_> =
            case.timers.iter().filter(|t| t.kind == TimerKind::CallAttempt && t.due_at >= f.second_call_at).cloned().collect();
        case.timers.retain(|t| !(t.kind == TimerKind::CallAttempt && t.due_at >= f.second_call_at));
        ctx.cancel(case, &[TimerKind::CallAttempt]);
        case.timers.extend(keep);
    }
    if !call.outcome.reached() {
        if second {
            // R5.3 not reached twice: SMS4, ticket closed.
            sms(stream, idx, TemplateId::Sms4, ctx);
            let case = &mut stream.cases[idx];
            ctx.cancel(case, &[TimerKind::CallAttempt]);
            ctx.ticket(case, |t| {
                t.status = TicketStatus::Closed;
                t.result = Some("unreachable".into());
            });
            flow(case).state = State::Closed;
            case.note(now, "decision", "R5.3 second call not reached: SMS4, ticket closed");
        } else if !f.sms3_sent {
            // R5.2 not reached: SMS3.
            sms(stream, idx, TemplateId::Sms3, ctx);
            let case = &mut stream.cases[idx];
            ctx.ticket(case, |t| t.status = TicketStatus::WaitingOnCustomer);
            let fl = flow(case);
            fl.sms3_sent = true;
            fl.state = State::WaitingOnCustomer;
            case.note(now, "decision", "R5.2 first call not reached: SMS3");
        } else {
            case.note(now, "decision", "not reached again before Day 6; recorded");
        }
        return Ok(());
    }
    match &call.resolution {
        Some(Resolution::Rebooked { window_start, .. }) => {
            let when = ctx.cal().rfc3339(*window_start);
            resolve(case, "rebooked", ctx);
            case.note(now, "decision", format!("R5.5 rebooked within grace ({when}): resolved"));
        }
        Some(Resolution::Declined { follow_up: false, reason, .. }) => {
            resolve(case, "declined", ctx);
            case.note(now, "decision", format!("declined: {reason}; resolved"));
        }
        _ => case.note(now, "decision", "answered without a rebooking; the calls go on"),
    }
    Ok(())
}

fn resolve(case: &mut Case, result: &str, ctx: &mut Ctx) {
    ctx.cancel(case, &[]);
    ctx.ticket(case, |t| {
        t.status = TicketStatus::Resolved;
        t.result = Some(result.into());
    });
    flow(case).state = State::Resolved;
}

/// R5.4 end of Day 14: `deactivate_package`; the remaining visits are forfeited.
pub fn on_deactivate(stream: &mut Stream, ctx: &mut Ctx) -> Option<String> {
    let now = ctx.now;
    let pkg = package_mut(stream);
    if !pkg.is_active() {
        let status = pkg.status;
        pkg.note(now, "decision", format!("R5.4 end of grace: the package is already {status}"));
        return None;
    }
    let forfeited: Vec<Value> = pkg
        .visits
        .iter_mut()
        .filter(|v| matches!(v.state, VisitState::Scheduled | VisitState::CancelledFree))
        .map(|v| {
            v.state = VisitState::Forfeited;
            Value::String(v.visit_id.clone())
        })
        .collect();
    pkg.status = PackageStatus::Deactivated;
    pkg.note(now, "decision", format!("R5.4 end of grace: deactivated, {} visits forfeited", forfeited.len()));
    let mut data = Map::new();
    data.insert("package_id".into(), pkg.package_id.clone().into());
    data.insert("reason".into(), "grace_ended".into());
    data.insert("forfeited_visits".into(), forfeited.len().into());
    data.insert("visit_ids".into(), Value::Array(forfeited));
    let Some(idx) = expiry_case(stream) else {
        ctx.subject_command(CommandType::DeactivatePackage, data);
        return None;
    };
    let case = &mut stream.cases[idx];
    ctx.command(case, CommandType::DeactivatePackage, data);
    if !is_done(flow(case).state) {
        ctx.cancel(case, &[]);
        ctx.ticket(case, |t| {
            t.status = TicketStatus::Closed;
            t.result = Some("deactivated".into());
        });
        flow(case).state = State::Deactivated;
    }
    case.note(now, "decision", "R5.4 end of grace: package deactivated, remaining visits forfeited");
    Some(case.case_id.clone())
}

/// The customer cancelled the package: the grace calls stop.
pub fn on_package_cancelled(stream: &mut Stream, ctx: &mut Ctx) {
    if let Some(idx) = expiry_case(stream) {
        let case = &mut stream.cases[idx];
        if is_done(flow(case).state) {
            return;
        }
        ctx.cancel(case, &[]);
        ctx.ticket(case, |t| {
            t.status = TicketStatus::Closed;
            t.result = Some("package_cancelled".into());
        });
        flow(case).state = State::Withdrawn;
        case.note(ctx.now, "decision", "package cancelled by the customer: calls stopped");
    }
}
