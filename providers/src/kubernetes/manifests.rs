//! The `manifests` installer's object set and its field-by-field diff.
//!
//! The set is either the built-in agent set (namespace `azure-arc`, the ownership ConfigMap and
//! one Deployment per Arc agent) or a rendered manifest file (multi-document YAML such as `helm
//! template` output) plus the ownership ConfigMap. Every object carries the label
//! `app.kubernetes.io/managed-by=arcplan`; it is applied with server-side apply (field manager
//! `arcplan`) and compared with the live object only on the fields the set declares, so server
//! defaults never show as changes. Secret values are compared and shown by digest, never by
//! value.
//!
//! This module is pure: building, parsing, ordering and diffing. Talking to the cluster is
//! [`super::installer::manifests`]' job.

use super::{AGENTS, AgentFeatures, CONFIG_MAP, MANAGED_BY_LABEL, NAMESPACE};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// One object of the set.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObject {
    /// `v1`, `apps/v1`, ...
    pub api_version: String,
    /// `Deployment`, ...
    pub kind: String,
    /// The namespace as written (`None`: cluster-scoped, or the default `azure-arc` once the
    /// kind is known to be namespaced).
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// The whole object as it will be applied.
    pub body: Value,
}

impl DesiredObject {
    fn from_value(mut body: Value, origin: &str) -> Result<DesiredObject, String> {
        let s = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let api_version = s(&body, "/apiVersion")
            .ok_or_else(|| format!("{origin}: the object has no apiVersion"))?;
        let kind = s(&body, "/kind").ok_or_else(|| format!("{origin}: the object has no kind"))?;
        let name = s(&body, "/metadata/name")
            .ok_or_else(|| format!("{origin}: the {kind} has no metadata.name"))?;
        let namespace = s(&body, "/metadata/namespace");
        if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
            let labels = meta
                .entry("labels")
                .or_insert_with(|| Value::Object(Map::new()));
            if !labels.is_object() {
                *labels = Value::Object(Map::new());
            }
            if let Some(l) = labels.as_object_mut() {
                l.insert(MANAGED_BY_LABEL.0.into(), MANAGED_BY_LABEL.1.into());
            }
        }
        if kind == "Secret" {
            string_data_to_data(&mut body);
        }
        Ok(DesiredObject {
            api_version,
            kind,
            namespace,
            name,
            body,
        })
    }

    /// A stable identifier: `apps/v1 Deployment azure-arc/config-agent`, `v1 Namespace azure-arc`.
    pub fn id(&self) -> String {
        object_id(
            &self.api_version,
            &self.kind,
            self.namespace.as_deref(),
            &self.name,
        )
    }

    /// The API group (`""` for core).
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }

    /// The API version without the group.
    pub fn version(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map(|(_, v)| v)
            .unwrap_or(&self.api_version)
    }

    /// Sets the namespace (for namespaced kinds written without one).
    pub fn set_namespace(&mut self, ns: Option<&str>) {
        self.namespace = ns.map(str::to_owned);
        if let Some(meta) = self.body.get_mut("metadata").and_then(Value::as_object_mut) {
            match ns {
                Some(n) => {
                    meta.insert("namespace".into(), n.into());
                }
                None => {
                    meta.remove("namespace");
                }
            }
        }
    }
}

/// `apiVersion kind namespace/name` (or `apiVersion kind name`).
pub fn object_id(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{api_version} {kind} {ns}/{name}"),
        None => format!("{api_version} {kind} {name}"),
    }
}

/// `kind namespace/name`, for messages.
pub fn short_id(o: &DesiredObject) -> String {
    match &o.namespace {
        Some(ns) => format!("{} {ns}/{}", o.kind, o.name),
        None => format!("{} {}", o.kind, o.name),
    }
}

/// The image of a built-in agent.
pub fn agent_image(agent: &str, version: &str) -> String {
    format!("mcr.microsoft.com/azurearck8s/{agent}:{version}")
}

/// The namespace object both resource types apply.
pub fn namespace_object(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {MANAGED_BY_LABEL.0: MANAGED_BY_LABEL.1}},
    })
}

/// The ownership ConfigMap with `data`.
pub fn config_map_object(data: &Map<String, Value>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": NAMESPACE},
        "data": data,
    })
}

