//! Playbooks: one typed home each, behind the `Playbook` trait, listed once in `playbooks!`.
//!
//! A playbook sees its own case (`CaseCore`) and its own state (`Flow`), reads the subject its
//! cases are about (an order or a package), and changes nothing else: what it wants done to the
//! subject or to another playbook it asks for as an `Intent`, which the subject carries out
//! (`domain::order`, `domain::package`). Subjects open a playbook's cases and tell them what
//! happened to the subject (`SubjectEvent`). Adding a playbook is one new file here and one line
//! in `playbooks!` below.

pub mod appointment_watch;
pub mod attempts;
pub mod cancellation_follow_up;
pub mod interactions;
pub mod package_expiry;
pub mod package_payment;
pub mod reschedule_outreach;
pub mod round;
pub mod second_visit_follow_up;

use super::ctx::Ctx;
use super::events::{CallCompleted, Resolution};
pub use super::records::case::PlaybookName;
use super::records::case::{CaseCore, TicketResult, TimerKind};
use super::records::order::Order;
use super::records::package::Package;
use super::records::Subject;
use super::refusal::{Refusal, Rule};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// One playbook of SPEC §3: its state, and what it does on a call, a timer, a re-open and a
/// change of its subject. Every handler gets its own case and its own state, nothing else mutable.
pub trait Playbook {
    const NAME: PlaybookName;
    /// The playbook's own state and data, persisted beside the case core.
    type Flow: Debug + Clone + PartialEq + Serialize + DeserializeOwned;
    /// What its cases are about: an order (`Order`) or a package (`Package`).
    type Subject: SubjectOf;
    /// What opens a case besides its subject (an appointment id, a cancellation, a request).
    type Opening;

    /// Opens case `case_id` about `subject`: its core and its own state, with its first steps
    /// taken or placed. The subject checked that it applies and keeps the case.
    fn open(case_id: String, subject: &Self::Subject, opening: &Self::Opening, ctx: &mut Ctx) -> (CaseCore, Self::Flow);

    /// The state name the case view shows.
    fn state(flow: &Self::Flow) -> &'static str;

    /// Why a reported resolution kind is not one of this playbook's steps (refused with 422
    /// before anything changes), or `None` when it is.
    fn refuses(resolution: &Resolution) -> Option<&'static str> {
        matches!(resolution, Resolution::WillPay).then_some("a will_pay resolution applies to package_payment cases only")
    }

    /// Whether this reported call resolves the case (R9.1 v3): a late report, or one on a case
    /// already resolved or closed, acts only then; otherwise it is recorded and sends nothing.
    /// By default: answered and rebooked, or declined without a follow-up, on a case still open.
    fn resolves(case: &CaseCore, _flow: &Self::Flow, call: &CallCompleted) -> bool {
        case.ticket.is_open()
            && call.outcome.reached()
            && matches!(call.resolution, Some(Resolution::Rebooked { .. }) | Some(Resolution::Declined { follow_up: false, .. }))
    }

    /// What a late report that resolves nothing still tells the case (R9.1 v3): it sends nothing,
    /// but a fact it reports (R3.3's cost told) stays true. Nothing, by default.
    fn late_report(_case: &mut CaseCore, _flow: &mut Self::Flow, _call: &CallCompleted, _ctx: &mut Ctx) {}

    /// A `call.completed` on the case (already written on its timeline).
    fn on_call(
        case: &mut CaseCore,
        flow: &mut Self::Flow,
        call: &CallCompleted,
        subject: &Self::Subject,
        ctx: &mut Ctx,
    ) -> Result<(), Refusal>;

    /// One of the case's timers fired (a stale one never reaches here).
    fn on_timer(case: &mut CaseCore, flow: &mut Self::Flow, kind: TimerKind, subject: &Self::Subject, ctx: &mut Ctx);

    /// `case.reopen` (R2.10): only the follow-up playbooks take it.
    fn on_reopen(_case: &mut CaseCore, _flow: &mut Self::Flow, _subject: &Self::Subject, _ctx: &mut Ctx) -> Result<(), Refusal> {
        Err(Refusal::rule(
            Rule::R2_10,
            format!("a {} case cannot be re-opened; only follow-up tickets can (R2.10, R3.9)", Self::NAME),
            Some("data.case_id"),
        ))
    }

    /// Something happened to the subject that the case may have to follow.
    fn on_subject(_case: &mut CaseCore, _flow: &mut Self::Flow, _event: &SubjectEvent, _subject: &Self::Subject, _ctx: &mut Ctx) {}
}

/// What happened to a case's subject, told to the cases it concerns.
#[derive(Debug, Clone, PartialEq)]
pub enum SubjectEvent {
    /// R0.3 a technician was assigned to the appointment.
    Assigned,
    /// The appointment was cancelled or completed (R0.3), with the result its open cases close with.
    AppointmentEnded(TicketResult),
    /// R7 the appointment moved to a new window by other means than this case.
    Moved { window_start: DateTime<Utc> },
    /// A visit of the order was booked (R3.5 v2 resolves a rebooked second-visit case).
    VisitBooked { appointment_id: String },
    /// R3.8 a visit of the order was replaced by a new one: its pending cases close.
    VisitReplaced { appointment_id: String },
    /// R2.2 a newer cancellation follow-up of the order opened: this one is its duplicate.
    Superseded { by: String },
    /// R1.1 the customer asked again to reschedule while the outreach is open: the new link.
    RequestedAgain { reason: String, stf_link: String },
    /// R4.6 the package was paid.
    PackagePaid,
    /// The customer cancelled the package.
    PackageCancelled,
    /// R5.4 the grace period ended and the package was deactivated.
    PackageDeactivated,
}

