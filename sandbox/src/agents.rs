//! Simulated Azure Arc agents: they live "in" the Kubernetes emulator and report to the ARM emulator,
//! the way the real agents in namespace `azure-arc` report to Azure.
//!
//! Every tick ([`AgentOptions::interval`]) the agents:
//! 1. read ConfigMap `azure-clusterconfig` in `azure-arc` (`AZURE_SUBSCRIPTION_ID`,
//!    `AZURE_RESOURCE_GROUP`, `AZURE_RESOURCE_NAME`) to learn which connected cluster they belong to;
//! 2. require every Deployment in `azure-arc` to be available (and at least one to exist);
//! 3. read the onboarding private key from Secret `azure-arc-connect-privatekey`, data key
//!    `privateKey` (PKCS#1 PEM, as the real agents read it), and require its public key, as base64 of
//!    the DER PKCS#1 RSAPublicKey, to equal the resource's `properties.agentPublicKeyCertificate`;
//! 4. then write back `connectivityStatus: Connected`, `agentVersion`, `kubernetesVersion`,
//!    `totalNodeCount`, `totalCoreCount`, `lastConnectivityTime`,
//!    `managedIdentityCertificateExpirationTime` (90 days) and `offering`;
//! 5. when the resource pins another version (`arcAgentProfile.desiredAgentVersion` with
//!    `agentAutoUpgrade: Disabled`), roll themselves to it (image tags and the ConfigMap's
//!    `AZURE_ARC_AGENT_VERSION`), the ARM way of `az connectedk8s upgrade`.
//!
//! A cluster that stays `Connected` but whose agents stop qualifying turns `Offline` after
//! [`AgentOptions::offline_after`] without heartbeat (Azure uses 15 minutes). A key that does not match
//! leaves the resource `Connecting`.
//!
//! Every emulated Kubernetes cluster of the sandbox has its own agents, judged independently: each
//! cluster's ConfigMap names its own connected cluster, so several can be Connected at once. One
//! loop ([`run`]) serves every cluster: per tick it reads each cluster's Kubernetes state, then locks
//! ARM once to report all of them and to expire stale ones, so a tick costs time linear in the number
//! of clusters. A cluster whose objects did not change since the last tick is not read again (its last
//! observation is reported with a new timestamp), and the public key derived from its private key is
//! remembered until the key changes (parsing RSA keys would dominate a fleet's heartbeat otherwise).
//!
//! Limits: two Kubernetes clusters whose ConfigMaps name the same connected cluster both report into
//! it (the last one wins). The agent version comes from `AZURE_ARC_AGENT_VERSION` in the ConfigMap,
//! else from the image tag of the `clusteridentityoperator` Deployment, else
//! [`AgentOptions::agent_version`].

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::arm::{ArmApi, ConnectedClusters};
use crate::kube::KubeApi;

/// Namespace of the Arc agents.
pub const AGENT_NAMESPACE: &str = "azure-arc";
/// The ownership ConfigMap.
pub const CONFIG_MAP: &str = "azure-clusterconfig";
/// The Secret holding the onboarding private key.
pub const PRIVATE_KEY_SECRET: &str = "azure-arc-connect-privatekey";
/// The data key of the private key in that Secret.
pub const PRIVATE_KEY_FIELD: &str = "privateKey";

/// Settings of the simulated agents.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentOptions {
    /// Time between two heartbeats.
    pub interval: Duration,
    /// A Connected cluster without heartbeat for this long becomes Offline.
    pub offline_after: Duration,
    /// Reported agent version when nothing in the cluster names one.
    pub agent_version: String,
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(100),
            offline_after: Duration::from_secs(15 * 60),
            agent_version: "1.21.10".to_string(),
        }
    }
}

/// What one heartbeat concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heartbeat {
    /// No ownership ConfigMap, or it names no cluster.
    NotOnboarded,
    /// The ConfigMap names a resource that does not exist (or is not provisioned yet).
    ResourceMissing,
    /// Agent Deployments missing or not available yet.
    AgentsNotReady,
    /// The private key Secret is missing or unreadable.
    KeyMissing,
    /// The private key does not match `agentPublicKeyCertificate`.
    KeyMismatch,
    /// Reported Connected.
    Connected,
}

fn deployment_available(d: &Value) -> bool {
    let conditions = d
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if conditions
        .iter()
        .any(|c| c["type"] == "Available" && c["status"].as_str().is_some_and(|s| s == "True"))
    {
        return true;
    }
    let want = d
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let have = d
        .pointer("/status/availableReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    want > 0 && have >= want
}

/// The base64 DER PKCS#1 public key of a PKCS#1 PEM private key.
pub fn public_key_of_pem(pem: &str) -> Option<String> {
    use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPublicKey};
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(pem.trim()).ok()?;
    let der = key.to_public_key().to_pkcs1_der().ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(der.as_bytes()))
}

