//! Emulator of Azure Resource Manager for the operations arcplan uses, in memory.
//!
//! Served (paths matched case-insensitively, ids keep ARM's casing):
//! - subscriptions (`GET /subscriptions`, `GET /subscriptions/{s}`), resource groups (PUT, GET, PATCH,
//!   HEAD, DELETE as a long-running operation, list with tag filter), resource providers (get, list,
//!   register and unregister with simulated registration time), `GET …/resources` with `$filter`
//!   (tagName/tagValue, resourceType, resourceGroup, location, name) and nextLink paging;
//! - `Microsoft.Kubernetes/connectedClusters` (PUT with `Azure-AsyncOperation`, PATCH, GET, DELETE with
//!   `Location` + `Azure-AsyncOperation`, lists) and its operation status / result resources;
//! - tenants (`GET /tenants`), locations (`GET /subscriptions/{s}/locations`), tags at a
//!   subscription, resource group or connected cluster scope (`{scope}/providers/
//!   Microsoft.Resources/tags/default`: PUT, PATCH with Replace/Merge/Delete, GET, DELETE);
//! - `Microsoft.Authorization` at any scope: `permissions`, `roleAssignments`, `roleDefinitions`;
//! - `GET /metadata/endpoints` (the cloud metadata document, unauthenticated).
//!
//! Every request needs a bearer token from the sandbox's Entra emulator (401 with ARM's codes
//! otherwise), an `api-version` supported by the resource type (400), an existing subscription (404)
//! and an RBAC grant for the action (403 `AuthorizationFailed`). Responses carry `x-ms-request-id`,
//! `x-ms-correlation-request-id` and `x-ms-routing-request-id`.
//!
//! Time-based transitions (registration, long-running operations) are evaluated lazily at the start of
//! each request against `tokio::time::Instant`, so no background task is needed and paused test clocks
//! work.
//!
//! Limits: one response shape for every accepted api-version (the latest); no custom locations or generic `/{resourceId}` routes; no ETags; RP operation-status
//! polling is not RBAC-checked; `MissingSubscriptionRegistration` is raised for writes only; finished
//! operations are forgotten after ten minutes.
//!
//! # Layout
//!
//! - `routing.rs`: the table of served kinds ([`routing::KINDS`]), the [`routing::ArmRoute`] trait
//!   every kind's routes implement, and the checks every request goes through (api-version,
//!   subscription and tenant, RBAC) before its handler;
//! - `state.rs`: the data (subscriptions, providers, resource groups, connected clusters, role
//!   assignments); `catalog.rs`: what needs no state (api-versions, regions, the provider catalogue);
//! - `operations.rs`: long-running operations (start, settle, status, result, retention,
//!   `Retry-After`) and the operation status and result routes; `paging.rs`: `$top`, `$skipToken`,
//!   `nextLink`; `request.rs`: method, body and tags checks; `filter.rs`: `$filter`;
//! - one module per kind, each with its routes, its handlers and its operations' effects:
//!   `resources.rs`, `clusters.rs`, `tenancy.rs`, `authorization.rs` (its RBAC model in `authz.rs`).
//!
//! # Adding an ARM resource kind
//!
//! E.g. `Microsoft.KubernetesConfiguration/extensions`:
//!
//! 1. A new module `arm/{kind}.rs` (declared below) holding:
//!    - a route enum implementing [`routing::ArmRoute`] (api-versions, subscription, RBAC action
//!      and scope, handler) and `pub(crate) const KIND: Kind` whose `parse` claims the kind's paths
//!      (returning `None` for every other path);
//!    - its handlers, as an `impl ArmState` block (`request.rs` checks methods and bodies,
//!      `paging.rs` pages lists, `ArmError` has ARM's common errors);
//!    - for a long-running PUT or DELETE, an [`operations::OpEffect`] (what happens halfway, at the
//!      end and in the operation's result), passed to `ArmState::start_op`;
//!    - its stored resources: a map in the parent it lives in (`state.rs`, e.g. `Cluster` for an
//!      extension of a connected cluster, `Group` for a resource in a group), or its own field of
//!      `ArmState`.
//! 2. A registration line: its `KIND` in [`routing::KINDS`] (before any kind whose paths its
//!    paths extend; `routing.rs`'s tests list which kind claims which path: add the new paths).
//! 3. If its api-versions are not those of an existing [`routing::ApiVersions`], a constant there
//!    (and the namespace's types in `catalog.rs`'s provider catalogue, if not there yet).

