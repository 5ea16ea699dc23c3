//! `k8s.onboardingKey.<cluster>`: the RSA onboarding key kept in Secret
//! `azure-arc-connect-privatekey` (namespace `azure-arc`, data key `privateKey`, PKCS#1 PEM).
//!
//! - read: the Secret, reduced to public facts (`publicKey`, `fingerprint`, `keyBits`,
//!   `privateKey: "present"`); the ownership record is checked too, so a cluster onboarded to
//!   another resource fails the plan before anything changes.
//! - plan: absent → create (the public key is known only after apply); present → no-op with the
//!   output `publicKey`, re-derived from the Secret on every plan; an unreadable key or another
//!   size → replace.
//! - apply: creates namespace `azure-arc` if needed, takes the key the plan started generating
//!   ([`crate::kubernetes::key_pool`]; AWS-LC, off the async runtime) or generates one, and
//!   stores it by server-side apply (field manager `arcplan`, label
//!   `app.kubernetes.io/managed-by=arcplan`); delete removes the Secret.
//!
//! The private key never appears in a state, output, event or diagnostic: `/privateKey` is
//! reported as sensitive and only ever holds `present`.

use super::{ClusterAccess, Ownership};
use crate::kind::{Kind, attributes};
use crate::kubernetes::access::{Cluster, is_not_found};
use crate::kubernetes::context::KubeCx;
use crate::kubernetes::key::{self, PrivateKeyPem, PublicKeyInfo};
use crate::kubernetes::manifests::namespace_object;
use crate::kubernetes::{
    FIELD_MANAGER, KEY_FIELD, KEY_SECRET, MANAGED_BY_LABEL, NAMESPACE, at, diags_at, key_pool,
    ownership,
};
use arcplan_config::Config;
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use arcplan_engine::events::Event;
use arcplan_engine::graph::{GraphBuilder, Mode};
use arcplan_engine::plan::{Action, PlanMode, Reason, ReasonCode};
use arcplan_engine::provider::*;
use async_trait::async_trait;
use base64::Engine as _;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Instant;

/// The type.
pub const TYPE: ResourceType = ResourceType::of("k8s.onboardingKey");

/// The declared attributes. Everything but `cluster` has the default the lowering writes, so a
/// request naming only the cluster reads the standard Secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// How to reach the cluster.
    pub cluster: ClusterAccess,
    /// The Secret's namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The Secret's name.
    #[serde(default = "default_secret_name")]
    pub secret_name: String,
    /// The key size.
    #[serde(default = "default_key_bits")]
    pub key_bits: u32,
    /// The ownership record (absent: only the resource name is compared with a live record).
    #[serde(default)]
    pub ownership: Option<Ownership>,
}

fn default_namespace() -> String {
    NAMESPACE.into()
}

fn default_secret_name() -> String {
    KEY_SECRET.into()
}

fn default_key_bits() -> u32 {
    4096
}

/// A cluster's key.
pub fn address(cluster: &str) -> Address {
    Address::new(TYPE, cluster)
}

