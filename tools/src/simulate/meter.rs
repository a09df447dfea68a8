//! The engine's ports over the month's store, counting what each call would cost on AWS as it happens.
//!
//! `Metered` wraps the real store (in memory or SQLite, `store::SimStore`) and passes every call
//! through; on the way it
//! counts the DynamoDB, Scheduler and SNS calls that `docs/dynamodb.md` says the AWS
//! adapters make for the same port call, sized from the real documents. Nothing is
//! estimated from averages: a stream read costs what that stream's last committed doc
//! weighs, a transaction what its items weigh.

use super::clock::NOW;
use super::observe::{Observed, Rate};
use super::store::SimStore;
use chrono::{DateTime, Utc};
use followup::adapters::packed;
use followup::domain::commands::CommandBody;
use followup::domain::effects::{Command, Effect, Sms, TimerRef, TimerSpec};
use followup::domain::subjects::snapshot::{Snapshot, SubjectKey};
use followup::ports::{CaseStore, CommandBus, Commit, CommitError, Delivery, EffectError, PendingEffect, SmsSender, StoreError, Timers};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A DynamoDB strongly consistent read unit covers 4 KB of item.
const READ_UNIT_BYTES: usize = 4096;
/// A write unit covers 1 KB; a transactional write costs two of them per KB.
const WRITE_UNIT_BYTES: usize = 1024;
/// Attributes every item carries besides its payload: `PK`, `SK` names and the fixed `SK` value.
const KEY_OVERHEAD: usize = "PK".len() + "SK".len() + "DELIVERY".len();
/// A DynamoDB number attribute of an epoch or a version: at most ~21 bytes, usually 8.
const NUMBER_BYTES: usize = 8;

/// DynamoDB, Scheduler and SNS calls of the deployment, by kind.
#[derive(Debug, Default, Clone, Serialize)]
pub struct AwsCalls {
    pub dynamodb_get_item: u64,
    pub dynamodb_query: u64,
    pub dynamodb_transact_write: u64,
    pub dynamodb_transact_items: u64,
    pub dynamodb_put_item: u64,
    pub dynamodb_update_item: u64,
    /// Strongly consistent read request units (1 per 4 KB per item read).
    pub read_units: u64,
    /// Write request units on the table: 2 per KB per transactional item, 1 per KB otherwise.
    pub write_units: u64,
    /// Write units the three sparse GSIs take when an item enters, moves in or leaves them.
    pub gsi_write_units: u64,
    /// SPEC §4 (v3) the daily SMS counters: `GetItem`s of them (in `dynamodb_get_item` too) and
    /// the `Put`s of them in commit transactions (in `dynamodb_transact_items` too).
    pub sms_counter_reads: u64,
    pub sms_counter_writes: u64,
    pub scheduler_create: u64,
    pub scheduler_delete: u64,
    /// SNS `Publish` to the ops topic (commands); SMS are counted on their own.
    pub sns_publish: u64,
    /// Bytes of the stream documents written, as JSON and packed, for the size figures of the report.
    pub stream_doc_bytes_written: u64,
    pub stream_docz_bytes_written: u64,
    pub largest_stream_doc: u64,
    pub largest_stream_docz: u64,
}

/// What one case looks like after the last commit that touched it.
#[derive(Debug, Clone)]
pub struct CaseSummary {
    pub playbook: &'static str,
    pub status: &'static str,
    pub result: Option<&'static str>,
    /// Timeline length: a commit that lengthens it touched the case.
    entries: usize,
}

/// A `call_customer` as it was published, for the simulated agent to answer.
#[derive(Debug, Clone)]
pub struct CallTask {
    pub case_id: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub due: String,
}

/// Everything counted during the run.
#[derive(Debug, Default)]
pub struct Tally {
    pub aws: AwsCalls,
    /// Template → (messages, segments), counted as the SMS port performed them.
    pub sms: BTreeMap<&'static str, (u64, u64)>,
    /// Command type → count, as the command port published them.
    pub commands: BTreeMap<&'static str, u64>,
    pub cases: HashMap<String, CaseSummary>,
    /// Stream key → lines on its subject's own timeline so far (streams with any).
    subject_lines: HashMap<String, usize>,
    /// Step Functions Standard state transitions the same work would take (see `Meter::commit`).
    pub sfn_transitions: u64,
    /// Lambda durable functions operations the same work would take (see `Meter::commit`).
    pub durable_ops: u64,
    pub commits: u64,
    pub timers_placed: u64,
    pub timers_cancelled: u64,
    /// Published call tasks not yet handed to the simulated agent.
    pub call_tasks: Vec<CallTask>,
    /// Cases that published `cancel_order` (R2.6, R2.8) or `convert_order_to_complete` (R3.4,
    /// R3.6) since the agent last looked: those left waiting on the customer may be re-opened.
    pub gave_up: Vec<String>,
    /// When each call happened, and what the what-if report reads beside the totals.
    pub observed: Observed,
    /// Stream key → earliest timer: whether the next write moves it in the `due` GSI.
    dues: HashMap<String, Option<i64>>,
}

/// The ports of the simulated engine: the store underneath, a tally beside it.
#[derive(Debug, Clone)]
pub struct Metered {
    pub inner: SimStore,
    tally: Arc<Mutex<Tally>>,
    sizer: Arc<Sizer>,
}

