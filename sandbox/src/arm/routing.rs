//! Request routing of the ARM emulator, and the checks every request goes through in this order:
//! the path (404), `api-version` (400), the subscription and the token's tenant (404, 401), RBAC
//! (403), then the handler.
//!
//! A resource kind registers here in one place: one [`Kind`] in [`KINDS`], whose `parse` turns the
//! path segments it recognises into an [`ArmRoute`]; the route names its api-versions, its
//! subscription, its RBAC action and scope, and serves the request.

use axum::http::{Method, StatusCode};
use axum::response::Response;

use super::catalog::{
    ARC_LOCATIONS, KUBERNETES_VERSIONS, RESOURCES_VERSIONS, ROLE_ASSIGNMENT_VERSIONS,
    ROLE_DEFINITION_VERSIONS, normalize_location,
};
use super::state::ArmState;
use super::{
    ArmError, Ctx, authorization, clusters, custom_locations, eq, extensions, flux, operations,
    resources, tenancy,
};
use crate::entra::TokenClaims;

/// The api-versions a route accepts, and the resource provider type named when a version is
/// refused (`NoRegisteredProviderFound`; `InvalidApiVersionParameter` when there is none).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiVersions {
    pub supported: &'static [&'static str],
    pub rp_type: Option<&'static str>,
}

impl ApiVersions {
    /// `Microsoft.Resources` types (ARM itself answers for them).
    pub(crate) const RESOURCES: Self = Self {
        supported: RESOURCES_VERSIONS,
        rp_type: None,
    };
    /// `Microsoft.Kubernetes` (the resource provider answers).
    pub(crate) const KUBERNETES: Self = Self {
        supported: KUBERNETES_VERSIONS,
        rp_type: Some("connectedClusters"),
    };
    /// Role assignments.
    pub(crate) const ROLE_ASSIGNMENTS: Self = Self {
        supported: ROLE_ASSIGNMENT_VERSIONS,
        rp_type: None,
    };
    /// Role definitions and permissions.
    pub(crate) const ROLE_DEFINITIONS: Self = Self {
        supported: ROLE_DEFINITION_VERSIONS,
        rp_type: None,
    };
}

/// One parsed request path of one resource kind.
pub(crate) trait ArmRoute {
    /// The api-versions accepted.
    fn versions(&self) -> ApiVersions;
    /// The subscription the path is in (checked to exist and to belong to the token's tenant).
    fn subscription(&self) -> Option<&str>;
    /// The RBAC action and scope the request needs, if any.
    fn action(&self, method: &Method, path: &str) -> Option<(String, String)>;
    /// The location named in `NoRegisteredProviderFound` (the stored resource's, if any).
    fn location_hint(&self, _st: &ArmState) -> String {
        String::new()
    }
    /// Serves the request (every check passed).
    fn handle(&self, st: &mut ArmState, ctx: &Ctx) -> Result<Response, ArmError>;
}

/// What a kind makes of a path: `None` when the path is not its, `Some(Err)` when it is but is
/// malformed.
pub(crate) type Parsed = Option<Claimed>;

/// A kind's route for a path it claims, or ARM's error for it.
pub(crate) type Claimed = Result<Box<dyn ArmRoute>, ArmError>;

/// A resource kind the emulator serves: its name (for diagnostics and tests) and its route parser.
pub(crate) struct Kind {
    /// Read by the routing tests (which kind claims which path).
    #[cfg_attr(not(test), allow(dead_code))]
    pub name: &'static str,
    /// Parses the percent-decoded path segments (`path`: the raw path, for 404 messages).
    pub parse: fn(&[&str], &str) -> Parsed,
}

/// Every served kind, asked in this order; the first that claims a path serves it. Tags at a scope
/// come first (their scope may be any resource) and `Microsoft.Authorization` second (it is served
/// after any scope); the others claim disjoint paths.
pub(crate) static KINDS: &[Kind] = &[
    tenancy::KIND,
    authorization::KIND,
    resources::KIND,
    operations::KIND,
    clusters::KIND,
    extensions::KIND,
    custom_locations::KIND,
    flux::KIND,
];

