use crate::domain::testkit::*;

const MON_10: &str = "2026-03-02T10:00:00+02:00";

fn world_with(start: &str) -> World {
    let mut w = World::new();
    w.when(booked("A1", start, Some("T1")), MON_10).unwrap();
    w
}

#[test]
fn r7_1_a_change_inside_24h_records_the_fee_outside_does_not() {
    let mut w = world_with("2026-03-03T09:00:00+02:00");
    w.policy.reschedule.fee_amount = 5_000;
    w.when(rescheduled("A1", "2026-03-05T10:00:00+02:00"), MON_10).unwrap();
    let a = w.appointment("A1");
    assert_eq!(a.reschedule_log[0].fee.as_ref().map(|f| f.amount), Some(5_000), "23 h before the original start");
    assert_eq!(a.window_start, t("2026-03-05T10:00:00+02:00"));
    w.when(rescheduled("A1", "2026-03-06T10:00:00+02:00"), MON_10).unwrap();
    assert_eq!(w.appointment("A1").reschedule_log[1].fee, None, "3 days ahead: free");
}

#[test]
fn r7_1_default_fee_is_inform_only_and_written_on_the_open_case() {
    let mut w = World::new();
    let watch = w.when(booked("A1", "2026-03-02T12:30:00+02:00", None), MON_10).unwrap().unwrap();
    assert_eq!(w.when(rescheduled("A1", "2026-03-04T10:00:00+02:00"), MON_10).unwrap(), Some(watch.clone()));
    assert_eq!(w.due(&watch, TimerKind::StatusUpdate), Some(t("2026-03-04T07:00:00+02:00")), "R0.3 timers move");
    assert_eq!(w.appointment("A1").reschedule_log[0].fee.as_ref().map(|f| f.amount), Some(0));
    assert!(w.case(&watch).timeline.iter().any(|e| e.detail.contains("R7.1") && e.detail.contains("inform only")));
}

#[test]
fn r7_2_the_fourth_reschedule_is_refused() {
    let mut w = world_with("2026-03-10T10:00:00+02:00");
    for day in ["11", "12", "14"] {
        w.when(rescheduled("A1", &format!("2026-03-{day}T10:00:00+02:00")), MON_10).unwrap();
    }
    let before = w.snapshot().clone();
    let e = w.when(rescheduled("A1", "2026-03-15T10:00:00+02:00"), MON_10).unwrap_err();
    assert_eq!(e.rule, Some(Rule::R7_2));
    assert_eq!(w.snapshot(), &before, "nothing stored on a refusal");
    // The same window again is the dashboard echoing: not a fourth change.
    w.when(rescheduled("A1", "2026-03-14T10:00:00+02:00"), MON_10).unwrap();
    assert!(w.effects.is_empty());
}

#[test]
fn r7_3_confirmation_in_the_customer_language_with_local_date_and_time() {
    let mut w = world_with("2026-03-10T10:00:00+02:00");
    w.when(rescheduled("A1", "2026-03-11T14:30:00+02:00"), MON_10).unwrap();
    assert_eq!(w.sms(), vec![TemplateId::RescheduleConfirmation]);
    let body = &w.sms_bodies()[0];
    assert!(body.contains("2026-03-11") && body.contains("14:30") && body.starts_with("Hello"), "{body}");
    let Effect::SendSms(s) = w.effects.iter().find(|e| matches!(e, Effect::SendSms(_))).unwrap() else { unreachable!() };
    assert_eq!(s.case_id, None, "no case involved: a subject SMS");
}

#[test]
fn r3_8_a_change_within_90_minutes_replaces_the_visit_and_closes_pending_cases() {
    let mut w = World::new();
    let watch = w.when(booked("A1", "2026-03-02T11:30:00+02:00", None), MON_10).unwrap().unwrap();
    w.when(rescheduled("A1", "2026-03-02T15:00:00+02:00"), MON_10).unwrap();
    assert_eq!(w.commands(), vec!["cancel_appointment", "create_visit"]);
    let create = w.command("create_visit").unwrap();
    assert_eq!(create.data["window_start"], "2026-03-02T15:00:00+02:00");
    assert_eq!(create.data["replaces_appointment_id"], "A1");
    assert_eq!(w.command("cancel_appointment").unwrap().data["reason"], "late_time_change");
    assert_eq!(w.appointment("A1").status, AppointmentStatus::Cancelled);
    let c = w.case(&watch);
    assert_eq!((c.ticket.status, c.ticket.result), (TicketStatus::Closed, Some(TicketResult::VisitReplaced)));
    assert!(c.timers.is_empty());
    assert_eq!(w.snapshot().cases.len(), 1, "R3.8 is not a cancellation: no follow-up opens");
    assert_eq!(w.sms(), vec![TemplateId::RescheduleConfirmation]);

    let mut w = world_with("2026-03-02T11:31:00+02:00");
    w.when(rescheduled("A1", "2026-03-02T15:00:00+02:00"), MON_10).unwrap();
    assert!(w.commands().is_empty(), "91 minutes before: an ordinary reschedule");
}
