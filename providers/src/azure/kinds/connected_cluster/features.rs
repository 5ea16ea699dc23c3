//! The features of a connected cluster as declared attributes with plan-time diffs: the agents'
//! desired version (with auto-upgrade off, an upgrade is a planned update, like `az connectedk8s
//! upgrade`), the OIDC issuer and workload identity, Azure RBAC, Azure Hybrid Benefit and the
//! cluster `kind`. Each is checked against the api-version of the cloud profile at plan time:
//! an older cloud gets an error naming the api-version, not a 400 at apply.

use arcplan_config::{Cluster, ClusterKind, HybridBenefit};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The declared features (flattened into the connected cluster's attributes and state).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    /// `arcAgentProfile.desiredAgentVersion`: the pinned agents' version (auto-upgrade off).
    pub desired_agent_version: Option<String>,
    /// `oidcIssuerProfile.enabled`.
    pub oidc_issuer: bool,
    /// `securityProfile.workloadIdentity.enabled`.
    pub workload_identity: bool,
    /// `aadProfile`: Azure RBAC on, with these admin groups (`None`: off).
    pub azure_rbac: Option<Vec<String>>,
    /// `azureHybridBenefit` (`None`: not declared, whatever Azure has is kept).
    pub azure_hybrid_benefit: Option<String>,
    /// The resource's `kind` (`None`: not declared).
    pub kind: Option<String>,
    /// `gateway.enabled` (`None`: not declared, whatever Azure has is kept).
    #[serde(default)]
    pub gateway: Option<bool>,
    /// `privateLinkScopeResourceId` with `privateLinkState: Enabled` (`None`: private link off).
    #[serde(default)]
    pub private_link_scope: Option<String>,
}

impl Features {
    /// The features a cluster of the configuration declares.
    pub fn of(c: &Cluster) -> Self {
        let f = &c.features;
        Features {
            desired_agent_version: (!c.agents.auto_upgrade)
                .then(|| c.agents.version.clone())
                .flatten(),
            oidc_issuer: f.oidc_issuer,
            workload_identity: f.workload_identity,
            azure_rbac: f
                .azure_rbac
                .as_ref()
                .map(|r| r.admin_group_object_ids.clone()),
            azure_hybrid_benefit: f.azure_hybrid_benefit.map(|b| {
                match b {
                    HybridBenefit::True => "True",
                    HybridBenefit::False => "False",
                    HybridBenefit::NotApplicable => "NotApplicable",
                }
                .to_owned()
            }),
            kind: c
                .kind
                .map(|ClusterKind::ProvisionedCluster| "ProvisionedCluster".to_owned()),
            gateway: f.gateway,
            private_link_scope: f.private_link.as_ref().map(|p| p.scope.clone()),
        }
    }
}

/// The features of a live ARM connected cluster, as state keys (plus the computed
/// `oidcIssuerUrl`).
pub fn state_of(b: &Value) -> Value {
    let p = b.get("properties").cloned().unwrap_or(Value::Null);
    let on = |ptr: &str| p.pointer(ptr).and_then(Value::as_bool).unwrap_or(false);
    let rbac = on("/aadProfile/enableAzureRBAC").then(|| {
        p.pointer("/aadProfile/adminGroupObjectIDs")
            .cloned()
            .unwrap_or_else(|| json!([]))
    });
    json!({
        "desiredAgentVersion": p.pointer("/arcAgentProfile/desiredAgentVersion").cloned().unwrap_or(Value::Null),
        "oidcIssuer": on("/oidcIssuerProfile/enabled"),
        "oidcIssuerUrl": p.pointer("/oidcIssuerProfile/issuerUrl").cloned().unwrap_or(Value::Null),
        "workloadIdentity": on("/securityProfile/workloadIdentity/enabled"),
        "azureRbac": rbac,
        "azureHybridBenefit": p.get("azureHybridBenefit").cloned().unwrap_or(Value::Null),
        "kind": b.get("kind").cloned().unwrap_or(Value::Null),
        "gateway": p.pointer("/gateway/enabled").cloned().unwrap_or(Value::Null),
        "privateLinkScope": (p.get("privateLinkState").and_then(Value::as_str) == Some("Enabled"))
            .then(|| p.get("privateLinkScopeResourceId").cloned().unwrap_or(Value::Null)),
    })
}

