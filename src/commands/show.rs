//! `arcplan show PLANFILE`.

use super::{Error, Outcome};
use crate::cli::ShowArgs;
use crate::planfile::PlanFile;
use crate::views::{PlanContext, View};

pub fn run(args: &ShowArgs, view: &View) -> Result<Outcome, Error> {
    let mut files = Vec::new();
    for path in &args.plan_files {
        match PlanFile::read(path) {
            Ok(f) => files.push((path, f)),
            Err(e) => {
                view.error(&e);
                return Ok(Outcome::Failed);
            }
        }
    }
    if !args.merge && files.len() > 1 {
        view.error("name one plan file, or merge the plans of a sharded run's shards with --merge");
        return Ok(Outcome::Failed);
    }
    let (path, file) = files.remove(0);
    // What the plan's hints suggest is run against the file and target it was made with.
    let run = crate::cli::Invocation::new(&file.config_file, &file.target());
    if args.merge {
        let mut plans = vec![(path.display().to_string(), file.plan.clone())];
        plans.extend(
            files
                .into_iter()
                .map(|(p, f)| (p.display().to_string(), f.plan)),
        );
        let merged = match arcplan_engine::shard::merge(plans) {
            Ok(p) => p,
            Err(e) => {
                view.error(&e);
                return Ok(Outcome::Failed);
            }
        };
        // Each shard applies its own plan: no single plan file to suggest.
        view.plan(
            &merged,
            &PlanContext {
                run: &run,
                plan_file: None,
                saved: Some((&file.config_file, &file.arcplan_version)),
            },
        );
        return Ok(Outcome::Ok);
    }
    view.plan(
        &file.plan,
        &PlanContext {
            run: &run,
            plan_file: Some(path),
            saved: Some((&file.config_file, &file.arcplan_version)),
        },
    );
    Ok(Outcome::Ok)
}
