//! Crash soak: nothing accepted is lost or doubled under `kill -9`.
//!
//! Client threads play orders and packages through every playbook (signed deliveries with unique
//! ids, some sent twice, some echoed) against followup-local on the virtual clock, while a driver
//! kills the process with SIGKILL at random moments and starts it again on the same data dir, and
//! another moves the virtual clock forward between bursts so timers fire. A request that died with
//! the process is sent again, same id and body, to the next one. Afterwards every accepted delivery
//! is looked for (its idempotency record, its booking, its call on the case timeline), every case's
//! timers are held to its state (R9.3), and the SMS and command outboxes are searched for doubles.
//!
//! The local outbox keeps one row per effect id, so an effect performed again after a restart is
//! not sent twice; the soak counts what it finds anyway (identical sends beyond the decisions
//! that made them), and holds them to at most one per kill.
//!
//! The clock moves between bursts: deliveries wait while it moves. A second run moves it while
//! deliveries are in flight (`FOLLOWUP_SOAK_CLOCK=overlap` makes the first do so too). Either way
//! every timer fires at its due instant (lateness 0 on the virtual clock, asserted).
//!
//! Size: about 1,000 events and 5 kills by default (part of `cargo test`, a few seconds);
//! `FOLLOWUP_SOAK=full` runs 10,000 events and 24 kills. `FOLLOWUP_SOAK_EVENTS`,
//! `FOLLOWUP_SOAK_KILLS` and `FOLLOWUP_SOAK_SEED` override the figures; the seed of every run is
//! printed, and with it the same choices are replayed (the kill moments and thread interleavings
//! still vary). The data dir and the engine's log are kept, and their path printed, when the soak
//! finds something or `FOLLOWUP_SOAK_KEEP` is set.

#[path = "soak/load.rs"]
mod load;

use chrono::{DateTime, Duration, Utc};
use followup::adapters::local::SqliteStore;
use followup::domain::effects::TimerRef;
use followup::domain::subjects::snapshot::SubjectKey;
use followup::ports::CaseStore;
use followup_tests::Local;
use load::{request, Answer, Client, Delivery, Report, Rng, Server, Trace};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const START: &str = "2026-03-02T08:00:00+02:00";

struct Size {
    name: &'static str,
    events: u64,
    kills: usize,
    clients: usize,
    /// New deliveries between two moves of the clock.
    burst: u64,
    /// Virtual days the load spans.
    span_days: i64,
    /// The clock moves while deliveries are in flight, rather than between bursts.
    overlap: bool,
}

fn size() -> Size {
    let env_num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let mut s = match std::env::var("FOLLOWUP_SOAK").as_deref() {
        Ok("full") => Size { name: "full", events: 10_000, kills: 24, clients: 4, burst: 25, span_days: 45, overlap: false },
        _ => Size { name: "short", events: 1_000, kills: 5, clients: 4, burst: 20, span_days: 10, overlap: false },
    };
    if let Some(n) = env_num("FOLLOWUP_SOAK_EVENTS") {
        s.events = n;
    }
    if let Some(n) = env_num("FOLLOWUP_SOAK_KILLS") {
        s.kills = n as usize;
    }
    s.overlap = std::env::var("FOLLOWUP_SOAK_CLOCK").as_deref() == Ok("overlap");
    s
}

fn rfc3339(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).expect("RFC 3339").with_timezone(&Utc)
}

/// The engine process, replaced by a new one on the same data dir after each kill.
struct Engine {
    local: Mutex<Local>,
    data: PathBuf,
    log: PathBuf,
}

impl Engine {
    fn spawn(data: &Path, log: &Path) -> Local {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        // Warnings, and the runtime's own start-up lines (how many pending effects it re-drove).
        Local::spawn_logging(data, Some(START), &[("RUST_LOG", "warn,followup_local=info"), ("FOLLOWUP_LOG", "json")], file.into())
    }
}

/// Timer lateness as one process reported it before it died (or at the end).
#[derive(Debug, Clone, Default)]
struct Lateness {
    count: u64,
    p50: i64,
    p99: i64,
    max: i64,
}

fn lateness_of(metrics: &Value) -> Option<Lateness> {
    let l = &metrics["timer_lateness"];
    Some(Lateness {
        count: l["count"].as_u64()?,
        p50: l["p50_ms"].as_i64().unwrap_or(0),
        p99: l["p99_ms"].as_i64().unwrap_or(0),
        max: l["max_ms"].as_i64().unwrap_or(0),
    })
}

