//! The decide-only floor: the month's inputs again, in the order the month decided them, through
//! parsing and `decide` alone, against the same states, timed; what the month would cost if the
//! store, the effects, the signatures and the metering were free.
//!
//! The month keeps each input it sent to the engine as it went (a webhook's route and body, a
//! timer as it fired). After the month, the floor replays them against states of its own: each
//! decision's snapshot becomes its stream's next state, its index entries locate appointments,
//! its SMS counts feed the next decision's ledger, and a delivery the engine saw twice is
//! decided again but not applied (the store refused it as a duplicate). Only `parse_event` and
//! each `decide` call are timed; finding the state and applying the decision are not. At the end
//! every state is compared with what the store holds, so the floor is known to have decided the
//! same inputs against the same states. Case views are reads and decide nothing: they are in the
//! month's time, not in the floor's.

use super::store::SimStore;
use chrono::{DateTime, NaiveDate, Utc};
use followup::domain::ctx::SmsLedger;
use followup::domain::effects::TimerSpec;
use followup::domain::events::Input;
use followup::domain::ids::SubjectId;
use followup::domain::policy::Policy;
use followup::domain::subjects::snapshot::{Snapshot, SubjectKey};
use followup::domain::{decide, Target};
use followup::ports::CaseStore;
use followup::wire::{self, Route};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// One input the month sent to the engine, at its instant.
pub(super) enum Decided {
    Webhook { at: DateTime<Utc>, route: Route, body: Box<[u8]> },
    Timer { at: DateTime<Utc>, spec: TimerSpec },
}

/// The floor's figures.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Floor {
    /// Parsing and deciding every input, in seconds.
    pub seconds: f64,
    pub inputs: u64,
    /// `decide` calls (an input whose SMS counts the ledger lacked is decided twice, as the engine does).
    pub decisions: u64,
    /// Streams whose state after the floor differs from the store's (0: the same states throughout).
    pub streams_differing: u64,
    pub streams: u64,
}

/// The states the floor decides against.
#[derive(Default)]
struct States {
    streams: HashMap<SubjectKey, Snapshot>,
    subjects: HashMap<String, SubjectKey>,
    sms_daily: HashMap<(String, NaiveDate), u32>,
    delivered: HashSet<String>,
}

/// Replays `inputs` through `decide` by `policy`, then checks each state against `store`.
pub(super) async fn measure(inputs: &[Decided], policy: &Policy, store: &SimStore) -> anyhow::Result<Floor> {
    let mut states = States::default();
    let (mut spent, mut decisions) = (Duration::ZERO, 0u64);
    for decided in inputs {
        let (input, at, delivery_id) = match decided {
            Decided::Webhook { at, route, body } => {
                let started = Instant::now();
                let parsed = wire::parse_event(*route, body, &policy.money.currency);
                spent += started.elapsed();
                let Ok(event) = parsed else { continue };
                let id = event.id.clone();
                (Input::Event(event), *at, id)
            }
            Decided::Timer { at, spec } => (Input::Timer(spec.timer.clone()), *at, format!("timer:{}", spec.timer.name())),
        };
        let key = match input.target() {
            Ok(Target::Key(key)) => Some(key),
            Ok(Target::Appointment(id)) => states.subjects.get(&SubjectId::Appointment(id).to_string()).cloned(),
            Err(_) => continue,
        };
        let state = key.as_ref().and_then(|k| states.streams.get(k));
        let day = policy.calendar.local_date(at);
        let mut ledger = SmsLedger { day: Some(day), counts: BTreeMap::new() };
        let decision = loop {
            let started = Instant::now();
            let decision = decide(state, &input, at, policy, &ledger);
            spent += started.elapsed();
            decisions += 1;
            match decision {
                Ok(d) if d.sms_unknown.is_empty() => break Some(d),
                Ok(d) => {
                    for phone in d.sms_unknown {
                        let held = states.sms_daily.get(&(phone.clone(), day)).copied().unwrap_or(0);
                        ledger.counts.insert(phone, held);
                    }
                }
                Err(_) => break None,
            }
        };
        if let Some(d) = decision {
            let key = d.snapshot.key.clone();
            let taken = d.index.iter().any(|s| states.subjects.get(s).is_some_and(|k| *k != key));
            if taken || !states.delivered.insert(delivery_id) {
                continue;
            }
            for subject in d.index {
                states.subjects.entry(subject).or_insert_with(|| key.clone());
            }
            for c in d.sms_counts {
                states.sms_daily.insert((c.phone, c.day), c.count);
            }
            states.streams.insert(key, d.snapshot);
        }
    }
    let mut differing = 0;
    for (key, snapshot) in &states.streams {
        differing += u64::from(store.load(key).await?.as_ref() != Some(snapshot));
    }
    Ok(Floor {
        seconds: spent.as_secs_f64(),
        inputs: inputs.len() as u64,
        decisions,
        streams_differing: differing,
        streams: states.streams.len() as u64,
    })
}
