//! The console's read model over SQLite: written in each snapshot's commit, read by index ranges.

use super::{decode, exec, sql, SqliteStore};
use crate::console::{Breach, CaseFilter, CaseRow, ConsoleReads, Deadline, Projection, SmsStop, StoppedSms};
use crate::domain::effects::Sms;
use crate::domain::subjects::snapshot::Snapshot;
use crate::ports::StoreError;
use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, Row};

/// Writes what `projection` (of the snapshot under `stream_key`) adds to the read model, in the
/// commit's transaction. A case's row is replaced, the snapshot's pending deadlines are replaced,
/// breaches and stopped SMS are appended once each (keyed by their timeline line).
pub(super) fn write(conn: &Connection, stream_key: &str, p: &Projection) -> Result<(), StoreError> {
    let what = "writing the console read model";
    for c in &p.cases {
        exec(
            conn,
            "INSERT INTO console_cases (case_id, stream_key, playbook, state, status, priority, area, grp, customer, opened_ms, task_due_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (case_id) DO UPDATE SET state = excluded.state, status = excluded.status, priority = excluded.priority,
               area = excluded.area, grp = excluded.grp, customer = excluded.customer, task_due_ms = excluded.task_due_ms",
            params![
                c.case_id,
                c.stream_key,
                c.playbook.as_str(),
                c.state,
                c.status.as_str(),
                c.priority.as_str(),
                c.area,
                c.group.as_str(),
                c.customer_name,
                c.opened_at.timestamp_millis(),
                c.task_due.map(|d| d.timestamp_millis()),
            ],
        )
        .map_err(sql(what))?;
    }
    exec(conn, "DELETE FROM console_deadlines WHERE stream_key = ?1", [stream_key]).map_err(sql(what))?;
    for d in &p.deadlines {
        exec(
            conn,
            "INSERT OR REPLACE INTO console_deadlines (stream_key, case_id, kind, step, subject, due_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![d.stream_key, d.case_id.as_deref().unwrap_or(""), d.kind.as_str(), d.step, d.subject, d.due_at.timestamp_millis()],
        )
        .map_err(sql(what))?;
    }
    for b in &p.breaches {
        exec(
            conn,
            "INSERT OR IGNORE INTO console_breaches (case_id, line, kind, at_ms, action) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![b.case_id, b.line, b.kind.as_str(), b.at.timestamp_millis(), b.action],
        )
        .map_err(sql(what))?;
    }
    for s in &p.stopped {
        exec(
            conn,
            "INSERT OR IGNORE INTO console_sms_stops (case_id, line, at_ms, stop, template, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![s.case_id, s.line, s.at.timestamp_millis(), s.stop.as_str(), s.template, s.detail],
        )
        .map_err(sql(what))?;
    }
    Ok(())
}

