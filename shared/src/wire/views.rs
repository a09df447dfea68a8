//! The JSON bodies SPEC §5 answers with and publishes: the 202, the case view, SMS and commands.

use crate::domain::calendar::Calendar;
use crate::domain::effects::{Command, Sms};
use crate::domain::playbooks::Case;
use serde_json::{json, Map, Value};

/// The 202 body; `"echo": true` only on an echo (R9.2 v3), so every other answer keeps SPEC §5's shape.
pub fn accepted(case_id: Option<&str>, duplicate: bool, echo: bool) -> Value {
    let mut body = json!({"case_id": case_id, "duplicate": duplicate});
    if echo {
        body["echo"] = json!(true);
    }
    body
}

/// `GET /v1/cases/{case_id}`: the case view of SPEC §5 (plus `opened_at` and ticket `tags`).
pub fn case_view(case: &Case, cal: &Calendar) -> Value {
    let t = &case.ticket;
    let mut v = Map::new();
    v.insert("case_id".into(), json!(case.case_id));
    v.insert("playbook".into(), json!(case.playbook()));
    v.insert("state".into(), json!(case.state()));
    for (k, id) in [("appointment_id", &case.appointment_id), ("order_id", &case.order_id), ("package_id", &case.package_id)] {
        if let Some(id) = id {
            v.insert(k.into(), json!(id));
        }
    }
    v.insert("customer".into(), json!(case.customer));
    v.insert(
        "ticket".into(),
        json!({
            "category": t.kind.category(), "sub_category": t.kind.sub_category(), "type": t.kind, "status": t.status,
            "priority": t.priority, "area": t.area, "group": t.group,
            "resolution_due": t.resolution_due.map(|d| cal.rfc3339(d)), "result": t.result, "tags": t.tags,
        }),
    );
    v.insert("attempts".into(), case.attempts.iter().map(|a| json!({"at": cal.rfc3339(a.at), "outcome": a.outcome})).collect());
    let mut timers: Vec<_> = case.timers.iter().collect();
    timers.sort_by_key(|t| t.due_at);
    v.insert("timers".into(), timers.iter().map(|t| json!({"kind": t.kind, "due_at": cal.rfc3339(t.due_at)})).collect());
    v.insert(
        "timeline".into(),
        case.timeline
            .iter()
            .map(|e| {
                let mut line = json!({"at": cal.rfc3339(e.at), "kind": e.kind, "detail": e.detail});
                if let Some(occurred) = e.occurred_at {
                    line["occurred_at"] = json!(cal.rfc3339(occurred));
                }
                line
            })
            .collect(),
    );
    v.insert("version".into(), json!(case.version));
    v.insert("opened_at".into(), json!(cal.rfc3339(case.opened_at)));
    Value::Object(v)
}

/// `GET /v1/cases?…`: the view of each case found.
pub fn cases_view(cases: &[Case], cal: &Calendar) -> Value {
    json!({"cases": cases.iter().map(|c| case_view(c, cal)).collect::<Vec<_>>()})
}

/// One entry of `GET /local/sms`.
pub fn sms_view(sms: &Sms, cal: &Calendar) -> Value {
    json!({
        "to": sms.to, "template": sms.template, "language": sms.language, "body": sms.body,
        "segments": sms.segments, "case_id": sms.case_id, "sent_at": cal.rfc3339(sms.at),
    })
}

/// A command as published: `{type, case_id, at, data}`.
pub fn command_view(command: &Command, cal: &Calendar) -> Value {
    json!({"type": command.body.kind(), "case_id": command.case_id, "at": cal.rfc3339(command.at), "data": command.body.data()})
}