/// One try, no retry: for the requests whose repeat would not be the same request (moving the clock by N).
fn try_once(server: &Server, http: &reqwest::blocking::Client, method: &str, path: &str, body: Option<Value>) -> Option<(u16, Value)> {
    let base = server.base()?;
    let url = format!("{base}{path}");
    let req = if method == "GET" { http.get(url) } else { http.post(url) };
    let req = match body {
        Some(b) => req.header("content-type", "application/json").body(b.to_string()),
        None => req,
    };
    let resp = req.send().ok()?;
    let status = resp.status().as_u16();
    let body = resp.json().unwrap_or(Value::Null);
    Some((status, body))
}

/// Moves the virtual clock by `secs`: `advance_secs` first; if the process dies during the pass,
/// the next one is taken `to` the same target (part of the pass may have been done and saved).
fn advance(server: &Server, http: &reqwest::blocking::Client, secs: i64) -> (u64, bool) {
    let now = request(server, http, "GET", "/local/clock", None, false);
    let target = rfc3339(now.body["now"].as_str().expect("the clock answers now")) + Duration::seconds(secs);
    if let Some((200, body)) = try_once(server, http, "POST", "/local/clock", Some(json!({"advance_secs": secs}))) {
        server.set_now(rfc3339(body["now"].as_str().expect("now")));
        return (body["fired"].as_u64().unwrap_or(0), false);
    }
    let to = serde_json::to_vec(&json!({"to": target.to_rfc3339()})).unwrap();
    let Answer { status, body, .. } = request(server, http, "POST", "/local/clock", Some(&to), false);
    assert_eq!(status, 200, "moving the clock to {target} after a kill: {body}");
    server.set_now(rfc3339(body["now"].as_str().expect("now")));
    (body["fired"].as_u64().unwrap_or(0), true)
}

#[test]
fn crash_soak_nothing_accepted_is_lost_or_doubled_under_kill_9() {
    soak(size());
}

/// The same with the clock moving while deliveries are in flight: a decision racing a clock move
/// still has its timers fired at their due instants (followup-local holds the move off meanwhile).
#[test]
fn crash_soak_with_the_clock_moving_under_the_deliveries() {
    soak(Size { overlap: true, ..size() });
}

