//! Hostile inputs through the real binary: deeply nested JSON, numbers past i64 and u32, invalid
//! UTF-8, control characters in ids, a body of exactly 64 KiB and one byte more, duplicate JSON
//! keys, and a wrong JSON type in every field of one event of each route. Each is a 4xx with the
//! error body and a message for a person (naming the field where there is one), and nothing is
//! stored: no case, no SMS, no command, and the delivery id stays unused.

mod doc;

use followup::wire::{self, Route};
use followup_tests::{sample, Local};
use serde_json::{json, Value};

const START: &str = "2026-03-02T10:00:00+02:00";

fn envelope(kind: &str) -> Value {
    let name = match kind {
        "appointment.booked" => "01_appointment.booked.json",
        "appointment.cancelled" => "05_appointment.cancelled.json",
        "call.completed" => "07_call.completed.json",
        "package.booked" => "09_package.booked.json",
        _ => unreachable!("{kind}"),
    };
    sample(name)
}

/// What a refused input must not change.
fn state(l: &Local) -> Value {
    json!({
        "order": l.get("/v1/cases?order_id=O-501").1,
        "appointment": l.get("/v1/cases?appointment_id=A-1001").1,
        "package": l.get("/v1/cases?package_id=P-77").1,
        "sms": l.sms(),
        "commands": l.commands(),
    })
}

fn assert_empty(l: &Local) {
    let s = state(l);
    assert_eq!(s["order"]["cases"], json!([]), "{s}");
    assert_eq!(s["package"]["cases"], json!([]), "{s}");
    assert_eq!(s["sms"], json!([]), "{s}");
    assert_eq!(s["commands"], json!([]), "{s}");
}

/// A 4xx with the documented error body; `field` is checked when given (`Some(None)`: no field).
#[track_caller]
fn refused(answer: (u16, Value), status: u16, code: &str, field: Option<Option<&str>>) -> Value {
    let (s, body) = answer;
    assert_eq!((s, body["error"]["code"].as_str().unwrap_or_default()), (status, code), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "a message for a person: {body}");
    if let Some(f) = field {
        assert_eq!(body["error"]["field"].as_str(), f, "{body}");
        if let Some(f) = f {
            let leaf = f.rsplit(['.', '[']).next().unwrap().trim_end_matches(']');
            assert!(message.contains(leaf) || message.contains(f), "the message names {f}: {message}");
        }
    }
    let errors = doc::Doc::load().errors("Error", &body);
    assert!(errors.is_empty(), "the documented error body: {errors:?}");
    body
}

#[test]
fn deeply_nested_json_is_400_not_a_crash() {
    let l = Local::virtual_at(START);
    for body in [
        "[".repeat(10_000),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
        format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)),
    ] {
        refused(l.post_signed("/v1/appointments", body.as_bytes()), 400, "invalid_json", None);
    }
    // Deep inside a field the engine would otherwise ignore.
    let mut e = envelope("appointment.booked");
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let text = serde_json::to_string(&e).unwrap().replacen("\"data\":{", &format!("\"data\":{{\"extra\":{deep},"), 1);
    let b = refused(l.post_signed("/v1/appointments", text.as_bytes()), 400, "invalid_json", None);
    assert!(b["error"]["message"].as_str().unwrap().contains("recursion limit"), "{b}");
    assert_empty(&l);
    // A legal depth is still fine.
    e["data"]["extra"] = serde_json::from_str(&format!("{}{}", "[".repeat(100), "]".repeat(100))).unwrap();
    assert_eq!(l.post_signed("/v1/appointments", &serde_json::to_vec(&e).unwrap()).0, 202);
}

#[test]
fn numbers_past_their_type_are_400_naming_the_field() {
    let l = Local::virtual_at(START);
    let text = serde_json::to_string(&envelope("appointment.booked")).unwrap();
    for (field, json_field, values) in [
        (
            "data.price.amount",
            "\"amount\":45000",
            &["9223372036854775808", "18446744073709551616", "99999999999999999999999999", "-9223372036854775809", "1e30", "45000.5"][..],
        ),
        ("data.visit_number", "\"visit_number\":1", &["4294967296", "9223372036854775808", "18446744073709551616", "-1", "1.5"][..]),
        ("data.discount_percent", "\"discount_percent\":0", &["4294967296", "-0.5"][..]),
    ] {
        for v in values {
            let key = json_field.split(':').next().unwrap();
            let body = text.replacen(json_field, &format!("{key}:{v}"), 1);
            assert_ne!(body, text, "{json_field} is in the sample");
            refused(l.post_signed("/v1/appointments", body.as_bytes()), 400, "invalid_field", Some(Some(field)));
        }
    }
    // A number no JSON parser here can hold at all.
    let body = text.replacen("\"amount\":45000", "\"amount\":1e400", 1);
    refused(l.post_signed("/v1/appointments", body.as_bytes()), 400, "invalid_json", None);
    assert_empty(&l);
}

