//! cancellation_follow_up (R2.1–R2.10) end to end: followup-local over HTTP with the virtual clock.
//! Dates: 2026-03-02 is a Monday; Friday is the day off.

use followup_tests::{booked, call, timers, Local};
use serde_json::{json, Value};

const MON_10: &str = "2026-03-02T10:00:00+02:00";

fn cancelled(appointment_id: &str, by: &str, wants_follow_up: bool) -> Value {
    json!({"appointment_id": appointment_id, "cancelled_by": by, "reason": "customer travelling", "wants_follow_up": wants_follow_up})
}

/// A first visit on Tuesday, cancelled on Monday 10:00 by `by`.
fn cancelled_case(l: &Local, by: &str) -> String {
    l.accept("/v1/appointments", "appointment.booked", booked("A1", "O1", "2026-03-03T10:00:00+02:00", "2026-03-03T12:00:00+02:00"));
    l.accept("/v1/cancellations", "appointment.cancelled", cancelled("A1", by, true)).expect("R2.1 opens a case")
}

#[test]
fn r2_whole_timeline_unreached_closed_then_reopened() {
    let l = Local::virtual_at(MON_10);
    let case_id = cancelled_case(&l, "customer");
    assert_eq!(case_id, "o1-O1", "case ids count the order's cases");

    // R2.1 the ticket view of seed 001.
    let case = l.case(&case_id);
    assert_eq!(case["playbook"], "cancellation_follow_up");
    assert_eq!(case["appointment_id"], "A1");
    assert_eq!(case["order_id"], "O1");
    let t = &case["ticket"];
    assert_eq!(
        (
            t["category"].as_str(),
            t["sub_category"].as_str(),
            t["type"].as_str(),
            t["status"].as_str(),
            t["priority"].as_str(),
            t["group"].as_str(),
            t["area"].as_str()
        ),
        (Some("follow_up"), Some("customer_care"), Some("follow_up"), Some("open"), Some("low"), Some("customer_care"), Some("Cairo"))
    );
    assert!(
        case["timeline"].as_array().unwrap().iter().any(|e| e["detail"].as_str().unwrap().contains("customer travelling")),
        "R2.1 reason on the timeline"
    );
    // R2.5 first attempt on the first working day after, 09:00; R2.9 close 7 days after opening.
    assert_eq!(
        timers(&case),
        vec![("call_attempt".into(), "2026-03-03T09:00:00+02:00".into()), ("auto_close".into(), "2026-03-09T10:00:00+02:00".into())]
    );

    // R2.3 a customer cancellation without discount: one DISCOUNT_OFFER carrying the coupon.
    let sms = l.sms();
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0]["template"], "DISCOUNT_OFFER");
    assert_eq!(sms[0]["to"], "+201001234567");
    assert_eq!(sms[0]["case_id"], case_id.as_str());
    assert!(sms[0]["segments"].as_u64().unwrap() >= 2, "Arabic is UCS-2, multi-part");
    let code = l.case(&case_id).to_string();
    assert!(code.contains("FU-"), "coupon code on the case");

    // Attempt 1 task on Tuesday 09:00.
    assert!(l.commands_of("call_customer").is_empty());
    assert_eq!(l.clock_to("2026-03-03T09:00:00+02:00"), 1);
    let tasks = l.commands_of("call_customer");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["case_id"], case_id.as_str());
    assert_eq!(tasks[0]["data"]["phone"], "+201001234567");
    assert_eq!(tasks[0]["data"]["due"], "2026-03-03T09:00:00+02:00");
    assert_eq!(tasks[0]["at"], "2026-03-03T09:00:00+02:00");

    // Not reached → ticket pending (first outcome), attempt 2 Wednesday 09:00.
    l.advance(1800);
    l.accept("/v1/calls", "call.completed", call(&case_id, "K1", "no_answer", None));
    let case = l.case(&case_id);
    assert_eq!(case["ticket"]["status"], "pending");
    assert_eq!(case["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(case["attempts"][0]["outcome"], "no_answer");
    assert_eq!(timers(&case)[0], ("call_attempt".into(), "2026-03-04T09:00:00+02:00".into()));
    l.clock_to("2026-03-04T09:00:00+02:00");
    assert_eq!(l.commands_of("call_customer").len(), 2);

    // R2.6 second not reached → cancel_order, waiting_on_customer, medium.
    l.accept("/v1/calls", "call.completed", call(&case_id, "K2", "busy", None));
    let case = l.case(&case_id);
    assert_eq!(case["ticket"]["status"], "waiting_on_customer");
    assert_eq!(case["ticket"]["priority"], "medium");
    let cancels = l.commands_of("cancel_order");
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0]["data"]["order_id"], "O1");

    // R2.9 closed 7 days after opening, result unreachable; no more call tasks.
    l.clock_to("2026-03-09T10:00:00+02:00");
    let case = l.case(&case_id);
    assert_eq!(case["ticket"]["status"], "closed");
    assert_eq!(case["ticket"]["result"], "unreachable");
    assert!(case["timers"].as_array().unwrap().is_empty());
    assert_eq!(l.commands_of("call_customer").len(), 2);

    // R2.10 re-open: too early (the appointment day 03-03 + 30 days = 04-02) → 422.
    l.clock_to("2026-04-01T12:00:00+02:00");
    let (status, body) = l.send("/v1/cancellations", "reopen-1", "case.reopen", json!({"case_id": case_id}));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["rule"], "R2.10");
    let version = l.case(&case_id)["version"].clone();

    // From 04-02 it opens again and the attempts start over (04-03 is a Friday → Saturday 04-04).
    l.clock_to("2026-04-02T12:00:00+02:00");
    let (status, body) = l.send("/v1/cancellations", "reopen-2", "case.reopen", json!({"case_id": case_id}));
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["case_id"], case_id.as_str());
    let case = l.case(&case_id);
    assert_ne!(case["version"], version);
    assert_eq!(case["ticket"]["status"], "open");
    assert_eq!(case["ticket"]["result"], Value::Null);
    assert_eq!(timers(&case)[0], ("call_attempt".into(), "2026-04-04T09:00:00+02:00".into()));
    l.clock_to("2026-04-04T09:00:00+02:00");
    assert_eq!(l.commands_of("call_customer").len(), 3);
}

