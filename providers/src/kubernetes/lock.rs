//! One apply at a time per cluster: a `coordination.k8s.io/v1` Lease `arcplan-lock` in
//! `kube-system`, held while planning and applying, renewed in the background, and proven before
//! every change.
//!
//! The Lease lives in a namespace arcplan never creates or deletes, so the lock outlives what it
//! guards: a destroy deletes `azure-arc` while it holds the lock, and a waiting apply keeps waiting
//! for the same Lease instead of finding none.
//!
//! A second holder waits up to its timeout (told who holds it, every 10 s) and then fails naming
//! the holder (`holderIdentity`), since when it holds it and when the lease expires. A crashed
//! holder stops renewing; its lease expires after `leaseDurationSeconds` and the next acquirer
//! takes it over (and, like every holder, deletes it when done, so nothing is left behind).
//!
//! Every write of the Lease after the first carries the `resourceVersion` this holder last saw
//! (optimistic concurrency): a renewal that meets `409 Conflict` or `404` lost the lock, so two
//! holders never both win. A holder proves the lock before each change
//! ([`LockFence::ensure_held`]): without a request while its last confirmed renewal is recent by
//! both the monotonic and the wall clock (a suspended laptop's monotonic clock stops), else by
//! renewing now. A lost lock is never regained: the run must stop.
//!
//! Creates, takeovers, renewals and deletes are repeated on transient failures (5xx, dropped
//! connections); a repeated create that meets `409 AlreadyExists` re-reads the Lease to see
//! whether its first attempt went through.
//!
//! The lock does not protect against writers that do not take it (kubectl, other tools).

use super::LOCK_NAME;
use super::access::{Cluster, is_conflict, is_not_found};
use arcplan_engine::diag::Diagnostic;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The namespace of the lock's Lease: one that exists in every cluster and that arcplan never
/// deletes.
pub const LOCK_NAMESPACE: &str = "kube-system";

/// How many times a Lease create, renewal or delete is tried on transient failures.
const ATTEMPTS: u32 = 5;

/// How often a waiting acquirer says who holds the lock.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Who holds a cluster's lock, as seen by an acquirer that has to wait (or gives up).
#[derive(Debug, Clone)]
pub struct LockWait {
    /// The cluster, as diagnostics name it.
    pub cluster: String,
    /// The holder's identity (`holderIdentity`).
    pub holder: String,
    /// When the holder took the Lease.
    pub acquired: Option<Timestamp>,
    /// When the holder last renewed it.
    pub renewed: Option<Timestamp>,
    /// The lease duration, seconds.
    pub duration_secs: i64,
    /// How long this acquirer has waited so far.
    pub waited: Duration,
    /// How long it waits at most.
    pub timeout: Duration,
}

impl LockWait {
    /// `locked by `H` since T (Lease kube-system/arcplan-lock, renewed Ns ago, expires in Ms)`.
    pub fn describe(&self) -> String {
        let now = Timestamp::now().as_millisecond();
        let since = self
            .acquired
            .map(|t| format!(" since {t}"))
            .unwrap_or_default();
        let (renewed, expires) = match self.renewed {
            Some(t) => {
                let ago = (now - t.as_millisecond()).max(0) / 1000;
                let left = (t.as_millisecond() + self.duration_secs * 1000 - now).max(0) / 1000;
                (
                    format!("last renewed {ago}s ago"),
                    format!("expires in {left}s unless renewed"),
                )
            }
            None => ("never renewed".to_owned(), "expired".to_owned()),
        };
        format!(
            "locked by `{}`{since} (Lease {LOCK_NAMESPACE}/{LOCK_NAME}, {renewed}, {expires})",
            self.holder
        )
    }
}

/// What a holder last confirmed with the API server: the Lease as written (with its
/// `resourceVersion`) and when the renewal time it carries was taken, by both clocks.
struct Confirmed {
    lease: Lease,
    wall: SystemTime,
    mono: Instant,
}

