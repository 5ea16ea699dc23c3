//! Simulated Arc agents: Connected only with the ownership ConfigMap, available agent Deployments
//! and a private key matching `agentPublicKeyCertificate`.

mod common;

use std::time::Duration;

use arcplan_sandbox::agents::{Heartbeat, heartbeat};
use arcplan_sandbox::{AgentOptions, Sandbox};
use base64::Engine as _;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn onboard_cluster(sandbox: &Sandbox, rg: &str, name: &str, private_pem: &str) {
    let kube = sandbox.kube();
    kube.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "azure-arc"}}))
        .expect("namespace");
    kube.put(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "azure-clusterconfig", "namespace": "azure-arc"},
        "data": {
            "AZURE_SUBSCRIPTION_ID": sandbox.subscription_ids()[0],
            "AZURE_RESOURCE_GROUP": rg,
            "AZURE_RESOURCE_NAME": name,
            "AZURE_TENANT_ID": sandbox.tenant_id(),
            "AZURE_REGION": "eastus",
            "AZURE_ARC_AGENT_VERSION": "1.21.10"
        }
    }))
    .expect("configmap");
    kube.put(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "azure-arc-connect-privatekey", "namespace": "azure-arc"},
        "data": {"privateKey": base64::engine::general_purpose::STANDARD.encode(private_pem)}
    }))
    .expect("secret");
    for agent in [
        "clusteridentityoperator",
        "config-agent",
        "cluster-metadata-operator",
    ] {
        kube.put(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": agent, "namespace": "azure-arc", "labels": {"app.kubernetes.io/component": agent}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/component": agent}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/component": agent}},
                    "spec": {"containers": [{"name": agent, "image": format!("mcr.microsoft.com/azurearck8s/{agent}:1.21.10")}]}
                }
            }
        }))
        .expect("deployment");
    }
}

