//! `--html FILE`: the report (one policy, or two compared) as one self-contained page: inline
//! CSS, inline SVG charts, no script and nothing fetched from elsewhere.

use super::compare::{compared, difference};
use super::report::Report;
use super::whatif::HEADLINE;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write;

/// One colour per policy, told apart without colour too (the legend names them, the bars are
/// labelled in the tables below).
const COLOURS: [&str; 2] = ["#1f5fa8", "#d9822b"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn n(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// A grouped bar chart: one group per category, one bar per series.
fn bars(title: &str, categories: &[String], series: &[(String, Vec<f64>)]) -> String {
    let (w, h, left, bottom, top) = (900.0, 260.0, 50.0, 60.0, 30.0);
    let max = series.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0, f64::max).max(1.0);
    let group = (w - left - 10.0) / categories.len().max(1) as f64;
    let bar = (group * 0.8 / series.len().max(1) as f64).max(1.0);
    let plot = h - bottom - top;
    let mut svg = String::new();
    let _ = write!(svg, r#"<figure><svg viewBox="0 0 {w} {h}" role="img" aria-label="{t}"><title>{t}</title>"#, t = esc(title));
    let _ = write!(svg, r##"<line x1="{left}" y1="{y}" x2="{x2}" y2="{y}" stroke="#888"/>"##, y = h - bottom, x2 = w - 10.0);
    let _ = write!(svg, r#"<text x="{x}" y="{y}" font-size="11" text-anchor="end">{max:.0}</text>"#, x = left - 4.0, y = top + 4.0);
    let _ = write!(svg, r#"<text x="{x}" y="{y}" font-size="11" text-anchor="end">0</text>"#, x = left - 4.0, y = h - bottom);
    let every = (categories.len() / 31).max(1);
    for (i, c) in categories.iter().enumerate() {
        let x0 = left + i as f64 * group + group * 0.1;
        for (s, (_, values)) in series.iter().enumerate() {
            let v = values.get(i).copied().unwrap_or(0.0);
            let bh = v / max * plot;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{bh:.1}" fill="{fill}"><title>{c}: {v}</title></rect>"#,
                x = x0 + s as f64 * bar,
                y = h - bottom - bh,
                fill = COLOURS[s % COLOURS.len()],
                c = esc(c)
            );
        }
        if i % every == 0 {
            let (x, y) = (x0 + group * 0.4, h - bottom + 12.0);
            let _ = write!(
                svg,
                r#"<text x="{x:.1}" y="{y}" font-size="10" text-anchor="end" transform="rotate(-45 {x:.1} {y})">{}</text>"#,
                esc(c)
            );
        }
    }
    for (s, (name, _)) in series.iter().enumerate() {
        let x = left + s as f64 * 260.0;
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="6" width="12" height="12" fill="{}"/><text x="{tx}" y="16" font-size="12">{}</text>"#,
            COLOURS[s % COLOURS.len()],
            esc(name),
            tx = x + 16.0
        );
    }
    let _ = write!(svg, "</svg><figcaption>{}</figcaption></figure>", esc(title));
    svg
}

/// The union of an object's keys across the reports, in order.
fn keys<'a>(reports: &'a [Report], at: impl Fn(&'a Report) -> &'a Value) -> Vec<String> {
    reports
        .iter()
        .flat_map(|r| at(r).as_object().into_iter().flat_map(|m| m.keys().cloned()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn table(head: &[String], rows: &[(String, Vec<String>)]) -> String {
    let mut t = String::from("<table><thead><tr>");
    for h in head {
        let _ = write!(t, "<th scope=\"col\">{}</th>", esc(h));
    }
    t.push_str("</tr></thead><tbody>");
    for (label, cells) in rows {
        let _ = write!(t, "<tr><th scope=\"row\">{}</th>", esc(label));
        for c in cells {
            let _ = write!(t, "<td>{}</td>", esc(c));
        }
        t.push_str("</tr>");
    }
    t.push_str("</tbody></table>");
    t
}

fn fmt(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 => format!("{f:.0}"),
        Some(f) => format!("{f:.2}"),
        None => v.as_str().unwrap_or("-").to_owned(),
    }
}

/// The report's figures, charts and capacity, as the body of a page.
pub fn sections(reports: &[Report]) -> String {
    let names: Vec<String> =
        reports.iter().enumerate().map(|(i, r)| format!("{}: {}", ["A", "B"][i.min(1)], r.policy["name"].as_str().unwrap_or(""))).collect();
    let figures: Vec<Value> = reports.iter().map(compared).collect();
    let diff = (reports.len() == 2).then(|| difference(&figures[0], &figures[1]));
    let mut head: Vec<String> = vec![String::new()];
    head.extend(names.iter().cloned());
    if diff.is_some() {
        head.push("B − A".into());
    }
    let row = |label: &str, at: &dyn Fn(&Value) -> &Value| -> (String, Vec<String>) {
        let mut cells: Vec<String> = figures.iter().map(|f| fmt(at(f))).collect();
        if let Some(d) = &diff {
            cells.push(fmt(at(d)));
        }
        (label.to_owned(), cells)
    };
    let mut rows = Vec::new();
    for (label, key) in HEADLINE.into_iter().chain([("SMS cost (USD)", "sms_usd"), ("AWS bill, no SMS (USD)", "aws_bill_usd")]) {
        rows.push(row(label, &|f: &Value| &f[key]));
    }
    for k in keys(reports, |r| &r.what_if["attempts_per_case"]) {
        rows.push(row(&format!("cases with {k} attempt(s)"), &|f: &Value| &f["attempts_per_case"][&k]));
    }
    for t in keys(reports, |r| &r.what_if["sms_by_template"]) {
        for part in ["sent", "held", "capped", "suppressed", "segments"] {
            rows.push(row(&format!("SMS {t} {part}"), &|f: &Value| &f["sms_by_template"][&t][part]));
        }
    }

    let days = |key: &str| {
        let all = keys(reports, |r| &r.what_if[key]);
        let series: Vec<(String, Vec<f64>)> =
            reports.iter().zip(&names).map(|(r, name)| (name.clone(), all.iter().map(|d| n(&r.what_if[key][d])).collect())).collect();
        (all, series)
    };
    let (sms_days, sms_series) = days("sms_by_day");
    let (call_days, call_series) = days("call_tasks_by_day");
    let hours: Vec<String> = (0..24).map(|h| format!("{h:02}:00")).collect();
    let hour_series: Vec<(String, Vec<f64>)> = reports
        .iter()
        .zip(&names)
        .map(|(r, name)| (name.clone(), (0..24).map(|h| n(&r.what_if["call_tasks_by_hour"][h])).collect()))
        .collect();
    let mut results: Vec<String> = Vec::new();
    for pb in keys(reports, |r| &r.what_if["cases_by_playbook_and_result"]) {
        for res in keys(reports, |r| &r.what_if["cases_by_playbook_and_result"][&pb]) {
            results.push(format!("{pb} / {res}"));
        }
    }
    let result_series: Vec<(String, Vec<f64>)> = reports
        .iter()
        .zip(&names)
        .map(|(r, name)| {
            let values = results
                .iter()
                .map(|k| {
                    let (pb, res) = k.split_once(" / ").unwrap_or((k, ""));
                    n(&r.what_if["cases_by_playbook_and_result"][pb][res])
                })
                .collect();
            (name.clone(), values)
        })
        .collect();

    let mut capacity = String::new();
    for (r, name) in reports.iter().zip(&names) {
        let c = &r.capacity;
        let cap_rows: Vec<(String, Vec<String>)> = c["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|row| {
                (
                    row["quota"].as_str().unwrap_or("").to_owned(),
                    vec![fmt(&row["peak"]), fmt(&row["at_scale"]), fmt(&row["limit"]), fmt(&row["binds_at_scale"])],
                )
            })
            .collect();
        let _ = write!(
            capacity,
            "<h3>{}</h3><p>At {}× this traffic, in {} (quotas as of {}).</p>{}",
            esc(name),
            fmt(&c["scale"]),
            esc(c["region"].as_str().unwrap_or("")),
            esc(c["quotas_as_of"].as_str().unwrap_or("")),
            table(
                &["quota".into(), "peak / s measured".into(), "at scale".into(), "default quota".into(), "binds at × traffic".into()],
                &cap_rows
            )
        );
        if let Some(first) = c["first_binding"].as_object() {
            let _ = write!(
                capacity,
                "<p><strong>First to bind:</strong> {} at {}× this traffic. {}</p>",
                esc(first["quota"].as_str().unwrap_or("")),
                fmt(&first["binds_at_scale"]),
                esc(first["remedy"].as_str().unwrap_or(""))
            );
        }
    }

    let run = &reports[0].run;
    format!(
        r#"<p>{appointments} appointments and {packages} packages from {start}, seed {seed}. {names}</p>
<h2>Figures</h2>
{figures}
<h2>Charts</h2>
{sms_chart}
{call_chart}
{hour_chart}
{result_chart}
<h2>Capacity</h2>
{capacity}
"#,
        appointments = fmt(&run["appointments"]),
        packages = fmt(&run["packages"]),
        start = esc(run["start"].as_str().unwrap_or("")),
        seed = fmt(&run["seed"]),
        names = esc(&names.join("; ")),
        figures = table(&head, &rows),
        sms_chart = bars("SMS sent per day", &sms_days, &sms_series),
        call_chart = bars("Call tasks per day", &call_days, &call_series),
        hour_chart = bars("Call tasks by local hour of day (agent load)", &hours, &hour_series),
        result_chart = bars("Cases by playbook and result", &results, &result_series),
    )
}

/// The style the sections need, for a page that holds them (`page`, the console's what-if).
pub const STYLE: &str = "table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}\
th[scope=row]{text-align:left;font-weight:normal}figure{margin:1rem 0}svg{width:100%;height:auto}figcaption{font-size:12px;color:#555}";

/// The report (one policy, or two compared) as one self-contained page.
pub fn page(reports: &[Report]) -> String {
    let title = if reports.len() == 2 { "Follow-up simulation: two policies compared" } else { "Follow-up simulation" };
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" href="data:,">
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:2rem auto;max-width:960px;color:#222}}
{STYLE}
</style></head><body>
<h1>{title}</h1>
{sections}</body></html>
"#,
        sections = sections(reports),
    )
}
