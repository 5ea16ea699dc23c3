//! In-memory ARM state, request routing, and the checks every request goes through (api-version,
//! subscription, tenant, RBAC), plus simulated time (registrations and long-running operations).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::authz::{self, PrincipalRole};
use super::{ArmConfig, ArmError, Ctx, eq, rfc3339};
use crate::entra::TokenClaims;

/// How long a finished operation's status stays readable.
const OPERATION_RETENTION: Duration = Duration::from_secs(600);

/// Registration state of a resource provider in a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// Not registered.
    NotRegistered,
    /// `register` was called; not finished yet.
    Registering,
    /// Registered.
    Registered,
    /// `unregister` was called; not finished yet.
    Unregistering,
}

impl RegistrationState {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationState::NotRegistered => "NotRegistered",
            RegistrationState::Registering => "Registering",
            RegistrationState::Registered => "Registered",
            RegistrationState::Unregistering => "Unregistering",
        }
    }
}

/// Api-versions ARM accepts for `Microsoft.Resources` types (subscriptions, resource groups,
/// providers, resources, operation results).
pub(crate) const RESOURCES_VERSIONS: &[&str] = &[
    "2025-04-01",
    "2025-03-01",
    "2025-01-01",
    "2024-11-01",
    "2024-07-01",
    "2024-03-01",
    "2023-07-01",
    "2022-12-01",
    "2022-09-01",
    "2022-01-01",
    "2021-04-01",
    "2021-01-01",
    "2020-10-01",
    "2020-08-01",
    "2020-06-01",
    "2020-01-01",
    "2019-11-01",
    "2019-10-01",
    "2019-08-01",
    "2019-07-01",
    "2019-06-01",
    "2019-05-10",
    "2019-05-01",
    "2019-03-01",
    "2018-06-01",
    "2018-05-01",
    "2018-02-01",
    "2017-05-10",
    "2016-09-01",
    "2016-07-01",
    "2016-06-01",
    "2016-02-01",
    "2015-11-01",
    "2015-01-01",
];
/// Api-versions of `Microsoft.Kubernetes/connectedClusters` (stable and preview).
pub(crate) const KUBERNETES_VERSIONS: &[&str] = &[
    "2026-05-01",
    "2026-02-01-preview",
    "2025-12-01-preview",
    "2025-08-01-preview",
    "2024-12-01-preview",
    "2024-07-01-preview",
    "2024-06-01-preview",
    "2024-02-01-preview",
    "2024-01-01",
    "2023-11-01-preview",
    "2022-10-01-preview",
    "2022-05-01-preview",
    "2021-10-01",
    "2021-04-01-preview",
    "2021-03-01",
    "2020-01-01-preview",
];
/// Api-versions of role assignments.
pub(crate) const ROLE_ASSIGNMENT_VERSIONS: &[&str] = &[
    "2022-04-01",
    "2022-01-01-preview",
    "2021-04-01-preview",
    "2020-10-01-preview",
    "2020-10-01",
    "2020-08-01-preview",
    "2020-04-01-preview",
    "2020-03-01-preview",
    "2018-09-01-preview",
    "2018-07-01",
    "2018-01-01-preview",
    "2017-10-01-preview",
    "2015-07-01",
    "2015-06-01",
];
/// Api-versions of role definitions and permissions.
pub(crate) const ROLE_DEFINITION_VERSIONS: &[&str] = &[
    "2022-05-01-preview",
    "2022-04-01",
    "2018-01-01-preview",
    "2015-07-01",
];
/// Api-versions of the cloud metadata document.
pub(crate) const METADATA_VERSIONS: &[&str] =
    &["2022-09-01", "2020-06-01", "2019-05-01", "2015-01-01"];

/// Display names of the regions Arc-enabled Kubernetes is offered in.
pub(crate) const ARC_LOCATIONS: &[&str] = &[
    "East US",
    "East US 2",
    "West US",
    "West US 2",
    "West US 3",
    "Central US",
    "North Central US",
    "South Central US",
    "West Central US",
    "Canada Central",
    "Brazil South",
    "North Europe",
    "West Europe",
    "UK South",
    "France Central",
    "Germany West Central",
    "Switzerland North",
    "Sweden Central",
    "Norway East",
    "Australia East",
    "Japan East",
    "Korea Central",
    "Southeast Asia",
    "East Asia",
    "Central India",
    "UAE North",
    "South Africa North",
    "Italy North",
    "Poland Central",
];
/// Further regions where resource groups may live.
pub(crate) const OTHER_LOCATIONS: &[&str] = &[
    "Canada East",
    "UK West",
    "Japan West",
    "Australia Southeast",
    "Australia Central",
    "South India",
    "West India",
    "Korea South",
    "France South",
    "Germany North",
    "Norway West",
    "Switzerland West",
    "UAE Central",
    "South Africa West",
    "Brazil Southeast",
    "Qatar Central",
    "Israel Central",
    "Mexico Central",
    "Spain Central",
    "New Zealand North",
];

/// `East US` → `eastus`.
pub(crate) fn normalize_location(l: &str) -> String {
    l.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// A provider namespace the sandbox knows.
pub(crate) struct ProviderInfo {
    pub namespace: &'static str,
    pub always_registered: bool,
    pub types: &'static [(&'static str, bool, &'static [&'static str])],
}

