//! Helpers the Azure kinds share: ARM errors as diagnostics, tags ("at least these"), the
//! ownership tag, locations, ids, version digests, apply progress and results.

use super::arm::{ArmError, ArmErrorKind, ArmResponse};
use super::cloud::ApiKind;
use super::context::AzureCx;
use crate::azure::STACK_TAG;
use arcplan_engine::address::Address;
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use arcplan_engine::events::Event;
use arcplan_engine::plan::{Action, Reason, ReasonCode};
use arcplan_engine::provider::{ApplyRequest, ApplyResponse, PlanResponse, ReadResponse};
use reqwest::Method;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Instant;

/// An ARM error as a diagnostic naming the resource.
pub(crate) fn diag_from(e: &ArmError, address: &Address) -> Diagnostic {
    let mut d = Diagnostic::error("azure", e.to_string()).with_address(address.to_string());
    if let Some(h) = e.hint() {
        d = d.with_hint(h);
    }
    d
}

/// The declared attributes a read was given, typed; `None` when it was given none (a saved
/// plan's data source or a pruned resource is read again without them).
pub(crate) fn declared<T: serde::de::DeserializeOwned>(
    address: &Address,
    desired: &Value,
) -> Result<Option<T>, Diagnostic> {
    if desired.is_null() {
        return Ok(None);
    }
    crate::kind::attributes(address, desired).map(Some)
}

