//! The engine shell with the SQLite adapters: durability of effects, conflict retries, nothing stored on refusal.
#![cfg(feature = "local")]

use chrono::{DateTime, Utc};
use followup::adapters::local::SqliteStore;
use followup::domain::effects::Sms;
use followup::domain::policy::Policy;
use followup::engine::Engine;
use followup::ports::{CaseStore, Clock, EffectError, Ports, SmsSender};
use followup::wire::{sign, Route};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const SECRET: &str = "engine-test";

#[derive(Clone)]
struct FixedClock(DateTime<Utc>);
impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// An SMS gateway that is down for its first `failures` sends.
#[derive(Clone)]
struct FlakySms {
    inner: SqliteStore,
    failures: Arc<AtomicUsize>,
}
impl SmsSender for FlakySms {
    async fn send(&self, effect_id: &str, sms: &Sms) -> Result<(), EffectError> {
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            return Err(EffectError::Transient("gateway timeout".into()));
        }
        self.inner.send(effect_id, sms).await
    }
}

/// SQLite for everything but the SMS gateway, on a fixed clock.
enum TestPorts {}

impl Ports for TestPorts {
    type Store = SqliteStore;
    type Timers = SqliteStore;
    type Sms = FlakySms;
    type Commands = SqliteStore;
    type Clock = FixedClock;
}

type TestEngine = Engine<TestPorts>;

fn engine(sms_failures: usize) -> TestEngine {
    let store = SqliteStore::open_in_memory().unwrap();
    Engine {
        timers: store.clone(),
        sms: FlakySms { inner: store.clone(), failures: Arc::new(AtomicUsize::new(sms_failures)) },
        commands: store.clone(),
        store,
        clock: FixedClock(DateTime::parse_from_rfc3339("2026-03-02T10:00:00+02:00").unwrap().with_timezone(&Utc)),
        policy: Arc::new(Policy::default()),
        secret: SECRET.into(),
        locks: Default::default(),
    }
}

async fn post(e: &TestEngine, route: Route, id: &str, kind: &str, data: Value) -> (u16, Value) {
    let body = serde_json::to_vec(&json!({"id": id, "type": kind, "occurred_at": "2026-03-02T10:00:00+02:00", "data": data})).unwrap();
    let now = Utc::now().timestamp();
    let r = e.webhook(route, Some(&now.to_string()), Some(&sign(SECRET, now, &body)), &body, now).await;
    (r.status, r.body)
}

async fn booked_and_cancelled(e: &TestEngine) -> String {
    let booked = json!({
        "appointment_id": "A1", "order_id": "O1",
        "customer": {"id": "C1", "name": "Mona", "phone": "+201001234567", "language": "en"},
        "area": "Cairo", "service": "AC", "price": {"amount": 1000, "currency": "EGP"},
        "window_start": "2026-03-03T10:00:00+02:00", "window_end": "2026-03-03T12:00:00+02:00",
        "visit_number": 1, "technician_id": "T1", "discount_percent": 0
    });
    assert_eq!(post(e, Route::Appointments, "b1", "appointment.booked", booked).await.0, 202);
    let cancel = json!({"appointment_id": "A1", "cancelled_by": "customer", "reason": "x", "wants_follow_up": true});
    let (status, body) = post(e, Route::Cancellations, "c1", "appointment.cancelled", cancel).await;
    assert_eq!(status, 202, "{body}");
    body["case_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_effect_that_fails_stays_pending_and_is_performed_once_later() {
    let e = engine(1);
    booked_and_cancelled(&e).await;
    // The 202 was sent although the gateway failed: the decision and its effects are durable.
    assert!(e.store.sms_outbox().await.unwrap().is_empty());
    let pending = e.store.pending_effects(100).await.unwrap();
    assert_eq!(pending.len(), 1, "only the failed SMS is still pending");
    assert_eq!(e.drive_pending().await.unwrap(), 1);
    assert_eq!(e.drive_pending().await.unwrap(), 0);
    let sent = e.store.sms_outbox().await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].template.as_str(), "DISCOUNT_OFFER");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_outcomes_on_one_case_are_all_kept() {
    let e = Arc::new(engine(0));
    let case_id = booked_and_cancelled(&e).await;
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let e = e.clone();
            let case_id = case_id.clone();
            tokio::spawn(async move {
                let data = json!({"case_id": case_id, "call_id": format!("K{i}"), "agent_id": "G", "outcome": "no_answer"});
                post(&e, Route::Calls, &format!("call-{i}"), "call.completed", data).await
            })
        })
        .collect();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 202, "{body}");
    }
    let case = e.case(&case_id).await.unwrap().unwrap();
    assert_eq!(case.attempts.len(), 24, "every outcome survived the optimistic retries");
    let stream = e.store.load(&followup::domain::subjects::snapshot::SubjectKey::Order("O1".into())).await.unwrap().unwrap();
    assert_eq!(stream.version, 2 + 24);
    assert_eq!(e.store.commands().await.unwrap().iter().filter(|c| c.body.kind() == "cancel_order").count(), 1, "R2.6 once");
}

