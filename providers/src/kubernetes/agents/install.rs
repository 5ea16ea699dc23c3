//! Installing and removing the agents: server-side apply of the manifests set or `helm upgrade
//! --install` (with the key and proxy settings on standard input), and their removal with the
//! wait for `azure-arc` to terminate.

use super::*;

pub(super) async fn install_manifests(
    p: &KubernetesProvider,
    cluster: &Cluster,
    desired: &Value,
    progress: &Progress<'_>,
) -> Result<Vec<String>, Diagnostic> {
    let mut objs = desired_set(p, desired).await?;
    let kinds = resolve_kinds(cluster, &mut objs).await?;
    let mut order: Vec<usize> = (0..objs.len()).collect();
    order.sort_by_key(|i| manifests::apply_rank(&objs[*i].kind));
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    for (n, i) in order.iter().enumerate() {
        let (o, kind) = (&objs[*i], &kinds[*i]);
        let api = dyn_api(cluster, kind, o.namespace.as_deref());
        api.patch(&o.name, &pp, &Patch::Apply(&o.body))
            .await
            .map_err(|e| cluster.api_error(&format!("apply {}", short_id(o)), &e))?;
        if (n + 1) % 5 == 0 || n + 1 == order.len() {
            progress.say(format!("applied {}/{} objects", n + 1, order.len()));
        }
    }
    let (_, extra) = read_live(cluster, &objs, &kinds).await?;
    for e in &extra {
        let api = dyn_api(cluster, &e.kind, e.namespace.as_deref());
        match api.delete(&e.name, &DeleteParams::background()).await {
            Ok(_) => progress.say(format!("pruned {}", e.short)),
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(cluster.api_error(&format!("prune {}", e.short), &err)),
        }
    }
    Ok(deployment_names(&objs))
}

pub(super) async fn read_private_key(
    cluster: &Cluster,
) -> Result<crate::kubernetes::key::PrivateKeyPem, Diagnostic> {
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let secret = api
        .get_opt(KEY_SECRET)
        .await
        .map_err(|e| cluster.api_error(&format!("read Secret {NAMESPACE}/{KEY_SECRET}"), &e))?;
    secret.as_ref().and_then(pem_of).ok_or_else(|| {
        Diagnostic::error(
            "k8s-key-missing",
            format!(
                "Secret {NAMESPACE}/{KEY_SECRET} on {} holds no onboarding key, which the Helm chart needs",
                cluster.describe()
            ),
        )
        .with_hint("plan again: the onboarding key is created before the agents")
    })
}

pub(super) fn proxy_secret(
    p: &KubernetesProvider,
    desired: &Value,
) -> Result<Option<String>, Diagnostic> {
    let Some(creds) = desired
        .pointer("/proxy/credentials")
        .filter(|c| !c.is_null())
    else {
        return Ok(None);
    };
    if let Some(var) = creds.get("env").and_then(Value::as_str) {
        return p.options().env(var).map(Some).ok_or_else(|| {
            Diagnostic::error(
                "secret-missing",
                format!(
                    "the proxy credentials come from environment variable {var}, which is not set"
                ),
            )
            .with_key("agents.proxy.credentials")
            .with_hint(format!("export {var}=user:password"))
        });
    }
    if let Some(file) = creds.get("file").and_then(Value::as_str) {
        let path = crate::kubernetes::access::resolve_path(&p.options().base_dir, file);
        return std::fs::read_to_string(&path)
            .map(|s| Some(s.trim().to_owned()))
            .map_err(|e| {
                Diagnostic::error(
                    "secret-missing",
                    format!(
                        "cannot read the proxy credentials file {}: {e}",
                        path.display()
                    ),
                )
                .with_key("agents.proxy.credentials")
            });
    }
    Ok(None)
}

pub(super) async fn install_helm(
    p: &KubernetesProvider,
    cluster: &Cluster,
    desired: &Value,
    timeout: Duration,
    cancel: &CancellationToken,
    progress: &Progress<'_>,
) -> Result<Option<Vec<String>>, Diagnostic> {
    let key = read_private_key(cluster).await?;
    let creds = proxy_secret(p, desired)?;
    let cert = match desired.pointer("/proxy/caCert").and_then(Value::as_str) {
        Some(f) => {
            let path = crate::kubernetes::access::resolve_path(&p.options().base_dir, f);
            Some(tokio::fs::read_to_string(&path).await.map_err(|e| {
                Diagnostic::error(
                    "proxy-ca-unreadable",
                    format!(
                        "cannot read the proxy CA certificate {}: {e}",
                        path.display()
                    ),
                )
                .with_key("agents.proxy.caCert")
            })?)
        }
        None => None,
    };
    let values = helm::install_values(desired, &key, creds.as_deref(), cert.as_deref());
    let inv = helm::upgrade_install(
        p.options().helm_program(),
        version(desired).as_deref(),
        timeout,
        &cluster.kubeconfig,
        &cluster.context,
        &values,
    );
    drop(values);
    progress.say(format!(
        "helm upgrade --install {RELEASE_NAME} (namespace {RELEASE_NAMESPACE})"
    ));
    helm::run(&inv, cancel).await?;
    let names = read_release_full(cluster)
        .await?
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty());
    Ok(names)
}