fn soak(size: Size) {
    let seed = std::env::var("FOLLOWUP_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log = tmp.path().join("followup.log");
    let engine = Engine { local: Mutex::new(Engine::spawn(&data, &log)), data: data.clone(), log: log.clone() };
    let base = engine.local.lock().unwrap().base.clone();
    let mut server = Server::new(base, rfc3339(START), size.events);
    server.overlap = size.overlap;
    let server = Arc::new(server);
    let lateness: Mutex<Vec<Lateness>> = Mutex::new(Vec::new());
    let mut rng = Rng::new(seed);
    let mut kill_points: Vec<u64> = (0..size.kills).map(|_| size.events / 20 + rng.below(size.events * 9 / 10)).collect();
    kill_points.sort_unstable();
    let mean_advance = size.span_days * 86_400 * size.burst as i64 / size.events.max(1) as i64;

    let mut reports: Vec<Report> = Vec::new();
    let mut kills = 0usize;
    let mut kills_during_clock = 0usize;
    let mut restart_ms: Vec<u128> = Vec::new();
    let mut advances = 0u64;
    let mut advances_retried = 0u64;
    let mut fired_during_load = 0u64;
    let clock_busy = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..size.clients)
            .map(|n| {
                let server = server.clone();
                scope.spawn(move || Client::new(n, seed, server).run())
            })
            .collect();
        // Between bursts the virtual clock moves on, firing the timers that fall due.
        let clock = scope.spawn(|| {
            let http = load::http_client();
            let mut rng = Rng::new(seed ^ 0xC10C);
            let (mut next, mut n, mut retried, mut fired) = (size.burst, 0u64, 0u64, 0u64);
            while !server.done.load(Ordering::SeqCst) {
                if server.sent.load(Ordering::SeqCst) < next {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    continue;
                }
                next += size.burst;
                let secs = mean_advance / 2 + rng.range(0, mean_advance);
                let burst_over = (!server.overlap).then(|| server.gate.write().unwrap());
                clock_busy.store(true, Ordering::SeqCst);
                let (f, again) = advance(&server, &http, secs);
                clock_busy.store(false, Ordering::SeqCst);
                drop(burst_over);
                n += 1;
                fired += f;
                retried += u64::from(again);
            }
            (n, retried, fired)
        });
        // kill -9 at random moments, then a new process on the same data dir.
        let killer = scope.spawn(|| {
            let http = load::http_client();
            let mut rng = Rng::new(seed ^ 0xDEAD);
            let (mut kills, mut during_clock, mut restarts) = (0usize, 0usize, Vec::new());
            for point in &kill_points {
                while server.sent.load(Ordering::SeqCst) < *point && !server.done.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                // A load that ended before this kill point (a fast machine) still gets every kill:
                // a restart after the load proves as much about recovery.
                if !server.done.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(rng.below(250)));
                }
                if let Some((200, m)) = try_once(&server, &http, "GET", "/local/metrics", None) {
                    lateness.lock().unwrap().extend(lateness_of(&m));
                }
                let mut local = engine.local.lock().unwrap();
                during_clock += usize::from(clock_busy.load(Ordering::SeqCst));
                local.kill9();
                server.down();
                let t0 = Instant::now();
                *local = Engine::spawn(&engine.data, &engine.log);
                restarts.push(t0.elapsed().as_millis());
                server.up(local.base.clone());
                kills += 1;
            }
            (kills, during_clock, restarts)
        });
        for c in clients {
            reports.push(c.join().expect("client thread"));
        }
        server.done.store(true, Ordering::SeqCst);
        let (n, retried, fired) = clock.join().expect("clock thread");
        (advances, advances_retried, fired_during_load) = (n, retried, fired);
        let (k, d, r) = killer.join().expect("kill driver");
        (kills, kills_during_clock, restart_ms) = (k, d, r);
    });
    let load_secs = started.elapsed().as_secs_f64();
    let http = load::http_client();
    let now_after_load = server.now();
    if let Some((200, m)) = try_once(&server, &http, "GET", "/local/metrics", None) {
        lateness.lock().unwrap().extend(lateness_of(&m));
    }

    let deliveries: Vec<&Delivery> = reports.iter().flat_map(|r| r.deliveries.iter()).collect();
    let mut orders: Vec<String> = reports.iter().flat_map(|r| r.orders.iter().cloned()).collect();
    orders.sort();
    orders.dedup();
    let packages: Vec<String> = reports.iter().flat_map(|r| r.packages.iter().cloned()).collect();
    let mut findings: Vec<String> = reports.iter().flat_map(|r| r.violations.iter().cloned()).collect();

    // R9.3 at the end of the load, mid-flight: every case still being worked waits on a timer.
    let cases_at_load_end = all_cases(&server, &http, &orders, &packages);
    let r93_load = timers_match_state(&cases_at_load_end, "end of load", &mut findings);
    let timer_check = check_timers(&data, &orders, &packages, now_after_load);
    findings.extend(timer_check.findings);

    // Then every timer is let run out (a local day at a time, so the midnight sweeps run too).
    let mut fired_in_drain = 0u64;
    for _ in 0..60 {
        fired_in_drain += advance(&server, &http, 86_400).0;
    }
    let cases = all_cases(&server, &http, &orders, &packages);
    let r93_drain = timers_match_state(&cases, "after the drain", &mut findings);
    let still_open = cases.values().filter(|c| !finished(c)).count();

    // Every accepted delivery is where it belongs, once.
    let mut lost: Vec<String> = Vec::new();
    let mut doubled_on_timeline: Vec<String> = Vec::new();
    let tags = tag_index(&cases);
    let (mut calls_checked, mut reasons_checked, mut bookings_checked) = (0, 0, 0);
    for d in &deliveries {
        let seen = tags.get(d.tag.as_str()).cloned().unwrap_or_default();
        let mut per_case: HashMap<&str, usize> = HashMap::new();
        for (case, _) in &seen {
            *per_case.entry(case.as_str()).or_default() += 1;
        }
        if let Some((case, n)) = per_case.iter().find(|(_, n)| **n > 1) {
            doubled_on_timeline.push(format!("{} {}: {n} times on {case}", d.id, d.kind));
        }
        if !d.accepted() {
            if !seen.is_empty() {
                findings.push(format!("{} {} was refused ({:?}) yet is on {:?}", d.id, d.kind, d.statuses, seen));
            }
            continue;
        }
        match &d.trace {
            Trace::Call { case_id, call_id } => {
                calls_checked += 1;
                let needle = format!("call {call_id} by");
                let n = cases
                    .get(case_id)
                    .map(|c| timeline(c).filter(|(k, detail)| *k == "call" && detail.contains(&needle)).count())
                    .unwrap_or(0);
                if n != 1 {
                    lost.push(format!("{} call.completed {call_id}: {n} call entries on {case_id}", d.id));
                }
            }
            Trace::Reason => {
                if let Some(case_id) = &d.case_id {
                    reasons_checked += 1;
                    let n = seen.iter().filter(|(c, k)| c == case_id && k == "event").count();
                    if n != 1 {
                        lost.push(format!("{} {}: its reason is {n} times on {case_id}", d.id, d.kind));
                    }
                }
            }
            Trace::Appointment { appointment_id, .. } => {
                bookings_checked += 1;
                let answer = request(&server, &http, "GET", &format!("/v1/cases?appointment_id={appointment_id}"), None, false);
                if answer.status != 200 {
                    lost.push(format!("{} appointment.booked {appointment_id}: the cases list answers {}", d.id, answer.status));
                }
            }
            Trace::Package { package_id } => {
                bookings_checked += 1;
                let answer = request(&server, &http, "GET", &format!("/v1/cases?package_id={package_id}"), None, false);
                if answer.status != 200 {
                    lost.push(format!("{} package.booked {package_id}: the cases list answers {}", d.id, answer.status));
                }
            }
            Trace::None => {}
        }
    }

    // The store itself: each accepted delivery's idempotency record, each booking's subject, and
    // each pending timer of each snapshot in the timer table.
    let store_check = check_store(&data, &deliveries);
    lost.extend(store_check.lost);
    findings.extend(store_check.findings);

    // Each SMS and command went out once.
    let (timeline_fired, timeline_late) = timeline_lateness(&cases);
    let sms = request(&server, &http, "GET", "/local/sms", None, false).body["messages"].as_array().cloned().unwrap_or_default();
    let commands = request(&server, &http, "GET", "/local/commands", None, false).body["commands"].as_array().cloned().unwrap_or_default();
    // An SMS of no case (R7.3's confirmation of a dashboard reschedule, R6) is one per
    // reschedule logged on the customer's appointment at that instant.
    let subject_sms = reschedules_by_phone(&data, &orders);
    let sms_sends = sms.iter().map(|m| {
        let at = m["sent_at"].as_str().unwrap_or("").to_owned();
        let to = m["to"].as_str().unwrap_or("").to_owned();
        let case_id = m["case_id"].as_str().map(str::to_owned);
        let template = m["template"].as_str().unwrap_or("").to_owned();
        let decided = match &case_id {
            Some(c) => Decided::Timeline(c.clone()),
            None if template == "RESCHEDULE_CONFIRMATION" => {
                Decided::Count(subject_sms.get(&(to.clone(), rfc3339(&at))).copied().unwrap_or(0))
            }
            None => Decided::Count(0),
        };
        Send {
            group: (case_id.unwrap_or(format!("to {to}")), template, at),
            decided,
            content: json!([m["to"], m["case_id"], m["template"], m["body"], m["sent_at"]]),
        }
    });
    let (sms_doubles, sms_doubled, sms_alike) = doubles(sms_sends, &cases, "sms");
    let command_sends = commands.iter().map(|c| {
        let case_id = c["case_id"].as_str().map(str::to_owned);
        Send {
            decided: case_id.clone().map_or(Decided::Count(0), Decided::Timeline),
            group: (case_id.unwrap_or_default(), c["type"].as_str().unwrap_or("").to_owned(), c["at"].as_str().unwrap_or("").to_owned()),
            content: json!([c["type"], c["case_id"], c["at"], c["data"]]),
        }
    });
    let (command_doubles, command_doubled, command_alike) = doubles(command_sends, &cases, "command");

    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let panics: Vec<String> = log_text.lines().filter(|l| l.contains("panicked")).map(str::to_owned).collect();
    // Effects a kill left between the commit and their done mark, performed again at start-up.
    let redriven: Vec<u64> = log_text
        .lines()
        .filter(|l| l.contains("re-drove pending effects"))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok()?["fields"]["effects"].as_u64())
        .collect();
    drop(engine);
    let total_secs = started.elapsed().as_secs_f64();
    // The data dir and the engine's log stay for a look when something was found (or when asked).
    let failed = !lost.is_empty() || !doubled_on_timeline.is_empty() || !findings.is_empty() || !panics.is_empty();
    let kept = (failed || std::env::var_os("FOLLOWUP_SOAK_KEEP").is_some()).then(|| tmp.keep());

    // ---- the summary ----
    let accepted = deliveries.iter().filter(|d| d.accepted()).count();
    let refused = deliveries.len() - accepted;
    let duplicates: u32 = deliveries.iter().map(|d| d.duplicates).sum();
    let repeats: u64 = reports.iter().map(|r| r.repeats).sum();
    let retried = deliveries.iter().filter(|d| d.transport_failures > 0).count();
    let accepted_before_a_kill = deliveries.iter().filter(|d| d.accepted_before_a_kill).count();
    let died_first = || deliveries.iter().filter(|d| d.first_try_died);
    let accepted_on_retry = died_first().filter(|d| d.statuses[0] == 202 && !d.accepted_before_a_kill).count();
    let refused_on_retry = died_first().filter(|d| d.statuses[0] != 202).count();
    let unavailable: u32 = deliveries.iter().map(|d| d.unavailable).sum();
    let mut by_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for d in &deliveries {
        let e = by_kind.entry(d.kind).or_default();
        e.0 += 1;
        e.1 += usize::from(d.accepted());
    }
    let mut playbooks: BTreeMap<String, usize> = BTreeMap::new();
    for c in cases.values() {
        *playbooks.entry(c["playbook"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
    }
    let late = lateness.lock().unwrap().clone();
    let timers_fired: u64 = late.iter().map(|l| l.count).sum();
    let doubled_sends = sms_doubled + command_doubled;
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("crash soak ({}, seed {seed}): {:.1} s of load, {:.1} s in all", size.name, load_secs, total_secs));
    line(format!("  events sent                    {} unique deliveries from {} client threads", deliveries.len(), size.clients));
    line(format!("  accepted                       {accepted} (refused by a rule or unknown subject: {refused})"));
    line(format!("  duplicates answered            {duplicates} ({repeats} deliberate repeats of an answered delivery, {accepted_before_a_kill} retries after a kill)"));
    line(format!(
        "  retried after a kill           {retried} deliveries ({} first sends: {accepted_before_a_kill} already accepted, answered duplicate; {accepted_on_retry} accepted on the retry; {refused_on_retry} refused on the retry); 503 answers retried: {unavailable}",
        died_first().count()
    ));
    line(format!(
        "  kills                          {kills} (kill -9; {kills_during_clock} while the clock was moving), restart p50 {} ms",
        median(&restart_ms)
    ));
    line(format!(
        "  clock moves                    {advances} during the load ({advances_retried} finished after a kill), virtual {} → {}",
        START,
        load::local(now_after_load).to_rfc3339()
    ));
    line(format!("  timers fired                   {fired_during_load} by clock moves during the load, {fired_in_drain} in the 60-day drain ({timers_fired} counted by the processes)"));
    line(format!(
        "  effects re-driven at restart   {} after {} of the kills (a kill between a commit and its effects' done marks)",
        redriven.iter().sum::<u64>(),
        redriven.len()
    ));
    line(format!("  call outcomes accepted         {}", call_mix(&deliveries)));
    line(format!("  accepted events lost           {} (checked: {} deliveries in the store, {calls_checked} call ids, {reasons_checked} reasons, {bookings_checked} bookings)", lost.len(), accepted));
    line(format!("  doubled on a timeline          {}", doubled_on_timeline.len()));
    line(format!(
        "  doubled sends (at-least-once window)  {doubled_sends} ({} SMS of {}, {} commands of {}); identical sends made by separate decisions: {} SMS, {} commands",
        sms_doubled,
        sms.len(),
        command_doubled,
        commands.len(),
        sms_alike,
        command_alike
    ));
    line(format!("  cases                          {} {:?}; R9.3 held on {r93_load}/{} at the end of the load and {r93_drain}/{} after the drain; {still_open} still being worked after the drain", cases.len(), playbooks, cases_at_load_end.len(), cases.len()));
    line(format!(
        "  timers in the store            {} pending on the snapshots at the end of the load: {} missing from the timer table, {} overdue",
        timer_check.timers, timer_check.missing_timers, timer_check.overdue_timers
    ));
    let worst = late.iter().max_by_key(|l| l.p99).cloned().unwrap_or_default();
    line(format!(
        "  timer lateness                 p50 {} ms, p99 {} ms, max {} ms over {} processes (the virtual clock fires each timer at its due instant, so 0 is expected)",
        late.iter().map(|l| l.p50).max().unwrap_or(0),
        worst.p99,
        late.iter().map(|l| l.max).max().unwrap_or(0),
        late.len()
    ));
    line(format!(
        "  case timers on the timelines   {timeline_fired} fired, {} after their due instant{}",
        timeline_late.len(),
        timeline_late.first().map(|(secs, what)| format!(" (worst {secs} s: {what})")).unwrap_or_default()
    ));
    line(format!("  panics in the log              {}", panics.len()));
    line(format!(
        "  by type (sent/accepted)        {}",
        by_kind.iter().map(|(k, (s, a))| format!("{k} {s}/{a}")).collect::<Vec<_>>().join(", ")
    ));
    for (what, list) in [("lost", &lost), ("doubled on a timeline", &doubled_on_timeline), ("finding", &findings), ("panic", &panics)] {
        for item in list.iter().take(15) {
            line(format!("  {what}: {item}"));
        }
        if list.len() > 15 {
            line(format!("  … and {} more", list.len() - 15));
        }
    }
    for (what, list) in [("doubled SMS", &sms_doubles), ("doubled command", &command_doubles)] {
        for item in list.iter().take(5) {
            line(format!("  {what}: {item}"));
        }
    }
    if let Some(dir) = &kept {
        line(format!("  data dir and log kept in {}", dir.display()));
    }
    // Straight to stderr, so the summary shows under `cargo test` without --nocapture.
    let _ = std::io::stderr().write_all(out.as_bytes());

    assert!(kills >= size.kills, "only {kills} of {} kills happened", size.kills);
    assert!(lost.is_empty(), "{} accepted events lost (see the summary)", lost.len());
    assert!(doubled_on_timeline.is_empty(), "{} deliveries recorded twice on a case", doubled_on_timeline.len());
    assert!(doubled_sends <= kills, "{doubled_sends} doubled sends for {kills} kills");
    assert!(panics.is_empty(), "the engine panicked: {}", panics[0]);
    // A clock move waits for the decisions in flight, so every timer fires at its due instant,
    // across restarts too.
    assert!(late.iter().all(|l| l.max == 0), "timers fired late on the virtual clock: {late:?}");
    assert!(timeline_late.is_empty(), "case timers fired late: {:?}", &timeline_late[..timeline_late.len().min(5)]);
    assert!(findings.is_empty(), "{} findings (see the summary)", findings.len());
}

