//! The `helm` installer: the values `az connectedk8s` sets, the `helm upgrade --install` and
//! `helm uninstall` command lines (pure builders), running them, and reading the installed
//! release back from Helm's storage Secret.
//!
//! Values go to Helm on standard input (`--values -`), never in the argument list, because they
//! hold the onboarding private key. The release state is read through the kube client: Helm 3
//! stores each revision as Secret `sh.helm.release.v1.<release>.v<N>` (type
//! `helm.sh/release.v1`, labels `owner=helm`, `name`, `status`, `version`) whose `release` key is
//! base64 of gzip of the release JSON. Values read back are sanitised (keys naming keys,
//! passwords, secrets, tokens or credentials are dropped; credentials in URLs are removed) before
//! they appear in any state.
//!
//! This module does not decide *when* to run Helm; the `helm` installer ([`super::installer::helm`]) does.

use super::access::Cluster;
use super::key::PrivateKeyPem;
use super::{RELEASE_NAME, RELEASE_NAMESPACE};
use arcplan_engine::diag::Diagnostic;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Microsoft's agent chart (the `/v2/` path `az connectedk8s` pulls from).
pub const CHART: &str = "oci://mcr.microsoft.com/azurearck8s/batch1/stable/v2/azure-arc-k8sagents";

/// The Helm value of `global.azureEnvironment` for an arcplan cloud name.
pub fn azure_environment(cloud: &str) -> String {
    match cloud {
        "AzureCloud" | "AzurePublicCloud" => "AZUREPUBLICCLOUD".into(),
        "AzureUSGovernment" | "AzureUSGovernmentCloud" => "AZUREUSGOVERNMENTCLOUD".into(),
        "AzureChinaCloud" => "AZURECHINACLOUD".into(),
        other => other
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_uppercase(),
    }
}

fn set(values: &mut Value, dotted: &str, v: Value) {
    let mut cur = values;
    let parts: Vec<&str> = dotted.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(obj) = cur.as_object_mut() else {
            return;
        };
        if i + 1 == parts.len() {
            obj.insert((*p).to_owned(), v);
            return;
        }
        cur = obj.entry((*p).to_owned()).or_insert_with(|| json!({}));
    }
}

/// The Helm values for the desired `k8s.arcAgents` attributes, without any secret: what plan
/// compares with the installed release.
pub fn desired_values(desired: &Value) -> Value {
    let mut v = json!({});
    let own = desired.get("ownership").cloned().unwrap_or(Value::Null);
    let s = |k: &str| own.get(k).and_then(Value::as_str).map(str::to_owned);
    for (key, from) in [
        ("global.subscriptionId", "AZURE_SUBSCRIPTION_ID"),
        ("global.resourceGroupName", "AZURE_RESOURCE_GROUP"),
        ("global.resourceName", "AZURE_RESOURCE_NAME"),
        ("global.location", "AZURE_REGION"),
        ("global.tenantId", "AZURE_TENANT_ID"),
    ] {
        if let Some(x) = s(from) {
            set(&mut v, key, x.into());
        }
    }
    for (key, attr) in [
        ("global.kubernetesDistro", "distribution"),
        ("global.kubernetesInfra", "infrastructure"),
    ] {
        if let Some(x) = desired.get(attr).and_then(Value::as_str) {
            set(&mut v, key, x.into());
        }
    }
    if let Some(env) = s("AZURE_ENVIRONMENT") {
        set(
            &mut v,
            "global.azureEnvironment",
            azure_environment(&env).into(),
        );
    }
    set(&mut v, "systemDefaultValues.spnOnboarding", false.into());
    let features = desired.get("features").cloned().unwrap_or(Value::Null);
    let private_link = features["privateLink"].as_bool().unwrap_or(false);
    set(
        &mut v,
        "systemDefaultValues.clusterconnect-agent.enabled",
        features["clusterConnect"]
            .as_bool()
            .unwrap_or(!private_link)
            .into(),
    );
    if let Some(oid) = features["customLocationsOid"].as_str() {
        set(
            &mut v,
            "systemDefaultValues.customLocations.enabled",
            true.into(),
        );
        set(
            &mut v,
            "systemDefaultValues.customLocations.oid",
            oid.into(),
        );
    }
    set(
        &mut v,
        "systemDefaultValues.azureArcAgents.autoUpdate",
        (s("AZURE_ARC_AUTOUPDATE").as_deref() != Some("false")).into(),
    );
    let proxy = desired.get("proxy").filter(|p| p.is_object());
    set(&mut v, "global.isProxyEnabled", proxy.is_some().into());
    if let Some(p) = proxy {
        for (key, attr) in [
            ("global.httpsProxy", "httpsProxy"),
            ("global.httpProxy", "httpProxy"),
        ] {
            if let Some(x) = p.get(attr).and_then(Value::as_str) {
                set(&mut v, key, x.into());
            }
        }
        if let Some(list) = p.get("noProxy").and_then(Value::as_array) {
            let joined: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            if !joined.is_empty() {
                set(&mut v, "global.noProxy", joined.join(",").into());
            }
        }
    }
    v
}

