//! HTTP layer: authentication, routing of API paths, query parameters, content negotiation,
//! list/watch, and the mapping of store results to responses.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::resources::{self, ResourceDef};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Ctx, DeleteOpts};
use super::{ADMIN_USER, Caller, KubeApi, NO_RIGHTS_USER, WatchEvent, openapi, table};

/// Largest request body accepted (the apiserver's limit is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

fn json_response(code: u16, v: &Value) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    let mut resp = (code, serde_json::to_vec(v).unwrap_or_default()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn text_response(code: u16, text: &'static str) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    let mut resp = (code, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

fn truthy(q: &HashMap<String, String>, k: &str) -> bool {
    q.get(k).is_some_and(|v| v == "true" || v == "1")
}

/// A parsed resource URL.
struct Target {
    def: &'static ResourceDef,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
    watch_path: bool,
}

fn parse_target(path: &str) -> Option<Result<Target, ApiError>> {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let (group, version, mut rest): (&str, &str, &[String]) = match segs.first().map(String::as_str)
    {
        Some("api") if segs.len() >= 3 && segs[1] == "v1" => ("", "v1", &segs[2..]),
        Some("apis") if segs.len() >= 4 => (&segs[1], &segs[2], &segs[3..]),
        _ => return None,
    };
    let mut watch_path = false;
    if rest.first().map(String::as_str) == Some("watch") {
        watch_path = true;
        rest = &rest[1..];
    }
    let (ns, res, name, sub) = if rest.len() >= 3
        && rest[0] == "namespaces"
        && !matches!(rest[2].as_str(), "status" | "finalize")
    {
        let r = &rest[2..];
        (
            Some(rest[1].clone()),
            r[0].clone(),
            r.get(1).cloned(),
            r.get(2).cloned(),
        )
    } else if !rest.is_empty() {
        (
            None,
            rest[0].clone(),
            rest.get(1).cloned(),
            rest.get(2).cloned(),
        )
    } else {
        return Some(Err(ApiError::no_route()));
    };
    let too_long = if ns.is_some() {
        rest.len() > 5
    } else {
        rest.len() > 3
    };
    let Some(def) = resources::by_plural(group, version, &res) else {
        return Some(Err(ApiError::no_route()));
    };
    if too_long
        || (def.namespaced && ns.is_none() && name.is_some())
        || (!def.namespaced && ns.is_some())
    {
        return Some(Err(ApiError::no_route()));
    }
    if let Some(s) = &sub {
        let ok = (s == "status" && def.has_status) || (s == "finalize" && def.kind == "Namespace");
        if !ok {
            return Some(Err(ApiError::no_route()));
        }
    }
    Some(Ok(Target {
        def,
        ns,
        name,
        sub,
        watch_path,
    }))
}

fn verb_of(method: &Method, t: &Target, q: &HashMap<String, String>) -> &'static str {
    match *method {
        Method::GET | Method::HEAD if t.watch_path || truthy(q, "watch") => "watch",
        Method::GET | Method::HEAD if t.name.is_some() => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if t.name.is_some() => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

fn user_agent_manager(headers: &HeaderMap) -> String {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let prefix = ua.split('/').next().unwrap_or_default();
    prefix.chars().take(128).collect()
}

/// The single entry point of the router.
pub async fn handle(State(api): State<KubeApi>, req: Request) -> Response {
    api.shared
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(caller) = token.and_then(|t| api.caller(t)) else {
        return ApiError::unauthorized().into_response();
    };
    let path = parts.uri.path().to_string();
    let q = parse_query(parts.uri.query());
    let user = match caller {
        Caller::Admin => ADMIN_USER,
        Caller::NoRights => NO_RIGHTS_USER,
    };
    if (parts.method == Method::GET || parts.method == Method::HEAD)
        && let Some(resp) = discovery(&api, &path)
    {
        return resp;
    }
    let target = match parse_target(&path) {
        None => {
            if caller == Caller::NoRights {
                let verb = parts.method.as_str().to_ascii_lowercase();
                return ApiError::forbidden_path(user, &verb, &path).into_response();
            }
            if path.starts_with("/api/")
                || path.starts_with("/apis/")
                || path == "/api"
                || path == "/apis"
            {
                return ApiError::no_route().into_response();
            }
            return text_response(404, "404 page not found\n");
        }
        Some(Err(e)) => return e.into_response(),
        Some(Ok(t)) => t,
    };
    let verb = verb_of(&parts.method, &target, &q);
    let allowed = caller == Caller::Admin
        || (target.def.plural == "selfsubjectaccessreviews" && verb == "create");
    if !allowed {
        return ApiError::forbidden_rbac(
            user,
            verb,
            target.def.group,
            target.def.plural,
            target.sub.as_deref(),
            target.ns.as_deref(),
            target.name.as_deref(),
        )
        .into_response();
    }
    if verb == "unknown" || (target.sub.is_none() && !target.def.verbs.contains(&verb)) {
        return ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )
        .into_response();
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError {
                code: 413,
                reason: "RequestEntityTooLarge",
                ..ApiError::bad_request("the request body is too large")
            }
            .into_response();
        }
    };
    match serve_resource(
        &api,
        caller,
        &parts.method,
        &parts.headers,
        &q,
        &target,
        verb,
        body,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn discovery(api: &KubeApi, path: &str) -> Option<Response> {
    let p = path.trim_end_matches('/');
    let resp = match p {
        "/version" => json_response(200, &api.shared.opts.version.to_json()),
        "/api" => json_response(
            200,
            &resources::api_versions(&api.shared.opts.server_address),
        ),
        "/apis" => json_response(200, &resources::api_group_list()),
        "/healthz" | "/livez" | "/readyz" => text_response(200, "ok"),
        "/openapi/v2" | "/swagger.json" => {
            return Some(text_response(404, "404 page not found\n"));
        }
        "/openapi/v3" => json_response(200, &openapi::index(&api.shared.opts.version.git_version)),
        _ => {
            let segs: Vec<&str> = p.trim_start_matches('/').split('/').collect();
            match segs.as_slice() {
                ["api", "v1"] => json_response(200, &resources::resource_list("", "v1")?),
                ["apis", g] => {
                    let (_, v) = resources::GROUPS.iter().find(|(name, _)| name == g)?;
                    let mut doc = resources::api_group(g, v);
                    doc["kind"] = json!("APIGroup");
                    doc["apiVersion"] = json!("v1");
                    json_response(200, &doc)
                }
                ["apis", g, v] => json_response(200, &resources::resource_list(g, v)?),
                ["openapi", "v3", "api", v] => json_response(
                    200,
                    &openapi::document("", v, &api.shared.opts.version.git_version)?,
                ),
                ["openapi", "v3", "apis", g, v] => json_response(
                    200,
                    &openapi::document(g, v, &api.shared.opts.version.git_version)?,
                ),
                _ => return None,
            }
        }
    };
    Some(resp)
}

fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = ct.split(';').next().unwrap_or_default().trim();
    let v = match media {
        "application/json" | "" | "*/*" => serde_json::from_slice::<Value>(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            super::store::parse_yaml_or_json(body)?
        }
        other => {
            return Err(ApiError {
                message: format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml; got {other}"
                ),
                ..ApiError::unsupported_media_type(other)
            });
        }
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "couldn't get version/kind; json parse error: expected an object",
        ));
    }
    Ok(v)
}

