//! The routes of the resource types that live under a connected cluster
//! (`{cluster}/providers/{namespace}/{type}[/{name}[/operations/{id}]]`, like
//! `Microsoft.KubernetesConfiguration/extensions` and `fluxConfigurations`): one parser, one
//! RBAC rule (`{type}/read|write|delete` at the path) and the operation status under the
//! resource; each type gives its api-versions and its list and resource handlers.

use axum::http::Method;
use axum::response::Response;

use super::routing::{ApiVersions, ArmRoute, Parsed, by_method, route};
use super::state::ArmState;
use super::{ArmError, Ctx, eq};

/// (subscription, resource group, cluster) of a route.
pub(crate) type ClusterKey = (String, String, String);

/// Lists a cluster's resources of a type.
type ListFn = fn(&ArmState, &Ctx, &ClusterKey) -> Result<Response, ArmError>;
/// Serves one resource (GET, PUT, PATCH, DELETE).
type OneFn = fn(&mut ArmState, &Ctx, &ClusterKey, &str) -> Result<Response, ArmError>;

/// A resource type under connected clusters.
pub(crate) struct ChildType {
    /// The resource provider namespace.
    pub namespace: &'static str,
    /// The type's name in paths (`extensions`).
    pub type_name: &'static str,
    /// The api-versions accepted.
    pub versions: &'static [&'static str],
    /// What one resource is called in messages (`extension`).
    pub what: &'static str,
    /// The list handler.
    pub list: ListFn,
    /// The resource handler.
    pub one: OneFn,
}

enum ChildPath {
    List(ClusterKey),
    One(ClusterKey, String),
    Operation(ClusterKey, String, String),
}

struct ChildRoute {
    ty: &'static ChildType,
    path: ChildPath,
}

/// The route of `s` if it is a path of type `ty`.
pub(crate) fn parse(ty: &'static ChildType, s: &[&str]) -> Parsed {
    let o = |x: &str| x.to_string();
    match s {
        [a, sub, b, rg, p, ns, t, cluster, p2, ns2, t2, rest @ ..]
            if eq(a, "subscriptions")
                && eq(b, "resourceGroups")
                && eq(p, "providers")
                && eq(ns, "Microsoft.Kubernetes")
                && eq(t, "connectedClusters")
                && eq(p2, "providers")
                && eq(ns2, ty.namespace)
                && eq(t2, ty.type_name) =>
        {
            let key = (o(sub), o(rg), o(cluster));
            let path = match rest {
                [] => ChildPath::List(key),
                [name] => ChildPath::One(key, o(name)),
                [name, ops, id] if eq(ops, "operations") => {
                    ChildPath::Operation(key, o(name), o(id))
                }
                _ => return None,
            };
            route(ChildRoute { ty, path })
        }
        _ => None,
    }
}

impl ArmRoute for ChildRoute {
    fn versions(&self) -> ApiVersions {
        ApiVersions {
            supported: self.ty.versions,
            rp_type: Some(self.ty.type_name),
        }
    }

    fn subscription(&self) -> Option<&str> {
        match &self.path {
            ChildPath::List((s, ..))
            | ChildPath::One((s, ..), _)
            | ChildPath::Operation((s, ..), ..) => Some(s),
        }
    }

    fn action(&self, method: &Method, path: &str) -> Option<(String, String)> {
        let rtype = format!("{}/{}", self.ty.namespace, self.ty.type_name);
        let read = format!("{rtype}/read");
        Some(match &self.path {
            ChildPath::List(_) => (read, path.to_string()),
            ChildPath::One(..) => (
                by_method(
                    method,
                    &read,
                    &format!("{rtype}/write"),
                    &format!("{rtype}/delete"),
                ),
                path.to_string(),
            ),
            ChildPath::Operation(..) => (format!("{rtype}/operations/read"), path.to_string()),
        })
    }

    fn handle(&self, st: &mut ArmState, ctx: &Ctx) -> Result<Response, ArmError> {
        match &self.path {
            ChildPath::List(k) => (self.ty.list)(st, ctx, k),
            ChildPath::One(k, name) => (self.ty.one)(st, ctx, k, name),
            ChildPath::Operation(k, name, id) => st.operation_status_result(
                ctx,
                &k.0,
                self.ty.namespace,
                &format!("{} '{name}'", self.ty.what),
                id,
            ),
        }
    }
}
