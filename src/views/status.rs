//! `arcplan status`: each cluster's connectivity as Azure reports it and its agents'
//! readiness, and, for anything not ready, what and why. One cluster is shown as a block; a
//! fleet as one row per cluster, then the problems of the clusters that are not ready. Both end
//! with a summary line (`10/12 clusters ready; 2 not ready: a, b`).

use super::plan::{BOLD, CREATE, DELETE, paint};
use crate::cli::Invocation;
use serde::Serialize;
use serde_json::{Value, json};

/// The agent Deployments of one cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentsStatus {
    /// Agent Deployments expected.
    pub total: u64,
    /// Of those, available.
    pub available: u64,
    /// `helm` or `manifests`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installer: Option<String>,
}

/// What is known of one cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// The cluster's name in the file.
    pub cluster: String,
    /// `connectivityStatus` of the connected cluster (`NotOnboarded` when there is none).
    pub connectivity_status: String,
    /// The connected cluster's live state, when it exists.
    pub connected_cluster: Option<Value>,
    /// The agents, when installed.
    pub agents: Option<AgentsStatus>,
    /// What is not ready, and why (empty when the cluster is ready).
    pub problems: Vec<String>,
}

impl ClusterStatus {
    /// Reads the connected cluster's state and the agents' state (as `k8s.arcAgents` reads it)
    /// and names what is not ready; `why_agents` explains the agent Deployments not available.
    /// The `apply` a problem suggests carries the file and target of `run`.
    pub fn new(
        cluster: &str,
        connected: Option<Value>,
        agents: Option<&Value>,
        why_agents: Vec<String>,
        run: &Invocation,
    ) -> Self {
        let apply = run.command("apply", &[]);
        let mut problems = Vec::new();
        let status = connected
            .as_ref()
            .and_then(|v| v.get("connectivityStatus"))
            .and_then(Value::as_str)
            .unwrap_or("NotOnboarded")
            .to_owned();
        match &connected {
            None => problems.push(format!(
                "Azure has no connected cluster resource for it: run `{apply}`"
            )),
            Some(cc) if status != "Connected" => {
                let seen = cc
                    .get("lastConnectivityTime")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map_or("the agents never reported".to_owned(), |t| {
                        format!("last agent heartbeat {t}")
                    });
                problems.push(format!("Azure reports connectivity {status} ({seen})"));
            }
            Some(_) => {}
        }
        let installed =
            agents.is_some_and(|a| a.get("installed").and_then(Value::as_bool) != Some(false));
        let agents_status = agents.filter(|_| installed).map(|a| {
            let n = |p: &str| a.pointer(p).and_then(Value::as_u64).unwrap_or(0);
            AgentsStatus {
                total: n("/agents/total"),
                available: n("/agents/available"),
                installer: a
                    .get("installer")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }
        });
        match &agents_status {
            None => problems.push(format!("the Arc agents are not installed: run `{apply}`")),
            Some(a) if a.total == 0 => {
                problems.push("no agent Deployment found in namespace azure-arc".into())
            }
            Some(a) if a.available < a.total => {
                if why_agents.is_empty() {
                    problems.push(format!(
                        "{}/{} agent Deployments available",
                        a.available, a.total
                    ));
                }
                problems.extend(why_agents);
            }
            Some(_) => {}
        }
        ClusterStatus {
            cluster: cluster.to_owned(),
            connectivity_status: status,
            connected_cluster: connected,
            agents: agents_status,
            problems,
        }
    }

    /// True when nothing is wrong.
    pub fn ready(&self) -> bool {
        self.problems.is_empty()
    }

    fn cc(&self, key: &str) -> String {
        match self.connected_cluster.as_ref().and_then(|c| c.get(key)) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => "-".into(),
        }
    }

    fn agents_text(&self) -> String {
        self.agents
            .as_ref()
            .map_or("-".into(), |a| format!("{}/{}", a.available, a.total))
    }
}

/// `10/12 clusters ready; 2 not ready: a, b` (or `1/1 cluster ready`).
pub fn summary(clusters: &[ClusterStatus]) -> String {
    let ready = clusters.iter().filter(|c| c.ready()).count();
    let not: Vec<&str> = clusters
        .iter()
        .filter(|c| !c.ready())
        .map(|c| c.cluster.as_str())
        .collect();
    let noun = if clusters.len() == 1 {
        "cluster"
    } else {
        "clusters"
    };
    if not.is_empty() {
        format!("{ready}/{} {noun} ready.", clusters.len())
    } else {
        format!(
            "{ready}/{} {noun} ready; {} not ready: {}.",
            clusters.len(),
            not.len(),
            not.join(", ")
        )
    }
}

