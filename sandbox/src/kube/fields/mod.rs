//! Field sets (`FieldsV1`), a small built-in "schema" of list and map types, object comparison,
//! server-side-apply merging and managedFields bookkeeping, after `sigs.k8s.io/structured-merge-diff`.
//!
//! Approximation: the real server knows the OpenAPI schema of every type. Here lists are atomic
//! unless their field name is in a table of well-known associative lists (`containers` by `name`,
//! `ports` by `containerPort`+`protocol`, `env`, `volumes`, `volumeMounts`, `conditions`,
//! `ownerReferences`, ...) or sets (`finalizers`); maps are granular except a few atomic ones
//! (label selectors, `nodeSelector`, `roleRef`).

mod compare;
mod managed;
mod merge;

pub use compare::*;
pub use managed::*;
pub use merge::*;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// How a list is merged and tracked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ListKind {
    /// Replaced as a whole; owned as one leaf.
    Atomic,
    /// A set of scalars (`v:` elements).
    Set,
    /// An associative list keyed by these fields (`k:` elements).
    Keyed(&'static [&'static str]),
}

/// The list kind of the field at `fields` (field names from the root, list items skipped).
pub fn list_kind(fields: &[String]) -> ListKind {
    let n = fields.len();
    let last = fields.last().map(String::as_str).unwrap_or("");
    let parent = if n >= 2 { fields[n - 2].as_str() } else { "" };
    match last {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "readinessGates"
        | "resourceClaims" => ListKind::Keyed(&["name"]),
        "volumeMounts" => ListKind::Keyed(&["mountPath"]),
        "volumeDevices" => ListKind::Keyed(&["devicePath"]),
        "hostAliases" => ListKind::Keyed(&["ip"]),
        "conditions" => ListKind::Keyed(&["type"]),
        "ownerReferences" => ListKind::Keyed(&["uid"]),
        "finalizers" => ListKind::Set,
        "ports" if parent == "containers" || parent == "initContainers" => {
            ListKind::Keyed(&["containerPort", "protocol"])
        }
        "ports" if parent == "spec" && n == 2 => ListKind::Keyed(&["port", "protocol"]),
        _ => ListKind::Atomic,
    }
}

/// Whether the map at `fields` is atomic (owned and replaced as a whole).
pub fn map_atomic(fields: &[String]) -> bool {
    let last = fields.last().map(String::as_str).unwrap_or("");
    matches!(
        last,
        "selector"
            | "labelSelector"
            | "namespaceSelector"
            | "podSelector"
            | "nodeSelector"
            | "roleRef"
    ) && fields.len() > 1
}

/// Default values of list-map keys the server would default (`protocol: TCP`).
fn key_default(key: &str) -> Option<Value> {
    match key {
        "protocol" => Some(json!("TCP")),
        _ => None,
    }
}

/// The path element (FieldsV1 key) of a list item.
pub fn item_pe(kind: ListKind, item: &Value, index: usize) -> String {
    match kind {
        ListKind::Atomic => format!("i:{index}"),
        ListKind::Set => format!("v:{}", serde_json::to_string(item).unwrap_or_default()),
        ListKind::Keyed(keys) => {
            let mut m = BTreeMap::new();
            for k in keys {
                match item.get(*k).cloned().or_else(|| key_default(k)) {
                    Some(v) => {
                        m.insert(k.to_string(), v);
                    }
                    None => return format!("i:{index}"),
                }
            }
            format!("k:{}", serde_json::to_string(&m).unwrap_or_default())
        }
    }
}

