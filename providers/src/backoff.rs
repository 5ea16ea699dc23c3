//! The one retry schedule of both clients (ARM and Kubernetes): exponential backoff with jitter,
//! and the server's `Retry-After` honoured.

use http::HeaderMap;
use rand::Rng;
use std::time::Duration;

/// An exponential backoff: `base`, doubling per retry, capped at `max`, each wait jittered
/// between half and all of its step so a fleet's retries spread out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first step.
    pub base: Duration,
    /// The longest step (a server's `Retry-After` may ask for longer).
    pub max: Duration,
    /// The longest `Retry-After` honoured (`None`: as long as the server asks).
    pub max_server_wait: Option<Duration>,
}

/// Above the server's `Retry-After`, at most this much jitter is added.
const SERVER_JITTER: Duration = Duration::from_millis(250);

impl Backoff {
    /// The step before retry number `retry` (0 for the first retry), jittered.
    pub fn step(&self, retry: u32) -> Duration {
        let step = self.base.saturating_mul(1 << retry.min(16)).min(self.max);
        step.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    /// The wait before retry number `retry`, given the server's `Retry-After` if it sent one:
    /// never less than what the server asked (up to `max_server_wait`), and at most a little
    /// jitter more; the backoff step otherwise.
    pub fn wait(&self, retry: u32, server: Option<Duration>) -> Duration {
        let step = self.step(retry);
        match server {
            None => step,
            Some(asked) => {
                let asked = self.max_server_wait.map_or(asked, |cap| asked.min(cap));
                asked.max(step.min(asked + SERVER_JITTER))
            }
        }
    }
}

/// The wait a response asks for: `x-ms-retry-after-ms`, `retry-after-ms` (milliseconds) or
/// `Retry-After` (seconds, fractions allowed). An HTTP-date, a negative or unparsable value is
/// no answer.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = get("x-ms-retry-after-ms")
        .or_else(|| get("retry-after-ms"))
        .and_then(|v| v.parse::<u64>().ok())
    {
        return Some(Duration::from_millis(ms));
    }
    get("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Backoff {
        Backoff {
            base: Duration::from_millis(200),
            max: Duration::from_secs(5),
            max_server_wait: Some(Duration::from_secs(60)),
        }
    }

    #[test]
    fn steps_grow_and_are_capped() {
        let p = policy();
        let first = p.step(0);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
        let third = p.step(2);
        assert!(third >= Duration::from_millis(400) && third <= Duration::from_millis(800));
        let late = p.step(40);
        assert!(late >= Duration::from_millis(2500) && late <= Duration::from_secs(5));
    }

    #[test]
    fn the_server_wait_is_honoured_and_capped() {
        let p = policy();
        let w = p.wait(0, Some(Duration::from_secs(3)));
        assert!(
            w >= Duration::from_secs(3) && w <= Duration::from_millis(3250),
            "{w:?}"
        );
        assert!(p.wait(0, Some(Duration::from_secs(600))) <= Duration::from_millis(60_250));
        let uncapped = Backoff {
            max_server_wait: None,
            ..p
        };
        assert!(uncapped.wait(0, Some(Duration::from_secs(600))) >= Duration::from_secs(600));
    }

    #[test]
    fn retry_after_in_every_form() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after", "0.5".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(500)));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "-3".parse().unwrap());
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        h.insert("x-ms-retry-after-ms", "20".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(20)));
    }
}