/// The optional agent of the cluster-connect feature.
pub const CLUSTER_CONNECT_AGENT: &str = "clusterconnect-agent";
/// The ClusterRoleBinding of the custom-locations feature: what the chart's
/// `systemDefaultValues.customLocations` grants the Custom Locations service principal, so the
/// service can create a custom location's namespace and resources in the cluster.
pub const CUSTOM_LOCATIONS_BINDING: &str = "azure-arc-custom-locations";

/// The built-in agent set: namespace `azure-arc`, the ConfigMap, one Deployment per agent,
/// plus what the agents' features add (the `clusterconnect-agent` Deployment, the custom
/// locations binding).
pub fn builtin_objects(
    version: &str,
    config_data: &Map<String, Value>,
    features: &AgentFeatures,
) -> Vec<DesiredObject> {
    let mut out = vec![namespace_object(NAMESPACE), config_map_object(config_data)];
    let connect = (features.cluster_connect == Some(true)).then_some(CLUSTER_CONNECT_AGENT);
    for agent in AGENTS.into_iter().chain(connect) {
        out.push(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": agent,
                "namespace": NAMESPACE,
                "labels": {"app.kubernetes.io/name": agent, "app.kubernetes.io/part-of": "azure-arc-k8sagents"},
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": agent}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": agent}},
                    "spec": {
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "containers": [{"name": agent, "image": agent_image(agent, version)}],
                    },
                },
            },
        }));
    }
    if let Some(oid) = &features.custom_locations_oid {
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": CUSTOM_LOCATIONS_BINDING},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": oid}],
        }));
    }
    out.into_iter()
        .filter_map(|v| DesiredObject::from_value(v, "built-in agent set").ok())
        .collect()
}

/// Parses a rendered manifest file (multi-document YAML; `kind: List` documents are flattened;
/// empty documents are skipped), then adds namespace `azure-arc` and the ownership ConfigMap
/// unless the file has them (a ConfigMap `azure-clusterconfig` in the file gets the ownership
/// keys merged into its data).
pub fn parse_manifests(
    text: &str,
    file: &str,
    config_data: &Map<String, Value>,
) -> Result<Vec<DesiredObject>, String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| format!("{file} is not valid multi-document YAML: {e}"))?;
    let mut out: Vec<DesiredObject> = Vec::new();
    let mut pending: Vec<(usize, Value)> = docs.into_iter().enumerate().collect();
    pending.reverse();
    while let Some((i, doc)) = pending.pop() {
        let origin = format!("{file}, document {}", i + 1);
        match doc {
            Value::Null => continue,
            Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                if let Some(items) = m.get("items").and_then(Value::as_array) {
                    for item in items.iter().rev() {
                        pending.push((i, item.clone()));
                    }
                }
            }
            Value::Object(_) => out.push(DesiredObject::from_value(doc, &origin)?),
            _ => return Err(format!("{origin} is not a Kubernetes object (a mapping)")),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for o in &out {
        if !seen.insert(o.id()) {
            return Err(format!("{file} declares {} twice", short_id(o)));
        }
    }
    if !out
        .iter()
        .any(|o| o.kind == "Namespace" && o.name == NAMESPACE)
    {
        out.insert(
            0,
            DesiredObject::from_value(namespace_object(NAMESPACE), file)?,
        );
    }
    match out.iter_mut().find(|o| {
        o.kind == "ConfigMap"
            && o.name == CONFIG_MAP
            && o.namespace.as_deref().unwrap_or(NAMESPACE) == NAMESPACE
    }) {
        Some(cm) => {
            let data = cm
                .body
                .as_object_mut()
                .map(|m| m.entry("data").or_insert_with(|| json!({})));
            if let Some(Value::Object(d)) = data {
                for (k, v) in config_data {
                    d.insert(k.clone(), v.clone());
                }
            }
        }
        None => out.push(DesiredObject::from_value(
            config_map_object(config_data),
            file,
        )?),
    }
    Ok(out)
}

/// Order of application: namespaces first, workloads last.
pub fn apply_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        "ServiceAccount" | "Secret" | "ConfigMap" => 2,
        "ClusterRole" | "Role" => 3,
        "ClusterRoleBinding" | "RoleBinding" => 4,
        "Service" => 5,
        "Deployment" | "DaemonSet" | "StatefulSet" | "Job" | "CronJob" => 7,
        _ => 6,
    }
}

