//! Contract tests of the day-2 resource types, `Microsoft.KubernetesConfiguration/extensions`
//! (spec 2025-03-01) and `Microsoft.ExtendedLocation/customLocations` (spec 2021-08-15): every
//! request arcplan sends and every response the sandbox gives, checked against the official
//! OpenAPI specs carried under `specs/azure`, and the errors ARM gives for what it refuses.

mod common;

use arcplan_sandbox::RegistrationState;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn cluster_with_configuration_registered(env: &Env) -> String {
    env.prepare("arc").await;
    let (_, public) = key_pair("a");
    let cluster = create_connected_cluster(env, "arc", "c1", &public).await;
    env.sandbox.arm().set_provider_state(
        &env.sub(),
        "Microsoft.KubernetesConfiguration",
        RegistrationState::Registered,
    );
    cluster
}

#[tokio::test]
async fn extensions_match_the_spec() {
    let env = Env::start(quick()).await;
    let cluster = cluster_with_configuration_registered(&env).await;
    let list = format!("{cluster}/providers/Microsoft.KubernetesConfiguration/extensions");
    let path = format!("{list}/monitor");
    // The body arcplan sends (see providers/src/azure/kinds/extension.rs).
    let put = json!({"properties": {
        "extensionType": "microsoft.azuremonitor.containers",
        "autoUpgradeMinorVersion": true,
        "releaseTrain": "Stable",
        "scope": {"cluster": {"releaseNamespace": "azuremonitor"}},
        "configurationSettings": {"a": "1", "arcplan.stack": "s1", "arcplan.protectedSettingsDigest": "d"},
        "configurationProtectedSettings": {"key": "do-not-echo"},
    }});
    check("extensions", "Extension", &put);
    let (s, h, body) = env.put(&path, EXT_API, &put).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    check_arm_headers(&h);
    check("extensions", "Extension", &body);
    assert_eq!(body["type"], "Microsoft.KubernetesConfiguration/extensions");
    assert_eq!(body["properties"]["provisioningState"], "Creating");
    assert!(
        !body.to_string().contains("do-not-echo"),
        "protected settings are never returned"
    );
    let op = h["azure-asyncoperation"].to_str().unwrap().to_string();
    assert!(op.contains("/extensions/monitor/operations/"), "{op}");
    let status = env.poll_async(&op).await;
    check("kc-common", "OperationStatusResult", &status);
    assert_eq!(status["status"], "Succeeded");

    let (s, _, body) = env.get(&path, EXT_API).await;
    assert_eq!(s, StatusCode::OK);
    check("extensions", "Extension", &body);
    assert_eq!(body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(body["properties"]["currentVersion"], "3.1.26");
    assert_eq!(
        body["properties"]["statuses"][0]["code"],
        "InstallationSucceeded"
    );
    assert_eq!(
        env.sandbox
            .arm()
            .extension_protected_settings(&env.sub(), "arc", "c1", "monitor")
            .unwrap()["key"],
        "do-not-echo",
        "stored"
    );

    // PATCH (what arcplan sends to update): pin a version.
    let patch = json!({"properties": {
        "autoUpgradeMinorVersion": false,
        "version": "3.2.0",
        "configurationSettings": {"a": "2", "arcplan.stack": "s1"},
    }});
    check("extensions", "patchExtension", &patch);
    let (s, h, _) = env
        .call(Method::PATCH, &env.url(&path, Some(EXT_API)), Some(&patch))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let status = env
        .poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    check("kc-common", "OperationStatusResult", &status);
    let (_, _, body) = env.get(&path, EXT_API).await;
    check("extensions", "Extension", &body);
    assert_eq!(body["properties"]["currentVersion"], "3.2.0");
    assert_eq!(body["properties"]["configurationSettings"]["a"], "2");

    // List.
    let (s, _, body) = env.get(&list, EXT_API).await;
    assert_eq!(s, StatusCode::OK);
    check("extensions", "ExtensionsList", &body);
    assert_eq!(body["value"].as_array().unwrap().len(), 1);

    // DELETE: 202 with both headers, then 404 and 204.
    delete_lro(&env, &path, EXT_API).await;
    env.shutdown().await;
}

#[tokio::test]
async fn extension_errors_are_arms() {
    let env = Env::start(quick()).await;
    env.prepare("arc").await;
    let (_, public) = key_pair("a");
    let cluster = create_connected_cluster(&env, "arc", "c1", &public).await;
    let path = format!("{cluster}/providers/Microsoft.KubernetesConfiguration/extensions/x");
    let body = |t: &str| json!({"properties": {"extensionType": t}});

    // Microsoft.KubernetesConfiguration not registered.
    let (s, _, b) = env.put(&path, EXT_API, &body("microsoft.flux")).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(error_code(&b), "MissingSubscriptionRegistration");
    env.sandbox.arm().set_provider_state(
        &env.sub(),
        "Microsoft.KubernetesConfiguration",
        RegistrationState::Registered,
    );

    // An unknown extension type.
    let (s, _, b) = env.put(&path, EXT_API, &body("microsoft.nothing")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&b), "ExtensionTypeRegistrationGetFailed");
    check("common3", "ErrorResponse", &b);

    // A pinned version with auto-upgrade on (the default).
    let pinned = json!({"properties": {"extensionType": "microsoft.flux", "version": "1.0.0"}});
    let (s, _, b) = env.put(&path, EXT_API, &pinned).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&b), "InvalidExtensionVersion");

    // Both scopes.
    let both = json!({"properties": {"extensionType": "microsoft.flux", "scope": {"cluster": {}, "namespace": {}}}});
    let (s, _, b) = env.put(&path, EXT_API, &both).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&b), "InvalidRequestContent");

    // A write while another is in progress; the type cannot change in place.
    let (s, h, _) = env.put(&path, EXT_API, &body("microsoft.flux")).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, b) = env.put(&path, EXT_API, &body("microsoft.flux")).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(error_code(&b), "AnotherOperationInProgress");
    env.poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    let (s, _, b) = env.put(&path, EXT_API, &body("microsoft.dapr")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(error_code(&b), "ExtensionUpdateNotAllowed");

    // Under a cluster that does not exist.
    let missing = path.replace("/c1/", "/nope/");
    let (s, _, b) = env.put(&missing, EXT_API, &body("microsoft.flux")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&b), "ParentResourceNotFound");
    env.shutdown().await;
}

