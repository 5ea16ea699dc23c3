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
    connected_cluster, connectivity, custom_location, extension, flux, resource_group,
    resource_provider, role_check, subscription,
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
        Arc::new(extension::Extension),
        Arc::new(custom_location::CustomLocation),
        Arc::new(flux::FluxConfigurationKind),
    ]
}

/// What each kind's changes need of the credential, for `azure.roleCheck`.
const NEEDS: &[(ResourceType, NeedsOf)] = &[
    (resource_provider::TYPE, resource_provider::needs),
    (resource_group::TYPE, resource_group::needs),
    (connected_cluster::TYPE, connected_cluster::needs),
    (extension::TYPE, extension::needs),
    (custom_location::TYPE, custom_location::needs),
    (flux::TYPE, flux::needs),
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

    async fn refresh(&self) {
        self.cx.forget_cached_reads().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::arm::{RetryPolicy, shared_budget};
    use crate::azure::cloud::CloudProfile;
    use arcplan_config::{Cloud, CloudName};
    use arcplan_engine::address::Address;
    use arcplan_engine::events::NoEvents;
    use arcplan_engine::plan::{Action, Change, CheckStatus, PlanMode};
    use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
    use serde_json::json;
    use tokio_util::sync::CancellationToken;

    /// A credential that never gives a token: every ARM request fails before any socket.
    #[derive(Debug)]
    struct NoCredential;
    #[async_trait]
    impl TokenCredential for NoCredential {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "none",
            ))
        }
    }

    fn provider() -> AzureProvider {
        provider_on(&Cloud::Named(CloudName::AzureCloud))
    }

    fn provider_on(cloud: &Cloud) -> AzureProvider {
        let profile = CloudProfile::from_config(cloud, std::path::Path::new(".")).unwrap();
        let arm = ArmClient::new(
            profile,
            crate::azure::http::client(None).unwrap(),
            Arc::new(NoCredential),
            shared_budget(),
            RetryPolicy::default(),
        );
        AzureProvider::new(Arc::new(arm), AzureSettings::new("s", "sub"))
    }

    fn check(address: Address, desired: serde_json::Value, changes: Vec<Change>) -> CheckRequest {
        CheckRequest {
            address,
            desired,
            phase: CheckPhase::Plan,
            changes: Arc::new(changes),
            events: Arc::new(NoEvents),
            cancel: CancellationToken::new(),
        }
    }

    #[test]
    fn serves_every_azure_kind() {
        let types = provider().resource_types();
        for t in [
            subscription::TYPE,
            resource_provider::TYPE,
            role_check::TYPE,
            resource_group::TYPE,
            connected_cluster::TYPE,
            connectivity::TYPE,
            extension::TYPE,
            custom_location::TYPE,
            flux::TYPE,
        ] {
            assert!(types.contains(&t), "{t} is served");
        }
        assert_eq!(types.len(), 9);
    }

    #[tokio::test]
    async fn a_kind_that_is_not_a_check_does_not_fall_through_to_connectivity() {
        let p = provider();
        let r = p
            .check(check(
                resource_group::address("rg"),
                json!({"name": "rg"}),
                vec![],
            ))
            .await;
        assert_eq!(r.result.status, CheckStatus::Fail);
        assert!(r.diagnostics.has_errors());
        assert!(
            r.result.summary.contains("is not a check"),
            "{}",
            r.result.summary
        );
        // The connectivity check itself is pending at plan time, without any request.
        let r = p
            .check(check(
                Address::new(connectivity::TYPE, "c"),
                json!({"connectedClusterId": {"$ref": "arc.connectedCluster.c#id"}, "agentsReady": true, "timeout": "1s"}),
                vec![],
            ))
            .await;
        assert_eq!(r.result.status, CheckStatus::Pending);
        assert_eq!(
            p.arm()
                .stats
                .sent
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }

    #[tokio::test]
    async fn a_role_check_looks_where_a_created_group_will_be_and_needs_what_the_kinds_declare() {
        let p = provider();
        let desired = json!({
            "scope": "/subscriptions/sub/resourceGroups/rg",
            "fallbackScope": "/subscriptions/sub",
            "requireAnyRole": [],
            "covers": ["azure.resourceGroup.rg"],
        });
        let r = p
            .check(check(role_check::address("rg"), desired.clone(), vec![]))
            .await;
        assert_eq!(r.result.status, CheckStatus::Pass);
        assert_eq!(
            r.result.summary,
            "no planned change needs permissions at /subscriptions/sub/resourceGroups/rg"
        );
        let create = Change::new(resource_group::address("rg"), Action::Create);
        let r = p
            .check(check(role_check::address("rg"), desired, vec![create]))
            .await;
        assert_eq!(r.result.status, CheckStatus::Fail);
        assert_eq!(
            r.result.summary,
            "cannot read the credential's permissions at /subscriptions/sub"
        );
    }

    #[tokio::test]
    async fn declared_attributes_are_read_typed() {
        let p = provider();
        let r = p
            .plan(PlanRequest {
                address: connected_cluster::address("c"),
                prior: None,
                desired: json!({"name": "c", "distribution": 3}),
                unknown: vec![],
                replace_requested: false,
                mode: PlanMode::Normal,
            })
            .await;
        assert!(r.action.is_none());
        let d = r.diagnostics.iter().next().expect("a diagnostic");
        assert_eq!(d.code, "attributes");
        assert_eq!(d.address.as_deref(), Some("arc.connectedCluster.c"));
    }

    #[tokio::test]
    async fn a_feature_the_clouds_api_version_lacks_fails_the_plan_naming_it() {
        let stack_hub = Cloud::Custom(arcplan_config::CustomCloud {
            name: Some("AzureStackHub".into()),
            resource_manager: "https://management.local.azurestack.external".into(),
            authority_host: "https://login.microsoftonline.com".into(),
            audience: None,
            ca_bundle: None,
            api_versions: [(
                "Microsoft.Kubernetes/connectedClusters".to_owned(),
                "2021-10-01".to_owned(),
            )]
            .into(),
        });
        let p = provider_on(&stack_hub);
        let desired = json!({
            "subscriptionId": "sub", "resourceGroup": "rg", "name": "c", "location": "eastus",
            "tags": {}, "identity": {"type": "SystemAssigned"}, "distribution": "generic",
            "infrastructure": "generic", "agentPublicKeyCertificate": "MIIC",
            "agentAutoUpgrade": true, "oidcIssuer": true, "workloadIdentity": true,
        });
        let r = p
            .plan(PlanRequest {
                address: connected_cluster::address("c"),
                prior: None,
                desired,
                unknown: vec![],
                replace_requested: false,
                mode: PlanMode::Normal,
            })
            .await;
        assert!(r.action.is_none(), "nothing planned");
        let errors: Vec<_> = r.diagnostics.iter().collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].code, "unsupported-feature");
        assert!(
            errors[0].message.contains("features.oidcIssuer"),
            "{}",
            errors[0].message
        );
        assert!(
            errors[0].message.contains("2021-10-01"),
            "{}",
            errors[0].message
        );
        assert!(errors[1].message.contains("features.workloadIdentity"));
        assert!(errors[0].hint.as_deref().unwrap().contains("apiVersions"));
        assert_eq!(
            p.arm()
                .stats
                .sent
                .load(std::sync::atomic::Ordering::Relaxed),
            0,
            "no request was made"
        );
    }
}
