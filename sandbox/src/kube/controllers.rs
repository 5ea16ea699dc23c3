//! Simulated controllers: deployments (ReplicaSet + pods, availability after a delay), namespace
//! finalization and the `default` ServiceAccount of every namespace.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::KubeApi;
use super::kinds::{apps, core};
use super::store::{Ctx, Mgr, now_rfc3339, suffix};

const MANAGER: &str = "kube-controller-manager";

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// `pod-template-hash`: FNV-1a of the template, in the apiserver's safe alphabet.
fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u32 = 0x811c_9dc5;
    for b in serde_json::to_vec(template).unwrap_or_default() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let mut out = String::new();
    let mut x = u64::from(h);
    while out.len() < 10 {
        out.push(ALPHABET[(x % ALPHABET.len() as u64) as usize] as char);
        x /= ALPHABET.len() as u64;
        if x == 0 {
            x = u64::from(h.rotate_left(out.len() as u32)) + 7;
        }
    }
    out
}

#[derive(Default)]
struct ControllerState {
    /// (namespace, deployment) → (pod-template-hash, replicas, when the rollout started).
    rollouts: HashMap<(String, String), (String, i64, Instant)>,
    /// Terminating namespaces → when first seen.
    terminating: HashMap<String, Instant>,
    node_rr: usize,
}

/// Runs the controllers until `cancel` fires.
pub async fn run(api: KubeApi, cancel: CancellationToken) {
    let delay = api.shared.opts.deployment_ready_delay;
    let tick = (delay / 4).clamp(Duration::from_millis(5), Duration::from_millis(100));
    let mut state = ControllerState::default();
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // (resourceVersion when the last pass started, when it started): a tick with no change since
    // (the pass's own writes count as changes) and nothing waiting on the clock would do nothing,
    // so it is skipped (idle clusters of a big fleet then cost next to nothing).
    let mut last: Option<(u64, Instant)> = None;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = interval.tick() => {}
        }
        if let Some((rv, started)) = last
            && rv == api.lock().rv
            && !state.waiting(started, delay)
        {
            continue;
        }
        last = Some((api.lock().rv, Instant::now()));
        namespaces(&api, &mut state);
        deployments(&api, &mut state);
    }
}

impl ControllerState {
    /// Whether a pass started at `started` may have left clock-driven work: a namespace still
    /// terminating, or a rollout not yet `delay` old then.
    fn waiting(&self, started: Instant, delay: Duration) -> bool {
        !self.terminating.is_empty()
            || self
                .rollouts
                .values()
                .any(|(_, _, since)| started.saturating_duration_since(*since) < delay)
    }
}

fn namespaces(api: &KubeApi, state: &mut ControllerState) {
    let ns_def = &core::NAMESPACES;
    let sa_def = &core::SERVICEACCOUNTS;
    let delay = api.shared.opts.namespace_delete_delay;
    let mut events = Vec::new();
    {
        let mut store = api.lock();
        let all: Vec<Value> = store.list(ns_def, None).into_iter().cloned().collect();
        let now = Instant::now();
        state
            .terminating
            .retain(|n, _| all.iter().any(|o| s(o, "/metadata/name") == n));
        for ns in &all {
            let name = s(ns, "/metadata/name").to_string();
            if ns.pointer("/metadata/deletionTimestamp").is_some() {
                let since = *state.terminating.entry(name.clone()).or_insert(now);
                events.extend(store.purge_namespace(&name));
                if now.duration_since(since) >= delay {
                    events.extend(store.finalize_namespace(&name));
                }
            } else if store.get(sa_def, &name, "default").is_none() {
                let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}});
                if let Ok((_, evs)) = store.create(sa_def, &name, sa, &Ctx::internal(MANAGER)) {
                    events.extend(evs);
                }
            }
        }
    }
    api.publish(events);
}

