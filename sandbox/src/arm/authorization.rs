//! `Microsoft.Authorization` in the ARM emulator: effective permissions, role assignments and
//! (built-in) role definitions at any scope.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::authz::{BUILTIN_ROLES, role_by_id, scope_contains};
use super::request::{json_body, only};
use super::routing::{ApiVersions, ArmRoute, Kind, Parsed, by_method, not_found_path};
use super::state::{ArmState, Assignment};
use super::{ArmError, Ctx, eq, json_response};

const ASSIGNMENT_TYPE: &str = "Microsoft.Authorization/roleAssignments";

/// `Microsoft.Authorization` after any scope. Asked before the kinds whose paths it may extend.
pub(crate) const KIND: Kind = Kind {
    name: "authorization",
    parse,
};

#[derive(Debug, Clone)]
pub(crate) enum AuthzKind {
    Permissions,
    AssignmentList,
    Assignment(String),
    DefinitionList,
    Definition(String),
}

#[derive(Debug, Clone)]
struct AuthzRoute {
    scope: String,
    sub: Option<String>,
    rg: Option<String>,
    kind: AuthzKind,
}

fn parse(s: &[&str], path: &str) -> Parsed {
    // Use the last `providers/Microsoft.Authorization`.
    let i = (0..s.len().saturating_sub(1))
        .rev()
        .find(|&i| eq(s[i], "providers") && eq(s[i + 1], "Microsoft.Authorization"))?;
    Some(parse_at(s, i, path).map(|r| Box::new(r) as Box<dyn ArmRoute>))
}

fn parse_at(s: &[&str], i: usize, path: &str) -> Result<AuthzRoute, ArmError> {
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
    Ok(AuthzRoute {
        scope,
        sub,
        rg,
        kind,
    })
}

impl ArmRoute for AuthzRoute {
    fn versions(&self) -> ApiVersions {
        match self.kind {
            AuthzKind::AssignmentList | AuthzKind::Assignment(_) => ApiVersions::ROLE_ASSIGNMENTS,
            _ => ApiVersions::ROLE_DEFINITIONS,
        }
    }

    fn subscription(&self) -> Option<&str> {
        self.sub.as_deref()
    }

    fn action(&self, method: &Method, _path: &str) -> Option<(String, String)> {
        let scope = if self.scope.is_empty() {
            "/".to_string()
        } else {
            self.scope.clone()
        };
        let what = match self.kind {
            AuthzKind::Permissions => return None,
            AuthzKind::AssignmentList | AuthzKind::Assignment(_) => "roleAssignments",
            AuthzKind::DefinitionList | AuthzKind::Definition(_) => "roleDefinitions",
        };
        let a = |verb: &str| format!("Microsoft.Authorization/{what}/{verb}");
        Some((
            by_method(method, &a("read"), &a("write"), &a("delete")),
            scope,
        ))
    }

    fn handle(&self, st: &mut ArmState, ctx: &Ctx) -> Result<Response, ArmError> {
        st.authorization(
            ctx,
            &self.scope,
            self.sub.as_deref(),
            self.rg.as_deref(),
            self.kind.clone(),
        )
    }
}

fn filter_value<'a>(filter: &'a str, key: &str) -> Option<&'a str> {
    // `key eq 'value'` or `key('value')`.
    let lower = filter.to_ascii_lowercase();
    let k = key.to_ascii_lowercase();
    let pos = lower.find(&k)?;
    let rest = &filter[pos + key.len()..];
    let start = rest.find('\'')? + 1;
    let end = rest[start..].find('\'')? + start;
    Some(&rest[start..end])
}

impl ArmState {
    fn sub_scope(&self, sub: Option<&str>) -> String {
        sub.and_then(|s| self.subs.get(&s.to_ascii_lowercase()))
            .map(|s| format!("/subscriptions/{}", s.id))
            .unwrap_or_default()
    }

