//! The case store over SQLite: streams, deliveries, the subject index, pending effects and the daily SMS counts.

use super::effects::Performed;
use super::{decode, encode, exec, one, sql, SqliteStore};
use crate::domain::effects::Effect;
use crate::domain::subjects::snapshot::{Snapshot, SubjectKey};
use crate::ports::{CaseStore, Commit, CommitError, Delivery, PendingEffect, StoreError};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::{params, Connection};
use std::collections::BTreeMap;

impl CaseStore for SqliteStore {
    async fn locate(&self, subject: &str) -> Result<Option<SubjectKey>, StoreError> {
        let subject = subject.to_owned();
        self.point(move |conn| {
            let key: Option<String> = one(conn, "SELECT stream_key FROM subject_index WHERE subject = ?1", [&subject], |r| r.get(0))
                .map_err(sql("reading subject_index"))?;
            key.map(|k| {
                SubjectKey::parse(&k).ok_or_else(|| StoreError::Corrupt(format!("subject {subject:?} points at {k:?}, not a stream key")))
            })
            .transpose()
        })
        .await
    }

    async fn load(&self, key: &SubjectKey) -> Result<Option<Snapshot>, StoreError> {
        let key = key.to_string();
        self.point(move |conn| {
            let doc: Option<String> = one(conn, "SELECT doc FROM streams WHERE key = ?1", [&key], |r| r.get(0))
                .map_err(sql(format_args!("loading stream {key}")))?;
            doc.map(|d| decode(&d, format_args!("stream {key}"))).transpose()
        })
        .await
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let id = id.to_owned();
        self.point(move |conn| read_delivery(conn, &id)).await
    }

    async fn sms_counts(&self, phones: &[String], day: NaiveDate) -> Result<BTreeMap<String, u32>, StoreError> {
        let (phones, day) = (phones.to_vec(), day.to_string());
        self.point(move |conn| {
            let mut counts = BTreeMap::new();
            for phone in phones {
                if let Some(n) = read_sms_count(conn, &phone, &day)? {
                    counts.insert(phone, n);
                }
            }
            Ok(counts)
        })
        .await
    }

