//! The adapter contract: what every CaseStore / Timers / SmsSender / CommandBus must do.
//!
//! Included (`#[path]`) by the suite of each implementation: `store_contract.rs` (SQLite)
//! and `aws_contract.rs` (DynamoDB / Scheduler / SNS on the local emulator). The
//! `contract_*` functions are generic and only see the ports plus `Probe`, the read-back
//! an implementation offers its tests.
#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use followup::domain::commands::{CallCustomer, Command, CommandBody};
use followup::domain::ctx::SmsCount;
use followup::domain::effects::{Effect, Sms, TimerRef, TimerSpec};
use followup::domain::events::PaymentMethod;
use followup::domain::money::Money;
use followup::domain::playbooks::{appointment_watch, Case, CaseFlow, PlaybookName};
use followup::domain::records::case::{CaseCore, Customer, Group, PendingTimer, Priority, SubjectIds, Ticket, TicketKind};
use followup::domain::records::case::{Language, TimerKind};
use followup::domain::records::package::{Package, PackageStatus, VisitState};
use followup::domain::sms::TemplateId;
use followup::domain::subjects::snapshot::{Snapshot, SubjectKey};
use followup::ports::{CaseStore, CommandBus, Commit, CommitError, Delivery, PendingEffect, SmsSender, Timers};
use std::collections::BTreeMap;
use std::future::Future;

/// An SMS as the customer's phone receives it: what every SMS adapter can be read back as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub to: String,
    pub body: String,
}

pub fn delivered(sms: &Sms) -> Delivered {
    Delivered { to: sms.to.clone(), body: sms.body.clone() }
}

/// How a test reads back what the write-only ports did.
pub trait Probe {
    /// Every pending timer, in firing order.
    fn all_timers(&self) -> impl Future<Output = Vec<TimerSpec>> + Send;
    /// Every SMS sent, in send order, as the phone receives it.
    fn sent_sms(&self) -> impl Future<Output = Vec<Delivered>> + Send;
    /// Every command published, in emit order.
    fn published(&self) -> impl Future<Output = Vec<Command>> + Send;
}

pub trait Contract: CaseStore + Timers + SmsSender + CommandBus + Probe {}
impl<S: CaseStore + Timers + SmsSender + CommandBus + Probe> Contract for S {}

// ---- given ----------------------------------------------------------------

pub fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0).unwrap()
}

pub fn order(id: &str) -> SubjectKey {
    SubjectKey::Order(id.into())
}

/// A snapshot as a decision leaves it at `version`: an empty order, or a one-visit package.
pub fn stream_at(key: &SubjectKey, version: u64) -> Snapshot {
    let mut s = match key {
        SubjectKey::Order(order_id) => Snapshot::order(order_id),
        // From JSON: what the record adds later with a default (R9.2's visit changes) needs no mention here.
        SubjectKey::Package(package_id) => Snapshot::package(
            serde_json::from_value::<Package>(serde_json::json!({
                "package_id": package_id,
                "customer": customer(),
                "area": "Cairo",
                "price": Money::new(100_000, "EGP"),
                "visits": [{"visit_id": "V1", "window_start": at(10, 0), "state": VisitState::Scheduled}],
                "start_date": at(10, 0).date_naive(),
                "payment_method": PaymentMethod::Card,
                "paid": true,
                "status": PackageStatus::Active,
            }))
            .expect("a one-visit package"),
        ),
    };
    s.version = version;
    s.seq = version as u32;
    s
}

pub fn delivery(id: &str) -> Delivery {
    Delivery { id: id.into(), body_hash: format!("hash-of-{id}"), case_id: Some("o1-O1".into()), accepted_at: at(9, 0) }
}

pub fn call_customer(case_id: &str) -> Command {
    let task = CallCustomer {
        subject: SubjectIds { order_id: Some("O1".into()), ..SubjectIds::default() },
        phone: "+201001234567".into(),
        ..CallCustomer::default()
    };
    Command { body: CommandBody::CallCustomer(task), case_id: Some(case_id.into()), at: at(9, 0) }
}

