//! The apply benchmark: `cargo bench --bench apply` (N from `-- --clusters N` or
//! ARCPLAN_BENCH_CLUSTERS, default 500; `-- --quick` is N = 100; latency ARCPLAN_BENCH_LATENCY_MS,
//! default 50; parallelism ARCPLAN_BENCH_PARALLELISM, default 50).
//!
//! It measures onboarding a fleet of fresh clusters, keys and all, with the release binary as its
//! own process against the sandbox (served by this process):
//! 1. RSA-4096 key generation on one core (arcplan's generator, here, one key after another):
//!    median, mean and p90 of the thread's CPU time over ARCPLAN_BENCH_KEYS keys (default 25),
//!    and the median wall time;
//! 2. one cluster's critical path without its key: a fresh probe cluster (in a stack and group
//!    of its own) applied alone, from the start of its key's apply to its last event, less the
//!    time the apply waited for the key; at the benchmark's latency and ARM-like throttling;
//! 3. `arcplan apply --auto-approve --parallelism P` of N fresh clusters: wall time, the client's
//!    peak resident memory (VmHWM) and CPU time, next to the bound
//!    max(key CPU ÷ cores, ARM write throttle, critical path × N ÷ P), and their ratio. Key CPU
//!    is the mean key time × N; the write throttle is (writes − 200) ÷ 10 per second (ARM's
//!    write bucket), the writes being one connected-cluster PUT per cluster plus the resource
//!    groups and provider registrations.
//!
//! The last line printed is one JSON object (`keygen_ms_median`, `apply_wall_s_<N>`,
//! `apply_bound_s_<N>`, `apply_ratio_<N>`, `apply_rss_mb_<N>`, and the parts of the bound).
//! Timings are figures to compare in one run on one machine, never pass/fail assertions.

use arcplan_sandbox::ThrottleOptions;
use serde_json::{Value, json};
mod common;

use common::*;
use std::time::{Duration, Instant};

const PROBE: &str = "p0001";
/// Provider registrations of a first apply (the file's `resourceProviders`).
const REGISTRATIONS: usize = 3;

fn clusters_wanted() -> usize {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--quick") {
        return 100;
    }
    let from_arg = args
        .iter()
        .position(|a| a == "--clusters")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok());
    from_arg
        .unwrap_or_else(|| env_num("ARCPLAN_BENCH_CLUSTERS", 500) as usize)
        .max(1)
}

/// One cluster's critical path from an NDJSON apply: from its key's `apply_start` to its last
/// event, less the time between the key's "generating"/"waiting" step and "generated".
fn critical_path(run: &Run, name: &str) -> Option<(f64, f64)> {
    let mine = format!(".{name}\"");
    let events: Vec<(f64, Value)> = run
        .lines
        .iter()
        .filter(|(_, l)| l.contains(&mine))
        .filter_map(|(t, l)| Some((*t, serde_json::from_str::<Value>(l).ok()?)))
        .collect();
    let key_addr = format!("k8s.onboardingKey.{name}");
    let is_key = |v: &Value| v["address"] == key_addr.as_str();
    let start = events
        .iter()
        .find(|(_, v)| v["type"] == "apply_start" && is_key(v))?
        .0;
    let end = events.last()?.0;
    let msg = |v: &Value| v["message"].as_str().unwrap_or("").to_owned();
    let wait_from = events
        .iter()
        .find(|(_, v)| {
            is_key(v) && (msg(v).starts_with("waiting for") || msg(v).starts_with("generating"))
        })
        .map(|e| e.0);
    let wait_to = events
        .iter()
        .find(|(_, v)| is_key(v) && msg(v).starts_with("generated the"))
        .map(|e| e.0);
    let key_wait = match (wait_from, wait_to) {
        (Some(a), Some(b)) if b >= a => b - a,
        _ => 0.0,
    };
    Some((end - start - key_wait, key_wait))
}

