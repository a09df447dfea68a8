//! The subjects cases are about, as one consistent unit each (`snapshot`): what an event does to
//! an order (`order`) or a package (`package`), which cases it opens or tells, the intents the
//! playbooks leave for it, and the echoes of facts it already holds (`echo`).

pub mod echo;
pub mod order;
pub mod package;
pub mod snapshot;
