//! Engine tests over the quickstart graph with the scripted fake provider: graph order, plan,
//! apply, re-plan, replace, prune, destroy, failure isolation and the parallel bound.

use arcplan_config::load_file;
use arcplan_engine::address::{Address, ResourceType as T};
use arcplan_engine::events::NoEvents;
use arcplan_engine::executor::{ApplyOptions, StepStatus, apply};
use arcplan_engine::graph::{EdgeKind, Mode, ResourceGraph, ResourceNode};
use arcplan_engine::plan::{Action, CheckStatus, Plan, PlanMode, ReasonCode};
use arcplan_engine::planner::{PlanOptions, plan};
use arcplan_engine::provider::Providers;
use arcplan_engine::testing::FakeProvider;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const ALL: &[T] = &[
    arcplan_providers::kinds::SUBSCRIPTION,
    arcplan_providers::kinds::RESOURCE_PROVIDER,
    arcplan_providers::kinds::ROLE_CHECK,
    arcplan_providers::kinds::RESOURCE_GROUP,
    arcplan_providers::kinds::CONNECTED_CLUSTER,
    arcplan_providers::kinds::CONNECTIVITY,
    arcplan_providers::kinds::ONBOARDING_KEY,
    arcplan_providers::kinds::ARC_AGENTS,
];

fn quickstart() -> (ResourceGraph, String) {
    let loaded =
        load_file(std::path::Path::new("../examples/quickstart.yaml")).expect("quickstart loads");
    (
        arcplan_providers::kinds::lower(&loaded.config).expect("graph builds"),
        loaded.config.azure.subscription,
    )
}

fn addr(s: &str) -> Address {
    s.parse().unwrap()
}

fn fake_with_subscription(sub: &str) -> Arc<FakeProvider> {
    let fake = FakeProvider::new(ALL);
    fake.live.lock().unwrap().insert(
        Address::new(arcplan_providers::kinds::SUBSCRIPTION, sub),
        json!({"subscriptionId": sub, "state": "Enabled"}),
    );
    Arc::new(fake)
}

fn providers(fake: &Arc<FakeProvider>) -> Providers {
    let mut p = Providers::new();
    p.register(fake.clone());
    p
}

fn opts() -> PlanOptions {
    PlanOptions {
        stack: "quickstart".into(),
        config_digest: "test".into(),
        ..Default::default()
    }
}

async fn plan_ok(g: &ResourceGraph, p: &Providers, o: &PlanOptions) -> Plan {
    plan(g, p, o, Arc::new(NoEvents))
        .await
        .expect("plan succeeds")
        .0
}

fn action_of(plan: &Plan, a: &str) -> Action {
    plan.change(&addr(a))
        .unwrap_or_else(|| panic!("{a} not in plan"))
        .action
}

