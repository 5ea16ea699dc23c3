//! The plan benchmark: `cargo bench --bench plan [-- OPTIONS]`.
//!
//! Options (each also from the environment variable in brackets):
//! - `--clusters N` [ARCPLAN_BENCH_CLUSTERS]: one fleet of N clusters (default 500);
//! - `--fleet-sizes 500,10000` [ARCPLAN_BENCH_FLEET_SIZES]: several fleets, one after another,
//!   each with its own sandbox (the 10,000 run takes several minutes on two cores);
//! - `--latency-ms MS` [ARCPLAN_BENCH_LATENCY_MS]: latency of every request (default 50);
//! - `--parallelism P` [ARCPLAN_BENCH_PARALLELISM]: of the parallel plan (default 50: at 10 the
//!   latency bound caps the speed-up near 10x);
//! - `--no-sequential` [ARCPLAN_BENCH_SEQUENTIAL=0]: skip the --parallelism 1 run (it is only
//!   ever run for the first, smallest fleet: 500 clusters one after another take ~3 minutes).
//!
//! For each fleet of N it starts the release binary's `arcplan sandbox --control --agents-interval
//! 1s` emulating N Kubernetes clusters as its own process (its simulated agents heartbeat once a
//! second, not ten times, so that at 10,000 clusters they leave the plan its cores), onboards one cluster for real with `arcplan apply`,
//! has the sandbox copy that state to the other N-1 (a real onboarding would spend minutes
//! generating N RSA-4096 keys, which says nothing about planning), then turns on latency and
//! ARM-like throttling and measures, with the real binary, each as its own process:
//! 1. the requests of a no-op plan of one onboarded cluster, by endpoint (first fleet);
//! 2. the wall time of a no-op plan of N clusters at --parallelism P, next to the lower bound
//!    that latency and parallelism impose (every request takes the latency; at most P resources
//!    are read at once, each reading its requests in sequence; ARM's read bucket, 250 + 25/s, does
//!    not bind for the few list pages a batched plan needs), and the ratio of the two;
//! 3. the same plan at --parallelism 1 (how `az connectedk8s` goes, one cluster after another),
//!    and the speed-up;
//! 4. the peak resident memory (VmHWM from /proc) of the plan process and of the sandbox
//!    process (idle, before any cluster is onboarded, and at the end), and the time `validate`
//!    spends loading and checking the N-cluster file (in process, best of five);
//! 5. requests that failed for throttling;
//! 6. the same plan as [`SHARDS`] processes at once (`--shard K/4`), their wall time next to the
//!    one process's (`shard_speedup_N`), and whether the union of their plans is the unsharded
//!    plan: the same own changes, every resource planned (`shard_union_equal`).
//!
//! Every fleet is spread over four subscriptions (`SUBSCRIPTIONS`, [`GROUPS`] resource groups in
//! each, `azure.subscription` first); the one-cluster file names only the first.
//!
//! The last line printed is one JSON object with these figures under stable names: those of the
//! first fleet unsuffixed (`plan_ratio`, `speedup`, `peak_rss_mb`, ...) and, for each fleet size
//! N, `client_rss_mb_N`, `sandbox_rss_mb_N` (emulating N idle clusters),
//! `sandbox_onboarded_rss_mb_N` (its peak once all N are onboarded), `plan_wall_s_N`,
//! `plan_ratio_N`, `speedup_N` and `shard_speedup_N`; `client_rss_mb_10000`, `sandbox_rss_mb_10000`,
//! `plan_ratio_500`, `speedup_500`, `shard_speedup_10000` are always present (null when not
//! measured), as are `shard_union_equal` (every fleet's) and `throttle_failures` (all runs'). Timings are
//! figures to compare in one run on one machine, never pass/fail assertions.

use serde_json::{Map, Value, json};
mod common;

use common::*;
use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The subscriptions the benchmark fleet is spread over (the first is `azure.subscription`).
const SUBSCRIPTIONS: [&str; 4] = [
    SUB,
    "4000e2af-0000-46d9-0000-4bdb12000001",
    "5000e2af-0000-46d9-0000-4bdb12000002",
    "6000e2af-0000-46d9-0000-4bdb12000003",
];

/// The resource groups of the benchmark fleet, as (subscription, name): [`GROUPS`] in each
/// subscription, taken in turn, so the clusters (spread over the groups in turn) are spread over
/// the subscriptions evenly.
fn bench_groups() -> Vec<(String, String)> {
    (0..GROUPS * SUBSCRIPTIONS.len())
        .map(|g| {
            let sub = SUBSCRIPTIONS[g % SUBSCRIPTIONS.len()];
            (sub.to_owned(), format!("bench-rg-{g}"))
        })
        .collect()
}

