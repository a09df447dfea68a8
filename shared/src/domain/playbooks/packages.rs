//! Package events on a package's stream: the package record, visit rules (R6), and the package playbooks.

use super::{Ctx, Outcome, Refusal};
use crate::domain::events::Event;
use crate::domain::stream::{Stream, SubjectTimer};

pub fn on_event(stream: Option<&Stream>, event: &Event, _ctx: &mut Ctx) -> Result<Outcome, Refusal> {
    let _ = stream;
    Err(Refusal::conflict("unsupported_event", format!("{} is not handled by this engine version", event.body.kind()), Some("type")))
}

/// A timer placed on a package rather than a case.
pub fn on_subject_timer(_stream: &mut Stream, _timer: &SubjectTimer, _ctx: &mut Ctx) -> Option<String> {
    None
}
