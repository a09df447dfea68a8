//! Package events on a package's stream: the package record, visit rules (R6), and the package playbooks.
//!
//! Decisions the SPEC leaves open, settled here:
//! - `package.booked` creates the stream; the same package id again → 422 `already_booked`.
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
//! - R6.4 rounding: the remaining value is computed once from the exact fraction,
//!   price × remaining ÷ visits, rounded half up (so with every visit remaining it is the full
//!   price); the fee is 30 % of it, half up; the refund is the remaining value − the fee, so the
//!   two always add up. `value_per_visit` (price ÷ visits, half up) is informational.
//!   Zero remaining visits still emits `refund_package`, with zero amounts, so the books close
//!   explicitly. A package cancelled before payment gets no refund command.
//! - `package.cancelled` on a package already cancelled or deactivated is accepted and changes
//!   nothing (the dashboard echoing the engine's own R4.4 cancellation). Visit events on such a
//!   package → 422 `package_closed`. `package.paid` is accepted at any time (R4.6).

use super::{package_expiry, package_payment, unknown_subject, Ctx, Outcome, Refusal};
use crate::domain::case::TimerKind;
use crate::domain::effects::CommandType;
use crate::domain::events::{Event, EventBody, Input};
use crate::domain::money::{div_half_up, Money, Percent};
use crate::domain::package::{Package, PackageStatus, Visit, VisitState};
use crate::domain::sms::{SmsVars, TemplateId};
use crate::domain::stream::{Stream, StreamKey, SubjectTimer};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{json, Map, Value};

/// The subject-index entry that lists a package under a day its expiry timers fall due.
pub fn expiry_subject(day: NaiveDate, package_id: &str) -> String {
    format!("{}{package_id}", expiry_prefix(day))
}

/// Every package with an expiry timer due on `day` is indexed under this prefix.
pub fn expiry_prefix(day: NaiveDate) -> String {
    format!("expiry:{day}:")
}

/// The package of a package stream (`package.booked` creates both together).
pub(crate) fn package(stream: &Stream) -> &Package {
    stream.package.as_ref().expect("a package stream holds its package")
}

pub(crate) fn package_mut(stream: &mut Stream) -> &mut Package {
    stream.package.as_mut().expect("a package stream holds its package")
}

pub fn on_event(stream: Option<&Stream>, event: &Event, ctx: &mut Ctx) -> Result<Outcome, Refusal> {
    if let EventBody::PackageBooked { .. } = &event.body {
        return booked(stream, event, ctx);
    }
    let mut stream = stream.cloned().filter(|s| s.package.is_some()).ok_or_else(|| unknown_subject(&Input::Event(event.clone())))?;
    let case_id = match &event.body {
        EventBody::PackagePaid { .. } => paid(&mut stream, ctx),
        EventBody::PackageCancelled { reason, .. } => cancelled(&mut stream, reason, ctx),
        EventBody::PackageVisitCancelled { visit_id, .. } => {
            visit_cancelled(&mut stream, visit_id, ctx)?;
            None
        }
        EventBody::PackageVisitRescheduled { visit_id, window_start, .. } => {
            visit_rescheduled(&mut stream, visit_id, *window_start, ctx)?;
            None
        }
        EventBody::PackageVisitCompleted { visit_id, .. } => {
            visit_completed(&mut stream, visit_id, ctx)?;
            None
        }
        other => unreachable!("{} is not a package event", other.kind()),
    };
    Ok((stream, Vec::new(), case_id))
}

