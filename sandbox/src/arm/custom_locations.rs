//! `Microsoft.ExtendedLocation/customLocations` in the ARM emulator (spec 2021-08-15): list by
//! subscription and group, get, create or replace (PUT, long-running), update (PATCH), delete
//! (long-running). The host must be an existing connected cluster and every extension id an
//! extension of it; `Microsoft.ExtendedLocation` must be registered; the host and namespace
//! cannot change in place.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::catalog::{ARC_LOCATIONS, CUSTOM_LOCATION_VERSIONS, normalize_location};
use super::operations::OpEffect;
use super::request::{json_body, only, parse_tags};
use super::routing::{ApiVersions, ArmRoute, Kind, Parsed, by_method, rg_scope, route, sub_scope};
use super::state::ArmState;
use super::{ArmError, Ctx, eq, json_response, rfc3339};

const RTYPE: &str = "Microsoft.ExtendedLocation/customLocations";
/// The object id of the Custom Locations service principal (app id
/// `bc313c14-388c-4e7d-a58e-70017303ee3b`) in the sandbox's tenant.
pub const CUSTOM_LOCATIONS_OID: &str = "51dfe1e8-70c6-4de5-a08e-e18aff23d815";
const NAMESPACE: &str = "Microsoft.ExtendedLocation";

/// Custom locations.
pub(crate) const KIND: Kind = Kind {
    name: "customLocations",
    parse,
};

#[derive(Debug, Clone)]
enum LocRoute {
    ListSub(String),
    ListRg(String, String),
    One(String, String, String),
}

fn parse(s: &[&str], _path: &str) -> Parsed {
    let o = |x: &str| x.to_string();
    let ours = |ns: &str, t: &str| eq(ns, NAMESPACE) && eq(t, "customLocations");
    route(match s {
        [a, id, b, ns, t] if eq(a, "subscriptions") && eq(b, "providers") && ours(ns, t) => {
            LocRoute::ListSub(o(id))
        }
        [a, id, b, rg, p, ns, t, rest @ ..]
            if eq(a, "subscriptions")
                && eq(b, "resourceGroups")
                && eq(p, "providers")
                && ours(ns, t) =>
        {
            match rest {
                [] => LocRoute::ListRg(o(id), o(rg)),
                [name] => LocRoute::One(o(id), o(rg), o(name)),
                _ => return None,
            }
        }
        _ => return None,
    })
}

impl ArmRoute for LocRoute {
    fn versions(&self) -> ApiVersions {
        ApiVersions {
            supported: CUSTOM_LOCATION_VERSIONS,
            rp_type: Some("customLocations"),
        }
    }

    fn subscription(&self) -> Option<&str> {
        match self {
            LocRoute::ListSub(s) | LocRoute::ListRg(s, _) | LocRoute::One(s, _, _) => Some(s),
        }
    }

    fn action(&self, method: &Method, path: &str) -> Option<(String, String)> {
        let read = format!("{RTYPE}/read");
        Some(match self {
            LocRoute::ListSub(s) => (read, sub_scope(s)),
            LocRoute::ListRg(s, rg) => (read, rg_scope(s, rg)),
            LocRoute::One(..) => (
                by_method(
                    method,
                    &read,
                    &format!("{RTYPE}/write"),
                    &format!("{RTYPE}/delete"),
                ),
                path.to_string(),
            ),
        })
    }

    fn handle(&self, st: &mut ArmState, ctx: &Ctx) -> Result<Response, ArmError> {
        match self {
            LocRoute::ListSub(s) => st.list_custom_locations(ctx, s, None),
            LocRoute::ListRg(s, rg) => st.list_custom_locations(ctx, s, Some(rg)),
            LocRoute::One(s, rg, name) => st.custom_location(ctx, s, rg, name),
        }
    }
}

/// Creating (ends `Succeeded` or `Failed`) or deleting (gone when done) a custom location.
#[derive(Debug)]
struct LocOp {
    rg: String,
    name: String,
    deletes: bool,
}