pub fn sms(body: &str) -> Sms {
    Sms {
        to: "+201001234567".into(),
        template: TemplateId::Sms1,
        language: Language::Ar,
        body: body.into(),
        segments: 1,
        case_id: Some("o1-O1".into()),
        at: at(9, 0),
    }
}

/// A commit's effects, named as the engine names them: `<delivery id>#<n>`.
pub fn effects(delivery_id: &str, effects: Vec<Effect>) -> Vec<PendingEffect> {
    effects.into_iter().enumerate().map(|(n, effect)| PendingEffect { id: format!("{delivery_id}#{n}"), effect }).collect()
}

/// A commit of `stream` (already at its new version) on top of `expected`.
pub fn commit(stream: Snapshot, expected: Option<u64>, delivery_id: &str, index: &[&str], fx: Vec<Effect>) -> Commit {
    let effects = effects(delivery_id, fx);
    Commit {
        stream,
        expected_version: expected,
        delivery: delivery(delivery_id),
        index: index.iter().map(|s| s.to_string()).collect(),
        effects,
        sms_counts: Vec::new(),
        received: None,
    }
}

/// SPEC §4 (v3) a number's daily count as a decision moves it: from `held` to `count`.
pub fn sms_count(phone: &str, day: NaiveDate, held: u32, count: u32) -> SmsCount {
    SmsCount { phone: phone.into(), day, held, count }
}

/// `commit` with the daily SMS counts it moves.
pub fn counting(mut c: Commit, counts: Vec<SmsCount>) -> Commit {
    c.sms_counts = counts;
    c
}

pub fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
}

pub fn counts(entries: &[(&str, u32)]) -> BTreeMap<String, u32> {
    entries.iter().map(|(phone, n)| (phone.to_string(), *n)).collect()
}

/// Two customers' numbers and one never sent to.
pub const MONA: &str = "+201001234567";
pub const KARIM: &str = "+201009876543";
pub const NOBODY: &str = "+201000000000";

pub fn timer(stream: &str, case_id: &str, kind: TimerKind, step: u32, due_at: DateTime<Utc>) -> TimerSpec {
    TimerSpec {
        timer: TimerRef { stream: order(stream), case_id: Some(case_id.into()), kind, step },
        due_at,
        playbook: Some(PlaybookName::CancellationFollowUp),
    }
}

pub fn ids(effects: &[PendingEffect]) -> Vec<&str> {
    effects.iter().map(|e| e.id.as_str()).collect()
}

// ---- the contract ---------------------------------------------------------

pub async fn contract_commit_then_load_round_trips<S: Contract>(s: &S) {
    let key = order("O1");
    assert_eq!(s.load(&key).await.expect("load"), None);

    let mut stream = stream_at(&key, 1);
    stream.seq = 7;
    s.commit(commit(stream.clone(), None, "d1", &[], vec![])).await.expect("first commit");
    assert_eq!(s.load(&key).await.expect("load"), Some(stream.clone()));
    assert_eq!(s.delivery("d1").await.expect("delivery"), Some(delivery("d1")));
    assert_eq!(s.delivery("d-unknown").await.expect("delivery"), None);

    let next = stream_at(&key, 2);
    s.commit(commit(next.clone(), Some(1), "d2", &[], vec![])).await.expect("second commit");
    assert_eq!(s.load(&key).await.expect("load"), Some(next));
    assert_eq!(s.load(&order("O2")).await.expect("load"), None);
}