fn dry_run(q: &HashMap<String, String>) -> Result<bool, ApiError> {
    match q.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::invalid(
            "meta.k8s.io",
            "CreateOptions",
            "",
            vec![super::status::Cause {
                reason: "FieldValueNotSupported".into(),
                message: format!("Unsupported value: \"{other}\": supported values: \"All\""),
                field: "dryRun".into(),
            }],
        )),
    }
}

fn list_kind_name(def: &ResourceDef) -> String {
    format!("{}List", def.kind)
}

fn strip_type_meta(v: &Value) -> Value {
    let mut o = v.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    o
}

#[allow(clippy::too_many_arguments)]
async fn serve_resource(
    api: &KubeApi,
    caller: Caller,
    method: &Method,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    t: &Target,
    verb: &str,
    body: Bytes,
) -> Result<Response, ApiError> {
    let def = t.def;
    let ns = t.ns.clone().unwrap_or_default();
    let manager = match q.get("fieldManager") {
        Some(m) if m.chars().count() > 128 => {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                vec![super::status::Cause {
                    reason: "FieldValueTooLong".into(),
                    message: "Too long: may not be more than 128 bytes".into(),
                    field: "fieldManager".into(),
                }],
            ));
        }
        Some(m) => m.clone(),
        None => user_agent_manager(headers),
    };
    let ctx = Ctx {
        manager,
        dry_run: dry_run(q)?,
        subresource: t.sub.clone().unwrap_or_default(),
        keep_status: false,
    };
    match verb {
        "get" => {
            let name = t.name.clone().unwrap_or_default();
            let obj = api
                .lock()
                .get(def, &ns, &name)
                .cloned()
                .ok_or_else(|| ApiError::not_found(def.group, def.plural, &name))?;
            if wants_table(headers) && t.sub.is_none() {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let include = q
                    .get("includeObject")
                    .map(String::as_str)
                    .unwrap_or("Metadata");
                return Ok(json_response(
                    200,
                    &table::table(def, &[&obj], &rv, include, None),
                ));
            }
            Ok(json_response(200, &obj))
        }
        "list" => list(api, headers, q, t),
        "watch" => watch(api, q, t).await,
        "create" => {
            if t.name.is_some() {
                return Err(ApiError::method_not_allowed(
                    "the server does not allow this method on the requested resource",
                ));
            }
            let obj = parse_body(headers, &body)?;
            if def.virtual_only {
                return Ok(json_response(201, &access_review(caller, obj)));
            }
            let (out, events) = api.lock().create(def, &ns, obj, &ctx)?;
            api.publish(events);
            Ok(json_response(201, &out))
        }
        "update" => {
            let name = t.name.clone().unwrap_or_default();
            let mut obj = parse_body(headers, &body)?;
            if t.sub.as_deref() == Some("finalize") {
                // namespaces/{name}/finalize: only spec.finalizers is taken.
                let cur = api.lock().get(def, "", &name).cloned();
                let Some(mut cur) = cur else {
                    return Err(ApiError::not_found(def.group, def.plural, &name));
                };
                cur["spec"]["finalizers"] = obj
                    .pointer("/spec/finalizers")
                    .cloned()
                    .unwrap_or(json!([]));
                if let Some(rv) = obj.pointer("/metadata/resourceVersion").cloned() {
                    cur["metadata"]["resourceVersion"] = rv;
                }
                obj = cur;
                if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("managedFields");
                }
            }
            let (out, events) = api.lock().replace(def, &ns, &name, obj, &ctx)?;
            api.publish(events);
            Ok(json_response(200, &out))
        }
        "patch" => {
            let name = t.name.clone().unwrap_or_default();
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let media = ct.split(';').next().unwrap_or_default().trim().to_string();
            let is_apply = media == "application/apply-patch+yaml";
            let force = match q.get("force").map(String::as_str) {
                None => false,
                Some("true") | Some("1") => true,
                Some("false") | Some("0") | Some("") => false,
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "invalid boolean value for force: {other}"
                    )));
                }
            };
            if is_apply && !q.contains_key("fieldManager") {
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "PatchOptions",
                    "",
                    vec![super::status::Cause {
                        reason: "FieldValueRequired".into(),
                        message: "Required value: is required for apply patch".into(),
                        field: "fieldManager".into(),
                    }],
                ));
            }
            if !is_apply && q.contains_key("force") {
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "PatchOptions",
                    "",
                    vec![super::status::Cause {
                        reason: "FieldValueForbidden".into(),
                        message: "Forbidden: may not be specified for non-apply patch".into(),
                        field: "force".into(),
                    }],
                ));
            }
            if !matches!(
                media.as_str(),
                "application/apply-patch+yaml"
                    | "application/json-patch+json"
                    | "application/merge-patch+json"
                    | "application/strategic-merge-patch+json"
            ) {
                return Err(ApiError::unsupported_media_type(&media));
            }
            let (out, events, created) = api
                .lock()
                .patch(def, &ns, &name, &media, &body, force, &ctx)?;
            api.publish(events);
            Ok(json_response(if created { 201 } else { 200 }, &out))
        }
        "delete" => {
            let name = t.name.clone().unwrap_or_default();
            let opts = delete_opts(q, &body)?;
            let (obj, events) = api.lock().delete(def, &ns, &name, &opts)?;
            api.publish(events);
            if matches!(def.kind, "Namespace" | "Pod" | "Service")
                || obj.pointer("/metadata/deletionTimestamp").is_some()
            {
                return Ok(json_response(200, &obj));
            }
            let mut details = serde_json::Map::new();
            details.insert("name".into(), json!(name));
            if !def.group.is_empty() {
                details.insert("group".into(), json!(def.group));
            }
            details.insert("kind".into(), json!(def.plural));
            if let Some(uid) = obj.pointer("/metadata/uid") {
                details.insert("uid".into(), uid.clone());
            }
            Ok(json_response(
                200,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
            ))
        }
        "deletecollection" => {
            let opts = delete_opts(q, &body)?;
            let (labels, fields_sel) = selectors(q, def)?;
            let mut store = api.lock();
            let names: Vec<(String, String)> = store
                .list(def, t.ns.as_deref())
                .into_iter()
                .filter(|o| labels.matches(o) && fields_sel.matches(o))
                .map(|o| {
                    (
                        o.pointer("/metadata/namespace")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        o.pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect();
            let mut items = Vec::new();
            let mut all_events = Vec::new();
            for (ons, name) in names {
                if let Ok((obj, mut evs)) = store.delete(def, &ons, &name, &opts) {
                    items.push(strip_type_meta(&obj));
                    all_events.append(&mut evs);
                }
            }
            let rv = store.rv.to_string();
            drop(store);
            api.publish(all_events);
            Ok(json_response(
                200,
                &json!({"kind": list_kind_name(def), "apiVersion": def.api_version(), "metadata": {"resourceVersion": rv}, "items": items}),
            ))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        ))),
    }
}

