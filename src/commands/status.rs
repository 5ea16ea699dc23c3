//! `arcplan status`: what Azure and the agents report for each cluster (the run-book's
//! "verify the connected cluster"), read without changing anything.

use super::context;
use super::plan::{make_plan, options};
use super::{Error, Outcome};
use crate::cli::StatusArgs;
use crate::views::Output;
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::plan::PlanMode;
use serde_json::{Value, json};

pub fn run(args: &StatusArgs, out: &Output) -> Result<Outcome, Error> {
    super::runtime()?.block_on(async {
        let Ok(run) = context::prepare(out, &args.file, &args.target_args).await else {
            return Ok(Outcome::Failed);
        };
        let cancel = super::cancel_on_ctrl_c();
        let opts = options(&run, PlanMode::RefreshOnly, 10, cancel);
        let Ok(plan) = make_plan(out, &run, &opts, true).await else {
            run.finish().await;
            return Ok(Outcome::Failed);
        };
        let mut rows = Vec::new();
        let mut all_connected = true;
        for c in &run.loaded.config.clusters {
            let cc = plan.change(&Address::new(ResourceType::CONNECTED_CLUSTER, c.name.clone())).and_then(|ch| ch.before.clone());
            let agents = plan.change(&Address::new(ResourceType::ARC_AGENTS, c.name.clone())).and_then(|ch| ch.before.clone());
            let status = cc.as_ref().and_then(|v| v.get("connectivityStatus")).and_then(Value::as_str).unwrap_or("NotOnboarded").to_owned();
            all_connected &= status == "Connected";
            rows.push(json!({"cluster": c.name, "connectedCluster": cc, "agents": agents, "connectivityStatus": status}));
        }
        if args.json {
            out.stdout(&serde_json::to_string_pretty(&json!({"format_version": "1.0", "clusters": rows})).unwrap_or_default());
        } else {
            for r in &rows {
                out.stdout(&human_row(r));
            }
        }
        run.finish().await;
        Ok(if all_connected { Outcome::Ok } else { Outcome::Failed })
    })
}

fn human_row(r: &Value) -> String {
    let get = |p: &str| {
        r.pointer(p)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                Value::Null => "-".into(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| "-".into())
    };
    let mut s = format!("{}\n", get("/cluster"));
    if r.get("connectedCluster").is_some_and(|v| !v.is_null()) {
        s.push_str(&format!(
            "  Azure:  {} · agent {} · Kubernetes {} · {} nodes · {} cores · last seen {}\n  id:     {}\n",
            get("/connectivityStatus"),
            get("/connectedCluster/agentVersion"),
            get("/connectedCluster/kubernetesVersion"),
            get("/connectedCluster/totalNodeCount"),
            get("/connectedCluster/totalCoreCount"),
            get("/connectedCluster/lastConnectivityTime"),
            get("/connectedCluster/id"),
        ));
    } else {
        s.push_str("  Azure:  not connected (no connected cluster resource)\n");
    }
    match r.get("agents").filter(|v| !v.is_null()) {
        Some(a) => s.push_str(&format!("  Agents: {}\n", summarize_agents(a))),
        None => s.push_str("  Agents: not installed\n"),
    }
    s
}

fn summarize_agents(a: &Value) -> String {
    let ready = a.get("ready").and_then(Value::as_bool);
    let deployments = a.get("deployments").and_then(Value::as_object);
    match (deployments, ready) {
        (Some(d), _) => {
            let available = d
                .values()
                .filter(|v| v.get("available").and_then(Value::as_bool).unwrap_or(false))
                .count();
            format!("{available}/{} deployments available in azure-arc", d.len())
        }
        (None, Some(true)) => "ready".into(),
        (None, Some(false)) => "not ready".into(),
        (None, None) => "installed".into(),
    }
}