pub async fn contract_stale_version_conflicts_and_writes_nothing<S: Contract>(s: &S) {
    let key = order("O1");
    let v1 = stream_at(&key, 1);
    s.commit(commit(v1.clone(), None, "d1", &["appointment:A1"], vec![Effect::Emit(call_customer("o1-O1"))])).await.expect("commit");
    let before = s.pending_effects(100).await.expect("pending");

    let mut stale = stream_at(&key, 3);
    stale.seq = 99;
    let outcome = s.commit(commit(stale, Some(2), "d2", &["appointment:A2"], vec![Effect::SendSms(sms("stale"))])).await;
    assert!(matches!(outcome, Err(CommitError::Conflict)), "{outcome:?}");

    assert_eq!(s.load(&key).await.expect("load"), Some(v1));
    assert_eq!(s.delivery("d2").await.expect("delivery"), None);
    assert_eq!(s.locate("appointment:A2").await.expect("locate"), None);
    assert_eq!(s.pending_effects(100).await.expect("pending"), before);
}

pub async fn contract_creating_an_existing_stream_conflicts<S: Contract>(s: &S) {
    let key = order("O1");
    let v1 = stream_at(&key, 1);
    s.commit(commit(v1.clone(), None, "d1", &[], vec![])).await.expect("commit");

    let outcome = s.commit(commit(stream_at(&key, 1), None, "d2", &[], vec![Effect::Emit(call_customer("o1-O1"))])).await;
    assert!(matches!(outcome, Err(CommitError::Conflict)), "{outcome:?}");
    assert_eq!(s.load(&key).await.expect("load"), Some(v1));
    assert_eq!(s.delivery("d2").await.expect("delivery"), None);
    assert!(s.pending_effects(100).await.expect("pending").is_empty());

    // Expecting a version of a stream that does not exist is just as stale.
    let outcome = s.commit(commit(stream_at(&order("O2"), 2), Some(1), "d3", &[], vec![])).await;
    assert!(matches!(outcome, Err(CommitError::Conflict)), "{outcome:?}");
    assert_eq!(s.load(&order("O2")).await.expect("load"), None);
}

pub async fn contract_concurrent_commits_on_one_version_let_exactly_one_win<S: Contract>(s: &S) {
    let key = order("O1");
    s.commit(commit(stream_at(&key, 1), None, "d1", &[], vec![])).await.expect("commit");

    let mut a = stream_at(&key, 2);
    a.seq = 20;
    let mut b = stream_at(&key, 2);
    b.seq = 30;
    let (ra, rb) =
        tokio::join!(s.commit(commit(a.clone(), Some(1), "da", &[], vec![])), s.commit(commit(b.clone(), Some(1), "db", &[], vec![])));
    let stored = s.load(&key).await.expect("load");
    match (ra, rb) {
        (Ok(()), Err(CommitError::Conflict)) => {
            assert_eq!(stored, Some(a));
            assert_eq!(s.delivery("db").await.expect("delivery"), None);
        }
        (Err(CommitError::Conflict), Ok(())) => {
            assert_eq!(stored, Some(b));
            assert_eq!(s.delivery("da").await.expect("delivery"), None);
        }
        other => panic!("exactly one commit must win: {other:?}"),
    }
}

pub async fn contract_duplicate_delivery_returns_the_first_record_and_writes_nothing<S: Contract>(s: &S) {
    let key = order("O1");
    let v1 = stream_at(&key, 1);
    s.commit(commit(v1.clone(), None, "d1", &["appointment:A1"], vec![Effect::Emit(call_customer("o1-O1"))])).await.expect("commit");
    let before = s.pending_effects(100).await.expect("pending");

    // The same id again, even with a different body and a version that would otherwise fit.
    let mut again = commit(stream_at(&key, 2), Some(1), "d1", &["appointment:A9"], vec![Effect::SendSms(sms("again"))]);
    again.delivery.body_hash = "another-body".into();
    again.delivery.accepted_at = at(10, 0);
    match s.commit(again).await {
        Err(CommitError::DuplicateDelivery(first)) => assert_eq!(first, delivery("d1")),
        other => panic!("expected DuplicateDelivery, got {other:?}"),
    }
    assert_eq!(s.load(&key).await.expect("load"), Some(v1));
    assert_eq!(s.delivery("d1").await.expect("delivery"), Some(delivery("d1")));
    assert_eq!(s.locate("appointment:A9").await.expect("locate"), None);
    assert_eq!(s.pending_effects(100).await.expect("pending"), before);
}

