//! Sharded runs (`--shard K/N`) against one sandbox, as N processes at once: the union of the
//! shards' plans is the unsharded plan, `show --merge` puts their saved plans back together,
//! and concurrent shard applies (and destroys) converge with ARM-like throttling and no
//! throttling failure.

mod common;

use arcplan_sandbox::ThrottleOptions;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;

const FLEET: &str = "examples/fleet.yaml";

fn fleet_names() -> Vec<String> {
    let loaded = arcplan_config::load_file(&root().join(FLEET)).unwrap();
    loaded
        .config
        .clusters
        .iter()
        .map(|c| c.name.clone())
        .collect()
}

/// (address, action) of each change a plan document makes itself (not another shard's).
fn own_changes(plan: &Value) -> BTreeSet<(String, String)> {
    plan["resource_changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no resource_changes in {plan}"))
        .iter()
        .filter(|c| c["change"]["actions"] != serde_json::json!(["no-op"]))
        .filter(|c| c["change"]["actions"] != serde_json::json!(["read"]))
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_owned(),
                c["change"]["actions"].to_string(),
            )
        })
        .collect()
}

/// Runs `args` (a file-taking command) with `--shard K/N` for every K at once.
fn all_shards(w: &World, args: &[&str], n: usize) -> Vec<(i32, String, String)> {
    let children: Vec<_> = (1..=n)
        .map(|k| {
            let shard = format!("{k}/{n}");
            let mut full = args.to_vec();
            full.extend(["--shard", shard.as_str()]);
            w.spawn(&full, &[])
        })
        .collect();
    wait_all(children)
}

fn wait_all(children: Vec<std::process::Child>) -> Vec<(i32, String, String)> {
    children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            (
                o.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_union_of_shard_plans_is_the_unsharded_plan() {
    let names = fleet_names();
    let w = World::start_fleet(&names, 7).await;
    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["plan", FLEET, "--json"]));
    assert_eq!(code, 0, "{err}");
    let whole: Value = serde_json::from_str(&out).unwrap();
    let expected = own_changes(&whole);
    assert!(expected.len() > 40, "{expected:?}");

    // Three shard processes at once, each saving its plan.
    let plans: Vec<String> = (1..=3)
        .map(|k| w.dir.join(format!("shard-{k}.plan")).display().to_string())
        .collect();
    let children: Vec<_> = (1..=3)
        .map(|k| {
            w.spawn(
                &[
                    "plan",
                    FLEET,
                    "--shard",
                    &format!("{k}/3"),
                    "--json",
                    "--out",
                    &plans[k - 1],
                ],
                &[],
            )
        })
        .collect();
    let results = tokio::task::block_in_place(|| wait_all(children));
    let mut union = BTreeSet::new();
    let mut clusters_per_shard: Vec<BTreeSet<String>> = Vec::new();
    for (k, (code, out, err)) in results.iter().enumerate() {
        assert_eq!(*code, 0, "shard {}: {err}", k + 1);
        let doc: Value = serde_json::from_str(out).unwrap();
        let own = own_changes(&doc);
        assert!(!own.is_empty(), "shard {} has work", k + 1);
        for c in &own {
            assert!(union.insert(c.clone()), "{c:?} is in two shards");
        }
        clusters_per_shard.push(
            own.iter()
                .filter_map(|(a, _)| a.strip_prefix("arc.connectedCluster."))
                .map(str::to_owned)
                .collect(),
        );
    }
    assert_eq!(
        union, expected,
        "the shards together plan what one run plans"
    );
    // A cluster's resources all live in one shard.
    for (a, _) in &union {
        if let Some(name) = a.strip_prefix("k8s.arcAgents.") {
            let holder = clusters_per_shard.iter().position(|s| s.contains(name));
            assert!(
                holder.is_some(),
                "{name}'s agents and cluster are planned together"
            );
        }
    }

    // A saved shard plan still says which changes are another shard's (apply waits for them).
    let waits = plans.iter().any(|p| {
        let (code, out, _) = tokio::task::block_in_place(|| w.run(&["show", p]));
        code == 0 && out.contains("Changes other runs own") && out.contains(": shard ")
    });
    assert!(
        waits,
        "some shard waits for another's resource group or registration"
    );

    // The saved plans merge into one with the same changes.
    let mut args = vec!["show", "--merge", "--json"];
    args.extend(plans.iter().map(String::as_str));
    let (code, out, err) = tokio::task::block_in_place(|| w.run(&args));
    assert_eq!(code, 0, "{err}");
    let merged: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(own_changes(&merged), expected);
    let mut args = vec!["show", "--merge", "--format", "markdown"];
    args.extend(plans.iter().map(String::as_str));
    let (code, md, err) = tokio::task::block_in_place(|| w.run(&args));
    assert_eq!(code, 0, "{err}");
    let (code, whole_md, _) =
        tokio::task::block_in_place(|| w.run(&["plan", FLEET, "--format", "markdown"]));
    assert_eq!(code, 0);
    assert_eq!(
        md.lines().next(),
        whole_md.lines().next(),
        "the merged summary line is the unsharded one"
    );
    // A shard missing, or shown without --merge: refused, saying so.
    let (code, _, err) =
        tokio::task::block_in_place(|| w.run(&["show", "--merge", &plans[0], &plans[1]]));
    assert_eq!(code, 1);
    assert!(err.contains("shard 3/3"), "{err}");
    let (code, _, err) = tokio::task::block_in_place(|| w.run(&["show", &plans[0], &plans[1]]));
    assert_eq!(code, 1);
    assert!(err.contains("--merge"), "{err}");
}

