//! Emulator of the Microsoft Entra ID token endpoint (OAuth 2.0 client credentials) and the access
//! tokens it issues.
//!
//! Served on the authority host's root, as azure_identity 1.x builds it
//! (`authority_host.join("/{tenant}/oauth2/v2.0/token")`):
//! - `POST /{tenant}/oauth2/v2.0/token`, form body, `grant_type=client_credentials` with either
//!   `client_secret` or `client_assertion` + `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`;
//!   success is `{token_type, expires_in, ext_expires_in, access_token}`, errors are Entra's
//!   `{error, error_description: "AADSTSnnn: …", error_codes, timestamp, trace_id, correlation_id, error_uri}`.
//! - `GET /{tenant}/v2.0/.well-known/openid-configuration` (discovery document; azure_identity does not
//!   need it, other SDKs do).
//!
//! Access tokens are JWTs signed with HS256 and a key generated per sandbox (seeded), carrying `aud`,
//! `iss` (`https://sts.windows.net/{tenant}/`), `tid`, `oid`, `appid`, `sub`, `iat`, `nbf`, `exp`.
//! The ARM emulator verifies them with the same [`TokenIssuer`].
//!
//! Limits: one tenant and one application (service principal). Client assertions are not
//! signature-checked: a certificate-style assertion (`iss` = `sub` = client id) is accepted, and a
//! federated one (workload identity, audience `api://AzureADTokenExchange`) is accepted when its
//! (`iss`, `sub`) pair is registered in [`EntraConfig::federated_credentials`]; otherwise the answer is
//! `AADSTS70021`. There is no instance discovery, no v1 endpoint, no user flows.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The client assertion type azure_identity sends with a JWT assertion.
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The audience a federated (workload identity) assertion must carry.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Claims of an access token issued by the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// Audience: the resource the token is for, e.g. `https://management.azure.com/`.
    pub aud: String,
    /// Issuer: `https://sts.windows.net/{tenant}/`.
    pub iss: String,
    /// Tenant id.
    pub tid: String,
    /// Object id of the principal.
    pub oid: String,
    /// Application (client) id.
    pub appid: String,
    /// Subject (the principal's object id for app tokens).
    pub sub: String,
    /// Issued at (seconds since the Unix epoch).
    pub iat: i64,
    /// Not before (seconds since the Unix epoch).
    pub nbf: i64,
    /// Expiry (seconds since the Unix epoch).
    pub exp: i64,
}

impl TokenClaims {
    /// Claims for an application token of `tenant`/`client_id`/`object_id` for `audience`, valid for
    /// `lifetime` from now (a lifetime of zero gives an already expired token).
    pub fn new(
        tenant: &str,
        client_id: &str,
        object_id: &str,
        audience: &str,
        lifetime: Duration,
    ) -> Self {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 4);
        let exp = if lifetime == 0 {
            now - 60
        } else {
            now + lifetime
        };
        Self {
            aud: audience.to_string(),
            iss: format!("https://sts.windows.net/{tenant}/"),
            tid: tenant.to_string(),
            oid: object_id.to_string(),
            appid: client_id.to_string(),
            sub: object_id.to_string(),
            iat: now - 5,
            nbf: now - 5,
            exp,
        }
    }
}

/// Why a token was rejected by [`TokenIssuer::verify`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url segments of JSON.
    #[error("the token is malformed")]
    Malformed,
    /// The signature does not match the sandbox key.
    #[error("the token signature is invalid")]
    BadSignature,
}