/// One key per cluster (its edge to the group's role check is the role check's).
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    for (i, c) in cfg.clusters.iter().enumerate() {
        let attrs = Attributes {
            cluster: ClusterAccess::of(c),
            namespace: NAMESPACE.into(),
            secret_name: KEY_SECRET.into(),
            key_bits: default_key_bits(),
            ownership: Some(Ownership::of(cfg, c)),
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
pub struct OnboardingKey;

#[async_trait]
impl Kind<KubeCx> for OnboardingKey {
    fn rtype(&self) -> ResourceType {
        TYPE
    }

    async fn read(&self, cx: &KubeCx, req: &ReadRequest) -> ReadResponse {
        read(cx, req).await
    }

    async fn plan(&self, cx: &KubeCx, req: &PlanRequest) -> PlanResponse {
        plan(cx, req).await
    }

    async fn apply(&self, cx: &KubeCx, req: &ApplyRequest) -> ApplyResponse {
        apply(cx, req).await
    }

    async fn left_behind(&self, _cx: &KubeCx, req: &ReadRequest) -> Diagnostics {
        let (namespace, secret) = match attributes::<Attributes>(&req.address, &req.desired) {
            Ok(a) => (a.namespace, a.secret_name),
            Err(_) => (NAMESPACE.to_owned(), KEY_SECRET.to_owned()),
        };
        super::orphaned(
            "orphaned-key",
            &req.address,
            &format!(
                "the onboarding private key stays in the cluster, orphaned (Secret {namespace}/{secret})"
            ),
        )
    }
}

/// The JSON pointer reported as sensitive.
pub const SENSITIVE_PATH: &str = "/privateKey";

/// Where the key lives and its size, from the attributes.
struct Target {
    namespace: String,
    secret: String,
    bits: usize,
    /// The key pool's name for this resource's key: its cluster and Secret.
    pool_id: String,
}

impl Target {
    fn of(a: &Attributes) -> Self {
        let cluster = serde_json::to_value(&a.cluster).unwrap_or(Value::Null);
        Target {
            pool_id: format!("{cluster}|{}/{}", a.namespace, a.secret_name),
            namespace: a.namespace.clone(),
            secret: a.secret_name.clone(),
            bits: usize::try_from(a.key_bits).unwrap_or(usize::MAX),
        }
    }
}

fn public_state(t: &Target, info: &PublicKeyInfo) -> Value {
    json!({
        "namespace": t.namespace,
        "secretName": t.secret,
        "keyBits": info.bits,
        "publicKey": info.public_key,
        "fingerprint": info.fingerprint,
        "privateKey": "present",
    })
}

fn outputs(info: &PublicKeyInfo) -> Value {
    json!({"publicKey": info.public_key, "fingerprint": info.fingerprint, "keyBits": info.bits})
}

/// The PEM in a Secret, if it has one.
pub(crate) fn pem_of(secret: &Secret) -> Option<PrivateKeyPem> {
    let raw = secret.data.as_ref()?.get(KEY_FIELD)?;
    String::from_utf8(raw.0.clone())
        .ok()
        .map(PrivateKeyPem::new)
}

/// Connects to the cluster and fails when its ownership record names another ARM resource.
async fn owned_cluster(
    cx: &KubeCx,
    a: &Attributes,
    address: &Address,
) -> Result<std::sync::Arc<Cluster>, Diagnostic> {
    let cluster = cx.cluster(&a.cluster).await?;
    let want = a.ownership.as_ref().map(Ownership::to_map);
    ownership::read_and_check(&cluster, want.as_ref(), address).await?;
    Ok(cluster)
}

async fn read_secret(cluster: &Cluster, t: &Target) -> Result<Option<Secret>, Diagnostic> {
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), &t.namespace);
    api.get_opt(&t.secret)
        .await
        .map_err(|e| cluster.api_error(&format!("read Secret {}/{}", t.namespace, t.secret), &e))
}

async fn read(cx: &KubeCx, req: &ReadRequest) -> ReadResponse {
    let address = &req.address;
    let result = async {
        let a: Attributes = attributes(address, &req.desired)?;
        let cluster = owned_cluster(cx, &a, address).await?;
        let t = Target::of(&a);
        let Some(secret) = read_secret(&cluster, &t).await? else {
            return Ok((None, None));
        };
        let version = secret.metadata.resource_version.clone();
        let state = match pem_of(&secret).map(|pem| key::public_key_of(&pem)) {
            Some(Ok(info)) => public_state(&t, &info),
            Some(Err(e)) => json!({
                "namespace": t.namespace, "secretName": t.secret, "privateKey": "invalid",
                "problem": e.to_string(),
            }),
            None => json!({
                "namespace": t.namespace, "secretName": t.secret, "privateKey": "missing",
                "problem": format!("the Secret has no `{KEY_FIELD}` key"),
            }),
        };
        Ok::<_, Diagnostic>((Some(state), version))
    }
    .await;
    match result {
        Ok((state, version)) => ReadResponse {
            state,
            version,
            ..Default::default()
        },
        Err(d) => ReadResponse {
            diagnostics: diags_at(address, d),
            ..Default::default()
        },
    }
}