#[tokio::test]
async fn custom_locations_match_the_spec() {
    let env = Env::start(quick()).await;
    let cluster = cluster_with_configuration_registered(&env).await;
    let ext = format!("{cluster}/providers/Microsoft.KubernetesConfiguration/extensions/monitor");
    let (s, h, _) = env
        .put(
            &ext,
            EXT_API,
            &json!({"properties": {"extensionType": "microsoft.azuremonitor.containers"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    env.poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    let sub = env.sub();
    let path = format!(
        "/subscriptions/{sub}/resourceGroups/arc/providers/Microsoft.ExtendedLocation/customLocations/loc1"
    );
    // The body arcplan sends (providers/src/azure/kinds/custom_location.rs).
    let put = json!({
        "location": "eastus",
        "tags": {"arcplan-stack": "s1"},
        "properties": {
            "hostType": "Kubernetes",
            "hostResourceId": cluster,
            "namespace": "arc-services",
            "clusterExtensionIds": [ext],
            "displayName": "loc1",
        },
    });
    check("customlocations", "customLocation", &put);

    // Microsoft.ExtendedLocation not registered yet.
    let (s, _, b) = env.put(&path, CL_API, &put).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(error_code(&b), "MissingSubscriptionRegistration");
    env.sandbox.arm().set_provider_state(
        &sub,
        "Microsoft.ExtendedLocation",
        RegistrationState::Registered,
    );

    // An extension the host does not have.
    let mut wrong = put.clone();
    wrong["properties"]["clusterExtensionIds"] = json!([format!(
        "{cluster}/providers/Microsoft.KubernetesConfiguration/extensions/nope"
    )]);
    let (s, _, b) = env.put(&path, CL_API, &wrong).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&b), "ClusterExtensionNotFound");
    check("common3", "ErrorResponse", &b);

    // The host's agents without the custom-locations feature: the creation fails, saying so.
    let (s, h, body) = env.put(&path, CL_API, &put).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let status = env
        .poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    check("common3", "OperationStatusResult", &status);
    assert_eq!(status["status"], "Failed", "{status}");
    assert_eq!(status["error"]["code"], "CustomLocationsFeatureDisabled");
    assert!(
        status["error"]["message"]
            .as_str()
            .unwrap()
            .contains("enable-features --features cluster-connect custom-locations"),
        "{status}"
    );
    let (_, _, body) = env.get(&path, CL_API).await;
    assert_eq!(body["properties"]["provisioningState"], "Failed");
    // Bound to another principal: refused too.
    let host = (sub.as_str(), "arc", "c1");
    env.sandbox
        .arm()
        .report_custom_locations(host, Some("00000000-0000-0000-0000-00000000beef"));
    let (_, h, _) = env.put(&path, CL_API, &put).await;
    let status = env
        .poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    assert_eq!(
        status["error"]["code"],
        "CustomLocationsFeatureMisconfigured"
    );
    env.sandbox
        .arm()
        .report_custom_locations(host, Some(arcplan_sandbox::CUSTOM_LOCATIONS_OID));

    let (s, h, body) = env.put(&path, CL_API, &put).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    check_arm_headers(&h);
    check("customlocations", "customLocation", &body);
    let status = env
        .poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    check("common3", "OperationStatusResult", &status);
    assert_eq!(status["status"], "Succeeded");
    let (s, _, body) = env.get(&path, CL_API).await;
    assert_eq!(s, StatusCode::OK);
    check("customlocations", "customLocation", &body);
    assert_eq!(body["properties"]["provisioningState"], "Succeeded");

    // The namespace cannot change in place.
    let mut moved = put.clone();
    moved["properties"]["namespace"] = json!("elsewhere");
    let (s, _, b) = env.put(&path, CL_API, &moved).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&b), "CustomLocationUpdateNotAllowed");

    // Lists by group and by subscription.
    let (s, _, body) = env
        .get(&format!("/subscriptions/{sub}/resourceGroups/arc/providers/Microsoft.ExtendedLocation/customLocations"), CL_API)
        .await;
    assert_eq!(s, StatusCode::OK);
    check("customlocations", "customLocationListResult", &body);
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    let (_, _, body) = env
        .get(
            &format!("/subscriptions/{sub}/providers/Microsoft.ExtendedLocation/customLocations"),
            CL_API,
        )
        .await;
    check("customlocations", "customLocationListResult", &body);

    delete_lro(&env, &path, CL_API).await;
    env.shutdown().await;
}
