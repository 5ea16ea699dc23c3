//! `azure.roleCheck`: a plan-time check that the credential holds a role granting what the plan
//! needs at a scope (the subscription for registrations; each resource group for the group and
//! its clusters).

use super::{connected_cluster, resource_group, resource_provider, subscription};
use crate::azure::cloud::ApiKind;
use crate::azure::context::AzureCx;
use crate::azure::permissions::{Permission, missing, roles_granting};
use crate::azure::shared::{diag_from, scoped_name, unscoped_name};
use crate::kind::{Kind, attributes};
use crate::kubernetes::kinds::onboarding_key;
use arcplan_config::Config;
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::diag::Diagnostics;
use arcplan_engine::graph::{GraphBuilder, Mode};
use arcplan_engine::plan::{Action, CheckResult, CheckStatus};
use arcplan_engine::provider::{CheckRequest, CheckResponse};
use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The type.
pub const TYPE: ResourceType = ResourceType::of("azure.roleCheck");

/// The declared attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// The ARM scope.
    pub scope: String,
    /// Where to look when the scope does not exist yet (a group not created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_scope: Option<String>,
    /// Roles of which the credential must hold one (empty: any that grants the actions).
    pub require_any_role: Vec<String>,
    /// The addresses whose changes need the permission.
    pub covers: Vec<String>,
}

/// The check of a resource group's scope (in the file's own subscription).
pub fn address(resource_group: &str) -> Address {
    Address::new(TYPE, resource_group)
}

/// The check of the scope of group `resource_group` in subscription `sub`.
pub fn address_in(cfg: &Config, sub: &str, resource_group: &str) -> Address {
    Address::new(
        TYPE,
        scoped_name(&cfg.azure.subscription, sub, resource_group),
    )
}

/// One check for the subscription (when registrations are declared) and one per resource group.
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    let roles = cfg
        .access
        .as_ref()
        .map(|a| a.require_any_role.clone())
        .unwrap_or_default();
    let registrations = b.of_type(&resource_provider::TYPE);
    // One check of each subscription's registrations.
    for sub in cfg.subscriptions() {
        let mine: Vec<&Address> = (registrations.iter())
            .filter(|p| {
                unscoped_name(&cfg.azure.subscription, &p.name)
                    .0
                    .eq_ignore_ascii_case(sub)
            })
            .collect();
        if mine.is_empty() {
            continue;
        }
        let a = Address::new(
            TYPE,
            scoped_name(&cfg.azure.subscription, sub, "subscription"),
        );
        let mut covers: Vec<String> = mine.iter().map(ToString::to_string).collect();
        covers.sort_by_key(|c| c.to_ascii_lowercase());
        covers.dedup_by_key(|c| c.to_ascii_lowercase());
        let attrs = Attributes {
            scope: format!("/subscriptions/{sub}"),
            fallback_scope: None,
            require_any_role: roles.clone(),
            covers,
        };
        b.node(a.clone(), Mode::PlanCheck, &attrs, "access");
        b.edge(&a, &subscription::address_of(sub));
        for p in mine {
            b.edge(p, &a);
        }
    }
    for (i, rg) in cfg.resource_groups.iter().enumerate() {
        let sub = cfg.group_subscription(rg);
        let check = address_in(cfg, sub, &rg.name);
        let in_group =
            |s: &str, g: &str| s.eq_ignore_ascii_case(sub) && g.eq_ignore_ascii_case(&rg.name);
        let clusters: Vec<_> = cfg
            .clusters
            .iter()
            .filter(|c| in_group(cfg.cluster_subscription(c), &c.resource_group))
            .collect();
        let mut covers = vec![resource_group::address_in(cfg, sub, &rg.name).to_string()];
        covers.extend(
            clusters
                .iter()
                .map(|c| connected_cluster::address(&c.name).to_string()),
        );
        covers.extend(
            cfg.custom_locations
                .iter()
                .filter(|l| in_group(cfg.custom_location_subscription(l), &l.resource_group))
                .map(|l| super::custom_location::address(&l.name).to_string()),
        );
        covers.extend(clusters.iter().flat_map(|c| {
            c.extensions
                .iter()
                .map(|e| super::extension::address(&c.name, &e.name).to_string())
        }));
        covers.extend(
            clusters
                .iter()
                .flat_map(|c| super::flux::covered(c))
                .map(|a| a.to_string()),
        );
        let attrs = Attributes {
            scope: format!("/subscriptions/{sub}/resourceGroups/{}", rg.name),
            fallback_scope: Some(format!("/subscriptions/{sub}")),
            require_any_role: roles.clone(),
            covers,
        };
        b.node(
            check.clone(),
            Mode::PlanCheck,
            &attrs,
            format!("resourceGroups[{i}]"),
        );
        b.edge(&check, &subscription::address_of(sub));
        b.edge(&resource_group::address_in(cfg, sub, &rg.name), &check);
    }
    // Every cluster's key and connected cluster wait for the check of its group.
    for c in &cfg.clusters {
        let check = address_in(cfg, cfg.cluster_subscription(c), &c.resource_group);
        b.edge(&onboarding_key::address(&c.name), &check);
        b.edge(&connected_cluster::address(&c.name), &check);
    }
}

