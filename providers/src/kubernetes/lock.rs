//! One apply at a time per cluster: a `coordination.k8s.io/v1` Lease `arcplan-lock`, in
//! `azure-arc` (or in `kube-system` while that namespace does not exist yet), held while
//! applying and renewed in the background.
//!
//! A second holder waits up to its timeout and then fails naming the holder (`holderIdentity`)
//! and when it last renewed. A crashed holder stops renewing; its lease expires after
//! `leaseDurationSeconds` and the next acquirer takes it over. Takes and renewals use the
//! Lease's `resourceVersion` (optimistic concurrency), so two acquirers never both win the same
//! Lease; because the Lease can live in either of two namespaces, an acquirer also checks the
//! other namespace's Lease after taking its own and backs off if someone else holds that one.
//!
//! The lock does not protect against writers that do not take it (kubectl, other tools).

use super::access::{Cluster, is_conflict, is_not_found};
use super::{LOCK_NAME, NAMESPACE};
use arcplan_engine::diag::Diagnostic;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The namespace used before `azure-arc` exists.
pub const FALLBACK_NAMESPACE: &str = "kube-system";

/// A held lock. Renewed in the background until released; dropping it releases it (best
/// effort, on the current Tokio runtime). Prefer [`LockGuard::release`], which reports errors.
pub struct LockGuard {
    client: Client,
    holder: String,
    namespace: Arc<Mutex<String>>,
    stop: CancellationToken,
    lost: Arc<std::sync::atomic::AtomicBool>,
    renewer: Option<JoinHandle<()>>,
    released: bool,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("holder", &self.holder)
            .field("namespace", &self.namespace())
            .finish_non_exhaustive()
    }
}

impl LockGuard {
    /// The holder identity written into the Lease.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The namespace the Lease currently lives in.
    pub fn namespace(&self) -> String {
        self.namespace
            .lock()
            .map(|n| n.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// True when a renewal found someone else holding the Lease (the lock was lost, for example
    /// after this process was suspended for longer than the lease duration).
    pub fn is_lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops renewing and deletes the Lease if this holder still holds it.
    pub async fn release(mut self) -> Result<(), Diagnostic> {
        self.released = true;
        self.stop.cancel();
        if let Some(t) = self.renewer.take() {
            let _ = t.await;
        }
        release_lease(&self.client, &self.namespace(), &self.holder).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.stop.cancel();
        if self.released {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (client, ns, holder) = (self.client.clone(), self.namespace(), self.holder.clone());
            rt.spawn(async move {
                let _ = release_lease(&client, &ns, &holder).await;
            });
        }
    }
}

async fn release_lease(client: &Client, ns: &str, holder: &str) -> Result<(), Diagnostic> {
    let api: Api<Lease> = Api::namespaced(client.clone(), ns);
    let lease = match api.get_opt(LOCK_NAME).await {
        Ok(Some(l)) => l,
        Ok(None) => return Ok(()),
        Err(e) => {
            return Err(Diagnostic::error(
                "k8s-lock",
                format!("cannot read Lease {ns}/{LOCK_NAME} to release it: {e}"),
            ));
        }
    };
    if holder_of(&lease).as_deref() != Some(holder) {
        return Ok(());
    }
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: lease.metadata.resource_version.clone(),
            uid: lease.metadata.uid.clone(),
        }),
        ..DeleteParams::default()
    };
    match api.delete(LOCK_NAME, &dp).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
        Err(e) => Err(Diagnostic::error(
            "k8s-lock",
            format!("cannot release Lease {ns}/{LOCK_NAME}: {e}"),
        )
        .with_hint(format!(
            "it expires by itself; or delete it with `kubectl -n {ns} delete lease {LOCK_NAME}`"
        ))),
    }
}

fn holder_of(l: &Lease) -> Option<String> {
    l.spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .filter(|h| !h.is_empty())
}

/// Who holds a Lease and since when it was renewed.
#[derive(Debug, Clone)]
struct Held {
    namespace: String,
    holder: String,
    renewed: Option<Timestamp>,
    duration_secs: i64,
}

