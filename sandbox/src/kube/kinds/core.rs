//! core/v1: configmaps, events, namespaces, nodes, pods, secrets, serviceaccounts, services.

use base64::Engine;
use serde_json::{Value, json};

use super::{AGE, NAME, age_cell, cause, col, len, name_cell, s, spec_status_skeleton};
use crate::kube::resources::{
    BASE, Column, Defaulting, Deletion, NO_COLLECTION_DELETE, NameRule, ResourceDef,
};
use crate::kube::status::Cause;

/// ConfigMaps.
pub static CONFIGMAPS: ResourceDef = ResourceDef {
    plural: "configmaps",
    singular: "configmap",
    kind: "ConfigMap",
    short_names: &["cm"],
    columns: &[NAME, col("Data", "integer", 0), AGE],
    cells: |o| {
        vec![
            name_cell(o),
            json!(len(o, "/data") + len(o, "/binaryData")),
            age_cell(o),
        ]
    },
    ..BASE
};

/// Events.
pub static EVENTS: ResourceDef = ResourceDef {
    plural: "events",
    singular: "event",
    kind: "Event",
    short_names: &["ev"],
    field_selectors: &[
        "involvedObject.name",
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.uid",
        "reason",
        "type",
    ],
    ..BASE
};

/// Namespaces: terminated rather than removed by DELETE, with a `finalize` subresource.
pub static NAMESPACES: ResourceDef = ResourceDef {
    plural: "namespaces",
    singular: "namespace",
    kind: "Namespace",
    namespaced: false,
    verbs: NO_COLLECTION_DELETE,
    short_names: &["ns"],
    has_status: true,
    has_finalize: true,
    name_rule: NameRule::DnsLabel,
    defaults: namespace_defaults,
    skeleton: spec_status_skeleton,
    deletion: Deletion::Terminate {
        protected: &["default", "kube-system", "kube-public"],
    },
    delete_returns_object: true,
    field_selectors: &["status.phase"],
    columns: &[NAME, col("Status", "string", 0), AGE],
    cells: |o| vec![name_cell(o), json!(s(o, "/status/phase")), age_cell(o)],
    ..BASE
};

fn namespace_defaults(obj: &mut Value, d: &Defaulting) {
    if d.namespace_name_label {
        let name = s(obj, "/metadata/name").to_string();
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        let labels = obj["metadata"]
            .as_object_mut()
            .map(|m| m.entry("labels").or_insert(json!({})));
        if let Some(Value::Object(l)) = labels {
            l.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    if obj.pointer("/spec/finalizers").is_none() && d.create {
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
    }
    if obj.pointer("/status/phase").is_none() {
        obj["status"] = json!({"phase": "Active"});
    }
}

/// Nodes.
pub static NODES: ResourceDef = ResourceDef {
    plural: "nodes",
    singular: "node",
    kind: "Node",
    namespaced: false,
    short_names: &["no"],
    has_status: true,
    skeleton: spec_status_skeleton,
    field_selectors: &["spec.unschedulable"],
    columns: &[
        NAME,
        col("Status", "string", 0),
        col("Roles", "string", 0),
        AGE,
        col("Version", "string", 0),
    ],
    cells: node_cells,
    ..BASE
};

fn node_cells(o: &Value) -> Vec<Value> {
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
        name_cell(o),
        json!(ready),
        json!("<none>"),
        age_cell(o),
        json!(s(o, "/status/nodeInfo/kubeletVersion")),
    ]
}

/// Pods.
pub static PODS: ResourceDef = ResourceDef {
    plural: "pods",
    singular: "pod",
    kind: "Pod",
    short_names: &["po"],
    categories: &["all"],
    has_status: true,
    defaults: pod_defaults,
    skeleton: spec_status_skeleton,
    delete_returns_object: true,
    field_selectors: &["spec.nodeName", "status.phase"],
    columns: &[
        NAME,
        col("Ready", "string", 0),
        col("Status", "string", 0),
        col("Restarts", "string", 0),
        AGE,
        col("IP", "string", 1),
        col("Node", "string", 1),
    ],
    cells: pod_cells,
    ..BASE
};

fn pod_defaults(obj: &mut Value, _: &Defaulting) {
    if let Some(ps) = obj.get_mut("spec") {
        default_pod_spec(ps);
    }
    if obj.pointer("/status/phase").is_none() {
        obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
    }
}

/// The defaults of a PodSpec (pods and the templates of workloads).
pub fn default_pod_spec(spec: &mut Value) {
    let Some(s) = spec.as_object_mut() else {
        return;
    };
    s.entry("restartPolicy").or_insert(json!("Always"));
    s.entry("terminationGracePeriodSeconds")
        .or_insert(json!(30));
    s.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    s.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    s.entry("securityContext").or_insert(json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = s.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                c.entry("terminationMessagePath")
                    .or_insert(json!("/dev/termination-log"));
                c.entry("terminationMessagePolicy").or_insert(json!("File"));
                c.entry("resources").or_insert(json!({}));
                if !c.contains_key("imagePullPolicy") {
                    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
                    let last = image.rsplit('/').next().unwrap_or_default();
                    let latest = !last.contains(':') || last.ends_with(":latest");
                    let pol = if latest && !image.contains('@') {
                        "Always"
                    } else {
                        "IfNotPresent"
                    };
                    c.insert("imagePullPolicy".into(), json!(pol));
                }
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        p.entry("protocol").or_insert(json!("TCP"));
                    }
                }
            }
        }
    }
}