/// The provider catalogue: (type, located in Arc regions?, api-versions).
pub(crate) static PROVIDERS: &[ProviderInfo] = &[
    ProviderInfo {
        namespace: "Microsoft.Kubernetes",
        always_registered: false,
        types: &[
            ("connectedClusters", true, KUBERNETES_VERSIONS),
            ("locations", false, KUBERNETES_VERSIONS),
            ("locations/operationStatuses", true, KUBERNETES_VERSIONS),
            ("registeredSubscriptions", false, KUBERNETES_VERSIONS),
            ("operations", false, KUBERNETES_VERSIONS),
        ],
    },
    ProviderInfo {
        namespace: "Microsoft.KubernetesConfiguration",
        always_registered: false,
        types: &[
            (
                "extensions",
                true,
                &["2025-03-01", "2024-11-01", "2023-05-01", "2022-11-01"],
            ),
            (
                "fluxConfigurations",
                true,
                &["2025-04-01", "2024-11-01", "2023-05-01", "2022-11-01"],
            ),
            (
                "sourceControlConfigurations",
                true,
                &["2023-05-01", "2022-11-01", "2021-03-01"],
            ),
            (
                "operations",
                false,
                &["2025-04-01", "2025-03-01", "2023-05-01"],
            ),
        ],
    },
    ProviderInfo {
        namespace: "Microsoft.ExtendedLocation",
        always_registered: false,
        types: &[
            (
                "customLocations",
                true,
                &["2021-08-15", "2021-08-31-preview", "2024-09-15-preview"],
            ),
            (
                "customLocations/enabledResourceTypes",
                true,
                &["2021-08-15", "2021-08-31-preview"],
            ),
            ("locations", false, &["2021-08-15"]),
            ("operations", false, &["2021-08-15"]),
        ],
    },
    ProviderInfo {
        namespace: "Microsoft.HybridCompute",
        always_registered: false,
        types: &[
            ("machines", true, &["2024-07-10", "2022-12-27"]),
            ("operations", false, &["2024-07-10"]),
        ],
    },
    ProviderInfo {
        namespace: "Microsoft.Insights",
        always_registered: false,
        types: &[
            ("alertrules", true, &["2016-03-01"]),
            ("operations", false, &["2015-04-01"]),
        ],
    },
    ProviderInfo {
        namespace: "Microsoft.Authorization",
        always_registered: true,
        types: &[
            ("roleAssignments", false, ROLE_ASSIGNMENT_VERSIONS),
            ("roleDefinitions", false, ROLE_DEFINITION_VERSIONS),
            ("permissions", false, ROLE_DEFINITION_VERSIONS),
        ],
    },
    ProviderInfo {
        namespace: "Microsoft.Resources",
        always_registered: true,
        types: &[
            ("subscriptions", false, RESOURCES_VERSIONS),
            ("resourceGroups", true, RESOURCES_VERSIONS),
            ("resources", false, RESOURCES_VERSIONS),
            ("subscriptions/operationresults", false, RESOURCES_VERSIONS),
            ("deployments", false, RESOURCES_VERSIONS),
            ("tags", false, RESOURCES_VERSIONS),
        ],
    },
];

pub(crate) struct Provider {
    pub info: &'static ProviderInfo,
    pub state: RegistrationState,
    pub until: Option<Instant>,
}

pub(crate) struct Group {
    pub name: String,
    pub location: String,
    pub tags: Map<String, Value>,
    pub managed_by: Option<String>,
    pub deleting: Option<String>,
    pub changed: time::OffsetDateTime,
    pub clusters: BTreeMap<String, Cluster>,
}

pub(crate) struct Cluster {
    pub resource: Value,
    pub busy: Option<String>,
    pub created: time::OffsetDateTime,
    pub changed: time::OffsetDateTime,
}

pub(crate) struct Subscription {
    pub id: String,
    pub providers: BTreeMap<String, Provider>,
    pub groups: BTreeMap<String, Group>,
    /// Tags of the subscription itself (`/subscriptions/{s}/providers/Microsoft.Resources/tags/default`).
    pub tags: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpStatus {
    InProgress,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone)]
pub(crate) enum OpKind {
    CreateCluster { rg: String, name: String },
    DeleteCluster { rg: String, name: String },
    DeleteGroup { rg: String },
}

#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub id: String,
    pub sub: String,
    pub namespace: &'static str,
    pub location: String,
    pub resource_id: String,
    pub kind: OpKind,
    pub status: OpStatus,
    pub start_wall: time::OffsetDateTime,
    pub end_wall: Option<time::OffsetDateTime>,
    pub ended: Option<Instant>,
    pub mid: Instant,
    pub done_at: Instant,
    pub mid_applied: bool,
    pub failure: Option<(String, String)>,
}

pub(crate) struct Assignment {
    pub name: String,
    pub scope: String,
    pub role_id: &'static str,
    pub principal_id: String,
}

pub(crate) struct ArmState {
    pub cfg: ArmConfig,
    pub subs: BTreeMap<String, Subscription>,
    pub ops: BTreeMap<String, Operation>,
    pub assignments: Vec<Assignment>,
    pub rng: ChaCha8Rng,
    pub op_counts: HashMap<String, u64>,
}

