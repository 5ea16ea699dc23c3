//! `k8s.arcAgents.<cluster>`: the ownership record and the Arc agents.
//!
//! - read: the ownership record (ConfigMap `azure-clusterconfig`; a record naming another ARM
//!   resource fails the plan), then what the installer finds ([`Installer::read`]: for
//!   `manifests` every object of the set and the labelled objects the set no longer has, for
//!   `helm` the release from Helm's storage), plus agent readiness.
//! - plan: nothing installed → create; the connected cluster's id unknown while agents exist
//!   (the ARM resource is gone or replaced) → replace ("orphaned agents"); what the installer's
//!   [`Installer::diff`] reports (objects missing or fields changed, a release at another version
//!   or with other values) → update naming each; otherwise no-op with `ready`. Destroy → delete,
//!   after the ARM resource (`delete_after`), as `az connectedk8s delete` orders it.
//! - apply: [`Installer::install`], the readiness wait, and the digest of what was applied is
//!   recorded on the ownership ConfigMap ([`ownership::record_applied`], for drift). Delete
//!   removes the agents ([`Installer::remove`]), then namespace `azure-arc` (waiting for it to
//!   terminate) and `azure-arc-release`.
//!
//! The installer is picked once per verb from the `installer` attribute ([`installer::of`]).
//! This kind does not touch the onboarding key's Secret (the Helm installer reads it to pass it
//! on standard input) and knows nothing of Azure beyond the ownership keys.

use super::{ClusterAccess, Ownership};
use crate::azure::kinds::connected_cluster;
use crate::kind::{Kind, attributes};
use crate::kubernetes::access::{Cluster, is_not_found};
use crate::kubernetes::context::KubeCx;
use crate::kubernetes::installer::{self, Installer, Step, Target};
use crate::kubernetes::{
    AgentFeatures, MANAGED_BY_LABEL, NAMESPACE, RELEASE_NAMESPACE, at, diags_at, duration_attr,
    ownership, readiness,
};
use arcplan_config::{Config, Installer as InstallerKind, Proxy};
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use arcplan_engine::events::Event;
use arcplan_engine::graph::{Deferred, GraphBuilder, Mode};
use arcplan_engine::plan::{Action, PlanMode, Reason, ReasonCode};
use arcplan_engine::provider::*;
use async_trait::async_trait;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

/// The type.
pub const TYPE: ResourceType = ResourceType::of("k8s.arcAgents");

/// The declared attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// How to reach the cluster.
    pub cluster: ClusterAccess,
    /// The connected cluster's ARM id (known once it exists).
    pub connected_cluster_id: Deferred<Option<String>>,
    /// Helm or manifests.
    pub installer: InstallerKind,
    /// The agent version (default: the one arcplan ships with).
    pub version: Option<String>,
    /// Rendered manifests (the manifests installer).
    pub manifests: Option<String>,
    /// How long to wait for the agents (humantime).
    pub timeout: String,
    /// Outbound proxy settings.
    pub proxy: Option<Proxy>,
    /// The ownership record.
    pub ownership: Ownership,
    /// The distribution.
    pub distribution: String,
    /// The infrastructure.
    pub infrastructure: String,
    /// The agents' features (`az connectedk8s enable-features`).
    #[serde(default)]
    pub features: AgentFeatures,
}

/// A cluster's agents.
pub fn address(cluster: &str) -> Address {
    Address::new(TYPE, cluster)
}

/// One node per cluster, after its connected cluster (through the id reference).
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    for (i, c) in cfg.clusters.iter().enumerate() {
        let attrs = Attributes {
            cluster: ClusterAccess::of(c),
            connected_cluster_id: Deferred::reference(&connected_cluster::address(&c.name), "id"),
            installer: c.agents.installer,
            version: c.agents.version.clone(),
            manifests: c.agents.manifests.clone(),
            timeout: c.agents.timeout.clone(),
            proxy: c.agents.proxy.clone(),
            ownership: Ownership::of(cfg, c),
            distribution: c.distribution.clone(),
            infrastructure: c.infrastructure.clone(),
            features: AgentFeatures::of(c),
        };
        b.node(
            address(&c.name),
            Mode::Managed,
            &attrs,
            format!("clusters[{i}]"),
        );
    }
}

