//! Implementations of the ports: embedded local adapters, and AWS ones.

#[cfg(feature = "local")]
pub mod local;