impl Metered {
    /// The store, metered, its docs sized on the run's `sizing` threads.
    pub fn new(inner: SimStore, sizing: &Sizing) -> Metered {
        Metered { inner, sizer: Arc::new(sizing.sizer()), tally: Arc::default() }
    }

    /// The counts so far. What depends on the size of a stream item (write and read units, doc
    /// sizes, the per-stream write figures) is counted behind, on the sizing thread, until
    /// [`Metered::settle`].
    pub fn tally(&self) -> MutexGuard<'_, Tally> {
        lock(&self.tally)
    }

    /// Waits until the sizing thread has counted every call made so far.
    /// Fails if the sizing thread has stopped (a panic): its figures would be missing.
    pub fn settle(&self) -> anyhow::Result<()> {
        self.sizer.settle(&self.tally)
    }
}

fn lock(tally: &Mutex<Tally>) -> MutexGuard<'_, Tally> {
    // Counters hold no invariant a panicking holder could have broken half-way.
    tally.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sizes stream items: deflating every committed doc and effect list as the AWS adapter stores
/// them is most of the meter's work, so it runs on the run's sizing threads (see [`Sizing`]), and
/// the month's own thread has the engine to run. Each stream's jobs go to one sizing thread and
/// are counted in the order the engine made the calls, so a read is sized by the doc of the
/// commit before it, as it would be inline. They are handed over [`HANDOVER`] at a time (a
/// wake-up of the thread per call cost more than the sizing it saved), and handed back to be
/// dropped on the month's thread, which made them: freeing the month's allocations on a sizing
/// thread had the two contend for the allocator's lock at every commit.
#[derive(Debug)]
struct Sizer {
    month: usize,
    /// Each sizing thread's queue, and the jobs waiting to be handed to it.
    shards: Vec<(std::sync::mpsc::Sender<Batch>, Mutex<Vec<Job>>)>,
    done_with: std::sync::mpsc::Sender<Spent>,
    spent: Mutex<std::sync::mpsc::Receiver<Spent>>,
}

const HANDOVER: usize = 256;

/// Jobs of one month, and where to hand them back.
type Batch = (usize, Vec<Job>, std::sync::mpsc::Sender<Spent>);

/// What a sizing thread hands back to a month's thread to drop: its jobs, and its commits the
/// other month has since taken the sizes of.
type Spent = (Vec<Job>, Vec<FirstSized>);

#[derive(Debug)]
enum Job {
    /// A commit's stream and effects, and whether the store took it.
    Commit { at: Option<DateTime<Utc>>, counted: Sized, stream: Arc<Snapshot>, effects: Arc<Vec<PendingEffect>>, took: bool },
    /// A `GetItem` of a stream.
    Load { key: String },
    /// Adds what was counted to the month's tally, then says so.
    Settle(Arc<Mutex<Tally>>, std::sync::mpsc::SyncSender<()>),
}

impl Sizer {
    fn send(&self, job: Job) {
        let key = match &job {
            Job::Commit { counted, .. } => &counted.key,
            Job::Load { key } => key,
            Job::Settle(..) => unreachable!("a settlement goes to every sizing thread"),
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        h.write(key.as_bytes());
        let (queue, waiting) = &self.shards[h.finish() as usize % self.shards.len()];
        let mut waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.push(job);
        if waiting.len() >= HANDOVER {
            self.hand_over(queue, &mut waiting);
        }
    }

    fn hand_over(&self, queue: &std::sync::mpsc::Sender<Batch>, waiting: &mut Vec<Job>) {
        let jobs = std::mem::replace(waiting, Vec::with_capacity(HANDOVER));
        // The thread only stops when every sender is gone, or by a panic, which the month reports.
        let _ = queue.send((self.month, jobs, self.done_with.clone()));
        let spent = self.spent.lock().unwrap_or_else(PoisonError::into_inner);
        while let Ok(jobs) = spent.try_recv() {
            drop(jobs);
        }
    }

    fn settle(&self, tally: &Arc<Mutex<Tally>>) -> anyhow::Result<()> {
        let (done, wait) = std::sync::mpsc::sync_channel(self.shards.len());
        for (queue, waiting) in &self.shards {
            let mut waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
            waiting.push(Job::Settle(Arc::clone(tally), done.clone()));
            self.hand_over(queue, &mut waiting);
        }
        for _ in &self.shards {
            wait.recv().map_err(|_| anyhow::anyhow!("a meter's sizing thread stopped; the month's units would be missing"))?;
        }
        Ok(())
    }
}

/// Where the months of one run size their docs: a thread per core, each sizing the streams whose
/// key hashes to it, for every month of the run.
///
/// A month alone has them beside its engine's thread. Under `--compare` the two months share
/// them, and share what they sized: both run the same traffic, and every stream a policy change
/// does not touch commits the same doc with the same effects at the same version under both.
/// Serialising and deflating is nearly all of the sizing, so a stream's thread sizes such a
/// commit once, for the month whose batch reaches it first, and gives the other those sizes when
/// its own commit of that version is equal (compared as values, not hashed), else sizes its own.
/// A stream's versions from both months meet on one thread, so what it keeps needs no lock and
/// no version is sized twice.
/// Measured on this machine's two cores: each month sizing on a thread of its own raced the other
/// to the same versions and sized more than half of them twice; one sizing thread for both
/// months sized each once but was the last to finish, alone on a core.
#[derive(Debug, Clone)]
pub struct Sizing {
    shards: Vec<std::sync::mpsc::Sender<Batch>>,
    months: Arc<std::sync::atomic::AtomicUsize>,
    /// Commits whose sizes one month took from the other.
    pub taken: Arc<AtomicU64>,
}

impl Sizing {
    /// Starts the sizing threads of a run of `months` months; they end once every month's meter
    /// is dropped.
    pub fn start(months: usize) -> Sizing {
        let taken = Arc::<AtomicU64>::default();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        let shards = (0..threads).map(|_| Sizing::thread(months, Arc::clone(&taken))).collect();
        Sizing { shards, months: Arc::default(), taken }
    }