/// A small fleet (4 clusters in two groups, of two subscriptions) in examples/fleet.yaml's
/// format.
fn small_fleet(w: &World) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(root().join(FLEET)).unwrap();
    let head = &text[..text.find("\nclusters:\n").unwrap() + 1];
    let names: Vec<String> = ["a", "b", "c", "d"]
        .iter()
        .map(|s| format!("store-{s}"))
        .collect();
    let mut body = format!("{head}clusters:\n");
    for (i, n) in names.iter().enumerate() {
        let rg = if i % 2 == 0 {
            "fleet-eastus"
        } else {
            "fleet-westeurope"
        };
        body.push_str(&format!(
            "  - {{ name: {n}, resourceGroup: {rg}, context: {n}, agents: {{ installer: manifests }} }}\n"
        ));
    }
    let path = w.dir.join("small-fleet.yaml");
    std::fs::write(&path, body).unwrap();
    (path.display().to_string(), names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_shard_applies_converge_without_throttling_failures() {
    let names: Vec<String> = ["a", "b", "c", "d"]
        .iter()
        .map(|s| format!("store-{s}"))
        .collect();
    let w = World::start_fleet(&names, 11).await;
    let (file, _) = small_fleet(&w);
    w.sandbox.faults().set_throttle(ThrottleOptions::arm_like());
    let results =
        tokio::task::block_in_place(|| all_shards(&w, &["apply", &file, "--auto-approve"], 2));
    for (k, (code, out, err)) in results.iter().enumerate() {
        assert_eq!(*code, 0, "shard {}:\n{out}{err}", k + 1);
        for bad in ["TooManyRequests", " 429 "] {
            assert!(
                !out.contains(bad) && !err.contains(bad),
                "{bad} in shard {}:\n{out}{err}",
                k + 1
            );
        }
    }
    // Converged: one unsharded plan finds nothing to do.
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", &file, "--detailed-exitcode"]));
    assert_eq!(code, 0, "{out}{err}");
    for n in &names {
        let (sub, rg) = if n.ends_with('a') || n.ends_with('c') {
            (w.sandbox.subscription_ids()[0].as_str(), "fleet-eastus")
        } else {
            (SECOND_SUBSCRIPTION, "fleet-westeurope")
        };
        let cc = w
            .sandbox
            .arm()
            .connected_cluster(sub, rg, n)
            .unwrap_or_else(|| panic!("{n} exists in {sub}/{rg}"));
        assert_eq!(cc["properties"]["connectivityStatus"], "Connected", "{n}");
    }

    // Concurrent shard destroys: a resource group goes only after the other shard's clusters.
    let results =
        tokio::task::block_in_place(|| all_shards(&w, &["destroy", &file, "--auto-approve"], 2));
    for (k, (code, out, err)) in results.iter().enumerate() {
        assert_eq!(*code, 0, "destroy shard {}:\n{out}{err}", k + 1);
    }
    assert!(
        w.sandbox.arm().connected_clusters().is_empty(),
        "every cluster is gone, in both subscriptions"
    );
    w.assert_no_secrets(&[]);
}
