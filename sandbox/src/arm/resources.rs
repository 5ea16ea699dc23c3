//! `Microsoft.Resources` in the ARM emulator: subscriptions, resource groups (their deletion is a
//! long-running operation), resource providers, resource lists with `$filter`, and the cloud
//! metadata document.

use std::sync::Arc;

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::catalog::{
    ARC_LOCATIONS, METADATA_VERSIONS, OTHER_LOCATIONS, RegistrationState, normalize_location,
};
use super::filter::{Clause, parse_filter, tags_match};
use super::operations::OpEffect;
use super::request::{json_body, no_body, only, parse_tags, set_header};
use super::routing::{ApiVersions, ArmRoute, Kind, Parsed, by_method, rg_scope, route, sub_scope};
use super::state::{ArmState, Provider, group_to_json};
use super::{ArmApi, ArmError, Ctx, eq, json_response, rfc3339};

/// Subscriptions, resource groups, providers and resource lists.
pub(crate) const KIND: Kind = Kind {
    name: "resources",
    parse,
};

#[derive(Debug, Clone)]
enum ResRoute {
    SubList,
    Sub(String),
    RgList(String),
    Rg(String, String),
    RgResources(String, String),
    SubResources(String),
    ProviderList(String),
    Provider(String, String),
    ProviderAction(String, String, bool),
}

fn parse(s: &[&str], _path: &str) -> Parsed {
    let o = |x: &str| x.to_string();
    route(match s {
        [a] if eq(a, "subscriptions") => ResRoute::SubList,
        [a, id] if eq(a, "subscriptions") => ResRoute::Sub(o(id)),
        [a, id, b] if eq(a, "subscriptions") && eq(b, "resourceGroups") => ResRoute::RgList(o(id)),
        [a, id, b] if eq(a, "subscriptions") && eq(b, "resources") => ResRoute::SubResources(o(id)),
        [a, id, b] if eq(a, "subscriptions") && eq(b, "providers") => ResRoute::ProviderList(o(id)),
        [a, id, b, rg] if eq(a, "subscriptions") && eq(b, "resourceGroups") => {
            ResRoute::Rg(o(id), o(rg))
        }
        [a, id, b, ns] if eq(a, "subscriptions") && eq(b, "providers") => {
            ResRoute::Provider(o(id), o(ns))
        }
        [a, id, b, ns, act]
            if eq(a, "subscriptions")
                && eq(b, "providers")
                && (eq(act, "register") || eq(act, "unregister")) =>
        {
            ResRoute::ProviderAction(o(id), o(ns), eq(act, "register"))
        }
        [a, id, b, rg, r]
            if eq(a, "subscriptions") && eq(b, "resourceGroups") && eq(r, "resources") =>
        {
            ResRoute::RgResources(o(id), o(rg))
        }
        _ => return None,
    })
}

impl ArmRoute for ResRoute {
    fn versions(&self) -> ApiVersions {
        ApiVersions::RESOURCES
    }

    fn subscription(&self) -> Option<&str> {
        match self {
            ResRoute::SubList => None,
            ResRoute::Sub(s)
            | ResRoute::RgList(s)
            | ResRoute::Rg(s, _)
            | ResRoute::RgResources(s, _)
            | ResRoute::SubResources(s)
            | ResRoute::ProviderList(s)
            | ResRoute::Provider(s, _)
            | ResRoute::ProviderAction(s, _, _) => Some(s),
        }
    }

    fn action(&self, method: &Method, _path: &str) -> Option<(String, String)> {
        let rgs = "Microsoft.Resources/subscriptions/resourceGroups";
        Some(match self {
            ResRoute::SubList => return None,
            ResRoute::Sub(s) => (
                "Microsoft.Resources/subscriptions/read".into(),
                sub_scope(s),
            ),
            ResRoute::RgList(s) => (format!("{rgs}/read"), sub_scope(s)),
            ResRoute::Rg(s, rg) => (
                by_method(
                    method,
                    &format!("{rgs}/read"),
                    &format!("{rgs}/write"),
                    &format!("{rgs}/delete"),
                ),
                rg_scope(s, rg),
            ),
            ResRoute::RgResources(s, rg) => (format!("{rgs}/resources/read"), rg_scope(s, rg)),
            ResRoute::SubResources(s) => (
                "Microsoft.Resources/subscriptions/resources/read".into(),
                sub_scope(s),
            ),
            ResRoute::ProviderList(s) | ResRoute::Provider(s, _) => (
                "Microsoft.Resources/subscriptions/providers/read".into(),
                sub_scope(s),
            ),
            ResRoute::ProviderAction(s, ns, register) => (
                format!(
                    "{ns}/{}/action",
                    if *register { "register" } else { "unregister" }
                ),
                sub_scope(s),
            ),
        })
    }

