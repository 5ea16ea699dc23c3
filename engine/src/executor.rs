//! The executor: applies a [`Plan`] in dependency order.
//!
//! It needs nothing but the plan and the providers (never the configuration). Creates and
//! updates run after what they depend on; deletes run in reverse, dependents first; independent
//! changes run in parallel up to the parallelism. A failed change skips only what depends on it.
//! Post-apply checks (connectivity) run as nodes after their dependencies. The run ends with an
//! [`ApplyReport`] naming what changed, what failed (with the errors) and what was skipped.

use crate::address::Address;
use crate::diag::{Diagnostic, Diagnostics};
use crate::events::{Event, EventSink};
use crate::graph::resolve_references;
use crate::plan::{Action, CheckStatus, Plan};
use crate::provider::{ApplyRequest, CheckPhase, CheckRequest, Providers};
use crate::walk::{Outcome, Skip, WalkOptions, walk};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The most changes in flight at once.
    pub parallelism: usize,
    /// Ctrl-C: start nothing new, let in-flight changes finish or time out.
    pub cancel: CancellationToken,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            parallelism: crate::planner::DEFAULT_PARALLELISM,
            cancel: CancellationToken::new(),
        }
    }
}

/// What became of one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StepStatus {
    /// Nothing to do.
    Unchanged,
    /// Applied (or, for a check, passed).
    Applied {
        /// Seconds taken.
        elapsed_seconds: f64,
    },
    /// Failed.
    Failed {
        /// The errors.
        diagnostics: Vec<Diagnostic>,
    },
    /// Not attempted.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// One step of the apply: a change or a post-apply check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepResult {
    /// The resource or check.
    pub address: Address,
    /// The planned action (checks show as `read`).
    pub action: Action,
    /// What became of it.
    pub status: StepStatus,
}

/// The result of an apply.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ApplyReport {
    /// One entry per change and post-apply check, in plan order.
    pub steps: Vec<StepResult>,
}

impl ApplyReport {
    /// Counts of applied changes: (added, changed, destroyed), replaces counting as both.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for s in &self.steps {
            if !matches!(s.status, StepStatus::Applied { .. }) {
                continue;
            }
            match s.action {
                Action::Create => c.0 += 1,
                Action::Update => c.1 += 1,
                Action::Replace => {
                    c.0 += 1;
                    c.2 += 1
                }
                Action::Delete => c.2 += 1,
                Action::NoOp | Action::Read => {}
            }
        }
        c
    }

    /// True when every step succeeded or had nothing to do.
    pub fn is_success(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s.status, StepStatus::Applied { .. } | StepStatus::Unchanged))
    }

    /// The failed steps.
    pub fn failed(&self) -> impl Iterator<Item = &StepResult> {
        self.steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Failed { .. }))
    }

    /// The skipped steps.
    pub fn skipped(&self) -> impl Iterator<Item = &StepResult> {
        self.steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Skipped { .. }))
    }
}

/// Why a plan cannot be applied at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// A plan-time check failed; nothing was changed.
    #[error("the plan has failed checks ({}); nothing was changed", .0.join(", "))]
    FailedChecks(Vec<String>),
    /// A provider is missing for a resource type in the plan.
    #[error("no provider serves {0}")]
    NoProvider(String),
}

enum Step<'p> {
    Change(&'p crate::plan::Change),
    Check(&'p crate::plan::CheckResult),
}

impl Step<'_> {
    fn address(&self) -> &Address {
        match self {
            Step::Change(c) => &c.address,
            Step::Check(c) => &c.address,
        }
    }
    fn action(&self) -> Action {
        match self {
            Step::Change(c) => c.action,
            Step::Check(_) => Action::Read,
        }
    }
    /// The action that orders this step: for another shard's change, the owner's (a resource
    /// group this shard deletes waits for the clusters another shard deletes).
    fn order_action(&self) -> Action {
        match self {
            Step::Change(c) => c.owner.as_ref().map_or(c.action, |o| o.action),
            Step::Check(_) => Action::Read,
        }
    }
    fn depends_on(&self) -> &[Address] {
        match self {
            Step::Change(c) => &c.depends_on,
            Step::Check(c) => &c.depends_on,
        }
    }
}