#[tokio::test]
async fn a_refused_input_records_nothing() {
    let e = engine(0);
    let case_id = booked_and_cancelled(&e).await;
    let before = e.store.load(&followup::domain::subjects::snapshot::SubjectKey::Order("O1".into())).await.unwrap();
    let (status, body) = post(&e, Route::Cancellations, "r1", "case.reopen", json!({"case_id": case_id})).await;
    assert_eq!((status, body["error"]["rule"].as_str()), (422, Some("R2.10")));
    assert!(e.store.delivery("r1").await.unwrap().is_none(), "no idempotency record");
    assert_eq!(e.store.load(&followup::domain::subjects::snapshot::SubjectKey::Order("O1".into())).await.unwrap(), before);
    assert!(e.store.pending_effects(10).await.unwrap().is_empty());
}

/// Every Scheduler timer input in events/ is a timer reference the engine accepts.
#[test]
fn timer_samples_parse_as_timer_inputs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("timer.") && name.ends_with(".json")) {
            continue;
        }
        let timer: followup::domain::effects::TimerRef =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(format!("timer.{}.json", timer.kind), name, "the file names its kind");
        assert!(timer.name().len() <= 64);
        seen += 1;
    }
    assert!(seen >= 2, "timer samples exist");
}

async fn post_at(e: &TestEngine, route: Route, id: &str, kind: &str, occurred_at: &str, data: Value) -> (u16, Value) {
    let body = serde_json::to_vec(&json!({"id": id, "type": kind, "occurred_at": occurred_at, "data": data})).unwrap();
    let now = Utc::now().timestamp();
    let r = e.webhook(route, Some(&now.to_string()), Some(&sign(SECRET, now, &body)), &body, now).await;
    (r.status, r.body)
}

fn booking(order: &str, appointment: &str) -> Value {
    json!({
        "appointment_id": appointment, "order_id": order,
        "customer": {"id": "C1", "name": "Mona", "phone": "+201001234567", "language": "en"},
        "area": "Cairo", "service": "AC", "price": {"amount": 1000, "currency": "EGP"},
        "window_start": "2026-03-03T10:00:00+02:00", "window_end": "2026-03-03T12:00:00+02:00",
        "visit_number": 2, "technician_id": "T1", "discount_percent": 0
    })
}

fn capped_at_one() -> TestEngine {
    let mut e = engine(0);
    let mut policy = Policy::default();
    policy.sms.daily_cap = 1;
    e.policy = Arc::new(policy);
    e
}

