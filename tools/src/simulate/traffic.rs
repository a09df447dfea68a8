//! The month of traffic: what the dashboard and the phone system send, drawn from the rates.
//!
//! Every appointment and package is planned up front from its own random stream (seed and
//! subject number), so a run replays exactly whatever order the engine takes inputs in. The
//! only inputs that depend on the engine are the simulated agent's call outcomes: an agent
//! answers each `call_customer` the engine publishes, and the dashboard books the second visit
//! a rebooking call agreed (R3.5 v2); their randomness is keyed by case and attempt.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use followup::domain::calendar::Calendar;
use followup::wire::Route;
use serde_json::{json, Value};

/// A small deterministic generator (SplitMix64), as the soak's load generator uses.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The stream of one subject: the same seed and key give the same choices.
    pub fn keyed(seed: u64, key: &str) -> Rng {
        let h = key.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01B3));
        Rng(seed ^ h ^ 0x9E37_79B9_7F4A_7C15)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// True with probability `p`: exactly never at 0 and always at 1.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// low ≤ n ≤ high.
    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1).max(1) as u64) as i64
    }
    /// An instant a fraction `low..high` of the way from `from` to `to`.
    fn between(&mut self, from: DateTime<Utc>, to: DateTime<Utc>, low: f64, high: f64) -> DateTime<Utc> {
        let f = low + (high - low) * self.unit();
        from + Duration::seconds(((to - from).num_seconds() as f64 * f) as i64)
    }
}

/// The rates that shape the month, each a share in 0..=1.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rates {
    /// Appointments cancelled before their visit.
    pub cancel: f64,
    /// Of cancellations: by the customer, by ops; the rest are no-shows.
    pub cancel_by_customer: f64,
    pub cancel_by_ops: f64,
    /// Customers who cancel and want a follow-up call (R2.1).
    pub wants_follow_up: f64,
    /// Cancellations with `availability: unsure` (R2.4).
    pub unsure: f64,
    /// Appointments booked without a technician (R0.1).
    pub unassigned: f64,
    /// Of those, never assigned (R0.2 cancels them at T-1h).
    pub never_assigned: f64,
    /// Appointments moved by the customer (R7).
    pub reschedule: f64,
    /// Appointments with a reschedule request (R1 outreach).
    pub reschedule_request: f64,
    /// Completed visits that need a second visit (inspection / incomplete, R3.1).
    pub second_visit: f64,
    /// Completed visits that quote a painting job (R3.1, R3.7).
    pub painting: f64,
    /// Appointments that already carry a discount (no coupon, R2.3).
    pub discounted: f64,
    /// Per attempt (1st, 2nd, …; the last repeats): calls not reached.
    pub no_answer: Vec<f64>,
    /// Reached calls that rebook (else the customer declines).
    pub rebook: f64,
    /// Packages booked unpaid (R4.1).
    pub unpaid: f64,
    /// Of unpaid packages, paid before R4.4's day-before call.
    pub paid_late: f64,
    /// Of paid packages, with visits left at expiry (R5.2).
    pub visits_left: f64,
    /// Package visits the customer cancels (R6: free, late or on the day, as it falls).
    pub visit_cancel: f64,
    /// Package visits the customer moves a day or two (R6.1, R6.2), no later than the day before.
    pub visit_reschedule: f64,
    /// Cases left waiting on the customer (R2.6, R3.4) that an agent re-opens (R2.10, R3.9).
    pub reopen: f64,
    /// Dashboard views of a case (`GET /v1/cases/{id}`) per call task: the agent opens the case
    /// before calling.
    pub case_views: u32,
    /// Visits per package.
    pub visits: u32,
    /// Minutes between a call task falling due and the agent reporting its outcome.
    pub call_delay_minutes: i64,
    /// Call reports the phone system never delivers (R9.1: the next step goes ahead without them).
    pub report_lost: f64,
}

