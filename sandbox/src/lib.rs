//! arcplan's sandbox: local HTTPS emulators of Microsoft Entra ID (token endpoint), Azure Resource
//! Manager and the Kubernetes API, with simulated Azure Arc agents and fault injection.
//!
//! The real client code (azure_identity's credentials, reqwest, the kube client) runs unchanged against
//! it: the sandbox is reached through an authority host, a resource manager URL, a kubeconfig and a CA
//! bundle, like any Azure cloud.
//!
//! ```no_run
//! # async fn demo() -> Result<(), arcplan_sandbox::SandboxError> {
//! let sandbox = arcplan_sandbox::Sandbox::start(Default::default()).await?;
//! sandbox.write_files(std::path::Path::new("/tmp/sandbox"))?;
//! // AZURE_AUTHORITY_HOST = sandbox.authority_host(), ARM = sandbox.resource_manager(), ...
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Clusters
//!
//! One sandbox emulates any number of Kubernetes clusters ([`SandboxOptions::clusters`], default one
//! called `sandbox`), each with its own objects, nodes and tokens, all on one port: cluster `name` is
//! served under the path prefix `/clusters/{name}` ([`Sandbox::kube_server_for`]), and the first one
//! also at the bare [`Sandbox::kube_server`]. The kubeconfig has one context per cluster, named like
//! it, plus context `sandbox` for the first one. Faults, latency, request counts and the request log
//! cover every cluster's routes; the simulated agents serve every cluster from one loop.
//!
//! Modules: [`tls`] (CA and HTTPS serving), [`entra`] (token endpoint and tokens), [`arm`] (Resource
//! Manager), [`kube`] (Kubernetes API), [`agents`] (simulated Arc agents), [`faults`] (latency,
//! throttling, errors, dropped connections), [`log`] (JSON-lines request log).
//!
//! Everything is in memory; nothing in this crate prints.

pub mod agents;
pub mod arm;
mod copy;
pub mod entra;
pub mod extension_manager;
pub mod faults;
pub mod kube;
pub mod log;
pub mod tls;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use agents::AgentOptions;
pub use arm::{ArmApi, CUSTOM_LOCATIONS_OID, PrincipalRole, RegistrationState};
pub use entra::{FederatedCredential, TokenClaims};
pub use faults::{BucketSpec, Endpoint, FaultConfig, Faults, ThrottleOptions};
pub use kube::{KubeApi, KubeOptions};
pub use tls::TlsMaterial;

/// Default tenant id of the sandbox.
pub const DEFAULT_TENANT_ID: &str = "5a4d2c10-0000-4000-8000-00000000a001";
/// Default (only) subscription id of the sandbox.
pub const DEFAULT_SUBSCRIPTION_ID: &str = "5a4d2c10-0000-4000-8000-00000000b001";
/// Default application (client) id of the sandbox service principal.
pub const DEFAULT_CLIENT_ID: &str = "5a4d2c10-0000-4000-8000-00000000c001";
/// Name of the default (only) emulated Kubernetes cluster, and of the first cluster's kubeconfig
/// context whatever its name.
pub const DEFAULT_CLUSTER: &str = "sandbox";
/// Path prefix of every emulated cluster on the Kubernetes port: `/clusters/{name}`.
pub const CLUSTER_PATH_PREFIX: &str = "/clusters/";

