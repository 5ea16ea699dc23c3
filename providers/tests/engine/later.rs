//! The engine after a first apply: saved plans made stale, apply-time checks on an apply that
//! changes nothing, read warnings in the plan, drift under an unchanged configuration,
//! refresh-only plans.

use super::*;

#[tokio::test]
async fn a_plan_made_stale_names_what_changed() {
    let (g, sub) = quickstart();
    let fake = fake_with_subscription(&sub);
    let p = providers(&fake);
    let first = plan_ok(&g, &p, &opts()).await;
    apply(&first, &p, &ApplyOptions::default(), Arc::new(NoEvents))
        .await
        .unwrap();
    let cc = addr("arc.connectedCluster.mynewcluster");
    fake.live.lock().unwrap().get_mut(&cc).unwrap()["tags"]["env"] = json!("drifted");
    let update = plan_ok(&g, &p, &opts()).await;
    assert!(
        arcplan_engine::executor::stale_resources(&update, &p)
            .await
            .unwrap()
            .is_empty(),
        "fresh right after planning"
    );
    // Someone changes the cluster between plan and apply.
    fake.live.lock().unwrap().get_mut(&cc).unwrap()["distribution"] = json!("k3s");
    let stale = arcplan_engine::executor::stale_resources(&update, &p)
        .await
        .unwrap();
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert_eq!(stale[0].address, cc);
    assert_eq!(stale[0].what, "distribution changed since the plan");
    fake.live.lock().unwrap().remove(&cc);
    let stale = arcplan_engine::executor::stale_resources(&update, &p)
        .await
        .unwrap();
    assert_eq!(stale[0].what, "it was deleted since the plan");
}

/// Applies the quickstart to a fresh fake and returns the fake, its providers and the graph.
async fn applied_quickstart(fake: FakeProvider) -> (ResourceGraph, Arc<FakeProvider>, Providers) {
    let (g, sub) = quickstart();
    let fake = Arc::new(fake);
    fake.live.lock().unwrap().insert(
        Address::new(arcplan_providers::kinds::SUBSCRIPTION, &sub),
        json!({"subscriptionId": sub, "state": "Enabled"}),
    );
    let p = providers(&fake);
    let first = plan_ok(&g, &p, &opts()).await;
    let report = apply(&first, &p, &ApplyOptions::default(), Arc::new(NoEvents))
        .await
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    (g, fake, p)
}

#[tokio::test]
async fn apply_time_checks_run_on_an_apply_that_changes_nothing() {
    let connected = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut fake = FakeProvider::new(ALL);
    let c = connected.clone();
    fake.check_fn = Some(Box::new(move |req| {
        if req.address.rtype == arcplan_providers::kinds::CONNECTIVITY
            && !c.load(std::sync::atomic::Ordering::SeqCst)
        {
            CheckStatus::Fail
        } else {
            CheckStatus::Pass
        }
    }));
    let (g, fake, p) = applied_quickstart(fake).await;
    connected.store(false, std::sync::atomic::Ordering::SeqCst);
    let again = plan_ok(&g, &p, &opts()).await;
    assert!(!again.has_changes());
    assert!(
        again.has_pending_checks(),
        "the connectivity check is pending"
    );
    let report = apply(&again, &p, &ApplyOptions::default(), Arc::new(NoEvents))
        .await
        .unwrap();
    let failed: Vec<_> = report.failed().map(|s| s.address.to_string()).collect();
    assert_eq!(failed, vec!["arc.connectivity.mynewcluster"], "{report:?}");
    let StepStatus::Failed { diagnostics } = &report.failed().next().unwrap().status else {
        unreachable!()
    };
    assert!(
        diagnostics[0].message.contains("scripted Fail"),
        "{diagnostics:?}"
    );
    assert!(!report.is_success());
    assert!(
        fake.calls_of("apply").len() == 7,
        "nothing was applied the second time"
    );
}

