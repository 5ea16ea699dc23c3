//! Request helpers every ARM resource kind uses: allowed methods, JSON bodies, `tags`, headers.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::{ArmError, Ctx};

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

pub(crate) fn set_header(resp: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// A response without a body.
pub(crate) fn no_body(status: StatusCode) -> Response {
    status.into_response()
}