/// The values Helm receives on standard input: [`desired_values`] plus the private key, the
/// proxy credentials (`user:password`, put into the proxy URLs) and the proxy CA certificate.
pub fn install_values(
    desired: &Value,
    key: &PrivateKeyPem,
    proxy_credentials: Option<&str>,
    proxy_cert_pem: Option<&str>,
) -> Value {
    let mut v = desired_values(desired);
    set(
        &mut v,
        "global.onboardingPrivateKey",
        key.expose().to_owned().into(),
    );
    if let Some(creds) = proxy_credentials {
        for key in ["httpsProxy", "httpProxy"] {
            if let Some(url) = v.pointer(&format!("/global/{key}")).and_then(Value::as_str) {
                let with = match url.split_once("://") {
                    Some((scheme, rest)) => format!("{scheme}://{creds}@{rest}"),
                    None => format!("{creds}@{url}"),
                };
                set(&mut v, &format!("global.{key}"), with.into());
            }
        }
    }
    if let Some(pem) = proxy_cert_pem {
        set(&mut v, "global.proxyCert", pem.to_owned().into());
    }
    v
}

/// Removes secrets from values read back from a release: keys whose name mentions a private
/// key, password, secret, token or credential are dropped, and `user:password@` is removed
/// from URLs.
pub fn sanitize_values(v: &Value) -> Value {
    const SECRET_WORDS: [&str; 5] = ["privatekey", "password", "secret", "token", "credential"];
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    let k = k.to_ascii_lowercase();
                    !SECRET_WORDS.iter().any(|w| k.contains(w))
                })
                .map(|(k, v)| (k.clone(), sanitize_values(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(sanitize_values).collect()),
        Value::String(s) => {
            if let Some((scheme, rest)) = s.split_once("://") {
                let (authority, path) = match rest.find('/') {
                    Some(i) => rest.split_at(i),
                    None => (rest, ""),
                };
                if let Some((_, host)) = authority.rsplit_once('@') {
                    return Value::String(format!("{scheme}://{host}{path}"));
                }
            }
            if s.contains("PRIVATE KEY") {
                Value::String("(sensitive)".into())
            } else {
                v.clone()
            }
        }
        other => other.clone(),
    }
}

/// One Helm run: program, arguments, environment and standard input. Its `Debug` form never
/// shows the standard input.
#[derive(Clone, PartialEq)]
pub struct HelmInvocation {
    /// The helm binary.
    pub program: PathBuf,
    /// The arguments (never a secret).
    pub args: Vec<String>,
    /// Extra environment (`KUBECONFIG`).
    pub env: Vec<(String, String)>,
    /// The values document (JSON, which Helm reads as YAML), when any.
    pub stdin: Option<String>,
}

