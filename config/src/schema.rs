//! The JSON Schema of the desired-state format, generated from the config types.
//!
//! The schema is both a published artefact (`schemas/arcplan.schema.json`, for editors) and the
//! loader's structural check: validating the parsed tree against it reports *every* unknown
//! key, missing key and wrong type at once, each mapped back to `file:line:column`.

use super::Config;
use super::loaded::Files;
use super::yaml::{Node, Path, Seg, Value};
use arcplan_engine::diag::{Diagnostic, Diagnostics, SourceLocation, did_you_mean};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use std::sync::OnceLock;

/// The schema as JSON, exactly as committed in `schemas/arcplan.schema.json`.
///
/// It has no `$id`: no host serves it, so it is identified by where an editor reads it from (a
/// relative path, or the raw URL of the file in a repository; see the README).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Config);
    serde_json::to_value(&schema).unwrap_or_default()
}

/// The schema rendered as the committed file's text (pretty JSON and a final newline).
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        // The schema is generated from our own types; failing to compile it is a bug caught
        // by the schema tests, never a user error.
        jsonschema::validator_for(&json_schema()).expect("generated schema compiles")
    })
}

/// Keys whose values may be secrets: their values are never echoed in messages.
const SECRETISH: &[&str] = &[
    "credential",
    "clientSecret",
    "certificate",
    "credentials",
    "password",
    "token",
];

fn is_secretish(path: &Path) -> bool {
    path.0
        .iter()
        .any(|s| matches!(s, Seg::Key(k) if SECRETISH.contains(&k.as_str())))
}

/// Checks the parsed tree against the schema and returns one diagnostic per problem, and the
/// key paths the schema rejects (a wrong value, an unknown key, a missing key), so the loader
/// can set them aside and check the rest of the document.
pub(crate) fn check(tree: &Node, file: &Files) -> (Diagnostics, Vec<Path>) {
    let instance = tree.to_json();
    let mut out = Diagnostics::new();
    let mut broken = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for err in validator().iter_errors(&instance) {
        let path = tree.path_from_pointer(err.instance_path().as_str());
        match err.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                broken.extend(unexpected.iter().map(|k| path.key(k)));
            }
            ValidationErrorKind::Required { property } => {
                broken.push(path.key(property.as_str().unwrap_or_default()));
            }
            _ => broken.push(path),
        }
        for d in describe(tree, file, &err) {
            let key = (d.code, d.key.clone(), d.message.clone());
            if seen.insert(key) {
                out.push(d);
            }
        }
    }
    (out, broken)
}

fn loc(tree: &Node, file: &Files, path: &Path) -> Option<SourceLocation> {
    to_location(file, tree.pos_of(path))
}

fn key_loc(tree: &Node, file: &Files, path: &Path) -> Option<SourceLocation> {
    to_location(file, tree.pos_of_key(path))
}

fn to_location(files: &Files, pos: super::yaml::Pos) -> Option<SourceLocation> {
    Some(files.location(pos))
}

