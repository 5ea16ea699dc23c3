//! Reading what is installed: the object kinds of the set, the live objects (the fields they
//! declare) and the labelled ones the set no longer has, and Helm's release.

use super::*;

pub(super) async fn resolve_kinds(
    cluster: &Cluster,
    objs: &mut [DesiredObject],
) -> Result<Vec<Kind>, Diagnostic> {
    let mut cache: HashMap<(String, String), Kind> = HashMap::new();
    let mut out = Vec::new();
    for o in objs.iter_mut() {
        let key = (o.api_version.clone(), o.kind.clone());
        let kind = match cache.get(&key) {
            Some(k) => k.clone(),
            None => {
                let gvk = GroupVersionKind::gvk(o.group(), o.version(), &o.kind);
                let k = match manifests::known_kind(&o.api_version, &o.kind) {
                    Some((plural, namespaced)) => Kind {
                        ar: ApiResource::from_gvk_with_plural(&gvk, plural),
                        namespaced,
                    },
                    None => {
                        let (ar, caps) = kube::discovery::pinned_kind(&cluster.client, &gvk)
                            .await
                            .map_err(|e| match e {
                                kube::Error::Discovery(_) => Diagnostic::error(
                                    "k8s-unknown-kind",
                                    format!(
                                        "{} does not serve {} {} (needed by {})",
                                        cluster.describe(),
                                        o.api_version,
                                        o.kind,
                                        short_id(o)
                                    ),
                                )
                                .with_key("agents.manifests")
                                .with_hint("install the CustomResourceDefinition first, or remove the object from the manifest file"),
                                other => cluster.api_error(
                                    &format!("discover {} {}", o.api_version, o.kind),
                                    &other,
                                ),
                            })?;
                        Kind {
                            ar,
                            namespaced: caps.scope == Scope::Namespaced,
                        }
                    }
                };
                cache.insert(key, k.clone());
                k
            }
        };
        if kind.namespaced {
            let ns = o.namespace.clone().unwrap_or_else(|| NAMESPACE.to_owned());
            o.set_namespace(Some(&ns));
        } else {
            o.set_namespace(None);
        }
        out.push(kind);
    }
    Ok(out)
}

pub(super) fn excluded(kind: &str, ns: Option<&str>, name: &str) -> bool {
    matches!(
        (kind, ns, name),
        ("Secret", Some(NAMESPACE), KEY_SECRET)
            | ("Namespace", None, NAMESPACE | RELEASE_NAMESPACE)
            | ("Lease", _, LOCK_NAME)
    )
}

pub(super) fn dyn_api(cluster: &Cluster, kind: &Kind, ns: Option<&str>) -> Api<DynamicObject> {
    match (kind.namespaced, ns) {
        (true, Some(ns)) => Api::namespaced_with(cluster.client.clone(), ns, &kind.ar),
        _ => Api::all_with(cluster.client.clone(), &kind.ar),
    }
}

/// List items come without `apiVersion` and `kind`; put them back.
pub(super) fn typed(mut v: Value, kind: &Kind) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.insert("apiVersion".into(), kind.ar.api_version.clone().into());
        m.insert("kind".into(), kind.ar.kind.clone().into());
    }
    v
}

/// Reads the live objects of the set and the labelled objects it no longer has.
pub(super) async fn read_live(
    cluster: &Cluster,
    objs: &[DesiredObject],
    kinds: &[Kind],
) -> Result<(Vec<Option<Value>>, Vec<Extra>), Diagnostic> {
    let selector = format!("{}={}", MANAGED_BY_LABEL.0, MANAGED_BY_LABEL.1);
    let mut labelled: BTreeMap<String, (Kind, Value)> = BTreeMap::new();
    let mut listed: Vec<String> = Vec::new();
    for kind in kinds {
        let kkey = format!("{} {}", kind.ar.api_version, kind.ar.kind);
        if listed.contains(&kkey) {
            continue;
        }
        listed.push(kkey);
        let api = dyn_api(cluster, kind, None);
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| cluster.api_error(&format!("list {} ({selector})", kind.ar.plural), &e))?;
        for item in list.items {
            let ns = item.metadata.namespace.clone();
            let name = item.metadata.name.clone().unwrap_or_default();
            let id = object_id(&kind.ar.api_version, &kind.ar.kind, ns.as_deref(), &name);
            let v = typed(serde_json::to_value(&item).unwrap_or(Value::Null), kind);
            labelled.insert(id, (kind.clone(), v));
        }
    }
    let mut live = Vec::new();
    for (o, kind) in objs.iter().zip(kinds) {
        let id = o.id();
        let found = match labelled.remove(&id) {
            Some((_, v)) => Some(v),
            None => {
                let api = dyn_api(cluster, kind, o.namespace.as_deref());
                api.get_opt(&o.name)
                    .await
                    .map_err(|e| cluster.api_error(&format!("read {}", short_id(o)), &e))?
                    .map(|d| typed(serde_json::to_value(&d).unwrap_or(Value::Null), kind))
            }
        };
        live.push(found);
    }
    let extra = labelled
        .into_iter()
        .filter_map(|(id, (kind, v))| {
            let ns = v
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let name = v
                .pointer("/metadata/name")
                .and_then(Value::as_str)?
                .to_owned();
            if excluded(&kind.ar.kind, ns.as_deref(), &name)
                || v.pointer("/metadata/deletionTimestamp").is_some()
            {
                return None;
            }
            let short = match &ns {
                Some(n) => format!("{} {n}/{name}", kind.ar.kind),
                None => format!("{} {name}", kind.ar.kind),
            };
            Some(Extra {
                id,
                short,
                kind,
                namespace: ns,
                name,
            })
        })
        .collect();
    Ok((live, extra))
}

pub(super) fn masked(v: &Value) -> Value {
    let mut v = v.clone();
    mask_secret(&mut v);
    v
}

pub(super) fn deployment_names(objs: &[DesiredObject]) -> Vec<String> {
    objs.iter()
        .filter(|o| o.kind == "Deployment" && o.namespace.as_deref() == Some(NAMESPACE))
        .map(|o| o.name.clone())
        .collect()
}

/// Deployments in `azure-arc` a release rendered (from its manifest).
pub(super) fn release_deployments(manifest: &str) -> Vec<String> {
    serde_saphyr::from_multiple::<Value>(manifest)
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("Deployment"))
        .filter(|d| {
            d.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .is_none_or(|n| n == NAMESPACE)
        })
        .filter_map(|d| d.pointer("/metadata/name")?.as_str().map(str::to_owned))
        .collect()
}

pub(super) async fn read_release_full(
    cluster: &Cluster,
) -> Result<Option<(helm::HelmRelease, Vec<String>)>, Diagnostic> {
    // The facts come from `helm::read_release`; the rendered Deployment names need the manifest,
    // which `HelmRelease` does not keep, so read the storage Secret once more only when needed.
    let Some(rel) = helm::read_release(cluster, RELEASE_NAME, RELEASE_NAMESPACE).await? else {
        return Ok(None);
    };
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), RELEASE_NAMESPACE);
    let name = format!("sh.helm.release.v1.{RELEASE_NAME}.v{}", rel.revision);
    let deployments = match api.get_opt(&name).await {
        Ok(Some(s)) => s
            .data
            .as_ref()
            .and_then(|d| d.get("release"))
            .and_then(|b| helm::decode_release(&b.0).ok())
            .and_then(|v| {
                v.get("manifest")
                    .and_then(Value::as_str)
                    .map(release_deployments)
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    Ok(Some((rel, deployments)))
}