/// The state shared by a guard, its renewal task and its fences.
struct Shared {
    api: Api<Lease>,
    cluster: String,
    holder: String,
    duration: Duration,
    /// Serialises writes of the Lease (renewals from the task, from fences, the release).
    current: tokio::sync::Mutex<Confirmed>,
    /// When the last confirmed renewal's time was taken (readable without waiting for a write).
    confirmed_at: Mutex<(SystemTime, Instant)>,
    /// Why the lock was lost, once it was.
    lost: Mutex<Option<String>>,
    lost_signal: CancellationToken,
}

#[derive(Debug)]
enum Renewal {
    Renewed,
    Lost(String),
    Failed(String),
}

impl Shared {
    fn lost_reason(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn mark_lost(&self, why: String) -> Renewal {
        let mut l = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        if l.is_none() {
            *l = Some(why.clone());
        }
        self.lost_signal.cancel();
        Renewal::Lost(l.clone().unwrap_or(why))
    }

    /// True while the last confirmed renewal is younger than two thirds of the lease by both
    /// clocks: nobody else can have taken an unexpired Lease (up to a clock skew of a third).
    fn fresh(&self) -> bool {
        let (wall, mono) = *self.confirmed_at.lock().unwrap_or_else(|e| e.into_inner());
        let limit = self.duration.mul_f64(2.0 / 3.0);
        let by_wall = SystemTime::now()
            .duration_since(wall)
            .is_ok_and(|d| d < limit);
        by_wall && mono.elapsed() < limit
    }

    /// Renews the Lease with the `resourceVersion` last seen (a conflict means someone else
    /// wrote it: the lock is lost, unless the writer was this holder's own unanswered attempt).
    async fn renew(&self, only_if_stale: bool) -> Renewal {
        let mut cur = self.current.lock().await;
        if let Some(why) = self.lost_reason() {
            return Renewal::Lost(why);
        }
        if only_if_stale && self.fresh() {
            return Renewal::Renewed;
        }
        let mut failure = String::new();
        for attempt in 0..ATTEMPTS {
            let (now, wall, mono) = (Timestamp::now(), SystemTime::now(), Instant::now());
            let mut body = cur.lease.clone();
            if let Some(spec) = body.spec.as_mut() {
                spec.renew_time = Some(MicroTime(now));
            }
            match self
                .api
                .replace(LOCK_NAME, &PostParams::default(), &body)
                .await
            {
                Ok(lease) => {
                    *cur = Confirmed { lease, wall, mono };
                    *self.confirmed_at.lock().unwrap_or_else(|e| e.into_inner()) = (wall, mono);
                    return Renewal::Renewed;
                }
                Err(e) if is_not_found(&e) => {
                    return self.mark_lost(
                        "the Lease was deleted: it expired and another run took it over (and released it)".into(),
                    );
                }
                Err(e) if is_conflict(&e) => match self.api.get_opt(LOCK_NAME).await {
                    Ok(Some(l)) if holder_of(&l).as_deref() == Some(self.holder.as_str()) => {
                        // Our own earlier attempt went through unanswered: adopt it, try again.
                        cur.lease = l;
                    }
                    Ok(Some(l)) => {
                        return self.mark_lost(format!(
                            "its lease expired and `{}` took the Lease over",
                            holder_of(&l).unwrap_or_else(|| "nobody".into())
                        ));
                    }
                    Ok(None) => {
                        return self.mark_lost(
                            "the Lease was deleted: it expired and another run took it over (and released it)".into(),
                        );
                    }
                    Err(e) => failure = e.to_string(),
                },
                Err(e) => failure = e.to_string(),
            }
            if attempt + 1 < ATTEMPTS {
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
        Renewal::Failed(failure)
    }

    /// Deletes the Lease if this holder still holds it.
    async fn delete(&self) -> Result<(), Diagnostic> {
        let mut cur = self.current.lock().await;
        if self.lost_reason().is_some() {
            return Ok(());
        }
        let mut failure = String::new();
        for attempt in 0..ATTEMPTS {
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: cur.lease.metadata.resource_version.clone(),
                    uid: cur.lease.metadata.uid.clone(),
                }),
                ..DeleteParams::default()
            };
            match self.api.delete(LOCK_NAME, &dp).await {
                Ok(_) => return Ok(()),
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) if is_conflict(&e) => match self.api.get_opt(LOCK_NAME).await {
                    Ok(Some(l)) if holder_of(&l).as_deref() == Some(self.holder.as_str()) => {
                        cur.lease = l;
                        continue;
                    }
                    // Someone else's now (or gone): not ours to delete.
                    Ok(_) => return Ok(()),
                    Err(e) => failure = e.to_string(),
                },
                Err(e) if transient(&e) => failure = e.to_string(),
                Err(e) => {
                    failure = e.to_string();
                    break;
                }
            }
            if attempt + 1 < ATTEMPTS {
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
        Err(Diagnostic::error(
            "k8s-lock",
            format!(
                "cannot release the lock of {} (Lease {LOCK_NAMESPACE}/{LOCK_NAME}): {failure}",
                self.cluster
            ),
        )
        .with_hint(format!(
            "it expires by itself {}s after its last renewal; or delete it with `kubectl -n {LOCK_NAMESPACE} delete lease {LOCK_NAME}`",
            self.duration.as_secs()
        )))
    }

    fn lost_diag(&self, why: &str) -> Diagnostic {
        Diagnostic::error(
            "k8s-lock-lost",
            format!(
                "this run lost the lock of {} (Lease {LOCK_NAMESPACE}/{LOCK_NAME}): {why}; it stopped before changing anything more",
                self.cluster
            ),
        )
        .with_hint("this happens when the run is paused (a suspended laptop, a stopped process) for longer than the lease: another run may have changed the cluster since; run plan again and review it")
    }
}

/// Exponential backoff with jitter: about 200 ms, 400 ms, 800 ms, ...
fn backoff(attempt: u32) -> Duration {
    let step = Duration::from_millis(200).saturating_mul(1 << attempt.min(5));
    step.mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

/// Failures worth repeating a Lease request for.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// A cheap handle that proves, before a change, that the run still holds a cluster's lock.
#[derive(Clone)]
pub struct LockFence {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LockFence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockFence")
            .field("cluster", &self.shared.cluster)
            .finish_non_exhaustive()
    }
}

impl LockFence {
    /// Ok when this run still holds the lock: its last renewal is recent, or renewing now
    /// succeeds. Otherwise an error naming the lost (or unconfirmable) lock.
    pub async fn ensure_held(&self) -> Result<(), Diagnostic> {
        let s = &self.shared;
        if let Some(why) = s.lost_reason() {
            return Err(s.lost_diag(&why));
        }
        if s.fresh() {
            return Ok(());
        }
        match s.renew(true).await {
            Renewal::Renewed => Ok(()),
            Renewal::Lost(why) => Err(s.lost_diag(&why)),
            Renewal::Failed(e) => Err(Diagnostic::error(
                "k8s-lock-unconfirmed",
                format!(
                    "cannot confirm that this run still holds the lock of {} (Lease {LOCK_NAMESPACE}/{LOCK_NAME}): {e}; it stopped before changing anything more",
                    s.cluster
                ),
            )
            .with_hint("check the cluster's API server; run apply again when it answers")),
        }
    }

