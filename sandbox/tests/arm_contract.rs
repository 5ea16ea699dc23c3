//! Contract tests: every ARM operation the sandbox serves, with request and response bodies checked
//! against the official OpenAPI specs carried in the repository under `specs/azure`.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn subscriptions_match_the_spec() {
    let env = Env::start(quick()).await;
    let sub = env.sub();

    let (s, h, body) = env.get("/subscriptions", SUB_API).await;
    assert_eq!(s, StatusCode::OK);
    check_arm_headers(&h);
    check("subscriptions", "SubscriptionListResult", &body);
    assert_eq!(body["value"][0]["subscriptionId"], sub.as_str());

    let (s, _, body) = env.get(&format!("/subscriptions/{sub}"), SUB_API).await;
    assert_eq!(s, StatusCode::OK);
    check("subscriptions", "Subscription", &body);
    assert_eq!(body["tenantId"], env.sandbox.tenant_id());
    assert_eq!(body["state"], "Enabled");

    let (s, _, body) = env
        .get(
            "/subscriptions/00000000-0000-4000-8000-000000000999",
            SUB_API,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "SubscriptionNotFound");

    let (s, _, body) = env
        .get(
            "/subscriptions/3000e2af-000-46d9-0000-4bdb12000000",
            SUB_API,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "InvalidSubscriptionId");
    env.shutdown().await;
}

