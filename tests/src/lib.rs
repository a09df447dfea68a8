//! Test harness: starts the real `followup-local` binary on 127.0.0.1 with its own data
//! directory, signs webhooks as the dashboard and phone system do, and stops it afterwards.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub const SECRET: &str = "scenario-secret";

/// The workspace root (this crate lives in `<root>/tests`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The followup-local binary of this build profile, brought up to date once per test run (a
/// stale binary would test old code).
pub fn binary() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
    // A release test or example (the load test) drives a release server.
    let profile: &[&str] = if dir.ends_with("release") { &["--release"] } else { &[] };
    BUILT.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "followup-local", "--bin", "followup-local"])
            .args(profile)
            .current_dir(root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building followup-local failed");
    });
    dir.join("followup-local")
}

/// A running followup-local process.
pub struct Local {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    client: reqwest::blocking::Client,
    ids: AtomicU64,
}

impl Local {
    /// A fresh engine on a new data dir with the virtual clock starting at `start`.
    pub fn virtual_at(start: &str) -> Local {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let mut l = Local::spawn(&dir, Some(start), &[]);
        l._tmp = Some(tmp);
        l
    }

    /// Starts the binary on `data_dir` (kept by the caller), optionally on a virtual clock.
    pub fn spawn(data_dir: &Path, virtual_clock: Option<&str>, env: &[(&str, &str)]) -> Local {
        Local::spawn_logging(data_dir, virtual_clock, env, Stdio::inherit())
    }

