//! The cluster side of Azure Arc onboarding: the Kubernetes provider.
//!
//! [`KubernetesProvider`] serves two resource types:
//! - `k8s.onboardingKey.<cluster>`: the RSA onboarding key, generated once and kept as PKCS#1 PEM
//!   in Secret `azure-arc-connect-privatekey` (namespace `azure-arc`); its output `publicKey` is
//!   re-derived from that Secret on every plan ([`onboarding_key`], [`key`]).
//! - `k8s.arcAgents.<cluster>`: the ownership record (ConfigMap `azure-clusterconfig`) and the
//!   Arc agents, installed by server-side apply of manifests or by Helm, then waited for until
//!   every agent Deployment is available ([`kinds::arc_agents`], [`installer`], [`readiness`],
//!   [`ownership`]).
//!
//! Each kind is one module of [`kinds`] implementing [`crate::kind::Kind`] over the shared
//! [`context::KubeCx`] (settings, cluster clients, key pool); the provider is that context plus
//! the [`crate::kind::Registry`] of kinds, and its [`Provider`] verbs delegate to the registry.
//!
//! It also takes the per-cluster apply lock: the `lock` verb (module `run_lock`) over
//! [`KubernetesProvider::acquire_lock`] ([`lock`]).
//! Cluster access (kubeconfig, context, one cached client per pair, preflight checks and error
//! wording) is in [`access`].
//!
//! What it does not do: anything in Azure (the connected cluster resource, its connectivity
//! check: the Azure provider), print (it emits events and returns diagnostics), or special-case
//! the sandbox (which is reached through a kubeconfig like any cluster). The private key never
//! leaves the cluster except on Helm's standard input: no plan value, output, event, diagnostic
//! or process argument holds it.

pub mod access;
pub mod context;
pub mod helm;
pub mod installer;
pub mod key;
pub mod key_pool;
pub mod kinds;
pub mod lock;
pub mod manifests;
pub mod ownership;
pub mod readiness;
pub mod retry;
mod run_lock;
mod transport;

/// The agents' kind module, under the name callers know.
pub use kinds::arc_agents as agents;
/// The onboarding key's kind module, under the name callers know.
pub use kinds::onboarding_key;

use crate::kind::Registry;
use arcplan_engine::address::ResourceType;
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use arcplan_engine::provider::*;
use async_trait::async_trait;
use context::KubeCx;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub use lock::{LockFence, LockGuard, LockWait};

/// The agents' namespace.
pub const NAMESPACE: &str = "azure-arc";
/// The Helm release's namespace.
pub const RELEASE_NAMESPACE: &str = "azure-arc-release";
/// The Helm release's name.
pub const RELEASE_NAME: &str = "azure-arc";
/// The Secret holding the onboarding private key.
pub const KEY_SECRET: &str = "azure-arc-connect-privatekey";
/// The data key of the private key in that Secret (what the agents read).
pub const KEY_FIELD: &str = "privateKey";
/// The ownership ConfigMap.
pub const CONFIG_MAP: &str = "azure-clusterconfig";
/// The apply lock's Lease.
pub const LOCK_NAME: &str = "arcplan-lock";
/// The server-side apply field manager.
pub const FIELD_MANAGER: &str = "arcplan";
/// The ownership label (key, value) on everything arcplan creates in a cluster.
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "arcplan");
/// The agent version used when the configuration names none.
pub const DEFAULT_AGENT_VERSION: &str = "1.21.10";
/// The Arc agents (one Deployment each in `azure-arc`).
pub const AGENTS: [&str; 9] = [
    "clusteridentityoperator",
    "config-agent",
    "controller-manager",
    "metrics-agent",
    "cluster-metadata-operator",
    "resource-sync-agent",
    "flux-logs-agent",
    "extension-manager",
    "kube-aad-proxy",
];

