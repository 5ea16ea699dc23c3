//! `Microsoft.Resources` in the ARM emulator: subscriptions, resource groups, resource providers,
//! resource lists with `$filter`, operation results, and the cloud metadata document.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::state::{
    ARC_LOCATIONS, ArmState, METADATA_VERSIONS, OTHER_LOCATIONS, OpKind, OpStatus, Provider,
    RegistrationState, group_to_json, normalize_location,
};
use super::{ArmApi, ArmError, Ctx, eq, json_response, rfc3339};

/// Rejects methods other than `allowed`.
pub(crate) fn only(ctx: &Ctx, allowed: &[Method]) -> Result<(), ArmError> {
    if allowed.contains(&ctx.method) {
        Ok(())
    } else {
        Err(ArmError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!(
                "The requested resource does not support http method '{}'.",
                ctx.method
            ),
        ))
    }
}

/// Parses a JSON object body; `optional` allows an empty body (→ empty object).
pub(crate) fn json_body(ctx: &Ctx, optional: bool) -> Result<Map<String, Value>, ArmError> {
    if ctx.body.iter().all(u8::is_ascii_whitespace) {
        if optional {
            return Ok(Map::new());
        }
        return Err(ArmError::bad_request(
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: 'The request body is empty.'.",
        ));
    }
    if let Some(ct) = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !(essence == "application/json" || essence.ends_with("+json") || essence == "text/json")
        {
            return Err(ArmError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!(
                    "The content media type '{essence}' is not supported. Only 'application/json' is supported."
                ),
            ));
        }
    }
    match serde_json::from_slice::<Value>(&ctx.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ArmError::bad_request(
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: 'The request body must be a JSON object.'.",
        )),
        Err(e) => Err(ArmError::bad_request(
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: '{e}'."),
        )),
    }
}

/// Validates an optional `tags` value (object of strings, ARM's limits).
pub(crate) fn parse_tags(v: Option<&Value>) -> Result<Option<Map<String, Value>>, ArmError> {
    let Some(v) = v else { return Ok(None) };
    if v.is_null() {
        return Ok(Some(Map::new()));
    }
    let Some(obj) = v.as_object() else {
        return Err(ArmError::invalid_content(
            "tags",
            "The request content was invalid and could not be deserialized: 'tags must be an object of strings'.",
        ));
    };
    if obj.len() > 50 {
        return Err(ArmError::bad_request(
            "InvalidTagCount",
            "The number of tags exceeds the maximum of 50.",
        ));
    }
    for (k, val) in obj {
        if !val.is_string() {
            return Err(ArmError::invalid_content(
                &format!("tags.{k}"),
                format!("The value of tag '{k}' must be a string."),
            ));
        }
        if k.is_empty() || k.len() > 512 {
            return Err(ArmError::bad_request(
                "InvalidTagNameLength",
                format!("The tag name '{k}' must be between 1 and 512 characters."),
            ));
        }
        if k.chars().any(|c| "<>%&\\?/".contains(c)) {
            return Err(ArmError::bad_request(
                "InvalidTagNameCharacters",
                format!(
                    "The tag names '{k}' have reserved characters '<,>,%,&,\\,?,/' or control characters."
                ),
            ));
        }
        if val.as_str().is_some_and(|s| s.len() > 256) {
            return Err(ArmError::bad_request(
                "InvalidTagValueLength",
                format!("The tag value for '{k}' exceeds the maximum length of 256 characters."),
            ));
        }
    }
    Ok(Some(obj.clone()))
}

/// One clause of a `$filter`.
#[derive(Debug, PartialEq)]
pub(crate) enum Clause {
    Eq(String, String, bool),
    StartsWithTagName(String),
    SubstringOf(String, String),
}

fn bad_filter(filter: &str) -> ArmError {
    ArmError::bad_request(
        "InvalidFilterInQueryString",
        format!(
            "The $filter '{filter}' is invalid or not supported by the sandbox. Supported: tagName/tagValue/resourceType/resourceGroup/location/name eq|ne '…', startswith(tagName, '…'), substringof('…', name|resourceGroup), joined with 'and'."
        ),
    )
}

/// Parses an ARM `$filter` (the subset arcplan and az use).
pub(crate) fn parse_filter(filter: &str) -> Result<Vec<Clause>, ArmError> {
    // Split on ` and ` outside quotes.
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let chars: Vec<char> = filter.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            in_quote = !in_quote;
        }
        if !in_quote && c == ' ' {
            let rest: String = chars[i..chars.len().min(i + 5)].iter().collect();
            if rest.eq_ignore_ascii_case(" and ") {
                parts.push(std::mem::take(&mut cur));
                i += 5;
                continue;
            }
        }
        cur.push(c);
        i += 1;
    }
    parts.push(cur);
    let unquote = |s: &str| -> Option<String> {
        let s = s.trim();
        let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
        Some(inner.replace("''", "'"))
    };
    let mut out = Vec::new();
    for p in parts {
        let p = p.trim();
        let lower = p.to_ascii_lowercase();
        if let Some(args) = lower
            .strip_prefix("startswith(")
            .and_then(|_| p.get("startswith(".len()..p.len().saturating_sub(1)))
        {
            let (field, value) = args.split_once(',').ok_or_else(|| bad_filter(filter))?;
            if !eq(field.trim(), "tagName") {
                return Err(bad_filter(filter));
            }
            out.push(Clause::StartsWithTagName(
                unquote(value).ok_or_else(|| bad_filter(filter))?,
            ));
            continue;
        }
        if let Some(args) = lower
            .strip_prefix("substringof(")
            .and_then(|_| p.get("substringof(".len()..p.len().saturating_sub(1)))
        {
            let (value, field) = args.rsplit_once(',').ok_or_else(|| bad_filter(filter))?;
            let field = field.trim();
            if !(eq(field, "name") || eq(field, "resourceGroup")) {
                return Err(bad_filter(filter));
            }
            out.push(Clause::SubstringOf(
                unquote(value).ok_or_else(|| bad_filter(filter))?,
                field.to_ascii_lowercase(),
            ));
            continue;
        }
        let mut it = p.splitn(3, ' ');
        let (Some(field), Some(op), Some(value)) = (it.next(), it.next(), it.next()) else {
            return Err(bad_filter(filter));
        };
        let negate = if eq(op, "eq") {
            false
        } else if eq(op, "ne") {
            true
        } else {
            return Err(bad_filter(filter));
        };
        let known = [
            "tagname",
            "tagvalue",
            "resourcetype",
            "resourcegroup",
            "location",
            "name",
        ];
        let f = field.to_ascii_lowercase();
        if !known.contains(&f.as_str()) {
            return Err(bad_filter(filter));
        }
        out.push(Clause::Eq(
            f,
            unquote(value).ok_or_else(|| bad_filter(filter))?,
            negate,
        ));
    }
    let has = |n: &str| {
        out.iter()
            .any(|c| matches!(c, Clause::Eq(f, _, _) if f == n))
    };
    if has("tagvalue") && !has("tagname") {
        return Err(bad_filter(filter));
    }
    Ok(out)
}