/// A set of field paths, as `structured-merge-diff`'s `fieldpath.Set`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    member: bool,
    children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    /// True when no path is in the set.
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// Inserts a path.
    pub fn insert(&mut self, path: &[String]) {
        let mut node = self;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.member = true;
    }

    /// Whether `path` is a member.
    pub fn contains(&self, path: &[String]) -> bool {
        let mut node = self;
        for pe in path {
            match node.children.get(pe) {
                Some(n) => node = n,
                None => return false,
            }
        }
        node.member
    }

    /// Whether `path` or any path under it is a member.
    pub fn has_at_or_under(&self, path: &[String]) -> bool {
        let mut node = self;
        for pe in path {
            match node.children.get(pe) {
                Some(n) => node = n,
                None => return false,
            }
        }
        !node.is_empty()
    }

    /// Adds every member of `other`.
    pub fn union_with(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (k, v) in &other.children {
            self.children.entry(k.clone()).or_default().union_with(v);
        }
    }

    /// Members of `self` not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            let child = match other.children.get(k) {
                Some(o) => v.difference(o),
                None => v.clone(),
            };
            if !child.is_empty() {
                out.children.insert(k.clone(), child);
            }
        }
        out
    }

    /// Members in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            if let Some(o) = other.children.get(k) {
                let child = v.intersection(o);
                if !child.is_empty() {
                    out.children.insert(k.clone(), child);
                }
            }
        }
        out
    }

    /// Removes `path` and everything under it.
    pub fn remove_subtree(&mut self, path: &[String]) {
        if let Some((last, init)) = path.split_last() {
            let mut node = self;
            for pe in init {
                match node.children.get_mut(pe) {
                    Some(n) => node = n,
                    None => return,
                }
            }
            node.children.remove(last);
        }
    }

    /// Every member path, depth first.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut cur = Vec::new();
        self.collect(&mut cur, &mut out);
        out
    }

    fn collect(&self, cur: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member && !cur.is_empty() {
            out.push(cur.clone());
        }
        for (k, v) in &self.children {
            cur.push(k.clone());
            v.collect(cur, out);
            cur.pop();
        }
    }

    /// The `fieldsV1` JSON form.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (k, v) in &self.children {
            if v.is_empty() {
                continue;
            }
            m.insert(k.clone(), v.to_fields_v1());
        }
        Value::Object(m)
    }

    /// Parses the `fieldsV1` JSON form (unknown shapes are ignored).
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let mut out = FieldSet::default();
        if let Some(m) = v.as_object() {
            for (k, c) in m {
                if k == "." {
                    out.member = true;
                    continue;
                }
                let mut child = FieldSet::from_fields_v1(c);
                if c.as_object().is_some_and(Map::is_empty) {
                    child.member = true;
                }
                out.children.insert(k.clone(), child);
            }
        }
        out
    }
}

/// Formats a path the way `fieldpath.Path.String()` does (`.spec.containers[name="x"].image`).
pub fn path_string(path: &[String]) -> String {
    let mut s = String::new();
    for pe in path {
        if let Some(f) = pe.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = pe.strip_prefix("k:") {
            let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            s.push('[');
            s.push_str(&parts.join(","));
            s.push(']');
        } else if let Some(v) = pe.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        } else if let Some(i) = pe.strip_prefix("i:") {
            s.push_str(&format!("[{i}]"));
        }
    }
    s
}

/// The field set an applied configuration (or any object) claims (`ToFieldSet`).
pub fn to_field_set(obj: &Value) -> FieldSet {
    let mut out = FieldSet::default();
    if let Some(m) = obj.as_object() {
        let mut fields = Vec::new();
        let mut path = Vec::new();
        walk_map_fs(m, &mut fields, &mut path, &mut out);
    }
    out
}

fn walk_map_fs(
    m: &Map<String, Value>,
    fields: &mut Vec<String>,
    path: &mut Vec<String>,
    out: &mut FieldSet,
) {
    for (k, c) in m {
        fields.push(k.clone());
        path.push(format!("f:{k}"));
        walk_fs(c, fields, path, out);
        if c.is_null() || c.as_object().is_some_and(Map::is_empty) {
            out.insert(path);
        }
        path.pop();
        fields.pop();
    }
}

