//! `arcplan validate`.

use super::{Error, Outcome};
use crate::cli::ValidateArgs;
use crate::views::{Output, diagnostics};
use arcplan_config::load_file;
use arcplan_engine::diag::Diagnostics;

pub fn run(args: &ValidateArgs, out: &Output) -> Result<Outcome, Error> {
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
    if args.json {
        out.stdout(&diagnostics::json_report(&diags, resources));
    } else {
        diagnostics::print(out, &diags, source.as_deref());
        if !diags.has_errors() {
            let n = resources.unwrap_or(0);
            out.success(&format!(
                "Success! {} is valid ({n} resources and checks).",
                path.display()
            ));
        }
    }
    Ok(if has_errors(&diags) {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}

fn has_errors(d: &Diagnostics) -> bool {
    d.has_errors()
}