/// The subject record a playbook's cases are about.
pub trait SubjectOf: Sized {
    fn of(subject: &Subject) -> Option<&Self>;
}

impl SubjectOf for Order {
    fn of(subject: &Subject) -> Option<&Order> {
        match subject {
            Subject::Order(o) => Some(o),
            Subject::Package(_) => None,
        }
    }
}

impl SubjectOf for Package {
    fn of(subject: &Subject) -> Option<&Package> {
        match subject {
            Subject::Package(p) => Some(p),
            Subject::Order(_) => None,
        }
    }
}

/// Something done to one case by its own playbook, whichever it is.
pub trait Visitor {
    type Out;
    fn visit<P: Playbook>(self, case: &mut CaseCore, flow: &mut P::Flow, subject: &P::Subject) -> Self::Out;
}

/// Lists every playbook once: its contract name, its variant and its type. Generates
/// `PlaybookName`, the persisted `CaseFlow` and the one `match` that hands a case to its playbook.
macro_rules! playbooks {
    ($($variant:ident = $name:literal => $($ty:ident)::+),+ $(,)?) => {
        /// A case's playbook with its own state, tagged with the playbook's contract name.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "playbook")]
        pub enum CaseFlow {
            $(#[serde(rename = $name)] $variant(<$($ty)::+ as Playbook>::Flow)),+
        }

        $(impl From<<$($ty)::+ as Playbook>::Flow> for CaseFlow {
            fn from(flow: <$($ty)::+ as Playbook>::Flow) -> CaseFlow {
                CaseFlow::$variant(flow)
            }
        })+

        // The contract names are `PlaybookName`'s (one list in `case.rs`).
        #[cfg(test)]
        #[test]
        fn every_playbook_is_listed_once_under_its_contract_name() {
            let listed = [$(PlaybookName::$variant.as_str()),+];
            assert_eq!(listed, [$($name),+]);
            assert_eq!(PlaybookName::ALL.len(), listed.len());
            $(assert_eq!(<$($ty)::+ as Playbook>::NAME, PlaybookName::$variant);)+
        }

        impl Case {
            pub fn playbook(&self) -> PlaybookName {
                match &self.flow { $(CaseFlow::$variant(_) => PlaybookName::$variant),+ }
            }
            pub fn state(&self) -> &'static str {
                match &self.flow { $(CaseFlow::$variant(f) => <$($ty)::+ as Playbook>::state(f)),+ }
            }
            /// Hands the case, its state and its subject to its playbook.
            pub fn visit<V: Visitor>(&mut self, subject: &Subject, v: V) -> V::Out {
                match &mut self.flow {
                    $(CaseFlow::$variant(f) => v.visit::<$($ty)::+>(&mut self.core, f, of(subject, PlaybookName::$variant)),)+
                }
            }
        }
    };
}

playbooks! {
    AppointmentWatch = "appointment_watch" => appointment_watch::AppointmentWatch,
    RescheduleOutreach = "reschedule_outreach" => reschedule_outreach::RescheduleOutreach,
    CancellationFollowUp = "cancellation_follow_up" => cancellation_follow_up::CancellationFollowUp,
    SecondVisitFollowUp = "second_visit_follow_up" => second_visit_follow_up::SecondVisitFollowUp,
    PackagePayment = "package_payment" => package_payment::PackagePayment,
    PackageExpiry = "package_expiry" => package_expiry::PackageExpiry,
}

/// A case is opened by the subject it is about and lives in that subject's snapshot, so its
/// playbook's subject kind always matches; a mismatch is a corrupt snapshot.
fn of<S: SubjectOf>(subject: &Subject, playbook: PlaybookName) -> &S {
    match S::of(subject) {
        Some(s) => s,
        None => panic!("corrupt snapshot: a {playbook} case is stored with a subject of another kind"),
    }
}

/// A case: what every case has, paired with its playbook's own state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub core: CaseCore,
    pub flow: CaseFlow,
}

impl std::ops::Deref for Case {
    type Target = CaseCore;
    fn deref(&self) -> &CaseCore {
        &self.core
    }
}

impl std::ops::DerefMut for Case {
    fn deref_mut(&mut self) -> &mut CaseCore {
        &mut self.core
    }
}

/// Tells one case what happened to its subject.
pub struct OnSubject<'e, 'c, 'p> {
    pub event: &'e SubjectEvent,
    pub ctx: &'c mut Ctx<'p>,
}

impl Visitor for OnSubject<'_, '_, '_> {
    type Out = ();
    fn visit<P: Playbook>(self, case: &mut CaseCore, flow: &mut P::Flow, subject: &P::Subject) {
        P::on_subject(case, flow, self.event, subject, self.ctx);
    }
}
