//! The served resources: each kind's definition (discovery data and the rules the store, the
//! router and the table printer follow for it) and the discovery documents built from them.
//!
//! Nothing outside the definitions branches on a kind's name: a rule that differs between kinds
//! is a field here, and each kind's values live with its other code in [`super::kinds`].

use serde_json::{Value, json};

use super::Caller;
use super::kinds;
use super::status::Cause;

/// How `metadata.name` is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// A DNS subdomain (RFC 1123), the default.
    DnsSubdomain,
    /// A DNS label (RFC 1123): namespaces.
    DnsLabel,
    /// Any path segment name (not `.`/`..`, no `/` or `%`): RBAC objects.
    PathSegment,
}

/// What DELETE does to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Removed at once, or marked with a `deletionTimestamp` while finalizers remain (and
    /// removed when the last finalizer goes).
    Finalizers,
    /// Marked `Terminating` and left for the namespace controller to empty and remove (finalizers
    /// do not remove it); the `protected` names may not be deleted at all.
    Terminate {
        /// Names DELETE refuses with 403.
        protected: &'static [&'static str],
    },
}

/// What the defaulting of one write knows besides the object.
#[derive(Debug, Clone, Copy)]
pub struct Defaulting {
    /// Whether the write creates the object.
    pub create: bool,
    /// Whether namespaces get the `kubernetes.io/metadata.name` label (servers from v1.21 on).
    pub namespace_name_label: bool,
}

/// One column of the kind's Table output.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Column name (also its description).
    pub name: &'static str,
    /// `string`, `integer`, `date`.
    pub ty: &'static str,
    /// `name` for the name column.
    pub format: &'static str,
    /// 0 for the default columns, 1 for `-o wide`.
    pub priority: i32,
}

/// One served resource (one group/version/plural) with its per-kind rules.
#[derive(Debug, Clone, Copy)]
pub struct ResourceDef {
    /// API group (`""` for core).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural resource name (URL segment).
    pub plural: &'static str,
    /// Singular name (discovery serves `""` as v1.20 does; the name is filled from v1.27).
    #[allow(dead_code)]
    pub singular: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Verbs served.
    pub verbs: &'static [&'static str],
    /// Verbs every authenticated user may use (`system:basic-user`); the rest need the admin.
    pub public_verbs: &'static [&'static str],
    /// Short names (`ns`, `cm`, ...).
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// The version a v1.20 server stores it in (for the discovery `storageVersionHash`).
    pub storage_version: &'static str,
    /// Whether the resource has a `status` subresource (status is ignored on the main resource).
    pub has_status: bool,
    /// Whether the resource has a `finalize` subresource (only `spec.finalizers` is taken).
    pub has_finalize: bool,
    /// Create-only resources (reviews): nothing is stored, the answer is computed from the body.
    pub virtual_create: Option<fn(Caller, Value) -> Value>,
    /// How `metadata.name` is validated.
    pub name_rule: NameRule,
    /// Kind-specific validation (after name and labels), pushing one cause per problem.
    pub validate: fn(&Value, &mut Vec<Cause>),
    /// Kind-specific defaulting, run on every write before validation.
    pub defaults: fn(&mut Value, &Defaulting),
    /// The "empty object" a create is compared against for managedFields (the non-pointer
    /// structs of the Go type exist even when the client sent nothing).
    pub skeleton: fn() -> Value,
    /// Whether `metadata.generation` is kept (bumped on spec changes).
    pub generation: bool,
    /// What DELETE does.
    pub deletion: Deletion,
    /// Whether DELETE answers with the object (rather than a `Status`).
    pub delete_returns_object: bool,
    /// Field selectors supported besides `metadata.name` and `metadata.namespace`.
    pub field_selectors: &'static [&'static str],
    /// Table columns (`kubectl get`).
    pub columns: &'static [Column],
    /// Table cells of one object, one per column.
    pub cells: fn(&Value) -> Vec<Value>,
}

/// Every verb of a collection resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Every verb but `deletecollection`.
pub const NO_COLLECTION_DELETE: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// A resource with no kind-specific rule: the base every definition starts from
/// (`ResourceDef { kind: "X", ..BASE }`); `group`, `plural`, `singular` and `kind` are always set.
pub const BASE: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "",
    singular: "",
    kind: "",
    namespaced: true,
    verbs: ALL_VERBS,
    public_verbs: &[],
    short_names: &[],
    categories: &[],
    storage_version: "v1",
    has_status: false,
    has_finalize: false,
    virtual_create: None,
    name_rule: NameRule::DnsSubdomain,
    validate: kinds::no_validation,
    defaults: kinds::no_defaults,
    skeleton: kinds::metadata_skeleton,
    generation: false,
    deletion: Deletion::Finalizers,
    delete_returns_object: false,
    field_selectors: &[],
    columns: kinds::NAME_AGE,
    cells: kinds::name_age_cells,
};

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

/// Every resource the emulator serves.
pub static RESOURCES: &[&ResourceDef] = &[
    &kinds::core::CONFIGMAPS,
    &kinds::core::EVENTS,
    &kinds::core::NAMESPACES,
    &kinds::core::NODES,
    &kinds::core::PODS,
    &kinds::core::SECRETS,
    &kinds::core::SERVICEACCOUNTS,
    &kinds::core::SERVICES,
    &kinds::apps::DEPLOYMENTS,
    &kinds::apps::REPLICASETS,
    &kinds::batch::JOBS,
    &kinds::other::SELFSUBJECTACCESSREVIEWS,
    &kinds::other::LEASES,
    &kinds::rbac::CLUSTERROLEBINDINGS,
    &kinds::rbac::CLUSTERROLES,
    &kinds::rbac::ROLEBINDINGS,
    &kinds::rbac::ROLES,
];

/// The API groups served under `/apis`, in the order discovery lists them.
pub const GROUPS: &[(&str, &str)] = &[
    ("apps", "v1"),
    ("batch", "v1"),
    ("authorization.k8s.io", "v1"),
    ("rbac.authorization.k8s.io", "v1"),
    ("coordination.k8s.io", "v1"),
];

/// Finds a resource by group, version and plural.
pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .copied()
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
        .copied()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// The discovery `storageVersionHash`: base64 of the first 8 bytes of SHA-256 over
/// `group/storageVersion/kind`, as the apiserver computes it.
pub fn storage_version_hash(r: &ResourceDef) -> String {
    use base64::Engine as _;
    let gvk = format!("{}/{}/{}", r.group, r.storage_version, r.kind);
    let digest = ring::digest::digest(&ring::digest::SHA256, gvk.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest.as_ref()[..8])
}

/// The `APIResourceList` for one group version (`None` if not served).
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let served: Vec<&ResourceDef> = RESOURCES
        .iter()
        .copied()
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
        if r.virtual_create.is_none() {
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
        if r.has_finalize {
            resources.push(json!({
                "name": format!("{}/finalize", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
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
