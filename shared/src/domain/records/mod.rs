//! What the domain remembers: a case (ticket, attempts, timers, timeline), an order and its
//! appointments, a package and its visits. Data and the questions it answers about itself; what
//! an input does to it lives above (`playbooks`, `subjects`).

pub mod case;
pub mod order;
pub mod package;

use order::Order;
use package::Package;
use serde::{Deserialize, Serialize};

/// An order or a package: what the cases of a snapshot are about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Order(Order),
    Package(Package),
}

impl Subject {
    /// What happened to the order or package itself that no case records.
    pub fn timeline(&self) -> &[case::TimelineEntry] {
        match self {
            Subject::Order(order) => &order.timeline,
            Subject::Package(package) => &package.timeline,
        }
    }

    pub fn timeline_mut(&mut self) -> &mut Vec<case::TimelineEntry> {
        match self {
            Subject::Order(order) => &mut order.timeline,
            Subject::Package(package) => &mut package.timeline,
        }
    }
}
