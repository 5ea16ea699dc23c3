//! `Microsoft.Kubernetes/connectedClusters` in the ARM emulator (spec 2026-05-01): its routes, its
//! long-running operations (create, delete) and its handlers; the body checks are in `validate.rs`.

mod validate;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::catalog::{ARC_LOCATIONS, normalize_location};
use super::operations::OpEffect;
use super::request::{json_body, only, parse_tags};
use super::routing::{ApiVersions, ArmRoute, Kind, Parsed, by_method, rg_scope, route, sub_scope};
use super::state::{ArmState, Cluster};
use super::{ArmError, Ctx, eq, json_response, rfc3339};
use validate::{check_enum, check_string, validate_name, validate_public_key};

const RTYPE: &str = "Microsoft.Kubernetes/connectedClusters";
const NAMESPACE: &str = "Microsoft.Kubernetes";

/// Connected clusters.
pub(crate) const KIND: Kind = Kind {
    name: "clusters",
    parse,
};

#[derive(Debug, Clone)]
enum ClusterRoute {
    ListSub(String),
    ListRg(String, String),
    Cluster(String, String, String),
    Credential(String, String, String),
}

fn parse(s: &[&str], _path: &str) -> Parsed {
    let o = |x: &str| x.to_string();
    let ours = |ns: &str, t: &str| eq(ns, NAMESPACE) && eq(t, "connectedClusters");
    route(match s {
        [a, id, b, ns, t] if eq(a, "subscriptions") && eq(b, "providers") && ours(ns, t) => {
            ClusterRoute::ListSub(o(id))
        }
        [a, id, b, rg, p, ns, t, rest @ ..]
            if eq(a, "subscriptions")
                && eq(b, "resourceGroups")
                && eq(p, "providers")
                && ours(ns, t) =>
        {
            match rest {
                [] => ClusterRoute::ListRg(o(id), o(rg)),
                [name] => ClusterRoute::Cluster(o(id), o(rg), o(name)),
                [name, act] if eq(act, "listClusterUserCredential") => {
                    ClusterRoute::Credential(o(id), o(rg), o(name))
                }
                _ => return None,
            }
        }
        _ => return None,
    })
}

impl ArmRoute for ClusterRoute {
    fn versions(&self) -> ApiVersions {
        ApiVersions::KUBERNETES
    }

    fn subscription(&self) -> Option<&str> {
        match self {
            ClusterRoute::ListSub(s)
            | ClusterRoute::ListRg(s, _)
            | ClusterRoute::Cluster(s, _, _)
            | ClusterRoute::Credential(s, _, _) => Some(s),
        }
    }

    fn action(&self, method: &Method, path: &str) -> Option<(String, String)> {
        Some(match self {
            ClusterRoute::ListSub(s) => (format!("{RTYPE}/read"), sub_scope(s)),
            ClusterRoute::ListRg(s, rg) => (format!("{RTYPE}/read"), rg_scope(s, rg)),
            ClusterRoute::Cluster(..) => (
                by_method(
                    method,
                    &format!("{RTYPE}/read"),
                    &format!("{RTYPE}/write"),
                    &format!("{RTYPE}/delete"),
                ),
                path.to_string(),
            ),
            ClusterRoute::Credential(..) => (
                format!("{RTYPE}/listClusterUserCredential/action"),
                path.trim_end_matches("/listClusterUserCredential")
                    .to_string(),
            ),
        })
    }

    fn location_hint(&self, st: &ArmState) -> String {
        if let ClusterRoute::Cluster(s, rg, name) = self
            && let Some(c) = st.cluster(s, rg, name)
        {
            return c.resource["location"].as_str().unwrap_or("").to_string();
        }
        String::new()
    }

    fn handle(&self, st: &mut ArmState, ctx: &Ctx) -> Result<Response, ArmError> {
        match self {
            ClusterRoute::ListSub(s) => st.list_clusters(ctx, s, None),
            ClusterRoute::ListRg(s, rg) => st.list_clusters(ctx, s, Some(rg)),
            ClusterRoute::Cluster(s, rg, name) => st.connected_cluster(ctx, s, rg, name),
            ClusterRoute::Credential(s, rg, name) => st.cluster_credential(ctx, s, rg, name),
        }
    }
}

