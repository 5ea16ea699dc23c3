//! Fault injection for the sandbox servers: latency, ARM-style throttling, 5xx errors and dropped
//! connections, all seeded and repeatable.
//!
//! [`Faults::apply`] wraps one server's router ([`Endpoint`]) in an axum middleware. For each
//! request it draws from a ChaCha generator seeded with (seed, endpoint, method, path, n), where n
//! counts earlier requests with the same method and path. So the decisions for a given request do not
//! depend on how concurrent requests to other paths interleave: a run with the same seed and the same
//! per-path request sequence sees the same faults. The Kubernetes server is wrapped as a whole, so
//! every emulated cluster's routes get faults and latency too; a cluster addressed by its
//! `/clusters/{name}` prefix has its own per-path sequences.
//!
//! Throttling (ARM only) follows ARM's token-bucket model: one bucket per subscription (or the tenant,
//! for tenant-level paths) and per kind of request (reads = GET/HEAD, deletes, writes = the rest),
//! refilled every second. An empty bucket answers `429` with `Retry-After` (whole seconds) and code
//! `SubscriptionRequestsThrottled`; every ARM response carries
//! `x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}` (and the `-global-` variant). When
//! throttling is disabled the headers still appear, with the bucket's full capacity.
//! [`Faults::throttle_next`] forces `429` for the next k ARM requests.
//!
//! Slow and failing long-running operations are decided by the ARM emulator (see `SandboxOptions`).
//!
//! Limits: injected errors are decided before the handler runs, so a 5xx never has side effects;
//! real services sometimes fail after doing the work. Real ARM throttles per principal as well; here the
//! buckets are per subscription only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tokio::time::Instant;

use crate::tls::DropConnection;

/// Which sandbox server a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// The Entra token endpoint.
    Entra,
    /// Azure Resource Manager.
    Arm,
    /// The Kubernetes API.
    Kube,
}

impl Endpoint {
    /// Lower-case name, as used in logs.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Entra => "entra",
            Endpoint::Arm => "arm",
            Endpoint::Kube => "kube",
        }
    }
}

/// One token bucket: `capacity` tokens, `refill_per_sec` tokens added every second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSpec {
    /// Maximum (and initial) number of tokens.
    pub capacity: u32,
    /// Tokens added per second.
    pub refill_per_sec: u32,
}

/// ARM throttling settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ThrottleOptions {
    /// Whether an empty bucket answers 429. When false the rate-limit headers still appear.
    pub enabled: bool,
    /// Bucket for GET/HEAD requests, per subscription.
    pub reads: BucketSpec,
    /// Bucket for PUT/PATCH/POST requests, per subscription.
    pub writes: BucketSpec,
    /// Bucket for DELETE requests, per subscription.
    pub deletes: BucketSpec,
}

impl ThrottleOptions {
    /// ARM's published per-subscription token-bucket limits (reads 250 / 25 per second, writes and
    /// deletes 200 / 10 per second), enabled.
    pub fn arm_like() -> Self {
        Self {
            enabled: true,
            reads: BucketSpec {
                capacity: 250,
                refill_per_sec: 25,
            },
            writes: BucketSpec {
                capacity: 200,
                refill_per_sec: 10,
            },
            deletes: BucketSpec {
                capacity: 200,
                refill_per_sec: 10,
            },
        }
    }
}

impl Default for ThrottleOptions {
    /// ARM's limits, but disabled.
    fn default() -> Self {
        Self {
            enabled: false,
            ..Self::arm_like()
        }
    }
}

/// Fault settings shared by the three servers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultConfig {
    /// Seed of every random decision.
    pub seed: u64,
    /// Added to every request.
    pub latency: Duration,
    /// Up to this much more latency, uniformly drawn.
    pub jitter: Duration,
    /// Probability (0..=1) that a request fails with 500 or 503 (half each).
    pub error_rate: f64,
    /// Probability (0..=1) that the connection is closed without a response.
    pub drop_rate: f64,
    /// ARM throttling.
    pub throttle: ThrottleOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Reads,
    Writes,
    Deletes,
}

impl Kind {
    fn of(method: &Method) -> Self {
        if method == Method::GET || method == Method::HEAD {
            Kind::Reads
        } else if method == Method::DELETE {
            Kind::Deletes
        } else {
            Kind::Writes
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Reads => "reads",
            Kind::Writes => "writes",
            Kind::Deletes => "deletes",
        }
    }
    fn verb(self) -> &'static str {
        match self {
            Kind::Reads => "read",
            Kind::Writes => "write",
            Kind::Deletes => "delete",
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug)]
struct FaultState {
    config: FaultConfig,
    per_path: HashMap<u64, u64>,
    buckets: HashMap<(String, Kind), Bucket>,
    forced_throttles: u32,
    forced_retry_after: u32,
}

/// Shared, mutable fault injection state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Faults {
    inner: Arc<Mutex<FaultState>>,
}