/// The agents' own features, as `az connectedk8s enable-features` turns them on: values of the
/// chart, objects of the built-in set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentFeatures {
    /// cluster-connect (`None`: the installer's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_connect: Option<bool>,
    /// Private link is on (the chart then turns cluster-connect off by default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private_link: bool,
    /// custom-locations: the Custom Locations service principal's object id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_locations_oid: Option<String>,
}

impl AgentFeatures {
    /// The features a cluster of the configuration declares.
    pub fn of(c: &arcplan_config::Cluster) -> Self {
        let f = &c.features;
        Self {
            cluster_connect: f.cluster_connect,
            private_link: f.private_link.is_some(),
            custom_locations_oid: f.custom_locations.as_ref().map(|x| x.oid.clone()),
        }
    }
}

/// Looks up an environment variable.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// How the provider is set up.
#[derive(Clone)]
pub struct KubernetesProviderOptions {
    /// Relative paths (kubeconfig, manifests, proxy CA, credential files) are taken from here:
    /// the configuration file's directory.
    pub base_dir: PathBuf,
    /// Environment lookups (`KUBECONFIG`, `HOME`, `PATH`, `HELM_CLIENT_PATH`, proxy credential
    /// variables). Default: the process environment.
    pub env: EnvLookup,
    /// The helm binary; default `HELM_CLIENT_PATH`, else `helm` on `PATH`.
    pub helm_path: Option<PathBuf>,
    /// The lock's `leaseDurationSeconds` (default 30 s); renewed every third of it.
    pub lease_duration: Duration,
    /// How often waits poll (readiness, namespace termination, the lock). Default 2 s.
    pub poll_interval: Duration,
}

impl std::fmt::Debug for KubernetesProviderOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesProviderOptions")
            .field("base_dir", &self.base_dir)
            .field("helm_path", &self.helm_path)
            .field("lease_duration", &self.lease_duration)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl KubernetesProviderOptions {
    /// Options with `base_dir` and the defaults (process environment, 30 s lease, 2 s polls).
    pub fn new(base_dir: impl AsRef<Path>) -> Self {
        Self {
            base_dir: base_dir.as_ref().to_path_buf(),
            env: Arc::new(|k| std::env::var(k).ok()),
            helm_path: None,
            lease_duration: Duration::from_secs(30),
            poll_interval: Duration::from_secs(2),
        }
    }

    /// Replaces the environment lookup.
    pub fn with_env(
        mut self,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Arc::new(env);
        self
    }

    /// Sets the helm binary.
    pub fn with_helm_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.helm_path = Some(path.into());
        self
    }

    /// Sets the lock's lease duration.
    pub fn with_lease_duration(mut self, d: Duration) -> Self {
        self.lease_duration = d;
        self
    }

    /// Sets the poll interval of waits.
    pub fn with_poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// One environment variable.
    pub fn env(&self, key: &str) -> Option<String> {
        (self.env)(key)
    }

    /// The helm binary to run: [`Self::helm_path`], else `HELM_CLIENT_PATH`, else `helm`.
    pub fn helm_program(&self) -> PathBuf {
        self.helm_path
            .clone()
            .or_else(|| {
                self.env("HELM_CLIENT_PATH")
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from("helm"))
    }
}

/// The Kubernetes provider (see the module documentation): the shared context and the kinds.
pub struct KubernetesProvider {
    cx: KubeCx,
    kinds: Registry<KubeCx>,
}

impl std::fmt::Debug for KubernetesProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesProvider")
            .field("opts", self.cx.options())
            .field("kinds", &self.kinds.types())
            .finish_non_exhaustive()
    }
}

impl KubernetesProvider {
    /// A provider with these options. Clients are made on first use, one per (kubeconfig,
    /// context), and kept for the provider's life.
    pub fn new(opts: KubernetesProviderOptions) -> Self {
        Self {
            cx: KubeCx::new(opts),
            kinds: kinds::registry(),
        }
    }

    /// The context every kind shares.
    pub fn context(&self) -> &KubeCx {
        &self.cx
    }

