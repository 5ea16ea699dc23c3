//! Semantic checks of a cluster's `fluxConfigurations`: names, the Git repository and its one
//! reference, kustomizations and their `dependsOn`, durations, protected settings, and the
//! name of the implicit `microsoft.flux` extension.

use super::conventions::{FLUX_EXTENSION_TYPE, FLUX_IMPLICIT_EXTENSION};
use super::extensions::extension_name_problem;
use super::known::{FLUX_BUCKET_PROTECTED_SETTINGS, FLUX_PROTECTED_SETTINGS};
use super::loaded::Loaded;
use super::yaml::Path;
use super::{Cluster, FluxConfiguration, FluxScope, FluxSourceKind};
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use std::collections::{BTreeMap, HashMap};

const DURATION_HINT: &str = "write a duration like `10m`, `90s` or `1h30m`";

/// Why a namespace is not a Kubernetes namespace name (an RFC 1123 label).
fn namespace_problem(ns: &str) -> Option<String> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    (!ok).then(|| {
        "must be 1 to 63 lowercase letters, digits and `-`, starting and ending with a letter or digit"
            .to_owned()
    })
}

/// Every problem of cluster `c`'s Flux configurations (`base`: the cluster's path).
pub(crate) fn check(loaded: &Loaded, c: &Cluster, base: &Path, out: &mut Diagnostics) {
    let err = |code: &'static str, msg: String, path: &Path| {
        Diagnostic::error(code, msg)
            .with_location(loaded.location(path))
            .with_key(path.to_string())
    };
    let declares_flux = c
        .extensions
        .iter()
        .any(|e| e.extension_type.eq_ignore_ascii_case(FLUX_EXTENSION_TYPE));
    if !c.flux_configurations.is_empty()
        && !declares_flux
        && let Some(j) = c
            .extensions
            .iter()
            .position(|e| e.name == FLUX_IMPLICIT_EXTENSION)
    {
        out.push(
                err(
                    "conflicting-settings",
                    format!(
                        "cluster `{}` has Flux configurations but no `{FLUX_EXTENSION_TYPE}` extension, and the name arcplan gives the one it adds, `{FLUX_IMPLICIT_EXTENSION}`, is taken by another extension",
                        c.name
                    ),
                    &base.key("extensions").index(j).key("name"),
                )
                .with_hint(format!(
                    "rename that extension, or declare an extension of type `{FLUX_EXTENSION_TYPE}`"
                )),
            );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (j, f) in c.flux_configurations.iter().enumerate() {
        let at = base.key("fluxConfigurations").index(j);
        if let Some(p) = extension_name_problem(&f.name) {
            out.push(err(
                "invalid-name",
                format!("Flux configuration name `{}` {p}", f.name),
                &at.key("name"),
            ));
        }
        if let Some(first) = names.insert(f.name.as_str(), j) {
            out.push(
                err(
                    "duplicate-name",
                    format!(
                        "Flux configuration `{}` is declared twice on cluster `{}` (first at fluxConfigurations[{first}])",
                        f.name, c.name
                    ),
                    &at.key("name"),
                )
                .with_hint("a Flux configuration's name is unique per cluster"),
            );
        }
        if let Some(p) = namespace_problem(&f.namespace) {
            out.push(err(
                "invalid-name",
                format!(
                    "namespace `{}` of Flux configuration `{}` {p}",
                    f.namespace, f.name
                ),
                &at.key("namespace"),
            ));
        }
        check_source(&err, f, &at, out);
        check_kustomizations(&err, f, &at, out);
        let (source, takes) = match f.source_kind {
            FluxSourceKind::GitRepository => ("Git source", FLUX_PROTECTED_SETTINGS),
            FluxSourceKind::Bucket => ("bucket source", FLUX_BUCKET_PROTECTED_SETTINGS),
            FluxSourceKind::OciRepository => ("OCI source", &[][..]),
        };
        for k in f.configuration_protected_settings.keys() {
            if !takes.contains(&k.as_str()) {
                out.push(
                    err(
                        "unknown-value",
                        format!(
                            "Flux configuration `{}` has protected setting `{k}`, which its {source} does not take",
                            f.name
                        ),
                        &at.key("configurationProtectedSettings").key(k),
                    )
                    .with_hint(if takes.is_empty() {
                        "remove it: arcplan sends no credentials for an OCI source".to_owned()
                    } else {
                        format!("use one of {}", takes.join(", "))
                    }),
                );
            }
        }
        if f.scope == FluxScope::Namespace && f.namespace == "flux-system" {
            out.push(
                Diagnostic::warning(
                    "unusual-value",
                    format!(
                        "Flux configuration `{}` is namespace-scoped to `flux-system`, the Flux controllers' own namespace",
                        f.name
                    ),
                )
                .with_location(loaded.location(&at.key("namespace")))
                .with_key(at.key("namespace").to_string())
                .with_hint("give it an application namespace"),
            );
        }
    }
}

