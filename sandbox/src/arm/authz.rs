//! Azure RBAC model of the ARM emulator: built-in role definitions, role assignments and the action
//! matching ARM applies (`actions` minus `notActions`, `*` wildcards, case-insensitive).
//!
//! Limits: only four built-in roles exist (Owner, Contributor, Reader, Kubernetes Cluster - Azure Arc
//! Onboarding); no custom roles, deny assignments, conditions or data actions.

use serde_json::{Value, json};

/// The sandbox principal's role, assigned at subscription scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrincipalRole {
    /// Owner: `*`.
    #[default]
    Owner,
    /// Contributor: `*` except role assignment writes/deletes and a few other actions.
    Contributor,
    /// Kubernetes Cluster - Azure Arc Onboarding: create/read connected clusters only.
    ArcOnboarding,
    /// Reader: `*/read`.
    Reader,
    /// No role assignment at all.
    None,
}

impl PrincipalRole {
    /// The built-in role definition behind this role (`None` has none).
    pub fn definition(self) -> Option<&'static RoleDefinition> {
        let id = match self {
            PrincipalRole::Owner => OWNER_ID,
            PrincipalRole::Contributor => CONTRIBUTOR_ID,
            PrincipalRole::ArcOnboarding => ARC_ONBOARDING_ID,
            PrincipalRole::Reader => READER_ID,
            PrincipalRole::None => return None,
        };
        BUILTIN_ROLES.iter().find(|r| r.id == id)
    }

    /// Parses `Owner`, `Contributor`, `ArcOnboarding` (or the role's display name), `Reader`, `None`,
    /// case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "owner" => PrincipalRole::Owner,
            "contributor" => PrincipalRole::Contributor,
            "arconboarding" | "arc-onboarding" | "kubernetes cluster - azure arc onboarding" => {
                PrincipalRole::ArcOnboarding
            }
            "reader" => PrincipalRole::Reader,
            "none" => PrincipalRole::None,
            _ => return None,
        })
    }
}

/// Role definition id of Owner.
pub const OWNER_ID: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
/// Role definition id of Contributor.
pub const CONTRIBUTOR_ID: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
/// Role definition id of Reader.
pub const READER_ID: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
/// Role definition id of Kubernetes Cluster - Azure Arc Onboarding.
pub const ARC_ONBOARDING_ID: &str = "34e09817-6cbe-4d01-b1a2-e0eac5743d41";

/// A built-in role definition.
#[derive(Debug)]
pub struct RoleDefinition {
    /// The role definition's GUID.
    pub id: &'static str,
    /// Display name (`roleName`).
    pub name: &'static str,
    /// Description, as in Azure.
    pub description: &'static str,
    /// Allowed actions (wildcards allowed).
    pub actions: &'static [&'static str],
    /// Excluded actions.
    pub not_actions: &'static [&'static str],
}

impl RoleDefinition {
    /// Whether this role allows `action`.
    pub fn permits(&self, action: &str) -> bool {
        self.actions.iter().any(|p| action_matches(p, action))
            && !self.not_actions.iter().any(|p| action_matches(p, action))
    }

    /// The role definition as ARM returns it, with an id under `scope` (`""` for tenant scope).
    pub fn to_json(&self, scope: &str) -> Value {
        json!({
            "id": format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{}", self.id),
            "name": self.id,
            "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {
                "roleName": self.name,
                "type": "BuiltInRole",
                "description": self.description,
                "assignableScopes": ["/"],
                "permissions": [{
                    "actions": self.actions,
                    "notActions": self.not_actions,
                    "dataActions": [],
                    "notDataActions": [],
                }],
                "createdOn": "2015-02-02T21:55:09.8806423Z",
                "updatedOn": "2024-04-26T16:05:00.0000000Z",
            }
        })
    }
}

