//! Timers and the SMS / command outboxes: the effects the local runtime performs, and what its runner and `GET /local/*` read back.

use super::{decode, effect_error, encode, exec, query_docs, sql, SqliteStore};
use crate::domain::effects::{Command, Effect, Sms, TimerRef, TimerSpec};
use crate::ports::{CommandBus, EffectError, SmsSender, StoreError, Timers};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

/// A webhook the store accepted, as it was received (a row of `inputs`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AcceptedInput {
    pub delivery_id: String,
    /// The route's path (`/v1/appointments`).
    pub route: String,
    /// The envelope's `occurred_at`, RFC 3339.
    pub occurred_at: String,
    /// The raw envelope, as the sender signed it.
    pub body: String,
}

impl SqliteStore {
    /// When the earliest timer falls due, so the runner can sleep until then.
    pub async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.run(|conn| {
            // The index is at millisecond precision: the exact earliest is among that millisecond's timers.
            let first: Vec<TimerSpec> =
                query_docs(conn, "SELECT doc FROM timers WHERE due_at_ms = (SELECT MIN(due_at_ms) FROM timers)", "reading the next timer")?;
            Ok(first.into_iter().map(|t| t.due_at).min())
        })
        .await
    }

    /// Up to `limit` timers due at or before `upto` (exactly), earliest first. Timers
    /// due within the same millisecond come in the order they were placed.
    pub async fn due_timers(&self, upto: DateTime<Utc>, limit: usize) -> Result<Vec<TimerSpec>, StoreError> {
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT doc FROM timers WHERE due_at_ms <= ?1 ORDER BY due_at_ms, seq")
                .map_err(sql("listing due timers"))?;
            let mut rows = stmt.query([upto.timestamp_millis()]).map_err(sql("listing due timers"))?;
            let mut due = Vec::new();
            while due.len() < limit {
                let Some(row) = rows.next().map_err(sql("listing due timers"))? else { break };
                let spec: TimerSpec = decode(&row.get::<_, String>(0).map_err(sql("listing due timers"))?, "timer")?;
                // The index is at millisecond precision; the document holds the exact instant.
                if spec.due_at <= upto {
                    due.push(spec);
                }
            }
            Ok(due)
        })
        .await
    }

    /// Forgets a timer once it has fired; absent is fine.
    pub async fn remove_timer(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.write(move |conn| delete_timer(conn, &name)).await
    }

    /// Every pending timer, in firing order.
    pub async fn timers(&self) -> Result<Vec<TimerSpec>, StoreError> {
        self.run(|conn| query_docs(conn, "SELECT doc FROM timers ORDER BY due_at_ms, seq", "listing timers")).await
    }

    /// Every SMS sent, in send order (`GET /local/sms`).
    pub async fn sms_outbox(&self) -> Result<Vec<Sms>, StoreError> {
        self.run(|conn| query_docs(conn, "SELECT doc FROM sms_outbox ORDER BY seq", "listing sms_outbox")).await
    }

    /// Every webhook accepted, as received, in the order accepted (`followup-local export`).
    pub async fn accepted_inputs(&self) -> Result<Vec<AcceptedInput>, StoreError> {
        self.run(|conn| {
            let what = "listing inputs";
            let mut stmt = conn.prepare("SELECT delivery_id, route, occurred_at, body FROM inputs ORDER BY seq").map_err(sql(what))?;
            let rows = stmt
                .query_map([], |r| Ok(AcceptedInput { delivery_id: r.get(0)?, route: r.get(1)?, occurred_at: r.get(2)?, body: r.get(3)? }))
                .map_err(sql(what))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql(what))
        })
        .await
    }

    /// Every command published, in emit order (`GET /local/commands`).
    pub async fn commands(&self) -> Result<Vec<Command>, StoreError> {
        self.run(|conn| query_docs(conn, "SELECT doc FROM command_outbox ORDER BY seq", "listing command_outbox")).await
    }

    /// Appends to an outbox unless this effect was already delivered there, and marks the effect
    /// done in the same write: sent and done are one fact here.
    async fn append_outbox(&self, outbox: Outbox, effect_id: &str, doc: String, sent: Option<Sent>) -> Result<(), EffectError> {
        let effect_id = effect_id.to_owned();
        self.write(move |conn| {
            append(conn, outbox, &effect_id, &doc, sent.as_ref())?;
            exec(conn, "UPDATE effects SET done = 1 WHERE id = ?1", [&effect_id])
                .map(drop)
                .map_err(sql(format_args!("marking effect {effect_id} done")))
        })
        .await
        .map_err(effect_error)
    }
}

impl Timers for SqliteStore {
    async fn place(&self, timer: &TimerSpec) -> Result<(), EffectError> {
        let placed = Performed::of("", &Effect::PlaceTimer(timer.clone())).map_err(effect_error)?;
        self.write(move |conn| placed.perform(conn)).await.map_err(effect_error)
    }

    async fn cancel(&self, timer: &TimerRef) -> Result<(), EffectError> {
        let name = timer.name();
        self.write(move |conn| delete_timer(conn, &name)).await.map_err(effect_error)
    }
}