    fn handle(&self, st: &mut ArmState, ctx: &Ctx) -> Result<Response, ArmError> {
        match self {
            ResRoute::SubList => st.list_subscriptions(ctx),
            ResRoute::Sub(s) => st.get_subscription(ctx, s),
            ResRoute::RgList(s) => st.list_groups(ctx, s),
            ResRoute::Rg(s, rg) => st.resource_group(ctx, s, rg),
            ResRoute::RgResources(s, rg) => st.list_resources(ctx, s, Some(rg)),
            ResRoute::SubResources(s) => st.list_resources(ctx, s, None),
            ResRoute::ProviderList(s) => st.list_providers(ctx, s),
            ResRoute::Provider(s, ns) => st.get_provider(ctx, s, ns),
            ResRoute::ProviderAction(s, ns, register) => st.provider_action(ctx, s, ns, *register),
        }
    }
}

/// Deleting a resource group and everything in it.
#[derive(Debug)]
struct DeleteGroup {
    rg: String,
}

impl OpEffect for DeleteGroup {
    fn deletes(&self) -> bool {
        true
    }

    fn finish(&self, st: &mut ArmState, sub: &str, ok: bool) {
        if ok {
            st.remove_group_direct(sub, &self.rg);
        } else if let Some(g) = st.group_mut(sub, &self.rg) {
            g.deleting = None;
        }
    }
}

fn subscription_json(id: &str, tenant: &str, index: usize) -> Value {
    json!({
        "id": format!("/subscriptions/{id}"),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": id,
        "tenantId": tenant,
        "displayName": format!("arcplan sandbox subscription {}", index + 1),
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off"
        }
    })
}

fn provider_json(sub: &str, p: &Provider) -> Value {
    let types: Vec<Value> = p
        .info
        .types
        .iter()
        .map(|(t, located, versions)| {
            let locations: Vec<&str> = if *located {
                ARC_LOCATIONS.to_vec()
            } else {
                vec![]
            };
            json!({
                "resourceType": t,
                "locations": locations,
                "apiVersions": versions,
                "defaultApiVersion": versions.first().copied().unwrap_or_default(),
                "capabilities": "None",
            })
        })
        .collect();
    json!({
        "id": format!("/subscriptions/{sub}/providers/{}", p.info.namespace),
        "namespace": p.info.namespace,
        "registrationState": p.state.as_str(),
        "registrationPolicy": if p.info.always_registered { "RegistrationFree" } else { "RegistrationRequired" },
        "resourceTypes": types,
    })
}

impl ArmState {
    pub(crate) fn sub_id(&self, s: &str) -> String {
        self.subs
            .get(&s.to_ascii_lowercase())
            .map_or_else(|| s.to_string(), |x| x.id.clone())
    }

    pub(crate) fn list_subscriptions(&self, ctx: &Ctx) -> Result<Response, ArmError> {
        only(ctx, &[Method::GET])?;
        let items: Vec<Value> = self
            .cfg
            .subscription_ids
            .iter()
            .enumerate()
            .filter(|_| ctx.claims.tid.eq_ignore_ascii_case(&self.cfg.tenant_id))
            .filter(|(_, s)| {
                let scope = format!("/subscriptions/{s}");
                self.assignments.iter().any(|a| {
                    a.principal_id.eq_ignore_ascii_case(&ctx.claims.oid)
                        && (super::authz::scope_contains(&a.scope, &scope)
                            || super::authz::scope_contains(&scope, &a.scope))
                })
            })
            .map(|(i, s)| subscription_json(s, &self.cfg.tenant_id, i))
            .collect();
        Ok(json_response(StatusCode::OK, &self.page(ctx, items)?))
    }

    pub(crate) fn get_subscription(&self, ctx: &Ctx, s: &str) -> Result<Response, ArmError> {
        only(ctx, &[Method::GET])?;
        let index = self
            .cfg
            .subscription_ids
            .iter()
            .position(|x| eq(x, s))
            .unwrap_or(0);
        let id = self.sub_id(s);
        Ok(json_response(
            StatusCode::OK,
            &subscription_json(&id, &self.cfg.tenant_id, index),
        ))
    }