mod authorization;
pub mod authz;
mod catalog;
mod cluster_children;
mod clusters;
mod custom_locations;
pub mod error;
mod extensions;
mod filter;
mod flux;
mod operations;
mod paging;
mod request;
mod resources;
mod routing;
mod state;
mod tenancy;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

pub use authz::PrincipalRole;
pub use catalog::RegistrationState;
pub use custom_locations::CUSTOM_LOCATIONS_OID;
pub use error::ArmError;
pub use extensions::ExtensionRelease;

use crate::entra::{TokenClaims, TokenIssuer};
use state::ArmState;

/// Configuration of the ARM emulator.
#[derive(Debug, Clone)]
pub struct ArmConfig {
    /// Seed of generated ids and injected LRO failures.
    pub seed: u64,
    /// The tenant that owns every served subscription.
    pub tenant_id: String,
    /// Served subscriptions.
    pub subscription_ids: Vec<String>,
    /// Application id of the sandbox principal.
    pub client_id: String,
    /// Object id of the sandbox principal.
    pub principal_object_id: String,
    /// The principal's role at subscription scope.
    pub role: PrincipalRole,
    /// Namespaces registered from the start (besides the always-registered ones).
    pub registered_providers: Vec<String>,
    /// Time from `register` to `Registered` (and from `unregister` to `NotRegistered`).
    pub registration_delay: Duration,
    /// Duration of a long-running operation.
    pub lro_delay: Duration,
    /// Fraction (0..=1) of long-running operations that take `slow_lro_delay` instead.
    pub slow_lro_rate: f64,
    /// Duration of a slow long-running operation.
    pub slow_lro_delay: Duration,
    /// Fraction (0..=1) of long-running operations that end `Failed`.
    pub lro_failure_rate: f64,
    /// Resource names (case-insensitive) whose long-running operations end `Failed`.
    pub fail_lro_for: Vec<String>,
    /// Repository URLs the Flux controller stand-in cannot clone (their configurations report
    /// `Non-Compliant`); set with [`ArmApi::set_broken_repository`].
    pub broken_repositories: Vec<String>,
    /// `Retry-After` (seconds) on long-running operation responses.
    pub retry_after_secs: u32,
    /// Page size of list operations.
    pub page_size: usize,
    /// Authority host URL, for `WWW-Authenticate` and the metadata document.
    pub authority_host: String,
    /// Token audiences ARM accepts.
    pub audiences: Vec<String>,
}

/// The ARM emulator. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct ArmApi {
    state: Arc<Mutex<ArmState>>,
    issuer: TokenIssuer,
}

impl std::fmt::Debug for ArmApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmApi").finish_non_exhaustive()
    }
}

