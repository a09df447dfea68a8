//! The wire contract of SPEC §5: routes, signature, envelope, validation, error bodies and views.

use crate::domain::calendar::Calendar;
use crate::domain::case::CallOutcome;
use crate::domain::effects::{Command, Sms};
pub use crate::domain::events::Route;
use crate::domain::events::{
    AppointmentAssigned, AppointmentBooked, AppointmentCancelled, AppointmentCompleted, AppointmentEvent, AppointmentRescheduled,
    CaseEvent, CaseReopen, Event, EventBody, PackageBooked, PackageCancelled, PackageEvent, PackagePaid, RescheduleRequested, Resolution,
    VisitCancelled, VisitCompleted, VisitRescheduled,
};
use crate::domain::money::Money;
use crate::domain::playbooks::Case;
use crate::domain::{ErrorCode, Refusal, RefusalKind};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Accepted distance between `X-Timestamp` and the real wall clock.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;
pub const DEFAULT_LOCAL_SECRET: &str = "local-dev-secret";
/// The largest money amount taken, in minor units: far above any job, and far enough below
/// i64::MAX that markups, tax and sums of the money rules never overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;
/// The longest painting job taken, in days (its per-day prices and blocked days are listed).
pub const MAX_PAINTING_DAYS: u32 = 365;

impl Route {
    pub const ALL: [Route; 4] = [Route::Appointments, Route::Cancellations, Route::Calls, Route::Packages];

    pub fn path(self) -> &'static str {
        match self {
            Route::Appointments => "/v1/appointments",
            Route::Cancellations => "/v1/cancellations",
            Route::Calls => "/v1/calls",
            Route::Packages => "/v1/packages",
        }
    }

    pub fn from_path(path: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.path() == path.trim_end_matches('/'))
    }
}

/// A refused request: status and the SPEC error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct WireError {
    pub status: u16,
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    pub rule: Option<String>,
}

impl WireError {
    pub fn new(status: u16, code: ErrorCode, message: impl Into<String>) -> Self {
        WireError { status, code, message: message.into(), field: None, rule: None }
    }
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    /// The rule the refusal cites.
    pub fn cite(mut self, rule: &str) -> Self {
        self.rule = Some(rule.into());
        self
    }
    fn bad(code: ErrorCode, message: impl Into<String>, field: impl Into<String>) -> Self {
        WireError::new(400, code, message).at(field)
    }
    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message, "field": self.field, "rule": self.rule}})
    }
}

impl From<Refusal> for WireError {
    fn from(r: Refusal) -> Self {
        let status = match r.kind {
            RefusalKind::Invalid => 400,
            RefusalKind::NotFound => 404,
            RefusalKind::Rule => 422,
        };
        WireError { status, code: r.code, message: r.message, field: r.field, rule: r.rule.map(Into::into) }
    }
}

/// Checks `X-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>` and the ±300 s window
/// against the real wall clock (`now_unix`).
pub fn verify_signature(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), WireError> {
    let unauthorized = |m: &str| WireError::new(401, ErrorCode::Unauthorized, m);
    let ts_text = timestamp.ok_or_else(|| unauthorized("missing X-Timestamp header"))?;
    let sig = signature.ok_or_else(|| unauthorized("missing X-Signature header"))?;
    let ts: i64 = ts_text.trim().parse().map_err(|_| unauthorized("X-Timestamp is not unix seconds"))?;
    // abs_diff: a timestamp near i64::MIN or MAX would overflow `now - ts`.
    if now_unix.abs_diff(ts) > SIGNATURE_TOLERANCE_SECS.unsigned_abs() {
        return Err(unauthorized("X-Timestamp is outside the accepted window of 300 seconds"));
    }
    let hex_sig = sig.trim().strip_prefix("v1=").ok_or_else(|| unauthorized("X-Signature must be v1=<hex>"))?;
    let given = hex::decode(hex_sig).map_err(|_| unauthorized("X-Signature is not hex"))?;
    // Rotation: the setting may hold the new and the old secret, comma-separated; either verifies.
    // `verify_slice` (the hmac crate, through `subtle`) compares in constant time.
    let matches = |key: &str| {
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).is_ok_and(|mut mac| {
            mac.update(ts_text.trim().as_bytes());
            mac.update(b".");
            mac.update(body);
            mac.verify_slice(&given).is_ok()
        })
    };
    if secrets(secret).any(matches) {
        Ok(())
    } else {
        Err(unauthorized("signature does not match"))
    }
}