    /// The onboarding key generator ([`key_pool`]): `keys().set_prefetch(true)` makes plans
    /// start generating the keys their creates need, for the apply that follows in this process.
    pub fn keys(&self) -> &key_pool::KeyPool {
        self.cx.keys()
    }

    /// The options.
    pub fn options(&self) -> &KubernetesProviderOptions {
        self.cx.options()
    }

    /// The connected cluster for a `cluster` attribute (`{kubeconfig, context}`).
    pub async fn cluster(&self, cluster_attrs: &Value) -> Result<Arc<access::Cluster>, Diagnostic> {
        self.cx.cluster_of(cluster_attrs).await
    }

    /// Takes the cluster's apply lock (Lease `kube-system/arcplan-lock`) for `holder`, waiting
    /// up to `timeout`; fails naming the current holder and its last renewal. The guard renews the
    /// Lease until it is released or dropped. `cluster_attrs` is the `cluster` attribute of
    /// either resource type (`{kubeconfig, context}`).
    pub async fn acquire_lock(
        &self,
        cluster_attrs: &Value,
        holder: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<LockGuard, Diagnostic> {
        self.acquire_lock_with(cluster_attrs, holder, timeout, cancel, &|_| {})
            .await
    }

    /// Like [`Self::acquire_lock`]; `on_wait` is told who holds the lock when waiting starts and
    /// every 10 s after.
    pub async fn acquire_lock_with(
        &self,
        cluster_attrs: &Value,
        holder: &str,
        timeout: Duration,
        cancel: &CancellationToken,
        on_wait: &(dyn Fn(&lock::LockWait) + Send + Sync),
    ) -> Result<LockGuard, Diagnostic> {
        let cluster = self.cluster(cluster_attrs).await?;
        lock::acquire(
            &cluster,
            holder,
            timeout,
            self.options().lease_duration,
            self.options().poll_interval.min(Duration::from_secs(1)),
            cancel,
            on_wait,
        )
        .await
    }
}

/// Adds the address to diagnostics that lack one.
pub(crate) fn at(address: &arcplan_engine::address::Address, d: Diagnostic) -> Diagnostic {
    if d.address.is_some() {
        d
    } else {
        d.with_address(address.to_string())
    }
}

/// Diagnostics from one diagnostic, with the address.
pub(crate) fn diags_at(address: &arcplan_engine::address::Address, d: Diagnostic) -> Diagnostics {
    at(address, d).into()
}

#[async_trait]
impl Provider for KubernetesProvider {
    fn resource_types(&self) -> Vec<ResourceType> {
        self.kinds.types()
    }

    async fn read(&self, req: ReadRequest) -> ReadResponse {
        self.kinds.read(&self.cx, req).await
    }

    async fn plan(&self, req: PlanRequest) -> PlanResponse {
        self.kinds.plan(&self.cx, req).await
    }

    async fn apply(&self, req: ApplyRequest) -> ApplyResponse {
        self.kinds.apply(&self.cx, req).await
    }

    async fn check(&self, req: CheckRequest) -> CheckResponse {
        self.kinds.check(&self.cx, req).await
    }

    async fn lock(&self, req: LockRequest) -> LockResponse {
        run_lock::lock(self, req).await
    }

    async fn left_behind(&self, req: &ReadRequest) -> Diagnostics {
        self.kinds.left_behind(&self.cx, req).await
    }
}

/// Parses a duration attribute like `20m` or `90s` (default when absent).
pub(crate) fn duration_attr(v: Option<&str>, default: Duration) -> Result<Duration, Diagnostic> {
    match v {
        None => Ok(default),
        Some(s) => humantime::parse_duration(s).map_err(|e| {
            Diagnostic::error("invalid-duration", format!("`{s}` is not a duration: {e}"))
                .with_key("agents.timeout")
                .with_hint("write it like `20m`, `90s` or `1h30m`")
        }),
    }
}