fn condition(
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    old: Option<&Value>,
    with_update: bool,
) -> Value {
    let now = now_rfc3339();
    let prev = old
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| s(c, "/type") == kind));
    let same = prev.is_some_and(|p| {
        s(p, "/status") == status && s(p, "/reason") == reason && s(p, "/message") == message
    });
    let transition = match prev {
        Some(p) if s(p, "/status") == status => s(p, "/lastTransitionTime").to_string(),
        _ => now.clone(),
    };
    let mut c = json!({"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": transition});
    if with_update {
        c["lastUpdateTime"] = json!(if same {
            prev.map(|p| s(p, "/lastUpdateTime").to_string())
                .unwrap_or(now)
        } else {
            now
        });
    }
    c
}

fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": s(owner, "/metadata/name"),
        "uid": s(owner, "/metadata/uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

fn owned_by<'a>(objs: &'a [Value], uid: &str) -> Vec<&'a Value> {
    objs.iter()
        .filter(|o| {
            o.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|r| s(r, "/uid") == uid))
        })
        .collect()
}

fn running_status(pod: &Value, node_ip: &str, pod_ip: &str, ready: bool) -> Value {
    let now = now_rfc3339();
    let old = pod.get("status");
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let started = old
        .and_then(|o| o.get("startTime"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or(now.clone());
    if !ready {
        return json!({
            "phase": "Pending",
            "qosClass": "BestEffort",
            "conditions": [condition("PodScheduled", "True", "", "", old, false)],
        });
    }
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({
                "name": c["name"],
                "image": c["image"],
                "imageID": format!("{}@sha256:{}", s(c, "/image"), "0".repeat(64)),
                "containerID": format!("containerd://{}", uuid::Uuid::new_v4().simple()),
                "ready": true,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": started}},
            })
        })
        .collect();
    json!({
        "phase": "Running",
        "qosClass": "BestEffort",
        "hostIP": node_ip,
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": started,
        "conditions": [
            condition("Initialized", "True", "", "", old, false),
            condition("Ready", "True", "", "", old, false),
            condition("ContainersReady", "True", "", "", old, false),
            condition("PodScheduled", "True", "", "", old, false),
        ],
        "containerStatuses": statuses,
    })
}

fn strip_cond_reason(v: &mut Value) {
    // Pod conditions carry no reason/message when empty.
    if let Some(cs) = v.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
            if c.get("reason").and_then(Value::as_str) == Some("") {
                c.remove("reason");
            }
            if c.get("message").and_then(Value::as_str) == Some("") {
                c.remove("message");
            }
        }
    }
}

fn same_ignoring_times(a: Option<&Value>, b: &Value) -> bool {
    fn clean(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "lastUpdateTime"
                                | "lastTransitionTime"
                                | "containerID"
                                | "startTime"
                                | "startedAt"
                        )
                    })
                    .map(|(k, v)| (k.clone(), clean(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
            other => other.clone(),
        }
    }
    a.is_some_and(|a| clean(a) == clean(b))
}

