//! apps/v1: deployments and replicasets (the workloads with a pod template).

use serde_json::{Value, json};

use super::core::default_pod_spec;
use super::{AGE, NAME, age_cell, cause, col, n, name_cell};
use crate::kube::resources::{BASE, Defaulting, ResourceDef};
use crate::kube::status::Cause;

/// Deployments.
pub static DEPLOYMENTS: ResourceDef = ResourceDef {
    group: "apps",
    plural: "deployments",
    singular: "deployment",
    kind: "Deployment",
    short_names: &["deploy"],
    categories: &["all"],
    has_status: true,
    validate: workload_validate,
    defaults: deployment_defaults,
    skeleton: || json!({"metadata": {}, "spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {}}, "strategy": {}}, "status": {}}),
    generation: true,
    columns: &[
        NAME,
        col("Ready", "string", 0),
        col("Up-to-date", "integer", 0),
        col("Available", "integer", 0),
        AGE,
        col("Containers", "string", 1),
        col("Images", "string", 1),
        col("Selector", "string", 1),
    ],
    cells: deployment_cells,
    ..BASE
};

/// ReplicaSets.
pub static REPLICASETS: ResourceDef = ResourceDef {
    group: "apps",
    plural: "replicasets",
    singular: "replicaset",
    kind: "ReplicaSet",
    short_names: &["rs"],
    categories: &["all"],
    has_status: true,
    validate: workload_validate,
    defaults: |obj, _| workload_defaults(obj, false),
    skeleton: || json!({"metadata": {}, "spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {}}}, "status": {}}),
    generation: true,
    columns: &[
        NAME,
        col("Desired", "integer", 0),
        col("Current", "integer", 0),
        col("Ready", "integer", 0),
        AGE,
    ],
    cells: |o| {
        vec![
            name_cell(o),
            json!(n(o, "/spec/replicas")),
            json!(n(o, "/status/replicas")),
            json!(n(o, "/status/readyReplicas")),
            age_cell(o),
        ]
    },
    ..BASE
};

/// Selector, template labels, containers and replicas of a workload.
fn workload_validate(obj: &Value, causes: &mut Vec<Cause>) {
    let sel = obj.pointer("/spec/selector");
    if sel.is_none() {
        causes.push(cause(
            "FieldValueRequired",
            "spec.selector",
            "Required value".into(),
        ));
    }
    let tmpl_labels = obj
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object);
    if let Some(match_labels) = sel
        .and_then(|s| s.get("matchLabels"))
        .and_then(Value::as_object)
    {
        let ok = match_labels
            .iter()
            .all(|(k, v)| tmpl_labels.and_then(|l| l.get(k)) == Some(v));
        if !ok {
            let shown: Vec<String> = tmpl_labels
                .map(|l| l.iter().map(|(k, v)| format!("{k:?}:{v}")).collect())
                .unwrap_or_default();
            causes.push(cause(
                "FieldValueInvalid",
                "spec.template.metadata.labels",
                format!(
                    "Invalid value: map[string]string{{{}}}: `selector` does not match template `labels`",
                    shown.join(", ")
                ),
            ));
        }
    }
    let containers = obj
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array);
    if containers.is_none_or(Vec::is_empty) {
        causes.push(cause(
            "FieldValueRequired",
            "spec.template.spec.containers",
            "Required value".into(),
        ));
    }
    for (i, c) in containers.into_iter().flatten().enumerate() {
        if c.get("image")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            causes.push(cause(
                "FieldValueRequired",
                &format!("spec.template.spec.containers[{i}].image"),
                "Required value".into(),
            ));
        }
    }
    if obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .is_some_and(|r| r < 0)
    {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.replicas",
            "Invalid value: must be greater than or equal to 0".into(),
        ));
    }
}

fn deployment_defaults(obj: &mut Value, _: &Defaulting) {
    workload_defaults(obj, true);
}

/// Replicas, the pod template's defaults and (for deployments) the rollout settings.
fn workload_defaults(obj: &mut Value, deployment: bool) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    if spec.get("replicas").is_none() {
        spec["replicas"] = json!(1);
    }
    if deployment {
        if spec.get("revisionHistoryLimit").is_none() {
            spec["revisionHistoryLimit"] = json!(10);
        }
        if spec.get("progressDeadlineSeconds").is_none() {
            spec["progressDeadlineSeconds"] = json!(600);
        }
        if spec.get("strategy").is_none_or(|s| s.get("type").is_none()) {
            spec["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}});
        }
    }
    if let Some(ps) = spec.pointer_mut("/template/spec") {
        default_pod_spec(ps);
    }
    if let Some(tm) = spec.get_mut("template").and_then(Value::as_object_mut) {
        // The template's ObjectMeta serialises its zero creationTimestamp as null.
        let meta = tm.entry("metadata").or_insert(json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.entry("creationTimestamp").or_insert(Value::Null);
        }
    }
}

fn deployment_cells(o: &Value) -> Vec<Value> {
    let containers = o
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array);
    let join = |f: &str| {
        containers
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get(f).and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    let selector = o
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    vec![
        name_cell(o),
        json!(format!(
            "{}/{}",
            n(o, "/status/readyReplicas"),
            n(o, "/spec/replicas")
        )),
        json!(n(o, "/status/updatedReplicas")),
        json!(n(o, "/status/availableReplicas")),
        age_cell(o),
        json!(join("name")),
        json!(join("image")),
        json!(selector),
    ]
}
