//! The report as text: what ran, the cases, SMS and commands, the AWS calls and the bills.

use super::bill;
use super::report::Report;
use serde_json::Value;

/// A count of the report, 0 where it has none.
fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

impl Report {
    pub(super) fn text(&self) -> String {
        let mut out = String::new();
        self.run_text(&mut out);
        self.cases_text(&mut out);
        self.sms_and_commands_text(&mut out);
        self.aws_text(&mut out);
        self.bills_text(&mut out);
        self.what_if_text(&mut out);
        out.push_str(&format!("\ncapacity\n{}", capacity_text(&self.capacity)));
        out
    }

    /// Agent load by hour, attempts per case, customers reached, what the SMS protection stopped.
    fn what_if_text(&self, out: &mut String) {
        let w = &self.what_if;
        out.push_str(&format!(
            "\nwhat-if figures (policy: {})\n  call tasks {}, cases called {}, customers reached {}, orders cancelled unreached {}, \
             coupons {}, packages deactivated {}, escalations {}\n  attempts per case:",
            self.policy["name"].as_str().unwrap_or(""),
            n(&w["call_tasks"]),
            n(&w["cases_called"]),
            n(&w["customers_reached"]),
            n(&w["orders_cancelled_unreached"]),
            n(&w["coupons_issued"]),
            n(&w["packages_deactivated"]),
            n(&w["escalations"]),
        ));
        for (k, v) in w["attempts_per_case"].as_object().into_iter().flatten() {
            out.push_str(&format!(" {k}: {}", n(v)));
        }
        out.push_str("\n  call tasks by local hour:");
        for (h, v) in w["call_tasks_by_hour"].as_array().into_iter().flatten().enumerate() {
            if n(v) > 0 {
                out.push_str(&format!(" {h:02}h {}", n(v)));
            }
        }
        out.push_str("\n  SMS stopped by the protection (held / capped / suppressed):");
        for (t, v) in w["sms_by_template"].as_object().into_iter().flatten() {
            if n(&v["held"]) + n(&v["capped"]) + n(&v["suppressed"]) > 0 {
                out.push_str(&format!(" {t} {}/{}/{}", n(&v["held"]), n(&v["capped"]), n(&v["suppressed"])));
            }
        }
        out.push('\n');
    }

    /// The month's size, its inputs and wall time, and what was refused or left over.
    fn run_text(&self, out: &mut String) {
        let r = &self.run;
        // A replay's traffic is the file's, not the generator's: its size flags say nothing.
        match r["replay"].as_str() {
            Some(file) => out.push_str(&format!("replay of {file} from {}\n", r["start"].as_str().unwrap_or(""))),
            None => out.push_str(&format!(
                "month simulation: {} appointments, {} packages over {} days from {}, seed {}\n",
                n(&r["appointments"]),
                n(&r["packages"]),
                n(&r["days"]),
                r["start"].as_str().unwrap_or(""),
                n(&r["seed"]),
            )),
        }
        let _ = std::fmt::Write::write_fmt(
            &mut *out,
            format_args!(
                "{} inputs ({} webhooks with {} re-opens, {} timers, {} case views) in {:.2} s wall ({} build, concurrency {}); \
                 virtual end {}\n",
                n(&r["webhooks"]) + n(&r["timers_fired"]) + n(&r["case_views"]),
                n(&r["webhooks"]),
                n(&r["reopens"]),
                n(&r["timers_fired"]),
                n(&r["case_views"]),
                r["wall_seconds"].as_f64().unwrap_or(0.0),
                r["build_profile"].as_str().unwrap_or(""),
                n(&r["concurrency"]),
                r["virtual_end"].as_str().unwrap_or(""),
            ),
        );
        if let Some(f) = r["decide_only_floor"].as_object() {
            out.push_str(&format!(
                "month: {:.2} s; decide-only floor: {:.2} s ({:.1}×; {} decisions, {} of {} streams differing from the {} store)\n",
                r["wall_seconds"].as_f64().unwrap_or(0.0),
                f["seconds"].as_f64().unwrap_or(0.0),
                f["month_over_floor"].as_f64().unwrap_or(0.0),
                n(&f["decisions"]),
                n(&f["streams_differing"]),
                n(&f["streams"]),
                r["store"].as_str().unwrap_or(""),
            ));
        }
        let refusals = r["refusals"].as_object().cloned().unwrap_or_default();
        if !refusals.is_empty() {
            out.push_str("refused inputs:\n");
            for (k, v) in &refusals {
                out.push_str(&format!("  {k:<58} {v:>9}\n"));
            }
        }
        if n(&r["left_over_timers"]) + n(&r["left_over_inputs"]) > 0 {
            out.push_str(&format!(
                "left over at the clock's limit: {} timers, {} inputs\n",
                n(&r["left_over_timers"]),
                n(&r["left_over_inputs"])
            ));
        }
    }

