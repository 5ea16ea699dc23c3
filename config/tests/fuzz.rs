//! Property tests of the config loader over hostile input: arbitrary bytes, arbitrary YAML trees
//! built from the format's own keys, and random edits of the examples. The loader must never
//! panic, always answer (Ok, or at least one error naming a position or the file), and stay
//! fast (the parser's budget bounds work and memory).
//!
//! A corpus of regression inputs (`tests/corpus/`: Unicode line breaks U+0085, U+2028 and
//! U+2029 in values, keys and comments, at line ends and the file end, mixed with CRLF and lone
//! CR) always runs, and every position a diagnostic names must be a character of the file as
//! the snippet renderer reads it.
//!
//! The default run is small; `ARCPLAN_FUZZ_CASES=1000000 cargo test --release -p
//! arcplan-config --test fuzz` runs a million inputs per property (the figure quoted in the
//! README was measured that way).

use arcplan_config::{load_bytes, load_str};
use arcplan_engine::diag::{masked_source, source_line};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::Value;

fn cases(default: u32) -> u32 {
    std::env::var("ARCPLAN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(default: u32) -> TestRunner {
    TestRunner::new(RunnerConfig {
        cases: cases(default),
        failure_persistence: None,
        ..RunnerConfig::default()
    })
}

/// The loader's answer is well formed: a config, or errors that say something.
fn check(
    result: Result<arcplan_config::Loaded, arcplan_engine::diag::Diagnostics>,
) -> Result<(), TestCaseError> {
    if let Err(d) = result {
        prop_assert!(d.has_errors(), "a rejection carries at least one error");
        for e in d.iter() {
            prop_assert!(!e.message.is_empty());
            if let Some(l) = &e.location {
                prop_assert!(l.line >= 1 && l.column >= 1);
            }
        }
    }
    Ok(())
}

const KEYS: &[&str] = &[
    "apiVersion",
    "stack",
    "azure",
    "subscription",
    "tenant",
    "cloud",
    "credential",
    "kind",
    "clientId",
    "clientSecret",
    "env",
    "file",
    "resourceProviders",
    "access",
    "requireAnyRole",
    "resourceGroups",
    "name",
    "location",
    "existing",
    "tags",
    "clusters",
    "resourceGroup",
    "kubeconfig",
    "context",
    "distribution",
    "infrastructure",
    "agents",
    "version",
    "installer",
    "timeout",
    "proxy",
    "httpsProxy",
    "noProxy",
    "resourceManager",
    "authorityHost",
    "caBundle",
    "apiVersions",
    "manifests",
    "autoUpgrade",
];
const SCALARS: &[&str] = &[
    "arcplan/v1",
    "AzureCloud",
    "default",
    "servicePrincipal",
    "helm",
    "manifests",
    "eastus",
    "20m",
    "3000e2af-0000-46d9-0000-4bdb12000000",
    "Microsoft.Kubernetes",
    "Owner",
    "rg",
    "c1",
    "",
    "~",
    "true",
    "https://x",
    "http://u:p@h",
    "🦀",
    "a\nb",
];

fn tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(SCALARS).prop_map(|s| Value::String(s.to_owned())),
        "[a-zA-Z0-9 ._:/-]{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(KEYS).prop_map(str::to_owned),
                        "[a-z]{1,8}".prop_map(String::from)
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

#[test]
fn arbitrary_bytes_never_panic() {
    runner(2_000)
        .run(&prop::collection::vec(any::<u8>(), 0..2048), |bytes| {
            check(load_bytes(&bytes, "fuzz.yaml"))
        })
        .unwrap();
}

#[test]
fn arbitrary_yaml_trees_never_panic() {
    runner(1_000)
        .run(&tree(), |v| {
            // Wrap most trees in a plausible top level so deep validation paths are reached.
            let doc = match v {
                Value::Object(mut m) => {
                    m.entry("apiVersion")
                        .or_insert(Value::String("arcplan/v1".into()));
                    Value::Object(m)
                }
                other => other,
            };
            let text = serde_saphyr::to_string(&doc).unwrap_or_default();
            check(load_str(&text, "fuzz.yaml"))
        })
        .unwrap();
}

#[test]
fn edits_of_the_examples_never_panic() {
    let examples: Vec<String> = ["quickstart.yaml", "service-principal.yaml", "fleet.yaml"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(format!("{}/../examples/{f}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
        })
        .collect();
    let edit = (
        0..examples.len(),
        any::<prop::sample::Index>(),
        0usize..40,
        "[ -~\n\t:{}\\[\\]&*!|>#-]{0,12}",
    );
    runner(2_000)
        .run(&edit, |(which, at, cut, insert)| {
            let text = &examples[which];
            let start = at.index(text.len());
            let mut start = start;
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + cut).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let edited = format!("{}{insert}{}", &text[..start], &text[end..]);
            check(load_str(&edited, "fuzz.yaml"))
        })
        .unwrap();
}

/// Every diagnostic's position lies in the text: its line exists (counted as YAML counts lines)
/// and its column is at most one past the line's last character. This is what the snippet
/// renderer relies on; the panic on U+0085 came from a position it could not slice.
fn check_positions(
    text: &str,
    result: &Result<arcplan_config::Loaded, arcplan_engine::diag::Diagnostics>,
) -> Result<(), String> {
    let diags = match result {
        Ok(l) => l.warnings.clone(),
        Err(d) => d.clone(),
    };
    let masked = masked_source(text, &diags);
    if masked.chars().count() != text.chars().count() {
        return Err("masking changed the number of characters".into());
    }
    for d in diags.iter() {
        let Some(l) = &d.location else { continue };
        let line = source_line(&masked, l.line)
            .ok_or_else(|| format!("{d}: line {} is not in the file", l.line))?;
        if l.column as usize > line.chars().count() + 1 {
            return Err(format!(
                "{d}: column {} is past the end of {line:?}",
                l.column
            ));
        }
    }
    Ok(())
}

#[test]
fn the_regression_corpus_loads_without_panicking() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 15, "the corpus is in {}", dir.display());
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let result = load_bytes(&bytes, &name);
        check(result.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_positions(&text, &result).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The same text with CRLF line ends.
        let crlf = text.replace('\n', "\r\n");
        let result = load_str(&crlf, &name);
        check(result.clone()).unwrap_or_else(|e| panic!("{name} (CRLF): {e}"));
        check_positions(&crlf, &result).unwrap_or_else(|e| panic!("{name} (CRLF): {e}"));
    }
}

#[test]
fn unicode_line_breaks_anywhere_keep_positions_in_the_text() {
    let base = include_str!("../../examples/quickstart.yaml");
    let breaks = prop::sample::select(&["\u{85}", "\u{2028}", "\u{2029}", "\r\n", "\r"][..]);
    runner(500)
        .run(
            &(any::<prop::sample::Index>(), breaks, any::<bool>()),
            |(at, brk, replace)| {
                let mut i = at.index(base.len());
                while !base.is_char_boundary(i) {
                    i -= 1;
                }
                let mut end = if replace { i + 1 } else { i };
                while end < base.len() && !base.is_char_boundary(end) {
                    end += 1;
                }
                let end = end.min(base.len());
                let text = format!("{}{brk}{}", &base[..i], &base[end..]);
                let result = load_str(&text, "fuzz.yaml");
                check(result.clone())?;
                check_positions(&text, &result).map_err(TestCaseError::fail)?;
                Ok(())
            },
        )
        .unwrap();
}
