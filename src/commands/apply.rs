//! `arcplan apply` and `arcplan destroy`: the engine's apply session, shown by the view, its
//! outcome mapped to an exit code.

use super::context::{self, Run};
use super::plan::{Selection, header, options, plan_totals};
use super::{Error, Outcome, lock};
use crate::cli::{ApplyArgs, DestroyArgs, RunArgs};
use crate::planfile::PlanFile;
use crate::views::{self, Output, PlanContext, Stage, View};
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use arcplan_engine::events::EventSink;
use arcplan_engine::executor::ApplyReport;
use arcplan_engine::plan::{Plan, PlanMode};
use arcplan_engine::planner::PlanOptions;
use arcplan_engine::provider::{LockWaiting, Provider};
use arcplan_engine::session::{self, SessionOptions, SessionOutcome, SessionView, Source};
use async_trait::async_trait;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};
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
        let mut opts = options(&run, PlanMode::Normal, &args.run, cancel.clone());
        selection.apply_to(&mut opts);
        let desk = Desk::new(out, &run, args.auto_approve, false);
        let options = session_options(&args.run, cancel, Vec::new());
        let outcome = desk.plan_and_apply(opts, &options).await;
        run.finish().await;
        Ok(outcome)
    })
}

pub fn run_destroy(args: &DestroyArgs, out: &View) -> Result<Outcome, Error> {
    super::runtime()?.block_on(async {
        let cancel = super::cancel_on_ctrl_c();
        let Ok(run) = context::prepare(out, &args.file, &args.target_args).await else {
            return Ok(Outcome::Failed);
        };
        header(out, &run);
        let opts = options(&run, PlanMode::Destroy, &args.run, cancel.clone());
        // The cluster side is neither locked, read nor changed: what it leaves behind is
        // reported.
        let unreachable = if args.cluster_unreachable {
            run.kube.resource_types()
        } else {
            Vec::new()
        };
        let desk = Desk::new(out, &run, args.auto_approve, true);
        let options = session_options(&args.run, cancel, unreachable);
        let outcome = desk.plan_and_apply(opts, &options).await;
        run.finish().await;
        Ok(outcome)
    })
}

fn session_options(
    run: &RunArgs,
    cancel: CancellationToken,
    unreachable: Vec<arcplan_engine::address::ResourceType>,
) -> SessionOptions {
    SessionOptions {
        holder: lock::holder_identity(),
        lock_timeout: run.lock_timeout,
        parallelism: run.parallelism as usize,
        cancel,
        unreachable,
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
    let outcome = if run.loaded.digest != file.plan.config_digest {
        out.error(&format!(
            "{} changed since the plan was made; the saved plan no longer describes it. Run `{replan}` again.",
            file.config_file.display(),
        ));
        Outcome::Failed
    } else {
        let desk = Desk::new(out, &run, true, false);
        let finished = session::run(
            &run.providers,
            Source::Saved(file.plan.clone()),
            &session_options(&args.run, cancel, Vec::new()),
            &desk,
        )
        .await;
        desk.outcome(finished, Some(&replan))
    };
    run.finish().await;
    Ok(outcome)
}

/// The session's view at a terminal or in a pipeline: progress, the plan, the prompt, the
/// report.
struct Desk<'a> {
    out: &'a View,
    run: &'a Run,
    auto_approve: bool,
    destroy: bool,
    /// The event printer of the stage in progress.
    printer: Mutex<Option<views::events::Printer>>,
}

impl<'a> Desk<'a> {
    fn new(out: &'a View, run: &'a Run, auto_approve: bool, destroy: bool) -> Self {
        Desk {
            out,
            run,
            auto_approve,
            destroy,
            printer: Mutex::new(None),
        }
    }

    /// Plans the run's graph with `plan` and applies the result once approved.
    async fn plan_and_apply(&self, plan: PlanOptions, options: &SessionOptions) -> Outcome {
        let source = Source::Plan {
            graph: &self.run.graph,
            options: plan,
        };
        let finished = session::run(&self.run.providers, source, options, self).await;
        self.outcome(finished, None)
    }

