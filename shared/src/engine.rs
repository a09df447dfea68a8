//! The shell around the pure domain: authenticate → parse → idempotency → load → decide → commit → effects.
//!
//! Every input — webhook or fired timer — goes through `Engine::process`, the one
//! place where a decision becomes durable: the new stream, the idempotency record
//! and the pending effects are written by a single `CaseStore::commit`. Effects are
//! performed after the commit and marked done; anything left pending (a crash, an
//! outage) is performed again by `drive_pending`, and every adapter drops a repeat
//! of the same effect id. A conflicting concurrent commit is retried by reloading
//! and deciding again.

use crate::domain::ctx::SmsLedger;
use crate::domain::effects::{Effect, TimerRef, TimerSpec};
use crate::domain::events::Input;
use crate::domain::ids::SubjectId;
use crate::domain::playbooks::Case;
use crate::domain::policy::Policy;
use crate::domain::records::case::{mask_phone, TimerKind};
use crate::domain::subjects::snapshot::{Snapshot, SubjectKey};
use crate::domain::{decide, Target};
use crate::metrics::{self, Metric};
use crate::ports::{
    CaseStore, Clock, CommandBus, Commit, CommitError, Delivery, EffectError, PendingEffect, Ports, Received, SmsSender, StoreError, Timers,
};
use crate::wire::{self, CaseQuery, Reply, Route, WireError};
use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::{info, warn};

/// How often a decision is retried when another writer committed the stream first.
const MAX_CONFLICT_RETRIES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Refused(#[from] WireError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stream kept changing; gave up after {MAX_CONFLICT_RETRIES} tries")]
    Contended,
}

/// The wire sits below the engine, so the engine maps its own error here; each status is the wire's.
impl From<ProcessError> for Reply {
    fn from(e: ProcessError) -> Self {
        match e {
            ProcessError::Refused(w) => w.into(),
            ProcessError::Store(s) => s.into(),
            ProcessError::Contended => WireError::contended().into(),
        }
    }
}

/// The accepted outcome of one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub case_id: Option<String>,
    pub duplicate: bool,
    /// R9.2 the input reported a fact already held: written on the timeline, nothing else.
    pub echo: bool,
}

/// The shell over one runtime's adapters, named once by its [`Ports`].
pub struct Engine<P: Ports> {
    pub store: P::Store,
    pub timers: P::Timers,
    pub sms: P::Sms,
    pub commands: P::Commands,
    pub clock: P::Clock,
    pub policy: Arc<Policy>,
    pub secret: String,
    pub locks: StreamLocks,
}

/// Inputs for the same stream in one process queue here instead of racing to a
/// version conflict; the conditional commit still guards writers in other processes.
pub struct StreamLocks([tokio::sync::Mutex<()>; 64]);

impl Default for StreamLocks {
    fn default() -> Self {
        StreamLocks(std::array::from_fn(|_| tokio::sync::Mutex::new(())))
    }
}

impl StreamLocks {
    fn of(&self, key: &SubjectKey) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        &self.0[(h.finish() % self.0.len() as u64) as usize]
    }
}

impl<P: Ports> Engine<P> {
    /// A signed webhook: the whole contract of SPEC §5 for one POST.
    /// `wall_unix` is the real wall clock, against which signatures are checked even under a virtual clock.
    pub async fn webhook(&self, route: Route, timestamp: Option<&str>, signature: Option<&str>, body: &[u8], wall_unix: i64) -> Reply {
        self.webhook_signed_with(&self.secret, route, timestamp, signature, body, wall_unix).await
    }