/// A string field of a live ARM body or state (empty when absent). Declared attributes are read
/// typed, through [`crate::kind::attributes`].
pub(crate) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A location as ARM compares them (`East US` is `eastus`).
pub(crate) fn norm_location(l: &str) -> String {
    l.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The tags of a live body or state.
pub(crate) fn tags_of(v: &Value) -> Map<String, Value> {
    v.get("tags")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Desired tags missing or different in `live` (tag names compare ignoring case).
pub(crate) fn tag_diff(desired: &BTreeMap<String, String>, live: &Value) -> Vec<String> {
    let live = tags_of(live);
    desired
        .iter()
        .filter(|(k, v)| {
            live.iter()
                .find(|(lk, _)| lk.eq_ignore_ascii_case(k))
                .and_then(|(_, lv)| lv.as_str())
                != Some(v.as_str())
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// The live tags with the desired ones set (tags added by Azure Policy or people are kept).
pub(crate) fn merged_tags(desired: &BTreeMap<String, String>, live: &Value) -> Value {
    let mut t = tags_of(live);
    for (k, v) in desired {
        t.retain(|lk, _| !lk.eq_ignore_ascii_case(k));
        t.insert(k.clone(), Value::String(v.clone()));
    }
    Value::Object(t)
}

/// The stack a live resource's ownership tag names.
pub(crate) fn owner_of(live: &Value) -> Option<String> {
    tags_of(live)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(STACK_TAG))
        .and_then(|(_, v)| v.as_str().map(str::to_owned))
}

/// A short digest of a value, for versions.
pub(crate) fn digest(v: &Value) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(v.to_string().as_bytes());
    h.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// The resource group named in an ARM id (empty when none).
pub(crate) fn rg_of(id: &str) -> String {
    let parts: Vec<&str> = id.split('/').collect();
    parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("resourceGroups"))
        .and_then(|i| parts.get(i + 1))
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// A failed prune listing: a warning when the credential may not list (prune is skipped), an
/// error otherwise.
pub(crate) fn discover_error(e: &ArmError) -> Diagnostic {
    if e.status == Some(403) {
        Diagnostic::warning(
            "prune-skipped",
            format!("cannot list this stack's resources, so resources removed from the file are not planned for deletion: {e}"),
        )
        .with_hint("a role that may list the subscription's resource groups and connected clusters (Reader or above) lets arcplan prune")
    } else {
        let mut d = Diagnostic::error("azure", e.to_string());
        if let Some(h) = e.hint() {
            d = d.with_hint(h);
        }
        d
    }
}

/// Reports progress of a long apply as events.
pub(crate) fn progress<'a>(
    req: &'a ApplyRequest,
    started: Instant,
) -> impl Fn(String) + Send + Sync + 'a {
    move |message| {
        req.events.emit(Event::ApplyProgress {
            address: req.change.address.clone(),
            message,
            elapsed_seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// An apply's result as the response: the outputs are also the new state.
pub(crate) fn applied(result: Result<Option<Value>, ArmError>, address: &Address) -> ApplyResponse {
    match result {
        Ok(outputs) => ApplyResponse {
            state: outputs.clone(),
            outputs,
            diagnostics: Diagnostics::new(),
        },
        Err(e) => ApplyResponse {
            diagnostics: diag_from(&e, address).into(),
            ..Default::default()
        },
    }
}

/// The plan of a resource that belongs to another stack (`owner`): nothing, and the error
/// saying so. `what` names the kind, like `custom location`.
pub(crate) fn owned_by_another_stack(address: &Address, what: &str, owner: &str) -> PlanResponse {
    PlanResponse {
        diagnostics: Diagnostic::error(
            "owned-by-another-stack",
            format!("{what} {} belongs to stack `{owner}`", address.name),
        )
        .with_address(address.to_string())
        .with_hint(format!(
            "rename the {what} in this file, or manage it from stack `{owner}`"
        ))
        .into(),
        ..Default::default()
    }
}

/// The values of protected settings (`None`: none declared), read from their references.
/// Errors name the setting, `what` (like `extension monitor`) and the reference, never a value.
pub(crate) fn read_protected(
    cx: &AzureCx,
    refs: &BTreeMap<String, arcplan_config::SecretRef>,
    what: &str,
    address: &Address,
) -> Result<Option<BTreeMap<String, String>>, Diagnostic> {
    if refs.is_empty() {
        return Ok(None);
    }
    let mut out = BTreeMap::new();
    for (k, r) in refs {
        let v = cx.settings.secrets.read(r).map_err(|e| {
            Diagnostic::error(
                "secret-missing",
                format!("protected setting `{k}` of {what}: {}", e.message),
            )
            .with_address(address.to_string())
            .with_hint(e.hint)
        })?;
        out.insert(k.clone(), v);
    }
    Ok(Some(out))
}

/// The plan of a destroy: an absent resource is nothing to do, one this stack owns is deleted
/// (`reason` says what deleting it does), any other is left with the warning `not_owned` gives.
pub(crate) fn plan_destroy(
    prior: Option<&Value>,
    ours: bool,
    reason: &str,
    not_owned: impl FnOnce() -> Diagnostic,
) -> PlanResponse {
    let mut resp = PlanResponse::default();
    resp.action = Some(match (prior, ours) {
        (None, _) => Action::NoOp,
        (Some(_), true) => {
            resp.reason = Some(Reason::new(ReasonCode::DeleteBecauseDestroy, reason));
            Action::Delete
        }
        (Some(_), false) => {
            resp.diagnostics.push(not_owned());
            Action::NoOp
        }
    });
    resp
}

/// Reads one resource by GET of `path`: absent on 404, else its `state` with a version
/// digest of the `versioned` state keys (what a saved plan's staleness check compares).
pub(crate) async fn read_by_get(
    cx: &AzureCx,
    address: &Address,
    path: &str,
    api: ApiKind,
    state: fn(&Value) -> Value,
    versioned: &[&str],
) -> ReadResponse {
    let mut r = ReadResponse::default();
    match cx
        .arm
        .send_allow_404(&cx.req(Method::GET, path, api, None))
        .await
    {
        Ok(resp) if resp.status == 404 => {}
        Ok(resp) => {
            let st = state(&resp.body);
            let parts: Vec<&Value> = versioned.iter().map(|k| &st[*k]).collect();
            r.version = Some(digest(&serde_json::json!(parts)));
            r.state = Some(st);
        }
        Err(e) => r.diagnostics.push(diag_from(&e, address)),
    }
    r
}

/// Sends a write (`PUT`, `PATCH`) of `path`, waits for its long-running operation (`what`, like
/// `updating connected cluster c1`, names it in progress and errors) and reads the resource
/// back.
pub(crate) async fn write_and_read(
    cx: &AzureCx,
    req: &ApplyRequest,
    write: (Method, Value),
    path: &str,
    api: ApiKind,
    what: &str,
    started: Instant,
) -> Result<ArmResponse, ArmError> {
    let (method, body) = write;
    let resp = cx.arm.send(&cx.req(method, path, api, Some(body))).await?;
    cx.arm
        .wait(
            &resp,
            what,
            cx.settings.operation_timeout,
            &req.cancel,
            &progress(req, started),
        )
        .await?;
    cx.arm.send(&cx.req(Method::GET, path, api, None)).await
}

/// Deletes `path` and waits for its long-running operation (`what` names it); an absent
/// resource is already deleted.
pub(crate) async fn delete_and_wait(
    cx: &AzureCx,
    req: &ApplyRequest,
    path: &str,
    api: ApiKind,
    what: &str,
    started: Instant,
) -> Result<(), ArmError> {
    let resp = cx
        .arm
        .send_allow_404(&cx.req(Method::DELETE, path, api, None))
        .await?;
    if resp.status == 404 || resp.status == 204 {
        return Ok(());
    }
    cx.arm
        .wait(
            &resp,
            what,
            cx.settings.operation_timeout,
            &req.cancel,
            &progress(req, started),
        )
        .await?;
    Ok(())
}

/// The error of a resource read back in a failed `provisioningState` (`Failed`, `Canceled`);
/// `None` when it did not fail. `what` names the resource; `detail` is the service's reason.
pub(crate) fn provisioning_failure(
    what: &str,
    done: &ArmResponse,
    path: &str,
    detail: Option<&str>,
) -> Option<ArmError> {
    let state = done
        .body
        .pointer("/properties/provisioningState")
        .and_then(Value::as_str)
        .filter(|p| matches!(*p, "Failed" | "Canceled"))?;
    Some(ArmError {
        kind: ArmErrorKind::OperationFailed,
        status: None,
        code: "ProvisioningFailed".into(),
        message: format!(
            "{what} ended in provisioningState {state}{}",
            detail.map(|m| format!(": {m}")).unwrap_or_default()
        ),
        request: format!("GET {path}"),
        request_id: done.request_id().map(str::to_owned),
        correlation_id: String::new(),
    })
}

/// The name of the address of a subscription-level resource (a resource group, a provider
/// registration, a role check): `name` in the file's own subscription `default`, so one
/// subscription's addresses read as they always have, and `<subscription>/<name>` in another
/// (neither a GUID nor those names hold a `/`).
pub fn scoped_name(default: &str, sub: &str, name: &str) -> String {
    if sub.eq_ignore_ascii_case(default) {
        name.to_owned()
    } else {
        format!("{sub}/{name}")
    }
}

/// The subscription and the name a [`scoped_name`] holds.
pub fn unscoped_name<'a>(default: &'a str, name: &'a str) -> (&'a str, &'a str) {
    name.split_once('/').unwrap_or((default, name))
}

/// The subscription of an ARM id (`/subscriptions/<id>/...`), if it has one.
pub fn sub_of(id: &str) -> Option<&str> {
    let mut segs = id.trim_start_matches('/').split('/');
    match (segs.next(), segs.next()) {
        (Some(s), Some(sub)) if s.eq_ignore_ascii_case("subscriptions") && !sub.is_empty() => {
            Some(sub)
        }
        _ => None,
    }
}

/// Where a resource of a cluster lives, as (subscription, resource group): from its declared
/// attributes, else (a pruned resource has none) from its live id.
pub fn place_of(
    declared: Option<(&str, &str)>,
    before: Option<&Value>,
    default_sub: &str,
) -> (String, String) {
    if let Some((sub, rg)) = declared {
        return (sub.to_owned(), rg.to_owned());
    }
    let id = before.map(|b| s(b, "id")).unwrap_or_default();
    (sub_of(id).unwrap_or(default_sub).to_owned(), rg_of(id))
}

/// The ARM path of a connected cluster's child resources of `arm_type` (its extensions, its
/// Flux configurations).
pub fn cluster_children_path(
    (sub, resource_group): (&str, &str),
    cluster: &str,
    arm_type: &str,
) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{resource_group}/providers/Microsoft.Kubernetes/connectedClusters/{cluster}/providers/{arm_type}"
    )
}

/// The ARM path of a cluster's child resource at `address` (`<cluster>/<name>`): its id once
/// it exists, else built from where the cluster lives.
pub fn cluster_child_path(
    address: &Address,
    before: Option<&Value>,
    place: (&str, &str),
    arm_type: &str,
) -> String {
    if let Some(id) = before.map(|b| s(b, "id")).filter(|id| !id.is_empty()) {
        return id.to_owned();
    }
    let (cluster, name) = address.name.split_once('/').unwrap_or((&address.name, ""));
    format!("{}/{name}", cluster_children_path(place, cluster, arm_type))
}

/// The ARM path a cluster child's apply works on (an extension, a Flux configuration): its
/// live id, else built from its declared place (`(subscription, resource group)`).
pub fn child_apply_path(
    default_sub: &str,
    change: &arcplan_engine::plan::Change,
    declared: Option<(&str, &str)>,
    arm_type: &str,
) -> String {
    let before = change.before_value();
    let (sub, rg) = place_of(declared, before.as_ref(), default_sub);
    cluster_child_path(&change.address, before.as_ref(), (&sub, &rg), arm_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tags(v: Value) -> BTreeMap<String, String> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn tags_are_at_least_the_declared_ones() {
        let desired = tags(json!({"env": "lab", "arcplan-stack": "s"}));
        let live = json!({"tags": {"env": "lab", "arcplan-stack": "s", "costCenter": "42"}});
        assert!(
            tag_diff(&desired, &live).is_empty(),
            "extra live tags are not a change"
        );
        let live = json!({"tags": {"Env": "prod", "costCenter": "42"}});
        let mut diff = tag_diff(&desired, &live);
        diff.sort();
        assert_eq!(diff, vec!["arcplan-stack", "env"]);
        assert_eq!(
            merged_tags(&desired, &live),
            json!({"env": "lab", "arcplan-stack": "s", "costCenter": "42"})
        );
    }

    #[test]
    fn resource_group_from_an_id() {
        assert_eq!(
            rg_of(
                "/subscriptions/s/resourceGroups/rg-1/providers/Microsoft.Kubernetes/connectedClusters/c"
            ),
            "rg-1"
        );
        assert_eq!(rg_of("/subscriptions/s"), "");
    }
}