fn booked(stream: Option<&Stream>, event: &Event, ctx: &mut Ctx) -> Result<Outcome, Refusal> {
    let EventBody::PackageBooked { package_id, customer, area, price, visits, start_date, payment_method, paid } = &event.body else {
        unreachable!("called for package.booked only")
    };
    if stream.is_some() {
        return Err(Refusal::conflict(
            "already_booked",
            format!("package {package_id:?} is already booked; send package_visit.rescheduled or package.paid to change it"),
            Some("data.package_id"),
        ));
    }
    let mut stream = Stream::new(StreamKey::Package(package_id.clone()));
    let mut package = Package {
        package_id: package_id.clone(),
        customer: customer.clone(),
        area: area.clone(),
        price: price.clone(),
        visits: visits
            .iter()
            .map(|v| Visit { visit_id: v.visit_id.clone(), window_start: v.window_start, state: VisitState::Scheduled, counted_by: None })
            .collect(),
        start_date: *start_date,
        payment_method: *payment_method,
        paid: *paid,
        paid_at: paid.then_some(ctx.now),
        status: PackageStatus::Active,
        booked_at: Some(ctx.now),
        timeline: Vec::new(),
    };
    let p = &ctx.policy.package_expiry;
    let day1 = package.expiry_day1(p.validity_months);
    let end = day1 + Duration::days(p.grace_days as i64);
    let (tick_at, end_at) = (ctx.cal().at(day1, p.call_time), ctx.cal().at(end, p.deactivate_time));
    package.note(
        ctx.now,
        "event",
        format!(
            "package.booked: {} visits, {} {}, {payment_method}, paid {paid}; valid {start_date} to {} (R5.1)",
            visits.len(),
            price.amount,
            price.currency,
            package.valid_until(p.validity_months)
        ),
    );
    stream.package = Some(package);
    // R5.2 / R5.4 one-shot ticks per package: no scan ever looks for expired packages.
    ctx.place_subject(&mut stream, package_id, TimerKind::ExpiryDay1, tick_at);
    ctx.place_subject(&mut stream, package_id, TimerKind::ExpiryDeactivate, end_at);
    let index = vec![expiry_subject(day1, package_id), expiry_subject(end, package_id)];
    let case_id = (!paid).then(|| package_payment::open(&mut stream, ctx));
    Ok((stream, index, case_id))
}

