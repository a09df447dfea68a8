//! Given a package in some state, when a package event arrives at some time, then these effects.
use super::*;
use crate::domain::effects::{Effect, TimerRef};
use crate::domain::events::PaymentMethod;
use crate::domain::records::case::TicketStatus;
use crate::domain::testkit::*;

const MON: &str = "2026-03-02T10:00:00+02:00";

fn paid_package() -> World {
    let mut w = World::new();
    assert_eq!(w.when(weekly(true), MON).unwrap(), None, "a paid package opens no payment case");
    w
}

fn cancel_visit(id: &str) -> Input {
    visit(|package_id, visit_id| EventBody::from(VisitCancelled { package_id, visit_id }), id)
}

fn complete_visit(id: &str) -> Input {
    visit(|package_id, visit_id| EventBody::from(VisitCompleted { package_id, visit_id }), id)
}

fn reschedule(id: &str, to: &str) -> Input {
    event(EventBody::from(VisitRescheduled { package_id: "P1".into(), visit_id: id.into(), window_start: t(to) }))
}

fn cancel_package() -> Input {
    event(EventBody::from(PackageCancelled { package_id: "P1".into(), reason: "moving abroad".into() }))
}

#[test]
fn booking_creates_the_package_ticks_and_expiry_index() {
    let mut w = World::new();
    let input = weekly(true);
    let d = decide(None, &input, t(MON), &w.policy, &SmsLedger::default()).unwrap();
    assert_eq!(d.index, vec!["expiry:2026-04-09:P1".to_string(), "expiry:2026-04-23:P1".to_string()]);
    w.when(input, MON).unwrap();
    let p = w.pkg();
    assert_eq!((p.total(), p.used(), p.counted(), p.remaining()), (4, 0, 0, 4));
    assert_eq!(w.subject_due(TimerKind::ExpiryDay1), Some(t("2026-04-09T09:00:00+02:00")), "R5.2 Day 1 09:00");
    assert_eq!(w.subject_due(TimerKind::ExpiryDeactivate), Some(t("2026-04-23T00:00:00+02:00")), "R5.4 Day 15 00:00");
    // R9.2 (v3) the same booking again is an echo; one that differs contradicts it.
    w.when(weekly(true), MON).unwrap();
    assert!(w.echo && w.effects.is_empty());
    let e = w.when(weekly(false), MON).unwrap_err();
    assert_eq!((e.kind, e.code.as_str(), e.rule), (RefusalKind::Rule, "already_booked", Some(Rule::R9_2)));
}

#[test]
fn unknown_package_and_visit_are_404() {
    let mut w = World::new();
    let e = w.when(cancel_visit("V1"), MON).unwrap_err();
    assert_eq!((e.kind, e.code.as_str(), e.field.as_deref()), (RefusalKind::NotFound, "unknown_package", Some("data.package_id")));
    let mut w = paid_package();
    let e = w.when(cancel_visit("V9"), MON).unwrap_err();
    assert_eq!((e.kind, e.code.as_str(), e.field.as_deref()), (RefusalKind::NotFound, "unknown_visit", Some("data.visit_id")));
}

#[test]
fn timeline_figures_come_from_the_policy() {
    let mut w = World::new();
    w.policy.package_visits.free_change_hours = 48;
    w.when(weekly(true), MON).unwrap();
    // V2 starts Monday 03-16 10:00: 46 h ahead is late under a 48 h policy.
    w.when(cancel_visit("V2"), "2026-03-14T12:00:00+02:00").unwrap();
    assert_eq!(w.pkg().visit("V2").unwrap().state, VisitState::CountedUsed);
    let line = &w.pkg().timeline.last().unwrap().detail;
    assert!(line.contains("< 48 h ahead"), "{line}");
    w.policy.package_visits.free_change_hours = 24;
    w.when(cancel_visit("V3"), "2026-03-21T12:00:00+02:00").unwrap();
    assert!(w.pkg().timeline.last().unwrap().detail.contains("≥ 24 h ahead"));
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
    assert_eq!((v.state, v.counted_by.map(CountedBy::as_str)), (VisitState::CountedUsed, Some("R6.2")));
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
    assert_eq!(w.commands(), vec!["complete_visit"]);
    let c = w.command("complete_visit").unwrap();
    assert_eq!(c.case_id, None, "R6 acts on the package record");
    assert_eq!((c.data["package_id"].as_str(), c.data["visit_id"].as_str()), (Some("P1"), Some("V1")));
    let sms = w.sent_sms();
    assert_eq!(sms.len(), 1);
    assert_eq!((sms[0].template, sms[0].case_id.as_deref()), (TemplateId::Sms5, None));
    assert!(sms[0].body.contains("19125") && sms[0].segments >= 2, "Arabic UCS-2, multi-part");
    assert_eq!(w.pkg().visit("V1").unwrap().counted_by.map(CountedBy::as_str), Some("R6.3"));
    // It cannot be rescheduled afterwards, and the dashboard's completion echo is fine.
    let e = w.when(reschedule("V1", "2026-03-11T10:00:00+02:00"), "2026-03-09T09:00:00+02:00").unwrap_err();
    assert_eq!((e.kind, e.rule), (RefusalKind::Rule, Some(Rule::R6_3)));
    w.when(complete_visit("V1"), "2026-03-09T09:30:00+02:00").unwrap();
    assert_eq!((w.pkg().used(), w.pkg().remaining()), (1, 3));
}

