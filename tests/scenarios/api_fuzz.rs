//! A property-based fuzz run of followup-local's HTTP API driven by `docs/openapi.json`: envelopes
//! generated from each route's schemas (valid ones, near misses with one field changed, and broken
//! bytes), posted signed (a few with a bad signature), case lookups with generated ids, and clock
//! moves that fire the timers those events placed. Every answer: no 5xx, a documented status with
//! its documented body, the error body with a code and a message on every 4xx; and the schemas
//! hold to what the engine does: a body the schema accepts is not refused as malformed (but for
//! the cross-field checks the document names), and one it refuses is a 400.
//!
//! Bounded: `FOLLOWUP_FUZZ_CASES` cases (10,000 by default) or `FOLLOWUP_FUZZ_SECS` seconds (40),
//! whichever ends first; `make fuzz` runs a long form. It prints how many cases it ran.

mod doc;

use doc::{check_answer, Doc};
use followup::wire::{self, Route};
use followup_tests::{Local, SECRET};
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const START: &str = "2026-03-02T10:00:00+02:00";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Ids the generator prefers for a property, so events meet the subjects earlier ones made.
fn pool(property: &str, cases: &[String]) -> Vec<String> {
    let v: &[&str] = match property {
        "appointment_id" => &["A-1001", "A-2001", "A-2002", "A-2003"],
        "order_id" => &["O-501", "O-601", "O-602"],
        "package_id" => &["P-77", "P-88", "P-99"],
        "visit_id" => &["V-1", "V-2", "V-3", "V-4", "V-5"],
        "technician_id" => &["T-12", "T-13"],
        "agent_id" => &["agent-7"],
        "call_id" => &["K-1", "K-2", "K-3"],
        "id" => &["C-88", "C-89"],
        "case_id" => return cases.iter().cloned().chain(["o1-O-601".to_string(), "o1-O-602".to_string()]).collect(),
        _ => &[],
    };
    v.iter().map(|s| s.to_string()).collect()
}

/// Strategies for JSON values from the document's schemas.
struct Gen<'a> {
    doc: &'a Doc,
    cases: Vec<String>,
}

