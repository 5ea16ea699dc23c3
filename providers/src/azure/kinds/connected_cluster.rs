//! `arc.connectedCluster`: the `Microsoft.Kubernetes/connectedClusters` resource.

use super::{resource_group, resource_provider};
use crate::kubernetes::kinds::onboarding_key;
use arcplan_config::Config;
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::graph::{Deferred, GraphBuilder, Mode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The type.
pub const TYPE: ResourceType = ResourceType::of("arc.connectedCluster");

/// The managed identity the resource gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// Always `SystemAssigned`, as `az connectedk8s connect` creates it.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The declared attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// The subscription.
    pub subscription_id: String,
    /// The resource group.
    pub resource_group: String,
    /// The resource's name.
    pub name: String,
    /// Its region (the cluster's, else its group's).
    pub location: Option<String>,
    /// Tags (at least these), the stack's tag included.
    pub tags: BTreeMap<String, String>,
    /// The managed identity.
    pub identity: Identity,
    /// The Kubernetes distribution.
    pub distribution: String,
    /// The infrastructure it runs on.
    pub infrastructure: String,
    /// The onboarding key's public half (known once the key exists).
    pub agent_public_key_certificate: Deferred<String>,
    /// Whether the agents upgrade themselves.
    pub agent_auto_upgrade: bool,
}

/// A cluster's address.
pub fn address(name: &str) -> Address {
    Address::new(TYPE, name)
}

/// One node per cluster, after its group and the `Microsoft.Kubernetes` registration.
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    for (i, c) in cfg.clusters.iter().enumerate() {
        let a = address(&c.name);
        let attrs = Attributes {
            subscription_id: cfg.azure.subscription.clone(),
            resource_group: c.resource_group.clone(),
            name: c.name.clone(),
            location: cfg.cluster_location(c).map(str::to_owned),
            tags: resource_group::stack_tags(cfg, &c.tags),
            identity: Identity {
                kind: "SystemAssigned".into(),
            },
            distribution: c.distribution.clone(),
            infrastructure: c.infrastructure.clone(),
            agent_public_key_certificate: Deferred::reference(
                &onboarding_key::address(&c.name),
                "publicKey",
            ),
            agent_auto_upgrade: c.agents.auto_upgrade,
        };
        b.node(a.clone(), Mode::Managed, &attrs, format!("clusters[{i}]"));
        b.edge(&a, &resource_group::address(&c.resource_group));
        if let Some(p) = b.find(&resource_provider::TYPE, "Microsoft.Kubernetes") {
            b.edge(&a, &p);
        }
    }
}