fn deployments(api: &KubeApi, state: &mut ControllerState) {
    let (dep_def, rs_def, pod_def) = (&apps::DEPLOYMENTS, &apps::REPLICASETS, &core::PODS);
    let delay = api.shared.opts.deployment_ready_delay;
    let nodes: Vec<(String, String)> = api
        .list("v1", "Node", None)
        .iter()
        .map(|n| {
            let ip = n
                .pointer("/status/addresses")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(|x| s(x, "/type") == "InternalIP"))
                .map(|x| s(x, "/address").to_string())
                .unwrap_or_default();
            (s(n, "/metadata/name").to_string(), ip)
        })
        .collect();
    let mut events = Vec::new();
    let mut store = api.lock();
    let deps: Vec<Value> = store.list(dep_def, None).into_iter().cloned().collect();
    let all_rs: Vec<Value> = store.list(rs_def, None).into_iter().cloned().collect();
    let all_pods: Vec<Value> = store.list(pod_def, None).into_iter().cloned().collect();
    state.rollouts.retain(|(ns, n), _| {
        deps.iter()
            .any(|d| s(d, "/metadata/namespace") == ns && s(d, "/metadata/name") == n)
    });
    let ctx = Ctx::internal(MANAGER);
    let status_ctx = Ctx {
        subresource: "status".into(),
        keep_status: false,
        ..Ctx::internal(MANAGER)
    };
    let kubelet_ctx = Ctx {
        subresource: "status".into(),
        keep_status: false,
        ..Ctx::internal("kubelet")
    };
    for dep in deps {
        if dep.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        let ns = s(&dep, "/metadata/namespace").to_string();
        let name = s(&dep, "/metadata/name").to_string();
        let uid = s(&dep, "/metadata/uid").to_string();
        let template = dep.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let replicas = dep
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .max(0);
        let hash = template_hash(&template);
        let now = Instant::now();
        let entry = state
            .rollouts
            .entry((ns.clone(), name.clone()))
            .or_insert_with(|| (hash.clone(), replicas, now));
        if entry.0 != hash || entry.1 != replicas {
            *entry = (hash.clone(), replicas, now);
        }
        let ready = now.duration_since(entry.2) >= delay;
        let rs_name = format!("{name}-{hash}");
        // ReplicaSets: keep the current one, remove the others (their pods go with them).
        for old_rs in owned_by(&all_rs, &uid) {
            let n = s(old_rs, "/metadata/name");
            if n != rs_name
                && let Ok((_, evs)) = store.delete(rs_def, &ns, n, &Default::default())
            {
                events.extend(evs);
            }
        }
        let mut labels = template
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(json!({}));
        labels["pod-template-hash"] = json!(hash);
        let rs = match store.get(rs_def, &ns, &rs_name).cloned() {
            Some(rs) if rs.pointer("/spec/replicas").and_then(Value::as_i64) == Some(replicas) => {
                rs
            }
            existing => {
                let mut selector = dep.pointer("/spec/selector").cloned().unwrap_or(json!({}));
                if let Some(m) = selector
                    .get_mut("matchLabels")
                    .and_then(Value::as_object_mut)
                {
                    m.insert("pod-template-hash".into(), json!(hash));
                }
                let mut tmpl = template.clone();
                tmpl["metadata"]["labels"] = labels.clone();
                let mut body = json!({
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {
                        "name": rs_name, "namespace": ns, "labels": labels,
                        "annotations": {"deployment.kubernetes.io/desired-replicas": replicas.to_string(), "deployment.kubernetes.io/max-replicas": (replicas + 1).to_string(), "deployment.kubernetes.io/revision": "1"},
                        "ownerReferences": [owner_ref(&dep)],
                    },
                    "spec": {"replicas": replicas, "selector": selector, "template": tmpl},
                });
                let res = match existing {
                    Some(old) => {
                        body["metadata"]["resourceVersion"] =
                            old["metadata"]["resourceVersion"].clone();
                        store.write(
                            rs_def,
                            &ns,
                            &rs_name,
                            Some(&old),
                            body,
                            Mgr::Update(None),
                            &ctx,
                        )
                    }
                    None => store.create(rs_def, &ns, body, &ctx),
                };
                match res {
                    Ok((obj, evs)) => {
                        events.extend(evs);
                        obj
                    }
                    Err(_) => continue,
                }
            }
        };
        let rs_uid = s(&rs, "/metadata/uid").to_string();
        // Pods of the current ReplicaSet.
        let mut pods: Vec<Value> = owned_by(&all_pods, &rs_uid).into_iter().cloned().collect();
        pods.retain(|p| store.get(pod_def, &ns, s(p, "/metadata/name")).is_some());
        while (pods.len() as i64) > replicas {
            if let Some(p) = pods.pop()
                && let Ok((_, evs)) =
                    store.delete(pod_def, &ns, s(&p, "/metadata/name"), &Default::default())
            {
                events.extend(evs);
            }
        }
        while (pods.len() as i64) < replicas {
            let pod_name = format!("{rs_name}-{}", suffix(5));
            let node = nodes
                .get(state.node_rr % nodes.len().max(1))
                .map(|n| n.0.clone())
                .unwrap_or_default();
            state.node_rr += 1;
            let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
            spec["nodeName"] = json!(node);
            let mut meta = json!({"name": pod_name, "namespace": ns, "labels": labels, "ownerReferences": [owner_ref(&rs)]});
            if let Some(a) = template.pointer("/metadata/annotations") {
                meta["annotations"] = a.clone();
            }
            let body = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec});
            match store.create(pod_def, &ns, body, &ctx) {
                Ok((p, evs)) => {
                    events.extend(evs);
                    pods.push(p);
                }
                Err(_) => break,
            }
        }
        // Kubelet: pods become Running and Ready once the delay has passed.
        let mut ready_count = 0i64;
        for (i, pod) in pods.iter().enumerate() {
            let node = s(pod, "/spec/nodeName");
            let node_ip = nodes
                .iter()
                .find(|n| n.0 == node)
                .map(|n| n.1.clone())
                .unwrap_or_default();
            let pod_ip = format!(
                "10.244.{}.{}",
                i % 250,
                (pod.pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .and_then(|r| r.parse::<u64>().ok())
                    .unwrap_or(0)
                    % 250)
                    + 2
            );
            let pod_ip = s(pod, "/status/podIP")
                .to_string()
                .chars()
                .next()
                .map(|_| s(pod, "/status/podIP").to_string())
                .unwrap_or(pod_ip);
            let mut st = running_status(pod, &node_ip, &pod_ip, ready);
            strip_cond_reason(&mut st);
            if ready {
                ready_count += 1;
            }
            if !same_ignoring_times(pod.get("status"), &st) {
                let mut body = pod.clone();
                body["status"] = st;
                let pname = s(pod, "/metadata/name").to_string();
                if let Ok((_, evs)) = store.write(
                    pod_def,
                    &ns,
                    &pname,
                    Some(pod),
                    body,
                    Mgr::Update(None),
                    &kubelet_ctx,
                ) {
                    events.extend(evs);
                }
            }
        }
        let n = pods.len() as i64;
        // ReplicaSet status.
        let rs_status = json!({
            "replicas": n,
            "fullyLabeledReplicas": n,
            "readyReplicas": ready_count,
            "availableReplicas": ready_count,
            "observedGeneration": rs.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        });
        let mut rs_status = rs_status;
        if let Some(m) = rs_status.as_object_mut() {
            m.retain(|_, v| v != &json!(0));
        }
        if !same_ignoring_times(rs.get("status"), &rs_status) {
            let mut body = rs.clone();
            body["status"] = rs_status;
            if let Ok((_, evs)) = store.write(
                rs_def,
                &ns,
                &rs_name,
                Some(&rs),
                body,
                Mgr::Update(None),
                &status_ctx,
            ) {
                events.extend(evs);
            }
        }
        // Deployment status.
        let old_status = dep.get("status");
        let available = ready_count >= replicas;
        let mut status = json!({
            "observedGeneration": dep.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
            "replicas": n,
            "updatedReplicas": n,
            "readyReplicas": ready_count,
            "availableReplicas": ready_count,
        });
        if replicas - ready_count > 0 {
            status["unavailableReplicas"] = json!(replicas - ready_count);
        }
        let conditions = if available {
            vec![
                condition(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                    old_status,
                    true,
                ),
                condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                    old_status,
                    true,
                ),
            ]
        } else {
            vec![
                condition(
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                    old_status,
                    true,
                ),
                condition(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    &format!("ReplicaSet \"{rs_name}\" is progressing."),
                    old_status,
                    true,
                ),
            ]
        };
        status["conditions"] = json!(conditions);
        if let Some(m) = status.as_object_mut() {
            m.retain(|k, v| k == "observedGeneration" || k == "conditions" || v != &json!(0));
        }
        if !same_ignoring_times(old_status, &status) {
            let mut body = dep.clone();
            body["status"] = status;
            if let Ok((_, evs)) = store.write(
                dep_def,
                &ns,
                &name,
                Some(&dep),
                body,
                Mgr::Update(None),
                &status_ctx,
            ) {
                events.extend(evs);
            }
        }
    }
    drop(store);
    api.publish(events);
}
