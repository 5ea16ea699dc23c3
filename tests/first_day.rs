//! A new user's first day, end to end against a sandbox this test owns: a positional FILE,
//! destroy in destroy's words (human and NDJSON), hints that keep the flags in use, the sandbox
//! replacing a cluster's own kubeconfig (said, and avoidable with `--sandbox-azure-only`), and
//! the banner of `arcplan sandbox`.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// A copy of the quickstart in a directory of its own, with `edit` applied.
fn quickstart_copy(w: &World, name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(root().join(QUICKSTART)).unwrap();
    let dir = w.dir.with_extension("files");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, edit(text)).unwrap();
    std::fs::canonicalize(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_speaks_of_destroying_in_text_and_json() {
    let w = World::start().await;
    let w = &w;
    let file = quickstart_copy(w, "fleet.yaml", |t| t);
    let f = file.to_str().unwrap();

    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["apply", f, "--auto-approve"]));
    assert_eq!(code, 0, "a positional FILE is applied:\n{out}{err}");
    assert!(out.contains("Apply complete! Resources: 7 added"), "{out}");
    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["status", f]));
    assert_eq!(code, 0, "{out}{err}");

    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["destroy", f, "--auto-approve"]));
    assert_eq!(code, 0, "{out}{err}");
    let last = out.trim_end().lines().last().unwrap_or("");
    assert!(
        last.starts_with("Destroy complete! Resources: ") && last.ends_with(" destroyed."),
        "{out}"
    );
    assert!(!out.contains("Apply complete"), "{out}");

    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["apply", f, "--auto-approve"]));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["destroy", f, "--auto-approve", "--json"]));
    assert_eq!(code, 0, "{out}{err}");
    let summary: Value = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "change_summary")
        .unwrap_or_else(|| panic!("no change_summary in {out}"));
    assert_eq!(summary["changes"]["operation"], "destroy", "{summary}");
    let message = summary["@message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Destroy complete!"), "{summary}");
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_plan_hint_keeps_the_file_and_the_sandbox_dir() {
    let w = World::start().await;
    let w = &w;
    let file = quickstart_copy(w, "stale.yaml", |t| t);
    let plan = file.with_extension("plan");
    let (f, p) = (file.to_str().unwrap(), plan.to_str().unwrap());
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", f, "--out", p, "--detailed-exitcode"]));
    assert_eq!(code, 2, "{out}{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("env: lab", "env: prod")).unwrap();

    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["apply", p]));
    assert_eq!(code, 1, "{out}{err}");
    let dir = std::fs::canonicalize(&w.dir).unwrap();
    let want = format!(
        "arcplan plan -f {} --sandbox-dir {} --out {p}",
        file.display(),
        dir.display()
    );
    assert!(
        err.contains(&want),
        "the hint runs as printed: {want}\n{err}"
    );
    // And it does: the suggested command makes the plan again.
    let words: Vec<String> = want.split(' ').skip(1).map(str::to_owned).collect();
    let o = run_binary(&words, None);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    w.assert_no_secrets(&[&plan]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_says_it_replaces_a_kubeconfig_and_azure_only_keeps_it() {
    let w = World::start().await;
    let w = &w;
    let kubeconfig = std::fs::canonicalize(w.dir.join("kubeconfig")).unwrap();
    // A cluster of its own: the sandbox's kubeconfig named explicitly (as a real one would be).
    let own = quickstart_copy(w, "own.yaml", |t| {
        t.replace(
            "    context: mynewcluster-admin\n",
            &format!(
                "    context: sandbox\n    kubeconfig: {}\n",
                kubeconfig.display()
            ),
        )
    });
    // A cluster the sandbox cannot stand in for when told to keep it.
    let missing = quickstart_copy(w, "missing.yaml", |t| {
        t.replace(
            "    context: mynewcluster-admin\n",
            "    context: prod-admin\n    kubeconfig: /nonexistent/arcplan/kubeconfig\n",
        )
    });
    let m = missing.to_str().unwrap();

    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["plan", m]));
    assert_eq!(
        code, 0,
        "the sandbox's kubeconfig is used instead:\n{out}{err}"
    );
    assert!(err.contains("warning"), "{err}");
    assert!(err.contains("cluster mynewcluster"), "{err}");
    assert!(
        err.contains("`kubeconfig: /nonexistent/arcplan/kubeconfig`")
            && err.contains("`context: prod-admin`"),
        "the warning names what was replaced: {err}"
    );
    assert!(err.contains("--sandbox-azure-only"), "{err}");

    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", m, "--sandbox-azure-only"]));
    assert_eq!(code, 1, "the file's own kubeconfig is read:\n{out}{err}");
    assert!(err.contains("/nonexistent/arcplan/kubeconfig"), "{err}");
    assert!(!err.contains("replaces the file's own kubeconfig"), "{err}");

    let o = own.to_str().unwrap();
    let (code, out, err) = tokio::task::block_in_place(|| {
        w.run(&["plan", o, "--sandbox-azure-only", "--detailed-exitcode"])
    });
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("the file's own clusters"), "{out}");
    assert!(!err.contains("warning"), "{err}");
    w.assert_no_secrets(&[]);
}

/// Starts `arcplan sandbox` with `args` and returns its banner (the lines up to `kubectl`).
fn banner(args: &[&str]) -> String {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_arcplan"))
        .arg("sandbox")
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("arcplan sandbox starts");
    let mut text = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        text.push_str(&line);
        text.push('\n');
        if line.trim_start().starts_with("kubectl") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    text
}

