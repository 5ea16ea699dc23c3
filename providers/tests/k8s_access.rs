//! Cluster access errors, the apply lock and the Helm installer's release reading, against the
//! sandbox's Kubernetes API.

mod k8s_common;

use arcplan_engine::plan::{Action, PlanMode};
use arcplan_engine::provider::{PlanRequest, Provider, ReadRequest};
use arcplan_providers::kubernetes::helm;
use arcplan_providers::kubernetes::{KubernetesProvider, KubernetesProviderOptions};
use base64::Engine as _;
use k8s_common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_rights_and_unreachable_clusters_are_clear_plan_errors() {
    let env = start("access", MANIFESTS).await;
    // The no-rights token: every read is 403, and the access review says no.
    let kc = env.sandbox.kubeconfig_yaml().replace(
        &env.sandbox.kube_token(),
        &env.sandbox.kube().no_rights_token(),
    );
    std::fs::write(env.dir.join("kubeconfig"), kc).unwrap();
    let err = env.plan(PlanMode::Normal).await.expect_err("403");
    let d = err
        .iter()
        .find(|d| d.code == "k8s-forbidden")
        .unwrap_or_else(|| panic!("{err:#?}"));
    assert!(d.message.contains("context `sandbox`"), "{}", d.message);
    assert!(d.message.contains("kubeconfig"), "{}", d.message);
    assert!(d.hint.as_deref().unwrap().contains("cluster-admin"));
    let cluster = env
        .provider
        .cluster(&json!({"kubeconfig": "kubeconfig"}))
        .await
        .unwrap();
    let denied = cluster.check_rights("create").await.expect_err("no rights");
    let d = denied.iter().next().unwrap();
    assert_eq!(d.code, "k8s-insufficient-rights");
    for what in [
        "create namespaces",
        "create secrets in namespace azure-arc",
        "create deployments in namespace azure-arc",
        "create clusterrolebindings",
    ] {
        assert!(d.message.contains(what), "{}", d.message);
    }

    // The admin token passes the rights and Linux-node checks.
    std::fs::write(env.dir.join("admin"), env.sandbox.kubeconfig_yaml()).unwrap();
    let admin = env
        .provider
        .cluster(&json!({"kubeconfig": "admin"}))
        .await
        .unwrap();
    admin.check_rights("create").await.expect("admin may");
    admin.check_linux_node().await.expect("linux nodes");

    // Unreachable API server.
    let dead = env
        .sandbox
        .kubeconfig_yaml()
        .replace(&env.sandbox.kube_server(), "https://127.0.0.1:1");
    std::fs::write(env.dir.join("dead"), dead).unwrap();
    let p = &env.provider;
    let r = p
        .read(ReadRequest {
            address: addr("k8s.onboardingKey.c1"),
            desired: json!({"cluster": {"kubeconfig": "dead"}}),
        })
        .await;
    let d = r.diagnostics.iter().next().expect("unreachable");
    assert_eq!(d.code, "k8s-unreachable", "{d:?}");
    assert!(d.message.contains("127.0.0.1:1"), "{}", d.message);
    assert_eq!(d.address.as_deref(), Some("k8s.onboardingKey.c1"));

    // Missing file, missing context.
    let r = p
        .read(ReadRequest {
            address: addr("k8s.onboardingKey.c1"),
            desired: json!({"cluster": {"kubeconfig": "nope", "context": "x"}}),
        })
        .await;
    assert_eq!(
        r.diagnostics.iter().next().unwrap().code,
        "k8s-kubeconfig-missing"
    );
    let r = p
        .read(ReadRequest {
            address: addr("k8s.onboardingKey.c1"),
            desired: json!({"cluster": {"kubeconfig": "admin", "context": "prod"}}),
        })
        .await;
    let d = r.diagnostics.iter().next().unwrap();
    assert_eq!(d.code, "k8s-context-missing");
    assert!(d.message.contains("`prod`") && d.message.contains("sandbox"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_lock_holder_waits_then_fails_naming_the_holder() {
    let env = start("lock", MANIFESTS).await;
    let provider = KubernetesProvider::new(
        KubernetesProviderOptions::new(&env.dir)
            .with_env(|_| None)
            .with_lease_duration(Duration::from_secs(3))
            .with_poll_interval(Duration::from_millis(100)),
    );
    let cluster = json!({"kubeconfig": "kubeconfig"});
    let cancel = CancellationToken::new();
    let first = provider
        .acquire_lock(
            &cluster,
            "alice@host (pid 1)",
            Duration::from_secs(1),
            &cancel,
        )
        .await
        .expect("first holder");
    // azure-arc does not exist yet: the lease lives in kube-system.
    assert_eq!(first.namespace(), "kube-system");
    let started = Instant::now();
    let second = provider
        .acquire_lock(
            &cluster,
            "bob@host (pid 2)",
            Duration::from_millis(4500),
            &cancel,
        )
        .await;
    let d = second.expect_err("second holder must wait and fail");
    assert!(
        started.elapsed() >= Duration::from_millis(4500),
        "it waited"
    );
    assert_eq!(d.code, "k8s-locked");
    assert!(d.message.contains("`alice@host (pid 1)`"), "{}", d.message);
    assert!(d.message.contains("last renewed"), "{}", d.message);
    assert!(
        d.message.contains("kube-system/arcplan-lock"),
        "{}",
        d.message
    );
    // It was renewed in the background (the 3 s lease would have expired otherwise).
    assert!(!first.is_lost());
    // Released: the next holder gets it at once.
    first.release().await.expect("release");
    let bob = provider
        .acquire_lock(
            &cluster,
            "bob@host (pid 2)",
            Duration::from_secs(1),
            &cancel,
        )
        .await
        .expect("free after release");
    drop(bob);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A crashed holder (never renewed for longer than its lease) is taken over, in kube-system
    // also once azure-arc exists: one Lease in one place.
    let kube = env.sandbox.kube();
    kube.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "azure-arc"}}))
        .unwrap();
    kube.put(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "arcplan-lock", "namespace": "kube-system"},
        "spec": {"holderIdentity": "crashed", "leaseDurationSeconds": 1,
                 "renewTime": "2020-01-01T00:00:00.000000Z", "acquireTime": "2020-01-01T00:00:00.000000Z"},
    }))
    .unwrap();
    let carol = provider
        .acquire_lock(&cluster, "carol", Duration::from_secs(2), &cancel)
        .await
        .expect("an expired lease is taken over");
    assert_eq!(carol.namespace(), "kube-system");
    let lease = kube
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("kube-system"),
            "arcplan-lock",
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "carol");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    carol.release().await.unwrap();
    for ns in ["kube-system", "azure-arc"] {
        assert!(
            kube.get("coordination.k8s.io/v1", "Lease", Some(ns), "arcplan-lock")
                .is_none(),
            "{ns}"
        );
    }

    // A Lease taken over behind the holder's back: the holder's conditional renewal loses, it
    // is marked lost, its fence refuses, and its release leaves the new holder's Lease alone.
    let dave = provider
        .acquire_lock(&cluster, "dave", Duration::from_secs(2), &cancel)
        .await
        .unwrap();
    let fence = dave.fence();
    fence.ensure_held().await.expect("held");
    let mut taken = kube
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("kube-system"),
            "arcplan-lock",
        )
        .unwrap();
    taken["spec"]["holderIdentity"] = json!("mallory");
    kube.put(taken).unwrap();
    let started = Instant::now();
    while fence.ensure_held().await.is_ok() {
        assert!(started.elapsed() < Duration::from_secs(10), "never noticed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dave.is_lost());
    let d = fence.ensure_held().await.unwrap_err();
    assert_eq!(d.code, "k8s-lock-lost");
    assert!(d.message.contains("mallory"), "{}", d.message);
    dave.release().await.unwrap();
    let lease = kube
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("kube-system"),
            "arcplan-lock",
        )
        .expect("mallory's Lease stays");
    assert_eq!(lease["spec"]["holderIdentity"], "mallory");
    env.stop().await;
}