/// The kind.
pub struct ArcAgents;

#[async_trait]
impl Kind<KubeCx> for ArcAgents {
    fn rtype(&self) -> ResourceType {
        TYPE
    }

    async fn read(&self, cx: &KubeCx, req: &ReadRequest) -> ReadResponse {
        let mut applied_digest = None;
        match read(cx, req, &mut applied_digest).await {
            Ok(state) => ReadResponse {
                version: state.as_ref().map(digest),
                state,
                applied_digest,
                ..Default::default()
            },
            Err(d) => ReadResponse {
                diagnostics: diags_at(&req.address, d),
                ..Default::default()
            },
        }
    }

    async fn plan(&self, cx: &KubeCx, req: &PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse::default();
        if let Err(d) = plan(cx, req, &mut resp).await {
            for x in d {
                resp.diagnostics.push(at(&req.address, x));
            }
        }
        resp
    }

    async fn apply(&self, cx: &KubeCx, req: &ApplyRequest) -> ApplyResponse {
        match apply(cx, req).await {
            Ok((state, outputs)) => ApplyResponse {
                state,
                outputs,
                diagnostics: Default::default(),
            },
            Err(d) => ApplyResponse::failed(diags_at(&req.change.address, d)),
        }
    }

    async fn left_behind(&self, cx: &KubeCx, req: &ReadRequest) -> Diagnostics {
        let objects = match attributes::<Attributes>(&req.address, &req.desired) {
            Ok(a) => installer::of(a.installer).left_behind(cx, &a).await,
            Err(_) => vec![format!("the Arc agents in namespace {NAMESPACE}")],
        };
        super::orphaned(
            "orphaned-agents",
            &req.address,
            &format!(
                "its Arc agents stay in the cluster, orphaned ({} objects: {})",
                objects.len(),
                objects.join(", ")
            ),
        )
    }
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);

fn timeout(a: &Attributes) -> Result<Duration, Diagnostic> {
    duration_attr(Some(&a.timeout), DEFAULT_TIMEOUT)
}

/// The installer's name as the state and outputs show it (`helm`, `manifests`).
fn installer_name(kind: InstallerKind) -> Value {
    serde_json::to_value(kind).unwrap_or(Value::Null)
}

/// The installer that removes what is installed: Helm when the live state says Helm installed
/// it (a release is only removed by Helm, whatever the configuration says now), else the
/// configured one.
fn installed_by(state: Option<&Value>, configured: InstallerKind) -> &'static dyn Installer {
    let live = state
        .and_then(|s| s.get("installer"))
        .and_then(|v| serde_json::from_value::<InstallerKind>(v.clone()).ok());
    match live {
        Some(InstallerKind::Helm) => installer::of(InstallerKind::Helm),
        _ => installer::of(configured),
    }
}