impl SmsSender for SqliteStore {
    const MARKS_DONE: bool = true;
    async fn send(&self, effect_id: &str, sms: &Sms) -> Result<(), EffectError> {
        let doc = encode(sms, "sms").map_err(effect_error)?;
        self.append_outbox(Outbox::Sms, effect_id, doc, Some(Sent::of(sms))).await
    }
}

impl CommandBus for SqliteStore {
    const MARKS_DONE: bool = true;
    async fn publish(&self, effect_id: &str, command: &Command) -> Result<(), EffectError> {
        let doc = encode(command, "command").map_err(effect_error)?;
        self.append_outbox(Outbox::Commands, effect_id, doc, None).await
    }
}

/// An effect as the local runtime performs it: a row of the timer table or an outbox, ready to write.
pub(super) enum Performed {
    PlaceTimer { name: String, due_at_ms: i64, doc: String },
    CancelTimer { name: String },
    Append { outbox: Outbox, effect_id: String, doc: String, sent: Option<Sent> },
}

/// An SMS's send time and case, kept beside its row for the console (today's SMS, a case's SMS).
pub(super) struct Sent {
    at_ms: i64,
    case_id: Option<String>,
}

impl Sent {
    fn of(sms: &Sms) -> Sent {
        Sent { at_ms: sms.at.timestamp_millis(), case_id: sms.case_id.clone() }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Outbox {
    Sms,
    Commands,
}

impl Outbox {
    fn table(self) -> &'static str {
        match self {
            Outbox::Sms => "sms_outbox",
            Outbox::Commands => "command_outbox",
        }
    }

    /// Appends unless this effect was already delivered there.
    fn insert(self) -> &'static str {
        match self {
            Outbox::Sms => "INSERT OR IGNORE INTO sms_outbox (effect_id, doc, at_ms, case_id) VALUES (?1, ?2, ?3, ?4)",
            Outbox::Commands => "INSERT OR IGNORE INTO command_outbox (effect_id, doc) VALUES (?1, ?2)",
        }
    }
}

impl Performed {
    pub(super) fn of(effect_id: &str, effect: &Effect) -> Result<Performed, StoreError> {
        Ok(match effect {
            Effect::PlaceTimer(t) => {
                Performed::PlaceTimer { name: t.timer.name(), due_at_ms: t.due_at.timestamp_millis(), doc: encode(t, "timer")? }
            }
            Effect::CancelTimer(t) => Performed::CancelTimer { name: t.name() },
            Effect::SendSms(sms) => Performed::Append {
                outbox: Outbox::Sms,
                effect_id: effect_id.to_owned(),
                doc: encode(sms, "sms")?,
                sent: Some(Sent::of(sms)),
            },
            Effect::Emit(cmd) => {
                Performed::Append { outbox: Outbox::Commands, effect_id: effect_id.to_owned(), doc: encode(cmd, "command")?, sent: None }
            }
        })
    }

    pub(super) fn perform(&self, conn: &Connection) -> Result<(), StoreError> {
        match self {
            // MAX(seq) + 1 only has to order the live timers, and a removed maximum leaves none behind it.
            Performed::PlaceTimer { name, due_at_ms, doc } => exec(
                conn,
                "INSERT OR IGNORE INTO timers (name, seq, due_at_ms, doc)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM timers), ?2, ?3)",
                params![name, due_at_ms, doc],
            )
            .map(drop)
            .map_err(sql(format_args!("placing timer {name}"))),
            Performed::CancelTimer { name } => delete_timer(conn, name),
            Performed::Append { outbox, effect_id, doc, sent } => append(conn, *outbox, effect_id, doc, sent.as_ref()),
        }
    }
}

/// Appends to an outbox unless this effect was already delivered there.
fn append(conn: &Connection, outbox: Outbox, effect_id: &str, doc: &str, sent: Option<&Sent>) -> Result<(), StoreError> {
    let appended = match sent {
        Some(s) => exec(conn, outbox.insert(), params![effect_id, doc, s.at_ms, s.case_id]),
        None => exec(conn, outbox.insert(), params![effect_id, doc]),
    };
    appended.map(drop).map_err(sql(format_args!("appending to {}", outbox.table())))
}

fn delete_timer(conn: &Connection, name: &str) -> Result<(), StoreError> {
    exec(conn, "DELETE FROM timers WHERE name = ?1", [name]).map(drop).map_err(sql(format_args!("removing timer {name}")))
}

impl crate::adapters::embedded::EmbeddedStore for SqliteStore {
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        SqliteStore::next_due_at(self).await
    }
    async fn due_timers(&self, upto: DateTime<Utc>, limit: usize) -> Result<Vec<TimerSpec>, StoreError> {
        SqliteStore::due_timers(self, upto, limit).await
    }
    async fn remove_timer(&self, name: &str) -> Result<(), StoreError> {
        SqliteStore::remove_timer(self, name).await
    }
    async fn timers(&self) -> Result<Vec<TimerSpec>, StoreError> {
        SqliteStore::timers(self).await
    }
    async fn sms_outbox(&self) -> Result<Vec<Sms>, StoreError> {
        SqliteStore::sms_outbox(self).await
    }
    async fn commands(&self) -> Result<Vec<Command>, StoreError> {
        SqliteStore::commands(self).await
    }
}
