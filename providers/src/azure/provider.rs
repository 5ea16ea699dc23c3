//! The Azure provider: subscription, resource provider registrations, role checks, resource
//! groups, connected clusters, the connectivity check, and prune discovery.
//!
//! Reads are batched where ARM allows (one provider list per plan; one tagged-resource list
//! and one tagged-group list for prune). Diffs compare only what the configuration declares (tags
//! are "at least these": tags added by Azure Policy or people are kept and never shown as
//! changes). Ownership is the tag `arcplan-stack=<stack>`: arcplan deletes only what carries it.

mod checks;
mod connected_cluster;
mod resource_group;

pub use connected_cluster::cluster_state;
use connected_cluster::*;

use super::arm::{ArmClient, ArmError, ArmErrorKind, ArmRequest};
use super::cloud::ApiKind;
use super::permissions::{Permission, missing, roles_granting};
use crate::azure::STACK_TAG;
use arcplan_engine::address::{Address, ResourceType as T};
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

    // ---- checks ----

    // ---- discover ----

    /// Resources of the stack, from the same subscription-wide lists the reads used (no extra
    /// request on a plan that read them already).
    async fn discover_owned(&self, req: &DiscoverRequest) -> DiscoverResponse {
        let mut out = DiscoverResponse::default();
        let ours = |v: &Value| owner_of(v).as_deref() == Some(req.stack.as_str());
        if req.types.contains(&crate::kinds::CONNECTED_CLUSTER) {
            match self.cluster_list().await {
                Ok(items) => {
                    for c in items.iter().filter(|c| ours(c)) {
                        let rg = rg_of(s(c, "id"));
                        out.resources.push(Discovered {
                            address: Address::new(crate::kinds::CONNECTED_CLUSTER, s(c, "name")),
                            state: cluster_state(c),
                            version: None,
                            depends_on: vec![Address::new(crate::kinds::RESOURCE_GROUP, rg)],
                        });
                    }
                }
                Err(e) => out.diagnostics.push(discover_error(&e)),
            }
        }
        if req.types.contains(&crate::kinds::RESOURCE_GROUP) {
            match self.group_list().await {
                Ok(items) => {
                    for g in items.iter().filter(|g| ours(g)) {
                        out.resources.push(Discovered {
                            address: Address::new(crate::kinds::RESOURCE_GROUP, s(g, "name")),
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

#[async_trait]
impl Provider for AzureProvider {
    fn resource_types(&self) -> Vec<T> {
        vec![
            crate::kinds::SUBSCRIPTION,
            crate::kinds::RESOURCE_PROVIDER,
            crate::kinds::ROLE_CHECK,
            crate::kinds::RESOURCE_GROUP,
            crate::kinds::CONNECTED_CLUSTER,
            crate::kinds::CONNECTIVITY,
        ]
    }

    async fn read(&self, req: ReadRequest) -> ReadResponse {
        let t = &req.address.rtype;
        if *t == crate::kinds::SUBSCRIPTION {
            self.read_subscription(&req.address, &req.desired).await
        } else if *t == crate::kinds::RESOURCE_PROVIDER {
            self.read_resource_provider(&req.address).await
        } else if *t == crate::kinds::RESOURCE_GROUP {
            self.read_resource_group(&req.address).await
        } else if *t == crate::kinds::CONNECTED_CLUSTER {
            self.read_connected_cluster(&req.address, &req.desired)
                .await
        } else {
            ReadResponse::default()
        }
    }

    async fn plan(&self, req: PlanRequest) -> PlanResponse {
        let t = &req.address.rtype;
        if *t == crate::kinds::RESOURCE_PROVIDER {
            self.plan_resource_provider(&req)
        } else if *t == crate::kinds::RESOURCE_GROUP {
            self.plan_resource_group(&req).await
        } else if *t == crate::kinds::CONNECTED_CLUSTER {
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
        let result = if t == crate::kinds::RESOURCE_PROVIDER {
            self.apply_resource_provider(&req).await
        } else if t == crate::kinds::RESOURCE_GROUP {
            self.apply_resource_group(&req).await
        } else if t == crate::kinds::CONNECTED_CLUSTER {
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
        if req.address.rtype == crate::kinds::ROLE_CHECK {
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