/// Applies a plan.
pub async fn apply(
    plan: &Plan,
    providers: &Providers,
    opts: &ApplyOptions,
    events: Arc<dyn EventSink>,
) -> Result<ApplyReport, ApplyError> {
    let failed: Vec<String> = plan
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .map(|c| c.address.to_string())
        .collect();
    if !failed.is_empty() {
        return Err(ApplyError::FailedChecks(failed));
    }
    let mut steps: Vec<Step<'_>> = plan.changes.iter().map(Step::Change).collect();
    steps.extend(
        plan.checks
            .iter()
            .filter(|c| c.status == CheckStatus::Pending)
            .map(Step::Check),
    );
    for s in &steps {
        if providers.get(&s.address().rtype).is_none() {
            return Err(ApplyError::NoProvider(s.address().rtype.to_string()));
        }
    }
    let pos: HashMap<&Address, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.address(), i))
        .collect();
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        let delete_after: &[Address] = match s {
            Step::Change(c) if s.order_action() == Action::Delete => &c.delete_after,
            _ => &[],
        };
        for d in s.depends_on() {
            let Some(&j) = pos.get(d) else { continue };
            // Deletes run inside-out: a deleted dependent goes before the dependency it lives
            // in, unless the dependent asked to go after it. Everything else runs dependency
            // first.
            let both_deleted =
                s.order_action() == Action::Delete && steps[j].order_action() == Action::Delete;
            if both_deleted && !delete_after.contains(d) {
                deps[j].push(i);
            } else {
                deps[i].push(j);
            }
        }
        for d in delete_after {
            if let Some(&j) = pos.get(d)
                && !s.depends_on().contains(d)
            {
                deps[i].push(j);
            }
        }
    }

    let outputs: Mutex<HashMap<Address, Value>> = Mutex::new(
        plan.changes
            .iter()
            .filter_map(|c| Some((c.address.clone(), c.outputs.clone()?)))
            .collect(),
    );
    let shared_changes = Arc::new(plan.changes.clone());
    let walk_opts = WalkOptions {
        parallelism: opts.parallelism,
        cancel: opts.cancel.clone(),
    };
    let outcomes = walk(&deps, &walk_opts, |i| {
        let step = &steps[i];
        let outputs = &outputs;
        let events = events.clone();
        let changes = shared_changes.clone();
        let cancel = walk_opts.cancel.clone();
        async move {
            let address = step.address().clone();
            let action = step.action();
            let provider = providers.get(&address.rtype).ok_or_else(|| {
                Diagnostics::from(Diagnostic::error("no-provider", "no provider"))
            })?;
            let desired_src = match step {
                Step::Change(c) => c.desired.clone(),
                Step::Check(c) => c.desired.clone(),
            };
            let mut desired = desired_src.unwrap_or(Value::Null);
            let unknown = {
                let known = outputs.lock().unwrap_or_else(|e| e.into_inner());
                resolve_references(&mut desired, &|a, o| known.get(a)?.get(o).cloned())
            };
            if let Step::Change(c) = step
                && let Some(owner) = &c.owner
            {
                // Another shard's change: wait until it is made, then go on with its outputs.
                events.emit(Event::ApplyStart {
                    address: address.clone(),
                    action,
                });
                let started = Instant::now();
                let out =
                    await_owner(provider, c, owner, desired, unknown, &events, &cancel).await?;
                events.emit(Event::ApplyComplete {
                    address: address.clone(),
                    action,
                    elapsed_seconds: started.elapsed().as_secs_f64(),
                });
                if let Some(o) = out {
                    outputs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(address, o);
                }
                return Ok(None);
            }
            if matches!(step, Step::Change(c) if !c.action.is_change()) {
                return Ok(None);
            }
            if !unknown.is_empty() && action != Action::Delete {
                return Err(Diagnostics::from(
                    Diagnostic::error(
                        "unknown-value",
                        format!(
                            "{address}: values at {} were still unknown when applying",
                            unknown.join(", ")
                        ),
                    )
                    .with_address(address.to_string())
                    .with_hint("a dependency did not report its outputs; run plan again"),
                ));
            }
            let started = Instant::now();
            events.emit(Event::ApplyStart {
                address: address.clone(),
                action,
            });
            let (result, out) = match step {
                Step::Change(c) => {
                    let r = provider
                        .apply(ApplyRequest {
                            change: (*c).clone(),
                            desired,
                            events: events.clone(),
                            cancel: cancel.clone(),
                        })
                        .await;
                    let mut d = r.diagnostics;
                    if let (false, Some(desired), Some(planned), Some(state)) = (
                        action == Action::Delete,
                        &c.desired,
                        c.planned_after(),
                        &r.state,
                    ) {
                        let skip =
                            [c.after_unknown.as_slice(), c.sensitive_paths.as_slice()].concat();
                        if let Err(e) = crate::consistency::check_apply(
                            &address, desired, &planned, state, &skip,
                        ) {
                            d.push(e);
                        }
                    }
                    (d, r.outputs)
                }
                Step::Check(_) => {
                    let r = provider
                        .check(CheckRequest {
                            address: address.clone(),
                            desired,
                            phase: CheckPhase::Apply,
                            changes,
                            events: events.clone(),
                            cancel: cancel.clone(),
                        })
                        .await;
                    let mut d = r.diagnostics;
                    if r.result.status != CheckStatus::Pass {
                        let mut e = Diagnostic::error("check-failed", r.result.summary.clone())
                            .with_address(address.to_string());
                        if let Some(fix) = &r.result.fix {
                            e = e.with_hint(fix.clone());
                        }
                        d.push(e);
                    }
                    events.emit(Event::Check {
                        result: r.result.clone(),
                    });
                    (d, r.result.details)
                }
            };
            let elapsed = started.elapsed().as_secs_f64();
            if result.has_errors() {
                events.emit(Event::ApplyErrored {
                    address: address.clone(),
                    action,
                    diagnostics: result.clone().into_vec(),
                });
                return Err(result);
            }
            for d in result {
                events.emit(Event::Diagnostic { diagnostic: d });
            }
            if let Some(o) = out {
                outputs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(address.clone(), o);
            }
            events.emit(Event::ApplyComplete {
                address,
                action,
                elapsed_seconds: elapsed,
            });
            Ok(Some(elapsed))
        }
    })
    .await;

    let mut report = ApplyReport::default();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let address = steps[i].address().clone();
        let action = steps[i].action();
        let status = match outcome {
            Outcome::Done(None) => StepStatus::Unchanged,
            Outcome::Done(Some(elapsed_seconds)) => StepStatus::Applied { elapsed_seconds },
            Outcome::Failed(d) => StepStatus::Failed {
                diagnostics: d.into_vec(),
            },
            Outcome::Skipped(skip) => {
                let reason = match skip {
                    Skip::DependencyFailed(j) => format!("{} failed", steps[j].address()),
                    Skip::Cancelled => "the run was interrupted before it started".to_owned(),
                };
                events.emit(Event::Skipped {
                    address: address.clone(),
                    reason: reason.clone(),
                });
                StepStatus::Skipped { reason }
            }
        };
        report.steps.push(StepResult {
            address,
            action,
            status,
        });
    }
    Ok(report)
}

