//! The engine shell with the SQLite adapters: durability of effects, conflict retries, nothing stored on refusal.
#![cfg(feature = "local")]

use chrono::{DateTime, Utc};
use followup::adapters::local::SqliteStore;
use followup::domain::effects::Sms;
use followup::domain::policy::Policy;
use followup::engine::Engine;
use followup::ports::{CaseStore, Clock, EffectError, SmsSender};
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

type TestEngine = Engine<SqliteStore, SqliteStore, FlakySms, SqliteStore, FixedClock>;

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
    let stream = e.store.load(&followup::domain::snapshot::SubjectKey::Order("O1".into())).await.unwrap().unwrap();
    assert_eq!(stream.version, 2 + 24);
    assert_eq!(e.store.commands().await.unwrap().iter().filter(|c| c.body.kind() == "cancel_order").count(), 1, "R2.6 once");
}

#[tokio::test]
async fn a_refused_input_records_nothing() {
    let e = engine(0);
    let case_id = booked_and_cancelled(&e).await;
    let before = e.store.load(&followup::domain::snapshot::SubjectKey::Order("O1".into())).await.unwrap();
    let (status, body) = post(&e, Route::Cancellations, "r1", "case.reopen", json!({"case_id": case_id})).await;
    assert_eq!((status, body["error"]["rule"].as_str()), (422, Some("R2.10")));
    assert!(e.store.delivery("r1").await.unwrap().is_none(), "no idempotency record");
    assert_eq!(e.store.load(&followup::domain::snapshot::SubjectKey::Order("O1".into())).await.unwrap(), before);
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
