//! The resource graph: what the desired state expands to, and in what order it must be applied.
//!
//! [`ResourceGraph::from_config`] lowers a [`Config`] into nodes (one per resource or check,
//! each with a typed [`Address`] and its declared attributes) and edges, which come from two
//! sources: each resource type's declared dependencies (a connected cluster needs its resource
//! group and the `Microsoft.Kubernetes` registration) and references inside attribute values
//! (the connected cluster's public key refers to the onboarding key's output). Edges point from
//! a dependency to its dependent. Cycles are reported with the cycle named.

use crate::address::{Address, ResourceType};
use crate::config::validate::STACK_TAG;
use crate::config::{Cloud, Config, CredentialKind, Installer};
use crate::diag::{Diagnostic, Diagnostics};
use petgraph::Direction;
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// What kind of node this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A resource arcplan creates, updates and deletes.
    Managed,
    /// A resource arcplan only reads (the subscription, an `existing: true` resource group).
    Data,
    /// A check evaluated from the plan, before any change (a precondition).
    PlanCheck,
    /// A check evaluated after its dependencies are applied (a postcondition).
    ApplyCheck,
}

/// Why one node depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    /// The resource type declares the dependency.
    Declared,
    /// An attribute value refers to the other node's output.
    Reference,
}

/// One node of the graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceNode {
    /// The node's address.
    pub address: Address,
    /// Managed, data or check.
    pub mode: Mode,
    /// The declared attributes. May contain references (see [`reference`]).
    pub desired: Value,
    /// The key path of the configuration entry this node comes from, for diagnostics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The resource graph.
#[derive(Debug, Clone, Default)]
pub struct ResourceGraph {
    graph: DiGraph<ResourceNode, EdgeKind>,
    index: HashMap<Address, NodeIndex>,
}

/// The graph has a cycle; the addresses are listed in order, the first repeated at the end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(" -> "))]
pub struct CycleError(pub Vec<Address>);

/// Errors while building a graph by hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Two nodes share an address.
    #[error("{0} is declared twice")]
    Duplicate(Address),
    /// An edge or reference names a node that does not exist.
    #[error("{from} depends on {to}, which is not in the graph")]
    Missing {
        /// The dependent.
        from: Address,
        /// The missing dependency.
        to: Address,
    },
}

/// The key under which a reference is written inside an attribute value.
pub const REF_KEY: &str = "$ref";

/// A value that stands for `output` of the node at `address`, resolved when that output is
/// known (at plan time if the node does not change, otherwise at apply time).
pub fn reference(address: &Address, output: &str) -> Value {
    json!({ REF_KEY: format!("{address}#{output}") })
}

/// If `value` is a reference, its address and output name.
pub fn as_reference(value: &Value) -> Option<(Address, &str)> {
    let obj = value.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    let (addr, output) = obj.get(REF_KEY)?.as_str()?.split_once('#')?;
    Some((addr.parse().ok()?, output))
}

