//! The wire contract of SPEC §5 from outside: signature, envelope, status codes, idempotency, samples.

use followup_tests::{booked, Local, SECRET};
use serde_json::{json, Value};

const START: &str = "2026-03-02T10:00:00+02:00";

fn engine_with_booking() -> Local {
    let l = Local::virtual_at(START);
    l.accept("/v1/appointments", "appointment.booked", booked("A1", "O1", "2026-03-03T10:00:00+02:00", "2026-03-03T12:00:00+02:00"));
    l
}

fn cancel_body(id: &str, reason: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id, "type": "appointment.cancelled", "occurred_at": START,
        "data": {"appointment_id": "A1", "cancelled_by": "customer", "reason": reason, "wants_follow_up": true}
    }))
    .unwrap()
}

fn assert_error(status: u16, body: &Value, expected: u16, code: &str, field: Option<&str>) {
    assert_eq!(status, expected, "{body}");
    let e = &body["error"];
    assert_eq!(e["code"], code, "{body}");
    assert!(!e["message"].as_str().unwrap_or_default().is_empty(), "a message for a person: {body}");
    if let Some(f) = field {
        assert_eq!(e["field"], f, "{body}");
    }
    for k in ["code", "message", "field", "rule"] {
        assert!(e.get(k).is_some(), "error body has {k}: {body}");
    }
}

/// Nothing stored and nothing sent: no case, no SMS, no command.
fn assert_nothing_happened(l: &Local) {
    assert!(l.sms().is_empty(), "no SMS");
    assert!(l.commands().is_empty(), "no command");
    assert_eq!(l.get("/v1/cases?appointment_id=A1").1["cases"], json!([]));
}

#[test]
fn duplicate_delivery_is_202_duplicate_with_no_second_effect() {
    let l = engine_with_booking();
    let body = cancel_body("dup-1", "moving house");
    let (s1, b1) = l.post_signed("/v1/cancellations", &body);
    assert_eq!((s1, b1["duplicate"].clone()), (202, json!(false)));
    let (s2, b2) = l.post_signed("/v1/cancellations", &body);
    assert_eq!(s2, 202);
    assert_eq!(b2["duplicate"], true);
    assert_eq!(b2["case_id"], b1["case_id"]);
    assert_eq!(l.sms().len(), 1, "no second SMS");
    assert_eq!(l.get("/v1/cases?appointment_id=A1").1["cases"].as_array().unwrap().len(), 1);
}

#[test]
fn same_id_with_another_body_is_409() {
    let l = engine_with_booking();
    assert_eq!(l.post_signed("/v1/cancellations", &cancel_body("dup-2", "moving house")).0, 202);
    let (status, body) = l.post_signed("/v1/cancellations", &cancel_body("dup-2", "changed my mind"));
    assert_error(status, &body, 409, "delivery_conflict", Some("id"));
    assert_eq!(l.sms().len(), 1);
}

#[test]
fn bad_signatures_are_401_and_store_nothing() {
    let l = engine_with_booking();
    let body = cancel_body("sig-1", "x");
    let now = chrono::Utc::now().timestamp();
    let good = followup::wire::sign(SECRET, now, &body);
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("x-timestamp", now.to_string())],
        vec![("x-signature", good.clone())],
        vec![("x-timestamp", now.to_string()), ("x-signature", followup::wire::sign("wrong-secret", now, &body))],
        vec![("x-timestamp", (now - 301).to_string()), ("x-signature", followup::wire::sign(SECRET, now - 301, &body))],
        vec![("x-timestamp", (now + 400).to_string()), ("x-signature", followup::wire::sign(SECRET, now + 400, &body))],
        vec![("x-timestamp", now.to_string()), ("x-signature", good.replace("v1=", "v2="))],
        vec![("x-timestamp", (now + 1).to_string()), ("x-signature", good.clone())],
    ];
    for headers in cases {
        let (status, resp) = l.post_raw("/v1/cancellations", &body, &headers);
        assert_error(status, &resp, 401, "unauthorized", None);
    }
    assert_nothing_happened(&l);
    // The same delivery, signed properly, is then accepted as new (nothing was recorded).
    let (status, resp) = l.post_signed("/v1/cancellations", &body);
    assert_eq!((status, resp["duplicate"].clone()), (202, json!(false)));
}

