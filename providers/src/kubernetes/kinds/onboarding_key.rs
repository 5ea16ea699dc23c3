//! `k8s.onboardingKey`: the RSA onboarding key pair, kept in the cluster.

use super::{ClusterAccess, Ownership};
use crate::kubernetes::{KEY_SECRET, NAMESPACE};
use arcplan_config::Config;
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::graph::{GraphBuilder, Mode};
use serde::{Deserialize, Serialize};

/// The type.
pub const TYPE: ResourceType = ResourceType::of("k8s.onboardingKey");

/// The declared attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// How to reach the cluster.
    pub cluster: ClusterAccess,
    /// The Secret's namespace.
    pub namespace: String,
    /// The Secret's name.
    pub secret_name: String,
    /// The key size.
    pub key_bits: u32,
    /// The ownership record (the namespace is created with it).
    pub ownership: Ownership,
}

/// A cluster's key.
pub fn address(cluster: &str) -> Address {
    Address::new(TYPE, cluster)
}

/// One key per cluster (its edge to the group's role check is the role check's).
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    for (i, c) in cfg.clusters.iter().enumerate() {
        let attrs = Attributes {
            cluster: ClusterAccess::of(c),
            namespace: NAMESPACE.into(),
            secret_name: KEY_SECRET.into(),
            key_bits: 4096,
            ownership: Ownership::of(cfg, c),
        };
        b.node(
            address(&c.name),
            Mode::Managed,
            &attrs,
            format!("clusters[{i}]"),
        );
    }
}
