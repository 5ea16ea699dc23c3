//! rbac.authorization.k8s.io/v1: roles, rolebindings and their cluster-wide variants (names are
//! path segments, not DNS names).

use serde_json::{Value, json};

use super::{AGE, NAME, age_cell, col, name_cell, s};
use crate::kube::resources::{BASE, Column, NameRule, ResourceDef};

const RBAC: &str = "rbac.authorization.k8s.io";

const ROLE_COLUMNS: &[Column] = &[NAME, col("Created At", "date", 0)];
const BINDING_COLUMNS: &[Column] = &[NAME, col("Role", "string", 0), AGE];

fn role_cells(o: &Value) -> Vec<Value> {
    vec![name_cell(o), json!(s(o, "/metadata/creationTimestamp"))]
}

fn binding_cells(o: &Value) -> Vec<Value> {
    vec![
        name_cell(o),
        json!(format!(
            "{}/{}",
            s(o, "/roleRef/kind"),
            s(o, "/roleRef/name")
        )),
        age_cell(o),
    ]
}

fn binding_skeleton() -> Value {
    json!({"metadata": {}, "roleRef": {}})
}

/// ClusterRoleBindings.
pub static CLUSTERROLEBINDINGS: ResourceDef = ResourceDef {
    group: RBAC,
    plural: "clusterrolebindings",
    singular: "clusterrolebinding",
    kind: "ClusterRoleBinding",
    namespaced: false,
    name_rule: NameRule::PathSegment,
    skeleton: binding_skeleton,
    columns: BINDING_COLUMNS,
    cells: binding_cells,
    ..BASE
};

/// ClusterRoles.
pub static CLUSTERROLES: ResourceDef = ResourceDef {
    group: RBAC,
    plural: "clusterroles",
    singular: "clusterrole",
    kind: "ClusterRole",
    namespaced: false,
    name_rule: NameRule::PathSegment,
    columns: ROLE_COLUMNS,
    cells: role_cells,
    ..BASE
};

/// RoleBindings.
pub static ROLEBINDINGS: ResourceDef = ResourceDef {
    group: RBAC,
    plural: "rolebindings",
    singular: "rolebinding",
    kind: "RoleBinding",
    name_rule: NameRule::PathSegment,
    skeleton: binding_skeleton,
    columns: BINDING_COLUMNS,
    cells: binding_cells,
    ..BASE
};

/// Roles.
pub static ROLES: ResourceDef = ResourceDef {
    group: RBAC,
    plural: "roles",
    singular: "role",
    kind: "Role",
    name_rule: NameRule::PathSegment,
    columns: ROLE_COLUMNS,
    cells: role_cells,
    ..BASE
};
