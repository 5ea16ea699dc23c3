//! An apply session: everything between "apply this" and its outcome, in one place.
//!
//! A session locks every scope the run touches (after `--target`/`--exclude`) *before* it plans
//! or re-reads a saved plan, so no other run changes them between this run's plan and its apply;
//! plans (or, for a saved plan, checks that nothing it depends on changed since); refuses a plan
//! with failed checks; asks for approval only when there are changes; applies with every change
//! preceded by proof that the locks are still held (apply-time checks run as part of it); and
//! releases the locks on every path, errors and cancellation included. It returns a typed
//! [`SessionOutcome`]; what happens along the way is told to a [`SessionView`], which the CLI
//! implements to print and to ask for approval.
//!
//! A scope that cannot be contacted (`destroy` of a cluster that is gone) is a session option
//! ([`SessionOptions::unreachable`]): the resource types of its provider are neither locked nor
//! read nor changed; each is planned absent, with the warnings its provider gives about what it
//! leaves behind ([`Provider::left_behind`]).

use crate::address::{Address, ResourceType};
use crate::diag::{Diagnostic, Diagnostics};
use crate::events::EventSink;
use crate::executor::{ApplyError, ApplyOptions, ApplyReport, Stale, apply, stale_resources};
use crate::graph::ResourceGraph;
use crate::plan::{Action, CheckResult, CheckStatus, Plan};
use crate::planner::{PlanOptions, plan, selected};
use crate::provider::*;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What a session applies.
pub enum Source<'g> {
    /// Plan this graph now, with these options, and apply the result once approved.
    Plan {
        /// The resource graph.
        graph: &'g ResourceGraph,
        /// Mode, targets, excludes, replacements (its `cancel` should be the session's).
        options: PlanOptions,
    },
    /// Apply a saved plan exactly (it was reviewed when it was made: no approval is asked),
    /// once it is shown not to be stale.
    Saved(Plan),
}

/// How a session runs.
#[derive(Clone, Default)]
pub struct SessionOptions {
    /// Who holds the locks (written into them, shown to runs that wait).
    pub holder: String,
    /// How long to wait for a lock someone else holds.
    pub lock_timeout: Duration,
    /// The most changes in flight at once.
    pub parallelism: usize,
    /// Ctrl-C: stop waiting and starting work; the locks are still released.
    pub cancel: CancellationToken,
    /// Resource types whose provider cannot be contacted: not locked, not read, not changed;
    /// planned absent, with what they leave behind.
    pub unreachable: Vec<ResourceType>,
}

/// What a session tells its view along the way, and asks of it.
#[async_trait]
pub trait SessionView: Send + Sync {
    /// Someone else holds a lock this run waits for.
    fn lock_waiting(&self, wait: &LockWaiting);
    /// Planning starts: where its events go.
    fn planning(&self) -> Arc<dyn EventSink>;
    /// Planning ended: the plan and its warnings, or every error.
    async fn planned(&self, result: Result<(&Plan, &Diagnostics), &Diagnostics>);
    /// May the plan's changes be applied? Asked only when the plan has changes.
    async fn approve(&self, plan: &Plan, cancel: &CancellationToken) -> bool;
    /// Applying starts: where its events go.
    fn applying(&self, plan: &Plan) -> Arc<dyn EventSink>;
    /// Applying ended (`None`: the plan could not be applied at all, see the outcome).
    async fn applied(&self, plan: &Plan, report: Option<&ApplyReport>);
}

/// How a session ended.
#[derive(Debug)]
pub enum SessionOutcome {
    /// A lock could not be taken: nothing was read or changed.
    LockFailed(Diagnostics),
    /// Planning failed: nothing was changed.
    PlanFailed(Diagnostics),
    /// The plan has failed checks: nothing was changed.
    ChecksFailed(Plan),
    /// The saved plan is stale: nothing was changed.
    Stale(Plan, Vec<Stale>),
    /// Nothing to change and no apply-time check to run.
    NothingToDo(Plan),
    /// Approval was refused: nothing was changed.
    Refused(Plan),
    /// Cancelled (Ctrl-C) before anything was changed.
    Cancelled(Plan),
    /// The plan could not be applied (or checked for staleness) at all.
    ApplyFailed(Plan, ApplyError),
    /// The plan was applied; the report says how each step went. `lost` names a lock found
    /// lost, which stopped the apply.
    Applied {
        /// The plan.
        plan: Plan,
        /// What became of each step.
        report: ApplyReport,
        /// The lost (or unconfirmable) lock that stopped the run, if one did.
        lost: Option<Diagnostic>,
    },
}

impl SessionOutcome {
    /// True when the session did what was asked: applied everything, or had nothing to do.
    pub fn is_success(&self) -> bool {
        match self {
            SessionOutcome::NothingToDo(_) => true,
            SessionOutcome::Applied { report, lost, .. } => lost.is_none() && report.is_success(),
            _ => false,
        }
    }
}

