//! `k8s.arcAgents.<cluster>`: the ownership record and the Arc agents.
//!
//! - read: the ownership ConfigMap (a record naming another ARM resource fails the plan), then,
//!   for `installer: manifests`, every object of the set (the fields it declares) and the
//!   labelled objects the set no longer has; for `installer: helm`, the release from Helm's
//!   storage and the Deployments it rendered; plus agent readiness.
//! - plan: nothing installed → create; the connected cluster's id unknown while agents exist
//!   (the ARM resource is gone or replaced) → replace ("orphaned agents"); objects missing or
//!   fields changed, a release at another version or with other values → update naming each
//!   object and field; otherwise no-op with `ready`. Destroy → delete, after the ARM resource
//!   (`delete_after`), as `az connectedk8s delete` orders it.
//! - apply: server-side apply (field manager `arcplan`, forced), prune by ownership label, or
//!   `helm upgrade --install`; then the readiness wait, and the digest of what was applied is
//!   recorded on the ownership ConfigMap ([`super::applied`], for drift). Delete removes the agents (helm
//!   uninstall or the labelled objects), waits for namespace `azure-arc` to terminate and deletes
//!   `azure-arc-release`.
//!
//! It does not touch the onboarding key's Secret (except, for Helm, reading it to pass it on
//! standard input) and knows nothing of Azure beyond the ownership keys.

use super::access::{Cluster, is_not_found};
use super::helm;
use super::manifests::{self, DesiredObject, diff, mask_secret, object_id, project, short_id};
use super::onboarding_key::{check_owner, pem_of, read_ownership};
use super::ownership::{self, OWNERSHIP_KEYS};
use super::readiness;
use super::{
    AGENTS, DEFAULT_AGENT_VERSION, FIELD_MANAGER, KEY_SECRET, KubernetesProvider, LOCK_NAME,
    MANAGED_BY_LABEL, NAMESPACE, RELEASE_NAME, RELEASE_NAMESPACE, at, diags_at, duration_attr,
};
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use arcplan_engine::events::Event;
use arcplan_engine::plan::{Action, PlanMode, Reason, ReasonCode};
use arcplan_engine::provider::*;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// The installer named by the `installer` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installer {
    /// Server-side apply of manifests.
    Manifests,
    /// `helm upgrade --install`.
    Helm,
}

fn installer(desired: &Value) -> Result<Installer, Diagnostic> {
    match desired.get("installer").and_then(Value::as_str) {
        Some("helm") => Ok(Installer::Helm),
        Some("manifests") | None => Ok(Installer::Manifests),
        Some(other) => Err(Diagnostic::error(
            "invalid-installer",
            format!("installer `{other}` is not known"),
        )
        .with_key("agents.installer")
        .with_hint("use `helm` or `manifests`")),
    }
}

