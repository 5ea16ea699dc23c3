//! The view of a run: how everything a command shows is rendered. It is chosen once, from the
//! parsed arguments ([`View::choose`]); commands hand it their results (a plan, the live events,
//! an apply report, the clusters' status, diagnostics) and never pick a format themselves.

use super::diagnostics::ExpandedCluster;
use super::events::{self, Printer, Style};
use super::live::{self, Totals};
use super::{Output, diagnostics, graph, plan, progress, report, status};
use crate::cli::{Cli, Command, GraphFormat, Invocation, PlanFormat};
use arcplan_engine::diag::Diagnostics;
use arcplan_engine::events::EventSink;
use arcplan_engine::executor::ApplyReport;
use arcplan_engine::graph::ResourceGraph;
use arcplan_engine::plan::{CheckResult, Plan};
use std::path::Path;
use std::sync::Arc;

/// How a run's results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people: text, progress lines (live bars on a terminal), colour on a terminal.
    Human,
    /// One JSON document on standard output.
    Json,
    /// A pull-request comment (plans).
    Markdown,
    /// A stream of JSON lines, one per event (apply and destroy).
    Ndjson,
}

/// What a run is doing when it asks for its event printer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading live state and planning.
    Plan,
    /// Applying a plan.
    Apply,
}

/// Where a plan comes from, for the words around it.
#[derive(Debug, Clone, Copy)]
pub struct PlanContext<'a> {
    /// The file and target of the run, for the commands the plan's hints suggest.
    pub run: &'a Invocation,
    /// The saved plan file, if there is one (Markdown names it when it leaves details out).
    pub plan_file: Option<&'a Path>,
    /// A saved plan's origin: its desired-state file and the arcplan version that made it
    /// (people see it above the plan).
    pub saved: Option<(&'a Path, &'a str)>,
}

impl<'a> PlanContext<'a> {
    /// A plan made by this run.
    pub fn run(run: &'a Invocation) -> Self {
        PlanContext {
            run,
            plan_file: None,
            saved: None,
        }
    }
}

/// The view: the output streams and the format, chosen once.
pub struct View {
    out: Output,
    format: Format,
    /// Whether planning reports progress as it goes (not for `status`, which prints a table).
    progress: bool,
    /// The Markdown budget (`--max-bytes`).
    max_bytes: usize,
    /// `arcplan graph --format`.
    graph: GraphFormat,
}

impl std::ops::Deref for View {
    type Target = Output;

    fn deref(&self) -> &Output {
        &self.out
    }
}

impl View {
    /// The view the arguments ask for: the one place a format is chosen.
    pub fn choose(cli: &Cli, out: &Output) -> View {
        let plan_format = |format: Option<PlanFormat>, json: bool| match (format, json) {
            (Some(PlanFormat::Human), _) | (None, false) => Format::Human,
            (Some(PlanFormat::Json), _) | (None, true) => Format::Json,
            (Some(PlanFormat::Markdown), _) => Format::Markdown,
        };
        let json_or = |json: bool, human: Format| if json { Format::Json } else { human };
        let stream = |json: bool| if json { Format::Ndjson } else { Format::Human };
        let mut view = View {
            out: out.clone(),
            format: Format::Human,
            progress: true,
            max_bytes: plan::DEFAULT_MAX_BYTES,
            graph: GraphFormat::Dot,
        };
        match &cli.command {
            Command::Plan(a) => {
                view.format = plan_format(a.format, a.run.json);
                view.max_bytes = a.max_bytes;
            }
            Command::Show(a) => {
                view.format = plan_format(a.format, a.json);
                view.max_bytes = a.max_bytes;
            }
            Command::Apply(a) => view.format = stream(a.run.json),
            Command::Destroy(a) => view.format = stream(a.run.json),
            Command::Status(a) => {
                view.format = json_or(a.json, Format::Human);
                view.progress = false;
            }
            Command::Validate(a) => view.format = json_or(a.json, Format::Human),
            Command::Graph(a) => view.graph = a.format,
            Command::Sandbox(_) => {}
        }
        view
    }

    /// The line a run starts with: on standard output for people, on standard error when
    /// standard output carries a document or a stream.
    pub fn header(&self, text: &str) {
        if self.format == Format::Human {
            self.out.stdout(text)
        } else {
            self.out.stderr(text)
        }
    }

    /// A plan: Terraform-like text, Markdown, or the JSON plan document. An NDJSON stream
    /// carries no plan document (its events and summary say what happens).
    pub fn plan(&self, p: &Plan, ctx: &PlanContext) {
        match self.format {
            Format::Human => {
                if let Some((file, version)) = ctx.saved {
                    self.out
                        .stdout(&format!("Plan of {} (arcplan {version})\n", file.display()));
                }
                self.out
                    .stdout(&plan::human(p, self.out.color_stdout(), ctx.run));
            }
            Format::Markdown => self.out.stdout(&plan::markdown(
                p,
                &plan::MarkdownOptions {
                    max_bytes: self.max_bytes,
                    plan_file: ctx.plan_file.map(|f| f.display().to_string()),
                    run: ctx.run.clone(),
                },
            )),
            Format::Json => self
                .out
                .stdout(&serde_json::to_string_pretty(&plan::json(p)).unwrap_or_default()),
            Format::Ndjson => {}
        }
    }

