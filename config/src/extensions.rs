//! Semantic checks of a cluster's day-2 declarations: its `features` (workload identity needs
//! the OIDC issuer, Azure RBAC group ids, pinned agents when auto-upgrade is off) and its
//! `extensions` (names, the version and release-train rules of
//! `Microsoft.KubernetesConfiguration/extensions`, scope namespaces, settings).

use super::conventions::EXTENSION_SETTINGS_PREFIX as RESERVED_PREFIX;
use super::known::EXTENSION_TYPES;
use super::loaded::Loaded;
use super::subscriptions::check;
use super::yaml::Path;
use super::{Cluster, ExtensionScope};
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use std::collections::HashMap;

/// Why an extension name is not one ARM accepts (it is also the Helm release's name).
pub fn extension_name_problem(name: &str) -> Option<String> {
    let len = name.chars().count();
    if len == 0 || len > 253 {
        return Some(format!("must be 1 to 253 characters long (it has {len})"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.')))
    {
        return Some(format!(
            "may hold only lowercase letters, digits, `-` and `.`, not `{c}`"
        ));
    }
    let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !ends(name.chars().next()) || !ends(name.chars().last()) {
        return Some("must start and end with a letter or digit".into());
    }
    None
}

/// Every problem of cluster `c`'s extensions (`base`: the cluster's path).
pub(crate) fn check(loaded: &Loaded, c: &Cluster, base: &Path, out: &mut Diagnostics) {
    let err = |code: &'static str, msg: String, path: &Path| {
        Diagnostic::error(code, msg)
            .with_location(loaded.location(path))
            .with_key(path.to_string())
    };
    if c.features.workload_identity && !c.features.oidc_issuer {
        out.push(
            err(
                "conflicting-settings",
                format!(
                    "cluster `{}` enables workload identity without the OIDC issuer it needs",
                    c.name
                ),
                &base.key("features").key("workloadIdentity"),
            )
            .with_hint("add `oidcIssuer: true` under `features`"),
        );
    }
    for (k, id) in c
        .features
        .azure_rbac
        .iter()
        .flat_map(|r| r.admin_group_object_ids.iter().enumerate())
    {
        if uuid_like(id).is_none() {
            out.push(err(
                "invalid-format",
                format!("`{id}` is not an Entra group object id (a GUID)"),
                &base
                    .key("features")
                    .key("azureRbac")
                    .key("adminGroupObjectIds")
                    .index(k),
            ));
        }
    }
    let features = base.key("features");
    if let Some(cl) = &c.features.custom_locations {
        if uuid_like(&cl.oid).is_none() {
            out.push(
                err(
                    "invalid-format",
                    format!(
                        "`{}` is not the object id (a GUID) of the Custom Locations service principal",
                        cl.oid
                    ),
                    &features.key("customLocations").key("oid"),
                )
                .with_hint("`az ad sp show --id bc313c14-388c-4e7d-a58e-70017303ee3b --query id -o tsv` prints it"),
            );
        }
        if c.features.cluster_connect != Some(true) {
            out.push(
                err(
                    "conflicting-settings",
                    format!(
                        "cluster `{}` enables the custom-locations feature without cluster-connect, which it needs",
                        c.name
                    ),
                    &features.key("customLocations"),
                )
                .with_hint("add `clusterConnect: true` under `features` (as `az connectedk8s enable-features --features cluster-connect custom-locations` does)"),
            );
        }
    }
    if let Some(pl) = &c.features.private_link {
        if !pl
            .scope
            .to_ascii_lowercase()
            .contains("/providers/microsoft.hybridcompute/privatelinkscopes/")
        {
            out.push(err(
                "invalid-format",
                format!(
                    "`{}` is not the ARM id of an Azure Arc Private Link Scope (…/providers/Microsoft.HybridCompute/privateLinkScopes/NAME)",
                    pl.scope
                ),
                &features.key("privateLink").key("scope"),
            ));
        }
        if c.features.cluster_connect == Some(true) {
            out.push(
                err(
                    "conflicting-settings",
                    format!(
                        "cluster `{}` enables cluster-connect with private link, which does not offer it",
                        c.name
                    ),
                    &features.key("clusterConnect"),
                )
                .with_hint("remove `clusterConnect` (and `customLocations`), or `privateLink`"),
            );
        }
    }
    if c.agents.auto_upgrade && c.agents.version.is_some() {
        out.push(
            Diagnostic::warning(
                "unpinned-agents",
                format!(
                    "cluster `{}` names `agents.version` with auto-upgrade on: it is the version of the first install only, Azure Arc upgrades the agents after that",
                    c.name
                ),
            )
            .with_location(loaded.location(&base.key("agents").key("version")))
            .with_key(base.key("agents").key("version").to_string())
            .with_hint("add `autoUpgrade: false` to pin the agents (arcAgentProfile.desiredAgentVersion; bumping `version` is then a planned upgrade)"),
        );
    }
    if !c.agents.auto_upgrade && c.agents.version.is_none() {
        out.push(
            Diagnostic::warning(
                "unpinned-agents",
                format!(
                    "cluster `{}` turns agent auto-upgrade off without pinning `agents.version`: the agents stay on whatever version is installed",
                    c.name
                ),
            )
            .with_location(loaded.location(&base.key("agents").key("autoUpgrade")))
            .with_key(base.key("agents").key("autoUpgrade").to_string())
            .with_hint("set `agents.version` to the version to run (an upgrade is then a planned update)"),
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (j, e) in c.extensions.iter().enumerate() {
        let at = base.key("extensions").index(j);
        if let Some(p) = extension_name_problem(&e.name) {
            out.push(err(
                "invalid-name",
                format!("extension name `{}` {p}", e.name),
                &at.key("name"),
            ));
        }
        if let Some(first) = names.insert(e.name.as_str(), j) {
            out.push(
                err(
                    "duplicate-name",
                    format!(
                        "extension `{}` is declared twice on cluster `{}` (first at extensions[{first}])",
                        e.name, c.name
                    ),
                    &at.key("name"),
                )
                .with_hint("an extension's name is unique per cluster"),
            );
        }
        if let Some(hint) = super::known::unknown_value_hint(&e.extension_type, EXTENSION_TYPES) {
            out.push(
                Diagnostic::warning(
                    "unknown-value",
                    format!(
                        "extension type `{}` is not one Azure is known to offer",
                        e.extension_type
                    ),
                )
                .with_location(loaded.location(&at.key("extensionType")))
                .with_key(at.key("extensionType").to_string())
                .with_hint(hint),
            );
        }
        if e.version.is_some() && e.auto_upgrade_minor_version {
            out.push(
                err(
                    "conflicting-settings",
                    format!(
                        "extension `{}` pins `version` but upgrades itself (`autoUpgradeMinorVersion` is true by default)",
                        e.name
                    ),
                    &at.key("version"),
                )
                .with_hint("add `autoUpgradeMinorVersion: false` to pin the version, or remove `version`"),
            );
        }
        if e.release_train.is_some() && !e.auto_upgrade_minor_version {
            out.push(
                err(
                    "conflicting-settings",
                    format!(
                        "extension `{}` names a `releaseTrain`, which is used only with `autoUpgradeMinorVersion: true`",
                        e.name
                    ),
                    &at.key("releaseTrain"),
                )
                .with_hint("remove `releaseTrain`, or let the extension upgrade itself"),
            );
        }
        let wrong_namespace = match e.scope {
            ExtensionScope::Cluster => e.target_namespace.as_ref().map(|_| "targetNamespace"),
            ExtensionScope::Namespace => e.release_namespace.as_ref().map(|_| "releaseNamespace"),
        };
        if let Some(key) = wrong_namespace {
            let (scope, right) = match e.scope {
                ExtensionScope::Cluster => ("cluster", "releaseNamespace"),
                ExtensionScope::Namespace => ("namespace", "targetNamespace"),
            };
            out.push(
                err(
                    "conflicting-settings",
                    format!(
                        "extension `{}` has `scope: {scope}`, which takes `{right}`, not `{key}`",
                        e.name
                    ),
                    &at.key(key),
                )
                .with_hint(format!("rename `{key}` to `{right}`, or change `scope`")),
            );
        }
        for k in e.configuration_protected_settings.keys() {
            if e.configuration_settings.contains_key(k) {
                out.push(
                    err(
                        "conflicting-settings",
                        format!(
                            "extension `{}` sets `{k}` both as a configuration setting and as a protected one",
                            e.name
                        ),
                        &at.key("configurationProtectedSettings").key(k),
                    )
                    .with_hint("keep it only under `configurationProtectedSettings` if it is a secret"),
                );
            }
        }
        for k in e.configuration_settings.keys() {
            if k.starts_with(RESERVED_PREFIX) {
                out.push(
                    err(
                        "reserved-key",
                        format!(
                            "extension `{}` sets `{k}`: settings under `{RESERVED_PREFIX}` are arcplan's own (the stack that owns the extension)",
                            e.name
                        ),
                        &at.key("configurationSettings").key(k),
                    )
                    .with_hint("rename the setting"),
                );
            }
        }
    }
}

/// `Some(())` when `s` is a GUID (8-4-4-4-12 hexadecimal digits).
fn uuid_like(s: &str) -> Option<()> {
    let parts: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    (parts.len() == 5
        && parts
            .iter()
            .zip(lens)
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit())))
    .then_some(())
}

/// Every problem of the file's custom locations: the host cluster and its extensions must be
/// declared, `Microsoft.ExtendedLocation` registered, the namespace a Kubernetes name.
pub(crate) fn check_custom_locations(loaded: &Loaded, out: &mut Diagnostics) {
    let cfg = &loaded.config;
    let err = |code: &'static str, msg: String, path: &Path| {
        Diagnostic::error(code, msg)
            .with_location(loaded.location(path))
            .with_key(path.to_string())
    };
    let registered = cfg
        .resource_providers
        .iter()
        .any(|p| p.eq_ignore_ascii_case("Microsoft.ExtendedLocation"));
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, l) in cfg.custom_locations.iter().enumerate() {
        let at = Path::root().key("customLocations").index(i);
        if let Some(first) = names.insert(l.name.to_ascii_lowercase(), i) {
            out.push(err(
                "duplicate-name",
                format!(
                    "custom location `{}` is declared twice (first at customLocations[{first}])",
                    l.name
                ),
                &at.key("name"),
            ));
        }
        if !registered {
            out.push(
                err(
                    "missing-registration",
                    format!(
                        "custom location `{}` needs the resource provider Microsoft.ExtendedLocation, which `resourceProviders` does not register",
                        l.name
                    ),
                    &at,
                )
                .with_hint("add `Microsoft.ExtendedLocation` to `resourceProviders`"),
            );
        }
        check::subscription_field(out, loaded, l.subscription.as_deref(), &at);
        check::group_reference(
            out,
            loaded,
            &format!("custom location `{}`", l.name),
            l.subscription.as_deref(),
            &l.resource_group,
            &at,
        );
        if !is_dns_label(&l.namespace) {
            out.push(err(
                "invalid-name",
                format!(
                    "namespace `{}` must be a Kubernetes name: 1 to 63 lowercase letters, digits and `-`, starting and ending with a letter or digit",
                    l.namespace
                ),
                &at.key("namespace"),
            ));
        }
        let Some(host) = cfg
            .clusters
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(&l.cluster))
        else {
            out.push(
                err(
                    "undeclared-cluster",
                    format!(
                        "custom location `{}` is hosted by cluster `{}`, which is not declared",
                        l.name, l.cluster
                    ),
                    &at.key("cluster"),
                )
                .with_hint("name a cluster of `clusters`"),
            );
            continue;
        };
        if host.features.custom_locations.is_none() {
            out.push(
                err(
                    "missing-feature",
                    format!(
                        "custom location `{}` is hosted by cluster `{}`, whose agents do not have the custom-locations feature",
                        l.name, host.name
                    ),
                    &at.key("cluster"),
                )
                .with_hint(format!(
                    "add `clusterConnect: true` and `customLocations: {{ oid: ... }}` under cluster `{}`'s `features` (`az connectedk8s enable-features --features cluster-connect custom-locations`)",
                    host.name
                )),
            );
        }
        if l.extensions.is_empty() {
            out.push(
                err(
                    "missing-extensions",
                    format!("custom location `{}` names no extension", l.name),
                    &at.key("extensions"),
                )
                .with_hint("name the cluster extensions whose services it offers"),
            );
        }
        for (j, e) in l.extensions.iter().enumerate() {
            if !host.extensions.iter().any(|x| x.name == *e) {
                out.push(
                    err(
                        "undeclared-extension",
                        format!(
                            "custom location `{}` names extension `{e}`, which cluster `{}` does not declare",
                            l.name, host.name
                        ),
                        &at.key("extensions").index(j),
                    )
                    .with_hint("declare it under the cluster's `extensions`, or remove it here"),
                );
            }
        }
    }
}

fn is_dns_label(s: &str) -> bool {
    let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (1..=63).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && ends(s.chars().next())
        && ends(s.chars().last())
}
