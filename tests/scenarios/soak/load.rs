//! The soak's load generator: client threads that play orders and packages through every
//! playbook as the dashboard and the phone system would, each delivery signed and recorded with
//! every answer it got, retried with the same id and body when the engine died under it.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Africa::Cairo;
use followup_tests::SECRET;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// A small deterministic generator (SplitMix64): a seed replays the same choices per thread.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// 0 ≤ n < bound.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
    pub fn range(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low + 1) as u64) as i64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The engine as every thread sees it across restarts: where it listens (none while it is
/// being restarted), its virtual time as last reported, and the shared budget.
pub struct Server {
    at: RwLock<(u64, Option<String>)>,
    now: Mutex<DateTime<Utc>>,
    /// New deliveries handed out so far (the budget counts these, not repeats or retries).
    pub sent: AtomicU64,
    pub budget: u64,
    pub done: AtomicBool,
    /// Deliveries hold it shared while they are sent; a clock move holds it alone, so the clock
    /// moves between bursts and never under a decision in flight.
    pub gate: RwLock<()>,
    /// Clock moves concurrent with deliveries (no gate).
    pub overlap: bool,
}

impl Server {
    pub fn new(base: String, now: DateTime<Utc>, budget: u64) -> Server {
        Server {
            at: RwLock::new((0, Some(base))),
            now: Mutex::new(now),
            sent: AtomicU64::new(0),
            budget,
            done: AtomicBool::new(false),
            gate: RwLock::new(()),
            overlap: false,
        }
    }
    /// The process is gone; requests wait until `up`.
    pub fn down(&self) {
        let mut at = self.at.write().unwrap();
        at.0 += 1;
        at.1 = None;
    }
    pub fn up(&self, base: String) {
        let mut at = self.at.write().unwrap();
        at.0 += 1;
        at.1 = Some(base);
    }
    pub fn base(&self) -> Option<String> {
        self.at.read().unwrap().1.clone()
    }
    pub fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }
    pub fn set_now(&self, t: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap();
        if t > *now {
            *now = t;
        }
    }
    /// Takes one delivery from the budget, unless it is spent.
    fn take(&self) -> bool {
        self.sent.fetch_add(1, Ordering::SeqCst) < self.budget
    }
}

pub fn http_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(std::time::Duration::from_secs(30)).build().expect("http client")
}

/// What one request finally got: the answer, and how many tries died with the process first.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub transport_failures: u32,
    pub unavailable: u32,
}

/// How long a request keeps trying before the soak gives up on the engine.
const GIVE_UP: std::time::Duration = std::time::Duration::from_secs(120);

