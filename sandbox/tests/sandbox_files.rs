//! The sandbox's files (CA, kubeconfig, env file), its request log with redaction, request counters
//! and option validation.

mod common;

use arcplan_sandbox::{Sandbox, SandboxError, SandboxOptions};
use common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn writes_private_files_that_reach_every_server() {
    let dir = std::env::temp_dir().join(format!("arcplan-sandbox-files-{}", std::process::id()));
    let log_path = dir.join("requests.jsonl");
    std::fs::create_dir_all(&dir).unwrap();
    let env = Env::start(SandboxOptions {
        log_path: Some(log_path.clone()),
        ..quick()
    })
    .await;
    let [ca, kubeconfig, envfile] = env.sandbox.write_files(&dir).expect("files written");
    #[cfg(unix)]
    for p in [&ca, &kubeconfig, &envfile] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
    assert_eq!(std::fs::read_to_string(&ca).unwrap(), env.sandbox.ca_pem());
    let vars: std::collections::HashMap<String, String> = std::fs::read_to_string(&envfile)
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    for key in [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_AUTHORITY_HOST",
        "ARCPLAN_SUBSCRIPTION_ID",
        "ARCPLAN_RESOURCE_MANAGER",
        "ARCPLAN_CA_BUNDLE",
        "KUBECONFIG",
    ] {
        assert!(vars.contains_key(key), "{key} missing");
    }
    assert_eq!(vars["AZURE_AUTHORITY_HOST"], env.sandbox.authority_host());
    assert_eq!(vars["ARCPLAN_CA_BUNDLE"], ca.display().to_string());

    // The kubeconfig is valid YAML pointing at the Kubernetes emulator with the admin token.
    let config: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&kubeconfig).unwrap())
            .expect("kubeconfig YAML");
    assert_eq!(config["current-context"], "sandbox");
    let server = config["clusters"][0]["cluster"]["server"].as_str().unwrap();
    let token = config["users"][0]["user"]["token"].as_str().unwrap();
    let resp = env
        .http
        .get(format!("{server}/api/v1/namespaces"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let counts = env.sandbox.request_counts();
    assert!(counts.entra >= 1 && counts.kube >= 1, "{counts:?}");
    let (s, _, _) = env
        .get(&format!("/subscriptions/{}", env.sub()), SUB_API)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(env.sandbox.request_counts().arm, counts.arm + 1);

    // The log has every request, and no credential.
    let secret = env.sandbox.client_secret().to_string();
    let arm_token = env.token.clone();
    let kube_token = env.sandbox.kube_token();
    env.shutdown().await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["server"] == "entra" && l["status"] == 200)
    );
    assert!(lines.iter().any(|l| l["server"] == "arm"));
    assert!(lines.iter().any(|l| l["server"] == "kube"));
    for needle in [&secret, &arm_token, &kube_token] {
        assert!(
            !log.contains(needle.as_str()),
            "a credential leaked into the log"
        );
    }
    assert!(log.contains("[REDACTED]"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn invalid_options_are_refused_clearly() {
    let err = Sandbox::start(SandboxOptions {
        subscription_ids: vec!["3000e2af-000-46d9-0000-4bdb12000000".into()],
        ..SandboxOptions::default()
    })
    .await
    .expect_err("not a GUID");
    assert!(matches!(
        err,
        SandboxError::InvalidOption {
            option: "subscription_ids",
            ..
        }
    ));
    assert!(err.to_string().contains("is not a GUID"), "{err}");
    let err = Sandbox::start(SandboxOptions {
        fault_rate: 2.0,
        ..SandboxOptions::default()
    })
    .await
    .expect_err("rate out of range");
    assert!(err.to_string().contains("fault_rate"));
}