#[test]
fn invalid_utf8_is_400() {
    let l = Local::virtual_at(START);
    let text = serde_json::to_vec(&envelope("appointment.booked")).unwrap();
    let at = text.windows(4).position(|w| w == b"Mona").unwrap();
    for bad in [&b"\xff"[..], b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"] {
        let mut body = text.clone();
        body.splice(at..at + 1, bad.iter().copied());
        let b = refused(l.post_signed("/v1/appointments", &body), 400, "invalid_json", None);
        assert!(
            b["error"]["message"].as_str().unwrap().contains("unicode") || b["error"]["message"].as_str().unwrap().contains("UTF-8"),
            "{b}"
        );
    }
    // Outside any string, and a lone surrogate written as an escape.
    refused(l.post_signed("/v1/appointments", b"\xff{}"), 400, "invalid_json", None);
    let body = String::from_utf8(text.clone()).unwrap().replacen("Mona", "\\ud800Mona", 1);
    refused(l.post_signed("/v1/appointments", body.as_bytes()), 400, "invalid_json", None);
    assert_empty(&l);
}

#[test]
fn control_characters_in_ids_are_400_naming_the_id() {
    let l = Local::virtual_at(START);
    let controls = ["\u{0}", "\n", "\r", "\t", "\u{1b}[31m", "\u{7f}", "\u{85}", "\u{9b}"];
    for (pointer, field) in [
        ("/data/appointment_id", "data.appointment_id"),
        ("/data/order_id", "data.order_id"),
        ("/data/customer/id", "data.customer.id"),
        ("/data/technician_id", "data.technician_id"),
        ("/id", "id"),
    ] {
        for c in controls {
            let mut e = envelope("appointment.booked");
            let base = match e.pointer(pointer).unwrap() {
                Value::String(s) => s.clone(),
                _ => "T-1".to_string(),
            };
            *e.pointer_mut(pointer).unwrap() = json!(format!("{base}{c}x"));
            refused(l.post_signed("/v1/appointments", &serde_json::to_vec(&e).unwrap()), 400, "invalid_field", Some(Some(field)));
        }
    }
    for (kind, route, pointer, field) in [
        ("package.booked", Route::Packages, "/data/visits/1/visit_id", "data.visits[1].visit_id"),
        ("package.booked", Route::Packages, "/data/package_id", "data.package_id"),
        ("call.completed", Route::Calls, "/data/case_id", "data.case_id"),
        ("call.completed", Route::Calls, "/data/agent_id", "data.agent_id"),
        ("appointment.cancelled", Route::Cancellations, "/data/appointment_id", "data.appointment_id"),
    ] {
        let mut e = envelope(kind);
        *e.pointer_mut(pointer).unwrap() = json!("id\u{0}with-a-nul");
        refused(l.post_signed(route.path(), &serde_json::to_vec(&e).unwrap()), 400, "invalid_field", Some(Some(field)));
    }
    assert_empty(&l);
}

/// `appointment.booked` serialized to exactly `len` bytes (padded inside an ignored field).
fn booking_of_len(len: usize, valid: bool) -> Vec<u8> {
    let mut e = envelope("appointment.booked");
    if !valid {
        e["data"]["customer"]["phone"] = json!("not a phone");
    }
    e["data"]["padding"] = json!("");
    let base = serde_json::to_vec(&e).unwrap().len();
    e["data"]["padding"] = json!("x".repeat(len - base));
    let body = serde_json::to_vec(&e).unwrap();
    assert_eq!(body.len(), len);
    body
}

