//! The `manifests` installer: the object set (built in, or a rendered manifest file) applied by
//! server-side apply (field manager `arcplan`, forced), the labelled objects the set no longer
//! has pruned, and removal object by object. The set itself, its parsing and its field diff are
//! pure ([`crate::kubernetes::manifests`]); this module talks to the cluster.

use super::{Diff, Installer, Live, Step, Target};
use crate::kubernetes::access::{Cluster, is_not_found, resolve_path};
use crate::kubernetes::context::KubeCx;
use crate::kubernetes::kinds::arc_agents::Attributes;
use crate::kubernetes::manifests::{
    self as set, DesiredObject, diff, mask_secret, object_id, project, short_id,
};
use crate::kubernetes::{
    FIELD_MANAGER, KEY_SECRET, LOCK_NAME, MANAGED_BY_LABEL, NAMESPACE, RELEASE_NAMESPACE,
    ownership, readiness,
};
use arcplan_engine::diag::Diagnostic;
use async_trait::async_trait;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

/// The `manifests` installer.
pub struct Manifests;

/// The ConfigMap data the set writes: the `ownership` keys plus the agent version.
fn config_data(attrs: &Attributes, version: &str) -> Map<String, Value> {
    let mut data = ownership::desired_data(&attrs.ownership.to_map());
    data.insert("AZURE_ARC_AGENT_VERSION".into(), version.into());
    data
}

/// The object set for the attributes: the built-in agent set, or the manifest file (relative
/// to the configuration file's directory) plus the ownership ConfigMap.
pub async fn desired_set(
    cx: &KubeCx,
    attrs: &Attributes,
) -> Result<Vec<DesiredObject>, Diagnostic> {
    let version = attrs
        .version
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or(crate::kubernetes::DEFAULT_AGENT_VERSION);
    let data = config_data(attrs, version);
    match &attrs.manifests {
        None => Ok(set::builtin_objects(version, &data, &attrs.features)),
        Some(file) => {
            let path = resolve_path(&cx.options().base_dir, file);
            let text = tokio::fs::read_to_string(&path).await.map_err(|e| {
                Diagnostic::error(
                    "manifests-unreadable",
                    format!("cannot read the agents' manifest file {}: {e}", path.display()),
                )
                .with_key("agents.manifests")
                .with_hint("render it with `helm template azure-arc <chart> ... > FILE`; relative paths are taken from the configuration file's directory")
            })?;
            set::parse_manifests(&text, &path.display().to_string(), &data).map_err(|e| {
                Diagnostic::error("manifests-invalid", e)
                    .with_key("agents.manifests")
                    .with_hint("the file must hold Kubernetes objects, one YAML document each")
            })
        }
    }
}

/// An object kind's API resource and whether it is namespaced.
#[derive(Debug, Clone)]
struct ObjectKind {
    ar: ApiResource,
    namespaced: bool,
}

/// A labelled live object the set no longer contains.
#[derive(Debug, Clone)]
struct Extra {
    id: String,
    short: String,
    kind: ObjectKind,
    namespace: Option<String>,
    name: String,
}

/// The set with every object's kind resolved (namespaced objects written without a namespace
/// land in `azure-arc`).
async fn resolved_set(t: &Target<'_>) -> Result<(Vec<DesiredObject>, Vec<ObjectKind>), Diagnostic> {
    let mut objs = desired_set(t.cx, t.attrs).await?;
    let kinds = resolve_kinds(t.cluster, &mut objs).await?;
    Ok((objs, kinds))
}

async fn resolve_kinds(
    cluster: &Cluster,
    objs: &mut [DesiredObject],
) -> Result<Vec<ObjectKind>, Diagnostic> {
    let mut cache: HashMap<(String, String), ObjectKind> = HashMap::new();
    let mut out = Vec::new();
    for o in objs.iter_mut() {
        let key = (o.api_version.clone(), o.kind.clone());
        let kind = match cache.get(&key) {
            Some(k) => k.clone(),
            None => {
                let k = discover_kind(cluster, o).await?;
                cache.insert(key, k.clone());
                k
            }
        };
        if kind.namespaced {
            let ns = o.namespace.clone().unwrap_or_else(|| NAMESPACE.to_owned());
            o.set_namespace(Some(&ns));
        } else {
            o.set_namespace(None);
        }
        out.push(kind);
    }
    Ok(out)
}