/// `plan` for `k8s.onboardingKey`.
async fn plan(cx: &KubeCx, req: &PlanRequest) -> PlanResponse {
    let mut resp = PlanResponse {
        sensitive_paths: vec![SENSITIVE_PATH.into()],
        ..Default::default()
    };
    let a: Attributes = match attributes(&req.address, &req.desired) {
        Ok(a) => a,
        Err(d) => {
            resp.diagnostics = d.into();
            return resp;
        }
    };
    let t = Target::of(&a);
    if let Err(e) = key::generate_check(t.bits) {
        resp.diagnostics = diags_at(
            &req.address,
            Diagnostic::error("invalid-key-size", e.to_string()).with_key("keyBits"),
        );
        return resp;
    }
    let planned_after = json!({
        "namespace": t.namespace,
        "secretName": t.secret,
        "keyBits": t.bits,
        "privateKey": "(generated during apply, kept only in the cluster)",
    });
    let (action, reason, replace_paths) = match (&req.prior, req.mode) {
        (None, PlanMode::Destroy) => (Action::NoOp, None, vec![]),
        (Some(_), PlanMode::Destroy) => (
            Action::Delete,
            Some(Reason::new(
                ReasonCode::DeleteBecauseDestroy,
                format!(
                    "destroy was requested: Secret {}/{} is deleted after the connected cluster",
                    t.namespace, t.secret
                ),
            )),
            vec![],
        ),
        (None, _) => (
            Action::Create,
            Some(Reason::new(
                ReasonCode::NotFound,
                format!(
                    "Secret {}/{} does not exist: a new RSA-{} key is generated and stored in the cluster",
                    t.namespace, t.secret, t.bits
                ),
            )),
            vec![],
        ),
        (Some(prior), _) => {
            let status = prior
                .get("privateKey")
                .and_then(Value::as_str)
                .unwrap_or("");
            let bits = prior.get("keyBits").and_then(Value::as_u64);
            if status != "present" {
                let problem = prior.get("problem").and_then(Value::as_str).unwrap_or("");
                (
                    Action::Replace,
                    Some(Reason::new(
                        ReasonCode::CannotUpdate,
                        format!(
                            "Secret {}/{} holds no usable key ({problem}): a new key is generated, so the connected cluster must be replaced too",
                            t.namespace, t.secret
                        ),
                    )),
                    vec![SENSITIVE_PATH.to_owned()],
                )
            } else if bits != Some(t.bits as u64) {
                (
                    Action::Replace,
                    Some(Reason::new(
                        ReasonCode::CannotUpdate,
                        format!(
                            "the stored key has {} bits, {} are wanted: a new key is generated",
                            bits.unwrap_or(0),
                            t.bits
                        ),
                    )),
                    vec!["/keyBits".to_owned()],
                )
            } else if req.replace_requested {
                (
                    Action::Replace,
                    Some(Reason::new(
                        ReasonCode::Requested,
                        "replacement was requested: a new key is generated",
                    )),
                    vec![],
                )
            } else {
                resp.outputs = Some(json!({
                    "publicKey": prior.get("publicKey").cloned().unwrap_or(Value::Null),
                    "fingerprint": prior.get("fingerprint").cloned().unwrap_or(Value::Null),
                    "keyBits": bits,
                }));
                (Action::NoOp, None, vec![])
            }
        }
    };
    if action.is_change() {
        let verb = if action == Action::Delete {
            "delete"
        } else {
            "create"
        };
        match cx.cluster(&a.cluster).await {
            Ok(c) => {
                if let Err(d) = c.check_rights(verb).await {
                    resp.diagnostics.extend(d);
                }
            }
            Err(d) => resp.diagnostics.push(at(&req.address, d)),
        }
    }
    if matches!(action, Action::Create | Action::Replace) && resp.diagnostics.is_empty() {
        // The apply will need a new key: start generating it now, off the runtime, so it
        // overlaps the rest of the plan and the other clusters' work (see `key_pool`).
        cx.keys().prefetch(&t.pool_id, t.bits);
    }
    resp.action = Some(action);
    resp.reason = reason;
    resp.requires_replace = replace_paths;
    resp.after = match action {
        Action::Create | Action::Replace => Some(planned_after),
        Action::Delete => None,
        _ => req.prior.clone(),
    };
    resp
}

fn progress(req: &ApplyRequest, started: Instant, message: impl Into<String>) {
    req.events.emit(Event::ApplyProgress {
        address: req.change.address.clone(),
        message: message.into(),
        elapsed_seconds: started.elapsed().as_secs_f64(),
    });
}

/// The new key: the prefetched one, else one generated now (both on the pool's blocking
/// threads); abandoned on cancellation, before anything is written.
async fn obtain_key(
    cx: &KubeCx,
    req: &ApplyRequest,
    started: Instant,
    prefetched: Option<key_pool::PendingKey>,
    bits: usize,
) -> Result<(PrivateKeyPem, PublicKeyInfo), Diagnostic> {
    let ahead = prefetched.is_some();
    let mut handle = prefetched.unwrap_or_else(|| cx.keys().spawn(bits));
    let step = match (ahead, handle.is_finished()) {
        (true, true) => format!("using the RSA-{bits} key generated during the plan"),
        (true, false) => format!("waiting for the RSA-{bits} key generated since the plan"),
        (false, _) => format!("generating an RSA-{bits} key"),
    };
    progress(req, started, step);
    let generated = tokio::select! {
        r = key_pool::finish(&mut handle) => r,
        () = req.cancel.cancelled() => {
            handle.abort();
            return Err(Diagnostic::error(
                "cancelled",
                "generating the onboarding key was interrupted; nothing was stored",
            )
            .with_hint("plan again to converge"));
        }
    };
    let (pem, info) = generated.map_err(|e| Diagnostic::error("key-generation", e.to_string()))?;
    progress(
        req,
        started,
        format!("generated the RSA-{bits} key ({})", info.fingerprint),
    );
    Ok((pem, info))
}

