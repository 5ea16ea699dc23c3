//! Emulator of the Kubernetes API server (kube-apiserver), good enough for the real `kube` crate
//! client and the real `kubectl`.
//!
//! # What is emulated
//! - Discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}`, `/apis/{group}/{version}`
//!   in the plain (non-aggregated) form, like a v1.20 server; clients asking for aggregated
//!   discovery (`apidiscovery.k8s.io/v2`) get the plain documents with `Content-Type:
//!   application/json` and fall back, as they do against older servers. `/openapi/v3` serves an
//!   index and per-group-version documents listing the operations (with `fieldValidation` on
//!   PATCH, which is what kubectl checks before trusting server-side validation) and stub schemas;
//!   `/openapi/v2` answers 404. `/healthz`, `/livez`, `/readyz` answer `ok`.
//! - A generic object store for the resources in [`resources::RESOURCES`], each defined with its
//!   per-kind rules (defaults, validation, deletion, Table columns) in `kinds` (core/v1 namespaces,
//!   secrets, configmaps, serviceaccounts, nodes, pods, events, services; apps/v1 deployments,
//!   replicasets; rbac.authorization.k8s.io/v1 roles, bindings and cluster variants;
//!   coordination.k8s.io/v1 leases; authorization.k8s.io/v1 selfsubjectaccessreviews, create only).
//! - Verbs: get, list (label and field selectors, `limit`/`continue`), watch (from a bounded event
//!   history; older `resourceVersion`s get `410 Expired`), create (`generateName`), update
//!   (optimistic concurrency on `metadata.resourceVersion`), patch (JSON patch, merge patch, a
//!   strategic-merge subset, server-side apply with `fieldManager`/`force` and conflicts), delete
//!   (with ownerReference garbage collection, `Orphan` honoured) and deletecollection; `dryRun=All`;
//!   the `status` subresource of every resource that has one.
//! - metadata: `uid`, `creationTimestamp`, global `resourceVersion` counter, `generation` (bumped on
//!   spec changes of deployments and replicasets), `managedFields` (FieldsV1, Apply/Update).
//! - `metav1.Status` errors with the apiserver's reasons, codes and messages.
//! - Authentication by bearer token: the admin token may do everything; the no-rights token is an
//!   authenticated user without RBAC bindings (discovery, version, health and
//!   SelfSubjectAccessReview only; everything else is `403 Forbidden`); anything else is `401`.
//! - Table output (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`) for `kubectl get`.
//! - Controllers ([`KubeApi::run_controllers`]): deployments get a ReplicaSet and Running/Ready
//!   pods after [`KubeOptions::deployment_ready_delay`], then Available status; namespaces being
//!   deleted are emptied and removed after [`KubeOptions::namespace_delete_delay`]; every active
//!   namespace gets a `default` ServiceAccount.
//!
//! # What is not emulated
//! Protobuf, CRDs, admission webhooks, real RBAC evaluation (two fixed identities), pod logs/exec,
//! graceful pod deletion, `/scale`, full OpenAPI-schema-driven validation and defaulting (only a
//! few well-known defaults and validations), exact structured-merge-diff semantics for every type
//! (see `fields` for the approximations), foreground deletion (treated as background), and
//! watch bookmarks, aggregated discovery (`apidiscovery.k8s.io`), and `fieldValidation=Strict`
//! (accepted, but unknown fields are kept rather than rejected). Behaviour is held to a real
//! kube-apiserver v1.20.2 by `providers/tests/conformance.rs` (one suite, both targets). The
//! served version is `v1.30.6` by default (kubectl 1.3x sends protobuf to servers claiming
//! v1.20) and configurable ([`KubeOptions::version`]); namespaces get the
//! `kubernetes.io/metadata.name` label when it is v1.21 or newer, as real servers do.

mod controllers;
mod fields;
mod handlers;
mod kinds;
mod openapi;
mod resources;
mod selector;
mod status;
mod store;
mod table;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use status::ApiError;

/// One simulated node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    /// Node name.
    pub name: String,
    /// CPU cores (`status.capacity.cpu`).
    pub cpu_cores: u32,
    /// Memory quantity (`status.capacity.memory`, e.g. `16Gi`).
    pub memory: String,
    /// `status.nodeInfo.kubeletVersion`.
    pub kubelet_version: String,
    /// `status.nodeInfo.osImage`.
    pub os_image: String,
    /// Labels (`kubernetes.io/os`, `kubernetes.io/arch`, `kubernetes.io/hostname`, ...).
    pub labels: BTreeMap<String, String>,
}

