//! The pure decision core and one durable commit, measured with criterion.

use chrono::{DateTime, Utc};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use followup::adapters::local::SqliteStore;
use followup::domain::case::{CallOutcome, Customer, Language};
use followup::domain::events::{CallCompleted, CancelledBy, Event, EventBody, Input};
use followup::domain::money::Money;
use followup::domain::playbooks::decide;
use followup::domain::policy::Policy;
use followup::domain::stream::{Stream, StreamKey};
use followup::engine::Engine;
use followup::ports::SystemClock;
use std::sync::Arc;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn booked(order: &str) -> Input {
    Input::Event(Event {
        id: format!("b-{order}"),
        occurred_at: t("2026-03-02T10:00:00+02:00"),
        body: EventBody::AppointmentBooked {
            appointment_id: format!("A-{order}"),
            order_id: order.into(),
            customer: Customer { id: "C".into(), name: "Mona".into(), phone: "+201001234567".into(), language: Language::Ar },
            area: "Cairo".into(),
            service: "AC".into(),
            price: Money::new(45_000, "EGP"),
            window_start: t("2026-03-05T10:00:00+02:00"),
            window_end: t("2026-03-05T12:00:00+02:00"),
            visit_number: 1,
            technician_id: Some("T1".into()),
            discount_percent: 0,
        },
    })
}

fn cancelled(order: &str) -> Input {
    Input::Event(Event {
        id: format!("c-{order}"),
        occurred_at: t("2026-03-02T10:00:00+02:00"),
        body: EventBody::AppointmentCancelled {
            appointment_id: format!("A-{order}"),
            cancelled_by: CancelledBy::Customer,
            reason: "travelling".into(),
            wants_follow_up: true,
            availability: None,
        },
    })
}

fn benches(c: &mut Criterion) {
    let policy = Policy::default();
    let now = t("2026-03-02T10:00:00+02:00");
    let booked_stream: Stream = decide(None, &booked("O1"), now, &policy).unwrap().stream;
    let with_case = decide(Some(&booked_stream), &cancelled("O1"), now, &policy).unwrap().stream;
    let outcome = Input::Event(Event {
        id: "k".into(),
        occurred_at: now,
        body: EventBody::CallCompleted(CallCompleted {
            case_id: with_case.cases[0].case_id.clone(),
            call_id: "K1".into(),
            agent_id: "G".into(),
            outcome: CallOutcome::NoAnswer,
            resolution: None,
            topics: Vec::new(),
            requested_follow_up: None,
            cost_told: None,
            notes: None,
        }),
    });

    c.bench_function("decide/appointment.cancelled opens a case (R2.1–R2.5)", |b| {
        b.iter(|| decide(Some(black_box(&booked_stream)), black_box(&cancelled("O1")), now, &policy).unwrap())
    });
    c.bench_function("decide/call.completed not reached (R2.5)", |b| {
        b.iter(|| decide(Some(black_box(&with_case)), black_box(&outcome), t("2026-03-03T09:10:00+02:00"), &policy).unwrap())
    });

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let engine = Engine {
        timers: store.clone(),
        sms: store.clone(),
        commands: store.clone(),
        store,
        clock: SystemClock,
        policy: Arc::new(Policy::default()),
        secret: String::new(),
        locks: Default::default(),
    };
    let mut n = 0u64;
    c.bench_function("engine/durable commit of one appointment.booked (SQLite, fsync)", |b| {
        b.iter(|| {
            n += 1;
            let order = format!("O{n}");
            rt.block_on(engine.process(booked(&order), &format!("b-{order}"), "h")).unwrap()
        })
    });
}

criterion_group! {
    name = decide_benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(4));
    targets = benches
}
criterion_main!(decide_benches);
