//! `arcplan validate`.

use super::{Error, Outcome};
use crate::cli::ValidateArgs;
use crate::views::ExpandedCluster;
use crate::views::View;
use arcplan_config::{Loaded, load_file};

pub fn run(args: &ValidateArgs, view: &View) -> Result<Outcome, Error> {
    let path = args.file.path();
    let mut expanded = None;
    let (diags, resources) = match load_file(&path) {
        Ok(loaded) => {
            if args.expand {
                expanded = Some(expansion(&loaded));
            }
            match arcplan_providers::kinds::lower(&loaded.config) {
                Ok(g) => (loaded.warnings, Some(g.len())),
                Err(mut d) => {
                    d.extend(loaded.warnings);
                    (d, None)
                }
            }
        }
        Err(d) => (d, None),
    };
    let source = arcplan_config::read_source(&path);
    view.validation(
        &diags,
        source.as_deref(),
        resources,
        &path,
        expanded.as_deref(),
    );
    Ok(if diags.has_errors() {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}

/// Every cluster of the loaded file, after expansion, with where it came from: its inventory
/// row (or kubeconfig context), else its entry in the file.
fn expansion(loaded: &Loaded) -> Vec<ExpandedCluster> {
    let cfg = &loaded.config;
    cfg.clusters
        .iter()
        .enumerate()
        .map(|(i, c)| ExpandedCluster {
            name: c.name.clone(),
            resource_group: c.resource_group.clone(),
            location: cfg.cluster_location(c).map(str::to_owned),
            context: c.context.clone(),
            origin: loaded.origins.get(&i).cloned().unwrap_or_else(|| {
                loaded
                    .location(&arcplan_config::yaml::Path::root().key("clusters").index(i))
                    .map(|l| format!("{}:{}", l.file, l.line))
                    .unwrap_or_default()
            }),
            cluster: serde_json::to_value(c).unwrap_or_default(),
        })
        .collect()
}
