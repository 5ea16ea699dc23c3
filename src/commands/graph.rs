//! `arcplan graph`.

use super::{Error, Outcome};
use crate::cli::{GraphArgs, GraphFormat};
use crate::views::{Output, diagnostics, graph};
use arcplan_config::load_file;

pub fn run(args: &GraphArgs, out: &Output) -> Result<Outcome, Error> {
    let path = args.file.path();
    let source = arcplan_config::read_source(&path);
    let loaded = match load_file(&path) {
        Ok(l) => l,
        Err(d) => {
            diagnostics::print(out, &d, source.as_deref());
            return Ok(Outcome::Failed);
        }
    };
    diagnostics::print(out, &loaded.warnings, source.as_deref());
    let g = match arcplan_providers::kinds::lower(&loaded.config) {
        Ok(g) => g,
        Err(d) => {
            diagnostics::print(out, &d, source.as_deref());
            return Ok(Outcome::Failed);
        }
    };
    let text = match args.format {
        GraphFormat::Dot => graph::dot(&g),
        GraphFormat::Mermaid => graph::mermaid(&g),
    };
    out.stdout(&text);
    Ok(Outcome::Ok)
}
