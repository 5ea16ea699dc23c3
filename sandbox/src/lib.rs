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
//! Modules: [`tls`] (CA and HTTPS serving), [`entra`] (token endpoint and tokens), [`arm`] (Resource
//! Manager), [`kube`] (Kubernetes API), [`agents`] (simulated Arc agents), [`faults`] (latency,
//! throttling, errors, dropped connections), [`log`] (JSON-lines request log).
//!
//! Everything is in memory; nothing in this crate prints.

pub mod agents;
pub mod arm;
pub mod entra;
pub mod faults;
pub mod kube;
pub mod log;
pub mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use agents::AgentOptions;
pub use arm::{ArmApi, PrincipalRole, RegistrationState};
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
    /// Requests to the Kubernetes API.
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
    kube: KubeApi,
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
    Ok(())
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
                retry_after_secs: opts.lro_retry_after_secs,
                page_size: opts.page_size,
                authority_host: authority.clone(),
                audiences,
            },
            issuer.clone(),
        );
        let kube = KubeApi::new(KubeOptions {
            deployment_ready_delay: opts.deployment_ready_delay,
            server_address: kube_addr.to_string(),
            ..KubeOptions::default()
        });
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
            (kube_listener, wrap(kube.router(), Endpoint::Kube)),
        ];
        for (listener, router) in servers {
            let handle = tls::serve_listener(listener, router, &tls, cancel.clone())?;
            tasks.push(handle.task);
        }
        {
            let kube = kube.clone();
            let cancel = cancel.clone();
            tasks.push(tokio::spawn(
                async move { kube.run_controllers(cancel).await },
            ));
        }
        tasks.push(tokio::spawn(agents::run(
            arm.clone(),
            kube.clone(),
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
            kube,
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

    /// The Kubernetes API server URL, e.g. `https://127.0.0.1:40003`.
    pub fn kube_server(&self) -> String {
        format!("https://{}", self.kube_addr)
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

    /// The Kubernetes admin bearer token.
    pub fn kube_token(&self) -> String {
        self.kube.admin_token()
    }

    /// The bearer token of an authenticated Kubernetes user without any rights.
    pub fn kube_no_rights_token(&self) -> String {
        self.kube.no_rights_token()
    }

    /// A kubeconfig (context `sandbox`, CA embedded, admin bearer token).
    pub fn kubeconfig_yaml(&self) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: sandbox-admin\n  user:\n    token: {token}\ncontexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: sandbox-admin\n    namespace: default\ncurrent-context: sandbox\npreferences: {{}}\n",
            server = self.kube_server(),
            token = self.kube.admin_token(),
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

    /// The Kubernetes emulator, to read or mutate objects.
    pub fn kube(&self) -> &KubeApi {
        &self.kube
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