/// The secrets a webhook secret setting holds: one, or two during a rotation (`new,old`).
pub fn secrets(setting: &str) -> impl Iterator<Item = &str> {
    setting.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The signature header value for a body (for clients, tests and the demo), with the first
/// secret of the setting (the new one during a rotation).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = secrets(secret).next().unwrap_or(secret);
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn body_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The 64 KiB body limit, checked before anything else is read.
pub fn check_size(body: &[u8]) -> Result<(), WireError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WireError::new(
            413,
            ErrorCode::PayloadTooLarge,
            format!("the body is {} bytes; the limit is {MAX_BODY_BYTES}", body.len()),
        ));
    }
    Ok(())
}

/// Parses and validates an envelope posted to `route` (its size already checked). A money
/// amount without `currency` is in `currency`, the policy's (SPEC §5 v2).
pub fn parse_event(route: Route, body: &[u8], currency: &str) -> Result<Event, WireError> {
    let value = parse_json(body)?;
    let Value::Object(mut envelope) = value else {
        return Err(WireError::new(400, ErrorCode::InvalidEnvelope, "the body must be a JSON object"));
    };
    let id = match envelope.get("id") {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 128 && !s.chars().any(char::is_control) => s.clone(),
        Some(Value::String(_)) => {
            return Err(WireError::bad(ErrorCode::InvalidField, "id must be 1 to 128 characters, none of them a control character", "id"))
        }
        Some(_) => return Err(WireError::bad(ErrorCode::InvalidField, "id must be a string", "id")),
        None => return Err(WireError::bad(ErrorCode::MissingField, "id is required", "id")),
    };
    let kind = match envelope.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(WireError::bad(ErrorCode::InvalidField, "type must be a string", "type")),
        None => return Err(WireError::bad(ErrorCode::MissingField, "type is required", "type")),
    };
    if !route.event_types().contains(&kind.as_str()) {
        return Err(WireError::bad(
            ErrorCode::UnknownType,
            format!("{kind:?} is not an event type of {}; expected one of: {}", route.path(), route.event_types().join(", ")),
            "type",
        ));
    }
    let occurred_at = match envelope.get("occurred_at") {
        Some(Value::String(s)) => crate::domain::events::parse_time(s)
            .ok_or_else(|| WireError::bad(ErrorCode::InvalidField, "occurred_at must be an RFC 3339 time with offset", "occurred_at"))?,
        Some(_) => return Err(WireError::bad(ErrorCode::InvalidField, "occurred_at must be a string", "occurred_at")),
        None => return Err(WireError::bad(ErrorCode::MissingField, "occurred_at is required", "occurred_at")),
    };
    let data = match envelope.remove("data") {
        Some(Value::Object(mut d)) => {
            default_currency(&mut d, currency);
            Value::Object(d)
        }
        Some(_) => return Err(WireError::bad(ErrorCode::InvalidField, "data must be an object", "data")),
        None => return Err(WireError::bad(ErrorCode::MissingField, "data is required", "data")),
    };
    let tagged = Value::Object(Map::from_iter([(kind.clone(), data)]));
    let body: EventBody = serde_path_to_error::deserialize(&tagged).map_err(|e| field_error(e, &kind, &tagged[&kind]))?;
    // serde reads a struct from an array only if that array holds something other than objects
    // (every struct's first field is a scalar): most events have none, and skip the re-encoding.
    if has_loose_array(&tagged[&kind]) {
        objects_are_objects(&serde_json::to_value(&body).map(|mut v| v[&kind].take()).unwrap_or_default(), &tagged[&kind], "data")?;
    }
    validate(&body)?;
    Ok(Event { id, occurred_at, body })
}

/// Parses a body as JSON, refusing an object that names a key twice: parsers differ on which one
/// counts, so such a body does not say one thing.
fn parse_json(body: &[u8]) -> Result<Value, WireError> {
    use serde::de::DeserializeSeed;
    let duplicate = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = Unique { at: &Segment::Root, duplicate: &duplicate }.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| match duplicate.into_inner() {
        Some(field) => {
            WireError::bad(ErrorCode::InvalidJson, format!("duplicate key: {field} appears more than once in its object"), field)
        }
        None => WireError::new(400, ErrorCode::InvalidJson, format!("the body is not valid JSON: {e}")),
    })
}

