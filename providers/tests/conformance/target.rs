//! The cluster the conformance suite runs against: the sandbox's Kubernetes emulator (default,
//! one fresh emulator per test) or a real kube-apiserver when `ARCPLAN_CONFORMANCE_KUBECONFIG`
//! names a kubeconfig with contexts `admin` and `norights` (what `scripts/kube-apiserver.sh
//! start DIR` writes). Everything the suite does goes through the Kubernetes API: there is no
//! back door into either target.
//!
//! A real API server has no kubelets and no deployment controller, so the suite plays those
//! roles where a test needs them, explicitly: [`play_deployment_controller`] (Deployments become
//! available through the status subresource) and [`Target::register_node`] (a Linux Node object,
//! as a kubelet would register). Against the emulator, whose controllers do this themselves,
//! both are harmless and used only when the target is real.

#![allow(dead_code)]

use arcplan_sandbox::{Sandbox, SandboxOptions};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The environment variable naming a real cluster's kubeconfig.
pub const KUBECONFIG_VAR: &str = "ARCPLAN_CONFORMANCE_KUBECONFIG";

/// Serialises the tests that use arcplan's fixed namespaces (`azure-arc`, `azure-arc-release`,
/// the lock Lease in `kube-system`) on a shared real cluster. Against the emulator every test
/// has its own cluster, so the lock is not taken.
static SHARED_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Which kind of cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The sandbox's emulator, started in process.
    Emulator,
    /// A real kube-apiserver.
    Real,
}

/// One cluster for one test.
pub struct Target {
    pub flavor: Flavor,
    /// A directory of this test's own, holding `kubeconfig` (contexts `admin`, `norights`).
    pub dir: PathBuf,
    /// The admin client.
    pub admin: Client,
    /// The client of the authenticated user without rights.
    pub norights: Client,
    sandbox: Option<Sandbox>,
    _exclusive: Option<tokio::sync::MutexGuard<'static, ()>>,
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "arcplan-conformance-{tag}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A kubeconfig of the emulator with the same two contexts a real cluster's has.
fn emulator_kubeconfig(sb: &Sandbox) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(sb.ca_pem());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: emulator\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: admin\n  user:\n    token: {}\n- name: norights\n  user:\n    token: {}\ncontexts:\n- name: admin\n  context:\n    cluster: emulator\n    user: admin\n- name: norights\n  context:\n    cluster: emulator\n    user: norights\ncurrent-context: admin\n",
        sb.kube_server(),
        sb.kube_token(),
        sb.kube_no_rights_token()
    )
}

/// A client for one context of a kubeconfig file.
pub async fn client_for(path: &Path, context: &str) -> Client {
    let kc = Kubeconfig::read_from(path).expect("the kubeconfig reads");
    let opts = KubeConfigOptions {
        context: Some(context.to_owned()),
        ..Default::default()
    };
    let config = Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap_or_else(|e| panic!("context `{context}` of {}: {e}", path.display()));
    Client::try_from(config).expect("a client")
}

impl Target {
    /// The target for a test that only uses its own namespaces (see [`Target::namespace`]):
    /// tests of this kind run in parallel on a real cluster too.
    pub async fn start(tag: &str) -> Target {
        Self::start_inner(tag, false).await
    }

    /// The target for a test that uses arcplan's fixed namespaces and the lock: on a real
    /// cluster it waits for the other such tests and starts from a cluster without them.
    pub async fn start_exclusive(tag: &str) -> Target {
        let t = Self::start_inner(tag, true).await;
        if t.flavor == Flavor::Real {
            t.reset_arcplan_objects().await;
            t.register_node().await;
        }
        t
    }

    async fn start_inner(tag: &str, exclusive: bool) -> Target {
        let dir = temp_dir(tag);
        let path = dir.join("kubeconfig");
        match std::env::var(KUBECONFIG_VAR).ok().filter(|s| !s.is_empty()) {
            Some(real) => {
                let guard = if exclusive {
                    Some(SHARED_CLUSTER.lock().await)
                } else {
                    None
                };
                std::fs::copy(&real, &path)
                    .unwrap_or_else(|e| panic!("{KUBECONFIG_VAR}={real} cannot be read: {e}"));
                Target {
                    flavor: Flavor::Real,
                    admin: client_for(&path, "admin").await,
                    norights: client_for(&path, "norights").await,
                    dir,
                    sandbox: None,
                    _exclusive: guard,
                }
            }
            None => {
                let sandbox = Sandbox::start(SandboxOptions {
                    deployment_ready_delay: Duration::from_millis(100),
                    ..SandboxOptions::default()
                })
                .await
                .expect("the sandbox starts");
                std::fs::write(&path, emulator_kubeconfig(&sandbox)).unwrap();
                Target {
                    flavor: Flavor::Emulator,
                    admin: client_for(&path, "admin").await,
                    norights: client_for(&path, "norights").await,
                    dir,
                    sandbox: Some(sandbox),
                    _exclusive: None,
                }
            }
        }
    }

