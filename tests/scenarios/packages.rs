//! Package playbooks end to end (R4, R5, R6): followup-local over HTTP with the virtual clock.
