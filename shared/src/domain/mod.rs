//! The pure domain: no I/O, no clock, no AWS types. Everything here is decided from its inputs.

pub mod calendar;
pub mod case;
pub mod effects;
pub mod events;
pub mod money;
pub mod package;
pub mod playbooks;
pub mod policy;
pub mod sms;
pub mod stream;

pub use playbooks::{decide, Decision, Refusal, RefusalKind};
