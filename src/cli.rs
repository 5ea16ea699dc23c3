//! Command-line arguments (clap). Values only; no I/O happens here.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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
    /// Check a desired-state file: syntax, keys, names, references. Reads no live state.
    Validate(ValidateArgs),
    /// Print the resource graph (what depends on what) as Graphviz DOT or Mermaid.
    Graph(GraphArgs),
}

/// Which desired-state file.
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