impl Gen<'_> {
    fn value(&self, schema: &Value, property: &str) -> BoxedStrategy<Value> {
        let schema = self.doc.resolve(schema);
        if let Some(c) = schema.get("const") {
            return Just(c.clone()).boxed();
        }
        if let Some(Value::Array(options)) = schema.get("enum") {
            return prop::sample::select(options.clone()).boxed();
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(alternatives)) = schema.get(key) {
                return Union::new(alternatives.iter().map(|a| self.value(a, property))).boxed();
            }
        }
        match schema.get("type") {
            Some(Value::Array(types)) => Union::new(types.iter().map(|t| self.of_type(t.as_str().unwrap(), schema, property))).boxed(),
            Some(Value::String(t)) => self.of_type(t, schema, property),
            _ => panic!("a schema the generator does not know: {schema}"),
        }
    }

    fn of_type(&self, t: &str, schema: &Value, property: &str) -> BoxedStrategy<Value> {
        match t {
            "null" => Just(Value::Null).boxed(),
            "boolean" => any::<bool>().prop_map(Value::from).boxed(),
            "integer" => {
                let min = schema["minimum"].as_i64().unwrap_or(i64::MIN);
                let max = schema["maximum"].as_i64().or(schema["maximum"].as_u64().map(|_| i64::MAX)).unwrap_or(i64::MAX);
                let small_max = max.min(min.saturating_add(10));
                prop_oneof![
                    4 => min..=small_max,
                    1 => min..=max,
                    1 => prop::sample::select(vec![min, max]),
                ]
                .prop_map(Value::from)
                .boxed()
            }
            "string" => self.string(schema, property),
            "array" => {
                let min = schema["minItems"].as_u64().unwrap_or(0) as usize;
                prop::collection::vec(self.value(&schema["items"], property), min..=min + 4).prop_map(Value::Array).boxed()
            }
            "object" => {
                let required: Vec<&str> =
                    schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
                let members: Vec<BoxedStrategy<Option<(String, Value)>>> = schema["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, s)| {
                        let key = name.clone();
                        let member = self.value(s, name).prop_map(move |v| (key.clone(), v));
                        if required.contains(&name.as_str()) {
                            member.prop_map(Some).boxed()
                        } else {
                            prop::option::weighted(0.6, member).boxed()
                        }
                    })
                    .collect();
                members.prop_map(|m| Value::Object(m.into_iter().flatten().collect())).boxed()
            }
            other => panic!("type {other}"),
        }
    }

    fn string(&self, schema: &Value, property: &str) -> BoxedStrategy<Value> {
        match schema["format"].as_str() {
            Some("date-time") => return time().prop_map(Value::from).boxed(),
            Some("date") => {
                return (2020i32..2031, 1u32..13, 1u32..29).prop_map(|(y, m, d)| Value::from(format!("{y:04}-{m:02}-{d:02}"))).boxed()
            }
            _ => {}
        }
        let mut options: Vec<(u32, BoxedStrategy<String>)> = Vec::new();
        let pooled = pool(property, &self.cases);
        if !pooled.is_empty() {
            options.push((8, prop::sample::select(pooled).boxed()));
        }
        if let Some(Value::Array(examples)) = schema.get("examples") {
            options
                .push((3, prop::sample::select(examples.iter().filter_map(|e| e.as_str().map(str::to_owned)).collect::<Vec<_>>()).boxed()));
        }
        if let Some(pattern) = schema["pattern"].as_str() {
            let unanchored = pattern.trim_start_matches('^').trim_end_matches('$');
            let generated = proptest::string::string_regex(unanchored).unwrap_or_else(|e| panic!("pattern {pattern}: {e}"));
            options.push((1, generated.boxed()));
            options.push((2, "[A-Za-z][A-Za-z0-9 ._-]{0,15}".boxed()));
        } else {
            options.push((2, ".{0,24}".boxed()));
            options.push((1, Just(String::new()).boxed()));
        }
        let (min, max) = (schema["minLength"].as_u64().unwrap_or(0) as usize, schema["maxLength"].as_u64().unwrap_or(u64::MAX) as usize);
        Union::new_weighted(options)
            .prop_map(move |s| {
                let n = s.chars().count();
                if n < min {
                    format!("{s}{}", "x".repeat(min - n))
                } else if n > max {
                    s.chars().take(max).collect()
                } else {
                    s
                }
            })
            .prop_map(Value::from)
            .boxed()
    }
}

/// RFC 3339 times around the story's days, in several offsets.
fn time() -> impl Strategy<Value = String> {
    (0i64..40 * 24 * 4, prop::sample::select(vec!["+02:00", "Z", "+03:00", "-05:00", "+00:00"]), prop::bool::weighted(0.1)).prop_map(
        |(quarter_hours, offset, fraction)| {
            let t = chrono::DateTime::parse_from_rfc3339("2026-02-28T00:00:00Z").unwrap() + chrono::Duration::minutes(15 * quarter_hours);
            let tz = if offset == "Z" { chrono::FixedOffset::east_opt(0).unwrap() } else { offset.parse().unwrap() };
            let local = t.with_timezone(&tz);
            let mut s = local.format("%Y-%m-%dT%H:%M:%S").to_string();
            if fraction {
                s.push_str(".250");
            }
            s.push_str(offset);
            s
        },
    )
}

