//! `azure.roleCheck`: a plan-time check that the credential holds a role granting what the plan
//! needs at a scope (the subscription for registrations; each resource group for the group and
//! its clusters).

use super::{connected_cluster, resource_group, resource_provider, subscription};
use crate::kubernetes::kinds::onboarding_key;
use arcplan_config::Config;
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::graph::{GraphBuilder, Mode};
use serde::{Deserialize, Serialize};

/// The type.
pub const TYPE: ResourceType = ResourceType::of("azure.roleCheck");

/// The declared attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// The ARM scope.
    pub scope: String,
    /// Where to look when the scope does not exist yet (a group not created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_scope: Option<String>,
    /// Roles of which the credential must hold one (empty: any that grants the actions).
    pub require_any_role: Vec<String>,
    /// The addresses whose changes need the permission.
    pub covers: Vec<String>,
}

/// The check of a resource group's scope.
pub fn address(resource_group: &str) -> Address {
    Address::new(TYPE, resource_group)
}

/// One check for the subscription (when registrations are declared) and one per resource group.
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    let sub = cfg.azure.subscription.as_str();
    let sub_addr = subscription::address(cfg);
    let roles = cfg
        .access
        .as_ref()
        .map(|a| a.require_any_role.clone())
        .unwrap_or_default();
    let registrations = b.of_type(&resource_provider::TYPE);
    if !registrations.is_empty() {
        let a = Address::new(TYPE, "subscription");
        let mut covers: Vec<String> = registrations.iter().map(ToString::to_string).collect();
        covers.sort_by_key(|c| c.to_ascii_lowercase());
        covers.dedup_by_key(|c| c.to_ascii_lowercase());
        let attrs = Attributes {
            scope: format!("/subscriptions/{sub}"),
            fallback_scope: None,
            require_any_role: roles.clone(),
            covers,
        };
        b.node(a.clone(), Mode::PlanCheck, &attrs, "access");
        b.edge(&a, &sub_addr);
        for p in &registrations {
            b.edge(p, &a);
        }
    }
    for (i, rg) in cfg.resource_groups.iter().enumerate() {
        let check = address(&rg.name);
        let clusters: Vec<_> = cfg
            .clusters
            .iter()
            .filter(|c| c.resource_group.eq_ignore_ascii_case(&rg.name))
            .collect();
        let mut covers = vec![resource_group::address(&rg.name).to_string()];
        covers.extend(
            clusters
                .iter()
                .map(|c| connected_cluster::address(&c.name).to_string()),
        );
        let attrs = Attributes {
            scope: format!("/subscriptions/{sub}/resourceGroups/{}", rg.name),
            fallback_scope: Some(format!("/subscriptions/{sub}")),
            require_any_role: roles.clone(),
            covers,
        };
        b.node(
            check.clone(),
            Mode::PlanCheck,
            &attrs,
            format!("resourceGroups[{i}]"),
        );
        b.edge(&check, &sub_addr);
        b.edge(&resource_group::address(&rg.name), &check);
    }
    // Every cluster's key and connected cluster wait for the check of its group.
    for c in &cfg.clusters {
        let check = address(&c.resource_group);
        b.edge(&onboarding_key::address(&c.name), &check);
        b.edge(&connected_cluster::address(&c.name), &check);
    }
}
