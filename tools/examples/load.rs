//! The HTTP load test of `make bench`, and the summary table that ends it.
//!
//! Load: signed `appointment.booked` webhooks against a release `followup-local` on the real
//! clock and a fresh data dir (WAL, `synchronous=FULL`), from 1, 8, 32 and 128 concurrent
//! clients. Each client is one thread with one keep-alive HTTP/1.1 connection (`TcpStream`,
//! `TCP_NODELAY`) that sends a request and reads its whole answer before the next, so the load
//! generator costs little of the two cores it shares with the server. Every request of a level
//! is built and signed before its clock starts (their timestamps stay well inside the
//! signature's window); its latency runs from the first byte sent to the last byte of the
//! answer. Every answer must be a 202: any other status, a malformed answer or a dropped
//! connection stops the run with what came back. Per level: events/s, that as a multiple of
//! this disk's fsync bound (measured just before, in the same kind of temp dir: single-row
//! transactions with the store's pragmas), p50/p99 latency, CPU per event of the server, of its
//! group-commit thread and of the load generator, and the server's peak RSS (`VmHWM`). Beside
//! the busiest level up to 32 clients, the same requests go to a route that does not exist
//! (every answer a 404): what HTTP alone costs here.
//!
//! Summary: the table printed last puts beside these the criterion means of `decide` per
//! playbook, SMS rendering and one durable commit (`shared/benches/decide.rs`, which `make bench`
//! runs first), read from `target/criterion/<group>/<bench>/new/estimates.json` (or
//! `$CRITERION_HOME`). Rows criterion has not measured are left out, and one line says so: `make
//! test` runs the benches once in test mode, which leaves no means, so its table holds only what
//! this run measured.
//!
//! `LOAD_EVENTS` (10,000 per level) and `LOAD_CLIENTS` (`1,8,32,128`) change the run.

use chrono::Utc;
use followup::domain::playbooks::PlaybookName;
use followup::domain::sms::TemplateId;
use followup_tests::{booked, Local, SECRET};
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kb.unwrap_or(f64::NAN) / 1024.0
}

/// CPU time (user + system, every thread) the process has used so far, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    stat_cpu_time(Path::new(&format!("/proc/{pid}/stat")))
}

/// utime + stime of a `/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat` file.
fn stat_cpu_time(path: &Path) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at `state`; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    // USER_HZ is 100 on every Linux this runs on.
    Duration::from_millis(ticks * 10)
}

/// CPU time of the server's group-commit thread (`sqlite-writer`): the one part that runs serially.
fn writer_cpu_time(pid: u32) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
    tasks
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "sqlite-writer"))
        .map(|t| stat_cpu_time(&t.path().join("stat")))
        .sum()
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

/// One keep-alive HTTP/1.1 connection: a request, then its whole answer, then the next.
struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    fn open(addr: &str) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Connection { stream: BufReader::new(stream) })
    }

    /// Sends `request` and reads the answer: its status and exactly `Content-Length` bytes of body.
    fn exchange(&mut self, request: &[u8]) -> Result<(u16, Vec<u8>), String> {
        self.stream.get_mut().write_all(request).map_err(|e| format!("send: {e}"))?;
        let status_line = self.line()?;
        let status = match status_line.split(' ').collect::<Vec<_>>().as_slice() {
            [version, code, ..] if version.starts_with("HTTP/1.") => code.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| format!("not an HTTP/1.x status line: {status_line:?}"))?;
        let mut length = None;
        loop {
            let header = self.line()?;
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').ok_or_else(|| format!("malformed header {header:?}"))?;
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse::<usize>().map_err(|_| format!("bad content-length {value:?}"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(format!("expected a content-length body, got transfer-encoding {}", value.trim()));
            }
        }
        let mut body = vec![0; length.ok_or("answer without content-length")?];
        self.stream.read_exact(&mut body).map_err(|e| format!("body: {e}"))?;
        Ok((status, body))
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.stream.read_line(&mut line) {
            Ok(0) => Err("the server closed the connection".into()),
            Ok(_) => Ok(line.trim_end_matches(['\r', '\n']).to_owned()),
            Err(e) => Err(format!("read: {e}")),
        }
    }
}

/// What a level sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Traffic {
    /// Signed `appointment.booked` deliveries, each answered 202 once durable.
    Webhooks,
    /// The same requests to a route that does not exist, answered 404 by the router: no signature
    /// check, parsing, decision or storage. What HTTP alone costs on this machine, its ceiling.
    HttpOnly,
}

impl Traffic {
    fn path(self) -> &'static str {
        match self {
            Traffic::Webhooks => "/v1/appointments",
            Traffic::HttpOnly => "/v1/nowhere",
        }
    }

    fn status(self) -> u16 {
        match self {
            Traffic::Webhooks => 202,
            Traffic::HttpOnly => 404,
        }
    }
}