/// Well-known kinds: (plural, namespaced). Others are looked up through discovery.
pub fn known_kind(api_version: &str, kind: &str) -> Option<(&'static str, bool)> {
    Some(match (api_version, kind) {
        ("v1", "Namespace") => ("namespaces", false),
        ("v1", "ConfigMap") => ("configmaps", true),
        ("v1", "Secret") => ("secrets", true),
        ("v1", "ServiceAccount") => ("serviceaccounts", true),
        ("v1", "Service") => ("services", true),
        ("apps/v1", "Deployment") => ("deployments", true),
        ("apps/v1", "DaemonSet") => ("daemonsets", true),
        ("apps/v1", "StatefulSet") => ("statefulsets", true),
        ("rbac.authorization.k8s.io/v1", "Role") => ("roles", true),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => ("rolebindings", true),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => ("clusterroles", false),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => ("clusterrolebindings", false),
        ("batch/v1", "Job") => ("jobs", true),
        ("batch/v1", "CronJob") => ("cronjobs", true),
        ("coordination.k8s.io/v1", "Lease") => ("leases", true),
        _ => return None,
    })
}

fn string_data_to_data(body: &mut Value) {
    let Some(obj) = body.as_object_mut() else {
        return;
    };
    let Some(Value::Object(sd)) = obj.remove("stringData") else {
        return;
    };
    let data = obj.entry("data").or_insert_with(|| json!({}));
    if let Some(d) = data.as_object_mut() {
        for (k, v) in sd {
            let text = v
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            d.insert(
                k,
                base64::engine::general_purpose::STANDARD
                    .encode(text)
                    .into(),
            );
        }
    }
}

/// Replaces a Secret's data values by `sha256:<hex>` of the decoded bytes (in place), so a
/// Secret can be compared and shown without its value.
pub fn mask_secret(obj: &mut Value) {
    if obj.get("kind").and_then(Value::as_str) != Some("Secret") {
        return;
    }
    if let Some(Value::Object(d)) = obj.get_mut("data") {
        for v in d.values_mut() {
            let raw = v
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .unwrap_or_default();
            let h = Sha256::digest(&raw);
            let hex: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
            *v = Value::String(format!("sha256:{hex}"));
        }
    }
}

/// The live object restricted to the fields `desired` declares (`null` where the live object
/// has nothing).
pub fn project(desired: &Value, live: &Value) -> Value {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => Value::Object(
            d.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, dv)| {
                    (
                        k.clone(),
                        l.get(k).map(|lv| project(dv, lv)).unwrap_or(Value::Null),
                    )
                })
                .collect(),
        ),
        (Value::Array(d), Value::Array(l)) if d.len() == l.len() => {
            Value::Array(d.iter().zip(l).map(|(dv, lv)| project(dv, lv)).collect())
        }
        (_, l) => l.clone(),
    }
}

/// The fields where `live` differs from `desired` (only fields `desired` declares), as
/// `path: live → desired` lines.
pub fn diff(desired: &Value, live: &Value, path: &str, out: &mut Vec<String>) {
    match (desired, live) {
        (Value::Null, _) => {}
        (Value::Object(d), Value::Object(l)) => {
            for (k, dv) in d {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match l.get(k) {
                    Some(lv) => diff(dv, lv, &p, out),
                    None if dv.is_null() => {}
                    None => out.push(format!("{p}: (absent) → {}", short(dv))),
                }
            }
        }
        (Value::Array(d), Value::Array(l)) if d.len() == l.len() => {
            for (i, (dv, lv)) in d.iter().zip(l).enumerate() {
                diff(dv, lv, &format!("{path}[{i}]"), out);
            }
        }
        (d, l) if !same_scalar(d, l) => {
            out.push(format!("{path}: {} → {}", short(l), short(d)));
        }
        _ => {}
    }
}

