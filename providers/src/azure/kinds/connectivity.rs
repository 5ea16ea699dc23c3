//! `arc.connectivity`: the apply-time check that a connected cluster reports `Connected` once
//! its agents are ready.

use super::connected_cluster;
use crate::kubernetes::kinds::arc_agents;
use arcplan_config::Config;
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::graph::{Deferred, GraphBuilder, Mode};
use serde::{Deserialize, Serialize};

/// The type.
pub const TYPE: ResourceType = ResourceType::of("arc.connectivity");

/// The declared attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// The connected cluster's ARM id.
    pub connected_cluster_id: Deferred<String>,
    /// Whether the agents are ready.
    pub agents_ready: Deferred<bool>,
    /// How long to wait for `Connected` (humantime).
    pub timeout: String,
}

/// One check per cluster, after its agents.
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    for (i, c) in cfg.clusters.iter().enumerate() {
        let cc = connected_cluster::address(&c.name);
        let attrs = Attributes {
            connected_cluster_id: Deferred::reference(&cc, "id"),
            agents_ready: Deferred::reference(&arc_agents::address(&c.name), "ready"),
            timeout: c.agents.connect_timeout.clone(),
        };
        b.node(
            Address::new(TYPE, c.name.clone()),
            Mode::ApplyCheck,
            &attrs,
            format!("clusters[{i}]"),
        );
    }
}
