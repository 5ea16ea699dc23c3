//! The generic object store: keys, resourceVersions, create/update/patch/apply/delete semantics
//! shared by every resource. What differs between kinds (defaults, validation, generation,
//! deletion) is asked of the kind's definition ([`ResourceDef`]), never decided by its name.

mod delete;
mod patch;

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Map, Value, json};

use super::fields::{self, ManagerEntry};
use super::kinds::{self, cause};
use super::resources::{self, Defaulting, Deletion, ResourceDef};
use super::status::ApiError;
use super::{NodeSpec, WatchEvent};

/// (group, plural, namespace, name); namespace is empty for cluster-scoped objects.
type Key = (String, String, String, String);

/// The current time as the apiserver writes timestamps (RFC 3339, seconds, `Z`).
pub fn now_rfc3339() -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&fmt)
        .unwrap_or_default()
}

/// Per-request write context.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Field manager name.
    pub manager: String,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `""` or `"status"`.
    pub subresource: String,
    /// Internal writes (accessors, controllers) may set status through the main resource.
    pub keep_status: bool,
}

impl Ctx {
    /// A context for internal writes by `manager`.
    pub fn internal(manager: &str) -> Self {
        Ctx {
            manager: manager.to_string(),
            dry_run: false,
            subresource: String::new(),
            keep_status: true,
        }
    }
}

/// DeleteOptions the store understands.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    /// `propagationPolicy` (`Orphan` keeps dependents).
    pub propagation: Option<String>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// How managedFields are produced for a write.
pub enum Mgr {
    /// An update operation (managedFields optionally supplied by the client).
    Update(Option<Vec<ManagerEntry>>),
    /// Already computed by server-side apply.
    Apply(Vec<ManagerEntry>),
}

/// A past change as kept for watches that resume from an older resourceVersion: the object as
/// compact JSON (several times smaller than the parsed value), parsed again only on a replay.
struct PastEvent {
    rv: u64,
    kind: &'static str,
    group: String,
    plural: String,
    namespace: String,
    object: Box<[u8]>,
}

impl PastEvent {
    /// Bytes it holds (what the history's byte bound counts).
    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.object.len()
            + self.group.len()
            + self.plural.len()
            + self.namespace.len()
    }

    fn event(&self) -> WatchEvent {
        WatchEvent {
            rv: self.rv,
            kind: self.kind,
            group: self.group.clone(),
            plural: self.plural.clone(),
            namespace: self.namespace.clone(),
            object: serde_json::from_slice(&self.object).unwrap_or(Value::Null),
        }
    }
}

/// All objects and the resourceVersion counter.
pub struct Store {
    /// The last resourceVersion handed out.
    pub rv: u64,
    objects: BTreeMap<Key, Value>,
    /// The newest changes, bounded both in number and in bytes, like the apiserver's watch cache:
    /// a watch from a resourceVersion older than the first kept is answered 410 Gone.
    history: VecDeque<PastEvent>,
    history_cap: usize,
    history_cap_bytes: usize,
    history_bytes: usize,
    /// Whether namespaces get the `kubernetes.io/metadata.name` label (servers from v1.21 on).
    pub namespace_name_label: bool,
}

fn key(def: &ResourceDef, ns: &str, name: &str) -> Key {
    (
        def.group.to_string(),
        def.plural.to_string(),
        if def.namespaced {
            ns.to_string()
        } else {
            String::new()
        },
        name.to_string(),
    )
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(o) = obj else {
        unreachable!("made an object above")
    };
    let m = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    let Value::Object(m) = m else {
        unreachable!("made an object above")
    };
    m
}