/// R4.6 payment at any point.
fn paid(stream: &mut Stream, ctx: &mut Ctx) -> Option<String> {
    let now = ctx.now;
    let pkg = package_mut(stream);
    if pkg.paid {
        pkg.note(now, "event", "package.paid again; already paid");
    } else {
        pkg.paid = true;
        pkg.paid_at = Some(now);
        pkg.note(now, "event", "package.paid");
    }
    package_payment::on_paid(stream, ctx)
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
/// refund = remaining value − fee. Rounded once, half up (see the module header).
pub fn refund(price: i64, visits: u32, remaining: u32, fee: Percent) -> Refund {
    let visits = visits.max(1) as i128;
    let remaining_value = div_half_up(price as i128 * remaining as i128, visits);
    let fee_amount = fee.of(remaining_value);
    Refund { value_per_visit: div_half_up(price as i128, visits), remaining_value, fee: fee_amount, refund: remaining_value - fee_amount }
}

/// `package.cancelled`: R6.4 refund after payment; the package's timers and cases stop.
fn cancelled(stream: &mut Stream, reason: &str, ctx: &mut Ctx) -> Option<String> {
    let now = ctx.now;
    let fee_pct = ctx.policy.package_visits.cancellation_fee;
    let pkg = package_mut(stream);
    if !pkg.is_active() {
        pkg.note(now, "event", format!("package.cancelled ({reason}); already {}", pkg.status));
        return None;
    }
    pkg.status = PackageStatus::Cancelled;
    pkg.note(now, "event", format!("package.cancelled: {reason}"));
    let pkg = pkg.clone();
    if pkg.paid {
        let r = refund(pkg.price.amount, pkg.total(), pkg.remaining(), fee_pct);
        let money = |amount| json!(Money::new(amount, pkg.price.currency.clone()));
        let mut data = Map::new();
        data.insert("package_id".into(), pkg.package_id.clone().into());
        data.insert("reason".into(), reason.into());
        data.insert("visits".into(), pkg.total().into());
        data.insert("remaining_visits".into(), pkg.remaining().into());
        data.insert("value_per_visit".into(), money(r.value_per_visit));
        data.insert("remaining_value".into(), money(r.remaining_value));
        data.insert("fee_percent".into(), json!(fee_pct));
        data.insert("fee".into(), money(r.fee));
        data.insert("refund".into(), money(r.refund));
        ctx.subject_command(CommandType::RefundPackage, data);
        package_mut(stream).note(
            now,
            "decision",
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
        package_mut(stream).note(now, "decision", "R6.4 cancelled before payment: nothing to refund");
    }
    ctx.cancel_subject(stream, &pkg.package_id, &[]);
    package_payment::on_package_cancelled(stream, ctx);
    package_expiry::on_package_cancelled(stream, ctx);
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

fn active_package(stream: &mut Stream) -> Result<&mut Package, Refusal> {
    let pkg = package_mut(stream);
    if !pkg.is_active() {
        return Err(Refusal::conflict(
            "package_closed",
            format!("package {:?} is {}; its visits cannot change", pkg.package_id, pkg.status),
            Some("data.package_id"),
        ));
    }
    Ok(pkg)
}

fn open_visit<'p>(pkg: &'p mut Package, visit_id: &str) -> Result<&'p mut Visit, Refusal> {
    let package_id = pkg.package_id.clone();
    pkg.visit_mut(visit_id)
        .ok_or_else(|| Refusal::not_found("unknown_visit", format!("package {package_id:?} has no visit {visit_id:?}"), "data.visit_id"))
}

fn visit_closed(visit: &Visit) -> Refusal {
    Refusal::conflict("visit_closed", format!("visit {:?} is already {}", visit.visit_id, visit.state), Some("data.visit_id"))
}

fn visit_data(pkg: &Package, visit: &Visit, ctx: &Ctx) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("package_id".into(), pkg.package_id.clone().into());
    data.insert("visit_id".into(), visit.visit_id.clone().into());
    data.insert("window_start".into(), ctx.cal().rfc3339(visit.window_start).into());
    data
}

/// `package_visit.cancelled` (R6.1–R6.3).
fn visit_cancelled(stream: &mut Stream, visit_id: &str, ctx: &mut Ctx) -> Result<(), Refusal> {
    let now = ctx.now;
    let pkg = active_package(stream)?;
    let visit = open_visit(pkg, visit_id)?;
    match visit.state {
        VisitState::Scheduled => {}
        VisitState::CountedUsed => {
            let note = format!("package_visit.cancelled {visit_id}: already counted ({})", visit.counted_by.as_deref().unwrap_or("-"));
            pkg.note(now, "event", note);
            return Ok(());
        }
        _ => return Err(visit_closed(visit)),
    }
    let change = change_at(ctx, visit.window_start);
    let start = ctx.cal().rfc3339(visit.window_start);
    match change {
        Change::Free => {
            visit.state = VisitState::CancelledFree;
            pkg.note(now, "decision", format!("R6.1 visit {visit_id} ({start}) cancelled ≥ 24 h ahead: free, not counted"));
        }
        Change::Late => {
            visit.state = VisitState::CountedUsed;
            visit.counted_by = Some("R6.2".into());
            pkg.note(now, "decision", format!("R6.2 visit {visit_id} ({start}) cancelled < 24 h ahead: counted as used"));
        }
        Change::SameDay => {
            visit.state = VisitState::CountedUsed;
            visit.counted_by = Some("R6.3".into());
            let visit = visit.clone();
            pkg.note(now, "decision", format!("R6.3 visit {visit_id} ({start}) cancelled on its day: counted, completed, SMS5"));
            let pkg = pkg.clone();
            let mut data = visit_data(&pkg, &visit, ctx);
            data.insert("reason".into(), "cancelled_same_day".into());
            ctx.subject_command(CommandType::CompleteVisit, data);
            if let Err(e) = ctx.subject_sms(&pkg.customer, TemplateId::Sms5, &SmsVars::default()) {
                package_mut(stream).note(now, "sms_failed", e.to_string());
            }
        }
    }
    Ok(())
}