fn delete_opts(q: &HashMap<String, String>, body: &Bytes) -> Result<DeleteOpts, ApiError> {
    let mut opts = DeleteOpts {
        propagation: q.get("propagationPolicy").cloned(),
        dry_run: dry_run(q)?,
        ..DeleteOpts::default()
    };
    if !body.is_empty() {
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?;
        if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
            opts.propagation = Some(p.to_string());
        }
        if v.get("orphanDependents") == Some(&json!(true)) {
            opts.propagation = Some("Orphan".into());
        }
        opts.uid = v
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        opts.resource_version = v
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        if v.get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "All"))
        {
            opts.dry_run = true;
        }
    }
    if let Some(p) = &opts.propagation
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
        )));
    }
    Ok(opts)
}

fn selectors(
    q: &HashMap<String, String>,
    def: &ResourceDef,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(
        q.get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )?;
    let fields = FieldSelector::parse(
        q.get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
        def.kind,
    )?;
    Ok((labels, fields))
}

fn list(
    api: &KubeApi,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    t: &Target,
) -> Result<Response, ApiError> {
    let def = t.def;
    let (labels, fields_sel) = selectors(q, def)?;
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?,
        None => 0,
    };
    let start_after: Option<(String, String)> = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
            let Some(raw) = raw else {
                return Err(ApiError::bad_request(
                    "continue key is not valid: illegal base64 data",
                ));
            };
            Some((
                raw.get("ns")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                raw.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            ))
        }
        None => None,
    };
    let store = api.lock();
    let rv = store.rv.to_string();
    let key_of = |o: &Value| {
        (
            o.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            o.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        )
    };
    let matching: Vec<&Value> = store
        .list(def, t.ns.as_deref())
        .into_iter()
        .filter(|o| labels.matches(o) && fields_sel.matches(o))
        .filter(|o| start_after.as_ref().is_none_or(|s| key_of(o) > *s))
        .collect();
    let (page, remaining): (Vec<&Value>, usize) = if limit > 0 && matching.len() > limit {
        (matching[..limit].to_vec(), matching.len() - limit)
    } else {
        (matching, 0)
    };
    let cont = if remaining > 0 {
        page.last().map(|o| {
            let (ns, name) = key_of(o);
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
                serde_json::to_vec(
                    &json!({"v": "meta.k8s.io/v1", "rv": rv, "ns": ns, "name": name}),
                )
                .unwrap_or_default(),
            )
        })
    } else {
        None
    };
    if wants_table(headers) {
        let include = q
            .get("includeObject")
            .map(String::as_str)
            .unwrap_or("Metadata");
        return Ok(json_response(
            200,
            &table::table(def, &page, &rv, include, cont.as_deref()),
        ));
    }
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = &cont {
        meta["continue"] = json!(c);
        meta["remainingItemCount"] = json!(remaining);
    }
    let items: Vec<Value> = page.iter().map(|o| strip_type_meta(o)).collect();
    Ok(json_response(
        200,
        &json!({"kind": list_kind_name(def), "apiVersion": def.api_version(), "metadata": meta, "items": items}),
    ))
}

