//! `k8s.arcAgents`: the Arc agents and the ownership record in the cluster.

use super::{ClusterAccess, Ownership};
use crate::azure::kinds::connected_cluster;
use arcplan_config::{Config, Installer, Proxy};
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::graph::{Deferred, GraphBuilder, Mode};
use serde::{Deserialize, Serialize};

/// The type.
pub const TYPE: ResourceType = ResourceType::of("k8s.arcAgents");

/// The declared attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// How to reach the cluster.
    pub cluster: ClusterAccess,
    /// The connected cluster's ARM id (known once it exists).
    pub connected_cluster_id: Deferred<String>,
    /// Helm or manifests.
    pub installer: Installer,
    /// The agent version (default: the one arcplan ships with).
    pub version: Option<String>,
    /// Rendered manifests (the manifests installer).
    pub manifests: Option<String>,
    /// How long to wait for the agents (humantime).
    pub timeout: String,
    /// Outbound proxy settings.
    pub proxy: Option<Proxy>,
    /// The ownership record.
    pub ownership: Ownership,
    /// The distribution.
    pub distribution: String,
    /// The infrastructure.
    pub infrastructure: String,
}

/// A cluster's agents.
pub fn address(cluster: &str) -> Address {
    Address::new(TYPE, cluster)
}

/// One node per cluster, after its connected cluster (through the id reference).
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    for (i, c) in cfg.clusters.iter().enumerate() {
        let attrs = Attributes {
            cluster: ClusterAccess::of(c),
            connected_cluster_id: Deferred::reference(&connected_cluster::address(&c.name), "id"),
            installer: c.agents.installer,
            version: c.agents.version.clone(),
            manifests: c.agents.manifests.clone(),
            timeout: c.agents.timeout.clone(),
            proxy: c.agents.proxy.clone(),
            ownership: Ownership::of(cfg, c),
            distribution: c.distribution.clone(),
            infrastructure: c.infrastructure.clone(),
        };
        b.node(
            address(&c.name),
            Mode::Managed,
            &attrs,
            format!("clusters[{i}]"),
        );
    }
}
