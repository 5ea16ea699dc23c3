//! A fleet file (`examples/fleet.yaml`: `clusterDefaults`, a CSV inventory and a kubeconfig's
//! contexts) through the binary: `validate --expand` lists every cluster with where it came
//! from, and the expanded fleet plans on the sandbox like any other file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn arcplan(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_arcplan"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn validate_expand_lists_each_cluster_with_its_row() {
    let (code, out, err) = arcplan(&["validate", "examples/fleet.yaml", "--expand"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("16 clusters after expansion:"), "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("store-westeurope-02 "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("fleet-westeurope"), "{row}");
    assert!(row.ends_with("examples/fleet/stores.csv:7"), "{row}");
    let factory = out
        .lines()
        .find(|l| l.starts_with("factory-03 "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(factory.contains("(context factory-03)"), "{factory}");
    let hq = out.lines().find(|l| l.starts_with("hq-eastus ")).unwrap();
    assert!(hq.contains("examples/fleet.yaml:"), "{hq}");

    // Without --expand: no table.
    let (code, out, _) = arcplan(&["validate", "examples/fleet.yaml"]);
    assert_eq!(code, 0);
    assert!(!out.contains("after expansion"), "{out}");

    // JSON: each expanded entry with its origin.
    let (code, out, err) = arcplan(&["validate", "examples/fleet.yaml", "--expand", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let clusters = doc["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 16);
    assert_eq!(clusters[1]["cluster"]["name"], "store-eastus-01");
    assert_eq!(clusters[1]["cluster"]["tags"]["fleet"], "retail");
    assert_eq!(clusters[1]["origin"], "examples/fleet/stores.csv:2");
}

#[test]
fn the_graph_labels_generated_clusters_with_their_row() {
    let (code, out, err) = arcplan(&["graph", "examples/fleet.yaml", "--format", "mermaid"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "arc.connectedCluster<br/>store-eastus-03<br/>from examples/fleet/stores.csv:4"
        ),
        "{out}"
    );
    assert!(
        out.contains("arc.connectedCluster<br/>hq-eastus\")"),
        "a declared cluster has no inventory line:\n{out}"
    );
}

#[test]
fn a_bad_inventory_row_is_shown_with_that_row() {
    let dir = std::env::temp_dir().join(format!("arcplan-fleet-cli-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("fleet")).unwrap();
    for f in ["fleet.yaml", "fleet/factories.kubeconfig"] {
        std::fs::copy(root().join("examples").join(f), dir.join(f)).unwrap();
    }
    let csv = std::fs::read_to_string(root().join("examples/fleet/stores.csv"))
        .unwrap()
        .replace(
            "store-eastus-02,fleet-eastus,",
            "store-eastus-02,fleet-eastos,",
        );
    std::fs::write(dir.join("fleet/stores.csv"), csv).unwrap();
    let file = dir.join("fleet.yaml").display().to_string();
    let (code, _, err) = arcplan(&["validate", &file]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("fleet/stores.csv:3:17"), "{err}");
    assert!(
        err.contains("3 | store-eastus-02,fleet-eastos,store-eastus-02,0002"),
        "the snippet is the inventory's line:\n{err}"
    );
    assert!(err.contains("did you mean `fleet-eastus`?"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_expanded_fleet_plans_on_the_sandbox() {
    let (code, out, err) = arcplan(&[
        "plan",
        "examples/fleet.yaml",
        "--sandbox",
        "--detailed-exitcode",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    for name in ["hq-eastus", "store-southeastasia-04", "factory-02"] {
        assert!(
            out.contains(&format!("arc.connectedCluster.{name} will be created")),
            "{name}:\n{out}"
        );
    }
}
