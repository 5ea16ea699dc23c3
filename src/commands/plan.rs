//! `arcplan plan`.

use super::context::{self, Reported, Run};
use super::{Error, Outcome};
use crate::cli::{PlanArgs, SelectArgs};
use crate::planfile::PlanFile;
use crate::views::{self, Output, PlanContext, Stage, View};
use arcplan_engine::address::Address;
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use arcplan_engine::plan::{Plan, PlanMode};
use arcplan_engine::planner::{PlanOptions, plan};
use arcplan_engine::shard::Shard;
use tokio_util::sync::CancellationToken;

/// Parses `--target`/`--exclude`/`--replace` values.
pub fn addresses(out: &Output, flag: &str, values: &[String]) -> Result<Vec<Address>, Reported> {
    let mut diags = Diagnostics::new();
    let mut v = Vec::new();
    for s in values {
        match s.parse::<Address>() {
            Ok(a) => v.push(a),
            Err(e) => diags.push(Diagnostic::error(
                "invalid-address",
                format!("--{flag}: {e}"),
            )),
        }
    }
    if diags.has_errors() {
        return Err(context::report(out, diags));
    }
    Ok(v)
}

/// The parsed `--target`, `--exclude` and `--replace` values (every bad one reported).
pub struct Selection {
    targets: Vec<Address>,
    excludes: Vec<Address>,
    replace: Vec<Address>,
}

impl Selection {
    /// Parses the flags; reports every malformed address.
    pub fn parse(out: &Output, sel: &SelectArgs) -> Result<Selection, Reported> {
        let (targets, excludes, replace) = (
            addresses(out, "target", &sel.target),
            addresses(out, "exclude", &sel.exclude),
            addresses(out, "replace", &sel.replace),
        );
        Ok(Selection {
            targets: targets?,
            excludes: excludes?,
            replace: replace?,
        })
    }

    /// Puts the selection into plan options.
    pub fn apply_to(self, opts: &mut PlanOptions) {
        opts.targets = self.targets;
        opts.excludes = self.excludes;
        opts.replace = self.replace;
    }
}

/// The plan options for a run.
pub fn options(
    run: &Run,
    mode: PlanMode,
    args: &crate::cli::RunArgs,
    cancel: CancellationToken,
) -> PlanOptions {
    PlanOptions {
        mode,
        parallelism: Some(args.parallelism as usize),
        cancel,
        config_digest: run.loaded.digest.clone(),
        stack: run.loaded.config.stack.clone(),
        shard: match (&run.in_cluster, args.shard) {
            (Some(c), _) => Some(Shard::only(format!("cluster {c}"), key_fn(&run.graph))),
            (None, Some((k, n))) => Some(shard(&run.graph, k, n)),
            (None, None) => None,
        },
        ..Default::default()
    }
}

/// Shard `k` of `n` of a graph: every resource of a cluster is keyed by its cluster (so a
/// cluster lives in one shard), a resource that lives on a cluster without being named after it
/// (a custom location) by the cluster it depends on, anything else by its own address.
pub fn shard(graph: &arcplan_engine::graph::ResourceGraph, k: u32, n: u32) -> Shard {
    // `--shard` was parsed as 1 <= K <= N.
    Shard::new(k, n, key_fn(graph)).unwrap_or_else(|e| unreachable!("{e}"))
}

/// The key a resource is sharded by: its cluster's, or its own address.
fn key_fn(graph: &arcplan_engine::graph::ResourceGraph) -> arcplan_engine::shard::KeyFn {
    use arcplan_providers::kinds::cluster_of;
    let cluster_key = |a: &Address| cluster_of(a).map(|c| format!("cluster {c}"));
    let keys: std::collections::HashMap<Address, String> = graph
        .nodes()
        .filter_map(|node| {
            let a = &node.address;
            let key = cluster_key(a)
                .or_else(|| graph.dependencies(a).into_iter().find_map(&cluster_key))?;
            Some((a.clone(), key))
        })
        .collect();
    std::sync::Arc::new(move |a: &Address| {
        keys.get(a)
            .cloned()
            .or_else(|| cluster_key(a))
            .unwrap_or_else(|| a.to_string())
    })
}

