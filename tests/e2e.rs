//! End to end: the real binary against a sandbox this test owns (`--sandbox-dir`), through the
//! quickstart's whole life: plan, apply, no-op plan, status, drift, repair, stale saved plan,
//! destroy. Every byte printed and every plan file is scanned for secrets.

use arcplan_sandbox::{Sandbox, SandboxOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const QUICKSTART: &str = "examples/quickstart.yaml";

struct World {
    sandbox: Sandbox,
    dir: PathBuf,
    /// Everything the binary printed, for the secret scan.
    transcript: std::cell::RefCell<String>,
}

impl World {
    async fn start() -> World {
        let text = std::fs::read_to_string(root().join(QUICKSTART)).unwrap();
        let loaded = arcplan_engine::config::load_str(&text, QUICKSTART).unwrap();
        let opts = SandboxOptions {
            subscription_ids: vec![loaded.config.azure.subscription.clone()],
            tenant_id: loaded.config.azure.tenant.clone().unwrap(),
            deployment_ready_delay: Duration::from_millis(200),
            ..Default::default()
        };
        let sandbox = Sandbox::start(opts).await.expect("sandbox");
        let dir = std::env::temp_dir().join(format!(
            "arcplan-e2e-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        sandbox.write_files(&dir).unwrap();
        World {
            sandbox,
            dir,
            transcript: Default::default(),
        }
    }

    /// Runs arcplan with `--sandbox-dir` appended where the command takes it.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        // A saved plan records where it was made; `apply PLANFILE` takes no target.
        let saved_plan = args[0] == "apply" && args.get(1).is_some_and(|a| a.ends_with(".plan"));
        if matches!(args[0], "plan" | "apply" | "destroy" | "status") && !saved_plan {
            full.push("--sandbox-dir".into());
            full.push(self.dir.display().to_string());
        }
        let o = run_binary(&full, None);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        self.transcript
            .borrow_mut()
            .push_str(&format!("$ arcplan {}\n{out}{err}\n", full.join(" ")));
        (o.status.code().unwrap_or(-1), out, err)
    }

    /// Fails when any secret the sandbox knows appears in what arcplan printed or wrote.
    fn assert_no_secrets(&self, extra: &[&Path]) {
        let mut all = self.transcript.borrow().clone();
        for p in extra {
            all.push_str(&std::fs::read_to_string(p).unwrap_or_default());
        }
        let secret = self.sandbox.client_secret();
        assert!(!all.contains(secret), "the client secret leaked");
        assert!(
            !all.contains(&self.sandbox.kube_token()),
            "the Kubernetes token leaked"
        );
        assert!(!all.contains("eyJ"), "a JWT leaked");
        // The onboarding private key, if the cluster holds one.
        if let Some(s) = self.sandbox.kube().get(
            "v1",
            "Secret",
            Some("azure-arc"),
            "azure-arc-connect-privatekey",
        ) {
            let b64 = s["data"]["privateKey"].as_str().unwrap_or_default();
            assert!(!b64.is_empty());
            assert!(!all.contains(b64), "the private key's base64 leaked");
            use base64::Engine;
            let pem = String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
            )
            .unwrap();
            let body: String = pem
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<Vec<_>>()
                .join("");
            assert!(
                !all.replace('\n', "").contains(&body[..64]),
                "the private key's PEM body leaked"
            );
            assert!(!all.contains("PRIVATE KEY"), "a PEM private key leaked");
        }
    }
}

fn rand_suffix() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_binary(args: &[String], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_arcplan"));
    cmd.args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("AZURE_CLIENT_SECRET");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("arcplan runs");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_lifecycle() {
    let w = World::start().await;
    let w = &w;
    let sub = w.sandbox.subscription_ids()[0].clone();

    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--detailed-exitcode"]));
    assert_eq!(code, 2, "changes present:\n{out}{err}");
    assert!(
        out.contains("Plan: 7 to add, 0 to change, 0 to destroy."),
        "{out}"
    );
    assert!(out.contains("+ arc.connectedCluster.mynewcluster"), "{out}");

    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["apply", "-f", QUICKSTART, "--auto-approve"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Apply complete! Resources: 7 added, 0 changed, 0 destroyed."),
        "{out}"
    );
    assert!(
        out.contains("Connected"),
        "the cluster ends Connected: {out}"
    );
    let cc = w
        .sandbox
        .arm()
        .connected_cluster(&sub, "myAzureResourceGroup", "mynewcluster")
        .expect("created");
    assert_eq!(cc["properties"]["connectivityStatus"], "Connected");
    assert!(
        cc["properties"]["agentPublicKeyCertificate"]
            .as_str()
            .unwrap()
            .starts_with("MIICCgKCAgEA"),
        "an RSA-4096 PKCS#1 key"
    );

    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--detailed-exitcode"]));
    assert_eq!(code, 0, "no changes after apply:\n{out}{err}");

    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["status", "-f", QUICKSTART]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Connected") && out.contains("mynewcluster"),
        "{out}"
    );

    // Drift: someone edits the tags in the portal.
    w.sandbox
        .arm()
        .update_connected_cluster(&sub, "myAzureResourceGroup", "mynewcluster", |c| {
            c["tags"]["env"] = serde_json::json!("drifted");
        });
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--detailed-exitcode"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("~ arc.connectedCluster.mynewcluster"), "{out}");
    assert!(
        out.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{out}"
    );

    // A saved plan made stale by a change in between is refused, naming the resource.
    let plan_file = w.dir.join("repair.plan");
    let pf = plan_file.display().to_string();
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--out", &pf]));
    assert_eq!(code, 0, "{out}{err}");
    w.sandbox
        .arm()
        .update_connected_cluster(&sub, "myAzureResourceGroup", "mynewcluster", |c| {
            c["properties"]["distribution"] = serde_json::json!("k3s");
        });
    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["apply", &pf]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("stale") && err.contains("arc.connectedCluster.mynewcluster"),
        "{err}"
    );
    assert!(err.contains("distribution"), "says what changed: {err}");

    // A fresh saved plan applies exactly; then nothing is left to do.
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--out", &pf]));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = tokio::task::block_in_place(|| w.run(&["apply", &pf]));
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, _) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--detailed-exitcode"]));
    assert_eq!(code, 0);

    // JSON plan document.
    let (code, out, _) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--json"]));
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).expect("the JSON plan parses");
    assert_eq!(doc["format_version"], "1.0");
    assert!(
        doc["resource_changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["change"]["actions"] == serde_json::json!(["no-op"])
                || c["change"]["actions"] == serde_json::json!(["read"])),
        "{doc}"
    );

    // Without --auto-approve and without a terminal, apply refuses.
    let (code, _, err) = tokio::task::block_in_place(|| w.run(&["destroy", "-f", QUICKSTART]));
    assert_eq!(code, 1);
    assert!(err.contains("--auto-approve"), "{err}");

    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["destroy", "-f", QUICKSTART, "--auto-approve"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("destroyed."), "{out}");
    assert!(
        w.sandbox
            .arm()
            .connected_cluster(&sub, "myAzureResourceGroup", "mynewcluster")
            .is_none()
    );
    let (code, out, _) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--detailed-exitcode"]));
    assert_eq!(code, 2, "everything to create again: {out}");

    w.assert_no_secrets(&[&plan_file]);
}

#[test]
fn apply_sandbox_runs_the_quickstart_in_one_command() {
    let o = run_binary(
        &[
            "apply".into(),
            "--sandbox".into(),
            "--auto-approve".into(),
            "-f".into(),
            QUICKSTART.into(),
        ],
        None,
    );
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("Plan: 7 to add"), "{out}");
    assert!(
        out.contains("Apply complete! Resources: 7 added, 0 changed, 0 destroyed."),
        "{out}"
    );
    assert!(out.contains("Connected"), "{out}");
    assert!(!out.contains("eyJ") && !err.contains("eyJ"));
}