/// Case timers as the timelines tell them: each `<kind> fired` entry matched with the earliest
/// pending `<kind> due <t>` placed before it. Returns how many fired, and the late ones (fired
/// after both their due time and the moment they were placed) as (seconds late, description).
fn timeline_lateness(cases: &BTreeMap<String, Value>) -> (usize, Vec<(i64, String)>) {
    let (mut fired, mut late) = (0, Vec::new());
    for (id, c) in cases {
        let mut pending: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
        for (kind, detail, at) in timeline_at(c) {
            let Ok(at) = DateTime::parse_from_rfc3339(at).map(|t| t.with_timezone(&Utc)) else { continue };
            let due = |d: &str| {
                d.split_once(" due ").and_then(|(k, t)| Some((k.to_owned(), DateTime::parse_from_rfc3339(t).ok()?.with_timezone(&Utc))))
            };
            match kind {
                "timer_placed" => pending.extend(due(detail).map(|(k, t)| (k, t, at))),
                "timer_cancelled" => {
                    if let Some((k, t)) = due(detail) {
                        if let Some(i) = pending.iter().position(|p| p.0 == k && p.1 == t) {
                            pending.remove(i);
                        }
                    }
                }
                "timer" => {
                    let Some(k) = detail.strip_suffix(" fired") else { continue };
                    let Some(i) = pending.iter().enumerate().filter(|(_, p)| p.0 == k).min_by_key(|(_, p)| p.1).map(|(i, _)| i) else {
                        continue;
                    };
                    let (_, due_at, placed_at) = pending.remove(i);
                    fired += 1;
                    let secs = (at - due_at.max(placed_at)).num_seconds();
                    if secs > 0 {
                        late.push((secs, format!("{id} {k} due {due_at} (placed {placed_at}) fired {at}")));
                    }
                }
                _ => {}
            }
        }
    }
    late.sort_by_key(|l| std::cmp::Reverse(l.0));
    (fired, late)
}