type Err<'a> = dyn Fn(&'static str, String, &Path) -> Diagnostic + 'a;

fn check_duration(err: &Err, what: &str, value: Option<&String>, at: &Path, out: &mut Diagnostics) {
    let Some(v) = value else { return };
    let problem = match humantime::parse_duration(v) {
        Ok(d) if d.as_secs() == 0 => Some("must be at least one second".to_owned()),
        Ok(d) if d.subsec_nanos() != 0 => Some("must be whole seconds".to_owned()),
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    };
    if let Some(p) = problem {
        out.push(
            err("invalid-duration", format!("{what} `{v}`: {p}"), at).with_hint(DURATION_HINT),
        );
    }
}

fn check_source(err: &Err, f: &FluxConfiguration, at: &Path, out: &mut Diagnostics) {
    let sources = [
        (
            "gitRepository",
            FluxSourceKind::GitRepository,
            f.git_repository.is_some(),
        ),
        ("bucket", FluxSourceKind::Bucket, f.bucket.is_some()),
        (
            "ociRepository",
            FluxSourceKind::OciRepository,
            f.oci_repository.is_some(),
        ),
    ];
    let wanted = sources
        .iter()
        .find(|(_, k, _)| *k == f.source_kind)
        .map(|(key, ..)| *key)
        .unwrap_or_default();
    let kind = match f.source_kind {
        FluxSourceKind::GitRepository => "GitRepository",
        FluxSourceKind::Bucket => "Bucket",
        FluxSourceKind::OciRepository => "OCIRepository",
    };
    for (key, _, _) in sources
        .iter()
        .filter(|(_, k, given)| *given && *k != f.source_kind)
    {
        out.push(
            err(
                "conflicting-settings",
                format!(
                    "Flux configuration `{}` has `sourceKind: {kind}`, which takes `{wanted}`, not `{key}`",
                    f.name
                ),
                &at.key(key),
            )
            .with_hint(format!("remove `{key}`, or change `sourceKind`")),
        );
    }
    if f.source_kind == FluxSourceKind::OciRepository {
        check_oci(err, f, at, out);
        return;
    }
    if f.source_kind == FluxSourceKind::Bucket {
        check_bucket(err, f, at, out);
        return;
    }
    let Some(g) = &f.git_repository else {
        out.push(
            err(
                "missing-field",
                format!(
                    "Flux configuration `{}` has `sourceKind: GitRepository` but no `gitRepository`",
                    f.name
                ),
                &at.key("name"),
            )
            .with_hint("add `gitRepository: {url: ..., branch: main}`"),
        );
        return;
    };
    let git = at.key("gitRepository");
    let url_ok = ["https://", "http://", "ssh://"]
        .iter()
        .any(|p| g.url.starts_with(p) && g.url.len() > p.len())
        || (g.url.starts_with("git@") && g.url.contains(':'));
    if !url_ok {
        out.push(
            err(
                "invalid-format",
                format!(
                    "the Git repository URL `{}` of Flux configuration `{}` is not one Flux can clone",
                    g.url, f.name
                ),
                &git.key("url"),
            )
            .with_hint("write an https://, http://, ssh:// or git@host:path URL"),
        );
    }
    let refs: Vec<&str> = [
        ("branch", &g.branch),
        ("tag", &g.tag),
        ("semver", &g.semver),
        ("commit", &g.commit),
    ]
    .iter()
    .filter(|(_, v)| v.is_some())
    .map(|(k, _)| *k)
    .collect();
    if refs.len() > 1 {
        out.push(
            err(
                "conflicting-settings",
                format!(
                    "the Git repository of Flux configuration `{}` names {} references ({}); it follows exactly one",
                    f.name,
                    refs.len(),
                    refs.join(", ")
                ),
                &git.key(refs[1]),
            )
            .with_hint(format!("keep only `{}`", refs[0])),
        );
    }
    for (k, v) in [("syncInterval", &g.sync_interval), ("timeout", &g.timeout)] {
        check_duration(
            err,
            &format!("`gitRepository.{k}`"),
            v.as_ref(),
            &git.key(k),
            out,
        );
    }
    if g.https_user.is_some() && !f.configuration_protected_settings.contains_key("httpsKey") {
        out.push(
            err(
                "missing-field",
                format!(
                    "Flux configuration `{}` names an `httpsUser` but no `httpsKey` protected setting",
                    f.name
                ),
                &git.key("httpsUser"),
            )
            .with_hint("add `configurationProtectedSettings: {httpsKey: {env: VAR}}`"),
        );
    }
}

