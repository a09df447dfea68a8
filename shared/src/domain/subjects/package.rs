//! The package subject: a cleaning package as booked (visits, validity, payment, seed 004), what each
//! package event does to it (the visit rules R6), which package cases it opens or tells, and the
//! intents of the package playbooks, carried out here once.
//!
//! Decisions the SPEC leaves open, settled here:
//! - `package.booked` creates the snapshot; the same package id again → 422 `already_booked`.
//!   Every package gets two one-shot subject timers at booking, whatever its payment: the
//!   Day 1 tick (R5.2) and the end of grace (R5.4). The commit also indexes the package under
//!   `expiry:<day>:<package_id>` for both days, so the daily safety sweep
//!   (`Engine::expiry_sweep`) reads only the packages due that day.
//! - "The same day" (R6.3) is the visit's local day in the business calendar. A change on an
//!   earlier day counts by the hours left before the visit start: ≥ `free_change_hours` is free
//!   (R6.1), less is counted (R6.2); a visit whose day has passed counts as R6.2.
//! - A late reschedule (R6.2) is accepted: the visit moves and is counted as used now, and it
//!   stays one counted visit whatever happens to it later (completing it does not count a second).
//!   A visit counted by R6.3 cannot be rescheduled (422 R6.3); a completed or forfeited visit
//!   cannot be changed (422 `visit_closed`). Rescheduling a visit cancelled free re-books it.
//!   A cancellation of a visit already counted changes nothing (202).
//! - R6 commands and SMS carry `case_id` null and name `package_id` and `visit_id`; what R6
//!   decides is written on the package's own timeline.
//! - R6.4 rounding follows the SPEC's steps, each a money amount rounded half up to the minor
//!   unit: value per visit = price ÷ visits; remaining value = value per visit × remaining
//!   visits; fee = 30 % of it; refund = remaining value − fee, so the two always add up. (With an
//!   uneven price the per-visit rounding can leave the full remaining value a piastre or two
//!   off the price; the SPEC's formula is the contract.)
//!   Zero remaining visits still emits `refund_package`, with zero amounts, so the books close
//!   explicitly. A package cancelled before payment gets no refund command.
//! - `package.cancelled` on a package already cancelled or deactivated is accepted and changes
//!   nothing (the dashboard echoing the engine's own R4.4 cancellation). Visit events on such a
//!   package → 422 `package_closed`. `package.paid` is accepted at any time (R4.6).

use super::order::Outcome;
use crate::domain::commands::{CancelPackage, CommandBody, CompleteVisit, DeactivatePackage, PackageCancelReason, RefundPackage};
use crate::domain::ctx::Ctx;
use crate::domain::events::{PackageBooked, PackageCancelled, PackageEvent, VisitCancelled, VisitCompleted, VisitRescheduled};
use crate::domain::ids::{SubjectId, TimerSubject};
use crate::domain::money::{div_half_up, Money, Percent};
use crate::domain::playbooks::package_expiry::PackageExpiry;
use crate::domain::playbooks::package_payment::PackagePayment;
use crate::domain::playbooks::{PlaybookName, SubjectEvent};
use crate::domain::records::case::{TimelineKind, TimerKind};
use crate::domain::records::package::{CountedBy, Package, PackageStatus, Visit, VisitChange, VisitState};
use crate::domain::refusal::{ErrorCode, Refusal, Rule};
use crate::domain::sms::{SmsVars, TemplateId};
use crate::domain::subjects::snapshot::{Snapshot, SubjectTimer};
use chrono::{DateTime, Duration, Utc};

/// The package of a package snapshot (`Snapshot::package` creates both together).
fn package_mut(snapshot: &mut Snapshot) -> &mut Package {
    snapshot.as_package_mut().expect("a package input locates a package snapshot")
}

