//! The pure domain: no I/O, no clock, no AWS types. Everything here is decided from its inputs.

pub mod calendar;
pub mod case;
pub mod commands;
pub mod ctx;
pub mod decide;
pub mod echo;
pub mod effects;
pub mod events;
pub mod money;
pub mod order;
pub mod package;
pub mod playbooks;
pub mod policy;
pub mod refusal;
pub mod sms;
pub mod snapshot;
#[cfg(test)]
pub(crate) mod testkit;

pub use decide::{decide, Decision, Target};
pub use refusal::{ErrorCode, Refusal, RefusalKind};
