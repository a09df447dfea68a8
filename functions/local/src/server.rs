//! The HTTP face of followup-local: SPEC §5 routes, `/local/*`, the timer runner and the effect re-driver.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use followup::domain::effects::TimerSpec;
use followup::domain::ErrorCode;
use followup::engine::ProcessError;
use followup::ports::{CaseStore, Clock};
use followup::wire::{self, Reply, Route, WireError};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::RwLock;
use tracing::{info, warn};

use crate::engine::LocalEngine;

#[derive(Clone)]
struct App {
    engine: Arc<LocalEngine>,
    /// One timer pass at a time, held alone: the runner, the sweeps and `/local/clock` never fire
    /// the same timer twice at once. Under the virtual clock a webhook and the re-driver hold it
    /// shared, so the clock never moves past a timer a decision is still placing.
    firing: Arc<RwLock<()>>,
    /// Timer lateness (fire time minus due time) of the timers this process fired.
    lateness: Arc<std::sync::Mutex<Lateness>>,
}

impl App {
    /// Under the virtual clock, holds clock moves off while a decision commits and places its timers.
    async fn placing(&self) -> Option<tokio::sync::RwLockReadGuard<'_, ()>> {
        match self.engine.clock.virtual_clock() {
            Some(_) => Some(self.firing.read().await),
            None => None,
        }
    }
}

/// The last `LATENESS_SAMPLES` timer latenesses in milliseconds, for `GET /local/metrics`.
#[derive(Debug, Default)]
struct Lateness {
    samples: std::collections::VecDeque<i64>,
    count: u64,
}

const LATENESS_SAMPLES: usize = 10_000;

impl Lateness {
    fn record(&mut self, ms: i64) {
        if self.samples.len() == LATENESS_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(ms.max(0));
        self.count += 1;
    }

    /// Count, p50, p90, p99 and max of the kept samples, in milliseconds.
    fn summary(&self) -> Value {
        let mut v: Vec<i64> = self.samples.iter().copied().collect();
        v.sort_unstable();
        let q = |p: f64| v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied();
        json!({"count": self.count, "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "max_ms": v.last()})
    }
}

pub async fn serve(engine: Arc<LocalEngine>, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let app = App { engine: engine.clone(), firing: Arc::new(RwLock::new(())), lateness: Default::default() };
    // Effects committed before a crash are performed now (adapters drop repeats).
    match engine.drive_pending().await {
        Ok(n) if n > 0 => info!(effects = n, "re-drove pending effects from a previous run"),
        Ok(_) => {}
        Err(e) => warn!(error = %e, "could not re-drive pending effects"),
    }
    let background = tokio::spawn(background(app.clone()));
    // The console and the case routes: open on loopback, behind FOLLOWUP_CONSOLE_TOKEN elsewhere.
    let gate = crate::console::auth::Gate::from_env(listener.local_addr()?);
    if gate.is_closed() {
        warn!("{}", gate.describe());
    } else {
        info!("{}", gate.describe());
    }
    let router = Router::new()
        .route("/v1/appointments", post(webhook))
        .route("/v1/cancellations", post(webhook))
        .route("/v1/calls", post(webhook))
        .route("/v1/packages", post(webhook))
        .route("/v1/cases", get(list_cases))
        .route("/v1/cases/:case_id", get(get_case))
        .route("/local/sms", get(local_sms))
        .route("/local/commands", get(local_commands))
        .route("/local/clock", get(get_clock).post(post_clock))
        .route("/local/expiry-sweep", post(post_sweep))
        .route("/openapi.json", get(openapi))
        .route("/local/timer-sweep", post(post_timer_sweep))
        .route("/local/metrics", get(local_metrics))
        // The team lead's console (HTML under /console, not part of docs/openapi.json).
        .merge(crate::console::router(engine.clone()))
        // R9.6 every error answer has the error body: a path that does not exist is a 404, and
        // (v3) a path that exists asked with any method it does not serve is a 405 with `Allow`.
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
        .layer(axum::middleware::from_fn_with_state(gate, crate::console::auth::guard));
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router).with_graceful_shutdown(shutdown()).await?;
    background.abort();
    info!("followup-local stopped");
    Ok(())
}

/// The OpenAPI 3.1 document of the webhook API and the case view, as committed.
const OPENAPI: &str = include_str!("../../../docs/openapi.json");

async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// R9.6 a path the router does not have: 404 with the error body, whatever the method. (A path of
/// SPEC §5 with a trailing slash is such a path here: nothing is served on it.)
async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    reply(WireError::new(404, ErrorCode::NotFound, format!("no route {method} {}", uri.path())).into())
}