/// Sends until the engine answers: a request that dies with the process (or meets one being
/// restarted) is sent again, same body, to whichever process listens next; a 503 is retried too.
pub fn request(server: &Server, client: &reqwest::blocking::Client, method: &str, path: &str, body: Option<&[u8]>, signed: bool) -> Answer {
    let started = std::time::Instant::now();
    let (mut transport_failures, mut unavailable) = (0, 0);
    loop {
        assert!(started.elapsed() < GIVE_UP, "{method} {path}: no answer within {GIVE_UP:?}");
        let Some(base) = server.base() else {
            std::thread::sleep(std::time::Duration::from_millis(10));
            continue;
        };
        let url = format!("{base}{path}");
        let mut req = if method == "GET" { client.get(url) } else { client.post(url) };
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_vec());
            if signed {
                let ts = Utc::now().timestamp();
                req = req.header("x-timestamp", ts.to_string()).header("x-signature", followup::wire::sign(SECRET, ts, b));
            }
        }
        let burst = (signed && !server.overlap).then(|| server.gate.read().unwrap());
        let sent = req.send();
        drop(burst);
        match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = match resp.text() {
                    Ok(t) => t,
                    Err(_) => {
                        transport_failures += 1;
                        continue;
                    }
                };
                if status == 503 {
                    unavailable += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                }
                let body = serde_json::from_str(&text).unwrap_or(Value::Null);
                return Answer { status, body, transport_failures, unavailable };
            }
            Err(_) => {
                transport_failures += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

/// What the checks look for on the timeline of the case a 202 names.
#[derive(Debug, Clone, PartialEq)]
pub enum Trace {
    /// Nothing on a case is tied to this delivery alone.
    None,
    /// `call.completed`: one `call` entry naming the call id on the case.
    Call { case_id: String, call_id: String },
    /// `appointment.cancelled` / `appointment.reschedule_requested`: the tagged reason on one
    /// `event` entry of the case the 202 names (when it names one).
    Reason,
    /// `appointment.booked`: the appointment exists on its order afterwards.
    Appointment { appointment_id: String, order_id: String },
    /// `package.booked`: the package exists afterwards.
    Package { package_id: String },
}

/// One delivery (one id, one body) and every answer it got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub kind: &'static str,
    pub path: &'static str,
    pub body: Vec<u8>,
    /// The text every free-text field of it carries, `[<id>]`, to find it on timelines.
    pub tag: String,
    pub trace: Trace,
    /// Status of every answer, first to last (deliberate repeats included).
    pub statuses: Vec<u16>,
    /// Answers that said `"duplicate": true`.
    pub duplicates: u32,
    /// The case id of the first 202.
    pub case_id: Option<String>,
    /// Tries that died with the process before an answer.
    pub transport_failures: u32,
    /// The first send died with the process and was sent again.
    pub first_try_died: bool,
    /// After a try died with the process, the next answer was a 202 duplicate: it had been accepted.
    pub accepted_before_a_kill: bool,
    pub unavailable: u32,
}

impl Delivery {
    pub fn accepted(&self) -> bool {
        self.statuses.contains(&202)
    }
}

/// What a client thread did.
#[derive(Debug, Default)]
pub struct Report {
    pub deliveries: Vec<Delivery>,
    pub orders: Vec<String>,
    pub packages: Vec<String>,
    /// Deliberate repeats of a delivery already answered.
    pub repeats: u64,
    /// Contract breaches seen on the way (a repeat of an accepted delivery not answered as a duplicate…).
    pub violations: Vec<String>,
}

/// A client thread: plays stories until the shared budget is spent.
pub struct Client {
    n: usize,
    rng: Rng,
    server: Arc<Server>,
    http: reqwest::blocking::Client,
    seq: u64,
    report: Report,
    /// Cases a re-open may later be tried on (R2.10).
    reopen: Vec<String>,
}

const UNFINISHED: [&str; 3] = ["open", "pending", "waiting_on_customer"];

impl Client {
    pub fn new(n: usize, seed: u64, server: Arc<Server>) -> Client {
        Client {
            n,
            rng: Rng::new(seed.wrapping_add(n as u64 * 7919)),
            server,
            http: http_client(),
            seq: 0,
            report: Report::default(),
            reopen: Vec::new(),
        }
    }

    pub fn run(mut self) -> Report {
        let mut stories: Vec<Story> = Vec::new();
        let mut made = 0u64;
        loop {
            if self.server.sent.load(Ordering::SeqCst) >= self.server.budget {
                break;
            }
            while stories.len() < 6 {
                made += 1;
                let story = self.new_story(made);
                stories.push(story);
            }
            // Now and then: a re-open (R2.10), or an old delivery sent again.
            if !self.reopen.is_empty() && self.rng.chance(0.03) {
                let i = self.rng.below(self.reopen.len() as u64) as usize;
                let case_id = self.reopen[i].clone();
                if let Some(d) = self.deliver("/v1/cancellations", "case.reopen", Trace::None, |_| json!({"case_id": case_id})) {
                    if self.report.deliveries[d].accepted() {
                        self.reopen.swap_remove(i);
                    }
                }
                continue;
            }
            if !self.report.deliveries.is_empty() && self.rng.chance(0.01) {
                let i = self.rng.below(self.report.deliveries.len() as u64) as usize;
                self.repeat(i);
                continue;
            }
            let i = self.rng.below(stories.len() as u64) as usize;
            let mut story = stories.swap_remove(i);
            if self.step(&mut story) {
                stories.push(story);
            }
        }
        self.report
    }

