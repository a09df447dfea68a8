//! The console's HTML: one function per page over data already read, no JavaScript, no external asset.

use chrono::{DateTime, Duration, Utc};
use followup::console::{Breach, CaseFilter, CaseRow, Deadline, SmsStop, StoppedSms};
use followup::domain::calendar::Calendar;
use followup::domain::effects::Sms;
use followup::domain::playbooks::Case;
use followup::domain::records::case::{Language, PlaybookName, TicketStatus};
use followup::domain::subjects::snapshot::HeldSms;
use std::fmt::Write;

/// Escapes text for an HTML element or a quoted attribute.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a path segment or query value for a link.
pub fn url(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// What the page header says of the clock on every page.
#[derive(Debug, Clone)]
pub struct ClockLine {
    pub now: DateTime<Utc>,
    pub virtual_clock: bool,
}

/// The console's sections, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Due,
    Sla,
    Cases,
    Sms,
    Clock,
    WhatIf,
}

const NAV: [(Section, &str, &str); 6] = [
    (Section::Due, "/console", "Due now"),
    (Section::Sla, "/console/sla", "SLA deadlines"),
    (Section::Cases, "/console/cases", "Cases"),
    (Section::Sms, "/console/sms", "Today's SMS"),
    (Section::Clock, "/console/clock", "Clock"),
    (Section::WhatIf, "/console/what-if", "What-if"),
];

