//! Command-line arguments (clap). Values only; no I/O happens here.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Connect Kubernetes clusters to Azure Arc from a reviewed desired-state file.
#[derive(Debug, Parser)]
#[command(name = "arcplan", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Never colour the output (colour is also off when NO_COLOR is set or output is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read live state and show what apply would change (changes nothing).
    Plan(PlanArgs),
    /// Apply a saved plan, or plan and apply after confirmation.
    Apply(ApplyArgs),
    /// Disconnect every cluster and delete what the file created.
    Destroy(DestroyArgs),
    /// Show a saved plan.
    Show(ShowArgs),
    /// Show each cluster's connectivity and what its agents report.
    Status(StatusArgs),
    /// Check a desired-state file: syntax, keys, names, references. Reads no live state.
    Validate(ValidateArgs),
    /// Print the resource graph (what depends on what) as Graphviz DOT or Mermaid.
    Graph(GraphArgs),
    /// Run local emulators of Microsoft Entra, Azure Resource Manager and the Kubernetes API.
    Sandbox(SandboxArgs),
}

/// Which desired-state file (positional or -f).
#[derive(Debug, Args)]
pub struct FileArg {
    /// The desired-state file (default: arcplan.yaml).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The desired-state file, as with plan and apply.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "file"
    )]
    pub file_flag: Option<PathBuf>,
}

impl FileArg {
    /// The file to read.
    pub fn path(&self) -> PathBuf {
        self.file
            .clone()
            .or_else(|| self.file_flag.clone())
            .unwrap_or_else(|| PathBuf::from("arcplan.yaml"))
    }
}

/// Where the run goes: Azure and the clusters in the file, or a sandbox.
#[derive(Debug, Args, Clone)]
pub struct TargetArgs {
    /// Start an in-process sandbox and run against it instead of Azure (no account needed).
    #[arg(long, conflicts_with = "sandbox_dir")]
    pub sandbox: bool,
    /// Run against a sandbox started with `arcplan sandbox --dir DIR`.
    #[arg(long, value_name = "DIR")]
    pub sandbox_dir: Option<PathBuf>,
}

/// Which resources a plan covers (plan, and apply without a plan file).
#[derive(Debug, Args, Clone)]
pub struct SelectArgs {
    /// Only these resources and what they depend on.
    #[arg(long, value_name = "ADDRESS")]
    pub target: Vec<String>,
    /// Leave out these resources and what depends on them.
    #[arg(long, value_name = "ADDRESS")]
    pub exclude: Vec<String>,
    /// Replace these resources even if nothing changed.
    #[arg(long, value_name = "ADDRESS")]
    pub replace: Vec<String>,
}

/// Options shared by plan, apply and destroy.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Resources worked on at once.
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// How long to wait for another apply's lock on a cluster.
    #[arg(long, default_value = "0s", value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: Duration,
    /// Print machine-readable output (a JSON plan; NDJSON events for apply).
    #[arg(long)]
    pub json: bool,
}

/// `arcplan plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The desired-state file (default: arcplan.yaml).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "arcplan.yaml"
    )]
    pub file: PathBuf,
    /// Save the plan for `arcplan apply PLANFILE`.
    #[arg(short = 'o', long = "out", value_name = "PLANFILE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when there are changes (0: none, 1: error).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Output format (`--json` is `--format json`).
    #[arg(long, value_enum)]
    pub format: Option<PlanFormat>,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Only read live state and report differences; plan no change.
    #[arg(long)]
    pub refresh_only: bool,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub target_args: TargetArgs,
}

/// Plan output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// For people.
    Human,
    /// A versioned JSON plan document.
    Json,
    /// For a pull-request comment.
    Markdown,
}

/// `arcplan apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `plan --out`; applied exactly, after checking nothing changed since.
    #[arg(value_name = "PLANFILE", conflicts_with_all = ["file", "target", "exclude", "replace"])]
    pub plan_file: Option<PathBuf>,
    /// The desired-state file, when no plan file is given (default: arcplan.yaml).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Apply without asking for `yes` (required when stdin is not a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub target_args: TargetArgs,
}

/// `arcplan destroy`.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// The desired-state file (default: arcplan.yaml).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "arcplan.yaml"
    )]
    pub file: PathBuf,
    /// Destroy without asking for `yes`.
    #[arg(long)]
    pub auto_approve: bool,
    /// Disconnect from Azure only: the clusters cannot be reached, their agents are reported as
    /// orphaned.
    #[arg(long)]
    pub cluster_unreachable: bool,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub target_args: TargetArgs,
}

/// `arcplan show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan saved with `plan --out`.
    #[arg(value_name = "PLANFILE")]
    pub plan_file: PathBuf,
    /// Print the JSON plan document.
    #[arg(long)]
    pub json: bool,
    /// Output format.
    #[arg(long, value_enum, conflicts_with = "json")]
    pub format: Option<PlanFormat>,
}

/// `arcplan status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The desired-state file (default: arcplan.yaml).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "arcplan.yaml"
    )]
    pub file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target_args: TargetArgs,
}

/// `arcplan validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Print the result as JSON (for editors and pipelines).
    #[arg(long)]
    pub json: bool,
}

/// `arcplan graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
}

/// Graph output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT (`arcplan graph | dot -Tsvg > graph.svg`).
    Dot,
    /// A Mermaid flowchart (renders in GitHub markdown).
    Mermaid,
}

/// `arcplan sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Where to write ca.pem, kubeconfig and sandbox.env.
    #[arg(long, value_name = "DIR", default_value = ".arcplan-sandbox")]
    pub dir: PathBuf,
    /// Serve this file's subscription and tenant (so it runs unchanged with --sandbox-dir).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Seed of every random choice (faults, keys of the run).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Latency added to every request.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub latency: Duration,
    /// Share of requests answered with 500/503.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Throttle like ARM (token buckets, 429 with Retry-After).
    #[arg(long)]
    pub throttle: bool,
    /// The sandbox principal's role: owner, contributor, arc-onboarding, reader, none.
    #[arg(long, default_value = "owner")]
    pub role: String,
    /// Write every request and response as JSON lines (tokens redacted).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Fixed ports (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub entra_port: u16,
    /// Fixed ARM port (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub arm_port: u16,
    /// Fixed Kubernetes API port (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub kube_port: u16,
}

/// Parses `90s`, `20m`, `1h30m`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration like 30s or 5m: {e}"))
}

/// Terraform users type `-out=FILE`, `-auto-approve`, `-detailed-exitcode`: accept those
/// single-dash long options as their `--` forms.
pub fn normalize_args(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    const LONG: &[&str] = &[
        "out",
        "auto-approve",
        "detailed-exitcode",
        "target",
        "exclude",
        "replace",
        "parallelism",
        "refresh-only",
        "lock-timeout",
        "json",
        "no-color",
        "file",
        "format",
    ];
    args.into_iter()
        .map(|a| {
            let Some(s) = a.to_str() else { return a };
            if let Some(rest) = s.strip_prefix('-')
                && !rest.starts_with('-')
            {
                let name = rest.split('=').next().unwrap_or(rest);
                if LONG.contains(&name) {
                    return format!("-{s}").into();
                }
            }
            a
        })
        .collect()
}
