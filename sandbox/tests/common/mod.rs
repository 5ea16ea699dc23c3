//! Shared helpers of the sandbox integration tests: a started sandbox, a reqwest client that trusts
//! only the sandbox CA (verification on), token acquisition, ARM calls, and OpenAPI contract checks.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arcplan_sandbox::{Sandbox, SandboxOptions};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// API versions the tests use.
pub const RG_API: &str = "2025-04-01";
pub const SUB_API: &str = "2022-12-01";
pub const CC_API: &str = "2026-05-01";
pub const AUTHZ_API: &str = "2022-04-01";
pub const EXT_API: &str = "2025-03-01";
pub const CL_API: &str = "2021-08-15";
pub const FLUX_API: &str = "2025-04-01";

/// A test's view of a running sandbox.
pub struct Env {
    pub sandbox: Sandbox,
    pub http: reqwest::Client,
    pub token: String,
}

impl Env {
    pub async fn start(opts: SandboxOptions) -> Env {
        let sandbox = Sandbox::start(opts).await.expect("sandbox starts");
        let http = client(&sandbox);
        let token = get_token(&sandbox, &http).await;
        Env {
            sandbox,
            http,
            token,
        }
    }

    pub fn sub(&self) -> String {
        self.sandbox.subscription_ids()[0].clone()
    }

    /// `{arm}{path}` (path starting with `/`), with `api-version` appended when given.
    pub fn url(&self, path: &str, api_version: Option<&str>) -> String {
        let base = self.sandbox.resource_manager();
        let mut url = format!("{}{}", base.trim_end_matches('/'), path);
        if let Some(v) = api_version {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&format!("api-version={v}"));
        }
        url
    }

    /// Sends an ARM request with the sandbox token. Returns status, headers and the JSON body
    /// (`Value::Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        self.call_with_token(method, url, body, Some(&self.token))
            .await
    }

    pub async fn call_with_token(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = self.http.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request is answered");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("non-JSON body ({e}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, headers, value)
    }

    pub async fn get(&self, path: &str, api: &str) -> (StatusCode, HeaderMap, Value) {
        self.call(Method::GET, &self.url(path, Some(api)), None)
            .await
    }

    pub async fn put(&self, path: &str, api: &str, body: &Value) -> (StatusCode, HeaderMap, Value) {
        self.call(Method::PUT, &self.url(path, Some(api)), Some(body))
            .await
    }

    /// Creates a resource group and registers Microsoft.Kubernetes (waiting for `Registered`).
    pub async fn prepare(&self, rg: &str) {
        let sub = self.sub();
        let (s, _, _) = self
            .put(
                &format!("/subscriptions/{sub}/resourceGroups/{rg}"),
                RG_API,
                &json!({"location": "eastus"}),
            )
            .await;
        assert!(s.is_success(), "{s}");
        let (s, _, _) = self
            .call(
                Method::POST,
                &self.url(
                    &format!("/subscriptions/{sub}/providers/Microsoft.Kubernetes/register"),
                    Some(RG_API),
                ),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }

    /// Polls an `Azure-AsyncOperation` URL until a terminal status; returns the last body.
    pub async fn poll_async(&self, url: &str) -> Value {
        for _ in 0..200 {
            let (s, _, body) = self.call(Method::GET, url, None).await;
            assert_eq!(s, StatusCode::OK, "{body}");
            let status = body["status"].as_str().unwrap_or("").to_string();
            if ["Succeeded", "Failed", "Canceled"].contains(&status.as_str()) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("operation at {url} did not finish");
    }

    pub async fn shutdown(self) {
        self.sandbox.shutdown().await;
    }
}

/// Quick options for tests.
pub fn quick() -> SandboxOptions {
    SandboxOptions {
        registration_delay: Duration::from_millis(30),
        lro_delay: Duration::from_millis(30),
        deployment_ready_delay: Duration::from_millis(30),
        agents: arcplan_sandbox::AgentOptions {
            interval: Duration::from_millis(20),
            ..Default::default()
        },
        ..SandboxOptions::default()
    }
}

/// A reqwest client trusting only the sandbox CA (full verification, ring provider).
pub fn client(sandbox: &Sandbox) -> reqwest::Client {
    let tls = sandbox.tls().client_config().expect("client config");
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client builds")
}

/// A token for ARM from the Entra emulator (client secret flow).
pub async fn get_token(sandbox: &Sandbox, http: &reqwest::Client) -> String {
    let resp = http
        .post(sandbox.token_url())
        .form(&[
            ("client_id", sandbox.client_id()),
            ("client_secret", sandbox.client_secret()),
            ("grant_type", "client_credentials"),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("token json");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// A fixture RSA key pair (`a` or `b`, 2048 bits, made with openssl): (PKCS#1 PEM private key,
/// base64 DER PKCS#1 public key) — the format `az connectedk8s` and arcplan use.
pub fn key_pair(which: &str) -> (String, String) {
    use base64::Engine as _;
    use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPublicKey};
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/key_{which}.pem"));
    let pem = std::fs::read_to_string(&path).expect("fixture key");
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(&pem).expect("PKCS#1 PEM");
    let der = key.to_public_key().to_pkcs1_der().expect("der");
    (
        pem,
        base64::engine::general_purpose::STANDARD.encode(der.as_bytes()),
    )
}

/// A connected cluster PUT body.
pub fn cluster_body(public_key: &str) -> Value {
    json!({
        "location": "eastus",
        "tags": {"arcplan-stack": "lab"},
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "agentPublicKeyCertificate": public_key,
            "distribution": "aks_workload",
            "infrastructure": "azure_stack_hci"
        }
    })
}

/// Makes `kube` look onboarded to connected cluster `rg/name` of `sandbox`'s first subscription:
/// namespace `azure-arc`, ConfigMap `azure-clusterconfig`, the private key Secret holding
/// `private_pem`, and three agent Deployments (available after the deployment delay).
pub fn onboard(
    sandbox: &Sandbox,
    kube: &arcplan_sandbox::KubeApi,
    rg: &str,
    name: &str,
    private_pem: &str,
) {
    kube.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "azure-arc"}}))
        .expect("namespace");
    kube.put(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "azure-clusterconfig", "namespace": "azure-arc"},
        "data": {
            "AZURE_SUBSCRIPTION_ID": sandbox.subscription_ids()[0],
            "AZURE_RESOURCE_GROUP": rg,
            "AZURE_RESOURCE_NAME": name,
            "AZURE_TENANT_ID": sandbox.tenant_id(),
            "AZURE_REGION": "eastus",
            "AZURE_ARC_AGENT_VERSION": "1.21.10"
        }
    }))
    .expect("configmap");
    set_private_key(kube, private_pem);
    for agent in [
        "clusteridentityoperator",
        "config-agent",
        "cluster-metadata-operator",
    ] {
        kube.put(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": agent, "namespace": "azure-arc", "labels": {"app.kubernetes.io/component": agent}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/component": agent}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/component": agent}},
                    "spec": {"containers": [{"name": agent, "image": format!("mcr.microsoft.com/azurearck8s/{agent}:1.21.10")}]}
                }
            }
        }))
        .expect("deployment");
    }
}

