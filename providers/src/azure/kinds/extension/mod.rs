//! `arc.extension`: a cluster extension (`Microsoft.KubernetesConfiguration/extensions`, api
//! 2025-03-01) on a connected cluster, as `az k8s-extension create/update/delete` manage it.
//!
//! Addressed `arc.extension.<cluster>/<name>`. Extensions carry no tags, so the stack that owns
//! one is recorded in its configuration setting `arcplan.stack`, and the digest of its protected
//! settings (which ARM never returns) in `arcplan.protectedSettingsDigest`: a changed secret is
//! planned as an update shown by its digest, never its value. The extension type and the scope
//! (and its namespace) cannot change in place (replace); versions, release train, auto-upgrade
//! and settings are patched. Removing an extension from the file deletes it only when it carries
//! this stack's ownership; one installed by someone else is reported, never deleted.

use super::role_check::Needs;
use super::{connected_cluster, connectivity, resource_provider};
use crate::azure::cloud::ApiKind;
use crate::azure::context::AzureCx;
use crate::azure::shared::*;
use crate::kind::{Kind, attributes};
use crate::kubernetes::kinds::arc_agents;
use arcplan_config::conventions::{
    EXTENSION_DIGEST_SETTING, EXTENSION_OWNER_SETTING, EXTENSION_SETTINGS_PREFIX, EXTENSIONS_TAG,
};
use arcplan_config::{Config, ExtensionScope, SecretRef};
use arcplan_engine::address::{Address, ResourceType};
use arcplan_engine::diag::Diagnostic;
use arcplan_engine::graph::{GraphBuilder, Mode};
use arcplan_engine::plan::{Action, PlanMode, Reason, ReasonCode};
use arcplan_engine::provider::*;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Instant;
use write::{delete, write};

mod write;

/// The type.
pub const TYPE: ResourceType = ResourceType::of("arc.extension");

/// The ARM resource type under a connected cluster.
const ARM_TYPE: &str = "Microsoft.KubernetesConfiguration/extensions";

/// Where the extension is installed, in ARM's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Scope {
    /// One release for the cluster.
    #[serde(rename_all = "camelCase")]
    Cluster {
        /// The release's namespace (`None`: the extension's default).
        release_namespace: Option<String>,
    },
    /// A release in one namespace.
    #[serde(rename_all = "camelCase")]
    Namespace {
        /// The namespace (`None`: the extension's name).
        target_namespace: Option<String>,
    },
}

/// The declared attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    /// The subscription.
    pub subscription_id: String,
    /// The connected cluster's resource group.
    pub resource_group: String,
    /// The connected cluster's name.
    pub cluster: String,
    /// The extension's name.
    pub name: String,
    /// The extension type.
    pub extension_type: String,
    /// The release train (with auto-upgrade).
    pub release_train: Option<String>,
    /// A pinned version (without auto-upgrade).
    pub version: Option<String>,
    /// Whether Azure upgrades minor versions.
    pub auto_upgrade_minor_version: bool,
    /// Where it is installed.
    pub scope: Scope,
    /// Configuration settings.
    pub configuration_settings: BTreeMap<String, String>,
    /// Protected settings, as references (their values are read at plan and apply time).
    pub configuration_protected_settings: BTreeMap<String, SecretRef>,
    /// Why arcplan added the extension without the file declaring it (`None`: declared), shown
    /// as the reason of its creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_implicitly: Option<String>,
}

/// An extension's address: `arc.extension.<cluster>/<name>`.
pub fn address(cluster: &str, name: &str) -> Address {
    Address::new(TYPE, format!("{cluster}/{name}"))
}

/// One node per declared extension, after its cluster is connected (the agents ready, the
/// cluster `Connected`) and `Microsoft.KubernetesConfiguration` is registered.
pub fn lower(cfg: &Config, b: &mut GraphBuilder) {
    for (i, c) in cfg.clusters.iter().enumerate() {
        for (j, e) in c.extensions.iter().enumerate() {
            let attrs = Attributes {
                subscription_id: cfg.cluster_subscription(c).to_owned(),
                resource_group: c.resource_group.clone(),
                cluster: c.name.clone(),
                name: e.name.clone(),
                extension_type: e.extension_type.clone(),
                release_train: e.release_train.clone(),
                version: e.version.clone(),
                auto_upgrade_minor_version: e.auto_upgrade_minor_version,
                scope: match e.scope {
                    ExtensionScope::Cluster => Scope::Cluster {
                        release_namespace: e.release_namespace.clone(),
                    },
                    ExtensionScope::Namespace => Scope::Namespace {
                        target_namespace: e.target_namespace.clone(),
                    },
                },
                configuration_settings: e.configuration_settings.clone(),
                configuration_protected_settings: e.configuration_protected_settings.clone(),
                added_implicitly: None,
            };
            add_node(cfg, b, &attrs, format!("clusters[{i}].extensions[{j}]"));
        }
    }
}

