//! The ARM client: one way to call Azure Resource Manager.
//!
//! Request building is pure ([`ArmClient::request`] returns an [`ArmRequest`] value, testable
//! without a socket). Sending adds the bearer token and one correlation id per run, waits for
//! the subscription's [`Budget`], retries 408/429/5xx and connection errors with exponential
//! backoff and jitter for requests that are safe to repeat (honouring `Retry-After` even beyond
//! the per-request timeout), maps ARM error bodies to [`ArmError`] (which keeps
//! `x-ms-request-id`), follows `nextLink` paging and polls long-running operations.
//!
//! Tokens never leave this module: they are not logged, stored in errors or returned.

use super::budget::{Budget, Kind};
use super::cloud::{ApiKind, CloudProfile};
use azure_core::credentials::TokenCredential;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use url::Url;

/// A request, fully built but not sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmRequest {
    /// The HTTP method.
    pub method: Method,
    /// The absolute URL, `api-version` included.
    pub url: Url,
    /// The JSON body.
    pub body: Option<Value>,
    /// Safe to send again after a failure (GET, HEAD, PUT, DELETE, PATCH of declared fields,
    /// and idempotent actions such as provider registration).
    pub retryable: bool,
}

impl ArmRequest {
    fn kind(&self) -> Kind {
        if self.method == Method::GET || self.method == Method::HEAD {
            Kind::Read
        } else {
            Kind::Write
        }
    }

    /// The path and query, for messages (no host, no secrets).
    pub fn display_path(&self) -> String {
        match self.url.query() {
            Some(q) => format!("{}?{q}", self.url.path()),
            None => self.url.path().to_owned(),
        }
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct ArmResponse {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The JSON body (`Null` when empty).
    pub body: Value,
}

impl ArmResponse {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `x-ms-request-id`.
    pub fn request_id(&self) -> Option<&str> {
        self.header("x-ms-request-id")
    }
}

mod error;
pub use error::{ArmError, ArmErrorKind};

use crate::backoff::Backoff;
pub use crate::backoff::retry_after;

/// Retry settings.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first backoff.
    pub base_delay: Duration,
    /// The longest backoff (a `Retry-After` may be longer).
    pub max_delay: Duration,
    /// Timeout of one HTTP exchange.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(400),
            max_delay: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// Counters of what the client did, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct ArmStats {
    /// Requests sent (retries included).
    pub sent: AtomicU64,
    /// Responses that were 429.
    pub throttled: AtomicU64,
    /// Retries.
    pub retries: AtomicU64,
}

/// The ARM client of one run.
pub struct ArmClient {
    profile: CloudProfile,
    http: reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    budget: Arc<Budget>,
    retry: RetryPolicy,
    correlation_id: String,
    /// What the client did.
    pub stats: ArmStats,
}

impl fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArmClient")
            .field("resource_manager", &self.profile.resource_manager.as_str())
            .field("correlation_id", &self.correlation_id)
            .finish_non_exhaustive()
    }
}

