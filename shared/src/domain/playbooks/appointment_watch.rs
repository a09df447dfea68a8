//! appointment_watch (R0.1–R0.3): T-3h status SMS and T-1h auto-cancel of an unassigned appointment (seed 000).

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