#[test]
fn oversized_body_is_413() {
    let l = engine_with_booking();
    let mut v: Value = serde_json::from_slice(&cancel_body("big-1", "x")).unwrap();
    v["data"]["reason"] = json!("x".repeat(70 * 1024));
    let (status, body) = l.post_signed("/v1/cancellations", &serde_json::to_vec(&v).unwrap());
    assert_error(status, &body, 413, "payload_too_large", None);
    assert_nothing_happened(&l);
}

#[test]
fn malformed_requests_are_400_naming_the_field() {
    let l = engine_with_booking();
    let (s, b) = l.post_signed("/v1/cancellations", b"{not json");
    assert_error(s, &b, 400, "invalid_json", None);
    let (s, b) = l.send("/v1/cancellations", "t-1", "appointment.vanished", json!({}));
    assert_error(s, &b, 400, "unknown_type", Some("type"));
    let (s, b) = l.send("/v1/calls", "t-2", "appointment.cancelled", json!({}));
    assert_error(s, &b, 400, "unknown_type", Some("type"));
    let (s, b) = l.send(
        "/v1/cancellations",
        "t-3",
        "appointment.cancelled",
        json!({"appointment_id": "A1", "cancelled_by": "customer", "wants_follow_up": true}),
    );
    assert_error(s, &b, 400, "missing_field", Some("data.reason"));
    let (s, b) = l.send(
        "/v1/cancellations",
        "t-4",
        "appointment.cancelled",
        json!({"appointment_id": "A1", "cancelled_by": "martians", "reason": "x", "wants_follow_up": true}),
    );
    assert_error(s, &b, 400, "invalid_field", Some("data.cancelled_by"));
    let mut bad_phone = booked("A9", "O9", "2026-03-03T10:00:00+02:00", "2026-03-03T12:00:00+02:00");
    bad_phone["customer"]["phone"] = json!("0100 123 4567");
    let (s, b) = l.send("/v1/appointments", "t-5", "appointment.booked", bad_phone);
    assert_error(s, &b, 400, "invalid_field", Some("data.customer.phone"));
    let (s, b) = l.send(
        "/v1/calls",
        "t-6",
        "call.completed",
        json!({"case_id": "o1-O1", "call_id": "K", "agent_id": "G", "outcome": "answered", "topics": ["inquiry.astrology"]}),
    );
    assert_error(s, &b, 400, "invalid_field", Some("data.topics[0]"));
    assert_nothing_happened(&l);
}

#[test]
fn unknown_subjects_and_cases_are_404() {
    let l = engine_with_booking();
    let (s, b) = l.send(
        "/v1/cancellations",
        "n-1",
        "appointment.cancelled",
        json!({"appointment_id": "NOPE", "cancelled_by": "ops", "reason": "x", "wants_follow_up": false}),
    );
    assert_error(s, &b, 404, "unknown_appointment", Some("data.appointment_id"));
    let (s, b) =
        l.send("/v1/calls", "n-2", "call.completed", json!({"case_id": "o9-O1", "call_id": "K", "agent_id": "G", "outcome": "busy"}));
    assert_error(s, &b, 404, "unknown_case", Some("data.case_id"));
    let (s, b) =
        l.send("/v1/calls", "n-3", "call.completed", json!({"case_id": "garbage", "call_id": "K", "agent_id": "G", "outcome": "busy"}));
    assert_error(s, &b, 404, "unknown_case", Some("data.case_id"));
    let (s, b) = l.get("/v1/cases/o1-NOPE");
    assert_error(s, &b, 404, "unknown_case", None);
    let (s, b) = l.get("/v1/cases");
    assert_error(s, &b, 400, "missing_field", None);
    assert_nothing_happened(&l);
}

