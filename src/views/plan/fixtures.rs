//! Representative plans for the golden tests.

use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::plan::{
    Action, Change, CheckResult, CheckStatus, FORMAT_VERSION, Plan, PlanMode, Reason, ReasonCode,
};
use serde_json::{Value, json};

/// A recognisable fake secret, put at sensitive paths; it must never be rendered.
pub(crate) const SECRET: &str = "FAKE-SECRET-7f3a9c-do-not-print";

pub(crate) fn addr(t: ResourceType, name: &str) -> Address {
    Address::new(t, name)
}

fn change(t: ResourceType, name: &str, action: Action) -> Change {
    Change::new(addr(t, name), action)
}

fn plan(mode: PlanMode, changes: Vec<Change>, checks: Vec<CheckResult>) -> Plan {
    Plan {
        format_version: FORMAT_VERSION.into(),
        config_digest: "sha256:0f1e2d".into(),
        stack: "prod".into(),
        mode,
        changes,
        checks,
    }
}

fn check(
    t: ResourceType,
    name: &str,
    status: CheckStatus,
    summary: &str,
    fix: Option<&str>,
) -> CheckResult {
    CheckResult {
        address: addr(t, name),
        status,
        summary: summary.into(),
        fix: fix.map(Into::into),
        details: None,
        depends_on: Vec::new(),
        desired: None,
    }
}

fn role_pass() -> CheckResult {
    check(
        arcplan_providers::kinds::ROLE_CHECK,
        "rg-arc",
        CheckStatus::Pass,
        "the caller may write Microsoft.Kubernetes/connectedClusters in /subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-arc (Contributor)",
        None,
    )
}

pub(crate) fn connectivity_pending() -> CheckResult {
    check(
        arcplan_providers::kinds::CONNECTIVITY,
        "mynewcluster",
        CheckStatus::Pending,
        "evaluated during apply, once its dependencies are in place",
        None,
    )
}

/// A long base64 public key (an RSA-4096 `SubjectPublicKeyInfo` is about 736 characters).
pub(crate) fn public_key(fill: char) -> String {
    format!("MIICCgKCAgEA{}AAE=", fill.to_string().repeat(496))
}

fn cluster_access() -> Value {
    json!({"kubeconfig": "~/.kube/config", "context": "kind-arc"})
}

fn cluster_after() -> Value {
    json!({
        "subscriptionId": "00000000-0000-0000-0000-000000000001",
        "resourceGroup": "rg-arc",
        "name": "mynewcluster",
        "location": "westeurope",
        "tags": {"arcplan-stack": "prod", "env": "dev"},
        "identity": {"type": "SystemAssigned"},
        "distribution": "kind",
        "infrastructure": "generic",
        "agentPublicKeyCertificate": {"$ref": "k8s.onboardingKey.mynewcluster#publicKey"},
        "agentAutoUpgrade": true,
    })
}

fn agents_after(version: &str) -> Value {
    json!({
        "cluster": cluster_access(),
        "connectedClusterId": {"$ref": "arc.connectedCluster.mynewcluster#id"},
        "installer": "helm",
        "version": version,
        "manifests": null,
        "timeout": "15m",
        "proxy": null,
        "ownership": {
            "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
            "AZURE_RESOURCE_GROUP": "rg-arc",
            "AZURE_RESOURCE_NAME": "mynewcluster",
            "AZURE_REGION": "westeurope",
            "AZURE_ARC_AUTOUPDATE": "true",
            "AZURE_ENVIRONMENT": "AzureCloud",
        },
    })
}

