//! Every resource kind arcplan knows, in one list: its type, the module that implements it, and
//! the order in which kinds lower a configuration into the graph.
//!
//! Adding a kind is one module (its typed attributes, its lowering, its verbs) plus one line in
//! [`LOWERINGS`] and one in its provider's registry (`azure::provider`, `kubernetes`).

use crate::azure::kinds as az;
use crate::kubernetes::kinds as k8s;
use arcplan_config::Config;
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::diag::Diagnostics;
use arcplan_engine::graph::{GraphBuilder, ResourceGraph};

pub use az::connected_cluster::TYPE as CONNECTED_CLUSTER;
pub use az::connectivity::TYPE as CONNECTIVITY;
pub use az::custom_location::TYPE as CUSTOM_LOCATION;
pub use az::extension::TYPE as EXTENSION;
pub use az::flux::TYPE as FLUX_CONFIGURATION;
pub use az::resource_group::TYPE as RESOURCE_GROUP;
pub use az::resource_provider::TYPE as RESOURCE_PROVIDER;
pub use az::role_check::TYPE as ROLE_CHECK;
pub use az::subscription::TYPE as SUBSCRIPTION;
pub use k8s::arc_agents::TYPE as ARC_AGENTS;
pub use k8s::onboarding_key::TYPE as ONBOARDING_KEY;

/// A kind's lowering: the nodes and edges one configuration gives it.
pub type Lowering = fn(&Config, &mut GraphBuilder);

/// Each kind's lowering, in the order they run (a kind may look up nodes of kinds before it).
pub const LOWERINGS: &[(ResourceType, Lowering)] = &[
    (SUBSCRIPTION, az::subscription::lower),
    (RESOURCE_PROVIDER, az::resource_provider::lower),
    (ROLE_CHECK, az::role_check::lower),
    (RESOURCE_GROUP, az::resource_group::lower),
    (ONBOARDING_KEY, k8s::onboarding_key::lower),
    (CONNECTED_CLUSTER, az::connected_cluster::lower),
    (ARC_AGENTS, k8s::arc_agents::lower),
    (CONNECTIVITY, az::connectivity::lower),
    (EXTENSION, az::extension::lower),
    (CUSTOM_LOCATION, az::custom_location::lower),
    (FLUX_CONFIGURATION, az::flux::lower),
];

/// Lowers a configuration into its graph: every kind adds its nodes and edges, then references
/// are linked and the order checked. Every problem is returned at once.
pub fn lower(config: &Config) -> Result<ResourceGraph, Diagnostics> {
    let mut b = GraphBuilder::new();
    for (_, lower) in LOWERINGS {
        lower(config, &mut b);
    }
    b.finish()
}

/// Every kind's type.
pub fn all() -> Vec<ResourceType> {
    LOWERINGS.iter().map(|(t, _)| t.clone()).collect()
}

/// The kinds a cluster expands into (each node named after its cluster), in the order a
/// cluster's resources are applied, with the word progress counts each by.
const PER_CLUSTER: &[(ResourceType, &str)] = &[
    (ONBOARDING_KEY, "keys"),
    (CONNECTED_CLUSTER, "clusters"),
    (ARC_AGENTS, "agents"),
    (CONNECTIVITY, "connected"),
    (EXTENSION, "extensions"),
    (FLUX_CONFIGURATION, "flux configurations"),
];

/// The cluster a resource or check belongs to; `None` for what the clusters share
/// (subscription, providers, resource groups, role checks). Views group by it. A kind with
/// several resources per cluster names them `<cluster>/<name>`.
pub fn cluster_of(a: &Address) -> Option<&str> {
    cluster_stage(&a.rtype).map(|_| a.name.split('/').next().unwrap_or_default())
}

/// For a kind a cluster expands into: its rank among them (the order a cluster's resources
/// are applied) and the word progress counts it by; `None` for a shared kind.
pub fn cluster_stage(t: &ResourceType) -> Option<(usize, &'static str)> {
    PER_CLUSTER
        .iter()
        .position(|(k, _)| k == t)
        .map(|i| (i, PER_CLUSTER[i].1))
}
