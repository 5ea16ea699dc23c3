//! `arcplan apply` and `arcplan destroy`.

use super::context::{self, Run};
use super::plan::{Selection, header, make_plan, options};
use super::{Error, Outcome, events};
use crate::cli::{ApplyArgs, DestroyArgs, TargetArgs};
use crate::planfile::PlanFile;
use crate::views::{self, Output};
use arcplan_engine::address::ResourceType;
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use arcplan_engine::executor::{ApplyOptions, apply, stale_resources};
use arcplan_engine::plan::{Action, Plan, PlanMode};
use arcplan_engine::provider::*;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub fn run_apply(args: &ApplyArgs, out: &Output) -> Result<Outcome, Error> {
    super::runtime()?.block_on(async {
        let cancel = super::cancel_on_ctrl_c();
        if let Some(path) = &args.plan_file {
            return apply_saved(args, path, out, cancel).await;
        }
        let Ok(selection) = Selection::parse(out, &args.select) else {
            return Ok(Outcome::Failed);
        };
        let file = args.file.clone().unwrap_or_else(|| "arcplan.yaml".into());
        let Ok(run) = context::prepare(out, &file, &args.target_args).await else {
            return Ok(Outcome::Failed);
        };
        header(out, &run, args.run.json);
        let mut opts = options(&run, PlanMode::Normal, args.run.parallelism, cancel.clone());
        selection.apply_to(&mut opts);
        let outcome = plan_and_apply(
            &run,
            &opts,
            args.auto_approve,
            args.run.json,
            args.run.lock_timeout,
            args.run.parallelism,
            out,
            cancel,
            true,
        )
        .await;
        run.finish().await;
        Ok(outcome)
    })
}

pub fn run_destroy(args: &DestroyArgs, out: &Output) -> Result<Outcome, Error> {
    super::runtime()?.block_on(async {
        let cancel = super::cancel_on_ctrl_c();
        let Ok(mut run) = context::prepare(out, &args.file, &args.target_args).await else {
            return Ok(Outcome::Failed);
        };
        header(out, &run, args.run.json);
        if args.cluster_unreachable {
            run.providers.register(Arc::new(Unreachable));
        }
        let opts = options(
            &run,
            PlanMode::Destroy,
            args.run.parallelism,
            cancel.clone(),
        );
        let outcome = plan_and_apply(
            &run,
            &opts,
            args.auto_approve,
            args.run.json,
            args.run.lock_timeout,
            args.run.parallelism,
            out,
            cancel,
            // An unreachable cluster cannot be locked; its side is not touched anyway.
            !args.cluster_unreachable,
        )
        .await;
        run.finish().await;
        Ok(outcome)
    })
}

#[allow(clippy::too_many_arguments)]
async fn plan_and_apply(
    run: &Run,
    opts: &arcplan_engine::planner::PlanOptions,
    auto_approve: bool,
    json: bool,
    lock_timeout: std::time::Duration,
    parallelism: u16,
    out: &Output,
    cancel: CancellationToken,
    lock: bool,
) -> Outcome {
    let clusters = if lock {
        cluster_attrs(run.graph.nodes().map(|n| (&n.address, Some(&n.desired))))
    } else {
        Vec::new()
    };
    let Some(locks) = lock_clusters(run, clusters.iter(), lock_timeout, out, &cancel).await else {
        return Outcome::Failed;
    };
    let outcome = 'run: {
        let Ok(plan) = make_plan(out, run, opts, json).await else {
            break 'run Outcome::Failed;
        };
        if !json {
            out.stdout(&views::plan::human(&plan, out.color_stdout()));
        }
        if plan.has_failed_checks() {
            break 'run Outcome::Failed;
        }
        if !plan.has_changes() {
            break 'run Outcome::Ok;
        }
        if !approve(out, auto_approve, opts.mode == PlanMode::Destroy) {
            break 'run Outcome::Failed;
        }
        execute(run, &plan, json, parallelism, out, cancel).await
    };
    release(locks).await;
    outcome
}