fn secret_private_key(secret: &Value) -> Option<String> {
    if let Some(b64) = secret
        .pointer(&format!("/data/{PRIVATE_KEY_FIELD}"))
        .and_then(Value::as_str)
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?;
        return String::from_utf8(raw).ok();
    }
    secret
        .pointer(&format!("/stringData/{PRIVATE_KEY_FIELD}"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn agent_version(cm: &Value, deployments: &[Value], default: &str) -> String {
    if let Some(v) = cm
        .pointer("/data/AZURE_ARC_AGENT_VERSION")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
    {
        return v.to_string();
    }
    deployments
        .iter()
        .find(|d| {
            d.pointer("/metadata/name").and_then(Value::as_str) == Some("clusteridentityoperator")
        })
        .and_then(|d| d.pointer("/spec/template/spec/containers/0/image"))
        .and_then(Value::as_str)
        .and_then(|img| img.rsplit_once(':').map(|(_, tag)| tag.to_string()))
        .filter(|t| !t.contains('/') && !t.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// Which connected cluster a Kubernetes cluster's ConfigMap names, and what its agents see.
#[derive(Clone)]
struct Observation {
    subscription: String,
    resource_group: String,
    name: String,
    /// Every Deployment in the agent namespace is available (and there is at least one).
    agents_ready: bool,
    /// The public key of the onboarding private key, when the agents are ready and it is readable.
    public_key: Option<String>,
    /// Facts reported when Connected: agent version, node count, core count, Kubernetes version.
    agent_version: String,
    nodes: usize,
    cores: u64,
    git_version: String,
    /// Whom the custom-locations feature lets in: the User subject of ClusterRoleBinding
    /// `azure-arc-custom-locations`, when the cluster-connect agent runs too.
    custom_locations_oid: Option<String>,
}

/// The last private key seen in one cluster and its public key: parsing an RSA key costs far more
/// than the rest of a heartbeat, so the agent loop derives it once per key.
#[derive(Default)]
struct KeyCache {
    pem: String,
    public: Option<String>,
}

/// What the agent loop remembers of one cluster between ticks: its last observation and the
/// store's resourceVersion it was made at (an unchanged store needs no new observation).
#[derive(Default)]
struct ClusterCache {
    observed_at: Option<u64>,
    observation: Option<Observation>,
    key: KeyCache,
    /// The extension manager may have workloads in the cluster.
    extensions_installed: bool,
}

impl ClusterCache {
    fn observe(&mut self, kube: &KubeApi, opts: &AgentOptions) -> Option<&Observation> {
        let rv = kube.lock().rv;
        if self.observed_at != Some(rv) {
            self.observation = observe(kube, opts, &mut self.key);
            self.observed_at = Some(rv);
        }
        self.observation.as_ref()
    }
}

impl KeyCache {
    fn public_key(&mut self, pem: &str) -> Option<String> {
        if self.pem != pem || self.pem.is_empty() {
            self.pem = pem.to_string();
            self.public = public_key_of_pem(pem);
        }
        self.public.clone()
    }
}

/// Reads what the agents of one cluster read from Kubernetes; `None` when it is not onboarded.
fn observe(kube: &KubeApi, opts: &AgentOptions, cache: &mut KeyCache) -> Option<Observation> {
    let cm = kube.get("v1", "ConfigMap", Some(AGENT_NAMESPACE), CONFIG_MAP)?;
    let field = |k: &str| {
        cm.pointer(&format!("/data/{k}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (Some(subscription), Some(resource_group), Some(name)) = (
        field("AZURE_SUBSCRIPTION_ID"),
        field("AZURE_RESOURCE_GROUP"),
        field("AZURE_RESOURCE_NAME"),
    ) else {
        return None;
    };
    let mut obs = Observation {
        subscription,
        resource_group,
        name,
        agents_ready: false,
        public_key: None,
        agent_version: String::new(),
        nodes: 0,
        cores: 0,
        git_version: String::new(),
        custom_locations_oid: None,
    };
    let deployments = kube.list("apps/v1", "Deployment", Some(AGENT_NAMESPACE));
    obs.agents_ready = !deployments.is_empty() && deployments.iter().all(deployment_available);
    if !obs.agents_ready {
        return Some(obs);
    }
    obs.public_key = kube
        .get("v1", "Secret", Some(AGENT_NAMESPACE), PRIVATE_KEY_SECRET)
        .as_ref()
        .and_then(secret_private_key)
        .and_then(|pem| cache.public_key(&pem));
    if obs.public_key.is_some() {
        (obs.nodes, obs.cores, obs.git_version) = kube.nodes_summary();
        obs.agent_version = agent_version(&cm, &deployments, &opts.agent_version);
        obs.custom_locations_oid = custom_locations_oid(kube, &deployments);
    }
    Some(obs)
}

/// The ClusterRoleBinding through which the agents' custom-locations feature lets the Custom
/// Locations service in (the chart's `systemDefaultValues.customLocations`, as the sandbox
/// models it).
pub const CUSTOM_LOCATIONS_BINDING: &str = "azure-arc-custom-locations";

/// The object id the custom-locations feature lets in, when cluster-connect (the way in) runs.
fn custom_locations_oid(kube: &KubeApi, deployments: &[Value]) -> Option<String> {
    let connect = deployments.iter().any(|d| {
        d.pointer("/metadata/name").and_then(Value::as_str) == Some("clusterconnect-agent")
    });
    if !connect {
        return None;
    }
    let binding = kube.get(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        None,
        CUSTOM_LOCATIONS_BINDING,
    )?;
    binding["subjects"]
        .as_array()?
        .iter()
        .find(|s| s["kind"] == "User")
        .and_then(|s| s["name"].as_str())
        .map(str::to_owned)
}

/// Judges one observation against its ARM resource and, when everything matches, reports
/// Connected into it.
/// Returns, besides the verdict, the version the agents are to roll to: the connected cluster
/// pins one (`arcAgentProfile.desiredAgentVersion` with `agentAutoUpgrade: Disabled`) other than
/// the one they run.
fn report(
    clusters: &mut ConnectedClusters<'_>,
    obs: Option<&Observation>,
    stamp: &str,
    expiry: &str,
) -> (Heartbeat, Option<String>) {
    let verdict = report_into(clusters, obs, stamp, expiry);
    if let (Heartbeat::Connected, Some(obs)) = (&verdict, obs) {
        clusters.set_custom_locations_oid(
            (&obs.subscription, &obs.resource_group, &obs.name),
            obs.custom_locations_oid.clone(),
        );
    }
    let pinned = match (&verdict, obs) {
        (Heartbeat::Connected, Some(obs)) => clusters
            .get_mut(&obs.subscription, &obs.resource_group, &obs.name)
            .map(|r| &r["properties"]["arcAgentProfile"])
            .filter(|p| p["agentAutoUpgrade"] == "Disabled")
            .and_then(|p| p["desiredAgentVersion"].as_str())
            .filter(|v| !v.is_empty() && *v != obs.agent_version)
            .map(str::to_owned),
        _ => None,
    };
    (verdict, pinned)
}

fn report_into(
    clusters: &mut ConnectedClusters<'_>,
    obs: Option<&Observation>,
    stamp: &str,
    expiry: &str,
) -> Heartbeat {
    let Some(obs) = obs else {
        return Heartbeat::NotOnboarded;
    };
    let Some(resource) = clusters.get_mut(&obs.subscription, &obs.resource_group, &obs.name) else {
        return Heartbeat::ResourceMissing;
    };
    if resource["properties"]["provisioningState"] != "Succeeded" {
        return Heartbeat::ResourceMissing;
    }
    if !obs.agents_ready {
        return Heartbeat::AgentsNotReady;
    }
    let Some(public) = &obs.public_key else {
        return Heartbeat::KeyMissing;
    };
    let expected = resource["properties"]["agentPublicKeyCertificate"]
        .as_str()
        .unwrap_or("")
        .trim();
    if public != expected {
        return Heartbeat::KeyMismatch;
    }
    let p = &mut resource["properties"];
    p["connectivityStatus"] = json!("Connected");
    p["agentVersion"] = json!(obs.agent_version);
    p["kubernetesVersion"] = json!(obs.git_version.trim_start_matches('v'));
    p["totalNodeCount"] = json!(obs.nodes);
    p["totalCoreCount"] = json!(obs.cores);
    p["lastConnectivityTime"] = json!(stamp);
    p["offering"] = json!("Arc");
    if !p["managedIdentityCertificateExpirationTime"].is_string() {
        p["managedIdentityCertificateExpirationTime"] = json!(expiry);
    }
    Heartbeat::Connected
}

/// Connected clusters that missed their heartbeats go Offline.
fn expire(clusters: &mut ConnectedClusters<'_>, opts: &AgentOptions, now: time::OffsetDateTime) {
    let window = i128::try_from(opts.offline_after.as_millis()).unwrap_or(i128::MAX);
    clusters.for_each_mut(|c| {
        if c["properties"]["connectivityStatus"] != "Connected" {
            return;
        }
        let last = c["properties"]["lastConnectivityTime"]
            .as_str()
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            });
        if last.is_none_or(|l| (now - l).whole_milliseconds() > window) {
            c["properties"]["connectivityStatus"] = json!("Offline");
        }
    });
}

/// One heartbeat of the agents of every cluster in `clusters`, then one pass turning stale
/// Connected clusters Offline. ARM is locked once for all of them. Returns one verdict per cluster,
/// in order.
fn beat(
    arm: &ArmApi,
    clusters: &[KubeApi],
    caches: &mut [ClusterCache],
    opts: &AgentOptions,
) -> Vec<Heartbeat> {
    let now = time::OffsetDateTime::now_utc();
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let (stamp, expiry) = (rfc3339(now), rfc3339(now + time::Duration::days(90)));
    let observations: Vec<Option<&Observation>> = clusters
        .iter()
        .zip(caches.iter_mut())
        .map(|(kube, cache)| cache.observe(kube, opts))
        .collect();
    let (verdicts, rolls): (Vec<Heartbeat>, Vec<Option<String>>) =
        arm.with_connected_clusters(|arm_clusters| {
            let judged = observations
                .iter()
                .map(|obs| report(arm_clusters, *obs, &stamp, &expiry))
                .unzip();
            expire(arm_clusters, opts, now);
            judged
        });
    for (kube, version) in clusters.iter().zip(rolls) {
        if let Some(v) = version {
            roll(kube, &v);
        }
    }
    verdicts
}

/// The repository of the agents' images; a tag after it is the agent version.
pub(crate) const AGENT_REPOSITORY: &str = "mcr.microsoft.com/azurearck8s/";

/// The agents upgrade themselves to `version`, as Arc's agents do when their connected cluster
/// pins one: every agent image in `azure-arc` gets that tag (the Deployments roll) and the
/// ConfigMap's `AZURE_ARC_AGENT_VERSION` says it. Once they are available again the next
/// heartbeat reports the new `agentVersion`. A write that fails is tried again next tick.
fn roll(kube: &KubeApi, version: &str) {
    for mut d in kube.list("apps/v1", "Deployment", Some(AGENT_NAMESPACE)) {
        let mut changed = false;
        let containers = d
            .pointer_mut("/spec/template/spec/containers")
            .and_then(Value::as_array_mut);
        for c in containers.into_iter().flatten() {
            let Some((repo, tag)) = c["image"].as_str().and_then(|i| i.rsplit_once(':')) else {
                continue;
            };
            if repo.starts_with(AGENT_REPOSITORY) && tag != version {
                c["image"] = json!(format!("{repo}:{version}"));
                changed = true;
            }
        }
        if changed {
            let _ = kube.put(d);
        }
    }
    if let Some(mut cm) = kube.get("v1", "ConfigMap", Some(AGENT_NAMESPACE), CONFIG_MAP)
        && cm["data"]["AZURE_ARC_AGENT_VERSION"] != version
    {
        cm["data"]["AZURE_ARC_AGENT_VERSION"] = json!(version);
        let _ = kube.put(cm);
    }
}

/// One heartbeat of one cluster's agents: inspects the cluster and updates ARM (including turning
/// stale Connected clusters Offline). Returns what it concluded.
pub fn heartbeat(arm: &ArmApi, kube: &KubeApi, opts: &AgentOptions) -> Heartbeat {
    heartbeat_all(arm, std::slice::from_ref(kube), opts)
        .pop()
        .unwrap_or(Heartbeat::NotOnboarded)
}

/// One heartbeat of the agents of every cluster in `clusters` (each judged independently), then
/// one pass turning stale Connected clusters Offline. Returns one verdict per cluster, in order.
pub fn heartbeat_all(arm: &ArmApi, clusters: &[KubeApi], opts: &AgentOptions) -> Vec<Heartbeat> {
    let mut caches: Vec<ClusterCache> = clusters.iter().map(|_| ClusterCache::default()).collect();
    beat(arm, clusters, &mut caches, opts)
}

/// Runs [`heartbeat_all`] over `clusters` every [`AgentOptions::interval`] until `cancel` fires: one
/// loop for every cluster, which re-reads a cluster only when its objects changed since the last
/// tick (and derives a public key only when the private key changed).
pub async fn run(
    arm: ArmApi,
    clusters: Vec<KubeApi>,
    opts: AgentOptions,
    cancel: CancellationToken,
) {
    let mut caches: Vec<ClusterCache> = clusters.iter().map(|_| ClusterCache::default()).collect();
    let mut tick = tokio::time::interval(opts.interval.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {
                let verdicts = beat(&arm, &clusters, &mut caches, &opts);
                // The extension manager of every Connected cluster.
                for ((kube, cache), verdict) in clusters.iter().zip(caches.iter_mut()).zip(verdicts) {
                    if let (Heartbeat::Connected, Some(o)) = (verdict, &cache.observation) {
                        crate::extension_manager::reconcile(
                            &arm,
                            kube,
                            (&o.subscription, &o.resource_group, &o.name),
                            &mut cache.extensions_installed,
                        );
                    }
                }
            }
        }
    }
}
