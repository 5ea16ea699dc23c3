//! What az and the SDKs ask ARM besides arcplan's own resources: the caller's tenants
//! (`Tenants_List`), a subscription's locations (`Subscriptions_ListLocations`) and tags at a
//! scope (`Tags_*AtScope`: a subscription, a resource group or a connected cluster).

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::catalog::{ARC_LOCATIONS, OTHER_LOCATIONS, normalize_location};
use super::request::{json_body, only, parse_tags};
use super::routing::{ApiVersions, ArmRoute, Kind, Parsed, by_method, route, sub_scope};
use super::state::ArmState;
use super::{ArmError, Ctx, eq, json_response};

/// Tenants, locations and tags at a scope. Asked first: a tags path's scope may be any resource.
pub(crate) const KIND: Kind = Kind {
    name: "tenancy",
    parse,
};

#[derive(Debug, Clone)]
enum TenancyRoute {
    TenantList,
    Locations(String),
    /// `{scope}/providers/Microsoft.Resources/tags/default`.
    TagsAtScope(TagScope),
}

fn parse(s: &[&str], path: &str) -> Parsed {
    if let [scope @ .., p, ns, t, d] = s
        && eq(p, "providers")
        && eq(ns, "Microsoft.Resources")
        && eq(t, "tags")
        && eq(d, "default")
    {
        return Some(
            TagScope::parse(scope, path)
                .map(|t| Box::new(TenancyRoute::TagsAtScope(t)) as Box<dyn ArmRoute>),
        );
    }
    route(match s {
        [a] if eq(a, "tenants") => TenancyRoute::TenantList,
        [a, id, b] if eq(a, "subscriptions") && eq(b, "locations") => {
            TenancyRoute::Locations(id.to_string())
        }
        _ => return None,
    })
}

impl ArmRoute for TenancyRoute {
    fn versions(&self) -> ApiVersions {
        ApiVersions::RESOURCES
    }

    fn subscription(&self) -> Option<&str> {
        match self {
            TenancyRoute::TenantList => None,
            TenancyRoute::Locations(s) => Some(s),
            TenancyRoute::TagsAtScope(t) => Some(t.subscription()),
        }
    }

    fn action(&self, method: &Method, _path: &str) -> Option<(String, String)> {
        match self {
            TenancyRoute::TenantList => None,
            TenancyRoute::Locations(s) => Some((
                "Microsoft.Resources/subscriptions/locations/read".into(),
                sub_scope(s),
            )),
            TenancyRoute::TagsAtScope(t) => Some((
                by_method(
                    method,
                    "Microsoft.Resources/tags/read",
                    "Microsoft.Resources/tags/write",
                    "Microsoft.Resources/tags/delete",
                ),
                t.scope(),
            )),
        }
    }

    fn handle(&self, st: &mut ArmState, ctx: &Ctx) -> Result<Response, ArmError> {
        match self {
            TenancyRoute::TenantList => st.list_tenants(ctx),
            TenancyRoute::Locations(s) => st.list_locations(ctx, s),
            TenancyRoute::TagsAtScope(t) => st.tags_at_scope(ctx, t),
        }
    }
}

/// The scope of a tags wrapper resource.
#[derive(Debug, Clone)]
pub(crate) enum TagScope {
    Subscription(String),
    Group(String, String),
    Cluster(String, String, String),
}

impl TagScope {
    /// Parses the segments before `/providers/Microsoft.Resources/tags/default`.
    pub(crate) fn parse(scope: &[&str], path: &str) -> Result<Self, ArmError> {
        let s = |x: &str| x.to_string();
        Ok(match scope {
            [a, id] if eq(a, "subscriptions") => TagScope::Subscription(s(id)),
            [a, id, b, rg] if eq(a, "subscriptions") && eq(b, "resourceGroups") => {
                TagScope::Group(s(id), s(rg))
            }
            [a, id, b, rg, p, ns, t, name]
                if eq(a, "subscriptions")
                    && eq(b, "resourceGroups")
                    && eq(p, "providers")
                    && eq(ns, "Microsoft.Kubernetes")
                    && eq(t, "connectedClusters") =>
            {
                TagScope::Cluster(s(id), s(rg), s(name))
            }
            [a, _, b, _, p, ns, t, ..]
                if eq(a, "subscriptions") && eq(b, "resourceGroups") && eq(p, "providers") =>
            {
                return Err(ArmError::bad_request(
                    "InvalidResourceType",
                    format!(
                        "Tags at the scope of resource type '{ns}/{t}' are not emulated by the sandbox; it serves tags on subscriptions, resource groups and Microsoft.Kubernetes/connectedClusters."
                    ),
                ));
            }
            _ => {
                return Err(ArmError::new(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("The requested resource '{path}' was not found."),
                ));
            }
        })
    }

