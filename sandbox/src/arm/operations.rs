//! Long-running operations of the ARM emulator: starting one (its duration, seeded slowness and
//! injected failure), settling it as simulated time passes (halfway, then done), its status document
//! (`Azure-AsyncOperation`), its result (`Location`), `Retry-After`, and forgetting it ten minutes after
//! it ends. What an operation does to the resource it is about is the resource kind's: an
//! [`OpEffect`].

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::request::{only, set_header};
use super::routing::{ApiVersions, ArmRoute, Kind, Parsed, route, sub_scope};
use super::state::ArmState;
use super::{ArmError, Ctx, eq, json_response, rfc3339};

/// How long a finished operation's status stays readable.
const OPERATION_RETENTION: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpStatus {
    InProgress,
    Succeeded,
    Failed,
}

/// What a long-running operation does to its resource, supplied by the resource kind.
pub(crate) trait OpEffect: Debug + Send + Sync {
    /// Whether the operation deletes its resource (a repeated DELETE joins it).
    fn deletes(&self) -> bool {
        false
    }
    /// Keeps a due operation in progress (a service waiting for something outside ARM, like an
    /// extension's workloads in the cluster); asked again at every settle.
    fn hold(&self, _st: &ArmState, _sub: &str) -> bool {
        false
    }
    /// Applied once, when half the operation's time has passed.
    fn halfway(&self, _st: &mut ArmState, _sub: &str) {}
    /// Why the service fails the operation when it is due (`(code, message)`), besides an
    /// injected failure: the kind's own rule about the world outside ARM.
    fn refuse(&self, _st: &ArmState, _sub: &str) -> Option<(String, String)> {
        None
    }
    /// Applied when the operation ends; `ok` is false when it failed.
    fn finish(&self, st: &mut ArmState, sub: &str, ok: bool);
    /// The response of `operationResults` once the operation succeeded.
    fn result(&self, _st: &ArmState, _sub: &str) -> Response {
        StatusCode::OK.into_response()
    }
}

/// The effect of an operation, shared by its clones.
pub(crate) type OpKind = Arc<dyn OpEffect>;

#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub id: String,
    pub sub: String,
    pub namespace: &'static str,
    pub location: String,
    pub resource_id: String,
    pub kind: OpKind,
    pub status: OpStatus,
    pub start_wall: time::OffsetDateTime,
    pub end_wall: Option<time::OffsetDateTime>,
    pub ended: Option<Instant>,
    pub mid: Instant,
    pub done_at: Instant,
    pub mid_applied: bool,
    pub failure: Option<(String, String)>,
}

impl ArmState {
    /// Applies every operation transition due at `now`, and forgets operations finished long ago.
    pub(crate) fn settle_operations(&mut self, now: Instant) {
        // Finished operations stay readable for ten minutes, then are forgotten (404).
        self.ops.retain(|_, o| {
            o.ended
                .is_none_or(|e| now.saturating_duration_since(e) < OPERATION_RETENTION)
        });
        let mut due: Vec<(Instant, String)> = self
            .ops
            .values()
            .filter(|o| o.status == OpStatus::InProgress)
            .map(|o| (o.done_at, o.id.clone()))
            .collect();
        due.sort();
        for (done_at, id) in due {
            let Some(op) = self.ops.get(&id).cloned() else {
                continue;
            };
            if done_at <= now {
                if op.kind.hold(self, &op.sub) {
                    continue;
                }
                self.complete(&op);
            } else if !op.mid_applied && op.mid <= now {
                op.kind.halfway(self, &op.sub);
                if let Some(o) = self.ops.get_mut(&id) {
                    o.mid_applied = true;
                }
            }
        }
    }

    fn complete(&mut self, op: &Operation) {
        let sub = op.sub.clone();
        let failure = op.failure.clone().or_else(|| op.kind.refuse(self, &sub));
        let ok = failure.is_none();
        op.kind.finish(self, &sub, ok);
        if let Some(o) = self.ops.get_mut(&op.id) {
            o.failure = failure;
            o.status = if ok {
                OpStatus::Succeeded
            } else {
                OpStatus::Failed
            };
            o.end_wall = Some(time::OffsetDateTime::now_utc());
            o.ended = Some(Instant::now());
        }
    }