    // ---- deliveries -------------------------------------------------------------------------

    /// A new delivery: its data built around its tag, sent until answered. None once the budget is spent.
    fn deliver(&mut self, path: &'static str, kind: &'static str, trace: Trace, data: impl FnOnce(&str) -> Value) -> Option<usize> {
        if !self.server.take() {
            return None;
        }
        self.seq += 1;
        let id = format!("s{}-{:06}", self.n, self.seq);
        let tag = format!("[{id}]");
        let data = data(&tag);
        let occurred_at = local(self.server.now()).to_rfc3339();
        let body = serde_json::to_vec(&json!({"id": id, "type": kind, "occurred_at": occurred_at, "data": data})).expect("json");
        let answer = request(&self.server, &self.http, "POST", path, Some(&body), true);
        let duplicate = answer.body["duplicate"] == true;
        let d = Delivery {
            id,
            kind,
            path,
            body,
            tag,
            trace,
            statuses: vec![answer.status],
            duplicates: u32::from(duplicate),
            case_id: if answer.status == 202 { answer.body["case_id"].as_str().map(str::to_owned) } else { None },
            transport_failures: answer.transport_failures,
            first_try_died: answer.transport_failures > 0,
            accepted_before_a_kill: answer.transport_failures > 0 && answer.status == 202 && duplicate,
            unavailable: answer.unavailable,
        };
        if answer.status >= 500 {
            self.report.violations.push(format!("{} {kind}: {} {}", d.id, answer.status, answer.body));
        }
        if duplicate && answer.transport_failures == 0 {
            self.report.violations.push(format!("{} {kind}: a first delivery answered as a duplicate", d.id));
        }
        self.report.deliveries.push(d);
        let i = self.report.deliveries.len() - 1;
        // Some deliveries go twice in a row, as a sender that did not see the first answer would.
        if self.rng.chance(0.04) {
            self.repeat(i);
        }
        Some(i)
    }

    /// The same delivery again (same id, same bytes): an accepted one must answer 202 duplicate
    /// with the same case; a refused one is decided afresh.
    fn repeat(&mut self, i: usize) {
        let (path, body, was_accepted, case_id) = {
            let d = &self.report.deliveries[i];
            (d.path, d.body.clone(), d.accepted(), d.case_id.clone())
        };
        let answer = request(&self.server, &self.http, "POST", path, Some(&body), true);
        self.report.repeats += 1;
        let d = &mut self.report.deliveries[i];
        d.statuses.push(answer.status);
        d.transport_failures += answer.transport_failures;
        d.unavailable += answer.unavailable;
        let duplicate = answer.body["duplicate"] == true;
        if duplicate {
            d.duplicates += 1;
        }
        if was_accepted {
            let again = answer.body["case_id"].as_str().map(str::to_owned);
            if answer.status != 202 || !duplicate || again != case_id {
                self.report.violations.push(format!(
                    "{} {}: a repeat of an accepted delivery answered {} {} (first case {case_id:?})",
                    d.id, d.kind, answer.status, answer.body
                ));
            }
        } else if answer.status == 202 {
            d.case_id = answer.body["case_id"].as_str().map(str::to_owned);
        }
    }

    fn accepted_case(&self, i: Option<usize>) -> Option<String> {
        i.map(|i| &self.report.deliveries[i]).filter(|d| d.accepted()).and_then(|d| d.case_id.clone())
    }

    fn was_accepted(&self, i: Option<usize>) -> bool {
        i.is_some_and(|i| self.report.deliveries[i].accepted())
    }

    /// The cases of an order or package as the dashboard reads them.
    fn cases_of(&self, query: &str) -> Vec<Value> {
        let answer = request(&self.server, &self.http, "GET", &format!("/v1/cases?{query}"), None, false);
        answer.body["cases"].as_array().cloned().unwrap_or_default()
    }