impl OpEffect for LocOp {
    fn deletes(&self) -> bool {
        self.deletes
    }

    /// The Custom Locations service creates the namespace in the host cluster through cluster
    /// connect, as the principal the agents' custom-locations feature lets in: without that
    /// feature (or bound to another principal) the creation fails.
    fn refuse(&self, st: &ArmState, sub: &str) -> Option<(String, String)> {
        if self.deletes {
            return None;
        }
        let (r, _) = st
            .group(sub, &self.rg)?
            .custom_locations
            .get(&self.name.to_ascii_lowercase())?;
        let host = r["properties"]["hostResourceId"]
            .as_str()
            .unwrap_or_default();
        let parts: Vec<&str> = host.split('/').collect();
        let granted = match parts.as_slice() {
            ["", _, hs, _, hrg, _, _, _, c] => st
                .cluster(hs, hrg, c)
                .and_then(|c| c.custom_locations_oid.clone()),
            _ => None,
        };
        match granted {
            Some(oid) if oid.eq_ignore_ascii_case(CUSTOM_LOCATIONS_OID) => None,
            Some(oid) => Some((
                "CustomLocationsFeatureMisconfigured".into(),
                format!(
                    "The custom-locations feature of cluster '{host}' lets in '{oid}', not the Custom Locations service principal '{CUSTOM_LOCATIONS_OID}' of this tenant (sandbox wording)."
                ),
            )),
            None => Some((
                "CustomLocationsFeatureDisabled".into(),
                format!(
                    "The cluster '{host}' does not have the cluster-connect and custom-locations features enabled; enable them with 'az connectedk8s enable-features --features cluster-connect custom-locations' (sandbox wording)."
                ),
            )),
        }
    }

    fn finish(&self, st: &mut ArmState, sub: &str, ok: bool) {
        let Some(g) = st.group_mut(sub, &self.rg) else {
            return;
        };
        let key = self.name.to_ascii_lowercase();
        if self.deletes && ok {
            g.custom_locations.remove(&key);
        } else if let Some((r, busy)) = g.custom_locations.get_mut(&key) {
            r["properties"]["provisioningState"] = json!(if ok { "Succeeded" } else { "Failed" });
            *busy = None;
        }
    }

