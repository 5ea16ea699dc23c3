//! `azure.resourceProvider`: a resource provider registration, in each subscription the file
//! works in (`azure.resourceProvider.<namespace>` in the file's own subscription,
//! `azure.resourceProvider.<subscription>/<namespace>` in another).

use super::role_check::Needs;
use super::subscription;
use crate::azure::arm::{ArmError, ArmErrorKind};
use crate::azure::cloud::ApiKind;
use crate::azure::context::AzureCx;
use crate::azure::shared::{applied, diag_from, s, scoped_name};
use crate::kind::Kind;
use arcplan_config::Config;
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::diag::Diagnostic;
use arcplan_engine::events::Event;
use arcplan_engine::graph::{GraphBuilder, Mode};
use arcplan_engine::plan::{Action, PlanMode, Reason, ReasonCode};
use arcplan_engine::provider::*;
use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// The type.
pub const TYPE: ResourceType = ResourceType::of("azure.resourceProvider");

/// The declared attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// The namespace, such as `Microsoft.Kubernetes`.
    pub namespace: String,
    /// Always `Registered`.
    pub registration_state: String,
}

/// The registration of `namespace` in `sub`.
pub fn address(cfg: &Config, sub: &str, namespace: &str) -> Address {
    Address::new(TYPE, scoped_name(&cfg.azure.subscription, sub, namespace))
}

/// One node per declared namespace and subscription, after the subscription.
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    for sub in cfg.subscriptions() {
        let sub_addr = subscription::address_of(sub);
        for (i, ns) in cfg.resource_providers.iter().enumerate() {
            let a = address(cfg, sub, ns);
            let attrs = Attributes {
                namespace: ns.clone(),
                registration_state: "Registered".into(),
            };
            b.node(
                a.clone(),
                Mode::Managed,
                &attrs,
                format!("resourceProviders[{i}]"),
            );
            b.edge(&a, &sub_addr);
        }
    }
}

/// The namespace an address names (without its subscription).
fn namespace(address: &Address) -> &str {
    address.name.rsplit('/').next().unwrap_or_default()
}

/// What registering needs of the credential, at the subscription.
pub fn needs(address: &Address, action: Action) -> Needs {
    match action {
        Action::Create => Needs::actions([format!("{}/register/action", namespace(address))]),
        _ => Needs::default(),
    }
}

/// The kind: read from the subscription's provider list, registered when it is not, never
/// unregistered.
pub struct ResourceProvider;

/// A subscription's resource providers, read once per plan.
async fn list(cx: &AzureCx, sub: &str) -> Result<Arc<Vec<Value>>, ArmError> {
    cx.cached_list(
        &format!("providers:{}", sub.to_ascii_lowercase()),
        &format!("{}/providers", cx.sub_path(sub)),
        ApiKind::Resources,
    )
    .await
}

#[async_trait]
impl Kind<AzureCx> for ResourceProvider {
    fn rtype(&self) -> ResourceType {
        TYPE
    }

    async fn read(&self, cx: &AzureCx, req: &ReadRequest) -> ReadResponse {
        let address = &req.address;
        let (sub, ns) = cx.unscoped(&address.name);
        let mut r = ReadResponse::default();
        match list(cx, sub).await {
            Ok(list) => match list
                .iter()
                .find(|p| s(p, "namespace").eq_ignore_ascii_case(ns))
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
                        format!("subscription {sub} has no resource provider `{ns}`"),
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
                r.state = Some(json!({"namespace": ns, "registrationState": "Unknown"}));
                r.diagnostics.push(
                    Diagnostic::warning(
                        "registration-unknown",
                        format!("cannot read the registration of {ns} in subscription {sub} (403: the credential may not read resource providers); assuming it is registered"),
                    )
                    .with_address(address.to_string())
                    .with_hint("if it is not, creating the connected cluster fails with MissingSubscriptionRegistration; a role with `*/register/action` (Contributor) can register it"),
                );
            }
            Err(e) => r.diagnostics.push(diag_from(&e, address)),
        }
        r
    }

    async fn plan(&self, cx: &AzureCx, req: &PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse::default();
        let (sub, ns) = cx.unscoped(&req.address.name);
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
            if sub.eq_ignore_ascii_case(&cx.settings.subscription) {
                format!("{ns} is {state} in the subscription; it will be registered")
            } else {
                format!("{ns} is {state} in subscription {sub}; it will be registered")
            },
        ));
        resp.after = Some(json!({"namespace": ns, "registrationState": "Registered"}));
        resp
    }

    async fn apply(&self, cx: &AzureCx, req: &ApplyRequest) -> ApplyResponse {
        // The only change planned for a registration is to register it.
        applied(register(cx, req).await, &req.change.address)
    }
}

/// Registers the namespace and waits until it is `Registered`.
async fn register(cx: &AzureCx, req: &ApplyRequest) -> Result<Option<Value>, ArmError> {
    let (sub, ns) = cx.unscoped(&req.change.address.name);
    let mut register = cx.req(
        Method::POST,
        &format!("{}/providers/{ns}/register", cx.sub_path(sub)),
        ApiKind::Resources,
        None,
    );
    // Registering twice is harmless: ARM's register is idempotent.
    register.retryable = true;
    cx.arm.send(&register).await?;
    let started = Instant::now();
    let get = cx.req(
        Method::GET,
        &format!("{}/providers/{ns}", cx.sub_path(sub)),
        ApiKind::Resources,
        None,
    );
    loop {
        let resp = cx.arm.send(&get).await?;
        let state = s(&resp.body, "registrationState").to_owned();
        if state == "Registered" {
            return Ok(Some(json!({"namespace": ns, "registrationState": state})));
        }
        if started.elapsed() > cx.settings.registration_timeout {
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
            _ = tokio::time::sleep(cx.settings.poll_interval) => {}
            _ = req.cancel.cancelled() => {
                return Err(ArmError { kind: ArmErrorKind::Cancelled, status: None, code: "Interrupted".into(), message: format!("stopped waiting for {ns} to register; registration goes on in Azure"), request: format!("GET {}", get.display_path()), request_id: None, correlation_id: String::new() });
            }
        }
    }
}
