//! One input of the month and how it is performed: a webhook signed and sent through
//! `Engine::webhook`, a dashboard read of a case, or a timer fired from the store, each at its
//! own instant; and the queue the planned ones wait in.

use super::clock::NOW;
use super::floor::Decided;
use super::traffic::{self, Scheduled, Step};
use super::world::{SimEngine, SECRET};
use anyhow::bail;
use chrono::{DateTime, Utc};
use followup::domain::effects::TimerSpec;
use followup::domain::subjects::snapshot::SubjectKey;
use followup::engine::ProcessError;
use followup::wire::{self, Route};
use serde_json::json;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Instant;

/// One input waiting for its time: a planned or reactive request (a webhook, or a dashboard
/// read of a case), or a timer from the store.
pub(super) enum Work {
    Request(Step),
    Timer(TimerSpec),
}

/// The planned inputs, earliest first; `seq` keeps equal instants in the order they were planned.
#[derive(Default, Clone)]
pub(super) struct Queue {
    heap: BinaryHeap<Reverse<(DateTime<Utc>, u64)>>,
    steps: HashMap<u64, Step>,
    seq: u64,
}

impl Queue {
    pub(super) fn push(&mut self, s: Scheduled) {
        self.seq += 1;
        self.heap.push(Reverse((s.at, self.seq)));
        self.steps.insert(self.seq, s.step);
    }
    pub(super) fn peek(&self) -> Option<DateTime<Utc>> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }
    /// The stream of the earliest input: two inputs of one stream are never decided together.
    pub(super) fn peek_stream(&self) -> Option<String> {
        let Reverse((_, seq)) = self.heap.peek()?;
        Some(traffic::render_stream(&self.steps[seq]))
    }
    pub(super) fn pop(&mut self) -> Option<(DateTime<Utc>, Step)> {
        let Reverse((at, seq)) = self.heap.pop()?;
        self.steps.remove(&seq).map(|s| (at, s))
    }
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }
}

/// What one input did, for the invocation figures.
pub(super) struct Done {
    pub function: &'static str,
    pub ms: f64,
    pub kind: Kind,
    pub refused: Option<String>,
    /// What the engine decided on, for the decide-only floor (a case view decides nothing).
    pub decided: Option<Decided>,
}

/// What an input was, for the run's counters.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Webhook,
    Timer,
    View,
}

/// The Lambda function a timer fires into (`docs/dynamodb.md`, Timers).
fn timer_function(spec: &TimerSpec) -> &'static str {
    match spec.playbook.map(|p| p.as_str()) {
        Some("cancellation_follow_up") => "cancellation-request",
        Some("package_payment") => "package-payment",
        Some("package_expiry") => "package-expiry",
        Some(_) => "appointments",
        None => match spec.timer.stream {
            SubjectKey::Order(_) => "appointments",
            SubjectKey::Package(_) => "package-expiry",
        },
    }
}

fn route_function(route: Route) -> &'static str {
    match route {
        Route::Appointments => "appointments",
        Route::Cancellations => "cancellation-request",
        Route::Calls => "call-attempt",
        Route::Packages => "package-payment",
    }
}

/// Performs one input at its instant, and says what it did.
pub(super) async fn perform(engine: Arc<SimEngine>, at: DateTime<Utc>, work: Work, delivery: String) -> anyhow::Result<Done> {
    let started = Instant::now();
    match work {
        Work::Request(Step::View { case_id }) => {
            // The dashboard's read, signed on AWS by the HTTP API's IAM authorizer, not by the engine.
            let reply = NOW.scope(at, engine.case_reply(&case_id)).await;
            engine.store.tally().observed.lambda(at, started.elapsed().as_secs_f64() * 1e3);
            let refused =
                (reply.status != 200).then(|| format!("case view {} {}", reply.status, reply.body["error"]["code"].as_str().unwrap_or("")));
            Ok(Done { function: "cases", ms: started.elapsed().as_secs_f64() * 1e3, kind: Kind::View, refused, decided: None })
        }
        Work::Request(step) => {
            let cal = &engine.policy.calendar;
            let (route, kind, body) = match &step {
                // A replayed input goes as it was received; only its signature is new.
                Step::Received { route, kind, body, .. } => (*route, kind.clone(), body.clone().into_bytes()),
                _ => {
                    let (route, _, kind, data) = traffic::render(cal, &step);
                    let envelope = json!({"id": delivery, "type": kind, "occurred_at": cal.rfc3339(at), "data": data});
                    (route, kind.to_owned(), serde_json::to_vec(&envelope)?)
                }
            };
            let ts = Utc::now().timestamp();
            let signature = wire::sign(SECRET, ts, &body);
            let reply = NOW.scope(at, engine.webhook(route, Some(&ts.to_string()), Some(&signature), &body, ts)).await;
            let refused =
                (reply.status != 202).then(|| format!("{kind} {} {}", reply.status, reply.body["error"]["code"].as_str().unwrap_or("")));
            if reply.status == 503 {
                bail!("{kind}: storage failure: {}", reply.body);
            }
            let ms = started.elapsed().as_secs_f64() * 1e3;
            let mut t = engine.store.tally();
            t.observed.lambda(at, ms);
            if let (Step::Call { case_id, answered: true, .. }, 202) = (&step, reply.status) {
                t.observed.reached.insert(case_id.clone());
            }
            let decided = Some(Decided::Webhook { at, route, body: body.into_boxed_slice() });
            Ok(Done { function: route_function(route), ms, kind: Kind::Webhook, refused, decided })
        }
        Work::Timer(spec) => {
            let refused = match NOW.scope(at, engine.fire_timer(&spec)).await {
                Ok(_) => None,
                Err(ProcessError::Refused(w)) => Some(format!("timer {} {} {}", spec.timer.kind, w.status, w.code)),
                Err(ProcessError::Contended) => Some(format!("timer {} contended", spec.timer.kind)),
                Err(ProcessError::Store(e)) => return Err(e.into()),
            };
            let ms = started.elapsed().as_secs_f64() * 1e3;
            {
                let mut t = engine.store.tally();
                t.observed.lambda(at, ms);
                t.observed.fired(at);
            }
            // On AWS the schedule deletes itself after it ran (`ActionAfterCompletion: DELETE`).
            engine.store.inner.remove_timer(&spec.timer.name()).await?;
            let function = timer_function(&spec);
            Ok(Done { function, ms, kind: Kind::Timer, refused, decided: Some(Decided::Timer { at, spec }) })
        }
    }
}