/// A session's outcome and what releasing its locks reported (a failed release: the lock then
/// ends by itself).
#[derive(Debug)]
pub struct Finished {
    /// How the session ended.
    pub outcome: SessionOutcome,
    /// Errors releasing the locks.
    pub release: Diagnostics,
}

/// Runs a session (see the module documentation).
pub async fn run(
    providers: &Providers,
    source: Source<'_>,
    opts: &SessionOptions,
    view: &dyn SessionView,
) -> Finished {
    let effective = unreachable_removed(providers, &opts.unreachable);
    if let Source::Saved(p) = &source
        && p.has_failed_checks()
    {
        let Source::Saved(p) = source else {
            unreachable!()
        };
        return Finished {
            outcome: SessionOutcome::ChecksFailed(p),
            release: Diagnostics::new(),
        };
    }
    let resources = match &source {
        Source::Plan { graph, options } => {
            let chosen = selected(graph, options);
            // A shard locks only what it owns: another shard's resources are only read.
            let owned = |a: &Address| options.shard.as_ref().is_none_or(|s| s.owns(a));
            graph
                .nodes()
                .filter(|n| chosen.contains(&n.address) && owned(&n.address))
                .map(|n| (n.address.clone(), n.desired.clone()))
                .collect()
        }
        Source::Saved(p) => p
            .changes
            .iter()
            .filter(|c| c.owner.is_none())
            .filter_map(|c| Some((c.address.clone(), c.desired.clone()?)))
            .collect(),
    };
    let (locks, failure) = take_locks(providers, resources, opts, view).await;
    let outcome = match failure {
        Some(d) => SessionOutcome::LockFailed(d),
        None => locked(&effective, source, opts, view, &locks).await,
    };
    Finished {
        outcome,
        release: release(locks).await,
    }
}

/// What the session does while it holds the locks.
async fn locked(
    providers: &Providers,
    source: Source<'_>,
    opts: &SessionOptions,
    view: &dyn SessionView,
    locks: &[Arc<dyn ScopeLock>],
) -> SessionOutcome {
    let plan = match source {
        Source::Plan { graph, options } => {
            let sink = view.planning();
            let result = plan(graph, providers, &options, sink).await;
            view.planned(result.as_ref().map(|(p, w)| (p, w))).await;
            let plan = match result {
                Ok((p, _)) => p,
                Err(d) => return SessionOutcome::PlanFailed(d),
            };
            if plan.has_failed_checks() {
                return SessionOutcome::ChecksFailed(plan);
            }
            // Apply-time checks run on every apply, also one that changes nothing (approval is
            // asked only for changes).
            if !plan.has_changes() && !plan.has_pending_checks() {
                return SessionOutcome::NothingToDo(plan);
            }
            if plan.has_changes() && !view.approve(&plan, &opts.cancel).await {
                return if opts.cancel.is_cancelled() {
                    SessionOutcome::Cancelled(plan)
                } else {
                    SessionOutcome::Refused(plan)
                };
            }
            plan
        }
        Source::Saved(plan) => match stale_resources(&plan, providers).await {
            Ok(stale) if stale.is_empty() => plan,
            Ok(stale) => return SessionOutcome::Stale(plan, stale),
            Err(e) => return SessionOutcome::ApplyFailed(plan, e),
        },
    };
    execute(providers, plan, opts, view, locks).await
}

/// Applies, every change preceded by proof that the locks are still held; a lost lock stops
/// the run (what was done is reported).
async fn execute(
    providers: &Providers,
    plan: Plan,
    opts: &SessionOptions,
    view: &dyn SessionView,
    locks: &[Arc<dyn ScopeLock>],
) -> SessionOutcome {
    // A child token: a lost lock stops this apply without pretending a signal came.
    let cancel = opts.cancel.child_token();
    let lost = Arc::new(Mutex::new(None));
    let fenced = fence(providers, locks, &cancel, &lost);
    let sink = view.applying(&plan);
    let result = apply(
        &plan,
        &fenced,
        &ApplyOptions {
            parallelism: opts.parallelism,
            cancel: cancel.clone(),
        },
        sink,
    )
    .await;
    // Ends the lost-lock watchers.
    cancel.cancel();
    view.applied(&plan, result.as_ref().ok()).await;
    match result {
        Err(e) => SessionOutcome::ApplyFailed(plan, e),
        Ok(report) => {
            let lost = lost
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .or_else(|| locks.iter().find_map(|l| l.lost()));
            SessionOutcome::Applied { plan, report, lost }
        }
    }
}