async fn discover_kind(cluster: &Cluster, o: &DesiredObject) -> Result<ObjectKind, Diagnostic> {
    let gvk = GroupVersionKind::gvk(o.group(), o.version(), &o.kind);
    if let Some((plural, namespaced)) = set::known_kind(&o.api_version, &o.kind) {
        return Ok(ObjectKind {
            ar: ApiResource::from_gvk_with_plural(&gvk, plural),
            namespaced,
        });
    }
    let (ar, caps) = kube::discovery::pinned_kind(&cluster.client, &gvk)
        .await
        .map_err(|e| match e {
            kube::Error::Discovery(_) => Diagnostic::error(
                "k8s-unknown-kind",
                format!(
                    "{} does not serve {} {} (needed by {})",
                    cluster.describe(),
                    o.api_version,
                    o.kind,
                    short_id(o)
                ),
            )
            .with_key("agents.manifests")
            .with_hint("install the CustomResourceDefinition first, or remove the object from the manifest file"),
            other => cluster.api_error(&format!("discover {} {}", o.api_version, o.kind), &other),
        })?;
    Ok(ObjectKind {
        ar,
        namespaced: caps.scope == Scope::Namespaced,
    })
}

/// Objects that carry the label but are never pruned: the key's Secret, the namespaces, the lock.
fn excluded(kind: &str, ns: Option<&str>, name: &str) -> bool {
    matches!(
        (kind, ns, name),
        ("Secret", Some(NAMESPACE), KEY_SECRET)
            | ("Namespace", None, NAMESPACE | RELEASE_NAMESPACE)
            | ("Lease", _, LOCK_NAME)
    )
}

fn dyn_api(cluster: &Cluster, kind: &ObjectKind, ns: Option<&str>) -> Api<DynamicObject> {
    match (kind.namespaced, ns) {
        (true, Some(ns)) => Api::namespaced_with(cluster.client.clone(), ns, &kind.ar),
        _ => Api::all_with(cluster.client.clone(), &kind.ar),
    }
}

/// List items come without `apiVersion` and `kind`; put them back.
fn typed(mut v: Value, kind: &ObjectKind) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.insert("apiVersion".into(), kind.ar.api_version.clone().into());
        m.insert("kind".into(), kind.ar.kind.clone().into());
    }
    v
}

/// Reads the live objects of the set and the labelled objects it no longer has.
async fn read_live(
    cluster: &Cluster,
    objs: &[DesiredObject],
    kinds: &[ObjectKind],
) -> Result<(Vec<Option<Value>>, Vec<Extra>), Diagnostic> {
    let selector = format!("{}={}", MANAGED_BY_LABEL.0, MANAGED_BY_LABEL.1);
    let mut labelled: BTreeMap<String, (ObjectKind, Value)> = BTreeMap::new();
    let mut listed: Vec<String> = Vec::new();
    for kind in kinds {
        let kkey = format!("{} {}", kind.ar.api_version, kind.ar.kind);
        if listed.contains(&kkey) {
            continue;
        }
        listed.push(kkey);
        let api = dyn_api(cluster, kind, None);
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| cluster.api_error(&format!("list {} ({selector})", kind.ar.plural), &e))?;
        for item in list.items {
            let ns = item.metadata.namespace.clone();
            let name = item.metadata.name.clone().unwrap_or_default();
            let id = object_id(&kind.ar.api_version, &kind.ar.kind, ns.as_deref(), &name);
            let v = typed(serde_json::to_value(&item).unwrap_or(Value::Null), kind);
            labelled.insert(id, (kind.clone(), v));
        }
    }
    let mut live = Vec::new();
    for (o, kind) in objs.iter().zip(kinds) {
        let found = match labelled.remove(&o.id()) {
            Some((_, v)) => Some(v),
            None => {
                let api = dyn_api(cluster, kind, o.namespace.as_deref());
                api.get_opt(&o.name)
                    .await
                    .map_err(|e| cluster.api_error(&format!("read {}", short_id(o)), &e))?
                    .map(|d| typed(serde_json::to_value(&d).unwrap_or(Value::Null), kind))
            }
        };
        live.push(found);
    }
    let extra = labelled
        .into_iter()
        .filter_map(|(id, (kind, v))| {
            let ns = v
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let name = v
                .pointer("/metadata/name")
                .and_then(Value::as_str)?
                .to_owned();
            if excluded(&kind.ar.kind, ns.as_deref(), &name)
                || v.pointer("/metadata/deletionTimestamp").is_some()
            {
                return None;
            }
            let short = match &ns {
                Some(n) => format!("{} {n}/{name}", kind.ar.kind),
                None => format!("{} {name}", kind.ar.kind),
            };
            Some(Extra {
                id,
                short,
                kind,
                namespace: ns,
                name,
            })
        })
        .collect();
    Ok((live, extra))
}