/// Small JSON values, hostile ones among them.
fn hostile() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![0.5, 1.0, -0.0, 1e300, 45000.0]).prop_map(Value::from),
        prop::sample::select(vec![0i64, -1, 1, 100, 101, i64::MAX, i64::MIN, u32::MAX as i64, u32::MAX as i64 + 1]).prop_map(Value::from),
        ".{0,30}".prop_map(Value::from),
        "[\\x00-\\x1f\\x7f-\\u{9f} ]{1,3}".prop_map(Value::from),
        Just(Value::from("x".repeat(129))),
        prop::sample::select(vec![
            "",
            " ",
            "\u{3000}",
            "A-1001",
            "P-77",
            "V-1",
            "o1-O-501",
            "+201001234567",
            "+0201001234567",
            "EGP",
            "egp",
            "2026-03-05T14:00:00+02:00",
            "2026-03-05T14:00:00",
            "2026-03-05 14:00:00+02:00",
            "2026-03-05t14:00:00z",
            "2026-02-30T10:00:00Z",
            "2026-03-05T23:59:60Z",
            "9999-12-31T23:59:59Z",
            "0000-01-01T00:00:00Z",
            "2026-03-09",
            "2026-3-9",
            "answered",
            "unreported",
            "rebooked",
            "will_pay",
            "painting",
            "appointment.booked",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}|kind|amount|currency|window_start", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A change to a generated envelope.
#[derive(Debug, Clone)]
enum Change {
    None,
    /// Replaces the n-th node (pre-order) with a value.
    Replace(usize, Value),
    /// Removes a member of the n-th object.
    Remove(usize, usize),
    /// Adds a member to the n-th object.
    Insert(usize, String, Value),
    /// Another event type (of any route) over the same data.
    Retype(String),
    /// Byte-level: flip, insert, delete, truncate, or a key written twice.
    Flip(usize, u8),
    InsertBytes(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    DuplicateKey(usize),
}

impl Change {
    fn is_json_level(&self) -> bool {
        matches!(self, Change::None | Change::Replace(..) | Change::Remove(..) | Change::Insert(..) | Change::Retype(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Signing {
    Good,
    WrongSecret,
    Stale,
    Missing,
}

#[derive(Debug, Clone)]
enum Step {
    Post { route: Route, to: Route, envelope: Value, change: Change, signing: Signing },
    GetCase(String),
    ListCases(String, String),
    Clock(u32),
}

fn all_types() -> Vec<String> {
    Route::ALL.iter().flat_map(|r| r.event_types().iter().map(|s| s.to_string())).collect()
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        10 => Just(Change::None),
        5 => (any::<usize>(), hostile()).prop_map(|(n, v)| Change::Replace(n, v)),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(n, k)| Change::Remove(n, k)),
        1 => (any::<usize>(), "[a-z_]{1,10}", hostile()).prop_map(|(n, k, v)| Change::Insert(n, k, v)),
        1 => prop::sample::select(all_types()).prop_map(Change::Retype),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(n, b)| Change::Flip(n, b)),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..6)).prop_map(|(n, b)| Change::InsertBytes(n, b)),
        1 => (any::<usize>(), 1usize..12).prop_map(|(n, l)| Change::Delete(n, l)),
        1 => any::<usize>().prop_map(Change::Truncate),
        1 => any::<usize>().prop_map(Change::DuplicateKey),
    ]
}

/// Makes a generated envelope pass the checks the schemas cannot express (window order, unique
/// visit ids, a resolution only on an answered call), so more of them reach the engine.
fn fix(mut e: Value) -> Value {
    fn order(v: &mut Value) {
        let parse = |v: &Value| v.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
        if let (Some(start), Some(end)) = (parse(&v["window_start"]), parse(&v["window_end"])) {
            if end <= start {
                v["window_end"] = json!((start + chrono::Duration::hours(2)).to_rfc3339());
            }
        }
    }
    let d = &mut e["data"];
    order(d);
    if let Some(r) = d.get_mut("resolution") {
        if r.is_object() {
            order(r);
        }
    }
    if let Some(Value::Array(visits)) = d.get_mut("visits") {
        for (i, v) in visits.iter_mut().enumerate() {
            if let Some(Value::String(id)) = v.get_mut("visit_id") {
                *id = format!("{}-{i}", id.chars().take(120).collect::<String>());
            }
        }
    }
    if d.get("resolution").is_some_and(|r| !r.is_null()) {
        d["outcome"] = json!("answered");
    }
    e
}

/// The JSON pointer of every node, with whether it is an object.
fn pointers(v: &Value, at: String, out: &mut Vec<(String, bool)>) {
    out.push((at.clone(), v.is_object()));
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| pointers(x, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out)),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| pointers(x, format!("{at}/{i}"), out)),
        _ => {}
    }
}