    pub(crate) fn list_groups(&self, ctx: &Ctx, s: &str) -> Result<Response, ArmError> {
        only(ctx, &[Method::GET])?;
        let clauses = match ctx.q("$filter") {
            Some(f) => parse_filter(f)?,
            None => Vec::new(),
        };
        let sub = &self.subs[&s.to_ascii_lowercase()];
        let items: Vec<Value> = sub
            .groups
            .values()
            .filter(|g| tags_match(&g.tags, &clauses))
            .map(|g| group_to_json(&sub.id, g))
            .collect();
        Ok(json_response(StatusCode::OK, &self.page(ctx, items)?))
    }

    pub(crate) fn resource_group(
        &mut self,
        ctx: &Ctx,
        s: &str,
        rg: &str,
    ) -> Result<Response, ArmError> {
        let sub_id = self.sub_id(s);
        match ctx.method.clone() {
            m if m == Method::GET => match self.group_json(s, rg) {
                Some(v) => Ok(json_response(StatusCode::OK, &v)),
                None => Err(ArmError::rg_not_found(rg)),
            },
            m if m == Method::HEAD => Ok(no_body(if self.group(s, rg).is_some() {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::NOT_FOUND
            })),
            m if m == Method::PUT => {
                validate_rg_name(rg)?;
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
                if !ARC_LOCATIONS
                    .iter()
                    .chain(OTHER_LOCATIONS)
                    .any(|l| normalize_location(l) == loc)
                {
                    return Err(ArmError::bad_request(
                        "LocationNotAvailableForResourceGroup",
                        format!(
                            "The provided location '{location}' is not available for resource group. List of available regions is '{}'.",
                            ARC_LOCATIONS
                                .iter()
                                .chain(OTHER_LOCATIONS)
                                .map(|l| normalize_location(l))
                                .collect::<Vec<_>>()
                                .join(",")
                        ),
                    ));
                }
                let tags = parse_tags(body.get("tags"))?.unwrap_or_default();
                let managed_by = body
                    .get("managedBy")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let now = time::OffsetDateTime::now_utc();
                let status = if let Some(g) = self.group_mut(s, rg) {
                    if g.deleting.is_some() {
                        return Err(ArmError::conflict(
                            "ResourceGroupBeingDeleted",
                            format!(
                                "The resource group '{}' is in deprovisioning state and cannot perform this operation.",
                                g.name
                            ),
                        ));
                    }
                    if g.location != loc {
                        return Err(ArmError::conflict(
                            "InvalidResourceGroupLocation",
                            format!(
                                "Invalid resource group location '{loc}'. The Resource group already exists in location '{}'.",
                                g.location
                            ),
                        ));
                    }
                    g.tags = tags;
                    g.managed_by = managed_by;
                    g.changed = now;
                    StatusCode::OK
                } else {
                    self.put_group_direct(s, rg, &loc, tags);
                    if let Some(g) = self.group_mut(s, rg) {
                        g.managed_by = managed_by;
                    }
                    StatusCode::CREATED
                };
                let v = self.group_json(s, rg).unwrap_or(Value::Null);
                Ok(json_response(status, &v))
            }
            m if m == Method::PATCH => {
                let body = json_body(ctx, false)?;
                let tags = parse_tags(body.get("tags"))?;
                let Some(g) = self.group_mut(s, rg) else {
                    return Err(ArmError::rg_not_found(rg));
                };
                if g.deleting.is_some() {
                    return Err(ArmError::conflict(
                        "ResourceGroupBeingDeleted",
                        format!(
                            "The resource group '{}' is in deprovisioning state and cannot perform this operation.",
                            g.name
                        ),
                    ));
                }
                if let Some(t) = tags {
                    g.tags = t;
                }
                if let Some(m) = body.get("managedBy").and_then(Value::as_str) {
                    g.managed_by = Some(m.to_string());
                }
                g.changed = time::OffsetDateTime::now_utc();
                let v = self.group_json(s, rg).unwrap_or(Value::Null);
                Ok(json_response(StatusCode::OK, &v))
            }
            m if m == Method::DELETE => {
                let Some(g) = self.group(s, rg) else {
                    return Err(ArmError::rg_not_found(rg));
                };
                let name = g.name.clone();
                let location = g.location.clone();
                let op_id = match &g.deleting {
                    Some(op) => op.clone(),
                    None => {
                        let rid = format!("/subscriptions/{sub_id}/resourceGroups/{name}");
                        let op = self.start_op(
                            &sub_id,
                            "Microsoft.Resources",
                            &location,
                            &rid,
                            &name,
                            Arc::new(DeleteGroup { rg: name.clone() }),
                        );
                        if let Some(g) = self.group_mut(s, rg) {
                            g.deleting = Some(op.clone());
                        }
                        op
                    }
                };
                let mut resp = no_body(StatusCode::ACCEPTED);
                let loc = format!(
                    "{}/subscriptions/{sub_id}/operationresults/{op_id}?api-version={}",
                    ctx.base, ctx.api_version
                );
                set_header(&mut resp, header::LOCATION, &loc);
                set_header(&mut resp, header::RETRY_AFTER, &self.retry_after());
                Ok(resp)
            }
            _ => only(ctx, &[]).map(|()| no_body(StatusCode::OK)),
        }
    }

