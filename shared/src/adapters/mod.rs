//! Implementations of the ports: embedded local adapters, an in-memory one, and AWS ones.

#[cfg(feature = "aws")]
pub mod aws;
// The embedded stores' own surface and the in-memory store: for in-process runs, never a Lambda.
#[cfg(feature = "local")]
pub mod embedded;
pub mod faults;
#[cfg(feature = "local")]
pub mod local;
#[cfg(feature = "local")]
pub mod memory;
pub mod packed;