    fn thread(months_run: usize, taken: Arc<AtomicU64>) -> std::sync::mpsc::Sender<Batch> {
        let (jobs, queue) = std::sync::mpsc::channel::<Batch>();
        std::thread::Builder::new()
            .name("simulate-meter".into())
            .spawn(move || {
                let mut months: HashMap<usize, Sizes> = HashMap::new();
                let mut kept = Kept { commits: HashMap::new(), spent: HashMap::new(), taken };
                for (month, jobs, back) in queue {
                    let sizes = months.entry(month).or_default();
                    for job in &jobs {
                        match job {
                            Job::Commit { at, counted, stream, effects, took } => {
                                let doc = match *took && months_run > 1 {
                                    true => kept.sizes(month, stream, effects, counted),
                                    false => DocSizes::of(stream, effects, counted),
                                };
                                sizes.commit(*at, counted, doc, *took)
                            }
                            Job::Load { key } => sizes.load(key),
                            Job::Settle(tally, done) => {
                                sizes.settle(&mut lock(tally));
                                let _ = done.send(());
                            }
                        }
                    }
                    let _ = back.send((jobs, kept.spent.remove(&month).unwrap_or_default()));
                }
            })
            .expect("starting the meter's sizing thread");
        jobs
    }

    fn sizer(&self) -> Sizer {
        let (done_with, spent) = std::sync::mpsc::channel::<Spent>();
        Sizer {
            month: self.months.fetch_add(1, Ordering::Relaxed),
            shards: self.shards.iter().map(|q| (q.clone(), Mutex::new(Vec::with_capacity(HANDOVER)))).collect(),
            done_with,
            spent: Mutex::new(spent),
        }
    }
}

/// What a sizing thread keeps of a commit until the other month reaches the same version: the
/// commit as first sized, and its sizes. What stays at the end is the versions only one policy
/// reached.
#[derive(Debug)]
struct Kept {
    commits: HashMap<(String, u64), FirstSized>,
    /// Commits reached by the other month, by the month that made them, to be handed back to it
    /// and dropped there: dropped here, their memory went back to the month's heap from another
    /// thread, block by block, and the month's allocations slowed by a fifth (measured).
    spent: HashMap<usize, Vec<FirstSized>>,
    taken: Arc<AtomicU64>,
}

#[derive(Debug)]
struct FirstSized {
    month: usize,
    stream: Arc<Snapshot>,
    effects: Arc<Vec<PendingEffect>>,
    /// The delivery record's size before the effects: the record's units depend on it too.
    record: usize,
    sizes: DocSizes,
}

impl Kept {
    fn sizes(&mut self, month: usize, stream: &Arc<Snapshot>, effects: &Arc<Vec<PendingEffect>>, c: &Sized) -> DocSizes {
        use std::collections::hash_map::Entry;
        match self.commits.entry((c.key.clone(), stream.version)) {
            Entry::Occupied(first) if first.get().month != month => {
                let first = first.remove();
                let sizes = if first.record == c.items[0] && first.stream == *stream && first.effects == *effects {
                    self.taken.fetch_add(1, Ordering::Relaxed);
                    first.sizes.clone()
                } else {
                    DocSizes::of(stream, effects, c)
                };
                self.spent.entry(first.month).or_default().push(first);
                sizes
            }
            Entry::Occupied(_) => DocSizes::of(stream, effects, c),
            Entry::Vacant(slot) => {
                let sizes = DocSizes::of(stream, effects, c);
                let (stream, effects) = (Arc::clone(stream), Arc::clone(effects));
                slot.insert(FirstSized { month, stream, effects, record: c.items[0], sizes: sizes.clone() });
                sizes
            }
        }
    }
}

/// Bytes of a value as JSON, without keeping the text.
fn json_len<T: Serialize>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Serialising a snapshot or an effect cannot fail: the store serialises the same value.
    let _ = serde_json::to_writer(&mut c, value);
    c.0
}

fn read_units(bytes: usize) -> u64 {
    bytes.div_ceil(READ_UNIT_BYTES).max(1) as u64
}

fn write_units(bytes: usize) -> u64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1) as u64
}

/// The stream item: `PK`, `SK`, `version`, `docz` (the packed doc, `doc` bytes), `updated_at`, and
/// `due_bucket` / `due_at` while it waits on a timer.
fn stream_item(key: &str, doc: usize, due: bool) -> usize {
    let due_attrs = if due { "due_bucket".len() + 10 + "due_at".len() + 15 } else { 0 };
    KEY_OVERHEAD + 2 + key.len() + "version".len() + NUMBER_BYTES + "docz".len() + doc + "updated_at".len() + NUMBER_BYTES + due_attrs
}

