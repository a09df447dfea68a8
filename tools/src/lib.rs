//! Tools around the follow-up engine, apart from it: the month simulation that
//! `followup-local simulate` runs (the engine's own code on metered ports, counted and priced).
//! The HTTP load test of `make bench` is this crate's `load` example.

pub mod simulate;