/// Adds an extension's node (`source`: where it comes from in the file), after its cluster is
/// connected and `Microsoft.KubernetesConfiguration` registered; returns its address.
pub(crate) fn add_node(
    cfg: &Config,
    b: &mut GraphBuilder,
    attrs: &Attributes,
    source: String,
) -> Address {
    let a = address(&attrs.cluster, &attrs.name);
    b.node(a.clone(), Mode::Managed, attrs, source);
    b.edge(&a, &connected_cluster::address(&attrs.cluster));
    for after in [
        arc_agents::address(&attrs.cluster),
        Address::new(connectivity::TYPE, &attrs.cluster),
        resource_provider::address(
            cfg,
            &attrs.subscription_id,
            "Microsoft.KubernetesConfiguration",
        ),
    ] {
        if b.has(&after) {
            b.edge(&a, &after);
        }
    }
    a
}

/// What a change of an extension needs of the credential.
pub fn needs(_address: &Address, action: Action) -> Needs {
    Needs::of_type(ARM_TYPE, action)
}

/// The kind.
pub struct Extension;

/// A cluster's extensions, listed once per plan (prune discovery of extensions and of Flux
/// configurations share it).
pub(crate) async fn cluster_extensions(
    cx: &AzureCx,
    (sub, rg): (&str, &str),
    cluster: &str,
) -> Result<std::sync::Arc<Vec<Value>>, crate::azure::arm::ArmError> {
    cx.cached_list(
        &format!(
            "extensions:{}/{}/{}",
            sub.to_ascii_lowercase(),
            rg.to_ascii_lowercase(),
            cluster.to_ascii_lowercase()
        ),
        &cluster_children_path((sub, rg), cluster, ARM_TYPE),
        ApiKind::Extensions,
    )
    .await
}

/// The state arcplan compares and shows, from an ARM extension body: arcplan's own settings
/// are taken out of `configurationSettings` (they are the owner and the digest).
pub fn extension_state(b: &Value) -> Value {
    let p = b.get("properties").cloned().unwrap_or(Value::Null);
    let mut settings: Map<String, Value> = p
        .get("configurationSettings")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let owner = settings.remove(EXTENSION_OWNER_SETTING);
    let protected = settings.remove(EXTENSION_DIGEST_SETTING);
    settings.retain(|k, _| !k.starts_with(EXTENSION_SETTINGS_PREFIX));
    let field = |k: &str| p.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "id": s(b, "id"),
        "name": s(b, "name"),
        "extensionType": field("extensionType"),
        "releaseTrain": field("releaseTrain"),
        "version": field("version"),
        "autoUpgradeMinorVersion": p.get("autoUpgradeMinorVersion").cloned().unwrap_or(json!(true)),
        "scope": field("scope"),
        "configurationSettings": settings,
        "protectedSettingsDigest": protected.unwrap_or(Value::Null),
        "owner": owner.unwrap_or(Value::Null),
        "provisioningState": field("provisioningState"),
        "currentVersion": field("currentVersion"),
        "statuses": field("statuses"),
    })
}

/// The digest of the protected settings' names and values (empty: none). Never the values.
fn protected_digest(cx: &AzureCx, a: &Attributes, address: &Address) -> Result<String, Diagnostic> {
    Ok(protected_values(cx, a, address)?
        .map(|v| digest(&json!(v)))
        .unwrap_or_default())
}

/// The protected settings' values (`None`: none declared). Errors name the reference.
fn protected_values(
    cx: &AzureCx,
    a: &Attributes,
    address: &Address,
) -> Result<Option<BTreeMap<String, String>>, Diagnostic> {
    let what = format!("extension {}", a.name);
    read_protected(cx, &a.configuration_protected_settings, &what, address)
}