/// R9.6 (v3) a path the router has, asked with a method none of its handlers serves: `TRACE`,
/// `QUERY`, `OPTIONS`, any extension method, or `POST` where only `GET` is served. A 405 with the
/// error body; the router adds `Allow` with the methods of that very path (`GET,HEAD`, `POST`,
/// `GET,HEAD,POST`), so the header cannot drift from the routes. Only a matched path comes here,
/// so the answer is a 405 whatever `wire::unmatched` (which knows only the SPEC §5 paths) says.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let path = uri.path();
    // The contract's own paths keep the message that names the method to use.
    let refusal = match wire::unmatched(method.as_str(), path) {
        e if e.status == 405 => e,
        _ => WireError::new(
            405,
            ErrorCode::MethodNotAllowed,
            format!("{method} is not allowed on {path}; the Allow header names the methods it serves"),
        ),
    };
    reply(refusal.into())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    info!("shutting down");
}

/// How much of a body over the limit is read on and thrown away, and for how long, before the 413.
const DRAIN_BYTES: usize = 4 * 1024 * 1024;
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// SPEC §5: the body, or `None` when it is well over the limit (or broke off). Past it the body
/// is read on and thrown away, up to [`DRAIN_BYTES`] more for at most [`DRAIN_FOR`], so that a
/// client still sending reads the 413: a server that closes with bytes unread makes its kernel
/// answer with a reset, and the client's kernel drops the answer it had not read yet (seen as a
/// broken pipe by a client posting 1 MiB). A body past both bounds is cut off as before.
async fn within_limit(mut body: Body) -> Option<Bytes> {
    use http_body_util::BodyExt;
    let mut kept = Vec::new();
    // Once over the limit: the bytes thrown away, and until when.
    let mut over: Option<(usize, tokio::time::Instant)> = None;
    loop {
        let frame = match over {
            None => body.frame().await,
            Some((bytes, _)) if bytes > DRAIN_BYTES => return None,
            Some((_, until)) => tokio::time::timeout_at(until, body.frame()).await.ok()?,
        };
        let Some(frame) = frame else { break };
        // A body that broke off gets the 413 too: nobody is left to read it.
        let Ok(data) = frame.ok()?.into_data() else { continue };
        match &mut over {
            Some((bytes, _)) => *bytes += data.len(),
            // One byte over is still kept, as before: the envelope's own check then answers the
            // 413 with the body's size.
            None if kept.len() + data.len() <= wire::MAX_BODY_BYTES + 1 => kept.extend_from_slice(&data),
            None => over = Some((data.len(), tokio::time::Instant::now() + DRAIN_FOR)),
        }
    }
    over.is_none().then(|| Bytes::from(kept))
}

fn reply(r: Reply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(r.body)).into_response()
}