/// What a commit's effects add to its delivery record while pending: `effects` (their JSON, packed),
/// `effect_count`, `pending`, `pending_order`; the record then has no `expires_at`.
fn delivery_effects(json: usize, stream_key: &str) -> usize {
    let pending_order = 15 + 1 + stream_key.len() + 1 + 20;
    "effects".len() + json + "effect_count".len() + NUMBER_BYTES + "pending".len() + 1 + "pending_order".len() + pending_order
        - "expires_at".len()
        - NUMBER_BYTES
}

/// SPEC §4 (v3) a number's daily SMS counter: `PK` `C#<phone>#<day>`, `SK` `SMS_COUNT`, `count`,
/// `expires_at`. Read at 1 unit (under 4 KB), written in the transaction at 2 (under 1 KB).
fn sms_counter_item(phone: &str) -> usize {
    let pk = "C#".len() + phone.len() + "#2026-03-02".len();
    "PK".len() + "SK".len() + pk + "SMS_COUNT".len() + "count".len() + "expires_at".len() + 2 * NUMBER_BYTES
}

/// The send-log item: `status`, `doc`, `claim_id`, `message_id`, the claim and send times, `expires_at`.
fn send_log_item(id: &str, doc: usize) -> usize {
    KEY_OVERHEAD
        + 6
        + id.len()
        + "status".len()
        + 7
        + "doc".len()
        + doc
        + "claim_id".len()
        + 36
        + "message_id".len()
        + 36
        + 4 * (12 + NUMBER_BYTES)
}

fn status_name(s: followup::domain::records::case::TicketStatus) -> &'static str {
    use followup::domain::records::case::TicketStatus::*;
    match s {
        Open => "open",
        Pending => "pending",
        WaitingOnCustomer => "waiting_on_customer",
        WaitingOnThirdParty => "waiting_on_third_party",
        Resolved => "resolved",
        Closed => "closed",
    }
}

/// The lines a commit adds to its cases' timelines (past the length the tally last saw), of the
/// kinds the what-if report counts.
fn new_lines(commit: &Commit, t: &Tally) -> Vec<followup::domain::records::case::TimelineEntry> {
    use followup::domain::records::case::TimelineKind::{SmsHeld, SmsSuppressed};
    let mut fresh = Vec::new();
    for case in &commit.stream.cases {
        let seen = t.cases.get(&case.core.case_id).map_or(0, |c| c.entries);
        fresh.extend(case.core.timeline.iter().skip(seen));
    }
    // An SMS about no case is held or stopped on the subject's own timeline.
    let subject = commit.stream.subject.timeline();
    if !subject.is_empty() {
        let seen = t.subject_lines.get(&commit.stream.key.to_string()).copied().unwrap_or(0);
        fresh.extend(subject.iter().skip(seen));
    }
    fresh.into_iter().filter(|l| matches!(l.kind, SmsHeld | SmsSuppressed)).cloned().collect()
}

/// What a commit weighs and which cases it leaves how, measured before the store takes it.
struct Counted {
    /// What the sizing thread needs beside the doc.
    sized: Sized,
    /// How many of `items` are daily SMS counters.
    counters: u64,
    /// Index items that enter the `subjects` GSI.
    grouped: u64,
    /// The commit carries effects: its delivery record enters the `pending` GSI.
    pending: bool,
    cases: Vec<(String, CaseSummary)>,
    /// Lines on the subject's own timeline.
    subject_lines: usize,
    /// Effects about a case (not a subject): states / operations on the orchestrators.
    case_effects: u64,
}

/// A commit's items, sized but for its stream doc and effects.
#[derive(Debug)]
struct Sized {
    key: String,
    due: Option<i64>,
    /// Sizes of the delivery (before the commit's effects are added to it), index and daily SMS
    /// counter items (the stream item is sized from the doc).
    items: Vec<usize>,
}

impl Counted {
    fn of(commit: &Commit) -> Counted {
        let key = commit.stream.key.to_string();
        let d = &commit.delivery;
        let mut items = vec![
            KEY_OVERHEAD
                + 2
                + d.id.len()
                + "body_hash".len()
                + d.body_hash.len()
                + "case_id".len()
                + d.case_id.as_ref().map_or(0, String::len)
                + "accepted_at".len()
                + 32
                + "status".len()
                + "COMPLETED".len()
                + "expires_at".len()
                + NUMBER_BYTES,
        ];
        let mut grouped = 0;
        for subject in &commit.index {
            let g = subject.matches(':').count() >= 2;
            let group = if g { "subject_group".len() + subject.len() + "subject".len() + subject.len() } else { 0 };
            items.push(KEY_OVERHEAD + 2 + subject.len() + "stream_key".len() + key.len() + group);
            grouped += u64::from(g);
        }
        items.extend(commit.sms_counts.iter().map(|c| sms_counter_item(&c.phone)));
        let cases = commit
            .stream
            .cases
            .iter()
            .map(|case| {
                let summary = CaseSummary {
                    playbook: case.playbook().as_str(),
                    status: status_name(case.core.ticket.status),
                    result: case.core.ticket.result.map(|r| r.as_str()),
                    entries: case.core.timeline.len(),
                };
                (case.core.case_id.clone(), summary)
            })
            .collect();
        let subject_lines = commit.stream.subject.timeline().len();
        let case_effects = commit
            .effects
            .iter()
            .filter(|e| match &e.effect {
                Effect::SendSms(s) => s.case_id.is_some(),
                Effect::Emit(c) => c.case_id.is_some(),
                Effect::PlaceTimer(t) => t.timer.case_id.is_some(),
                Effect::CancelTimer(_) => false,
            })
            .count() as u64;
        Counted {
            sized: Sized { key, due: commit.stream.next_due().map(|d| d.timestamp_millis()), items },
            counters: commit.sms_counts.len() as u64,
            grouped,
            pending: !commit.effects.is_empty(),
            cases,
            subject_lines,
            case_effects,
        }
    }
}

