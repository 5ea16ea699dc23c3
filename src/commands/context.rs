//! What plan, apply, destroy and status share: loading the file, choosing where the run goes
//! (Azure and the clusters in the file, an in-process sandbox, or a running sandbox), and
//! building the graph and the providers.
//!
//! A sandbox is reached exactly like a custom Azure cloud: the file's `azure.cloud`,
//! `azure.credential` and clusters' `kubeconfig` are pointed at the sandbox's endpoints, CA
//! bundle, service principal and kubeconfig. Nothing below this module knows it is a sandbox.
//! A cluster's own `kubeconfig:`/`context:` is replaced (with a warning naming it), unless
//! `--sandbox-azure-only` keeps the file's clusters and uses the sandbox for Entra and ARM only.

use crate::cli::{Invocation, TargetArgs, command_line};
use crate::views::{Output, diagnostics};
use arcplan_config::{
    Cloud, Credential, CredentialKind, CredentialSpec, CustomCloud, Installer, Loaded, SecretRef,
    load_file,
};
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use arcplan_engine::graph::ResourceGraph;
use arcplan_engine::provider::Providers;
use arcplan_providers::azure::{self, provider::AzureSettings};
use arcplan_providers::kubernetes::{KubernetesProvider, KubernetesProviderOptions};
use arcplan_sandbox::{Sandbox, SandboxOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A command failed and has said why.
pub struct Reported;

/// The name of the in-memory variable that carries a sandbox's client secret to the credential.
const SANDBOX_SECRET_VAR: &str = "ARCPLAN_SANDBOX_CLIENT_SECRET";

/// Where a sandbox is and how to sign in to it.
pub struct SandboxTarget {
    resource_manager: String,
    authority_host: String,
    ca_bundle: PathBuf,
    tenant: String,
    subscription: String,
    /// Every subscription it serves (`subscription` first).
    subscriptions: Vec<String>,
    client_id: String,
    client_secret: String,
    kubeconfig: PathBuf,
    /// The directory of a sandbox started with `arcplan sandbox --dir` (None: in process).
    dir: Option<PathBuf>,
}

/// Everything a run needs.
pub struct Run {
    /// The loaded file (retargeted to a sandbox when asked).
    pub loaded: Loaded,
    /// The file's path as given.
    pub file: PathBuf,
    /// The graph.
    pub graph: ResourceGraph,
    /// The providers, by type.
    pub providers: Providers,
    /// The Kubernetes provider (for locks).
    pub kube: Arc<KubernetesProvider>,
    /// Which credential is used, for the header.
    pub credential: String,
    /// Where the run goes, for the header.
    pub target: String,
    /// Keeps an in-process sandbox alive for the run, with the private directory of its files.
    pub sandbox: Option<(Sandbox, tempfile::TempDir)>,
    /// The file and target of this run, for hints that suggest a command.
    pub invocation: Invocation,
    /// `--in-cluster`: the one cluster this run changes.
    pub in_cluster: Option<String>,
    /// `--in-cluster`: the private directory of the generated kubeconfig, removed with the run.
    pub in_cluster_files: Option<tempfile::TempDir>,
}

impl Run {
    /// Stops an in-process sandbox and removes its files and the run's own.
    pub async fn finish(self) {
        drop(self.in_cluster_files);
        if let Some((sb, dir)) = self.sandbox {
            sb.shutdown().await;
            drop(dir);
        }
    }
}

/// Loads the file, printing diagnostics (and warnings) on the way.
pub fn load(out: &Output, file: &Path) -> Result<Loaded, Reported> {
    let source = arcplan_config::read_source(file);
    match load_file(file) {
        Ok(l) => {
            diagnostics::print(out, &l.warnings, source.as_deref());
            Ok(l)
        }
        Err(d) => {
            diagnostics::print(out, &d, source.as_deref());
            Err(Reported)
        }
    }
}

/// Prints diagnostics without a source file.
pub fn report(out: &Output, d: impl Into<Diagnostics>) -> Reported {
    diagnostics::print(out, &d.into(), None);
    Reported
}

/// The command that starts a sandbox in `dir` serving `file`'s subscription and clusters.
fn start_sandbox_line(dir: &Path, file: &str) -> String {
    let none = TargetArgs {
        sandbox: false,
        sandbox_dir: None,
        sandbox_azure_only: false,
        in_cluster: None,
    };
    command_line(
        "sandbox",
        Some(Path::new(file)),
        &none,
        &["--dir", &dir.display().to_string()],
    )
}

fn read_env_file(dir: &Path, file: &str) -> Result<HashMap<String, String>, Diagnostic> {
    let path = dir.join("sandbox.env");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Diagnostic::error("sandbox", format!("cannot read {}: {e}", path.display())).with_hint(
            format!("start one with `{}`", start_sandbox_line(dir, file)),
        )
    })?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