#[test]
fn r2_5_friday_is_skipped_between_attempts() {
    // Cancelled on Thursday 2026-03-05: attempts on Saturday and Sunday.
    let l = Local::virtual_at("2026-03-05T15:00:00+02:00");
    l.accept("/v1/appointments", "appointment.booked", booked("A1", "O1", "2026-03-07T10:00:00+02:00", "2026-03-07T12:00:00+02:00"));
    let case_id = l.accept("/v1/cancellations", "appointment.cancelled", cancelled("A1", "no_show", false)).unwrap();
    assert_eq!(timers(&l.case(&case_id))[0].1, "2026-03-07T09:00:00+02:00");
    l.clock_to("2026-03-07T09:00:00+02:00");
    l.accept("/v1/calls", "call.completed", call(&case_id, "K1", "voicemail", None));
    assert_eq!(timers(&l.case(&case_id))[0].1, "2026-03-08T09:00:00+02:00");
}

#[test]
fn r2_5_an_early_outcome_counts_and_keeps_the_second_day() {
    let l = Local::virtual_at(MON_10);
    let case_id = cancelled_case(&l, "ops");
    // The agent calls at once on the cancellation day: attempt 1 is spent; attempt 2 stays on the second working day.
    l.advance(600);
    l.accept("/v1/calls", "call.completed", call(&case_id, "K1", "no_answer", None));
    let case = l.case(&case_id);
    assert_eq!(timers(&case)[0], ("call_attempt".into(), "2026-03-04T09:00:00+02:00".into()));
    assert_eq!(l.clock_to("2026-03-03T23:00:00+02:00"), 0, "no task on the first day: its attempt already happened");
}