#[test]
fn a_body_of_exactly_64_kib_is_judged_on_its_content_and_one_byte_more_is_413() {
    let l = Local::virtual_at(START);
    assert_eq!(wire::MAX_BODY_BYTES, 65_536);
    // One byte more: 413, signed or not, whatever it holds.
    for valid in [true, false] {
        let body = booking_of_len(65_537, valid);
        refused(l.post_signed("/v1/appointments", &body), 413, "payload_too_large", Some(None));
        refused(l.post_raw("/v1/appointments", &body, &[]), 413, "payload_too_large", Some(None));
    }
    let mut big = vec![b' '; 1024 * 1024];
    big[0] = b'{';
    refused(l.post_signed("/v1/appointments", &big), 413, "payload_too_large", None);
    assert_empty(&l);
    // Exactly 64 KiB: refused for its content, or accepted.
    let body = booking_of_len(65_536, false);
    refused(l.post_signed("/v1/appointments", &body), 400, "invalid_field", Some(Some("data.customer.phone")));
    refused(l.post_raw("/v1/appointments", &body, &[]), 401, "unauthorized", None);
    assert_empty(&l);
    let body = booking_of_len(65_536, true);
    let (status, answer) = l.post_signed("/v1/appointments", &body);
    assert_eq!((status, answer["duplicate"].clone()), (202, json!(false)), "{answer}");
    let (status, answer) = l.post_signed("/v1/appointments", &body);
    assert_eq!((status, answer["duplicate"].clone()), (202, json!(true)), "recorded: {answer}");
}

#[test]
fn duplicate_json_keys_are_400_naming_the_key() {
    let l = Local::virtual_at(START);
    let text = serde_json::to_string(&envelope("appointment.booked")).unwrap();
    for (from, to, field) in [
        ("\"id\":\"evt-01-appointment.booked\"", "\"id\":\"evt-01-appointment.booked\",\"id\":\"evt-other\"", "id"),
        ("\"type\":\"appointment.booked\"", "\"type\":\"appointment.booked\",\"type\":\"appointment.assigned\"", "type"),
        ("\"appointment_id\":\"A-1001\"", "\"appointment_id\":\"A-1001\",\"appointment_id\":\"A-1002\"", "data.appointment_id"),
        ("\"phone\":\"+201001234567\"", "\"phone\":\"+201001234567\",\"phone\":\"+201009999999\"", "data.customer.phone"),
        ("\"amount\":45000", "\"amount\":45000,\"amount\":1", "data.price.amount"),
        // The same value twice is still two keys.
        ("\"visit_number\":1", "\"visit_number\":1,\"visit_number\":1", "data.visit_number"),
    ] {
        let body = text.replacen(from, to, 1);
        assert_ne!(body, text, "{from}");
        let b = refused(l.post_signed("/v1/appointments", body.as_bytes()), 400, "invalid_json", Some(Some(field)));
        assert!(b["error"]["message"].as_str().unwrap().contains("duplicate"), "{b}");
    }
    // In an array's object too.
    let text = serde_json::to_string(&envelope("package.booked")).unwrap();
    let body = text.replacen("\"visit_id\":\"V-2\"", "\"visit_id\":\"V-2\",\"visit_id\":\"V-9\"", 1);
    refused(l.post_signed("/v1/packages", body.as_bytes()), 400, "invalid_json", Some(Some("data.visits[1].visit_id")));
    assert_empty(&l);
    // Nothing was recorded under the delivery id: the plain envelope is new.
    let (status, answer) = l.post_signed("/v1/appointments", &serde_json::to_vec(&envelope("appointment.booked")).unwrap());
    assert_eq!((status, answer["duplicate"].clone()), (202, json!(false)), "{answer}");
}

/// Every field path of a JSON value in the error body's notation (`data.visits[0].visit_id`).
fn fields(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    let pointer_of = |p: &str| {
        let mut ptr = String::new();
        for seg in p.split('.') {
            let (name, index) = match seg.split_once('[') {
                Some((n, i)) => (n, Some(i.trim_end_matches(']'))),
                None => (seg, None),
            };
            ptr.push('/');
            ptr.push_str(name);
            if let Some(i) = index {
                ptr.push('/');
                ptr.push_str(i);
            }
        }
        ptr
    };
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                out.push((p.clone(), pointer_of(&p)));
                fields(x, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                out.push((p.clone(), pointer_of(&p)));
                fields(x, &p, out);
            }
        }
        _ => {}
    }
}