impl NodeSpec {
    /// A Linux amd64 node with 4 cores and 16Gi, running `kubelet_version`.
    pub fn linux(name: &str, kubelet_version: &str) -> Self {
        let labels = [
            ("beta.kubernetes.io/arch", "amd64"),
            ("beta.kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", "amd64"),
            ("kubernetes.io/hostname", name),
            ("kubernetes.io/os", "linux"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        NodeSpec {
            name: name.to_string(),
            cpu_cores: 4,
            memory: "16Gi".into(),
            kubelet_version: kubelet_version.to_string(),
            os_image: "Ubuntu 22.04.4 LTS".into(),
            labels,
        }
    }
}

/// The `/version` document (`version.Info`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerVersion {
    /// `major`, e.g. `1`.
    pub major: String,
    /// `minor`, e.g. `30`.
    pub minor: String,
    /// `gitVersion`, e.g. `v1.30.6`.
    pub git_version: String,
    /// `gitCommit`.
    pub git_commit: String,
    /// `buildDate`.
    pub build_date: String,
    /// `goVersion`.
    pub go_version: String,
    /// `platform`.
    pub platform: String,
}

/// The Kubernetes version the emulator reports by default (server and kubelets). Its behaviour
/// is checked against kube-apiserver v1.20.2 (`providers/tests/conformance.rs`) and follows it
/// where versions differ, except what is keyed on the claimed version ([`KubeOptions::version`]).
/// The claim stays at v1.30 because kubectl 1.3x sends protobuf request bodies to servers that
/// claim v1.20, and the emulator speaks JSON only.
pub const DEFAULT_KUBERNETES_VERSION: &str = "v1.30.6";

impl Default for ServerVersion {
    fn default() -> Self {
        ServerVersion {
            major: "1".into(),
            minor: "30".into(),
            git_version: DEFAULT_KUBERNETES_VERSION.into(),
            git_commit: "00f20d443ba0cd1e1e7a4cb9f5a5a4b7ab6e9a1b".into(),
            build_date: "2024-10-22T20:28:14Z".into(),
            go_version: "go1.22.8".into(),
            platform: "linux/amd64".into(),
        }
    }
}

impl ServerVersion {
    /// The minor version as a number (`"21+"` counts as 21; unparsable as 0).
    pub fn minor_number(&self) -> u32 {
        self.minor.trim_end_matches('+').parse().unwrap_or(0)
    }

    /// The JSON document served at `/version`.
    pub fn to_json(&self) -> Value {
        json!({
            "major": self.major,
            "minor": self.minor,
            "gitVersion": self.git_version,
            "gitCommit": self.git_commit,
            "gitTreeState": "clean",
            "buildDate": self.build_date,
            "goVersion": self.go_version,
            "compiler": "gc",
            "platform": self.platform,
        })
    }
}

/// Options of the Kubernetes API emulator.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeOptions {
    /// How long after creation (or a spec change) a Deployment's pods become Ready and the
    /// Deployment Available. Default 500 ms.
    pub deployment_ready_delay: Duration,
    /// How long a deleted namespace stays `Terminating` before it is gone. Default 100 ms.
    pub namespace_delete_delay: Duration,
    /// The nodes (default: 3 Linux nodes, 4 cores and 16Gi each).
    pub nodes: Vec<NodeSpec>,
    /// The `/version` answer (default `v1.30.6`; the reference server is v1.20.2). Behaviour that
    /// changed between versions follows it where the emulator knows the difference (from
    /// v1.21 on, namespaces get the `kubernetes.io/metadata.name` label).
    pub version: ServerVersion,
    /// Bearer token of the cluster admin (generated when `None`).
    pub admin_token: Option<String>,
    /// Bearer token of an authenticated user without any rights (generated when `None`).
    pub no_rights_token: Option<String>,
    /// `serverAddressByClientCIDRs` address reported by `/api` (default `127.0.0.1:6443`).
    pub server_address: String,
    /// How many past watch events are kept for watches that start from an older resourceVersion.
    pub watch_history: usize,
    /// How many bytes of past watch events (as compact JSON) are kept at most (default 64 KiB):
    /// an idle or quiet cluster keeps all of its recent changes, a busy one its newest, and a
    /// watch from before them gets 410 Gone, as from an apiserver whose watch cache moved on.
    pub watch_history_bytes: usize,
}

impl Default for KubeOptions {
    fn default() -> Self {
        KubeOptions {
            deployment_ready_delay: Duration::from_millis(500),
            namespace_delete_delay: Duration::from_millis(100),
            nodes: (1..=3)
                .map(|i| NodeSpec::linux(&format!("sandbox-node-{i}"), DEFAULT_KUBERNETES_VERSION))
                .collect(),
            version: ServerVersion::default(),
            admin_token: None,
            no_rights_token: None,
            server_address: "127.0.0.1:6443".into(),
            watch_history: 2000,
            watch_history_bytes: 64 * 1024,
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// The admin token (`system:masters`).
    Admin,
    /// The no-rights token.
    NoRights,
}

/// User name of the admin token.
pub const ADMIN_USER: &str = "sandbox-admin";
/// User name of the no-rights token.
pub const NO_RIGHTS_USER: &str = "sandbox-nobody";

/// One change, as sent to watchers.
#[derive(Debug, Clone)]
pub(crate) struct WatchEvent {
    pub rv: u64,
    pub kind: &'static str,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub object: Value,
}

pub(crate) struct Shared {
    pub opts: KubeOptions,
    pub admin_token: String,
    pub no_rights_token: String,
    pub requests: AtomicU64,
    pub state: Mutex<store::Store>,
    /// The channel to watchers, made by the first watch: a cluster nobody watches has none (one
    /// costs about 0.6 MB).
    pub events: std::sync::OnceLock<broadcast::Sender<WatchEvent>>,
}

/// The Kubernetes API emulator. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct KubeApi {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for KubeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeApi").finish_non_exhaustive()
    }
}