/// One apply at a time per cluster: takes each cluster's Lease (waiting up to `lock_timeout`)
/// before anything is read for planning, so no other apply can change the cluster between this
/// run's plan and its apply. The guards renew the leases until they are released.
async fn lock_clusters<'a>(
    run: &Run,
    clusters: impl Iterator<Item = &'a serde_json::Value>,
    lock_timeout: std::time::Duration,
    out: &Output,
    cancel: &CancellationToken,
) -> Option<Vec<arcplan_providers::kubernetes::lock::LockGuard>> {
    let mut unique: BTreeMap<String, &serde_json::Value> = BTreeMap::new();
    for c in clusters {
        unique.entry(c.to_string()).or_insert(c);
    }
    let holder = format!(
        "{}@{} (arcplan {}, pid {}, run {})",
        std::env::var("USER").unwrap_or_else(|_| "arcplan".into()),
        std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        uuid::Uuid::new_v4()
    );
    let mut locks = Vec::new();
    for cluster in unique.values() {
        match run
            .kube
            .acquire_lock(cluster, &holder, lock_timeout, cancel)
            .await
        {
            Ok(guard) => locks.push(guard),
            Err(d) => {
                context::report(out, d);
                out.error("nothing was changed: another apply holds the cluster's lock; wait for it, or pass --lock-timeout to wait longer");
                for g in locks {
                    let _ = g.release().await;
                }
                return None;
            }
        }
    }
    Some(locks)
}

async fn release(locks: Vec<arcplan_providers::kubernetes::lock::LockGuard>) {
    for g in locks {
        let _ = g.release().await;
    }
}

/// The `cluster` attributes of the cluster-side resources among `(address, desired)` pairs.
fn cluster_attrs<'a>(
    items: impl Iterator<
        Item = (
            &'a arcplan_engine::address::Address,
            Option<&'a serde_json::Value>,
        ),
    >,
) -> Vec<serde_json::Value> {
    items
        .filter(|(a, _)| {
            a.rtype == ResourceType::ONBOARDING_KEY || a.rtype == ResourceType::ARC_AGENTS
        })
        .filter_map(|(_, d)| d?.get("cluster").cloned())
        .collect()
}

/// Asks for `yes` on a terminal; refuses without `--auto-approve` otherwise.
fn approve(out: &Output, auto_approve: bool, destroy: bool) -> bool {
    if auto_approve {
        return true;
    }
    if !std::io::stdin().is_terminal() {
        out.error("refusing to apply without --auto-approve: standard input is not a terminal, so nobody can confirm the plan");
        return false;
    }
    let verb = if destroy { "destroy" } else { "perform" };
    print!(
        "\nDo you want to {verb} these actions?\n  arcplan will {verb} the actions described above.\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: "
    );
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if line.trim() == "yes" {
        true
    } else {
        out.error("Apply cancelled: nothing was changed.");
        false
    }
}

async fn apply_saved(
    args: &ApplyArgs,
    path: &std::path::Path,
    out: &Output,
    cancel: CancellationToken,
) -> Result<Outcome, Error> {
    let file = match PlanFile::read(path) {
        Ok(f) => f,
        Err(e) => {
            out.error(&e);
            return Ok(Outcome::Failed);
        }
    };
    let target = TargetArgs {
        sandbox: false,
        sandbox_dir: file.sandbox_dir.clone(),
    };
    let Ok(run) = context::prepare(out, &file.config_file, &target).await else {
        return Ok(Outcome::Failed);
    };
    header(out, &run, args.run.json);
    let outcome = 'run: {
        if run.loaded.digest != file.plan.config_digest {
            out.error(&format!(
                "{} changed since the plan was made; the saved plan no longer describes it. Run `arcplan plan --out {}` again.",
                file.config_file.display(),
                path.display()
            ));
            break 'run Outcome::Failed;
        }
        if file.plan.has_failed_checks() {
            out.error(
                "the saved plan has failed checks and cannot be applied; fix them and plan again",
            );
            break 'run Outcome::Failed;
        }
        // Lock first, so nothing changes between the freshness check and the apply.
        let clusters = cluster_attrs(
            file.plan
                .changes
                .iter()
                .map(|c| (&c.address, c.desired.as_ref())),
        );
        let Some(locks) =
            lock_clusters(&run, clusters.iter(), args.run.lock_timeout, out, &cancel).await
        else {
            break 'run Outcome::Failed;
        };
        let fresh = match stale_resources(&file.plan, &run.providers).await {
            Ok(stale) if stale.is_empty() => true,
            Ok(stale) => {
                let mut d = Diagnostics::new();
                for s in &stale {
                    d.push(
                        Diagnostic::error("stale-plan", format!("{}: {}", s.address, s.what))
                            .with_address(s.address.to_string()),
                    );
                }
                context::report(out, d);
                out.error(&format!(
                    "the saved plan is stale: {} resource(s) changed since it was made, so it no longer shows what apply would do. Nothing was changed. Run `arcplan plan --out {}` again and review it.",
                    stale.len(),
                    path.display()
                ));
                false
            }
            Err(e) => {
                out.error(&e.to_string());
                false
            }
        };
        let outcome = if fresh {
            execute(
                &run,
                &file.plan,
                args.run.json,
                args.run.parallelism,
                out,
                cancel,
            )
            .await
        } else {
            Outcome::Failed
        };
        release(locks).await;
        outcome
    };
    run.finish().await;
    Ok(outcome)
}