    pub(crate) fn subscription(&self) -> &str {
        match self {
            TagScope::Subscription(s) | TagScope::Group(s, _) | TagScope::Cluster(s, _, _) => s,
        }
    }

    /// The scope as an id (for RBAC).
    pub(crate) fn scope(&self) -> String {
        match self {
            TagScope::Subscription(s) => format!("/subscriptions/{s}"),
            TagScope::Group(s, rg) => format!("/subscriptions/{s}/resourceGroups/{rg}"),
            TagScope::Cluster(s, rg, n) => format!(
                "/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Kubernetes/connectedClusters/{n}"
            ),
        }
    }
}

/// Location metadata: (display name, geography group) of the sandbox's regions.
fn geography_group(display: &str) -> &'static str {
    let d = display.to_ascii_lowercase();
    if d.contains(" us") || d.starts_with("canada") || d.starts_with("mexico") {
        "US"
    } else if d.starts_with("brazil") {
        "South America"
    } else if d.contains("europe")
        || [
            "uk ",
            "france",
            "germany",
            "switzerland",
            "sweden",
            "norway",
            "italy",
            "poland",
            "spain",
        ]
        .iter()
        .any(|p| d.starts_with(p))
    {
        "Europe"
    } else if d.starts_with("uae") || d.starts_with("qatar") || d.starts_with("israel") {
        "Middle East"
    } else if d.starts_with("south africa") {
        "Africa"
    } else {
        "Asia Pacific"
    }
}

impl ArmState {
    /// `GET /tenants`: the tenant of the caller's token, when the sandbox owns it.
    pub(crate) fn list_tenants(&self, ctx: &Ctx) -> Result<Response, ArmError> {
        only(ctx, &[Method::GET])?;
        let tid = &self.cfg.tenant_id;
        let items: Vec<Value> = if ctx.claims.tid.eq_ignore_ascii_case(tid) {
            vec![json!({
                "id": format!("/tenants/{tid}"),
                "tenantId": tid,
                "tenantCategory": "Home",
                "countryCode": "US",
                "displayName": "arcplan sandbox",
                "domains": ["sandbox.arcplan.invalid"],
                "defaultDomain": "sandbox.arcplan.invalid",
                "tenantType": "AAD",
            })]
        } else {
            Vec::new()
        };
        Ok(json_response(StatusCode::OK, &self.page(ctx, items)?))
    }

    /// `GET /subscriptions/{s}/locations`: every region the sandbox knows (one page, as ARM).
    pub(crate) fn list_locations(&self, ctx: &Ctx, s: &str) -> Result<Response, ArmError> {
        only(ctx, &[Method::GET])?;
        let sub = self.sub_id(s);
        let value: Vec<Value> = ARC_LOCATIONS
            .iter()
            .map(|l| (l, "Recommended"))
            .chain(OTHER_LOCATIONS.iter().map(|l| (l, "Other")))
            .map(|(display, category)| {
                let name = normalize_location(display);
                let group = geography_group(display);
                json!({
                    "id": format!("/subscriptions/{sub}/locations/{name}"),
                    "name": name,
                    "type": "Region",
                    "displayName": display,
                    "regionalDisplayName": format!("({group}) {display}"),
                    "metadata": {
                        "regionType": "Physical",
                        "regionCategory": category,
                        "geographyGroup": group,
                        "pairedRegion": [],
                    },
                })
            })
            .collect();
        Ok(json_response(StatusCode::OK, &json!({ "value": value })))
    }