#[tokio::test]
async fn warnings_from_read_reach_the_plan_diagnostics() {
    let (g, sub) = quickstart();
    let fake = fake_with_subscription(&sub);
    let agents = addr("k8s.arcAgents.mynewcluster");
    fake.read_warnings
        .lock()
        .unwrap()
        .insert(agents.clone(), "10 objects stay in the cluster".into());
    let p = providers(&fake);
    let (_, diags) = plan(&g, &p, &opts(), Arc::new(NoEvents)).await.unwrap();
    let w: Vec<_> = diags.iter().filter(|d| d.code == "fake-warning").collect();
    assert_eq!(w.len(), 1, "{diags}");
    assert_eq!(w[0].message, "10 objects stay in the cluster");
    assert_eq!(w[0].address.as_deref(), Some(agents.to_string().as_str()));
}

#[tokio::test]
async fn drift_is_a_difference_under_an_unchanged_configuration() {
    let (g, fake, p) = applied_quickstart(FakeProvider::new(ALL)).await;
    let agents = addr("k8s.arcAgents.mynewcluster");
    // Someone changes the agents in the cluster: the configuration did not change.
    fake.live.lock().unwrap().get_mut(&agents).unwrap()["installer"] = json!("helm");

    let normal = plan_ok(&g, &p, &opts()).await;
    let c = normal.change(&agents).unwrap();
    assert_eq!(c.action, Action::Update);
    let drift = c.drift.as_ref().expect("the update is drift");
    assert_eq!(drift.action, Action::Update);
    assert_eq!(
        normal
            .drifted()
            .map(|c| c.address.clone())
            .collect::<Vec<_>>(),
        vec![agents.clone()],
        "only the changed resource is drift"
    );

    let refresh = plan_ok(
        &g,
        &p,
        &PlanOptions {
            mode: PlanMode::RefreshOnly,
            ..opts()
        },
    )
    .await;
    assert!(!refresh.has_changes(), "refresh-only changes nothing");
    assert!(
        refresh.has_drift(),
        "but shows what changed outside arcplan"
    );
    let c = refresh.change(&agents).unwrap();
    assert_eq!(c.action, Action::NoOp);
    assert_eq!(c.drift.as_ref().unwrap().action, Action::Update);

    // When the configuration differs from what was applied, the difference is a config change.
    fake.applied
        .lock()
        .unwrap()
        .insert(agents.clone(), "digest-of-an-older-file".into());
    let changed = plan_ok(&g, &p, &opts()).await;
    let c = changed.change(&agents).unwrap();
    assert_eq!(c.action, Action::Update);
    assert!(c.drift.is_none(), "{c:?}");
    let refresh = plan_ok(
        &g,
        &p,
        &PlanOptions {
            mode: PlanMode::RefreshOnly,
            ..opts()
        },
    )
    .await;
    assert!(!refresh.has_drift());
}

/// A destroy deletes what arcplan applied: that is the plan's request, never drift, even where
/// the resource records arcplan's last apply (it did, before: every destroy of applied agents
/// listed them as "changed outside of arcplan").
#[tokio::test]
async fn a_destroy_is_not_drift() {
    let (g, _fake, p) = applied_quickstart(FakeProvider::new(ALL)).await;
    let destroy = plan_ok(
        &g,
        &p,
        &PlanOptions {
            mode: PlanMode::Destroy,
            ..opts()
        },
    )
    .await;
    let agents = addr("k8s.arcAgents.mynewcluster");
    assert_eq!(destroy.change(&agents).unwrap().action, Action::Delete);
    assert!(
        !destroy.has_drift(),
        "{:?}",
        destroy.drifted().collect::<Vec<_>>()
    );
}

/// A resource that keeps no record of arcplan's last apply (the ARM resources): a normal plan
/// shows its difference as a change, and a refresh-only plan must not say the live state
/// matches: it lists the difference as drift it cannot attribute.
#[tokio::test]
async fn refresh_only_lists_differences_it_cannot_attribute() {
    let (g, fake, p) = applied_quickstart(FakeProvider::new(ALL)).await;
    let agents = addr("k8s.arcAgents.mynewcluster");
    fake.applied.lock().unwrap().remove(&agents);
    fake.live.lock().unwrap().get_mut(&agents).unwrap()["installer"] = json!("helm");

    let normal = plan_ok(&g, &p, &opts()).await;
    let c = normal.change(&agents).unwrap();
    assert_eq!(c.action, Action::Update);
    assert!(
        c.drift.is_none(),
        "not called drift without a record: {c:?}"
    );

    let refresh = plan_ok(
        &g,
        &p,
        &PlanOptions {
            mode: PlanMode::RefreshOnly,
            ..opts()
        },
    )
    .await;
    assert!(!refresh.has_changes());
    assert!(refresh.has_drift(), "the difference is not hidden");
    let d = refresh.change(&agents).unwrap().drift.clone().unwrap();
    assert!(!d.attributed);
    assert_eq!(d.action, Action::Update);
    assert!(d.message.contains("no record"), "{}", d.message);
}

