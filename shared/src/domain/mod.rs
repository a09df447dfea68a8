//! The pure domain: no I/O, no clock, no AWS types. Everything here is decided from its inputs.
//!
//! Layers, each importing only those below it (docs/design.md draws them):
//! 1. values and records: `calendar`, `money`, `refusal`, `ids`, `records` (a case, an order, a
//!    package), `timers`, `sms`, `policy`;
//! 2. what comes in and goes out: `events` (each with the fact it reports), `commands`, `effects`;
//! 3. `ctx`: what one decision accumulates;
//! 4. `playbooks`: one case each, reading its subject's record;
//! 5. `subjects`: what an event does to an order or a package, the snapshot that holds them with
//!    their cases, and the echoes of facts already held;
//! 6. `decide`: routes an input to its subject or case.

pub mod calendar;
pub mod commands;
pub mod ctx;
pub mod decide;
pub mod effects;
pub mod events;
pub mod ids;
pub mod money;
pub mod playbooks;
pub mod policy;
pub mod records;
pub mod refusal;
pub mod sms;
pub mod subjects;
#[cfg(test)]
pub(crate) mod testkit;
pub mod timers;

pub use decide::{decide, Decision, Target};
pub use refusal::{ErrorCode, Refusal, RefusalKind};