    /// `{scope}/providers/Microsoft.Resources/tags/default`.
    pub(crate) fn tags_at_scope(&mut self, ctx: &Ctx, t: &TagScope) -> Result<Response, ArmError> {
        only(
            ctx,
            &[Method::GET, Method::PUT, Method::PATCH, Method::DELETE],
        )?;
        let body = if ctx.method == Method::PUT || ctx.method == Method::PATCH {
            json_body(ctx, false)?
        } else {
            Map::new()
        };
        let given = match body.get("properties") {
            None if ctx.method == Method::PUT => {
                return Err(ArmError::invalid_content(
                    "properties",
                    "The request content was invalid: 'properties' is required.",
                ));
            }
            Some(p) if !p.is_object() => {
                return Err(ArmError::invalid_content(
                    "properties",
                    "The request content was invalid: 'properties' must be an object.",
                ));
            }
            p => parse_tags(p.and_then(|p| p.get("tags")))?.unwrap_or_default(),
        };
        let operation = match body.get("operation").and_then(Value::as_str) {
            None if ctx.method == Method::PATCH => {
                return Err(ArmError::invalid_content(
                    "operation",
                    "The request content was invalid: 'operation' (Replace, Merge or Delete) is required.",
                ));
            }
            None => "Replace".to_string(),
            Some(o) if ["Replace", "Merge", "Delete"].iter().any(|x| eq(x, o)) => {
                o.to_ascii_lowercase()
            }
            Some(o) => {
                return Err(ArmError::invalid_content(
                    "operation",
                    format!("The tags operation '{o}' is invalid: use Replace, Merge or Delete."),
                ));
            }
        };
        let method = ctx.method.clone();
        let now = time::OffsetDateTime::now_utc();
        let tags = self.scope_tags(t)?;
        if method == Method::PUT || (method == Method::PATCH && operation == "replace") {
            *tags = given;
        } else if method == Method::PATCH && operation == "merge" {
            tags.extend(given);
        } else if method == Method::PATCH {
            for (k, v) in &given {
                let value_matches =
                    v.as_str().is_none_or(str::is_empty) || tags.get(k).is_some_and(|cur| cur == v);
                if value_matches {
                    tags.remove(k);
                }
            }
        } else if method == Method::DELETE {
            tags.clear();
        }
        let out = tags.clone();
        if method != Method::GET {
            self.touch(t, now);
        }
        if method == Method::DELETE {
            return Ok(json_response(StatusCode::OK, &json!({})));
        }
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "id": format!("{}/providers/Microsoft.Resources/tags/default", t.scope()),
                "name": "default",
                "type": "Microsoft.Resources/tags",
                "properties": { "tags": out },
            }),
        ))
    }

    /// The stored tags of the resource at `t`.
    fn scope_tags(&mut self, t: &TagScope) -> Result<&mut Map<String, Value>, ArmError> {
        match t {
            TagScope::Subscription(s) => self
                .subs
                .get_mut(&s.to_ascii_lowercase())
                .map(|s| &mut s.tags)
                .ok_or_else(|| {
                    ArmError::new(
                        StatusCode::NOT_FOUND,
                        "SubscriptionNotFound",
                        format!("The subscription '{s}' could not be found."),
                    )
                }),
            TagScope::Group(s, rg) => self
                .group_mut(s, rg)
                .map(|g| &mut g.tags)
                .ok_or_else(|| ArmError::rg_not_found(rg)),
            TagScope::Cluster(s, rg, name) => {
                if self.group(s, rg).is_none() {
                    return Err(ArmError::rg_not_found(rg));
                }
                let c = self.cluster_mut(s, rg, name).ok_or_else(|| {
                    ArmError::resource_not_found("Microsoft.Kubernetes/connectedClusters", name, rg)
                })?;
                if !c.resource["tags"].is_object() {
                    c.resource["tags"] = json!({});
                }
                c.resource["tags"]
                    .as_object_mut()
                    .ok_or_else(|| ArmError::bad_request("InternalError", "tags are not an object"))
            }
        }
    }

    fn touch(&mut self, t: &TagScope, now: time::OffsetDateTime) {
        match t {
            TagScope::Subscription(_) => {}
            TagScope::Group(s, rg) => {
                if let Some(g) = self.group_mut(s, rg) {
                    g.changed = now;
                }
            }
            TagScope::Cluster(s, rg, name) => {
                if let Some(c) = self.cluster_mut(s, rg, name) {
                    c.resource["systemData"]["lastModifiedAt"] = json!(super::rfc3339(now));
                    c.changed = now;
                }
            }
        }
    }
}