    /// Starts a long-running operation on `resource_id` (named `name`); returns its id.
    pub fn start_op(
        &mut self,
        sub: &str,
        namespace: &'static str,
        location: &str,
        resource_id: &str,
        name: &str,
        kind: OpKind,
    ) -> String {
        let id = self.new_uuid();
        let key = resource_id.to_ascii_lowercase();
        let n = {
            let c = self.op_counts.entry(key.clone()).or_insert(0);
            *c += 1;
            *c
        };
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.cfg.seed ^ h ^ n.rotate_left(32));
        let slow = rng.random::<f64>() < self.cfg.slow_lro_rate;
        let fail_roll = rng.random::<f64>() < self.cfg.lro_failure_rate;
        let named = self.cfg.fail_lro_for.iter().any(|f| eq(f, name));
        let duration = if slow {
            self.cfg.slow_lro_delay
        } else {
            self.cfg.lro_delay
        };
        let now = Instant::now();
        let failure = (named || fail_roll).then(|| {
            (
                "ResourceOperationFailure".to_string(),
                format!("The resource operation completed with terminal provisioning state 'Failed'. (sandbox: failure injected for '{name}')"),
            )
        });
        let op = Operation {
            id: id.clone(),
            sub: sub.to_string(),
            namespace,
            location: location.to_string(),
            resource_id: resource_id.to_string(),
            kind,
            status: OpStatus::InProgress,
            start_wall: time::OffsetDateTime::now_utc(),
            end_wall: None,
            ended: None,
            mid: now + duration / 2,
            done_at: now + duration,
            mid_applied: false,
            failure,
        };
        self.ops.insert(id.clone(), op);
        id
    }

    /// `OperationStatusResult` (the `Microsoft.KubernetesConfiguration` shape) of operation `id`
    /// on `what` (like `extension 'monitor'`), served under the resource's `operations/{id}`.
    pub(crate) fn operation_status_result(
        &self,
        ctx: &Ctx,
        sub: &str,
        namespace: &str,
        what: &str,
        id: &str,
    ) -> Result<Response, ArmError> {
        only(ctx, &[Method::GET])?;
        let op = self
            .ops
            .get(id)
            .filter(|o| eq(&o.sub, sub) && o.namespace == namespace)
            .ok_or_else(|| {
                ArmError::new(
                    StatusCode::NOT_FOUND,
                    "OperationNotFound",
                    format!("The operation '{id}' on {what} was not found."),
                )
            })?;
        let mut v = json!({
            "id": ctx.path,
            "name": op.id,
            "status": match op.status {
                OpStatus::InProgress => "InProgress",
                OpStatus::Succeeded => "Succeeded",
                OpStatus::Failed => "Failed",
            },
            "properties": {},
        });
        if op.status == OpStatus::Failed
            && let Some((code, message)) = &op.failure
        {
            v["error"] = json!({"code": code, "message": message});
        }
        Ok(json_response(StatusCode::OK, &v))
    }

    /// `{status…}` of an operation, as served at its `Azure-AsyncOperation` URL.
    pub fn op_status_json(&self, op: &Operation) -> Value {
        let mut v = json!({
            "id": format!("/subscriptions/{}/providers/{}/locations/{}/operationStatuses/{}", op.sub, op.namespace, op.location, op.id),
            "name": op.id,
            "resourceId": op.resource_id,
            "status": match op.status { OpStatus::InProgress => "InProgress", OpStatus::Succeeded => "Succeeded", OpStatus::Failed => "Failed" },
            "startTime": rfc3339(op.start_wall),
            "percentComplete": match op.status { OpStatus::InProgress => if op.mid_applied { 50.0 } else { 0.0 }, _ => 100.0 },
        });
        if let Some(end) = op.end_wall {
            v["endTime"] = json!(rfc3339(end));
        }
        if op.status == OpStatus::Failed
            && let Some((code, message)) = &op.failure
        {
            v["error"] = json!({"code": code, "message": message});
        }
        v
    }

    /// Marks `resp` as the start of a long-running operation: its status at `status_url`
    /// (`Azure-AsyncOperation`), its result at `result_url` (`Location`) when there is one, and
    /// `Retry-After`.
    pub(crate) fn lro_headers(
        &self,
        resp: &mut Response,
        status_url: &str,
        result_url: Option<&str>,
    ) {
        set_header(
            resp,
            header::HeaderName::from_static("azure-asyncoperation"),
            status_url,
        );
        if let Some(url) = result_url {
            set_header(resp, header::LOCATION, url);
        }
        set_header(resp, header::RETRY_AFTER, &self.retry_after());
    }

    /// The `Retry-After` value for long-running operations.
    pub fn retry_after(&self) -> String {
        self.cfg.retry_after_secs.to_string()
    }

    /// The time an operation is expected to take (for tests).
    #[allow(dead_code)]
    pub fn lro_delay(&self) -> Duration {
        self.cfg.lro_delay
    }
}

