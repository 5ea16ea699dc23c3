//! `arc.connectivity`: the apply-time check that a connected cluster reports `Connected` once
//! its agents are ready.

use super::connected_cluster::{self, cluster_outputs, cluster_state};
use crate::azure::cloud::ApiKind;
use crate::azure::context::AzureCx;
use crate::azure::shared::{diag_from, s};
use crate::kind::{Kind, attributes};
use crate::kubernetes::kinds::arc_agents;
use arcplan_config::Config;
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::diag::Diagnostics;
use arcplan_engine::events::Event;
use arcplan_engine::graph::{Deferred, GraphBuilder, Mode};
use arcplan_engine::plan::{CheckResult, CheckStatus};
use arcplan_engine::provider::{CheckPhase, CheckRequest, CheckResponse};
use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The type.
pub const TYPE: ResourceType = ResourceType::of("arc.connectivity");

/// The declared attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// The connected cluster's ARM id.
    pub connected_cluster_id: Deferred<String>,
    /// Whether the agents are ready.
    pub agents_ready: Deferred<bool>,
    /// How long to wait for `Connected` (humantime).
    pub timeout: String,
    /// The pinned agent version (`arcAgentProfile.desiredAgentVersion`) the agents must report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
}

/// One check per cluster, after its agents.
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    for (i, c) in cfg.clusters.iter().enumerate() {
        let cc = connected_cluster::address(&c.name);
        let attrs = Attributes {
            connected_cluster_id: Deferred::reference(&cc, "id"),
            agents_ready: Deferred::reference(&arc_agents::address(&c.name), "ready"),
            timeout: c.agents.connect_timeout.clone(),
            agent_version: connected_cluster::features::Features::of(c).desired_agent_version,
        };
        b.node(
            Address::new(TYPE, c.name.clone()),
            Mode::ApplyCheck,
            &attrs,
            format!("clusters[{i}]"),
        );
    }
}

/// The kind: pending at plan time; during apply, waits until Azure shows the cluster
/// `Connected`, with what the agents reported, or says what to look at when it does not.
pub struct Connectivity;

#[async_trait]
impl Kind<AzureCx> for Connectivity {
    fn rtype(&self) -> ResourceType {
        TYPE
    }

    async fn check(&self, cx: &AzureCx, req: &CheckRequest) -> CheckResponse {
        let mut result = CheckResult {
            address: req.address.clone(),
            status: CheckStatus::Pending,
            summary: "waits for Azure to show the cluster Connected".into(),
            fix: None,
            details: None,
            depends_on: Vec::new(),
            desired: None,
        };
        let mut diagnostics = Diagnostics::new();
        if req.phase == CheckPhase::Plan {
            return CheckResponse {
                result,
                diagnostics,
            };
        }
        let attrs: Attributes = match attributes(&req.address, &req.desired) {
            Ok(a) => a,
            Err(d) => {
                result.status = CheckStatus::Fail;
                result.summary = d.message.clone();
                diagnostics.push(d);
                return CheckResponse {
                    result,
                    diagnostics,
                };
            }
        };
        let id = attrs
            .connected_cluster_id
            .known()
            .cloned()
            .unwrap_or_default();
        let timeout =
            humantime::parse_duration(&attrs.timeout).unwrap_or(Duration::from_secs(20 * 60));
        let started = Instant::now();
        let get = cx.req(Method::GET, &id, ApiKind::ConnectedClusters, None);
        loop {
            let last = match cx.arm.send(&get).await {
                Ok(resp) => cluster_state(&resp.body),
                Err(e) => {
                    diagnostics.push(diag_from(&e, &req.address));
                    result.status = CheckStatus::Fail;
                    result.summary = "cannot read the connected cluster".into();
                    return CheckResponse {
                        result,
                        diagnostics,
                    };
                }
            };
            let status = s(&last, "connectivityStatus").to_owned();
            let reported = s(&last, "agentVersion");
            let rolling = attrs
                .agent_version
                .as_deref()
                .filter(|want| status == "Connected" && reported != *want);
            let status = match rolling {
                Some(want) => format!("Connected, agents at {reported} rolling to {want}"),
                None => status,
            };
            if status == "Connected" {
                result.status = CheckStatus::Pass;
                result.summary = format!(
                    "Connected: agent {}, Kubernetes {}, {} nodes, {} cores",
                    s(&last, "agentVersion"),
                    s(&last, "kubernetesVersion"),
                    last.get("totalNodeCount").cloned().unwrap_or(Value::Null),
                    last.get("totalCoreCount").cloned().unwrap_or(Value::Null)
                );
                result.details = Some(cluster_outputs(&last));
                return CheckResponse {
                    result,
                    diagnostics,
                };
            }
            if started.elapsed() >= timeout || req.cancel.is_cancelled() {
                result.status = CheckStatus::Fail;
                result.summary = if req.cancel.is_cancelled() {
                    let waited = humantime::format_duration(Duration::from_secs(
                        started.elapsed().as_secs(),
                    ));
                    format!("still {status} after {waited} (interrupted)")
                } else {
                    // The configured value, as written (`agents.connectTimeout`).
                    format!(
                        "still {status} after {} (agents.connectTimeout)",
                        crate::kubernetes::readiness::configured(timeout)
                    )
                };
                result.fix = Some(fix(&status).into());
                result.details = Some(cluster_outputs(&last));
                return CheckResponse {
                    result,
                    diagnostics,
                };
            }
            req.events.emit(Event::ApplyProgress {
                address: req.address.clone(),
                message: format!("connectivityStatus {status}"),
                elapsed_seconds: started.elapsed().as_secs_f64(),
            });
            tokio::select! {
                _ = tokio::time::sleep(cx.settings.poll_interval) => {}
                _ = req.cancel.cancelled() => {}
            }
        }
    }
}

/// What to look at when the cluster is not `Connected`, by its connectivity status.
fn fix(status: &str) -> &'static str {
    match status {
        "Connecting" => {
            "the agents have not reported to Azure yet: check `kubectl -n azure-arc get pods`, outbound access to Azure (proxy, firewall), and that the key in Secret azure-arc/azure-arc-connect-privatekey matches the resource (run plan)"
        }
        "Offline" | "Expired" => {
            "the agents stopped reporting: check the cluster's outbound connectivity and the agents' logs (`kubectl -n azure-arc logs deploy/clusterconnect-agent`)"
        }
        "AgentNotInstalled" => "the agents are not installed: run apply again",
        s if s.starts_with("Connected, agents at") => {
            "the agents have not rolled to the pinned version (arcAgentProfile.desiredAgentVersion) yet: check `kubectl -n azure-arc get deployments -o wide` and the agents' logs (`kubectl -n azure-arc logs deploy/config-agent`)"
        }
        _ => "check `kubectl -n azure-arc get pods` and the cluster's outbound connectivity",
    }
}