/// The scope kind (`cluster`/`namespace`) and its namespace, from a state or an ARM scope.
fn scope_parts(scope: &Value) -> (&'static str, Option<&str>) {
    if let Some(c) = scope.get("cluster").filter(|c| !c.is_null()) {
        ("cluster", c.get("releaseNamespace").and_then(Value::as_str))
    } else if let Some(n) = scope.get("namespace").filter(|n| !n.is_null()) {
        (
            "namespace",
            n.get("targetNamespace").and_then(Value::as_str),
        )
    } else {
        ("cluster", None)
    }
}

fn eq_ci(a: Option<&str>, b: &Value) -> bool {
    match (a, b.as_str()) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (None, _) => true,
        (Some(_), None) => false,
    }
}

/// Why the live extension must be replaced (empty: it can be updated in place).
fn replacements(d: &Attributes, prior: &Value) -> (Vec<String>, Vec<String>) {
    let mut paths = Vec::new();
    let mut why = Vec::new();
    if !eq_ci(Some(&d.extension_type), &prior["extensionType"]) {
        paths.push("/extensionType".to_owned());
        why.push(format!(
            "extensionType {} -> {} cannot change in place",
            prior["extensionType"], d.extension_type
        ));
    }
    let declared = json!(d.scope);
    let want = scope_parts(&declared);
    let live = scope_parts(&prior["scope"]);
    if want.0 != live.0 || (want.1.is_some() && want.1 != live.1) {
        paths.push("/scope".to_owned());
        why.push(format!(
            "scope {} {} -> {} {} cannot change in place",
            live.0,
            live.1.unwrap_or("(default)"),
            want.0,
            want.1.unwrap_or("(default)")
        ));
    }
    (paths, why)
}

/// The planned state for these attributes over the prior state (`None`: a create).
fn planned(d: &Attributes, prior: Option<&Value>, protected: &str, stack: &str) -> Value {
    let mut after = prior.cloned().unwrap_or_else(|| json!({"id": Value::Null}));
    after["name"] = json!(d.name);
    after["extensionType"] = json!(d.extension_type);
    if d.release_train.is_some() || prior.is_none() {
        after["releaseTrain"] = json!(d.release_train);
    }
    if d.version.is_some() || prior.is_none() {
        after["version"] = json!(d.version);
    }
    after["autoUpgradeMinorVersion"] = json!(d.auto_upgrade_minor_version);
    let declared = json!(d.scope);
    let want = scope_parts(&declared);
    let keep_default_namespace = prior
        .map(|p| scope_parts(&p["scope"]))
        .is_some_and(|live| live.0 == want.0 && want.1.is_none());
    if !keep_default_namespace {
        after["scope"] = json!(d.scope);
    }
    after["configurationSettings"] = json!(d.configuration_settings);
    after["protectedSettingsDigest"] = if protected.is_empty() {
        Value::Null
    } else {
        json!(protected)
    };
    after["owner"] = json!(stack);
    after
}

