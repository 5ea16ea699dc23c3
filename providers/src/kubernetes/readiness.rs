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

/// True when a Deployment is available: condition `Available=True`, the controller has seen
/// the current generation, and the available replicas reach the desired count.
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
    seen && cond && st.available_replicas.unwrap_or(0) >= want
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

/// Waits until every agent Deployment is available. `progress` receives a message whenever the
/// count changes and at least every `report_every`.
pub async fn wait(
    cluster: &Cluster,
    names: Option<&[String]>,
    timeout: Duration,
    poll: Duration,
    cancel: &CancellationToken,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<Readiness, Diagnostic> {
    let started = Instant::now();
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
        if started.elapsed() >= timeout {
            return Err(timed_out(cluster, &r, &deployments, timeout).await);
        }
        tokio::select! {
            () = tokio::time::sleep(poll.min(timeout.saturating_sub(started.elapsed())).max(Duration::from_millis(10))) => {}
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

async fn timed_out(
    cluster: &Cluster,
    r: &Readiness,
    deployments: &BTreeMap<String, Deployment>,
    timeout: Duration,
) -> Diagnostic {
    let events: Vec<KubeEvent> = Api::<KubeEvent>::namespaced(cluster.client.clone(), NAMESPACE)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut parts = Vec::new();
    for name in &r.not_ready {
        let mut s = match deployments.get(name) {
            None => format!("{name}: missing"),
            Some(d) => {
                let conds: Vec<String> = d
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .map(|cs| {
                        cs.iter()
                            .map(|c| {
                                format!(
                                    "{}={}{}",
                                    c.type_,
                                    c.status,
                                    c.message
                                        .as_deref()
                                        .map(|m| format!(" ({m})"))
                                        .unwrap_or_default()
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                format!(
                    "{name}: {}",
                    if conds.is_empty() {
                        "no conditions yet".to_owned()
                    } else {
                        conds.join(", ")
                    }
                )
            }
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
    Diagnostic::error(
        "k8s-agents-not-ready",
        format!(
            "the Arc agents on {} were not ready after {}: {}/{} agent deployments available; not ready: {}",
            cluster.describe(),
            humantime::format_duration(timeout),
            r.available,
            r.total,
            parts.join("; ")
        ),
    )
    .with_hint("`kubectl -n azure-arc get pods` and `kubectl -n azure-arc describe pod NAME` show why (image pulls, resources, no Linux node); raise `agents.timeout` if the cluster is just slow")
}
