//! What the benchmarks share: the fleet file they plan or apply, and a runner of the release
//! binary that stamps its output lines and samples its peak memory and CPU time.

#![allow(dead_code)]

use arcplan_sandbox::{Sandbox, SandboxOptions};
use serde_json::{Value, json};
use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const SUB: &str = "3000e2af-0000-46d9-0000-4bdb12000000";
pub const TENANT: &str = "72f988bf-0000-0000-0000-000000000000";
/// Resource groups a benchmark fleet is spread over.
pub const GROUPS: usize = 5;

/// A whole number from the environment, or `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A file of `names` in `stack`, spread over `groups`, each on the sandbox context of its name.
pub fn config(stack: &str, groups: &[String], names: &[String]) -> String {
    let groups: Vec<(String, String)> =
        groups.iter().map(|g| (SUB.to_owned(), g.clone())).collect();
    config_across(stack, &groups, names)
}

/// Like [`config`], with groups given as (subscription, name): `azure.subscription` is [`SUB`],
/// a group of another subscription names it (its clusters follow their group).
pub fn config_across(stack: &str, groups: &[(String, String)], names: &[String]) -> String {
    let mut s = format!(
        "apiVersion: arcplan/v1\nstack: {stack}\nazure:\n  subscription: {SUB}\n  tenant: {TENANT}\nresourceProviders: [Microsoft.Kubernetes, Microsoft.KubernetesConfiguration, Microsoft.ExtendedLocation]\nresourceGroups:\n"
    );
    for (sub, g) in groups {
        let sub = if sub == SUB {
            String::new()
        } else {
            format!(", subscription: {sub}")
        };
        s.push_str(&format!("  - {{ name: {g}, location: eastus{sub} }}\n"));
    }
    s.push_str("clusters:\n");
    for (i, n) in names.iter().enumerate() {
        s.push_str(&format!(
            "  - {{ name: {n}, context: {n}, resourceGroup: {}, agents: {{ installer: manifests }} }}\n",
            groups[i % groups.len()].1
        ));
    }
    s
}

/// What one run of the binary gave.
pub struct Run {
    pub code: i32,
    /// stdout lines, each with the seconds since the start at which it arrived.
    pub lines: Vec<(f64, String)>,
    pub stderr: String,
    pub wall: f64,
    pub peak_mib: f64,
    pub cpu_s: f64,
}

/// Runs the release binary, stamping each stdout line as it arrives and sampling the process's
/// peak resident set (VmHWM) and CPU time (utime + stime) until it ends.
pub fn arcplan(args: &[&str]) -> Run {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_arcplan"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("arcplan starts");
    let pid = child.id();
    let (mut peak_kib, mut ticks) = (0u64, 0u64);
    let (so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (lines, stderr) = std::thread::scope(|s| {
        let a = s.spawn(move || {
            std::io::BufReader::new(so)
                .lines()
                .map_while(Result::ok)
                .map(|l| (started.elapsed().as_secs_f64(), l))
                .collect::<Vec<_>>()
        });
        let b = s.spawn(move || {
            let mut b = String::new();
            std::io::Read::read_to_string(&mut se, &mut b).ok();
            b
        });
        loop {
            if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                && let Some(kib) = text
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
            // Fields 14 and 15 (after the parenthesised command name): utime and stime in ticks.
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                && let Some(rest) = stat.rsplit(')').next()
            {
                let f: Vec<&str> = rest.split_whitespace().collect();
                if let (Some(u), Some(s)) = (f.get(11), f.get(12))
                    && let (Ok(u), Ok(s)) = (u.parse::<u64>(), s.parse::<u64>())
                {
                    ticks = ticks.max(u + s);
                }
            }
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (a.join().unwrap_or_default(), b.join().unwrap_or_default())
    });
    let code = child.wait().map(|s| s.code().unwrap_or(-1)).unwrap_or(-1);
    Run {
        code,
        lines,
        stderr,
        wall: started.elapsed().as_secs_f64(),
        peak_mib: peak_kib as f64 / 1024.0,
        // Linux reports these in USER_HZ, 100 per second.
        cpu_s: ticks as f64 / 100.0,
    }
}

impl Run {
    /// The last 40 lines of stdout and stderr.
    pub fn tail(&self) -> String {
        let mut text: Vec<&str> = self.lines.iter().map(|(_, l)| l.as_str()).collect();
        text.extend(self.stderr.lines());
        let start = text.len().saturating_sub(40);
        text[start..].join("\n")
    }

    /// Everything it printed, stdout then stderr.
    pub fn text(&self) -> String {
        let mut s: String = self.lines.iter().map(|(_, l)| format!("{l}\n")).collect();
        s.push_str(&self.stderr);
        s
    }
}

/// Two decimals, or null for a figure that could not be measured.
pub fn round(x: f64) -> Value {
    if x.is_finite() {
        json!((x * 100.0).round() / 100.0)
    } else {
        Value::Null
    }
}

/// The benchmarks' sandbox: the subscription and tenant of [`config`], `clusters` of one node
/// each, quick registrations, operations and rollouts.
pub async fn start_sandbox(clusters: Vec<String>) -> Sandbox {
    Sandbox::start(SandboxOptions {
        subscription_ids: vec![SUB.into()],
        tenant_id: TENANT.into(),
        clusters,
        nodes_per_cluster: 1,
        registration_delay: Duration::from_millis(10),
        lro_delay: Duration::from_millis(10),
        deployment_ready_delay: Duration::from_millis(50),
        ..Default::default()
    })
    .await
    .expect("sandbox starts")
}