/// Where a JSON value sits, rendered only for an error (`data.visits[1].visit_id`).
enum Segment<'a> {
    Root,
    Key(&'a Segment<'a>, &'a str),
    Index(&'a Segment<'a>, usize),
}

impl std::fmt::Display for Segment<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Segment::Root => Ok(()),
            Segment::Key(Segment::Root, k) => f.write_str(k),
            Segment::Key(p, k) => write!(f, "{p}.{k}"),
            Segment::Index(p, i) => write!(f, "{p}[{i}]"),
        }
    }
}

/// A JSON value (serde_json's nesting limit applies) whose objects name each key once.
struct Unique<'a> {
    at: &'a Segment<'a>,
    duplicate: &'a std::cell::RefCell<Option<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Unique<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Unique<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Unique { at: &Segment::Index(self.at, items.len()), duplicate: self.duplicate })? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let at = Segment::Key(self.at, &key);
            if object.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(at.to_string());
                return Err(serde::de::Error::custom("duplicate key"));
            }
            let v = map.next_value_seed(Unique { at: &at, duplicate: self.duplicate })?;
            object.insert(key, v);
        }
        Ok(Value::Object(object))
    }
}

/// Whether `v` holds an array that is empty or has an element other than an object.
fn has_loose_array(v: &Value) -> bool {
    match v {
        Value::Array(items) => items.is_empty() || items.iter().any(|i| !i.is_object() || has_loose_array(i)),
        Value::Object(members) => members.values().any(has_loose_array),
        _ => false,
    }
}

/// serde takes a struct written as the array of its fields in order; on the wire an object is an
/// object. `canonical` is the parsed event written back, `given` what was sent.
fn objects_are_objects(canonical: &Value, given: &Value, path: &str) -> Result<(), WireError> {
    match (canonical, given) {
        (Value::Object(c), Value::Object(g)) => c
            .iter()
            .filter_map(|(k, cv)| g.get(k).map(|gv| (k, cv, gv)))
            .try_for_each(|(k, cv, gv)| objects_are_objects(cv, gv, &format!("{path}.{k}"))),
        (Value::Array(c), Value::Array(g)) => {
            c.iter().zip(g).enumerate().try_for_each(|(i, (cv, gv))| objects_are_objects(cv, gv, &format!("{path}[{i}]")))
        }
        (Value::Object(_), _) => Err(WireError::bad(ErrorCode::InvalidField, format!("{path} must be an object"), path)),
        _ => Ok(()),
    }
}

/// Gives the money amounts of an event's data (`price`, `painting.total_price`,
/// `painting.material_price`) the default currency when they name none.
fn default_currency(data: &mut Map<String, Value>, currency: &str) {
    let fill = |money: Option<&mut Value>| {
        if let Some(Value::Object(m)) = money {
            if matches!(m.get("currency"), None | Some(Value::Null)) {
                m.insert("currency".into(), Value::from(currency));
            }
        }
    };
    fill(data.get_mut("price"));
    if let Some(Value::Object(p)) = data.get_mut("painting") {
        fill(p.get_mut("total_price"));
        fill(p.get_mut("material_price"));
    }
}