pub(super) async fn wait_gone(
    cluster: &Cluster,
    ns: &str,
    timeout: Duration,
    poll: Duration,
    progress: &Progress<'_>,
) -> Result<(), Diagnostic> {
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    let started = Instant::now();
    let mut said = false;
    loop {
        match api.get_opt(ns).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) => {}
            Err(e) => return Err(cluster.api_error(&format!("read namespace {ns}"), &e)),
        }
        if !said {
            progress.say(format!("waiting for namespace {ns} to terminate"));
            said = true;
        }
        if started.elapsed() >= timeout {
            return Err(Diagnostic::error(
                "k8s-namespace-stuck",
                format!(
                    "namespace {ns} on {} is still terminating after {}",
                    cluster.describe(),
                    humantime::format_duration(Duration::from_secs(timeout.as_secs()))
                ),
            )
            .with_hint(format!("`kubectl get namespace {ns} -o yaml` shows what blocks it (finalizers, custom resources whose controller is gone)")));
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = progress.req.cancel.cancelled() => {
                return Err(Diagnostic::error("cancelled", format!("waiting for namespace {ns} to terminate was interrupted"))
                    .with_hint("plan again to converge"));
            }
        }
    }
}

/// Removes the agents. With `everything`, also deletes namespaces `azure-arc` and
/// `azure-arc-release` and waits for them (destroy); otherwise keeps the namespaces (and the
/// key's Secret) for a reinstall.
pub(super) async fn remove_agents(
    p: &KubernetesProvider,
    cluster: &Cluster,
    desired: &Value,
    helm_installed: bool,
    timeout: Duration,
    progress: &Progress<'_>,
    everything: bool,
) -> Result<(), Diagnostic> {
    let poll = p.options().poll_interval;
    if helm_installed {
        if helm::read_release(cluster, RELEASE_NAME, RELEASE_NAMESPACE)
            .await?
            .is_some()
        {
            progress.say(format!("helm uninstall {RELEASE_NAME}"));
            let inv = helm::uninstall(
                p.options().helm_program(),
                timeout,
                &cluster.kubeconfig,
                &cluster.context,
            );
            helm::run(&inv, &progress.req.cancel).await?;
        }
    } else {
        let mut objs = desired_set(p, desired).await?;
        let kinds = resolve_kinds(cluster, &mut objs).await?;
        let (live, extra) = read_live(cluster, &objs, &kinds).await?;
        let mut doomed: Vec<(Kind, Option<String>, String, String)> = Vec::new();
        for ((o, kind), l) in objs.iter().zip(&kinds).zip(&live) {
            if l.is_none() || o.kind == "Namespace" {
                continue;
            }
            // On destroy the namespace deletion takes namespaced objects along.
            if everything && kind.namespaced && o.namespace.as_deref() == Some(NAMESPACE) {
                continue;
            }
            doomed.push((
                kind.clone(),
                o.namespace.clone(),
                o.name.clone(),
                short_id(o),
            ));
        }
        for e in extra {
            doomed.push((e.kind, e.namespace, e.name, e.short));
        }
        for (kind, ns, name, short) in doomed {
            let api = dyn_api(cluster, &kind, ns.as_deref());
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => progress.say(format!("deleted {short}")),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(cluster.api_error(&format!("delete {short}"), &e)),
            }
        }
    }
    if !everything {
        // Wait for the old Deployments to go so the reinstall starts clean.
        let api: Api<DynamicObject> = Api::namespaced_with(
            cluster.client.clone(),
            NAMESPACE,
            &ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("apps", "v1", "Deployment"),
                "deployments",
            ),
        );
        let started = Instant::now();
        while started.elapsed() < timeout {
            let left = api
                .list_metadata(
                    &ListParams::default()
                        .labels(&format!("{}={}", MANAGED_BY_LABEL.0, MANAGED_BY_LABEL.1)),
                )
                .await
                .map_err(|e| cluster.api_error("list Deployments in azure-arc", &e))?;
            if left.items.is_empty() {
                break;
            }
            tokio::time::sleep(poll.min(Duration::from_millis(500))).await;
        }
        return Ok(());
    }
    for ns in [NAMESPACE, RELEASE_NAMESPACE] {
        let api: Api<Namespace> = Api::all(cluster.client.clone());
        match api.delete(ns, &DeleteParams::background()).await {
            Ok(_) => progress.say(format!("deleting namespace {ns}")),
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(cluster.api_error(&format!("delete namespace {ns}"), &e)),
        }
        wait_gone(
            cluster,
            ns,
            timeout.min(Duration::from_secs(180)).max(poll),
            poll,
            progress,
        )
        .await?;
    }
    Ok(())
}
