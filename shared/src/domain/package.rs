//! A cleaning package as booked: visits, validity, payment (seed 004).

use serde::{Deserialize, Serialize};

/// The package record on its stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub package_id: String,
}
