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

use super::attempts::Attempts;
use super::{Playbook, PlaybookName, SubjectEvent};
use crate::domain::commands::CallCustomer;
use crate::domain::ctx::Ctx;
use crate::domain::events::{CallCompleted, Resolution};
use crate::domain::records::case::{CaseCore, Group, Priority, Ticket, TicketKind, TicketResult, TicketStatus, TimerKind};
use crate::domain::records::package::Package;
use crate::domain::refusal::Refusal;
use crate::domain::sms::{SmsVars, TemplateId};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub struct PackageExpiry;

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
    pub attempts: Attempts,
}

impl Flow {
    fn is_done(&self) -> bool {
        matches!(self.state, State::Resolved | State::Closed | State::Deactivated | State::Withdrawn)
    }
}

/// The next grace call; after the last one its report is awaited until the end of its working
/// day (R9.1).
fn grace_call(case: &mut CaseCore, flow: &mut Flow, ctx: &mut Ctx) {
    let n = flow.attempts.task();
    if n >= 2 {
        let cal = ctx.cal();
        let end_of_day = cal.at(cal.local_date(ctx.now), cal.work_end()).max(ctx.now);
        ctx.place(case, TimerKind::ReportDue, end_of_day);
    }
    let reason = if n == 1 {
        "The package has expired: book the remaining visits within the grace period (R5.2)"
    } else {
        "The package has expired: last call to book the remaining visits (R5.3)"
    };
    ctx.call_task(case, reason, CallCustomer { attempt: Some(n), ..CallCustomer::default() });
}

fn sms(case: &mut CaseCore, pkg: &Package, template: TemplateId, ctx: &mut Ctx) {
    let vars = SmsVars { remaining_visits: Some(pkg.remaining()), ..SmsVars::default() };
    ctx.sms(case, template, &vars);
}

/// R5.2 the first call not reached: SMS3 (once), waiting on the customer.
fn first_not_reached(case: &mut CaseCore, flow: &mut Flow, pkg: &Package, ctx: &mut Ctx) {
    sms(case, pkg, TemplateId::Sms3, ctx);
    ctx.ticket(case, |t| t.status = TicketStatus::WaitingOnCustomer);
    flow.sms3_sent = true;
    flow.state = State::WaitingOnCustomer;
    ctx.decided(case, "R5.2 first call not reached: SMS3");
}

/// R5.3 the second call not reached: SMS4, ticket closed.
fn second_not_reached(case: &mut CaseCore, flow: &mut Flow, pkg: &Package, ctx: &mut Ctx) {
    sms(case, pkg, TemplateId::Sms4, ctx);
    end(case, flow, State::Closed, TicketStatus::Closed, TicketResult::Unreachable, ctx);
    ctx.decided(case, "R5.3 second call not reached: SMS4, ticket closed");
}

/// R5.5 rebooked within grace, or declined: resolved, no later SMS.
fn resolve(case: &mut CaseCore, flow: &mut Flow, call: &CallCompleted, ctx: &mut Ctx) {
    match &call.resolution {
        Some(Resolution::Rebooked { window_start, .. }) => {
            let when = ctx.cal().rfc3339(*window_start);
            end(case, flow, State::Resolved, TicketStatus::Resolved, TicketResult::Rebooked, ctx);
            ctx.decided(case, format!("R5.5 rebooked within grace ({when}): resolved"));
        }
        Some(Resolution::Declined { reason, .. }) => {
            end(case, flow, State::Resolved, TicketStatus::Resolved, TicketResult::Declined, ctx);
            ctx.decided(case, format!("declined: {reason}; resolved"));
        }
        _ => {}
    }
}

fn end(case: &mut CaseCore, flow: &mut Flow, state: State, status: TicketStatus, result: TicketResult, ctx: &mut Ctx) {
    ctx.finish(case, status, result);
    flow.state = state;
}

impl Playbook for PackageExpiry {
    const NAME: PlaybookName = PlaybookName::PackageExpiry;
    type Flow = Flow;
    type Subject = Package;
    type Opening = ();

    /// R5.2 Day 1, 09:00: the case opens (the package checked it is paid, active, has visits
    /// remaining and no expiry case yet).
    fn open(case_id: String, pkg: &Package, _: &(), ctx: &mut Ctx) -> (CaseCore, Flow) {
        let now = ctx.now;
        let p = ctx.policy.package_expiry.clone();
        let cal = ctx.cal().clone();
        let remaining = pkg.remaining();
        let day1 = pkg.expiry_day1(p.validity_months);
        let end = cal.at(day1 + Duration::days(p.grace_days as i64), p.deactivate_time);
        let second_day = day1 + Duration::days(p.second_call_day.saturating_sub(1) as i64);
        let second_call_at = cal.working_moment(cal.at(second_day, p.call_time));
        let ticket =
            Ticket::open(TicketKind::PackageExpired, Priority::Low, Group::CustomerSuccess, &pkg.area).due(end).tagged("package_expired");
        let mut flow = Flow { state: State::Calling, day1, second_call_at, sms3_sent: false, attempts: Attempts::default() };
        let mut case = CaseCore::open(case_id, pkg.customer.clone(), ticket, now).about_package(&pkg.package_id);
        ctx.decided(
            &mut case,
            format!(
                "R5.2 package expired on {} with {remaining} of {} visits remaining; grace until {}",
                pkg.valid_until(p.validity_months),
                pkg.total(),
                cal.rfc3339(end)
            ),
        );
        let first = cal.working_moment(now);
        if first <= now {
            grace_call(&mut case, &mut flow, ctx);
        } else {
            ctx.place(&mut case, TimerKind::CallAttempt, first);
        }
        ctx.place(&mut case, TimerKind::CallAttempt, second_call_at);
        (case, flow)
    }

