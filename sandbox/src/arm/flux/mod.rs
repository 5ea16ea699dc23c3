//! `Microsoft.KubernetesConfiguration/fluxConfigurations` under connected clusters in the ARM
//! emulator (spec 2025-04-01): list, get, create (PUT), update (PATCH) and delete as
//! long-running operations with `Azure-AsyncOperation` status at `{configuration}/operations/{id}`,
//! and a Flux controller stand-in that reports the configuration's compliance.
//!
//! The stand-in: once a write's operation ends, the configuration is `Pending` for one
//! operation's time, then `Compliant` with one `ObjectStatusDefinition` for the source
//! (`GitRepository`, `Bucket` or `OCIRepository`; `AzureBlob` is refused as not emulated) and one per
//! kustomization (kind `Kustomization`, named
//! `<configuration>-<kustomization>`), or `Non-Compliant` when its repository URL is one the
//! sandbox was told is broken (`ArmApi::set_broken_repository`), or `Suspended`.
//!
//! Protected settings are stored but never returned. A configuration on a cluster without a
//! `Succeeded` `microsoft.flux` extension, a missing source, a Git repository without exactly one
//! reference, `dependsOn` naming no kustomization of the configuration, changing `scope` or
//! `namespace` in place and an unregistered `Microsoft.KubernetesConfiguration` are refused; a
//! second write while one is in progress is a conflict.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::catalog::{FLUX_VERSIONS, RegistrationState};
use super::cluster_children::{self, ChildType, ClusterKey};
use super::extensions::properties;
use super::operations::OpEffect;
use super::request::{json_body, only};
use super::routing::{Kind, Parsed};
use super::state::{ArmState, FluxConfig};
use body::{
    bucket, git_repository, kustomizations, merge, oci_repository, protected_settings, reconcile,
};

mod body;
use super::{ArmError, Ctx, eq, json_response, rfc3339};

const RTYPE: &str = "Microsoft.KubernetesConfiguration/fluxConfigurations";
const NAMESPACE: &str = "Microsoft.KubernetesConfiguration";
const SOURCE_KINDS: &[&str] = &["GitRepository", "Bucket", "AzureBlob", "OCIRepository"];

/// Flux configurations.
pub(crate) const KIND: Kind = Kind {
    name: "fluxConfigurations",
    parse,
};

/// The type's routes.
static TYPE: ChildType = ChildType {
    namespace: NAMESPACE,
    type_name: "fluxConfigurations",
    versions: FLUX_VERSIONS,
    what: "Flux configuration",
    list: ArmState::list_flux,
    one: ArmState::flux,
};

fn parse(s: &[&str], _path: &str) -> Parsed {
    cluster_children::parse(&TYPE, s)
}

/// An operation on a Flux configuration: writes end `Succeeded` (the stand-in then reconciles)
/// or `Failed` (with `errorMessage`); deletes remove it.
#[derive(Debug)]
struct FluxOp {
    key: ClusterKey,
    name: String,
    deletes: bool,
}

impl OpEffect for FluxOp {
    fn deletes(&self) -> bool {
        self.deletes
    }

    fn finish(&self, st: &mut ArmState, _sub: &str, ok: bool) {
        let delay = st.cfg.lro_delay;
        let (s, rg, c) = &self.key;
        let Some(cluster) = st.cluster_mut(s, rg, c) else {
            return;
        };
        let key = self.name.to_ascii_lowercase();
        if self.deletes && ok {
            cluster.flux_configurations.remove(&key);
            return;
        }
        if let Some(f) = cluster.flux_configurations.get_mut(&key) {
            f.busy = None;
            let p = &mut f.resource["properties"];
            if ok {
                p["provisioningState"] = json!("Succeeded");
                p["complianceState"] = json!("Pending");
                f.reconciles_at = Some(Instant::now() + delay);
            } else {
                p["provisioningState"] = json!("Failed");
                p["errorMessage"] = json!(format!(
                    "The Flux configuration operation failed (sandbox: failure injected for '{}').",
                    self.name
                ));
            }
        }
    }