    /// The error naming the lost lock, once a renewal or a check found it lost.
    pub fn lost(&self) -> Option<Diagnostic> {
        self.shared
            .lost_reason()
            .map(|why| self.shared.lost_diag(&why))
    }

    /// Fires when the lock is found lost.
    pub fn lost_signal(&self) -> CancellationToken {
        self.shared.lost_signal.clone()
    }

    /// The cluster, as diagnostics name it.
    pub fn cluster(&self) -> &str {
        &self.shared.cluster
    }
}

/// A held lock. Renewed in the background until released; dropping it releases it (best
/// effort, on the current Tokio runtime). Prefer [`LockGuard::release`], which reports errors.
pub struct LockGuard {
    shared: Arc<Shared>,
    stop: CancellationToken,
    renewer: Option<JoinHandle<()>>,
    released: bool,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("holder", &self.shared.holder)
            .field("cluster", &self.shared.cluster)
            .finish_non_exhaustive()
    }
}

impl LockGuard {
    /// The holder identity written into the Lease.
    pub fn holder(&self) -> &str {
        &self.shared.holder
    }

    /// The namespace the Lease lives in ([`LOCK_NAMESPACE`]).
    pub fn namespace(&self) -> String {
        LOCK_NAMESPACE.to_owned()
    }

