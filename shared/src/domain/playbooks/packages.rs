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
    // The chase first, so a package's first case is `p1-<package_id>`.
    let case_id = (!paid).then(|| package_payment::open(&mut stream, ctx));
    // R5.2 / R5.4 one-shot ticks per package: no scan ever looks for expired packages.
    ctx.place_subject(&mut stream, package_id, TimerKind::ExpiryDay1, tick_at);
    ctx.place_subject(&mut stream, package_id, TimerKind::ExpiryDeactivate, end_at);
    let index = vec![expiry_subject(day1, package_id), expiry_subject(end, package_id)];
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
/// refund = remaining value − fee; each step half up to the minor unit (see the module header).
pub fn refund(price: i64, visits: u32, remaining: u32, fee: Percent) -> Refund {
    let value_per_visit = div_half_up(price as i128, visits.max(1) as i128);
    let remaining_value = value_per_visit * remaining as i64;
    let fee_amount = fee.of(remaining_value);
    Refund { value_per_visit, remaining_value, fee: fee_amount, refund: remaining_value - fee_amount }
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
    stream.package.as_ref()?;
    match timer.timer.kind {
        TimerKind::ExpiryDay1 => package_expiry::on_day1(stream, ctx),
        TimerKind::ExpiryDeactivate => package_expiry::on_deactivate(stream, ctx),
        _ => None,
    }
}

/// Given/when/then harness shared by the package playbooks' tests.
#[cfg(test)]
pub(crate) mod world {
    use crate::domain::case::{Case, Customer, Language, TimerKind};
    use crate::domain::effects::{Command, CommandType, Effect, Sms, TimerRef};
    use crate::domain::events::{EventBody, Input, PackageVisit, PaymentMethod};
    use crate::domain::money::Money;
    use crate::domain::package::Package;
    pub use crate::domain::playbooks::testkit::{call, event, t};
    use crate::domain::playbooks::{decide, Refusal};
    use crate::domain::policy::Policy;
    use crate::domain::stream::Stream;
    use chrono::{DateTime, Utc};

    /// Package P1: `visits` windows (RFC 3339), price in minor units.
    pub fn booked(paid: bool, method: PaymentMethod, start_date: &str, visits: &[&str], price: i64) -> Input {
        event(EventBody::PackageBooked {
            package_id: "P1".into(),
            customer: Customer { id: "C1".into(), name: "Mona".into(), phone: "+201001234567".into(), language: Language::Ar },
            area: "Cairo".into(),
            price: Money::new(price, "EGP"),
            visits: visits.iter().enumerate().map(|(i, w)| PackageVisit { visit_id: format!("V{}", i + 1), window_start: t(w) }).collect(),
            start_date: start_date.parse().unwrap(),
            payment_method: method,
            paid,
        })
    }

    /// Four weekly visits from Monday 2026-03-09 10:00, 2 000.00 EGP.
    pub fn weekly(paid: bool) -> Input {
        booked(
            paid,
            PaymentMethod::Card,
            "2026-03-09",
            &["2026-03-09T10:00:00+02:00", "2026-03-16T10:00:00+02:00", "2026-03-23T10:00:00+02:00", "2026-03-30T10:00:00+02:00"],
            200_000,
        )
    }

    pub fn visit(body: fn(String, String) -> EventBody, visit_id: &str) -> Input {
        event(body("P1".into(), visit_id.into()))
    }

    pub struct World {
        pub stream: Option<Stream>,
        pub effects: Vec<Effect>,
        pub policy: Policy,
    }