    pub(crate) fn list_resources(
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
        let clauses = match ctx.q("$filter") {
            Some(f) => parse_filter(f)?,
            None => Vec::new(),
        };
        let hide_tags = clauses
            .iter()
            .any(|c| matches!(c, Clause::Eq(f, _, false) if f == "tagvalue"));
        let expand: Vec<String> = ctx
            .q("$expand")
            .unwrap_or("")
            .split(',')
            .map(|x| x.trim().to_ascii_lowercase())
            .collect();
        let sub = &self.subs[&s.to_ascii_lowercase()];
        let mut items = Vec::new();
        for g in sub.groups.values() {
            if rg.is_some_and(|r| !eq(r, &g.name)) {
                continue;
            }
            for c in g.clusters.values() {
                let r = &c.resource;
                let name = r["name"].as_str().unwrap_or("");
                let rtype = r["type"].as_str().unwrap_or("");
                let location = r["location"].as_str().unwrap_or("");
                let empty = Map::new();
                let tags = r["tags"].as_object().unwrap_or(&empty);
                let ok = clauses.iter().all(|cl| match cl {
                    Clause::Eq(f, v, neg) => {
                        let hit = match f.as_str() {
                            "resourcetype" => eq(rtype, v),
                            "resourcegroup" => eq(&g.name, v),
                            "location" => eq(location, &normalize_location(v)),
                            "name" => eq(name, v),
                            _ => true,
                        };
                        hit != *neg || f.starts_with("tag")
                    }
                    Clause::SubstringOf(v, field) => {
                        let hay = if field == "name" {
                            name
                        } else {
                            g.name.as_str()
                        };
                        hay.to_ascii_lowercase().contains(&v.to_ascii_lowercase())
                    }
                    Clause::StartsWithTagName(_) => true,
                }) && tags_match(tags, &clauses);
                if !ok {
                    continue;
                }
                let mut item = json!({
                    "id": r["id"], "name": r["name"], "type": r["type"], "location": r["location"],
                });
                if let Some(k) = r.get("kind").filter(|k| !k.is_null()) {
                    item["kind"] = k.clone();
                }
                if let Some(i) = r.get("identity").filter(|i| !i.is_null()) {
                    item["identity"] = i.clone();
                }
                if !hide_tags && !tags.is_empty() {
                    item["tags"] = Value::Object(tags.clone());
                }
                if expand.iter().any(|e| e == "createdtime") {
                    item["createdTime"] = json!(rfc3339(c.created));
                }
                if expand.iter().any(|e| e == "changedtime") {
                    item["changedTime"] = json!(rfc3339(c.changed));
                }
                if expand.iter().any(|e| e == "provisioningstate") {
                    item["provisioningState"] = r["properties"]["provisioningState"].clone();
                }
                items.push(item);
            }
        }
        Ok(json_response(StatusCode::OK, &self.page(ctx, items)?))
    }

    pub(crate) fn list_providers(&self, ctx: &Ctx, s: &str) -> Result<Response, ArmError> {
        only(ctx, &[Method::GET])?;
        let sub = &self.subs[&s.to_ascii_lowercase()];
        let items: Vec<Value> = sub
            .providers
            .values()
            .map(|p| provider_json(&sub.id, p))
            .collect();
        Ok(json_response(StatusCode::OK, &self.page(ctx, items)?))
    }

    pub(crate) fn get_provider(&self, ctx: &Ctx, s: &str, ns: &str) -> Result<Response, ArmError> {
        only(ctx, &[Method::GET])?;
        let sub = &self.subs[&s.to_ascii_lowercase()];
        let Some(p) = sub.providers.get(&ns.to_ascii_lowercase()) else {
            return Err(invalid_namespace(ns));
        };
        Ok(json_response(StatusCode::OK, &provider_json(&sub.id, p)))
    }