/// Values of a type other than `v`'s.
fn wrong_types(v: &Value) -> Vec<Value> {
    match v {
        Value::String(_) => vec![json!(12345), json!(["x"]), json!({"x": 1}), json!(false)],
        Value::Number(_) => vec![json!("12"), json!([1]), json!(true)],
        Value::Bool(_) => vec![json!("true"), json!(1), json!({})],
        Value::Object(_) => vec![json!("x"), json!([]), json!(1)],
        Value::Array(_) => vec![json!("x"), json!({}), json!(0)],
        Value::Null => vec![json!(7), json!({}), json!(true)],
    }
}

#[test]
fn a_wrong_json_type_in_any_field_is_400_naming_that_field() {
    let l = Local::virtual_at(START);
    // The subjects exist, so a well-typed envelope would be accepted and change something.
    l.accept("/v1/appointments", "appointment.booked", envelope("appointment.booked")["data"].clone());
    let before = state(&l);
    let mut tried = 0;
    for (kind, route) in [
        ("appointment.booked", Route::Appointments),
        ("appointment.cancelled", Route::Cancellations),
        ("call.completed", Route::Calls),
        ("package.booked", Route::Packages),
    ] {
        let sample = envelope(kind);
        let mut all = Vec::new();
        fields(&sample, "", &mut all);
        for (field, pointer) in all {
            for wrong in wrong_types(sample.pointer(&pointer).unwrap()) {
                let mut e = sample.clone();
                e["id"] = json!(format!("wrong-{tried}"));
                *e.pointer_mut(&pointer).unwrap() = wrong.clone();
                let answer = l.post_signed(route.path(), &serde_json::to_vec(&e).unwrap());
                let body = refused(answer, 400, "invalid_field", None);
                let named = body["error"]["field"].as_str().unwrap_or_default();
                assert_eq!(named, field, "{kind}: {field} = {wrong}: the error names another field: {body}");
                tried += 1;
            }
        }
    }
    assert!(tried > 100, "{tried}");
    assert_eq!(state(&l), before, "nothing stored");
    // None of those delivery ids was recorded.
    let (status, answer) =
        l.send("/v1/cancellations", "wrong-0", "appointment.cancelled", envelope("appointment.cancelled")["data"].clone());
    assert_eq!((status, answer["duplicate"].clone()), (202, json!(false)), "{answer}");
}

#[test]
fn objects_written_as_arrays_are_400_naming_the_object() {
    let l = Local::virtual_at(START);
    l.accept("/v1/appointments", "appointment.booked", envelope("appointment.booked")["data"].clone());
    let before = state(&l);
    // serde would take a struct as the array of its fields in order; the contract's objects are objects.
    let cases: Vec<(&str, Route, &str, Value, &str)> = vec![
        ("appointment.booked", Route::Appointments, "/data/customer", json!(["C-88", "Mona Adel", "+201001234567", "ar"]), "data.customer"),
        ("appointment.booked", Route::Appointments, "/data/price", json!([45000, "EGP"]), "data.price"),
        ("package.booked", Route::Packages, "/data/visits/0", json!(["V-1", "2026-03-09T10:00:00+02:00"]), "data.visits[0]"),
        ("call.completed", Route::Calls, "/data/resolution", json!(["follow_up_later", "2026-03-09T10:00:00+02:00"]), "data.resolution"),
        ("call.completed", Route::Calls, "/data/resolution", json!([]), "data.resolution"),
        ("call.completed", Route::Calls, "/data/resolution", json!("will_pay"), "data.resolution"),
    ];
    for (i, (kind, route, pointer, value, field)) in cases.into_iter().enumerate() {
        let mut e = envelope(kind);
        e["id"] = json!(format!("array-{i}"));
        *e.pointer_mut(pointer).unwrap() = value;
        refused(l.post_signed(route.path(), &serde_json::to_vec(&e).unwrap()), 400, "invalid_field", Some(Some(field)));
    }
    assert_eq!(state(&l), before, "nothing stored");
}

