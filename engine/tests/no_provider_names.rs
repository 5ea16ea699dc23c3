//! The engine knows no Azure or Kubernetes name: kinds, their attributes and the clouds' facts
//! live in the providers crate. This reads the engine's sources (tests and the test fakes left
//! out) and fails on any such name.

use std::path::{Path, PathBuf};

/// Names that belong to a provider, never to the engine.
const FORBIDDEN: &[&str] = &[
    "Microsoft.",
    "SystemAssigned",
    "azure-arc",
    "kube-system",
    "ConfigMap",
    "connectedClusters",
    "arcplan-stack",
    "azure.",
    "arc.",
    "k8s.",
    "resourceGroup",
    "subscriptionId",
    "kubeconfig",
    "helm",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("engine sources") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without its `#[cfg(test)]` items (each is a test module that runs to the end of
/// the file in this crate's layout).
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

#[test]
fn the_engine_names_no_provider_fact() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(
        files.len() > 5,
        "found the engine's sources in {}",
        src.display()
    );
    let mut found = Vec::new();
    for file in files {
        // The scripted fake provider exists only for tests (feature `testing`).
        if file.file_name().is_some_and(|n| n == "testing.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (n, line) in without_tests(&text).lines().enumerate() {
            for name in FORBIDDEN {
                if line.contains(name) {
                    found.push(format!(
                        "{}:{}: {name}: {}",
                        file.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "provider names in the engine:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_sees_a_name_where_there_is_one() {
    let text = "fn a() { let t = \"azure.resourceGroup\"; }\n#[cfg(test)]\nmod tests { const X: &str = \"Microsoft.Kubernetes\"; }";
    let kept = without_tests(text);
    assert!(kept.contains("azure."));
    assert!(!kept.contains("Microsoft."));
}
