//! Cluster access: which kubeconfig and context a cluster entry means, one cached `kube::Client`
//! per (kubeconfig, context), the plan-time preflight checks (rights through
//! SelfSubjectAccessReview, at least one Linux node), and the translation of Kubernetes API
//! errors into diagnostics that name the cluster, the context, the kubeconfig and what to do.
//!
//! It does not read or change any arcplan object; the resource modules do that through the
//! [`Cluster`] handle it returns.

use super::{KubernetesProviderOptions, NAMESPACE};
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// How a cluster entry names its cluster: the `cluster` attribute of both resource types.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterRef {
    /// `cluster.kubeconfig` as written (`~` and relative paths allowed).
    pub kubeconfig: Option<String>,
    /// `cluster.context`; `None` means the kubeconfig's current context.
    pub context: Option<String>,
}

impl ClusterRef {
    /// Reads `{"kubeconfig": ..., "context": ...}` (missing or null keys mean the defaults).
    pub fn from_attrs(cluster: &Value) -> ClusterRef {
        let s = |k: &str| cluster.get(k).and_then(Value::as_str);
        ClusterRef::of(s("kubeconfig"), s("context"))
    }

    /// The reference for a kubeconfig and a context as written (blank means the default).
    pub fn of(kubeconfig: Option<&str>, context: Option<&str>) -> ClusterRef {
        let s = |v: Option<&str>| v.filter(|s| !s.trim().is_empty()).map(str::to_owned);
        ClusterRef {
            kubeconfig: s(kubeconfig),
            context: s(context),
        }
    }
}

