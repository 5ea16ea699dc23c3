//! The cluster locks of `apply` and `destroy`: which clusters a run touches, taking their Leases
//! (saying who holds one while waiting), what a failure to take one means, and the fence that
//! proves every lock still held before each change.

use super::context::{self, Run};
use crate::views::Output;
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::diag::Diagnostic;
use arcplan_engine::graph::ResourceGraph;
use arcplan_engine::planner::{PlanOptions, selected};
use arcplan_engine::provider::*;
use arcplan_providers::kubernetes::{LockFence, LockGuard, LockWait};
use async_trait::async_trait;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The `cluster` attributes of the cluster-side resources among `(address, desired)` pairs.
pub fn cluster_attrs<'a>(
    items: impl Iterator<Item = (&'a Address, Option<&'a serde_json::Value>)>,
) -> Vec<serde_json::Value> {
    items
        .filter(|(a, _)| {
            a.rtype == arcplan_providers::kinds::ONBOARDING_KEY
                || a.rtype == arcplan_providers::kinds::ARC_AGENTS
        })
        .filter_map(|(_, d)| d?.get("cluster").cloned())
        .collect()
}

/// The clusters a plan with these options reads or changes: those of the selected nodes (the
/// targets and their dependencies, minus the excluded ones), not every cluster of the file.
pub fn touched_clusters(graph: &ResourceGraph, opts: &PlanOptions) -> Vec<serde_json::Value> {
    let chosen = selected(graph, opts);
    cluster_attrs(
        graph
            .nodes()
            .filter(|n| chosen.contains(&n.address))
            .map(|n| (&n.address, Some(&n.desired))),
    )
}

/// Who this run is, in the Leases it holds: `user@host (arcplan V, pid P, run R)`, with the
/// real host name (not `$HOSTNAME`, which shells do not export).
pub fn holder_identity() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "arcplan".into());
    let host = gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .to_owned();
    let host = if host.is_empty() {
        "unknown-host".to_owned()
    } else {
        host
    };
    format!(
        "{user}@{host} (arcplan {}, pid {}, run {})",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        uuid::Uuid::new_v4()
    )
}

/// How many Lease requests a run makes at once when it takes or gives back its locks.
const AT_ONCE: usize = 32;

/// The locks a run holds.
pub struct Locks {
    guards: Vec<LockGuard>,
}

impl Locks {
    /// Handles that prove each lock before a change.
    pub fn fences(&self) -> Vec<LockFence> {
        self.guards.iter().map(LockGuard::fence).collect()
    }

    /// Releases every lock (a failed release is reported: the Lease then expires by itself).
    pub async fn release(self, out: &Output) {
        let results = futures::stream::iter(self.guards.into_iter().map(LockGuard::release))
            .buffer_unordered(AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        for d in results.into_iter().filter_map(Result::err) {
            context::report(out, d);
        }
    }
}

/// Takes each cluster's Lease (waiting up to `lock_timeout`, saying who holds it every 10 s)
/// before anything is read for planning, so no other run can change the cluster between this
/// run's plan and its apply. On failure, says what went wrong and releases what it took.
pub async fn lock_clusters<'a>(
    run: &Run,
    clusters: impl Iterator<Item = &'a serde_json::Value>,
    lock_timeout: Duration,
    out: &Output,
    cancel: &CancellationToken,
    destroy: bool,
) -> Option<Locks> {
    let mut unique: BTreeMap<String, &serde_json::Value> = BTreeMap::new();
    for c in clusters {
        unique.entry(c.to_string()).or_insert(c);
    }
    let holder = holder_identity();
    let on_wait = |w: &LockWait| {
        out.stderr(&format!(
            "Waiting for the lock of {}: {} (waited {}s of --lock-timeout {})",
            w.cluster,
            w.describe(),
            w.waited.as_secs(),
            humantime::format_duration(Duration::from_secs(w.timeout.as_secs()))
        ));
    };
    // First every Lease at once, without waiting: a fleet's locks cost one round trip's time,
    // not one per cluster. If any is held, give back what was taken and take them one by one in
    // address order, waiting as asked: two runs that want overlapping clusters then cannot each
    // hold a part and wait for the other's.
    let quiet = |_: &LockWait| {};
    let attempts = futures::stream::iter(unique.values().map(|c| {
        run.kube
            .acquire_lock_with(c, &holder, Duration::ZERO, cancel, &quiet)
    }))
    .buffered(AT_ONCE)
    .collect::<Vec<_>>()
    .await;
    let mut locks = Locks { guards: Vec::new() };
    let mut first_failure = None;
    let mut held_elsewhere = false;
    for a in attempts {
        match a {
            Ok(guard) => locks.guards.push(guard),
            Err(d) if d.code == "k8s-locked" => held_elsewhere = true,
            Err(d) => {
                first_failure.get_or_insert(d);
            }
        }
    }
    if let Some(d) = first_failure {
        let line = failure_line(&d, destroy);
        context::report(out, d);
        out.error(&line);
        locks.release(out).await;
        return None;
    }
    if !held_elsewhere {
        return Some(locks);
    }
    locks.release(out).await;
    let mut locks = Locks { guards: Vec::new() };
    for cluster in unique.values() {
        match run
            .kube
            .acquire_lock_with(cluster, &holder, lock_timeout, cancel, &on_wait)
            .await
        {
            Ok(guard) => locks.guards.push(guard),
            Err(d) => {
                let line = failure_line(&d, destroy);
                context::report(out, d);
                out.error(&line);
                locks.release(out).await;
                return None;
            }
        }
    }
    Some(locks)
}

