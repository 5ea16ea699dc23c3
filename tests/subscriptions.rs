//! Many subscriptions in one file, end to end: resource groups and clusters that name their
//! subscription (a cluster takes its group's), a group name declared in two subscriptions,
//! provider registrations and role checks per subscription, one list per subscription in a
//! no-op plan, prune across subscriptions, and destroy.

mod common;

use common::*;
use serde_json::Value;

const S1: &str = "3000e2af-0000-46d9-0000-4bdb12000000";
const S2: &str = SECOND_SUBSCRIPTION;

/// The file: `azure.subscription` S1; group `stores` in S1, group `factories` in S2 (its
/// clusters follow it), group `shared` in both (its S2 cluster names S2).
fn file(w: &World, clusters: &[(&str, &str, Option<&str>)]) -> String {
    let mut y = format!(
        "apiVersion: arcplan/v1
stack: subs
azure:
  subscription: {S1}
  tenant: 72f988bf-0000-0000-0000-000000000000
resourceProviders: [Microsoft.Kubernetes, Microsoft.KubernetesConfiguration]
access:
  requireAnyRole: [Owner, Contributor]
resourceGroups:
  - {{ name: stores, location: eastus }}
  - {{ name: factories, location: westeurope, subscription: {S2} }}
  - {{ name: shared, location: eastus }}
  - {{ name: shared, location: eastus, subscription: {S2} }}
clusters:
"
    );
    for (name, rg, sub) in clusters {
        let sub = sub
            .map(|s| format!(", subscription: {s}"))
            .unwrap_or_default();
        y.push_str(&format!(
            "  - {{ name: {name}, resourceGroup: {rg}{sub}, context: {name}, agents: {{ installer: manifests, timeout: 2m }} }}\n"
        ));
    }
    let path = w.dir.join("subs.yaml");
    std::fs::write(&path, y).unwrap();
    path.display().to_string()
}

const ALL: [(&str, &str, Option<&str>); 4] = [
    ("store-1", "stores", None),
    ("factory-1", "factories", None),
    ("shared-1", "shared", Some(S1)),
    ("shared-2", "shared", Some(S2)),
];

/// The world, and its sandbox's request log (in a directory held by the test).
async fn world() -> (World, tempfile::TempDir) {
    let logs = scratch_dir("arcplan-subs-log-");
    let log = logs.path().join("requests.jsonl");
    let w = World::start_with(|o| arcplan_sandbox::SandboxOptions {
        subscription_ids: vec![S1.into(), S2.into()],
        clusters: ALL.iter().map(|c| c.0.to_string()).collect(),
        log_path: Some(log),
        ..o
    })
    .await;
    (w, logs)
}