#[test]
fn quickstart_graph_orders_the_run_book() {
    let (g, sub) = quickstart();
    let order: Vec<String> = g
        .order()
        .unwrap()
        .iter()
        .map(|n| n.address.to_string())
        .collect();
    let at = |a: &str| {
        order
            .iter()
            .position(|x| x == a)
            .unwrap_or_else(|| panic!("{a} missing from {order:?}"))
    };
    let subscription = format!("azure.subscription.{sub}");
    assert_eq!(at(&subscription), 0);
    for before_after in [
        (
            "azure.resourceProvider.Microsoft.Kubernetes",
            "arc.connectedCluster.mynewcluster",
        ),
        (
            "azure.resourceGroup.myAzureResourceGroup",
            "arc.connectedCluster.mynewcluster",
        ),
        (
            "azure.roleCheck.myAzureResourceGroup",
            "azure.resourceGroup.myAzureResourceGroup",
        ),
        (
            "k8s.onboardingKey.mynewcluster",
            "arc.connectedCluster.mynewcluster",
        ),
        (
            "arc.connectedCluster.mynewcluster",
            "k8s.arcAgents.mynewcluster",
        ),
        (
            "k8s.arcAgents.mynewcluster",
            "arc.connectivity.mynewcluster",
        ),
    ] {
        assert!(
            at(before_after.0) < at(before_after.1),
            "{} must come before {}",
            before_after.0,
            before_after.1
        );
    }
    // The key-before-cluster edge comes from a reference, the group edge is declared.
    let edges = g.edges();
    let kind = |a: &str, b: &str| {
        edges
            .iter()
            .find(|(x, y, _)| x.to_string() == a && y.to_string() == b)
            .map(|e| e.2)
    };
    assert_eq!(
        kind(
            "k8s.onboardingKey.mynewcluster",
            "arc.connectedCluster.mynewcluster"
        ),
        Some(EdgeKind::Reference)
    );
    assert_eq!(
        kind(
            "azure.resourceGroup.myAzureResourceGroup",
            "arc.connectedCluster.mynewcluster"
        ),
        Some(EdgeKind::Declared)
    );
    assert_eq!(
        g.node(&addr("arc.connectivity.mynewcluster")).unwrap().mode,
        Mode::ApplyCheck
    );
}

#[test]
fn cycles_are_named() {
    let mut g = ResourceGraph::new();
    for n in ["a", "b", "c", "d"] {
        g.add(ResourceNode {
            address: addr(&format!("x.y.{n}")),
            mode: Mode::Managed,
            desired: json!({}),
            source: None,
        })
        .unwrap();
    }
    g.depend(&addr("x.y.b"), &addr("x.y.a"), EdgeKind::Declared)
        .unwrap();
    g.depend(&addr("x.y.c"), &addr("x.y.b"), EdgeKind::Declared)
        .unwrap();
    g.depend(&addr("x.y.a"), &addr("x.y.c"), EdgeKind::Declared)
        .unwrap();
    g.depend(&addr("x.y.d"), &addr("x.y.a"), EdgeKind::Declared)
        .unwrap();
    let err = g.order().unwrap_err();
    assert_eq!(
        err.to_string(),
        "dependency cycle: x.y.a -> x.y.b -> x.y.c -> x.y.a"
    );
    // A self-reference is a cycle too, found through the reference.
    let mut g = ResourceGraph::new();
    g.add(ResourceNode {
        address: addr("x.y.s"),
        mode: Mode::Managed,
        desired: json!({"v": arcplan_engine::graph::reference(&addr("x.y.s"), "out")}),
        source: None,
    })
    .unwrap();
    g.link_references().unwrap();
    assert_eq!(
        g.order().unwrap_err().to_string(),
        "dependency cycle: x.y.s -> x.y.s"
    );
    assert!(
        g.add(ResourceNode {
            address: addr("x.y.s"),
            mode: Mode::Managed,
            desired: json!({}),
            source: None
        })
        .is_err()
    );
}