    fn assignment_json(&self, a: &Assignment) -> Value {
        let sub = a
            .scope
            .split('/')
            .nth(2)
            .map(|s| format!("/subscriptions/{s}"))
            .unwrap_or_default();
        json!({
            "id": format!("{}/providers/{ASSIGNMENT_TYPE}/{}", a.scope, a.name),
            "name": a.name,
            "type": ASSIGNMENT_TYPE,
            "properties": {
                "roleDefinitionId": format!("{sub}/providers/Microsoft.Authorization/roleDefinitions/{}", a.role_id),
                "principalId": a.principal_id,
                "principalType": "ServicePrincipal",
                "scope": a.scope,
                "createdOn": "2024-01-01T00:00:00.0000000Z",
                "updatedOn": "2024-01-01T00:00:00.0000000Z",
                "createdBy": self.cfg.principal_object_id,
                "updatedBy": self.cfg.principal_object_id,
            }
        })
    }

    fn known_principal(&self, id: &str) -> bool {
        eq(id, &self.cfg.principal_object_id)
            || self.all_clusters().iter().any(|(_, _, c)| {
                c["identity"]["principalId"]
                    .as_str()
                    .is_some_and(|p| eq(p, id))
            })
    }

    fn authorization(
        &mut self,
        ctx: &Ctx,
        scope: &str,
        sub: Option<&str>,
        rg: Option<&str>,
        kind: AuthzKind,
    ) -> Result<Response, ArmError> {
        if let (Some(s), Some(rg)) = (sub, rg)
            && self.group(s, rg).is_none()
        {
            return Err(ArmError::rg_not_found(rg));
        }
        match kind {
            AuthzKind::Permissions => {
                only(ctx, &[Method::GET])?;
                let mut value: Vec<Value> = Vec::new();
                for a in &self.assignments {
                    if !eq(&a.principal_id, &ctx.claims.oid) || !scope_contains(&a.scope, scope) {
                        continue;
                    }
                    if let Some(def) = role_by_id(a.role_id) {
                        let p = json!({
                            "actions": def.actions,
                            "notActions": def.not_actions,
                            "dataActions": [],
                            "notDataActions": [],
                        });
                        if !value.contains(&p) {
                            value.push(p);
                        }
                    }
                }
                Ok(json_response(StatusCode::OK, &json!({ "value": value })))
            }
            AuthzKind::AssignmentList => {
                only(ctx, &[Method::GET])?;
                let filter = ctx.q("$filter").unwrap_or("");
                let at_scope = filter.to_ascii_lowercase().contains("atscope()");
                let principal = filter_value(filter, "principalId")
                    .or_else(|| filter_value(filter, "assignedTo"));
                let items: Vec<Value> = self
                    .assignments
                    .iter()
                    .filter(|a| {
                        scope_contains(&a.scope, scope)
                            || (!at_scope && scope_contains(scope, &a.scope))
                    })
                    .filter(|a| principal.is_none_or(|p| eq(p, &a.principal_id)))
                    .map(|a| self.assignment_json(a))
                    .collect();
                Ok(json_response(StatusCode::OK, &self.page(ctx, items)?))
            }
            AuthzKind::Assignment(name) => {
                only(ctx, &[Method::GET, Method::PUT, Method::DELETE])?;
                let pos = self
                    .assignments
                    .iter()
                    .position(|a| eq(&a.name, &name) && eq(&a.scope, scope));
                if ctx.method == Method::GET {
                    return match pos {
                        Some(i) => Ok(json_response(
                            StatusCode::OK,
                            &self.assignment_json(&self.assignments[i]),
                        )),
                        None => Err(ArmError::new(
                            StatusCode::NOT_FOUND,
                            "RoleAssignmentNotFound",
                            format!("The role assignment '{name}' is not found."),
                        )),
                    };
                }
                if ctx.method == Method::DELETE {
                    return match pos {
                        Some(i) => {
                            let a = self.assignments.remove(i);
                            Ok(json_response(StatusCode::OK, &self.assignment_json(&a)))
                        }
                        None => Ok(StatusCode::NO_CONTENT.into_response()),
                    };
                }
                if uuid::Uuid::parse_str(&name).is_err() {
                    return Err(ArmError::bad_request(
                        "InvalidRoleAssignmentId",
                        format!(
                            "The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."
                        ),
                    ));
                }
                let body = json_body(ctx, false)?;
                let props = body
                    .get("properties")
                    .and_then(Value::as_object)
                    .ok_or_else(|| {
                        ArmError::invalid_content(
                            "properties",
                            "The 'properties' property is required.",
                        )
                    })?;
                let role_def = props
                    .get("roleDefinitionId")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let role_guid = role_def.rsplit('/').next().unwrap_or("");
                let Some(def) = role_by_id(role_guid) else {
                    return Err(ArmError::bad_request(
                        "RoleDefinitionDoesNotExist",
                        format!(
                            "The specified role definition with ID '{role_guid}' does not exist."
                        ),
                    ));
                };
                let principal = props
                    .get("principalId")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if !self.known_principal(&principal) {
                    return Err(ArmError::bad_request(
                        "PrincipalNotFound",
                        format!(
                            "Principal {} does not exist in the directory {}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
                            principal.replace('-', ""),
                            self.cfg.tenant_id
                        ),
                    ));
                }
                if let Some(i) = pos {
                    let a = &self.assignments[i];
                    if a.role_id == def.id && eq(&a.principal_id, &principal) {
                        return Ok(json_response(StatusCode::OK, &self.assignment_json(a)));
                    }
                    return Err(ArmError::conflict(
                        "RoleAssignmentUpdateNotPermitted",
                        "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                    ));
                }
                if self.assignments.iter().any(|a| {
                    eq(&a.scope, scope) && a.role_id == def.id && eq(&a.principal_id, &principal)
                }) {
                    return Err(ArmError::conflict(
                        "RoleAssignmentExists",
                        "The role assignment already exists.",
                    ));
                }
                let a = Assignment {
                    name: name.to_ascii_lowercase(),
                    scope: scope.to_string(),
                    role_id: def.id,
                    principal_id: principal,
                };
                let v = self.assignment_json(&a);
                self.assignments.push(a);
                Ok(json_response(StatusCode::CREATED, &v))
            }
            AuthzKind::DefinitionList => {
                only(ctx, &[Method::GET])?;
                let filter = ctx.q("$filter").unwrap_or("");
                let role_name = filter_value(filter, "roleName");
                let role_type = filter_value(filter, "type");
                let base = self.sub_scope(sub);
                let items: Vec<Value> = BUILTIN_ROLES
                    .iter()
                    .filter(|r| role_name.is_none_or(|n| eq(n, r.name)))
                    .filter(|_| role_type.is_none_or(|t| eq(t, "BuiltInRole")))
                    .map(|r| r.to_json(&base))
                    .collect();
                Ok(json_response(StatusCode::OK, &self.page(ctx, items)?))
            }
            AuthzKind::Definition(id) => {
                only(ctx, &[Method::GET, Method::PUT, Method::DELETE])?;
                if ctx.method != Method::GET {
                    return Err(ArmError::bad_request(
                        "NotSupportedInSandbox",
                        "Custom role definitions are not emulated by the arcplan sandbox.",
                    ));
                }
                match role_by_id(&id) {
                    Some(r) => Ok(json_response(
                        StatusCode::OK,
                        &r.to_json(&self.sub_scope(sub)),
                    )),
                    None => Err(ArmError::new(
                        StatusCode::NOT_FOUND,
                        "RoleDefinitionDoesNotExist",
                        format!("The specified role definition with ID '{id}' does not exist."),
                    )),
                }
            }
        }
    }
}
