//! `arc.fluxConfiguration`: a Flux v2 GitOps configuration
//! (`Microsoft.KubernetesConfiguration/fluxConfigurations`, api 2025-04-01) on a connected
//! cluster, as `az k8s-configuration flux create/update/delete` manage it.
//!
//! Addressed `arc.fluxConfiguration.<cluster>/<name>`. It runs on the cluster's `microsoft.flux`
//! extension: when the file declares none on that cluster, the lowering adds one
//! (`arc.extension.<cluster>/flux`, shown in the plan like any node, its source saying it was
//! added implicitly).
//!
//! Ownership: Flux configurations carry no tags, and unlike extensions no free-form field
//! survives a read (every writable field is consumed by Flux; protected settings are never
//! returned). A configuration is therefore this stack's when the connected cluster it lives on
//! carries this stack's `arcplan-stack` tag: destroy and prune delete only configurations on
//! the stack's own clusters. For the same reason the digest of the protected settings is shown
//! when they are first sent (create, replace) but cannot be compared later: every update
//! resends them, and a changed secret alone is not seen by a plan.
//!
//! Scope, namespace and source kind cannot change in place (replace, as `az` refuses them in
//! `flux update`); everything else is patched (a removed kustomization, which the patch model
//! cannot express, is a PUT of the whole configuration). After a write the kind waits for the
//! Flux controllers' `complianceState` (bounded by the operation timeout): `Compliant` reports
//! each kustomization as apply progress, `Non-Compliant` fails the apply with the statuses'
//! messages.

use super::role_check::Needs;
use super::{connected_cluster, extension};
use crate::azure::cloud::ApiKind;
use crate::azure::context::AzureCx;
use crate::azure::shared::*;
use crate::kind::{Kind, attributes};
use arcplan_config::SecretRef;
use arcplan_config::conventions::FLUX_EXTENSION_TYPE;
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::diag::Diagnostic;
use arcplan_engine::plan::{Action, PlanMode, Reason, ReasonCode};
use arcplan_engine::provider::*;
use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;

mod lower;
#[cfg(test)]
mod tests;
mod write;

pub use lower::{attributes_of, covered, implicit_extension, lower};

/// The type.
pub const TYPE: ResourceType = ResourceType::of("arc.fluxConfiguration");

/// The ARM resource type under a connected cluster.
const ARM_TYPE: &str = "Microsoft.KubernetesConfiguration/fluxConfigurations";

/// The service's default of every interval and timeout, in seconds.
const DEFAULT_SECONDS: u64 = 600;

/// The Git repository, in ARM's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitRepository {
    /// The URL.
    pub url: String,
    /// The one reference followed (`branch`, `tag`, `semver` or `commit`).
    pub repository_ref: BTreeMap<String, String>,
    /// Fetch interval (`None`: the service's default).
    pub sync_interval_in_seconds: Option<u64>,
    /// Fetch timeout (`None`: the service's default).
    pub timeout_in_seconds: Option<u64>,
    /// The HTTPS user.
    pub https_user: Option<String>,
    /// Known hosts, base64-encoded as the service takes them.
    pub ssh_known_hosts: Option<String>,
}

/// The S3-compatible bucket, in ARM's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketSource {
    /// The endpoint URL.
    pub url: String,
    /// The bucket's name.
    pub bucket_name: String,
    /// Plain HTTP.
    pub insecure: bool,
    /// The access key id.
    pub access_key: Option<String>,
    /// Fetch interval (`None`: the service's default).
    pub sync_interval_in_seconds: Option<u64>,
    /// Fetch timeout (`None`: the service's default).
    pub timeout_in_seconds: Option<u64>,
}

/// The OCI repository, in ARM's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciSource {
    /// The `oci://` URL.
    pub url: String,
    /// The one reference followed (`tag`, `semver` or `digest`).
    pub repository_ref: BTreeMap<String, String>,
    /// Plain HTTP.
    pub insecure: bool,
    /// Fetch interval (`None`: the service's default).
    pub sync_interval_in_seconds: Option<u64>,
    /// Fetch timeout (`None`: the service's default).
    pub timeout_in_seconds: Option<u64>,
}

/// A kustomization, in ARM's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kustomization {
    /// The path in the source.
    pub path: String,
    /// Kustomizations of the same configuration applied first.
    pub depends_on: Vec<String>,
    /// Prune what left the source.
    pub prune: bool,
    /// Recreate what cannot be updated.
    pub force: bool,
    /// Wait for readiness.
    pub wait: bool,
    /// Reconcile interval (`None`: the service's default).
    pub sync_interval_in_seconds: Option<u64>,
    /// Reconcile timeout (`None`: the service's default).
    pub timeout_in_seconds: Option<u64>,
    /// Retry interval (`None`: the sync interval).
    pub retry_interval_in_seconds: Option<u64>,
}

