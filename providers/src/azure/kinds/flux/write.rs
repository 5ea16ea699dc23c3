//! The writes of `arc.fluxConfiguration`: the request bodies (PUT for create, replace and a
//! removed kustomization; PATCH otherwise, with `null` clearing what the file no longer sets),
//! the wait for the Flux controllers' compliance after a write, and DELETE.

use super::{Attributes, flux_state};
use crate::azure::arm::ArmError;
use crate::azure::cloud::ApiKind;
use crate::azure::context::AzureCx;
use crate::azure::shared::*;
use arcplan_engine::diag::Diagnostic;
use arcplan_engine::plan::Action;
use arcplan_engine::provider::ApplyRequest;
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// `v` with the optional fields set, or (`patch`) cleared with `null`.
fn with_optional(mut v: Value, optional: Vec<(&str, Option<Value>)>, patch: bool) -> Value {
    for (k, val) in optional {
        match val {
            Some(x) => v[k] = x,
            None if patch => v[k] = Value::Null,
            None => {}
        }
    }
    v
}

/// The source in ARM's shape, under its key (`patch`: cleared optional fields as `null`).
fn source(d: &Attributes, patch: bool) -> Option<(&'static str, Value)> {
    if let Some(g) = &d.git_repository {
        let v = json!({"url": g.url, "repositoryRef": g.repository_ref});
        let optional = vec![
            (
                "syncIntervalInSeconds",
                g.sync_interval_in_seconds.map(Value::from),
            ),
            ("timeoutInSeconds", g.timeout_in_seconds.map(Value::from)),
            ("httpsUser", g.https_user.clone().map(Value::from)),
            ("sshKnownHosts", g.ssh_known_hosts.clone().map(Value::from)),
        ];
        return Some(("gitRepository", with_optional(v, optional, patch)));
    }
    if let Some(o) = &d.oci_repository {
        let v = json!({"url": o.url, "repositoryRef": o.repository_ref, "insecure": o.insecure});
        let optional = vec![
            (
                "syncIntervalInSeconds",
                o.sync_interval_in_seconds.map(Value::from),
            ),
            ("timeoutInSeconds", o.timeout_in_seconds.map(Value::from)),
        ];
        return Some(("ociRepository", with_optional(v, optional, patch)));
    }
    let b = d.bucket.as_ref()?;
    let v = json!({"url": b.url, "bucketName": b.bucket_name, "insecure": b.insecure});
    let optional = vec![
        (
            "syncIntervalInSeconds",
            b.sync_interval_in_seconds.map(Value::from),
        ),
        ("timeoutInSeconds", b.timeout_in_seconds.map(Value::from)),
        ("accessKey", b.access_key.clone().map(Value::from)),
    ];
    Some(("bucket", with_optional(v, optional, patch)))
}

/// The kustomizations in ARM's shape (`patch`: cleared optional fields as `null`).
fn kustomizations(d: &Attributes, patch: bool) -> Value {
    let mut out = Map::new();
    for (name, k) in &d.kustomizations {
        let v = json!({
            "path": k.path, "dependsOn": k.depends_on,
            "prune": k.prune, "force": k.force, "wait": k.wait,
        });
        let optional = vec![
            (
                "syncIntervalInSeconds",
                k.sync_interval_in_seconds.map(Value::from),
            ),
            ("timeoutInSeconds", k.timeout_in_seconds.map(Value::from)),
            (
                "retryIntervalInSeconds",
                k.retry_interval_in_seconds.map(Value::from),
            ),
        ];
        out.insert(name.clone(), with_optional(v, optional, patch));
    }
    Value::Object(out)
}

/// The body of a PUT (`FluxConfiguration`): every writable property; protected values only
/// when given.
pub(super) fn put_body(d: &Attributes, protected: Option<&BTreeMap<String, String>>) -> Value {
    let mut props = json!({
        "scope": d.scope,
        "namespace": d.namespace,
        "sourceKind": d.source_kind,
        "suspend": d.suspend,
        "kustomizations": kustomizations(d, false),
    });
    if let Some((key, v)) = source(d, false) {
        props[key] = v;
    }
    if let Some(p) = protected {
        props["configurationProtectedSettings"] = json!(p);
    }
    json!({ "properties": props })
}

/// The body of a PATCH (`FluxConfigurationPatch`): what the patch model takes (not the scope
/// or namespace).
pub(super) fn patch_body(d: &Attributes, protected: Option<&BTreeMap<String, String>>) -> Value {
    let mut props = json!({
        "suspend": d.suspend,
        "kustomizations": kustomizations(d, true),
    });
    if let Some((key, v)) = source(d, true) {
        props[key] = v;
    }
    if let Some(p) = protected {
        props["configurationProtectedSettings"] = json!(p);
    }
    json!({ "properties": props })
}

/// Whether an update must PUT: it removes a kustomization, which a merge patch of the spec's
/// model cannot express.
pub(super) fn removes_kustomization(d: &Attributes, before: Option<&Value>) -> bool {
    before
        .and_then(|b| b["kustomizations"].as_object())
        .is_some_and(|live| live.keys().any(|k| !d.kustomizations.contains_key(k)))
}

