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

mod install;
mod live;

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
use arcplan_engine::address::Address;
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use arcplan_engine::events::Event;
use arcplan_engine::plan::{Action, PlanMode, Reason, ReasonCode};
use arcplan_engine::provider::*;
use install::*;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use live::*;
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

/// A labelled live object the set no longer contains.
#[derive(Debug, Clone)]
struct Extra {
    id: String,
    short: String,
    kind: Kind,
    namespace: Option<String>,
    name: String,
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
    let cc = Address::new(crate::kinds::CONNECTED_CLUSTER, req.address.name.clone());
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
