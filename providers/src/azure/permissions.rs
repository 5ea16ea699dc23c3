//! Effective permissions: which ARM actions a planned change needs, whether the credential's
//! `Microsoft.Authorization/permissions` grant them (actions / notActions with wildcards, as
//! ARM evaluates them; custom roles included), and which built-in roles would.

use serde_json::Value;

/// One `permissions` entry: what it allows and what it carves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permission {
    /// Allowed actions (may contain `*`).
    pub actions: Vec<String>,
    /// Excluded actions (may contain `*`).
    pub not_actions: Vec<String>,
}

impl Permission {
    /// Parses one entry of the `permissions` list.
    pub fn from_json(v: &Value) -> Permission {
        let list = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        Permission {
            actions: list("actions"),
            not_actions: list("notActions"),
        }
    }

    fn allows(&self, action: &str) -> bool {
        self.actions.iter().any(|p| matches(p, action))
            && !self.not_actions.iter().any(|p| matches(p, action))
    }
}

/// ARM's wildcard match: `*` matches any run of characters; comparison ignores case.
pub fn matches(pattern: &str, action: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let a = action.to_ascii_lowercase();
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == a;
    }
    let mut rest = a.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// The actions of `needed` that no permission entry grants.
pub fn missing(permissions: &[Permission], needed: &[String]) -> Vec<String> {
    needed
        .iter()
        .filter(|a| !permissions.iter().any(|p| p.allows(a)))
        .cloned()
        .collect()
}

/// Built-in roles relevant to onboarding, by name, with their permissions (from Azure's role
/// definitions; Contributor's exclusions abridged to those that matter here).
pub fn builtin_roles() -> Vec<(&'static str, Permission)> {
    let p = |a: &[&str], n: &[&str]| Permission {
        actions: a.iter().map(|s| s.to_string()).collect(),
        not_actions: n.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        ("Owner", p(&["*"], &[])),
        (
            "Contributor",
            p(
                &["*"],
                &[
                    "Microsoft.Authorization/*/Delete",
                    "Microsoft.Authorization/*/Write",
                    "Microsoft.Authorization/elevateAccess/Action",
                    "Microsoft.Blueprint/blueprintAssignments/write",
                    "Microsoft.Blueprint/blueprintAssignments/delete",
                ],
            ),
        ),
        (
            "Kubernetes Cluster - Azure Arc Onboarding",
            p(
                &[
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
                &[],
            ),
        ),
        ("Reader", p(&["*/read"], &[])),
    ]
}

/// The built-in roles (preferring those in `preferred`, in its order) that grant every action
/// in `actions`.
pub fn roles_granting(actions: &[String], preferred: &[String]) -> Vec<String> {
    let roles = builtin_roles();
    let grants = |perm: &Permission| missing(std::slice::from_ref(perm), actions).is_empty();
    let mut out: Vec<String> = preferred
        .iter()
        .filter(|name| {
            roles
                .iter()
                .any(|(n, p)| n.eq_ignore_ascii_case(name) && grants(p))
        })
        .cloned()
        .collect();
    if out.is_empty() {
        out = roles
            .iter()
            .filter(|(_, p)| grants(p))
            .map(|(n, _)| n.to_string())
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> Permission {
        builtin_roles()
            .into_iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
    }

    #[test]
    fn wildcards_match_like_arm() {
        assert!(matches("*", "Microsoft.Kubernetes/connectedClusters/write"));
        assert!(matches(
            "*/read",
            "Microsoft.Kubernetes/connectedClusters/read"
        ));
        assert!(!matches(
            "*/read",
            "Microsoft.Kubernetes/connectedClusters/write"
        ));
        assert!(matches(
            "Microsoft.Kubernetes/connectedClusters/Write",
            "microsoft.kubernetes/connectedclusters/write"
        ));
        assert!(matches(
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/roleAssignments/write"
        ));
        assert!(!matches(
            "Microsoft.Authorization/*/Write",
            "Microsoft.Kubernetes/x/write"
        ));
    }

    #[test]
    fn the_onboarding_role_creates_but_cannot_delete_or_register() {
        let onboarding = role("Kubernetes Cluster - Azure Arc Onboarding");
        let create = vec![
            "Microsoft.Kubernetes/connectedClusters/write".to_owned(),
            "Microsoft.Kubernetes/connectedClusters/read".to_owned(),
        ];
        assert!(missing(std::slice::from_ref(&onboarding), &create).is_empty());
        let delete = vec!["Microsoft.Kubernetes/connectedClusters/delete".to_owned()];
        assert_eq!(missing(std::slice::from_ref(&onboarding), &delete), delete);
        let register = vec!["Microsoft.Kubernetes/register/action".to_owned()];
        assert_eq!(missing(&[onboarding], &register), register);
        assert!(missing(&[role("Contributor")], &register).is_empty());
        assert_eq!(missing(&[role("Reader")], &create), vec![create[0].clone()]);
    }

    #[test]
    fn suggests_the_preferred_roles_that_grant_the_actions() {
        let delete = vec!["Microsoft.Kubernetes/connectedClusters/delete".to_owned()];
        let preferred: Vec<String> = [
            "Kubernetes Cluster - Azure Arc Onboarding",
            "Contributor",
            "Owner",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            roles_granting(&delete, &preferred),
            vec!["Contributor", "Owner"]
        );
        assert_eq!(roles_granting(&delete, &[]), vec!["Owner", "Contributor"]);
    }
}