/// Options for an in-process sandbox serving a configuration: a little simulated time, so
/// progress shows, but quick.
pub fn sandbox_options(loaded: &Loaded) -> SandboxOptions {
    let defaults = SandboxOptions::default();
    SandboxOptions {
        subscription_ids: (loaded.config.subscriptions().into_iter())
            .map(str::to_owned)
            .collect(),
        tenant_id: loaded
            .config
            .azure
            .tenant
            .clone()
            .unwrap_or(defaults.tenant_id.clone()),
        registration_delay: Duration::from_millis(1500),
        lro_delay: Duration::from_millis(1000),
        deployment_ready_delay: Duration::from_millis(2000),
        clusters: if loaded.config.clusters.is_empty() {
            defaults.clusters.clone()
        } else {
            loaded
                .config
                .clusters
                .iter()
                .map(|c| c.name.clone())
                .collect()
        },
        ..defaults
    }
}

/// The context names in a kubeconfig file (empty when it cannot be read).
fn kubeconfig_contexts(path: &Path) -> Vec<String> {
    arcplan_providers::kubernetes::access::read_kubeconfig(path)
        .map(|k| k.contexts.into_iter().map(|c| c.name).collect())
        .unwrap_or_default()
}

/// Points a configuration at a sandbox: its Azure side always; its clusters too unless
/// `azure_only`. Returns the warnings to print (at most one per kind).
fn retarget(
    loaded: &mut Loaded,
    t: &SandboxTarget,
    azure_only: bool,
) -> Result<Vec<Diagnostic>, Diagnostic> {
    let mut notes = Vec::new();
    let contexts = kubeconfig_contexts(&t.kubeconfig);
    let single = loaded.config.clusters.len() == 1;
    let cfg = &mut loaded.config;
    let unserved: Vec<&str> = (cfg.subscriptions().into_iter())
        .filter(|s| !t.subscriptions.iter().any(|x| x.eq_ignore_ascii_case(s)))
        .collect();
    if !cfg.azure.subscription.eq_ignore_ascii_case(&t.subscription) || !unserved.is_empty() {
        return Err(Diagnostic::error(
            "sandbox",
            format!(
                "the sandbox serves subscription(s) {}, the file names {}",
                t.subscriptions.join(", "),
                if unserved.is_empty() {
                    cfg.azure.subscription.clone()
                } else {
                    unserved.join(", ")
                }
            ),
        )
        .with_hint(match &t.dir {
            Some(dir) => format!(
                "start the sandbox with `{}`",
                start_sandbox_line(dir, &loaded.file)
            ),
            None => format!(
                "start the sandbox with `{}`",
                command_line(
                    "sandbox",
                    Some(Path::new(&loaded.file)),
                    &TargetArgs::default(),
                    &[]
                )
            ),
        }));
    }
    cfg.azure.tenant = Some(t.tenant.clone());
    cfg.azure.cloud = Cloud::Custom(CustomCloud {
        name: Some("ArcplanSandbox".into()),
        resource_manager: t.resource_manager.clone(),
        authority_host: t.authority_host.clone(),
        audience: Some("https://management.azure.com/".into()),
        ca_bundle: Some(t.ca_bundle.display().to_string()),
        api_versions: Default::default(),
    });
    cfg.azure.credential = Credential::Detailed(CredentialSpec {
        kind: CredentialKind::ServicePrincipal,
        client_id: Some(t.client_id.clone()),
        client_secret: Some(SecretRef::Env(SANDBOX_SECRET_VAR.into())),
        federated_token_file: None,
    });
    if azure_only {
        return Ok(notes);
    }
    let mut replaced: Vec<String> = Vec::new();
    let mut helm: Vec<String> = Vec::new();
    for c in &mut cfg.clusters {
        let own: Vec<String> = [("kubeconfig", &c.kubeconfig), ("context", &c.context)]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("`{k}: {v}`")))
            .collect();
        if !own.is_empty() {
            replaced.push(format!("{} ({})", c.name, own.join(", ")));
        }
        c.kubeconfig = Some(t.kubeconfig.display().to_string());
        // The sandbox's kubeconfig has one context per cluster it emulates, named after it; a
        // one-cluster file may also use a sandbox started without it (context `sandbox`).
        c.context = Some(if contexts.iter().any(|x| x == &c.name) || !single {
            c.name.clone()
        } else {
            "sandbox".to_owned()
        });
        if c.agents.installer == Installer::Helm {
            c.agents.installer = Installer::Manifests;
            helm.push(c.name.clone());
        }
    }
    if !replaced.is_empty() {
        let which = if replaced.len() == 1 {
            format!("cluster {}", replaced[0])
        } else {
            format!("{} clusters: {}", replaced.len(), replaced.join("; "))
        };
        notes.push(
            Diagnostic::warning(
                "sandbox-kubeconfig",
                format!(
                    "{which}: the sandbox replaces the file's own kubeconfig and context with the sandbox's ({}), so the run does not reach that cluster",
                    t.kubeconfig.display()
                ),
            )
            .with_hint("to pair the sandbox's Entra and ARM with the file's own clusters, add --sandbox-azure-only"),
        );
    }
    if !helm.is_empty() {
        let which = if helm.len() == 1 {
            format!("cluster {}", helm[0])
        } else {
            format!("{} cluster(s) use `installer: helm`", helm.len())
        };
        notes.push(
            Diagnostic::warning(
                "sandbox-installer",
                format!("{which}: the sandbox runs no Helm, so the agents are installed from the built-in manifests instead"),
            )
            .with_hint("against a real cluster the file's `installer: helm` is used"),
        );
    }
    Ok(notes)
}