fn random_suffix(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `generateName` suffix (5 characters from the apiserver's alphabet).
pub fn name_suffix() -> String {
    random_suffix(5)
}

/// A random suffix of `n` characters from the apiserver's alphabet.
pub fn suffix(n: usize) -> String {
    random_suffix(n)
}

fn spec_of(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    o
}

fn reset_paths(def: &ResourceDef, ctx: &Ctx) -> Vec<Vec<String>> {
    if def.has_status && ctx.subresource.is_empty() && !ctx.keep_status {
        vec![vec!["f:status".to_string()]]
    } else {
        Vec::new()
    }
}

impl Store {
    /// An empty store keeping at most `history_cap` past events and `history_cap_bytes` of them.
    pub fn new(history_cap: usize, history_cap_bytes: usize) -> Self {
        Store {
            rv: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_cap,
            history_cap_bytes,
            history_bytes: 0,
            namespace_name_label: false,
        }
    }

    /// One object.
    pub fn get(&self, def: &ResourceDef, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&key(def, ns, name))
    }

    /// Objects of one resource (in one namespace, or everywhere), sorted by namespace and name.
    pub fn list(&self, def: &ResourceDef, ns: Option<&str>) -> Vec<&Value> {
        let start = (
            def.group.to_string(),
            def.plural.to_string(),
            String::new(),
            String::new(),
        );
        self.objects
            .range(start..)
            .take_while(|(k, _)| k.0 == def.group && k.1 == def.plural)
            .filter(|(k, _)| !def.namespaced || ns.is_none_or(|n| k.2 == n))
            .map(|(_, v)| v)
            .collect()
    }

    /// Watch events after `rv` (`None` when `rv` is older than the kept history).
    pub fn events_since(&self, rv: u64) -> Option<Vec<WatchEvent>> {
        if rv < self.rv
            && let Some(first) = self.history.front()
            && first.rv > rv + 1
        {
            return None;
        }
        if rv < self.rv && self.history.is_empty() {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|e| e.rv > rv)
                .map(PastEvent::event)
                .collect(),
        )
    }

    fn record(&mut self, ev: WatchEvent) -> WatchEvent {
        let past = PastEvent {
            rv: ev.rv,
            kind: ev.kind,
            group: ev.group.clone(),
            plural: ev.plural.clone(),
            namespace: ev.namespace.clone(),
            object: serde_json::to_vec(&ev.object)
                .unwrap_or_default()
                .into_boxed_slice(),
        };
        self.history_bytes += past.size();
        self.history.push_back(past);
        while self.history.len() > self.history_cap
            || (self.history_bytes > self.history_cap_bytes && self.history.len() > 1)
        {
            if let Some(old) = self.history.pop_front() {
                self.history_bytes -= old.size();
            }
        }
        ev
    }

    /// The phase of a namespace (`None` if it does not exist).
    pub fn namespace_phase(&self, ns: &str) -> Option<String> {
        let obj = self.get(&kinds::core::NAMESPACES, "", ns)?;
        Some(
            obj.pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Active")
                .to_string(),
        )
    }

    fn commit(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        mut obj: Value,
        kind: &'static str,
    ) -> (Value, WatchEvent) {
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.objects.insert(key(def, ns, name), obj.clone());
        let ev = WatchEvent {
            rv: self.rv,
            kind,
            group: def.group.to_string(),
            plural: def.plural.to_string(),
            namespace: if def.namespaced {
                ns.to_string()
            } else {
                String::new()
            },
            object: obj.clone(),
        };
        let ev = self.record(ev);
        (obj, ev)
    }

    fn remove(&mut self, def: &ResourceDef, ns: &str, name: &str) -> Option<(Value, WatchEvent)> {
        let mut obj = self.objects.remove(&key(def, ns, name))?;
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let ev = WatchEvent {
            rv: self.rv,
            kind: "DELETED",
            group: def.group.to_string(),
            plural: def.plural.to_string(),
            namespace: if def.namespaced {
                ns.to_string()
            } else {
                String::new()
            },
            object: obj.clone(),
        };
        let ev = self.record(ev);
        Some((obj, ev))
    }

    /// Common path of every write: metadata, status, defaults, validation, generation,
    /// managedFields, no-op detection, dry run and commit.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        old: Option<&Value>,
        mut new: Value,
        mgr: Mgr,
        ctx: &Ctx,
    ) -> Result<(Value, Vec<WatchEvent>), ApiError> {
        let api_version = def.api_version();
        if !new.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        if let Some(av) = new.get("apiVersion").and_then(Value::as_str)
            && av != api_version
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({api_version})"
            )));
        }
        if let Some(k) = new.get("kind").and_then(Value::as_str)
            && k != def.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                def.kind
            )));
        }
        fields::strip_nulls(&mut new);
        new["apiVersion"] = json!(api_version);
        new["kind"] = json!(def.kind);
        if let Some(body_name) = meta_str(&new, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if def.namespaced
            && let Some(body_ns) = meta_str(&new, "namespace")
            && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let body_managed = match &mgr {
            Mgr::Update(m) => m.clone(),
            Mgr::Apply(_) => None,
        };
        {
            let m = meta_mut(&mut new);
            m.insert("name".into(), json!(name));
            if def.namespaced {
                m.insert("namespace".into(), json!(ns));
            } else {
                m.remove("namespace");
            }
            m.remove("managedFields");
            m.remove("selfLink");
        }
        let now = now_rfc3339();
        match old {
            Some(old) => {
                if let Some(rv) = meta_str(&new, "resourceVersion")
                    && Some(rv) != meta_str(old, "resourceVersion")
                {
                    return Err(ApiError::conflict_stale(def.group, def.plural, name));
                }
                if let Some(uid) = meta_str(&new, "uid")
                    && Some(uid) != meta_str(old, "uid")
                {
                    return Err(ApiError::conflict(
                        def.group,
                        def.plural,
                        name,
                        &format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                            meta_str(old, "uid").unwrap_or_default()
                        ),
                    ));
                }
                let m = meta_mut(&mut new);
                for f in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "resourceVersion",
                ] {
                    match old.get("metadata").and_then(|om| om.get(f)) {
                        Some(v) => m.insert(f.into(), v.clone()),
                        None => m.remove(f),
                    };
                }
            }
            None => {
                if def.namespaced {
                    match self.namespace_phase(ns) {
                        None => {
                            let nsd = &kinds::core::NAMESPACES;
                            return Err(ApiError::not_found(nsd.group, nsd.plural, ns));
                        }
                        Some(p) if p == "Terminating" => {
                            let mut e = ApiError::forbidden_msg(
                                def.group,
                                def.plural,
                                name,
                                format!(
                                    "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                                    if def.group.is_empty() {
                                        def.plural.to_string()
                                    } else {
                                        format!("{}.{}", def.plural, def.group)
                                    }
                                ),
                            );
                            e.details.causes = vec![cause(
                                "NamespaceTerminating",
                                "metadata.namespace",
                                format!("namespace {ns} is being terminated"),
                            )];
                            return Err(e);
                        }
                        _ => {}
                    }
                }
                if self.get(def, ns, name).is_some() {
                    return Err(ApiError::already_exists(def.group, def.plural, name));
                }
                let m = meta_mut(&mut new);
                m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
                m.insert("creationTimestamp".into(), json!(now));
                for f in [
                    "resourceVersion",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                ] {
                    m.remove(f);
                }
            }
        }
        // Status: owned by the status subresource.
        if def.has_status {
            if ctx.subresource == "status" {
                let status = new.get("status").cloned();
                if let Some(old) = old {
                    let mut base = old.clone();
                    if let Some(b) = base.as_object_mut() {
                        b.remove("status");
                        if let Some(s) = status {
                            b.insert("status".into(), s);
                        }
                    }
                    let m = meta_mut(&mut base);
                    m.remove("managedFields");
                    new = base;
                }
            } else if !ctx.keep_status || (new.get("status").is_none() && old.is_some()) {
                let old_status = old.and_then(|o| o.get("status")).cloned();
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                    if let Some(s) = old_status {
                        o.insert("status".into(), s);
                    }
                }
            }
        }
        if def.has_status && old.is_none() && new.get("status").is_none() {
            new["status"] = json!({});
        }
        let defaulting = Defaulting {
            create: old.is_none(),
            namespace_name_label: self.namespace_name_label,
        };
        (def.defaults)(&mut new, &defaulting);
        let causes = kinds::validate(def, &new);
        if !causes.is_empty() {
            return Err(ApiError::invalid(def.group, def.kind, name, causes));
        }
        if def.generation {
            let g = match old {
                None => 1,
                Some(o) => {
                    let og = o
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    if spec_of(o) != spec_of(&new) {
                        og + 1
                    } else {
                        og
                    }
                }
            };
            meta_mut(&mut new).insert("generation".into(), json!(g));
        }
        let managers = match mgr {
            Mgr::Apply(m) => m,
            Mgr::Update(_) => {
                let base = match body_managed {
                    Some(b) => b,
                    None => old.map(fields::decode_managed).unwrap_or_default(),
                };
                let live = match old {
                    Some(o) => fields::without_managed(o),
                    None => (def.skeleton)(),
                };
                fields::record_update(
                    base,
                    &live,
                    &new,
                    &ctx.manager,
                    &api_version,
                    &ctx.subresource,
                    &now,
                    &reset_paths(def, ctx),
                )
            }
        };
        let encoded = fields::encode_managed(&managers);
        if encoded.as_array().is_some_and(|a| !a.is_empty()) {
            meta_mut(&mut new).insert("managedFields".into(), encoded);
        }
        if let Some(old) = old
            && *old == new
        {
            return Ok((new, Vec::new()));
        }
        if ctx.dry_run {
            return Ok((new, Vec::new()));
        }
        let mut events = Vec::new();
        let finalizing = new.pointer("/metadata/deletionTimestamp").is_some()
            && new
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            && def.deletion == Deletion::Finalizers;
        let (stored, ev) = self.commit(
            def,
            ns,
            name,
            new,
            if old.is_some() { "MODIFIED" } else { "ADDED" },
        );
        events.push(ev);
        if finalizing {
            let (_, mut evs) = self.delete(def, ns, name, &DeleteOpts::default())?;
            events.append(&mut evs);
        }
        Ok((stored, events))
    }

    /// POST: create (`generateName` honoured).
    pub fn create(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        mut obj: Value,
        ctx: &Ctx,
    ) -> Result<(Value, Vec<WatchEvent>), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        let mut name = meta_str(&obj, "name").unwrap_or_default().to_string();
        if name.is_empty() {
            let gen_name = meta_str(&obj, "generateName")
                .unwrap_or_default()
                .to_string();
            if gen_name.is_empty() {
                return Err(ApiError::invalid(
                    def.group,
                    def.kind,
                    "",
                    vec![cause(
                        "FieldValueRequired",
                        "metadata.name",
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
            name = format!("{gen_name}{}", name_suffix());
            meta_mut(&mut obj).insert("name".into(), json!(name));
        }
        self.write(def, ns, &name, None, obj, Mgr::Update(None), ctx)
    }

    /// PUT: replace an existing object.
    pub fn replace(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        obj: Value,
        ctx: &Ctx,
    ) -> Result<(Value, Vec<WatchEvent>), ApiError> {
        let Some(old) = self.get(def, ns, name).cloned() else {
            return Err(ApiError::not_found(def.group, def.plural, name));
        };
        let body_managed = obj
            .pointer("/metadata/managedFields")
            .map(|_| fields::decode_managed(&obj));
        self.write(
            def,
            ns,
            name,
            Some(&old),
            obj,
            Mgr::Update(body_managed),
            ctx,
        )
    }

    /// Create-or-replace used by the accessor `put` and by controllers (status included).
    pub fn put_internal(
        &mut self,
        mut obj: Value,
        manager: &str,
    ) -> Result<(Value, Vec<WatchEvent>), ApiError> {
        let av = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(def) = resources::by_kind(&av, &kind) else {
            return Err(ApiError::bad_request(format!(
                "no kind \"{kind}\" is registered for version \"{av}\""
            )));
        };
        let ns = meta_str(&obj, "namespace").unwrap_or("default").to_string();
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        let ctx = Ctx::internal(manager);
        match self.get(def, &ns, &name).cloned() {
            Some(old) => self.write(def, &ns, &name, Some(&old), obj, Mgr::Update(None), &ctx),
            None => self.create(def, &ns, obj, &ctx),
        }
    }
}

/// Parses an apply body (YAML, or JSON which is YAML too).
pub fn parse_yaml_or_json(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("error decoding YAML: invalid UTF-8"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

/// The Node object for a configured node.
pub fn node_object(n: &NodeSpec, index: usize) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": n.name, "labels": n.labels},
        "spec": {"podCIDR": format!("10.244.{index}.0/24"), "podCIDRs": [format!("10.244.{index}.0/24")]},
        "status": {
            "capacity": {"cpu": n.cpu_cores.to_string(), "memory": n.memory, "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": n.cpu_cores.to_string(), "memory": n.memory, "pods": "110", "ephemeral-storage": "100Gi"},
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now_rfc3339(), "lastTransitionTime": now_rfc3339(),
            }],
            "addresses": [
                {"type": "InternalIP", "address": format!("10.0.0.{}", index + 4)},
                {"type": "Hostname", "address": n.name},
            ],
            "nodeInfo": {
                "kubeletVersion": n.kubelet_version,
                "kubeProxyVersion": n.kubelet_version,
                "osImage": n.os_image,
                "operatingSystem": "linux",
                "architecture": "amd64",
                "kernelVersion": "5.15.0-1064-azure",
                "containerRuntimeVersion": "containerd://1.7.15",
                "machineID": format!("{:032x}", index + 1),
                "systemUUID": uuid::Uuid::new_v4().to_string(),
                "bootID": uuid::Uuid::new_v4().to_string(),
            },
        },
    })
}
