//! `arcplan show PLANFILE`.

use super::{Error, Outcome};
use crate::cli::ShowArgs;
use crate::planfile::PlanFile;
use crate::views::{PlanContext, View};

pub fn run(args: &ShowArgs, view: &View) -> Result<Outcome, Error> {
    let file = match PlanFile::read(&args.plan_file) {
        Ok(f) => f,
        Err(e) => {
            view.error(&e);
            return Ok(Outcome::Failed);
        }
    };
    // What the plan's hints suggest is run against the file and target it was made with.
    let run = crate::cli::Invocation::new(&file.config_file, &file.target());
    view.plan(
        &file.plan,
        &PlanContext {
            run: &run,
            plan_file: Some(&args.plan_file),
            saved: Some((&file.config_file, &file.arcplan_version)),
        },
    );
    Ok(Outcome::Ok)
}