/// What a package event does to its package.
pub fn on_event(snapshot: Option<&Snapshot>, event: &PackageEvent, ctx: &mut Ctx) -> Result<Outcome, Refusal> {
    let mut snapshot = match (snapshot, event) {
        (None, PackageEvent::Booked(booking)) => return Ok(booked(booking, ctx)),
        (Some(s), _) if s.as_package().is_some() => s.clone(),
        _ => return Err(unknown_package(event.package_id())),
    };
    let case_id = match event {
        // A booking that is not the one held (that one is an echo, R9.2).
        PackageEvent::Booked(PackageBooked { package_id, .. }) => {
            return Err(Refusal::conflict(
                ErrorCode::AlreadyBooked,
                format!("package {package_id:?} is already booked; send package_visit.rescheduled or package.paid to change it"),
                Some("data.package_id"),
            ))
        }
        PackageEvent::Paid(_) => paid(&mut snapshot, ctx),
        PackageEvent::Cancelled(PackageCancelled { reason, .. }) => cancelled(&mut snapshot, reason, ctx),
        PackageEvent::VisitCancelled(VisitCancelled { visit_id, .. }) => {
            visit_cancelled(&mut snapshot, visit_id, ctx)?;
            None
        }
        PackageEvent::VisitRescheduled(VisitRescheduled { visit_id, window_start, .. }) => {
            visit_rescheduled(&mut snapshot, visit_id, *window_start, ctx)?;
            None
        }
        PackageEvent::VisitCompleted(VisitCompleted { visit_id, .. }) => {
            visit_completed(&mut snapshot, visit_id, ctx)?;
            None
        }
    };
    Ok((snapshot, case_id))
}

pub(crate) fn unknown_package(package_id: &str) -> Refusal {
    Refusal::not_found(ErrorCode::UnknownPackage, format!("no package {package_id:?}"), "data.package_id")
}

/// `package.booked`: the package and its snapshot, the chase of an unpaid one (R4.1), the
/// expiry ticks (R5.2, R5.4).
fn booked(booking: &PackageBooked, ctx: &mut Ctx) -> Outcome {
    let PackageBooked { package_id, price, visits, start_date, payment_method, paid, .. } = booking;
    let mut package = Package::booked(booking, ctx.now);
    let p = &ctx.policy.package_expiry;
    let day1 = package.expiry_day1(p.validity_months);
    let end = day1 + Duration::days(p.grace_days as i64);
    let (tick_at, end_at) = (ctx.cal().at(day1, p.call_time), ctx.cal().at(end, p.deactivate_time));
    package.note(
        ctx.now,
        TimelineKind::Event,
        format!(
            "package.booked: {} visits, {} {}, {payment_method}, paid {paid}; valid {start_date} to {} (R5.1)",
            visits.len(),
            price.amount,
            price.currency,
            package.valid_until(p.validity_months)
        ),
    );
    let mut snapshot = Snapshot::package(package);
    // The chase first, so a package's first case is `p1-<package_id>`.
    let case_id = (!paid).then(|| snapshot.open::<PackagePayment>(&(), ctx));
    // R5.2 / R5.4 one-shot ticks per package: no scan ever looks for expired packages.
    ctx.place_subject(&mut snapshot.timers, TimerSubject::Package(package_id.clone()), TimerKind::ExpiryDay1, tick_at);
    ctx.place_subject(&mut snapshot.timers, TimerSubject::Package(package_id.clone()), TimerKind::ExpiryDeactivate, end_at);
    ctx.index.extend([SubjectId::Expiry(day1, package_id.clone()), SubjectId::Expiry(end, package_id.clone())]);
    (snapshot, case_id)
}

