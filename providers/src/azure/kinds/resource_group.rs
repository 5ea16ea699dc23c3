//! `azure.resourceGroup`: a resource group arcplan manages (created, tagged, deleted when it is
//! the stack's and empty of others' resources) or only reads (`existing: true`).

use super::subscription;
use crate::azure::STACK_TAG;
use arcplan_config::Config;
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::graph::{GraphBuilder, Mode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The type.
pub const TYPE: ResourceType = ResourceType::of("azure.resourceGroup");

/// The declared attributes (an existing group declares only its name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attributes {
    /// The group's name.
    pub name: String,
    /// Its region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Tags it must carry (at least these), the stack's tag included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

/// A group's address.
pub fn address(name: &str) -> Address {
    Address::new(TYPE, name)
}

/// The declared tags plus the stack's ownership tag.
pub fn stack_tags(cfg: &Config, tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut t = tags.clone();
    t.insert(STACK_TAG.to_owned(), cfg.stack.clone());
    t
}

/// One node per declared group: managed, or data when `existing`.
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    let sub = subscription::address(cfg);
    for (i, rg) in cfg.resource_groups.iter().enumerate() {
        let a = address(&rg.name);
        let (mode, attrs) = if rg.existing {
            (
                Mode::Data,
                Attributes {
                    name: rg.name.clone(),
                    location: None,
                    tags: None,
                },
            )
        } else {
            (
                Mode::Managed,
                Attributes {
                    name: rg.name.clone(),
                    location: rg.location.clone(),
                    tags: Some(stack_tags(cfg, &rg.tags)),
                },
            )
        };
        b.node(a.clone(), mode, &attrs, format!("resourceGroups[{i}]"));
        b.edge(&a, &sub);
    }
}
