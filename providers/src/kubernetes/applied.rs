//! What arcplan last applied to a cluster's agents, recorded in the cluster itself (arcplan has
//! no state file): the annotation `arcplan.io/applied-digest` of the ownership ConfigMap
//! `azure-arc/azure-clusterconfig` holds the [`arcplan_engine::plan::desired_digest`] of the
//! `k8s.arcAgents` attributes of the last successful apply. `read` reports it with the
//! ConfigMap's data (one request, the one the ownership check makes anyway), and the planner
//! calls a difference drift when the configuration still has that digest.

use super::access::{Cluster, is_not_found};
use super::{CONFIG_MAP, FIELD_MANAGER, NAMESPACE};
use arcplan_engine::diag::Diagnostic;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Map, Value, json};

/// The annotation holding the digest.
pub const APPLIED_ANNOTATION: &str = "arcplan.io/applied-digest";

/// The ownership ConfigMap's data and the recorded digest (`None`: no ConfigMap).
pub(crate) async fn read_record(
    cluster: &Cluster,
) -> Result<Option<(Map<String, Value>, Option<String>)>, Diagnostic> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let cm = api
        .get_opt(CONFIG_MAP)
        .await
        .map_err(|e| cluster.api_error(&format!("read ConfigMap {NAMESPACE}/{CONFIG_MAP}"), &e))?;
    Ok(cm.map(|c| {
        let digest = c
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(APPLIED_ANNOTATION))
            .cloned();
        let data = c
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        (data, digest)
    }))
}

/// Records `digest` after a successful apply. A cluster without the ConfigMap (an installer
/// that did not write it) keeps no record: its differences are then never called drift.
pub(crate) async fn record(cluster: &Cluster, digest: &str) -> Result<(), Diagnostic> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let patch = json!({"metadata": {"annotations": {APPLIED_ANNOTATION: digest}}});
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match api.patch(CONFIG_MAP, &pp, &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(cluster.api_error(
            &format!("record the applied digest on ConfigMap {NAMESPACE}/{CONFIG_MAP}"),
            &e,
        )),
    }
}
