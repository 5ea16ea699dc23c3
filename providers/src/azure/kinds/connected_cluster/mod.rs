//! `arc.connectedCluster`: the `Microsoft.Kubernetes/connectedClusters` resource.

use super::role_check::Needs;
use super::{resource_group, resource_provider};
use crate::azure::STACK_TAG;
use crate::azure::arm::ArmError;
use crate::azure::cloud::ApiKind;
use crate::azure::context::AzureCx;
use crate::azure::shared::*;
use crate::kind::{Kind, attributes};
use crate::kubernetes::kinds::onboarding_key;
use arcplan_config::Config;
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::diag::Diagnostic;
use arcplan_engine::graph::{Deferred, GraphBuilder, Mode};
use arcplan_engine::plan::{Action, PlanMode, Reason, ReasonCode};
use arcplan_engine::provider::*;
use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

pub mod features;
use features::Features;

/// The type.
pub const TYPE: ResourceType = ResourceType::of("arc.connectedCluster");

/// The managed identity the resource gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// Always `SystemAssigned`, as `az connectedk8s connect` creates it.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The declared attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// The subscription.
    pub subscription_id: String,
    /// The resource group.
    pub resource_group: String,
    /// The resource's name.
    pub name: String,
    /// Its region (the cluster's, else its group's).
    pub location: Option<String>,
    /// Tags (at least these), the stack's tag included.
    pub tags: BTreeMap<String, String>,
    /// The managed identity.
    pub identity: Identity,
    /// The Kubernetes distribution.
    pub distribution: String,
    /// The infrastructure it runs on.
    pub infrastructure: String,
    /// The onboarding key's public half (known once the key exists).
    pub agent_public_key_certificate: Deferred<String>,
    /// Whether the agents upgrade themselves.
    pub agent_auto_upgrade: bool,
    /// The cluster's features (agents' desired version, OIDC issuer, workload identity, ...).
    #[serde(flatten)]
    pub features: Features,
}

/// A cluster's address.
pub fn address(name: &str) -> Address {
    Address::new(TYPE, name)
}

/// One node per cluster, after its group and the `Microsoft.Kubernetes` registration.
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    for (i, c) in cfg.clusters.iter().enumerate() {
        let a = address(&c.name);
        let attrs = Attributes {
            subscription_id: cfg.cluster_subscription(c).to_owned(),
            resource_group: c.resource_group.clone(),
            name: c.name.clone(),
            location: cfg.cluster_location(c).map(str::to_owned),
            tags: resource_group::stack_tags(cfg, &c.tags),
            identity: Identity {
                kind: "SystemAssigned".into(),
            },
            distribution: c.distribution.clone(),
            infrastructure: c.infrastructure.clone(),
            agent_public_key_certificate: Deferred::reference(
                &onboarding_key::address(&c.name),
                "publicKey",
            ),
            agent_auto_upgrade: c.agents.auto_upgrade,
            features: Features::of(c),
        };
        b.node(a.clone(), Mode::Managed, &attrs, format!("clusters[{i}]"));
        let sub = cfg.cluster_subscription(c);
        b.edge(&a, &resource_group::address_in(cfg, sub, &c.resource_group));
        let registration = resource_provider::address(cfg, sub, "Microsoft.Kubernetes");
        if let Some(p) = b.find(&resource_provider::TYPE, &registration.name) {
            b.edge(&a, &p);
        }
    }
}

/// The ARM resource type.
const ARM_TYPE: &str = "Microsoft.Kubernetes/connectedClusters";

/// Attributes a connected cluster cannot change in place, as JSON pointers (a change to any of
/// them replaces the resource and the agents are onboarded again).
pub const REPLACED_BY: [&str; 6] = [
    "/location",
    "/identity",
    "/agentPublicKeyCertificate",
    "/infrastructure",
    "/kind",
    "/privateLinkScope",
];