/// The body a case posts and, for a JSON-level change, the JSON it is.
fn body_of(envelope: &Value, change: &Change) -> (Vec<u8>, Option<Value>) {
    let mut v = envelope.clone();
    let mut all = Vec::new();
    pointers(&v, String::new(), &mut all);
    let objects: Vec<&String> = all.iter().filter(|(_, o)| *o).map(|(p, _)| p).collect();
    match change {
        Change::Replace(n, new) => *v.pointer_mut(&all[n % all.len()].0).unwrap() = new.clone(),
        Change::Remove(n, k) => {
            if let Some(Value::Object(o)) = v.pointer_mut(objects[n % objects.len()]) {
                if !o.is_empty() {
                    let key = o.keys().nth(k % o.len()).unwrap().clone();
                    o.remove(&key);
                }
            }
        }
        Change::Insert(n, key, new) => {
            if let Some(Value::Object(o)) = v.pointer_mut(objects[n % objects.len()]) {
                o.insert(key.clone(), new.clone());
            }
        }
        Change::Retype(kind) => v["type"] = json!(kind),
        _ => {}
    }
    let bytes = serde_json::to_vec(&v).unwrap();
    if change.is_json_level() {
        return (bytes, Some(v));
    }
    let mut b = bytes;
    match change {
        Change::Flip(n, x) => {
            let i = n % b.len();
            b[i] ^= x | 1;
        }
        Change::InsertBytes(n, x) => {
            let i = n % (b.len() + 1);
            b.splice(i..i, x.iter().copied());
        }
        Change::Delete(n, l) => {
            let i = n % b.len();
            let end = (i + l).min(b.len());
            b.drain(i..end);
        }
        Change::Truncate(n) => b.truncate(n % b.len()),
        Change::DuplicateKey(n) => {
            let text = String::from_utf8(b.clone()).unwrap();
            let keys: Vec<usize> = text.match_indices("\":").map(|(i, _)| i).collect();
            let end = keys[n % keys.len()];
            let start = text[..end].rfind(['{', ',']).unwrap();
            let member_end = text[end..].find([',', '}']).map_or(text.len(), |i| end + i);
            b = format!("{}{},{}", &text[..start + 1], &text[start + 1..member_end], &text[start + 1..]).into_bytes();
        }
        _ => unreachable!(),
    }
    (b, None)
}

/// Percent-encodes a path segment or query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// A 400 the schemas cannot foresee: a window in the wrong order, a visit id twice.
fn cross_field(error: &Value) -> bool {
    let field = error["field"].as_str().unwrap_or_default();
    // R9.7 (v3) an `occurred_at` ahead of the engine's clock depends on the clock, not the document.
    let future = field == "occurred_at" && error["rule"] == "R9.7";
    future || field.ends_with("window_end") || (field.starts_with("data.visits[") && field.ends_with("].visit_id"))
}

#[derive(Default)]
struct Stats {
    ran: usize,
    by_kind: BTreeMap<&'static str, usize>,
    by_status: BTreeMap<u16, usize>,
    schema_valid_accepted: usize,
}