/// Everything the sandbox can be told. `Default` is quick and fault-free (tens of milliseconds for
/// registrations and long-running operations).
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Seed of every random choice (ids, secrets, token key, faults).
    pub seed: u64,
    /// The tenant served.
    pub tenant_id: String,
    /// The subscriptions served (GUIDs).
    pub subscription_ids: Vec<String>,
    /// Application id of the sandbox service principal.
    pub client_id: String,
    /// Its client secret; generated from the seed when `None`.
    pub client_secret: Option<String>,
    /// Federated credentials accepted for client assertions (workload identity).
    pub federated_credentials: Vec<FederatedCredential>,
    /// The principal's role at subscription scope.
    pub principal_role: PrincipalRole,
    /// Namespaces registered from the start (Microsoft.Resources and Microsoft.Authorization always
    /// are).
    pub registered_providers: Vec<String>,
    /// Time from `register` to `Registered`.
    pub registration_delay: Duration,
    /// Duration of long-running operations.
    pub lro_delay: Duration,
    /// `Retry-After` seconds on long-running operations.
    pub lro_retry_after_secs: u32,
    /// Fraction of long-running operations that are slow.
    pub slow_lro_rate: f64,
    /// Duration of a slow long-running operation.
    pub slow_lro_delay: Duration,
    /// Fraction of long-running operations that end `Failed`.
    pub lro_failure_rate: f64,
    /// Resource names whose long-running operations end `Failed`.
    pub fail_lro_for: Vec<String>,
    /// Page size of ARM lists.
    pub page_size: usize,
    /// `expires_in` of Entra tokens.
    pub token_lifetime: Duration,
    /// Time until a Deployment is available in the Kubernetes emulator.
    pub deployment_ready_delay: Duration,
    /// The emulated Kubernetes clusters, by name: at least one, unique, each made of ASCII letters,
    /// digits, `-`, `_` and `.` (at most 253 characters, not `.` or `..`). Only the first may be
    /// called `sandbox`. Default: one cluster, [`DEFAULT_CLUSTER`].
    pub clusters: Vec<String>,
    /// Linux nodes (4 cores, 16Gi) in every emulated cluster, named `{cluster}-node-{i}`. Default 3;
    /// big fleets may want 1.
    pub nodes_per_cluster: usize,
    /// Simulated Arc agents.
    pub agents: AgentOptions,
    /// Latency added to every request.
    pub latency: Duration,
    /// Up to this much extra latency per request.
    pub latency_jitter: Duration,
    /// Fraction of requests answered 500/503.
    pub fault_rate: f64,
    /// Fraction of requests whose connection is dropped.
    pub drop_rate: f64,
    /// ARM throttling.
    pub throttle: ThrottleOptions,
    /// Port of the Entra emulator (0 = random).
    pub entra_port: u16,
    /// Port of the ARM emulator (0 = random).
    pub arm_port: u16,
    /// Port of the Kubernetes emulator (0 = random).
    pub kube_port: u16,
    /// JSON-lines request log, if any.
    pub log_path: Option<PathBuf>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            seed: 1,
            tenant_id: DEFAULT_TENANT_ID.into(),
            subscription_ids: vec![DEFAULT_SUBSCRIPTION_ID.into()],
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: None,
            federated_credentials: Vec::new(),
            principal_role: PrincipalRole::Owner,
            registered_providers: Vec::new(),
            registration_delay: Duration::from_millis(50),
            lro_delay: Duration::from_millis(50),
            lro_retry_after_secs: 1,
            slow_lro_rate: 0.0,
            slow_lro_delay: Duration::from_secs(5),
            lro_failure_rate: 0.0,
            fail_lro_for: Vec::new(),
            page_size: 100,
            token_lifetime: Duration::from_secs(3599),
            deployment_ready_delay: Duration::from_millis(100),
            clusters: vec![DEFAULT_CLUSTER.into()],
            nodes_per_cluster: 3,
            agents: AgentOptions::default(),
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            fault_rate: 0.0,
            drop_rate: 0.0,
            throttle: ThrottleOptions::default(),
            entra_port: 0,
            arm_port: 0,
            kube_port: 0,
            log_path: None,
        }
    }
}

/// Why the sandbox could not start or write its files.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// An option is invalid.
    #[error("invalid sandbox option {option}: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// TLS material or a listener failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A file could not be written or opened.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Request counts per server, for benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Requests to the Entra token endpoint.
    pub entra: u64,
    /// Requests to ARM.
    pub arm: u64,
    /// Requests to the Kubernetes API, every emulated cluster included (per cluster:
    /// [`KubeApi::request_count`]).
    pub kube: u64,
}

impl RequestCounts {
    /// Sum over all servers.
    pub fn total(&self) -> u64 {
        self.entra + self.arm + self.kube
    }
}