/// Accepted `call.completed` by outcome and resolution kind.
fn call_mix(deliveries: &[&Delivery]) -> String {
    let mut mix: BTreeMap<String, usize> = BTreeMap::new();
    for d in deliveries.iter().filter(|d| d.kind == "call.completed" && d.accepted()) {
        let body: Value = serde_json::from_slice(&d.body).expect("json");
        let data = &body["data"];
        let key = match (data["outcome"].as_str().unwrap_or("?"), data["resolution"]["kind"].as_str()) {
            ("answered", Some(kind)) => format!("answered {kind}"),
            ("answered", None) => "answered without resolution".to_owned(),
            (other, _) => format!("{other} (not reached)"),
        };
        *mix.entry(key).or_default() += 1;
    }
    mix.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

fn median(v: &[u128]) -> u128 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Every case of the orders and packages that were booked, by case id.
fn all_cases(server: &Server, http: &reqwest::blocking::Client, orders: &[String], packages: &[String]) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    let queries = orders.iter().map(|o| format!("order_id={o}")).chain(packages.iter().map(|p| format!("package_id={p}")));
    for q in queries {
        let answer = request(server, http, "GET", &format!("/v1/cases?{q}"), None, false);
        assert_eq!(answer.status, 200, "{q}: {}", answer.body);
        for c in answer.body["cases"].as_array().cloned().unwrap_or_default() {
            all.insert(c["case_id"].as_str().unwrap().to_owned(), c);
        }
    }
    all
}

