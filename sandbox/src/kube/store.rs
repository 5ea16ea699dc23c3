//! The generic object store: keys, resourceVersions, create/update/patch/apply/delete semantics
//! shared by every resource, plus the few per-kind defaults and validations the emulator knows.

use std::collections::{BTreeMap, VecDeque};

use base64::Engine;
use serde_json::{Map, Value, json};

use super::fields::{self, ManagerEntry};
use super::resources::{self, ResourceDef};
use super::status::{ApiError, Cause};
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

/// All objects and the resourceVersion counter.
pub struct Store {
    /// The last resourceVersion handed out.
    pub rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<WatchEvent>,
    history_cap: usize,
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

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn cause(reason: &str, field: &str, message: String) -> Cause {
    Cause {
        reason: reason.into(),
        field: field.into(),
        message,
    }
}

fn validate(def: &ResourceDef, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name = meta_str(obj, "name").unwrap_or_default();
    let name_ok = match def.kind {
        "Namespace" => is_dns_label(name),
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => {
            !name.is_empty()
                && name != "."
                && name != ".."
                && !name.contains('/')
                && !name.contains('%')
        }
        _ => is_dns_subdomain(name),
    };
    if !name_ok {
        let msg = match def.kind {
            "Namespace" => LABEL_MSG,
            "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => "may not contain '/'",
            _ => SUBDOMAIN_MSG,
        };
        causes.push(cause(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: \"{name}\": {msg}"),
        ));
    }
    if let Some(labels) = obj.pointer("/metadata/labels") {
        match labels.as_object() {
            Some(m) => {
                for (k, v) in m {
                    if !v.is_string() {
                        causes.push(cause(
                            "FieldValueInvalid",
                            &format!("metadata.labels.{k}"),
                            "Invalid value: must be a string".into(),
                        ));
                    }
                }
            }
            None => causes.push(cause(
                "FieldValueInvalid",
                "metadata.labels",
                "Invalid value: must be a map of strings".into(),
            )),
        }
    }
    if matches!(def.kind, "Deployment" | "ReplicaSet") {
        let sel = obj.pointer("/spec/selector");
        if sel.is_none() {
            causes.push(cause(
                "FieldValueRequired",
                "spec.selector",
                "Required value".into(),
            ));
        }
        let tmpl_labels = obj
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object);
        if let Some(match_labels) = sel
            .and_then(|s| s.get("matchLabels"))
            .and_then(Value::as_object)
        {
            let ok = match_labels
                .iter()
                .all(|(k, v)| tmpl_labels.and_then(|l| l.get(k)) == Some(v));
            if !ok {
                let shown: Vec<String> = tmpl_labels
                    .map(|l| l.iter().map(|(k, v)| format!("{k:?}:{v}")).collect())
                    .unwrap_or_default();
                causes.push(cause(
                    "FieldValueInvalid",
                    "spec.template.metadata.labels",
                    format!("Invalid value: map[string]string{{{}}}: `selector` does not match template `labels`", shown.join(", ")),
                ));
            }
        }
        let containers = obj
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array);
        if containers.is_none_or(Vec::is_empty) {
            causes.push(cause(
                "FieldValueRequired",
                "spec.template.spec.containers",
                "Required value".into(),
            ));
        }
        for (i, c) in containers.into_iter().flatten().enumerate() {
            if c.get("image")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                causes.push(cause(
                    "FieldValueRequired",
                    &format!("spec.template.spec.containers[{i}].image"),
                    "Required value".into(),
                ));
            }
        }
        if obj
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .is_some_and(|r| r < 0)
        {
            causes.push(cause(
                "FieldValueInvalid",
                "spec.replicas",
                "Invalid value: must be greater than or equal to 0".into(),
            ));
        }
    }
    if def.kind == "Secret" {
        for (k, v) in obj
            .get("data")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let ok = v
                .as_str()
                .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok());
            if !ok {
                causes.push(cause(
                    "FieldValueInvalid",
                    &format!("data[{k}]"),
                    "Invalid value: illegal base64 data".into(),
                ));
            }
        }
    }
    causes
}