/// Loads the file and builds everything a run needs.
pub async fn prepare(out: &Output, file: &Path, target: &TargetArgs) -> Result<Run, Reported> {
    let mut loaded = load(out, file)?;
    let base_dir = file
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let mut sandbox = None;
    let mut secret: Option<String> = None;
    let mut where_to = "Azure and the clusters in the file".to_owned();
    if target.sandbox || target.sandbox_dir.is_some() {
        let t = if let Some(dir) = &target.sandbox_dir {
            let env = read_env_file(dir, &loaded.file).map_err(|d| report(out, d))?;
            let get = |k: &str| env.get(k).cloned().unwrap_or_default();
            where_to = format!("the sandbox in {}", dir.display());
            SandboxTarget {
                resource_manager: get("ARCPLAN_RESOURCE_MANAGER"),
                authority_host: get("AZURE_AUTHORITY_HOST"),
                ca_bundle: PathBuf::from(get("ARCPLAN_CA_BUNDLE")),
                tenant: get("AZURE_TENANT_ID"),
                subscription: get("ARCPLAN_SUBSCRIPTION_ID"),
                // Written by sandboxes that serve several; an older file names one.
                subscriptions: Some(get("ARCPLAN_SUBSCRIPTION_IDS"))
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| get("ARCPLAN_SUBSCRIPTION_ID"))
                    .split(',')
                    .map(str::to_owned)
                    .collect(),
                client_id: get("AZURE_CLIENT_ID"),
                client_secret: get("AZURE_CLIENT_SECRET"),
                kubeconfig: PathBuf::from(get("KUBECONFIG")),
                dir: Some(dir.clone()),
            }
        } else {
            let sb = Sandbox::start(sandbox_options(&loaded))
                .await
                .map_err(|e| {
                    report(
                        out,
                        Diagnostic::error("sandbox", format!("cannot start the sandbox: {e}")),
                    )
                })?;
            // A fresh private directory (never a guessable path in a shared /tmp, never another
            // run's): two sandboxes of one process or one host cannot share their files.
            let dir = private_dir("arcplan-sandbox-").map_err(|d| report(out, d))?;
            let [ca, kubeconfig, _] = sb.write_files(dir.path()).map_err(|e| {
                report(
                    out,
                    Diagnostic::error("sandbox", format!("cannot write the sandbox files: {e}")),
                )
            })?;
            where_to =
                "an in-process sandbox (local emulators of Entra, ARM and Kubernetes)".to_owned();
            let t = SandboxTarget {
                resource_manager: sb.resource_manager(),
                authority_host: sb.authority_host(),
                ca_bundle: ca,
                tenant: sb.tenant_id().to_owned(),
                subscription: sb.subscription_ids()[0].clone(),
                subscriptions: sb.subscription_ids().to_vec(),
                client_id: sb.client_id().to_owned(),
                client_secret: sb.client_secret().to_owned(),
                kubeconfig,
                dir: None,
            };
            sandbox = Some((sb, dir));
            t
        };
        let notes =
            retarget(&mut loaded, &t, target.sandbox_azure_only).map_err(|d| report(out, d))?;
        if target.sandbox_azure_only {
            where_to.push_str(" for Entra and ARM, the file's own clusters");
        }
        for d in notes {
            diagnostics::print(out, &Diagnostics::from(d), None);
        }
        secret = Some(t.client_secret);
    }
    let mut in_cluster_files = None;
    if let Some(name) = &target.in_cluster {
        let (server, dir) = in_cluster_target(&mut loaded, name).map_err(|d| report(out, d))?;
        where_to.push_str(&format!("; cluster {name} from inside it ({server})"));
        in_cluster_files = Some(dir);
    }
    let graph = arcplan_providers::kinds::lower(&loaded.config).map_err(|d| report(out, d))?;
    let env = move |k: &str| -> Option<String> {
        if k == SANDBOX_SECRET_VAR {
            return secret.clone();
        }
        arcplan_providers::azure::credential::process_env(k)
    };
    let settings = AzureSettings::new(&loaded.config.stack, &loaded.config.azure.subscription)
        .with_subscriptions(&loaded.config.subscriptions())
        .with_secrets(&base_dir, Arc::new(env.clone()));
    let (azure, credential) = azure::from_config(&loaded.config, &base_dir, &env, settings)
        .map_err(|d| report(out, d))?;
    let azure = Arc::new(azure);
    let mut kube_opts = KubernetesProviderOptions::new(&base_dir).with_env(env);
    // How long a crashed apply's cluster lock blocks the next one (default: the provider's).
    if let Some(d) =
        lock_lease(std::env::var("ARCPLAN_LOCK_LEASE").ok()).map_err(|d| report(out, d))?
    {
        kube_opts = kube_opts.with_lease_duration(d);
    }
    let kube = Arc::new(KubernetesProvider::new(kube_opts));
    let mut providers = Providers::new();
    providers.register(azure.clone());
    providers.register(kube.clone());
    Ok(Run {
        file: file.to_path_buf(),
        loaded,
        graph,
        providers,
        kube,
        credential,
        target: where_to,
        sandbox,
        invocation: Invocation::new(file, target),
        in_cluster: target.in_cluster.clone(),
        in_cluster_files,
    })
}