/// The declared attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// The subscription.
    pub subscription_id: String,
    /// The connected cluster's resource group.
    pub resource_group: String,
    /// The connected cluster's name.
    pub cluster: String,
    /// The configuration's name.
    pub name: String,
    /// `cluster` or `namespace`.
    pub scope: String,
    /// The namespace of the source and kustomizations.
    pub namespace: String,
    /// `GitRepository`, `Bucket` or `OCIRepository`.
    pub source_kind: String,
    /// Reconciliation suspended.
    pub suspend: bool,
    /// The Git source (`sourceKind: GitRepository`).
    pub git_repository: Option<GitRepository>,
    /// The bucket source (`sourceKind: Bucket`).
    pub bucket: Option<BucketSource>,
    /// The OCI source (`sourceKind: OCIRepository`).
    pub oci_repository: Option<OciSource>,
    /// The kustomizations, by name.
    pub kustomizations: BTreeMap<String, Kustomization>,
    /// Protected settings, as references (their values are read at plan and apply time).
    pub configuration_protected_settings: BTreeMap<String, SecretRef>,
}

/// A Flux configuration's address: `arc.fluxConfiguration.<cluster>/<name>`.
pub fn address(cluster: &str, name: &str) -> Address {
    Address::new(TYPE, format!("{cluster}/{name}"))
}

/// What a change of a Flux configuration needs of the credential.
pub fn needs(_address: &Address, action: Action) -> Needs {
    match action {
        Action::Create | Action::Update => Needs::actions([format!("{ARM_TYPE}/write")]),
        Action::Replace => {
            Needs::actions([format!("{ARM_TYPE}/delete"), format!("{ARM_TYPE}/write")])
        }
        Action::Delete => Needs::actions([format!("{ARM_TYPE}/delete")]),
        _ => Needs::default(),
    }
}

/// The kind.
pub struct FluxConfigurationKind;

/// The state arcplan compares and shows, from an ARM body and the owner of its cluster.
pub fn flux_state(b: &Value, owner: Option<&str>) -> Value {
    let p = b.get("properties").cloned().unwrap_or(Value::Null);
    let field = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let g = field(&p, "gitRepository");
    let bucket = field(&p, "bucket");
    let oci = field(&p, "ociRepository");
    let kustomizations: serde_json::Map<String, Value> = p
        .get("kustomizations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(n, k)| {
                    (
                        n.clone(),
                        json!({
                            "path": k.get("path").cloned().unwrap_or(json!("")),
                            "dependsOn": k.get("dependsOn").cloned().unwrap_or(json!([])),
                            "prune": k.get("prune").cloned().unwrap_or(json!(false)),
                            "force": k.get("force").cloned().unwrap_or(json!(false)),
                            "wait": k.get("wait").cloned().unwrap_or(json!(true)),
                            "syncIntervalInSeconds": field(k, "syncIntervalInSeconds"),
                            "timeoutInSeconds": field(k, "timeoutInSeconds"),
                            "retryIntervalInSeconds": field(k, "retryIntervalInSeconds"),
                        }),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "id": s(b, "id"),
        "name": s(b, "name"),
        "scope": p.get("scope").cloned().unwrap_or(json!("cluster")),
        "namespace": p.get("namespace").cloned().unwrap_or(json!("default")),
        "sourceKind": p.get("sourceKind").cloned().unwrap_or(json!("GitRepository")),
        "suspend": p.get("suspend").cloned().unwrap_or(json!(false)),
        "gitRepository": if g.is_object() {
            json!({
                "url": field(&g, "url"),
                "repositoryRef": field(&g, "repositoryRef"),
                "syncIntervalInSeconds": field(&g, "syncIntervalInSeconds"),
                "timeoutInSeconds": field(&g, "timeoutInSeconds"),
                "httpsUser": field(&g, "httpsUser"),
                "sshKnownHosts": field(&g, "sshKnownHosts"),
            })
        } else {
            Value::Null
        },
        "bucket": if bucket.is_object() {
            json!({
                "url": field(&bucket, "url"),
                "bucketName": field(&bucket, "bucketName"),
                "insecure": bucket.get("insecure").cloned().unwrap_or(json!(true)),
                "accessKey": field(&bucket, "accessKey"),
                "syncIntervalInSeconds": field(&bucket, "syncIntervalInSeconds"),
                "timeoutInSeconds": field(&bucket, "timeoutInSeconds"),
            })
        } else {
            Value::Null
        },
        "ociRepository": if oci.is_object() {
            json!({
                "url": field(&oci, "url"),
                "repositoryRef": field(&oci, "repositoryRef"),
                "insecure": oci.get("insecure").cloned().unwrap_or(json!(false)),
                "syncIntervalInSeconds": field(&oci, "syncIntervalInSeconds"),
                "timeoutInSeconds": field(&oci, "timeoutInSeconds"),
            })
        } else {
            Value::Null
        },
        "kustomizations": kustomizations,
        "protectedSettingsDigest": Value::Null,
        "owner": owner.map(Value::from).unwrap_or(Value::Null),
        "provisioningState": field(&p, "provisioningState"),
        "complianceState": field(&p, "complianceState"),
    })
}