    /// A call outcome on a case of `query` that is still being worked (or, sometimes, a late one
    /// on a finished case).
    fn call_on_some_case(&mut self, query: &str) -> Option<usize> {
        let cases = self.cases_of(query);
        let open: Vec<&Value> = cases.iter().filter(|c| UNFINISHED.contains(&c["ticket"]["status"].as_str().unwrap_or(""))).collect();
        let case = if !open.is_empty() {
            *self.rng.pick(&open)
        } else if !cases.is_empty() && self.rng.chance(0.3) {
            self.rng.pick(&cases)
        } else {
            return None;
        };
        let (id, playbook) = (case["case_id"].as_str()?.to_owned(), case["playbook"].as_str().unwrap_or("").to_owned());
        self.call(&id, &playbook)
    }

    /// `call.completed` on `case_id` with an outcome and a resolution that fit its playbook.
    fn call(&mut self, case_id: &str, playbook: &str) -> Option<usize> {
        let now = self.server.now();
        let reached = self.rng.chance(0.6);
        let outcome = if reached { "answered" } else { *self.rng.pick(&["no_answer", "busy", "voicemail"]) };
        let day = local_date(now) + Duration::days(self.rng.range(3, 9));
        let rebooked = json!({"kind": "rebooked", "window_start": at(day, 10), "window_end": at(day, 12)});
        let declined = |tag: &str, complaint: bool, follow_up: bool| json!({"kind": "declined", "reason": format!("found another company {tag}"), "complaint": complaint, "follow_up": follow_up});
        let later = json!({"kind": "follow_up_later", "at": at(local_date(now) + Duration::days(self.rng.range(1, 3)), 11)});
        let choice = self.rng.below(100);
        let (complaint, follow_up) = (self.rng.chance(0.3), self.rng.chance(0.4));
        let topics: Vec<&str> = match self.rng.below(4) {
            0 => vec!["appointment.reschedule", "inquiry.pricing_financing"],
            1 => vec!["inquiry.billing"],
            _ => vec![],
        };
        let cost_told = playbook == "second_visit_follow_up" && self.rng.chance(0.5);
        let call_id = format!("K-{}-{}", self.n, self.seq + 1);
        let trace = Trace::Call { case_id: case_id.to_owned(), call_id: call_id.clone() };
        let (case_id, reopen_case) = (case_id.to_owned(), case_id.to_owned());
        let (playbook, round) = (playbook.to_owned(), playbook.to_owned());
        let d = self.deliver("/v1/calls", "call.completed", trace, move |tag| {
            let resolution = if !reached {
                Value::Null
            } else {
                match playbook.as_str() {
                    "package_payment" if choice < 75 => json!({"kind": "will_pay"}),
                    "package_payment" => Value::Null,
                    "package_expiry" if choice < 60 => rebooked,
                    "package_expiry" => Value::Null,
                    "reschedule_outreach" if choice < 50 => rebooked,
                    "reschedule_outreach" if choice < 85 => declined(tag, complaint, follow_up),
                    "appointment_watch" => Value::Null,
                    _ if choice < 35 => rebooked,
                    _ if choice < 65 => declined(tag, complaint, follow_up),
                    _ if choice < 85 => later,
                    _ => Value::Null,
                }
            };
            let mut data = json!({
                "case_id": case_id, "call_id": call_id, "agent_id": "agent-7", "outcome": outcome,
                "notes": format!("soak call {tag}"), "topics": topics,
            });
            if !resolution.is_null() {
                data["resolution"] = resolution;
            }
            if cost_told {
                data["cost_told"] = json!(true);
            }
            data
        });
        // A case whose round may go waiting_on_customer can be re-opened later (R2.10).
        if !reached && self.was_accepted(d) && matches!(round.as_str(), "cancellation_follow_up" | "second_visit_follow_up") {
            self.reopen.push(reopen_case);
            if self.reopen.len() > 40 {
                self.reopen.remove(0);
            }
        }
        d
    }

    // ---- stories ----------------------------------------------------------------------------

