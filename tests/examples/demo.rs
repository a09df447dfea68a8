//! `make demo`: a cancelled first visit played through followup-local on the virtual clock,
//! printed day by day as a customer-care team lead would read it.

use chrono::DateTime;
use followup_tests::{booked, Local};
use serde_json::json;

const CAIRO: chrono_tz::Tz = chrono_tz::Africa::Cairo;

fn local(t: &str) -> String {
    DateTime::parse_from_rfc3339(t).map(|d| d.with_timezone(&CAIRO).format("%a %d %b %H:%M").to_string()).unwrap_or_else(|_| t.to_string())
}

/// Prints what went out since the last call, and the ticket.
struct Printer {
    sms: usize,
    commands: usize,
}

impl Printer {
    fn show(&mut self, l: &Local, case_id: &str, heading: &str) {
        println!("\n── {heading}  (clock: {})", local(&l.now().to_rfc3339()));
        let sms = l.sms();
        for m in &sms[self.sms..] {
            println!(
                "   SMS      {} to {} ({} segments, {})",
                m["template"].as_str().unwrap_or(""),
                m["to"].as_str().unwrap_or(""),
                m["segments"],
                m["language"].as_str().unwrap_or("")
            );
            for line in m["body"].as_str().unwrap_or("").lines() {
                println!("              │ {line}");
            }
        }
        self.sms = sms.len();
        let commands = l.commands();
        for c in &commands[self.commands..] {
            let data: Vec<String> = c["data"]
                .as_object()
                .map(|o| o.iter().map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))).collect())
                .unwrap_or_default();
            println!("   COMMAND  {}  {}", c["type"].as_str().unwrap_or(""), data.join(" "));
        }
        self.commands = commands.len();
        let case = l.case(case_id);
        let t = &case["ticket"];
        println!(
            "   TICKET   {} · status {} · priority {} · group {} · result {}",
            case["case_id"].as_str().unwrap_or(""),
            t["status"].as_str().unwrap_or(""),
            t["priority"].as_str().unwrap_or(""),
            t["group"].as_str().unwrap_or(""),
            t["result"].as_str().unwrap_or("-")
        );
        for timer in case["timers"].as_array().into_iter().flatten() {
            println!("   NEXT     {} at {}", timer["kind"].as_str().unwrap_or(""), local(timer["due_at"].as_str().unwrap_or("")));
        }
    }
}

fn main() {
    println!("Follow-up engine demo: a cancelled first visit (cancellation_follow_up, R2.1–R2.10)");
    let l = Local::virtual_at("2026-03-02T10:00:00+02:00");
    let mut p = Printer { sms: 0, commands: 0 };
    l.accept("/v1/appointments", "appointment.booked", booked("A-1001", "O-501", "2026-03-03T14:00:00+02:00", "2026-03-03T16:00:00+02:00"));
    let case_id = l
        .accept(
            "/v1/cancellations",
            "appointment.cancelled",
            json!({"appointment_id": "A-1001", "cancelled_by": "customer", "reason": "travelling this week", "wants_follow_up": true}),
        )
        .expect("a case opens");
    p.show(&l, &case_id, "Monday: the customer cancels the first visit and asks to be followed");

    l.clock_to("2026-03-03T09:00:00+02:00");
    p.show(&l, &case_id, "Tuesday 09:00: first follow-up call task");
    l.advance(20 * 60);
    l.accept("/v1/calls", "call.completed", json!({"case_id": case_id, "call_id": "K-1", "agent_id": "agent-7", "outcome": "no_answer"}));
    p.show(&l, &case_id, "Tuesday: no answer");

    l.clock_to("2026-03-04T09:00:00+02:00");
    p.show(&l, &case_id, "Wednesday 09:00: second follow-up call task");
    l.advance(45 * 60);
    l.accept("/v1/calls", "call.completed", json!({"case_id": case_id, "call_id": "K-2", "agent_id": "agent-3", "outcome": "voicemail"}));
    p.show(&l, &case_id, "Wednesday: voicemail — not reached twice");

    l.clock_to("2026-03-09T10:00:00+02:00");
    p.show(&l, &case_id, "Next Monday: seven days without resolution");

    l.clock_to("2026-04-02T11:00:00+02:00");
    l.accept("/v1/cancellations", "case.reopen", json!({"case_id": case_id}));
    p.show(&l, &case_id, "30 days after the appointment day: re-opened");
    l.clock_to("2026-04-04T09:00:00+02:00");
    l.accept(
        "/v1/calls",
        "call.completed",
        json!({"case_id": case_id, "call_id": "K-3", "agent_id": "agent-7", "outcome": "answered",
               "resolution": {"kind": "rebooked", "window_start": "2026-04-06T10:00:00+02:00", "window_end": "2026-04-06T12:00:00+02:00"}}),
    );
    p.show(&l, &case_id, "Saturday (Friday is off): answered and rebooked");

    print_timeline(&l, &case_id);

    unpaid_package();
}

fn print_timeline(l: &Local, case_id: &str) {
    println!("\nTimeline of {case_id}:");
    for e in l.case(case_id)["timeline"].as_array().into_iter().flatten() {
        println!(
            "   {}  {:<16} {}",
            local(e["at"].as_str().unwrap_or("")),
            e["kind"].as_str().unwrap_or(""),
            e["detail"].as_str().unwrap_or("")
        );
    }
}

/// The unpaid cleaning package of seed 004 (package_payment, R4.1–R4.5).
fn unpaid_package() {
    println!("\n\nSecond story: an unpaid cleaning package (package_payment, R4.1–R4.5)");
    let l = Local::virtual_at("2026-03-02T10:00:00+02:00");
    let mut p = Printer { sms: 0, commands: 0 };
    let visits: Vec<_> = ["2026-03-09", "2026-03-16", "2026-03-23", "2026-03-30"]
        .iter()
        .enumerate()
        .map(|(i, d)| json!({"visit_id": format!("V{}", i + 1), "window_start": format!("{d}T10:00:00+02:00")}))
        .collect();
    let case_id = l
        .accept(
            "/v1/packages",
            "package.booked",
            json!({"package_id": "P-77", "customer": {"id": "C-9", "name": "Hoda Samir", "phone": "+201112223334", "language": "ar"},
                   "area": "Alex", "price": {"amount": 200000, "currency": "EGP"}, "visits": visits,
                   "start_date": "2026-03-09", "payment_method": "card", "paid": false}),
        )
        .expect("a case opens");
    p.show(&l, &case_id, "Monday: a package is booked but not paid — call now");
    l.advance(15 * 60);
    l.accept("/v1/calls", "call.completed", json!({"case_id": case_id, "call_id": "K-11", "agent_id": "agent-2", "outcome": "no_answer"}));
    p.show(&l, &case_id, "Monday: no answer — SMS1, waiting on the customer until the day before");
    l.clock_to("2026-03-08T09:00:00+02:00");
    p.show(&l, &case_id, "Sunday 09:00, the day before the first visit: customer care calls");
    l.clock_to("2026-03-08T21:00:00+02:00");
    p.show(&l, &case_id, "Sunday 21:00: still unpaid — the package and its visits are cancelled, SMS2");
    l.clock_to("2026-03-09T09:00:00+02:00");
    l.advance(10 * 60);
    l.accept("/v1/calls", "call.completed", json!({"case_id": case_id, "call_id": "K-12", "agent_id": "agent-2", "outcome": "busy"}));
    p.show(&l, &case_id, "Monday: the final call is not answered — ticket closed");
}
