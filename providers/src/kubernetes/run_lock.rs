//! The provider's `lock` verb: the Lease of every cluster a run touches, taken before anything
//! is read for planning, each held as an engine [`ScopeLock`].
//!
//! First every Lease at once, without waiting: a fleet's locks cost one round trip's time, not
//! one per cluster. If any is held by another run, what was taken is given back and the Leases
//! are taken one by one in a fixed order (the clusters' `cluster` attributes, sorted), waiting
//! as asked: two runs that want overlapping clusters then cannot each hold a part and wait for
//! the other's.

use super::KubernetesProvider;
use super::lock::{LockFence, LockGuard, LockWait};
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use arcplan_engine::provider::{LockRequest, LockResponse, LockWaiting, ScopeLock};
use async_trait::async_trait;
use futures::StreamExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How many Lease requests a run makes at once when it takes or gives back its locks.
const AT_ONCE: usize = 32;

/// One cluster's lock, as the engine holds it.
struct Held {
    fence: LockFence,
    guard: tokio::sync::Mutex<Option<LockGuard>>,
}

impl Held {
    fn shared(guard: LockGuard) -> Arc<dyn ScopeLock> {
        Arc::new(Held {
            fence: guard.fence(),
            guard: tokio::sync::Mutex::new(Some(guard)),
        })
    }
}

#[async_trait]
impl ScopeLock for Held {
    async fn ensure_held(&self) -> Result<(), Diagnostic> {
        self.fence.ensure_held().await
    }
    fn lost(&self) -> Option<Diagnostic> {
        self.fence.lost()
    }
    fn lost_signal(&self) -> CancellationToken {
        self.fence.lost_signal()
    }
    async fn release(&self) -> Result<(), Diagnostic> {
        match self.guard.lock().await.take() {
            Some(g) => g.release().await,
            None => Ok(()),
        }
    }
}

/// Gives back locks taken (a failed release: the Lease expires by itself).
async fn release_all(locks: Vec<Arc<dyn ScopeLock>>) -> Diagnostics {
    let releases: Vec<_> = locks.iter().map(|l| l.release()).collect();
    futures::future::join_all(releases)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect()
}

/// Takes the lock of every cluster among the request's resources (their `cluster` attribute).
pub(crate) async fn lock(p: &KubernetesProvider, req: LockRequest) -> LockResponse {
    let mut clusters: BTreeMap<String, Value> = BTreeMap::new();
    for (_, desired) in &req.resources {
        if let Some(c) = desired.get("cluster").filter(|c| !c.is_null()) {
            clusters.entry(c.to_string()).or_insert_with(|| c.clone());
        }
    }
    let (holder, cancel) = (req.holder.as_str(), &req.cancel);
    let attempts = futures::stream::iter(clusters.values().cloned().map(|c| async move {
        let quiet = |_: &LockWait| {};
        p.acquire_lock_with(&c, holder, Duration::ZERO, cancel, &quiet)
            .await
    }))
    .buffered(AT_ONCE)
    .collect::<Vec<_>>()
    .await;
    let mut resp = LockResponse::default();
    let mut held_elsewhere = false;
    for a in attempts {
        match a {
            Ok(guard) => resp.locks.push(Held::shared(guard)),
            Err(d) if d.code == "k8s-locked" => held_elsewhere = true,
            Err(d) => {
                if !resp.diagnostics.has_errors() {
                    resp.diagnostics.push(d);
                }
            }
        }
    }
    if resp.diagnostics.has_errors() || !held_elsewhere {
        return resp;
    }
    let mut resp = LockResponse {
        diagnostics: release_all(std::mem::take(&mut resp.locks)).await,
        ..Default::default()
    };
    let on_wait = |w: &LockWait| {
        (req.on_wait)(&LockWaiting {
            scope: w.cluster.clone(),
            holder: w.describe(),
            waited: w.waited,
            timeout: w.timeout,
        })
    };
    for c in clusters.values() {
        match p
            .acquire_lock_with(c, &req.holder, req.timeout, &req.cancel, &on_wait)
            .await
        {
            Ok(guard) => resp.locks.push(Held::shared(guard)),
            Err(d) => {
                resp.diagnostics.push(d);
                break;
            }
        }
    }
    resp
}
