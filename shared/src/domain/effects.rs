//! What a decision asks the world to do: SMS, commands, timers — as data, performed by the shell.

pub use crate::domain::commands::{Command, CommandBody};
use crate::domain::records::case::Language;
use crate::domain::sms::TemplateId;
pub use crate::domain::timers::{TimerRef, TimerSpec};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

// A decision makes a handful of effects and moves them on: boxing the command buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    SendSms(Sms),
    Emit(Command),
    PlaceTimer(TimerSpec),
    CancelTimer(TimerRef),
}

/// A rendered customer SMS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sms {
    pub to: String,
    pub template: TemplateId,
    pub language: Language,
    pub body: String,
    pub segments: u32,
    pub case_id: Option<String>,
    pub at: DateTime<Utc>,
}