/// What a change of a connected cluster needs of the credential.
pub fn needs(_address: &Address, action: Action) -> Needs {
    match action {
        Action::Create | Action::Update => Needs::actions([
            "Microsoft.Kubernetes/connectedClusters/write",
            "Microsoft.Kubernetes/connectedClusters/read",
        ]),
        Action::Replace => Needs::actions([
            "Microsoft.Kubernetes/connectedClusters/delete",
            "Microsoft.Kubernetes/connectedClusters/write",
        ]),
        Action::Delete => Needs::actions(["Microsoft.Kubernetes/connectedClusters/delete"]),
        _ => Needs::default(),
    }
}

/// The kind: read from the subscription-wide list, plan (replace for location, identity, key
/// and infrastructure changes, with the reason), PUT and DELETE as long-running operations;
/// discovered by tag.
pub struct ConnectedCluster;

/// A subscription's connected clusters, read once per plan.
pub(crate) async fn list(cx: &AzureCx, sub: &str) -> Result<Arc<Vec<Value>>, ArmError> {
    cx.cached_list(
        &format!("clusters:{}", sub.to_ascii_lowercase()),
        &format!("{}/providers/{ARM_TYPE}", cx.sub_path(sub)),
        ApiKind::ConnectedClusters,
    )
    .await
}

/// A subscription's connected clusters named `name` (one per resource group at most), from
/// the list read once per plan.
pub(crate) async fn named(cx: &AzureCx, sub: &str, name: &str) -> Result<Vec<Value>, ArmError> {
    cx.cached_named(
        &format!("clusters:{}", sub.to_ascii_lowercase()),
        &format!("{}/providers/{ARM_TYPE}", cx.sub_path(sub)),
        ApiKind::ConnectedClusters,
        name,
    )
    .await
}

/// The resource's ARM path: its id once it exists, else built from its group and name.
fn path(
    cx: &AzureCx,
    (sub, resource_group): (&str, &str),
    before: Option<&Value>,
    name: &str,
) -> String {
    if let Some(id) = before.map(|b| s(b, "id")).filter(|id| !id.is_empty()) {
        return id.to_owned();
    }
    format!(
        "{}/resourceGroups/{resource_group}/providers/{ARM_TYPE}/{name}",
        cx.sub_path(sub)
    )
}

fn known(v: &Deferred<String>) -> &str {
    v.known().map(String::as_str).unwrap_or_default()
}

#[async_trait]
impl Kind<AzureCx> for ConnectedCluster {
    fn rtype(&self) -> ResourceType {
        TYPE
    }

    async fn read(&self, cx: &AzureCx, req: &ReadRequest) -> ReadResponse {
        let address = &req.address;
        let mut r = ReadResponse::default();
        let attrs: Option<Attributes> = match declared(address, &req.desired) {
            Ok(a) => a,
            Err(d) => {
                r.diagnostics.push(d);
                return r;
            }
        };
        let (sub, rg) = attrs
            .as_ref()
            .map(|a| (a.subscription_id.as_str(), a.resource_group.as_str()))
            .unwrap_or((&cx.settings.subscription, ""));
        let found = match named(cx, sub, &address.name).await {
            Ok(named) => Ok(named
                .into_iter()
                .find(|c| rg_of(s(c, "id")).eq_ignore_ascii_case(rg))),
            // Without the right to list at the subscription, read the one cluster.
            Err(e) if e.status == Some(403) => {
                let get = cx.req(
                    Method::GET,
                    &path(cx, (sub, rg), None, &address.name),
                    ApiKind::ConnectedClusters,
                    None,
                );
                cx.arm
                    .send_allow_404(&get)
                    .await
                    .map(|resp| (resp.status != 404).then_some(resp.body))
            }
            Err(e) => Err(e),
        };
        match found {
            Ok(None) => {}
            Ok(Some(b)) => {
                let state = cluster_state(&b);
                r.version = Some(digest(&json!([
                    state["location"],
                    state["tags"],
                    state["agentPublicKeyCertificate"],
                    state["distribution"],
                    state["infrastructure"],
                    state["agentAutoUpgrade"],
                    state["desiredAgentVersion"],
                    state["oidcIssuer"],
                    state["workloadIdentity"],
                    state["azureRbac"],
                    state["azureHybridBenefit"],
                    state["kind"]
                ])));
                r.state = Some(state);
            }
            Err(e) => r.diagnostics.push(diag_from(&e, address)),
        }
        r
    }

