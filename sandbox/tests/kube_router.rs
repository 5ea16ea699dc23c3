//! The Kubernetes API emulator's router, in process (no socket): Status bodies, discovery,
//! content negotiation, patch flavours, watch.

use arcplan_sandbox::kube::{KubeApi, KubeOptions};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

fn api() -> KubeApi {
    KubeApi::new(KubeOptions {
        admin_token: Some("admin".into()),
        no_rights_token: Some("nobody".into()),
        watch_history: 8,
        ..KubeOptions::default()
    })
}

async fn call(
    api: &KubeApi,
    method: &str,
    uri: &str,
    token: Option<&str>,
    ct: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    let resp = api
        .router()
        .oneshot(req.body(Body::from(body.to_string())).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v)
}

async fn admin(api: &KubeApi, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
    let b = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    call(
        api,
        method,
        uri,
        Some("admin"),
        Some("application/json"),
        &b,
    )
    .await
}

#[tokio::test]
async fn authentication_and_authorization_statuses() {
    let api = api();
    let (code, body) = call(&api, "GET", "/api/v1/namespaces", None, None, "").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );
    let (code, _) = call(&api, "GET", "/version", Some("wrong"), None, "").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    for path in [
        "/version",
        "/api",
        "/api/v1",
        "/apis",
        "/apis/apps/v1",
        "/openapi/v3",
    ] {
        let (code, _) = call(&api, "GET", path, Some("nobody"), None, "").await;
        assert_eq!(code, StatusCode::OK, "{path}");
    }
    let (code, body) = call(&api, "GET", "/api/v1/namespaces", Some("nobody"), None, "").await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "namespaces is forbidden: User \"sandbox-nobody\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope",
            "reason": "Forbidden", "details": {"kind": "namespaces"}, "code": 403})
    );
    let (code, body) = call(
        &api,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/d",
        Some("nobody"),
        Some("application/merge-patch+json"),
        "{}",
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(
        body["details"],
        json!({"name": "d", "group": "apps", "kind": "deployments"})
    );
    assert!(api.request_count() >= 10);
}

#[tokio::test]
async fn discovery_documents() {
    let api = api();
    let (_, v) = admin(&api, "GET", "/api", Value::Null).await;
    assert_eq!(v["kind"], "APIVersions");
    assert_eq!(v["versions"], json!(["v1"]));
    let (_, v) = admin(&api, "GET", "/apis", Value::Null).await;
    assert_eq!(v["kind"], "APIGroupList");
    let groups: Vec<&str> = v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    for g in [
        "apps",
        "rbac.authorization.k8s.io",
        "coordination.k8s.io",
        "authorization.k8s.io",
    ] {
        assert!(groups.contains(&g), "{groups:?}");
    }
    assert_eq!(
        v["groups"][0]["preferredVersion"],
        json!({"groupVersion": "apps/v1", "version": "v1"})
    );
    let (_, v) = admin(&api, "GET", "/api/v1", Value::Null).await;
    assert_eq!(
        (v["kind"].as_str(), v["groupVersion"].as_str()),
        (Some("APIResourceList"), Some("v1"))
    );
    let find = |v: &Value, name: &str| {
        v["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|x| x["name"] == name).cloned())
            .expect(name)
    };
    let ns = find(&v, "namespaces");
    assert_eq!(ns["shortNames"], json!(["ns"]));
    assert_eq!(ns["namespaced"], false);
    assert_eq!(
        ns["verbs"],
        json!([
            "create", "delete", "get", "list", "patch", "update", "watch"
        ])
    );
    assert_eq!(find(&v, "configmaps")["shortNames"], json!(["cm"]));
    assert_eq!(find(&v, "serviceaccounts")["shortNames"], json!(["sa"]));
    let (_, v) = admin(&api, "GET", "/apis/apps/v1", Value::Null).await;
    assert_eq!(find(&v, "deployments")["shortNames"], json!(["deploy"]));
    assert_eq!(
        find(&v, "deployments/status")["verbs"],
        json!(["get", "patch", "update"])
    );
    let (_, v) = admin(&api, "GET", "/apis/authorization.k8s.io/v1", Value::Null).await;
    assert_eq!(
        find(&v, "selfsubjectaccessreviews")["verbs"],
        json!(["create"])
    );
    let (_, v) = admin(&api, "GET", "/version", Value::Null).await;
    assert_eq!(
        v["gitVersion"],
        arcplan_sandbox::kube::DEFAULT_KUBERNETES_VERSION
    );
    let (code, v) = admin(&api, "GET", "/apis/example.com/v1/widgets", Value::Null).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(
        v["message"],
        "the server could not find the requested resource"
    );
    let (_, v) = admin(&api, "GET", "/openapi/v3", Value::Null).await;
    let url = v["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("url")
        .to_string();
    let (code, doc) = admin(&api, "GET", &url, Value::Null).await;
    assert_eq!(code, StatusCode::OK);
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
    assert!(
        patch["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
}

#[tokio::test]
async fn error_statuses() {
    let api = api();
    let (code, v) = admin(
        &api,
        "POST",
        "/api/v1/namespaces",
        json!({"metadata": {"name": "Bad_Name"}}),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["reason"], "Invalid");
    assert!(v["message"].as_str().expect("msg").starts_with("Namespace \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label"));
    assert_eq!(v["details"]["causes"][0]["field"], "metadata.name");
    let (code, v) = call(
        &api,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some("admin"),
        Some("application/json"),
        "{not json",
    )
    .await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (StatusCode::BAD_REQUEST, Some("BadRequest"))
    );
    let (code, v) = admin(
        &api,
        "POST",
        "/api/v1/namespaces/default/configmaps/x",
        json!({}),
    )
    .await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("MethodNotAllowed"))
    );
    let (code, v) = admin(
        &api,
        "DELETE",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews/x",
        Value::Null,
    )
    .await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("MethodNotAllowed"))
    );
    admin(
        &api,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        json!({"metadata": {"name": "x"}}),
    )
    .await;
    let (code, v) = call(
        &api,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/x",
        Some("admin"),
        Some("text/plain"),
        "{}",
    )
    .await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("UnsupportedMediaType")
        )
    );
    let (code, v) = call(
        &api,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/x",
        Some("admin"),
        Some("application/apply-patch+yaml"),
        "{}",
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        v["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let (code, v) = call(
        &api,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/x?fieldManager=m",
        Some("admin"),
        Some("application/apply-patch+yaml"),
        "data: [unclosed",
    )
    .await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (StatusCode::BAD_REQUEST, Some("BadRequest"))
    );
    let (code, v) = admin(
        &api,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        json!({"metadata": {"name": "x"}}),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(
        v,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "configmaps \"x\" already exists",
            "reason": "AlreadyExists", "details": {"name": "x", "kind": "configmaps"}, "code": 409})
    );
    let (code, v) = admin(
        &api,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/x",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        (v["kind"].as_str(), v["status"].as_str()),
        (Some("Status"), Some("Success"))
    );
    assert_eq!(v["details"]["name"], "x");
    let (code, v) = admin(
        &api,
        "DELETE",
        "/api/v1/namespaces/kube-system",
        Value::Null,
    )
    .await;
    assert_eq!(
        (code, v["message"].as_str()),
        (
            StatusCode::FORBIDDEN,
            Some("namespaces \"kube-system\" is forbidden: this namespace may not be deleted")
        )
    );
}