    /// True once a renewal found the Lease taken over or deleted (the lock was lost, for example
    /// after this process was suspended for longer than the lease duration).
    pub fn is_lost(&self) -> bool {
        self.shared.lost_reason().is_some()
    }

    /// A handle that proves the lock before a change.
    pub fn fence(&self) -> LockFence {
        LockFence {
            shared: self.shared.clone(),
        }
    }

    /// Stops renewing and deletes the Lease if this holder still holds it.
    pub async fn release(mut self) -> Result<(), Diagnostic> {
        self.released = true;
        self.stop.cancel();
        if let Some(t) = self.renewer.take() {
            let _ = t.await;
        }
        self.shared.delete().await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.stop.cancel();
        if self.released {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let shared = self.shared.clone();
            rt.spawn(async move {
                let _ = shared.delete().await;
            });
        }
    }
}

fn holder_of(l: &Lease) -> Option<String> {
    l.spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .filter(|h| !h.is_empty())
}

/// The live holder of a Lease, if its lease has not expired.
fn live_holder(l: &Lease, cluster: &Cluster, now: Timestamp) -> Option<LockWait> {
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
    (!expired).then(|| LockWait {
        cluster: cluster.describe(),
        holder,
        acquired: spec.acquire_time.as_ref().map(|t| t.0),
        renewed,
        duration_secs,
        waited: Duration::ZERO,
        timeout: Duration::ZERO,
    })
}

