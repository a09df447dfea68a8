//! The team lead's console: read-only HTML pages under `/console`, served by followup-local.
//!
//! Pages (no JavaScript, no external asset): what is due now (`/console`), SLA deadlines and
//! breaches (`/console/sla`), cases with filters (`/console/cases`), one case as a story
//! (`/console/cases/{id}`), today's SMS (`/console/sms`) and the clock (`/console/clock`). Every
//! list comes from the store's console read model ([`ConsoleReads`]), by index. The routes are
//! not part of the published contract (docs/openapi.json); access is guarded by [`auth`].

pub mod auth;
pub mod pages;

use crate::engine::LocalEngine;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use followup::console::{CaseFilter, ConsoleReads};
use followup::domain::records::case::{PlaybookName, TicketStatus};
use followup::ports::{CaseStore, Clock, StoreError};
use followup::wire::WireError;
use pages::{ClockLine, Section};
use std::sync::Arc;

/// The most rows one list shows.
const LIST_LIMIT: usize = 500;

/// The console's routes, on the engine they read.
pub fn router<S>(engine: Arc<LocalEngine>) -> Router<S> {
    Router::new()
        .route("/console", get(due))
        .route("/console/sla", get(sla))
        .route("/console/cases", get(cases))
        .route("/console/cases/:case_id", get(case))
        .route("/console/sms", get(sms))
        .route("/console/clock", get(clock))
        .route("/console/what-if", get(what_if))
        .with_state(engine)
}

type Engine = State<Arc<LocalEngine>>;

fn clock_line(engine: &LocalEngine) -> ClockLine {
    ClockLine { now: engine.clock.now(), virtual_clock: engine.clock.virtual_clock().is_some() }
}

fn html(status: StatusCode, body: String) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        // Nothing but the page itself: inline style, no script, no frame, no other origin.
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    (status, headers, body).into_response()
}

fn page(engine: &LocalEngine, title: &str, section: Option<Section>, body: &str) -> Response {
    html(StatusCode::OK, pages::layout(title, section, &clock_line(engine), &engine.policy.calendar, body))
}

/// A storage failure as a page (the JSON routes answer it with the error body).
fn failed(engine: &LocalEngine, e: StoreError) -> Response {
    let body = format!("<p role=\"alert\">The store could not answer: {}</p>", pages::esc(&e.to_string()));
    html(StatusCode::SERVICE_UNAVAILABLE, pages::layout("Store unavailable", None, &clock_line(engine), &engine.policy.calendar, &body))
}

async fn due(State(engine): Engine) -> Response {
    let now = engine.clock.now();
    match engine.store.call_tasks(now, LIST_LIMIT).await {
        Ok(tasks) => {
            let overdue_after = Duration::minutes(i64::from(engine.policy.console.task_overdue_minutes));
            page(&engine, "Due now", Some(Section::Due), &pages::due(&tasks, now, overdue_after, &engine.policy.calendar))
        }
        Err(e) => failed(&engine, e),
    }
}

async fn sla(State(engine): Engine) -> Response {
    let now = engine.clock.now();
    let p = &engine.policy.console;
    let coming = engine.store.deadlines(now, now + Duration::hours(i64::from(p.sla_horizon_hours)), LIST_LIMIT).await;
    let breached = engine.store.breaches(now - Duration::hours(i64::from(p.breach_lookback_hours)), LIST_LIMIT).await;
    match (coming, breached) {
        (Ok(coming), Ok(breached)) => {
            let body = pages::sla(&coming, &breached, now, p.sla_horizon_hours, p.breach_lookback_hours, &engine.policy.calendar);
            page(&engine, "SLA deadlines", Some(Section::Sla), &body)
        }
        (Err(e), _) | (_, Err(e)) => failed(&engine, e),
    }
}

/// The filter form's fields as a filter; a value none of the names takes is refused, by name.
fn filter_of(params: &[(String, String)]) -> Result<CaseFilter, String> {
    let mut f = CaseFilter { limit: LIST_LIMIT, ..CaseFilter::default() };
    for (k, v) in params.iter().filter(|(_, v)| !v.trim().is_empty()) {
        let v = v.trim();
        match k.as_str() {
            "playbook" => f.playbook = Some(v.parse::<PlaybookName>().map_err(|e| format!("playbook: {e}"))?),
            "state" => f.state = Some(v.to_string()),
            "status" => f.status = Some(v.parse::<TicketStatus>().map_err(|e| format!("status: {e}"))?),
            "area" => f.area = Some(v.to_string()),
            _ => {}
        }
    }
    Ok(f)
}

