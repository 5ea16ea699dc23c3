//! Plans end to end: apply-time checks on an apply that changes nothing, warnings that reach
//! the output (`destroy --cluster-unreachable`), drift (`plan --refresh-only`, drift labels in a
//! normal plan), and saved plans (re-reading what a change depends on; contents bound by
//! digests, so `show` and `apply` act on the same plan). Every test ends with the secret scan.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

/// Applies the quickstart and asserts it succeeded.
fn apply_quickstart(w: &World) {
    let (code, out, err) = w.run(&["apply", "-f", QUICKSTART, "--auto-approve"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_without_changes_still_runs_the_apply_time_checks() {
    // Agents that never report: the cluster stays `Connecting`.
    let w = World::start_with(|o| arcplan_sandbox::SandboxOptions {
        agents: arcplan_sandbox::agents::AgentOptions {
            interval: Duration::from_secs(3600),
            ..Default::default()
        },
        ..o
    })
    .await;
    let w = &w;
    let text = std::fs::read_to_string(root().join(QUICKSTART))
        .unwrap()
        .replace("timeout: 20m", "timeout: 20m\n      connectTimeout: 2s");
    assert!(text.contains("connectTimeout: 2s"));
    let file = w.dir.join("connecting.yaml");
    std::fs::write(&file, text).unwrap();
    let f = file.display().to_string();

    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["apply", "-f", &f, "--auto-approve"]));
    assert_eq!(code, 1, "the connectivity check fails:\n{out}{err}");
    assert!(out.contains("arc.connectivity.mynewcluster"), "{out}");

    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["apply", "-f", &f, "--auto-approve"]));
    assert!(out.contains("No changes."), "{out}{err}");
    assert_eq!(code, 1, "the check runs again and fails again:\n{out}{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("arc.connectivity.mynewcluster") && all.contains("still Connecting"),
        "names the check and why it failed:\n{all}"
    );
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_with_an_unreachable_cluster_lists_what_it_leaves() {
    let w = World::start().await;
    let w = &w;
    tokio::task::block_in_place(|| apply_quickstart(w));
    let (code, out, err) = tokio::task::block_in_place(|| {
        w.run(&[
            "destroy",
            "-f",
            QUICKSTART,
            "--auto-approve",
            "--cluster-unreachable",
        ])
    });
    assert_eq!(code, 0, "{out}{err}");
    let all = format!("{out}{err}");
    for left in [
        "Secret azure-arc/azure-arc-connect-privatekey",
        "ConfigMap azure-arc/azure-clusterconfig",
        "Deployment azure-arc/config-agent",
        "Deployment azure-arc/clusteridentityoperator",
        "kubectl delete namespace azure-arc azure-arc-release",
    ] {
        assert!(all.contains(left), "{left} is not reported:\n{all}");
    }
    assert!(
        w.sandbox
            .kube()
            .get("apps/v1", "Deployment", Some("azure-arc"), "config-agent")
            .is_some(),
        "the cluster was not touched"
    );
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_shown_by_refresh_only_and_labelled_in_a_plan() {
    let w = World::start().await;
    let w = &w;
    tokio::task::block_in_place(|| apply_quickstart(w));
    let (code, out, err) = tokio::task::block_in_place(|| {
        w.run(&[
            "plan",
            "-f",
            QUICKSTART,
            "--refresh-only",
            "--detailed-exitcode",
        ])
    });
    assert_eq!(code, 0, "nothing drifted yet:\n{out}{err}");

    // `kubectl -n azure-arc delete deployment config-agent`
    assert!(
        w.sandbox
            .kube()
            .delete("apps/v1", "Deployment", Some("azure-arc"), "config-agent")
    );
    let (code, out, err) = tokio::task::block_in_place(|| {
        w.run(&[
            "plan",
            "-f",
            QUICKSTART,
            "--refresh-only",
            "--detailed-exitcode",
        ])
    });
    assert_eq!(code, 2, "drift is something to act on:\n{out}{err}");
    assert!(
        out.contains("Objects have changed outside of arcplan"),
        "{out}"
    );
    assert!(out.contains("k8s.arcAgents.mynewcluster (drift)"), "{out}");
    assert!(out.contains("config-agent"), "says what changed: {out}");
    assert!(!out.contains("No changes."), "{out}");

    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--json"]));
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["resource_drift"],
        serde_json::json!(["k8s.arcAgents.mynewcluster"])
    );
    let agents = v["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "k8s.arcAgents.mynewcluster")
        .unwrap();
    assert_eq!(agents["change"]["actions"], serde_json::json!(["update"]));
    assert_eq!(agents["drift"]["actions"], serde_json::json!(["update"]));

    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("k8s.arcAgents.mynewcluster (drift)"), "{out}");
    assert!(
        out.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{out}"
    );
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_is_refused_when_a_dependency_was_deleted() {
    let w = World::start().await;
    let w = &w;
    let sub = w.sandbox.subscription_ids()[0].clone();
    tokio::task::block_in_place(|| apply_quickstart(w));
    assert!(
        w.sandbox
            .kube()
            .delete("apps/v1", "Deployment", Some("azure-arc"), "config-agent")
    );
    let plan_file = w.dir.join("agents.plan");
    let pf = plan_file.display().to_string();
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--out", &pf]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Plan: 0 to add, 1 to change, 0 to destroy.")
            && out.contains("~ k8s.arcAgents"),
        "an agents update only: {out}"
    );
    // The connected cluster the agents report to is deleted in ARM in between.
    assert!(
        w.sandbox
            .arm()
            .remove_connected_cluster(&sub, "myAzureResourceGroup", "mynewcluster")
    );
    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["apply", &pf]));
    assert_eq!(code, 1, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("arc.connectedCluster.mynewcluster: it was deleted since the plan, and k8s.arcAgents.mynewcluster depends on it"),
        "names the vanished dependency:\n{all}"
    );
    assert!(all.contains("Nothing was changed"), "{all}");
    assert!(
        w.sandbox
            .kube()
            .get("apps/v1", "Deployment", Some("azure-arc"), "config-agent")
            .is_none(),
        "the agents were not reinstalled"
    );
    w.assert_no_secrets(&[&plan_file]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_saved_plan_is_refused_by_show_and_apply() {
    let w = World::start().await;
    let w = &w;
    let sub = w.sandbox.subscription_ids()[0].clone();
    tokio::task::block_in_place(|| apply_quickstart(w));
    w.sandbox
        .arm()
        .update_connected_cluster(&sub, "myAzureResourceGroup", "mynewcluster", |c| {
            c["tags"]["env"] = serde_json::json!("drifted");
        });
    let plan_file = w.dir.join("tags.plan");
    let pf = plan_file.display().to_string();
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--out", &pf]));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["show", &pf]));
    assert_eq!(code, 0, "an intact plan shows:\n{out}{err}");
    assert!(out.contains("~ arc.connectedCluster.mynewcluster"), "{out}");

    // Someone edits the plan file: `desired.tags.env` of the connected cluster.
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    let change = v["plan"]["changes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["address"] == "arc.connectedCluster.mynewcluster")
        .unwrap();
    assert_eq!(change["desired"]["tags"]["env"], "lab");
    change["desired"]["tags"]["env"] = "tampered".into();
    std::fs::write(&plan_file, serde_json::to_string_pretty(&v).unwrap()).unwrap();

    for args in [vec!["show", pf.as_str()], vec!["apply", pf.as_str()]] {
        let (code, out, err) = tokio::task::block_in_place(|| w.run(&args));
        assert_eq!(code, 1, "{args:?} refuses:\n{out}{err}");
        assert!(
            err.contains("was modified after it was written")
                && err.contains(
                    "the contents of change arc.connectedCluster.mynewcluster do not match its digest"
                ),
            "{args:?} names the mismatch:\n{out}{err}"
        );
        assert!(!out.contains("tampered"), "{out}");
    }
    let cc = w
        .sandbox
        .arm()
        .connected_cluster(&sub, "myAzureResourceGroup", "mynewcluster")
        .unwrap();
    assert_eq!(cc["tags"]["env"], "drifted", "nothing was applied");
    w.assert_no_secrets(&[&plan_file]);
}

/// A saved plan is read under the same rules as a desired-state file: a FIFO or a device is
/// refused before it is opened (nothing blocks, nothing is read without bound), and a file larger
/// than any plan arcplan writes is refused from its size, not read. `show` and `apply` share the
/// reader.
#[test]
fn a_plan_file_that_is_not_a_bounded_regular_file_is_refused() {
    let scratch = scratch_dir("arcplan-planfile-");
    let dir = scratch.path();
    let fifo = dir.join("fifo.plan");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let huge = dir.join("huge.plan");
    // Sparse: 300 MiB reported, no disk used.
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(300 * 1024 * 1024)
        .unwrap();
    let cases = [
        (fifo.display().to_string(), "FIFO"),
        ("/dev/zero".to_owned(), "character device"),
        (huge.display().to_string(), "over 256 MiB"),
    ];
    for (path, expected) in &cases {
        for cmd in ["show", "apply"] {
            let (tx, rx) = std::sync::mpsc::channel();
            let args = vec![cmd.to_owned(), path.clone()];
            std::thread::spawn(move || {
                let _ = tx.send(run_binary(&args, None));
            });
            let o = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("`arcplan {cmd} {path}` did not return"));
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{cmd} {path}: {err}");
            assert!(err.contains(expected), "{cmd} {path}: {err}");
        }
    }
}

/// The ARM side keeps no record of arcplan's last apply, so a tag edited in the portal cannot be
/// told apart from a change of the file; `--refresh-only` still must not say the live state
/// matches: it lists the difference (exit 2 with `--detailed-exitcode`), saying it may be either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_only_never_hides_a_difference_on_the_azure_side() {
    let w = World::start().await;
    let w = &w;
    tokio::task::block_in_place(|| apply_quickstart(w));
    let sub = w.sandbox.subscription_ids()[0].clone();
    w.sandbox
        .arm()
        .update_connected_cluster(&sub, "myAzureResourceGroup", "mynewcluster", |c| {
            c["tags"]["env"] = serde_json::json!("hacked");
        });
    let (code, out, err) = tokio::task::block_in_place(|| {
        w.run(&[
            "plan",
            "-f",
            QUICKSTART,
            "--refresh-only",
            "--detailed-exitcode",
        ])
    });
    assert_eq!(code, 2, "a difference is something to look at:\n{out}{err}");
    assert!(!out.contains("No changes."), "{out}");
    assert!(
        out.contains("arc.connectedCluster.mynewcluster (differs)"),
        "{out}"
    );
    assert!(out.contains("no record"), "{out}");
    let (_, out, _) = tokio::task::block_in_place(|| {
        w.run(&["plan", "-f", QUICKSTART, "--refresh-only", "--json"])
    });
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["resource_drift"],
        serde_json::json!(["arc.connectedCluster.mynewcluster"])
    );
    w.assert_no_secrets(&[]);
}
