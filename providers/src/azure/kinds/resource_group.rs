//! `azure.resourceGroup`: a resource group arcplan manages (created, tagged, deleted when it is
//! the stack's and empty of others' resources) or only reads (`existing: true`).

use super::role_check::Needs;
use super::subscription;
use crate::azure::STACK_TAG;
use crate::azure::arm::ArmError;
use crate::azure::cloud::ApiKind;
use crate::azure::context::AzureCx;
use crate::azure::shared::*;
use crate::kind::{Kind, attributes};
use arcplan_config::Config;
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::diag::Diagnostic;
use arcplan_engine::graph::{GraphBuilder, Mode};
use arcplan_engine::plan::{Action, PlanMode, Reason, ReasonCode};
use arcplan_engine::provider::*;
use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// The type.
pub const TYPE: ResourceType = ResourceType::of("azure.resourceGroup");

/// The declared attributes (an existing group declares only its name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attributes {
    /// The group's name.
    pub name: String,
    /// Its region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Tags it must carry (at least these), the stack's tag included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

/// The address of a group of the file's own subscription.
pub fn address(name: &str) -> Address {
    Address::new(TYPE, name)
}

/// The address of group `name` in subscription `sub` (`<sub>/<name>` outside the file's own).
pub fn address_in(cfg: &Config, sub: &str, name: &str) -> Address {
    Address::new(TYPE, scoped_name(&cfg.azure.subscription, sub, name))
}

/// The address of the declared group a resource in group `rg` of subscription `sub` is in.
pub fn address_of(cx: &AzureCx, sub: &str, rg: &str) -> Address {
    Address::new(TYPE, cx.scoped(sub, rg))
}

/// The declared tags plus the stack's ownership tag.
pub fn stack_tags(cfg: &Config, tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut t = tags.clone();
    t.insert(STACK_TAG.to_owned(), cfg.stack.clone());
    t
}

/// One node per declared group: managed, or data when `existing`.
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    for (i, rg) in cfg.resource_groups.iter().enumerate() {
        let sub = cfg.group_subscription(rg);
        let a = address_in(cfg, sub, &rg.name);
        let (mode, attrs) = if rg.existing {
            (
                Mode::Data,
                Attributes {
                    name: rg.name.clone(),
                    location: None,
                    tags: None,
                },
            )
        } else {
            (
                Mode::Managed,
                Attributes {
                    name: rg.name.clone(),
                    location: rg.location.clone(),
                    tags: Some(stack_tags(cfg, &rg.tags)),
                },
            )
        };
        b.node(a.clone(), mode, &attrs, format!("resourceGroups[{i}]"));
        b.edge(&a, &subscription::address_of(sub));
    }
}

/// What a change of a group needs of the credential (creating the group creates the scope of
/// its check).
pub fn needs(_address: &Address, action: Action) -> Needs {
    match action {
        Action::Create => {
            Needs::actions(["Microsoft.Resources/subscriptions/resourceGroups/write"])
                .creating_scope()
        }
        Action::Update => {
            Needs::actions(["Microsoft.Resources/subscriptions/resourceGroups/write"])
        }
        Action::Delete => {
            Needs::actions(["Microsoft.Resources/subscriptions/resourceGroups/delete"])
        }
        _ => Needs::default(),
    }
}

/// The kind: read from the subscription-wide list, plan (created with the stack's tag; deleted
/// only when tagged and empty of foreign resources), PUT, PATCH and DELETE; discovered by tag.
pub struct ResourceGroup;

/// A subscription's resource groups, read once per plan.
async fn list(cx: &AzureCx, sub: &str) -> Result<Arc<Vec<Value>>, ArmError> {
    cx.cached_list(
        &format!("groups:{}", sub.to_ascii_lowercase()),
        &format!("{}/resourcegroups", cx.sub_path(sub)),
        ApiKind::Resources,
    )
    .await
}

/// The state arcplan compares and shows, from an ARM group body.
fn group_state(b: &Value) -> Value {
    json!({
        "id": s(b, "id"),
        "name": s(b, "name"),
        "location": s(b, "location"),
        "tags": tags_of(b),
        "provisioningState": b.pointer("/properties/provisioningState").cloned().unwrap_or(Value::Null),
    })
}

#[async_trait]
impl Kind<AzureCx> for ResourceGroup {
    fn rtype(&self) -> ResourceType {
        TYPE
    }

    async fn read(&self, cx: &AzureCx, req: &ReadRequest) -> ReadResponse {
        let address = &req.address;
        let (sub, name) = cx.unscoped(&address.name);
        let mut r = ReadResponse::default();
        let found = match list(cx, sub).await {
            Ok(list) => Ok(list
                .iter()
                .find(|g| s(g, "name").eq_ignore_ascii_case(name))
                .cloned()),
            // Without the right to list, read the one group.
            Err(e) if e.status == Some(403) => {
                let get = cx.req(
                    Method::GET,
                    &cx.rg_path(sub, name),
                    ApiKind::Resources,
                    None,
                );
                cx.arm
                    .send_allow_404(&get)
                    .await
                    .map(|resp| (resp.status != 404).then_some(resp.body))
            }
            Err(e) => Err(e),
        };
        match found {
            Ok(None) => {}
            Ok(Some(b)) => {
                let state = group_state(&b);
                r.version = Some(digest(&json!([state["location"], state["tags"]])));
                r.state = Some(state);
            }
            Err(e) => r.diagnostics.push(diag_from(&e, address)),
        }
        r
    }