    pub(crate) fn provider_action(
        &mut self,
        ctx: &Ctx,
        s: &str,
        ns: &str,
        register: bool,
    ) -> Result<Response, ArmError> {
        only(ctx, &[Method::POST])?;
        json_body(ctx, true)?;
        let delay = self.cfg.registration_delay;
        let sub = self
            .subs
            .get_mut(&s.to_ascii_lowercase())
            .ok_or_else(|| invalid_namespace(ns))?;
        let sub_id = sub.id.clone();
        let Some(p) = sub.providers.get_mut(&ns.to_ascii_lowercase()) else {
            return Err(invalid_namespace(ns));
        };
        if !p.info.always_registered {
            let now = Instant::now();
            match (register, p.state) {
                (true, RegistrationState::Registered | RegistrationState::Registering) => {}
                (true, _) => {
                    p.state = RegistrationState::Registering;
                    p.until = Some(now + delay);
                }
                (false, RegistrationState::NotRegistered | RegistrationState::Unregistering) => {}
                (false, _) => {
                    p.state = RegistrationState::Unregistering;
                    p.until = Some(now + delay);
                }
            }
            if delay.is_zero() {
                p.until = Some(now);
            }
        }
        let v = provider_json(&sub_id, p);
        Ok(json_response(StatusCode::OK, &v))
    }
}

pub(crate) fn invalid_namespace(ns: &str) -> ArmError {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "InvalidResourceNamespace",
        format!("The resource namespace '{ns}' is invalid."),
    )
}

fn validate_rg_name(rg: &str) -> Result<(), ArmError> {
    let ok_chars = rg
        .chars()
        .all(|c| c.is_alphanumeric() || "-_.()".contains(c));
    if rg.is_empty() || rg.chars().count() > 90 || !ok_chars || rg.ends_with('.') {
        return Err(ArmError::bad_request(
            "InvalidResourceGroup",
            format!(
                "The provided resource group name '{rg}' has these invalid characters or length. The name can only be a letter, digit, '-', '.', '(', ')' or '_', at most 90 characters, and cannot end with '.'."
            ),
        ));
    }
    Ok(())
}

/// `GET /metadata/endpoints`: the cloud's endpoints, unauthenticated.
pub(crate) fn metadata(api: &ArmApi, base: &str, query: &[(String, String)]) -> Response {
    let version = query
        .iter()
        .find(|(k, _)| eq(k, "api-version"))
        .map(|(_, v)| v.clone());
    let Some(version) = version else {
        return ArmError::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
        .into_response();
    };
    if !METADATA_VERSIONS.iter().any(|v| eq(v, &version)) {
        return ArmError::bad_request(
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{version}' is invalid. The supported versions are '{}'.",
                METADATA_VERSIONS.join(", ")
            ),
        )
        .into_response();
    }
    let st = api.lock();
    let mut audiences: Vec<String> = vec![
        "https://management.core.windows.net/".into(),
        "https://management.azure.com/".into(),
    ];
    for a in &st.cfg.audiences {
        if !audiences.iter().any(|x| eq(x, a)) {
            audiences.push(a.clone());
        }
    }
    let doc = json!({
        "name": "ArcplanSandbox",
        "resourceManager": format!("{base}/"),
        "authentication": {
            "loginEndpoint": format!("{}/", st.cfg.authority_host.trim_end_matches('/')),
            "audiences": audiences,
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "portal": "https://portal.invalid",
        // The fields az maps into its cloud (`_arm_to_cli_mapper`): without
        // `microsoftGraphResourceId` a registered sandbox cloud has no Graph audience.
        "microsoftGraphResourceId": "https://graph.microsoft.com/",
        "graph": "https://graph.windows.net/",
        "graphAudience": "https://graph.windows.net/",
        "gallery": "",
        "batch": "",
        "sqlManagement": "",
        "media": "",
        "vmImageAliasDoc": "",
        "activeDirectoryDataLake": "",
        // The names of the 2015-01-01 document.
        "galleryEndpoint": "",
        "graphEndpoint": "https://graph.windows.net/",
        "suffixes": {},
    });
    let body = if version == "2019-05-01" {
        json!([doc])
    } else {
        doc
    };
    json_response(StatusCode::OK, &body)
}
