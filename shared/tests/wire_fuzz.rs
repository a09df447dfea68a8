//! Fuzzing the wire contract's two entry points, `wire::parse_event` and `wire::verify_signature`,
//! with proptest: random bytes, random JSON, and the sample envelopes of `events/` mutated at the
//! byte and at the JSON level. Neither ever panics; a refusal is a 400 with a code and a message,
//! and the field it names is where the body is wrong; a signature verifies for its exact body,
//! timestamp and secret only.
//!
//! `PROPTEST_CASES` sets the cases per property (2,000 by default; `make fuzz` runs 200,000).

use followup::domain::ErrorCode;
use followup::wire::{self, Route};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Value};

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2_000);
    Config { cases, ..Config::default() }
}

/// The numbered sample envelopes of `events/`, serialized.
fn samples() -> &'static [(Route, Vec<u8>)] {
    static SAMPLES: std::sync::OnceLock<Vec<(Route, Vec<u8>)>> = std::sync::OnceLock::new();
    SAMPLES.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.ends_with(".json") && n.starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        names.sort();
        let all: Vec<_> = names
            .iter()
            .map(|n| {
                let bytes = std::fs::read(dir.join(n)).unwrap();
                let v: Value = serde_json::from_slice(&bytes).unwrap();
                let kind = v["type"].as_str().unwrap();
                let route = Route::ALL.into_iter().find(|r| r.event_types().contains(&kind)).unwrap();
                (route, serde_json::to_vec(&v).unwrap())
            })
            .collect();
        assert!(all.len() >= 14);
        all
    })
}

fn route() -> impl Strategy<Value = Route> {
    prop::sample::select(Route::ALL.to_vec())
}

/// The value at an error's `field` path (`data.visits[1].visit_id`) in a body.
fn at<'a>(body: &'a Value, field: &str) -> Option<&'a Value> {
    let mut v = body;
    for part in field.split('.') {
        let (name, rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        v = v.get(name)?;
        for index in rest.split('[').filter(|s| !s.is_empty()) {
            v = v.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(v)
}

/// What every answer of the parser holds to: no panic (the runner catches one as a failure), and
/// a refusal that is a 400 with a code and a message, whose field, when it names one, is where the
/// body is wrong.
fn check_parse(route: Route, body: &[u8]) -> Result<(), TestCaseError> {
    let Err(e) = wire::parse_event(route, body, "EGP") else { return Ok(()) };
    prop_assert_eq!(e.status, 400, "{:?}", e);
    prop_assert!(!e.message.is_empty());
    prop_assert!(
        [ErrorCode::InvalidJson, ErrorCode::InvalidEnvelope, ErrorCode::UnknownType, ErrorCode::MissingField, ErrorCode::InvalidField]
            .contains(&e.code),
        "{:?}",
        e
    );
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match (e.code, &e.field, &parsed) {
        (ErrorCode::MissingField, Some(field), Some(v)) => {
            let (parent, leaf) = field.rsplit_once('.').map_or(("", field.as_str()), |(p, l)| (p, l));
            let parent = if parent.is_empty() { Some(v) } else { at(v, parent) };
            prop_assert!(parent.is_some_and(|p| p.is_object() && p.get(leaf).is_none_or(Value::is_null)), "{:?} in {}", e, v);
        }
        (ErrorCode::InvalidField | ErrorCode::UnknownType, Some(field), Some(v)) => {
            prop_assert!(at(v, field).is_some(), "{:?} names no field of {}", e, v);
        }
        (ErrorCode::MissingField | ErrorCode::InvalidField | ErrorCode::UnknownType, None, _) => {
            prop_assert!(false, "{:?} names no field", e);
        }
        _ => {}
    }
    Ok(())
}

/// Small JSON values, hostile ones among them.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(vec![0i64, -1, 1, 100, 101, i64::MAX, i64::MIN, u32::MAX as i64, u32::MAX as i64 + 1]).prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        "[\\x00-\\x1f\\x7f-\\u{9f} ]{1,4}".prop_map(Value::from),
        prop::sample::select(vec![
            "",
            " ",
            "A-1001",
            "P-77",
            "V-1",
            "o1-O-501",
            "+201001234567",
            "EGP",
            "egp",
            "2026-03-05T14:00:00+02:00",
            "2026-03-05T14:00:00",
            "2026-02-30T10:00:00Z",
            "9999-12-31T23:59:59Z",
            "0000-01-01T00:00:00Z",
            "2026-03-09",
            "answered",
            "rebooked",
            "will_pay",
            "painting",
            "appointment.booked",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}|id|type|data|kind|amount|currency", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One change to an envelope.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replaces the n-th node (pre-order) with a value.
    Replace(usize, Value),
    /// Removes the n-th object member.
    Remove(usize),
    /// Adds a member to the n-th object.
    Insert(usize, String, Value),
    /// Writes the n-th key a second time just before itself (text level).
    DuplicateKey(usize),
    /// Byte-level changes of the serialized body.
    Flip(usize, u8),
    InsertBytes(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), json_value()).prop_map(|(n, v)| Mutation::Replace(n, v)),
        2 => any::<usize>().prop_map(Mutation::Remove),
        1 => (any::<usize>(), "[a-z_]{1,12}", json_value()).prop_map(|(n, k, v)| Mutation::Insert(n, k, v)),
        1 => any::<usize>().prop_map(Mutation::DuplicateKey),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(n, b)| Mutation::Flip(n, b)),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(n, b)| Mutation::InsertBytes(n, b)),
        1 => (any::<usize>(), 1usize..16).prop_map(|(n, l)| Mutation::Delete(n, l)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// A node's JSON pointer and whether it is an object.
type Node = (String, bool);

/// The JSON pointer of every node of a value, with whether it is an object.
fn pointers(v: &Value, at: String, out: &mut Vec<Node>) {
    out.push((at.clone(), v.is_object()));
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| pointers(x, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out)),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| pointers(x, format!("{at}/{i}"), out)),
        _ => {}
    }
}

