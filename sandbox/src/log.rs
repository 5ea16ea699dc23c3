//! Request log of the sandbox: every request and response as one JSON line in a file, with
//! credentials redacted.
//!
//! Each line is `{ts, server, method, path, query, status, duration_ms, request_headers,
//! request_body?, response_headers, response_body?}`. Redacted: the `Authorization`, `Cookie`,
//! `Set-Cookie` and `Proxy-Authorization` headers; form fields `client_secret`, `client_assertion`,
//! `assertion`, `password`, `refresh_token`; JSON members whose name mentions a token, secret,
//! password, assertion or private key (and `protectedSettings`); the `data`/`stringData` values of
//! Kubernetes Secrets; any JWT-shaped string anywhere. A request to an emulated Kubernetes cluster
//! addressed by its `/clusters/{name}` prefix is logged with that prefix in `path`.
//!
//! Limits: bodies are logged only when they are JSON or form-encoded and at most 64 KiB; streamed
//! responses (Kubernetes watches) are logged without their body. Writes are synchronous, one line per
//! request; a failing write is ignored (the sandbox never prints).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::{Map, Value, json};

use crate::faults::Endpoint;

const MAX_LOGGED_BODY: usize = 64 * 1024;
const REDACTED: &str = "[REDACTED]";

/// An append-only JSON-lines request log. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RequestLog {
    file: Arc<Mutex<File>>,
}

impl RequestLog {
    /// Opens (creating or appending to) `path`, with mode 0600 on Unix.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        Ok(Self {
            file: Arc::new(Mutex::new(opts.open(path)?)),
        })
    }

    /// Writes one entry (a JSON object) as a line.
    pub fn write(&self, entry: &Value) {
        let mut line = entry.to_string();
        line.push('\n');
        if let Ok(mut f) = self.file.lock() {
            let _ = f.write_all(line.as_bytes());
        }
    }

    /// Wraps `router` so that every request to `endpoint` is logged.
    pub fn apply(&self, router: Router, endpoint: Endpoint) -> Router {
        router.layer(axum::middleware::from_fn_with_state(
            (self.clone(), endpoint),
            log_middleware,
        ))
    }
}

fn is_sensitive_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "assertion",
        "privatekey",
        "private_key",
        "protectedsettings",
        "credential",
    ]
    .iter()
    .any(|s| k.contains(s))
}

fn looks_like_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && s.starts_with("eyJ")
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '=')
        })
}

/// Redacts credentials inside a JSON value (see the module docs).
pub fn redact_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let is_secret = map
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k == "Secret");
            for (k, val) in map.iter_mut() {
                if is_sensitive_key(k) && !val.is_null() {
                    *val = json!(REDACTED);
                } else if is_secret && (k == "data" || k == "stringData") {
                    if let Value::Object(m) = val {
                        for x in m.values_mut() {
                            *x = json!(REDACTED);
                        }
                    }
                } else {
                    redact_json(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::String(s) if looks_like_jwt(s) => *s = REDACTED.to_string(),
        _ => {}
    }
}

fn headers_json(h: &HeaderMap) -> Value {
    let mut m = Map::new();
    for (k, v) in h {
        let name = k.as_str().to_ascii_lowercase();
        let value = if matches!(
            name.as_str(),
            "authorization" | "cookie" | "set-cookie" | "proxy-authorization"
        ) {
            REDACTED.to_string()
        } else {
            let s = String::from_utf8_lossy(v.as_bytes()).into_owned();
            if looks_like_jwt(&s) {
                REDACTED.to_string()
            } else {
                s
            }
        };
        m.insert(name, json!(value));
    }
    Value::Object(m)
}

fn body_json(headers: &HeaderMap, body: &[u8]) -> Option<Value> {
    if body.is_empty() || body.len() > MAX_LOGGED_BODY {
        return None;
    }
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ct.starts_with("application/x-www-form-urlencoded") {
        let mut m = Map::new();
        for (k, v) in form_urlencoded::parse(body) {
            let val = if is_sensitive_key(&k) || looks_like_jwt(&v) {
                REDACTED.to_string()
            } else {
                v.into_owned()
            };
            m.insert(k.into_owned(), json!(val));
        }
        return Some(Value::Object(m));
    }
    let mut v: Value = serde_json::from_slice(body).ok()?;
    redact_json(&mut v);
    Some(v)
}

/// Redacts credentials in a URL query string.
fn redact_query(q: &str) -> String {
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| {
            let v = if is_sensitive_key(&k) || looks_like_jwt(&v) {
                REDACTED.into()
            } else {
                v
            };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn log_middleware(
    State((log, endpoint)): State<(RequestLog, Endpoint)>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let ts = crate::arm_time_now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(redact_query);
    let req_headers = req.headers().clone();
    let (parts, body) = req.into_parts();
    let req_bytes: Bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let req_body = body_json(&req_headers, &req_bytes);
    let req = Request::from_parts(parts, Body::from(req_bytes));
    let resp = next.run(req).await;
    let dropped = resp
        .extensions()
        .get::<crate::tls::DropConnection>()
        .is_some();
    let status = resp.status().as_u16();
    let resp_headers = resp.headers().clone();
    let exact = http_body::Body::size_hint(resp.body()).exact();
    let (resp, resp_body) = match exact {
        Some(n) if n as usize <= MAX_LOGGED_BODY => {
            let (parts, body) = resp.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let logged = body_json(&resp_headers, &bytes);
            (Response::from_parts(parts, Body::from(bytes)), logged)
        }
        _ => (resp, None),
    };
    let mut entry = json!({
        "ts": ts,
        "server": endpoint.name(),
        "method": method,
        "path": path,
        "status": if dropped { Value::Null } else { json!(status) },
        "dropped": dropped,
        "duration_ms": started.elapsed().as_secs_f64() * 1000.0,
        "request_headers": headers_json(&req_headers),
        "response_headers": headers_json(&resp_headers),
    });
    if let Some(q) = query {
        entry["query"] = json!(q);
    }
    if let Some(b) = req_body {
        entry["request_body"] = b;
    }
    if let Some(b) = resp_body {
        entry["response_body"] = b;
    }
    log.write(&entry);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let mut v = json!({
            "access_token": "abc",
            "kind": "Secret",
            "data": {"privateKey": "LS0t"},
            "nested": [{"client_secret": "s"}, "eyJhbGciOi.eyJzdWIiOi.c2ln"],
            "properties": {"agentPublicKeyCertificate": "MIIC"}
        });
        redact_json(&mut v);
        assert_eq!(v["access_token"], REDACTED);
        assert_eq!(v["data"]["privateKey"], REDACTED);
        assert_eq!(v["nested"][0]["client_secret"], REDACTED);
        assert_eq!(v["nested"][1], REDACTED);
        assert_eq!(v["properties"]["agentPublicKeyCertificate"], "MIIC");
        assert_eq!(
            redact_query("a=1&client_secret=x"),
            "a=1&client_secret=[REDACTED]"
        );
    }
}
