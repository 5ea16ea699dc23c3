//! The readiness wait both installers end with: every agent Deployment in `azure-arc` available,
//! bounded by the `timeout` attribute, cancellable, with a progress report every few seconds
//! ("5/9 agent deployments available") and, on timeout, a diagnostic naming what is not ready
//! with its last conditions and recent events.
//!
//! It only reads. Azure's side of readiness (`connectivityStatus=Connected`) is the
//! `arc.connectivity` check's job, not this module's.

use super::NAMESPACE;
use super::access::Cluster;
use arcplan_engine::diag::Diagnostic;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Event as KubeEvent;
use kube::api::{Api, ListParams};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How the wait went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Agent Deployments expected.
    pub total: usize,
    /// Of those, how many are available.
    pub available: usize,
    /// The names not available (missing ones included).
    pub not_ready: Vec<String>,
}

/// True when a Deployment is available: at least one replica wanted (an agent scaled to zero
/// runs nowhere, though Kubernetes calls such a Deployment Available), condition
/// `Available=True`, the controller has seen the current generation, and the available replicas
/// reach the desired count.
pub fn deployment_available(d: &Deployment) -> bool {
    let Some(st) = &d.status else {
        return false;
    };
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let seen = match (st.observed_generation, d.metadata.generation) {
        (Some(o), Some(g)) => o >= g,
        _ => true,
    };
    let cond = st.conditions.as_ref().is_some_and(|cs| {
        cs.iter()
            .any(|c| c.type_ == "Available" && c.status == "True")
    });
    want >= 1 && seen && cond && st.available_replicas.unwrap_or(0) >= want
}

/// The current readiness of `names` (or of every Deployment in `azure-arc` when `names` is
/// `None`), with the Deployments read.
pub async fn observe(
    cluster: &Cluster,
    names: Option<&[String]>,
) -> Result<(Readiness, BTreeMap<String, Deployment>), Diagnostic> {
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| cluster.api_error("list Deployments in namespace azure-arc", &e))?;
    let by_name: BTreeMap<String, Deployment> = list
        .items
        .into_iter()
        .filter_map(|d| Some((d.metadata.name.clone()?, d)))
        .collect();
    let wanted: Vec<String> = match names {
        Some(n) => n.to_vec(),
        None => by_name.keys().cloned().collect(),
    };
    let not_ready: Vec<String> = wanted
        .iter()
        .filter(|n| !by_name.get(*n).is_some_and(deployment_available))
        .cloned()
        .collect();
    Ok((
        Readiness {
            total: wanted.len(),
            available: wanted.len() - not_ready.len(),
            not_ready,
        },
        by_name,
    ))
}

/// The time the agents have to become ready: the configured `agents.timeout`, counted from when
/// the change started (an install spends part of it before the wait begins). Messages name the
/// configured value, never what is left of it.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// The configured timeout.
    pub configured: Duration,
    /// When it started counting.
    pub since: Instant,
}

impl Budget {
    /// A budget of `configured`, counted from `since`.
    pub fn new(configured: Duration, since: Instant) -> Self {
        Self { configured, since }
    }

    fn remaining(&self) -> Duration {
        self.configured.saturating_sub(self.since.elapsed())
    }
}