fn field_error(e: serde_path_to_error::Error<serde_json::Error>, kind: &str, data: &Value) -> WireError {
    // The path starts at the event type's key; on the wire that object is `data`.
    let raw = e.path().to_string();
    let path = match raw.strip_prefix(kind) {
        Some(rest) => format!("data{rest}"),
        None => "data".to_string(),
    };
    let message = e.inner().to_string();
    // serde names a missing field in its message and points at the parent object (or at an array
    // it took for one, too short: that is no object at all).
    let parent = at_path(&mut data.clone(), e.path()).cloned();
    if message.starts_with("missing field `") && parent.as_ref().is_some_and(|p| !p.is_object()) {
        return WireError::bad(ErrorCode::InvalidField, format!("{path} must be an object"), path);
    }
    // serde reads an internally tagged enum (`resolution`) from a buffer and loses the path inside
    // it: the member at fault is the one whose absence is then all that is wrong. Its tag `kind`
    // comes last, as serde reports an absent tag before anything else. A resolution has at most
    // four members: an object stuffed with more is named as a whole rather than probed at length.
    if let (Some(Value::Object(members)), false) = (&parent, message.starts_with("missing field `")) {
        let members = if members.len() <= 16 { members.keys().collect() } else { Vec::new() };
        for key in members.iter().filter(|k| **k != "kind").chain(members.iter().filter(|k| **k == "kind")) {
            let mut probe = data.clone();
            if let Some(Value::Object(o)) = at_path(&mut probe, e.path()) {
                o.remove(*key);
            }
            let probe = Value::Object(Map::from_iter([(kind.to_string(), probe)]));
            if let Err(e) = serde_path_to_error::deserialize::<_, EventBody>(&probe) {
                if e.inner().to_string() == format!("missing field `{key}`") {
                    return WireError::bad(ErrorCode::InvalidField, format!("{path}.{key}: {message}"), format!("{path}.{key}"));
                }
            }
        }
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let field = format!("{path}.{name}");
        return WireError::bad(ErrorCode::MissingField, format!("{field} is required"), field);
    }
    WireError::bad(ErrorCode::InvalidField, format!("{path}: {message}"), path)
}

/// The value at a serde path in an event's data (the path's first segment is the event type).
fn at_path<'a>(data: &'a mut Value, path: &serde_path_to_error::Path) -> Option<&'a mut Value> {
    path.iter().skip(1).try_fold(data, |v, seg| match seg {
        serde_path_to_error::Segment::Map { key } => v.get_mut(key.as_str()),
        serde_path_to_error::Segment::Seq { index } => v.get_mut(*index),
        _ => None,
    })
}

fn validate(body: &EventBody) -> Result<(), WireError> {
    let mut v = Checks::default();
    match body {
        EventBody::Appointment(AppointmentEvent::Booked(AppointmentBooked {
            appointment_id,
            order_id,
            customer,
            area,
            service,
            price,
            window_start,
            window_end,
            visit_number,
            discount_percent,
            technician_id,
        })) => {
            v.id("data.appointment_id", appointment_id);
            v.id("data.order_id", order_id);
            v.customer("data.customer", customer);
            v.text("data.area", area);
            v.text("data.service", service);
            v.money("data.price", price);
            v.window("data.window_end", window_start, window_end);
            v.check(*visit_number >= 1, "data.visit_number", "visit_number starts at 1");
            v.check(*discount_percent <= 100, "data.discount_percent", "discount_percent is 0 to 100");
            if let Some(t) = technician_id {
                v.id("data.technician_id", t);
            }
        }
        EventBody::Appointment(AppointmentEvent::Assigned(AppointmentAssigned { appointment_id, technician_id })) => {
            v.id("data.appointment_id", appointment_id);
            v.id("data.technician_id", technician_id);
        }
        EventBody::Appointment(AppointmentEvent::RescheduleRequested(RescheduleRequested { appointment_id, stf_link, .. })) => {
            v.id("data.appointment_id", appointment_id);
            v.text("data.stf_link", stf_link);
        }
        EventBody::Appointment(AppointmentEvent::Rescheduled(AppointmentRescheduled {
            appointment_id, window_start, window_end, ..
        })) => {
            v.id("data.appointment_id", appointment_id);
            v.window("data.window_end", window_start, window_end);
        }
        EventBody::Appointment(AppointmentEvent::Completed(AppointmentCompleted { appointment_id, painting, .. })) => {
            v.id("data.appointment_id", appointment_id);
            if let Some(p) = painting {
                v.check((1..=MAX_PAINTING_DAYS).contains(&p.days), "data.painting.days", "a painting job lasts 1 to 365 days");
                v.money("data.painting.total_price", &p.total_price);
                v.money("data.painting.material_price", &p.material_price);
            }
        }
        EventBody::Appointment(AppointmentEvent::Cancelled(AppointmentCancelled { appointment_id, .. })) => {
            v.id("data.appointment_id", appointment_id)
        }
        EventBody::Package(
            PackageEvent::VisitCancelled(VisitCancelled { package_id, visit_id })
            | PackageEvent::VisitCompleted(VisitCompleted { package_id, visit_id }),
        ) => {
            v.id("data.package_id", package_id);
            v.id("data.visit_id", visit_id);
        }
        EventBody::Package(PackageEvent::VisitRescheduled(VisitRescheduled { package_id, visit_id, .. })) => {
            v.id("data.package_id", package_id);
            v.id("data.visit_id", visit_id);
        }
        EventBody::Package(
            PackageEvent::Cancelled(PackageCancelled { package_id, .. }) | PackageEvent::Paid(PackagePaid { package_id }),
        ) => v.id("data.package_id", package_id),
        EventBody::Case(CaseEvent::Reopen(CaseReopen { case_id })) => v.id("data.case_id", case_id),
        EventBody::Package(PackageEvent::Booked(PackageBooked { package_id, customer, area, price, visits, .. })) => {
            v.id("data.package_id", package_id);
            v.customer("data.customer", customer);
            v.text("data.area", area);
            v.money("data.price", price);
            v.check(!visits.is_empty(), "data.visits", "a package has at least one visit");
            for (i, visit) in visits.iter().enumerate() {
                v.id(&format!("data.visits[{i}].visit_id"), &visit.visit_id);
                v.check(
                    !visits[..i].iter().any(|o| o.visit_id == visit.visit_id),
                    &format!("data.visits[{i}].visit_id"),
                    "visit ids are unique within a package",
                );
            }
        }
        EventBody::Case(CaseEvent::Call(c)) => {
            v.id("data.case_id", &c.case_id);
            v.id("data.call_id", &c.call_id);
            v.id("data.agent_id", &c.agent_id);
            v.check(c.outcome != CallOutcome::Unreported, "data.outcome", "outcome is one of answered, no_answer, busy, voicemail");
            if c.resolution.is_some() {
                v.check(c.outcome.reached(), "data.resolution", "only an answered call carries a resolution");
            }
            if let Some(Resolution::Rebooked { window_start, window_end }) = &c.resolution {
                v.window("data.resolution.window_end", window_start, window_end);
            }
        }
    }
    v.result()
}