#[tokio::test]
async fn plan_apply_replan_is_empty() {
    let (g, sub) = quickstart();
    let fake = fake_with_subscription(&sub);
    let p = providers(&fake);
    let first = plan_ok(&g, &p, &opts()).await;
    assert_eq!(
        action_of(&first, &format!("azure.subscription.{sub}")),
        Action::Read
    );
    assert_eq!(
        action_of(&first, "arc.connectedCluster.mynewcluster"),
        Action::Create
    );
    // The public key comes from the key created in the same apply: unknown until then.
    let cc = first
        .change(&addr("arc.connectedCluster.mynewcluster"))
        .unwrap();
    assert_eq!(
        cc.after_unknown,
        vec!["/agentPublicKeyCertificate".to_owned()]
    );
    assert_eq!(
        first.summary().add,
        7,
        "3 providers, group, key, cluster, agents"
    );
    assert!(
        first.checks.iter().any(|c| c.status == CheckStatus::Pending
            && c.address == addr("arc.connectivity.mynewcluster"))
    );
    assert!(
        first
            .checks
            .iter()
            .filter(|c| c.address.rtype == arcplan_providers::kinds::ROLE_CHECK)
            .all(|c| c.status == CheckStatus::Pass)
    );

    let report = apply(&first, &p, &ApplyOptions::default(), Arc::new(NoEvents))
        .await
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.counts(), (7, 0, 0));
    // The key was applied before the cluster, and the cluster got the key's output.
    let applies = fake.calls_of("apply");
    let at = |a: &str| applies.iter().position(|x| *x == addr(a)).unwrap();
    assert!(at("k8s.onboardingKey.mynewcluster") < at("arc.connectedCluster.mynewcluster"));
    let live_cc = fake.live.lock().unwrap()[&addr("arc.connectedCluster.mynewcluster")].clone();
    assert_eq!(
        live_cc["agentPublicKeyCertificate"], "key-of-k8s.onboardingKey.mynewcluster",
        "reference resolved to the key's output"
    );
    let checks = fake.calls_of("check");
    assert_eq!(checks.len(), 3);
    assert!(checks[..2].contains(&addr("azure.roleCheck.subscription")));
    assert!(checks[..2].contains(&addr("azure.roleCheck.myAzureResourceGroup")));
    assert_eq!(
        checks[2],
        addr("arc.connectivity.mynewcluster"),
        "the post-apply check runs last"
    );

    let second = plan_ok(&g, &p, &opts()).await;
    assert!(
        !second.has_changes(),
        "{:#?}",
        second
            .changes
            .iter()
            .filter(|c| c.action.is_change())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn update_replace_and_requested_replace() {
    let (g, sub) = quickstart();
    let mut fake = FakeProvider::new(ALL);
    fake.replace_keys = vec!["location".into()];
    let fake = Arc::new(fake);
    fake.live.lock().unwrap().insert(
        Address::new(arcplan_providers::kinds::SUBSCRIPTION, &sub),
        json!({}),
    );
    let p = providers(&fake);
    let first = plan_ok(&g, &p, &opts()).await;
    apply(&first, &p, &ApplyOptions::default(), Arc::new(NoEvents))
        .await
        .unwrap();

    let cc = addr("arc.connectedCluster.mynewcluster");
    fake.live.lock().unwrap().get_mut(&cc).unwrap()["tags"]["env"] = json!("drifted");
    let drift = plan_ok(&g, &p, &opts()).await;
    assert_eq!(
        action_of(&drift, "arc.connectedCluster.mynewcluster"),
        Action::Update
    );
    assert_eq!(drift.summary().change, 1);

    fake.live.lock().unwrap().get_mut(&cc).unwrap()["location"] = json!("westeurope");
    let moved = plan_ok(&g, &p, &opts()).await;
    let change = moved.change(&cc).unwrap();
    assert_eq!(change.action, Action::Replace);
    assert_eq!(
        change.reason.as_ref().unwrap().code,
        ReasonCode::CannotUpdate
    );
    assert_eq!(change.replace_paths, vec!["/location".to_owned()]);

    fake.live.lock().unwrap().get_mut(&cc).unwrap()["location"] = json!("eastus");
    fake.live.lock().unwrap().get_mut(&cc).unwrap()["tags"]["env"] = json!("lab");
    let o = PlanOptions {
        replace: vec![cc.clone()],
        ..opts()
    };
    let requested = plan_ok(&g, &p, &o).await;
    assert_eq!(
        requested.change(&cc).unwrap().reason.as_ref().unwrap().code,
        ReasonCode::Requested
    );
    // The agents refer to the cluster's id: replacing the cluster cascades to them.
    assert_eq!(
        requested.change(&cc).unwrap().cascades_to,
        vec![addr("k8s.arcAgents.mynewcluster")]
    );
}

#[tokio::test]
async fn prune_and_destroy_delete_inside_out() {
    let (g, sub) = quickstart();
    let fake = fake_with_subscription(&sub);
    let p = providers(&fake);
    let first = plan_ok(&g, &p, &opts()).await;
    apply(&first, &p, &ApplyOptions::default(), Arc::new(NoEvents))
        .await
        .unwrap();

    // A resource of this stack that the file no longer declares.
    let orphan = addr("arc.connectedCluster.oldcluster");
    fake.live
        .lock()
        .unwrap()
        .insert(orphan.clone(), json!({"stack": "quickstart"}));
    fake.live.lock().unwrap().insert(
        addr("arc.connectedCluster.foreign"),
        json!({"stack": "other"}),
    );
    let pruned = plan_ok(&g, &p, &opts()).await;
    let c = pruned.change(&orphan).expect("orphan planned");
    assert_eq!(c.action, Action::Delete);
    assert_eq!(
        c.reason.as_ref().unwrap().code,
        ReasonCode::DeleteBecauseNoResourceConfig
    );
    assert!(
        pruned
            .change(&addr("arc.connectedCluster.foreign"))
            .is_none(),
        "another stack's resource is left alone"
    );
    apply(&pruned, &p, &ApplyOptions::default(), Arc::new(NoEvents))
        .await
        .unwrap();
    assert!(!fake.live.lock().unwrap().contains_key(&orphan));

    let destroy = plan_ok(
        &g,
        &p,
        &PlanOptions {
            mode: PlanMode::Destroy,
            ..opts()
        },
    )
    .await;
    assert_eq!(
        action_of(&destroy, "azure.resourceGroup.myAzureResourceGroup"),
        Action::Delete
    );
    assert!(
        destroy
            .checks
            .iter()
            .all(|c| c.address.rtype != arcplan_providers::kinds::CONNECTIVITY),
        "no connectivity wait when destroying"
    );
    let before = fake.calls_of("apply").len();
    let report = apply(&destroy, &p, &ApplyOptions::default(), Arc::new(NoEvents))
        .await
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    let deletes: Vec<Address> = fake.calls_of("apply")[before..].to_vec();
    let at = |a: &str| deletes.iter().position(|x| *x == addr(a)).unwrap();
    assert!(at("k8s.arcAgents.mynewcluster") < at("arc.connectedCluster.mynewcluster"));
    assert!(
        at("arc.connectedCluster.mynewcluster") < at("azure.resourceGroup.myAzureResourceGroup")
    );
    assert!(
        at("arc.connectedCluster.mynewcluster") < at("k8s.onboardingKey.mynewcluster"),
        "the key outlives the ARM resource"
    );
}

#[tokio::test]
async fn delete_after_puts_the_arm_delete_before_the_agents() {
    let (g, sub) = quickstart();
    let mut fake = FakeProvider::new(ALL);
    fake.delete_after = Some(Box::new(|a: &Address| {
        if a.rtype == arcplan_providers::kinds::ARC_AGENTS {
            vec![Address::new(
                arcplan_providers::kinds::CONNECTED_CLUSTER,
                a.name.clone(),
            )]
        } else {
            Vec::new()
        }
    }));
    let fake = Arc::new(fake);
    fake.live.lock().unwrap().insert(
        Address::new(arcplan_providers::kinds::SUBSCRIPTION, &sub),
        json!({}),
    );
    let p = providers(&fake);
    let first = plan_ok(&g, &p, &opts()).await;
    apply(&first, &p, &ApplyOptions::default(), Arc::new(NoEvents))
        .await
        .unwrap();
    let destroy = plan_ok(
        &g,
        &p,
        &PlanOptions {
            mode: PlanMode::Destroy,
            ..opts()
        },
    )
    .await;
    assert_eq!(
        destroy
            .change(&addr("k8s.arcAgents.mynewcluster"))
            .unwrap()
            .delete_after,
        vec![addr("arc.connectedCluster.mynewcluster")]
    );
    let before = fake.calls_of("apply").len();
    let report = apply(&destroy, &p, &ApplyOptions::default(), Arc::new(NoEvents))
        .await
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    let deletes: Vec<Address> = fake.calls_of("apply")[before..].to_vec();
    let at = |a: &str| deletes.iter().position(|x| *x == addr(a)).unwrap();
    assert!(at("arc.connectedCluster.mynewcluster") < at("k8s.arcAgents.mynewcluster"));
    assert!(
        at("arc.connectedCluster.mynewcluster") < at("azure.resourceGroup.myAzureResourceGroup")
    );
}

#[tokio::test]
async fn a_failure_skips_only_its_dependents() {
    let (g, sub) = quickstart();
    let fake = fake_with_subscription(&sub);
    fake.fail_apply
        .lock()
        .unwrap()
        .insert(addr("k8s.onboardingKey.mynewcluster"));
    let p = providers(&fake);
    let first = plan_ok(&g, &p, &opts()).await;
    let report = apply(&first, &p, &ApplyOptions::default(), Arc::new(NoEvents))
        .await
        .unwrap();
    let status = |a: &str| {
        report
            .steps
            .iter()
            .find(|s| s.address == addr(a))
            .unwrap()
            .status
            .clone()
    };
    assert!(matches!(
        status("k8s.onboardingKey.mynewcluster"),
        StepStatus::Failed { .. }
    ));
    for skipped in [
        "arc.connectedCluster.mynewcluster",
        "k8s.arcAgents.mynewcluster",
        "arc.connectivity.mynewcluster",
    ] {
        assert_eq!(
            status(skipped),
            StepStatus::Skipped {
                reason: "k8s.onboardingKey.mynewcluster failed".into()
            },
            "{skipped}"
        );
    }
    assert!(matches!(
        status("azure.resourceGroup.myAzureResourceGroup"),
        StepStatus::Applied { .. }
    ));
    assert!(matches!(
        status("azure.resourceProvider.Microsoft.ExtendedLocation"),
        StepStatus::Applied { .. }
    ));
    assert_eq!(report.failed().count(), 1);
    assert!(!report.is_success());
}

#[tokio::test]
async fn failed_plan_checks_block_apply_and_pending_checks_run_last() {
    let (g, sub) = quickstart();
    let mut fake = FakeProvider::new(ALL);
    fake.check_fn = Some(Box::new(|req| {
        if req.address.rtype == arcplan_providers::kinds::ROLE_CHECK {
            CheckStatus::Fail
        } else {
            CheckStatus::Pass
        }
    }));
    let fake = Arc::new(fake);
    fake.live.lock().unwrap().insert(
        Address::new(arcplan_providers::kinds::SUBSCRIPTION, &sub),
        json!({}),
    );
    let p = providers(&fake);
    let plan = plan_ok(&g, &p, &opts()).await;
    assert!(plan.has_failed_checks());
    let err = apply(&plan, &p, &ApplyOptions::default(), Arc::new(NoEvents))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("azure.roleCheck.myAzureResourceGroup"),
        "{err}"
    );
    assert!(fake.calls_of("apply").is_empty(), "nothing changed");
}

