//! Command-line arguments (clap). Values only; no I/O happens here.

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
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

impl Cli {
    /// Parses the arguments (Terraform's single-dash long options included) and settles what
    /// clap alone cannot: a positional FILE instead of -f, apply's positional desired-state
    /// file, and options that need another.
    pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Cli, clap::Error> {
        let mut cli = Cli::try_parse_from(normalize_args(args))?;
        cli.resolve()?;
        Ok(cli)
    }

    fn resolve(&mut self) -> Result<(), clap::Error> {
        let name = match &self.command {
            Command::Plan(_) => "plan",
            Command::Apply(_) => "apply",
            Command::Destroy(_) => "destroy",
            Command::Status(_) => "status",
            _ => "",
        };
        // The error names the subcommand's usage, as clap's own errors do.
        let usage = |msg: String| {
            let mut cmd = Cli::command();
            cmd.build();
            match cmd.find_subcommand_mut(name) {
                Some(sub) => sub.error(ErrorKind::ArgumentConflict, msg),
                None => cmd.error(ErrorKind::ArgumentConflict, msg),
            }
        };
        let target = match &mut self.command {
            Command::Plan(a) => {
                if let Some(f) = a.file_arg.take() {
                    a.file = f;
                }
                Some(&a.target_args)
            }
            Command::Status(a) => {
                if let Some(f) = a.file_arg.take() {
                    a.file = f;
                }
                Some(&a.target_args)
            }
            Command::Destroy(a) => {
                if let Some(f) = a.file_arg.take() {
                    a.file = f;
                }
                Some(&a.target_args)
            }
            Command::Apply(a) => {
                if a.plan_file.as_deref().is_some_and(is_desired_state_file) {
                    if a.file.is_some() {
                        return Err(usage(
                            "the desired-state file is given twice: name it once, as FILE or as -f FILE".into(),
                        ));
                    }
                    a.file = a.plan_file.take();
                }
                if let Some(p) = &a.plan_file {
                    let s = &a.select;
                    let with = if a.file.is_some() {
                        Some("-f/--file")
                    } else if !s.target.is_empty() {
                        Some("--target")
                    } else if !s.exclude.is_empty() {
                        Some("--exclude")
                    } else if !s.replace.is_empty() {
                        Some("--replace")
                    } else {
                        None
                    };
                    if let Some(opt) = with {
                        return Err(usage(format!(
                            "the saved plan {} is applied exactly as it was made, so it cannot be combined with {opt}; plan again with {opt} and --out",
                            p.display()
                        )));
                    }
                }
                Some(&a.target_args)
            }
            _ => None,
        };
        if let Some(t) = target
            && t.sandbox_azure_only
            && !t.sandbox
            && t.sandbox_dir.is_none()
        {
            return Err(usage(
                "--sandbox-azure-only needs --sandbox or --sandbox-dir DIR".into(),
            ));
        }
        Ok(())
    }
}

/// Whether `path` names a desired-state file (`*.yaml`, `*.yml`) rather than a saved plan.
fn is_desired_state_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// An `arcplan` command line for a hint, carrying the desired-state file and the target options
/// of the run that prints it, so that the suggestion works when copied.
pub fn command_line(
    command: &str,
    file: Option<&Path>,
    target: &TargetArgs,
    rest: &[&str],
) -> String {
    let mut words = vec!["arcplan".to_string(), command.to_string()];
    if let Some(f) = file {
        words.push("-f".into());
        words.push(shell_word(&f.display().to_string()));
    }
    if target.sandbox {
        words.push("--sandbox".into());
    }
    if let Some(d) = &target.sandbox_dir {
        words.push("--sandbox-dir".into());
        words.push(shell_word(&d.display().to_string()));
    }
    if target.sandbox_azure_only {
        words.push("--sandbox-azure-only".into());
    }
    if let Some(c) = &target.in_cluster {
        words.push("--in-cluster".into());
        words.push(shell_word(c));
    }
    words.extend(rest.iter().map(|w| shell_word(w)));
    words.join(" ")
}

/// What a hint needs to suggest a command that works when copied: the desired-state file and
/// the target options of the run that prints it. Built once by the command and handed to the
/// views, so that they print command lines without reading any global state. The default (no
/// file, no target) suggests bare commands.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// The desired-state file (`-f FILE`).
    pub file: Option<PathBuf>,
    /// Where the run goes.
    pub target: TargetArgs,
}