fn live_holder(l: &Lease, ns: &str, now: Timestamp) -> Option<Held> {
    let spec = l.spec.as_ref()?;
    let holder = holder_of(l)?;
    let duration_secs = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    let expired = match renewed {
        Some(r) => r.as_millisecond() + duration_secs * 1000 < now.as_millisecond(),
        None => true,
    };
    (!expired).then(|| Held {
        namespace: ns.to_owned(),
        holder,
        renewed,
        duration_secs,
    })
}

enum Attempt {
    Taken,
    Held(Held),
    Retry,
}

fn lease_body(holder: &str, duration: Duration, transitions: i32, now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.to_owned()),
        lease_duration_seconds: Some(i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX)),
        acquire_time: Some(MicroTime(now)),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

async fn try_take(
    cluster: &Cluster,
    ns: &str,
    holder: &str,
    duration: Duration,
) -> Result<Attempt, Diagnostic> {
    let api: Api<Lease> = Api::namespaced(cluster.client.clone(), ns);
    let now = Timestamp::now();
    let what = format!("take Lease {ns}/{LOCK_NAME}");
    match api.get_opt(LOCK_NAME).await {
        Err(e) => Err(cluster.api_error(&what, &e)),
        Ok(None) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(LOCK_NAME.into()),
                    namespace: Some(ns.into()),
                    labels: Some(
                        [(
                            super::MANAGED_BY_LABEL.0.to_owned(),
                            super::MANAGED_BY_LABEL.1.to_owned(),
                        )]
                        .into(),
                    ),
                    ..ObjectMeta::default()
                },
                spec: Some(lease_body(holder, duration, 0, now)),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Taken),
                Err(e) if is_conflict(&e) => Ok(Attempt::Retry),
                Err(e) => Err(cluster.api_error(&what, &e)),
            }
        }
        Ok(Some(mut lease)) => {
            if let Some(h) = live_holder(&lease, ns, now) {
                return Ok(Attempt::Held(h));
            }
            let transitions = lease
                .spec
                .as_ref()
                .and_then(|s| s.lease_transitions)
                .unwrap_or(0)
                + 1;
            lease.spec = Some(lease_body(holder, duration, transitions, now));
            match api.replace(LOCK_NAME, &PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Taken),
                Err(e) if is_conflict(&e) || is_not_found(&e) => Ok(Attempt::Retry),
                Err(e) => Err(cluster.api_error(&what, &e)),
            }
        }
    }
}

async fn namespace_active(cluster: &Cluster, name: &str) -> Result<bool, Diagnostic> {
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    match api.get_opt(name).await {
        Ok(Some(ns)) => Ok(ns.metadata.deletion_timestamp.is_none()),
        Ok(None) => Ok(false),
        Err(e) => Err(cluster.api_error(&format!("read namespace {name}"), &e)),
    }
}

async fn other_holder(cluster: &Cluster, ns: &str, holder: &str) -> Option<Held> {
    let api: Api<Lease> = Api::namespaced(cluster.client.clone(), ns);
    let lease = api.get_opt(LOCK_NAME).await.ok()??;
    live_holder(&lease, ns, Timestamp::now()).filter(|h| h.holder != holder)
}

/// Acquires the cluster's lock for `holder`, waiting up to `timeout`.
pub(crate) async fn acquire(
    cluster: &Cluster,
    holder: &str,
    timeout: Duration,
    lease_duration: Duration,
    poll: Duration,
    cancel: &CancellationToken,
) -> Result<LockGuard, Diagnostic> {
    if holder.trim().is_empty() {
        return Err(
            Diagnostic::error("k8s-lock", "the lock holder identity is empty")
                .with_hint("pass something that names this run, like `user@host (pid 1234)`"),
        );
    }
    let started = Instant::now();
    loop {
        let ns = if namespace_active(cluster, NAMESPACE).await? {
            NAMESPACE
        } else {
            FALLBACK_NAMESPACE
        };
        let other = if ns == NAMESPACE {
            FALLBACK_NAMESPACE
        } else {
            NAMESPACE
        };
        let held = match try_take(cluster, ns, holder, lease_duration).await? {
            Attempt::Retry => continue,
            Attempt::Held(h) => Some(h),
            Attempt::Taken => match other_holder(cluster, other, holder).await {
                Some(h) => {
                    release_lease(&cluster.client, ns, holder).await?;
                    Some(h)
                }
                None => None,
            },
        };
        let Some(h) = held else {
            return Ok(start_guard(cluster, ns, holder, lease_duration));
        };
        if started.elapsed() >= timeout {
            return Err(locked(cluster, &h, timeout));
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = cancel.cancelled() => {
                return Err(Diagnostic::error(
                    "cancelled",
                    format!("waiting for the lock of {} (held by `{}`) was interrupted", cluster.describe(), h.holder),
                ));
            }
        }
    }
}