/// This thread's CPU time (utime + stime, in 10 ms ticks) in milliseconds.
fn thread_cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) * 10.0
}

/// When (seconds since the start) the first line of `kind` arrived.
fn first_of(run: &Run, kind: &str) -> f64 {
    let tag = format!("\"type\":\"{kind}\"");
    run.lines
        .iter()
        .find(|(_, l)| l.contains(&tag))
        .map_or(f64::NAN, |(t, _)| *t)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = clusters_wanted();
    let latency_ms = env_num("ARCPLAN_BENCH_LATENCY_MS", 50);
    let parallelism = env_num("ARCPLAN_BENCH_PARALLELISM", 50).max(1);
    let sample = env_num("ARCPLAN_BENCH_KEYS", 25).max(1) as usize;
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);
    eprintln!(
        "apply benchmark: {n} fresh clusters, {latency_ms} ms latency, ARM-like throttling, --parallelism {parallelism}, {cores} cores"
    );

    // 1. Key generation, one core, one key after another: this thread's CPU time per key (the
    // machine may be shared, so wall time is reported beside it).
    let (mut key_ms, mut key_wall_ms) = (Vec::with_capacity(sample), Vec::with_capacity(sample));
    for _ in 0..sample {
        let (t, cpu) = (Instant::now(), thread_cpu_ms());
        let (_, info) = arcplan_providers::kubernetes::key::generate(4096).expect("a key");
        key_ms.push(thread_cpu_ms() - cpu);
        key_wall_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(info.public_key.starts_with("MIICCgKCAgEA"));
    }
    let key_mean = key_ms.iter().sum::<f64>() / key_ms.len() as f64;
    key_ms.sort_by(f64::total_cmp);
    key_wall_ms.sort_by(f64::total_cmp);
    let (key_median, key_p90) = (quantile(&key_ms, 0.5), quantile(&key_ms, 0.9));
    let key_wall_median = quantile(&key_wall_ms, 0.5);
    eprintln!(
        "1. RSA-4096 key generation, one core, {sample} keys: CPU median {key_median:.0} ms, mean {key_mean:.0} ms, p90 {key_p90:.0} ms; wall median {key_wall_median:.0} ms"
    );

    let names: Vec<String> = (1..=n).map(|i| format!("c{i:04}")).collect();
    let mut all = names.clone();
    all.push(PROBE.into());
    let dir = std::env::temp_dir().join(format!("arcplan-apply-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sandbox = start_sandbox(all).await;
    sandbox.write_files(&dir).unwrap();
    sandbox
        .faults()
        .set_latency(Duration::from_millis(latency_ms), Duration::ZERO);
    sandbox.faults().set_throttle(ThrottleOptions::arm_like());
    let d = dir.display().to_string();
    let groups: Vec<String> = (0..GROUPS).map(|g| format!("bench-rg-{g}")).collect();
    let (probe, fleet) = (dir.join("probe.yaml"), dir.join("fleet.yaml"));
    std::fs::write(
        &probe,
        config("bench-probe", &["bench-probe-rg".into()], &[PROBE.into()]),
    )
    .unwrap();
    std::fs::write(&fleet, config("bench", &groups, &names)).unwrap();
    let (probe_s, fleet_s) = (probe.display().to_string(), fleet.display().to_string());
    let p = parallelism.to_string();
    let apply = |file: &str| -> Vec<String> {
        [
            "apply",
            "-f",
            file,
            "--sandbox-dir",
            &d,
            "--auto-approve",
            "--json",
            "--parallelism",
            &p,
        ]
        .map(str::to_owned)
        .to_vec()
    };

    // 2. One cluster's critical path, alone (also registers the providers).
    let args = apply(&probe_s);
    let run = arcplan(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, 0, "the probe apply failed:\n{}", run.tail());
    let (path_s, probe_key_wait) = critical_path(&run, PROBE).expect("the probe's events");
    eprintln!(
        "2. one cluster's critical path without its key: {path_s:.2} s (its apply waited {probe_key_wait:.2} s for the key; the whole apply took {:.2} s)",
        run.wall
    );

    // 3. The fleet.
    let before = sandbox.request_counts();
    let args = apply(&fleet_s);
    let run = arcplan(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let after = sandbox.request_counts();
    assert_eq!(run.code, 0, "the fleet apply failed:\n{}", run.tail());
    if let Ok(path) = std::env::var("ARCPLAN_BENCH_EVENTS") {
        // The fleet apply's event stream, each line prefixed with its arrival time.
        let text: Vec<String> = run
            .lines
            .iter()
            .map(|(t, l)| format!("{t:.3} {l}"))
            .collect();
        std::fs::write(path, text.join("\n")).expect("write the events");
    }
    let text: String = run
        .lines
        .iter()
        .map(|(_, l)| l.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let keys_used = text.matches("\"generated the RSA-4096 key").count();
    let throttled = text.matches("TooManyRequests").count();
    let connected = sandbox
        .arm()
        .connected_clusters()
        .iter()
        .filter(|c| c.2["properties"]["connectivityStatus"] == "Connected")
        .count();
    // Phases: start-up, the clusters' locks and the plan (to the first change applied), then
    // the apply (to the end).
    let first_apply = first_of(&run, "apply_start");
    let phases = json!({
        "locks_and_plan_s": round(first_apply),
        "apply_s": round(run.wall - first_apply),
    });
    eprintln!("   phases: {phases}");
    let writes = n + GROUPS + REGISTRATIONS;
    let key_bound = key_mean / 1000.0 * n as f64 / cores as f64;
    let throttle_bound = writes.saturating_sub(200) as f64 / 10.0;
    let path_bound = path_s * n as f64 / parallelism as f64;
    let bound = key_bound.max(throttle_bound).max(path_bound);
    let binding = if bound == key_bound {
        "keys"
    } else if bound == throttle_bound {
        "arm-write-throttle"
    } else {
        "critical-path"
    };
    eprintln!(
        "3. apply of {n} fresh clusters: {:.2} s wall, {:.1} s client CPU, {} requests; {keys_used} keys, {connected} connected clusters in ARM, {throttled} throttling errors",
        run.wall,
        run.cpu_s,
        after.total() - before.total()
    );
    eprintln!(
        "   bound {bound:.2} s ({binding}): keys {key_bound:.2} s, ARM writes {throttle_bound:.2} s ({writes} writes), critical path {path_bound:.2} s; ratio {:.2}",
        run.wall / bound
    );
    eprintln!("   client peak RSS {:.1} MiB", run.peak_mib);
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);

    let mut figures = json!({
        "clusters": n,
        "latency_ms": latency_ms,
        "parallelism": parallelism,
        "cores": cores,
        "keygen_ms_median": round(key_median),
        "keygen_ms_mean": round(key_mean),
        "keygen_ms_p90": round(key_p90),
        "keygen_wall_ms_median": round(key_wall_median),
        "critical_path_s": round(path_s),
        "apply_requests": after.total() - before.total(),
        "apply_keys_generated": keys_used,
        "apply_connected": connected,
        "apply_throttle_failures": throttled,
        "apply_bound_keys_s": round(key_bound),
        "apply_bound_throttle_s": round(throttle_bound),
        "apply_bound_path_s": round(path_bound),
        "apply_binding": binding,
        "apply_phases": phases,
    });
    let m = figures.as_object_mut().expect("an object");
    m.insert(format!("apply_wall_s_{n}"), round(run.wall));
    m.insert(format!("apply_bound_s_{n}"), round(bound));
    m.insert(format!("apply_ratio_{n}"), round(run.wall / bound));
    m.insert(format!("apply_rss_mb_{n}"), round(run.peak_mib));
    m.insert(format!("apply_cpu_s_{n}"), round(run.cpu_s));
    println!("{figures}");
}
