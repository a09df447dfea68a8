//! Durable events per second through the whole engine on SQLite (WAL, synchronous=FULL),
//! with many streams in flight at once, as a webhook burst would arrive.

use chrono::{DateTime, Utc};
use followup::adapters::local::SqliteStore;
use followup::domain::case::{Customer, Language};
use followup::domain::events::{CancelledBy, Event, EventBody, Input};
use followup::domain::money::Money;
use followup::domain::policy::Policy;
use followup::engine::Engine;
use followup::ports::SystemClock;
use std::sync::Arc;
use std::time::Instant;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn inputs(order: &str) -> [Input; 2] {
    let at = t("2026-03-02T10:00:00+02:00");
    [
        Input::Event(Event {
            id: format!("b-{order}"),
            occurred_at: at,
            body: EventBody::AppointmentBooked {
                appointment_id: format!("A-{order}"),
                order_id: order.into(),
                customer: Customer { id: "C".into(), name: "Mona".into(), phone: "+201001234567".into(), language: Language::Ar },
                area: "Cairo".into(),
                service: "AC".into(),
                price: Money::new(45_000, "EGP"),
                window_start: t("2026-12-05T10:00:00+02:00"),
                window_end: t("2026-12-05T12:00:00+02:00"),
                visit_number: 1,
                technician_id: Some("T1".into()),
                discount_percent: 0,
            },
        }),
        Input::Event(Event {
            id: format!("c-{order}"),
            occurred_at: at,
            body: EventBody::AppointmentCancelled {
                appointment_id: format!("A-{order}"),
                cancelled_by: CancelledBy::Customer,
                reason: "travelling".into(),
                wants_follow_up: true,
                availability: None,
            },
        }),
    ]
}

fn main() {
    let orders: usize = std::env::var("BENCH_ORDERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let engine = Arc::new(Engine {
        timers: store.clone(),
        sms: store.clone(),
        commands: store.clone(),
        store,
        clock: SystemClock,
        policy: Arc::new(Policy::default()),
        secret: String::new(),
        locks: Default::default(),
    });
    let start = Instant::now();
    rt.block_on(async {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let (engine, next) = (engine.clone(), next.clone());
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= orders {
                            break;
                        }
                        let order = format!("O{i}");
                        for input in inputs(&order) {
                            let id = match &input {
                                Input::Event(e) => e.id.clone(),
                                Input::Timer(_) => unreachable!(),
                            };
                            engine.process(input, &id, "h").await.expect("accepted");
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let events = orders * 2;
    println!(
        "throughput: {events} durable events ({orders} bookings + {orders} cancellations opening a case with SMS and 2 timers), \
         {concurrency} in flight: {secs:.2} s, {:.0} events/s, {:.2} ms mean per event",
        events as f64 / secs,
        secs * 1000.0 / events as f64
    );
}
