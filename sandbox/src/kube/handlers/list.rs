//! list (selectors, `limit`/`continue`, Table output) and watch (from the event history, then
//! live, as newline-delimited JSON).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use super::query::{Query, selectors};
use super::{Target, json_response, list_kind_name, strip_type_meta, wants_table};
use crate::kube::selector::{FieldSelector, LabelSelector};
use crate::kube::status::ApiError;
use crate::kube::{KubeApi, WatchEvent, table};

pub(super) fn list(
    api: &KubeApi,
    headers: &HeaderMap,
    q: &Query,
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

pub(super) async fn watch(api: &KubeApi, q: &Query, t: &Target) -> Result<Response, ApiError> {
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
    let rx = api.subscribe();
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