/// How long a shard waits for another shard's change.
pub const OWNER_WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);
/// How often it looks.
const OWNER_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Waits until the owning shard has converged `c`'s resource (it reads and plans as a no-op),
/// returning its outputs; fails after [`OWNER_WAIT`] or when the run is interrupted.
async fn await_owner(
    provider: &Arc<dyn crate::provider::Provider>,
    c: &crate::plan::Change,
    owner: &crate::plan::Owner,
    desired: Value,
    unknown: Vec<String>,
    events: &Arc<dyn EventSink>,
    cancel: &CancellationToken,
) -> Result<Option<Value>, Diagnostics> {
    let started = Instant::now();
    let address = &c.address;
    loop {
        provider.refresh().await;
        let read = provider
            .read(crate::provider::ReadRequest {
                address: address.clone(),
                desired: desired.clone(),
            })
            .await;
        if read.diagnostics.has_errors() {
            return Err(read.diagnostics);
        }
        let plan = provider
            .plan(crate::provider::PlanRequest {
                address: address.clone(),
                prior: read.state.clone(),
                desired: desired.clone(),
                unknown: unknown.clone(),
                replace_requested: false,
                mode: if owner.action == Action::Delete {
                    crate::plan::PlanMode::Destroy
                } else {
                    crate::plan::PlanMode::Normal
                },
            })
            .await;
        if plan.diagnostics.has_errors() {
            return Err(plan.diagnostics);
        }
        if !plan.action.unwrap_or(Action::NoOp).is_change() {
            return Ok(plan.outputs.or(read.state));
        }
        let waited = started.elapsed();
        if waited >= OWNER_WAIT || cancel.is_cancelled() {
            return Err(Diagnostic::error(
                "shard-wait",
                format!(
                    "{address} is {}'s to {}, and it was not done after {}",
                    owner.shard,
                    owner.action,
                    humantime::format_duration(std::time::Duration::from_secs(waited.as_secs()))
                ),
            )
            .with_address(address.to_string())
            .with_hint(format!(
                "look at the run of {} (its log and exit code); apply this one again once it has succeeded",
                owner.shard
            ))
            .into());
        }
        events.emit(Event::ApplyProgress {
            address: address.clone(),
            message: format!("waiting for {} to {} it", owner.shard, owner.action),
            elapsed_seconds: waited.as_secs_f64(),
        });
        tokio::select! {
            () = tokio::time::sleep(OWNER_POLL) => {}
            () = cancel.cancelled() => {}
        }
    }
}

