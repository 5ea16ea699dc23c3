//! The plan benchmark: `cargo bench --bench plan` (N and latency from ARCPLAN_BENCH_CLUSTERS,
//! default 500, and ARCPLAN_BENCH_LATENCY_MS, default 50).
//!
//! It starts the in-process sandbox emulating N Kubernetes clusters, onboards one cluster for
//! real with the release binary, clones its state into the other N-1 (a real onboarding would
//! spend minutes generating N RSA-4096 keys, which says nothing about planning), then injects
//! latency and ARM-like throttling and measures, with the real binary:
//! 1. the requests of a no-op plan of one onboarded cluster, by endpoint;
//! 2. the wall time of a no-op plan of N clusters at --parallelism 10, next to the lower bound
//!    that latency and parallelism impose (every request takes the latency; at most
//!    `parallelism` resources are read at once, each reading its requests in sequence; ARM's
//!    read bucket, 250 + 25/s, does not bind for the few list pages a batched plan needs), and
//!    the ratio of the two;
//! 3. the same plan at --parallelism 1 (how `az connectedk8s` goes, one cluster after another),
//!    and the speed-up;
//! 4. the plan process's peak resident memory (VmHWM), and the time `validate` spends loading
//!    and checking the N-cluster file (in process, best of five);
//! 5. requests that failed for throttling.
//!
//! The last line printed is one JSON object with these figures under stable names. Timings are
//! figures to compare in one run on one machine, never pass/fail assertions.

use arcplan_sandbox::{Sandbox, ThrottleOptions};
use serde_json::{Value, json};
mod common;

use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// The resource groups of the benchmark fleet.
fn bench_groups() -> Vec<String> {
    (0..GROUPS).map(|g| format!("bench-rg-{g}")).collect()
}