fn finished(case: &Value) -> bool {
    matches!(case["ticket"]["status"].as_str(), Some("resolved" | "closed" | "waiting_on_third_party"))
}

/// R9.3: a case still being worked has a pending timer; a finished one has none. Returns how many held.
fn timers_match_state(cases: &BTreeMap<String, Value>, when: &str, findings: &mut Vec<String>) -> usize {
    let mut held = 0;
    for (id, c) in cases {
        let timers = c["timers"].as_array().map_or(0, Vec::len);
        let status = c["ticket"]["status"].as_str().unwrap_or("?");
        // R3.7 (v3) a painting job's follow-up call outlives the resolution: a resolved second
        // visit may wait on that one call.
        let job_call = c["playbook"] == "second_visit_follow_up"
            && status == "resolved"
            && c["timers"].as_array().is_some_and(|t| t.len() == 1 && t[0]["kind"] == "call_attempt");
        if finished(c) == (timers == 0) || job_call {
            held += 1;
        } else if finished(c) {
            findings.push(format!("{when}: {id} ({}) is {status} yet has timers {}", c["playbook"], c["timers"]));
        } else {
            findings.push(format!("{when}: {id} ({}, state {}) is {status} with no timer (R9.3)", c["playbook"], c["state"]));
        }
    }
    held
}