/// `package_visit.rescheduled` (R6.1–R6.3).
fn visit_rescheduled(stream: &mut Stream, visit_id: &str, window_start: DateTime<Utc>, ctx: &mut Ctx) -> Result<(), Refusal> {
    let now = ctx.now;
    let new_start = ctx.cal().rfc3339(window_start);
    let change = {
        let pkg = active_package(stream)?;
        let visit = open_visit(pkg, visit_id)?;
        match visit.state {
            VisitState::Completed | VisitState::Forfeited => return Err(visit_closed(visit)),
            VisitState::CountedUsed if visit.counted_by.as_deref() == Some("R6.3") => {
                return Err(Refusal::rule(
                    "R6.3",
                    format!("visit {visit_id:?} was cancelled on its own day and cannot be rescheduled"),
                    Some("data.visit_id"),
                ))
            }
            VisitState::CountedUsed | VisitState::CancelledFree => None,
            VisitState::Scheduled => Some(change_at(ctx, visit.window_start)),
        }
    };
    let pkg = package_mut(stream);
    let visit = pkg.visit_mut(visit_id).expect("found above");
    let old = visit.window_start;
    let detail = match (change, visit.state) {
        (Some(Change::SameDay), _) => {
            return Err(Refusal::rule(
                "R6.3",
                format!("visit {visit_id:?} is today; a visit cannot be rescheduled on its own day"),
                Some("data.window_start"),
            ))
        }
        (Some(Change::Free), _) => format!("R6.1 visit {visit_id} moved ≥ 24 h ahead: free, not counted"),
        (Some(Change::Late), _) => {
            visit.state = VisitState::CountedUsed;
            visit.counted_by = Some("R6.2".into());
            format!("R6.2 visit {visit_id} moved < 24 h ahead: counted as used")
        }
        (None, VisitState::CancelledFree) => {
            visit.state = VisitState::Scheduled;
            format!("visit {visit_id} (cancelled free, R6.1) re-booked")
        }
        (None, _) => format!("visit {visit_id} moved; it stays counted ({})", visit.counted_by.as_deref().unwrap_or("-")),
    };
    visit.window_start = window_start;
    let old = ctx.cal().rfc3339(old);
    pkg.note(now, "decision", format!("{detail}; {old} → {new_start}"));
    Ok(())
}

/// `package_visit.completed`: the visit is used.
fn visit_completed(stream: &mut Stream, visit_id: &str, ctx: &mut Ctx) -> Result<(), Refusal> {
    let now = ctx.now;
    let pkg = active_package(stream)?;
    let visit = open_visit(pkg, visit_id)?;
    match visit.state {
        VisitState::Scheduled | VisitState::CountedUsed => {
            visit.state = VisitState::Completed;
            pkg.note(now, "event", format!("visit {visit_id} completed; {} remaining", pkg.remaining()));
            Ok(())
        }
        VisitState::Completed => {
            pkg.note(now, "event", format!("visit {visit_id} completed again"));
            Ok(())
        }
        VisitState::CancelledFree | VisitState::Forfeited => Err(visit_closed(visit)),
    }
}

/// A timer placed on a package rather than a case (R5.2 Day 1, R5.4 end of grace).
pub fn on_subject_timer(stream: &mut Stream, timer: &SubjectTimer, ctx: &mut Ctx) -> Option<String> {
    if stream.package.is_none() {
        return None;
    }
    match timer.timer.kind {
        TimerKind::ExpiryDay1 => package_expiry::on_day1(stream, ctx),
        TimerKind::ExpiryDeactivate => package_expiry::on_deactivate(stream, ctx),
        _ => None,
    }
}