    async fn plan(&self, cx: &AzureCx, req: &PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse::default();
        let d: Attributes = match attributes(&req.address, &req.desired) {
            Ok(a) => a,
            Err(diag) => {
                resp.diagnostics.push(diag);
                return resp;
            }
        };
        let stack = cx.settings.stack.as_str();
        let api = cx.arm.profile().api_version(ApiKind::ConnectedClusters);
        let missing = features::unsupported(&d.features, api);
        if req.mode != PlanMode::Destroy && !missing.is_empty() {
            for (feature, since) in missing {
                resp.diagnostics.push(
                    Diagnostic::error(
                        "unsupported-feature",
                        format!(
                            "connected cluster {}: {feature} needs api-version {since} or later of {ARM_TYPE}, and this cloud's profile uses {api}",
                            req.address.name
                        ),
                    )
                    .with_address(req.address.to_string())
                    .with_hint(format!(
                        "if the cloud offers it, set `azure.cloud.apiVersions: {{ {ARM_TYPE}: {since} }}` (or later); otherwise remove the feature from the cluster"
                    )),
                );
            }
            return resp;
        }
        let key_unknown = req
            .unknown
            .iter()
            .any(|u| u == "/agentPublicKeyCertificate");
        let Some(prior) = &req.prior else {
            resp.action = Some(if req.mode == PlanMode::Destroy {
                Action::NoOp
            } else {
                Action::Create
            });
            let mut after = req.desired.clone();
            after["id"] = Value::Null;
            resp.after = Some(after);
            return resp;
        };
        let owner = owner_of(prior);
        let ours = owner.as_deref() == Some(stack);
        if req.mode == PlanMode::Destroy {
            if ours {
                resp.action = Some(Action::Delete);
                resp.reason = Some(Reason::new(
                    ReasonCode::DeleteBecauseDestroy,
                    "destroy: disconnects the cluster from Azure Arc",
                ));
            } else {
                resp.action = Some(Action::NoOp);
                resp.outputs = Some(prior.clone());
                resp.diagnostics.push(
                    Diagnostic::warning(
                        "not-owned",
                        format!(
                            "connected cluster {} is not tagged {STACK_TAG}={stack}; destroy leaves it",
                            req.address.name
                        ),
                    )
                    .with_address(req.address.to_string()),
                );
            }
            return resp;
        }
        if let Some(o) = &owner
            && !ours
        {
            return owned_by_another_stack(&req.address, "connected cluster", o);
        }
        let (replace, why) = replacements(&d, prior, key_unknown);
        let mut after = prior.clone();
        after["location"] = json!(d.location);
        after["distribution"] = json!(d.distribution);
        after["infrastructure"] = json!(d.infrastructure);
        after["agentPublicKeyCertificate"] = json!(d.agent_public_key_certificate);
        after["agentAutoUpgrade"] = json!(d.agent_auto_upgrade);
        after["identity"] = json!(d.identity);
        after["tags"] = merged_tags(&d.tags, prior);
        features::plan_into(&d.features, &mut after);
        if req.replace_requested || !replace.is_empty() {
            resp.action = Some(Action::Replace);
            resp.reason = Some(if req.replace_requested && replace.is_empty() {
                Reason::new(
                    ReasonCode::Requested,
                    "replacement was requested (--replace); the agents must be onboarded again",
                )
            } else {
                Reason::new(
                    ReasonCode::CannotUpdate,
                    format!("{}; the agents must be onboarded again", why.join("; ")),
                )
            });
            resp.requires_replace = replace;
            after["tags"] = json!(d.tags);
            resp.after = Some(after);
            return resp;
        }
        let (feature_changes, _) = features::differences(&d.features, prior);
        let changed = !tag_diff(&d.tags, prior).is_empty()
            || !d
                .distribution
                .eq_ignore_ascii_case(s(prior, "distribution"))
            || prior.get("agentAutoUpgrade") != Some(&json!(d.agent_auto_upgrade))
            || !feature_changes.is_empty();
        resp.outputs = Some(cluster_outputs(prior));
        if changed {
            resp.action = Some(Action::Update);
            resp.after = Some(after);
            if owner.is_none() {
                resp.reason = Some(Reason::new(
                    ReasonCode::Other,
                    format!("adopts the existing connected cluster into stack {stack}"),
                ));
            } else if !feature_changes.is_empty() {
                resp.reason = Some(Reason::new(ReasonCode::Other, feature_changes.join("; ")));
            }
        } else {
            resp.action = Some(Action::NoOp);
        }
        resp
    }

