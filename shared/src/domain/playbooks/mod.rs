//! Playbooks: routing an input to the cases it concerns, and the pure `decide`.

pub mod cancellation_follow_up;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "playbook", rename_all = "snake_case")]
pub enum Flow {
    CancellationFollowUp(cancellation_follow_up::Flow),
}

impl Flow {
    pub fn playbook(&self) -> &'static str {
        match self {
            Flow::CancellationFollowUp(_) => "cancellation_follow_up",
        }
    }
    pub fn state(&self) -> &'static str {
        match self {
            Flow::CancellationFollowUp(f) => f.state.as_str(),
        }
    }
}

pub struct Decision;
pub struct Refusal;
pub enum RefusalKind {}
pub fn decide() {}