/// Mints and verifies the sandbox's HS256 access tokens.
#[derive(Clone)]
pub struct TokenIssuer {
    key: Arc<ring::hmac::Key>,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer").finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer whose signing key is derived from `key_material`.
    pub fn new(key_material: &[u8]) -> Self {
        Self {
            key: Arc::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key_material)),
        }
    }

    /// Encodes and signs `claims` as a JWT.
    pub fn mint(&self, claims: &TokenClaims) -> String {
        let header = json!({"typ": "JWT", "alg": "HS256", "kid": "arcplan-sandbox"});
        let head = URL_SAFE_NO_PAD.encode(header.to_string());
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{head}.{body}");
        let tag = ring::hmac::sign(&self.key, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Checks the signature and decodes the claims. Expiry, audience and tenant are for the caller.
    pub fn verify(&self, token: &str) -> Result<TokenClaims, TokenError> {
        let mut parts = token.split('.');
        let (Some(head), Some(body), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Malformed)?;
        let claims: TokenClaims =
            serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        ring::hmac::verify(&self.key, format!("{head}.{body}").as_bytes(), &sig)
            .map_err(|_| TokenError::BadSignature)?;
        Ok(claims)
    }
}

/// Decodes the payload of any JWT without checking its signature (used for client assertions).
pub fn decode_unverified(token: &str) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let (Some(_), Some(body), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let payload = URL_SAFE_NO_PAD.decode(body.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&payload).ok()
}

/// A federated identity credential: assertions with this issuer and subject are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedCredential {
    /// The assertion's `iss`, e.g. a cluster's service-account issuer URL.
    pub issuer: String,
    /// The assertion's `sub`, e.g. `system:serviceaccount:ns:name`.
    pub subject: String,
}

/// Configuration of the token endpoint.
#[derive(Debug, Clone)]
pub struct EntraConfig {
    /// The only tenant served.
    pub tenant_id: String,
    /// The application (client) id of the sandbox service principal.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
    /// The service principal's object id (the `oid` claim).
    pub object_id: String,
    /// `expires_in` of issued tokens.
    pub token_lifetime: Duration,
    /// Resources tokens can be requested for (`scope` minus `/.default`, with a trailing slash).
    pub audiences: Vec<String>,
    /// Federated credentials accepted for client assertions.
    pub federated_credentials: Vec<FederatedCredential>,
}

#[derive(Clone)]
struct EntraState {
    config: Arc<EntraConfig>,
    issuer: TokenIssuer,
}

/// Builds the token endpoint's router.
pub fn router(config: EntraConfig, issuer: TokenIssuer) -> Router {
    let state = EntraState {
        config: Arc::new(config),
        issuer,
    };
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "").into_response()
}

async fn openid_configuration(
    State(state): State<EntraState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !tenant.eq_ignore_ascii_case(&state.config.tenant_id) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let t = &state.config.tenant_id;
    let base = format!("https://{host}/{t}");
    json_response(
        StatusCode::OK,
        &json!({
            "token_endpoint": format!("{base}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("https://{host}/{t}/discovery/v2.0/keys"),
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "issuer": format!("https://{host}/{t}/v2.0"),
            "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
            "tenant_region_scope": "NA",
            "cloud_instance_name": "sandbox.invalid",
        }),
    )
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    resp
}

/// An Entra error response (`AADSTS{code}: {description}` plus trace ids).
pub fn entra_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let trace = uuid::Uuid::new_v4();
    let correlation = uuid::Uuid::new_v4();
    let now = time::OffsetDateTime::now_utc();
    let ts = now
        .format(&time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default();
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {ts}"),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace.to_string(),
        "correlation_id": correlation.to_string(),
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    json_response(status, &body)
}

async fn token(
    State(state): State<EntraState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cfg = &state.config;
    if !tenant.eq_ignore_ascii_case(&cfg.tenant_id) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        );
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let missing = |name: &str| {
        entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{name}'."),
        )
    };

    let Some(grant_type) = field("grant_type") else {
        return missing("grant_type");
    };
    if grant_type != "client_credentials" {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant_type}'."),
        );
    }
    let Some(client_id) = field("client_id") else {
        return missing("client_id");
    };
    let Some(scope) = field("scope") else {
        return missing("scope");
    };
    if !client_id.eq_ignore_ascii_case(&cfg.client_id) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                cfg.tenant_id
            ),
        );
    }

    match (field("client_secret"), field("client_assertion")) {
        (Some(secret), _) => {
            if secret != cfg.client_secret {
                return entra_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000215,
                    &format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                        cfg.client_id
                    ),
                );
            }
        }
        (None, Some(assertion)) => {
            if field("client_assertion_type") != Some(JWT_BEARER_ASSERTION_TYPE) {
                return entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'client_assertion_type'.",
                );
            }
            if let Err(resp) = check_assertion(cfg, assertion) {
                return resp;
            }
        }
        (None, None) => {
            return entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        }
    }

    let Some(audience) = scope_to_audience(scope) else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    };
    if !cfg
        .audiences
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&audience))
    {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            &format!(
                "The resource principal named {} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                audience.trim_end_matches('/'),
                cfg.tenant_id
            ),
        );
    }

    let claims = TokenClaims::new(
        &cfg.tenant_id,
        &cfg.client_id,
        &cfg.object_id,
        &audience,
        cfg.token_lifetime,
    );
    let token = state.issuer.mint(&claims);
    let expires_in = cfg.token_lifetime.as_secs();
    json_response(
        StatusCode::OK,
        &json!({
            "token_type": "Bearer",
            "expires_in": expires_in,
            "ext_expires_in": expires_in,
            "access_token": token,
        }),
    )
}

