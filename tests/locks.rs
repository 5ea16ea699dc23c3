//! The cluster lock end to end: one Lease in `kube-system` that outlives what it guards (a
//! destroy racing an apply), a paused holder that loses it and stops, Lease requests under
//! faults, what each failure to take it says, locking only the clusters a plan touches, and
//! signals (SIGTERM during an apply, Ctrl-C at the prompt) that release it and report.

mod common;

use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LEASE: &str = "coordination.k8s.io/v1";

/// The lock Lease of the sandbox's first cluster, in `ns`.
fn lease(w: &World, ns: &str) -> Option<serde_json::Value> {
    w.sandbox
        .kube()
        .get(LEASE, "Lease", Some(ns), "arcplan-lock")
}

fn held(w: &World) -> Option<serde_json::Value> {
    ["kube-system", "azure-arc"]
        .iter()
        .find_map(|ns| lease(w, ns))
        .filter(|l| !l["spec"]["holderIdentity"].is_null())
}

async fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < limit, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(ok.success(), "kill {sig} {pid}");
}

fn key_exists(w: &World) -> bool {
    w.sandbox
        .kube()
        .get(
            "v1",
            "Secret",
            Some("azure-arc"),
            "azure-arc-connect-privatekey",
        )
        .is_some()
}

/// The quickstart is in place exactly once, Connected, and the next plan of `file` is empty.
fn assert_converged(w: &World, file: &str, context: &str) {
    let sub = &w.sandbox.subscription_ids()[0];
    assert_eq!(w.sandbox.arm().connected_clusters().len(), 1, "{context}");
    let cc = w
        .sandbox
        .arm()
        .connected_cluster(sub, "myAzureResourceGroup", "mynewcluster")
        .expect("the cluster exists");
    assert_eq!(
        cc["properties"]["connectivityStatus"], "Connected",
        "{context}: {cc}"
    );
    assert!(key_exists(w), "{context}: the key Secret exists");
    let (code, out, err) = w.run(&["plan", "-f", file, "--detailed-exitcode"]);
    assert_eq!(code, 0, "{context}: the next plan is empty:\n{out}{err}");
}