/// Sets the declared features in a planned state.
pub fn plan_into(d: &Features, after: &mut Value) {
    after["desiredAgentVersion"] = json!(d.desired_agent_version);
    after["oidcIssuer"] = json!(d.oidc_issuer);
    after["workloadIdentity"] = json!(d.workload_identity);
    after["azureRbac"] = json!(d.azure_rbac);
    if let Some(b) = &d.azure_hybrid_benefit {
        after["azureHybridBenefit"] = json!(b);
    }
    if let Some(k) = &d.kind {
        after["kind"] = json!(k);
    }
    if let Some(g) = d.gateway {
        after["gateway"] = json!(g);
    }
    after["privateLinkScope"] = json!(d.private_link_scope);
}

/// What differs between the declared features and the live state, in words; `put` says whether
/// the change needs a PUT of the whole resource (ARM's PATCH takes only `azureHybridBenefit` of
/// these).
pub fn differences(d: &Features, prior: &Value) -> (Vec<String>, bool) {
    let mut words = Vec::new();
    let mut put = false;
    let live = |k: &str| prior.get(k).cloned().unwrap_or(Value::Null);
    if let Some(v) = &d.desired_agent_version
        && live("desiredAgentVersion") != json!(v)
    {
        let from = live("desiredAgentVersion");
        words.push(format!(
            "agents upgraded to {v} (arcAgentProfile.desiredAgentVersion {} → {v}: the agents roll themselves to it, arc.connectivity waits until they report it)",
            from.as_str().unwrap_or("unset")
        ));
        put = true;
    }
    for (key, want, what) in [
        ("oidcIssuer", d.oidc_issuer, "the OIDC issuer"),
        ("workloadIdentity", d.workload_identity, "workload identity"),
    ] {
        if live(key) != json!(want) {
            words.push(format!(
                "{what} {}",
                if want { "enabled" } else { "disabled" }
            ));
            put = true;
        }
    }
    if live("azureRbac") != json!(d.azure_rbac) {
        words.push("Azure RBAC changed".into());
        put = true;
    }
    if let Some(b) = &d.azure_hybrid_benefit
        && live("azureHybridBenefit") != json!(b)
    {
        words.push(format!("azureHybridBenefit {b}"));
    }
    if let Some(g) = d.gateway
        && live("gateway") != json!(g)
    {
        words.push(format!(
            "the Arc gateway {}",
            if g { "enabled" } else { "disabled" }
        ));
    }
    (words, put)
}

/// Writes the declared features into a PUT body (`body`: the resource, `props`: its
/// properties).
pub fn body_into(d: &Features, body: &mut Value, props: &mut Value) {
    if let Some(v) = &d.desired_agent_version {
        props["arcAgentProfile"]["desiredAgentVersion"] = json!(v);
    }
    if d.oidc_issuer {
        props["oidcIssuerProfile"] = json!({"enabled": true});
    }
    if d.workload_identity {
        props["securityProfile"] = json!({"workloadIdentity": {"enabled": true}});
    }
    if let Some(groups) = &d.azure_rbac {
        props["aadProfile"] = json!({"enableAzureRBAC": true, "adminGroupObjectIDs": groups});
    }
    if let Some(b) = &d.azure_hybrid_benefit {
        props["azureHybridBenefit"] = json!(b);
    }
    if let Some(k) = &d.kind {
        body["kind"] = json!(k);
    }
    if let Some(g) = d.gateway {
        props["gateway"] = json!({"enabled": g});
    }
    if let Some(scope) = &d.private_link_scope {
        props["privateLinkState"] = json!("Enabled");
        props["privateLinkScopeResourceId"] = json!(scope);
    }
}

/// The properties ARM's PATCH takes of these features (`azureHybridBenefit`, and `gateway` from
/// the api-version that patches it on).
pub fn patch_into(d: &Features, props: &mut Value) {
    if let Some(b) = &d.azure_hybrid_benefit {
        props["azureHybridBenefit"] = json!(b);
    }
    if let Some(g) = d.gateway {
        props["gateway"] = json!({"enabled": g});
    }
}

/// Why private link forces a new resource, if it differs (it is set at onboarding only).
pub fn private_link_replacement(d: &Features, prior: &Value) -> Option<String> {
    let live = prior.get("privateLinkScope").and_then(Value::as_str);
    let same = match (live, d.private_link_scope.as_deref()) {
        (None, None) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    };
    (!same).then(|| {
        format!(
            "private link {} -> {} is set at onboarding only",
            live.unwrap_or("(off)"),
            d.private_link_scope.as_deref().unwrap_or("(off)")
        )
    })
}