/// Protected values as sent (base64-encoded, by name) and the digest of the plain values.
type Protected = (BTreeMap<String, String>, String);

/// The protected settings' values, base64-encoded as the service takes them (`None`: none
/// declared), and their digest (of the plain values; never the values). Errors name the
/// reference.
fn protected_values(
    cx: &AzureCx,
    a: &Attributes,
    address: &Address,
) -> Result<Option<Protected>, Diagnostic> {
    use base64::Engine;
    let what = format!("Flux configuration {}", a.name);
    let Some(plain) = read_protected(cx, &a.configuration_protected_settings, &what, address)?
    else {
        return Ok(None);
    };
    let d = digest(&json!(plain));
    let encoded = plain
        .into_iter()
        .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
        .collect();
    Ok(Some((encoded, d)))
}

/// Why the live configuration must be replaced (empty: it can be updated in place).
fn replacements(d: &Attributes, prior: &Value) -> (Vec<String>, Vec<String>) {
    let mut paths = Vec::new();
    let mut why = Vec::new();
    for (key, want) in [
        ("scope", &d.scope),
        ("namespace", &d.namespace),
        ("sourceKind", &d.source_kind),
    ] {
        if prior[key].as_str() != Some(want.as_str()) {
            paths.push(format!("/{key}"));
            why.push(format!(
                "{key} {} -> {want} cannot change in place",
                prior[key]
            ));
        }
    }
    (paths, why)
}