impl Invocation {
    /// The run of `file` against `target`.
    pub fn new(file: &Path, target: &TargetArgs) -> Invocation {
        Invocation {
            file: Some(file.to_path_buf()),
            target: target.clone(),
        }
    }

    /// `arcplan COMMAND` with this run's file and target, then `rest` (see [`command_line`]).
    pub fn command(&self, command: &str, rest: &[&str]) -> String {
        command_line(command, self.file.as_deref(), &self.target, rest)
    }
}

/// `s` as one POSIX shell word (quoted only when it must be).
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+-,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read live state and show what apply would change (changes nothing).
    #[command(after_help = "Examples:
  arcplan plan fleet.yaml
  arcplan plan fleet.yaml --out fleet.plan      # then: arcplan apply fleet.plan
  arcplan plan fleet.yaml --format markdown --detailed-exitcode
  arcplan plan examples/quickstart.yaml --sandbox")]
    Plan(PlanArgs),
    /// Apply a saved plan, or plan and apply after confirmation.
    #[command(after_help = "Examples:
  arcplan apply fleet.plan                      # exactly the plan saved by `plan --out`
  arcplan apply fleet.yaml                      # plan, show, ask, apply
  arcplan apply -f fleet.yaml --auto-approve --json
  arcplan apply examples/quickstart.yaml --sandbox")]
    Apply(ApplyArgs),
    /// Disconnect every cluster and delete what the file created.
    #[command(after_help = "Examples:
  arcplan destroy fleet.yaml
  arcplan destroy fleet.yaml --auto-approve --cluster-unreachable
  arcplan destroy examples/quickstart.yaml --sandbox-dir .arcplan-sandbox")]
    Destroy(DestroyArgs),
    /// Show a saved plan.
    #[command(after_help = "Examples:
  arcplan show fleet.plan
  arcplan show fleet.plan --format markdown > plan.md
  arcplan show fleet.plan --json")]
    Show(ShowArgs),
    /// Show each cluster's connectivity and what its agents report.
    #[command(after_help = "Examples:
  arcplan status fleet.yaml
  arcplan status fleet.yaml --json")]
    Status(StatusArgs),
    /// Check a desired-state file: syntax, keys, names, references. Reads no live state.
    #[command(after_help = "Examples:
  arcplan validate fleet.yaml
  arcplan validate fleet.yaml --json")]
    Validate(ValidateArgs),
    /// Print the resource graph (what depends on what) as Graphviz DOT or Mermaid.
    #[command(after_help = "Examples:
  arcplan graph fleet.yaml | dot -Tsvg > graph.svg
  arcplan graph fleet.yaml --format mermaid")]
    Graph(GraphArgs),
    /// Run local emulators of Microsoft Entra, Azure Resource Manager and the Kubernetes API.
    #[command(after_help = "Examples:
  arcplan sandbox --dir .arcplan-sandbox -f fleet.yaml    # then, in another terminal:
  arcplan apply fleet.yaml --sandbox-dir .arcplan-sandbox
  arcplan plan fleet.yaml --sandbox-dir .arcplan-sandbox --sandbox-azure-only   # real clusters")]
    Sandbox(SandboxArgs),
}

/// Which desired-state file (positional or -f).
#[derive(Debug, Args)]
pub struct FileArg {
    /// The desired-state file (the same as -f FILE).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The desired-state file.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = DEFAULT_FILE,
        conflicts_with = "file"
    )]
    pub file_flag: PathBuf,
}

impl FileArg {
    /// The file to read.
    pub fn path(&self) -> PathBuf {
        self.file.clone().unwrap_or_else(|| self.file_flag.clone())
    }
}

/// The desired-state file read when none is named.
pub const DEFAULT_FILE: &str = "arcplan.yaml";

