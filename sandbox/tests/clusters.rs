//! A sandbox emulating several Kubernetes clusters: each under `/clusters/{name}` on the one
//! Kubernetes port, with its own objects, nodes, tokens and kubeconfig context, its own simulated
//! Arc agents, and faults, counts and the request log covering every cluster.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use arcplan_sandbox::agents::{Heartbeat, heartbeat_all};
use arcplan_sandbox::{AgentOptions, Sandbox, SandboxError, SandboxOptions};
use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

const KUBECTL: &str = "/usr/bin/kubectl";

fn with_clusters(names: &[&str]) -> SandboxOptions {
    SandboxOptions {
        clusters: names.iter().map(|n| n.to_string()).collect(),
        ..quick()
    }
}

/// A private temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "arcplan-sandbox-clusters-{tag}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn kube_client(kubeconfig: &Path, context: &str) -> kube::Client {
    let kc = Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let opts = KubeConfigOptions {
        context: Some(context.to_string()),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

async fn kubectl(dir: &Path, args: &[&str]) -> (bool, String) {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(KUBECTL)
            .args(&args)
            .arg(format!("--cache-dir={}", dir.join("cache").display()))
            .env("KUBECONFIG", dir.join("kubeconfig"))
            .env("HOME", &dir)
            .current_dir(&dir)
            .output()
            .expect("run kubectl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    })
    .await
    .expect("join")
}

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}}))
        .expect("configmap")
}