/// A connected cluster: the client plus what diagnostics need to name it.
pub struct Cluster {
    /// The client (cheap to clone).
    pub client: Client,
    /// The kubeconfig file(s), as resolved.
    pub kubeconfig: String,
    /// The context used.
    pub context: String,
    /// The API server URL.
    pub server: String,
    rights: HashMap<&'static str, OnceCell<Result<(), Diagnostics>>>,
    linux: OnceCell<Result<(), Diagnostics>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("kubeconfig", &self.kubeconfig)
            .field("context", &self.context)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// The kubeconfig files a cluster entry means, in merge order: `cluster.kubeconfig` (with `~`
/// expanded and relative paths taken against `base_dir`), else `$KUBECONFIG` (a path list),
/// else `~/.kube/config`.
pub fn kubeconfig_paths(
    r: &ClusterRef,
    opts: &KubernetesProviderOptions,
) -> Result<Vec<PathBuf>, Diagnostic> {
    let home = || {
        opts.env("HOME")
            .or_else(|| opts.env("USERPROFILE"))
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
    };
    let expand = |p: &str| -> Result<PathBuf, Diagnostic> {
        let path = if p == "~" || p.starts_with("~/") {
            let h = home().ok_or_else(|| {
                Diagnostic::error(
                    "k8s-kubeconfig",
                    format!("cannot expand `{p}`: neither HOME nor USERPROFILE is set"),
                )
                .with_hint("write the kubeconfig path without `~`, or set HOME")
            })?;
            h.join(p.trim_start_matches('~').trim_start_matches('/'))
        } else {
            PathBuf::from(p)
        };
        Ok(if path.is_relative() {
            opts.base_dir.join(path)
        } else {
            path
        })
    };
    if let Some(p) = &r.kubeconfig {
        return Ok(vec![expand(p)?]);
    }
    if let Some(list) = opts.env("KUBECONFIG").filter(|s| !s.trim().is_empty()) {
        let paths: Vec<PathBuf> = std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !paths.is_empty() {
            return paths.iter().map(|p| expand(&p.to_string_lossy())).collect();
        }
    }
    let h = home().ok_or_else(|| {
        Diagnostic::error(
            "k8s-kubeconfig",
            "no kubeconfig is named: the cluster has no `kubeconfig:`, KUBECONFIG is not set, and HOME is unknown (for ~/.kube/config)",
        )
        .with_hint("set `kubeconfig:` on the cluster entry or the KUBECONFIG variable")
    })?;
    Ok(vec![h.join(".kube").join("config")])
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// Loads the kubeconfig and builds a client for the context. Everything that can go wrong is a
/// diagnostic naming the file and the context.
pub(crate) async fn connect(
    r: &ClusterRef,
    opts: &KubernetesProviderOptions,
    parsed: &KubeconfigCache,
    transports: &super::transport::Transports,
) -> Result<Cluster, Diagnostic> {
    let paths = kubeconfig_paths(r, opts)?;
    let shown = display_paths(&paths);
    // A fleet's clusters usually share one kubeconfig: parse it once per run, not once per
    // cluster (500 contexts make a 0.5 MB file).
    let cell = {
        let mut map = parsed.lock().await;
        map.entry(paths.clone()).or_default().clone()
    };
    let full = cell
        .get_or_try_init(|| async {
            parse_kubeconfigs(paths.clone(), shown.clone())
                .await
                .map(Arc::new)
        })
        .await?
        .clone();
    let loaded: &Kubeconfig = &full;

    let context = match r.context.clone().or_else(|| loaded.current_context.clone()) {
        Some(c) if !c.is_empty() => c,
        _ => {
            return Err(Diagnostic::error(
                "k8s-context-missing",
                format!("kubeconfig {shown} has no current context and the cluster entry names none"),
            )
            .with_hint("set `context:` on the cluster entry (`kubectl config get-contexts --kubeconfig FILE` lists them)"));
        }
    };
    let names: Vec<&str> = loaded.contexts.iter().map(|c| c.name.as_str()).collect();
    if !names.contains(&context.as_str()) {
        let mut d = Diagnostic::error(
            "k8s-context-missing",
            format!(
                "kubeconfig {shown} has no context `{context}` (it has: {})",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        );
        d = match arcplan_engine::diag::did_you_mean(&context, names.iter().copied()) {
            Some(s) => d.with_hint(format!("did you mean `{s}`?")),
            None => {
                d.with_hint("set `context:` on the cluster entry to one of the listed contexts")
            }
        };
        return Err(d);
    }
    let kopts = KubeConfigOptions {
        context: Some(context.clone()),
        cluster: None,
        user: None,
    };
    // Only the chosen context, its cluster and its user: cheap to copy out of the shared file.
    let contexts: Vec<_> = loaded
        .contexts
        .iter()
        .filter(|c| c.name == context)
        .cloned()
        .collect();
    let (cluster_name, user_name) = contexts
        .first()
        .and_then(|c| c.context.as_ref())
        .map(|c| (c.cluster.clone(), c.user.clone()))
        .unwrap_or_default();
    let narrowed = Kubeconfig {
        clusters: loaded
            .clusters
            .iter()
            .filter(|c| c.name == cluster_name)
            .cloned()
            .collect(),
        auth_infos: loaded
            .auth_infos
            .iter()
            .filter(|a| Some(&a.name) == user_name.as_ref())
            .cloned()
            .collect(),
        contexts,
        current_context: Some(context.clone()),
        preferences: loaded.preferences.clone(),
        extensions: loaded.extensions.clone(),
        kind: loaded.kind.clone(),
        api_version: loaded.api_version.clone(),
        other: loaded.other.clone(),
    };
    if let Some(c) = narrowed.clusters.first()
        && c.cluster
            .as_ref()
            .and_then(|c| c.insecure_skip_tls_verify)
            .unwrap_or(false)
    {
        return Err(insecure_cluster(&shown, &context, &c.name));
    }
    let timeouts = crate::azure::http::Timeouts::from_env(&|k| opts.env(k)).map_err(|e| {
        Diagnostic::error("k8s-client", e.to_string())
            .with_hint("unset the variable or give a duration such as `30s`")
    })?;
    let mut config = Config::from_custom_kubeconfig(narrowed, &kopts)
        .await
        .map_err(|e| {
            Diagnostic::error(
                "k8s-kubeconfig-invalid",
                format!("context `{context}` in kubeconfig {shown} cannot be used: {e}"),
            )
            .with_hint("check the context's cluster, user and certificate entries")
        })?;
    config.connect_timeout = Some(timeouts.connect);
    config.read_timeout = Some(timeouts.response);
    config.write_timeout = Some(timeouts.response);
    let server = config.cluster_url.to_string();
    let cannot_build = |e: kube::Error| {
        Diagnostic::error(
            "k8s-client",
            format!(
                "cannot build a Kubernetes client for context `{context}` in {shown} ({server}): {e}"
            ),
        )
        .with_hint("check the context's TLS settings (certificate-authority, client certificate)")
    };
    let retry = super::retry::TransientRetry::default().with_response_timeout(timeouts.response);
    let default_ns = config.default_namespace.clone();
    // The transport shared by the contexts with the same TLS settings; a context with its own
    // client certificate, exec plugin or proxy gets kube's own stack (buffered, so that the
    // retry layer can clone it).
    let client = match transports
        .service(&config, retry.clone())
        .map_err(&cannot_build)?
    {
        Some(service) => kube::client::ClientBuilder::new(service, default_ns).build(),
        None => kube::client::ClientBuilder::try_from(config)
            .map_err(&cannot_build)?
            .with_layer(&tower::buffer::BufferLayer::new(1024))
            .with_layer(&tower::retry::RetryLayer::new(retry))
            .build(),
    };
    let rights = ["create", "delete"]
        .into_iter()
        .map(|v| (v, OnceCell::new()))
        .collect();
    Ok(Cluster {
        client,
        kubeconfig: shown,
        context,
        server,
        rights,
        linux: OnceCell::new(),
    })
}

/// The refusal of a kubeconfig cluster entry that turns TLS verification off: arcplan would
/// send the onboarding private key to a server it cannot authenticate.
fn insecure_cluster(kubeconfig: &str, context: &str, cluster: &str) -> Diagnostic {
    Diagnostic::error(
        "k8s-insecure-tls",
        format!(
            "kubeconfig {kubeconfig}, context `{context}`: cluster `{cluster}` sets `insecure-skip-tls-verify: true`; arcplan does not turn TLS verification off (an apply sends the cluster's onboarding private key to this server)"
        ),
    )
    .with_hint(format!(
        "trust the API server's CA instead: remove `insecure-skip-tls-verify` and set `certificate-authority: /path/to/ca.crt` or `certificate-authority-data: <base64 PEM>` on cluster `{cluster}` (for example `kubectl config set-cluster {cluster} --certificate-authority=ca.crt --embed-certs=true --kubeconfig {kubeconfig}`)"
    ))
}

/// The rights arcplan needs, as (group, resource, namespace) for a verb.
const NEEDED: &[(&str, &str, Option<&str>)] = &[
    ("", "namespaces", None),
    ("", "secrets", Some(NAMESPACE)),
    ("apps", "deployments", Some(NAMESPACE)),
    ("rbac.authorization.k8s.io", "clusterrolebindings", None),
    // The apply lock (`lock.rs`): its Lease lives in kube-system.
    (
        "coordination.k8s.io",
        "leases",
        Some(super::lock::LOCK_NAMESPACE),
    ),
];

impl Cluster {
    /// `context `X` (kubeconfig F, server S)`: how messages name the cluster.
    pub fn describe(&self) -> String {
        format!(
            "context `{}` (kubeconfig {}, server {})",
            self.context, self.kubeconfig, self.server
        )
    }

    /// A diagnostic for a failed API call; `action` says what was attempted ("read Secret
    /// azure-arc/x").
    pub fn api_error(&self, action: &str, e: &kube::Error) -> Diagnostic {
        match e {
            kube::Error::Api(s) if s.code == 401 => Diagnostic::error(
                "k8s-unauthorized",
                format!(
                    "the Kubernetes API of {} rejected the credential (401 Unauthorized) while trying to {action}",
                    self.describe()
                ),
            )
            .with_hint("the token or certificate has expired or is wrong: refresh the kubeconfig (for example `az aks get-credentials` or your cluster's login command)"),
            kube::Error::Api(s) if s.code == 403 => Diagnostic::error(
                "k8s-forbidden",
                format!(
                    "the credential of {} may not {action}: {}",
                    self.describe(),
                    s.message
                ),
            )
            .with_hint("connecting a cluster to Azure Arc needs cluster-admin rights (the CLI checks `kubectl auth can-i create clusterrolebindings`); use an admin context"),
            kube::Error::Api(s) => Diagnostic::error(
                "k8s-api",
                format!(
                    "the Kubernetes API of {} refused to {action}: {} ({} {})",
                    self.describe(),
                    s.message,
                    s.code,
                    s.reason
                ),
            )
            .with_hint("run plan again; if it persists, check the API server's health"),
            kube::Error::HyperError(_) | kube::Error::Service(_) => Diagnostic::error(
                "k8s-unreachable",
                format!(
                    "cannot reach the Kubernetes API server of {} to {action}: {}",
                    self.describe(),
                    crate::azure::http::chain_text(e)
                ),
            )
            .with_hint(match crate::azure::http::classify(e) {
                crate::azure::http::Failure::UntrustedCertificate => format!(
                    "the API server's certificate is signed by a CA this kubeconfig does not trust: set `certificate-authority` or `certificate-authority-data` on the cluster of context `{}`",
                    self.context
                ),
                _ => format!(
                    "check that the cluster is running and reachable from here (network, VPN, proxy); `kubectl --context {} get --raw /version` should answer",
                    self.context
                ),
            }),
            other => Diagnostic::error(
                "k8s-api",
                format!(
                    "talking to the Kubernetes API of {} to {action} failed: {}",
                    self.describe(),
                    crate::azure::http::chain_text(other)
                ),
            ),
        }
    }

    /// Checks (once per run and verb) that the credential may `verb` namespaces, secrets and
    /// deployments in `azure-arc`, clusterrolebindings, and leases in `kube-system` (the lock), the way `az connectedk8s` checks
    /// with a SelfSubjectAccessReview.
    pub async fn check_rights(&self, verb: &'static str) -> Result<(), Diagnostics> {
        let Some(cell) = self.rights.get(verb) else {
            return Ok(());
        };
        cell.get_or_init(|| self.review(verb)).await.clone()
    }

    async fn review(&self, verb: &'static str) -> Result<(), Diagnostics> {
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let checks = NEEDED.iter().map(|(group, resource, ns)| {
            let api = api.clone();
            async move {
                let review = SelfSubjectAccessReview {
                    spec: SelfSubjectAccessReviewSpec {
                        resource_attributes: Some(ResourceAttributes {
                            group: Some((*group).to_owned()),
                            resource: Some((*resource).to_owned()),
                            namespace: ns.map(str::to_owned),
                            verb: Some(verb.to_owned()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let what = match ns {
                    Some(n) => format!("{verb} {resource} in namespace {n}"),
                    None => format!("{verb} {resource}"),
                };
                match api.create(&PostParams::default(), &review).await {
                    Ok(r) => {
                        let st = r.status.unwrap_or_default();
                        if st.allowed {
                            Ok(())
                        } else {
                            let why = st
                                .reason
                                .filter(|s| !s.is_empty())
                                .map(|s| format!(" ({s})"))
                                .unwrap_or_default();
                            Err(format!("{what}{why}"))
                        }
                    }
                    Err(e) => Err(format!(
                        "{what} (the access review failed: {})",
                        self.api_error("create a SelfSubjectAccessReview", &e)
                            .message
                    )),
                }
            }
        });
        let denied: Vec<String> = futures::future::join_all(checks)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if denied.is_empty() {
            return Ok(());
        }
        Err(Diagnostic::error(
            "k8s-insufficient-rights",
            format!(
                "the credential of {} lacks rights arcplan needs: it may not {}",
                self.describe(),
                denied.join("; ")
            ),
        )
        .with_hint("use a cluster-admin context (the Arc agents install cluster roles and bindings); check with `kubectl auth can-i create clusterrolebindings`")
        .into())
    }

    /// Checks (once per run) that the cluster has at least one Linux node, as the Arc agents
    /// need one.
    pub async fn check_linux_node(&self) -> Result<(), Diagnostics> {
        self.linux
            .get_or_init(|| async {
                let api: Api<Node> = Api::all(self.client.clone());
                let lp = ListParams::default()
                    .labels("kubernetes.io/os=linux")
                    .limit(1);
                match api.list_metadata(&lp).await {
                    Ok(l) if !l.items.is_empty() => Ok(()),
                    Ok(_) => Err(Diagnostic::error(
                        "k8s-no-linux-node",
                        format!(
                            "{} has no Linux node (no node carries kubernetes.io/os=linux); the Azure Arc agents run only on Linux",
                            self.describe()
                        ),
                    )
                    .with_hint("add a Linux node pool (AKS hybrid: a Linux worker pool) and plan again")
                    .into()),
                    Err(e) => Err(self.api_error("list nodes", &e).into()),
                }
            })
            .await
            .clone()
    }
}

/// True for a 404 from the API.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// True for a 409 from the API.
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// The cache of connected clusters, one per (kubeconfig, context).
#[derive(Default)]
pub(crate) struct ClusterCache {
    by_ref: tokio::sync::Mutex<HashMap<ClusterRef, Arc<OnceCell<Arc<Cluster>>>>>,
    parsed: KubeconfigCache,
    transports: super::transport::Transports,
}

impl ClusterCache {
    pub(crate) async fn get(
        &self,
        r: &ClusterRef,
        opts: &KubernetesProviderOptions,
    ) -> Result<Arc<Cluster>, Diagnostic> {
        let cell = {
            let mut map = self.by_ref.lock().await;
            map.entry(r.clone()).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            connect(r, opts, &self.parsed, &self.transports)
                .await
                .map(Arc::new)
        })
        .await
        .cloned()
    }
}

/// Parsed kubeconfigs by their path list, shared by every cluster of a run.
pub(crate) type KubeconfigCache =
    tokio::sync::Mutex<HashMap<Vec<PathBuf>, Arc<OnceCell<Arc<Kubeconfig>>>>>;

/// Reads one kubeconfig file as `Kubeconfig::read_from` does (its documents merged, relative file
/// paths taken against its directory), with a YAML budget that grows with the file: a fleet's
/// kubeconfig of 10,000 contexts has more nodes than the parser's default limit of 250,000.
pub fn read_kubeconfig(p: &Path) -> Result<Kubeconfig, String> {
    let text = std::fs::read_to_string(p).map_err(|e| e.to_string())?;
    // A YAML node takes at least a few bytes of text, so this bounds the nodes of any file
    // without letting a small file expand (the other limits, aliases included, stay).
    let nodes = text.len() / 4;
    let mut budget = serde_saphyr::Budget::default();
    if nodes <= budget.max_nodes {
        return Kubeconfig::read_from(p).map_err(|e| e.to_string());
    }
    budget.max_nodes = nodes;
    budget.max_events = budget.max_events.max(nodes * 2);
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    let docs: Vec<Kubeconfig> = serde_saphyr::from_multiple_with_options(&text, options)
        .map_err(|e| format!("failed to parse kubeconfig YAML: {e}"))?;
    let dir = p.parent().unwrap_or(Path::new("."));
    let absolute = |f: &mut Option<String>| {
        if let Some(path) = f.as_deref()
            && Path::new(path).is_relative()
        {
            *f = Some(dir.join(path).display().to_string());
        }
    };
    let mut merged = Kubeconfig::default();
    for mut kc in docs {
        for c in kc.clusters.iter_mut().filter_map(|n| n.cluster.as_mut()) {
            absolute(&mut c.certificate_authority);
        }
        for a in kc
            .auth_infos
            .iter_mut()
            .filter_map(|n| n.auth_info.as_mut())
        {
            absolute(&mut a.client_certificate);
            absolute(&mut a.client_key);
            absolute(&mut a.token_file);
        }
        merged = merged.merge(kc).map_err(|e| e.to_string())?;
    }
    Ok(merged)
}

/// Reads and merges kubeconfig files (off the async threads).
async fn parse_kubeconfigs(
    load_paths: Vec<PathBuf>,
    shown: String,
) -> Result<Kubeconfig, Diagnostic> {
    tokio::task::spawn_blocking(move || -> Result<Kubeconfig, Diagnostic> {
        let mut merged: Option<Kubeconfig> = None;
        for p in &load_paths {
            if !p.is_file() {
                return Err(Diagnostic::error(
                    "k8s-kubeconfig-missing",
                    format!("kubeconfig file {} does not exist", p.display()),
                )
                .with_hint(
                    "set `kubeconfig:` on the cluster entry (relative paths are taken from the configuration file's directory), or KUBECONFIG, or write ~/.kube/config",
                ));
            }
            let kc = read_kubeconfig(p).map_err(|e| {
                Diagnostic::error(
                    "k8s-kubeconfig-invalid",
                    format!("cannot read kubeconfig {}: {e}", p.display()),
                )
                .with_hint("check the file with `kubectl config view --kubeconfig FILE`")
            })?;
            merged = Some(match merged {
                None => kc,
                Some(m) => m.merge(kc).map_err(|e| {
                    Diagnostic::error(
                        "k8s-kubeconfig-invalid",
                        format!("cannot merge kubeconfig {}: {e}", p.display()),
                    )
                })?,
            });
        }
        Ok(merged.unwrap_or_default())
    })
    .await
    .map_err(|e| Diagnostic::error("k8s-kubeconfig", format!("reading {shown} failed: {e}")))?
}

/// `p` relative to `base` unless absolute.
pub fn resolve_path(base: &Path, p: &str) -> PathBuf {
    let path = PathBuf::from(p);
    if path.is_relative() {
        base.join(path)
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn opts(env: &[(&str, &str)]) -> KubernetesProviderOptions {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        KubernetesProviderOptions::new("/cfg").with_env(move |k| env.get(k).cloned())
    }

    #[test]
    fn kubeconfig_resolution_order() {
        let r = |k: Option<&str>| ClusterRef {
            kubeconfig: k.map(str::to_owned),
            context: None,
        };
        let o = opts(&[("HOME", "/home/u"), ("KUBECONFIG", "/a:/b")]);
        assert_eq!(
            kubeconfig_paths(&r(Some("~/kc")), &o).unwrap(),
            vec![PathBuf::from("/home/u/kc")]
        );
        assert_eq!(
            kubeconfig_paths(&r(Some("kc/x")), &o).unwrap(),
            vec![PathBuf::from("/cfg/kc/x")]
        );
        assert_eq!(
            kubeconfig_paths(&r(None), &o).unwrap(),
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        let o = opts(&[("HOME", "/home/u")]);
        assert_eq!(
            kubeconfig_paths(&r(None), &o).unwrap(),
            vec![PathBuf::from("/home/u/.kube/config")]
        );
        let o = opts(&[]);
        assert!(kubeconfig_paths(&r(None), &o).is_err());
        assert!(kubeconfig_paths(&r(Some("~/x")), &o).is_err());
    }

    #[tokio::test]
    async fn missing_file_and_context_are_named() {
        let dir = std::env::temp_dir().join(format!("arcplan-k8s-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let o = KubernetesProviderOptions::new(&dir).with_env(|_| None);
        let missing = ClusterRef {
            kubeconfig: Some("nope.yaml".into()),
            context: None,
        };
        let d = connect(
            &missing,
            &o,
            &KubeconfigCache::default(),
            &Default::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(d.code, "k8s-kubeconfig-missing");
        assert!(d.message.contains("nope.yaml"), "{}", d.message);
        std::fs::write(
            dir.join("kc"),
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: admin\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user:\n    token: t\ncurrent-context: admin\n",
        )
        .unwrap();
        let wrong = ClusterRef {
            kubeconfig: Some("kc".into()),
            context: Some("admn".into()),
        };
        let d = connect(&wrong, &o, &KubeconfigCache::default(), &Default::default())
            .await
            .unwrap_err();
        assert_eq!(d.code, "k8s-context-missing");
        assert!(d.message.contains("admn") && d.message.contains("admin"));
        assert_eq!(d.hint.as_deref(), Some("did you mean `admin`?"));
        let ok = ClusterRef {
            kubeconfig: Some("kc".into()),
            context: None,
        };
        let c = connect(&ok, &o, &KubeconfigCache::default(), &Default::default())
            .await
            .unwrap();
        assert_eq!(c.context, "admin");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_fleet_sized_kubeconfig_is_read_past_the_default_yaml_budget() {
        // 12,000 contexts: more YAML nodes than the parser allows by default (250,000).
        let dir = std::env::temp_dir().join(format!("arcplan-kc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut y = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
        let n = 12_000;
        for i in 0..n {
            y.push_str(&format!("- name: c{i}\n  cluster:\n    server: https://127.0.0.1:1/clusters/c{i}\n    certificate-authority: ca.pem\n"));
        }
        y.push_str("contexts:\n");
        for i in 0..n {
            y.push_str(&format!("- name: c{i}\n  context:\n    cluster: c{i}\n    user: u{i}\n    namespace: default\n"));
        }
        y.push_str("users:\n");
        for i in 0..n {
            y.push_str(&format!("- name: u{i}\n  user:\n    token: t{i}\n"));
        }
        let path = dir.join("kubeconfig");
        std::fs::write(&path, &y).unwrap();
        assert!(
            Kubeconfig::read_from(&path).is_err(),
            "the default budget refuses it"
        );
        let kc = read_kubeconfig(&path).expect("read");
        assert_eq!(kc.contexts.len(), n);
        let ca = kc.clusters[7]
            .cluster
            .as_ref()
            .unwrap()
            .certificate_authority
            .clone();
        assert_eq!(ca, Some(dir.join("ca.pem").display().to_string()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
