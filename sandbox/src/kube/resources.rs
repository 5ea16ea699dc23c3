//! The built-in table of served resources and their discovery documents.

use serde_json::{Value, json};

/// One served resource (one group/version/plural).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceDef {
    /// API group (`""` for core).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural resource name (URL segment).
    pub plural: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Verbs served.
    pub verbs: &'static [&'static str],
    /// Short names (`ns`, `cm`, ...).
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Whether the resource has a `status` subresource (status is ignored on the main resource).
    pub has_status: bool,
    /// Whether the resource is create-only (reviews: nothing is stored).
    pub virtual_only: bool,
}

impl ResourceDef {
    /// `group/version` or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const ALL: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const NS_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

macro_rules! res {
    ($g:expr, $v:expr, $p:expr, $s:expr, $k:expr, $ns:expr, $verbs:expr, $short:expr, $cat:expr, $st:expr) => {
        ResourceDef {
            group: $g,
            version: $v,
            plural: $p,
            singular: $s,
            kind: $k,
            namespaced: $ns,
            verbs: $verbs,
            short_names: $short,
            categories: $cat,
            has_status: $st,
            virtual_only: false,
        }
    };
}

/// Every resource the emulator serves.
pub static RESOURCES: &[ResourceDef] = &[
    res!(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        ALL,
        &["cm"],
        &[],
        false
    ),
    res!(
        "",
        "v1",
        "events",
        "event",
        "Event",
        true,
        ALL,
        &["ev"],
        &[],
        false
    ),
    res!(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        NS_VERBS,
        &["ns"],
        &[],
        true
    ),
    res!(
        "",
        "v1",
        "nodes",
        "node",
        "Node",
        false,
        ALL,
        &["no"],
        &[],
        true
    ),
    res!(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        true,
        ALL,
        &["po"],
        &["all"],
        true
    ),
    res!(
        "",
        "v1",
        "secrets",
        "secret",
        "Secret",
        true,
        ALL,
        &[],
        &[],
        false
    ),
    res!(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        ALL,
        &["sa"],
        &[],
        false
    ),
    res!(
        "",
        "v1",
        "services",
        "service",
        "Service",
        true,
        // No deletecollection for services in v1.20 (added in v1.27).
        NS_VERBS,
        &["svc"],
        &["all"],
        true
    ),
    res!(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        ALL,
        &["deploy"],
        &["all"],
        true
    ),
    res!(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        ALL,
        &["rs"],
        &["all"],
        true
    ),
    ResourceDef {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        verbs: &["create"],
        short_names: &[],
        categories: &[],
        has_status: false,
        virtual_only: true,
    },
    res!(
        "coordination.k8s.io",
        "v1",
        "leases",
        "lease",
        "Lease",
        true,
        ALL,
        &[],
        &[],
        false
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        ALL,
        &[],
        &[],
        false
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        ALL,
        &[],
        &[],
        false
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        ALL,
        &[],
        &[],
        false
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
        ALL,
        &[],
        &[],
        false
    ),
];

/// The API groups served under `/apis`, in the order discovery lists them.
pub const GROUPS: &[(&str, &str)] = &[
    ("apps", "v1"),
    ("authorization.k8s.io", "v1"),
    ("rbac.authorization.k8s.io", "v1"),
    ("coordination.k8s.io", "v1"),
];

/// Finds a resource by group, version and plural.
pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a resource by `apiVersion` and kind.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceDef> {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// The version a v1.20 server stores a resource in (leases were still stored as v1beta1).
fn storage_version(r: &ResourceDef) -> &'static str {
    match (r.group, r.plural) {
        ("coordination.k8s.io", "leases") => "v1beta1",
        _ => r.version,
    }
}

/// The discovery `storageVersionHash`: base64 of the first 8 bytes of SHA-256 over
/// `group/storageVersion/kind`, as the apiserver computes it.
pub fn storage_version_hash(r: &ResourceDef) -> String {
    use base64::Engine as _;
    let gvk = format!("{}/{}/{}", r.group, storage_version(r), r.kind);
    let digest = ring::digest::digest(&ring::digest::SHA256, gvk.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest.as_ref()[..8])
}

/// The `APIResourceList` for one group version (`None` if not served).
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let served: Vec<&ResourceDef> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in served {
        let mut e = json!({
            "name": r.plural,
            // v1.20 serves an empty singularName for built-in resources (filled from v1.27).
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            e["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            e["categories"] = json!(r.categories);
        }
        if !r.virtual_only {
            e["storageVersionHash"] = json!(storage_version_hash(r));
        }
        resources.push(e);
        if r.has_status {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r.plural == "namespaces" {
            resources.push(json!({
                "name": "namespaces/finalize",
                "singularName": "",
                "namespaced": false,
                "kind": "Namespace",
                "verbs": ["update"],
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }))
}

/// The `APIGroup` document of one group.
pub fn api_group(name: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{name}/{version}"), "version": version});
    json!({
        "name": name,
        "versions": [gv.clone()],
        "preferredVersion": gv,
    })
}

/// The `APIGroupList` served at `/apis`.
pub fn api_group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": GROUPS.iter().map(|(g, v)| api_group(g, v)).collect::<Vec<_>>(),
    })
}

/// The `APIVersions` document served at `/api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}