/// What a route is about.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    SubList,
    TenantList,
    Sub(String),
    Locations(String),
    /// `{scope}/providers/Microsoft.Resources/tags/default`.
    TagsAtScope(super::tenancy::TagScope),
    RgList(String),
    Rg(String, String),
    RgResources(String, String),
    SubResources(String),
    ProviderList(String),
    Provider(String, String),
    ProviderAction(String, String, bool),
    OperationResult(String, String),
    RpOperation {
        sub: String,
        ns: String,
        id: String,
        result: bool,
    },
    ClusterListSub(String),
    ClusterListRg(String, String),
    Cluster(String, String, String),
    ClusterCredential(String, String, String),
    Authz {
        scope: String,
        sub: Option<String>,
        rg: Option<String>,
        kind: AuthzKind,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum AuthzKind {
    Permissions,
    AssignmentList,
    Assignment(String),
    DefinitionList,
    Definition(String),
}

enum Family {
    Resources,
    Kubernetes,
    RoleAssignments,
    RoleDefinitions,
}

fn not_found_path(path: &str) -> ArmError {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("The requested resource '{path}' was not found."),
    )
}

fn parse_route(segs: &[String], path: &str) -> Result<Route, ArmError> {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    if let [scope @ .., p, ns, t, d] = s.as_slice()
        && eq(p, "providers")
        && eq(ns, "Microsoft.Resources")
        && eq(t, "tags")
        && eq(d, "default")
    {
        return super::tenancy::TagScope::parse(scope, path).map(Route::TagsAtScope);
    }
    // Microsoft.Authorization after an arbitrary scope: use the last `providers/Microsoft.Authorization`.
    if let Some(i) = (0..s.len().saturating_sub(1))
        .rev()
        .find(|&i| eq(s[i], "providers") && eq(s[i + 1], "Microsoft.Authorization"))
    {
        let scope_segs = &s[..i];
        let scope = if scope_segs.is_empty() {
            String::new()
        } else {
            format!("/{}", scope_segs.join("/"))
        };
        let (sub, rg) = match scope_segs {
            [] => (None, None),
            [a, sub, ..] if eq(a, "subscriptions") => {
                let rg = match scope_segs {
                    [_, _, r, rg, ..] if eq(r, "resourceGroups") => Some(rg.to_string()),
                    [_, _] => None,
                    [_, _, p, ..] if eq(p, "providers") => None,
                    _ => return Err(not_found_path(path)),
                };
                (Some(sub.to_string()), rg)
            }
            _ => return Err(not_found_path(path)),
        };
        let kind = match &s[i + 2..] {
            [p] if eq(p, "permissions") => AuthzKind::Permissions,
            [p] if eq(p, "roleAssignments") => AuthzKind::AssignmentList,
            [p, n] if eq(p, "roleAssignments") => AuthzKind::Assignment(n.to_string()),
            [p] if eq(p, "roleDefinitions") => AuthzKind::DefinitionList,
            [p, n] if eq(p, "roleDefinitions") => AuthzKind::Definition(n.to_string()),
            _ => return Err(not_found_path(path)),
        };
        return Ok(Route::Authz {
            scope,
            sub,
            rg,
            kind,
        });
    }
    let sub = |x: &str| x.to_string();
    Ok(match s.as_slice() {
        [a] if eq(a, "subscriptions") => Route::SubList,
        [a] if eq(a, "tenants") => Route::TenantList,
        [a, id] if eq(a, "subscriptions") => Route::Sub(sub(id)),
        [a, id, b] if eq(a, "subscriptions") && eq(b, "locations") => Route::Locations(sub(id)),
        [a, id, b] if eq(a, "subscriptions") && eq(b, "resourceGroups") => Route::RgList(sub(id)),
        [a, id, b] if eq(a, "subscriptions") && eq(b, "resources") => Route::SubResources(sub(id)),
        [a, id, b] if eq(a, "subscriptions") && eq(b, "providers") => Route::ProviderList(sub(id)),
        [a, id, b, op] if eq(a, "subscriptions") && eq(b, "operationresults") => {
            Route::OperationResult(sub(id), sub(op))
        }
        [a, id, b, rg] if eq(a, "subscriptions") && eq(b, "resourceGroups") => {
            Route::Rg(sub(id), sub(rg))
        }
        [a, id, b, ns] if eq(a, "subscriptions") && eq(b, "providers") => {
            Route::Provider(sub(id), sub(ns))
        }
        [a, id, b, ns, act]
            if eq(a, "subscriptions")
                && eq(b, "providers")
                && (eq(act, "register") || eq(act, "unregister")) =>
        {
            Route::ProviderAction(sub(id), sub(ns), eq(act, "register"))
        }
        [a, id, b, ns, t]
            if eq(a, "subscriptions")
                && eq(b, "providers")
                && eq(ns, "Microsoft.Kubernetes")
                && eq(t, "connectedClusters") =>
        {
            Route::ClusterListSub(sub(id))
        }
        [a, id, b, ns, l, _loc, k, op]
            if eq(a, "subscriptions")
                && eq(b, "providers")
                && eq(l, "locations")
                && (eq(k, "operationStatuses") || eq(k, "operationResults")) =>
        {
            Route::RpOperation {
                sub: sub(id),
                ns: sub(ns),
                id: sub(op),
                result: eq(k, "operationResults"),
            }
        }
        [a, id, b, rg, r]
            if eq(a, "subscriptions") && eq(b, "resourceGroups") && eq(r, "resources") =>
        {
            Route::RgResources(sub(id), sub(rg))
        }
        [a, id, b, rg, p, ns, t]
            if eq(a, "subscriptions")
                && eq(b, "resourceGroups")
                && eq(p, "providers")
                && eq(ns, "Microsoft.Kubernetes")
                && eq(t, "connectedClusters") =>
        {
            Route::ClusterListRg(sub(id), sub(rg))
        }
        [a, id, b, rg, p, ns, t, name]
            if eq(a, "subscriptions")
                && eq(b, "resourceGroups")
                && eq(p, "providers")
                && eq(ns, "Microsoft.Kubernetes")
                && eq(t, "connectedClusters") =>
        {
            Route::Cluster(sub(id), sub(rg), sub(name))
        }
        [a, id, b, rg, p, ns, t, name, act]
            if eq(a, "subscriptions")
                && eq(b, "resourceGroups")
                && eq(p, "providers")
                && eq(ns, "Microsoft.Kubernetes")
                && eq(t, "connectedClusters")
                && eq(act, "listClusterUserCredential") =>
        {
            Route::ClusterCredential(sub(id), sub(rg), sub(name))
        }
        [a, _id, b, _rg, p, ns, t, ..]
            if eq(a, "subscriptions") && eq(b, "resourceGroups") && eq(p, "providers") =>
        {
            return Err(ArmError::bad_request(
                "InvalidResourceType",
                format!(
                    "The resource type '{t}' could not be found in the namespace '{ns}' in the sandbox."
                ),
            ));
        }
        _ => return Err(not_found_path(path)),
    })
}