/// Creating a connected cluster: `Provisioning` halfway, then `Succeeded` (or `Failed`).
#[derive(Debug)]
struct CreateCluster {
    rg: String,
    name: String,
}

impl OpEffect for CreateCluster {
    fn halfway(&self, st: &mut ArmState, sub: &str) {
        if let Some(c) = st.cluster_mut(sub, &self.rg, &self.name) {
            c.resource["properties"]["provisioningState"] = json!("Provisioning");
        }
    }

    fn finish(&self, st: &mut ArmState, sub: &str, ok: bool) {
        if let Some(c) = st.cluster_mut(sub, &self.rg, &self.name) {
            c.resource["properties"]["provisioningState"] =
                json!(if ok { "Succeeded" } else { "Failed" });
            c.busy = None;
        }
    }

    fn result(&self, st: &ArmState, sub: &str) -> Response {
        match st.cluster(sub, &self.rg, &self.name) {
            Some(c) => json_response(StatusCode::OK, &c.resource),
            None => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

/// Deleting a connected cluster: gone when done, `Failed` if the operation fails.
#[derive(Debug)]
struct DeleteCluster {
    rg: String,
    name: String,
}

impl OpEffect for DeleteCluster {
    fn deletes(&self) -> bool {
        true
    }

    fn finish(&self, st: &mut ArmState, sub: &str, ok: bool) {
        if ok {
            st.remove_cluster_direct(sub, &self.rg, &self.name);
        } else if let Some(c) = st.cluster_mut(sub, &self.rg, &self.name) {
            c.resource["properties"]["provisioningState"] = json!("Failed");
            c.busy = None;
        }
    }
}

/// Writable `properties` of a connected cluster (everything else in a request body is ignored).
const WRITABLE: &[&str] = &[
    "agentPublicKeyCertificate",
    "distribution",
    "distributionVersion",
    "infrastructure",
    "privateLinkState",
    "privateLinkScopeResourceId",
    "azureHybridBenefit",
    "aadProfile",
    "arcAgentProfile",
    "securityProfile",
    "oidcIssuerProfile",
    "gateway",
    "arcAgentryConfigurations",
];

/// Read-only `properties` kept across a replacing PUT.
const READ_ONLY: &[&str] = &[
    "kubernetesVersion",
    "totalNodeCount",
    "totalCoreCount",
    "agentVersion",
    "offering",
    "managedIdentityCertificateExpirationTime",
    "lastConnectivityTime",
    "connectivityStatus",
    "miscellaneousProperties",
];

fn busy(name: &str) -> ArmError {
    ArmError::conflict(
        "AnotherOperationInProgress",
        format!(
            "Another operation on the connected cluster '{name}' is in progress. Retry after it finishes."
        ),
    )
}

impl ArmState {
    fn ensure_group(&self, s: &str, rg: &str) -> Result<(), ArmError> {
        match self.group(s, rg) {
            None => Err(ArmError::rg_not_found(rg)),
            Some(_) => Ok(()),
        }
    }

    pub(crate) fn list_clusters(
        &self,
        ctx: &Ctx,
        s: &str,
        rg: Option<&str>,
    ) -> Result<Response, ArmError> {
        only(ctx, &[Method::GET])?;
        if let Some(rg) = rg {
            self.ensure_group(s, rg)?;
        }
        let sub = &self.subs[&s.to_ascii_lowercase()];
        let items: Vec<Value> = sub
            .groups
            .values()
            .filter(|g| rg.is_none_or(|r| eq(r, &g.name)))
            .flat_map(|g| g.clusters.values().map(|c| c.resource.clone()))
            .collect();
        Ok(json_response(StatusCode::OK, &self.page(ctx, items)?))
    }

    pub(crate) fn cluster_credential(
        &self,
        ctx: &Ctx,
        _s: &str,
        _rg: &str,
        _name: &str,
    ) -> Result<Response, ArmError> {
        only(ctx, &[Method::POST])?;
        Err(ArmError::bad_request(
            "NotSupportedInSandbox",
            "listClusterUserCredential (cluster connect) is not emulated by the arcplan sandbox.",
        ))
    }

    pub(crate) fn connected_cluster(
        &mut self,
        ctx: &Ctx,
        s: &str,
        rg: &str,
        name: &str,
    ) -> Result<Response, ArmError> {
        only(
            ctx,
            &[Method::GET, Method::PUT, Method::PATCH, Method::DELETE],
        )?;
        self.ensure_group(s, rg)?;
        let rg_name = self
            .group(s, rg)
            .map(|g| g.name.clone())
            .unwrap_or_default();
        if ctx.method == Method::GET {
            return match self.cluster(s, rg, name) {
                Some(c) => Ok(json_response(StatusCode::OK, &c.resource)),
                None => Err(ArmError::resource_not_found(RTYPE, name, &rg_name)),
            };
        }
        if ctx.method == Method::PUT {
            return self.put_cluster(ctx, s, rg, name);
        }
        if ctx.method == Method::PATCH {
            return self.patch_cluster(ctx, s, rg, name);
        }
        self.delete_cluster(ctx, s, rg, name)
    }

    fn put_cluster(
        &mut self,
        ctx: &Ctx,
        s: &str,
        rg: &str,
        name: &str,
    ) -> Result<Response, ArmError> {
        validate_name(name)?;
        let body = json_body(ctx, false)?;
        let Some(location) = body
            .get("location")
            .and_then(Value::as_str)
            .filter(|l| !l.trim().is_empty())
        else {
            return Err(ArmError::bad_request(
                "LocationRequired",
                "The location property is required for this definition.",
            ));
        };
        let loc = normalize_location(location);
        if !ARC_LOCATIONS.iter().any(|l| normalize_location(l) == loc) {
            return Err(ArmError::bad_request(
                "LocationNotAvailableForResourceType",
                format!(
                    "The provided location '{location}' is not available for resource type '{RTYPE}'. List of available regions for the resource type is '{}'.",
                    ARC_LOCATIONS
                        .iter()
                        .map(|l| normalize_location(l))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ));
        }
        let Some(identity) = body.get("identity").and_then(Value::as_object) else {
            return Err(ArmError::invalid_content(
                "identity",
                "The 'identity' property is required: {\"type\": \"SystemAssigned\"} or {\"type\": \"None\"}.",
            ));
        };
        let identity_type = match identity.get("type").and_then(Value::as_str) {
            Some(t) if eq(t, "SystemAssigned") => "SystemAssigned",
            Some(t) if eq(t, "None") => "None",
            other => {
                return Err(ArmError::invalid_content(
                    "identity.type",
                    format!(
                        "The identity type {} is invalid. Allowed values are: None, SystemAssigned.",
                        other.map_or_else(|| "(missing)".to_string(), |t| format!("'{t}'"))
                    ),
                ));
            }
        };
        let Some(props) = body.get("properties").and_then(Value::as_object) else {
            return Err(ArmError::invalid_content(
                "properties",
                "The 'properties' property is required.",
            ));
        };
        let Some(key) = props
            .get("agentPublicKeyCertificate")
            .and_then(Value::as_str)
            .filter(|k| !k.trim().is_empty())
        else {
            return Err(ArmError::invalid_content(
                "properties.agentPublicKeyCertificate",
                "The 'properties.agentPublicKeyCertificate' property is required.",
            ));
        };
        validate_public_key(key)?;
        for k in [
            "distribution",
            "distributionVersion",
            "infrastructure",
            "privateLinkScopeResourceId",
        ] {
            check_string(props, k)?;
        }
        check_enum(props, "privateLinkState", &["Enabled", "Disabled"])?;
        check_enum(
            props,
            "azureHybridBenefit",
            &["True", "False", "NotApplicable"],
        )?;
        for k in [
            "aadProfile",
            "arcAgentProfile",
            "securityProfile",
            "oidcIssuerProfile",
            "gateway",
        ] {
            if let Some(v) = props.get(k)
                && !(v.is_object() || v.is_null())
            {
                return Err(ArmError::invalid_content(
                    &format!("properties.{k}"),
                    format!("'properties.{k}' must be an object."),
                ));
            }
        }
        if let Some(v) = props.get("arcAgentryConfigurations")
            && !(v.is_array() || v.is_null())
        {
            return Err(ArmError::invalid_content(
                "properties.arcAgentryConfigurations",
                "'properties.arcAgentryConfigurations' must be an array.",
            ));
        }
        let tags = parse_tags(body.get("tags"))?.unwrap_or_default();
        if let Some(k) = body.get("kind")
            && !(k.is_string() || k.is_null())
        {
            return Err(ArmError::invalid_content(
                "kind",
                "'kind' must be a string.",
            ));
        }
        let existing_state = self.cluster(s, rg, name).and_then(|c| {
            c.resource["properties"]["provisioningState"]
                .as_str()
                .map(str::to_string)
        });
        if let Some(ps) = props.get("provisioningState").and_then(Value::as_str)
            && !existing_state.as_deref().is_some_and(|e| eq(e, ps))
        {
            return Err(ArmError::invalid_content(
                "properties.provisioningState",
                format!(
                    "The provisioningState '{ps}' in the request does not match the resource's current state; it is read-only."
                ),
            ));
        }
        self.require_registered(s, NAMESPACE)?;
        let (group_name, deleting) = {
            let g = self
                .group(s, rg)
                .ok_or_else(|| ArmError::rg_not_found(rg))?;
            (g.name.clone(), g.deleting.is_some())
        };
        if deleting {
            return Err(ArmError::conflict(
                "ResourceGroupBeingDeleted",
                format!(
                    "The resource group '{group_name}' is in deprovisioning state and cannot perform this operation."
                ),
            ));
        }
        let sub_id = self.subs[&s.to_ascii_lowercase()].id.clone();
        let now = time::OffsetDateTime::now_utc();
        let tenant = self.cfg.tenant_id.clone();
        let caller = ctx.claims.appid.clone();

        let existing = self
            .cluster(s, rg, name)
            .map(|c| (c.resource.clone(), c.busy.is_some()));
        if let Some((old, is_busy)) = &existing {
            if *is_busy {
                return Err(busy(name));
            }
            let old_loc = old["location"].as_str().unwrap_or("");
            if old_loc != loc {
                return Err(ArmError::conflict(
                    "InvalidResourceLocation",
                    format!(
                        "The resource '{}' already exists in location '{old_loc}' in resource group '{group_name}'. A resource with the same name cannot be created in location '{loc}'. Please select a new resource name.",
                        old["name"].as_str().unwrap_or(name)
                    ),
                ));
            }
        }
        let stored_name = existing
            .as_ref()
            .and_then(|(o, _)| o["name"].as_str().map(str::to_string))
            .unwrap_or_else(|| name.to_string());
        let id = format!(
            "/subscriptions/{sub_id}/resourceGroups/{group_name}/providers/{RTYPE}/{stored_name}"
        );

        let mut new_props = Map::new();
        for k in WRITABLE {
            if let Some(v) = props.get(*k).filter(|v| !v.is_null()) {
                new_props.insert((*k).to_string(), v.clone());
            }
        }
        // Write-only secrets are never stored nor echoed.
        if let Some(Value::Array(cfgs)) = new_props.get_mut("arcAgentryConfigurations") {
            for c in cfgs.iter_mut() {
                if let Some(o) = c.as_object_mut() {
                    o.remove("protectedSettings");
                }
            }
        }
        new_props
            .entry("privateLinkState")
            .or_insert_with(|| json!("Disabled"));
        new_props
            .entry("azureHybridBenefit")
            .or_insert_with(|| json!("NotApplicable"));
        let profile = new_props
            .entry("arcAgentProfile")
            .or_insert_with(|| json!({}));
        if let Some(p) = profile.as_object_mut() {
            p.entry("agentAutoUpgrade")
                .or_insert_with(|| json!("Enabled"));
        }

        // The OIDC issuer's URL is the service's (read-only), kept across PUTs.
        if let Some(o) = new_props
            .get_mut("oidcIssuerProfile")
            .and_then(Value::as_object_mut)
        {
            o.remove("issuerUrl");
            if o.get("enabled").and_then(Value::as_bool) == Some(true) {
                let kept = existing.as_ref().and_then(|(old, _)| {
                    old.pointer("/properties/oidcIssuerProfile/issuerUrl")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                });
                let url = kept.unwrap_or_else(|| {
                    format!(
                        "https://{loc}.oic.prod-arc.azure.com/{tenant}/{}/",
                        self.new_uuid()
                    )
                });
                o.insert("issuerUrl".into(), json!(url));
            }
        }
        let principal = match (&existing, identity_type) {
            (_, "None") => None,
            (Some((old, _)), _) if old["identity"]["principalId"].is_string() => {
                old["identity"]["principalId"].as_str().map(str::to_string)
            }
            _ => Some(self.new_uuid()),
        };
        let identity = match &principal {
            Some(p) => json!({"type": "SystemAssigned", "principalId": p, "tenantId": tenant}),
            None => json!({"type": "None"}),
        };

        let created_status;
        let mut resource = json!({
            "id": id,
            "name": stored_name,
            "type": RTYPE,
            "location": loc,
            "tags": tags,
            "identity": identity,
        });
        if let Some(k) = body.get("kind").and_then(Value::as_str) {
            resource["kind"] = json!(k);
        }
        let mut system = json!({
            "createdBy": caller,
            "createdByType": "Application",
            "createdAt": rfc3339(now),
            "lastModifiedBy": caller,
            "lastModifiedByType": "Application",
            "lastModifiedAt": rfc3339(now),
        });
        if let Some((old, _)) = &existing {
            let old_props = old["properties"].as_object().cloned().unwrap_or_default();
            for k in READ_ONLY {
                if let Some(v) = old_props.get(*k) {
                    new_props.insert((*k).to_string(), v.clone());
                }
            }
            let key_changed = old_props.get("agentPublicKeyCertificate")
                != new_props.get("agentPublicKeyCertificate");
            if key_changed {
                new_props.insert("connectivityStatus".into(), json!("Connecting"));
            }
            new_props.insert("provisioningState".into(), json!("Succeeded"));
            if let Some(c) = old["systemData"]["createdAt"].as_str() {
                system["createdAt"] = json!(c);
                system["createdBy"] = old["systemData"]["createdBy"].clone();
                system["createdByType"] = old["systemData"]["createdByType"].clone();
            }
            resource["properties"] = Value::Object(new_props);
            resource["systemData"] = system;
            if let Some(c) = self.cluster_mut(s, rg, name) {
                c.resource = resource.clone();
                c.changed = now;
            }
            created_status = StatusCode::OK;
        } else {
            new_props.insert("provisioningState".into(), json!("Accepted"));
            new_props.insert("connectivityStatus".into(), json!("Connecting"));
            resource["properties"] = Value::Object(new_props);
            resource["systemData"] = system;
            let op = self.start_op(
                &sub_id,
                NAMESPACE,
                &loc,
                &id,
                &stored_name,
                Arc::new(CreateCluster {
                    rg: group_name.clone(),
                    name: stored_name.clone(),
                }),
            );
            if let Some(g) = self.group_mut(s, rg) {
                g.clusters.insert(
                    name.to_ascii_lowercase(),
                    Cluster {
                        resource: resource.clone(),
                        busy: Some(op.clone()),
                        created: now,
                        changed: now,
                        extensions: Default::default(),
                        flux_configurations: Default::default(),
                        custom_locations_oid: None,
                    },
                );
            }
            let mut resp = json_response(StatusCode::CREATED, &resource);
            let url = format!(
                "{}/subscriptions/{sub_id}/providers/{NAMESPACE}/locations/{loc}/operationStatuses/{op}?api-version={}",
                ctx.base, ctx.api_version
            );
            self.lro_headers(&mut resp, &url, None);
            return Ok(resp);
        }
        Ok(json_response(created_status, &resource))
    }

    fn patch_cluster(
        &mut self,
        ctx: &Ctx,
        s: &str,
        rg: &str,
        name: &str,
    ) -> Result<Response, ArmError> {
        let body = json_body(ctx, false)?;
        let tags = parse_tags(body.get("tags"))?;
        let empty = Map::new();
        let props = match body.get("properties") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(p)) => p,
            Some(_) => {
                return Err(ArmError::invalid_content(
                    "properties",
                    "'properties' must be an object.",
                ));
            }
        };
        check_string(props, "distribution")?;
        check_string(props, "distributionVersion")?;
        check_enum(
            props,
            "azureHybridBenefit",
            &["True", "False", "NotApplicable"],
        )?;
        if let Some(g) = props.get("gateway")
            && !(g.is_object() || g.is_null())
        {
            return Err(ArmError::invalid_content(
                "properties.gateway",
                "'properties.gateway' must be an object.",
            ));
        }
        self.require_registered(s, NAMESPACE)?;
        let rg_name = self
            .group(s, rg)
            .map(|g| g.name.clone())
            .unwrap_or_default();
        let caller = ctx.claims.appid.clone();
        let Some(c) = self.cluster_mut(s, rg, name) else {
            return Err(ArmError::resource_not_found(RTYPE, name, &rg_name));
        };
        if c.busy.is_some() {
            return Err(busy(name));
        }
        let now = time::OffsetDateTime::now_utc();
        if let Some(t) = tags {
            c.resource["tags"] = Value::Object(t);
        }
        for k in [
            "distribution",
            "distributionVersion",
            "azureHybridBenefit",
            "gateway",
        ] {
            if let Some(v) = props.get(k) {
                if v.is_null() {
                    if let Some(p) = c.resource["properties"].as_object_mut() {
                        p.remove(k);
                    }
                } else {
                    c.resource["properties"][k] = v.clone();
                }
            }
        }
        c.resource["systemData"]["lastModifiedBy"] = json!(caller);
        c.resource["systemData"]["lastModifiedByType"] = json!("Application");
        c.resource["systemData"]["lastModifiedAt"] = json!(rfc3339(now));
        c.changed = now;
        Ok(json_response(StatusCode::OK, &c.resource))
    }

    fn delete_cluster(
        &mut self,
        ctx: &Ctx,
        s: &str,
        rg: &str,
        name: &str,
    ) -> Result<Response, ArmError> {
        let Some(c) = self.cluster(s, rg, name) else {
            return Ok(StatusCode::NO_CONTENT.into_response());
        };
        let sub_id = self.subs[&s.to_ascii_lowercase()].id.clone();
        let id = c.resource["id"].as_str().unwrap_or("").to_string();
        let loc = c.resource["location"].as_str().unwrap_or("").to_string();
        let stored = c.resource["name"].as_str().unwrap_or(name).to_string();
        let group_name = self
            .group(s, rg)
            .map(|g| g.name.clone())
            .unwrap_or_default();
        let op = match &c.busy {
            Some(op) if self.ops.get(op).is_some_and(|o| o.kind.deletes()) => op.clone(),
            Some(_) => return Err(busy(name)),
            None => {
                let op = self.start_op(
                    &sub_id,
                    NAMESPACE,
                    &loc,
                    &id,
                    &stored,
                    Arc::new(DeleteCluster {
                        rg: group_name,
                        name: stored.clone(),
                    }),
                );
                if let Some(c) = self.cluster_mut(s, rg, name) {
                    c.busy = Some(op.clone());
                    c.resource["properties"]["provisioningState"] = json!("Deleting");
                }
                op
            }
        };
        let mut resp = StatusCode::ACCEPTED.into_response();
        let base = format!(
            "{}/subscriptions/{sub_id}/providers/{NAMESPACE}/locations/{loc}",
            ctx.base
        );
        let (status, result) = (
            format!(
                "{base}/operationStatuses/{op}?api-version={}",
                ctx.api_version
            ),
            format!(
                "{base}/operationResults/{op}?api-version={}",
                ctx.api_version
            ),
        );
        self.lro_headers(&mut resp, &status, Some(&result));
        Ok(resp)
    }
}
