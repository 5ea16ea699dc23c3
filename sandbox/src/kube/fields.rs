//! Field sets (`FieldsV1`), a small built-in "schema" of list and map types, object comparison,
//! server-side-apply merging and managedFields bookkeeping, after `sigs.k8s.io/structured-merge-diff`.
//!
//! Approximation: the real server knows the OpenAPI schema of every type. Here lists are atomic
//! unless their field name is in a table of well-known associative lists (`containers` by `name`,
//! `ports` by `containerPort`+`protocol`, `env`, `volumes`, `volumeMounts`, `conditions`,
//! `ownerReferences`, ...) or sets (`finalizers`); maps are granular except a few atomic ones
//! (label selectors, `nodeSelector`, `roleRef`).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::status::{ApiError, Cause};

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

/// The result of comparing two objects (`typed.Comparison`).
#[derive(Debug, Default, Clone)]
pub struct Comparison {
    /// Paths only in the new object.
    pub added: FieldSet,
    /// Leaf paths whose value changed.
    pub modified: FieldSet,
    /// Paths only in the old object.
    pub removed: FieldSet,
}

impl Comparison {
    /// True when nothing differs.
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// Compares two objects as `TypedValue.Compare` does.
pub fn compare(old: &Value, new: &Value) -> Comparison {
    let mut c = Comparison::default();
    let mut fields = Vec::new();
    let mut path = Vec::new();
    cmp_map(
        old.as_object(),
        new.as_object(),
        &mut fields,
        &mut path,
        &mut c,
    );
    c
}

fn is_empty_map(v: Option<&Value>) -> bool {
    match v {
        None => true,
        Some(Value::Object(m)) => m.is_empty(),
        _ => false,
    }
}

fn cmp_map(
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
    fields: &mut Vec<String>,
    path: &mut Vec<String>,
    c: &mut Comparison,
) {
    let mut keys: Vec<&String> = old.map(|m| m.keys().collect()).unwrap_or_default();
    if let Some(n) = new {
        for k in n.keys() {
            if !old.is_some_and(|o| o.contains_key(k)) {
                keys.push(k);
            }
        }
    }
    for k in keys {
        let o = old.and_then(|m| m.get(k));
        let n = new.and_then(|m| m.get(k));
        fields.push(k.clone());
        path.push(format!("f:{k}"));
        cmp_value(o, n, fields, path, c);
        item_hook(o, n, path, c);
        path.pop();
        fields.pop();
    }
}

fn item_hook(o: Option<&Value>, n: Option<&Value>, path: &[String], c: &mut Comparison) {
    match (o, n) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        _ => {}
    }
}

fn cmp_leaf(o: Option<&Value>, n: Option<&Value>, path: &[String], c: &mut Comparison) {
    match (o, n) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        (Some(a), Some(b)) if a != b => c.modified.insert(path),
        _ => {}
    }
}

