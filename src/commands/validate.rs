//! `arcplan validate`.

use super::{Error, Outcome};
use crate::cli::ValidateArgs;
use crate::views::View;
use arcplan_config::load_file;

pub fn run(args: &ValidateArgs, view: &View) -> Result<Outcome, Error> {
    let path = args.file.path();
    let (diags, resources) = match load_file(&path) {
        Ok(loaded) => match arcplan_providers::kinds::lower(&loaded.config) {
            Ok(g) => (loaded.warnings, Some(g.len())),
            Err(mut d) => {
                d.extend(loaded.warnings);
                (d, None)
            }
        },
        Err(d) => (d, None),
    };
    let source = arcplan_config::read_source(&path);
    view.validation(&diags, source.as_deref(), resources, &path);
    Ok(if diags.has_errors() {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}