/// The property names the schema allows for the object at `path` (for suggestions).
fn allowed_keys(schema_pointer: &str) -> Vec<String> {
    let schema = json_schema();
    // The pointer ends in `/additionalProperties`; its parent holds `properties`.
    let parent = schema_pointer
        .strip_suffix("/additionalProperties")
        .unwrap_or(schema_pointer);
    schema
        .pointer(parent)
        .and_then(|s| s.get("properties"))
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn keyword_pointer(err: &jsonschema::ValidationError<'_>) -> String {
    err.absolute_keyword_location()
        .and_then(|uri| uri.fragment().map(|f| f.as_str().to_owned()))
        .unwrap_or_else(|| err.schema_path().as_str().to_owned())
}

fn describe(tree: &Node, file: &Files, err: &jsonschema::ValidationError<'_>) -> Vec<Diagnostic> {
    let path = tree.path_from_pointer(err.instance_path().as_str());
    let node = tree.get(&path);
    let actual = node.map(|n| n.value.kind()).unwrap_or("missing");
    let here = loc(tree, file, &path);
    let name = path.to_string();
    match err.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = allowed_keys(&keyword_pointer(err));
            unexpected
                .iter()
                .map(|k| {
                    let kp = path.key(k);
                    let mut d = Diagnostic::error("unknown-key", format!("unknown key `{k}`"))
                        .with_location(key_loc(tree, file, &kp))
                        .with_key(kp.to_string());
                    let hint = match did_you_mean(k, allowed.iter().map(String::as_str)) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if allowed.is_empty() => "remove it".to_owned(),
                        None => format!("allowed keys here: {}", allowed.join(", ")),
                    };
                    d = d.with_hint(hint);
                    d
                })
                .collect()
        }
        ValidationErrorKind::Required { property } => {
            let prop = property.as_str().unwrap_or_default();
            let what = if path.0.is_empty() {
                "the document".to_owned()
            } else {
                format!("`{name}`")
            };
            vec![
                Diagnostic::error("missing-key", format!("{what} is missing the key `{prop}`"))
                    .with_location(here)
                    .with_key(path.key(prop).to_string())
                    .with_hint(format!("add `{prop}:`")),
            ]
        }
        ValidationErrorKind::Type { kind } => {
            let want = match kind {
                TypeKind::Single(t) => type_name(&t.to_string()),
                TypeKind::Multiple(ts) => ts
                    .iter()
                    .map(|t| type_name(&t.to_string()))
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            vec![
                Diagnostic::error(
                    "invalid-type",
                    format!("`{name}` must be {want}, not {actual}"),
                )
                .with_location(here)
                .with_key(name),
            ]
        }
        ValidationErrorKind::Enum { options } => {
            let options: Vec<String> = options
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            vec![enum_diagnostic(&path, err.instance(), &options, here)]
        }
        ValidationErrorKind::Pattern { pattern } => {
            let hint = match path.last_key() {
                Some("timeout") => "write a duration like `20m`, `90s` or `1h30m`".to_owned(),
                Some("stack") => {
                    "use 1 to 63 letters, digits, `.`, `_` or `-`, starting with a letter or digit"
                        .to_owned()
                }
                Some("resourceManager") | Some("authorityHost") => {
                    "write an https:// URL; plain http is never used for Azure".to_owned()
                }
                _ => format!("it must match the pattern {pattern}"),
            };
            vec![
                Diagnostic::error(
                    "invalid-format",
                    format!("`{name}` is not in the expected format"),
                )
                .with_location(here)
                .with_key(name)
                .with_hint(hint),
            ]
        }
        ValidationErrorKind::Constant { expected_value } => {
            let options: Vec<String> = expected_value
                .as_str()
                .map(str::to_owned)
                .into_iter()
                .collect();
            vec![enum_diagnostic(&path, err.instance(), &options, here)]
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            // An untagged choice (for example `cloud`: a name or a mapping of endpoints), or a
            // documented enum (a `oneOf` of constants).
            let depth = err.instance_path().as_str().matches('/').count();
            let deepest = |branch: &Vec<jsonschema::ValidationError<'static>>| {
                branch
                    .iter()
                    .map(|e| e.instance_path().as_str().matches('/').count())
                    .max()
                    .unwrap_or(0)
            };
            // An alternative fits the value's shape when none of its errors is about the
            // value itself being of another type or constant.
            let fits = |branch: &Vec<jsonschema::ValidationError<'static>>| {
                !branch.iter().any(|e| {
                    e.instance_path().as_str().matches('/').count() == depth
                        && matches!(
                            e.kind(),
                            ValidationErrorKind::Type { .. }
                                | ValidationErrorKind::Constant { .. }
                                | ValidationErrorKind::Enum { .. }
                                | ValidationErrorKind::AnyOf { .. }
                                | ValidationErrorKind::OneOfNotValid { .. }
                        )
                })
            };
            let best = context
                .iter()
                .filter(|b| fits(b))
                .max_by_key(|b| deepest(b));
            match best {
                Some(branch) if !branch.is_empty() => branch
                    .iter()
                    .flat_map(|e| describe(tree, file, e))
                    .collect(),
                _ => {
                    let mut options = Vec::new();
                    collect_constants(context, &mut options);
                    if matches!(node.map(|n| &n.value), Some(Value::Str(_))) && !options.is_empty()
                    {
                        vec![enum_diagnostic(&path, err.instance(), &options, here)]
                    } else {
                        vec![
                            Diagnostic::error(
                                "invalid-type",
                                format!("`{name}` has the wrong shape ({actual})"),
                            )
                            .with_location(here)
                            .with_key(name.clone())
                            .with_hint(shape_hint(&path)),
                        ]
                    }
                }
            }
        }
        _ => vec![
            Diagnostic::error("invalid-value", format!("`{name}`: {}", err.masked()))
                .with_location(here)
                .with_key(name),
        ],
    }
}

/// The string constants the alternatives of a `oneOf`/`anyOf` accept.
fn collect_constants(context: &[Vec<jsonschema::ValidationError<'static>>], out: &mut Vec<String>) {
    for branch in context {
        for e in branch {
            match e.kind() {
                ValidationErrorKind::Constant { expected_value } => {
                    if let Some(s) = expected_value.as_str() {
                        out.push(s.to_owned());
                    }
                }
                ValidationErrorKind::Enum { options } => {
                    out.extend(
                        options
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|v| v.as_str().map(str::to_owned)),
                    );
                }
                ValidationErrorKind::AnyOf { context }
                | ValidationErrorKind::OneOfNotValid { context } => collect_constants(context, out),
                _ => {}
            }
        }
    }
    out.dedup();
}

fn enum_diagnostic(
    path: &Path,
    got: &serde_json::Value,
    options: &[String],
    here: Option<SourceLocation>,
) -> Diagnostic {
    let name = path.to_string();
    let got = got.as_str().unwrap_or_default();
    let message = if is_secretish(path) || got.is_empty() {
        format!("`{name}` has a value that is not allowed")
    } else {
        format!("`{name}` has an unknown value `{got}`")
    };
    let hint = match did_you_mean(got, options.iter().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("allowed values: {}", options.join(", ")),
    };
    Diagnostic::error("invalid-value", message)
        .with_location(here)
        .with_key(name)
        .with_hint(hint)
}

fn shape_hint(path: &Path) -> String {
    match path.last_key() {
        Some("cloud") => "write a cloud name (AzureCloud, AzureUSGovernment, AzureChinaCloud) or a mapping with resourceManager and authorityHost".to_owned(),
        Some("credential") => "write a kind (default, cli, servicePrincipal, workloadIdentity, managedIdentity) or a mapping with `kind:`".to_owned(),
        Some("clientSecret") | Some("certificate") | Some("credentials") => {
            "write `{ env: VARIABLE }` or `{ file: PATH }`".to_owned()
        }
        _ => "see schemas/arcplan.schema.json for the allowed forms".to_owned(),
    }
}

fn type_name(t: &str) -> String {
    match t {
        "object" => "a mapping".into(),
        "array" => "a list".into(),
        "string" => "a string".into(),
        "boolean" => "a boolean".into(),
        "integer" => "an integer".into(),
        "number" => "a number".into(),
        "null" => "null".into(),
        other => other.into(),
    }
}
