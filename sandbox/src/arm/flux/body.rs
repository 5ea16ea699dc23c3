//! The bodies of the Flux configurations API in the ARM emulator: validating a source and its
//! kustomizations (with the service's defaults), merge patches, protected settings, and the
//! Flux controller stand-in's report.

use serde_json::{Map, Value, json};

use super::super::ArmError;
use super::super::extensions::string_map;

/// A deterministic commit id for a repository and reference (the stand-in's "checkout").
fn revision(url: &str, reference: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in url.bytes().chain(reference.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!(
        "{h:016x}{:016x}{:08x}",
        h.rotate_left(17),
        h as u32 ^ 0x5eed
    )
}

/// What the Flux controllers report for configuration `p` (`name`): its compliance state and
/// statuses, and the commit it synced.
pub(super) fn reconcile(
    name: &str,
    p: &Value,
    broken: &[String],
    now: &str,
) -> (String, Vec<Value>, Value) {
    let ns = p["namespace"].as_str().unwrap_or("default");
    // The source: a Git repository (followed by its reference) or a bucket.
    let (kind, url, reference) = if p["ociRepository"].is_object() {
        let o = &p["ociRepository"];
        let r = &o["repositoryRef"];
        let reference = ["tag", "semver", "digest"]
            .iter()
            .find_map(|k| r[*k].as_str().map(|v| format!("{k}/{v}")))
            .unwrap_or_else(|| "tag/latest".into());
        (
            "OCIRepository",
            o["url"].as_str().unwrap_or_default(),
            reference,
        )
    } else if p["bucket"].is_object() {
        let b = &p["bucket"];
        let url = b["url"].as_str().unwrap_or_default();
        let at = format!("bucket/{}", b["bucketName"].as_str().unwrap_or_default());
        ("Bucket", url, at)
    } else {
        let git = &p["gitRepository"];
        let r = &git["repositoryRef"];
        let reference = ["branch", "tag", "semver", "commit"]
            .iter()
            .find_map(|k| r[*k].as_str().map(|v| format!("{k}/{v}")))
            .unwrap_or_else(|| "branch/main".into());
        (
            "GitRepository",
            git["url"].as_str().unwrap_or_default(),
            reference,
        )
    };
    let condition = |ready: bool, reason: &str, message: String| {
        json!([{
            "lastTransitionTime": now, "message": message, "reason": reason,
            "status": if ready { "True" } else { "False" }, "type": "Ready",
        }])
    };
    let kustomizations: Vec<&String> = p["kustomizations"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    if p["suspend"].as_bool() == Some(true) {
        return ("Suspended".into(), Vec::new(), Value::Null);
    }
    if broken.iter().any(|b| b == url) {
        let message = if kind == "Bucket" {
            format!("failed to confirm existence of bucket at '{url}': the bucket does not exist")
        } else if kind == "OCIRepository" {
            format!(
                "failed to determine artifact digest: unable to pull '{url}': repository not found"
            )
        } else {
            format!(
                "failed to checkout and determine revision: unable to clone '{url}': repository not found"
            )
        };
        let mut statuses = vec![json!({
            "name": name, "namespace": ns, "kind": kind,
            "complianceState": "Non-Compliant",
            "statusConditions": condition(false, "GitOperationFailed", message),
        })];
        for k in kustomizations {
            statuses.push(json!({
                "name": format!("{name}-{k}"), "namespace": ns, "kind": "Kustomization",
                "complianceState": "Non-Compliant",
                "statusConditions": condition(false, "ArtifactFailed", format!("Source artifact not found: {kind}/{ns}/{name} is not ready")),
            }));
        }
        return ("Non-Compliant".into(), statuses, Value::Null);
    }
    let commit = revision(url, &reference);
    let rev = if kind == "Bucket" {
        format!("sha256:{commit}")
    } else if kind == "OCIRepository" {
        format!(
            "{}@sha256:{commit}",
            reference.rsplit('/').next().unwrap_or("latest")
        )
    } else {
        format!("{}@sha1:{commit}", reference.replace('/', ":"))
    };
    let mut statuses = vec![json!({
        "name": name, "namespace": ns, "kind": kind,
        "complianceState": "Compliant",
        "statusConditions": condition(true, "Succeeded", format!("stored artifact for revision '{rev}'")),
    })];
    for k in kustomizations {
        statuses.push(json!({
            "name": format!("{name}-{k}"), "namespace": ns, "kind": "Kustomization",
            "complianceState": "Compliant",
            "appliedBy": {"name": name, "namespace": ns},
            "statusConditions": condition(true, "ReconciliationSucceeded", format!("Applied revision: {rev}")),
        }));
    }
    ("Compliant".into(), statuses, json!(rev))
}

/// The protected settings of a body, each base64-encoded as the service takes them (`az`
/// encodes them), or the service's error.
pub(super) fn protected_settings(
    props: &Map<String, Value>,
) -> Result<Option<Map<String, Value>>, ArmError> {
    use base64::Engine;
    let m = string_map(props, "configurationProtectedSettings")?;
    for (k, v) in m.iter().flatten() {
        let decodes = v
            .as_str()
            .is_some_and(|v| base64::engine::general_purpose::STANDARD.decode(v).is_ok());
        if !decodes {
            return Err(ArmError::bad_request(
                "InvalidConfigurationProtectedSettings",
                format!(
                    "Error: Invalid configuration: the value of protected setting '{k}' must be base64-encoded."
                ),
            ));
        }
    }
    Ok(m)
}

/// A seconds field of `v` (its default when absent), or ARM's error.
fn seconds(v: &Value, key: &str, at: &str, default: Option<i64>) -> Result<Value, ArmError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(default.map(Value::from).unwrap_or(Value::Null)),
        Some(Value::Number(n)) if n.as_i64().is_some_and(|s| s > 0) => Ok(json!(n)),
        Some(_) => Err(ArmError::invalid_content(
            &format!("{at}.{key}"),
            format!("'{at}.{key}' must be a positive integer number of seconds."),
        )),
    }
}

