//! arcplan's engine: diagnostics, the resource graph, the plan value, the provider contract,
//! the planner and the executor.
//!
//! The engine knows no Azure or Kubernetes types. It speaks resource addresses, JSON values and
//! the [`provider::Provider`] verbs; the providers crate gives those verbs meaning. It never
//! prints: it returns values and emits [`events::Event`]s, and the CLI renders them.
//!
//! Data flow: a configuration lowered by the providers' kinds into a [`graph::ResourceGraph`] →
//! [`planner::plan`] (refresh + diff through providers) → [`plan::Plan`] (a value, serialisable,
//! savable) → [`executor::apply`] (walks the plan in dependency order through providers).

pub mod address;
pub mod consistency;
pub mod diag;
pub mod events;
pub mod executor;
pub mod graph;
pub mod json;
pub mod plan;
pub mod planner;
pub mod provider;
pub mod session;
pub mod shard;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod walk;