/// One parsed request, as the handlers see it.
pub(crate) struct Ctx {
    pub method: Method,
    /// Percent-decoded path segments (original casing).
    pub segs: Vec<String>,
    pub path: String,
    pub raw_query: String,
    pub query: Vec<(String, String)>,
    pub api_version: String,
    /// `https://host:port` of this server, as the client addressed it.
    pub base: String,
    pub claims: TokenClaims,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Ctx {
    /// A query parameter, by case-insensitive name.
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Mutable access to the stored connected clusters while the ARM state is locked (see
/// [`ArmApi::with_connected_clusters`]).
pub(crate) struct ConnectedClusters<'a> {
    st: &'a mut ArmState,
}

impl ConnectedClusters<'_> {
    /// Records whom a cluster's agents let the Custom Locations service in as.
    pub(crate) fn set_custom_locations_oid(
        &mut self,
        (subscription, rg, name): (&str, &str, &str),
        oid: Option<String>,
    ) {
        if let Some(c) = self.st.cluster_mut(subscription, rg, name) {
            c.custom_locations_oid = oid;
        }
    }

    /// The stored resource JSON of one connected cluster (names are case-insensitive).
    pub(crate) fn get_mut(
        &mut self,
        subscription: &str,
        rg: &str,
        name: &str,
    ) -> Option<&mut Value> {
        self.st
            .cluster_mut(subscription, rg, name)
            .map(|c| &mut c.resource)
    }

    /// Applies `f` to every stored connected cluster's resource JSON.
    pub(crate) fn for_each_mut(&mut self, mut f: impl FnMut(&mut Value)) {
        for s in self.st.subs.values_mut() {
            for g in s.groups.values_mut() {
                for c in g.clusters.values_mut() {
                    f(&mut c.resource);
                }
            }
        }
    }
}

/// Case-insensitive equality.
pub(crate) fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// RFC 3339 UTC timestamp.
pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// RFC 3339 UTC "now".
pub(crate) fn rfc3339_now() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

impl ArmApi {
    /// A new emulator with `config`, verifying tokens with `issuer`.
    pub fn new(config: ArmConfig, issuer: TokenIssuer) -> Self {
        Self {
            state: Arc::new(Mutex::new(ArmState::new(config))),
            issuer,
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ArmState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The router serving every ARM path, with ARM's common response headers.
    pub fn router(&self) -> Router {
        with_common_headers(self.inner_router())
    }

    /// The router without the common headers (the sandbox adds them outside its fault layer, so
    /// that injected errors carry request ids too).
    pub(crate) fn inner_router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// Changes the principal's role (its assignments at every served subscription).
    pub fn set_role(&self, role: PrincipalRole) {
        self.lock().set_role(role);
    }

    /// Assigns `role` to the principal at `scope` (e.g. a resource group id), in addition to others.
    pub fn assign_role(&self, scope: &str, role: PrincipalRole) {
        self.lock().assign_role(scope, role);
    }

    /// The registration state of `namespace` in `subscription`, if the provider exists.
    pub fn provider_state(&self, subscription: &str, namespace: &str) -> Option<RegistrationState> {
        let mut st = self.lock();
        st.settle();
        st.provider_state(subscription, namespace)
    }

    /// Forces the registration state of `namespace` in `subscription`. Returns false if unknown.
    pub fn set_provider_state(
        &self,
        subscription: &str,
        namespace: &str,
        state: RegistrationState,
    ) -> bool {
        self.lock()
            .set_provider_state(subscription, namespace, state)
    }

    /// The resource group as ARM returns it, if it exists.
    pub fn resource_group(&self, subscription: &str, name: &str) -> Option<Value> {
        let mut st = self.lock();
        st.settle();
        st.group_json(subscription, name)
    }

    /// Creates or replaces a resource group directly (no authorization, no validation).
    pub fn put_resource_group(
        &self,
        subscription: &str,
        name: &str,
        location: &str,
        tags: serde_json::Map<String, Value>,
    ) -> bool {
        self.lock()
            .put_group_direct(subscription, name, location, tags)
    }

    /// Applies `f` to a resource group's tags (drift injection). Returns false if absent.
    pub fn update_resource_group_tags(
        &self,
        subscription: &str,
        name: &str,
        f: impl FnOnce(&mut serde_json::Map<String, Value>),
    ) -> bool {
        let mut st = self.lock();
        st.settle();
        match st.group_mut(subscription, name) {
            Some(g) => {
                f(&mut g.tags);
                true
            }
            None => false,
        }
    }

    /// Removes a resource group and everything in it at once.
    pub fn remove_resource_group(&self, subscription: &str, name: &str) -> bool {
        self.lock().remove_group_direct(subscription, name)
    }

    /// The connected cluster as ARM returns it, if it exists.
    pub fn connected_cluster(&self, subscription: &str, rg: &str, name: &str) -> Option<Value> {
        let mut st = self.lock();
        st.settle();
        st.cluster(subscription, rg, name)
            .map(|c| c.resource.clone())
    }

    /// Applies `f` to a connected cluster's stored resource JSON (drift injection; read-only fields
    /// included). Returns false if absent.
    pub fn update_connected_cluster(
        &self,
        subscription: &str,
        rg: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> bool {
        let mut st = self.lock();
        st.settle();
        match st.cluster_mut(subscription, rg, name) {
            Some(c) => {
                f(&mut c.resource);
                true
            }
            None => false,
        }
    }

    /// Removes a connected cluster at once (as if deleted in the portal).
    pub fn remove_connected_cluster(&self, subscription: &str, rg: &str, name: &str) -> bool {
        self.lock().remove_cluster_direct(subscription, rg, name)
    }

    /// A connected cluster's extensions as ARM returns them (protected settings never among
    /// them), by name.
    pub fn extensions(&self, subscription: &str, rg: &str, cluster: &str) -> Vec<Value> {
        let mut st = self.lock();
        st.settle();
        st.cluster(subscription, rg, cluster)
            .map(|c| c.extensions.values().map(|e| e.resource.clone()).collect())
            .unwrap_or_default()
    }

    /// The protected settings an extension was given (what the service received), if it
    /// exists.
    pub fn extension_protected_settings(
        &self,
        subscription: &str,
        rg: &str,
        cluster: &str,
        name: &str,
    ) -> Option<Map<String, Value>> {
        let st = self.lock();
        st.cluster(subscription, rg, cluster)?
            .extensions
            .get(&name.to_ascii_lowercase())
            .map(|e| e.protected.clone())
    }

    /// A connected cluster's Flux configurations as ARM returns them (protected settings never
    /// among them), by name.
    pub fn flux_configurations(&self, subscription: &str, rg: &str, cluster: &str) -> Vec<Value> {
        let mut st = self.lock();
        st.settle();
        st.cluster(subscription, rg, cluster)
            .map(|c| {
                c.flux_configurations
                    .values()
                    .map(|f| f.resource.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The protected settings a Flux configuration was given (what the service received), if
    /// it exists.
    pub fn flux_protected_settings(
        &self,
        subscription: &str,
        rg: &str,
        cluster: &str,
        name: &str,
    ) -> Option<Map<String, Value>> {
        let st = self.lock();
        st.cluster(subscription, rg, cluster)?
            .flux_configurations
            .get(&name.to_ascii_lowercase())
            .map(|f| f.protected.clone())
    }

    /// Removes an extension at once (as if uninstalled with the portal). Returns false if
    /// absent.
    pub fn remove_extension(
        &self,
        subscription: &str,
        rg: &str,
        cluster: &str,
        name: &str,
    ) -> bool {
        let mut st = self.lock();
        st.cluster_mut(subscription, rg, cluster)
            .and_then(|c| c.extensions.remove(&name.to_ascii_lowercase()))
            .is_some()
    }

    /// The custom location as ARM returns it, if it exists.
    pub fn custom_location(&self, subscription: &str, rg: &str, name: &str) -> Option<Value> {
        let mut st = self.lock();
        st.settle();
        st.group(subscription, rg)?
            .custom_locations
            .get(&name.to_ascii_lowercase())
            .map(|(r, _)| r.clone())
    }

    /// Every connected cluster: (subscription, resource group, resource JSON).
    pub fn connected_clusters(&self) -> Vec<(String, String, Value)> {
        let mut st = self.lock();
        st.settle();
        st.all_clusters()
    }

    /// Runs `f` over the stored connected clusters under one lock and one settling of timed
    /// transitions, so that a caller touching many clusters (the simulated agents of a fleet) does
    /// not pay a lock and a settle per cluster.
    pub(crate) fn with_connected_clusters<R>(
        &self,
        f: impl FnOnce(&mut ConnectedClusters<'_>) -> R,
    ) -> R {
        let mut st = self.lock();
        st.settle();
        f(&mut ConnectedClusters { st: &mut st })
    }

    /// Reports, as a cluster's agents do at each heartbeat, whom their custom-locations feature
    /// lets the Custom Locations service in as (`None`: the feature is off). A custom location
    /// on that cluster is created only when it is [`CUSTOM_LOCATIONS_OID`].
    pub fn report_custom_locations(
        &self,
        (subscription, rg, cluster): (&str, &str, &str),
        oid: Option<&str>,
    ) {
        self.with_connected_clusters(|c| {
            c.set_custom_locations_oid((subscription, rg, cluster), oid.map(str::to_owned))
        });
    }

    /// Makes the Flux controller stand-in fail to clone `url`: Flux configurations reconciled
    /// from it from now on report `Non-Compliant`.
    pub fn set_broken_repository(&self, url: &str) {
        let mut st = self.lock();
        if !st.cfg.broken_repositories.iter().any(|u| u == url) {
            st.cfg.broken_repositories.push(url.to_owned());
        }
    }

    /// Makes long-running operations on resources named in `names` end `Failed`, and a fraction
    /// `rate` of all others.
    pub fn set_lro_failures(&self, names: Vec<String>, rate: f64) {
        let mut st = self.lock();
        st.cfg.fail_lro_for = names;
        st.cfg.lro_failure_rate = rate.clamp(0.0, 1.0);
    }

    /// Changes the duration of new long-running operations and registrations.
    pub fn set_delays(&self, lro: Duration, registration: Duration) {
        let mut st = self.lock();
        st.cfg.lro_delay = lro;
        st.cfg.registration_delay = registration;
    }

    /// Changes the list page size.
    pub fn set_page_size(&self, page_size: usize) {
        self.lock().cfg.page_size = page_size.max(1);
    }

    fn check_token(&self, headers: &HeaderMap) -> Result<TokenClaims, ArmError> {
        let authority = self.lock().cfg.authority_host.clone();
        let tenant = self.lock().cfg.tenant_id.clone();
        let challenge = |desc: &str| {
            format!(
                "Bearer authorization_uri=\"{}/{tenant}\", error=\"invalid_token\", error_description=\"{desc}\"",
                authority.trim_end_matches('/')
            )
        };
        let unauthorized = |code: &str, msg: String| {
            let c = challenge(&msg);
            ArmError::new(StatusCode::UNAUTHORIZED, code, msg)
                .with_header(header::WWW_AUTHENTICATE, &c)
        };
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(unauthorized(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.".into(),
            ));
        };
        let value = value.to_str().unwrap_or("");
        let Some(token) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        else {
            return Err(unauthorized(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is provided in an invalid format."
                    .into(),
            ));
        };
        let claims = self.issuer.verify(token.trim()).map_err(|_| {
            unauthorized(
                "InvalidAuthenticationToken",
                "The access token is invalid.".into(),
            )
        })?;
        let now = time::OffsetDateTime::now_utc();
        if claims.exp <= now.unix_timestamp() {
            let exp = time::OffsetDateTime::from_unix_timestamp(claims.exp)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            return Err(unauthorized(
                "ExpiredAuthenticationToken",
                format!(
                    "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                    rfc3339(exp),
                    rfc3339(now)
                ),
            ));
        }
        let audiences = self.lock().cfg.audiences.clone();
        let aud = claims.aud.trim_end_matches('/');
        if !audiences
            .iter()
            .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(aud))
        {
            let allowed = audiences
                .iter()
                .flat_map(|a| {
                    let a = a.trim_end_matches('/');
                    [format!("{a}/"), a.to_string()]
                })
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(",");
            return Err(unauthorized(
                "InvalidAuthenticationTokenAudience",
                format!(
                    "The access token has been obtained for wrong audience or resource '{}'. It should exactly match with one of the allowed audiences {allowed}.",
                    claims.aud
                ),
            ));
        }
        Ok(claims)
    }
}

/// Adds `x-ms-request-id`, `x-ms-correlation-request-id`, `x-ms-routing-request-id` and ARM's cache
/// headers to every response of `router`.
pub fn with_common_headers(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(common_headers))
}

async fn common_headers(req: Request, next: axum::middleware::Next) -> Response {
    let correlation = req
        .headers()
        .get("x-ms-correlation-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| uuid::Uuid::parse_str(v).is_ok())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let client_request_id = req
        .headers()
        .get("x-ms-client-request-id")
        .cloned()
        .filter(|_| {
            req.headers()
                .get("x-ms-return-client-request-id")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        });
    let mut resp = next.run(req).await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-ms-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&correlation) {
        h.insert("x-ms-correlation-request-id", v);
    }
    let now = time::OffsetDateTime::now_utc();
    let routing = format!(
        "SANDBOX:{}:{}",
        now.format(&time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default(),
        request_id
    );
    if let Ok(v) = HeaderValue::from_str(&routing) {
        h.insert("x-ms-routing-request-id", v);
    }
    if let Some(v) = client_request_id {
        h.insert("x-ms-client-request-id", v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::EXPIRES, HeaderValue::from_static("-1"));
    h.insert(
        "strict-transport-security",
        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The scheme and authority the client used to reach this server.
fn base_url(req: &Request) -> String {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "127.0.0.1".to_string());
    format!("https://{host}")
}

async fn handle(State(api): State<ArmApi>, req: Request) -> Response {
    let method = req.method().clone();
    let base = base_url(&req);
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), 16 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return ArmError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                "The request content size exceeds the maximum allowed size.",
            )
            .into_response();
        }
    };
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let query: Vec<(String, String)> = form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();

    // The cloud metadata document is public.
    if segs.len() == 2 && eq(&segs[0], "metadata") && eq(&segs[1], "endpoints") {
        return resources::metadata(&api, &base, &query);
    }

    let claims = match api.check_token(&headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let mut ctx = Ctx {
        method,
        segs,
        path,
        raw_query,
        query,
        api_version: String::new(),
        base,
        claims,
        headers,
        body,
    };
    let mut st = api.lock();
    st.settle();
    match st.dispatch(&mut ctx) {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}
