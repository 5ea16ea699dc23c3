//! Fleets in one file: `clusterDefaults` and `clusterSets` (CSV and YAML inventories, kubeconfig
//! contexts) expand into clusters, deterministically, and every diagnostic points at the row or
//! the default it is about.

use arcplan_config::{load_file, load_str};
use std::path::{Path, PathBuf};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// A copy of examples/fleet.yaml and its inventories in a fresh directory, `edit` applied to
/// (file name, text) of each.
fn fleet_copy(tag: &str, edit: impl Fn(&str, String) -> String) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("arcplan-fleet-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("fleet")).unwrap();
    for f in [
        "fleet.yaml",
        "fleet/stores.csv",
        "fleet/factories.kubeconfig",
    ] {
        let text = std::fs::read_to_string(examples().join(f)).unwrap();
        std::fs::write(dir.join(f), edit(f, text)).unwrap();
    }
    dir.join("fleet.yaml")
}

#[test]
fn the_example_fleet_expands_defaults_rows_and_contexts() {
    let loaded = load_file(&examples().join("fleet.yaml")).unwrap();
    let c = &loaded.config.clusters;
    assert_eq!(c.len(), 16, "1 declared, 12 stores, 3 factories");
    // Declared first, then the sets in order, their rows in file order, contexts by name.
    assert_eq!(c[0].name, "hq-eastus");
    assert_eq!(c[1].name, "store-eastus-01");
    assert_eq!(c[12].name, "store-southeastasia-04");
    assert_eq!(c[13].name, "factory-01");
    assert_eq!(c[15].name, "factory-03");
    assert!(
        !c.iter().any(|x| x.name == "lab"),
        "only contexts matching factory-*"
    );
    // The declared cluster's own fields win; maps merge.
    assert_eq!(c[0].distribution, "aks_workload");
    assert_eq!(c[0].tags["fleet"], "retail");
    assert_eq!(c[0].tags["site"], "hq");
    // A row gets the defaults under its own cells.
    assert_eq!(c[1].distribution, "k3s");
    assert_eq!(c[1].tags["store"], "0001");
    assert_eq!(c[1].tags["fleet"], "retail");
    assert_eq!(c[1].agents.timeout, "15m");
    assert_eq!(c[1].context.as_deref(), Some("store-eastus-01"));
    // A context: named after it, its kubeconfig, the set's defaults over clusterDefaults.
    assert_eq!(c[13].context.as_deref(), Some("factory-01"));
    assert_eq!(
        c[13].kubeconfig.as_deref(),
        Some("fleet/factories.kubeconfig")
    );
    assert_eq!(c[13].resource_group, "fleet-westeurope");
    assert_eq!(c[13].tags["site"], "factory");
    assert_eq!(c[13].tags["fleet"], "retail");
    // Where each came from.
    assert!(!loaded.origins.contains_key(&0), "declared in the file");
    assert!(
        loaded.origins[&1].ends_with("fleet/stores.csv:2"),
        "{}",
        loaded.origins[&1]
    );
    assert!(
        loaded.origins[&13].contains("factories.kubeconfig:")
            && loaded.origins[&13].contains("(context factory-01)"),
        "{}",
        loaded.origins[&13]
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn a_bad_row_is_reported_at_its_line_and_column() {
    let file = fleet_copy("row", |f, t| match f {
        "fleet/stores.csv" => t.replace(
            "store-eastus-03,fleet-eastus,",
            "store-eastus-03,fleet-nowhere,",
        ),
        _ => t,
    });
    let d = load_file(&file).unwrap_err();
    let rg = d
        .iter()
        .find(|x| x.code == "undeclared-resource-group")
        .unwrap_or_else(|| panic!("{d}"));
    let at = rg.location.as_ref().unwrap();
    assert!(at.file.ends_with("fleet/stores.csv"), "{at}");
    assert_eq!((at.line, at.column), (4, 17), "row 4, second cell");
    assert_eq!(rg.key.as_deref(), Some("clusters[3].resourceGroup"));
}

#[test]
fn a_bad_default_is_reported_once_where_it_is_written() {
    let file = fleet_copy("default", |f, t| match f {
        "fleet.yaml" => t.replace(
            "  distribution: k3s\n",
            "  distribution: k3s\n  agnets: {}\n",
        ),
        _ => t,
    });
    let d = load_file(&file).unwrap_err();
    let unknown: Vec<_> = d.iter().filter(|x| x.code == "unknown-key").collect();
    assert_eq!(unknown.len(), 1, "once, not per cluster: {d}");
    let at = unknown[0].location.as_ref().unwrap();
    assert!(at.file.ends_with("fleet.yaml"), "{at}");
    assert!(
        unknown[0]
            .message
            .contains("and the same in 15 more clusters"),
        "{}",
        unknown[0].message
    );
}

#[test]
fn cluster_sets_say_what_is_wrong_with_them() {
    let file = fleet_copy("sets", |f, t| match f {
        "fleet.yaml" => t
            .replace(
                "inventory: fleet/stores.csv",
                "inventory: fleet/missing.csv",
            )
            .replace("contexts: \"factory-*\"", "contexts: \"plant-*\""),
        _ => t,
    });
    let d = load_file(&file).unwrap_err();
    let missing = d
        .iter()
        .find(|x| x.code == "unreadable-inventory")
        .unwrap_or_else(|| panic!("{d}"));
    assert_eq!(missing.key.as_deref(), Some("clusterSets[0].inventory"));
    assert!(
        missing.message.contains("missing.csv"),
        "{}",
        missing.message
    );
    let empty = d
        .iter()
        .find(|x| x.code == "empty-cluster-set")
        .unwrap_or_else(|| panic!("{d}"));
    assert!(empty.message.contains("plant-*"), "{}", empty.message);
    assert_eq!(empty.key.as_deref(), Some("clusterSets[1]"));

    let both = "apiVersion: arcplan/v1\nstack: s\nazure:\n  subscription: 00000000-0000-0000-0000-000000000001\nclusterSets:\n  - inventory: a.csv\n    kubeconfig: k\n    contexts: \"*\"\n";
    let d = load_str(both, "f.yaml").unwrap_err();
    let bad = d
        .iter()
        .find(|x| x.code == "invalid-cluster-set")
        .unwrap_or_else(|| panic!("{d}"));
    assert_eq!(bad.key.as_deref(), Some("clusterSets[0]"));
    assert_eq!(bad.location.as_ref().unwrap().line, 6);
}

#[test]
fn a_yaml_inventory_keeps_its_positions_and_the_digest_covers_it() {
    let dir = std::env::temp_dir().join(format!("arcplan-fleet-yaml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("sites.yaml"),
        "clusters:\n  - name: site-1\n    resourceGroup: rg\n  - name: site-2\n    resourceGroup: rg\n    distribution: 7\n",
    )
    .unwrap();
    let file = dir.join("f.yaml");
    std::fs::write(
        &file,
        "apiVersion: arcplan/v1\nstack: s\nazure:\n  subscription: 00000000-0000-0000-0000-000000000001\nresourceGroups:\n  - { name: rg, location: eastus }\nclusterDefaults: { distribution: k3s }\nclusterSets:\n  - inventory: sites.yaml\n",
    )
    .unwrap();
    let d = load_file(&file).unwrap_err();
    let ty = d
        .iter()
        .find(|x| x.code == "invalid-type")
        .unwrap_or_else(|| panic!("{d}"));
    let at = ty.location.as_ref().unwrap();
    assert!(at.file.ends_with("sites.yaml"), "{at}");
    assert_eq!(at.line, 6);
    std::fs::write(
        dir.join("sites.yaml"),
        "- name: site-1\n  resourceGroup: rg\n",
    )
    .unwrap();
    let one = load_file(&file).unwrap();
    assert_eq!(one.config.clusters.len(), 1);
    assert_eq!(one.config.clusters[0].distribution, "k3s");
    std::fs::write(
        dir.join("sites.yaml"),
        "- name: site-1\n  resourceGroup: rg\n- name: site-2\n  resourceGroup: rg\n  context: site-2\n",
    )
    .unwrap();
    let two = load_file(&file).unwrap();
    assert_ne!(
        one.digest, two.digest,
        "a saved plan is tied to the inventory too"
    );
}

#[test]
fn a_secret_in_an_inventory_row_is_refused_without_echoing_it() {
    let file = fleet_copy("secret", |f, t| match f {
        "fleet/stores.csv" => t
            .replacen(
                "name,resourceGroup,context,tags.store",
                "name,resourceGroup,context,tags.store,agents.proxy.httpsProxy",
                1,
            )
            .replacen(
                "store-eastus-01,fleet-eastus,store-eastus-01,0001",
                "store-eastus-01,fleet-eastus,store-eastus-01,0001,http://bot:hunter2@proxy:3128",
                1,
            ),
        _ => t,
    });
    let d = load_file(&file).unwrap_err();
    let s = d
        .iter()
        .find(|x| x.code == "inline-secret")
        .unwrap_or_else(|| panic!("{d}"));
    let at = s.location.as_ref().unwrap();
    assert!(at.file.ends_with("fleet/stores.csv"), "{at}");
    assert_eq!(at.line, 2);
    assert!(!d.to_string().contains("hunter2"), "{d}");
}

#[test]
fn a_file_without_fleet_keys_loads_as_before() {
    let text = std::fs::read_to_string(examples().join("quickstart.yaml")).unwrap();
    let loaded = load_str(&text, "q.yaml").unwrap();
    assert_eq!(loaded.config.clusters.len(), 1);
    assert!(loaded.origins.is_empty());
    assert_eq!(loaded.files.0, vec!["q.yaml".to_string()]);
}