fn same_scalar(d: &Value, l: &Value) -> bool {
    if d == l {
        return true;
    }
    match (d, l) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Number(a), Value::String(b)) | (Value::String(b), Value::Number(a)) => {
            a.to_string() == *b
        }
        _ => false,
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Map<String, Value> {
        json!({"AZURE_RESOURCE_NAME": "c"})
            .as_object()
            .cloned()
            .unwrap()
    }

    #[test]
    fn agent_features_add_the_connect_agent_and_the_custom_locations_binding() {
        let features = AgentFeatures {
            cluster_connect: Some(true),
            private_link: false,
            custom_locations_oid: Some("51dfe1e8-70c6-4de5-a08e-e18aff23d815".into()),
        };
        let set = builtin_objects("1.2.3", &data(), &features);
        let ids: Vec<String> = set.iter().map(DesiredObject::id).collect();
        assert_eq!(set.len(), 13, "{ids:?}");
        assert!(ids.contains(&"apps/v1 Deployment azure-arc/clusterconnect-agent".to_string()));
        let binding = set
            .iter()
            .find(|o| o.kind == "ClusterRoleBinding")
            .expect("the custom locations binding");
        assert_eq!(binding.name, CUSTOM_LOCATIONS_BINDING);
        assert_eq!(
            binding.body["subjects"][0]["name"],
            "51dfe1e8-70c6-4de5-a08e-e18aff23d815"
        );
        let off = AgentFeatures {
            cluster_connect: Some(false),
            ..AgentFeatures::default()
        };
        assert_eq!(builtin_objects("1.2.3", &data(), &off).len(), 11);
    }

    #[test]
    fn builtin_set_has_namespace_configmap_and_nine_agents() {
        let set = builtin_objects("1.2.3", &data(), &AgentFeatures::default());
        assert_eq!(set.len(), 11);
        assert_eq!(set[0].id(), "v1 Namespace azure-arc");
        assert_eq!(set[1].id(), "v1 ConfigMap azure-arc/azure-clusterconfig");
        let d = &set[2];
        assert_eq!(d.group(), "apps");
        assert_eq!(d.version(), "v1");
        assert_eq!(
            d.body["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "arcplan"
        );
        assert_eq!(
            d.body["spec"]["template"]["spec"]["containers"][0]["image"],
            "mcr.microsoft.com/azurearck8s/clusteridentityoperator:1.2.3"
        );
    }

    #[test]
    fn manifests_parse_lists_secrets_and_merge_the_ownership() {
        let text = "---\n# empty\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ServiceAccount\n  metadata: {name: sa}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: azure-arc}\nstringData: {k: v}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: azure-clusterconfig, namespace: azure-arc}\ndata: {EXTRA: x, AZURE_RESOURCE_NAME: old}\n";
        let set = parse_manifests(text, "m.yaml", &data()).unwrap();
        let ids: Vec<String> = set.iter().map(DesiredObject::id).collect();
        assert_eq!(
            ids,
            [
                "v1 Namespace azure-arc",
                "v1 ServiceAccount sa",
                "v1 Secret azure-arc/s",
                "v1 ConfigMap azure-arc/azure-clusterconfig"
            ]
        );
        assert_eq!(set[2].body["data"]["k"], "dg==");
        assert_eq!(set[3].body["data"]["AZURE_RESOURCE_NAME"], "c");
        assert_eq!(set[3].body["data"]["EXTRA"], "x");
        assert!(parse_manifests("a: [", "m.yaml", &data()).is_err());
        assert!(parse_manifests("- 1\n", "m.yaml", &data()).is_err());
        assert!(
            parse_manifests("apiVersion: v1\nkind: X\n", "m.yaml", &data())
                .unwrap_err()
                .contains("metadata.name")
        );
    }

    #[test]
    fn diff_sees_only_declared_fields() {
        let d = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "a:2"}]}}}});
        let l = json!({"spec": {"replicas": 1, "paused": false, "template": {"spec": {"containers": [{"image": "a:1", "imagePullPolicy": "IfNotPresent"}]}}}, "status": {}});
        let mut out = Vec::new();
        diff(&d, &l, "", &mut out);
        assert_eq!(
            out,
            [
                "spec.replicas: 1 → 2",
                "spec.template.spec.containers[0].image: a:1 → a:2"
            ]
        );
        let p = project(&d, &l);
        assert_eq!(p["spec"]["replicas"], 1);
        assert!(p["spec"].get("paused").is_none());
        let mut none = Vec::new();
        diff(&d, &project(&d, &d), "", &mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn secrets_are_masked() {
        let mut s = json!({"kind": "Secret", "data": {"k": "c2VjcmV0"}});
        mask_secret(&mut s);
        assert!(s["data"]["k"].as_str().unwrap().starts_with("sha256:"));
        assert!(!s.to_string().contains("c2VjcmV0"));
    }
}