    /// [`Engine::webhook`] with its signature checked against `secret` instead of the engine's
    /// own: for a runtime that reads its secret after start-up (the Lambda functions read theirs
    /// from Secrets Manager at their first webhook). An empty `secret` verifies nothing.
    pub async fn webhook_signed_with(
        &self,
        secret: &str,
        route: Route,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        wall_unix: i64,
    ) -> Reply {
        if let Err(e) = wire::check_size(body) {
            return e.into();
        }
        if let Err(e) = wire::verify_signature(secret, timestamp, signature, body, wall_unix) {
            info!(route = route.path(), reason = %e.message, "webhook refused: signature");
            metrics::record(Metric::Refused { code: e.code, timer: false });
            return e.into();
        }
        let event = match wire::parse_event(route, body, &self.policy.money.currency) {
            Ok(e) => e,
            Err(e) => {
                info!(route = route.path(), code = %e.code, field = ?e.field, "webhook refused: invalid");
                metrics::record(Metric::Refused { code: e.code, timer: false });
                return e.into();
            }
        };
        // R9.7 an event cannot have happened after now (the sender's clock may run a little ahead).
        let ahead = event.occurred_at - self.clock.now();
        if ahead > chrono::Duration::seconds(self.policy.events.future_tolerance_secs as i64) {
            let e = WireError::ahead_of_clock(ahead.num_seconds(), self.policy.events.future_tolerance_secs);
            metrics::record(Metric::Refused { code: e.code, timer: false });
            return e.into();
        }
        let delivery_id = event.id.clone();
        let kind = event.body.kind();
        let received =
            self.store.keeps_inputs().then(|| Received { route: route.path(), occurred_at: event.occurred_at, body: body.into() });
        match self.process(Input::Event(event), &delivery_id, &wire::body_hash(body), received).await {
            Ok(a) => {
                info!(event_id = %delivery_id, event_type = %kind, case_id = ?a.case_id, duplicate = a.duplicate, echo = a.echo, "webhook accepted");
                if a.duplicate {
                    metrics::record(Metric::Duplicate { timer: false });
                }
                Reply::accepted(a.case_id.as_deref(), a.duplicate, a.echo)
            }
            Err(e) => {
                info!(event_id = %delivery_id, event_type = %kind, error = %e, "webhook refused");
                if let ProcessError::Refused(w) = &e {
                    metrics::record(Metric::Refused { code: w.code, timer: false });
                }
                e.into()
            }
        }
    }

    /// A timer firing, exactly as Scheduler (or the local runner) delivers it.
    /// A timer fired twice is a duplicate delivery; one for a step the case has left changes nothing.
    pub async fn fire_timer(&self, timer: &TimerSpec) -> Result<Accepted, ProcessError> {
        let name = timer.timer.name();
        let result =
            self.process(Input::Timer(timer.timer.clone()), &format!("timer:{name}"), &wire::body_hash(name.as_bytes()), None).await;
        match &result {
            Ok(a) => {
                info!(timer = %name, kind = %timer.timer.kind, case_id = ?a.case_id, duplicate = a.duplicate, "timer fired");
                if a.duplicate {
                    metrics::record(Metric::Duplicate { timer: true });
                } else {
                    let late = (self.clock.now() - timer.due_at).num_milliseconds() as f64 / 1000.0;
                    metrics::record(Metric::TimerLateness { kind: timer.timer.kind, seconds: late });
                }
            }
            Err(e) => {
                warn!(timer = %name, kind = %timer.timer.kind, error = %e, "timer failed");
                if let ProcessError::Refused(w) = e {
                    metrics::record(Metric::Refused { code: w.code, timer: true });
                }
            }
        }
        result
    }