/// A resource that changed since the plan was made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stale {
    /// The resource.
    pub address: Address,
    /// What changed, in words.
    pub what: String,
}

/// Re-reads every resource the plan will touch, and every resource those changes depend on
/// (their ancestors in the graph, the no-op and data ones included: an update needs the
/// resources it depends on), and reports those whose live state is not what the plan
/// saw (another apply, a person or a policy changed them in between). Applying a stale plan
/// would act on a state nobody reviewed.
pub async fn stale_resources(plan: &Plan, providers: &Providers) -> Result<Vec<Stale>, ApplyError> {
    let known: HashMap<Address, Value> = plan
        .changes
        .iter()
        .filter_map(|c| Some((c.address.clone(), c.outputs.clone()?)))
        .collect();
    let by_addr: HashMap<&Address, &crate::plan::Change> =
        plan.changes.iter().map(|c| (&c.address, c)).collect();
    // Each address to re-read, with the change that needs it (`None`: it changes itself).
    let mut needed: HashMap<&Address, Option<&Address>> = HashMap::new();
    let mut stack: Vec<&Address> = Vec::new();
    for c in plan.changes.iter().filter(|c| c.action.is_change()) {
        needed.insert(&c.address, None);
        stack.push(&c.address);
    }
    while let Some(a) = stack.pop() {
        let needer = needed.get(a).copied().flatten().unwrap_or(a);
        for d in by_addr.get(a).map_or(&[][..], |c| &c.depends_on[..]) {
            if by_addr.contains_key(d) && !needed.contains_key(d) {
                needed.insert(d, Some(needer));
                stack.push(d);
            }
        }
    }
    let mut out = Vec::new();
    for c in plan.changes.iter() {
        let Some(needer) = needed.get(&c.address) else {
            continue;
        };
        // Another shard's change: it is expected to move (this run waits for it to).
        if c.owner.is_some() {
            continue;
        }
        let provider = providers
            .get(&c.address.rtype)
            .ok_or_else(|| ApplyError::NoProvider(c.address.rtype.to_string()))?;
        let mut desired = c.desired.clone().unwrap_or(Value::Null);
        resolve_references(&mut desired, &|a, o| known.get(a)?.get(o).cloned());
        let read = provider
            .read(crate::provider::ReadRequest {
                address: c.address.clone(),
                desired,
            })
            .await;
        let because = needer.map_or_else(String::new, |n| format!(", and {n} depends on it"));
        if read.diagnostics.has_errors() {
            out.push(Stale {
                address: c.address.clone(),
                what: format!("cannot be read again{because}: {}", read.diagnostics),
            });
            continue;
        }
        // What the plan saw: a data source's state is its `after`, anything else's `before`.
        let seen = if c.action == Action::Read {
            c.planned_after().map(std::borrow::Cow::into_owned)
        } else {
            c.before_value()
        };
        let what = match (seen, &read.state) {
            (None, Some(_)) => Some(format!("it was created since the plan{because}")),
            (Some(_), None) => Some(format!("it was deleted since the plan{because}")),
            (Some(before), Some(now)) if read.version != c.observed_version => {
                let changed = changed_keys(&before, now);
                Some(if changed.is_empty() {
                    format!("its version changed since the plan{because}")
                } else {
                    format!("{} changed since the plan{because}", changed.join(", "))
                })
            }
            _ => None,
        };
        if let Some(what) = what {
            out.push(Stale {
                address: c.address.clone(),
                what,
            });
        }
    }
    Ok(out)
}

fn changed_keys(before: &Value, now: &Value) -> Vec<String> {
    let (Some(b), Some(n)) = (before.as_object(), now.as_object()) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = b
        .keys()
        .chain(n.keys())
        .filter(|k| {
            b.get(*k) != n.get(*k) && b.get(*k) != Some(&Value::String("(sensitive)".into()))
        })
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}