pub async fn contract_pending_effects_come_in_commit_order_until_done<S: Contract>(s: &S) {
    let key = order("O1");
    let v1 = stream_at(&key, 1);
    let first = vec![Effect::SendSms(sms("one")), Effect::Emit(call_customer("o1-O1"))];
    s.commit(commit(v1, None, "d1", &[], first.clone())).await.expect("commit 1");
    let place = Effect::PlaceTimer(timer("O1", "o1-O1", TimerKind::CallAttempt, 1, at(11, 0)));
    s.commit(commit(stream_at(&key, 2), Some(1), "d2", &[], vec![place.clone()])).await.expect("commit 2");

    let pending = s.pending_effects(100).await.expect("pending");
    assert_eq!(ids(&pending), ["d1#0", "d1#1", "d2#0"]);
    assert_eq!(pending.iter().map(|p| p.effect.clone()).collect::<Vec<_>>(), [first, vec![place]].concat());
    assert_eq!(ids(&s.pending_effects(2).await.expect("pending")), ["d1#0", "d1#1"]);

    s.effect_done("d1#1").await.expect("done");
    assert_eq!(ids(&s.pending_effects(100).await.expect("pending")), ["d1#0", "d2#0"]);
    s.effect_done("d1#0").await.expect("done");
    s.effect_done("d2#0").await.expect("done");
    s.effect_done("d2#0").await.expect("marking done twice is harmless");
    assert!(s.pending_effects(100).await.expect("pending").is_empty());
}

pub async fn contract_effects_are_marked_done_together_or_one_by_one<S: Contract>(s: &S) {
    let key = order("O1");
    let three = vec![
        Effect::SendSms(sms("one")),
        Effect::Emit(call_customer("o1-O1")),
        Effect::PlaceTimer(timer("O1", "o1-O1", TimerKind::CallAttempt, 1, at(11, 0))),
    ];
    s.commit(commit(stream_at(&key, 1), None, "d1", &[], three)).await.expect("commit 1");
    s.commit(commit(stream_at(&key, 2), Some(1), "d2", &[], vec![Effect::SendSms(sms("two"))])).await.expect("commit 2");

    // Part of a commit, then the rest: the record leaves the queue with its last effect.
    s.effects_done(&["d1#0", "d1#2"]).await.expect("done");
    assert_eq!(ids(&s.pending_effects(100).await.expect("pending")), ["d1#1", "d2#0"]);
    s.effects_done(&["d1#1", "d1#1"]).await.expect("done, named twice");
    assert_eq!(ids(&s.pending_effects(100).await.expect("pending")), ["d2#0"]);
    // A whole commit at once, with ids this store never held beside it.
    s.effects_done(&["d2#0", "d9#0", "no-hash"]).await.expect("done");
    assert!(s.pending_effects(100).await.expect("pending").is_empty());
    assert_eq!(s.delivery("d1").await.expect("delivery"), Some(delivery("d1")), "the delivery record outlives its effects");
}

pub async fn contract_locate_follows_the_index<S: Contract>(s: &S) {
    assert_eq!(s.locate("appointment:A1").await.expect("locate"), None);
    let key = order("O1");
    s.commit(commit(stream_at(&key, 1), None, "d1", &["appointment:A1", "order:O1"], vec![])).await.expect("commit");
    assert_eq!(s.locate("appointment:A1").await.expect("locate"), Some(key.clone()));
    assert_eq!(s.locate("order:O1").await.expect("locate"), Some(key.clone()));

    // A later commit may add subjects; the earlier ones still answer.
    s.commit(commit(stream_at(&key, 2), Some(1), "d2", &["appointment:A2"], vec![])).await.expect("commit");
    assert_eq!(s.locate("appointment:A1").await.expect("locate"), Some(key.clone()));
    assert_eq!(s.locate("appointment:A2").await.expect("locate"), Some(key));
    assert_eq!(s.locate("appointment:A3").await.expect("locate"), None);
}

