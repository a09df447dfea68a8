//! Appointment events on an order's stream: the appointment record, and which playbooks each event starts or stops.

use super::{appointment_subject, cancellation_follow_up, open_appointment, unknown_subject, Ctx, Outcome, Refusal};
use crate::domain::events::{Event, EventBody, Input};
use crate::domain::stream::{Appointment, AppointmentStatus, Stream, StreamKey, SubjectTimer};

pub fn on_event(stream: Option<&Stream>, event: &Event, ctx: &mut Ctx) -> Result<Outcome, Refusal> {
    if let EventBody::AppointmentBooked { .. } = &event.body {
        return booked(stream, event, ctx);
    }
    let mut stream = stream.cloned().ok_or_else(|| unknown_subject(&Input::Event(event.clone())))?;
    let case_id = match &event.body {
        EventBody::AppointmentCancelled { appointment_id, .. } => {
            let appointment = open_appointment(&mut stream, appointment_id)?;
            appointment.status = AppointmentStatus::Cancelled;
            let appointment = appointment.clone();
            cancellation_follow_up::on_cancelled(&mut stream, &appointment, event, ctx)
        }
        EventBody::AppointmentAssigned { appointment_id, technician_id } => {
            let appointment = open_appointment(&mut stream, appointment_id)?;
            appointment.technician_id = Some(technician_id.clone());
            None
        }
        other => {
            return Err(Refusal::conflict(
                "unsupported_event",
                format!("{} is not handled by this engine version", other.kind()),
                Some("type"),
            ))
        }
    };
    Ok((stream, Vec::new(), case_id))
}

fn booked(stream: Option<&Stream>, event: &Event, ctx: &mut Ctx) -> Result<Outcome, Refusal> {
    let EventBody::AppointmentBooked {
        appointment_id,
        order_id,
        customer,
        area,
        service,
        price,
        window_start,
        window_end,
        visit_number,
        technician_id,
        discount_percent,
    } = &event.body
    else {
        unreachable!("called for appointment.booked only")
    };
    let mut stream = stream.cloned().unwrap_or_else(|| Stream::new(StreamKey::Order(order_id.clone())));
    if stream.appointment(appointment_id).is_some() {
        return Err(Refusal::conflict(
            "already_booked",
            format!("appointment {appointment_id:?} is already booked; send appointment.rescheduled or appointment.assigned to change it"),
            Some("data.appointment_id"),
        ));
    }
    stream.appointments.push(Appointment {
        appointment_id: appointment_id.clone(),
        order_id: order_id.clone(),
        customer: customer.clone(),
        area: area.clone(),
        service: service.clone(),
        price: price.clone(),
        window_start: *window_start,
        window_end: *window_end,
        visit_number: *visit_number,
        technician_id: technician_id.clone(),
        discount_percent: *discount_percent,
        status: AppointmentStatus::Booked,
        reschedules: 0,
        booked_at: Some(ctx.now),
    });
    Ok((stream, vec![appointment_subject(appointment_id)], None))
}

/// A timer placed on an appointment rather than a case.
pub fn on_subject_timer(_stream: &mut Stream, _timer: &SubjectTimer, _ctx: &mut Ctx) -> Option<String> {
    None
}
