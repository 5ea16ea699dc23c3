//! `arcplan`: declarative plan/apply for connecting Kubernetes clusters to Azure Arc.
//!
//! `main` only parses arguments, runs the command and maps its outcome to an exit code:
//! 0 success (no changes), 1 error, 2 changes present (with `--detailed-exitcode`).

mod cli;
mod commands;
mod planfile;
mod views;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse_from(cli::normalize_args(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors exit 1 (2 means "changes present"); --help and --version exit 0.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let out = views::Output::detect(cli.no_color);
    match commands::run(cli, &out) {
        Ok(commands::Outcome::Ok) => ExitCode::SUCCESS,
        Ok(commands::Outcome::Changes) => ExitCode::from(2),
        Ok(commands::Outcome::Failed) => ExitCode::from(1),
        Err(e) => {
            out.error(&e);
            ExitCode::from(1)
        }
    }
}