#[tokio::test]
async fn clusters_onboard_and_connect_independently() {
    let env = Env::start(SandboxOptions {
        nodes_per_cluster: 2,
        ..with_clusters(&["store-01", "store-02"])
    })
    .await;
    env.prepare("fleet").await;
    let (private_a, public_a) = key_pair("a");
    let (private_b, public_b) = key_pair("b");
    let one = create_connected_cluster(&env, "fleet", "store-01", &public_a).await;
    let two = create_connected_cluster(&env, "fleet", "store-02", &public_b).await;
    let kube_one = env.sandbox.kube_for("store-01").expect("store-01");
    let kube_two = env.sandbox.kube_for("store-02").expect("store-02");

    // store-02's Secret holds the wrong key: only store-01 connects.
    onboard(&env.sandbox, kube_one, "fleet", "store-01", &private_a);
    onboard(&env.sandbox, kube_two, "fleet", "store-02", &private_a);
    let connected = wait_for_status(&env, &one, "Connected").await;
    assert_eq!(connected["properties"]["totalNodeCount"], 2);
    assert_eq!(connected["properties"]["totalCoreCount"], 8);
    let clusters = [kube_one.clone(), kube_two.clone()];
    // store-02's agent Deployments become available on their own clock; wait for that (bounded)
    // so the verdict is about the key, not the rollout.
    let started = std::time::Instant::now();
    let verdicts = loop {
        let v = heartbeat_all(env.sandbox.arm(), &clusters, &AgentOptions::default());
        if v[1] != Heartbeat::AgentsNotReady
            || started.elapsed() > std::time::Duration::from_secs(30)
        {
            break v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(verdicts, [Heartbeat::Connected, Heartbeat::KeyMismatch]);
    let (_, _, body) = env.get(&two, CC_API).await;
    assert_eq!(body["properties"]["connectivityStatus"], "Connecting");

    // Each cluster holds only its own objects.
    let secret = |kube: &arcplan_sandbox::KubeApi| {
        kube.get(
            "v1",
            "Secret",
            Some("azure-arc"),
            "azure-arc-connect-privatekey",
        )
        .expect("secret")["metadata"]["uid"]
            .clone()
    };
    assert_ne!(secret(kube_one), secret(kube_two));
    assert!(
        kube_one
            .get("v1", "Node", None, "store-01-node-2")
            .is_some()
    );
    assert!(
        kube_two
            .get("v1", "Node", None, "store-01-node-1")
            .is_none()
    );

    // With the right key, store-02 connects too, and store-01 stays Connected.
    set_private_key(kube_two, &private_b);
    wait_for_status(&env, &two, "Connected").await;
    let (_, _, body) = env.get(&one, CC_API).await;
    assert_eq!(body["properties"]["connectivityStatus"], "Connected");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_client_and_kubectl_reach_each_cluster_through_its_context() {
    let env = Env::start(with_clusters(&["alpha", "beta"])).await;
    let dir = TempDir::new("contexts");
    let [_, kubeconfig, _] = env.sandbox.write_files(&dir.0).expect("files");

    // Contexts: `sandbox` (the first cluster, bare server) and one per cluster.
    let config: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&kubeconfig).expect("read"))
            .expect("kubeconfig YAML");
    assert_eq!(config["current-context"], "sandbox");
    let contexts: Vec<&str> = config["contexts"]
        .as_array()
        .expect("contexts")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(contexts, ["sandbox", "alpha", "beta"]);
    let beta_server = env.sandbox.kube_server_for("beta").expect("beta");
    assert!(beta_server.ends_with("/clusters/beta"), "{beta_server}");
    assert!(
        config["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .any(|c| c["cluster"]["server"] == beta_server.as_str())
    );
    assert_eq!(env.sandbox.kube_server_for("gamma"), None);
    assert!(env.sandbox.kube_for("gamma").is_none());

    // The kube client through context `beta` reaches beta only.
    let beta = kube_client(&kubeconfig, "beta").await;
    Api::<ConfigMap>::namespaced(beta.clone(), "default")
        .create(&PostParams::default(), &config_map("from-client"))
        .await
        .expect("create in beta");
    let kube_alpha = env.sandbox.kube_for("alpha").expect("alpha");
    let kube_beta = env.sandbox.kube_for("beta").expect("beta");
    assert!(
        kube_beta
            .get("v1", "ConfigMap", Some("default"), "from-client")
            .is_some()
    );
    assert!(
        kube_alpha
            .get("v1", "ConfigMap", Some("default"), "from-client")
            .is_none()
    );
    let nodes = Api::<Node>::all(beta)
        .list(&ListParams::default())
        .await
        .expect("nodes");
    let names: Vec<String> = nodes
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    assert_eq!(names, ["beta-node-1", "beta-node-2", "beta-node-3"]);

    // Contexts `sandbox` and `alpha` are the same cluster (bare and prefixed server).
    for context in ["sandbox", "alpha"] {
        let client = kube_client(&kubeconfig, context).await;
        Api::<ConfigMap>::namespaced(client, "default")
            .create(
                &PostParams::default(),
                &config_map(&format!("via-{context}")),
            )
            .await
            .expect("create in alpha");
        assert!(
            kube_alpha
                .get(
                    "v1",
                    "ConfigMap",
                    Some("default"),
                    &format!("via-{context}")
                )
                .is_some()
        );
    }

    // Tokens are per cluster; the no-rights token works in its own cluster.
    let get = |url: String, token: String| {
        let http = env.http.clone();
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("answered")
                .status()
        }
    };
    let beta_cms = format!("{beta_server}/api/v1/namespaces/default/configmaps");
    assert_eq!(
        get(beta_cms.clone(), kube_beta.admin_token()).await,
        StatusCode::OK
    );
    assert_eq!(
        get(beta_cms.clone(), kube_alpha.admin_token()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(beta_cms, kube_beta.no_rights_token()).await,
        StatusCode::FORBIDDEN
    );

    // The real kubectl, by context.
    if Path::new(KUBECTL).exists() {
        let (ok, out) = kubectl(
            &dir.0,
            &["--context", "beta", "get", "configmaps", "-o", "name"],
        )
        .await;
        assert!(ok && out.contains("configmap/from-client"), "{out}");
        assert!(!out.contains("via-"), "{out}");
        std::fs::write(
            dir.0.join("ns.yaml"),
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n",
        )
        .expect("manifest");
        let (ok, out) = kubectl(
            &dir.0,
            &[
                "--context",
                "beta",
                "apply",
                "--server-side",
                "-f",
                "ns.yaml",
            ],
        )
        .await;
        assert!(
            ok && out.contains("namespace/x serverside-applied"),
            "{out}"
        );
        assert!(kube_beta.get("v1", "Namespace", None, "x").is_some());
        assert!(kube_alpha.get("v1", "Namespace", None, "x").is_none());
        let (ok, out) = kubectl(&dir.0, &["--context", "alpha", "get", "ns", "x"]).await;
        assert!(!ok && out.contains("namespaces \"x\" not found"), "{out}");
        let (ok, out) = kubectl(&dir.0, &["get", "nodes", "-o", "name"]).await;
        assert!(ok && out.contains("node/alpha-node-1"), "{out}");
    }
    env.shutdown().await;
}

#[tokio::test]
async fn counts_faults_and_the_log_cover_every_cluster() {
    let dir = TempDir::new("log");
    let log_path = dir.0.join("requests.jsonl");
    let env = Env::start(SandboxOptions {
        log_path: Some(log_path.clone()),
        ..with_clusters(&["a", "2"])
    })
    .await;
    let sandbox = &env.sandbox;
    // A numeric cluster name stays a string in the kubeconfig.
    let config: Value = serde_saphyr::from_str(&sandbox.kubeconfig_yaml()).expect("YAML");
    assert_eq!(config["contexts"][2]["name"], "2");
    assert_eq!(config["users"][2]["name"], "2-admin");
    let get = |url: String, token: String| {
        let http = env.http.clone();
        async move {
            let resp = http
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("answered");
            let status = resp.status();
            (status, resp.text().await.expect("body"))
        }
    };
    let a = sandbox.kube_for("a").expect("a").clone();
    let b = sandbox.kube_for("2").expect("2").clone();
    let before = sandbox.request_counts().kube;
    let urls = [
        (format!("{}/api/v1/namespaces", sandbox.kube_server()), &a),
        (
            format!(
                "{}/api/v1/namespaces",
                sandbox.kube_server_for("a").unwrap()
            ),
            &a,
        ),
        (
            format!(
                "{}/api/v1/namespaces",
                sandbox.kube_server_for("2").unwrap()
            ),
            &b,
        ),
        (
            format!("{}/version", sandbox.kube_server_for("2").unwrap()),
            &b,
        ),
    ];
    for (url, api) in &urls {
        let (status, body) = get(url.clone(), api.admin_token()).await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
    }
    assert_eq!(sandbox.request_counts().kube, before + 4);
    assert_eq!(a.request_count(), 2);
    assert_eq!(b.request_count(), 2);

    // An unknown cluster is a plain 404, counted like any request.
    let (status, _) = get(
        format!("{}/clusters/c/api/v1/namespaces", sandbox.kube_server()),
        a.admin_token(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(sandbox.request_counts().kube, before + 5);

    // Injected faults reach a prefixed cluster, before its handler runs.
    sandbox.faults().set_error_rate(1.0);
    let (status, body) = get(
        format!(
            "{}/api/v1/namespaces",
            sandbox.kube_server_for("2").unwrap()
        ),
        b.admin_token(),
    )
    .await;
    assert!(status.is_server_error(), "{status}");
    assert!(body.contains("sandbox fault injection"), "{body}");
    assert_eq!(b.request_count(), 2);
    sandbox.faults().set_error_rate(0.0);

    let token = b.admin_token();
    env.shutdown().await;
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(!log.contains(&token), "a credential leaked into the log");
    let paths: Vec<String> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
        .filter(|l| l["server"] == "kube")
        .filter_map(|l| l["path"].as_str().map(str::to_string))
        .collect();
    assert!(
        paths.iter().any(|p| p == "/clusters/2/api/v1/namespaces"),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p == "/clusters/2/version"),
        "{paths:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_250_clusters_is_served() {
    let names: Vec<String> = (1..=250).map(|i| format!("store-{i:03}")).collect();
    let env = Env::start(SandboxOptions {
        clusters: names.clone(),
        nodes_per_cluster: 1,
        ..quick()
    })
    .await;
    let sandbox = &env.sandbox;
    assert_eq!(sandbox.cluster_names().collect::<Vec<_>>(), names);
    let config: Value = serde_saphyr::from_str(&sandbox.kubeconfig_yaml()).expect("YAML");
    assert_eq!(config["contexts"].as_array().map(Vec::len), Some(251));

    // The last cluster answers on its prefix, with its own node.
    let last = sandbox.kube_for("store-250").expect("last cluster");
    let resp = env
        .http
        .get(format!(
            "{}/api/v1/nodes",
            sandbox.kube_server_for("store-250").unwrap()
        ))
        .bearer_auth(last.admin_token())
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), StatusCode::OK);
    let nodes: Value = resp.json().await.expect("JSON");
    assert_eq!(nodes["items"][0]["metadata"]["name"], "store-250-node-1");

    // Two clusters of the fleet connect while the others idle.
    env.prepare("fleet").await;
    let (private, public) = key_pair("a");
    for name in ["store-001", "store-250"] {
        let path = create_connected_cluster(&env, "fleet", name, &public).await;
        let kube = sandbox.kube_for(name).expect("cluster");
        onboard(sandbox, kube, "fleet", name, &private);
        let body = wait_for_status(&env, &path, "Connected").await;
        assert_eq!(body["properties"]["totalNodeCount"], 1);
    }
    env.shutdown().await;
}

#[tokio::test]
async fn invalid_cluster_lists_are_refused() {
    for (clusters, why) in [
        (vec![], "at least one"),
        (vec!["a", "a"], "declared twice"),
        (vec!["a", "sandbox"], "only the first"),
        (vec!["a/b"], "is not a cluster name"),
        (vec![".."], "is not a cluster name"),
        (vec![""], "is not a cluster name"),
    ] {
        let err = Sandbox::start(SandboxOptions {
            clusters: clusters.iter().map(|c| c.to_string()).collect(),
            ..SandboxOptions::default()
        })
        .await
        .expect_err("refused");
        assert!(
            matches!(
                err,
                SandboxError::InvalidOption {
                    option: "clusters",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains(why), "{clusters:?}: {err}");
    }
    let err = Sandbox::start(SandboxOptions {
        nodes_per_cluster: 0,
        ..SandboxOptions::default()
    })
    .await
    .expect_err("no nodes");
    assert!(err.to_string().contains("nodes_per_cluster"), "{err}");
}
