//! `arcplan show PLANFILE`.

use super::{Error, Outcome};
use crate::cli::{PlanFormat, ShowArgs};
use crate::planfile::PlanFile;
use crate::views::{self, Output};

pub fn run(args: &ShowArgs, out: &Output) -> Result<Outcome, Error> {
    let file = match PlanFile::read(&args.plan_file) {
        Ok(f) => f,
        Err(e) => {
            out.error(&e);
            return Ok(Outcome::Failed);
        }
    };
    // What the plan's hints suggest is run against the file and target it was made with.
    let run = crate::cli::Invocation::new(&file.config_file, &file.target());
    let format = if args.json {
        PlanFormat::Json
    } else {
        args.format.unwrap_or(PlanFormat::Human)
    };
    match format {
        PlanFormat::Human => {
            out.stdout(&format!(
                "Plan of {} (arcplan {})\n",
                file.config_file.display(),
                file.arcplan_version
            ));
            out.stdout(&views::plan::human(&file.plan, out.color_stdout(), &run));
        }
        PlanFormat::Markdown => out.stdout(&views::plan::markdown(
            &file.plan,
            &views::plan::MarkdownOptions {
                max_bytes: args.max_bytes,
                plan_file: Some(args.plan_file.display().to_string()),
                run,
            },
        )),
        PlanFormat::Json => out.stdout(
            &serde_json::to_string_pretty(&views::plan::json(&file.plan)).unwrap_or_default(),
        ),
    }
    Ok(Outcome::Ok)
}