/// The stream doc and the effects packed as the AWS adapter stores them: the sizing thread's work.
#[derive(Debug, Clone)]
struct DocSizes {
    /// The snapshot as JSON, and packed as the stream item stores it.
    json: usize,
    doc: usize,
    /// The write units of the delivery record carrying the effects' JSON packed (none: no effects).
    record_units: Option<u64>,
}

impl DocSizes {
    fn of(stream: &Snapshot, effects: &[PendingEffect], c: &Sized) -> DocSizes {
        let record_units = (!effects.is_empty()).then(|| {
            let units = |packed: usize| write_units(c.items[0] + delivery_effects(packed, &c.key));
            // Most effects are a few hundred bytes: whatever deflate makes of them, the record
            // weighs the same units, and packing them would only confirm it.
            match (units(0), units(packed_at_most(json_len(&effects)))) {
                (least, most) if least == most => least,
                _ => units(packed_json(&effects).1),
            }
        });
        let (json, doc) = packed_json(stream);
        DocSizes { json, doc, record_units }
    }
}

/// Bytes of a value as JSON, and as [`packed::pack`] makes them, written in the thread's own
/// buffer (most docs are a few KB, and a sizing thread sizes one after another).
fn packed_json<T: Serialize>(value: &T) -> (usize, usize) {
    thread_local! {
        static JSON: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    JSON.with(|json| {
        let mut json = json.borrow_mut();
        json.clear();
        // Serialising a snapshot or effects cannot fail: the store serialises the same values.
        let _ = serde_json::to_writer(&mut *json, value);
        (json.len(), packed::packed_len(&json))
    })
}

/// At most what [`packed::pack`] makes of `len` bytes. libdeflate ends each block in the
/// smallest of its three forms: stored (5 bytes over its length, at most 65,535 bytes a block),
/// fixed codes (at most 9 bits a byte) or its own codes; the bound leaves a margin over the first.
fn packed_at_most(len: usize) -> usize {
    len + len / 8 + 64
}

impl Tally {
    /// Counts one `TransactWriteItems` and what the same decision would take on the two
    /// orchestrators it is compared with.
    ///
    /// Step Functions Standard: one execution per case. Every input that reaches a case is a
    /// Wait state ending (a timer) or a `.waitForTaskToken` task resuming (a webhook), then a
    /// Choice state routing it to its rule: 2 transitions. Every effect of the case is one
    /// state (a Task that sends the SMS or publishes the command, or a Wait that holds the
    /// timer): 1 each; a cancelled timer is a branch abandoned, 0. Opening a case starts an
    /// execution and it ends in a Succeed state: 2. Inputs that touch no case (a booking with
    /// a technician, a package visit) start no execution and cost no transition, as the
    /// webhook handler would do them itself.
    ///
    /// Durable functions: every checkpointed operation is billed. An input reaching a case
    /// completes a wait or a callback: 1; each effect is a step (SMS, command) or a wait
    /// (timer): 1; a cancelled timer is not an operation; opening a case is the execution's start: 1.
    ///
    /// Returns what is left to count once the doc is sized (see [`Tally::sized`]).
    fn commit(&mut self, c: Counted) -> Sized {
        self.commits += 1;
        self.aws.dynamodb_transact_write += 1;
        self.aws.dynamodb_transact_items += 1 + c.sized.items.len() as u64;
        self.aws.sms_counter_writes += c.counters;
        // Expiry index items enter the `subjects` GSI.
        self.aws.gsi_write_units += c.grouped;
        if c.pending {
            // Once its effects are performed the engine marks them all done in one `UpdateItem`
            // (sized with the doc). Every effect succeeds in the simulation, so that is the path
            // every commit takes.
            self.aws.dynamodb_update_item += 1;
        }
        // The `due` GSI (KEYS_ONLY): an entry written, moved (delete + put) or removed.
        let due = c.sized.due;
        let before = self.dues.insert(c.sized.key.clone(), due).flatten();
        self.aws.gsi_write_units += match (before, due) {
            (None, None) => 0,
            (Some(a), Some(b)) if a == b => 0,
            (Some(_), Some(_)) => 2,
            _ => 1,
        };
        if c.subject_lines > 0 {
            self.subject_lines.insert(c.sized.key.clone(), c.subject_lines);
        }
        let (mut touched, mut opened) = (0u64, 0u64);
        for (case_id, summary) in c.cases {
            match self.cases.get_mut(&case_id) {
                Some(s) => {
                    touched += u64::from(s.entries != summary.entries);
                    *s = summary;
                }
                None => {
                    touched += 1;
                    opened += 1;
                    self.cases.insert(case_id, summary);
                }
            }
        }
        self.sfn_transitions += 2 * touched + c.case_effects + 2 * opened;
        self.durable_ops += touched + c.case_effects + opened;
        c.sized
    }
}

/// What the sizing thread counts between two settlements, then adds to the tally: it never takes
/// the tally's lock while the month runs.
#[derive(Debug, Default)]
struct Sizes {
    /// Only the unit and size figures of a commit or a stream read.
    aws: AwsCalls,
    /// Stream key → (doc size, waits on a timer): what the next read of it costs.
    streams: HashMap<String, (usize, bool)>,
    /// Each commit's stream and `pending` GSI write units, at its instant, for the per-second figures.
    writes: Vec<(Option<DateTime<Utc>>, String, u64, u64)>,
}

impl Sizes {
    /// The write units of a commit, once its doc and effects are sized. A transaction the store
    /// refused is charged the units it attempted.
    fn commit(&mut self, at: Option<DateTime<Utc>>, c: &Sized, doc: DocSizes, took: bool) {
        if !took {
            self.aws.write_units += 2 * (c.items.len() as u64 + write_units(stream_item(&c.key, doc.doc, false)));
            return;
        }
        // The delivery record, first of the items, carries the commit's effects.
        let record = doc.record_units.unwrap_or_else(|| write_units(c.items[0]));
        let stream = stream_item(&c.key, doc.doc, c.due.is_some());
        self.aws.write_units += 2 * write_units(stream) + 2 * record + c.items[1..].iter().map(|&i| 2 * write_units(i)).sum::<u64>();
        let pending_units = match doc.record_units {
            // The delivery record enters the `pending` GSI (projection ALL), and the one
            // `UpdateItem` marking its effects done takes it out.
            Some(_) => {
                self.aws.gsi_write_units += 2 * record;
                self.aws.write_units += record;
                2 * record
            }
            None => 0,
        };
        self.writes.push((at, c.key.clone(), 2 * write_units(stream), pending_units));
        self.aws.stream_doc_bytes_written += doc.json as u64;
        self.aws.stream_docz_bytes_written += doc.doc as u64;
        self.aws.largest_stream_doc = self.aws.largest_stream_doc.max(doc.json as u64);
        self.aws.largest_stream_docz = self.aws.largest_stream_docz.max(doc.doc as u64);
        match self.streams.get_mut(&c.key) {
            Some(s) => *s = (doc.doc, c.due.is_some()),
            None => {
                self.streams.insert(c.key.clone(), (doc.doc, c.due.is_some()));
            }
        }
    }

    /// A consistent `GetItem` of a stream: as many read units as its last doc weighs.
    fn load(&mut self, key: &str) {
        let size = self.streams.get(key).map_or(0, |(doc, due)| stream_item(key, *doc, *due));
        self.aws.read_units += read_units(size);
    }

    /// Adds what was counted since the last settlement to the tally.
    fn settle(&mut self, t: &mut Tally) {
        let a = std::mem::take(&mut self.aws);
        t.aws.write_units += a.write_units;
        t.aws.gsi_write_units += a.gsi_write_units;
        t.aws.read_units += a.read_units;
        t.aws.stream_doc_bytes_written += a.stream_doc_bytes_written;
        t.aws.stream_docz_bytes_written += a.stream_docz_bytes_written;
        t.aws.largest_stream_doc = t.aws.largest_stream_doc.max(a.largest_stream_doc);
        t.aws.largest_stream_docz = t.aws.largest_stream_docz.max(a.largest_stream_docz);
        for (at, key, units, pending) in self.writes.drain(..) {
            match at {
                Some(at) => NOW.sync_scope(at, || t.observed.write(&key, units, pending)),
                None => t.observed.write(&key, units, pending),
            }
        }
    }
}

impl Tally {
    /// The send log of an SMS or a command: a conditional claim, then the update to SENT (SNS
    /// bills the SMS itself).
    fn send_log(&mut self, effect_id: &str, doc: usize) {
        let item = send_log_item(effect_id, doc);
        self.aws.dynamodb_put_item += 1;
        self.aws.dynamodb_update_item += 1;
        self.aws.write_units += 2 * write_units(item);
    }
}

impl CaseStore for Metered {
    async fn locate(&self, subject: &str) -> Result<Option<SubjectKey>, StoreError> {
        {
            let mut t = self.tally();
            t.aws.dynamodb_get_item += 1;
            t.aws.read_units += 1;
        }
        self.inner.locate(subject).await
    }

    async fn load(&self, key: &SubjectKey) -> Result<Option<Snapshot>, StoreError> {
        self.tally().aws.dynamodb_get_item += 1;
        self.sizer.send(Job::Load { key: key.to_string() });
        self.inner.load(key).await
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        {
            let mut t = self.tally();
            t.aws.dynamodb_get_item += 1;
            t.aws.read_units += 1;
        }
        self.inner.delivery(id).await
    }

    /// One consistent `GetItem` of each number's counter, found or not.
    async fn sms_counts(&self, phones: &[String], day: chrono::NaiveDate) -> Result<BTreeMap<String, u32>, StoreError> {
        {
            let mut t = self.tally();
            let distinct = phones.iter().collect::<std::collections::BTreeSet<_>>().len() as u64;
            t.aws.dynamodb_get_item += distinct;
            t.aws.sms_counter_reads += distinct;
            // A counter is far under 4 KB: one unit each, found or not.
            t.aws.read_units += distinct;
        }
        self.inner.sms_counts(phones, day).await
    }

    fn keeps_inputs(&self) -> bool {
        self.inner.keeps_inputs()
    }
    async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        let counted = Counted::of(&commit);
        let lines = new_lines(&commit, &self.tally());
        let (stream, effects) = (Arc::new(commit.stream.clone()), Arc::new(commit.effects.clone()));
        let result = self.inner.commit(commit).await;
        let took = result.is_ok();
        let sized = {
            let mut t = self.tally();
            if took {
                t.observed.timeline(&lines);
                t.commit(counted)
            } else {
                t.aws.dynamodb_transact_write += 1;
                counted.sized
            }
        };
        self.sizer.send(Job::Commit { at: NOW.try_with(|t| *t).ok(), counted: sized, stream, effects, took });
        result
    }

    async fn pending_effects(&self, limit: usize) -> Result<Vec<PendingEffect>, StoreError> {
        {
            let mut t = self.tally();
            t.aws.dynamodb_query += 1;
            t.aws.read_units += 1;
        }
        self.inner.pending_effects(limit).await
    }

    /// Counted with the commit: the AWS engine marks a commit's effects done in one write.
    async fn effect_done(&self, id: &str) -> Result<(), StoreError> {
        self.inner.effect_done(id).await
    }

    async fn subjects_with_prefix(&self, prefix: &str) -> Result<Vec<(String, SubjectKey)>, StoreError> {
        let found = self.inner.subjects_with_prefix(prefix).await?;
        let mut t = self.tally();
        let bytes: usize = found.iter().map(|(s, k)| s.len() * 2 + k.to_string().len() + 40).sum();
        t.aws.dynamodb_query += 1 + (bytes / (1 << 20)) as u64;
        t.aws.read_units += read_units(bytes);
        Ok(found)
    }

    async fn overdue(&self, cutoff: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<Vec<SubjectKey>, StoreError> {
        {
            // Today's bucket and the two before.
            let mut t = self.tally();
            t.aws.dynamodb_query += 3;
            t.aws.read_units += 3;
        }
        self.inner.overdue(cutoff, limit).await
    }
}

impl Timers for Metered {
    async fn place(&self, timer: &TimerSpec) -> Result<(), EffectError> {
        {
            let mut t = self.tally();
            t.aws.scheduler_create += 1;
            t.timers_placed += 1;
            t.observed.call(Rate::CreateSchedule);
            t.observed.schedule(1);
        }
        self.inner.place(timer).await
    }

    async fn cancel(&self, timer: &TimerRef) -> Result<(), EffectError> {
        {
            let mut t = self.tally();
            t.aws.scheduler_delete += 1;
            t.timers_cancelled += 1;
            t.observed.schedule(-1);
        }
        self.inner.cancel(timer).await
    }
}

impl SmsSender for Metered {
    /// As the embedded outboxes do; on DynamoDB the effect is marked done with the rest of its
    /// commit, counted with the commit.
    const MARKS_DONE: bool = <SimStore as SmsSender>::MARKS_DONE;

    async fn send(&self, effect_id: &str, sms: &Sms) -> Result<(), EffectError> {
        self.inner.send(effect_id, sms).await?;
        let mut t = self.tally();
        t.send_log(effect_id, json_len(sms));
        t.observed.sms_sent();
        let e = t.sms.entry(sms.template.as_str()).or_default();
        e.0 += 1;
        e.1 += u64::from(sms.segments);
        Ok(())
    }
}

impl CommandBus for Metered {
    const MARKS_DONE: bool = <SimStore as CommandBus>::MARKS_DONE;

    async fn publish(&self, effect_id: &str, command: &Command) -> Result<(), EffectError> {
        self.inner.publish(effect_id, command).await?;
        let mut t = self.tally();
        t.send_log(effect_id, json_len(command));
        t.aws.sns_publish += 1;
        let playbook = command.case_id.as_ref().and_then(|c| t.cases.get(c)).map(|c| c.playbook);
        t.observed.command(command, playbook);
        *t.commands.entry(command.body.kind()).or_default() += 1;
        match (&command.body, &command.case_id) {
            (CommandBody::CallCustomer(c), Some(case_id)) => {
                t.call_tasks.push(CallTask { case_id: case_id.clone(), at: command.at, due: c.due.clone() })
            }
            (CommandBody::CancelOrder(_) | CommandBody::ConvertOrderToComplete(_), Some(case_id)) => t.gave_up.push(case_id.clone()),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};
    use followup::domain::ctx::{SmsCount, DAILY_CAP};
    use followup::domain::records::case::{TimelineEntry, TimelineKind};
    use followup::domain::subjects::snapshot::Subject;

    fn commit(order_id: &str, counts: Vec<SmsCount>) -> Commit {
        let mut stream = Snapshot::order(order_id);
        stream.version = 1;
        let accepted_at = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
        let delivery = Delivery { id: format!("d-{order_id}"), body_hash: "h".into(), case_id: None, accepted_at };
        Commit { stream, expected_version: None, delivery, index: vec![], effects: vec![], sms_counts: counts, received: None }
    }

    fn units(m: &Metered) -> (u64, u64, u64) {
        m.settle().expect("settled");
        let t = m.tally();
        (t.aws.write_units, t.aws.stream_docz_bytes_written, t.aws.largest_stream_docz)
    }

    /// Under `--compare` a commit the second month makes exactly as the first did takes the
    /// first's sizes, and both are billed alike; one that differs at the same version is sized on
    /// its own, as a month alone would size it.
    #[tokio::test]
    async fn a_commit_two_months_make_alike_is_sized_once_and_billed_alike_and_one_that_differs_on_its_own() {
        let sizing = Sizing::start(2);
        let month = || Metered::new(SimStore::Memory(Default::default()), &sizing);
        let (a, b) = (month(), month());
        a.commit(commit("O1", vec![])).await.expect("commit");
        let first = units(&a);
        b.commit(commit("O1", vec![])).await.expect("commit");
        assert_eq!(units(&b), first);
        assert_eq!(sizing.taken.load(Ordering::Relaxed), 1);

        // The same stream and version, but a doc a month alone would bill at more units.
        let mut longer = commit("O2", vec![]);
        let Subject::Order(order) = &mut longer.stream.subject else { unreachable!() };
        let at = longer.delivery.accepted_at;
        // Hex of a multiplicative sequence: deflate cannot shrink it to one unit.
        order.timeline = (0..200u64)
            .map(|i| TimelineEntry::new(at, TimelineKind::Decision, format!("{:x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))))
            .collect();
        let alone = Metered::new(SimStore::Memory(Default::default()), &Sizing::start(1));
        alone.commit(longer.clone()).await.expect("commit");
        let (before_a, before_b) = (units(&a), units(&b));
        a.commit(commit("O2", vec![])).await.expect("commit");
        b.commit(longer).await.expect("commit");
        let (after_a, after_b) = (units(&a), units(&b));
        assert_eq!(sizing.taken.load(Ordering::Relaxed), 1, "a differing commit takes nothing");
        assert_eq!(after_b.0 - before_b.0, units(&alone).0, "billed as a month alone would bill it");
        assert!(after_b.0 - before_b.0 > after_a.0 - before_a.0, "{after_b:?} after {before_b:?}, against {after_a:?} after {before_a:?}");
    }

    /// SPEC §4: an SMS about no case that the protection stops is on the order's own timeline; the
    /// what-if counts it once, when the line first appears, not again at each later commit.
    #[tokio::test]
    async fn an_sms_stopped_on_the_subjects_timeline_is_counted_once() {
        let m = Metered::new(SimStore::Memory(Default::default()), &Sizing::start(1));
        let mut first = commit("O1", vec![]);
        let at = first.delivery.accepted_at;
        let Subject::Order(order) = &mut first.stream.subject else { unreachable!() };
        let line = format!("DISCOUNT_OFFER to +201******567 not sent: 5 SMS already went to this number today ({DAILY_CAP} 5)");
        order.timeline.push(TimelineEntry::new(at, TimelineKind::SmsSuppressed, line));
        let mut second = first.clone();
        second.stream.version = 2;
        second.expected_version = Some(1);
        second.delivery.id = "d-O1-2".into();
        m.commit(first).await.expect("commit");
        m.commit(second).await.expect("commit");
        assert_eq!(m.tally().observed.sms_stops.get("DISCOUNT_OFFER"), Some(&(0, 1, 0)));
    }

    /// The record-units shortcut rests on this bound: whatever the input, deflate never makes
    /// more of it than `packed_at_most` says.
    #[test]
    fn deflate_never_makes_more_than_the_bound() {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut noise = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for len in (0..2_000).chain((2_000..70_000).step_by(997)) {
            let random: Vec<u8> = (0..len).map(|_| (noise() >> 24) as u8).collect();
            let text = String::from_utf8_lossy(&random).into_owned();
            let json = serde_json::to_string(&text).unwrap();
            for doc in [text, json] {
                assert!(
                    packed::pack(&doc).len() <= packed_at_most(doc.len()),
                    "{} bytes packed to {}",
                    doc.len(),
                    packed::pack(&doc).len()
                );
            }
        }
    }

    /// SPEC §4 (v3) on the bill: a consistent `GetItem` per number asked about (1 read unit each),
    /// and a `Put` per number counted in the commit's transaction (2 write units: under 1 KB).
    #[tokio::test]
    async fn the_daily_sms_counter_costs_a_read_per_number_and_two_write_units_per_commit() {
        let m = Metered::new(SimStore::Memory(Default::default()), &Sizing::start(1));
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let mona = "+201001234567".to_string();
        m.sms_counts(&[mona.clone(), "+201009876543".into(), mona.clone()], day).await.expect("counts");
        {
            let t = m.tally();
            assert_eq!((t.aws.dynamodb_get_item, t.aws.read_units, t.aws.sms_counter_reads), (2, 2, 2));
        }

        m.commit(commit("O1", vec![])).await.expect("commit");
        m.settle().expect("settled");
        let (units, items) = {
            let t = m.tally();
            (t.aws.write_units, t.aws.dynamodb_transact_items)
        };
        m.commit(commit("O2", vec![SmsCount { phone: mona.clone(), day, held: 0, count: 1 }])).await.expect("commit");
        m.settle().expect("settled");
        let t = m.tally();
        assert_eq!(t.aws.write_units - units, units + 2, "the same commit again, and the counter");
        assert_eq!(t.aws.dynamodb_transact_items - items, items + 1);
        assert_eq!(t.aws.sms_counter_writes, 1);
    }
}