/// A first onboarding: everything is created; the public key is known only after apply.
pub(crate) fn onboarding() -> Plan {
    let mut rp = change(
        arcplan_providers::kinds::RESOURCE_PROVIDER,
        "Microsoft.Kubernetes",
        Action::NoOp,
    );
    rp.before =
        Some(json!({"namespace": "Microsoft.Kubernetes", "registrationState": "Registered"}));
    rp.after = rp.before.clone();
    let mut rp2 = change(
        arcplan_providers::kinds::RESOURCE_PROVIDER,
        "Microsoft.KubernetesConfiguration",
        Action::Create,
    );
    rp2.after = Some(
        json!({"namespace": "Microsoft.KubernetesConfiguration", "registrationState": "Registered"}),
    );
    rp2.reason = Some(Reason::new(
        ReasonCode::NotFound,
        "the provider is not registered in this subscription",
    ));
    let mut rg = change(
        arcplan_providers::kinds::RESOURCE_GROUP,
        "rg-arc",
        Action::Create,
    );
    rg.after = Some(
        json!({"name": "rg-arc", "location": "westeurope", "tags": {"arcplan-stack": "prod", "env": "dev"}}),
    );
    let mut key = change(
        arcplan_providers::kinds::ONBOARDING_KEY,
        "mynewcluster",
        Action::Create,
    );
    key.after = Some(json!({
        "cluster": cluster_access(),
        "namespace": "azure-arc",
        "secretName": "azure-arc-connect-privatekey",
        "keyBits": 4096,
    }));
    key.after_unknown = vec!["/publicKey".into()];
    key.sensitive_paths = vec!["/privateKey".into()];
    let mut cc = change(
        arcplan_providers::kinds::CONNECTED_CLUSTER,
        "mynewcluster",
        Action::Create,
    );
    cc.after = Some(cluster_after());
    cc.after_unknown = vec!["/agentPublicKeyCertificate".into()];
    let mut agents = change(
        arcplan_providers::kinds::ARC_AGENTS,
        "mynewcluster",
        Action::Create,
    );
    agents.after = Some(agents_after("1.21.10"));
    agents.after_unknown = vec!["/connectedClusterId".into()];
    plan(
        PlanMode::Normal,
        vec![rp, rp2, rg, key, cc, agents],
        vec![role_pass(), connectivity_pending()],
    )
}

/// Tags change in place; the agents' Helm values (a multi-line string) change.
pub(crate) fn update_tags() -> Plan {
    let mut rg = change(
        arcplan_providers::kinds::RESOURCE_GROUP,
        "rg-arc",
        Action::Update,
    );
    rg.before = Some(
        json!({"name": "rg-arc", "location": "westeurope", "tags": {"arcplan-stack": "prod", "env": "dev", "owner": "team-a"}}),
    );
    rg.after = Some(
        json!({"name": "rg-arc", "location": "westeurope", "tags": {"arcplan-stack": "prod", "env": "staging", "cost-center": "1234"}}),
    );
    let mut cc = change(
        arcplan_providers::kinds::CONNECTED_CLUSTER,
        "mynewcluster",
        Action::Update,
    );
    let mut before = cluster_after();
    before["agentPublicKeyCertificate"] = public_key('A').into();
    before["id"] = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-arc/providers/Microsoft.Kubernetes/connectedClusters/mynewcluster".into();
    let mut after = before.clone();
    after["tags"]["team"] = "platform".into();
    after["agentAutoUpgrade"] = false.into();
    cc.before = Some(before);
    cc.after = Some(after);
    let mut agents = change(
        arcplan_providers::kinds::ARC_AGENTS,
        "mynewcluster",
        Action::Update,
    );
    let mut before = agents_after("1.21.10");
    before["connectedClusterId"] = "/subscriptions/…/connectedClusters/mynewcluster".into();
    before["helmValues"] = "global:\n  httpsProxy: \"\"\n  noProxy: \"\"\nsystemDefaultValues:\n  clusterconnect-agent:\n    enabled: true\n  azureArcAgents:\n    autoUpdate: true\n  logging:\n    level: info\n".into();
    let mut after = before.clone();
    after["version"] = "1.22.0".into();
    after["helmValues"] = "global:\n  httpsProxy: \"http://proxy.internal:3128\"\n  noProxy: \"\"\nsystemDefaultValues:\n  clusterconnect-agent:\n    enabled: true\n  azureArcAgents:\n    autoUpdate: true\n  logging:\n    level: debug\n".into();
    // The live state also holds what was read, not planned (as the provider reports it): the
    // planned state does not carry these, and they must not show as removals.
    before["ready"] = false.into();
    before["installed"] = true.into();
    before["agents"] = json!({"total": 9, "available": 8, "notReady": ["kube-aad-proxy"]});
    if let Some(m) = after.as_object_mut() {
        m.remove("ownership");
    }
    agents.before = Some(before);
    agents.after = Some(after);
    plan(PlanMode::Normal, vec![rg, cc, agents], vec![role_pass()])
}

