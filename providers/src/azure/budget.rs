//! A per-subscription request budget shared by every concurrent operation (one pair of buckets
//! per subscription a run works in, and one for tenant-level requests).
//!
//! ARM throttles each subscription with token buckets (reads and writes, refilled every
//! second) and reports what is left in `x-ms-ratelimit-remaining-subscription-*` headers. The
//! budget mirrors those buckets locally, adopts the server's figure when it is lower (other
//! clients share the subscription), and after a 429 holds back every request of that kind until
//! `Retry-After` has passed, so fifty parallel reads wait their turn instead of all failing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// Reads or writes (deletes count as writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// GET and HEAD.
    Read,
    /// PUT, PATCH, POST, DELETE.
    Write,
}

/// Bucket sizes and refill rates.
#[derive(Debug, Clone, Copy)]
pub struct BudgetConfig {
    /// Read bucket size.
    pub reads: f64,
    /// Reads refilled per second.
    pub reads_per_second: f64,
    /// Write bucket size.
    pub writes: f64,
    /// Writes refilled per second.
    pub writes_per_second: f64,
    /// Requests in flight at once.
    pub concurrency: usize,
}

impl Default for BudgetConfig {
    /// ARM's documented subscription buckets: 250 reads refilled at 25/s, 200 writes at 10/s.
    fn default() -> Self {
        Self {
            reads: 250.0,
            reads_per_second: 25.0,
            writes: 200.0,
            writes_per_second: 10.0,
            concurrency: 32,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    tokens: f64,
    rate: f64,
    last: Instant,
    blocked_until: Option<Instant>,
}

impl Bucket {
    fn new(capacity: f64, rate: f64) -> Self {
        Self {
            capacity,
            tokens: capacity,
            rate,
            last: Instant::now(),
            blocked_until: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.capacity);
        self.last = now;
    }

    /// Takes a token, or says how long to wait for one.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.blocked_until {
            if until > now {
                return Err(until - now);
            }
            self.blocked_until = None;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.rate.max(0.001),
            ))
        }
    }
}

/// The budget of one subscription.
/// The budget of a run: buckets per subscription, one limit of requests in flight.
#[derive(Debug)]
pub struct Budget {
    config: BudgetConfig,
    /// By scope (a subscription id in lower case, or `tenant`) and kind.
    buckets: Mutex<HashMap<(String, Kind), Bucket>>,
    in_flight: Semaphore,
}

/// The bucket scope of an ARM path: its subscription (ARM throttles each one on its own), or
/// `tenant` for tenant-level paths.
pub fn scope_of(path: &str) -> String {
    super::shared::sub_of(path).map_or_else(|| "tenant".to_owned(), str::to_ascii_lowercase)
}

impl Budget {
    /// A full budget.
    pub fn new(config: BudgetConfig) -> Self {
        Self {
            config,
            buckets: Mutex::new(HashMap::new()),
            in_flight: Semaphore::new(config.concurrency.max(1)),
        }
    }

    fn with_bucket<R>(&self, scope: &str, kind: Kind, f: impl FnOnce(&mut Bucket) -> R) -> R {
        let mut all = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let c = &self.config;
        let b = all
            .entry((scope.to_owned(), kind))
            .or_insert_with(|| match kind {
                Kind::Read => Bucket::new(c.reads, c.reads_per_second),
                Kind::Write => Bucket::new(c.writes, c.writes_per_second),
            });
        f(b)
    }

    /// Waits until a request of this kind in `scope` may be sent; hold the permit while it is
    /// in flight.
    pub async fn acquire(&self, scope: &str, kind: Kind) -> SemaphorePermit<'_> {
        loop {
            let wait = self.with_bucket(scope, kind, |b| b.take(Instant::now()));
            match wait {
                Ok(()) => break,
                Err(d) => tokio::time::sleep(d.max(Duration::from_millis(5))).await,
            }
        }
        match self.in_flight.acquire().await {
            Ok(p) => p,
            Err(_) => unreachable!("the budget's semaphore is never closed"),
        }
    }

    /// Adopts the server's remaining count for `scope` when it is lower than ours.
    pub fn observe_remaining(&self, scope: &str, kind: Kind, remaining: u64) {
        self.with_bucket(scope, kind, |b| {
            b.refill(Instant::now());
            b.tokens = b.tokens.min(remaining as f64);
        });
    }

    /// After a 429 in `scope`: holds back every request of this kind there for `retry_after`.
    pub fn throttled(&self, scope: &str, kind: Kind, retry_after: Duration) {
        self.with_bucket(scope, kind, |b| {
            let until = Instant::now() + retry_after;
            b.blocked_until = Some(b.blocked_until.map_or(until, |u| u.max(until)));
            b.tokens = 0.0;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_drained_bucket_paces_requests_at_the_refill_rate() {
        let b = Budget::new(BudgetConfig {
            reads: 5.0,
            reads_per_second: 10.0,
            ..Default::default()
        });
        let start = tokio::time::Instant::now();
        for _ in 0..25 {
            drop(b.acquire("s", Kind::Read).await);
        }
        // 5 immediately, 20 more at 10 per second: about two seconds.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1900) && took <= Duration::from_millis(2300),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_blocks_that_kind_only() {
        let b = Budget::new(BudgetConfig::default());
        b.throttled("s", Kind::Write, Duration::from_secs(3));
        let start = tokio::time::Instant::now();
        drop(b.acquire("s", Kind::Read).await);
        assert!(
            start.elapsed() < Duration::from_millis(10),
            "reads are not held back"
        );
        drop(b.acquire("s", Kind::Write).await);
        assert!(
            start.elapsed() >= Duration::from_secs(3),
            "writes wait for Retry-After"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_servers_lower_figure_wins() {
        let b = Budget::new(BudgetConfig {
            reads: 100.0,
            reads_per_second: 1.0,
            ..Default::default()
        });
        b.observe_remaining("s", Kind::Read, 1);
        let start = tokio::time::Instant::now();
        drop(b.acquire("s", Kind::Read).await);
        drop(b.acquire("s", Kind::Read).await);
        assert!(
            start.elapsed() >= Duration::from_millis(900),
            "the second read waits for a refill"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_subscription_has_its_own_buckets() {
        let b = Budget::new(BudgetConfig {
            reads: 1.0,
            reads_per_second: 1.0,
            ..Default::default()
        });
        let start = tokio::time::Instant::now();
        for sub in ["a", "b", "c", "d"] {
            drop(b.acquire(sub, Kind::Read).await);
        }
        assert!(
            start.elapsed() < Duration::from_millis(10),
            "one subscription's reads do not spend another's"
        );
        drop(b.acquire("a", Kind::Read).await);
        assert!(
            start.elapsed() >= Duration::from_millis(900),
            "a's bucket is empty"
        );
        assert_eq!(scope_of("/subscriptions/ABC/resourceGroups/x"), "abc");
        assert_eq!(scope_of("/subscriptions"), "tenant");
        assert_eq!(scope_of("/providers/Microsoft.Kubernetes"), "tenant");
    }
}