#[test]
fn r2_7_rebooked_creates_the_visit_and_resolves() {
    let l = Local::virtual_at(MON_10);
    let case_id = cancelled_case(&l, "customer");
    l.clock_to("2026-03-03T09:00:00+02:00");
    l.accept(
        "/v1/calls",
        "call.completed",
        call(
            &case_id,
            "K1",
            "answered",
            Some(json!({"kind": "rebooked", "window_start": "2026-03-10T10:00:00+02:00", "window_end": "2026-03-10T12:00:00+02:00"})),
        ),
    );
    let visits = l.commands_of("create_visit");
    assert_eq!(visits.len(), 1);
    assert_eq!(visits[0]["data"]["window_start"], "2026-03-10T10:00:00+02:00");
    assert_eq!(visits[0]["data"]["order_id"], "O1");
    let case = l.case(&case_id);
    assert_eq!(case["ticket"]["status"], "resolved");
    assert_eq!(case["ticket"]["priority"], "medium");
    assert!(case["timers"].as_array().unwrap().is_empty(), "pending timers cancelled");
    // Nothing more happens: no second task, no close.
    assert_eq!(l.clock_to("2026-03-20T10:00:00+02:00"), 0);
    assert_eq!(l.commands_of("call_customer").len(), 1);
    assert_eq!(l.case(&case_id)["ticket"]["status"], "resolved");
}

#[test]
fn r2_8_declined_with_complaint_and_no_follow_up() {
    let l = Local::virtual_at(MON_10);
    let case_id = cancelled_case(&l, "customer");
    l.accept(
        "/v1/calls",
        "call.completed",
        call(
            &case_id,
            "K1",
            "answered",
            Some(json!({"kind": "declined", "reason": "technician was rude", "complaint": true, "follow_up": false})),
        ),
    );
    let kinds: Vec<String> = l
        .commands()
        .iter()
        .map(|c| c["type"].as_str().unwrap().to_owned())
        .filter(|k| !["issue_coupon", "interaction_summary"].contains(&k.as_str()))
        .collect();
    assert_eq!(kinds, vec!["open_complaint", "cancel_order"], "complaint first, then the order is cancelled");
    assert_eq!(l.case(&case_id)["ticket"]["status"], "resolved");
}

#[test]
fn r2_8_declined_asking_to_be_followed_and_follow_up_later() {
    let l = Local::virtual_at(MON_10);
    let case_id = cancelled_case(&l, "customer");
    l.clock_to("2026-03-03T09:00:00+02:00");
    l.accept(
        "/v1/calls",
        "call.completed",
        call(&case_id, "K1", "answered", Some(json!({"kind": "declined", "reason": "busy month", "complaint": false, "follow_up": true}))),
    );
    let case = l.case(&case_id);
    assert_eq!(case["ticket"]["status"], "pending");
    assert_eq!(timers(&case)[0], ("call_attempt".into(), "2026-03-04T09:00:00+02:00".into()));
    assert!(l.commands_of("cancel_order").is_empty());

    l.clock_to("2026-03-04T09:00:00+02:00");
    l.accept(
        "/v1/calls",
        "call.completed",
        call(&case_id, "K2", "answered", Some(json!({"kind": "follow_up_later", "at": "2026-03-04T18:30:00+02:00"}))),
    );
    assert_eq!(timers(&l.case(&case_id))[0], ("call_attempt".into(), "2026-03-04T18:30:00+02:00".into()));
    assert_eq!(l.clock_to("2026-03-04T18:30:00+02:00"), 1);
    assert_eq!(l.commands_of("call_customer").len(), 3);
}

#[test]
fn r2_3_no_show_and_existing_discount_get_no_coupon() {
    let l = Local::virtual_at(MON_10);
    cancelled_case(&l, "no_show");
    let mut discounted = booked("A2", "O2", "2026-03-03T10:00:00+02:00", "2026-03-03T12:00:00+02:00");
    discounted["discount_percent"] = json!(10);
    l.accept("/v1/appointments", "appointment.booked", discounted);
    assert!(l.accept("/v1/cancellations", "appointment.cancelled", cancelled("A2", "ops", false)).is_some());
    assert!(l.sms().is_empty(), "no DISCOUNT_OFFER for a no-show or an already discounted visit");
}