/// The built-in roles the sandbox knows, with their real actions.
pub static BUILTIN_ROLES: &[RoleDefinition] = &[
    RoleDefinition {
        id: OWNER_ID,
        name: "Owner",
        description: "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        actions: &["*"],
        not_actions: &[],
    },
    RoleDefinition {
        id: CONTRIBUTOR_ID,
        name: "Contributor",
        description: "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
        actions: &["*"],
        not_actions: &[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write",
            "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action",
            "Microsoft.Purview/consents/write",
            "Microsoft.Purview/consents/delete",
            "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
            "Microsoft.Subscription/cancel/action",
            "Microsoft.Subscription/enable/action",
        ],
    },
    RoleDefinition {
        id: READER_ID,
        name: "Reader",
        description: "View all resources, but does not allow you to make any changes.",
        actions: &["*/read"],
        not_actions: &[],
    },
    RoleDefinition {
        id: ARC_ONBOARDING_ID,
        name: "Kubernetes Cluster - Azure Arc Onboarding",
        description: "Role definition to authorize any user/service to create connectedClusters resource",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/AlertRules/*",
            "Microsoft.Resources/deployments/write",
            "Microsoft.Resources/subscriptions/operationresults/read",
            "Microsoft.Resources/subscriptions/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Kubernetes/connectedClusters/Write",
            "Microsoft.Kubernetes/connectedClusters/read",
            "Microsoft.Support/*",
        ],
        not_actions: &[],
    },
];

/// Looks a built-in role up by GUID (case-insensitive).
pub fn role_by_id(id: &str) -> Option<&'static RoleDefinition> {
    BUILTIN_ROLES.iter().find(|r| r.id.eq_ignore_ascii_case(id))
}

/// Whether an RBAC action pattern (with `*` wildcards) matches `action`, case-insensitively.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let a: Vec<char> = action.to_ascii_lowercase().chars().collect();
    // Iterative glob matching with backtracking on the last `*`.
    let (mut pi, mut ai) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ai < a.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == a[ai] {
            pi += 1;
            ai += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ai;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ai = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether `scope` is `ancestor` or lies below it (segment-wise, case-insensitive).
pub fn scope_contains(ancestor: &str, scope: &str) -> bool {
    let a = ancestor.trim_end_matches('/').to_ascii_lowercase();
    let s = scope.trim_end_matches('/').to_ascii_lowercase();
    a.is_empty() || s == a || s.starts_with(&format!("{a}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_arm() {
        assert!(action_matches(
            "*",
            "Microsoft.Kubernetes/connectedClusters/delete"
        ));
        assert!(action_matches(
            "*/read",
            "Microsoft.Resources/subscriptions/read"
        ));
        assert!(!action_matches(
            "*/read",
            "Microsoft.Resources/subscriptions/resourceGroups/write"
        ));
        assert!(action_matches(
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/roleAssignments/write"
        ));
        assert!(action_matches(
            "Microsoft.Support/*",
            "Microsoft.Support/tickets/write"
        ));
    }

    #[test]
    fn roles_allow_what_azure_allows() {
        let onboarding = PrincipalRole::ArcOnboarding.definition().unwrap();
        assert!(onboarding.permits("Microsoft.Kubernetes/connectedClusters/write"));
        assert!(!onboarding.permits("Microsoft.Kubernetes/connectedClusters/delete"));
        assert!(!onboarding.permits("Microsoft.Kubernetes/register/action"));
        let contributor = PrincipalRole::Contributor.definition().unwrap();
        assert!(contributor.permits("Microsoft.Kubernetes/register/action"));
        assert!(!contributor.permits("Microsoft.Authorization/roleAssignments/write"));
        assert!(contributor.permits("Microsoft.Authorization/roleAssignments/read"));
        assert!(PrincipalRole::None.definition().is_none());
    }

    #[test]
    fn scopes_nest() {
        assert!(scope_contains(
            "/subscriptions/A",
            "/subscriptions/a/resourceGroups/x"
        ));
        assert!(!scope_contains("/subscriptions/a", "/subscriptions/ab"));
    }
}
