//! batch/v1: Jobs (the workloads that run to completion: arcplan's Indexed Job of shards and
//! its in-cluster Job). Defaulting and validation as a v1.20 API server does them; the emulator
//! runs no Job controller (a Job's pods are not started).

use serde_json::{Value, json};

use super::core::default_pod_spec;
use super::{AGE, NAME, age_cell, cause, col, n, name_cell};
use crate::kube::resources::{BASE, Defaulting, ResourceDef};
use crate::kube::status::Cause;

/// Jobs.
pub static JOBS: ResourceDef = ResourceDef {
    group: "batch",
    plural: "jobs",
    singular: "job",
    kind: "Job",
    categories: &["all"],
    has_status: true,
    validate: job_validate,
    defaults: job_defaults,
    skeleton: || json!({"metadata": {}, "spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {}}}, "status": {}}),
    generation: true,
    columns: &[
        NAME,
        col("Completions", "string", 0),
        col("Duration", "string", 0),
        AGE,
    ],
    cells: |o| {
        vec![
            name_cell(o),
            json!(format!(
                "{}/{}",
                n(o, "/status/succeeded"),
                n(o, "/spec/completions")
            )),
            json!(""),
            age_cell(o),
        ]
    },
    ..BASE
};

/// Completions and parallelism 1, backoffLimit 6, and the pod template's defaults (whose
/// `restartPolicy: Always` a Job then refuses, as a real server does when none is given).
fn job_defaults(obj: &mut Value, _: &Defaulting) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    for (k, v) in [("completions", 1), ("parallelism", 1), ("backoffLimit", 6)] {
        if spec.get(k).is_none() {
            spec[k] = json!(v);
        }
    }
    if let Some(ps) = spec.pointer_mut("/template/spec") {
        default_pod_spec(ps);
    }
    if let Some(m) = spec
        .pointer_mut("/template")
        .and_then(Value::as_object_mut)
        .map(|t| t.entry("metadata").or_insert(json!({})))
        .and_then(Value::as_object_mut)
    {
        m.entry("creationTimestamp").or_insert(Value::Null);
    }
}

fn job_validate(obj: &Value, causes: &mut Vec<Cause>) {
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
        for f in ["name", "image"] {
            if c.get(f).and_then(Value::as_str).is_none_or(str::is_empty) {
                causes.push(cause(
                    "FieldValueRequired",
                    &format!("spec.template.spec.containers[{i}].{f}"),
                    "Required value".into(),
                ));
            }
        }
    }
    let policy = obj
        .pointer("/spec/template/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if !matches!(policy, "OnFailure" | "Never") {
        causes.push(cause(
            "FieldValueNotSupported",
            "spec.template.spec.restartPolicy",
            format!("Unsupported value: \"{policy}\": supported values: \"OnFailure\", \"Never\""),
        ));
    }
    for f in ["completions", "parallelism", "backoffLimit"] {
        if obj
            .pointer(&format!("/spec/{f}"))
            .and_then(Value::as_i64)
            .is_some_and(|v| v < 0)
        {
            causes.push(cause(
                "FieldValueInvalid",
                &format!("spec.{f}"),
                "Invalid value: must be greater than or equal to 0".into(),
            ));
        }
    }
}
