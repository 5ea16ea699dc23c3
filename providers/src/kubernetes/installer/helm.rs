//! The `helm` installer: `helm upgrade --install` of Microsoft's chart with the onboarding key,
//! the proxy credentials and CA on standard input, the release read back from Helm's storage,
//! and `helm uninstall`. The command lines, the values and the storage format are built in
//! [`crate::kubernetes::helm`]; this module decides what to run and reads the cluster.

use super::{Diff, Installer, Live, Step, Target};
use crate::kubernetes::access::{Cluster, resolve_path};
use crate::kubernetes::context::KubeCx;
use crate::kubernetes::helm::{self, HelmRelease};
use crate::kubernetes::key::PrivateKeyPem;
use crate::kubernetes::kinds::arc_agents::Attributes;
use crate::kubernetes::kinds::onboarding_key::pem_of;
use crate::kubernetes::readiness;
use crate::kubernetes::{AGENTS, KEY_SECRET, NAMESPACE, RELEASE_NAME, RELEASE_NAMESPACE};
use arcplan_config::SecretRef;
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::Api;
use serde_json::{Map, Value, json};

/// The `helm` installer.
pub struct Helm;

/// The attributes as the values builders read them.
fn desired(t: &Target<'_>) -> Value {
    serde_json::to_value(t.attrs).unwrap_or(Value::Null)
}

/// Deployments in `azure-arc` a release rendered (from its manifest).
fn release_deployments(manifest: &str) -> Vec<String> {
    serde_saphyr::from_multiple::<Value>(manifest)
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("Deployment"))
        .filter(|d| {
            d.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .is_none_or(|n| n == NAMESPACE)
        })
        .filter_map(|d| d.pointer("/metadata/name")?.as_str().map(str::to_owned))
        .collect()
}

