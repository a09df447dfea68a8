//! Implementations of the ports: embedded local adapters, and AWS ones.

#[cfg(feature = "aws")]
pub mod aws;
pub mod faults;
#[cfg(feature = "local")]
pub mod local;
pub mod packed;