/// Server-side applies namespace `name` with the ownership label.
async fn ensure_namespace(cluster: &Cluster, name: &str) -> Result<(), Diagnostic> {
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(namespace_object(name)),
    )
    .await
    .map(|_| ())
    .map_err(|e| cluster.api_error(&format!("create namespace {name}"), &e))
}

async fn apply(cx: &KubeCx, req: &ApplyRequest) -> ApplyResponse {
    let address = &req.change.address;
    match apply_inner(cx, req).await {
        Ok((state, outputs)) => ApplyResponse {
            state,
            outputs,
            diagnostics: Default::default(),
        },
        Err(d) => ApplyResponse::failed(diags_at(address, d)),
    }
}

async fn apply_inner(
    cx: &KubeCx,
    req: &ApplyRequest,
) -> Result<(Option<Value>, Option<Value>), Diagnostic> {
    let started = Instant::now();
    let a: Attributes = attributes(&req.change.address, &req.desired)?;
    let cluster = owned_cluster(cx, &a, &req.change.address).await?;
    let t = Target::of(&a);
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), &t.namespace);
    match req.change.action {
        Action::Delete => {
            match api.delete(&t.secret, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    return Err(cluster
                        .api_error(&format!("delete Secret {}/{}", t.namespace, t.secret), &e));
                }
            }
            progress(
                req,
                started,
                format!("deleted Secret {}/{}", t.namespace, t.secret),
            );
            Ok((None, None))
        }
        Action::Create | Action::Replace | Action::Update => {
            // The key the plan started generating, if it did; taken (so used at most once) even
            // when the Secret turns out to exist already.
            let prefetched = cx.keys().take(&t.pool_id, t.bits);
            ensure_namespace(&cluster, &t.namespace).await?;
            if req.change.action == Action::Create
                && let Some(existing) = read_secret(&cluster, &t).await?
                && let Some(Ok(info)) = pem_of(&existing).map(|pem| key::public_key_of(&pem))
            {
                // Someone (an interrupted earlier apply) stored a key since the plan: keep it,
                // the key is generated only once.
                progress(
                    req,
                    started,
                    "the key already exists in the cluster; keeping it",
                );
                return Ok((Some(public_state(&t, &info)), Some(outputs(&info))));
            }
            let (pem, info) = obtain_key(cx, req, started, prefetched, t.bits).await?;
            let body = json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": t.secret,
                    "namespace": t.namespace,
                    "labels": {MANAGED_BY_LABEL.0: MANAGED_BY_LABEL.1},
                },
                "type": "Opaque",
                "data": {KEY_FIELD: base64::engine::general_purpose::STANDARD.encode(pem.expose())},
            });
            api.patch(
                &t.secret,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|e| {
                cluster.api_error(&format!("store Secret {}/{}", t.namespace, t.secret), &e)
            })?;
            drop(body);
            drop(pem);
            progress(
                req,
                started,
                format!(
                    "stored the key in Secret {}/{} ({})",
                    t.namespace, t.secret, info.fingerprint
                ),
            );
            Ok((Some(public_state(&t, &info)), Some(outputs(&info))))
        }
        Action::NoOp | Action::Read => Ok((None, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_naming_only_the_cluster_reads_the_standard_secret() {
        let a: Attributes =
            attributes(&address("c"), &json!({"cluster": {"kubeconfig": "kc"}})).expect("defaults");
        assert_eq!(a.namespace, NAMESPACE);
        assert_eq!(a.secret_name, KEY_SECRET);
        assert_eq!(a.key_bits, 4096);
        assert!(a.ownership.is_none());
        let t = Target::of(&a);
        assert_eq!(t.bits, 4096);
        assert!(
            t.pool_id.contains("kc")
                && t.pool_id
                    .ends_with("azure-arc/azure-arc-connect-privatekey")
        );
        assert!(attributes::<Attributes>(&address("c"), &json!({"keyBits": 2048})).is_err());
    }
}