/// Runs the release binary: (exit code, stdout+stderr, wall seconds, peak RSS in MiB).
fn run4(args: &[&str]) -> (i32, String, f64, f64) {
    let r = arcplan(args);
    (r.code, r.text(), r.wall, r.peak_mib)
}

/// The benchmark's options.
struct Opts {
    sizes: Vec<usize>,
    latency_ms: u64,
    parallelism: u64,
    sequential: bool,
}

fn opts() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let env = |name: &str| std::env::var(name).ok();
    let sizes = value("--fleet-sizes")
        .or_else(|| env("ARCPLAN_BENCH_FLEET_SIZES"))
        .or_else(|| value("--clusters"))
        .or_else(|| env("ARCPLAN_BENCH_CLUSTERS"))
        .unwrap_or_else(|| "500".into());
    let mut sizes: Vec<usize> = sizes
        .split(',')
        .filter_map(|s| s.trim().replace('_', "").parse().ok())
        .map(|n: usize| n.max(1))
        .collect();
    if sizes.is_empty() {
        sizes.push(500);
    }
    let num = |flag: &str, var: &str, default: u64| {
        value(flag)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| env_num(var, default))
    };
    Opts {
        sizes,
        latency_ms: num("--latency-ms", "ARCPLAN_BENCH_LATENCY_MS", 50),
        parallelism: num("--parallelism", "ARCPLAN_BENCH_PARALLELISM", 50).max(1),
        sequential: !args.iter().any(|a| a == "--no-sequential")
            && env_num("ARCPLAN_BENCH_SEQUENTIAL", 1) != 0,
    }
}

/// `arcplan sandbox --control` as a child process.
struct SandboxProcess {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl SandboxProcess {
    fn start(file: &Path, dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_arcplan"))
            // Heartbeats once a second rather than ten times: at 10,000 clusters the simulated
            // agents' loop would otherwise take a core from the plan being measured.
            .args(["sandbox", "--control", "--agents-interval", "1s", "-f"])
            .arg(file)
            .arg("--dir")
            .arg(dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("arcplan sandbox starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut p = SandboxProcess {
            child,
            stdin,
            lines,
        };
        // The banner ends with the kubectl hint; the files are written before it.
        p.until(
            |l| l.contains("kubectl --kubeconfig"),
            Duration::from_secs(600),
        );
        p
    }

    fn until(&mut self, done: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let started = Instant::now();
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(l) if done(&l) => return l,
                Ok(_) => {}
                Err(e) => panic!("the sandbox did not answer: {e}"),
            }
        }
    }

    /// Sends one control command and returns its answer line.
    fn command(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").expect("the sandbox reads commands");
        self.stdin.flush().unwrap();
        let answer = self.until(
            |l| l.starts_with("ok") || l.starts_with("error") || l.starts_with('{'),
            Duration::from_secs(3600),
        );
        assert!(!answer.starts_with("error"), "{line}: {answer}");
        answer
    }

    fn requests(&mut self) -> Value {
        serde_json::from_str(&self.command("requests")).expect("request counts")
    }