impl std::fmt::Debug for HelmInvocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HelmInvocation")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env", &self.env)
            .field("stdin", &self.stdin.as_ref().map(|_| "(values withheld)"))
            .finish()
    }
}

fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

/// `helm upgrade --install azure-arc CHART [--version V] --namespace azure-arc-release
/// --create-namespace --wait --timeout T --values - --kube-context C`, with `KUBECONFIG` in the
/// environment and the values on standard input.
pub fn upgrade_install(
    program: PathBuf,
    version: Option<&str>,
    timeout: Duration,
    kubeconfig: &str,
    context: &str,
    values: &Value,
) -> HelmInvocation {
    let mut args: Vec<String> = vec![
        "upgrade".into(),
        "--install".into(),
        RELEASE_NAME.into(),
        CHART.into(),
    ];
    if let Some(v) = version {
        args.extend(["--version".into(), v.to_owned()]);
    }
    args.extend([
        "--namespace".into(),
        RELEASE_NAMESPACE.into(),
        "--create-namespace".into(),
        "--wait".into(),
        "--timeout".into(),
        seconds(timeout),
        "--values".into(),
        "-".into(),
        "--kube-context".into(),
        context.to_owned(),
    ]);
    HelmInvocation {
        program,
        args,
        env: vec![("KUBECONFIG".into(), kubeconfig.to_owned())],
        stdin: Some(values.to_string()),
    }
}

/// `helm uninstall azure-arc --namespace azure-arc-release --wait --timeout T --kube-context C`.
pub fn uninstall(
    program: PathBuf,
    timeout: Duration,
    kubeconfig: &str,
    context: &str,
) -> HelmInvocation {
    HelmInvocation {
        program,
        args: vec![
            "uninstall".into(),
            RELEASE_NAME.into(),
            "--namespace".into(),
            RELEASE_NAMESPACE.into(),
            "--wait".into(),
            "--timeout".into(),
            seconds(timeout),
            "--kube-context".into(),
            context.to_owned(),
        ],
        env: vec![("KUBECONFIG".into(), kubeconfig.to_owned())],
        stdin: None,
    }
}

/// The diagnostic when helm cannot be found.
pub fn not_found(program: &std::path::Path) -> Diagnostic {
    Diagnostic::error(
        "helm-not-found",
        format!(
            "the `helm` installer needs Helm 3, but `{}` was not found",
            program.display()
        ),
    )
    .with_hint("install Helm 3 (https://helm.sh/docs/intro/install/) or set HELM_CLIENT_PATH to its binary; or use `agents: {installer: manifests}`")
}

/// Finds `program` the way a shell would: a path with a separator is taken as is, a bare name
/// is looked up in `path_var` (the `PATH` value).
pub fn locate(program: &std::path::Path, path_var: Option<&str>) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path_var = path_var?;
    std::env::split_paths(path_var)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Runs Helm, writing the values to its standard input. Cancellation kills it. Errors name the