fn walk_fs(v: &Value, fields: &mut Vec<String>, path: &mut Vec<String>, out: &mut FieldSet) {
    match v {
        Value::Object(m) => {
            if map_atomic(fields) {
                out.insert(path);
            } else {
                walk_map_fs(m, fields, path, out);
            }
        }
        Value::Array(items) => match list_kind(fields) {
            ListKind::Atomic => out.insert(path),
            kind => {
                for (i, item) in items.iter().enumerate() {
                    path.push(item_pe(kind, item, i));
                    if matches!(kind, ListKind::Keyed(_))
                        && let Some(im) = item.as_object()
                    {
                        walk_map_fs(im, fields, path, out);
                    }
                    out.insert(path);
                    path.pop();
                }
            }
        },
        _ => out.insert(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_set_of_deployment_apply() {
        let cfg = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","labels":{"app":"a"}},
            "spec":{"replicas":1,"selector":{"matchLabels":{"app":"a"}},
              "template":{"spec":{"containers":[{"name":"c","image":"i","ports":[{"containerPort":80}]}]}}}});
        let mut s = to_field_set(&cfg);
        strip_ignored(&mut s, &[]);
        let v = s.to_fields_v1();
        assert_eq!(v["f:spec"]["f:selector"], json!({}));
        assert_eq!(v["f:metadata"]["f:labels"], json!({"f:app":{}}));
        let c = &v["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"];
        assert_eq!(c["."], json!({}));
        assert!(c["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"].is_object());
        assert!(v.get("f:apiVersion").is_none());
        assert_eq!(FieldSet::from_fields_v1(&v), s);
    }

    #[test]
    fn apply_conflict_and_force() {
        let live = json!({"metadata":{"name":"a"},"spec":{"replicas":1}});
        let mut m = vec![ManagerEntry {
            manager: "kubectl-client-side-apply".into(),
            operation: "Update".into(),
            api_version: "apps/v1".into(),
            time: None,
            subresource: String::new(),
            set: to_field_set(&json!({"spec":{"replicas":1}})),
        }];
        let cfg = json!({"metadata":{"name":"a"},"spec":{"replicas":2}});
        let err = apply(m.clone(), &live, &cfg, "me", "apps/v1", "", false, "t", &[])
            .err()
            .unwrap();
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
        );
        let ok = apply(m.clone(), &live, &cfg, "me", "apps/v1", "", true, "t", &[]).unwrap();
        assert_eq!(ok.object["spec"]["replicas"], 2);
        assert_eq!(ok.managers.len(), 1);
        // same value: no conflict, shared ownership
        let same = json!({"metadata":{"name":"a"},"spec":{"replicas":1}});
        let ok = apply(
            m.clone(),
            &live,
            &same,
            "me",
            "apps/v1",
            "",
            false,
            "t",
            &[],
        )
        .unwrap();
        assert_eq!(ok.managers.len(), 2);
        m.clear();
    }

    #[test]
    fn apply_prunes_removed_fields() {
        let cfg1 = json!({"metadata":{"name":"a","labels":{"x":"1","y":"2"}}});
        let a = apply(
            vec![],
            &json!({"metadata":{"name":"a"}}),
            &cfg1,
            "m",
            "v1",
            "",
            false,
            "t",
            &[],
        )
        .unwrap();
        let cfg2 = json!({"metadata":{"name":"a","labels":{"x":"1"}}});
        let b = apply(a.managers, &a.object, &cfg2, "m", "v1", "", false, "t", &[]).unwrap();
        assert_eq!(b.object["metadata"]["labels"], json!({"x":"1"}));
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let t = json!({"spec":{"containers":[{"name":"a","image":"1"},{"name":"b","image":"1"}]}});
        let p = json!({"spec":{"containers":[{"name":"b","image":"2"}]}});
        let r = strategic_merge(&t, &p);
        assert_eq!(r["spec"]["containers"][0]["image"], "1");
        assert_eq!(r["spec"]["containers"][1]["image"], "2");
    }
}