#[test]
fn r2_1_only_qualifying_first_visits_open_a_case() {
    let l = Local::virtual_at(MON_10);
    l.accept("/v1/appointments", "appointment.booked", booked("A1", "O1", "2026-03-03T10:00:00+02:00", "2026-03-03T12:00:00+02:00"));
    assert_eq!(l.accept("/v1/cancellations", "appointment.cancelled", cancelled("A1", "customer", false)), None);
    let mut second = booked("A2", "O2", "2026-03-03T10:00:00+02:00", "2026-03-03T12:00:00+02:00");
    second["visit_number"] = json!(2);
    l.accept("/v1/appointments", "appointment.booked", second);
    assert_eq!(l.accept("/v1/cancellations", "appointment.cancelled", cancelled("A2", "ops", true)), None);
    assert_eq!(l.get("/v1/cases?order_id=O1").1["cases"], json!([]));
    // R2.3 (v2) both still earn the coupon, registered and offered without a case.
    let kinds: Vec<String> = l.commands().iter().map(|c| c["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, vec!["issue_coupon", "issue_coupon"]);
    assert!(l.sms().iter().all(|s| s["template"] == "DISCOUNT_OFFER" && s["case_id"].is_null()));
    // R9.2 cancelling it again is an echo: accepted, nothing new.
    let (status, body) = l.send("/v1/cancellations", "again", "appointment.cancelled", cancelled("A1", "customer", true));
    assert_eq!(status, 202, "{body}");
    assert_eq!((l.commands().len(), l.get("/v1/cases?order_id=O1").1["cases"].clone()), (2, json!([])));
}

#[test]
fn r2_4_unsure_customer_gets_a_request_four_weeks_out() {
    let l = Local::virtual_at(MON_10);
    l.accept("/v1/appointments", "appointment.booked", booked("A1", "O1", "2026-03-03T10:00:00+02:00", "2026-03-03T12:00:00+02:00"));
    let mut c = cancelled("A1", "customer", true);
    c["availability"] = json!("unsure");
    let case_id = l.accept("/v1/cancellations", "appointment.cancelled", c).unwrap();
    let req = l.commands_of("create_appointment_request");
    assert_eq!(req.len(), 1);
    assert_eq!(req[0]["case_id"], case_id.as_str());
    assert_eq!(req[0]["data"]["not_before"], "2026-03-30");
    let code = req[0]["data"]["coupon_code"].as_str().unwrap();
    let sms = &l.sms()[0];
    assert!(sms["body"].as_str().unwrap().contains(code), "the SMS carries the coupon");
    assert!(sms["body"].as_str().unwrap().contains("2026-04-01"), "coupon valid at least until the request date");
}

#[test]
fn r2_2_a_second_case_for_the_order_closes_the_first_as_duplicate() {
    let l = Local::virtual_at(MON_10);
    let first = cancelled_case(&l, "customer");
    l.accept("/v1/appointments", "appointment.booked", booked("A2", "O1", "2026-03-05T10:00:00+02:00", "2026-03-05T12:00:00+02:00"));
    let second = l.accept("/v1/cancellations", "appointment.cancelled", cancelled("A2", "ops", true)).unwrap();
    assert_ne!(first, second);
    let old = l.case(&first);
    assert_eq!(old["ticket"]["status"], "waiting_on_third_party");
    assert!(old["timers"].as_array().unwrap().is_empty());
    assert_eq!(l.case(&second)["ticket"]["status"], "open");
    let listed = l.get("/v1/cases?order_id=O1").1;
    assert_eq!(listed["cases"].as_array().unwrap().len(), 2);
    let by_appointment = l.get("/v1/cases?appointment_id=A2").1;
    assert_eq!(by_appointment["cases"].as_array().unwrap().len(), 1);
    assert_eq!(by_appointment["cases"][0]["case_id"], second.as_str());
}

#[test]
fn r2_10_a_case_that_never_waited_on_the_customer_cannot_reopen() {
    let l = Local::virtual_at(MON_10);
    let case_id = cancelled_case(&l, "customer");
    let declined = json!({"kind": "declined", "reason": "went elsewhere", "complaint": false, "follow_up": false});
    l.accept("/v1/calls", "call.completed", call(&case_id, "K1", "answered", Some(declined)));
    l.clock_to("2026-04-10T10:00:00+02:00");
    let (status, body) = l.send("/v1/cancellations", "r1", "case.reopen", json!({"case_id": case_id}));
    assert_eq!(status, 422);
    assert_eq!(body["error"]["rule"], "R2.10");
}