pub async fn contract_a_subject_belongs_to_one_stream<S: Contract>(s: &S) {
    let (o1, o2) = (order("O1"), order("O2"));
    s.commit(commit(stream_at(&o1, 1), None, "d1", &["appointment:A1"], vec![])).await.expect("commit");
    let taken = s.commit(commit(stream_at(&o2, 1), None, "d2", &["appointment:A1"], vec![Effect::Emit(call_customer("o1-O2"))])).await;
    assert!(matches!(taken, Err(CommitError::SubjectTaken(ref subject)) if subject == "appointment:A1"), "{taken:?}");
    assert_eq!(s.load(&o2).await.expect("load"), None, "nothing of the refused commit is written");
    assert_eq!(s.delivery("d2").await.expect("delivery"), None);
    assert!(s.pending_effects(10).await.expect("pending").is_empty());
    assert_eq!(s.locate("appointment:A1").await.expect("locate"), Some(o1.clone()));
    // The stream that holds it may name it again.
    s.commit(commit(stream_at(&o1, 2), Some(1), "d3", &["appointment:A1"], vec![])).await.expect("commit");
}

/// An order snapshot at `version` whose one case waits on a timer due at `due`.
fn waiting_on(key: &SubjectKey, version: u64, due: Option<DateTime<Utc>>) -> Snapshot {
    let mut snapshot = stream_at(key, version);
    if let Some(due_at) = due {
        let ticket = Ticket::open(TicketKind::Watch, Priority::Low, Group::Ops, "Cairo");
        let mut core = CaseCore::open(key.case_id(1), customer(), ticket, at(9, 0));
        core.timers.push(PendingTimer { kind: TimerKind::CallAttempt, due_at, step: 1 });
        let flow = CaseFlow::AppointmentWatch(appointment_watch::Flow { state: appointment_watch::State::Watching });
        snapshot.cases.push(Case { core, flow });
    }
    snapshot
}

fn customer() -> Customer {
    Customer { id: "C1".into(), name: "Mona".into(), phone: "+201001234567".into(), language: Language::Ar }
}

pub async fn contract_overdue_lists_snapshots_by_their_earliest_timer<S: Contract>(s: &S) {
    let (o1, o2, o3) = (order("O1"), order("O2"), order("O3"));
    s.commit(commit(waiting_on(&o1, 1, Some(at(11, 0))), None, "d1", &[], vec![])).await.expect("commit");
    s.commit(commit(waiting_on(&o2, 1, Some(at(10, 0))), None, "d2", &[], vec![])).await.expect("commit");
    s.commit(commit(waiting_on(&o3, 1, None), None, "d3", &[], vec![])).await.expect("commit");
    assert!(s.overdue(at(9, 59), 10).await.expect("overdue").is_empty());
    assert_eq!(s.overdue(at(10, 0), 10).await.expect("overdue"), vec![o2.clone()], "due at the cutoff counts");
    let mut both = s.overdue(at(12, 0), 10).await.expect("overdue");
    both.sort();
    assert_eq!(both, vec![o1.clone(), o2.clone()], "a snapshot without timers is not indexed");
    // The next commit of a snapshot moves it: no timers left, out of the index.
    s.commit(commit(waiting_on(&o2, 2, None), Some(1), "d4", &[], vec![])).await.expect("commit");
    assert_eq!(s.overdue(at(12, 0), 10).await.expect("overdue"), vec![o1]);
}