/// Asks every provider to lock the scopes of its resources, in a fixed order. On the first
/// failure stops asking: the caller releases what was taken.
async fn take_locks(
    providers: &Providers,
    resources: Vec<(crate::address::Address, Value)>,
    opts: &SessionOptions,
    view: &dyn SessionView,
) -> (Vec<Arc<dyn ScopeLock>>, Option<Diagnostics>) {
    let mut locks = Vec::new();
    // The view is borrowed, not shared: waits reach it through a channel drained while each
    // provider takes its locks.
    for (provider, types) in providers.distinct() {
        let mine: Vec<_> = resources
            .iter()
            .filter(|(a, _)| types.contains(&a.rtype) && !opts.unreachable.contains(&a.rtype))
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<LockWaiting>();
        let req = LockRequest {
            resources: mine,
            holder: opts.holder.clone(),
            timeout: opts.lock_timeout,
            on_wait: Arc::new(move |w: &LockWaiting| {
                let _ = tx.send(w.clone());
            }),
            cancel: opts.cancel.clone(),
        };
        let taking = provider.lock(req);
        tokio::pin!(taking);
        let resp = loop {
            tokio::select! {
                resp = &mut taking => break resp,
                Some(w) = rx.recv() => view.lock_waiting(&w),
            }
        };
        while let Ok(w) = rx.try_recv() {
            view.lock_waiting(&w);
        }
        locks.extend(resp.locks);
        if resp.diagnostics.has_errors() {
            return (locks, Some(resp.diagnostics));
        }
    }
    (locks, None)
}

/// Releases every lock, all at once.
async fn release(locks: Vec<Arc<dyn ScopeLock>>) -> Diagnostics {
    let results =
        futures::future::join_all(locks.into_iter().map(|l| async move { l.release().await }))
            .await;
    results.into_iter().filter_map(Result::err).collect()
}

/// The providers of an apply, each change preceded by proof that every lock is still held. A
/// lost lock fails the change, cancels `cancel` (nothing new starts) and is kept in `lost`; a
/// lock found lost in the background cancels `cancel` at once.
fn fence(
    providers: &Providers,
    locks: &[Arc<dyn ScopeLock>],
    cancel: &CancellationToken,
    lost: &Arc<Mutex<Option<Diagnostic>>>,
) -> Providers {
    if locks.is_empty() {
        return providers.clone();
    }
    for l in locks {
        let (signal, cancel) = (l.lost_signal(), cancel.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = signal.cancelled() => cancel.cancel(),
                () = cancel.cancelled() => {}
            }
        });
    }
    let locks: Arc<[Arc<dyn ScopeLock>]> = locks.into();
    let mut out = Providers::new();
    for (inner, types) in providers.distinct() {
        out.register(Arc::new(Fenced {
            inner,
            types,
            locks: locks.clone(),
            cancel: cancel.clone(),
            lost: lost.clone(),
        }));
    }
    out
}

struct Fenced {
    inner: Arc<dyn Provider>,
    /// The types the inner provider serves in this run (a later registration may have taken
    /// some of its types, like an unreachable provider's).
    types: Vec<ResourceType>,
    locks: Arc<[Arc<dyn ScopeLock>]>,
    cancel: CancellationToken,
    lost: Arc<Mutex<Option<Diagnostic>>>,
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
        for l in self.locks.iter() {
            if let Err(d) = l.ensure_held().await {
                let d = d.with_address(req.change.address.to_string());
                self.lost
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert_with(|| d.clone());
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
    async fn refresh(&self) {
        self.inner.refresh().await
    }
    async fn lock(&self, req: LockRequest) -> LockResponse {
        self.inner.lock(req).await
    }
    async fn left_behind(&self, req: &ReadRequest) -> Diagnostics {
        self.inner.left_behind(req).await
    }
}

/// The providers with the unreachable types served by [`Unreachable`].
fn unreachable_removed(providers: &Providers, types: &[ResourceType]) -> Providers {
    let mut out = providers.clone();
    for (inner, served) in providers.distinct() {
        let types: Vec<ResourceType> = served.into_iter().filter(|t| types.contains(t)).collect();
        if !types.is_empty() {
            out.register(Arc::new(Unreachable { inner, types }));
        }
    }
    out
}

/// The resources of a provider that cannot be contacted: not read (each is absent, with the
/// warnings its provider gives about what it leaves behind), nothing to change, checks not
/// evaluated.
struct Unreachable {
    inner: Arc<dyn Provider>,
    types: Vec<ResourceType>,
}

#[async_trait]
impl Provider for Unreachable {
    fn resource_types(&self) -> Vec<ResourceType> {
        self.types.clone()
    }
    async fn read(&self, req: ReadRequest) -> ReadResponse {
        ReadResponse {
            diagnostics: self.inner.left_behind(&req).await,
            ..Default::default()
        }
    }
    async fn plan(&self, _: PlanRequest) -> PlanResponse {
        PlanResponse {
            action: Some(Action::NoOp),
            ..Default::default()
        }
    }
    async fn apply(&self, _: ApplyRequest) -> ApplyResponse {
        ApplyResponse::default()
    }
    async fn check(&self, req: CheckRequest) -> CheckResponse {
        CheckResponse {
            result: CheckResult {
                address: req.address,
                status: CheckStatus::Pass,
                summary: "not evaluated".into(),
                fix: None,
                details: None,
                depends_on: Vec::new(),
                desired: None,
            },
            diagnostics: Diagnostics::new(),
        }
    }
}

#[cfg(test)]
mod tests;