fn timeline(case: &Value) -> impl Iterator<Item = (&str, &str)> {
    case["timeline"].as_array().into_iter().flatten().map(|e| (e["kind"].as_str().unwrap_or(""), e["detail"].as_str().unwrap_or("")))
}

/// Where each delivery's tag (`[s<n>-<seq>]`) appears: (case id, entry kind), for `event` and `call` entries.
fn tag_index(cases: &BTreeMap<String, Value>) -> HashMap<String, Vec<(String, String)>> {
    let mut index: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (id, c) in cases {
        for (kind, detail) in timeline(c) {
            if kind != "event" && kind != "call" {
                continue;
            }
            let mut rest = detail;
            while let Some(i) = rest.find("[s") {
                let tail = &rest[i..];
                let Some(end) = tail.find(']') else { break };
                let tag = &tail[..=end];
                if tag[2..tag.len() - 1].bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                    index.entry(tag.to_owned()).or_default().push((id.clone(), kind.to_owned()));
                }
                rest = &tail[end..];
            }
        }
    }
    index
}

/// One SMS or command as the outbox holds it: the (case or customer, template or type, instant)
/// it belongs to, where the decisions that made it are counted, and everything it says.
/// (case or customer, template or command type, instant).
type Group = (String, String, String);

struct Send {
    group: Group,
    decided: Decided,
    content: Value,
}

/// How many decisions made a group of sends.
enum Decided {
    /// Count the case's timeline entries for that template or command type at that instant.
    Timeline(String),
    /// Counted elsewhere.
    Count(usize),
}

/// Sends beyond what the decisions made. Identical sends are grouped by content, and the
/// decisions that sent that template or command type at that instant are counted (two calls
/// reported in the same virtual minute legitimately send the same text twice): only sends beyond
/// both counts are doubles. Returns the doubled groups, the sends beyond the decisions, and how
/// many identical sends the decisions account for.
fn doubles(sends: impl Iterator<Item = Send>, cases: &BTreeMap<String, Value>, entry: &str) -> (Vec<String>, usize, usize) {
    let mut groups: HashMap<Group, (Decided, HashMap<String, usize>)> = HashMap::new();
    for s in sends {
        *groups.entry(s.group).or_insert_with(|| (s.decided, HashMap::new())).1.entry(s.content.to_string()).or_default() += 1;
    }
    let (mut found, mut doubled, mut alike) = (Vec::new(), 0, 0);
    for ((_, what, at), (decided, contents)) in groups {
        let total: usize = contents.values().sum();
        let distinct = contents.len();
        if total == distinct {
            continue;
        }
        // A case's timeline: `sms` entries read "<template> to …", `command` entries "<type> {…}".
        let decided = match decided {
            Decided::Timeline(case_id) => cases.get(&case_id).map_or(0, |c| {
                let prefix = format!("{what} ");
                timeline_at(c).filter(|(k, d, t)| *k == entry && *t == at && d.starts_with(&prefix)).count()
            }),
            Decided::Count(n) => n,
        };
        let extra = total.saturating_sub(decided.max(distinct));
        alike += total - distinct - extra;
        doubled += extra;
        if extra > 0 {
            let (content, n) = contents.iter().max_by_key(|(_, n)| **n).unwrap();
            found.push(format!("{n}× {content} ({decided} decisions made it)"));
        }
    }
    found.sort();
    (found, doubled, alike)
}

