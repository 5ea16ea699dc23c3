//! Retries of transient Kubernetes API failures, as a tower layer on top of the kube client's
//! own stack.
//!
//! kube retries 429, 503 and 504 (honouring `Retry-After`). This adds what a flaky network and a
//! restarting apiserver produce: 500, 502 and 504 answers for requests that are safe to repeat,
//! and connection failures and timeouts for reads and idempotent writes (GET, HEAD, PUT with a
//! resourceVersion, server-side apply PATCH, DELETE). A POST (create) is retried only on
//! 429/503, which mean the request was not processed. A DELETE is idempotent: repeated after a
//! transient failure, it answers 404 when the first one did the work, which every caller takes
//! as done (as the ARM side does).
//!
//! When it gives up on a failure that is not an answer, the error says how many tries were made
//! and, for a timeout, how long each waited ([`GaveUp`]).

use crate::backoff::Backoff;
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
    schedule: Backoff,
    response_timeout: Option<Duration>,
}

/// The last failure of a request that was tried `attempts` times.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub struct GaveUp {
    /// Tries in all.
    pub attempts: u32,
    /// The response timeout, when the last failure was a timeout.
    pub timed_out: Option<Duration>,
    /// The last failure.
    #[source]
    pub source: BoxError,
}

impl GaveUp {
    fn describe(&self) -> String {
        let tries = if self.attempts == 1 {
            "1 try".to_owned()
        } else {
            format!("{} tries", self.attempts)
        };
        match self.timed_out {
            Some(t) => format!(
                "no answer within {} after {tries} (ARCPLAN_RESPONSE_TIMEOUT sets the wait)",
                humantime::format_duration(t)
            ),
            None => format!("failed after {tries}"),
        }
    }
}

impl Default for TransientRetry {
    fn default() -> Self {
        Self {
            attempt: 0,
            max_attempts: 6,
            schedule: Backoff {
                base: Duration::from_millis(200),
                max: Duration::from_secs(5),
                max_server_wait: Some(Duration::from_secs(60)),
            },
            response_timeout: None,
        }
    }
}

impl TransientRetry {
    /// Names `timeout` in the error when a request times out on its last try.
    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = Some(timeout);
        self
    }

    /// Replaces a final transport failure by a [`GaveUp`] naming the tries (an answer, even an
    /// error answer, is left as it is).
    fn give_up<B>(&self, result: &mut Result<Response<B>, BoxError>) {
        if let Err(e) = result {
            let source: BoxError = std::mem::replace(e, "".into());
            let timed_out = (crate::azure::http::classify(source.as_ref())
                == crate::azure::http::Failure::Timeout)
                .then_some(self.response_timeout)
                .flatten();
            if timed_out.is_none() && self.attempt == 0 {
                *e = source;
                return;
            }
            *e = Box::new(GaveUp {
                attempts: self.attempt + 1,
                timed_out,
                source,
            });
        }
    }

    #[cfg(test)]
    fn backoff(&self) -> Duration {
        self.schedule.step(self.attempt)
    }

    /// Whether this answer or failure is worth repeating the request for. `query` marks a POST
    /// that only asks a question (an access review) and creates nothing.
    pub fn retryable(method: &Method, query: bool, result: Result<u16, ()>) -> bool {
        let repeatable = query
            || matches!(
                *method,
                Method::GET | Method::HEAD | Method::PUT | Method::PATCH | Method::DELETE
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
            self.give_up(result);
            return None;
        }
        let outcome = result.as_ref().map(|r| r.status().as_u16()).map_err(|_| ());
        let query = req.uri().path().ends_with("accessreviews");
        // A certificate or name problem does not go away by asking again.
        let lasting = result.as_ref().err().is_some_and(|e| {
            let f = crate::azure::http::classify(e.as_ref());
            f != crate::azure::http::Failure::Other && !f.is_transient()
        });
        if lasting || !Self::retryable(req.method(), query, outcome) {
            self.give_up(result);
            return None;
        }
        let server = result
            .as_ref()
            .ok()
            .and_then(|r| crate::backoff::retry_after(r.headers()));
        let wait = self.schedule.wait(self.attempt, server);
        self.attempt += 1;
        Some(tokio::time::sleep(wait))
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
        assert!(r(&Method::DELETE, false, Err(())), "a DELETE is idempotent");
        assert!(r(&Method::DELETE, false, Ok(500)));
        assert!(!r(&Method::DELETE, false, Ok(404)));
        assert!(!r(&Method::GET, false, Ok(404)));
        assert!(!r(&Method::PUT, false, Ok(409)));
    }

    /// A server that fails the first `fail` requests with `status`, then answers 200.
    fn flaky(
        fail: u32,
        status: u16,
    ) -> (
        impl tower::Service<
            Request<Body>,
            Response = Response<()>,
            Error = BoxError,
            Future = impl Send,
        > + Clone,
        std::sync::Arc<std::sync::atomic::AtomicU32>,
    ) {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let seen = calls.clone();
        let svc = tower::service_fn(move |_req: Request<Body>| {
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                let code = if n < fail { status } else { 200 };
                Ok::<_, BoxError>(Response::builder().status(code).body(()).unwrap())
            }
        });
        (svc, calls)
    }

    fn delete() -> Request<Body> {
        Request::builder()
            .method(Method::DELETE)
            .uri("/api/v1/namespaces/azure-arc")
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn a_delete_is_repeated_after_a_transient_5xx() {
        use tower::{Service, ServiceExt};
        let (svc, calls) = flaky(1, 500);
        let mut svc = tower::retry::Retry::new(TransientRetry::default(), svc);
        let resp = svc.ready().await.unwrap().call(delete()).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_timeout_is_retried_then_reported_with_the_tries() {
        use tower::{Service, ServiceExt};
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let seen = calls.clone();
        let svc = tower::service_fn(move |_req: Request<Body>| {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                Err::<Response<()>, BoxError>(Box::new(std::io::Error::from(
                    std::io::ErrorKind::TimedOut,
                )))
            }
        });
        let mut policy = TransientRetry::default();
        policy.schedule.base = Duration::from_millis(1);
        let policy = policy.with_response_timeout(Duration::from_secs(7));
        let mut svc = tower::retry::Retry::new(policy, svc);
        let get = Request::builder()
            .method(Method::GET)
            .uri("/api/v1/namespaces/azure-arc")
            .body(Body::empty())
            .unwrap();
        let e = svc.ready().await.unwrap().call(get).await.unwrap_err();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 6);
        assert_eq!(
            e.to_string(),
            "no answer within 7s after 6 tries (ARCPLAN_RESPONSE_TIMEOUT sets the wait)"
        );
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
