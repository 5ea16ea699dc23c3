//! `arc.customLocation`: a custom location (`Microsoft.ExtendedLocation/customLocations`, api
//! 2021-08-15), a namespace of a connected cluster that Azure services deploy into through its
//! cluster extensions, as `az customlocation create` makes it.
//!
//! Created after its host cluster's extensions; owned by the stack's tag like any tracked
//! resource. The host and the namespace cannot change in place (replace); the extensions, the
//! display name and the tags are updated.

use super::role_check::Needs;
use super::{extension, resource_group, resource_provider};
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
use std::time::Instant;

/// The type.
pub const TYPE: ResourceType = ResourceType::of("arc.customLocation");

const ARM_TYPE: &str = "Microsoft.ExtendedLocation/customLocations";

/// The declared attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// The subscription.
    pub subscription_id: String,
    /// The resource group.
    pub resource_group: String,
    /// The resource name.
    pub name: String,
    /// The region.
    pub location: Option<String>,
    /// Tags (at least these), the stack's tag included.
    pub tags: BTreeMap<String, String>,
    /// The host connected cluster's ARM id.
    pub host_resource_id: String,
    /// The namespace in the cluster.
    pub namespace: String,
    /// The cluster extensions' ARM ids.
    pub cluster_extension_ids: Vec<String>,
    /// The display name.
    pub display_name: String,
}

/// A custom location's address.
pub fn address(name: &str) -> Address {
    Address::new(TYPE, name)
}

/// One node per custom location, after its extensions and its group.
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    for (i, l) in cfg.custom_locations.iter().enumerate() {
        let sub = cfg.custom_location_subscription(l);
        let host = cfg
            .clusters
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(&l.cluster));
        let (host_sub, host_rg) = host
            .map(|c| (cfg.cluster_subscription(c), c.resource_group.as_str()))
            .unwrap_or((sub, ""));
        let host_id = format!(
            "/subscriptions/{host_sub}/resourceGroups/{host_rg}/providers/Microsoft.Kubernetes/connectedClusters/{}",
            l.cluster
        );
        let a = address(&l.name);
        let attrs = Attributes {
            subscription_id: sub.to_owned(),
            resource_group: l.resource_group.clone(),
            name: l.name.clone(),
            location: l.location.clone().or_else(|| {
                host.and_then(|c| cfg.cluster_location(c))
                    .map(str::to_owned)
            }),
            tags: resource_group::stack_tags(cfg, &l.tags),
            cluster_extension_ids: l
                .extensions
                .iter()
                .map(|e| {
                    format!("{host_id}/providers/Microsoft.KubernetesConfiguration/extensions/{e}")
                })
                .collect(),
            host_resource_id: host_id,
            namespace: l.namespace.clone(),
            display_name: l.display_name.clone().unwrap_or_else(|| l.name.clone()),
        };
        b.node(
            a.clone(),
            Mode::Managed,
            &attrs,
            format!("customLocations[{i}]"),
        );
        b.edge(&a, &resource_group::address_in(cfg, sub, &l.resource_group));
        for e in &l.extensions {
            b.edge(&a, &extension::address(&l.cluster, e));
        }
        let rp = resource_provider::address(cfg, sub, "Microsoft.ExtendedLocation");
        if b.has(&rp) {
            b.edge(&a, &rp);
        }
    }
}

/// What a change of a custom location needs of the credential.
pub fn needs(_address: &Address, action: Action) -> Needs {
    Needs::of_type(ARM_TYPE, action)
}

/// The kind.
pub struct CustomLocation;

fn path(cx: &AzureCx, (sub, rg): (&str, &str), name: &str) -> String {
    format!(
        "{}/resourceGroups/{rg}/providers/{ARM_TYPE}/{name}",
        cx.sub_path(sub)
    )
}

/// The state arcplan compares and shows, from an ARM body.
pub fn location_state(b: &Value) -> Value {
    let p = b.get("properties").cloned().unwrap_or(Value::Null);
    let field = |k: &str| p.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "id": s(b, "id"),
        "name": s(b, "name"),
        "resourceGroup": rg_of(s(b, "id")),
        "location": s(b, "location"),
        "tags": tags_of(b),
        "hostResourceId": field("hostResourceId"),
        "namespace": field("namespace"),
        "clusterExtensionIds": field("clusterExtensionIds"),
        "displayName": field("displayName"),
        "provisioningState": field("provisioningState"),
    })
}

fn same_id(a: &Value, b: &str) -> bool {
    a.as_str().is_some_and(|a| a.eq_ignore_ascii_case(b))
}

