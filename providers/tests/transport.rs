//! How requests fail: an untrusted certificate, a refused connection and a server that accepts
//! and never answers, on the Entra side (the credential) and the Kubernetes side; and the
//! refusal of kubeconfigs that turn TLS verification off.

use arcplan_config::{Cloud, Credential};
use arcplan_providers::azure::cloud::CloudProfile;
use arcplan_providers::azure::credential;
use arcplan_providers::azure::http::{Timeouts, client_with};
use arcplan_providers::kubernetes::{KubernetesProvider, KubernetesProviderOptions};
use arcplan_sandbox::{Sandbox, SandboxOptions};
use serde_json::json;
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "arcplan-transport-{what}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A TCP server that accepts connections and never sends a byte (kept open until the process
/// ends). Returns its port.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            match conn {
                Ok(c) => held.push(c),
                Err(_) => return,
            }
        }
    });
    port
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A service principal token request to `authority`, with no CA bundle, and the vars.
async fn token_error(authority: &str, tenant: &str, client: &str, vars: &[(&str, &str)]) -> String {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = move |k: &str| vars.get(k).cloned();
    let cloud: Cloud = serde_json::from_value(json!({
        "name": "Untrusted",
        "resourceManager": "https://127.0.0.1:1/",
        "authorityHost": authority,
    }))
    .unwrap();
    let profile = CloudProfile::from_config(&cloud, std::path::Path::new(".")).unwrap();
    let timeouts = Timeouts::from_env(&env).unwrap();
    let http = client_with(None, timeouts).unwrap();
    let cred: Credential = serde_json::from_value(json!({
        "kind": "servicePrincipal",
        "clientId": client,
        "clientSecret": {"env": "SECRET"},
    }))
    .unwrap();
    let chosen = credential::build(
        &cred,
        Some(tenant),
        &profile,
        &http,
        std::path::Path::new("."),
        &env,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let e = chosen
        .credential
        .get_token(&[profile.scope.as_str()], None)
        .await
        .expect_err("the token request must fail");
    e.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_entra_certificate_is_named_and_not_retried() {
    let sandbox = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let before = sandbox.request_counts();
    let msg = token_error(
        &sandbox.authority_host(),
        sandbox.tenant_id(),
        sandbox.client_id(),
        &[("SECRET", sandbox.client_secret())],
    )
    .await;
    assert!(msg.contains("not trusted"), "{msg}");
    assert!(msg.contains("caBundle"), "says how to trust the CA: {msg}");
    assert!(
        !msg.contains("tries"),
        "a trust failure is not retried: {msg}"
    );
    assert!(!msg.contains(sandbox.client_secret()));
    assert_eq!(sandbox.request_counts().total(), before.total());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_refused_entra_connection_is_named() {
    let authority = format!("https://127.0.0.1:{}/", closed_port());
    let msg = token_error(&authority, "t", "c", &[("SECRET", "s")]).await;
    assert!(msg.contains("refused"), "{msg}");
    assert!(msg.contains("127.0.0.1"), "{msg}");
    assert!(
        msg.contains(&format!("after {} tries", credential::TOKEN_ATTEMPTS)),
        "{msg}"
    );
}

#[tokio::test]
async fn a_silent_entra_endpoint_times_out_and_is_retried() {
    let authority = format!("https://127.0.0.1:{}/", silent_server());
    let msg = token_error(
        &authority,
        "t",
        "c",
        &[
            ("SECRET", "s"),
            ("ARCPLAN_CONNECT_TIMEOUT", "1s"),
            ("ARCPLAN_RESPONSE_TIMEOUT", "1s"),
        ],
    )
    .await;
    assert!(
        msg.contains(&format!(
            "no answer within 1s after {} tries",
            credential::TOKEN_ATTEMPTS
        )),
        "{msg}"
    );
}

fn kubeconfig(server: &str, extra_cluster: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: edge\n  cluster:\n    server: {server}\n{extra_cluster}contexts:\n- name: admin\n  context:\n    cluster: edge\n    user: u\nusers:\n- name: u\n  user:\n    token: t\ncurrent-context: admin\n"
    )
}

fn provider(dir: &std::path::Path, vars: &[(&str, &str)]) -> KubernetesProvider {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    KubernetesProvider::new(
        KubernetesProviderOptions::new(dir).with_env(move |k| vars.get(k).cloned()),
    )
}

#[tokio::test]
async fn insecure_skip_tls_verify_is_refused_before_any_request() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir("insecure");
    std::fs::write(
        dir.join("kc"),
        kubeconfig(
            &format!("https://127.0.0.1:{port}"),
            "    insecure-skip-tls-verify: true\n",
        ),
    )
    .unwrap();
    let p = provider(&dir, &[]);
    let d = p
        .cluster(&json!({"kubeconfig": "kc"}))
        .await
        .expect_err("an insecure cluster entry is refused");
    assert_eq!(d.code, "k8s-insecure-tls");
    assert!(
        d.message.contains("kc"),
        "names the kubeconfig: {}",
        d.message
    );
    assert!(
        d.message.contains("`admin`") && d.message.contains("`edge`"),
        "{}",
        d.message
    );
    let hint = d.hint.as_deref().unwrap();
    assert!(
        hint.contains("certificate-authority") && hint.contains("certificate-authority-data"),
        "{hint}"
    );
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "no connection was made"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_silent_api_server_times_out_retried_then_reported() {
    let dir = temp_dir("silent");
    let server = format!("https://127.0.0.1:{}", silent_server());
    std::fs::write(dir.join("kc"), kubeconfig(&server, "")).unwrap();
    let p = provider(
        &dir,
        &[
            ("ARCPLAN_CONNECT_TIMEOUT", "1s"),
            ("ARCPLAN_RESPONSE_TIMEOUT", "1s"),
        ],
    );
    let cluster = p.cluster(&json!({"kubeconfig": "kc"})).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(120), cluster.check_linux_node())
        .await
        .expect("the request ends")
        .expect_err("no answer");
    let d = err.iter().next().unwrap();
    assert_eq!(d.code, "k8s-unreachable", "{d}");
    assert!(
        d.message.contains("no answer within 1s after 6 tries"),
        "{}",
        d.message
    );
    assert!(
        d.message.contains(&server),
        "names the server: {}",
        d.message
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A credential with a fixed token (the ARM side's transport is what is tested).
#[derive(Debug)]
struct FixedToken;

#[async_trait::async_trait]
impl azure_core::credentials::TokenCredential for FixedToken {
    async fn get_token(
        &self,
        _: &[&str],
        _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        Ok(azure_core::credentials::AccessToken::new(
            "not-a-real-token",
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

#[tokio::test]
async fn a_silent_arm_endpoint_times_out_retried_then_reported() {
    use arcplan_providers::azure::arm::{ArmClient, RetryPolicy, shared_budget};
    use arcplan_providers::azure::cloud::ApiKind;
    let port = silent_server();
    let cloud: Cloud = serde_json::from_value(json!({
        "name": "Silent",
        "resourceManager": format!("https://127.0.0.1:{port}/"),
        "authorityHost": "https://127.0.0.1:1/",
    }))
    .unwrap();
    let profile = CloudProfile::from_config(&cloud, std::path::Path::new(".")).unwrap();
    let timeouts = Timeouts {
        connect: Duration::from_secs(1),
        response: Duration::from_secs(1),
    };
    let arm = ArmClient::new(
        profile,
        client_with(None, timeouts).unwrap(),
        std::sync::Arc::new(FixedToken),
        shared_budget(),
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            request_timeout: Duration::from_secs(1),
        },
    );
    let req = arm.request(
        reqwest::Method::GET,
        "/subscriptions/3000e2af-0000-46d9-0000-4bdb12000000",
        ApiKind::Subscriptions,
        None,
    );
    let e = tokio::time::timeout(Duration::from_secs(60), arm.send(&req))
        .await
        .expect("the request ends")
        .expect_err("no answer");
    let text = e.to_string();
    assert!(
        text.contains("no answer from 127.0.0.1 within 1s after 3 tries"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_api_server_certificate_is_named_and_not_retried() {
    let sandbox = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let dir = temp_dir("untrusted-kube");
    let kc: String = sandbox
        .kubeconfig_yaml()
        .lines()
        .filter(|l| !l.contains("certificate-authority-data"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("kc"), kc).unwrap();
    let p = provider(&dir, &[]);
    let cluster = p.cluster(&json!({"kubeconfig": "kc"})).await.unwrap();
    let err = cluster.check_linux_node().await.expect_err("untrusted");
    let d = err.iter().next().unwrap();
    assert_eq!(d.code, "k8s-unreachable", "{d}");
    let hint = d.hint.as_deref().unwrap();
    assert!(hint.contains("certificate-authority-data"), "{hint}");
    assert!(!d.message.contains("tries"), "not retried: {}", d.message);
    let _ = std::fs::remove_dir_all(&dir);
    sandbox.shutdown().await;
}