/// Delivery `i` as bytes on the wire, signed now.
fn request(host: &str, i: usize, traffic: Traffic) -> Vec<u8> {
    let data = booked(&format!("A-{i}"), &format!("O-{i}"), "2027-01-10T10:00:00+02:00", "2027-01-10T12:00:00+02:00");
    let body = json!({"id": format!("load-{i}"), "type": "appointment.booked", "occurred_at": "2026-12-01T10:00:00+02:00", "data": data})
        .to_string();
    let ts = Utc::now().timestamp();
    let signature = followup::wire::sign(SECRET, ts, body.as_bytes());
    format!(
        "POST {} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         x-timestamp: {ts}\r\nx-signature: {signature}\r\n\r\n{body}",
        traffic.path(),
        body.len()
    )
    .into_bytes()
}

/// One level of the load: throughput, sorted latencies and the server's peak RSS.
struct Level {
    traffic: Traffic,
    clients: usize,
    rate: f64,
    latencies: Vec<Duration>,
    rss_mb: f64,
    /// Server CPU (all threads, user + system) per event.
    cpu_us: f64,
    /// Of that, the group-commit thread's: the serial part, so 1 s / this bounds events/s.
    writer_cpu_us: f64,
    /// The load generator's own CPU per event, on the same two cores.
    client_cpu_us: f64,
}

impl Level {
    fn quantile_ms(&self, p: f64) -> f64 {
        let l = &self.latencies;
        l[((l.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0
    }
}

/// `events` requests from `clients` connections against a fresh server; panics with the first
/// answer that is not the traffic's status (dropping the server on the way out).
fn run(events: usize, clients: usize, traffic: Traffic) -> Level {
    let dir = tempfile::tempdir().expect("temp dir");
    let local = Local::spawn_logging(dir.path(), None, &[], std::process::Stdio::null());
    let host = local.base.strip_prefix("http://").expect("an http:// base").to_owned();
    // Every request is built and signed before the clock starts, as a load generator replays a
    // capture: the two cores go to the server, not to JSON and HMAC on the client side.
    let requests: Vec<Vec<u8>> = (0..events).map(|i| request(&host, i, traffic)).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let cpu_before = (cpu_time(local.pid()), cpu_time(std::process::id()), writer_cpu_time(local.pid()));
    let start = Instant::now();
    let results: Vec<Result<Vec<Duration>, String>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let mut conn = Connection::open(&host).map_err(|e| format!("connect to {host}: {e}"))?;
                    let mut mine = Vec::with_capacity(events / clients + 1);
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= events {
                            break;
                        }
                        let at = Instant::now();
                        let answer = conn.exchange(&requests[i]);
                        let took = at.elapsed();
                        match answer {
                            Ok((status, _)) if status == traffic.status() => mine.push(took),
                            Ok((status, body)) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(format!("delivery load-{i} answered {status}: {}", String::from_utf8_lossy(&body)));
                            }
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(format!("delivery load-{i}: {e}"));
                            }
                        }
                    }
                    Ok(mine)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_else(|_| Err("a client thread panicked".into()))).collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let per_event = |now: Duration, before: Duration| (now - before).as_secs_f64() * 1e6 / events as f64;
    let cpu_us = per_event(cpu_time(local.pid()), cpu_before.0);
    let client_cpu_us = per_event(cpu_time(std::process::id()), cpu_before.1);
    let writer_cpu_us = per_event(writer_cpu_time(local.pid()), cpu_before.2);
    let mut latencies = Vec::with_capacity(events);
    for r in results {
        match r {
            Ok(l) => latencies.extend(l),
            Err(e) => panic!("load test failed at {clients} clients: {e}"),
        }
    }
    assert_eq!(latencies.len(), events, "every request answered {}", traffic.status());
    latencies.sort_unstable();
    Level {
        traffic,
        clients,
        rate: events as f64 / secs,
        latencies,
        rss_mb: peak_rss_mb(local.pid()),
        cpu_us,
        writer_cpu_us,
        client_cpu_us,
    }
}

/// Where criterion keeps its results: `$CRITERION_HOME`, else `criterion/` in this build's
/// target dir (this example runs from `<target>/release/examples/`).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let exe = std::env::current_exe().expect("example path");
    exe.ancestors().nth(3).expect("<target>/<profile>/examples/load").join("criterion")
}

/// A criterion mean in µs and when it was measured, or `None` when that bench has no result.
fn criterion_mean_us(dir: &Path, id: &str) -> Option<(f64, SystemTime)> {
    let path = id.split('/').fold(dir.to_path_buf(), |p, part| p.join(part)).join("new").join("estimates.json");
    let text = std::fs::read_to_string(&path).ok()?;
    let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
    let ns = estimates["mean"]["point_estimate"].as_f64()?;
    let at = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    Some((ns / 1000.0, at))
}

/// Every criterion row the summary expects, named as `shared/benches/decide.rs` names them.
fn criterion_ids() -> Vec<String> {
    let decide = PlaybookName::ALL.iter().map(|p| format!("decide/{p}"));
    let sms = TemplateId::ALL.iter().map(|t| format!("sms/render {t}"));
    decide.chain(sms).chain(["engine/durable commit".to_owned()]).collect()
}

fn clients(n: usize) -> String {
    if n == 1 {
        "1 client".into()
    } else {
        format!("{n} clients")
    }
}