/// The release and the Deployments it rendered.
async fn read_release_full(
    cluster: &Cluster,
) -> Result<Option<(HelmRelease, Vec<String>)>, Diagnostic> {
    // The facts come from `helm::read_release`; the rendered Deployment names need the manifest,
    // which `HelmRelease` does not keep, so read the storage Secret once more only when needed.
    let Some(rel) = helm::read_release(cluster, RELEASE_NAME, RELEASE_NAMESPACE).await? else {
        return Ok(None);
    };
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), RELEASE_NAMESPACE);
    let name = format!("sh.helm.release.v1.{RELEASE_NAME}.v{}", rel.revision);
    let deployments = match api.get_opt(&name).await {
        Ok(Some(s)) => s
            .data
            .as_ref()
            .and_then(|d| d.get("release"))
            .and_then(|b| helm::decode_release(&b.0).ok())
            .and_then(|v| {
                v.get("manifest")
                    .and_then(Value::as_str)
                    .map(release_deployments)
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    Ok(Some((rel, deployments)))
}

async fn read_private_key(cluster: &Cluster) -> Result<PrivateKeyPem, Diagnostic> {
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let secret = api
        .get_opt(KEY_SECRET)
        .await
        .map_err(|e| cluster.api_error(&format!("read Secret {NAMESPACE}/{KEY_SECRET}"), &e))?;
    secret.as_ref().and_then(pem_of).ok_or_else(|| {
        Diagnostic::error(
            "k8s-key-missing",
            format!(
                "Secret {NAMESPACE}/{KEY_SECRET} on {} holds no onboarding key, which the Helm chart needs",
                cluster.describe()
            ),
        )
        .with_hint("plan again: the onboarding key is created before the agents")
    })
}

/// The proxy credentials (`user:password`), from the environment or a file.
fn proxy_secret(cx: &KubeCx, creds: Option<&SecretRef>) -> Result<Option<String>, Diagnostic> {
    match creds {
        None => Ok(None),
        Some(SecretRef::Env(var)) => cx.options().env(var).map(Some).ok_or_else(|| {
            Diagnostic::error(
                "secret-missing",
                format!(
                    "the proxy credentials come from environment variable {var}, which is not set"
                ),
            )
            .with_key("agents.proxy.credentials")
            .with_hint(format!("export {var}=user:password"))
        }),
        Some(SecretRef::File(file)) => {
            let path = resolve_path(&cx.options().base_dir, file);
            std::fs::read_to_string(&path)
                .map(|s| Some(s.trim().to_owned()))
                .map_err(|e| {
                    Diagnostic::error(
                        "secret-missing",
                        format!(
                            "cannot read the proxy credentials file {}: {e}",
                            path.display()
                        ),
                    )
                    .with_key("agents.proxy.credentials")
                })
        }
    }
}

async fn proxy_ca(cx: &KubeCx, file: Option<&str>) -> Result<Option<String>, Diagnostic> {
    let Some(f) = file else {
        return Ok(None);
    };
    let path = resolve_path(&cx.options().base_dir, f);
    tokio::fs::read_to_string(&path)
        .await
        .map(Some)
        .map_err(|e| {
            Diagnostic::error(
                "proxy-ca-unreadable",
                format!(
                    "cannot read the proxy CA certificate {}: {e}",
                    path.display()
                ),
            )
            .with_key("agents.proxy.caCert")
        })
}

#[async_trait]
impl Installer for Helm {
    async fn left_behind(&self, _cx: &KubeCx, _attrs: &Attributes) -> Vec<String> {
        let mut v = vec![format!("Helm release {RELEASE_NAMESPACE}/{RELEASE_NAME}")];
        v.extend(AGENTS.iter().map(|a| format!("Deployment {NAMESPACE}/{a}")));
        v
    }

    fn preflight(&self, cx: &KubeCx) -> Diagnostics {
        let program = cx.options().helm_program();
        let mut diags = Diagnostics::new();
        if helm::locate(&program, cx.options().env("PATH").as_deref()).is_none() {
            diags.push(helm::not_found(&program));
        }
        diags
    }

    async fn read(&self, t: &Target<'_>, recorded: bool) -> Result<Live, Diagnostic> {
        let cluster = t.cluster;
        let release = read_release_full(cluster).await?;
        let names: Vec<String> = match &release {
            Some((_, d)) if !d.is_empty() => d.clone(),
            _ => AGENTS.iter().map(|s| (*s).to_owned()).collect(),
        };
        let (readiness, deployments) = readiness::observe(cluster, Some(&names)).await?;
        let ns_exists = Api::<Namespace>::all(cluster.client.clone())
            .get_opt(NAMESPACE)
            .await
            .map_err(|e| cluster.api_error("read namespace azure-arc", &e))?
            .is_some();
        let installed = recorded || release.is_some() || !deployments.is_empty();
        let mut state = Map::new();
        state.insert(
            "release".into(),
            release
                .as_ref()
                .map(|(rel, d)| {
                    json!({
                        "name": rel.name,
                        "revision": rel.revision,
                        "status": rel.status,
                        "chart": rel.chart_name,
                        "version": rel.chart_version,
                        "values": rel.values,
                        "deployments": d,
                    })
                })
                .unwrap_or(Value::Null),
        );
        Ok(Live {
            exists: installed || ns_exists,
            installed,
            state,
            readiness,
            version: release.map(|(rel, _)| rel.chart_version),
        })
    }

    async fn diff(&self, t: &Target<'_>, prior: Option<&Value>) -> Result<Diff, Diagnostic> {
        let want_values = helm::desired_values(&desired(t));
        let want_version = t.version();
        let mut changes = Vec::new();
        match prior
            .and_then(|p| p.get("release"))
            .filter(|r| !r.is_null())
        {
            None => changes.push(format!(
                "Helm release {RELEASE_NAMESPACE}/{RELEASE_NAME}: not installed"
            )),
            Some(rel) => {
                let status = rel.get("status").and_then(Value::as_str).unwrap_or("");
                if status != "deployed" {
                    changes.push(format!(
                        "Helm release {RELEASE_NAMESPACE}/{RELEASE_NAME}: status {status} (upgraded again)"
                    ));
                }
                let live_version = rel.get("version").and_then(Value::as_str).unwrap_or("");
                if let Some(v) = want_version
                    && v != live_version
                {
                    changes.push(format!("chart version: {live_version} → {v}"));
                }
                let d = helm::values_diff(&want_values, rel.get("values").unwrap_or(&Value::Null));
                if !d.is_empty() {
                    changes.push(d.join(", "));
                }
            }
        }
        let missing = prior
            .and_then(|p| p.pointer("/agents/notReady"))
            .and_then(Value::as_array);
        for m in missing.into_iter().flatten().filter_map(Value::as_str) {
            changes.push(format!(
                "Deployment {NAMESPACE}/{m}: missing or not available"
            ));
        }
        Ok(Diff {
            changes,
            after: json!({"installer": "helm", "release": {"name": RELEASE_NAME, "namespace": RELEASE_NAMESPACE, "version": want_version, "values": want_values}}),
        })
    }

    async fn install(
        &self,
        t: &Target<'_>,
        step: &Step<'_>,
    ) -> Result<Option<Vec<String>>, Diagnostic> {
        let cluster = t.cluster;
        let key = read_private_key(cluster).await?;
        let proxy = t.attrs.proxy.as_ref();
        let creds = proxy_secret(t.cx, proxy.and_then(|p| p.credentials.as_ref()))?;
        let cert = proxy_ca(t.cx, proxy.and_then(|p| p.ca_cert.as_deref())).await?;
        let values = helm::install_values(&desired(t), &key, creds.as_deref(), cert.as_deref());
        let inv = helm::upgrade_install(
            t.cx.options().helm_program(),
            t.version(),
            step.timeout,
            &cluster.kubeconfig,
            &cluster.context,
            &values,
        );
        drop(values);
        (step.say)(format!(
            "helm upgrade --install {RELEASE_NAME} (namespace {RELEASE_NAMESPACE})"
        ));
        helm::run(&inv, step.cancel).await?;
        let names = read_release_full(cluster)
            .await?
            .map(|(_, d)| d)
            .filter(|d| !d.is_empty());
        Ok(names)
    }

    async fn remove(
        &self,
        t: &Target<'_>,
        step: &Step<'_>,
        _everything: bool,
    ) -> Result<(), Diagnostic> {
        let cluster = t.cluster;
        if helm::read_release(cluster, RELEASE_NAME, RELEASE_NAMESPACE)
            .await?
            .is_none()
        {
            return Ok(());
        }
        (step.say)(format!("helm uninstall {RELEASE_NAME}"));
        let inv = helm::uninstall(
            t.cx.options().helm_program(),
            step.timeout,
            &cluster.kubeconfig,
            &cluster.context,
        );
        helm::run(&inv, step.cancel).await.map(|_| ())
    }
}