    fn start(&self, stage: Stage, totals: views::live::Totals) -> Arc<dyn EventSink> {
        let (sink, printer) = self.out.events(stage, totals);
        *self.printer.lock().unwrap_or_else(|e| e.into_inner()) = Some(printer);
        sink
    }

    async fn finish(&self) -> Vec<arcplan_engine::plan::CheckResult> {
        let printer = self
            .printer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match printer {
            Some(p) => p.finish().await,
            None => Vec::new(),
        }
    }

    /// Says how the session ended (what the view did not show yet) and maps it to an exit
    /// code. `replan` is the command that makes a saved plan again.
    fn outcome(&self, finished: session::Finished, replan: Option<&str>) -> Outcome {
        let out: &Output = self.out;
        let outcome = match finished.outcome {
            SessionOutcome::NothingToDo(_) => Outcome::Ok,
            SessionOutcome::LockFailed(d) => {
                let line = d
                    .iter()
                    .find(|d| d.severity == arcplan_engine::diag::Severity::Error)
                    .map(|d| lock::failure_line(d, self.destroy))
                    .unwrap_or_default();
                context::report(out, d);
                out.error(&line);
                Outcome::Failed
            }
            // The view showed the errors, or the plan with its failed checks; the prompt said
            // why it refused.
            SessionOutcome::PlanFailed(_)
            | SessionOutcome::Refused(_)
            | SessionOutcome::Cancelled(_) => Outcome::Failed,
            SessionOutcome::ChecksFailed(_) => {
                if replan.is_some() {
                    out.error("the saved plan has failed checks and cannot be applied; fix them and plan again");
                }
                Outcome::Failed
            }
            SessionOutcome::Stale(_, stale) => {
                let d: Diagnostics = stale
                    .iter()
                    .map(|s| {
                        Diagnostic::error("stale-plan", format!("{}: {}", s.address, s.what))
                            .with_address(s.address.to_string())
                    })
                    .collect();
                context::report(out, d);
                out.error(&format!(
                    "the saved plan is stale: {} resource(s) changed since it was made, so it no longer shows what apply would do. Nothing was changed. Run `{}` again and review it.",
                    stale.len(),
                    replan.unwrap_or("arcplan plan"),
                ));
                Outcome::Failed
            }
            SessionOutcome::ApplyFailed(_, e) => {
                out.error(&e.to_string());
                Outcome::Failed
            }
            SessionOutcome::Applied { report, lost, .. } => match lost {
                Some(d) => {
                    out.error(&format!(
                        "{}. The report above shows what this run changed before it stopped; run plan again and review it before applying.",
                        d.message
                    ));
                    Outcome::Failed
                }
                None if report.is_success() => Outcome::Ok,
                None => Outcome::Failed,
            },
        };
        if !finished.release.is_empty() {
            context::report(out, finished.release);
        }
        outcome
    }
}

#[async_trait]
impl SessionView for Desk<'_> {
    fn lock_waiting(&self, w: &LockWaiting) {
        self.out.stderr(&lock::waiting_line(w));
    }

    fn planning(&self) -> Arc<dyn EventSink> {
        self.start(Stage::Plan, plan_totals(self.run))
    }

    async fn planned(&self, result: Result<(&Plan, &Diagnostics), &Diagnostics>) {
        self.finish().await;
        match result {
            Ok((plan, warnings)) => {
                self.out.diagnostics(warnings, None);
                self.out.plan(plan, &PlanContext::run(&self.run.invocation));
            }
            Err(d) => {
                context::report(self.out, d.clone());
            }
        }
    }

    async fn approve(&self, _plan: &Plan, cancel: &CancellationToken) -> bool {
        approve(self.out, self.auto_approve, self.destroy, cancel).await
    }

    fn applying(&self, plan: &Plan) -> Arc<dyn EventSink> {
        self.start(Stage::Apply, views::live::Totals::apply(plan))
    }

    async fn applied(&self, plan: &Plan, report: Option<&ApplyReport>) {
        let checks = self.finish().await;
        if let Some(report) = report {
            self.out.report(report, plan, &checks);
        }
    }
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
