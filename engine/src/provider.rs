//! The provider contract: Terraform-like lifecycle verbs, each with its own request and
//! response type.
//!
//! | verb       | may                                   | must not                         |
//! |------------|---------------------------------------|----------------------------------|
//! | `read`     | read live state                       | change anything                  |
//! | `plan`     | compare prior and desired state       | do any I/O that changes anything |
//! | `apply`    | carry out exactly the planned change  | do anything the change didn't say|
//! | `check`    | evaluate a condition                  | change anything                  |
//! | `discover` | list resources owned by the stack     | change anything                  |
//! | `lock`     | take the locks of the scopes a run    | read or change any resource      |
//! |            | touches (default: none needed)        |                                  |
//!
//! Errors travel inside the responses as [`Diagnostics`], so one failing resource does not stop
//! the others and every message names its resource. A provider never prints: it emits events.

use crate::address::{Address, ResourceType};
use crate::diag::{Diagnostic, Diagnostics};
use crate::events::EventSink;
use crate::plan::{Action, Change, CheckResult, PlanMode, Reason};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Ask for a resource's live state.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    /// The resource.
    pub address: Address,
    /// Its desired attributes, with references resolved where already known.
    pub desired: Value,
}

/// A resource's live state.
#[derive(Debug, Clone, Default)]
pub struct ReadResponse {
    /// The live state, or `None` when the resource does not exist.
    pub state: Option<Value>,
    /// The live version (ETag, resourceVersion or digest), for stale-plan detection.
    pub version: Option<String>,
    /// The [`crate::plan::desired_digest`] arcplan recorded on the resource when it last
    /// applied it (`None`: never applied, or the provider keeps no record). The planner calls a
    /// difference on a resource whose configuration still has this digest *drift*.
    pub applied_digest: Option<String>,
    /// Problems reading it (errors fail the plan; warnings and notes reach the views).
    pub diagnostics: Diagnostics,
}

/// Ask what it takes to get from the live state to the desired state.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// The resource.
    pub address: Address,
    /// The live state (`None`: absent).
    pub prior: Option<Value>,
    /// The desired attributes, references resolved where known.
    pub desired: Value,
    /// JSON pointers into `desired` whose value is known only after apply.
    pub unknown: Vec<String>,
    /// `--replace` names this resource.
    pub replace_requested: bool,
    /// Normal, destroy or refresh-only.
    pub mode: PlanMode,
}

/// The provider's answer to a [`PlanRequest`].
#[derive(Debug, Clone, Default)]
pub struct PlanResponse {
    /// What apply will do.
    pub action: Option<Action>,
    /// The planned state after apply (secrets included here are removed by the planner using
    /// `sensitive_paths`).
    pub after: Option<Value>,
    /// Why (replace, delete).
    pub reason: Option<Reason>,
    /// Attributes that force replacement, as JSON pointers.
    pub requires_replace: Vec<String>,
    /// Attributes whose values are secret, as JSON pointers into `before`/`after`.
    pub sensitive_paths: Vec<String>,
    /// Outputs known before apply, for dependents' references: all of them for an unchanged
    /// resource, those an update leaves alone (an id) for an update; ignored for create,
    /// replace and delete.
    pub outputs: Option<Value>,
    /// For a delete: other deletes that must finish first, overriding the default inside-out
    /// order (a resource whose removal must wait for the cloud resource it reports to).
    pub delete_after: Vec<Address>,
    /// Problems with the change.
    pub diagnostics: Diagnostics,
}

/// Carry out one planned change.
#[derive(Clone)]
pub struct ApplyRequest {
    /// The change, as planned.
    pub change: Change,
    /// The desired attributes with every reference resolved from what was applied before.
    pub desired: Value,
    /// Where to report progress.
    pub events: Arc<dyn EventSink>,
    /// Fires on Ctrl-C: finish or abandon long waits promptly, leaving a state the next plan
    /// converges from.
    pub cancel: CancellationToken,
}

/// The result of applying one change.
#[derive(Debug, Clone, Default)]
pub struct ApplyResponse {
    /// The new live state (`None` after a delete).
    pub state: Option<Value>,
    /// Outputs for dependents' references.
    pub outputs: Option<Value>,
    /// Errors (any error marks the change failed).
    pub diagnostics: Diagnostics,
}

impl ApplyResponse {
    /// Nothing applied: these errors say why.
    pub fn failed(diagnostics: impl Into<Diagnostics>) -> Self {
        Self {
            diagnostics: diagnostics.into(),
            ..Default::default()
        }
    }
}

/// When a check is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckPhase {
    /// After planning, before anything changes: sees the planned changes.
    Plan,
    /// During apply, once its dependencies are applied.
    Apply,
}

/// Evaluate a check.
#[derive(Clone)]
pub struct CheckRequest {
    /// The check.
    pub address: Address,
    /// Its attributes, references resolved where known.
    pub desired: Value,
    /// When.
    pub phase: CheckPhase,
    /// The planned changes (at plan time) or the plan being applied.
    pub changes: Arc<Vec<Change>>,
    /// Where to report progress (waits during apply).
    pub events: Arc<dyn EventSink>,
    /// Fires on Ctrl-C.
    pub cancel: CancellationToken,
}

/// The check's result.
#[derive(Debug, Clone)]
pub struct CheckResponse {
    /// Pass, fail or pending, with the fix.
    pub result: CheckResult,
    /// Problems evaluating it.
    pub diagnostics: Diagnostics,
}

/// Ask for the resources the stack owns (to find those no longer declared).
#[derive(Debug, Clone)]
pub struct DiscoverRequest {
    /// The stack name.
    pub stack: String,
    /// Resource types the provider should look for.
    pub types: Vec<ResourceType>,
}

