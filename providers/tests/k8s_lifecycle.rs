//! The Kubernetes provider driven by the engine against the sandbox's Kubernetes API: onboard,
//! converge, drift, key loss, destroy; and the private key never leaves the cluster.

mod k8s_common;

use arcplan_engine::plan::{Action, PlanMode, ReasonCode};
use k8s_common::*;
use serde_json::json;

const KEY: &str = "k8s.onboardingKey.c1";
const AGENTS: &str = "k8s.arcAgents.c1";
const CC: &str = "arc.connectedCluster.c1";

fn action(plan: &arcplan_engine::plan::Plan, a: &str) -> Action {
    plan.change(&addr(a))
        .unwrap_or_else(|| panic!("{a} not in the plan"))
        .action
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboard_converge_drift_and_destroy() {
    let env = start("lifecycle", MANIFESTS).await;
    let kube = env.sandbox.kube().clone();
    let mut serialized = Vec::new();

    // First plan: the key and the agents are created, the public key is not known yet.
    let p1 = env.plan(PlanMode::Normal).await.expect("first plan");
    assert_eq!(action(&p1, KEY), Action::Create);
    assert_eq!(action(&p1, AGENTS), Action::Create);
    assert_eq!(action(&p1, CC), Action::Create);
    let key_change = p1.change(&addr(KEY)).unwrap();
    assert!(
        key_change
            .sensitive_paths
            .contains(&"/privateKey".to_owned())
    );
    assert!(
        p1.change(&addr(CC))
            .unwrap()
            .after_unknown
            .contains(&"/agentPublicKeyCertificate".to_owned())
    );
    serialized.push(serde_json::to_string(&p1).unwrap());
    let r1 = env.apply(&p1).await;
    serialized.push(serde_json::to_string(&r1).unwrap());

    // The key was in the cluster before the ARM PUT, and ARM got its public key.
    let pem = env.secret_pem().expect("the Secret holds a PEM");
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let public = arcplan_sandbox::agents::public_key_of_pem(&pem).unwrap();
    {
        let puts = env.azure.puts.lock().unwrap();
        assert_eq!(puts.len(), 1);
        assert!(
            puts[0].0,
            "Secret must exist before the connected cluster is PUT"
        );
        assert_eq!(puts[0].1, json!(public));
    }
    let secret = kube
        .get(
            "v1",
            "Secret",
            Some("azure-arc"),
            "azure-arc-connect-privatekey",
        )
        .unwrap();
    assert_eq!(
        secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "arcplan"
    );
    // The ownership record and the agents.
    let cm = kube
        .get("v1", "ConfigMap", Some("azure-arc"), "azure-clusterconfig")
        .expect("ConfigMap");
    assert_eq!(cm["data"]["AZURE_RESOURCE_NAME"], "c1");
    assert_eq!(cm["data"]["AZURE_RESOURCE_GROUP"], "rg1");
    assert_eq!(cm["data"]["AZURE_SUBSCRIPTION_ID"], SUB);
    assert_eq!(cm["data"]["AZURE_REGION"], "eastus");
    let deployments = kube.list("apps/v1", "Deployment", Some("azure-arc"));
    assert_eq!(deployments.len(), 9);
    for d in &deployments {
        assert_eq!(
            d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "arcplan"
        );
        assert!(
            d["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["manager"] == "arcplan" && m["operation"] == "Apply"),
            "server-side applied by arcplan"
        );
    }
    let progress: Vec<String> = env
        .events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            arcplan_engine::events::Event::ApplyProgress { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert!(
        progress
            .iter()
            .any(|m| m == "9/9 agent deployments available"),
        "{progress:?}"
    );

    // Second plan: nothing to do, and the key's output is re-derived from the Secret.
    let p2 = env.plan(PlanMode::Normal).await.expect("second plan");
    assert!(
        !p2.has_changes(),
        "second plan must be empty: {:#?}",
        p2.changes
            .iter()
            .filter(|c| c.action.is_change())
            .collect::<Vec<_>>()
    );
    let kc = p2.change(&addr(KEY)).unwrap();
    assert_eq!(kc.outputs.as_ref().unwrap()["publicKey"], json!(public));
    let ac = p2.change(&addr(AGENTS)).unwrap();
    assert_eq!(ac.outputs.as_ref().unwrap()["ready"], true);
    assert_eq!(ac.outputs.as_ref().unwrap()["agentCount"], 9);
    serialized.push(serde_json::to_string(&p2).unwrap());

    // Drift: a deleted agent Deployment and a changed replica count show as an update.
    assert!(kube.delete("apps/v1", "Deployment", Some("azure-arc"), "config-agent"));
    let mut metrics = kube
        .get("apps/v1", "Deployment", Some("azure-arc"), "metrics-agent")
        .unwrap();
    metrics["spec"]["replicas"] = json!(3);
    kube.put(metrics).unwrap();
    let p3 = env.plan(PlanMode::Normal).await.expect("drift plan");
    let c3 = p3.change(&addr(AGENTS)).unwrap();
    assert_eq!(c3.action, Action::Update);
    let why = &c3.reason.as_ref().unwrap().message;
    assert!(
        why.contains("Deployment azure-arc/config-agent: missing"),
        "{why}"
    );
    assert!(
        why.contains("Deployment azure-arc/metrics-agent: spec.replicas: 3 → 1"),
        "{why}"
    );
    assert_eq!(action(&p3, KEY), Action::NoOp);
    assert_eq!(action(&p3, CC), Action::NoOp);
    serialized.push(serde_json::to_string(&p3).unwrap());
    let r3 = env.apply(&p3).await;
    serialized.push(serde_json::to_string(&r3).unwrap());
    assert!(
        kube.get("apps/v1", "Deployment", Some("azure-arc"), "config-agent")
            .is_some()
    );
    let p4 = env.plan(PlanMode::Normal).await.expect("plan after repair");
    assert!(!p4.has_changes(), "{p4:#?}");

    // The Secret is lost: a new key is planned, so the connected cluster is replaced and the
    // agents (installed for the old resource) are reinstalled.
    assert!(kube.delete(
        "v1",
        "Secret",
        Some("azure-arc"),
        "azure-arc-connect-privatekey"
    ));
    let p5 = env
        .plan(PlanMode::Normal)
        .await
        .expect("plan after key loss");
    assert_eq!(action(&p5, KEY), Action::Create);
    assert_eq!(action(&p5, CC), Action::Replace);
    assert!(
        p5.change(&addr(CC))
            .unwrap()
            .after_unknown
            .contains(&"/agentPublicKeyCertificate".to_owned())
    );
    let a5 = p5.change(&addr(AGENTS)).unwrap();
    assert_eq!(a5.action, Action::Replace);
    assert!(
        a5.reason
            .as_ref()
            .unwrap()
            .message
            .starts_with("orphaned agents:"),
        "{:?}",
        a5.reason
    );
    serialized.push(serde_json::to_string(&p5).unwrap());
    let r5 = env.apply(&p5).await;
    serialized.push(serde_json::to_string(&r5).unwrap());
    let pem2 = env.secret_pem().expect("a new key");
    assert_ne!(pem2, pem);
    assert_eq!(
        env.azure.puts.lock().unwrap().last().unwrap().1,
        json!(arcplan_sandbox::agents::public_key_of_pem(&pem2).unwrap())
    );
    let p6 = env
        .plan(PlanMode::Normal)
        .await
        .expect("plan after re-onboarding");
    assert!(!p6.has_changes(), "{p6:#?}");

    // Destroy: the ARM resource goes first, then the agents and the namespaces.
    let pd = env.plan(PlanMode::Destroy).await.expect("destroy plan");
    let ad = pd.change(&addr(AGENTS)).unwrap();
    assert_eq!(ad.action, Action::Delete);
    assert_eq!(ad.delete_after, vec![addr(CC)]);
    assert_eq!(
        ad.reason.as_ref().unwrap().code,
        ReasonCode::DeleteBecauseDestroy
    );
    assert_eq!(action(&pd, KEY), Action::Delete);
    serialized.push(serde_json::to_string(&pd).unwrap());
    let rd = env.apply(&pd).await;
    serialized.push(serde_json::to_string(&rd).unwrap());
    let order: Vec<String> = env
        .events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            arcplan_engine::events::Event::ApplyStart { address, action }
                if *action == Action::Delete =>
            {
                Some(address.to_string())
            }
            _ => None,
        })
        .collect();
    let pos = |a: &str| order.iter().position(|x| x == a).unwrap();
    assert!(
        pos(CC) < pos(AGENTS),
        "ARM delete before the agents: {order:?}"
    );
    assert!(kube.get("v1", "Namespace", None, "azure-arc").is_none());
    assert!(
        kube.get("v1", "Namespace", None, "azure-arc-release")
            .is_none()
    );
    assert!(
        kube.list("apps/v1", "Deployment", Some("azure-arc"))
            .is_empty()
    );
    let after = env
        .plan(PlanMode::Destroy)
        .await
        .expect("plan after destroy");
    assert!(!after.has_changes(), "{after:#?}");

    // No private key anywhere: plans, reports, events (progress and diagnostics).
    serialized.push(env.events.json());
    for key in [&pem, &pem2] {
        let body: String = key
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .join("");
        use base64::Engine as _;
        let stored = base64::engine::general_purpose::STANDARD.encode(key.as_bytes());
        // PEM lines past the modulus hold the private exponent and the primes.
        let private_lines: Vec<&str> = key
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .skip(8)
            .collect();
        for text in &serialized {
            assert!(!text.contains(key.as_str()));
            assert!(!text.contains(&body));
            assert!(!text.contains(&stored));
            assert!(!text.contains("PRIVATE KEY"));
            for l in &private_lines {
                assert!(!text.contains(l), "a private key line leaked");
            }
        }
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_onboarded_elsewhere_fails_the_plan_before_any_change() {
    let env = start("conflict", MANIFESTS).await;
    let kube = env.sandbox.kube().clone();
    kube.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "azure-arc"}}))
        .unwrap();
    kube.put(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "azure-clusterconfig", "namespace": "azure-arc"},
        "data": {"AZURE_SUBSCRIPTION_ID": SUB, "AZURE_RESOURCE_GROUP": "otherrg", "AZURE_RESOURCE_NAME": "other"},
    }))
    .unwrap();
    let err = env.plan(PlanMode::Normal).await.expect_err("conflict");
    let d = err
        .iter()
        .find(|d| d.code == "k8s-ownership-conflict")
        .unwrap_or_else(|| panic!("{err:#?}"));
    // The onboarding key (first in the graph) already refuses, before anything changes.
    assert_eq!(d.address.as_deref(), Some("k8s.onboardingKey.c1"));
    assert!(
        d.message.contains(
            "/resourceGroups/otherrg/providers/Microsoft.Kubernetes/connectedClusters/other"
        ),
        "{}",
        d.message
    );
    // The agents' read, which knows the whole ownership, names both resources.
    let node = env.graph.node(&addr("k8s.arcAgents.c1")).unwrap();
    let mut desired = node.desired.clone();
    desired["connectedClusterId"] = json!("/subscriptions/x");
    let read = arcplan_engine::provider::Provider::read(
        &*env.provider,
        arcplan_engine::provider::ReadRequest {
            address: addr("k8s.arcAgents.c1"),
            desired,
        },
    )
    .await;
    let d = read
        .diagnostics
        .iter()
        .find(|d| d.code == "k8s-ownership-conflict")
        .expect("the agents report it");
    assert!(
        d.message.contains(
            "/resourceGroups/otherrg/providers/Microsoft.Kubernetes/connectedClusters/other"
        ),
        "{}",
        d.message
    );
    assert!(
        d.message
            .contains("/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/c1"),
        "{}",
        d.message
    );
    assert!(d.message.contains("context `sandbox`"), "{}", d.message);
    let hint = d.hint.as_deref().unwrap();
    assert!(
        hint.contains("az connectedk8s delete --name other --resource-group otherrg"),
        "{hint}"
    );
    assert!(hint.contains("arcplan destroy"), "{hint}");
    assert!(env.secret_pem().is_none(), "nothing was created");
    // Destroy refuses too.
    let err = env
        .plan(PlanMode::Destroy)
        .await
        .expect_err("conflict on destroy");
    assert!(err.iter().any(|d| d.code == "k8s-ownership-conflict"));
    env.stop().await;
}