fn version(desired: &Value) -> Option<String> {
    desired
        .get("version")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The ConfigMap data the set writes: the `ownership` keys plus the agent version.
fn config_data(desired: &Value) -> Map<String, Value> {
    let own = desired
        .get("ownership")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut data = ownership::desired_data(&own);
    data.insert(
        "AZURE_ARC_AGENT_VERSION".into(),
        version(desired)
            .unwrap_or_else(|| DEFAULT_AGENT_VERSION.into())
            .into(),
    );
    data
}

/// The `manifests` installer's object set for the desired attributes.
pub async fn desired_set(
    p: &KubernetesProvider,
    desired: &Value,
) -> Result<Vec<DesiredObject>, Diagnostic> {
    let data = config_data(desired);
    match desired.get("manifests").and_then(Value::as_str) {
        None => Ok(manifests::builtin_objects(
            &version(desired).unwrap_or_else(|| DEFAULT_AGENT_VERSION.into()),
            &data,
        )),
        Some(file) => {
            let path = super::access::resolve_path(&p.options().base_dir, file);
            let text = tokio::fs::read_to_string(&path).await.map_err(|e| {
                Diagnostic::error(
                    "manifests-unreadable",
                    format!("cannot read the agents' manifest file {}: {e}", path.display()),
                )
                .with_key("agents.manifests")
                .with_hint("render it with `helm template azure-arc <chart> ... > FILE`; relative paths are taken from the configuration file's directory")
            })?;
            manifests::parse_manifests(&text, &path.display().to_string(), &data).map_err(|e| {
                Diagnostic::error("manifests-invalid", e)
                    .with_key("agents.manifests")
                    .with_hint("the file must hold Kubernetes objects, one YAML document each")
            })
        }
    }
}

/// A kind's API resource and whether it is namespaced.
#[derive(Debug, Clone)]
struct Kind {
    ar: ApiResource,
    namespaced: bool,
}

async fn resolve_kinds(
    cluster: &Cluster,
    objs: &mut [DesiredObject],
) -> Result<Vec<Kind>, Diagnostic> {
    let mut cache: HashMap<(String, String), Kind> = HashMap::new();
    let mut out = Vec::new();
    for o in objs.iter_mut() {
        let key = (o.api_version.clone(), o.kind.clone());
        let kind = match cache.get(&key) {
            Some(k) => k.clone(),
            None => {
                let gvk = GroupVersionKind::gvk(o.group(), o.version(), &o.kind);
                let k = match manifests::known_kind(&o.api_version, &o.kind) {
                    Some((plural, namespaced)) => Kind {
                        ar: ApiResource::from_gvk_with_plural(&gvk, plural),
                        namespaced,
                    },
                    None => {
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
                                other => cluster.api_error(
                                    &format!("discover {} {}", o.api_version, o.kind),
                                    &other,
                                ),
                            })?;
                        Kind {
                            ar,
                            namespaced: caps.scope == Scope::Namespaced,
                        }
                    }
                };
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

/// A labelled live object the set no longer contains.
#[derive(Debug, Clone)]
struct Extra {
    id: String,
    short: String,
    kind: Kind,
    namespace: Option<String>,
    name: String,
}

fn excluded(kind: &str, ns: Option<&str>, name: &str) -> bool {
    matches!(
        (kind, ns, name),
        ("Secret", Some(NAMESPACE), KEY_SECRET)
            | ("Namespace", None, NAMESPACE | RELEASE_NAMESPACE)
            | ("Lease", _, LOCK_NAME)
    )
}

fn dyn_api(cluster: &Cluster, kind: &Kind, ns: Option<&str>) -> Api<DynamicObject> {
    match (kind.namespaced, ns) {
        (true, Some(ns)) => Api::namespaced_with(cluster.client.clone(), ns, &kind.ar),
        _ => Api::all_with(cluster.client.clone(), &kind.ar),
    }
}

/// List items come without `apiVersion` and `kind`; put them back.
fn typed(mut v: Value, kind: &Kind) -> Value {
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
    kinds: &[Kind],
) -> Result<(Vec<Option<Value>>, Vec<Extra>), Diagnostic> {
    let selector = format!("{}={}", MANAGED_BY_LABEL.0, MANAGED_BY_LABEL.1);
    let mut labelled: BTreeMap<String, (Kind, Value)> = BTreeMap::new();
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
        let id = o.id();
        let found = match labelled.remove(&id) {
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

/// Deployments in `azure-arc` a release rendered (from its manifest).
fn release_deployments(manifest: &str) -> Vec<String> {
    serde_saphyr::from_multiple::<Value>(manifest)
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("Deployment"))
        .filter(|d| {
            d.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .is_none_or(|n| n == NAMESPACE)
        })
        .filter_map(|d| d.pointer("/metadata/name")?.as_str().map(str::to_owned))
        .collect()
}

async fn read_release_full(
    cluster: &Cluster,
) -> Result<Option<(helm::HelmRelease, Vec<String>)>, Diagnostic> {
    // The facts come from `helm::read_release`; the rendered Deployment names need the manifest,
    // which `HelmRelease` does not keep, so read the storage Secret once more only when needed.
    let Some(rel) = helm::read_release(cluster, RELEASE_NAME, RELEASE_NAMESPACE).await? else {
        return Ok(None);
    };
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), RELEASE_NAMESPACE);
    let name = format!("sh.helm.release.v1.{RELEASE_NAME}.v{}", rel.revision);
    let deployments = match api.get_opt(&name).await {
        Ok(Some(s)) => s
            .data
            .as_ref()
            .and_then(|d| d.get("release"))
            .and_then(|b| helm::decode_release(&b.0).ok())
            .and_then(|v| {
                v.get("manifest")
                    .and_then(Value::as_str)
                    .map(release_deployments)
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    Ok(Some((rel, deployments)))
}

fn ownership_state(live: Option<&Map<String, Value>>) -> Value {
    match live {
        None => Value::Null,
        Some(m) => Value::Object(
            OWNERSHIP_KEYS
                .iter()
                .filter_map(|k| Some(((*k).to_owned(), m.get(*k)?.clone())))
                .collect(),
        ),
    }
}

fn agents_state(r: &readiness::Readiness) -> Value {
    json!({"total": r.total, "available": r.available, "notReady": r.not_ready})
}

/// `read` for `k8s.arcAgents`.
pub(crate) async fn read(p: &KubernetesProvider, req: ReadRequest) -> ReadResponse {
    let address = req.address.clone();
    let mut applied_digest = None;
    match read_inner(p, &req.desired, &address, &mut applied_digest).await {
        Ok(state) => ReadResponse {
            version: state.as_ref().map(digest),
            state,
            applied_digest,
            ..Default::default()
        },
        Err(d) => ReadResponse {
            diagnostics: diags_at(&address, d),
            ..Default::default()
        },
    }
}

fn digest(v: &Value) -> String {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(v.to_string().as_bytes());
    h.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

async fn read_inner(
    p: &KubernetesProvider,
    desired: &Value,
    address: &Address,
    applied_digest: &mut Option<String>,
) -> Result<Option<Value>, Diagnostic> {
    let cluster = p.cluster(&desired["cluster"]).await?;
    let inst = installer(desired)?;
    let live_owner = match super::applied::read_record(&cluster).await? {
        Some((data, recorded)) => {
            *applied_digest = recorded;
            Some(data)
        }
        None => None,
    };
    check_owner(&cluster, live_owner.as_ref(), desired, address)?;
    match inst {
        Installer::Manifests => {
            let mut objs = desired_set(p, desired).await?;
            let kinds = resolve_kinds(&cluster, &mut objs).await?;
            let (live, extra) = read_live(&cluster, &objs, &kinds).await?;
            let names = deployment_names(&objs);
            let (r, _) = readiness::observe(&cluster, Some(&names)).await?;
            let exists_any = live.iter().any(Option::is_some);
            let installed = live_owner.is_some()
                || objs
                    .iter()
                    .zip(&live)
                    .any(|(o, l)| o.kind == "Deployment" && l.is_some());
            if !exists_any && live_owner.is_none() && extra.is_empty() {
                return Ok(None);
            }
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
            Ok(Some(json!({
                "installer": "manifests",
                "installed": installed,
                "ownership": ownership_state(live_owner.as_ref()),
                "objects": objects,
                "prune": extra.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
                "pruneNames": extra.iter().map(|e| e.short.clone()).collect::<Vec<_>>(),
                "agents": agents_state(&r),
                "ready": r.total > 0 && r.not_ready.is_empty(),
            })))
        }
        Installer::Helm => {
            let release = read_release_full(&cluster).await?;
            let names: Vec<String> = match &release {
                Some((_, d)) if !d.is_empty() => d.clone(),
                _ => AGENTS.iter().map(|s| (*s).to_owned()).collect(),
            };
            let (r, deployments) = readiness::observe(&cluster, Some(&names)).await?;
            let ns_exists = Api::<Namespace>::all(cluster.client.clone())
                .get_opt(NAMESPACE)
                .await
                .map_err(|e| cluster.api_error("read namespace azure-arc", &e))?
                .is_some();
            let installed = live_owner.is_some() || release.is_some() || !deployments.is_empty();
            if !installed && !ns_exists {
                return Ok(None);
            }
            Ok(Some(json!({
                "installer": "helm",
                "installed": installed,
                "ownership": ownership_state(live_owner.as_ref()),
                "release": release.as_ref().map(|(rel, d)| json!({
                    "name": rel.name,
                    "revision": rel.revision,
                    "status": rel.status,
                    "chart": rel.chart_name,
                    "version": rel.chart_version,
                    "values": rel.values,
                    "deployments": d,
                })),
                "agents": agents_state(&r),
                "ready": r.total > 0 && r.not_ready.is_empty(),
            })))
        }
    }
}

/// What differs between the desired attributes and the live state (one line per object or
/// field), for the manifests installer.
async fn manifest_changes(
    p: &KubernetesProvider,
    desired: &Value,
    prior: &Value,
) -> Result<(Vec<String>, Value), Diagnostic> {
    let objs = desired_set(p, desired).await?;
    let live = prior.get("objects").cloned().unwrap_or(Value::Null);
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
            None | Some(Value::Null) => changes.push(format!("{}: missing (created)", short_id(o))),
            Some(l) => {
                let mut fields = Vec::new();
                diff(&want, l, "", &mut fields);
                if !fields.is_empty() {
                    changes.push(format!("{}: {}", short_id(o), fields.join(", ")));
                }
            }
        }
    }
    if let Some(extra) = prior.get("pruneNames").and_then(Value::as_array) {
        for e in extra.iter().filter_map(Value::as_str) {
            changes.push(format!("{e}: no longer in the set (pruned)"));
        }
    }
    Ok((changes, json!({"installer": "manifests", "objects": after})))
}

/// For a first install, one line per object (a Deployment's image and replicas) instead of
/// nine full specs: a reviewer sees what will run without scrolling through templates.
fn summarize_objects(mut after: Value) -> Value {
    if let Some(objects) = after.get_mut("objects").and_then(Value::as_object_mut) {
        for obj in objects.values_mut() {
            let kind = obj
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("object")
                .to_owned();
            *obj = match kind.as_str() {
                "Deployment" => {
                    let image = obj
                        .pointer("/spec/template/spec/containers/0/image")
                        .and_then(Value::as_str)
                        .unwrap_or("?");
                    let replicas = obj
                        .pointer("/spec/replicas")
                        .and_then(Value::as_u64)
                        .unwrap_or(1);
                    Value::String(format!(
                        "{image} ({replicas} replica{})",
                        if replicas == 1 { "" } else { "s" }
                    ))
                }
                "ConfigMap" => {
                    let n = obj
                        .get("data")
                        .and_then(Value::as_object)
                        .map_or(0, |d| d.len());
                    Value::String(format!("ConfigMap with {n} keys"))
                }
                other => Value::String(other.to_owned()),
            };
        }
    }
    after
}

fn helm_changes(desired: &Value, prior: &Value) -> (Vec<String>, Value) {
    let want_values = helm::desired_values(desired);
    let want_version = version(desired);
    let mut changes = Vec::new();
    match prior.get("release").filter(|r| !r.is_null()) {
        None => changes.push(format!(
            "Helm release {RELEASE_NAMESPACE}/{RELEASE_NAME}: not installed"
        )),
        Some(rel) => {
            let status = rel.get("status").and_then(Value::as_str).unwrap_or("");
            if status != "deployed" {
                changes.push(format!(
                    "Helm release {RELEASE_NAMESPACE}/{RELEASE_NAME}: status {status} (upgraded again)"
                ));
            }
            let live_version = rel.get("version").and_then(Value::as_str).unwrap_or("");
            if let Some(v) = &want_version
                && v != live_version
            {
                changes.push(format!("chart version: {live_version} → {v}"));
            }
            let d = helm::values_diff(&want_values, rel.get("values").unwrap_or(&Value::Null));
            if !d.is_empty() {
                changes.push(d.join(", "));
            }
        }
    }
    if let Some(missing) = prior.pointer("/agents/notReady").and_then(Value::as_array) {
        for m in missing.iter().filter_map(Value::as_str) {
            changes.push(format!(
                "Deployment {NAMESPACE}/{m}: missing or not available"
            ));
        }
    }
    (
        changes,
        json!({"installer": "helm", "release": {"name": RELEASE_NAME, "namespace": RELEASE_NAMESPACE, "version": want_version, "values": want_values}}),
    )
}

fn ready_outputs(prior: &Value) -> Value {
    json!({
        "ready": prior.get("ready").and_then(Value::as_bool).unwrap_or(false),
        "agentCount": prior.pointer("/agents/total").cloned().unwrap_or(json!(0)),
        "agentsAvailable": prior.pointer("/agents/available").cloned().unwrap_or(json!(0)),
        "installer": prior.get("installer").cloned().unwrap_or(Value::Null),
    })
}

/// `plan` for `k8s.arcAgents`.
pub(crate) async fn plan(p: &KubernetesProvider, req: PlanRequest) -> PlanResponse {
    let mut resp = PlanResponse::default();
    match plan_inner(p, &req, &mut resp).await {
        Ok(()) => resp,
        Err(d) => {
            for x in d {
                resp.diagnostics.push(at(&req.address, x));
            }
            resp
        }
    }
}

async fn plan_inner(
    p: &KubernetesProvider,
    req: &PlanRequest,
    resp: &mut PlanResponse,
) -> Result<(), Diagnostics> {
    let inst = installer(&req.desired)?;
    duration_attr(req.desired.get("timeout"), DEFAULT_TIMEOUT)?;
    let cc = Address::new(ResourceType::CONNECTED_CLUSTER, req.address.name.clone());
    if req.mode == PlanMode::Destroy {
        match &req.prior {
            None => resp.action = Some(Action::NoOp),
            Some(_) => {
                resp.action = Some(Action::Delete);
                resp.reason = Some(Reason::new(
                    ReasonCode::DeleteBecauseDestroy,
                    format!(
                        "destroy was requested: the agents are removed after {cc} is deleted, then namespaces {NAMESPACE} and {RELEASE_NAMESPACE}"
                    ),
                ));
                resp.delete_after = vec![cc];
                preflight(p, req, inst, "delete").await?;
            }
        }
        return Ok(());
    }
    let Some(prior) = &req.prior else {
        let (_, after) = match inst {
            Installer::Manifests => manifest_changes(p, &req.desired, &Value::Null).await?,
            Installer::Helm => helm_changes(&req.desired, &Value::Null),
        };
        resp.action = Some(Action::Create);
        resp.after = Some(summarize_objects(after));
        preflight(p, req, inst, "create").await?;
        return Ok(());
    };
    let installed = prior
        .get("installed")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (changes, after) = match inst {
        Installer::Manifests => manifest_changes(p, &req.desired, prior).await?,
        Installer::Helm => helm_changes(&req.desired, prior),
    };
    resp.after = Some(after);
    let cc_unknown = req.unknown.iter().any(|u| u == "/connectedClusterId");
    if installed && cc_unknown {
        let owner = prior
            .get("ownership")
            .and_then(Value::as_object)
            .and_then(ownership::id_of)
            .unwrap_or_else(|| "an Azure Arc resource".into());
        resp.action = Some(Action::Replace);
        resp.reason = Some(Reason::new(
            ReasonCode::ReplaceBecauseDependency,
            format!(
                "orphaned agents: the agents in {NAMESPACE} were installed for {owner}, which {cc} will (re)create, so they are removed and installed again for the new resource"
            ),
        ));
        resp.requires_replace = vec!["/connectedClusterId".into()];
        preflight(p, req, inst, "create").await?;
        return Ok(());
    }
    if req.replace_requested {
        resp.action = Some(Action::Replace);
        resp.reason = Some(Reason::new(
            ReasonCode::Requested,
            "replacement was requested: the agents are removed and installed again",
        ));
        preflight(p, req, inst, "create").await?;
        return Ok(());
    }
    if !installed {
        resp.action = Some(Action::Create);
        resp.reason = Some(Reason::new(
            ReasonCode::NotFound,
            "the Arc agents are not installed",
        ));
        preflight(p, req, inst, "create").await?;
        return Ok(());
    }
    if changes.is_empty() {
        resp.action = Some(Action::NoOp);
        resp.outputs = Some(ready_outputs(prior));
        return Ok(());
    }
    let n = changes.len();
    resp.action = Some(Action::Update);
    resp.reason = Some(Reason::new(
        ReasonCode::Other,
        format!(
            "{n} difference{}: {}",
            if n == 1 { "" } else { "s" },
            changes.join("; ")
        ),
    ));
    resp.outputs = Some(json!({"installer": prior.get("installer")}));
    preflight(p, req, inst, "create").await?;
    Ok(())
}

async fn preflight(
    p: &KubernetesProvider,
    req: &PlanRequest,
    inst: Installer,
    verb: &'static str,
) -> Result<(), Diagnostics> {
    let cluster = p
        .cluster(&req.desired["cluster"])
        .await
        .map_err(Diagnostics::from)?;
    let mut diags = Diagnostics::new();
    if let Err(d) = cluster.check_rights(verb).await {
        diags.extend(d);
    }
    if verb == "create"
        && let Err(d) = cluster.check_linux_node().await
    {
        diags.extend(d);
    }
    let helm_needed = inst == Installer::Helm
        || (verb == "delete"
            && req
                .prior
                .as_ref()
                .and_then(|s| s.get("installer"))
                .and_then(Value::as_str)
                == Some("helm"));
    if helm_needed {
        let program = p.options().helm_program();
        if helm::locate(&program, p.options().env("PATH").as_deref()).is_none() {
            diags.push(helm::not_found(&program));
        }
    }
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(())
    }
}

struct Progress<'a> {
    req: &'a ApplyRequest,
    started: Instant,
}

impl Progress<'_> {
    fn say(&self, message: impl Into<String>) {
        self.req.events.emit(Event::ApplyProgress {
            address: self.req.change.address.clone(),
            message: message.into(),
            elapsed_seconds: self.started.elapsed().as_secs_f64(),
        });
    }
}

/// `apply` for `k8s.arcAgents`.
pub(crate) async fn apply(p: &KubernetesProvider, req: ApplyRequest) -> ApplyResponse {
    let address = req.change.address.clone();
    match apply_inner(p, &req).await {
        Ok((state, outputs)) => ApplyResponse {
            state,
            outputs,
            diagnostics: Default::default(),
        },
        Err(d) => ApplyResponse {
            diagnostics: diags_at(&address, d),
            ..Default::default()
        },
    }
}

async fn apply_inner(
    p: &KubernetesProvider,
    req: &ApplyRequest,
) -> Result<(Option<Value>, Option<Value>), Diagnostic> {
    let progress = Progress {
        req,
        started: Instant::now(),
    };
    let desired = &req.desired;
    let cluster = p.cluster(&desired["cluster"]).await?;
    let inst = installer(desired)?;
    let timeout = duration_attr(desired.get("timeout"), DEFAULT_TIMEOUT)?;
    let live_owner = read_ownership(&cluster).await?;
    check_owner(&cluster, live_owner.as_ref(), desired, &req.change.address)?;
    match req.change.action {
        Action::NoOp | Action::Read => Ok((None, None)),
        Action::Delete => {
            let was_helm = req
                .change
                .before
                .as_ref()
                .and_then(|b| b.get("installer"))
                .and_then(Value::as_str)
                == Some("helm")
                || inst == Installer::Helm;
            remove_agents(p, &cluster, desired, was_helm, timeout, &progress, true).await?;
            Ok((None, None))
        }
        Action::Create | Action::Update | Action::Replace => {
            if req.change.action == Action::Replace {
                progress.say("removing the orphaned agents");
                remove_agents(
                    p,
                    &cluster,
                    desired,
                    inst == Installer::Helm,
                    timeout,
                    &progress,
                    false,
                )
                .await?;
            }
            let names = match inst {
                Installer::Manifests => {
                    Some(install_manifests(p, &cluster, desired, &progress).await?)
                }
                Installer::Helm => {
                    install_helm(p, &cluster, desired, timeout, &req.cancel, &progress).await?
                }
            };
            let say = |m: String| progress.say(m);
            let r = readiness::wait(
                &cluster,
                names.as_deref(),
                readiness::Budget::new(timeout, progress.started),
                p.options().poll_interval,
                &req.cancel,
                &say,
            )
            .await?;
            // What was applied, for telling drift from a configuration change later.
            let applied = arcplan_engine::plan::desired_digest(req.change.desired.as_ref());
            super::applied::record(&cluster, &applied).await?;
            let outputs = json!({
                "ready": true,
                "agentCount": r.total,
                "agentsAvailable": r.available,
                "installer": match inst { Installer::Helm => "helm", Installer::Manifests => "manifests" },
            });
            Ok((Some(outputs.clone()), Some(outputs)))
        }
    }
}

async fn install_manifests(
    p: &KubernetesProvider,
    cluster: &Cluster,
    desired: &Value,
    progress: &Progress<'_>,
) -> Result<Vec<String>, Diagnostic> {
    let mut objs = desired_set(p, desired).await?;
    let kinds = resolve_kinds(cluster, &mut objs).await?;
    let mut order: Vec<usize> = (0..objs.len()).collect();
    order.sort_by_key(|i| manifests::apply_rank(&objs[*i].kind));
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    for (n, i) in order.iter().enumerate() {
        let (o, kind) = (&objs[*i], &kinds[*i]);
        let api = dyn_api(cluster, kind, o.namespace.as_deref());
        api.patch(&o.name, &pp, &Patch::Apply(&o.body))
            .await
            .map_err(|e| cluster.api_error(&format!("apply {}", short_id(o)), &e))?;
        if (n + 1) % 5 == 0 || n + 1 == order.len() {
            progress.say(format!("applied {}/{} objects", n + 1, order.len()));
        }
    }
    let (_, extra) = read_live(cluster, &objs, &kinds).await?;
    for e in &extra {
        let api = dyn_api(cluster, &e.kind, e.namespace.as_deref());
        match api.delete(&e.name, &DeleteParams::background()).await {
            Ok(_) => progress.say(format!("pruned {}", e.short)),
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(cluster.api_error(&format!("prune {}", e.short), &err)),
        }
    }
    Ok(deployment_names(&objs))
}

async fn read_private_key(cluster: &Cluster) -> Result<super::key::PrivateKeyPem, Diagnostic> {
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let secret = api
        .get_opt(KEY_SECRET)
        .await
        .map_err(|e| cluster.api_error(&format!("read Secret {NAMESPACE}/{KEY_SECRET}"), &e))?;
    secret.as_ref().and_then(pem_of).ok_or_else(|| {
        Diagnostic::error(
            "k8s-key-missing",
            format!(
                "Secret {NAMESPACE}/{KEY_SECRET} on {} holds no onboarding key, which the Helm chart needs",
                cluster.describe()
            ),
        )
        .with_hint("plan again: the onboarding key is created before the agents")
    })
}

fn proxy_secret(p: &KubernetesProvider, desired: &Value) -> Result<Option<String>, Diagnostic> {
    let Some(creds) = desired
        .pointer("/proxy/credentials")
        .filter(|c| !c.is_null())
    else {
        return Ok(None);
    };
    if let Some(var) = creds.get("env").and_then(Value::as_str) {
        return p.options().env(var).map(Some).ok_or_else(|| {
            Diagnostic::error(
                "secret-missing",
                format!(
                    "the proxy credentials come from environment variable {var}, which is not set"
                ),
            )
            .with_key("agents.proxy.credentials")
            .with_hint(format!("export {var}=user:password"))
        });
    }
    if let Some(file) = creds.get("file").and_then(Value::as_str) {
        let path = super::access::resolve_path(&p.options().base_dir, file);
        return std::fs::read_to_string(&path)
            .map(|s| Some(s.trim().to_owned()))
            .map_err(|e| {
                Diagnostic::error(
                    "secret-missing",
                    format!(
                        "cannot read the proxy credentials file {}: {e}",
                        path.display()
                    ),
                )
                .with_key("agents.proxy.credentials")
            });
    }
    Ok(None)
}

async fn install_helm(
    p: &KubernetesProvider,
    cluster: &Cluster,
    desired: &Value,
    timeout: Duration,
    cancel: &CancellationToken,
    progress: &Progress<'_>,
) -> Result<Option<Vec<String>>, Diagnostic> {
    let key = read_private_key(cluster).await?;
    let creds = proxy_secret(p, desired)?;
    let cert = match desired.pointer("/proxy/caCert").and_then(Value::as_str) {
        Some(f) => {
            let path = super::access::resolve_path(&p.options().base_dir, f);
            Some(tokio::fs::read_to_string(&path).await.map_err(|e| {
                Diagnostic::error(
                    "proxy-ca-unreadable",
                    format!(
                        "cannot read the proxy CA certificate {}: {e}",
                        path.display()
                    ),
                )
                .with_key("agents.proxy.caCert")
            })?)
        }
        None => None,
    };
    let values = helm::install_values(desired, &key, creds.as_deref(), cert.as_deref());
    let inv = helm::upgrade_install(
        p.options().helm_program(),
        version(desired).as_deref(),
        timeout,
        &cluster.kubeconfig,
        &cluster.context,
        &values,
    );
    drop(values);
    progress.say(format!(
        "helm upgrade --install {RELEASE_NAME} (namespace {RELEASE_NAMESPACE})"
    ));
    helm::run(&inv, cancel).await?;
    let names = read_release_full(cluster)
        .await?
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty());
    Ok(names)
}