/// Writes (or replaces) the onboarding private key Secret in `kube`.
pub fn set_private_key(kube: &arcplan_sandbox::KubeApi, private_pem: &str) {
    use base64::Engine as _;
    kube.put(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "azure-arc-connect-privatekey", "namespace": "azure-arc"},
        "data": {"privateKey": base64::engine::general_purpose::STANDARD.encode(private_pem)}
    }))
    .expect("secret");
}

/// Creates connected cluster `rg/name` with `public_key` and waits until it is provisioned.
/// Returns its path.
pub async fn create_connected_cluster(env: &Env, rg: &str, name: &str, public_key: &str) -> String {
    let path = format!(
        "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.Kubernetes/connectedClusters/{name}",
        env.sub()
    );
    let (s, h, _) = env.put(&path, CC_API, &cluster_body(public_key)).await;
    assert_eq!(s, StatusCode::CREATED);
    env.poll_async(h["azure-asyncoperation"].to_str().expect("operation URL"))
        .await;
    path
}

/// DELETE of `path` as ARM does it for a long-running delete: 202 with `Location` and
/// `Azure-AsyncOperation`, the status reaching `Succeeded`, then 404 `ResourceNotFound` on GET
/// and 204 on a second DELETE.
pub async fn delete_lro(env: &Env, path: &str, api: &str) {
    let (s, h, _) = env
        .call(Method::DELETE, &env.url(path, Some(api)), None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert!(h.contains_key("location"));
    let status = env
        .poll_async(h["azure-asyncoperation"].to_str().unwrap())
        .await;
    assert_eq!(status["status"], "Succeeded");
    let (s, _, body) = env.get(path, api).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "ResourceNotFound");
    let (s, _, _) = env
        .call(Method::DELETE, &env.url(path, Some(api)), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

/// Polls connected cluster `path` until its `connectivityStatus` is `want`; returns it.
pub async fn wait_for_status(env: &Env, path: &str, want: &str) -> Value {
    let mut body = Value::Null;
    for _ in 0..250 {
        let (s, _, b) = env.get(path, CC_API).await;
        assert_eq!(s, StatusCode::OK);
        body = b;
        if body["properties"]["connectivityStatus"] == want {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("connectivityStatus of {path} never became {want}: {body}");
}

// ---------------------------------------------------------------------------------------------
// Contract checks against the OpenAPI specs.

/// The specs directory: `specs/azure` at the repository root (carried in the repository, with
/// their provenance in `SOURCES.md`), or `ARCPLAN_SPECS_DIR` when set (to try newer specs).
pub fn specs_dir() -> PathBuf {
    let dir = match std::env::var_os("ARCPLAN_SPECS_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/azure"),
    };
    assert!(
        dir.join("specification").is_dir(),
        "the Azure OpenAPI specs are missing: expected them at {} (specs/azure at the repository root, or ARCPLAN_SPECS_DIR)",
        dir.display()
    );
    std::fs::canonicalize(dir).expect("canonical specs dir")
}

struct FileRetriever;

impl jsonschema::Retrieve for FileRetriever {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let s = uri.as_str();
        let path = s
            .strip_prefix("file://")
            .ok_or_else(|| format!("only file URIs are resolved, not {s}"))?;
        let path = percent_decode(path);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let mut spec: Value = serde_json::from_str(&text)?;
        nullable(&mut spec);
        Ok(spec)
    }
}

/// OpenAPI 2's `x-nullable: true` (AutoRest's extension) in JSON Schema terms: a typed schema
/// that carries it also takes `null`, so a patch may clear a field where the spec allows it.
fn nullable(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.get("x-nullable") == Some(&Value::Bool(true))
                && let Some(Value::String(t)) = m.get("type").cloned()
            {
                m.insert("type".into(), json!([t, "null"]));
            }
            m.values_mut().for_each(nullable);
        }
        Value::Array(a) => a.iter_mut().for_each(nullable),
        _ => {}
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Spec files by short name.
pub fn spec(name: &str) -> PathBuf {
    let rel = match name {
        "resources" => {
            "specification/resources/resource-manager/Microsoft.Resources/resources/stable/2025-04-01/resources.json"
        }
        "subscriptions" => {
            "specification/resources/resource-manager/Microsoft.Resources/subscriptions/stable/2022-12-01/subscriptions.json"
        }
        "cc" => {
            "specification/hybridkubernetes/resource-manager/Microsoft.Kubernetes/HybridKubernetes/stable/2026-05-01/connectedClusters.json"
        }
        "roledefs" => {
            "specification/authorization/resource-manager/Microsoft.Authorization/Authorization/stable/2022-04-01/authorization-RoleDefinitionsCalls.json"
        }
        "roleassignments" => {
            "specification/authorization/resource-manager/Microsoft.Authorization/Authorization/stable/2022-04-01/authorization-RoleAssignmentsCalls.json"
        }
        "common3" => "specification/common-types/resource-management/v3/types.json",
        "extensions" => {
            "specification/kubernetesconfiguration/resource-manager/Microsoft.KubernetesConfiguration/extensions/stable/2025-03-01/extensions.json"
        }
        "customlocations" => {
            "specification/extendedlocation/resource-manager/Microsoft.ExtendedLocation/CustomLocations/stable/2021-08-15/customlocations.json"
        }
        "flux" => {
            "specification/kubernetesconfiguration/resource-manager/Microsoft.KubernetesConfiguration/fluxConfigurations/stable/2025-04-01/fluxconfiguration.json"
        }
        "kc-common" => {
            "specification/kubernetesconfiguration/resource-manager/Microsoft.KubernetesConfiguration/common/2022-03-01/definitions.json"
        }
        other => panic!("unknown spec {other}"),
    };
    specs_dir().join(rel)
}

/// Validates `instance` against `#/definitions/{definition}` of spec `name`; panics with every error.
pub fn check(name: &str, definition: &str, instance: &Value) {
    let path = spec(name);
    let schema = json!({"$ref": format!("file://{}#/definitions/{definition}", path.display())});
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .with_retriever(FileRetriever)
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema {name}#{definition} builds: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name}#/definitions/{definition} rejects {instance:#}:\n{}",
        errors.join("\n")
    );
}

/// Checks that every response header an ARM response must carry is there.
pub fn check_arm_headers(h: &HeaderMap) {
    for name in [
        "x-ms-request-id",
        "x-ms-correlation-request-id",
        "x-ms-routing-request-id",
    ] {
        assert!(h.contains_key(name), "missing {name} in {h:?}");
    }
}

/// An ARM error body: `{"error":{"code","message"}}`, validated against common-types v3, returning
/// the code.
pub fn error_code(body: &Value) -> String {
    check("common3", "ErrorResponse", body);
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"]["code"].as_str().expect("code").to_string()
}

/// Keeps `Arc` imported for tests that share sandboxes.
pub type Shared<T> = Arc<T>;
