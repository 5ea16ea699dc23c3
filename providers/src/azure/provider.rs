//! The Azure provider: subscription, resource provider registrations, role checks, resource
//! groups, connected clusters, the connectivity check, and prune discovery.
//!
//! Reads are batched where ARM allows (one provider list per plan; one tagged-resource list
//! and one tagged-group list for prune). Diffs compare only what the configuration declares (tags
//! are "at least these": tags added by Azure Policy or people are kept and never shown as
//! changes). Ownership is the tag `arcplan-stack=<stack>`: arcplan deletes only what carries it.

use super::arm::{ArmClient, ArmError, ArmErrorKind, ArmRequest};
use super::cloud::ApiKind;
use super::permissions::{Permission, missing, roles_granting};
use arcplan_engine::address::{Address, ResourceType as T};
use arcplan_engine::config::validate::STACK_TAG;
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use arcplan_engine::events::Event;
use arcplan_engine::plan::{Action, CheckResult, CheckStatus, PlanMode, Reason, ReasonCode};
use arcplan_engine::provider::*;
use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings of the Azure provider.
#[derive(Debug, Clone)]
pub struct AzureSettings {
    /// The stack (ownership tag value).
    pub stack: String,
    /// The subscription id.
    pub subscription: String,
    /// How long to wait for a provider registration.
    pub registration_timeout: Duration,
    /// How long to wait for a long-running operation.
    pub operation_timeout: Duration,
    /// How often to poll registration and connectivity.
    pub poll_interval: Duration,
}

impl AzureSettings {
    /// Defaults for a stack and subscription.
    pub fn new(stack: &str, subscription: &str) -> Self {
        Self {
            stack: stack.to_owned(),
            subscription: subscription.to_owned(),
            registration_timeout: Duration::from_secs(20 * 60),
            operation_timeout: Duration::from_secs(30 * 60),
            poll_interval: Duration::from_secs(5),
        }
    }
}

/// A subscription-wide list, or why it could not be read.
type ListResult = Result<Arc<Vec<Value>>, ArmError>;

/// The Azure provider.
pub struct AzureProvider {
    arm: Arc<ArmClient>,
    settings: AzureSettings,
    /// Subscription-wide lists read once per plan (providers, resource groups, connected
    /// clusters), cleared by any apply. Failures are kept too, so 500 readers do not retry a
    /// forbidden list 500 times.
    lists: tokio::sync::Mutex<HashMap<&'static str, ListResult>>,
}

const CC_TYPE: &str = "Microsoft.Kubernetes/connectedClusters";