fn check_bucket(err: &Err, f: &FluxConfiguration, at: &Path, out: &mut Diagnostics) {
    let Some(b) = &f.bucket else {
        out.push(
            err(
                "missing-field",
                format!(
                    "Flux configuration `{}` has `sourceKind: Bucket` but no `bucket`",
                    f.name
                ),
                &at.key("sourceKind"),
            )
            .with_hint("add `bucket: {url: https://..., bucketName: ...}`"),
        );
        return;
    };
    let here = at.key("bucket");
    if !(b.url.starts_with("https://") || b.url.starts_with("http://")) {
        out.push(
            err(
                "invalid-format",
                format!(
                    "the bucket endpoint `{}` of Flux configuration `{}` is not an http:// or https:// URL",
                    b.url, f.name
                ),
                &here.key("url"),
            )
            .with_hint("write the endpoint's URL, like https://s3.amazonaws.com"),
        );
    }
    if b.url.starts_with("http://") && !b.insecure {
        out.push(
            err(
                "conflicting-settings",
                format!(
                    "the bucket endpoint of Flux configuration `{}` is plain HTTP but `insecure` is false",
                    f.name
                ),
                &here.key("url"),
            )
            .with_hint("use an https:// endpoint, or set `insecure: true`"),
        );
    }
    if b.bucket_name.is_empty() {
        out.push(err(
            "missing-field",
            format!(
                "the bucket of Flux configuration `{}` has an empty `bucketName`",
                f.name
            ),
            &here.key("bucketName"),
        ));
    }
    for (k, v) in [("syncInterval", &b.sync_interval), ("timeout", &b.timeout)] {
        check_duration(err, &format!("`bucket.{k}`"), v.as_ref(), &here.key(k), out);
    }
    if b.access_key.is_some()
        != f.configuration_protected_settings
            .contains_key("bucketSecretKey")
    {
        out.push(
            err(
                "missing-field",
                format!(
                    "the bucket of Flux configuration `{}` needs both `accessKey` and the `bucketSecretKey` protected setting, or neither",
                    f.name
                ),
                &here.key("url"),
            )
            .with_hint("add the one missing (`bucketSecretKey: {env: VAR}` under `configurationProtectedSettings`)"),
        );
    }
}

fn check_oci(err: &Err, f: &FluxConfiguration, at: &Path, out: &mut Diagnostics) {
    let Some(o) = &f.oci_repository else {
        out.push(
            err(
                "missing-field",
                format!(
                    "Flux configuration `{}` has `sourceKind: OCIRepository` but no `ociRepository`",
                    f.name
                ),
                &at.key("sourceKind"),
            )
            .with_hint("add `ociRepository: {url: oci://registry/path, tag: ...}`"),
        );
        return;
    };
    let here = at.key("ociRepository");
    if !(o.url.starts_with("oci://") && o.url.len() > "oci://".len()) {
        out.push(
            err(
                "invalid-format",
                format!(
                    "the OCI repository URL `{}` of Flux configuration `{}` is not an oci:// URL",
                    o.url, f.name
                ),
                &here.key("url"),
            )
            .with_hint("write it as oci://registry/path"),
        );
    }
    let refs: Vec<&str> = [
        ("tag", &o.tag),
        ("semver", &o.semver),
        ("digest", &o.digest),
    ]
    .iter()
    .filter(|(_, v)| v.is_some())
    .map(|(k, _)| *k)
    .collect();
    if refs.len() > 1 {
        out.push(
            err(
                "conflicting-settings",
                format!(
                    "the OCI repository of Flux configuration `{}` names {} references ({}); it follows exactly one",
                    f.name,
                    refs.len(),
                    refs.join(", ")
                ),
                &here.key(refs[1]),
            )
            .with_hint(format!("keep only `{}`", refs[0])),
        );
    }
    for (k, v) in [("syncInterval", &o.sync_interval), ("timeout", &o.timeout)] {
        check_duration(
            err,
            &format!("`ociRepository.{k}`"),
            v.as_ref(),
            &here.key(k),
            out,
        );
    }
}