async fn cases(State(engine): Engine, Query(params): Query<Vec<(String, String)>>) -> Response {
    let now = engine.clock.now();
    let (filter, error) = match filter_of(&params) {
        Ok(f) => (f, None),
        Err(e) => (CaseFilter { limit: LIST_LIMIT, ..CaseFilter::default() }, Some(e)),
    };
    let found = if error.is_some() { Ok(Vec::new()) } else { engine.store.find_cases(&filter).await };
    match found {
        Ok(found) => {
            let body = pages::cases(&filter, &found, error.as_deref(), now, &engine.policy.calendar);
            let mut response = page(&engine, "Cases", Some(Section::Cases), &body);
            if error.is_some() {
                *response.status_mut() = StatusCode::BAD_REQUEST;
            }
            response
        }
        Err(e) => failed(&engine, e),
    }
}

async fn case(State(engine): Engine, case_id: Result<Path<String>, axum::extract::rejection::PathRejection>) -> Response {
    let Ok(Path(case_id)) = case_id else {
        return not_found(&engine, "that case id");
    };
    let Some(key) = followup::domain::subjects::snapshot::SubjectKey::of_case(&case_id) else {
        return not_found(&engine, &case_id);
    };
    let snapshot = match engine.store.load(&key).await {
        Ok(s) => s,
        Err(e) => return failed(&engine, e),
    };
    let Some((case, held)) = snapshot.and_then(|s| {
        let held = s.held.iter().filter(|h| h.sms.case_id.as_deref() == Some(case_id.as_str())).cloned().collect::<Vec<_>>();
        s.case(&case_id).cloned().map(|c| (c, held))
    }) else {
        return not_found(&engine, &case_id);
    };
    let sent = match engine.store.sms_of_case(&case_id).await {
        Ok(s) => s,
        Err(e) => return failed(&engine, e),
    };
    let now = engine.clock.now();
    let overdue_after = Duration::minutes(i64::from(engine.policy.console.task_overdue_minutes));
    let task = followup::console::outstanding_task(&case).filter(|d| *d <= now).map(|d| now - d >= overdue_after);
    let body = pages::case(&case, &sent, &held, task, now, &engine.policy.calendar);
    page(&engine, &format!("Case {case_id}"), Some(Section::Cases), &body)
}

fn not_found(engine: &LocalEngine, what: &str) -> Response {
    let body = format!("<p role=\"alert\">No case {}. <a href=\"/console/cases\">All cases</a>.</p>", pages::esc(what));
    html(StatusCode::NOT_FOUND, pages::layout("Case not found", Some(Section::Cases), &clock_line(engine), &engine.policy.calendar, &body))
}

/// The instants a local day runs between.
fn local_day(engine: &LocalEngine, now: DateTime<Utc>) -> (chrono::NaiveDate, DateTime<Utc>, DateTime<Utc>) {
    let cal = &engine.policy.calendar;
    let day = cal.local_date(now);
    (day, cal.at(day, chrono::NaiveTime::MIN), cal.at(day + Duration::days(1), chrono::NaiveTime::MIN))
}

async fn sms(State(engine): Engine) -> Response {
    let (day, from, to) = local_day(&engine, engine.clock.now());
    match (engine.store.sms_sent(from, to).await, engine.store.sms_stopped(from, to).await) {
        (Ok(sent), Ok(stopped)) => {
            page(&engine, "Today's SMS", Some(Section::Sms), &pages::sms(day, &sent, &stopped, &engine.policy.calendar))
        }
        (Err(e), _) | (_, Err(e)) => failed(&engine, e),
    }
}

async fn clock(State(engine): Engine) -> Response {
    page(&engine, "Clock", Some(Section::Clock), &pages::clock(&clock_line(&engine), &engine.policy.calendar))
}

/// A 401 in the error body every route answers with (SPEC §5).
pub(crate) fn unauthorized(message: &str) -> Response {
    let e = WireError::new(401, followup::domain::ErrorCode::Unauthorized, message);
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(e.body())).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer realm=\"followup-console\""));
    response
}

/// The largest month the console's what-if runs (a few seconds); the command line runs any.
const WHAT_IF_MAX: (u32, u32) = (5_000, 1_000);

/// The what-if form's values: policy B is the running policy with these, over a month this size.
struct WhatIf {
    attempts: u32,
    attempt_time: chrono::NaiveTime,
    discount: u32,
    daily_cap: u32,
    appointments: u32,
    packages: u32,
}

