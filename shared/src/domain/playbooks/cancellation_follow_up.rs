//! cancellation_follow_up (R2.1–R2.10): the follow-up of a cancelled first visit (seed 001, offers of seed 000).

use serde::{Deserialize, Serialize};

crate::named_enum! {
    pub enum State {
        Following = "following",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub state: State,
}