    fn new_story(&mut self, made: u64) -> Story {
        let key = format!("{}-{made}", self.n);
        let customer = json!({
            "id": format!("C-{key}"), "name": "Soak Customer",
            "phone": format!("+2010{:08}", (self.n as u64) * 10_000_000 + made),
            "language": if self.rng.chance(0.7) { "ar" } else { "en" },
        });
        if self.rng.chance(0.3) {
            let p = PackagePlan { paid: self.rng.chance(0.45), expiring: self.rng.chance(0.5), visits: self.rng.range(1, 4) as usize };
            Story { key: format!("P-{key}"), customer, step: 0, kind: StoryKind::Package(p), cases: Vec::new() }
        } else {
            let plan = match self.rng.below(100) {
                0..=29 => OrderPlan::Cancel { old: self.rng.chance(0.25) },
                30..=44 => OrderPlan::Unassigned,
                45..=59 => OrderPlan::Assign,
                60..=79 => OrderPlan::Reschedule,
                _ => OrderPlan::SecondVisit,
            };
            Story { key: format!("O-{key}"), customer, step: 0, kind: StoryKind::Order(plan), cases: Vec::new() }
        }
    }

    /// Plays the story's next step; false once the story is over.
    fn step(&mut self, s: &mut Story) -> bool {
        let step = s.step;
        s.step += 1;
        match s.kind.clone() {
            StoryKind::Order(plan) => self.order_step(s, plan, step),
            StoryKind::Package(plan) => self.package_step(s, plan, step),
        }
    }

    fn book(&mut self, s: &Story, appointment: &str, visit: u32, window: (String, String), technician: Option<String>) -> Option<usize> {
        let (order, customer) = (s.key.clone(), s.customer.clone());
        let appointment = appointment.to_owned();
        let discount = if self.rng.chance(0.15) { 10 } else { 0 };
        let trace = Trace::Appointment { appointment_id: appointment.clone(), order_id: order.clone() };
        let d = self.deliver("/v1/appointments", "appointment.booked", trace, move |tag| {
            json!({
                "appointment_id": appointment, "order_id": order, "customer": customer, "area": "Cairo",
                "service": format!("AC maintenance {tag}"), "price": {"amount": 45000, "currency": "EGP"},
                "window_start": window.0, "window_end": window.1, "visit_number": visit,
                "technician_id": technician, "discount_percent": discount
            })
        });
        if self.was_accepted(d) && !self.report.orders.contains(&s.key) {
            self.report.orders.push(s.key.clone());
        }
        d
    }

    fn cancel(&mut self, appointment: &str, by: &str, wants_follow_up: bool, unsure: bool) -> Option<usize> {
        let (appointment, by) = (appointment.to_owned(), by.to_owned());
        self.deliver("/v1/cancellations", "appointment.cancelled", Trace::Reason, move |tag| {
            let mut d = json!({"appointment_id": appointment, "cancelled_by": by, "reason": format!("customer travelling {tag}"), "wants_follow_up": wants_follow_up});
            if unsure {
                d["availability"] = json!("unsure");
            }
            d
        })
    }

    /// A window `days` local days ahead (10:00–12:00 or 14:00–16:00), never in the past.
    fn window(&mut self, days: i64) -> (String, String) {
        let now = self.server.now();
        let hour = *self.rng.pick(&[10u32, 14, 17]);
        let mut day = local_date(now) + Duration::days(days);
        if at_utc(day, hour) <= now + Duration::minutes(30) {
            day += Duration::days(1);
        }
        (at(day, hour), at(day, hour + 2))
    }

