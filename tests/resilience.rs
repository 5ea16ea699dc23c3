//! "Safe to re-run after anything": concurrent applies take turns on the cluster lock, and an
//! apply killed (SIGKILL) at seeded points is finished by the next apply, with nothing duplicated
//! or lost. Every run is scanned for secrets.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// The quickstart is fully and singly in place: one connected cluster, Connected, with the key
/// in the cluster matching it, and a plan with nothing to do.
fn assert_converged(w: &World, context: &str) {
    let sub = &w.sandbox.subscription_ids()[0];
    let clusters = w.sandbox.arm().connected_clusters();
    assert_eq!(
        clusters.len(),
        1,
        "{context}: exactly one connected cluster: {clusters:?}"
    );
    let cc = w
        .sandbox
        .arm()
        .connected_cluster(sub, "myAzureResourceGroup", "mynewcluster")
        .expect("the cluster exists");
    assert_eq!(
        cc["properties"]["connectivityStatus"], "Connected",
        "{context}: {cc}"
    );
    let secrets = w.sandbox.kube().list("v1", "Secret", Some("azure-arc"));
    let keys = secrets
        .iter()
        .filter(|s| s["metadata"]["name"] == "azure-arc-connect-privatekey")
        .count();
    assert_eq!(keys, 1, "{context}: one key Secret");
    let (code, out, err) = w.run(&["plan", "-f", QUICKSTART, "--detailed-exitcode"]);
    assert_eq!(code, 0, "{context}: the next plan is empty:\n{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_applies_take_turns() {
    let w = World::start_slow().await;
    let apply = ["apply", "-f", QUICKSTART, "--auto-approve"];
    // Both may wait: the second applies after the first, and finds nothing left to do.
    let mut with_wait = apply.to_vec();
    with_wait.extend(["--lock-timeout", "2m"]);
    let (a, b) = (w.spawn(&with_wait, &[]), w.spawn(&with_wait, &[]));
    let (oa, ob) = tokio::task::block_in_place(|| {
        (a.wait_with_output().unwrap(), b.wait_with_output().unwrap())
    });
    let ((ca, outa, erra), (cb, outb, errb)) = (w.record("apply A", &oa), w.record("apply B", &ob));
    assert_eq!((ca, cb), (0, 0), "{outa}{erra}\n---\n{outb}{errb}");
    let created = [&outa, &outb]
        .iter()
        .filter(|o| o.contains("Apply complete! Resources: 7 added"))
        .count();
    assert_eq!(
        created, 1,
        "exactly one apply created the resources:\n{outa}\n---\n{outb}"
    );
    assert!(
        outa.contains("No changes") || outb.contains("No changes"),
        "the other found nothing to do:\n{outa}\n---\n{outb}"
    );
    tokio::task::block_in_place(|| assert_converged(&w, "after two waiting applies"));

    // Neither waits: while one holds the lock, the other fails at once naming the holder.
    let drift = |w: &World| {
        w.sandbox.arm().update_connected_cluster(
            &w.sandbox.subscription_ids()[0],
            "myAzureResourceGroup",
            "mynewcluster",
            |c| {
                c["tags"]["env"] = serde_json::json!("drifted");
            },
        );
    };
    drift(&w);
    let holder = w.spawn(&apply, &[]);
    let started = Instant::now();
    // Wait until the first has taken the lock (its Lease exists), then try a second.
    let lease = loop {
        let l = ["azure-arc", "kube-system"].iter().find_map(|ns| {
            w.sandbox
                .kube()
                .get("coordination.k8s.io/v1", "Lease", Some(ns), "arcplan-lock")
        });
        if let Some(l) = l.filter(|l| !l["spec"]["holderIdentity"].is_null()) {
            break l;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first apply never took the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let o = tokio::task::block_in_place(|| w.spawn(&apply, &[]).wait_with_output().unwrap());
    let (code, out, err) = w.record("apply C", &o);
    let first = tokio::task::block_in_place(|| holder.wait_with_output().unwrap());
    let (first_code, first_out, first_err) = w.record("apply D", &first);
    assert_eq!(first_code, 0, "{first_out}{first_err}");
    if code == 1 {
        let who = lease["spec"]["holderIdentity"].as_str().unwrap_or_default();
        assert!(
            err.contains(who) || err.contains("arcplan"),
            "names the holder `{who}`:\n{err}"
        );
        assert!(err.contains("lock"), "{err}");
    } else {
        // The holder finished before the second asked: then it had nothing to do.
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("No changes"), "{out}");
    }
    tokio::task::block_in_place(|| assert_converged(&w, "after a refused concurrent apply"));
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_killed_anywhere_is_finished_by_the_next() {
    // Seeded kill points spread over the whole apply (registration, the key Secret before the ARM
    // PUT, the connected cluster's operation, the rollout, the connectivity wait).
    let seed: u64 = std::env::var("ARCPLAN_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let mut state = seed;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    // Time one uninterrupted apply on this machine, then spread the kill points over it.
    let baseline = World::start_slow().await;
    let started = Instant::now();
    let o = tokio::task::block_in_place(|| {
        baseline
            .spawn(&["apply", "-f", QUICKSTART, "--auto-approve"], &[])
            .wait_with_output()
            .unwrap()
    });
    let total = started.elapsed().as_millis() as u64;
    let (code, out, err) = baseline.record("baseline apply", &o);
    assert_eq!(code, 0, "{out}{err}");
    baseline.sandbox.shutdown().await;
    let step = total / 11;
    // One early point, so a kill lands before the key however quickly the key now comes (it is
    // generated while planning), then ten spread over the whole apply.
    let points: Vec<u64> = std::iter::once(step / 4 + next() % (step / 4).max(1))
        .chain((1..=10).map(|i| i * step + next() % step.max(1) / 2))
        .collect();
    let mut phases = std::collections::BTreeSet::new();
    for (i, at) in points.iter().enumerate() {
        let w = World::start_slow().await;
        let env = [("ARCPLAN_LOCK_LEASE", "2s")];
        let child = w.spawn(&["apply", "-f", QUICKSTART, "--auto-approve"], &env);
        tokio::time::sleep(Duration::from_millis(*at)).await;
        let mut child = child;
        let _ = child.kill(); // SIGKILL: no cleanup, no lock release.
        let killed = tokio::task::block_in_place(|| child.wait_with_output().unwrap());
        // Where the kill landed, from what the sandbox holds.
        let sub = w.sandbox.subscription_ids()[0].clone();
        let key = w
            .sandbox
            .kube()
            .get(
                "v1",
                "Secret",
                Some("azure-arc"),
                "azure-arc-connect-privatekey",
            )
            .is_some();
        let cc = w
            .sandbox
            .arm()
            .connected_cluster(&sub, "myAzureResourceGroup", "mynewcluster");
        phases.insert(match (key, &cc) {
            (false, None) => "before the key",
            (true, None) => "key stored, no ARM resource yet",
            (_, Some(c)) if c["properties"]["connectivityStatus"] != "Connected" => {
                "ARM resource, not Connected"
            }
            _ => "Connected",
        });
        let (_, out, _) = w.record(&format!("apply killed at {at}ms"), &killed);
        let phase = out
            .lines()
            .last()
            .unwrap_or("(before any output)")
            .to_owned();
        let context = format!("kill #{i} at {at}ms, last line: {phase}");
        // The next apply (waiting out the dead holder's lease) converges.
        let o = tokio::task::block_in_place(|| {
            w.spawn(
                &[
                    "apply",
                    "-f",
                    QUICKSTART,
                    "--auto-approve",
                    "--lock-timeout",
                    "1m",
                ],
                &env,
            )
            .wait_with_output()
            .unwrap()
        });
        let (code, out, err) = w.record("recovery apply", &o);
        assert_eq!(code, 0, "{context}: the recovery apply failed:\n{out}{err}");
        tokio::task::block_in_place(|| assert_converged(&w, &context));
        w.assert_no_secrets(&[]);
        w.sandbox.shutdown().await;
    }
    for phase in [
        "before the key",
        "key stored, no ARM resource yet",
        "ARM resource, not Connected",
    ] {
        assert!(
            phases.contains(phase),
            "no kill landed `{phase}`: {phases:?}"
        );
    }
}

/// A 20-cluster fleet applied while the sandbox injects seeded 5xx answers, dropped connections
/// and ARM throttling. The Azure client retries all of them inside one apply; the Kubernetes
/// client retries 429/503/504 but not 500s or dropped connections, so an apply may report a
/// failed change, and running it again must finish the job. The result is exact: every declared
/// resource once, nothing else, every key matching, every cluster Connected, and an empty plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_under_faults_converges_exactly() {
    let names: Vec<String> = (1..=20).map(|i| format!("edge-{i:02}")).collect();
    let w = World::start_fleet(&names, 20_261_123).await;
    let f = quickstart_fleet(&w.dir, "fleet20.yaml", &names);

    let faults = w.sandbox.faults();
    faults.set_error_rate(0.10);
    faults.set_drop_rate(0.03);
    let mut throttle = arcplan_sandbox::ThrottleOptions::arm_like();
    throttle.reads = arcplan_sandbox::BucketSpec {
        capacity: 40,
        refill_per_sec: 20,
    };
    throttle.writes = arcplan_sandbox::BucketSpec {
        capacity: 8,
        refill_per_sec: 4,
    };
    faults.set_throttle(throttle);

    let mut attempts = Vec::new();
    for attempt in 1..=3 {
        let o = tokio::task::block_in_place(|| {
            w.spawn(
                &["apply", "-f", &f, "--auto-approve", "--lock-timeout", "1m"],
                &[("ARCPLAN_LOCK_LEASE", "3s")],
            )
            .wait_with_output()
            .unwrap()
        });
        let (code, out, err) = w.record(&format!("apply attempt {attempt}"), &o);
        attempts.push(code);
        if code == 0 && (out.contains("Apply complete!") || out.contains("No changes")) {
            break;
        }
        assert!(
            err.contains("error") || out.contains("Apply failed"),
            "a failed attempt says why:\n{out}{err}"
        );
    }
    if attempts.last() != Some(&0) {
        let t = w.transcript.borrow();
        let tail: String = t
            .chars()
            .rev()
            .take(6000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        panic!("the fleet did not converge within three applies: {attempts:?}\n...{tail}");
    }

    // Check the result with the faults off.
    faults.set_error_rate(0.0);
    faults.set_drop_rate(0.0);
    faults.set_throttle(arcplan_sandbox::ThrottleOptions::default());
    let sub = w.sandbox.subscription_ids()[0].clone();
    let clusters = w.sandbox.arm().connected_clusters();
    assert_eq!(
        clusters.len(),
        20,
        "no duplicates, no orphans: {:?}",
        clusters.iter().map(|c| &c.1).collect::<Vec<_>>()
    );
    for n in &names {
        let cc = w
            .sandbox
            .arm()
            .connected_cluster(&sub, "myAzureResourceGroup", n)
            .unwrap_or_else(|| panic!("{n} missing"));
        assert_eq!(
            cc["properties"]["connectivityStatus"], "Connected",
            "{n}: the key matches and the agents report"
        );
        let kube = w.sandbox.kube_for(n).unwrap();
        let cm = kube
            .get("v1", "ConfigMap", Some("azure-arc"), "azure-clusterconfig")
            .unwrap();
        assert_eq!(cm["data"]["AZURE_RESOURCE_NAME"], n.as_str());
    }
    let (code, out, err) = w.run(&["plan", "-f", &f, "--detailed-exitcode"]);
    assert_eq!(code, 0, "the next plan is empty:\n{out}{err}");
    w.assert_no_secrets(&[]);
}