#[tokio::test]
async fn resource_groups_match_the_spec() {
    let env = Env::start(quick()).await;
    let sub = env.sub();
    let path = format!("/subscriptions/{sub}/resourcegroups/myRG");

    let put = json!({"location": "East US", "tags": {"env": "lab"}});
    check("resources", "ResourceGroup", &put);
    let (s, _, body) = env.put(&path, RG_API, &put).await;
    assert_eq!(s, StatusCode::CREATED);
    check("resources", "ResourceGroup", &body);
    assert_eq!(
        body["id"],
        format!("/subscriptions/{sub}/resourceGroups/myRG")
    );
    assert_eq!(body["location"], "eastus");
    assert_eq!(body["properties"]["provisioningState"], "Succeeded");

    // Update: 200; case-insensitive path; name keeps its first casing.
    let (s, _, body) = env
        .put(
            &format!("/SUBSCRIPTIONS/{sub}/resourceGroups/MYRG"),
            RG_API,
            &json!({"location": "eastus", "tags": {"env": "prod"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["name"], "myRG");
    assert_eq!(body["tags"]["env"], "prod");

    let patch = json!({"tags": {"env": "patched", "owner": "me"}});
    check("resources", "ResourceGroupPatchable", &patch);
    let (s, _, body) = env
        .call(Method::PATCH, &env.url(&path, Some(RG_API)), Some(&patch))
        .await;
    assert_eq!(s, StatusCode::OK);
    check("resources", "ResourceGroup", &body);
    assert_eq!(body["tags"]["owner"], "me");

    let (s, _, body) = env.get(&path, RG_API).await;
    assert_eq!(s, StatusCode::OK);
    check("resources", "ResourceGroup", &body);

    let (s, _, _) = env
        .call(Method::HEAD, &env.url(&path, Some(RG_API)), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = env
        .call(
            Method::HEAD,
            &env.url(&format!("{path}x"), Some(RG_API)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Location is immutable.
    let (s, _, body) = env.put(&path, RG_API, &json!({"location": "westus"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "InvalidResourceGroupLocation");

    // Bad bodies.
    let (s, _, body) = env.put(&path, RG_API, &json!({"tags": {}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "LocationRequired");
    let resp = env
        .http
        .put(env.url(&path, Some(RG_API)))
        .bearer_auth(&env.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "InvalidRequestContent");

    // List with a tag filter and paging.
    for i in 0..3 {
        env.put(
            &format!("/subscriptions/{sub}/resourcegroups/rg{i}"),
            RG_API,
            &json!({"location": "eastus", "tags": {"arcplan-stack": if i == 1 { "other" } else { "lab" }}}),
        )
        .await;
    }
    env.sandbox.arm().set_page_size(2);
    let mut url = env.url(
        &format!("/subscriptions/{sub}/resourcegroups"),
        Some(RG_API),
    );
    let mut names = Vec::new();
    loop {
        let (s, _, body) = env.call(Method::GET, &url, None).await;
        assert_eq!(s, StatusCode::OK);
        check("resources", "ResourceGroupListResult", &body);
        names.extend(
            body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["name"].as_str().unwrap().to_string()),
        );
        match body["nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(names.len(), 4);
    let filter = env.url(
        &format!("/subscriptions/{sub}/resourcegroups?$filter=tagName%20eq%20'arcplan-stack'%20and%20tagValue%20eq%20'lab'"),
        Some(RG_API),
    );
    let (_, _, body) = env.call(Method::GET, &filter, None).await;
    let names: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rg0", "rg2"]);

    // Delete: 202 + Location, polled to 200; the group is gone afterwards.
    let (s, h, body) = env
        .call(Method::DELETE, &env.url(&path, Some(RG_API)), None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let location = h["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("https://127.0.0.1:"), "{location}");
    assert!(location.contains("api-version="));
    assert!(h.contains_key("retry-after"));
    let (_, _, body) = env.get(&path, RG_API).await;
    assert_eq!(body["properties"]["provisioningState"], "Deleting");
    let mut done = false;
    for _ in 0..100 {
        let (s, _, _) = env.call(Method::GET, &location, None).await;
        if s == StatusCode::OK {
            done = true;
            break;
        }
        assert_eq!(s, StatusCode::ACCEPTED);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(done);
    let (s, _, body) = env.get(&path, RG_API).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "ResourceGroupNotFound");
    env.shutdown().await;
}

#[tokio::test]
async fn providers_match_the_spec_and_register_asynchronously() {
    let env = Env::start(quick()).await;
    let sub = env.sub();
    let (s, _, body) = env
        .get(&format!("/subscriptions/{sub}/providers"), RG_API)
        .await;
    assert_eq!(s, StatusCode::OK);
    check("resources", "ProviderListResult", &body);
    let namespaces: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["namespace"].as_str().unwrap())
        .collect();
    for ns in [
        "Microsoft.Kubernetes",
        "Microsoft.KubernetesConfiguration",
        "Microsoft.ExtendedLocation",
        "Microsoft.Authorization",
        "Microsoft.Resources",
    ] {
        assert!(namespaces.contains(&ns), "{ns} missing");
    }

    let provider = format!("/subscriptions/{sub}/providers/microsoft.kubernetes");
    let (_, _, body) = env.get(&provider, RG_API).await;
    check("resources", "Provider", &body);
    assert_eq!(body["namespace"], "Microsoft.Kubernetes");
    assert_eq!(body["registrationState"], "NotRegistered");

    let (s, _, body) = env
        .call(
            Method::POST,
            &env.url(&format!("{provider}/register"), Some(RG_API)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    check("resources", "Provider", &body);
    assert_eq!(body["registrationState"], "Registering");
    let mut state = String::new();
    for _ in 0..100 {
        let (_, _, body) = env.get(&provider, RG_API).await;
        state = body["registrationState"].as_str().unwrap().to_string();
        if state == "Registered" {
            break;
        }
        assert_eq!(state, "Registering");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(state, "Registered");

    let (s, _, body) = env
        .call(
            Method::POST,
            &env.url(&format!("{provider}/unregister"), Some(RG_API)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["registrationState"], "Unregistering");

    let (_, _, body) = env
        .get(
            &format!("/subscriptions/{sub}/providers/Microsoft.Resources"),
            RG_API,
        )
        .await;
    assert_eq!(body["registrationState"], "Registered");

    let (s, _, body) = env
        .get(
            &format!("/subscriptions/{sub}/providers/Microsoft.Nope"),
            RG_API,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "InvalidResourceNamespace");
    env.shutdown().await;
}

#[tokio::test]
async fn connected_clusters_match_the_spec() {
    let env = Env::start(quick()).await;
    let sub = env.sub();
    env.prepare("arc").await;
    let path = format!(
        "/subscriptions/{sub}/resourceGroups/arc/providers/Microsoft.Kubernetes/connectedClusters/c1"
    );
    let (_, public) = key_pair("a");
    let mut put = cluster_body(&public);
    check("cc", "ConnectedCluster", &put);
    // Read-only fields in the body are ignored.
    put["properties"]["connectivityStatus"] = json!("Connected");
    put["properties"]["totalNodeCount"] = json!(99);
    put["identity"]["principalId"] = json!("ignored");
    let (s, h, body) = env.put(&path, CC_API, &put).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    check_arm_headers(&h);
    check("cc", "ConnectedCluster", &body);
    assert_eq!(body["properties"]["provisioningState"], "Accepted");
    assert_eq!(body["properties"]["connectivityStatus"], "Connecting");
    assert!(body["properties"].get("totalNodeCount").is_none());
    assert_ne!(body["identity"]["principalId"], "ignored");
    assert_eq!(body["identity"]["tenantId"], env.sandbox.tenant_id());
    assert_eq!(body["type"], "Microsoft.Kubernetes/connectedClusters");
    let async_url = h["azure-asyncoperation"].to_str().unwrap().to_string();
    assert!(
        async_url.contains("/providers/Microsoft.Kubernetes/locations/eastus/operationStatuses/")
    );
    assert!(h.contains_key("retry-after"));

    let status = env.poll_async(&async_url).await;
    check("common3", "OperationStatusResult", &status);
    assert_eq!(status["status"], "Succeeded");

    let (s, _, body) = env.get(&path, CC_API).await;
    assert_eq!(s, StatusCode::OK);
    check("cc", "ConnectedCluster", &body);
    assert_eq!(body["properties"]["provisioningState"], "Succeeded");

    // Re-PUT: 200, same principal.
    let principal = body["identity"]["principalId"].clone();
    let (s, _, body) = env.put(&path, CC_API, &cluster_body(&public)).await;
    assert_eq!(s, StatusCode::OK);
    check("cc", "ConnectedCluster", &body);
    assert_eq!(body["identity"]["principalId"], principal);

    // PATCH tags and distribution.
    let patch = json!({"tags": {"arcplan-stack": "lab", "x": "y"}, "properties": {"distribution": "k3s", "azureHybridBenefit": "False"}});
    check("cc", "ConnectedClusterPatch", &patch);
    let (s, _, body) = env
        .call(Method::PATCH, &env.url(&path, Some(CC_API)), Some(&patch))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    check("cc", "ConnectedCluster", &body);
    assert_eq!(body["properties"]["distribution"], "k3s");
    assert_eq!(body["tags"]["x"], "y");

    // Lists, by resource group and by subscription; older api-version accepted.
    let (s, _, body) = env
        .get(&format!("/subscriptions/{sub}/resourceGroups/arc/providers/Microsoft.Kubernetes/connectedClusters"), "2024-01-01")
        .await;
    assert_eq!(s, StatusCode::OK);
    check("cc", "ConnectedClusterList", &body);
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    let (_, _, body) = env
        .get(
            &format!("/subscriptions/{sub}/providers/Microsoft.Kubernetes/connectedClusters"),
            CC_API,
        )
        .await;
    check("cc", "ConnectedClusterList", &body);

    // Tagged resource list: tags are not returned when filtering by tag name and value.
    let (s, _, body) = env
        .call(
            Method::GET,
            &env.url(&format!("/subscriptions/{sub}/resources?$filter=tagName eq 'arcplan-stack' and tagValue eq 'lab'"), Some(RG_API)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    check("resources", "ResourceListResult", &body);
    assert_eq!(body["value"][0]["name"], "c1");
    assert!(body["value"][0].get("tags").is_none());
    let (_, _, body) = env
        .call(
            Method::GET,
            &env.url(&format!("/subscriptions/{sub}/resources?$filter=resourceType eq 'Microsoft.Kubernetes/connectedClusters'&$expand=provisioningState,createdTime"), Some(RG_API)),
            None,
        )
        .await;
    check("resources", "ResourceListResult", &body);
    assert_eq!(body["value"][0]["tags"]["x"], "y");
    assert_eq!(body["value"][0]["provisioningState"], "Succeeded");

    // DELETE: 202 with both headers; the status resource reaches Succeeded; then 404 and 204.
    delete_lro(&env, &path, CC_API).await;
    env.shutdown().await;
}

#[tokio::test]
async fn connected_cluster_validation_errors() {
    let env = Env::start(quick()).await;
    let sub = env.sub();
    let path = format!(
        "/subscriptions/{sub}/resourceGroups/arc/providers/Microsoft.Kubernetes/connectedClusters/c1"
    );
    let (_, public) = key_pair("a");

    // Resource group missing.
    let (s, _, body) = env.put(&path, CC_API, &cluster_body(&public)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "ResourceGroupNotFound");

    env.put(
        &format!("/subscriptions/{sub}/resourceGroups/arc"),
        RG_API,
        &json!({"location": "eastus"}),
    )
    .await;
    // Provider not registered.
    let (s, _, body) = env.put(&path, CC_API, &cluster_body(&public)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "MissingSubscriptionRegistration");
    // Registering is enough.
    env.call(
        Method::POST,
        &env.url(
            &format!("/subscriptions/{sub}/providers/Microsoft.Kubernetes/register"),
            Some(RG_API),
        ),
        None,
    )
    .await;

    let cases = [
        (
            json!({"identity": {"type": "SystemAssigned"}, "properties": {"agentPublicKeyCertificate": public}}),
            "LocationRequired",
        ),
        (
            json!({"location": "eastus", "properties": {"agentPublicKeyCertificate": public}}),
            "InvalidRequestContent",
        ),
        (
            json!({"location": "eastus", "identity": {"type": "UserAssigned"}, "properties": {"agentPublicKeyCertificate": public}}),
            "InvalidRequestContent",
        ),
        (
            json!({"location": "eastus", "identity": {"type": "SystemAssigned"}, "properties": {}}),
            "InvalidRequestContent",
        ),
        (
            json!({"location": "eastus", "identity": {"type": "SystemAssigned"}, "properties": {"agentPublicKeyCertificate": "not base64!"}}),
            "InvalidRequestContent",
        ),
        (
            json!({"location": "eastus", "identity": {"type": "SystemAssigned"}, "properties": {"agentPublicKeyCertificate": "aGVsbG8="}}),
            "InvalidRequestContent",
        ),
        (
            json!({"location": "mars", "identity": {"type": "SystemAssigned"}, "properties": {"agentPublicKeyCertificate": public}}),
            "LocationNotAvailableForResourceType",
        ),
        (
            json!({"location": "eastus", "identity": {"type": "SystemAssigned"}, "properties": {"agentPublicKeyCertificate": public, "azureHybridBenefit": "Maybe"}}),
            "InvalidRequestContent",
        ),
        (
            json!({"location": "eastus", "identity": {"type": "SystemAssigned"}, "properties": {"agentPublicKeyCertificate": public, "provisioningState": "Succeeded"}}),
            "InvalidRequestContent",
        ),
        (
            json!({"location": "eastus", "tags": {"a": 1}, "identity": {"type": "SystemAssigned"}, "properties": {"agentPublicKeyCertificate": public}}),
            "InvalidRequestContent",
        ),
        (json!([1, 2]), "InvalidRequestContent"),
    ];
    for (body, code) in cases {
        let (s, h, resp) = env.put(&path, CC_API, &body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} → {resp}");
        check_arm_headers(&h);
        assert_eq!(error_code(&resp), code, "{body}");
    }
    let (s, _, resp) = env
        .put(
            &format!("/subscriptions/{sub}/resourceGroups/arc/providers/Microsoft.Kubernetes/connectedClusters/bad%20name"),
            CC_API,
            &cluster_body(&public),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&resp), "InvalidResourceName");

    // A valid create works while the provider is still Registering, and a location change conflicts.
    let (s, _, _) = env.put(&path, CC_API, &cluster_body(&public)).await;
    assert_eq!(s, StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let mut moved = cluster_body(&public);
    moved["location"] = json!("westeurope");
    let (s, _, body) = env.put(&path, CC_API, &moved).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "InvalidResourceLocation");

    // PATCH of a missing cluster.
    let (s, _, body) = env
        .call(
            Method::PATCH,
            &env.url(&format!("{path}x"), Some(CC_API)),
            Some(&json!({"tags": {}})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "ResourceNotFound");
    env.shutdown().await;
}

#[tokio::test]
async fn api_version_is_required_and_validated_per_type() {
    let env = Env::start(quick()).await;
    let sub = env.sub();
    let (s, _, body) = env
        .call(
            Method::GET,
            &env.url(&format!("/subscriptions/{sub}/resourcegroups"), None),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "MissingApiVersionParameter");
    assert_eq!(
        body["error"]["message"],
        "The api-version query parameter (?api-version=) is required for all requests."
    );
    let (s, _, body) = env
        .get(
            &format!("/subscriptions/{sub}/resourcegroups"),
            "2099-01-01",
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "InvalidApiVersionParameter");
    // A connectedClusters api-version is not a resource-group one, and vice versa.
    let (s, _, body) = env
        .get(&format!("/subscriptions/{sub}/resourcegroups"), CC_API)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "InvalidApiVersionParameter");
    let (s, _, body) = env
        .get(
            &format!("/subscriptions/{sub}/providers/Microsoft.Kubernetes/connectedClusters"),
            RG_API,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "NoRegisteredProviderFound");
    // The cloud metadata document needs no token and names the sandbox endpoints.
    let (s, _, body) = env
        .call_with_token(
            Method::GET,
            &env.url("/metadata/endpoints", Some("2022-09-01")),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["resourceManager"], env.sandbox.resource_manager());
    assert_eq!(
        body["authentication"]["loginEndpoint"],
        format!("{}/", env.sandbox.authority_host())
    );
    // Unknown paths answer in ARM's error shape too.
    let (s, h, body) = env.get("/nothing/here", RG_API).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    check_arm_headers(&h);
    error_code(&body);
    env.shutdown().await;
}

#[tokio::test]
async fn authorization_matches_the_spec_and_roles() {
    let env = Env::start(quick()).await;
    let sub = env.sub();
    env.put(
        &format!("/subscriptions/{sub}/resourcegroups/rg"),
        RG_API,
        &json!({"location": "eastus"}),
    )
    .await;
    let rg_scope = format!("/subscriptions/{sub}/resourcegroups/rg");

    let (s, _, body) = env
        .get(
            &format!("{rg_scope}/providers/Microsoft.Authorization/permissions"),
            AUTHZ_API,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    check("roledefs", "PermissionGetResult", &body);
    assert_eq!(body["value"][0]["actions"], json!(["*"]));
    let (_, _, body) = env
        .get(
            &format!("/subscriptions/{sub}/providers/Microsoft.Authorization/permissions"),
            AUTHZ_API,
        )
        .await;
    check("roledefs", "PermissionGetResult", &body);

    let (s, _, body) = env
        .get(
            &format!("{rg_scope}/providers/Microsoft.Authorization/roleAssignments"),
            AUTHZ_API,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    check("roleassignments", "RoleAssignmentListResult", &body);
    let assignment = &body["value"][0];
    assert_eq!(
        assignment["properties"]["principalId"],
        env.sandbox.principal_object_id()
    );
    assert!(
        assignment["properties"]["roleDefinitionId"]
            .as_str()
            .unwrap()
            .ends_with("8e3af657-a8ff-443c-a75c-2fe8c4bcb635")
    );
    let (s, _, one) = env
        .call(
            Method::GET,
            &env.url(assignment["id"].as_str().unwrap(), Some(AUTHZ_API)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    check("roleassignments", "RoleAssignment", &one);

    let (s, _, body) = env
        .call(
            Method::GET,
            &env.url(&format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions?$filter=roleName eq 'Kubernetes Cluster - Azure Arc Onboarding'"), Some(AUTHZ_API)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    check("roledefs", "RoleDefinitionListResult", &body);
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert_eq!(
        body["value"][0]["name"],
        "34e09817-6cbe-4d01-b1a2-e0eac5743d41"
    );
    let (s, _, body) = env
        .get(&format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"), AUTHZ_API)
        .await;
    assert_eq!(s, StatusCode::OK);
    check("roledefs", "RoleDefinition", &body);
    assert_eq!(body["properties"]["roleName"], "Contributor");

    // Role assignment create: request body per spec; a duplicate is RoleAssignmentExists.
    let create = json!({"properties": {
        "roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"),
        "principalId": env.sandbox.principal_object_id(),
        "principalType": "ServicePrincipal"
    }});
    check("roleassignments", "RoleAssignmentCreateParameters", &create);
    let ra = format!(
        "{rg_scope}/providers/Microsoft.Authorization/roleAssignments/0b7e4d1c-7d3a-4b9e-9f7a-1c2d3e4f5a6b"
    );
    let (s, _, body) = env.put(&ra, AUTHZ_API, &create).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    check("roleassignments", "RoleAssignment", &body);
    let (s, _, body) = env
        .put(&format!("{rg_scope}/providers/Microsoft.Authorization/roleAssignments/1b7e4d1c-7d3a-4b9e-9f7a-1c2d3e4f5a6b"), AUTHZ_API, &create)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "RoleAssignmentExists");
    let (s, _, _) = env
        .call(Method::DELETE, &env.url(&ra, Some(AUTHZ_API)), None)
        .await;
    assert_eq!(s, StatusCode::OK);

    // The Arc onboarding role: can create clusters, cannot register providers or delete.
    env.sandbox
        .arm()
        .set_role(arcplan_sandbox::PrincipalRole::ArcOnboarding);
    let (_, _, body) = env
        .get(
            &format!("{rg_scope}/providers/Microsoft.Authorization/permissions"),
            AUTHZ_API,
        )
        .await;
    let actions: Vec<&str> = body["value"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(actions.contains(&"Microsoft.Kubernetes/connectedClusters/Write"));
    let (s, _, body) = env
        .call(
            Method::POST,
            &env.url(
                &format!("/subscriptions/{sub}/providers/Microsoft.Kubernetes/register"),
                Some(RG_API),
            ),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "AuthorizationFailed");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("'Microsoft.Kubernetes/register/action'")
            && msg.contains(&format!("'/subscriptions/{sub}'")),
        "{msg}"
    );
    let (s, _, _) = env
        .call(Method::DELETE, &env.url(&rg_scope, Some(RG_API)), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = env.get(&rg_scope, RG_API).await;
    assert_eq!(s, StatusCode::OK);

    // Reader reads, cannot write.
    env.sandbox
        .arm()
        .set_role(arcplan_sandbox::PrincipalRole::Reader);
    let (s, _, _) = env
        .put(&rg_scope, RG_API, &json!({"location": "eastus"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // No role: nothing, and no subscriptions listed.
    env.sandbox
        .arm()
        .set_role(arcplan_sandbox::PrincipalRole::None);
    let (s, _, body) = env.get(&rg_scope, RG_API).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "AuthorizationFailed");
    let (_, _, body) = env.get("/subscriptions", SUB_API).await;
    assert_eq!(body["value"], json!([]));
    let (_, _, body) = env
        .get(
            &format!("{rg_scope}/providers/Microsoft.Authorization/permissions"),
            AUTHZ_API,
        )
        .await;
    assert_eq!(body["value"], json!([]));
    env.shutdown().await;
}

#[test]
fn the_specs_are_carried_in_the_repository() {
    // A fresh clone has no `../shared`: the specs, their provenance and their licence are in the
    // repository, and every spec file the provenance lists is there.
    let repo = std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).unwrap();
    let dir = repo.join("specs/azure");
    if std::env::var_os("ARCPLAN_SPECS_DIR").is_none() {
        assert_eq!(specs_dir(), std::fs::canonicalize(&dir).unwrap());
    }
    let sources = std::fs::read_to_string(dir.join("SOURCES.md")).expect("SOURCES.md");
    let license = std::fs::read_to_string(dir.join("LICENSE")).expect("LICENSE");
    assert!(license.contains("MIT License") && license.contains("Microsoft Corporation"));
    let listed: Vec<&str> = sources
        .lines()
        .filter_map(|l| l.split('`').nth(1))
        .filter(|p| p.starts_with("specification/") && p.ends_with(".json"))
        .collect();
    assert!(listed.len() >= 15, "{listed:?}");
    for rel in listed {
        let text = std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
    }
    for name in [
        "resources",
        "subscriptions",
        "cc",
        "roledefs",
        "roleassignments",
        "common3",
    ] {
        assert!(spec(name).starts_with(specs_dir()), "{name}");
    }
}

#[tokio::test]
async fn tenants_and_locations_match_the_spec() {
    // What `az login` (GET /tenants) and `az account list-locations` ask for.
    let env = Env::start(quick()).await;
    let sub = env.sub();
    let (s, h, body) = env.get("/tenants", SUB_API).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    check_arm_headers(&h);
    check("subscriptions", "TenantListResult", &body);
    assert_eq!(body["value"][0]["tenantId"], env.sandbox.tenant_id());
    assert_eq!(
        body["value"][0]["id"],
        format!("/tenants/{}", env.sandbox.tenant_id())
    );

    let (s, _, body) = env
        .get(&format!("/subscriptions/{sub}/locations"), SUB_API)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    check("subscriptions", "LocationListResult", &body);
    let names: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"eastus") && names.contains(&"westeurope"),
        "{names:?}"
    );
    assert_eq!(
        body["value"][0]["id"],
        format!("/subscriptions/{sub}/locations/{}", names[0])
    );
    let (s, _, body) = env
        .get(
            "/subscriptions/00000000-0000-4000-8000-000000000999/locations",
            SUB_API,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "SubscriptionNotFound");
    env.shutdown().await;
}

#[tokio::test]
async fn tags_at_scope_match_the_spec() {
    let env = Env::start(quick()).await;
    let sub = env.sub();
    env.prepare("rg").await;
    let (_, public) = key_pair("a");
    let cluster = create_connected_cluster(&env, "rg", "c1", &public).await;
    let rg = format!("/subscriptions/{sub}/resourceGroups/rg");
    for scope in [format!("/subscriptions/{sub}"), rg.clone(), cluster.clone()] {
        let url = env.url(
            &format!("{scope}/providers/Microsoft.Resources/tags/default"),
            Some(RG_API),
        );
        let put = json!({"properties": {"tags": {"team": "arc", "env": "lab"}}});
        check("resources", "TagsResource", &put);
        let (s, h, body) = env.call(Method::PUT, &url, Some(&put)).await;
        assert_eq!(s, StatusCode::OK, "{scope}: {body}");
        check_arm_headers(&h);
        check("resources", "TagsResource", &body);
        assert_eq!(
            body["id"],
            format!("{scope}/providers/Microsoft.Resources/tags/default")
        );
        assert_eq!(
            body["properties"]["tags"],
            json!({"team": "arc", "env": "lab"})
        );

        let merge = json!({"operation": "Merge", "properties": {"tags": {"owner": "me"}}});
        check("resources", "TagsPatchResource", &merge);
        let (s, _, body) = env.call(Method::PATCH, &url, Some(&merge)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        check("resources", "TagsResource", &body);
        assert_eq!(body["properties"]["tags"]["owner"], "me");
        assert_eq!(body["properties"]["tags"]["team"], "arc");

        let delete = json!({"operation": "Delete", "properties": {"tags": {"env": "lab"}}});
        let (s, _, body) = env.call(Method::PATCH, &url, Some(&delete)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(
            body["properties"]["tags"],
            json!({"team": "arc", "owner": "me"})
        );

        let (s, _, body) = env.call(Method::GET, &url, None).await;
        assert_eq!(s, StatusCode::OK);
        check("resources", "TagsResource", &body);
        assert_eq!(
            body["properties"]["tags"],
            json!({"team": "arc", "owner": "me"})
        );

        let (s, _, body) = env
            .call(
                Method::PATCH,
                &url,
                Some(&json!({"operation": "Sideways", "properties": {}})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        error_code(&body);

        let (s, _, _) = env.call(Method::DELETE, &url, None).await;
        assert_eq!(s, StatusCode::OK);
        let (_, _, body) = env.call(Method::GET, &url, None).await;
        assert_eq!(body["properties"]["tags"], json!({}));
    }
    // The tags written at a scope are the resource's own tags.
    let url = env.url(
        &format!("{rg}/providers/Microsoft.Resources/tags/default"),
        Some(RG_API),
    );
    env.call(
        Method::PUT,
        &url,
        Some(&json!({"properties": {"tags": {"k": "v"}}})),
    )
    .await;
    let (_, _, body) = env.get(&rg, RG_API).await;
    assert_eq!(body["tags"], json!({"k": "v"}));
    let url = env.url(
        &format!("{cluster}/providers/Microsoft.Resources/tags/default"),
        Some(RG_API),
    );
    env.call(
        Method::PUT,
        &url,
        Some(&json!({"properties": {"tags": {"k": "c"}}})),
    )
    .await;
    let (_, _, body) = env.get(&cluster, CC_API).await;
    assert_eq!(body["tags"], json!({"k": "c"}));
    check("cc", "ConnectedCluster", &body);

    // A missing target is ARM's not-found, not "unknown resource type".
    let (s, _, body) = env
        .get(
            &format!("{rg}/providers/Microsoft.Kubernetes/connectedClusters/nope/providers/Microsoft.Resources/tags/default"),
            RG_API,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), "ResourceNotFound");
    let (s, _, body) = env
        .get(
            &format!("/subscriptions/{sub}/resourceGroups/none/providers/Microsoft.Resources/tags/default"),
            RG_API,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "ResourceGroupNotFound");

    // Writing tags needs a write role: Reader may read them only.
    env.sandbox
        .arm()
        .set_role(arcplan_sandbox::PrincipalRole::Reader);
    let (s, _, _) = env.call(Method::GET, &url, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, body) = env
        .call(
            Method::PUT,
            &url,
            Some(&json!({"properties": {"tags": {"k": "r"}}})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_code(&body), "AuthorizationFailed");
    env.shutdown().await;
}

#[tokio::test]
async fn the_metadata_document_has_what_az_reads() {
    let env = Env::start(quick()).await;
    for version in ["2022-09-01", "2020-06-01"] {
        let (s, _, body) = env
            .call_with_token(
                Method::GET,
                &env.url("/metadata/endpoints", Some(version)),
                None,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        // az's `_arm_to_cli_mapper` reads these for a cloud registered from the endpoint.
        for key in [
            "name",
            "resourceManager",
            "microsoftGraphResourceId",
            "graphAudience",
            "portal",
            "suffixes",
        ] {
            assert!(
                body.get(key).is_some(),
                "{version}: {key} missing in {body:#}"
            );
        }
        assert!(body["authentication"]["audiences"][0].is_string());
        assert!(body["authentication"]["loginEndpoint"].is_string());
        assert!(
            body["microsoftGraphResourceId"]
                .as_str()
                .is_some_and(|g| g.starts_with("https://")),
            "{body}"
        );
    }
    env.shutdown().await;
}