    async fn apply(&self, cx: &AzureCx, req: &ApplyRequest) -> ApplyResponse {
        let address = &req.change.address;
        let started = Instant::now();
        let declared = attributes::<Attributes>(address, &req.desired);
        let result = match (req.change.action, declared) {
            // A delete needs no declared attributes: a pruned cluster has none, its id is known.
            (Action::Delete, d) => {
                let at = d
                    .as_ref()
                    .map(|a| (a.subscription_id.as_str(), a.resource_group.as_str()))
                    .unwrap_or((&cx.settings.subscription, ""));
                let path = path(cx, at, req.change.before_value().as_ref(), &address.name);
                delete_cluster(cx, req, &path, started).await.map(|()| None)
            }
            (_, Ok(d)) => apply_cluster(cx, req, &d, started).await,
            (_, Err(diag)) => {
                return ApplyResponse::failed(diag);
            }
        };
        applied(result, address)
    }

    async fn discover(&self, cx: &AzureCx, req: &DiscoverRequest) -> DiscoverResponse {
        let mut out = DiscoverResponse::default();
        for sub in &cx.settings.subscriptions {
            match list(cx, sub).await {
                Ok(items) => {
                    for c in items
                        .iter()
                        .filter(|c| owner_of(c).as_deref() == Some(req.stack.as_str()))
                    {
                        out.resources.push(Discovered {
                            address: address(s(c, "name")),
                            state: cluster_state(c),
                            version: None,
                            depends_on: vec![resource_group::address_of(
                                cx,
                                sub,
                                &rg_of(s(c, "id")),
                            )],
                        });
                    }
                }
                Err(e) => out.diagnostics.push(discover_error(&e)),
            }
        }
        out
    }
}

/// The attributes of [`REPLACED_BY`] that differ from the live state, with why, in words.
fn replacements(d: &Attributes, prior: &Value, key_unknown: bool) -> (Vec<String>, Vec<String>) {
    let [location, identity, key, infrastructure, kind, private_link] = REPLACED_BY;
    let mut replace = Vec::new();
    let mut why = Vec::new();
    let want_location = d.location.as_deref().unwrap_or_default();
    if norm_location(want_location) != norm_location(s(prior, "location")) {
        replace.push(location.to_owned());
        why.push(format!(
            "location {} -> {want_location} cannot change in place",
            s(prior, "location"),
        ));
    }
    let live_identity = prior
        .pointer("/identity/type")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    if Some(d.identity.kind.to_ascii_lowercase()) != live_identity {
        replace.push(identity.to_owned());
        why.push("the identity type cannot change in place".to_owned());
    }
    if key_unknown {
        replace.push(key.to_owned());
        why.push("the onboarding key Secret is missing from the cluster, and a new key means a new connected cluster".to_owned());
    } else if known(&d.agent_public_key_certificate) != s(prior, "agentPublicKeyCertificate") {
        replace.push(key.to_owned());
        why.push("the key in Secret azure-arc/azure-arc-connect-privatekey does not match the resource's agentPublicKeyCertificate".to_owned());
    }
    if !d
        .infrastructure
        .eq_ignore_ascii_case(s(prior, "infrastructure"))
    {
        replace.push(infrastructure.to_owned());
        why.push(format!(
            "infrastructure {} -> {} cannot change in place",
            s(prior, "infrastructure"),
            d.infrastructure
        ));
    }
    if let Some(why_pl) = features::private_link_replacement(&d.features, prior) {
        replace.push(private_link.to_owned());
        why.push(why_pl);
    }
    if let Some(k) = &d.features.kind
        && !k.eq_ignore_ascii_case(s(prior, "kind"))
    {
        replace.push(kind.to_owned());
        why.push(format!(
            "kind {} -> {k} cannot change in place",
            prior
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("(none)")
        ));
    }
    (replace, why)
}