enum Attempt {
    Taken(Box<Confirmed>),
    Held(LockWait),
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

/// A diagnostic for a failed Lease request, saying which rights the lock needs on a 403.
fn lock_error(cluster: &Cluster, what: &str, e: &kube::Error) -> Diagnostic {
    let d = cluster.api_error(
        &format!("{what} Lease {LOCK_NAMESPACE}/{LOCK_NAME} (the cluster's apply lock)"),
        e,
    );
    if d.code == "k8s-forbidden" {
        d.with_hint(format!(
            "the lock needs get, create, update and delete on leases (coordination.k8s.io) in namespace {LOCK_NAMESPACE}: grant them or use a cluster-admin context (`kubectl auth can-i create leases -n {LOCK_NAMESPACE}`)"
        ))
    } else {
        d
    }
}

async fn try_take(
    cluster: &Cluster,
    api: &Api<Lease>,
    holder: &str,
    duration: Duration,
) -> Result<Attempt, Diagnostic> {
    let (now, wall, mono) = (Timestamp::now(), SystemTime::now(), Instant::now());
    let taken = |lease| Ok(Attempt::Taken(Box::new(Confirmed { lease, wall, mono })));
    match api.get_opt(LOCK_NAME).await {
        Err(e) => Err(lock_error(cluster, "read", &e)),
        Ok(None) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(LOCK_NAME.into()),
                    namespace: Some(LOCK_NAMESPACE.into()),
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
            for attempt in 0..ATTEMPTS {
                match api.create(&PostParams::default(), &lease).await {
                    Ok(l) => return taken(l),
                    // Someone was quicker, or an earlier attempt of ours went through unanswered:
                    // the next round reads it and adopts it if it is ours.
                    Err(e) if is_conflict(&e) => return Ok(Attempt::Retry),
                    Err(e) if transient(&e) && attempt + 1 < ATTEMPTS => {
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                    Err(e) => return Err(lock_error(cluster, "create", &e)),
                }
            }
            Ok(Attempt::Retry)
        }
        Ok(Some(mut lease)) => {
            if holder_of(&lease).as_deref() == Some(holder) {
                // Our own create or takeover whose answer was lost.
                return taken(lease);
            }
            if let Some(h) = live_holder(&lease, cluster, now) {
                return Ok(Attempt::Held(h));
            }
            let transitions = lease
                .spec
                .as_ref()
                .and_then(|s| s.lease_transitions)
                .unwrap_or(0)
                + 1;
            lease.spec = Some(lease_body(holder, duration, transitions, now));
            // The replace carries the resourceVersion just read: only one taker wins.
            match api.replace(LOCK_NAME, &PostParams::default(), &lease).await {
                Ok(l) => taken(l),
                Err(e) if is_conflict(&e) || is_not_found(&e) || transient(&e) => {
                    Ok(Attempt::Retry)
                }
                Err(e) => Err(lock_error(cluster, "take over", &e)),
            }
        }
    }
}

/// Acquires the cluster's lock for `holder`, waiting up to `timeout`; `on_wait` is told who
/// holds it when waiting starts and every 10 s after.
pub(crate) async fn acquire(
    cluster: &Cluster,
    holder: &str,
    timeout: Duration,
    lease_duration: Duration,
    poll: Duration,
    cancel: &CancellationToken,
    on_wait: &(dyn Fn(&LockWait) + Send + Sync),
) -> Result<LockGuard, Diagnostic> {
    if holder.trim().is_empty() {
        return Err(
            Diagnostic::error("k8s-lock", "the lock holder identity is empty")
                .with_hint("pass something that names this run, like `user@host (pid 1234)`"),
        );
    }
    let api: Api<Lease> = Api::namespaced(cluster.client.clone(), LOCK_NAMESPACE);
    let started = Instant::now();
    let mut reported: Option<Instant> = None;
    let mut retries = 0u32;
    loop {
        let wait = match try_take(cluster, &api, holder, lease_duration).await? {
            Attempt::Taken(c) => return Ok(start_guard(cluster, api, holder, lease_duration, *c)),
            Attempt::Retry if retries >= 20 => {
                return Err(Diagnostic::error(
                    "k8s-lock",
                    format!(
                        "cannot take the lock of {} (Lease {LOCK_NAMESPACE}/{LOCK_NAME}): 20 attempts met a conflict or a transient failure",
                        cluster.describe()
                    ),
                )
                .with_hint("check the API server's health (`kubectl get --raw /readyz`), then run again"));
            }
            Attempt::Retry => {
                retries += 1;
                backoff(retries.min(3))
            }
            Attempt::Held(mut h) => {
                h.waited = started.elapsed();
                h.timeout = timeout;
                if h.waited >= timeout {
                    return Err(locked(&h));
                }
                if reported.is_none_or(|t| t.elapsed() >= REPORT_EVERY) {
                    on_wait(&h);
                    reported = Some(Instant::now());
                }
                poll
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = cancel.cancelled() => {
                return Err(Diagnostic::error(
                    "cancelled",
                    format!("waiting for the lock of {} was interrupted", cluster.describe()),
                ));
            }
        }
    }
}

fn locked(h: &LockWait) -> Diagnostic {
    Diagnostic::error(
        "k8s-locked",
        format!(
            "{} is {}; waited {}",
            h.cluster,
            h.describe(),
            humantime::format_duration(Duration::from_secs(h.waited.as_secs()))
        ),
    )
    .with_hint(format!(
        "another arcplan run is working on this cluster: wait for it to finish, or pass a longer --lock-timeout (like `--lock-timeout 5m`) to wait for it; a crashed run's lock expires {}s after its last renewal",
        h.duration_secs
    ))
}

fn start_guard(
    cluster: &Cluster,
    api: Api<Lease>,
    holder: &str,
    duration: Duration,
    confirmed: Confirmed,
) -> LockGuard {
    let stop = CancellationToken::new();
    let shared = Arc::new(Shared {
        api,
        cluster: cluster.describe(),
        holder: holder.to_owned(),
        duration,
        confirmed_at: Mutex::new((confirmed.wall, confirmed.mono)),
        current: tokio::sync::Mutex::new(confirmed),
        lost: Mutex::new(None),
        lost_signal: CancellationToken::new(),
    });
    let renewer = {
        let (shared, stop) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            let every = (duration / 3).max(Duration::from_millis(200));
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                if let Renewal::Lost(_) = shared.renew(false).await {
                    return;
                }
            }
        })
    };
    LockGuard {
        shared,
        stop,
        renewer: Some(renewer),
        released: false,
    }
}