/// The first api-version of `Microsoft.Kubernetes/connectedClusters` that has each feature.
const SINCE: &[(&str, &str)] = &[
    (
        "agents.version with autoUpgrade: false (arcAgentProfile.desiredAgentVersion)",
        "2022-10-01-preview",
    ),
    (
        "features.oidcIssuer (oidcIssuerProfile)",
        "2023-11-01-preview",
    ),
    (
        "features.workloadIdentity (securityProfile)",
        "2023-11-01-preview",
    ),
    ("features.azureRbac (aadProfile)", "2022-10-01-preview"),
    ("features.azureHybridBenefit", "2022-05-01-preview"),
    ("kind", "2024-01-01"),
    ("features.gateway", "2024-07-01-preview"),
    (
        "features.privateLink (privateLinkState)",
        "2021-04-01-preview",
    ),
];

/// The declared features the api-version does not have, each with the first that has it.
pub fn unsupported(d: &Features, api_version: &str) -> Vec<(&'static str, &'static str)> {
    let used = [
        d.desired_agent_version.is_some(),
        d.oidc_issuer,
        d.workload_identity,
        d.azure_rbac.is_some(),
        d.azure_hybrid_benefit.is_some(),
        d.kind.is_some(),
        d.gateway.is_some(),
        d.private_link_scope.is_some(),
    ];
    SINCE
        .iter()
        .zip(used)
        .filter(|((_, since), used)| *used && date_of(api_version) < date_of(since))
        .map(|(f, _)| *f)
        .collect()
}

/// The date part of an api-version (`2024-12-01-preview` → `2024-12-01`).
fn date_of(v: &str) -> &str {
    v.get(..10).unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_api_version_names_what_it_lacks() {
        let d = Features {
            workload_identity: true,
            oidc_issuer: true,
            ..Default::default()
        };
        let missing = unsupported(&d, "2021-10-01");
        assert_eq!(missing.len(), 2);
        assert!(missing[0].0.contains("oidcIssuer"));
        assert_eq!(missing[0].1, "2023-11-01-preview");
        assert!(unsupported(&d, "2026-05-01").is_empty());
        assert!(unsupported(&Features::default(), "2021-10-01").is_empty());
    }

    #[test]
    fn live_features_round_trip_through_the_body() {
        let d = Features {
            desired_agent_version: Some("1.22.0".into()),
            oidc_issuer: true,
            workload_identity: true,
            azure_rbac: Some(vec!["00000000-0000-0000-0000-000000000001".into()]),
            azure_hybrid_benefit: Some("True".into()),
            kind: Some("ProvisionedCluster".into()),
            gateway: Some(true),
            private_link_scope: Some("/subscriptions/s/resourceGroups/g/providers/Microsoft.HybridCompute/privateLinkScopes/pls".into()),
        };
        let mut body = json!({"properties": {}});
        let mut props = json!({});
        body_into(&d, &mut body, &mut props);
        body["properties"] = props;
        let live = state_of(&body);
        assert_eq!(differences(&d, &live), (vec![], false));
        let mut planned = live.clone();
        plan_into(&d, &mut planned);
        assert_eq!(planned, live);
        let newer = Features {
            desired_agent_version: Some("1.23.0".into()),
            ..d.clone()
        };
        let (words, put) = differences(&newer, &live);
        assert!(words[0].contains("1.23.0"), "{words:?}");
        assert!(put, "arcAgentProfile is not patchable");
        let ahb = Features {
            azure_hybrid_benefit: Some("False".into()),
            ..d
        };
        assert!(!differences(&ahb, &live).1, "azureHybridBenefit is patched");
        let gw = Features {
            gateway: Some(false),
            ..ahb.clone()
        };
        let (words, put) = differences(&gw, &live);
        assert!(
            words.iter().any(|w| w.contains("gateway disabled")),
            "{words:?}"
        );
        assert!(!put, "the gateway is patched");
        let mut patch = json!({});
        patch_into(&gw, &mut patch);
        assert_eq!(patch["gateway"]["enabled"], false);
        assert!(private_link_replacement(&ahb, &live).is_none());
        let off = Features {
            private_link_scope: None,
            ..ahb
        };
        let why = private_link_replacement(&off, &live).unwrap();
        assert!(why.contains("-> (off)"), "{why}");
    }
}