    fn result(&self, st: &ArmState, sub: &str) -> Response {
        match st
            .group(sub, &self.rg)
            .and_then(|g| g.custom_locations.get(&self.name.to_ascii_lowercase()))
        {
            Some((r, _)) => json_response(StatusCode::OK, r),
            None => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

fn bad(target: &str, message: impl Into<String>) -> ArmError {
    ArmError::invalid_content(target, message)
}

impl ArmState {
    fn list_custom_locations(
        &self,
        ctx: &Ctx,
        s: &str,
        rg: Option<&str>,
    ) -> Result<Response, ArmError> {
        only(ctx, &[Method::GET])?;
        if let Some(rg) = rg
            && self.group(s, rg).is_none()
        {
            return Err(ArmError::rg_not_found(rg));
        }
        let items: Vec<Value> = self.subs[&s.to_ascii_lowercase()]
            .groups
            .values()
            .filter(|g| rg.is_none_or(|r| eq(r, &g.name)))
            .flat_map(|g| g.custom_locations.values().map(|(r, _)| r.clone()))
            .collect();
        Ok(json_response(StatusCode::OK, &self.page(ctx, items)?))
    }

    fn custom_location(
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
        let group = self
            .group(s, rg)
            .map(|g| g.name.clone())
            .ok_or_else(|| ArmError::rg_not_found(rg))?;
        let key = name.to_ascii_lowercase();
        let existing = self
            .group(s, rg)
            .and_then(|g| g.custom_locations.get(&key))
            .cloned();
        match ctx.method {
            Method::GET => match existing {
                Some((r, _)) => Ok(json_response(StatusCode::OK, &r)),
                None => Err(ArmError::resource_not_found(RTYPE, name, &group)),
            },
            Method::DELETE => {
                let Some((r, busy)) = existing else {
                    return Ok(StatusCode::NO_CONTENT.into_response());
                };
                if busy.is_some() {
                    return Err(busy_error(name));
                }
                let loc = r["location"].as_str().unwrap_or_default().to_owned();
                self.start_location_op(ctx, s, &group, name, &loc, true, StatusCode::ACCEPTED, None)
            }
            Method::PATCH => {
                let Some((mut r, busy)) = existing else {
                    return Err(ArmError::resource_not_found(RTYPE, name, &group));
                };
                if busy.is_some() {
                    return Err(busy_error(name));
                }
                let body = json_body(ctx, false)?;
                if let Some(t) = parse_tags(body.get("tags"))? {
                    r["tags"] = Value::Object(t);
                }
                if let Some(p) = body.get("properties").and_then(Value::as_object) {
                    for k in ["clusterExtensionIds", "displayName"] {
                        if let Some(v) = p.get(k) {
                            r["properties"][k] = v.clone();
                        }
                    }
                }
                if let Some(g) = self.group_mut(s, rg) {
                    g.custom_locations.insert(key, (r.clone(), None));
                }
                Ok(json_response(StatusCode::OK, &r))
            }
            _ => self.put_custom_location(ctx, s, &group, name, existing),
        }
    }

    fn put_custom_location(
        &mut self,
        ctx: &Ctx,
        s: &str,
        rg: &str,
        name: &str,
        existing: Option<(Value, Option<String>)>,
    ) -> Result<Response, ArmError> {
        let body = json_body(ctx, false)?;
        let Some(location) = body
            .get("location")
            .and_then(Value::as_str)
            .filter(|l| !l.is_empty())
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
                    "The provided location '{location}' is not available for resource type '{RTYPE}'."
                ),
            ));
        }
        let empty = Map::new();
        let props = body
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let text = |k: &str| props.get(k).and_then(Value::as_str).map(str::to_owned);
        let host = text("hostResourceId").ok_or_else(|| {
            bad(
                "properties.hostResourceId",
                "The 'properties.hostResourceId' property is required.",
            )
        })?;
        let namespace = text("namespace").ok_or_else(|| {
            bad(
                "properties.namespace",
                "The 'properties.namespace' property is required.",
            )
        })?;
        if let Some(t) = text("hostType")
            && !eq(&t, "Kubernetes")
        {
            return Err(bad(
                "properties.hostType",
                format!(
                    "The host type '{t}' is not supported; the only host type is 'Kubernetes'."
                ),
            ));
        }
        let ids: Vec<String> = match props.get("clusterExtensionIds") {
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                return Err(bad(
                    "properties.clusterExtensionIds",
                    "'properties.clusterExtensionIds' must be an array of strings.",
                ));
            }
        };
        // The host: a connected cluster of this emulator, by id.
        let parts: Vec<&str> = host.split('/').filter(|p| !p.is_empty()).collect();
        let cluster = match parts.as_slice() {
            [a, hs, b, hrg, p, ns, t, c]
                if eq(a, "subscriptions")
                    && eq(b, "resourceGroups")
                    && eq(p, "providers")
                    && eq(ns, "Microsoft.Kubernetes")
                    && eq(t, "connectedClusters") =>
            {
                self.cluster(hs, hrg, c)
            }
            _ => None,
        };
        let Some(cluster) = cluster else {
            return Err(ArmError::bad_request(
                "HostResourceNotFound",
                format!(
                    "The host resource '{host}' is not a connected cluster that exists (sandbox wording)."
                ),
            ));
        };
        for id in &ids {
            let ext = id
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let under = id.to_ascii_lowercase().starts_with(&format!(
                "{}/providers/microsoft.kubernetesconfiguration/extensions/",
                host.to_ascii_lowercase()
            ));
            if !under || !cluster.extensions.contains_key(&ext) {
                return Err(ArmError::bad_request(
                    "ClusterExtensionNotFound",
                    format!(
                        "The cluster extension '{id}' does not exist on the host resource '{host}' (sandbox wording)."
                    ),
                ));
            }
        }
        self.require_registered(s, NAMESPACE)?;
        if let Some((old, busy)) = &existing {
            if busy.is_some() {
                return Err(busy_error(name));
            }
            let p = &old["properties"];
            if !p["hostResourceId"].as_str().is_some_and(|h| eq(h, &host))
                || p["namespace"] != json!(namespace)
            {
                return Err(ArmError::bad_request(
                    "CustomLocationUpdateNotAllowed",
                    "The host resource and the namespace of a custom location cannot be changed; delete it and create it again.",
                ));
            }
        }
        let tags = parse_tags(body.get("tags"))?.unwrap_or_default();
        // An update of a created custom location is synchronous; a first PUT, or one again after
        // a failed creation, creates it (long-running).
        let settled = existing
            .as_ref()
            .is_some_and(|(old, _)| old["properties"]["provisioningState"] == "Succeeded");
        let sub_id = self.subs[&s.to_ascii_lowercase()].id.clone();
        let now = rfc3339(time::OffsetDateTime::now_utc());
        let caller = ctx.claims.appid.clone();
        let resource = json!({
            "id": format!("/subscriptions/{sub_id}/resourceGroups/{rg}/providers/{RTYPE}/{name}"),
            "name": name,
            "type": RTYPE,
            "location": loc,
            "tags": tags,
            "properties": {
                "hostType": "Kubernetes",
                "hostResourceId": host,
                "namespace": namespace,
                "clusterExtensionIds": ids,
                "displayName": text("displayName").unwrap_or_else(|| name.to_owned()),
                "provisioningState": if settled { "Succeeded" } else { "Creating" },
            },
            "systemData": {
                "createdBy": caller, "createdByType": "Application", "createdAt": now,
                "lastModifiedBy": caller, "lastModifiedByType": "Application", "lastModifiedAt": now,
            },
        });
        if let Some(g) = self.group_mut(s, rg) {
            g.custom_locations
                .insert(name.to_ascii_lowercase(), (resource.clone(), None));
        }
        if settled {
            return Ok(json_response(StatusCode::OK, &resource));
        }
        self.start_location_op(
            ctx,
            s,
            rg,
            name,
            &loc,
            false,
            StatusCode::CREATED,
            Some(&resource),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn start_location_op(
        &mut self,
        ctx: &Ctx,
        s: &str,
        rg: &str,
        name: &str,
        loc: &str,
        deletes: bool,
        status: StatusCode,
        body: Option<&Value>,
    ) -> Result<Response, ArmError> {
        let sub_id = self.subs[&s.to_ascii_lowercase()].id.clone();
        let id = format!("/subscriptions/{sub_id}/resourceGroups/{rg}/providers/{RTYPE}/{name}");
        let op = self.start_op(
            &sub_id,
            NAMESPACE,
            loc,
            &id,
            name,
            Arc::new(LocOp {
                rg: rg.to_owned(),
                name: name.to_owned(),
                deletes,
            }),
        );
        if let Some(g) = self.group_mut(s, rg)
            && let Some((r, busy)) = g.custom_locations.get_mut(&name.to_ascii_lowercase())
        {
            *busy = Some(op.clone());
            if deletes {
                r["properties"]["provisioningState"] = json!("Deleting");
            }
        }
        let mut resp = match body {
            Some(b) => json_response(status, b),
            None => status.into_response(),
        };
        let base = format!(
            "{}/subscriptions/{sub_id}/providers/{NAMESPACE}/locations/{loc}",
            ctx.base
        );
        let status_url = format!(
            "{base}/operationStatuses/{op}?api-version={}",
            ctx.api_version
        );
        let result_url = format!(
            "{base}/operationResults/{op}?api-version={}",
            ctx.api_version
        );
        self.lro_headers(
            &mut resp,
            &status_url,
            deletes.then_some(result_url.as_str()),
        );
        Ok(resp)
    }
}

fn busy_error(name: &str) -> ArmError {
    ArmError::conflict(
        "AnotherOperationInProgress",
        format!(
            "Another operation on the custom location '{name}' is in progress. Retry after it finishes."
        ),
    )
}
