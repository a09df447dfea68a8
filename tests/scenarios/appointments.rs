//! Appointment playbooks end to end (R0, R1, R3, R7, R8): followup-local over HTTP with the virtual clock.