impl WhatIf {
    /// The form's fields, each defaulting to the running policy's figure; a value out of its range is refused by name.
    fn read(params: &[(String, String)], p: &followup::domain::policy::Policy) -> Result<WhatIf, String> {
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim()).filter(|v| !v.is_empty());
        let number = |k: &str, default: u32, range: std::ops::RangeInclusive<u32>| -> Result<u32, String> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| format!("{k}: a whole number from {} to {}", range.start(), range.end())),
            }
        };
        let c = &p.cancellation_follow_up;
        let attempt_time = match get("attempt_time") {
            None => c.attempt_time,
            Some(v) => chrono::NaiveTime::parse_from_str(v, "%H:%M").map_err(|_| "attempt_time: a time of day, HH:MM".to_string())?,
        };
        let discount = c.discount.to_string().parse::<u32>().unwrap_or(15);
        Ok(WhatIf {
            attempts: number("attempts", c.attempts, 1..=5)?,
            attempt_time,
            discount: number("discount", discount, 0..=100)?,
            daily_cap: number("daily_cap", p.sms.daily_cap, 1..=50)?,
            appointments: number("appointments", 1_000, 1..=WHAT_IF_MAX.0)?,
            packages: number("packages", 200, 0..=WHAT_IF_MAX.1)?,
        })
    }

    fn policy(&self, running: &followup::domain::policy::Policy) -> followup::domain::policy::Policy {
        let mut b = running.clone();
        b.cancellation_follow_up.attempts = self.attempts;
        b.cancellation_follow_up.attempt_time = self.attempt_time;
        b.cancellation_follow_up.discount = followup::domain::money::Percent::whole(self.discount);
        b.sms.daily_cap = self.daily_cap;
        b
    }

    fn fields(&self) -> [(&'static str, &'static str, String, &'static str); 6] {
        [
            ("attempts", "Follow-up call attempts (R2.5)", self.attempts.to_string(), "number"),
            ("attempt_time", "Time of the follow-up calls (R2.5)", self.attempt_time.format("%H:%M").to_string(), "time"),
            ("discount", "Coupon, percent (R2.3)", self.discount.to_string(), "number"),
            ("daily_cap", "SMS per number per day (SPEC section 4)", self.daily_cap.to_string(), "number"),
            ("appointments", "Appointments in the month (at most 5,000 here)", self.appointments.to_string(), "number"),
            ("packages", "Packages in the month (at most 1,000 here)", self.packages.to_string(), "number"),
        ]
    }
}

/// The what-if: the form, and once submitted (`run`), the two months side by side.
async fn what_if(State(engine): Engine, Query(params): Query<Vec<(String, String)>>) -> Response {
    let running = &engine.policy;
    let form = match WhatIf::read(&params, running) {
        Ok(form) => form,
        Err(e) => {
            let shown = WhatIf::read(&[], running).expect("the running policy's figures are in range");
            let body = pages::what_if_form(&shown.fields(), Some(&e));
            return html(
                StatusCode::BAD_REQUEST,
                pages::layout("What-if", Some(Section::WhatIf), &clock_line(&engine), &running.calendar, &body),
            );
        }
    };
    let mut body = pages::what_if_form(&form.fields(), None);
    if params.iter().any(|(k, _)| k == "run") {
        let (a, b) = (("the running policy".to_string(), (**running).clone()), ("with the changes".to_string(), form.policy(running)));
        let (appointments, packages) = (form.appointments, form.packages);
        let ran = tokio::task::spawn_blocking(move || followup_tools::simulate::what_if_sections(appointments, packages, a, b)).await;
        match ran {
            Ok(Ok((sections, style))) => {
                let _ = std::fmt::Write::write_fmt(&mut body, format_args!("<style>{style}</style><h2>A and B</h2>{sections}"));
            }
            Ok(Err(e)) => body.push_str(&format!("<p role=\"alert\">The simulation failed: {}</p>", pages::esc(&e.to_string()))),
            Err(e) => body.push_str(&format!("<p role=\"alert\">The simulation failed: {}</p>", pages::esc(&e.to_string()))),
        }
    }
    page(&engine, "What-if", Some(Section::WhatIf), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_filter_form_reads_its_fields_and_refuses_unknown_names() {
        let f = filter_of(&params(&[("playbook", "package_payment"), ("status", ""), ("area", " Cairo ")])).unwrap();
        assert_eq!(f.playbook, Some(PlaybookName::PackagePayment));
        assert_eq!(f.status, None);
        assert_eq!(f.area.as_deref(), Some("Cairo"));
        assert!(filter_of(&params(&[("status", "lost")])).unwrap_err().starts_with("status:"));
    }
}