#[test]
fn the_sandbox_banner_suggests_the_file_it_serves() {
    let dir = std::env::temp_dir().join(format!("arcplan-banner-{}", std::process::id()));
    let d = dir.to_str().unwrap();
    let text = banner(&["--dir", d, "-f", "examples/fleet.yaml"]);
    assert!(
        text.contains(&format!(
            "arcplan apply -f examples/fleet.yaml --sandbox-dir {d}"
        )),
        "{text}"
    );
    let text = banner(&["--dir", d]);
    assert!(!text.contains("quickstart"), "{text}");
    assert!(text.contains("-f FILE"), "{text}");
    let _ = std::fs::remove_dir_all(Path::new(d));
}

#[test]
fn saving_an_in_process_sandbox_plan_suggests_commands_with_the_file() {
    let out = std::env::temp_dir().join(format!("arcplan-inproc-{}.plan", std::process::id()));
    let o = run_binary(
        &[
            "plan".into(),
            QUICKSTART.into(),
            "--sandbox".into(),
            "--out".into(),
            out.display().to_string(),
        ],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "`arcplan sandbox -f {QUICKSTART} --dir .arcplan-sandbox`"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "`arcplan plan -f {QUICKSTART} --sandbox-dir .arcplan-sandbox --out {}`",
            out.display()
        )),
        "{err}"
    );
    assert!(!out.exists());
}

/// The command between the backticks that follow `lead` in `text`, as words.
fn suggested(text: &str, lead: &str) -> Vec<String> {
    let at = text
        .find(lead)
        .unwrap_or_else(|| panic!("no `{lead}` in:\n{text}"));
    let rest = &text[at + lead.len()..];
    let rest = rest.strip_prefix('`').unwrap_or(rest);
    let line = &rest[..rest.find('`').expect("the command ends with a backtick")];
    line.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_plan_hint_makes_the_plan_again_with_its_file_and_sandbox_dir() {
    let w = World::start().await;
    let w = &w;
    let file = quickstart_copy(w, "tampered.yaml", |t| t);
    let plan = file.with_extension("plan");
    let (f, p) = (file.to_str().unwrap(), plan.to_str().unwrap());
    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["plan", "-f", f, "--out", p]));
    assert_eq!(code, 0, "{out}{err}");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    v["plan"]["changes"][0]["desired"] = serde_json::json!({"tampered": true});
    std::fs::write(&plan, v.to_string()).unwrap();

    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["apply", p]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("was modified after it was written"), "{err}");
    let words = suggested(&err, "make the plan again with ");
    assert_eq!(words[0], "arcplan", "{err}");
    assert!(words.iter().any(|w| w == "--sandbox-dir"), "{err}");
    // Copied, it works: it makes the plan again (and overwrites the tampered file).
    let o = run_binary(&words[1..], None);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        matches!(o.status.code(), Some(0 | 2)),
        "{:?}: {stderr}",
        words
    );
    assert!(!stderr.contains("cannot read arcplan.yaml"), "{stderr}");
    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["apply", p, "--auto-approve"]));
    assert_eq!(code, 0, "the plan made again applies:\n{out}{err}");
    w.assert_no_secrets(&[&plan]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_only_footer_suggests_apply_with_the_file_and_the_sandbox_dir() {
    let w = World::start().await;
    let w = &w;
    let file = quickstart_copy(w, "drift.yaml", |t| t);
    let f = file.to_str().unwrap();
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["apply", "-f", f, "--auto-approve"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        w.sandbox
            .kube()
            .delete("apps/v1", "Deployment", Some("azure-arc"), "config-agent")
    );
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", f, "--refresh-only"]));
    assert_eq!(code, 0, "{out}{err}");
    let words = suggested(&out, "Run ").join(" ");
    let want = format!("arcplan apply -f {f} --sandbox-dir {}", w.dir.display());
    assert_eq!(words, want, "{out}");
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_problems_suggest_apply_with_the_file_and_the_sandbox_dir() {
    let w = World::start().await;
    let w = &w;
    let file = quickstart_copy(w, "status.yaml", |t| t);
    let f = file.to_str().unwrap();
    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["status", f]));
    assert_eq!(code, 1, "nothing is onboarded yet:\n{out}{err}");
    let want = format!("arcplan apply -f {f} --sandbox-dir {}", w.dir.display());
    assert_eq!(
        suggested(&out, "no connected cluster resource for it: run ").join(" "),
        want,
        "{out}"
    );
    assert_eq!(
        suggested(&out, "the Arc agents are not installed: run ").join(" "),
        want,
        "{out}"
    );
    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["status", f, "--json"]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&want),
        "the JSON problems carry it too:\n{out}"
    );
    w.assert_no_secrets(&[]);
}

/// Tests start at once, so their worlds must never share a directory: with names derived from
/// the clock, two worlds got one directory, the second sandbox's files replaced the first's, and
/// the first test's runs reached the other test's sandbox (a lock planted there failed an
/// unrelated apply). Each world's kubeconfig names its own sandbox's server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worlds_started_at_once_never_share_their_files() {
    let worlds = futures::future::join_all((0..6).map(|_| World::start())).await;
    let dirs: std::collections::BTreeSet<_> = worlds.iter().map(|w| w.dir.clone()).collect();
    assert_eq!(dirs.len(), worlds.len(), "{dirs:?}");
    for w in &worlds {
        let kubeconfig = std::fs::read_to_string(w.dir.join("kubeconfig")).unwrap();
        assert!(
            kubeconfig.contains(&w.sandbox.kube_server()),
            "{}: {kubeconfig}",
            w.dir.display()
        );
    }
    let kept: Vec<PathBuf> = worlds.iter().map(|w| w.dir.clone()).collect();
    drop(worlds);
    assert!(
        kept.iter().all(|d| !d.exists()),
        "a world's directory goes with it"
    );
}
