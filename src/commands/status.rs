//! `arcplan status`: what Azure and the agents report for each cluster (the run-book's
//! "verify the connected cluster"), read without changing anything. Exits 1 when any cluster
//! is not ready (not Connected, agents not installed or not available), naming what and why.

use super::context;
use super::plan::{make_plan, options};
use super::{Error, Outcome};
use crate::cli::StatusArgs;
use crate::views::View;
use crate::views::status::ClusterStatus;
use arcplan_engine::address::Address;
use arcplan_engine::plan::{Change, PlanMode};
use arcplan_providers::kubernetes::readiness;
use serde_json::Value;

pub fn run(args: &StatusArgs, out: &View) -> Result<Outcome, Error> {
    super::runtime()?.block_on(async {
        let Ok(run) = context::prepare(out, &args.file, &args.target_args).await else {
            return Ok(Outcome::Failed);
        };
        let cancel = super::cancel_on_ctrl_c();
        let run_args = crate::cli::RunArgs {
            parallelism: 10,
            lock_timeout: std::time::Duration::ZERO,
            json: args.json,
            shard: args.shard,
        };
        let opts = options(&run, PlanMode::RefreshOnly, &run_args, cancel);
        let Ok(plan) = make_plan(out, &run, &opts).await else {
            run.finish().await;
            return Ok(Outcome::Failed);
        };
        let mut clusters = Vec::new();
        for c in &run.loaded.config.clusters {
            let address = Address::new(arcplan_providers::kinds::CONNECTED_CLUSTER, c.name.clone());
            if opts.shard.as_ref().is_some_and(|s| !s.owns(&address)) {
                continue;
            }
            let cc = plan.change(&address).and_then(Change::before_value);
            let agents_change = plan.change(&Address::new(
                arcplan_providers::kinds::ARC_AGENTS,
                c.name.clone(),
            ));
            let agents = agents_change.and_then(Change::before_value);
            let why = match (&agents, agents_change.and_then(|ch| ch.desired.as_ref())) {
                (Some(a), Some(desired)) => why_not_ready(&run, a, desired).await,
                _ => Vec::new(),
            };
            clusters.push(ClusterStatus::new(
                &c.name,
                cc,
                agents.as_ref(),
                why,
                &run.invocation,
            ));
        }
        out.status(&clusters);
        run.finish().await;
        Ok(if clusters.iter().all(ClusterStatus::ready) {
            Outcome::Ok
        } else {
            Outcome::Failed
        })
    })
}

/// For the agent Deployments the read found not available: what their conditions, replicas and
/// recent events say (read again now, from the cluster).
async fn why_not_ready(run: &context::Run, agents: &Value, desired: &Value) -> Vec<String> {
    let not_ready: Vec<String> = agents
        .pointer("/agents/notReady")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if not_ready.is_empty() {
        return Vec::new();
    }
    let cluster = match run.kube.cluster(&desired["cluster"]).await {
        Ok(c) => c,
        Err(d) => return vec![d.message],
    };
    match readiness::observe(&cluster, Some(&not_ready)).await {
        Ok((r, deployments)) => readiness::explain(&cluster, &r.not_ready, &deployments).await,
        Err(d) => vec![d.message],
    }
}