impl ArmClient {
    /// A client for a cloud, with a credential and a shared budget.
    pub fn new(
        profile: CloudProfile,
        http: reqwest::Client,
        credential: Arc<dyn TokenCredential>,
        budget: Arc<Budget>,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            profile,
            http,
            credential,
            budget,
            retry,
            correlation_id: uuid::Uuid::new_v4().to_string(),
            stats: ArmStats::default(),
        }
    }

    /// The cloud profile.
    pub fn profile(&self) -> &CloudProfile {
        &self.profile
    }

    /// Builds a request for an ARM path (starting with `/`) with the API version of `api`.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        api: ApiKind,
        body: Option<Value>,
    ) -> ArmRequest {
        let mut url = self.profile.resource_manager.clone();
        let (p, q) = path.split_once('?').unwrap_or((path, ""));
        url.set_path(p);
        url.set_query(if q.is_empty() { None } else { Some(q) });
        url.query_pairs_mut()
            .append_pair("api-version", self.profile.api_version(api));
        let retryable = method != Method::POST;
        ArmRequest {
            method,
            url,
            body,
            retryable,
        }
    }

    /// A request to an absolute URL ARM gave us (`nextLink`, operation status), which carries its
    /// own `api-version`. Refuses URLs on another host, so the token never leaves ARM.
    pub fn request_url(&self, method: Method, url: &str) -> Result<ArmRequest, ArmError> {
        let parsed = Url::parse(url).map_err(|e| {
            self.local_error(
                ArmErrorKind::Transport,
                "InvalidUrl",
                format!("ARM returned an invalid URL `{url}`: {e}"),
                &method,
                url,
            )
        })?;
        if parsed.host_str() != self.profile.resource_manager.host_str()
            || parsed.scheme() != "https"
        {
            return Err(self.local_error(
                ArmErrorKind::Transport,
                "ForeignUrl",
                format!("ARM pointed to `{}`, which is not the resource manager endpoint; not following it", parsed.host_str().unwrap_or("?")),
                &method,
                url,
            ));
        }
        Ok(ArmRequest {
            method,
            url: parsed,
            body: None,
            retryable: true,
        })
    }

    fn local_error(
        &self,
        kind: ArmErrorKind,
        code: &str,
        message: String,
        method: &Method,
        what: &str,
    ) -> ArmError {
        ArmError {
            kind,
            status: None,
            code: code.to_owned(),
            message,
            request: format!("{method} {what}"),
            request_id: None,
            correlation_id: self.correlation_id.clone(),
        }
    }

    async fn token(&self, req: &ArmRequest) -> Result<String, ArmError> {
        let scope = self.profile.scope.clone();
        match self.credential.get_token(&[scope.as_str()], None).await {
            Ok(t) => Ok(t.token.secret().to_owned()),
            Err(e) => Err(ArmError {
                kind: ArmErrorKind::Credential,
                status: None,
                code: "CredentialUnavailable".into(),
                message: format!("no token for {scope}: {}", redact_error(&e.to_string())),
                request: format!("{} {}", req.method, req.display_path()),
                request_id: None,
                correlation_id: self.correlation_id.clone(),
            }),
        }
    }

    /// A decoded claim of the current token (`oid`, `appid`, `tid`), for naming the principal.
    pub async fn token_claim(&self, claim: &str) -> Option<String> {
        let scope = self.profile.scope.clone();
        let token = self
            .credential
            .get_token(&[scope.as_str()], None)
            .await
            .ok()?;
        let payload = token.token.secret().split('.').nth(1)?.to_owned();
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let v: Value = serde_json::from_slice(&bytes).ok()?;
        v.get(claim)?.as_str().map(str::to_owned)
    }

    /// Sends a request: budget, token, retries. Non-2xx answers become [`ArmError`]s, except
    /// 404, which is returned as a response when `allow_404` (reads of things that may not exist).
    pub async fn send(&self, req: &ArmRequest) -> Result<ArmResponse, ArmError> {
        self.send_inner(req, false).await
    }

    /// Like [`ArmClient::send`], but a 404 is an `Ok` response.
    pub async fn send_allow_404(&self, req: &ArmRequest) -> Result<ArmResponse, ArmError> {
        self.send_inner(req, true).await
    }

    async fn send_inner(&self, req: &ArmRequest, allow_404: bool) -> Result<ArmResponse, ArmError> {
        let kind = req.kind();
        let scope = super::budget::scope_of(req.url.path());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.token(req).await?;
            let result = {
                let _permit = self.budget.acquire(&scope, kind).await;
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
                let mut b = self
                    .http
                    .request(req.method.clone(), req.url.clone())
                    .bearer_auth(&token)
                    .timeout(self.retry.request_timeout)
                    .header("x-ms-correlation-request-id", &self.correlation_id)
                    .header("x-ms-client-request-id", uuid::Uuid::new_v4().to_string())
                    .header("accept", "application/json");
                if let Some(body) = &req.body {
                    b = b.json(body);
                }
                b.send().await
            };
            let wait = match result {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    self.observe(&headers, &scope, kind);
                    let bytes = resp.bytes().await.unwrap_or_default();
                    let body: Value = if bytes.is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
                    };
                    let response = ArmResponse {
                        status,
                        headers,
                        body,
                    };
                    if (200..300).contains(&status) || (allow_404 && status == 404) {
                        return Ok(response);
                    }
                    let retry_after = retry_after(&response.headers);
                    if status == 429 {
                        self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                        self.budget.throttled(
                            &scope,
                            kind,
                            retry_after.unwrap_or(Duration::from_secs(5)),
                        );
                    }
                    // 409 AnotherOperationInProgress clears once the running operation ends.
                    let busy = status == 409
                        && response.body.pointer("/error/code").and_then(Value::as_str)
                            == Some("AnotherOperationInProgress");
                    let transient = busy || matches!(status, 408 | 429 | 500 | 502 | 503 | 504);
                    if !(transient && req.retryable) || attempt >= self.retry.max_attempts {
                        return Err(self.http_error(req, &response));
                    }
                    self.backoff().wait(attempt - 1, retry_after)
                }
                Err(e) => {
                    // A certificate or name problem does not go away by asking again.
                    let lasting = !super::http::worth_retrying(&e);
                    if !req.retryable || lasting || attempt >= self.retry.max_attempts {
                        return Err(ArmError {
                            kind: ArmErrorKind::Transport,
                            status: None,
                            code: if e.is_timeout() {
                                "Timeout".into()
                            } else {
                                "ConnectionFailed".into()
                            },
                            message: super::http::failure_message(
                                &e,
                                &req.url,
                                attempt,
                                self.retry.request_timeout,
                            ) + &transport_message(&e),
                            request: format!("{} {}", req.method, req.display_path()),
                            request_id: None,
                            correlation_id: self.correlation_id.clone(),
                        });
                    }
                    self.backoff().step(attempt - 1)
                }
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }

    fn observe(&self, headers: &HeaderMap, scope: &str, kind: Kind) {
        let name = match kind {
            Kind::Read => "x-ms-ratelimit-remaining-subscription-reads",
            Kind::Write => "x-ms-ratelimit-remaining-subscription-writes",
        };
        if let Some(n) = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            self.budget.observe_remaining(scope, kind, n);
        }
    }

    /// The retry schedule (a `Retry-After` is honoured however long it is).
    fn backoff(&self) -> Backoff {
        Backoff {
            base: self.retry.base_delay,
            max: self.retry.max_delay,
            max_server_wait: None,
        }
    }

    fn http_error(&self, req: &ArmRequest, resp: &ArmResponse) -> ArmError {
        let err = resp.body.get("error").unwrap_or(&resp.body);
        let code = err
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or(match resp.status {
                404 => "NotFound",
                429 => "TooManyRequests",
                _ => "HttpError",
            });
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("HTTP {}", resp.status));
        ArmError {
            kind: ArmErrorKind::Http,
            status: Some(resp.status),
            code: code.to_owned(),
            message,
            request: format!("{} {}", req.method, req.display_path()),
            request_id: resp.request_id().map(str::to_owned),
            correlation_id: self.correlation_id.clone(),
        }
    }

    /// GETs a list and follows `nextLink` until it ends.
    pub async fn list_all(&self, req: &ArmRequest) -> Result<Vec<Value>, ArmError> {
        let mut out = Vec::new();
        let mut next = Some(req.clone());
        let mut pages = 0;
        while let Some(r) = next.take() {
            let resp = self.send(&r).await?;
            if let Some(items) = resp.body.get("value").and_then(Value::as_array) {
                out.extend(items.iter().cloned());
            }
            pages += 1;
            if let Some(link) = resp.body.get("nextLink").and_then(Value::as_str)
                && !link.is_empty()
                && pages < 10_000
            {
                next = Some(self.request_url(Method::GET, link)?);
            }
        }
        Ok(out)
    }

    /// Waits for a long-running operation started by `initial` to end. Calls `progress` with a
    /// short status after every poll. Returns the final body when the operation gives one.
    pub async fn wait(
        &self,
        initial: &ArmResponse,
        what: &str,
        timeout: Duration,
        cancel: &CancellationToken,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Option<Value>, ArmError> {
        let started = Instant::now();
        let async_op = initial.header("azure-asyncoperation").map(str::to_owned);
        let location = initial.header("location").map(str::to_owned);
        let mut delay = retry_after(&initial.headers).unwrap_or(Duration::from_secs(2));
        let (url, via_status) = match (async_op, location) {
            (Some(u), _) => (u, true),
            (None, Some(u)) if initial.status == 202 => (u, false),
            _ => return Ok(Some(initial.body.clone())),
        };
        loop {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel.cancelled() => {
                    return Err(self.local_error(ArmErrorKind::Cancelled, "Interrupted", format!("stopped waiting for {what}"), &Method::GET, what));
                }
            }
            if started.elapsed() > timeout {
                return Err(self.local_error(
                    ArmErrorKind::Timeout,
                    "OperationTimeout",
                    format!(
                        "{what} did not finish within {}",
                        humantime::format_duration(Duration::from_secs(timeout.as_secs()))
                    ),
                    &Method::GET,
                    what,
                ));
            }
            let req = self.request_url(Method::GET, &url)?;
            let resp = self.send(&req).await?;
            delay = retry_after(&resp.headers)
                .unwrap_or(Duration::from_secs(5))
                .max(Duration::from_millis(50));
            if via_status {
                let status = resp
                    .body
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("InProgress");
                match status.to_ascii_lowercase().as_str() {
                    "succeeded" => return Ok(None),
                    "failed" | "canceled" | "cancelled" => {
                        let err = resp.body.get("error");
                        let code = err
                            .and_then(|e| e.get("code"))
                            .and_then(Value::as_str)
                            .unwrap_or(status);
                        let msg = err
                            .and_then(|e| e.get("message"))
                            .and_then(Value::as_str)
                            .unwrap_or("no details given");
                        return Err(ArmError {
                            kind: ArmErrorKind::OperationFailed,
                            status: None,
                            code: code.to_owned(),
                            message: format!("{what} ended {status}: {msg}"),
                            request: format!("GET {}", req.display_path()),
                            request_id: resp.request_id().map(str::to_owned),
                            correlation_id: self.correlation_id.clone(),
                        });
                    }
                    other => progress(format!(
                        "{what}: {other} ({}s)",
                        started.elapsed().as_secs()
                    )),
                }
            } else if resp.status == 202 {
                progress(format!(
                    "{what}: in progress ({}s)",
                    started.elapsed().as_secs()
                ));
            } else {
                return Ok(Some(resp.body));
            }
        }
    }
}