/// Where the run goes: Azure and the clusters in the file, or a sandbox.
#[derive(Debug, Args, Clone, Default)]
pub struct TargetArgs {
    /// Start an in-process sandbox and run against it instead of Azure (no account needed).
    #[arg(long, conflicts_with = "sandbox_dir")]
    pub sandbox: bool,
    /// Run against a sandbox started with `arcplan sandbox --dir DIR`.
    #[arg(long, value_name = "DIR")]
    pub sandbox_dir: Option<PathBuf>,
    /// With --sandbox or --sandbox-dir: use the sandbox for Entra and ARM only; every cluster keeps
    /// the file's own `kubeconfig:` and `context:` (a real cluster paired with an emulated Azure).
    #[arg(long)]
    pub sandbox_azure_only: bool,
    /// Run as a pod inside cluster CLUSTER of the file (a Job in a store behind NAT): reach it
    /// through the pod's service account and the in-cluster API, and change only that cluster's
    /// resources (what the clusters share is the fleet's run's: waited for, not made).
    #[arg(long, value_name = "CLUSTER")]
    pub in_cluster: Option<String>,
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
    /// Run one shard of several, K of N (1 <= K <= N): clusters are split between shards by a
    /// stable hash of their address; what they share (providers, resource groups) is changed by
    /// the shard that owns it and waited for by the others. `arcplan show --merge` merges the
    /// shards' saved plans.
    #[arg(long, value_name = "K/N", value_parser = parse_shard, conflicts_with = "in_cluster")]
    pub shard: Option<(u32, u32)>,
}

fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    arcplan_engine::shard::Shard::parse(s)
}

/// `arcplan plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The desired-state file (the same as -f FILE).
    #[arg(value_name = "FILE")]
    pub file_arg: Option<PathBuf>,
    /// The desired-state file.
    #[arg(short = 'f', long = "file", value_name = "FILE", default_value = DEFAULT_FILE, conflicts_with = "file_arg")]
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
    /// Markdown only: the most bytes the document may take; past it, resource details are
    /// left out from the end and a note says where the full plan is (GitHub's comment limit is
    /// 65,536).
    #[arg(long, value_name = "N", default_value_t = crate::views::plan::DEFAULT_MAX_BYTES, value_parser = parse_max_bytes)]
    pub max_bytes: usize,
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
    /// A plan saved with `plan --out`, applied exactly after checking nothing changed since; or
    /// a desired-state file (`*.yaml`, `*.yml`: the same as -f FILE).
    #[arg(value_name = "PLANFILE|FILE")]
    pub plan_file: Option<PathBuf>,
    /// The desired-state file, when no plan file is given [default: arcplan.yaml].
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
    /// The desired-state file (the same as -f FILE).
    #[arg(value_name = "FILE")]
    pub file_arg: Option<PathBuf>,
    /// The desired-state file.
    #[arg(short = 'f', long = "file", value_name = "FILE", default_value = DEFAULT_FILE, conflicts_with = "file_arg")]
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
    /// A plan saved with `plan --out` (with --merge: every shard's).
    #[arg(value_name = "PLANFILE", required = true, num_args = 1..)]
    pub plan_files: Vec<PathBuf>,
    /// Merge the saved plans of every shard of a run (`plan --shard K/N --out ...`) into one:
    /// each change from the shard that owns it, each check once.
    #[arg(long)]
    pub merge: bool,
    /// Print the JSON plan document.
    #[arg(long)]
    pub json: bool,
    /// Output format.
    #[arg(long, value_enum, conflicts_with = "json")]
    pub format: Option<PlanFormat>,
    /// Markdown only: the most bytes the document may take; past it, resource details are
    /// left out from the end and a note says where the full plan is (GitHub's comment limit is
    /// 65,536).
    #[arg(long, value_name = "N", default_value_t = crate::views::plan::DEFAULT_MAX_BYTES, value_parser = parse_max_bytes)]
    pub max_bytes: usize,
}

