//! Shared helpers of the end-to-end tests: a sandbox the test owns (written to a directory the
//! binary reaches with `--sandbox-dir`), a runner of the real binary that keeps a transcript, and
//! the secret scan every end-to-end test ends with.

#![allow(dead_code)]

use arcplan_sandbox::{Sandbox, SandboxOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub const QUICKSTART: &str = "examples/quickstart.yaml";

/// The second subscription every test sandbox serves (after the quickstart's): the one
/// `examples/fleet.yaml` puts its westeurope group in.
pub const SECOND_SUBSCRIPTION: &str = "5b1c0de0-0000-4000-8000-00000000c0de";

pub struct World {
    pub sandbox: Sandbox,
    pub dir: PathBuf,
    /// Owns `dir` (removed with the world).
    _scratch: tempfile::TempDir,
    /// Everything the binary printed, for the secret scan.
    pub transcript: std::cell::RefCell<String>,
}

impl World {
    /// A sandbox serving the quickstart's subscription and tenant.
    pub async fn start() -> World {
        World::start_with(|o| o).await
    }

    /// Like [`World::start`], with options adjusted by `f`.
    /// A sandbox whose registrations, operations and rollouts take 400 ms each, so an apply
    /// lasts long enough for kills, pauses and races to land inside every phase.
    #[allow(dead_code)]
    pub async fn start_slow() -> World {
        World::start_with(|o| SandboxOptions {
            registration_delay: std::time::Duration::from_millis(400),
            lro_delay: std::time::Duration::from_millis(400),
            deployment_ready_delay: std::time::Duration::from_millis(400),
            ..o
        })
        .await
    }

    /// A sandbox emulating the clusters `names` (agents ready after 100 ms), with faults
    /// seeded by `seed`.
    #[allow(dead_code)]
    pub async fn start_fleet(names: &[String], seed: u64) -> World {
        World::start_with(|o| SandboxOptions {
            clusters: names.to_vec(),
            deployment_ready_delay: std::time::Duration::from_millis(100),
            seed,
            ..o
        })
        .await
    }

    pub async fn start_with(f: impl FnOnce(SandboxOptions) -> SandboxOptions) -> World {
        let text = std::fs::read_to_string(root().join(QUICKSTART)).unwrap();
        let loaded = arcplan_config::load_str(&text, QUICKSTART).unwrap();
        let opts = SandboxOptions {
            subscription_ids: vec![
                loaded.config.azure.subscription.clone(),
                SECOND_SUBSCRIPTION.to_owned(),
            ],
            tenant_id: loaded.config.azure.tenant.clone().unwrap(),
            deployment_ready_delay: Duration::from_millis(200),
            ..Default::default()
        };
        let sandbox = Sandbox::start(f(opts)).await.expect("sandbox");
        let scratch = scratch_dir("arcplan-e2e-");
        let dir = scratch.path().to_path_buf();
        sandbox.write_files(&dir).unwrap();
        World {
            sandbox,
            dir,
            _scratch: scratch,
            transcript: Default::default(),
        }
    }

    /// Runs arcplan with `--sandbox-dir` appended where the command takes it.
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
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

    /// The full argument list for a run against this world's sandbox.
    pub fn args(&self, args: &[&str]) -> Vec<String> {
        let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        full.push("--sandbox-dir".into());
        full.push(self.dir.display().to_string());
        full
    }

    /// Starts arcplan in the background (for crash and concurrency tests), with extra environment.
    pub fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_arcplan"));
        cmd.args(self.args(args))
            .current_dir(root())
            .env("NO_COLOR", "1")
            .env_remove("AZURE_CLIENT_SECRET");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().expect("arcplan starts")
    }

    /// Records a finished background run in the transcript.
    pub fn record(&self, what: &str, o: &Output) -> (i32, String, String) {
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        self.transcript
            .borrow_mut()
            .push_str(&format!("$ {what}\n{out}{err}\n"));
        (o.status.code().unwrap_or(-1), out, err)
    }

    /// Fails when any secret the sandbox knows appears in what arcplan printed or wrote.
    pub fn assert_no_secrets(&self, extra: &[&Path]) {
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
        assert!(!arcplan_testkit::contains_jwt(&all), "a JWT leaked");
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

/// The quickstart with its cluster replaced by `names` (each on the sandbox context of its name,
/// manifests installer), written to `dir/file`; returns the file's path as a string.
#[allow(dead_code)]
pub fn quickstart_fleet(dir: &Path, file: &str, names: &[impl AsRef<str>]) -> String {
    let mut yaml = std::fs::read_to_string(root().join(QUICKSTART)).unwrap();
    yaml.truncate(yaml.find("clusters:").unwrap());
    yaml.push_str("clusters:\n");
    for n in names {
        let n = n.as_ref();
        yaml.push_str(&format!("  - {{ name: {n}, resourceGroup: myAzureResourceGroup, context: {n}, agents: {{ installer: manifests, timeout: 2m }} }}\n"));
    }
    let path = dir.join(file);
    std::fs::write(&path, &yaml).unwrap();
    path.display().to_string()
}

/// A new directory under the temporary directory, created exclusively (a name no other test,
/// thread or process holds), removed when dropped. Names derived from the clock collided
/// between two tests started at once: one world's sandbox files overwrote the other's, and a
/// run reached the wrong sandbox.
pub fn scratch_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("a scratch directory")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn run_binary(args: &[String], stdin: Option<&str>) -> Output {
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

/// The real kubectl, when this machine has it (CI machines must).
pub fn kubectl_path() -> Option<&'static str> {
    const KUBECTL: &str = "/usr/bin/kubectl";
    if Path::new(KUBECTL).exists() {
        return Some(KUBECTL);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "kubectl is expected on CI machines"
    );
    None
}

impl World {
    /// Runs kubectl against this world's sandbox: (success, stdout and stderr).
    pub fn kubectl(&self, kubectl: &str, args: &[&str]) -> (bool, String) {
        let o = Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"))
            .args(args)
            .output()
            .unwrap();
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    }
}
