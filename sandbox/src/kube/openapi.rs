//! A minimal OpenAPI v3 discovery: `/openapi/v3` (the index) and one document per group version
//! with the operations of every served resource. kubectl reads it to learn that the server
//! validates fields itself (`fieldValidation` on PATCH), after which it skips client-side schema
//! validation. Schemas are stubs (`type: object` with the GVK extension): `kubectl explain` and
//! client-side validation against real schemas are not supported.

use serde_json::{Map, Value, json};

use super::resources::{GROUPS, RESOURCES, ResourceDef};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// A stable content hash of a document (FNV-1a, hex), used in `serverRelativeURL`.
fn hash(v: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in serde_json::to_vec(v).unwrap_or_default() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016X}{h:016X}{h:016X}{h:016X}")
}

fn all_gvs() -> Vec<(&'static str, &'static str)> {
    let mut out = vec![("", "v1")];
    out.extend(GROUPS.iter().copied());
    out
}

/// The `/openapi/v3` index.
pub fn index(server_version: &str) -> Value {
    let mut paths = Map::new();
    for (g, v) in all_gvs() {
        let doc = document(g, v, server_version).unwrap_or_default();
        let p = gv_path(g, v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(&doc))}),
        );
    }
    json!({"paths": paths})
}

fn schema_name(def: &ResourceDef) -> String {
    let group = match def.group {
        "" => "core".to_string(),
        g => g.split('.').next().unwrap_or(g).to_string(),
    };
    format!("io.k8s.api.{group}.{}.{}", def.version, def.kind)
}

fn query(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(def: &ResourceDef, action: &str, id: &str, params: &[&str]) -> Value {
    let schema_ref = json!({"$ref": format!("#/components/schemas/{}", schema_name(def))});
    json!({
        "operationId": id,
        "parameters": params.iter().map(|p| query(p)).collect::<Vec<_>>(),
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": schema_ref}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": def.group, "version": def.version, "kind": def.kind},
    })
}

/// The OpenAPI v3 document of one group version (`None` if not served).
pub fn document(group: &str, version: &str, server_version: &str) -> Option<Value> {
    let defs: Vec<&ResourceDef> = RESOURCES
        .iter()
        .copied()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if defs.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let base = format!("/{}", gv_path(group, version));
    for def in defs {
        let kind = def.kind;
        schemas.insert(
            schema_name(def),
            json!({
                "type": "object",
                "description": format!("{kind} (schema not emulated)"),
                "x-kubernetes-group-version-kind": [{"group": def.group, "version": def.version, "kind": kind}],
            }),
        );
        let collection = if def.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", def.plural)
        } else {
            format!("{base}/{}", def.plural)
        };
        let write = ["dryRun", "fieldManager", "fieldValidation"];
        let mut coll = Map::new();
        if def.verbs.contains(&"create") {
            coll.insert(
                "post".into(),
                operation(def, "post", &format!("create{kind}"), &write),
            );
        }
        if def.verbs.contains(&"list") {
            coll.insert(
                "get".into(),
                operation(
                    def,
                    "list",
                    &format!("list{kind}"),
                    &[
                        "labelSelector",
                        "fieldSelector",
                        "limit",
                        "continue",
                        "resourceVersion",
                        "watch",
                    ],
                ),
            );
        }
        paths.insert(collection.clone(), Value::Object(coll));
        if def.verbs.contains(&"get") {
            let item = format!("{collection}/{{name}}");
            paths.insert(
                item,
                json!({
                    "get": operation(def, "get", &format!("read{kind}"), &[]),
                    "put": operation(def, "put", &format!("replace{kind}"), &write),
                    "patch": operation(def, "patch", &format!("patch{kind}"), &["dryRun", "fieldManager", "fieldValidation", "force"]),
                    "delete": operation(def, "delete", &format!("delete{kind}"), &["dryRun", "propagationPolicy"]),
                }),
            );
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": server_version},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
