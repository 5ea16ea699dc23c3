//! `Microsoft.KubernetesConfiguration/extensions` under connected clusters in the ARM emulator
//! (spec 2025-03-01): list, get, create (PUT), update (PATCH) and delete as long-running
//! operations with `Azure-AsyncOperation` status at `{extension}/operations/{id}`.
//!
//! Protected settings are stored but never returned (the spec marks them `x-ms-secret`). Unknown
//! extension types, a pinned `version` with auto-upgrade on, a scope naming both kinds, changing
//! the type or scope in place and an unregistered `Microsoft.KubernetesConfiguration` are refused
//! as ARM refuses them; a second write while one is in progress is a conflict.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::catalog::EXTENSION_VERSIONS;
use super::cluster_children::{self, ChildType, ClusterKey};
use super::operations::OpEffect;
use super::request::{json_body, only};
use super::routing::{Kind, Parsed};
use super::state::{ArmState, Extension};
use super::{ArmError, Ctx, eq, json_response, rfc3339};

const RTYPE: &str = "Microsoft.KubernetesConfiguration/extensions";
const NAMESPACE: &str = "Microsoft.KubernetesConfiguration";

/// Extension types the emulated service offers, with the version it installs by default.
const TYPES: &[(&str, &str)] = &[
    ("microsoft.azuremonitor.containers", "3.1.26"),
    ("microsoft.azuremonitor.containers.metrics", "1.1.0"),
    ("microsoft.policyinsights", "1.10.0"),
    ("microsoft.flux", "1.14.1"),
    ("microsoft.azuredefender.kubernetes", "0.7.11"),
    ("microsoft.azurekeyvaultsecretsprovider", "1.6.0"),
    ("microsoft.openservicemesh", "1.2.10"),
    ("microsoft.dapr", "1.14.4"),
    ("microsoft.azureml.kubernetes", "1.1.64"),
    ("microsoft.arcdataservices", "1.36.0"),
    ("microsoft.web.appservice", "0.13.1"),
    ("microsoft.workloadidentity", "0.3.0"),
    ("microsoft.extensiondiagnostics", "0.1.0"),
    ("microsoft.iotoperations", "1.0.9"),
];

/// Cluster extensions.
pub(crate) const KIND: Kind = Kind {
    name: "extensions",
    parse,
};

/// The type's routes.
static TYPE: ChildType = ChildType {
    namespace: NAMESPACE,
    type_name: "extensions",
    versions: EXTENSION_VERSIONS,
    what: "extension",
    list: ArmState::list_extensions,
    one: ArmState::extension,
};

fn parse(s: &[&str], _path: &str) -> Parsed {
    cluster_children::parse(&TYPE, s)
}

/// An operation on an extension: creating and updating end `Succeeded` (or `Failed`, with
/// `errorInfo`); deleting removes it.
#[derive(Debug)]
struct ExtOp {
    key: ClusterKey,
    name: String,
    deletes: bool,
}

impl OpEffect for ExtOp {
    fn deletes(&self) -> bool {
        self.deletes
    }

    /// On a Connected cluster the extension manager installs the extension: the operation ends
    /// once its workloads are available. A cluster whose agents do not run (never connected,
    /// or Offline) ends it on time, as the service does not wait for what cannot answer.
    fn hold(&self, st: &ArmState, _sub: &str) -> bool {
        let (s, rg, c) = &self.key;
        let Some(cluster) = st.cluster(s, rg, c) else {
            return false;
        };
        !self.deletes
            && cluster.resource["properties"]["connectivityStatus"] == "Connected"
            && cluster
                .extensions
                .get(&self.name.to_ascii_lowercase())
                .is_some_and(|e| !e.installed)
    }

