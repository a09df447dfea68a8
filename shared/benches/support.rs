//! What both benchmarks build: an engine on a SQLite file, and the inputs of one cancelled first visit.

use chrono::{DateTime, Utc};
use followup::adapters::local::{LocalPorts, SqliteStore};
use followup::domain::events::{AppointmentBooked, AppointmentCancelled, CancelledBy, Event, EventBody, Input};
use followup::domain::money::Money;
use followup::domain::policy::Policy;
use followup::domain::records::case::{Customer, Language};
use followup::engine::Engine;
use followup::ports::SystemClock;
use std::sync::Arc;

pub type BenchEngine = Engine<LocalPorts<SystemClock>>;

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("RFC 3339").with_timezone(&Utc)
}

/// The engine as followup-local runs it (WAL, synchronous=FULL, each commit performing its
/// effects in the same transaction), on the real clock.
pub fn engine(dir: &std::path::Path) -> BenchEngine {
    let store = SqliteStore::open(dir).expect("open store").performing_effects();
    Engine {
        timers: store.clone(),
        sms: store.clone(),
        commands: store.clone(),
        store,
        clock: SystemClock,
        policy: Arc::new(Policy::default()),
        secret: String::new(),
        locks: Default::default(),
    }
}

/// A first visit of `order`, assigned, booked for 2026-12-05.
pub fn booked(order: &str) -> Input {
    Input::Event(Event {
        id: format!("b-{order}"),
        occurred_at: t("2026-03-02T10:00:00+02:00"),
        body: EventBody::from(AppointmentBooked {
            appointment_id: format!("A-{order}"),
            order_id: order.into(),
            customer: Customer { id: "C".into(), name: "Mona".into(), phone: "+201001234567".into(), language: Language::Ar },
            area: "Cairo".into(),
            service: "AC".into(),
            price: Money::new(45_000, "EGP"),
            window_start: t("2026-12-05T10:00:00+02:00"),
            window_end: t("2026-12-05T12:00:00+02:00"),
            visit_number: 1,
            technician_id: Some("T1".into()),
            discount_percent: 0,
        }),
    })
}

/// The customer cancels it and wants a follow-up: a case opens with an SMS and two timers (R2.1–R2.5).
pub fn cancelled(order: &str) -> Input {
    Input::Event(Event {
        id: format!("c-{order}"),
        occurred_at: t("2026-03-02T10:00:00+02:00"),
        body: EventBody::from(AppointmentCancelled {
            appointment_id: format!("A-{order}"),
            cancelled_by: CancelledBy::Customer,
            reason: "travelling".into(),
            wants_follow_up: true,
            availability: None,
        }),
    })
}

pub fn delivery_id(input: &Input) -> String {
    match input {
        Input::Event(e) => e.id.clone(),
        Input::Timer(t) => format!("timer:{}", t.name()),
    }
}