    impl World {
        pub fn new() -> Self {
            World { stream: None, effects: Vec::new(), policy: Policy::default() }
        }
        pub fn when(&mut self, input: Input, now: &str) -> Result<Option<String>, Refusal> {
            let d = decide(self.stream.as_ref(), &input, t(now), &self.policy)?;
            self.stream = Some(d.stream);
            self.effects = d.effects;
            Ok(d.case_id)
        }
        pub fn stream(&self) -> &Stream {
            self.stream.as_ref().unwrap()
        }
        pub fn pkg(&self) -> &Package {
            self.stream().package.as_ref().unwrap()
        }
        pub fn case(&self, id: &str) -> &Case {
            self.stream().case(id).unwrap()
        }
        /// Fires the case's earliest pending timer at its due time.
        pub fn fire_next(&mut self, case_id: &str) -> (TimerKind, DateTime<Utc>) {
            let next = self.case(case_id).timers.iter().min_by_key(|t| t.due_at).unwrap().clone();
            let timer = TimerRef { stream: self.stream().key.clone(), case_id: Some(case_id.into()), kind: next.kind, step: next.step };
            let now = self.policy.calendar.rfc3339(next.due_at);
            self.when(Input::Timer(timer), &now).unwrap();
            (next.kind, next.due_at)
        }
        /// Fires the package's pending subject timer of `kind` at its due time (or at `late`).
        pub fn fire_subject(&mut self, kind: TimerKind, late: Option<&str>) -> Option<String> {
            let pending = self.stream().timers.iter().find(|t| t.timer.kind == kind).unwrap().timer.clone();
            let timer = TimerRef { stream: self.stream().key.clone(), case_id: None, kind, step: pending.step };
            let now = late.map(str::to_owned).unwrap_or_else(|| self.policy.calendar.rfc3339(pending.due_at));
            self.when(Input::Timer(timer), &now).unwrap()
        }
        pub fn subject_due(&self, kind: TimerKind) -> Option<DateTime<Utc>> {
            self.stream().timers.iter().find(|t| t.timer.kind == kind).map(|t| t.timer.due_at)
        }
        pub fn due(&self, case_id: &str, kind: TimerKind) -> Vec<DateTime<Utc>> {
            let mut v: Vec<_> = self.case(case_id).timers.iter().filter(|t| t.kind == kind).map(|t| t.due_at).collect();
            v.sort();
            v
        }
        pub fn commands(&self) -> Vec<CommandType> {
            self.effects.iter().filter_map(|e| if let Effect::Emit(c) = e { Some(c.kind) } else { None }).collect()
        }
        pub fn command(&self, kind: CommandType) -> Command {
            self.effects
                .iter()
                .find_map(|e| match e {
                    Effect::Emit(c) if c.kind == kind => Some(c.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("no {kind} in {:?}", self.commands()))
        }
        pub fn sms(&self) -> Vec<Sms> {
            self.effects.iter().filter_map(|e| if let Effect::SendSms(s) = e { Some(s.clone()) } else { None }).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    //! Given a package in some state, when a package event arrives at some time, then these effects.
    use super::world::*;
    use super::*;
    use crate::domain::case::TicketStatus;
    use crate::domain::effects::{Effect, TimerRef};
    use crate::domain::events::PaymentMethod;
    use crate::domain::playbooks::{decide, RefusalKind};

    const MON: &str = "2026-03-02T10:00:00+02:00";

    fn paid_package() -> World {
        let mut w = World::new();
        assert_eq!(w.when(weekly(true), MON).unwrap(), None, "a paid package opens no payment case");
        w
    }

    fn cancel_visit(id: &str) -> Input {
        visit(|package_id, visit_id| EventBody::PackageVisitCancelled { package_id, visit_id }, id)
    }

    fn complete_visit(id: &str) -> Input {
        visit(|package_id, visit_id| EventBody::PackageVisitCompleted { package_id, visit_id }, id)
    }

    fn reschedule(id: &str, to: &str) -> Input {
        event(EventBody::PackageVisitRescheduled { package_id: "P1".into(), visit_id: id.into(), window_start: world::t(to) })
    }

    fn cancel_package() -> Input {
        event(EventBody::PackageCancelled { package_id: "P1".into(), reason: "moving abroad".into() })
    }

    #[test]
    fn booking_creates_the_package_ticks_and_expiry_index() {
        let mut w = World::new();
        let input = weekly(true);
        let d = decide(None, &input, world::t(MON), &w.policy).unwrap();
        assert_eq!(d.index, vec!["expiry:2026-04-09:P1".to_string(), "expiry:2026-04-23:P1".to_string()]);
        w.when(input, MON).unwrap();
        let p = w.pkg();
        assert_eq!((p.total(), p.used(), p.counted(), p.remaining()), (4, 0, 0, 4));
        assert_eq!(w.subject_due(TimerKind::ExpiryDay1), Some(world::t("2026-04-09T09:00:00+02:00")), "R5.2 Day 1 09:00");
        assert_eq!(w.subject_due(TimerKind::ExpiryDeactivate), Some(world::t("2026-04-23T00:00:00+02:00")), "R5.4 Day 15 00:00");
        let e = w.when(weekly(true), MON).unwrap_err();
        assert_eq!((e.kind, e.code), (RefusalKind::Rule, "already_booked"));
    }

    #[test]
    fn unknown_package_and_visit_are_404() {
        let mut w = World::new();
        let e = w.when(cancel_visit("V1"), MON).unwrap_err();
        assert_eq!((e.kind, e.code, e.field.as_deref()), (RefusalKind::NotFound, "unknown_package", Some("data.package_id")));
        let mut w = paid_package();
        let e = w.when(cancel_visit("V9"), MON).unwrap_err();
        assert_eq!((e.kind, e.code, e.field.as_deref()), (RefusalKind::NotFound, "unknown_visit", Some("data.visit_id")));
    }

    #[test]
    fn r6_1_a_week_ahead_is_free_and_not_counted() {
        let mut w = paid_package();
        w.when(cancel_visit("V2"), "2026-03-09T12:00:00+02:00").unwrap();
        assert!(w.effects.is_empty());
        assert_eq!(w.pkg().visit("V2").unwrap().state, VisitState::CancelledFree);
        assert_eq!((w.pkg().counted(), w.pkg().remaining()), (0, 4), "still owed");
        // Exactly 24 h before is still free; a reschedule re-books it.
        w.when(reschedule("V3", "2026-03-25T10:00:00+02:00"), "2026-03-22T10:00:00+02:00").unwrap();
        assert_eq!(w.pkg().visit("V3").unwrap().state, VisitState::Scheduled);
        w.when(reschedule("V2", "2026-03-18T10:00:00+02:00"), "2026-03-10T10:00:00+02:00").unwrap();
        assert_eq!(w.pkg().visit("V2").unwrap().state, VisitState::Scheduled, "a free cancellation re-booked");
    }

    #[test]
    fn r6_2_less_than_24_hours_not_the_same_day_is_counted() {
        let mut w = paid_package();
        w.when(cancel_visit("V1"), "2026-03-08T22:00:00+02:00").unwrap();
        assert!(w.effects.is_empty(), "no command, no SMS");
        let v = w.pkg().visit("V1").unwrap();
        assert_eq!((v.state, v.counted_by.as_deref()), (VisitState::CountedUsed, Some("R6.2")));
        assert_eq!((w.pkg().counted(), w.pkg().remaining()), (1, 3));
        // A late move: counted once, also after it is completed.
        w.when(reschedule("V2", "2026-03-17T10:00:00+02:00"), "2026-03-15T12:00:00+02:00").unwrap();
        assert_eq!(w.pkg().visit("V2").unwrap().state, VisitState::CountedUsed);
        w.when(complete_visit("V2"), "2026-03-17T12:00:00+02:00").unwrap();
        let p = w.pkg();
        assert_eq!((p.used(), p.counted(), p.remaining()), (1, 1, 2));
    }

    #[test]
    fn r6_3_same_day_cancellation_completes_the_visit_and_sends_sms5() {
        let mut w = paid_package();
        w.when(cancel_visit("V1"), "2026-03-09T08:00:00+02:00").unwrap();
        assert_eq!(w.commands(), vec![CommandType::CompleteVisit]);
        let c = w.command(CommandType::CompleteVisit);
        assert_eq!(c.case_id, None, "R6 acts on the package record");
        assert_eq!((c.data["package_id"].as_str(), c.data["visit_id"].as_str()), (Some("P1"), Some("V1")));
        let sms = w.sms();
        assert_eq!(sms.len(), 1);
        assert_eq!((sms[0].template, sms[0].case_id.as_deref()), (TemplateId::Sms5, None));
        assert!(sms[0].body.contains("19125") && sms[0].segments >= 2, "Arabic UCS-2, multi-part");
        assert_eq!(w.pkg().visit("V1").unwrap().counted_by.as_deref(), Some("R6.3"));
        // It cannot be rescheduled afterwards, and the dashboard's completion echo is fine.
        let e = w.when(reschedule("V1", "2026-03-11T10:00:00+02:00"), "2026-03-09T09:00:00+02:00").unwrap_err();
        assert_eq!((e.kind, e.rule), (RefusalKind::Rule, Some("R6.3")));
        w.when(complete_visit("V1"), "2026-03-09T09:30:00+02:00").unwrap();
        assert_eq!((w.pkg().used(), w.pkg().remaining()), (1, 3));
    }

    #[test]
    fn r6_3_a_same_day_reschedule_is_refused_and_nothing_changes() {
        let mut w = paid_package();
        let before = w.stream().clone();
        let e = w.when(reschedule("V1", "2026-03-10T10:00:00+02:00"), "2026-03-09T07:00:00+02:00").unwrap_err();
        assert_eq!((e.kind, e.code, e.rule), (RefusalKind::Rule, "rule_violation", Some("R6.3")));
        assert_eq!(w.stream(), &before);
    }

    #[test]
    fn completed_visits_are_used_and_closed_visits_refuse_changes() {
        let mut w = paid_package();
        w.when(complete_visit("V1"), "2026-03-09T12:00:00+02:00").unwrap();
        assert_eq!((w.pkg().used(), w.pkg().remaining()), (1, 3));
        let e = w.when(cancel_visit("V1"), "2026-03-09T13:00:00+02:00").unwrap_err();
        assert_eq!(e.code, "visit_closed");
    }

    #[test]
    fn r6_4_refund_after_payment() {
        let mut w = paid_package();
        w.when(complete_visit("V1"), "2026-03-09T12:00:00+02:00").unwrap();
        w.when(cancel_package(), "2026-03-10T12:00:00+02:00").unwrap();
        assert_eq!(w.commands(), vec![CommandType::RefundPackage]);
        let c = w.command(CommandType::RefundPackage);
        assert_eq!(c.case_id, None);
        // 2 000.00 ÷ 4 = 500.00; 3 remaining = 1 500.00; fee 30 % = 450.00; refund 1 050.00.
        assert_eq!(c.data["remaining_visits"], 3);
        assert_eq!(c.data["value_per_visit"]["amount"], 50_000);
        assert_eq!(c.data["remaining_value"]["amount"], 150_000);
        assert_eq!(c.data["fee"], serde_json::json!({"amount": 45_000, "currency": "EGP"}));
        assert_eq!(c.data["refund"], serde_json::json!({"amount": 105_000, "currency": "EGP"}));
        assert_eq!(w.pkg().status, PackageStatus::Cancelled);
        assert!(w.stream().timers.is_empty(), "expiry ticks cancelled");
        assert_eq!(w.effects.iter().filter(|e| matches!(e, Effect::CancelTimer(_))).count(), 2);
        // The echo of a cancellation changes nothing; visits can no longer change.
        w.when(cancel_package(), "2026-03-10T13:00:00+02:00").unwrap();
        assert!(w.effects.is_empty());
        assert_eq!(w.when(cancel_visit("V2"), "2026-03-10T13:00:00+02:00").unwrap_err().code, "package_closed");
    }

    #[test]
    fn r6_4_money_edge_cases() {
        let fee = Percent::whole(30);
        // A price that does not divide by the visits: rounded once, half up; the parts add up.
        // 1000.00 EGP over 3 visits: 333.33 a visit; 2 left = 666.66; fee 199.998 → 200.00.
        assert_eq!(refund(100_000, 3, 2, fee), Refund { value_per_visit: 33_333, remaining_value: 66_666, fee: 20_000, refund: 46_666 });
        assert_eq!(refund(100_000, 3, 3, fee), Refund { value_per_visit: 33_333, remaining_value: 99_999, fee: 30_000, refund: 69_999 });
        // 0.05 over 2 visits: 0.025 → 0.03 a visit (half up).
        assert_eq!(refund(1_000, 3, 1, fee), Refund { value_per_visit: 333, remaining_value: 333, fee: 100, refund: 233 });
        assert_eq!(refund(5, 2, 1, fee).remaining_value, 3, "2.5 → 3 half up");
        assert_eq!(refund(5, 2, 2, fee).remaining_value, 6, "per-visit value rounded first");
        assert_eq!(refund(5, 2, 1, fee).fee, 1, "0.9 → 1");
        // Zero remaining visits.
        assert_eq!(refund(100_000, 3, 0, fee), Refund { value_per_visit: 33_333, remaining_value: 0, fee: 0, refund: 0 });
        for (price, visits, remaining) in [(99_999, 7, 5), (1, 4, 3), (123_457, 6, 6)] {
            let r = refund(price, visits, remaining, fee);
            assert_eq!(r.fee + r.refund, r.remaining_value);
        }
    }

    #[test]
    fn r6_4_zero_remaining_still_closes_the_books() {
        let mut w = paid_package();
        for (v, at) in [("V1", "2026-03-09T12:00:00+02:00"), ("V2", "2026-03-16T12:00:00+02:00"), ("V3", "2026-03-23T12:00:00+02:00")] {
            w.when(complete_visit(v), at).unwrap();
        }
        w.when(cancel_visit("V4"), "2026-03-30T08:00:00+02:00").unwrap();
        w.when(cancel_package(), "2026-03-30T12:00:00+02:00").unwrap();
        let c = w.command(CommandType::RefundPackage);
        assert_eq!((c.data["remaining_visits"].as_u64(), c.data["refund"]["amount"].as_i64()), (Some(0), Some(0)));
    }

    #[test]
    fn r6_4_cancellation_before_payment_refunds_nothing_and_stops_the_chase() {
        let mut w = World::new();
        let case_id = w.when(weekly(false), MON).unwrap().unwrap();
        w.when(cancel_package(), "2026-03-03T12:00:00+02:00").unwrap();
        assert!(!w.commands().contains(&CommandType::RefundPackage));
        let c = w.case(&case_id);
        assert_eq!((c.ticket.status, c.ticket.result.as_deref()), (TicketStatus::Closed, Some("package_cancelled")));
        assert!(c.timers.is_empty() && w.stream().timers.is_empty());
    }

    #[test]
    fn every_timer_sample_is_a_timer_input() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        let mut kinds = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("timer.") && name.ends_with(".json") {
                let t: TimerRef = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(name, format!("timer.{}.json", t.kind));
                kinds.push(t.kind);
            }
        }
        for k in [TimerKind::PaymentDeadline, TimerKind::ExpiryDay1, TimerKind::ExpiryDeactivate, TimerKind::CallAttempt] {
            assert!(kinds.contains(&k), "a sample for {k}");
        }
    }

    #[test]
    fn the_example_policy_file_names_the_package_figures() {
        let p = crate::domain::policy::Policy::from_toml(include_str!("../../../../docs/policy.example.toml")).unwrap();
        assert_eq!((p.package_expiry.grace_days, p.package_visits.cancellation_fee), (14, Percent::whole(30)));
    }

    #[test]
    fn card_and_cash_are_both_kept() {
        let mut w = World::new();
        w.when(world::booked(true, PaymentMethod::Cash, "2026-03-09", &["2026-03-09T10:00:00+02:00"], 50_000), MON).unwrap();
        assert_eq!(w.pkg().payment_method, PaymentMethod::Cash);
    }
}
