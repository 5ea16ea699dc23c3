//! The commands: each resolves its inputs, calls the engine and hands results to a view.

mod apply;
mod context;
mod graph;
mod lock;
mod plan;
mod sandbox;
mod show;
mod status;
mod validate;

use crate::cli::{Cli, Command};
use crate::views::{Output, View};
use std::sync::atomic::{AtomicU8, Ordering};
use tokio_util::sync::CancellationToken;

/// How a command ended, for the exit code.
pub enum Outcome {
    /// Success, nothing to change.
    Ok,
    /// Success, and there are changes (`--detailed-exitcode`).
    Changes,
    /// The command ran and reported a failure itself (diagnostics already printed).
    Failed,
    /// A signal (SIGINT, SIGTERM) stopped the command after it cleaned up and reported what was
    /// done: exit `128 + signal` (130, 143).
    Interrupted(u8),
}

/// An error the command could not report itself.
pub type Error = String;

/// Runs the parsed command.
pub fn run(cli: Cli, out: &Output) -> Result<Outcome, Error> {
    // The one place a format is chosen: every command renders through this view.
    let view = View::choose(&cli, out);
    let outcome = run_command(cli, &view)?;
    Ok(match interrupted() {
        Some(code) => Outcome::Interrupted(code),
        None => outcome,
    })
}

fn run_command(cli: Cli, out: &View) -> Result<Outcome, Error> {
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

/// The first signal that stopped the run (2 SIGINT, 15 SIGTERM), 0 while none did.
static SIGNAL: AtomicU8 = AtomicU8::new(0);

/// The exit code of a run stopped by a signal (`128 + signal`), if one was.
pub fn interrupted() -> Option<u8> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        n => Some(128 + n),
    }
}

/// A token that fires on the first SIGINT (Ctrl-C) or SIGTERM: the run stops starting work, lets
/// in-flight work finish or abandon its waits, releases its locks, reports what was done and
/// exits 130 or 143. A second signal ends the process at once. Call inside the runtime; the
/// handlers are installed before this returns.
pub fn cancel_on_ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return token;
        };
        tokio::spawn(async move {
            let first = tokio::select! {
                _ = int.recv() => 2,
                _ = term.recv() => 15,
            };
            let _ = SIGNAL.compare_exchange(0, first, Ordering::SeqCst, Ordering::SeqCst);
            t.cancel();
            tokio::select! {
                _ = int.recv() => std::process::exit(130),
                _ = term.recv() => std::process::exit(143),
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = SIGNAL.compare_exchange(0, 2, Ordering::SeqCst, Ordering::SeqCst);
            t.cancel();
            let _ = tokio::signal::ctrl_c().await;
            std::process::exit(130);
        }
    });
    token
}
