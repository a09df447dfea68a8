//! The pure decision core and one durable commit, measured with criterion.

mod support;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use followup::domain::case::CallOutcome;
use followup::domain::decide;
use followup::domain::events::{CallCompleted, Event, EventBody, Input};
use followup::domain::policy::Policy;
use support::{booked, cancelled, t};

fn benches(c: &mut Criterion) {
    let policy = Policy::default();
    let now = t("2026-03-02T10:00:00+02:00");
    let booked_stream = decide(None, &booked("O1"), now, &policy).unwrap().snapshot;
    let with_case = decide(Some(&booked_stream), &cancelled("O1"), now, &policy).unwrap().snapshot;
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
    let engine = support::engine(dir.path());
    let mut n = 0u64;
    c.bench_function("engine/durable commit of one appointment.booked (SQLite, fsync)", |b| {
        b.iter(|| {
            n += 1;
            let input = booked(&format!("O{n}"));
            let id = support::delivery_id(&input);
            rt.block_on(engine.process(input, &id, "h")).unwrap()
        })
    });
}

criterion_group! {
    name = decide_benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(4));
    targets = benches
}
criterion_main!(decide_benches);