fn cmp_value(
    o: Option<&Value>,
    n: Option<&Value>,
    fields: &mut Vec<String>,
    path: &mut Vec<String>,
    c: &mut Comparison,
) {
    let sample = n.or(o);
    match sample {
        Some(Value::Object(_)) => {
            let both_maps = o.is_none_or(Value::is_object) && n.is_none_or(Value::is_object);
            if !both_maps || map_atomic(fields) || (is_empty_map(o) && is_empty_map(n)) {
                cmp_leaf(o, n, path, c);
            } else {
                cmp_map(
                    o.and_then(Value::as_object),
                    n.and_then(Value::as_object),
                    fields,
                    path,
                    c,
                );
            }
        }
        Some(Value::Array(_)) => {
            let both = o.is_none_or(Value::is_array) && n.is_none_or(Value::is_array);
            let kind = list_kind(fields);
            if !both || kind == ListKind::Atomic {
                cmp_leaf(o, n, path, c);
                return;
            }
            let empty = Vec::new();
            let oi = o.and_then(Value::as_array).unwrap_or(&empty);
            let ni = n.and_then(Value::as_array).unwrap_or(&empty);
            let okeys: Vec<String> = oi
                .iter()
                .enumerate()
                .map(|(i, v)| item_pe(kind, v, i))
                .collect();
            let nkeys: Vec<String> = ni
                .iter()
                .enumerate()
                .map(|(i, v)| item_pe(kind, v, i))
                .collect();
            let mut order: Vec<&String> = okeys.iter().collect();
            for k in &nkeys {
                if !okeys.contains(k) {
                    order.push(k);
                }
            }
            for k in order {
                let ov = okeys.iter().position(|x| x == k).map(|i| &oi[i]);
                let nv = nkeys.iter().position(|x| x == k).map(|i| &ni[i]);
                path.push(k.clone());
                if matches!(kind, ListKind::Keyed(_)) {
                    cmp_map(
                        ov.and_then(Value::as_object),
                        nv.and_then(Value::as_object),
                        fields,
                        path,
                        c,
                    );
                    // A changed non-map item is a modified leaf.
                    if ov.is_some_and(|v| !v.is_object()) || nv.is_some_and(|v| !v.is_object()) {
                        cmp_leaf(ov, nv, path, c);
                    }
                } else {
                    cmp_leaf(ov, nv, path, c);
                }
                item_hook(ov, nv, path, c);
                path.pop();
            }
        }
        _ => cmp_leaf(o, n, path, c),
    }
}

/// Merges an applied configuration into the live object (`TypedValue.Merge`).
pub fn merge_apply(live: &Value, config: &Value) -> Value {
    let mut fields = Vec::new();
    merge_value(live, config, &mut fields)
}

fn merge_value(live: &Value, config: &Value, fields: &mut Vec<String>) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) if fields.is_empty() || !map_atomic(fields) => {
            let mut out = l.clone();
            for (k, cv) in c {
                fields.push(k.clone());
                let merged = match l.get(k) {
                    Some(lv) => merge_value(lv, cv, fields),
                    None => cv.clone(),
                };
                fields.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => {
            let kind = list_kind(fields);
            if kind == ListKind::Atomic {
                return config.clone();
            }
            let lkeys: Vec<String> = l
                .iter()
                .enumerate()
                .map(|(i, v)| item_pe(kind, v, i))
                .collect();
            let ckeys: Vec<String> = c
                .iter()
                .enumerate()
                .map(|(i, v)| item_pe(kind, v, i))
                .collect();
            let mut out = Vec::new();
            for (i, cv) in c.iter().enumerate() {
                match lkeys.iter().position(|k| *k == ckeys[i]) {
                    Some(li) if matches!(kind, ListKind::Keyed(_)) => {
                        out.push(merge_value(&l[li], cv, fields))
                    }
                    _ => out.push(cv.clone()),
                }
            }
            for (i, lv) in l.iter().enumerate() {
                if !ckeys.contains(&lkeys[i]) {
                    out.push(lv.clone());
                }
            }
            Value::Array(out)
        }
        _ => config.clone(),
    }
}

/// Removes the value at `path` from `obj`; returns whether something was removed.
pub fn remove_path(obj: &mut Value, path: &[String]) -> bool {
    let Some((last, init)) = path.split_last() else {
        return false;
    };
    let mut fields: Vec<String> = Vec::new();
    let mut cur = obj;
    for pe in init {
        match step_mut(cur, pe, &mut fields) {
            Some(n) => cur = n,
            None => return false,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        return cur.as_object_mut().and_then(|m| m.remove(f)).is_some();
    }
    let kind = list_kind(&fields);
    if let Some(items) = cur.as_array_mut() {
        let pos = items
            .iter()
            .enumerate()
            .position(|(i, v)| item_pe(kind, v, i) == *last);
        if let Some(p) = pos {
            items.remove(p);
            return true;
        }
    }
    false
}

fn step_mut<'a>(cur: &'a mut Value, pe: &str, fields: &mut Vec<String>) -> Option<&'a mut Value> {
    if let Some(f) = pe.strip_prefix("f:") {
        fields.push(f.to_string());
        return cur.as_object_mut()?.get_mut(f);
    }
    let kind = list_kind(fields);
    let items = cur.as_array_mut()?;
    let pos = items
        .iter()
        .enumerate()
        .position(|(i, v)| item_pe(kind, v, i) == pe)?;
    items.get_mut(pos)
}

