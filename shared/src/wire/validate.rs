//! What SPEC §5 asks of an event's fields beyond their types: ids, text, money, windows, phones.

use super::{WireError, MAX_AMOUNT, MAX_PAINTING_DAYS};
use crate::domain::events::{
    AppointmentAssigned, AppointmentBooked, AppointmentCancelled, AppointmentCompleted, AppointmentEvent, AppointmentRescheduled,
    CaseEvent, CaseReopen, EventBody, PackageBooked, PackageCancelled, PackageEvent, PackagePaid, RescheduleRequested, Resolution,
    VisitCancelled, VisitCompleted, VisitRescheduled,
};
use crate::domain::money::Money;
use crate::domain::records::case::CallOutcome;
use crate::domain::ErrorCode;
use chrono::{DateTime, Utc};

/// The first field of `body` that breaks a rule, with its JSON path.
pub(super) fn validate(body: &EventBody) -> Result<(), WireError> {
    let mut v = Checks::default();
    match body {
        EventBody::Appointment(AppointmentEvent::Booked(AppointmentBooked {
            appointment_id,
            order_id,
            customer,
            area,
            service,
            price,
            window_start,
            window_end,
            visit_number,
            discount_percent,
            technician_id,
        })) => {
            v.id("data.appointment_id", appointment_id);
            v.id("data.order_id", order_id);
            v.customer("data.customer", customer);
            v.text("data.area", area);
            v.text("data.service", service);
            v.money("data.price", price);
            v.window("data.window_end", window_start, window_end);
            v.check(*visit_number >= 1, "data.visit_number", "visit_number starts at 1");
            v.check(*discount_percent <= 100, "data.discount_percent", "discount_percent is 0 to 100");
            if let Some(t) = technician_id {
                v.id("data.technician_id", t);
            }
        }
        EventBody::Appointment(AppointmentEvent::Assigned(AppointmentAssigned { appointment_id, technician_id })) => {
            v.id("data.appointment_id", appointment_id);
            v.id("data.technician_id", technician_id);
        }
        EventBody::Appointment(AppointmentEvent::RescheduleRequested(RescheduleRequested { appointment_id, stf_link, .. })) => {
            v.id("data.appointment_id", appointment_id);
            v.text("data.stf_link", stf_link);
        }
        EventBody::Appointment(AppointmentEvent::Rescheduled(AppointmentRescheduled {
            appointment_id, window_start, window_end, ..
        })) => {
            v.id("data.appointment_id", appointment_id);
            v.window("data.window_end", window_start, window_end);
        }
        EventBody::Appointment(AppointmentEvent::Completed(AppointmentCompleted { appointment_id, painting, .. })) => {
            v.id("data.appointment_id", appointment_id);
            if let Some(p) = painting {
                v.check((1..=MAX_PAINTING_DAYS).contains(&p.days), "data.painting.days", "a painting job lasts 1 to 365 days");
                v.money("data.painting.total_price", &p.total_price);
                v.money("data.painting.material_price", &p.material_price);
            }
        }
        EventBody::Appointment(AppointmentEvent::Cancelled(AppointmentCancelled { appointment_id, .. })) => {
            v.id("data.appointment_id", appointment_id)
        }
        EventBody::Package(
            PackageEvent::VisitCancelled(VisitCancelled { package_id, visit_id })
            | PackageEvent::VisitCompleted(VisitCompleted { package_id, visit_id }),
        ) => {
            v.id("data.package_id", package_id);
            v.id("data.visit_id", visit_id);
        }
        EventBody::Package(PackageEvent::VisitRescheduled(VisitRescheduled { package_id, visit_id, .. })) => {
            v.id("data.package_id", package_id);
            v.id("data.visit_id", visit_id);
        }
        EventBody::Package(
            PackageEvent::Cancelled(PackageCancelled { package_id, .. }) | PackageEvent::Paid(PackagePaid { package_id }),
        ) => v.id("data.package_id", package_id),
        EventBody::Case(CaseEvent::Reopen(CaseReopen { case_id })) => v.id("data.case_id", case_id),
        EventBody::Package(PackageEvent::Booked(PackageBooked { package_id, customer, area, price, visits, .. })) => {
            v.id("data.package_id", package_id);
            v.customer("data.customer", customer);
            v.text("data.area", area);
            v.money("data.price", price);
            v.check(!visits.is_empty(), "data.visits", "a package has at least one visit");
            for (i, visit) in visits.iter().enumerate() {
                v.id(&format!("data.visits[{i}].visit_id"), &visit.visit_id);
                v.check(
                    !visits[..i].iter().any(|o| o.visit_id == visit.visit_id),
                    &format!("data.visits[{i}].visit_id"),
                    "visit ids are unique within a package",
                );
            }
        }
        EventBody::Case(CaseEvent::Call(c)) => {
            v.id("data.case_id", &c.case_id);
            v.id("data.call_id", &c.call_id);
            v.id("data.agent_id", &c.agent_id);
            v.check(c.outcome != CallOutcome::Unreported, "data.outcome", "outcome is one of answered, no_answer, busy, voicemail");
            if c.resolution.is_some() {
                v.check(c.outcome.reached(), "data.resolution", "only an answered call carries a resolution");
            }
            if let Some(Resolution::Rebooked { window_start, window_end }) = &c.resolution {
                v.window("data.resolution.window_end", window_start, window_end);
            }
        }
    }
    v.result()
}