/// R4.6 payment at any point.
fn paid(snapshot: &mut Snapshot, ctx: &mut Ctx) -> Option<String> {
    let now = ctx.now;
    let pkg = package_mut(snapshot);
    if pkg.paid {
        pkg.note(now, TimelineKind::Event, "package.paid again; already paid");
    } else {
        pkg.paid = true;
        pkg.paid_at = Some(now);
        pkg.note(now, TimelineKind::Event, "package.paid");
    }
    // R4.6 the payment chase resolves; the 202 names its latest case.
    snapshot.tell(|c| c.playbook() == PlaybookName::PackagePayment, &SubjectEvent::PackagePaid, ctx);
    snapshot.cases.iter().rev().find(|c| c.playbook() == PlaybookName::PackagePayment).map(|c| c.case_id.clone())
}

/// The amounts of R6.4, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refund {
    pub value_per_visit: i64,
    pub remaining_value: i64,
    pub fee: i64,
    pub refund: i64,
}

/// R6.4 value per visit = price ÷ visits; remaining value = value × remaining; fee = `fee` of it;
/// refund = remaining value − fee; each step half up to the minor unit (see the module header).
pub fn refund(price: i64, visits: u32, remaining: u32, fee: Percent) -> Refund {
    let value_per_visit = div_half_up(price as i128, visits.max(1) as i128);
    let remaining_value = value_per_visit * remaining as i64;
    let fee_amount = fee.of(remaining_value);
    Refund { value_per_visit, remaining_value, fee: fee_amount, refund: remaining_value - fee_amount }
}

/// `package.cancelled`: R6.4 refund after payment; the package's timers and cases stop.
fn cancelled(snapshot: &mut Snapshot, reason: &str, ctx: &mut Ctx) -> Option<String> {
    let now = ctx.now;
    let fee_pct = ctx.policy.package_visits.cancellation_fee;
    let pkg = package_mut(snapshot);
    if !pkg.is_active() {
        pkg.note(now, TimelineKind::Event, format!("package.cancelled ({reason}); already {}", pkg.status));
        return None;
    }
    pkg.status = PackageStatus::Cancelled;
    pkg.note(now, TimelineKind::Event, format!("package.cancelled: {reason}"));
    let pkg = pkg.clone();
    if pkg.paid {
        let r = refund(pkg.price.amount, pkg.total(), pkg.remaining(), fee_pct);
        let money = |amount| Money::new(amount, pkg.price.currency.clone());
        ctx.subject_command(CommandBody::RefundPackage(RefundPackage {
            package_id: pkg.package_id.clone(),
            reason: reason.into(),
            visits: pkg.total(),
            remaining_visits: pkg.remaining(),
            value_per_visit: money(r.value_per_visit),
            remaining_value: money(r.remaining_value),
            fee_percent: fee_pct,
            fee: money(r.fee),
            refund: money(r.refund),
        }));
        package_mut(snapshot).note(
            now,
            TimelineKind::Decision,
            format!(
                "R6.4 refund {} of remaining value {} ({} of {} visits), fee {} ({fee_pct}%)",
                r.refund,
                r.remaining_value,
                pkg.remaining(),
                pkg.total(),
                r.fee
            ),
        );
    } else {
        package_mut(snapshot).note(now, TimelineKind::Decision, "R6.4 cancelled before payment: nothing to refund");
    }
    ctx.cancel_subject(&mut snapshot.timers, &TimerSubject::Package(pkg.package_id.clone()), &[]);
    snapshot.tell(|_| true, &SubjectEvent::PackageCancelled, ctx);
    None
}

/// How a change of a visit at `now` counts (R6.1–R6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// R6.1 ≥ 24 h before: free, not counted.
    Free,
    /// R6.2 < 24 h before, not the same day: counted as used.
    Late,
    /// R6.3 the same local day: counted; cannot be rescheduled.
    SameDay,
}

pub fn change_at(ctx: &Ctx, window_start: DateTime<Utc>) -> Change {
    let cal = ctx.cal();
    if cal.local_date(ctx.now) == cal.local_date(window_start) {
        Change::SameDay
    } else if window_start - ctx.now >= Duration::hours(ctx.policy.package_visits.free_change_hours as i64) {
        Change::Free
    } else {
        Change::Late
    }
}