fn digest(v: &Value) -> String {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(v.to_string().as_bytes());
    h.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn ownership_state(live: Option<&Map<String, Value>>) -> Value {
    match live {
        None => Value::Null,
        Some(m) => Value::Object(
            ownership::OWNERSHIP_KEYS
                .iter()
                .filter_map(|k| Some(((*k).to_owned(), m.get(*k)?.clone())))
                .collect(),
        ),
    }
}

async fn read(
    cx: &KubeCx,
    req: &ReadRequest,
    applied_digest: &mut Option<String>,
) -> Result<Option<Value>, Diagnostic> {
    let a: Attributes = attributes(&req.address, &req.desired)?;
    let cluster = cx.cluster(&a.cluster).await?;
    let live_owner = match ownership::read_record(&cluster).await? {
        Some((data, recorded)) => {
            *applied_digest = recorded;
            Some(data)
        }
        None => None,
    };
    let want = a.ownership.to_map();
    ownership::check(&cluster, live_owner.as_ref(), Some(&want), &req.address)?;
    let t = Target {
        cx,
        cluster: &cluster,
        attrs: &a,
    };
    let live = installer::of(a.installer)
        .read(&t, live_owner.is_some())
        .await?;
    if !live.exists {
        return Ok(None);
    }
    let r = &live.readiness;
    let version = live_owner
        .as_ref()
        .and_then(|m| m.get(AGENT_VERSION_KEY))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or(live.version.clone())
        .filter(|v| !v.is_empty());
    let mut state = live.state;
    state.insert("agentVersion".into(), version.into());
    state.insert("installer".into(), installer_name(a.installer));
    state.insert("installed".into(), live.installed.into());
    state.insert("ownership".into(), ownership_state(live_owner.as_ref()));
    state.insert(
        "agents".into(),
        json!({"total": r.total, "available": r.available, "notReady": r.not_ready}),
    );
    state.insert(
        "ready".into(),
        (r.total > 0 && r.not_ready.is_empty()).into(),
    );
    Ok(Some(Value::Object(state)))
}

/// The ownership ConfigMap's key naming the installed agents' version.
const AGENT_VERSION_KEY: &str = "AZURE_ARC_AGENT_VERSION";

/// Once installed, the agents' version is Azure Arc's to keep: with auto-upgrade the agents
/// upgrade themselves, and a pinned version moves when the connected cluster's
/// `arcAgentProfile.desiredAgentVersion` does (the agents roll to it and `arc.connectivity` waits
/// for them to report it), as `az connectedk8s upgrade`'s ARM alternative does. So installed
/// agents are diffed and re-applied at the version they run, and `version` is what a first
/// install (or a reinstall) puts in; an agent upgrade is one planned change, of the connected
/// cluster, never a second one here that would roll them back.
fn at_installed_version(mut a: Attributes, prior: Option<&Value>) -> Attributes {
    if let Some(v) = prior
        .and_then(|p| p.get("agentVersion"))
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
    {
        a.version = Some(v.to_owned());
    }
    a
}

fn ready_outputs(prior: &Value) -> Value {
    json!({
        "ready": prior.get("ready").and_then(Value::as_bool).unwrap_or(false),
        "agentCount": prior.pointer("/agents/total").cloned().unwrap_or(json!(0)),
        "agentsAvailable": prior.pointer("/agents/available").cloned().unwrap_or(json!(0)),
        "installer": prior.get("installer").cloned().unwrap_or(Value::Null),
    })
}

async fn plan(cx: &KubeCx, req: &PlanRequest, resp: &mut PlanResponse) -> Result<(), Diagnostics> {
    let a: Attributes = attributes(&req.address, &req.desired)?;
    let inst = installer::of(a.installer);
    timeout(&a)?;
    let cc = connected_cluster::address(&req.address.name);
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
                let remover = installed_by(req.prior.as_ref(), a.installer);
                preflight(cx, &a, remover, "delete").await?;
            }
        }
        return Ok(());
    }
    let cluster = cx.cluster(&a.cluster).await.map_err(Diagnostics::from)?;
    let cc_unknown = req.unknown.iter().any(|u| u == "/connectedClusterId");
    let reinstalled = req.replace_requested || cc_unknown;
    let a = match &req.prior {
        Some(p) if !reinstalled => at_installed_version(a, Some(p)),
        _ => a,
    };
    let t = Target {
        cx,
        cluster: &cluster,
        attrs: &a,
    };
    let Some(prior) = &req.prior else {
        let d = inst.diff(&t, None).await?;
        resp.action = Some(Action::Create);
        resp.after = Some(d.after);
        return preflight(cx, &a, inst, "create").await;
    };
    let installed = prior
        .get("installed")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let d = inst.diff(&t, Some(prior)).await?;
    resp.after = Some(d.after);
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
        return preflight(cx, &a, inst, "create").await;
    }
    if req.replace_requested {
        resp.action = Some(Action::Replace);
        resp.reason = Some(Reason::new(
            ReasonCode::Requested,
            "replacement was requested: the agents are removed and installed again",
        ));
        return preflight(cx, &a, inst, "create").await;
    }
    if !installed {
        resp.action = Some(Action::Create);
        resp.reason = Some(Reason::new(
            ReasonCode::NotFound,
            "the Arc agents are not installed",
        ));
        return preflight(cx, &a, inst, "create").await;
    }
    if d.changes.is_empty() {
        resp.action = Some(Action::NoOp);
        resp.outputs = Some(ready_outputs(prior));
        return Ok(());
    }
    let n = d.changes.len();
    resp.action = Some(Action::Update);
    resp.reason = Some(Reason::new(
        ReasonCode::Other,
        format!(
            "{n} difference{}: {}",
            if n == 1 { "" } else { "s" },
            d.changes.join("; ")
        ),
    ));
    resp.outputs = Some(json!({"installer": prior.get("installer")}));
    preflight(cx, &a, inst, "create").await
}