/// One resource found by discovery.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// Its address.
    pub address: Address,
    /// Its live state.
    pub state: Value,
    /// Its live version.
    pub version: Option<String>,
    /// Resources it lives in (a cluster's resource group), so deletes run inside-out.
    pub depends_on: Vec<Address>,
}

/// The resources the stack owns.
#[derive(Debug, Clone, Default)]
pub struct DiscoverResponse {
    /// What was found.
    pub resources: Vec<Discovered>,
    /// Problems listing them.
    pub diagnostics: Diagnostics,
}

/// Ask a provider to lock every scope (a cluster, an account) that a run reads or changes,
/// before anything is read for planning, so no other run changes them until this one ends.
#[derive(Clone)]
pub struct LockRequest {
    /// The resources of the run this provider serves, with their desired attributes.
    pub resources: Vec<(Address, Value)>,
    /// Who holds the locks (written into them, shown to runs that have to wait).
    pub holder: String,
    /// How long to wait for a lock someone else holds.
    pub timeout: Duration,
    /// Told who holds a lock while this run waits for it (when waiting starts, then now and
    /// then).
    pub on_wait: Arc<dyn Fn(&LockWaiting) + Send + Sync>,
    /// Fires on Ctrl-C: stop waiting.
    pub cancel: CancellationToken,
}

/// A lock this run waits for.
#[derive(Debug, Clone)]
pub struct LockWaiting {
    /// The scope, as diagnostics name it.
    pub scope: String,
    /// Who holds it, since when and until when, in words.
    pub holder: String,
    /// How long this run has waited so far.
    pub waited: Duration,
    /// How long it waits at most.
    pub timeout: Duration,
}

/// The locks a provider took.
#[derive(Default)]
pub struct LockResponse {
    /// The locks taken, also when taking another failed (the caller releases them).
    pub locks: Vec<Arc<dyn ScopeLock>>,
    /// Errors (the run must not go on: nothing was read or changed), warnings.
    pub diagnostics: Diagnostics,
}

/// One held lock. Its holder proves it before every change and releases it at the end.
#[async_trait]
pub trait ScopeLock: Send + Sync {
    /// Ok while this run still holds the lock (confirming it if need be), else an error naming
    /// the lost (or unconfirmable) lock.
    async fn ensure_held(&self) -> Result<(), Diagnostic>;
    /// The error naming the lock, once it was found lost.
    fn lost(&self) -> Option<Diagnostic>;
    /// Fires when the lock is found lost (the run must stop starting changes).
    fn lost_signal(&self) -> CancellationToken;
    /// Gives the lock back (a failure says how the lock ends by itself). Called once, after
    /// which the lock is not used.
    async fn release(&self) -> Result<(), Diagnostic>;
}

/// A provider: serves some resource types through the lifecycle verbs.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The resource types this provider serves.
    fn resource_types(&self) -> Vec<ResourceType>;
    /// Reads live state.
    async fn read(&self, req: ReadRequest) -> ReadResponse;
    /// Plans a change from prior to desired state.
    async fn plan(&self, req: PlanRequest) -> PlanResponse;
    /// Applies a planned change.
    async fn apply(&self, req: ApplyRequest) -> ApplyResponse;
    /// Evaluates a check.
    async fn check(&self, req: CheckRequest) -> CheckResponse;
    /// Forgets what the provider keeps of earlier reads (batched lists), so the next reads see
    /// what another process changed since (a shard waiting for another shard's change). The
    /// default keeps nothing.
    async fn refresh(&self) {}
    /// Lists resources owned by the stack. The default finds none.
    async fn discover(&self, _req: DiscoverRequest) -> DiscoverResponse {
        DiscoverResponse::default()
    }
    /// Locks the scopes of these resources for the run. The default needs no lock.
    async fn lock(&self, _req: LockRequest) -> LockResponse {
        LockResponse::default()
    }
    /// What a resource leaves behind when a run cannot contact its provider and plans it
    /// absent (`destroy` of a scope that is gone), as warnings naming what stays and how to
    /// remove it later. Must not do any I/O to the unreachable scope. The default says nothing.
    async fn left_behind(&self, _req: &ReadRequest) -> Diagnostics {
        Diagnostics::new()
    }
}

/// The providers of a run, looked up by resource type.
#[derive(Clone, Default)]
pub struct Providers {
    by_type: std::collections::HashMap<ResourceType, Arc<dyn Provider>>,
}

impl Providers {
    /// No providers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a provider for all the types it serves (a later one wins).
    pub fn register(&mut self, provider: Arc<dyn Provider>) {
        for t in provider.resource_types() {
            self.by_type.insert(t, provider.clone());
        }
    }

    /// The provider for a type.
    pub fn get(&self, rtype: &ResourceType) -> Option<&Arc<dyn Provider>> {
        self.by_type.get(rtype)
    }

    /// Each distinct provider once, with the types it serves.
    pub fn distinct(&self) -> Vec<(Arc<dyn Provider>, Vec<ResourceType>)> {
        let mut out: Vec<(Arc<dyn Provider>, Vec<ResourceType>)> = Vec::new();
        let mut types: Vec<&ResourceType> = self.by_type.keys().collect();
        types.sort();
        for t in types {
            let p = &self.by_type[t];
            match out.iter_mut().find(|(q, _)| Arc::ptr_eq(q, p)) {
                Some((_, ts)) => ts.push(t.clone()),
                None => out.push((p.clone(), vec![t.clone()])),
            }
        }
        out
    }
}
