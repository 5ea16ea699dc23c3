//! `arcplan apply` and `arcplan destroy`.

use super::context::{self, Run};
use super::plan::{Selection, header, make_plan, options};
use super::{Error, Outcome, lock};
use crate::cli::{ApplyArgs, DestroyArgs};
use crate::planfile::PlanFile;
use crate::views::{self, Output, PlanContext, Stage, View};
use arcplan_engine::address::ResourceType;
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use arcplan_engine::executor::{ApplyOptions, apply, stale_resources};
use arcplan_engine::plan::{Action, Plan, PlanMode};
use arcplan_engine::provider::*;
use async_trait::async_trait;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub fn run_apply(args: &ApplyArgs, out: &View) -> Result<Outcome, Error> {
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
        // The plan starts generating the onboarding keys that this apply will need.
        run.kube.keys().set_prefetch(true);
        header(out, &run);
        let mut opts = options(&run, PlanMode::Normal, args.run.parallelism, cancel.clone());
        selection.apply_to(&mut opts);
        let outcome = plan_and_apply(
            &run,
            &opts,
            args.auto_approve,
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

pub fn run_destroy(args: &DestroyArgs, out: &View) -> Result<Outcome, Error> {
    super::runtime()?.block_on(async {
        let cancel = super::cancel_on_ctrl_c();
        let Ok(mut run) = context::prepare(out, &args.file, &args.target_args).await else {
            return Ok(Outcome::Failed);
        };
        header(out, &run);
        if args.cluster_unreachable {
            run.providers.register(Arc::new(Unreachable {
                kube: run.kube.clone(),
            }));
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
    lock_timeout: std::time::Duration,
    parallelism: u16,
    out: &View,
    cancel: CancellationToken,
    lock: bool,
) -> Outcome {
    let destroy = opts.mode == PlanMode::Destroy;
    // Only the clusters this plan reads or changes (after --target/--exclude).
    let clusters = if lock {
        lock::touched_clusters(&run.graph, opts)
    } else {
        Vec::new()
    };
    let Some(locks) =
        lock::lock_clusters(run, clusters.iter(), lock_timeout, out, &cancel, destroy).await
    else {
        return Outcome::Failed;
    };
    let outcome = 'run: {
        let Ok(plan) = make_plan(out, run, opts).await else {
            break 'run Outcome::Failed;
        };
        out.plan(&plan, &PlanContext::run(&run.invocation));
        if plan.has_failed_checks() {
            break 'run Outcome::Failed;
        }
        // Apply-time checks run on every apply, also one that changes nothing (approval is
        // asked only for changes).
        if !plan.has_changes() && !plan.has_pending_checks() {
            break 'run Outcome::Ok;
        }
        if plan.has_changes() && !approve(out, auto_approve, destroy, &cancel).await {
            break 'run Outcome::Failed;
        }
        execute(run, &plan, &locks, parallelism, out, cancel).await
    };
    locks.release(out).await;
    outcome
}

/// Asks for `yes` on a terminal; refuses without `--auto-approve` otherwise. A signal (Ctrl-C,
/// SIGTERM) at the prompt cancels: nothing is changed.
async fn approve(
    out: &Output,
    auto_approve: bool,
    destroy: bool,
    cancel: &CancellationToken,
) -> bool {
    if auto_approve {
        return true;
    }
    if !std::io::stdin().is_terminal() {
        out.error("refusing to apply without --auto-approve: standard input is not a terminal, so nobody can confirm the plan");
        return false;
    }
    print!(
        "\n{}\n\n  Enter a value: ",
        views::report::approval_prompt(destroy)
    );
    let _ = std::io::stdout().flush();
    // A plain thread, not the runtime's blocking pool: the read cannot be interrupted, and the
    // runtime must not wait for it when the run ends.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = tokio::select! {
        line = rx => line.unwrap_or_default(),
        () = cancel.cancelled() => {
            println!();
            out.error("Apply cancelled (interrupted at the prompt): nothing was changed.");
            return false;
        }
    };
    if line.trim() == "yes" {
        true
    } else {
        let what = if destroy { "Destroy" } else { "Apply" };
        out.error(&format!("{what} cancelled: nothing was changed."));
        false
    }
}

async fn apply_saved(
    args: &ApplyArgs,
    path: &std::path::Path,
    out: &View,
    cancel: CancellationToken,
) -> Result<Outcome, Error> {
    let file = match PlanFile::read(path) {
        Ok(f) => f,
        Err(e) => {
            out.error(&e);
            return Ok(Outcome::Failed);
        }
    };
    let target = file.target();
    let Ok(run) = context::prepare(out, &file.config_file, &target).await else {
        return Ok(Outcome::Failed);
    };
    header(out, &run);
    // The command that makes this plan again, with the file and target it was made with.
    let replan = file.replan_line(path);
    let outcome = 'run: {
        if run.loaded.digest != file.plan.config_digest {
            out.error(&format!(
                "{} changed since the plan was made; the saved plan no longer describes it. Run `{replan}` again.",
                file.config_file.display(),
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
        let clusters = lock::cluster_attrs(
            file.plan
                .changes
                .iter()
                .map(|c| (&c.address, c.desired.as_ref())),
        );
        let Some(locks) = lock::lock_clusters(
            &run,
            clusters.iter(),
            args.run.lock_timeout,
            out,
            &cancel,
            false,
        )
        .await
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
                    "the saved plan is stale: {} resource(s) changed since it was made, so it no longer shows what apply would do. Nothing was changed. Run `{replan}` again and review it.",
                    stale.len(),
                ));
                false
            }
            Err(e) => {
                out.error(&e.to_string());
                false
            }
        };
        let outcome = if fresh {
            execute(&run, &file.plan, &locks, args.run.parallelism, out, cancel).await
        } else {
            Outcome::Failed
        };
        locks.release(out).await;
        outcome
    };
    run.finish().await;
    Ok(outcome)
}

/// Applies and reports. The caller holds the cluster locks; every change is preceded by proof
/// that they are still held, and a lost lock stops the run (what was done is reported).
async fn execute(
    run: &Run,
    plan: &Plan,
    locks: &lock::Locks,
    parallelism: u16,
    out: &View,
    cancel: CancellationToken,
) -> Outcome {
    // A child token: a lost lock stops this apply without pretending a signal came.
    let cancel = cancel.child_token();
    let (providers, lost) = lock::fenced(&run.providers, locks.fences(), &cancel);
    let totals = views::live::Totals::apply(plan);
    let (sink, printer) = out.events(Stage::Apply, totals);
    let result = apply(
        plan,
        &providers,
        &ApplyOptions {
            parallelism: parallelism as usize,
            cancel: cancel.clone(),
        },
        sink,
    )
    .await;
    // Ends the lost-lock watchers.
    cancel.cancel();
    let checks = printer.finish().await;
    match result {
        Err(e) => {
            out.error(&e.to_string());
            Outcome::Failed
        }
        Ok(report) => {
            out.report(&report, plan, &checks);
            let lost = lost
                .get()
                .or_else(|| locks.fences().iter().find_map(|f| f.lost()));
            if let Some(d) = lost {
                out.error(&format!(
                    "{}. The report above shows what this run changed before it stopped; run plan again and review it before applying.",
                    d.message
                ));
                return Outcome::Failed;
            }
            if report.is_success() {
                Outcome::Ok
            } else {
                Outcome::Failed
            }
        }
    }
}

/// `destroy --cluster-unreachable`: the cluster side is not read nor changed; every object it
/// leaves in the cluster (the agents' set, the onboarding key's Secret) is reported as
/// orphaned, with how to remove them later. The set is computed from the configuration, without
/// contacting the cluster.
struct Unreachable {
    kube: Arc<arcplan_providers::kubernetes::KubernetesProvider>,
}

impl Unreachable {
    /// The objects the agents leave, as `Kind namespace/name`.
    async fn agent_objects(&self, desired: &serde_json::Value) -> Vec<String> {
        use arcplan_providers::kubernetes::{AGENTS, NAMESPACE, RELEASE_NAME, RELEASE_NAMESPACE};
        if desired.get("installer").and_then(|v| v.as_str()) == Some("helm") {
            let mut v = vec![format!("Helm release {RELEASE_NAMESPACE}/{RELEASE_NAME}")];
            v.extend(AGENTS.iter().map(|a| format!("Deployment {NAMESPACE}/{a}")));
            return v;
        }
        match arcplan_providers::kubernetes::agents::desired_set(&self.kube, desired).await {
            Ok(objs) => objs
                .iter()
                .map(arcplan_providers::kubernetes::manifests::short_id)
                .collect(),
            Err(_) => vec![format!("the Arc agents in namespace {NAMESPACE}")],
        }
    }
}

#[async_trait]
impl Provider for Unreachable {
    fn resource_types(&self) -> Vec<ResourceType> {
        vec![
            arcplan_providers::kinds::ONBOARDING_KEY,
            arcplan_providers::kinds::ARC_AGENTS,
        ]
    }
    async fn read(&self, req: ReadRequest) -> ReadResponse {
        use arcplan_providers::kubernetes::{KEY_SECRET, NAMESPACE};
        let mut r = ReadResponse::default();
        let hint = "when the cluster is reachable again, remove them with `kubectl delete namespace azure-arc azure-arc-release`";
        if req.address.rtype == arcplan_providers::kinds::ARC_AGENTS {
            let objects = self.agent_objects(&req.desired).await;
            r.diagnostics.push(
                Diagnostic::warning(
                    "orphaned-agents",
                    format!(
                        "cluster {} is not contacted (--cluster-unreachable): its Arc agents stay in the cluster, orphaned ({} objects: {})",
                        req.address.name,
                        objects.len(),
                        objects.join(", ")
                    ),
                )
                .with_address(req.address.to_string())
                .with_hint(hint),
            );
        } else if req.address.rtype == arcplan_providers::kinds::ONBOARDING_KEY {
            let attr = |k: &str, default: &str| {
                req.desired
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or(default)
                    .to_owned()
            };
            r.diagnostics.push(
                Diagnostic::warning(
                    "orphaned-key",
                    format!(
                        "cluster {} is not contacted (--cluster-unreachable): the onboarding private key stays in the cluster, orphaned (Secret {}/{})",
                        req.address.name,
                        attr("namespace", NAMESPACE),
                        attr("secretName", KEY_SECRET)
                    ),
                )
                .with_address(req.address.to_string())
                .with_hint(hint),
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