/// A new directory under the temporary directory, created exclusively and readable by its
/// owner only (removed when dropped).
fn private_dir(prefix: &str) -> Result<tempfile::TempDir, Diagnostic> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| {
            Diagnostic::error(
                "io",
                format!(
                    "cannot create a directory in {}: {e}",
                    std::env::temp_dir().display()
                ),
            )
            .with_hint("set TMPDIR to a writable directory")
        })
}

/// Where a pod finds its service account (the token and the cluster's CA).
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// `--in-cluster NAME`: cluster NAME is reached the way a pod reaches its own API server
/// (`KUBERNETES_SERVICE_HOST`/`_PORT`, the service account's CA and token, read by the client
/// from their files, so no secret is copied): a kubeconfig naming them is written to a private
/// directory of the run (returned, removed with it) and the cluster pointed at it. `ARCPLAN_SERVICE_ACCOUNT_DIR` overrides
/// where the service account is mounted.
fn in_cluster_target(
    loaded: &mut Loaded,
    name: &str,
) -> Result<(String, tempfile::TempDir), Diagnostic> {
    let names: Vec<String> = loaded
        .config
        .clusters
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let Some(cluster) = loaded.config.clusters.iter_mut().find(|c| c.name == name) else {
        let mut d = Diagnostic::error(
            "unknown-cluster",
            format!("--in-cluster {name}: the file declares no cluster `{name}`"),
        );
        if let Some(s) = arcplan_engine::diag::did_you_mean(name, names.iter().map(String::as_str))
        {
            d = d.with_hint(format!("did you mean `{s}`?"));
        }
        return Err(d);
    };
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(host), Some(port)) = (
        var("KUBERNETES_SERVICE_HOST"),
        var("KUBERNETES_SERVICE_PORT"),
    ) else {
        return Err(Diagnostic::error(
            "not-in-a-pod",
            "--in-cluster runs inside a pod of the cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set",
        )
        .with_hint("run arcplan as the Job of examples/k8s/in-cluster-job.yaml, or reach the cluster with a kubeconfig instead"));
    };
    let sa =
        PathBuf::from(var("ARCPLAN_SERVICE_ACCOUNT_DIR").unwrap_or(SERVICE_ACCOUNT_DIR.into()));
    for f in ["ca.crt", "token"] {
        if !sa.join(f).is_file() {
            return Err(Diagnostic::error(
                "no-service-account",
                format!(
                    "--in-cluster: the pod's service account has no {} ",
                    sa.join(f).display()
                ),
            )
            .with_hint(
                "mount the service account token (automountServiceAccountToken is not false)",
            ));
        }
    }
    let namespace =
        std::fs::read_to_string(sa.join("namespace")).unwrap_or_else(|_| "default".into());
    let server = if host.contains(':') {
        format!("https://[{host}]:{port}")
    } else {
        format!("https://{host}:{port}")
    };
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "in-cluster", "cluster": {"server": server, "certificate-authority": sa.join("ca.crt")}}],
        "users": [{"name": "service-account", "user": {"tokenFile": sa.join("token")}}],
        "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster", "user": "service-account", "namespace": namespace.trim()}}],
        "current-context": "in-cluster",
    });
    let dir = private_dir("arcplan-in-cluster-")?;
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    )
    .map_err(|e| Diagnostic::error("io", format!("cannot write {}: {e}", path.display())))?;
    cluster.kubeconfig = Some(path.display().to_string());
    cluster.context = Some("in-cluster".into());
    Ok((server, dir))
}