impl Route {
    fn family(&self) -> Family {
        match self {
            Route::RpOperation { .. }
            | Route::ClusterListSub(_)
            | Route::ClusterListRg(..)
            | Route::Cluster(..)
            | Route::ClusterCredential(..) => Family::Kubernetes,
            Route::Authz { kind, .. } => match kind {
                AuthzKind::AssignmentList | AuthzKind::Assignment(_) => Family::RoleAssignments,
                _ => Family::RoleDefinitions,
            },
            _ => Family::Resources,
        }
    }

    fn subscription(&self) -> Option<&str> {
        match self {
            Route::SubList | Route::TenantList => None,
            Route::TagsAtScope(t) => Some(t.subscription()),
            Route::Sub(s)
            | Route::Locations(s)
            | Route::RgList(s)
            | Route::Rg(s, _)
            | Route::RgResources(s, _)
            | Route::SubResources(s)
            | Route::ProviderList(s)
            | Route::Provider(s, _)
            | Route::ProviderAction(s, _, _)
            | Route::OperationResult(s, _)
            | Route::ClusterListSub(s)
            | Route::ClusterListRg(s, _)
            | Route::Cluster(s, _, _)
            | Route::ClusterCredential(s, _, _) => Some(s),
            Route::RpOperation { sub, .. } => Some(sub),
            Route::Authz { sub, .. } => sub.as_deref(),
        }
    }

    /// The RBAC action and scope this request needs, if any.
    fn action(&self, method: &Method, path: &str) -> Option<(String, String)> {
        let m = |read: &str, write: &str, delete: &str| -> String {
            if method == Method::GET || method == Method::HEAD {
                read.to_string()
            } else if method == Method::DELETE {
                delete.to_string()
            } else {
                write.to_string()
            }
        };
        let sub_scope = |s: &str| format!("/subscriptions/{s}");
        let rg_scope = |s: &str, rg: &str| format!("/subscriptions/{s}/resourcegroups/{rg}");
        let rgs = "Microsoft.Resources/subscriptions/resourceGroups";
        let cc = "Microsoft.Kubernetes/connectedClusters";
        Some(match self {
            Route::SubList | Route::TenantList | Route::RpOperation { .. } => return None,
            Route::Locations(s) => (
                "Microsoft.Resources/subscriptions/locations/read".into(),
                sub_scope(s),
            ),
            Route::TagsAtScope(t) => (
                m(
                    "Microsoft.Resources/tags/read",
                    "Microsoft.Resources/tags/write",
                    "Microsoft.Resources/tags/delete",
                ),
                t.scope(),
            ),
            Route::Sub(s) => (
                "Microsoft.Resources/subscriptions/read".into(),
                sub_scope(s),
            ),
            Route::RgList(s) => (format!("{rgs}/read"), sub_scope(s)),
            Route::Rg(s, rg) => (
                m(
                    &format!("{rgs}/read"),
                    &format!("{rgs}/write"),
                    &format!("{rgs}/delete"),
                ),
                rg_scope(s, rg),
            ),
            Route::RgResources(s, rg) => (format!("{rgs}/resources/read"), rg_scope(s, rg)),
            Route::SubResources(s) => (
                "Microsoft.Resources/subscriptions/resources/read".into(),
                sub_scope(s),
            ),
            Route::ProviderList(s) | Route::Provider(s, _) => (
                "Microsoft.Resources/subscriptions/providers/read".into(),
                sub_scope(s),
            ),
            Route::ProviderAction(s, ns, register) => (
                format!(
                    "{ns}/{}/action",
                    if *register { "register" } else { "unregister" }
                ),
                sub_scope(s),
            ),
            Route::OperationResult(s, _) => (
                "Microsoft.Resources/subscriptions/operationresults/read".into(),
                sub_scope(s),
            ),
            Route::ClusterListSub(s) => (format!("{cc}/read"), sub_scope(s)),
            Route::ClusterListRg(s, rg) => (format!("{cc}/read"), rg_scope(s, rg)),
            Route::Cluster(..) => (
                m(
                    &format!("{cc}/read"),
                    &format!("{cc}/write"),
                    &format!("{cc}/delete"),
                ),
                path.to_string(),
            ),
            Route::ClusterCredential(..) => (
                format!("{cc}/listClusterUserCredential/action"),
                path.trim_end_matches("/listClusterUserCredential")
                    .to_string(),
            ),
            Route::Authz { scope, kind, .. } => {
                let scope = if scope.is_empty() {
                    "/".to_string()
                } else {
                    scope.clone()
                };
                match kind {
                    AuthzKind::Permissions => return None,
                    AuthzKind::AssignmentList | AuthzKind::Assignment(_) => (
                        m(
                            "Microsoft.Authorization/roleAssignments/read",
                            "Microsoft.Authorization/roleAssignments/write",
                            "Microsoft.Authorization/roleAssignments/delete",
                        ),
                        scope,
                    ),
                    AuthzKind::DefinitionList | AuthzKind::Definition(_) => (
                        m(
                            "Microsoft.Authorization/roleDefinitions/read",
                            "Microsoft.Authorization/roleDefinitions/write",
                            "Microsoft.Authorization/roleDefinitions/delete",
                        ),
                        scope,
                    ),
                }
            }
        })
    }
}