    /// Cases by playbook, and by status and result.
    fn cases_text(&self, out: &mut String) {
        out.push_str(&format!("\ncases: {}\n", n(&self.cases["total"])));
        for (pb, count) in self.cases["by_playbook"].as_object().into_iter().flatten() {
            out.push_str(&format!("  {pb:<28} {:>9}\n", n(count)));
            for (k, v) in self.cases["by_status_and_result"][pb].as_object().into_iter().flatten() {
                out.push_str(&format!("      {k:<40} {:>9}\n", n(v)));
            }
        }
    }

    /// SMS by template, commands by kind.
    fn sms_and_commands_text(&self, out: &mut String) {
        out.push_str(&format!("\nSMS: {} messages, {} segments\n", n(&self.sms["messages"]), n(&self.sms["segments"])));
        for (t, v) in self.sms["by_template"].as_object().into_iter().flatten() {
            out.push_str(&format!("  {t:<28} {:>9} messages {:>9} segments\n", n(&v["messages"]), n(&v["segments"])));
        }
        out.push_str(&format!("\ncommands: {}\n", self.commands.values().sum::<u64>()));
        for (k, v) in &self.commands {
            out.push_str(&format!("  {k:<28} {v:>9}\n"));
        }
    }

    /// The deployment's calls: Lambda, DynamoDB, Scheduler, SNS, the HTTP API.
    fn aws_text(&self, out: &mut String) {
        let a = &self.aws;
        out.push_str("\nAWS calls of the deployment (one month)\n");
        out.push_str(&format!("  {:<22} {:>11} {:>6} {:>10} {:>12}\n", "Lambda function", "invocations", "MB", "mean ms", "GB-seconds"));
        for (f, v) in a["lambda"].as_object().into_iter().flatten() {
            let count = n(&v["count"]);
            let mean = if count == 0 { 0.0 } else { v["measured_ms"].as_f64().unwrap_or(0.0) / count as f64 };
            out.push_str(&format!(
                "  {f:<22} {count:>11} {:>6} {mean:>10.3} {:>12.1}\n",
                n(&v["memory_mb"]),
                v["gb_seconds"].as_f64().unwrap_or(0.0)
            ));
        }
        let d = &a["dynamodb"];
        out.push_str(&format!(
            "  DynamoDB: {} GetItem, {} Query, {} TransactWriteItems ({} items), {} PutItem, {} UpdateItem\n\
             \x20           {} write units on the table + {} on GSIs, {} read units (+ {} by the rules)\n",
            n(&d["dynamodb_get_item"]),
            n(&d["dynamodb_query"]),
            n(&d["dynamodb_transact_write"]),
            n(&d["dynamodb_transact_items"]),
            n(&d["dynamodb_put_item"]),
            n(&d["dynamodb_update_item"]),
            n(&d["write_units"]),
            n(&d["gsi_write_units"]),
            n(&d["read_units"]),
            a["dynamodb_rule_read_units_per_month"].as_f64().unwrap_or(0.0),
        ));
        out.push_str(&format!(
            "  stream doc: largest {} bytes ({} packed); mean written {} bytes ({} packed)\n",
            n(&d["largest_stream_doc"]),
            n(&d["largest_stream_docz"]),
            n(&d["stream_doc_bytes_written"]) / n(&d["dynamodb_transact_write"]).max(1),
            n(&d["stream_docz_bytes_written"]) / n(&d["dynamodb_transact_write"]).max(1)
        ));
        let s = &a["scheduler"];
        out.push_str(&format!(
            "  Scheduler: {} schedules created, {} deleted, {} invoked\n  SNS: {} publishes to the ops topic (+ {} SMS)\n  HTTP API: {} requests\n",
            n(&s["schedules_created"]),
            n(&s["schedules_deleted"]),
            n(&s["invocations"]),
            n(&a["sns_publishes"]),
            n(&self.sms["messages"]),
            n(&a["http_api_requests"]),
        ));
    }