/// Collects the first validation failure with its JSON path.
#[derive(Default)]
struct Checks(Option<WireError>);

impl Checks {
    fn check(&mut self, ok: bool, field: &str, message: &str) {
        if !ok && self.0.is_none() {
            self.0 = Some(WireError::bad(ErrorCode::InvalidField, message, field));
        }
    }
    fn text(&mut self, field: &str, s: &str) {
        self.check(!s.trim().is_empty(), field, &format!("{} must not be empty", leaf(field)));
    }
    fn id(&mut self, field: &str, s: &str) {
        self.text(field, s);
        self.check(
            s.chars().count() <= 128 && !s.chars().any(char::is_control),
            field,
            &format!("{} must be at most 128 printable characters", leaf(field)),
        );
    }
    fn money(&mut self, field: &str, m: &Money) {
        self.check(
            (0..=MAX_AMOUNT).contains(&m.amount),
            &format!("{field}.amount"),
            "amount is an integer in minor units from 0 to 1000000000000000",
        );
        self.check(
            m.currency.len() == 3 && m.currency.bytes().all(|b| b.is_ascii_uppercase()),
            &format!("{field}.currency"),
            "currency is an ISO 4217 code such as EGP",
        );
    }
    fn window(&mut self, field: &str, start: &DateTime<Utc>, end: &DateTime<Utc>) {
        self.check(end > start, field, "window_end must be after window_start");
    }
    fn customer(&mut self, field: &str, c: &crate::domain::records::case::Customer) {
        self.id(&format!("{field}.id"), &c.id);
        self.text(&format!("{field}.name"), &c.name);
        let digits = c.phone.strip_prefix('+').unwrap_or("");
        self.check(
            (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0'),
            &format!("{field}.phone"),
            "phone must be E.164: a + and 7 to 15 digits, the first not 0",
        );
    }
    fn result(self) -> Result<(), WireError> {
        self.0.map_or(Ok(()), Err)
    }
}

fn leaf(field: &str) -> &str {
    field.rsplit('.').next().unwrap_or(field)
}

#[cfg(test)]
mod tests {
    use crate::wire::envelope::tests::envelope;
    use crate::wire::{parse_event, Route};
    use serde_json::json;

    #[test]
    fn an_unreported_outcome_is_the_engines_to_record_not_a_senders() {
        let d = json!({"case_id": "o1-O1", "call_id": "K1", "agent_id": "G1", "outcome": "unreported"});
        let e = parse_event(Route::Calls, &envelope("call.completed", d), "EGP").unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (400, Some("data.outcome")));
    }

    #[test]
    fn a_resolution_needs_an_answered_call() {
        let d = json!({"case_id": "o1-O1", "call_id": "K1", "agent_id": "G1", "outcome": "busy", "resolution": {"kind": "will_pay"}});
        let e = parse_event(Route::Calls, &envelope("call.completed", d), "EGP").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("data.resolution"));
    }
}