/// Reads the value at `path`.
pub fn get_path<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut fields: Vec<String> = Vec::new();
    let mut cur = obj;
    for pe in path {
        if let Some(f) = pe.strip_prefix("f:") {
            fields.push(f.to_string());
            cur = cur.as_object()?.get(f)?;
        } else {
            let kind = list_kind(&fields);
            let items = cur.as_array()?;
            cur = items
                .iter()
                .enumerate()
                .find(|(i, v)| item_pe(kind, v, *i) == *pe)?
                .1;
        }
    }
    Some(cur)
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerEntry {
    /// `manager`.
    pub manager: String,
    /// `operation`: `Apply` or `Update`.
    pub operation: String,
    /// `apiVersion`.
    pub api_version: String,
    /// `time` (RFC 3339).
    pub time: Option<String>,
    /// `subresource` (empty for the main resource).
    pub subresource: String,
    /// `fieldsV1`.
    pub set: FieldSet,
}

impl ManagerEntry {
    fn same_identity(
        &self,
        manager: &str,
        operation: &str,
        subresource: &str,
        api_version: &str,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == subresource
            && (operation == "Apply" || self.api_version == api_version)
    }

    /// How conflict messages name this manager (`"kubectl" using apps/v1` for updaters).
    fn printed(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

/// Reads `metadata.managedFields`.
pub fn decode_managed(obj: &Value) -> Vec<ManagerEntry> {
    let Some(items) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    items
        .iter()
        .map(|e| ManagerEntry {
            manager: e
                .get("manager")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            operation: e
                .get("operation")
                .and_then(Value::as_str)
                .unwrap_or("Update")
                .to_string(),
            api_version: e
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            time: e.get("time").and_then(Value::as_str).map(str::to_string),
            subresource: e
                .get("subresource")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            set: e
                .get("fieldsV1")
                .map(FieldSet::from_fields_v1)
                .unwrap_or_default(),
        })
        .collect()
}

/// Encodes managedFields entries, sorted as the apiserver sorts them.
pub fn encode_managed(entries: &[ManagerEntry]) -> Value {
    let mut sorted: Vec<&ManagerEntry> = entries.iter().filter(|e| !e.set.is_empty()).collect();
    sorted.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| a.time.cmp(&b.time))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    Value::Array(
        sorted
            .into_iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("manager".into(), json!(e.manager));
                m.insert("operation".into(), json!(e.operation));
                m.insert("apiVersion".into(), json!(e.api_version));
                if let Some(t) = &e.time {
                    m.insert("time".into(), json!(t));
                }
                m.insert("fieldsType".into(), json!("FieldsV1"));
                m.insert("fieldsV1".into(), e.set.to_fields_v1());
                if !e.subresource.is_empty() {
                    m.insert("subresource".into(), json!(e.subresource));
                }
                Value::Object(m)
            })
            .collect(),
    )
}

/// Fields the field manager never tracks (non-recursive, as `stripMetaManager`).
fn strip_ignored(set: &mut FieldSet, reset: &[Vec<String>]) {
    let mut strip = FieldSet::default();
    for p in [
        vec!["f:apiVersion"],
        vec!["f:kind"],
        vec!["f:metadata"],
        vec!["f:metadata", "f:name"],
        vec!["f:metadata", "f:namespace"],
        vec!["f:metadata", "f:creationTimestamp"],
        vec!["f:metadata", "f:selfLink"],
        vec!["f:metadata", "f:uid"],
        vec!["f:metadata", "f:clusterName"],
        vec!["f:metadata", "f:generation"],
        vec!["f:metadata", "f:managedFields"],
        vec!["f:metadata", "f:resourceVersion"],
        vec!["f:metadata", "f:deletionTimestamp"],
        vec!["f:metadata", "f:deletionGracePeriodSeconds"],
    ] {
        let p: Vec<String> = p.into_iter().map(str::to_string).collect();
        strip.insert(&p);
    }
    *set = set.difference(&strip);
    for r in reset {
        set.remove_subtree(r);
    }
}

