//! Interaction classification (R8.1–R8.3, seed 003): the primary topic of a call and its summary command.
//!
//! Decisions the SPEC leaves open, settled here:
//! - Importance is by family only (booking > appointment > inquiry > other); inside a family the
//!   topic listed first wins, whatever its place in the taxonomy (R8.2 "first listed wins a tie").
//! - The other topics become `notes` (in the order listed, duplicates of the primary dropped),
//!   followed by the agent's free-text notes; `requested_follow_up` is kept as sent (false when
//!   absent).
//! - R9.5 every `call.completed` gets one, on whatever playbook's case it was reported, after that
//!   playbook decided; without topics `primary_topic` is null and `other_topics` empty.

use crate::domain::commands::{CommandBody, InteractionSummary};
use crate::domain::ctx::Ctx;
use crate::domain::events::{CallCompleted, Topic};
use crate::domain::records::case::CaseCore;

/// The family rank of a topic: 0 booking, 1 appointment, 2 inquiry, 3 other.
fn rank(topic: Topic) -> u8 {
    match topic.as_str().split('.').next() {
        Some("booking") => 0,
        Some("appointment") => 1,
        Some("inquiry") => 2,
        _ => 3,
    }
}

/// R8.2 the most important topic (first listed on a tie) and the rest, in order.
pub fn classify(topics: &[Topic]) -> Option<(Topic, Vec<Topic>)> {
    let primary = *topics.iter().min_by_key(|t| rank(**t))?;
    let mut rest = Vec::new();
    for t in topics {
        if *t != primary && !rest.contains(t) {
            rest.push(*t);
        }
    }
    Some((primary, rest))
}

/// R8.3 / R9.5 publishes the summary of a reported call.
pub fn summarise(case: &mut CaseCore, call: &CallCompleted, ctx: &mut Ctx) {
    let (primary, rest) = match classify(&call.topics) {
        Some((primary, rest)) => (Some(primary), rest),
        None => (None, Vec::new()),
    };
    let mut notes: Vec<String> = rest.iter().map(|t| t.as_str().to_string()).collect();
    notes.extend(call.notes.clone());
    let body = CommandBody::InteractionSummary(InteractionSummary {
        subject: case.subject(),
        call_id: call.call_id.clone(),
        agent_id: call.agent_id.clone(),
        outcome: call.outcome,
        primary_topic: primary.map(|p| p.as_str().to_string()),
        other_topics: rest.iter().map(|t| t.as_str().to_string()).collect(),
        notes,
        requested_follow_up: call.requested_follow_up.unwrap_or(false),
    });
    if let Some(primary) = primary {
        ctx.decided(case, format!("R8.2 primary topic {primary}"));
    }
    ctx.command(case, body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testkit::*;

    #[test]
    fn r8_2_booking_beats_appointment_beats_inquiry_beats_other() {
        use Topic::*;
        assert_eq!(
            classify(&[OtherSpam, InquiryBilling, AppointmentReschedule, BookingWidget]),
            Some((BookingWidget, vec![OtherSpam, InquiryBilling, AppointmentReschedule]))
        );
        assert_eq!(
            classify(&[InquiryPricingFinancing, AppointmentReschedule]),
            Some((AppointmentReschedule, vec![InquiryPricingFinancing]))
        );
        assert_eq!(classify(&[OtherTest]), Some((OtherTest, vec![])));
        assert_eq!(classify(&[]), None);
    }

    #[test]
    fn r8_2_first_listed_wins_a_tie_within_a_family() {
        use Topic::*;
        assert_eq!(classify(&[InquiryBilling, InquiryMembership, InquiryBilling]), Some((InquiryBilling, vec![InquiryMembership])));
    }

    #[test]
    fn r8_3_every_call_with_topics_is_summarised_on_any_playbook() {
        let mut w = World::new();
        w.when(booked("A1", "2026-03-05T14:00:00+02:00", Some("T1")), "2026-03-02T10:00:00+02:00").unwrap();
        let id = w.when(requested("A1"), "2026-03-02T10:00:00+02:00").unwrap().unwrap();
        let mut c = completed_call(&id, CallOutcome::Answered, None);
        c.topics = vec![Topic::InquiryPricingFinancing, Topic::AppointmentReschedule];
        c.requested_follow_up = Some(true);
        c.notes = Some("asked about fees".into());
        w.when(calls(c), "2026-03-02T11:00:00+02:00").unwrap();
        let s = w.command("interaction_summary").expect("R8.3 summary");
        assert_eq!(s.case_id.as_deref(), Some(id.as_str()));
        assert_eq!(s.data["primary_topic"], "appointment.reschedule");
        assert_eq!(s.data["notes"], serde_json::json!(["inquiry.pricing_financing", "asked about fees"]));
        assert_eq!(s.data["requested_follow_up"], true);

        w.when(calls(completed_call(&id, CallOutcome::Answered, None)), "2026-03-02T11:05:00+02:00").unwrap();
        let s = w.command("interaction_summary").expect("R9.5 a call without topics is summarised too");
        assert_eq!((s.data["primary_topic"].clone(), s.data["other_topics"].clone()), (serde_json::Value::Null, serde_json::json!([])));
    }
}