/// `Some(Ok(route))`.
pub(crate) fn route(r: impl ArmRoute + 'static) -> Parsed {
    Some(Ok(Box::new(r)))
}

/// The RBAC action for the request's method: `read` for GET and HEAD, `delete` for DELETE, `write`
/// otherwise.
pub(crate) fn by_method(method: &Method, read: &str, write: &str, delete: &str) -> String {
    if method == Method::GET || method == Method::HEAD {
        read.to_string()
    } else if method == Method::DELETE {
        delete.to_string()
    } else {
        write.to_string()
    }
}

/// `/subscriptions/{s}` (an RBAC scope).
pub(crate) fn sub_scope(s: &str) -> String {
    format!("/subscriptions/{s}")
}

/// `/subscriptions/{s}/resourcegroups/{rg}` (an RBAC scope).
pub(crate) fn rg_scope(s: &str, rg: &str) -> String {
    format!("/subscriptions/{s}/resourcegroups/{rg}")
}

/// ARM's 404 for a path nothing serves.
pub(crate) fn not_found_path(path: &str) -> ArmError {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("The requested resource '{path}' was not found."),
    )
}

/// The index in [`KINDS`] of the kind that claims `segs`, and what it made of them.
fn claim(s: &[&str], path: &str) -> Option<(usize, Claimed)> {
    KINDS
        .iter()
        .enumerate()
        .find_map(|(i, k)| (k.parse)(s, path).map(|r| (i, r)))
}

/// The route of a request path: the first kind that claims it, else ARM's errors for an unknown
/// resource type in a resource group (400) or an unknown path (404).
pub(crate) fn parse_route(segs: &[String], path: &str) -> Claimed {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    if let Some((_, r)) = claim(&s, path) {
        return r;
    }
    match s.as_slice() {
        [a, _id, b, _rg, p, ns, t, ..]
            if eq(a, "subscriptions") && eq(b, "resourceGroups") && eq(p, "providers") =>
        {
            Err(ArmError::bad_request(
                "InvalidResourceType",
                format!(
                    "The resource type '{t}' could not be found in the namespace '{ns}' in the sandbox."
                ),
            ))
        }
        _ => Err(not_found_path(path)),
    }
}

impl ArmState {
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