#[async_trait]
impl Kind<AzureCx> for Extension {
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
            &cluster_child_path(&req.address, None, (&sub, &rg), ARM_TYPE),
            ApiKind::Extensions,
            extension_state,
            &[
                "extensionType",
                "releaseTrain",
                "version",
                "autoUpgradeMinorVersion",
                "scope",
                "configurationSettings",
                "protectedSettingsDigest",
                "owner",
            ],
        )
        .await
    }

    async fn plan(&self, cx: &AzureCx, req: &PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse::default();
        let stack = cx.settings.stack.as_str();
        let owner = req
            .prior
            .as_ref()
            .and_then(|p| p["owner"].as_str())
            .map(str::to_owned);
        let ours = owner.as_deref() == Some(stack);
        if req.mode == PlanMode::Destroy {
            return plan_destroy(
                req.prior.as_ref(),
                ours,
                "destroy: uninstalls the extension from the cluster",
                || not_owned(&req.address, stack, "destroy"),
            );
        }
        let d: Attributes = match attributes(&req.address, &req.desired) {
            Ok(a) => a,
            Err(diag) => {
                resp.diagnostics.push(diag);
                return resp;
            }
        };
        let protected = match protected_digest(cx, &d, &req.address) {
            Ok(p) => p,
            Err(diag) => {
                resp.diagnostics.push(diag);
                return resp;
            }
        };
        let Some(prior) = &req.prior else {
            resp.action = Some(Action::Create);
            if let Some(why) = &d.added_implicitly {
                resp.reason = Some(Reason::new(ReasonCode::Other, why.clone()));
            }
            resp.after = Some(planned(&d, None, &protected, stack));
            return resp;
        };
        if let Some(o) = owner.as_deref().filter(|o| *o != stack) {
            return owned_by_another_stack(&req.address, "extension", o);
        }
        resp.outputs = Some(prior.clone());
        let (replace, why) = replacements(&d, prior);
        let after = planned(&d, Some(prior), &protected, stack);
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
        if &after == prior {
            resp.action = Some(Action::NoOp);
            return resp;
        }
        resp.action = Some(Action::Update);
        if owner.is_none() {
            resp.reason = Some(Reason::new(
                ReasonCode::Other,
                format!("adopts the existing extension into stack {stack}"),
            ));
        } else if prior["protectedSettingsDigest"] != after["protectedSettingsDigest"] {
            resp.reason = Some(Reason::new(
                ReasonCode::Other,
                "the protected settings changed (shown by their digest)",
            ));
        }
        resp.after = Some(after);
        resp
    }

    async fn apply(&self, cx: &AzureCx, req: &ApplyRequest) -> ApplyResponse {
        let address = &req.change.address;
        let started = Instant::now();
        let declared = declared::<Attributes>(address, &req.desired);
        let path = child_apply_path(
            &cx.settings.subscription,
            &req.change,
            (declared.as_ref().ok().and_then(|d| d.as_ref()))
                .map(|d| (d.subscription_id.as_str(), d.resource_group.as_str())),
            ARM_TYPE,
        );
        let result = match (req.change.action, declared) {
            (Action::Delete, _) => delete(cx, req, &path, started).await.map(|()| None),
            (_, Ok(Some(d))) => match protected_values(cx, &d, address) {
                Ok(values) => write(cx, req, &d, values, &path, started).await,
                Err(diag) => {
                    return ApplyResponse::failed(diag);
                }
            },
            (_, Ok(None)) => return ApplyResponse::default(),
            (_, Err(diag)) => {
                return ApplyResponse::failed(diag);
            }
        };
        applied(result, address)
    }

    async fn discover(&self, cx: &AzureCx, req: &DiscoverRequest) -> DiscoverResponse {
        let mut out = DiscoverResponse::default();
        let ours = match clusters_with_extensions(cx, &req.stack).await {
            Ok(c) => c,
            Err(e) => {
                out.diagnostics.push(discover_error(&e));
                return out;
            }
        };
        for (sub, cluster, rg) in &ours {
            let cluster = cluster.as_str();
            match cluster_extensions(cx, (sub, rg), cluster).await {
                Ok(items) => {
                    for e in items.iter() {
                        let state = extension_state(e);
                        if state["owner"].as_str() == Some(req.stack.as_str()) {
                            out.resources.push(Discovered {
                                address: address(cluster, s(e, "name")),
                                state,
                                version: None,
                                depends_on: vec![connected_cluster::address(cluster)],
                            });
                        }
                    }
                }
                // A cluster being deleted, or KubernetesConfiguration not registered: no
                // extensions to prune.
                Err(e) if matches!(e.status, Some(404) | Some(409)) => {}
                Err(e) => out.diagnostics.push(discover_error(&e)),
            }
        }
        out
    }
}

/// Where this stack installed extensions: (subscription, cluster, resource group) of each of its
/// connected clusters tagged `arcplan-extensions=<stack>`, in every subscription of the file,
/// from the lists read once per plan (nothing of the lists is copied).
pub(crate) async fn clusters_with_extensions(
    cx: &AzureCx,
    stack: &str,
) -> Result<Vec<(String, String, String)>, crate::azure::arm::ArmError> {
    let mut out = Vec::new();
    for sub in &cx.settings.subscriptions {
        let list = connected_cluster::list(cx, sub).await?;
        for c in list.iter().filter(|c| has_extensions_of(c, stack)) {
            out.push((sub.clone(), s(c, "name").to_owned(), rg_of(s(c, "id"))));
        }
    }
    Ok(out)
}

/// Whether a live connected cluster is this stack's and carries its `arcplan-extensions` tag
/// (the stack installed extensions, and so maybe custom locations, on it).
pub(crate) fn has_extensions_of(cluster: &Value, stack: &str) -> bool {
    owner_of(cluster).as_deref() == Some(stack)
        && tags_of(cluster)
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case(EXTENSIONS_TAG) && v == stack)
}

