//! `meta.k8s.io/v1` Table rendering (what `kubectl get` asks for), with the columns the real
//! server prints for the built-in kinds.

use serde_json::{Value, json};

use super::resources::ResourceDef;

fn col(name: &str, ty: &str, format: &str, priority: i32) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": name, "priority": priority})
}

/// kubectl's `duration.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    if s < 120 {
        return format!("{s}s");
    }
    let m = s / 60;
    if m < 10 {
        let rs = s % 60;
        return if rs == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{rs}s")
        };
    }
    if m < 180 {
        return format!("{m}m");
    }
    let h = s / 3600;
    if h < 8 {
        let rm = m % 60;
        return if rm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{rm}m")
        };
    }
    if h < 48 {
        return format!("{h}h");
    }
    let d = h / 24;
    if h < 24 * 8 {
        let rh = h % 24;
        return if rh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{rh}h")
        };
    }
    if d < 365 * 2 {
        return format!("{d}d");
    }
    format!("{}y", d / 365)
}

fn age(obj: &Value) -> String {
    let Some(ts) = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
    else {
        return "<unknown>".into();
    };
    match time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339) {
        Ok(t) => human_duration((time::OffsetDateTime::now_utc() - t).whole_seconds()),
        Err(_) => "<unknown>".into(),
    }
}

fn s<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

fn n(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn len(obj: &Value, ptr: &str) -> usize {
    match obj.pointer(ptr) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

fn columns(kind: &str) -> Vec<Value> {
    let name = col("Name", "string", "name", 0);
    let age = col("Age", "string", "", 0);
    match kind {
        "Namespace" => vec![name, col("Status", "string", "", 0), age],
        "Pod" => vec![
            name,
            col("Ready", "string", "", 0),
            col("Status", "string", "", 0),
            col("Restarts", "string", "", 0),
            age,
            col("IP", "string", "", 1),
            col("Node", "string", "", 1),
        ],
        "Deployment" => vec![
            name,
            col("Ready", "string", "", 0),
            col("Up-to-date", "integer", "", 0),
            col("Available", "integer", "", 0),
            age,
            col("Containers", "string", "", 1),
            col("Images", "string", "", 1),
            col("Selector", "string", "", 1),
        ],
        "ReplicaSet" => vec![
            name,
            col("Desired", "integer", "", 0),
            col("Current", "integer", "", 0),
            col("Ready", "integer", "", 0),
            age,
        ],
        "ConfigMap" => vec![name, col("Data", "integer", "", 0), age],
        "Secret" => vec![
            name,
            col("Type", "string", "", 0),
            col("Data", "integer", "", 0),
            age,
        ],
        "ServiceAccount" => vec![name, col("Secrets", "integer", "", 0), age],
        "Node" => vec![
            name,
            col("Status", "string", "", 0),
            col("Roles", "string", "", 0),
            age,
            col("Version", "string", "", 0),
        ],
        "Service" => vec![
            name,
            col("Type", "string", "", 0),
            col("Cluster-IP", "string", "", 0),
            col("External-IP", "string", "", 0),
            col("Port(s)", "string", "", 0),
            age,
        ],
        "Lease" => vec![name, col("Holder", "string", "", 0), age],
        "RoleBinding" | "ClusterRoleBinding" => vec![name, col("Role", "string", "", 0), age],
        "Role" | "ClusterRole" => vec![name, col("Created At", "date", "", 0)],
        _ => vec![name, age],
    }
}

fn cells(kind: &str, o: &Value) -> Vec<Value> {
    let name = json!(s(o, "/metadata/name"));
    let a = json!(age(o));
    match kind {
        "Namespace" => vec![name, json!(s(o, "/status/phase")), a],
        "Pod" => {
            let total = len(o, "/spec/containers");
            let ready = o
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .filter(|c| c.get("ready") == Some(&json!(true)))
                        .count()
                })
                .unwrap_or(0);
            let status = if o.pointer("/metadata/deletionTimestamp").is_some() {
                "Terminating"
            } else {
                s(o, "/status/phase")
            };
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(status),
                json!("0"),
                a,
                json!(s(o, "/status/podIP")),
                json!(s(o, "/spec/nodeName")),
            ]
        }
        "Deployment" => {
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
                name,
                json!(format!(
                    "{}/{}",
                    n(o, "/status/readyReplicas"),
                    n(o, "/spec/replicas")
                )),
                json!(n(o, "/status/updatedReplicas")),
                json!(n(o, "/status/availableReplicas")),
                a,
                json!(join("name")),
                json!(join("image")),
                json!(selector),
            ]
        }
        "ReplicaSet" => vec![
            name,
            json!(n(o, "/spec/replicas")),
            json!(n(o, "/status/replicas")),
            json!(n(o, "/status/readyReplicas")),
            a,
        ],
        "ConfigMap" => vec![name, json!(len(o, "/data") + len(o, "/binaryData")), a],
        "Secret" => vec![name, json!(s(o, "/type")), json!(len(o, "/data")), a],
        "ServiceAccount" => vec![name, json!(len(o, "/secrets")), a],
        "Node" => {
            let ready = o
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| c.get("type") == Some(&json!("Ready"))))
                .map(|c| {
                    if c.get("status") == Some(&json!("True")) {
                        "Ready"
                    } else {
                        "NotReady"
                    }
                })
                .unwrap_or("Unknown");
            vec![
                name,
                json!(ready),
                json!("<none>"),
                a,
                json!(s(o, "/status/nodeInfo/kubeletVersion")),
            ]
        }
        "Service" => {
            let ports = o
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                p.get("port").and_then(Value::as_i64).unwrap_or(0),
                                s(p, "/protocol")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let ip = s(o, "/spec/clusterIP");
            vec![
                name,
                json!(s(o, "/spec/type")),
                json!(if ip.is_empty() { "<none>" } else { ip }),
                json!("<none>"),
                json!(if ports.is_empty() {
                    "<none>".to_string()
                } else {
                    ports
                }),
                a,
            ]
        }
        "Lease" => vec![name, json!(s(o, "/spec/holderIdentity")), a],
        "RoleBinding" | "ClusterRoleBinding" => vec![
            name,
            json!(format!(
                "{}/{}",
                s(o, "/roleRef/kind"),
                s(o, "/roleRef/name")
            )),
            a,
        ],
        "Role" | "ClusterRole" => vec![name, json!(s(o, "/metadata/creationTimestamp"))],
        _ => vec![name, a],
    }
}

/// Renders objects as a Table. `include` is `None`, `Metadata` (default) or `Object`.
pub fn table(
    def: &ResourceDef,
    objects: &[&Value],
    resource_version: &str,
    include: &str,
    cont: Option<&str>,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(def.kind, o)});
            match include {
                "None" => {}
                "Object" => row["object"] = (*o).clone(),
                _ => {
                    let mut meta = o.get("metadata").cloned().unwrap_or(json!({}));
                    if let Some(m) = meta.as_object_mut() {
                        m.remove("managedFields");
                    }
                    row["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta});
                }
            }
            row
        })
        .collect();
    let mut meta = json!({"resourceVersion": resource_version});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns(def.kind),
        "rows": rows,
    })
}
