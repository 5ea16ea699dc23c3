//! The Azure provider: the shared context ([`AzureCx`]) and the registry of the Azure kinds
//! (subscription, resource provider registrations, role checks, resource groups, connected
//! clusters, the connectivity check), each implemented in its module under `azure::kinds`.
//!
//! Reads are batched where ARM allows (one provider list per plan; one group list and one
//! connected-cluster list, which prune reuses). Diffs compare only what the configuration
//! declares (tags are "at least these": tags added by Azure Policy or people are kept and never
//! shown as changes). Ownership is the tag `arcplan-stack=<stack>`: arcplan deletes only what
//! carries it.

pub use super::context::{AzureCx, AzureSettings};
pub use super::kinds::connected_cluster::cluster_state;

use super::arm::ArmClient;
use super::kinds::role_check::NeedsOf;
use super::kinds::{
    connected_cluster, connectivity, resource_group, resource_provider, role_check, subscription,
};
use crate::kind::{Kind, Registry};
use arcplan_engine::address::ResourceType;
use arcplan_engine::provider::*;
use async_trait::async_trait;
use std::sync::Arc;

/// The Azure kinds. Connected clusters come before groups so that prune lists them first, as
/// deletes run inside-out.
fn kinds() -> Vec<Arc<dyn Kind<AzureCx>>> {
    vec![
        Arc::new(subscription::Subscription),
        Arc::new(resource_provider::ResourceProvider),
        Arc::new(role_check::RoleCheck),
        Arc::new(connected_cluster::ConnectedCluster),
        Arc::new(resource_group::ResourceGroup),
        Arc::new(connectivity::Connectivity),
    ]
}

/// What each kind's changes need of the credential, for `azure.roleCheck`.
const NEEDS: &[(ResourceType, NeedsOf)] = &[
    (resource_provider::TYPE, resource_provider::needs),
    (resource_group::TYPE, resource_group::needs),
    (connected_cluster::TYPE, connected_cluster::needs),
];

/// The Azure provider.
pub struct AzureProvider {
    cx: AzureCx,
    kinds: Registry<AzureCx>,
}

impl AzureProvider {
    /// A provider over an ARM client.
    pub fn new(arm: Arc<ArmClient>, settings: AzureSettings) -> Self {
        Self {
            cx: AzureCx::new(arm, settings, NEEDS),
            kinds: Registry::new(kinds()),
        }
    }

    /// The ARM client (for request counts).
    pub fn arm(&self) -> &ArmClient {
        &self.cx.arm
    }
}

#[async_trait]
impl Provider for AzureProvider {
    fn resource_types(&self) -> Vec<ResourceType> {
        self.kinds.types()
    }

    async fn read(&self, req: ReadRequest) -> ReadResponse {
        self.kinds.read(&self.cx, req).await
    }

    async fn plan(&self, req: PlanRequest) -> PlanResponse {
        self.kinds.plan(&self.cx, req).await
    }

    async fn apply(&self, req: ApplyRequest) -> ApplyResponse {
        // What the lists held may change now; the next plan reads them again.
        self.cx.forget_cached_reads().await;
        self.kinds.apply(&self.cx, req).await
    }

    async fn check(&self, req: CheckRequest) -> CheckResponse {
        self.kinds.check(&self.cx, req).await
    }

    async fn discover(&self, req: DiscoverRequest) -> DiscoverResponse {
        self.kinds.discover(&self.cx, req).await
    }
}