impl ArmState {
    pub fn new(cfg: ArmConfig) -> Self {
        let now = Instant::now();
        let mut subs = BTreeMap::new();
        for id in &cfg.subscription_ids {
            let mut providers = BTreeMap::new();
            for info in PROVIDERS {
                let registered = info.always_registered
                    || cfg
                        .registered_providers
                        .iter()
                        .any(|p| eq(p, info.namespace));
                providers.insert(
                    info.namespace.to_ascii_lowercase(),
                    Provider {
                        info,
                        state: if registered {
                            RegistrationState::Registered
                        } else {
                            RegistrationState::NotRegistered
                        },
                        until: None,
                    },
                );
            }
            subs.insert(
                id.to_ascii_lowercase(),
                Subscription {
                    id: id.clone(),
                    providers,
                    groups: BTreeMap::new(),
                    tags: Map::new(),
                },
            );
        }
        let _ = now;
        let mut st = Self {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xA12B_0000_0000_0001),
            cfg,
            subs,
            ops: BTreeMap::new(),
            assignments: Vec::new(),
            op_counts: HashMap::new(),
        };
        let role = st.cfg.role;
        st.set_role(role);
        st
    }

    /// A GUID from the seeded generator.
    pub fn new_uuid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    pub fn set_role(&mut self, role: PrincipalRole) {
        let principal = self.cfg.principal_object_id.clone();
        self.assignments
            .retain(|a| !(a.principal_id == principal && a.scope.matches('/').count() == 2));
        self.cfg.role = role;
        if let Some(def) = role.definition() {
            let subs: Vec<String> = self.subs.values().map(|s| s.id.clone()).collect();
            for s in subs {
                let name = self.new_uuid();
                self.assignments.push(Assignment {
                    name,
                    scope: format!("/subscriptions/{s}"),
                    role_id: def.id,
                    principal_id: principal.clone(),
                });
            }
        }
    }

    pub fn assign_role(&mut self, scope: &str, role: PrincipalRole) {
        if let Some(def) = role.definition() {
            let name = self.new_uuid();
            let principal = self.cfg.principal_object_id.clone();
            self.assignments.push(Assignment {
                name,
                scope: scope.trim_end_matches('/').to_string(),
                role_id: def.id,
                principal_id: principal,
            });
        }
    }

    /// Applies every transition whose time has come.
    pub fn settle(&mut self) {
        let now = Instant::now();
        for sub in self.subs.values_mut() {
            for p in sub.providers.values_mut() {
                if let Some(until) = p.until
                    && until <= now
                {
                    p.state = match p.state {
                        RegistrationState::Registering => RegistrationState::Registered,
                        RegistrationState::Unregistering => RegistrationState::NotRegistered,
                        s => s,
                    };
                    p.until = None;
                }
            }
        }
        // Finished operations stay readable for ten minutes, then are forgotten (404).
        self.ops.retain(|_, o| {
            o.ended
                .is_none_or(|e| now.saturating_duration_since(e) < OPERATION_RETENTION)
        });
        let mut due: Vec<(Instant, String)> = self
            .ops
            .values()
            .filter(|o| o.status == OpStatus::InProgress)
            .map(|o| (o.done_at, o.id.clone()))
            .collect();
        due.sort();
        for (done_at, id) in due {
            let Some(op) = self.ops.get(&id).cloned() else {
                continue;
            };
            if done_at <= now {
                self.complete(&op);
            } else if !op.mid_applied && op.mid <= now {
                if let OpKind::CreateCluster { rg, name } = &op.kind
                    && let Some(c) = self.cluster_mut(&op.sub, rg, name)
                {
                    c.resource["properties"]["provisioningState"] = json!("Provisioning");
                }
                if let Some(o) = self.ops.get_mut(&id) {
                    o.mid_applied = true;
                }
            }
        }
    }

    fn complete(&mut self, op: &Operation) {
        let ok = op.failure.is_none();
        let sub = op.sub.clone();
        match &op.kind {
            OpKind::CreateCluster { rg, name } => {
                if let Some(c) = self.cluster_mut(&sub, rg, name) {
                    c.resource["properties"]["provisioningState"] =
                        json!(if ok { "Succeeded" } else { "Failed" });
                    c.busy = None;
                }
            }
            OpKind::DeleteCluster { rg, name } => {
                if ok {
                    self.remove_cluster_direct(&sub, rg, name);
                } else if let Some(c) = self.cluster_mut(&sub, rg, name) {
                    c.resource["properties"]["provisioningState"] = json!("Failed");
                    c.busy = None;
                }
            }
            OpKind::DeleteGroup { rg } => {
                if ok {
                    self.remove_group_direct(&sub, rg);
                } else if let Some(g) = self.group_mut(&sub, rg) {
                    g.deleting = None;
                }
            }
        }
        if let Some(o) = self.ops.get_mut(&op.id) {
            o.status = if ok {
                OpStatus::Succeeded
            } else {
                OpStatus::Failed
            };
            o.end_wall = Some(time::OffsetDateTime::now_utc());
            o.ended = Some(Instant::now());
        }
    }

    /// Starts a long-running operation on `resource_id` (named `name`); returns its id.
    pub fn start_op(
        &mut self,
        sub: &str,
        namespace: &'static str,
        location: &str,
        resource_id: &str,
        name: &str,
        kind: OpKind,
    ) -> String {
        let id = self.new_uuid();
        let key = resource_id.to_ascii_lowercase();
        let n = {
            let c = self.op_counts.entry(key.clone()).or_insert(0);
            *c += 1;
            *c
        };
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.cfg.seed ^ h ^ n.rotate_left(32));
        let slow = rng.random::<f64>() < self.cfg.slow_lro_rate;
        let fail_roll = rng.random::<f64>() < self.cfg.lro_failure_rate;
        let named = self.cfg.fail_lro_for.iter().any(|f| eq(f, name));
        let duration = if slow {
            self.cfg.slow_lro_delay
        } else {
            self.cfg.lro_delay
        };
        let now = Instant::now();
        let failure = (named || fail_roll).then(|| {
            (
                "ResourceOperationFailure".to_string(),
                format!("The resource operation completed with terminal provisioning state 'Failed'. (sandbox: failure injected for '{name}')"),
            )
        });
        let op = Operation {
            id: id.clone(),
            sub: sub.to_string(),
            namespace,
            location: location.to_string(),
            resource_id: resource_id.to_string(),
            kind,
            status: OpStatus::InProgress,
            start_wall: time::OffsetDateTime::now_utc(),
            end_wall: None,
            ended: None,
            mid: now + duration / 2,
            done_at: now + duration,
            mid_applied: false,
            failure,
        };
        self.ops.insert(id.clone(), op);
        id
    }

    /// `{status…}` of an operation, as served at its `Azure-AsyncOperation` URL.
    pub fn op_status_json(&self, op: &Operation) -> Value {
        let mut v = json!({
            "id": format!("/subscriptions/{}/providers/{}/locations/{}/operationStatuses/{}", op.sub, op.namespace, op.location, op.id),
            "name": op.id,
            "resourceId": op.resource_id,
            "status": match op.status { OpStatus::InProgress => "InProgress", OpStatus::Succeeded => "Succeeded", OpStatus::Failed => "Failed" },
            "startTime": rfc3339(op.start_wall),
            "percentComplete": match op.status { OpStatus::InProgress => if op.mid_applied { 50.0 } else { 0.0 }, _ => 100.0 },
        });
        if let Some(end) = op.end_wall {
            v["endTime"] = json!(rfc3339(end));
        }
        if op.status == OpStatus::Failed
            && let Some((code, message)) = &op.failure
        {
            v["error"] = json!({"code": code, "message": message});
        }
        v
    }

    pub fn provider_state(&self, sub: &str, ns: &str) -> Option<RegistrationState> {
        self.subs
            .get(&sub.to_ascii_lowercase())?
            .providers
            .get(&ns.to_ascii_lowercase())
            .map(|p| p.state)
    }

    pub fn set_provider_state(&mut self, sub: &str, ns: &str, state: RegistrationState) -> bool {
        let Some(p) = self
            .subs
            .get_mut(&sub.to_ascii_lowercase())
            .and_then(|s| s.providers.get_mut(&ns.to_ascii_lowercase()))
        else {
            return false;
        };
        p.state = state;
        p.until = None;
        true
    }

    pub fn group(&self, sub: &str, rg: &str) -> Option<&Group> {
        self.subs
            .get(&sub.to_ascii_lowercase())?
            .groups
            .get(&rg.to_ascii_lowercase())
    }

    pub fn group_mut(&mut self, sub: &str, rg: &str) -> Option<&mut Group> {
        self.subs
            .get_mut(&sub.to_ascii_lowercase())?
            .groups
            .get_mut(&rg.to_ascii_lowercase())
    }

    pub fn cluster(&self, sub: &str, rg: &str, name: &str) -> Option<&Cluster> {
        self.group(sub, rg)?
            .clusters
            .get(&name.to_ascii_lowercase())
    }

    pub fn cluster_mut(&mut self, sub: &str, rg: &str, name: &str) -> Option<&mut Cluster> {
        self.group_mut(sub, rg)?
            .clusters
            .get_mut(&name.to_ascii_lowercase())
    }

    pub fn all_clusters(&self) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for s in self.subs.values() {
            for g in s.groups.values() {
                for c in g.clusters.values() {
                    out.push((s.id.clone(), g.name.clone(), c.resource.clone()));
                }
            }
        }
        out
    }

    pub fn put_group_direct(
        &mut self,
        sub: &str,
        name: &str,
        location: &str,
        tags: Map<String, Value>,
    ) -> bool {
        let now = time::OffsetDateTime::now_utc();
        let Some(s) = self.subs.get_mut(&sub.to_ascii_lowercase()) else {
            return false;
        };
        let g = s
            .groups
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| Group {
                name: name.to_string(),
                location: normalize_location(location),
                tags: Map::new(),
                managed_by: None,
                deleting: None,
                changed: now,
                clusters: BTreeMap::new(),
            });
        g.location = normalize_location(location);
        g.tags = tags;
        g.changed = now;
        true
    }

    pub fn remove_group_direct(&mut self, sub: &str, rg: &str) -> bool {
        self.subs
            .get_mut(&sub.to_ascii_lowercase())
            .and_then(|s| s.groups.remove(&rg.to_ascii_lowercase()))
            .is_some()
    }

    pub fn remove_cluster_direct(&mut self, sub: &str, rg: &str, name: &str) -> bool {
        self.group_mut(sub, rg)
            .and_then(|g| g.clusters.remove(&name.to_ascii_lowercase()))
            .is_some()
    }

    pub fn group_json(&self, sub: &str, rg: &str) -> Option<Value> {
        let s = self.subs.get(&sub.to_ascii_lowercase())?;
        let g = s.groups.get(&rg.to_ascii_lowercase())?;
        Some(group_to_json(&s.id, g))
    }

    /// Checks the token's tenant and RBAC for `action` at `scope`.
    pub fn authorize(
        &self,
        claims: &TokenClaims,
        action: &str,
        scope: &str,
    ) -> Result<(), ArmError> {
        let allowed = self.assignments.iter().any(|a| {
            a.principal_id.eq_ignore_ascii_case(&claims.oid)
                && authz::scope_contains(&a.scope, scope)
                && authz::role_by_id(a.role_id).is_some_and(|r| r.permits(action))
        });
        if allowed {
            Ok(())
        } else {
            Err(ArmError::new(
                StatusCode::FORBIDDEN,
                "AuthorizationFailed",
                format!(
                    "The client '{}' with object id '{}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                    claims.appid, claims.oid
                ),
            ))
        }
    }

    fn check_subscription(&self, sub: &str, claims: &TokenClaims) -> Result<(), ArmError> {
        if uuid::Uuid::parse_str(sub).is_err() {
            return Err(ArmError::bad_request(
                "InvalidSubscriptionId",
                format!("The provided subscription identifier '{sub}' is malformed or invalid."),
            ));
        }
        if !self.subs.contains_key(&sub.to_ascii_lowercase()) {
            return Err(ArmError::new(
                StatusCode::NOT_FOUND,
                "SubscriptionNotFound",
                format!("The subscription '{sub}' could not be found."),
            ));
        }
        if !claims.tid.eq_ignore_ascii_case(&self.cfg.tenant_id) {
            let authority = self.cfg.authority_host.trim_end_matches('/').to_string();
            let msg = format!(
                "The access token is from the wrong issuer '{}'. It must match the tenant 'https://sts.windows.net/{}/' associated with this subscription. Please use the authority (URL) '{authority}/{}' to get the token. Note, if the subscription is transferred to another tenant there is no impact to the services, but information about new tenant could take time to propagate (up to an hour). If you just transferred your subscription and see this error message, please try back later.",
                claims.iss, self.cfg.tenant_id, self.cfg.tenant_id
            );
            return Err(ArmError::new(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationTokenTenant",
                msg.clone(),
            )
            .with_header(
                axum::http::header::WWW_AUTHENTICATE,
                &format!(
                    "Bearer authorization_uri=\"{authority}/{}\", error=\"invalid_token\", error_description=\"The access token is from the wrong issuer.\"",
                    self.cfg.tenant_id
                ),
            ));
        }
        Ok(())
    }

    pub fn dispatch(&mut self, ctx: &mut Ctx) -> Result<Response, ArmError> {
        let route = parse_route(&ctx.segs, &ctx.path)?;
        let Some(version) = ctx.q("api-version").map(str::to_string) else {
            return Err(ArmError::bad_request(
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            ));
        };
        let (supported, rp_type) = match route.family() {
            Family::Resources => (RESOURCES_VERSIONS, None),
            Family::Kubernetes => (KUBERNETES_VERSIONS, Some("connectedClusters")),
            Family::RoleAssignments => (ROLE_ASSIGNMENT_VERSIONS, None),
            Family::RoleDefinitions => (ROLE_DEFINITION_VERSIONS, None),
        };
        if !supported.iter().any(|v| eq(v, &version)) {
            let list = supported.join(", ");
            return Err(match rp_type {
                Some(t) => ArmError::bad_request(
                    "NoRegisteredProviderFound",
                    format!(
                        "No registered resource provider found for location '{}' and API version '{version}' for type '{t}'. The supported api-versions are '{list}'. The supported locations are '{}'.",
                        self.location_hint(&route),
                        ARC_LOCATIONS
                            .iter()
                            .map(|l| normalize_location(l))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                None => ArmError::bad_request(
                    "InvalidApiVersionParameter",
                    format!(
                        "The api-version '{version}' is invalid. The supported versions are '{list}'."
                    ),
                ),
            });
        }
        ctx.api_version = version;
        if let Some(sub) = route.subscription() {
            self.check_subscription(sub, &ctx.claims)?;
        }
        if let Some((action, scope)) = route.action(&ctx.method, &ctx.path) {
            self.authorize(&ctx.claims, &action, &scope)?;
        }
        match route {
            Route::SubList => self.list_subscriptions(ctx),
            Route::TenantList => self.list_tenants(ctx),
            Route::Sub(s) => self.get_subscription(ctx, &s),
            Route::Locations(s) => self.list_locations(ctx, &s),
            Route::TagsAtScope(t) => self.tags_at_scope(ctx, &t),
            Route::RgList(s) => self.list_groups(ctx, &s),
            Route::Rg(s, rg) => self.resource_group(ctx, &s, &rg),
            Route::RgResources(s, rg) => self.list_resources(ctx, &s, Some(&rg)),
            Route::SubResources(s) => self.list_resources(ctx, &s, None),
            Route::ProviderList(s) => self.list_providers(ctx, &s),
            Route::Provider(s, ns) => self.get_provider(ctx, &s, &ns),
            Route::ProviderAction(s, ns, register) => self.provider_action(ctx, &s, &ns, register),
            Route::OperationResult(s, id) => {
                self.operation_result(ctx, &s, &id, "Microsoft.Resources")
            }
            Route::RpOperation {
                sub,
                ns,
                id,
                result,
            } => {
                if result {
                    self.operation_result(ctx, &sub, &id, &ns)
                } else {
                    self.operation_status(ctx, &sub, &id, &ns)
                }
            }
            Route::ClusterListSub(s) => self.list_clusters(ctx, &s, None),
            Route::ClusterListRg(s, rg) => self.list_clusters(ctx, &s, Some(&rg)),
            Route::Cluster(s, rg, name) => self.connected_cluster(ctx, &s, &rg, &name),
            Route::ClusterCredential(s, rg, name) => self.cluster_credential(ctx, &s, &rg, &name),
            Route::Authz {
                scope,
                sub,
                rg,
                kind,
            } => self.authorization(ctx, &scope, sub.as_deref(), rg.as_deref(), kind),
        }
    }

    fn location_hint(&self, route: &Route) -> String {
        if let Route::Cluster(s, rg, name) = route
            && let Some(c) = self.cluster(s, rg, name)
        {
            return c.resource["location"].as_str().unwrap_or("").to_string();
        }
        String::new()
    }

    /// One page of `items` plus `nextLink`, honouring `$skipToken` and `$top`.
    pub fn page(&self, ctx: &Ctx, items: Vec<Value>) -> Result<Value, ArmError> {
        let offset = match ctx.q("$skipToken") {
            None => 0,
            Some(t) => decode_skip_token(t).ok_or_else(|| {
                ArmError::bad_request(
                    "InvalidSkipToken",
                    format!("The skip token '{t}' is invalid."),
                )
            })?,
        };
        let top = match ctx.q("$top") {
            None => None,
            Some(t) => Some(t.parse::<usize>().map_err(|_| {
                ArmError::bad_request(
                    "InvalidTopQueryParameter",
                    format!("The value '{t}' of the $top query parameter is invalid; it must be a positive integer."),
                )
            })?),
        };
        let total = top.map_or(items.len(), |t| t.min(items.len()));
        let page_size = self.cfg.page_size.max(1);
        let end = (offset + page_size).min(total);
        let page: Vec<Value> = items
            .into_iter()
            .skip(offset)
            .take(end.saturating_sub(offset))
            .collect();
        let mut out = json!({ "value": page });
        if end < total {
            let kept: Vec<String> = ctx
                .raw_query
                .split('&')
                .filter(|p| !p.is_empty())
                .filter(|p| {
                    let name = p.split('=').next().unwrap_or("");
                    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
                    !name.eq_ignore_ascii_case("$skipToken")
                })
                .map(str::to_string)
                .collect();
            let mut q = kept.join("&");
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str(&format!("%24skipToken={}", encode_skip_token(end)));
            out["nextLink"] = json!(format!("{}{}?{q}", ctx.base, ctx.path));
        }
        Ok(out)
    }

    /// The `Retry-After` value for long-running operations.
    pub fn retry_after(&self) -> String {
        self.cfg.retry_after_secs.to_string()
    }

    /// The time an operation is expected to take (for tests).
    #[allow(dead_code)]
    pub fn lro_delay(&self) -> Duration {
        self.cfg.lro_delay
    }
}

fn encode_skip_token(offset: usize) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("sandbox-offset:{offset}"))
}

fn decode_skip_token(token: &str) -> Option<usize> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("sandbox-offset:")?
        .parse()
        .ok()
}

pub(crate) fn group_to_json(sub: &str, g: &Group) -> Value {
    let mut v = json!({
        "id": format!("/subscriptions/{sub}/resourceGroups/{}", g.name),
        "name": g.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": g.location,
        "properties": {"provisioningState": if g.deleting.is_some() { "Deleting" } else { "Succeeded" }},
    });
    if !g.tags.is_empty() {
        v["tags"] = Value::Object(g.tags.clone());
    }
    if let Some(m) = &g.managed_by {
        v["managedBy"] = json!(m);
    }
    v
}
