//! `docs/openapi.json` and the code kept together: every route followup-local declares and every
//! event type `wire::Route::event_types()` lists is documented, and nothing else; every sample in
//! `events/` is its route's documented example and valid against its schema; the schemas accept
//! and refuse what `wire::parse_event` does on a table of near misses; the live answers (202,
//! errors, case views, the local routes, a wrong method or path) have the documented status and
//! body; and `GET /openapi.json` answers the committed file.

mod doc;

use doc::{check_answer, server_routes, Doc, METHODS};
use followup::domain::ErrorCode;
use followup::wire::{self, Route};
use followup_tests::{samples, Local};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const START: &str = "2026-03-02T10:00:00+02:00";

fn route_of(kind: &str) -> Route {
    Route::ALL.into_iter().find(|r| r.event_types().contains(&kind)).unwrap_or_else(|| panic!("no route takes {kind}"))
}

#[test]
fn the_document_names_every_route_the_server_has_and_no_other() {
    let doc = Doc::load();
    assert_eq!(doc.value["openapi"], "3.1.0");
    let documented = doc.operations();
    let served = server_routes();
    assert_eq!(
        documented,
        served,
        "documented but not served: {:?}; served but not documented: {:?}",
        documented.difference(&served).collect::<Vec<_>>(),
        served.difference(&documented).collect::<Vec<_>>()
    );
    // The webhook routes are exactly wire::Route::ALL, each a signed POST.
    let webhooks: BTreeSet<String> =
        documented.iter().filter(|(m, p)| m == "POST" && p.starts_with("/v1/")).map(|(_, p)| p.clone()).collect();
    assert_eq!(webhooks, Route::ALL.iter().map(|r| r.path().to_string()).collect());
    for route in Route::ALL {
        let op = doc.operation("POST", route.path());
        assert_eq!(op["security"], json!([{"webhookTimestamp": [], "webhookSignature": []}]), "{}", route.path());
        let params: Vec<&str> = op["parameters"].as_array().unwrap().iter().map(|p| doc.resolve(p)["name"].as_str().unwrap()).collect();
        assert_eq!(params, ["X-Timestamp", "X-Signature"], "{}", route.path());
        let statuses = doc.statuses("POST", route.path());
        for s in [202, 400, 401, 404, 409, 413, 422] {
            assert!(statuses.contains(&s), "{} documents {s}", route.path());
        }
    }
    // SPEC §5's case routes and their query.
    assert!(documented.contains(&("GET".into(), "/v1/cases/{case_id}".into())));
    // One exploded form object: each subject id is its own query parameter, at least one given.
    let params = doc.operation("GET", "/v1/cases")["parameters"].as_array().unwrap();
    assert_eq!(params.len(), 1);
    let subject = &params[0];
    assert_eq!(
        (&subject["in"], &subject["style"], &subject["explode"], &subject["required"]),
        (&json!("query"), &json!("form"), &json!(true), &json!(true))
    );
    let query: BTreeSet<&str> = subject["schema"]["properties"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(query, BTreeSet::from(["appointment_id", "order_id", "package_id"]));
    let one_of_them: BTreeSet<&str> =
        subject["schema"]["anyOf"].as_array().unwrap().iter().map(|a| a["required"][0].as_str().unwrap()).collect();
    assert_eq!(one_of_them, query);
    // Every $ref resolves.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc.value, &mut all);
    for r in all {
        assert!(doc.value.pointer(r.trim_start_matches('#')).is_some(), "dangling $ref {r}");
    }
    for (kind, target) in doc.value["x-unmatched"].as_object().unwrap() {
        assert!(doc.resolve(target)["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error", "{kind}");
    }
}

#[test]
fn the_document_lists_every_event_type_of_every_route_and_no_other() {
    let doc = Doc::load();
    for route in Route::ALL {
        let envelope = doc.envelope_schema(route.path());
        let documented: Vec<String> = doc.event_schemas(route.path()).into_iter().map(|(kind, _)| kind).collect();
        assert_eq!(documented, route.event_types(), "{}: oneOf of {envelope}", route.path());
        let discriminator = &doc.value["components"]["schemas"][&envelope]["discriminator"];
        assert_eq!(discriminator["propertyName"], "type", "{envelope}");
        let mapped: Vec<&String> = discriminator["mapping"].as_object().unwrap().keys().collect();
        let mut expected: Vec<&str> = route.event_types().to_vec();
        expected.sort();
        assert_eq!(mapped, expected, "{envelope} discriminator mapping");
        for (kind, name) in doc.event_schemas(route.path()) {
            assert_eq!(discriminator["mapping"][&kind], format!("#/components/schemas/{name}"));
            let required: BTreeSet<&str> =
                doc.value["components"]["schemas"][&name]["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            assert_eq!(required, BTreeSet::from(["id", "type", "occurred_at", "data"]), "{name}");
        }
    }
}

#[test]
fn the_documented_error_codes_are_the_engines() {
    let doc = Doc::load();
    let documented: Vec<&str> = doc.value["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let engine: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(documented, engine, "docs/openapi.json Error.code lists every ErrorCode, in order");
}

#[test]
fn every_sample_envelope_is_its_routes_example_and_valid_against_its_schema() {
    let doc = Doc::load();
    let all = samples();
    assert!(all.len() >= 14, "{all:?}");
    let mut examples_seen = 0;
    for (name, envelope) in &all {
        let kind = envelope["type"].as_str().unwrap();
        let route = route_of(kind);
        let schema = doc.envelope_schema(route.path());
        let errors = doc.errors(&schema, envelope);
        assert!(errors.is_empty(), "events/{name} is not a valid {schema}: {errors:?}");
        let examples = &doc.operation("POST", route.path())["requestBody"]["content"]["application/json"]["examples"];
        assert_eq!(examples[kind]["value"], *envelope, "the {kind} example of {} is events/{name}", route.path());
        assert_eq!(examples[kind]["summary"], format!("events/{name}"));
        // And the parser takes it.
        wire::parse_event(route, &serde_json::to_vec(envelope).unwrap(), "EGP").unwrap_or_else(|e| panic!("events/{name}: {e}"));
    }
    for route in Route::ALL {
        let examples = doc.operation("POST", route.path())["requestBody"]["content"]["application/json"]["examples"].as_object().unwrap();
        for (kind, ex) in examples {
            examples_seen += 1;
            assert!(all.iter().any(|(_, e)| *e == ex["value"]), "example {kind} of {} is not a file in events/", route.path());
        }
    }
    assert_eq!(examples_seen, all.len(), "one example per sample");
}

/// The schemas and the parser agree: each near miss of a sample is valid for both or for neither,
/// with the documented exceptions (cross-field checks the schemas cannot express).
#[test]
fn the_schemas_accept_and_refuse_what_the_parser_does() {
    let doc = Doc::load();
    let by_kind: std::collections::BTreeMap<String, Value> =
        samples().into_iter().map(|(_, v)| (v["type"].as_str().unwrap().to_string(), v)).collect();
    // (event type, JSON pointer into the envelope, new value or None to remove, accepted?)
    let table: Vec<(&str, &str, Option<Value>, bool)> = vec![
        ("appointment.booked", "/data/price/currency", None, true),
        ("appointment.booked", "/data/price/currency", Some(Value::Null), true),
        ("appointment.booked", "/data/price/currency", Some(json!("egp")), false),
        ("appointment.booked", "/data/price/currency", Some(json!("EGPT")), false),
        ("appointment.booked", "/data/price/amount", Some(json!(-1)), false),
        ("appointment.booked", "/data/price/amount", Some(json!(wire::MAX_AMOUNT)), true),
        ("appointment.booked", "/data/price/amount", Some(json!(wire::MAX_AMOUNT + 1)), false),
        ("appointment.booked", "/data/price/amount", Some(json!(i64::MAX)), false),
        ("appointment.booked", "/data/price/amount", Some(json!(u64::MAX)), false),
        ("appointment.booked", "/data/price/amount", None, false),
        ("appointment.booked", "/data/technician_id", None, true),
        ("appointment.booked", "/data/technician_id", Some(json!("T-1")), true),
        ("appointment.booked", "/data/technician_id", Some(json!("")), false),
        ("appointment.booked", "/data/visit_number", Some(json!(0)), false),
        ("appointment.booked", "/data/visit_number", Some(json!(2)), true),
        ("appointment.booked", "/data/discount_percent", Some(json!(100)), true),
        ("appointment.booked", "/data/discount_percent", Some(json!(101)), false),
        ("appointment.booked", "/data/customer/phone", Some(json!("+2010")), false),
        ("appointment.booked", "/data/customer/phone", Some(json!("+0201001234567")), false),
        ("appointment.booked", "/data/customer/phone", Some(json!("+1234567")), true),
        ("appointment.booked", "/data/customer/phone", Some(json!("+1234567890123456")), false),
        ("appointment.booked", "/data/customer/language", Some(json!("fr")), false),
        ("appointment.booked", "/data/customer/name", Some(json!(" \t")), false),
        ("appointment.booked", "/data/customer/id", Some(json!("x".repeat(128))), true),
        ("appointment.booked", "/data/customer/id", Some(json!("x".repeat(129))), false),
        ("appointment.booked", "/data/appointment_id", Some(json!("A\u{7}1")), false),
        ("appointment.booked", "/data/appointment_id", Some(json!("\u{3000}")), false),
        ("appointment.booked", "/data/appointment_id", Some(json!("موعد-١")), true),
        ("appointment.booked", "/data/area", Some(json!("")), false),
        ("appointment.booked", "/data/area", Some(json!("\u{2003}\u{85}\n")), false),
        // Free text is not blank, whatever else it holds; an id holds no control character.
        ("appointment.booked", "/data/service", Some(json!("\r\u{87}")), true),
        ("appointment.booked", "/data/order_id", Some(json!("O\u{87}")), false),
        ("appointment.booked", "/data/window_start", Some(json!("2026-03-05")), false),
        // RFC 3339 §5.6 lets a space stand for the T "for readability"; the date-time format does not.
        ("appointment.booked", "/data/window_start", Some(json!("2026-03-05 14:00:00+02:00")), false),
        ("appointment.booked", "/occurred_at", Some(json!("2026-03-05 14:00:00+02:00")), false),
        ("appointment.booked", "/occurred_at", Some(json!("2026-03-05t14:00:00z")), true),
        ("appointment.booked", "/data/window_start", Some(json!(1772712000)), false),
        ("appointment.booked", "/data/unknown_extra", Some(json!({"ignored": true})), true),
        ("appointment.booked", "/id", Some(json!("")), false),
        ("appointment.booked", "/id", Some(json!("é".repeat(128))), true),
        ("appointment.booked", "/id", Some(json!("é".repeat(129))), false),
        ("appointment.booked", "/occurred_at", Some(json!("2026-03-02T10:00:00")), false),
        ("appointment.booked", "/occurred_at", Some(json!("2026-03-02T08:00:00Z")), true),
        ("appointment.booked", "/data", Some(json!([])), false),
        ("appointment.completed", "/data/painting", None, true),
        ("appointment.completed", "/data/painting", Some(Value::Null), true),
        ("appointment.completed", "/data/painting/days", Some(json!(0)), false),
        ("appointment.completed", "/data/painting/days", Some(json!(wire::MAX_PAINTING_DAYS)), true),
        ("appointment.completed", "/data/painting/days", Some(json!(wire::MAX_PAINTING_DAYS + 1)), false),
        ("appointment.completed", "/data/painting/material_price/amount", Some(json!(i64::MAX)), false),
        ("appointment.completed", "/data/material_days", Some(json!(u32::MAX)), true),
        ("appointment.completed", "/data/painting/total_price/currency", None, true),
        ("appointment.completed", "/data/material_days", Some(Value::Null), true),
        ("appointment.completed", "/data/material_days", Some(json!(-1)), false),
        ("appointment.completed", "/data/outcome", Some(json!("exploded")), false),
        ("appointment.cancelled", "/data/availability", None, true),
        ("appointment.cancelled", "/data/availability", Some(Value::Null), true),
        ("appointment.cancelled", "/data/availability", Some(json!("maybe")), false),
        ("appointment.cancelled", "/data/reason", Some(json!("")), true),
        ("appointment.cancelled", "/data/wants_follow_up", Some(json!("true")), false),
        ("call.completed", "/data/outcome", Some(json!("unreported")), false),
        ("call.completed", "/data/topics", None, true),
        ("call.completed", "/data/topics", Some(Value::Null), false),
        ("call.completed", "/data/topics", Some(json!([])), true),
        ("call.completed", "/data/topics/0", Some(json!("inquiry.weather")), false),
        ("call.completed", "/data/notes", Some(Value::Null), true),
        ("call.completed", "/data/resolution", Some(json!({"kind": "will_pay"})), true),
        (
            "call.completed",
            "/data/resolution",
            Some(json!({"kind": "declined", "reason": "", "complaint": false, "follow_up": true})),
            true,
        ),
        ("call.completed", "/data/resolution", Some(json!({"kind": "declined", "reason": "x", "complaint": false})), false),
        ("call.completed", "/data/resolution", Some(json!({"kind": "follow_up_later", "at": "2026-03-09T10:00:00+02:00"})), true),
        ("call.completed", "/data/resolution", Some(json!({"kind": "teleported"})), false),
        ("call.completed", "/data/resolution/kind", None, false),
        ("package.booked", "/data/visits", Some(json!([])), false),
        ("package.booked", "/data/visits/0/visit_id", Some(json!(" ")), false),
        ("package.booked", "/data/start_date", Some(json!("2026-03-09T00:00:00Z")), false),
        ("package.booked", "/data/payment_method", Some(json!("cheque")), false),
        ("package.booked", "/data/paid", Some(json!(0)), false),
    ];
    for (kind, pointer, value, accepted) in table {
        let mut envelope = by_kind[kind].clone();
        let (parent, leaf) = pointer.rsplit_once('/').unwrap();
        let target = envelope.pointer_mut(parent).unwrap_or_else(|| panic!("{kind} has {parent}"));
        match (&value, target) {
            (None, Value::Object(m)) => {
                m.remove(leaf);
            }
            (Some(v), Value::Object(m)) => {
                m.insert(leaf.to_string(), v.clone());
            }
            (Some(v), Value::Array(a)) => a[leaf.parse::<usize>().unwrap()] = v.clone(),
            (v, t) => panic!("cannot set {pointer} of {t} to {v:?}"),
        }
        let route = route_of(kind);
        let schema_ok = doc.is_valid(&doc.envelope_schema(route.path()), &envelope);
        let parsed = wire::parse_event(route, &serde_json::to_vec(&envelope).unwrap(), "EGP");
        assert_eq!(
            schema_ok,
            accepted,
            "schema on {kind} {pointer} = {value:?}: {:?}",
            doc.errors(&doc.envelope_schema(route.path()), &envelope)
        );
        assert_eq!(parsed.is_ok(), accepted, "parser on {kind} {pointer} = {value:?}: {parsed:?}");
    }
    // A resolution is only for an answered call, in the schema as in the parser.
    let mut busy = by_kind["call.completed"].clone();
    busy["data"]["outcome"] = json!("busy");
    assert!(!doc.is_valid("CallsEnvelope", &busy));
    assert!(wire::parse_event(Route::Calls, &serde_json::to_vec(&busy).unwrap(), "EGP").is_err());
    busy["data"]["resolution"] = Value::Null;
    assert!(doc.is_valid("CallsEnvelope", &busy));
    assert!(wire::parse_event(Route::Calls, &serde_json::to_vec(&busy).unwrap(), "EGP").is_ok());
}

#[test]
fn followup_local_serves_the_committed_document() {
    let l = Local::virtual_at(START);
    let resp = reqwest::blocking::get(format!("{}/openapi.json", l.base)).unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let served = resp.text().unwrap();
    assert_eq!(served, std::fs::read_to_string(doc::path()).unwrap(), "GET /openapi.json answers docs/openapi.json as committed");
}

/// Every answer of a story through every route has the status and body the document gives it.
#[test]
fn live_answers_have_the_documented_status_and_body() {
    let doc = Doc::load();
    let l = Local::virtual_at(START);
    let check = |method: &str, path: &str, (status, body): (u16, Value)| {
        check_answer(&doc, method, path, status, &body).unwrap_or_else(|e| panic!("{e}"));
        (status, body)
    };
    for (name, envelope) in samples() {
        let route = route_of(envelope["type"].as_str().unwrap());
        let body = serde_json::to_vec(&envelope).unwrap();
        let (status, _) = check("POST", route.path(), l.post_signed(route.path(), &body));
        assert!([202, 404, 422].contains(&status), "events/{name}: {status}");
        // The same delivery again: a duplicate (or the same refusal); with another body: 409 when accepted.
        check("POST", route.path(), l.post_signed(route.path(), &body));
        if status == 202 {
            let mut other = envelope.clone();
            other["occurred_at"] = json!("2026-03-02T10:00:01+02:00");
            let (s, _) = check("POST", route.path(), l.post_signed(route.path(), &serde_json::to_vec(&other).unwrap()));
            assert_eq!(s, 409, "events/{name} with another body");
        }
    }
    l.advance(7 * 24 * 3600);
    // Refusals of every kind on a webhook route.
    let p = "/v1/appointments";
    assert_eq!(check("POST", p, l.post_raw(p, b"{}", &[])).0, 401);
    assert_eq!(check("POST", p, l.post_signed(p, b"{")).0, 400);
    assert_eq!(check("POST", p, l.post_signed(p, &vec![b' '; wire::MAX_BODY_BYTES + 1])).0, 413);
    // The case view, by id and by each query.
    let (_, list) = check("GET", "/v1/cases", l.get("/v1/cases?order_id=O-501"));
    let cases = list["cases"].as_array().unwrap();
    assert!(!cases.is_empty(), "the story opened cases for O-501");
    for c in cases {
        let id = c["case_id"].as_str().unwrap();
        check("GET", "/v1/cases/{case_id}", l.get(&format!("/v1/cases/{id}")));
    }
    for q in ["appointment_id=A-1001", "package_id=P-77", "order_id=nothing", "other=1", ""] {
        check("GET", "/v1/cases", l.get(&format!("/v1/cases?{q}")));
    }
    assert_eq!(check("GET", "/v1/cases/{case_id}", l.get("/v1/cases/o1-NOPE")).0, 404);
    // The local runtime.
    check("GET", "/local/sms", l.get("/local/sms"));
    check("GET", "/local/commands", l.get("/local/commands"));
    check("GET", "/local/clock", l.get("/local/clock"));
    check("POST", "/local/clock", l.post_raw("/local/clock", br#"{"advance_secs": 60}"#, &[]));
    check("POST", "/local/clock", l.post_raw("/local/clock", br#"{"advance_secs": -60}"#, &[]));
    check("POST", "/local/clock", l.post_raw("/local/clock", b"nope", &[]));
    check("POST", "/local/expiry-sweep", l.post_raw("/local/expiry-sweep", br#"{"date": "2026-04-09"}"#, &[]));
    check("POST", "/local/expiry-sweep", l.post_raw("/local/expiry-sweep", br#"{"date": "April"}"#, &[]));
    check("POST", "/local/timer-sweep", l.post_raw("/local/timer-sweep", b"", &[]));
    check("GET", "/local/metrics", l.get("/local/metrics"));
    // A path of the document with a method it does not list: 405 with the error body (R9.6 v3, the
    // local runtime's paths too); any other request: 404.
    for (path, item) in doc.value["paths"].as_object().unwrap() {
        let concrete = path.replace("{case_id}", "o1-O-501");
        for m in METHODS {
            if item.get(m).is_none() {
                let (status, body) = l.request(&m.to_uppercase(), &concrete);
                let expected = (405, "method_not_allowed");
                assert_eq!((status, body["error"]["code"].as_str().unwrap_or_default()), expected, "{m} {path}: {body}");
                assert!(doc.errors("Error", &body).is_empty(), "{body}");
            }
        }
    }
    for (m, path) in [("GET", "/v2/nothing"), ("POST", "/v1/appointment"), ("GET", "/v1/cases/a/b"), ("DELETE", "/")] {
        let (status, body) = l.request(m, path);
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{m} {path}: {body}");
        assert!(doc.errors("Error", &body).is_empty(), "{body}");
    }
}