/// Error returned by [`KubeApi::put`].
pub type PutError = ApiError;

fn random_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let bytes: [u8; 24] = rng.random();
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl KubeApi {
    /// Creates the emulator with its built-in objects (namespaces `default`, `kube-system`,
    /// `kube-public`, `kube-node-lease` and the configured nodes).
    pub fn new(opts: KubeOptions) -> Self {
        let admin_token = opts.admin_token.clone().unwrap_or_else(random_token);
        let no_rights_token = opts.no_rights_token.clone().unwrap_or_else(random_token);
        let api = KubeApi {
            shared: Arc::new(Shared {
                admin_token,
                no_rights_token,
                requests: AtomicU64::new(0),
                state: Mutex::new({
                    let mut store = store::Store::new(opts.watch_history, opts.watch_history_bytes);
                    store.namespace_name_label = opts.version.minor_number() >= 21;
                    store
                }),
                events: std::sync::OnceLock::new(),
                opts,
            }),
        };
        api.bootstrap();
        api
    }

    fn bootstrap(&self) {
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let _ = self
                .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
        }
        let nodes = self.shared.opts.nodes.clone();
        for (i, n) in nodes.iter().enumerate() {
            let _ = self.put(store::node_object(n, i));
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, store::Store> {
        match self.shared.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(crate) fn publish(&self, events: Vec<WatchEvent>) {
        let Some(tx) = self.shared.events.get() else {
            return;
        };
        for e in events {
            let _ = tx.send(e);
        }
    }

    /// A receiver of every change from now on (the channel is made on the first call).
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<WatchEvent> {
        self.shared
            .events
            .get_or_init(|| broadcast::channel(4096).0)
            .subscribe()
    }

    /// The HTTP router serving the whole API (bearer-token authentication included).
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .fallback(handlers::handle)
            .with_state(self.clone())
    }

    /// The admin bearer token.
    pub fn admin_token(&self) -> String {
        self.shared.admin_token.clone()
    }

    /// The bearer token of an authenticated user with no rights.
    pub fn no_rights_token(&self) -> String {
        self.shared.no_rights_token.clone()
    }

    /// The options the emulator runs with (tokens as given, not as generated).
    pub fn options(&self) -> &KubeOptions {
        &self.shared.opts
    }

    pub(crate) fn caller(&self, token: &str) -> Option<Caller> {
        if token == self.shared.admin_token {
            Some(Caller::Admin)
        } else if token == self.shared.no_rights_token {
            Some(Caller::NoRights)
        } else {
            None
        }
    }

    /// Runs the simulated controllers (deployments, namespace finalization, default service
    /// accounts, garbage collection of orphans) until `cancel` fires.
    pub async fn run_controllers(&self, cancel: CancellationToken) {
        controllers::run(self.clone(), cancel).await;
    }

    /// Reads one object (`api_version` like `v1` or `apps/v1`; `namespace` `None` for
    /// cluster-scoped kinds). Includes `apiVersion` and `kind`.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let def = resources::by_kind(api_version, kind)?;
        self.lock().get(def, namespace.unwrap_or(""), name).cloned()
    }

    /// Lists objects of a kind, in one namespace or (with `None`) everywhere.
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(def) = resources::by_kind(api_version, kind) else {
            return Vec::new();
        };
        self.lock()
            .list(def, namespace)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Creates or replaces an object (as an update by field manager `arcplan-sandbox`), bumping
    /// its resourceVersion. `status` is taken from `obj` too. The namespace must exist.
    pub fn put(&self, obj: Value) -> Result<Value, PutError> {
        let (out, events) = self.lock().put_internal(obj, "arcplan-sandbox")?;
        self.publish(events);
        Ok(out)
    }

    /// Deletes an object (and, like the garbage collector, its dependents). Returns whether it
    /// existed. Namespaces start terminating (see [`KubeOptions::namespace_delete_delay`]).
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let Some(def) = resources::by_kind(api_version, kind) else {
            return false;
        };
        let res = self.lock().delete(
            def,
            namespace.unwrap_or(""),
            name,
            &store::DeleteOpts::default(),
        );
        match res {
            Ok((_, events)) => {
                self.publish(events);
                true
            }
            Err(_) => false,
        }
    }

    /// `(node count, total CPU cores, Kubernetes version)` as the Arc agents report them; the
    /// version is the server's `gitVersion`.
    pub fn nodes_summary(&self) -> (usize, u64, String) {
        let nodes = self.list("v1", "Node", None);
        let cores = nodes
            .iter()
            .filter_map(|n| n.pointer("/status/capacity/cpu").and_then(Value::as_str))
            .filter_map(|c| c.parse::<u64>().ok())
            .sum();
        (
            nodes.len(),
            cores,
            self.shared.opts.version.git_version.clone(),
        )
    }

    /// How many HTTP requests the router has received.
    pub fn request_count(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }
}