fn masked(v: &Value) -> Value {
    let mut v = v.clone();
    mask_secret(&mut v);
    v
}

fn deployment_names(objs: &[DesiredObject]) -> Vec<String> {
    objs.iter()
        .filter(|o| o.kind == "Deployment" && o.namespace.as_deref() == Some(NAMESPACE))
        .map(|o| o.name.clone())
        .collect()
}

/// For a first install, one line per object (a Deployment's image and replicas) instead of
/// nine full specs: a reviewer sees what will run without scrolling through templates.
fn summarize_objects(mut after: Value) -> Value {
    if let Some(objects) = after.get_mut("objects").and_then(Value::as_object_mut) {
        for obj in objects.values_mut() {
            *obj = Value::String(summary(obj));
        }
    }
    after
}

fn summary(obj: &Value) -> String {
    match obj.get("kind").and_then(Value::as_str).unwrap_or("object") {
        "Deployment" => {
            let image = obj
                .pointer("/spec/template/spec/containers/0/image")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let replicas = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            format!(
                "{image} ({replicas} replica{})",
                if replicas == 1 { "" } else { "s" }
            )
        }
        "ConfigMap" => {
            let n = obj
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |d| d.len());
            format!("ConfigMap with {n} keys")
        }
        other => other.to_owned(),
    }
}

#[async_trait]
impl Installer for Manifests {
    async fn left_behind(&self, cx: &KubeCx, attrs: &Attributes) -> Vec<String> {
        match desired_set(cx, attrs).await {
            Ok(objs) => objs.iter().map(short_id).collect(),
            Err(_) => vec![format!(
                "the Arc agents in namespace {}",
                crate::kubernetes::NAMESPACE
            )],
        }
    }

    async fn read(&self, t: &Target<'_>, recorded: bool) -> Result<Live, Diagnostic> {
        let (objs, kinds) = resolved_set(t).await?;
        let (live, extra) = read_live(t.cluster, &objs, &kinds).await?;
        let names = deployment_names(&objs);
        let (readiness, _) = readiness::observe(t.cluster, Some(&names)).await?;
        let exists_any = live.iter().any(Option::is_some);
        let installed = recorded
            || objs
                .iter()
                .zip(&live)
                .any(|(o, l)| o.kind == "Deployment" && l.is_some());
        let objects: Map<String, Value> = objs
            .iter()
            .zip(&live)
            .map(|(o, l)| {
                (
                    o.id(),
                    l.as_ref()
                        .map(|l| project(&masked(&o.body), &masked(l)))
                        .unwrap_or(Value::Null),
                )
            })
            .collect();
        let mut state = Map::new();
        state.insert("objects".into(), objects.into());
        state.insert(
            "prune".into(),
            extra
                .iter()
                .map(|e| e.id.clone())
                .collect::<Vec<_>>()
                .into(),
        );
        state.insert(
            "pruneNames".into(),
            extra
                .iter()
                .map(|e| e.short.clone())
                .collect::<Vec<_>>()
                .into(),
        );
        Ok(Live {
            exists: exists_any || recorded || !extra.is_empty(),
            installed,
            state,
            readiness,
            version: None,
        })
    }