    fn finish(&self, st: &mut ArmState, _sub: &str, ok: bool) {
        let (s, rg, c) = &self.key;
        let Some(cluster) = st.cluster_mut(s, rg, c) else {
            return;
        };
        let key = self.name.to_ascii_lowercase();
        if self.deletes && ok {
            cluster.extensions.remove(&key);
            return;
        }
        if let Some(e) = cluster.extensions.get_mut(&key) {
            e.busy = None;
            let p = &mut e.resource["properties"];
            if ok {
                p["provisioningState"] = json!("Succeeded");
                p["extensionState"] = json!("Enabled");
                let version = p
                    .get("version")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| default_version(p["extensionType"].as_str().unwrap_or("")));
                p["currentVersion"] = json!(version);
                p["statuses"] = json!([{
                    "code": "InstallationSucceeded",
                    "displayStatus": "Installed",
                    "level": "Information",
                    "message": format!("Extension {} is installed.", self.name),
                    "time": rfc3339(time::OffsetDateTime::now_utc()),
                }]);
            } else {
                p["provisioningState"] = json!("Failed");
                p["errorInfo"] = json!({
                    "code": "ExtensionOperationFailed",
                    "message": format!("The extension operation failed (sandbox: failure injected for '{}').", self.name),
                });
            }
        }
    }

    fn result(&self, st: &ArmState, _sub: &str) -> Response {
        let (s, rg, c) = &self.key;
        match st
            .cluster(s, rg, c)
            .and_then(|c| c.extensions.get(&self.name.to_ascii_lowercase()))
        {
            Some(e) => json_response(StatusCode::OK, &e.resource),
            None => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

fn default_version(extension_type: &str) -> Option<String> {
    TYPES
        .iter()
        .find(|(t, _)| eq(t, extension_type))
        .map(|(_, v)| (*v).to_owned())
}

fn busy(name: &str) -> ArmError {
    ArmError::conflict(
        "AnotherOperationInProgress",
        format!(
            "Another operation on the extension '{name}' is in progress. Retry after it finishes."
        ),
    )
}

/// The properties object of a body (`{}` when absent), or ARM's error.
pub(super) fn properties<'a>(
    body: &'a Map<String, Value>,
    empty: &'a Map<String, Value>,
) -> Result<&'a Map<String, Value>, ArmError> {
    match body.get("properties") {
        None | Some(Value::Null) => Ok(empty),
        Some(Value::Object(p)) => Ok(p),
        Some(_) => Err(ArmError::invalid_content(
            "properties",
            "'properties' must be an object.",
        )),
    }
}

/// A string-to-string map property, or ARM's error.
pub(super) fn string_map(
    props: &Map<String, Value>,
    key: &str,
) -> Result<Option<Map<String, Value>>, ArmError> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) if m.values().all(Value::is_string) => Ok(Some(m.clone())),
        Some(_) => Err(ArmError::invalid_content(
            &format!("properties.{key}"),
            format!("'properties.{key}' must be an object of string values."),
        )),
    }
}

fn check_version_rule(props: &Value) -> Result<(), ArmError> {
    let auto = props["autoUpgradeMinorVersion"].as_bool().unwrap_or(true);
    if auto && props["version"].is_string() {
        return Err(ArmError::bad_request(
            "InvalidExtensionVersion",
            "To use 'version', autoUpgradeMinorVersion must be 'false'.",
        ));
    }
    Ok(())
}

impl ArmState {
    /// The cluster a route is under, or ARM's 404 for a missing parent.
    fn parent(&self, key: &ClusterKey, op: &str) -> Result<String, ArmError> {
        let (s, rg, c) = key;
        match self.cluster(s, rg, c) {
            Some(cl) => Ok(cl.resource["id"].as_str().unwrap_or_default().to_owned()),
            None => Err(ArmError::new(
                StatusCode::NOT_FOUND,
                "ParentResourceNotFound",
                format!(
                    "Failed to perform '{op}' on resource(s) of type 'extensions', because the parent resource '/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Kubernetes/connectedClusters/{c}' could not be found."
                ),
            )),
        }
    }