/// Applies (the caller holds the cluster locks) and reports.
async fn execute(
    run: &Run,
    plan: &Plan,
    json: bool,
    parallelism: u16,
    out: &Output,
    cancel: CancellationToken,
) -> Outcome {
    if json {
        out.stdout(&views::progress::version_message(
            time::OffsetDateTime::now_utc(),
        ));
    }
    let (sink, printer) = events::printer(out, json, json, false);
    let result = apply(
        plan,
        &run.providers,
        &ApplyOptions {
            parallelism: parallelism as usize,
            cancel,
        },
        sink,
    )
    .await;
    let checks = printer.finish().await;
    match result {
        Err(e) => {
            out.error(&e.to_string());
            Outcome::Failed
        }
        Ok(report) => {
            if json {
                out.stdout(&views::progress::change_summary(
                    report.counts(),
                    "apply",
                    time::OffsetDateTime::now_utc(),
                ));
            } else {
                out.stdout(&views::report::human(
                    &report,
                    plan,
                    out.color_stdout(),
                    &checks,
                ));
            }
            if report.is_success() {
                Outcome::Ok
            } else {
                Outcome::Failed
            }
        }
    }
}

/// `destroy --cluster-unreachable`: the cluster side is not read nor changed; its agents are
/// reported as orphaned, with how to remove them later.
struct Unreachable;

#[async_trait]
impl Provider for Unreachable {
    fn resource_types(&self) -> Vec<ResourceType> {
        vec![ResourceType::ONBOARDING_KEY, ResourceType::ARC_AGENTS]
    }
    async fn read(&self, req: ReadRequest) -> ReadResponse {
        let mut r = ReadResponse::default();
        if req.address.rtype == ResourceType::ARC_AGENTS {
            r.diagnostics.push(
                Diagnostic::warning(
                    "orphaned-agents",
                    format!("cluster {} is not contacted (--cluster-unreachable): its Arc agents and onboarding key stay in namespaces azure-arc and azure-arc-release, orphaned", req.address.name),
                )
                .with_address(req.address.to_string())
                .with_hint("when the cluster is reachable again, remove them with `kubectl delete namespace azure-arc azure-arc-release`"),
            );
        }
        r
    }
    async fn plan(&self, _: PlanRequest) -> PlanResponse {
        PlanResponse {
            action: Some(Action::NoOp),
            ..Default::default()
        }
    }
    async fn apply(&self, _: ApplyRequest) -> ApplyResponse {
        ApplyResponse::default()
    }
    async fn check(&self, req: CheckRequest) -> CheckResponse {
        CheckResponse {
            result: arcplan_engine::plan::CheckResult {
                address: req.address,
                status: arcplan_engine::plan::CheckStatus::Pass,
                summary: "not evaluated".into(),
                fix: None,
                details: None,
                depends_on: Vec::new(),
                desired: None,
            },
            diagnostics: Diagnostics::new(),
        }
    }
}
