//! A snapshot: one order or one package with its cases and subject timers, versioned as one unit of consistency.

use crate::domain::ctx::Ctx;
use crate::domain::effects::Sms;
pub use crate::domain::ids::SubjectKey;
use crate::domain::playbooks::{Case, CaseFlow, OnSubject, Playbook, SubjectEvent, SubjectOf};
use crate::domain::records::order::Order;
use crate::domain::records::package::Package;
pub use crate::domain::records::Subject;
pub use crate::domain::timers::{SubjectTimer, SubjectTimers};
use serde::{Deserialize, Serialize};

/// Everything one order or one package holds: the subject record, its cases and its subject
/// timers, committed as one conditional write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub key: SubjectKey,
    /// Optimistic-concurrency version: bumped once per committed decision.
    pub version: u64,
    /// Sequence behind case ids: `o1-…`, `o2-…` in opening order.
    pub seq: u32,
    pub subject: Subject,
    pub cases: Vec<Case>,
    /// The subject's own timers, with their step sequence (stored beside the cases).
    #[serde(flatten)]
    pub timers: SubjectTimers,
    /// SPEC §4 (v2) promotional SMS waiting for their allowed time, each with its subject timer's step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<HeldSms>,
}

/// A rendered SMS held until its `held_sms` subject timer (step `step`) fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldSms {
    pub step: u32,
    pub sms: Sms,
}

impl Snapshot {
    /// An order with nothing booked yet.
    pub fn order(order_id: &str) -> Self {
        Snapshot::of(
            SubjectKey::Order(order_id.into()),
            Subject::Order(Order { order_id: order_id.into(), appointments: Vec::new(), timeline: Vec::new() }),
        )
    }
    /// A package as booked.
    pub fn package(package: Package) -> Self {
        Snapshot::of(SubjectKey::Package(package.package_id.clone()), Subject::Package(package))
    }
    fn of(key: SubjectKey, subject: Subject) -> Self {
        Snapshot { key, version: 0, seq: 0, subject, cases: Vec::new(), timers: SubjectTimers::default(), held: Vec::new() }
    }
    pub fn as_order(&self) -> Option<&Order> {
        match &self.subject {
            Subject::Order(o) => Some(o),
            Subject::Package(_) => None,
        }
    }
    pub fn as_package(&self) -> Option<&Package> {
        match &self.subject {
            Subject::Package(p) => Some(p),
            Subject::Order(_) => None,
        }
    }
    pub fn as_order_mut(&mut self) -> Option<&mut Order> {
        match &mut self.subject {
            Subject::Order(o) => Some(o),
            Subject::Package(_) => None,
        }
    }
    pub fn as_package_mut(&mut self) -> Option<&mut Package> {
        match &mut self.subject {
            Subject::Package(p) => Some(p),
            Subject::Order(_) => None,
        }
    }
    pub fn case(&self, id: &str) -> Option<&Case> {
        self.cases.iter().find(|c| c.core.case_id == id)
    }
    pub fn case_index(&self, id: &str) -> Option<usize> {
        self.cases.iter().position(|c| c.core.case_id == id)
    }
    /// The earliest pending timer of the snapshot (its cases' and its subject's): what the store
    /// indexes it under, so the timer sweep finds every snapshot with an overdue timer.
    pub fn next_due(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let cases = self.cases.iter().flat_map(|c| c.timers.iter().map(|t| t.due_at));
        cases.chain(self.timers.iter().map(|t| t.timer.due_at)).min()
    }

    pub fn next_case_id(&mut self) -> String {
        self.seq += 1;
        self.key.case_id(self.seq)
    }

    /// Opens a case of playbook `P` about this snapshot's subject, and keeps it; returns its id.
    pub fn open<P: Playbook>(&mut self, opening: &P::Opening, ctx: &mut Ctx) -> String
    where
        CaseFlow: From<P::Flow>,
    {
        let case_id = self.next_case_id();
        let subject = P::Subject::of(&self.subject).unwrap_or_else(|| panic!("a {} case opened on a subject of another kind", P::NAME));
        let (core, flow) = P::open(case_id.clone(), subject, opening, ctx);
        self.cases.push(Case { core, flow: flow.into() });
        case_id
    }

    /// Tells the cases `which` selects what happened to their subject.
    pub fn tell(&mut self, which: impl Fn(&Case) -> bool, event: &SubjectEvent, ctx: &mut Ctx) {
        let Snapshot { subject, cases, .. } = self;
        for case in cases.iter_mut().filter(|c| which(c)) {
            case.visit(subject, OnSubject { event, ctx });
        }
    }
}