fn deployment(name: &str) -> String {
    format!(
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: {name}\n        image: mcr.microsoft.com/azurearck8s/{name}:1.0.0\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rendered_manifest_file_is_applied_and_pruned_by_label() {
    let agents = "      installer: manifests\n      manifests: agents.yaml\n      timeout: 60s\n";
    let env = start("prune", agents).await;
    let sa = "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: azure-arc-operator\n";
    std::fs::write(
        env.dir.join("agents.yaml"),
        format!("{sa}{}{}", deployment("a1"), deployment("a2")),
    )
    .unwrap();
    let p1 = env.plan(PlanMode::Normal).await.expect("plan");
    assert_eq!(action(&p1, AGENTS), Action::Create);
    env.apply(&p1).await;
    let kube = env.sandbox.kube().clone();
    // Namespaced objects written without a namespace land in azure-arc.
    assert!(
        kube.get(
            "v1",
            "ServiceAccount",
            Some("azure-arc"),
            "azure-arc-operator"
        )
        .is_some()
    );
    assert_eq!(
        kube.list("apps/v1", "Deployment", Some("azure-arc")).len(),
        2
    );
    assert!(
        kube.get("v1", "ConfigMap", Some("azure-arc"), "azure-clusterconfig")
            .is_some()
    );
    let p2 = env.plan(PlanMode::Normal).await.expect("plan");
    assert!(!p2.has_changes());
    // a2 leaves the file: the plan prunes it.
    std::fs::write(
        env.dir.join("agents.yaml"),
        format!("{sa}{}", deployment("a1")),
    )
    .unwrap();
    let p3 = env.plan(PlanMode::Normal).await.expect("plan");
    let c = p3.change(&addr(AGENTS)).unwrap();
    assert_eq!(c.action, Action::Update);
    let why = &c.reason.as_ref().unwrap().message;
    assert!(
        why.contains("Deployment azure-arc/a2: no longer in the set (pruned)"),
        "{why}"
    );
    env.apply(&p3).await;
    assert!(
        kube.get("apps/v1", "Deployment", Some("azure-arc"), "a2")
            .is_none()
    );
    assert!(
        kube.get("apps/v1", "Deployment", Some("azure-arc"), "a1")
            .is_some()
    );
    assert!(
        !env.plan(PlanMode::Normal)
            .await
            .expect("plan")
            .has_changes()
    );
    env.stop().await;
}
