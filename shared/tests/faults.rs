//! Fault injection: every port fails 10 % of its calls at once (transient, throttled, timed out
//! after doing the work, permanent) while a workload across all playbooks runs through the engine
//! on the SQLite adapters. Senders retry what failed (same delivery id), the timer runner retries,
//! the re-driver and the timer sweep run as in followup-local. Afterwards every committed effect
//! was performed exactly once per effect id, no case is stuck, and the run prints the faults it
//! injected and the retries they cost.

#[path = "common/workload.rs"]
mod workload;

use chrono::{DateTime, Utc};
use followup::adapters::faults::{Faults, Faulty};
use followup::adapters::local::SqliteStore;
use followup::domain::effects::Effect;
use followup::domain::policy::Policy;
use followup::engine::{Engine, ProcessError};
use followup::ports::{CaseStore, Clock, Ports};
use followup::wire::{self, Route};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct TestClock(Arc<Mutex<DateTime<Utc>>>);
impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

type Faulted = Faulty<SqliteStore>;

/// Every port faulted, on the test's clock.
enum FaultedPorts {}

impl Ports for FaultedPorts {
    type Store = Faulted;
    type Timers = Faulted;
    type Sms = Faulted;
    type Commands = Faulted;
    type Clock = TestClock;
}
const SECRET: &str = "fault-secret";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

struct Run {
    engine: Engine<FaultedPorts>,
    clock: TestClock,
    retries: u64,
    seq: u64,
}

impl Run {
    /// Posts like a sender that retries until it gets an answer other than 5xx (same delivery id).
    async fn post(&mut self, route: Route, mut envelope: Value) -> u16 {
        self.seq += 1;
        envelope["id"] = json!(format!("d-{}", self.seq));
        envelope["occurred_at"] = json!(self.clock.now().to_rfc3339());
        let body = serde_json::to_vec(&envelope).unwrap();
        for _ in 0..200 {
            let ts = Utc::now().timestamp();
            let sig = wire::sign(SECRET, ts, &body);
            let reply = self.engine.webhook(route, Some(&ts.to_string()), Some(&sig), &body, ts).await;
            if reply.status < 500 {
                return reply.status;
            }
            self.retries += 1;
        }
        panic!("{envelope} never got through")
    }

    /// Fires every timer due by now, as the runner does: a failed firing is tried again.
    async fn fire_due(&mut self) {
        let store = &self.engine.store.inner;
        let due = store.due_timers(self.clock.now(), 10_000).await.unwrap();
        for timer in due {
            loop {
                match self.engine.fire_timer(&timer).await {
                    Ok(_) | Err(ProcessError::Refused(_)) => break,
                    Err(_) => self.retries += 1,
                }
            }
            store.remove_timer(&timer.timer.name()).await.unwrap();
        }
    }

    /// The re-driver and the timer sweep, as followup-local runs them every few seconds.
    async fn housekeeping(&mut self) {
        if self.engine.drive_pending().await.is_err() {
            self.retries += 1;
        }
        if self.engine.timer_sweep().await.is_err() {
            self.retries += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_ten_percent_faults_on_every_port_every_effect_happens_once_and_no_case_is_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path()).unwrap();
    let faults = Faults::new(10, 0x5eed);
    let start = t("2026-03-02T10:00:00+02:00");
    let clock = TestClock(Arc::new(Mutex::new(start)));
    let engine = Engine {
        store: Faulty::new(sqlite.clone(), &faults),
        timers: Faulty::new(sqlite.clone(), &faults),
        sms: Faulty::new(sqlite.clone(), &faults),
        commands: Faulty::new(sqlite.clone(), &faults),
        clock: clock.clone(),
        policy: Arc::new(Policy::default()),
        secret: SECRET.into(),
        locks: Default::default(),
    };
    let mut run = Run { engine, clock: clock.clone(), retries: 0, seq: 0 };
    let mut accepted = 0;
    for (route, envelope) in workload::workload(start) {
        if run.post(route, envelope).await == 202 {
            accepted += 1;
        }
    }
    for step in 0..workload::STEPS {
        *clock.0.lock().unwrap() = start + workload::STEP * step as i32;
        if workload::reports_at(step) {
            for report in workload::call_reports(step) {
                run.post(Route::Calls, report).await;
            }
        }
        run.fire_due().await;
        run.housekeeping().await;
    }
    let (by_kind, _) = faults.injected();
    let injected = faults.summary("port calls");
    faults.stop();
    // Let it settle: the last retries, with no more faults.
    for _ in 0..3 {
        run.fire_due().await;
        run.housekeeping().await;
    }

    // Every committed effect was performed, each once.
    assert!(sqlite.pending_effects(10).await.unwrap().is_empty(), "effects still pending");
    let raw = rusqlite::Connection::open(dir.path().join("followup.db")).unwrap();
    let mut stmt = raw.prepare("SELECT id, doc FROM effects").unwrap();
    let effects: Vec<(String, Effect)> = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|r| {
            let (id, doc) = r.unwrap();
            (id, serde_json::from_str(&doc).unwrap())
        })
        .collect();
    let ids = |table: &str| -> Vec<String> {
        let mut s = raw.prepare(&format!("SELECT effect_id FROM {table}")).unwrap();
        s.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap).collect()
    };
    let (sms, commands) = (ids("sms_outbox"), ids("command_outbox"));
    let want = |f: fn(&Effect) -> bool| effects.iter().filter(|(_, e)| f(e)).map(|(id, _)| id.clone()).collect::<BTreeSet<_>>();
    assert_eq!(sms.len(), sms.iter().collect::<BTreeSet<_>>().len(), "an SMS sent twice");
    assert_eq!(commands.len(), commands.iter().collect::<BTreeSet<_>>().len(), "a command sent twice");
    assert_eq!(sms.into_iter().collect::<BTreeSet<_>>(), want(|e| matches!(e, Effect::SendSms(_))), "every SMS once");
    assert_eq!(commands.into_iter().collect::<BTreeSet<_>>(), want(|e| matches!(e, Effect::Emit(_))), "every command once");

    // No case is stuck: an open case waits on a timer the timer table still holds.
    let live: BTreeSet<String> = sqlite.timers().await.unwrap().iter().map(|t| t.timer.name()).collect();
    let mut cases = 0;
    let keys: Vec<String> =
        raw.prepare("SELECT key FROM streams").unwrap().query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap).collect();
    for key in keys {
        let snapshot = sqlite.load(&followup::domain::subjects::snapshot::SubjectKey::parse(&key).unwrap()).await.unwrap().unwrap();
        cases += workload::assert_none_stuck(&snapshot, &live);
    }
    println!(
        "faults: {injected}; {} retries; \
         {accepted} events accepted, {} effects performed once each, {cases} cases, none stuck",
        run.retries,
        effects.len()
    );
    assert!(by_kind.iter().all(|&n| n > 0), "every kind of fault was injected: {by_kind:?}");
}