    async fn plan(&self, cx: &AzureCx, req: &PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse::default();
        let attrs: Attributes = match attributes(&req.address, &req.desired) {
            Ok(a) => a,
            Err(d) => {
                resp.diagnostics.push(d);
                return resp;
            }
        };
        let stack = cx.settings.stack.as_str();
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
            if owner.as_deref() != Some(stack) {
                resp.diagnostics.push(
                    Diagnostic::warning(
                        "not-owned",
                        format!(
                            "resource group {} is not tagged {STACK_TAG}={stack}; destroy leaves it",
                            req.address.name
                        ),
                    )
                    .with_address(addr),
                );
                return resp;
            }
            let (sub, name) = cx.unscoped(&req.address.name);
            return match foreign_resources(cx, sub, name).await {
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
                // Gone between the list and this read (another run deleted it): nothing to do.
                Err(e) if e.status == Some(404) => {
                    resp.action = Some(Action::NoOp);
                    resp.outputs = None;
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
            && o != stack
        {
            resp.diagnostics.push(
                Diagnostic::error("owned-by-another-stack", format!("resource group {} belongs to stack `{o}` ({STACK_TAG}={o})", req.address.name))
                    .with_address(addr)
                    .with_hint(format!("use another group, or set `stack: {o}` if this file is meant to manage that stack")),
            );
            return resp;
        }
        let want = attrs.location.as_deref().unwrap_or_default();
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
        let tags = attrs.tags.unwrap_or_default();
        if tag_diff(&tags, prior).is_empty() {
            resp.action = Some(Action::NoOp);
            resp.outputs = Some(prior.clone());
        } else {
            let mut after = prior.clone();
            after["tags"] = merged_tags(&tags, prior);
            resp.action = Some(Action::Update);
            resp.after = Some(after);
            resp.outputs = Some(prior.clone());
            if owner.is_none() {
                resp.reason = Some(Reason::new(
                    ReasonCode::Other,
                    format!("adopts the existing group into stack {stack}"),
                ));
            }
        }
        resp
    }

    async fn apply(&self, cx: &AzureCx, req: &ApplyRequest) -> ApplyResponse {
        let address = &req.change.address;
        // A delete needs no declared attributes (a pruned group has none).
        let attrs = match req.change.action {
            Action::Create | Action::Update => {
                match attributes::<Attributes>(address, &req.desired) {
                    Ok(a) => Some(a),
                    Err(d) => {
                        return ApplyResponse::failed(d);
                    }
                }
            }
            _ => None,
        };
        applied(apply_group(cx, req, attrs).await, address)
    }

    async fn discover(&self, cx: &AzureCx, req: &DiscoverRequest) -> DiscoverResponse {
        let mut out = DiscoverResponse::default();
        for sub in &cx.settings.subscriptions {
            match list(cx, sub).await {
                Ok(items) => {
                    for g in items
                        .iter()
                        .filter(|g| owner_of(g).as_deref() == Some(req.stack.as_str()))
                    {
                        out.resources.push(Discovered {
                            address: address_of(cx, sub, s(g, "name")),
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

/// The group's resources that are not the stack's, as `name (type)`.
async fn foreign_resources(cx: &AzureCx, sub: &str, rg: &str) -> Result<Vec<String>, ArmError> {
    let get = cx.req(
        Method::GET,
        &format!("{}/resources", cx.rg_path(sub, rg)),
        ApiKind::Resources,
        None,
    );
    let items = cx.arm.list_all(&get).await?;
    Ok(items
        .iter()
        .filter(|r| owner_of(r).as_deref() != Some(cx.settings.stack.as_str()))
        .map(|r| format!("{} ({})", s(r, "name"), s(r, "type")))
        .collect())
}

async fn apply_group(
    cx: &AzureCx,
    req: &ApplyRequest,
    attrs: Option<Attributes>,
) -> Result<Option<Value>, ArmError> {
    let (sub, name) = cx.unscoped(&req.change.address.name);
    let path = cx.rg_path(sub, name);
    let started = Instant::now();
    let (location, tags) = attrs
        .map(|a| (a.location.unwrap_or_default(), a.tags.unwrap_or_default()))
        .unwrap_or_default();
    match req.change.action {
        Action::Create => {
            let body = json!({"location": location, "tags": tags});
            let resp = cx
                .arm
                .send(&cx.req(Method::PUT, &path, ApiKind::Resources, Some(body)))
                .await?;
            Ok(Some(resp.body))
        }
        Action::Update => {
            let live = cx
                .arm
                .send(&cx.req(Method::GET, &path, ApiKind::Resources, None))
                .await?;
            let body = json!({"tags": merged_tags(&tags, &live.body)});
            let resp = cx
                .arm
                .send(&cx.req(Method::PATCH, &path, ApiKind::Resources, Some(body)))
                .await?;
            Ok(Some(resp.body))
        }
        Action::Delete => {
            let what = format!("deleting resource group {}", req.change.address.name);
            delete_and_wait(cx, req, &path, ApiKind::Resources, &what, started).await?;
            Ok(None)
        }
        _ => Ok(None),
    }
}