    /// (VmRSS, VmHWM) in MiB.
    fn rss(&self) -> (f64, f64) {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .map_or(f64::NAN, |kib| kib / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn stop(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

fn total(v: &Value) -> u64 {
    ["entra", "arm", "kube"]
        .iter()
        .map(|k| v[k].as_u64().unwrap_or(0))
        .sum()
}

fn main() {
    let o = opts();
    let mut figures = Map::new();
    for key in [
        "client_rss_mb_500",
        "client_rss_mb_10000",
        "sandbox_rss_mb_10000",
        "plan_ratio_500",
        "speedup_500",
        "shard_speedup_10000",
    ] {
        figures.insert(key.into(), Value::Null);
    }
    let mut union_equal = true;
    let mut throttle_failures = 0usize;
    for (i, &n) in o.sizes.iter().enumerate() {
        let f = fleet(n, &o, i == 0);
        throttle_failures += f["throttle_failures"].as_u64().unwrap_or(0) as usize;
        union_equal &= f["shard_union_equal"] == true;
        for (k, v) in [
            ("client_rss_mb", "peak_rss_mb"),
            ("sandbox_rss_mb", "sandbox_rss_mb"),
            ("sandbox_onboarded_rss_mb", "sandbox_onboarded_rss_mb"),
            ("plan_wall_s", "plan_wall_s"),
            ("plan_ratio", "plan_ratio"),
            ("speedup", "speedup"),
            ("shard_speedup", "shard_speedup"),
        ] {
            figures.insert(format!("{k}_{n}"), f[v].clone());
        }
        if i == 0 {
            for (k, v) in f.as_object().unwrap() {
                figures.entry(k.clone()).or_insert(v.clone());
            }
        }
    }
    figures.insert("throttle_failures".into(), json!(throttle_failures));
    figures.insert("shard_union_equal".into(), json!(union_equal));
    figures.insert("fleet_sizes".into(), json!(o.sizes));
    println!("{}", Value::Object(figures));
}

/// How many shard processes the sharded plan runs.
const SHARDS: usize = 4;

/// (address, action) of every change a `plan --json` document makes itself, and every address it
/// plans.
fn plan_sets(
    doc: &Value,
) -> (
    std::collections::BTreeSet<(String, String)>,
    std::collections::BTreeSet<String>,
) {
    let mut own = std::collections::BTreeSet::new();
    let mut all = std::collections::BTreeSet::new();
    for c in doc["resource_changes"].as_array().into_iter().flatten() {
        let address = c["address"].as_str().unwrap_or_default().to_owned();
        let actions = c["change"]["actions"].to_string();
        if actions != r#"["no-op"]"# && actions != r#"["read"]"# {
            own.insert((address.clone(), actions));
        }
        all.insert(address);
    }
    (own, all)
}

/// Step 6: the fleet plan as [`SHARDS`] processes at once; (wall of all, union equal).
fn sharded(fleet: &str, sd: &str, p: &str) -> (f64, bool, usize) {
    let started = Instant::now();
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=SHARDS)
            .map(|k| {
                let shard = format!("{k}/{SHARDS}");
                s.spawn(move || {
                    arcplan(&[
                        "plan",
                        "-f",
                        fleet,
                        "--sandbox-dir",
                        sd,
                        "--json",
                        "--parallelism",
                        p,
                        "--shard",
                        &shard,
                    ])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let whole = arcplan(&[
        "plan",
        "-f",
        fleet,
        "--sandbox-dir",
        sd,
        "--json",
        "--parallelism",
        p,
    ]);
    let doc = |r: &Run| -> Value {
        let text: String = r.lines.iter().map(|(_, l)| l.as_str()).collect();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("plan --json: {e}\n{}", r.tail()))
    };
    let (want_own, want_all) = plan_sets(&doc(&whole));
    let (mut own, mut all) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    let mut failures = 0;
    for r in &runs {
        assert_eq!(r.code, 0, "a shard's plan failed:\n{}", r.tail());
        failures += r.text().matches("TooManyRequests").count();
        let (o, a) = plan_sets(&doc(r));
        own.extend(o);
        all.extend(a);
    }
    (wall, own == want_own && all == want_all, failures)
}

/// Measures one fleet of `n` clusters (the one-cluster no-op plan and the sequential run only
/// when `first`).
fn fleet(n: usize, o: &Opts, first: bool) -> Value {
    let (latency_ms, parallelism) = (o.latency_ms, o.parallelism);
    let names: Vec<String> = (1..=n).map(|i| format!("c{i:05}")).collect();
    let dir = std::env::temp_dir().join(format!("arcplan-bench-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (one, setup, fleet) = (
        dir.join("one.yaml"),
        dir.join("setup.yaml"),
        dir.join("fleet.yaml"),
    );
    let groups = bench_groups();
    // The first cluster's file names only its own subscription's groups (its no-op plan is the
    // quickstart's), the setup file every group (its apply makes them, and registers the
    // providers, in every subscription).
    let first_sub: Vec<_> = groups.iter().filter(|g| g.0 == SUB).cloned().collect();
    std::fs::write(&one, config_across("bench", &first_sub, &names[..1])).unwrap();
    std::fs::write(&setup, config_across("bench", &groups, &names[..1])).unwrap();
    std::fs::write(&fleet, config_across("bench", &groups, &names)).unwrap();
    let (one_s, fleet_s) = (one.display().to_string(), fleet.display().to_string());
    let setup_s = setup.display().to_string();

    eprintln!("benchmark: {n} clusters, {latency_ms} ms latency, ARM-like throttling");
    let started = Instant::now();
    let mut sandbox = SandboxProcess::start(&fleet, &dir.join("sandbox"));
    let sd = dir.join("sandbox").display().to_string();
    // Settle the controllers' first passes before reading the idle footprint.
    std::thread::sleep(Duration::from_secs(2));
    let (idle_rss, _) = sandbox.rss();
    eprintln!(
        "0. sandbox of {n} idle clusters: {idle_rss:.1} MiB resident (started in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let (code, out, _, _) = run4(&[
        "apply",
        "-f",
        &setup_s,
        "--sandbox-dir",
        &sd,
        "--auto-approve",
    ]);
    assert_eq!(code, 0, "onboarding the first cluster failed:\n{out}");

    // 1. A no-op plan of one onboarded cluster, by endpoint (a new process: token included).
    let noop = if first {
        let before = sandbox.requests();
        let (code, out, _, _) = run4(&[
            "plan",
            "-f",
            &one_s,
            "--sandbox-dir",
            &sd,
            "--detailed-exitcode",
        ]);
        assert_eq!(code, 0, "the one-cluster plan is not a no-op:\n{out}");
        let after = sandbox.requests();
        let d = |k: &str| after[k].as_u64().unwrap_or(0) - before[k].as_u64().unwrap_or(0);
        let v = json!({"entra": d("entra"), "arm": d("arm"), "kube": d("kube"), "total": total(&after) - total(&before)});
        eprintln!("1. no-op plan of one cluster: {v}");
        v
    } else {
        Value::Null
    };

    let t = Instant::now();
    sandbox.command(&format!("copy-onboarding {}", names[0]));
    eprintln!(
        "   copied the onboarding to {} clusters in {:.1} s",
        n - 1,
        t.elapsed().as_secs_f64()
    );
    let (code, out, _, _) = run4(&[
        "plan",
        "-f",
        &fleet_s,
        "--sandbox-dir",
        &sd,
        "--detailed-exitcode",
        "--parallelism",
        &parallelism.to_string(),
    ]);
    assert_eq!(
        code,
        0,
        "the fleet is not fully onboarded:\n{}",
        out.chars().take(4000).collect::<String>()
    );
    sandbox.command(&format!("faults {latency_ms}ms on"));

    // 2. The N-cluster no-op plan at --parallelism P.
    let p = parallelism.to_string();
    let before = sandbox.requests();
    let (code, out, wall, rss) = run4(&[
        "plan",
        "-f",
        &fleet_s,
        "--sandbox-dir",
        &sd,
        "--detailed-exitcode",
        "--parallelism",
        &p,
    ]);
    let after = sandbox.requests();
    assert_eq!(
        code,
        0,
        "the fleet plan failed or found changes:\n{}",
        out.chars().take(4000).collect::<String>()
    );
    let requests = total(&after) - total(&before);
    let throttle_failures = out.matches("TooManyRequests").count() + out.matches(" 429 ").count();
    let bound = requests as f64 * latency_ms as f64 / 1000.0 / parallelism as f64;
    eprintln!(
        "2. no-op plan of {n} clusters at --parallelism {p}: {wall:.2} s for {requests} requests; bound {bound:.2} s; ratio {:.2}",
        wall / bound
    );
    eprintln!("4. peak RSS of the plan: {rss:.1} MiB");

    // 6. The same plan as SHARDS processes at once.
    let (shard_wall, union_equal, shard_throttled) = sharded(&fleet_s, &sd, &p);
    eprintln!(
        "6. the same plan as {SHARDS} shards at once: {shard_wall:.2} s (one process {wall:.2} s: {:.2}x); union of their plans equal to the unsharded plan: {union_equal}",
        wall / shard_wall
    );
    let throttle_failures = throttle_failures + shard_throttled;

    // 3. The same, one resource at a time.
    let sequential = if !(first && o.sequential) {
        f64::NAN
    } else {
        let (code, out, sequential, _) = run4(&[
            "plan",
            "-f",
            &fleet_s,
            "--sandbox-dir",
            &sd,
            "--detailed-exitcode",
            "--parallelism",
            "1",
        ]);
        assert_eq!(code, 0, "{}", out.chars().take(2000).collect::<String>());
        eprintln!(
            "3. the same at --parallelism 1: {sequential:.2} s; speed-up {:.1}x",
            sequential / wall
        );
        sequential
    };
    let (_, sandbox_peak) = sandbox.rss();
    eprintln!("4. peak RSS of the sandbox: {sandbox_peak:.1} MiB");
    sandbox.stop();

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
    let _ = std::fs::remove_dir_all(&dir);
    json!({
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
        // The sandbox emulating N idle clusters; then its peak with all N onboarded.
        "sandbox_rss_mb": round(idle_rss),
        "sandbox_onboarded_rss_mb": round(sandbox_peak),
        "validate_ms": round(best),
        "throttle_failures": throttle_failures,
        "shard_speedup": round(wall / shard_wall),
        "shard_union_equal": union_equal,
        "shard_subscriptions": SUBSCRIPTIONS.len(),
    })
}