pub async fn contract_subjects_with_prefix_lists_only_that_prefix<S: Contract>(s: &S) {
    let prefix = "expiry:2026-04-09:";
    assert!(s.subjects_with_prefix(prefix).await.expect("prefix").is_empty());
    let (p1, p2, p3) = (SubjectKey::Package("P1".into()), SubjectKey::Package("P2".into()), SubjectKey::Package("P3".into()));
    s.commit(commit(stream_at(&p2, 1), None, "d1", &["expiry:2026-04-09:P2", "expiry:2026-04-23:P2"], vec![])).await.expect("commit");
    s.commit(commit(stream_at(&p1, 1), None, "d2", &["expiry:2026-04-09:P1"], vec![])).await.expect("commit");
    // Neighbours on either side of the range, and a subject that merely contains the prefix.
    s.commit(commit(stream_at(&p3, 1), None, "d3", &["expiry:2026-04-08:P3", "expiry:2026-04-10:P3", "x-expiry:2026-04-09:P3"], vec![]))
        .await
        .expect("commit");
    s.commit(commit(stream_at(&order("O1"), 1), None, "d4", &["appointment:A1"], vec![])).await.expect("commit");

    let found = s.subjects_with_prefix(prefix).await.expect("prefix");
    assert_eq!(found, vec![("expiry:2026-04-09:P1".to_string(), p1), ("expiry:2026-04-09:P2".to_string(), p2.clone())]);
    assert_eq!(s.subjects_with_prefix("expiry:2026-04-23:").await.expect("prefix"), vec![("expiry:2026-04-23:P2".to_string(), p2)]);
    assert!(s.subjects_with_prefix("expiry:2026-05-01:").await.expect("prefix").is_empty());
}

/// SPEC §4 (v3) the daily count is per number and local day, whichever stream's decision sent:
/// a read returns what commits wrote for that (number, day) and nothing for another day or number.
pub async fn contract_sms_counts_return_what_commits_wrote_per_number_and_day<S: Contract>(s: &S) {
    let everyone = [MONA.to_string(), KARIM.to_string(), NOBODY.to_string()];
    assert_eq!(s.sms_counts(&everyone, day(1)).await.expect("counts"), counts(&[]), "no SMS yet: every number absent");

    let (o1, p1) = (order("O1"), SubjectKey::Package("P1".into()));
    let first =
        counting(commit(stream_at(&o1, 1), None, "d1", &[], vec![]), vec![sms_count(MONA, day(1), 0, 1), sms_count(KARIM, day(1), 0, 2)]);
    s.commit(first).await.expect("commit on an order");
    // Another stream (a package of the same customer) counts on from what the order's commit left.
    s.commit(counting(commit(stream_at(&p1, 1), None, "d2", &[], vec![]), vec![sms_count(MONA, day(1), 1, 3)]))
        .await
        .expect("commit on a package");
    // The next local day starts from none.
    s.commit(counting(commit(stream_at(&o1, 2), Some(1), "d3", &[], vec![]), vec![sms_count(MONA, day(2), 0, 1)]))
        .await
        .expect("commit the next day");

    assert_eq!(s.sms_counts(&everyone, day(1)).await.expect("counts"), counts(&[(MONA, 3), (KARIM, 2)]));
    assert_eq!(s.sms_counts(&everyone, day(2)).await.expect("counts"), counts(&[(MONA, 1)]));
    assert_eq!(s.sms_counts(&everyone, day(3)).await.expect("counts"), counts(&[]));
    assert_eq!(s.sms_counts(&[KARIM.to_string()], day(1)).await.expect("counts"), counts(&[(KARIM, 2)]), "only the numbers asked about");
    assert_eq!(s.sms_counts(&[], day(1)).await.expect("counts"), counts(&[]));
}