async fn wait_gone(
    cluster: &Cluster,
    ns: &str,
    timeout: Duration,
    poll: Duration,
    progress: &Progress<'_>,
) -> Result<(), Diagnostic> {
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    let started = Instant::now();
    let mut said = false;
    loop {
        match api.get_opt(ns).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) => {}
            Err(e) => return Err(cluster.api_error(&format!("read namespace {ns}"), &e)),
        }
        if !said {
            progress.say(format!("waiting for namespace {ns} to terminate"));
            said = true;
        }
        if started.elapsed() >= timeout {
            return Err(Diagnostic::error(
                "k8s-namespace-stuck",
                format!(
                    "namespace {ns} on {} is still terminating after {}",
                    cluster.describe(),
                    humantime::format_duration(Duration::from_secs(timeout.as_secs()))
                ),
            )
            .with_hint(format!("`kubectl get namespace {ns} -o yaml` shows what blocks it (finalizers, custom resources whose controller is gone)")));
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = progress.req.cancel.cancelled() => {
                return Err(Diagnostic::error("cancelled", format!("waiting for namespace {ns} to terminate was interrupted"))
                    .with_hint("plan again to converge"));
            }
        }
    }
}

/// Removes the agents. With `everything`, also deletes namespaces `azure-arc` and
/// `azure-arc-release` and waits for them (destroy); otherwise keeps the namespaces (and the
/// key's Secret) for a reinstall.
async fn remove_agents(
    p: &KubernetesProvider,
    cluster: &Cluster,
    desired: &Value,
    helm_installed: bool,
    timeout: Duration,
    progress: &Progress<'_>,
    everything: bool,
) -> Result<(), Diagnostic> {
    let poll = p.options().poll_interval;
    if helm_installed {
        if helm::read_release(cluster, RELEASE_NAME, RELEASE_NAMESPACE)
            .await?
            .is_some()
        {
            progress.say(format!("helm uninstall {RELEASE_NAME}"));
            let inv = helm::uninstall(
                p.options().helm_program(),
                timeout,
                &cluster.kubeconfig,
                &cluster.context,
            );
            helm::run(&inv, &progress.req.cancel).await?;
        }
    } else {
        let mut objs = desired_set(p, desired).await?;
        let kinds = resolve_kinds(cluster, &mut objs).await?;
        let (live, extra) = read_live(cluster, &objs, &kinds).await?;
        let mut doomed: Vec<(Kind, Option<String>, String, String)> = Vec::new();
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
                Ok(_) => progress.say(format!("deleted {short}")),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(cluster.api_error(&format!("delete {short}"), &e)),
            }
        }
    }
    if !everything {
        // Wait for the old Deployments to go so the reinstall starts clean.
        let api: Api<DynamicObject> = Api::namespaced_with(
            cluster.client.clone(),
            NAMESPACE,
            &ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("apps", "v1", "Deployment"),
                "deployments",
            ),
        );
        let started = Instant::now();
        while started.elapsed() < timeout {
            let left = api
                .list_metadata(
                    &ListParams::default()
                        .labels(&format!("{}={}", MANAGED_BY_LABEL.0, MANAGED_BY_LABEL.1)),
                )
                .await
                .map_err(|e| cluster.api_error("list Deployments in azure-arc", &e))?;
            if left.items.is_empty() {
                break;
            }
            tokio::time::sleep(poll.min(Duration::from_millis(500))).await;
        }
        return Ok(());
    }
    for ns in [NAMESPACE, RELEASE_NAMESPACE] {
        let api: Api<Namespace> = Api::all(cluster.client.clone());
        match api.delete(ns, &DeleteParams::background()).await {
            Ok(_) => progress.say(format!("deleting namespace {ns}")),
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(cluster.api_error(&format!("delete namespace {ns}"), &e)),
        }
        wait_gone(
            cluster,
            ns,
            timeout.min(Duration::from_secs(180)).max(poll),
            poll,
            progress,
        )
        .await?;
    }
    Ok(())
}