/// Every reference inside a value, with its JSON pointer.
pub fn references(value: &Value) -> Vec<(String, Address, String)> {
    fn go(v: &Value, ptr: String, out: &mut Vec<(String, Address, String)>) {
        if let Some((a, o)) = as_reference(v) {
            out.push((ptr, a, o.to_owned()));
            return;
        }
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    go(
                        v,
                        format!("{ptr}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    go(v, format!("{ptr}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    go(value, String::new(), &mut out);
    out
}

/// Replaces the references in `value` with outputs from `lookup`; returns the JSON pointers
/// of references whose output is not known (they are left in place).
pub fn resolve_references(
    value: &mut Value,
    lookup: &dyn Fn(&Address, &str) -> Option<Value>,
) -> Vec<String> {
    let mut unknown = Vec::new();
    for (ptr, addr, output) in references(value) {
        match lookup(&addr, &output) {
            Some(v) => {
                if let Some(slot) = value.pointer_mut(&ptr) {
                    *slot = v;
                }
            }
            None => unknown.push(ptr),
        }
    }
    unknown
}

impl ResourceGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node; its references become edges when [`ResourceGraph::link_references`] runs.
    pub fn add(&mut self, node: ResourceNode) -> Result<NodeIndex, GraphError> {
        if self.index.contains_key(&node.address) {
            return Err(GraphError::Duplicate(node.address));
        }
        let address = node.address.clone();
        let ix = self.graph.add_node(node);
        self.index.insert(address, ix);
        Ok(ix)
    }

    /// Records that `dependent` needs `dependency` first.
    pub fn depend(
        &mut self,
        dependent: &Address,
        dependency: &Address,
        kind: EdgeKind,
    ) -> Result<(), GraphError> {
        let missing = |to: &Address| GraphError::Missing {
            from: dependent.clone(),
            to: to.clone(),
        };
        let to = *self
            .index
            .get(dependent)
            .ok_or_else(|| missing(dependent))?;
        let from = *self
            .index
            .get(dependency)
            .ok_or_else(|| missing(dependency))?;
        if self.graph.find_edge(from, to).is_none() {
            self.graph.add_edge(from, to, kind);
        }
        Ok(())
    }

    /// Adds an edge for every reference found in the nodes' attributes.
    pub fn link_references(&mut self) -> Result<(), GraphError> {
        let pending: Vec<(Address, Address)> = self
            .graph
            .node_weights()
            .flat_map(|n| {
                references(&n.desired)
                    .into_iter()
                    .map(|(_, to, _)| (n.address.clone(), to))
            })
            .collect();
        for (from, to) in pending {
            self.depend(&from, &to, EdgeKind::Reference)?;
        }
        Ok(())
    }

    /// The node at an address.
    pub fn node(&self, address: &Address) -> Option<&ResourceNode> {
        self.index.get(address).map(|ix| &self.graph[*ix])
    }

    /// All nodes, in insertion order.
    pub fn nodes(&self) -> impl Iterator<Item = &ResourceNode> {
        self.graph.node_weights()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// All edges as (dependency, dependent, kind).
    pub fn edges(&self) -> Vec<(&Address, &Address, EdgeKind)> {
        self.graph
            .edge_indices()
            .filter_map(|e| {
                let (a, b) = self.graph.edge_endpoints(e)?;
                Some((
                    &self.graph[a].address,
                    &self.graph[b].address,
                    self.graph[e],
                ))
            })
            .collect()
    }

    /// The direct dependencies of a node, in insertion order.
    pub fn dependencies(&self, address: &Address) -> Vec<&Address> {
        self.neighbours(address, Direction::Incoming)
    }

    /// The direct dependents of a node, in insertion order.
    pub fn dependents(&self, address: &Address) -> Vec<&Address> {
        self.neighbours(address, Direction::Outgoing)
    }

    fn neighbours(&self, address: &Address, dir: Direction) -> Vec<&Address> {
        let Some(ix) = self.index.get(address) else {
            return Vec::new();
        };
        let mut v: Vec<NodeIndex> = self.graph.neighbors_directed(*ix, dir).collect();
        v.sort();
        v.into_iter().map(|i| &self.graph[i].address).collect()
    }

    /// The nodes in an order where every node comes after its dependencies, or the cycle that
    /// makes that impossible.
    pub fn order(&self) -> Result<Vec<&ResourceNode>, CycleError> {
        match toposort(&self.graph, None) {
            Ok(order) => Ok(order.into_iter().map(|i| &self.graph[i]).collect()),
            Err(_) => Err(self.find_cycle()),
        }
    }

    fn find_cycle(&self) -> CycleError {
        for scc in tarjan_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.find_edge(scc[0], scc[0]).is_some();
            if scc.len() < 2 && !self_loop {
                continue;
            }
            // Walk inside the component until a node repeats: that stretch is a cycle.
            let mut path = vec![*scc.iter().min().unwrap_or(&scc[0])];
            loop {
                let cur = *path.last().unwrap_or(&scc[0]);
                let mut next: Vec<NodeIndex> = self
                    .graph
                    .neighbors_directed(cur, Direction::Outgoing)
                    .filter(|n| scc.contains(n))
                    .collect();
                next.sort();
                let Some(n) = next.first().copied() else {
                    break;
                };
                if let Some(pos) = path.iter().position(|p| *p == n) {
                    let mut cycle: Vec<Address> = path[pos..]
                        .iter()
                        .map(|i| self.graph[*i].address.clone())
                        .collect();
                    cycle.push(self.graph[n].address.clone());
                    return CycleError(cycle);
                }
                path.push(n);
            }
        }
        CycleError(Vec::new())
    }

    /// Lowers a configuration into its graph.
    pub fn from_config(cfg: &Config) -> Result<ResourceGraph, Diagnostics> {
        let mut g = ResourceGraph::new();
        let mut diags = Diagnostics::new();
        let mut add = |g: &mut ResourceGraph, node: ResourceNode| {
            if let Err(e) = g.add(node) {
                diags.push(Diagnostic::error("graph", e.to_string()));
            }
        };
        let sub = &cfg.azure.subscription;
        let sub_addr = Address::new(ResourceType::SUBSCRIPTION, sub.clone());
        add(
            &mut g,
            ResourceNode {
                address: sub_addr.clone(),
                mode: Mode::Data,
                desired: json!({
                    "subscriptionId": sub,
                    "tenantId": cfg.azure.tenant,
                    "cloud": cloud_name(&cfg.azure.cloud),
                    "credential": credential_name(cfg.azure.credential.kind()),
                }),
                source: Some("azure".into()),
            },
        );
        let mut edges: Vec<(Address, Address)> = Vec::new();

        let mut provider_addrs: BTreeMap<String, Address> = BTreeMap::new();
        for (i, ns) in cfg.resource_providers.iter().enumerate() {
            let a = Address::new(ResourceType::RESOURCE_PROVIDER, ns.clone());
            provider_addrs.insert(ns.to_ascii_lowercase(), a.clone());
            add(
                &mut g,
                ResourceNode {
                    address: a.clone(),
                    mode: Mode::Managed,
                    desired: json!({ "namespace": ns, "registrationState": "Registered" }),
                    source: Some(format!("resourceProviders[{i}]")),
                },
            );
            edges.push((a, sub_addr.clone()));
        }
        let roles = cfg
            .access
            .as_ref()
            .map(|a| a.require_any_role.clone())
            .unwrap_or_default();
        if !cfg.resource_providers.is_empty() {
            let a = Address::new(ResourceType::ROLE_CHECK, "subscription");
            add(
                &mut g,
                ResourceNode {
                    address: a.clone(),
                    mode: Mode::PlanCheck,
                    desired: json!({
                        "scope": format!("/subscriptions/{sub}"),
                        "requireAnyRole": roles,
                        "covers": provider_addrs.values().map(ToString::to_string).collect::<Vec<_>>(),
                    }),
                    source: Some("access".into()),
                },
            );
            edges.push((a.clone(), sub_addr.clone()));
            for p in provider_addrs.values() {
                edges.push((p.clone(), a.clone()));
            }
        }

        let stack_tag = |tags: &BTreeMap<String, String>| {
            let mut t = tags.clone();
            t.insert(STACK_TAG.to_owned(), cfg.stack.clone());
            t
        };
        for (i, rg) in cfg.resource_groups.iter().enumerate() {
            let a = Address::new(ResourceType::RESOURCE_GROUP, rg.name.clone());
            let check = Address::new(ResourceType::ROLE_CHECK, rg.name.clone());
            let mut covers = vec![a.to_string()];
            covers.extend(
                cfg.clusters
                    .iter()
                    .filter(|c| c.resource_group.eq_ignore_ascii_case(&rg.name))
                    .map(|c| {
                        Address::new(ResourceType::CONNECTED_CLUSTER, c.name.clone()).to_string()
                    }),
            );
            add(
                &mut g,
                ResourceNode {
                    address: check.clone(),
                    mode: Mode::PlanCheck,
                    desired: json!({
                        "scope": format!("/subscriptions/{sub}/resourceGroups/{}", rg.name),
                        "fallbackScope": format!("/subscriptions/{sub}"),
                        "requireAnyRole": roles,
                        "covers": covers,
                    }),
                    source: Some(format!("resourceGroups[{i}]")),
                },
            );
            edges.push((check.clone(), sub_addr.clone()));
            add(
                &mut g,
                ResourceNode {
                    address: a.clone(),
                    mode: if rg.existing {
                        Mode::Data
                    } else {
                        Mode::Managed
                    },
                    desired: if rg.existing {
                        json!({ "name": rg.name })
                    } else {
                        json!({ "name": rg.name, "location": rg.location, "tags": stack_tag(&rg.tags) })
                    },
                    source: Some(format!("resourceGroups[{i}]")),
                },
            );
            edges.push((a.clone(), sub_addr.clone()));
            edges.push((a, check));
        }

        for (i, c) in cfg.clusters.iter().enumerate() {
            let source = Some(format!("clusters[{i}]"));
            let key = Address::new(ResourceType::ONBOARDING_KEY, c.name.clone());
            let cc = Address::new(ResourceType::CONNECTED_CLUSTER, c.name.clone());
            let agents = Address::new(ResourceType::ARC_AGENTS, c.name.clone());
            let conn = Address::new(ResourceType::CONNECTIVITY, c.name.clone());
            let rg = Address::new(ResourceType::RESOURCE_GROUP, c.resource_group.clone());
            let check = Address::new(ResourceType::ROLE_CHECK, c.resource_group.clone());
            let location = cfg.cluster_location(c).map(str::to_owned);
            let cluster_access = json!({ "kubeconfig": c.kubeconfig, "context": c.context });
            let ownership = json!({
                "AZURE_SUBSCRIPTION_ID": sub,
                "AZURE_RESOURCE_GROUP": c.resource_group,
                "AZURE_RESOURCE_NAME": c.name,
                "AZURE_TENANT_ID": cfg.azure.tenant,
                "AZURE_REGION": location,
                "AZURE_ARC_AUTOUPDATE": c.agents.auto_upgrade.to_string(),
                "AZURE_ENVIRONMENT": cloud_name(&cfg.azure.cloud),
            });
            add(
                &mut g,
                ResourceNode {
                    address: key.clone(),
                    mode: Mode::Managed,
                    desired: json!({
                        "cluster": cluster_access,
                        "namespace": "azure-arc",
                        "secretName": "azure-arc-connect-privatekey",
                        "keyBits": 4096,
                        "ownership": ownership,
                    }),
                    source: source.clone(),
                },
            );
            edges.push((key.clone(), check.clone()));
            add(
                &mut g,
                ResourceNode {
                    address: cc.clone(),
                    mode: Mode::Managed,
                    desired: json!({
                        "subscriptionId": sub,
                        "resourceGroup": c.resource_group,
                        "name": c.name,
                        "location": location,
                        "tags": stack_tag(&c.tags),
                        "identity": { "type": "SystemAssigned" },
                        "distribution": c.distribution,
                        "infrastructure": c.infrastructure,
                        "agentPublicKeyCertificate": reference(&key, "publicKey"),
                        "agentAutoUpgrade": c.agents.auto_upgrade,
                    }),
                    source: source.clone(),
                },
            );
            edges.push((cc.clone(), rg.clone()));
            edges.push((cc.clone(), check.clone()));
            if let Some(p) = provider_addrs.get("microsoft.kubernetes") {
                edges.push((cc.clone(), p.clone()));
            }
            add(
                &mut g,
                ResourceNode {
                    address: agents.clone(),
                    mode: Mode::Managed,
                    desired: json!({
                        "cluster": cluster_access,
                        "connectedClusterId": reference(&cc, "id"),
                        "installer": match c.agents.installer { Installer::Helm => "helm", Installer::Manifests => "manifests" },
                        "version": c.agents.version,
                        "manifests": c.agents.manifests,
                        "timeout": c.agents.timeout,
                        "proxy": c.agents.proxy,
                        "ownership": ownership,
                        "distribution": c.distribution,
                        "infrastructure": c.infrastructure,
                    }),
                    source: source.clone(),
                },
            );
            add(
                &mut g,
                ResourceNode {
                    address: conn.clone(),
                    mode: Mode::ApplyCheck,
                    desired: json!({
                        "connectedClusterId": reference(&cc, "id"),
                        "agentsReady": reference(&agents, "ready"),
                        "timeout": c.agents.connect_timeout,
                    }),
                    source,
                },
            );
        }

        for (dependent, dependency) in &edges {
            if let Err(e) = g.depend(dependent, dependency, EdgeKind::Declared) {
                diags.push(Diagnostic::error("graph", e.to_string()));
            }
        }
        if let Err(e) = g.link_references() {
            diags.push(Diagnostic::error("graph", e.to_string()));
        }
        if let Err(cycle) = g.order() {
            diags.push(Diagnostic::error("cycle", cycle.to_string()));
        }
        if diags.has_errors() {
            return Err(diags);
        }
        Ok(g)
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
