//! second_visit_follow_up (R3.1–R3.9): the follow-up after inspection, incomplete work or painting (seed 001).

use super::{Ctx, Refusal};
use crate::domain::case::TimerKind;
use crate::domain::events::CallCompleted;
use crate::domain::stream::Stream;
use serde::{Deserialize, Serialize};

crate::named_enum! {
    pub enum State {
        Open = "open",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub state: State,
}

pub fn on_call(_stream: &mut Stream, _idx: usize, _call: &CallCompleted, _ctx: &mut Ctx) -> Result<(), Refusal> {
    Ok(())
}

pub fn on_timer(_stream: &mut Stream, _idx: usize, _kind: TimerKind, _ctx: &mut Ctx) {}

/// R3.9 re-open, as R2.10.
pub fn on_reopen(_stream: &mut Stream, _idx: usize, _ctx: &mut Ctx) -> Result<(), Refusal> {
    Err(Refusal::rule("R3.9", "second-visit cases cannot be re-opened yet", Some("data.case_id")))
}
