//! `arcplan`: declarative plan/apply for connecting Kubernetes clusters to Azure Arc.
//!
//! `main` only parses arguments, runs the command and maps its outcome to an exit code:
//! 0 success (no changes), 1 error, 2 changes present (with `--detailed-exitcode`), 130/143
//! stopped by SIGINT/SIGTERM (after cleaning up and reporting).

mod cli;
mod commands;
mod planfile;
mod views;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::Cli::parse_args(std::env::args_os()) {
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
        Ok(commands::Outcome::Interrupted(code)) => ExitCode::from(code),
        Err(e) => {
            out.error(&e);
            ExitCode::from(1)
        }
    }
}
