//! The resource graph: what the desired state expands to, and in what order it must be applied.
//!
//! Each resource kind's lowering (in the providers crate) adds nodes (one per resource or check,
//! each with a typed [`Address`] and its declared attributes) and edges to a [`GraphBuilder`].
//! Edges come from two sources: each kind's declared dependencies (a connected cluster needs
//! its resource group) and references inside attribute values (a value that stands for another
//! node's output, [`Deferred::Ref`]). Edges point from a dependency to its dependent. Cycles
//! are reported with the cycle named. The graph knows no resource kind.

use crate::address::{Address, ResourceType};
use crate::diag::{Diagnostic, Diagnostics};
use petgraph::Direction;
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;

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
}

/// Builds a graph from nodes and declared edges, collecting every problem (a duplicate address,
/// an edge to a node that does not exist, a cycle) instead of stopping at the first. Each
/// resource kind's lowering adds its nodes and edges; [`GraphBuilder::finish`] links the
/// references and orders the graph.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    graph: ResourceGraph,
    edges: Vec<(Address, Address)>,
    diags: Diagnostics,
}

impl GraphBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node whose declared attributes are `attributes` serialised (a typed attribute
    /// struct; references inside are [`Deferred::Ref`] values).
    pub fn node(
        &mut self,
        address: Address,
        mode: Mode,
        attributes: &impl Serialize,
        source: impl Into<String>,
    ) {
        let desired = match serde_json::to_value(attributes) {
            Ok(v) => v,
            Err(e) => {
                self.diags.push(Diagnostic::error(
                    "graph",
                    format!("the attributes of {address} do not serialise: {e}"),
                ));
                return;
            }
        };
        if let Err(e) = self.graph.add(ResourceNode {
            address,
            mode,
            desired,
            source: Some(source.into()),
        }) {
            self.diags.push(Diagnostic::error("graph", e.to_string()));
        }
    }

    /// `dependent` must be applied after `dependency` (both must be added by `finish`).
    pub fn edge(&mut self, dependent: &Address, dependency: &Address) {
        self.edges.push((dependent.clone(), dependency.clone()));
    }

    /// Whether a node with this address was added.
    pub fn has(&self, address: &Address) -> bool {
        self.graph.node(address).is_some()
    }

    /// The address of the node of `rtype` whose name equals `name` ignoring ASCII case.
    pub fn find(&self, rtype: &ResourceType, name: &str) -> Option<Address> {
        self.graph
            .nodes()
            .find(|n| n.address.rtype == *rtype && n.address.name.eq_ignore_ascii_case(name))
            .map(|n| n.address.clone())
    }

    /// The nodes of a type added so far, in the order they were added.
    pub fn of_type(&self, rtype: &ResourceType) -> Vec<Address> {
        self.graph
            .nodes()
            .filter(|n| n.address.rtype == *rtype)
            .map(|n| n.address.clone())
            .collect()
    }

    /// Links declared edges and references, checks for cycles, and returns the graph or every
    /// problem found.
    pub fn finish(mut self) -> Result<ResourceGraph, Diagnostics> {
        for (dependent, dependency) in &self.edges {
            if let Err(e) = self.graph.depend(dependent, dependency, EdgeKind::Declared) {
                self.diags.push(Diagnostic::error("graph", e.to_string()));
            }
        }
        if let Err(e) = self.graph.link_references() {
            self.diags.push(Diagnostic::error("graph", e.to_string()));
        }
        if let Err(cycle) = self.graph.order() {
            self.diags
                .push(Diagnostic::error("cycle", cycle.to_string()));
        }
        if self.diags.has_errors() {
            return Err(self.diags);
        }
        Ok(self.graph)
    }
}

/// An attribute whose value is known, or a reference to another node's output not yet known
/// (written `{"$ref": "<address>#<output>"}`; see [`reference`]). Typed attribute structs use it
/// for every field that may refer to another node.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Deferred<T> {
    /// A reference to `<address>#<output>`, resolved by the planner or the executor.
    Ref {
        /// `<address>#<output>`.
        #[serde(rename = "$ref")]
        target: String,
    },
    /// A known value.
    Known(T),
}

impl<T> Deferred<T> {
    /// A reference to `output` of the node at `address`.
    pub fn reference(address: &Address, output: &str) -> Self {
        Deferred::Ref {
            target: format!("{address}#{output}"),
        }
    }

    /// The value, when known.
    pub fn known(&self) -> Option<&T> {
        match self {
            Deferred::Known(v) => Some(v),
            Deferred::Ref { .. } => None,
        }
    }
}