    fn order_step(&mut self, s: &mut Story, plan: OrderPlan, step: u32) -> bool {
        let a1 = format!("A-{}-1", &s.key[2..]);
        let a2 = format!("A-{}-2", &s.key[2..]);
        let query = format!("order_id={}", s.key);
        match (plan, step) {
            // R2: a first visit cancelled by the customer, ops or a no-show; its echo; the follow-up's calls.
            (OrderPlan::Cancel { old }, 0) => {
                let window = if old {
                    // An appointment day long past, so the follow-up can be re-opened (R2.10).
                    let day = local_date(self.server.now()) - Duration::days(35);
                    (at(day, 10), at(day, 12))
                } else {
                    let d = self.rng.range(1, 4);
                    self.window(d)
                };
                let tech = self.rng.chance(0.5).then(|| "T-1".to_owned());
                {
                    let d = self.book(s, &a1, 1, window, tech);
                    self.was_accepted(d)
                }
            }
            (OrderPlan::Cancel { old }, 1) => {
                let (by, wants) = match self.rng.below(4) {
                    0 => ("customer", true),
                    1 => ("customer", false),
                    2 => ("ops", false),
                    _ => ("no_show", false),
                };
                let by = if old { "no_show" } else { by };
                let unsure = self.rng.chance(0.2);
                let d = self.cancel(&a1, by, wants, unsure);
                if let Some(case) = self.accepted_case(d) {
                    s.cases.push(case.clone());
                    if old {
                        self.reopen.push(case);
                    }
                }
                true
            }
            (OrderPlan::Cancel { .. }, 2) => {
                // R9.2 a second cancellation of the same appointment, as the dashboard echoes it.
                if self.rng.chance(0.5) {
                    self.cancel(&a1, "ops", false, false);
                }
                true
            }
            (OrderPlan::Cancel { old }, 3..=5) => {
                if old {
                    // Left unanswered, so R2.6 sends it waiting on the customer; then re-opened.
                    if step == 5 {
                        if let Some(case) = s.cases.first().cloned() {
                            self.deliver("/v1/cancellations", "case.reopen", Trace::None, |_| json!({"case_id": case}));
                        }
                    }
                    return step < 5;
                }
                match s.cases.first().cloned() {
                    Some(case) if self.rng.chance(0.7) => self.call(&case, "cancellation_follow_up"),
                    _ => self.call_on_some_case(&query),
                };
                step < 5
            }
            // R0: an unassigned appointment close at hand; the watch acts, the dashboard echoes.
            (OrderPlan::Unassigned, 0) => {
                let days = self.rng.range(0, 1);
                let w = self.window(days);
                {
                    let d = self.book(s, &a1, 1, w, None);
                    self.was_accepted(d)
                }
            }
            (OrderPlan::Unassigned, 1) => true,
            (OrderPlan::Unassigned, 2) | (OrderPlan::Unassigned, 4) => {
                self.call_on_some_case(&query);
                step < 4
            }
            (OrderPlan::Unassigned, 3) => {
                if self.rng.chance(0.6) {
                    self.cancel(&a1, "ops", false, false);
                } else if self.rng.chance(0.5) {
                    let tech = "T-9".to_owned();
                    let a = a1.clone();
                    self.deliver(
                        "/v1/appointments",
                        "appointment.assigned",
                        Trace::None,
                        move |_| json!({"appointment_id": a, "technician_id": tech}),
                    );
                }
                true
            }
            // R0.3: assigned in time, then completed.
            (OrderPlan::Assign, 0) => {
                let days = self.rng.range(1, 3);
                let w = self.window(days);
                {
                    let d = self.book(s, &a1, 1, w, None);
                    self.was_accepted(d)
                }
            }
            (OrderPlan::Assign, 1) => {
                let a = a1.clone();
                self.deliver(
                    "/v1/appointments",
                    "appointment.assigned",
                    Trace::None,
                    move |_| json!({"appointment_id": a, "technician_id": "T-3"}),
                );
                true
            }
            (OrderPlan::Assign, 2) => {
                let a = a1.clone();
                self.deliver(
                    "/v1/appointments",
                    "appointment.completed",
                    Trace::None,
                    move |_| json!({"appointment_id": a, "outcome": "done", "needs_material": false}),
                );
                false
            }
            // R1 / R7: reschedule outreach and reschedules.
            (OrderPlan::Reschedule, 0) => {
                let days = self.rng.range(0, 3);
                let w = self.window(days);
                let tech = self.rng.chance(0.7).then(|| "T-2".to_owned());
                {
                    let d = self.book(s, &a1, 1, w, tech);
                    self.was_accepted(d)
                }
            }
            (OrderPlan::Reschedule, 1) => {
                let a = a1.clone();
                let d = self.deliver("/v1/appointments", "appointment.reschedule_requested", Trace::Reason, move |tag| {
                    json!({"appointment_id": a, "reason": format!("technician running late {tag}"), "stf_link": format!("https://stf.example.com/r/{tag}")})
                });
                if let Some(case) = self.accepted_case(d) {
                    s.cases.push(case);
                }
                true
            }
            (OrderPlan::Reschedule, 2..=5) => {
                match self.rng.below(3) {
                    0 => {
                        let days = self.rng.range(2, 6);
                        let w = self.window(days);
                        let a = a1.clone();
                        self.deliver(
                            "/v1/appointments",
                            "appointment.rescheduled",
                            Trace::None,
                            move |_| json!({"appointment_id": a, "window_start": w.0, "window_end": w.1, "requested_by": "customer"}),
                        );
                    }
                    1 if !s.cases.is_empty() => {
                        let case = s.cases[0].clone();
                        self.call(&case, "reschedule_outreach");
                    }
                    _ => {
                        self.call_on_some_case(&query);
                    }
                }
                step < 5
            }
            // R3: a second visit after an inspection, an incomplete job or a painting job.
            (OrderPlan::SecondVisit, 0) => {
                let w = self.window(0);
                {
                    let d = self.book(s, &a1, 1, w, Some("T-4".into()));
                    self.was_accepted(d)
                }
            }
            (OrderPlan::SecondVisit, 1) => {
                let a = a1.clone();
                let outcome = *self.rng.pick(&["inspection", "incomplete", "painting", "done"]);
                let material = self.rng.chance(0.5);
                let days = self.rng.range(1, 4);
                self.deliver("/v1/appointments", "appointment.completed", Trace::None, move |_| {
                    let mut d = json!({"appointment_id": a, "outcome": outcome, "needs_material": material});
                    if material {
                        d["material_days"] = json!(1);
                    }
                    if outcome == "painting" {
                        d["painting"] = json!({"days": days, "total_price": {"amount": 1_000_000, "currency": "EGP"},
                            "material_price": {"amount": 250_000, "currency": "EGP"}, "tax_invoice": material});
                    }
                    d
                });
                true
            }
            (OrderPlan::SecondVisit, 2) => true,
            (OrderPlan::SecondVisit, 3) | (OrderPlan::SecondVisit, 4) => {
                self.call_on_some_case(&query);
                true
            }
            (OrderPlan::SecondVisit, 5) => {
                // R3.5 (v2) a later visit of the order is booked, sometimes then cancelled.
                if self.rng.chance(0.6) {
                    let days = self.rng.range(3, 8);
                    let w = self.window(days);
                    self.book(s, &a2, 2, w, Some("T-4".into()));
                }
                true
            }
            (OrderPlan::SecondVisit, 6) => {
                if self.rng.chance(0.3) {
                    self.cancel(&a2, "customer", true, false);
                } else {
                    self.call_on_some_case(&query);
                }
                false
            }
            _ => false,
        }
    }

