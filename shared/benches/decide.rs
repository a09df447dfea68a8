//! The decision core, SMS rendering and one durable commit, measured with criterion; `make bench`
//! prints their means in its summary table (`tools/examples/load.rs` reads them back from
//! `target/criterion/<group>/<bench>/new/estimates.json`).
//!
//! - `decide/<playbook>`: one `decide` per playbook, on a snapshot built by deciding the inputs
//!   that lead there, for the call report or timer that drives the playbook's main rule
//!   (`scenarios.rs` names the rule of each).
//! - `sms/render <template>`: every template rendered for an Arabic-speaking customer with its
//!   variables, and its segments counted, as each SMS effect is built.
//! - `engine/durable commit`: one `appointment.booked` through the engine on SQLite (WAL,
//!   `synchronous=FULL`): load, decide, commit and the effects, durable before it returns.

mod scenarios;
// Each bench target compiles `support` for itself and uses part of it.
#[allow(dead_code)]
mod support;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use followup::domain::ctx::SmsLedger;
use followup::domain::decide;
use followup::domain::playbooks::PlaybookName;
use followup::domain::policy::Policy;
use followup::domain::records::case::Language;
use followup::domain::sms::{self, SmsVars, TemplateId};

fn decide_per_playbook(c: &mut Criterion) {
    let policy = Policy::default();
    let mut group = c.benchmark_group("decide");
    for &playbook in PlaybookName::ALL {
        let s = scenarios::scenario(playbook, &policy);
        group.bench_function(playbook.as_str(), |b| {
            b.iter(|| decide(Some(black_box(&s.snapshot)), black_box(&s.input), s.now, &policy, &SmsLedger::default()).expect("decided"))
        });
    }
    group.finish();
}

fn sms_rendering(c: &mut Criterion) {
    let policy = Policy::default();
    // Every variable set: each template takes the ones it names.
    let vars = SmsVars {
        remaining_visits: Some(3),
        link: Some("https://stf.example.com/r/A-104233".into()),
        coupon_code: Some("CF-7Q2K9M".into()),
        discount: Some("15".into()),
        valid_until: Some("2026-04-01".into()),
        date: Some("2026-03-05".into()),
        time: Some("14:00".into()),
    };
    let mut group = c.benchmark_group("sms");
    for &template in TemplateId::ALL {
        group.bench_function(format!("render {template}"), |b| {
            b.iter(|| {
                let (_, body) = sms::render(black_box(template), Language::Ar, black_box(&vars), &policy.sms.hotline).expect("rendered");
                (sms::segments(&body), body)
            })
        });
    }
    group.finish();
}

fn durable_commit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = support::engine(dir.path());
    let mut n = 0u64;
    let mut group = c.benchmark_group("engine");
    group.bench_function("durable commit", |b| {
        b.iter(|| {
            n += 1;
            let input = support::booked(&format!("O{n}"));
            let id = support::delivery_id(&input);
            rt.block_on(engine.process(input, &id, "h", None)).expect("accepted")
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(std::time::Duration::from_secs(2))
        .measurement_time(std::time::Duration::from_secs(4));
    targets = decide_per_playbook, sms_rendering, durable_commit
}
criterion_main!(benches);
