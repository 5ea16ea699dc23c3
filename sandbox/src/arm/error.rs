//! ARM error responses: `{"error":{"code","message","target"?}}` with the status code and extra
//! headers ARM sends.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered in ARM's shape.
#[derive(Debug, Clone)]
pub struct ArmError {
    /// HTTP status.
    pub status: StatusCode,
    /// ARM error code (PascalCase).
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Optional `target` (the offending property).
    pub target: Option<String>,
    /// Extra response headers (e.g. `WWW-Authenticate`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ArmError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            target: None,
            headers: Vec::new(),
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 400 `InvalidRequestContent` naming `target`.
    pub fn invalid_content(target: &str, message: impl Into<String>) -> Self {
        let mut e = Self::bad_request("InvalidRequestContent", message);
        e.target = Some(target.to_string());
        e
    }

    /// 409 with `code`.
    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 404 `ResourceGroupNotFound`.
    pub fn rg_not_found(rg: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            format!("Resource group '{rg}' could not be found."),
        )
    }

    /// 404 `ResourceNotFound` for `{type}/{name}` in `rg`.
    pub fn resource_not_found(rtype: &str, name: &str, rg: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource '{rtype}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        )
    }

    /// Adds a header.
    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut inner = json!({"code": self.code, "message": self.message});
        if let Some(t) = &self.target {
            inner["target"] = json!(t);
        }
        json!({ "error": inner })
    }
}

impl IntoResponse for ArmError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.body().to_string()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        resp.headers_mut()
            .insert("x-ms-failure-cause", HeaderValue::from_static("gateway"));
        for (k, v) in self.headers {
            resp.headers_mut().insert(k, v);
        }
        resp
    }
}