/// The PUT body for these attributes, with these tags.
fn cluster_body(d: &Attributes, tags: Value) -> Value {
    let mut props = json!({
        "agentPublicKeyCertificate": known(&d.agent_public_key_certificate),
        "distribution": d.distribution,
        "infrastructure": d.infrastructure,
    });
    if !d.agent_auto_upgrade {
        props["arcAgentProfile"] = json!({"agentAutoUpgrade": "Disabled"});
    }
    let mut body = json!({
        "location": d.location.as_deref().unwrap_or_default(),
        "tags": tags,
        "identity": {"type": d.identity.kind},
    });
    features::body_into(&d.features, &mut body, &mut props);
    body["properties"] = props;
    body
}

async fn put_cluster(
    cx: &AzureCx,
    req: &ApplyRequest,
    path: &str,
    body: Value,
    started: Instant,
) -> Result<Value, ArmError> {
    let name = &req.change.address.name;
    let done = write_and_read(
        cx,
        req,
        (Method::PUT, body),
        path,
        ApiKind::ConnectedClusters,
        &format!("creating connected cluster {name}"),
        started,
    )
    .await?;
    match provisioning_failure(&format!("connected cluster {name}"), &done, path, None) {
        Some(e) => Err(e),
        None => Ok(cluster_outputs(&cluster_state(&done.body))),
    }
}

async fn delete_cluster(
    cx: &AzureCx,
    req: &ApplyRequest,
    path: &str,
    started: Instant,
) -> Result<(), ArmError> {
    let what = format!("deleting connected cluster {}", req.change.address.name);
    delete_and_wait(cx, req, path, ApiKind::ConnectedClusters, &what, started).await
}

/// Creates, replaces or updates the cluster as planned.
async fn apply_cluster(
    cx: &AzureCx,
    req: &ApplyRequest,
    d: &Attributes,
    started: Instant,
) -> Result<Option<Value>, ArmError> {
    let name = &req.change.address.name;
    let at = (d.subscription_id.as_str(), d.resource_group.as_str());
    let path = path(cx, at, req.change.before_value().as_ref(), name);
    match req.change.action {
        Action::Create => Ok(Some(
            put_cluster(cx, req, &path, cluster_body(d, json!(d.tags)), started).await?,
        )),
        Action::Replace => {
            delete_cluster(cx, req, &path, started).await?;
            Ok(Some(
                put_cluster(cx, req, &path, cluster_body(d, json!(d.tags)), started).await?,
            ))
        }
        Action::Update => {
            let live = cx
                .arm
                .send(&cx.req(Method::GET, &path, ApiKind::ConnectedClusters, None))
                .await?;
            let live_state = cluster_state(&live.body);
            let tags = merged_tags(&d.tags, &live_state);
            if live_state.get("agentAutoUpgrade") != Some(&json!(d.agent_auto_upgrade))
                || features::differences(&d.features, &live_state).1
            {
                // Auto-upgrade and most features are not patchable: PUT the whole resource,
                // key unchanged.
                return Ok(Some(
                    put_cluster(cx, req, &path, cluster_body(d, tags), started).await?,
                ));
            }
            let mut body = json!({
                "tags": tags,
                "properties": {"distribution": d.distribution},
            });
            features::patch_into(&d.features, &mut body["properties"]);
            let done = write_and_read(
                cx,
                req,
                (Method::PATCH, body),
                &path,
                ApiKind::ConnectedClusters,
                &format!("updating connected cluster {name}"),
                started,
            )
            .await?;
            Ok(Some(cluster_outputs(&cluster_state(&done.body))))
        }
        _ => Ok(None),
    }
}