/// A replace with a reason, its cascade, and forces-replacement marks; the onboarding key is
/// replaced on request, with its private key (sensitive) in the live state.
pub(crate) fn replace() -> Plan {
    let mut key = change(
        arcplan_providers::kinds::ONBOARDING_KEY,
        "mynewcluster",
        Action::Replace,
    );
    key.reason = Some(Reason::new(
        ReasonCode::Requested,
        "replacement was requested",
    ));
    let before = json!({
        "cluster": cluster_access(),
        "namespace": "azure-arc",
        "secretName": "azure-arc-connect-privatekey",
        "keyBits": 2048,
        "publicKey": public_key('B'),
        "privateKey": SECRET,
        "protected": {"pem": SECRET, "passphrase": SECRET},
    });
    let mut after = before.clone();
    after["keyBits"] = 4096.into();
    after["publicKey"] = Value::Null;
    after["privateKey"] = format!("{SECRET}-new").into();
    after["protected"]["pem"] = format!("{SECRET}-new").into();
    key.before = Some(before);
    key.after = Some(after);
    key.after_unknown = vec!["/publicKey".into()];
    key.sensitive_paths = vec!["/privateKey".into(), "/protected".into()];
    key.replace_paths = vec!["/keyBits".into()];
    key.cascades_to = vec![addr(
        arcplan_providers::kinds::CONNECTED_CLUSTER,
        "mynewcluster",
    )];
    let mut cc = change(
        arcplan_providers::kinds::CONNECTED_CLUSTER,
        "mynewcluster",
        Action::Replace,
    );
    cc.reason = Some(Reason::new(
        ReasonCode::CannotUpdate,
        "/distribution, /agentPublicKeyCertificate cannot change in place",
    ));
    let mut before = cluster_after();
    before["agentPublicKeyCertificate"] = public_key('B').into();
    before["distribution"] = "k3s".into();
    let mut after = cluster_after();
    after["tags"]["env"] = "prod".into();
    cc.before = Some(before);
    cc.after = Some(after);
    cc.after_unknown = vec!["/agentPublicKeyCertificate".into()];
    cc.replace_paths = vec!["/distribution".into(), "/agentPublicKeyCertificate".into()];
    cc.cascades_to = vec![
        addr(arcplan_providers::kinds::ARC_AGENTS, "mynewcluster"),
        addr(arcplan_providers::kinds::CONNECTIVITY, "mynewcluster"),
    ];
    let mut agents = change(
        arcplan_providers::kinds::ARC_AGENTS,
        "mynewcluster",
        Action::Update,
    );
    let mut before = agents_after("1.21.10");
    before["connectedClusterId"] = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-arc/providers/Microsoft.Kubernetes/connectedClusters/mynewcluster".into();
    let after = before.clone();
    agents.before = Some(before);
    agents.after = Some(after);
    agents.after_unknown = vec!["/connectedClusterId".into()];
    agents.reason = Some(Reason::new(
        ReasonCode::ReplaceBecauseDependency,
        "arc.connectedCluster.mynewcluster is replaced",
    ));
    plan(
        PlanMode::Normal,
        vec![key, cc, agents],
        vec![role_pass(), connectivity_pending()],
    )
}

