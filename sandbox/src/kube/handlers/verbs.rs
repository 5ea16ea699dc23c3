//! The verbs on one resource: get, create, update, patch, delete, deletecollection (list and
//! watch are in `list`).

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::query::{Query, delete_opts, dry_run, selectors};
use super::{
    Target, json_response, list_kind_name, parse_body, strip_type_meta, user_agent_manager,
    wants_table,
};
use crate::kube::status::ApiError;
use crate::kube::store::Ctx;
use crate::kube::{Caller, KubeApi, table};

#[allow(clippy::too_many_arguments)]
pub(super) async fn serve_resource(
    api: &KubeApi,
    caller: Caller,
    method: &Method,
    headers: &HeaderMap,
    q: &Query,
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
                vec![crate::kube::status::Cause {
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
        "list" => super::list::list(api, headers, q, t),
        "watch" => super::list::watch(api, q, t).await,
        "create" => {
            if t.name.is_some() {
                return Err(ApiError::method_not_allowed(
                    "the server does not allow this method on the requested resource",
                ));
            }
            let obj = parse_body(headers, &body)?;
            if let Some(answer) = def.virtual_create {
                return Ok(json_response(201, &answer(caller, obj)));
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
                    vec![crate::kube::status::Cause {
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
                    vec![crate::kube::status::Cause {
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
            if def.delete_returns_object || obj.pointer("/metadata/deletionTimestamp").is_some() {
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