async fn webhook(State(app): State<App>, request: Request<Body>) -> Response {
    let Some(route) = Route::from_path(request.uri().path()) else {
        return reply(WireError::new(404, ErrorCode::NotFound, "no such route").into());
    };
    let headers = request.headers().clone();
    let body = match within_limit(request.into_body()).await {
        Some(b) => b,
        None => {
            let mut response =
                reply(WireError::new(413, ErrorCode::PayloadTooLarge, format!("the body exceeds {} bytes", wire::MAX_BODY_BYTES)).into());
            // SPEC §5's body limit. What is left of the body stays unread, so the connection
            // cannot carry another request: the server closes it after this answer, and says so,
            // or a client that pools connections would send its next request down one that is
            // closing.
            let close = axum::http::HeaderValue::from_static("close");
            response.headers_mut().insert(axum::http::header::CONNECTION, close);
            return response;
        }
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (ts, sig) = (header("x-timestamp"), header("x-signature"));
    let _placing = app.placing().await;
    reply(app.engine.webhook(route, ts.as_deref(), sig.as_deref(), &body, Utc::now().timestamp()).await)
}

async fn get_case(State(app): State<App>, case_id: Result<Path<String>, axum::extract::rejection::PathRejection>) -> Response {
    // R9.6 a case id that is not UTF-8 once percent-decoded is refused with the error body too.
    match case_id {
        Ok(Path(case_id)) => reply(app.engine.case_reply(&case_id).await),
        Err(e) => reply(WireError::new(400, ErrorCode::InvalidField, format!("case_id: {}", e.body_text())).at("case_id").into()),
    }
}

async fn list_cases(State(app): State<App>, Query(params): Query<Vec<(String, String)>>) -> Response {
    reply(app.engine.cases_reply(&params).await)
}

/// The SMS outbox, each with the sender id SNS would show (the policy's `sms.sender_id`).
async fn local_sms(State(app): State<App>, _h: HeaderMap) -> Response {
    let policy = &app.engine.policy;
    match app.engine.store.sms_outbox().await {
        Ok(all) => {
            let view = |s| {
                let mut v = wire::sms_view(s, &policy.calendar);
                v["sender_id"] = json!(policy.sms.sender_id);
                v
            };
            Json(json!({"messages": all.iter().map(view).collect::<Vec<_>>()})).into_response()
        }
        Err(e) => reply(e.into()),
    }
}

async fn local_commands(State(app): State<App>) -> Response {
    let cal = &app.engine.policy.calendar;
    match app.engine.store.commands().await {
        Ok(all) => Json(json!({"commands": all.iter().map(|c| wire::command_view(c, cal)).collect::<Vec<_>>()})).into_response(),
        Err(e) => reply(e.into()),
    }
}

fn no_virtual_clock() -> Response {
    reply(WireError::new(404, ErrorCode::NoVirtualClock, "the clock is the real one; start with FOLLOWUP_VIRTUAL_CLOCK to move it").into())
}

async fn get_clock(State(app): State<App>) -> Response {
    if app.engine.clock.virtual_clock().is_none() {
        return no_virtual_clock();
    }
    Json(json!({"now": app.engine.policy.calendar.rfc3339(app.engine.clock.now())})).into_response()
}

/// The longest one move of the virtual clock: ten years, each local midnight of which runs the
/// daily sweep (a move to the year 9999 would sweep for hours).
const MAX_CLOCK_MOVE: Duration = Duration::days(3650);

/// `POST /local/clock {"advance_secs": N}` or `{"to": "<RFC 3339>"}`: moves the virtual clock,
/// firing every timer due up to then in due order, each at its own due time, and answers
/// `{"now", "fired", "swept"}`.
///
/// The clock stops at each instant something would run on its own: a timer of the timer table at
/// its due time; the R5 expiry sweep at each local midnight crossed; and (R9.3 v3) the timer sweep
/// at the instant a snapshot's pending timer is overdue by the policy's grace
/// (`timers.sweep_grace_minutes`) — the moment the real clock's sweep, running every few seconds,
/// would re-fire a timer lost from the table. Sweeping only once at the target would re-fire such
/// a timer at the target instead, hours or days late, with every step after it spaced from there;
/// sweeping at each of these instants shows in a dry run what the safety net does, and when. A
/// timer still in the table has fired at its due time before its grace runs out, so the sweep
/// finds it gone. At one instant, timers fire first, then the midnight sweep, then the timer
/// sweep. `fired` counts every timer that ran, the sweeps' re-fires included; `swept` is how many
/// of them the timer sweep re-fired.
async fn post_clock(State(app): State<App>, body: axum::body::Bytes) -> Response {
    let Some(clock) = app.engine.clock.virtual_clock().cloned() else {
        return no_virtual_clock();
    };
    let bad = |m: &str, f: &str| reply(WireError::new(400, ErrorCode::InvalidField, m).at(f).into());
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(&body) else {
        return reply(WireError::new(400, ErrorCode::InvalidJson, "the body must be a JSON object").into());
    };
    let _guard = app.firing.write().await;
    let now = clock.now();
    let target = match (req.get("advance_secs"), req.get("to")) {
        (Some(secs), None) => match secs.as_i64() {
            Some(s) if (0..=MAX_CLOCK_MOVE.num_seconds()).contains(&s) => now + Duration::seconds(s),
            Some(s) if s >= 0 => return bad("advance_secs: the clock moves at most 3650 days at a time", "advance_secs"),
            _ => return bad("advance_secs must be a non-negative whole number", "advance_secs"),
        },
        (None, Some(Value::String(to))) => match DateTime::parse_from_rfc3339(to) {
            Ok(t) if t.with_timezone(&Utc) < now => return bad("the clock only moves forward", "to"),
            Ok(t) if t.with_timezone(&Utc) - now > MAX_CLOCK_MOVE => return bad("to: the clock moves at most 3650 days at a time", "to"),
            Ok(t) => t.with_timezone(&Utc),
            Err(_) => return bad("to must be an RFC 3339 instant", "to"),
        },
        _ => return bad("give exactly one of advance_secs or to", "advance_secs"),
    };
    let (mut fired, mut swept) = (0usize, 0usize);
    let mut last_sweep = None;
    loop {
        let step = match next_step(&app.engine, clock.now(), target, last_sweep).await {
            Ok(Some(step)) => step,
            Ok(None) => break,
            Err(e) => return reply(e.into()),
        };
        let at = step.at();
        if at > clock.now() {
            let _ = clock.set(at);
        }
        let ran = match step {
            Step::Timer(timer) => fire(&app, &timer).await.map(|()| 1),
            // The R5 daily safety sweep runs at every local midnight the clock crosses, for the day just ended.
            Step::Midnight(midnight) => sweep(&app.engine, midnight).await,
            Step::TimerSweep(at) => {
                last_sweep = Some(at);
                app.engine.timer_sweep().await.inspect(|n| swept += n)
            }
        };
        match ran {
            Ok(n) => fired += n,
            Err(e) => return reply(e.into()),
        }
    }
    let _ = clock.set(target);
    Json(json!({"now": app.engine.policy.calendar.rfc3339(clock.now()), "fired": fired, "swept": swept})).into_response()
}

/// What a move of the virtual clock runs next, and at which instant.
#[derive(Debug)]
enum Step {
    /// A timer of the timer table, at its due time.
    Timer(TimerSpec),
    /// The R5 expiry sweep, at a local midnight.
    Midnight(DateTime<Utc>),
    /// The R9.3 timer sweep, when a snapshot's pending timer has been overdue for the grace.
    TimerSweep(DateTime<Utc>),
}

impl Step {
    fn at(&self) -> DateTime<Utc> {
        match self {
            Step::Timer(t) => t.due_at,
            Step::Midnight(at) | Step::TimerSweep(at) => *at,
        }
    }
}

/// The next step of a clock move from `now` up to `target` (`last_sweep`: when this move last ran
/// the timer sweep); at one instant a timer comes first, then the midnight, then the timer sweep.
async fn next_step(
    engine: &LocalEngine,
    now: DateTime<Utc>,
    target: DateTime<Utc>,
    last_sweep: Option<DateTime<Utc>>,
) -> Result<Option<Step>, followup::ports::StoreError> {
    let timer = engine.store.due_timers(target, 1).await?.into_iter().next();
    let midnight = Some(next_midnight(engine, now)).filter(|m| *m <= target);
    let timer_sweep = next_timer_sweep(engine, now, target, last_sweep).await?;
    let first = [timer.as_ref().map(|t| t.due_at), midnight, timer_sweep].into_iter().flatten().min();
    Ok(match first {
        None => None,
        Some(at) => match timer {
            Some(t) if t.due_at <= at => Some(Step::Timer(t)),
            _ if midnight == Some(at) => Some(Step::Midnight(at)),
            _ => Some(Step::TimerSweep(at)),
        },
    })
}

/// How many snapshots past their grace one look ahead reads: those the timer sweep found still
/// overdue (a timer it re-fired that is refused or a duplicate) are passed over, the rest are
/// normally the first one.
const SWEEP_LOOKAHEAD: usize = 64;

/// When the R9.3 timer sweep next has a timer to re-fire, up to `target`: the earliest
/// `due + grace` of a snapshot's pending timer, and no earlier than `now`. A snapshot whose
/// instant is not after the last sweep of this move was already swept and is passed over, so the
/// clock never stops twice at one instant.
async fn next_timer_sweep(
    engine: &LocalEngine,
    now: DateTime<Utc>,
    target: DateTime<Utc>,
    last_sweep: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, followup::ports::StoreError> {
    let grace = Duration::minutes(i64::from(engine.policy.timers.sweep_grace_minutes));
    // The store's due index, earliest first: a read of the index and of a snapshot, never a scan.
    for key in engine.store.overdue(target - grace, SWEEP_LOOKAHEAD).await? {
        let Some(due) = engine.store.load(&key).await?.and_then(|s| s.next_due()) else { continue };
        let at = (due + grace).max(now);
        if last_sweep.is_none_or(|last| at > last) {
            return Ok(Some(at));
        }
    }
    Ok(None)
}

/// The first local midnight strictly after `now`.
fn next_midnight(engine: &LocalEngine, now: DateTime<Utc>) -> DateTime<Utc> {
    let cal = &engine.policy.calendar;
    cal.at(cal.local_date(now) + Duration::days(1), chrono::NaiveTime::MIN)
}

/// The R5 daily safety sweep for the local day before `midnight`.
async fn sweep(engine: &LocalEngine, midnight: DateTime<Utc>) -> Result<usize, followup::ports::StoreError> {
    let day = engine.policy.calendar.local_date(midnight) - Duration::days(1);
    let n = engine.expiry_sweep(day).await?;
    if n > 0 {
        info!(day = %day, ticks = n, "expiry sweep re-drove missed ticks");
    }
    Ok(n)
}

/// `GET /local/metrics`: the timer lateness of this process (fire time minus due time) as a
/// summary of its last 10,000 timers; under the virtual clock each fires at its own due time.
async fn local_metrics(State(app): State<App>) -> Response {
    let lateness = app.lateness.lock().unwrap_or_else(std::sync::PoisonError::into_inner).summary();
    Json(json!({"timer_lateness": lateness})).into_response()
}

/// `POST /local/timer-sweep`: R9.3's timer sweep now (it also runs every few seconds on the real
/// clock, and with each move of the virtual clock); answers how many lost timers it re-fired.
async fn post_timer_sweep(State(app): State<App>) -> Response {
    let _guard = app.firing.write().await;
    match app.engine.timer_sweep().await {
        Ok(n) => Json(json!({"fired": n})).into_response(),
        Err(e) => reply(e.into()),
    }
}

/// `POST /local/expiry-sweep {"date": "YYYY-MM-DD"}`: runs the R5 daily safety sweep for that day now
/// (it also runs by itself at every local midnight, for the day just ended).
async fn post_sweep(State(app): State<App>, body: axum::body::Bytes) -> Response {
    let date = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("date").and_then(Value::as_str).map(str::to_owned));
    let Some(date) = date.and_then(|d| d.parse::<chrono::NaiveDate>().ok()) else {
        return reply(WireError::new(400, ErrorCode::InvalidField, "date must be a YYYY-MM-DD date").at("date").into());
    };
    let _guard = app.firing.write().await;
    match app.engine.expiry_sweep(date).await {
        Ok(n) => Json(json!({"date": date.to_string(), "fired": n})).into_response(),
        Err(e) => reply(e.into()),
    }
}

/// Fires one timer and removes it; a timer whose input is refused can never succeed and is dropped.
async fn fire(app: &App, timer: &TimerSpec) -> Result<(), followup::ports::StoreError> {
    let engine = &app.engine;
    let late = (engine.clock.now() - timer.due_at).num_milliseconds();
    app.lateness.lock().unwrap_or_else(std::sync::PoisonError::into_inner).record(late);
    match engine.fire_timer(timer).await {
        Ok(_) | Err(ProcessError::Refused(_)) | Err(ProcessError::Contended) => {}
        Err(ProcessError::Store(e)) => return Err(e),
    }
    engine.store.remove_timer(&timer.timer.name()).await
}

/// On the real clock: fire due timers and run the daily expiry sweep; always: retry effects left pending.
async fn background(app: App) {
    let mut last_redrive = Utc::now();
    let mut swept_through: Option<chrono::NaiveDate> = None;
    loop {
        let virtual_clock = app.engine.clock.virtual_clock().is_some();
        let mut wait = std::time::Duration::from_millis(500);
        if !virtual_clock {
            let _guard = app.firing.write().await;
            let now = app.engine.clock.now();
            // R5 daily safety sweep: once a local day (and at start-up), for the day before.
            let today = app.engine.policy.calendar.local_date(now);
            if swept_through != Some(today) {
                match sweep(&app.engine, app.engine.policy.calendar.at(today, chrono::NaiveTime::MIN)).await {
                    Ok(_) => swept_through = Some(today),
                    Err(e) => warn!(error = %e, "expiry sweep: storage failure; will retry"),
                }
            }
            match app.engine.store.due_timers(now, 100).await {
                Ok(due) => {
                    for timer in &due {
                        if let Err(e) = fire(&app, timer).await {
                            warn!(error = %e, "timer runner: storage failure");
                            break;
                        }
                    }
                }
                Err(e) => warn!(error = %e, "timer runner: cannot list due timers"),
            }
            if let Ok(Some(next)) = app.engine.store.next_due_at().await {
                let until = (next - app.engine.clock.now()).to_std().unwrap_or_default();
                wait = wait.min(until.max(std::time::Duration::from_millis(10)));
            }
        }
        if Utc::now() - last_redrive > Duration::seconds(5) {
            last_redrive = Utc::now();
            let placing = app.placing().await;
            let redriven = app.engine.drive_pending().await;
            drop(placing);
            if let Err(e) = redriven {
                warn!(error = %e, "cannot re-drive pending effects");
            }
            // R9.3 the safety net under the timer table: a timer lost from it is re-fired once
            // overdue past the policy's grace (under the virtual clock, by each clock move).
            if !virtual_clock {
                let _guard = app.firing.write().await;
                if let Err(e) = app.engine.timer_sweep().await {
                    warn!(error = %e, "timer sweep: storage failure; will retry");
                }
            }
        }
        tokio::time::sleep(wait).await;
    }
}
