//! moesim: a discrete-event simulator of datacenter training energy, time, CO2 and cost for dense and
//! Mixture-of-Experts language models, comparing `dense`, `moe` and grid-aware `circadian` training.
//!
//! ```no_run
//! let scenario = moesim::Scenario::default_embedded().unwrap();
//! let results = moesim::simulate(&scenario).unwrap();
//! println!("{}", moesim::report::table(&results));
//! ```
#![warn(missing_docs)]

pub mod cost;
pub mod engine;
pub mod grid;
pub mod hardware;
pub mod io;
pub mod network;
pub mod progress;
pub mod quality;
pub mod report;
pub mod routing;
pub mod scenario;
pub mod sim;
pub mod strategy;
pub mod sweep;
#[cfg(test)]
pub(crate) mod testdata;
pub mod uncertainty;
pub mod validate;
pub mod workload;

pub use scenario::{Scenario, ScenarioError, StrategyKind};
pub use sim::{
    attribute, prepare, simulate, simulate_with, Attribution, Cause, PlanSize, Results, SimError,
    StrategyResult,
};