/// SPEC §4 (v3) a count the store no longer holds as the decision read it refuses the whole commit
/// as a `Conflict` (the engine reads again and decides again): no snapshot, delivery, index,
/// effect or count of it is written.
pub async fn contract_a_stale_sms_count_conflicts_and_writes_nothing<S: Contract>(s: &S) {
    let key = order("O1");
    let v1 = stream_at(&key, 1);
    let first = commit(v1.clone(), None, "d1", &["appointment:A1"], vec![Effect::SendSms(sms("one"))]);
    s.commit(counting(first, vec![sms_count(MONA, day(1), 0, 1)])).await.expect("commit");
    let before = s.pending_effects(100).await.expect("pending");
    let both = [MONA.to_string(), KARIM.to_string()];

    // The stream's version fits; one count does not: none yet when there is one, one more than
    // held, and one held of a number that has none (absent counts as 0).
    let stale = [
        vec![sms_count(KARIM, day(1), 0, 1), sms_count(MONA, day(1), 0, 1)],
        vec![sms_count(MONA, day(1), 2, 3)],
        vec![sms_count(MONA, day(1), 1, 2), sms_count(KARIM, day(1), 1, 2)],
    ];
    for (i, moved) in stale.into_iter().enumerate() {
        let mut next = stream_at(&key, 2);
        next.seq = 99;
        let c = commit(next, Some(1), "d2", &["appointment:A2"], vec![Effect::SendSms(sms("stale")), Effect::Emit(call_customer("o1-O1"))]);
        let outcome = s.commit(counting(c, moved)).await;
        assert!(matches!(outcome, Err(CommitError::Conflict)), "stale count {i}: {outcome:?}");
        assert_eq!(s.load(&key).await.expect("load"), Some(v1.clone()), "stale count {i}");
        assert_eq!(s.delivery("d2").await.expect("delivery"), None, "stale count {i}");
        assert_eq!(s.locate("appointment:A2").await.expect("locate"), None, "stale count {i}");
        assert_eq!(s.pending_effects(100).await.expect("pending"), before, "stale count {i}");
        assert_eq!(s.sms_counts(&both, day(1)).await.expect("counts"), counts(&[(MONA, 1)]), "stale count {i}");
    }

    // Decided again with what the store holds, it lands.
    let again = commit(stream_at(&key, 2), Some(1), "d2", &["appointment:A2"], vec![Effect::SendSms(sms("again"))]);
    s.commit(counting(again, vec![sms_count(MONA, day(1), 1, 2), sms_count(KARIM, day(1), 0, 1)])).await.expect("commit");
    assert_eq!(s.sms_counts(&both, day(1)).await.expect("counts"), counts(&[(MONA, 2), (KARIM, 1)]));
}

/// SPEC §4 (v3) two decisions on different streams (an order and a package of one customer)
/// sending to one number from the same count: exactly one commits, so both cannot pass the cap.
pub async fn contract_concurrent_commits_on_one_sms_count_let_exactly_one_win<S: Contract>(s: &S) {
    let (o1, p1) = (order("O1"), SubjectKey::Package("P1".into()));
    s.commit(counting(commit(stream_at(&o1, 1), None, "d0", &[], vec![]), vec![sms_count(MONA, day(1), 0, 4)])).await.expect("commit");

    let a = counting(commit(stream_at(&o1, 2), Some(1), "da", &[], vec![Effect::SendSms(sms("a"))]), vec![sms_count(MONA, day(1), 4, 5)]);
    let b = counting(commit(stream_at(&p1, 1), None, "db", &[], vec![Effect::SendSms(sms("b"))]), vec![sms_count(MONA, day(1), 4, 5)]);
    let (ra, rb) = tokio::join!(s.commit(a), s.commit(b));
    let loser = match (ra, rb) {
        (Ok(()), Err(CommitError::Conflict)) => {
            assert_eq!(s.load(&p1).await.expect("load"), None);
            "db"
        }
        (Err(CommitError::Conflict), Ok(())) => {
            assert_eq!(s.load(&o1).await.expect("load").map(|s| s.version), Some(1));
            "da"
        }
        other => panic!("exactly one commit must win: {other:?}"),
    };
    assert_eq!(s.delivery(loser).await.expect("delivery"), None);
    assert_eq!(s.sms_counts(&[MONA.to_string()], day(1)).await.expect("counts"), counts(&[(MONA, 5)]));
    assert_eq!(s.pending_effects(100).await.expect("pending").len(), 1, "only the winner's SMS is pending");
}

