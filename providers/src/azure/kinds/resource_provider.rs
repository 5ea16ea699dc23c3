//! `azure.resourceProvider`: a resource provider registration in the subscription.

use super::subscription;
use arcplan_config::Config;
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::graph::{GraphBuilder, Mode};
use serde::{Deserialize, Serialize};

/// The type.
pub const TYPE: ResourceType = ResourceType::of("azure.resourceProvider");

/// The declared attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// The namespace, such as `Microsoft.Kubernetes`.
    pub namespace: String,
    /// Always `Registered`.
    pub registration_state: String,
}

/// One node per declared namespace, after the subscription.
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    let sub = subscription::address(cfg);
    for (i, ns) in cfg.resource_providers.iter().enumerate() {
        let a = Address::new(TYPE, ns.clone());
        let attrs = Attributes {
            namespace: ns.clone(),
            registration_state: "Registered".into(),
        };
        b.node(
            a.clone(),
            Mode::Managed,
            &attrs,
            format!("resourceProviders[{i}]"),
        );
        b.edge(&a, &sub);
    }
}