    /// After `plan --out`: where the plan was saved and the command that applies it (people
    /// only; a document on standard output stays one document).
    pub fn plan_saved(&self, path: &Path, apply_line: &str) {
        if self.format == Format::Human {
            self.out.stdout(&format!(
                "\nSaved the plan to {}. Apply exactly this plan with:\n    {apply_line}",
                path.display()
            ));
        }
    }

    /// The sink for the engine's events of one stage and the task that prints them: progress
    /// lines for people (live bars counting `totals` on a terminal), NDJSON while an NDJSON
    /// stream applies (after its version line), nothing otherwise.
    pub fn events(&self, stage: Stage, totals: Totals) -> (Arc<dyn EventSink>, Printer) {
        let style = match (self.format, stage) {
            (Format::Ndjson, Stage::Apply) => {
                self.out
                    .stdout(&progress::version_message(time::OffsetDateTime::now_utc()));
                Style::Ndjson
            }
            (Format::Human, Stage::Apply) => human_style(),
            (Format::Human, Stage::Plan) if self.progress => human_style(),
            _ => Style::Silent,
        };
        events::printer(&self.out, style, stage == Stage::Plan, totals)
    }

    /// What an apply or destroy did: the report for people, the `change_summary` line of a
    /// stream.
    pub fn report(&self, r: &ApplyReport, p: &Plan, checks: &[CheckResult]) {
        match self.format {
            Format::Human | Format::Markdown => {
                self.out
                    .stdout(&report::human(r, p, self.out.color_stdout(), checks))
            }
            Format::Json | Format::Ndjson => self.out.stdout(&progress::change_summary(
                r.counts(),
                &report::operation_title(p).to_ascii_lowercase(),
                time::OffsetDateTime::now_utc(),
            )),
        }
    }

    /// Each cluster's status: a table for people, a JSON document for tools.
    pub fn status(&self, clusters: &[status::ClusterStatus]) {
        match self.format {
            Format::Json | Format::Ndjson => self
                .out
                .stdout(&serde_json::to_string_pretty(&status::json(clusters)).unwrap_or_default()),
            Format::Human | Format::Markdown => self
                .out
                .stdout(&status::human(clusters, self.out.color_stdout())),
        }
    }

    /// Diagnostics (warnings or errors) on standard error, with the offending line of
    /// `source` when it is known; every format keeps standard output for its document.
    pub fn diagnostics(&self, diags: &Diagnostics, source: Option<&str>) {
        diagnostics::print(&self.out, diags, source);
    }

    /// The result of `validate` of `path`: diagnostics and a success line for people, the JSON
    /// report (with the resource count when the file lowered) for tools.
    pub fn validation(
        &self,
        diags: &Diagnostics,
        source: Option<&str>,
        resources: Option<usize>,
        path: &Path,
        expanded: Option<&[ExpandedCluster]>,
    ) {
        if matches!(self.format, Format::Json | Format::Ndjson) {
            self.out
                .stdout(&diagnostics::json_report(diags, resources, expanded));
            return;
        }
        self.diagnostics(diags, source);
        if let Some(rows) = expanded {
            self.out.stdout(&diagnostics::expansion_table(rows));
        }
        if !diags.has_errors() {
            self.out.success(&format!(
                "Success! {} is valid ({} resources and checks).",
                path.display(),
                resources.unwrap_or(0)
            ));
        }
    }

    /// The resource graph, as Graphviz DOT or Mermaid (`--format`).
    pub fn graph(&self, g: &ResourceGraph, origins: &graph::Origins) {
        self.out.stdout(&match self.graph {
            GraphFormat::Dot => graph::dot(g, origins),
            GraphFormat::Mermaid => graph::mermaid(g, origins),
        });
    }
}

/// Progress for people: live bars on a terminal, timestamped lines elsewhere.
fn human_style() -> Style {
    if live::enabled() {
        Style::Live
    } else {
        Style::Plain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(args: &[&str]) -> View {
        let cli = Cli::parse_args(
            std::iter::once("arcplan")
                .chain(args.iter().copied())
                .map(Into::into),
        )
        .unwrap();
        View::choose(&cli, &Output { no_color: true })
    }

    #[test]
    fn the_arguments_choose_the_format_once() {
        for (args, format) in [
            (&["plan"][..], Format::Human),
            (&["plan", "--json"], Format::Json),
            (&["plan", "--format", "markdown"], Format::Markdown),
            (&["plan", "--format", "json"], Format::Json),
            (&["plan", "--json", "--format", "human"], Format::Human),
            (&["show", "x.plan"], Format::Human),
            (&["show", "x.plan", "--json"], Format::Json),
            (
                &["show", "x.plan", "--format", "markdown"],
                Format::Markdown,
            ),
            (&["apply", "--json"], Format::Ndjson),
            (&["apply", "x.plan"], Format::Human),
            (&["destroy", "--json"], Format::Ndjson),
            (&["status", "--json"], Format::Json),
            (&["status"], Format::Human),
            (&["validate", "--json"], Format::Json),
            (&["graph"], Format::Human),
        ] {
            assert_eq!(view(args).format, format, "{args:?}");
        }
        assert_eq!(view(&["plan", "--max-bytes", "2000"]).max_bytes, 2000);
        assert!(
            !view(&["status"]).progress,
            "status prints a table, not progress"
        );
        assert!(view(&["plan"]).progress);
        assert!(matches!(
            view(&["graph", "--format", "mermaid"]).graph,
            GraphFormat::Mermaid
        ));
    }
}
