//! The writes of `arc.extension`: the request bodies (arcplan's own settings included,
//! protected values only when given), PUT and PATCH as long-running operations ending in the
//! extension's state or its failure, and DELETE.

use super::Attributes;
use crate::azure::arm::ArmError;
use crate::azure::cloud::ApiKind;
use crate::azure::context::AzureCx;
use crate::azure::shared::*;
use arcplan_config::conventions::{
    EXTENSION_DIGEST_SETTING, EXTENSION_OWNER_SETTING, EXTENSIONS_TAG,
};
use arcplan_engine::plan::Action;
use arcplan_engine::provider::ApplyRequest;
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Instant;

/// The writable properties for these attributes (settings with arcplan's own; protected values
/// only when given).
pub(super) fn properties(
    d: &Attributes,
    stack: &str,
    protected: Option<&BTreeMap<String, String>>,
    with_create_only: bool,
) -> Value {
    let mut settings: Map<String, Value> = d
        .configuration_settings
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    settings.insert(EXTENSION_OWNER_SETTING.into(), json!(stack));
    if let Some(p) = protected {
        settings.insert(EXTENSION_DIGEST_SETTING.into(), json!(digest(&json!(p))));
    }
    let mut props = json!({
        "autoUpgradeMinorVersion": d.auto_upgrade_minor_version,
        "configurationSettings": settings,
    });
    if let Some(t) = &d.release_train {
        props["releaseTrain"] = json!(t);
    }
    if let Some(v) = &d.version {
        props["version"] = json!(v);
    }
    if let Some(p) = protected {
        props["configurationProtectedSettings"] = json!(p);
    }
    if with_create_only {
        props["extensionType"] = json!(d.extension_type);
        props["scope"] = json!(d.scope);
    }
    json!({ "properties": props })
}

/// Creates, replaces or updates the extension as planned; returns its state once the
/// operation ended, an error when it ended `Failed` (with the extension's statuses).
pub(super) async fn write(
    cx: &AzureCx,
    req: &ApplyRequest,
    d: &Attributes,
    protected: Option<BTreeMap<String, String>>,
    path: &str,
    started: Instant,
) -> Result<Option<Value>, ArmError> {
    let stack = cx.settings.stack.as_str();
    let name = &req.change.address.name;
    let (method, body, what) = match req.change.action {
        Action::Create | Action::Replace => {
            if req.change.action == Action::Replace {
                delete(cx, req, path, started).await?;
            }
            (
                Method::PUT,
                properties(d, stack, protected.as_ref(), true),
                "installing",
            )
        }
        Action::Update => {
            // Protected values are sent only when they changed (ARM keeps them otherwise).
            let before = req.change.before_value();
            let changed = before.as_ref().map(|b| &b["protectedSettingsDigest"])
                != req
                    .change
                    .after
                    .as_ref()
                    .map(|a| &a["protectedSettingsDigest"]);
            let protected = protected.as_ref().filter(|_| changed);
            let mut body = properties(d, stack, protected, false);
            if !changed {
                // Keep the recorded digest of the unchanged protected settings.
                if let Some(digest) = before
                    .as_ref()
                    .and_then(|b| b["protectedSettingsDigest"].as_str())
                {
                    body["properties"]["configurationSettings"][EXTENSION_DIGEST_SETTING] =
                        json!(digest);
                }
            }
            (Method::PATCH, body, "updating")
        }
        _ => return Ok(None),
    };
    let done = write_and_read(
        cx,
        req,
        (method, body),
        path,
        ApiKind::Extensions,
        &format!("{what} extension {name}"),
        started,
    )
    .await?;
    let state = super::extension_state(&done.body);
    let say = progress(req, started);
    if let Some(statuses) = state["statuses"].as_array() {
        for st in statuses {
            say(format!(
                "status {}: {}",
                s(st, "code"),
                s(st, "message").trim()
            ));
        }
    }
    let detail = done
        .body
        .pointer("/properties/errorInfo/message")
        .and_then(Value::as_str);
    if let Some(e) = provisioning_failure(&format!("extension {name}"), &done, path, detail) {
        return Err(e);
    }
    // Created, replaced or adopted: the cluster says this stack has extensions (prune of
    // extensions, Flux configurations and custom locations looks only there).
    mark_cluster(cx, d).await?;
    Ok(Some(state))
}

/// Tags the connected cluster `arcplan-extensions=<stack>` (once), so prune lists its
/// extensions; a stack that never installed one lists none.
async fn mark_cluster(cx: &AzureCx, d: &Attributes) -> Result<(), ArmError> {
    let stack = cx.settings.stack.as_str();
    let path = format!(
        "{}/resourceGroups/{}/providers/Microsoft.Kubernetes/connectedClusters/{}",
        cx.sub_path(&d.subscription_id),
        d.resource_group,
        d.cluster
    );
    let live = cx
        .arm
        .send(&cx.req(Method::GET, &path, ApiKind::ConnectedClusters, None))
        .await?;
    let mut tags = tags_of(&live.body);
    if tags
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case(EXTENSIONS_TAG) && v == stack)
    {
        return Ok(());
    }
    tags.retain(|k, _| !k.eq_ignore_ascii_case(EXTENSIONS_TAG));
    tags.insert(EXTENSIONS_TAG.into(), json!(stack));
    cx.arm
        .send(&cx.req(
            Method::PATCH,
            &path,
            ApiKind::ConnectedClusters,
            Some(json!({ "tags": tags })),
        ))
        .await?;
    Ok(())
}

pub(super) async fn delete(
    cx: &AzureCx,
    req: &ApplyRequest,
    path: &str,
    started: Instant,
) -> Result<(), ArmError> {
    let what = format!("uninstalling extension {}", req.change.address.name);
    delete_and_wait(cx, req, path, ApiKind::Extensions, &what, started).await
}
