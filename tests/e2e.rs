//! End to end: the real binary against a sandbox this test owns (`--sandbox-dir`), through the
//! quickstart's whole life: plan, apply, no-op plan, status, drift, repair, stale saved plan,
//! destroy. Every byte printed and every plan file is scanned for secrets.

mod common;

use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_lifecycle() {
    let w = World::start().await;
    let w = &w;
    let sub = w.sandbox.subscription_ids()[0].clone();

    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--detailed-exitcode"]));
    assert_eq!(code, 2, "changes present:\n{out}{err}");
    assert!(
        out.contains("Plan: 7 to add, 0 to change, 0 to destroy."),
        "{out}"
    );
    assert!(out.contains("+ arc.connectedCluster.mynewcluster"), "{out}");

    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["apply", "-f", QUICKSTART, "--auto-approve"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Apply complete! Resources: 7 added, 0 changed, 0 destroyed."),
        "{out}"
    );
    assert!(
        out.contains("Connected"),
        "the cluster ends Connected: {out}"
    );
    let cc = w
        .sandbox
        .arm()
        .connected_cluster(&sub, "myAzureResourceGroup", "mynewcluster")
        .expect("created");
    assert_eq!(cc["properties"]["connectivityStatus"], "Connected");
    assert!(
        cc["properties"]["agentPublicKeyCertificate"]
            .as_str()
            .unwrap()
            .starts_with("MIICCgKCAgEA"),
        "an RSA-4096 PKCS#1 key"
    );

    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--detailed-exitcode"]));
    assert_eq!(code, 0, "no changes after apply:\n{out}{err}");

    // The run-book's verification step, with the real kubectl against the sandbox.
    if std::path::Path::new("/usr/bin/kubectl").exists() {
        let kubeconfig = w.dir.join("kubeconfig");
        let o = std::process::Command::new("/usr/bin/kubectl")
            .args([
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
                "-n",
                "azure-arc",
                "get",
                "deployments,pods",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        for agent in [
            "clusteridentityoperator",
            "config-agent",
            "metrics-agent",
            "kube-aad-proxy",
        ] {
            assert!(
                text.contains(&format!("deployment.apps/{agent}")),
                "{agent} missing:\n{text}"
            );
            assert!(
                text.contains(&format!("pod/{agent}-")),
                "{agent}'s pod missing:\n{text}"
            );
        }
        assert!(text.contains("1/1") && text.contains("Running"), "{text}");
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "kubectl is expected on CI machines"
        );
    }

    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["status", "-f", QUICKSTART]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Connected") && out.contains("mynewcluster"),
        "{out}"
    );

    // Drift: someone edits the tags in the portal.
    w.sandbox
        .arm()
        .update_connected_cluster(&sub, "myAzureResourceGroup", "mynewcluster", |c| {
            c["tags"]["env"] = serde_json::json!("drifted");
        });
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--detailed-exitcode"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("~ arc.connectedCluster.mynewcluster"), "{out}");
    assert!(
        out.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{out}"
    );

    // A saved plan made stale by a change in between is refused, naming the resource.
    let plan_file = w.dir.join("repair.plan");
    let pf = plan_file.display().to_string();
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--out", &pf]));
    assert_eq!(code, 0, "{out}{err}");
    w.sandbox
        .arm()
        .update_connected_cluster(&sub, "myAzureResourceGroup", "mynewcluster", |c| {
            c["properties"]["distribution"] = serde_json::json!("k3s");
        });
    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["apply", &pf]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("stale") && err.contains("arc.connectedCluster.mynewcluster"),
        "{err}"
    );
    assert!(err.contains("distribution"), "says what changed: {err}");

    // A fresh saved plan applies exactly; then nothing is left to do.
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--out", &pf]));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["apply", &pf]));
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, _) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--detailed-exitcode"]));
    assert_eq!(code, 0);

    // JSON plan document.
    let (code, out, _) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--json"]));
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).expect("the JSON plan parses");
    assert_eq!(doc["format_version"], "1.0");
    assert!(
        doc["resource_changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["change"]["actions"] == serde_json::json!(["no-op"])
                || c["change"]["actions"] == serde_json::json!(["read"])),
        "{doc}"
    );

    // Without --auto-approve and without a terminal, apply refuses.
    let (code, _, err) = tokio::task::block_in_place(|| w.run(&["destroy", "-f", QUICKSTART]));
    assert_eq!(code, 1);
    assert!(err.contains("--auto-approve"), "{err}");

    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["destroy", "-f", QUICKSTART, "--auto-approve"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("destroyed."), "{out}");
    assert!(
        w.sandbox
            .arm()
            .connected_cluster(&sub, "myAzureResourceGroup", "mynewcluster")
            .is_none()
    );
    let (code, out, _) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--detailed-exitcode"]));
    assert_eq!(code, 2, "everything to create again: {out}");

    w.assert_no_secrets(&[&plan_file]);
}

#[test]
fn apply_sandbox_runs_the_quickstart_in_one_command() {
    let o = run_binary(
        &[
            "apply".into(),
            "--sandbox".into(),
            "--auto-approve".into(),
            "-f".into(),
            QUICKSTART.into(),
        ],
        None,
    );
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("Plan: 7 to add"), "{out}");
    assert!(
        out.contains("Apply complete! Resources: 7 added, 0 changed, 0 destroyed."),
        "{out}"
    );
    assert!(out.contains("Connected"), "{out}");
    assert!(!out.contains("eyJ") && !err.contains("eyJ"));
}
