//! The envelope of SPEC §5: the body limit, JSON that names each key once, the envelope's fields,
//! the event's data read into its type with the path of any field at fault, the default currency.

use super::validate::validate;
use super::{Route, WireError, MAX_BODY_BYTES};
use crate::domain::events::{Event, EventBody};
use crate::domain::ErrorCode;
use serde_json::{Map, Value};

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
        let takes = route.event_types().join(", ");
        // A known type sent to another route's path: the answer names the route that takes it.
        let message = match Route::ALL.into_iter().find(|r| r.event_types().contains(&kind.as_str())) {
            Some(right) => format!("{kind} is sent to {}, not to {} (which takes: {takes})", right.path(), route.path()),
            None => format!("{kind:?} is not an event type of {}; expected one of: {takes}", route.path()),
        };
        return Err(WireError::bad(ErrorCode::UnknownType, message, "type"));
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

/// A number JSON Schema counts as an integer (`45000.0`, `4.5e4`) read as that integer, so the
/// typed fields take what the document's `integer` allows. Only up to 2^53, where every integer
/// has exactly one binary form; every integer field of the contract is bounded well below it.
fn integral(v: f64) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    (v.fract() == 0.0 && v.abs() <= EXACT).then_some(v as i64)
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
        Ok(integral(v).map_or_else(|| v.into(), Value::from))
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::events::{AppointmentBooked, AppointmentEvent};
    use crate::domain::money::Money;
    use serde_json::json;

    pub(in crate::wire) fn envelope(kind: &str, data: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"id": "d-1", "type": kind, "occurred_at": "2026-03-01T10:00:00+02:00", "data": data})).unwrap()
    }

    pub(in crate::wire) fn booked() -> Value {
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
    fn an_integer_is_what_json_schema_counts_as_one() {
        let body = |amount: &str| {
            let text = String::from_utf8(envelope("appointment.booked", booked())).unwrap();
            text.replace("\"amount\":45000", &format!("\"amount\":{amount}")).into_bytes()
        };
        for same in ["45000", "45000.0", "4.5e4", "450e2"] {
            let e = parse_event(Route::Appointments, &body(same), "EGP").unwrap();
            let EventBody::Appointment(AppointmentEvent::Booked(AppointmentBooked { price, .. })) = e.body else { panic!("{same}") };
            assert_eq!(price, Money::new(45_000, "EGP"), "{same}");
        }
        for not_whole in ["45000.5", "4.50005e4", "1e300"] {
            let e = parse_event(Route::Appointments, &body(not_whole), "EGP").unwrap_err();
            assert_eq!((e.status, e.field.as_deref()), (400, Some("data.price.amount")), "{not_whole}");
        }
    }

    #[test]
    fn a_valid_booking_parses() {
        let e = parse_event(Route::Appointments, &envelope("appointment.booked", booked()), "EGP").unwrap();
        assert_eq!(e.id, "d-1");
        assert!(matches!(e.body, EventBody::Appointment(AppointmentEvent::Booked(AppointmentBooked { visit_number: 1, .. }))));
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
        assert!(e.message.starts_with("appointment.booked is sent to /v1/appointments, not to /v1/calls"), "{}", e.message);
        let e = parse_event(Route::Appointments, &envelope("appointment.exploded", json!({})), "EGP").unwrap_err();
        assert!(e.message.contains("not an event type of /v1/appointments"), "{}", e.message);
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
}