fn active_package(snapshot: &mut Snapshot) -> Result<&mut Package, Refusal> {
    let pkg = package_mut(snapshot);
    if !pkg.is_active() {
        return Err(Refusal::conflict(
            ErrorCode::PackageClosed,
            format!("package {:?} is {}; its visits cannot change", pkg.package_id, pkg.status),
            Some("data.package_id"),
        ));
    }
    Ok(pkg)
}

fn open_visit<'p>(pkg: &'p mut Package, visit_id: &str) -> Result<&'p mut Visit, Refusal> {
    let package_id = pkg.package_id.clone();
    pkg.visit_mut(visit_id).ok_or_else(|| {
        Refusal::not_found(ErrorCode::UnknownVisit, format!("package {package_id:?} has no visit {visit_id:?}"), "data.visit_id")
    })
}

fn visit_closed(visit: &Visit) -> Refusal {
    Refusal::conflict(ErrorCode::VisitClosed, format!("visit {:?} is already {}", visit.visit_id, visit.state), Some("data.visit_id"))
}

/// `package_visit.cancelled` (R6.1–R6.3).
fn visit_cancelled(snapshot: &mut Snapshot, visit_id: &str, ctx: &mut Ctx) -> Result<(), Refusal> {
    let now = ctx.now;
    let pkg = active_package(snapshot)?;
    let visit = open_visit(pkg, visit_id)?;
    if matches!(visit.state, VisitState::Scheduled | VisitState::CountedUsed) {
        visit.cancelled = true;
        visit.changes.push(VisitChange { occurred_at: ctx.occurred, window_start: None });
    }
    match visit.state {
        VisitState::Scheduled => {}
        VisitState::CountedUsed => {
            let note = format!("package_visit.cancelled {visit_id}: already counted ({})", visit.counted_by.map_or("-", CountedBy::as_str));
            pkg.note(now, TimelineKind::Event, note);
            return Ok(());
        }
        _ => return Err(visit_closed(visit)),
    }
    let change = change_at(ctx, visit.window_start);
    let start = ctx.cal().rfc3339(visit.window_start);
    match change {
        Change::Free => {
            visit.state = VisitState::CancelledFree;
            pkg.note(
                now,
                TimelineKind::Decision,
                format!(
                    "R6.1 visit {visit_id} ({start}) cancelled ≥ {} h ahead: free, not counted",
                    ctx.policy.package_visits.free_change_hours
                ),
            );
        }
        Change::Late => {
            visit.state = VisitState::CountedUsed;
            visit.counted_by = Some(CountedBy::Late);
            pkg.note(
                now,
                TimelineKind::Decision,
                format!(
                    "R6.2 visit {visit_id} ({start}) cancelled < {} h ahead: counted as used",
                    ctx.policy.package_visits.free_change_hours
                ),
            );
        }
        Change::SameDay => {
            visit.state = VisitState::CountedUsed;
            visit.counted_by = Some(CountedBy::SameDay);
            let visit = visit.clone();
            pkg.note(
                now,
                TimelineKind::Decision,
                format!("R6.3 visit {visit_id} ({start}) cancelled on its day: counted, completed, SMS5"),
            );
            let pkg = pkg.clone();
            ctx.subject_command(CommandBody::CompleteVisit(CompleteVisit {
                package_id: pkg.package_id.clone(),
                visit_id: visit.visit_id.clone(),
                window_start: ctx.cal().rfc3339(visit.window_start),
                reason: "cancelled_same_day".into(),
            }));
            if let Err(e) = ctx.subject_sms(&pkg.customer, TemplateId::Sms5, &SmsVars::default()) {
                package_mut(snapshot).note(now, TimelineKind::SmsFailed, e.to_string());
            }
        }
    }
    Ok(())
}

