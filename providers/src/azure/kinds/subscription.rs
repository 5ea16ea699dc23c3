//! `azure.subscription`: the subscription the run works in (read only, a data node).

use arcplan_config::{Cloud, Config, CredentialKind};
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::graph::{GraphBuilder, Mode};
use serde::{Deserialize, Serialize};

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

/// The subscription's address.
pub fn address(cfg: &Config) -> Address {
    Address::new(TYPE, cfg.azure.subscription.clone())
}

/// One data node for the subscription.
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    let attrs = Attributes {
        subscription_id: cfg.azure.subscription.clone(),
        tenant_id: cfg.azure.tenant.clone(),
        cloud: cloud_name(&cfg.azure.cloud),
        credential: credential_name(cfg.azure.credential.kind()).to_owned(),
    };
    b.node(address(cfg), Mode::Data, &attrs, "azure");
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