/// Builds the read model of a data dir written before it existed: every snapshot projected, every
/// sent SMS given its time and case. Runs once, inside the schema migration.
pub(super) fn backfill(conn: &Connection) -> Result<(), StoreError> {
    let what = "building the console read model";
    let streams: Vec<(String, String)> = {
        let mut stmt = conn.prepare("SELECT key, doc FROM streams").map_err(sql(what))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(sql(what))?;
        rows.collect::<Result<_, _>>().map_err(sql(what))?
    };
    for (key, doc) in streams {
        let snapshot: Snapshot = decode(&doc, format_args!("stream {key}"))?;
        write(conn, &key, &crate::console::project(&snapshot))?;
    }
    let sms: Vec<(i64, String)> = {
        let mut stmt = conn.prepare("SELECT seq, doc FROM sms_outbox WHERE at_ms IS NULL").map_err(sql(what))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(sql(what))?;
        rows.collect::<Result<_, _>>().map_err(sql(what))?
    };
    for (seq, doc) in sms {
        let sms: Sms = decode(&doc, format_args!("sms {seq}"))?;
        exec(conn, "UPDATE sms_outbox SET at_ms = ?1, case_id = ?2 WHERE seq = ?3", params![sms.at.timestamp_millis(), sms.case_id, seq])
            .map_err(sql(what))?;
    }
    Ok(())
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn parsed<T: std::str::FromStr<Err = String>>(text: String, what: &str) -> Result<T, StoreError> {
    text.parse().map_err(|e| StoreError::Corrupt(format!("console read model, {what}: {e}")))
}

const CASE_COLUMNS: &str = "case_id, stream_key, playbook, state, status, priority, area, grp, customer, opened_ms, task_due_ms";

/// The raw columns of a `console_cases` row, typed once it is out of rusqlite.
type CaseColumns = (String, String, String, String, String, String, String, String, String, i64, Option<i64>);

fn case_columns(r: &Row<'_>) -> rusqlite::Result<CaseColumns> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?))
}

fn case_row(c: CaseColumns) -> Result<CaseRow, StoreError> {
    let (case_id, stream_key, playbook, state, status, priority, area, group, customer_name, opened, task) = c;
    Ok(CaseRow {
        case_id,
        stream_key,
        playbook: parsed(playbook, "playbook")?,
        state,
        status: parsed(status, "status")?,
        priority: parsed(priority, "priority")?,
        area,
        group: parsed(group, "group")?,
        customer_name,
        opened_at: at(opened),
        task_due: task.map(at),
    })
}

/// Every row `query` answers for `params`, each through `row`.
fn rows<T, P: rusqlite::Params>(
    conn: &Connection,
    query: &str,
    params: P,
    row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let what = "reading the console read model";
    let mut stmt = conn.prepare_cached(query).map_err(sql(what))?;
    let found = stmt.query_map(params, row).map_err(sql(what))?.collect::<Result<Vec<_>, _>>().map_err(sql(what));
    found
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The console's queries, each answered from an index (see the `explain` test below).
pub(super) mod queries {
    pub const CALL_TASKS: &str =
        "SELECT case_id, stream_key, playbook, state, status, priority, area, grp, customer, opened_ms, task_due_ms
         FROM console_cases WHERE task_due_ms IS NOT NULL AND task_due_ms <= ?1 ORDER BY task_due_ms LIMIT ?2";
    pub const DEADLINES: &str = "SELECT stream_key, case_id, kind, step, subject, due_ms FROM console_deadlines
         WHERE due_ms >= ?1 AND due_ms < ?2 ORDER BY due_ms LIMIT ?3";
    pub const BREACHES: &str =
        "SELECT case_id, line, kind, at_ms, action FROM console_breaches WHERE at_ms >= ?1 ORDER BY at_ms DESC LIMIT ?2";
    pub const SMS_SENT: &str = "SELECT doc FROM sms_outbox WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY at_ms, seq";
    pub const SMS_OF_CASE: &str = "SELECT doc FROM sms_outbox WHERE case_id = ?1 ORDER BY seq";
    pub const SMS_STOPPED: &str = "SELECT case_id, line, at_ms, stop, template, detail FROM console_sms_stops
         WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY at_ms, case_id, line";
}

/// The case list's query for `filter`, with its parameters: the filters given, newest first.
pub(super) fn find_cases_query(filter: &CaseFilter) -> (String, Vec<SqlValue>) {
    let mut clauses = Vec::new();
    let mut values = Vec::new();
    let mut add = |column: &str, value: Option<String>| {
        if let Some(v) = value {
            values.push(SqlValue::Text(v));
            clauses.push(format!("{column} = ?{}", values.len()));
        }
    };
    add("playbook", filter.playbook.map(|p| p.as_str().to_string()));
    add("state", filter.state.clone());
    add("status", filter.status.map(|s| s.as_str().to_string()));
    add("area", filter.area.clone());
    let filters = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
    values.push(SqlValue::Integer(limit(filter.limit)));
    let query = format!("SELECT {CASE_COLUMNS} FROM console_cases{filters} ORDER BY opened_ms DESC LIMIT ?{}", values.len());
    (query, values)
}

impl ConsoleReads for SqliteStore {
    async fn call_tasks(&self, upto: DateTime<Utc>, n: usize) -> Result<Vec<CaseRow>, StoreError> {
        self.run(move |conn| {
            rows(conn, queries::CALL_TASKS, params![upto.timestamp_millis(), limit(n)], case_columns)?.into_iter().map(case_row).collect()
        })
        .await
    }

    async fn deadlines(&self, from: DateTime<Utc>, to: DateTime<Utc>, n: usize) -> Result<Vec<Deadline>, StoreError> {
        self.run(move |conn| {
            let found = rows(conn, queries::DEADLINES, params![from.timestamp_millis(), to.timestamp_millis(), limit(n)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })?;
            found
                .into_iter()
                .map(|(stream_key, case_id, kind, step, subject, due)| {
                    Ok(Deadline {
                        stream_key,
                        case_id: Some(case_id).filter(|c| !c.is_empty()),
                        subject,
                        kind: parsed(kind, "deadline kind")?,
                        step,
                        due_at: at(due),
                    })
                })
                .collect()
        })
        .await
    }

    async fn breaches(&self, since: DateTime<Utc>, n: usize) -> Result<Vec<Breach>, StoreError> {
        self.run(move |conn| {
            let found = rows(conn, queries::BREACHES, params![since.timestamp_millis(), limit(n)], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, String>(2)?, r.get(3)?, r.get(4)?))
            })?;
            found
                .into_iter()
                .map(|(case_id, line, kind, ms, action)| {
                    Ok(Breach { case_id, line, kind: parsed(kind, "breach kind")?, at: at(ms), action })
                })
                .collect()
        })
        .await
    }

    async fn find_cases(&self, filter: &CaseFilter) -> Result<Vec<CaseRow>, StoreError> {
        let (query, values) = find_cases_query(filter);
        self.run(move |conn| rows(conn, &query, params_from_iter(values), case_columns)?.into_iter().map(case_row).collect()).await
    }

    async fn sms_sent(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Sms>, StoreError> {
        self.run(move |conn| {
            let docs = rows(conn, queries::SMS_SENT, params![from.timestamp_millis(), to.timestamp_millis()], |r| r.get::<_, String>(0))?;
            docs.iter().map(|d| decode(d, "sms_outbox")).collect()
        })
        .await
    }

    async fn sms_of_case(&self, case_id: &str) -> Result<Vec<Sms>, StoreError> {
        let case_id = case_id.to_owned();
        self.run(move |conn| {
            let docs = rows(conn, queries::SMS_OF_CASE, [&case_id], |r| r.get::<_, String>(0))?;
            docs.iter().map(|d| decode(d, "sms_outbox")).collect()
        })
        .await
    }

    async fn sms_stopped(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<StoppedSms>, StoreError> {
        self.run(move |conn| {
            let found = rows(conn, queries::SMS_STOPPED, params![from.timestamp_millis(), to.timestamp_millis()], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?, r.get(4)?, r.get(5)?))
            })?;
            found
                .into_iter()
                .map(|(case_id, line, ms, stop, template, detail)| {
                    Ok(StoppedSms { case_id, line, at: at(ms), stop: parsed::<SmsStop>(stop, "sms stop")?, template, detail })
                })
                .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::records::case::{PlaybookName, TicketStatus};

    fn plan(conn: &Connection, query: &str, n: usize) -> String {
        let explain = format!("EXPLAIN QUERY PLAN {query}");
        let mut stmt = conn.prepare(&explain).expect("explain");
        let values: Vec<SqlValue> = (0..n).map(|_| SqlValue::Integer(0)).collect();
        let details = stmt.query_map(params_from_iter(values), |r| r.get::<_, String>(3)).expect("plan");
        details.collect::<Result<Vec<_>, _>>().expect("plan rows").join(" | ")
    }

    /// Every console query reads an index: a plan line that scans a table does so through one
    /// (`SCAN t USING INDEX i`, an index walked in order under a LIMIT), never a bare `SCAN t`.
    fn assert_indexed(plan: &str, query: &str) {
        assert!(
            plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX") || plan.contains("USING PRIMARY KEY"),
            "{query}: {plan}"
        );
        for step in plan.split(" | ") {
            assert!(!step.starts_with("SCAN ") || step.contains(" USING "), "{query} scans a table: {plan}");
        }
    }

    #[tokio::test]
    async fn every_console_query_uses_an_index() {
        let store = SqliteStore::open_in_memory().expect("store");
        store
            .run(|conn| {
                for (q, n) in [
                    (queries::CALL_TASKS, 2),
                    (queries::DEADLINES, 3),
                    (queries::BREACHES, 2),
                    (queries::SMS_SENT, 2),
                    (queries::SMS_OF_CASE, 1),
                    (queries::SMS_STOPPED, 2),
                ] {
                    assert_indexed(&plan(conn, q, n), q);
                }
                let some = |p: bool, st: bool, s: bool, a: bool| CaseFilter {
                    playbook: p.then_some(PlaybookName::PackagePayment),
                    state: st.then(|| "waiting".to_string()),
                    status: s.then_some(TicketStatus::Open),
                    area: a.then(|| "Cairo".to_string()),
                    limit: 100,
                };
                for bits in 0..16u8 {
                    let filter = some(bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0);
                    let (q, values) = find_cases_query(&filter);
                    assert_indexed(&plan(conn, &q, values.len()), &q);
                }
                Ok::<_, StoreError>(())
            })
            .await
            .expect("plans");
    }
}