#[test]
fn rule_refusals_are_422_citing_the_rule_and_store_nothing() {
    let l = engine_with_booking();
    let case_id = l
        .accept(
            "/v1/cancellations",
            "appointment.cancelled",
            json!({"appointment_id": "A1", "cancelled_by": "ops", "reason": "x", "wants_follow_up": false}),
        )
        .unwrap();
    let before = l.case(&case_id);
    let (s, b) = l.send("/v1/cancellations", "r-1", "case.reopen", json!({"case_id": case_id}));
    assert_error(s, &b, 422, "rule_violation", None);
    assert_eq!(b["error"]["rule"], "R2.10");
    assert_eq!(l.case(&case_id), before, "nothing stored");
}

#[test]
fn local_endpoints_need_the_virtual_clock_for_time() {
    let dir = tempfile::tempdir().unwrap();
    let l = Local::spawn(dir.path(), None, &[]);
    assert_eq!(l.get("/local/clock").0, 404);
    assert_eq!(l.post_raw("/local/clock", br#"{"advance_secs": 5}"#, &[]).0, 404);
    assert_eq!(l.get("/local/sms").1, json!({"messages": []}));
    assert_eq!(l.get("/local/commands").1, json!({"commands": []}));

    let v = Local::virtual_at(START);
    assert_eq!(v.get("/local/clock").1["now"], START);
    let (s, b) = v.post_raw("/local/clock", br#"{"advance_secs": 90}"#, &[]);
    assert_eq!((s, b["now"].as_str(), b["fired"].as_u64()), (200, Some("2026-03-02T10:01:30+02:00"), Some(0)));
    assert_eq!(v.post_raw("/local/clock", br#"{"to": "2026-03-01T00:00:00Z"}"#, &[]).0, 400, "never backwards");
    assert_eq!(v.post_raw("/local/clock", br#"{"advance_secs": -1}"#, &[]).0, 400);
}

/// Every sample in events/ is a valid envelope for its route (played in file order).
#[test]
fn every_sample_payload_is_accepted_by_the_contract() {
    let l = Local::virtual_at(START);
    let samples = followup_tests::samples();
    assert!(samples.len() >= 14, "one sample per event type: {:?}", samples.iter().map(|(n, _)| n).collect::<Vec<_>>());
    let mut types = std::collections::BTreeSet::new();
    for (name, v) in &samples {
        let kind = v["type"].as_str().unwrap().to_owned();
        types.insert(kind.clone());
        let route = followup::wire::Route::ALL.into_iter().find(|r| r.event_types().contains(&kind.as_str())).unwrap();
        let (status, body) = l.post_signed(route.path(), &serde_json::to_vec(&v).unwrap());
        assert!(![400, 401, 413].contains(&status), "{name}: {status} {body}");
    }
    let all: std::collections::BTreeSet<String> =
        followup::wire::Route::ALL.iter().flat_map(|r| r.event_types().iter().map(|s| s.to_string())).collect();
    assert_eq!(types, all, "a sample for every event type");
}

#[test]
fn an_appointment_id_belongs_to_one_order() {
    let l = engine_with_booking();
    let (s, b) = l.send(
        "/v1/appointments",
        "other-order",
        "appointment.booked",
        booked("A1", "O2", "2026-03-03T10:00:00+02:00", "2026-03-03T12:00:00+02:00"),
    );
    assert_error(s, &b, 422, "already_booked", Some("data.appointment_id"));
    assert_eq!(l.get("/v1/cases?order_id=O2").1["cases"], json!([]));
    // A repeat of an accepted delivery stays a duplicate even though it would now be refused.
    let first = l.send(
        "/v1/appointments",
        "same-booking",
        "appointment.booked",
        booked("A7", "O7", "2026-03-03T10:00:00+02:00", "2026-03-03T12:00:00+02:00"),
    );
    assert_eq!(first.0, 202);
    let body = serde_json::to_vec(&json!({"id": "same-booking", "type": "appointment.booked", "occurred_at": START,
        "data": booked("A7", "O7", "2026-03-03T10:00:00+02:00", "2026-03-03T12:00:00+02:00")}))
    .unwrap();
    let again = l.post_signed("/v1/appointments", &body);
    assert_eq!((again.0, again.1["duplicate"].clone()), (202, json!(true)), "{}", again.1);
}
