//! The in-cluster ownership record: ConfigMap `azure-clusterconfig` in `azure-arc`, whose
//! `AZURE_SUBSCRIPTION_ID`, `AZURE_RESOURCE_GROUP` and `AZURE_RESOURCE_NAME` say which Azure Arc
//! resource the cluster's agents belong to (the record `az connectedk8s` reads).
//!
//! This module classifies a live record against the desired one (not onboarded, ours, someone
//! else's) and words the conflict. It does no I/O and never overwrites a foreign record: a
//! conflict is an error the plan reports before anything changes.

use arcplan_engine::diag::Diagnostic;
use serde_json::{Map, Value};

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