/// `package_visit.rescheduled` (R6.1–R6.3).
fn visit_rescheduled(snapshot: &mut Snapshot, visit_id: &str, window_start: DateTime<Utc>, ctx: &mut Ctx) -> Result<(), Refusal> {
    let now = ctx.now;
    let new_start = ctx.cal().rfc3339(window_start);
    let change = {
        let pkg = active_package(snapshot)?;
        let visit = open_visit(pkg, visit_id)?;
        match visit.state {
            VisitState::Completed | VisitState::Forfeited => return Err(visit_closed(visit)),
            VisitState::CountedUsed if visit.counted_by == Some(CountedBy::SameDay) => {
                return Err(Refusal::rule(
                    Rule::R6_3,
                    format!("visit {visit_id:?} was cancelled on its own day and cannot be rescheduled"),
                    Some("data.visit_id"),
                ))
            }
            VisitState::CountedUsed | VisitState::CancelledFree => None,
            VisitState::Scheduled => Some(change_at(ctx, visit.window_start)),
        }
    };
    let pkg = package_mut(snapshot);
    let visit = pkg.visit_mut(visit_id).expect("found above");
    let old = visit.window_start;
    let detail = match (change, visit.state) {
        (Some(Change::SameDay), _) => {
            return Err(Refusal::rule(
                Rule::R6_3,
                format!("visit {visit_id:?} is today; a visit cannot be rescheduled on its own day"),
                Some("data.window_start"),
            ))
        }
        (Some(Change::Free), _) => {
            format!("R6.1 visit {visit_id} moved ≥ {} h ahead: free, not counted", ctx.policy.package_visits.free_change_hours)
        }
        (Some(Change::Late), _) => {
            visit.state = VisitState::CountedUsed;
            visit.counted_by = Some(CountedBy::Late);
            format!("R6.2 visit {visit_id} moved < {} h ahead: counted as used", ctx.policy.package_visits.free_change_hours)
        }
        (None, VisitState::CancelledFree) => {
            visit.state = VisitState::Scheduled;
            format!("visit {visit_id} (cancelled free, R6.1) re-booked")
        }
        (None, _) => format!("visit {visit_id} moved; it stays counted ({})", visit.counted_by.map_or("-", CountedBy::as_str)),
    };
    visit.window_start = window_start;
    visit.cancelled = false;
    visit.changes.push(VisitChange { occurred_at: ctx.occurred, window_start: Some(window_start) });
    let old = ctx.cal().rfc3339(old);
    pkg.note(now, TimelineKind::Decision, format!("{detail}; {old} → {new_start}"));
    Ok(())
}

/// `package_visit.completed`: the visit is used.
fn visit_completed(snapshot: &mut Snapshot, visit_id: &str, ctx: &mut Ctx) -> Result<(), Refusal> {
    let now = ctx.now;
    let pkg = active_package(snapshot)?;
    let visit = open_visit(pkg, visit_id)?;
    match visit.state {
        VisitState::Scheduled | VisitState::CountedUsed => {
            visit.state = VisitState::Completed;
            pkg.note(now, TimelineKind::Event, format!("visit {visit_id} completed; {} remaining", pkg.remaining()));
            Ok(())
        }
        VisitState::Completed => {
            pkg.note(now, TimelineKind::Event, format!("visit {visit_id} completed again"));
            Ok(())
        }
        VisitState::CancelledFree | VisitState::Forfeited => Err(visit_closed(visit)),
    }
}

/// R5.2 the Day 1 tick opens the expiry case when visits remain on a paid, active package that
/// has none yet.
fn open_expiry(snapshot: &mut Snapshot, ctx: &mut Ctx) -> Option<String> {
    let has_case = snapshot.cases.iter().any(|c| c.playbook() == PlaybookName::PackageExpiry);
    let pkg = package_mut(snapshot);
    let remaining = pkg.remaining();
    if !pkg.paid || !pkg.is_active() || remaining == 0 || has_case {
        let why = format!("paid {}, {}, {remaining} visits remaining", pkg.paid, pkg.status);
        pkg.note(ctx.now, TimelineKind::Decision, format!("R5.2 Day 1: no expiry case ({why})"));
        return None;
    }
    Some(snapshot.open::<PackageExpiry>(&(), ctx))
}

