//! The cluster-side resource kinds, one module each (typed attributes, lowering, verbs as
//! [`Kind`]), the registry of them that the provider dispatches through, and the attributes
//! they share: how to reach the cluster, and the ownership record.

pub mod arc_agents;
pub mod onboarding_key;

use super::context::KubeCx;
use crate::kind::{Kind, Registry};
use arcplan_config::{Cluster, Config};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Every Kubernetes kind, each served by its module.
pub fn registry() -> Registry<KubeCx> {
    let kinds: Vec<Arc<dyn Kind<KubeCx>>> = vec![
        Arc::new(onboarding_key::OnboardingKey),
        Arc::new(arc_agents::ArcAgents),
    ];
    Registry::new(kinds)
}

/// How a kind reaches its cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterAccess {
    /// The kubeconfig file (default: `KUBECONFIG`, then `~/.kube/config`).
    pub kubeconfig: Option<String>,
    /// The context (default: the current one).
    pub context: Option<String>,
}

impl ClusterAccess {
    /// The access the configuration declares for a cluster.
    pub fn of(c: &Cluster) -> Self {
        Self {
            kubeconfig: c.kubeconfig.clone(),
            context: c.context.clone(),
        }
    }
}

/// The ownership record the agents read (ConfigMap `azure-clusterconfig`), as `az connectedk8s
/// connect` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct Ownership {
    /// The subscription.
    pub AZURE_SUBSCRIPTION_ID: String,
    /// The resource group.
    pub AZURE_RESOURCE_GROUP: String,
    /// The connected cluster's name.
    pub AZURE_RESOURCE_NAME: String,
    /// The tenant.
    pub AZURE_TENANT_ID: Option<String>,
    /// The region.
    pub AZURE_REGION: Option<String>,
    /// `true` or `false`.
    pub AZURE_ARC_AUTOUPDATE: String,
    /// The cloud's environment name.
    pub AZURE_ENVIRONMENT: String,
}

impl Ownership {
    /// The record the configuration gives a cluster.
    pub fn of(cfg: &Config, c: &Cluster) -> Self {
        Self {
            AZURE_SUBSCRIPTION_ID: cfg.azure.subscription.clone(),
            AZURE_RESOURCE_GROUP: c.resource_group.clone(),
            AZURE_RESOURCE_NAME: c.name.clone(),
            AZURE_TENANT_ID: cfg.azure.tenant.clone(),
            AZURE_REGION: cfg.cluster_location(c).map(str::to_owned),
            AZURE_ARC_AUTOUPDATE: c.agents.auto_upgrade.to_string(),
            AZURE_ENVIRONMENT: crate::azure::kinds::subscription::cloud_name(&cfg.azure.cloud),
        }
    }

    /// The record as the ConfigMap's data map (absent keys are `null`).
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }
}