    /// The daily safety sweep of R5 (no scan): reads only the packages indexed under `date`
    /// (`expiry:<date>:<package_id>`, written when each package was booked) and re-fires any of
    /// their expiry ticks (R5.2 Day 1, R5.4 end of grace) that are due by now but have not run —
    /// a one-shot timer lost or delayed on the way. A re-fired tick is the same timer delivery
    /// (`timer:<name>`), so one that did run meanwhile is a harmless duplicate; the original
    /// one-shot is then cancelled. Returns how many ticks ran because of the sweep.
    pub async fn expiry_sweep(&self, date: NaiveDate) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut fired = 0;
        for (subject, key) in self.store.subjects_with_prefix(&SubjectId::expiry_prefix(date)).await? {
            let Some(stream) = self.store.load(&key).await? else {
                warn!(subject = %subject, "expiry sweep: indexed package has no stream");
                continue;
            };
            let due = stream
                .timers
                .iter()
                .filter(|t| matches!(t.timer.kind, TimerKind::ExpiryDay1 | TimerKind::ExpiryDeactivate) && t.timer.due_at <= now);
            for pending in due {
                let spec = TimerSpec {
                    timer: TimerRef { stream: key.clone(), case_id: None, kind: pending.timer.kind, step: pending.timer.step },
                    due_at: pending.timer.due_at,
                    playbook: None,
                };
                match self.fire_timer(&spec).await {
                    Ok(a) if !a.duplicate => {
                        fired += 1;
                        info!(subject = %subject, kind = %spec.timer.kind, "expiry sweep re-drove a missed tick");
                    }
                    Ok(_) | Err(ProcessError::Refused(_)) | Err(ProcessError::Contended) => {}
                    Err(ProcessError::Store(e)) => return Err(e),
                }
                if let Err(e) = self.timers.cancel(&spec.timer).await {
                    warn!(subject = %subject, error = %e, "expiry sweep: could not drop the original one-shot; its firing will be a duplicate");
                }
            }
        }
        Ok(fired)
    }

    /// R9.3 the safety net under the one-shot timers: every snapshot whose earliest pending
    /// timer is past due by more than the policy's grace (read from the store's due index, never
    /// a scan) has each such timer re-fired as the same delivery (`timer:<name>`), so one that did
    /// fire meanwhile is a duplicate, and the original one-shot is dropped. Scheduler stays the
    /// fast path; this bounds how late a lost timer can be. Returns how many timers ran because of it.
    pub async fn timer_sweep(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let cutoff = now - chrono::Duration::minutes(self.policy.timers.sweep_grace_minutes as i64);
        let mut fired = 0;
        for key in self.store.overdue(cutoff, 500).await? {
            let Some(snapshot) = self.store.load(&key).await? else { continue };
            let k = &key;
            let case_timers = snapshot.cases.iter().flat_map(|c| {
                c.timers.iter().map(move |t| TimerSpec {
                    timer: TimerRef { stream: k.clone(), case_id: Some(c.case_id.clone()), kind: t.kind, step: t.step },
                    due_at: t.due_at,
                    playbook: Some(c.playbook()),
                })
            });
            let subject_timers = snapshot.timers.iter().map(|t| TimerSpec {
                timer: TimerRef { stream: k.clone(), case_id: None, kind: t.timer.kind, step: t.timer.step },
                due_at: t.timer.due_at,
                playbook: None,
            });
            let mut overdue: Vec<TimerSpec> = case_timers.chain(subject_timers).filter(|t| t.due_at <= cutoff).collect();
            overdue.sort_by_key(|t| t.due_at);
            for spec in overdue {
                match self.fire_timer(&spec).await {
                    Ok(a) if !a.duplicate => {
                        fired += 1;
                        warn!(timer = %spec.timer.name(), kind = %spec.timer.kind, due_at = %spec.due_at, "timer sweep re-fired a lost timer");
                    }
                    Ok(_) | Err(ProcessError::Refused(_)) | Err(ProcessError::Contended) => {}
                    Err(ProcessError::Store(e)) => return Err(e),
                }
                if let Err(e) = self.timers.cancel(&spec.timer).await {
                    warn!(timer = %spec.timer.name(), error = %e, "timer sweep: could not drop the original one-shot; its firing will be a duplicate");
                }
            }
        }
        Ok(fired)
    }

    /// The one path from an input to a durable decision.
    ///
    /// The happy path reads the stream once and writes once: a repeated delivery is
    /// caught by the commit's condition, and only a refusal looks the delivery up
    /// (a repeat of an accepted delivery answers as a duplicate even if the case has
    /// moved on since). `received` is the webhook as it came, given to the commit for a store
    /// that keeps every accepted input (`None` for a timer).
    pub async fn process(
        &self,
        input: Input,
        delivery_id: &str,
        body_hash: &str,
        received: Option<Received>,
    ) -> Result<Accepted, ProcessError> {
        let target = input.target().map_err(WireError::from)?;
        let mut ledger = SmsLedger::default();
        for attempt in 0..MAX_CONFLICT_RETRIES {
            if attempt > 0 {
                backoff(delivery_id, attempt).await;
            }
            let located = self.locate(&target).await?;
            let _queue = match &located {
                Some(key) => Some(self.locks.of(key).lock().await),
                None => None,
            };
            let loaded = match &located {
                Some(key) => self.store.load(key).await?,
                None => None,
            };
            let now = self.clock.now();
            // SPEC §4 (v3) the daily counts of the numbers known to need one, read afresh on a
            // retry (another decision may have moved them); a number first met is read and the
            // input decided again.
            let day = self.policy.calendar.local_date(now);
            let known: Vec<String> = ledger.counts.keys().cloned().collect();
            ledger = SmsLedger { day: Some(day), counts: BTreeMap::new() };
            self.read_counts(&mut ledger, &known).await?;
            let decision = loop {
                let decision = match decide(loaded.as_ref(), &input, now, &self.policy, &ledger) {
                    Ok(d) => d,
                    Err(refusal) => return self.refuse(delivery_id, body_hash, refusal.into()).await,
                };
                if decision.sms_unknown.is_empty() {
                    break decision;
                }
                self.read_counts(&mut ledger, &decision.sms_unknown).await?;
            };
            let effects: Vec<PendingEffect> = decision
                .effects
                .into_iter()
                .enumerate()
                .map(|(i, effect)| PendingEffect { id: format!("{delivery_id}#{i}"), effect })
                .collect();
            let commit = Commit {
                stream: decision.snapshot,
                expected_version: loaded.as_ref().map(|s| s.version),
                delivery: Delivery {
                    id: delivery_id.to_string(),
                    body_hash: body_hash.to_string(),
                    case_id: decision.case_id.clone(),
                    accepted_at: now,
                },
                index: decision.index,
                effects: effects.clone(),
                sms_counts: decision.sms_counts,
                received: received.clone(),
            };
            let echo = decision.echo;
            match self.store.commit(commit).await {
                Ok(()) if self.store.performs_effects() => {
                    effects.iter().for_each(performed);
                    return Ok(Accepted { case_id: decision.case_id, duplicate: false, echo });
                }
                Ok(()) => {
                    self.perform_all(&effects).await;
                    return Ok(Accepted { case_id: decision.case_id, duplicate: false, echo });
                }
                Err(CommitError::Conflict) => continue,
                Err(CommitError::DuplicateDelivery(d)) => return replay(d, body_hash),
                Err(CommitError::SubjectTaken(subject)) => {
                    return self.refuse(delivery_id, body_hash, WireError::subject_taken(&subject)).await;
                }
                Err(CommitError::Store(e)) => return Err(e.into()),
            }
        }
        Err(ProcessError::Contended)
    }

    /// Adds to `ledger` the daily SMS counts of `phones` (0 for a number with none yet).
    async fn read_counts(&self, ledger: &mut SmsLedger, phones: &[String]) -> Result<(), StoreError> {
        if phones.is_empty() {
            return Ok(());
        }
        let day = ledger.day.expect("the ledger's day is set before it is read");
        let held = self.store.sms_counts(phones, day).await?;
        ledger.counts.extend(phones.iter().map(|p| (p.clone(), held.get(p).copied().unwrap_or(0))));
        Ok(())
    }

    /// A refusal, unless this delivery was already accepted: then it is a repeat.
    async fn refuse(&self, delivery_id: &str, body_hash: &str, refusal: WireError) -> Result<Accepted, ProcessError> {
        match self.store.delivery(delivery_id).await? {
            Some(d) => replay(d, body_hash),
            None => Err(refusal.into()),
        }
    }

    async fn locate(&self, target: &Target) -> Result<Option<SubjectKey>, StoreError> {
        match target {
            Target::Key(key) => Ok(Some(key.clone())),
            Target::Appointment(id) => self.store.locate(&SubjectId::Appointment(id.clone()).to_string()).await,
        }
    }

    /// Performs committed effects in order, then marks done, in one store call, those whose
    /// adapter did not (on DynamoDB one write for a whole commit's effects). A failure leaves its
    /// effect pending for `drive_pending`. Returns how many are now done.
    async fn perform_all(&self, effects: &[PendingEffect]) -> usize {
        let (mut done, mut unmarked) = (0, Vec::new());
        for pending in effects {
            match self.perform(pending).await {
                Some(true) => done += 1,
                Some(false) => unmarked.push(pending.id.as_str()),
                None => {}
            }
        }
        if unmarked.is_empty() {
            return done;
        }
        match self.store.effects_done(&unmarked).await {
            Ok(()) => done + unmarked.len(),
            Err(e) => {
                warn!(effect_ids = ?unmarked, error = %e, "effects performed but not marked done; they will be repeated and deduplicated");
                done
            }
        }
    }

    /// Performs one committed effect: `Some(true)` if its adapter also marked it done,
    /// `Some(false)` if it is left to mark, `None` if it failed (it stays pending).
    async fn perform(&self, pending: &PendingEffect) -> Option<bool> {
        let marked = match &pending.effect {
            Effect::SendSms(_) => <P::Sms as SmsSender>::MARKS_DONE,
            Effect::Emit(_) => <P::Commands as CommandBus>::MARKS_DONE,
            Effect::PlaceTimer(_) | Effect::CancelTimer(_) => false,
        };
        let result = match &pending.effect {
            Effect::SendSms(sms) => self.sms.send(&pending.id, sms).await,
            Effect::Emit(cmd) => self.commands.publish(&pending.id, cmd).await,
            Effect::PlaceTimer(t) => self.timers.place(t).await,
            Effect::CancelTimer(t) => self.timers.cancel(t).await,
        };
        if result.is_ok() {
            performed(pending);
        }
        match result {
            Ok(()) => Some(marked),
            Err(EffectError::Permanent(e)) => {
                warn!(effect_id = %pending.id, error = %e, "effect failed permanently; left pending for an operator");
                None
            }
            Err(EffectError::Transient(e)) => {
                warn!(effect_id = %pending.id, error = %e, "effect failed; will retry");
                let effect = match &pending.effect {
                    Effect::SendSms(_) => "send_sms",
                    Effect::Emit(_) => "emit",
                    Effect::PlaceTimer(_) => "place_timer",
                    Effect::CancelTimer(_) => "cancel_timer",
                };
                metrics::record(Metric::EffectRetry { effect });
                None
            }
        }
    }

    /// Performs every effect still pending (after a crash or an outage). Returns how many were done.
    pub async fn drive_pending(&self) -> Result<usize, StoreError> {
        let pending = self.store.pending_effects(1_000).await?;
        Ok(self.perform_all(&pending).await)
    }

    pub async fn case(&self, case_id: &str) -> Result<Option<Case>, StoreError> {
        let Some(key) = SubjectKey::of_case(case_id) else {
            return Ok(None);
        };
        Ok(self.store.load(&key).await?.and_then(|s| s.case(case_id).cloned()))
    }

    pub async fn cases(&self, query: &CaseQuery) -> Result<Vec<Case>, StoreError> {
        let (key, appointment) = match query {
            CaseQuery::Order(id) => (Some(SubjectKey::Order(id.clone())), None),
            CaseQuery::Package(id) => (Some(SubjectKey::Package(id.clone())), None),
            CaseQuery::Appointment(id) => (self.store.locate(&SubjectId::Appointment(id.clone()).to_string()).await?, Some(id)),
        };
        let Some(key) = key else {
            return Ok(Vec::new());
        };
        let stream: Option<Snapshot> = self.store.load(&key).await?;
        Ok(stream
            .map(|s| s.cases.into_iter().filter(|c| appointment.is_none_or(|a| c.appointment_id.as_ref() == Some(a))).collect())
            .unwrap_or_default())
    }

    /// `GET /v1/cases/{id}` as a reply.
    pub async fn case_reply(&self, case_id: &str) -> Reply {
        match self.case(case_id).await {
            Ok(Some(case)) => Reply::ok(wire::case_view(&case, &self.policy.calendar)),
            Ok(None) => WireError::unknown_case(case_id).into(),
            Err(e) => e.into(),
        }
    }

    /// `GET /v1/cases?appointment_id=…|order_id=…|package_id=…` as a reply.
    pub async fn cases_reply(&self, params: &[(String, String)]) -> Reply {
        let query = match CaseQuery::from_params(params) {
            Ok(q) => q,
            Err(e) => return e.into(),
        };
        match self.cases(&query).await {
            Ok(cases) => Reply::ok(wire::cases_view(&cases, &self.policy.calendar)),
            Err(e) => e.into(),
        }
    }
}