/// The last line of a failure to take a lock: what it means, by cause.
fn failure_line(d: &Diagnostic, destroy: bool) -> String {
    match d.code {
        "k8s-locked" => "nothing was changed: another arcplan run holds the cluster's lock (named above); wait for it, or pass --lock-timeout to wait longer".into(),
        "cancelled" => "nothing was changed: interrupted while waiting for the cluster's lock".into(),
        "k8s-forbidden" => "nothing was changed: the credential may not use the cluster's lock (Lease kube-system/arcplan-lock); see the hint above".into(),
        "k8s-unreachable" if destroy => "nothing was changed: the cluster cannot be reached to take its lock; check the kubeconfig and the network, or pass --cluster-unreachable to disconnect it from Azure only".into(),
        "k8s-unreachable" => "nothing was changed: the cluster cannot be reached to take its lock; check the kubeconfig, the network and that the cluster is running".into(),
        c if c.starts_with("k8s-kubeconfig") || c == "k8s-context-missing" => "nothing was changed: the cluster's kubeconfig or context cannot be used (see above), so its lock cannot be taken".into(),
        _ => "nothing was changed: the cluster's lock cannot be taken (see above)".into(),
    }
}

/// What a fence found, for the end of the run.
#[derive(Default)]
pub struct LostLock(Mutex<Option<Diagnostic>>);

impl LostLock {
    /// The first lost (or unconfirmable) lock, if any.
    pub fn get(&self) -> Option<Diagnostic> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The providers of an apply, each change preceded by proof that every lock of the run is still
/// held. A lost lock fails the change, cancels `cancel` (nothing new starts; the report says
/// what was done) and is recorded in the returned [`LostLock`]. A lock found lost by the
/// background renewal cancels `cancel` at once.
pub fn fenced(
    providers: &Providers,
    fences: Vec<LockFence>,
    cancel: &CancellationToken,
) -> (Providers, Arc<LostLock>) {
    let lost = Arc::new(LostLock::default());
    let fences = Arc::new(fences);
    for f in fences.iter() {
        let (signal, cancel) = (f.lost_signal(), cancel.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = signal.cancelled() => cancel.cancel(),
                () = cancel.cancelled() => {}
            }
        });
    }
    let mut out = Providers::new();
    for (inner, types) in providers.distinct() {
        out.register(Arc::new(Fenced {
            inner,
            types,
            fences: fences.clone(),
            cancel: cancel.clone(),
            lost: lost.clone(),
        }));
    }
    (out, lost)
}

struct Fenced {
    inner: Arc<dyn Provider>,
    /// The types the inner provider serves in this run (a later registration may have taken
    /// some of its types, like `destroy --cluster-unreachable`'s).
    types: Vec<ResourceType>,
    fences: Arc<Vec<LockFence>>,
    cancel: CancellationToken,
    lost: Arc<LostLock>,
}

#[async_trait]
impl Provider for Fenced {
    fn resource_types(&self) -> Vec<ResourceType> {
        self.types.clone()
    }
    async fn read(&self, req: ReadRequest) -> ReadResponse {
        self.inner.read(req).await
    }
    async fn plan(&self, req: PlanRequest) -> PlanResponse {
        self.inner.plan(req).await
    }
    async fn apply(&self, req: ApplyRequest) -> ApplyResponse {
        for f in self.fences.iter() {
            if let Err(d) = f.ensure_held().await {
                let d = d.with_address(req.change.address.to_string());
                {
                    let mut l = self.lost.0.lock().unwrap_or_else(|e| e.into_inner());
                    l.get_or_insert_with(|| d.clone());
                }
                self.cancel.cancel();
                return ApplyResponse {
                    diagnostics: d.into(),
                    ..Default::default()
                };
            }
        }
        self.inner.apply(req).await
    }
    async fn check(&self, req: CheckRequest) -> CheckResponse {
        self.inner.check(req).await
    }
    async fn discover(&self, req: DiscoverRequest) -> DiscoverResponse {
        self.inner.discover(req).await
    }
}
