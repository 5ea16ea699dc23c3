//! The in-cluster ownership record, and every read and write of it: ConfigMap
//! `azure-clusterconfig` in `azure-arc`, whose `AZURE_SUBSCRIPTION_ID`, `AZURE_RESOURCE_GROUP` and
//! `AZURE_RESOURCE_NAME` say which Azure Arc resource the cluster's agents belong to (the record
//! `az connectedk8s` reads), and whose annotation `arcplan.io/applied-digest` records what
//! arcplan last applied (arcplan has no state file).
//!
//! The pure part classifies a live record against the desired one (not onboarded, ours, someone
//! else's) and words the conflict; it never overwrites a foreign record: a conflict is an error
//! the plan reports before anything changes. The I/O part ([`read_record`], [`read`], [`check`],
//! [`record_applied`]) is the only code that reads or annotates the ConfigMap (the manifests
//! installer writes its data as one object of its set).
//!
//! The applied digest is the [`arcplan_engine::plan::desired_digest`] of the `k8s.arcAgents`
//! attributes of the last successful apply. `read` reports it with the ConfigMap's data (one
//! request, the one the ownership check makes anyway), and the planner calls a difference drift
//! when the configuration still has that digest.

use super::access::{Cluster, is_not_found};
use super::{CONFIG_MAP, FIELD_MANAGER, NAMESPACE};
use arcplan_engine::address::Address;
use arcplan_engine::diag::Diagnostic;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Map, Value, json};

/// The annotation holding the applied digest.
pub const APPLIED_ANNOTATION: &str = "arcplan.io/applied-digest";

/// The keys arcplan writes into the ownership ConfigMap, in order.
pub const OWNERSHIP_KEYS: [&str; 7] = [
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_RESOURCE_GROUP",
    "AZURE_RESOURCE_NAME",
    "AZURE_TENANT_ID",
    "AZURE_REGION",
    "AZURE_ARC_AUTOUPDATE",
    "AZURE_ENVIRONMENT",
];

/// The keys that identify the ARM resource.
const IDENTITY_KEYS: [&str; 3] = [
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_RESOURCE_GROUP",
    "AZURE_RESOURCE_NAME",
];

/// Who a cluster belongs to, as far as its ownership record tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// No record: the cluster is not onboarded.
    None,
    /// The record names the desired ARM resource.
    Ours,
    /// The record names another ARM resource (its id).
    Other(String),
    /// The record exists but lacks identity keys (a half-removed onboarding).
    Incomplete(Vec<String>),
}

/// The ARM id of a connected cluster.
pub fn arm_id(subscription: &str, group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Kubernetes/connectedClusters/{name}"
    )
}

fn get<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The ARM id a record (or a desired ownership map) names, if complete.
pub fn id_of(m: &Map<String, Value>) -> Option<String> {
    Some(arm_id(
        get(m, "AZURE_SUBSCRIPTION_ID")?,
        get(m, "AZURE_RESOURCE_GROUP")?,
        get(m, "AZURE_RESOURCE_NAME")?,
    ))
}

/// Classifies the live record `live` (the ConfigMap's `data`, `None` when absent) against the
/// desired ownership map. When `desired` is `None`, only the resource name `name` is compared
/// (what the onboarding key knows).
pub fn classify(
    live: Option<&Map<String, Value>>,
    desired: Option<&Map<String, Value>>,
    name: &str,
) -> Owner {
    let Some(live) = live else {
        return Owner::None;
    };
    let missing: Vec<String> = IDENTITY_KEYS
        .iter()
        .filter(|k| get(live, k).is_none())
        .map(|k| (*k).to_owned())
        .collect();
    if !missing.is_empty() {
        return Owner::Incomplete(missing);
    }
    let same = |k: &str, want: &str| get(live, k).is_some_and(|v| v.eq_ignore_ascii_case(want));
    let ours = match desired {
        Some(d) => IDENTITY_KEYS
            .iter()
            .all(|k| get(d, k).is_some_and(|want| same(k, want))),
        None => same("AZURE_RESOURCE_NAME", name),
    };
    if ours {
        Owner::Ours
    } else {
        Owner::Other(id_of(live).unwrap_or_default())
    }
}

/// The plan-time error for a cluster that belongs to someone else, or `None` when it does not.
pub fn conflict(
    owner: &Owner,
    desired: Option<&Map<String, Value>>,
    name: &str,
    cluster: &str,
    address: &str,
) -> Option<Diagnostic> {
    let wanted = desired
        .and_then(id_of)
        .unwrap_or_else(|| format!("connected cluster `{name}`"));
    match owner {
        Owner::None | Owner::Ours => None,
        Owner::Other(id) => {
            let (sub, rg, other_name) = split_id(id);
            Some(
                Diagnostic::error(
                    "k8s-ownership-conflict",
                    format!(
                        "{cluster} is already connected to Azure Arc resource {id} (ConfigMap azure-arc/azure-clusterconfig), not to {wanted} as configured; arcplan will not take it over"
                    ),
                )
                .with_address(address)
                .with_hint(format!(
                    "disconnect it first (`az connectedk8s delete --name {other_name} --resource-group {rg} --subscription {sub}`, or `arcplan destroy` of the stack that connected it), or point this cluster entry at that resource (name `{other_name}`, resourceGroup `{rg}`)"
                )),
            )
        }
        Owner::Incomplete(missing) => Some(
            Diagnostic::error(
                "k8s-ownership-incomplete",
                format!(
                    "{cluster} has an ownership record (ConfigMap azure-arc/azure-clusterconfig) without {}: an earlier onboarding was only partly removed, so arcplan cannot tell whom the agents belong to",
                    missing.join(", ")
                ),
            )
            .with_address(address)
            .with_hint("remove the leftover agents (`helm delete azure-arc --namespace azure-arc-release --no-hooks`, then `kubectl delete namespace azure-arc`) and plan again"),
        ),
    }
}