/// SPEC §4 (v3): the cap counts every SMS to one number in one local day, across its orders.
#[tokio::test]
async fn the_daily_cap_counts_per_number_across_orders() {
    let e = capped_at_one();
    for order in ["O1", "O2"] {
        assert_eq!(post(&e, Route::Appointments, &format!("b-{order}"), "appointment.booked", booking(order, order)).await.0, 202);
    }
    // Each order's customer cancellation earns a DISCOUNT_OFFER (R2.3); one number, one SMS today.
    for order in ["O1", "O2"] {
        let cancel = json!({"appointment_id": order, "cancelled_by": "customer", "reason": "x", "wants_follow_up": false});
        assert_eq!(post(&e, Route::Cancellations, &format!("c-{order}"), "appointment.cancelled", cancel).await.0, 202);
    }
    let sent = e.store.sms_outbox().await.unwrap();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    let counts = e.store.sms_counts(&["+201001234567".to_string(), "+201000000000".to_string()], day).await.unwrap();
    assert_eq!(counts.into_iter().collect::<Vec<_>>(), vec![("+201001234567".to_string(), 1)]);
}

/// SPEC §4 (v3): two decisions sending to one number at once cannot both pass the cap.
#[tokio::test]
async fn two_orders_sending_to_one_number_at_once_send_once() {
    let e = capped_at_one();
    for order in ["O1", "O2"] {
        assert_eq!(post(&e, Route::Appointments, &format!("b-{order}"), "appointment.booked", booking(order, order)).await.0, 202);
    }
    let cancel = |order: &str| json!({"appointment_id": order, "cancelled_by": "customer", "reason": "x", "wants_follow_up": false});
    let (a, b) = tokio::join!(
        post(&e, Route::Cancellations, "c-O1", "appointment.cancelled", cancel("O1")),
        post(&e, Route::Cancellations, "c-O2", "appointment.cancelled", cancel("O2")),
    );
    assert_eq!((a.0, b.0), (202, 202));
    assert_eq!(e.store.sms_outbox().await.unwrap().len(), 1);
}

/// R9.7 (v3): an `occurred_at` more than 300 s ahead of the clock is a 400; less is accepted.
#[tokio::test]
async fn an_event_from_the_future_is_refused() {
    let e = engine(0);
    let (status, body) =
        post_at(&e, Route::Appointments, "f1", "appointment.booked", "2026-03-02T10:05:01+02:00", booking("O1", "A1")).await;
    assert_eq!(
        (status, body["error"]["field"].as_str(), body["error"]["rule"].as_str()),
        (400, Some("occurred_at"), Some("R9.7")),
        "{body}"
    );
    assert!(e.store.delivery("f1").await.unwrap().is_none(), "nothing stored");
    let (status, _) = post_at(&e, Route::Appointments, "f2", "appointment.booked", "2026-03-02T10:04:59+02:00", booking("O1", "A1")).await;
    assert_eq!(status, 202);
}

/// R9.2 (v3): a fact re-sent under a new delivery id answers 202 with `"echo": true`.
#[tokio::test]
async fn a_fact_resent_under_a_new_id_is_an_echo() {
    let e = engine(0);
    let (_, first) = post(&e, Route::Appointments, "b1", "appointment.booked", booking("O1", "A1")).await;
    assert_eq!(first.get("echo"), None, "only an echo says so");
    let (status, copy) = post(&e, Route::Appointments, "b1-again", "appointment.booked", booking("O1", "A1")).await;
    assert_eq!((status, copy["echo"].as_bool(), copy["duplicate"].as_bool()), (202, Some(true), Some(false)), "{copy}");
    let mut other = booking("O1", "A1");
    other["window_start"] = json!("2026-03-04T10:00:00+02:00");
    other["window_end"] = json!("2026-03-04T12:00:00+02:00");
    let (status, body) = post(&e, Route::Appointments, "b1-other", "appointment.booked", other).await;
    assert_eq!((status, body["error"]["rule"].as_str()), (422, Some("R9.2")), "{body}");
}
