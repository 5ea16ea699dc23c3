//! The lowering of `arc.fluxConfiguration`: a configuration's attributes from the file, and the
//! cluster's `microsoft.flux` extension it runs on (the declared one, or one added implicitly).

use super::{Attributes, BucketSource, GitRepository, Kustomization, OciSource, address};
use crate::azure::kinds::{connected_cluster, extension};
use arcplan_config::conventions::{
    FLUX_DEFAULT_BRANCH, FLUX_EXTENSION_TYPE, FLUX_IMPLICIT_EXTENSION, FLUX_RELEASE_NAMESPACE,
};
use arcplan_config::{Cluster, Config, FluxConfiguration, FluxScope, FluxSourceKind};
use arcplan_engine::address::Address;
use arcplan_engine::graph::{GraphBuilder, Mode};
use std::collections::BTreeMap;

/// The `microsoft.flux` extension the file declares on cluster `c`, if any.
fn declared_flux_extension(c: &Cluster) -> Option<&arcplan_config::Extension> {
    c.extensions
        .iter()
        .find(|e| e.extension_type.eq_ignore_ascii_case(FLUX_EXTENSION_TYPE))
}

/// The address of the implicit `microsoft.flux` extension of cluster `c` (`None`: it declares
/// one, or no Flux configuration).
pub fn implicit_extension(c: &Cluster) -> Option<Address> {
    (!c.flux_configurations.is_empty() && declared_flux_extension(c).is_none())
        .then(|| extension::address(&c.name, FLUX_IMPLICIT_EXTENSION))
}

/// What role checks cover for cluster `c`: its Flux configurations and the implicit extension.
pub fn covered(c: &Cluster) -> Vec<Address> {
    implicit_extension(c)
        .into_iter()
        .chain(
            c.flux_configurations
                .iter()
                .map(|f| address(&c.name, &f.name)),
        )
        .collect()
}

fn seconds(d: &Option<String>) -> Option<u64> {
    d.as_deref()
        .and_then(|d| humantime::parse_duration(d).ok())
        .map(|d| d.as_secs())
}

/// The attributes of configuration `f` of cluster `c`.
pub fn attributes_of(cfg: &Config, c: &Cluster, f: &FluxConfiguration) -> Attributes {
    use base64::Engine;
    let git = f.git_repository.as_ref().map(|g| {
        let reference = [
            ("branch", &g.branch),
            ("tag", &g.tag),
            ("semver", &g.semver),
            ("commit", &g.commit),
        ]
        .into_iter()
        .find_map(|(k, v)| v.clone().map(|v| (k.to_owned(), v)))
        .unwrap_or_else(|| ("branch".to_owned(), FLUX_DEFAULT_BRANCH.to_owned()));
        GitRepository {
            url: g.url.clone(),
            repository_ref: BTreeMap::from([reference]),
            sync_interval_in_seconds: seconds(&g.sync_interval),
            timeout_in_seconds: seconds(&g.timeout),
            https_user: g.https_user.clone(),
            ssh_known_hosts: g
                .ssh_known_hosts
                .as_ref()
                .map(|h| base64::engine::general_purpose::STANDARD.encode(h)),
        }
    });
    let bucket = f.bucket.as_ref().map(|b| BucketSource {
        url: b.url.clone(),
        bucket_name: b.bucket_name.clone(),
        insecure: b.insecure,
        access_key: b.access_key.clone(),
        sync_interval_in_seconds: seconds(&b.sync_interval),
        timeout_in_seconds: seconds(&b.timeout),
    });
    let oci = f.oci_repository.as_ref().map(|o| {
        let reference = [
            ("tag", &o.tag),
            ("semver", &o.semver),
            ("digest", &o.digest),
        ]
        .into_iter()
        .find_map(|(k, v)| v.clone().map(|v| (k.to_owned(), v)))
        .unwrap_or_else(|| ("tag".to_owned(), "latest".to_owned()));
        OciSource {
            url: o.url.clone(),
            repository_ref: BTreeMap::from([reference]),
            insecure: o.insecure,
            sync_interval_in_seconds: seconds(&o.sync_interval),
            timeout_in_seconds: seconds(&o.timeout),
        }
    });
    let (source_kind, git, bucket, oci) = match f.source_kind {
        FluxSourceKind::GitRepository => ("GitRepository", git, None, None),
        FluxSourceKind::Bucket => ("Bucket", None, bucket, None),
        FluxSourceKind::OciRepository => ("OCIRepository", None, None, oci),
    };
    Attributes {
        subscription_id: cfg.cluster_subscription(c).to_owned(),
        resource_group: c.resource_group.clone(),
        cluster: c.name.clone(),
        name: f.name.clone(),
        scope: match f.scope {
            FluxScope::Cluster => "cluster",
            FluxScope::Namespace => "namespace",
        }
        .to_owned(),
        namespace: f.namespace.clone(),
        source_kind: source_kind.to_owned(),
        suspend: f.suspend,
        git_repository: git,
        bucket,
        oci_repository: oci,
        kustomizations: f
            .kustomizations
            .iter()
            .map(|(n, k)| {
                (
                    n.clone(),
                    Kustomization {
                        path: k.path.clone().unwrap_or_default(),
                        depends_on: k.depends_on.clone(),
                        prune: k.prune,
                        force: k.force,
                        wait: k.wait,
                        sync_interval_in_seconds: seconds(&k.sync_interval),
                        timeout_in_seconds: seconds(&k.timeout),
                        retry_interval_in_seconds: seconds(&k.retry_interval),
                    },
                )
            })
            .collect(),
        configuration_protected_settings: f.configuration_protected_settings.clone(),
    }
}

/// One node per declared Flux configuration, after the cluster's `microsoft.flux` extension
/// (the declared one, or one added here).
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    for (i, c) in cfg.clusters.iter().enumerate() {
        if c.flux_configurations.is_empty() {
            continue;
        }
        let flux = match declared_flux_extension(c) {
            Some(e) => extension::address(&c.name, &e.name),
            None => {
                let attrs = extension::Attributes {
                    subscription_id: cfg.cluster_subscription(c).to_owned(),
                    resource_group: c.resource_group.clone(),
                    cluster: c.name.clone(),
                    name: FLUX_IMPLICIT_EXTENSION.to_owned(),
                    extension_type: FLUX_EXTENSION_TYPE.to_owned(),
                    release_train: None,
                    version: None,
                    auto_upgrade_minor_version: true,
                    scope: extension::Scope::Cluster {
                        release_namespace: Some(FLUX_RELEASE_NAMESPACE.to_owned()),
                    },
                    configuration_settings: BTreeMap::new(),
                    configuration_protected_settings: BTreeMap::new(),
                    added_implicitly: Some(format!(
                        "added implicitly: the Flux configurations of cluster {} run on a {FLUX_EXTENSION_TYPE} extension and the file declares none (declare one under `extensions` to manage it yourself)",
                        c.name
                    )),
                };
                extension::add_node(
                    cfg,
                    b,
                    &attrs,
                    format!(
                        "clusters[{i}].fluxConfigurations (added implicitly: the {FLUX_EXTENSION_TYPE} extension they run on)"
                    ),
                )
            }
        };
        for (j, f) in c.flux_configurations.iter().enumerate() {
            let a = address(&c.name, &f.name);
            b.node(
                a.clone(),
                Mode::Managed,
                &attributes_of(cfg, c, f),
                format!("clusters[{i}].fluxConfigurations[{j}]"),
            );
            b.edge(&a, &connected_cluster::address(&c.name));
            b.edge(&a, &flux);
        }
    }
}