    fn state(flow: &Flow) -> &'static str {
        flow.state.as_str()
    }

    fn on_timer(case: &mut CaseCore, flow: &mut Flow, kind: TimerKind, pkg: &Package, ctx: &mut Ctx) {
        if flow.is_done() {
            return;
        }
        match kind {
            TimerKind::CallAttempt if ctx.now >= flow.second_call_at => {
                // R9.1 the first call's report never came: not reached.
                if flow.attempts.lapse(case, ctx.now, "when the second call fell due").is_some() && !flow.sms3_sent {
                    first_not_reached(case, flow, pkg, ctx);
                }
                // R5.3 the Day 6 call overtakes a first-call task still pending.
                ctx.cancel(case, &[TimerKind::CallAttempt]);
                flow.attempts.next = flow.attempts.next.max(2);
                grace_call(case, flow, ctx);
            }
            TimerKind::CallAttempt => grace_call(case, flow, ctx),
            TimerKind::ReportDue => {
                let lapsed = flow.attempts.lapse(case, ctx.now, "by the end of its working day");
                if lapsed.is_some() {
                    second_not_reached(case, flow, pkg, ctx);
                }
            }
            _ => {}
        }
    }

    /// R5.5 answered and rebooked (or declined) within grace, also after R5.3 closed the case
    /// unreachable before the report came (R9.1 v3).
    fn resolves(_: &CaseCore, flow: &Flow, call: &CallCompleted) -> bool {
        matches!(flow.state, State::Calling | State::WaitingOnCustomer | State::Closed)
            && call.outcome.reached()
            && matches!(call.resolution, Some(Resolution::Rebooked { .. }) | Some(Resolution::Declined { follow_up: false, .. }))
    }

    fn on_call(case: &mut CaseCore, flow: &mut Flow, call: &CallCompleted, pkg: &Package, ctx: &mut Ctx) -> Result<(), Refusal> {
        if flow.is_done() {
            if flow.state == State::Closed && Self::resolves(case, flow, call) {
                ctx.decided(case, "R9.1 a late report resolves the case R5.3 closed: it acts from now");
                resolve(case, flow, call, ctx);
            } else {
                ctx.decided(case, format!("outcome recorded; the case is already {}", flow.state));
            }
            return Ok(());
        }
        flow.attempts.report();
        ctx.cancel(case, &[TimerKind::ReportDue]);
        let second = ctx.now >= flow.second_call_at;
        if second {
            ctx.cancel(case, &[TimerKind::CallAttempt]);
        } else {
            // The outcome spends a first-call task still pending, never the Day 6 one.
            let keep: Vec<_> =
                case.timers.iter().filter(|t| t.kind == TimerKind::CallAttempt && t.due_at >= flow.second_call_at).cloned().collect();
            case.timers.retain(|t| !(t.kind == TimerKind::CallAttempt && t.due_at >= flow.second_call_at));
            ctx.cancel(case, &[TimerKind::CallAttempt]);
            case.timers.extend(keep);
        }
        if !call.outcome.reached() {
            flow.attempts.not_reached += 1;
            if second {
                second_not_reached(case, flow, pkg, ctx);
            } else if !flow.sms3_sent {
                first_not_reached(case, flow, pkg, ctx);
            } else {
                ctx.decided(case, "not reached again before the second call; recorded");
            }
            return Ok(());
        }
        match &call.resolution {
            // R9.3 (v3) a call task at the time the customer asked for, on which the case waits.
            Some(Resolution::FollowUpLater { at }) => {
                let due = ctx.cal().working_moment((*at).max(ctx.now));
                ctx.place(case, TimerKind::CallAttempt, due);
                ctx.decided(case, format!("R9.3 follow up later at {}", ctx.cal().rfc3339(due)));
            }
            _ if Self::resolves(case, flow, call) => resolve(case, flow, call, ctx),
            _ => ctx.decided(case, "answered without a rebooking; the calls go on"),
        }
        Ok(())
    }

    fn on_subject(case: &mut CaseCore, flow: &mut Flow, event: &SubjectEvent, _: &Package, ctx: &mut Ctx) {
        match event {
            SubjectEvent::PackageCancelled if !flow.is_done() => {
                end(case, flow, State::Withdrawn, TicketStatus::Closed, TicketResult::PackageCancelled, ctx);
                ctx.decided(case, "package cancelled by the customer: calls stopped");
            }
            // R5.4 the package did the deactivation and sent its command on this case.
            SubjectEvent::PackageDeactivated => {
                if !flow.is_done() {
                    end(case, flow, State::Deactivated, TicketStatus::Closed, TicketResult::Deactivated, ctx);
                }
                ctx.decided(case, "R5.4 end of grace: package deactivated, remaining visits forfeited");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