    fn package_step(&mut self, s: &mut Story, plan: PackagePlan, step: u32) -> bool {
        let package = s.key.clone();
        let visit = |rng: &mut Rng| format!("V{}", rng.range(1, plan.visits as i64));
        match step {
            0 => {
                let today = local_date(self.server.now());
                // An expiring package started about a month ago, so R5's ticks fall within the run.
                let start = if plan.expiring {
                    today - chrono::Months::new(1) + Duration::days(self.rng.range(1, 4))
                } else {
                    today + Duration::days(self.rng.range(0, 3))
                };
                let first = if plan.expiring { today + Duration::days(self.rng.range(1, 3)) } else { start.max(today + Duration::days(1)) };
                let visits: Vec<Value> = (0..plan.visits)
                    .map(|i| json!({"visit_id": format!("V{}", i + 1), "window_start": at(first + Duration::days(7 * i as i64), 10)}))
                    .collect();
                let customer = s.customer.clone();
                let method = if self.rng.chance(0.6) { "card" } else { "cash" };
                let id = package.clone();
                let d = self.deliver("/v1/packages", "package.booked", Trace::Package { package_id: package.clone() }, move |tag| {
                    json!({
                        "package_id": id, "customer": customer, "area": format!("Cairo {tag}"),
                        "price": {"amount": 200_000, "currency": "EGP"}, "visits": visits,
                        "start_date": start.to_string(), "payment_method": method, "paid": plan.paid
                    })
                });
                if let Some(case) = self.accepted_case(d) {
                    s.cases.push(case);
                }
                if self.was_accepted(d) {
                    self.report.packages.push(package);
                    true
                } else {
                    false
                }
            }
            1 | 2 if !plan.paid => {
                match (s.cases.first().cloned(), self.rng.below(3)) {
                    (Some(case), 0 | 1) => {
                        self.call(&case, "package_payment");
                    }
                    _ => {
                        self.deliver("/v1/packages", "package.paid", Trace::None, |_| json!({"package_id": package}));
                    }
                }
                true
            }
            1..=4 => {
                let v = visit(&mut self.rng);
                match self.rng.below(3) {
                    0 => self.deliver(
                        "/v1/packages",
                        "package_visit.completed",
                        Trace::None,
                        |_| json!({"package_id": package, "visit_id": v}),
                    ),
                    1 => self.deliver(
                        "/v1/cancellations",
                        "package_visit.cancelled",
                        Trace::None,
                        |_| json!({"package_id": package, "visit_id": v}),
                    ),
                    _ => {
                        let day = local_date(self.server.now()) + Duration::days(self.rng.range(1, 10));
                        self.deliver(
                            "/v1/packages",
                            "package_visit.rescheduled",
                            Trace::None,
                            |_| json!({"package_id": package, "visit_id": v, "window_start": at(day, 14)}),
                        )
                    }
                };
                true
            }
            5 => {
                if self.rng.chance(0.2) {
                    self.deliver(
                        "/v1/cancellations",
                        "package.cancelled",
                        Trace::None,
                        |tag| json!({"package_id": package, "reason": format!("moving {tag}")}),
                    );
                    if self.rng.chance(0.5) {
                        // R9.2 the dashboard's echo.
                        self.deliver(
                            "/v1/cancellations",
                            "package.cancelled",
                            Trace::None,
                            |tag| json!({"package_id": package, "reason": format!("echo {tag}")}),
                        );
                    }
                } else if self.rng.chance(0.3) {
                    self.deliver("/v1/packages", "package.paid", Trace::None, |_| json!({"package_id": package}));
                }
                true
            }
            6..=8 => {
                self.call_on_some_case(&format!("package_id={package}"));
                step < 8
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum OrderPlan {
    Cancel { old: bool },
    Unassigned,
    Assign,
    Reschedule,
    SecondVisit,
}

#[derive(Debug, Clone, Copy)]
struct PackagePlan {
    paid: bool,
    expiring: bool,
    visits: usize,
}

#[derive(Debug, Clone)]
enum StoryKind {
    Order(OrderPlan),
    Package(PackagePlan),
}

/// One order or one package played step by step.
struct Story {
    key: String,
    customer: Value,
    step: u32,
    kind: StoryKind,
    /// Cases the 202s named.
    cases: Vec<String>,
}

/// The business day of an instant (Cairo).
pub fn local_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&Cairo).date_naive()
}

pub fn local(t: DateTime<Utc>) -> DateTime<chrono_tz::Tz> {
    t.with_timezone(&Cairo)
}

/// `hour`:00 local on `day` (the first valid instant when it falls in a DST gap).
pub fn at_utc(day: NaiveDate, hour: u32) -> DateTime<Utc> {
    let naive = day.and_hms_opt(hour, 0, 0).expect("valid hour");
    match Cairo.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        chrono::LocalResult::None => {
            Cairo.from_local_datetime(&(naive + Duration::hours(1))).earliest().expect("after the gap").with_timezone(&Utc)
        }
    }
}

pub fn at(day: NaiveDate, hour: u32) -> String {
    local(at_utc(day, hour)).to_rfc3339()
}