pub async fn contract_timers_place_once_and_cancel_quietly<S: Contract>(s: &S) {
    let t = timer("O1", "o1-O1", TimerKind::CallAttempt, 1, at(11, 0));
    s.place(&t).await.expect("place");
    s.place(&t).await.expect("placing the same timer again is a no-op");
    // Same name (stream, case, kind, step): the first placement stands.
    s.place(&TimerSpec { due_at: at(12, 0), ..t.clone() }).await.expect("place again");
    assert_eq!(s.all_timers().await, std::slice::from_ref(&t));

    let never = timer("O1", "o1-O1", TimerKind::AutoClose, 4, at(11, 0));
    s.cancel(&never.timer).await.expect("cancelling an absent timer is fine");
    assert_eq!(s.all_timers().await, std::slice::from_ref(&t));

    s.cancel(&t.timer).await.expect("cancel");
    assert!(s.all_timers().await.is_empty());
    s.cancel(&t.timer).await.expect("cancelling twice is fine");
}

pub async fn contract_timers_fire_by_due_time_then_placement<S: Contract>(s: &S) {
    let late = timer("O1", "o1-O1", TimerKind::AutoClose, 1, at(12, 0));
    let tie_first = timer("O2", "o1-O2", TimerKind::CallAttempt, 1, at(11, 0));
    let tie_second = timer("O1", "o1-O1", TimerKind::CallAttempt, 2, at(11, 0));
    let early = timer("O3", "o1-O3", TimerKind::StatusUpdate, 1, at(10, 0));
    for t in [&late, &tie_first, &tie_second, &early] {
        s.place(t).await.expect("place");
    }
    assert_eq!(s.all_timers().await, [early, tie_first, tie_second, late]);
}

pub async fn contract_outboxes_drop_a_repeated_effect<S: Contract>(s: &S) {
    s.send("d1#0", &sms("first")).await.expect("send");
    s.send("d1#0", &sms("first, re-driven")).await.expect("re-send");
    s.send("d2#0", &sms("second")).await.expect("send");
    assert_eq!(s.sent_sms().await, [delivered(&sms("first")), delivered(&sms("second"))]);

    let (c1, c2) = (call_customer("o1-O1"), call_customer("o2-O1"));
    s.publish("d1#1", &c1).await.expect("publish");
    s.publish("d1#1", &c1).await.expect("re-publish");
    s.publish("d3#0", &c2).await.expect("publish");
    assert_eq!(s.published().await, [c1, c2]);
}

/// Calls `$runner!` with every `contract_*` function above (and any implementation-specific
/// ones after it), so every implementation runs the same list.
macro_rules! every_contract {
    ($runner:ident $(, $extra:ident)* $(,)?) => {
        $runner!(
            contract_commit_then_load_round_trips,
            contract_stale_version_conflicts_and_writes_nothing,
            contract_creating_an_existing_stream_conflicts,
            contract_concurrent_commits_on_one_version_let_exactly_one_win,
            contract_duplicate_delivery_returns_the_first_record_and_writes_nothing,
            contract_pending_effects_come_in_commit_order_until_done,
            contract_effects_are_marked_done_together_or_one_by_one,
            contract_locate_follows_the_index,
            contract_a_subject_belongs_to_one_stream,
            contract_sms_counts_return_what_commits_wrote_per_number_and_day,
            contract_a_stale_sms_count_conflicts_and_writes_nothing,
            contract_concurrent_commits_on_one_sms_count_let_exactly_one_win,
            contract_subjects_with_prefix_lists_only_that_prefix,
            contract_overdue_lists_snapshots_by_their_earliest_timer,
            contract_timers_place_once_and_cancel_quietly,
            contract_timers_fire_by_due_time_then_placement,
            contract_outboxes_drop_a_repeated_effect
            $(, $extra)*
        );
    };
}