    async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        let key = commit.stream.key.to_string();
        let stream_doc = encode(&commit.stream, "stream")?;
        let next_due_ms = commit.stream.next_due().map(|d| d.timestamp_millis());
        let console = crate::console::project(&commit.stream);
        let accepted_at = commit.delivery.accepted_at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        // The webhook's envelope as received, when this commit decides one (a fired timer has none).
        let received = commit
            .received
            .as_ref()
            .map(|r| (r.route, r.occurred_at.to_rfc3339_opts(SecondsFormat::AutoSi, true), String::from_utf8_lossy(&r.body).into_owned()));
        // Effects performed here need no pending row: the timer table and the outboxes hold what
        // they did, and the case timeline records each. Otherwise each waits in `effects` for
        // the engine to perform it, and stays there, done, as the audit trail.
        let (effects, performed) = if self.performs_effects {
            (Vec::new(), commit.effects.iter().map(|e| Performed::of(&e.id, &e.effect)).collect::<Result<Vec<_>, StoreError>>()?)
        } else {
            let pending = commit.effects.iter().map(|e| Ok((e.id.clone(), encode(&e.effect, "effect")?)));
            (pending.collect::<Result<Vec<_>, StoreError>>()?, Vec::new())
        };
        self.write(move |tx| {
            // Inside the group commit's transaction: its checks see every write before it. Every
            // check comes before the first write, so a refused commit leaves nothing behind.
            if let Some(existing) = read_delivery(tx, &commit.delivery.id)? {
                return Err(CommitError::DuplicateDelivery(existing));
            }
            let current: Option<u64> = one(tx, "SELECT version FROM streams WHERE key = ?1", [&key], |r| r.get(0))
                .map_err(sql(format_args!("reading the version of {key}")))?;
            if current != commit.expected_version {
                return Err(CommitError::Conflict);
            }
            for c in &commit.sms_counts {
                if read_sms_count(tx, &c.phone, &c.day.to_string())?.unwrap_or(0) != c.held {
                    return Err(CommitError::Conflict);
                }
            }
            let mut unindexed = Vec::with_capacity(commit.index.len());
            for subject in &commit.index {
                let holder: Option<String> = one(tx, "SELECT stream_key FROM subject_index WHERE subject = ?1", [subject], |r| r.get(0))
                    .map_err(sql(format_args!("reading the index of {subject}")))?;
                match holder {
                    Some(other) if other != key => return Err(CommitError::SubjectTaken(subject.clone())),
                    Some(_) => {}
                    None => unindexed.push(subject),
                }
            }
            exec(
                tx,
                "INSERT INTO streams (key, version, doc, next_due_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET version = excluded.version, doc = excluded.doc, next_due_ms = excluded.next_due_ms",
                params![key, commit.stream.version, stream_doc, next_due_ms],
            )
            .map_err(sql(format_args!("writing stream {key}")))?;
            super::console::write(tx, &key, &console)?;
            let d = &commit.delivery;
            exec(
                tx,
                "INSERT INTO deliveries (id, body_hash, case_id, accepted_at) VALUES (?1, ?2, ?3, ?4)",
                params![d.id, d.body_hash, d.case_id, accepted_at],
            )
            .map_err(sql(format_args!("recording delivery {}", d.id)))?;
            if let Some((route, occurred_at, body)) = &received {
                exec(
                    tx,
                    "INSERT INTO inputs (delivery_id, route, occurred_at, body) VALUES (?1, ?2, ?3, ?4)",
                    params![d.id, route, occurred_at, body],
                )
                .map_err(sql(format_args!("keeping the envelope of {}", d.id)))?;
            }
            for subject in unindexed {
                exec(tx, "INSERT INTO subject_index (subject, stream_key) VALUES (?1, ?2)", params![subject, key])
                    .map_err(sql(format_args!("indexing {subject}")))?;
            }
            for c in &commit.sms_counts {
                exec(
                    tx,
                    "INSERT INTO sms_daily (phone, day, count) VALUES (?1, ?2, ?3)
                     ON CONFLICT (phone, day) DO UPDATE SET count = excluded.count",
                    params![c.phone, c.day.to_string(), c.count],
                )
                .map_err(sql(format_args!("counting the SMS of {}", c.day)))?;
            }
            for (id, doc) in &effects {
                exec(tx, "INSERT INTO effects (id, doc) VALUES (?1, ?2)", params![id, doc])
                    .map_err(sql(format_args!("recording effect {id}")))?;
            }
            for effect in &performed {
                effect.perform(tx)?;
            }
            Ok(())
        })
        .await
    }

    fn performs_effects(&self) -> bool {
        self.performs_effects
    }

    /// Every accepted webhook goes to the `inputs` table, for `followup-local export`.
    fn keeps_inputs(&self) -> bool {
        true
    }

    async fn pending_effects(&self, limit: usize) -> Result<Vec<PendingEffect>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |conn| {
            let what = "listing pending effects";
            let mut stmt = conn.prepare_cached("SELECT id, doc FROM effects WHERE done = 0 ORDER BY seq LIMIT ?1").map_err(sql(what))?;
            let rows = stmt
                .query_map([limit], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql(what))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql(what))?;
            rows.into_iter()
                .map(|(id, doc)| {
                    let effect: Effect = decode(&doc, format_args!("effect {id}"))?;
                    Ok(PendingEffect { id, effect })
                })
                .collect()
        })
        .await
    }

    async fn effect_done(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write(move |conn| {
            exec(conn, "UPDATE effects SET done = 1 WHERE id = ?1", [&id]).map(drop).map_err(sql(format_args!("marking effect {id} done")))
        })
        .await
    }

    async fn overdue(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<Vec<SubjectKey>, StoreError> {
        let (cutoff, limit) = (cutoff.timestamp_millis(), i64::try_from(limit).unwrap_or(i64::MAX));
        self.run(move |conn| {
            let what = "listing snapshots with an overdue timer";
            // The partial index holds only snapshots that wait on a timer.
            let mut stmt = conn
                .prepare_cached("SELECT key FROM streams WHERE next_due_ms IS NOT NULL AND next_due_ms <= ?1 ORDER BY next_due_ms LIMIT ?2")
                .map_err(sql(what))?;
            let keys = stmt.query_map(params![cutoff, limit], |r| r.get::<_, String>(0)).map_err(sql(what))?;
            keys.map(|k| {
                let k = k.map_err(sql(what))?;
                SubjectKey::parse(&k).ok_or_else(|| StoreError::Corrupt(format!("{k:?} is not a stream key")))
            })
            .collect()
        })
        .await
    }

    async fn subjects_with_prefix(&self, prefix: &str) -> Result<Vec<(String, SubjectKey)>, StoreError> {
        let (low, high) = (prefix.to_owned(), prefix_end(prefix));
        self.run(move |conn| {
            let what = "listing subject_index by prefix";
            // A range on the primary key: only the entries under the prefix are read.
            let mut stmt = conn
                .prepare_cached("SELECT subject, stream_key FROM subject_index WHERE subject >= ?1 AND subject < ?2 ORDER BY subject")
                .map_err(sql(what))?;
            let rows = stmt
                .query_map(params![low, high], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql(what))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql(what))?;
            rows.into_iter()
                .map(|(subject, key)| {
                    let stream = SubjectKey::parse(&key)
                        .ok_or_else(|| StoreError::Corrupt(format!("subject {subject:?} points at {key:?}, not a stream key")))?;
                    Ok((subject, stream))
                })
                .collect()
        })
        .await
    }
}

/// SPEC §4 (v3) one number's SMS count on one local day, if any were sent.
fn read_sms_count(conn: &Connection, phone: &str, day: &str) -> Result<Option<u32>, StoreError> {
    one(conn, "SELECT count FROM sms_daily WHERE phone = ?1 AND day = ?2", [phone, day], |r| r.get(0))
        .map_err(sql("reading the daily SMS count"))
}

/// The smallest string above every string that starts with `prefix` (SQLite compares TEXT bytewise).
fn prefix_end(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32) {
            chars.push(next);
            return chars.into_iter().collect();
        }
    }
    // Only a prefix of nothing but char::MAX gets here; every subject sorts below this.
    format!("{prefix}{}", char::MAX)
}

fn read_delivery(conn: &Connection, id: &str) -> Result<Option<Delivery>, StoreError> {
    let row: Option<(String, String, Option<String>, String)> =
        one(conn, "SELECT id, body_hash, case_id, accepted_at FROM deliveries WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .map_err(sql(format_args!("reading delivery {id}")))?;
    row.map(|(id, body_hash, case_id, accepted_at)| {
        let accepted_at = DateTime::parse_from_rfc3339(&accepted_at)
            .map_err(|e| StoreError::Corrupt(format!("delivery {id}: accepted_at {accepted_at:?}: {e}")))?
            .with_timezone(&Utc);
        Ok(Delivery { id, body_hash, case_id, accepted_at })
    })
    .transpose()
}
