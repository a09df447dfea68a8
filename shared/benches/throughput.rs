//! Durable events per second through the whole engine on SQLite (WAL, synchronous=FULL), as a
//! webhook burst would arrive, next to this disk's fsync bound measured by the same run just
//! before: one small row per transaction, same pragmas, same directory.
//!
//! Each event is a booking or a cancellation that opens a case with an SMS and two timers: one
//! commit that also places the timers and appends the SMS (as followup-local runs it), durable
//! before it is answered. Writes in flight share group commits; the table says how many per fsync.
//! `BENCH_ORDERS` (1,000) orders per run, `BENCH_CONCURRENCY` (1,8,32,128) the events in flight.
//!
//! `make bench` measures the same levels end to end over HTTP (`tools/examples/load.rs`) and
//! prints them in its summary; this bench runs on its own (`cargo bench -p followup-shared
//! --bench throughput`) for the engine without HTTP and for the writes each group commit carries.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{booked, cancelled};

/// Single-row `INSERT` transactions per second with the store's pragmas: one fsync each.
fn fsync_bound(dir: &std::path::Path, n: usize) -> f64 {
    let conn = rusqlite::Connection::open(dir.join("fsync.db")).unwrap();
    let _: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
    let start = Instant::now();
    for i in 0..n {
        conn.execute("INSERT INTO t (x) VALUES (?1)", [i as i64]).unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Events per second and per-event latencies with `concurrency` events in flight.
fn run(orders: usize, concurrency: usize) -> (f64, Vec<Duration>, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(support::engine(dir.path()));
    let store = engine.store.clone();
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(orders * 2)));
    let start = Instant::now();
    rt.block_on(async {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let (engine, next, latencies) = (engine.clone(), next.clone(), latencies.clone());
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= orders {
                            break;
                        }
                        let order = format!("O{i}");
                        for input in [booked(&order), cancelled(&order)] {
                            let id = support::delivery_id(&input);
                            let at = Instant::now();
                            engine.process(input, &id, "h", None).await.expect("accepted");
                            latencies.lock().unwrap().push(at.elapsed());
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
    let mut l = std::mem::take(&mut *latencies.lock().unwrap());
    l.sort_unstable();
    let (groups, writes) = store.group_stats();
    ((orders * 2) as f64 / secs, l, writes as f64 / groups.max(1) as f64)
}

fn main() {
    let orders: usize = std::env::var("BENCH_ORDERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let levels: Vec<usize> = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 8, 32, 128]);
    let dir = tempfile::tempdir().unwrap();
    let bound = fsync_bound(dir.path(), 2_000);
    println!("fsync bound: {bound:.0} single-row WAL transactions/s (synchronous=FULL, this disk)");
    println!("{:>9} {:>10} {:>8} {:>8} {:>8} {:>14}", "in flight", "events/s", "x bound", "p50 ms", "p99 ms", "writes/commit");
    for concurrency in levels {
        let (rate, l, per_commit) = run(orders, concurrency);
        let q = |p: f64| l[((l.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
        println!("{concurrency:>9} {rate:>10.0} {:>8.2} {:>8.2} {:>8.2} {per_commit:>14.1}", rate / bound, q(0.5), q(0.99));
    }
}