fn diag_from(e: &ArmError, address: &Address) -> Diagnostic {
    let mut d = Diagnostic::error("azure", e.to_string()).with_address(address.to_string());
    if let Some(h) = e.hint() {
        d = d.with_hint(h);
    }
    d
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn norm_location(l: &str) -> String {
    l.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

fn tags_of(v: &Value) -> Map<String, Value> {
    v.get("tags")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Desired tags missing or different in `live`.
fn tag_diff(desired: &Value, live: &Value) -> Vec<String> {
    let live = tags_of(live);
    tags_of(desired)
        .into_iter()
        .filter(|(k, v)| {
            live.iter()
                .find(|(lk, _)| lk.eq_ignore_ascii_case(k))
                .map(|(_, lv)| lv)
                != Some(v)
        })
        .map(|(k, _)| k)
        .collect()
}

fn merged_tags(desired: &Value, live: &Value) -> Value {
    let mut t = tags_of(live);
    for (k, v) in tags_of(desired) {
        t.retain(|lk, _| !lk.eq_ignore_ascii_case(&k));
        t.insert(k, v);
    }
    Value::Object(t)
}

fn owner_of(live: &Value) -> Option<String> {
    tags_of(live)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(STACK_TAG))
        .and_then(|(_, v)| v.as_str().map(str::to_owned))
}

fn digest(v: &Value) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(v.to_string().as_bytes());
    h.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

impl AzureProvider {
    /// A provider over an ARM client.
    pub fn new(arm: Arc<ArmClient>, settings: AzureSettings) -> Self {
        Self {
            arm,
            settings,
            lists: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The ARM client (for request counts).
    pub fn arm(&self) -> &ArmClient {
        &self.arm
    }

    fn sub_path(&self) -> String {
        format!("/subscriptions/{}", self.settings.subscription)
    }

    fn rg_path(&self, rg: &str) -> String {
        format!("{}/resourcegroups/{rg}", self.sub_path())
    }

    fn cc_path(&self, desired: &Value, before: Option<&Value>, name: &str) -> String {
        if let Some(id) = before.map(|b| s(b, "id")).filter(|id| !id.is_empty()) {
            return id.to_owned();
        }
        format!(
            "{}/resourceGroups/{}/providers/{CC_TYPE}/{name}",
            self.sub_path(),
            s(desired, "resourceGroup")
        )
    }

    fn req(&self, method: Method, path: &str, api: ApiKind, body: Option<Value>) -> ArmRequest {
        self.arm.request(method, path, api, body)
    }

    /// A subscription-wide list, read once per plan.
    async fn cached_list(
        &self,
        key: &'static str,
        path: &str,
        api: ApiKind,
    ) -> Result<Arc<Vec<Value>>, ArmError> {
        let mut lists = self.lists.lock().await;
        if let Some(r) = lists.get(key) {
            return r.clone();
        }
        let req = self.req(Method::GET, path, api, None);
        let result = self.arm.list_all(&req).await.map(Arc::new);
        lists.insert(key, result.clone());
        result
    }

    async fn provider_list(&self) -> Result<Arc<Vec<Value>>, ArmError> {
        self.cached_list(
            "providers",
            &format!("{}/providers", self.sub_path()),
            ApiKind::Resources,
        )
        .await
    }

    async fn group_list(&self) -> Result<Arc<Vec<Value>>, ArmError> {
        self.cached_list(
            "groups",
            &format!("{}/resourcegroups", self.sub_path()),
            ApiKind::Resources,
        )
        .await
    }

    async fn cluster_list(&self) -> Result<Arc<Vec<Value>>, ArmError> {
        self.cached_list(
            "clusters",
            &format!("{}/providers/{CC_TYPE}", self.sub_path()),
            ApiKind::ConnectedClusters,
        )
        .await
    }

    async fn forget_cached_reads(&self) {
        self.lists.lock().await.clear();
    }

    // ---- read ----

    async fn read_subscription(&self, address: &Address, desired: &Value) -> ReadResponse {
        let req = self.req(Method::GET, &self.sub_path(), ApiKind::Subscriptions, None);
        let mut r = ReadResponse::default();
        match self.arm.send_allow_404(&req).await {
            Ok(resp) if resp.status == 404 => r.diagnostics.push(
                Diagnostic::error(
                    "subscription-not-visible",
                    format!("subscription {} is not visible to the credential", self.settings.subscription),
                )
                .with_address(address.to_string())
                .with_hint("check `azure.subscription`, `azure.tenant` and that the credential has a role on the subscription (`az account list`)"),
            ),
            Ok(resp) => {
                let b = resp.body;
                let tenant = s(&b, "tenantId");
                if let Some(want) = desired.get("tenantId").and_then(Value::as_str)
                    && !tenant.is_empty()
                    && !tenant.eq_ignore_ascii_case(want)
                {
                    r.diagnostics.push(
                        Diagnostic::error(
                            "tenant-mismatch",
                            format!("subscription {} belongs to tenant {tenant}, but `azure.tenant` is {want}", self.settings.subscription),
                        )
                        .with_address(address.to_string())
                        .with_hint("correct `azure.tenant`"),
                    );
                }
                let state = s(&b, "state");
                if !state.is_empty() && state != "Enabled" {
                    r.diagnostics.push(
                        Diagnostic::warning("subscription-state", format!("subscription {} is {state}", self.settings.subscription))
                            .with_address(address.to_string()),
                    );
                }
                r.state = Some(json!({
                    "subscriptionId": s(&b, "subscriptionId"),
                    "displayName": s(&b, "displayName"),
                    "tenantId": tenant,
                    "state": state,
                }));
            }
            Err(e) if e.status == Some(401) || e.status == Some(403) => r.diagnostics.push(
                diag_from(&e, address).with_hint(
                    e.hint().unwrap_or_else(|| "the credential cannot read the subscription; check its role assignments".into()),
                ),
            ),
            Err(e) => r.diagnostics.push(diag_from(&e, address)),
        }
        r
    }

    async fn read_resource_provider(&self, address: &Address) -> ReadResponse {
        let mut r = ReadResponse::default();
        match self.provider_list().await {
            Ok(list) => match list
                .iter()
                .find(|p| s(p, "namespace").eq_ignore_ascii_case(&address.name))
            {
                Some(p) => {
                    r.state = Some(
                        json!({"namespace": s(p, "namespace"), "registrationState": s(p, "registrationState")}),
                    );
                    r.version = Some(s(p, "registrationState").to_owned());
                }
                None => r.diagnostics.push(
                    Diagnostic::error(
                        "unknown-provider",
                        format!(
                            "the subscription has no resource provider `{}`",
                            address.name
                        ),
                    )
                    .with_address(address.to_string())
                    .with_hint(
                        "check the namespace's spelling (`az provider list --query [].namespace`)",
                    ),
                ),
            },
            Err(e) if e.status == Some(403) => {
                // The Arc Onboarding role cannot read registrations; like `az connectedk8s
                // connect`, go on and let a missing registration surface at create time.
                r.state = Some(json!({"namespace": address.name, "registrationState": "Unknown"}));
                r.diagnostics.push(
                    Diagnostic::warning(
                        "registration-unknown",
                        format!("cannot read the registration of {} (403: the credential may not read resource providers); assuming it is registered", address.name),
                    )
                    .with_address(address.to_string())
                    .with_hint("if it is not, creating the connected cluster fails with MissingSubscriptionRegistration; a role with `*/register/action` (Contributor) can register it"),
                );
            }
            Err(e) => r.diagnostics.push(diag_from(&e, address)),
        }
        r
    }

    async fn read_resource_group(&self, address: &Address) -> ReadResponse {
        let mut r = ReadResponse::default();
        let found = match self.group_list().await {
            Ok(list) => Ok(list
                .iter()
                .find(|g| s(g, "name").eq_ignore_ascii_case(&address.name))
                .cloned()),
            // Without the right to list, read the one group.
            Err(e) if e.status == Some(403) => {
                let req = self.req(
                    Method::GET,
                    &self.rg_path(&address.name),
                    ApiKind::Resources,
                    None,
                );
                self.arm
                    .send_allow_404(&req)
                    .await
                    .map(|resp| (resp.status != 404).then_some(resp.body))
            }
            Err(e) => Err(e),
        };
        match found {
            Ok(None) => {}
            Ok(Some(b)) => {
                let state = json!({
                    "id": s(&b, "id"),
                    "name": s(&b, "name"),
                    "location": s(&b, "location"),
                    "tags": tags_of(&b),
                    "provisioningState": b.pointer("/properties/provisioningState").cloned().unwrap_or(Value::Null),
                });
                r.version = Some(digest(&json!([state["location"], state["tags"]])));
                r.state = Some(state);
            }
            Err(e) => r.diagnostics.push(diag_from(&e, address)),
        }
        r
    }

    async fn read_connected_cluster(&self, address: &Address, desired: &Value) -> ReadResponse {
        let mut r = ReadResponse::default();
        let rg = s(desired, "resourceGroup");
        let found = match self.cluster_list().await {
            Ok(list) => Ok(list
                .iter()
                .find(|c| {
                    s(c, "name").eq_ignore_ascii_case(&address.name)
                        && rg_of(s(c, "id")).eq_ignore_ascii_case(rg)
                })
                .cloned()),
            // Without the right to list at the subscription, read the one cluster.
            Err(e) if e.status == Some(403) => {
                let path = self.cc_path(desired, None, &address.name);
                let req = self.req(Method::GET, &path, ApiKind::ConnectedClusters, None);
                self.arm
                    .send_allow_404(&req)
                    .await
                    .map(|resp| (resp.status != 404).then_some(resp.body))
            }
            Err(e) => Err(e),
        };
        match found {
            Ok(None) => {}
            Ok(Some(b)) => {
                let state = cluster_state(&b);
                r.version = Some(digest(&json!([
                    state["location"],
                    state["tags"],
                    state["agentPublicKeyCertificate"],
                    state["distribution"],
                    state["infrastructure"],
                    state["agentAutoUpgrade"]
                ])));
                r.state = Some(state);
            }
            Err(e) => r.diagnostics.push(diag_from(&e, address)),
        }
        r
    }

    // ---- plan ----

    fn plan_resource_provider(&self, req: &PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse::default();
        let state = req
            .prior
            .as_ref()
            .map(|p| s(p, "registrationState").to_owned())
            .unwrap_or_default();
        let registered = matches!(state.as_str(), "Registered" | "Registering" | "Unknown");
        if req.mode == PlanMode::Destroy || registered {
            resp.action = Some(Action::NoOp);
            resp.outputs = req.prior.clone();
            return resp;
        }
        resp.action = Some(Action::Create);
        resp.reason = Some(Reason::new(
            ReasonCode::NotFound,
            format!(
                "{} is {state} in the subscription; it will be registered",
                req.address.name
            ),
        ));
        resp.after =
            Some(json!({"namespace": req.address.name, "registrationState": "Registered"}));
        resp
    }

    async fn plan_resource_group(&self, req: &PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse::default();
        let addr = req.address.to_string();
        let Some(prior) = &req.prior else {
            resp.action = Some(if req.mode == PlanMode::Destroy {
                Action::NoOp
            } else {
                Action::Create
            });
            resp.after = Some(req.desired.clone());
            return resp;
        };
        let owner = owner_of(prior);
        if req.mode == PlanMode::Destroy {
            resp.action = Some(Action::NoOp);
            resp.outputs = Some(prior.clone());
            if owner.as_deref() != Some(self.settings.stack.as_str()) {
                resp.diagnostics.push(
                    Diagnostic::warning(
                        "not-owned",
                        format!(
                            "resource group {} is not tagged {STACK_TAG}={}; destroy leaves it",
                            req.address.name, self.settings.stack
                        ),
                    )
                    .with_address(addr),
                );
                return resp;
            }
            return match self.foreign_resources(&req.address.name).await {
                Ok(foreign) if foreign.is_empty() => {
                    resp.action = Some(Action::Delete);
                    resp.reason = Some(Reason::new(
                        ReasonCode::DeleteBecauseDestroy,
                        "destroy: the group holds nothing but this stack's resources",
                    ));
                    resp.outputs = None;
                    resp
                }
                Ok(foreign) => {
                    resp.diagnostics.push(
                        Diagnostic::warning(
                            "not-empty",
                            format!("resource group {} is not deleted: it holds {} resource(s) this stack does not manage: {}", req.address.name, foreign.len(), foreign.join(", ")),
                        )
                        .with_address(addr),
                    );
                    resp
                }
                Err(e) if e.status == Some(403) => {
                    resp.diagnostics.push(
                        Diagnostic::warning(
                            "not-deleted",
                            format!("resource group {} is left: the credential may not list what it holds, so arcplan cannot tell it is empty", req.address.name),
                        )
                        .with_address(addr),
                    );
                    resp
                }
                Err(e) => {
                    resp.diagnostics.push(diag_from(&e, &req.address));
                    resp
                }
            };
        }
        if let Some(o) = &owner
            && o != &self.settings.stack
        {
            resp.diagnostics.push(
                Diagnostic::error("owned-by-another-stack", format!("resource group {} belongs to stack `{o}` ({STACK_TAG}={o})", req.address.name))
                    .with_address(addr)
                    .with_hint(format!("use another group, or set `stack: {o}` if this file is meant to manage that stack")),
            );
            return resp;
        }
        let want = s(&req.desired, "location");
        if !want.is_empty() && norm_location(want) != norm_location(s(prior, "location")) {
            resp.diagnostics.push(
                Diagnostic::error(
                    "immutable-location",
                    format!("resource group {} is in {}, the configuration says {want}; a group's location cannot change", req.address.name, s(prior, "location")),
                )
                .with_address(addr)
                .with_hint(format!("set `location: {}` for this group, or use another group name", s(prior, "location"))),
            );
            return resp;
        }
        let changed = tag_diff(&req.desired, prior);
        if changed.is_empty() {
            resp.action = Some(Action::NoOp);
            resp.outputs = Some(prior.clone());
        } else {
            let mut after = prior.clone();
            after["tags"] = merged_tags(&req.desired, prior);
            resp.action = Some(Action::Update);
            resp.after = Some(after);
            resp.outputs = Some(prior.clone());
            if owner.is_none() {
                resp.reason = Some(Reason::new(
                    ReasonCode::Other,
                    format!(
                        "adopts the existing group into stack {}",
                        self.settings.stack
                    ),
                ));
            }
        }
        resp
    }

    async fn foreign_resources(&self, rg: &str) -> Result<Vec<String>, ArmError> {
        let req = self.req(
            Method::GET,
            &format!("{}/resources", self.rg_path(rg)),
            ApiKind::Resources,
            None,
        );
        let items = self.arm.list_all(&req).await?;
        Ok(items
            .iter()
            .filter(|r| owner_of(r).as_deref() != Some(self.settings.stack.as_str()))
            .map(|r| format!("{} ({})", s(r, "name"), s(r, "type")))
            .collect())
    }

    fn plan_connected_cluster(&self, req: &PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse::default();
        let d = &req.desired;
        let key_unknown = req
            .unknown
            .iter()
            .any(|u| u == "/agentPublicKeyCertificate");
        let Some(prior) = &req.prior else {
            resp.action = Some(if req.mode == PlanMode::Destroy {
                Action::NoOp
            } else {
                Action::Create
            });
            let mut after = d.clone();
            after["id"] = Value::Null;
            resp.after = Some(after);
            return resp;
        };
        let owner = owner_of(prior);
        let ours = owner.as_deref() == Some(self.settings.stack.as_str());
        if req.mode == PlanMode::Destroy {
            if ours {
                resp.action = Some(Action::Delete);
                resp.reason = Some(Reason::new(
                    ReasonCode::DeleteBecauseDestroy,
                    "destroy: disconnects the cluster from Azure Arc",
                ));
            } else {
                resp.action = Some(Action::NoOp);
                resp.outputs = Some(prior.clone());
                resp.diagnostics.push(
                    Diagnostic::warning(
                        "not-owned",
                        format!(
                            "connected cluster {} is not tagged {STACK_TAG}={}; destroy leaves it",
                            req.address.name, self.settings.stack
                        ),
                    )
                    .with_address(req.address.to_string()),
                );
            }
            return resp;
        }
        if let Some(o) = &owner
            && !ours
        {
            resp.diagnostics.push(
                Diagnostic::error(
                    "owned-by-another-stack",
                    format!(
                        "connected cluster {} belongs to stack `{o}`",
                        req.address.name
                    ),
                )
                .with_address(req.address.to_string())
                .with_hint(format!(
                    "rename the cluster in this file, or manage it from stack `{o}`"
                )),
            );
            return resp;
        }
        let mut replace = Vec::new();
        let mut why = Vec::new();
        if norm_location(s(d, "location")) != norm_location(s(prior, "location")) {
            replace.push("/location".to_owned());
            why.push(format!(
                "location {} -> {} cannot change in place",
                s(prior, "location"),
                s(d, "location")
            ));
        }
        let identity = |v: &Value| {
            v.pointer("/identity/type")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
        };
        if identity(d) != identity(prior) {
            replace.push("/identity".to_owned());
            why.push("the identity type cannot change in place".to_owned());
        }
        if key_unknown {
            replace.push("/agentPublicKeyCertificate".to_owned());
            why.push("the onboarding key Secret is missing from the cluster, and a new key means a new connected cluster".to_owned());
        } else if s(d, "agentPublicKeyCertificate") != s(prior, "agentPublicKeyCertificate") {
            replace.push("/agentPublicKeyCertificate".to_owned());
            why.push("the key in Secret azure-arc/azure-arc-connect-privatekey does not match the resource's agentPublicKeyCertificate".to_owned());
        }
        if !s(d, "infrastructure").eq_ignore_ascii_case(s(prior, "infrastructure")) {
            replace.push("/infrastructure".to_owned());
            why.push(format!(
                "infrastructure {} -> {} cannot change in place",
                s(prior, "infrastructure"),
                s(d, "infrastructure")
            ));
        }
        let mut after = prior.clone();
        for k in [
            "location",
            "distribution",
            "infrastructure",
            "agentPublicKeyCertificate",
            "agentAutoUpgrade",
            "identity",
        ] {
            if let Some(v) = d.get(k) {
                after[k] = v.clone();
            }
        }
        after["tags"] = merged_tags(d, prior);
        if req.replace_requested || !replace.is_empty() {
            resp.action = Some(Action::Replace);
            resp.reason = Some(if req.replace_requested && replace.is_empty() {
                Reason::new(
                    ReasonCode::Requested,
                    "replacement was requested (--replace); the agents must be onboarded again",
                )
            } else {
                Reason::new(
                    ReasonCode::CannotUpdate,
                    format!("{}; the agents must be onboarded again", why.join("; ")),
                )
            });
            resp.requires_replace = replace;
            after["tags"] = d.get("tags").cloned().unwrap_or(Value::Null);
            resp.after = Some(after);
            return resp;
        }
        let changed = !tag_diff(d, prior).is_empty()
            || !s(d, "distribution").eq_ignore_ascii_case(s(prior, "distribution"))
            || d.get("agentAutoUpgrade") != prior.get("agentAutoUpgrade");
        resp.outputs = Some(cluster_outputs(prior));
        if changed {
            resp.action = Some(Action::Update);
            resp.after = Some(after);
            if owner.is_none() {
                resp.reason = Some(Reason::new(
                    ReasonCode::Other,
                    format!(
                        "adopts the existing connected cluster into stack {}",
                        self.settings.stack
                    ),
                ));
            }
        } else {
            resp.action = Some(Action::NoOp);
        }
        resp
    }

    // ---- apply ----

    async fn apply_resource_provider(&self, req: &ApplyRequest) -> Result<Option<Value>, ArmError> {
        let ns = &req.change.address.name;
        let mut register = self.req(
            Method::POST,
            &format!("{}/providers/{ns}/register", self.sub_path()),
            ApiKind::Resources,
            None,
        );
        // Registering twice is harmless: ARM's register is idempotent.
        register.retryable = true;
        self.arm.send(&register).await?;
        let started = Instant::now();
        let get = self.req(
            Method::GET,
            &format!("{}/providers/{ns}", self.sub_path()),
            ApiKind::Resources,
            None,
        );
        loop {
            let resp = self.arm.send(&get).await?;
            let state = s(&resp.body, "registrationState").to_owned();
            if state == "Registered" {
                return Ok(Some(json!({"namespace": ns, "registrationState": state})));
            }
            if started.elapsed() > self.settings.registration_timeout {
                return Err(ArmError {
                    kind: ArmErrorKind::Timeout,
                    status: None,
                    code: "RegistrationTimeout".into(),
                    message: format!(
                        "{ns} is still {state} after {}s",
                        started.elapsed().as_secs()
                    ),
                    request: format!("GET {}", get.display_path()),
                    request_id: resp.request_id().map(str::to_owned),
                    correlation_id: String::new(),
                });
            }
            req.events.emit(Event::ApplyProgress {
                address: req.change.address.clone(),
                message: format!("{state}…"),
                elapsed_seconds: started.elapsed().as_secs_f64(),
            });
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = req.cancel.cancelled() => {
                    return Err(ArmError { kind: ArmErrorKind::Cancelled, status: None, code: "Interrupted".into(), message: format!("stopped waiting for {ns} to register; registration goes on in Azure"), request: format!("GET {}", get.display_path()), request_id: None, correlation_id: String::new() });
                }
            }
        }
    }

    fn progress<'a>(
        &self,
        req: &'a ApplyRequest,
        started: Instant,
    ) -> impl Fn(String) + Send + Sync + 'a {
        move |message| {
            req.events.emit(Event::ApplyProgress {
                address: req.change.address.clone(),
                message,
                elapsed_seconds: started.elapsed().as_secs_f64(),
            })
        }
    }

    async fn apply_resource_group(&self, req: &ApplyRequest) -> Result<Option<Value>, ArmError> {
        let path = self.rg_path(&req.change.address.name);
        let started = Instant::now();
        match req.change.action {
            Action::Create => {
                let body = json!({"location": s(&req.desired, "location"), "tags": req.desired.get("tags").cloned().unwrap_or(json!({}))});
                let resp = self
                    .arm
                    .send(&self.req(Method::PUT, &path, ApiKind::Resources, Some(body)))
                    .await?;
                Ok(Some(resp.body))
            }
            Action::Update => {
                let live = self
                    .arm
                    .send(&self.req(Method::GET, &path, ApiKind::Resources, None))
                    .await?;
                let body = json!({"tags": merged_tags(&req.desired, &live.body)});
                let resp = self
                    .arm
                    .send(&self.req(Method::PATCH, &path, ApiKind::Resources, Some(body)))
                    .await?;
                Ok(Some(resp.body))
            }
            Action::Delete => {
                let resp = self
                    .arm
                    .send_allow_404(&self.req(Method::DELETE, &path, ApiKind::Resources, None))
                    .await?;
                if resp.status != 404 {
                    self.arm
                        .wait(
                            &resp,
                            &format!("deleting resource group {}", req.change.address.name),
                            self.settings.operation_timeout,
                            &req.cancel,
                            &self.progress(req, started),
                        )
                        .await?;
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn cluster_body(&self, d: &Value) -> Value {
        let mut props = json!({
            "agentPublicKeyCertificate": s(d, "agentPublicKeyCertificate"),
            "distribution": s(d, "distribution"),
            "infrastructure": s(d, "infrastructure"),
        });
        if d.get("agentAutoUpgrade") == Some(&json!(false)) {
            props["arcAgentProfile"] = json!({"agentAutoUpgrade": "Disabled"});
        }
        json!({
            "location": s(d, "location"),
            "tags": d.get("tags").cloned().unwrap_or(json!({})),
            "identity": {"type": d.pointer("/identity/type").and_then(Value::as_str).unwrap_or("SystemAssigned")},
            "properties": props,
        })
    }

    async fn put_cluster(
        &self,
        req: &ApplyRequest,
        path: &str,
        body: Value,
        started: Instant,
    ) -> Result<Value, ArmError> {
        let resp = self
            .arm
            .send(&self.req(Method::PUT, path, ApiKind::ConnectedClusters, Some(body)))
            .await?;
        self.arm
            .wait(
                &resp,
                &format!("creating connected cluster {}", req.change.address.name),
                self.settings.operation_timeout,
                &req.cancel,
                &self.progress(req, started),
            )
            .await?;
        let done = self
            .arm
            .send(&self.req(Method::GET, path, ApiKind::ConnectedClusters, None))
            .await?;
        match done
            .body
            .pointer("/properties/provisioningState")
            .and_then(Value::as_str)
        {
            Some("Failed") | Some("Canceled") => Err(ArmError {
                kind: ArmErrorKind::OperationFailed,
                status: None,
                code: "ProvisioningFailed".into(),
                message: format!(
                    "connected cluster {} ended in provisioningState {}",
                    req.change.address.name,
                    done.body
                        .pointer("/properties/provisioningState")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                ),
                request: format!("GET {path}"),
                request_id: done.request_id().map(str::to_owned),
                correlation_id: String::new(),
            }),
            _ => Ok(cluster_outputs(&cluster_state(&done.body))),
        }
    }

    async fn delete_cluster(
        &self,
        req: &ApplyRequest,
        path: &str,
        started: Instant,
    ) -> Result<(), ArmError> {
        let resp = self
            .arm
            .send_allow_404(&self.req(Method::DELETE, path, ApiKind::ConnectedClusters, None))
            .await?;
        if resp.status == 404 || resp.status == 204 {
            return Ok(());
        }
        self.arm
            .wait(
                &resp,
                &format!("deleting connected cluster {}", req.change.address.name),
                self.settings.operation_timeout,
                &req.cancel,
                &self.progress(req, started),
            )
            .await?;
        Ok(())
    }

    async fn apply_connected_cluster(&self, req: &ApplyRequest) -> Result<Option<Value>, ArmError> {
        let name = &req.change.address.name;
        let path = self.cc_path(&req.desired, req.change.before.as_ref(), name);
        let started = Instant::now();
        match req.change.action {
            Action::Create => Ok(Some(
                self.put_cluster(req, &path, self.cluster_body(&req.desired), started)
                    .await?,
            )),
            Action::Replace => {
                self.delete_cluster(req, &path, started).await?;
                Ok(Some(
                    self.put_cluster(req, &path, self.cluster_body(&req.desired), started)
                        .await?,
                ))
            }
            Action::Update => {
                let live = self
                    .arm
                    .send(&self.req(Method::GET, &path, ApiKind::ConnectedClusters, None))
                    .await?;
                let live_state = cluster_state(&live.body);
                if req.desired.get("agentAutoUpgrade") != live_state.get("agentAutoUpgrade") {
                    // Auto-upgrade is not patchable: PUT the whole resource, key unchanged.
                    let mut d = req.desired.clone();
                    d["tags"] = merged_tags(&req.desired, &live_state);
                    return Ok(Some(
                        self.put_cluster(req, &path, self.cluster_body(&d), started)
                            .await?,
                    ));
                }
                let body = json!({
                    "tags": merged_tags(&req.desired, &live_state),
                    "properties": {"distribution": s(&req.desired, "distribution")},
                });
                let resp = self
                    .arm
                    .send(&self.req(Method::PATCH, &path, ApiKind::ConnectedClusters, Some(body)))
                    .await?;
                self.arm
                    .wait(
                        &resp,
                        &format!("updating connected cluster {name}"),
                        self.settings.operation_timeout,
                        &req.cancel,
                        &self.progress(req, started),
                    )
                    .await?;
                let done = self
                    .arm
                    .send(&self.req(Method::GET, &path, ApiKind::ConnectedClusters, None))
                    .await?;
                Ok(Some(cluster_outputs(&cluster_state(&done.body))))
            }
            Action::Delete => {
                self.delete_cluster(req, &path, started).await?;
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    // ---- checks ----

    async fn check_roles(&self, req: &CheckRequest) -> CheckResponse {
        let d = &req.desired;
        let covers: Vec<String> = d
            .get("covers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut needed: Vec<String> = Vec::new();
        let mut group_created = false;
        for c in req
            .changes
            .iter()
            .filter(|c| covers.contains(&c.address.to_string()))
        {
            let mut add = |a: &str| {
                if !needed.iter().any(|n| n.eq_ignore_ascii_case(a)) {
                    needed.push(a.to_owned());
                }
            };
            match (&c.address.rtype, c.action) {
                (t, Action::Create) if *t == T::RESOURCE_PROVIDER => {
                    add(&format!("{}/register/action", c.address.name))
                }
                (t, Action::Create) if *t == T::RESOURCE_GROUP => {
                    group_created = true;
                    add("Microsoft.Resources/subscriptions/resourceGroups/write")
                }
                (t, Action::Update) if *t == T::RESOURCE_GROUP => {
                    add("Microsoft.Resources/subscriptions/resourceGroups/write")
                }
                (t, Action::Delete) if *t == T::RESOURCE_GROUP => {
                    add("Microsoft.Resources/subscriptions/resourceGroups/delete")
                }
                (t, Action::Create | Action::Update) if *t == T::CONNECTED_CLUSTER => {
                    add("Microsoft.Kubernetes/connectedClusters/write");
                    add("Microsoft.Kubernetes/connectedClusters/read");
                }
                (t, Action::Replace) if *t == T::CONNECTED_CLUSTER => {
                    add("Microsoft.Kubernetes/connectedClusters/delete");
                    add("Microsoft.Kubernetes/connectedClusters/write");
                }
                (t, Action::Delete) if *t == T::CONNECTED_CLUSTER => {
                    add("Microsoft.Kubernetes/connectedClusters/delete")
                }
                _ => {}
            }
        }
        let scope = if group_created || d.get("scope").is_none() {
            s(d, "fallbackScope")
        } else {
            s(d, "scope")
        };
        let scope = if scope.is_empty() {
            s(d, "scope").to_owned()
        } else {
            scope.to_owned()
        };
        let mut result = CheckResult {
            address: req.address.clone(),
            status: CheckStatus::Pass,
            summary: String::new(),
            fix: None,
            details: None,
            depends_on: Vec::new(),
            desired: None,
        };
        let mut diagnostics = Diagnostics::new();
        if needed.is_empty() {
            result.summary = format!("no planned change needs permissions at {scope}");
            return CheckResponse {
                result,
                diagnostics,
            };
        }
        let list = self.req(
            Method::GET,
            &format!("{scope}/providers/Microsoft.Authorization/permissions"),
            ApiKind::Authorization,
            None,
        );
        let perms: Vec<Permission> = match self.arm.list_all(&list).await {
            Ok(items) => items.iter().map(Permission::from_json).collect(),
            Err(e) => {
                diagnostics.push(diag_from(&e, &req.address));
                result.status = CheckStatus::Fail;
                result.summary = format!("cannot read the credential's permissions at {scope}");
                return CheckResponse {
                    result,
                    diagnostics,
                };
            }
        };
        let absent = missing(&perms, &needed);
        let principal = match (
            self.arm.token_claim("appid").await,
            self.arm.token_claim("oid").await,
        ) {
            (Some(app), Some(oid)) => format!("application {app} (object id {oid})"),
            (None, Some(oid)) => format!("object id {oid}"),
            (Some(app), None) => format!("application {app}"),
            _ => "the signed-in principal".to_owned(),
        };
        let preferred: Vec<String> = d
            .get("requireAnyRole")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if absent.is_empty() {
            result.summary = format!("{principal} may {} at {scope}", needed.join(", "));
        } else {
            let roles = roles_granting(&needed, &preferred);
            result.status = CheckStatus::Fail;
            result.summary = format!("{principal} lacks {} at {scope}", absent.join(", "));
            let assignee = self
                .arm
                .token_claim("oid")
                .await
                .unwrap_or_else(|| "<principal>".into());
            result.fix = Some(match roles.first() {
                Some(r) => format!(
                    "grant {} at {scope}, e.g. `az role assignment create --assignee {assignee} --role \"{r}\" --scope {scope}`",
                    roles
                        .iter()
                        .map(|r| format!("\"{r}\""))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
                None => format!(
                    "grant a role that includes {} at {scope}",
                    absent.join(", ")
                ),
            });
            result.details = Some(
                json!({"principal": principal, "scope": scope, "missing": absent, "needed": needed, "rolesThatGrant": roles}),
            );
        }
        CheckResponse {
            result,
            diagnostics,
        }
    }

    async fn check_connectivity(&self, req: &CheckRequest) -> CheckResponse {
        let d = &req.desired;
        let mut result = CheckResult {
            address: req.address.clone(),
            status: CheckStatus::Pending,
            summary: "waits for Azure to show the cluster Connected".into(),
            fix: None,
            details: None,
            depends_on: Vec::new(),
            desired: None,
        };
        let mut diagnostics = Diagnostics::new();
        if req.phase == CheckPhase::Plan {
            return CheckResponse {
                result,
                diagnostics,
            };
        }
        let id = s(d, "connectedClusterId").to_owned();
        let timeout =
            humantime::parse_duration(s(d, "timeout")).unwrap_or(Duration::from_secs(20 * 60));
        let started = Instant::now();
        let get = self.req(Method::GET, &id, ApiKind::ConnectedClusters, None);
        loop {
            let last = match self.arm.send(&get).await {
                Ok(resp) => cluster_state(&resp.body),
                Err(e) => {
                    diagnostics.push(diag_from(&e, &req.address));
                    result.status = CheckStatus::Fail;
                    result.summary = "cannot read the connected cluster".into();
                    return CheckResponse {
                        result,
                        diagnostics,
                    };
                }
            };
            let status = s(&last, "connectivityStatus").to_owned();
            if status == "Connected" {
                result.status = CheckStatus::Pass;
                result.summary = format!(
                    "Connected: agent {}, Kubernetes {}, {} nodes, {} cores",
                    s(&last, "agentVersion"),
                    s(&last, "kubernetesVersion"),
                    last.get("totalNodeCount").cloned().unwrap_or(Value::Null),
                    last.get("totalCoreCount").cloned().unwrap_or(Value::Null)
                );
                result.details = Some(cluster_outputs(&last));
                return CheckResponse {
                    result,
                    diagnostics,
                };
            }
            if started.elapsed() >= timeout || req.cancel.is_cancelled() {
                result.status = CheckStatus::Fail;
                result.summary = if req.cancel.is_cancelled() {
                    let waited = humantime::format_duration(Duration::from_secs(
                        started.elapsed().as_secs(),
                    ));
                    format!("still {status} after {waited} (interrupted)")
                } else {
                    // The configured value, as written (`agents.connectTimeout`).
                    format!(
                        "still {status} after {} (agents.connectTimeout)",
                        crate::kubernetes::readiness::configured(timeout)
                    )
                };
                result.fix = Some(match status.as_str() {
                    "Connecting" => "the agents have not reported to Azure yet: check `kubectl -n azure-arc get pods`, outbound access to Azure (proxy, firewall), and that the key in Secret azure-arc/azure-arc-connect-privatekey matches the resource (run plan)".into(),
                    "Offline" | "Expired" => "the agents stopped reporting: check the cluster's outbound connectivity and the agents' logs (`kubectl -n azure-arc logs deploy/clusterconnect-agent`)".into(),
                    "AgentNotInstalled" => "the agents are not installed: run apply again".into(),
                    _ => "check `kubectl -n azure-arc get pods` and the cluster's outbound connectivity".into(),
                });
                result.details = Some(cluster_outputs(&last));
                return CheckResponse {
                    result,
                    diagnostics,
                };
            }
            req.events.emit(Event::ApplyProgress {
                address: req.address.clone(),
                message: format!("connectivityStatus {status}"),
                elapsed_seconds: started.elapsed().as_secs_f64(),
            });
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = req.cancel.cancelled() => {}
            }
        }
    }

    // ---- discover ----

    /// Resources of the stack, from the same subscription-wide lists the reads used (no extra
    /// request on a plan that read them already).
    async fn discover_owned(&self, req: &DiscoverRequest) -> DiscoverResponse {
        let mut out = DiscoverResponse::default();
        let ours = |v: &Value| owner_of(v).as_deref() == Some(req.stack.as_str());
        if req.types.contains(&T::CONNECTED_CLUSTER) {
            match self.cluster_list().await {
                Ok(items) => {
                    for c in items.iter().filter(|c| ours(c)) {
                        let rg = rg_of(s(c, "id"));
                        out.resources.push(Discovered {
                            address: Address::new(T::CONNECTED_CLUSTER, s(c, "name")),
                            state: cluster_state(c),
                            version: None,
                            depends_on: vec![Address::new(T::RESOURCE_GROUP, rg)],
                        });
                    }
                }
                Err(e) => out.diagnostics.push(discover_error(&e)),
            }
        }
        if req.types.contains(&T::RESOURCE_GROUP) {
            match self.group_list().await {
                Ok(items) => {
                    for g in items.iter().filter(|g| ours(g)) {
                        out.resources.push(Discovered {
                            address: Address::new(T::RESOURCE_GROUP, s(g, "name")),
                            state: json!({"id": s(g, "id"), "name": s(g, "name"), "location": s(g, "location"), "tags": tags_of(g)}),
                            version: None,
                            depends_on: Vec::new(),
                        });
                    }
                }
                Err(e) => out.diagnostics.push(discover_error(&e)),
            }
        }
        out
    }
}

/// A failed prune listing: a warning when the credential may not list (prune is skipped), an
/// error otherwise.
fn discover_error(e: &ArmError) -> Diagnostic {
    if e.status == Some(403) {
        Diagnostic::warning(
            "prune-skipped",
            format!("cannot list this stack's resources, so resources removed from the file are not planned for deletion: {e}"),
        )
        .with_hint("a role that may list the subscription's resource groups and connected clusters (Reader or above) lets arcplan prune")
    } else {
        let mut d = Diagnostic::error("azure", e.to_string());
        if let Some(h) = e.hint() {
            d = d.with_hint(h);
        }
        d
    }
}

fn rg_of(id: &str) -> String {
    let parts: Vec<&str> = id.split('/').collect();
    parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("resourceGroups"))
        .and_then(|i| parts.get(i + 1))
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// The live state arcplan compares and shows, from an ARM connected cluster body.
pub fn cluster_state(b: &Value) -> Value {
    let p = b.get("properties").cloned().unwrap_or(Value::Null);
    let auto = p
        .pointer("/arcAgentProfile/agentAutoUpgrade")
        .and_then(Value::as_str)
        .map(|v| !v.eq_ignore_ascii_case("Disabled"))
        .unwrap_or(true);
    json!({
        "id": s(b, "id"),
        "name": s(b, "name"),
        "resourceGroup": rg_of(s(b, "id")),
        "location": s(b, "location"),
        "tags": tags_of(b),
        "identity": {"type": b.pointer("/identity/type").cloned().unwrap_or(Value::Null)},
        "distribution": s(&p, "distribution"),
        "infrastructure": s(&p, "infrastructure"),
        "agentPublicKeyCertificate": s(&p, "agentPublicKeyCertificate"),
        "agentAutoUpgrade": auto,
        "provisioningState": p.get("provisioningState").cloned().unwrap_or(Value::Null),
        "connectivityStatus": p.get("connectivityStatus").cloned().unwrap_or(Value::Null),
        "agentVersion": p.get("agentVersion").cloned().unwrap_or(Value::Null),
        "kubernetesVersion": p.get("kubernetesVersion").cloned().unwrap_or(Value::Null),
        "totalNodeCount": p.get("totalNodeCount").cloned().unwrap_or(Value::Null),
        "totalCoreCount": p.get("totalCoreCount").cloned().unwrap_or(Value::Null),
        "lastConnectivityTime": p.get("lastConnectivityTime").cloned().unwrap_or(Value::Null),
        "managedIdentityCertificateExpirationTime": p.get("managedIdentityCertificateExpirationTime").cloned().unwrap_or(Value::Null),
    })
}

fn cluster_outputs(state: &Value) -> Value {
    let mut o = Map::new();
    for k in [
        "id",
        "name",
        "connectivityStatus",
        "agentVersion",
        "kubernetesVersion",
        "totalNodeCount",
        "totalCoreCount",
        "lastConnectivityTime",
        "managedIdentityCertificateExpirationTime",
    ] {
        o.insert(k.to_owned(), state.get(k).cloned().unwrap_or(Value::Null));
    }
    Value::Object(o)
}

#[async_trait]
impl Provider for AzureProvider {
    fn resource_types(&self) -> Vec<T> {
        vec![
            T::SUBSCRIPTION,
            T::RESOURCE_PROVIDER,
            T::ROLE_CHECK,
            T::RESOURCE_GROUP,
            T::CONNECTED_CLUSTER,
            T::CONNECTIVITY,
        ]
    }

    async fn read(&self, req: ReadRequest) -> ReadResponse {
        let t = &req.address.rtype;
        if *t == T::SUBSCRIPTION {
            self.read_subscription(&req.address, &req.desired).await
        } else if *t == T::RESOURCE_PROVIDER {
            self.read_resource_provider(&req.address).await
        } else if *t == T::RESOURCE_GROUP {
            self.read_resource_group(&req.address).await
        } else if *t == T::CONNECTED_CLUSTER {
            self.read_connected_cluster(&req.address, &req.desired)
                .await
        } else {
            ReadResponse::default()
        }
    }

    async fn plan(&self, req: PlanRequest) -> PlanResponse {
        let t = &req.address.rtype;
        if *t == T::RESOURCE_PROVIDER {
            self.plan_resource_provider(&req)
        } else if *t == T::RESOURCE_GROUP {
            self.plan_resource_group(&req).await
        } else if *t == T::CONNECTED_CLUSTER {
            self.plan_connected_cluster(&req)
        } else {
            PlanResponse {
                action: Some(Action::NoOp),
                outputs: req.prior,
                ..Default::default()
            }
        }
    }

    async fn apply(&self, req: ApplyRequest) -> ApplyResponse {
        self.forget_cached_reads().await;
        let t = req.change.address.rtype.clone();
        let result = if t == T::RESOURCE_PROVIDER {
            self.apply_resource_provider(&req).await
        } else if t == T::RESOURCE_GROUP {
            self.apply_resource_group(&req).await
        } else if t == T::CONNECTED_CLUSTER {
            self.apply_connected_cluster(&req).await
        } else {
            Ok(None)
        };
        match result {
            Ok(outputs) => ApplyResponse {
                state: outputs.clone(),
                outputs,
                diagnostics: Diagnostics::new(),
            },
            Err(e) => ApplyResponse {
                diagnostics: diag_from(&e, &req.change.address).into(),
                ..Default::default()
            },
        }
    }

    async fn check(&self, req: CheckRequest) -> CheckResponse {
        if req.address.rtype == T::ROLE_CHECK {
            self.check_roles(&req).await
        } else {
            self.check_connectivity(&req).await
        }
    }

    async fn discover(&self, req: DiscoverRequest) -> DiscoverResponse {
        self.discover_owned(&req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_at_least_the_declared_ones() {
        let desired = json!({"tags": {"env": "lab", "arcplan-stack": "s"}});
        let live = json!({"tags": {"env": "lab", "arcplan-stack": "s", "costCenter": "42"}});
        assert!(
            tag_diff(&desired, &live).is_empty(),
            "extra live tags are not a change"
        );
        let live = json!({"tags": {"Env": "prod", "costCenter": "42"}});
        let mut diff = tag_diff(&desired, &live);
        diff.sort();
        assert_eq!(diff, vec!["arcplan-stack", "env"]);
        assert_eq!(
            merged_tags(&desired, &live),
            json!({"env": "lab", "arcplan-stack": "s", "costCenter": "42"})
        );
    }

    #[test]
    fn resource_group_from_an_id() {
        assert_eq!(
            rg_of(
                "/subscriptions/s/resourceGroups/rg-1/providers/Microsoft.Kubernetes/connectedClusters/c"
            ),
            "rg-1"
        );
        assert_eq!(rg_of("/subscriptions/s"), "");
    }

    #[test]
    fn cluster_state_reads_outputs_and_auto_upgrade() {
        let b = json!({"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Kubernetes/connectedClusters/c", "name": "c", "location": "eastus",
            "identity": {"type": "SystemAssigned"},
            "properties": {"agentPublicKeyCertificate": "MIIC", "connectivityStatus": "Connected", "arcAgentProfile": {"agentAutoUpgrade": "Disabled"}}});
        let st = cluster_state(&b);
        assert_eq!(st["resourceGroup"], "g");
        assert_eq!(st["agentAutoUpgrade"], false);
        assert_eq!(cluster_outputs(&st)["connectivityStatus"], "Connected");
    }
}