/// What a change needs before it starts: the rights for `verb`, a Linux node for a create, and
/// what the installer needs on this machine.
async fn preflight(
    cx: &KubeCx,
    a: &Attributes,
    inst: &dyn Installer,
    verb: &'static str,
) -> Result<(), Diagnostics> {
    let cluster = cx.cluster(&a.cluster).await.map_err(Diagnostics::from)?;
    let mut diags = Diagnostics::new();
    if let Err(d) = cluster.check_rights(verb).await {
        diags.extend(d);
    }
    if verb == "create"
        && let Err(d) = cluster.check_linux_node().await
    {
        diags.extend(d);
    }
    diags.extend(inst.preflight(cx));
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(())
    }
}

async fn apply(
    cx: &KubeCx,
    req: &ApplyRequest,
) -> Result<(Option<Value>, Option<Value>), Diagnostic> {
    let started = Instant::now();
    let address = &req.change.address;
    let say = |message: String| {
        req.events.emit(Event::ApplyProgress {
            address: address.clone(),
            message,
            elapsed_seconds: started.elapsed().as_secs_f64(),
        });
    };
    let a: Attributes = attributes(address, &req.desired)?;
    let a = match req.change.action {
        Action::Update => at_installed_version(a, req.change.before_value().as_ref()),
        _ => a,
    };
    let cluster = cx.cluster(&a.cluster).await?;
    let inst = installer::of(a.installer);
    let step = Step {
        timeout: timeout(&a)?,
        cancel: &req.cancel,
        say: &say,
    };
    ownership::read_and_check(&cluster, Some(&a.ownership.to_map()), address).await?;
    let t = Target {
        cx,
        cluster: &cluster,
        attrs: &a,
    };
    match req.change.action {
        Action::NoOp | Action::Read => Ok((None, None)),
        Action::Delete => {
            let remover = installed_by(req.change.before_value().as_ref(), a.installer);
            remove(remover, &t, &step, true).await?;
            Ok((None, None))
        }
        Action::Create | Action::Update | Action::Replace => {
            if req.change.action == Action::Replace {
                say("removing the orphaned agents".into());
                remove(inst, &t, &step, false).await?;
            }
            let names = inst.install(&t, &step).await?;
            let r = readiness::wait(
                &cluster,
                names.as_deref(),
                readiness::Budget::new(step.timeout, started),
                cx.options().poll_interval,
                &req.cancel,
                &say,
            )
            .await?;
            // What was applied, for telling drift from a configuration change later.
            let applied = arcplan_engine::plan::desired_digest(req.change.desired.as_ref());
            ownership::record_applied(&cluster, &applied).await?;
            let outputs = json!({
                "ready": true,
                "agentCount": r.total,
                "agentsAvailable": r.available,
                "installer": installer_name(a.installer),
            });
            Ok((Some(outputs.clone()), Some(outputs)))
        }
    }
}

/// Removes the agents with `inst`. With `everything`, also deletes namespaces `azure-arc` and
/// `azure-arc-release` and waits for them (destroy); otherwise keeps the namespaces (and the
/// key's Secret) for a reinstall and waits for the old Deployments to go.
async fn remove(
    inst: &dyn Installer,
    t: &Target<'_>,
    step: &Step<'_>,
    everything: bool,
) -> Result<(), Diagnostic> {
    inst.remove(t, step, everything).await?;
    let (cluster, poll) = (t.cluster, t.cx.options().poll_interval);
    if !everything {
        return wait_agents_gone(cluster, step.timeout, poll).await;
    }
    for ns in [NAMESPACE, RELEASE_NAMESPACE] {
        let api: Api<Namespace> = Api::all(cluster.client.clone());
        match api.delete(ns, &DeleteParams::background()).await {
            Ok(_) => (step.say)(format!("deleting namespace {ns}")),
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(cluster.api_error(&format!("delete namespace {ns}"), &e)),
        }
        let bound = step.timeout.min(Duration::from_secs(180)).max(poll);
        wait_gone(cluster, ns, bound, poll, step).await?;
    }
    Ok(())
}