fn requests(log: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_file_connects_clusters_in_two_subscriptions() {
    let (w, logs) = world().await;
    let log = logs.path().join("requests.jsonl");
    let f = file(&w, &ALL);

    let (code, out, err) = w.run(&["plan", "-f", &f, "--json"]);
    assert_eq!(code, 0, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let planned: Vec<&str> = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"]["actions"] != serde_json::json!(["no-op"]))
        .filter_map(|c| c["address"].as_str())
        .collect();
    for a in [
        "azure.resourceGroup.stores".to_string(),
        format!("azure.resourceGroup.{S2}/factories"),
        "azure.resourceGroup.shared".to_string(),
        format!("azure.resourceGroup.{S2}/shared"),
        format!("azure.resourceProvider.{S2}/Microsoft.Kubernetes"),
        "azure.resourceProvider.Microsoft.Kubernetes".to_string(),
        "arc.connectedCluster.factory-1".to_string(),
    ] {
        assert!(planned.contains(&a.as_str()), "{a} is planned: {planned:?}");
    }

    let (code, out, err) = w.run(&["apply", "-f", &f, "--auto-approve"]);
    assert_eq!(code, 0, "{out}{err}");
    let arm = w.sandbox.arm();
    for (name, rg, sub) in [
        ("store-1", "stores", S1),
        ("factory-1", "factories", S2),
        ("shared-1", "shared", S1),
        ("shared-2", "shared", S2),
    ] {
        let cc = arm
            .connected_cluster(sub, rg, name)
            .unwrap_or_else(|| panic!("{name} is in {sub}/{rg}"));
        assert_eq!(cc["properties"]["connectivityStatus"], "Connected", "{cc}");
        let cm = w
            .sandbox
            .kube_for(name)
            .unwrap()
            .get("v1", "ConfigMap", Some("azure-arc"), "azure-clusterconfig")
            .expect("the agents' ownership record");
        assert_eq!(cm["data"]["AZURE_SUBSCRIPTION_ID"], sub, "{name}: {cm}");
    }
    assert_eq!(arm.connected_clusters().len(), 4);
    for sub in [S1, S2] {
        assert_eq!(
            arm.provider_state(sub, "Microsoft.Kubernetes"),
            Some(arcplan_sandbox::arm::RegistrationState::Registered),
            "registered in {sub}"
        );
    }

    // A no-op plan reads each subscription's lists once.
    let before = requests(&log).len();
    let (code, out, err) = w.run(&["plan", "-f", &f, "--detailed-exitcode"]);
    assert_eq!(code, 0, "the next plan is empty:\n{out}{err}");
    let seen = requests(&log);
    for sub in [S1, S2] {
        for list in [
            "providers/Microsoft.Kubernetes/connectedClusters",
            "resourcegroups",
            "providers",
        ] {
            let path = format!("/subscriptions/{sub}/{list}");
            let n = seen[before..]
                .iter()
                .filter(|r| r["method"] == "GET" && r["server"] == "arm")
                .filter(|r| {
                    r["path"]
                        .as_str()
                        .is_some_and(|p| p.eq_ignore_ascii_case(&path))
                })
                .count();
            assert_eq!(n, 1, "GET {path} once in a no-op plan");
        }
    }

    // Removing a cluster of S2 from the file prunes it there.
    let f = file(&w, &ALL[..3]);
    let (code, out, err) = w.run(&["apply", "-f", &f, "--auto-approve"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("arc.connectedCluster.shared-2"), "{out}");
    assert!(arm.connected_cluster(S2, "shared", "shared-2").is_none());
    assert!(arm.connected_cluster(S1, "shared", "shared-1").is_some());

    let (code, out, err) = w.run(&["destroy", "-f", &f, "--auto-approve"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(arm.connected_clusters().is_empty(), "{out}");
    for (sub, rg) in [
        (S1, "stores"),
        (S2, "factories"),
        (S1, "shared"),
        (S2, "shared"),
    ] {
        assert!(arm.resource_group(sub, rg).is_none(), "{sub}/{rg} is gone");
    }
    w.assert_no_secrets(&[]);
}

/// Roles are checked in each subscription: Owner of one subscription does not cover the
/// groups and registrations of the other, and the plan says where the role is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_subscription_is_checked_for_its_own_role() {
    use arcplan_sandbox::arm::PrincipalRole;
    let (w, _logs) = world().await;
    let arm = w.sandbox.arm();
    arm.set_role(PrincipalRole::None);
    arm.assign_role(&format!("/subscriptions/{S1}"), PrincipalRole::Owner);
    let f = file(&w, &ALL);

    // No role at all in S2: not even the subscription can be read, and the error says where.
    let (code, out, err) = w.run(&["plan", "-f", &f]);
    assert_eq!(code, 1, "{out}{err}");
    let text = format!("{out}{err}");
    assert!(
        text.contains(&format!("over scope '/subscriptions/{S2}'")),
        "{text}"
    );

    // Reader in S2: its role checks fail, at S2's scopes only.
    arm.assign_role(&format!("/subscriptions/{S2}"), PrincipalRole::Reader);
    let (code, out, err) = w.run(&["plan", "-f", &f]);
    assert_eq!(code, 1, "{out}{err}");
    let err = format!("{out}{err}");
    let failed: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("✗ azure.roleCheck."))
        .collect();
    let passed: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("✓ azure.roleCheck."))
        .collect();
    assert_eq!((failed.len(), passed.len()), (3, 3), "{err}");
    for l in &failed {
        assert!(
            l.contains(&format!("at /subscriptions/{S2}")),
            "only S2's checks fail: {l}"
        );
    }
    for l in &passed {
        assert!(
            l.contains(&format!("at /subscriptions/{S1}")),
            "S1's checks pass: {l}"
        );
    }
    assert!(
        failed
            .iter()
            .any(|l| l.contains("azure.roleCheck.") && l.contains("/factories")),
        "the check of S2's group `factories` fails:\n{err}"
    );
    assert!(arm.connected_clusters().is_empty(), "nothing was changed");
}