/// The operation routes: `Microsoft.Resources` operation results, and every resource provider's
/// `locations/{l}/operationStatuses|operationResults/{id}`.
#[derive(Debug, Clone)]
enum OpRoute {
    /// `/subscriptions/{s}/operationresults/{id}`.
    Result(String, String),
    /// `/subscriptions/{s}/providers/{ns}/locations/{l}/operationStatuses|operationResults/{id}`.
    Rp {
        sub: String,
        ns: String,
        id: String,
        result: bool,
    },
}

/// Operation statuses and results.
pub(crate) const KIND: Kind = Kind {
    name: "operations",
    parse,
};

fn parse(s: &[&str], _path: &str) -> Parsed {
    let o = |x: &str| x.to_string();
    match s {
        [a, id, b, op] if eq(a, "subscriptions") && eq(b, "operationresults") => {
            route(OpRoute::Result(o(id), o(op)))
        }
        [a, id, b, ns, l, _loc, k, op]
            if eq(a, "subscriptions")
                && eq(b, "providers")
                && eq(l, "locations")
                && (eq(k, "operationStatuses") || eq(k, "operationResults")) =>
        {
            route(OpRoute::Rp {
                sub: o(id),
                ns: o(ns),
                id: o(op),
                result: eq(k, "operationResults"),
            })
        }
        _ => None,
    }
}

impl ArmRoute for OpRoute {
    fn versions(&self) -> ApiVersions {
        match self {
            OpRoute::Result(..) => ApiVersions::RESOURCES,
            OpRoute::Rp { ns, .. } if eq(ns, "Microsoft.ExtendedLocation") => ApiVersions {
                supported: super::catalog::CUSTOM_LOCATION_VERSIONS,
                rp_type: Some("customLocations"),
            },
            OpRoute::Rp { .. } => ApiVersions::KUBERNETES,
        }
    }

    fn subscription(&self) -> Option<&str> {
        match self {
            OpRoute::Result(s, _) | OpRoute::Rp { sub: s, .. } => Some(s),
        }
    }

    fn action(&self, _method: &Method, _path: &str) -> Option<(String, String)> {
        match self {
            OpRoute::Result(s, _) => Some((
                "Microsoft.Resources/subscriptions/operationresults/read".into(),
                sub_scope(s),
            )),
            // Not RBAC-checked (see the module's limits).
            OpRoute::Rp { .. } => None,
        }
    }

    fn handle(&self, st: &mut ArmState, ctx: &Ctx) -> Result<Response, ArmError> {
        match self {
            OpRoute::Result(s, id) => st.operation_result(ctx, s, id, "Microsoft.Resources"),
            OpRoute::Rp {
                sub,
                ns,
                id,
                result: true,
            } => st.operation_result(ctx, sub, id, ns),
            OpRoute::Rp { sub, ns, id, .. } => st.operation_status(ctx, sub, id, ns),
        }
    }
}

impl ArmState {
    fn operation_status(
        &self,
        ctx: &Ctx,
        s: &str,
        id: &str,
        ns: &str,
    ) -> Result<Response, ArmError> {
        only(ctx, &[Method::GET])?;
        let op = self
            .ops
            .get(id)
            .filter(|o| eq(&o.sub, s) && eq(o.namespace, ns))
            .ok_or_else(|| op_not_found(id))?;
        let mut resp = json_response(StatusCode::OK, &self.op_status_json(op));
        if op.status == OpStatus::InProgress {
            set_header(&mut resp, header::RETRY_AFTER, &self.retry_after());
        }
        Ok(resp)
    }

    fn operation_result(
        &self,
        ctx: &Ctx,
        s: &str,
        id: &str,
        ns: &str,
    ) -> Result<Response, ArmError> {
        only(ctx, &[Method::GET])?;
        let op = self
            .ops
            .get(id)
            .filter(|o| eq(&o.sub, s) && eq(o.namespace, ns))
            .ok_or_else(|| op_not_found(id))?;
        match op.status {
            OpStatus::InProgress => {
                let mut resp = StatusCode::ACCEPTED.into_response();
                let url = format!("{}{}?{}", ctx.base, ctx.path, ctx.raw_query);
                set_header(&mut resp, header::LOCATION, &url);
                set_header(&mut resp, header::RETRY_AFTER, &self.retry_after());
                Ok(resp)
            }
            OpStatus::Failed => {
                let (code, message) = op.failure.clone().unwrap_or_default();
                Err(ArmError::conflict(&code, message))
            }
            OpStatus::Succeeded => Ok(op.kind.result(self, s)),
        }
    }
}

fn op_not_found(id: &str) -> ArmError {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "OperationNotFound",
        format!("The operation '{id}' could not be found."),
    )
}
