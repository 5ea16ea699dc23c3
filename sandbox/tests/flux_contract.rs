//! Contract tests of `Microsoft.KubernetesConfiguration/fluxConfigurations` (spec 2025-04-01):
//! every request arcplan sends and every response the sandbox gives, checked against the
//! official OpenAPI spec carried under `specs/azure`, the Flux controller stand-in's
//! compliance reports, and the errors for what the service refuses.

mod common;

use arcplan_sandbox::RegistrationState;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const URL: &str = "https://github.com/Azure/gitops-flux2-kustomize-helm-mt";

/// A connected cluster with `Microsoft.KubernetesConfiguration` registered; with the
/// `microsoft.flux` extension installed when `flux`.
async fn cluster(env: &Env, flux: bool) -> String {
    env.prepare("arc").await;
    let (_, public) = key_pair("a");
    let cluster = create_connected_cluster(env, "arc", "c1", &public).await;
    env.sandbox.arm().set_provider_state(
        &env.sub(),
        "Microsoft.KubernetesConfiguration",
        RegistrationState::Registered,
    );
    if flux {
        let path = format!("{cluster}/providers/Microsoft.KubernetesConfiguration/extensions/flux");
        let body = json!({"properties": {"extensionType": "microsoft.flux", "autoUpgradeMinorVersion": true,
            "scope": {"cluster": {"releaseNamespace": "flux-system"}}}});
        let (s, h, b) = env.put(&path, EXT_API, &body).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        env.poll_async(h["azure-asyncoperation"].to_str().unwrap())
            .await;
    }
    cluster
}

/// The body arcplan sends to create (see providers/src/azure/kinds/flux/write.rs).
fn put_body(url: &str) -> Value {
    json!({"properties": {
        "scope": "cluster",
        "namespace": "cluster-config",
        "sourceKind": "GitRepository",
        "suspend": false,
        "gitRepository": {
            "url": url,
            "repositoryRef": {"branch": "main"},
            "syncIntervalInSeconds": 300,
            "httpsUser": "bot",
        },
        "kustomizations": {
            "infra": {"path": "./infrastructure", "dependsOn": [], "prune": true, "force": false, "wait": true},
            "apps": {"path": "./apps/staging", "dependsOn": ["infra"], "prune": true, "force": false, "wait": true,
                     "syncIntervalInSeconds": 120, "timeoutInSeconds": 300, "retryIntervalInSeconds": 60},
        },
        "configurationProtectedSettings": {"httpsKey": "ZG8tbm90LWVjaG8="},
    }})
}