/// command (without values) and Helm's last output lines.
pub async fn run(inv: &HelmInvocation, cancel: &CancellationToken) -> Result<String, Diagnostic> {
    use tokio::io::AsyncWriteExt as _;
    let mut cmd = tokio::process::Command::new(&inv.program);
    cmd.args(&inv.args)
        .envs(inv.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let shown = format!("helm {}", inv.args.join(" "));
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            not_found(&inv.program)
        }
        _ => Diagnostic::error("helm-failed", format!("cannot start `{shown}`: {e}")),
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        let input = inv.stdin.clone().unwrap_or_default();
        // A Helm that exits early closes its input; its exit status tells what happened.
        let _ = stdin.write_all(input.as_bytes()).await;
        drop(stdin);
    }
    let output = tokio::select! {
        out = child.wait_with_output() => out.map_err(|e| Diagnostic::error("helm-failed", format!("`{shown}` failed: {e}")))?,
        () = cancel.cancelled() => {
            return Err(Diagnostic::error("cancelled", format!("`{shown}` was interrupted"))
                .with_hint("the release may be half-installed; plan again to converge"));
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
    let mut tail: String = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
    if tail.contains("PRIVATE KEY") {
        tail = "(output withheld: it mentions the private key)".into();
    }
    Err(Diagnostic::error(
        "helm-failed",
        format!("`{shown}` exited with {}: {tail}", output.status),
    )
    .with_hint("`helm status azure-arc -n azure-arc-release` and `kubectl -n azure-arc get pods,events` show what went wrong"))
}

/// The installed release, as read from Helm's storage.
#[derive(Debug, Clone, PartialEq)]
pub struct HelmRelease {
    /// The release name.
    pub name: String,
    /// The revision (`version` label / field).
    pub revision: u64,
    /// `deployed`, `failed`, `pending-install`, ...
    pub status: String,
    /// The chart's name.
    pub chart_name: String,
    /// The chart's version.
    pub chart_version: String,
    /// The user-supplied values, sanitised.
    pub values: Value,
}

/// Decodes the `release` key of a Helm storage Secret (the bytes after the Secret's own base64):
/// base64, then gzip when the magic bytes say so, then JSON.
pub fn decode_release(data: &[u8]) -> Result<Value, String> {
    let text: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|e| format!("the release is not base64: {e}"))?;
    let json = if raw.starts_with(&[0x1f, 0x8b, 0x08]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(64 * 1024 * 1024)
            .read_to_end(&mut out)
            .map_err(|e| format!("the release is not valid gzip: {e}"))?;
        out
    } else {
        raw
    };
    serde_json::from_slice(&json).map_err(|e| format!("the release is not JSON: {e}"))
}

/// Encodes a release the way Helm 3 stores it (gzip, then base64): the inverse of
/// [`decode_release`].
pub fn encode_release(release: &Value) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(release.to_string().as_bytes());
    let bytes = gz.finish().unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .into_bytes()
}

/// The facts of a decoded release JSON.
pub fn release_facts(v: &Value) -> HelmRelease {
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    HelmRelease {
        name: s("/name"),
        revision: v.get("version").and_then(Value::as_u64).unwrap_or(0),
        status: s("/info/status"),
        chart_name: s("/chart/metadata/name"),
        chart_version: s("/chart/metadata/version"),
        values: sanitize_values(v.get("config").unwrap_or(&Value::Null)),
    }
}

/// Reads the latest revision of release `name` in `namespace` from Helm's storage Secrets
/// (`None`: not installed).
pub async fn read_release(
    cluster: &Cluster,
    name: &str,
    namespace: &str,
) -> Result<Option<HelmRelease>, Diagnostic> {
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), namespace);
    let lp = ListParams::default().labels(&format!("owner=helm,name={name}"));
    let list = api.list(&lp).await.map_err(|e| {
        cluster.api_error(
            &format!("list Helm release Secrets in namespace {namespace}"),
            &e,
        )
    })?;
    let latest = list
        .items
        .iter()
        .filter_map(|s| {
            let rev = s
                .metadata
                .labels
                .as_ref()?
                .get("version")?
                .parse::<u64>()
                .ok()?;
            Some((rev, s))
        })
        .max_by_key(|(rev, _)| *rev);
    let Some((_, secret)) = latest else {
        return Ok(None);
    };
    let secret_name = secret.metadata.name.clone().unwrap_or_default();
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get("release"))
        .ok_or_else(|| {
            Diagnostic::error(
                "helm-release-unreadable",
                format!(
                    "Helm release Secret {namespace}/{secret_name} on {} has no `release` key",
                    cluster.describe()
                ),
            )
        })?;
    let v = decode_release(&data.0).map_err(|e| {
        Diagnostic::error(
            "helm-release-unreadable",
            format!(
                "cannot read Helm release Secret {namespace}/{secret_name} on {}: {e}",
                cluster.describe()
            ),
        )
        .with_hint("`helm history azure-arc -n azure-arc-release` shows the release; a corrupt release can be removed with `helm uninstall`")
    })?;
    Ok(Some(release_facts(&v)))
}