/// Collects the first validation failure with its JSON path.
#[derive(Default)]
struct Checks(Option<WireError>);

impl Checks {
    fn check(&mut self, ok: bool, field: &str, message: &str) {
        if !ok && self.0.is_none() {
            self.0 = Some(WireError::bad(ErrorCode::InvalidField, message, field));
        }
    }
    fn text(&mut self, field: &str, s: &str) {
        self.check(!s.trim().is_empty(), field, &format!("{} must not be empty", leaf(field)));
    }
    fn id(&mut self, field: &str, s: &str) {
        self.text(field, s);
        self.check(
            s.chars().count() <= 128 && !s.chars().any(char::is_control),
            field,
            &format!("{} must be at most 128 printable characters", leaf(field)),
        );
    }
    fn money(&mut self, field: &str, m: &Money) {
        self.check(
            (0..=MAX_AMOUNT).contains(&m.amount),
            &format!("{field}.amount"),
            "amount is an integer in minor units from 0 to 1000000000000000",
        );
        self.check(
            m.currency.len() == 3 && m.currency.bytes().all(|b| b.is_ascii_uppercase()),
            &format!("{field}.currency"),
            "currency is an ISO 4217 code such as EGP",
        );
    }
    fn window(&mut self, field: &str, start: &DateTime<Utc>, end: &DateTime<Utc>) {
        self.check(end > start, field, "window_end must be after window_start");
    }
    fn customer(&mut self, field: &str, c: &crate::domain::case::Customer) {
        self.id(&format!("{field}.id"), &c.id);
        self.text(&format!("{field}.name"), &c.name);
        let digits = c.phone.strip_prefix('+').unwrap_or("");
        self.check(
            (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0'),
            &format!("{field}.phone"),
            "phone must be E.164: a + and 7 to 15 digits, the first not 0",
        );
    }
    fn result(self) -> Result<(), WireError> {
        self.0.map_or(Ok(()), Err)
    }
}

fn leaf(field: &str) -> &str {
    field.rsplit('.').next().unwrap_or(field)
}

/// R9.6 the answer to a request no route takes, with the error body: 405 for a path the
/// contract serves with another method, 404 for any other (on Lambda also a path another
/// function serves).
pub fn unmatched(method: &str, path: &str) -> WireError {
    let path = path.trim_end_matches('/');
    let case = path.strip_prefix("/v1/cases/").is_some_and(|id| !id.is_empty() && !id.contains('/'));
    let allowed = if Route::ALL.iter().any(|r| r.path() == path) {
        Some("POST")
    } else if path == "/v1/cases" || case {
        Some("GET")
    } else {
        None
    };
    match allowed {
        Some(m) if m != method => WireError::new(405, ErrorCode::MethodNotAllowed, format!("{method} is not allowed on {path}; use {m}")),
        _ => WireError::new(404, ErrorCode::NotFound, format!("no route {method} {path}")),
    }
}

/// The 202 body.
/// The 202 body; `"echo": true` only on an echo (R9.2 v3), so every other answer keeps SPEC §5's shape.
pub fn accepted(case_id: Option<&str>, duplicate: bool, echo: bool) -> Value {
    let mut body = json!({"case_id": case_id, "duplicate": duplicate});
    if echo {
        body["echo"] = json!(true);
    }
    body
}

/// `GET /v1/cases/{case_id}`: the case view of SPEC §5 (plus `opened_at` and ticket `tags`).
pub fn case_view(case: &Case, cal: &Calendar) -> Value {
    let t = &case.ticket;
    let mut v = Map::new();
    v.insert("case_id".into(), json!(case.case_id));
    v.insert("playbook".into(), json!(case.playbook()));
    v.insert("state".into(), json!(case.state()));
    for (k, id) in [("appointment_id", &case.appointment_id), ("order_id", &case.order_id), ("package_id", &case.package_id)] {
        if let Some(id) = id {
            v.insert(k.into(), json!(id));
        }
    }
    v.insert("customer".into(), json!(case.customer));
    v.insert(
        "ticket".into(),
        json!({
            "category": t.category, "sub_category": t.sub_category, "type": t.kind, "status": t.status,
            "priority": t.priority, "area": t.area, "group": t.group,
            "resolution_due": t.resolution_due.map(|d| cal.rfc3339(d)), "result": t.result, "tags": t.tags,
        }),
    );
    v.insert("attempts".into(), case.attempts.iter().map(|a| json!({"at": cal.rfc3339(a.at), "outcome": a.outcome})).collect());
    let mut timers: Vec<_> = case.timers.iter().collect();
    timers.sort_by_key(|t| t.due_at);
    v.insert("timers".into(), timers.iter().map(|t| json!({"kind": t.kind, "due_at": cal.rfc3339(t.due_at)})).collect());
    v.insert(
        "timeline".into(),
        case.timeline
            .iter()
            .map(|e| {
                let mut line = json!({"at": cal.rfc3339(e.at), "kind": e.kind, "detail": e.detail});
                if let Some(occurred) = e.occurred_at {
                    line["occurred_at"] = json!(cal.rfc3339(occurred));
                }
                line
            })
            .collect(),
    );
    v.insert("version".into(), json!(case.version));
    v.insert("opened_at".into(), json!(cal.rfc3339(case.opened_at)));
    Value::Object(v)
}

/// One entry of `GET /local/sms`.
pub fn sms_view(sms: &Sms, cal: &Calendar) -> Value {
    json!({
        "to": sms.to, "template": sms.template, "language": sms.language, "body": sms.body,
        "segments": sms.segments, "case_id": sms.case_id, "sent_at": cal.rfc3339(sms.at),
    })
}

/// A command as published: `{type, case_id, at, data}`.
pub fn command_view(command: &Command, cal: &Calendar) -> Value {
    json!({"type": command.body.kind(), "case_id": command.case_id, "at": cal.rfc3339(command.at), "data": command.body.data()})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(kind: &str, data: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"id": "d-1", "type": kind, "occurred_at": "2026-03-01T10:00:00+02:00", "data": data})).unwrap()
    }

    fn booked() -> Value {
        json!({
            "appointment_id": "A1", "order_id": "O1",
            "customer": {"id": "C1", "name": "Mona", "phone": "+201001234567", "language": "ar"},
            "area": "Cairo", "service": "AC repair", "price": {"amount": 45000, "currency": "EGP"},
            "window_start": "2026-03-03T10:00:00+02:00", "window_end": "2026-03-03T12:00:00+02:00",
            "visit_number": 1, "technician_id": null, "discount_percent": 0
        })
    }

    #[test]
    fn v2_a_price_without_currency_is_in_the_policy_currency() {
        let mut d = booked();
        d["price"] = json!({"amount": 45000});
        let e = parse_event(Route::Appointments, &envelope("appointment.booked", d.clone()), "SAR").unwrap();
        let EventBody::Appointment(AppointmentEvent::Booked(AppointmentBooked { price, .. })) = e.body else { panic!("a booking") };
        assert_eq!(price, Money::new(45_000, "SAR"));
        d["price"] = json!({"amount": 45000, "currency": "egp"});
        let e = parse_event(Route::Appointments, &envelope("appointment.booked", d), "SAR").unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (400, Some("data.price.currency")), "a currency given is still checked");
    }

    #[test]
    fn an_unreported_outcome_is_the_engines_to_record_not_a_senders() {
        let d = json!({"case_id": "o1-O1", "call_id": "K1", "agent_id": "G1", "outcome": "unreported"});
        let e = parse_event(Route::Calls, &envelope("call.completed", d), "EGP").unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (400, Some("data.outcome")));
    }

    #[test]
    fn r9_6_unmatched_requests_are_404_or_405_with_a_code() {
        assert_eq!(
            (unmatched("GET", "/v1/appointments").status, unmatched("GET", "/v1/appointments").code),
            (405, ErrorCode::MethodNotAllowed)
        );
        assert_eq!(unmatched("DELETE", "/v1/cases/o1-O1").status, 405);
        assert_eq!(unmatched("POST", "/v1/cases").status, 405);
        assert_eq!((unmatched("GET", "/v2/nothing").status, unmatched("GET", "/v2/nothing").code), (404, ErrorCode::NotFound));
        assert_eq!(unmatched("GET", "/v1/cases/a/b").status, 404);
    }

    #[test]
    fn during_a_rotation_both_secrets_verify_and_no_other() {
        let body = b"{}";
        let now = 1_772_438_400;
        for key in ["new-secret", "old-secret"] {
            let sig = sign(key, now, body);
            assert_eq!(verify_signature("new-secret,old-secret", Some(&now.to_string()), Some(&sig), body, now), Ok(()), "{key}");
            assert_eq!(verify_signature(" new-secret , old-secret ", Some(&now.to_string()), Some(&sig), body, now), Ok(()));
        }
        let stranger = sign("another", now, body);
        let e = verify_signature("new-secret,old-secret", Some(&now.to_string()), Some(&stranger), body, now).unwrap_err();
        assert_eq!((e.status, e.code), (401, ErrorCode::Unauthorized));
        // After the rotation only the new one is left.
        let old = sign("old-secret", now, body);
        assert!(verify_signature("new-secret", Some(&now.to_string()), Some(&old), body, now).is_err());
        assert_eq!(sign("new-secret,old-secret", now, body), sign("new-secret", now, body), "clients sign with the new one");
    }

    #[test]
    fn a_valid_booking_parses() {
        let e = parse_event(Route::Appointments, &envelope("appointment.booked", booked()), "EGP").unwrap();
        assert_eq!(e.id, "d-1");
        assert!(matches!(e.body, EventBody::Appointment(AppointmentEvent::Booked(AppointmentBooked { visit_number: 1, .. }))));
    }

    #[test]
    fn signature_round_trips_and_rejects_tampering_and_staleness() {
        let body = b"{\"a\":1}";
        let sig = sign("s3cret", 1_700_000_000, body);
        assert!(verify_signature("s3cret", Some("1700000000"), Some(&sig), body, 1_700_000_100).is_ok());
        let e = verify_signature("s3cret", Some("1700000000"), Some(&sig), b"{\"a\":2}", 1_700_000_100).unwrap_err();
        assert_eq!(e.status, 401);
        assert_eq!(verify_signature("other", Some("1700000000"), Some(&sig), body, 1_700_000_000).unwrap_err().status, 401);
        assert_eq!(verify_signature("s3cret", Some("1700000000"), Some(&sig), body, 1_700_000_301).unwrap_err().status, 401);
        assert_eq!(verify_signature("s3cret", None, Some(&sig), body, 1_700_000_000).unwrap_err().status, 401);
        assert_eq!(verify_signature("s3cret", Some("1700000000"), None, body, 1_700_000_000).unwrap_err().status, 401);
    }

    #[test]
    fn errors_name_the_field() {
        let mut d = booked();
        d["customer"].as_object_mut().unwrap().remove("phone");
        let e = parse_event(Route::Appointments, &envelope("appointment.booked", d), "EGP").unwrap_err();
        assert_eq!((e.status, e.code.as_str(), e.field.as_deref()), (400, "missing_field", Some("data.customer.phone")));

        let mut d = booked();
        d["customer"]["phone"] = json!("01001234567");
        let e = parse_event(Route::Appointments, &envelope("appointment.booked", d), "EGP").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("data.customer.phone"));

        let mut d = booked();
        d["visit_number"] = json!("one");
        let e = parse_event(Route::Appointments, &envelope("appointment.booked", d), "EGP").unwrap_err();
        assert_eq!((e.code.as_str(), e.field.as_deref()), ("invalid_field", Some("data.visit_number")));

        let mut d = booked();
        d["window_end"] = json!("2026-03-03T09:00:00+02:00");
        assert_eq!(
            parse_event(Route::Appointments, &envelope("appointment.booked", d), "EGP").unwrap_err().field.as_deref(),
            Some("data.window_end")
        );
    }

    #[test]
    fn unknown_types_and_wrong_routes_are_400() {
        let e = parse_event(Route::Appointments, &envelope("appointment.exploded", json!({})), "EGP").unwrap_err();
        assert_eq!((e.status, e.code.as_str(), e.field.as_deref()), (400, "unknown_type", Some("type")));
        let e = parse_event(Route::Calls, &envelope("appointment.booked", booked()), "EGP").unwrap_err();
        assert_eq!(e.code, "unknown_type");
    }

    #[test]
    fn unknown_topics_are_400_naming_the_topic() {
        // R8.1 the topic taxonomy is closed.
        let d = json!({"case_id": "o1-O1", "call_id": "K1", "agent_id": "G1", "outcome": "answered", "topics": ["inquiry.billing", "inquiry.weather"]});
        let e = parse_event(Route::Calls, &envelope("call.completed", d), "EGP").unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (400, Some("data.topics[1]")));
    }

    #[test]
    fn envelope_problems_are_400() {
        for (body, field) in [
            (b"not json".to_vec(), None),
            (b"[]".to_vec(), None),
            (
                serde_json::to_vec(&json!({"type": "appointment.booked", "occurred_at": "2026-03-01T10:00:00Z", "data": {}})).unwrap(),
                Some("id"),
            ),
            (
                serde_json::to_vec(&json!({"id": "", "type": "appointment.booked", "occurred_at": "2026-03-01T10:00:00Z", "data": {}}))
                    .unwrap(),
                Some("id"),
            ),
            (
                serde_json::to_vec(
                    &json!({"id": "x".repeat(129), "type": "appointment.booked", "occurred_at": "2026-03-01T10:00:00Z", "data": {}}),
                )
                .unwrap(),
                Some("id"),
            ),
            (
                serde_json::to_vec(&json!({"id": "a", "type": "appointment.booked", "occurred_at": "yesterday", "data": {}})).unwrap(),
                Some("occurred_at"),
            ),
            (
                serde_json::to_vec(&json!({"id": "a", "type": "appointment.booked", "occurred_at": "2026-03-01T10:00:00Z"})).unwrap(),
                Some("data"),
            ),
        ] {
            let e = parse_event(Route::Appointments, &body, "EGP").unwrap_err();
            assert_eq!(e.status, 400, "{}", String::from_utf8_lossy(&body));
            assert_eq!(e.field.as_deref(), field);
        }
    }

    #[test]
    fn oversized_bodies_are_413() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(check_size(&big).unwrap_err().status, 413);
        assert!(check_size(&big[1..]).is_ok());
    }

    #[test]
    fn a_resolution_needs_an_answered_call() {
        let d = json!({"case_id": "o1-O1", "call_id": "K1", "agent_id": "G1", "outcome": "busy", "resolution": {"kind": "will_pay"}});
        let e = parse_event(Route::Calls, &envelope("call.completed", d), "EGP").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("data.resolution"));
    }
}