fn pod_cells(o: &Value) -> Vec<Value> {
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
        name_cell(o),
        json!(format!("{ready}/{total}")),
        json!(status),
        json!("0"),
        age_cell(o),
        json!(s(o, "/status/podIP")),
        json!(s(o, "/spec/nodeName")),
    ]
}

/// Secrets: `stringData` folded into `data`, `data` must be base64.
pub static SECRETS: ResourceDef = ResourceDef {
    plural: "secrets",
    singular: "secret",
    kind: "Secret",
    validate: secret_validate,
    defaults: secret_defaults,
    field_selectors: &["type"],
    columns: &[
        NAME,
        col("Type", "string", 0),
        col("Data", "integer", 0),
        AGE,
    ],
    cells: |o| {
        vec![
            name_cell(o),
            json!(s(o, "/type")),
            json!(len(o, "/data")),
            age_cell(o),
        ]
    },
    ..BASE
};

fn secret_validate(obj: &Value, causes: &mut Vec<Cause>) {
    for (k, v) in obj
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let ok = v
            .as_str()
            .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok());
        if !ok {
            causes.push(cause(
                "FieldValueInvalid",
                &format!("data[{k}]"),
                "Invalid value: illegal base64 data".into(),
            ));
        }
    }
}

fn secret_defaults(obj: &mut Value, _: &Defaulting) {
    if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|o| o.remove("stringData")) {
        let data = obj
            .as_object_mut()
            .map(|o| o.entry("data").or_insert(json!({})));
        if let Some(Value::Object(d)) = data {
            for (k, v) in sd {
                let s = v.as_str().unwrap_or_default();
                d.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(s)),
                );
            }
        }
    }
    if obj.get("type").is_none() {
        obj["type"] = json!("Opaque");
    }
}

/// ServiceAccounts.
pub static SERVICEACCOUNTS: ResourceDef = ResourceDef {
    plural: "serviceaccounts",
    singular: "serviceaccount",
    kind: "ServiceAccount",
    short_names: &["sa"],
    columns: &[NAME, col("Secrets", "integer", 0), AGE],
    cells: |o| vec![name_cell(o), json!(len(o, "/secrets")), age_cell(o)],
    ..BASE
};

const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    col("Type", "string", 0),
    col("Cluster-IP", "string", 0),
    col("External-IP", "string", 0),
    col("Port(s)", "string", 0),
    AGE,
];

/// Services.
pub static SERVICES: ResourceDef = ResourceDef {
    plural: "services",
    singular: "service",
    kind: "Service",
    // No deletecollection for services in v1.20 (added in v1.27).
    verbs: NO_COLLECTION_DELETE,
    short_names: &["svc"],
    categories: &["all"],
    has_status: true,
    defaults: service_defaults,
    skeleton: spec_status_skeleton,
    delete_returns_object: true,
    columns: SERVICE_COLUMNS,
    cells: service_cells,
    ..BASE
};

fn service_defaults(obj: &mut Value, _: &Defaulting) {
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.entry("type").or_insert(json!("ClusterIP"));
        spec.entry("sessionAffinity").or_insert(json!("None"));
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                p.entry("protocol").or_insert(json!("TCP"));
                if let Some(port) = p.get("port").cloned() {
                    p.entry("targetPort").or_insert(port);
                }
            }
        }
    }
    if obj.get("status").is_none() {
        obj["status"] = json!({"loadBalancer": {}});
    }
}

fn service_cells(o: &Value) -> Vec<Value> {
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
        name_cell(o),
        json!(s(o, "/spec/type")),
        json!(if ip.is_empty() { "<none>" } else { ip }),
        json!("<none>"),
        json!(if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports
        }),
        age_cell(o),
    ]
}
