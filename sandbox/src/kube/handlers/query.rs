//! Query parameters (decoded by `form_urlencoded`, as `url.ParseQuery` does) and the options
//! read from them: `dryRun`, DeleteOptions, selectors.

use std::collections::HashMap;

use axum::body::Bytes;
use serde_json::{Value, json};

use crate::kube::resources::ResourceDef;
use crate::kube::selector::{FieldSelector, LabelSelector};
use crate::kube::status::ApiError;
use crate::kube::store::DeleteOpts;

/// The decoded query parameters (the last value of a repeated key wins).
pub type Query = HashMap<String, String>;

/// Decodes a query string (`+` is a space, `%XX` a byte, invalid escapes kept as they are).
pub fn parse_query(q: Option<&str>) -> Query {
    form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// Decodes one path segment the way the query is decoded (`+` is a space, `%XX` a byte).
pub fn decode_segment(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

pub fn truthy(q: &Query, k: &str) -> bool {
    q.get(k).is_some_and(|v| v == "true" || v == "1")
}

pub fn dry_run(q: &Query) -> Result<bool, ApiError> {
    match q.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::invalid(
            "meta.k8s.io",
            "CreateOptions",
            "",
            vec![crate::kube::status::Cause {
                reason: "FieldValueNotSupported".into(),
                message: format!("Unsupported value: \"{other}\": supported values: \"All\""),
                field: "dryRun".into(),
            }],
        )),
    }
}

pub fn delete_opts(q: &Query, body: &Bytes) -> Result<DeleteOpts, ApiError> {
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

pub fn selectors(q: &Query, def: &ResourceDef) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(
        q.get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )?;
    let fields = FieldSelector::parse(
        q.get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
        def.field_selectors,
    )?;
    Ok((labels, fields))
}