/// Removes `metadata.managedFields` from a copy of the object.
pub fn without_managed(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    o
}

/// Records an update (PUT, POST, non-apply PATCH) by `manager` (`managedFieldsUpdater.Update`).
/// `live` is the previous object (a skeleton for creates), `new` the object to store; both
/// without managedFields. `reset` are subtrees the endpoint does not own (e.g. `status`).
#[allow(clippy::too_many_arguments)]
pub fn record_update(
    mut managers: Vec<ManagerEntry>,
    live: &Value,
    new: &Value,
    manager: &str,
    api_version: &str,
    subresource: &str,
    now: &str,
    reset: &[Vec<String>],
) -> Vec<ManagerEntry> {
    let cmp = compare(live, new);
    let mut changed = cmp.added.clone();
    changed.union_with(&cmp.modified);
    for e in managers.iter_mut() {
        e.set = e.set.difference(&changed).difference(&cmp.removed);
    }
    strip_ignored(&mut changed, reset);
    if !changed.is_empty() {
        match managers
            .iter_mut()
            .find(|e| e.same_identity(manager, "Update", subresource, api_version))
        {
            Some(e) => {
                e.set.union_with(&changed);
                e.time = Some(now.to_string());
            }
            None => managers.push(ManagerEntry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: api_version.to_string(),
                time: Some(now.to_string()),
                subresource: subresource.to_string(),
                set: changed,
            }),
        }
    }
    managers.retain(|e| !e.set.is_empty());
    managers
}

/// The outcome of a server-side apply.
pub struct Applied {
    /// The new object (without managedFields).
    pub object: Value,
    /// The new managedFields entries.
    pub managers: Vec<ManagerEntry>,
}

/// Server-side apply (`Updater.Apply` + `managedFieldsUpdater.Apply`).
#[allow(clippy::too_many_arguments)]
pub fn apply(
    mut managers: Vec<ManagerEntry>,
    live: &Value,
    config: &Value,
    manager: &str,
    api_version: &str,
    subresource: &str,
    force: bool,
    now: &str,
    reset: &[Vec<String>],
) -> Result<Applied, ApiError> {
    let mut new_obj = merge_apply(live, config);
    let mut set = to_field_set(config);
    strip_ignored(&mut set, reset);
    let idx = managers
        .iter()
        .position(|e| e.same_identity(manager, "Apply", subresource, api_version));
    let last = idx.map(|i| managers[i].set.clone()).unwrap_or_default();
    // Prune: fields this manager applied last time, not now, and nobody else owns.
    let removed = last.difference(&set);
    let mut others = FieldSet::default();
    for (i, e) in managers.iter().enumerate() {
        if Some(i) != idx {
            others.union_with(&e.set);
        }
    }
    let mut to_remove: Vec<Vec<String>> = removed
        .paths()
        .into_iter()
        .filter(|p| !others.has_at_or_under(p) && !set.has_at_or_under(p))
        .collect();
    to_remove.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in &to_remove {
        let parent_len = p.len().saturating_sub(1);
        remove_path(&mut new_obj, p);
        // Drop maps emptied by the removal (as the real pruning does).
        let parent = &p[..parent_len];
        if !parent.is_empty()
            && get_path(&new_obj, parent).is_some_and(|v| v.as_object().is_some_and(Map::is_empty))
            && !set.contains(parent)
            && !others.has_at_or_under(parent)
        {
            remove_path(&mut new_obj, parent);
        }
    }
    let cmp = compare(live, &new_obj);
    let mut changed = cmp.added.clone();
    changed.union_with(&cmp.modified);
    // Conflicts with other managers.
    let mut conflicts: Vec<(usize, Vec<String>)> = Vec::new();
    for (i, e) in managers.iter().enumerate() {
        if Some(i) == idx {
            continue;
        }
        for p in e.set.intersection(&changed).paths() {
            conflicts.push((i, p));
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&managers, &conflicts));
    }
    for e in managers.iter_mut() {
        e.set = e.set.difference(&changed).difference(&cmp.removed);
    }
    let obj_changed = !cmp.is_same();
    match idx {
        Some(i) => {
            let e = &mut managers[i];
            if obj_changed || e.set != set {
                e.time = Some(now.to_string());
            }
            e.set = set;
            e.api_version = api_version.to_string();
        }
        None => managers.push(ManagerEntry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: api_version.to_string(),
            time: Some(now.to_string()),
            subresource: subresource.to_string(),
            set,
        }),
    }
    managers.retain(|e| !e.set.is_empty());
    Ok(Applied {
        object: new_obj,
        managers,
    })
}