    pub fn is_real(&self) -> bool {
        self.flavor == Flavor::Real
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// A fresh namespace of this test's own (`conf-<tag>-<random>`), created and Active.
    pub async fn namespace(&self, tag: &str) -> String {
        let name = format!(
            "conf-{tag}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let api: Api<Namespace> = Api::all(self.admin.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &ns)
            .await
            .expect("namespace created");
        name
    }

    /// Deletes arcplan's namespaces and lock Leases and waits until they are gone.
    async fn reset_arcplan_objects(&self) {
        let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
            Api::namespaced(self.admin.clone(), "kube-system");
        let _ = leases
            .delete("arcplan-lock", &DeleteParams::default())
            .await;
        let ns: Api<Namespace> = Api::all(self.admin.clone());
        for name in ["azure-arc", "azure-arc-release"] {
            let _ = ns.delete(name, &DeleteParams::default()).await;
        }
        for name in ["azure-arc", "azure-arc-release"] {
            eventually(
                &format!("namespace {name} gone"),
                Duration::from_secs(60),
                || {
                    let ns = ns.clone();
                    async move { matches!(ns.get_opt(name).await, Ok(None)) }
                },
            )
            .await;
        }
    }

    /// Plays the kubelet's registration: one Ready Linux Node, as the provider's preflight
    /// needs (a real API server without kubelets has no nodes).
    pub async fn register_node(&self) {
        let api: Api<Node> = Api::all(self.admin.clone());
        let name = "conformance-node-1";
        if api.get_opt(name).await.expect("read node").is_some() {
            return;
        }
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {
                "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name}},
        }))
        .unwrap();
        match api.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => return,
            Err(e) => panic!("register node: {e}"),
        }
        let status = json!({"status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "played by the conformance suite"}],
            "nodeInfo": {"kubeletVersion": "v1.20.2", "osImage": "Debian GNU/Linux 12",
                         "operatingSystem": "linux", "architecture": "amd64",
                         "kernelVersion": "", "containerRuntimeVersion": "", "kubeProxyVersion": "",
                         "machineID": "", "systemUUID": "", "bootID": ""}}});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("node status");
    }

    /// Starts [`play_deployment_controller`] for the namespace when the target is real; the
    /// returned token stops it (dropping the guard stops it too).
    pub fn deployment_controller(&self, namespace: &str) -> ControllerGuard {
        let cancel = CancellationToken::new();
        if self.is_real() {
            let client = self.admin.clone();
            let ns = namespace.to_owned();
            let c = cancel.clone();
            tokio::spawn(async move { play_deployment_controller(client, ns, c).await });
        }
        ControllerGuard(cancel)
    }

    /// Stops the emulator, removes the test directory.
    pub async fn stop(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(sb) = self.sandbox {
            sb.shutdown().await;
        }
    }
}

/// Stops a stand-in controller when dropped.
pub struct ControllerGuard(CancellationToken);

impl Drop for ControllerGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The suite's stand-in for the deployment controller and the kubelets of a real cluster: every
/// Deployment in `namespace` whose status does not yet describe its current generation as fully
/// available gets, through the `status` subresource, what the controllers would report once the
/// pods run: `observedGeneration`, the replica counts and the `Available` and `Progressing`
/// conditions. Runs until `cancel` fires. Used only against a real API server (the emulator
/// simulates these controllers itself); against the emulator it would only restate what its
/// controller writes.
pub async fn play_deployment_controller(
    client: Client,
    namespace: String,
    cancel: CancellationToken,
) {
    let api: Api<Deployment> = Api::namespaced(client, &namespace);
    while !cancel.is_cancelled() {
        if let Ok(list) = api.list(&ListParams::default()).await {
            for d in list.items {
                let Some(name) = d.metadata.name.clone() else {
                    continue;
                };
                if d.metadata.deletion_timestamp.is_some()
                    || arcplan_providers::kubernetes::readiness::deployment_available(&d)
                {
                    continue;
                }
                let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let now = k8s_openapi::jiff::Timestamp::now().to_string();
                let status = json!({"status": {
                    "observedGeneration": d.metadata.generation.unwrap_or(1),
                    "replicas": replicas, "updatedReplicas": replicas,
                    "readyReplicas": replicas, "availableReplicas": replicas,
                    "conditions": [
                        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                         "message": "Deployment has minimum availability.",
                         "lastUpdateTime": now, "lastTransitionTime": now},
                        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                         "message": format!("ReplicaSet \"{name}\" has successfully progressed."),
                         "lastUpdateTime": now, "lastTransitionTime": now}]}});
                let _ = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await;
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// Polls `f` until it is true; panics naming `what` after `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return;
        }
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `Status` of a failed call (panics on success or a non-API error).
pub fn status_of<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> Box<kube::core::Status> {
    match r {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected an API error Status, got {other:?}"),
    }
}

/// A raw GET of a path as JSON with the admin client.
pub async fn get_json(client: &Client, path: &str) -> Value {
    let req = http::Request::get(path).body(Vec::new()).unwrap();
    client
        .request::<Value>(req)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// A raw request; returns (status code, body as JSON or string).
pub async fn raw(client: &Client, req: http::Request<Vec<u8>>) -> (u16, Value) {
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .expect("the request is sent");
    let code = resp.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("the body reads")
        .to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (code, body)
}