fn split_id(id: &str) -> (String, String, String) {
    let parts: Vec<&str> = id.split('/').collect();
    let at = |key: &str| {
        parts
            .iter()
            .position(|p| p.eq_ignore_ascii_case(key))
            .and_then(|i| parts.get(i + 1))
            .map(|s| (*s).to_owned())
            .unwrap_or_default()
    };
    (
        at("subscriptions"),
        at("resourceGroups"),
        at("connectedClusters"),
    )
}

/// The desired ConfigMap data: the `ownership` attribute's keys as strings (nulls left out).
pub fn desired_data(ownership: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for k in OWNERSHIP_KEYS {
        match ownership.get(k) {
            Some(Value::String(s)) => {
                out.insert(k.to_owned(), Value::String(s.clone()));
            }
            Some(Value::Null) | None => {}
            Some(v) => {
                out.insert(k.to_owned(), Value::String(v.to_string()));
            }
        }
    }
    out
}

/// The ownership ConfigMap's data and the recorded applied digest (`None`: no ConfigMap).
pub(crate) async fn read_record(
    cluster: &Cluster,
) -> Result<Option<(Map<String, Value>, Option<String>)>, Diagnostic> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let cm = api
        .get_opt(CONFIG_MAP)
        .await
        .map_err(|e| cluster.api_error(&format!("read ConfigMap {NAMESPACE}/{CONFIG_MAP}"), &e))?;
    Ok(cm.map(|c| {
        let digest = c
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(APPLIED_ANNOTATION))
            .cloned();
        let data = c
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        (data, digest)
    }))
}

/// The ownership ConfigMap's data (`None`: absent).
pub(crate) async fn read(cluster: &Cluster) -> Result<Option<Map<String, Value>>, Diagnostic> {
    Ok(read_record(cluster).await?.map(|(data, _digest)| data))
}

/// Fails when the live record `live` names another ARM resource than the desired ownership
/// (`desired`: the `ownership` attribute; `None` compares the resource name only).
pub(crate) fn check(
    cluster: &Cluster,
    live: Option<&Map<String, Value>>,
    desired: Option<&Map<String, Value>>,
    address: &Address,
) -> Result<(), Diagnostic> {
    let owner = classify(live, desired, &address.name);
    match conflict(
        &owner,
        desired,
        &address.name,
        &cluster.describe(),
        &address.to_string(),
    ) {
        Some(d) => Err(d),
        None => Ok(()),
    }
}

/// Reads the record and fails when it names another ARM resource (what every verb of both
/// kinds does first).
pub(crate) async fn read_and_check(
    cluster: &Cluster,
    desired: Option<&Map<String, Value>>,
    address: &Address,
) -> Result<(), Diagnostic> {
    let live = read(cluster).await?;
    check(cluster, live.as_ref(), desired, address)
}

/// Records `digest` after a successful apply. A cluster without the ConfigMap (an installer
/// that did not write it) keeps no record: its differences are then never called drift.
pub(crate) async fn record_applied(cluster: &Cluster, digest: &str) -> Result<(), Diagnostic> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let patch = json!({"metadata": {"annotations": {APPLIED_ANNOTATION: digest}}});
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match api.patch(CONFIG_MAP, &pp, &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(cluster.api_error(
            &format!("record the applied digest on ConfigMap {NAMESPACE}/{CONFIG_MAP}"),
            &e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn classifies_the_four_cases() {
        let desired = m(
            json!({"AZURE_SUBSCRIPTION_ID": "S", "AZURE_RESOURCE_GROUP": "rg", "AZURE_RESOURCE_NAME": "c", "AZURE_REGION": null}),
        );
        assert_eq!(classify(None, Some(&desired), "c"), Owner::None);
        let same = m(
            json!({"AZURE_SUBSCRIPTION_ID": "s", "AZURE_RESOURCE_GROUP": "RG", "AZURE_RESOURCE_NAME": "c"}),
        );
        assert_eq!(classify(Some(&same), Some(&desired), "c"), Owner::Ours);
        let other = m(
            json!({"AZURE_SUBSCRIPTION_ID": "s", "AZURE_RESOURCE_GROUP": "other", "AZURE_RESOURCE_NAME": "c"}),
        );
        let o = classify(Some(&other), Some(&desired), "c");
        assert_eq!(o, Owner::Other(arm_id("s", "other", "c")));
        // By name only, the same record looks like ours.
        assert_eq!(classify(Some(&other), None, "c"), Owner::Ours);
        assert_eq!(
            classify(Some(&other), None, "d"),
            Owner::Other(arm_id("s", "other", "c"))
        );
        let d = conflict(&o, Some(&desired), "c", "context `x`", "k8s.arcAgents.c").unwrap();
        assert!(
            d.message.contains("/resourceGroups/other/"),
            "{}",
            d.message
        );
        assert!(d.message.contains("/resourceGroups/rg/"), "{}", d.message);
        assert!(
            d.hint.unwrap().contains(
                "az connectedk8s delete --name c --resource-group other --subscription s"
            )
        );
        let partial = m(json!({"AZURE_RESOURCE_NAME": "c"}));
        assert!(matches!(
            classify(Some(&partial), Some(&desired), "c"),
            Owner::Incomplete(_)
        ));
        assert_eq!(desired_data(&desired).len(), 3);
    }
}
