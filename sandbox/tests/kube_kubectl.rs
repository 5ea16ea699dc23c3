//! The real `kubectl` against the Kubernetes API emulator over HTTPS (skipped when
//! `/usr/bin/kubectl` is not installed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use arcplan_sandbox::kube::{KubeApi, KubeOptions};
use arcplan_sandbox::tls::{TlsMaterial, serve_https};
use base64::Engine;
use tokio_util::sync::CancellationToken;

const KUBECTL: &str = "/usr/bin/kubectl";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: x
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
";

struct Env {
    dir: PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn kubectl(dir: &Path, args: &[&str]) -> (bool, String) {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(KUBECTL)
            .args(&args)
            .arg(format!("--cache-dir={}", dir.join("cache").display()))
            .env("KUBECONFIG", dir.join("kubeconfig"))
            .env("HOME", &dir)
            .current_dir(&dir)
            .output()
            .expect("run kubectl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_create_apply_server_side() {
    if !Path::new(KUBECTL).exists() {
        return;
    }
    let api = KubeApi::new(KubeOptions {
        deployment_ready_delay: Duration::from_millis(30),
        namespace_delete_delay: Duration::from_millis(30),
        ..KubeOptions::default()
    });
    let tls = TlsMaterial::generate().expect("tls");
    let cancel = CancellationToken::new();
    let handle = serve_https(
        api.router(),
        "127.0.0.1:0".parse().expect("addr"),
        &tls,
        cancel.clone(),
    )
    .await
    .expect("serve");
    let (a, c) = (api.clone(), cancel.clone());
    tokio::spawn(async move { a.run_controllers(c).await });

    let dir = std::env::temp_dir().join(format!(
        "arcplan-kube-kubectl-{}-{}",
        std::process::id(),
        handle.addr.port()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let env = Env { dir: dir.clone() };
    let ca = base64::engine::general_purpose::STANDARD.encode(tls.ca_pem());
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: https://{}\n    certificate-authority-data: {ca}\nusers:\n- name: admin\n  user:\n    token: {}\ncontexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: admin\ncurrent-context: sandbox\n",
        handle.addr,
        api.admin_token()
    );
    std::fs::write(dir.join("kubeconfig"), kubeconfig).expect("kubeconfig");
    std::fs::write(dir.join("deployment.yaml"), DEPLOYMENT).expect("manifest");

    let (ok, out) = kubectl(&env.dir, &["get", "ns"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("NAME") && out.contains("STATUS"), "{out}");
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(out.contains(ns), "{out}");
    }
    assert!(out.contains("Active"), "{out}");

    let (ok, out) = kubectl(&env.dir, &["create", "ns", "x"]).await;
    assert!(ok && out.contains("namespace/x created"), "{out}");

    let (ok, out) = kubectl(
        &env.dir,
        &["apply", "--server-side", "-f", "deployment.yaml"],
    )
    .await;
    assert!(
        ok && out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let rv = |api: &KubeApi| {
        api.get("apps/v1", "Deployment", Some("x"), "web")
            .and_then(|d| {
                d["metadata"]["resourceVersion"]
                    .as_str()
                    .map(str::to_string)
            })
    };
    let mut available = false;
    for _ in 0..300 {
        let d = api
            .get("apps/v1", "Deployment", Some("x"), "web")
            .expect("deployment");
        if d["status"]["availableReplicas"] == 2 {
            available = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(available, "deployment never became available");

    let (ok, out) = kubectl(&env.dir, &["-n", "x", "get", "deployments,pods"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("deployment.apps/web") && out.contains("2/2"),
        "{out}"
    );
    assert_eq!(out.matches("pod/web-").count(), 2, "{out}");
    assert!(out.contains("Running"), "{out}");

    // Re-applying an unchanged manifest is a no-op on the server.
    let before = rv(&api);
    let (ok, out) = kubectl(
        &env.dir,
        &["apply", "--server-side", "-f", "deployment.yaml"],
    )
    .await;
    assert!(ok && out.contains("serverside-applied"), "{out}");
    assert_eq!(rv(&api), before);

    let (ok, out) = kubectl(&env.dir, &["delete", "ns", "x", "--timeout=20s"]).await;
    assert!(ok && out.contains("namespace \"x\" deleted"), "{out}");
    let (ok, out) = kubectl(&env.dir, &["get", "ns", "x"]).await;
    assert!(!ok && out.contains("namespaces \"x\" not found"), "{out}");
    cancel.cancel();
}