/// What the draw decided for one request.
#[derive(Debug)]
struct Decision {
    delay: Duration,
    drop: bool,
    error: Option<StatusCode>,
    throttle: Option<ThrottleVerdict>,
}

#[derive(Debug)]
struct ThrottleVerdict {
    scope: String,
    kind: Kind,
    remaining: u32,
    /// `Some(seconds)` when throttled.
    retry_after: Option<u32>,
}

impl Faults {
    /// New fault state from `config`.
    pub fn new(config: FaultConfig) -> Self {
        Self {
            inner: Arc::new(Mutex::new(FaultState {
                config,
                per_path: HashMap::new(),
                buckets: HashMap::new(),
                forced_throttles: 0,
                forced_retry_after: 1,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current configuration.
    pub fn config(&self) -> FaultConfig {
        self.lock().config.clone()
    }

    /// Replaces the configuration (buckets keep their current levels).
    pub fn set_config(&self, config: FaultConfig) {
        self.lock().config = config;
    }

    /// Sets the fixed latency and jitter.
    pub fn set_latency(&self, latency: Duration, jitter: Duration) {
        let mut st = self.lock();
        st.config.latency = latency;
        st.config.jitter = jitter;
    }

    /// Sets the 5xx error rate (0..=1).
    pub fn set_error_rate(&self, rate: f64) {
        self.lock().config.error_rate = rate.clamp(0.0, 1.0);
    }

    /// Sets the dropped-connection rate (0..=1).
    pub fn set_drop_rate(&self, rate: f64) {
        self.lock().config.drop_rate = rate.clamp(0.0, 1.0);
    }

    /// Replaces the throttling settings and refills every bucket.
    pub fn set_throttle(&self, throttle: ThrottleOptions) {
        let mut st = self.lock();
        st.config.throttle = throttle;
        st.buckets.clear();
    }

    /// Makes the next `count` ARM requests answer 429 with `Retry-After: retry_after_secs`.
    pub fn throttle_next(&self, count: u32, retry_after_secs: u32) {
        let mut st = self.lock();
        st.forced_throttles = count;
        st.forced_retry_after = retry_after_secs;
    }

    /// The tower layer (axum middleware) injecting faults into `endpoint`'s requests.
    pub fn apply(&self, router: Router, endpoint: Endpoint) -> Router {
        router.layer(axum::middleware::from_fn_with_state(
            (self.clone(), endpoint),
            fault_middleware,
        ))
    }

    fn decide(&self, endpoint: Endpoint, method: &Method, path: &str) -> Decision {
        let mut st = self.lock();
        let key = fnv(&[
            endpoint.name().as_bytes(),
            method.as_str().as_bytes(),
            path.to_ascii_lowercase().as_bytes(),
        ]);
        let n = {
            let c = st.per_path.entry(key).or_insert(0);
            *c += 1;
            *c
        };
        let cfg = st.config.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(
            cfg.seed ^ key.rotate_left(17) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let jitter_ms = u64::try_from(cfg.jitter.as_millis()).unwrap_or(u64::MAX);
        let extra = if jitter_ms > 0 {
            Duration::from_millis(rng.random_range(0..=jitter_ms))
        } else {
            Duration::ZERO
        };
        let drop_roll: f64 = rng.random();
        let err_roll: f64 = rng.random();
        let which: bool = rng.random();
        let drop = drop_roll < cfg.drop_rate;
        let error = (!drop && err_roll < cfg.error_rate).then_some(if which {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        });
        let throttle = (endpoint == Endpoint::Arm).then(|| throttle_verdict(&mut st, method, path));
        Decision {
            delay: cfg.latency + extra,
            drop,
            error,
            throttle,
        }
    }
}

fn throttle_verdict(st: &mut FaultState, method: &Method, path: &str) -> ThrottleVerdict {
    let kind = Kind::of(method);
    let scope =
        subscription_of(path).map_or_else(|| "tenant".to_string(), |s| s.to_ascii_lowercase());
    let spec = match kind {
        Kind::Reads => st.config.throttle.reads,
        Kind::Writes => st.config.throttle.writes,
        Kind::Deletes => st.config.throttle.deletes,
    };
    if st.forced_throttles > 0 {
        st.forced_throttles -= 1;
        return ThrottleVerdict {
            scope,
            kind,
            remaining: 0,
            retry_after: Some(st.forced_retry_after),
        };
    }
    if !st.config.throttle.enabled {
        return ThrottleVerdict {
            scope,
            kind,
            remaining: spec.capacity,
            retry_after: None,
        };
    }
    let now = Instant::now();
    let bucket = st.buckets.entry((scope.clone(), kind)).or_insert(Bucket {
        tokens: f64::from(spec.capacity),
        last: now,
    });
    let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
    bucket.tokens =
        (bucket.tokens + elapsed * f64::from(spec.refill_per_sec)).min(f64::from(spec.capacity));
    bucket.last = now;
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        ThrottleVerdict {
            scope,
            kind,
            remaining: bucket.tokens.floor() as u32,
            retry_after: None,
        }
    } else {
        let missing = 1.0 - bucket.tokens;
        let secs = if spec.refill_per_sec == 0 {
            60
        } else {
            (missing / f64::from(spec.refill_per_sec)).ceil().max(1.0) as u32
        };
        ThrottleVerdict {
            scope,
            kind,
            remaining: 0,
            retry_after: Some(secs),
        }
    }
}

/// The subscription id of an ARM path `/subscriptions/{id}/...`, if any.
pub fn subscription_of(path: &str) -> Option<&str> {
    let mut segs = path.trim_start_matches('/').split('/');
    let first = segs.next()?;
    if !first.eq_ignore_ascii_case("subscriptions") {
        return None;
    }
    segs.next().filter(|s| !s.is_empty())
}

fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

async fn fault_middleware(
    State((faults, endpoint)): State<(Faults, Endpoint)>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let decision = faults.decide(endpoint, &method, &path);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    if decision.drop {
        let mut resp = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        resp.extensions_mut().insert(DropConnection);
        return resp;
    }
    if let Some(t) = &decision.throttle
        && let Some(secs) = t.retry_after
    {
        let mut resp = throttled(t, secs);
        add_ratelimit_headers(&mut resp, t);
        return resp;
    }
    if let Some(status) = decision.error {
        let mut resp = injected_error(endpoint, status);
        if let Some(t) = &decision.throttle {
            add_ratelimit_headers(&mut resp, t);
        }
        return resp;
    }
    let mut resp = next.run(req).await;
    if let Some(t) = &decision.throttle {
        add_ratelimit_headers(&mut resp, t);
    }
    resp
}

fn add_ratelimit_headers(resp: &mut Response, t: &ThrottleVerdict) {
    let value = HeaderValue::from(t.remaining);
    let headers = resp.headers_mut();
    let (a, b) = if t.scope == "tenant" {
        (
            format!("x-ms-ratelimit-remaining-tenant-{}", t.kind.name()),
            None,
        )
    } else {
        (
            format!("x-ms-ratelimit-remaining-subscription-{}", t.kind.name()),
            Some(format!(
                "x-ms-ratelimit-remaining-subscription-global-{}",
                t.kind.name()
            )),
        )
    };
    if let Ok(name) = header::HeaderName::try_from(a) {
        headers.insert(name, value.clone());
    }
    if let Some(b) = b
        && let Ok(name) = header::HeaderName::try_from(b)
    {
        headers.insert(name, value);
    }
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

fn throttled(t: &ThrottleVerdict, secs: u32) -> Response {
    let (code, what) = if t.scope == "tenant" {
        ("TenantRequestsThrottled", "tenant".to_string())
    } else {
        (
            "SubscriptionRequestsThrottled",
            format!("subscription '{}'", t.scope),
        )
    };
    let mut resp = json(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({"error": {
            "code": code,
            "message": format!("Number of '{}' requests for {what} exceeded. Please try again after '{secs}' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling", t.kind.verb()),
        }}),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

fn injected_error(endpoint: Endpoint, status: StatusCode) -> Response {
    let unavailable = status == StatusCode::SERVICE_UNAVAILABLE;
    let mut resp = match endpoint {
        Endpoint::Arm => json(
            status,
            &json!({"error": if unavailable {
                json!({"code": "ServiceUnavailable", "message": "The server is currently unable to handle the request. Please retry after some time. (sandbox fault injection)"})
            } else {
                json!({"code": "InternalServerError", "message": "Encountered internal server error. (sandbox fault injection)"})
            }}),
        ),
        Endpoint::Entra => crate::entra::entra_error(
            status,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again. (sandbox fault injection)",
        ),
        Endpoint::Kube => json(
            status,
            &json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": if unavailable { "the server is currently unable to handle the request (sandbox fault injection)" } else { "an error on the server (\"sandbox fault injection\") has prevented the request from succeeding" },
                "reason": if unavailable { "ServiceUnavailable" } else { "InternalError" },
                "code": status.as_u16(),
            }),
        ),
    };
    if unavailable {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_is_found_case_insensitively() {
        assert_eq!(
            subscription_of("/Subscriptions/abc/resourceGroups/x"),
            Some("abc")
        );
        assert_eq!(subscription_of("/subscriptions"), None);
        assert_eq!(subscription_of("/providers/x"), None);
    }

    #[test]
    fn decisions_repeat_for_the_same_seed() {
        let cfg = FaultConfig {
            seed: 7,
            error_rate: 0.5,
            ..FaultConfig::default()
        };
        let run = || {
            let f = Faults::new(cfg.clone());
            (0..40)
                .map(|i| {
                    f.decide(Endpoint::Arm, &Method::GET, &format!("/p{}", i % 3))
                        .error
                        .is_some()
                })
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        assert!(a.iter().any(|e| *e) && a.iter().any(|e| !*e));
    }
}