/// Creates, replaces or updates the configuration as planned, then waits for its compliance;
/// returns its state, an error when the write failed or Flux reports it `Non-Compliant`.
pub(super) async fn write(
    cx: &AzureCx,
    req: &ApplyRequest,
    d: &Attributes,
    protected: Option<BTreeMap<String, String>>,
    path: &str,
    started: Instant,
) -> Result<Option<Value>, Diagnostic> {
    let address = &req.change.address;
    let name = &address.name;
    let fail = |e: ArmError| diag_from(&e, address);
    let before = req.change.before_value();
    let before = before.as_ref();
    let (method, body, what) = match req.change.action {
        Action::Create | Action::Replace => {
            if req.change.action == Action::Replace {
                delete(cx, req, path, started).await.map_err(fail)?;
            }
            (Method::PUT, put_body(d, protected.as_ref()), "creating")
        }
        Action::Update if removes_kustomization(d, before) => {
            (Method::PUT, put_body(d, protected.as_ref()), "updating")
        }
        Action::Update => (Method::PATCH, patch_body(d, protected.as_ref()), "updating"),
        _ => return Ok(None),
    };
    let done = write_and_read(
        cx,
        req,
        (method, body),
        path,
        ApiKind::FluxConfigurations,
        &format!("{what} Flux configuration {name}"),
        started,
    )
    .await
    .map_err(fail)?;
    let detail = done
        .body
        .pointer("/properties/errorMessage")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty());
    if let Some(e) =
        provisioning_failure(&format!("Flux configuration {name}"), &done, path, detail)
    {
        return Err(fail(e));
    }
    let body = compliance(cx, req, path, done.body, started).await?;
    let owner = cx.settings.stack.as_str();
    Ok(Some(flux_state(&body, Some(owner))))
}

/// The `(kind, name, message)` of each status of a body in `state` (all when `None`).
fn statuses<'a>(body: &'a Value, state: Option<&str>) -> Vec<(&'a str, &'a str, String)> {
    body.pointer("/properties/statuses")
        .and_then(Value::as_array)
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|st| state.is_none_or(|want| s(st, "complianceState") == want))
        .map(|st| {
            let message = st["statusConditions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| s(c, "message").trim())
                .filter(|m| !m.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            (s(st, "kind"), s(st, "name"), message)
        })
        .collect()
}

/// Polls the configuration until Flux reports its compliance (not `Pending`), within the
/// operation timeout; `Non-Compliant` is the apply's error, carrying the statuses' messages.
async fn compliance(
    cx: &AzureCx,
    req: &ApplyRequest,
    path: &str,
    mut body: Value,
    started: Instant,
) -> Result<Value, Diagnostic> {
    let address = &req.change.address;
    let say = progress(req, started);
    let timeout = cx.settings.operation_timeout;
    let mut delay = Duration::from_millis(250);
    let state = |b: &Value| {
        b.pointer("/properties/complianceState")
            .and_then(Value::as_str)
            .unwrap_or("Unknown")
            .to_owned()
    };
    while state(&body) == "Pending" {
        if started.elapsed() > timeout {
            return Err(Diagnostic::error(
                "flux-not-reconciled",
                format!(
                    "Flux configuration {} was still Pending after {}: the Flux controllers did not report its compliance",
                    address.name,
                    humantime::format_duration(Duration::from_secs(timeout.as_secs()))
                ),
            )
            .with_address(address.to_string())
            .with_hint("check the flux extension's pods (kubectl -n flux-system get pods) and `az k8s-configuration flux show`, then apply again; a slow first sync may need a longer operation timeout"));
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = req.cancel.cancelled() => {
                return Err(Diagnostic::error(
                    "interrupted",
                    format!("stopped waiting for the compliance of Flux configuration {}", address.name),
                )
                .with_address(address.to_string())
                .with_hint("apply again to wait for it"));
            }
        }
        delay = (delay * 2).min(Duration::from_secs(5));
        body = cx
            .arm
            .send(&cx.req(Method::GET, path, ApiKind::FluxConfigurations, None))
            .await
            .map_err(|e| diag_from(&e, address))?
            .body;
    }
    match state(&body).as_str() {
        "Compliant" => {
            for (kind, name, message) in statuses(&body, None) {
                if kind == "Kustomization" {
                    say(format!("kustomization {name}: Compliant ({message})"));
                }
            }
            Ok(body)
        }
        "Non-Compliant" => {
            let failing = statuses(&body, Some("Non-Compliant"))
                .into_iter()
                .map(|(kind, name, message)| format!("{kind} {name}: {message}"))
                .collect::<Vec<_>>();
            Err(Diagnostic::error(
                "flux-non-compliant",
                format!(
                    "Flux configuration {} was written but is Non-Compliant: {}",
                    address.name,
                    if failing.is_empty() {
                        "no status says why".to_owned()
                    } else {
                        failing.join(" | ")
                    }
                ),
            )
            .with_address(address.to_string())
            .with_hint("fix what the statuses name (the repository URL, its credentials, the reference or a kustomization's path), then apply again"))
        }
        other => {
            say(format!("complianceState {other}"));
            Ok(body)
        }
    }
}

pub(super) async fn delete(
    cx: &AzureCx,
    req: &ApplyRequest,
    path: &str,
    started: Instant,
) -> Result<(), ArmError> {
    let what = format!("deleting Flux configuration {}", req.change.address.name);
    delete_and_wait(cx, req, path, ApiKind::FluxConfigurations, &what, started).await
}
