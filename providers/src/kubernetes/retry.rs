//! Retries of transient Kubernetes API failures, as a tower layer on top of the kube client's
//! own stack.
//!
//! kube retries 429, 503 and 504 (honouring `Retry-After`). This adds what a flaky network and a
//! restarting apiserver produce: 500, 502 and 504 answers for requests that are safe to repeat,
//! and connection failures for reads and idempotent writes (GET, HEAD, PUT with a
//! resourceVersion, server-side apply PATCH). A POST (create) is retried only on 429/503,
//! which mean the request was not processed; a DELETE is never repeated blindly.

use http::{Method, Request, Response};
use kube::client::Body;
use std::time::Duration;
use tower::BoxError;
use tower::retry::Policy;

/// The retry policy. Each request gets its own copy (tower clones the policy per call).
#[derive(Debug, Clone)]
pub struct TransientRetry {
    attempt: u32,
    max_attempts: u32,
    base: Duration,
    max_delay: Duration,
}

impl Default for TransientRetry {
    fn default() -> Self {
        Self {
            attempt: 0,
            max_attempts: 6,
            base: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl TransientRetry {
    fn backoff(&self) -> Duration {
        let step = self
            .base
            .saturating_mul(1 << self.attempt.min(10))
            .min(self.max_delay);
        // Jitter between half and all of the step, so a fleet's retries spread out.
        let jitter = 0.5 + (rand::random::<u32>() as f64 / u32::MAX as f64) / 2.0;
        step.mul_f64(jitter)
    }

    /// Whether this answer or failure is worth repeating the request for. `query` marks a POST
    /// that only asks a question (an access review) and creates nothing.
    pub fn retryable(method: &Method, query: bool, result: Result<u16, ()>) -> bool {
        let repeatable = query
            || matches!(
                *method,
                Method::GET | Method::HEAD | Method::PUT | Method::PATCH
            );
        match result {
            Ok(429 | 503) => true,
            Ok(500 | 502 | 504) => repeatable,
            Ok(_) => false,
            Err(()) => repeatable,
        }
    }
}

impl<B> Policy<Request<Body>, Response<B>, BoxError> for TransientRetry {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        req: &mut Request<Body>,
        result: &mut Result<Response<B>, BoxError>,
    ) -> Option<Self::Future> {
        if self.attempt + 1 >= self.max_attempts {
            return None;
        }
        let outcome = result.as_ref().map(|r| r.status().as_u16()).map_err(|_| ());
        let query = req.uri().path().ends_with("accessreviews");
        if !Self::retryable(req.method(), query, outcome) {
            return None;
        }
        let server = result.as_ref().ok().and_then(|r| {
            r.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
        });
        let wait = self.backoff();
        self.attempt += 1;
        Some(tokio::time::sleep(
            server.map_or(wait, |s| s.min(Duration::from_secs(60)).max(wait)),
        ))
    }

    fn clone_request(&mut self, req: &Request<Body>) -> Option<Request<Body>> {
        let body = req.body().try_clone()?;
        let mut builder = Request::builder()
            .method(req.method().clone())
            .uri(req.uri().clone())
            .version(req.version());
        if let Some(h) = builder.headers_mut() {
            h.extend(req.headers().iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let mut cloned = builder.body(body).ok()?;
        *cloned.extensions_mut() = req.extensions().clone();
        Some(cloned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_only_what_is_safe() {
        let r = TransientRetry::retryable;
        assert!(r(&Method::GET, false, Ok(500)));
        assert!(r(&Method::PATCH, false, Err(())));
        assert!(r(&Method::POST, false, Ok(503)), "not processed: safe");
        assert!(
            !r(&Method::POST, false, Ok(500)),
            "a create may have happened"
        );
        assert!(!r(&Method::POST, false, Err(())));
        assert!(
            r(&Method::POST, true, Err(())),
            "an access review creates nothing"
        );
        assert!(!r(&Method::DELETE, false, Err(())));
        assert!(!r(&Method::GET, false, Ok(404)));
        assert!(!r(&Method::PUT, false, Ok(409)));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut p = TransientRetry::default();
        let first = p.backoff();
        p.attempt = 20;
        let late = p.backoff();
        assert!(first <= Duration::from_millis(200));
        assert!(late <= Duration::from_secs(5) && late >= Duration::from_millis(2500));
    }
}
