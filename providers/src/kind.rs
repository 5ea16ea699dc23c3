//! A resource kind: one module with its type, its typed attributes, its lowering from the
//! configuration and its lifecycle verbs.
//!
//! [`Kind`] is what a kind module implements for its provider's shared context `C` (the ARM
//! client and subscription lists for Azure kinds; the cluster clients for Kubernetes kinds).
//! A [`Registry`] maps each resource type to its kind and is itself the
//! [`arcplan_engine::provider::Provider`] the engine calls: there is no dispatch on kind names.
//! Verbs a kind does not implement have the defaults below (a kind that is not a check says so
//! when asked to check).

use arcplan_engine::address::ResourceType;
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use arcplan_engine::plan::{Action, CheckResult, CheckStatus};
use arcplan_engine::provider::*;
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// One resource kind's lifecycle verbs, over its provider's shared context `C`.
#[async_trait]
pub trait Kind<C: Send + Sync>: Send + Sync {
    /// The resource type this kind serves.
    fn rtype(&self) -> ResourceType;
    /// Reads live state (default: absent).
    async fn read(&self, _cx: &C, _req: &ReadRequest) -> ReadResponse {
        ReadResponse::default()
    }
    /// Plans a change (default: nothing to do, the prior state is the output).
    async fn plan(&self, _cx: &C, req: &PlanRequest) -> PlanResponse {
        PlanResponse {
            action: Some(Action::NoOp),
            outputs: req.prior.clone(),
            ..Default::default()
        }
    }
    /// Applies a planned change (default: nothing to apply).
    async fn apply(&self, _cx: &C, _req: &ApplyRequest) -> ApplyResponse {
        ApplyResponse::default()
    }
    /// Evaluates a check (default: this kind is not a check, which is an error).
    async fn check(&self, _cx: &C, req: &CheckRequest) -> CheckResponse {
        let message = format!("{} is not a check", req.address.rtype);
        CheckResponse {
            result: failed(&req.address, &message),
            diagnostics: Diagnostic::error("provider", message)
                .with_address(req.address.to_string())
                .into(),
        }
    }
    /// Lists this kind's resources owned by the stack (default: none).
    async fn discover(&self, _cx: &C, _req: &DiscoverRequest) -> DiscoverResponse {
        DiscoverResponse::default()
    }
    /// What a resource leaves behind when its scope cannot be contacted and it is planned
    /// absent, as warnings (default: nothing). No I/O to the scope.
    async fn left_behind(&self, _cx: &C, _req: &ReadRequest) -> Diagnostics {
        Diagnostics::new()
    }
}

/// The kinds of one provider, each looked up by its resource type.
pub struct Registry<C> {
    kinds: HashMap<ResourceType, Arc<dyn Kind<C>>>,
    order: Vec<ResourceType>,
}

impl<C: Send + Sync> Registry<C> {
    /// A registry of these kinds (a later kind of the same type wins).
    pub fn new(kinds: Vec<Arc<dyn Kind<C>>>) -> Self {
        let order = kinds.iter().map(|k| k.rtype()).collect();
        Self {
            kinds: kinds.into_iter().map(|k| (k.rtype(), k)).collect(),
            order,
        }
    }

    /// The types served, in registration order.
    pub fn types(&self) -> Vec<ResourceType> {
        self.order.clone()
    }

    /// The kind serving a type.
    pub fn get(&self, rtype: &ResourceType) -> Option<&Arc<dyn Kind<C>>> {
        self.kinds.get(rtype)
    }

    /// Reads through the kind of the address's type.
    pub async fn read(&self, cx: &C, req: ReadRequest) -> ReadResponse {
        match self.get(&req.address.rtype) {
            Some(k) => k.read(cx, &req).await,
            None => ReadResponse {
                diagnostics: unserved(&req.address.rtype).into(),
                ..Default::default()
            },
        }
    }

    /// Plans through the kind of the address's type.
    pub async fn plan(&self, cx: &C, req: PlanRequest) -> PlanResponse {
        match self.get(&req.address.rtype) {
            Some(k) => k.plan(cx, &req).await,
            None => PlanResponse {
                diagnostics: unserved(&req.address.rtype).into(),
                ..Default::default()
            },
        }
    }

    /// Applies through the kind of the change's type.
    pub async fn apply(&self, cx: &C, req: ApplyRequest) -> ApplyResponse {
        match self.get(&req.change.address.rtype) {
            Some(k) => k.apply(cx, &req).await,
            None => ApplyResponse::failed(unserved(&req.change.address.rtype)),
        }
    }

    /// Checks through the kind of the address's type.
    pub async fn check(&self, cx: &C, req: CheckRequest) -> CheckResponse {
        match self.get(&req.address.rtype) {
            Some(k) => k.check(cx, &req).await,
            None => CheckResponse {
                result: failed(&req.address, &unserved(&req.address.rtype).message),
                diagnostics: unserved(&req.address.rtype).into(),
            },
        }
    }

    /// What a resource of an unreachable scope leaves behind, through its kind.
    pub async fn left_behind(&self, cx: &C, req: &ReadRequest) -> Diagnostics {
        match self.get(&req.address.rtype) {
            Some(k) => k.left_behind(cx, req).await,
            None => Diagnostics::new(),
        }
    }

    /// Discovers through every kind the request names, in registration order.
    pub async fn discover(&self, cx: &C, req: DiscoverRequest) -> DiscoverResponse {
        let mut out = DiscoverResponse::default();
        for t in &self.order {
            if req.types.contains(t) {
                let r = self.kinds[t].discover(cx, &req).await;
                out.resources.extend(r.resources);
                out.diagnostics.extend(r.diagnostics);
            }
        }
        out
    }
}

fn failed(address: &arcplan_engine::address::Address, summary: &str) -> CheckResult {
    CheckResult {
        address: address.clone(),
        status: CheckStatus::Fail,
        summary: summary.to_owned(),
        fix: None,
        details: None,
        depends_on: Vec::new(),
        desired: None,
    }
}

fn unserved(rtype: &ResourceType) -> Diagnostic {
    Diagnostic::error(
        "provider",
        format!("no kind of this provider serves {rtype}"),
    )
}

/// A node's declared attributes as its kind's typed struct, or a diagnostic naming the resource
/// (a plan file edited by hand, or a provider and a lowering that disagree).
pub fn attributes<T: DeserializeOwned>(
    address: &arcplan_engine::address::Address,
    desired: &Value,
) -> Result<T, Diagnostic> {
    serde_json::from_value(desired.clone()).map_err(|e| {
        Diagnostic::error(
            "attributes",
            format!("the attributes of {address} are not what its kind declares: {e}"),
        )
        .with_address(address.to_string())
        .with_hint("re-create the plan with this version of arcplan")
    })
}