/// What one planned change needs of the credential at its check's scope. Each kind that needs
/// permissions declares its `needs`; the provider gives the check the table of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Needs {
    /// ARM actions, such as `Microsoft.Resources/subscriptions/resourceGroups/write`.
    pub actions: Vec<String>,
    /// The change creates the check's scope (a new group): the check looks at its fallback
    /// scope, where the permission must be held.
    pub creates_scope: bool,
}

impl Needs {
    /// These actions.
    pub fn actions<S: Into<String>>(actions: impl IntoIterator<Item = S>) -> Self {
        Self {
            actions: actions.into_iter().map(Into::into).collect(),
            creates_scope: false,
        }
    }

    /// What a change of a resource of ARM type `arm_type` needs: `write` to create or update,
    /// `delete` to delete, both to replace.
    pub fn of_type(arm_type: &str, action: Action) -> Self {
        let (write, delete) = (format!("{arm_type}/write"), format!("{arm_type}/delete"));
        match action {
            Action::Create | Action::Update => Self::actions([write]),
            Action::Replace => Self::actions([delete, write]),
            Action::Delete => Self::actions([delete]),
            _ => Self::default(),
        }
    }

    /// The change also creates the check's scope.
    pub fn creating_scope(mut self) -> Self {
        self.creates_scope = true;
        self
    }
}

/// A kind's needs for a change of one of its resources.
pub type NeedsOf = fn(&Address, Action) -> Needs;

/// The kind: the credential's effective permissions at the scope, for the changes it covers,
/// naming the missing actions and the roles that grant them.
pub struct RoleCheck;

#[async_trait]
impl Kind<AzureCx> for RoleCheck {
    fn rtype(&self) -> ResourceType {
        TYPE
    }

    async fn check(&self, cx: &AzureCx, req: &CheckRequest) -> CheckResponse {
        let mut result = CheckResult {
            address: req.address.clone(),
            status: CheckStatus::Pass,
            summary: String::new(),
            fix: None,
            details: None,
            depends_on: Vec::new(),
            desired: None,
        };
        let mut diagnostics = Diagnostics::new();
        let attrs: Attributes = match attributes(&req.address, &req.desired) {
            Ok(a) => a,
            Err(d) => {
                result.status = CheckStatus::Fail;
                result.summary = d.message.clone();
                diagnostics.push(d);
                return CheckResponse {
                    result,
                    diagnostics,
                };
            }
        };
        let mut needed: Vec<String> = Vec::new();
        let mut scope_created = false;
        for c in req
            .changes
            .iter()
            .filter(|c| attrs.covers.contains(&c.address.to_string()))
        {
            // Another shard's change: its owner checks its rights; here it only says whether
            // the scope exists yet.
            if let Some(owner) = cx.owner_needs(c) {
                scope_created |= owner.creates_scope;
                continue;
            }
            let needs = cx.needs_of(c);
            scope_created |= needs.creates_scope;
            for a in needs.actions {
                if !needed.iter().any(|n| n.eq_ignore_ascii_case(&a)) {
                    needed.push(a);
                }
            }
        }
        let scope = match attrs.fallback_scope.as_deref() {
            Some(f) if scope_created && !f.is_empty() => f.to_owned(),
            _ => attrs.scope.clone(),
        };
        if needed.is_empty() {
            result.summary = format!("no planned change needs permissions at {scope}");
            return CheckResponse {
                result,
                diagnostics,
            };
        }
        let list = cx.req(
            Method::GET,
            &format!("{scope}/providers/Microsoft.Authorization/permissions"),
            ApiKind::Authorization,
            None,
        );
        let perms: Vec<Permission> = match cx.arm.list_all(&list).await {
            Ok(items) => items.iter().map(Permission::from_json).collect(),
            Err(e) => {
                diagnostics.push(diag_from(&e, &req.address));
                result.status = CheckStatus::Fail;
                result.summary = format!("cannot read the credential's permissions at {scope}");
                return CheckResponse {
                    result,
                    diagnostics,
                };
            }
        };
        let absent = missing(&perms, &needed);
        let principal = match (
            cx.arm.token_claim("appid").await,
            cx.arm.token_claim("oid").await,
        ) {
            (Some(app), Some(oid)) => format!("application {app} (object id {oid})"),
            (None, Some(oid)) => format!("object id {oid}"),
            (Some(app), None) => format!("application {app}"),
            _ => "the signed-in principal".to_owned(),
        };
        if absent.is_empty() {
            result.summary = format!("{principal} may {} at {scope}", needed.join(", "));
        } else {
            let roles = roles_granting(&needed, &attrs.require_any_role);
            result.status = CheckStatus::Fail;
            result.summary = format!("{principal} lacks {} at {scope}", absent.join(", "));
            let assignee = cx
                .arm
                .token_claim("oid")
                .await
                .unwrap_or_else(|| "<principal>".into());
            result.fix = Some(match roles.first() {
                Some(r) => format!(
                    "grant {} at {scope}, e.g. `az role assignment create --assignee {assignee} --role \"{r}\" --scope {scope}`",
                    roles
                        .iter()
                        .map(|r| format!("\"{r}\""))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
                None => format!(
                    "grant a role that includes {} at {scope}",
                    absent.join(", ")
                ),
            });
            result.details = Some(
                json!({"principal": principal, "scope": scope, "missing": absent, "needed": needed, "rolesThatGrant": roles}),
            );
        }
        CheckResponse {
            result,
            diagnostics,
        }
    }
}