fn default_pod_spec(spec: &mut Value) {
    let Some(s) = spec.as_object_mut() else {
        return;
    };
    s.entry("restartPolicy").or_insert(json!("Always"));
    s.entry("terminationGracePeriodSeconds")
        .or_insert(json!(30));
    s.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    s.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    s.entry("securityContext").or_insert(json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = s.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                c.entry("terminationMessagePath")
                    .or_insert(json!("/dev/termination-log"));
                c.entry("terminationMessagePolicy").or_insert(json!("File"));
                c.entry("resources").or_insert(json!({}));
                if !c.contains_key("imagePullPolicy") {
                    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
                    let last = image.rsplit('/').next().unwrap_or_default();
                    let latest = !last.contains(':') || last.ends_with(":latest");
                    let pol = if latest && !image.contains('@') {
                        "Always"
                    } else {
                        "IfNotPresent"
                    };
                    c.insert("imagePullPolicy".into(), json!(pol));
                }
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        p.entry("protocol").or_insert(json!("TCP"));
                    }
                }
            }
        }
    }
}

fn defaults(def: &ResourceDef, obj: &mut Value, create: bool, namespace_name_label: bool) {
    match def.kind {
        "Namespace" => {
            if namespace_name_label {
                let name = meta_str(obj, "name").unwrap_or_default().to_string();
                let m = meta_mut(obj);
                let labels = m.entry("labels").or_insert(json!({}));
                if let Some(l) = labels.as_object_mut() {
                    l.insert("kubernetes.io/metadata.name".into(), json!(name));
                }
            }
            if obj.pointer("/spec/finalizers").is_none() && create {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
            if obj.pointer("/status/phase").is_none() {
                obj["status"] = json!({"phase": "Active"});
            }
        }
        "Secret" => {
            if let Some(Value::Object(sd)) =
                obj.as_object_mut().and_then(|o| o.remove("stringData"))
            {
                let data = obj
                    .as_object_mut()
                    .map(|o| o.entry("data").or_insert(json!({})));
                if let Some(Value::Object(d)) = data {
                    for (k, v) in sd {
                        let s = v.as_str().unwrap_or_default();
                        d.insert(
                            k,
                            json!(base64::engine::general_purpose::STANDARD.encode(s)),
                        );
                    }
                }
            }
            if obj.get("type").is_none() {
                obj["type"] = json!("Opaque");
            }
        }
        "Deployment" | "ReplicaSet" => {
            if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
                if spec.get("replicas").is_none() {
                    spec["replicas"] = json!(1);
                }
                if def.kind == "Deployment" {
                    if spec.get("revisionHistoryLimit").is_none() {
                        spec["revisionHistoryLimit"] = json!(10);
                    }
                    if spec.get("progressDeadlineSeconds").is_none() {
                        spec["progressDeadlineSeconds"] = json!(600);
                    }
                    if spec.get("strategy").is_none_or(|s| s.get("type").is_none()) {
                        spec["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}});
                    }
                }
                if let Some(ps) = spec.pointer_mut("/template/spec") {
                    default_pod_spec(ps);
                }
                if let Some(tm) = spec.get_mut("template").and_then(Value::as_object_mut) {
                    // The template's ObjectMeta serialises its zero creationTimestamp as null.
                    let meta = tm.entry("metadata").or_insert(json!({}));
                    if let Some(m) = meta.as_object_mut() {
                        m.entry("creationTimestamp").or_insert(Value::Null);
                    }
                }
            }
        }
        "Pod" => {
            if let Some(ps) = obj.get_mut("spec") {
                default_pod_spec(ps);
            }
            if obj.pointer("/status/phase").is_none() {
                obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            }
        }
        "Service" => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("type").or_insert(json!("ClusterIP"));
                spec.entry("sessionAffinity").or_insert(json!("None"));
                if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        p.entry("protocol").or_insert(json!("TCP"));
                        if let Some(port) = p.get("port").cloned() {
                            p.entry("targetPort").or_insert(port);
                        }
                    }
                }
            }
            if obj.get("status").is_none() {
                obj["status"] = json!({"loadBalancer": {}});
            }
        }
        _ => {}
    }
}

