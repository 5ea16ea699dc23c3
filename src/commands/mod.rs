//! The commands: each resolves its inputs, calls the engine and hands results to a view.

mod graph;
mod validate;

use crate::cli::{Cli, Command};
use crate::views::Output;

/// How a command ended, for the exit code.
pub enum Outcome {
    /// Success, nothing to change.
    Ok,
    /// Success, and there are changes (`--detailed-exitcode`).
    #[allow(dead_code)]
    Changes,
    /// The command ran and reported a failure itself (diagnostics already printed).
    Failed,
}

/// An error the command could not report itself.
pub type Error = String;

/// Runs the parsed command.
pub fn run(cli: Cli, out: &Output) -> Result<Outcome, Error> {
    match cli.command {
        Command::Validate(args) => validate::run(&args, out),
        Command::Graph(args) => graph::run(&args, out),
    }
}
