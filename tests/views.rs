//! End to end: what the user sees. The Markdown plan of a 60-cluster fleet fits a pull-request
//! comment; update diffs show no read-only attributes as removals; `status` exits 1 naming what
//! is not ready; timeouts print as configured, and the Connected wait has its own setting; plain
//! output has no control sequences. Every test ends with the secret scan.

mod common;

use common::*;
use std::time::Duration;

/// The quickstart with `edit` applied to its text, written beside the sandbox files.
fn quickstart_with(w: &World, name: &str, edit: impl Fn(String) -> String) -> String {
    let text = std::fs::read_to_string(root().join(QUICKSTART)).unwrap();
    let path = w.dir.join(name);
    std::fs::write(&path, edit(text)).unwrap();
    path.display().to_string()
}

/// A copy of examples/fleet.yaml with `n` clusters, spread over its three resource groups.
fn fleet_of(n: usize) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(root().join("examples/fleet.yaml")).unwrap();
    let head = &text[..text
        .find("\nclusters:\n")
        .expect("fleet.yaml lists clusters")
        + 1];
    let regions = ["eastus", "westeurope", "southeastasia"];
    let mut out = format!("{head}clusters:\n");
    let mut names = Vec::new();
    for i in 0..n {
        let region = regions[i % 3];
        let name = format!("store-{region}-{:02}", i / 3 + 1);
        out.push_str(&format!(
            "  - name: {name}\n    resourceGroup: fleet-{region}\n    context: {name}\n    distribution: k3s\n    infrastructure: generic\n    tags: {{ store: \"{:04}\" }}\n    agents: {{ installer: helm, timeout: 15m }}\n",
            i + 1
        ));
        names.push(name);
    }
    (out, names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_markdown_plan_of_a_60_cluster_fleet_fits_a_pull_request_comment() {
    let (text, names) = fleet_of(60);
    let clusters = names.clone();
    let w = World::start_with(move |o| arcplan_sandbox::SandboxOptions {
        clusters,
        nodes_per_cluster: 1,
        ..o
    })
    .await;
    let file = w.dir.join("fleet60.yaml");
    std::fs::write(&file, text).unwrap();
    let file = file.display().to_string();
    let (code, md, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", &file, "--format", "markdown"]));
    assert_eq!(code, 0, "{md}{err}");
    assert!(
        md.len() < 65_536,
        "{} bytes do not fit a GitHub comment",
        md.len()
    );
    // 60 × 3 per cluster, 3 groups, 3 registrations in each of the file's 2 subscriptions.
    assert!(
        md.contains("Plan: 189 to add, 0 to change, 0 to destroy."),
        "{md}"
    );
    // Every cluster has its row in the table.
    for n in &names {
        assert!(
            md.contains(&format!("| <code>{n}</code> | 3 | 0 | 0 |")),
            "{n} has no row"
        );
    }
    // Well formed: every <details> is closed, fences are balanced, and the note says what was
    // left out and where the full plan is.
    assert_eq!(
        md.matches("<details>").count(),
        md.matches("</details>").count()
    );
    assert_eq!(md.matches("```").count() % 2, 0);
    assert!(
        md.contains("> [!NOTE]") && md.contains("arcplan show PLANFILE"),
        "{md}"
    );
    assert!(
        md.matches("<details>").count() > 10,
        "details are kept while they fit"
    );

    // A smaller budget is honoured, and without a cut in the middle of a block.
    let (code, small, err) = tokio::task::block_in_place(|| {
        w.run(&[
            "plan",
            "-f",
            &file,
            "--format",
            "markdown",
            "--max-bytes",
            "20000",
        ])
    });
    assert_eq!(code, 0, "{err}");
    assert!(small.len() <= 20_001, "{}", small.len()); // the trailing newline
    assert_eq!(
        small.matches("<details>").count(),
        small.matches("</details>").count()
    );
    let (code, _, err) = tokio::task::block_in_place(|| {
        w.run(&[
            "plan",
            "-f",
            &file,
            "--format",
            "markdown",
            "--max-bytes",
            "12",
        ])
    });
    assert_eq!(code, 1, "a budget too small is a usage error");
    assert!(err.contains("at least 1024"), "{err}");
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_status_and_plain_output() {
    let w = World::start_with(|o| arcplan_sandbox::SandboxOptions {
        registration_delay: Duration::from_millis(100),
        ..o
    })
    .await;
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["apply", "-f", QUICKSTART, "--auto-approve"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !out.contains('\x1b') && !err.contains('\x1b'),
        "no control sequences off a terminal"
    );

    // An update of the agents: the read-only state (ownership record, readiness, counts) is
    // named as such, never shown as a removal.
    let changed = quickstart_with(&w, "upgrade.yaml", |t| {
        t.replace(
            "timeout: 20m",
            "timeout: 20m\n      autoUpgrade: false\n      version: 1.21.10",
        )
    });
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", &changed, "--detailed-exitcode"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("~ k8s.arcAgents.mynewcluster"), "{out}");
    for removal in [
        "- ownership",
        "- ready",
        "- agents ",
        "- installed",
        "-> null",
    ] {
        assert!(!out.contains(removal), "`{removal}` in an update:\n{out}");
    }
    assert!(
        out.contains("# (read-only, not changed by this plan: ") && out.contains("ownership"),
        "{out}"
    );

    // Status: ready, exit 0; then one agent Deployment goes away: exit 1, naming it.
    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["status", "-f", QUICKSTART]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1/1 cluster ready."), "{out}");
    assert!(
        w.sandbox
            .kube()
            .delete("apps/v1", "Deployment", Some("azure-arc"), "kube-aad-proxy"),
        "the sandbox had the Deployment"
    );
    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["status", "-f", QUICKSTART]));
    assert_eq!(
        code, 1,
        "a missing agent Deployment is not ready:\n{out}{err}"
    );
    assert!(
        out.contains("Deployment azure-arc/kube-aad-proxy: missing"),
        "{out}"
    );
    assert!(out.contains("8/9 deployments available"), "{out}");
    assert!(
        out.contains("0/1 cluster ready; 1 not ready: mynewcluster."),
        "{out}"
    );
    let (code, out, _) =
        tokio::task::block_in_place(|| w.run(&["status", "-f", QUICKSTART, "--json"]));
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("status --json is JSON");
    assert_eq!(v["ready"], false);
    assert_eq!(
        v["summary"]["not_ready"],
        serde_json::json!(["mynewcluster"])
    );
    assert!(
        v["clusters"][0]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("kube-aad-proxy")),
        "{v}"
    );
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readiness_timeout_prints_as_configured() {
    // Agent Deployments that take a minute: a 2-second budget runs out.
    let w = World::start_with(|o| arcplan_sandbox::SandboxOptions {
        registration_delay: Duration::from_millis(100),
        deployment_ready_delay: Duration::from_secs(60),
        ..o
    })
    .await;
    let file = quickstart_with(&w, "slow.yaml", |t| {
        t.replace("timeout: 20m", "timeout: 2s")
    });
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["apply", "-f", &file, "--auto-approve"]));
    assert_eq!(code, 1, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("were not ready after 2s (agents.timeout)"),
        "the configured value, not what was left of it:\n{all}"
    );
    assert!(!all.contains("ns "), "no nanoseconds:\n{all}");
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connected_wait_has_its_own_setting() {
    // Agents that never report (their first heartbeat is long past): the Connected wait runs
    // out after `agents.connectTimeout`, not after `agents.timeout`.
    let w = World::start_with(|o| arcplan_sandbox::SandboxOptions {
        registration_delay: Duration::from_millis(100),
        agents: arcplan_sandbox::AgentOptions {
            interval: Duration::from_secs(3600),
            ..Default::default()
        },
        ..o
    })
    .await;
    let file = quickstart_with(&w, "connect.yaml", |t| {
        t.replace("timeout: 20m", "timeout: 20m\n      connectTimeout: 3s")
    });
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["apply", "-f", &file, "--auto-approve"]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("still Connecting after 3s (agents.connectTimeout)"),
        "{out}{err}"
    );
    w.assert_no_secrets(&[]);
}