fn apply(body: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let as_json = |f: &dyn Fn(&mut Value, &[Node])| -> Vec<u8> {
        match serde_json::from_slice::<Value>(&body) {
            Ok(mut v) => {
                let mut all = Vec::new();
                pointers(&v, String::new(), &mut all);
                f(&mut v, &all);
                serde_json::to_vec(&v).unwrap()
            }
            Err(_) => body.clone(),
        }
    };
    match m {
        Mutation::Replace(n, new) => as_json(&|v, all| {
            let (p, _) = &all[n % all.len()];
            *v.pointer_mut(p).unwrap() = new.clone();
        }),
        Mutation::Remove(n) | Mutation::Insert(n, ..) => as_json(&|v, all| {
            let objects: Vec<&String> = all.iter().filter(|(_, o)| *o).map(|(p, _)| p).collect();
            let Some(p) = objects.get(n % objects.len().max(1)) else { return };
            let Some(Value::Object(o)) = v.pointer_mut(p) else { return };
            match m {
                Mutation::Remove(sel) if !o.is_empty() => {
                    let key = o.keys().nth(sel % o.len()).unwrap().clone();
                    o.remove(&key);
                }
                Mutation::Insert(_, key, value) => {
                    o.insert(key.clone(), value.clone());
                }
                _ => {}
            }
        }),
        Mutation::DuplicateKey(n) => {
            let text = String::from_utf8_lossy(&body).into_owned();
            let keys: Vec<usize> = text.match_indices("\":").map(|(i, _)| i).collect();
            let Some(&end) = keys.get(n % keys.len().max(1)) else { return body };
            let Some(start) = text[..end].rfind(['{', ',']) else { return body };
            let member_end = text[end..].find([',', '}']).map_or(text.len(), |i| end + i);
            let member = &text[start + 1..member_end];
            let mut out = text[..start + 1].to_string();
            out.push_str(member);
            out.push(',');
            out.push_str(&text[start + 1..]);
            out.into_bytes()
        }
        Mutation::Flip(n, b) => {
            let mut out = body.clone();
            if !out.is_empty() {
                let i = n % out.len();
                out[i] ^= b | 1;
            }
            out
        }
        Mutation::InsertBytes(n, bytes) => {
            let mut out = body.clone();
            let i = n % (out.len() + 1);
            out.splice(i..i, bytes.iter().copied());
            out
        }
        Mutation::Delete(n, len) => {
            let mut out = body.clone();
            if !out.is_empty() {
                let i = n % out.len();
                out.drain(i..(i + len).min(body.len()));
            }
            out
        }
        Mutation::Truncate(n) => body[..n % (body.len() + 1)].to_vec(),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic_and_are_refused_with_a_400(route in route(), body in prop::collection::vec(any::<u8>(), 0..512)) {
        check_parse(route, &body)?;
    }

    #[test]
    fn random_json_envelopes_never_panic(
        route in route(),
        kind in prop::sample::select(Route::ALL.iter().flat_map(|r| r.event_types().iter().copied()).collect::<Vec<_>>()),
        id in json_value(),
        occurred_at in json_value(),
        data in json_value(),
    ) {
        let body = serde_json::to_vec(&json!({"id": id, "type": kind, "occurred_at": occurred_at, "data": data})).unwrap();
        check_parse(route, &body)?;
    }

    #[test]
    fn mutated_samples_never_panic_and_name_the_field_at_fault(
        sample in 0usize..64,
        other_route in prop::option::weighted(0.1, route()),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let (route, body) = &samples()[sample % samples().len()];
        let mut body = body.clone();
        for m in &mutations {
            body = apply(body, m);
        }
        check_parse(other_route.unwrap_or(*route), &body)?;
    }

    #[test]
    fn a_signature_verifies_for_its_exact_body_timestamp_and_secret_only(
        // A secret setting is comma-separated and trimmed (rotation): one secret, not blank.
        secret in "[!-+\\--~][ -+\\--~]{0,39}",
        ts in prop_oneof![any::<i64>(), 1_500_000_000i64..2_500_000_000, Just(i64::MIN), Just(i64::MAX), Just(0)],
        skew in -300i64..=300,
        body in prop::collection::vec(any::<u8>(), 0..256),
        change in prop::option::of((any::<usize>(), any::<u8>())),
    ) {
        let sig = wire::sign(&secret, ts, &body);
        let now = ts.saturating_add(skew);
        let mut other = body.clone();
        if let Some((at, b)) = change {
            if other.is_empty() { other.push(b) } else { let i = at % other.len(); other[i] ^= b | 1 }
        }
        let verdict = wire::verify_signature(&secret, Some(&ts.to_string()), Some(&sig), &other, now);
        prop_assert_eq!(verdict.is_ok(), other == body, "{:?}", verdict);
        // Another timestamp or another secret with the same signature never verifies.
        let moved = ts.wrapping_add(1);
        prop_assert!(wire::verify_signature(&secret, Some(&moved.to_string()), Some(&sig), &body, moved).is_err());
        let another = secret.clone() + "x";
        prop_assert!(wire::verify_signature(&another, Some(&ts.to_string()), Some(&sig), &body, now).is_err());
        // Outside the window it never verifies, whatever the distance.
        if let Some(far) = ts.checked_add(skew.signum() * 301 + if skew == 0 { 301 } else { 0 }) {
            prop_assert!(wire::verify_signature(&secret, Some(&ts.to_string()), Some(&sig), &body, far).is_err());
        }
    }

    #[test]
    fn any_headers_and_clock_never_panic(
        timestamp in prop::option::of(prop_oneof![
            "[-+ 0-9]{0,24}",
            any::<i64>().prop_map(|t| t.to_string()),
            Just(i64::MIN.to_string()),
            Just(i64::MAX.to_string()),
            ".{0,24}",
        ]),
        signature in prop::option::of(prop_oneof!["v1=[0-9a-fA-F]{0,70}", ".{0,80}", "v1=.{0,70}"]),
        now in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), 1_500_000_000i64..2_500_000_000],
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        match wire::verify_signature("local-dev-secret", timestamp.as_deref(), signature.as_deref(), &body, now) {
            Ok(()) => prop_assert!(false, "a made-up signature verified"),
            Err(e) => {
                prop_assert_eq!((e.status, e.code), (401, ErrorCode::Unauthorized));
                prop_assert!(!e.message.is_empty());
            }
        }
    }
}