#[tokio::test]
async fn patch_flavours_and_generate_name() {
    let api = api();
    let dep = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generateName": "web-"},
        "spec": {"selector": {"matchLabels": {"app": "w"}}, "template": {"metadata": {"labels": {"app": "w"}},
            "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}}
    });
    let (code, v) = admin(
        &api,
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        dep,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    let name = v["metadata"]["name"].as_str().expect("name").to_string();
    assert!(name.starts_with("web-") && name.len() == 9, "{name}");
    assert_eq!(v["metadata"]["generation"], 1);
    assert_eq!(v["spec"]["replicas"], 1);
    let url = format!("/apis/apps/v1/namespaces/default/deployments/{name}");
    let smp = r#"{"spec":{"template":{"spec":{"containers":[{"name":"b","image":"b:2"}]}}}}"#;
    let (code, v) = call(
        &api,
        "PATCH",
        &url,
        Some("admin"),
        Some("application/strategic-merge-patch+json"),
        smp,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let images: Vec<&str> = v["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("c")
        .iter()
        .filter_map(|c| c["image"].as_str())
        .collect();
    assert_eq!(images, ["a:1", "b:2"]);
    assert_eq!(v["metadata"]["generation"], 2);
    let jp = r#"[{"op":"replace","path":"/spec/replicas","value":3},{"op":"test","path":"/spec/replicas","value":3}]"#;
    let (code, v) = call(
        &api,
        "PATCH",
        &url,
        Some("admin"),
        Some("application/json-patch+json"),
        jp,
    )
    .await;
    assert_eq!(
        (code, v["spec"]["replicas"].as_i64()),
        (StatusCode::OK, Some(3))
    );
    let bad = r#"[{"op":"test","path":"/spec/replicas","value":4}]"#;
    let (code, _) = call(
        &api,
        "PATCH",
        &url,
        Some("admin"),
        Some("application/json-patch+json"),
        bad,
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    // Status is not writable through the main resource, but through /status.
    let (_, v) = call(
        &api,
        "PATCH",
        &url,
        Some("admin"),
        Some("application/merge-patch+json"),
        r#"{"status":{"replicas":7}}"#,
    )
    .await;
    assert!(v["status"].get("replicas").is_none());
    let (_, v) = call(
        &api,
        "PATCH",
        &format!("{url}/status"),
        Some("admin"),
        Some("application/merge-patch+json"),
        r#"{"status":{"replicas":7}}"#,
    )
    .await;
    assert_eq!(v["status"]["replicas"], 7);
    // Dry-run apply changes nothing.
    let (_, before) = admin(&api, "GET", &url, Value::Null).await;
    let cfg = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 5\n"
    );
    let (code, v) = call(
        &api,
        "PATCH",
        &format!("{url}?fieldManager=m&dryRun=All&force=true"),
        Some("admin"),
        Some("application/apply-patch+yaml"),
        &cfg,
    )
    .await;
    assert_eq!(
        (code, v["spec"]["replicas"].as_i64()),
        (StatusCode::OK, Some(5))
    );
    let (_, after) = admin(&api, "GET", &url, Value::Null).await;
    assert_eq!(before, after);
}

#[tokio::test]
async fn table_output_and_watch() {
    let api = api();
    let req = Request::get("/api/v1/namespaces")
        .header("authorization", "Bearer admin")
        .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
        .body(Body::empty())
        .expect("req");
    let resp = api.router().oneshot(req).await.expect("resp");
    let v: Value = serde_json::from_slice(&resp.into_body().collect().await.expect("b").to_bytes())
        .expect("json");
    assert_eq!(v["kind"], "Table");
    assert_eq!(v["columnDefinitions"][1]["name"], "Status");
    assert_eq!(v["rows"][0]["cells"][0], "default");
    assert_eq!(v["rows"][0]["object"]["kind"], "PartialObjectMetadata");

    // Watch from the current resourceVersion: the next change arrives as one JSON line.
    let (_, list) = admin(
        &api,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        Value::Null,
    )
    .await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let req = Request::get(format!(
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=5"
    ))
    .header("authorization", "Bearer admin")
    .body(Body::empty())
    .expect("req");
    let resp = api.router().oneshot(req).await.expect("resp");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    admin(
        &api,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        json!({"metadata": {"name": "w"}}),
    )
    .await;
    let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
        .await
        .expect("event in time")
        .expect("frame")
        .expect("ok");
    let line = frame.into_data().expect("data");
    let ev: Value = serde_json::from_slice(&line).expect("event");
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["metadata"]["name"], "w");

    // A resourceVersion older than the kept history: an ERROR event with 410 Expired.
    for i in 0..12 {
        admin(
            &api,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {"name": format!("c{i}")}}),
        )
        .await;
    }
    let (code, v) = call(
        &api,
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1",
        Some("admin"),
        None,
        "",
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(v["type"], "ERROR");
    assert_eq!(
        (v["object"]["code"].as_i64(), v["object"]["reason"].as_str()),
        (Some(410), Some("Expired"))
    );
}

#[tokio::test]
async fn accessors_for_agents() {
    let api = api();
    let cm = api
        .put(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "azure-clusterconfig", "namespace": "default"}, "data": {"AZURE_REGION": "eastus"}}))
        .expect("put");
    let rv1 = cm["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let again = api
        .put(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "azure-clusterconfig", "namespace": "default"}, "data": {"AZURE_REGION": "westus"}}))
        .expect("put");
    assert_ne!(
        again["metadata"]["resourceVersion"].as_str(),
        Some(rv1.as_str())
    );
    let got = api
        .get("v1", "ConfigMap", Some("default"), "azure-clusterconfig")
        .expect("get");
    assert_eq!(got["data"]["AZURE_REGION"], "westus");
    assert_eq!(got["kind"], "ConfigMap");
    assert_eq!(api.list("v1", "ConfigMap", None).len(), 1);
    assert!(api.put(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "missing"}})).is_err());
    assert!(api.delete("v1", "ConfigMap", Some("default"), "azure-clusterconfig"));
    assert!(!api.delete("v1", "ConfigMap", Some("default"), "azure-clusterconfig"));
    assert_eq!(api.nodes_summary().0, 3);
    assert_eq!(api.list("v1", "Node", None).len(), 3);
}