/// The planned state for these attributes over the prior state (`None`: a create).
/// `protected`: the digest of the protected settings being sent, shown on create and replace
/// (it cannot be read back, so an update keeps the prior's).
fn planned(d: &Attributes, prior: Option<&Value>, protected: Option<&str>, stack: &str) -> Value {
    let mut after = prior.cloned().unwrap_or_else(|| json!({"id": Value::Null}));
    let or_default = |v: Option<u64>| json!(v.unwrap_or(DEFAULT_SECONDS));
    after["name"] = json!(d.name);
    after["scope"] = json!(d.scope);
    after["namespace"] = json!(d.namespace);
    after["sourceKind"] = json!(d.source_kind);
    after["suspend"] = json!(d.suspend);
    after["gitRepository"] = d.git_repository.as_ref().map_or(Value::Null, |g| {
        json!({
            "url": g.url,
            "repositoryRef": g.repository_ref,
            "syncIntervalInSeconds": or_default(g.sync_interval_in_seconds),
            "timeoutInSeconds": or_default(g.timeout_in_seconds),
            "httpsUser": g.https_user,
            "sshKnownHosts": g.ssh_known_hosts,
        })
    });
    after["bucket"] = d.bucket.as_ref().map_or(Value::Null, |b| {
        json!({
            "url": b.url,
            "bucketName": b.bucket_name,
            "insecure": b.insecure,
            "accessKey": b.access_key,
            "syncIntervalInSeconds": or_default(b.sync_interval_in_seconds),
            "timeoutInSeconds": or_default(b.timeout_in_seconds),
        })
    });
    after["ociRepository"] = d.oci_repository.as_ref().map_or(Value::Null, |o| {
        json!({
            "url": o.url,
            "repositoryRef": o.repository_ref,
            "insecure": o.insecure,
            "syncIntervalInSeconds": or_default(o.sync_interval_in_seconds),
            "timeoutInSeconds": or_default(o.timeout_in_seconds),
        })
    });
    after["kustomizations"] = d
        .kustomizations
        .iter()
        .map(|(n, k)| {
            (
                n.clone(),
                json!({
                    "path": k.path,
                    "dependsOn": k.depends_on,
                    "prune": k.prune,
                    "force": k.force,
                    "wait": k.wait,
                    "syncIntervalInSeconds": or_default(k.sync_interval_in_seconds),
                    "timeoutInSeconds": or_default(k.timeout_in_seconds),
                    "retryIntervalInSeconds": k.retry_interval_in_seconds,
                }),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    if prior.is_none() {
        after["protectedSettingsDigest"] = json!(protected);
    }
    after["owner"] = json!(stack);
    after
}

/// The owner of cluster `cluster` (its `arcplan-stack` tag), from the cached cluster list.
async fn cluster_owner(
    cx: &AzureCx,
    (sub, rg): (&str, &str),
    cluster: &str,
) -> Result<Option<String>, Diagnostic> {
    let clusters = connected_cluster::named(cx, sub, cluster)
        .await
        .map_err(|e| discover_error(&e))?;
    Ok(clusters
        .iter()
        .find(|c| rg_of(s(c, "id")).eq_ignore_ascii_case(rg))
        .and_then(owner_of))
}

#[async_trait]
impl Kind<AzureCx> for FluxConfigurationKind {
    fn rtype(&self) -> ResourceType {
        TYPE
    }

    async fn read(&self, cx: &AzureCx, req: &ReadRequest) -> ReadResponse {
        let mut r = ReadResponse::default();
        let (sub, rg) = match declared::<Attributes>(&req.address, &req.desired) {
            Ok(a) => a
                .map(|a| (a.subscription_id, a.resource_group))
                .unwrap_or((cx.settings.subscription.clone(), String::new())),
            Err(d) => {
                r.diagnostics.push(d);
                return r;
            }
        };
        let get = cx.req(
            Method::GET,
            &cluster_child_path(&req.address, None, (&sub, &rg), ARM_TYPE),
            ApiKind::FluxConfigurations,
            None,
        );
        match cx.arm.send_allow_404(&get).await {
            Ok(resp) if resp.status == 404 => {}
            Ok(resp) => {
                let (sub, rg) = if rg.is_empty() {
                    place_of(None, Some(&resp.body), &sub)
                } else {
                    (sub, rg)
                };
                let cluster = req.address.name.split('/').next().unwrap_or_default();
                let owner = match cluster_owner(cx, (&sub, &rg), cluster).await {
                    Ok(o) => o,
                    Err(d) => {
                        r.diagnostics.push(d);
                        return r;
                    }
                };
                let state = flux_state(&resp.body, owner.as_deref());
                r.version = Some(digest(&json!([
                    state["scope"],
                    state["namespace"],
                    state["sourceKind"],
                    state["suspend"],
                    state["gitRepository"],
                    state["bucket"],
                    state["ociRepository"],
                    state["kustomizations"],
                    state["owner"],
                ])));
                r.state = Some(state);
            }
            Err(e) => r.diagnostics.push(diag_from(&e, &req.address)),
        }
        r
    }

    async fn plan(&self, cx: &AzureCx, req: &PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse::default();
        let stack = cx.settings.stack.as_str();
        let owner = req
            .prior
            .as_ref()
            .and_then(|p| p["owner"].as_str())
            .map(str::to_owned);
        let ours = owner.as_deref() == Some(stack);
        if req.mode == PlanMode::Destroy {
            return plan_destroy(
                req.prior.as_ref(),
                ours,
                "destroy: removes the Flux configuration (and, with prune, what it applied)",
                || not_owned(&req.address, stack, "destroy"),
            );
        }
        let d: Attributes = match attributes(&req.address, &req.desired) {
            Ok(a) => a,
            Err(diag) => {
                resp.diagnostics.push(diag);
                return resp;
            }
        };
        let protected = match protected_values(cx, &d, &req.address) {
            Ok(p) => p.map(|(_, digest)| digest),
            Err(diag) => {
                resp.diagnostics.push(diag);
                return resp;
            }
        };
        let Some(prior) = &req.prior else {
            resp.action = Some(Action::Create);
            resp.after = Some(planned(&d, None, protected.as_deref(), stack));
            return resp;
        };
        if let Some(o) = owner.as_deref().filter(|o| *o != stack) {
            return owned_by_another_stack(&req.address, "Flux configuration", o);
        }
        resp.outputs = Some(prior.clone());
        let (replace, why) = replacements(&d, prior);
        if req.replace_requested || !replace.is_empty() {
            let mut after = planned(&d, None, protected.as_deref(), stack);
            after["id"] = prior["id"].clone();
            resp.action = Some(Action::Replace);
            resp.reason = Some(if replace.is_empty() {
                Reason::new(
                    ReasonCode::Requested,
                    "replacement was requested (--replace)",
                )
            } else {
                Reason::new(ReasonCode::CannotUpdate, why.join("; "))
            });
            resp.requires_replace = replace;
            resp.after = Some(after);
            return resp;
        }
        let after = planned(&d, Some(prior), protected.as_deref(), stack);
        if prior["complianceState"] == "Non-Compliant" {
            resp.diagnostics.push(
                Diagnostic::warning(
                    "flux-non-compliant",
                    format!(
                        "Flux configuration {} is Non-Compliant (as Flux last reported it)",
                        req.address.name
                    ),
                )
                .with_address(req.address.to_string())
                .with_hint("see why with `az k8s-configuration flux show`; fix the repository, its credentials or the kustomization named there, then apply again"),
            );
        }
        if &after == prior {
            resp.action = Some(Action::NoOp);
            return resp;
        }
        resp.action = Some(Action::Update);
        resp.after = Some(after);
        resp
    }

    async fn apply(&self, cx: &AzureCx, req: &ApplyRequest) -> ApplyResponse {
        let address = &req.change.address;
        let started = Instant::now();
        let declared = declared::<Attributes>(address, &req.desired);
        let path = child_apply_path(
            &cx.settings.subscription,
            &req.change,
            (declared.as_ref().ok().and_then(|d| d.as_ref()))
                .map(|d| (d.subscription_id.as_str(), d.resource_group.as_str())),
            ARM_TYPE,
        );
        match (req.change.action, declared) {
            (Action::Delete, _) => applied(
                write::delete(cx, req, &path, started).await.map(|()| None),
                address,
            ),
            (_, Ok(Some(d))) => match protected_values(cx, &d, address) {
                Ok(values) => {
                    match write::write(cx, req, &d, values.map(|(v, _)| v), &path, started).await {
                        Ok(state) => ApplyResponse {
                            state: state.clone(),
                            outputs: state,
                            ..Default::default()
                        },
                        Err(diag) => ApplyResponse::failed(diag),
                    }
                }
                Err(diag) => ApplyResponse::failed(diag),
            },
            (_, Ok(None)) => ApplyResponse::default(),
            (_, Err(diag)) => ApplyResponse::failed(diag),
        }
    }

    async fn discover(&self, cx: &AzureCx, req: &DiscoverRequest) -> DiscoverResponse {
        let mut out = DiscoverResponse::default();
        // Only clusters this stack installed extensions on (a Flux configuration needs the
        // microsoft.flux extension, whose apply tags the cluster).
        let ours = match extension::clusters_with_extensions(cx, &req.stack).await {
            Ok(c) => c,
            Err(e) => {
                out.diagnostics.push(discover_error(&e));
                return out;
            }
        };
        for (sub, cluster, rg) in &ours {
            let cluster = cluster.as_str();
            // Flux configurations exist only where the microsoft.flux extension runs: a
            // cluster without it is not listed (its extensions are listed once per plan).
            let flux_extensions: Vec<Address> =
                match extension::cluster_extensions(cx, (sub, rg), cluster).await {
                    Ok(exts) => exts
                        .iter()
                        .filter(|e| {
                            e.pointer("/properties/extensionType")
                                .and_then(Value::as_str)
                                .is_some_and(|t| t.eq_ignore_ascii_case(FLUX_EXTENSION_TYPE))
                        })
                        .map(|e| extension::address(cluster, s(e, "name")))
                        .collect(),
                    // Unreadable: the extensions' discovery, reading the same list, says so.
                    Err(_) => continue,
                };
            if flux_extensions.is_empty() {
                continue;
            }
            let list = cx.req(
                Method::GET,
                &cluster_children_path((sub, rg), cluster, ARM_TYPE),
                ApiKind::FluxConfigurations,
                None,
            );
            let items = match cx.arm.list_all(&list).await {
                Ok(items) => items,
                // A cluster being deleted: nothing to prune.
                Err(e) if matches!(e.status, Some(404) | Some(409)) => continue,
                Err(e) => {
                    out.diagnostics.push(discover_error(&e));
                    continue;
                }
            };
            // Deleted before the extension they run on.
            let mut depends_on = vec![connected_cluster::address(cluster)];
            depends_on.extend(flux_extensions);
            for f in items {
                out.resources.push(Discovered {
                    address: address(cluster, s(&f, "name")),
                    state: flux_state(&f, Some(req.stack.as_str())),
                    version: None,
                    depends_on: depends_on.clone(),
                });
            }
        }
        out
    }
}

fn not_owned(address: &Address, stack: &str, what: &str) -> Diagnostic {
    Diagnostic::warning(
        "not-owned",
        format!(
            "Flux configuration {} is on a cluster that does not carry this stack's ownership (tag arcplan-stack={stack}); {what} leaves it",
            address.name
        ),
    )
    .with_address(address.to_string())
}