fn conflict_error(managers: &[ManagerEntry], conflicts: &[(usize, Vec<String>)]) -> ApiError {
    let causes: Vec<Cause> = conflicts
        .iter()
        .map(|(i, p)| Cause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with {}", managers[*i].printed()),
            field: path_string(p),
        })
        .collect();
    let message = if conflicts.len() == 1 {
        let (i, p) = &conflicts[0];
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            managers[*i].printed(),
            path_string(p)
        )
    } else {
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, p) in conflicts {
            by.entry(managers[*i].printed())
                .or_default()
                .push(path_string(p));
        }
        let mut lines = Vec::new();
        for (m, paths) in by {
            lines.push(format!("conflicts with {m}:"));
            for p in paths {
                lines.push(format!("- {p}"));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApiError::apply_conflict(message, causes)
}

/// Strategic merge patch (subset): a JSON merge patch where known associative lists merge by
/// key, `$patch: delete|replace` directives are honoured and `$setElementOrder/...`,
/// `$retainKeys` and `$deleteFromPrimitiveList/...` directives are understood or ignored.
pub fn strategic_merge(target: &Value, patch: &Value) -> Value {
    let mut fields = Vec::new();
    smp_value(target, patch, &mut fields)
}

fn smp_value(target: &Value, patch: &Value, fields: &mut Vec<String>) -> Value {
    match patch {
        Value::Object(p) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut out = p.clone();
                out.remove("$patch");
                return Value::Object(out);
            }
            let mut out = match target {
                Value::Object(t) => t.clone(),
                _ => Map::new(),
            };
            for (k, pv) in p {
                if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
                    continue;
                }
                if let Some(list) = k.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(Value::Array(items)), Some(del)) =
                        (out.get_mut(list), pv.as_array())
                    {
                        items.retain(|v| !del.contains(v));
                    }
                    continue;
                }
                if pv.is_null() {
                    out.remove(k);
                    continue;
                }
                fields.push(k.clone());
                let merged = match out.get(k) {
                    Some(tv) => smp_value(tv, pv, fields),
                    None => smp_value(&Value::Null, pv, fields),
                };
                fields.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        Value::Array(pitems) => {
            let kind = list_kind(fields);
            let (ListKind::Keyed(_), Value::Array(titems)) = (kind, target) else {
                return Value::Array(pitems.iter().map(strip_directives).collect());
            };
            let mut out: Vec<Value> = titems.clone();
            for (i, pv) in pitems.iter().enumerate() {
                let key = item_pe(kind, pv, i);
                let pos = out
                    .iter()
                    .enumerate()
                    .position(|(j, v)| item_pe(kind, v, j) == key);
                let directive = pv.get("$patch").and_then(Value::as_str);
                match (pos, directive) {
                    (Some(j), Some("delete")) => {
                        out.remove(j);
                    }
                    (None, Some("delete")) => {}
                    (Some(j), _) => {
                        let merged = smp_value(&out[j], pv, fields);
                        out[j] = merged;
                    }
                    (None, _) => out.push(strip_directives(pv)),
                }
            }
            Value::Array(out)
        }
        _ => patch.clone(),
    }
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// Removes `null` map values recursively (typed decoding drops them).
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            for c in m.values_mut() {
                strip_nulls(c);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
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