fn check_kustomizations(err: &Err, f: &FluxConfiguration, at: &Path, out: &mut Diagnostics) {
    let ks = at.key("kustomizations");
    if f.kustomizations.is_empty() {
        out.push(
            err(
                "missing-field",
                format!("Flux configuration `{}` has no kustomizations", f.name),
                &at.key("name"),
            )
            .with_hint("add `kustomizations: {infra: {path: ./infrastructure}}`"),
        );
    }
    for (name, k) in &f.kustomizations {
        let here = ks.key(name);
        if let Some(p) = namespace_problem(name) {
            out.push(err(
                "invalid-name",
                format!(
                    "kustomization name `{name}` of Flux configuration `{}` {p}",
                    f.name
                ),
                &here,
            ));
        }
        for (i, d) in k.depends_on.iter().enumerate() {
            let problem = if d == name {
                Some(format!("kustomization `{name}` depends on itself"))
            } else if !f.kustomizations.contains_key(d) {
                Some(format!(
                    "kustomization `{name}` depends on `{d}`, which is not a kustomization of Flux configuration `{}`",
                    f.name
                ))
            } else {
                None
            };
            if let Some(msg) = problem {
                let known: Vec<&str> = f
                    .kustomizations
                    .keys()
                    .filter(|k| *k != name)
                    .map(String::as_str)
                    .collect();
                out.push(
                    err("unknown-reference", msg, &here.key("dependsOn").index(i)).with_hint(
                        if known.is_empty() {
                            "remove it: dependsOn names kustomizations of the same configuration"
                                .to_owned()
                        } else {
                            format!("name one of {}", known.join(", "))
                        },
                    ),
                );
            }
        }
        for (key, v) in [
            ("syncInterval", &k.sync_interval),
            ("timeout", &k.timeout),
            ("retryInterval", &k.retry_interval),
        ] {
            check_duration(
                err,
                &format!("`kustomizations.{name}.{key}`"),
                v.as_ref(),
                &here.key(key),
                out,
            );
        }
    }
    if let Some(cycle) = dependency_cycle(&f.kustomizations) {
        out.push(
            err(
                "dependency-cycle",
                format!(
                    "the kustomizations of Flux configuration `{}` depend on each other in a cycle: {}",
                    f.name,
                    cycle.join(" -> ")
                ),
                &ks.key(&cycle[0]).key("dependsOn"),
            )
            .with_hint("remove one of the dependsOn entries"),
        );
    }
}

/// A cycle of `dependsOn` among the kustomizations (first and last the same), if any.
fn dependency_cycle(ks: &BTreeMap<String, super::Kustomization>) -> Option<Vec<String>> {
    fn visit<'a>(
        n: &'a str,
        ks: &'a BTreeMap<String, super::Kustomization>,
        stack: &mut Vec<&'a str>,
        done: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| *s == n) {
            let mut c: Vec<String> = stack[i..].iter().map(|s| s.to_string()).collect();
            c.push(n.to_owned());
            return Some(c);
        }
        if done.contains(&n) {
            return None;
        }
        stack.push(n);
        for d in ks
            .get(n)
            .map(|k| k.depends_on.as_slice())
            .unwrap_or_default()
        {
            if d != n
                && ks.contains_key(d)
                && let Some(c) = visit(d, ks, stack, done)
            {
                return Some(c);
            }
        }
        stack.pop();
        done.push(n);
        None
    }
    let mut done = Vec::new();
    ks.keys()
        .find_map(|n| visit(n, ks, &mut Vec::new(), &mut done))
}