    async fn diff(&self, t: &Target<'_>, prior: Option<&Value>) -> Result<Diff, Diagnostic> {
        let objs = desired_set(t.cx, t.attrs).await?;
        let live = prior
            .and_then(|p| p.get("objects"))
            .cloned()
            .unwrap_or(Value::Null);
        let mut changes = Vec::new();
        let mut after = Map::new();
        for o in &objs {
            // Namespaces are resolved against the cluster in read; match by the same rule here.
            let id = o.id();
            let live_obj = live
                .get(&id)
                .or_else(|| {
                    // Namespaced objects written without a namespace default to azure-arc.
                    live.get(object_id(&o.api_version, &o.kind, Some(NAMESPACE), &o.name))
                })
                .or_else(|| live.get(object_id(&o.api_version, &o.kind, None, &o.name)));
            let want = masked(&o.body);
            after.insert(id, want.clone());
            match live_obj {
                None | Some(Value::Null) => {
                    changes.push(format!("{}: missing (created)", short_id(o)));
                }
                Some(l) => {
                    let mut fields = Vec::new();
                    diff(&want, l, "", &mut fields);
                    if !fields.is_empty() {
                        changes.push(format!("{}: {}", short_id(o), fields.join(", ")));
                    }
                }
            }
        }
        let extra = prior
            .and_then(|p| p.get("pruneNames"))
            .and_then(Value::as_array);
        for e in extra.into_iter().flatten().filter_map(Value::as_str) {
            changes.push(format!("{e}: no longer in the set (pruned)"));
        }
        let after = json!({"installer": "manifests", "objects": after});
        Ok(Diff {
            changes,
            after: match prior {
                None => summarize_objects(after),
                Some(_) => after,
            },
        })
    }

    async fn install(
        &self,
        t: &Target<'_>,
        step: &Step<'_>,
    ) -> Result<Option<Vec<String>>, Diagnostic> {
        let (objs, kinds) = resolved_set(t).await?;
        let cluster = t.cluster;
        let mut order: Vec<usize> = (0..objs.len()).collect();
        order.sort_by_key(|i| set::apply_rank(&objs[*i].kind));
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        for (n, i) in order.iter().enumerate() {
            let (o, kind) = (&objs[*i], &kinds[*i]);
            let api = dyn_api(cluster, kind, o.namespace.as_deref());
            api.patch(&o.name, &pp, &Patch::Apply(&o.body))
                .await
                .map_err(|e| cluster.api_error(&format!("apply {}", short_id(o)), &e))?;
            if (n + 1) % 5 == 0 || n + 1 == order.len() {
                (step.say)(format!("applied {}/{} objects", n + 1, order.len()));
            }
        }
        let (_, extra) = read_live(cluster, &objs, &kinds).await?;
        for e in &extra {
            let api = dyn_api(cluster, &e.kind, e.namespace.as_deref());
            match api.delete(&e.name, &DeleteParams::background()).await {
                Ok(_) => (step.say)(format!("pruned {}", e.short)),
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(cluster.api_error(&format!("prune {}", e.short), &err)),
            }
        }
        Ok(Some(deployment_names(&objs)))
    }

    async fn remove(
        &self,
        t: &Target<'_>,
        step: &Step<'_>,
        everything: bool,
    ) -> Result<(), Diagnostic> {
        let (objs, kinds) = resolved_set(t).await?;
        let cluster = t.cluster;
        let (live, extra) = read_live(cluster, &objs, &kinds).await?;
        let mut doomed: Vec<(ObjectKind, Option<String>, String, String)> = Vec::new();
        for ((o, kind), l) in objs.iter().zip(&kinds).zip(&live) {
            if l.is_none() || o.kind == "Namespace" {
                continue;
            }
            // On destroy the namespace deletion takes namespaced objects along.
            if everything && kind.namespaced && o.namespace.as_deref() == Some(NAMESPACE) {
                continue;
            }
            doomed.push((
                kind.clone(),
                o.namespace.clone(),
                o.name.clone(),
                short_id(o),
            ));
        }
        for e in extra {
            doomed.push((e.kind, e.namespace, e.name, e.short));
        }
        for (kind, ns, name, short) in doomed {
            let api = dyn_api(cluster, &kind, ns.as_deref());
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => (step.say)(format!("deleted {short}")),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(cluster.api_error(&format!("delete {short}"), &e)),
            }
        }
        Ok(())
    }
}