    fn stored(&self, key: &ClusterKey, name: &str) -> Option<&Extension> {
        let (s, rg, c) = key;
        self.cluster(s, rg, c)?
            .extensions
            .get(&name.to_ascii_lowercase())
    }

    fn stored_mut(&mut self, key: &ClusterKey, name: &str) -> Option<&mut Extension> {
        let (s, rg, c) = key;
        self.cluster_mut(s, rg, c)?
            .extensions
            .get_mut(&name.to_ascii_lowercase())
    }

    fn list_extensions(&self, ctx: &Ctx, key: &ClusterKey) -> Result<Response, ArmError> {
        only(ctx, &[Method::GET])?;
        self.parent(key, "read")?;
        let (s, rg, c) = key;
        let items: Vec<Value> = self
            .cluster(s, rg, c)
            .map(|c| c.extensions.values().map(|e| e.resource.clone()).collect())
            .unwrap_or_default();
        Ok(json_response(StatusCode::OK, &self.page(ctx, items)?))
    }

    fn extension(&mut self, ctx: &Ctx, key: &ClusterKey, name: &str) -> Result<Response, ArmError> {
        only(
            ctx,
            &[Method::GET, Method::PUT, Method::PATCH, Method::DELETE],
        )?;
        let verb = match ctx.method {
            Method::GET => "read",
            Method::DELETE => "delete",
            _ => "write",
        };
        let cluster_id = self.parent(key, verb)?;
        match ctx.method {
            Method::GET => match self.stored(key, name) {
                Some(e) => Ok(json_response(StatusCode::OK, &e.resource)),
                None => Err(ArmError::resource_not_found(RTYPE, name, &key.1)),
            },
            Method::PUT => self.put_extension(ctx, key, name, &cluster_id),
            Method::PATCH => self.patch_extension(ctx, key, name),
            _ => self.delete_extension(ctx, key, name),
        }
    }