fn ids_equal(live: &Value, want: &[String]) -> bool {
    let live: Vec<String> = live
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default();
    let mut want: Vec<String> = want.iter().map(|w| w.to_ascii_lowercase()).collect();
    let mut live = live;
    live.sort();
    want.sort();
    live == want
}

fn body(d: &Attributes, tags: Value) -> Value {
    json!({
        "location": d.location.as_deref().unwrap_or_default(),
        "tags": tags,
        "properties": {
            "hostType": "Kubernetes",
            "hostResourceId": d.host_resource_id,
            "namespace": d.namespace,
            "clusterExtensionIds": d.cluster_extension_ids,
            "displayName": d.display_name,
        },
    })
}

#[async_trait]
impl Kind<AzureCx> for CustomLocation {
    fn rtype(&self) -> ResourceType {
        TYPE
    }

    async fn read(&self, cx: &AzureCx, req: &ReadRequest) -> ReadResponse {
        let mut r = ReadResponse::default();
        let (sub, rg) = match declared::<Attributes>(&req.address, &req.desired) {
            Ok(a) => a
                .map(|a| (a.subscription_id, a.resource_group))
                .unwrap_or((cx.settings.subscription.clone(), String::new())),
            Err(d) => {
                r.diagnostics.push(d);
                return r;
            }
        };
        read_by_get(
            cx,
            &req.address,
            &path(cx, (&sub, &rg), &req.address.name),
            ApiKind::CustomLocations,
            location_state,
            &[
                "tags",
                "hostResourceId",
                "namespace",
                "clusterExtensionIds",
                "displayName",
            ],
        )
        .await
    }

    async fn plan(&self, cx: &AzureCx, req: &PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse::default();
        let stack = cx.settings.stack.as_str();
        let owner = req.prior.as_ref().and_then(owner_of);
        let ours = owner.as_deref() == Some(stack);
        if req.mode == PlanMode::Destroy {
            return plan_destroy(req.prior.as_ref(), ours, "destroy was requested", || {
                Diagnostic::warning(
                    "not-owned",
                    format!(
                        "custom location {} is not tagged {}={stack}; destroy leaves it",
                        req.address.name,
                        crate::azure::STACK_TAG
                    ),
                )
                .with_address(req.address.to_string())
            });
        }
        let d: Attributes = match attributes(&req.address, &req.desired) {
            Ok(a) => a,
            Err(diag) => {
                resp.diagnostics.push(diag);
                return resp;
            }
        };
        let Some(prior) = &req.prior else {
            resp.action = Some(Action::Create);
            let mut after = req.desired.clone();
            after["id"] = Value::Null;
            resp.after = Some(after);
            return resp;
        };
        if let Some(o) = owner.as_deref().filter(|o| *o != stack) {
            return owned_by_another_stack(&req.address, "custom location", o);
        }
        resp.outputs = Some(prior.clone());
        let mut after = prior.clone();
        after["tags"] = merged_tags(&d.tags, prior);
        after["hostResourceId"] = json!(d.host_resource_id);
        after["namespace"] = json!(d.namespace);
        after["clusterExtensionIds"] = json!(d.cluster_extension_ids);
        after["displayName"] = json!(d.display_name);
        let mut replace = Vec::new();
        let mut why = Vec::new();
        if !same_id(&prior["hostResourceId"], &d.host_resource_id) {
            replace.push("/hostResourceId".to_owned());
            why.push("the host cluster cannot change in place".to_owned());
        }
        if prior["namespace"] != json!(d.namespace) {
            replace.push("/namespace".to_owned());
            why.push(format!(
                "namespace {} -> {} cannot change in place",
                prior["namespace"], d.namespace
            ));
        }
        if req.replace_requested || !replace.is_empty() {
            resp.action = Some(Action::Replace);
            resp.reason = Some(if replace.is_empty() {
                Reason::new(
                    ReasonCode::Requested,
                    "replacement was requested (--replace)",
                )
            } else {
                Reason::new(ReasonCode::CannotUpdate, why.join("; "))
            });
            resp.requires_replace = replace;
            resp.after = Some(after);
            return resp;
        }
        let changed = !tag_diff(&d.tags, prior).is_empty()
            || !ids_equal(&prior["clusterExtensionIds"], &d.cluster_extension_ids)
            || prior["displayName"] != json!(d.display_name);
        if changed {
            resp.action = Some(Action::Update);
            resp.after = Some(after);
        } else {
            resp.action = Some(Action::NoOp);
        }
        resp
    }