/// The "empty object" a create is compared against for managedFields (non-pointer structs exist).
fn skeleton(def: &ResourceDef) -> Value {
    match def.kind {
        "Deployment" => {
            json!({"metadata": {}, "spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {}}, "strategy": {}}, "status": {}})
        }
        "ReplicaSet" => {
            json!({"metadata": {}, "spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {}}}, "status": {}})
        }
        "Pod" | "Namespace" | "Node" | "Service" => {
            json!({"metadata": {}, "spec": {}, "status": {}})
        }
        "Lease" => json!({"metadata": {}, "spec": {}}),
        "RoleBinding" | "ClusterRoleBinding" => json!({"metadata": {}, "roleRef": {}}),
        _ => json!({"metadata": {}}),
    }
}

fn uses_generation(def: &ResourceDef) -> bool {
    matches!(def.kind, "Deployment" | "ReplicaSet")
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
    /// An empty store.
    pub fn new(history_cap: usize) -> Self {
        Store {
            rv: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_cap,
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
        Some(self.history.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    fn record(&mut self, ev: WatchEvent) -> WatchEvent {
        self.history.push_back(ev.clone());
        while self.history.len() > self.history_cap {
            self.history.pop_front();
        }
        ev
    }

    /// The phase of a namespace (`None` if it does not exist).
    pub fn namespace_phase(&self, ns: &str) -> Option<String> {
        let def = resources::by_kind("v1", "Namespace")?;
        let obj = self.get(def, "", ns)?;
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
                        None => return Err(ApiError::not_found("", "namespaces", ns)),
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
        defaults(def, &mut new, old.is_none(), self.namespace_name_label);
        let causes = validate(def, &new);
        if !causes.is_empty() {
            return Err(ApiError::invalid(def.group, def.kind, name, causes));
        }
        if uses_generation(def) {
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
                    None => skeleton(def),
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
            && def.kind != "Namespace";
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

    /// PATCH (JSON, merge, strategic merge or apply). Returns the object, events and whether
    /// it was created (apply on a missing object).
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        patch_type: &str,
        body: &[u8],
        force: bool,
        ctx: &Ctx,
    ) -> Result<(Value, Vec<WatchEvent>, bool), ApiError> {
        let old = self.get(def, ns, name).cloned();
        if patch_type == "application/apply-patch+yaml" {
            let mut config = parse_yaml_or_json(body)?;
            if !config.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding YAML: object expected",
                ));
            }
            for (field, want) in [
                ("apiVersion", def.api_version()),
                ("kind", def.kind.to_string()),
            ] {
                match config.get(field).and_then(Value::as_str) {
                    None | Some("") => {
                        return Err(ApiError::bad_request(format!(
                            "{field} must be set in the applied configuration"
                        )));
                    }
                    Some(v) if v != want => {
                        return Err(ApiError::bad_request(format!(
                            "the {} in the data ({v}) does not match the expected {} ({want})",
                            if field == "kind" {
                                "kind"
                            } else {
                                "API version"
                            },
                            if field == "kind" {
                                "kind"
                            } else {
                                "API version"
                            },
                        )));
                    }
                    _ => {}
                }
            }
            fields::strip_nulls(&mut config);
            if let Some(n) = meta_str(&config, "name")
                && n != name
            {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            if let Some(m) = config.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("managedFields");
            }
            if def.has_status
                && let Some(o) = config.as_object_mut()
            {
                if ctx.subresource == "status" {
                    o.retain(|k, _| {
                        matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status")
                    });
                } else {
                    o.remove("status");
                }
            }
            let now = now_rfc3339();
            let (live, managers) = match &old {
                Some(o) => {
                    let live = fields::without_managed(o);
                    let mut managers = fields::decode_managed(o);
                    if managers.is_empty() {
                        let mut set = fields::to_field_set(&live);
                        for p in [
                            ["f:apiVersion"].as_slice(),
                            &["f:kind"],
                            &["f:metadata", "f:name"],
                            &["f:metadata", "f:namespace"],
                            &["f:metadata", "f:uid"],
                            &["f:metadata", "f:resourceVersion"],
                            &["f:metadata", "f:creationTimestamp"],
                            &["f:metadata", "f:generation"],
                        ] {
                            let p: Vec<String> = p.iter().map(|s| s.to_string()).collect();
                            set.remove_subtree(&p);
                        }
                        if def.has_status {
                            set.remove_subtree(&["f:status".to_string()]);
                        }
                        managers.push(ManagerEntry {
                            manager: "before-first-apply".into(),
                            operation: "Update".into(),
                            api_version: def.api_version(),
                            time: None,
                            subresource: String::new(),
                            set,
                        });
                    }
                    (live, managers)
                }
                None => (json!({}), Vec::new()),
            };
            let reset = reset_paths(def, ctx);
            let applied = fields::apply(
                managers,
                &live,
                &config,
                &ctx.manager,
                &def.api_version(),
                &ctx.subresource,
                force,
                &now,
                &reset,
            )?;
            let created = old.is_none();
            let (obj, evs) = self.write(
                def,
                ns,
                name,
                old.as_ref(),
                applied.object,
                Mgr::Apply(applied.managers),
                ctx,
            )?;
            return Ok((obj, evs, created));
        }
        let Some(old) = old else {
            return Err(ApiError::not_found(def.group, def.plural, name));
        };
        let mut target = fields::without_managed(&old);
        match patch_type {
            "application/json-patch+json" => {
                let p: json_patch::Patch = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                json_patch::patch(&mut target, &p).map_err(|e| {
                    ApiError::unprocessable(format!(
                        "the server rejected our request due to an error in our request: {e}"
                    ))
                })?;
            }
            "application/merge-patch+json" => {
                let p: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                json_patch::merge(&mut target, &p);
            }
            "application/strategic-merge-patch+json" => {
                let p: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                if !p.is_object() {
                    return Err(ApiError::bad_request(
                        "unable to find api field in struct for the strategic merge patch: patch must be an object",
                    ));
                }
                target = fields::strategic_merge(&target, &p);
            }
            other => return Err(ApiError::unsupported_media_type(other)),
        }
        if !target.is_object() {
            return Err(ApiError::bad_request(
                "the patched object must be a JSON object",
            ));
        }
        // The patch may not remove identity fields.
        let (obj, evs) = self.write(def, ns, name, Some(&old), target, Mgr::Update(None), ctx)?;
        Ok((obj, evs, false))
    }

    /// DELETE. Returns the object as it was at deletion (or the terminating namespace / the
    /// object now carrying a deletionTimestamp) and the events.
    pub fn delete(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<(Value, Vec<WatchEvent>), ApiError> {
        let Some(old) = self.get(def, ns, name).cloned() else {
            return Err(ApiError::not_found(def.group, def.plural, name));
        };
        if let Some(uid) = &opts.uid
            && Some(uid.as_str()) != meta_str(&old, "uid")
        {
            // As the apiserver's rest.BeforeDelete says it: the resource is named by its kind.
            return Err(ApiError::conflict(
                def.group,
                def.kind,
                name,
                &format!(
                    "the UID in the precondition ({uid}) does not match the UID in record ({}). The object might have been deleted and then recreated",
                    meta_str(&old, "uid").unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = &opts.resource_version
            && Some(rv.as_str()) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                def.group,
                def.kind,
                name,
                &format!(
                    "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({}). The object might have been modified",
                    meta_str(&old, "resourceVersion").unwrap_or_default()
                ),
            ));
        }
        let has_finalizers = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if def.kind == "Namespace" {
            if matches!(name, "default" | "kube-system" | "kube-public") {
                return Err(ApiError::forbidden_msg(
                    "",
                    "namespaces",
                    name,
                    format!(
                        "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
                    ),
                ));
            }
            if old.pointer("/metadata/deletionTimestamp").is_some() || opts.dry_run {
                return Ok((old, Vec::new()));
            }
            let mut new = old.clone();
            meta_mut(&mut new).insert("deletionTimestamp".into(), json!(now_rfc3339()));
            meta_mut(&mut new).insert("deletionGracePeriodSeconds".into(), json!(0));
            new["status"] = json!({"phase": "Terminating"});
            let (obj, ev) = self.commit(def, ns, name, new, "MODIFIED");
            return Ok((obj, vec![ev]));
        }
        if opts.dry_run {
            return Ok((old, Vec::new()));
        }
        if has_finalizers {
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok((old, Vec::new()));
            }
            let mut new = old.clone();
            meta_mut(&mut new).insert("deletionTimestamp".into(), json!(now_rfc3339()));
            meta_mut(&mut new).insert("deletionGracePeriodSeconds".into(), json!(0));
            let (obj, ev) = self.commit(def, ns, name, new, "MODIFIED");
            return Ok((obj, vec![ev]));
        }
        let mut events = Vec::new();
        let Some((obj, ev)) = self.remove(def, ns, name) else {
            return Err(ApiError::not_found(def.group, def.plural, name));
        };
        events.push(ev);
        if opts.propagation.as_deref() != Some("Orphan")
            && let Some(uid) = meta_str(&obj, "uid")
        {
            events.extend(self.collect_dependents(uid));
        } else if let Some(uid) = meta_str(&obj, "uid") {
            self.orphan_dependents(uid, &mut events);
        }
        Ok((obj, events))
    }

    fn dependents(&self, uid: &str) -> Vec<(&'static ResourceDef, String, String)> {
        let mut out = Vec::new();
        for ((g, p, ns, name), obj) in &self.objects {
            let owned = obj
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                });
            if owned
                && let Some(def) = resources::RESOURCES
                    .iter()
                    .find(|d| d.group == g && d.plural == p)
            {
                out.push((def, ns.clone(), name.clone()));
            }
        }
        out
    }

    fn collect_dependents(&mut self, uid: &str) -> Vec<WatchEvent> {
        let mut events = Vec::new();
        for (def, ns, name) in self.dependents(uid) {
            if let Ok((_, mut evs)) = self.delete(def, &ns, &name, &DeleteOpts::default()) {
                events.append(&mut evs);
            }
        }
        events
    }

    fn orphan_dependents(&mut self, uid: &str, events: &mut Vec<WatchEvent>) {
        for (def, ns, name) in self.dependents(uid) {
            if let Some(mut obj) = self.get(def, &ns, &name).cloned() {
                if let Some(refs) = obj
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                }
                let (_, ev) = self.commit(def, &ns, &name, obj, "MODIFIED");
                events.push(ev);
            }
        }
    }

    /// Removes every object of a namespace (namespace controller); returns the events.
    pub fn purge_namespace(&mut self, ns: &str) -> Vec<WatchEvent> {
        let keys: Vec<Key> = self
            .objects
            .keys()
            .filter(|k| !k.2.is_empty() && k.2 == ns)
            .cloned()
            .collect();
        let mut events = Vec::new();
        for (g, p, ns, name) in keys {
            if let Some(def) = resources::RESOURCES
                .iter()
                .find(|d| d.group == g && d.plural == p)
            {
                // Finalizers are ignored here: the sandbox has no controllers that would remove them.
                if let Some((obj, ev)) = self.remove(def, &ns, &name) {
                    events.push(ev);
                    if let Some(uid) = meta_str(&obj, "uid") {
                        events.extend(self.collect_dependents(uid));
                    }
                }
            }
        }
        events
    }

    /// Removes a namespace object outright (end of termination).
    pub fn finalize_namespace(&mut self, ns: &str) -> Vec<WatchEvent> {
        let Some(def) = resources::by_kind("v1", "Namespace") else {
            return Vec::new();
        };
        self.remove(def, "", ns)
            .map(|(_, e)| vec![e])
            .unwrap_or_default()
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
