//! managedFields bookkeeping: entries, updates, server-side apply with conflicts.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{FieldSet, compare, get_path, merge_apply, path_string, remove_path, to_field_set};
use crate::kube::status::{ApiError, Cause};

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
pub(super) fn strip_ignored(set: &mut FieldSet, reset: &[Vec<String>]) {
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