/// Waits until every agent Deployment is available. `progress` receives a message whenever the
/// count changes and at least every `report_every`.
pub async fn wait(
    cluster: &Cluster,
    names: Option<&[String]>,
    budget: Budget,
    poll: Duration,
    cancel: &CancellationToken,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<Readiness, Diagnostic> {
    let report_every = Duration::from_secs(5);
    let mut last_report: Option<(Instant, usize)> = None;
    loop {
        let (r, deployments) = observe(cluster, names).await?;
        if r.total > 0 && r.not_ready.is_empty() {
            progress(format!(
                "{}/{} agent deployments available",
                r.available, r.total
            ));
            return Ok(r);
        }
        let due =
            last_report.is_none_or(|(at, n)| n != r.available || at.elapsed() >= report_every);
        if due {
            progress(format!(
                "{}/{} agent deployments available",
                r.available, r.total
            ));
            last_report = Some((Instant::now(), r.available));
        }
        if budget.remaining().is_zero() {
            return Err(timed_out(cluster, &r, &deployments, budget.configured).await);
        }
        tokio::select! {
            () = tokio::time::sleep(poll.min(budget.remaining()).max(Duration::from_millis(10))) => {}
            () = cancel.cancelled() => {
                return Err(Diagnostic::error(
                    "cancelled",
                    format!(
                        "waiting for the Arc agents on {} was interrupted ({}/{} available)",
                        cluster.describe(), r.available, r.total
                    ),
                )
                .with_hint("nothing is lost: plan again to see what is left to do"));
            }
        }
    }
}

/// A configured duration as the file writes it: `15s`, `20m`, `1h30m` (whole units, no spaces;
/// never the nanoseconds of a remaining budget).
pub fn configured(d: Duration) -> String {
    let secs = d.as_secs();
    let ms = d.subsec_millis();
    if secs == 0 {
        return format!("{ms}ms");
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    if ms > 0 {
        out.push_str(&format!("{ms}ms"));
    }
    out
}

/// What keeps each of `not_ready` from being available, one `name: why` line each: missing,
/// the replica count and the Deployment's conditions that are not `True` (type, reason,
/// message), and the three most recent events of its objects.
pub async fn explain(
    cluster: &Cluster,
    not_ready: &[String],
    deployments: &BTreeMap<String, Deployment>,
) -> Vec<String> {
    if not_ready.is_empty() {
        return Vec::new();
    }
    let events: Vec<KubeEvent> = Api::<KubeEvent>::namespaced(cluster.client.clone(), NAMESPACE)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut parts = Vec::new();
    for name in not_ready {
        let mut s = match deployments.get(name) {
            None => format!("Deployment {NAMESPACE}/{name}: missing"),
            Some(d) => format!("Deployment {NAMESPACE}/{name}: {}", why_not_available(d)),
        };
        let mut mine: Vec<&KubeEvent> = events
            .iter()
            .filter(|e| {
                e.involved_object
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(name.as_str()))
            })
            .collect();
        mine.sort_by_key(|e| e.metadata.resource_version.clone().unwrap_or_default());
        let recent: Vec<String> = mine
            .iter()
            .rev()
            .take(3)
            .map(|e| {
                format!(
                    "{} {}: {}",
                    e.type_.as_deref().unwrap_or(""),
                    e.reason.as_deref().unwrap_or(""),
                    e.message.as_deref().unwrap_or("")
                )
            })
            .collect();
        if !recent.is_empty() {
            s.push_str(&format!("; recent events: {}", recent.join(" | ")));
        }
        parts.push(s);
    }
    parts
}

/// Why one Deployment is not available: its replicas and its conditions.
pub fn why_not_available(d: &Deployment) -> String {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = d.status.as_ref();
    let available = st.and_then(|s| s.available_replicas).unwrap_or(0);
    let mut parts = vec![if want == 0 {
        "scaled to 0 replicas: the agent runs no pod".to_owned()
    } else {
        format!("{available}/{want} replicas available")
    }];
    if let (Some(o), Some(g)) = (
        st.and_then(|s| s.observed_generation),
        d.metadata.generation,
    ) && o < g
    {
        parts.push(format!("generation {g} not yet observed (at {o})"));
    }
    let conds = st.and_then(|s| s.conditions.as_ref());
    match conds {
        None => parts.push("no conditions yet".into()),
        Some(cs) => {
            for c in cs {
                let detail = match (c.reason.as_deref(), c.message.as_deref()) {
                    (Some(r), Some(m)) => format!(" ({r}: {m})"),
                    (Some(x), None) | (None, Some(x)) => format!(" ({x})"),
                    (None, None) => String::new(),
                };
                parts.push(format!("{}={}{detail}", c.type_, c.status));
            }
        }
    }
    parts.join(", ")
}

async fn timed_out(
    cluster: &Cluster,
    r: &Readiness,
    deployments: &BTreeMap<String, Deployment>,
    timeout: Duration,
) -> Diagnostic {
    let parts = explain(cluster, &r.not_ready, deployments).await;
    Diagnostic::error(
        "k8s-agents-not-ready",
        format!(
            "the Arc agents on {} were not ready after {} (agents.timeout): {}/{} agent deployments available; not ready: {}",
            cluster.describe(),
            configured(timeout),
            r.available,
            r.total,
            parts.join("; ")
        ),
    )
    .with_hint("`kubectl -n azure-arc get pods` and `kubectl -n azure-arc describe pod NAME` show why (image pulls, resources, no Linux node); raise `agents.timeout` if the cluster is just slow")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_configured() {
        assert_eq!(configured(Duration::from_secs(15)), "15s");
        assert_eq!(configured(Duration::from_secs(20 * 60)), "20m");
        assert_eq!(configured(Duration::from_secs(90 * 60)), "1h30m");
        assert_eq!(configured(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(configured(Duration::from_millis(250)), "250ms");
        // A budget partly spent still names the configured value.
        let b = Budget::new(Duration::from_secs(15), Instant::now());
        assert!(b.remaining() <= Duration::from_secs(15));
        assert_eq!(configured(b.configured), "15s");
    }

    fn deployment(replicas: i32, available: i32) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "metrics-agent", "namespace": "azure-arc", "generation": 2 },
            "spec": { "replicas": replicas, "selector": {}, "template": {} },
            "status": {
                "observedGeneration": 2,
                "availableReplicas": available,
                "conditions": [{ "type": "Available", "status": "True", "reason": "MinimumReplicasAvailable" }]
            }
        }))
        .unwrap()
    }

    /// Kubernetes calls a Deployment scaled to zero Available; an agent that runs no pod is not.
    #[test]
    fn an_agent_scaled_to_zero_is_not_available() {
        assert!(deployment_available(&deployment(1, 1)));
        let zero = deployment(0, 0);
        assert!(!deployment_available(&zero));
        assert!(
            why_not_available(&zero).contains("scaled to 0 replicas"),
            "{}",
            why_not_available(&zero)
        );
    }
}