#[tokio::test]
async fn a_saved_plan_is_stale_when_a_dependency_vanishes() {
    let (g, fake, p) = applied_quickstart(FakeProvider::new(ALL)).await;
    let agents = addr("k8s.arcAgents.mynewcluster");
    let cc = addr("arc.connectedCluster.mynewcluster");
    fake.live.lock().unwrap().get_mut(&agents).unwrap()["installer"] = json!("helm");
    let update = plan_ok(&g, &p, &opts()).await;
    let changed: Vec<_> = update
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .map(|c| c.address.clone())
        .collect();
    assert_eq!(changed, vec![agents.clone()], "an agents update only");
    assert!(
        arcplan_engine::executor::stale_resources(&update, &p)
            .await
            .unwrap()
            .is_empty(),
        "fresh right after planning"
    );
    // The connected cluster the agents report to is deleted in between.
    fake.live.lock().unwrap().remove(&cc);
    let stale = arcplan_engine::executor::stale_resources(&update, &p)
        .await
        .unwrap();
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert_eq!(stale[0].address, cc);
    assert_eq!(
        stale[0].what,
        "it was deleted since the plan, and k8s.arcAgents.mynewcluster depends on it"
    );
}

/// What a shard plans: what it owns and what that depends on; in a destroy also what depends on
/// what it owns (a resource group after the clusters in it), but never another cluster only
/// because a check covers both (an in-cluster run cannot reach the others).
#[test]
fn a_shard_selects_its_own_slice_and_in_a_destroy_what_lives_in_it() {
    let loaded = load_file(std::path::Path::new("../examples/fleet.yaml")).unwrap();
    let g = arcplan_providers::kinds::lower(&loaded.config).unwrap();
    let key: arcplan_engine::shard::KeyFn = Arc::new(|a: &Address| {
        arcplan_providers::kinds::cluster_of(a)
            .map(|c| format!("cluster {c}"))
            .unwrap_or_else(|| a.to_string())
    });
    let mine = |mode: PlanMode, shard: arcplan_engine::shard::Shard| {
        arcplan_engine::planner::selected(
            &g,
            &PlanOptions {
                mode,
                shard: Some(shard),
                ..opts()
            },
        )
    };
    let only = || arcplan_engine::shard::Shard::only("cluster store-eastus-01".into(), key.clone());
    for mode in [PlanMode::Normal, PlanMode::Destroy] {
        let set = mine(mode, only());
        assert!(
            set.contains(&addr("k8s.arcAgents.store-eastus-01")),
            "{mode:?}"
        );
        assert!(
            set.contains(&addr("azure.resourceGroup.fleet-eastus")),
            "read as a dependency"
        );
        assert!(
            !set.iter().any(|a| a.name.starts_with("store-eastus-02")),
            "{mode:?}: no other cluster: {set:?}"
        );
    }
    // The shard that owns resource group fleet-eastus plans, in a destroy, the clusters in it.
    let rg = addr("azure.resourceGroup.fleet-eastus");
    let owner = (1..=4)
        .find(|k| {
            arcplan_engine::shard::Shard::new(*k, 4, key.clone())
                .unwrap()
                .owns(&rg)
        })
        .unwrap();
    let shard = || arcplan_engine::shard::Shard::new(owner, 4, key.clone()).unwrap();
    let destroy = mine(PlanMode::Destroy, shard());
    for n in ["hq-eastus", "store-eastus-01", "store-eastus-04"] {
        assert!(
            destroy.contains(&addr(&format!("arc.connectedCluster.{n}"))),
            "{n}"
        );
    }
}