fn not_owned(address: &Address, stack: &str, what: &str) -> Diagnostic {
    Diagnostic::warning(
        "not-owned",
        format!(
            "extension {} does not carry this stack's ownership (configuration setting {EXTENSION_OWNER_SETTING}={stack}); {what} leaves it",
            address.name
        ),
    )
    .with_address(address.to_string())
}

#[cfg(test)]
mod tests {
    use super::write::properties;
    use super::*;

    fn attrs() -> Attributes {
        Attributes {
            subscription_id: "s".into(),
            resource_group: "rg".into(),
            cluster: "c1".into(),
            name: "monitor".into(),
            extension_type: "microsoft.azuremonitor.containers".into(),
            release_train: Some("Stable".into()),
            version: None,
            auto_upgrade_minor_version: true,
            scope: Scope::Cluster {
                release_namespace: None,
            },
            configuration_settings: BTreeMap::from([("a".to_owned(), "1".to_owned())]),
            configuration_protected_settings: BTreeMap::new(),
            added_implicitly: None,
        }
    }

    #[test]
    fn arcplans_settings_are_the_owner_and_digest_not_configuration() {
        let body = json!({
            "id": "/x/extensions/monitor", "name": "monitor",
            "properties": {
                "extensionType": "microsoft.azuremonitor.containers",
                "scope": {"cluster": {"releaseNamespace": "azuremonitor"}},
                "configurationSettings": {"a": "1", "arcplan.stack": "s1", "arcplan.protectedSettingsDigest": "abc"},
                "provisioningState": "Succeeded"
            }
        });
        let st = extension_state(&body);
        assert_eq!(st["owner"], "s1");
        assert_eq!(st["protectedSettingsDigest"], "abc");
        assert_eq!(st["configurationSettings"], json!({"a": "1"}));
        assert_eq!(st["autoUpgradeMinorVersion"], true, "the spec's default");
    }

    #[test]
    fn type_and_scope_replace_everything_else_updates() {
        let d = attrs();
        let prior = planned(&d, None, "", "s1");
        let mut prior = prior;
        prior["scope"] = json!({"cluster": {"releaseNamespace": "azuremonitor"}});
        assert!(
            replacements(&d, &prior).0.is_empty(),
            "a defaulted namespace is kept"
        );
        let again = planned(&d, Some(&prior), "", "s1");
        assert_eq!(
            again, prior,
            "re-planning the applied state changes nothing"
        );
        let mut other = d.clone();
        other.extension_type = "microsoft.policyinsights".into();
        assert_eq!(replacements(&other, &prior).0, vec!["/extensionType"]);
        let mut ns = d.clone();
        ns.scope = Scope::Namespace {
            target_namespace: Some("x".into()),
        };
        assert_eq!(replacements(&ns, &prior).0, vec!["/scope"]);
        let mut pinned = d.clone();
        pinned.auto_upgrade_minor_version = false;
        pinned.version = Some("3.1.0".into());
        pinned.release_train = None;
        assert!(replacements(&pinned, &prior).0.is_empty());
        assert_ne!(planned(&pinned, Some(&prior), "", "s1"), prior);
    }

    #[test]
    fn the_body_carries_the_owner_and_only_given_protected_values() {
        let d = attrs();
        let secret = BTreeMap::from([("key".to_owned(), "s3cret".to_owned())]);
        let b = properties(&d, "s1", Some(&secret), true);
        assert_eq!(
            b["properties"]["configurationSettings"]["arcplan.stack"],
            "s1"
        );
        assert_eq!(
            b["properties"]["configurationProtectedSettings"]["key"],
            "s3cret"
        );
        let digest_value =
            b["properties"]["configurationSettings"]["arcplan.protectedSettingsDigest"]
                .as_str()
                .unwrap();
        assert!(!digest_value.contains("s3cret"));
        assert_eq!(b["properties"]["extensionType"], d.extension_type);
        let patch = properties(&d, "s1", None, false);
        assert!(
            patch["properties"]
                .get("configurationProtectedSettings")
                .is_none()
        );
        assert!(
            patch["properties"].get("extensionType").is_none(),
            "not patchable"
        );
    }

    #[test]
    fn the_address_names_cluster_and_extension() {
        let a = address("c1", "monitor");
        assert_eq!(a.to_string(), "arc.extension.c1/monitor");
        let parsed: Address = a.to_string().parse().unwrap();
        assert_eq!(parsed, a);
    }
}