/// A live Lease held by someone else (renewed now, for an hour).
fn foreign_lease(holder: &str) -> serde_json::Value {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    // MicroTime: six fractional digits.
    let now = format!("{}.000000Z", &now[..19]);
    json!({
        "apiVersion": LEASE, "kind": "Lease",
        "metadata": {"name": "arcplan-lock", "namespace": "kube-system"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 3600,
                 "acquireTime": now, "renewTime": now},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroy_and_a_waiting_apply_take_turns() {
    let w = World::start_slow().await;
    let (code, out, err) = w.run(&["apply", "-f", QUICKSTART, "--auto-approve"]);
    assert_eq!(code, 0, "{out}{err}");
    let destroy = w.spawn(&["destroy", "-f", QUICKSTART, "--auto-approve"], &[]);
    wait_until(
        "the destroy holds the lock",
        Duration::from_secs(60),
        || held(&w).is_some(),
    )
    .await;
    let apply = w.spawn(
        &[
            "apply",
            "-f",
            QUICKSTART,
            "--auto-approve",
            "--lock-timeout",
            "5m",
        ],
        &[],
    );
    let (d, a) = tokio::task::block_in_place(|| {
        (
            destroy.wait_with_output().unwrap(),
            apply.wait_with_output().unwrap(),
        )
    });
    let ((cd, outd, errd), (ca, outa, erra)) = (w.record("destroy", &d), w.record("apply", &a));
    assert_eq!(cd, 0, "the destroy succeeds:\n{outd}{errd}");
    assert_eq!(
        ca, 0,
        "the apply waits for it, then succeeds:\n{outa}{erra}"
    );
    let summary = outa
        .lines()
        .find(|l| l.starts_with("Apply complete!"))
        .unwrap_or_else(|| panic!("the apply completes:\n{outa}"));
    assert!(
        !summary.contains(" 0 added"),
        "the apply recreated what the destroy deleted: {summary}\n{outa}\n---\n{outd}"
    );
    tokio::task::block_in_place(|| assert_converged(&w, QUICKSTART, "after destroy, apply"));
    assert!(held(&w).is_none(), "no Lease is left behind");
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_holder_loses_its_lock_and_stops() {
    let w = World::start_slow().await;
    // B's file differs from A's in a tag, so an overwrite by A would show.
    let quick = std::fs::read_to_string(root().join(QUICKSTART)).unwrap();
    let b_file = w.dir.join("quickstart-b.yaml");
    std::fs::write(&b_file, quick.replace("env: lab", "env: lab-b")).unwrap();
    let b_file = b_file.display().to_string();
    let env = [("ARCPLAN_LOCK_LEASE", "5s")];

    let a = w.spawn(&["apply", "-f", QUICKSTART, "--auto-approve"], &env);
    wait_until("A created the key", Duration::from_secs(60), || {
        key_exists(&w)
    })
    .await;
    signal(a.id(), "-STOP");
    let b = tokio::task::block_in_place(|| {
        w.spawn(
            &[
                "apply",
                "-f",
                &b_file,
                "--auto-approve",
                "--lock-timeout",
                "1m",
            ],
            &env,
        )
        .wait_with_output()
        .unwrap()
    });
    let (cb, outb, errb) = w.record("apply B (while A is paused)", &b);
    assert_eq!(
        cb, 0,
        "B takes the expired lock over and applies:\n{outb}{errb}"
    );
    signal(a.id(), "-CONT");
    let a = tokio::task::block_in_place(|| a.wait_with_output().unwrap());
    let (ca, outa, erra) = w.record("apply A (resumed)", &a);
    assert_eq!(ca, 1, "A stops:\n{outa}{erra}");
    assert!(
        erra.contains("lost the lock"),
        "A names the lost lock:\n{outa}{erra}"
    );
    let sub = &w.sandbox.subscription_ids()[0];
    let cc = w
        .sandbox
        .arm()
        .connected_cluster(sub, "myAzureResourceGroup", "mynewcluster")
        .unwrap();
    assert_eq!(cc["tags"]["env"], "lab-b", "A did not overwrite B: {cc}");
    tokio::task::block_in_place(|| assert_converged(&w, &b_file, "after B, with A stopped"));
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_requests_are_retried_under_faults_and_none_is_left_behind() {
    let names: Vec<String> = (1..=6).map(|i| format!("edge-{i:02}")).collect();
    let w = World::start_fleet(&names, 20_261_201).await;
    let f = quickstart_fleet(&w.dir, "fleet.yaml", &names);
    let (code, out, err) = w.run(&["apply", "-f", &f, "--auto-approve"]);
    assert_eq!(code, 0, "{out}{err}");

    let leases_left = |w: &World| -> Vec<String> {
        names
            .iter()
            .filter(|n| {
                w.sandbox
                    .kube_for(n)
                    .unwrap()
                    .get(LEASE, "Lease", Some("kube-system"), "arcplan-lock")
                    .is_some()
            })
            .cloned()
            .collect()
    };
    w.sandbox.faults().set_error_rate(0.2);
    for i in 1..=3 {
        let (code, out, err) = w.run(&["apply", "-f", &f, "--auto-approve"]);
        assert_eq!(code, 0, "no-op apply #{i} under faults:\n{out}{err}");
        let left = leases_left(&w);
        assert!(
            left.is_empty(),
            "apply #{i} left Leases on {left:?}:\n{err}"
        );
    }
    w.sandbox.faults().set_error_rate(0.0);

    // A crashed run's expired Lease is taken over and removed with the lock.
    let mut stale = foreign_lease("crashed@host (pid 1)");
    stale["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z");
    stale["spec"]["acquireTime"] = json!("2020-01-01T00:00:00.000000Z");
    stale["spec"]["leaseDurationSeconds"] = json!(2);
    w.sandbox.kube_for(&names[0]).unwrap().put(stale).unwrap();
    let (code, out, err) = w.run(&["apply", "-f", &f, "--auto-approve"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(leases_left(&w).is_empty(), "the expired Lease is gone");
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_names_its_holder_while_waiting_and_when_giving_up() {
    let w = World::start().await;
    let holder = "ci@build-7 (arcplan 0.1.0, pid 42, run 1)";
    w.sandbox.kube().put(foreign_lease(holder)).unwrap();
    let (code, out, err) = w.run(&[
        "apply",
        "-f",
        QUICKSTART,
        "--auto-approve",
        "--lock-timeout",
        "2s",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let waiting = err
        .lines()
        .find(|l| l.starts_with("Waiting for the lock"))
        .unwrap_or_else(|| panic!("says it waits:\n{err}"));
    assert!(waiting.contains(holder), "{waiting}");
    assert!(err.contains("another arcplan run holds"), "{err}");
    assert!(err.contains("--lock-timeout"), "{err}");
    assert!(
        w.sandbox.arm().connected_clusters().is_empty(),
        "nothing changed"
    );
    w.assert_no_secrets(&[]);
}

/// A copy of the world's sandbox directory whose kubeconfig is edited by `edit`.
fn variant(w: &World, name: &str, edit: impl Fn(String) -> String) -> String {
    let dir = w.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let kc = std::fs::read_to_string(w.dir.join("kubeconfig")).unwrap();
    std::fs::write(dir.join("kubeconfig"), edit(kc)).unwrap();
    let env = std::fs::read_to_string(w.dir.join("sandbox.env")).unwrap();
    let env: String = env
        .lines()
        .map(|l| {
            if l.starts_with("KUBECONFIG=") {
                format!("KUBECONFIG={}\n", dir.join("kubeconfig").display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(dir.join("sandbox.env"), env).unwrap();
    dir.display().to_string()
}

fn run_in(w: &World, dir: &str, args: &[&str]) -> (i32, String, String) {
    let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    full.extend(["--sandbox-dir".into(), dir.into()]);
    let o = run_binary(&full, None);
    w.record(&format!("arcplan {}", full.join(" ")), &o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_lock_failure_says_what_happened() {
    let w = World::start().await;
    let false_line = "another arcplan run holds";
    let forbidden = variant(&w, "forbidden", |kc| {
        kc.replace(&w.sandbox.kube_token(), &w.sandbox.kube_no_rights_token())
    });
    let (code, out, err) = run_in(
        &w,
        &forbidden,
        &["apply", "-f", QUICKSTART, "--auto-approve"],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(!err.contains(false_line), "{err}");
    assert!(
        err.contains("leases") && err.contains("kube-system"),
        "names the rights the lock needs:\n{err}"
    );

    let server = w.sandbox.kube_server();
    let unreachable = variant(&w, "unreachable", |kc| {
        kc.replace(&server, "https://127.0.0.1:1")
    });
    let (code, out, err) = run_in(
        &w,
        &unreachable,
        &["destroy", "-f", QUICKSTART, "--auto-approve"],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(!err.contains(false_line), "{err}");
    assert!(err.contains("--cluster-unreachable"), "{err}");

    let no_context = variant(&w, "no-context", |kc| {
        kc.replace(
            "- name: \"sandbox\"\n  context:",
            "- name: \"elsewhere\"\n  context:",
        )
        .replace("current-context: sandbox", "current-context: elsewhere")
    });
    let (code, out, err) = run_in(
        &w,
        &no_context,
        &["apply", "-f", QUICKSTART, "--auto-approve"],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(!err.contains(false_line), "{err}");
    assert!(err.contains("context"), "{err}");
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_is_named_by_the_real_host_name() {
    let w = World::start_slow().await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_arcplan"));
    cmd.args(w.args(&["apply", "-f", QUICKSTART, "--auto-approve"]))
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("USER")
        .env_remove("HOSTNAME")
        .env_remove("AZURE_CLIENT_SECRET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let mut holder = String::new();
    wait_until("the apply holds the lock", Duration::from_secs(60), || {
        if let Some(l) = held(&w) {
            holder = l["spec"]["holderIdentity"].as_str().unwrap().to_owned();
        }
        !holder.is_empty()
    })
    .await;
    let o = tokio::task::block_in_place(|| child.wait_with_output().unwrap());
    let (code, out, err) = w.record("apply without USER and HOSTNAME", &o);
    assert_eq!(code, 0, "{out}{err}");
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    assert!(
        holder.contains(&format!("@{host} ")),
        "`{holder}` names host `{host}`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_targeted_apply_locks_only_the_clusters_it_touches() {
    let names = ["alpha", "beta"];
    let w = World::start_with(|o| arcplan_sandbox::SandboxOptions {
        clusters: names.iter().map(|s| s.to_string()).collect(),
        ..o
    })
    .await;
    let f = quickstart_fleet(&w.dir, "two.yaml", &names);
    // Another run holds alpha's lock (as a `--target` apply of alpha would).
    let other = "ci@build-7 (arcplan 0.1.0, pid 42, run 1)";
    let alpha = w.sandbox.kube_for("alpha").unwrap();
    alpha.put(foreign_lease(other)).unwrap();
    let (code, out, err) = w.run(&[
        "apply",
        "-f",
        &f,
        "--auto-approve",
        "--target",
        "k8s.arcAgents.beta",
    ]);
    assert_eq!(
        code, 0,
        "beta's apply does not wait for alpha's lock:\n{out}{err}"
    );
    let sub = &w.sandbox.subscription_ids()[0];
    assert!(
        w.sandbox
            .arm()
            .connected_cluster(sub, "myAzureResourceGroup", "beta")
            .is_some()
    );
    let l = alpha
        .get(LEASE, "Lease", Some("kube-system"), "arcplan-lock")
        .unwrap();
    assert_eq!(l["spec"]["holderIdentity"], other, "alpha's lock untouched");
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_the_lock_and_reports_what_was_done() {
    let w = World::start_slow().await;
    let child = w.spawn(&["apply", "-f", QUICKSTART, "--auto-approve"], &[]);
    wait_until("the apply created the key", Duration::from_secs(60), || {
        key_exists(&w)
    })
    .await;
    signal(child.id(), "-TERM");
    let o = tokio::task::block_in_place(|| child.wait_with_output().unwrap());
    let (code, out, err) = w.record("apply (SIGTERM)", &o);
    assert_eq!(code, 143, "{out}{err}");
    assert!(
        out.contains("Changed so far") || out.contains("Apply complete!"),
        "reports what was done:\n{out}{err}"
    );
    assert!(held(&w).is_none(), "the Lease is released at once");
    let (code, out, err) = w.run(&["apply", "-f", QUICKSTART, "--auto-approve"]);
    assert_eq!(code, 0, "the next apply finishes the job:\n{out}{err}");
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_at_the_prompt_cancels_and_releases_the_lock() {
    let w = World::start().await;
    // A terminal for the prompt: `script` runs arcplan on a pseudo-terminal; a ^C written to it
    // is Ctrl-C (the terminal sends SIGINT to arcplan).
    let line = format!(
        "{} {}",
        env!("CARGO_BIN_EXE_arcplan"),
        w.args(&["apply", "-f", QUICKSTART]).join(" ")
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("AZURE_CLIENT_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script runs");
    let mut stdout = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    wait_until("the prompt", Duration::from_secs(60), || {
        seen.lock().unwrap().contains("Enter a value:")
    })
    .await;
    assert!(held(&w).is_some(), "the lock is held at the prompt");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\x03").unwrap();
    stdin.flush().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!(
                "Ctrl-C at the prompt was ignored:\n{}",
                seen.lock().unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(stdin);
    let _ = reader.join();
    let text = seen.lock().unwrap().clone();
    w.transcript.borrow_mut().push_str(&text);
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("nothing was changed"), "{text}");
    assert!(held(&w).is_none(), "the Lease is released");
    assert!(w.sandbox.arm().connected_clusters().is_empty());
    w.assert_no_secrets(&[]);
}