    /// Routes and serves one request.
    pub fn dispatch(&mut self, ctx: &mut Ctx) -> Result<Response, ArmError> {
        let route = parse_route(&ctx.segs, &ctx.path)?;
        let Some(version) = ctx.q("api-version").map(str::to_string) else {
            return Err(ArmError::bad_request(
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            ));
        };
        let ApiVersions { supported, rp_type } = route.versions();
        if !supported.iter().any(|v| eq(v, &version)) {
            let list = supported.join(", ");
            return Err(match rp_type {
                Some(t) => ArmError::bad_request(
                    "NoRegisteredProviderFound",
                    format!(
                        "No registered resource provider found for location '{}' and API version '{version}' for type '{t}'. The supported api-versions are '{list}'. The supported locations are '{}'.",
                        route.location_hint(self),
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
        route.handle(self, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<&str> {
        path.split('/').filter(|s| !s.is_empty()).collect()
    }

    /// The kinds claiming `path`, by name.
    fn claimants(path: &str) -> Vec<&'static str> {
        let s = segs(path);
        KINDS
            .iter()
            .filter(|k| (k.parse)(&s, path).is_some())
            .map(|k| k.name)
            .collect()
    }

    const SUB: &str = "/subscriptions/00000000-0000-0000-0000-000000000001";

    #[test]
    fn every_path_has_one_kind() {
        let rg = format!("{SUB}/resourceGroups/rg");
        let cc = format!("{rg}/providers/Microsoft.Kubernetes/connectedClusters");
        let cases: Vec<(String, &str)> = vec![
            ("/tenants".into(), "tenancy"),
            (format!("{SUB}/locations"), "tenancy"),
            (
                format!("{SUB}/providers/Microsoft.Resources/tags/default"),
                "tenancy",
            ),
            (
                format!("{cc}/c1/providers/Microsoft.Resources/tags/default"),
                "tenancy",
            ),
            (
                format!("{rg}/providers/Microsoft.Authorization/roleAssignments"),
                "authorization",
            ),
            (
                "/providers/Microsoft.Authorization/roleDefinitions".into(),
                "authorization",
            ),
            ("/subscriptions".into(), "resources"),
            (SUB.into(), "resources"),
            (format!("{SUB}/resourceGroups"), "resources"),
            (rg.clone(), "resources"),
            (format!("{rg}/resources"), "resources"),
            (format!("{SUB}/resources"), "resources"),
            (format!("{SUB}/providers"), "resources"),
            (format!("{SUB}/providers/Microsoft.Kubernetes"), "resources"),
            (
                format!("{SUB}/providers/Microsoft.Kubernetes/register"),
                "resources",
            ),
            (format!("{SUB}/operationresults/op"), "operations"),
            (
                format!(
                    "{SUB}/providers/Microsoft.Kubernetes/locations/eastus/operationStatuses/op"
                ),
                "operations",
            ),
            (
                format!(
                    "{SUB}/providers/Microsoft.Kubernetes/locations/eastus/operationResults/op"
                ),
                "operations",
            ),
            (
                format!("{SUB}/providers/Microsoft.Kubernetes/connectedClusters"),
                "clusters",
            ),
            (cc.clone(), "clusters"),
            (format!("{cc}/c1"), "clusters"),
            (format!("{cc}/c1/listClusterUserCredential"), "clusters"),
            (
                format!("{cc}/c1/providers/Microsoft.KubernetesConfiguration/extensions"),
                "extensions",
            ),
            (
                format!("{rg}/providers/Microsoft.ExtendedLocation/customLocations/l"),
                "customLocations",
            ),
            (
                format!("{SUB}/providers/Microsoft.ExtendedLocation/customLocations"),
                "customLocations",
            ),
            (
                format!("{cc}/c1/providers/Microsoft.KubernetesConfiguration/extensions/e"),
                "extensions",
            ),
            (
                format!(
                    "{cc}/c1/providers/Microsoft.KubernetesConfiguration/extensions/e/operations/o"
                ),
                "extensions",
            ),
            (
                format!("{cc}/c1/providers/Microsoft.KubernetesConfiguration/fluxConfigurations"),
                "fluxConfigurations",
            ),
            (
                format!(
                    "{cc}/c1/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/f/operations/o"
                ),
                "fluxConfigurations",
            ),
        ];
        for (path, kind) in cases {
            assert_eq!(claimants(&path), vec![kind], "{path}");
        }
    }

    #[test]
    fn authorization_wins_over_the_provider_it_is_named_like() {
        // `…/providers/Microsoft.Authorization` reads like a provider, but ARM serves
        // Microsoft.Authorization after any scope: the earlier kind takes it (and 404s).
        let path = format!("{SUB}/providers/Microsoft.Authorization");
        assert_eq!(claimants(&path), vec!["authorization", "resources"]);
        let s = segs(&path);
        let (i, r) = claim(&s, &path).expect("claimed");
        assert_eq!(KINDS[i].name, "authorization");
        assert_eq!(r.err().map(|e| e.code), Some("NotFound".to_string()));
    }

    #[test]
    fn unclaimed_paths_get_arm_errors() {
        let owned = |p: &str| segs(p).into_iter().map(str::to_string).collect::<Vec<_>>();
        let p = format!("{SUB}/resourceGroups/rg/providers/Microsoft.Foo/bars/b");
        let e = parse_route(&owned(&p), &p).err().expect("refused");
        assert_eq!(e.code, "InvalidResourceType");
        let p = format!("{SUB}/nothing/here");
        let e = parse_route(&owned(&p), &p).err().expect("refused");
        assert_eq!(
            (e.status, e.code.as_str()),
            (StatusCode::NOT_FOUND, "NotFound")
        );
    }
}
