//! `azure.subscription`: a subscription the run works in (read only, a data node): the file's
//! `azure.subscription` and every other one a resource group, cluster or custom location names.

use crate::azure::cloud::ApiKind;
use crate::azure::context::AzureCx;
use crate::azure::shared::{declared, diag_from, s};
use crate::kind::Kind;
use arcplan_config::{Cloud, Config, CredentialKind};
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::diag::Diagnostic;
use arcplan_engine::graph::{GraphBuilder, Mode};
use arcplan_engine::provider::{ReadRequest, ReadResponse};
use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The type.
pub const TYPE: ResourceType = ResourceType::of("azure.subscription");

/// The declared attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// The subscription id.
    pub subscription_id: String,
    /// The tenant it must belong to, when declared.
    pub tenant_id: Option<String>,
    /// The cloud's environment name.
    pub cloud: String,
    /// The credential kind, for the run's header.
    pub credential: String,
}

/// The address of the file's subscription.
pub fn address(cfg: &Config) -> Address {
    address_of(&cfg.azure.subscription)
}

/// A subscription's address.
pub fn address_of(sub: &str) -> Address {
    Address::new(TYPE, sub)
}

/// One data node per subscription the file works in.
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    for sub in cfg.subscriptions() {
        let attrs = Attributes {
            subscription_id: sub.to_owned(),
            tenant_id: cfg.azure.tenant.clone(),
            cloud: cloud_name(&cfg.azure.cloud),
            credential: credential_name(cfg.azure.credential.kind()).to_owned(),
        };
        b.node(address_of(sub), Mode::Data, &attrs, "azure");
    }
}

/// The cloud's name as Azure environments are named.
pub fn cloud_name(cloud: &Cloud) -> String {
    match cloud {
        Cloud::Named(n) => format!("{n:?}"),
        Cloud::Custom(c) => c.name.clone().unwrap_or_else(|| "AzureCustomCloud".into()),
    }
}

fn credential_name(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::Default => "default",
        CredentialKind::Cli => "cli",
        CredentialKind::ServicePrincipal => "servicePrincipal",
        CredentialKind::WorkloadIdentity => "workloadIdentity",
        CredentialKind::ManagedIdentity => "managedIdentity",
    }
}

/// The kind: read only (visible to the credential, in the declared tenant, enabled).
pub struct Subscription;

#[async_trait]
impl Kind<AzureCx> for Subscription {
    fn rtype(&self) -> ResourceType {
        TYPE
    }

    async fn read(&self, cx: &AzureCx, req: &ReadRequest) -> ReadResponse {
        let address = &req.address;
        let mut r = ReadResponse::default();
        let attrs: Option<Attributes> = match declared(address, &req.desired) {
            Ok(a) => a,
            Err(d) => {
                r.diagnostics.push(d);
                return r;
            }
        };
        let sub = &address.name;
        let get = cx.req(Method::GET, &cx.sub_path(sub), ApiKind::Subscriptions, None);
        match cx.arm.send_allow_404(&get).await {
            Ok(resp) if resp.status == 404 => r.diagnostics.push(
                Diagnostic::error(
                    "subscription-not-visible",
                    format!("subscription {sub} is not visible to the credential"),
                )
                .with_address(address.to_string())
                .with_hint("check `azure.subscription` (or the `subscription` field that names it), `azure.tenant` and that the credential has a role on the subscription (`az account list`)"),
            ),
            Ok(resp) => {
                let b = resp.body;
                let tenant = s(&b, "tenantId");
                if let Some(want) = attrs.as_ref().and_then(|a| a.tenant_id.as_deref())
                    && !tenant.is_empty()
                    && !tenant.eq_ignore_ascii_case(want)
                {
                    r.diagnostics.push(
                        Diagnostic::error(
                            "tenant-mismatch",
                            format!("subscription {sub} belongs to tenant {tenant}, but `azure.tenant` is {want}"),
                        )
                        .with_address(address.to_string())
                        .with_hint("correct `azure.tenant`"),
                    );
                }
                let state = s(&b, "state");
                if !state.is_empty() && state != "Enabled" {
                    r.diagnostics.push(
                        Diagnostic::warning("subscription-state", format!("subscription {sub} is {state}"))
                            .with_address(address.to_string()),
                    );
                }
                r.state = Some(json!({
                    "subscriptionId": s(&b, "subscriptionId"),
                    "displayName": s(&b, "displayName"),
                    "tenantId": tenant,
                    "state": state,
                }));
            }
            Err(e) if e.status == Some(401) || e.status == Some(403) => r.diagnostics.push(
                diag_from(&e, address).with_hint(
                    e.hint().unwrap_or_else(|| "the credential cannot read the subscription; check its role assignments".into()),
                ),
            ),
            Err(e) => r.diagnostics.push(diag_from(&e, address)),
        }
        r
    }
}
