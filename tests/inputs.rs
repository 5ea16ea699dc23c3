//! Hostile and unusual inputs end to end: Unicode line breaks, files that are not regular files,
//! inline secrets in snippets, every validation problem in one run, and a kubeconfig that turns
//! TLS verification off.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh directory (held by the test until it ends) and its path.
fn scratch(what: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = scratch_dir(&format!("arcplan-inputs-{what}-"));
    let path = dir.path().to_path_buf();
    (dir, path)
}

/// Runs the binary, killing it (and failing) if it has not finished within `limit`.
fn run_bounded(args: &[&str], limit: Duration) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_arcplan"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("arcplan {args:?} did not finish (it blocked or read without bound)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn validate(path: &std::path::Path, json: bool) -> (i32, String, String) {
    let p = path.display().to_string();
    let mut args = vec!["validate", p.as_str()];
    if json {
        args.push("--json");
    }
    run_bounded(&args, Duration::from_secs(60))
}

#[test]
fn unicode_line_breaks_are_diagnosed_not_panicked_on() {
    let (_scratch, dir) = scratch("breaks");
    for (name, brk) in [("nel", "\u{85}"), ("ls", "\u{2028}"), ("ps", "\u{2029}")] {
        for text in [
            format!("apiVersion: arcplan/v1\nstack: {brk}\n"),
            format!("apiVersion: arcplan/v1\r\nstack: a{brk}\r\nazure: {{}}{brk}"),
            format!("apiVersion: arcplan/v1\rstack{brk}: {brk}"),
        ] {
            let path = dir.join(format!("{name}.yaml"));
            std::fs::write(&path, &text).unwrap();
            let (code, _, err) = validate(&path, false);
            assert_eq!(code, 1, "{text:?}:\n{err}");
            assert!(!err.contains("panicked"), "{err}");
            assert!(err.contains(&format!("{name}.yaml:")), "{err}");
            assert!(!err.contains(brk), "line breaks are shown visibly: {err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn devices_and_fifos_are_refused_without_blocking() {
    let (_scratch, dir) = scratch("fifo");
    let fifo = dir.join("plan.yaml");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for path in [fifo.clone(), PathBuf::from("/dev/zero")] {
        let (code, _, err) = validate(&path, false);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("not-a-file"), "{err}");
        assert!(err.contains("not a regular file"), "{err}");
    }
    let f = fifo.display().to_string();
    let (code, _, err) = run_bounded(&["plan", &f, "--sandbox"], Duration::from_secs(60));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("FIFO"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn inline_secrets_never_appear_in_validate_output() {
    let (_scratch, dir) = scratch("secret");
    let quickstart = std::fs::read_to_string(root().join(QUICKSTART)).unwrap();
    let cases = [
        (
            "SuperSecretValue123!",
            quickstart.replace(
                "credential: default",
                "credential:\n    kind: servicePrincipal\n    clientSecret: \"SuperSecretValue123!\"",
            ),
        ),
        (
            "pr0xyPassw0rd",
            quickstart.replace(
                "      timeout: 20m",
                "      timeout: 20m\n      proxy: { httpsProxy: http://alice:pr0xyPassw0rd@proxy.corp:3128, httpProxy: 7 }",
            ),
        ),
    ];
    for (secret, text) in cases {
        let path = dir.join("f.yaml");
        std::fs::write(&path, &text).unwrap();
        for json in [false, true] {
            let (code, out, err) = validate(&path, json);
            assert_eq!(code, 1, "{out}{err}");
            assert!(
                out.contains("inline-secret") || err.contains("inline-secret"),
                "{out}{err}"
            );
            assert!(
                !out.contains(secret) && !err.contains(secret),
                "the secret leaked:\n{out}{err}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn validate_shows_structural_and_semantic_problems_together() {
    let (_scratch, dir) = scratch("all");
    let text = std::fs::read_to_string(root().join(QUICKSTART))
        .unwrap()
        .replace("cloud: AzureCloud", "cloud: AzureClod")
        .replace("installer: manifests", "installr: manifests")
        .replace("3000e2af-0000-46d9-0000-4bdb12000000", "3000e2af")
        .replace("72f988bf-0000-0000-0000-000000000000", "contoso")
        .replace(
            "    resourceGroup: myAzureResourceGroup",
            "    resourceGroup: otherGroup",
        )
        .replace("distribution: aks_workload", "distribution: aks_workloadd")
        .replace(
            "    location: eastus\n    tags",
            "    location: mars\n    tags",
        );
    let path = dir.join("f.yaml");
    std::fs::write(&path, &text).unwrap();
    let (code, _, err) = validate(&path, false);
    assert_eq!(code, 1);
    for code in [
        "invalid-guid",
        "invalid-value",
        "undeclared-resource-group",
        "unknown-key",
        "unknown-value",
    ] {
        assert!(err.contains(&format!("[{code}]")), "{code} missing:\n{err}");
    }
    assert!(err.contains("5 errors and 2 warnings found"), "{err}");
    assert!(err.contains("did you mean `aks_workload`?"), "{err}");
    assert!(err.contains("location `mars`"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_skip_tls_verify_in_the_kubeconfig_is_refused() {
    let w = World::start().await;
    let kc = w.dir.join("kubeconfig");
    let text = std::fs::read_to_string(&kc).unwrap().replace(
        "    certificate-authority-data:",
        "    insecure-skip-tls-verify: true\n    certificate-authority-data:",
    );
    std::fs::write(&kc, text).unwrap();
    let before = w.sandbox.request_counts().kube;
    let (code, out, err) = w.run(&["plan", QUICKSTART]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("insecure-skip-tls-verify: true"), "{err}");
    assert!(err.contains("certificate-authority"), "{err}");
    assert!(
        err.contains(&kc.display().to_string()),
        "names the kubeconfig: {err}"
    );
    assert_eq!(
        w.sandbox.request_counts().kube,
        before,
        "no request reached the cluster"
    );
    w.assert_no_secrets(&[]);
}

/// Diagnostics other than `inline-secret` show the same lines: they must hide the secret too,
/// including when the file does not parse.
#[test]
fn secrets_never_appear_in_other_diagnostics_either() {
    let (_scratch, dir) = scratch("secret-other");
    let quickstart = std::fs::read_to_string(root().join(QUICKSTART)).unwrap();
    let with = |credential: &str| quickstart.replace("credential: default", credential);
    let cases = [
        // A schema type error on the secret's own line.
        (
            vec!["987654321123"],
            with("credential:\n    kind: servicePrincipal\n    clientSecret: 987654321123"),
            false,
        ),
        // A duplicate key: a YAML syntax error pointing at the second value.
        (
            vec!["DupSecretA1", "DupSecretB2"],
            with(
                "credential:\n    kind: servicePrincipal\n    clientSecret: DupSecretA1\n    clientSecret: DupSecretB2",
            ),
            false,
        ),
        // An unclosed quote: the file does not parse at all.
        (
            vec!["UnclosedSecret77"],
            with("credential:\n    kind: servicePrincipal\n    clientSecret: \"UnclosedSecret77"),
            true,
        ),
        // A block scalar followed by an unknown key.
        (
            vec!["BlockSecretLine1", "BlockSecretLine2"],
            with(
                "credential:\n    kind: servicePrincipal\n    clientSecret: |\n      BlockSecretLine1\n      BlockSecretLine2\n    bogus: 1",
            ),
            false,
        ),
    ];
    for (secrets, text, plan) in cases {
        let path = dir.join("f.yaml");
        std::fs::write(&path, &text).unwrap();
        let p = path.display().to_string();
        let mut runs = vec![validate(&path, false), validate(&path, true)];
        if plan {
            runs.push(run_bounded(
                &["plan", "-f", p.as_str(), "--sandbox"],
                Duration::from_secs(60),
            ));
        }
        for (code, out, err) in runs {
            assert_ne!(code, 0, "{out}{err}");
            for secret in &secrets {
                assert!(
                    !out.contains(secret) && !err.contains(secret),
                    "the secret {secret} leaked:\n{out}{err}"
                );
            }
            assert!(!err.contains("****bogus"), "indentation was masked:\n{err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