/// Maps a client-credentials scope (`{resource}/.default`) to the token audience (`{resource}/`).
pub fn scope_to_audience(scope: &str) -> Option<String> {
    let scope = scope.split_whitespace().next()?;
    let resource = scope.strip_suffix("/.default")?;
    let resource = resource.trim_end_matches('/');
    if resource.is_empty() {
        return None;
    }
    Some(format!("{resource}/"))
}

#[allow(clippy::result_large_err)]
fn check_assertion(cfg: &EntraConfig, assertion: &str) -> Result<(), Response> {
    let invalid = |why: &str| {
        entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            50027,
            &format!("JWT token is invalid or malformed. {why}"),
        )
    };
    let Some(claims) = decode_unverified(assertion) else {
        return Err(invalid("The assertion is not a JWT."));
    };
    let s = |k: &str| claims.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Some(exp) = claims.get("exp").and_then(serde_json::Value::as_i64)
        && exp < now
    {
        return Err(entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    let (iss, sub) = (s("iss"), s("sub"));
    // Certificate credential: the application signs its own assertion.
    if iss.eq_ignore_ascii_case(&cfg.client_id) && sub.eq_ignore_ascii_case(&cfg.client_id) {
        return Ok(());
    }
    let aud_ok = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => a == TOKEN_EXCHANGE_AUDIENCE,
        Some(serde_json::Value::Array(a)) => a.iter().any(|v| v == TOKEN_EXCHANGE_AUDIENCE),
        _ => false,
    };
    let matched = cfg
        .federated_credentials
        .iter()
        .any(|fc| fc.issuer == iss && fc.subject == sub);
    if matched && aud_ok {
        return Ok(());
    }
    Err(entra_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        70021,
        &format!(
            "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'.",
            claims.get("aud").map(|a| a.to_string()).unwrap_or_default()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_and_verify_round_trip() {
        let issuer = TokenIssuer::new(b"k");
        let claims = TokenClaims::new(
            "t",
            "c",
            "o",
            "https://management.azure.com/",
            Duration::from_secs(60),
        );
        let token = issuer.mint(&claims);
        assert_eq!(issuer.verify(&token), Ok(claims));
        assert_eq!(
            TokenIssuer::new(b"other").verify(&token),
            Err(TokenError::BadSignature)
        );
        assert_eq!(issuer.verify("a.b"), Err(TokenError::Malformed));
    }

    #[test]
    fn scopes_map_to_audiences() {
        assert_eq!(
            scope_to_audience("https://management.azure.com/.default").as_deref(),
            Some("https://management.azure.com/")
        );
        assert_eq!(
            scope_to_audience("https://management.core.windows.net//.default").as_deref(),
            Some("https://management.core.windows.net/")
        );
        assert_eq!(
            scope_to_audience("https://management.azure.com/user_impersonation"),
            None
        );
    }
}
