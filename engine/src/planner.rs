//! The planner: refresh every node's live state, ask its provider for the change, evaluate the
//! checks, and return a [`Plan`].
//!
//! Nodes are refreshed concurrently in dependency order (a node's references are resolved from
//! its dependencies' outputs when those do not change, and marked unknown otherwise), bounded by
//! the parallelism. Resources the stack owns but the configuration no longer lists are found by
//! the providers' `discover` verb and planned for deletion. Any error makes the plan fail, with
//! every error reported; warnings and notes of every read, plan and check are returned with the
//! plan. A difference on a resource whose configuration is still what arcplan last applied is
//! marked as drift ([`crate::plan::Drift`]); a refresh-only plan changes nothing but keeps it.

use crate::address::Address;
use crate::diag::{Diagnostic, Diagnostics};
use crate::events::{Event, EventSink};
use crate::graph::{Mode, ResourceGraph, resolve_references};
use crate::plan::{
    Action, Change, CheckResult, CheckStatus, Drift, FORMAT_VERSION, Json, Plan, PlanMode, Reason,
    ReasonCode, desired_digest, redact,
};
use crate::provider::{
    CheckPhase, CheckRequest, DiscoverRequest, PlanRequest, Providers, ReadRequest,
};
use crate::walk::{Outcome, Skip, WalkOptions, walk};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// How to plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Normal, destroy or refresh-only.
    pub mode: PlanMode,
    /// The most nodes refreshed at once (default 10).
    pub parallelism: Option<usize>,
    /// Only these addresses and what they depend on (`--target`).
    pub targets: Vec<Address>,
    /// Leave out these addresses and what depends on them (`--exclude`).
    pub excludes: Vec<Address>,
    /// Replace these even if nothing changed (`--replace`).
    pub replace: Vec<Address>,
    /// Stops new refreshes.
    pub cancel: CancellationToken,
    /// The configuration digest recorded in the plan.
    pub config_digest: String,
    /// The stack.
    pub stack: String,
    /// This run is one shard of several (`--shard K/N`): it changes only what it owns.
    pub shard: Option<crate::shard::Shard>,
}

/// The default number of nodes worked on at once.
pub const DEFAULT_PARALLELISM: usize = 10;