    async fn apply(&self, cx: &AzureCx, req: &ApplyRequest) -> ApplyResponse {
        let address = &req.change.address;
        let started = Instant::now();
        let declared = declared::<Attributes>(address, &req.desired);
        let (sub, rg) = place_of(
            (declared.as_ref().ok().and_then(|d| d.as_ref()))
                .map(|d| (d.subscription_id.as_str(), d.resource_group.as_str())),
            req.change.before_value().as_ref(),
            &cx.settings.subscription,
        );
        let path = path(cx, (&sub, &rg), &address.name);
        let what = |verb: &str| format!("{verb} custom location {}", address.name);
        let deleting = what("deleting");
        let delete =
            || delete_and_wait(cx, req, &path, ApiKind::CustomLocations, &deleting, started);
        let result: Result<Option<Value>, ArmError> = match (req.change.action, declared) {
            (Action::Delete, _) => delete().await.map(|()| None),
            (action, Ok(Some(d))) => {
                let replaced = if action == Action::Replace {
                    delete().await
                } else {
                    Ok(())
                };
                let tags = match &req.change.before_value() {
                    Some(b) if action == Action::Update => merged_tags(&d.tags, b),
                    _ => json!(d.tags),
                };
                match replaced {
                    Err(e) => Err(e),
                    Ok(()) => write_and_read(
                        cx,
                        req,
                        (Method::PUT, body(&d, tags)),
                        &path,
                        ApiKind::CustomLocations,
                        &what("creating"),
                        started,
                    )
                    .await
                    .and_then(|done| {
                        let name = format!("custom location {}", address.name);
                        match provisioning_failure(&name, &done, &path, None) {
                            Some(e) => Err(e),
                            None => Ok(Some(location_state(&done.body))),
                        }
                    }),
                }
            }
            (_, Ok(None)) => return ApplyResponse::default(),
            (_, Err(diag)) => return ApplyResponse::failed(diag),
        };
        applied(result, address)
    }

    async fn discover(&self, cx: &AzureCx, req: &DiscoverRequest) -> DiscoverResponse {
        let mut out = DiscoverResponse::default();
        // A custom location offers extensions of its host, so a stack that installed none
        // (no cluster of its tagged `arcplan-extensions`) has none to prune: no request.
        let Ok(ours) = extension::clusters_with_extensions(cx, &req.stack).await else {
            return out;
        };
        for sub in &cx.settings.subscriptions {
            if !ours.iter().any(|(s, _, _)| s == sub) {
                continue;
            }
            let list = cx
                .cached_list(
                    &format!("customLocations:{}", sub.to_ascii_lowercase()),
                    &format!("{}/providers/{ARM_TYPE}", cx.sub_path(sub)),
                    ApiKind::CustomLocations,
                )
                .await;
            match list {
                Ok(items) => {
                    for l in items
                        .iter()
                        .filter(|l| owner_of(l).as_deref() == Some(req.stack.as_str()))
                    {
                        out.resources.push(Discovered {
                            address: address(s(l, "name")),
                            state: location_state(l),
                            version: None,
                            depends_on: vec![resource_group::address_of(
                                cx,
                                sub,
                                &rg_of(s(l, "id")),
                            )],
                        });
                    }
                }
                // Not registered: nothing of this stack's to prune.
                Err(e) if matches!(e.status, Some(409) | Some(404)) => {}
                Err(e) => out.diagnostics.push(discover_error(&e)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_of_a_body_round_trips() {
        let d = Attributes {
            subscription_id: "s".into(),
            resource_group: "rg".into(),
            name: "loc".into(),
            location: Some("eastus".into()),
            tags: BTreeMap::from([("arcplan-stack".to_owned(), "s1".to_owned())]),
            host_resource_id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/c1".into(),
            namespace: "arc-services".into(),
            cluster_extension_ids: vec!["/x/extensions/a".into()],
            display_name: "loc".into(),
        };
        let mut b = body(&d, json!(d.tags));
        b["id"] = json!(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ExtendedLocation/customLocations/loc"
        );
        b["name"] = json!("loc");
        let st = location_state(&b);
        assert_eq!(st["namespace"], "arc-services");
        assert_eq!(st["resourceGroup"], "rg");
        assert!(ids_equal(
            &st["clusterExtensionIds"],
            &["/X/extensions/A".into()]
        ));
        assert_eq!(owner_of(&st).as_deref(), Some("s1"));
    }
}
