//! Semantic validation: what the schema cannot say.
//!
//! GUIDs, ARM naming rules, references from clusters to resource groups, duplicates, locations,
//! durations, and secrets written inline. Every check reports all its findings, each pointing at
//! the offending key.

use super::conventions::{EXTENSIONS_TAG, ONBOARDING_ROLES, STACK_TAG};
use super::known::{DISTRIBUTIONS, INFRASTRUCTURES, REGIONS, unknown_value_hint};
use super::loaded::{Files, Loaded, cluster_path};
use super::subscriptions::check;
use super::yaml::{Node, Path, Seg, Value};
use super::{Cloud, Credential, Installer};
use arcplan_engine::diag::{Diagnostic, Diagnostics, did_you_mean};
use std::collections::HashMap;

/// True for a GUID in its usual 8-4-4-4-12 hexadecimal form.
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Why a resource group name breaks ARM's rules, if it does: 1-90 characters; letters,
/// digits, underscores, hyphens, periods and parentheses; not ending in a period.
pub fn resource_group_name_problem(name: &str) -> Option<String> {
    let len = name.chars().count();
    if len == 0 || len > 90 {
        return Some(format!("must be 1 to 90 characters long (it has {len})"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '(' | ')')))
    {
        return Some(format!(
            "may hold only letters, digits, `_`, `-`, `.`, `(` and `)`, not `{c}`"
        ));
    }
    if name.ends_with('.') {
        return Some("must not end with a period".to_owned());
    }
    None
}

