//! The groups with one kind each: coordination.k8s.io/v1 leases and authorization.k8s.io/v1
//! selfsubjectaccessreviews.

use serde_json::{Value, json};

use super::{AGE, NAME, age_cell, col, name_cell, s};
use crate::kube::Caller;
use crate::kube::resources::{BASE, ResourceDef};

/// Leases (stored as v1beta1 by a v1.20 server).
pub static LEASES: ResourceDef = ResourceDef {
    group: "coordination.k8s.io",
    plural: "leases",
    singular: "lease",
    kind: "Lease",
    storage_version: "v1beta1",
    skeleton: || json!({"metadata": {}, "spec": {}}),
    columns: &[NAME, col("Holder", "string", 0), AGE],
    cells: |o| {
        vec![
            name_cell(o),
            json!(s(o, "/spec/holderIdentity")),
            age_cell(o),
        ]
    },
    ..BASE
};

/// SelfSubjectAccessReviews: create only, answered from the caller, never stored; every
/// authenticated user may create them.
pub static SELFSUBJECTACCESSREVIEWS: ResourceDef = ResourceDef {
    group: "authorization.k8s.io",
    plural: "selfsubjectaccessreviews",
    singular: "selfsubjectaccessreview",
    kind: "SelfSubjectAccessReview",
    namespaced: false,
    verbs: &["create"],
    public_verbs: &["create"],
    virtual_create: Some(access_review),
    ..BASE
};

fn access_review(caller: Caller, mut obj: Value) -> Value {
    obj["apiVersion"] = json!("authorization.k8s.io/v1");
    obj["kind"] = json!("SelfSubjectAccessReview");
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]["creationTimestamp"] = Value::Null;
    obj["status"] = match caller {
        Caller::Admin => json!({
            "allowed": true,
            "reason": "RBAC: allowed by ClusterRoleBinding \"cluster-admin\" of ClusterRole \"cluster-admin\" to Group \"system:masters\""
        }),
        Caller::NoRights => json!({"allowed": false}),
    };
    obj
}