#[test]
fn r6_3_a_same_day_reschedule_is_refused_and_nothing_changes() {
    let mut w = paid_package();
    let before = w.snapshot().clone();
    let e = w.when(reschedule("V1", "2026-03-10T10:00:00+02:00"), "2026-03-09T07:00:00+02:00").unwrap_err();
    assert_eq!((e.kind, e.code.as_str(), e.rule), (RefusalKind::Rule, "rule_violation", Some(Rule::R6_3)));
    assert_eq!(w.snapshot(), &before);
}

#[test]
fn completed_visits_are_used_and_closed_visits_refuse_changes() {
    let mut w = paid_package();
    w.when(complete_visit("V1"), "2026-03-09T12:00:00+02:00").unwrap();
    assert_eq!((w.pkg().used(), w.pkg().remaining()), (1, 3));
    let e = w.when(cancel_visit("V1"), "2026-03-09T13:00:00+02:00").unwrap_err();
    assert_eq!(e.code.as_str(), "visit_closed");
}

#[test]
fn r6_4_refund_after_payment() {
    let mut w = paid_package();
    w.when(complete_visit("V1"), "2026-03-09T12:00:00+02:00").unwrap();
    w.when(cancel_package(), "2026-03-10T12:00:00+02:00").unwrap();
    assert_eq!(w.commands(), vec!["refund_package"]);
    let c = w.command("refund_package").unwrap();
    assert_eq!(c.case_id, None);
    // 2 000.00 ÷ 4 = 500.00; 3 remaining = 1 500.00; fee 30 % = 450.00; refund 1 050.00.
    assert_eq!(c.data["remaining_visits"], 3);
    assert_eq!(c.data["value_per_visit"]["amount"], 50_000);
    assert_eq!(c.data["remaining_value"]["amount"], 150_000);
    assert_eq!(c.data["fee"], serde_json::json!({"amount": 45_000, "currency": "EGP"}));
    assert_eq!(c.data["refund"], serde_json::json!({"amount": 105_000, "currency": "EGP"}));
    assert_eq!(w.pkg().status, PackageStatus::Cancelled);
    assert!(w.snapshot().timers.is_empty(), "expiry ticks cancelled");
    assert_eq!(w.effects.iter().filter(|e| matches!(e, Effect::CancelTimer(_))).count(), 2);
    // The echo of a cancellation changes nothing; a visit cancelled with its package is an
    // echo too (R9.2 v3); visits can no longer change.
    w.when(cancel_package(), "2026-03-10T13:00:00+02:00").unwrap();
    assert!(w.echo && w.effects.is_empty());
    w.when(cancel_visit("V2"), "2026-03-10T13:00:00+02:00").unwrap();
    assert!(w.echo && w.effects.is_empty());
    assert_eq!(w.when(complete_visit("V2"), "2026-03-10T13:00:00+02:00").unwrap_err().code, "package_closed");
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
    let c = w.command("refund_package").unwrap();
    assert_eq!((c.data["remaining_visits"].as_u64(), c.data["refund"]["amount"].as_i64()), (Some(0), Some(0)));
}

#[test]
fn r6_4_cancellation_before_payment_refunds_nothing_and_stops_the_chase() {
    let mut w = World::new();
    let case_id = w.when(weekly(false), MON).unwrap().unwrap();
    w.when(cancel_package(), "2026-03-03T12:00:00+02:00").unwrap();
    assert!(!w.commands().contains(&"refund_package"));
    let c = w.case(&case_id);
    assert_eq!((c.ticket.status, c.ticket.result.map(TicketResult::as_str)), (TicketStatus::Closed, Some("package_cancelled")));
    assert!(c.timers.is_empty() && w.snapshot().timers.is_empty());
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
    for k in TimerKind::ALL {
        assert!(kinds.contains(k), "events/timer.{k}.json");
    }
}

#[test]
fn the_example_policy_file_names_the_package_figures() {
    let p = crate::domain::policy::Policy::from_toml(include_str!("../../../../../docs/policy.example.toml")).unwrap();
    assert_eq!((p.package_expiry.grace_days, p.package_visits.cancellation_fee), (14, Percent::whole(30)));
}

#[test]
fn card_and_cash_are_both_kept() {
    let mut w = World::new();
    w.when(package_booked(true, PaymentMethod::Cash, "2026-03-09", &["2026-03-09T10:00:00+02:00"], 50_000), MON).unwrap();
    assert_eq!(w.pkg().payment_method, PaymentMethod::Cash);
}