    /// Starts an operation on the extension and answers with its status URL.
    fn extension_op(
        &mut self,
        ctx: &Ctx,
        key: &ClusterKey,
        name: &str,
        deletes: bool,
        status: StatusCode,
        body: Option<&Value>,
    ) -> Response {
        let id = self
            .stored(key, name)
            .map(|e| e.resource["id"].as_str().unwrap_or_default().to_owned())
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
            Arc::new(ExtOp {
                key: key.clone(),
                name: name.to_owned(),
                deletes,
            }),
        );
        if let Some(e) = self.stored_mut(key, name) {
            e.busy = Some(op.clone());
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

    fn put_extension(
        &mut self,
        ctx: &Ctx,
        key: &ClusterKey,
        name: &str,
        cluster_id: &str,
    ) -> Result<Response, ArmError> {
        let body = json_body(ctx, false)?;
        let empty = Map::new();
        let props = properties(&body, &empty)?;
        let Some(extension_type) = props.get("extensionType").and_then(Value::as_str) else {
            return Err(ArmError::invalid_content(
                "properties.extensionType",
                "The 'properties.extensionType' property is required.",
            ));
        };
        if default_version(extension_type).is_none() {
            return Err(ArmError::bad_request(
                "ExtensionTypeRegistrationGetFailed",
                format!(
                    "Extension type '{extension_type}' is not registered or not available in this region (sandbox: known types are {}).",
                    TYPES.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let scope = props.get("scope").cloned().unwrap_or(Value::Null);
        let cluster_scope = scope.get("cluster").filter(|v| !v.is_null());
        let namespace_scope = scope.get("namespace").filter(|v| !v.is_null());
        if cluster_scope.is_some() && namespace_scope.is_some() {
            return Err(ArmError::invalid_content(
                "properties.scope",
                "The scope of an extension can be either Cluster or Namespace; but not both.",
            ));
        }
        let settings = string_map(props, "configurationSettings")?.unwrap_or_default();
        let protected = string_map(props, "configurationProtectedSettings")?.unwrap_or_default();
        let auto = match props.get("autoUpgradeMinorVersion") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ArmError::invalid_content(
                    "properties.autoUpgradeMinorVersion",
                    "'properties.autoUpgradeMinorVersion' must be a boolean.",
                ));
            }
        };
        let scope = match (cluster_scope, namespace_scope) {
            (_, Some(n)) => json!({"namespace": {
                "targetNamespace": n.get("targetNamespace").and_then(Value::as_str).unwrap_or(name)
            }}),
            (c, None) => json!({"cluster": {
                "releaseNamespace": c.and_then(|c| c.get("releaseNamespace")).and_then(Value::as_str).unwrap_or(name)
            }}),
        };
        let mut new_props = json!({
            "extensionType": extension_type,
            "autoUpgradeMinorVersion": auto,
            "releaseTrain": props.get("releaseTrain").and_then(Value::as_str).unwrap_or("Stable"),
            "scope": scope,
            "configurationSettings": settings,
            "provisioningState": "Creating",
            "isSystemExtension": false,
            "statuses": [],
        });
        if let Some(v) = props.get("version").filter(|v| !v.is_null()) {
            new_props["version"] = v.clone();
        }
        check_version_rule(&new_props)?;
        if let Some(old) = self.stored(key, name) {
            if old.busy.is_some() {
                return Err(busy(name));
            }
            let old_props = &old.resource["properties"];
            if !eq(
                old_props["extensionType"].as_str().unwrap_or(""),
                extension_type,
            ) || old_props["scope"] != new_props["scope"]
            {
                return Err(ArmError::bad_request(
                    "ExtensionUpdateNotAllowed",
                    format!(
                        "The extension type and scope of extension '{name}' cannot be changed; delete the extension and create it again."
                    ),
                ));
            }
            for k in ["currentVersion", "extensionState"] {
                if let Some(v) = old_props.get(k) {
                    new_props[k] = v.clone();
                }
            }
        }
        self.require_registered(&key.0, NAMESPACE)?;
        let now = rfc3339(time::OffsetDateTime::now_utc());
        let caller = ctx.claims.appid.clone();
        let principal = self.new_uuid();
        let existed = self.stored(key, name).is_some();
        let stored_name = self
            .stored(key, name)
            .and_then(|e| e.resource["name"].as_str().map(str::to_owned))
            .unwrap_or_else(|| name.to_owned());
        let resource = json!({
            "id": format!("{cluster_id}/providers/{RTYPE}/{stored_name}"),
            "name": stored_name,
            "type": RTYPE,
            "identity": {"type": "SystemAssigned", "principalId": principal, "tenantId": self.cfg.tenant_id},
            "properties": new_props,
            "systemData": {
                "createdBy": caller, "createdByType": "Application", "createdAt": now,
                "lastModifiedBy": caller, "lastModifiedByType": "Application", "lastModifiedAt": now,
            },
        });
        let (s, rg, c) = key;
        if let Some(cl) = self.cluster_mut(s, rg, c) {
            cl.extensions.insert(
                name.to_ascii_lowercase(),
                Extension {
                    resource: resource.clone(),
                    protected,
                    busy: None,
                    installed: false,
                },
            );
        }
        let status = if existed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok(self.extension_op(ctx, key, name, false, status, Some(&resource)))
    }

    fn patch_extension(
        &mut self,
        ctx: &Ctx,
        key: &ClusterKey,
        name: &str,
    ) -> Result<Response, ArmError> {
        let body = json_body(ctx, false)?;
        let empty = Map::new();
        let props = properties(&body, &empty)?;
        let settings = string_map(props, "configurationSettings")?;
        let protected = string_map(props, "configurationProtectedSettings")?;
        let Some(e) = self.stored(key, name) else {
            return Err(ArmError::resource_not_found(RTYPE, name, &key.1));
        };
        if e.busy.is_some() {
            return Err(busy(name));
        }
        let mut merged = e.resource["properties"].clone();
        for k in ["autoUpgradeMinorVersion", "releaseTrain", "version"] {
            if let Some(v) = props.get(k) {
                merged[k] = v.clone();
            }
        }
        let auto = merged["autoUpgradeMinorVersion"].as_bool() == Some(true);
        if let Some(m) = merged.as_object_mut()
            && (m.get("version").is_some_and(Value::is_null)
                || (auto && !props.contains_key("version")))
        {
            m.remove("version");
        }
        if let Some(m) = settings {
            merged["configurationSettings"] = Value::Object(m);
        }
        check_version_rule(&merged)?;
        merged["provisioningState"] = json!("Updating");
        let now = rfc3339(time::OffsetDateTime::now_utc());
        let caller = ctx.claims.appid.clone();
        if let Some(e) = self.stored_mut(key, name) {
            e.resource["properties"] = merged;
            e.resource["systemData"]["lastModifiedAt"] = json!(now);
            e.resource["systemData"]["lastModifiedBy"] = json!(caller);
            if let Some(p) = protected {
                e.protected = p;
            }
            e.installed = false;
        }
        Ok(self.extension_op(ctx, key, name, false, StatusCode::ACCEPTED, None))
    }

    fn delete_extension(
        &mut self,
        ctx: &Ctx,
        key: &ClusterKey,
        name: &str,
    ) -> Result<Response, ArmError> {
        let Some(e) = self.stored(key, name) else {
            return Ok(StatusCode::NO_CONTENT.into_response());
        };
        if let Some(op) = e.busy.clone() {
            // A repeated DELETE joins the one in progress.
            if self.ops.get(&op).is_some_and(|o| o.kind.deletes()) {
                return Ok(StatusCode::ACCEPTED.into_response());
            }
            return Err(busy(name));
        }
        if let Some(e) = self.stored_mut(key, name) {
            e.resource["properties"]["provisioningState"] = json!("Deleting");
        }
        Ok(self.extension_op(ctx, key, name, true, StatusCode::ACCEPTED, None))
    }
}

/// What the extension manager of a cluster installs for one extension.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionRelease {
    /// The extension's name (the release's).
    pub name: String,
    /// Its type.
    pub extension_type: String,
    /// The namespace it is installed in.
    pub namespace: String,
    /// The version to install.
    pub version: String,
    /// The manager already installed this version.
    pub installed: bool,
}

impl super::ArmApi {
    /// The extensions the manager of connected cluster `cluster` must have installed (not the
    /// ones being deleted).
    pub fn extension_releases(
        &self,
        subscription: &str,
        rg: &str,
        cluster: &str,
    ) -> Vec<ExtensionRelease> {
        let st = self.lock();
        let Some(c) = st.cluster(subscription, rg, cluster) else {
            return Vec::new();
        };
        c.extensions
            .values()
            .filter(|e| e.resource["properties"]["provisioningState"] != "Deleting")
            .map(|e| {
                let p = &e.resource["properties"];
                let text = |ptr: &str| p.pointer(ptr).and_then(Value::as_str).map(str::to_owned);
                let extension_type = text("/extensionType").unwrap_or_default();
                ExtensionRelease {
                    name: e.resource["name"].as_str().unwrap_or_default().to_owned(),
                    namespace: text("/scope/cluster/releaseNamespace")
                        .or_else(|| text("/scope/namespace/targetNamespace"))
                        .unwrap_or_else(|| "default".into()),
                    version: text("/version")
                        .or_else(|| default_version(&extension_type))
                        .unwrap_or_else(|| "1.0.0".into()),
                    extension_type,
                    installed: e.installed,
                }
            })
            .collect()
    }

    /// Records that the manager installed an extension (its operation can end).
    pub fn set_extension_installed(&self, subscription: &str, rg: &str, cluster: &str, name: &str) {
        let mut st = self.lock();
        if let Some(e) = st
            .cluster_mut(subscription, rg, cluster)
            .and_then(|c| c.extensions.get_mut(&name.to_ascii_lowercase()))
        {
            e.installed = true;
        }
    }
}