/// Polls the configuration until its compliance is no longer `Pending`.
async fn settled(env: &Env, path: &str) -> Value {
    for _ in 0..200 {
        let (s, _, b) = env.get(path, FLUX_API).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        check("flux", "FluxConfiguration", &b);
        if b["properties"]["complianceState"] != "Pending" {
            return b;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{path} stayed Pending");
}

#[tokio::test]
async fn flux_configurations_match_the_spec() {
    let env = Env::start(quick()).await;
    let cluster = cluster(&env, true).await;
    let list = format!("{cluster}/providers/Microsoft.KubernetesConfiguration/fluxConfigurations");
    let path = format!("{list}/cluster-config");
    let put = put_body(URL);
    check("flux", "FluxConfiguration", &put);
    let (s, h, body) = env.put(&path, FLUX_API, &put).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    check_arm_headers(&h);
    check("flux", "FluxConfiguration", &body);
    assert_eq!(
        body["type"],
        "Microsoft.KubernetesConfiguration/fluxConfigurations"
    );
    assert_eq!(body["properties"]["provisioningState"], "Creating");
    assert!(
        !body.to_string().contains("ZG8tbm90LWVjaG8="),
        "protected settings are never returned"
    );
    let op = h["azure-asyncoperation"].to_str().unwrap().to_string();
    assert!(
        op.contains("/fluxConfigurations/cluster-config/operations/"),
        "{op}"
    );
    let status = env.poll_async(&op).await;
    check("flux", "OperationStatusResult", &status);
    assert_eq!(status["status"], "Succeeded");

    // The Flux controller stand-in: Compliant, one status per kustomization.
    let body = settled(&env, &path).await;
    let p = &body["properties"];
    assert_eq!(p["provisioningState"], "Succeeded");
    assert_eq!(p["complianceState"], "Compliant");
    assert_eq!(p["gitRepository"]["timeoutInSeconds"], 600, "the default");
    assert_eq!(p["kustomizations"]["infra"]["syncIntervalInSeconds"], 600);
    let statuses = p["statuses"].as_array().unwrap();
    let kustomizations: Vec<&Value> = statuses
        .iter()
        .filter(|s| s["kind"] == "Kustomization")
        .collect();
    assert_eq!(kustomizations.len(), 2, "{statuses:?}");
    assert!(
        kustomizations
            .iter()
            .any(|k| k["name"] == "cluster-config-apps"
                && k["namespace"] == "cluster-config"
                && k["complianceState"] == "Compliant")
    );
    assert!(
        p["sourceSyncedCommitId"]
            .as_str()
            .unwrap()
            .starts_with("branch:main@sha1:")
    );
    assert_eq!(
        env.sandbox
            .arm()
            .flux_protected_settings(&env.sub(), "arc", "c1", "cluster-config")
            .unwrap()["httpsKey"],
        "ZG8tbm90LWVjaG8=",
        "stored"
    );

    // PATCH (what arcplan sends to update): a kustomization and the reference changed,
    // suspended. (The patch model cannot remove a kustomization: arcplan PUTs for that.)
    let patch = json!({"properties": {
        "suspend": true,
        "gitRepository": {"url": URL, "repositoryRef": {"branch": "release"}, "syncIntervalInSeconds": 300,
                          "httpsUser": "bot", "timeoutInSeconds": null, "sshKnownHosts": null},
        "kustomizations": {
            "infra": {"path": "./infra2", "dependsOn": [], "prune": true, "force": false, "wait": true,
                      "syncIntervalInSeconds": null, "timeoutInSeconds": null, "retryIntervalInSeconds": null},
        },
        "configurationProtectedSettings": {"httpsKey": "bmV3"},
    }});
    check("flux", "FluxConfigurationPatch", &patch);
    let (s, h, _) = env
        .call(Method::PATCH, &env.url(&path, Some(FLUX_API)), Some(&patch))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let status = env
        .poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    check("flux", "OperationStatusResult", &status);
    let body = settled(&env, &path).await;
    let p = &body["properties"];
    assert_eq!(p["complianceState"], "Suspended");
    assert_eq!(p["kustomizations"]["infra"]["path"], "./infra2");
    assert_eq!(
        p["kustomizations"]["apps"]["path"], "./apps/staging",
        "kept"
    );
    assert_eq!(
        p["gitRepository"]["repositoryRef"],
        json!({"branch": "release"})
    );
    assert_eq!(
        env.sandbox
            .arm()
            .flux_protected_settings(&env.sub(), "arc", "c1", "cluster-config")
            .unwrap()["httpsKey"],
        "bmV3"
    );

    // PUT over the existing configuration (what arcplan sends when a kustomization goes).
    let mut put = put_body(URL);
    put["properties"]["kustomizations"]
        .as_object_mut()
        .unwrap()
        .remove("apps");
    let (s, h, body) = env.put(&path, FLUX_API, &put).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    check("flux", "FluxConfiguration", &body);
    env.poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    let body = settled(&env, &path).await;
    assert!(body["properties"]["kustomizations"].get("apps").is_none());
    assert_eq!(body["properties"]["complianceState"], "Compliant");

    // List.
    let (s, _, body) = env.get(&list, FLUX_API).await;
    assert_eq!(s, StatusCode::OK);
    check("flux", "FluxConfigurationsList", &body);
    assert_eq!(body["value"].as_array().unwrap().len(), 1);

    // DELETE: 202 with both headers, then 404 and 204.
    delete_lro(&env, &path, FLUX_API).await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_broken_repository_is_non_compliant() {
    let env = Env::start(quick()).await;
    let cluster = cluster(&env, true).await;
    let broken = "https://example.com/gone.git";
    env.sandbox.arm().set_broken_repository(broken);
    let path =
        format!("{cluster}/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/x");
    let (s, h, b) = env.put(&path, FLUX_API, &put_body(broken)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    env.poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    let body = settled(&env, &path).await;
    let p = &body["properties"];
    assert_eq!(
        p["provisioningState"], "Succeeded",
        "the write itself succeeded"
    );
    assert_eq!(p["complianceState"], "Non-Compliant");
    let text = p["statuses"].to_string();
    assert!(
        text.contains(&format!(
            "failed to checkout and determine revision: unable to clone '{broken}'"
        )),
        "{text}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn flux_configuration_errors() {
    let env = Env::start(quick()).await;
    let cluster = cluster(&env, false).await;
    let path =
        format!("{cluster}/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/x");

    // No microsoft.flux extension on the cluster (the sandbox's code).
    let (s, _, b) = env.put(&path, FLUX_API, &put_body(URL)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(error_code(&b), "FluxExtensionNotInstalled");
    check("common3", "ErrorResponse", &b);
    let ext = format!("{cluster}/providers/Microsoft.KubernetesConfiguration/extensions/flux");
    let (_, h, _) = env
        .put(
            &ext,
            EXT_API,
            &json!({"properties": {"extensionType": "microsoft.flux"}}),
        )
        .await;
    env.poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;

    // Two references; none.
    let mut two = put_body(URL);
    two["properties"]["gitRepository"]["repositoryRef"] = json!({"branch": "main", "tag": "v1"});
    let (s, _, b) = env.put(&path, FLUX_API, &two).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&b), "InvalidRepositoryRef");
    // dependsOn naming no kustomization.
    let mut dep = put_body(URL);
    dep["properties"]["kustomizations"]["apps"]["dependsOn"] = json!(["nope"]);
    let (s, _, b) = env.put(&path, FLUX_API, &dep).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&b), "InvalidKustomizationDependency");
    // A protected value that is not base64.
    let mut raw = put_body(URL);
    raw["properties"]["configurationProtectedSettings"]["httpsKey"] = json!("not base64!");
    let (s, _, b) = env.put(&path, FLUX_API, &raw).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&b), "InvalidConfigurationProtectedSettings");
    assert!(!b.to_string().contains("not base64!"), "never echoed");
    // No source.
    let mut none = put_body(URL);
    none["properties"]
        .as_object_mut()
        .unwrap()
        .remove("gitRepository");
    let (s, _, b) = env.put(&path, FLUX_API, &none).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&b), "InvalidSourceDefinition");

    // A write while another is in progress; the namespace cannot change in place.
    let (s, h, _) = env.put(&path, FLUX_API, &put_body(URL)).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, b) = env.put(&path, FLUX_API, &put_body(URL)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(error_code(&b), "AnotherOperationInProgress");
    env.poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    let mut moved = put_body(URL);
    moved["properties"]["namespace"] = json!("elsewhere");
    let (s, _, b) = env.put(&path, FLUX_API, &moved).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(error_code(&b), "InvalidFluxConfigurationUpdate");
    // PATCH cannot name the scope.
    let (s, _, b) = env
        .call(
            Method::PATCH,
            &env.url(&path, Some(FLUX_API)),
            Some(&json!({"properties": {"scope": "namespace"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");

    // Under a cluster that does not exist.
    let missing = path.replace("/c1/", "/nope/");
    let (s, _, b) = env.put(&missing, FLUX_API, &put_body(URL)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&b), "ParentResourceNotFound");
    env.shutdown().await;
}

#[tokio::test]
async fn a_bucket_source_matches_the_spec() {
    let env = Env::start(quick()).await;
    let cluster = cluster(&env, true).await;
    let path =
        format!("{cluster}/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/b");
    // The body arcplan sends for `sourceKind: Bucket`.
    let put = json!({"properties": {
        "scope": "namespace", "namespace": "apps", "sourceKind": "Bucket", "suspend": false,
        "bucket": {"url": "https://minio.example.com", "bucketName": "manifests", "insecure": false, "accessKey": "AKIA0000"},
        "kustomizations": {"apps": {"path": "./", "dependsOn": [], "prune": false, "force": false, "wait": true}},
        "configurationProtectedSettings": {"bucketSecretKey": "c2VjcmV0"},
    }});
    check("flux", "FluxConfiguration", &put);
    let (s, h, b) = env.put(&path, FLUX_API, &put).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    check("flux", "FluxConfiguration", &b);
    env.poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    let body = settled(&env, &path).await;
    let p = &body["properties"];
    assert_eq!(p["complianceState"], "Compliant");
    assert_eq!(p["bucket"]["syncIntervalInSeconds"], 600, "the default");
    assert!(p.get("gitRepository").is_none());
    assert!(
        p["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["kind"] == "Bucket")
    );
    let patch = json!({"properties": {
        "suspend": false,
        "bucket": {"url": "https://minio.example.com", "bucketName": "other", "insecure": false,
                   "accessKey": "AKIA0000", "syncIntervalInSeconds": null, "timeoutInSeconds": 120},
        "kustomizations": {"apps": {"path": "./apps", "dependsOn": [], "prune": false, "force": false, "wait": true,
                   "syncIntervalInSeconds": null, "timeoutInSeconds": null, "retryIntervalInSeconds": null}},
    }});
    check("flux", "FluxConfigurationPatch", &patch);
    let (s, h, _) = env
        .call(Method::PATCH, &env.url(&path, Some(FLUX_API)), Some(&patch))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    env.poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    let body = settled(&env, &path).await;
    assert_eq!(body["properties"]["bucket"]["bucketName"], "other");
    assert_eq!(body["properties"]["bucket"]["timeoutInSeconds"], 120);
    assert_eq!(
        body["properties"]["bucket"]["syncIntervalInSeconds"], 600,
        "null: back to the default"
    );
    env.sandbox
        .arm()
        .set_broken_repository("https://minio.example.com");
    let (_, h, _) = env
        .call(Method::PATCH, &env.url(&path, Some(FLUX_API)), Some(&patch))
        .await;
    env.poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    let body = settled(&env, &path).await;
    assert_eq!(body["properties"]["complianceState"], "Non-Compliant");
    assert!(
        body["properties"]["statuses"]
            .to_string()
            .contains("failed to confirm existence of bucket")
    );
    env.shutdown().await;
}

#[tokio::test]
async fn an_oci_source_matches_the_spec() {
    let env = Env::start(quick()).await;
    let cluster = cluster(&env, true).await;
    let path =
        format!("{cluster}/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/o");
    // The body arcplan sends for `sourceKind: OCIRepository`.
    let put = json!({"properties": {
        "scope": "cluster", "namespace": "default", "sourceKind": "OCIRepository", "suspend": false,
        "ociRepository": {"url": "oci://ghcr.io/org/manifests", "repositoryRef": {"tag": "v1.2.0"},
                          "insecure": false, "syncIntervalInSeconds": 60},
        "kustomizations": {"apps": {"path": "./", "dependsOn": [], "prune": false, "force": false, "wait": true}},
    }});
    check("flux", "FluxConfiguration", &put);
    let (s, h, b) = env.put(&path, FLUX_API, &put).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    check("flux", "FluxConfiguration", &b);
    env.poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    let body = settled(&env, &path).await;
    let p = &body["properties"];
    assert_eq!(p["complianceState"], "Compliant");
    assert_eq!(p["ociRepository"]["timeoutInSeconds"], 600, "the default");
    assert_eq!(p["ociRepository"]["useWorkloadIdentity"], false);
    assert!(
        p["sourceSyncedCommitId"]
            .as_str()
            .unwrap()
            .starts_with("v1.2.0@sha256:")
    );
    let patch = json!({"properties": {
        "suspend": false,
        "ociRepository": {"url": "oci://ghcr.io/org/manifests", "repositoryRef": {"tag": "v1.3.0"},
                          "insecure": false, "syncIntervalInSeconds": null, "timeoutInSeconds": null},
    }});
    check("flux", "FluxConfigurationPatch", &patch);
    let (s, h, _) = env
        .call(Method::PATCH, &env.url(&path, Some(FLUX_API)), Some(&patch))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    env.poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    let body = settled(&env, &path).await;
    assert_eq!(
        body["properties"]["ociRepository"]["repositoryRef"]["tag"],
        "v1.3.0"
    );
    let mut bad = put.clone();
    bad["properties"]["ociRepository"]["url"] = json!("https://ghcr.io/org/manifests");
    let (s, _, b) = env.put(&path, FLUX_API, &bad).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&b), "InvalidOCIRepositoryUrl");
    env.shutdown().await;
}