/// Reschedules logged on the orders' appointments, by (customer phone, instant).
fn reschedules_by_phone(data: &Path, orders: &[String]) -> HashMap<(String, DateTime<Utc>), usize> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(data).expect("open the data dir");
        let mut by = HashMap::new();
        for o in orders {
            let Some(s) = store.load(&SubjectKey::Order(o.clone())).await.expect("load") else { continue };
            for a in s.as_order().map(|o| o.appointments.as_slice()).unwrap_or_default() {
                for r in &a.reschedule_log {
                    *by.entry((a.customer.phone.clone(), r.at)).or_default() += 1;
                }
            }
        }
        by
    })
}

fn timeline_at(case: &Value) -> impl Iterator<Item = (&str, &str, &str)> {
    case["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["kind"].as_str().unwrap_or(""), e["detail"].as_str().unwrap_or(""), e["at"].as_str().unwrap_or("")))
}

struct StoreCheck {
    lost: Vec<String>,
    findings: Vec<String>,
    timers: usize,
    missing_timers: usize,
    overdue_timers: usize,
}

/// Reads the data dir directly (the engine is idle by now): each delivery's idempotency record
/// (and none for a refused one), each booking's subject.
fn check_store(data: &Path, deliveries: &[&Delivery]) -> StoreCheck {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(data).expect("open the data dir");
        let mut c = StoreCheck { lost: Vec::new(), findings: Vec::new(), timers: 0, missing_timers: 0, overdue_timers: 0 };
        for d in deliveries {
            let record = store.delivery(&d.id).await.expect("read a delivery");
            match (d.accepted(), record) {
                (true, None) => c.lost.push(format!("{} {}: accepted ({:?}) but no idempotency record", d.id, d.kind, d.statuses)),
                (true, Some(r)) if r.body_hash != followup::wire::body_hash(&d.body) => {
                    c.lost.push(format!("{} {}: recorded with another body", d.id, d.kind))
                }
                (false, Some(_)) => c.findings.push(format!("{} {}: refused ({:?}) yet recorded as accepted", d.id, d.kind, d.statuses)),
                _ => {}
            }
            if !d.accepted() {
                continue;
            }
            match &d.trace {
                Trace::Appointment { appointment_id, order_id } => {
                    let key = store
                        .locate(&followup::domain::ids::SubjectId::Appointment(appointment_id.clone()).to_string())
                        .await
                        .expect("locate");
                    let snapshot = match &key {
                        Some(k) => store.load(k).await.expect("load"),
                        None => None,
                    };
                    let booked = snapshot.as_ref().and_then(|s| s.as_order()).is_some_and(|o| o.appointment(appointment_id).is_some());
                    if key != Some(SubjectKey::Order(order_id.clone())) || !booked {
                        c.lost.push(format!("{} appointment.booked {appointment_id}: not on order {order_id} ({key:?})", d.id));
                    }
                }
                Trace::Package { package_id } => {
                    let snapshot = store.load(&SubjectKey::Package(package_id.clone())).await.expect("load");
                    if snapshot.as_ref().and_then(|s| s.as_package()).is_none() {
                        c.lost.push(format!("{} package.booked {package_id}: no package", d.id));
                    }
                }
                _ => {}
            }
        }
        c
    })
}

/// Each pending timer of each snapshot has its one-shot in the timer table, and none is overdue
/// (every clock move fires all that fall due).
fn check_timers(data: &Path, orders: &[String], packages: &[String], now: DateTime<Utc>) -> StoreCheck {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(data).expect("open the data dir");
        let mut c = StoreCheck { lost: Vec::new(), findings: Vec::new(), timers: 0, missing_timers: 0, overdue_timers: 0 };
        let table: HashSet<String> = store.timers().await.expect("timers").iter().map(|t| t.timer.name()).collect();
        let keys = orders.iter().map(|o| SubjectKey::Order(o.clone())).chain(packages.iter().map(|p| SubjectKey::Package(p.clone())));
        for key in keys {
            let Some(s) = store.load(&key).await.expect("load") else { continue };
            let case_timers =
                s.cases.iter().flat_map(|case| case.timers.iter().map(|t| (Some(case.case_id.clone()), t.kind, t.step, t.due_at)));
            let subject_timers = s.timers.iter().map(|t| (None, t.timer.kind, t.timer.step, t.timer.due_at));
            for (case_id, kind, step, due_at) in case_timers.chain(subject_timers).collect::<Vec<_>>() {
                c.timers += 1;
                let name = TimerRef { stream: key.clone(), case_id: case_id.clone(), kind, step }.name();
                if !table.contains(&name) {
                    c.missing_timers += 1;
                    c.findings
                        .push(format!("{key} {case_id:?}: {kind} due {due_at} is pending on the snapshot but not in the timer table"));
                }
                if due_at <= now {
                    c.overdue_timers += 1;
                    c.findings.push(format!("{key} {case_id:?}: {kind} due {due_at} is still pending at {now}"));
                }
            }
        }
        c
    })
}