/// Dark text on white, marks in white on dark red or dark blue: every pair above 7:1 (WCAG AAA).
const STYLE: &str = "
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans','Noto Naskh Arabic',sans-serif;color:#111;background:#fff}
a{color:#0b3d91}
a:focus,button:focus,input:focus,select:focus,summary:focus{outline:3px solid #b35900;outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:#111;color:#fff;padding:.5em 1em;z-index:10}
.skip:focus{left:0}
header{background:#0b2545;color:#fff;padding:.5em 1em;display:flex;flex-wrap:wrap;gap:.5em 2em;align-items:center}
header a{color:#fff}
header .brand{font-weight:700;margin:0}
nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:1em}
nav a[aria-current=page]{font-weight:700;text-decoration-thickness:3px}
.clock{margin:0 0 0 auto}
main{padding:1em;max-width:80em}
h1{font-size:1.6em;margin:.2em 0 .6em}
h2{font-size:1.25em;margin:1.4em 0 .4em}
table{border-collapse:collapse;margin:.5em 0 1em;width:100%}
caption{text-align:left;font-weight:600;padding:.3em 0}
th,td{border:1px solid #767676;padding:.3em .5em;text-align:left;vertical-align:top}
thead th{background:#e8ebf0}
tbody th{font-weight:600}
.mark{display:inline-block;padding:0 .4em;border-radius:3px;font-weight:700;font-size:.85em;letter-spacing:.03em}
.overdue,.breached,.stopped{background:#8b0000;color:#fff}
.due{background:#0b3d91;color:#fff}
.held{background:#4a3b00;color:#fff}
.counts{display:flex;flex-wrap:wrap;gap:1em;list-style:none;padding:0}
.counts li{border:1px solid #767676;padding:.4em .8em;border-radius:4px}
.counts strong{font-size:1.3em;display:block}
.sms-body{white-space:pre-wrap;margin:0;text-align:start}
form.filters{display:flex;flex-wrap:wrap;gap:.8em;align-items:flex-end}
form.filters label{display:flex;flex-direction:column;font-weight:600}
select,input,button{font:inherit;padding:.2em .4em}
.muted{color:#444}
";

/// The whole document around a page's `body`.
pub fn layout(title: &str, section: Option<Section>, clock: &ClockLine, cal: &Calendar, body: &str) -> String {
    let mut nav = String::new();
    for (s, href, label) in NAV {
        let current = if Some(s) == section { " aria-current=\"page\"" } else { "" };
        let _ = write!(nav, "<li><a href=\"{href}\"{current}>{label}</a></li>");
    }
    let kind = if clock.virtual_clock { "virtual clock" } else { "real clock" };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<link rel=\"icon\" href=\"data:,\"><title>{title} · Follow-up console</title><style>{STYLE}</style></head><body>\
<a class=\"skip\" href=\"#main\">Skip to content</a>\
<header><p class=\"brand\">Follow-up console</p><nav aria-label=\"Console\"><ul>{nav}</ul></nav>\
<p class=\"clock\">Now: {now} <span>({kind})</span></p></header>\
<main id=\"main\" tabindex=\"-1\"><h1>{title}</h1>{body}</main>\
<footer><p class=\"muted\" style=\"padding:0 1em\">Read-only. Times in the business time zone.</p></footer></body></html>",
        title = esc(title),
        now = time(cal, clock.now),
    )
}

/// A `<time>` element in the business time zone.
pub fn time(cal: &Calendar, at: DateTime<Utc>) -> String {
    let local = cal.local(at);
    format!("<time datetime=\"{}\">{}</time>", esc(&cal.rfc3339(at)), local.format("%a %Y-%m-%d %H:%M"))
}

/// "in 3 h 20 min" / "45 min ago".
pub fn relative(from: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let d = at - from;
    let mins = d.num_minutes().abs();
    let span = if mins >= 60 * 24 {
        format!("{} d {} h", mins / (60 * 24), mins % (60 * 24) / 60)
    } else if mins >= 60 {
        format!("{} h {} min", mins / 60, mins % 60)
    } else {
        format!("{mins} min")
    };
    if d >= Duration::zero() {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

fn case_link(case_id: &str) -> String {
    format!("<a href=\"/console/cases/{}\">{}</a>", url(case_id), esc(case_id))
}

/// An element in the language of an SMS: Arabic right to left.
fn sms_body(language: Language, body: &str) -> String {
    match language {
        Language::Ar => format!("<p class=\"sms-body\" dir=\"rtl\" lang=\"ar\">{}</p>", esc(body)),
        Language::En => format!("<p class=\"sms-body\" dir=\"ltr\" lang=\"en\">{}</p>", esc(body)),
    }
}

fn counts(items: &[(&str, usize, &str)]) -> String {
    let mut out = String::from("<ul class=\"counts\">");
    for (id, n, label) in items {
        let _ = write!(out, "<li id=\"count-{id}\"><strong>{n}</strong> {}</li>", esc(label));
    }
    out.push_str("</ul>");
    out
}

/// `/console`: call tasks out and unreported, by group, the overdue marked.
pub fn due(tasks: &[CaseRow], now: DateTime<Utc>, overdue_after: Duration, cal: &Calendar) -> String {
    let overdue = |t: &CaseRow| t.task_due.is_some_and(|d| now - d >= overdue_after);
    let n_overdue = tasks.iter().filter(|t| overdue(t)).count();
    let mut out = counts(&[("due", tasks.len() - n_overdue, "call tasks due"), ("overdue", n_overdue, "call tasks overdue")]);
    let _ = write!(
        out,
        "<p>A call task is out once its <code>call_customer</code> command went out, until its outcome is reported; it is \
<strong>overdue</strong> {} min after it fell due.</p>",
        overdue_after.num_minutes()
    );
    if tasks.is_empty() {
        out.push_str("<p>No call task is waiting.</p>");
        return out;
    }
    let mut groups: Vec<_> = tasks.iter().map(|t| t.group).collect();
    groups.sort();
    groups.dedup();
    for group in groups {
        let of: Vec<_> = tasks.iter().filter(|t| t.group == group).collect();
        let late = of.iter().filter(|t| overdue(t)).count();
        let _ = write!(
            out,
            "<section aria-labelledby=\"g-{g}\"><h2 id=\"g-{g}\">{g} <span class=\"muted\">({} tasks, {late} overdue)</span></h2>\
<table><caption>Call tasks of {g}, the longest waiting first</caption><thead><tr>\
<th scope=\"col\">Case</th><th scope=\"col\">Status</th><th scope=\"col\">Due</th><th scope=\"col\">Customer</th>\
<th scope=\"col\">Playbook</th><th scope=\"col\">Area</th><th scope=\"col\">Priority</th></tr></thead><tbody>",
            of.len(),
            g = esc(group.as_str()),
        );
        for t in of {
            let due_at = t.task_due.unwrap_or(now);
            let mark = if overdue(t) { "<span class=\"mark overdue\">OVERDUE</span>" } else { "<span class=\"mark due\">DUE</span>" };
            let _ = write!(
                out,
                "<tr class=\"{cls}\"><th scope=\"row\">{case}</th><td>{mark}</td><td>{at} ({rel})</td><td>{cust}</td><td>{pb}</td><td>{area}</td><td>{prio}</td></tr>",
                cls = if overdue(t) { "task overdue-row" } else { "task" },
                case = case_link(&t.case_id),
                at = time(cal, due_at),
                rel = relative(now, due_at),
                cust = esc(&t.customer_name),
                pb = t.playbook,
                area = esc(&t.area),
                prio = t.priority,
            );
        }
        out.push_str("</tbody></table></section>");
    }
    out
}

/// `/console/sla`: deadlines coming within the horizon and those breached.
pub fn sla(coming: &[Deadline], breached: &[Breach], now: DateTime<Utc>, horizon_h: u32, lookback_h: u32, cal: &Calendar) -> String {
    let mut out = counts(&[("coming", coming.len(), "deadlines coming"), ("breached", breached.len(), "breached")]);
    let _ = write!(
        out,
        "<section aria-labelledby=\"coming\"><h2 id=\"coming\">Due in the next {horizon_h} h</h2>\
<p>Every SLA and deadline timer (R9.4) falls at its exact instant: R0.1/R0.2 technician assignment, R1.4 outreach cancel, \
R3.2 first call outcome, R3.3 cost told, R4.4 payment deadline, R5.4 end of grace.</p>"
    );
    if coming.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        out.push_str(
            "<table><caption>Pending deadlines, the soonest first</caption><thead><tr><th scope=\"col\">Rule</th><th scope=\"col\">Timer</th>\
<th scope=\"col\">Case or subject</th><th scope=\"col\">Due</th></tr></thead><tbody>",
        );
        for d in coming {
            let rule = followup::console::sla_rule(d.kind).unwrap_or("");
            let about = match (&d.case_id, &d.subject) {
                (Some(c), _) => case_link(c),
                (None, Some(s)) => esc(s),
                (None, None) => esc(&d.stream_key),
            };
            let _ = write!(
                out,
                "<tr class=\"deadline\"><th scope=\"row\">{rule}</th><td>{}</td><td>{about}</td><td>{} ({})</td></tr>",
                d.kind,
                time(cal, d.due_at),
                relative(now, d.due_at)
            );
        }
        out.push_str("</tbody></table>");
    }
    let _ = write!(out, "</section><section aria-labelledby=\"breached\"><h2 id=\"breached\">Breached in the last {lookback_h} h</h2>");
    if breached.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        out.push_str(
            "<table><caption>Breaches, the latest first</caption><thead><tr><th scope=\"col\">Rule</th><th scope=\"col\">Status</th>\
<th scope=\"col\">Case</th><th scope=\"col\">At</th><th scope=\"col\">What the engine did</th></tr></thead><tbody>",
        );
        for b in breached {
            let rule = followup::console::sla_rule(b.kind).unwrap_or("");
            let _ = write!(
                out,
                "<tr class=\"breach\"><th scope=\"row\">{rule}</th><td><span class=\"mark breached\">BREACHED</span> {}</td><td>{}</td><td>{} ({})</td><td>{}</td></tr>",
                b.kind,
                case_link(&b.case_id),
                time(cal, b.at),
                relative(now, b.at),
                esc(&b.action)
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>");
    out
}

fn select(name: &str, label: &str, options: &[&str], chosen: Option<&str>) -> String {
    let mut out = format!("<label for=\"f-{name}\">{label}<select id=\"f-{name}\" name=\"{name}\"><option value=\"\">any</option>");
    for o in options {
        let sel = if Some(*o) == chosen { " selected" } else { "" };
        let _ = write!(out, "<option{sel}>{}</option>", esc(o));
    }
    out.push_str("</select></label>");
    out
}

/// `/console/cases`: the filter form and the cases it finds.
pub fn cases(filter: &CaseFilter, found: &[CaseRow], error: Option<&str>, now: DateTime<Utc>, cal: &Calendar) -> String {
    let playbooks: Vec<&str> = PlaybookName::ALL.iter().map(|p| p.as_str()).collect();
    let statuses: Vec<&str> = TicketStatus::ALL.iter().map(|s| s.as_str()).collect();
    let mut out =
        String::from("<form class=\"filters\" method=\"get\" action=\"/console/cases\" role=\"search\" aria-label=\"Filter cases\">");
    out.push_str(&select("playbook", "Playbook", &playbooks, filter.playbook.map(|p| p.as_str())));
    let _ = write!(
        out,
        "<label for=\"f-state\">State<input id=\"f-state\" name=\"state\" value=\"{}\" size=\"14\"></label>",
        esc(filter.state.as_deref().unwrap_or(""))
    );
    out.push_str(&select("status", "Ticket status", &statuses, filter.status.map(|s| s.as_str())));
    let _ = write!(
        out,
        "<label for=\"f-area\">Area<input id=\"f-area\" name=\"area\" value=\"{}\" size=\"10\"></label><button type=\"submit\">Filter</button></form>",
        esc(filter.area.as_deref().unwrap_or(""))
    );
    if let Some(e) = error {
        let _ = write!(out, "<p role=\"alert\"><strong>Filter refused:</strong> {}</p>", esc(e));
    }
    out.push_str(&counts(&[("cases", found.len(), if found.len() >= filter.limit { "cases (the newest shown)" } else { "cases" })]));
    if found.is_empty() {
        out.push_str("<p>No case matches.</p>");
        return out;
    }
    out.push_str(
        "<table><caption>Cases, the newest first</caption><thead><tr><th scope=\"col\">Case</th><th scope=\"col\">Playbook</th>\
<th scope=\"col\">State</th><th scope=\"col\">Ticket</th><th scope=\"col\">Priority</th><th scope=\"col\">Group</th>\
<th scope=\"col\">Area</th><th scope=\"col\">Customer</th><th scope=\"col\">Opened</th></tr></thead><tbody>",
    );
    for c in found {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td></tr>",
            case_link(&c.case_id),
            c.playbook,
            esc(&c.state),
            c.status,
            c.priority,
            c.group,
            esc(&c.area),
            esc(&c.customer_name),
            time(cal, c.opened_at),
            relative(now, c.opened_at)
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// `/console/cases/{id}`: the case as a story.
pub fn case(c: &Case, sms: &[Sms], held: &[HeldSms], task_overdue: Option<bool>, now: DateTime<Utc>, cal: &Calendar) -> String {
    let t = &c.ticket;
    let mut out = String::new();
    let subject = [("Appointment", &c.appointment_id), ("Order", &c.order_id), ("Package", &c.package_id)]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {}", esc(v))))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        out,
        "<section aria-labelledby=\"summary\"><h2 id=\"summary\">Summary</h2><dl>\
<dt>Playbook</dt><dd>{} — state <strong>{}</strong></dd><dt>About</dt><dd>{subject}</dd>\
<dt>Customer</dt><dd>{} ({}, {})</dd>\
<dt>Ticket</dt><dd>{} / {} / {} — status <strong>{}</strong>, priority {}, group {}, area {}{}{}</dd>\
<dt>Opened</dt><dd>{}</dd></dl>",
        c.playbook(),
        esc(c.state()),
        esc(&c.customer.name),
        esc(&followup::domain::records::case::mask_phone(&c.customer.phone)),
        c.customer.language,
        t.kind.category(),
        t.kind.sub_category(),
        t.kind,
        t.status,
        t.priority,
        t.group,
        esc(&t.area),
        t.resolution_due.map(|d| format!(", resolution due {}", time(cal, d))).unwrap_or_default(),
        t.result.map(|r| format!(", result {r}")).unwrap_or_default(),
        time(cal, c.opened_at),
    );
    match task_overdue {
        Some(true) => out.push_str("<p><span class=\"mark overdue\">OVERDUE</span> A call task is out and its outcome is overdue.</p>"),
        Some(false) => out.push_str("<p><span class=\"mark due\">DUE</span> A call task is out, waiting for its outcome.</p>"),
        None => {}
    }
    out.push_str("</section>");

    out.push_str("<section aria-labelledby=\"timers\"><h2 id=\"timers\">Pending timers</h2>");
    if c.timers.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        out.push_str("<table><caption>What the case waits on, the soonest first</caption><thead><tr><th scope=\"col\">Timer</th><th scope=\"col\">SLA rule</th><th scope=\"col\">Due</th></tr></thead><tbody>");
        let mut timers: Vec<_> = c.timers.iter().collect();
        timers.sort_by_key(|t| t.due_at);
        for tm in timers {
            // Only the SLA timers of R9.4 enforce a deadline; a step timer (a call falling due, an
            // auto-close, a held SMS) shows "none".
            let rule = followup::console::sla_rule(tm.kind).unwrap_or("<span class=\"muted\">none</span>");
            let _ = write!(
                out,
                "<tr><th scope=\"row\">{}</th><td>{rule}</td><td>{} ({})</td></tr>",
                tm.kind,
                time(cal, tm.due_at),
                relative(now, tm.due_at)
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>");

    out.push_str("<section aria-labelledby=\"attempts\"><h2 id=\"attempts\">Call attempts</h2>");
    if c.attempts.is_empty() {
        out.push_str("<p>None yet.</p>");
    } else {
        out.push_str("<table><caption>Attempts in order</caption><thead><tr><th scope=\"col\">#</th><th scope=\"col\">At</th><th scope=\"col\">Outcome</th><th scope=\"col\">Call / agent</th></tr></thead><tbody>");
        for (i, a) in c.attempts.iter().enumerate() {
            let _ = write!(
                out,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}{}</td><td>{} {}</td></tr>",
                i + 1,
                time(cal, a.at),
                a.outcome,
                if a.outcome.reached() { "" } else { " (not reached)" },
                esc(a.call_id.as_deref().unwrap_or("")),
                esc(a.agent_id.as_deref().unwrap_or(""))
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>");

    out.push_str("<section aria-labelledby=\"sms\"><h2 id=\"sms\">SMS</h2>");
    if sms.is_empty() && held.is_empty() {
        out.push_str("<p>None sent.</p>");
    }
    for s in sms {
        let _ = write!(
            out,
            "<article class=\"sms\"><h3>{} <span class=\"muted\">sent {} · {} segments · {}</span></h3>{}</article>",
            s.template,
            time(cal, s.at),
            s.segments,
            s.language,
            sms_body(s.language, &s.body)
        );
    }
    for h in held {
        let _ = write!(
            out,
            "<article class=\"sms\"><h3>{} <span class=\"mark held\">HELD</span> <span class=\"muted\">waiting for its allowed time · {} segments</span></h3>{}</article>",
            h.sms.template,
            h.sms.segments,
            sms_body(h.sms.language, &h.sms.body)
        );
    }
    out.push_str("</section>");

    out.push_str(
        "<section aria-labelledby=\"timeline\"><h2 id=\"timeline\">Timeline</h2><table><caption>Every input, decision and effect, in order</caption>\
<thead><tr><th scope=\"col\">At</th><th scope=\"col\">Kind</th><th scope=\"col\">What happened</th></tr></thead><tbody>",
    );
    for line in &c.timeline {
        let occurred = line.occurred_at.map(|o| format!(" <span class=\"muted\">(happened {})</span>", time(cal, o))).unwrap_or_default();
        let _ = write!(
            out,
            "<tr><td>{}</td><th scope=\"row\">{}</th><td>{}{occurred}</td></tr>",
            time(cal, line.at),
            line.kind,
            esc(&line.detail)
        );
    }
    out.push_str("</tbody></table></section>");
    out
}

/// `/console/sms`: today's SMS, sent and stopped.
pub fn sms(day: chrono::NaiveDate, sent: &[Sms], stopped: &[StoppedSms], cal: &Calendar) -> String {
    let n = |s: SmsStop| stopped.iter().filter(|x| x.stop == s).count();
    let segments: u32 = sent.iter().map(|s| s.segments).sum();
    let mut out = format!("<p>Local day {day}.</p>");
    out.push_str(&counts(&[
        ("sent", sent.len(), "sent"),
        ("held", n(SmsStop::Held), "held"),
        ("capped", n(SmsStop::Capped), "capped"),
        ("suppressed", n(SmsStop::Suppressed), "suppressed"),
        ("segments", segments as usize, "segments sent"),
    ]));
    out.push_str("<section aria-labelledby=\"sent\"><h2 id=\"sent\">Sent</h2>");
    if sent.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        out.push_str(
            "<table><caption>SMS sent today, in send order</caption><thead><tr><th scope=\"col\">At</th><th scope=\"col\">Template</th>\
<th scope=\"col\">Case</th><th scope=\"col\">To</th><th scope=\"col\">Segments</th><th scope=\"col\">Body</th></tr></thead><tbody>",
        );
        for s in sent {
            let _ = write!(
                out,
                "<tr><td>{}</td><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                time(cal, s.at),
                s.template,
                s.case_id.as_deref().map(case_link).unwrap_or_else(|| "—".into()),
                esc(&followup::domain::records::case::mask_phone(&s.to)),
                s.segments,
                sms_body(s.language, &s.body)
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section><section aria-labelledby=\"stopped\"><h2 id=\"stopped\">Held, capped and suppressed</h2>");
    if stopped.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        out.push_str(
            "<table><caption>SMS the customer protection held or stopped today</caption><thead><tr><th scope=\"col\">At</th>\
<th scope=\"col\">Template</th><th scope=\"col\">What</th><th scope=\"col\">Case</th><th scope=\"col\">Why</th></tr></thead><tbody>",
        );
        for s in stopped {
            let _ = write!(
                out,
                "<tr><td>{}</td><th scope=\"row\">{}</th><td><span class=\"mark {}\">{}</span></td><td>{}</td><td>{}</td></tr>",
                time(cal, s.at),
                esc(&s.template),
                if s.stop == SmsStop::Held { "held" } else { "stopped" },
                s.stop.as_str().to_uppercase(),
                // An SMS about no case is on its subject's timeline: the order or package, no link.
                match followup::domain::ids::SubjectKey::parse(&s.case_id) {
                    Some(subject) => esc(&subject.to_string()),
                    None => case_link(&s.case_id),
                },
                esc(&s.detail)
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>");
    out
}

/// `/console/clock`.
pub fn clock(clock: &ClockLine, cal: &Calendar) -> String {
    let kind = if clock.virtual_clock {
        "virtual: it starts at FOLLOWUP_VIRTUAL_CLOCK and moves only through POST /local/clock"
    } else {
        "real: the system clock"
    };
    format!(
        "<dl><dt>Now</dt><dd id=\"now\">{}</dd><dt>As sent on the wire</dt><dd><code>{}</code></dd><dt>UTC</dt><dd><code>{}</code></dd>\
<dt>Clock</dt><dd id=\"clock-kind\">{}</dd><dt>Working day</dt><dd>{}</dd></dl>",
        time(cal, clock.now),
        esc(&cal.rfc3339(clock.now)),
        clock.now.to_rfc3339(),
        kind,
        if cal.is_working_day(cal.local_date(clock.now)) { "yes" } else { "no (day off or holiday)" }
    )
}

/// The what-if form: the changes to the running policy a team lead can try, and the month's size.
pub fn what_if_form(fields: &[(&str, &str, String, &str)], error: Option<&str>) -> String {
    let mut out = String::from(
        "<p>The same generated month (the same bookings, the same customers' answers) under the policy this engine runs \
(A) and under it with the changes below (B), side by side with the difference, the charts and the AWS capacity. \
Nothing is stored: the months run on a store of their own. <code>followup-local simulate --compare</code> runs \
the full month.</p>",
    );
    if let Some(e) = error {
        let _ = write!(out, "<p role=\"alert\" class=\"mark overdue\">{}</p>", esc(e));
    }
    out.push_str("<form method=\"get\" action=\"/console/what-if\"><fieldset><legend>Policy B and the month</legend>");
    for (name, label, value, kind) in fields {
        let _ = write!(
            out,
            "<p><label for=\"{name}\">{label}</label> <input id=\"{name}\" name=\"{name}\" type=\"{kind}\" value=\"{}\" required></p>",
            esc(value)
        );
    }
    out.push_str("<input type=\"hidden\" name=\"run\" value=\"1\"><button type=\"submit\">Compare</button></fieldset></form>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_arabic_runs_right_to_left() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(url("o1-O 1/ü"), "o1-O%201%2F%C3%BC");
        let ar = sms_body(Language::Ar, "مرحباً،\n<b>");
        assert!(ar.starts_with("<p class=\"sms-body\" dir=\"rtl\" lang=\"ar\">"), "{ar}");
        assert!(ar.contains("&lt;b&gt;"));
    }

    #[test]
    fn relative_times_read_both_ways() {
        let t = DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(relative(t, t + Duration::minutes(200)), "in 3 h 20 min");
        assert_eq!(relative(t, t - Duration::minutes(45)), "45 min ago");
        assert_eq!(relative(t, t + Duration::hours(50)), "in 2 d 2 h");
    }
}
