//! The commands: each resolves its inputs, calls the engine and hands results to a view.

mod apply;
mod context;
mod events;
mod graph;
mod plan;
mod sandbox;
mod show;
mod status;
mod validate;

use crate::cli::{Cli, Command};
use crate::views::Output;
use tokio_util::sync::CancellationToken;

/// How a command ended, for the exit code.
pub enum Outcome {
    /// Success, nothing to change.
    Ok,
    /// Success, and there are changes (`--detailed-exitcode`).
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
        Command::Plan(args) => plan::run(&args, out),
        Command::Apply(args) => apply::run_apply(&args, out),
        Command::Destroy(args) => apply::run_destroy(&args, out),
        Command::Show(args) => show::run(&args, out),
        Command::Status(args) => status::run(&args, out),
        Command::Sandbox(args) => sandbox::run(&args, out),
    }
}

/// The async runtime of a command.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// A token that fires on Ctrl-C (the first one; a second one kills the process as usual).
pub fn cancel_on_ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            t.cancel();
            // Restore the default: a second Ctrl-C ends the process at once.
            let _ = tokio::signal::ctrl_c().await;
            std::process::exit(130);
        }
    });
    token
}
