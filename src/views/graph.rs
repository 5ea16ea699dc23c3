//! The resource graph as Graphviz DOT or a Mermaid flowchart. Arrows point in apply order,
//! from a dependency to what depends on it; references are dashed; checks and data sources
//! have their own shapes.

use arcplan_engine::graph::{EdgeKind, Mode, ResourceGraph, ResourceNode};

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// DOT text.
/// Where a node's configuration entry came from, when an inventory generated it (`origins`: by
/// the entry's key path, `clusters[3]`).
fn origin_of<'a>(n: &ResourceNode, origins: &'a Origins) -> Option<&'a str> {
    origins.get(n.source.as_deref()?).map(String::as_str)
}

/// Inventory origins by configuration key path.
pub type Origins = std::collections::BTreeMap<String, String>;

pub fn dot(g: &ResourceGraph, origins: &Origins) -> String {
    let mut out = String::from(
        "digraph arcplan {\n  rankdir = \"LR\";\n  label = \"arcplan resource graph (arrows in apply order)\";\n  node [shape = \"box\", style = \"rounded\", fontname = \"Helvetica\"];\n",
    );
    for n in g.nodes() {
        let (shape, style) = match n.mode {
            Mode::Managed => ("box", "rounded"),
            Mode::Data => ("box", "rounded,dashed"),
            Mode::PlanCheck | Mode::ApplyCheck => ("hexagon", "solid"),
        };
        out.push_str(&format!(
            "  {} [label = {}, shape = \"{shape}\", style = \"{style}\"];\n",
            quote(&n.address.to_string()),
            quote(&match origin_of(n, origins) {
                Some(o) => format!("{}\n{}\nfrom {o}", n.address.rtype, n.address.name),
                None => format!("{}\n{}", n.address.rtype, n.address.name),
            }),
        ));
    }
    for (from, to, kind) in g.edges() {
        let style = match kind {
            EdgeKind::Declared => "",
            EdgeKind::Reference => " [style = \"dashed\"]",
        };
        out.push_str(&format!(
            "  {} -> {}{style};\n",
            quote(&from.to_string()),
            quote(&to.to_string())
        ));
    }
    out.push_str("}\n");
    out
}

/// Mermaid text.
pub fn mermaid(g: &ResourceGraph, origins: &Origins) -> String {
    let mut out = String::from("flowchart LR\n");
    let ids: std::collections::HashMap<String, String> = g
        .nodes()
        .enumerate()
        .map(|(i, n)| (n.address.to_string(), format!("n{i}")))
        .collect();
    for n in g.nodes() {
        let id = &ids[&n.address.to_string()];
        let label = match origin_of(n, origins) {
            Some(o) => format!("{}<br/>{}<br/>from {o}", n.address.rtype, n.address.name),
            None => format!("{}<br/>{}", n.address.rtype, n.address.name),
        }
        .replace('"', "#quot;");
        let shape = match n.mode {
            Mode::Managed => format!("{id}(\"{label}\")"),
            Mode::Data => format!("{id}[/\"{label}\"/]"),
            Mode::PlanCheck | Mode::ApplyCheck => format!("{id}{{{{\"{label}\"}}}}"),
        };
        out.push_str(&format!("  {shape}\n"));
    }
    for (from, to, kind) in g.edges() {
        let arrow = match kind {
            EdgeKind::Declared => "-->",
            EdgeKind::Reference => "-.->",
        };
        out.push_str(&format!(
            "  {} {arrow} {}\n",
            ids[&from.to_string()],
            ids[&to.to_string()]
        ));
    }
    out
}
