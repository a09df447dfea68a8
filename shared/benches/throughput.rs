//! Durable events per second through the whole engine on SQLite (WAL, synchronous=FULL),
//! with many streams in flight at once, as a webhook burst would arrive.

mod support;

use std::sync::Arc;
use std::time::Instant;
use support::{booked, cancelled};

fn main() {
    let orders: usize = std::env::var("BENCH_ORDERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(support::engine(dir.path()));
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
                        for input in [booked(&order), cancelled(&order)] {
                            let id = support::delivery_id(&input);
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
