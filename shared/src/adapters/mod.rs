//! Implementations of the ports: embedded local adapters, an in-memory one, and AWS ones.

#[cfg(feature = "aws")]
pub mod aws;
pub mod embedded;
pub mod faults;
#[cfg(feature = "local")]
pub mod local;
pub mod memory;
pub mod packed;
