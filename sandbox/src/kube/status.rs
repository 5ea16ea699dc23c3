//! `metav1.Status` error bodies with the reasons and codes the real kube-apiserver uses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One `metav1.StatusCause`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `reason` (e.g. `FieldValueRequired`, `FieldManagerConflict`).
    pub reason: String,
    /// `message`.
    pub message: String,
    /// `field` (JSON path like `metadata.name` or `.spec.replicas`).
    pub field: String,
}

/// `metav1.StatusDetails` of a failure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    /// `details.name`.
    pub name: Option<String>,
    /// `details.group` (may be empty for the core group).
    pub group: Option<String>,
    /// `details.kind` (the resource plural, as the real server reports it).
    pub kind: Option<String>,
    /// `details.causes`.
    pub causes: Vec<Cause>,
    /// `details.retryAfterSeconds`.
    pub retry_after: Option<u64>,
}

/// A `metav1.Status` failure: the body of every non-2xx answer of the emulated API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code (also the `code` field).
    pub code: u16,
    /// `reason` (`NotFound`, `AlreadyExists`, ...). Empty for reason-less errors.
    pub reason: &'static str,
    /// Human-readable `message`.
    pub message: String,
    /// `details`.
    pub details: Box<Details>,
}

impl ApiError {
    fn base(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: Box::default(),
        }
    }

    fn with_details(mut self, group: &str, resource: &str, name: &str) -> Self {
        self.details.group = Some(group.to_string());
        self.details.kind = Some(resource.to_string());
        self.details.name = Some(name.to_string());
        self
    }

    /// `"<resource>[.<group>] \"<name>\""` as the apiserver formats qualified resources.
    fn qualified(group: &str, resource: &str) -> String {
        if group.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}.{group}")
        }
    }

    /// 404 NotFound for a named object.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let msg = format!(
            "{} \"{}\" not found",
            Self::qualified(group, resource),
            name
        );
        Self::base(404, "NotFound", msg).with_details(group, resource, name)
    }

    /// 404 NotFound for a path the server does not serve.
    pub fn no_route() -> Self {
        let mut e = Self::base(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        e.details.kind = None;
        e
    }

    /// 409 AlreadyExists.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        let msg = format!(
            "{} \"{}\" already exists",
            Self::qualified(group, resource),
            name
        );
        Self::base(409, "AlreadyExists", msg).with_details(group, resource, name)
    }

    /// 409 Conflict for a stale resourceVersion.
    pub fn conflict_stale(group: &str, resource: &str, name: &str) -> Self {
        let msg = format!(
            "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
            Self::qualified(group, resource),
            name
        );
        Self::base(409, "Conflict", msg).with_details(group, resource, name)
    }

    /// 409 Conflict with a custom message (e.g. UID precondition).
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let msg = format!(
            "Operation cannot be fulfilled on {} \"{}\": {}",
            Self::qualified(group, resource),
            name,
            why
        );
        Self::base(409, "Conflict", msg).with_details(group, resource, name)
    }

    /// 409 Conflict raised by server-side apply (`FieldManagerConflict` causes).
    pub fn apply_conflict(message: String, causes: Vec<Cause>) -> Self {
        let mut e = Self::base(409, "Conflict", message);
        e.details.causes = causes;
        e
    }

    /// 422 Invalid with field causes.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let details: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let what = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let msg = if details.len() == 1 {
            format!("{what} \"{name}\" is invalid: {}", details[0])
        } else {
            format!("{what} \"{name}\" is invalid: [{}]", details.join(", "))
        };
        let mut e = Self::base(422, "Invalid", msg);
        e.details.group = Some(group.to_string());
        e.details.kind = Some(kind.to_string());
        e.details.name = Some(name.to_string());
        e.details.causes = causes;
        e
    }

    /// 403 Forbidden with an explicit message.
    pub fn forbidden_msg(group: &str, resource: &str, name: &str, message: String) -> Self {
        Self::base(403, "Forbidden", message).with_details(group, resource, name)
    }

    /// 403 Forbidden as RBAC denies a request.
    pub fn forbidden_rbac(
        user: &str,
        verb: &str,
        group: &str,
        resource: &str,
        subresource: Option<&str>,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Self {
        let res_q = Self::qualified(group, resource);
        let subject = match name {
            Some(n) if !n.is_empty() => format!("{res_q} \"{n}\" is forbidden"),
            _ => format!("{res_q} is forbidden"),
        };
        let full_resource = match subresource {
            Some(s) => format!("{resource}/{s}"),
            None => resource.to_string(),
        };
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        let msg = format!(
            "{subject}: User \"{user}\" cannot {verb} resource \"{full_resource}\" in API group \"{group}\" {scope}"
        );
        let mut e = Self::base(403, "Forbidden", msg);
        e.details.group = Some(group.to_string());
        e.details.kind = Some(resource.to_string());
        e.details.name = name.map(str::to_string);
        e
    }

    /// 403 Forbidden for a non-resource URL.
    pub fn forbidden_path(user: &str, verb: &str, path: &str) -> Self {
        let msg = format!("forbidden: User \"{user}\" cannot {verb} path \"{path}\"");
        Self::base(403, "Forbidden", msg)
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::base(401, "Unauthorized", "Unauthorized")
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::base(400, "BadRequest", message)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::base(405, "MethodNotAllowed", message)
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::base(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got {content_type}"
            ),
        )
    }

    /// 410 Gone (expired resourceVersion on watch/list).
    pub fn gone(message: impl Into<String>) -> Self {
        Self::base(410, "Expired", message)
    }

    /// 422 with a message and no field causes (e.g. a JSON patch that cannot be applied).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::base(422, "UnprocessableEntity", message)
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::base(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// The `metav1.Status` JSON body.
    pub fn to_status(&self) -> Value {
        let mut details = serde_json::Map::new();
        for (key, val) in [
            ("name", &self.details.name),
            ("group", &self.details.group),
            ("kind", &self.details.kind),
        ] {
            if let Some(v) = val
                && !v.is_empty()
            {
                details.insert(key.into(), json!(v));
            }
        }
        if !self.details.causes.is_empty() {
            let causes: Vec<Value> = self
                .details
                .causes
                .iter()
                .map(|c| {
                    let mut m = serde_json::Map::new();
                    if !c.reason.is_empty() {
                        m.insert("reason".into(), json!(c.reason));
                    }
                    if !c.message.is_empty() {
                        m.insert("message".into(), json!(c.message));
                    }
                    if !c.field.is_empty() {
                        m.insert("field".into(), json!(c.field));
                    }
                    Value::Object(m)
                })
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(r) = self.details.retry_after {
            details.insert("retryAfterSeconds".into(), json!(r));
        }
        let mut body = serde_json::Map::new();
        body.insert("kind".into(), json!("Status"));
        body.insert("apiVersion".into(), json!("v1"));
        body.insert("metadata".into(), json!({}));
        body.insert("status".into(), json!("Failure"));
        body.insert("message".into(), json!(self.message));
        if !self.reason.is_empty() {
            body.insert("reason".into(), json!(self.reason));
        }
        if !details.is_empty() || self.reason == "NotFound" {
            body.insert("details".into(), Value::Object(details));
        }
        body.insert("code".into(), json!(self.code));
        Value::Object(body)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        let mut resp = (code, body).into_response();
        resp.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        if let Some(r) = self.details.retry_after
            && let Ok(v) = axum::http::HeaderValue::from_str(&r.to_string())
        {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        resp
    }
}