impl Default for Rates {
    /// Figures of a plausible month, for the default run; every one is a flag.
    fn default() -> Rates {
        Rates {
            cancel: 0.12,
            cancel_by_customer: 0.55,
            cancel_by_ops: 0.15,
            wants_follow_up: 0.6,
            unsure: 0.2,
            unassigned: 0.08,
            never_assigned: 0.15,
            reschedule: 0.08,
            reschedule_request: 0.03,
            second_visit: 0.1,
            painting: 0.02,
            discounted: 0.2,
            no_answer: vec![0.4, 0.5],
            rebook: 0.5,
            unpaid: 0.3,
            paid_late: 0.6,
            visits_left: 0.25,
            visit_cancel: 0.05,
            visit_reschedule: 0.08,
            reopen: 0.2,
            case_views: 1,
            visits: 4,
            call_delay_minutes: 20,
            report_lost: 0.03,
        }
    }
}

impl Rates {
    pub fn no_answer_at(&self, attempt: usize) -> f64 {
        self.no_answer.get(attempt.saturating_sub(1)).or(self.no_answer.last()).copied().unwrap_or(0.0)
    }
}

/// One input the senders will deliver, at its time: a webhook, (`View`) a dashboard read of a
/// case view, or (`Received`) a webhook replayed as a store accepted it (`followup-local export`),
/// on `stream` as far as its envelope names one.
#[derive(Debug, Clone)]
pub enum Step {
    Book { order: u32, visit: u8, window_start: DateTime<Utc>, technician: bool, discount: bool },
    Assign { order: u32 },
    Cancel { order: u32, by: &'static str, wants: bool, unsure: bool },
    Reschedule { order: u32, window_start: DateTime<Utc> },
    RescheduleRequest { order: u32 },
    Complete { order: u32, visit: u8, outcome: &'static str },
    PackageBook { package: u32, paid: bool, start: NaiveDate, card: bool, visits: u32 },
    PackagePaid { package: u32 },
    VisitDone { package: u32, visit: u32 },
    VisitCancel { package: u32, visit: u32 },
    VisitReschedule { package: u32, visit: u32, window_start: DateTime<Utc> },
    Call { case_id: String, call_id: String, answered: bool, resolution: Option<Value>, cost_told: bool },
    Reopen { case_id: String },
    View { case_id: String },
    Received { route: Route, stream: String, kind: String, body: String },
}

pub struct Scheduled {
    pub at: DateTime<Utc>,
    pub step: Step,
}

/// A visit window: two hours from `hour`:00 local.
const WINDOW_HOURS: i64 = 2;
/// Bookings arrive between 08:00 and 22:00 local, any day of the month.
const BOOKING_FIRST_HOUR: u32 = 8;
const BOOKING_SPAN_MINUTES: i64 = 14 * 60;
/// Visit start hours.
const VISIT_HOURS: [u32; 5] = [9, 11, 13, 15, 17];

fn local_at(cal: &Calendar, day: NaiveDate, hour: u32) -> DateTime<Utc> {
    cal.at(day, NaiveTime::from_hms_opt(hour, 0, 0).expect("a whole hour"))
}

fn booking_time(cal: &Calendar, rng: &mut Rng, first_day: NaiveDate, days: i64) -> DateTime<Utc> {
    let day = first_day + Duration::days(rng.range(0, days - 1));
    local_at(cal, day, BOOKING_FIRST_HOUR) + Duration::minutes(rng.range(0, BOOKING_SPAN_MINUTES - 1))
}

/// The plan of appointment `i` (its order `O<i>`, first visit `A<i>`).
pub fn appointment(cal: &Calendar, rates: &Rates, seed: u64, i: u32, first_day: NaiveDate, days: i64) -> Vec<Scheduled> {
    let mut rng = Rng::keyed(seed, &format!("appointment:{i}"));
    let booked = booking_time(cal, &mut rng, first_day, days);
    let day = cal.local_date(booked) + Duration::days(rng.range(1, 7));
    let window_start = local_at(cal, day, VISIT_HOURS[rng.range(0, 4) as usize]);
    let window_end = window_start + Duration::hours(WINDOW_HOURS);
    let unassigned = rng.chance(rates.unassigned);
    let never_assigned = unassigned && rng.chance(rates.never_assigned);
    let discount = rng.chance(rates.discounted);
    let mut plan = vec![Scheduled { at: booked, step: Step::Book { order: i, visit: 1, window_start, technician: !unassigned, discount } }];
    // Assigned before the R0.1 reminder at T-3h, and before anything else happens to it (an
    // assignment after a cancellation would be refused).
    let assigned = (unassigned && !never_assigned).then(|| rng.between(booked, window_start - Duration::hours(3), 0.05, 0.95));
    if let Some(at) = assigned {
        plan.push(Scheduled { at, step: Step::Assign { order: i } });
    }
    let after = assigned.unwrap_or(booked);
    let r = rng.unit();
    let (cancel, reschedule, request) =
        (rates.cancel, rates.cancel + rates.reschedule, rates.cancel + rates.reschedule + rates.reschedule_request);
    if r < cancel {
        let who = rng.unit();
        let by = if who < rates.cancel_by_customer {
            "customer"
        } else if who < rates.cancel_by_customer + rates.cancel_by_ops {
            "ops"
        } else {
            "no_show"
        };
        let wants = by == "customer" && rng.chance(rates.wants_follow_up);
        let unsure = rng.chance(rates.unsure);
        // A no-show is reported once the visit was due; the others before R0.2's T-1h.
        let at = if by == "no_show" {
            window_start + Duration::minutes(30)
        } else {
            rng.between(after, window_start - Duration::hours(1), 0.05, 0.95)
        };
        plan.push(Scheduled { at, step: Step::Cancel { order: i, by, wants, unsure } });
    } else if r < reschedule {
        // Not within 1.5 h of the start: R3.8 would replace the visit rather than move it.
        let at = rng.between(after, window_start - Duration::hours(2), 0.1, 0.9);
        let moved = window_start + Duration::days(rng.range(1, 3));
        plan.push(Scheduled { at, step: Step::Reschedule { order: i, window_start: moved } });
        if !never_assigned {
            plan.push(Scheduled {
                at: moved + Duration::hours(WINDOW_HOURS),
                step: Step::Complete { order: i, visit: 1, outcome: "done" },
            });
        }
    } else if r < request {
        // The outreach ends the story: the engine moves or cancels the appointment (R1.4–R1.6).
        let at = rng.between(after, window_start, 0.2, 0.8);
        plan.push(Scheduled { at, step: Step::RescheduleRequest { order: i } });
    } else if !never_assigned {
        let r = rng.unit();
        let outcome = if r < rates.second_visit {
            *["inspection", "incomplete"].get(rng.range(0, 1) as usize).unwrap_or(&"inspection")
        } else if r < rates.second_visit + rates.painting {
            "painting"
        } else {
            "done"
        };
        plan.push(Scheduled { at: window_end, step: Step::Complete { order: i, visit: 1, outcome } });
    }
    plan
}

/// The plan of package `i` (`P<i>`, visits `V1`…).
pub fn package(cal: &Calendar, rates: &Rates, seed: u64, i: u32, first_day: NaiveDate, days: i64) -> Vec<Scheduled> {
    let mut rng = Rng::keyed(seed, &format!("package:{i}"));
    let booked = booking_time(cal, &mut rng, first_day, days);
    let start = cal.local_date(booked) + Duration::days(rng.range(2, 4));
    let paid = !rng.chance(rates.unpaid);
    let card = rng.chance(0.6);
    let mut plan = vec![Scheduled { at: booked, step: Step::PackageBook { package: i, paid, start, card, visits: rates.visits } }];
    let pays = paid || rng.chance(rates.paid_late);
    if !paid && pays {
        // Before R4.4's day-before call at 09:00 (not reached there, the package is cancelled);
        // when that day is not a working day, R4.7 puts the deadline on the first call's day, so
        // a late payer pays within the half hour, and before 21:00 when booked before then.
        let day_before = start - Duration::days(1);
        let nine_pm = local_at(cal, cal.local_date(booked), 21);
        let deadline = match (cal.is_working_day(day_before), booked < nine_pm) {
            (true, _) => local_at(cal, day_before, 9),
            (false, true) => nine_pm.min(booked + Duration::minutes(30)),
            (false, false) => booked + Duration::minutes(30),
        };
        plan.push(Scheduled { at: rng.between(booked, deadline, 0.05, 0.95), step: Step::PackagePaid { package: i } });
    }
    if pays {
        let left = if rng.chance(rates.visits_left) { rng.range(1, 2.min(rates.visits as i64)) as u32 } else { 0 };
        let paid_at = plan.last().map_or(booked, |s| s.at);
        for v in 0..rates.visits.saturating_sub(left) {
            let visit = v + 1;
            let day = start + Duration::days(7 * v as i64);
            let window_start = local_at(cal, day, 10);
            // A change comes after the booking (and the payment) and within four days of the visit.
            let earliest = paid_at.max(window_start - Duration::days(4)) + Duration::minutes(5);
            let r = rng.unit();
            if r < rates.visit_cancel {
                // Up to an hour before the start: free, late or on the day (R6.1–R6.3), as it falls.
                let at = rng.between(earliest, window_start - Duration::hours(1), 0.0, 1.0);
                plan.push(Scheduled { at, step: Step::VisitCancel { package: i, visit } });
                continue;
            }
            let mut done_at = window_start + Duration::hours(WINDOW_HOURS);
            if r < rates.visit_cancel + rates.visit_reschedule {
                // By the evening before (R6.3 refuses a move on the day), one or two days later.
                let at = rng.between(earliest, local_at(cal, day - Duration::days(1), 20), 0.0, 1.0);
                let moved = local_at(cal, day + Duration::days(rng.range(1, 2)), 10);
                plan.push(Scheduled { at, step: Step::VisitReschedule { package: i, visit, window_start: moved } });
                done_at = moved + Duration::hours(WINDOW_HOURS);
            }
            plan.push(Scheduled { at: done_at, step: Step::VisitDone { package: i, visit } });
        }
    }
    plan
}

/// A case left waiting on the customer is re-opened, by the chance `reopen` keyed by the case,
/// on a day from `after_days` to two weeks past the day of the appointment it follows (R2.10).
pub fn reopen(cal: &Calendar, rates: &Rates, seed: u64, case_id: &str, appointment_day: NaiveDate, after_days: u32) -> Option<Scheduled> {
    let mut rng = Rng::keyed(seed, &format!("reopen:{case_id}"));
    if !rng.chance(rates.reopen) {
        return None;
    }
    let day = appointment_day + Duration::days(after_days as i64 + rng.range(0, 14));
    let at = local_at(cal, day, 11) + Duration::minutes(rng.range(0, 6 * 60));
    Some(Scheduled { at, step: Step::Reopen { case_id: case_id.to_owned() } })
}

/// The order number of a case id (`o2-O17` → 17).
pub fn order_of_case(case_id: &str) -> Option<u32> {
    case_id.split_once('-').and_then(|(_, o)| o.strip_prefix('O')).and_then(|n| n.parse().ok())
}

/// The simulated agent: the outcome of a call task on a case of `playbook`, attempt `attempt`.
/// Returns the report and, for a second visit agreed on the phone, the dashboard's booking of it;
/// nothing when the phone system loses the report (`report_lost`, R9.1).
pub fn answer(
    cal: &Calendar,
    rates: &Rates,
    seed: u64,
    case_id: &str,
    playbook: &str,
    attempt: usize,
    at: DateTime<Utc>,
) -> Vec<Scheduled> {
    if Rng::keyed(seed, &format!("lost:{case_id}:{attempt}")).chance(rates.report_lost) {
        return Vec::new();
    }
    let mut rng = Rng::keyed(seed, &format!("call:{case_id}:{attempt}"));
    let answered = !rng.chance(rates.no_answer_at(attempt));
    let call_id = format!("K-{case_id}-{attempt}");
    let new_day = cal.local_date(at) + Duration::days(rng.range(2, 4));
    let window_start = local_at(cal, new_day, 10);
    let rebooked = json!({"kind": "rebooked", "window_start": cal.rfc3339(window_start),
        "window_end": cal.rfc3339(window_start + Duration::hours(WINDOW_HOURS))});
    let declined = json!({"kind": "declined", "reason": "chose another date", "complaint": false, "follow_up": false});
    let rebook = rng.chance(rates.rebook);
    let resolution = match (answered, playbook) {
        (false, _) | (true, "appointment_watch") => None,
        (true, "package_payment") => Some(json!({"kind": "will_pay"})),
        (true, "package_expiry") => Some(rebooked.clone()),
        (true, _) if rebook => Some(rebooked.clone()),
        (true, _) => Some(declined),
    };
    let mut out = Vec::new();
    if answered && rebook && playbook == "second_visit_follow_up" {
        if let Some(order) = order_of_case(case_id) {
            out.push(Scheduled {
                at: at + Duration::minutes(30),
                step: Step::Book { order, visit: 2, window_start, technician: true, discount: false },
            });
            out.push(Scheduled {
                at: window_start + Duration::hours(WINDOW_HOURS),
                step: Step::Complete { order, visit: 2, outcome: "done" },
            });
        }
    }
    out.push(Scheduled {
        at,
        step: Step::Call {
            case_id: case_id.to_owned(),
            call_id,
            answered,
            resolution,
            cost_told: answered && playbook == "second_visit_follow_up",
        },
    });
    out
}

fn customer(kind: char, i: u32) -> Value {
    // Distinct numbers: the daily SMS cap (SPEC §4) is per number.
    let phone = format!("+20{}{:09}", if kind == 'a' { 10 } else { 11 }, i);
    let language = if i % 10 < 7 { "ar" } else { "en" };
    json!({"id": format!("C-{kind}{i}"), "name": format!("Customer {i}"), "phone": phone, "language": language})
}

fn appointment_id(order: u32, visit: u8) -> String {
    if visit == 1 {
        format!("A{order}")
    } else {
        format!("A{order}-{visit}")
    }
}

/// The stream an input lands on (`order:O1`, `package:P1`), without rendering it.
pub fn render_stream(step: &Step) -> String {
    match step {
        Step::Book { order, .. }
        | Step::Assign { order }
        | Step::Cancel { order, .. }
        | Step::Reschedule { order, .. }
        | Step::RescheduleRequest { order }
        | Step::Complete { order, .. } => format!("order:O{order}"),
        Step::PackageBook { package, .. }
        | Step::PackagePaid { package }
        | Step::VisitDone { package, .. }
        | Step::VisitCancel { package, .. }
        | Step::VisitReschedule { package, .. } => format!("package:P{package}"),
        Step::Call { case_id, .. } | Step::Reopen { case_id } | Step::View { case_id } => case_stream(case_id),
        Step::Received { stream, .. } => stream.clone(),
    }
}

fn case_stream(case_id: &str) -> String {
    followup::domain::subjects::snapshot::SubjectKey::of_case(case_id).map(|k| k.to_string()).unwrap_or_default()
}

/// R3.7 the job a painting visit quotes, varied by order: 1–4 days, a tax invoice every other order.
fn painting(order: u32) -> Value {
    json!({"days": 1 + order % 4, "total_price": {"amount": 1_200_000, "currency": "EGP"},
        "material_price": {"amount": 300_000, "currency": "EGP"}, "tax_invoice": order.is_multiple_of(2)})
}

/// The route, the stream it lands on, the event type and its `data` of a webhook (not `Step::View`).
pub fn render(cal: &Calendar, step: &Step) -> (Route, String, &'static str, Value) {
    let order_key = |o: &u32| format!("order:O{o}");
    match step {
        Step::Book { order, visit, window_start, technician, discount } => (
            Route::Appointments,
            order_key(order),
            "appointment.booked",
            json!({
                "appointment_id": appointment_id(*order, *visit), "order_id": format!("O{order}"), "customer": customer('a', *order),
                "area": "Cairo", "service": "AC maintenance", "price": {"amount": 45000, "currency": "EGP"},
                "window_start": cal.rfc3339(*window_start), "window_end": cal.rfc3339(*window_start + Duration::hours(WINDOW_HOURS)),
                "visit_number": visit, "technician_id": if *technician { json!("T-1") } else { Value::Null },
                "discount_percent": if *discount { 10 } else { 0 }
            }),
        ),
        Step::Assign { order } => (
            Route::Appointments,
            order_key(order),
            "appointment.assigned",
            json!({"appointment_id": appointment_id(*order, 1), "technician_id": "T-2"}),
        ),
        Step::Cancel { order, by, wants, unsure } => {
            let mut data = json!({"appointment_id": appointment_id(*order, 1), "cancelled_by": by, "reason": "customer travelling", "wants_follow_up": wants});
            if *unsure {
                data["availability"] = json!("unsure");
            }
            (Route::Cancellations, order_key(order), "appointment.cancelled", data)
        }
        Step::Reschedule { order, window_start } => (
            Route::Appointments,
            order_key(order),
            "appointment.rescheduled",
            json!({"appointment_id": appointment_id(*order, 1), "window_start": cal.rfc3339(*window_start),
                "window_end": cal.rfc3339(*window_start + Duration::hours(WINDOW_HOURS)), "requested_by": "customer"}),
        ),
        Step::RescheduleRequest { order } => (
            Route::Appointments,
            order_key(order),
            "appointment.reschedule_requested",
            json!({"appointment_id": appointment_id(*order, 1), "reason": "technician running late",
                "stf_link": format!("https://stf.example.com/r/A{order}")}),
        ),
        Step::Complete { order, visit, outcome } => {
            let mut data = json!({"appointment_id": appointment_id(*order, *visit), "outcome": outcome, "needs_material": false});
            if *outcome == "painting" {
                data["painting"] = painting(*order);
            }
            (Route::Appointments, order_key(order), "appointment.completed", data)
        }
        Step::PackageBook { package, paid, start, card, visits } => {
            let visits: Vec<Value> = (0..*visits)
                .map(|v| json!({"visit_id": format!("V{}", v + 1), "window_start": cal.rfc3339(local_at(cal, *start + Duration::days(7 * v as i64), 10))}))
                .collect();
            (
                Route::Packages,
                format!("package:P{package}"),
                "package.booked",
                json!({"package_id": format!("P{package}"), "customer": customer('p', *package), "area": "Cairo",
                    "price": {"amount": 200000, "currency": "EGP"}, "visits": visits, "start_date": start.to_string(),
                    "payment_method": if *card { "card" } else { "cash" }, "paid": paid}),
            )
        }
        Step::PackagePaid { package } => {
            (Route::Packages, format!("package:P{package}"), "package.paid", json!({"package_id": format!("P{package}")}))
        }
        Step::VisitDone { package, visit } => (
            Route::Packages,
            format!("package:P{package}"),
            "package_visit.completed",
            json!({"package_id": format!("P{package}"), "visit_id": format!("V{visit}")}),
        ),
        Step::VisitCancel { package, visit } => (
            Route::Cancellations,
            format!("package:P{package}"),
            "package_visit.cancelled",
            json!({"package_id": format!("P{package}"), "visit_id": format!("V{visit}")}),
        ),
        Step::VisitReschedule { package, visit, window_start } => (
            Route::Packages,
            format!("package:P{package}"),
            "package_visit.rescheduled",
            json!({"package_id": format!("P{package}"), "visit_id": format!("V{visit}"), "window_start": cal.rfc3339(*window_start)}),
        ),
        Step::Reopen { case_id } => (Route::Cancellations, case_stream(case_id), "case.reopen", json!({"case_id": case_id})),
        Step::View { .. } => unreachable!("a case view is a read: `perform` serves it without rendering a webhook"),
        Step::Received { .. } => unreachable!("a replayed webhook goes as received: `perform` sends its body without rendering it"),
        Step::Call { case_id, call_id, answered, resolution, cost_told } => {
            let stream = case_stream(case_id);
            let outcome = if *answered { "answered" } else { "no_answer" };
            let mut data = json!({"case_id": case_id, "call_id": call_id, "agent_id": "agent-7", "outcome": outcome});
            if let Some(r) = resolution {
                data["resolution"] = r.clone();
            }
            if *cost_told {
                // R3.3: a reached second-visit call tells the cost.
                data["cost_told"] = json!(true);
            }
            (Route::Calls, stream, "call.completed", data)
        }
    }
}