/// A case id names its snapshot as `o<n>-<order_id>`; one whose first character is not ASCII is
/// simply no case.
#[test]
fn a_case_id_starting_with_a_multibyte_character_is_no_case_not_a_crash() {
    let l = Local::virtual_at(START);
    for id in ["¡-x", "é1-O-501", "😀-1"] {
        refused(l.get(&format!("/v1/cases/{}", id.bytes().map(|b| format!("%{b:02X}")).collect::<String>())), 404, "unknown_case", None);
        let call = json!({"case_id": id, "call_id": "K-1", "agent_id": "agent-7", "outcome": "busy"});
        refused(l.send("/v1/calls", &format!("mb-call-{id}"), "call.completed", call), 404, "unknown_case", Some(Some("data.case_id")));
        refused(l.send("/v1/cancellations", &format!("mb-reopen-{id}"), "case.reopen", json!({"case_id": id})), 404, "unknown_case", None);
    }
    assert_empty(&l);
}

/// Amounts and a painting job's length past what the money rules and the per-day lists can hold
/// are refused at the door: accepted, they overflowed the painting quote (and wedged the timer
/// that computes it) or listed billions of days.
#[test]
fn amounts_and_painting_days_past_their_bounds_are_400_and_the_timers_keep_running() {
    let l = Local::virtual_at(START);
    l.accept("/v1/appointments", "appointment.booked", envelope("appointment.booked")["data"].clone());
    let completed = |days: u64, material: i64| {
        json!({"appointment_id": "A-1001", "outcome": "painting", "needs_material": true, "material_days": 2,
            "painting": {"days": days, "total_price": {"amount": 1_000_000}, "material_price": {"amount": material}, "tax_invoice": true}})
    };
    for (i, (data, field)) in [
        (completed(3, i64::MAX), "data.painting.material_price.amount"),
        (completed(3, wire::MAX_AMOUNT + 1), "data.painting.material_price.amount"),
        (completed(u32::MAX as u64, 250_000), "data.painting.days"),
        (completed(wire::MAX_PAINTING_DAYS as u64 + 1, 250_000), "data.painting.days"),
    ]
    .into_iter()
    .enumerate()
    {
        refused(l.send("/v1/appointments", &format!("big-{i}"), "appointment.completed", data), 400, "invalid_field", Some(Some(field)));
    }
    let mut booking = envelope("appointment.booked")["data"].clone();
    booking["appointment_id"] = json!("A-2");
    booking["order_id"] = json!("O-2");
    booking["price"]["amount"] = json!(i64::MAX);
    refused(l.send("/v1/appointments", "big-price", "appointment.booked", booking), 400, "invalid_field", Some(Some("data.price.amount")));
    // At the bounds: taken, and every timer after it still fires.
    l.accept("/v1/appointments", "appointment.completed", completed(wire::MAX_PAINTING_DAYS as u64, wire::MAX_AMOUNT));
    for _ in 0..4 {
        l.advance(10 * 24 * 3600);
    }
}

/// A resolution stuffed with thousands of members around one bad value is refused as quickly as
/// any other body, naming the resolution.
#[test]
fn a_stuffed_resolution_is_400_without_a_long_search() {
    let l = Local::virtual_at(START);
    let mut e = envelope("call.completed");
    e["data"]["resolution"]["window_start"] = json!(12345);
    for i in 0..3_000 {
        e["data"]["resolution"][format!("m{i}")] = json!(i);
    }
    let body = serde_json::to_vec(&e).unwrap();
    assert!(body.len() < wire::MAX_BODY_BYTES, "{}", body.len());
    let started = std::time::Instant::now();
    refused(l.post_signed("/v1/calls", &body), 400, "invalid_field", Some(Some("data.resolution")));
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    assert_empty(&l);
}

/// The virtual clock takes a move of at most ten years: one past it (or past i64 seconds, or to
/// the year 9999) is a 400 naming the field, and the clock stays where it was.
#[test]
fn a_clock_move_past_ten_years_is_400_and_the_clock_stays() {
    let l = Local::virtual_at(START);
    let before = l.get("/local/clock").1["now"].clone();
    for (body, field) in [
        (json!({"advance_secs": i64::MAX}), "advance_secs"),
        (json!({"advance_secs": 3651 * 86_400}), "advance_secs"),
        (json!({"to": "9999-12-31T23:59:59Z"}), "to"),
    ] {
        let answer = l.post_raw("/local/clock", body.to_string().as_bytes(), &[]);
        refused(answer, 400, "invalid_field", Some(Some(field)));
    }
    assert_eq!(l.get("/local/clock").1["now"], before, "the clock did not move");
    assert_eq!(l.post_raw("/local/clock", json!({"advance_secs": 3650 * 86_400}).to_string().as_bytes(), &[]).0, 200, "ten years is taken");
}