async fn wait_for(env: &Env, path: &str, want: &str) -> Value {
    let mut body = Value::Null;
    for _ in 0..150 {
        let (s, _, b) = env.get(path, CC_API).await;
        assert_eq!(s, StatusCode::OK);
        body = b;
        if body["properties"]["connectivityStatus"] == want {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("connectivityStatus never became {want}: {body}");
}

#[tokio::test]
async fn matching_key_connects_and_reports_cluster_facts() {
    let env = Env::start(quick()).await;
    env.prepare("arc").await;
    let (private, public) = key_pair("a");
    let path = format!(
        "/subscriptions/{}/resourceGroups/arc/providers/Microsoft.Kubernetes/connectedClusters/lab",
        env.sub()
    );
    let (s, h, _) = env.put(&path, CC_API, &cluster_body(&public)).await;
    assert_eq!(s, StatusCode::CREATED);
    env.poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    onboard_cluster(&env.sandbox, "ARC", "LAB", &private);

    let body = wait_for(&env, &path, "Connected").await;
    check("cc", "ConnectedCluster", &body);
    let p = &body["properties"];
    let (nodes, cores, version) = env.sandbox.kube().nodes_summary();
    assert_eq!(p["totalNodeCount"], nodes);
    assert_eq!(p["totalCoreCount"], cores);
    assert_eq!(p["kubernetesVersion"], version.trim_start_matches('v'));
    assert_eq!(p["agentVersion"], "1.21.10");
    assert!(p["lastConnectivityTime"].is_string());
    assert!(p["managedIdentityCertificateExpirationTime"].is_string());

    // Agents gone for longer than the offline window: Offline.
    env.sandbox
        .kube()
        .delete("v1", "ConfigMap", Some("azure-arc"), "azure-clusterconfig");
    let offline = AgentOptions {
        offline_after: Duration::from_millis(1),
        ..AgentOptions::default()
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(
        heartbeat(env.sandbox.arm(), env.sandbox.kube(), &offline),
        Heartbeat::NotOnboarded
    );
    let (_, _, body) = env.get(&path, CC_API).await;
    assert_eq!(body["properties"]["connectivityStatus"], "Offline");
    env.shutdown().await;
}

#[tokio::test]
async fn mismatching_key_stays_connecting() {
    let env = Env::start(quick()).await;
    env.prepare("arc").await;
    let (_, public_a) = key_pair("a");
    let (private_b, _) = key_pair("b");
    let path = format!(
        "/subscriptions/{}/resourceGroups/arc/providers/Microsoft.Kubernetes/connectedClusters/lab",
        env.sub()
    );
    let (_, h, _) = env.put(&path, CC_API, &cluster_body(&public_a)).await;
    env.poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    onboard_cluster(&env.sandbox, "arc", "lab", &private_b);
    // Wait until the deployments are available, then check the agents' verdict.
    let opts = AgentOptions::default();
    let mut verdict = Heartbeat::AgentsNotReady;
    for _ in 0..100 {
        verdict = heartbeat(env.sandbox.arm(), env.sandbox.kube(), &opts);
        if verdict != Heartbeat::AgentsNotReady {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(verdict, Heartbeat::KeyMismatch);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, _, body) = env.get(&path, CC_API).await;
    assert_eq!(body["properties"]["connectivityStatus"], "Connecting");

    // Re-PUT with the matching public key (replacement): the agents connect.
    let (_, public_b) = key_pair("b");
    let (s, _, _) = env.put(&path, CC_API, &cluster_body(&public_b)).await;
    assert_eq!(s, StatusCode::OK);
    wait_for(&env, &path, "Connected").await;
    env.shutdown().await;
}

/// Polls `url` (an operation status) while it is `InProgress`; returns the first other body
/// and how many polls saw it in progress.
async fn until_done(env: &Env, url: &str) -> (Value, usize) {
    for i in 0..500 {
        let (_, _, b) = env.call(reqwest::Method::GET, url, None).await;
        if b["status"] != "InProgress" {
            return (b, i);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the operation never ended");
}

#[tokio::test]
async fn the_extension_manager_installs_extensions_of_a_connected_cluster() {
    let env = Env::start(slow_deployments()).await;
    env.prepare("arc").await;
    let (private, public) = key_pair("a");
    let cluster = create_connected_cluster(&env, "arc", "lab", &public).await;
    onboard_cluster(&env.sandbox, "arc", "lab", &private);
    wait_for(&env, &cluster, "Connected").await;
    env.sandbox.arm().set_provider_state(
        &env.sub(),
        "Microsoft.KubernetesConfiguration",
        arcplan_sandbox::RegistrationState::Registered,
    );
    let ext = format!("{cluster}/providers/Microsoft.KubernetesConfiguration/extensions/policy");
    let (s, h, _) = env
        .put(
            &ext,
            "2025-03-01",
            &json!({"properties": {"extensionType": "microsoft.policyinsights", "scope": {"cluster": {"releaseNamespace": "gatekeeper-system"}}}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (status, polls) = until_done(&env, h["azure-asyncoperation"].to_str().unwrap()).await;
    assert_eq!(status["status"], "Succeeded");
    assert!(polls > 0, "it waited for the workloads");
    let kube = env.sandbox.kube();
    let d = kube
        .get("apps/v1", "Deployment", Some("gatekeeper-system"), "policy")
        .expect("the extension's Deployment");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "mcr.microsoft.com/azurearck8s/microsoft.policyinsights:1.10.0"
    );
    assert!(
        d["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Available" && c["status"] == "True"),
        "Succeeded only once available: {d}"
    );

    // Deleted in ARM: the manager removes its workloads and the namespace it made.
    let (s, h, _) = env
        .call(
            reqwest::Method::DELETE,
            &env.url(&ext, Some("2025-03-01")),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    until_done(&env, h["azure-asyncoperation"].to_str().unwrap()).await;
    for _ in 0..500 {
        let ns = kube.get("v1", "Namespace", None, "gatekeeper-system");
        if kube
            .get("apps/v1", "Deployment", Some("gatekeeper-system"), "policy")
            .is_none()
            && ns.is_none_or(|n| n["status"]["phase"] == "Terminating")
        {
            env.shutdown().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the extension's workloads stayed");
}

fn slow_deployments() -> arcplan_sandbox::SandboxOptions {
    arcplan_sandbox::SandboxOptions {
        deployment_ready_delay: Duration::from_millis(300),
        ..quick()
    }
}