const HELM: &str = "      installer: helm\n      version: 1.21.10\n      timeout: 60s\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_release_state_is_read_from_helm_storage() {
    let env = start("helm", HELM).await;
    let kube = env.sandbox.kube();
    let agents = addr("k8s.arcAgents.c1");
    let desired = || {
        let mut d = env.graph.node(&agents).unwrap().desired.clone();
        d["connectedClusterId"] = json!(
            "/subscriptions/x/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/c1"
        );
        d
    };
    // Nothing installed: create, and the plan says helm is missing (it is not installed here).
    let provider = KubernetesProvider::new(
        KubernetesProviderOptions::new(&env.dir)
            .with_env(|_| None)
            .with_helm_path("/nonexistent/helm"),
    );
    let read = provider
        .read(ReadRequest {
            address: agents.clone(),
            desired: desired(),
        })
        .await;
    assert!(read.diagnostics.is_empty(), "{:?}", read.diagnostics);
    assert!(read.state.is_none());
    let plan = provider
        .plan(PlanRequest {
            address: agents.clone(),
            prior: None,
            desired: desired(),
            unknown: vec![],
            replace_requested: false,
            mode: PlanMode::Normal,
        })
        .await;
    let d = plan
        .diagnostics
        .iter()
        .find(|d| d.code == "helm-not-found")
        .unwrap_or_else(|| panic!("{:?}", plan.diagnostics));
    assert!(d.message.contains("/nonexistent/helm"));

    // Install a release the way Helm stores it, plus the chart's ConfigMap and agents.
    let values = helm::install_values(
        &desired(),
        &arcplan_providers::kubernetes::key::PrivateKeyPem::new(
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAsecret\n-----END RSA PRIVATE KEY-----\n",
        ),
        None,
        None,
    );
    let manifest: String = arcplan_providers::kubernetes::AGENTS
        .iter()
        .map(|a| format!("---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {a}\n  namespace: azure-arc\n"))
        .collect();
    let release = json!({
        "name": "azure-arc", "namespace": "azure-arc-release", "version": 2,
        "info": {"status": "deployed"},
        "chart": {"metadata": {"name": "azure-arc-k8sagents", "version": "1.21.10"}},
        "config": values,
        "manifest": manifest,
    });
    kube.put(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "azure-arc-release"}}),
    )
    .unwrap();
    let stored = helm::encode_release(&release);
    for (rev, status) in [(1, "superseded"), (2, "deployed")] {
        kube.put(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": format!("sh.helm.release.v1.azure-arc.v{rev}"), "namespace": "azure-arc-release",
                         "labels": {"owner": "helm", "name": "azure-arc", "status": status, "version": rev.to_string()}},
            "data": {"release": base64::engine::general_purpose::STANDARD.encode(&stored)},
        }))
        .unwrap();
    }
    kube.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "azure-arc"}}))
        .unwrap();
    kube.put(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "azure-clusterconfig", "namespace": "azure-arc"},
        "data": {"AZURE_SUBSCRIPTION_ID": SUB, "AZURE_RESOURCE_GROUP": "rg1", "AZURE_RESOURCE_NAME": "c1"},
    }))
    .unwrap();
    for a in arcplan_providers::kubernetes::AGENTS {
        kube.put(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": a, "namespace": "azure-arc"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": a}},
                     "template": {"metadata": {"labels": {"app": a}}, "spec": {"containers": [{"name": a, "image": "x"}]}}},
        }))
        .unwrap();
    }
    let cluster = env
        .provider
        .cluster(&json!({"kubeconfig": "kubeconfig", "context": "sandbox"}))
        .await
        .unwrap();
    let rel = helm::read_release(&cluster, "azure-arc", "azure-arc-release")
        .await
        .unwrap()
        .expect("release found");
    assert_eq!(rel.revision, 2);
    assert_eq!(rel.status, "deployed");
    assert_eq!(rel.chart_version, "1.21.10");
    assert_eq!(rel.values["global"]["resourceName"], "c1");
    assert!(rel.values["global"].get("onboardingPrivateKey").is_none());

    // Wait for the agents, then the plan is a no-op; a version bump is an update.
    let deadline = Instant::now() + Duration::from_secs(20);
    let state = loop {
        let read = provider
            .read(ReadRequest {
                address: agents.clone(),
                desired: desired(),
            })
            .await;
        assert!(read.diagnostics.is_empty(), "{:?}", read.diagnostics);
        let s = read.state.unwrap();
        if s["ready"] == true || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(state["release"]["version"], "1.21.10");
    assert_eq!(state["release"]["deployments"].as_array().unwrap().len(), 9);
    assert!(!state.to_string().contains("PRIVATE KEY"));
    assert!(!state.to_string().contains("MIIEowIBAAKCAQEAsecret"));
    let plan = |d: serde_json::Value, prior: serde_json::Value| PlanRequest {
        address: agents.clone(),
        prior: Some(prior),
        desired: d,
        unknown: vec![],
        replace_requested: false,
        mode: PlanMode::Normal,
    };
    let same = provider.plan(plan(desired(), state.clone())).await;
    assert!(same.diagnostics.is_empty(), "{:?}", same.diagnostics);
    assert_eq!(same.action, Some(Action::NoOp), "{:?}", same.reason);
    // Installed agents stay at the version they run: Azure Arc upgrades them (a pinned version
    // through the connected cluster's desiredAgentVersion), so a new `version` plans nothing here.
    assert_eq!(state["agentVersion"], "1.21.10");
    let mut newer = desired();
    newer["version"] = json!("1.22.0");
    let same = provider.plan(plan(newer.clone(), state.clone())).await;
    assert_eq!(same.action, Some(Action::NoOp), "{:?}", same.reason);
    // A values change is an update, at the installed chart version.
    newer["distribution"] = json!("k3s");
    let up = provider.plan(plan(newer, state.clone())).await;
    assert_eq!(up.action, Some(Action::Update));
    let reason = up.reason.unwrap().message;
    assert!(!reason.contains("chart version"), "{reason}");
    assert_eq!(up.after.unwrap()["release"]["version"], "1.21.10");
    let helm_missing = up.diagnostics.iter().any(|d| d.code == "helm-not-found");
    assert!(helm_missing, "an update needs helm");
    env.stop().await;
}
