//! Interaction classification (R8.1–R8.3, seed 003): the primary topic of a call and its summary command.

use super::Ctx;
use crate::domain::events::CallCompleted;
use crate::domain::stream::Stream;

/// R8.3 publishes the summary of a classified call.
pub fn on_call(_stream: &mut Stream, _idx: usize, _call: &CallCompleted, _ctx: &mut Ctx) {}
