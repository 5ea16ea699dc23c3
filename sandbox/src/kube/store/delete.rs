//! DELETE: preconditions, finalizers, namespace termination and garbage collection of
//! dependents (ownerReferences), `Orphan` honoured.

use serde_json::{Value, json};

use super::{DeleteOpts, Key, Store, meta_mut, meta_str, now_rfc3339};
use crate::kube::WatchEvent;
use crate::kube::kinds;
use crate::kube::resources::{self, Deletion, ResourceDef};
use crate::kube::status::ApiError;

impl Store {
    /// DELETE. Returns the object as it was at deletion (or the terminating namespace / the
    /// object now carrying a deletionTimestamp) and the events.
    pub fn delete(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<(Value, Vec<WatchEvent>), ApiError> {
        let Some(old) = self.get(def, ns, name).cloned() else {
            return Err(ApiError::not_found(def.group, def.plural, name));
        };
        if let Some(uid) = &opts.uid
            && Some(uid.as_str()) != meta_str(&old, "uid")
        {
            // As the apiserver's rest.BeforeDelete says it: the resource is named by its kind.
            return Err(ApiError::conflict(
                def.group,
                def.kind,
                name,
                &format!(
                    "the UID in the precondition ({uid}) does not match the UID in record ({}). The object might have been deleted and then recreated",
                    meta_str(&old, "uid").unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = &opts.resource_version
            && Some(rv.as_str()) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                def.group,
                def.kind,
                name,
                &format!(
                    "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({}). The object might have been modified",
                    meta_str(&old, "resourceVersion").unwrap_or_default()
                ),
            ));
        }
        let has_finalizers = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if let Deletion::Terminate { protected } = def.deletion {
            if protected.contains(&name) {
                return Err(ApiError::forbidden_msg(
                    def.group,
                    def.plural,
                    name,
                    format!(
                        "{} \"{name}\" is forbidden: this namespace may not be deleted",
                        def.plural
                    ),
                ));
            }
            if old.pointer("/metadata/deletionTimestamp").is_some() || opts.dry_run {
                return Ok((old, Vec::new()));
            }
            let mut new = old.clone();
            meta_mut(&mut new).insert("deletionTimestamp".into(), json!(now_rfc3339()));
            meta_mut(&mut new).insert("deletionGracePeriodSeconds".into(), json!(0));
            new["status"] = json!({"phase": "Terminating"});
            let (obj, ev) = self.commit(def, ns, name, new, "MODIFIED");
            return Ok((obj, vec![ev]));
        }
        if opts.dry_run {
            return Ok((old, Vec::new()));
        }
        if has_finalizers {
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok((old, Vec::new()));
            }
            let mut new = old.clone();
            meta_mut(&mut new).insert("deletionTimestamp".into(), json!(now_rfc3339()));
            meta_mut(&mut new).insert("deletionGracePeriodSeconds".into(), json!(0));
            let (obj, ev) = self.commit(def, ns, name, new, "MODIFIED");
            return Ok((obj, vec![ev]));
        }
        let mut events = Vec::new();
        let Some((obj, ev)) = self.remove(def, ns, name) else {
            return Err(ApiError::not_found(def.group, def.plural, name));
        };
        events.push(ev);
        if opts.propagation.as_deref() != Some("Orphan")
            && let Some(uid) = meta_str(&obj, "uid")
        {
            events.extend(self.collect_dependents(uid));
        } else if let Some(uid) = meta_str(&obj, "uid") {
            self.orphan_dependents(uid, &mut events);
        }
        Ok((obj, events))
    }

    fn dependents(&self, uid: &str) -> Vec<(&'static ResourceDef, String, String)> {
        let mut out = Vec::new();
        for ((g, p, ns, name), obj) in &self.objects {
            let owned = obj
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                });
            if owned
                && let Some(def) = resources::RESOURCES
                    .iter()
                    .copied()
                    .find(|d| d.group == g && d.plural == p)
            {
                out.push((def, ns.clone(), name.clone()));
            }
        }
        out
    }

    fn collect_dependents(&mut self, uid: &str) -> Vec<WatchEvent> {
        let mut events = Vec::new();
        for (def, ns, name) in self.dependents(uid) {
            if let Ok((_, mut evs)) = self.delete(def, &ns, &name, &DeleteOpts::default()) {
                events.append(&mut evs);
            }
        }
        events
    }

    fn orphan_dependents(&mut self, uid: &str, events: &mut Vec<WatchEvent>) {
        for (def, ns, name) in self.dependents(uid) {
            if let Some(mut obj) = self.get(def, &ns, &name).cloned() {
                if let Some(refs) = obj
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                }
                let (_, ev) = self.commit(def, &ns, &name, obj, "MODIFIED");
                events.push(ev);
            }
        }
    }

    /// Removes every object of a namespace (namespace controller); returns the events.
    pub fn purge_namespace(&mut self, ns: &str) -> Vec<WatchEvent> {
        let keys: Vec<Key> = self
            .objects
            .keys()
            .filter(|k| !k.2.is_empty() && k.2 == ns)
            .cloned()
            .collect();
        let mut events = Vec::new();
        for (g, p, ns, name) in keys {
            if let Some(def) = resources::RESOURCES
                .iter()
                .copied()
                .find(|d| d.group == g && d.plural == p)
            {
                // Finalizers are ignored here: the sandbox has no controllers that would remove them.
                if let Some((obj, ev)) = self.remove(def, &ns, &name) {
                    events.push(ev);
                    if let Some(uid) = meta_str(&obj, "uid") {
                        events.extend(self.collect_dependents(uid));
                    }
                }
            }
        }
        events
    }

    /// Removes a namespace object outright (end of termination).
    pub fn finalize_namespace(&mut self, ns: &str) -> Vec<WatchEvent> {
        self.remove(&kinds::core::NAMESPACES, "", ns)
            .map(|(_, e)| vec![e])
            .unwrap_or_default()
    }
}