fn transport_message(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    redact_error(&msg)
}

/// Removes anything that looks like a bearer token from an error text.
pub fn redact_error(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            if w.len() > 80 && w.matches('.').count() >= 2 {
                "[redacted]"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The request budget of a run's subscriptions, shared by its clients.
pub fn shared_budget() -> Arc<Budget> {
    Arc::new(Budget::new(Default::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::cloud::CloudProfile;
    use arcplan_config::{Cloud, CloudName};

    #[derive(Debug)]
    struct NoCredential;
    #[async_trait::async_trait]
    impl TokenCredential for NoCredential {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
        ) -> azure_core::Result<azure_core::credentials::AccessToken> {
            Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "none",
            ))
        }
    }

    fn client() -> ArmClient {
        let profile = CloudProfile::from_config(
            &Cloud::Named(CloudName::AzureCloud),
            std::path::Path::new("."),
        )
        .unwrap();
        ArmClient::new(
            profile,
            crate::azure::http::client(None).unwrap(),
            Arc::new(NoCredential),
            shared_budget(),
            RetryPolicy::default(),
        )
    }

    #[test]
    fn requests_are_built_without_a_socket() {
        let c = client();
        let r = c.request(
            Method::GET,
            "/subscriptions/s/resourcegroups/rg",
            ApiKind::Resources,
            None,
        );
        assert_eq!(
            r.url.as_str(),
            "https://management.azure.com/subscriptions/s/resourcegroups/rg?api-version=2025-04-01"
        );
        assert!(r.retryable);
        let r = c.request(
            Method::GET,
            "/subscriptions/s/resources?$filter=tagName eq 'a'",
            ApiKind::Resources,
            None,
        );
        assert_eq!(
            r.url.query(),
            Some("$filter=tagName%20eq%20%27a%27&api-version=2025-04-01")
        );
        let r = c.request(
            Method::POST,
            "/subscriptions/s/providers/Microsoft.Kubernetes/register",
            ApiKind::Resources,
            None,
        );
        assert!(!r.retryable, "POST is not retried blindly");
    }

    #[test]
    fn foreign_urls_are_refused() {
        let c = client();
        assert!(
            c.request_url(Method::GET, "https://management.azure.com/x?api-version=1")
                .is_ok()
        );
        let e = c
            .request_url(Method::GET, "https://evil.example/x")
            .unwrap_err();
        assert_eq!(e.code, "ForeignUrl");
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("x-ms-retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn errors_explain_themselves() {
        let e = ArmError {
            kind: ArmErrorKind::Http,
            status: Some(409),
            code: "MissingSubscriptionRegistration".into(),
            message: "The subscription is not registered to use namespace 'Microsoft.Kubernetes'."
                .into(),
            request: "PUT /x".into(),
            request_id: Some("rid-1".into()),
            correlation_id: "c".into(),
        };
        assert_eq!(
            e.to_string(),
            "PUT /x failed: 409 MissingSubscriptionRegistration: The subscription is not registered to use namespace 'Microsoft.Kubernetes'. (x-ms-request-id rid-1)"
        );
        assert!(e.hint().unwrap().contains("register Microsoft.Kubernetes"));
    }

    #[test]
    fn tokens_are_redacted_from_error_texts() {
        let jwt = format!(
            "eyJ{}.eyJ{}.sig{}",
            "a".repeat(40),
            "b".repeat(40),
            "c".repeat(20)
        );
        assert_eq!(
            redact_error(&format!("bad token {jwt} here")),
            "bad token [redacted] here"
        );
    }

    #[tokio::test]
    async fn a_missing_credential_is_a_clear_error() {
        let c = client();
        let r = c.request(
            Method::GET,
            "/subscriptions/s",
            ApiKind::Subscriptions,
            None,
        );
        let e = c.send(&r).await.unwrap_err();
        assert_eq!(e.kind, ArmErrorKind::Credential);
        assert!(
            e.to_string()
                .contains("no token for https://management.azure.com/.default"),
            "{e}"
        );
    }
}