fn access_review(caller: Caller, mut obj: Value) -> Value {
    obj["apiVersion"] = json!("authorization.k8s.io/v1");
    obj["kind"] = json!("SelfSubjectAccessReview");
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]["creationTimestamp"] = Value::Null;
    obj["status"] = match caller {
        Caller::Admin => json!({
            "allowed": true,
            "reason": "RBAC: allowed by ClusterRoleBinding \"cluster-admin\" of ClusterRole \"cluster-admin\" to Group \"system:masters\""
        }),
        Caller::NoRights => json!({"allowed": false}),
    };
    obj
}

struct WatchFilter {
    group: String,
    plural: String,
    ns: Option<String>,
    name: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl WatchFilter {
    fn matches(&self, e: &WatchEvent) -> bool {
        e.group == self.group
            && e.plural == self.plural
            && self.ns.as_ref().is_none_or(|n| *n == e.namespace)
            && self.name.as_ref().is_none_or(|n| {
                e.object.pointer("/metadata/name").and_then(Value::as_str) == Some(n.as_str())
            })
            && self.labels.matches(&e.object)
            && self.fields.matches(&e.object)
    }
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

async fn watch(
    api: &KubeApi,
    q: &HashMap<String, String>,
    t: &Target,
) -> Result<Response, ApiError> {
    let def = t.def;
    let (labels, fields_sel) = selectors(q, def)?;
    let filter = WatchFilter {
        group: def.group.to_string(),
        plural: def.plural.to_string(),
        ns: t.ns.clone(),
        name: t.name.clone(),
        labels,
        fields: fields_sel,
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1800)
        .min(3600);
    let requested_rv = q.get("resourceVersion").cloned().unwrap_or_default();
    let rx = api.shared.events.subscribe();
    let mut initial: Vec<Bytes> = Vec::new();
    let last_rv;
    {
        let store = api.lock();
        last_rv = store.rv;
        if requested_rv.is_empty() || requested_rv == "0" {
            for o in store.list(def, t.ns.as_deref()) {
                let e = WatchEvent {
                    rv: 0,
                    kind: "ADDED",
                    group: def.group.to_string(),
                    plural: def.plural.to_string(),
                    namespace: o
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    object: o.clone(),
                };
                if filter.matches(&e) {
                    initial.push(event_line("ADDED", o));
                }
            }
        } else {
            let rv: u64 = requested_rv.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid resource version: {requested_rv}"))
            })?;
            match store.events_since(rv) {
                Some(evs) => {
                    for e in evs.iter().filter(|e| filter.matches(e)) {
                        initial.push(event_line(e.kind, &e.object));
                    }
                }
                None => {
                    let status =
                        ApiError::gone(format!("too old resource version: {rv} ({})", store.rv))
                            .to_status();
                    initial.push(event_line("ERROR", &status));
                    let body = Body::from_stream(futures::stream::iter(
                        initial.into_iter().map(Ok::<_, Infallible>),
                    ));
                    return Ok(stream_response(body));
                }
            }
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let init = futures::stream::iter(initial.into_iter().map(Ok::<_, Infallible>));
    let live = futures::stream::unfold(
        (rx, filter, last_rv),
        move |(mut rx, filter, mut last_rv)| async move {
            loop {
                let next = tokio::time::timeout_at(deadline, rx.recv()).await;
                match next {
                    Ok(Ok(e)) => {
                        if e.rv <= last_rv || !filter.matches(&e) {
                            continue;
                        }
                        last_rv = e.rv;
                        let line = event_line(e.kind, &e.object);
                        return Some((Ok::<_, Infallible>(line), (rx, filter, last_rv)));
                    }
                    // Timeout, lagging behind (the client re-lists) or the server going away.
                    _ => return None,
                }
            }
        },
    );
    use futures::StreamExt;
    Ok(stream_response(Body::from_stream(init.chain(live))))
}

fn stream_response(body: Body) -> Response {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache, private"),
    );
    resp
}