    /// The three designs' bills side by side, and the SMS that any of them sends.
    fn bills_text(&self, out: &mut String) {
        let a = &self.aws;
        let b = &self.bills;
        out.push_str(&format!("\nmonthly bill, list prices of {} (USD, no free tier)\n", b["prices"]["as_of"].as_str().unwrap_or("")));
        let designs = [
            ("this design", &b["this_design"]),
            ("Step Functions Std", &b["step_functions_standard"]),
            ("durable functions", &b["lambda_durable_functions"]),
        ];
        out.push_str(&format!("  {:<40} {:>18} {:>18} {:>18}\n", "", designs[0].0, designs[1].0, designs[2].0));
        let mut items: Vec<String> = Vec::new();
        for (_, bill) in designs {
            for l in bill["lines"].as_array().into_iter().flatten() {
                let item = l["item"].as_str().unwrap_or("").to_owned();
                if !items.contains(&item) {
                    items.push(item);
                }
            }
        }
        for item in &items {
            let cell = |bill: &Value| {
                bill["lines"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|l| l["item"].as_str() == Some(item))
                    .map_or("-".to_owned(), |l| bill::usd(l["usd"].as_f64().unwrap_or(0.0)))
            };
            out.push_str(&format!("  {item:<40} {:>18} {:>18} {:>18}\n", cell(designs[0].1), cell(designs[1].1), cell(designs[2].1)));
        }
        let total = |bill: &Value| bill::usd(bill["total_usd"].as_f64().unwrap_or(0.0));
        out.push_str(&format!(
            "  {:<40} {:>18} {:>18} {:>18}\n",
            "total without SMS",
            total(designs[0].1),
            total(designs[1].1),
            total(designs[2].1)
        ));
        out.push_str(&format!(
            "  Step Functions: {} transitions; durable functions: {} operations\n",
            n(&a["step_functions_transitions"]),
            n(&a["durable_operations"])
        ));
        out.push_str(&format!(
            "\nSMS to Egypt (any design): {} segments × ${} = {}\n",
            n(&b["sms"]["segments"]),
            b["sms"]["per_segment_usd"].as_f64().unwrap_or(0.0),
            bill::usd(b["sms"]["usd"].as_f64().unwrap_or(0.0))
        ));
    }
}

/// The capacity figures as text: each quota's peak, scaled, against its default.
pub(super) fn capacity_text(c: &Value) -> String {
    let mut out = format!(
        "  at {}x this traffic, {} default quotas (as of {})\n  {:<52} {:>10} {:>10} {:>12} {:>10}\n",
        c["scale"].as_f64().unwrap_or(1.0),
        c["region"].as_str().unwrap_or(""),
        c["quotas_as_of"].as_str().unwrap_or(""),
        "",
        "peak/s",
        "scaled",
        "quota",
        "binds at"
    );
    for r in c["rows"].as_array().into_iter().flatten() {
        let binds = r["binds_at_scale"].as_f64().map_or("-".to_owned(), |b| format!("{b:.1}x"));
        out.push_str(&format!(
            "  {:<52} {:>10.2} {:>10.2} {:>12} {:>10}{}\n",
            r["quota"].as_str().unwrap_or(""),
            r["peak"].as_f64().unwrap_or(0.0),
            r["at_scale"].as_f64().unwrap_or(0.0),
            r["limit"].as_f64().unwrap_or(0.0),
            binds,
            if r["checked"].as_bool() == Some(false) { " (quota unchecked)" } else { "" }
        ));
    }
    if let Some(f) = c["first_binding"].as_object() {
        out.push_str(&format!(
            "  first to bind: {} at {:.1}x this traffic: {}\n",
            f["quota"].as_str().unwrap_or(""),
            f["binds_at_scale"].as_f64().unwrap_or(0.0),
            f["remedy"].as_str().unwrap_or("")
        ));
    }
    out
}