#[tokio::test]
async fn parallelism_bounds_concurrent_applies() {
    let mut g = ResourceGraph::new();
    for i in 0..24 {
        g.add(ResourceNode {
            address: Address::new(arcplan_providers::kinds::RESOURCE_GROUP, format!("g{i}")),
            mode: Mode::Managed,
            desired: json!({"n": i}),
            source: None,
        })
        .unwrap();
    }
    let mut fake = FakeProvider::new(ALL);
    fake.apply_delay = Duration::from_millis(20);
    let fake = Arc::new(fake);
    let p = providers(&fake);
    let plan = plan_ok(&g, &p, &opts()).await;
    for (parallelism, expected) in [(4, 4), (1, 1)] {
        fake.live.lock().unwrap().clear();
        let o = ApplyOptions {
            parallelism,
            ..Default::default()
        };
        let before = fake.peak_concurrency();
        assert!(before <= 4);
        let report = apply(&plan, &p, &o, Arc::new(NoEvents)).await.unwrap();
        assert_eq!(report.counts().0, 24);
        if parallelism == 4 {
            assert_eq!(fake.peak_concurrency(), expected);
        }
    }
}

#[tokio::test]
async fn cancellation_reports_what_did_not_start() {
    let (g, sub) = quickstart();
    let mut fake = FakeProvider::new(ALL);
    fake.apply_delay = Duration::from_millis(30);
    let fake = Arc::new(fake);
    fake.live.lock().unwrap().insert(
        Address::new(arcplan_providers::kinds::SUBSCRIPTION, &sub),
        json!({}),
    );
    let p = providers(&fake);
    let plan = plan_ok(&g, &p, &opts()).await;
    let o = ApplyOptions {
        parallelism: 2,
        ..Default::default()
    };
    let cancel = o.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        cancel.cancel();
    });
    let report = apply(&plan, &p, &o, Arc::new(NoEvents)).await.unwrap();
    let applied = report
        .steps
        .iter()
        .filter(|s| matches!(s.status, StepStatus::Applied { .. }))
        .count();
    let cancelled = report
        .skipped()
        .filter(|s| matches!(&s.status, StepStatus::Skipped { reason } if reason.contains("interrupted")))
        .count();
    assert_eq!(applied, 2, "the two in-flight changes finish");
    assert!(
        cancelled >= 5,
        "the rest is reported as not started: {report:?}"
    );
    assert_eq!(fake.calls_of("apply").len(), 2);
}

