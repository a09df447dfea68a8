//! The HTTP load test of `make bench`: signed `appointment.booked` webhooks against a release
//! `followup-local` on the real clock and a fresh data dir (WAL, `synchronous=FULL`), from 1, 8,
//! 32 and 128 concurrent clients, each client one thread with a keep-alive connection. Prints one
//! row per level: events/s (every answer a 202) and as a multiple of this disk's fsync bound
//! (measured just before, in the same kind of temp dir: single-row transactions with the store's
//! pragmas), p50/p99 latency, and the server's peak RSS (`VmHWM`). The load runs on the same two
//! cores as the server.
//!
//! `LOAD_EVENTS` (10,000 per level) and `LOAD_CLIENTS` (`1,8,32,128`) change the run.

use followup_tests::{booked, Local};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kb.unwrap_or(f64::NAN) / 1024.0
}

/// Single-row `INSERT` transactions per second, WAL and `synchronous=FULL`: one fsync each.
fn fsync_bound() -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let conn = rusqlite::Connection::open(dir.path().join("fsync.db")).expect("open");
    let _: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).expect("WAL");
    conn.pragma_update(None, "synchronous", "FULL").expect("FULL");
    conn.execute_batch("CREATE TABLE t (x INTEGER)").expect("table");
    let (n, start) = (2_000, Instant::now());
    for i in 0..n {
        conn.execute("INSERT INTO t (x) VALUES (?1)", [i]).expect("insert");
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

fn main() {
    let events: usize = std::env::var("LOAD_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let levels: Vec<usize> = std::env::var("LOAD_CLIENTS")
        .ok()
        .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 8, 32, 128]);
    println!("HTTP load: {events} signed appointment.booked per level against a release followup-local (real clock, fresh data dir)");
    let bound = fsync_bound();
    println!("fsync bound: {bound:.0} single-row transactions/s on this disk");
    println!("{:>8} {:>10} {:>8} {:>8} {:>8} {:>12}", "clients", "events/s", "x bound", "p50 ms", "p99 ms", "peak RSS MB");
    for clients in levels {
        let dir = tempfile::tempdir().expect("temp dir");
        let local = Local::spawn_logging(dir.path(), None, &[], std::process::Stdio::null());
        let next = AtomicUsize::new(0);
        let latencies = Mutex::new(Vec::with_capacity(events));
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..clients {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= events {
                            break;
                        }
                        let data = booked(&format!("A-{i}"), &format!("O-{i}"), "2027-01-10T10:00:00+02:00", "2027-01-10T12:00:00+02:00");
                        let body = json!({"id": format!("load-{i}"), "type": "appointment.booked",
                                          "occurred_at": "2026-12-01T10:00:00+02:00", "data": data});
                        let at = Instant::now();
                        let (status, answer) = local.post_signed("/v1/appointments", body.to_string().as_bytes());
                        assert_eq!(status, 202, "{answer}");
                        mine.push(at.elapsed());
                    }
                    latencies.lock().unwrap().extend(mine);
                });
            }
        });
        let secs = start.elapsed().as_secs_f64();
        let mut l: Vec<Duration> = latencies.into_inner().unwrap();
        l.sort_unstable();
        let q = |p: f64| l[((l.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
        let rate = events as f64 / secs;
        println!("{clients:>8} {rate:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>12.1}", rate / bound, q(0.5), q(0.99), peak_rss_mb(local.pid()));
    }
}
