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
//!    `managedIdentityCertificateExpirationTime` (90 days) and `offering`.
//!
//! A cluster that stays `Connected` but whose agents stop qualifying turns `Offline` after
//! [`AgentOptions::offline_after`] without heartbeat (Azure uses 15 minutes). A key that does not match
//! leaves the resource `Connecting`.
//!
//! Limits: one Kubernetes cluster per sandbox, so at most one connected cluster can be served by
//! agents. The agent version comes from `AZURE_ARC_AGENT_VERSION` in the ConfigMap, else from the image
//! tag of the `clusteridentityoperator` Deployment, else [`AgentOptions::agent_version`].

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::arm::ArmApi;
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

/// One heartbeat: inspects the cluster and updates ARM. Returns what it concluded.
pub fn heartbeat(arm: &ArmApi, kube: &KubeApi, opts: &AgentOptions) -> Heartbeat {
    let now = time::OffsetDateTime::now_utc();
    let outcome = report(arm, kube, opts, now);
    // Connected clusters that missed their heartbeats go Offline.
    for (sub, rg, c) in arm.connected_clusters() {
        let name = c["name"].as_str().unwrap_or("").to_string();
        if c["properties"]["connectivityStatus"] != "Connected" {
            continue;
        }
        let last = c["properties"]["lastConnectivityTime"]
            .as_str()
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            });
        let stale = last.is_none_or(|l| {
            (now - l).whole_milliseconds()
                > i128::try_from(opts.offline_after.as_millis()).unwrap_or(i128::MAX)
        });
        if stale {
            arm.update_connected_cluster(&sub, &rg, &name, |r| {
                r["properties"]["connectivityStatus"] = json!("Offline");
            });
        }
    }
    outcome
}

fn report(
    arm: &ArmApi,
    kube: &KubeApi,
    opts: &AgentOptions,
    now: time::OffsetDateTime,
) -> Heartbeat {
    let Some(cm) = kube.get("v1", "ConfigMap", Some(AGENT_NAMESPACE), CONFIG_MAP) else {
        return Heartbeat::NotOnboarded;
    };
    let field = |k: &str| {
        cm.pointer(&format!("/data/{k}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (Some(sub), Some(rg), Some(name)) = (
        field("AZURE_SUBSCRIPTION_ID"),
        field("AZURE_RESOURCE_GROUP"),
        field("AZURE_RESOURCE_NAME"),
    ) else {
        return Heartbeat::NotOnboarded;
    };
    let Some(resource) = arm.connected_cluster(&sub, &rg, &name) else {
        return Heartbeat::ResourceMissing;
    };
    if resource["properties"]["provisioningState"] != "Succeeded" {
        return Heartbeat::ResourceMissing;
    }
    let deployments = kube.list("apps/v1", "Deployment", Some(AGENT_NAMESPACE));
    if deployments.is_empty() || !deployments.iter().all(deployment_available) {
        return Heartbeat::AgentsNotReady;
    }
    let Some(pem) = kube
        .get("v1", "Secret", Some(AGENT_NAMESPACE), PRIVATE_KEY_SECRET)
        .as_ref()
        .and_then(secret_private_key)
    else {
        return Heartbeat::KeyMissing;
    };
    let Some(public) = public_key_of_pem(&pem) else {
        return Heartbeat::KeyMissing;
    };
    let expected = resource["properties"]["agentPublicKeyCertificate"]
        .as_str()
        .unwrap_or("")
        .trim()
        .to_string();
    if public != expected {
        return Heartbeat::KeyMismatch;
    }
    let (nodes, cores, git_version) = kube.nodes_summary();
    let version = agent_version(&cm, &deployments, &opts.agent_version);
    let stamp = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let expiry = (now + time::Duration::days(90))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    arm.update_connected_cluster(&sub, &rg, &name, |r| {
        let p = &mut r["properties"];
        p["connectivityStatus"] = json!("Connected");
        p["agentVersion"] = json!(version);
        p["kubernetesVersion"] = json!(git_version.trim_start_matches('v'));
        p["totalNodeCount"] = json!(nodes);
        p["totalCoreCount"] = json!(cores);
        p["lastConnectivityTime"] = json!(stamp);
        p["offering"] = json!("Arc");
        if !p["managedIdentityCertificateExpirationTime"].is_string() {
            p["managedIdentityCertificateExpirationTime"] = json!(expiry);
        }
    });
    Heartbeat::Connected
}

/// Runs [`heartbeat`] every [`AgentOptions::interval`] until `cancel` fires.
pub async fn run(arm: ArmApi, kube: KubeApi, opts: AgentOptions, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(opts.interval.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => { heartbeat(&arm, &kube, &opts); }
        }
    }
}