/// `destroy`, plus a resource pruned because the file no longer lists it.
pub(crate) fn destroy() -> Plan {
    let reason = || Reason::new(ReasonCode::DeleteBecauseDestroy, "destroy was requested");
    let mut agents = change(
        arcplan_providers::kinds::ARC_AGENTS,
        "mynewcluster",
        Action::Delete,
    );
    agents.reason = Some(reason());
    let mut before = agents_after("1.21.10");
    before["connectedClusterId"] = "/subscriptions/…/connectedClusters/mynewcluster".into();
    agents.before = Some(before);
    let mut cc = change(
        arcplan_providers::kinds::CONNECTED_CLUSTER,
        "mynewcluster",
        Action::Delete,
    );
    cc.reason = Some(reason());
    let mut before = cluster_after();
    before["agentPublicKeyCertificate"] = public_key('C').into();
    cc.before = Some(before);
    cc.cascades_to = vec![addr(arcplan_providers::kinds::ARC_AGENTS, "mynewcluster")];
    let mut key = change(
        arcplan_providers::kinds::ONBOARDING_KEY,
        "mynewcluster",
        Action::Delete,
    );
    key.reason = Some(reason());
    key.before = Some(json!({
        "cluster": cluster_access(),
        "namespace": "azure-arc",
        "secretName": "azure-arc-connect-privatekey",
        "keyBits": 4096,
        "privateKey": SECRET,
    }));
    key.sensitive_paths = vec!["/privateKey".into()];
    let mut old = change(
        arcplan_providers::kinds::RESOURCE_GROUP,
        "rg-old",
        Action::Delete,
    );
    old.reason = Some(Reason::new(
        ReasonCode::DeleteBecauseNoResourceConfig,
        "azure.resourceGroup.rg-old carries this stack's tag but is no longer in the configuration",
    ));
    old.before = Some(
        json!({"name": "rg-old", "location": "northeurope", "tags": {"arcplan-stack": "prod"}}),
    );
    plan(PlanMode::Destroy, vec![agents, cc, key, old], vec![])
}

/// The caller lacks a role: the plan cannot be applied.
pub(crate) fn failed_check() -> Plan {
    let mut rg = change(
        arcplan_providers::kinds::RESOURCE_GROUP,
        "rg-arc",
        Action::Create,
    );
    rg.after = Some(
        json!({"name": "rg-arc", "location": "westeurope", "tags": {"arcplan-stack": "prod"}}),
    );
    let mut cc = change(
        arcplan_providers::kinds::CONNECTED_CLUSTER,
        "mynewcluster",
        Action::Create,
    );
    cc.after = Some(cluster_after());
    cc.after_unknown = vec!["/agentPublicKeyCertificate".into()];
    let mut fail = check(
        arcplan_providers::kinds::ROLE_CHECK,
        "rg-arc",
        CheckStatus::Fail,
        "the caller (app 11111111-2222-3333-4444-555555555555) may not write Microsoft.Resources/resourceGroups or Microsoft.Kubernetes/connectedClusters in /subscriptions/00000000-0000-0000-0000-000000000001",
        Some(
            "az role assignment create --assignee 11111111-2222-3333-4444-555555555555 --role \"Kubernetes Cluster - Azure Arc Onboarding\" --scope /subscriptions/00000000-0000-0000-0000-000000000001",
        ),
    );
    fail.details = Some(json!({"missing": ["Microsoft.Resources/resourceGroups/write"]}));
    plan(
        PlanMode::Normal,
        vec![rg, cc],
        vec![fail, connectivity_pending()],
    )
}

/// Nothing to do.
pub(crate) fn no_changes() -> Plan {
    let mut sub = change(
        arcplan_providers::kinds::SUBSCRIPTION,
        "00000000-0000-0000-0000-000000000001",
        Action::Read,
    );
    sub.after = Some(json!({"state": "Enabled"}));
    let mut rg = change(
        arcplan_providers::kinds::RESOURCE_GROUP,
        "rg-arc",
        Action::NoOp,
    );
    rg.before = Some(
        json!({"name": "rg-arc", "location": "westeurope", "tags": {"arcplan-stack": "prod"}}),
    );
    rg.after = rg.before.clone();
    let mut conn = check(
        arcplan_providers::kinds::CONNECTIVITY,
        "mynewcluster",
        CheckStatus::Pass,
        "Connected: agent 1.21.10, Kubernetes v1.30.6, 3 nodes, 12 cores",
        None,
    );
    conn.depends_on = vec![addr(arcplan_providers::kinds::ARC_AGENTS, "mynewcluster")];
    plan(PlanMode::Normal, vec![sub, rg], vec![role_pass(), conn])
}

/// Every fixture, by name.
pub(crate) fn all() -> Vec<(&'static str, Plan)> {
    vec![
        ("onboarding", onboarding()),
        ("update_tags", update_tags()),
        ("replace", replace()),
        ("destroy", destroy()),
        ("failed_check", failed_check()),
        ("no_changes", no_changes()),
    ]
}