fn locked(cluster: &Cluster, h: &Held, timeout: Duration) -> Diagnostic {
    let renewed = match h.renewed {
        Some(t) => {
            let ago = (Timestamp::now().as_millisecond() - t.as_millisecond()).max(0) / 1000;
            format!("last renewed {t} ({ago}s ago)")
        }
        None => "never renewed".to_owned(),
    };
    Diagnostic::error(
        "k8s-locked",
        format!(
            "{} is locked by `{}` (Lease {}/{LOCK_NAME}, {renewed}); waited {}",
            cluster.describe(),
            h.holder,
            h.namespace,
            humantime::format_duration(Duration::from_secs(timeout.as_secs()))
        ),
    )
    .with_hint(format!(
        "another arcplan apply is working on this cluster: wait for it to finish, or retry with a longer --lock-timeout; a crashed run's lock expires {}s after its last renewal",
        h.duration_secs
    ))
}

fn start_guard(cluster: &Cluster, ns: &str, holder: &str, duration: Duration) -> LockGuard {
    let stop = CancellationToken::new();
    let namespace = Arc::new(Mutex::new(ns.to_owned()));
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let renewer = {
        let (client, holder, stop, namespace, lost) = (
            cluster.client.clone(),
            holder.to_owned(),
            stop.clone(),
            namespace.clone(),
            lost.clone(),
        );
        tokio::spawn(async move {
            let every = (duration / 3).max(Duration::from_millis(200));
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                let ns = namespace
                    .lock()
                    .map(|n| n.clone())
                    .unwrap_or_else(|e| e.into_inner().clone());
                match renew(&client, &ns, &holder, duration).await {
                    Renewal::Renewed | Renewal::Failed => {}
                    Renewal::Gone => {
                        // The namespace went away (destroy deletes `azure-arc`): keep holding the
                        // lock in kube-system.
                        if renew(&client, FALLBACK_NAMESPACE, &holder, duration).await
                            == Renewal::Renewed
                            && let Ok(mut n) = namespace.lock()
                        {
                            *n = FALLBACK_NAMESPACE.to_owned();
                        }
                    }
                    Renewal::Lost => {
                        lost.store(true, std::sync::atomic::Ordering::SeqCst);
                        return;
                    }
                }
            }
        })
    };
    LockGuard {
        client: cluster.client.clone(),
        holder: holder.to_owned(),
        namespace,
        stop,
        lost,
        renewer: Some(renewer),
        released: false,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Renewal {
    Renewed,
    Gone,
    Lost,
    Failed,
}

async fn renew(client: &Client, ns: &str, holder: &str, duration: Duration) -> Renewal {
    let api: Api<Lease> = Api::namespaced(client.clone(), ns);
    match api.get_opt(LOCK_NAME).await {
        Ok(Some(mut lease)) => {
            if holder_of(&lease).as_deref() != Some(holder) {
                return Renewal::Lost;
            }
            if let Some(spec) = lease.spec.as_mut() {
                spec.renew_time = Some(MicroTime(Timestamp::now()));
            }
            match api.replace(LOCK_NAME, &PostParams::default(), &lease).await {
                Ok(_) => Renewal::Renewed,
                Err(_) => Renewal::Failed,
            }
        }
        Ok(None) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(LOCK_NAME.into()),
                    namespace: Some(ns.into()),
                    ..ObjectMeta::default()
                },
                spec: Some(lease_body(holder, duration, 0, Timestamp::now())),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Renewal::Renewed,
                Err(_) => Renewal::Gone,
            }
        }
        Err(_) => Renewal::Failed,
    }
}