    /// `spawn`, with the process's log (stderr) going to `log`.
    pub fn spawn_logging(data_dir: &Path, virtual_clock: Option<&str>, env: &[(&str, &str)], log: Stdio) -> Local {
        let mut cmd = Command::new(binary());
        cmd.env("FOLLOWUP_ADDR", "127.0.0.1:0")
            .env("FOLLOWUP_DATA_DIR", data_dir)
            .env("FOLLOWUP_WEBHOOK_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .env_remove("FOLLOWUP_VIRTUAL_CLOCK")
            .env_remove("FOLLOWUP_CONFIG")
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(t) = virtual_clock {
            cmd.env("FOLLOWUP_VIRTUAL_CLOCK", t);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start followup-local");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("followup-local did not start within 60 s");
        let base = line.strip_prefix("listening on ").expect("first stdout line names the address").to_string();
        Local {
            child,
            base,
            data_dir: data_dir.to_path_buf(),
            _tmp: None,
            client: reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client"),
            ids: AtomicU64::new(0),
        }
    }

    /// Asks the process to stop (SIGTERM) and answers whether it exited cleanly within `wait`.
    pub fn terminate(&mut self, wait: Duration) -> bool {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = std::time::Instant::now() + wait;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ends the process the hard way (SIGKILL): no shutdown, no flush.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Posts raw bytes with the given headers.
    pub fn post_raw(&self, path: &str, body: &[u8], headers: &[(&str, String)]) -> (u16, Value) {
        let mut req = self.client.post(format!("{}{path}", self.base)).body(body.to_vec()).header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    /// Posts a body signed now with the scenario secret.
    pub fn post_signed(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let ts = Utc::now().timestamp();
        self.post_raw(path, body, &[("x-timestamp", ts.to_string()), ("x-signature", followup::wire::sign(SECRET, ts, body))])
    }

    /// Posts an envelope (signed), with `occurred_at` = the engine's clock.
    pub fn send(&self, path: &str, id: &str, kind: &str, data: Value) -> (u16, Value) {
        let body = json!({"id": id, "type": kind, "occurred_at": self.now_text(), "data": data});
        self.post_signed(path, &serde_json::to_vec(&body).expect("json"))
    }

    /// Posts an envelope (signed) for an event that happened at `occurred_at` (R9.7).
    pub fn send_at(&self, path: &str, id: &str, kind: &str, occurred_at: &str, data: Value) -> (u16, Value) {
        let body = json!({"id": id, "type": kind, "occurred_at": occurred_at, "data": data});
        self.post_signed(path, &serde_json::to_vec(&body).expect("json"))
    }

    /// `send` with a fresh delivery id, expecting 202; returns the case id.
    pub fn accept(&self, path: &str, kind: &str, data: Value) -> Option<String> {
        let id = format!("d-{}", self.ids.fetch_add(1, Ordering::SeqCst));
        let (status, body) = self.send(path, &id, kind, data);
        assert_eq!(status, 202, "{kind} refused: {body}");
        body["case_id"].as_str().map(str::to_owned)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.client.get(format!("{}{path}", self.base)).send().expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    /// Any method on any path, unsigned, for the error answers of routes that do not exist.
    pub fn request(&self, method: &str, path: &str) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let resp = self.client.request(method, format!("{}{path}", self.base)).send().expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    pub fn case(&self, case_id: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/cases/{case_id}"));
        assert_eq!(status, 200, "case {case_id}: {body}");
        body
    }

    pub fn sms(&self) -> Vec<Value> {
        self.get("/local/sms").1["messages"].as_array().cloned().unwrap_or_default()
    }

    pub fn commands(&self) -> Vec<Value> {
        self.get("/local/commands").1["commands"].as_array().cloned().unwrap_or_default()
    }

    /// Commands of one type, in emit order.
    pub fn commands_of(&self, kind: &str) -> Vec<Value> {
        self.commands().into_iter().filter(|c| c["type"] == kind).collect()
    }

    pub fn now(&self) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(self.now_text().as_str()).expect("clock answers RFC 3339").with_timezone(&Utc)
    }

    fn now_text(&self) -> String {
        let (status, body) = self.get("/local/clock");
        if status == 200 {
            body["now"].as_str().expect("now").to_string()
        } else {
            Utc::now().to_rfc3339()
        }
    }

    /// Moves the virtual clock to `to`, firing due timers; returns how many fired.
    pub fn clock_to(&self, to: &str) -> u64 {
        let (status, body) = self.post_raw("/local/clock", json!({"to": to}).to_string().as_bytes(), &[]);
        assert_eq!(status, 200, "clock: {body}");
        body["fired"].as_u64().expect("fired")
    }

    pub fn advance(&self, secs: i64) -> u64 {
        let (status, body) = self.post_raw("/local/clock", json!({"advance_secs": secs}).to_string().as_bytes(), &[]);
        assert_eq!(status, 200, "clock: {body}");
        body["fired"].as_u64().expect("fired")
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A customer as the dashboard sends it.
pub fn customer(language: &str) -> Value {
    json!({"id": "C-1", "name": "Mona Adel", "phone": "+201001234567", "language": language})
}

/// `appointment.booked` data for a first visit.
pub fn booked(appointment_id: &str, order_id: &str, window_start: &str, window_end: &str) -> Value {
    json!({
        "appointment_id": appointment_id, "order_id": order_id, "customer": customer("ar"),
        "area": "Cairo", "service": "AC maintenance", "price": {"amount": 45000, "currency": "EGP"},
        "window_start": window_start, "window_end": window_end,
        "visit_number": 1, "technician_id": null, "discount_percent": 0
    })
}

/// `call.completed` data: the outcome of call `call_id` on `case_id`, with an optional resolution.
pub fn call(case_id: &str, call_id: &str, outcome: &str, resolution: Option<Value>) -> Value {
    let mut d = json!({"case_id": case_id, "call_id": call_id, "agent_id": "agent-7", "outcome": outcome});
    if let Some(r) = resolution {
        d["resolution"] = r;
    }
    d
}

/// A case view's pending timers as (kind, due_at).
pub fn timers(case: &Value) -> Vec<(String, String)> {
    case["timers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["kind"].as_str().unwrap().to_owned(), t["due_at"].as_str().unwrap().to_owned()))
        .collect()
}

/// The numbered envelopes of `events/` (file name, envelope), in file order: one webhook of each
/// type telling one story (`timer.*` and the Lambda housekeeping inputs are not webhooks).
pub fn samples() -> Vec<(String, Value)> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("events"))
        .expect("events/")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".json") && n.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    names.sort();
    names.into_iter().map(|n| (n.clone(), sample(&n))).collect()
}

/// Reads a sample payload from `events/`.
pub fn sample(name: &str) -> Value {
    let path = root().join("events").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).expect("sample is JSON")
}