/// The live state arcplan compares and shows, from an ARM connected cluster body.
pub fn cluster_state(b: &Value) -> Value {
    let p = b.get("properties").cloned().unwrap_or(Value::Null);
    let auto = p
        .pointer("/arcAgentProfile/agentAutoUpgrade")
        .and_then(Value::as_str)
        .map(|v| !v.eq_ignore_ascii_case("Disabled"))
        .unwrap_or(true);
    let mut state = json!({
        "id": s(b, "id"),
        "name": s(b, "name"),
        "resourceGroup": rg_of(s(b, "id")),
        "location": s(b, "location"),
        "tags": tags_of(b),
        "identity": {"type": b.pointer("/identity/type").cloned().unwrap_or(Value::Null)},
        "distribution": s(&p, "distribution"),
        "infrastructure": s(&p, "infrastructure"),
        "agentPublicKeyCertificate": s(&p, "agentPublicKeyCertificate"),
        "agentAutoUpgrade": auto,
        "provisioningState": p.get("provisioningState").cloned().unwrap_or(Value::Null),
        "connectivityStatus": p.get("connectivityStatus").cloned().unwrap_or(Value::Null),
        "agentVersion": p.get("agentVersion").cloned().unwrap_or(Value::Null),
        "kubernetesVersion": p.get("kubernetesVersion").cloned().unwrap_or(Value::Null),
        "totalNodeCount": p.get("totalNodeCount").cloned().unwrap_or(Value::Null),
        "totalCoreCount": p.get("totalCoreCount").cloned().unwrap_or(Value::Null),
        "lastConnectivityTime": p.get("lastConnectivityTime").cloned().unwrap_or(Value::Null),
        "managedIdentityCertificateExpirationTime": p.get("managedIdentityCertificateExpirationTime").cloned().unwrap_or(Value::Null),
    });
    if let (Some(st), Value::Object(f)) = (state.as_object_mut(), features::state_of(b)) {
        st.extend(f);
    }
    state
}

/// The outputs dependents may refer to, from a cluster's state.
pub(crate) fn cluster_outputs(state: &Value) -> Value {
    let mut o = Map::new();
    for k in [
        "id",
        "name",
        "connectivityStatus",
        "agentVersion",
        "kubernetesVersion",
        "totalNodeCount",
        "totalCoreCount",
        "lastConnectivityTime",
        "managedIdentityCertificateExpirationTime",
    ] {
        o.insert(k.to_owned(), state.get(k).cloned().unwrap_or(Value::Null));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_state_reads_outputs_and_auto_upgrade() {
        let b = json!({"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Kubernetes/connectedClusters/c", "name": "c", "location": "eastus",
            "identity": {"type": "SystemAssigned"},
            "properties": {"agentPublicKeyCertificate": "MIIC", "connectivityStatus": "Connected", "arcAgentProfile": {"agentAutoUpgrade": "Disabled"}}});
        let st = cluster_state(&b);
        assert_eq!(st["resourceGroup"], "g");
        assert_eq!(st["agentAutoUpgrade"], false);
        assert_eq!(cluster_outputs(&st)["connectivityStatus"], "Connected");
    }
}
