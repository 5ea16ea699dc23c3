//! `arcplan graph`.

use super::{Error, Outcome};
use crate::cli::GraphArgs;
use crate::views::View;
use arcplan_config::load_file;

pub fn run(args: &GraphArgs, view: &View) -> Result<Outcome, Error> {
    let path = args.file.path();
    let source = arcplan_config::read_source(&path);
    let loaded = match load_file(&path) {
        Ok(l) => l,
        Err(d) => {
            view.diagnostics(&d, source.as_deref());
            return Ok(Outcome::Failed);
        }
    };
    view.diagnostics(&loaded.warnings, source.as_deref());
    match arcplan_providers::kinds::lower(&loaded.config) {
        Ok(g) => {
            let origins = loaded
                .origins
                .iter()
                .map(|(i, o)| (format!("clusters[{i}]"), o.clone()))
                .collect();
            view.graph(&g, &origins);
            Ok(Outcome::Ok)
        }
        Err(d) => {
            view.diagnostics(&d, source.as_deref());
            Ok(Outcome::Failed)
        }
    }
}