/// Plans the graph. Returns the plan, or every error found.
pub async fn plan(
    graph: &ResourceGraph,
    providers: &Providers,
    opts: &PlanOptions,
    events: Arc<dyn EventSink>,
) -> Result<(Plan, Diagnostics), Diagnostics> {
    let mut diags = Diagnostics::new();
    let order = graph
        .order()
        .map_err(|c| Diagnostics::from(Diagnostic::error("cycle", c.to_string())))?;
    let selected = select(graph, opts, &mut diags);
    let nodes: Vec<_> = order
        .into_iter()
        .filter(|n| selected.contains(&n.address))
        .collect();
    let pos: HashMap<&Address, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (&n.address, i))
        .collect();
    let deps: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            graph
                .dependencies(&n.address)
                .into_iter()
                .filter_map(|d| pos.get(d).copied())
                .collect()
        })
        .collect();
    for n in &nodes {
        if providers.get(&n.address.rtype).is_none() {
            diags.push(
                Diagnostic::error(
                    "no-provider",
                    format!("no provider serves {}", n.address.rtype),
                )
                .with_address(n.address.to_string()),
            );
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }

    let results: Mutex<HashMap<Address, (Action, Option<Value>)>> = Mutex::new(HashMap::new());
    // Warnings and notes of reads and plans that succeeded: every one reaches the views.
    let notes: Mutex<Vec<Diagnostic>> = Mutex::new(Vec::new());
    let walk_opts = WalkOptions {
        parallelism: opts.parallelism.unwrap_or(DEFAULT_PARALLELISM),
        cancel: opts.cancel.clone(),
    };
    let outcomes = walk(&deps, &walk_opts, |i| {
        let node = nodes[i];
        let results = &results;
        let notes = &notes;
        let events = events.clone();
        async move {
            let address = node.address.clone();
            let Some(provider) = providers.get(&address.rtype) else {
                return Err(Diagnostics::new());
            };
            let mut desired = node.desired.clone();
            let unknown = {
                let known = results.lock().unwrap_or_else(|e| e.into_inner());
                resolve_references(&mut desired, &|a, o| lookup_output(&known, a, o))
            };
            if matches!(node.mode, Mode::PlanCheck | Mode::ApplyCheck) {
                return Ok(None);
            }
            events.emit(Event::RefreshStart {
                address: address.clone(),
            });
            let read = provider
                .read(ReadRequest {
                    address: address.clone(),
                    desired: desired.clone(),
                })
                .await;
            if read.diagnostics.has_errors() {
                return Err(read.diagnostics);
            }
            keep_notes(notes, &address, read.diagnostics);
            events.emit(Event::RefreshComplete {
                address: address.clone(),
                exists: read.state.is_some(),
            });
            if node.mode == Mode::Data {
                let Some(state) = read.state else {
                    return Err(Diagnostic::error(
                        "not-found",
                        format!("{address} does not exist or is not visible to this credential"),
                    )
                    .with_address(address.to_string())
                    .into());
                };
                let mut change = Change::new(address.clone(), Action::Read);
                change.after = Some(state.clone());
                change.observed_version = read.version;
                change.outputs = Some(state.clone());
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(address, (Action::Read, Some(state)));
                return Ok(Some(change));
            }
            let resp = provider
                .plan(PlanRequest {
                    address: address.clone(),
                    prior: read.state.clone(),
                    desired: desired.clone(),
                    unknown: unknown.clone(),
                    replace_requested: opts.replace.contains(&address),
                    mode: opts.mode,
                })
                .await;
            if resp.diagnostics.has_errors() {
                return Err(resp.diagnostics);
            }
            keep_notes(notes, &address, resp.diagnostics);
            let converge = resp.action.unwrap_or(Action::NoOp);
            // Drift: the live state differs although the configuration is still what arcplan
            // last applied (the digest recorded on the resource). See `plan::Drift`.
            // A resource that keeps no record cannot be told apart; a refresh-only plan still
            // lists its difference (it must not say the live state matches), as unattributed.
            // A destroy's deletes are what was asked for, never a difference that arose
            // outside arcplan.
            let differs =
                converge.is_change() && read.state.is_some() && opts.mode != PlanMode::Destroy;
            let message = || {
                resp.reason.as_ref().map_or_else(
                    || "the live state differs from what arcplan applied".to_owned(),
                    |r| r.message.clone(),
                )
            };
            let drift = match read.applied_digest.as_deref() {
                Some(d) if differs && d == desired_digest(Some(&node.desired)) => Some(Drift {
                    action: converge,
                    message: message(),
                    attributed: true,
                }),
                None if differs && opts.mode == PlanMode::RefreshOnly => Some(Drift {
                    action: converge,
                    message: format!(
                        "{} (arcplan keeps no record of its last apply of this resource, so this may also be a change to the configuration)",
                        message()
                    ),
                    attributed: false,
                }),
                _ => None,
            };
            let action = if opts.mode == PlanMode::RefreshOnly {
                Action::NoOp
            } else {
                converge
            };
            if let (Action::Create | Action::Update | Action::Replace, Some(after)) =
                (action, &resp.after)
            {
                let skip = [unknown.as_slice(), resp.sensitive_paths.as_slice()].concat();
                crate::consistency::check_plan(&address, &desired, after, &skip)?;
            }
            let mut change = Change::new(address.clone(), action);
            change.drift = drift;
            change.reason = resp.reason;
            change.before = read.state.map(|mut v| {
                redact(&mut v, &resp.sensitive_paths);
                Json::from(v)
            });
            change.after = match action {
                Action::Delete => None,
                // A no-op's planned state is its `before` (see `Change::planned_after`).
                Action::NoOp => None,
                _ => resp.after.map(|mut v| {
                    redact(&mut v, &resp.sensitive_paths);
                    v
                }),
            };
            change.after_unknown = unknown;
            change.sensitive_paths = resp.sensitive_paths;
            change.replace_paths = resp.requires_replace;
            change.observed_version = read.version;
            change.desired = Some(node.desired.clone());
            change.depends_on = graph.dependencies(&address).into_iter().cloned().collect();
            change.delete_after = resp.delete_after;
            // A provider reports the outputs that survive its change (an ARM id survives an
            // update; nothing survives a replace); dependents see the rest as unknown.
            let outputs = if matches!(action, Action::Create | Action::Replace | Action::Delete) {
                None
            } else {
                resp.outputs
            };
            change.outputs = outputs.clone();
            events.emit(Event::PlannedChange {
                address: address.clone(),
                action,
            });
            results
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(address, (action, outputs));
            Ok(Some(change))
        }
    })
    .await;

    let mut changes = Vec::new();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Outcome::Done(change) => changes.extend(change),
            Outcome::Failed(d) => {
                let address = nodes[i].address.to_string();
                for mut d in d {
                    if d.address.is_none() {
                        d.address = Some(address.clone());
                    }
                    diags.push(d);
                }
            }
            Outcome::Skipped(Skip::DependencyFailed(_)) => {}
            Outcome::Skipped(Skip::Cancelled) => {
                diags.push(
                    Diagnostic::error(
                        "cancelled",
                        "planning was interrupted before every resource was read",
                    )
                    .with_address(nodes[i].address.to_string()),
                );
            }
        }
    }
    for d in notes.into_inner().unwrap_or_else(|e| e.into_inner()) {
        diags.push(d);
    }
    if diags.has_errors() {
        return Err(diags);
    }

    // A sharded run's changes to what another shard owns are that shard's: here they are only
    // waited for.
    if let Some(shard) = &opts.shard {
        for c in changes.iter_mut() {
            if c.action.is_change() && !shard.owns(&c.address) {
                let owner = shard.owner_name(&c.address);
                let what = c.action;
                c.reason = Some(Reason::new(
                    ReasonCode::Other,
                    match c.reason.as_ref() {
                        Some(r) => format!(
                            "{owner}'s to {what} ({}); {} waits for it during apply",
                            r.message,
                            shard.name()
                        ),
                        None => format!(
                            "{owner}'s to {what}; {} waits for it during apply",
                            shard.name()
                        ),
                    },
                ));
                c.owner = Some(crate::plan::Owner {
                    shard: owner,
                    action: what,
                });
                c.action = Action::Read;
            }
        }
    }

    // Prune: owned resources the configuration no longer declares.
    if opts.mode != PlanMode::RefreshOnly && opts.targets.is_empty() {
        for (provider, types) in providers.distinct() {
            let found = provider
                .discover(DiscoverRequest {
                    stack: opts.stack.clone(),
                    types,
                })
                .await;
            if found.diagnostics.has_errors() {
                diags.extend(found.diagnostics);
                continue;
            }
            diags.extend(found.diagnostics);
            for r in found.resources {
                if graph.node(&r.address).is_some()
                    || opts.excludes.contains(&r.address)
                    || opts.shard.as_ref().is_some_and(|s| !s.owns(&r.address))
                {
                    continue;
                }
                let mut change = Change::new(r.address.clone(), Action::Delete);
                change.reason = Some(Reason::new(
                    ReasonCode::DeleteBecauseNoResourceConfig,
                    format!(
                        "{} carries this stack's tag but is no longer in the configuration",
                        r.address
                    ),
                ));
                change.before = Some(Json::from(r.state));
                change.observed_version = r.version;
                change.depends_on = r.depends_on;
                events.emit(Event::PlannedChange {
                    address: r.address.clone(),
                    action: Action::Delete,
                });
                changes.push(change);
            }
        }
        if diags.has_errors() {
            return Err(diags);
        }
    }

    // Cascades: what a replace or delete drags along.
    let by_addr: HashMap<Address, Action> = changes
        .iter()
        .map(|c| (c.address.clone(), c.action))
        .collect();
    for c in &mut changes {
        if matches!(c.action, Action::Replace | Action::Delete) {
            c.cascades_to = graph
                .dependents(&c.address)
                .into_iter()
                .filter(|d| by_addr.get(*d).is_some_and(|a| a.is_change()))
                .cloned()
                .collect();
        }
    }

    // Checks. They see the changes through one shared value, moved back out afterwards (a
    // fleet's plan is not copied for them).
    let shared = Arc::new(changes);
    let mut checks = Vec::new();
    for node in &nodes {
        match node.mode {
            Mode::PlanCheck => {
                let Some(provider) = providers.get(&node.address.rtype) else {
                    continue;
                };
                let resp = provider
                    .check(CheckRequest {
                        address: node.address.clone(),
                        desired: node.desired.clone(),
                        phase: CheckPhase::Plan,
                        changes: shared.clone(),
                        events: events.clone(),
                        cancel: opts.cancel.clone(),
                    })
                    .await;
                diags.extend(resp.diagnostics);
                events.emit(Event::Check {
                    result: resp.result.clone(),
                });
                checks.push(resp.result);
            }
            Mode::ApplyCheck if opts.mode == PlanMode::Normal => {
                checks.push(CheckResult {
                    address: node.address.clone(),
                    status: CheckStatus::Pending,
                    summary: "evaluated during apply, once its dependencies are in place".into(),
                    fix: None,
                    details: None,
                    depends_on: graph
                        .dependencies(&node.address)
                        .into_iter()
                        .cloned()
                        .collect(),
                    desired: Some(node.desired.clone()),
                });
            }
            _ => {}
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    let changes = Arc::try_unwrap(shared).unwrap_or_else(|kept| (*kept).clone());
    Ok((
        Plan {
            format_version: FORMAT_VERSION.into(),
            config_digest: opts.config_digest.clone(),
            stack: opts.stack.clone(),
            mode: opts.mode,
            changes,
            checks,
            shard: opts.shard.as_ref().and_then(crate::shard::Shard::label),
        },
        diags,
    ))
}

/// Keeps the warnings and notes of a successful read or plan, each naming its resource.
fn keep_notes(notes: &Mutex<Vec<Diagnostic>>, address: &Address, diags: Diagnostics) {
    let mut notes = notes.lock().unwrap_or_else(|e| e.into_inner());
    for mut d in diags {
        if d.address.is_none() {
            d.address = Some(address.to_string());
        }
        notes.push(d);
    }
}

fn lookup_output(
    known: &HashMap<Address, (Action, Option<Value>)>,
    address: &Address,
    output: &str,
) -> Option<Value> {
    let (_, outputs) = known.get(address)?;
    outputs.as_ref()?.get(output).cloned()
}

/// The addresses a plan with these options covers: everything, or the targets and their
/// dependencies; minus the excluded ones and their dependents. Unknown addresses are ignored
/// here (planning reports them). Runs lock the clusters of these nodes before planning.
pub fn selected(graph: &ResourceGraph, opts: &PlanOptions) -> BTreeSet<Address> {
    select(graph, opts, &mut Diagnostics::new())
}

/// The addresses to plan: everything, or the targets and their dependencies; minus the excluded
/// ones and their dependents.
fn select(graph: &ResourceGraph, opts: &PlanOptions, diags: &mut Diagnostics) -> BTreeSet<Address> {
    for a in opts
        .targets
        .iter()
        .chain(&opts.excludes)
        .chain(&opts.replace)
    {
        if graph.node(a).is_none() {
            let names: Vec<String> = graph.nodes().map(|n| n.address.to_string()).collect();
            let mut d = Diagnostic::error(
                "unknown-address",
                format!("{a} is not in the configuration"),
            );
            if let Some(s) =
                crate::diag::did_you_mean(&a.to_string(), names.iter().map(String::as_str))
            {
                d = d.with_hint(format!("did you mean `{s}`?"));
            } else {
                d = d.with_hint("the graph command, run on the same file, lists every address");
            }
            diags.push(d);
        }
    }
    let mut set: BTreeSet<Address> = if opts.targets.is_empty() && opts.shard.is_none() {
        graph.nodes().map(|n| n.address.clone()).collect()
    } else {
        let mut set = BTreeSet::new();
        // What this run owns, and what that depends on.
        let mut stack: Vec<Address> = if opts.targets.is_empty() {
            graph.nodes().map(|n| n.address.clone()).collect()
        } else {
            opts.targets.clone()
        };
        if let Some(shard) = &opts.shard {
            // Plan-time checks change nothing: every shard runs them over its own changes.
            stack.retain(|a| {
                shard.owns(a) || graph.node(a).is_some_and(|n| n.mode == Mode::PlanCheck)
            });
            // A destroy deletes what others live in last: a shared resource this shard owns
            // (a resource group) waits for the other shards to delete what depends on it.
            if opts.mode == PlanMode::Destroy {
                let mut up: Vec<Address> =
                    stack.iter().filter(|a| shard.owns(a)).cloned().collect();
                let mut seen: BTreeSet<Address> = up.iter().cloned().collect();
                while let Some(a) = up.pop() {
                    for d in graph.dependents(&a) {
                        if seen.insert(d.clone()) {
                            up.push(d.clone());
                            stack.push(d.clone());
                        }
                    }
                }
            }
        }
        while let Some(a) = stack.pop() {
            if set.insert(a.clone()) {
                stack.extend(graph.dependencies(&a).into_iter().cloned());
            }
        }
        set
    };
    let mut stack: Vec<Address> = opts.excludes.clone();
    while let Some(a) = stack.pop() {
        if set.remove(&a) {
            stack.extend(graph.dependents(&a).into_iter().cloned());
        }
    }
    set
}