#[derive(Debug, Default)]
struct Counters {
    entra: AtomicU64,
    arm: AtomicU64,
    kube: AtomicU64,
}

/// A running sandbox. Drop does not stop it: call [`Sandbox::shutdown`].
pub struct Sandbox {
    tls: TlsMaterial,
    tenant_id: String,
    subscription_ids: Vec<String>,
    client_id: String,
    client_secret: String,
    principal_object_id: String,
    entra_addr: SocketAddr,
    arm_addr: SocketAddr,
    kube_addr: SocketAddr,
    arm: ArmApi,
    /// Every emulated cluster, in the order of [`SandboxOptions::clusters`] (never empty).
    kubes: Vec<(String, KubeApi)>,
    kube_index: HashMap<String, usize>,
    faults: Faults,
    issuer: entra::TokenIssuer,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("authority_host", &self.authority_host())
            .field("resource_manager", &self.resource_manager())
            .field("kube_server", &self.kube_server())
            .finish_non_exhaustive()
    }
}

/// RFC 3339 "now", for logs.
pub(crate) fn arm_time_now() -> String {
    arm::rfc3339_now()
}

fn invalid(option: &'static str, reason: impl Into<String>) -> SandboxError {
    SandboxError::InvalidOption {
        option,
        reason: reason.into(),
    }
}

fn validate(opts: &SandboxOptions) -> Result<(), SandboxError> {
    if opts.tenant_id.is_empty()
        || !opts
            .tenant_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(invalid(
            "tenant_id",
            format!(
                "'{}' is not a tenant id (a GUID or a domain name)",
                opts.tenant_id
            ),
        ));
    }
    if opts.subscription_ids.is_empty() {
        return Err(invalid(
            "subscription_ids",
            "at least one subscription must be served",
        ));
    }
    for s in &opts.subscription_ids {
        if uuid::Uuid::try_parse(s).is_err() || s.len() != 36 {
            return Err(invalid(
                "subscription_ids",
                format!(
                    "'{s}' is not a GUID (expected 8-4-4-4-12 hexadecimal digits, like {DEFAULT_SUBSCRIPTION_ID})"
                ),
            ));
        }
    }
    if opts.client_id.trim().is_empty() {
        return Err(invalid("client_id", "must not be empty"));
    }
    for (name, rate) in [
        ("fault_rate", opts.fault_rate),
        ("drop_rate", opts.drop_rate),
        ("lro_failure_rate", opts.lro_failure_rate),
        ("slow_lro_rate", opts.slow_lro_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(invalid(name, format!("{rate} is not between 0 and 1")));
        }
    }
    if opts.page_size == 0 {
        return Err(invalid("page_size", "must be at least 1"));
    }
    validate_clusters(&opts.clusters)?;
    if opts.nodes_per_cluster == 0 {
        return Err(invalid("nodes_per_cluster", "must be at least 1"));
    }
    Ok(())
}