#[tokio::test]
async fn watch_history_is_bounded_in_bytes() {
    // Room for a few 1 KB ConfigMaps however many events the count bound would allow.
    let api = KubeApi::new(KubeOptions {
        admin_token: Some("admin".into()),
        no_rights_token: Some("nobody".into()),
        watch_history: 2000,
        watch_history_bytes: 4096,
        ..KubeOptions::default()
    });
    let mut rvs = Vec::new();
    for i in 0..10 {
        let (_, cm) = admin(
            &api,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {"name": format!("c{i}")}, "data": {"v": "x".repeat(1000)}}),
        )
        .await;
        rvs.push(
            cm["metadata"]["resourceVersion"]
                .as_str()
                .expect("rv")
                .to_string(),
        );
    }
    let watch = |rv: &str| {
        format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=1"
        )
    };
    // The oldest changes are gone: 410 Expired, as from an apiserver whose watch cache moved on.
    let (code, v) = call(&api, "GET", &watch(&rvs[0]), Some("admin"), None, "").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        (v["object"]["code"].as_i64(), v["object"]["reason"].as_str()),
        (Some(410), Some("Expired"))
    );
    // The newest are kept and replayed in order, objects intact.
    let (code, v) = call(&api, "GET", &watch(&rvs[8]), Some("admin"), None, "").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(v["type"], "ADDED");
    assert_eq!(v["object"]["metadata"]["name"], "c9");
    assert_eq!(v["object"]["data"]["v"].as_str().map(str::len), Some(1000));
}