/// `ARCPLAN_LOCK_LEASE`: unset or empty means the provider's default; anything else must be a
/// duration of at least 1 s (the lease is renewed every third of it), or the run stops.
fn lock_lease(value: Option<String>) -> Result<Option<std::time::Duration>, Diagnostic> {
    let Some(v) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match humantime::parse_duration(v.trim()) {
        Ok(d) if d >= std::time::Duration::from_secs(1) => Ok(Some(d)),
        _ => Err(Diagnostic::error(
            "lock-lease",
            format!("ARCPLAN_LOCK_LEASE={v} is not a lease duration of at least 1s"),
        )
        .with_hint("write it like `15s` or `2m`, or unset it for the default (30s)")),
    }
}

#[cfg(test)]
mod lock_lease_tests {
    use super::lock_lease;
    use std::time::Duration;

    #[test]
    fn a_bad_lock_lease_is_an_error_not_the_default() {
        assert_eq!(lock_lease(None).unwrap(), None);
        assert_eq!(lock_lease(Some(" ".into())).unwrap(), None);
        assert_eq!(
            lock_lease(Some("15s".into())).unwrap(),
            Some(Duration::from_secs(15))
        );
        for bad in ["soon", "500ms", "0s", "-5s"] {
            let e = lock_lease(Some(bad.into())).unwrap_err();
            assert!(e.message.contains(bad), "{}", e.message);
        }
    }
}