/// Logs and counts an effect once it is performed.
fn performed(pending: &PendingEffect) {
    match &pending.effect {
        Effect::SendSms(sms) => {
            info!(effect_id = %pending.id, case_id = ?sms.case_id, template = %sms.template, to = %mask_phone(&sms.to), segments = sms.segments, "sms");
            metrics::record(Metric::SmsSent { template: sms.template, segments: sms.segments });
        }
        Effect::Emit(cmd) => {
            info!(effect_id = %pending.id, case_id = ?cmd.case_id, command = cmd.body.kind(), "command");
            metrics::record(Metric::CommandSent { kind: cmd.body.kind() });
        }
        Effect::PlaceTimer(_) | Effect::CancelTimer(_) => {}
    }
}

/// Exponential backoff with a jitter derived from the delivery id, so writers that
/// collided do not collide again in step.
async fn backoff(delivery_id: &str, attempt: usize) {
    let jitter = delivery_id.bytes().fold(attempt as u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)) % 10;
    tokio::time::sleep(std::time::Duration::from_millis((1u64 << attempt.min(6)) + jitter)).await;
}

/// The same delivery id again: a duplicate when the body is the same, otherwise 409.
fn replay(d: Delivery, body_hash: &str) -> Result<Accepted, ProcessError> {
    if d.body_hash == body_hash {
        Ok(Accepted { case_id: d.case_id, duplicate: true, echo: false })
    } else {
        Err(WireError::delivery_conflict(&d.id).into())
    }
}