fn validate_clusters(clusters: &[String]) -> Result<(), SandboxError> {
    if clusters.is_empty() {
        return Err(invalid(
            "clusters",
            "at least one Kubernetes cluster must be emulated",
        ));
    }
    let mut seen = HashSet::new();
    for (i, name) in clusters.iter().enumerate() {
        let valid_chars = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if name.is_empty() || name.len() > 253 || !valid_chars || name == "." || name == ".." {
            return Err(invalid(
                "clusters",
                format!(
                    "'{name}' is not a cluster name (1 to 253 ASCII letters, digits, '-', '_' or '.', like store-eastus-01)"
                ),
            ));
        }
        if i > 0 && name == DEFAULT_CLUSTER {
            return Err(invalid(
                "clusters",
                format!(
                    "'{DEFAULT_CLUSTER}' names the first cluster's kubeconfig context, so only the first cluster may be called so"
                ),
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(invalid("clusters", format!("'{name}' is declared twice")));
        }
    }
    Ok(())
}

/// The nodes of cluster `name`: `{name}-node-{i}` (lower-cased, `_` and `.` as `-`, like a DNS label).
fn cluster_nodes(name: &str, count: usize) -> Vec<kube::NodeSpec> {
    let prefix: String = name
        .chars()
        .map(|c| match c {
            '_' | '.' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    (1..=count)
        .map(|i| {
            kube::NodeSpec::linux(
                &format!("{prefix}-node-{i}"),
                kube::DEFAULT_KUBERNETES_VERSION,
            )
        })
        .collect()
}

/// The Kubernetes port's routing: `/clusters/{name}/...` to that cluster (with the prefix removed),
/// anything else to the first cluster.
#[derive(Clone)]
struct KubeRoutes {
    first: Router,
    by_name: Arc<HashMap<String, Router>>,
}

fn kube_router(clusters: &[(String, KubeApi)]) -> Router {
    let by_name = clusters
        .iter()
        .map(|(name, api)| (name.clone(), api.router()))
        .collect::<HashMap<_, _>>();
    let routes = KubeRoutes {
        first: clusters[0].1.router(),
        by_name: Arc::new(by_name),
    };
    Router::new().fallback(route_kube).with_state(routes)
}

async fn route_kube(State(routes): State<KubeRoutes>, req: Request) -> Response {
    use tower::ServiceExt as _;
    let Some(rest) = req.uri().path().strip_prefix(CLUSTER_PATH_PREFIX) else {
        return routes.first.oneshot(req).await.into_response();
    };
    let (name, tail) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let Some(router) = routes.by_name.get(name).cloned() else {
        return (
            axum::http::StatusCode::NOT_FOUND,
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            "404 page not found\n",
        )
            .into_response();
    };
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{tail}?{q}"),
        None => tail.to_string(),
    };
    let (mut parts, body) = req.into_parts();
    let mut uri = parts.uri.into_parts();
    uri.path_and_query = path_and_query.parse().ok();
    parts.uri = match axum::http::Uri::from_parts(uri) {
        Ok(u) => u,
        Err(_) => {
            return axum::http::StatusCode::BAD_REQUEST.into_response();
        }
    };
    router
        .oneshot(Request::from_parts(parts, body))
        .await
        .into_response()
}

fn secret_from(rng: &mut ChaCha8Rng) -> String {
    // Like Entra secrets, minus `~` (a shell would expand it when sourcing sandbox.env).
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
    (0..40)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

fn uuid_from(rng: &mut ChaCha8Rng) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

async fn count(
    State((counters, ep)): State<(Arc<Counters>, Endpoint)>,
    req: Request,
    next: Next,
) -> Response {
    let c = match ep {
        Endpoint::Entra => &counters.entra,
        Endpoint::Arm => &counters.arm,
        Endpoint::Kube => &counters.kube,
    };
    c.fetch_add(1, Ordering::Relaxed);
    next.run(req).await
}

impl Sandbox {
    /// Starts the three servers on 127.0.0.1, the Kubernetes controllers and the Arc agents.
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        validate(&opts)?;
        let tls = TlsMaterial::generate()?;
        let localhost = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let entra_listener = tls::bind(localhost(opts.entra_port)).await?;
        let arm_listener = tls::bind(localhost(opts.arm_port)).await?;
        let kube_listener = tls::bind(localhost(opts.kube_port)).await?;
        let addr_of = |l: &tokio::net::TcpListener| {
            l.local_addr().map_err(|source| SandboxError::Io {
                path: PathBuf::from("127.0.0.1"),
                source,
            })
        };
        let entra_addr = addr_of(&entra_listener)?;
        let arm_addr = addr_of(&arm_listener)?;
        let kube_addr = addr_of(&kube_listener)?;
        let authority = format!("https://{entra_addr}");
        let arm_url = format!("https://{arm_addr}/");

        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        let issuer = entra::TokenIssuer::new(&key);
        let principal_object_id = uuid_from(&mut rng);
        let generated_secret = secret_from(&mut rng);
        let client_secret = opts.client_secret.clone().unwrap_or(generated_secret);

        let audiences = vec![
            "https://management.azure.com/".to_string(),
            "https://management.core.windows.net/".to_string(),
            arm_url.clone(),
        ];
        let entra_router = entra::router(
            entra::EntraConfig {
                tenant_id: opts.tenant_id.clone(),
                client_id: opts.client_id.clone(),
                client_secret: client_secret.clone(),
                object_id: principal_object_id.clone(),
                token_lifetime: opts.token_lifetime,
                audiences: audiences.clone(),
                federated_credentials: opts.federated_credentials.clone(),
            },
            issuer.clone(),
        );
        let arm = ArmApi::new(
            arm::ArmConfig {
                seed: opts.seed,
                tenant_id: opts.tenant_id.clone(),
                subscription_ids: opts.subscription_ids.clone(),
                client_id: opts.client_id.clone(),
                principal_object_id: principal_object_id.clone(),
                role: opts.principal_role,
                registered_providers: opts.registered_providers.clone(),
                registration_delay: opts.registration_delay,
                lro_delay: opts.lro_delay,
                slow_lro_rate: opts.slow_lro_rate,
                slow_lro_delay: opts.slow_lro_delay,
                lro_failure_rate: opts.lro_failure_rate,
                fail_lro_for: opts.fail_lro_for.clone(),
                broken_repositories: Vec::new(),
                retry_after_secs: opts.lro_retry_after_secs,
                page_size: opts.page_size,
                authority_host: authority.clone(),
                audiences,
            },
            issuer.clone(),
        );
        let kubes: Vec<(String, KubeApi)> = opts
            .clusters
            .iter()
            .map(|name| {
                let api = KubeApi::new(KubeOptions {
                    deployment_ready_delay: opts.deployment_ready_delay,
                    server_address: kube_addr.to_string(),
                    nodes: cluster_nodes(name, opts.nodes_per_cluster),
                    ..KubeOptions::default()
                });
                (name.clone(), api)
            })
            .collect();
        let kube_index = kubes
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), i))
            .collect();
        let faults = Faults::new(FaultConfig {
            seed: opts.seed,
            latency: opts.latency,
            jitter: opts.latency_jitter,
            error_rate: opts.fault_rate,
            drop_rate: opts.drop_rate,
            throttle: opts.throttle.clone(),
        });
        let log = match &opts.log_path {
            Some(p) => Some(log::RequestLog::open(p).map_err(|source| SandboxError::Io {
                path: p.clone(),
                source,
            })?),
            None => None,
        };
        let counters = Arc::new(Counters::default());
        let wrap = |router: Router, ep: Endpoint| {
            let router = faults.apply(router, ep);
            let router = if ep == Endpoint::Arm {
                arm::with_common_headers(router)
            } else {
                router
            };
            let router = router.layer(axum::middleware::from_fn_with_state(
                (Arc::clone(&counters), ep),
                count,
            ));
            match &log {
                Some(l) => l.apply(router, ep),
                None => router,
            }
        };
        let cancel = CancellationToken::new();
        let mut tasks = Vec::new();
        let servers = [
            (entra_listener, wrap(entra_router, Endpoint::Entra)),
            (arm_listener, wrap(arm.inner_router(), Endpoint::Arm)),
            (kube_listener, wrap(kube_router(&kubes), Endpoint::Kube)),
        ];
        for (listener, router) in servers {
            let handle = tls::serve_listener(listener, router, &tls, cancel.clone())?;
            tasks.push(handle.task);
        }
        for (_, kube) in &kubes {
            let kube = kube.clone();
            let cancel = cancel.clone();
            tasks.push(tokio::spawn(
                async move { kube.run_controllers(cancel).await },
            ));
        }
        tasks.push(tokio::spawn(agents::run(
            arm.clone(),
            kubes.iter().map(|(_, k)| k.clone()).collect(),
            opts.agents.clone(),
            cancel.clone(),
        )));

        Ok(Sandbox {
            tls,
            tenant_id: opts.tenant_id.clone(),
            subscription_ids: opts.subscription_ids.clone(),
            client_id: opts.client_id.clone(),
            client_secret,
            principal_object_id,
            entra_addr,
            arm_addr,
            kube_addr,
            arm,
            kubes,
            kube_index,
            faults,
            issuer,
            counters,
            cancel,
            tasks,
        })
    }

    /// The CA certificate (PEM) every sandbox server certificate chains to.
    pub fn ca_pem(&self) -> &str {
        self.tls.ca_pem()
    }

    /// The TLS material (CA, server configuration, a client configuration trusting the CA).
    pub fn tls(&self) -> &TlsMaterial {
        &self.tls
    }

    /// The Entra authority host, e.g. `https://127.0.0.1:40001` (no trailing slash), for
    /// `AZURE_AUTHORITY_HOST` or `CloudConfiguration::Custom`.
    pub fn authority_host(&self) -> String {
        format!("https://{}", self.entra_addr)
    }

    /// The token endpoint, `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority_host(),
            self.tenant_id
        )
    }

    /// The ARM endpoint, e.g. `https://127.0.0.1:40002/` (with a trailing slash, like
    /// `https://management.azure.com/`).
    pub fn resource_manager(&self) -> String {
        format!("https://{}/", self.arm_addr)
    }

    /// The Kubernetes API server URL of the first cluster, e.g. `https://127.0.0.1:40003`.
    pub fn kube_server(&self) -> String {
        format!("https://{}", self.kube_addr)
    }

    /// The Kubernetes API server URL of cluster `name`, e.g.
    /// `https://127.0.0.1:40003/clusters/store-01`, if the sandbox emulates it.
    pub fn kube_server_for(&self, name: &str) -> Option<String> {
        self.kube_index
            .contains_key(name)
            .then(|| format!("{}{CLUSTER_PATH_PREFIX}{name}", self.kube_server()))
    }

    /// The names of the emulated clusters, in the order of [`SandboxOptions::clusters`].
    pub fn cluster_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.kubes.iter().map(|(name, _)| name.as_str())
    }

    /// The tenant served.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The subscriptions served.
    pub fn subscription_ids(&self) -> &[String] {
        &self.subscription_ids
    }

    /// The service principal's application (client) id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The service principal's client secret.
    pub fn client_secret(&self) -> &str {
        &self.client_secret
    }

    /// The service principal's object id (the `oid` of its tokens).
    pub fn principal_object_id(&self) -> &str {
        &self.principal_object_id
    }

    /// The first cluster's Kubernetes admin bearer token (each cluster has its own: see
    /// [`KubeApi::admin_token`] of [`Sandbox::kube_for`]).
    pub fn kube_token(&self) -> String {
        self.kube().admin_token()
    }

    /// The bearer token of an authenticated user without any rights in the first cluster.
    pub fn kube_no_rights_token(&self) -> String {
        self.kube().no_rights_token()
    }

    /// A kubeconfig with the CA embedded and, per cluster, a cluster entry, a user with that
    /// cluster's admin bearer token and a context, all named like the cluster (user `{name}-admin`),
    /// with namespace `default` (names quoted, so that a cluster called `01` stays a string).
    /// Context `sandbox` (the current context) reaches the first cluster
    /// at the bare [`Sandbox::kube_server`]; the others' servers are [`Sandbox::kube_server_for`].
    pub fn kubeconfig_yaml(&self) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem());
        let (first, first_api) = &self.kubes[0];
        let mut entries = Vec::with_capacity(self.kubes.len() + 1);
        if first != DEFAULT_CLUSTER {
            entries.push((DEFAULT_CLUSTER, self.kube_server(), first_api));
        }
        for (i, (name, api)) in self.kubes.iter().enumerate() {
            let server = if i == 0 && name == DEFAULT_CLUSTER {
                self.kube_server()
            } else {
                format!("{}{CLUSTER_PATH_PREFIX}{name}", self.kube_server())
            };
            entries.push((name.as_str(), server, api));
        }
        let mut clusters = String::new();
        let mut users = String::new();
        let mut contexts = String::new();
        for (name, server, api) in &entries {
            clusters.push_str(&format!(
                "- name: \"{name}\"\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\n"
            ));
            users.push_str(&format!(
                "- name: \"{name}-admin\"\n  user:\n    token: {token}\n",
                token = api.admin_token()
            ));
            contexts.push_str(&format!(
                "- name: \"{name}\"\n  context:\n    cluster: \"{name}\"\n    user: \"{name}-admin\"\n    namespace: default\n"
            ));
        }
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n{clusters}users:\n{users}contexts:\n{contexts}current-context: {DEFAULT_CLUSTER}\npreferences: {{}}\n"
        )
    }

    /// The `sandbox.env` contents (without the file paths resolved: see [`Sandbox::write_files`]).
    fn env_file(&self, ca_path: &Path, kubeconfig_path: &Path) -> String {
        let lines = [
            ("AZURE_TENANT_ID", self.tenant_id.clone()),
            ("AZURE_CLIENT_ID", self.client_id.clone()),
            ("AZURE_CLIENT_SECRET", self.client_secret.clone()),
            ("AZURE_AUTHORITY_HOST", self.authority_host()),
            (
                "ARCPLAN_SUBSCRIPTION_ID",
                self.subscription_ids.first().cloned().unwrap_or_default(),
            ),
            ("ARCPLAN_SUBSCRIPTION_IDS", self.subscription_ids.join(",")),
            ("ARCPLAN_RESOURCE_MANAGER", self.resource_manager()),
            ("ARCPLAN_CA_BUNDLE", ca_path.display().to_string()),
            ("KUBECONFIG", kubeconfig_path.display().to_string()),
        ];
        lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }

    /// Writes `ca.pem`, `kubeconfig` and `sandbox.env` into `dir` (created if needed), each with
    /// mode 0600. Returns the three paths in that order.
    pub fn write_files(&self, dir: &Path) -> Result<[PathBuf; 3], SandboxError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SandboxError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let dir = std::fs::canonicalize(dir).map_err(io(dir))?;
        let ca = dir.join("ca.pem");
        let kubeconfig = dir.join("kubeconfig");
        let env = dir.join("sandbox.env");
        write_private(&ca, self.ca_pem().as_bytes()).map_err(io(&ca))?;
        write_private(&kubeconfig, self.kubeconfig_yaml().as_bytes()).map_err(io(&kubeconfig))?;
        write_private(&env, self.env_file(&ca, &kubeconfig).as_bytes()).map_err(io(&env))?;
        Ok([ca, kubeconfig, env])
    }

    /// Requests received so far, per server.
    pub fn request_counts(&self) -> RequestCounts {
        RequestCounts {
            entra: self.counters.entra.load(Ordering::Relaxed),
            arm: self.counters.arm.load(Ordering::Relaxed),
            kube: self.counters.kube.load(Ordering::Relaxed),
        }
    }

    /// The ARM emulator, to read or mutate its state (drift injection, role changes, ...).
    pub fn arm(&self) -> &ArmApi {
        &self.arm
    }

    /// The first cluster's Kubernetes emulator, to read or mutate objects.
    pub fn kube(&self) -> &KubeApi {
        &self.kubes[0].1
    }

    /// The Kubernetes emulator of cluster `name`, if the sandbox emulates it.
    pub fn kube_for(&self, name: &str) -> Option<&KubeApi> {
        self.kube_index.get(name).map(|&i| &self.kubes[i].1)
    }

    /// The fault injection settings, changeable at run time.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Mints an access token with arbitrary claims, signed like the Entra emulator's (for tests of
    /// expired, foreign-tenant or wrong-audience tokens).
    pub fn mint_token(&self, claims: &TokenClaims) -> String {
        self.issuer.mint(claims)
    }

    /// Claims the Entra emulator would issue to the sandbox principal for ARM, valid for `lifetime`.
    pub fn default_claims(&self, lifetime: Duration) -> TokenClaims {
        TokenClaims::new(
            &self.tenant_id,
            &self.client_id,
            &self.principal_object_id,
            "https://management.azure.com/",
            lifetime,
        )
    }

    /// Stops every server and background task and waits for them.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    // An existing file keeps its mode on open: force 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(contents)
}