fn tags_match(tags: &Map<String, Value>, clauses: &[Clause]) -> bool {
    let name = clauses.iter().find_map(|c| match c {
        Clause::Eq(f, v, false) if f == "tagname" => Some(v),
        _ => None,
    });
    let value = clauses.iter().find_map(|c| match c {
        Clause::Eq(f, v, false) if f == "tagvalue" => Some(v),
        _ => None,
    });
    let prefix = clauses.iter().find_map(|c| match c {
        Clause::StartsWithTagName(p) => Some(p),
        _ => None,
    });
    if let Some(n) = name {
        // Tag names are case-insensitive, values case-sensitive.
        let Some((_, v)) = tags.iter().find(|(k, _)| eq(k, n)) else {
            return false;
        };
        if let Some(want) = value
            && v.as_str() != Some(want.as_str())
        {
            return false;
        }
    }
    if let Some(p) = prefix
        && !tags
            .keys()
            .any(|k| k.to_ascii_lowercase().starts_with(&p.to_ascii_lowercase()))
    {
        return false;
    }
    true
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

fn no_body(status: StatusCode) -> Response {
    status.into_response()
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
                            OpKind::DeleteGroup { rg: name.clone() },
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

    pub(crate) fn operation_status(
        &self,
        ctx: &Ctx,
        s: &str,
        id: &str,
        ns: &str,
    ) -> Result<Response, ArmError> {
        only(ctx, &[Method::GET])?;
        let op = self
            .ops
            .get(id)
            .filter(|o| eq(&o.sub, s) && eq(o.namespace, ns))
            .ok_or_else(|| op_not_found(id))?;
        let mut resp = json_response(StatusCode::OK, &self.op_status_json(op));
        if op.status == OpStatus::InProgress {
            set_header(&mut resp, header::RETRY_AFTER, &self.retry_after());
        }
        Ok(resp)
    }

    pub(crate) fn operation_result(
        &self,
        ctx: &Ctx,
        s: &str,
        id: &str,
        ns: &str,
    ) -> Result<Response, ArmError> {
        only(ctx, &[Method::GET])?;
        let op = self
            .ops
            .get(id)
            .filter(|o| eq(&o.sub, s) && eq(o.namespace, ns))
            .ok_or_else(|| op_not_found(id))?;
        match op.status {
            OpStatus::InProgress => {
                let mut resp = no_body(StatusCode::ACCEPTED);
                let url = format!("{}{}?{}", ctx.base, ctx.path, ctx.raw_query);
                set_header(&mut resp, header::LOCATION, &url);
                set_header(&mut resp, header::RETRY_AFTER, &self.retry_after());
                Ok(resp)
            }
            OpStatus::Failed => {
                let (code, message) = op.failure.clone().unwrap_or_default();
                Err(ArmError::conflict(&code, message))
            }
            OpStatus::Succeeded => match &op.kind {
                OpKind::CreateCluster { rg, name } => match self.cluster(s, rg, name) {
                    Some(c) => Ok(json_response(StatusCode::OK, &c.resource)),
                    None => Ok(no_body(StatusCode::NO_CONTENT)),
                },
                OpKind::DeleteCluster { .. } | OpKind::DeleteGroup { .. } => {
                    Ok(no_body(StatusCode::OK))
                }
            },
        }
    }
}

fn op_not_found(id: &str) -> ArmError {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "OperationNotFound",
        format!("The operation '{id}' could not be found."),
    )
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

pub(crate) fn set_header(resp: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        assert_eq!(
            parse_filter("tagName eq 'arcplan-stack' and tagValue eq 'it''s'").unwrap(),
            vec![
                Clause::Eq("tagname".into(), "arcplan-stack".into(), false),
                Clause::Eq("tagvalue".into(), "it's".into(), false),
            ]
        );
        assert_eq!(
            parse_filter("resourceType eq 'Microsoft.Kubernetes/connectedClusters'").unwrap(),
            vec![Clause::Eq(
                "resourcetype".into(),
                "Microsoft.Kubernetes/connectedClusters".into(),
                false
            )]
        );
        assert!(parse_filter("tagValue eq 'x'").is_err());
        assert!(parse_filter("foo gt 3").is_err());
        assert_eq!(
            parse_filter("startswith(tagName, 'arc')").unwrap(),
            vec![Clause::StartsWithTagName("arc".into())]
        );
    }
}
