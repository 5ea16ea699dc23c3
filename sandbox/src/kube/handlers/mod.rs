//! HTTP layer: authentication, routing of API paths, content negotiation and discovery; the
//! verbs are served by `verbs`, list and watch by `list`, query parameters are read by `query`.

mod list;
mod query;
mod verbs;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::resources::{self, ResourceDef};
use super::status::ApiError;
use super::{ADMIN_USER, Caller, KubeApi, NO_RIGHTS_USER, openapi};
use query::{Query, decode_segment, parse_query, truthy};

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

pub(super) fn text_response(code: u16, text: &'static str) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    let mut resp = (code, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
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
        .map(decode_segment)
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
        let ok = (s == "status" && def.has_status) || (s == "finalize" && def.has_finalize);
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

fn verb_of(method: &Method, t: &Target, q: &Query) -> &'static str {
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
    let allowed = caller == Caller::Admin || target.def.public_verbs.contains(&verb);
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
    match verbs::serve_resource(
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