/// The one table `make bench` ends with.
fn summary(bound: f64, levels: &[Level]) {
    let dir = criterion_dir();
    let mut rows: Vec<[String; 9]> = Vec::new();
    let row = |label: String, value: String, unit: &str| {
        [label, value, unit.to_owned(), String::new(), String::new(), String::new(), String::new(), String::new(), String::new()]
    };
    let (mut missing, mut oldest) = (Vec::new(), None::<SystemTime>);
    for id in criterion_ids() {
        match criterion_mean_us(&dir, &id) {
            Some((us, at)) => {
                oldest = Some(oldest.map_or(at, |o| o.min(at)));
                rows.push(row(id, format!("{us:.2}"), "µs (mean)"));
            }
            None => missing.push(id),
        }
    }
    let expected = missing.len() + rows.len();
    rows.push(row("fsync bound".into(), format!("{bound:.0}"), "tx/s"));
    for l in levels {
        let label = match l.traffic {
            Traffic::Webhooks => format!("throughput, {}", clients(l.clients)),
            Traffic::HttpOnly => format!("HTTP alone (a 404 route), {}", clients(l.clients)),
        };
        rows.push([
            label,
            format!("{:.0}", l.rate),
            match l.traffic {
                Traffic::Webhooks => "events/s",
                Traffic::HttpOnly => "requests/s",
            }
            .into(),
            format!("{:.2}", l.rate / bound),
            format!("{:.2}", l.quantile_ms(0.5)),
            format!("{:.2}", l.quantile_ms(0.99)),
            format!("{:.0}", l.cpu_us),
            format!("{:.0}", l.writer_cpu_us),
            format!("{:.0}", l.client_cpu_us),
        ]);
    }
    if let Some(peak) = levels.iter().filter(|l| l.traffic == Traffic::Webhooks).max_by(|a, b| a.rss_mb.total_cmp(&b.rss_mb)) {
        rows.push(row(format!("peak RSS of followup-local under load ({})", clients(peak.clients)), format!("{:.1}", peak.rss_mb), "MB"));
    }

    let header = [
        "measurement",
        "value",
        "unit",
        "x fsync bound",
        "p50 ms",
        "p99 ms",
        "server CPU µs/event",
        "of it writer thread",
        "client CPU µs/event",
    ]
    .map(String::from);
    let widths: Vec<usize> =
        (0..header.len()).map(|c| rows.iter().chain([&header]).map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let line = |r: &[String; 9]| {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (v, w))| {
                let pad = " ".repeat(w - v.chars().count());
                // Text left, figures right.
                if c == 0 || c == 2 {
                    format!("{v}{pad}")
                } else {
                    format!("{pad}{v}")
                }
            })
            .collect();
        println!("| {} |", cells.join(" | "));
    };
    println!();
    line(&header);
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(c, w)| if c == 0 || c == 2 { "-".repeat(w + 2) } else { format!("{}:", "-".repeat(w + 1)) })
        .collect();
    println!("|{}|", rule.join("|"));
    for r in &rows {
        line(r);
    }
    if let Some(age) = oldest.and_then(|o| o.elapsed().ok()) {
        println!("criterion means from {}, the oldest measured {:.0} min ago", dir.display(), age.as_secs_f64() / 60.0);
    }
    // make test runs the criterion benches once in test mode, which records no means: the table
    // then holds this run's HTTP figures only, and that is the expected outcome, not a failure.
    if missing.len() == expected {
        println!("this table has the HTTP load only; `make bench` measures decide, SMS rendering and the durable commit and prints the full table");
    } else if !missing.is_empty() {
        println!(
            "{} of {expected} criterion rows not measured yet ({}); `make bench` measures them all and prints the full table",
            missing.len(),
            missing.join(", ")
        );
    }
}

fn main() {
    let events: usize = std::env::var("LOAD_EVENTS").ok().and_then(|v| v.parse().ok()).filter(|&e| e > 0).unwrap_or(10_000);
    let levels: Vec<usize> = std::env::var("LOAD_CLIENTS")
        .ok()
        .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).filter(|&c| c > 0).collect())
        .unwrap_or_else(|| vec![1, 8, 32, 128]);
    println!("HTTP load: {events} signed appointment.booked per level against a release followup-local (real clock, fresh data dir)");
    let bound = fsync_bound();
    println!("fsync bound measured: {bound:.0} single-row transactions/s on this disk");
    // The ceiling beside the busiest level up to 32 clients: what the same connections get from
    // a server that only routes.
    let ceiling = levels.iter().copied().filter(|&n| n <= 32).max();
    let runs = levels.iter().map(|&n| (n, Traffic::Webhooks)).chain(ceiling.map(|n| (n, Traffic::HttpOnly)));
    let mut done = Vec::new();
    for (n, traffic) in runs {
        let level = run(events, n, traffic);
        println!(
            "{} {traffic:?}: {events} × {} at {:.0}/s, CPU per request: server {:.0} µs (writer thread {:.0} µs), load generator {:.0} µs",
            clients(level.clients),
            traffic.status(),
            level.rate,
            level.cpu_us,
            level.writer_cpu_us,
            level.client_cpu_us
        );
        done.push(level);
    }
    summary(bound, &done);
}