/// A timer placed on a package rather than a case (R5.2 Day 1, R5.4 end of grace).
pub fn on_subject_timer(snapshot: &mut Snapshot, timer: &SubjectTimer, ctx: &mut Ctx) -> Option<String> {
    snapshot.as_package()?;
    match timer.timer.kind {
        TimerKind::ExpiryDay1 => open_expiry(snapshot, ctx),
        TimerKind::ExpiryDeactivate => deactivate(snapshot, ctx),
        _ => None,
    }
}

/// R5.4 end of Day 14: `deactivate_package`; the remaining visits are forfeited. The command is
/// the expiry case's when there is one (which then closes), otherwise the package's own.
fn deactivate(snapshot: &mut Snapshot, ctx: &mut Ctx) -> Option<String> {
    let now = ctx.now;
    let pkg = package_mut(snapshot);
    if !pkg.is_active() {
        let status = pkg.status;
        pkg.note(now, TimelineKind::Decision, format!("R5.4 end of grace: the package is already {status}"));
        return None;
    }
    let mut forfeited = Vec::new();
    for v in pkg.visits.iter_mut().filter(|v| matches!(v.state, VisitState::Scheduled | VisitState::CancelledFree)) {
        v.state = VisitState::Forfeited;
        forfeited.push(v.visit_id.clone());
    }
    pkg.status = PackageStatus::Deactivated;
    pkg.note(now, TimelineKind::Decision, format!("R5.4 end of grace: deactivated, {} visits forfeited", forfeited.len()));
    let body = CommandBody::DeactivatePackage(DeactivatePackage {
        package_id: pkg.package_id.clone(),
        reason: "grace_ended".into(),
        forfeited_visits: forfeited.len() as u32,
        visit_ids: forfeited,
    });
    let Some(case) = snapshot.cases.iter_mut().find(|c| c.playbook() == PlaybookName::PackageExpiry) else {
        ctx.subject_command(body);
        return None;
    };
    ctx.command(&mut case.core, body);
    let case_id = case.case_id.clone();
    snapshot.tell(|c| c.case_id == case_id, &SubjectEvent::PackageDeactivated, ctx);
    Some(case_id)
}

/// The engine cancels the package for case `origin` (R4.4 not paid, or the customer declined it):
/// `cancel_package` and `cancel_package_visits`, the package cancelled and its timers stopped.
pub(crate) fn cancel_by_engine(snapshot: &mut Snapshot, reason: PackageCancelReason, origin: &str, ctx: &mut Ctx) {
    let now = ctx.now;
    let pkg = package_mut(snapshot);
    pkg.status = PackageStatus::Cancelled;
    pkg.note(now, TimelineKind::Decision, format!("cancelled by the engine ({reason}, R4.4)"));
    let open_visits: Vec<String> = pkg
        .visits
        .iter()
        .filter(|v| matches!(v.state, VisitState::Scheduled | VisitState::CancelledFree))
        .map(|v| v.visit_id.clone())
        .collect();
    let package_id = pkg.package_id.clone();
    if let Some(case) = snapshot.cases.iter_mut().find(|c| c.case_id == origin) {
        let cancel = CancelPackage { package_id: package_id.clone(), reason, visit_ids: None };
        ctx.command(&mut case.core, CommandBody::CancelPackage(cancel.clone()));
        ctx.command(&mut case.core, CommandBody::CancelPackageVisits(CancelPackage { visit_ids: Some(open_visits), ..cancel }));
    }
    ctx.cancel_subject(&mut snapshot.timers, &TimerSubject::Package(package_id.clone()), &[]);
}

#[cfg(test)]
mod tests;