/// Waits for the labelled Deployments in `azure-arc` to go, so a reinstall starts clean.
async fn wait_agents_gone(
    cluster: &Cluster,
    timeout: Duration,
    poll: Duration,
) -> Result<(), Diagnostic> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        cluster.client.clone(),
        NAMESPACE,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apps", "v1", "Deployment"),
            "deployments",
        ),
    );
    let selector = format!("{}={}", MANAGED_BY_LABEL.0, MANAGED_BY_LABEL.1);
    let started = Instant::now();
    while started.elapsed() < timeout {
        let left = api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| cluster.api_error("list Deployments in azure-arc", &e))?;
        if left.items.is_empty() {
            break;
        }
        tokio::time::sleep(poll.min(Duration::from_millis(500))).await;
    }
    Ok(())
}

/// Waits for namespace `ns` to be gone (it terminates once its objects are deleted).
async fn wait_gone(
    cluster: &Cluster,
    ns: &str,
    timeout: Duration,
    poll: Duration,
    step: &Step<'_>,
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
            (step.say)(format!("waiting for namespace {ns} to terminate"));
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
            () = step.cancel.cancelled() => {
                return Err(Diagnostic::error("cancelled", format!("waiting for namespace {ns} to terminate was interrupted"))
                    .with_hint("plan again to converge"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::KubernetesProviderOptions;

    fn cx() -> KubeCx {
        KubeCx::new(
            KubernetesProviderOptions::new(".")
                .with_env(|_| None)
                .with_helm_path("/nonexistent/helm"),
        )
    }

    fn needs_helm(inst: &dyn Installer) -> bool {
        inst.preflight(&cx())
            .iter()
            .any(|d| d.code == "helm-not-found")
    }

    #[test]
    fn the_installer_follows_the_attribute_and_a_helm_release_is_removed_by_helm() {
        assert!(needs_helm(installer::of(InstallerKind::Helm)));
        assert!(!needs_helm(installer::of(InstallerKind::Manifests)));
        let helm_state = json!({"installer": "helm", "installed": true});
        let manifests_state = json!({"installer": "manifests", "installed": true});
        assert!(needs_helm(installed_by(
            Some(&helm_state),
            InstallerKind::Manifests
        )));
        assert!(!needs_helm(installed_by(
            Some(&manifests_state),
            InstallerKind::Manifests
        )));
        assert!(needs_helm(installed_by(
            Some(&manifests_state),
            InstallerKind::Helm
        )));
        assert!(!needs_helm(installed_by(None, InstallerKind::Manifests)));
        assert_eq!(installer_name(InstallerKind::Manifests), json!("manifests"));
        assert_eq!(installer_name(InstallerKind::Helm), json!("helm"));
    }

    #[test]
    fn attributes_take_a_resolved_or_pending_connected_cluster_id() {
        let cfg = arcplan_config::load_str(
            "apiVersion: arcplan/v1\nstack: s\nazure:\n  subscription: 00000000-0000-0000-0000-000000000001\nresourceGroups:\n  - name: rg\n    location: eastus\nclusters:\n  - name: c\n    resourceGroup: rg\n    agents:\n      installer: manifests\n",
            "arcplan.yaml",
        )
        .expect("loads")
        .config;
        let g = crate::kinds::lower(&cfg).expect("lowers");
        let mut desired = g.node(&address("c")).expect("node").desired.clone();
        let a: Attributes = attributes(&address("c"), &desired).expect("pending");
        assert!(a.connected_cluster_id.known().is_none());
        assert_eq!(a.installer, InstallerKind::Manifests);
        for id in [json!("/subscriptions/x"), Value::Null] {
            desired["connectedClusterId"] = id;
            let a: Attributes = attributes(&address("c"), &desired).expect("resolved");
            assert!(a.connected_cluster_id.known().is_some());
        }
        desired["installer"] = json!("kustomize");
        let d = attributes::<Attributes>(&address("c"), &desired).unwrap_err();
        assert_eq!(d.address.as_deref(), Some("k8s.arcAgents.c"));
    }
}