    fn result(&self, st: &ArmState, _sub: &str) -> Response {
        let (s, rg, c) = &self.key;
        match st
            .cluster(s, rg, c)
            .and_then(|c| c.flux_configurations.get(&self.name.to_ascii_lowercase()))
        {
            Some(f) => json_response(StatusCode::OK, &f.resource),
            None => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

fn busy(name: &str) -> ArmError {
    ArmError::conflict(
        "AnotherOperationInProgress",
        format!(
            "Another operation on the Flux configuration '{name}' is in progress. Retry after it finishes."
        ),
    )
}

impl ArmState {
    /// Reports the compliance of configurations whose reconciliation is due.
    pub(crate) fn settle_flux(&mut self, now: Instant) {
        let broken = self.cfg.broken_repositories.clone();
        let wall = rfc3339(time::OffsetDateTime::now_utc());
        for sub in self.subs.values_mut() {
            for g in sub.groups.values_mut() {
                for c in g.clusters.values_mut() {
                    for f in c.flux_configurations.values_mut() {
                        if f.reconciles_at.is_none_or(|t| t > now) {
                            continue;
                        }
                        f.reconciles_at = None;
                        let name = f.resource["name"].as_str().unwrap_or_default().to_owned();
                        let p = &mut f.resource["properties"];
                        let (state, statuses, rev) = reconcile(&name, p, &broken, &wall);
                        p["complianceState"] = json!(state);
                        p["statuses"] = json!(statuses);
                        p["statusUpdatedAt"] = json!(wall);
                        if !rev.is_null() {
                            p["sourceSyncedCommitId"] = rev;
                            p["sourceUpdatedAt"] = json!(wall);
                        }
                    }
                }
            }
        }
    }

    /// The cluster a route is under, or ARM's 404 for a missing parent.
    fn flux_parent(&self, key: &ClusterKey, op: &str) -> Result<String, ArmError> {
        let (s, rg, c) = key;
        match self.cluster(s, rg, c) {
            Some(cl) => Ok(cl.resource["id"].as_str().unwrap_or_default().to_owned()),
            None => Err(ArmError::new(
                StatusCode::NOT_FOUND,
                "ParentResourceNotFound",
                format!(
                    "Failed to perform '{op}' on resource(s) of type 'fluxConfigurations', because the parent resource '/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Kubernetes/connectedClusters/{c}' could not be found."
                ),
            )),
        }
    }

    fn stored_flux(&self, key: &ClusterKey, name: &str) -> Option<&FluxConfig> {
        let (s, rg, c) = key;
        self.cluster(s, rg, c)?
            .flux_configurations
            .get(&name.to_ascii_lowercase())
    }

    fn stored_flux_mut(&mut self, key: &ClusterKey, name: &str) -> Option<&mut FluxConfig> {
        let (s, rg, c) = key;
        self.cluster_mut(s, rg, c)?
            .flux_configurations
            .get_mut(&name.to_ascii_lowercase())
    }

    fn list_flux(&self, ctx: &Ctx, key: &ClusterKey) -> Result<Response, ArmError> {
        only(ctx, &[Method::GET])?;
        self.flux_parent(key, "read")?;
        let (s, rg, c) = key;
        let items: Vec<Value> = self
            .cluster(s, rg, c)
            .map(|c| {
                c.flux_configurations
                    .values()
                    .map(|f| f.resource.clone())
                    .collect()
            })
            .unwrap_or_default();
        Ok(json_response(StatusCode::OK, &self.page(ctx, items)?))
    }

    fn flux(&mut self, ctx: &Ctx, key: &ClusterKey, name: &str) -> Result<Response, ArmError> {
        only(
            ctx,
            &[Method::GET, Method::PUT, Method::PATCH, Method::DELETE],
        )?;
        let verb = match ctx.method {
            Method::GET => "read",
            Method::DELETE => "delete",
            _ => "write",
        };
        let cluster_id = self.flux_parent(key, verb)?;
        match ctx.method {
            Method::GET => match self.stored_flux(key, name) {
                Some(f) => Ok(json_response(StatusCode::OK, &f.resource)),
                None => Err(ArmError::resource_not_found(RTYPE, name, &key.1)),
            },
            Method::PUT => self.put_flux(ctx, key, name, &cluster_id),
            Method::PATCH => self.patch_flux(ctx, key, name),
            _ => self.delete_flux(ctx, key, name),
        }
    }

    /// Starts an operation on the configuration and answers with its status URL.
    fn flux_op(
        &mut self,
        ctx: &Ctx,
        key: &ClusterKey,
        name: &str,
        deletes: bool,
        status: StatusCode,
        body: Option<&Value>,
    ) -> Response {
        let id = self
            .stored_flux(key, name)
            .map(|f| f.resource["id"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default();
        let location = self
            .cluster(&key.0, &key.1, &key.2)
            .and_then(|c| c.resource["location"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let op = self.start_op(
            &key.0,
            NAMESPACE,
            &location,
            &id,
            name,
            Arc::new(FluxOp {
                key: key.clone(),
                name: name.to_owned(),
                deletes,
            }),
        );
        if let Some(f) = self.stored_flux_mut(key, name) {
            f.busy = Some(op.clone());
            f.reconciles_at = None;
        }
        let mut resp = match body {
            Some(b) => json_response(status, b),
            None => status.into_response(),
        };
        let url = format!(
            "{}{id}/operations/{op}?api-version={}",
            ctx.base, ctx.api_version
        );
        self.lro_headers(&mut resp, &url, deletes.then_some(url.as_str()));
        resp
    }

    /// The writable properties of a full body, validated and with the service's defaults.
    fn flux_properties(&self, props: &Map<String, Value>) -> Result<Value, ArmError> {
        let source_kind = props
            .get("sourceKind")
            .and_then(Value::as_str)
            .unwrap_or("GitRepository");
        if !SOURCE_KINDS.contains(&source_kind) {
            return Err(ArmError::invalid_content(
                "properties.sourceKind",
                format!(
                    "'properties.sourceKind' must be one of {}.",
                    SOURCE_KINDS.join(", ")
                ),
            ));
        }
        if !matches!(source_kind, "GitRepository" | "Bucket" | "OCIRepository") {
            // The emulator's limit, not the service's.
            return Err(ArmError::bad_request(
                "UnsupportedSourceKind",
                format!(
                    "sandbox: sourceKind '{source_kind}' is not emulated; use GitRepository, Bucket or OCIRepository."
                ),
            ));
        }
        let scope = props
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or("cluster");
        if !matches!(scope, "cluster" | "namespace") {
            return Err(ArmError::invalid_content(
                "properties.scope",
                "'properties.scope' must be 'cluster' or 'namespace'.",
            ));
        }
        let key = match source_kind {
            "Bucket" => "bucket",
            "OCIRepository" => "ociRepository",
            _ => "gitRepository",
        };
        let given = props.get(key).cloned().unwrap_or(Value::Null);
        if given.is_null() {
            return Err(ArmError::bad_request(
                "InvalidSourceDefinition",
                format!(
                    "Error: Invalid configuration: sourceKind '{source_kind}' requires '{key}'."
                ),
            ));
        }
        let source = match key {
            "bucket" => bucket(&given)?,
            "ociRepository" => oci_repository(&given)?,
            _ => git_repository(&given)?,
        };
        let ks = match props.get("kustomizations") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                return Err(ArmError::invalid_content(
                    "properties.kustomizations",
                    "'properties.kustomizations' must be an object of kustomizations.",
                ));
            }
        };
        let mut out = json!({
            "scope": scope,
            "namespace": props.get("namespace").and_then(Value::as_str).unwrap_or("default"),
            "sourceKind": source_kind,
            "suspend": props.get("suspend").and_then(Value::as_bool).unwrap_or(false),
            "kustomizations": kustomizations(&ks)?,
        });
        out[key] = source;
        Ok(out)
    }

    /// Whether the cluster runs a `Succeeded` `microsoft.flux` extension.
    fn flux_installed(&self, key: &ClusterKey) -> bool {
        let (s, rg, c) = key;
        self.cluster(s, rg, c).is_some_and(|c| {
            c.extensions.values().any(|e| {
                let p = &e.resource["properties"];
                eq(p["extensionType"].as_str().unwrap_or(""), "microsoft.flux")
                    && p["provisioningState"] == "Succeeded"
            })
        })
    }

    fn put_flux(
        &mut self,
        ctx: &Ctx,
        key: &ClusterKey,
        name: &str,
        cluster_id: &str,
    ) -> Result<Response, ArmError> {
        let body = json_body(ctx, false)?;
        let empty = Map::new();
        let props = properties(&body, &empty)?;
        let protected = protected_settings(props)?.unwrap_or_default();
        let mut new_props = self.flux_properties(props)?;
        match self.provider_state(&key.0, NAMESPACE) {
            Some(RegistrationState::Registered | RegistrationState::Registering) => {}
            _ => {
                return Err(ArmError::conflict(
                    "MissingSubscriptionRegistration",
                    format!(
                        "The subscription is not registered to use namespace '{NAMESPACE}'. See https://aka.ms/rps-not-found for how to register subscriptions."
                    ),
                ));
            }
        }
        // The sandbox's choice of code and wording: the service refuses Flux configurations on
        // a cluster whose `microsoft.flux` extension is missing or not installed yet.
        if !self.flux_installed(key) {
            return Err(ArmError::bad_request(
                "FluxExtensionNotInstalled",
                format!(
                    "The 'microsoft.flux' extension is not installed on cluster '{}'; install it (az k8s-extension create --extension-type microsoft.flux) and wait for it to succeed before creating Flux configurations.",
                    key.2
                ),
            ));
        }
        if let Some(old) = self.stored_flux(key, name) {
            if old.busy.is_some() {
                return Err(busy(name));
            }
            let old_props = &old.resource["properties"];
            for k in ["scope", "namespace"] {
                if old_props[k] != new_props[k] {
                    return Err(ArmError::bad_request(
                        "InvalidFluxConfigurationUpdate",
                        format!(
                            "The '{k}' of Flux configuration '{name}' cannot be changed; delete the configuration and create it again."
                        ),
                    ));
                }
            }
        }
        new_props["provisioningState"] = json!("Creating");
        new_props["complianceState"] = json!("Pending");
        new_props["statuses"] = json!([]);
        new_props["repositoryPublicKey"] = json!("");
        new_props["errorMessage"] = json!("");
        let now = rfc3339(time::OffsetDateTime::now_utc());
        let caller = ctx.claims.appid.clone();
        let existed = self.stored_flux(key, name);
        let stored_name = existed
            .and_then(|f| f.resource["name"].as_str().map(str::to_owned))
            .unwrap_or_else(|| name.to_owned());
        let status = if existed.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        let resource = json!({
            "id": format!("{cluster_id}/providers/{RTYPE}/{stored_name}"),
            "name": stored_name,
            "type": RTYPE,
            "properties": new_props,
            "systemData": {
                "createdBy": caller, "createdByType": "Application", "createdAt": now,
                "lastModifiedBy": caller, "lastModifiedByType": "Application", "lastModifiedAt": now,
            },
        });
        let (s, rg, c) = key;
        if let Some(cl) = self.cluster_mut(s, rg, c) {
            cl.flux_configurations.insert(
                name.to_ascii_lowercase(),
                FluxConfig {
                    resource: resource.clone(),
                    protected,
                    busy: None,
                    reconciles_at: None,
                },
            );
        }
        Ok(self.flux_op(ctx, key, name, false, status, Some(&resource)))
    }

    fn patch_flux(
        &mut self,
        ctx: &Ctx,
        key: &ClusterKey,
        name: &str,
    ) -> Result<Response, ArmError> {
        let body = json_body(ctx, false)?;
        let empty = Map::new();
        let props = properties(&body, &empty)?;
        let protected = protected_settings(props)?;
        let Some(f) = self.stored_flux(key, name) else {
            return Err(ArmError::resource_not_found(RTYPE, name, &key.1));
        };
        if f.busy.is_some() {
            return Err(busy(name));
        }
        for k in props.keys() {
            if !matches!(
                k.as_str(),
                "sourceKind"
                    | "suspend"
                    | "gitRepository"
                    | "bucket"
                    | "azureBlob"
                    | "ociRepository"
                    | "kustomizations"
                    | "configurationProtectedSettings"
            ) {
                return Err(ArmError::invalid_content(
                    &format!("properties.{k}"),
                    format!("'properties.{k}' cannot be patched."),
                ));
            }
        }
        let old = f.resource["properties"].clone();
        let mut patch = Value::Object(props.clone());
        if let Some(p) = patch.as_object_mut() {
            p.remove("configurationProtectedSettings");
        }
        let merged = merge(&old, &patch);
        let mut full = self.flux_properties(merged.as_object().unwrap_or(&empty))?;
        for k in [
            "statuses",
            "complianceState",
            "sourceSyncedCommitId",
            "sourceUpdatedAt",
            "statusUpdatedAt",
            "repositoryPublicKey",
            "errorMessage",
        ] {
            if let Some(v) = old.get(k) {
                full[k] = v.clone();
            }
        }
        full["provisioningState"] = json!("Updating");
        full["complianceState"] = json!("Pending");
        let now = rfc3339(time::OffsetDateTime::now_utc());
        let caller = ctx.claims.appid.clone();
        if let Some(f) = self.stored_flux_mut(key, name) {
            f.resource["properties"] = full;
            f.resource["systemData"]["lastModifiedAt"] = json!(now);
            f.resource["systemData"]["lastModifiedBy"] = json!(caller);
            if let Some(p) = protected {
                f.protected = p;
            }
        }
        Ok(self.flux_op(ctx, key, name, false, StatusCode::ACCEPTED, None))
    }

    fn delete_flux(
        &mut self,
        ctx: &Ctx,
        key: &ClusterKey,
        name: &str,
    ) -> Result<Response, ArmError> {
        let Some(f) = self.stored_flux(key, name) else {
            return Ok(StatusCode::NO_CONTENT.into_response());
        };
        if let Some(op) = f.busy.clone() {
            // A repeated DELETE joins the one in progress.
            if self.ops.get(&op).is_some_and(|o| o.kind.deletes()) {
                return Ok(StatusCode::ACCEPTED.into_response());
            }
            return Err(busy(name));
        }
        if let Some(f) = self.stored_flux_mut(key, name) {
            f.resource["properties"]["provisioningState"] = json!("Deleting");
        }
        Ok(self.flux_op(ctx, key, name, true, StatusCode::ACCEPTED, None))
    }
}