#[tokio::test]
async fn targets_pull_in_dependencies_and_excludes_drop_dependents() {
    let (g, sub) = quickstart();
    let fake = fake_with_subscription(&sub);
    let p = providers(&fake);
    let o = PlanOptions {
        targets: vec![addr("azure.resourceGroup.myAzureResourceGroup")],
        ..opts()
    };
    let targeted = plan_ok(&g, &p, &o).await;
    let planned: Vec<String> = targeted
        .changes
        .iter()
        .map(|c| c.address.to_string())
        .collect();
    assert_eq!(
        planned,
        vec![
            format!("azure.subscription.{sub}"),
            "azure.resourceGroup.myAzureResourceGroup".into()
        ]
    );

    let o = PlanOptions {
        excludes: vec![addr("k8s.onboardingKey.mynewcluster")],
        ..opts()
    };
    let excluded = plan_ok(&g, &p, &o).await;
    for gone in [
        "k8s.onboardingKey.mynewcluster",
        "arc.connectedCluster.mynewcluster",
        "k8s.arcAgents.mynewcluster",
    ] {
        assert!(excluded.change(&addr(gone)).is_none(), "{gone}");
    }
    assert!(
        excluded
            .change(&addr("azure.resourceGroup.myAzureResourceGroup"))
            .is_some()
    );

    let o = PlanOptions {
        targets: vec![addr("azure.resourceGroup.myAzureResourceGrup")],
        ..opts()
    };
    let err = plan(&g, &p, &o, Arc::new(NoEvents)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("did you mean `azure.resourceGroup.myAzureResourceGroup`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_data_source_fails_the_plan_naming_it() {
    let (g, _) = quickstart();
    let fake = Arc::new(FakeProvider::new(ALL));
    let p = providers(&fake);
    let err = plan(&g, &p, &opts(), Arc::new(NoEvents)).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("does not exist or is not visible to this credential"),
        "{text}"
    );
    assert_eq!(
        err.errors().count(),
        1,
        "dependents are skipped, not reported again: {text}"
    );
}

// Staleness of saved plans, apply-time checks, read warnings, drift and refresh-only: in
// `engine/later.rs`.
#[path = "engine/later.rs"]
mod later;