/// Differences between desired values and the release's values, for the fields desired
/// declares (`path: live → desired`).
pub fn values_diff(desired: &Value, live: &Value) -> Vec<String> {
    let mut out = Vec::new();
    super::manifests::diff(desired, live, "values", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Value {
        json!({
            "installer": "helm",
            "version": "1.21.10",
            "distribution": "aks_workload",
            "infrastructure": "azure_stack_hci",
            "proxy": {"httpsProxy": "http://proxy:3128", "noProxy": ["10.96.0.0/16", "localhost"], "credentials": {"env": "P"}},
            "ownership": {
                "AZURE_SUBSCRIPTION_ID": "sub", "AZURE_RESOURCE_GROUP": "rg", "AZURE_RESOURCE_NAME": "c",
                "AZURE_TENANT_ID": "t", "AZURE_REGION": "eastus", "AZURE_ARC_AUTOUPDATE": "false",
                "AZURE_ENVIRONMENT": "AzureCloud"
            }
        })
    }

    #[test]
    fn agent_features_are_chart_values() {
        let v = desired_values(&desired());
        let sys = &v["systemDefaultValues"];
        assert_eq!(sys["clusterconnect-agent"]["enabled"], true, "az's default");
        assert!(sys.get("customLocations").is_none());
        let mut d = desired();
        d["features"] = json!({"privateLink": true});
        let v = desired_values(&d);
        assert_eq!(
            v["systemDefaultValues"]["clusterconnect-agent"]["enabled"], false,
            "private link turns cluster connect off"
        );
        d["features"] = json!({"clusterConnect": true, "customLocationsOid": "oid-1"});
        let v = desired_values(&d);
        let sys = &v["systemDefaultValues"];
        assert_eq!(sys["clusterconnect-agent"]["enabled"], true);
        assert_eq!(sys["customLocations"]["enabled"], true);
        assert_eq!(sys["customLocations"]["oid"], "oid-1");
    }

    #[test]
    fn values_are_the_ones_az_connectedk8s_sets() {
        let v = desired_values(&desired());
        assert_eq!(v["global"]["subscriptionId"], "sub");
        assert_eq!(v["global"]["resourceGroupName"], "rg");
        assert_eq!(v["global"]["resourceName"], "c");
        assert_eq!(v["global"]["location"], "eastus");
        assert_eq!(v["global"]["tenantId"], "t");
        assert_eq!(v["global"]["kubernetesDistro"], "aks_workload");
        assert_eq!(v["global"]["kubernetesInfra"], "azure_stack_hci");
        assert_eq!(v["global"]["azureEnvironment"], "AZUREPUBLICCLOUD");
        assert_eq!(v["global"]["isProxyEnabled"], true);
        assert_eq!(v["global"]["httpsProxy"], "http://proxy:3128");
        assert_eq!(v["global"]["noProxy"], "10.96.0.0/16,localhost");
        assert_eq!(
            v["systemDefaultValues"]["clusterconnect-agent"]["enabled"],
            true
        );
        assert_eq!(
            v["systemDefaultValues"]["azureArcAgents"]["autoUpdate"],
            false
        );
        assert_eq!(v["systemDefaultValues"]["spnOnboarding"], false);
        assert!(v["global"].get("onboardingPrivateKey").is_none());
    }

    #[test]
    fn command_keeps_values_out_of_argv() {
        let key = PrivateKeyPem::new(
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        );
        let values = install_values(&desired(), &key, Some("u:p"), Some("CERT"));
        assert_eq!(values["global"]["httpsProxy"], "http://u:p@proxy:3128");
        assert_eq!(values["global"]["proxyCert"], "CERT");
        let inv = upgrade_install(
            "helm".into(),
            Some("1.21.10"),
            Duration::from_secs(1200),
            "/k/config",
            "admin",
            &values,
        );
        assert_eq!(
            inv.args.join(" "),
            format!(
                "upgrade --install azure-arc {CHART} --version 1.21.10 --namespace azure-arc-release --create-namespace --wait --timeout 1200s --values - --kube-context admin"
            )
        );
        assert!(
            !inv.args
                .iter()
                .any(|a| a.contains("PRIVATE") || a.contains("u:p"))
        );
        assert!(
            inv.stdin
                .as_deref()
                .unwrap()
                .contains("BEGIN RSA PRIVATE KEY")
        );
        assert!(!format!("{inv:?}").contains("PRIVATE"));
        assert_eq!(
            inv.env,
            vec![("KUBECONFIG".to_owned(), "/k/config".to_owned())]
        );
        let un = uninstall("helm".into(), Duration::from_secs(60), "/k", "c");
        assert_eq!(
            un.args.join(" "),
            "uninstall azure-arc --namespace azure-arc-release --wait --timeout 60s --kube-context c"
        );
        // Values read back lose the key and the proxy credentials.
        let clean = sanitize_values(&values);
        assert!(clean["global"].get("onboardingPrivateKey").is_none());
        assert_eq!(clean["global"]["httpsProxy"], "http://proxy:3128");
        assert!(values_diff(&desired_values(&desired()), &clean).is_empty());
    }

    #[test]
    fn release_round_trips_through_helm_storage_encoding() {
        let rel = json!({"name": "azure-arc", "version": 3, "info": {"status": "deployed"},
            "chart": {"metadata": {"name": "azure-arc-k8sagents", "version": "1.21.10"}},
            "config": {"global": {"resourceName": "c", "onboardingPrivateKey": "-----BEGIN RSA PRIVATE KEY-----"}}});
        let enc = encode_release(&rel);
        let dec = decode_release(&enc).unwrap();
        assert_eq!(dec, rel);
        let f = release_facts(&dec);
        assert_eq!(f.chart_version, "1.21.10");
        assert_eq!(f.revision, 3);
        assert_eq!(f.status, "deployed");
        assert_eq!(f.values, json!({"global": {"resourceName": "c"}}));
        // Plain (uncompressed) JSON is accepted too; garbage is an error.
        let plain = base64::engine::general_purpose::STANDARD.encode(rel.to_string());
        assert_eq!(decode_release(plain.as_bytes()).unwrap(), rel);
        assert!(decode_release(b"%%%").is_err());
        let not_gzip = base64::engine::general_purpose::STANDARD.encode([0x1f, 0x8b, 0x08, 0, 1]);
        assert!(decode_release(not_gzip.as_bytes()).is_err());
    }

    #[test]
    fn locating_helm() {
        assert_eq!(locate(std::path::Path::new("/no/such/helm"), None), None);
        assert_eq!(locate(std::path::Path::new("helm"), None), None);
        assert_eq!(
            locate(
                std::path::Path::new("sh"),
                Some("/nonexistent:/bin:/usr/bin")
            )
            .is_some(),
            std::path::Path::new("/bin/sh").is_file()
                || std::path::Path::new("/usr/bin/sh").is_file()
        );
        assert_eq!(
            azure_environment("AzureUSGovernment"),
            "AZUREUSGOVERNMENTCLOUD"
        );
    }

    #[tokio::test]
    async fn running_a_missing_helm_is_a_clear_diagnostic() {
        let inv = uninstall("/no/such/helm".into(), Duration::from_secs(1), "/k", "c");
        let d = run(&inv, &CancellationToken::new()).await.unwrap_err();
        assert_eq!(d.code, "helm-not-found");
        assert!(d.message.contains("/no/such/helm"));
    }
}
