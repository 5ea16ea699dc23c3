//! A scripted fake provider, so engine and CLI tests run without a socket.
//!
//! It keeps live state in memory, plans by comparing declared keys, applies by writing the
//! desired value back, and records every call. Tests script failures, delays, keys that force
//! replacement, check results, and read the peak number of concurrent applies.

use crate::address::{Address, ResourceType};
use crate::diag::Diagnostic;
use crate::events::Event;
use crate::plan::{Action, CheckResult, CheckStatus, PlanMode, Reason, ReasonCode};
use crate::provider::*;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// One recorded call: the verb and the address.
pub type Call = (&'static str, Address);

/// Which deletes a delete must wait for.
pub type DeleteAfterFn = Box<dyn Fn(&Address) -> Vec<Address> + Send + Sync>;

/// A check's scripted outcome.
pub type CheckFn = Box<dyn Fn(&CheckRequest) -> CheckStatus + Send + Sync>;

/// The fake provider.
pub struct FakeProvider {
    types: Vec<ResourceType>,
    /// Live state by address. Objects carrying `"stack": S` are found by discovery for stack S.
    pub live: Mutex<BTreeMap<Address, Value>>,
    /// Every call, in order.
    pub calls: Mutex<Vec<Call>>,
    /// Outputs to report for an address, on top of the defaults.
    pub outputs: Mutex<BTreeMap<Address, Value>>,
    /// Applies to these addresses fail.
    pub fail_apply: Mutex<HashSet<Address>>,
    /// How long each apply takes.
    pub apply_delay: Duration,
    /// Top-level keys that cannot change in place.
    pub replace_keys: Vec<String>,
    /// Top-level keys holding secrets.
    pub sensitive_keys: Vec<String>,
    /// Deletes of these types wait for the deletes of the addresses the function returns.
    pub delete_after: Option<DeleteAfterFn>,
    /// Scripted check results (default: pass).
    pub check_fn: Option<CheckFn>,
    /// The desired digest recorded by the last apply of each address (as a real provider records
    /// it on the resource), reported by `read` as `applied_digest`.
    pub applied: Mutex<BTreeMap<Address, String>>,
    /// Warnings `read` reports for an address (the message).
    pub read_warnings: Mutex<BTreeMap<Address, String>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

impl FakeProvider {
    /// A fake serving these types, with no live state.
    pub fn new(types: &[ResourceType]) -> Self {
        Self {
            types: types.to_vec(),
            live: Mutex::new(BTreeMap::new()),
            calls: Mutex::new(Vec::new()),
            outputs: Mutex::new(BTreeMap::new()),
            fail_apply: Mutex::new(HashSet::new()),
            apply_delay: Duration::ZERO,
            replace_keys: Vec::new(),
            sensitive_keys: Vec::new(),
            check_fn: None,
            applied: Mutex::new(BTreeMap::new()),
            read_warnings: Mutex::new(BTreeMap::new()),
            delete_after: None,
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// The most applies that ran at once.
    pub fn peak_concurrency(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// The addresses called with `verb`, in order.
    pub fn calls_of(&self, verb: &str) -> Vec<Address> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(v, _)| *v == verb)
            .map(|(_, a)| a.clone())
            .collect()
    }

    fn record(&self, verb: &'static str, address: &Address) {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((verb, address.clone()));
    }

    /// The outputs of a live object: the object itself plus `publicKey` (`key-of-ADDRESS`) and
    /// `ready`, the outputs the quickstart graph refers to, then any scripted in `outputs`.
    pub fn outputs_of(&self, address: &Address, state: &Value) -> Value {
        let mut out = state.clone();
        if let Some(obj) = out.as_object_mut() {
            obj.insert("publicKey".into(), json!(format!("key-of-{address}")));
            obj.insert("ready".into(), json!(true));
            let scripted = self.outputs.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(Value::Object(extra)) = scripted.get(address) {
                for (k, v) in extra {
                    obj.insert(k.clone(), v.clone());
                }
            }
        }
        out
    }

    fn live_get(&self, a: &Address) -> Option<Value> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(a)
            .cloned()
    }
}

#[async_trait]
impl Provider for FakeProvider {
    fn resource_types(&self) -> Vec<ResourceType> {
        self.types.clone()
    }

    async fn read(&self, req: ReadRequest) -> ReadResponse {
        self.record("read", &req.address);
        let state = self.live_get(&req.address);
        let mut diagnostics = crate::diag::Diagnostics::new();
        if let Some(w) = self
            .read_warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&req.address)
        {
            diagnostics.push(Diagnostic::warning("fake-warning", w.clone()));
        }
        ReadResponse {
            version: state.as_ref().map(|s| format!("{:x}", s.to_string().len())),
            applied_digest: state.as_ref().and_then(|_| {
                self.applied
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&req.address)
                    .cloned()
            }),
            state,
            diagnostics,
        }
    }

    async fn plan(&self, req: PlanRequest) -> PlanResponse {
        self.record("plan", &req.address);
        let desired = req.desired.as_object().cloned().unwrap_or_default();
        let mut resp = PlanResponse {
            sensitive_paths: self
                .sensitive_keys
                .iter()
                .map(|k| format!("/{k}"))
                .collect(),
            ..Default::default()
        };
        let Some(prior) = req.prior else {
            resp.action = Some(if req.mode == PlanMode::Destroy {
                Action::NoOp
            } else {
                Action::Create
            });
            resp.after = Some(req.desired.clone());
            return resp;
        };
        if req.mode == PlanMode::Destroy {
            resp.action = Some(Action::Delete);
            resp.reason = Some(Reason::new(
                ReasonCode::DeleteBecauseDestroy,
                "destroy was requested",
            ));
            resp.delete_after = self
                .delete_after
                .as_ref()
                .map(|f| f(&req.address))
                .unwrap_or_default();
            return resp;
        }
        let differs: Vec<&String> = desired
            .iter()
            .filter(|(k, v)| {
                prior.get(k.as_str()) != Some(v)
                    || req.unknown.iter().any(|u| u == &format!("/{k}"))
            })
            .map(|(k, _)| k)
            .collect();
        let replace: Vec<String> = differs
            .iter()
            .filter(|k| self.replace_keys.contains(k))
            .map(|k| format!("/{k}"))
            .collect();
        let mut after = prior.clone();
        if let Some(obj) = after.as_object_mut() {
            for (k, v) in &desired {
                obj.insert(k.clone(), v.clone());
            }
        }
        resp.action = Some(if req.replace_requested {
            resp.reason = Some(Reason::new(
                ReasonCode::Requested,
                "replacement was requested",
            ));
            Action::Replace
        } else if !replace.is_empty() {
            resp.reason = Some(Reason::new(
                ReasonCode::CannotUpdate,
                format!("{} cannot change in place", replace.join(", ")),
            ));
            Action::Replace
        } else if differs.is_empty() {
            resp.outputs = Some(self.outputs_of(&req.address, &prior));
            Action::NoOp
        } else {
            resp.outputs = Some(self.outputs_of(&req.address, &prior));
            Action::Update
        });
        resp.requires_replace = replace;
        resp.after = Some(after);
        resp
    }

    async fn apply(&self, req: ApplyRequest) -> ApplyResponse {
        let address = req.change.address.clone();
        self.record("apply", &address);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        req.events.emit(Event::ApplyProgress {
            address: address.clone(),
            message: "working".into(),
            elapsed_seconds: 0.0,
        });
        if !self.apply_delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(self.apply_delay) => {}
                _ = req.cancel.cancelled() => {}
            }
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let mut resp = ApplyResponse::default();
        if self
            .fail_apply
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&address)
        {
            resp.diagnostics.push(Diagnostic::error(
                "fake",
                format!("scripted failure of {address}"),
            ));
            return resp;
        }
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        match req.change.action {
            Action::Delete => {
                live.remove(&address);
            }
            _ => {
                self.applied
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        address.clone(),
                        crate::plan::desired_digest(req.change.desired.as_ref()),
                    );
                let mut state = req.desired.clone();
                if let Some(obj) = state.as_object_mut() {
                    obj.insert("id".into(), json!(address.to_string()));
                }
                resp.outputs = Some(self.outputs_of(&address, &state));
                live.insert(address, state.clone());
                resp.state = Some(state);
            }
        }
        resp
    }

    async fn check(&self, req: CheckRequest) -> CheckResponse {
        self.record("check", &req.address);
        let status = self
            .check_fn
            .as_ref()
            .map(|f| f(&req))
            .unwrap_or(CheckStatus::Pass);
        CheckResponse {
            result: CheckResult {
                address: req.address.clone(),
                status,
                summary: format!("scripted {status:?}"),
                fix: (status == CheckStatus::Fail).then(|| "do the scripted fix".to_owned()),
                details: None,
                depends_on: Vec::new(),
                desired: None,
            },
            diagnostics: Default::default(),
        }
    }

    async fn discover(&self, req: DiscoverRequest) -> DiscoverResponse {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        DiscoverResponse {
            resources: live
                .iter()
                .filter(|(a, v)| {
                    req.types.contains(&a.rtype) && v.get("stack") == Some(&json!(req.stack))
                })
                .map(|(a, v)| Discovered {
                    address: a.clone(),
                    state: v.clone(),
                    version: None,
                    depends_on: Vec::new(),
                })
                .collect(),
            diagnostics: Default::default(),
        }
    }
}
