//! Copying one onboarded cluster's state to others: how a benchmark gets a large onboarded fleet
//! (onboarding each cluster for real would mostly measure RSA-4096 key generation).

use crate::Sandbox;
use axum::body::Body;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

impl Sandbox {
    /// Copies the onboarding of cluster `from` (its `azure-arc` namespace with the Secrets,
    /// ConfigMaps and Deployments in it, and its connected cluster with the same agent public key)
    /// to each `(cluster, subscription, resource group)` of `to`, then waits up to `timeout` until
    /// the simulated agents report every one of them Connected. The copies' `azure-clusterconfig`
    /// names their own cluster, subscription and resource group. Writes go to the emulators directly, past fault injection.
    pub async fn copy_onboarding(
        &self,
        from: &str,
        to: &[(String, String, String)],
        timeout: Duration,
    ) -> Result<(), String> {
        let first = self
            .kube_for(from)
            .ok_or_else(|| format!("no cluster {from}"))?;
        let mut objects: Vec<Value> = Vec::new();
        objects.extend(first.get("v1", "Namespace", None, "azure-arc"));
        for kind in ["Secret", "ConfigMap"] {
            objects.extend(first.list("v1", kind, Some("azure-arc")));
        }
        objects.extend(first.list("apps/v1", "Deployment", Some("azure-arc")));
        for o in &mut objects {
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                for k in [
                    "uid",
                    "resourceVersion",
                    "creationTimestamp",
                    "managedFields",
                    "generation",
                ] {
                    m.remove(k);
                }
            }
            if let Some(obj) = o.as_object_mut() {
                obj.remove("status");
            }
        }
        let (_, _, cc) = self
            .arm()
            .connected_clusters()
            .into_iter()
            .find(|c| c.2["name"] == from)
            .ok_or_else(|| format!("{from} has no connected cluster"))?;
        let body = json!({
            "location": cc["location"],
            "tags": cc["tags"],
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "agentPublicKeyCertificate": cc["properties"]["agentPublicKeyCertificate"],
                "distribution": cc["properties"]["distribution"],
                "infrastructure": cc["properties"]["infrastructure"],
            },
        });
        let token = self.mint_token(&self.default_claims(Duration::from_secs(3600)));
        let router = self.arm().router();
        for (name, sub, rg) in to {
            let kube = self
                .kube_for(name)
                .ok_or_else(|| format!("no cluster {name}"))?;
            for o in &objects {
                let mut o = o.clone();
                if o["kind"] == "ConfigMap" && o["metadata"]["name"] == "azure-clusterconfig" {
                    o["data"]["AZURE_RESOURCE_NAME"] = json!(name);
                    o["data"]["AZURE_RESOURCE_GROUP"] = json!(rg);
                    o["data"]["AZURE_SUBSCRIPTION_ID"] = json!(sub);
                }
                kube.put(o).map_err(|e| format!("{name}: {e:?}"))?;
            }
            let uri = format!(
                "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Kubernetes/connectedClusters/{name}?api-version=2026-05-01"
            );
            let req = axum::http::Request::builder()
                .method("PUT")
                .uri(uri)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .map_err(|e| e.to_string())?;
            let resp = router
                .clone()
                .oneshot(req)
                .await
                .map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("{name}: connected cluster {}", resp.status()));
            }
        }
        let names: std::collections::HashSet<&str> =
            to.iter().map(|(n, _, _)| n.as_str()).collect();
        let started = Instant::now();
        loop {
            let connected = self
                .arm()
                .connected_clusters()
                .iter()
                .filter(|c| {
                    c.2["properties"]["connectivityStatus"] == "Connected"
                        && c.2["name"].as_str().is_some_and(|n| names.contains(n))
                })
                .count();
            if connected == to.len() {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(format!("only {connected}/{} connected", to.len()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