/// The Git repository as stored (defaults filled in), or the service's error.
pub(super) fn git_repository(g: &Value) -> Result<Value, ArmError> {
    let at = "properties.gitRepository";
    let Some(url) = g
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
    else {
        return Err(ArmError::bad_request(
            "InvalidGitRepositoryUrl",
            "Error: Invalid configuration: the 'url' of the GitRepository source is required.",
        ));
    };
    let r = g.get("repositoryRef").cloned().unwrap_or(Value::Null);
    let given: Vec<&str> = ["branch", "tag", "semver", "commit"]
        .into_iter()
        .filter(|k| r.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    if given.len() != 1 {
        return Err(ArmError::bad_request(
            "InvalidRepositoryRef",
            format!(
                "Error: Invalid configuration: the GitRepository source takes exactly one of 'branch', 'tag', 'semver' and 'commit' in 'repositoryRef' (got {}).",
                given.len()
            ),
        ));
    }
    let mut out = json!({
        "url": url,
        "timeoutInSeconds": seconds(g, "timeoutInSeconds", at, Some(600))?,
        "syncIntervalInSeconds": seconds(g, "syncIntervalInSeconds", at, Some(600))?,
        "repositoryRef": {given[0]: r[given[0]].clone()},
    });
    for k in [
        "sshKnownHosts",
        "httpsUser",
        "httpsCACert",
        "localAuthRef",
        "provider",
    ] {
        if let Some(v) = g.get(k).filter(|v| !v.is_null()) {
            out[k] = v.clone();
        }
    }
    Ok(out)
}

/// The bucket as stored (defaults filled in), or the service's error.
pub(super) fn bucket(b: &Value) -> Result<Value, ArmError> {
    let at = "properties.bucket";
    let text = |k: &str| b.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    let (Some(url), Some(name)) = (text("url"), text("bucketName")) else {
        return Err(ArmError::bad_request(
            "InvalidBucketDefinition",
            "Error: Invalid configuration: the 'url' and 'bucketName' of the Bucket source are required.",
        ));
    };
    let mut out = json!({
        "url": url,
        "bucketName": name,
        "insecure": b.get("insecure").and_then(Value::as_bool).unwrap_or(true),
        "timeoutInSeconds": seconds(b, "timeoutInSeconds", at, Some(600))?,
        "syncIntervalInSeconds": seconds(b, "syncIntervalInSeconds", at, Some(600))?,
    });
    for k in ["accessKey", "localAuthRef"] {
        if let Some(v) = b.get(k).filter(|v| !v.is_null()) {
            out[k] = v.clone();
        }
    }
    Ok(out)
}

/// The OCI repository as stored (defaults filled in), or the service's error.
pub(super) fn oci_repository(o: &Value) -> Result<Value, ArmError> {
    let at = "properties.ociRepository";
    let Some(url) = o
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("oci://"))
    else {
        return Err(ArmError::bad_request(
            "InvalidOCIRepositoryUrl",
            "Error: Invalid configuration: the 'url' of the OCIRepository source must be an oci:// URL.",
        ));
    };
    let r = o.get("repositoryRef").cloned().unwrap_or(Value::Null);
    let given: Vec<&str> = ["tag", "semver", "digest"]
        .into_iter()
        .filter(|k| r.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    if given.len() > 1 {
        return Err(ArmError::bad_request(
            "InvalidRepositoryRef",
            "Error: Invalid configuration: the OCIRepository source takes at most one of 'tag', 'semver' and 'digest' in 'repositoryRef'.",
        ));
    }
    let flag = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut out = json!({
        "url": url,
        "timeoutInSeconds": seconds(o, "timeoutInSeconds", at, Some(600))?,
        "syncIntervalInSeconds": seconds(o, "syncIntervalInSeconds", at, Some(600))?,
        "insecure": flag("insecure"),
        "useWorkloadIdentity": flag("useWorkloadIdentity"),
    });
    if let Some(k) = given.first() {
        out["repositoryRef"] = json!({*k: r[*k].clone()});
    }
    for k in ["serviceAccountName", "localAuthRef"] {
        if let Some(v) = o.get(k).filter(|v| !v.is_null()) {
            out[k] = v.clone();
        }
    }
    Ok(out)
}

/// The kustomizations as stored (defaults filled in), or the service's error.
pub(super) fn kustomizations(ks: &Map<String, Value>) -> Result<Value, ArmError> {
    let mut out = Map::new();
    for (name, k) in ks {
        let at = format!("properties.kustomizations.{name}");
        let depends: Vec<Value> = k
            .get("dependsOn")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for d in &depends {
            if !d.as_str().is_some_and(|d| ks.contains_key(d) && d != name) {
                return Err(ArmError::bad_request(
                    "InvalidKustomizationDependency",
                    format!(
                        "Error: Invalid configuration: kustomization '{name}' depends on {d}, which is not another kustomization of this configuration."
                    ),
                ));
            }
        }
        let flag =
            |key: &str, default: bool| k.get(key).and_then(Value::as_bool).unwrap_or(default);
        let mut v = json!({
            "name": name,
            "path": k.get("path").and_then(Value::as_str).unwrap_or(""),
            "dependsOn": depends,
            "timeoutInSeconds": seconds(k, "timeoutInSeconds", &at, Some(600))?,
            "syncIntervalInSeconds": seconds(k, "syncIntervalInSeconds", &at, Some(600))?,
            "prune": flag("prune", false),
            "force": flag("force", false),
            "wait": flag("wait", true),
        });
        let retry = seconds(k, "retryIntervalInSeconds", &at, None)?;
        if !retry.is_null() {
            v["retryIntervalInSeconds"] = retry;
        }
        out.insert(name.clone(), v);
    }
    Ok(Value::Object(out))
}

/// `a` with the JSON merge patch `patch` applied (`null` removes a key).
pub(super) fn merge(a: &Value, patch: &Value) -> Value {
    match (a, patch) {
        (Value::Object(a), Value::Object(p)) => {
            let mut out = a.clone();
            for (k, v) in p {
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = merge(out.get(k).unwrap_or(&Value::Null), v);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        (_, p) => p.clone(),
    }
}