/// The status for a terminal. No ANSI escapes unless `color`.
pub fn human(clusters: &[ClusterStatus], color: bool) -> String {
    let mut out = String::new();
    let verdict = |c: &ClusterStatus| {
        if c.ready() {
            paint(CREATE, "ready", color)
        } else {
            paint(DELETE, "not ready", color)
        }
    };
    if clusters.len() == 1 {
        let c = &clusters[0];
        out.push_str(&format!(
            "{}: {}\n",
            paint(BOLD, &c.cluster, color),
            verdict(c)
        ));
        if c.connected_cluster.is_some() {
            out.push_str(&format!(
                "  Azure:  {} · agent {} · Kubernetes {} · {} nodes · {} cores · last heartbeat {}\n  id:     {}\n",
                c.connectivity_status,
                c.cc("agentVersion"),
                c.cc("kubernetesVersion"),
                c.cc("totalNodeCount"),
                c.cc("totalCoreCount"),
                c.cc("lastConnectivityTime"),
                c.cc("id"),
            ));
        } else {
            out.push_str("  Azure:  not onboarded (no connected cluster resource)\n");
        }
        match &c.agents {
            Some(a) => out.push_str(&format!(
                "  Agents: {}/{} deployments available in azure-arc\n",
                a.available, a.total
            )),
            None => out.push_str("  Agents: not installed\n"),
        }
        problems(&mut out, c);
    } else {
        let rows: Vec<[String; 5]> = clusters
            .iter()
            .map(|c| {
                let problem = match c.problems.as_slice() {
                    [] => "-".to_owned(),
                    [one] => one.clone(),
                    [first, rest @ ..] => format!("{first} (+{} more)", rest.len()),
                };
                [
                    c.cluster.clone(),
                    c.connectivity_status.clone(),
                    c.agents_text(),
                    c.cc("agentVersion"),
                    problem,
                ]
            })
            .collect();
        let head = ["CLUSTER", "CONNECTIVITY", "AGENTS", "VERSION", "PROBLEM"];
        let width = |i: usize| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        };
        let w: Vec<usize> = (0..4).map(width).collect();
        let line = |r: [&str; 5]| {
            format!(
                "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}\n",
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                w0 = w[0],
                w1 = w[1],
                w2 = w[2],
                w3 = w[3]
            )
        };
        out.push_str(&paint(BOLD, line(head).trim_end(), color));
        out.push('\n');
        for r in &rows {
            out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
        }
        for c in clusters.iter().filter(|c| !c.ready()) {
            out.push_str(&format!(
                "\n{}: {}\n",
                paint(BOLD, &c.cluster, color),
                verdict(c)
            ));
            problems(&mut out, c);
        }
    }
    out.push('\n');
    out.push_str(&summary(clusters));
    out.push('\n');
    out
}

fn problems(out: &mut String, c: &ClusterStatus) {
    if c.problems.is_empty() {
        return;
    }
    out.push_str("  Not ready because:\n");
    for p in &c.problems {
        out.push_str(&format!("    - {p}\n"));
    }
}

/// The status as JSON: `ready`, the summary, and one object per cluster.
pub fn json(clusters: &[ClusterStatus]) -> Value {
    let ready = clusters.iter().filter(|c| c.ready()).count();
    json!({
        "format_version": "1.0",
        "ready": ready == clusters.len(),
        "summary": {
            "clusters": clusters.len(),
            "ready": ready,
            "not_ready": clusters.iter().filter(|c| !c.ready()).map(|c| c.cluster.clone()).collect::<Vec<_>>(),
            "message": summary(clusters),
        },
        "clusters": clusters.iter().map(|c| {
            let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
            v["ready"] = c.ready().into();
            v
        }).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected(status: &str) -> Value {
        json!({"connectivityStatus": status, "agentVersion": "1.21.10", "kubernetesVersion": "1.30.6",
            "totalNodeCount": 3, "totalCoreCount": 12, "lastConnectivityTime": "2026-12-01T10:00:00Z", "id": "/subscriptions/s/x"})
    }

    fn agents(available: u64) -> Value {
        json!({"installed": true, "installer": "manifests", "agents": {"total": 9, "available": available}})
    }

    #[test]
    fn a_ready_cluster_and_a_fleet() {
        let ok = ClusterStatus::new(
            "a",
            Some(connected("Connected")),
            Some(&agents(9)),
            vec![],
            &Invocation::default(),
        );
        assert!(ok.ready());
        let text = human(std::slice::from_ref(&ok), false);
        assert!(text.starts_with("a: ready\n"), "{text}");
        assert!(text.ends_with("\n1/1 cluster ready.\n"), "{text}");
        let bad = ClusterStatus::new(
            "b",
            Some(connected("Connecting")),
            Some(&agents(8)),
            vec!["Deployment azure-arc/kube-aad-proxy: missing".into()],
            &Invocation::default(),
        );
        let run = Invocation::new(
            std::path::Path::new("fleet.yaml"),
            &crate::cli::TargetArgs {
                sandbox_dir: Some("sb".into()),
                ..Default::default()
            },
        );
        let none = ClusterStatus::new("c", None, None, vec![], &run);
        assert!(
            none.problems
                .iter()
                .all(|p| p.ends_with("run `arcplan apply -f fleet.yaml --sandbox-dir sb`")),
            "{:?}",
            none.problems
        );
        assert_eq!(none.connectivity_status, "NotOnboarded");
        let fleet = [ok, bad, none];
        let text = human(&fleet, false);
        assert!(!text.contains('\x1b'));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("CLUSTER"), "{text}");
        assert!(
            lines[1].starts_with("a ")
                && lines[1].contains("Connected")
                && lines[1].contains("9/9"),
            "{text}"
        );
        assert!(
            lines[2].contains("Connecting")
                && lines[2].contains("8/9")
                && lines[2].contains("(+1 more)"),
            "{text}"
        );
        assert!(
            text.contains("    - Deployment azure-arc/kube-aad-proxy: missing\n"),
            "{text}"
        );
        assert!(
            text.contains("last agent heartbeat 2026-12-01T10:00:00Z"),
            "{text}"
        );
        assert!(text.contains("the Arc agents are not installed"), "{text}");
        assert!(
            text.ends_with("1/3 clusters ready; 2 not ready: b, c.\n"),
            "{text}"
        );
        let v = json(&fleet);
        assert_eq!(v["ready"], false);
        assert_eq!(v["summary"]["not_ready"], json!(["b", "c"]));
        assert_eq!(
            v["clusters"][1]["problems"][1],
            "Deployment azure-arc/kube-aad-proxy: missing"
        );
        assert_eq!(v["clusters"][0]["ready"], true);
    }
}
