//! Follow-up engine: the pure domain, the engine shell, the wire contract and the adapters.

#[macro_use]
mod named;

pub mod adapters;
pub mod console;
pub mod domain;
pub mod engine;
pub mod metrics;
pub mod ports;
pub mod wire;