/// Runs the release binary: (exit code, stdout+stderr, wall seconds, peak RSS in MiB).
fn run4(args: &[&str]) -> (i32, String, f64, f64) {
    let r = arcplan(args);
    (r.code, r.text(), r.wall, r.peak_mib)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = env_num("ARCPLAN_BENCH_CLUSTERS", 500).max(1) as usize;
    let latency_ms = env_num("ARCPLAN_BENCH_LATENCY_MS", 50);
    let parallelism = 10u64;
    let names: Vec<String> = (1..=n).map(|i| format!("c{i:04}")).collect();
    let dir = std::env::temp_dir().join(format!("arcplan-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sandbox = start_sandbox(names.clone()).await;
    sandbox.write_files(&dir).unwrap();
    let d = dir.display().to_string();
    let one = dir.join("one.yaml");
    let fleet = dir.join("fleet.yaml");
    std::fs::write(&one, config("bench", &bench_groups(), &names[..1])).unwrap();
    std::fs::write(&fleet, config("bench", &bench_groups(), &names)).unwrap();
    let (one_s, fleet_s) = (one.display().to_string(), fleet.display().to_string());

    eprintln!("benchmark: {n} clusters, {latency_ms} ms latency, ARM-like throttling");
    let (code, out, _, _) = run4(&["apply", "-f", &one_s, "--sandbox-dir", &d, "--auto-approve"]);
    assert_eq!(code, 0, "onboarding the first cluster failed:\n{out}");

    // 1. A no-op plan of one onboarded cluster, by endpoint (a new process: token included).
    let before = sandbox.request_counts();
    let (code, out, _, _) = run4(&[
        "plan",
        "-f",
        &one_s,
        "--sandbox-dir",
        &d,
        "--detailed-exitcode",
    ]);
    assert_eq!(code, 0, "the one-cluster plan is not a no-op:\n{out}");
    let after = sandbox.request_counts();
    let noop = json!({"entra": after.entra - before.entra, "arm": after.arm - before.arm, "kube": after.kube - before.kube, "total": after.total() - before.total()});
    eprintln!("1. no-op plan of one cluster: {noop}");

    clone_onboarding(&sandbox, &names, &dir).await;
    let (code, out, _, _) = run4(&[
        "plan",
        "-f",
        &fleet_s,
        "--sandbox-dir",
        &d,
        "--detailed-exitcode",
    ]);
    assert_eq!(
        code,
        0,
        "the fleet is not fully onboarded:\n{}",
        out.chars().take(4000).collect::<String>()
    );

    sandbox
        .faults()
        .set_latency(Duration::from_millis(latency_ms), Duration::ZERO);
    sandbox.faults().set_throttle(ThrottleOptions::arm_like());

    // 2. The N-cluster no-op plan at --parallelism 10.
    let p = parallelism.to_string();
    let before = sandbox.request_counts();
    let (code, out, wall, rss) = run4(&[
        "plan",
        "-f",
        &fleet_s,
        "--sandbox-dir",
        &d,
        "--detailed-exitcode",
        "--parallelism",
        &p,
    ]);
    let after = sandbox.request_counts();
    assert_eq!(
        code,
        0,
        "the fleet plan failed or found changes:\n{}",
        out.chars().take(4000).collect::<String>()
    );
    let requests = after.total() - before.total();
    let throttle_failures = out.matches("TooManyRequests").count() + out.matches(" 429 ").count();
    let bound = requests as f64 * latency_ms as f64 / 1000.0 / parallelism as f64;
    eprintln!(
        "2. no-op plan of {n} clusters: {wall:.2} s for {requests} requests; bound {bound:.2} s; ratio {:.2}",
        wall / bound
    );
    eprintln!("4. peak RSS of the plan: {rss:.1} MiB");

    // 3. The same, one resource at a time (ARCPLAN_BENCH_SEQUENTIAL=0 skips it: it takes long).
    let sequential = if env_num("ARCPLAN_BENCH_SEQUENTIAL", 1) == 0 {
        f64::NAN
    } else {
        let (code, out, sequential, _) = run4(&[
            "plan",
            "-f",
            &fleet_s,
            "--sandbox-dir",
            &d,
            "--detailed-exitcode",
            "--parallelism",
            "1",
        ]);
        assert_eq!(code, 0, "{}", out.chars().take(2000).collect::<String>());
        sequential
    };
    eprintln!(
        "3. the same at --parallelism 1: {sequential:.2} s; speed-up {:.1}x",
        sequential / wall
    );

    // 4. validate of the N-cluster file, in process.
    let text = std::fs::read_to_string(&fleet).unwrap();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let loaded = arcplan_config::load_str(&text, "fleet.yaml").expect("valid");
        arcplan_providers::kinds::lower(&loaded.config).expect("graph");
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
    }
    eprintln!("4. validate of the {n}-cluster file: {best:.1} ms");
    eprintln!("5. requests failed for throttling: {throttle_failures}");
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    let figures: Value = json!({
        "clusters": n,
        "latency_ms": latency_ms,
        "parallelism": parallelism,
        "noop_requests_1": noop,
        "plan_requests": requests,
        "plan_wall_s": round(wall),
        "plan_bound_s": round(bound),
        "plan_ratio": round(wall / bound),
        "sequential_wall_s": round(sequential),
        "speedup": round(sequential / wall),
        "peak_rss_mb": round(rss),
        "validate_ms": round(best),
        "throttle_failures": throttle_failures,
    });
    println!("{figures}");
}

/// Copies the first cluster's onboarded state (key Secret, ownership ConfigMap, agents, and the
/// ARM connected cluster with the same public key) to every other cluster, then waits until the
/// simulated agents report them all Connected.
async fn clone_onboarding(sandbox: &Sandbox, names: &[String], dir: &Path) {
    let first = sandbox.kube_for(&names[0]).expect("first cluster");
    let mut objects: Vec<Value> = Vec::new();
    objects.extend(first.get("v1", "Namespace", None, "azure-arc"));
    for kind in ["Secret", "ConfigMap"] {
        objects.extend(first.list("v1", kind, Some("azure-arc")));
    }
    objects.extend(first.list("apps/v1", "Deployment", Some("azure-arc")));
    let cc = sandbox
        .arm()
        .connected_clusters()
        .into_iter()
        .next()
        .expect("the first connected cluster")
        .2;
    let key = cc["properties"]["agentPublicKeyCertificate"].clone();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(sandbox.tls().client_config().unwrap())
        .build()
        .unwrap();
    let token = sandbox.mint_token(&sandbox.default_claims(Duration::from_secs(3600)));
    for (i, name) in names.iter().enumerate().skip(1) {
        let rg = format!("bench-rg-{}", i % GROUPS);
        let kube = sandbox.kube_for(name).expect("cluster");
        for o in &objects {
            let mut o = o.clone();
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                for k in [
                    "uid",
                    "resourceVersion",
                    "creationTimestamp",
                    "managedFields",
                    "generation",
                ] {
                    m.remove(k);
                }
            }
            if let Some(obj) = o.as_object_mut() {
                obj.remove("status");
            }
            if o["kind"] == "ConfigMap" && o["metadata"]["name"] == "azure-clusterconfig" {
                o["data"]["AZURE_RESOURCE_NAME"] = json!(name);
                o["data"]["AZURE_RESOURCE_GROUP"] = json!(rg);
            }
            kube.put(o).expect("clone an object");
        }
        let url = format!(
            "{}subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Kubernetes/connectedClusters/{name}?api-version=2026-05-01",
            sandbox.resource_manager()
        );
        let body = json!({"location": "eastus", "tags": {"arcplan-stack": "bench"}, "identity": {"type": "SystemAssigned"},
            "properties": {"agentPublicKeyCertificate": key, "distribution": "generic", "infrastructure": "generic"}});
        let resp = http
            .put(url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .expect("PUT");
        assert!(
            resp.status().is_success(),
            "cloning {name}: {}",
            resp.status()
        );
    }
    let started = Instant::now();
    loop {
        let connected = sandbox
            .arm()
            .connected_clusters()
            .iter()
            .filter(|c| c.2["properties"]["connectivityStatus"] == "Connected")
            .count();
        if connected == names.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "only {connected}/{} clusters connected",
            names.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = dir;
}
