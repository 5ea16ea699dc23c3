//! A stand-in for the Arc extension manager of every emulated cluster: while the cluster is
//! Connected, each extension of its connected cluster gets its release namespace and a
//! Deployment (named after the extension, image `<type>:<version>`); once the Deployment is
//! available the extension's operation in ARM may end `Succeeded`. An extension that no longer
//! exists in ARM has its Deployment removed, and the namespace too when the manager created it.
//! `kubectl` sees these namespaces and workloads like any other.

use serde_json::{Value, json};

use crate::arm::ArmApi;
use crate::kube::KubeApi;

/// The label naming the extension that owns a workload.
pub const EXTENSION_LABEL: &str = "clusterconfig.azure.com/extension-name";
/// The manager's field of the `app.kubernetes.io/managed-by` label.
const MANAGER: &str = "arc-extension-manager";

fn available(d: &Value) -> bool {
    d.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Available" && c["status"] == "True")
        })
}

/// One pass of the manager of `kube`, the cluster of connected cluster `sub/rg/cluster`.
/// `installed` says whether the manager may have workloads in the cluster (it is kept by the
/// caller between passes): a cluster with no extension and none installed costs no request to
/// the cluster, so an idle fleet's heartbeat stays cheap.
pub(crate) fn reconcile(
    arm: &ArmApi,
    kube: &KubeApi,
    (sub, rg, cluster): (&str, &str, &str),
    installed: &mut bool,
) {
    let releases = arm.extension_releases(sub, rg, cluster);
    if releases.is_empty() && !*installed {
        return;
    }
    *installed = !releases.is_empty();
    for r in &releases {
        if kube.get("v1", "Namespace", None, &r.namespace).is_none() {
            let _ = kube.put(json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": r.namespace, "labels": {"app.kubernetes.io/managed-by": MANAGER}},
            }));
        }
        let image = format!(
            "{}{}:{}",
            crate::agents::AGENT_REPOSITORY,
            r.extension_type,
            r.version
        );
        let live = kube.get("apps/v1", "Deployment", Some(&r.namespace), &r.name);
        let current = live.as_ref().and_then(|d| {
            d.pointer("/spec/template/spec/containers/0/image")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        if current.as_deref() != Some(image.as_str()) {
            let labels = json!({EXTENSION_LABEL: r.name, "app.kubernetes.io/managed-by": MANAGER});
            let _ = kube.put(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": r.name, "namespace": r.namespace, "labels": labels},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {EXTENSION_LABEL: r.name}},
                    "template": {
                        "metadata": {"labels": {EXTENSION_LABEL: r.name}},
                        "spec": {"containers": [{"name": "extension", "image": image}]},
                    },
                },
            }));
            continue;
        }
        if !r.installed && live.as_ref().is_some_and(available) {
            arm.set_extension_installed(sub, rg, cluster, &r.name);
        }
    }
    // Workloads of extensions ARM no longer has.
    for d in kube.list("apps/v1", "Deployment", None) {
        let Some(owner) = d
            .pointer(&format!(
                "/metadata/labels/{}",
                EXTENSION_LABEL.replace('/', "~1")
            ))
            .and_then(Value::as_str)
        else {
            continue;
        };
        if releases.iter().any(|r| r.name == owner) {
            continue;
        }
        // Removed next pass too, until nothing of the manager's is left.
        *installed = true;
        let ns = d
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        kube.delete("apps/v1", "Deployment", Some(&ns), owner);
        let ours = kube.get("v1", "Namespace", None, &ns).is_some_and(|n| {
            n.pointer("/metadata/labels/app.kubernetes.io~1managed-by") == Some(&json!(MANAGER))
        });
        let still_used = releases.iter().any(|r| r.namespace == ns);
        if ours && !still_used {
            kube.delete("v1", "Namespace", None, &ns);
        }
    }
}