#[test]
fn the_api_holds_to_its_document_under_generated_input() {
    let cases = env_or("FOLLOWUP_FUZZ_CASES", 10_000u32);
    let budget = Duration::from_secs(env_or("FOLLOWUP_FUZZ_SECS", 40u64));
    let doc = Doc::load();
    let l = Local::virtual_at(START);
    // The story of events/ first, so generated events meet existing subjects and cases.
    for (_, v) in followup_tests::samples() {
        let route = Route::ALL.into_iter().find(|r| r.event_types().contains(&v["type"].as_str().unwrap())).unwrap();
        l.post_signed(route.path(), &serde_json::to_vec(&v).unwrap());
    }
    let mut known: Vec<String> = Vec::new();
    for q in ["order_id=O-501", "package_id=P-77", "appointment_id=A-1001"] {
        for c in l.get(&format!("/v1/cases?{q}")).1["cases"].as_array().unwrap() {
            known.push(c["case_id"].as_str().unwrap().to_string());
        }
    }
    assert!(!known.is_empty());
    let generator = Gen { doc: &doc, cases: known.clone() };

    let posts: Vec<BoxedStrategy<(Route, Value)>> = Route::ALL
        .into_iter()
        .flat_map(|route| {
            doc.event_schemas(route.path())
                .into_iter()
                .map(|(_, name)| {
                    let envelope = generator.value(&json!({"$ref": format!("#/components/schemas/{name}")}), "");
                    envelope.prop_map(move |e| (route, e)).boxed()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let id = prop_oneof![8 => any::<u64>().prop_map(|n| format!("fz-{n:x}")), 1 => Just("evt-01-appointment.booked".to_string()), 1 => Just("fz-same".to_string())];
    let post = (
        Union::new(posts),
        id,
        prop::option::weighted(0.04, prop::sample::select(Route::ALL.to_vec())),
        change(),
        prop_oneof![
            30 => Just(Signing::Good),
            1 => Just(Signing::WrongSecret),
            1 => Just(Signing::Stale),
            1 => Just(Signing::Missing),
        ],
    )
        .prop_map(|((route, envelope), id, other, change, signing)| {
            let mut envelope = fix(envelope);
            envelope["id"] = json!(id);
            Step::Post { route, to: other.unwrap_or(route), envelope, change, signing }
        });
    let case_id = prop_oneof![
        4 => prop::sample::select(known.clone()).prop_map(|c| encode(&c)),
        2 => ".{0,20}".prop_map(|s| encode(&s)),
        1 => prop::sample::select(vec!["%FF", "%E2%82", "%00", "a%2Fb", "%C0%AF", "o1-O-501%20", "x".repeat(300).leak()]).prop_map(str::to_owned),
    ];
    let query = (
        prop::sample::select(vec!["appointment_id", "order_id", "package_id", "case_id", ""]),
        prop_oneof![prop::sample::select(vec!["A-1001", "O-501", "P-77", "A-2001", "O-601", "P-88"]).prop_map(str::to_owned), ".{0,12}"],
    );
    let strategy = prop_oneof![
        90 => post,
        5 => case_id.prop_map(Step::GetCase),
        3 => query.prop_map(|(k, v)| Step::ListCases(k.to_string(), v)),
        2 => (10u32..3 * 24 * 60).prop_map(Step::Clock),
    ];

    let stats = Mutex::new(Stats::default());
    let deadline = Instant::now() + budget;
    let started = Instant::now();
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, max_shrink_iters: 64, ..Config::default() });
    let result = runner.run(&strategy, |step| {
        if Instant::now() > deadline {
            return Ok(());
        }
        run(&l, &doc, step, &stats)
    });
    let stats = stats.into_inner().unwrap();
    let line = format!(
        "api fuzz: {} cases in {:.1} s (of {cases}, budget {} s): {:?}; answers {:?}; {} schema-valid envelopes accepted (202)\n",
        stats.ran,
        started.elapsed().as_secs_f64(),
        budget.as_secs(),
        stats.by_kind,
        stats.by_status,
        stats.schema_valid_accepted,
    );
    // Straight to stderr so that it shows in `make test` too.
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Err(e) = result {
        panic!("{e}");
    }
    assert_eq!(l.get("/local/clock").0, 200, "still serving");
    assert!(stats.ran >= 50.min(cases as usize), "ran {}", stats.ran);
}

fn run(l: &Local, doc: &Doc, step: Step, stats: &Mutex<Stats>) -> Result<(), TestCaseError> {
    let count = |kind: &'static str, status: u16| {
        let mut s = stats.lock().unwrap();
        s.ran += 1;
        *s.by_kind.entry(kind).or_default() += 1;
        *s.by_status.entry(status).or_default() += 1;
    };
    match step {
        Step::Post { route, to, envelope, change, signing } => {
            let (body, json) = body_of(&envelope, &change);
            let now = chrono::Utc::now().timestamp();
            let headers: Vec<(&str, String)> = match signing {
                Signing::Good => vec![("x-timestamp", now.to_string()), ("x-signature", wire::sign(SECRET, now, &body))],
                Signing::WrongSecret => vec![("x-timestamp", now.to_string()), ("x-signature", wire::sign("not-the-secret", now, &body))],
                Signing::Stale => vec![("x-timestamp", (now - 400).to_string()), ("x-signature", wire::sign(SECRET, now - 400, &body))],
                Signing::Missing => vec![],
            };
            let (status, answer) = l.post_raw(to.path(), &body, &headers);
            let kind = match (&signing, &change) {
                (Signing::Good, Change::None) if to == route => "valid",
                (Signing::Good, c) if c.is_json_level() => "near-valid",
                (Signing::Good, _) => "broken",
                _ => "unsigned",
            };
            count(kind, status);
            prop_assert!(status < 500, "POST {} answered {}: {}\n{}", to.path(), status, answer, String::from_utf8_lossy(&body));
            if let Err(e) = check_answer(doc, "POST", to.path(), status, &answer) {
                prop_assert!(false, "{}\n{}", e, String::from_utf8_lossy(&body));
            }
            if signing != Signing::Good {
                prop_assert_eq!(status, 401, "{}", answer);
                return Ok(());
            }
            // The schema and the engine agree on what is malformed.
            if let Some(sent) = json {
                let schema = doc.envelope_schema(to.path());
                let errors: Vec<_> =
                    doc.validator(&schema).iter_errors(&sent).map(|e| (e.to_string(), format!("{:?}", e.kind()))).collect();
                if errors.is_empty() {
                    prop_assert!(
                        status != 400 || cross_field(&answer["error"]),
                        "the schema takes it, the engine refuses it as malformed: {}\n{}",
                        answer,
                        sent
                    );
                    if status == 202 {
                        stats.lock().unwrap().schema_valid_accepted += 1;
                    }
                } else if !errors.iter().all(|(_, kind)| kind.starts_with("Format")) {
                    prop_assert_eq!(status, 400, "the schema refuses it ({:?}), the engine answered {}\n{}", errors, answer, sent);
                }
            }
        }
        Step::GetCase(segment) => {
            let (status, answer) = l.get(&format!("/v1/cases/{segment}"));
            count("get-case", status);
            prop_assert!(status < 500, "GET /v1/cases/{} answered {}: {}", segment, status, answer);
            if let Err(e) = check_answer(doc, "GET", "/v1/cases/{case_id}", status, &answer) {
                prop_assert!(false, "GET /v1/cases/{}: {}", segment, e);
            }
        }
        Step::ListCases(key, value) => {
            let (status, answer) = l.get(&format!("/v1/cases?{key}={}", encode(&value)));
            count("list-cases", status);
            prop_assert!(status < 500, "{}", answer);
            if let Err(e) = check_answer(doc, "GET", "/v1/cases", status, &answer) {
                prop_assert!(false, "GET /v1/cases?{}={}: {}", key, value, e);
            }
        }
        Step::Clock(minutes) => {
            let (status, answer) = l.post_raw("/local/clock", json!({"advance_secs": minutes * 60}).to_string().as_bytes(), &[]);
            count("clock", status);
            prop_assert_eq!(status, 200, "moving the clock {} min fired a timer that failed: {}", minutes, answer);
            if let Err(e) = check_answer(doc, "POST", "/local/clock", status, &answer) {
                prop_assert!(false, "{}", e);
            }
        }
    }
    Ok(())
}