/// Why a connected cluster name breaks ARM's rules, if it does: 1-63 characters of letters,
/// digits, `-` and `_`, starting and ending with a letter or digit.
pub fn cluster_name_problem(name: &str) -> Option<String> {
    let len = name.chars().count();
    if len == 0 || len > 63 {
        return Some(format!("must be 1 to 63 characters long (it has {len})"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
    {
        return Some(format!(
            "may hold only ASCII letters, digits, `-` and `_`, not `{c}`"
        ));
    }
    let first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let last = name
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if !first || !last {
        return Some("must start and end with a letter or digit".to_owned());
    }
    None
}

/// Why an Azure location name looks wrong, with the likely intended name.
fn location_problem(loc: &str) -> Option<(String, String)> {
    if loc.is_empty() {
        return Some(("is empty".into(), "write a region such as `eastus`".into()));
    }
    if loc
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return None;
    }
    let normal: String = loc
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    Some((
        format!("`{loc}` is not a region name"),
        format!("regions are written lowercase without spaces: did you mean `{normal}`?"),
    ))
}

/// A warning for a value Azure may not know (new values appear, so never an error).
fn unknown_value(
    loaded: &Loaded,
    path: &Path,
    what: &str,
    value: &str,
    known: &[&str],
    out: &mut Diagnostics,
) {
    if let Some(hint) = unknown_value_hint(value, known) {
        out.push(
            Diagnostic::warning(
                "unknown-value",
                format!("{what} `{value}` is not one Azure is known to accept"),
            )
            .with_location(loaded.location(path))
            .with_key(path.to_string())
            .with_hint(hint),
        );
    }
}

fn tag_problems(
    loaded: &Loaded,
    base: &Path,
    tags: &std::collections::BTreeMap<String, String>,
    out: &mut Diagnostics,
) {
    if tags.len() > 49 {
        out.push(
            Diagnostic::error(
                "invalid-tags",
                format!(
                    "{} tags are declared; Azure allows 50 per resource and arcplan adds `{STACK_TAG}`",
                    tags.len()
                ),
            )
            .with_location(loaded.location(base))
            .with_key(base.to_string()),
        );
    }
    for (k, v) in tags {
        let path = base.key(k);
        let problem = if k.eq_ignore_ascii_case(STACK_TAG) {
            Some(format!(
                "the tag `{STACK_TAG}` is set by arcplan from `stack`"
            ))
        } else if k.eq_ignore_ascii_case(EXTENSIONS_TAG) {
            Some(format!(
                "the tag `{EXTENSIONS_TAG}` is set by arcplan on clusters it installs extensions on"
            ))
        } else if k.is_empty() || k.chars().count() > 512 {
            Some("tag names must be 1 to 512 characters".to_owned())
        } else if let Some(c) = k.chars().find(|c| "<>%&\\?/".contains(*c)) {
            Some(format!("tag names must not contain `{c}`"))
        } else if ["microsoft", "azure", "windows"]
            .iter()
            .any(|p| k.to_ascii_lowercase().starts_with(p))
        {
            Some("tag names must not start with `microsoft`, `azure` or `windows`".to_owned())
        } else if v.chars().count() > 256 {
            Some("tag values must be at most 256 characters".to_owned())
        } else {
            None
        };
        if let Some(p) = problem {
            out.push(
                Diagnostic::error("invalid-tags", format!("tag `{k}`: {p}"))
                    .with_location(loaded.location(&path))
                    .with_key(path.to_string()),
            );
        }
    }
}

/// Runs every semantic check over a schema-valid document.
pub fn validate(loaded: &Loaded) -> Diagnostics {
    let cfg = &loaded.config;
    let mut out = Diagnostics::new();
    let err = |code: &'static str, msg: String, path: &Path| {
        Diagnostic::error(code, msg)
            .with_location(loaded.location(path))
            .with_key(path.to_string())
    };
    let azure = Path::root().key("azure");
    // Region names are known for the public cloud; a custom cloud (Azure Stack Hub) names its own.
    let public = cfg.azure.cloud == Cloud::Named(super::CloudName::AzureCloud);

    // Subscription and tenant.
    let sub = azure.key("subscription");
    if !is_guid(&cfg.azure.subscription) {
        out.push(
            err(
                "invalid-guid",
                format!(
                    "`azure.subscription` is `{}`, which is not a GUID",
                    cfg.azure.subscription
                ),
                &sub,
            )
            .with_hint(
                "a subscription id has the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (8-4-4-4-12 hexadecimal digits); `az account show --query id` prints yours",
            ),
        );
    }
    if let Some(t) = &cfg.azure.tenant
        && !is_guid(t)
    {
        out.push(
            err(
                "invalid-guid",
                format!("`azure.tenant` is `{t}`, which is not a GUID"),
                &azure.key("tenant"),
            )
            .with_hint("a tenant id has the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx; `az account show --query tenantId` prints yours"),
        );
    }
    if let Cloud::Custom(custom) = &cfg.azure.cloud
        && custom.resource_manager.trim_end_matches('/') == "https:"
    {
        out.push(err(
            "invalid-format",
            "`azure.cloud.resourceManager` has no host".to_owned(),
            &azure.key("cloud").key("resourceManager"),
        ));
    }
    if let Credential::Detailed(spec) = &cfg.azure.credential {
        use super::CredentialKind as K;
        let cred = azure.key("credential");
        if spec.kind != K::ServicePrincipal && spec.client_secret.is_some() {
            out.push(
                Diagnostic::warning(
                    "ignored-setting",
                    "`clientSecret` is used only by `kind: servicePrincipal`",
                )
                .with_location(loaded.location(&cred))
                .with_key(cred.to_string()),
            );
        }
    }

    // Resource providers.
    let mut seen_ns: HashMap<String, usize> = HashMap::new();
    for (i, ns) in cfg.resource_providers.iter().enumerate() {
        let path = Path::root().key("resourceProviders").index(i);
        let well_formed = ns.split('.').count() >= 2
            && ns.split('.').all(|p| {
                p.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && p.chars().all(|c| c.is_ascii_alphanumeric())
            });
        if !well_formed {
            out.push(
                err(
                    "invalid-name",
                    format!("`{ns}` is not a resource provider namespace"),
                    &path,
                )
                .with_hint("namespaces look like `Microsoft.Kubernetes`"),
            );
        }
        if let Some(first) = seen_ns.insert(ns.to_ascii_lowercase(), i) {
            out.push(err(
                "duplicate-name",
                format!(
                    "resource provider `{ns}` is listed twice (first at resourceProviders[{first}])"
                ),
                &path,
            ));
        }
    }
    if !cfg.clusters.is_empty() && !seen_ns.contains_key("microsoft.kubernetes") {
        out.push(
            Diagnostic::warning(
                "missing-provider",
                "clusters are declared but `Microsoft.Kubernetes` is not in `resourceProviders`; creating connected clusters fails with MissingSubscriptionRegistration unless it is already registered",
            )
            .with_location(loaded.location(&Path::root().key("resourceProviders")))
            .with_key("resourceProviders")
            .with_hint("add Microsoft.Kubernetes, Microsoft.KubernetesConfiguration and Microsoft.ExtendedLocation"),
        );
    }

    // Access.
    if let Some(access) = &cfg.access {
        let path = Path::root().key("access").key("requireAnyRole");
        if access.require_any_role.is_empty() {
            out.push(
                err(
                    "invalid-value",
                    "`access.requireAnyRole` is empty".to_owned(),
                    &path,
                )
                .with_hint(format!(
                    "list at least one role, e.g. {}",
                    ONBOARDING_ROLES.join(", ")
                )),
            );
        }
        for (i, role) in access.require_any_role.iter().enumerate() {
            if ONBOARDING_ROLES.contains(&role.as_str()) {
                continue;
            }
            if let Some(s) = did_you_mean(role, ONBOARDING_ROLES.iter().copied()) {
                out.push(
                    Diagnostic::warning(
                        "unknown-role",
                        format!("`{role}` is not a built-in onboarding role; it is treated as a custom role name"),
                    )
                    .with_location(loaded.location(&path.index(i)))
                    .with_key(path.index(i).to_string())
                    .with_hint(format!("did you mean `{s}`?")),
                );
            }
        }
    }

    // Resource groups.
    let mut groups: HashMap<String, usize> = HashMap::new();
    for (i, g) in cfg.resource_groups.iter().enumerate() {
        let base = Path::root().key("resourceGroups").index(i);
        if let Some(p) = resource_group_name_problem(&g.name) {
            out.push(err(
                "invalid-name",
                format!("resource group name `{}` {p}", g.name),
                &base.key("name"),
            ));
        }
        check::subscription_field(&mut out, loaded, g.subscription.as_deref(), &base);
        let key = format!(
            "{}/{}",
            cfg.group_subscription(g).to_ascii_lowercase(),
            g.name.to_ascii_lowercase()
        );
        if let Some(first) = groups.insert(key, i) {
            out.push(
                err(
                    "duplicate-name",
                    format!(
                        "resource group `{}` is declared twice in subscription {} (first at resourceGroups[{first}]); names are case-insensitive in Azure",
                        g.name,
                        cfg.group_subscription(g)
                    ),
                    &base.key("name"),
                ),
            );
        }
        match &g.location {
            None if !g.existing => out.push(
                err(
                    "missing-location",
                    format!("resource group `{}` has no `location`", g.name),
                    &base,
                )
                .with_hint("add `location: eastus` (or the region you use), or `existing: true` if the group exists already"),
            ),
            Some(l) => {
                if let Some((msg, hint)) = location_problem(l) {
                    out.push(err("invalid-location", format!("location {msg}"), &base.key("location")).with_hint(hint));
                } else if public {
                    unknown_value(loaded, &base.key("location"), "location", l, REGIONS, &mut out);
                }
            }
            None => {}
        }
        if g.existing && !g.tags.is_empty() {
            out.push(
                Diagnostic::warning(
                    "ignored-setting",
                    format!(
                        "tags of the existing resource group `{}` are not managed",
                        g.name
                    ),
                )
                .with_location(loaded.location(&base.key("tags")))
                .with_key(base.key("tags").to_string()),
            );
        }
        tag_problems(loaded, &base.key("tags"), &g.tags, &mut out);
    }

    // Clusters.
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut contexts: HashMap<(Option<String>, Option<String>), usize> = HashMap::new();
    for (i, c) in cfg.clusters.iter().enumerate() {
        let base = cluster_path(i);
        if let Some(p) = cluster_name_problem(&c.name) {
            out.push(err(
                "invalid-name",
                format!("cluster name `{}` {p}", c.name),
                &base.key("name"),
            ));
        }
        if let Some(first) = names.insert(c.name.to_ascii_lowercase(), i) {
            out.push(
                err(
                    "duplicate-name",
                    format!("cluster `{}` is declared twice (first at clusters[{first}])", c.name),
                    &base.key("name"),
                )
                .with_hint("cluster names are their addresses (arc.connectedCluster.NAME) and must be unique in a file"),
            );
        }
        check::subscription_field(&mut out, loaded, c.subscription.as_deref(), &base);
        check::group_reference(
            &mut out,
            loaded,
            &format!("cluster `{}`", c.name),
            c.subscription.as_deref(),
            &c.resource_group,
            &base,
        );
        match (&c.location, cfg.cluster_location(c)) {
            (Some(l), _) => {
                if let Some((msg, hint)) = location_problem(l) {
                    out.push(
                        err(
                            "invalid-location",
                            format!("location {msg}"),
                            &base.key("location"),
                        )
                        .with_hint(hint),
                    );
                } else if public {
                    unknown_value(
                        loaded,
                        &base.key("location"),
                        "location",
                        l,
                        REGIONS,
                        &mut out,
                    );
                }
            }
            (None, Some(_)) => {}
            (None, None) => out.push(
                err(
                    "missing-location",
                    format!(
                        "cluster `{}` has no `location`, and its resource group declares none",
                        c.name
                    ),
                    &base,
                )
                .with_hint("add `location:` to the cluster (connected clusters need a region)"),
            ),
        }
        tag_problems(loaded, &base.key("tags"), &c.tags, &mut out);
        unknown_value(
            loaded,
            &base.key("distribution"),
            "distribution",
            &c.distribution,
            DISTRIBUTIONS,
            &mut out,
        );
        unknown_value(
            loaded,
            &base.key("infrastructure"),
            "infrastructure",
            &c.infrastructure,
            INFRASTRUCTURES,
            &mut out,
        );
        let target = (c.kubeconfig.clone(), c.context.clone());
        if let Some(first) = contexts.insert(target, i) {
            out.push(
                err(
                    "duplicate-cluster-target",
                    format!(
                        "cluster `{}` uses the same kubeconfig and context as clusters[{first}]; one Kubernetes cluster can be connected only once",
                        c.name
                    ),
                    &base,
                )
                .with_hint("set `kubeconfig:` and/or `context:` to the cluster you mean"),
            );
        }
        let agents = base.key("agents");
        for (key, value) in [
            ("timeout", &c.agents.timeout),
            ("connectTimeout", &c.agents.connect_timeout),
        ] {
            match humantime::parse_duration(value) {
                Ok(d) if d.is_zero() => out.push(err(
                    "invalid-duration",
                    format!("`agents.{key}` must be longer than zero"),
                    &agents.key(key),
                )),
                Ok(d) if d > std::time::Duration::from_secs(24 * 3600) => out.push(
                    err(
                        "invalid-duration",
                        format!("`agents.{key}` of {} is longer than a day", value),
                        &agents.key(key),
                    )
                    .with_hint("agents are normally ready within 20 minutes"),
                ),
                Ok(_) => {}
                Err(e) => out.push(
                    err(
                        "invalid-duration",
                        format!("`agents.{key}`: {e}"),
                        &agents.key(key),
                    )
                    .with_hint("write a duration like `20m`, `90s` or `1h30m`"),
                ),
            }
        }
        if c.agents.manifests.is_some() && c.agents.installer != Installer::Manifests {
            out.push(
                err(
                    "conflicting-settings",
                    "`agents.manifests` is used only with `installer: manifests`".to_owned(),
                    &agents.key("manifests"),
                )
                .with_hint("set `installer: manifests`, or remove `manifests:`"),
            );
        }
        super::extensions::check(loaded, c, &base, &mut out);
        super::flux::check(loaded, c, &base, &mut out);
        if let Some(proxy) = &c.agents.proxy {
            for (key, url) in [
                ("httpProxy", &proxy.http_proxy),
                ("httpsProxy", &proxy.https_proxy),
            ] {
                if let Some(url) = url
                    && !(url.starts_with("http://") || url.starts_with("https://"))
                {
                    out.push(err(
                        "invalid-format",
                        format!("`agents.proxy.{key}` must be an http:// or https:// URL"),
                        &agents.key("proxy").key(key),
                    ));
                }
            }
        }
    }
    super::extensions::check_custom_locations(loaded, &mut out);
    out
}

/// The keys whose string value is a secret (`credentials` only outside `azure`, where
/// `credential` names the credential kind). Renderers mask these keys' values in every snippet.
pub const SECRET_KEYS: &[&str] = &["clientSecret", "certificate", "password", "credentials"];

/// Finds secrets written inline: secret-bearing keys holding a plain string, and proxy URLs
/// with a password. The value itself is never put in the message.
/// Each diagnostic marks the secret's bytes in `text` (the source of `tree`), so renderers hide
/// the value in snippets.
pub fn inline_secrets(tree: &Node, files: &Files, text: &str) -> Diagnostics {
    let mut out = Diagnostics::new();
    walk(tree, &Path::root(), &mut |path, node| {
        let key = path.last_key().unwrap_or_default();
        let location = || Some(files.location(tree.pos_of(path)));
        let Value::Str(text_value) = &node.value else {
            return;
        };
        let in_credential = path.0.first() == Some(&Seg::Key("azure".into()));
        let secret_key = SECRET_KEYS.contains(&key) && (key != "credentials" || !in_credential);
        if secret_key {
            out.push(
                Diagnostic::error(
                    "inline-secret",
                    format!("`{path}` holds a secret written inline; secrets never go in the file"),
                )
                .with_location(location())
                .with_key(path.to_string())
                .with_secret_span(node.bytes.clone())
                .with_hint(format!(
                    "write `{key}: {{ env: VARIABLE }}` or `{key}: {{ file: PATH }}`, and rotate the secret if this file was shared"
                )),
            );
        } else if matches!(key, "httpProxy" | "httpsProxy") && url_has_password(text_value) {
            out.push(
                Diagnostic::error(
                    "inline-secret",
                    format!("`{path}` has a password in the URL; secrets never go in the file"),
                )
                .with_location(location())
                .with_key(path.to_string())
                .with_secret_span(password_span(text, node, url_password(text_value)))
                .with_hint(
                    "remove `user:password@` from the URL and use `credentials: { env: VARIABLE }`",
                ),
            );
        }
    });
    out
}

fn url_has_password(url: &str) -> bool {
    url_password(url).is_some()
}

/// The password of `scheme://user:password@host`, if the URL has one.
fn url_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let (userinfo, _) = authority.rsplit_once('@')?;
    userinfo.split_once(':').map(|(_, p)| p)
}

/// The bytes of a URL's password in the source: just the password when it is written plainly,
/// else the whole value (quoted or escaped text cannot be matched safely).
fn password_span(
    text: &str,
    node: &Node,
    password: Option<&str>,
) -> Option<std::ops::Range<usize>> {
    let whole = node.bytes.clone()?;
    let written = text.get(whole.clone())?;
    match password.filter(|p| !p.is_empty()) {
        Some(p) => match (written.find(p), written.rfind(p)) {
            (Some(a), Some(b)) if a == b => Some(whole.start + a..whole.start + a + p.len()),
            _ => Some(whole),
        },
        None => Some(whole),
    }
}

fn walk(node: &Node, path: &Path, f: &mut dyn FnMut(&Path, &Node)) {
    f(path, node);
    match &node.value {
        Value::Map(entries) => {
            for (k, v) in entries {
                walk(v, &path.key(&k.name), f);
            }
        }
        Value::Seq(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &path.index(i), f);
            }
        }
        _ => {}
    }
}
