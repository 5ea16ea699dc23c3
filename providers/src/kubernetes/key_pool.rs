//! Onboarding keys generated off the async runtime and ahead of need.
//!
//! RSA-4096 generation is CPU work of a few hundred milliseconds, on every fresh cluster's
//! critical path (the connected cluster needs the public half). [`KeyPool`] runs it on Tokio's
//! blocking pool, at most one key per core at once (a semaphore sized to
//! `std::thread::available_parallelism`), never on an async worker thread.
//!
//! When prefetching is on (the CLI's `apply` turns it on; a plan-only run does not, so `plan`
//! never spends CPU on keys it would throw away), the onboarding key's `plan` calls
//! [`KeyPool::prefetch`] as soon as it decides a new key is needed, so generation overlaps every
//! other cluster's planning and I/O. The apply then [`KeyPool::take`]s that key, or generates one
//! when none was prefetched (a saved plan applied in another process). A prefetched key is taken
//! at most once: `take` removes it. Keys nobody took are dropped with the pool; queued
//! generations are cancelled then.
//!
//! The private key stays in memory only: it is not logged, not put in an event or an error, and
//! the cache's `Debug` form shows only how many keys are pending.

use super::key::{self, KeyError, PrivateKeyPem, PublicKeyInfo};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// A generated key pair, or why generation failed.
pub type Generated = Result<(PrivateKeyPem, PublicKeyInfo), KeyError>;

/// A generation in progress (or done and not yet taken).
pub type PendingKey = JoinHandle<Generated>;

/// The key generator pool and the cache of keys generated ahead of their apply.
pub struct KeyPool {
    permits: Arc<Semaphore>,
    workers: usize,
    prefetch: AtomicBool,
    started: AtomicUsize,
    pending: Mutex<HashMap<String, (usize, PendingKey)>>,
}

impl std::fmt::Debug for KeyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPool")
            .field("workers", &self.workers)
            .field("prefetch", &self.prefetch.load(Ordering::Relaxed))
            .field("pending", &self.lock().len())
            .finish()
    }
}

impl Default for KeyPool {
    /// One worker per core; prefetching off.
    fn default() -> Self {
        Self::new(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        )
    }
}

impl KeyPool {
    /// A pool generating at most `workers` keys at once (at least one); prefetching off.
    pub fn new(workers: usize) -> Self {
        let workers = workers.max(1);
        Self {
            permits: Arc::new(Semaphore::new(workers)),
            workers,
            prefetch: AtomicBool::new(false),
            started: AtomicUsize::new(0),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// How many keys are generated at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Turns generation ahead of apply on or off.
    pub fn set_prefetch(&self, on: bool) {
        self.prefetch.store(on, Ordering::Relaxed);
    }

    /// Whether keys are generated ahead of apply.
    pub fn prefetching(&self) -> bool {
        self.prefetch.load(Ordering::Relaxed)
    }

    /// How many generations this pool has started (prefetched or not).
    pub fn generations_started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    /// How many prefetched keys wait to be taken.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (usize, PendingKey)>> {
        // A panic elsewhere while holding the lock leaves the map usable.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts generating a `bits`-bit key for `id` (one cluster's Secret) unless prefetching is
    /// off, one is already pending for `id`, or no Tokio runtime is running. Returns whether a
    /// generation started.
    pub fn prefetch(&self, id: &str, bits: usize) -> bool {
        if !self.prefetching()
            || key::generate_check(bits).is_err()
            || tokio::runtime::Handle::try_current().is_err()
        {
            return false;
        }
        let mut pending = self.lock();
        if let Some((have, _)) = pending.get(id)
            && *have == bits
        {
            return false;
        }
        let handle = self.spawn(bits);
        if let Some((_, old)) = pending.insert(id.to_owned(), (bits, handle)) {
            old.abort();
        }
        true
    }

    /// Takes the key prefetched for `id`, if one of `bits` bits is pending; it is removed, so it
    /// is used at most once. One of another size is cancelled.
    pub fn take(&self, id: &str, bits: usize) -> Option<PendingKey> {
        let (have, handle) = self.lock().remove(id)?;
        if have == bits {
            Some(handle)
        } else {
            handle.abort();
            None
        }
    }

    /// Starts generating a key now (queued behind the generations already started). Must be
    /// called inside a Tokio runtime.
    pub fn spawn(&self, bits: usize) -> PendingKey {
        self.started.fetch_add(1, Ordering::Relaxed);
        let permits = self.permits.clone();
        tokio::spawn(async move {
            let permit = permits
                .acquire_owned()
                .await
                .map_err(|_| KeyError::Generate("the key generator pool was closed".into()))?;
            // The permit moves into the blocking task, so it is released only when the CPU work
            // ends, even if this task is aborted while waiting for it.
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                key::generate(bits)
            })
            .await
            .map_err(|e| KeyError::Generate(format!("the key generator stopped: {e}")))?
        })
    }
}

impl Drop for KeyPool {
    fn drop(&mut self) {
        for (_, (_, handle)) in self.lock().drain() {
            handle.abort();
        }
    }
}

/// Waits for a pending key; a cancelled or failed task becomes a [`KeyError`].
pub async fn finish(handle: &mut PendingKey) -> Generated {
    match handle.await {
        Ok(r) => r,
        Err(e) if e.is_cancelled() => {
            Err(KeyError::Generate("key generation was cancelled".into()))
        }
        Err(_) => Err(KeyError::Generate("the key generator failed".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_prefetched_key_is_taken_once_and_only_when_prefetching() {
        let pool = KeyPool::new(2);
        assert!(!pool.prefetch("c1", 2048), "prefetching is off by default");
        assert!(pool.take("c1", 2048).is_none());
        pool.set_prefetch(true);
        assert!(pool.prefetch("c1", 2048));
        assert!(!pool.prefetch("c1", 2048), "one generation per cluster");
        assert!(!pool.prefetch("c2", 1000), "bad sizes are not generated");
        assert_eq!(pool.pending(), 1);
        let mut h = pool.take("c1", 2048).expect("the prefetched key");
        assert!(
            pool.take("c1", 2048).is_none(),
            "a key is used at most once"
        );
        let (pem, info) = finish(&mut h).await.expect("a key");
        assert_eq!(key::public_key_of(&pem).expect("parses"), info);
        assert_eq!(info.bits, 2048);
        // Another size than the one prefetched: not used.
        assert!(pool.prefetch("c3", 2048));
        assert!(pool.take("c3", 4096).is_none());
        assert_eq!(pool.pending(), 0);
        assert_eq!(pool.generations_started(), 2);
        assert_eq!(
            format!("{pool:?}"),
            "KeyPool { workers: 2, prefetch: true, pending: 0 }"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn keys_are_fresh_and_every_permit_comes_back() {
        // One async thread: the generations run on the blocking pool while it awaits them.
        let pool = KeyPool::new(1);
        let mut handles: Vec<_> = (0..3).map(|_| pool.spawn(2048)).collect();
        let mut keys = Vec::new();
        for h in &mut handles {
            keys.push(finish(h).await.expect("a key").1.public_key);
        }
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 3, "every key is new");
        assert_eq!(pool.permits.available_permits(), 1);
        // A generation aborted while queued gives its permit back and reports the cancellation.
        let busy = pool.spawn(2048);
        let mut queued = pool.spawn(2048);
        queued.abort();
        assert!(
            matches!(finish(&mut queued).await, Err(KeyError::Generate(m)) if m.contains("cancelled"))
        );
        drop(busy.await);
        assert_eq!(pool.permits.available_permits(), 1);
    }
}
