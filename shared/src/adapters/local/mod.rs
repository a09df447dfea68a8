//! Embedded local adapters.