/// `arcplan status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The desired-state file (the same as -f FILE).
    #[arg(value_name = "FILE")]
    pub file_arg: Option<PathBuf>,
    /// The desired-state file.
    #[arg(short = 'f', long = "file", value_name = "FILE", default_value = DEFAULT_FILE, conflicts_with = "file_arg")]
    pub file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Only the clusters of shard K of N (as `plan --shard` splits them).
    #[arg(long, value_name = "K/N", value_parser = parse_shard, conflicts_with = "in_cluster")]
    pub shard: Option<(u32, u32)>,
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
    /// Also list the clusters after `clusterDefaults` and `clusterSets` are expanded, each with
    /// the file and line it came from (its inventory row, or its entry in the file).
    #[arg(long)]
    pub expand: bool,
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
    /// Take commands on stdin, one a line, each answered with one line on stdout (for
    /// benchmarks; end of input stops the sandbox): `copy-onboarding FROM` (with -f: copy
    /// FROM's onboarded state to every other cluster of the file), `faults LATENCY THROTTLE`
    /// (like `faults 50ms on`), `requests` (counts so far, as JSON).
    #[arg(long)]
    pub control: bool,
    /// Time between two heartbeats of the simulated Arc agents (each looks at every cluster).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "100ms")]
    pub agents_interval: Duration,
}

/// Parses `--max-bytes`: a whole number of bytes, at least 1024 (room for the title and the
/// note saying where the full plan is).
pub fn parse_max_bytes(s: &str) -> Result<usize, String> {
    match s.replace(['_', ','], "").parse::<usize>() {
        Ok(n) if n >= 1024 => Ok(n),
        _ => Err(format!(
            "`{s}` is not a byte count of at least 1024, like 60000"
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::parse_args(
            std::iter::once("arcplan")
                .chain(args.iter().copied())
                .map(OsString::from),
        )
    }

    #[test]
    fn a_positional_file_is_the_same_as_dash_f() {
        for cmd in ["plan", "status", "destroy"] {
            let file = |cli: Cli| match cli.command {
                Command::Plan(a) => a.file,
                Command::Status(a) => a.file,
                Command::Destroy(a) => a.file,
                _ => unreachable!(),
            };
            assert_eq!(
                file(parse(&[cmd, "x/fleet.yaml"]).unwrap()),
                PathBuf::from("x/fleet.yaml")
            );
            assert_eq!(
                file(parse(&[cmd, "-f", "x/fleet.yaml"]).unwrap()),
                PathBuf::from("x/fleet.yaml")
            );
            assert_eq!(file(parse(&[cmd]).unwrap()), PathBuf::from(DEFAULT_FILE));
            let e = parse(&[cmd, "a.yaml", "-f", "b.yaml"]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ArgumentConflict, "{cmd}: {e}");
        }
        let Command::Apply(a) = parse(&["apply", "fleet.yml"]).unwrap().command else {
            unreachable!()
        };
        assert_eq!(
            (a.plan_file, a.file),
            (None, Some(PathBuf::from("fleet.yml")))
        );
        let Command::Apply(a) = parse(&["apply", "fleet.plan"]).unwrap().command else {
            unreachable!()
        };
        assert_eq!(a.plan_file, Some(PathBuf::from("fleet.plan")));
        for bad in [
            &["apply", "fleet.yaml", "-f", "other.yaml"][..],
            &["apply", "fleet.plan", "-f", "fleet.yaml"],
            &["apply", "fleet.plan", "--target", "quickstart.cluster.c"],
            &["plan", "--sandbox-azure-only"],
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ArgumentConflict, "{bad:?}: {e}");
        }
        let Command::Apply(a) = parse(&["apply", "f.yaml", "--target", "s.cluster.c"])
            .unwrap()
            .command
        else {
            unreachable!()
        };
        assert_eq!(a.select.target, vec!["s.cluster.c".to_string()]);
    }

    #[test]
    fn suggested_command_lines_carry_the_file_and_target() {
        let target = TargetArgs {
            sandbox: false,
            sandbox_dir: Some(PathBuf::from("/tmp/my sandbox")),
            sandbox_azure_only: true,
            in_cluster: Some("store-01".into()),
        };
        assert_eq!(
            command_line(
                "plan",
                Some(Path::new("arc/fleet.yaml")),
                &target,
                &["--out", "stale.plan"]
            ),
            "arcplan plan -f arc/fleet.yaml --sandbox-dir '/tmp/my sandbox' --sandbox-azure-only --in-cluster store-01 --out stale.plan"
        );
        let none = TargetArgs {
            sandbox: true,
            sandbox_dir: None,
            sandbox_azure_only: false,
            in_cluster: None,
        };
        assert_eq!(
            command_line("apply", Some(Path::new("it's.yaml")), &none, &[]),
            r"arcplan apply -f 'it'\''s.yaml' --sandbox"
        );
    }
}
