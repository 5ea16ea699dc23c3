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

/// A warning that a resource stays in a cluster that is not contacted (`destroy
/// --cluster-unreachable`): `what` it leaves, and how to remove it once the cluster is back.
pub(crate) fn orphaned(
    code: &'static str,
    address: &arcplan_engine::address::Address,
    what: &str,
) -> arcplan_engine::diag::Diagnostics {
    arcplan_engine::diag::Diagnostic::warning(
        code,
        format!(
            "cluster {} is not contacted (--cluster-unreachable): {what}",
            address.name
        ),
    )
    .with_address(address.to_string())
    .with_hint(format!(
        "when the cluster is reachable again, remove them with `kubectl delete namespace {} {}`",
        super::NAMESPACE,
        super::RELEASE_NAMESPACE
    ))
    .into()
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
            AZURE_SUBSCRIPTION_ID: cfg.cluster_subscription(c).to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::{KubernetesProvider, KubernetesProviderOptions};
    use arcplan_engine::address::{Address, ResourceType};
    use arcplan_engine::provider::{Provider, ReadRequest};

    #[tokio::test]
    async fn the_provider_serves_each_kind_through_the_registry() {
        let p = KubernetesProvider::new(KubernetesProviderOptions::new(".").with_env(|_| None));
        assert_eq!(
            p.resource_types(),
            vec![onboarding_key::TYPE, arc_agents::TYPE]
        );
        let r = p
            .read(ReadRequest {
                address: Address::new(ResourceType::of("k8s.other"), "c"),
                desired: serde_json::json!({}),
            })
            .await;
        assert!(r.state.is_none());
        assert!(r.diagnostics.has_errors());
        // A served kind reads its typed attributes first and names the resource when they do
        // not fit.
        let r = p
            .read(ReadRequest {
                address: Address::new(arc_agents::TYPE, "c"),
                desired: serde_json::json!({"installer": "manifests"}),
            })
            .await;
        let d = r.diagnostics.iter().next().expect("a diagnostic");
        assert_eq!(d.code, "attributes");
        assert_eq!(d.address.as_deref(), Some("k8s.arcAgents.c"));
    }
}