/// Plans (the view shows the progress, if it does) and prints warnings; returns the plan or
/// reports the errors.
pub async fn make_plan(view: &View, run: &Run, opts: &PlanOptions) -> Result<Plan, Reported> {
    let (sink, printer) = view.events(Stage::Plan, plan_totals(run));
    let result = plan(&run.graph, &run.providers, opts, sink).await;
    printer.finish().await;
    match result {
        Ok((p, warnings)) => {
            view.diagnostics(&warnings, None);
            Ok(p)
        }
        Err(d) => Err(context::report(view, d)),
    }
}

/// What planning's progress counts to: the resources it reads (checks are not read).
pub fn plan_totals(run: &Run) -> views::live::Totals {
    let reads = run
        .graph
        .nodes()
        .filter(|n| {
            !matches!(
                n.mode,
                arcplan_engine::graph::Mode::PlanCheck | arcplan_engine::graph::Mode::ApplyCheck
            )
        })
        .count();
    views::live::Totals::refresh(reads)
}

/// Writes the header every run starts with.
pub fn header(view: &View, run: &Run) {
    view.header(&format!(
        "arcplan {} · {} → {} · credential: {}",
        env!("CARGO_PKG_VERSION"),
        run.file.display(),
        run.target,
        run.credential
    ));
}

pub fn run(args: &PlanArgs, out: &View) -> Result<Outcome, Error> {
    super::runtime()?.block_on(async {
        let Ok(selection) = Selection::parse(out, &args.select) else {
            return Ok(Outcome::Failed);
        };
        let Ok(run) = context::prepare(out, &args.file, &args.target_args).await else {
            return Ok(Outcome::Failed);
        };
        header(out, &run);
        let cancel = super::cancel_on_ctrl_c();
        let mode = if args.refresh_only { PlanMode::RefreshOnly } else { PlanMode::Normal };
        let mut opts = options(&run, mode, &args.run, cancel);
        selection.apply_to(&mut opts);
        let outcome = match make_plan(out, &run, &opts).await {
            Err(Reported) => Outcome::Failed,
            Ok(p) => {
                out.plan(
                    &p,
                    &PlanContext {
                        plan_file: args.out.as_deref(),
                        ..PlanContext::run(&run.invocation)
                    },
                );
                let mut saved_ok = true;
                if let Some(path) = &args.out {
                    let file = PlanFile::new(
                        std::fs::canonicalize(&args.file).unwrap_or_else(|_| args.file.clone()),
                        args.target_args.sandbox_dir.as_ref().map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.clone())),
                        p.clone(),
                    )
                    .with_sandbox_azure_only(args.target_args.sandbox_azure_only);
                    if args.target_args.sandbox {
                        let dir = std::path::PathBuf::from(".arcplan-sandbox");
                        let kept = crate::cli::TargetArgs { sandbox: false, sandbox_dir: Some(dir.clone()), sandbox_azure_only: args.target_args.sandbox_azure_only, in_cluster: args.target_args.in_cluster.clone() };
                        let none = crate::cli::TargetArgs { sandbox: false, sandbox_dir: None, sandbox_azure_only: false, in_cluster: None };
                        out.error(&format!(
                            "a plan made against the in-process sandbox cannot be saved: the sandbox ends with this command. Start one that stays with `{}`, then run `{}`",
                            crate::cli::command_line("sandbox", Some(&args.file), &none, &["--dir", &dir.display().to_string()]),
                            crate::cli::command_line("plan", Some(&args.file), &kept, &["--out", &path.display().to_string()]),
                        ));
                        saved_ok = false;
                    } else if let Err(e) = file.write(path) {
                        out.error(&e);
                        saved_ok = false;
                    } else {
                        out.plan_saved(path, &crate::cli::command_line("apply", None, &crate::cli::TargetArgs::default(), &[&path.display().to_string()]));
                    }
                }
                if !saved_ok || p.has_failed_checks() {
                    Outcome::Failed
                } else if args.detailed_exitcode && (p.has_changes() || p.has_drift()) {
                    // A refresh-only plan changes nothing, but drift is something to act on.
                    Outcome::Changes
                } else {
                    Outcome::Ok
                }
            }
        };
        run.finish().await;
        Ok(outcome)
    })
}
